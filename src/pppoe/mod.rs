//! What the two PPPoE programs (`examples/pppoe-client.rs` and
//! `examples/access-concentrator.rs`) share: their TOML configuration files and how they turn
//! into runtime options, the session policy of the access concentrator (profiles and address
//! pools, from [`crate::profile`]), the unix control socket behind `monitor` and `sessions`,
//! and the RouterOS-style text those print.
//!
//! The runtimes themselves are in [`ppp_tokio::pppoe`]; this module only translates what a user
//! writes into their options and their snapshots into text.

pub mod config;
pub mod control;
pub mod format;
pub mod policy;

/// Errors of the programs' configuration.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML did not parse or has unknown keys.
    Parse {
        /// The file.
        path: String,
        /// What the parser said.
        message: String,
    },
    /// A value is not acceptable.
    Invalid {
        /// The key.
        key: String,
        /// Why.
        message: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(key: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

impl From<crate::profile::InvalidSetting> for ConfigError {
    fn from(invalid: crate::profile::InvalidSetting) -> Self {
        ConfigError::Invalid {
            key: invalid.key,
            message: invalid.message,
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Read { path, source } => write!(f, "reading {path}: {source}"),
            ConfigError::Parse { path, message } => write!(f, "parsing {path}: {message}"),
            ConfigError::Invalid { key, message } => write!(f, "{key}: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}
