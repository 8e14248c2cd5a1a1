//! Benches of async HDLC-like framing (RFC 1662) against a byte-at-a-time baseline.
//!
//! The baseline mirrors the algorithm of Linux `ppp_async`: per byte one table-driven FCS update,
//! one escape test against the 256-bit transmit map and one store on the way out; on the way in a
//! per-byte scan for flag, escape and ACCM characters, a copy of each run, and a byte-at-a-time
//! FCS over the whole frame when its closing flag arrives. Each bench group holds the baseline and
//! `ppp-frame` on the same input, so criterion's report gives the ratio directly.
//!
//! Inputs (1500-byte payloads, throughput counted in payload bytes):
//! * `random`: uniformly random bytes (what compressed or encrypted traffic looks like);
//! * `ipv4-tcp`: an IPv4 + TCP header followed by an HTTP response with HTML text;
//! * `all-flags`: 1500 bytes of 0x7E, the worst case (every byte escaped).
//!
//! Each is framed with ACCM 0xFFFFFFFF (the default before LCP opens) and ACCM 0 (the usual
//! negotiated value), with FCS-16 and FCS-32. The `fcs16`/`fcs32` groups time the FCS alone:
//! `bytewise` (the baseline), `portable` (slice-by-16) and `dispatched` (what the crate uses; with
//! carry-less multiplication on x86-64 CPUs that have it).
//!
//! Run `cargo bench --bench framing -- --warm-up-time 1 --measurement-time 2`; set
//! `PPP_FRAME_PORTABLE=1` to time `ppp-frame` with its SIMD kernels switched off.
#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ppp_frame::fcs::{self, bytewise};
use ppp_frame::{AsyncDecoder, AsyncEncoder, DecoderConfig, EncoderConfig, FcsKind, Protocol};
use std::hint::black_box;

const PAYLOAD_LEN: usize = 1500;

/// A mirror of Linux `ppp_async`'s framing loops, byte at a time.
mod baseline {
    use ppp_frame::fcs::bytewise::{FCS16_TABLE, FCS32_TABLE};

    const FLAG: u8 = 0x7E;
    const ESCAPE: u8 = 0x7D;
    const TRANS: u8 = 0x20;

    /// The running FCS, one table lookup per byte.
    pub trait Fcs: Copy {
        const INIT: Self;
        const LEN: usize;
        fn update(self, byte: u8) -> Self;
        fn is_good(self) -> bool;
        fn trailer(self) -> [u8; 4];
    }

    impl Fcs for u16 {
        const INIT: u16 = 0xFFFF;
        const LEN: usize = 2;
        #[inline(always)]
        fn update(self, c: u8) -> u16 {
            (self >> 8) ^ FCS16_TABLE[((self ^ u16::from(c)) & 0xFF) as usize]
        }
        fn is_good(self) -> bool {
            self == 0xF0B8
        }
        fn trailer(self) -> [u8; 4] {
            let [a, b] = (!self).to_le_bytes();
            [a, b, 0, 0]
        }
    }

    impl Fcs for u32 {
        const INIT: u32 = 0xFFFF_FFFF;
        const LEN: usize = 4;
        #[inline(always)]
        fn update(self, c: u8) -> u32 {
            (self >> 8) ^ FCS32_TABLE[((self ^ u32::from(c)) & 0xFF) as usize]
        }
        fn is_good(self) -> bool {
            self == 0xDEBB_20E3
        }
        fn trailer(self) -> [u8; 4] {
            (!self).to_le_bytes()
        }
    }

    /// The transmit escape map: ACCM in word 0, plus 0x7D and 0x7E.
    pub fn xaccm(accm: u32) -> [u32; 8] {
        let mut map = [0u32; 8];
        map[0] = accm;
        map[3] = 0x6000_0000; // 0x7D, 0x7E
        map
    }

    #[inline(always)]
    fn put_byte(out: &mut Vec<u8>, xaccm: &[u32; 8], c: u8) {
        if xaccm[usize::from(c >> 5)] & (1 << (c & 0x1F)) != 0 {
            out.push(ESCAPE);
            out.push(c ^ TRANS);
        } else {
            out.push(c);
        }
    }

    /// Appends one frame: flag, FF 03, protocol, payload, FCS, flag.
    pub fn encode<F: Fcs>(xaccm: &[u32; 8], protocol: u16, payload: &[u8], out: &mut Vec<u8>) {
        out.reserve(2 * (payload.len() + 8) + 2);
        out.push(FLAG);
        let mut fcs = F::INIT;
        let [p0, p1] = protocol.to_be_bytes();
        for &c in [0xFF, 0x03, p0, p1].iter().chain(payload) {
            fcs = fcs.update(c);
            put_byte(out, xaccm, c);
        }
        for &c in &fcs.trailer()[..F::LEN] {
            put_byte(out, xaccm, c);
        }
        out.push(FLAG);
    }

    /// The receive side: `ppp_async_input` with its `scan_ordinary` loop.
    pub struct Decoder<F> {
        raccm: u32,
        buf: Vec<u8>,
        escaped: bool,
        _fcs: core::marker::PhantomData<F>,
    }

    impl<F: Fcs> Decoder<F> {
        pub fn new(raccm: u32) -> Self {
            Decoder {
                raccm,
                buf: Vec::with_capacity(2048),
                escaped: false,
                _fcs: core::marker::PhantomData,
            }
        }

        /// Feeds `data`, calling `deliver(protocol, payload)` for each good frame.
        pub fn input(&mut self, mut data: &[u8], mut deliver: impl FnMut(u16, &[u8])) {
            while !data.is_empty() {
                let mut n = 0;
                while n < data.len() {
                    let c = data[n];
                    if c == ESCAPE || c == FLAG || (c < 0x20 && self.raccm & (1 << c) != 0) {
                        break;
                    }
                    n += 1;
                }
                if n > 0 {
                    let at = self.buf.len();
                    self.buf.extend_from_slice(&data[..n]);
                    if self.escaped {
                        self.buf[at] ^= TRANS;
                        self.escaped = false;
                    }
                }
                if n == data.len() {
                    break;
                }
                match data[n] {
                    FLAG => {
                        self.process_frame(&mut deliver);
                        self.escaped = false;
                    }
                    ESCAPE => self.escaped = true,
                    _ => {}
                }
                data = &data[n + 1..];
            }
        }

        fn process_frame(&mut self, deliver: &mut impl FnMut(u16, &[u8])) {
            let frame = core::mem::take(&mut self.buf);
            if frame.len() >= 4 + F::LEN {
                let mut fcs = F::INIT;
                for &c in &frame {
                    fcs = fcs.update(c);
                }
                if fcs.is_good() && frame[0] == 0xFF && frame[1] == 0x03 {
                    let protocol = u16::from_be_bytes([frame[2], frame[3]]);
                    deliver(protocol, &frame[4..frame.len() - F::LEN]);
                }
            }
            self.buf = frame;
            self.buf.clear();
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift64*).
fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// An IPv4 + TCP segment carrying the start of an HTTP response with an HTML page.
fn ipv4_tcp_payload(len: usize) -> Vec<u8> {
    let mut p = vec![
        0x45, 0x00, 0x05, 0xDC, 0x1C, 0x46, 0x40, 0x00, 0x40, 0x06, 0x9A, 0x2B, 0xC0, 0x00, 0x02,
        0x02, 0xC6, 0x33, 0x64, 0x22, // IPv4: 192.0.2.2 -> 198.51.100.34, TCP
        0x00, 0x50, 0xD4, 0x31, 0x6B, 0x2C, 0x8E, 0x01, 0x4A, 0x11, 0x07, 0xF3, 0x80, 0x18, 0x01,
        0xF6, 0x3C, 0x90, 0x00, 0x00, // TCP: port 80, ACK PSH
        0x01, 0x01, 0x08, 0x0A, 0x00, 0x3A, 0x94, 0x12, 0x5E, 0x11, 0xC0, 0x7B, // NOP NOP TS
    ];
    p.extend_from_slice(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Length: 41873\r\n\
          Cache-Control: max-age=604800\r\nServer: ECS (dcb/7F83)\r\n\r\n\
          <!doctype html>\n<html>\n<head>\n    <title>Example Domain</title>\n\n    \
          <meta charset=\"utf-8\" />\n</head>\n\n<body>\n<div>\n",
    );
    let text = b"    <p>This domain is for use in illustrative examples in documents. You may \
                 use this domain in literature without prior coordination or asking for \
                 permission.</p>\n    <p><a href=\"https://www.iana.org/domains/example\">More \
                 information...</a></p>\n";
    while p.len() < len {
        p.extend_from_slice(text);
    }
    p.truncate(len);
    p
}

fn inputs() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("random", random_bytes(PAYLOAD_LEN, 0x1234_5678_9ABC_DEF1)),
        ("ipv4-tcp", ipv4_tcp_payload(PAYLOAD_LEN)),
        ("all-flags", vec![0x7E; PAYLOAD_LEN]),
    ]
}

const ACCMS: [(&str, u32); 2] = [("accm-ffffffff", 0xFFFF_FFFF), ("accm-0", 0)];
const FCS_KINDS: [(&str, FcsKind); 2] = [("fcs16", FcsKind::Fcs16), ("fcs32", FcsKind::Fcs32)];

fn baseline_encode(fcs: FcsKind, xaccm: &[u32; 8], payload: &[u8], out: &mut Vec<u8>) {
    match fcs {
        FcsKind::Fcs32 => baseline::encode::<u32>(xaccm, 0x0021, payload, out),
        _ => baseline::encode::<u16>(xaccm, 0x0021, payload, out),
    }
}

fn bench_encode(c: &mut Criterion) {
    for (input_name, payload) in inputs() {
        for (accm_name, accm) in ACCMS {
            for (fcs_name, fcs) in FCS_KINDS {
                let mut group =
                    c.benchmark_group(format!("encode/{input_name}/{accm_name}/{fcs_name}"));
                group.throughput(Throughput::Bytes(payload.len() as u64));
                let xaccm = baseline::xaccm(accm);
                let mut out = Vec::with_capacity(4 * PAYLOAD_LEN);
                group.bench_function("ppp_async-baseline", |b| {
                    b.iter(|| {
                        out.clear();
                        baseline_encode(fcs, &xaccm, black_box(&payload), &mut out);
                        black_box(out.len())
                    })
                });
                let mut encoder = AsyncEncoder::new(EncoderConfig {
                    accm,
                    fcs,
                    ..Default::default()
                });
                group.bench_function("ppp-frame", |b| {
                    b.iter(|| {
                        out.clear();
                        encoder.encode(Protocol::Ipv4, black_box(&payload), &mut out);
                        black_box(out.len())
                    })
                });
                group.finish();
            }
        }
    }
}

fn bench_decode(c: &mut Criterion) {
    for (input_name, payload) in inputs() {
        for (accm_name, accm) in ACCMS {
            for (fcs_name, fcs) in FCS_KINDS {
                let mut group =
                    c.benchmark_group(format!("decode/{input_name}/{accm_name}/{fcs_name}"));
                group.throughput(Throughput::Bytes(payload.len() as u64));
                // The wire bytes of one frame, with its opening and closing flags.
                let mut wire = Vec::new();
                baseline_encode(fcs, &baseline::xaccm(accm), &payload, &mut wire);
                let mut check = AsyncDecoder::new(DecoderConfig {
                    accm,
                    fcs,
                    ..Default::default()
                });
                let mut input: &[u8] = &wire;
                let decoded = check
                    .decode(&mut input)
                    .map(|r| r.map(|f| f.payload.to_vec()));
                assert_eq!(
                    decoded,
                    Some(Ok(payload.clone())),
                    "{input_name} {accm_name} {fcs_name}"
                );

                group.bench_function("ppp_async-baseline", |b| match fcs {
                    FcsKind::Fcs32 => {
                        let mut decoder = baseline::Decoder::<u32>::new(accm);
                        b.iter(|| {
                            let mut n = 0;
                            decoder.input(black_box(&wire), |_, p| n += black_box(p).len());
                            assert_eq!(n, PAYLOAD_LEN);
                        })
                    }
                    _ => {
                        let mut decoder = baseline::Decoder::<u16>::new(accm);
                        b.iter(|| {
                            let mut n = 0;
                            decoder.input(black_box(&wire), |_, p| n += black_box(p).len());
                            assert_eq!(n, PAYLOAD_LEN);
                        })
                    }
                });
                let mut decoder = AsyncDecoder::new(DecoderConfig {
                    accm,
                    fcs,
                    ..Default::default()
                });
                group.bench_function("ppp-frame", |b| {
                    b.iter(|| {
                        let mut n = 0;
                        let mut input: &[u8] = black_box(&wire);
                        while let Some(result) = decoder.decode(&mut input) {
                            if let Ok(frame) = result {
                                n += black_box(frame.payload).len();
                            }
                        }
                        assert_eq!(n, PAYLOAD_LEN);
                    })
                });
                group.finish();
            }
        }
    }
}

fn bench_fcs(c: &mut Criterion) {
    for len in [64usize, 256, 1500, 9000] {
        let data = random_bytes(len, len as u64);
        let mut group = c.benchmark_group("fcs16");
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::new("bytewise", len), |b| {
            b.iter(|| bytewise::fcs16_update(fcs::FCS16_INIT, black_box(&data)))
        });
        group.bench_function(BenchmarkId::new("portable", len), |b| {
            b.iter(|| fcs::portable::fcs16_update(fcs::FCS16_INIT, black_box(&data)))
        });
        group.bench_function(BenchmarkId::new("dispatched", len), |b| {
            b.iter(|| fcs::fcs16_update(fcs::FCS16_INIT, black_box(&data)))
        });
        group.finish();
        let mut group = c.benchmark_group("fcs32");
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::new("bytewise", len), |b| {
            b.iter(|| bytewise::fcs32_update(fcs::FCS32_INIT, black_box(&data)))
        });
        group.bench_function(BenchmarkId::new("portable", len), |b| {
            b.iter(|| fcs::portable::fcs32_update(fcs::FCS32_INIT, black_box(&data)))
        });
        group.bench_function(BenchmarkId::new("dispatched", len), |b| {
            b.iter(|| fcs::fcs32_update(fcs::FCS32_INIT, black_box(&data)))
        });
        group.finish();
    }
}

criterion_group!(benches, bench_fcs, bench_encode, bench_decode);
criterion_main!(benches);
