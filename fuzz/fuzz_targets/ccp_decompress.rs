//! Arbitrary 0x00FD packets into every decompressor (Deflate, stateless and stateful MPPE):
//! typed errors, never a panic or an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ppp_ccp::{CompressionMethod, Decompressor, MppeKeyLength, MppeKeys, MppeParams};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let keys = MppeKeys::new([0x11; 16], [0x22; 16]);
    let method = match selector % 4 {
        0 => CompressionMethod::Deflate { window_bits: 8 + (selector >> 4) % 8 },
        1 => CompressionMethod::Mppe(MppeParams { key_length: MppeKeyLength::Bits128, stateful: false }),
        2 => CompressionMethod::Mppe(MppeParams { key_length: MppeKeyLength::Bits40, stateful: true }),
        _ => CompressionMethod::Mppe(MppeParams { key_length: MppeKeyLength::Bits56, stateful: false }),
    };
    let Ok(mut decompressor) = Decompressor::new(method, Some(&keys)) else { return };
    for packet in rest.split(|b| *b == 0xA5) {
        if let Ok((_, datagram)) = decompressor.decompress(packet) {
            assert!(datagram.len() <= 65_536);
        }
    }
});
