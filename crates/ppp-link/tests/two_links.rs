//! Two links in one process on virtual time, over the `ppp-sim` simulated line.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ppp_auth::SecretsTable;
use ppp_frame::{AsyncEncoder, EncoderConfig, Protocol};
use ppp_ipcp::{IpcpConfig, Ipv6cpConfig};
use ppp_lcp::fsm::State;
use ppp_link::auth::{AuthProtocol, AuthenticatorConfig, ClientCredentials};
use ppp_link::{Datagram, Framing, Link, LinkConfig, LinkEvent, Phase};
use ppp_sim::{Endpoint, Impairments, Pair};

const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DNS: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 53);

/// A link as the harness drives it, keeping what it reported.
struct Peer {
    link: Link,
    events: Vec<LinkEvent>,
    datagrams: Vec<Datagram>,
    /// Answers secret requests at once from this table.
    secrets: Option<SecretsTable>,
    /// Leaves secret requests unanswered (the test answers).
    hold_secrets: bool,
    /// The virtual time of the last input.
    now: Instant,
}

impl Peer {
    fn new(link: Link, now: Instant) -> Self {
        let mut peer = Peer {
            link,
            events: Vec::new(),
            datagrams: Vec::new(),
            secrets: None,
            hold_secrets: false,
            now,
        };
        peer.link.open(now);
        peer.link.up(now);
        peer.collect();
        peer
    }

    fn collect(&mut self) {
        while let Some(event) = self.link.poll_event() {
            if let (LinkEvent::SecretNeeded(request), Some(table), false) =
                (&event, &self.secrets, self.hold_secrets)
            {
                let entry = table.lookup_now(&request.client, &request.server);
                // Answering re-enters the link; its new events are collected in this loop.
                let now = self.now;
                self.link.provide_secret(now, entry);
            }
            self.events.push(event);
        }
        while let Some(datagram) = self.link.poll_datagram() {
            self.datagrams.push(datagram);
        }
    }

    fn ip_up(&self) -> Option<(Ipv4Addr, Ipv4Addr, Vec<Ipv4Addr>)> {
        self.events.iter().rev().find_map(|e| match e {
            LinkEvent::IpUp { local, peer, dns } => Some((*local, *peer, dns.clone())),
            _ => None,
        })
    }

    fn down_reason(&self) -> Option<&str> {
        self.events.iter().find_map(|e| match e {
            LinkEvent::LinkDown { reason } => Some(reason.as_str()),
            _ => None,
        })
    }

    fn network_ready(&self) -> bool {
        self.link.ipcp_negotiated().is_some()
    }
}

impl Endpoint for Peer {
    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.now = now;
        self.link.handle_input(now, data);
        self.collect();
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.link.handle_timeout(now);
        self.collect();
    }
    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.link.poll_transmit()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.link.poll_timeout()
    }
}

fn client_config(seed: u64) -> LinkConfig {
    let mut config = LinkConfig {
        seed,
        ..LinkConfig::default()
    };
    config.lcp.allow.clear();
    config
}

fn server_config(seed: u64) -> LinkConfig {
    let mut config = LinkConfig {
        seed,
        ipcp: Some(IpcpConfig {
            remote_address: Some(CLIENT_ADDR),
            ..IpcpConfig::server(SERVER_ADDR, [Some(DNS), None])
        }),
        ..LinkConfig::default()
    };
    config.lcp.allow.clear();
    config
}

fn pair(client: LinkConfig, server: LinkConfig, line: Impairments, seed: u64) -> Pair<Peer, Peer> {
    let start = Instant::now();
    Pair::new_at(
        start,
        Peer::new(Link::new(client), start),
        Peer::new(Link::new(server), start),
        line.clone(),
        line,
        seed,
    )
}

/// An IPv4 ICMP echo request from `src` to `dst` (checksums are not checked by PPP).
fn ping(src: Ipv4Addr, dst: Ipv4Addr, seq: u8) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 28, 0, seq, 0, 0, 64, 1, 0, 0];
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&[8, 0, 0, 0, 0, 1, 0, seq]);
    p
}

#[test]
fn client_and_server_reach_network_phase_and_exchange_datagrams() {
    let mut pair = pair(
        client_config(1),
        server_config(2),
        Impairments::delay(Duration::from_millis(5)),
        1,
    );
    assert!(
        pair.run_until(Duration::from_secs(10), |a, b| a.network_ready()
            && b.network_ready())
    );
    assert!(
        pair.elapsed() < Duration::from_millis(200),
        "took {:?}",
        pair.elapsed()
    );

    let (local, peer, dns) = pair.a.ip_up().expect("client IpUp");
    assert_eq!((local, peer, dns), (CLIENT_ADDR, SERVER_ADDR, vec![DNS]));
    let (local, peer, _) = pair.b.ip_up().expect("server IpUp");
    assert_eq!((local, peer), (SERVER_ADDR, CLIENT_ADDR));
    for peer in [&pair.a, &pair.b] {
        assert_eq!(peer.link.phase(), Phase::Network);
        let n = peer.link.lcp_negotiated().expect("LCP opened");
        assert_eq!((n.our_accm, n.peer_accm), (0, 0));
        assert!(n.pfc_tx && n.acfc_tx && n.pfc_rx && n.acfc_rx);
        assert!(n.our_magic.is_some() && n.our_magic != n.peer_magic);
        assert!(
            peer.events
                .iter()
                .any(|e| matches!(e, LinkEvent::LinkUp(_)))
        );
    }

    let now = pair.now();
    pair.a
        .link
        .send_ipv4(now, &ping(CLIENT_ADDR, SERVER_ADDR, 1))
        .unwrap();
    pair.b
        .link
        .send_ipv4(now, &ping(SERVER_ADDR, CLIENT_ADDR, 2))
        .unwrap();
    pair.run_for(pair.elapsed() + Duration::from_millis(50));
    assert_eq!(
        pair.b.datagrams,
        vec![Datagram::Ipv4(ping(CLIENT_ADDR, SERVER_ADDR, 1))]
    );
    assert_eq!(
        pair.a.datagrams,
        vec![Datagram::Ipv4(ping(SERVER_ADDR, CLIENT_ADDR, 2))]
    );
    assert!(
        pair.a.link.send_ipv4(now, &vec![0x45; 1501]).is_err(),
        "MTU is enforced"
    );

    // Administrative close: both sides go down with the reason, and the line falls silent.
    let now = pair.now();
    pair.a.link.close(now, "user request");
    pair.a.collect();
    pair.run_for(pair.elapsed() + Duration::from_secs(10));
    assert_eq!(pair.a.down_reason(), Some("user request"));
    assert!(pair.b.down_reason().is_some());
    assert!(pair.a.events.contains(&LinkEvent::IpDown));
    assert_eq!(pair.a.link.phase(), Phase::Dead);
    assert_eq!(pair.a.link.poll_timeout(), None);
}

#[test]
fn ipv6cp_runs_beside_ipcp() {
    let mut client = client_config(3);
    let mut server = server_config(4);
    client.ipv6cp = Some(Ipv6cpConfig::default());
    server.ipv6cp = Some(Ipv6cpConfig::default());
    let mut pair = pair(
        client,
        server,
        Impairments::delay(Duration::from_millis(5)),
        3,
    );
    assert!(pair.run_until(Duration::from_secs(10), |a, b| {
        a.link.ipv6cp_negotiated().is_some()
            && b.link.ipv6cp_negotiated().is_some()
            && a.network_ready()
    }));
    let a = pair.a.link.ipv6cp_negotiated().unwrap();
    let b = pair.b.link.ipv6cp_negotiated().unwrap();
    assert_eq!(a.local_interface_id, b.peer_interface_id);
    assert_ne!(a.local_interface_id, a.peer_interface_id);
    let now = pair.now();
    let v6 = [0x60u8, 0, 0, 0, 0, 0, 59, 64]
        .iter()
        .copied()
        .chain([0u8; 32])
        .collect::<Vec<_>>();
    pair.a.link.send_ipv6(now, &v6).unwrap();
    pair.run_for(pair.elapsed() + Duration::from_millis(50));
    assert_eq!(pair.b.datagrams, vec![Datagram::Ipv6(v6)]);
}

#[test]
fn a_rejected_ipv6cp_leaves_ipcp_and_the_link_up() {
    let mut client = client_config(5);
    client.ipv6cp = Some(Ipv6cpConfig::default());
    let mut pair = pair(
        client,
        server_config(6),
        Impairments::delay(Duration::from_millis(5)),
        5,
    );
    assert!(
        pair.run_until(Duration::from_secs(10), |a, b| a.network_ready()
            && b.network_ready())
    );
    pair.run_for(pair.elapsed() + Duration::from_secs(5));
    assert!(pair.a.events.iter().any(|e| matches!(
        e,
        LinkEvent::NcpFinished {
            protocol: Protocol::Ipv6cp,
            ..
        }
    )));
    assert!(pair.b.link.stats().protocol_rejects_sent >= 1);
    assert_eq!(pair.a.link.phase(), Phase::Network);
    assert!(pair.a.network_ready());
    assert_eq!(pair.a.down_reason(), None);
}

/// Runs a client and a server over `line` until both are in the Network phase, with restart
/// counters that ride out heavy loss; panics with both sides' state if they do not get there.
fn converge(
    mut client: LinkConfig,
    mut server: LinkConfig,
    line: Impairments,
    seed: u64,
) -> Pair<Peer, Peer> {
    for config in [&mut client, &mut server] {
        config.lcp.fsm.max_configure = 40;
        // Lost Naks make the peer repeat its request, and each repeat costs a Nak: RFC 1661's
        // Max-Failure of 5 would turn the Naks into Rejects on some seeds.
        config.lcp.fsm.max_failure = 20;
    }
    let mut pair = pair(client, server, line, seed);
    let ok = pair.run_until(Duration::from_secs(300), |a, b| {
        a.network_ready() && b.network_ready()
    });
    assert!(
        ok,
        "seed {seed}: client {:?} {:?} server {:?} {:?}",
        pair.a.link, pair.a.events, pair.b.link, pair.b.events
    );
    pair
}

#[test]
fn converges_with_thirty_percent_loss_on_a_thousand_seeds() {
    let mut slowest = Duration::ZERO;
    for seed in 0..1000u64 {
        let pair = converge(
            client_config(seed),
            server_config(seed.wrapping_mul(31) + 7),
            Impairments::lossy(0.3, Duration::from_millis(10)),
            seed,
        );
        slowest = slowest.max(pair.elapsed());
        assert_eq!(
            pair.a.ip_up().map(|x| x.0),
            Some(CLIENT_ADDR),
            "seed {seed}"
        );
    }
    println!("slowest convergence at 30% loss: {slowest:?}");
}

#[test]
fn converges_through_loss_duplication_reordering_and_corruption() {
    for seed in 0..300u64 {
        let pair = converge(
            client_config(seed),
            server_config(seed + 1000),
            Impairments::chaos(0.1, Duration::from_millis(10)),
            seed,
        );
        // Corrupted frames were caught by the FCS, never taken for good ones.
        assert_eq!(
            pair.a.ip_up(),
            Some((CLIENT_ADDR, SERVER_ADDR, vec![DNS])),
            "seed {seed}"
        );
        assert_eq!(
            pair.b.ip_up().map(|x| (x.0, x.1)),
            Some((SERVER_ADDR, CLIENT_ADDR)),
            "seed {seed}"
        );
    }
}

#[test]
fn a_dead_peer_is_detected_by_echo() {
    let mut client = client_config(8);
    client.lcp.echo_interval = Some(Duration::from_secs(5));
    client.lcp.echo_failure = 3;
    let mut pair = pair(
        client,
        server_config(9),
        Impairments::delay(Duration::from_millis(5)),
        8,
    );
    assert!(
        pair.run_until(Duration::from_secs(10), |a, b| a.network_ready()
            && b.network_ready())
    );
    // Echoes are answered while the peer lives.
    pair.run_for(pair.elapsed() + Duration::from_secs(30));
    assert_eq!(pair.a.down_reason(), None);
    // The peer goes silent.
    pair.b_to_a
        .set_impairments(Impairments::lossy(1.0, Duration::ZERO));
    let ok = pair.run_until(Duration::from_secs(120), |a, _| a.down_reason().is_some());
    assert!(ok);
    let reason = pair.a.down_reason().unwrap();
    assert!(reason.contains("echo"), "reason: {reason}");
}

#[test]
fn ncp_and_data_packets_before_network_phase_are_discarded() {
    let now = Instant::now();
    let mut link = Link::new(client_config(10));
    link.open(now);
    link.up(now);
    let mut encoder = AsyncEncoder::new(EncoderConfig::default());
    let mut wire = Vec::new();
    encoder.encode(
        Protocol::Ipcp,
        &[1, 1, 0, 10, 3, 6, 192, 0, 2, 9],
        &mut wire,
    );
    encoder.encode(
        Protocol::Ipv4,
        &ping(SERVER_ADDR, CLIENT_ADDR, 1),
        &mut wire,
    );
    encoder.encode(Protocol::Unknown(0x8235), &[1, 1, 0, 4], &mut wire);
    link.handle_input(now, &wire);
    assert_eq!(link.stats().discarded, 3);
    assert_eq!(link.poll_datagram(), None);
    assert_eq!(link.ipcp().unwrap().state(), State::Initial);
    assert_eq!(link.stats().protocol_rejects_sent, 0);
}

#[test]
fn unknown_protocols_are_rejected_once_lcp_is_opened() {
    let mut pair = pair(
        client_config(11),
        server_config(12),
        Impairments::delay(Duration::from_millis(5)),
        11,
    );
    assert!(
        pair.run_until(Duration::from_secs(10), |a, b| a.network_ready()
            && b.network_ready())
    );
    let mut encoder = AsyncEncoder::new(EncoderConfig {
        accm: 0,
        ..EncoderConfig::default()
    });
    let mut wire = Vec::new();
    encoder.encode(Protocol::Ecp, &[1, 1, 0, 4], &mut wire);
    let now = pair.now();
    pair.a.link.handle_input(now, &wire);
    assert_eq!(pair.a.link.stats().protocol_rejects_sent, 1);
    let sent = pair.a.link.poll_transmit().expect("a Protocol-Reject");
    // LCP code 8, carrying the rejected protocol 0x8053.
    let mut decoder = ppp_frame::AsyncDecoder::new(ppp_frame::DecoderConfig {
        accm: 0,
        ..ppp_frame::DecoderConfig::default()
    });
    let mut input = &sent[..];
    let frame = decoder.decode(&mut input).unwrap().unwrap();
    assert_eq!(frame.protocol, Protocol::Lcp);
    assert_eq!(frame.payload[0], 8);
    assert_eq!(&frame.payload[4..6], &[0x80, 0x53]);
}

#[test]
fn pppoe_framing_uses_whole_frames() {
    let mut client = LinkConfig {
        seed: 13,
        ..LinkConfig::pppoe()
    };
    client.lcp.allow.clear();
    let mut server = LinkConfig {
        framing: Framing::Sync,
        ..server_config(14)
    };
    server.lcp = ppp_lcp::lcp::LcpConfig {
        allow: vec![],
        ..ppp_lcp::lcp::LcpConfig::pppoe()
    };
    let mut pair = pair(
        client,
        server,
        Impairments::delay(Duration::from_millis(1)),
        13,
    );
    assert!(
        pair.run_until(Duration::from_secs(10), |a, b| a.network_ready()
            && b.network_ready())
    );
    let n = pair.a.link.lcp_negotiated().unwrap();
    assert_eq!((n.our_mru, n.peer_mru, n.mtu), (1492, 1492, 1492));
    assert!(!n.pfc_tx && !n.acfc_tx);
}

fn secrets() -> SecretsTable {
    SecretsTable::parse_pppd(
        "# client  server  secret         addresses\n\
         alice      *       \"correct horse\"  192.0.2.77\n\
         server     *       \"server secret\"\n",
    )
    .unwrap()
}

/// A client that authenticates as alice with `password`, and a server that requires `method`.
fn auth_pair(method: AuthProtocol, password: &str, seed: u64) -> Pair<Peer, Peer> {
    let mut client = client_config(seed);
    client.lcp.allow = vec![method];
    client.auth.credentials = Some(ClientCredentials::password("alice", password));
    let mut server = server_config(seed + 1);
    server.lcp.require = vec![method];
    server.auth.authenticator = AuthenticatorConfig::new("server");
    let mut pair = pair(
        client,
        server,
        Impairments::delay(Duration::from_millis(5)),
        seed,
    );
    pair.b.secrets = Some(secrets());
    pair
}

#[test]
fn every_method_authenticates_and_the_secrets_address_reaches_ipcp() {
    for (i, method) in [
        AuthProtocol::Pap,
        AuthProtocol::ChapMd5,
        AuthProtocol::MsChapV1,
        AuthProtocol::MsChapV2,
    ]
    .into_iter()
    .enumerate()
    {
        let mut pair = auth_pair(method, "correct horse", 40 + i as u64 * 2);
        assert!(
            pair.run_until(Duration::from_secs(10), |a, b| a.network_ready()
                && b.network_ready()),
            "{method:?}: client {:?} server {:?}",
            pair.a.events,
            pair.b.events
        );
        assert_eq!(
            pair.b.link.lcp_negotiated().unwrap().auth_we_require,
            Some(method)
        );
        assert_eq!(
            pair.a.link.lcp_negotiated().unwrap().auth_peer_requires,
            Some(method)
        );
        assert_eq!(pair.b.link.peer_name(), Some("alice"), "{method:?}");
        assert!(pair.b.events.contains(&LinkEvent::Authenticated {
            peer_name: Some("alice".into())
        }));
        // The secrets entry's address wins over the configured remote address.
        assert_eq!(
            pair.a.ip_up().unwrap().0,
            Ipv4Addr::new(192, 0, 2, 77),
            "{method:?}"
        );
        let mschap = matches!(method, AuthProtocol::MsChapV1 | AuthProtocol::MsChapV2);
        assert_eq!(pair.a.link.mschap_key_material().is_some(), mschap);
        if mschap {
            let (client_send, client_recv) =
                pair.a.link.mschap_key_material().unwrap().start_keys();
            let (server_send, server_recv) =
                pair.b.link.mschap_key_material().unwrap().start_keys();
            assert_eq!((client_send, client_recv), (server_recv, server_send));
        }
    }
}

#[test]
fn a_wrong_password_ends_both_sides_with_a_reason() {
    for (i, method) in [
        AuthProtocol::Pap,
        AuthProtocol::ChapMd5,
        AuthProtocol::MsChapV2,
    ]
    .into_iter()
    .enumerate()
    {
        let mut pair = auth_pair(method, "battery staple", 60 + i as u64 * 2);
        pair.run_for(Duration::from_secs(20));
        let server = pair.b.down_reason().expect("server down");
        let client = pair.a.down_reason().expect("client down");
        assert!(
            server.contains("peer failed to authenticate"),
            "{method:?}: {server}"
        );
        assert!(
            client.contains("authentication to the peer failed"),
            "{method:?}: {client}"
        );
        assert!(!pair.a.network_ready() && !pair.b.network_ready());
        assert_eq!(pair.a.link.stats().datagrams_in, 0);
    }
}

#[test]
fn an_unknown_user_is_refused() {
    let mut pair = auth_pair(AuthProtocol::ChapMd5, "whatever", 70);
    pair.b.secrets = Some(SecretsTable::new());
    pair.run_for(Duration::from_secs(20));
    let reason = pair.b.down_reason().expect("server down");
    assert!(reason.contains("alice"), "{reason}");
}

#[test]
fn network_phase_waits_for_the_secret_lookup() {
    let mut pair = auth_pair(AuthProtocol::MsChapV2, "correct horse", 80);
    pair.b.hold_secrets = true;
    pair.run_for(Duration::from_secs(2));
    for peer in [&pair.a, &pair.b] {
        assert_eq!(peer.link.phase(), Phase::Authenticate);
        assert_eq!(peer.link.ipcp().unwrap().state(), State::Initial);
    }
    let request = pair.b.events.iter().find_map(|e| match e {
        LinkEvent::SecretNeeded(r) => Some(r.clone()),
        _ => None,
    });
    let request = request.expect("a secret request");
    assert_eq!(
        (request.client.as_str(), request.server.as_str()),
        ("alice", "server")
    );
    // An IPCP request from the peer before authentication is over is discarded.
    let discarded = pair.b.link.stats().discarded;
    let mut encoder = AsyncEncoder::new(EncoderConfig {
        accm: 0,
        ..EncoderConfig::default()
    });
    let mut wire = Vec::new();
    encoder.encode(Protocol::Ipcp, &[1, 9, 0, 10, 3, 6, 0, 0, 0, 0], &mut wire);
    let now = pair.now();
    pair.b.link.handle_input(now, &wire);
    assert_eq!(pair.b.link.stats().discarded, discarded + 1);
    // The lookup answers late; everything goes on.
    let entry = secrets().lookup_now(&request.client, &request.server);
    pair.b.link.provide_secret(now, entry);
    pair.b.collect();
    assert!(
        pair.run_until(Duration::from_secs(10), |a, b| a.network_ready()
            && b.network_ready())
    );
}

#[test]
fn both_directions_authenticate_at_once() {
    let mut client = client_config(90);
    client.lcp.allow = vec![AuthProtocol::ChapMd5];
    client.lcp.require = vec![AuthProtocol::MsChapV2];
    client.auth.credentials = Some(ClientCredentials::password("alice", "correct horse"));
    client.auth.authenticator = AuthenticatorConfig::new("client");
    let mut server = server_config(91);
    server.lcp.allow = vec![AuthProtocol::MsChapV2];
    server.lcp.require = vec![AuthProtocol::ChapMd5];
    server.auth.credentials = Some(ClientCredentials::password("server", "server secret"));
    server.auth.authenticator = AuthenticatorConfig::new("server");
    let mut pair = pair(
        client,
        server,
        Impairments::delay(Duration::from_millis(5)),
        90,
    );
    pair.a.secrets = Some(secrets());
    pair.b.secrets = Some(secrets());
    assert!(
        pair.run_until(Duration::from_secs(10), |a, b| a.network_ready()
            && b.network_ready())
    );
    assert_eq!(pair.a.link.peer_name(), Some("server"));
    assert_eq!(pair.b.link.peer_name(), Some("alice"));
}

#[test]
fn allow_lists_without_a_common_method_end_the_link() {
    let mut client = client_config(100);
    client.lcp.allow = vec![AuthProtocol::Pap];
    client.auth.credentials = Some(ClientCredentials::password("alice", "correct horse"));
    let mut server = server_config(101);
    server.lcp.require = vec![AuthProtocol::MsChapV2];
    let mut pair = pair(
        client,
        server,
        Impairments::delay(Duration::from_millis(5)),
        100,
    );
    pair.b.secrets = Some(secrets());
    pair.run_for(Duration::from_secs(60));
    assert!(pair.a.down_reason().is_some() && pair.b.down_reason().is_some());
    assert!(!pair.a.network_ready());
}

#[test]
fn authentication_survives_a_lossy_line() {
    for seed in 0..50u64 {
        let mut pair = auth_pair(AuthProtocol::MsChapV2, "correct horse", 200 + seed * 2);
        for channel in [&mut pair.a_to_b, &mut pair.b_to_a] {
            channel.set_impairments(Impairments::lossy(0.2, Duration::from_millis(10)));
        }
        let ok = pair.run_until(Duration::from_secs(300), |a, b| {
            a.network_ready() && b.network_ready()
        });
        assert!(ok, "seed {seed}: {:?} {:?}", pair.a.events, pair.b.events);
    }
}

#[test]
fn without_credentials_a_required_method_fails_cleanly() {
    let mut client = client_config(30);
    client.lcp.allow = vec![AuthProtocol::ChapMd5];
    let mut server = server_config(31);
    server.lcp.require = vec![AuthProtocol::ChapMd5];
    let mut pair = pair(
        client,
        server,
        Impairments::delay(Duration::from_millis(5)),
        30,
    );
    pair.run_for(Duration::from_secs(10));
    let reason = pair.a.down_reason().expect("down");
    assert!(reason.contains("no credentials"), "{reason}");
}

fn ping_across(pair: &mut Pair<Peer, Peer>) {
    let now = pair.now();
    let before = (pair.a.datagrams.len(), pair.b.datagrams.len());
    pair.a
        .link
        .send_ipv4(now, &ping(CLIENT_ADDR, SERVER_ADDR, 7))
        .unwrap();
    pair.b
        .link
        .send_ipv4(now, &ping(SERVER_ADDR, CLIENT_ADDR, 8))
        .unwrap();
    pair.run_for(pair.elapsed() + Duration::from_millis(100));
    assert_eq!(pair.b.datagrams.len(), before.1 + 1);
    assert_eq!(pair.a.datagrams.len(), before.0 + 1);
    assert_eq!(
        pair.b.datagrams.last(),
        Some(&Datagram::Ipv4(ping(CLIENT_ADDR, SERVER_ADDR, 7)))
    );
    assert_eq!(
        pair.a.datagrams.last(),
        Some(&Datagram::Ipv4(ping(SERVER_ADDR, CLIENT_ADDR, 8)))
    );
}

#[test]
fn mppe_128_encrypts_the_data_path() {
    let mut pair = auth_pair(AuthProtocol::MsChapV2, "correct horse", 300);
    let start = pair.start();
    let mut client = pair.a.link.config().clone();
    let mut server = pair.b.link.config().clone();
    client.ccp = Some(ppp_ccp::CcpConfig::require_mppe_128());
    server.ccp = Some(ppp_ccp::CcpConfig::require_mppe_128());
    pair.a = Peer::new(Link::new(client), start);
    pair.b = Peer::new(Link::new(server), start);
    pair.b.secrets = Some(secrets());
    assert!(pair.run_until(Duration::from_secs(10), |a, b| {
        a.link.ccp_negotiated().is_some() && b.link.ccp_negotiated().is_some() && a.network_ready()
    }));
    assert!(
        pair.a
            .events
            .iter()
            .any(|e| matches!(e, LinkEvent::CcpUp(_)))
    );
    assert_eq!(pair.a.link.mtu(), Some(1496));
    let sent_before = pair.a.link.stats().frames_out;
    ping_across(&mut pair);
    assert!(pair.a.link.ccp_negotiated().unwrap().fully_encrypted());
    assert!(pair.a.link.stats().frames_out > sent_before);
}

#[test]
fn deflate_compresses_the_data_path() {
    let mut client = client_config(310);
    let mut server = server_config(311);
    client.ccp = Some(ppp_ccp::CcpConfig::deflate(15));
    server.ccp = Some(ppp_ccp::CcpConfig::deflate(15));
    let mut pair = pair(
        client,
        server,
        Impairments::delay(Duration::from_millis(5)),
        310,
    );
    assert!(pair.run_until(Duration::from_secs(10), |a, b| {
        a.link.ccp_negotiated().is_some()
            && b.link.ccp_negotiated().is_some()
            && a.network_ready()
            && b.network_ready()
    }));
    ping_across(&mut pair);
    ping_across(&mut pair);
}

#[test]
fn required_encryption_against_a_peer_without_ccp_ends_the_link() {
    let mut pair = auth_pair(AuthProtocol::MsChapV2, "correct horse", 320);
    let start = pair.start();
    let mut client = pair.a.link.config().clone();
    client.ccp = Some(ppp_ccp::CcpConfig::require_mppe_128());
    pair.a = Peer::new(Link::new(client), start);
    pair.run_for(Duration::from_secs(30));
    let reason = pair.a.down_reason().expect("the client gives up");
    println!("{reason}");
    assert!(
        reason.contains("MPPE") || reason.contains("CCP") || reason.contains("encrypt"),
        "{reason}"
    );
    assert_eq!(pair.b.datagrams.len(), 0);
}
