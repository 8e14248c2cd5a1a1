//! The TOML configuration of the PPPoE client and of the access concentrator, with RouterOS's
//! property names (`service-name`, `max-mru`, `add-default-route`, `use-peer-dns`, profiles,
//! secrets, pools, ...), and how each becomes the options of a runtime.
//!
//! Every key is optional; the programs' command-line flags override the file's values.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ppp_auth::{AllowedAddress, SecretEntry, SecretsTable};
use ppp_ipcp::IpcpConfig;
use ppp_link::LinkConfig;
use ppp_link::auth::{AuthenticatorConfig, ClientCredentials};
use ppp_tokio::pppoe::{Backoff, ClientOptions, ServerOptions};
use pppoe_discovery::{AcConfig, ClientConfig, RateLimit};
use serde::Deserialize;

use super::ConfigError;
pub use crate::profile::{
    AaaConfig, Password, ProfileConfig, RadiusConfig, SecretConfig, UseCompression, UseEncryption,
    UseIpv6, auth_method, auth_methods, ccp_config, ipv6cp_config,
};

/// Reads a TOML file into `T`.
///
/// # Errors
///
/// The file cannot be read, or is not valid TOML for `T` (unknown keys included).
pub fn load<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses TOML text into `T`; `origin` names it in errors.
///
/// # Errors
///
/// Not valid TOML for `T`.
pub fn parse<T: for<'de> Deserialize<'de>>(text: &str, origin: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|error| ConfigError::Parse {
        path: origin.to_owned(),
        message: error.to_string(),
    })
}

/// LCP echo for a RouterOS `keepalive-timeout` in seconds: an Echo-Request every
/// `timeout / 6` seconds (at least 1) but only after an interval in which nothing arrived from
/// the peer (adaptive, like pppd's `lcp-echo-adaptive`), the peer declared dead after `timeout`
/// seconds without any traffic or reply. 0 turns keepalives off.
pub fn keepalive(timeout_secs: u64) -> (Option<Duration>, u32) {
    if timeout_secs == 0 {
        return (None, 0);
    }
    let interval = (timeout_secs / 6).max(1);
    let failures = u32::try_from(timeout_secs.div_ceil(interval)).unwrap_or(u32::MAX);
    (Some(Duration::from_secs(interval)), failures)
}

/// Applies a `keepalive-timeout` to a link. A server waits twice as long as a client before
/// declaring the peer dead, as RouterOS does (2 × `keepalive-timeout` without traffic or replies).
pub fn apply_keepalive(link: &mut LinkConfig, timeout_secs: u64, server: bool) {
    let timeout_secs = if server {
        timeout_secs.saturating_mul(2)
    } else {
        timeout_secs
    };
    let (interval, failures) = keepalive(timeout_secs);
    link.lcp.echo_interval = interval;
    link.lcp.echo_failure = failures;
    link.lcp.echo_adaptive = true;
}

/// A client profile (RouterOS `/ppp profile` as a client uses it).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClientProfile {
    /// MPPE.
    pub use_encryption: UseEncryption,
    /// Deflate.
    pub use_compression: UseCompression,
    /// IPv6CP.
    pub use_ipv6: UseIpv6,
}

/// The client's configuration file: RouterOS `/interface pppoe-client` properties.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClientFile {
    /// The Ethernet interface.
    pub interface: Option<String>,
    /// The service to ask for (empty: any).
    pub service_name: String,
    /// The AC to accept (empty: any).
    pub ac_name: String,
    /// Our user name.
    pub user: String,
    /// Our password.
    pub password: Password,
    /// Methods we accept to authenticate with, preferred first.
    pub allow: Vec<String>,
    /// Largest MRU (above 1492 asks for RFC 4638 PPP-Max-Payload).
    pub max_mru: u16,
    /// Largest MTU.
    pub max_mtu: u16,
    /// Multilink MRRU to ask for.
    pub mrru: Option<u16>,
    /// Add a default route through the session.
    pub add_default_route: bool,
    /// The metric of that route.
    pub default_route_distance: u32,
    /// Write the peer's DNS servers to `resolv-conf`.
    pub use_peer_dns: bool,
    /// Where the peer's DNS servers go (never `/etc/resolv.conf` unless named here).
    pub resolv_conf: Option<PathBuf>,
    /// Seconds without an answer to LCP echo before the link is declared dead (0: off).
    pub keepalive_timeout: u64,
    /// Compression and encryption.
    pub profile: ClientProfile,
    /// The TUN device's name.
    pub tun_name: Option<String>,
    /// Open the TUN device with offloads (TCP super-packets through one read or write; see
    /// docs/data-plane.md).
    pub tun_offload: bool,
    /// Reconnect after the session ends.
    pub reconnect: bool,
    /// Record every Ethernet frame here.
    pub pcap: Option<PathBuf>,
    /// The control socket for `monitor`.
    pub control: Option<PathBuf>,
}

impl Default for ClientFile {
    fn default() -> Self {
        ClientFile {
            interface: None,
            service_name: String::new(),
            ac_name: String::new(),
            user: String::new(),
            password: Password::default(),
            allow: ["mschap2", "mschap1", "chap", "pap"]
                .map(str::to_owned)
                .to_vec(),
            max_mru: 1492,
            max_mtu: 1492,
            mrru: None,
            add_default_route: false,
            default_route_distance: 1,
            use_peer_dns: false,
            resolv_conf: None,
            keepalive_timeout: 60,
            profile: ClientProfile::default(),
            tun_name: None,
            tun_offload: true,
            reconnect: true,
            pcap: None,
            control: None,
        }
    }
}

impl ClientFile {
    /// The runtime options.
    ///
    /// # Errors
    ///
    /// No interface, an unknown method in `allow`, `use-peer-dns` without `resolv-conf`.
    pub fn to_options(&self) -> Result<ClientOptions, ConfigError> {
        let interface = self
            .interface
            .as_deref()
            .filter(|i| !i.is_empty())
            .ok_or_else(|| ConfigError::invalid("interface", "no interface given"))?;
        let mut options = ClientOptions::new(interface);
        options.discovery = ClientConfig {
            ac_name: self.ac_name.clone(),
            service_name: self.service_name.clone(),
            max_payload: self.max_mru,
            ..ClientConfig::default()
        };
        let mut link = LinkConfig::pppoe();
        link.lcp.mru = self.max_mru;
        link.lcp.max_mru = self.max_mru;
        link.lcp.mtu = Some(self.max_mtu);
        link.lcp.mrru = self.mrru;
        link.lcp.allow = if self.user.is_empty() {
            Vec::new()
        } else {
            auth_methods(&self.allow)?
        };
        link.lcp.require = Vec::new();
        apply_keepalive(&mut link, self.keepalive_timeout, false);
        if !self.user.is_empty() {
            link.auth.credentials = Some(ClientCredentials::password(
                self.user.clone(),
                self.password.0.clone(),
            ));
        }
        let mut ipcp = IpcpConfig::client();
        ipcp.request_dns = self.use_peer_dns;
        link.ipcp = Some(ipcp);
        link.ccp = ccp_config(self.profile.use_encryption, self.profile.use_compression);
        link.ipv6cp = ipv6cp_config(self.profile.use_ipv6);
        options.link = link;
        options.tun_name.clone_from(&self.tun_name);
        options.tun_offload = self.tun_offload;
        options.default_route_metric = self
            .add_default_route
            .then_some(self.default_route_distance);
        if self.use_peer_dns {
            let path = self.resolv_conf.clone().ok_or_else(|| {
                ConfigError::invalid("use-peer-dns", "needs resolv-conf (a file to write)")
            })?;
            options.resolv_conf = Some(path);
        }
        options.reconnect = self.reconnect.then(Backoff::default);
        options.pcap.clone_from(&self.pcap);
        Ok(options)
    }
}

/// A range of a pool: `"192.0.2.100-192.0.2.199"`, `"192.0.2.0/25"` or one address.
pub fn parse_range(text: &str) -> Result<(Ipv4Addr, Ipv4Addr), ConfigError> {
    let invalid = || ConfigError::invalid("pools", format!("bad range {text:?}"));
    let text = text.trim();
    if let Some((first, last)) = text.split_once('-') {
        let first: Ipv4Addr = first.trim().parse().map_err(|_| invalid())?;
        let last: Ipv4Addr = last.trim().parse().map_err(|_| invalid())?;
        if u32::from(last) < u32::from(first) {
            return Err(invalid());
        }
        Ok((first, last))
    } else if let Some((net, bits)) = text.split_once('/') {
        let net: Ipv4Addr = net.trim().parse().map_err(|_| invalid())?;
        let bits: u32 = bits.trim().parse().map_err(|_| invalid())?;
        if bits > 32 {
            return Err(invalid());
        }
        let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
        let first = u32::from(net) & mask;
        let last = first | !mask;
        Ok((Ipv4Addr::from(first), Ipv4Addr::from(last)))
    } else {
        let address: Ipv4Addr = text.parse().map_err(|_| invalid())?;
        Ok((address, address))
    }
}

/// The access concentrator's configuration file.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct AcFile {
    /// The Ethernet interfaces to serve.
    pub interfaces: Vec<String>,
    /// The AC-Name.
    pub ac_name: String,
    /// The services offered.
    pub services: Vec<String>,
    /// Most sessions at once (per interface).
    pub max_sessions: usize,
    /// A new session from a MAC address closes its old one.
    pub one_session_per_host: bool,
    /// Milliseconds to wait before each PADO.
    pub pado_delay: u64,
    /// PADIs answered per second overall, bursts as large (accel-ppp's `padi-limit`; 0: no
    /// limit).
    pub padi_limit: u32,
    /// PADIs answered per second from one MAC address, bursts of five times that (0: no limit).
    pub padi_limit_per_mac: u32,
    /// Beyond `padi-limit`, PADIs answered per second from clients trying again (their address
    /// was refused 1 to 3.5 s before and not since), bursts as large (0: none).
    pub padi_retry_limit: u32,
    /// Seconds without an answer to LCP echo before a session is declared dead (0: off).
    pub keepalive_timeout: u64,
    /// Multilink (RFC 1990): the MRRU to offer. Sessions that negotiate it carry packets up to
    /// this size in fragments (1500-byte packets through a 1492-byte session), and the
    /// sessions of one user and Endpoint Discriminator join one bundle (bonded lines).
    pub mrru: Option<u16>,
    /// Methods clients must authenticate with, preferred first.
    pub authentication: Vec<String>,
    /// A pppd `chap-secrets` file, used where `secrets` has no entry.
    pub chap_secrets: Option<PathBuf>,
    /// The profile of secrets that name none (and of `chap-secrets` users).
    pub default_profile: String,
    /// TUN devices are named PREFIX0, PREFIX1, ...
    pub tun_prefix: String,
    /// Clamp TCP MSS.
    pub clamp_mss: bool,
    /// Open the sessions' TUN devices with offloads (TCP super-packets through one read or
    /// write; see docs/data-plane.md).
    pub tun_offload: bool,
    /// Worker threads per interface, each serving the clients the kernel steers to it by MAC
    /// address (0: one per CPU the process may use, at most 64; see
    /// `ppp_tokio::pppoe::ServerOptions::workers`).
    pub workers: usize,
    /// Record every Ethernet frame here.
    pub pcap: Option<PathBuf>,
    /// The control socket for `sessions`.
    pub control: Option<PathBuf>,
    /// Users.
    pub secrets: Vec<SecretConfig>,
    /// Profiles by name.
    pub profiles: BTreeMap<String, ProfileConfig>,
    /// Address pools by name: lists of ranges.
    pub pools: BTreeMap<String, Vec<String>>,
    /// RouterOS `/ppp aaa`: RADIUS authentication, accounting, interim updates.
    pub aaa: AaaConfig,
    /// RouterOS `/radius` and `/radius incoming`.
    pub radius: Option<RadiusConfig>,
}

impl Default for AcFile {
    fn default() -> Self {
        AcFile {
            interfaces: Vec::new(),
            ac_name: "pppoe-ac".to_owned(),
            services: vec!["internet".to_owned()],
            max_sessions: 64,
            one_session_per_host: false,
            pado_delay: 0,
            padi_limit: 5000,
            padi_limit_per_mac: 1,
            padi_retry_limit: 2000,
            keepalive_timeout: 60,
            mrru: None,
            authentication: ["mschap2", "mschap1", "chap", "pap"]
                .map(str::to_owned)
                .to_vec(),
            chap_secrets: None,
            default_profile: "default".to_owned(),
            tun_prefix: "ppp".to_owned(),
            clamp_mss: true,
            tun_offload: true,
            workers: 0,
            pcap: None,
            control: None,
            secrets: Vec::new(),
            profiles: BTreeMap::new(),
            pools: BTreeMap::new(),
            aaa: AaaConfig::default(),
            radius: None,
        }
    }
}

impl AcFile {
    /// Checks what can be checked without running: methods, pools, profiles' pool names,
    /// secrets' profile names.
    ///
    /// # Errors
    ///
    /// The first problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.interfaces.is_empty() {
            return Err(ConfigError::invalid("interfaces", "no interface given"));
        }
        if auth_methods(&self.authentication)?.is_empty() {
            return Err(ConfigError::invalid(
                "authentication",
                "at least one method is needed",
            ));
        }
        for ranges in self.pools.values() {
            for range in ranges {
                parse_range(range)?;
            }
        }
        for (name, profile) in &self.profiles {
            if profile.dns_server.len() > 2 {
                return Err(ConfigError::invalid(
                    &format!("profiles.{name}.dns-server"),
                    "at most two servers",
                ));
            }
            if let Some(remote) = &profile.remote_address
                && remote.parse::<Ipv4Addr>().is_err()
                && !self.pools.contains_key(remote)
            {
                return Err(ConfigError::invalid(
                    &format!("profiles.{name}.remote-address"),
                    format!("{remote:?} is neither an address nor a pool"),
                ));
            }
        }
        for secret in &self.secrets {
            if let Some(profile) = &secret.profile
                && !self.profiles.contains_key(profile)
            {
                return Err(ConfigError::invalid(
                    &format!("secrets.{}.profile", secret.name),
                    format!("no profile {profile:?}"),
                ));
            }
        }
        match &self.radius {
            Some(radius) => radius.validate()?,
            None if self.aaa.use_radius => {
                return Err(ConfigError::invalid(
                    "aaa.use-radius",
                    "needs a [radius] section with at least one server",
                ));
            }
            None => {}
        }
        Ok(())
    }

    /// The secrets: the file's `secrets` first, then the lines of `chap-secrets` (read now).
    /// Each entry carries its profile name and its remote address.
    ///
    /// # Errors
    ///
    /// `chap-secrets` cannot be read or parsed.
    pub fn secrets_table(&self) -> Result<SecretsTable, ConfigError> {
        let mut table = SecretsTable::new();
        for secret in &self.secrets {
            let mut entry = SecretEntry::new(secret.password.0.clone());
            entry.profile = Some(
                secret
                    .profile
                    .clone()
                    .unwrap_or_else(|| self.default_profile.clone()),
            );
            if let Some(address) = secret.remote_address {
                entry.addresses = vec![AllowedAddress::Exact(address)];
            }
            table.insert(&secret.name, "*", entry);
        }
        if let Some(path) = &self.chap_secrets {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            let file = SecretsTable::parse_pppd(&text).map_err(|error| ConfigError::Parse {
                path: path.display().to_string(),
                message: error.to_string(),
            })?;
            for line in file.lines() {
                table.insert(&line.client, &line.server, line.entry.clone());
            }
        }
        Ok(table)
    }

    /// The runtime options for one interface. The link template carries the default profile's
    /// IPCP and CCP; once a user is known, the [`ProfilePolicy`](super::policy::ProfilePolicy)
    /// replaces them with those of the user's profile.
    ///
    /// # Errors
    ///
    /// An unknown authentication method.
    pub fn to_options(&self, interface: &str) -> Result<ServerOptions, ConfigError> {
        let mut options = ServerOptions::new(interface);
        options.ac = AcConfig {
            ac_name: self.ac_name.clone(),
            services: self.services.clone(),
            max_sessions: self.max_sessions,
            one_session_per_host: self.one_session_per_host,
            pado_delay: Duration::from_millis(self.pado_delay),
            padi_limit: (self.padi_limit > 0)
                .then(|| RateLimit::new(self.padi_limit, self.padi_limit)),
            padi_limit_per_mac: (self.padi_limit_per_mac > 0).then(|| {
                RateLimit::new(
                    self.padi_limit_per_mac,
                    self.padi_limit_per_mac.saturating_mul(5),
                )
            }),
            padi_retry_limit: (self.padi_retry_limit > 0)
                .then(|| RateLimit::new(self.padi_retry_limit, self.padi_retry_limit)),
            ..AcConfig::default()
        };
        let mut link = LinkConfig::pppoe();
        link.lcp.allow = Vec::new();
        link.lcp.require = auth_methods(&self.authentication)?;
        link.lcp.mrru = self.mrru;
        apply_keepalive(&mut link, self.keepalive_timeout, true);
        link.auth.credentials = None;
        link.auth.authenticator = AuthenticatorConfig::new(self.ac_name.clone());
        let default = self.profiles.get(&self.default_profile);
        let local = default
            .and_then(|p| p.local_address)
            .unwrap_or(Ipv4Addr::new(192, 0, 2, 1));
        link.ipcp = Some(IpcpConfig::server(local, [None, None]));
        link.ccp = default.and_then(|p| ccp_config(p.use_encryption, p.use_compression));
        link.ipv6cp = default.and_then(|p| ipv6cp_config(p.use_ipv6));
        options.link = link;
        options.tun_prefix.clone_from(&self.tun_prefix);
        options.clamp_mss = self.clamp_mss;
        options.tun_offload = self.tun_offload;
        options.workers = match self.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        options.pcap.clone_from(&self.pcap);
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppp_ccp::Encryption;
    use ppp_link::auth::AuthProtocol;

    #[test]
    fn passwords_stay_out_of_debug_output() {
        let file: ClientFile =
            parse("user = \"alice\"\npassword = \"s3cret\"", "t").expect("parse");
        let text = format!("{file:?}");
        assert!(
            !text.contains("s3cret") && text.contains("<hidden>"),
            "{text}"
        );
        let options = ClientFile {
            interface: Some("eth0".into()),
            ..file
        }
        .to_options()
        .expect("options");
        assert!(!format!("{options:?}").contains("s3cret"));
    }

    #[test]
    fn method_names() {
        let table = [
            ("mschap2", AuthProtocol::MsChapV2),
            ("MSCHAP1", AuthProtocol::MsChapV1),
            ("chap", AuthProtocol::ChapMd5),
            ("pap", AuthProtocol::Pap),
        ];
        for (name, method) in table {
            assert_eq!(auth_method(name).expect(name), method);
        }
        assert!(auth_method("eap").is_err());
    }

    #[test]
    fn keepalive_table() {
        let table = [
            (0, None, 0),
            (60, Some(10), 6),
            (10, Some(1), 10),
            (3, Some(1), 3),
            (25, Some(4), 7),
        ];
        for (timeout, interval, failures) in table {
            assert_eq!(
                keepalive(timeout),
                (interval.map(Duration::from_secs), failures),
                "{timeout}"
            );
        }
    }

    #[test]
    fn a_server_waits_twice_the_keepalive_timeout() {
        let mut client = LinkConfig::pppoe();
        apply_keepalive(&mut client, 60, false);
        let mut server = LinkConfig::pppoe();
        apply_keepalive(&mut server, 60, true);
        let dead_after =
            |link: &LinkConfig| link.lcp.echo_interval.unwrap() * link.lcp.echo_failure;
        assert_eq!(dead_after(&client), Duration::from_secs(60));
        assert_eq!(dead_after(&server), Duration::from_secs(120));
        assert!(client.lcp.echo_adaptive && server.lcp.echo_adaptive);
    }

    #[test]
    fn ranges() {
        let table = [
            ("192.0.2.10-192.0.2.20", (10, 20)),
            ("192.0.2.0/28", (0, 15)),
            ("192.0.2.7", (7, 7)),
        ];
        for (text, (first, last)) in table {
            assert_eq!(
                parse_range(text).expect(text),
                (
                    Ipv4Addr::new(192, 0, 2, first),
                    Ipv4Addr::new(192, 0, 2, last)
                )
            );
        }
        for bad in ["192.0.2.20-192.0.2.10", "x", "192.0.2.0/33", ""] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ccp_from_profile() {
        assert_eq!(ccp_config(UseEncryption::Default, UseCompression::No), None);
        let required = ccp_config(UseEncryption::Required, UseCompression::Default).expect("ccp");
        assert_eq!(required.encryption, Encryption::Required);
        let deflate = ccp_config(UseEncryption::No, UseCompression::Yes).expect("ccp");
        assert!(deflate.compression);
    }

    #[test]
    fn padi_limits_from_the_file() {
        let defaults = AcFile::default().to_options("eth0").expect("options").ac;
        let library = AcConfig::default();
        assert_eq!(defaults.padi_limit, library.padi_limit);
        assert_eq!(defaults.padi_limit_per_mac, library.padi_limit_per_mac);
        assert_eq!(defaults.padi_retry_limit, library.padi_retry_limit);
        let file: AcFile = parse(
            "padi-limit = 300\npadi-limit-per-mac = 2\npadi-retry-limit = 0\n",
            "test",
        )
        .expect("parse");
        let ac = file.to_options("eth0").expect("options").ac;
        assert_eq!(ac.padi_limit, Some(RateLimit::new(300, 300)));
        assert_eq!(ac.padi_limit_per_mac, Some(RateLimit::new(2, 10)));
        assert_eq!(ac.padi_retry_limit, None);
        let off: AcFile = parse("padi-limit = 0\npadi-limit-per-mac = 0\n", "test").expect("parse");
        let ac = off.to_options("eth0").expect("options").ac;
        assert_eq!((ac.padi_limit, ac.padi_limit_per_mac), (None, None));
    }

    #[test]
    fn client_file_to_options() {
        let file: ClientFile = parse(
            r#"
            interface = "veth0"
            service-name = "internet"
            ac-name = "ac1"
            user = "alice"
            password = "secret"
            allow = ["mschap2", "chap"]
            max-mru = 1480
            max-mtu = 1480
            add-default-route = true
            default-route-distance = 5
            use-peer-dns = true
            resolv-conf = "/tmp/resolv.conf"
            keepalive-timeout = 30
            reconnect = false
            [profile]
            use-encryption = "yes"
            "#,
            "test",
        )
        .expect("parse");
        let options = file.to_options().expect("options");
        assert_eq!(options.interface, "veth0");
        assert_eq!(options.discovery.service_name, "internet");
        assert_eq!(options.discovery.ac_name, "ac1");
        assert_eq!(options.discovery.max_payload, 1480);
        assert_eq!(
            options.link.lcp.allow,
            vec![AuthProtocol::MsChapV2, AuthProtocol::ChapMd5]
        );
        assert_eq!(options.link.lcp.mtu, Some(1480));
        assert_eq!(options.link.lcp.echo_interval, Some(Duration::from_secs(5)));
        assert_eq!(options.default_route_metric, Some(5));
        assert_eq!(
            options.resolv_conf.as_deref(),
            Some(Path::new("/tmp/resolv.conf"))
        );
        assert!(options.reconnect.is_none());
        assert_eq!(
            options.link.ccp.map(|c| c.encryption),
            Some(Encryption::Yes)
        );
    }

    #[test]
    fn client_file_errors() {
        assert!(parse::<ClientFile>("no-such-key = 1", "t").is_err());
        let no_interface = ClientFile::default();
        assert!(no_interface.to_options().is_err());
        let dns_without_file = ClientFile {
            interface: Some("eth0".into()),
            use_peer_dns: true,
            ..ClientFile::default()
        };
        assert!(dns_without_file.to_options().is_err());
    }

    #[test]
    fn sample_ac_config_is_valid() {
        let text = include_str!("../../examples/pppoe/access-concentrator.toml");
        let file: AcFile = parse(text, "sample").expect("parse");
        file.validate().expect("valid");
        let options = file.to_options("eth1").expect("options");
        assert_eq!(options.ac.ac_name, file.ac_name);
        assert!(!options.link.lcp.require.is_empty());
        let table = file.secrets_table().expect("secrets");
        assert!(!table.lines().is_empty());
    }

    #[test]
    fn sample_client_config_is_valid() {
        let text = include_str!("../../examples/pppoe/pppoe-client.toml");
        let file: ClientFile = parse(text, "sample").expect("parse");
        file.to_options().expect("options");
    }

    #[test]
    fn ac_validation() {
        let mut file = AcFile {
            interfaces: vec!["eth1".into()],
            ..AcFile::default()
        };
        file.validate().expect("defaults are valid");
        file.profiles.insert(
            "p".into(),
            ProfileConfig {
                remote_address: Some("nopool".into()),
                ..ProfileConfig::default()
            },
        );
        assert!(file.validate().is_err());
        file.pools
            .insert("nopool".into(), vec!["192.0.2.2-192.0.2.9".into()]);
        file.validate().expect("pool exists now");
        file.secrets.push(SecretConfig {
            name: "u".into(),
            profile: Some("missing".into()),
            ..SecretConfig::default()
        });
        assert!(file.validate().is_err());
    }
}
