//! Property tests: whatever the payloads, options and chunking, the decoder gives back exactly what
//! the encoder was given, and a corrupted frame costs only itself.

use ppp_frame::{
    AsyncDecoder, AsyncEncoder, ByteSet, DecoderConfig, EncoderConfig, FcsKind, Protocol, sync,
};
use proptest::prelude::*;

fn fcs_kind() -> impl Strategy<Value = FcsKind> {
    prop_oneof![
        Just(FcsKind::Fcs16),
        Just(FcsKind::Fcs32),
        Just(FcsKind::Null)
    ]
}

fn protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![
        Just(Protocol::Lcp),
        Just(Protocol::Ipv4),
        Just(Protocol::Ipv6),
        Just(Protocol::Ipcp),
        Just(Protocol::Chap),
        // Any valid protocol number: high byte even, low byte odd.
        (0u16..0x8000).prop_map(|n| Protocol::from(((n << 1) & 0xFE00) | ((n << 1) & 0x00FE) | 1)),
    ]
}

fn frames() -> impl Strategy<Value = Vec<(Protocol, Vec<u8>)>> {
    prop::collection::vec(
        (protocol(), prop::collection::vec(any::<u8>(), 0..600)),
        1..8,
    )
}

/// Decodes `wire` fed in chunks whose sizes cycle through `chunks`.
fn decode_chunked(
    decoder: &mut AsyncDecoder,
    wire: &[u8],
    chunks: &[usize],
) -> Vec<(Protocol, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = wire;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let size = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
        let (mut chunk, tail) = rest.split_at(size);
        rest = tail;
        while let Some(result) = decoder.decode(&mut chunk) {
            if let Ok(frame) = result {
                out.push((frame.protocol, frame.payload.to_vec()));
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn encode_then_decode_gives_back_every_frame(
        frames in frames(),
        accm in prop_oneof![Just(0u32), Just(0xFFFF_FFFF), any::<u32>()],
        extra in prop::collection::vec(any::<u8>(), 0..4),
        acfc in any::<bool>(),
        pfc in any::<bool>(),
        fcs in fcs_kind(),
        idle_between in any::<bool>(),
        chunks in prop::collection::vec(1usize..2000, 1..6),
    ) {
        let extra_escapes = extra.iter().fold(ByteSet::EMPTY, |set, b| set.with(*b));
        let mut encoder = AsyncEncoder::new(EncoderConfig { accm, extra_escapes, acfc, pfc, fcs });
        let mut wire = Vec::new();
        for (protocol, payload) in &frames {
            encoder.encode(*protocol, payload, &mut wire);
            if idle_between {
                encoder.line_idle();
            }
        }
        // Every byte the peer asked for is escaped.
        for window in wire.windows(2) {
            if window[0] != 0x7D && window[1] < 0x20 {
                prop_assert!(accm & (1 << window[1]) == 0 || window[1] == 0x7E);
            }
        }
        // The receiver's ACCM may cover more than the sender escapes only where no such bytes
        // travel unescaped; here the receive ACCM is exactly what the sender escapes.
        let mut decoder = AsyncDecoder::new(DecoderConfig { accm, fcs, max_frame_len: 4096 });
        let decoded = decode_chunked(&mut decoder, &wire, &chunks);
        prop_assert_eq!(&decoded, &frames);
        prop_assert_eq!(decoder.stats().frames, frames.len() as u64);
    }

    #[test]
    fn corruption_loses_only_the_damaged_frame(
        frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..300), 3..8),
        victim in any::<prop::sample::Index>(),
        offset in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        fcs in prop_oneof![Just(FcsKind::Fcs16), Just(FcsKind::Fcs32)],
        chunks in prop::collection::vec(1usize..700, 1..6),
    ) {
        let mut encoder = AsyncEncoder::new(EncoderConfig { accm: 0, fcs, ..EncoderConfig::default() });
        let mut wire = Vec::new();
        let mut spans = Vec::new();
        for payload in &frames {
            let start = wire.len();
            encoder.encode(Protocol::Ipv4, payload, &mut wire);
            spans.push(start..wire.len());
        }
        let victim = victim.index(frames.len());
        // Damage one byte strictly inside the victim's flags, and keep it from becoming a flag or
        // an escape, which would change framing rather than content.
        let span = spans[victim].clone();
        let inner = (span.start + 1)..(span.end - 1);
        let at = inner.start + offset.index(inner.len());
        let damaged = wire[at] ^ flip;
        prop_assume!(damaged != 0x7E && damaged != 0x7D && wire[at] != 0x7D);
        wire[at] = damaged;
        let mut decoder = AsyncDecoder::new(DecoderConfig { accm: 0, fcs, max_frame_len: 4096 });
        let decoded = decode_chunked(&mut decoder, &wire, &chunks);
        let expected: Vec<_> = frames
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != victim)
            .map(|(_, p)| (Protocol::Ipv4, p.clone()))
            .collect();
        prop_assert_eq!(decoded, expected);
        prop_assert_eq!(decoder.stats().bad_fcs, 1);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..4000),
        accm in any::<u32>(),
        fcs in fcs_kind(),
        max_frame_len in 0usize..2000,
    ) {
        let mut decoder = AsyncDecoder::new(DecoderConfig { accm, fcs, max_frame_len });
        let mut input = &bytes[..];
        while let Some(result) = decoder.decode(&mut input) {
            if let Ok(frame) = result {
                prop_assert!(frame.payload.len() <= max_frame_len);
            }
        }
        prop_assert!(input.is_empty());
    }

    #[test]
    fn sync_round_trip(protocol in protocol(), payload in prop::collection::vec(any::<u8>(), 0..100), pfc in any::<bool>()) {
        let mut frame = Vec::new();
        sync::encode(protocol, &payload, pfc, &mut frame);
        let decoded = sync::decode(&frame).unwrap();
        prop_assert_eq!(decoded.protocol, protocol);
        prop_assert_eq!(decoded.payload, &payload[..]);
        prop_assert_eq!(decoded.protocol_compressed, pfc && protocol.is_compressible());
    }

    #[test]
    fn encode_into_matches_encode(payload in prop::collection::vec(any::<u8>(), 0..300), accm in any::<u32>(), spare in 0usize..8) {
        let config = EncoderConfig { accm, ..EncoderConfig::default() };
        let mut expected = Vec::new();
        AsyncEncoder::new(config.clone()).encode(Protocol::Ipv4, &payload, &mut expected);
        let mut buf = vec![0u8; expected.len() + spare];
        let n = AsyncEncoder::new(config.clone()).encode_into(Protocol::Ipv4, &payload, &mut buf).unwrap();
        prop_assert_eq!(&buf[..n], &expected[..]);
        if expected.len() > 1 {
            let mut short = vec![0u8; expected.len() - 1];
            prop_assert!(AsyncEncoder::new(config).encode_into(Protocol::Ipv4, &payload, &mut short).is_err());
        }
    }
}
