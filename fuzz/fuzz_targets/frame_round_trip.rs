//! Any payload under any transmit configuration encodes to a stream that decodes to it, whole and
//! chunked; every implementation (`Kernels::Auto`: the SIMD kernels this CPU picks, each lower SIMD
//! tier it has, forced, `Portable`, `Reference`) writes the same bytes and decodes the same frames;
//! and the FCS and scan fast paths (SIMD and portable) agree with the byte-at-a-time references.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ppp_frame::fcs::{self, bytewise};
use ppp_frame::{
    AsyncDecoder, AsyncEncoder, ByteSet, DecoderConfig, EncoderConfig, FcsKind, Kernels, Protocol,
};

/// The reference first, then everything compared with it: the CPU's pick, the portable code and
/// every SIMD tier (SSE, AVX2, AVX2 with VPCLMULQDQ, AVX-512; each clamped to what the CPU has).
const KERNELS: [Kernels; 7] = [
    Kernels::Reference,
    Kernels::Auto,
    Kernels::Portable,
    Kernels::SimdUpTo(1),
    Kernels::SimdUpTo(2),
    Kernels::SimdUpTo(3),
    Kernels::SimdUpTo(4),
];

fuzz_target!(|data: &[u8]| {
    let Some((&[a, b, c, d, e, f, g], payload)) = data.split_first_chunk::<7>() else {
        return;
    };
    let init16 = u16::from_le_bytes([b, c]);
    let init32 = u32::from_le_bytes([b, c, d, e]);
    let reference16 = bytewise::fcs16_update(init16, payload);
    let reference32 = bytewise::fcs32_update(init32, payload);
    assert_eq!(fcs::fcs16_update(init16, payload), reference16);
    assert_eq!(fcs::fcs32_update(init32, payload), reference32);
    // The portable (safe, no SIMD) paths too, whatever the CPU has.
    assert_eq!(fcs::portable::fcs16_update(init16, payload), reference16);
    assert_eq!(fcs::portable::fcs32_update(init32, payload), reference32);
    let set = ByteSet::EMPTY.with(f).with(g).with_accm(init32);
    let naive = payload
        .iter()
        .position(|x| set.contains(*x))
        .unwrap_or(payload.len());
    assert_eq!(ppp_frame::scan::find_first(payload, &set), naive);
    assert_eq!(ppp_frame::scan::find_first_portable(payload, &set), naive);
    // Sets of one to three bytes (ACCM 0 is {0x7D, 0x7E}) take other searches than the above.
    let small = ByteSet::EMPTY.with(f).with(g);
    let naive = payload
        .iter()
        .position(|x| small.contains(*x))
        .unwrap_or(payload.len());
    assert_eq!(ppp_frame::scan::find_first(payload, &small), naive);
    assert_eq!(ppp_frame::scan::find_first_portable(payload, &small), naive);

    let fcs = match a % 3 {
        0 => FcsKind::Fcs16,
        1 => FcsKind::Fcs32,
        _ => FcsKind::Null,
    };
    // The common ACCMs often, any ACCM otherwise.
    let accm = match a >> 6 {
        0 => 0,
        1 => 0xFFFF_FFFF,
        _ => init32,
    };
    let config = EncoderConfig {
        accm,
        extra_escapes: ByteSet::EMPTY.with(f),
        acfc: a & 0x10 != 0,
        pfc: a & 0x20 != 0,
        fcs,
    };
    let protocol = Protocol::from(u16::from_be_bytes([g & 0xFE, f | 1]));
    // Two frames back to back (the second shares the first one's closing flag), the second an
    // LCP packet when `g` says so (LCP codes 1 to 7 ignore the ACCM).
    let second = if g & 1 != 0 { Protocol::Lcp } else { protocol };
    let half = &payload[..payload.len() / 2];
    let mut wires = Vec::new();
    for kernels in KERNELS {
        let mut encoder = AsyncEncoder::new(config.clone()).with_kernels(kernels);
        let mut wire = Vec::new();
        encoder.encode(protocol, payload, &mut wire);
        encoder.encode(second, half, &mut wire);
        // The first frame alone, and into a slice of exactly its length and one byte short.
        let mut alone = Vec::new();
        AsyncEncoder::new(config.clone())
            .with_kernels(kernels)
            .encode(protocol, payload, &mut alone);
        let first_len = alone.len();
        assert_eq!(&wire[..first_len], &alone[..]);
        let mut exact = vec![0u8; first_len];
        let n = AsyncEncoder::new(config.clone())
            .with_kernels(kernels)
            .encode_into(protocol, payload, &mut exact)
            .expect("an exact buffer is large enough");
        assert_eq!(&exact[..n], &wire[..first_len]);
        if first_len > 0 {
            let mut short = vec![0u8; first_len - 1];
            assert!(
                AsyncEncoder::new(config.clone())
                    .with_kernels(kernels)
                    .encode_into(protocol, payload, &mut short)
                    .is_err()
            );
        }
        wires.push(wire);
    }
    for (kernels, wire) in KERNELS.iter().zip(&wires) {
        assert_eq!(wire, &wires[0], "{kernels:?} and Reference encoders differ");
    }
    let wire = &wires[0];

    let chunk = usize::from(a >> 3 & 7) + 1;
    let expected = vec![(protocol, payload.to_vec()), (second, half.to_vec())];
    for kernels in KERNELS {
        let mut decoder = AsyncDecoder::new(DecoderConfig {
            accm,
            fcs,
            max_frame_len: payload.len() + 8,
        })
        .with_kernels(kernels);
        let mut got = Vec::new();
        for piece in wire.chunks(chunk) {
            let mut input = piece;
            while let Some(result) = decoder.decode(&mut input) {
                let frame = result.expect("an undamaged frame");
                got.push((frame.protocol, frame.payload.to_vec()));
            }
        }
        assert_eq!(got, expected, "{kernels:?}");
    }
});
