//! PPPoE (RFC 2516) discovery and session framing, sans-IO: the wire codec, a client and an
//! access concentrator, plus the session-stage helpers (encapsulation, MTU rule, TCP MSS
//! clamping).
//!
//! - [`wire`]: Ethernet + PPPoE headers and every RFC 2516 / RFC 4638 tag, as a view
//!   ([`Packet`]) and an owned representation ([`DiscoveryRepr`]) that parse and emit
//!   symmetrically.
//! - [`Client`]: PADI (with retries and exponential backoff) → PADO (choice by AC name and
//!   service) → PADR (with retries) → PADS → session, PADT both ways, RFC 4638 PPP-Max-Payload,
//!   and a scan mode listing every AC that answers.
//! - [`AccessConcentrator`]: several services, stateless AC-Cookies (a PADI flood allocates
//!   nothing and keeps nothing), random unique session ids, `max_sessions`, one session per host,
//!   PADO delay, optional manual accept of each session, PADT on close, PADI rate limits per MAC
//!   and overall, rate-limited PADTs for session frames of unknown sessions (so clients notice a
//!   restart at once), bounded queues, and a session table with no per-frame scan and about a
//!   hundred bytes a session.
//! - [`session`]: 0x8864 frames ⇄ PPP frames, and the MRU/MTU rule; [`mss`]: MSS clamping.
//!
//! Nothing here reads the clock, sleeps or touches a socket: frames and
//! [`Instant`](std::time::Instant)s go in, frames, events and deadlines come out, and everything
//! unpredictable (Host-Uniq, session ids, the cookie key, the rate limiters' hash keys) comes from
//! the one injected [`ppp_core::Random`]: `Random::from_os()` in
//! programs, [`Random::seeded`](ppp_core::Random::seeded) in tests and simulations, so every run
//! of those is reproducible from a seed. No input makes anything panic, and every queue is
//! bounded.
//!
//! # The verbs
//!
//! [`Client`] and [`AccessConcentrator`] speak the verbs of [`ppp_core`] and implement
//! [`ppp_core::Machine`]:
//!
//! | | [`Client`] | [`AccessConcentrator`] |
//! |---|---|---|
//! | construct | `new(config, mac, random)` | `new(config, mac, random)` (answers from then on) |
//! | open | `open(now)`: PADI; `scan(now, window)` | `open(now)`: answer again after `close` |
//! | close | `close(now, reason)`: PADT | `close(now, reason)`: PADT to every session, stop answering; `close_session(now, id, reason)` |
//! | input | `handle_input(now, frame)` | `handle_input(now, frame)`; `unknown_session(now, mac, id)` |
//! | time | `handle_timeout(now)`, `poll_timeout()` | `handle_timeout(now)`, `poll_timeout()` |
//! | output | `poll_transmit()`, `poll_event()` → [`DiscoveryEvent`] | `poll_transmit()`, `poll_event()` → [`AcEvent`] |
//!
//! # Run loop
//!
//! After each input, drain `poll_transmit` and `poll_event` until they return `None`, then sleep
//! until `poll_timeout` (or the next frame). A program takes its randomness from the operating
//! system (`Random::from_os`, ppp-core's feature `os`):
//!
//! ```no_run
//! use std::time::Instant;
//! use ppp_core::{CloseReason, Random};
//! use pppoe_discovery::{Client, ClientConfig, DiscoveryEvent, MacAddr};
//!
//! # fn send(_: &[u8]) {}
//! # fn receive_until(_: Option<Instant>) -> Option<Vec<u8>> { None }
//! let mac = MacAddr([0x02, 0, 0, 0, 0, 1]);
//! let config = ClientConfig { service_name: "internet".into(), ..ClientConfig::default() };
//! let mut client = Client::new(config, mac, Random::from_os()?);
//! client.open(Instant::now());
//! loop {
//!     while let Some(frame) = client.poll_transmit() {
//!         send(&frame); // a whole Ethernet frame, for an AF_PACKET socket
//!     }
//!     while let Some(event) = client.poll_event() {
//!         match event {
//!             DiscoveryEvent::SessionUp { session_id, ac_mac, .. } => {
//!                 println!("session {session_id:#06x} with {ac_mac}");
//!             }
//!             DiscoveryEvent::SessionDown { reason, .. } => {
//!                 println!("session down: {reason}");
//!                 return Ok(());
//!             }
//!             DiscoveryEvent::Failed { reason } => {
//!                 println!("discovery failed: {reason}");
//!                 return Ok(());
//!             }
//!             _ => {}
//!         }
//!     }
//!     let deadline = client.poll_timeout();
//!     match receive_until(deadline) {
//!         Some(frame) => client.handle_input(Instant::now(), &frame),
//!         None => client.handle_timeout(Instant::now()),
//!     }
//! #   client.close(Instant::now(), CloseReason::UserRequest);
//! }
//! # Ok::<(), ppp_core::EntropyError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod ac;
mod client;
mod cookie;
mod error;
mod limit;
pub mod mss;
pub mod session;
pub mod wire;

#[cfg(test)]
mod sim_tests;

/// The shared vocabulary this crate's API speaks ([`ppp_core::Random`],
/// [`ppp_core::CloseReason`], [`ppp_core::Machine`]), re-exported for embedders that have no other
/// use for the crate.
pub use ppp_core;

pub use ac::{
    AcConfig, AcEvent, AcGroup, AcMember, AcSession, AcSessionEnd, AcSessionState, AcStats,
    AccessConcentrator,
};
pub use client::{
    Client, ClientConfig, ClientSession, ClientSessionEnd, ClientStats, DeclineReason,
    DeclinedOffer, DiscoveryEvent, DiscoveryFailure, ScanResult,
};
pub use cookie::COOKIE_LEN;
pub use error::DiscoveryError;
pub use limit::RateLimit;
pub use session::{SessionFrame, SessionMtu, decapsulate, encapsulate, write_session_header};
pub use wire::{Code, DiscoveryRepr, MacAddr, Packet, Tag, TagType};
