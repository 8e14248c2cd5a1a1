//! Arbitrary bytes, in arbitrary chunks, into the async HDLC decoder under an arbitrary receive
//! configuration: no panic, bounded frames, every byte consumed, every implementation
//! (`Kernels::Auto`: the SIMD kernels this CPU picks, each SIMD tier it has, forced, `Portable`,
//! `Reference`) gives the same
//! results and statistics, and frames re-encode and decode to themselves. The FCS check is off
//! under `cfg(fuzzing)` so the fuzzer reaches the header code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ppp_frame::{
    AsyncDecoder, AsyncEncoder, DecoderConfig, EncoderConfig, FcsKind, FrameError, Kernels,
    Protocol, sync,
};

type Results = Vec<Result<(Protocol, Vec<u8>), FrameError>>;

fuzz_target!(|data: &[u8]| {
    let Some((&[a, b, c, d, e, f], rest)) = data.split_first_chunk::<6>() else {
        return;
    };
    let fcs = match a % 3 {
        0 => FcsKind::Fcs16,
        1 => FcsKind::Fcs32,
        _ => FcsKind::Null,
    };
    let accm = match b {
        0 => 0,
        1 => 0xFFFF_FFFF,
        _ => u32::from_le_bytes([b, c, d, e]),
    };
    let max_frame_len = usize::from(f) * 8;
    let chunk = usize::from(a / 3).max(1);
    let mut outcomes: Vec<(Results, ppp_frame::DecoderStats)> = Vec::new();
    let kernels_compared = [
        Kernels::Reference,
        Kernels::Portable,
        Kernels::Auto,
        Kernels::SimdUpTo(1),
        Kernels::SimdUpTo(2),
        Kernels::SimdUpTo(3),
        Kernels::SimdUpTo(4),
    ];
    for kernels in kernels_compared {
        let mut decoder = AsyncDecoder::new(DecoderConfig {
            accm,
            fcs,
            max_frame_len,
        })
        .with_kernels(kernels);
        let mut results: Results = Vec::new();
        for piece in rest.chunks(chunk) {
            let mut input = piece;
            while let Some(result) = decoder.decode(&mut input) {
                if let Ok(frame) = &result {
                    assert!(frame.payload.len() <= max_frame_len);
                }
                results.push(result.map(|frame| (frame.protocol, frame.payload.to_vec())));
            }
            assert!(input.is_empty());
        }
        outcomes.push((results, *decoder.stats()));
    }
    for (kernels, outcome) in kernels_compared.iter().zip(&outcomes) {
        assert_eq!(
            outcome, &outcomes[0],
            "{kernels:?} and Reference decoders differ"
        );
    }
    let frames: Vec<(Protocol, Vec<u8>)> = outcomes
        .swap_remove(0)
        .0
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    // Whatever came out goes back through the encoder and decoder unchanged.
    let mut encoder = AsyncEncoder::new(EncoderConfig {
        accm,
        fcs,
        ..EncoderConfig::default()
    });
    let mut wire = Vec::new();
    for (protocol, payload) in &frames {
        encoder.encode(*protocol, payload, &mut wire);
        let mut pppoe = Vec::new();
        sync::encode(*protocol, payload, true, &mut pppoe);
        let again = sync::decode(&pppoe).expect("our own sync frame");
        assert_eq!((again.protocol, again.payload), (*protocol, &payload[..]));
    }
    let mut decoder = AsyncDecoder::new(DecoderConfig {
        accm,
        fcs,
        max_frame_len: 1 << 20,
    });
    let mut input = &wire[..];
    let mut again = Vec::new();
    while let Some(result) = decoder.decode(&mut input) {
        let frame = result.expect("our own frame");
        again.push((frame.protocol, frame.payload.to_vec()));
    }
    assert_eq!(again, frames);
});
