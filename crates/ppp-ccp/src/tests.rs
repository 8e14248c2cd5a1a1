//! Two CCP sessions negotiating in one process, and the data path between them.

use std::time::{Duration, Instant};

use ppp_core::CloseReason;
use ppp_frame::Protocol;
use ppp_lcp::fsm::{FinishReason, Fsm, FsmConfig, NegotiationFailure, State};
use ppp_lcp::packet::Code;

use crate::{
    Ccp, CcpConfig, CcpError, CcpEvent, CcpFailure, CcpSession, CompressionMethod, Encryption,
    MppeKeyLength, MppeKeys, MppeParams, Transmit,
};

/// A control packet: Code, Identifier, Length, Data.
fn build(code: Code, identifier: u8, data: &[u8]) -> Vec<u8> {
    let len = (4 + data.len()) as u16;
    let mut out = vec![code.number(), identifier];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
    out
}

const KEY_A: [u8; 16] = [
    0x8B, 0x7C, 0xDC, 0x14, 0x9B, 0x99, 0x3A, 0x1B, 0xA1, 0x18, 0xCB, 0x15, 0x3F, 0x56, 0xDC, 0xCB,
];
const KEY_B: [u8; 16] = [
    0xD5, 0xF0, 0xE9, 0x52, 0x1E, 0x3E, 0xA9, 0x58, 0x96, 0x45, 0xE8, 0x60, 0x51, 0xC8, 0x22, 0x26,
];

/// An IPv4 datagram (UDP from 192.0.2.1 to 192.0.2.2, correct header checksum) carrying
/// `data`: MPPE only takes what decrypts into a plausible datagram.
pub(crate) fn ipv4_datagram(data: &[u8]) -> Vec<u8> {
    let total = u16::try_from(28 + data.len()).expect("a short datagram");
    let mut packet = vec![
        0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
    ];
    packet[2..4].copy_from_slice(&total.to_be_bytes());
    let mut sum = 0u32;
    for word in packet.chunks(2) {
        sum += u32::from(u16::from_be_bytes([word[0], word[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    packet[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    let udp_len = u16::try_from(8 + data.len()).expect("a short datagram");
    packet.extend_from_slice(&[0x30, 0x39, 0x00, 0x35]);
    packet.extend_from_slice(&udp_len.to_be_bytes());
    packet.extend_from_slice(&[0, 0]);
    packet.extend_from_slice(data);
    packet
}

/// An IPv6 datagram (no next header) carrying `data`.
pub(crate) fn ipv6_datagram(data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(data.len()).expect("a short datagram");
    let mut packet = vec![0x60, 0, 0, 0];
    packet.extend_from_slice(&len.to_be_bytes());
    packet.extend_from_slice(&[59, 64]);
    packet.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    packet.extend_from_slice(&[0; 12]);
    packet.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    packet.extend_from_slice(&[0; 11]);
    packet.push(2);
    packet.extend_from_slice(data);
    packet
}

/// Payloads and losses from the simulation's seeded generator.
struct Rng(ppp_sim::SimRng);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(ppp_sim::SimRng::new(seed))
    }

    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0.below(n)
    }

    /// A payload that compresses sometimes: text-like runs mixed with noise.
    fn payload(&mut self) -> Vec<u8> {
        let len = 1 + self.below(1400) as usize;
        let text = self.below(3) != 0;
        (0..len)
            .map(|i| {
                if text {
                    b"the quick brown fox jumps over the lazy dog "[i % 44]
                } else {
                    self.next() as u8
                }
            })
            .collect()
    }
}

struct Pair {
    a: CcpSession,
    b: CcpSession,
    now: Instant,
    a_events: Vec<CcpEvent>,
    b_events: Vec<CcpEvent>,
    /// Every CCP packet exchanged: (from a, bytes).
    wire: Vec<(bool, Vec<u8>)>,
}

impl Pair {
    fn new(a: CcpConfig, b: CcpConfig, keys: bool) -> Self {
        let mut a = CcpSession::new(a, FsmConfig::default());
        let mut b = CcpSession::new(b, FsmConfig::default());
        if keys {
            a.set_mppe_keys(MppeKeys::new(KEY_A, KEY_B));
            b.set_mppe_keys(MppeKeys::new(KEY_B, KEY_A));
        }
        Pair {
            a,
            b,
            now: Instant::now(),
            a_events: Vec::new(),
            b_events: Vec::new(),
            wire: Vec::new(),
        }
    }

    fn start(&mut self) {
        self.a.open(self.now);
        self.b.open(self.now);
        self.a.up(self.now);
        self.b.up(self.now);
        self.run();
    }

    /// Deliver packets both ways until quiet, following timeouts, within a bounded time.
    fn run(&mut self) {
        for _ in 0..200 {
            let mut moved = false;
            while let Some(p) = self.a.poll_transmit() {
                self.wire.push((true, p.clone()));
                self.b.handle_input(self.now, &p);
                moved = true;
            }
            while let Some(p) = self.b.poll_transmit() {
                self.wire.push((false, p.clone()));
                self.a.handle_input(self.now, &p);
                moved = true;
            }
            self.a_events
                .extend(std::iter::from_fn(|| self.a.poll_event()));
            self.b_events
                .extend(std::iter::from_fn(|| self.b.poll_event()));
            if moved {
                continue;
            }
            let opened = self.a.state() == State::Opened && self.b.state() == State::Opened;
            let deadline = match (self.a.poll_timeout(), self.b.poll_timeout()) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            };
            match deadline {
                Some(deadline) if !opened => {
                    self.now = self.now.max(deadline);
                    self.a.handle_timeout(self.now);
                    self.b.handle_timeout(self.now);
                }
                _ => return,
            }
        }
    }

    fn link_failure(events: &[CcpEvent]) -> Option<String> {
        events.iter().find_map(|e| match e {
            CcpEvent::LinkFailure { reason } => Some(reason.to_string()),
            _ => None,
        })
    }
}

fn mppe(key_length: MppeKeyLength, stateful: bool) -> Option<CompressionMethod> {
    Some(CompressionMethod::Mppe(MppeParams {
        key_length,
        stateful,
    }))
}

fn encryption(encryption: Encryption) -> CcpConfig {
    CcpConfig {
        encryption,
        ..CcpConfig::default()
    }
}

#[test]
fn mppe_128_stateless_against_require_mppe_128() {
    let mut pair = Pair::new(
        encryption(Encryption::Yes),
        CcpConfig::require_mppe_128(),
        true,
    );
    pair.start();
    // Our offer: 128 and 40 bits, stateless; pppd's require-mppe-128 request.
    assert_eq!(
        pair.wire[0],
        (true, vec![1, 1, 0, 10, 0x12, 6, 0x01, 0, 0, 0x60])
    );
    assert_eq!(
        pair.wire[1],
        (false, vec![1, 1, 0, 10, 0x12, 6, 0x01, 0, 0, 0x40])
    );
    // b Naks the choice down to the strongest.
    assert!(
        pair.wire
            .contains(&(false, vec![3, 1, 0, 10, 0x12, 6, 0x01, 0, 0, 0x40]))
    );
    let expected = mppe(MppeKeyLength::Bits128, false);
    for session in [&pair.a, &pair.b] {
        assert_eq!(session.state(), State::Opened);
        let negotiated = session.negotiated().unwrap();
        assert_eq!(
            (negotiated.transmit, negotiated.receive),
            (expected, expected)
        );
    }
    assert!(Pair::link_failure(&pair.a_events).is_none());
    assert!(Pair::link_failure(&pair.b_events).is_none());
    round_trips(&mut pair, 300, 0);
}

#[test]
fn mppe_stateful_and_40_bit() {
    let config = CcpConfig {
        encryption: Encryption::Yes,
        mppe_stateful: true,
        mppe_128: false,
        ..CcpConfig::default()
    };
    let mut pair = Pair::new(config.clone(), config, true);
    pair.start();
    let expected = mppe(MppeKeyLength::Bits40, true);
    let negotiated = pair.a.negotiated().unwrap();
    assert_eq!(
        (negotiated.transmit, negotiated.receive),
        (expected, expected)
    );
    round_trips(&mut pair, 600, 0);
}

#[test]
fn stateful_wanted_by_one_side_only_ends_stateless() {
    let stateful = CcpConfig {
        encryption: Encryption::Yes,
        mppe_stateful: true,
        ..CcpConfig::default()
    };
    let mut pair = Pair::new(stateful, CcpConfig::require_mppe_128(), true);
    pair.start();
    let expected = mppe(MppeKeyLength::Bits128, false);
    let negotiated = pair.a.negotiated().unwrap();
    assert_eq!(
        (negotiated.transmit, negotiated.receive),
        (expected, expected)
    );
}

#[test]
fn deflate_15() {
    let mut pair = Pair::new(CcpConfig::deflate(15), CcpConfig::deflate(15), false);
    pair.start();
    assert_eq!(pair.wire[0], (true, vec![1, 1, 0, 8, 0x1a, 4, 0x78, 0]));
    let expected = Some(CompressionMethod::Deflate { window_bits: 15 });
    let negotiated = pair.b.negotiated().unwrap();
    assert_eq!(
        (negotiated.transmit, negotiated.receive),
        (expected, expected)
    );
    round_trips(&mut pair, 400, 0);
}

#[test]
fn deflate_windows_differ_per_direction() {
    let mut pair = Pair::new(CcpConfig::deflate(9), CcpConfig::deflate(15), false);
    pair.start();
    let a = pair.a.negotiated().unwrap();
    assert_eq!(
        (a.transmit, a.receive),
        (
            Some(CompressionMethod::Deflate { window_bits: 15 }),
            Some(CompressionMethod::Deflate { window_bits: 9 })
        )
    );
    round_trips(&mut pair, 200, 0);
}

#[test]
fn required_against_a_peer_that_refuses() {
    let mut pair = Pair::new(CcpConfig::require_mppe_128(), CcpConfig::deflate(15), true);
    // The peer has no MPPE at all.
    pair.b = CcpSession::new(CcpConfig::deflate(15), FsmConfig::default());
    pair.start();
    assert_eq!(
        Pair::link_failure(&pair.a_events),
        Some(NegotiationFailure::EncryptionRefused.to_string())
    );
    assert!(Pair::link_failure(&pair.b_events).is_none());
    assert_ne!(pair.a.state(), State::Opened);
    // Nothing unencrypted leaves a.
    assert_eq!(pair.a.compress(Protocol::Ipv4, b"secret"), Transmit::Drop);
    assert!(!pair.a.receive_uncompressed(Protocol::Ipv4, b"plain"));
    assert!(pair.a.receive_uncompressed(Protocol::Ipcp, b"control"));
}

#[test]
fn required_without_keys_fails_at_once() {
    let mut pair = Pair::new(
        CcpConfig::require_mppe_128(),
        CcpConfig::require_mppe_128(),
        false,
    );
    pair.start();
    assert_eq!(
        Pair::link_failure(&pair.a_events),
        Some(NegotiationFailure::EncryptionUnavailable.to_string())
    );
}

#[test]
fn encryption_no_rejects_mppe() {
    let mut pair = Pair::new(
        encryption(Encryption::No),
        encryption(Encryption::Yes),
        true,
    );
    pair.start();
    // a Rejects b's MPPE option; b goes on without it.
    assert!(
        pair.wire
            .contains(&(true, vec![4, 1, 0, 10, 0x12, 6, 0x01, 0, 0, 0x60]))
    );
    assert_eq!(pair.a.state(), State::Opened);
    let negotiated = pair.a.negotiated().unwrap();
    assert_eq!((negotiated.transmit, negotiated.receive), (None, None));
    assert_eq!(
        pair.a.compress(Protocol::Ipv4, b"x"),
        Transmit::Uncompressed
    );
    assert!(Pair::link_failure(&pair.b_events).is_none());
}

#[test]
fn optional_encryption_falls_back_to_deflate() {
    let yes = CcpConfig {
        encryption: Encryption::Yes,
        compression: true,
        ..CcpConfig::default()
    };
    let mut pair = Pair::new(yes, CcpConfig::deflate(15), false);
    pair.b = CcpSession::new(CcpConfig::deflate(15), FsmConfig::default());
    // a has keys, b does not: b rejects MPPE, a requests Deflate instead.
    pair.a.set_mppe_keys(MppeKeys::new(KEY_A, KEY_B));
    pair.start();
    let a = pair.a.negotiated().unwrap();
    assert_eq!(
        a.receive,
        Some(CompressionMethod::Deflate { window_bits: 15 })
    );
    assert!(Pair::link_failure(&pair.a_events).is_none());
}

#[test]
fn bsd_compress_and_unknown_options_are_rejected() {
    let mut fsm = Fsm::new(Ccp::new(CcpConfig::deflate(15)), FsmConfig::default());
    let now = Instant::now();
    fsm.open(now);
    fsm.up(now);
    let _ = std::iter::from_fn(|| fsm.poll_transmit()).count();
    let request = [0x15, 3, 0x2f, 0x1a, 4, 0x78, 0, 0x99, 2];
    fsm.handle_input(now, &build(Code::ConfigureRequest, 7, &request));
    let out = replies(&mut fsm);
    assert_eq!(
        out,
        vec![build(Code::ConfigureReject, 7, &[0x15, 3, 0x2f, 0x99, 2])]
    );
    // Deflate with a bad method is Nak'd to method 8; MPPC alone is Rejected (no keys).
    let request = [0x1a, 4, 0x77, 0];
    fsm.handle_input(now, &build(Code::ConfigureRequest, 8, &request));
    let out = replies(&mut fsm);
    assert_eq!(out, vec![build(Code::ConfigureNak, 8, &[0x1a, 4, 0x78, 0])]);
}

#[test]
fn mppc_and_unknown_bits_are_cleared_in_naks() {
    let mut fsm = Fsm::new(Ccp::new(encryption(Encryption::Yes)), FsmConfig::default());
    fsm.protocol_mut().set_mppe_available(true);
    let now = Instant::now();
    fsm.open(now);
    fsm.up(now);
    let _ = std::iter::from_fn(|| fsm.poll_transmit()).count();
    // Windows-style offer: MPPC + 128 + 40 + 56, stateful.
    let request = [0x12, 6, 0x00, 0, 0, 0xe1];
    fsm.handle_input(now, &build(Code::ConfigureRequest, 3, &request));
    let out = replies(&mut fsm);
    assert_eq!(
        out,
        vec![build(Code::ConfigureNak, 3, &[0x12, 6, 0x01, 0, 0, 0x40])]
    );
}

/// Send `count` random datagrams from a to b and back, checking each one arrives intact.
/// `loss` in 1/1000 drops 0x00FD packets on the way (reset handling must recover).
fn round_trips(pair: &mut Pair, count: usize, loss: u64) -> (usize, usize) {
    let mut rng = Rng::new(0x5eed_1234_abcd_0001);
    let mut delivered = 0;
    let mut dropped = 0;
    for i in 0..count {
        let data = rng.payload();
        let (protocol, payload) = if i % 7 == 0 {
            (Protocol::Ipv6, ipv6_datagram(&data))
        } else {
            (Protocol::Ipv4, ipv4_datagram(&data))
        };
        let a_to_b = i % 2 == 0;
        let (tx, rx) = if a_to_b {
            (&mut pair.a, &mut pair.b)
        } else {
            (&mut pair.b, &mut pair.a)
        };
        match tx.compress(protocol, &payload) {
            Transmit::Compressed(info) => {
                if loss > 0 && rng.below(1000) < loss {
                    dropped += 1;
                    continue;
                }
                match rx.decompress(pair.now, &info) {
                    Ok(got) => {
                        assert_eq!(got, (protocol, payload), "datagram {i}");
                        delivered += 1;
                    }
                    Err(error) => {
                        assert!(loss > 0 || dropped > 0, "datagram {i}: {error}");
                    }
                }
            }
            Transmit::Uncompressed => {
                if rx.receive_uncompressed(protocol, &payload) {
                    delivered += 1;
                }
            }
            Transmit::Drop => panic!("datagram {i} dropped"),
        }
        pair.run();
    }
    (delivered, dropped)
}

#[test]
fn stateless_mppe_catches_up_after_losses() {
    let mut pair = Pair::new(
        CcpConfig::require_mppe_128(),
        CcpConfig::require_mppe_128(),
        true,
    );
    pair.start();
    let (delivered, dropped) = round_trips(&mut pair, 400, 100);
    assert!(dropped > 20);
    // Stateless: every packet that arrives is decrypted, no Reset-Request needed.
    assert_eq!(delivered + dropped, 400);
    assert!(
        !pair
            .wire
            .iter()
            .any(|(_, p)| p[0] == Code::ResetRequest.number())
    );
}

/// 4,096 packets lost in a row (the 0.2 s stall during a flood): the 12-bit coherency
/// count wraps and stateless MPPE keys fall out of step for good. The receiver notices (every
/// packet decrypts to garbage), negotiates CCP again, and traffic flows again.
#[test]
fn stateless_mppe_renegotiates_after_the_count_wrapped() {
    let mut pair = Pair::new(
        CcpConfig::require_mppe_128(),
        CcpConfig::require_mppe_128(),
        true,
    );
    pair.start();
    let datagram = |n: u32| ipv4_datagram(&n.to_be_bytes());
    let send = |pair: &mut Pair, n: u32| -> Result<(Protocol, Vec<u8>), CcpError> {
        let Transmit::Compressed(info) = pair.a.compress(Protocol::Ipv4, &datagram(n)) else {
            panic!("not encrypted");
        };
        let result = pair.b.decompress(pair.now, &info);
        pair.run();
        result
    };
    assert!(send(&mut pair, 0).is_ok());
    for n in 1..=4096 {
        // Lost on the way.
        let _ = pair.a.compress(Protocol::Ipv4, &datagram(n));
    }
    let mut failures = 0;
    let mut recovered_at = None;
    for n in 4097..4200 {
        match send(&mut pair, n) {
            Ok(got) => {
                assert_eq!(
                    got,
                    (Protocol::Ipv4, datagram(n)),
                    "nothing garbled is delivered"
                );
                recovered_at.get_or_insert(n);
            }
            Err(error) => {
                assert!(matches!(
                    error,
                    CcpError::Undecryptable { .. } | CcpError::NotNegotiated
                ));
                failures += 1;
            }
        }
    }
    assert!(recovered_at.is_some(), "traffic flows again");
    assert!(failures <= 3, "{failures} packets lost after the wrap");
    assert_eq!(pair.b.renegotiations(), 1);
    assert!(Pair::link_failure(&pair.b_events).is_none());
    assert!(
        pair.wire
            .iter()
            .any(|(from_a, p)| !from_a && p[0] == Code::ConfigureRequest.number()),
        "the receiver sent a fresh Configure-Request"
    );
}

#[test]
fn stateful_mppe_resynchronises_with_reset_request() {
    let config = CcpConfig {
        encryption: Encryption::Required,
        mppe_stateful: true,
        mppe_40: false,
        ..CcpConfig::default()
    };
    let mut pair = Pair::new(config.clone(), config, true);
    pair.start();
    let wire_before = pair.wire.len();
    let (delivered, dropped) = round_trips(&mut pair, 1000, 50);
    assert!(dropped > 10);
    let resets: Vec<_> = pair.wire[wire_before..]
        .iter()
        .filter(|(_, p)| p[0] == Code::ResetRequest.number())
        .collect();
    let acks = pair.wire[wire_before..]
        .iter()
        .filter(|(_, p)| p[0] == Code::ResetAck.number())
        .count();
    assert!(!resets.is_empty());
    assert_eq!(resets.len(), acks);
    // Each loss costs the packet lost and the ones up to the resynchronisation, no more.
    assert!(delivered > 1000 - 3 * dropped, "{delivered} {dropped}");
    // After the dust settles, everything flows again.
    settle(&mut pair);
    round_trips(&mut pair, 50, 0);
}

#[test]
fn deflate_resets_after_losses() {
    let mut pair = Pair::new(CcpConfig::deflate(15), CcpConfig::deflate(15), false);
    pair.start();
    let (delivered, dropped) = round_trips(&mut pair, 1000, 50);
    assert!(dropped > 10);
    assert!(delivered > 1000 - 3 * dropped, "{delivered} {dropped}");
    assert!(
        pair.wire
            .iter()
            .any(|(_, p)| p[0] == Code::ResetAck.number())
    );
    settle(&mut pair);
    round_trips(&mut pair, 50, 0);
}

/// One datagram each way whose fate is not checked: a loss at the very end of a lossy run is
/// noticed (and the Reset-Request exchanged) here.
fn settle(pair: &mut Pair) {
    for _ in 0..2 {
        for a_to_b in [true, false] {
            let (tx, rx) = if a_to_b {
                (&mut pair.a, &mut pair.b)
            } else {
                (&mut pair.b, &mut pair.a)
            };
            match tx.compress(Protocol::Ipv4, b"settle settle settle settle") {
                Transmit::Compressed(info) => {
                    let _ = rx.decompress(pair.now, &info);
                }
                Transmit::Uncompressed => {
                    rx.receive_uncompressed(Protocol::Ipv4, b"settle settle settle settle");
                }
                Transmit::Drop => {}
            }
            pair.run();
        }
    }
}

#[test]
fn reset_request_waits_for_its_ack_and_repeats_once() {
    let mut pair = Pair::new(CcpConfig::deflate(15), CcpConfig::deflate(15), false);
    pair.start();
    let t0 = pair.now;
    let first = pair.a.compress(Protocol::Ipv4, &[1; 200]);
    let second = pair.a.compress(Protocol::Ipv4, &[2; 200]);
    let (Transmit::Compressed(_), Transmit::Compressed(second)) = (first, second) else {
        panic!("not compressed");
    };
    assert!(matches!(
        pair.b.decompress(t0, &second),
        Err(CcpError::SequenceMismatch { .. })
    ));
    assert_eq!(pair.b.decompress(t0, &second), Err(CcpError::Discarding));
    let sent: Vec<_> = std::iter::from_fn(|| pair.b.poll_transmit()).collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0][0], Code::ResetRequest.number());
    assert_eq!(pair.b.poll_timeout(), Some(t0 + Duration::from_secs(1)));
    // The Reset-Request is lost; the timer repeats it once, with the same identifier.
    pair.b.handle_timeout(t0 + Duration::from_secs(1));
    let again: Vec<_> = std::iter::from_fn(|| pair.b.poll_transmit()).collect();
    assert_eq!(again, sent);
    pair.b.handle_timeout(t0 + Duration::from_secs(2));
    assert!(pair.b.poll_transmit().is_none());
    assert_eq!(pair.b.poll_timeout(), None);
}

#[test]
fn reordered_duplicated_and_corrupted_packets() {
    let mut pair = Pair::new(
        CcpConfig::require_mppe_128(),
        CcpConfig::require_mppe_128(),
        true,
    );
    pair.start();
    let mut packets = Vec::new();
    for i in 0..20u8 {
        let Transmit::Compressed(info) = pair.a.compress(Protocol::Ipv4, &ipv4_datagram(&[i; 64]))
        else {
            panic!();
        };
        packets.push(info);
    }
    let now = pair.now;
    // In order with a swap: the late one is dropped (RFC 3078 §8.1), the others decrypt.
    assert_eq!(
        pair.b.decompress(now, &packets[1]).unwrap().1,
        ipv4_datagram(&[1; 64])
    );
    assert!(matches!(
        pair.b.decompress(now, &packets[0]),
        Err(CcpError::StalePacket { .. })
    ));
    assert!(matches!(
        pair.b.decompress(now, &packets[1]),
        Err(CcpError::StalePacket { .. })
    ));
    assert_eq!(
        pair.b.decompress(now, &packets[2]).unwrap().1,
        ipv4_datagram(&[2; 64])
    );
    // Corrupted ciphertext decrypts to garbage (MPPE has no integrity check): never a panic,
    // and a corrupted IP header is never delivered.
    let mut rng = Rng::new(42);
    for packet in &packets[3..] {
        let mut bad = packet.clone();
        for _ in 0..3 {
            let at = rng.below(bad.len() as u64) as usize;
            bad[at] ^= 1 << rng.below(8);
        }
        let _ = pair.b.decompress(now, &bad);
    }
}

#[test]
fn arbitrary_packets_into_the_automaton() {
    let mut rng = Rng::new(7);
    let configs = [
        CcpConfig::require_mppe_128(),
        CcpConfig::deflate(12),
        encryption(Encryption::Yes),
    ];
    for config in configs {
        let mut session = CcpSession::new(config, FsmConfig::default());
        session.set_mppe_keys(MppeKeys::new(KEY_A, KEY_B));
        let now = Instant::now();
        session.open(now);
        session.up(now);
        for _ in 0..3000 {
            let len = rng.below(24) as usize;
            let mut p: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if len >= 4 {
                p[0] = 1 + (rng.below(16) as u8);
                p[2] = 0;
                p[3] = len as u8;
            }
            session.handle_input(now, &p);
            let _ = std::iter::from_fn(|| session.poll_transmit()).count();
            let _ = std::iter::from_fn(|| session.poll_event()).count();
            let _ = session.decompress(now, &p);
            let _ = session.compress(Protocol::Ipv4, &p);
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    #[test]
    fn transforms_round_trip(
        payloads in proptest::collection::vec(
            proptest::collection::vec(proptest::num::u8::ANY, 0..600), 1..20),
        mode in 0u8..4,
    ) {
        use crate::{Compressor, Decompressor};
        let method = match mode {
            0 => CompressionMethod::Mppe(MppeParams { key_length: MppeKeyLength::Bits128, stateful: false }),
            1 => CompressionMethod::Mppe(MppeParams { key_length: MppeKeyLength::Bits40, stateful: true }),
            2 => CompressionMethod::Mppe(MppeParams { key_length: MppeKeyLength::Bits56, stateful: false }),
            _ => CompressionMethod::Deflate { window_bits: 15 },
        };
        let keys = MppeKeys::new(KEY_A, KEY_A);
        let mut tx = Compressor::new(method, Some(&keys)).unwrap();
        let mut rx = Decompressor::new(method, Some(&keys)).unwrap();
        for data in payloads {
            let payload = ipv4_datagram(&data);
            match tx.compress(Protocol::Ipv4, &payload) {
                Some(info) => proptest::prop_assert_eq!(
                    rx.decompress(&info).unwrap(), (Protocol::Ipv4, payload)),
                None => rx.add_uncompressed(Protocol::Ipv4, &payload),
            }
        }
    }

    #[test]
    fn decompressors_never_panic(
        packets in proptest::collection::vec(
            proptest::collection::vec(proptest::num::u8::ANY, 0..80), 1..30),
        mode in 0u8..3,
    ) {
        use crate::Decompressor;
        let method = match mode {
            0 => CompressionMethod::Mppe(MppeParams { key_length: MppeKeyLength::Bits128, stateful: false }),
            1 => CompressionMethod::Mppe(MppeParams { key_length: MppeKeyLength::Bits40, stateful: true }),
            _ => CompressionMethod::Deflate { window_bits: 15 },
        };
        let keys = MppeKeys::new(KEY_A, KEY_A);
        let mut rx = Decompressor::new(method, Some(&keys)).unwrap();
        for packet in packets {
            let _ = rx.decompress(&packet);
            rx.add_uncompressed(Protocol::Ipv4, &packet);
            rx.reset();
        }
    }

    #[test]
    fn ccp_automaton_never_panics(
        packets in proptest::collection::vec(
            proptest::collection::vec(proptest::num::u8::ANY, 0..40), 1..40),
    ) {
        let mut session = CcpSession::new(CcpConfig::require_mppe_128(), FsmConfig::default());
        session.set_mppe_keys(MppeKeys::new(KEY_A, KEY_B));
        let now = Instant::now();
        session.open(now);
        session.up(now);
        for packet in packets {
            session.handle_input(now, &packet);
            let _ = std::iter::from_fn(|| session.poll_transmit()).count();
            let _ = std::iter::from_fn(|| session.poll_event()).count();
        }
    }
}

/// An automaton with `config` (and MPPE keys), Up, its first Configure-Request drained.
fn started(config: CcpConfig) -> (Fsm<Ccp>, Instant) {
    let mut fsm = Fsm::new(Ccp::new(config), FsmConfig::default());
    fsm.protocol_mut().set_mppe_available(true);
    let now = Instant::now();
    fsm.open(now);
    fsm.up(now);
    let _ = std::iter::from_fn(|| fsm.poll_transmit()).count();
    (fsm, now)
}

fn answer(fsm: &mut Fsm<Ccp>, now: Instant, id: u8, options: &[u8]) -> Vec<Vec<u8>> {
    fsm.handle_input(now, &build(Code::ConfigureRequest, id, options));
    replies(fsm)
}

/// What went out except our own Configure-Requests (ours is sent again when the peer's first
/// request arrives before any answer to it).
fn replies(fsm: &mut Fsm<Ccp>) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| fsm.poll_transmit())
        .filter(|p| p[0] != 1)
        .collect()
}

#[test]
fn pppd_default_offer_against_deflate() {
    let (mut fsm, now) = started(CcpConfig::deflate(15));
    // pppd's default request: BSD-Compress 15, Deflate 15, Deflate (draft) 15.
    let offer = [0x15, 3, 0x2f, 0x1a, 4, 0x78, 0, 0x18, 4, 0x78, 0];
    assert_eq!(
        answer(&mut fsm, now, 1, &offer),
        vec![build(Code::ConfigureReject, 1, &[0x15, 3, 0x2f])]
    );
    assert_eq!(
        answer(&mut fsm, now, 2, &offer[3..]),
        vec![build(Code::ConfigureAck, 2, &offer[3..])]
    );
}

#[test]
fn optional_encryption_suggests_mppe_once() {
    let (mut fsm, now) = started(encryption(Encryption::Yes));
    assert_eq!(
        answer(&mut fsm, now, 1, &[]),
        vec![build(Code::ConfigureNak, 1, &[0x12, 6, 0x01, 0, 0, 0x60])]
    );
    assert_eq!(
        answer(&mut fsm, now, 2, &[]),
        vec![build(Code::ConfigureAck, 2, &[])]
    );
    // Required keeps asking, then fails.
    let (mut fsm, now) = started(CcpConfig::require_mppe_128());
    for id in 0..5 {
        let out = answer(&mut fsm, now, id, &[]);
        assert_eq!(out[0][0], Code::ConfigureNak.number());
    }
    let out = answer(&mut fsm, now, 9, &[]);
    assert_eq!(out[0][0], Code::ConfigureReject.number());
    assert_eq!(
        fsm.protocol().failure(),
        Some(&NegotiationFailure::EncryptionNotAgreed)
    );
}

#[test]
fn reset_request_in_opened_is_acked_and_resets_the_compressor() {
    let mut pair = Pair::new(CcpConfig::deflate(15), CcpConfig::deflate(15), false);
    pair.start();
    let _ = pair.a.compress(Protocol::Ipv4, &[5; 300]);
    let Transmit::Compressed(before) = pair.a.compress(Protocol::Ipv4, &[5; 300]) else {
        panic!()
    };
    assert_eq!(&before[..2], &[0, 1]);
    pair.a
        .handle_input(pair.now, &build(Code::ResetRequest, 0x33, &[]));
    assert_eq!(
        pair.a.poll_transmit(),
        Some(build(Code::ResetAck, 0x33, &[]))
    );
    let Transmit::Compressed(after) = pair.a.compress(Protocol::Ipv4, &[5; 300]) else {
        panic!()
    };
    assert_eq!(&after[..2], &[0, 0]);
}

#[test]
fn pppd_style_log_lines() {
    let describe = |packet: &[u8]| {
        ppp_lcp::describe_packet("CCP", packet, &|o| crate::describe_ccp_options(o))
    };
    assert_eq!(
        describe(&build(
            Code::ConfigureRequest,
            1,
            &[0x12, 6, 0x01, 0, 0, 0x40]
        )),
        "[CCP ConfReq id=0x1 <mppe +H -M +S -L -D -C>]"
    );
    assert_eq!(
        describe(&build(Code::ConfigureAck, 2, &[0x1a, 4, 0x78, 0])),
        "[CCP ConfAck id=0x2 <deflate 15>]"
    );
    assert_eq!(
        describe(&build(Code::ResetRequest, 3, &[])),
        "[CCP ResetReq id=0x3]"
    );
}

#[test]
fn protocol_reject_of_ccp_with_required_encryption_fails_the_link() {
    let mut session = CcpSession::new(CcpConfig::require_mppe_128(), FsmConfig::default());
    session.set_mppe_keys(MppeKeys::new(KEY_A, KEY_B));
    let now = Instant::now();
    session.open(now);
    session.up(now);
    let _ = std::iter::from_fn(|| session.poll_transmit()).count();
    session.handle_protocol_reject(now);
    let events: Vec<_> = std::iter::from_fn(|| session.poll_event()).collect();
    assert!(events.contains(&CcpEvent::LinkFailure {
        reason: CcpFailure::Finished(FinishReason::ProtocolRejected)
    }));
    // Without required encryption the link goes on.
    let mut session = CcpSession::new(CcpConfig::deflate(15), FsmConfig::default());
    session.open(now);
    session.up(now);
    session.handle_protocol_reject(now);
    let events: Vec<_> = std::iter::from_fn(|| session.poll_event()).collect();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, CcpEvent::LinkFailure { .. }))
    );
    assert_eq!(
        session.compress(Protocol::Ipv4, b"x"),
        Transmit::Uncompressed
    );
}

#[test]
fn owner_close_is_not_a_link_failure() {
    let mut session = CcpSession::new(CcpConfig::require_mppe_128(), FsmConfig::default());
    session.set_mppe_keys(MppeKeys::new(KEY_A, KEY_B));
    let mut now = Instant::now();
    session.open(now);
    session.up(now);
    session.close(now, CloseReason::from("link going down"));
    while let Some(deadline) = session.poll_timeout() {
        now = deadline;
        session.handle_timeout(now);
    }
    let events: Vec<_> = std::iter::from_fn(|| session.poll_event()).collect();
    assert!(events.contains(&CcpEvent::Finished {
        reason: FinishReason::Closed(CloseReason::from("link going down"))
    }));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, CcpEvent::LinkFailure { .. }))
    );
}
