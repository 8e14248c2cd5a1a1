//! PPP authentication, sans-IO: PAP (RFC 1334), CHAP with MD5 (RFC 1994), MS-CHAP (RFC 2433)
//! and MS-CHAP-V2 (RFC 2759), each in both roles, plus the MPPE key derivation of RFC 3079.
//!
//! - [`Authenticatee`] proves our identity to the peer; [`Authenticator`] checks the peer's. Each
//!   is built for one negotiated [`AuthProtocol`] (LCP's Authentication-Protocol option, see
//!   [`AuthProtocol::option_data`]) and speaks the stack's verbs: `start(now)`,
//!   `handle_input(now, info_field)`, `handle_timeout(now)`, then drain `poll_transmit()`
//!   (information fields of [`protocol()`](Authenticator::protocol), PAP or CHAP) and
//!   `poll_event()`, and sleep until `poll_timeout()`. [`status()`](Authenticator::status) says
//!   where things stand.
//! - Time and randomness come in from outside: every call takes `now`, challenges, identifiers
//!   and the MS-CHAP-V2 peer challenge come from the [`Random`] given at construction
//!   (`Random::from_os()` in programs). A seeded one makes every run reproducible.
//! - The authenticator never looks secrets up itself: it emits [`AuthEvent::SecretNeeded`] and
//!   waits for [`Authenticator::provide_secret`]. The caller resolves the request however it
//!   likes, typically with an async [`SecretsBackend`] such as [`SecretsTable`] (which also reads
//!   pppd's `chap-secrets`/`pap-secrets` files and gives the address to assign the peer).
//! - Or, with [`AuthenticatorConfig::external`], it never sees a secret: it emits
//!   [`AuthEvent::VerifyNeeded`] with the peer's [`Proof`] and takes a [`Verdict`] back with
//!   [`Authenticator::provide_verdict`] (a RADIUS server decides, through `ppp-radius`); the
//!   verdict's message, MS-CHAP-V2 authenticator response and MPPE keys reach the peer and
//!   the link. See [`external`].
//! - Secrets live in [`Secret`], zeroized on drop and printed as `Secret(***)`; PAP passwords and
//!   CHAP responses are compared in constant time. The debug logs are pppd-like
//!   (`sent [PAP AuthReq id=0x1 user="alice" password=<hidden>]`) and never show a password, a
//!   response value or an MS-CHAP-V2 authenticator response.
//! - [`wire`] has the PAP and CHAP packets ([`parse_pap_packet`] and [`parse_chap_packet`] are
//!   the fuzzing entry points), [`crypto`] the RFC hash functions, [`mppe_keys`] the RFC 3079
//!   key derivation, and after an MS-CHAP success both machines expose the
//!   [`MsChapKeyMaterial`] MPPE needs.
//!
//! # Example
//!
//! Both roles in one process, packets shuttled by hand (a link would carry them in PPP frames of
//! protocol `protocol()`), the secret looked up in a pppd-format table:
//!
//! ```
//! use std::time::Instant;
//! use ppp_auth::{
//!     AuthEvent, AuthProtocol, AuthStatus, Authenticatee, AuthenticateeConfig, Authenticator,
//!     AuthenticatorConfig, Credentials, Random, SecretsTable,
//! };
//!
//! let secrets = SecretsTable::parse_pppd("alice  server  \"correct horse\"  192.0.2.2\n")?;
//! // Programs use `Random::from_os()`; a seeded generator replays a run byte for byte.
//! let rng = Random::seeded;
//! let method = AuthProtocol::MsChapV2;
//! let mut server = Authenticator::new(method, AuthenticatorConfig::new("server"), rng(1));
//! let mut client = Authenticatee::new(
//!     method,
//!     Credentials::new("alice", "correct horse"),
//!     AuthenticateeConfig::default(),
//!     rng(2),
//! );
//!
//! let now = Instant::now();
//! server.open(now);
//! client.open(now);
//! // The run loop: feed input, then drain every poll_* until it is empty.
//! for _ in 0..4 {
//!     while let Some(packet) = server.poll_transmit() {
//!         client.handle_input(now, &packet);
//!     }
//!     while let Some(packet) = client.poll_transmit() {
//!         server.handle_input(now, &packet);
//!     }
//!     while let Some(event) = server.poll_event() {
//!         if let AuthEvent::SecretNeeded(request) = event {
//!             // In async code: `request.resolve(&backend).await`.
//!             let entry = secrets.lookup_now(&request.client, &request.server);
//!             server.provide_secret(now, request.token, entry.map(|e| e.secret.clone()))?;
//!         }
//!     }
//! }
//! assert_eq!(server.status(), &AuthStatus::Succeeded);
//! assert_eq!(client.status(), &AuthStatus::Succeeded);
//! assert_eq!(server.peer_name(), Some("alice"));
//! // MPPE keys derive from the same material on both sides.
//! let (client_send, _) = client.key_material().unwrap().start_keys();
//! let (_, server_receive) = server.key_material().unwrap().start_keys();
//! assert_eq!(client_send, server_receive);
//! // Between calls, sleep until the soonest deadline (retransmissions, timeouts, re-challenges).
//! let _next = server.poll_timeout().into_iter().chain(client.poll_timeout()).min();
//! # Ok::<(), ppp_auth::AuthError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod authenticatee;
mod authenticator;
mod common;
pub mod crypto;
mod error;
pub mod external;
#[cfg(test)]
mod external_tests;
#[cfg(test)]
mod machine_tests;
mod method;
pub mod mppe_keys;
pub mod secret;
pub mod wire;

pub use authenticatee::Authenticatee;
pub use authenticator::Authenticator;
pub use common::{
    AuthEvent, AuthStatus, AuthenticateeConfig, AuthenticatorConfig, Credentials, FailureReason,
    MsChapFailure, SecretRequest, SecretToken,
};
pub use error::AuthError;
pub use external::{
    Acceptance, ExternalKeys, Proof, Rejection, Verdict, Verification, VerifyRequest,
};
pub use method::{AuthProtocol, CHAP_MD5, CHAP_MICROSOFT_V1, CHAP_MICROSOFT_V2};
pub use mppe_keys::MsChapKeyMaterial;
pub use ppp_core::{Machine, Random};
pub use secret::{AllowedAddress, Secret, SecretEntry, SecretsBackend, SecretsTable};
pub use wire::{ChapCode, ChapPacket, PapCode, PapPacket, parse_chap_packet, parse_pap_packet};
