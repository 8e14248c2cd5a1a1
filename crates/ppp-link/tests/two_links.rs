//! Two links in one process on virtual time, over the `ppp-sim` simulated line.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppp_auth::SecretsTable;
use ppp_frame::{AsyncEncoder, EncoderConfig, Protocol};
use ppp_ipcp::{IpcpConfig, Ipv6cpConfig};
use ppp_lcp::fsm::State;
use ppp_link::auth::FailureReason;
use ppp_link::auth::{AuthProtocol, AuthenticatorConfig, ClientCredentials};
use ppp_link::{
    AuthFailure, AuthSide, CloseReason, Datagram, DownReason, Framing, Link, LinkConfig, LinkEvent,
    Phase, Random,
};
use ppp_sim::{Impairments, Pair};

const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DNS: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 53);

/// Whether IPCP is up on `link`.
fn ready(link: &Link) -> bool {
    link.ipcp_negotiated().is_some()
}

/// The last IPCP addresses a side reported.
fn ip_up(events: &[LinkEvent]) -> Option<(Ipv4Addr, Ipv4Addr, Vec<Ipv4Addr>)> {
    events.iter().rev().find_map(|e| match e {
        LinkEvent::IpUp { local, peer, dns } => Some((*local, *peer, dns.clone())),
        _ => None,
    })
}

/// Why a side went down, if it did.
fn down_reason(events: &[LinkEvent]) -> Option<&DownReason> {
    events.iter().find_map(|e| match e {
        LinkEvent::LinkDown { reason } => Some(reason),
        _ => None,
    })
}

/// The datagrams a link received since the last call.
fn datagrams(link: &mut Link) -> Vec<Datagram> {
    std::iter::from_fn(|| link.poll_datagram()).collect()
}

fn client_config() -> LinkConfig {
    let mut config = LinkConfig::default();
    config.lcp.allow.clear();
    config
}

fn server_config() -> LinkConfig {
    let mut config = LinkConfig {
        ipcp: Some(IpcpConfig {
            remote_address: Some(CLIENT_ADDR),
            ..IpcpConfig::server(SERVER_ADDR, [Some(DNS), None])
        }),
        ..LinkConfig::default()
    };
    config.lcp.allow.clear();
    config
}

/// Opens a link at `now`, its line up.
fn opened(config: LinkConfig, seed: u64, now: Instant) -> Link {
    let mut link = Link::new(config, Random::seeded(seed));
    link.open(now);
    link.up(now);
    link
}

fn pair(client: LinkConfig, server: LinkConfig, line: Impairments, seed: u64) -> Pair<Link, Link> {
    let start = Instant::now();
    Pair::new_at(
        start,
        opened(client, seed, start),
        opened(server, seed ^ 0x5eed, start),
        line.clone(),
        line,
        seed,
    )
}

/// An ICMP echo request from `src` to `dst` with a correct IPv4 header checksum (MPPE checks
/// that what it decrypted is a datagram).
fn ping(src: Ipv4Addr, dst: Ipv4Addr, seq: u8) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 28, 0, seq, 0, 0, 64, 1, 0, 0];
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let mut sum: u32 = p
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p.extend_from_slice(&[8, 0, 0, 0, 0, 1, 0, seq]);
    p
}

#[test]
fn client_and_server_reach_network_phase_and_exchange_datagrams() {
    let mut pair = pair(
        client_config(),
        server_config(),
        Impairments::delay(Duration::from_millis(5)),
        1,
    );
    assert!(pair.run_until(Duration::from_secs(10), |a, b| ready(a) && ready(b)));
    assert!(
        pair.elapsed() < Duration::from_millis(200),
        "took {:?}",
        pair.elapsed()
    );

    let (local, peer, dns) = ip_up(&pair.a_events).expect("client IpUp");
    assert_eq!((local, peer, dns), (CLIENT_ADDR, SERVER_ADDR, vec![DNS]));
    let (local, peer, _) = ip_up(&pair.b_events).expect("server IpUp");
    assert_eq!((local, peer), (SERVER_ADDR, CLIENT_ADDR));
    for (peer, events) in [(&pair.a, &pair.a_events), (&pair.b, &pair.b_events)] {
        assert_eq!(peer.phase(), Phase::Network);
        let n = peer.lcp_negotiated().expect("LCP opened");
        assert_eq!((n.our_accm, n.peer_accm), (0, 0));
        assert!(n.pfc_tx && n.acfc_tx && n.pfc_rx && n.acfc_rx);
        assert!(n.our_magic.is_some() && n.our_magic != n.peer_magic);
        assert!(events.iter().any(|e| matches!(e, LinkEvent::LinkUp(_))));
    }

    let now = pair.now();
    pair.a
        .send_ipv4(now, &ping(CLIENT_ADDR, SERVER_ADDR, 1))
        .unwrap();
    pair.b
        .send_ipv4(now, &ping(SERVER_ADDR, CLIENT_ADDR, 2))
        .unwrap();
    pair.run_for(pair.elapsed() + Duration::from_millis(50));
    assert_eq!(
        datagrams(&mut pair.b),
        vec![Datagram::Ipv4(ping(CLIENT_ADDR, SERVER_ADDR, 1))]
    );
    assert_eq!(
        datagrams(&mut pair.a),
        vec![Datagram::Ipv4(ping(SERVER_ADDR, CLIENT_ADDR, 2))]
    );
    assert!(
        pair.a.send_ipv4(now, &vec![0x45; 1501]).is_err(),
        "MTU is enforced"
    );

    // Administrative close: both sides go down with the reason, and the line falls silent.
    let now = pair.now();
    pair.a.close(now, CloseReason::UserRequest);
    pair.run_for(pair.elapsed() + Duration::from_secs(10));
    assert_eq!(
        down_reason(&pair.a_events),
        Some(&DownReason::Closed(CloseReason::UserRequest))
    );
    assert!(matches!(
        down_reason(&pair.b_events),
        Some(DownReason::PeerTerminated { message }) if message == "User request"
    ));
    assert!(down_reason(&pair.b_events).is_some());
    assert!(pair.a_events.contains(&LinkEvent::IpDown));
    assert_eq!(pair.a.phase(), Phase::Dead);
    assert_eq!(pair.a.poll_timeout(), None);
}

#[test]
fn ipv6cp_runs_beside_ipcp() {
    let mut client = client_config();
    let mut server = server_config();
    client.ipv6cp = Some(Ipv6cpConfig::default());
    server.ipv6cp = Some(Ipv6cpConfig::default());
    let mut pair = pair(
        client,
        server,
        Impairments::delay(Duration::from_millis(5)),
        3,
    );
    assert!(pair.run_until(Duration::from_secs(10), |a, b| {
        a.ipv6cp_negotiated().is_some() && b.ipv6cp_negotiated().is_some() && ready(a)
    }));
    let a = pair.a.ipv6cp_negotiated().unwrap();
    let b = pair.b.ipv6cp_negotiated().unwrap();
    assert_eq!(a.local_interface_id, b.peer_interface_id);
    assert_ne!(a.local_interface_id, a.peer_interface_id);
    let now = pair.now();
    let v6 = [0x60u8, 0, 0, 0, 0, 0, 59, 64]
        .iter()
        .copied()
        .chain([0u8; 32])
        .collect::<Vec<_>>();
    pair.a.send_ipv6(now, &v6).unwrap();
    pair.run_for(pair.elapsed() + Duration::from_millis(50));
    assert_eq!(datagrams(&mut pair.b), vec![Datagram::Ipv6(v6)]);
}

#[test]
fn a_rejected_ipv6cp_leaves_ipcp_and_the_link_up() {
    let mut client = client_config();
    client.ipv6cp = Some(Ipv6cpConfig::default());
    let mut pair = pair(
        client,
        server_config(),
        Impairments::delay(Duration::from_millis(5)),
        5,
    );
    assert!(pair.run_until(Duration::from_secs(10), |a, b| ready(a) && ready(b)));
    pair.run_for(pair.elapsed() + Duration::from_secs(5));
    assert!(pair.a_events.iter().any(|e| matches!(
        e,
        LinkEvent::NcpFinished {
            protocol: Protocol::Ipv6cp,
            ..
        }
    )));
    assert!(pair.b.stats().protocol_rejects_sent >= 1);
    assert_eq!(pair.a.phase(), Phase::Network);
    assert!(ready(&pair.a));
    assert_eq!(down_reason(&pair.a_events), None);
}

/// Runs a client and a server over `line` until both are in the Network phase, with restart
/// counters that ride out heavy loss; panics with both sides' state if they do not get there.
fn converge(
    mut client: LinkConfig,
    mut server: LinkConfig,
    line: Impairments,
    seed: u64,
) -> Pair<Link, Link> {
    for config in [&mut client, &mut server] {
        config.lcp.fsm.max_configure = 40;
        // Lost Naks make the peer repeat its request, and each repeat costs a Nak: RFC 1661's
        // Max-Failure of 5 would turn the Naks into Rejects on some seeds.
        config.lcp.fsm.max_failure = 20;
    }
    let mut pair = pair(client, server, line, seed);
    let ok = pair.run_until(Duration::from_secs(300), |a, b| ready(a) && ready(b));
    assert!(
        ok,
        "seed {seed}: client {:?} {:?} server {:?} {:?}",
        pair.a, pair.a_events, pair.b, pair.b_events
    );
    pair
}

#[test]
fn converges_with_thirty_percent_loss_on_a_thousand_seeds() {
    let mut slowest = Duration::ZERO;
    for seed in 0..1000u64 {
        let pair = converge(
            client_config(),
            server_config(),
            Impairments::lossy(0.3, Duration::from_millis(10)),
            seed,
        );
        slowest = slowest.max(pair.elapsed());
        assert_eq!(
            ip_up(&pair.a_events).map(|x| x.0),
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
            client_config(),
            server_config(),
            Impairments::chaos(0.1, Duration::from_millis(10)),
            seed,
        );
        // Corrupted frames were caught by the FCS, never taken for good ones.
        assert_eq!(
            ip_up(&pair.a_events),
            Some((CLIENT_ADDR, SERVER_ADDR, vec![DNS])),
            "seed {seed}"
        );
        assert_eq!(
            ip_up(&pair.b_events).map(|x| (x.0, x.1)),
            Some((SERVER_ADDR, CLIENT_ADDR)),
            "seed {seed}"
        );
    }
}

#[test]
fn a_dead_peer_is_detected_by_echo() {
    let mut client = client_config();
    client.lcp.echo_interval = Some(Duration::from_secs(5));
    client.lcp.echo_failure = 3;
    let mut pair = pair(
        client,
        server_config(),
        Impairments::delay(Duration::from_millis(5)),
        8,
    );
    assert!(pair.run_until(Duration::from_secs(10), |a, b| ready(a) && ready(b)));
    // Echoes are answered while the peer lives.
    pair.run_for(pair.elapsed() + Duration::from_secs(30));
    assert_eq!(down_reason(&pair.a_events), None);
    // The peer goes silent.
    pair.b_to_a
        .set_impairments(Impairments::lossy(1.0, Duration::ZERO));
    let ok = pair.run_until_pair(Duration::from_secs(120), |p| {
        down_reason(&p.a_events).is_some()
    });
    assert!(ok);
    assert_eq!(down_reason(&pair.a_events), Some(&DownReason::EchoTimeout));
}

#[test]
fn ncp_and_data_packets_before_network_phase_are_discarded() {
    let now = Instant::now();
    let mut link = Link::new(client_config(), Random::seeded(10));
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
        client_config(),
        server_config(),
        Impairments::delay(Duration::from_millis(5)),
        11,
    );
    assert!(pair.run_until(Duration::from_secs(10), |a, b| ready(a) && ready(b)));
    let mut encoder = AsyncEncoder::new(EncoderConfig {
        accm: 0,
        ..EncoderConfig::default()
    });
    let mut wire = Vec::new();
    encoder.encode(Protocol::Ecp, &[1, 1, 0, 4], &mut wire);
    let now = pair.now();
    pair.a.handle_input(now, &wire);
    assert_eq!(pair.a.stats().protocol_rejects_sent, 1);
    let sent = pair.a.poll_transmit().expect("a Protocol-Reject");
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
    let mut client = LinkConfig::pppoe();
    client.lcp.allow.clear();
    let mut server = LinkConfig {
        framing: Framing::Sync,
        ..server_config()
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
    assert!(pair.run_until(Duration::from_secs(10), |a, b| ready(a) && ready(b)));
    let n = pair.a.lcp_negotiated().unwrap();
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
fn auth_pair(method: AuthProtocol, password: &str, seed: u64) -> Pair<Link, Link> {
    let mut client = client_config();
    client.lcp.allow = vec![method];
    client.auth.credentials = Some(ClientCredentials::password("alice", password));
    let mut server = server_config();
    server.lcp.require = vec![method];
    server.auth.authenticator = AuthenticatorConfig::new("server");
    server.auth.secrets = Some(Arc::new(secrets()));
    pair(
        client,
        server,
        Impairments::delay(Duration::from_millis(5)),
        seed,
    )
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
            pair.run_until(Duration::from_secs(10), |a, b| ready(a) && ready(b)),
            "{method:?}: client {:?} server {:?}",
            pair.a_events,
            pair.b_events
        );
        assert_eq!(
            pair.b.lcp_negotiated().unwrap().auth_we_require,
            Some(method)
        );
        assert_eq!(
            pair.a.lcp_negotiated().unwrap().auth_peer_requires,
            Some(method)
        );
        assert_eq!(pair.b.peer_name(), Some("alice"), "{method:?}");
        assert!(pair.b_events.contains(&LinkEvent::Authenticated {
            peer_name: Some("alice".into())
        }));
        // The secrets entry's address wins over the configured remote address.
        assert_eq!(
            ip_up(&pair.a_events).unwrap().0,
            Ipv4Addr::new(192, 0, 2, 77),
            "{method:?}"
        );
        let mschap = matches!(method, AuthProtocol::MsChapV1 | AuthProtocol::MsChapV2);
        assert_eq!(pair.a.mschap_key_material().is_some(), mschap);
        if mschap {
            let (client_send, client_recv) = pair.a.mschap_key_material().unwrap().start_keys();
            let (server_send, server_recv) = pair.b.mschap_key_material().unwrap().start_keys();
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
        let server = down_reason(&pair.b_events).expect("server down");
        let client = down_reason(&pair.a_events).expect("client down");
        assert!(
            matches!(
                server,
                DownReason::AuthFailed(AuthFailure { side: AuthSide::Peer, method: m, .. }) if *m == method
            ),
            "{method:?}: {server}"
        );
        assert!(
            matches!(
                client,
                DownReason::AuthFailed(AuthFailure {
                    side: AuthSide::Us,
                    ..
                })
            ),
            "{method:?}: {client}"
        );
        assert!(server.to_string().contains("peer failed to authenticate"));
        assert!(!ready(&pair.a) && !ready(&pair.b));
        assert_eq!(pair.a.stats().datagrams_in, 0);
    }
}

#[test]
fn an_unknown_user_is_refused() {
    let mut pair = auth_pair(AuthProtocol::ChapMd5, "whatever", 70);
    let mut server = pair.b.config().clone();
    server.auth.secrets = Some(Arc::new(SecretsTable::new()));
    pair.b = opened(server, 71, pair.start());
    pair.run_for(Duration::from_secs(20));
    let reason = down_reason(&pair.b_events).expect("server down");
    assert!(
        matches!(
            reason,
            DownReason::AuthFailed(AuthFailure {
                side: AuthSide::Peer,
                reason: FailureReason::UnknownUser { name },
                ..
            }) if name == "alice"
        ),
        "{reason}"
    );
}

#[test]
fn network_phase_waits_for_the_secret_lookup() {
    let mut pair = auth_pair(AuthProtocol::MsChapV2, "correct horse", 80);
    // The secrets come from the test, late (as from a RADIUS server).
    let mut server = pair.b.config().clone();
    server.auth.secrets = None;
    pair.b = opened(server, 81, pair.start());
    pair.run_for(Duration::from_secs(2));
    for peer in [&pair.a, &pair.b] {
        assert_eq!(peer.phase(), Phase::Authenticate);
        assert_eq!(peer.ipcp().unwrap().state(), State::Initial);
    }
    let request = pair.b_events.iter().find_map(|e| match e {
        LinkEvent::SecretNeeded(r) => Some(r.clone()),
        _ => None,
    });
    let request = request.expect("a secret request");
    assert_eq!(
        (request.client.as_str(), request.server.as_str()),
        ("alice", "server")
    );
    // An IPCP request from the peer before authentication is over is discarded.
    let discarded = pair.b.stats().discarded;
    let mut encoder = AsyncEncoder::new(EncoderConfig {
        accm: 0,
        ..EncoderConfig::default()
    });
    let mut wire = Vec::new();
    encoder.encode(Protocol::Ipcp, &[1, 9, 0, 10, 3, 6, 0, 0, 0, 0], &mut wire);
    let now = pair.now();
    pair.b.handle_input(now, &wire);
    assert_eq!(pair.b.stats().discarded, discarded + 1);
    // The lookup answers late; everything goes on.
    let entry = secrets().lookup_now(&request.client, &request.server);
    pair.b.provide_secret(now, request.token, entry).unwrap();
    assert!(pair.run_until(Duration::from_secs(10), |a, b| ready(a) && ready(b)));
}

#[test]
fn both_directions_authenticate_at_once() {
    let mut client = client_config();
    client.lcp.allow = vec![AuthProtocol::ChapMd5];
    client.lcp.require = vec![AuthProtocol::MsChapV2];
    client.auth.credentials = Some(ClientCredentials::password("alice", "correct horse"));
    client.auth.authenticator = AuthenticatorConfig::new("client");
    let mut server = server_config();
    server.lcp.allow = vec![AuthProtocol::MsChapV2];
    server.lcp.require = vec![AuthProtocol::ChapMd5];
    server.auth.credentials = Some(ClientCredentials::password("server", "server secret"));
    server.auth.authenticator = AuthenticatorConfig::new("server");
    client.auth.secrets = Some(Arc::new(secrets()));
    server.auth.secrets = Some(Arc::new(secrets()));
    let mut pair = pair(
        client,
        server,
        Impairments::delay(Duration::from_millis(5)),
        90,
    );
    assert!(pair.run_until(Duration::from_secs(10), |a, b| ready(a) && ready(b)));
    assert_eq!(pair.a.peer_name(), Some("server"));
    assert_eq!(pair.b.peer_name(), Some("alice"));
}

#[test]
fn allow_lists_without_a_common_method_end_the_link() {
    let mut client = client_config();
    client.lcp.allow = vec![AuthProtocol::Pap];
    client.auth.credentials = Some(ClientCredentials::password("alice", "correct horse"));
    let mut server = server_config();
    server.lcp.require = vec![AuthProtocol::MsChapV2];
    server.auth.secrets = Some(Arc::new(secrets()));
    let mut pair = pair(
        client,
        server,
        Impairments::delay(Duration::from_millis(5)),
        100,
    );
    pair.run_for(Duration::from_secs(60));
    assert!(down_reason(&pair.a_events).is_some() && down_reason(&pair.b_events).is_some());
    assert!(!ready(&pair.a));
}

#[test]
fn authentication_survives_a_lossy_line() {
    for seed in 0..50u64 {
        let mut pair = auth_pair(AuthProtocol::MsChapV2, "correct horse", 200 + seed * 2);
        for channel in [&mut pair.a_to_b, &mut pair.b_to_a] {
            channel.set_impairments(Impairments::lossy(0.2, Duration::from_millis(10)));
        }
        let ok = pair.run_until(Duration::from_secs(300), |a, b| ready(a) && ready(b));
        assert!(ok, "seed {seed}: {:?} {:?}", pair.a_events, pair.b_events);
    }
}

#[test]
fn without_credentials_a_required_method_fails_cleanly() {
    let mut client = client_config();
    client.lcp.allow = vec![AuthProtocol::ChapMd5];
    let mut server = server_config();
    server.lcp.require = vec![AuthProtocol::ChapMd5];
    let mut pair = pair(
        client,
        server,
        Impairments::delay(Duration::from_millis(5)),
        30,
    );
    pair.run_for(Duration::from_secs(10));
    assert_eq!(
        down_reason(&pair.a_events),
        Some(&DownReason::NoCredentials {
            method: AuthProtocol::ChapMd5
        })
    );
}

fn ping_across(pair: &mut Pair<Link, Link>) {
    let now = pair.now();
    pair.a
        .send_ipv4(now, &ping(CLIENT_ADDR, SERVER_ADDR, 7))
        .unwrap();
    pair.b
        .send_ipv4(now, &ping(SERVER_ADDR, CLIENT_ADDR, 8))
        .unwrap();
    pair.run_for(pair.elapsed() + Duration::from_millis(100));
    assert_eq!(
        datagrams(&mut pair.b),
        [Datagram::Ipv4(ping(CLIENT_ADDR, SERVER_ADDR, 7))]
    );
    assert_eq!(
        datagrams(&mut pair.a),
        [Datagram::Ipv4(ping(SERVER_ADDR, CLIENT_ADDR, 8))]
    );
}

#[test]
fn mppe_128_encrypts_the_data_path() {
    let mut pair = auth_pair(AuthProtocol::MsChapV2, "correct horse", 300);
    let start = pair.start();
    let mut client = pair.a.config().clone();
    let mut server = pair.b.config().clone();
    client.ccp = Some(ppp_ccp::CcpConfig::require_mppe_128());
    server.ccp = Some(ppp_ccp::CcpConfig::require_mppe_128());
    pair.a = opened(client, 301, start);
    pair.b = opened(server, 302, start);
    assert!(pair.run_until(Duration::from_secs(10), |a, b| {
        a.ccp_negotiated().is_some() && b.ccp_negotiated().is_some() && ready(a)
    }));
    assert!(
        pair.a_events
            .iter()
            .any(|e| matches!(e, LinkEvent::CcpUp(_)))
    );
    assert_eq!(pair.a.mtu(), Some(1496));
    let sent_before = pair.a.stats().frames_out;
    ping_across(&mut pair);
    assert!(pair.a.ccp_negotiated().unwrap().fully_encrypted());
    assert!(pair.a.stats().frames_out > sent_before);
}

/// A stall that loses 4,096 encrypted packets in a row (stateless MPPE's count wraps): the
/// receiver notices that nothing decrypts any more, CCP is negotiated again, and pings cross
/// again within a second; nothing garbled is ever delivered.
#[test]
fn stateless_mppe_recovers_after_4096_lost_packets() {
    let mut pair = auth_pair(AuthProtocol::MsChapV2, "correct horse", 330);
    let start = pair.start();
    let mut client = pair.a.config().clone();
    let mut server = pair.b.config().clone();
    client.ccp = Some(ppp_ccp::CcpConfig::require_mppe_128());
    server.ccp = Some(ppp_ccp::CcpConfig::require_mppe_128());
    pair.a = opened(client, 331, start);
    pair.b = opened(server, 332, start);
    assert!(pair.run_until(Duration::from_secs(10), |a, b| {
        a.ccp_negotiated().is_some() && b.ccp_negotiated().is_some() && ready(a) && ready(b)
    }));
    ping_across(&mut pair);
    let now = pair.now();
    for _ in 0..4096 {
        pair.a
            .send_ipv4(now, &ping(CLIENT_ADDR, SERVER_ADDR, 1))
            .unwrap();
        while pair.a.poll_transmit().is_some() {} // lost on the way
    }
    let mut answered = None;
    for attempt in 0..20u8 {
        let now = pair.now();
        let _ = pair
            .a
            .send_ipv4(now, &ping(CLIENT_ADDR, SERVER_ADDR, 100 + attempt));
        pair.run_for(pair.elapsed() + Duration::from_millis(100));
        let got = datagrams(&mut pair.b);
        for datagram in &got {
            assert!(
                (100..120)
                    .any(|seq| *datagram == Datagram::Ipv4(ping(CLIENT_ADDR, SERVER_ADDR, seq))),
                "delivered: {datagram:?}"
            );
        }
        if !got.is_empty() {
            answered = Some(attempt);
            break;
        }
    }
    let attempt = answered.expect("traffic flows again");
    assert!(attempt <= 5, "recovered after {attempt} pings");
    assert_eq!(pair.b.ccp().map(|c| c.renegotiations()), Some(1));
    assert!(down_reason(&pair.a_events).is_none() && down_reason(&pair.b_events).is_none());
}

#[test]
fn deflate_compresses_the_data_path() {
    let mut client = client_config();
    let mut server = server_config();
    client.ccp = Some(ppp_ccp::CcpConfig::deflate(15));
    server.ccp = Some(ppp_ccp::CcpConfig::deflate(15));
    let mut pair = pair(
        client,
        server,
        Impairments::delay(Duration::from_millis(5)),
        310,
    );
    assert!(pair.run_until(Duration::from_secs(10), |a, b| {
        a.ccp_negotiated().is_some() && b.ccp_negotiated().is_some() && ready(a) && ready(b)
    }));
    ping_across(&mut pair);
    ping_across(&mut pair);
}

#[test]
fn required_encryption_against_a_peer_without_ccp_ends_the_link() {
    let mut pair = auth_pair(AuthProtocol::MsChapV2, "correct horse", 320);
    let start = pair.start();
    let mut client = pair.a.config().clone();
    client.ccp = Some(ppp_ccp::CcpConfig::require_mppe_128());
    pair.a = opened(client, 321, start);
    pair.run_for(Duration::from_secs(30));
    let reason = down_reason(&pair.a_events).expect("the client gives up");
    assert!(matches!(reason, DownReason::Encryption(_)), "{reason}");
    assert!(datagrams(&mut pair.b).is_empty());
}
