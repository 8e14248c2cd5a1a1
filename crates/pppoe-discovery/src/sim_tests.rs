//! Clients and access concentrators in one process, on virtual time, over `ppp-sim` links.

use std::time::{Duration, Instant};

use ppp_sim::{Endpoint, Impairments, Pair};

use crate::wire::{Code, DiscoveryRepr, MacAddr, TagType};
use crate::{
    AcConfig, AcEvent, AccessConcentrator, Client, ClientConfig, ClientEvent, DownReason,
    FailReason, TerminateReason,
};

fn client_mac(n: u8) -> MacAddr {
    MacAddr([0x02, 0x00, 0x00, 0x00, 0x01, n])
}

fn ac_mac(n: u8) -> MacAddr {
    MacAddr([0x02, 0x00, 0x00, 0x00, 0xac, n])
}

struct ClientNode {
    client: Client,
    events: Vec<ClientEvent>,
}

impl ClientNode {
    fn new(config: ClientConfig, mac: MacAddr, seed: u64) -> Self {
        ClientNode {
            client: Client::with_seed(config, mac, seed),
            events: Vec::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(event) = self.client.poll_event() {
            self.events.push(event);
        }
    }

    fn session_id(&self) -> Option<u16> {
        self.client.session().map(|s| s.session_id)
    }

    fn failed(&self) -> Option<&FailReason> {
        self.events.iter().find_map(|e| match e {
            ClientEvent::Failed { reason } => Some(reason),
            _ => None,
        })
    }

    fn went_down(&self) -> Option<&TerminateReason> {
        self.events.iter().find_map(|e| match e {
            ClientEvent::SessionDown { reason, .. } => Some(reason),
            _ => None,
        })
    }
}

impl Endpoint for ClientNode {
    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.client.handle_input(now, data);
        self.drain();
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.client.handle_timeout(now);
        self.drain();
    }
    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.client.poll_transmit()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.client.poll_timeout()
    }
}

struct AcNode {
    ac: AccessConcentrator,
    events: Vec<AcEvent>,
}

impl AcNode {
    fn new(config: AcConfig, mac: MacAddr, seed: u64) -> Self {
        AcNode {
            ac: AccessConcentrator::with_seed(config, mac, Instant::now(), seed),
            events: Vec::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(event) = self.ac.poll_event() {
            self.events.push(event);
        }
    }
}

impl Endpoint for AcNode {
    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.ac.handle_input(now, data);
        self.drain();
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.ac.handle_timeout(now);
        self.drain();
    }
    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.ac.poll_transmit()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.ac.poll_timeout()
    }
}

/// Several endpoints on one Ethernet segment: each hears every frame (and filters by address).
struct Segment<E>(Vec<E>);

impl<E: Endpoint> Endpoint for Segment<E> {
    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        for node in &mut self.0 {
            node.handle_input(now, data);
        }
    }
    fn handle_timeout(&mut self, now: Instant) {
        for node in &mut self.0 {
            if node.poll_timeout().is_some_and(|t| t <= now) {
                node.handle_timeout(now);
            }
        }
    }
    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.0.iter_mut().find_map(Endpoint::poll_transmit)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.0.iter().filter_map(Endpoint::poll_timeout).min()
    }
}

const LINK: Duration = Duration::from_millis(5);

fn pair<A: Endpoint, B: Endpoint>(a: A, b: B, link: Impairments, seed: u64) -> Pair<A, B> {
    Pair::new(a, b, link.clone(), link, seed)
}

#[test]
fn session_up_and_padt_from_the_client() {
    let client = ClientNode::new(
        ClientConfig {
            service_name: "internet".into(),
            ..ClientConfig::default()
        },
        client_mac(1),
        1,
    );
    let ac = AcNode::new(AcConfig::default(), ac_mac(1), 2);
    let mut pair = pair(client, ac, Impairments::delay(LINK), 3);
    pair.a.client.start(pair.now());
    assert!(
        pair.run_until(Duration::from_secs(5), |c, a| c.session_id().is_some()
            && a.ac.session_count() == 1)
    );
    let id = pair.a.session_id().unwrap();
    assert_ne!(id, 0);
    assert_eq!(pair.elapsed(), LINK * 4);
    match &pair.a.events[..] {
        [
            ClientEvent::SessionUp {
                session_id,
                ac_mac: mac,
                ac_name,
                service_name,
                max_payload,
            },
        ] => {
            assert_eq!(
                (*session_id, *mac, ac_name.as_str(), service_name.as_str()),
                (id, ac_mac(1), "pppoe-ac", "internet")
            );
            assert_eq!(*max_payload, None);
        }
        other => panic!("{other:?}"),
    }
    match &pair.b.events[..] {
        [
            AcEvent::SessionUp {
                session_id,
                client_mac: mac,
                service_name,
                host_uniq,
                max_payload: None,
            },
        ] => {
            assert_eq!(
                (*session_id, *mac, service_name.as_str()),
                (id, client_mac(1), "internet")
            );
            assert_eq!(host_uniq.as_slice(), pair.a.client.host_uniq());
        }
        other => panic!("{other:?}"),
    }
    let listed: Vec<_> = pair
        .b
        .ac
        .sessions()
        .map(|s| (s.session_id, s.client_mac))
        .collect();
    assert_eq!(listed, [(id, client_mac(1))]);

    let now = pair.now();
    pair.a.client.close(now);
    pair.a.drain();
    assert!(pair.run_until(Duration::from_secs(6), |_, a| a.ac.session_count() == 0));
    assert_eq!(pair.a.went_down(), Some(&TerminateReason::Closed));
    assert!(matches!(
        pair.b.events.last(),
        Some(AcEvent::SessionDown { session_id, reason: DownReason::PeerTerminated, .. }) if *session_id == id
    ));
}

#[test]
fn padt_from_the_ac_and_shutdown() {
    let clients = (1..=3)
        .map(|n| ClientNode::new(ClientConfig::default(), client_mac(n), u64::from(n)))
        .collect();
    let ac = AcNode::new(AcConfig::default(), ac_mac(1), 9);
    let mut pair = pair(Segment(clients), ac, Impairments::delay(LINK), 4);
    let now = pair.now();
    for node in &mut pair.a.0 {
        node.client.start(now);
    }
    assert!(pair.run_until(Duration::from_secs(5), |c, _| {
        c.0.iter().all(|n| n.session_id().is_some())
    }));
    let first = pair.a.0[0].session_id().unwrap();
    let now = pair.now();
    assert!(pair.b.ac.close_session(now, first));
    assert!(!pair.b.ac.close_session(now, first));
    assert!(pair.run_until(Duration::from_secs(6), |c, _| c.0[0].client.is_idle()));
    assert_eq!(
        pair.a.0[0].went_down(),
        Some(&TerminateReason::PeerTerminated { message: None })
    );
    assert!(pair.a.0[1].session_id().is_some());

    let now = pair.now();
    pair.b.ac.shutdown(now);
    pair.b.drain();
    assert!(pair.run_until(Duration::from_secs(7), |c, _| {
        c.0.iter().all(|n| n.client.is_idle())
    }));
    assert_eq!(
        pair.a.0[2].went_down(),
        Some(&TerminateReason::PeerTerminated {
            message: Some("AC shutting down".into())
        })
    );
    let downs = pair
        .b
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                AcEvent::SessionDown {
                    reason: DownReason::Shutdown,
                    ..
                }
            )
        })
        .count();
    assert_eq!(downs, 2);
    assert_eq!(pair.b.ac.state_size(), 0);
}

#[test]
fn lossy_links_recover_by_retrying() {
    let config = ClientConfig {
        padi_attempts: 12,
        padr_attempts: 6,
        ..ClientConfig::default()
    };
    for seed in 0..30 {
        let client = ClientNode::new(config.clone(), client_mac(1), seed);
        let ac = AcNode::new(AcConfig::default(), ac_mac(1), seed + 100);
        let mut pair = pair(client, ac, Impairments::lossy(0.3, LINK), seed);
        pair.a.client.start(pair.now());
        assert!(
            pair.run_until(Duration::from_secs(120), |c, a| c.session_id().is_some()
                && a.ac.session(c.session_id().unwrap_or(0)).is_some()),
            "seed {seed}: {:?} {:?}",
            pair.a.events,
            pair.b.ac.stats()
        );
        // Repeated PADRs never make a second session.
        assert_eq!(pair.b.ac.session_count(), 1, "seed {seed}");
    }
}

#[test]
fn chaos_never_panics_and_mostly_succeeds() {
    let mut up = 0;
    for seed in 0..40 {
        let client = ClientNode::new(
            ClientConfig {
                padi_attempts: 10,
                ..ClientConfig::default()
            },
            client_mac(1),
            seed,
        );
        let ac = AcNode::new(AcConfig::default(), ac_mac(1), seed);
        let mut pair = pair(client, ac, Impairments::chaos(0.2, LINK), seed);
        pair.a.client.start(pair.now());
        if pair.run_until(Duration::from_secs(120), |c, _| c.session_id().is_some()) {
            up += 1;
            assert!(pair.b.ac.session_count() >= 1);
        }
    }
    assert!(up >= 36, "{up}/40");
}

#[test]
fn several_acs_choice_by_name_and_service() {
    let acs = |_| {
        Segment(vec![
            AcNode::new(
                AcConfig {
                    ac_name: "alpha".into(),
                    ..AcConfig::default()
                },
                ac_mac(1),
                1,
            ),
            AcNode::new(
                AcConfig {
                    ac_name: "beta".into(),
                    services: vec!["internet".into(), "video".into()],
                    ..AcConfig::default()
                },
                ac_mac(2),
                2,
            ),
            AcNode::new(
                AcConfig {
                    ac_name: "gamma".into(),
                    ..AcConfig::default()
                },
                ac_mac(3),
                3,
            ),
        ])
    };
    let cases = [
        (
            ClientConfig {
                ac_name: "gamma".into(),
                ..ClientConfig::default()
            },
            2,
            "gamma",
        ),
        (
            ClientConfig {
                service_name: "video".into(),
                ..ClientConfig::default()
            },
            1,
            "beta",
        ),
        (
            ClientConfig {
                ac_name: "beta".into(),
                service_name: "internet".into(),
                ..ClientConfig::default()
            },
            1,
            "beta",
        ),
    ];
    for (config, index, name) in cases {
        let client = ClientNode::new(config, client_mac(1), 5);
        let mut pair = pair(client, acs(()), Impairments::delay(LINK), 6);
        pair.a.client.start(pair.now());
        assert!(
            pair.run_until(Duration::from_secs(5), |c, _| c.session_id().is_some()),
            "{name}"
        );
        let session = pair.a.client.session().unwrap().clone();
        assert_eq!(session.ac_name, name);
        assert_eq!(session.ac_mac, ac_mac(index as u8 + 1));
        let counts: Vec<usize> = pair.b.0.iter().map(|n| n.ac.session_count()).collect();
        let mut expected = vec![0, 0, 0];
        expected[index] = 1;
        assert_eq!(counts, expected, "{name}");
    }

    // Nobody offers "voice": no PADO, the client gives up after its PADIs (1+2+4+8+8 s).
    let client = ClientNode::new(
        ClientConfig {
            service_name: "voice".into(),
            ..ClientConfig::default()
        },
        client_mac(1),
        5,
    );
    let mut pair = pair(client, acs(()), Impairments::delay(LINK), 6);
    pair.a.client.start(pair.now());
    assert!(pair.run_until(Duration::from_secs(60), |c, _| c.failed().is_some()));
    assert_eq!(pair.a.failed(), Some(&FailReason::NoOffer));
    assert_eq!(pair.elapsed(), Duration::from_secs(23));
    assert_eq!(pair.a.client.stats().sent, 5);
}

#[test]
fn pado_delay_lets_the_preferred_ac_win() {
    let acs = Segment(vec![
        AcNode::new(
            AcConfig {
                ac_name: "backup".into(),
                pado_delay: Duration::from_millis(300),
                ..AcConfig::default()
            },
            ac_mac(1),
            1,
        ),
        AcNode::new(
            AcConfig {
                ac_name: "primary".into(),
                ..AcConfig::default()
            },
            ac_mac(2),
            2,
        ),
    ]);
    let client = ClientNode::new(ClientConfig::default(), client_mac(1), 5);
    let mut pair = pair(client, acs, Impairments::delay(LINK), 6);
    pair.a.client.start(pair.now());
    pair.run_for(Duration::from_secs(2));
    assert_eq!(
        pair.a.client.session().map(|s| s.ac_name.as_str()),
        Some("primary")
    );
    assert_eq!(pair.b.0[0].ac.stats().pado_sent, 1);
    assert_eq!(pair.b.0[0].ac.session_count(), 0);
    assert_eq!(pair.b.0[0].ac.poll_timeout(), None);
}

#[test]
fn scan_lists_every_ac_and_service() {
    let acs = Segment(vec![
        AcNode::new(
            AcConfig {
                ac_name: "alpha".into(),
                ..AcConfig::default()
            },
            ac_mac(1),
            1,
        ),
        AcNode::new(
            AcConfig {
                ac_name: "beta".into(),
                services: vec!["internet".into(), "video".into()],
                ..AcConfig::default()
            },
            ac_mac(2),
            2,
        ),
    ]);
    let client = ClientNode::new(ClientConfig::default(), client_mac(1), 5);
    let mut pair = pair(client, acs, Impairments::delay(LINK), 6);
    let now = pair.now();
    pair.a.client.scan(now, Duration::from_secs(3));
    assert!(pair.run_until(Duration::from_secs(10), |c, _| c.client.is_idle()));
    assert_eq!(pair.elapsed(), Duration::from_secs(3));
    let Some(ClientEvent::ScanComplete { results }) = pair.a.events.last() else {
        panic!("{:?}", pair.a.events);
    };
    let summary: Vec<(&str, MacAddr, Vec<&str>)> = results
        .iter()
        .map(|r| {
            (
                r.ac_name.as_str(),
                r.ac_mac,
                r.services.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("alpha", ac_mac(1), vec!["", "internet"]),
            ("beta", ac_mac(2), vec!["", "internet", "video"])
        ]
    );
    // Scanning sends PADIs but never PADRs: no session anywhere.
    assert!(
        pair.b
            .0
            .iter()
            .all(|n| n.ac.session_count() == 0 && n.ac.stats().padr_received == 0)
    );
}

#[test]
fn max_sessions_refuses_with_ac_system_error() {
    let clients = (1..=3)
        .map(|n| ClientNode::new(ClientConfig::default(), client_mac(n), u64::from(n)))
        .collect();
    let ac = AcNode::new(
        AcConfig {
            max_sessions: 2,
            ..AcConfig::default()
        },
        ac_mac(1),
        9,
    );
    let mut pair = pair(Segment(clients), ac, Impairments::delay(LINK), 4);
    let now = pair.now();
    for (i, node) in pair.a.0.iter_mut().enumerate() {
        node.client
            .start(now + Duration::from_millis(i as u64 * 100));
    }
    assert!(pair.run_until(Duration::from_secs(5), |c, _| c.0[2].failed().is_some()));
    assert!(pair.a.0[0].session_id().is_some() && pair.a.0[1].session_id().is_some());
    assert!(matches!(
        pair.a.0[2].failed(),
        Some(FailReason::AcSystemError(_))
    ));
    assert_eq!(pair.b.ac.session_count(), 2);
    assert_eq!(pair.b.ac.stats().refused_full, 1);
}

#[test]
fn one_session_per_host_replaces_the_old_one() {
    // The same host, twice (as after a reboot that lost the session).
    let clients = vec![
        ClientNode::new(ClientConfig::default(), client_mac(1), 1),
        ClientNode::new(ClientConfig::default(), client_mac(1), 2),
    ];
    let ac = AcNode::new(
        AcConfig {
            one_session_per_host: true,
            ..AcConfig::default()
        },
        ac_mac(1),
        9,
    );
    let mut pair = pair(Segment(clients), ac, Impairments::delay(LINK), 4);
    let now = pair.now();
    pair.a.0[0].client.start(now);
    assert!(pair.run_until(Duration::from_secs(5), |c, _| c.0[0].session_id().is_some()));
    let old = pair.a.0[0].session_id().unwrap();
    let now = pair.now();
    pair.a.0[1].client.start(now);
    assert!(
        pair.run_until(Duration::from_secs(5), |c, _| c.0[1].session_id().is_some()
            && c.0[0].client.is_idle())
    );
    let new = pair.a.0[1].session_id().unwrap();
    assert_ne!(old, new);
    assert_eq!(
        pair.b
            .ac
            .sessions()
            .map(|s| s.session_id)
            .collect::<Vec<_>>(),
        [new]
    );
    assert!(pair.b.events.iter().any(
        |e| matches!(e, AcEvent::SessionDown { session_id, reason: DownReason::Replaced, .. } if *session_id == old)
    ));
    assert!(matches!(
        pair.a.0[0].went_down(),
        Some(TerminateReason::PeerTerminated { .. })
    ));

    // Without the option, both sessions stay.
    let clients = vec![
        ClientNode::new(ClientConfig::default(), client_mac(1), 1),
        ClientNode::new(ClientConfig::default(), client_mac(1), 2),
    ];
    let mut pair = pair_of(clients, AcConfig::default());
    let now = pair.now();
    for node in &mut pair.a.0 {
        node.client.start(now);
    }
    assert!(pair.run_until(Duration::from_secs(5), |c, _| {
        c.0.iter().all(|n| n.session_id().is_some())
    }));
    assert_eq!(pair.b.ac.session_count(), 2);
}

fn pair_of(clients: Vec<ClientNode>, config: AcConfig) -> Pair<Segment<ClientNode>, AcNode> {
    pair(
        Segment(clients),
        AcNode::new(config, ac_mac(1), 9),
        Impairments::delay(LINK),
        4,
    )
}

#[test]
fn ppp_max_payload_negotiation() {
    let cases = [
        (1500, Some(1500), Some(1500)),
        (1500, Some(1496), Some(1496)),
        (1500, None, None),
        (1492, Some(1500), None),
        (9000, Some(1500), Some(1500)),
    ];
    for (wanted, supported, agreed) in cases {
        let client = ClientNode::new(
            ClientConfig {
                max_payload: wanted,
                ..ClientConfig::default()
            },
            client_mac(1),
            1,
        );
        let mut pair = pair(
            client,
            AcNode::new(
                AcConfig {
                    max_payload: supported,
                    ..AcConfig::default()
                },
                ac_mac(1),
                1,
            ),
            Impairments::delay(LINK),
            1,
        );
        pair.a.client.start(pair.now());
        assert!(pair.run_until(Duration::from_secs(5), |c, _| c.session_id().is_some()));
        let session = pair.a.client.session().unwrap();
        assert_eq!(session.max_payload, agreed, "{wanted} {supported:?}");
        assert_eq!(session.mtu.ppp_mtu, agreed.unwrap_or(1492));
        assert_eq!(pair.b.ac.sessions().next().unwrap().max_payload, agreed);
    }
}

#[test]
fn padi_flood_allocates_nothing() {
    let now = Instant::now();
    let mut ac = AccessConcentrator::with_seed(AcConfig::default(), ac_mac(1), now, 1);
    let before = ac.state_size();
    for i in 0..10_000u32 {
        let [_, b, c, d] = i.to_be_bytes();
        let padi = DiscoveryRepr::new(
            MacAddr::BROADCAST,
            MacAddr([0x02, 0xee, b, c, d, 1]),
            Code::Padi,
            0,
        )
        .with_tag(TagType::ServiceName, "")
        .with_tag(TagType::HostUniq, i.to_be_bytes());
        ac.handle_input(
            now + Duration::from_micros(u64::from(i)),
            &padi.to_bytes().unwrap(),
        );
        let pado = ac.poll_transmit().expect("a PADO");
        assert!(ac.poll_transmit().is_none());
        assert_eq!(DiscoveryRepr::parse_bytes(&pado).unwrap().code, Code::Pado);
        assert_eq!(ac.state_size(), before);
    }
    assert_eq!(ac.stats().pado_sent, 10_000);
    assert_eq!(ac.session_count(), 0);

    // With a PADO delay, at most `max_pending_offers` PADOs wait.
    let config = AcConfig {
        pado_delay: Duration::from_millis(200),
        max_pending_offers: 100,
        ..AcConfig::default()
    };
    let mut ac = AccessConcentrator::with_seed(config, ac_mac(1), now, 1);
    let padi = DiscoveryRepr::new(MacAddr::BROADCAST, client_mac(1), Code::Padi, 0)
        .with_tag(TagType::ServiceName, "");
    for _ in 0..10_000 {
        ac.handle_input(now, &padi.to_bytes().unwrap());
    }
    assert_eq!(ac.state_size(), 100);
    assert_eq!(ac.stats().padi_ignored, 9_900);
    assert_eq!(ac.poll_timeout(), Some(now + Duration::from_millis(200)));
    ac.handle_timeout(now + Duration::from_millis(199));
    assert!(ac.poll_transmit().is_none());
    ac.handle_timeout(now + Duration::from_millis(200));
    assert_eq!(std::iter::from_fn(|| ac.poll_transmit()).count(), 100);
    assert_eq!(ac.state_size(), 0);
}

#[test]
fn deterministic_given_seeds() {
    let run = || {
        let client = ClientNode::new(ClientConfig::default(), client_mac(1), 77);
        let mut pair = pair(
            client,
            AcNode::new(AcConfig::default(), ac_mac(1), 78),
            Impairments::lossy(0.3, LINK),
            79,
        );
        pair.a.client.start(pair.now());
        pair.run_until(Duration::from_secs(60), |c, _| c.session_id().is_some());
        (
            pair.a.session_id(),
            pair.a.client.host_uniq().to_vec(),
            pair.elapsed(),
        )
    };
    assert_eq!(run(), run());
}

mod robustness {
    use super::*;
    use proptest::prelude::*;

    /// Random frames, some shaped like discovery frames addressed to the endpoint.
    fn frames() -> impl Strategy<Value = Vec<Vec<u8>>> {
        let shaped = (
            any::<u8>(),
            any::<u16>(),
            proptest::collection::vec(any::<u8>(), 0..60),
            any::<bool>(),
        )
            .prop_map(|(code, session_id, payload, to_ac)| {
                let dst = if to_ac { ac_mac(1) } else { client_mac(1) };
                let src = if to_ac { client_mac(1) } else { ac_mac(1) };
                let mut frame = Vec::new();
                frame.extend_from_slice(&dst.0);
                frame.extend_from_slice(&src.0);
                frame.extend_from_slice(&[0x88, 0x63, 0x11, code]);
                frame.extend_from_slice(&session_id.to_be_bytes());
                frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
                frame.extend_from_slice(&payload);
                frame
            });
        let raw = proptest::collection::vec(any::<u8>(), 0..80);
        proptest::collection::vec(prop_oneof![shaped, raw], 0..40)
    }

    proptest! {
        #[test]
        fn endpoints_survive_arbitrary_frames(frames in frames(), seed in any::<u64>()) {
            let now = Instant::now();
            let mut ac = AccessConcentrator::with_seed(AcConfig::default(), ac_mac(1), now, seed);
            let mut client = Client::with_seed(ClientConfig::default(), client_mac(1), seed);
            client.start(now);
            let mut scanner = Client::with_seed(ClientConfig::default(), client_mac(1), seed);
            scanner.scan(now, Duration::from_secs(1));
            for (i, frame) in frames.iter().enumerate() {
                let t = now + Duration::from_millis(i as u64 * 300);
                ac.handle_input(t, frame);
                client.handle_input(t, frame);
                scanner.handle_input(t, frame);
                // Let the AC answer the client for real, so later frames meet every state.
                while let Some(out) = client.poll_transmit() {
                    ac.handle_input(t, &out);
                }
                while let Some(out) = ac.poll_transmit() {
                    client.handle_input(t, &out);
                }
                client.handle_timeout(t);
                scanner.handle_timeout(t);
                ac.handle_timeout(t);
                while client.poll_event().is_some() || ac.poll_event().is_some() || scanner.poll_event().is_some() {}
                while scanner.poll_transmit().is_some() {}
            }
            prop_assert!(ac.session_count() <= 1);
        }
    }
}

/// Throughput of the AC's PADI path (cookie and PADO included). Run with
/// `cargo test --release -p pppoe-discovery padi_rate -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a test"]
fn padi_rate() {
    let now = Instant::now();
    let mut ac = AccessConcentrator::with_seed(AcConfig::default(), ac_mac(1), now, 1);
    let padi = DiscoveryRepr::new(MacAddr::BROADCAST, client_mac(1), Code::Padi, 0)
        .with_tag(TagType::ServiceName, "")
        .with_tag(TagType::HostUniq, [1, 2, 3, 4, 5, 6, 7, 8])
        .to_bytes()
        .unwrap();
    let n = 200_000u32;
    let started = Instant::now();
    for _ in 0..n {
        ac.handle_input(now, &padi);
        assert!(ac.poll_transmit().is_some());
    }
    let elapsed = started.elapsed();
    println!(
        "{n} PADIs in {elapsed:?}: {:.0} PADI/s",
        f64::from(n) / elapsed.as_secs_f64()
    );
}

#[test]
fn manual_accept_over_the_link() {
    let config = AcConfig {
        accept_manually: true,
        ..AcConfig::default()
    };
    let clients = vec![
        ClientNode::new(ClientConfig::default(), client_mac(1), 1),
        ClientNode::new(ClientConfig::default(), client_mac(2), 2),
    ];
    let mut pair = pair_of(clients, config);
    let now = pair.now();
    for node in &mut pair.a.0 {
        node.client.start(now);
    }
    assert!(pair.run_until(Duration::from_secs(5), |_, a| a.events.len() == 2));
    let requested: Vec<(u16, MacAddr)> = pair
        .b
        .events
        .iter()
        .filter_map(|e| match e {
            AcEvent::SessionRequested {
                session_id,
                client_mac,
                ..
            } => Some((*session_id, *client_mac)),
            _ => None,
        })
        .collect();
    assert_eq!(requested.len(), 2);
    let now = pair.now();
    for (id, mac) in requested {
        if mac == client_mac(1) {
            assert!(pair.b.ac.accept_session(now, id));
        } else {
            assert!(pair.b.ac.reject_session(now, id, "not subscribed"));
        }
    }
    pair.b.drain();
    assert!(
        pair.run_until(Duration::from_secs(6), |c, _| c.0[0].session_id().is_some()
            && c.0[1].failed().is_some())
    );
    assert_eq!(
        pair.a.0[1].failed(),
        Some(&FailReason::GenericError("not subscribed".into()))
    );
    assert_eq!(pair.b.ac.session_count(), 1);
}
