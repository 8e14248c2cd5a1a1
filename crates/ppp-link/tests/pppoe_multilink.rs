//! Multilink over PPPoE, in one process on one simulated Ethernet segment: the access
//! concentrator joins the sessions of one peer (user and Endpoint Discriminator) into a bundle
//! (bonded lines), keeps it up while members come and go, and gives other peers bundles or
//! sessions of their own; a client with an MRRU runs Multilink over its one session.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppp_auth::SecretsTable;
use ppp_ipcp::IpcpConfig;
use ppp_lcp::{EndpointClass, EndpointDiscriminator};
use ppp_link::auth::{AuthProtocol, ClientCredentials};
use ppp_link::pppoe::{
    PppoeClient, PppoeClientState, PppoeServer, PppoeServerEvent, SessionEnd, UnitId,
};
use ppp_link::{
    CloseReason, Datagram, Framing, LinkConfig, LinkControl, LinkEvent, Multilink, Random,
};
use pppoe_discovery::{AcConfig, Client, ClientConfig, DiscoveryEvent, MacAddr};

const AC_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xac]);
const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const MRRU: u16 = 1614;

/// An IPv4/UDP datagram of `len` bytes with a correct header checksum.
fn datagram(len: usize, from: Ipv4Addr, to: Ipv4Addr, tag: u8) -> Vec<u8> {
    let mut p = vec![tag; len];
    p[..20].copy_from_slice(&[
        0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[12..16].copy_from_slice(&from.octets());
    p[16..20].copy_from_slice(&to.octets());
    let mut sum = 0u32;
    for pair in p[..20].chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p[20..22].copy_from_slice(&5000u16.to_be_bytes());
    p[22..24].copy_from_slice(&9u16.to_be_bytes());
    p[24..26].copy_from_slice(&((len - 20) as u16).to_be_bytes());
    p[26..28].copy_from_slice(&[0, 0]);
    p
}

fn server() -> PppoeServer {
    let mut link = LinkConfig::pppoe();
    link.lcp.require = vec![AuthProtocol::ChapMd5];
    link.lcp.mrru = Some(MRRU);
    link.ipcp = Some(IpcpConfig {
        remote_address: Some(CLIENT_ADDR),
        ..IpcpConfig::server(SERVER_ADDR, [None, None])
    });
    link.auth.secrets = Some(Arc::new(
        SecretsTable::parse_pppd("alice * wonderland\nbob * builder\n").unwrap(),
    ));
    PppoeServer::new(AcConfig::default(), link, AC_MAC, Random::seeded(1))
}

fn client_link(user: &str, endpoint: u8, mrru: Option<u16>) -> LinkConfig {
    let mut config = LinkConfig::pppoe();
    config.lcp.allow = vec![AuthProtocol::ChapMd5];
    config.lcp.mrru = mrru;
    config.lcp.endpoint_discriminator = Some(EndpointDiscriminator {
        class: EndpointClass::Local,
        address: vec![endpoint; 4],
    });
    config.auth.credentials = Some(ClientCredentials::password(user, {
        if user == "alice" {
            "wonderland"
        } else {
            "builder"
        }
    }));
    config
}

/// A client with several lines to the access concentrator (one Ethernet address and one PPPoE
/// session each) and one Multilink bundle over them: what a router with two DSL lines runs.
struct BondedClient {
    lines: Vec<(MacAddr, Client, Option<u16>)>,
    bundle: Multilink<usize>,
    config: Arc<LinkConfig>,
    random: Random,
}

impl BondedClient {
    fn new(lines: usize, user: &str, now: Instant) -> Self {
        let random = Random::seeded(40);
        let mut config = client_link(user, 7, Some(MRRU));
        config.framing = Framing::Sync;
        config.headroom = pppoe_discovery::wire::HEADER_LEN;
        let config = Arc::new(config);
        let mut client = BondedClient {
            lines: Vec::new(),
            bundle: Multilink::new(config.clone(), random.fork()),
            config,
            random,
        };
        for line in 0..lines {
            let mac = MacAddr([0x02, 0, 0, 0, 0x10, line as u8]);
            let mut discovery = Client::new(ClientConfig::default(), mac, client.random.fork());
            discovery.open(now);
            client.lines.push((mac, discovery, None));
        }
        client
    }

    fn owns(&self, mac: MacAddr) -> Option<usize> {
        self.lines.iter().position(|(m, _, _)| *m == mac)
    }

    fn handle_input(&mut self, now: Instant, line: usize, frame: &[u8]) {
        if frame.get(12..14) == Some(&[0x88, 0x63]) {
            self.lines[line].1.handle_input(now, frame);
            while let Some(event) = self.lines[line].1.poll_event() {
                if let DiscoveryEvent::SessionUp { session_id, .. } = event {
                    self.lines[line].2 = Some(session_id);
                    let control = LinkControl::new(self.config.clone(), self.random.fork());
                    self.bundle.add_member(now, line, control);
                    self.bundle.open(now, &line);
                    self.bundle.up(now, &line);
                }
            }
        } else if let Ok(s) = pppoe_discovery::decapsulate(frame)
            && Some(s.session_id) == self.lines[line].2
        {
            self.bundle.handle_frame(now, &line, s.protocol, s.payload);
        }
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        for (_, discovery, _) in &mut self.lines {
            if let Some(frame) = discovery.poll_transmit() {
                return Some(frame);
            }
        }
        let (line, mut frame) = self.bundle.poll_transmit()?;
        let (mac, _, session) = &self.lines[line];
        pppoe_discovery::write_session_header(&mut frame, AC_MAC, *mac, session.unwrap()).unwrap();
        Some(frame)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.lines
            .iter()
            .filter_map(|(_, d, _)| d.poll_timeout())
            .chain(self.bundle.poll_timeout())
            .min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        for (_, discovery, _) in &mut self.lines {
            if discovery.poll_timeout().is_some_and(|t| t <= now) {
                discovery.handle_timeout(now);
            }
        }
        if self.bundle.poll_timeout().is_some_and(|t| t <= now) {
            self.bundle.handle_timeout(now);
        }
    }
}

/// One Ethernet segment without delay: the AC, a bonded client and plain clients, stepped on
/// virtual time.
struct Segment {
    now: Instant,
    ac: PppoeServer,
    bonded: Option<BondedClient>,
    plain: Vec<PppoeClient>,
    ac_events: Vec<PppoeServerEvent>,
    ac_datagrams: Vec<(UnitId, Datagram)>,
}

impl Segment {
    fn new(now: Instant) -> Self {
        Segment {
            now,
            ac: server(),
            bonded: None,
            plain: Vec::new(),
            ac_events: Vec::new(),
            ac_datagrams: Vec::new(),
        }
    }

    fn flush(&mut self) {
        let now = self.now;
        for _ in 0..10_000 {
            let mut moved = false;
            if let Some(bonded) = self.bonded.as_mut() {
                while let Some(frame) = bonded.poll_transmit() {
                    self.ac.handle_input(now, &frame);
                    moved = true;
                }
                while bonded.bundle.poll_event().is_some() {}
            }
            for client in &mut self.plain {
                while let Some(frame) = client.poll_transmit() {
                    self.ac.handle_input(now, &frame);
                    moved = true;
                }
                while client.poll_event().is_some() {}
            }
            while let Some(frame) = self.ac.poll_transmit() {
                moved = true;
                let dst = MacAddr(frame[..6].try_into().unwrap());
                let broadcast = dst == MacAddr([0xff; 6]);
                if let Some(bonded) = self.bonded.as_mut() {
                    for line in 0..bonded.lines.len() {
                        if broadcast || bonded.owns(dst) == Some(line) {
                            bonded.handle_input(now, line, &frame);
                        }
                    }
                }
                for client in &mut self.plain {
                    if broadcast || client.mac() == dst {
                        client.handle_input(now, &frame);
                    }
                }
            }
            while let Some(event) = self.ac.poll_event() {
                moved = true;
                self.ac_events.push(event);
            }
            while let Some(datagram) = self.ac.poll_datagram() {
                self.ac_datagrams.push(datagram);
            }
            if !moved {
                return;
            }
        }
        panic!("the segment never went quiet");
    }

    fn run_for(&mut self, time: Duration) {
        let end = self.now + time;
        loop {
            self.flush();
            let next = self
                .bonded
                .iter()
                .filter_map(BondedClient::poll_timeout)
                .chain(self.plain.iter().filter_map(PppoeClient::poll_timeout))
                .chain(self.ac.poll_timeout())
                .min();
            match next {
                Some(at) if at <= end => {
                    self.now = self.now.max(at);
                    let now = self.now;
                    if let Some(bonded) = self.bonded.as_mut() {
                        bonded.handle_timeout(now);
                    }
                    for client in &mut self.plain {
                        if client.poll_timeout().is_some_and(|t| t <= now) {
                            client.handle_timeout(now);
                        }
                    }
                    if self.ac.poll_timeout().is_some_and(|t| t <= now) {
                        self.ac.handle_timeout(now);
                    }
                }
                _ => {
                    self.now = end;
                    self.flush();
                    return;
                }
            }
        }
    }

    fn joined(&self) -> BTreeMap<UnitId, usize> {
        let mut last = BTreeMap::new();
        for event in &self.ac_events {
            if let PppoeServerEvent::Joined { unit, members, .. }
            | PppoeServerEvent::Left { unit, members, .. } = event
            {
                last.insert(*unit, *members);
            }
        }
        last
    }
}

#[test]
fn the_ac_bonds_the_sessions_of_one_peer_into_one_bundle() {
    let start = Instant::now();
    let mut segment = Segment::new(start);
    segment.bonded = Some(BondedClient::new(2, "alice", start));
    segment.run_for(Duration::from_secs(5));

    assert_eq!(segment.ac.session_count(), 2);
    let units: Vec<UnitId> = segment.ac.units().map(|(id, _)| id).collect();
    assert_eq!(
        units,
        vec![UnitId::Bundle(1)],
        "one bundle for both sessions"
    );
    let bundle = segment.ac.unit(UnitId::Bundle(1)).unwrap();
    assert_eq!(bundle.joined(), 2);
    assert!(bundle.is_multilink());
    assert_eq!(bundle.mtu(), Some(MRRU));
    assert_eq!(segment.joined().get(&UnitId::Bundle(1)), Some(&2));
    for (session_id, _) in segment.ac.sessions() {
        assert_eq!(segment.ac.session_unit(session_id), Some(UnitId::Bundle(1)));
        assert_eq!(
            segment.ac.session_link(session_id).unwrap().peer_name(),
            Some("alice")
        );
    }
    let ip_ups: Vec<&PppoeServerEvent> = segment
        .ac_events
        .iter()
        .filter(|e| {
            matches!(
                e,
                PppoeServerEvent::Network {
                    event: LinkEvent::IpUp { .. },
                    ..
                }
            )
        })
        .collect();
    assert_eq!(ip_ups.len(), 1, "IPCP runs once, over the bundle");
    let bonded = segment.bonded.as_ref().unwrap();
    assert_eq!(bonded.bundle.joined(), 2);
    assert_eq!(
        bonded.bundle.network().ipcp_negotiated().map(|n| n.local),
        Some(CLIENT_ADDR)
    );

    // A packet of the MRRU's size crosses in fragments over both sessions, each way.
    let now = segment.now;
    let down = datagram(1600, SERVER_ADDR, CLIENT_ADDR, 0xd0);
    segment.ac.send_ipv4(now, UnitId::Bundle(1), &down).unwrap();
    segment.flush();
    let bonded = segment.bonded.as_mut().unwrap();
    assert_eq!(bonded.bundle.poll_datagram(), Some(Datagram::Ipv4(down)));
    let sent = bonded
        .bundle
        .mp()
        .unwrap()
        .stats()
        .received
        .fragments_received;
    let up = datagram(1600, CLIENT_ADDR, SERVER_ADDR, 0x0b);
    bonded.bundle.send_ipv4(now, &up).unwrap();
    segment.flush();
    assert_eq!(
        segment.ac_datagrams.pop(),
        Some((UnitId::Bundle(1), Datagram::Ipv4(up)))
    );
    assert!(sent >= 2);

    // One line goes: the bundle carries on over the other.
    let first = segment.ac.sessions().map(|(id, _)| id).min().unwrap();
    segment
        .ac
        .close_session(now, first, CloseReason::AdminReset);
    segment.run_for(Duration::from_secs(3));
    assert_eq!(segment.ac.session_count(), 1);
    assert_eq!(segment.joined().get(&UnitId::Bundle(1)), Some(&1));
    let now = segment.now;
    let again = datagram(1500, SERVER_ADDR, CLIENT_ADDR, 0xa9);
    segment
        .ac
        .send_ipv4(now, UnitId::Bundle(1), &again)
        .unwrap();
    segment.flush();
    let bonded = segment.bonded.as_mut().unwrap();
    assert_eq!(bonded.bundle.poll_datagram(), Some(Datagram::Ipv4(again)));
    assert!(segment.ac_events.iter().any(|e| matches!(
        e,
        PppoeServerEvent::SessionDown {
            session_id,
            reason: SessionEnd::Link(_),
            ..
        } if *session_id == first
    )));

    // The last line goes: the bundle with it.
    let last = segment.ac.sessions().map(|(id, _)| id).next().unwrap();
    segment.ac.close_session(now, last, CloseReason::AdminReset);
    segment.run_for(Duration::from_secs(3));
    assert_eq!(segment.ac.session_count(), 0);
    assert_eq!(segment.ac.units().count(), 0);
    assert!(segment.ac_events.contains(&PppoeServerEvent::UnitDown {
        unit: UnitId::Bundle(1)
    }));
    assert!(segment.ac_events.contains(&PppoeServerEvent::Network {
        unit: UnitId::Bundle(1),
        event: LinkEvent::IpDown
    }));
}

#[test]
fn other_peers_get_bundles_or_sessions_of_their_own() {
    let start = Instant::now();
    let mut segment = Segment::new(start);
    segment.bonded = Some(BondedClient::new(2, "alice", start));
    // Bob with Multilink over one session; Bob again without Multilink.
    for (n, mrru) in [(1u8, Some(MRRU)), (2, None)] {
        let mut client = PppoeClient::new(
            ClientConfig::default(),
            client_link("bob", 9, mrru),
            MacAddr([0x02, 0, 0, 0, 0x20, n]),
            Random::seeded(50 + u64::from(n)),
        );
        client.open(start);
        segment.plain.push(client);
    }
    segment.run_for(Duration::from_secs(5));
    assert_eq!(segment.ac.session_count(), 4);
    let mut units: Vec<(UnitId, usize)> = segment
        .ac
        .units()
        .map(|(id, unit)| (id, unit.joined()))
        .collect();
    units.sort();
    let bob_plain = segment.plain[1].session().unwrap().session_id;
    assert_eq!(units.len(), 3, "{units:?}");
    assert!(units.contains(&(UnitId::Link(bob_plain), 1)));
    assert_eq!(
        units
            .iter()
            .filter(|(id, _)| matches!(id, UnitId::Bundle(_)))
            .map(|(_, members)| *members)
            .collect::<Vec<_>>(),
        vec![2, 1],
        "alice's two sessions in one bundle, bob's Multilink session in another"
    );
    for client in &segment.plain {
        assert_eq!(client.state(), &PppoeClientState::Connected);
    }
    assert!(segment.plain[0].link().unwrap().is_multilink());
    assert!(!segment.plain[1].link().unwrap().is_multilink());
}

/// pppd `mrru 1614` over PPPoE: a 1500-byte packet crosses a 1492-byte session both ways, in
/// fragments, with Don't Fragment set.
#[test]
fn multilink_over_one_session_carries_1500_byte_packets() {
    let start = Instant::now();
    let mut segment = Segment::new(start);
    let mut client = PppoeClient::new(
        ClientConfig::default(),
        client_link("bob", 3, Some(MRRU)),
        MacAddr([0x02, 0, 0, 0, 0x30, 1]),
        Random::seeded(60),
    );
    client.open(start);
    segment.plain.push(client);
    segment.run_for(Duration::from_secs(5));
    let client = &segment.plain[0];
    assert_eq!(client.state(), &PppoeClientState::Connected);
    assert_eq!(client.link().unwrap().lcp_negotiated().unwrap().mtu, 1492);
    let unit = segment
        .ac
        .session_unit(client.session().unwrap().session_id)
        .unwrap();
    assert!(matches!(unit, UnitId::Bundle(_)));
    assert!(segment.ac.mtu(unit).unwrap() >= 1500);

    let now = segment.now;
    let mut up = datagram(1500, CLIENT_ADDR, SERVER_ADDR, 0x11);
    up[6] = 0x40; // Don't Fragment (the checksum does not matter to the link)
    segment.plain[0].send_ipv4(now, &up).unwrap();
    segment.flush();
    assert_eq!(segment.ac_datagrams.pop(), Some((unit, Datagram::Ipv4(up))));
    let down = datagram(1500, SERVER_ADDR, CLIENT_ADDR, 0x22);
    segment.ac.send_ipv4(now, unit, &down).unwrap();
    segment.flush();
    assert_eq!(segment.plain[0].poll_datagram(), Some(Datagram::Ipv4(down)));
}
