//! Multilink (RFC 1990) through the whole stack, on virtual time: two `Multilink` bundles whose
//! member links each run their own framing, LCP (with MRRU and Endpoint Discriminator) and
//! CHAP, over `ppp-sim` channels with different delays, loss, duplication and reordering; and
//! MP over a single link (`Link` with an MRRU) through a PPPoE-sized MTU.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppp_auth::SecretsTable;
use ppp_frame::Protocol;
use ppp_ipcp::IpcpConfig;
use ppp_lcp::{EndpointClass, EndpointDiscriminator};
use ppp_link::auth::{AuthProtocol, ClientCredentials};
use ppp_link::{
    Datagram, DownReason, Link, LinkConfig, LinkControl, LinkEvent, Multilink, MultilinkEvent,
    MultilinkRefusal, Random,
};
use ppp_sim::{Channel, Impairments, SimRng};

const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const MRRU: u16 = 4000;

/// An IPv4/UDP datagram of `len` bytes (correct header checksum) whose identification field
/// and payload carry `n`.
fn datagram(n: u32, len: usize) -> Vec<u8> {
    let len = len.max(32);
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[4..6].copy_from_slice(&(n as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&CLIENT_ADDR.octets());
    p[16..20].copy_from_slice(&SERVER_ADDR.octets());
    let mut sum = 0u32;
    for pair in p[..20].chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    // UDP 5000 → 9, checksum 0 (none), the number first in the payload.
    p[20..22].copy_from_slice(&5000u16.to_be_bytes());
    p[22..24].copy_from_slice(&9u16.to_be_bytes());
    p[24..26].copy_from_slice(&((len - 20) as u16).to_be_bytes());
    for (i, byte) in p[28..].iter_mut().enumerate() {
        *byte = (i as u32).wrapping_add(n) as u8;
    }
    if len >= 32 {
        p[28..32].copy_from_slice(&n.to_be_bytes());
    }
    p
}

/// The number a datagram carries.
fn number(packet: &[u8]) -> u32 {
    u32::from_be_bytes(packet[28..32].try_into().unwrap())
}

fn client_config(name: &str, endpoint: u8) -> LinkConfig {
    let mut config = LinkConfig::default();
    config.lcp.allow = vec![AuthProtocol::ChapMd5];
    config.lcp.mrru = Some(MRRU);
    config.lcp.endpoint_discriminator = Some(EndpointDiscriminator {
        class: EndpointClass::Local,
        address: vec![0x5e, 0xed, endpoint],
    });
    config.auth.credentials = Some(ClientCredentials::password(name, "correct horse"));
    config
}

fn server_config() -> LinkConfig {
    let mut config = LinkConfig {
        ipcp: Some(IpcpConfig {
            remote_address: Some(CLIENT_ADDR),
            ..IpcpConfig::server(SERVER_ADDR, [None, None])
        }),
        ..LinkConfig::default()
    };
    config.lcp.require = vec![AuthProtocol::ChapMd5];
    config.lcp.mrru = Some(MRRU);
    config.auth.secrets = Some(Arc::new(
        SecretsTable::parse_pppd("alice * \"correct horse\"\nmallory * \"correct horse\"\n")
            .unwrap(),
    ));
    config
}

/// Two bundles joined by simulated lines, one channel per direction per line.
struct Net {
    now: Instant,
    client: Multilink<usize>,
    server: Multilink<usize>,
    lines: Vec<Option<(Channel, Channel)>>,
    client_events: Vec<MultilinkEvent<usize>>,
    server_events: Vec<MultilinkEvent<usize>>,
    received: Vec<Vec<u8>>,
    random: Random,
}

impl Net {
    fn new(lines: &[Impairments], seed: u64) -> Self {
        Self::with(lines, seed, |_| client_config("alice", 1))
    }

    fn with(lines: &[Impairments], seed: u64, client: impl Fn(usize) -> LinkConfig) -> Self {
        let now = Instant::now();
        let random = Random::seeded(seed);
        let server = Arc::new(server_config());
        let mut net = Net {
            now,
            client: Multilink::new(Arc::new(client(0)), random.fork()),
            server: Multilink::new(server, random.fork()),
            lines: Vec::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
            received: Vec::new(),
            random,
        };
        for (line, impairments) in lines.iter().enumerate() {
            net.add_line(impairments.clone(), client(line), seed);
        }
        net
    }

    /// A new line: both ends get a member link, opened and up.
    fn add_line(&mut self, impairments: Impairments, client: LinkConfig, seed: u64) {
        let line = self.lines.len();
        let seed = seed.wrapping_mul(31).wrapping_add(line as u64);
        self.lines.push(Some((
            Channel::new(impairments.clone(), seed),
            Channel::new(impairments, seed ^ 0xffff),
        )));
        let server = Arc::new(self.server.config().clone());
        let now = self.now;
        self.client.add_member(
            now,
            line,
            LinkControl::new(Arc::new(client), self.random.fork()),
        );
        self.server
            .add_member(now, line, LinkControl::new(server, self.random.fork()));
        for bundle in [&mut self.client, &mut self.server] {
            bundle.open(now, &line);
            bundle.up(now, &line);
        }
        self.pump();
    }

    /// The line dies: both ends' lower layers go down, what is in flight is lost.
    fn cut(&mut self, line: usize) {
        self.lines[line] = None;
        let now = self.now;
        self.client.down(now, &line);
        self.server.down(now, &line);
        self.pump();
    }

    fn pump(&mut self) {
        let now = self.now;
        loop {
            let mut moved = false;
            while let Some((line, bytes)) = self.client.poll_transmit() {
                moved = true;
                if let Some((up, _)) = self.lines[line].as_mut() {
                    up.send(now, bytes);
                }
            }
            while let Some((line, bytes)) = self.server.poll_transmit() {
                moved = true;
                if let Some((_, down)) = self.lines[line].as_mut() {
                    down.send(now, bytes);
                }
            }
            while let Some(event) = self.client.poll_event() {
                moved = true;
                self.client_events.push(event);
            }
            while let Some(event) = self.server.poll_event() {
                moved = true;
                self.server_events.push(event);
            }
            while let Some(datagram) = self.server.poll_datagram() {
                if let Datagram::Ipv4(packet) = datagram {
                    self.received.push(packet);
                }
            }
            if !moved {
                break;
            }
        }
    }

    /// Advances to the next delivery or deadline; `false` when nothing is left to happen.
    fn step(&mut self) -> bool {
        self.pump();
        let next = self
            .lines
            .iter()
            .flatten()
            .flat_map(|(up, down)| [up.next_delivery(), down.next_delivery()])
            .chain([self.client.poll_timeout(), self.server.poll_timeout()])
            .flatten()
            .min();
        let Some(next) = next else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.now;
        for line in 0..self.lines.len() {
            while let Some(bytes) = self.lines[line]
                .as_mut()
                .and_then(|(up, _)| up.poll_deliver(now))
            {
                self.server.handle_input(now, &line, &bytes);
            }
            while let Some(bytes) = self.lines[line]
                .as_mut()
                .and_then(|(_, down)| down.poll_deliver(now))
            {
                self.client.handle_input(now, &line, &bytes);
            }
        }
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
        }
        if self.server.poll_timeout().is_some_and(|t| t <= now) {
            self.server.handle_timeout(now);
        }
        self.pump();
        true
    }

    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Net) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            if !self.step() {
                return done(self);
            }
        }
        done(self)
    }

    fn run_for(&mut self, time: Duration) {
        let end = self.now + time;
        self.run_until(time, |net| net.now >= end);
    }

    fn ip_up(&self) -> bool {
        self.client.network().ipcp_negotiated().is_some()
            && self.server.network().ipcp_negotiated().is_some()
    }

    /// Sends `count` datagrams of random sizes (up to the MRRU), `interval` apart.
    fn send(&mut self, count: u32, first: u32, interval: Duration, rng: &mut SimRng) {
        for n in first..first + count {
            let len = 32 + rng.below(u64::from(MRRU) - 32) as usize;
            let now = self.now;
            self.client
                .send_ipv4(now, &datagram(n, len))
                .expect("the bundle takes it");
            let until = self.now + interval;
            self.run_until(interval, |net| net.now >= until);
        }
    }
}

/// Delivered in the order sent, none twice, each as sent.
fn assert_in_order(received: &[Vec<u8>]) {
    let mut last = None;
    for packet in received {
        let n = number(packet);
        assert!(last.is_none_or(|l| n > l), "{n} after {last:?}");
        assert_eq!(packet, &datagram(n, packet.len()), "packet {n} damaged");
        last = Some(n);
    }
}

#[test]
fn two_links_bring_up_one_bundle() {
    let mut net = Net::new(
        &[
            Impairments::delay(Duration::from_millis(5)),
            Impairments::delay(Duration::from_millis(30)),
        ],
        1,
    );
    assert!(net.run_until(Duration::from_secs(10), |net| net.ip_up()
        && net.client.joined() == 2
        && net.server.joined() == 2));
    assert_eq!(net.client.joined(), 2);
    assert_eq!(net.server.joined(), 2);
    assert!(net.client.is_multilink() && net.server.is_multilink());
    assert_eq!(net.client.mtu(), Some(MRRU));
    let key = net.server.bundle_key().expect("the bundle's peer");
    assert_eq!(key.peer_name(), Some(&b"alice"[..]));
    assert_eq!(
        key.endpoint().map(|e| e.address().to_vec()),
        Some(vec![0x5e, 0xed, 1])
    );
    // IPCP ran once over the bundle, not once per link.
    let ip_ups = net
        .server_events
        .iter()
        .filter(|e| matches!(e, MultilinkEvent::Network(LinkEvent::IpUp { .. })))
        .count();
    assert_eq!(ip_ups, 1);
}

/// Different delays, loss, duplication and reordering on each line; many seeds. Every packet
/// arrives once and in order, or it is lost: never more packets missing than frames the lines
/// lost, damaged or held back past later ones (a PPP link keeps its order; MP's loss detection
/// takes a fragment overtaken on its own link for lost, RFC 1990 §4.1).
#[test]
fn impaired_links_deliver_in_order_or_count_losses() {
    let topologies: [&[Impairments]; 3] = [
        &[
            Impairments::delay(Duration::from_millis(2)),
            Impairments::delay(Duration::from_millis(40)),
        ],
        &[
            Impairments::lossy(0.02, Duration::from_millis(5)),
            Impairments::delay(Duration::from_millis(15)),
            Impairments {
                duplicate: 0.05,
                reorder: 0.05,
                reorder_by: Duration::from_millis(20),
                ..Impairments::delay(Duration::from_millis(25))
            },
        ],
        &[
            Impairments::chaos(0.02, Duration::from_millis(10)),
            Impairments::chaos(0.02, Duration::from_millis(3)),
        ],
    ];
    for (t, topology) in topologies.iter().enumerate() {
        for seed in 0..12 {
            let seed = seed * 10 + t as u64;
            // Negotiation on clean lines of the same delays, then the impairments.
            let clean: Vec<Impairments> = topology
                .iter()
                .map(|i| Impairments::delay(i.delay))
                .collect();
            let mut net = Net::new(&clean, seed);
            assert!(
                net.run_until(Duration::from_secs(10), Net::ip_up),
                "seed {seed}"
            );
            for (line, impairments) in topology.iter().enumerate() {
                if let Some((up, down)) = net.lines[line].as_mut() {
                    up.set_impairments(impairments.clone());
                    down.set_impairments(impairments.clone());
                }
            }
            let mut rng = SimRng::new(seed);
            net.send(150, 0, Duration::from_millis(2), &mut rng);
            net.run_for(Duration::from_secs(2));
            assert_in_order(&net.received);
            let lost_frames: u64 = net
                .lines
                .iter()
                .flatten()
                .map(|(up, _)| up.stats().lost + up.stats().corrupted + up.stats().reordered)
                .sum();
            let missing = 150 - net.received.len() as u64;
            assert!(
                missing <= lost_frames,
                "topology {t} seed {seed}: {missing} packets missing, {lost_frames} frames lost"
            );
            if lost_frames == 0 {
                assert_eq!(missing, 0, "topology {t} seed {seed}");
            }
            let stats = net.server.mp().expect("Multilink").stats();
            assert!(
                net.server.mp().unwrap().buffered_bytes()
                    <= net.server.mp().unwrap().memory_bound()
            );
            let _ = stats;
        }
    }
}

#[test]
fn a_link_dying_mid_transfer_leaves_the_bundle_up() {
    let mut net = Net::new(
        &[
            Impairments::delay(Duration::from_millis(5)),
            Impairments::delay(Duration::from_millis(20)),
            Impairments::delay(Duration::from_millis(10)),
        ],
        3,
    );
    assert!(net.run_until(Duration::from_secs(10), |net| net.ip_up()
        && net.client.joined() == 3
        && net.server.joined() == 3));
    let mut rng = SimRng::new(3);
    net.send(50, 0, Duration::from_millis(1), &mut rng);
    net.cut(1);
    net.send(50, 50, Duration::from_millis(1), &mut rng);
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.server.joined(), 2);
    assert_eq!(net.client.joined(), 2);
    assert!(net.ip_up(), "the bundle carries on");
    assert_in_order(&net.received);
    // What was in flight on the dead line is lost; everything sent after it arrives.
    let after: Vec<u32> = net
        .received
        .iter()
        .map(|p| number(p))
        .filter(|&n| n >= 50)
        .collect();
    assert_eq!(after, (50..100).collect::<Vec<_>>());
    assert!(net.server_events.iter().any(|e| matches!(
        e,
        MultilinkEvent::Left {
            member: 1,
            members: 2
        }
    )));

    // A new line joins the running bundle.
    net.add_line(
        Impairments::delay(Duration::from_millis(7)),
        client_config("alice", 1),
        3,
    );
    assert!(net.run_until(Duration::from_secs(10), |n| n.server.joined() == 3));
    let before = net.received.len();
    net.send(30, 100, Duration::from_millis(1), &mut rng);
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.received.len(), before + 30);

    // The last links die: the bundle goes down with the last one.
    net.cut(0);
    net.cut(2);
    assert!(net.ip_up(), "one link left");
    net.cut(3);
    assert!(!net.ip_up());
    assert!(net.server_events.contains(&MultilinkEvent::BundleDown));
    assert!(
        net.server_events
            .contains(&MultilinkEvent::Network(LinkEvent::IpDown))
    );
}

#[test]
fn a_link_of_another_peer_is_refused() {
    let mut net = Net::with(
        &[
            Impairments::delay(Duration::from_millis(5)),
            Impairments::delay(Duration::from_millis(9)),
        ],
        4,
        |line| {
            if line == 0 {
                client_config("alice", 1)
            } else {
                // Same user, another endpoint: another bundle (RFC 1990 §5.1.3).
                client_config("alice", 2)
            }
        },
    );
    net.run_for(Duration::from_secs(5));
    assert_eq!(net.server.joined(), 1);
    let refused = net.server_events.iter().any(|e| {
        matches!(
            e,
            MultilinkEvent::Member {
                member: 1,
                event: LinkEvent::LinkDown {
                    reason: DownReason::Multilink(MultilinkRefusal::DifferentPeer)
                }
            }
        )
    });
    assert!(refused, "{:#?}", net.server_events);
}

#[test]
fn short_sequence_numbers_wrap_around() {
    let mut net = Net::with(
        &[
            Impairments::delay(Duration::from_millis(1)),
            Impairments::delay(Duration::from_millis(2)),
        ],
        5,
        |_| {
            let mut config = client_config("alice", 1);
            config.lcp.ssnhf = true;
            config
        },
    );
    assert!(net.run_until(Duration::from_secs(10), Net::ip_up));
    // The client asked for short sequence numbers: the server sends them; check both ways by
    // sending from the server (12-bit numbers wrap after 4096 fragments).
    let mtu = net.server.mtu().unwrap();
    assert_eq!(mtu, MRRU);
    let before = net.client.mp().unwrap().stats().received.packets_delivered;
    let mut got = 0;
    for n in 0..5000u32 {
        let now = net.now;
        let packet = datagram(n, 60);
        net.server.send_ipv4(now, &packet).unwrap();
        net.pump();
        net.step();
        while let Some(Datagram::Ipv4(p)) = net.client.poll_datagram() {
            assert_eq!(number(&p), got);
            got += 1;
        }
    }
    net.run_for(Duration::from_millis(100));
    while let Some(Datagram::Ipv4(p)) = net.client.poll_datagram() {
        assert_eq!(number(&p), got);
        got += 1;
    }
    assert_eq!(got, 5000);
    let stats = net.client.mp().unwrap().stats();
    assert_eq!(stats.received.packets_delivered - before, 5000, "{stats:?}");
}

/// pppd `mrru`: MP over one link lets a 1500-byte packet cross a PPPoE session whose MTU is
/// 1492, in two fragments.
#[test]
fn multilink_over_a_single_pppoe_sized_link() {
    let now = Instant::now();
    let mut client_config = LinkConfig::pppoe();
    client_config.lcp.allow.clear();
    client_config.lcp.mrru = Some(1614);
    let mut server_config = client_config.clone();
    server_config.ipcp = Some(IpcpConfig {
        remote_address: Some(CLIENT_ADDR),
        ..IpcpConfig::server(SERVER_ADDR, [None, None])
    });
    let mut client = Link::new(client_config, Random::seeded(6));
    let mut server = Link::new(server_config, Random::seeded(7));
    let mut longest = 0;
    let exchange = |client: &mut Link, server: &mut Link, longest: &mut usize| loop {
        let mut moved = false;
        while let Some(frame) = client.poll_transmit() {
            *longest = (*longest).max(frame.len());
            server.handle_input(now, &frame);
            moved = true;
        }
        while let Some(frame) = server.poll_transmit() {
            client.handle_input(now, &frame);
            moved = true;
        }
        while client.poll_event().is_some() | server.poll_event().is_some() {}
        if !moved {
            break;
        }
    };
    for link in [&mut client, &mut server] {
        link.open(now);
        link.up(now);
    }
    exchange(&mut client, &mut server, &mut longest);
    assert!(client.ipcp_negotiated().is_some());
    assert!(client.is_multilink());
    assert_eq!(client.lcp_negotiated().unwrap().mtu, 1492);
    assert_eq!(client.mtu(), Some(1614));

    let packet = datagram(1, 1500);
    longest = 0;
    let before = client.mp().unwrap().stats().sent.fragments_sent;
    client.send_ipv4(now, &packet).unwrap();
    exchange(&mut client, &mut server, &mut longest);
    assert_eq!(server.poll_datagram(), Some(Datagram::Ipv4(packet)));
    assert!(longest <= 1492, "a frame of {longest} bytes");
    assert_eq!(client.mp().unwrap().stats().sent.fragments_sent - before, 2);
}

/// A peer that sends MP frames on a link that did not negotiate Multilink gets an LCP
/// Protocol-Reject (RFC 1661 §5.7).
#[test]
fn multilink_frames_are_rejected_when_not_negotiated() {
    let now = Instant::now();
    let mut config = LinkConfig::pppoe();
    config.lcp.allow.clear();
    let mut server_config = config.clone();
    server_config.ipcp = Some(IpcpConfig {
        remote_address: Some(CLIENT_ADDR),
        ..IpcpConfig::server(SERVER_ADDR, [None, None])
    });
    let mut client = Link::new(config, Random::seeded(8));
    let mut server = Link::new(server_config, Random::seeded(9));
    for link in [&mut client, &mut server] {
        link.open(now);
        link.up(now);
    }
    loop {
        let mut moved = false;
        while let Some(frame) = client.poll_transmit() {
            server.handle_input(now, &frame);
            moved = true;
        }
        while let Some(frame) = server.poll_transmit() {
            client.handle_input(now, &frame);
            moved = true;
        }
        if !moved {
            break;
        }
    }
    assert!(server.ipcp_negotiated().is_some());
    assert!(!server.is_multilink());
    // An MP fragment (long header, B and E, sequence 0) carrying an IPv4 packet.
    let mut frame = Vec::new();
    let mut information = vec![0xC0, 0, 0, 0, 0x00, 0x21];
    information.extend_from_slice(&datagram(1, 40));
    ppp_frame::sync::encode(Protocol::Mp, &information, false, &mut frame);
    server.handle_input(now, &frame);
    let reply = server.poll_transmit().expect("a Protocol-Reject");
    let parsed = ppp_frame::sync::decode(&reply).unwrap();
    assert_eq!(parsed.protocol, Protocol::Lcp);
    assert_eq!(parsed.payload[0], 8, "LCP Protocol-Reject");
    assert_eq!(&parsed.payload[4..6], &[0x00, 0x3D]);
    assert_eq!(server.stats().protocol_rejects_sent, 1);
    assert_eq!(server.poll_datagram(), None);
}

/// The capture of a whole bundle (LCP with the Multilink options on each line, CHAP, IPCP in
/// MP fragments, fragmented datagrams) as Wireshark sees it: nothing malformed.
#[test]
fn tshark_dissects_a_bundle_capture() {
    use ppp_frame::pcap::{Direction, LinkType, PcapWriter};
    if std::process::Command::new("tshark")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipped: tshark is not installed (apt-get install tshark)");
        return;
    }
    let mut net = Net::new(
        &[
            Impairments::delay(Duration::from_millis(3)),
            Impairments::delay(Duration::from_millis(8)),
        ],
        12,
    );
    net.client.enable_capture();
    assert!(net.run_until(Duration::from_secs(10), |net| net.ip_up()
        && net.client.joined() == 2));
    let mut rng = SimRng::new(12);
    net.send(10, 0, Duration::from_millis(1), &mut rng);
    net.run_for(Duration::from_millis(200));
    assert_eq!(net.received.len(), 10);

    let mut pcap = PcapWriter::new(Vec::new(), LinkType::PppWithDirection).unwrap();
    let start = net.now - Duration::from_secs(60);
    let mut count = 0;
    while let Some((_line, packet)) = net.client.poll_capture() {
        let at = Duration::from_secs(1_700_000_000) + packet.at.saturating_duration_since(start);
        let direction = if packet.sent {
            Direction::Sent
        } else {
            Direction::Received
        };
        pcap.write_ppp(at, direction, packet.protocol, &packet.payload)
            .unwrap();
        count += 1;
    }
    assert!(count > 20);
    let path = std::env::temp_dir().join(format!("ppp-link-multilink-{}.pcap", std::process::id()));
    std::fs::write(&path, pcap.into_inner()).unwrap();
    let output = std::process::Command::new("tshark")
        .arg("-r")
        .arg(&path)
        .arg("-V")
        .output()
        .expect("tshark runs");
    let _ = std::fs::remove_file(&path);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains("Malformed"), "{text}");
    assert!(text.contains("Multilink MRRU"), "{text}");
    assert!(text.contains("Multilink Endpoint Discriminator"), "{text}");
    assert!(text.contains("PPP Multilink Protocol"), "{text}");
}
