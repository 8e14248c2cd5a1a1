//! RADIUS for the PPP stack, sans-IO: the packet codec (RFC 2865, 2866, 2869, 3579, 5176, and
//! the vendor attributes of Microsoft (RFC 2548) and MikroTik), authentication for `ppp-auth`'s
//! external verification, accounting with a spool, and dynamic authorization.
//!
//! # Why a crate of its own
//!
//! RADIUS is not PPP: it is the AAA protocol a NAS speaks with its back end, over UDP, with
//! its own wire format, secrets and state (identifiers, retransmission, failover, a spool).
//! `ppp-auth` must not depend on it (a dial-in server with a secrets file has no use for it),
//! and it does not belong in the adapters either, which hold no protocol logic. So the
//! dependency runs one way: this crate reads `ppp-auth`'s [`VerifyRequest`] and gives back a
//! [`Verdict`], and the link, the access concentrator and the programs wire the two together.
//!
//! # The pieces
//!
//! - [`Packet`], [`Attribute`], [`AttributeType`], [`Code`]: the wire format, parsed and
//!   emitted symmetrically ([`parse_round_trip`] is the fuzzing entry point); [`crypto`]: the
//!   shared-secret cryptography (User-Password hiding, MPPE key encryption, Message- and
//!   Request/Response Authenticators).
//! - [`AccessRequest::new`] turns a `ppp-auth` [`VerifyRequest`] (PAP, CHAP-MD5, MS-CHAP,
//!   MS-CHAP-V2) into an Access-Request; [`AccessAnswer`] turns the verified answer into a
//!   [`Verdict`] (with the Reply-Message, the MS-CHAP2-Success authenticator response and the
//!   MPPE keys) and an [`Authorization`] (Framed-IP-Address, Framed-Pool, Framed-IPv6-Prefix,
//!   Session-Timeout, Idle-Timeout, Acct-Interim-Interval, Class, [`RateLimit`]).
//! - [`RadiusClient`]: the client machine: several servers, retransmission and failover,
//!   identifiers, answers matched and verified (Message-Authenticator required on Access
//!   answers: the 2024 Blast-RADIUS forgery), forged answers dropped and counted; accounting
//!   ([`AccountingRecord`]) with a bounded [`Spool`] for records no server acknowledged.
//! - [`DaeServer`]: Disconnect-Request and CoA-Request (RFC 5176), authenticated, as typed
//!   [`DaeEvent`]s, answered with ACK or NAK and an [`ErrorCause`].
//! - [`limits`]: enforcing what a session was granted: its [`RateLimit`] as token-bucket
//!   [`Shaper`](limits::Shaper)s with RouterOS bursts, its Session-Timeout, Idle-Timeout and
//!   interim-update schedule as a [`SessionClock`](limits::SessionClock).
//!
//! Like every core of the stack it never reads a clock, sleeps or touches a socket: datagrams
//! and `Instant`s in, datagrams, events and deadlines out. `ppp-tokio`'s `radius` module runs
//! it over UDP with a spool on disk. Shared secrets are [`Secret`]s: zeroized on drop, never
//! printed, never logged.
//!
//! # Operating notes
//!
//! - Servers older than FreeRADIUS 3.2.5 put a Message-Authenticator only in answers to EAP;
//!   this client refuses Access answers without one. Add it by policy in `post-auth` (and in
//!   `Post-Auth-Type REJECT`): `update reply { Message-Authenticator := 0x00 }`, and set
//!   `require_message_authenticator = yes` for the NAS in `clients.conf`.
//! - A request fails over after [`ClientConfig::max_transmissions`] ×
//!   [`ClientConfig::retransmit_interval`] per server; `ppp-auth`'s `secret_timeout` (30 s)
//!   must be longer than [`ClientConfig::access_deadline`], and the retransmit interval longer
//!   than the server's `reject_delay` (FreeRADIUS: 1 s).
//! - More than 256 requests in flight to one server need more identifiers:
//!   [`ClientConfig::sockets`] local sockets give 256 each; past that, requests wait in a queue
//!   (bounded by [`ClientConfig::max_queued`]) for an identifier to free up.
//!
//! # The run loop
//!
//! ```no_run
//! # use std::time::Instant;
//! # fn recv() -> (usize, std::net::SocketAddr, Vec<u8>) { unimplemented!() }
//! # fn send(_: usize, _: std::net::SocketAddr, _: &[u8]) {}
//! # let config = ppp_radius::ClientConfig::new(vec![], ppp_radius::NasIdentity::named("ac1"));
//! // Programs and adapters use ppp_core::Random::from_os() (feature "os").
//! let mut client = ppp_radius::RadiusClient::new(config, ppp_core::Random::seeded(1));
//! loop {
//!     // Input: a datagram (or a deadline passed, or a new request).
//!     let (socket, from, bytes) = recv();
//!     client.handle_input(Instant::now(), socket, from, &bytes);
//!     // Drain every output.
//!     while let Some(t) = client.poll_transmit() {
//!         send(t.socket, t.destination, &t.bytes);
//!     }
//!     while let Some(event) = client.poll_event() {
//!         // ClientEvent::Access { request, answer }: authenticator.provide_verdict(..)
//!         let _ = event;
//!     }
//!     // Then sleep until client.poll_timeout() or the next datagram.
//! }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod access;
mod accounting;
pub mod attribute;
mod authorization;
mod client;
pub mod crypto;
mod dae;
mod error;
pub mod limits;
mod macros;
mod packet;
mod spool;

pub use access::{
    AccessAnswer, AccessRequest, FRAMED_PROTOCOL_PPP, NasIdentity, NasPortType,
    SERVICE_TYPE_FRAMED, SessionContext,
};
pub use accounting::{
    AccountingRecord, AcctAuthentic, AcctSessionId, AcctStatusType, Counters, TerminateCause,
};
pub use attribute::{Attribute, AttributeType, VENDOR_MICROSOFT, VENDOR_MIKROTIK, VendorAttribute};
pub use authorization::{Authorization, RateLimit, RxTx};
pub use client::{
    ClientConfig, ClientEvent, ClientStats, DropReason, RadiusClient, RecordId, RequestId,
    ServerConfig, Transmit,
};
pub use crypto::{AuthenticityError, Secret};
pub use dae::{
    Change, DAE_PORT, DaeClient, DaeConfig, DaeDrop, DaeEvent, DaeOutcome, DaeServer, DaeStats,
    DaeToken, DaeTransmit, ErrorCause, SessionIdentity, SessionSelector,
};
pub use error::RadiusError;
pub use packet::{Code, HEADER_LEN, MAX_PACKET_LEN, Packet, parse_round_trip};
pub use ppp_auth::{Verdict, VerifyRequest};
pub use spool::Spool;
