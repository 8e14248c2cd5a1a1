//! Throughput of the CCP transforms on 1400-byte IPv4 packets: MPPE-128 stateless (a new key per
//! packet), MPPE-128 stateful (a new key every 256 packets) and Deflate 15, compressing and
//! decompressing. Decompression runs over a prepared sequence of packets in order, with a fresh
//! decompressor for each pass, since both MPPE modes track the coherency count.
//!
//! `cargo bench --bench ccp`
// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ppp_ccp::{CompressionMethod, Compressor, Decompressor, MppeKeyLength, MppeKeys, MppeParams};
use ppp_frame::Protocol;

const PACKET_LEN: usize = 1400;
/// Packets per decompression pass (stateless MPPE's coherency count wraps at 4096).
const PASS: usize = 1024;
const KEY: [u8; 16] = [
    0x8B, 0x7C, 0xDC, 0x14, 0x9B, 0x99, 0x3A, 0x1B, 0xA1, 0x18, 0xCB, 0x15, 0x3F, 0x56, 0xDC, 0xCB,
];

/// An IPv4 packet with text-like content (what Deflate sees in practice), varied per packet.
fn packet(n: usize) -> Vec<u8> {
    let mut p = vec![
        0x45, 0x00, 0x05, 0x78, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 192, 0, 2, 2, 198,
        51, 100, 34,
    ];
    let text = format!("GET /index-{n}.html HTTP/1.1\r\nHost: example.net\r\nAccept: */*\r\n");
    while p.len() < PACKET_LEN {
        p.extend_from_slice(text.as_bytes());
    }
    p.truncate(PACKET_LEN);
    // A correct header checksum: MPPE only delivers what decrypts to a plausible datagram.
    let sum = p[..20]
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], pair[1]])))
        .sum::<u32>();
    let folded = (sum & 0xFFFF) + (sum >> 16);
    let folded = (folded & 0xFFFF) + (folded >> 16);
    p[10..12].copy_from_slice(&(!(folded as u16)).to_be_bytes());
    p
}

fn methods() -> [(&'static str, CompressionMethod); 3] {
    let mppe = |stateful| {
        CompressionMethod::Mppe(MppeParams {
            key_length: MppeKeyLength::Bits128,
            stateful,
        })
    };
    [
        ("mppe128-stateless", mppe(false)),
        ("mppe128-stateful", mppe(true)),
        ("deflate15", CompressionMethod::Deflate { window_bits: 15 }),
    ]
}

fn bench_ccp(c: &mut Criterion) {
    let keys = MppeKeys::new(KEY, KEY);
    let packets: Vec<Vec<u8>> = (0..PASS).map(packet).collect();
    for (name, method) in methods() {
        let mut group = c.benchmark_group(format!("ccp/{name}"));
        group.throughput(Throughput::Bytes(PACKET_LEN as u64));
        let mut compressor = Compressor::new(method, Some(&keys)).expect("compressor");
        let mut n = 0;
        group.bench_function("compress", |b| {
            b.iter(|| {
                n = (n + 1) % PASS;
                compressor.compress(Protocol::Ipv4, black_box(&packets[n]))
            })
        });
        let mut compressor = Compressor::new(method, Some(&keys)).expect("compressor");
        let wire: Vec<Vec<u8>> = packets
            .iter()
            .map(|p| compressor.compress(Protocol::Ipv4, p).expect("transformed"))
            .collect();
        group.throughput(Throughput::Bytes((PACKET_LEN * PASS) as u64));
        group.bench_function(format!("decompress-{PASS}-packets"), |b| {
            b.iter_batched(
                || Decompressor::new(method, Some(&keys)).expect("decompressor"),
                |mut decompressor| {
                    for info in &wire {
                        black_box(decompressor.decompress(info).expect("decompressed"));
                    }
                },
                BatchSize::LargeInput,
            )
        });
        group.finish();
    }
}

criterion_group!(benches, bench_ccp);
criterion_main!(benches);
