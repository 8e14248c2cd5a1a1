//! Throughput of the TUN offloads in user space (`ppp_tokio::offload`): cutting TCP
//! super-packets to a PPPoE session's MTU (`segment`) and merging the segments back
//! (`Coalescer`), on what an offloading TUN device and a busy session carry.
//!
//! # What is measured
//!
//! * A working set of 96 distinct IPv4 TCP super-packets of 64,000 bytes of data each (6 MB,
//!   larger than the L2 cache), as the kernel hands them over with an offloading TUN (`GSO_TCPV4`,
//!   `NEEDS_CSUM`, gso_size 1448, timestamps option); throughput counted in TCP data bytes.
//! * `segment/mtu-1492`: each super-packet cut into 45 packets of 1440 bytes of data into a
//!   reused `Segments` buffer with 22 bytes of headroom (Ethernet and PPPoE), cleared per
//!   super-packet, as a forwarding loop would.
//! * `coalesce/mtu-1492`: the same data as 4,320 segments received in order, pushed into a reused
//!   `Coalescer` that is cleared after each super-packet's worth of segments.
//! * `copy`: the data copied once with `extend_from_slice` into a reused buffer, a bound on any
//!   single-pass implementation.
//!
//! `cargo bench --bench offload`
// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ppp_tokio::offload::{Coalescer, GsoType, Segments, VirtioNetHdr, segment};

const SUPER_PACKETS: usize = 96;
const DATA_LEN: usize = 64_000;
const MTU: u16 = 1492;
const TIMESTAMPS: [u8; 12] = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];

/// Super-packet `n`: IPv4 and TCP headers (timestamps), then varied data.
fn super_packet(n: usize) -> Vec<u8> {
    let mut p = vec![
        0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 1, 198, 51, 100, 2,
    ];
    let seq = (n * DATA_LEN) as u32;
    p.extend_from_slice(&[0x9c, 0x40, 0x00, 0x50]);
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 1, 0x80, 0x18, 0x01, 0xf5, 0, 0, 0, 0]);
    p.extend_from_slice(&TIMESTAMPS);
    p.extend((0..DATA_LEN).map(|i| (i * 31 + n * 7 + i / 997) as u8));
    let total = p.len() as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p
}

fn header() -> VirtioNetHdr {
    VirtioNetHdr {
        flags: VirtioNetHdr::NEEDS_CSUM,
        gso_type: GsoType::TcpV4,
        ecn: false,
        hdr_len: 52,
        gso_size: 1448,
        csum_start: 20,
        csum_offset: 16,
    }
}

fn bench_offload(c: &mut Criterion) {
    let packets: Vec<Vec<u8>> = (0..SUPER_PACKETS).map(super_packet).collect();
    let header = header();
    // The segments, per super-packet, for the coalescing bench.
    let received: Vec<Vec<Vec<u8>>> = packets
        .iter()
        .map(|p| {
            let mut out = Segments::new();
            segment(&header, p, MTU, &mut out).expect("segments");
            out.iter().map(<[u8]>::to_vec).collect()
        })
        .collect();
    let segments: usize = received.iter().map(Vec::len).sum();
    eprintln!("{SUPER_PACKETS} super-packets of {DATA_LEN} bytes of data, {segments} segments");

    let mut group = c.benchmark_group("offload");
    group.throughput(Throughput::Bytes((SUPER_PACKETS * DATA_LEN) as u64));
    let mut out = Segments::with_headroom(22);
    group.bench_function("segment/mtu-1492", |b| {
        b.iter(|| {
            for p in &packets {
                out.clear();
                black_box(segment(&header, p, MTU, &mut out).expect("segments"));
            }
        })
    });
    let mut coalescer = Coalescer::new();
    group.bench_function("coalesce/mtu-1492", |b| {
        b.iter(|| {
            for batch in &received {
                coalescer.clear();
                for p in batch {
                    coalescer.push(p);
                }
                black_box(coalescer.len());
            }
        })
    });
    let mut copy = Vec::with_capacity(70_000);
    group.bench_function("copy", |b| {
        b.iter(|| {
            for p in &packets {
                copy.clear();
                copy.extend_from_slice(&p[52..]);
                black_box(copy.len());
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(20);
    targets = bench_offload
}
criterion_main!(benches);
