//! The dial-out program (`examples/dial-out.rs`) as a library: a RouterOS-style
//! `ppp-client` for serial modems (cellular or analog) and its `ppp-server` counterpart.
//!
//! - [`config`]: the TOML/CLI settings ([`ClientConfig`], [`ServerConfig`]) and their
//!   translation into the stack's configurations.
//! - [`client`]: [`run_client`], the dial / PPP / hang-up / redial loop.
//! - [`server`]: [`run_server`], answering calls and authenticating callers.
//! - [`status`]: the `monitor` values and the control socket.
//! - [`net`]: the TUN device, addresses, default route and `resolv.conf` for a running link.
//!
//! Both loops are generic over the line (`AsyncRead + AsyncWrite +`
//! [`ModemControl`](ppp_tokio::serial::ModemControl)), so the tests run them over in-memory
//! pipes with a simulated modem in the middle (see `ppp_tokio::serial::bridge_modem`).

pub mod client;
pub mod config;
pub mod net;
pub mod server;
pub mod status;

pub use client::{ClientEvent, ClientExit, ClientIo, ClientOptions, run_client};
pub use config::{ClientConfig, Profile, ServerConfig, UseEncryption};
pub use server::{ServerEvent, ServerIo, run_server};
pub use status::{SharedStatus, Status};

use std::fmt;

/// Everything that ends the dial-out program or the server.
#[derive(Debug)]
#[non_exhaustive]
pub enum DialOutError {
    /// The configuration is unusable.
    Config(String),
    /// The serial line or the modem failed in a way retrying will not fix (or `max-fail` was
    /// reached).
    Serial(ppp_tokio::serial::SerialError),
    /// The link failed after `CONNECT` and no retry is left.
    Link(String),
    /// An I/O error (pcap file, TUN device, control socket).
    Io(std::io::Error),
}

impl fmt::Display for DialOutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DialOutError::Config(reason) => write!(f, "configuration: {reason}"),
            DialOutError::Serial(error) => write!(f, "{error}"),
            DialOutError::Link(reason) => write!(f, "link failed: {reason}"),
            DialOutError::Io(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for DialOutError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DialOutError::Serial(error) => Some(error),
            DialOutError::Io(error) => Some(error),
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
