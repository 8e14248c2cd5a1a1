//! Each target's seeds, in its own input format.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ppp_auth::AuthEvent;
use ppp_ccp::{CompressionMethod, Compressor};
use ppp_frame::{AsyncEncoder, EncoderConfig, FcsKind, Protocol};
use ppp_mp::{MpHeader, SequenceFormat};
use ppp_radius::attribute::{VENDOR_MICROSOFT, VENDOR_MIKROTIK, microsoft, mikrotik};
use ppp_radius::crypto::{encrypt_salted, hide_password, sign_request, sign_response};
use ppp_radius::{AccessRequest, AccountingRecord, Attribute, AttributeType, Code, Packet, Secret};
use ppp_tokio::icmp;
use ppp_tokio::offload::{GsoType, VirtioNetHdr};
use pppoe_discovery::ppp_core::{Machine, Random};
use pppoe_discovery::{
    AcEvent, Client, ClientConfig, Code as PppoeCode, DiscoveryRepr, MacAddr, TagType,
};

use crate::sessions::{self, CLIENT_ADDR, Frame, SERVER_ADDR, Session};
use crate::{
    Corpus, auth_exchange, ccp_decompress, link_frames, pppoe_discovery_harness, radius_client,
};

/// Protocol numbers.
const LCP: u16 = 0xC021;
const PAP: u16 = 0xC023;
const CHAP: u16 = 0xC223;
const IPCP: u16 = 0x8021;
const IPV6CP: u16 = 0x8057;
const CCP: u16 = 0x80FD;
const MP: u16 = 0x003D;

/// The whole corpus.
pub fn generate() -> Corpus {
    let mut links = sessions::link_sessions();
    let pppoe = sessions::pppoe_sessions();
    let mut corpus = Corpus::new();
    let mut add = |target: &str, seeds: BTreeMap<String, Vec<u8>>| {
        corpus.insert(target.to_owned(), seeds);
    };
    add("async_decoder", async_decoder(&links));
    add("frame_round_trip", frame_round_trip(&links, &pppoe));
    add("control_packets", control_packets(&links, &pppoe));
    add("auth_packets", auth_packets(&links, &pppoe));
    add("link_frames", link_frames_seeds(&links));
    add("ccp_decompress", ccp_decompress_seeds());
    add("mp_reassembly", mp_reassembly_seeds(&links));
    add("pppoe_discovery", pppoe_discovery_seeds(&pppoe));
    add("bpf_filter", bpf_filter(&pppoe));
    add("packet_ring_block", packet_ring_block(&pppoe));
    add("modem_responses", modem_responses());
    add("radius_packet", radius_packet());
    add("radius_client", radius_client_seeds());
    links.extend(pppoe);
    add("mss_clamp", mss_clamp(&links));
    add("icmp", icmp_seeds(&links));
    add("vnet_offload", vnet_offload_seeds(&links));
    corpus
}

/// Distinct frames of some protocols, in the order first seen.
fn distinct<'a>(
    sessions: impl IntoIterator<Item = &'a Session>,
    protocols: &[u16],
) -> Vec<&'a Frame> {
    let mut seen = BTreeSet::new();
    sessions
        .into_iter()
        .flat_map(|s| &s.frames)
        .filter(|f| protocols.contains(&f.protocol) && seen.insert((f.protocol, f.payload.clone())))
        .collect()
}

fn protocol_name(protocol: u16) -> String {
    match protocol {
        LCP => "lcp".into(),
        PAP => "pap".into(),
        CHAP => "chap".into(),
        IPCP => "ipcp".into(),
        IPV6CP => "ipv6cp".into(),
        CCP => "ccp".into(),
        MP => "mp".into(),
        0x0021 => "ipv4".into(),
        0x0057 => "ipv6".into(),
        0x00FD => "compressed".into(),
        other => format!("{other:04x}"),
    }
}

/// Control packet codes by name.
fn code_name(code: u8) -> &'static str {
    [
        "zero",
        "configure-request",
        "configure-ack",
        "configure-nak",
        "configure-reject",
        "terminate-request",
        "terminate-ack",
        "code-reject",
        "protocol-reject",
        "echo-request",
        "echo-reply",
        "discard-request",
        "identification",
        "time-remaining",
        "reset-request",
        "reset-ack",
    ]
    .get(usize::from(code))
    .copied()
    .unwrap_or("unknown-code")
}

// ---------------------------------------------------------------------------------------------
// Framing

/// `[a, b, c, d, e, f]` + an async HDLC stream: each session's bytes in each direction as
/// recorded (FCS-16), and re-encoded with FCS-32, no FCS and an unusual ACCM.
fn async_decoder(links: &[Session]) -> BTreeMap<String, Vec<u8>> {
    let mut seeds = BTreeMap::new();
    // Chunks of 1, 16 and 64 bytes; the decoder's ACCM 0 or 0xFFFFFFFF; frames up to 2040 bytes.
    let headers = [
        [48u8, 0, 0, 0, 0, 255],
        [192, 1, 0, 0, 0, 255],
        [0, 0, 0, 0, 0, 255],
    ];
    for (i, session) in links.iter().enumerate() {
        for (direction, stream) in [
            ("client", &session.client_stream),
            ("server", &session.server_stream),
        ] {
            let mut seed = headers[(i * 2 + usize::from(direction == "server")) % 3].to_vec();
            seed.extend_from_slice(whole_frames(stream, 2048));
            seeds.insert(format!("{}-{direction}", session.name), seed);
        }
    }
    // Other FCS kinds and an ACCM with bits set (0x000A0002): `a % 3` is the FCS, `b..e` the ACCM.
    for session in links
        .iter()
        .filter(|s| ["ms-chap-v2", "multilink-short", "deflate"].contains(&s.name.as_str()))
    {
        for (fcs, a, accm, label) in [
            (FcsKind::Fcs32, 49u8, 0x000A_0002u32, "fcs32-accm"),
            (FcsKind::Null, 50, 0, "no-fcs"),
        ] {
            let mut encoder = AsyncEncoder::new(EncoderConfig {
                accm,
                fcs,
                ..EncoderConfig::default()
            });
            let mut wire = Vec::new();
            for frame in session.frames.iter().filter(|f| f.from_client) {
                if wire.len() > 1500 {
                    break;
                }
                encoder.encode(Protocol::from(frame.protocol), &frame.payload, &mut wire);
            }
            let [_, c, d, e] = accm.to_le_bytes();
            let b = if accm == 0 { 0 } else { accm.to_le_bytes()[0] };
            let mut seed = vec![a, b, c, d, e, 255];
            seed.extend_from_slice(&wire);
            seeds.insert(format!("{}-{label}", session.name), seed);
        }
    }
    seeds
}

/// The longest prefix of an async stream that ends with a flag and is at most `max` bytes.
fn whole_frames(stream: &[u8], max: usize) -> &[u8] {
    if stream.len() <= max {
        return stream;
    }
    let end = stream[..max]
        .iter()
        .rposition(|&b| b == 0x7E)
        .map_or(max, |i| i + 1);
    &stream[..end]
}

/// `[a, b, c, d, e, f, g]` + a payload, with `f` and `g` spelling the frame's real protocol
/// (`[g & 0xFE, f | 1]`) and `a` cycling through the FCS kinds, ACCMs and ACFC/PFC.
fn frame_round_trip(links: &[Session], pppoe: &[Session]) -> BTreeMap<String, Vec<u8>> {
    let mut seeds = BTreeMap::new();
    let all = [
        LCP, PAP, CHAP, IPCP, IPV6CP, CCP, MP, 0x0021, 0x0057, 0x00FD,
    ];
    let frames = distinct(links.iter().chain(pppoe), &all);
    let mut per_protocol: BTreeMap<u16, usize> = BTreeMap::new();
    let configs = [0x00u8, 0x31, 0x42, 0x90, 0xF1, 0x5B];
    for frame in frames {
        let n = per_protocol.entry(frame.protocol).or_default();
        if *n >= 6 || frame.payload.len() > 300 {
            continue;
        }
        *n += 1;
        let [hi, lo] = frame.protocol.to_be_bytes();
        let a = configs[seeds.len() % configs.len()];
        let mut seed = vec![a, 0x00, 0x00, 0x0A, 0x00, lo, hi];
        seed.extend_from_slice(&frame.payload);
        seeds.insert(format!("{}-{n}", protocol_name(frame.protocol)), seed);
    }
    seeds.insert("empty-lcp".into(), vec![0, 0, 0, 0, 0, 0x21, 0xC0]);
    seeds.insert(
        "all-flags-and-escapes".into(),
        [
            &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7D, 0x7E][..],
            &[0x7E, 0x7D, 0x00, 0x1F, 0x20, 0xFF, 0x7E, 0x7E],
        ]
        .concat(),
    );
    seeds
}

// ---------------------------------------------------------------------------------------------
// Control protocols and authentication

/// An LCP option.
fn option(kind: u8, value: &[u8]) -> Vec<u8> {
    [&[kind, value.len() as u8 + 2][..], value].concat()
}

/// A control packet.
fn packet(code: u8, id: u8, data: &[u8]) -> Vec<u8> {
    [
        &[code, id][..],
        &(data.len() as u16 + 4).to_be_bytes(),
        data,
    ]
    .concat()
}

/// LCP options of every kind, one each, as a peer might send them.
fn every_lcp_option() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("mru", option(1, &1492u16.to_be_bytes())),
        ("accm", option(2, &[0, 0x0A, 0, 0])),
        ("auth-pap", option(3, &[0xC0, 0x23])),
        ("auth-chap-md5", option(3, &[0xC2, 0x23, 5])),
        ("auth-ms-chap-v1", option(3, &[0xC2, 0x23, 0x80])),
        ("auth-ms-chap-v2", option(3, &[0xC2, 0x23, 0x81])),
        ("auth-eap", option(3, &[0xC2, 0x27])),
        ("quality-lqr", option(4, &[0xC0, 0x25, 0, 0, 0x03, 0xE8])),
        ("magic", option(5, &[0x12, 0x34, 0x56, 0x78])),
        ("pfc", option(7, &[])),
        ("acfc", option(8, &[])),
        ("fcs-alternatives", option(9, &[0x06])),
        ("self-describing-pad", option(10, &[8])),
        ("callback", option(13, &[1, b'4', b'2'])),
        ("mrru", option(17, &1614u16.to_be_bytes())),
        ("ssnhf", option(18, &[])),
        ("ed-null", option(19, &[0])),
        ("ed-local", option(19, &[1, 0x5e, 0xed, 1])),
        ("ed-ipv4", option(19, &[2, 192, 0, 2, 1])),
        ("ed-mac", option(19, &[3, 2, 0, 0, 0, 0, 0x10])),
        ("ed-magic-block", option(19, &[4, 1, 2, 3, 4, 5, 6, 7, 8])),
        ("ed-phone", option(19, &[5, b'5', b'5', b'5', b'1', b'2'])),
        ("link-discriminator", option(23, &[0, 1])),
        ("unknown", option(0xEE, &[1, 2, 3])),
    ]
}

/// IPCP, IPv6CP and CCP options of every kind.
fn every_ncp_option() -> Vec<(&'static str, u16, Vec<u8>)> {
    vec![
        ("ipcp-address", IPCP, option(3, &[192, 0, 2, 100])),
        (
            "ipcp-addresses",
            IPCP,
            option(1, &[192, 0, 2, 100, 192, 0, 2, 1]),
        ),
        ("ipcp-vj", IPCP, option(2, &[0x00, 0x2D, 15, 1])),
        (
            "ipcp-dns",
            IPCP,
            [
                option(129, &[198, 51, 100, 53]),
                option(131, &[198, 51, 100, 54]),
            ]
            .concat(),
        ),
        (
            "ipcp-nbns",
            IPCP,
            [option(130, &[198, 51, 100, 1]), option(132, &[0, 0, 0, 0])].concat(),
        ),
        (
            "ipv6cp-interface-id",
            IPV6CP,
            option(1, &[0x02, 0, 0, 0xFF, 0xFE, 0, 0, 0x10]),
        ),
        ("ipv6cp-compression", IPV6CP, option(2, &[0x00, 0x4F])),
        (
            "ccp-mppe-128-stateless",
            CCP,
            option(18, &[0x01, 0x00, 0x00, 0x40]),
        ),
        ("ccp-mppe-all", CCP, option(18, &[0x00, 0x00, 0x00, 0xE1])),
        (
            "ccp-deflate",
            CCP,
            [option(26, &[0x78, 0x00]), option(24, &[0x78, 0x00])].concat(),
        ),
        (
            "ccp-bsd-predictor",
            CCP,
            [option(21, &[0x2F]), option(1, &[]), option(2, &[])].concat(),
        ),
    ]
}

/// LCP, IPCP, IPv6CP and CCP packets as sent in the sessions, their option lists alone (the
/// target reads the input as both), and crafted packets with options of every kind.
fn control_packets(links: &[Session], pppoe: &[Session]) -> BTreeMap<String, Vec<u8>> {
    let mut seeds = BTreeMap::new();
    let mut options_seen = BTreeSet::new();
    for frame in distinct(links.iter().chain(pppoe), &[LCP, IPCP, IPV6CP, CCP]) {
        let p = &frame.payload;
        let kind = format!("{}-{}", protocol_name(frame.protocol), code_name(p[0]));
        let n = seeds
            .keys()
            .filter(|k: &&String| k.starts_with(&kind))
            .count();
        if n < 8 {
            seeds.insert(format!("{kind}-{n}"), p.clone());
        }
        if (1..=4).contains(&p[0])
            && p.len() > 4
            && options_seen.insert(p[4..].to_vec())
            && options_seen.len() <= 40
        {
            seeds.insert(
                format!(
                    "options-{}-{}",
                    protocol_name(frame.protocol),
                    options_seen.len()
                ),
                p[4..].to_vec(),
            );
        }
    }
    for (name, value) in every_lcp_option() {
        seeds.insert(format!("crafted-lcp-{name}"), packet(1, 0x42, &value));
    }
    let all: Vec<u8> = every_lcp_option()
        .into_iter()
        .flat_map(|(_, o)| o)
        .collect();
    seeds.insert("crafted-lcp-every-option".into(), packet(1, 0x43, &all));
    seeds.insert("crafted-lcp-every-option-nak".into(), packet(3, 0x43, &all));
    for (name, _, value) in every_ncp_option() {
        seeds.insert(format!("crafted-{name}"), packet(1, 0x44, &value));
    }
    seeds.insert(
        "crafted-protocol-reject".into(),
        packet(8, 3, &[0x80, 0x53, 1, 1, 0, 4]),
    );
    seeds.insert(
        "crafted-code-reject".into(),
        packet(7, 4, &[0x20, 7, 0, 6, 1, 2]),
    );
    seeds.insert(
        "crafted-time-remaining".into(),
        packet(13, 5, &[1, 2, 3, 4, 0, 0, 0x0E, 0x10]),
    );
    seeds.insert(
        "crafted-padded".into(),
        [packet(9, 6, &[1, 2, 3, 4]), vec![0; 6]].concat(),
    );
    seeds
}

/// PAP and CHAP packets as sent in the sessions, and exchanges (see `harness/auth_exchange.rs`)
/// that replay the two machines' own conversation for every method: to success (the password
/// offered as the secret), to failure (a wrong one), and stopped at the secret lookup.
fn auth_packets(links: &[Session], pppoe: &[Session]) -> BTreeMap<String, Vec<u8>> {
    let mut seeds = BTreeMap::new();
    for frame in distinct(links.iter().chain(pppoe), &[PAP, CHAP]) {
        let kind = protocol_name(frame.protocol);
        let n = seeds
            .keys()
            .filter(|k: &&String| k.starts_with(&format!("packet-{kind}")))
            .count();
        seeds.insert(format!("packet-{kind}-{n}"), frame.payload.clone());
    }
    let methods = ["pap", "chap-md5", "ms-chap-v1", "ms-chap-v2"];
    for (i, method) in methods.iter().enumerate() {
        let selector = i as u8;
        seeds.insert(
            format!("exchange-{method}-success"),
            auth_exchange_seed(selector | 0x80, b"correct horse"),
        );
        seeds.insert(
            format!("exchange-{method}-failure"),
            auth_exchange_seed(selector | 0x80, b"battery staple"),
        );
        seeds.insert(
            format!("exchange-{method}-lookup"),
            auth_exchange_seed(selector, b""),
        );
    }
    seeds
}

/// The machines' own conversation: each packet one of them sent, in order, and `password`
/// right after the authenticator asked for the secret.
fn auth_exchange_seed(selector: u8, password: &[u8]) -> Vec<u8> {
    let mut exchange = auth_exchange::AuthExchange::new(selector, Instant::now());
    let opening = exchange.opening();
    let mut pending: VecDeque<Vec<u8>> = opening
        .server_sent
        .into_iter()
        .chain(opening.client_sent)
        .collect();
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    let mut password_due = false;
    while inputs.len() < 8 {
        let packet = if password_due && selector & 0x80 != 0 {
            password.to_vec()
        } else if let Some(packet) = pending.pop_front() {
            packet
        } else {
            break;
        };
        let output = exchange.packet(&packet);
        inputs.push(packet);
        password_due = output
            .server_events
            .iter()
            .any(|e| matches!(e, AuthEvent::SecretNeeded(_)));
        let done = output
            .server_events
            .iter()
            .chain(&output.client_events)
            .any(|e| matches!(e, AuthEvent::Failed(_)))
            || output
                .client_events
                .iter()
                .any(|e| matches!(e, AuthEvent::Succeeded { .. }));
        pending.extend(output.server_sent);
        pending.extend(output.client_sent);
        if done {
            break;
        }
    }
    let mut seed = vec![selector];
    for (i, packet) in inputs.iter().enumerate() {
        assert!(
            !packet.contains(&auth_exchange::SEPARATOR),
            "selector {selector:#x}: a packet holds the separator"
        );
        if i > 0 {
            seed.push(auth_exchange::SEPARATOR);
        }
        seed.extend_from_slice(packet);
    }
    seed
}

// ---------------------------------------------------------------------------------------------
// Links

/// `link_frames` inputs (see `harness/link_frames.rs`) made by replaying the target's own setup
/// with its peer and letting the peer answer everything `us` sends, so that the records bring
/// `us` from every starting point (Establish, Authenticate, Network; with and without CHAP)
/// further; then, from Network, frames of every kind the sessions recorded.
fn link_frames_seeds(links: &[Session]) -> BTreeMap<String, Vec<u8>> {
    let mut seeds = BTreeMap::new();
    for selector in [0u8, 1, 2, 3, 4, 5, 9, 31] {
        let (seed, phase) = link_frames_conversation(selector, &[]);
        let auth = if selector & 1 != 0 { "chap" } else { "no-auth" };
        seeds.insert(
            format!("{phase}-conversation-{auth}-after-{}", selector >> 1),
            seed,
        );
    }
    // From Network (no CHAP, 15 exchanges): the peer's frames of each kind, then the peer's
    // conversation goes on.
    let kinds: [(&str, &[u16]); 7] = [
        ("lcp", &[LCP]),
        ("ipcp", &[IPCP]),
        ("ipv6cp", &[IPV6CP]),
        ("ccp", &[CCP]),
        ("auth", &[PAP, CHAP]),
        ("data", &[0x0021, 0x0057, 0x00FD]),
        ("multilink", &[MP]),
    ];
    for (name, protocols) in kinds {
        let mut frames: Vec<(u16, Vec<u8>)> = distinct(links, protocols)
            .into_iter()
            .filter(|f| !f.from_client && f.payload.len() <= 255)
            .map(|f| (f.protocol, f.payload.clone()))
            .take(12)
            .collect();
        // Then requests with options of every kind.
        let crafted = every_ncp_option()
            .into_iter()
            .filter(|(_, p, _)| protocols.contains(p));
        frames.extend(crafted.map(|(_, protocol, o)| (protocol, packet(1, 0x50, &o))));
        if name == "lcp" {
            frames.extend(
                every_lcp_option()
                    .into_iter()
                    .map(|(_, o)| (LCP, packet(1, 0x50, &o))),
            );
        }
        for (i, chunk) in frames.chunks(8).enumerate() {
            let (seed, phase) = link_frames_conversation(30, chunk);
            seeds.insert(format!("{phase}-{name}-frames-{i}"), seed);
        }
    }
    let terminate = [(LCP, packet(5, 0x77, b"bye"))];
    let (seed, phase) = link_frames_conversation(30, &terminate);
    seeds.insert(format!("{phase}-terminate-request"), seed);
    let (mut seed, _) = link_frames_conversation(30, &[]);
    seed.extend_from_slice(&[0xC0, 0x21, 0x09, 0x01, 0x00, 0x0C]);
    seeds.insert("network-raw-tail".into(), seed);
    seeds
}

/// Replays the target's setup for `selector`, feeds `first` (protocol, body) records, then
/// whatever the peer answers to `us`, until the peer is silent (at most 40 records). Returns the
/// input and the phase `us` ends in.
fn link_frames_conversation(selector: u8, first: &[(u16, Vec<u8>)]) -> (Vec<u8>, String) {
    let start = Instant::now();
    let (mut harness, mut peer) = link_frames::LinkFrames::new(selector, start);
    let mut input = vec![selector];
    let mut queued: VecDeque<(u16, Vec<u8>)> = first.iter().cloned().collect();
    // What `us` sent in the setup's last exchange, still queued in the target.
    let mut to_peer: Vec<Vec<u8>> = std::iter::from_fn(|| harness.us.poll_transmit()).collect();
    let mut provided = false;
    // Each record moves the target's clock by seconds, so `us` retransmits between records.
    // The peer hears each frame once and runs no timers of its own: retransmissions crossing
    // answers would only make both sides start over.
    let mut heard = BTreeSet::new();
    for _ in 0..40 {
        let now = harness.t;
        for frame in to_peer.drain(..) {
            if heard.insert(frame.clone()) {
                peer.handle_input(now, &frame);
            }
        }
        while let Some(event) = peer.poll_event() {
            // The target's peer never answers its secret lookup; this one does, once.
            if let ppp_link::LinkEvent::SecretNeeded(request) = event
                && !provided
            {
                provided = true;
                let entry = ppp_auth::SecretsTable::parse_pppd("user * secret\n")
                    .unwrap()
                    .lookup_now("user", &request.server);
                let _ = peer.provide_secret(now, request.token, entry);
            }
        }
        while peer.poll_datagram().is_some() {}
        while let Some(frame) = peer.poll_transmit() {
            let decoded = ppp_frame::sync::decode(&frame).expect("the peer's own frame");
            if decoded.payload.len() <= 255 {
                queued.push_back((u16::from(decoded.protocol), decoded.payload.to_vec()));
            }
        }
        let Some((protocol, body)) = queued.pop_front() else {
            break;
        };
        link_frames::push_record(&mut input, protocol, &body);
        to_peer = harness.record(protocol, &body);
    }
    assert!(link_frames::parse(&input).is_some_and(|(_, _, tail)| tail.is_empty()));
    let phase = link_frames::run(&input).unwrap();
    (input, phase.to_string())
}

/// `[selector, packet, 0xA5, ...]` (see `harness/ccp_decompress.rs`): datagrams compressed or
/// encrypted as a peer would for the target's decompressor (its receive key), avoiding the
/// separator; in order, with losses, and (stateful MPPE) across a key change.
fn ccp_decompress_seeds() -> BTreeMap<String, Vec<u8>> {
    let mut seeds = BTreeMap::new();
    let cases: [(&str, u8, usize, usize); 11] = [
        ("deflate-8-in-order", 0x00, 6, 0),
        ("deflate-9-in-order", 0x10, 4, 0),
        ("mppe-56-stateless-lost", 0x83, 8, 3),
        ("deflate-15-in-order", 0x70, 6, 0),
        ("deflate-12-lost", 0x40, 6, 3),
        ("mppe-128-stateless-in-order", 0x01, 6, 0),
        ("mppe-128-stateless-lost", 0x81, 8, 2),
        ("mppe-40-stateful-in-order", 0x02, 6, 0),
        ("mppe-40-stateful-lost", 0x02, 8, 4),
        ("mppe-56-stateless-in-order", 0x03, 6, 0),
        ("mppe-40-stateful-key-change", 0x02, 260, 0),
    ];
    for (name, selector, count, lost) in cases {
        seeds.insert(name.into(), ccp_seed(selector, count, lost));
    }
    seeds
}

fn ccp_seed(selector: u8, count: usize, lost: usize) -> Vec<u8> {
    let method = match ccp_decompress::method(selector) {
        // The peer compresses with a window the decompressor's accepts.
        CompressionMethod::Deflate { window_bits } => CompressionMethod::Deflate {
            window_bits: window_bits.max(9),
        },
        mppe => mppe,
    };
    let keys = ccp_decompress::keys();
    let peer_keys = ppp_ccp::MppeKeys::new(keys.recv, keys.send);
    let small = count > 100;
    // Choose each datagram so that its compressed form holds no separator. Encryption XORs a
    // keystream the datagram does not change, so every byte must be free to vary: IPv4
    // datagrams with varied header fields and data, and IPv6 ones.
    let mut accepted: Vec<(Protocol, Vec<u8>)> = Vec::new();
    let mut packets: Vec<Vec<u8>> = Vec::new();
    for n in 0..count {
        let size = match method {
            _ if small => 8,
            CompressionMethod::Deflate { .. } => 150 + (n * 37) % 200,
            _ => 20 + (n * 37) % 90,
        };
        let found = (0..400u16).find_map(|variant| {
            let candidate = datagram_variant(variant, size);
            let mut compressor = Compressor::new(method, Some(&peer_keys)).unwrap();
            let mut last = None;
            for (protocol, d) in accepted.iter().chain([&candidate]) {
                last = compressor.compress(*protocol, d);
            }
            let packet = last?;
            (!packet.contains(&ccp_decompress::SEPARATOR)).then_some((candidate, packet))
        });
        // The protocol field's high byte (0x00) is encrypted too: where the keystream makes it
        // the separator, nothing helps. The long stateful seed takes that packet anyway (the
        // decompressor loses step until the next flushed packet, which is worth fuzzing too).
        let (datagram, packet) = found.unwrap_or_else(|| {
            assert!(
                small,
                "selector {selector:#x}, packet {n}: none without the separator"
            );
            let candidate = datagram_variant(0, size);
            let mut compressor = Compressor::new(method, Some(&peer_keys)).unwrap();
            let mut last = None;
            for (protocol, d) in accepted.iter().chain([&candidate]) {
                last = compressor.compress(*protocol, d);
            }
            (candidate, last.unwrap())
        });
        accepted.push(datagram);
        packets.push(packet);
    }
    // Lost packets: every `lost`-th one is left out; of a long run, all but the first five and
    // those from just before the key change on are (the first packet after a gap is dropped;
    // the flushed one at coherency count 0xFF resynchronises).
    let mut seed = vec![selector];
    for (i, packet) in packets.iter().enumerate() {
        if (lost != 0 && i % lost == lost - 1) || (small && (5..254).contains(&i)) {
            continue;
        }
        if seed.len() > 1 {
            seed.push(ccp_decompress::SEPARATOR);
        }
        seed.extend_from_slice(packet);
    }
    seed
}

// ---------------------------------------------------------------------------------------------
// Multilink

/// An IPv4 (even `variant`) or IPv6 datagram with about `size` bytes of compressible data,
/// its length, header fields, ports and data varied by `variant`.
fn datagram_variant(variant: u16, size: usize) -> (Protocol, Vec<u8>) {
    let v = variant / 2;
    let size = size + usize::from(v % 4);
    let data: Vec<u8> = (0..size)
        .map(|i| b'a' + ((i + usize::from(v) * 3) % 26) as u8)
        .collect();
    let [hi, lo] = v.to_be_bytes();
    if variant % 2 == 1 {
        let mut p = sessions::ipv6_packet(&data);
        p[1..4].copy_from_slice(&[lo, lo ^ hi, lo]);
        p[7] = 1 + lo;
        p[23] = lo;
        p[39] = hi;
        return (Protocol::Ipv6, p);
    }
    let mut p = vec![0x45, lo];
    p.extend_from_slice(&((20 + 8 + size) as u16).to_be_bytes());
    p.extend_from_slice(&[
        hi,
        lo,
        if v.is_multiple_of(2) { 0x40 } else { 0 },
        0,
        64 + lo % 64,
        17,
        0,
        0,
    ]);
    p.extend_from_slice(&[192, 0, 2, 1 + lo % 250, 198, 51, 100, 1 + hi]);
    let checksum = icmp::checksum(&p);
    p[10..12].copy_from_slice(&checksum.to_be_bytes());
    p.extend_from_slice(&[0x13, lo, 0x00, 9 + hi]);
    p.extend_from_slice(&((8 + size) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&data);
    (Protocol::Ipv4, p)
}

/// The MP frames the multilink sessions sent (headers for both formats' round trip), and
/// scripts (see `harness/mp_reassembly.rs`): packets through the fragmenter over one to four
/// members, reordered, fragments in and out of order, lost ones and the timeout, members leaving
/// and joining, and the recorded frames themselves.
fn mp_reassembly_seeds(links: &[Session]) -> BTreeMap<String, Vec<u8>> {
    let mut seeds = BTreeMap::new();
    for session in links.iter().filter(|s| s.name.starts_with("multilink")) {
        let format = if session.name.ends_with("short") {
            "short"
        } else {
            "long"
        };
        let frames: Vec<&Frame> = session.frames.iter().filter(|f| f.protocol == MP).collect();
        for (i, frame) in frames.iter().take(8).enumerate() {
            let mut header = frame.payload.clone();
            header.truncate(64);
            seeds.insert(format!("header-{format}-{i}"), header);
        }
        // The client's recorded fragments as raw frames, in order and reversed.
        let short = format == "short";
        let sent: Vec<&Vec<u8>> = frames
            .iter()
            .filter(|f| f.from_client)
            .map(|f| &f.payload)
            .take(12)
            .collect();
        for (order, reversed) in [("in-order", false), ("reversed", true)] {
            let mut script = MpScript::new(short, 1, 1550, &[1514]);
            let mut raw: Vec<&Vec<u8>> = sent.clone();
            if reversed {
                raw.reverse();
            }
            for frame in raw {
                script.raw(0, frame);
            }
            script.poll();
            seeds.insert(format!("script-{format}-recorded-{order}"), script.0);
        }
    }
    for short in [false, true] {
        let format = if short { "short" } else { "long" };
        for members in 1..=4u8 {
            let mut script = MpScript::new(short, members, 1536, &[1500, 600, 296, 1400]);
            for (i, len) in [60u16, 700, 1500, 1536, 2000].into_iter().enumerate() {
                script.send(i as u8, 0x0021, len, i % 2 == 1);
            }
            script.poll();
            seeds.insert(format!("script-{format}-send-{members}-members"), script.0);
        }
        // Fragments by hand: in order; the middle one late; a gap that times out.
        let mut script = MpScript::new(short, 1, 1536, &[1500]);
        script.fragment(0, true, false, 0, &[0x21, 0x45, 0, 0, 20]);
        script.fragment(0, false, false, 1, &[0; 16]);
        script.fragment(0, false, true, 2, &[0; 8]);
        script.poll();
        script.fragment(0, true, false, 3, &[0x21, 0x45]);
        script.fragment(0, false, true, 5, &[1; 8]);
        script.fragment(0, false, false, 4, &[2; 8]);
        script.poll();
        script.fragment(0, true, false, 6, &[0x21, 0x45]);
        script.fragment(0, false, true, 8, &[3; 8]);
        script.time(200, false);
        script.time(200, true);
        script.send(0, 0x0021, 100, false);
        script.poll();
        seeds.insert(format!("script-{format}-fragments"), script.0);
        // A member leaves mid-transfer and another joins.
        let mut script = MpScript::new(short, 2, 1536, &[600, 600]);
        script.send(0, 0x0021, 1400, false);
        script.leave(1);
        script.send(0, 0x0021, 1400, true);
        script.join(900);
        script.send(1, 0x0057, 1200, false);
        script.time(100, true);
        script.poll();
        seeds.insert(format!("script-{format}-members-change"), script.0);
    }
    seeds
}

/// A `mp_reassembly` script under construction.
struct MpScript(Vec<u8>);

impl MpScript {
    /// The setup: format, members, MRRU, generous limits, each member's MTU.
    fn new(short: bool, members: u8, mrru: u16, mtus: &[u16]) -> Self {
        let setup = u8::from(short) | ((members - 1) << 2);
        let mut s = vec![setup];
        s.extend_from_slice(&(mrru - 64).to_be_bytes());
        s.extend_from_slice(&0u16.to_be_bytes()); // initial sequence
        s.push(0); // fragment everything over the member MTUs
        s.push(32); // minimum fragment size
        s.extend_from_slice(&2048u16.to_be_bytes()); // 8 KiB buffered at most
        s.push(32); // 256 fragments at most
        s.push(250); // a one-second reassembly timeout
        for i in 0..usize::from(members) {
            s.extend_from_slice(&(mtus[i % mtus.len()] - 8).to_be_bytes());
        }
        MpScript(s)
    }

    fn send(&mut self, member: u8, protocol: u16, len: u16, reversed: bool) {
        self.0
            .push(6 | (member << 4 & 0x30) | if reversed { 8 } else { 0 });
        self.0.extend_from_slice(&protocol.to_be_bytes());
        self.0.extend_from_slice(&len.to_be_bytes());
    }

    fn raw(&mut self, member: u8, frame: &[u8]) {
        let frame = &frame[..frame.len().min(255)];
        self.0.push(3 | (member << 4 & 0x30));
        self.0.push(frame.len() as u8);
        self.0.extend_from_slice(frame);
    }

    /// A fragment with sequence number `sequence`, as a raw frame.
    fn fragment(&mut self, member: u8, begin: bool, end: bool, sequence: u32, data: &[u8]) {
        let format = if self.0[0] & 1 == 1 {
            SequenceFormat::Short
        } else {
            SequenceFormat::Long
        };
        let header = MpHeader {
            format,
            begin,
            end,
            sequence,
        };
        let mut frame = vec![0; header.buffer_len()];
        header.emit(&mut frame).unwrap();
        frame.extend_from_slice(data);
        self.raw(member, &frame);
    }

    fn time(&mut self, ms: u16, force: bool) {
        self.0.push(4 | if force { 8 } else { 0 });
        self.0.push((ms / 8).min(255) as u8);
    }

    fn leave(&mut self, member: u8) {
        self.0.push(5 | 8 | (member << 4 & 0x30));
    }

    fn join(&mut self, mtu: u16) {
        self.0.push(5);
        self.0.extend_from_slice(&(mtu - 8).to_be_bytes());
    }

    /// Takes the packets the bundle delivered (an operation that does nothing else).
    fn poll(&mut self) {
        self.0.push(0x40 | 4);
        self.0.push(0);
    }
}

// ---------------------------------------------------------------------------------------------
// PPPoE

/// Ethernet frames as the PPPoE sessions sent them (every discovery code, session frames of
/// every protocol), crafted discovery frames with tags of every kind, and conversations of a
/// second client with the target's access concentrator (see `harness/pppoe_discovery.rs`):
/// PADI, PADR with the AC's own cookie, the session up, a session frame, PADT.
fn pppoe_discovery_seeds(pppoe: &[Session]) -> BTreeMap<String, Vec<u8>> {
    let mut seeds = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for session in pppoe {
        for (from_client, frame) in &session.ethernet {
            let kind = match DiscoveryRepr::parse_bytes(frame) {
                Ok(repr) => format!("{:?}", repr.code).to_lowercase(),
                Err(_) => match pppoe_discovery::decapsulate(frame) {
                    Ok(s) => format!("session-{}", protocol_name(u16::from(s.protocol))),
                    Err(_) => "other".into(),
                },
            };
            let key = (kind.clone(), frame.len().min(100), *from_client);
            if seen.insert(key) && frame.len() <= 600 {
                let n = seeds
                    .keys()
                    .filter(|k: &&String| k.starts_with(&format!("frame-{kind}-")))
                    .count();
                if n < 6 {
                    seeds.insert(format!("frame-{kind}-{n}"), frame.clone());
                }
            }
        }
    }
    let client = MacAddr([2, 0, 0, 0, 0, 0x31]);
    let ac = pppoe_discovery_harness::AC;
    let crafted = [
        (
            "padi-every-tag",
            DiscoveryRepr::new(MacAddr([0xFF; 6]), client, PppoeCode::Padi, 0)
                .with_tag(TagType::ServiceName, b"internet".to_vec())
                .with_tag(TagType::HostUniq, vec![1, 2, 3, 4])
                .with_tag(TagType::RelaySessionId, vec![9; 12])
                .with_tag(TagType::PppMaxPayload, 1500u16.to_be_bytes().to_vec())
                .with_tag(TagType::VendorSpecific, vec![0, 0, 0x0D, 0xE9, 1, 2])
                .with_tag(TagType::Unknown(0x0777), vec![7]),
        ),
        (
            "padi-any-service",
            DiscoveryRepr::new(MacAddr([0xFF; 6]), client, PppoeCode::Padi, 0)
                .with_tag(TagType::ServiceName, Vec::new()),
        ),
        (
            "pado-errors",
            DiscoveryRepr::new(client, ac, PppoeCode::Pado, 0)
                .with_tag(TagType::AcName, b"other-ac".to_vec())
                .with_tag(TagType::ServiceNameError, b"no such service".to_vec())
                .with_tag(TagType::AcSystemError, Vec::new()),
        ),
        (
            "pads-generic-error",
            DiscoveryRepr::new(client, ac, PppoeCode::Pads, 0)
                .with_tag(TagType::GenericError, b"sorry".to_vec()),
        ),
        (
            "padt-with-reason",
            DiscoveryRepr::new(ac, client, PppoeCode::Padt, 0x1234)
                .with_tag(TagType::GenericError, b"bye".to_vec()),
        ),
        (
            "end-of-list",
            DiscoveryRepr::new(MacAddr([0xFF; 6]), client, PppoeCode::Padi, 0)
                .with_tag(TagType::EndOfList, Vec::new())
                .with_tag(TagType::ServiceName, Vec::new()),
        ),
        (
            "unknown-code",
            DiscoveryRepr::new(ac, client, PppoeCode::Unknown(0x42), 0),
        ),
    ];
    for (name, repr) in crafted {
        seeds.insert(format!("crafted-{name}"), repr.to_bytes().unwrap());
    }
    for (name, close) in [("session-up", false), ("session-up-and-padt", true)] {
        seeds.insert(
            format!("conversation-{name}"),
            discovery_conversation(close),
        );
    }
    seeds
}

/// A second client (02:00:00:00:00:03) talking with the target's AC through the input: its
/// frames are the input, empty frames let time pass until the AC's answers reach it.
fn discovery_conversation(close: bool) -> Vec<u8> {
    let other = MacAddr([2, 0, 0, 0, 0, 3]);
    let start = Instant::now();
    for host_uniq in 1..=255u8 {
        let mut discovery = pppoe_discovery_harness::Discovery::new(start);
        let config = ClientConfig {
            host_uniq: Some(vec![0x48, host_uniq]),
            service_name: String::new(),
            ..ClientConfig::default()
        };
        let mut client = Client::new(config, other, Random::seeded(3));
        client.open(start);
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        let mut up = false;
        let mut closed = false;
        for i in 0..12u64 {
            let t = start + Duration::from_millis(i * 300);
            let frame = client.poll_transmit().unwrap_or_default();
            let (delivered, events) = discovery.frame(&frame);
            inputs.push(frame);
            up |= events.iter().any(
                |e| matches!(e, AcEvent::SessionUp { client_mac, .. } if *client_mac == other),
            );
            for f in delivered {
                client.handle_input(t, &f);
            }
            Machine::handle_timeout(&mut client, t);
            if let Some(session) = client.session().map(|s| s.session_id)
                && up
                && !closed
            {
                // A session frame (LCP Configure-Request) and, if asked, the end.
                let mut frame = Vec::new();
                pppoe_discovery::encapsulate(
                    pppoe_discovery_harness::AC,
                    other,
                    session,
                    Protocol::Lcp,
                    &packet(1, 1, &option(1, &[5, 0xD4])),
                    &mut frame,
                )
                .unwrap();
                inputs.push(frame);
                discovery.frame(inputs.last().unwrap());
                if close {
                    client.close(t, pppoe_discovery::ppp_core::CloseReason::UserRequest);
                }
                closed = true;
            }
            while client.poll_event().is_some() {}
        }
        let clean = inputs
            .iter()
            .all(|f| !f.contains(&pppoe_discovery_harness::SEPARATOR));
        if up && clean {
            return inputs.join(&pppoe_discovery_harness::SEPARATOR);
        }
    }
    panic!("no Host-Uniq gives a conversation without the separator");
}

/// `[packet type, Ethernet frame]`: PPPoE frames and others, as received, broadcast, from
/// another host and sent by us.
fn bpf_filter(pppoe: &[Session]) -> BTreeMap<String, Vec<u8>> {
    let mut frames: Vec<(String, Vec<u8>)> = Vec::new();
    for (from_client, frame) in &pppoe[0].ethernet {
        let kind = match DiscoveryRepr::parse_bytes(frame) {
            Ok(repr) => format!("{:?}", repr.code).to_lowercase(),
            Err(_) => "session".into(),
        };
        if *from_client && !frames.iter().any(|(k, _)| *k == kind) {
            frames.push((kind, frame.clone()));
        }
    }
    let mut ipv4 = vec![0xFF; 6];
    ipv4.extend_from_slice(&[2, 0, 0, 0, 0, 9, 0x08, 0x00]);
    ipv4.extend_from_slice(&sessions::ping(CLIENT_ADDR, SERVER_ADDR, 1, 8));
    frames.push(("ipv4".into(), ipv4.clone()));
    let mut vlan = ipv4[..12].to_vec();
    vlan.extend_from_slice(&[0x81, 0x00, 0x00, 0x07, 0x88, 0x63]);
    vlan.extend_from_slice(&pppoe[0].ethernet[0].1[14..]);
    frames.push(("vlan-pppoe".into(), vlan));
    frames.push(("truncated".into(), pppoe[0].ethernet[0].1[..13].to_vec()));
    let mut seeds = BTreeMap::new();
    for (kind, frame) in frames {
        for (pkttype, label) in [
            (0u8, "host"),
            (1, "broadcast"),
            (3, "otherhost"),
            (4, "outgoing"),
        ] {
            seeds.insert(format!("{kind}-{label}"), [&[pkttype][..], &frame].concat());
        }
    }
    seeds
}

/// Blocks of the AC's PADI ring: the discovery frames of the sessions, alone and together,
/// laid out as the kernel lays them out (mode 0: the block itself; mode 1: the frames, for the
/// target to lay out), and blocks cut short or with a chain offset spoiled.
fn packet_ring_block(pppoe: &[Session]) -> BTreeMap<String, Vec<u8>> {
    let mut frames: Vec<(String, &[u8])> = Vec::new();
    for (_, frame) in &pppoe[0].ethernet {
        if let Ok(repr) = DiscoveryRepr::parse_bytes(frame) {
            let kind = format!("{:?}", repr.code).to_lowercase();
            if !frames.iter().any(|(k, _)| *k == kind) {
                frames.push((kind, frame));
            }
        }
    }
    let block = |frames: &[&[u8]]| ppp_tokio::ring::frames_into_block(frames, 4096).unwrap();
    let mut seeds = BTreeMap::new();
    for (kind, frame) in &frames {
        seeds.insert(
            format!("block-{kind}"),
            [&[0][..], &block(&[frame])].concat(),
        );
        seeds.insert(format!("frames-{kind}"), [&[1][..], frame].concat());
    }
    let all: Vec<&[u8]> = frames.iter().map(|(_, f)| *f).collect();
    let whole = block(&all);
    let used = whole.len() - whole.iter().rev().take_while(|&&b| b == 0).count();
    seeds.insert("block-all".into(), [&[0][..], &whole[..used]].concat());
    seeds.insert(
        "block-all-cut".into(),
        [&[0][..], &whole[..used / 2]].concat(),
    );
    let mut spoiled = whole[..used].to_vec();
    spoiled[48..52].copy_from_slice(&3u32.to_ne_bytes());
    seeds.insert(
        "block-all-chain-spoiled".into(),
        [&[0][..], &spoiled].concat(),
    );
    let separated: Vec<u8> = all.join(&0xA5);
    seeds.insert("frames-all".into(), [&[1][..], &separated].concat());
    seeds.insert("block-empty".into(), [&[0][..], &block(&[])[..48]].concat());
    seeds
}

// ---------------------------------------------------------------------------------------------
// Modems

/// What simulated modems said to the target's AT engine (`AT+CSQ`, `ATD*99#`) and to the dialer
/// (init, PIN, registration, signal, operator, dial) in every behaviour; single response
/// lines; chat scripts.
fn modem_responses() -> BTreeMap<String, Vec<u8>> {
    use ppp_modem::sim::{CallBehaviour, SimConfig, SimModem, SimRegistration};
    let mut seeds = BTreeMap::new();
    let with = |change: &dyn Fn(&mut SimConfig)| {
        let mut config = SimConfig::default();
        change(&mut config);
        config
    };
    let configs: Vec<(&str, SimConfig)> = vec![
        ("default", SimConfig::default()),
        ("no-echo", with(&|c| c.echo = false)),
        ("garbage", with(&|c| c.garbage = true)),
        ("busy", with(&|c| c.dial = CallBehaviour::Busy)),
        ("no-carrier", with(&|c| c.dial = CallBehaviour::NoCarrier)),
        ("no-answer", with(&|c| c.dial = CallBehaviour::NoAnswer)),
        ("no-dialtone", with(&|c| c.dial = CallBehaviour::NoDialtone)),
        (
            "connect-bare",
            with(&|c| c.dial = CallBehaviour::Connect(None)),
        ),
        ("pin", with(&|c| c.pin = Some("1234".into()))),
        ("puk", with(&|c| c.puk_locked = true)),
        (
            "roaming",
            with(&|c| {
                c.registration = SimRegistration::Roaming;
                c.csq = (31, 3);
            }),
        ),
        (
            "denied",
            with(&|c| {
                c.registration = SimRegistration::Denied;
                c.csq = (99, 99);
            }),
        ),
        (
            "dropped-call",
            with(&|c| c.drop_call_after = Some(Duration::from_millis(500))),
        ),
    ];
    let mut lines = BTreeSet::new();
    for (name, config) in configs {
        let engine = modem_transcript(
            SimModem::new(config.clone()),
            |engine: &mut ppp_modem::AtEngine, now| {
                let _ = engine.enqueue(
                    now,
                    ppp_modem::AtCommand::new("AT+CSQ", Duration::from_secs(1)),
                );
                let _ = engine.enqueue(
                    now,
                    ppp_modem::AtCommand::connect("ATD*99#", Duration::from_secs(30)),
                );
            },
            ppp_modem::AtEngine::new(ppp_modem::EngineConfig::default()),
        );
        let mut dialer_config = ppp_modem::DialerConfig::cellular(Some("internet"));
        dialer_config.pin = config.pin.clone();
        let dialer = modem_transcript(
            SimModem::new(config),
            |dialer: &mut ppp_modem::Dialer, now| dialer.open(now).unwrap(),
            ppp_modem::Dialer::new(dialer_config).unwrap(),
        );
        for line in engine
            .split(|&b| b == b'\n')
            .chain(dialer.split(|&b| b == b'\n'))
        {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.is_empty() && line.len() < 80 {
                lines.insert(line.to_vec());
            }
        }
        seeds.insert(format!("engine-{name}"), engine);
        seeds.insert(format!("dialer-{name}"), dialer);
    }
    for (i, line) in lines.into_iter().take(40).enumerate() {
        seeds.insert(format!("line-{i:02}"), line);
    }
    let scripts = [
        "ABORT BUSY ABORT 'NO CARRIER' ABORT \"NO DIALTONE\"\nTIMEOUT 10\nSAY \"dialling\\n\"\n\
         '' ATZ\nOK ATE0V1\nOK ATDT5551234\nCONNECT ''\n",
        "TIMEOUT 5 ogin:-BREAK-ogin: ppp word: \\qsecret",
        "'' AT\\dZ^C OK-AT-OK ATD*99# ECHO ON HANGUP OFF CONNECT \\c",
        "'' 'AT+CGDCONT=1,\"IP\",\"internet\"' OK ATD*99***1#\n\
         # a comment\nCONNECT \\d\\p\\r\\n\\t\\\\",
    ];
    for (i, script) in scripts.iter().enumerate() {
        seeds.insert(format!("chat-{i}"), script.as_bytes().to_vec());
    }
    seeds
}

/// The AT engine and the dialer alike.
trait Driver {
    fn handle_input(&mut self, now: Instant, bytes: &[u8]);
    fn handle_timeout(&mut self, now: Instant);
    fn poll_transmit(&mut self) -> Option<Vec<u8>>;
    fn poll_event(&mut self) -> Option<ppp_modem::ModemEvent>;
    fn poll_timeout(&self) -> Option<Instant>;
}

macro_rules! driver {
    ($ty:ty) => {
        impl Driver for $ty {
            fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
                <$ty>::handle_input(self, now, bytes)
            }
            fn handle_timeout(&mut self, now: Instant) {
                <$ty>::handle_timeout(self, now)
            }
            fn poll_transmit(&mut self) -> Option<Vec<u8>> {
                <$ty>::poll_transmit(self)
            }
            fn poll_event(&mut self) -> Option<ppp_modem::ModemEvent> {
                <$ty>::poll_event(self)
            }
            fn poll_timeout(&self) -> Option<Instant> {
                <$ty>::poll_timeout(self)
            }
        }
    };
}
driver!(ppp_modem::AtEngine);
driver!(ppp_modem::Dialer);

/// Everything `modem` says to `driver` in 90 s of virtual time (at most 2 KiB).
fn modem_transcript<D: Driver>(
    mut modem: ppp_modem::sim::SimModem,
    start: impl FnOnce(&mut D, Instant),
    mut driver: D,
) -> Vec<u8> {
    let mut now = Instant::now();
    let end = now + Duration::from_secs(90);
    start(&mut driver, now);
    let mut transcript = Vec::new();
    while transcript.len() < 2048 {
        // Move bytes until nothing moves, then fire the next timer.
        loop {
            let mut moved = false;
            while let Some(bytes) = driver.poll_transmit() {
                modem.handle_input(now, &bytes);
                moved = true;
            }
            while let Some(bytes) = modem.poll_output() {
                driver.handle_input(now, &bytes);
                transcript.extend_from_slice(&bytes);
                moved = true;
            }
            while let Some(event) = driver.poll_event() {
                if let ppp_modem::ModemEvent::SetDtr(level) = event {
                    modem.set_dtr(now, level);
                }
                moved = true;
            }
            if !moved {
                break;
            }
        }
        let next = [driver.poll_timeout(), modem.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = next.filter(|&t| t <= end) else {
            break;
        };
        now = now.max(next);
        if driver.poll_timeout().is_some_and(|t| t <= now) {
            driver.handle_timeout(now);
        }
        if modem.poll_timeout().is_some_and(|t| t <= now) {
            modem.handle_timeout(now);
        }
    }
    transcript.truncate(2048);
    transcript
}

// ---------------------------------------------------------------------------------------------
// RADIUS

/// The target's secret and the Request Authenticator it verifies answers against.
const FUZZ_SECRET: &str = "fuzz";
const REQUEST_AUTHENTICATOR: [u8; 16] = [7; 16];

/// RFC 2865's example packets, Access-Requests of every method, answers of every kind signed as
/// the target verifies them (with every attribute the readers look at), accounting records and
/// dynamic-authorization requests, and rate-limit texts.
fn radius_packet() -> BTreeMap<String, Vec<u8>> {
    let mut seeds = BTreeMap::new();
    let hex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    seeds.insert(
        "rfc2865-pap-request".into(),
        hex(
            "010000380f403f9473978057bd83d5cb98f4227a01066e656d6f02120dbe708d93d413ce3196e43f\
             782a0aee0406c0a80110050600000003",
        ),
    );
    seeds.insert(
        "rfc2865-pap-accept".into(),
        hex("0200002686fe220e7624ba2a1005f6bf9b55e0b20606000000010f06000000000e06c0a80103"),
    );
    let secret = Secret::from(FUZZ_SECRET);
    for (name, request) in access_requests() {
        let bytes = request
            .encode(
                0x21,
                REQUEST_AUTHENTICATOR,
                &secret,
                [Attribute::text(AttributeType::NAS_IDENTIFIER, "fuzz")],
            )
            .unwrap();
        seeds.insert(format!("access-request-{name}"), bytes);
    }
    for (name, answer) in access_answers(&REQUEST_AUTHENTICATOR, 0) {
        let mut bytes = answer.to_bytes().unwrap();
        sign_response(&mut bytes, &REQUEST_AUTHENTICATOR, &secret);
        seeds.insert(format!("answer-{name}"), bytes);
    }
    for (name, record) in [
        ("start", AccountingRecord::start("S-1", "alice")),
        ("interim", AccountingRecord::interim("S-1", "alice")),
        ("stop", AccountingRecord::stop("S-1", "alice")),
    ] {
        seeds.insert(format!("accounting-{name}"), record.to_bytes().unwrap());
    }
    for (name, request) in dae_requests(9) {
        seeds.insert(format!("dae-{name}"), request);
    }
    for (i, text) in [
        "2M/1M",
        "10M/20M 20M/40M 10M/20M 8/8 5 5M/10M",
        "512k",
        "1G/1G 0/0 0/0 0/0 8",
        "64000/128000",
    ]
    .iter()
    .enumerate()
    {
        seeds.insert(format!("rate-limit-{i}"), text.as_bytes().to_vec());
    }
    seeds
}

/// Access-Requests for every method, as a NAS sends them.
fn access_requests() -> Vec<(&'static str, AccessRequest)> {
    use ppp_auth::{AuthProtocol, Proof, SecretToken, VerifyRequest};
    let proofs = [
        (
            "pap",
            AuthProtocol::Pap,
            Proof::Pap {
                password: Secret::from("correct horse"),
            },
        ),
        (
            "chap-md5",
            AuthProtocol::ChapMd5,
            Proof::ChapMd5 {
                id: 1,
                challenge: vec![2; 16],
                response: [3; 16],
            },
        ),
        (
            "ms-chap-v1",
            AuthProtocol::MsChapV1,
            Proof::MsChapV1 {
                id: 1,
                challenge: [2; 8],
                lm_response: [0; 24],
                nt_response: [3; 24],
                flags: 1,
            },
        ),
        (
            "ms-chap-v2",
            AuthProtocol::MsChapV2,
            Proof::MsChapV2 {
                id: 1,
                authenticator_challenge: [2; 16],
                peer_challenge: [4; 16],
                nt_response: [3; 24],
                flags: 0,
            },
        ),
    ];
    proofs
        .into_iter()
        .map(|(name, method, proof)| {
            let verify = VerifyRequest {
                token: SecretToken(1),
                peer_name: "alice".into(),
                server: "fuzz".into(),
                method,
                proof,
            };
            (
                name,
                AccessRequest::new(&verify, &ppp_radius::SessionContext::default()),
            )
        })
        .collect()
}

/// Answers of every kind to a request with `authenticator`, unsigned (`salt` for the MPPE keys).
fn access_answers(authenticator: &[u8; 16], salt: u8) -> Vec<(&'static str, Packet)> {
    let secret = Secret::from(FUZZ_SECRET);
    let message_authenticator = || Attribute::new(AttributeType::MESSAGE_AUTHENTICATOR, [0; 16]);
    let mut accept = Packet::new(Code::ACCESS_ACCEPT, 0x21);
    accept.attributes = vec![
        message_authenticator(),
        Attribute::text(AttributeType::REPLY_MESSAGE, "Welcome"),
        Attribute::integer(AttributeType::SERVICE_TYPE, 2),
        Attribute::integer(AttributeType::FRAMED_PROTOCOL, 1),
        Attribute::ipv4(
            AttributeType::FRAMED_IP_ADDRESS,
            Ipv4Addr::new(192, 0, 2, 77),
        ),
        Attribute::text(AttributeType::FRAMED_POOL, "pool-a"),
        Attribute::ipv6_prefix(
            AttributeType::FRAMED_IPV6_PREFIX,
            "2001:db8:1::".parse().unwrap(),
            64,
        ),
        Attribute::integer(AttributeType::SESSION_TIMEOUT, 3600),
        Attribute::integer(AttributeType::IDLE_TIMEOUT, 600),
        Attribute::integer(AttributeType::ACCT_INTERIM_INTERVAL, 300),
        Attribute::new(AttributeType::CLASS, b"gold".to_vec()),
        Attribute::vendor(
            VENDOR_MIKROTIK,
            mikrotik::RATE_LIMIT,
            b"10M/20M 20M/40M 10M/20M 8/8",
        ),
        Attribute::vendor(VENDOR_MIKROTIK, mikrotik::ADDRESS_LIST, b"customers"),
        Attribute::vendor(
            VENDOR_MICROSOFT,
            microsoft::MPPE_ENCRYPTION_POLICY,
            &2u32.to_be_bytes(),
        ),
        Attribute::vendor(
            VENDOR_MICROSOFT,
            microsoft::MPPE_ENCRYPTION_TYPES,
            &6u32.to_be_bytes(),
        ),
    ];
    let mut v2 = accept.clone();
    let success = format!("\u{1}S={}", "0123456789ABCDEF0123456789ABCDEF01234567");
    v2.attributes.push(Attribute::vendor(
        VENDOR_MICROSOFT,
        microsoft::CHAP2_SUCCESS,
        success.as_bytes(),
    ));
    v2.attributes.push(Attribute::vendor(
        VENDOR_MICROSOFT,
        microsoft::MPPE_SEND_KEY,
        &encrypt_salted(&[0x11; 16], &secret, authenticator, [0x80, salt]),
    ));
    v2.attributes.push(Attribute::vendor(
        VENDOR_MICROSOFT,
        microsoft::MPPE_RECV_KEY,
        &encrypt_salted(&[0x22; 16], &secret, authenticator, [0x81, salt]),
    ));
    let mut v1 = accept.clone();
    let keys: Vec<u8> = [[0x33u8 ^ salt; 8].as_slice(), &[0x44; 16], &[0; 8]].concat();
    v1.attributes.push(Attribute::vendor(
        VENDOR_MICROSOFT,
        microsoft::CHAP_MPPE_KEYS,
        &hide_password(&keys, &secret, authenticator).unwrap(),
    ));
    let mut reject = Packet::new(Code::ACCESS_REJECT, 0x21);
    reject.attributes = vec![
        message_authenticator(),
        Attribute::text(AttributeType::REPLY_MESSAGE, "Go away"),
        Attribute::vendor(
            VENDOR_MICROSOFT,
            microsoft::CHAP_ERROR,
            b"\x01E=691 R=1 C=0123456789ABCDEF0123456789ABCDEF V=3 M=Authentication failed",
        ),
    ];
    let mut challenge = Packet::new(Code::ACCESS_CHALLENGE, 0x21);
    challenge.attributes = vec![
        message_authenticator(),
        Attribute::new(AttributeType::STATE, b"state".to_vec()),
    ];
    let mut accounting = Packet::new(Code::ACCOUNTING_RESPONSE, 0x22);
    accounting.attributes = vec![Attribute::text(AttributeType::REPLY_MESSAGE, "noted")];
    vec![
        ("accept-ms-chap-v2", v2),
        ("accept-ms-chap-v1", v1),
        ("accept", accept),
        ("reject", reject),
        ("challenge", challenge),
        ("accounting-response", accounting),
    ]
}

/// Disconnect- and CoA-Requests signed with the target's secret, with `identifier`.
fn dae_requests(identifier: u8) -> Vec<(&'static str, Vec<u8>)> {
    let secret = Secret::from(FUZZ_SECRET);
    let requests = [
        (
            "disconnect-by-user",
            Code::DISCONNECT_REQUEST,
            vec![
                Attribute::text(AttributeType::USER_NAME, "alice"),
                Attribute::text(AttributeType::ACCT_SESSION_ID, "S-1"),
                Attribute::integer(AttributeType::EVENT_TIMESTAMP, 1_700_000_000),
            ],
        ),
        (
            "disconnect-by-address",
            Code::DISCONNECT_REQUEST,
            vec![
                Attribute::ipv4(
                    AttributeType::FRAMED_IP_ADDRESS,
                    Ipv4Addr::new(192, 0, 2, 77),
                ),
                Attribute::text(AttributeType::NAS_IDENTIFIER, "fuzz"),
            ],
        ),
        (
            "coa-rate-limit",
            Code::COA_REQUEST,
            vec![
                Attribute::text(AttributeType::USER_NAME, "alice"),
                Attribute::vendor(VENDOR_MIKROTIK, mikrotik::RATE_LIMIT, b"4M/2M"),
                Attribute::integer(AttributeType::SESSION_TIMEOUT, 60),
                Attribute::integer(AttributeType::IDLE_TIMEOUT, 30),
                Attribute::integer(AttributeType::EVENT_TIMESTAMP, 1_699_999_990),
            ],
        ),
        (
            "coa-unsupported",
            Code::COA_REQUEST,
            vec![
                Attribute::text(AttributeType::USER_NAME, "alice"),
                Attribute::ipv4(
                    AttributeType::FRAMED_IP_ADDRESS,
                    Ipv4Addr::new(192, 0, 2, 9),
                ),
            ],
        ),
    ];
    requests
        .into_iter()
        .map(|(name, code, attributes)| {
            let mut p = Packet::new(code, identifier);
            p.attributes = attributes;
            p.push(Attribute::new(
                AttributeType::MESSAGE_AUTHENTICATOR,
                [0; 16],
            ));
            let mut bytes = p.to_bytes().unwrap();
            sign_request(&mut bytes, &secret);
            (name, bytes)
        })
        .collect()
}

/// `radius_client` conversations (see `harness/radius_client.rs`) for every method: each
/// request in flight answered (accept, reject, challenge; accounting), made authentic by the
/// harness, and dynamic-authorization requests between them.
fn radius_client_seeds() -> BTreeMap<String, Vec<u8>> {
    let mut seeds = BTreeMap::new();
    for (m, method) in ["pap", "chap-md5", "ms-chap-v1", "ms-chap-v2"]
        .into_iter()
        .enumerate()
    {
        for (answer, signed) in [("accept", true), ("reject", false), ("challenge", true)] {
            let selector = m as u8 | if signed { 0x80 } else { 0 };
            let seed = radius_conversation(selector, answer);
            seeds.insert(format!("{method}-{answer}"), seed);
        }
    }
    seeds
}

fn radius_conversation(selector: u8, answer: &str) -> Vec<u8> {
    let mut radius = radius_client::Radius::new(selector, Instant::now());
    // Each request with an identifier that keeps its signature clear of the separator.
    let mut dae = (0..4).map(|i| {
        (0..=255u8)
            .map(|id| dae_requests(id).swap_remove(i).1)
            .find(|r| !r.contains(&radius_client::SEPARATOR))
            .unwrap()
    });
    let (mut access_done, mut accounting_done) = (false, false);
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    for _ in 0..20 {
        let answering = radius
            .next_answered()
            .map(|t| (t.bytes[0], t.bytes[4..20].to_vec()));
        let chunk = match answering {
            Some((1, authenticator)) if !access_done => {
                let authenticator: [u8; 16] = authenticator.try_into().unwrap();
                let method = match selector % 4 {
                    3 => "accept-ms-chap-v2",
                    2 => "accept-ms-chap-v1",
                    _ => "accept",
                };
                let name = if answer == "accept" { method } else { answer };
                // The MPPE keys' salt changes their encryption: one without the separator.
                let answer = (0..=255u8).find_map(|salt| {
                    let (_, packet) = access_answers(&authenticator, salt)
                        .into_iter()
                        .find(|(n, _)| *n == name)?;
                    let bytes = packet.to_bytes().unwrap();
                    (!bytes.contains(&radius_client::SEPARATOR)).then_some(bytes)
                });
                access_done = true;
                answer.expect("an answer without the separator")
            }
            Some((4, _)) if !accounting_done => {
                accounting_done = true;
                let (_, packet) = access_answers(&[0; 16], 0)
                    .into_iter()
                    .find(|(n, _)| *n == "accounting-response")
                    .unwrap();
                packet.to_bytes().unwrap()
            }
            Some(_) => Vec::new(),
            None => dae.next().unwrap_or_default(),
        };
        assert!(!chunk.contains(&radius_client::SEPARATOR));
        radius.chunk(&chunk);
        chunks.push(chunk);
        if access_done && accounting_done {
            break;
        }
    }
    let mut seed = vec![selector];
    seed.extend_from_slice(&chunks.join(&radius_client::SEPARATOR));
    seed
}

// ---------------------------------------------------------------------------------------------
// MSS clamping and ICMP

/// An IPv4 or IPv6 TCP segment with `flags` and `options`, every checksum right.
fn tcp_packet(v6: bool, extension: Option<u8>, flags: u8, options: &[u8], data: &[u8]) -> Vec<u8> {
    let mut tcp = vec![0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0];
    tcp.push((((20 + options.len()) / 4) << 4) as u8);
    tcp.extend_from_slice(&[flags, 0xfa, 0xf0, 0, 0, 0, 0]);
    tcp.extend_from_slice(options);
    tcp.extend_from_slice(data);
    let fold = |mut sum: u32| {
        while sum > 0xFFFF {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        sum as u16
    };
    let sum = |bytes: &[u8]| -> u32 {
        bytes
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w.get(1).copied().unwrap_or(0)])))
            .sum()
    };
    if v6 {
        let src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let dst = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let pseudo = sum(&src) + sum(&dst) + tcp.len() as u32 + 6;
        let checksum = !fold(pseudo + sum(&tcp));
        tcp[16..18].copy_from_slice(&checksum.to_be_bytes());
        let ext: Vec<u8> = match extension {
            // Routing (type 0, no segments left) and fragment headers; hop-by-hop and
            // destination options with a PadN option.
            Some(43) => vec![6, 0, 0, 0, 0, 0, 0, 0],
            Some(44) => vec![6, 0, 0, 0, 0, 0, 0, 1],
            Some(_) => vec![6, 0, 1, 4, 0, 0, 0, 0],
            None => Vec::new(),
        };
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&((ext.len() + tcp.len()) as u16).to_be_bytes());
        p.push(extension.unwrap_or(6));
        p.push(64);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&ext);
        p.extend_from_slice(&tcp);
        p
    } else {
        let src = SERVER_ADDR.octets();
        let dst = CLIENT_ADDR.octets();
        let pseudo = sum(&src) + sum(&dst) + 6 + tcp.len() as u32;
        let checksum = !fold(pseudo + sum(&tcp));
        tcp[16..18].copy_from_slice(&checksum.to_be_bytes());
        let total = (20 + tcp.len()) as u16;
        let mut p = vec![0x45, 0];
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, 6, 0, 0]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        let header = !fold(sum(&p));
        p[10..12].copy_from_slice(&header.to_be_bytes());
        p.extend_from_slice(&tcp);
        p
    }
}

/// `[limit hi, limit lo, flags, packet]`: TCP SYNs and SYN-ACKs over IPv4 and IPv6 (behind
/// extension headers) with MSS options at every offset among other options, limits above and
/// below; segments that are left alone (no SYN, no MSS, fragments, UDP); the sessions' IPv4
/// datagrams. Flags bit 0 (fill in checksums) on some.
fn mss_clamp(sessions: &[Session]) -> BTreeMap<String, Vec<u8>> {
    let mut seeds = BTreeMap::new();
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    let layouts: [(&str, &[u8]); 6] = [
        ("mss", &[2, 4, 0x05, 0xb4]),
        ("mss-odd-offset", &[1, 2, 4, 0x05, 0xb4, 0, 0, 0]),
        ("sack-first", &[1, 1, 4, 2, 2, 4, 0x05, 0xb4]),
        ("window-scale-mss-max", &[1, 3, 3, 7, 2, 4, 0xff, 0xff]),
        (
            "timestamps",
            &[
                2, 4, 0x05, 0xb4, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 4, 2,
            ],
        ),
        ("no-mss", &[1, 1, 4, 2, 1, 3, 3, 7]),
    ];
    let limits = [1452u16, 1412, 536, 0];
    let mut n = 0usize;
    for (name, options) in layouts {
        for (v6, ext, ip) in [
            (false, None, "ipv4"),
            (true, None, "ipv6"),
            (true, Some(0u8), "ipv6-hop-by-hop"),
            (true, Some(43), "ipv6-routing"),
            (true, Some(60), "ipv6-destination"),
        ] {
            if ext.is_some() && name != "mss-odd-offset" {
                continue;
            }
            for (flags, kind) in [(SYN, "syn"), (SYN | ACK, "syn-ack")] {
                let limit = limits[n % limits.len()];
                n += 1;
                let mut seed = limit.to_be_bytes().to_vec();
                seed.push(u8::from(n.is_multiple_of(3)));
                seed.extend_from_slice(&tcp_packet(v6, ext, flags, options, &[]));
                let label = if name == "no-mss" { "alone" } else { kind };
                seeds.insert(format!("{label}-{ip}-{name}"), seed);
            }
        }
    }
    let alone: Vec<(&str, Vec<u8>)> = vec![
        (
            "ack-ipv4",
            tcp_packet(false, None, ACK, &[2, 4, 0x05, 0xb4], b"data"),
        ),
        (
            "fragment-ipv6",
            tcp_packet(true, Some(44), SYN, &[2, 4, 0x05, 0xb4], &[]),
        ),
        (
            "truncated-ipv4",
            tcp_packet(false, None, SYN, &[2, 4, 0x05, 0xb4], &[])[..30].to_vec(),
        ),
        (
            "bad-option-length",
            tcp_packet(false, None, SYN, &[2, 0, 0, 0], &[]),
        ),
        (
            "option-past-header",
            tcp_packet(false, None, SYN, &[3, 9, 0, 0], &[]),
        ),
        (
            "syn-with-data",
            tcp_packet(false, None, SYN, &[2, 4, 0x05, 0xb4], b"early data"),
        ),
    ];
    for (name, packet) in alone {
        let label = if name.starts_with("syn") {
            "syn"
        } else {
            "alone"
        };
        let mut seed = vec![0x05, 0xac, 0];
        seed.extend_from_slice(&packet);
        seeds.insert(format!("{label}-{name}"), seed);
    }
    let mut fragment = tcp_packet(false, None, SYN, &[2, 4, 0x05, 0xb4], &[]);
    fragment[6] = 0x20; // more fragments: the first fragment is clamped
    seeds.insert(
        "syn-ipv4-first-fragment".into(),
        [&[0x05, 0xac, 1][..], &fragment].concat(),
    );
    fragment[7] = 0x10; // a later fragment is left alone
    seeds.insert(
        "alone-ipv4-later-fragment".into(),
        [&[0x05, 0xac, 1][..], &fragment].concat(),
    );
    let mut udp = tcp_packet(false, None, SYN, &[2, 4, 0x05, 0xb4], &[]);
    udp[9] = 17;
    seeds.insert("alone-udp".into(), [&[0x05, 0xac, 1][..], &udp].concat());
    for frame in distinct(sessions, &[0x0021]).into_iter().take(6) {
        let n = seeds
            .keys()
            .filter(|k: &&String| k.starts_with("alone-session-"))
            .count();
        seeds.insert(
            format!("alone-session-datagram-{n}"),
            [&[0x05, 0xac, 0][..], &frame.payload].concat(),
        );
    }
    seeds
}

/// `[flags, us, packet]`: echo requests to us and to others (with IP options, odd lengths,
/// trailing bytes past the total length, bad checksums fixed by flags bit 1), echo replies,
/// other ICMP and IP packets, and the sessions' pings.
fn icmp_seeds(sessions: &[Session]) -> BTreeMap<String, Vec<u8>> {
    let mut seeds = BTreeMap::new();
    let us = Ipv4Addr::new(192, 0, 2, 1);
    let peer = Ipv4Addr::new(192, 0, 2, 100);
    let seed =
        |flags: u8, to: Ipv4Addr, packet: &[u8]| [&[flags][..], &to.octets(), packet].concat();
    for (i, len) in [0usize, 1, 8, 56, 333].into_iter().enumerate() {
        let request = icmp::echo_request(peer, us, 0x1234, i as u16, &vec![0x61; len]);
        seeds.insert(format!("request-{len}-bytes"), seed(0, us, &request));
        let reply = icmp::echo_reply(&request, us).unwrap();
        seeds.insert(format!("reply-{len}-bytes"), seed(0, peer, &reply));
    }
    let request = icmp::echo_request(peer, us, 7, 1, b"ping");
    seeds.insert(
        "request-to-someone-else".into(),
        seed(0, Ipv4Addr::new(198, 51, 100, 1), &request),
    );
    seeds.insert(
        "request-answered-as-destination".into(),
        seed(1, Ipv4Addr::UNSPECIFIED, &request),
    );
    let mut padded = request.clone();
    padded.extend_from_slice(&[0; 10]);
    seeds.insert("request-with-trailing-bytes".into(), seed(0, us, &padded));
    let mut options = request[..20].to_vec();
    options[0] = 0x46;
    options[2..4].copy_from_slice(&((request.len() + 4) as u16).to_be_bytes());
    options.extend_from_slice(&[1, 1, 1, 0]);
    options.extend_from_slice(&request[20..]);
    seeds.insert(
        "request-with-ip-options-checksums-fixed".into(),
        seed(3, us, &options),
    );
    let mut broken = request.clone();
    broken[22] ^= 0xFF;
    seeds.insert("request-bad-checksum".into(), seed(0, us, &broken));
    seeds.insert("request-bad-checksum-fixed".into(), seed(2, us, &broken));
    let mut unreachable = request.clone();
    unreachable[20] = 3;
    seeds.insert(
        "other-destination-unreachable".into(),
        seed(2, us, &unreachable),
    );
    let mut udp = request.clone();
    udp[9] = 17;
    seeds.insert("other-udp".into(), seed(3, us, &udp));
    seeds.insert(
        "other-ipv6".into(),
        seed(0, us, &sessions::ipv6_packet(b"not ours")),
    );
    seeds.insert("other-truncated".into(), seed(0, us, &request[..24]));
    for frame in distinct(sessions, &[0x0021]).into_iter().take(6) {
        let n = seeds
            .keys()
            .filter(|k: &&String| k.starts_with("request-session-"))
            .count();
        seeds.insert(format!("request-session-{n}"), seed(1, us, &frame.payload));
    }
    seeds
}

/// `[mtu hi, mtu lo, flags]` + virtio-net header + packet, as a TUN device with offloads reads
/// them: TCP super-packets over IPv4, IPv6 and IPv6 behind a hop-by-hop header, cut at MTUs
/// above and below the MSS (`gso-`); single packets with their checksum left to finish and the
/// sessions' IPv4 datagrams without offloads (`single-`); headers the segmentation refuses
/// (`refused-`).
fn vnet_offload_seeds(sessions: &[Session]) -> BTreeMap<String, Vec<u8>> {
    const ACK: u8 = 0x10;
    const PSH: u8 = 0x08;
    const FIN: u8 = 0x01;
    const CWR: u8 = 0x80;
    let timestamps: &[u8] = &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
    let seed = |mtu: u16, header: &VirtioNetHdr, packet: &[u8]| {
        [&mtu.to_be_bytes()[..], &[0], &header.to_bytes(), packet].concat()
    };
    let data = |len: usize| -> Vec<u8> { (0..len).map(|i| (i * 7 + i / 251) as u8).collect() };
    let tcp_at = |v6: bool, ext: Option<u8>| match (v6, ext) {
        (false, _) => 20,
        (true, None) => 40,
        (true, Some(_)) => 48,
    };
    let mut seeds = BTreeMap::new();
    let supers: [(usize, u16, u16, u8, bool, &str); 6] = [
        (3000, 1448, 1492, ACK | PSH, false, "psh"),
        (3000, 1448, 1280, ACK, true, "timestamps"),
        (5000, 536, 576, ACK | PSH | FIN | CWR, false, "fin-cwr"),
        (7000, 1440, 9000, ACK, false, "jumbo-mtu"),
        (4001, 1000, 1492, ACK, true, "odd-length"),
        (1000, 1448, 1492, ACK | PSH, false, "one-segment"),
    ];
    for (v6, ext, ip) in [
        (false, None, "ipv4"),
        (true, None, "ipv6"),
        (true, Some(0u8), "ipv6-hop-by-hop"),
    ] {
        for (len, gso_size, mtu, flags, with_timestamps, what) in supers {
            let options = if with_timestamps { timestamps } else { &[] };
            let packet = tcp_packet(v6, ext, flags, options, &data(len));
            let start = tcp_at(v6, ext);
            let header = VirtioNetHdr {
                flags: VirtioNetHdr::NEEDS_CSUM,
                gso_type: if v6 { GsoType::TcpV6 } else { GsoType::TcpV4 },
                ecn: flags & CWR != 0,
                hdr_len: (start + 20 + options.len()) as u16,
                gso_size,
                csum_start: start as u16,
                csum_offset: 16,
            };
            seeds.insert(
                format!("gso-{ip}-{len}-mss-{gso_size}-mtu-{mtu}-{what}"),
                seed(mtu, &header, &packet),
            );
        }
        let packet = tcp_packet(v6, ext, ACK | PSH, &[], b"a single segment");
        let start = tcp_at(v6, ext);
        let header = VirtioNetHdr {
            flags: VirtioNetHdr::NEEDS_CSUM,
            csum_start: start as u16,
            csum_offset: 16,
            ..VirtioNetHdr::default()
        };
        seeds.insert(
            format!("single-{ip}-needs-csum"),
            seed(1492, &header, &packet),
        );
    }
    let packet = tcp_packet(false, None, ACK, &[], &data(3000));
    let gso = VirtioNetHdr {
        gso_type: GsoType::TcpV4,
        gso_size: 1448,
        ..VirtioNetHdr::default()
    };
    let refused: [(&str, u16, VirtioNetHdr); 5] = [
        (
            "udp-l4",
            1492,
            VirtioNetHdr {
                gso_type: GsoType::UdpL4,
                ..gso
            },
        ),
        (
            "tcpv6-on-ipv4",
            1492,
            VirtioNetHdr {
                gso_type: GsoType::TcpV6,
                ..gso
            },
        ),
        ("zero-gso-size", 1492, VirtioNetHdr { gso_size: 0, ..gso }),
        ("mtu-too-small", 40, gso),
        ("too-big-for-mtu", 1492, VirtioNetHdr::default()),
    ];
    for (name, mtu, header) in refused {
        seeds.insert(format!("refused-{name}"), seed(mtu, &header, &packet));
    }
    for (n, frame) in distinct(sessions, &[0x0021])
        .into_iter()
        .take(6)
        .enumerate()
    {
        seeds.insert(
            format!("single-session-datagram-{n}"),
            seed(1492, &VirtioNetHdr::default(), &frame.payload),
        );
    }
    seeds
}
