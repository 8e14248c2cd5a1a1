//! The `ccp_decompress` harness, shared by the fuzz target and the seed generator
//! (`tests/fuzz_seeds`).
//!
//! Input: `[selector, packet, 0xA5, packet, ...]`: 0x00FD information fields into one
//! decompressor. `selector % 4`: 0 Deflate (window `8 + (selector >> 4) % 8` bits), 1 stateless
//! MPPE-128, 2 stateful MPPE-40, 3 stateless MPPE-56; the MPPE receive start key is 16 × 0x22.

// The seed generator uses parts the fuzz target does not.
#![allow(dead_code)]

use ppp_ccp::{CompressionMethod, Decompressor, MppeKeyLength, MppeKeys, MppeParams};

/// The separator of packets in the input.
pub const SEPARATOR: u8 = 0xA5;

/// The keys of the decompressor (send, receive); a compressor for its input sends with the
/// receive key.
pub fn keys() -> MppeKeys {
    MppeKeys::new([0x11; 16], [0x22; 16])
}

/// The method a selector picks.
pub fn method(selector: u8) -> CompressionMethod {
    match selector % 4 {
        0 => CompressionMethod::Deflate {
            window_bits: 8 + (selector >> 4) % 8,
        },
        1 => CompressionMethod::Mppe(MppeParams {
            key_length: MppeKeyLength::Bits128,
            stateful: false,
        }),
        2 => CompressionMethod::Mppe(MppeParams {
            key_length: MppeKeyLength::Bits40,
            stateful: true,
        }),
        _ => CompressionMethod::Mppe(MppeParams {
            key_length: MppeKeyLength::Bits56,
            stateful: false,
        }),
    }
}

/// The whole target: typed errors, never a panic or an unbounded allocation. Returns the
/// datagrams that came out.
pub fn run(data: &[u8]) -> Vec<Vec<u8>> {
    let Some((&selector, rest)) = data.split_first() else {
        return Vec::new();
    };
    let Ok(mut decompressor) = Decompressor::new(method(selector), Some(&keys())) else {
        return Vec::new();
    };
    let mut datagrams = Vec::new();
    for packet in rest.split(|b| *b == SEPARATOR) {
        if let Ok((_, datagram)) = decompressor.decompress(packet) {
            assert!(datagram.len() <= 65_536);
            datagrams.push(datagram);
        }
    }
    datagrams
}
