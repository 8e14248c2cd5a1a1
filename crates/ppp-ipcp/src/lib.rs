//! IPCP (RFC 1332, RFC 1877) and IPv6CP (RFC 5072) for a sans-IO PPP stack.
//!
//! [`Ipcp`] and [`Ipv6cp`] are the network control protocols that run, once LCP is up, on the
//! RFC 1661 option-negotiation automaton of `ppp-lcp` ([`ppp_lcp::fsm::Fsm`]): they implement
//! [`ppp_lcp::fsm::ControlProtocol`], which builds our Configure-Requests and judges the peer's.
//! Neither reads the clock, sleeps or touches a socket; identifiers that must be random come
//! from a caller-supplied source.
//!
//! * [`IpcpOption`] / [`Ipv6cpOption`]: the wire options, open enums that parse and emit
//!   symmetrically.
//! * [`IpcpConfig`]: pppd-like policy: ask for an address or insist on a static one
//!   (`ipcp-accept-local`), accept or correct the peer's address (`ipcp-accept-remote`), ask for
//!   DNS (`usepeerdns`), hand out DNS/NBNS (`ms-dns`, `ms-wins`); an [`AddressPool`] supplies
//!   peer addresses on a server ([`AddressRange`] is a ready-made one).
//! * [`Ipv6cpConfig`]: fixed, random or peer-supplied interface identifiers, collision handling.
//! * Results: [`IpcpNegotiated`] and [`Ipv6cpNegotiated`] after This-Layer-Up.
//!
//! Header compression (Van Jacobson for IPv4, IPHC/ROHC for IPv6) is not implemented: those
//! options are never requested and always Configure-Rejected.
//!
//! # Example
//!
//! A client and a server IPCP negotiating in one process; the run loop is the automaton's:
//! feed input, drain `poll_transmit`/`poll_event`, sleep until `poll_timeout`.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use std::time::Instant;
//! use ppp_ipcp::{Ipcp, IpcpConfig};
//! use ppp_lcp::fsm::{Fsm, FsmConfig, State};
//!
//! let now = Instant::now();
//! let mut client = Fsm::new(Ipcp::new(IpcpConfig::client()), FsmConfig::default());
//! let mut server = Fsm::new(
//!     Ipcp::new(IpcpConfig {
//!         remote_address: Some(Ipv4Addr::new(192, 0, 2, 100)),
//!         ..IpcpConfig::server(Ipv4Addr::new(192, 0, 2, 1), [Some(Ipv4Addr::new(198, 51, 100, 53)), None])
//!     }),
//!     FsmConfig::default(),
//! );
//! for fsm in [&mut client, &mut server] {
//!     fsm.up(now);
//!     fsm.open(now);
//! }
//! // Shuttle packets until both sides are quiet.
//! loop {
//!     let mut moved = false;
//!     while let Some(packet) = client.poll_transmit() {
//!         server.handle_input(now, &packet);
//!         moved = true;
//!     }
//!     while let Some(packet) = server.poll_transmit() {
//!         client.handle_input(now, &packet);
//!         moved = true;
//!     }
//!     if !moved {
//!         break;
//!     }
//! }
//! assert_eq!(client.state(), State::Opened);
//! let got = client.protocol().negotiated().unwrap();
//! assert_eq!(got.local, Ipv4Addr::new(192, 0, 2, 100));
//! assert_eq!(got.peer, Ipv4Addr::new(192, 0, 2, 1));
//! assert_eq!(got.dns, [Some(Ipv4Addr::new(198, 51, 100, 53)), None]);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod ipcp;
mod ipcp_option;
mod ipv6cp;
mod ipv6cp_option;
mod pool;
mod tlv;

#[cfg(test)]
mod tests;

pub use error::IpcpError;
pub use ipcp::{AddressPool, Ipcp, IpcpConfig, IpcpNegotiated};
pub use ipcp_option::{IpcpOption, IpcpOptionKind, VAN_JACOBSON, describe_ipcp_options};
pub use ipv6cp::{InterfaceIdSource, Ipv6cp, Ipv6cpConfig, Ipv6cpNegotiated};
pub use ipv6cp_option::{InterfaceId, Ipv6cpOption, Ipv6cpOptionKind, describe_ipv6cp_options};
pub use pool::AddressRange;
pub use ppp_core::Random;
