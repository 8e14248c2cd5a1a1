//! Any payload under any transmit configuration encodes to a stream that decodes to it, whole and
//! chunked, and the FCS and scan fast paths (SIMD and portable) agree with the byte-at-a-time
//! references.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ppp_frame::fcs::{self, bytewise};
use ppp_frame::{AsyncDecoder, AsyncEncoder, ByteSet, DecoderConfig, EncoderConfig, FcsKind, Protocol};

fuzz_target!(|data: &[u8]| {
    let Some((&[a, b, c, d, e, f, g], payload)) = data.split_first_chunk::<7>() else {
        return;
    };
    assert_eq!(fcs::fcs16_update(u16::from_le_bytes([b, c]), payload), bytewise::fcs16_update(u16::from_le_bytes([b, c]), payload));
    assert_eq!(
        fcs::fcs32_update(u32::from_le_bytes([b, c, d, e]), payload),
        bytewise::fcs32_update(u32::from_le_bytes([b, c, d, e]), payload)
    );
    // The portable (safe, no SIMD) paths too, whatever the CPU has.
    assert_eq!(fcs::portable::fcs16_update(u16::from_le_bytes([b, c]), payload), bytewise::fcs16_update(u16::from_le_bytes([b, c]), payload));
    assert_eq!(
        fcs::portable::fcs32_update(u32::from_le_bytes([b, c, d, e]), payload),
        bytewise::fcs32_update(u32::from_le_bytes([b, c, d, e]), payload)
    );
    let set = ByteSet::EMPTY.with(f).with(g).with_accm(u32::from_le_bytes([b, c, d, e]));
    let naive = payload.iter().position(|x| set.contains(*x)).unwrap_or(payload.len());
    assert_eq!(ppp_frame::scan::find_first(payload, &set), naive);
    assert_eq!(ppp_frame::scan::find_first_portable(payload, &set), naive);
    // Sets of one to three bytes (ACCM 0 is {0x7D, 0x7E}) take other searches than the above.
    let small = ByteSet::EMPTY.with(f).with(g);
    let naive = payload.iter().position(|x| small.contains(*x)).unwrap_or(payload.len());
    assert_eq!(ppp_frame::scan::find_first(payload, &small), naive);
    assert_eq!(ppp_frame::scan::find_first_portable(payload, &small), naive);

    let fcs = match a % 3 {
        0 => FcsKind::Fcs16,
        1 => FcsKind::Fcs32,
        _ => FcsKind::Null,
    };
    let accm = u32::from_le_bytes([b, c, d, e]);
    let config = EncoderConfig {
        accm,
        extra_escapes: ByteSet::EMPTY.with(f),
        acfc: a & 0x10 != 0,
        pfc: a & 0x20 != 0,
        fcs,
    };
    let protocol = Protocol::from(u16::from_be_bytes([g & 0xFE, f | 1]));
    let mut wire = Vec::new();
    AsyncEncoder::new(config).encode(protocol, payload, &mut wire);
    let mut decoder = AsyncDecoder::new(DecoderConfig { accm, fcs, max_frame_len: payload.len() + 8 });
    let chunk = usize::from(a >> 6) + 1;
    let mut got = Vec::new();
    for piece in wire.chunks(chunk) {
        let mut input = piece;
        while let Some(result) = decoder.decode(&mut input) {
            let frame = result.expect("an undamaged frame");
            got.push((frame.protocol, frame.payload.to_vec()));
        }
    }
    assert_eq!(got, vec![(protocol, payload.to_vec())]);
});
