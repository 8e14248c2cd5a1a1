//! The access concentrator's session policy: a user's secret picks a profile, the profile gives
//! the session's IPCP (local address, remote address or address pool, DNS servers), CCP
//! (`use-encryption`, `use-compression`), IPv6CP (`use-ipv6`) and limits (`rate-limit`,
//! `session-timeout`, `idle-timeout`, `only-one`; a secret's own win), where `default` takes the
//! default profile's setting as RouterOS does, and a secret limited to one PPPoE service refuses
//! the others. A user RADIUS accepted gets the default profile, with its address from
//! Framed-IP-Address or Framed-Pool.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ppp_auth::SecretEntry;
use ppp_ccp::CcpConfig;
use ppp_ipcp::Ipv6cpConfig;
use ppp_ipcp::{AddressPool, AddressRange, Ipcp, IpcpConfig};
use ppp_radius::Authorization;
use ppp_tokio::pppoe::{SessionDecision, SessionPolicy, SessionRequest};

use super::ConfigError;
use super::config::{AcFile, ccp_config, ipv6cp_config, parse_range};
use crate::profile::Limits;

/// An address pool of several ranges (RouterOS `/ip pool` with `ranges=a-b,c-d`); clones share
/// the addresses in use.
#[derive(Clone, Debug)]
pub struct Pool {
    ranges: Vec<AddressRange>,
}

impl Pool {
    /// The pool of `ranges`, each `(first, last)`.
    pub fn new(ranges: &[(Ipv4Addr, Ipv4Addr)]) -> Self {
        Pool {
            ranges: ranges
                .iter()
                .map(|&(first, last)| AddressRange::new(first, last))
                .collect(),
        }
    }

    /// How many addresses are handed out.
    pub fn in_use(&self) -> usize {
        self.ranges.iter().map(AddressRange::in_use).sum()
    }
}

impl AddressPool for Pool {
    fn allocate(&mut self) -> Option<Ipv4Addr> {
        self.ranges.iter_mut().find_map(AddressPool::allocate)
    }

    fn release(&mut self, address: Ipv4Addr) {
        for range in &mut self.ranges {
            range.release(address);
        }
    }
}

/// A profile ready for sessions.
#[derive(Clone, Debug)]
struct Profile {
    local: Ipv4Addr,
    remote: Remote,
    dns: [Option<Ipv4Addr>; 2],
    /// Encryption and compression (`None`: no CCP).
    ccp: Option<CcpConfig>,
    /// IPv6CP (`None`: no IPv6).
    ipv6cp: Option<Ipv6cpConfig>,
    /// Rate limit, timeouts, `only-one` (the default profile's where this one says nothing).
    limits: Limits,
}

#[derive(Clone, Debug)]
enum Remote {
    None,
    Address(Ipv4Addr),
    Pool(Pool),
}

/// The policy of an access concentrator configured by an [`AcFile`]. Clones share the pools,
/// so one policy per interface hands out addresses from the same pools.
#[derive(Clone, Debug)]
pub struct ProfilePolicy {
    profiles: BTreeMap<String, Profile>,
    default_profile: String,
    services: BTreeMap<String, String>,
    /// Secrets' own limits, by user name.
    secret_limits: BTreeMap<String, Limits>,
    pools: BTreeMap<String, Pool>,
}

impl ProfilePolicy {
    /// The policy of `file` (validate it first).
    ///
    /// # Errors
    ///
    /// A bad pool range, or a profile's remote address that is neither an address nor a pool.
    pub fn from_file(file: &AcFile) -> Result<Self, ConfigError> {
        let mut pools = BTreeMap::new();
        for (name, ranges) in &file.pools {
            let ranges = ranges
                .iter()
                .map(|r| parse_range(r))
                .collect::<Result<Vec<_>, _>>()?;
            pools.insert(name.clone(), Pool::new(&ranges));
        }
        let mut profiles = BTreeMap::new();
        let default = file.profiles.get(&file.default_profile);
        for (name, config) in &file.profiles {
            let encryption = config
                .use_encryption
                .or(default.map(|d| d.use_encryption).unwrap_or_default());
            let compression = config
                .use_compression
                .or(default.map(|d| d.use_compression).unwrap_or_default());
            let ipv6 = config
                .use_ipv6
                .or(default.map(|d| d.use_ipv6).unwrap_or_default());
            let limits = config
                .limits()
                .or(&default.map(|d| d.limits()).unwrap_or_default());
            let remote = match config.remote_address.as_deref() {
                None => Remote::None,
                Some(text) => match text.parse::<Ipv4Addr>() {
                    Ok(address) => Remote::Address(address),
                    Err(_) => Remote::Pool(pools.get(text).cloned().ok_or_else(|| {
                        ConfigError::invalid(
                            &format!("profiles.{name}.remote-address"),
                            format!("no pool {text:?}"),
                        )
                    })?),
                },
            };
            profiles.insert(
                name.clone(),
                Profile {
                    local: config.local_address.unwrap_or(Ipv4Addr::new(192, 0, 2, 1)),
                    remote,
                    dns: [
                        config.dns_server.first().copied(),
                        config.dns_server.get(1).copied(),
                    ],
                    ccp: ccp_config(encryption, compression),
                    ipv6cp: ipv6cp_config(ipv6),
                    limits,
                },
            );
        }
        let services = file
            .secrets
            .iter()
            .filter_map(|s| Some((s.name.clone(), s.service.clone()?)))
            .collect();
        let secret_limits = file
            .secrets
            .iter()
            .map(|s| (s.name.clone(), s.limits()))
            .collect();
        Ok(ProfilePolicy {
            profiles,
            default_profile: file.default_profile.clone(),
            services,
            secret_limits,
            pools,
        })
    }

    /// Addresses in use per pool.
    pub fn pool_usage(&self) -> BTreeMap<String, usize> {
        self.pools
            .iter()
            .map(|(name, pool)| (name.clone(), pool.in_use()))
            .collect()
    }

    /// The profile called `name`, or the default one.
    fn profile(&self, name: Option<&str>) -> Option<&Profile> {
        let name = name.unwrap_or(&self.default_profile);
        self.profiles
            .get(name)
            .or_else(|| self.profiles.get(&self.default_profile))
    }

    fn ipcp_for(&self, profile: Option<&str>) -> Option<Ipcp> {
        let profile = self.profile(profile)?;
        let mut config = IpcpConfig::server(profile.local, profile.dns);
        Some(match &profile.remote {
            Remote::None => Ipcp::new(config),
            Remote::Address(address) => {
                config.remote_address = Some(*address);
                Ipcp::new(config)
            }
            Remote::Pool(pool) => Ipcp::with_address_pool(config, pool.clone()),
        })
    }
}

impl SessionPolicy for ProfilePolicy {
    fn decide(&mut self, request: &SessionRequest, entry: Option<SecretEntry>) -> SessionDecision {
        if let Some(service) = self.services.get(&request.secret.client)
            && !service.is_empty()
            && *service != request.service_name
        {
            tracing::info!(
                "user \"{}\" may not use service \"{}\"",
                request.secret.client,
                request.service_name
            );
            return SessionDecision::default();
        }
        let profile = entry.as_ref().and_then(|e| e.profile.clone());
        let ipcp = entry
            .as_ref()
            .and_then(|_| self.ipcp_for(profile.as_deref()));
        let chosen = entry
            .as_ref()
            .and_then(|_| self.profile(profile.as_deref()));
        let ccp = chosen.map(|p| p.ccp.clone());
        let ipv6cp = chosen.map(|p| p.ipv6cp.clone());
        let profile_limits = chosen.map(|p| p.limits).unwrap_or_default();
        let limits = self
            .secret_limits
            .get(&request.secret.client)
            .map_or(profile_limits, |own| own.or(&profile_limits));
        SessionDecision {
            entry,
            ipcp,
            ccp,
            ipv6cp,
            limits: limits.to_runtime(),
        }
    }

    /// A clone: the pools' addresses in use are shared, so the workers of a server hand out
    /// each address once.
    fn for_worker(&self) -> Option<Box<dyn SessionPolicy>> {
        Some(Box::new(self.clone()))
    }

    fn decide_radius(
        &mut self,
        request: &SessionRequest,
        authorization: &Authorization,
    ) -> SessionDecision {
        let Some(profile) = self.profile(None).cloned() else {
            return SessionDecision::default();
        };
        let mut config = IpcpConfig::server(profile.local, profile.dns);
        let framed = authorization
            .framed_ip_address
            .filter(|a| u32::from(*a) < 0xFFFF_FFFE);
        let ipcp = match (framed, authorization.framed_pool.as_deref()) {
            (Some(address), _) => {
                config.remote_address = Some(address);
                Ipcp::new(config)
            }
            (None, Some(name)) => match self.pools.get(name) {
                Some(pool) => Ipcp::with_address_pool(config, pool.clone()),
                None => {
                    tracing::warn!(
                        "user \"{}\": RADIUS names pool \"{name}\", which is not configured; \
                         the default profile's address is used",
                        request.secret.client
                    );
                    self.ipcp_for(None).unwrap_or_else(|| Ipcp::new(config))
                }
            },
            (None, None) => self.ipcp_for(None).unwrap_or_else(|| Ipcp::new(config)),
        };
        SessionDecision {
            entry: None,
            ipcp: Some(ipcp),
            ccp: Some(profile.ccp.clone()),
            ipv6cp: Some(profile.ipv6cp.clone()),
            limits: profile.limits.to_runtime(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pppoe::config::{
        ProfileConfig, SecretConfig, UseCompression, UseEncryption, UseIpv6, parse,
    };
    use ppp_auth::SecretRequest;
    use ppp_link::auth::AuthProtocol;
    use pppoe_discovery::MacAddr;

    fn file() -> AcFile {
        parse(
            r#"
            interfaces = ["eth1"]
            [[secrets]]
            name = "alice"
            password = "a"
            service = "internet"
            [[secrets]]
            name = "bob"
            password = "b"
            profile = "static"
            [profiles.default]
            local-address = "192.0.2.1"
            remote-address = "pool1"
            dns-server = ["198.51.100.53"]
            [profiles.static]
            local-address = "192.0.2.1"
            remote-address = "192.0.2.50"
            [pools]
            pool1 = ["192.0.2.100-192.0.2.100", "192.0.2.200/31"]
            "#,
            "test",
        )
        .expect("parse")
    }

    fn request(user: &str, service: &str) -> SessionRequest {
        SessionRequest {
            session_id: 1,
            client_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            service_name: service.into(),
            secret: SecretRequest {
                client: user.into(),
                server: "ac".into(),
                method: AuthProtocol::ChapMd5,
                token: ppp_auth::SecretToken(1),
            },
        }
    }

    #[test]
    fn pool_hands_out_every_range_then_none() {
        let mut pool = Pool::new(&[
            (Ipv4Addr::new(192, 0, 2, 100), Ipv4Addr::new(192, 0, 2, 100)),
            (Ipv4Addr::new(192, 0, 2, 200), Ipv4Addr::new(192, 0, 2, 201)),
        ]);
        let got: Vec<_> = std::iter::from_fn(|| pool.allocate()).take(5).collect();
        assert_eq!(
            got,
            vec![
                Ipv4Addr::new(192, 0, 2, 100),
                Ipv4Addr::new(192, 0, 2, 200),
                Ipv4Addr::new(192, 0, 2, 201)
            ]
        );
        pool.release(Ipv4Addr::new(192, 0, 2, 200));
        assert_eq!(pool.in_use(), 2);
        assert_eq!(pool.allocate(), Some(Ipv4Addr::new(192, 0, 2, 200)));
    }

    #[test]
    fn service_restriction_and_profiles() {
        let file = file();
        file.validate().expect("valid");
        let table = file.secrets_table().expect("table");
        let mut policy = ProfilePolicy::from_file(&file).expect("policy");
        let alice = table.lookup_now("alice", "ac");
        assert_eq!(
            alice.as_ref().and_then(|e| e.profile.as_deref()),
            Some("default")
        );
        let refused = policy.decide(&request("alice", "other"), alice.clone());
        assert!(refused.entry.is_none() && refused.ipcp.is_none());
        let accepted = policy.decide(&request("alice", "internet"), alice);
        assert!(accepted.entry.is_some());
        let ipcp = accepted.ipcp.expect("ipcp from profile");
        assert_eq!(
            ipcp.config().local_address,
            Some(Ipv4Addr::new(192, 0, 2, 1))
        );
        assert_eq!(
            ipcp.config().dns_servers[0],
            Some(Ipv4Addr::new(198, 51, 100, 53))
        );
        let bob = table.lookup_now("bob", "ac");
        let decision = policy.decide(&request("bob", ""), bob);
        assert_eq!(
            decision.ipcp.expect("ipcp").config().remote_address,
            Some(Ipv4Addr::new(192, 0, 2, 50))
        );
        let nobody = policy.decide(&request("mallory", "internet"), None);
        assert!(nobody.entry.is_none());
    }

    /// Each user's session gets the CCP of its profile; `default` inherits the default
    /// profile's setting, and a profile saying `no` turns CCP off for its users.
    #[test]
    fn encryption_and_compression_per_profile() {
        use ppp_ccp::Encryption;
        let mut file = file();
        if let Some(default) = file.profiles.get_mut("default") {
            default.use_encryption = UseEncryption::Yes;
        }
        if let Some(static_profile) = file.profiles.get_mut("static") {
            static_profile.use_compression = UseCompression::Yes;
        }
        file.profiles.insert(
            "secure".into(),
            ProfileConfig {
                use_encryption: UseEncryption::Required,
                ..ProfileConfig::default()
            },
        );
        file.profiles.insert(
            "plain".into(),
            ProfileConfig {
                use_encryption: UseEncryption::No,
                ..ProfileConfig::default()
            },
        );
        let mut policy = ProfilePolicy::from_file(&file).expect("policy");
        let decide = |policy: &mut ProfilePolicy, profile: &str| {
            let entry = SecretEntry {
                profile: Some(profile.into()),
                ..SecretEntry::new("c")
            };
            policy.decide(&request("carol", ""), Some(entry)).ccp
        };
        // MPPE is 128-bit only (the one meaning of use-encryption).
        let ccp = |encryption, compression| {
            Some(Some(CcpConfig {
                encryption,
                compression,
                mppe_40: encryption == Encryption::No,
                ..CcpConfig::default()
            }))
        };
        assert_eq!(decide(&mut policy, "default"), ccp(Encryption::Yes, false));
        // `static` says nothing about encryption: the default profile's `yes`.
        assert_eq!(decide(&mut policy, "static"), ccp(Encryption::Yes, true));
        assert_eq!(
            decide(&mut policy, "secure"),
            ccp(Encryption::Required, false)
        );
        assert_eq!(decide(&mut policy, "plain"), Some(None));
        // An unknown profile falls back to the default one; a refused user gets nothing.
        assert_eq!(decide(&mut policy, "nosuch"), ccp(Encryption::Yes, false));
        assert_eq!(policy.decide(&request("carol", ""), None).ccp, None);
    }

    /// `use-ipv6` per profile, `default` inheriting the default profile's.
    #[test]
    fn ipv6_per_profile() {
        let mut file = file();
        if let Some(default) = file.profiles.get_mut("default") {
            default.use_ipv6 = UseIpv6::Yes;
        }
        file.profiles.insert(
            "v4only".into(),
            ProfileConfig {
                use_ipv6: UseIpv6::No,
                ..ProfileConfig::default()
            },
        );
        let mut policy = ProfilePolicy::from_file(&file).expect("policy");
        let mut decide = |profile: &str| {
            let entry = SecretEntry {
                profile: Some(profile.into()),
                ..SecretEntry::new("d")
            };
            policy.decide(&request("dave", ""), Some(entry)).ipv6cp
        };
        assert_eq!(decide("default"), Some(Some(Ipv6cpConfig::default())));
        assert_eq!(decide("static"), Some(Some(Ipv6cpConfig::default())));
        assert_eq!(decide("v4only"), Some(None));
    }

    /// Limits: the secret's own, then its profile's, then the default profile's.
    #[test]
    fn limits_per_profile_and_secret() {
        use ppp_radius::RateLimit;
        use ppp_tokio::aaa::OnlySession;
        use std::time::Duration;
        let file: AcFile = parse(
            r#"
            interfaces = ["eth1"]
            [[secrets]]
            name = "alice"
            password = "a"
            profile = "gold"
            idle-timeout = "1m"
            [[secrets]]
            name = "bob"
            password = "b"
            [profiles.default]
            rate-limit = "1M/1M"
            only-one = "yes"
            idle-timeout = "10m"
            [profiles.gold]
            rate-limit = "10M/5M 20M/10M 8M/4M 16/16"
            session-timeout = "1d"
            "#,
            "test",
        )
        .expect("parse");
        file.validate().expect("valid");
        let table = file.secrets_table().expect("table");
        let mut policy = ProfilePolicy::from_file(&file).expect("policy");
        let alice = policy
            .decide(&request("alice", ""), table.lookup_now("alice", "ac"))
            .limits;
        assert_eq!(
            alice.rate_limit,
            Some("10M/5M 20M/10M 8M/4M 16/16".parse::<RateLimit>().unwrap())
        );
        assert_eq!(alice.session_timeout, Some(Duration::from_secs(86_400)));
        assert_eq!(alice.idle_timeout, Some(Duration::from_secs(60)));
        assert_eq!(alice.only_one, OnlySession::RefuseSecond);
        let bob = policy
            .decide(&request("bob", ""), table.lookup_now("bob", "ac"))
            .limits;
        assert_eq!(bob.rate_limit, Some(RateLimit::new(1_000_000, 1_000_000)));
        assert_eq!(bob.idle_timeout, Some(Duration::from_secs(600)));
        assert_eq!(bob.session_timeout, None);
    }

    /// A RADIUS user: the default profile, its address from Framed-IP-Address, else from the
    /// pool Framed-Pool names, else the profile's.
    #[test]
    fn radius_users_get_the_default_profile_and_radius_addresses() {
        let file = file();
        let mut policy = ProfilePolicy::from_file(&file).expect("policy");
        let mut authorization = Authorization::default();
        authorization.framed_ip_address = Some(Ipv4Addr::new(192, 0, 2, 77));
        let decision = policy.decide_radius(&request("carol", ""), &authorization);
        let ipcp = decision.ipcp.expect("ipcp");
        assert_eq!(
            ipcp.config().remote_address,
            Some(Ipv4Addr::new(192, 0, 2, 77))
        );
        assert_eq!(
            ipcp.config().local_address,
            Some(Ipv4Addr::new(192, 0, 2, 1))
        );
        let mut authorization = Authorization::default();
        authorization.framed_pool = Some("pool1".into());
        let decision = policy.decide_radius(&request("carol", ""), &authorization);
        assert!(decision.ipcp.is_some());
        authorization.framed_pool = Some("nosuch".into());
        let decision = policy.decide_radius(&request("carol", ""), &authorization);
        assert!(decision.ipcp.is_some(), "the default profile's pool");
    }

    #[test]
    fn unknown_pool_is_an_error() {
        let mut file = file();
        file.profiles.insert(
            "broken".into(),
            ProfileConfig {
                remote_address: Some("nope".into()),
                ..ProfileConfig::default()
            },
        );
        assert!(ProfilePolicy::from_file(&file).is_err());
        let _ = SecretConfig::default();
    }
}
