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
//!   nothing), random unique session ids, `max_sessions`, one session per host, PADO delay,
//!   optional manual accept of each session, PADT on close and shutdown, a session table.
//! - [`session`]: 0x8864 frames ⇄ PPP frames, and the MRU/MTU rule; [`mss`]: MSS clamping.
//!
//! Nothing here reads the clock, sleeps or touches a socket: frames and [`Instant`](std::time::Instant)s go in,
//! frames, events and deadlines come out, and randomness (Host-Uniq, session ids, the cookie
//! key) comes from an injected generator, so every run is reproducible from a seed. No input
//! makes anything panic.
//!
//! # Run loop
//!
//! Every state machine here has the same verbs. After each input, drain `poll_transmit` and
//! `poll_event` until they return `None`, then sleep until `poll_timeout` (or the next frame):
//!
//! ```no_run
//! use std::time::Instant;
//! use pppoe_discovery::{Client, ClientConfig, ClientEvent, MacAddr};
//!
//! # fn send(_: &[u8]) {}
//! # fn receive_until(_: Option<Instant>) -> Option<Vec<u8>> { None }
//! let mac = MacAddr([0x02, 0, 0, 0, 0, 1]);
//! let config = ClientConfig { service_name: "internet".into(), ..ClientConfig::default() };
//! let mut client = Client::with_seed(config, mac, 42);
//! client.start(Instant::now());
//! loop {
//!     while let Some(frame) = client.poll_transmit() {
//!         send(&frame); // a whole Ethernet frame, for an AF_PACKET socket
//!     }
//!     while let Some(event) = client.poll_event() {
//!         match event {
//!             ClientEvent::SessionUp { session_id, ac_mac, .. } => {
//!                 println!("session {session_id:#06x} with {ac_mac}");
//!             }
//!             ClientEvent::SessionDown { .. } | ClientEvent::Failed { .. } => return,
//!             _ => {}
//!         }
//!     }
//!     let deadline = client.poll_timeout();
//!     match receive_until(deadline) {
//!         Some(frame) => client.handle_input(Instant::now(), &frame),
//!         None => client.handle_timeout(Instant::now()),
//!     }
//! }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod ac;
mod client;
mod cookie;
mod error;
pub mod mss;
pub mod session;
pub mod wire;

#[cfg(test)]
mod sim_tests;

pub use ac::{
    AcConfig, AcEvent, AcSession, AcSessionState, AcStats, AccessConcentrator, DownReason,
};
pub use client::{
    Client, ClientConfig, ClientEvent, ClientSession, ClientStats, FailReason, ScanResult,
    TerminateReason,
};
pub use cookie::COOKIE_LEN;
pub use error::Error;
pub use session::{SessionFrame, SessionMtu, decapsulate, encapsulate, write_session_header};
pub use wire::{Code, DiscoveryRepr, MacAddr, Packet, Tag, TagType};

/// A source of random 64-bit numbers, injected so runs are reproducible (e.g.
/// `move || rng.next_u64()` over a seeded generator, or the OS generator in production).
pub type RandomSource = Box<dyn FnMut() -> u64 + Send>;

/// A small seedable generator (SplitMix64), used by the `with_seed` constructors.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub const fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
