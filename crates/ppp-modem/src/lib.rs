//! Sans-IO modem control for PPP over serial lines: the AT command engine, the dial-out and
//! answer sequences, and pppd `chat`-style scripts.
//!
//! - [`response`]: the response grammar (nom). [`parse_response_line`] classifies one line into
//!   a [`FinalResult`] (`OK`, `ERROR`, `+CME ERROR`, `+CMS ERROR`, `NO CARRIER`, `BUSY`,
//!   `NO DIALTONE`, `NO ANSWER`, `CONNECT [text]`), `RING`, or an [`InfoResponse`] (`+CSQ` with
//!   dBm, `+CREG`/`+CGREG`/`+CEREG` in both forms, `+CGATT`, `+CPIN`, `+COPS`, any `+NAME:`,
//!   plain text). Total and panic-free: the entry point for fuzzing.
//! - [`LineReader`]: splits the byte stream into lines in chunks of any size, tolerating NULs,
//!   `\r\r\n` and binary noise; over-long lines are dropped and counted, memory is bounded.
//! - [`AtEngine`]: a queue of [`AtCommand`]s, one in flight, each with its own timeout
//!   ([`ModemError::Timeout`]); echo recognised and skipped; unsolicited codes as [`ModemEvent::Urc`];
//!   at `CONNECT` it hands over ([`ModemEvent::Connected`], with the bytes that followed) and only
//!   watches for `NO CARRIER`; hang-up by `+++` with guard times then `ATH`, or by DTR.
//! - [`Dialer`]: init, SIM PIN, registration polling, APN, dial; [`ModemStatus`] for a monitor
//!   view, refreshed on demand with [`Dialer::refresh_status`] while not online.
//! - [`StatusMonitor`]: the same queries every few seconds on a second AT port.
//! - [`Answerer`]: init, count `RING`s, `ATA`; or a null-modem cable with no AT at all.
//! - [`ChatScript`] / [`ChatRunner`]: the common subset of pppd's `chat`.
//! - `sim` (cargo feature `sim`): a simulated modem and a virtual-time harness for tests.
//!
//! Every machine has the same verbs ([`ModemDriver`]): `handle_input(now, bytes)`,
//! `handle_timeout(now)`, `poll_transmit()`, `poll_event()`, `poll_timeout()`. Nothing here reads
//! a clock, sleeps or touches a port; nothing panics on any input.
//!
//! # Run loop
//!
//! Feed input, then drain `poll_transmit` and `poll_event` until both are empty, then wait for
//! input or until `poll_timeout`. Here the "modem" is a few lines of script answering each
//! command in memory; a program writes to a serial port and reads its answers instead:
//!
//! ```
//! use std::time::Instant;
//! use ppp_modem::{Dialer, DialerConfig, ModemEvent};
//!
//! # fn main() -> Result<(), ppp_modem::ModemError> {
//! let mut dialer = Dialer::new(DialerConfig::cellular(Some("internet")))?;
//! let now = Instant::now();
//! dialer.open(now)?;
//! let mut first_ppp_bytes = None;
//! while first_ppp_bytes.is_none() {
//!     let mut answers = Vec::new();
//!     while let Some(bytes) = dialer.poll_transmit() {
//!         // What a cellular modem answers to each command.
//!         let command = String::from_utf8_lossy(&bytes).into_owned();
//!         answers.push(if command.starts_with("AT+CPIN?") {
//!             "\r\n+CPIN: READY\r\n\r\nOK\r\n"
//!         } else if command.starts_with("AT+CREG?") || command.starts_with("AT+CEREG?") {
//!             "\r\n+CREG: 0,1\r\n\r\nOK\r\n"
//!         } else if command.starts_with("ATD") {
//!             "\r\nCONNECT 150000000\r\n~\x7d#"
//!         } else {
//!             "\r\nOK\r\n"
//!         });
//!     }
//!     while let Some(event) = dialer.poll_event() {
//!         match event {
//!             // From here on the port carries PPP; `initial_data` is its first bytes.
//!             ModemEvent::Connected { initial_data, rate, .. } => {
//!                 assert_eq!(rate, Some(150_000_000));
//!                 first_ppp_bytes = Some(initial_data);
//!             }
//!             ModemEvent::Failed(error) => return Err(error),
//!             _ => {} // status, command results, DTR requests
//!         }
//!     }
//!     for answer in answers {
//!         dialer.handle_input(now, answer.as_bytes());
//!     }
//! }
//! assert!(dialer.is_online());
//! # Ok(())
//! # }
//! ```
//!
//! While online, keep giving the received bytes to `handle_input` as well as to PPP so that a
//! `NO CARRIER` line ends the call with [`ModemEvent::Disconnected`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod answer;
pub mod chat;
pub mod dialer;
pub mod engine;
pub mod error;
pub mod event;
pub mod line;
pub mod monitor;
pub mod response;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod status;

pub use answer::{AnswerConfig, Answerer, AnswererState};
pub use chat::{ChatRunner, ChatScript, ChatState};
pub use dialer::{DialTarget, Dialer, DialerConfig, DialerState, PdpType};
pub use engine::{
    AtCommand, AtEngine, CommandId, CommandOutcome, EngineConfig, EngineState, EngineStats, Expect,
    HangupMethod,
};
pub use error::{CallFailure, ModemError};
pub use event::{DisconnectReason, ModemDriver, ModemEvent, Urc};
pub use line::{LineReader, LineStats};
pub use monitor::{MonitorConfig, StatusMonitor};
pub use response::{FinalResult, InfoResponse, ResponseLine, parse_response_line};
pub use status::ModemStatus;
