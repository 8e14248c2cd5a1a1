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
//! `poll_timeout` (or until the next packet arrives):
//!
//! ```no_run
//! use std::time::Instant;
//! use ppp_lcp::{Lcp, LcpConfig, LcpEvent};
//!
//! # fn receive_lcp_packet(_deadline: Option<Instant>) -> Option<Vec<u8>> { None }
//! # fn send_lcp_packet(_information: &[u8]) {}
//! let seed = 0x5eed; // from the application's seedable RNG
//! let mut lcp = Lcp::with_seed(LcpConfig::default(), seed);
//! lcp.open(Instant::now());
//! lcp.up(Instant::now()); // the serial line or PPPoE session is ready
//! loop {
//!     while let Some(information) = lcp.poll_transmit() {
//!         send_lcp_packet(&information); // a PPP frame with protocol 0xC021
//!     }
//!     while let Some(event) = lcp.poll_event() {
//!         match event {
//!             LcpEvent::Up(negotiated) => println!("LCP up, MTU {}", negotiated.mtu),
//!             LcpEvent::Finished { reason } => {
//!                 println!("LCP finished: {reason}");
//!                 return;
//!             }
//!             _ => {}
//!         }
//!     }
//!     // Wait for a packet, at most until the next deadline.
//!     match receive_lcp_packet(lcp.poll_timeout()) {
//!         Some(packet) => lcp.handle_input(Instant::now(), &packet),
//!         None => lcp.handle_timeout(Instant::now()),
//!     }
//! }
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
pub use error::Error;
pub use fsm::{
    ControlProtocol, Fsm, FsmConfig, FsmCounters, FsmEvent, NegotiationFailure, OtherCode,
    RequestVerdict, State,
};
pub use lcp::{
    AuthProtocol, EndpointDiscriminator, FcsAlternatives, Lcp, LcpConfig, LcpEvent, LcpNegotiated,
    LcpOptionType, LcpProtocol, SplitMix64, describe_lcp_options,
};
pub use options::{RawOption, iter_options, push_option, validate_options};
pub use packet::{Code, ControlPacket};
