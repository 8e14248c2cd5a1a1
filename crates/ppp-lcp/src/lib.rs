//! The RFC 1661 option-negotiation automaton and the Link Control Protocol, sans-IO.
//!
//! - [`fsm`]: the automaton of RFC 1661 §4 — the state table as the pure function
//!   [`fsm::transition`], and [`Fsm`], which runs it for any [`ControlProtocol`] (LCP here; IPCP,
//!   IPv6CP and CCP in other crates) with the restart timer and the Max-Configure, Max-Terminate
//!   and Max-Failure counters.
//! - [`options`]: type-length-value option lists shared by every control protocol.
//! - [`packet`]: the Code/Identifier/Length/Data packet layout ([`ControlPacket`], [`Code`]).
//! - [`lcp`]: LCP itself — [`LcpConfig`] (pppd-like options), the option policy
//!   ([`LcpProtocol`]), the values agreed ([`LcpNegotiated`]) and [`Lcp`], which adds the
//!   Echo-Request keepalive, loopback detection and Protocol-Reject handling.
//! - [`describe`]: pppd-style packet summaries (`[LCP ConfReq id=0x1 <mru 1492> <magic 0x5d3c1a2b>]`)
//!   that the automaton logs at debug level through `tracing` as `sent [...]` / `rcvd [...]`.
//!
//! Nothing here reads a clock, sleeps or touches a socket: time comes in as `Instant`s, packets
//! come in as bytes and go out through `poll_transmit`, Magic-Numbers come from an injected
//! random source. The same inputs give the same outputs. No input makes anything panic, and all
//! queues are bounded.
//!
//! # Run loop
//!
//! Feed an input, drain `poll_transmit` and `poll_event` until both return `None`, then sleep until
//! `poll_timeout` (or until the next packet arrives). Here two LCP instances talk to each other in
//! memory:
//!
//! ```
//! use std::time::Instant;
//! use ppp_lcp::{Lcp, LcpConfig, LcpEvent, Random, State};
//!
//! // Programs draw from the OS (`Random::from_os()`, ppp-core's `os` feature); tests use seeds.
//! let mut client = Lcp::new(LcpConfig::default(), Random::seeded(1));
//! let mut server = Lcp::new(LcpConfig { mru: 1400, ..LcpConfig::default() }, Random::seeded(2));
//! let now = Instant::now();
//! for lcp in [&mut client, &mut server] {
//!     lcp.open(now);
//!     lcp.up(now); // the serial line is connected
//! }
//! let mut up = Vec::new();
//! loop {
//!     let mut moved = false;
//!     while let Some(packet) = client.poll_transmit() {
//!         server.handle_input(now, &packet); // protocol 0xC021 on the wire
//!         moved = true;
//!     }
//!     while let Some(packet) = server.poll_transmit() {
//!         client.handle_input(now, &packet);
//!         moved = true;
//!     }
//!     for lcp in [&mut client, &mut server] {
//!         while let Some(event) = lcp.poll_event() {
//!             if let LcpEvent::Up(negotiated) = event {
//!                 up.push(negotiated.mtu);
//!             }
//!         }
//!     }
//!     if !moved {
//!         break; // otherwise: sleep until `poll_timeout()`, then `handle_timeout(now)`
//!     }
//! }
//! assert_eq!((client.state(), server.state()), (State::Opened, State::Opened));
//! assert_eq!(up, [1400, 1500]); // each side's MTU is the other's MRU
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod describe;
mod error;
pub mod fsm;
pub mod lcp;
pub mod options;
pub mod packet;

pub use describe::describe_packet;
pub use error::LcpError;
pub use fsm::{
    ControlProtocol, FinishReason, Fsm, FsmConfig, FsmCounters, FsmEvent, NegotiationFailure,
    OtherCode, RequestVerdict, State,
};
pub use lcp::{
    AuthProtocol, EndpointClass, EndpointDiscriminator, FcsAlternatives, Lcp, LcpConfig, LcpEvent,
    LcpNegotiated, LcpOptionType, LcpProtocol, SharedLcpConfig, describe_lcp_options,
};
pub use options::{RawOption, iter_options, push_option, validate_options};
pub use packet::{Code, ControlPacket};
pub use ppp_core::{CloseReason, Machine, Random};
pub use ppp_frame::Protocol;
