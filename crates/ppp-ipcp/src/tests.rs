//! Two automata negotiating in one process on a virtual clock: the owner's run loop shuttles
//! `poll_transmit` output into the other side's `handle_input` and fires timeouts.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ppp_core::{CloseReason, Random};
use ppp_lcp::fsm::{
    ControlProtocol, FinishReason, Fsm, FsmConfig, FsmEvent, NegotiationFailure, State,
};

use proptest::prelude::*;

use crate::{
    AddressPool, AddressRange, InterfaceId, InterfaceIdSource, Ipcp, IpcpConfig, IpcpOption,
    Ipv6cp, Ipv6cpConfig,
};

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const POOL_FIRST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const OTHER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 55);
const DNS1: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 53);
const DNS2: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 54);

/// Two automata and a virtual clock.
struct Pair<P: ControlProtocol> {
    now: Instant,
    a: Fsm<P>,
    b: Fsm<P>,
    events_a: Vec<FsmEvent>,
    events_b: Vec<FsmEvent>,
}

impl<P: ControlProtocol> Pair<P> {
    fn new(a: P, b: P) -> Self {
        Self::with_config(a, b, FsmConfig::default())
    }

    fn with_config(a: P, b: P, config: FsmConfig) -> Self {
        let now = Instant::now();
        let mut pair = Self {
            now,
            a: Fsm::new(a, config.clone()),
            b: Fsm::new(b, config),
            events_a: Vec::new(),
            events_b: Vec::new(),
        };
        for fsm in [&mut pair.a, &mut pair.b] {
            fsm.up(now);
            fsm.open(now);
        }
        pair
    }

    /// Drain events (an automaton whose protocol could not produce usable results at Up closes
    /// by itself, without reporting Up).
    fn owner(fsm: &mut Fsm<P>, log: &mut Vec<FsmEvent>) {
        log.extend(std::iter::from_fn(|| fsm.poll_event()));
    }

    /// Run until nothing moves and no timer is pending, or two minutes of virtual time pass.
    fn run(&mut self) {
        self.run_lossy(0, 0);
    }

    /// Like `run`, losing `loss_percent` of the packets (in each direction), chosen by a
    /// generator seeded with `seed`.
    fn run_lossy(&mut self, seed: u64, loss_percent: u64) {
        let random = Random::seeded(seed);
        let lost = move || random.u64() % 100 < loss_percent;
        let deadline = self.now + Duration::from_secs(120);
        loop {
            let mut moved = false;
            while let Some(packet) = self.a.poll_transmit() {
                if !lost() {
                    self.b.handle_input(self.now, &packet);
                }
                moved = true;
            }
            Self::owner(&mut self.a, &mut self.events_a);
            while let Some(packet) = self.b.poll_transmit() {
                if !lost() {
                    self.a.handle_input(self.now, &packet);
                }
                moved = true;
            }
            Self::owner(&mut self.b, &mut self.events_b);
            if moved {
                continue;
            }
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) if at <= deadline => {
                    self.now = self.now.max(at);
                    self.a.handle_timeout(self.now);
                    self.b.handle_timeout(self.now);
                }
                _ => break,
            }
        }
    }

    fn states(&self) -> (State, State) {
        (self.a.state(), self.b.state())
    }
}

fn finished_reason(events: &[FsmEvent]) -> Option<String> {
    events.iter().find_map(|e| match e {
        FsmEvent::Finished { reason } => Some(reason.to_string()),
        _ => None,
    })
}

fn pool_server(config: IpcpConfig) -> Ipcp {
    let mut next = Some(POOL_FIRST);
    Ipcp::with_address_pool(config, move || next.take())
}

#[test]
fn client_gets_address_and_dns_from_pool_server() {
    let server = pool_server(IpcpConfig::server(SERVER, [Some(DNS1), Some(DNS2)]));
    let mut pair = Pair::new(Ipcp::new(IpcpConfig::client()), server);
    pair.run();
    assert_eq!(pair.states(), (State::Opened, State::Opened));
    let client = pair.a.protocol().negotiated().copied().unwrap();
    assert_eq!(client.local, POOL_FIRST);
    assert_eq!(client.peer, SERVER);
    assert_eq!(client.dns, [Some(DNS1), Some(DNS2)]);
    assert_eq!(client.nbns, [None, None]);
    let server = pair.b.protocol().negotiated().copied().unwrap();
    assert_eq!((server.local, server.peer), (SERVER, POOL_FIRST));
    assert!(pair.events_a.contains(&FsmEvent::Up));

    // Closing brings both down and forgets the results.
    pair.a.close(pair.now, CloseReason::UserRequest);
    pair.run();
    assert!(pair.a.protocol().negotiated().is_none());
    assert!(pair.b.protocol().negotiated().is_none());
    assert!(pair.events_b.contains(&FsmEvent::Down));
}

#[test]
fn static_client_against_disagreeing_server_fails() {
    let client = Ipcp::new(IpcpConfig {
        local_address: Some(OTHER),
        accept_local: false,
        ..IpcpConfig::client()
    });
    let server = Ipcp::new(IpcpConfig {
        remote_address: Some(POOL_FIRST),
        ..IpcpConfig::server(SERVER, [Some(DNS1), None])
    });
    let mut pair = Pair::new(client, server);
    pair.run();
    assert_ne!(pair.a.state(), State::Opened);
    assert_ne!(pair.b.state(), State::Opened);
    let reason = finished_reason(&pair.events_a).unwrap();
    assert!(reason.contains("192.0.2.55"), "{reason}");
    assert!(reason.contains("accept-local"), "{reason}");
}

#[test]
fn static_client_with_agreeing_server() {
    let client = Ipcp::new(IpcpConfig {
        local_address: Some(OTHER),
        accept_local: false,
        ..IpcpConfig::default()
    });
    let server = Ipcp::new(IpcpConfig {
        accept_remote: true,
        ..IpcpConfig::server(SERVER, [None, None])
    });
    let mut pair = Pair::new(client, server);
    pair.run();
    assert_eq!(pair.states(), (State::Opened, State::Opened));
    assert_eq!(pair.a.protocol().negotiated().unwrap().local, OTHER);
    assert_eq!(pair.b.protocol().negotiated().unwrap().peer, OTHER);
}

#[test]
fn dns_rejected_still_opens_without_dns() {
    let server = pool_server(IpcpConfig::server(SERVER, [None, None]));
    let mut pair = Pair::new(Ipcp::new(IpcpConfig::client()), server);
    pair.run();
    assert_eq!(pair.states(), (State::Opened, State::Opened));
    let client = pair.a.protocol().negotiated().copied().unwrap();
    assert_eq!(client.local, POOL_FIRST);
    assert_eq!(client.dns, [None, None]);
}

#[test]
fn only_secondary_dns_rejected() {
    let server = pool_server(IpcpConfig::server(SERVER, [Some(DNS1), None]));
    let mut pair = Pair::new(Ipcp::new(IpcpConfig::client()), server);
    pair.run();
    assert_eq!(pair.states(), (State::Opened, State::Opened));
    assert_eq!(
        pair.a.protocol().negotiated().unwrap().dns,
        [Some(DNS1), None]
    );
}

#[test]
fn pool_exhaustion_fails_both_sides() {
    let server = Ipcp::with_address_pool(IpcpConfig::server(SERVER, [None, None]), || None);
    let mut pair = Pair::new(Ipcp::new(IpcpConfig::client()), server);
    pair.run();
    assert_ne!(pair.a.state(), State::Opened);
    assert_eq!(
        finished_reason(&pair.events_a),
        Some(NegotiationFailure::NoLocalAddress.to_string())
    );
    let failure = pair.b.protocol().failure().unwrap();
    assert_eq!(failure, &NegotiationFailure::AddressPoolExhausted);
}

/// Both sides know nothing about the other's address; the client asks for one and the peer
/// (acting as a server without one to give) must not Ack 0.0.0.0.
#[test]
fn nobody_has_an_address() {
    let mut pair = Pair::new(
        Ipcp::new(IpcpConfig::default()),
        Ipcp::new(IpcpConfig::default()),
    );
    pair.run();
    assert_ne!(pair.a.state(), State::Opened);
    assert_eq!(
        finished_reason(&pair.events_a),
        Some(NegotiationFailure::NoLocalAddress.to_string())
    );
}

/// A scripted peer that keeps asking for an address we disagree with: Max-Failure (5) Naks, then
/// Configure-Reject. Golden bytes as a pppd server would send them.
#[test]
fn insisting_peer_gets_rejected_after_max_failure() {
    let now = Instant::now();
    let mut server = Fsm::new(
        Ipcp::new(IpcpConfig {
            remote_address: Some(POOL_FIRST),
            ..IpcpConfig::server(SERVER, [Some(DNS1), Some(DNS2)])
        }),
        FsmConfig::default(),
    );
    server.up(now);
    server.open(now);
    // Our own request: ConfReq id=1 <addr 192.0.2.1>.
    assert_eq!(
        server.poll_transmit().unwrap(),
        [0x01, 0x01, 0x00, 0x0a, 0x03, 0x06, 192, 0, 2, 1]
    );
    let mut codes = Vec::new();
    for id in 1..=7u8 {
        // ConfReq <addr 192.0.2.55> <ms-dns1 0.0.0.0>
        let request = [
            0x01, id, 0x00, 0x10, 0x03, 0x06, 192, 0, 2, 55, 0x81, 0x06, 0, 0, 0, 0,
        ];
        server.handle_input(now, &request);
        let reply = next_reply(&mut server).unwrap();
        if id == 1 {
            assert_eq!(
                reply,
                [
                    0x03, 0x01, 0x00, 0x10, 0x03, 0x06, 192, 0, 2, 100, 0x81, 0x06, 198, 51, 100,
                    53
                ]
            );
        }
        if reply[0] == 0x04 {
            assert_eq!(&reply[4..], &request[4..]);
        }
        codes.push(reply[0]);
    }
    assert_eq!(codes, [3, 3, 3, 3, 3, 4, 4]);

    // The peer gives up its address option and asks for nothing: Acked (Max-Failure), but it
    // never agreed to the address we have for it, so IPCP must not come up: it closes at once,
    // with the reason, instead of reporting a remote address the peer refused.
    server.handle_input(now, &[0x01, 8, 0x00, 0x0a, 0x81, 0x06, 0, 0, 0, 0]);
    assert_eq!(next_reply(&mut server).unwrap()[0], 0x04); // ms-dns1 0.0.0.0 Nak'd no more
    server.handle_input(now, &[0x01, 9, 0x00, 0x04]);
    assert_eq!(next_reply(&mut server).unwrap()[0], 0x02);
    server.handle_input(now, &[0x02, 0x01, 0x00, 0x0a, 0x03, 0x06, 192, 0, 2, 1]);
    assert_eq!(server.state(), State::Closing);
    let events: Vec<FsmEvent> = std::iter::from_fn(|| server.poll_event()).collect();
    assert!(!events.contains(&FsmEvent::Up), "{events:?}");
    assert!(server.protocol().negotiated().is_none());
    let terminate = std::iter::from_fn(|| server.poll_transmit())
        .last()
        .unwrap();
    assert_eq!(terminate[0], 0x05);
    assert_eq!(
        &terminate[4..],
        NegotiationFailure::NoPeerAddress.to_string().as_bytes()
    );
    server.handle_input(now, &[0x06, terminate[1], 0x00, 0x04]);
    assert_eq!(
        std::iter::from_fn(|| server.poll_event()).collect::<Vec<_>>(),
        [FsmEvent::Finished {
            reason: FinishReason::NegotiationFailed(NegotiationFailure::NoPeerAddress)
        }]
    );
}

/// The next packet `fsm` sends that is not its own Configure-Request (ours is sent again when the
/// peer's first request arrives before any answer to it).
fn next_reply<P: ControlProtocol>(fsm: &mut Fsm<P>) -> Option<Vec<u8>> {
    std::iter::from_fn(|| fsm.poll_transmit()).find(|p| p[0] != 1)
}

/// A pppd client's first request against our pool server, byte for byte.
#[test]
fn pppd_client_request_golden_exchange() {
    let now = Instant::now();
    let mut server = Fsm::new(
        pool_server(IpcpConfig::server(SERVER, [Some(DNS1), Some(DNS2)])),
        FsmConfig::default(),
    );
    server.up(now);
    server.open(now);
    let _ = server.poll_transmit();
    // rcvd [IPCP ConfReq id=0x1 <addr 0.0.0.0> <ms-dns1 0.0.0.0> <ms-dns3 0.0.0.0>]
    let request = [
        0x01, 0x01, 0x00, 0x16, 0x03, 0x06, 0, 0, 0, 0, 0x81, 0x06, 0, 0, 0, 0, 0x83, 0x06, 0, 0,
        0, 0,
    ];
    server.handle_input(now, &request);
    let mut expected = vec![0x03, 0x01, 0x00, 0x16];
    IpcpOption::emit_list(
        &[
            IpcpOption::IpAddress(POOL_FIRST),
            IpcpOption::PrimaryDns(DNS1),
            IpcpOption::SecondaryDns(DNS2),
        ],
        &mut expected,
    );
    assert_eq!(next_reply(&mut server).unwrap(), expected);
    // The client retries with the suggested values: Ack echoes them.
    let mut retry = expected.clone();
    retry[0] = 0x01;
    retry[1] = 0x02;
    server.handle_input(now, &retry);
    let ack = next_reply(&mut server).unwrap();
    assert_eq!(ack[0], 0x02);
    assert_eq!(&ack[1..], &retry[1..]);
}

fn ipv6cp(local: InterfaceIdSource, seed: u64) -> Ipv6cp {
    Ipv6cp::new(
        Ipv6cpConfig {
            local,
            accept_local: true,
            ..Ipv6cpConfig::default()
        },
        Random::seeded(seed),
    )
}

fn assert_ipv6cp_up(pair: &Pair<Ipv6cp>) -> (InterfaceId, InterfaceId) {
    assert_eq!(pair.states(), (State::Opened, State::Opened));
    let a = *pair.a.protocol().negotiated().unwrap();
    let b = *pair.b.protocol().negotiated().unwrap();
    assert_eq!(a.local_interface_id, b.peer_interface_id);
    assert_eq!(a.peer_interface_id, b.local_interface_id);
    assert_ne!(a.local_interface_id, a.peer_interface_id);
    assert!(!a.local_interface_id.is_zero() && !a.peer_interface_id.is_zero());
    assert_eq!(a.local_link_local(), b.peer_link_local());
    assert_eq!(a.local_link_local().segments()[..4], [0xfe80, 0, 0, 0]);
    (a.local_interface_id, a.peer_interface_id)
}

#[test]
fn ipv6cp_both_random() {
    let mut pair = Pair::new(
        ipv6cp(InterfaceIdSource::Random, 1),
        ipv6cp(InterfaceIdSource::Random, 2),
    );
    pair.run();
    let (a, b) = assert_ipv6cp_up(&pair);
    // Deterministic given the seeds.
    let mut again = Pair::new(
        ipv6cp(InterfaceIdSource::Random, 1),
        ipv6cp(InterfaceIdSource::Random, 2),
    );
    again.run();
    assert_eq!(assert_ipv6cp_up(&again), (a, b));
}

#[test]
fn ipv6cp_collision_is_resolved() {
    let same = InterfaceId::from_u64(0x0000_0000_0000_0001);
    let mut pair = Pair::new(
        ipv6cp(InterfaceIdSource::Fixed(same), 3),
        ipv6cp(InterfaceIdSource::Fixed(same), 4),
    );
    pair.run();
    assert_ipv6cp_up(&pair);
}

#[test]
fn ipv6cp_fixed_ids_are_kept() {
    let a = InterfaceId::from_u64(0x1234_5678_9abc_def0);
    let b = InterfaceId::from_u64(0x0011_2233_4455_6677);
    let mut pair = Pair::new(
        ipv6cp(InterfaceIdSource::Fixed(a), 3),
        ipv6cp(InterfaceIdSource::Fixed(b), 4),
    );
    pair.run();
    assert_eq!(assert_ipv6cp_up(&pair), (a, b));
}

#[test]
fn ipv6cp_zero_id_gets_one_from_peer() {
    let server_side = InterfaceId::from_u64(0x0011_2233_4455_6677);
    let for_client = InterfaceId::from_u64(0x0000_0000_0000_0abc);
    let server = Ipv6cp::new(
        Ipv6cpConfig {
            local: InterfaceIdSource::Fixed(server_side),
            remote: Some(for_client),
            ..Ipv6cpConfig::default()
        },
        Random::seeded(5),
    );
    let mut pair = Pair::new(ipv6cp(InterfaceIdSource::FromPeer, 6), server);
    pair.run();
    assert_eq!(assert_ipv6cp_up(&pair), (for_client, server_side));

    // Without a configured remote the peer draws one at random.
    let mut pair = Pair::new(
        ipv6cp(InterfaceIdSource::FromPeer, 7),
        ipv6cp(InterfaceIdSource::Random, 8),
    );
    pair.run();
    assert_ipv6cp_up(&pair);
}

#[test]
fn ipv6cp_both_zero_cannot_agree() {
    let mut pair = Pair::new(
        ipv6cp(InterfaceIdSource::FromPeer, 9),
        ipv6cp(InterfaceIdSource::FromPeer, 10),
    );
    pair.run();
    assert_ne!(pair.a.state(), State::Opened);
    let reason = finished_reason(&pair.events_a).unwrap();
    assert!(reason.contains("interface identifier"), "{reason}");
}

#[test]
fn sessions_share_an_address_range() {
    let range = AddressRange::new(POOL_FIRST, Ipv4Addr::new(192, 0, 2, 101));
    let server_config = IpcpConfig::server(SERVER, [Some(DNS1), None]);
    let mut first = Pair::new(
        Ipcp::new(IpcpConfig::client()),
        Ipcp::with_address_pool(server_config.clone(), range.clone()),
    );
    first.run();
    let mut second = Pair::new(
        Ipcp::new(IpcpConfig::client()),
        Ipcp::with_address_pool(server_config.clone(), range.clone()),
    );
    second.run();
    assert_eq!(first.a.protocol().negotiated().unwrap().local, POOL_FIRST);
    assert_eq!(
        second.a.protocol().negotiated().unwrap().local,
        Ipv4Addr::new(192, 0, 2, 101)
    );
    assert_eq!(range.in_use(), 2);
    // The first session ends: its address is free for the next one.
    drop(first);
    assert_eq!(range.in_use(), 1);
    let mut third = Pair::new(
        Ipcp::new(IpcpConfig::client()),
        Ipcp::with_address_pool(server_config, range.clone()),
    );
    third.run();
    assert_eq!(third.a.protocol().negotiated().unwrap().local, POOL_FIRST);
    let mut spare = range.clone();
    assert_eq!(spare.allocate(), None);
}

/// 30% loss each way. With RFC 1661's Max-Configure of 10 about one negotiation in a hundred
/// gives up by chance (ten requests in a row without an Ack getting through: measured 43 and 54
/// of 6000 seeds), so this allows 20, as a link configured for a bad line would.
#[test]
fn negotiation_survives_a_lossy_link() {
    let config = FsmConfig {
        max_configure: 20,
        // Lost Naks make the peer repeat its request, and each repeat costs a Nak: RFC 1661's
        // Max-Failure of 5 would turn our Naks into Rejects on some seeds.
        max_failure: 20,
        ..FsmConfig::default()
    };
    for seed in 1..=200 {
        let server = pool_server(IpcpConfig::server(SERVER, [Some(DNS1), Some(DNS2)]));
        let mut pair = Pair::with_config(Ipcp::new(IpcpConfig::client()), server, config.clone());
        pair.run_lossy(seed, 30);
        assert_eq!(pair.states(), (State::Opened, State::Opened), "seed {seed}");
        let client = pair.a.protocol().negotiated().copied().unwrap();
        assert_eq!(
            (client.local, client.dns),
            (POOL_FIRST, [Some(DNS1), Some(DNS2)])
        );

        let mut pair = Pair::with_config(
            ipv6cp(InterfaceIdSource::Random, seed),
            ipv6cp(InterfaceIdSource::FromPeer, seed + 100),
            config.clone(),
        );
        pair.run_lossy(seed, 30);
        assert_ipv6cp_up(&pair);
    }
}

fn any_address() -> impl Strategy<Value = Option<Ipv4Addr>> {
    proptest::option::of(prop_oneof![
        Just(Ipv4Addr::UNSPECIFIED),
        (1u8..4).prop_map(|last| Ipv4Addr::new(192, 0, 2, last)),
    ])
}

prop_compose! {
    fn any_ipcp_config()(
        local_address in any_address(),
        accept_local in any::<bool>(),
        remote_address in any_address(),
        accept_remote in any::<bool>(),
        request_dns in any::<bool>(),
        request_nbns in any::<bool>(),
        dns in any_address(),
        nbns in any_address(),
    ) -> IpcpConfig {
        IpcpConfig {
            local_address,
            accept_local,
            remote_address,
            accept_remote,
            request_dns,
            request_nbns,
            dns_servers: [dns, Some(DNS2)],
            nbns_servers: [nbns, None],
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any two policies: the automata settle without panicking, and when both are Opened they
    /// agree on the addresses.
    #[test]
    fn any_two_ipcp_policies_settle(a in any_ipcp_config(), b in any_ipcp_config(), pool in any::<bool>()) {
        let b = if pool { pool_server(b) } else { Ipcp::new(b) };
        let mut pair = Pair::new(Ipcp::new(a), b);
        pair.run();
        if pair.states() == (State::Opened, State::Opened) {
            let a = pair.a.protocol().negotiated().copied();
            let b = pair.b.protocol().negotiated().copied();
            if let (Some(a), Some(b)) = (a, b) {
                prop_assert_eq!(a.local, b.peer);
                prop_assert!(!a.local.is_unspecified());
            }
        }
    }

    #[test]
    fn any_two_ipv6cp_policies_settle(
        a in 0u8..4, b in 0u8..4, seed in any::<u64>(),
        accept_local in any::<bool>(), remote in proptest::option::of(0u64..3),
    ) {
        let source = |n: u8| match n {
            0 => InterfaceIdSource::Fixed(InterfaceId::from_u64(1)),
            1 => InterfaceIdSource::Fixed(InterfaceId::from_u64(2)),
            2 => InterfaceIdSource::Random,
            _ => InterfaceIdSource::FromPeer,
        };
        let config = |n: u8| Ipv6cpConfig {
            local: source(n),
            accept_local,
            remote: remote.map(InterfaceId::from_u64),
            accept_remote: false,
        };
        let mut pair = Pair::new(
            Ipv6cp::new(config(a), Random::seeded(seed)),
            Ipv6cp::new(config(b), Random::seeded(seed ^ 0x5555)),
        );
        pair.run();
        for side in [&pair.a, &pair.b] {
            if let Some(got) = side.protocol().negotiated() {
                prop_assert_ne!(got.local_interface_id, got.peer_interface_id);
                prop_assert!(!got.local_interface_id.is_zero() && !got.peer_interface_id.is_zero());
            }
        }
        // Without a configured remote identifier (which may be wrong) both sides agree.
        if let (None, Some(a), Some(b)) =
            (remote, pair.a.protocol().negotiated(), pair.b.protocol().negotiated())
        {
            prop_assert_eq!(a.local_interface_id, b.peer_interface_id);
            prop_assert_eq!(a.peer_interface_id, b.local_interface_id);
        }
    }
}
