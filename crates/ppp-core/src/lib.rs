//! The vocabulary every sans-IO core of the PPP stack shares.
//!
//! This crate exists because the cores (`ppp-lcp`, `ppp-ipcp`, `ppp-auth`, `ppp-ccp`,
//! `pppoe-discovery`, `ppp-modem`, `ppp-mp`, `ppp-link`) form a tree whose only common root would
//! otherwise be the framing crate, and none of these belongs there:
//!
//! - [`Machine`]: the verbs every state machine speaks, so one harness, one adapter loop and one
//!   test helper drive any of them;
//! - [`Random`]: the one source of everything an attacker must not guess (magic numbers,
//!   challenges, AC-Cookie keys, session ids, Host-Uniq, interface identifiers);
//! - [`CloseReason`]: why an owner closes a machine, typed, so it reaches Terminate-Requests,
//!   logs, exit codes and accounting records without being turned into a string on the way.
//!
//! # The verbs
//!
//! | verb | meaning |
//! |---|---|
//! | `new(config, ..)` | construct; nothing is sent and no time passes |
//! | `open(now)` | administrative open: start (dial, discover, negotiate) |
//! | `close(now, reason)` | administrative close with a [`CloseReason`] |
//! | `up(now)` / `down(now)` | the lower layer came up / went down (where there is one) |
//! | `handle_input(now, bytes)` | bytes or a frame arrived |
//! | `handle_timeout(now)` | the deadline from `poll_timeout` passed; a spurious call is a no-op |
//! | `poll_transmit()` | the next bytes or frame to send |
//! | `poll_event()` | the next event for the owner |
//! | `poll_timeout()` | when `handle_timeout` should next be called |
//!
//! After every input (`open`, `close`, `up`, `down`, `handle_input`, `handle_timeout`, answers
//! such as `provide_secret`), drain `poll_transmit` and `poll_event` (and any other `poll_*` the
//! machine has) until they return `None`, then wait until `poll_timeout` or the next input.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use ppp_core::{Machine, Random};
//!
//! /// Sends one random token at open and reports what it receives.
//! struct Beacon { random: Random, out: Option<Vec<u8>>, got: Vec<Vec<u8>> }
//! impl Machine for Beacon {
//!     type Event = Vec<u8>;
//!     fn handle_input(&mut self, _now: Instant, input: &[u8]) { self.got.push(input.to_vec()); }
//!     fn handle_timeout(&mut self, _now: Instant) {}
//!     fn poll_transmit(&mut self) -> Option<Vec<u8>> { self.out.take() }
//!     fn poll_event(&mut self) -> Option<Vec<u8>> { self.got.pop() }
//!     fn poll_timeout(&self) -> Option<Instant> { None }
//! }
//!
//! let random = Random::seeded(1); // tests and simulations only; programs use Random::from_os()
//! let mut a = Beacon { random: random.clone(), out: None, got: Vec::new() };
//! let mut b = Beacon { random, out: None, got: Vec::new() };
//! a.out = Some(a.random.u64().to_be_bytes().to_vec());
//! let now = Instant::now();
//! while let Some(bytes) = a.poll_transmit() {
//!     b.handle_input(now, &bytes);
//! }
//! assert_eq!(b.poll_event().map(|e| e.len()), Some(8));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod machine;
mod queue;
mod random;
mod reason;

pub use machine::Machine;
pub use queue::LazyQueue;
pub use random::{EntropyError, Random};
pub use reason::CloseReason;
