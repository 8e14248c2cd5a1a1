//! Events, shared by every machine in this crate, and the common verb trait.

use ppp_core::Machine;

use crate::engine::{CommandId, CommandOutcome};
use crate::error::ModemError;
use crate::response::{InfoResponse, Registration};
use crate::status::ModemStatus;

/// An unsolicited result code: something the modem said on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Urc {
    /// `RING` / `+CRING`: an incoming call.
    Ring,
    /// An unsolicited `+CREG`/`+CGREG`/`+CEREG` (registration change).
    Registration(Registration),
    /// `NO CARRIER` outside any command (for example after an answered call failed).
    NoCarrier,
    /// Any other line that arrived with no command in flight (or an information response that
    /// does not belong to the command in flight).
    Info(InfoResponse),
}

/// Why an online connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The modem reported `NO CARRIER` (the remote end or the network dropped the call).
    NoCarrier,
    /// Our hang-up completed (`ATH` answered, or DTR was dropped and raised again).
    HangUp,
    /// Our hang-up was attempted but the modem did not confirm `ATH`; it may still be online
    /// (dropping DTR is the next step).
    HangUpUnconfirmed,
    /// The adapter reported that carrier (DCD) was lost.
    CarrierLost,
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DisconnectReason::NoCarrier => "NO CARRIER",
            DisconnectReason::HangUp => "hung up",
            DisconnectReason::HangUpUnconfirmed => "hang-up not confirmed by the modem",
            DisconnectReason::CarrierLost => "carrier (DCD) lost",
        })
    }
}

/// Something for the application: the output of `poll_event` on every machine in this crate.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModemEvent {
    /// A command queued with `enqueue` finished: its outcome, or why there is none.
    CommandDone {
        /// The id `enqueue` returned.
        id: CommandId,
        /// The command text as logged (secrets hidden).
        command: String,
        /// The final result and information lines, or the timeout/cancellation.
        result: Result<CommandOutcome, ModemError>,
    },
    /// An unsolicited result code.
    Urc(Urc),
    /// The modem is online: from now on the serial bytes are the PPP stream.
    Connected {
        /// The rate from `CONNECT <rate>`, if it had one.
        rate: Option<u32>,
        /// The whole text after `CONNECT`, if any.
        text: Option<String>,
        /// Bytes that followed the `CONNECT` line in the same chunk: the start of the PPP stream.
        /// (If a chunk ended between the line's CR and LF, the next chunk starts with that LF;
        /// PPP discards anything before its first flag.)
        initial_data: Vec<u8>,
    },
    /// The online connection ended; the machine is back in command mode (or idle).
    Disconnected {
        /// Why.
        reason: DisconnectReason,
    },
    /// The adapter should set the DTR line to this level (false = drop DTR, a hang-up).
    SetDtr(bool),
    /// The adapter should send a break on the serial line (a chat script's `BREAK`).
    SendBreak,
    /// A sequence (dial, answer, chat script) failed; the machine stopped.
    Failed(ModemError),
    /// The values in the [`ModemStatus`] changed.
    StatusUpdated(ModemStatus),
    /// A chat script's `SAY` text, for the user.
    Say(String),
}

/// The verbs every machine in this crate has, so adapters and test harnesses can drive any of
/// them. Each type also has the same methods inherently.
///
/// The run loop: feed input with `handle_input` (bytes from the serial port, in chunks of any
/// size) and `handle_timeout` (when the clock passes `poll_timeout`); after each, write every
/// `poll_transmit` buffer to the port and handle every `poll_event` until both return `None`, then
/// wait for input or `poll_timeout`.
pub trait ModemDriver: Machine<Event = ModemEvent> {
    /// Whether the modem is online (the serial bytes are the PPP stream).
    fn is_online(&self) -> bool;
}

/// Implements [`Machine`] and [`ModemDriver`] by delegating to the inherent methods of the same names.
macro_rules! impl_modem_driver {
    ($ty:ty) => {
        impl ppp_core::Machine for $ty {
            type Event = $crate::event::ModemEvent;

            fn handle_input(&mut self, now: std::time::Instant, bytes: &[u8]) {
                <$ty>::handle_input(self, now, bytes)
            }
            fn handle_timeout(&mut self, now: std::time::Instant) {
                <$ty>::handle_timeout(self, now)
            }
            fn poll_transmit(&mut self) -> Option<Vec<u8>> {
                <$ty>::poll_transmit(self)
            }
            fn poll_event(&mut self) -> Option<$crate::event::ModemEvent> {
                <$ty>::poll_event(self)
            }
            fn poll_timeout(&self) -> Option<std::time::Instant> {
                <$ty>::poll_timeout(self)
            }
        }

        impl $crate::event::ModemDriver for $ty {
            fn is_online(&self) -> bool {
                <$ty>::is_online(self)
            }
        }
    };
}
pub(crate) use impl_modem_driver;
