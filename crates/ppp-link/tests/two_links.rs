//! Two links in one process on virtual time, over the `ppp-sim` simulated line.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ppp_frame::{AsyncEncoder, EncoderConfig, Protocol};
use ppp_ipcp::{IpcpConfig, Ipv6cpConfig};
use ppp_lcp::fsm::State;
use ppp_lcp::lcp::AuthProtocol;
use ppp_link::auth::{AuthProvider, AuthRole, AuthSession, AuthStatus};
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
}

impl Peer {
    fn new(link: Link, now: Instant) -> Self {
        let mut peer = Peer { link, events: Vec::new(), datagrams: Vec::new() };
        peer.link.open(now);
        peer.link.up(now);
        peer.collect();
        peer
    }

    fn collect(&mut self) {
        while let Some(event) = self.link.poll_event() {
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
        self.link.handle_input(now, data);
        self.collect();
    }
    fn handle_timeout(&mut self, now: Instant) {
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
    let mut config = LinkConfig { seed, ..LinkConfig::default() };
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
    // The peers are created at the pair's start so that virtual time begins there.
    let probe: Pair<Peer, Peer> = Pair::new(
        Peer { link: Link::new(client.clone()), events: vec![], datagrams: vec![] },
        Peer { link: Link::new(server.clone()), events: vec![], datagrams: vec![] },
        line.clone(),
        line,
        seed,
    );
    let start = probe.start();
    let Pair { a_to_b, b_to_a, .. } = probe;
    let mut pair = Pair::new(
        Peer::new(Link::new(client), start),
        Peer::new(Link::new(server), start),
        Impairments::default(),
        Impairments::default(),
        seed,
    );
    pair.a_to_b = a_to_b;
    pair.b_to_a = b_to_a;
    pair
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
    let mut pair = pair(client_config(1), server_config(2), Impairments::delay(Duration::from_millis(5)), 1);
    assert!(pair.run_until(Duration::from_secs(10), |a, b| a.network_ready() && b.network_ready()));
    assert!(pair.elapsed() < Duration::from_millis(200), "took {:?}", pair.elapsed());

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
        assert!(peer.events.iter().any(|e| matches!(e, LinkEvent::LinkUp(_))));
    }

    let now = pair.now();
    pair.a.link.send_ipv4(now, &ping(CLIENT_ADDR, SERVER_ADDR, 1)).unwrap();
    pair.b.link.send_ipv4(now, &ping(SERVER_ADDR, CLIENT_ADDR, 2)).unwrap();
    pair.run_for(pair.elapsed() + Duration::from_millis(50));
    assert_eq!(pair.b.datagrams, vec![Datagram::Ipv4(ping(CLIENT_ADDR, SERVER_ADDR, 1))]);
    assert_eq!(pair.a.datagrams, vec![Datagram::Ipv4(ping(SERVER_ADDR, CLIENT_ADDR, 2))]);
    assert!(pair.a.link.send_ipv4(now, &vec![0x45; 1501]).is_err(), "MTU is enforced");

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
    let mut pair = pair(client, server, Impairments::delay(Duration::from_millis(5)), 3);
    assert!(pair.run_until(Duration::from_secs(10), |a, b| {
        a.link.ipv6cp_negotiated().is_some() && b.link.ipv6cp_negotiated().is_some() && a.network_ready()
    }));
    let a = pair.a.link.ipv6cp_negotiated().unwrap();
    let b = pair.b.link.ipv6cp_negotiated().unwrap();
    assert_eq!(a.local_interface_id, b.peer_interface_id);
    assert_ne!(a.local_interface_id, a.peer_interface_id);
    let now = pair.now();
    let v6 = [0x60u8, 0, 0, 0, 0, 0, 59, 64].iter().copied().chain([0u8; 32]).collect::<Vec<_>>();
    pair.a.link.send_ipv6(now, &v6).unwrap();
    pair.run_for(pair.elapsed() + Duration::from_millis(50));
    assert_eq!(pair.b.datagrams, vec![Datagram::Ipv6(v6)]);
}

#[test]
fn a_rejected_ipv6cp_leaves_ipcp_and_the_link_up() {
    let mut client = client_config(5);
    client.ipv6cp = Some(Ipv6cpConfig::default());
    let mut pair = pair(client, server_config(6), Impairments::delay(Duration::from_millis(5)), 5);
    assert!(pair.run_until(Duration::from_secs(10), |a, b| a.network_ready() && b.network_ready()));
    pair.run_for(pair.elapsed() + Duration::from_secs(5));
    assert!(pair.a.events.iter().any(|e| matches!(
        e,
        LinkEvent::NcpFinished { protocol: Protocol::Ipv6cp, .. }
    )));
    assert!(pair.b.link.stats().protocol_rejects_sent >= 1);
    assert_eq!(pair.a.link.phase(), Phase::Network);
    assert!(pair.a.network_ready());
    assert_eq!(pair.a.down_reason(), None);
}

#[test]
fn converges_with_thirty_percent_loss_on_a_thousand_seeds() {
    let mut slowest = Duration::ZERO;
    for seed in 0..1000u64 {
        let mut client = client_config(seed);
        let mut server = server_config(seed.wrapping_mul(31) + 7);
        // Plenty of restarts: at 30% loss a request and its answer both survive about half the
        // time, and pppd's default of 10 requests gives up on some seeds.
        for config in [&mut client, &mut server] {
            config.lcp.fsm.max_configure = 40;
            // Lost Naks make the peer repeat its request, and each repeat costs a Nak: RFC 1661's
            // Max-Failure of 5 would turn the Naks into Rejects on some seeds.
            config.lcp.fsm.max_failure = 20;
        }
        let mut pair = pair(client, server, Impairments::lossy(0.3, Duration::from_millis(10)), seed);
        let ok = pair.run_until(Duration::from_secs(300), |a, b| a.network_ready() && b.network_ready());
        assert!(
            ok,
            "seed {seed}: client {:?} {:?} server {:?} {:?}",
            pair.a.link, pair.a.events, pair.b.link, pair.b.events
        );
        slowest = slowest.max(pair.elapsed());
        assert_eq!(pair.a.ip_up().map(|x| x.0), Some(CLIENT_ADDR), "seed {seed}");
    }
    println!("slowest convergence at 30% loss: {slowest:?}");
}

#[test]
fn converges_through_loss_duplication_reordering_and_corruption() {
    for seed in 0..300u64 {
        let mut client = client_config(seed);
        let mut server = server_config(seed + 1000);
        for config in [&mut client, &mut server] {
            config.lcp.fsm.max_configure = 40;
            // Lost Naks make the peer repeat its request, and each repeat costs a Nak: RFC 1661's
            // Max-Failure of 5 would turn the Naks into Rejects on some seeds.
            config.lcp.fsm.max_failure = 20;
        }
        let mut pair = pair(client, server, Impairments::chaos(0.1, Duration::from_millis(10)), seed);
        let ok = pair.run_until(Duration::from_secs(300), |a, b| a.network_ready() && b.network_ready());
        assert!(ok, "seed {seed}: client {:?} server {:?}", pair.a.link, pair.b.link);
        // Corrupted frames were caught by the FCS, never taken for good ones.
        assert_eq!(pair.a.ip_up(), Some((CLIENT_ADDR, SERVER_ADDR, vec![DNS])), "seed {seed}");
        assert_eq!(pair.b.ip_up().map(|x| (x.0, x.1)), Some((SERVER_ADDR, CLIENT_ADDR)), "seed {seed}");
    }
}

#[test]
fn a_dead_peer_is_detected_by_echo() {
    let mut client = client_config(8);
    client.lcp.echo_interval = Some(Duration::from_secs(5));
    client.lcp.echo_failure = 3;
    let mut pair = pair(client, server_config(9), Impairments::delay(Duration::from_millis(5)), 8);
    assert!(pair.run_until(Duration::from_secs(10), |a, b| a.network_ready() && b.network_ready()));
    // Echoes are answered while the peer lives.
    pair.run_for(pair.elapsed() + Duration::from_secs(30));
    assert_eq!(pair.a.down_reason(), None);
    // The peer goes silent.
    pair.b_to_a.set_impairments(Impairments::lossy(1.0, Duration::ZERO));
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
    encoder.encode(Protocol::Ipcp, &[1, 1, 0, 10, 3, 6, 192, 0, 2, 9], &mut wire);
    encoder.encode(Protocol::Ipv4, &ping(SERVER_ADDR, CLIENT_ADDR, 1), &mut wire);
    encoder.encode(Protocol::Unknown(0x8235), &[1, 1, 0, 4], &mut wire);
    link.handle_input(now, &wire);
    assert_eq!(link.stats().discarded, 3);
    assert_eq!(link.poll_datagram(), None);
    assert_eq!(link.ipcp().unwrap().state(), State::Initial);
    assert_eq!(link.stats().protocol_rejects_sent, 0);
}

#[test]
fn unknown_protocols_are_rejected_once_lcp_is_opened() {
    let mut pair = pair(client_config(11), server_config(12), Impairments::delay(Duration::from_millis(5)), 11);
    assert!(pair.run_until(Duration::from_secs(10), |a, b| a.network_ready() && b.network_ready()));
    let mut encoder = AsyncEncoder::new(EncoderConfig { accm: 0, ..EncoderConfig::default() });
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
    let mut client = LinkConfig { seed: 13, ..LinkConfig::pppoe() };
    client.lcp.allow.clear();
    let mut server = LinkConfig { framing: Framing::Sync, ..server_config(14) };
    server.lcp = ppp_lcp::lcp::LcpConfig { allow: vec![], ..ppp_lcp::lcp::LcpConfig::pppoe() };
    let mut pair = pair(client, server, Impairments::delay(Duration::from_millis(1)), 13);
    assert!(pair.run_until(Duration::from_secs(10), |a, b| a.network_ready() && b.network_ready()));
    let n = pair.a.link.lcp_negotiated().unwrap();
    assert_eq!((n.our_mru, n.peer_mru, n.mtu), (1492, 1492, 1492));
    assert!(!n.pfc_tx && !n.acfc_tx);
}

/// A stand-in authentication session driven by the test: it holds the link in the Authenticate
/// phase until the test decides the outcome.
struct ScriptedSession {
    method: AuthProtocol,
    role: AuthRole,
    outcome: Arc<Mutex<AuthStatus>>,
}

impl AuthSession for ScriptedSession {
    fn method(&self) -> AuthProtocol {
        self.method
    }
    fn role(&self) -> AuthRole {
        self.role
    }
    fn start(&mut self, _now: Instant) {}
    fn handle_input(&mut self, _now: Instant, _packet: &[u8]) {}
    fn handle_timeout(&mut self, _now: Instant) {}
    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        None
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn status(&self) -> AuthStatus {
        self.outcome.lock().unwrap().clone()
    }
}

struct ScriptedProvider(Arc<Mutex<AuthStatus>>);

impl AuthProvider for ScriptedProvider {
    fn session(&mut self, role: AuthRole, method: AuthProtocol) -> Option<Box<dyn AuthSession>> {
        Some(Box::new(ScriptedSession { method, role, outcome: self.0.clone() }))
    }
}

fn auth_pair(outcome: Arc<Mutex<AuthStatus>>) -> Pair<Peer, Peer> {
    let mut pair = pair(client_config(20), server_config(21), Impairments::delay(Duration::from_millis(5)), 20);
    let start = pair.start();
    let mut client = client_config(20);
    client.lcp.allow = vec![AuthProtocol::Pap];
    let mut server = server_config(21);
    server.lcp.require = vec![AuthProtocol::Pap];
    pair.a = Peer::new(Link::with_auth(client, Box::new(ScriptedProvider(outcome.clone()))), start);
    pair.b = Peer::new(Link::with_auth(server, Box::new(ScriptedProvider(outcome))), start);
    pair
}

#[test]
fn network_phase_waits_for_authentication() {
    let outcome = Arc::new(Mutex::new(AuthStatus::Pending));
    let mut pair = auth_pair(outcome.clone());
    pair.run_for(Duration::from_secs(5));
    for peer in [&pair.a, &pair.b] {
        assert_eq!(peer.link.phase(), Phase::Authenticate);
        assert_eq!(peer.link.ipcp().unwrap().state(), State::Initial);
    }
    let n = pair.b.link.lcp_negotiated().unwrap();
    assert_eq!(n.auth_we_require, Some(AuthProtocol::Pap));
    *outcome.lock().unwrap() = AuthStatus::Succeeded;
    // The sessions are polled on the next input or timeout.
    let now = pair.now();
    pair.a.handle_timeout(now);
    pair.b.handle_timeout(now);
    assert!(pair.run_until(Duration::from_secs(10), |a, b| a.network_ready() && b.network_ready()));
    assert!(pair.a.events.iter().any(|e| matches!(e, LinkEvent::Authenticated { .. })));
}

#[test]
fn failed_authentication_ends_the_link_with_the_reason() {
    let outcome = Arc::new(Mutex::new(AuthStatus::Pending));
    let mut pair = auth_pair(outcome.clone());
    pair.run_for(Duration::from_secs(1));
    *outcome.lock().unwrap() = AuthStatus::Failed("wrong password".into());
    let now = pair.now();
    pair.b.handle_timeout(now);
    pair.run_for(pair.elapsed() + Duration::from_secs(10));
    let reason = pair.b.down_reason().expect("server link down");
    assert!(reason.contains("wrong password"), "{reason}");
    assert!(!pair.a.network_ready() && !pair.b.network_ready());
}

#[test]
fn without_an_auth_provider_a_required_method_fails_cleanly() {
    let mut client = client_config(30);
    client.lcp.allow = vec![AuthProtocol::ChapMd5];
    let mut server = server_config(31);
    server.lcp.require = vec![AuthProtocol::ChapMd5];
    let mut pair = pair(client, server, Impairments::delay(Duration::from_millis(5)), 30);
    pair.run_for(Duration::from_secs(10));
    let reason = pair.b.down_reason().expect("down");
    assert!(reason.contains("ChapMd5"), "{reason}");
}
