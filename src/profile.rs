//! What the server programs share about their users, with RouterOS's names: `/ppp profile`
//! ([`ProfileConfig`]), `/ppp secret` ([`SecretConfig`]), `/ppp aaa` ([`AaaConfig`]) and
//! `/radius` with `/radius incoming` ([`RadiusConfig`]); and the few words every program reads
//! the same way: [`UseEncryption`], [`UseCompression`], [`UseIpv6`], [`OnlyOne`] and the
//! authentication method names ([`auth_method`]).
//!
//! The access concentrator (`examples/access-concentrator.rs`) and the dial-in server
//! (`dial-out server`) read these; the clients read the `use-*` words. docs/aaa.md describes
//! every key for operators.
//!
//! # One meaning of `use-encryption`
//!
//! As RouterOS, which implements MPPE with 128-bit keys only: `yes` offers stateless MPPE-128
//! and goes on without encryption when the peer refuses (or when the authentication gave no
//! keys: PAP, CHAP-MD5); `required` is MPPE-128 or no link; `no` never encrypts; `default`
//! takes the default profile's setting (and means `no` where there is no default profile: the
//! clients). 40- and 56-bit keys are never offered nor accepted.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use ppp_ccp::{CcpConfig, Encryption};
use ppp_ipcp::Ipv6cpConfig;
use ppp_link::auth::AuthProtocol;
use ppp_radius::{
    ClientConfig, DaeClient, DaeConfig, NasIdentity, RateLimit, Secret, ServerConfig,
};
use ppp_tokio::aaa::{OnlySession, SessionLimits};
use ppp_tokio::radius::ServiceConfig;
use serde::{Deserialize, Deserializer};

/// A setting that is not acceptable: which key, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidSetting {
    /// The key (`profiles.gold.rate-limit`, `radius.servers`, ...).
    pub key: String,
    /// Why.
    pub message: String,
}

impl InvalidSetting {
    /// An invalid `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        InvalidSetting {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for InvalidSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for InvalidSetting {}

/// A password or shared secret from a configuration file; its `Debug` does not show it.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "<hidden>"
        })
    }
}

impl From<String> for Password {
    fn from(password: String) -> Self {
        Password(password)
    }
}

impl From<&str> for Password {
    fn from(password: &str) -> Self {
        Password(password.to_owned())
    }
}

/// Where a client program's own password comes from on its command line. `--password` shows in
/// `ps` and in the shell's history, so the programs also read it from a file (its first line,
/// as pppd's `+ua` file and most secret stores write it) or from an environment variable; at
/// most one of the three may be given, and any of them overrides the configuration file.
///
/// ```
/// use ppp_stack::profile::PasswordSource;
///
/// let dir = std::env::temp_dir().join(format!("password-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let file = dir.join("alice.pass");
/// std::fs::write(&file, "s3cret\n").unwrap();
/// let source = PasswordSource { password_file: Some(file), ..PasswordSource::default() };
/// assert_eq!(source.read().unwrap().unwrap().0, "s3cret");
/// assert!(PasswordSource::default().read().unwrap().is_none());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, clap::Args)]
#[group(multiple = false)]
pub struct PasswordSource {
    /// Our password (visible to every user in `ps`: prefer --password-file, --password-env or
    /// the configuration file).
    #[arg(long, global = true)]
    pub password: Option<String>,
    /// Read our password from the first line of this file (keep it mode 0600).
    #[arg(long, global = true, value_name = "PATH")]
    pub password_file: Option<PathBuf>,
    /// Read our password from this environment variable.
    #[arg(long, global = true, value_name = "VARIABLE")]
    pub password_env: Option<String>,
}

impl PasswordSource {
    /// The password given on the command line, `None` when no source was given. An unreadable
    /// or empty file and an unset or empty variable are errors: a client that silently dialled
    /// with an empty password would only fail later, at the peer, with a less useful message.
    pub fn read(&self) -> Result<Option<Password>, InvalidSetting> {
        if let Some(password) = &self.password {
            return Ok(Some(Password(password.clone())));
        }
        if let Some(path) = &self.password_file {
            let key = "--password-file";
            let text = std::fs::read_to_string(path).map_err(|error| {
                InvalidSetting::new(key, format!("{}: {error}", path.display()))
            })?;
            let line = text.lines().next().unwrap_or_default();
            if line.is_empty() {
                return Err(InvalidSetting::new(
                    key,
                    format!("{}: the first line is empty", path.display()),
                ));
            }
            return Ok(Some(Password(line.to_owned())));
        }
        if let Some(name) = &self.password_env {
            let key = "--password-env";
            return match std::env::var(name) {
                Ok(value) if !value.is_empty() => Ok(Some(Password(value))),
                Ok(_) => Err(InvalidSetting::new(key, format!("{name} is empty"))),
                Err(std::env::VarError::NotPresent) => {
                    Err(InvalidSetting::new(key, format!("{name} is not set")))
                }
                Err(std::env::VarError::NotUnicode(_)) => Err(InvalidSetting::new(
                    key,
                    format!("{name} is not valid UTF-8"),
                )),
            };
        }
        Ok(None)
    }
}

/// RouterOS `use-encryption` (see the module's documentation for its one meaning).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, Hash, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum UseEncryption {
    /// The default profile's setting (`no` without one).
    #[default]
    Default,
    /// No MPPE.
    No,
    /// Stateless MPPE-128 if the peer agrees and the authentication gave keys (MS-CHAP).
    Yes,
    /// Stateless MPPE-128 or no link.
    Required,
}

impl UseEncryption {
    /// `default` replaced by `default_profile`'s setting.
    pub fn or(self, default_profile: UseEncryption) -> UseEncryption {
        if self == UseEncryption::Default {
            default_profile
        } else {
            self
        }
    }
}

/// Reads `yes`/`no`/`default` or a TOML boolean.
fn yes_no_default<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Word {
        Bool(bool),
        Text(String),
    }
    match Word::deserialize(deserializer)? {
        Word::Bool(b) => Ok(Some(b)),
        Word::Text(t) => match t.as_str() {
            "yes" => Ok(Some(true)),
            "no" => Ok(Some(false)),
            "default" => Ok(None),
            other => Err(serde::de::Error::custom(format!(
                "{other:?}: expected yes, no, default or a boolean"
            ))),
        },
    }
}

macro_rules! yes_no_default_enum {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
        pub enum $name {
            /// The default profile's setting (`no` without one).
            #[default]
            Default,
            /// Off.
            No,
            /// On.
            Yes,
        }

        impl $name {
            /// `default` replaced by `default_profile`'s setting.
            pub fn or(self, default_profile: $name) -> $name {
                if self == $name::Default { default_profile } else { self }
            }

            /// Whether it is on (`default` is off).
            pub fn is_yes(self) -> bool {
                self == $name::Yes
            }
        }

        impl From<bool> for $name {
            fn from(on: bool) -> Self {
                if on { $name::Yes } else { $name::No }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            /// `"yes"`, `"no"`, `"default"`, or `true`/`false`.
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Ok(match yes_no_default(deserializer)? {
                    None => $name::Default,
                    Some(on) => $name::from(on),
                })
            }
        }
    };
}

yes_no_default_enum!(
    /// RouterOS `use-compression`: Deflate (never together with MPPE, as pppd).
    UseCompression
);
yes_no_default_enum!(
    /// RouterOS `use-ipv6`: IPv6CP next to IPCP, link-local addresses on the interface (pppd
    /// `+ipv6`). Global addresses are not negotiated by PPP (router advertisements or DHCPv6
    /// over the link do that); a RADIUS Framed-IPv6-Prefix is routed to the session.
    UseIpv6
);

/// RouterOS `only-one`: how many sessions one user may have at once.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum OnlyOne {
    /// The default profile's setting (`no` without one).
    #[default]
    Default,
    /// Any number.
    No,
    /// One: a second login of the same user is refused while the first is up (RouterOS).
    Yes,
    /// One: a second login closes the first (Acct-Terminate-Cause Port-Preempted), for CPEs
    /// that reconnect before their old session timed out.
    Replace,
}

impl OnlyOne {
    /// `default` replaced by `default_profile`'s setting.
    pub fn or(self, default_profile: OnlyOne) -> OnlyOne {
        if self == OnlyOne::Default {
            default_profile
        } else {
            self
        }
    }

    /// What the servers do.
    pub fn to_runtime(self) -> OnlySession {
        match self {
            OnlyOne::Default | OnlyOne::No => OnlySession::Any,
            OnlyOne::Yes => OnlySession::RefuseSecond,
            OnlyOne::Replace => OnlySession::ReplaceFirst,
        }
    }
}

/// An authentication method by name: `pap`; `chap` (`chap-md5`); `mschap1` (`mschap`,
/// `ms-chap`, `mschap-v1`, `ms-chap-v1`); `mschap2` (`mschap-v2`, `mschapv2`, `ms-chap-v2`).
/// Case does not matter.
///
/// # Errors
///
/// Any other name.
pub fn auth_method(name: &str) -> Result<AuthProtocol, InvalidSetting> {
    match name.trim().to_ascii_lowercase().as_str() {
        "pap" => Ok(AuthProtocol::Pap),
        "chap" | "chap-md5" => Ok(AuthProtocol::ChapMd5),
        "mschap1" | "mschap" | "ms-chap" | "mschap-v1" | "ms-chap-v1" => Ok(AuthProtocol::MsChapV1),
        "mschap2" | "mschap-v2" | "mschapv2" | "ms-chap-v2" => Ok(AuthProtocol::MsChapV2),
        other => Err(InvalidSetting::new(
            "authentication",
            format!("unknown method {other:?} (mschap2, mschap1, chap, pap)"),
        )),
    }
}

/// The methods of a list, in order.
///
/// # Errors
///
/// An unknown name.
pub fn auth_methods(names: &[String]) -> Result<Vec<AuthProtocol>, InvalidSetting> {
    names.iter().map(|n| auth_method(n)).collect()
}

/// The CCP configuration for `use-encryption` and `use-compression` (`default` already
/// resolved; it counts as `no`); `None` when neither is on.
pub fn ccp_config(encryption: UseEncryption, compression: UseCompression) -> Option<CcpConfig> {
    let compression = compression.is_yes();
    let mut ccp = match encryption {
        UseEncryption::Default | UseEncryption::No if !compression => return None,
        UseEncryption::Default | UseEncryption::No => CcpConfig::default(),
        UseEncryption::Yes => CcpConfig {
            encryption: Encryption::Yes,
            ..CcpConfig::require_mppe_128()
        },
        UseEncryption::Required => CcpConfig::require_mppe_128(),
    };
    // MPPE and Deflate exclude each other; with `yes`, Deflate is the fallback.
    ccp.compression = compression && encryption != UseEncryption::Required;
    Some(ccp)
}

/// The IPv6CP configuration for `use-ipv6` (`None` when it is off).
pub fn ipv6cp_config(use_ipv6: UseIpv6) -> Option<Ipv6cpConfig> {
    use_ipv6.is_yes().then(Ipv6cpConfig::default)
}

/// A duration: whole seconds (`300`) or RouterOS's time words (`"5m"`, `"1h30m"`, `"1d"`,
/// `"300ms"`, `"10s"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Time(pub Duration);

impl FromStr for Time {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bad = || format!("{text:?} is not a time (300, \"5m\", \"1h30m\", \"300ms\")");
        if text.is_empty() {
            return Err(bad());
        }
        if let Ok(seconds) = text.parse::<u64>() {
            return Ok(Time(Duration::from_secs(seconds)));
        }
        let mut total = Duration::ZERO;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(bad());
            }
            let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let (unit, len) = if rest.starts_with("ms") {
                (Duration::from_millis(1), 2)
            } else {
                match rest.as_bytes().first() {
                    Some(b'w') => (Duration::from_secs(7 * 86_400), 1),
                    Some(b'd') => (Duration::from_secs(86_400), 1),
                    Some(b'h') => (Duration::from_secs(3_600), 1),
                    Some(b'm') => (Duration::from_secs(60), 1),
                    Some(b's') => (Duration::from_secs(1), 1),
                    _ => return Err(bad()),
                }
            };
            rest = &rest[len..];
            let part = unit
                .checked_mul(u32::try_from(value).map_err(|_| bad())?)
                .ok_or_else(bad)?;
            total = total.checked_add(part).ok_or_else(bad)?;
        }
        Ok(Time(total))
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Seconds(u64),
            Text(String),
        }
        match Form::deserialize(deserializer)? {
            Form::Seconds(s) => Ok(Time(Duration::from_secs(s))),
            Form::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A RouterOS `rate-limit` from a configuration file: `rx/tx [burst-rx/burst-tx
/// [threshold-rx/threshold-tx [time-rx/time-tx [priority [min-rx/min-tx]]]]]` (see
/// [`RateLimit`]); `rx` is the user's upload, `tx` its download.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateLimitSetting(pub RateLimit);

impl<'de> Deserialize<'de> for RateLimitSetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse::<RateLimit>()
            .map(RateLimitSetting)
            .map_err(|e| serde::de::Error::custom(format!("{text:?}: {e}")))
    }
}

/// The limits of a profile or a secret: RouterOS `rate-limit`, `session-timeout`,
/// `idle-timeout` and `only-one`. A secret's own win over its profile's, and a profile's
/// over the default profile's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// `rate-limit`.
    pub rate_limit: Option<RateLimit>,
    /// `session-timeout` (0: none).
    pub session_timeout: Option<Duration>,
    /// `idle-timeout` (0: none).
    pub idle_timeout: Option<Duration>,
    /// `only-one`.
    pub only_one: OnlyOne,
}

impl Limits {
    /// Each setting this one does not have, from `fallback`.
    pub fn or(self, fallback: &Limits) -> Limits {
        Limits {
            rate_limit: self.rate_limit.or(fallback.rate_limit),
            session_timeout: self.session_timeout.or(fallback.session_timeout),
            idle_timeout: self.idle_timeout.or(fallback.idle_timeout),
            only_one: self.only_one.or(fallback.only_one),
        }
    }

    /// What a server enforces (zero timeouts are none).
    pub fn to_runtime(&self) -> SessionLimits {
        let mut limits = SessionLimits::default();
        limits.rate_limit = self.rate_limit;
        limits.session_timeout = self.session_timeout.filter(|t| !t.is_zero());
        limits.idle_timeout = self.idle_timeout.filter(|t| !t.is_zero());
        limits.only_one = self.only_one.to_runtime();
        limits
    }
}

/// A profile (RouterOS `/ppp profile`): addresses, DNS, encryption, compression, IPv6, and the
/// limits. Every key is optional; `default` words and absent limits take the default profile's.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct ProfileConfig {
    /// Our address on the sessions.
    pub local_address: Option<Ipv4Addr>,
    /// The client's address: an address, or the name of a pool.
    pub remote_address: Option<String>,
    /// DNS servers handed to clients (at most two).
    pub dns_server: Vec<Ipv4Addr>,
    /// MPPE.
    pub use_encryption: UseEncryption,
    /// Deflate.
    pub use_compression: UseCompression,
    /// IPv6CP.
    pub use_ipv6: UseIpv6,
    /// The rate limit of each session (its upload/download).
    pub rate_limit: Option<RateLimitSetting>,
    /// The longest a session may last.
    pub session_timeout: Option<Time>,
    /// How long a session may carry no traffic (either way) before it is closed.
    pub idle_timeout: Option<Time>,
    /// One session per user.
    pub only_one: OnlyOne,
}

impl ProfileConfig {
    /// The profile's own limits (before inheriting).
    pub fn limits(&self) -> Limits {
        Limits {
            rate_limit: self.rate_limit.map(|r| r.0),
            session_timeout: self.session_timeout.map(|t| t.0),
            idle_timeout: self.idle_timeout.map(|t| t.0),
            only_one: self.only_one,
        }
    }
}

/// A user (RouterOS `/ppp secret`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct SecretConfig {
    /// The user name.
    pub name: String,
    /// The password.
    pub password: Password,
    /// The profile (default: the program's default profile).
    pub profile: Option<String>,
    /// The client's address (wins over the profile's); `address` is read too.
    #[serde(alias = "address")]
    pub remote_address: Option<Ipv4Addr>,
    /// The PPPoE service this user may use (default: any).
    pub service: Option<String>,
    /// This user's rate limit, instead of the profile's.
    pub rate_limit: Option<RateLimitSetting>,
    /// This user's session timeout, instead of the profile's.
    pub session_timeout: Option<Time>,
    /// This user's idle timeout, instead of the profile's.
    pub idle_timeout: Option<Time>,
}

impl SecretConfig {
    /// The secret's own limits (before inheriting from its profile).
    pub fn limits(&self) -> Limits {
        Limits {
            rate_limit: self.rate_limit.map(|r| r.0),
            session_timeout: self.session_timeout.map(|t| t.0),
            idle_timeout: self.idle_timeout.map(|t| t.0),
            only_one: OnlyOne::Default,
        }
    }
}

fn yes() -> bool {
    true
}

/// RouterOS `/ppp aaa`: whether RADIUS authenticates users the local secrets do not have,
/// whether sessions are accounted, and how often.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct AaaConfig {
    /// Authenticate users that have no local secret through RADIUS (`use-radius`).
    pub use_radius: bool,
    /// Send RADIUS accounting (Start, Interim-Update, Stop) when `use-radius` is on
    /// (`accounting`, default yes as RouterOS).
    #[serde(default = "yes")]
    pub accounting: bool,
    /// Interim-Update interval when RADIUS gives no Acct-Interim-Interval (`interim-update`;
    /// 0: none).
    pub interim_update: Time,
}

impl Default for AaaConfig {
    fn default() -> Self {
        AaaConfig {
            use_radius: false,
            accounting: true,
            interim_update: Time::default(),
        }
    }
}

fn default_auth_port() -> u16 {
    1812
}

fn default_acct_port() -> u16 {
    1813
}

/// One RADIUS server (RouterOS `/radius` entry).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RadiusServerConfig {
    /// Its address.
    pub address: IpAddr,
    /// The shared secret (also its secret for dynamic authorization).
    pub secret: Password,
    /// Its authentication port (1812).
    #[serde(default = "default_auth_port")]
    pub authentication_port: u16,
    /// Its accounting port (1813).
    #[serde(default = "default_acct_port")]
    pub accounting_port: u16,
}

/// Who may send Disconnect-Request and CoA-Request besides the servers.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DaeClientConfig {
    /// Its address.
    pub address: IpAddr,
    /// The secret shared with it.
    pub secret: Password,
}

fn dae_port() -> u16 {
    ppp_radius::DAE_PORT
}

fn any_address() -> IpAddr {
    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
}

/// RouterOS `/radius incoming`: dynamic authorization (RFC 5176) from the servers (with
/// their secrets) and from `clients`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct IncomingConfig {
    /// Listen for Disconnect-Request and CoA-Request (`accept`).
    pub accept: bool,
    /// The UDP port (3799).
    #[serde(default = "dae_port")]
    pub port: u16,
    /// The local address to listen on (any).
    #[serde(default = "any_address")]
    pub address: IpAddr,
    /// More senders than the servers.
    pub clients: Vec<DaeClientConfig>,
}

impl Default for IncomingConfig {
    fn default() -> Self {
        IncomingConfig {
            accept: false,
            port: dae_port(),
            address: any_address(),
            clients: Vec::new(),
        }
    }
}

fn default_timeout() -> Time {
    Time(Duration::from_secs(3))
}

fn default_retries() -> u32 {
    3
}

fn default_sockets() -> usize {
    1
}

fn default_retry() -> Time {
    Time(Duration::from_secs(30))
}

/// The RADIUS client (RouterOS `/radius`): servers in order of preference, who we are, timers,
/// the accounting spool, and `/radius incoming`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RadiusConfig {
    /// The servers: a request goes to the first that answers, failing over in order.
    pub servers: Vec<RadiusServerConfig>,
    /// NAS-Identifier (default: the program's name for itself, the AC-Name).
    #[serde(default)]
    pub nas_identifier: Option<String>,
    /// NAS-IP-Address.
    #[serde(default)]
    pub nas_ip_address: Option<Ipv4Addr>,
    /// The local address requests leave from (`src-address`; any).
    #[serde(default = "any_address")]
    pub src_address: IpAddr,
    /// Time between transmissions of a request to one server (`timeout`; 3 s).
    #[serde(default = "default_timeout")]
    pub timeout: Time,
    /// Transmissions to one server before failing over to the next (3).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Local sockets (256 requests in flight to a server each; 1).
    #[serde(default = "default_sockets")]
    pub sockets: usize,
    /// Where accounting records wait for a server (a journal on disk: a restart loses no
    /// Stop). Without it they wait in memory only.
    #[serde(default)]
    pub accounting_spool: Option<PathBuf>,
    /// How often records no server acknowledged are sent again (30 s).
    #[serde(default = "default_retry")]
    pub accounting_retry: Time,
    /// Dynamic authorization.
    #[serde(default)]
    pub incoming: IncomingConfig,
}

impl RadiusConfig {
    /// Checks the servers and timers.
    ///
    /// # Errors
    ///
    /// No server, a zero timeout or retry count, or the transmissions to every server taking
    /// longer than an authentication may wait (30 s).
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.servers.is_empty() {
            return Err(InvalidSetting::new("radius.servers", "no server given"));
        }
        if self.timeout.0.is_zero() || self.retries == 0 || self.sockets == 0 {
            return Err(InvalidSetting::new(
                "radius",
                "timeout, retries and sockets must not be 0",
            ));
        }
        let deadline = self.client_config("nas").access_deadline();
        if deadline >= Duration::from_secs(30) {
            return Err(InvalidSetting::new(
                "radius",
                format!(
                    "timeout × retries × servers is {} s: an authentication waits 30 s at most",
                    deadline.as_secs()
                ),
            ));
        }
        if self.servers.iter().any(|s| s.secret.0.is_empty()) {
            return Err(InvalidSetting::new(
                "radius.servers",
                "a server has no secret",
            ));
        }
        Ok(())
    }

    fn nas(&self, default_name: &str) -> NasIdentity {
        let mut nas = NasIdentity::named(
            self.nas_identifier
                .clone()
                .unwrap_or_else(|| default_name.to_owned()),
        );
        nas.ip_address = self.nas_ip_address;
        nas
    }

    /// The client machine's settings; `default_name` is the NAS-Identifier unless one is set.
    pub fn client_config(&self, default_name: &str) -> ClientConfig {
        let servers = self
            .servers
            .iter()
            .map(|s| {
                ServerConfig::new(
                    SocketAddr::new(s.address, s.authentication_port),
                    SocketAddr::new(s.address, s.accounting_port),
                    Secret::from(s.secret.0.as_str()),
                )
            })
            .collect();
        let mut client = ClientConfig::new(servers, self.nas(default_name));
        client.retransmit_interval = self.timeout.0;
        client.max_transmissions = self.retries;
        client.sockets = self.sockets;
        client.spool_retry_interval = self.accounting_retry.0.max(Duration::from_secs(1));
        client
    }

    /// The UDP service's settings.
    pub fn service_config(&self, default_name: &str) -> ServiceConfig {
        let mut service = ServiceConfig::new(self.client_config(default_name));
        service.bind = SocketAddr::new(self.src_address, 0);
        service.spool_dir.clone_from(&self.accounting_spool);
        service
    }

    /// Where to listen for dynamic authorization and who may send it (the servers with their
    /// secrets, then `incoming.clients`), when `incoming.accept` is on.
    pub fn dae_config(&self, default_name: &str) -> Option<(SocketAddr, DaeConfig)> {
        if !self.incoming.accept {
            return None;
        }
        let clients = self
            .servers
            .iter()
            .map(|s| (s.address, &s.secret))
            .chain(self.incoming.clients.iter().map(|c| (c.address, &c.secret)))
            .map(|(address, secret)| DaeClient {
                address,
                secret: Secret::from(secret.0.as_str()),
            })
            .collect();
        Some((
            SocketAddr::new(self.incoming.address, self.incoming.port),
            DaeConfig::new(clients, self.nas(default_name)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser, Debug)]
    struct PasswordOnly {
        #[command(flatten)]
        password: PasswordSource,
    }

    fn parse_password(args: &[&str]) -> Result<PasswordSource, clap::Error> {
        use clap::Parser;
        PasswordOnly::try_parse_from(std::iter::once("prog").chain(args.iter().copied()))
            .map(|parsed| parsed.password)
    }

    #[test]
    fn a_password_file_gives_its_first_line() {
        let dir = std::env::temp_dir().join(format!("ppp-password-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("crlf.pass");
        std::fs::write(&file, "pa ss\r\nsecond line\n").unwrap();
        let source = parse_password(&["--password-file", file.to_str().unwrap()]).unwrap();
        assert_eq!(source.read().unwrap(), Some(Password::from("pa ss")));

        let empty = dir.join("empty.pass");
        std::fs::write(&empty, "\nsecret on line two\n").unwrap();
        let error = PasswordSource {
            password_file: Some(empty.clone()),
            ..PasswordSource::default()
        }
        .read()
        .unwrap_err();
        assert_eq!(error.key, "--password-file");
        assert!(error.message.contains("empty.pass"), "{error}");

        let missing = dir.join("missing.pass");
        let error = PasswordSource {
            password_file: Some(missing),
            ..PasswordSource::default()
        }
        .read()
        .unwrap_err();
        assert!(error.message.contains("missing.pass"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_password_variable_is_read_and_an_unset_one_is_an_error() {
        // PATH is set for every test process; the other name is not.
        let source = parse_password(&["--password-env", "PATH"]).unwrap();
        let path = std::env::var("PATH").unwrap();
        assert_eq!(source.read().unwrap(), Some(Password(path)));
        let unset = PasswordSource {
            password_env: Some("PPP_STACK_TEST_SURELY_UNSET_PASSWORD".into()),
            ..PasswordSource::default()
        };
        let error = unset.read().unwrap_err();
        assert_eq!(error.key, "--password-env");
        assert!(error.message.contains("is not set"), "{error}");
    }

    #[test]
    fn only_one_password_source_at_a_time() {
        let inline = parse_password(&["--password", "x"]).unwrap();
        assert_eq!(inline.read().unwrap(), Some(Password::from("x")));
        assert_eq!(parse_password(&[]).unwrap().read().unwrap(), None);
        for args in [
            &["--password", "x", "--password-env", "P"][..],
            &["--password-file", "/f", "--password-env", "P"][..],
            &["--password", "x", "--password-file", "/f"][..],
        ] {
            let error = parse_password(args).unwrap_err();
            assert_eq!(
                error.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{args:?}"
            );
        }
    }

    #[test]
    fn method_names_one_table() {
        let table = [
            ("mschap2", AuthProtocol::MsChapV2),
            ("MS-CHAP-V2", AuthProtocol::MsChapV2),
            ("mschapv2", AuthProtocol::MsChapV2),
            ("mschap-v2", AuthProtocol::MsChapV2),
            ("mschap1", AuthProtocol::MsChapV1),
            ("mschap", AuthProtocol::MsChapV1),
            ("ms-chap", AuthProtocol::MsChapV1),
            ("chap", AuthProtocol::ChapMd5),
            ("chap-md5", AuthProtocol::ChapMd5),
            ("PAP", AuthProtocol::Pap),
        ];
        for (name, method) in table {
            assert_eq!(auth_method(name).expect(name), method, "{name}");
        }
        assert!(auth_method("eap").is_err());
    }

    /// One meaning: `yes` and `required` are stateless MPPE-128 only; 40-bit keys never.
    #[test]
    fn use_encryption_means_mppe_128() {
        assert_eq!(ccp_config(UseEncryption::Default, UseCompression::No), None);
        assert_eq!(ccp_config(UseEncryption::No, UseCompression::Default), None);
        for (encryption, mode) in [
            (UseEncryption::Yes, Encryption::Yes),
            (UseEncryption::Required, Encryption::Required),
        ] {
            let ccp = ccp_config(encryption, UseCompression::No).expect("ccp");
            assert_eq!(ccp.encryption, mode);
            assert!(ccp.mppe_128 && !ccp.mppe_40 && !ccp.mppe_56 && !ccp.mppe_stateful);
        }
        let deflate = ccp_config(UseEncryption::No, UseCompression::Yes).expect("ccp");
        assert!(deflate.compression && deflate.encryption == Encryption::No);
        let fallback = ccp_config(UseEncryption::Yes, UseCompression::Yes).expect("ccp");
        assert!(fallback.compression);
        let required = ccp_config(UseEncryption::Required, UseCompression::Yes).expect("ccp");
        assert!(!required.compression);
    }

    #[test]
    fn words_and_booleans() {
        #[derive(Deserialize)]
        #[serde(rename_all = "kebab-case")]
        struct T {
            use_compression: UseCompression,
            use_ipv6: UseIpv6,
            only_one: OnlyOne,
            idle_timeout: Time,
            session_timeout: Time,
            rate_limit: RateLimitSetting,
        }
        let t: T = toml::from_str(
            "use-compression = true\nuse-ipv6 = \"default\"\nonly-one = \"replace\"\n\
             idle-timeout = \"5m\"\nsession-timeout = 3600\nrate-limit = \"2M/1M\"",
        )
        .expect("parse");
        assert_eq!(t.use_compression, UseCompression::Yes);
        assert_eq!(t.use_ipv6, UseIpv6::Default);
        assert_eq!(t.only_one, OnlyOne::Replace);
        assert_eq!(t.idle_timeout.0, Duration::from_secs(300));
        assert_eq!(t.session_timeout.0, Duration::from_secs(3600));
        assert_eq!(t.rate_limit.0, RateLimit::new(2_000_000, 1_000_000));
        assert!(toml::from_str::<T>("use-compression = \"maybe\"").is_err());
    }

    #[test]
    fn time_words() {
        for (text, seconds, millis) in [
            ("300", 300, 0),
            ("5m", 300, 0),
            ("1h30m", 5400, 0),
            ("1d", 86_400, 0),
            ("1w2d", 9 * 86_400, 0),
            ("300ms", 0, 300),
            ("1s500ms", 1, 500),
        ] {
            let t: Time = text.parse().expect(text);
            assert_eq!(
                t.0,
                Duration::from_secs(seconds) + Duration::from_millis(millis),
                "{text}"
            );
        }
        for bad in ["", "m", "5x", "-1", "5m3"] {
            assert!(bad.parse::<Time>().is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_inherit_secret_then_profile_then_default() {
        let default = Limits {
            rate_limit: Some(RateLimit::new(1_000_000, 1_000_000)),
            idle_timeout: Some(Duration::from_secs(600)),
            only_one: OnlyOne::Yes,
            ..Limits::default()
        };
        let profile = Limits {
            rate_limit: Some(RateLimit::new(2_000_000, 2_000_000)),
            session_timeout: Some(Duration::from_secs(3600)),
            ..Limits::default()
        };
        let secret = Limits {
            idle_timeout: Some(Duration::from_secs(60)),
            ..Limits::default()
        };
        let effective = secret.or(&profile.or(&default));
        assert_eq!(
            effective,
            Limits {
                rate_limit: Some(RateLimit::new(2_000_000, 2_000_000)),
                session_timeout: Some(Duration::from_secs(3600)),
                idle_timeout: Some(Duration::from_secs(60)),
                only_one: OnlyOne::Yes,
            }
        );
        let runtime = Limits {
            idle_timeout: Some(Duration::ZERO),
            ..effective
        }
        .to_runtime();
        assert_eq!(runtime.idle_timeout, None, "0 turns it off");
        assert_eq!(runtime.only_one, OnlySession::RefuseSecond);
    }

    #[test]
    fn radius_settings() {
        let config: RadiusConfig = toml::from_str(
            r#"
            nas-identifier = "ac1"
            nas-ip-address = "192.0.2.1"
            timeout = "500ms"
            retries = 2
            accounting-spool = "/tmp/spool"
            [[servers]]
            address = "198.51.100.10"
            secret = "s3cret-one"
            [[servers]]
            address = "198.51.100.11"
            secret = "s3cret-two"
            authentication-port = 11812
            [incoming]
            accept = true
            [[incoming.clients]]
            address = "198.51.100.20"
            secret = "s3cret-three"
            "#,
        )
        .expect("parse");
        config.validate().expect("valid");
        let client = config.client_config("unused");
        assert_eq!(client.servers.len(), 2);
        assert_eq!(
            client.servers[1].auth,
            Some("198.51.100.11:11812".parse().unwrap())
        );
        assert_eq!(
            client.servers[0].acct,
            Some("198.51.100.10:1813".parse().unwrap())
        );
        assert_eq!(client.retransmit_interval, Duration::from_millis(500));
        assert_eq!(client.max_transmissions, 2);
        assert_eq!(client.nas.identifier.as_deref(), Some("ac1"));
        let (listen, dae) = config.dae_config("unused").expect("incoming");
        assert_eq!(listen.port(), 3799);
        assert_eq!(dae.clients.len(), 3);
        assert!(!format!("{config:?}").contains("s3cret"), "secrets hidden");
        let slow = RadiusConfig {
            timeout: Time(Duration::from_secs(10)),
            ..config
        };
        assert!(slow.validate().is_err());
    }
}
