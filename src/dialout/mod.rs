//! The dial-out program (`examples/dial-out.rs`) as a library: a RouterOS-style
//! `ppp-client` for serial modems (cellular or analog) and its `ppp-server` counterpart.
//!
//! - [`config`]: the TOML/CLI settings ([`ClientConfig`], [`ServerConfig`]) and their
//!   translation into the stack's configurations.
//! - [`client`]: [`run_client`], the dial / PPP / hang-up / redial loop.
//! - [`bundle`]: [`run_bundle_client`], several ports in one Multilink bundle, each line dialled
//!   and redialled on its own.
//! - [`server`]: [`run_server`] and [`run_kernel_server`], answering calls and authenticating
//!   callers.
//! - [`multiport`]: [`run_multiport_server`], the server on several ports: calls go into one
//!   `LinkTable`, so a second call of the same peer joins its Multilink bundle.
//! - [`status`]: the `monitor` values and the control socket.
//! - [`net`]: the TUN device, addresses, default route and `resolv.conf` for a running link.
//!
//! Both loops are generic over the line (`AsyncRead + AsyncWrite +`
//! [`ModemControl`](ppp_tokio::serial::ModemControl)), so the tests run them over in-memory
//! pipes with a simulated modem in the middle (see `ppp_tokio::serial::bridge_modem`).

pub mod bundle;
pub mod client;
pub mod config;
pub mod multiport;
pub mod net;
pub mod server;
pub mod status;

pub use bundle::run_bundle_client;
pub use client::{ClientEvent, ClientExit, ClientIo, ClientOptions, run_client, run_kernel_client};
pub use config::{ClientConfig, LineConfig, Profile, ServerConfig, UseEncryption};
pub use multiport::run_multiport_server;
pub use ppp_link::Random;
pub use server::{ServerEvent, ServerExit, ServerIo, ServerOptions, run_kernel_server, run_server};
pub use status::{MemberStatus, SharedStatus, Status};

use std::fmt;

use ppp_link::{CloseReason, DownReason};
use ppp_tokio::serial::SerialError;

use crate::cli::ExitStatus;

/// Why a call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallEnd {
    /// PPP went down.
    Link(DownReason),
    /// The carrier went: `NO CARRIER`, DCD dropped, or the line closed.
    CarrierLost,
    /// No datagram either way for the idle timeout.
    IdleTimeout,
    /// We were told to stop.
    Shutdown,
    /// Reading or writing the serial line failed.
    LineError(String),
}

impl CallEnd {
    /// Why we close the link when the call ends for this reason (our Terminate-Request's words).
    pub fn close_reason(&self) -> CloseReason {
        match self {
            CallEnd::Shutdown => CloseReason::UserRequest,
            CallEnd::IdleTimeout => CloseReason::IdleTimeout,
            other => CloseReason::Other(other.to_string()),
        }
    }

    /// The program's exit status for a call that ended this way; `was_up`: the network phase
    /// was reached (see [`ExitStatus::from_down_reason`]).
    pub fn exit_status(&self, was_up: bool) -> ExitStatus {
        match self {
            CallEnd::Link(reason) => ExitStatus::from_down_reason(reason, was_up),
            CallEnd::CarrierLost | CallEnd::LineError(_) => ExitStatus::HangUp,
            CallEnd::IdleTimeout => ExitStatus::IdleTimeout,
            CallEnd::Shutdown => ExitStatus::Success,
        }
    }
}

impl fmt::Display for CallEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallEnd::Link(reason) => write!(f, "{reason}"),
            CallEnd::CarrierLost => f.write_str("carrier lost"),
            CallEnd::IdleTimeout => f.write_str("idle timeout"),
            CallEnd::Shutdown => f.write_str("shut down"),
            CallEnd::LineError(error) => write!(f, "serial line error: {error}"),
        }
    }
}

/// Everything that ends the dial-out program or the server.
#[derive(Debug)]
#[non_exhaustive]
pub enum DialOutError {
    /// The configuration is unusable.
    Config(String),
    /// The serial line or the modem failed in a way retrying will not fix (or `max-fail` was
    /// reached).
    Serial(ppp_tokio::serial::SerialError),
    /// A call failed after `CONNECT` before the link reached the network phase (or, for
    /// `ServerConfig::once`, the one call ended abnormally), and no retry is left.
    Link(CallEnd),
    /// `max-fail` consecutive attempts failed; the last one for this reason.
    MaxFail {
        /// `max-fail`.
        attempts: u32,
        /// The last failure.
        last: Box<DialOutError>,
    },
    /// An I/O error (pcap file, TUN device, control socket).
    Io(std::io::Error),
    /// `--ping`: not every echo request was answered.
    PingsUnanswered {
        /// Replies received.
        answered: u16,
        /// Requests sent.
        sent: u16,
    },
}

impl fmt::Display for DialOutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DialOutError::Config(reason) => write!(f, "configuration: {reason}"),
            DialOutError::Serial(error) => write!(f, "{error}"),
            DialOutError::Link(reason) => write!(f, "link failed: {reason}"),
            DialOutError::Io(error) => write!(f, "{error}"),
            DialOutError::PingsUnanswered { answered, sent } => {
                write!(f, "{answered} of {sent} pings answered")
            }
            DialOutError::MaxFail { attempts, last } => write!(
                f,
                "giving up after {attempts} consecutive failed attempts (max-fail {attempts}); the last: {last}"
            ),
        }
    }
}

impl DialOutError {
    /// The program's exit status for this error (pppd's numbers, see [`ExitStatus`]).
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            DialOutError::Config(_) => ExitStatus::Options,
            DialOutError::Serial(SerialError::Open { .. }) => ExitStatus::OpenFailed,
            DialOutError::Serial(SerialError::InvalidFlowControl(_)) => ExitStatus::Options,
            DialOutError::Serial(SerialError::Modem(error)) if is_config_error(error) => {
                ExitStatus::Options
            }
            DialOutError::Serial(_) => ExitStatus::ConnectFailed,
            DialOutError::Link(reason) => reason.exit_status(false),
            DialOutError::Io(_) => ExitStatus::Fatal,
            DialOutError::PingsUnanswered { .. } => ExitStatus::PingFailed,
            DialOutError::MaxFail { last, .. } => last.exit_status(),
        }
    }
}

/// A modem "failure" that is really a bad configuration (the init string, the chat script).
fn is_config_error(error: &ppp_modem::ModemError) -> bool {
    matches!(
        error,
        ppp_modem::ModemError::InvalidConfig { .. }
            | ppp_modem::ModemError::ChatSyntax { .. }
            | ppp_modem::ModemError::ChatUnsupported { .. }
    )
}

impl std::error::Error for DialOutError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DialOutError::Serial(error) => Some(error),
            DialOutError::Io(error) => Some(error),
            DialOutError::MaxFail { last, .. } => Some(last.as_ref()),
            _ => None,
        }
    }
}

impl From<std::io::Error> for DialOutError {
    fn from(error: std::io::Error) -> Self {
        DialOutError::Io(error)
    }
}

impl From<ppp_tokio::serial::SerialError> for DialOutError {
    fn from(error: ppp_tokio::serial::SerialError) -> Self {
        DialOutError::Serial(error)
    }
}

impl From<ppp_modem::ModemError> for DialOutError {
    fn from(error: ppp_modem::ModemError) -> Self {
        DialOutError::Serial(ppp_tokio::serial::SerialError::Modem(error))
    }
}
