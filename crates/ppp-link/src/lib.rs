//! A whole PPP link, sans-IO: the phases of RFC 1661 §3 (Dead, Establish, Authenticate, Network,
//! Terminate), LCP, the authentication hooks, IPCP, IPv6CP and CCP, over async HDLC-like framing
//! (serial lines, modems) or sync framing (PPPoE).
//!
//! This crate exists because no protocol crate is the right home for the composition: `ppp-lcp`
//! knows one automaton, `ppp-ipcp` the NCPs, `ppp-frame` the bytes; the link demultiplexes
//! protocols, gates each phase on the one before (no NCP packet before the Network phase, no
//! Network phase before every negotiated authentication succeeded, no datagram before its NCP is
//! Opened), applies LCP's results to the framing at the right moment (the new ACCM only once LCP
//! is Opened, RFC 1662 §7.1), keeps NCPs independent of each other (RFC 1661 §3.7), and merges all
//! deadlines into one.
//!
//! Along the seam Multilink needs (RFC 1990 §2): [`LinkControl`] is what each link has on its own
//! (framing, LCP, authentication), [`NetworkLayer`] what a link or a bundle has once (IPCP,
//! IPv6CP, CCP, datagrams), and [`Link`] one of each. [`pppoe`] runs links over PPPoE sessions.
//!
//! # Run loop
//!
//! Every machine here speaks the verbs of [`Machine`]: feed input (`handle_input`,
//! `handle_timeout`, `open`, `close`, `up`, `down`, answers such as `provide_secret`), then drain
//! `poll_transmit`, `poll_event` and `poll_datagram` until they return `None`, then sleep until
//! `poll_timeout` or the next input. [`Link`] has a complete example with two links in memory.
//!
//! ```no_run
//! use std::time::Instant;
//! use ppp_link::auth::{AuthProtocol, ClientCredentials};
//! use ppp_link::{Link, LinkConfig, LinkEvent, Random};
//!
//! # fn read_line() -> Vec<u8> { Vec::new() }
//! # fn write_line(_: &[u8]) {}
//! # fn sleep_until(_: Option<Instant>) {}
//! # fn ask_radius(_: &ppp_link::auth::SecretRequest) -> Option<ppp_link::auth::SecretEntry> { None }
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = LinkConfig::default();
//! // We answer CHAP or PAP as "alice", and require the peer to prove itself with MS-CHAPv2.
//! config.lcp.allow = vec![AuthProtocol::ChapMd5, AuthProtocol::Pap];
//! config.lcp.require = vec![AuthProtocol::MsChapV2];
//! config.auth.credentials = Some(ClientCredentials::password("alice", "correct horse"));
//! let mut link = Link::new(config, Random::from_os()?);
//! link.open(Instant::now());
//! link.up(Instant::now()); // the serial line is connected
//! loop {
//!     while let Some(bytes) = link.poll_transmit() {
//!         write_line(&bytes);
//!     }
//!     while let Some(event) = link.poll_event() {
//!         match event {
//!             LinkEvent::SecretNeeded(request) => {
//!                 // Async backends (RADIUS) answer later; the link waits in Authenticate.
//!                 let entry = ask_radius(&request);
//!                 link.provide_secret(Instant::now(), request.token, entry)?;
//!             }
//!             LinkEvent::IpUp { local, peer, .. } => {
//!                 println!("local IP address {local}, remote IP address {peer}");
//!             }
//!             LinkEvent::LinkDown { reason } => {
//!                 println!("link down: {reason}");
//!                 return Ok(());
//!             }
//!             _ => {}
//!         }
//!     }
//!     while let Some(datagram) = link.poll_datagram() {
//!         // hand it to the TUN device
//!         # let _ = datagram;
//!     }
//!     sleep_until(link.poll_timeout()); // or until bytes arrive
//!     let now = Instant::now();
//!     link.handle_timeout(now);
//!     link.handle_input(now, &read_line());
//! }
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod auth;
pub mod control;
mod framer;
mod link;
mod multilink;
pub mod network;
pub mod pppoe;
mod reason;
mod table;

pub use control::{ControlEvent, LinkControl, Received};
pub use link::{CapturedPacket, Datagram, Framing, Link, LinkConfig, LinkEvent, Phase};
pub use multilink::{Multilink, MultilinkEvent};
pub use network::{Handled, NetworkEvent, NetworkLayer, NetworkStats};
pub use ppp_auth::AuthError;
pub use ppp_core::{CloseReason, Machine, Random};
pub use ppp_mp::BundleKey;
pub use reason::{AuthFailure, AuthSide, DownReason, MultilinkRefusal};
pub use table::{LinkTable, TableEvent, UnitId};

use ppp_frame::{DecoderStats, Protocol};

/// Why the link refused a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The NCP for this datagram protocol is not Opened.
    #[error("{0} is not up")]
    NotReady(Protocol),
    /// The datagram is longer than the link's MTU.
    #[error("datagram of {len} bytes exceeds the MTU of {mtu}")]
    TooBig {
        /// Its length.
        len: usize,
        /// The MTU.
        mtu: usize,
    },
}

/// Counters of a link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkStats {
    /// Frames received and delivered to a protocol (or rejected).
    pub frames_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Information-field bytes received.
    pub bytes_in: u64,
    /// Information-field bytes sent.
    pub bytes_out: u64,
    /// IP datagrams received.
    pub datagrams_in: u64,
    /// IP datagrams sent.
    pub datagrams_out: u64,
    /// Packets silently discarded: NCP packets before the Network phase, datagrams before their
    /// NCP is Opened, anything but LCP before LCP is Opened.
    pub discarded: u64,
    /// Protocol-Rejects sent for protocols we do not run.
    pub protocol_rejects_sent: u64,
    /// Sync frames that did not parse.
    pub bad_frames: u64,
    /// The async decoder's counters (bad FCS, runts, too long, aborted, ...).
    pub framing: DecoderStats,
}
