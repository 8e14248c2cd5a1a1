//! The configuration of the dial-out client and of the ppp-server, from a TOML file (keys named
//! after RouterOS's `/interface ppp-client` and `ppp-server` properties), and its translation
//! into the stack's configurations ([`DialerConfig`], [`AnswerConfig`], [`LinkConfig`]).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ppp_auth::{AllowedAddress, SecretEntry, SecretsTable};
use ppp_ccp::CcpConfig;
use ppp_ipcp::{IpcpConfig, Ipv6cpConfig};
use ppp_link::LinkConfig;
use ppp_link::auth::{AuthProtocol, ClientCredentials};
use ppp_modem::{AnswerConfig, ChatScript, DialTarget, DialerConfig, HangupMethod};
use ppp_tokio::serial::{FlowControl, PortConfig};
use serde::Deserialize;

use super::DialOutError;

/// RouterOS `use-encryption`, with the one meaning of [`crate::profile`].
pub use crate::profile::UseEncryption;

/// The profile: RouterOS `/ppp profile` settings that matter on a serial link.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Profile {
    /// `use-encryption`.
    pub use_encryption: UseEncryption,
    /// `use-compression` (Deflate).
    pub use_compression: bool,
    /// `use-ipv6`: IPv6CP next to IPCP (pppd `+ipv6`); the client puts the negotiated
    /// link-local pair on its TUN device.
    pub use_ipv6: bool,
    /// Server: our address (`local-address`).
    pub local_address: Option<Ipv4Addr>,
    /// Server: the address handed to the peer (`remote-address`).
    pub remote_address: Option<Ipv4Addr>,
    /// Server: DNS servers handed to the peer (`dns-server`).
    pub dns_server: Vec<Ipv4Addr>,
    /// Server: each call's rate limit (`rate-limit`, RouterOS syntax; see docs/aaa.md).
    pub rate_limit: Option<crate::profile::RateLimitSetting>,
    /// Server: the longest a call may last (`session-timeout`).
    pub session_timeout: Option<crate::profile::Time>,
    /// Server: how long a call may carry no traffic (`idle-timeout`).
    pub idle_timeout: Option<crate::profile::Time>,
    /// Server: one call per user (`only-one`).
    pub only_one: crate::profile::OnlyOne,
}

impl Profile {
    /// The IPv6CP configuration, or `None` without `use-ipv6`.
    pub fn ipv6cp(&self) -> Option<Ipv6cpConfig> {
        self.use_ipv6.then(Ipv6cpConfig::default)
    }

    /// The CCP configuration, or `None` when neither encryption nor compression is on (see
    /// [`crate::profile::ccp_config`]).
    pub fn ccp(&self) -> Option<CcpConfig> {
        crate::profile::ccp_config(self.use_encryption, self.use_compression.into())
    }
}

fn default_baud_rate() -> u32 {
    115_200
}

fn default_allow() -> Vec<String> {
    ["pap", "chap", "mschap1", "mschap2"]
        .map(String::from)
        .to_vec()
}

fn default_holdoff() -> f64 {
    1.0
}

fn default_mru() -> u16 {
    1500
}

/// pppd's `maxfail` default.
fn default_max_fail() -> u32 {
    10
}

/// RouterOS `ppp-client`'s `keepalive-timeout` default, in seconds.
fn default_keepalive_timeout() -> u64 {
    30
}

/// Parses authentication names (see [`crate::profile::auth_method`]).
///
/// # Errors
///
/// An unknown name.
pub fn parse_auth_list(names: &[String]) -> Result<Vec<AuthProtocol>, DialOutError> {
    crate::profile::auth_methods(names).map_err(|error| DialOutError::Config(error.message))
}

/// The dial-out client's settings (RouterOS `/interface ppp-client`). `Debug` hides the PIN
/// and the password.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ClientConfig {
    /// The serial port (`port`).
    pub port: String,
    /// The baud rate.
    #[serde(default = "default_baud_rate")]
    pub baud_rate: u32,
    /// `none`, `hardware` or `software`.
    pub flow_control: String,
    /// The APN (`apn`); set with `AT+CGDCONT`.
    pub apn: Option<String>,
    /// The SIM PIN (`pin`). Never logged.
    pub pin: Option<String>,
    /// The number to dial (`phone`); default `*99#`.
    pub phone: Option<String>,
    /// Our name for PAP/CHAP (`user`).
    pub user: Option<String>,
    /// Our password (`password`). Never logged.
    pub password: Option<String>,
    /// The methods we accept being authenticated with (`allow`).
    #[serde(default = "default_allow")]
    pub allow: Vec<String>,
    /// The profile (`use-encryption`, `use-compression`).
    pub profile: Profile,
    /// `add-default-route`.
    pub add_default_route: bool,
    /// `default-route-distance`: the metric of the default route.
    pub default_route_distance: u32,
    /// `dial-on-demand`: the interface is up before dialing; the first packet dials.
    pub dial_on_demand: bool,
    /// `idle-timeout` in seconds (0: never): hang up after this long without traffic.
    pub idle_timeout: u64,
    /// `max-mru`.
    #[serde(default = "default_mru")]
    pub max_mru: u16,
    /// `max-mtu`.
    #[serde(default = "default_mru")]
    pub max_mtu: u16,
    /// `mrru`: Multilink (RFC 1990) with packets up to this size. On one port it is MP over a
    /// single link (pppd `mrru`: a 1500-byte packet in fragments over a smaller MTU); with
    /// several `[[line]]`s every line joins one bundle, and it defaults to `max-mru`.
    pub mrru: Option<u16>,
    /// `use-peer-dns`: write the peer's DNS servers to `resolv-conf`.
    pub use_peer_dns: bool,
    /// Where `use-peer-dns` writes (never `/etc/resolv.conf` unless named here).
    pub resolv_conf: Option<PathBuf>,
    /// `modem-init`: an extra init string sent after the built-in ones.
    pub modem_init: Option<String>,
    /// A pppd `chat` script file to run instead of the built-in sequence.
    pub chat_script: Option<PathBuf>,
    /// No modem: a direct (null-modem) cable, the line is up at once (pppd `local` without a
    /// connect script).
    pub null_modem: bool,
    /// Reconnect after a failure or a lost call (pppd `persist`).
    pub persist: bool,
    /// Give up after this many consecutive failed attempts (pppd `maxfail`, default 10 as
    /// pppd's; 0: never). A rejected password counts as a failed attempt.
    #[serde(default = "default_max_fail")]
    pub max_fail: u32,
    /// The first wait before redialing, in seconds; doubled after each failure, at most 60 s
    /// (pppd `holdoff`).
    #[serde(default = "default_holdoff")]
    pub holdoff: f64,
    /// How long to wait for network registration, in seconds (default 60).
    pub registration_timeout: Option<u64>,
    /// Hang up by dropping DTR instead of `+++`/`ATH` (needs a real serial port).
    pub hangup_dtr: bool,
    /// Do not end the call when DCD drops (pppd `local`); by default a real serial port's DCD
    /// is watched once it was seen high.
    pub ignore_dcd: bool,
    /// The escape guard time in seconds (the modem's `S12`/50; default 1).
    pub escape_guard_time: Option<f64>,
    /// The TUN interface name (default: the kernel's choice).
    pub interface: Option<String>,
    /// The control socket for `monitor`.
    pub control_socket: Option<PathBuf>,
    /// A second AT port for signal and operator while online (RouterOS `info-channel`).
    pub info_port: Option<String>,
    /// RouterOS `keepalive-timeout`: seconds without anything from the peer (traffic or LCP
    /// Echo-Reply) before it is declared dead and the call is hung up (default 30; 0: off). An
    /// Echo-Request goes out every `keepalive-timeout / 6` seconds (at least 1) after an
    /// interval in which nothing arrived.
    #[serde(default = "default_keepalive_timeout")]
    pub keepalive_timeout: u64,
    /// pppd `lcp-echo-interval` in seconds: when set (not 0), an Echo-Request every this many
    /// seconds whatever the traffic, 4 unanswered ones end the link; replaces
    /// `keepalive-timeout`.
    pub lcp_echo_interval: u64,
    /// Several ports in one Multilink bundle (TOML `[[line]]` tables), each dialled with its
    /// own modem sequence; empty: the one `port` above.
    pub line: Vec<LineConfig>,
}

/// One port of a client with several (a TOML `[[line]]` table): the port and its own modem
/// sequence. A key left out takes the value of the same key at the top of the file. `Debug`
/// hides the PIN.
#[derive(Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct LineConfig {
    /// The serial port.
    pub port: String,
    /// The baud rate.
    pub baud_rate: Option<u32>,
    /// `none`, `hardware` or `software`.
    pub flow_control: Option<String>,
    /// The APN.
    pub apn: Option<String>,
    /// The SIM PIN. Never logged.
    pub pin: Option<String>,
    /// The number to dial.
    pub phone: Option<String>,
    /// An extra init string.
    pub modem_init: Option<String>,
    /// A chat script instead of the built-in sequence.
    pub chat_script: Option<PathBuf>,
    /// A direct cable: no modem.
    pub null_modem: Option<bool>,
    /// How long to wait for network registration, in seconds.
    pub registration_timeout: Option<u64>,
    /// Hang up by dropping DTR.
    pub hangup_dtr: Option<bool>,
    /// The escape guard time in seconds.
    pub escape_guard_time: Option<f64>,
}

impl std::fmt::Debug for LineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineConfig")
            .field("port", &self.port)
            .field("baud_rate", &self.baud_rate)
            .field("flow_control", &self.flow_control)
            .field("apn", &self.apn)
            .field("pin", &self.pin.as_ref().map(|_| "<hidden>"))
            .field("phone", &self.phone)
            .field("null_modem", &self.null_modem)
            .field("chat_script", &self.chat_script)
            .finish_non_exhaustive()
    }
}

impl LineConfig {
    /// A line on `port` with everything else from the top of the file.
    pub fn port(port: impl Into<String>) -> Self {
        LineConfig {
            port: port.into(),
            ..LineConfig::default()
        }
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |value: &Option<String>| value.as_ref().map(|_| "<hidden>");
        f.debug_struct("ClientConfig")
            .field("port", &self.port)
            .field("baud_rate", &self.baud_rate)
            .field("flow_control", &self.flow_control)
            .field("apn", &self.apn)
            .field("pin", &hidden(&self.pin))
            .field("phone", &self.phone)
            .field("user", &self.user)
            .field("password", &hidden(&self.password))
            .field("allow", &self.allow)
            .field("profile", &self.profile)
            .field("null_modem", &self.null_modem)
            .field("chat_script", &self.chat_script)
            .field("persist", &self.persist)
            .field("max_fail", &self.max_fail)
            .field("keepalive_timeout", &self.keepalive_timeout)
            .field("lcp_echo_interval", &self.lcp_echo_interval)
            .field("dial_on_demand", &self.dial_on_demand)
            .field("idle_timeout", &self.idle_timeout)
            .field("add_default_route", &self.add_default_route)
            .field("default_route_distance", &self.default_route_distance)
            .field("mrru", &self.mrru)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            port: String::new(),
            baud_rate: default_baud_rate(),
            flow_control: "hardware".into(),
            apn: None,
            pin: None,
            phone: None,
            user: None,
            password: None,
            allow: default_allow(),
            profile: Profile::default(),
            add_default_route: false,
            default_route_distance: 0,
            dial_on_demand: false,
            idle_timeout: 0,
            max_mru: default_mru(),
            max_mtu: default_mru(),
            mrru: None,
            use_peer_dns: false,
            resolv_conf: None,
            modem_init: None,
            chat_script: None,
            null_modem: false,
            persist: false,
            max_fail: default_max_fail(),
            holdoff: default_holdoff(),
            registration_timeout: None,
            hangup_dtr: false,
            ignore_dcd: false,
            escape_guard_time: None,
            interface: None,
            control_socket: None,
            info_port: None,
            keepalive_timeout: default_keepalive_timeout(),
            lcp_echo_interval: 0,
            line: Vec::new(),
        }
    }
}

/// Reads and parses a TOML file.
fn read_toml<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, DialOutError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| DialOutError::Config(format!("{}: {error}", path.display())))?;
    toml::from_str(&text)
        .map_err(|error| DialOutError::Config(format!("{}: {error}", path.display())))
}

impl ClientConfig {
    /// Reads a TOML file.
    ///
    /// # Errors
    ///
    /// [`DialOutError::Config`] when the file cannot be read or has unknown keys or bad values.
    pub fn load(path: &Path) -> Result<Self, DialOutError> {
        read_toml(path)
    }

    /// Parses TOML text.
    ///
    /// # Errors
    ///
    /// [`DialOutError::Config`] for unknown keys or bad values.
    pub fn parse(text: &str) -> Result<Self, DialOutError> {
        toml::from_str(text).map_err(|error| DialOutError::Config(error.to_string()))
    }

    /// The serial port settings.
    ///
    /// # Errors
    ///
    /// An unknown flow control.
    pub fn port_config(&self) -> Result<PortConfig, DialOutError> {
        let flow: FlowControl =
            self.flow_control
                .parse()
                .map_err(|error: ppp_tokio::serial::SerialError| {
                    DialOutError::Config(error.to_string())
                })?;
        Ok(PortConfig::new(&self.port, self.baud_rate, flow))
    }

    /// The settings of each port: the top-level ones for a single `port`, or one copy per
    /// `[[line]]` with that line's keys applied (its `line` list empty).
    ///
    /// # Errors
    ///
    /// Both `port` and `[[line]]` given, or a line without a port.
    pub fn lines(&self) -> Result<Vec<ClientConfig>, DialOutError> {
        if self.line.is_empty() {
            return Ok(vec![self.clone()]);
        }
        if !self.port.is_empty() {
            return Err(DialOutError::Config(
                "both `port` and `[[line]]` tables: give every port as a `[[line]]`".into(),
            ));
        }
        self.line
            .iter()
            .enumerate()
            .map(|(index, line)| {
                if line.port.is_empty() {
                    return Err(DialOutError::Config(format!(
                        "`[[line]]` number {} has no port",
                        index + 1
                    )));
                }
                let mut config = self.clone();
                config.line.clear();
                config.port.clone_from(&line.port);
                macro_rules! take {
                    ($($field:ident),*) => {$(
                        if let Some(value) = &line.$field {
                            config.$field = value.clone().into();
                        }
                    )*};
                }
                take!(baud_rate, flow_control, null_modem, hangup_dtr);
                macro_rules! take_option {
                    ($($field:ident),*) => {$(
                        if line.$field.is_some() {
                            config.$field.clone_from(&line.$field);
                        }
                    )*};
                }
                take_option!(
                    apn,
                    pin,
                    phone,
                    modem_init,
                    chat_script,
                    registration_timeout,
                    escape_guard_time
                );
                Ok(config)
            })
            .collect()
    }

    /// Whether several ports make one Multilink bundle.
    pub fn is_bundle(&self) -> bool {
        self.line.len() > 1
    }

    /// The idle timeout, if any.
    pub fn idle_timeout(&self) -> Option<Duration> {
        (self.idle_timeout > 0).then(|| Duration::from_secs(self.idle_timeout))
    }

    /// The first wait before redialing.
    pub fn holdoff(&self) -> Duration {
        Duration::try_from_secs_f64(self.holdoff.clamp(0.0, 3600.0))
            .unwrap_or(Duration::from_secs(1))
    }

    /// The built-in dial sequence: cellular (`ATD*99#` or the `phone` given, with PIN,
    /// registration and APN) unless `phone` is a plain number and there is neither APN nor PIN
    /// (an analog modem: `ATDT<phone>`).
    ///
    /// # Errors
    ///
    /// A value that cannot be sent to the modem (quotes, control characters).
    pub fn dialer_config(&self) -> Result<DialerConfig, DialOutError> {
        let phone = self.phone.as_deref().unwrap_or("*99#");
        let analog = self.apn.is_none()
            && self.pin.is_none()
            && phone
                .chars()
                .all(|c| c.is_ascii_digit() || c == ',' || c == 'W');
        let mut config = if analog {
            DialerConfig::phone(phone)
        } else {
            let mut config = DialerConfig::cellular(self.apn.as_deref());
            if phone != "*99#" {
                config.target = DialTarget::Raw(phone.to_owned());
            }
            config.pin.clone_from(&self.pin);
            config
        };
        if let Some(init) = &self.modem_init {
            config.init.push(init.clone());
        }
        if let Some(seconds) = self.registration_timeout {
            config.registration_timeout = Duration::from_secs(seconds);
        }
        if self.hangup_dtr {
            config.engine.hangup_method = HangupMethod::Dtr;
        }
        if let Some(seconds) = self.escape_guard_time {
            config.engine.guard_time = Duration::try_from_secs_f64(seconds.clamp(0.0, 10.0))
                .unwrap_or(config.engine.guard_time);
        }
        config.validate()?;
        Ok(config)
    }

    /// The chat script, if one is configured.
    ///
    /// # Errors
    ///
    /// The file cannot be read or does not parse.
    pub fn chat_script(&self) -> Result<Option<ChatScript>, DialOutError> {
        let Some(path) = &self.chat_script else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|error| DialOutError::Config(format!("{}: {error}", path.display())))?;
        Ok(Some(ChatScript::parse(&text)?))
    }

    /// The link: LCP with `max-mru`/`max-mtu`/`mrru`, `allow`, our credentials, IPCP asking
    /// for an address and DNS, CCP from the profile.
    ///
    /// # Errors
    ///
    /// An unknown authentication name.
    pub fn link_config(&self) -> Result<LinkConfig, DialOutError> {
        let mut config = LinkConfig::default();
        config.lcp.mru = self.max_mru;
        config.lcp.max_mru = self.max_mru.max(config.lcp.max_mru);
        config.lcp.mtu = Some(self.max_mtu);
        // pppd `multilink`: the MRRU defaults to the MRU.
        config.lcp.mrru = self
            .mrru
            .or_else(|| self.is_bundle().then_some(self.max_mru));
        if self.lcp_echo_interval > 0 {
            config.lcp.echo_interval = Some(Duration::from_secs(self.lcp_echo_interval));
            config.lcp.echo_failure = 4;
            config.lcp.echo_adaptive = false;
        } else {
            crate::pppoe::config::apply_keepalive(&mut config, self.keepalive_timeout, false);
        }
        match &self.user {
            Some(user) => {
                config.lcp.allow = parse_auth_list(&self.allow)?;
                let password = self.password.clone().unwrap_or_default();
                config.auth.credentials = Some(ClientCredentials::password(
                    user.as_str(),
                    password.into_bytes(),
                ));
            }
            None => config.lcp.allow.clear(),
        }
        let mut ipcp = IpcpConfig::client();
        ipcp.request_dns = true;
        config.ipcp = Some(ipcp);
        config.ipv6cp = self.profile.ipv6cp();
        config.ccp = self.profile.ccp();
        Ok(config)
    }
}

/// One user of the ppp-server (a TOML `[[secret]]` table): RouterOS `/ppp secret` (`address`
/// is read as `remote-address`).
pub use crate::profile::SecretConfig;

/// The ppp-server's settings (RouterOS `/interface ppp-server`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ServerConfig {
    /// The serial port.
    pub port: String,
    /// The baud rate.
    #[serde(default = "default_baud_rate")]
    pub baud_rate: u32,
    /// `none`, `hardware` or `software`.
    pub flow_control: String,
    /// Our name in CHAP challenges (pppd `name`).
    pub name: String,
    /// The methods we require from the peer (`authentication`); empty: none.
    pub authentication: Vec<String>,
    /// A pppd `chap-secrets` file.
    pub chap_secrets: Option<PathBuf>,
    /// Users, as an alternative or in addition to `chap-secrets`.
    pub secret: Vec<SecretConfig>,
    /// The profile: addresses, DNS, encryption, compression.
    pub profile: Profile,
    /// RINGs before answering (`ring-count`).
    pub ring_count: u32,
    /// Extra init string (`modem-init`).
    pub modem_init: Option<String>,
    /// No modem: the line is connected from the start (`null-modem`).
    pub null_modem: bool,
    /// Do not end the call when DCD drops (pppd `local`).
    pub ignore_dcd: bool,
    /// `max-mru`.
    #[serde(default = "default_mru")]
    pub max_mru: u16,
    /// `max-mtu`.
    #[serde(default = "default_mru")]
    pub max_mtu: u16,
    /// LCP echo interval in seconds (0: none); the way a null-modem server notices a dead peer.
    pub lcp_echo_interval: u64,
    /// Answer pings to our own address ourselves (when there is no TUN device).
    pub answer_ping: bool,
    /// The TUN device's name on the user-space data path (default: the kernel's choice).
    pub interface: Option<String>,
    /// The control socket for `monitor`.
    pub control_socket: Option<PathBuf>,
    /// Serve one call, then exit.
    pub once: bool,
    /// `mrru`: accept Multilink (RFC 1990) with packets up to this size; with several
    /// `[[line]]`s it defaults to `max-mru`, so a second call of the same peer joins its bundle.
    pub mrru: Option<u16>,
    /// Several ports answered at once (TOML `[[line]]` tables); empty: the one `port` above.
    pub line: Vec<ServerLineConfig>,
    /// RouterOS `/ppp aaa`: RADIUS authentication, accounting, interim updates.
    pub aaa: crate::profile::AaaConfig,
    /// RouterOS `/radius` and `/radius incoming`.
    pub radius: Option<crate::profile::RadiusConfig>,
}

/// One port of a server with several (a TOML `[[line]]` table); a key left out takes the value
/// at the top of the file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ServerLineConfig {
    /// The serial port.
    pub port: String,
    /// The baud rate.
    pub baud_rate: Option<u32>,
    /// `none`, `hardware` or `software`.
    pub flow_control: Option<String>,
    /// An extra init string.
    pub modem_init: Option<String>,
    /// A direct cable: no modem.
    pub null_modem: Option<bool>,
    /// RINGs before answering.
    pub ring_count: Option<u32>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            port: String::new(),
            baud_rate: default_baud_rate(),
            flow_control: "hardware".into(),
            name: "ppp-server".into(),
            authentication: ["mschap2", "chap"].map(String::from).to_vec(),
            chap_secrets: None,
            secret: Vec::new(),
            profile: Profile {
                local_address: Some(Ipv4Addr::new(198, 51, 100, 1)),
                remote_address: Some(Ipv4Addr::new(198, 51, 100, 2)),
                ..Profile::default()
            },
            ring_count: 1,
            modem_init: None,
            null_modem: false,
            ignore_dcd: false,
            max_mru: default_mru(),
            max_mtu: default_mru(),
            lcp_echo_interval: 10,
            answer_ping: true,
            interface: None,
            control_socket: None,
            once: false,
            mrru: None,
            line: Vec::new(),
            aaa: crate::profile::AaaConfig::default(),
            radius: None,
        }
    }
}

impl ServerConfig {
    /// Reads a TOML file.
    ///
    /// # Errors
    ///
    /// [`DialOutError::Config`] when the file cannot be read or has unknown keys or bad values.
    pub fn load(path: &Path) -> Result<Self, DialOutError> {
        read_toml(path)
    }

    /// Parses TOML text.
    ///
    /// # Errors
    ///
    /// [`DialOutError::Config`] for unknown keys or bad values.
    pub fn parse(text: &str) -> Result<Self, DialOutError> {
        toml::from_str(text).map_err(|error| DialOutError::Config(error.to_string()))
    }

    /// The serial port settings.
    ///
    /// # Errors
    ///
    /// An unknown flow control.
    pub fn port_config(&self) -> Result<PortConfig, DialOutError> {
        let flow: FlowControl =
            self.flow_control
                .parse()
                .map_err(|error: ppp_tokio::serial::SerialError| {
                    DialOutError::Config(error.to_string())
                })?;
        Ok(PortConfig::new(&self.port, self.baud_rate, flow))
    }

    /// The settings of each port: the top-level ones for a single `port`, or one copy per
    /// `[[line]]` with that line's keys applied.
    ///
    /// # Errors
    ///
    /// Both `port` and `[[line]]` given, or a line without a port.
    pub fn lines(&self) -> Result<Vec<ServerConfig>, DialOutError> {
        if self.line.is_empty() {
            return Ok(vec![self.clone()]);
        }
        if !self.port.is_empty() {
            return Err(DialOutError::Config(
                "both `port` and `[[line]]` tables: give every port as a `[[line]]`".into(),
            ));
        }
        self.line
            .iter()
            .enumerate()
            .map(|(index, line)| {
                if line.port.is_empty() {
                    return Err(DialOutError::Config(format!(
                        "`[[line]]` number {} has no port",
                        index + 1
                    )));
                }
                let mut config = self.clone();
                config.line.clear();
                config.port.clone_from(&line.port);
                if let Some(baud_rate) = line.baud_rate {
                    config.baud_rate = baud_rate;
                }
                if let Some(flow) = &line.flow_control {
                    config.flow_control.clone_from(flow);
                }
                if line.modem_init.is_some() {
                    config.modem_init.clone_from(&line.modem_init);
                }
                if let Some(null_modem) = line.null_modem {
                    config.null_modem = null_modem;
                }
                if let Some(ring_count) = line.ring_count {
                    config.ring_count = ring_count;
                }
                Ok(config)
            })
            .collect()
    }

    /// The answer sequence.
    pub fn answer_config(&self) -> AnswerConfig {
        let mut config = AnswerConfig::default();
        config.ring_count = self.ring_count.max(1);
        config.null_modem = self.null_modem;
        if let Some(init) = &self.modem_init {
            config.init.push(init.clone());
        }
        config
    }

    /// The secrets: the `chap-secrets` file, then the `[[secret]]` tables.
    ///
    /// # Errors
    ///
    /// The file cannot be read or parsed.
    pub fn secrets(&self) -> Result<SecretsTable, DialOutError> {
        let mut table = match &self.chap_secrets {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| {
                    DialOutError::Config(format!("{}: {error}", path.display()))
                })?;
                SecretsTable::parse_pppd(&text)
                    .map_err(|error| DialOutError::Config(format!("{}: {error}", path.display())))?
            }
            None => SecretsTable::new(),
        };
        for secret in &self.secret {
            let mut entry = SecretEntry::new(secret.password.0.clone().into_bytes());
            if let Some(address) = secret.remote_address {
                entry.addresses = vec![AllowedAddress::Exact(address)];
            }
            table.insert(&secret.name, "*", entry);
        }
        Ok(table)
    }

    /// Checks `[aaa]` and `[radius]`.
    ///
    /// # Errors
    ///
    /// `use-radius` without servers, or bad RADIUS timers.
    pub fn check_aaa(&self) -> Result<(), DialOutError> {
        match &self.radius {
            Some(radius) => radius
                .validate()
                .map_err(|error| DialOutError::Config(error.to_string())),
            None if self.aaa.use_radius => Err(DialOutError::Config(
                "aaa.use-radius needs a [radius] section with at least one server".into(),
            )),
            None => Ok(()),
        }
    }

    /// Whether users without a local secret are authenticated by RADIUS.
    pub fn uses_radius(&self) -> bool {
        self.aaa.use_radius && self.radius.is_some()
    }

    /// Whether the file sets a rate limit (the profile's or a `[[secret]]`'s), which only the
    /// user-space data path enforces.
    pub fn has_rate_limit(&self) -> bool {
        self.profile.rate_limit.is_some() || self.secret.iter().any(|s| s.rate_limit.is_some())
    }

    /// What a user may do: its secret's own limits, then the profile's.
    pub fn limits_for(&self, user: &str) -> ppp_tokio::aaa::SessionLimits {
        let profile = crate::profile::Limits {
            rate_limit: self.profile.rate_limit.map(|r| r.0),
            session_timeout: self.profile.session_timeout.map(|t| t.0),
            idle_timeout: self.profile.idle_timeout.map(|t| t.0),
            only_one: self.profile.only_one,
        };
        self.secret
            .iter()
            .find(|s| s.name == user)
            .map_or(profile, |s| s.limits().or(&profile))
            .to_runtime()
    }

    /// The link: LCP requiring `authentication`, silent and passive (a server waits for its
    /// caller), IPCP
    /// handing out the profile's addresses and DNS, CCP from the profile.
    ///
    /// # Errors
    ///
    /// An unknown authentication name, or no local address.
    pub fn link_config(&self) -> Result<LinkConfig, DialOutError> {
        let mut config = LinkConfig::default();
        config.lcp.mru = self.max_mru;
        config.lcp.max_mru = self.max_mru.max(config.lcp.max_mru);
        config.lcp.mtu = Some(self.max_mtu);
        config.lcp.allow.clear();
        config.lcp.require = parse_auth_list(&self.authentication)?;
        config.lcp.mrru = self
            .mrru
            .or_else(|| (self.line.len() > 1).then_some(self.max_mru));
        // pppd `silent` + `passive`: send nothing until the caller's Configure-Request arrives
        // (anything sent before the call is up would be lost), then never give up waiting.
        config.lcp.passive = true;
        config.lcp.silent = true;
        if self.lcp_echo_interval > 0 {
            config.lcp.echo_interval = Some(Duration::from_secs(self.lcp_echo_interval));
            config.lcp.echo_failure = 3;
        }
        config.auth.authenticator = ppp_link::auth::AuthenticatorConfig::new(self.name.as_str());
        if self.uses_radius() {
            config.auth.authenticator = config.auth.authenticator.external();
        }
        let local = self
            .profile
            .local_address
            .ok_or_else(|| DialOutError::Config("the profile needs a local-address".into()))?;
        let dns = [
            self.profile.dns_server.first().copied(),
            self.profile.dns_server.get(1).copied(),
        ];
        let mut ipcp = IpcpConfig::server(local, dns);
        ipcp.remote_address = self.profile.remote_address;
        config.ipcp = Some(ipcp);
        config.ipv6cp = self.profile.ipv6cp();
        config.ccp = self.profile.ccp();
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppp_ccp::Encryption;

    fn example(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/dialout")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn the_example_files_parse() {
        for name in ["lte.toml", "on-demand.toml", "analog.toml", "bundle.toml"] {
            let config = ClientConfig::parse(&example(name)).expect(name);
            for line in config.lines().expect(name) {
                line.dialer_config().expect(name);
                line.link_config().expect(name);
                line.port_config().expect(name);
            }
        }
        let bundle = ClientConfig::parse(&example("bundle.toml")).expect("bundle.toml");
        assert!(bundle.is_bundle());
        assert_eq!(bundle.link_config().expect("link").lcp.mrru, Some(1600));
        let server = ServerConfig::parse(&example("server.toml")).expect("server.toml");
        server.link_config().expect("server link");
        assert_eq!(server.answer_config().ring_count, 2);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        for text in [
            "prot = \"/dev/ttyS0\"",
            "persist = \"yes\"",
            "[profile]\nuse-encryption = \"maybe\"",
        ] {
            assert!(ClientConfig::parse(text).is_err(), "{text}");
        }
        let config = ClientConfig::parse("flow-control = \"sideways\"").expect("parses");
        assert!(config.port_config().is_err());
        let config = ClientConfig::parse("user = \"u\"\nallow = [\"kerberos\"]").expect("parses");
        assert!(config.link_config().is_err());
        let config = ClientConfig::parse("apn = \"a\\\"b\"").expect("parses");
        assert!(config.dialer_config().is_err(), "a quote in the APN");
    }

    #[test]
    fn debug_hides_the_pin_and_the_password() {
        let config = ClientConfig::parse("pin = \"4321\"\npassword = \"hunter2\"").expect("parses");
        let text = format!("{config:?}");
        assert!(
            !text.contains("4321") && !text.contains("hunter2"),
            "{text}"
        );
        assert!(text.contains("<hidden>"), "{text}");
    }

    #[test]
    fn dial_sequences() {
        let cellular = ClientConfig::parse("apn = \"internet\"\npin = \"1234\"").expect("parses");
        let dialer = cellular.dialer_config().expect("dialer");
        assert_eq!(dialer.dial_command(), "ATD*99#");
        assert_eq!(dialer.pin.as_deref(), Some("1234"));
        assert_eq!(dialer.apn.as_deref(), Some("internet"));
        let other = ClientConfig::parse("apn = \"x\"\nphone = \"*99***2#\"").expect("parses");
        assert_eq!(
            other.dialer_config().expect("dialer").dial_command(),
            "ATD*99***2#"
        );
        let analog =
            ClientConfig::parse("phone = \"5551234\"\nmodem-init = \"AT&D2\"").expect("parses");
        let dialer = analog.dialer_config().expect("dialer");
        assert_eq!(dialer.dial_command(), "ATDT5551234");
        assert!(dialer.registration.is_empty());
        assert_eq!(dialer.init.last().map(String::as_str), Some("AT&D2"));
    }

    #[test]
    fn link_settings() {
        let config = ClientConfig::parse(
            "user = \"u\"\npassword = \"p\"\nallow = [\"mschap2\"]\nmax-mru = 1400\nmax-mtu = 1300\nmrru = 1600\nignore-dcd = true\n[profile]\nuse-encryption = \"required\"\nuse-ipv6 = true",
        )
        .expect("parses");
        assert!(config.ignore_dcd);
        assert!(
            !ClientConfig::default().ignore_dcd,
            "DCD is watched by default"
        );
        let link = config.link_config().expect("link");
        assert_eq!(link.ipv6cp, Some(Ipv6cpConfig::default()));
        assert_eq!(link.lcp.mru, 1400);
        assert_eq!(link.lcp.mtu, Some(1300));
        assert_eq!(link.lcp.mrru, Some(1600));
        assert_eq!(link.lcp.allow, vec![AuthProtocol::MsChapV2]);
        assert_eq!(link.ccp.map(|c| c.encryption), Some(Encryption::Required));
        assert!(link.ipcp.is_some_and(|ipcp| ipcp.request_dns));
        // Without a user we refuse to be authenticated.
        let anonymous = ClientConfig::default().link_config().expect("link");
        assert!(anonymous.lcp.allow.is_empty());
        assert!(anonymous.ccp.is_none());
    }

    #[test]
    fn keepalive_and_max_fail_are_on_by_default() {
        let config = ClientConfig::default();
        assert_eq!(config.max_fail, 10, "pppd's maxfail");
        assert_eq!(config.keepalive_timeout, 30);
        let link = config.link_config().expect("link");
        // RouterOS semantics: an echo every timeout/6 s after a quiet interval, dead after the
        // timeout without anything from the peer.
        assert_eq!(link.lcp.echo_interval, Some(Duration::from_secs(5)));
        assert_eq!(link.lcp.echo_failure, 6);
        assert!(link.lcp.echo_adaptive);
        // The same from a file that says nothing about it.
        let parsed = ClientConfig::parse("port = \"/dev/ttyUSB2\"").expect("parses");
        assert_eq!(parsed.keepalive_timeout, 30);
        assert_eq!(parsed.max_fail, 10);
        // Off, and pppd's fixed interval instead.
        let off = ClientConfig::parse("keepalive-timeout = 0").expect("parses");
        assert_eq!(off.link_config().expect("link").lcp.echo_interval, None);
        let pppd = ClientConfig::parse("lcp-echo-interval = 7").expect("parses");
        let link = pppd.link_config().expect("link");
        assert_eq!(link.lcp.echo_interval, Some(Duration::from_secs(7)));
        assert_eq!(link.lcp.echo_failure, 4);
        assert!(!link.lcp.echo_adaptive);
    }

    #[test]
    fn profiles_map_to_ccp() {
        for (encryption, compression, expected) in [
            (UseEncryption::No, false, None),
            (UseEncryption::No, true, Some((Encryption::No, true))),
            (UseEncryption::Yes, false, Some((Encryption::Yes, false))),
            (UseEncryption::Yes, true, Some((Encryption::Yes, true))),
            (
                UseEncryption::Required,
                true,
                Some((Encryption::Required, false)),
            ),
        ] {
            let profile = Profile {
                use_encryption: encryption,
                use_compression: compression,
                ..Profile::default()
            };
            let ccp = profile.ccp().map(|c| (c.encryption, c.compression));
            assert_eq!(ccp, expected, "{encryption:?} {compression}");
        }
    }

    #[test]
    fn server_secrets_from_toml_and_chap_secrets() {
        let dir = std::env::temp_dir().join(format!("dialout-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("chap-secrets");
        std::fs::write(&file, "bob * builder 192.0.2.5\n").expect("write");
        let server = ServerConfig::parse(&format!(
            "chap-secrets = \"{}\"\n[[secret]]\nname = \"alice\"\npassword = \"w\"\naddress = \"192.0.2.9\"\n",
            file.display()
        ))
        .expect("parses");
        let table = server.secrets().expect("secrets");
        let bob = table.lookup_now("bob", "dialin").expect("bob");
        assert_eq!(bob.assigned_address(), Some(Ipv4Addr::new(192, 0, 2, 5)));
        let alice = table.lookup_now("alice", "dialin").expect("alice");
        assert_eq!(alice.assigned_address(), Some(Ipv4Addr::new(192, 0, 2, 9)));
        assert!(table.lookup_now("mallory", "dialin").is_none());
        let debug = format!("{:?}", server.secret);
        assert!(!debug.contains("\"w\""), "{debug}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
