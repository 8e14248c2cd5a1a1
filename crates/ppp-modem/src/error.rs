//! The crate's error type.

use std::time::Duration;

use crate::response::FinalResult;

/// Why a call attempt failed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallFailure {
    /// `BUSY`.
    Busy,
    /// `NO CARRIER` (no connection could be made).
    NoCarrier,
    /// `NO ANSWER`.
    NoAnswer,
    /// `NO DIALTONE`.
    NoDialtone,
    /// Another final result, such as `ERROR` or `+CME ERROR: 30`.
    Other(FinalResult),
}

impl CallFailure {
    /// The failure a final result code stands for.
    pub fn from_final(result: &FinalResult) -> Self {
        match result {
            FinalResult::Busy => Self::Busy,
            FinalResult::NoCarrier => Self::NoCarrier,
            FinalResult::NoAnswer => Self::NoAnswer,
            FinalResult::NoDialtone => Self::NoDialtone,
            other => Self::Other(other.clone()),
        }
    }
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Busy => f.write_str("BUSY"),
            Self::NoCarrier => f.write_str("NO CARRIER"),
            Self::NoAnswer => f.write_str("NO ANSWER"),
            Self::NoDialtone => f.write_str("NO DIALTONE"),
            Self::Other(result) => write!(f, "{result}"),
        }
    }
}

/// Everything that can go wrong in this crate. Command texts in errors never contain secrets
/// (a PIN is shown as `<hidden>`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModemError {
    /// A command got no final result code within its timeout.
    #[error("no final result for {command:?} within its timeout")]
    Timeout {
        /// The command, as logged.
        command: String,
    },
    /// A command ended with a final result other than the one expected.
    #[error("{command:?} failed: {result}")]
    CommandFailed {
        /// The command, as logged.
        command: String,
        /// The final result code received.
        result: FinalResult,
    },
    /// A queued or in-flight command was cancelled (by a hang-up or `cancel_all`).
    #[error("{command:?} was cancelled")]
    Cancelled {
        /// The command, as logged.
        command: String,
    },
    /// The command queue is full.
    #[error("the command queue is full ({limit} commands)")]
    QueueFull {
        /// The configured limit.
        limit: usize,
    },
    /// The operation is not possible in the current state (for example queueing a command online).
    #[error("{operation} is not possible while {state}")]
    InvalidState {
        /// What was attempted.
        operation: &'static str,
        /// The state it was attempted in.
        state: &'static str,
    },
    /// The configuration is unusable.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// The SIM needs a PIN and none is configured.
    #[error("the SIM needs a PIN and none is configured")]
    PinRequired,
    /// The SIM rejected the PIN (`+CME ERROR: 16`, incorrect password).
    #[error("the SIM rejected the PIN")]
    WrongPin,
    /// The SIM is blocked and needs its PUK.
    #[error("the SIM is blocked (SIM PUK)")]
    PukRequired,
    /// The SIM asks for a code this crate cannot give (e.g. `PH-SIM PIN`).
    #[error("the SIM asks for {code:?}")]
    UnsupportedPinState {
        /// The `+CPIN:` code.
        code: String,
    },
    /// The network denied registration (`<stat>` 3).
    #[error("network registration denied")]
    RegistrationDenied,
    /// No registration within the configured time.
    #[error("not registered after {waited:?}")]
    RegistrationTimeout {
        /// How long was waited.
        waited: Duration,
    },
    /// The call attempt failed.
    #[error("call failed: {reason}")]
    CallFailed {
        /// Why.
        reason: CallFailure,
    },
    /// A chat script has a syntax error.
    #[error("chat script, word {word}: {message}")]
    ChatSyntax {
        /// The 1-based index of the offending word.
        word: usize,
        /// What is wrong.
        message: String,
    },
    /// A chat script uses a keyword or escape this crate does not support.
    #[error("chat script: {feature} is not supported")]
    ChatUnsupported {
        /// The keyword or escape.
        feature: String,
    },
    /// A chat script's ABORT string was received.
    #[error("chat script aborted on {matched:?}")]
    ChatAborted {
        /// The ABORT string that matched.
        matched: String,
    },
    /// A chat script's expect string did not arrive in time (and no alternative was left).
    #[error("chat script timed out waiting for {expect:?}")]
    ChatTimeout {
        /// The expect string.
        expect: String,
    },
}
