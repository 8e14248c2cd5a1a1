//! The Compression Control Protocol (RFC 1962) with MPPE encryption (RFC 3078, keys per
//! RFC 3079) and Deflate compression (RFC 1979), sans-IO.
//!
//! This is a crate of its own because compression and encryption form a layer between the
//! network protocols and the link that nothing else owns: CCP negotiates on the RFC 1661
//! automaton like an NCP (so it is not part of `ppp-lcp`), but unlike the NCPs it also
//! transforms every datagram the link carries, and it is the only user of RC4 and Deflate.
//!
//! - [`option`]: the CCP options — MPPE/MPPC (type 18), Deflate (26 and the draft 24), and the
//!   others we recognise only to Configure-Reject them (BSD-Compress, Predictor, ...).
//! - [`Ccp`]: the negotiation policy ([`CcpConfig`], modelled on pppd's `require-mppe-128`,
//!   `nomppe-40`, `mppe-stateful`, `deflate N` and RouterOS `use-encryption` /
//!   `use-compression`), implementing `ppp_lcp::ControlProtocol` for protocol 0x80FD, with
//!   Reset-Request/Reset-Ack (codes 14/15) handled through `handle_other_code`.
//! - [`mppe`] and [`deflate`]: the data transforms for protocol 0x00FD, framed as the Linux
//!   kernel's `ppp_mppe` and `ppp_deflate` frame them; [`Compressor`] / [`Decompressor`] pick
//!   one from what was negotiated.
//! - [`CcpSession`]: all of it behind the usual verbs, with the Reset-Request timer.
//!
//! Policy in short: MPPE and Deflate exclude each other (as in pppd); MPPC is never used;
//! [`Encryption::Required`] makes the link go down ([`CcpEvent::LinkFailure`]) when the peer
//! refuses MPPE, when CCP finishes, or when MPPE loses sync beyond repair.
//!
//! Nothing here reads a clock, sleeps or touches a socket; the same inputs give the same
//! outputs, no input panics, and every queue is bounded. Keys are never logged.
//!
//! # Run loop
//!
//! ```no_run
//! use std::time::Instant;
//! use ppp_ccp::{CcpConfig, CcpEvent, CcpSession, MppeKeys, Transmit};
//! use ppp_frame::Protocol;
//! use ppp_lcp::FsmConfig;
//!
//! # fn send_frame(_protocol: Protocol, _information: &[u8]) {}
//! # fn receive_frame(_deadline: Option<Instant>) -> Option<(Protocol, Vec<u8>)> { None }
//! # fn deliver(_protocol: Protocol, _datagram: &[u8]) {}
//! # let (send_key, recv_key) = ([0u8; 16], [0u8; 16]);
//! let mut ccp = CcpSession::new(CcpConfig::require_mppe_128(), FsmConfig::default());
//! // From MS-CHAP: ppp_auth::mppe_keys::MsChapKeyMaterial::start_keys().
//! ccp.set_mppe_keys(MppeKeys::new(send_key, recv_key));
//! ccp.open(Instant::now());
//! ccp.up(Instant::now()); // the link entered the network phase
//! loop {
//!     while let Some(packet) = ccp.poll_transmit() {
//!         send_frame(Protocol::Ccp, &packet);
//!     }
//!     while let Some(event) = ccp.poll_event() {
//!         match event {
//!             CcpEvent::Up(negotiated) => println!("CCP up: {negotiated:?}"),
//!             CcpEvent::LinkFailure { reason } => {
//!                 println!("closing the link: {reason}");
//!                 return;
//!             }
//!             _ => {}
//!         }
//!     }
//!     // An IPv4 datagram to send:
//!     match ccp.compress(Protocol::Ipv4, b"...") {
//!         Transmit::Compressed(information) => send_frame(Protocol::Compressed, &information),
//!         Transmit::Uncompressed => send_frame(Protocol::Ipv4, b"..."),
//!         Transmit::Drop => {}
//!     }
//!     match receive_frame(ccp.poll_timeout()) {
//!         Some((Protocol::Ccp, packet)) => ccp.handle_input(Instant::now(), &packet),
//!         Some((Protocol::Compressed, information)) => {
//!             if let Ok((protocol, datagram)) = ccp.decompress(Instant::now(), &information) {
//!                 deliver(protocol, &datagram);
//!             }
//!         }
//!         Some((protocol, datagram)) => {
//!             if ccp.receive_uncompressed(protocol, &datagram) {
//!                 deliver(protocol, &datagram);
//!             }
//!         }
//!         None => ccp.handle_timeout(Instant::now()),
//!     }
//! }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod ccp;
pub mod deflate;
mod error;
pub mod mppe;
pub mod option;
mod session;
mod transform;

pub use ccp::{Ccp, CcpConfig, CcpNegotiated, Encryption};
pub use error::CcpError;
pub use mppe::{MppeKeys, MppeParams};
pub use option::{CcpOption, DeflateOption, MppeBits, OptionType, describe_ccp_options};
pub use ppp_auth::mppe_keys::MppeKeyLength;
pub use session::{CcpEvent, CcpFailure, CcpSession, RESET_ACK_TIMEOUT, Transmit};
pub use transform::{CompressionMethod, Compressor, Decompressor};

#[cfg(test)]
mod tests;
