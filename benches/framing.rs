//! Benches of async HDLC-like framing (RFC 1662): `ppp-frame` against a byte-at-a-time baseline,
//! on what a link meets rather than on one hot buffer.
//!
//! The baseline mirrors the algorithm of Linux `ppp_async`: per byte one table-driven FCS update,
//! one escape test against the 256-bit transmit map and one store on the way out; on the way in a
//! per-byte scan for flag, escape and ACCM characters, a copy of each run, and a byte-at-a-time
//! FCS over the whole frame when its closing flag arrives. Each bench group holds the baseline and
//! `ppp-frame` on the same input, so ratios come from the same run.
//!
//! # What is measured
//!
//! * Working sets of 4 MiB of distinct payloads (larger than the L2 cache), framed one after
//!   another: 65 536 frames of 64 bytes, 2 797 of 1500, 467 of 9000. Throughput is counted in
//!   payload bytes.
//! * Inputs: `ipv4-tcp` (IPv4 and TCP headers with varying fields, then HTTP and HTML text: typical
//!   IP), `random` (uniformly random bytes: compressed or encrypted traffic) and `all-flags` (every
//!   byte 0x7E, so every byte is escaped: the worst case).
//! * ACCM 0xFFFFFFFF (the default before LCP opens, and what many peers keep) and ACCM 0 (the
//!   usual negotiated value); FCS-16 and FCS-32.
//! * Encoding appends to a 64 KiB write buffer that is emptied when full, as a transmit buffer
//!   would be. Decoding runs over the stream of all frames of the set (flags shared between
//!   frames) fed in 4 KiB reads.
//! * In every group: `baseline`, `ppp-frame` (what the crate picks: SIMD kernels where the CPU has
//!   them), `ppp-frame-portable` (the safe portable code, `Kernels::Portable`); the encode groups
//!   also time `fcs-only`, the crate's FCS alone over the same payloads, which bounds a single-pass
//!   encoder from above.
//! * The `fcs16`/`fcs32` groups time the FCS alone over the working sets: `bytewise` (the
//!   baseline), `portable` (slice-by-16) and `dispatched` (carry-less multiplication on x86-64
//!   CPUs that have it).
//!
//! Run `cargo bench --bench framing` (about 11 minutes); a filter selects groups, for example
//! `cargo bench --bench framing -- '^encode/ipv4-tcp/accm-0/'`.
//!
//! On a shared machine, where criterion's one-after-another timing lets load elsewhere skew a
//! group's ratios, `FRAMING_INTERLEAVED=15 cargo bench --bench framing` times the same encode and
//! decode cells in interleaved rounds instead (every implementation once per round) and prints
//! the best and median throughput of each in MB/s; `FRAMING_FILTER=/64/` selects cells by name.
//! `FRAMING_TIER=<level>` adds `ppp-frame-capped` to the encode cells: the same encoder held to
//! a lower SIMD tier (1 SSE4.1, 2 AVX2, 3 AVX2 with VPCLMULQDQ), to compare its kernels with
//! the ones the CPU picks.
#![allow(missing_docs)]

use criterion::{Criterion, SamplingMode, Throughput, criterion_group};
use ppp_frame::fcs::{self, bytewise};
use ppp_frame::{
    AsyncDecoder, AsyncEncoder, DecoderConfig, EncoderConfig, FcsKind, Kernels, Protocol,
};
use std::hint::black_box;
use std::time::Duration;

/// Payload bytes in each working set.
const WORKING_SET: usize = 4 << 20;
/// Payload sizes.
const SIZES: [usize; 3] = [64, 1500, 9000];
/// The decoder is fed the stream in reads of this size.
const READ_SIZE: usize = 4096;
/// The encoders' write buffer is emptied when it holds this much.
const WRITE_BUFFER: usize = 64 << 10;

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
                buf: Vec::with_capacity(16 * 1024),
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

/// A working set: `data.len() / size` distinct payloads of `size` bytes, back to back.
struct Input {
    name: &'static str,
    size: usize,
    data: Vec<u8>,
}

impl Input {
    fn frames(&self) -> std::slice::ChunksExact<'_, u8> {
        self.data.chunks_exact(self.size)
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| (self.next() >> 56) as u8).collect()
    }
}

/// The text an HTTP response carries: its header, then HTML.
const HTTP_TEXT: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=UTF-8\r\n\
    Content-Length: 41873\r\nCache-Control: max-age=604800\r\nServer: ECS (dcb/7F83)\r\n\r\n\
    <!doctype html>\n<html>\n<head>\n    <title>Example Domain</title>\n\n    \
    <meta charset=\"utf-8\" />\n</head>\n\n<body>\n<div>\n    <h1>Example Domain</h1>\n    \
    <p>This domain is for use in illustrative examples in documents. You may use this domain in \
    literature without prior coordination or asking for permission.</p>\n    <p><a \
    href=\"https://www.iana.org/domains/example\">More information...</a></p>\n</div>\n\
    </body>\n</html>\n";

/// `count` IPv4 + TCP segments of `size` bytes: headers whose identification, sequence and
/// acknowledgement numbers, checksums and timestamps vary, then the text from a varying offset.
fn ipv4_tcp(size: usize, count: usize, rng: &mut Rng) -> Vec<u8> {
    let mut data = Vec::with_capacity(size * count);
    for i in 0..count {
        let r = rng.next().to_le_bytes();
        let s = rng.next().to_le_bytes();
        let t = rng.next().to_le_bytes();
        let len = (size as u16).to_be_bytes();
        let id = (i as u16).to_be_bytes();
        let header = [
            // IPv4: 192.0.2.2 -> 198.51.100.34, TCP
            0x45, 0x00, len[0], len[1], id[0], id[1], 0x40, 0x00, 0x40, 0x06, r[0], r[1], 0xC0,
            0x00, 0x02, 0x02, 0xC6, 0x33, 0x64, 0x22,
            // TCP: port 80 -> an ephemeral port, ACK PSH, window 502
            0x00, 0x50, 0xD4, 0x31, r[2], r[3], r[4], r[5], r[6], r[7], s[0], s[1], 0x80, 0x18,
            0x01, 0xF6, s[2], s[3], 0x00, 0x00, // then NOP NOP timestamps
            0x01, 0x01, 0x08, 0x0A, s[4], s[5], s[6], s[7], t[0], t[1], t[2], t[3],
        ];
        let start = data.len();
        data.extend_from_slice(&header[..header.len().min(size)]);
        let mut at = (i * 131) % HTTP_TEXT.len();
        while data.len() < start + size {
            let take = (HTTP_TEXT.len() - at).min(start + size - data.len());
            data.extend_from_slice(&HTTP_TEXT[at..at + take]);
            at = 0;
        }
    }
    data
}

fn inputs(size: usize) -> Vec<Input> {
    let count = WORKING_SET.div_ceil(size);
    let mut rng = Rng(0x1234_5678_9ABC_DEF1 ^ size as u64);
    vec![
        Input {
            name: "ipv4-tcp",
            size,
            data: ipv4_tcp(size, count, &mut rng),
        },
        Input {
            name: "random",
            size,
            data: rng.bytes(size * count),
        },
        Input {
            name: "all-flags",
            size,
            data: vec![0x7E; size * count],
        },
    ]
}

const ACCMS: [(&str, u32); 2] = [("accm-0", 0), ("accm-ffffffff", 0xFFFF_FFFF)];
const FCS_KINDS: [(&str, FcsKind); 2] = [("fcs16", FcsKind::Fcs16), ("fcs32", FcsKind::Fcs32)];

/// The implementations of `ppp-frame` timed: the crate's choice and the portable code.
const KERNELS: [(&str, Kernels); 2] = [
    ("ppp-frame", Kernels::Auto),
    ("ppp-frame-portable", Kernels::Portable),
];

fn baseline_encode(fcs: FcsKind, xaccm: &[u32; 8], payload: &[u8], out: &mut Vec<u8>) {
    match fcs {
        FcsKind::Fcs32 => baseline::encode::<u32>(xaccm, 0x0021, payload, out),
        _ => baseline::encode::<u16>(xaccm, 0x0021, payload, out),
    }
}

/// Encodes every payload of `input` into the write buffer `out`, emptied whenever it is full.
#[inline(always)]
fn encode_set(input: &Input, out: &mut Vec<u8>, mut encode: impl FnMut(&[u8], &mut Vec<u8>)) {
    for payload in input.frames() {
        encode(payload, out);
        if out.len() >= WRITE_BUFFER {
            black_box(&out[..]);
            out.clear();
        }
    }
}

fn bench_encode(c: &mut Criterion) {
    for size in SIZES {
        for input in inputs(size) {
            for (accm_name, accm) in ACCMS {
                for (fcs_name, fcs) in FCS_KINDS {
                    let name = format!("encode/{}/{accm_name}/{fcs_name}/{size}", input.name);
                    let mut group = c.benchmark_group(name);
                    group.sampling_mode(SamplingMode::Flat);
                    group.throughput(Throughput::Bytes(input.data.len() as u64));
                    let xaccm = baseline::xaccm(accm);
                    let mut out = Vec::with_capacity(WRITE_BUFFER + 2 * size + 64);
                    group.bench_function("baseline", |b| {
                        b.iter(|| {
                            encode_set(black_box(&input), &mut out, |payload, out| {
                                baseline_encode(fcs, &xaccm, payload, out)
                            })
                        })
                    });
                    for (kernels_name, kernels) in KERNELS {
                        let config = EncoderConfig {
                            accm,
                            fcs,
                            ..Default::default()
                        };
                        let mut encoder = AsyncEncoder::new(config).with_kernels(kernels);
                        group.bench_function(kernels_name, |b| {
                            b.iter(|| {
                                encode_set(black_box(&input), &mut out, |payload, out| {
                                    encoder.encode(Protocol::Ipv4, payload, out)
                                })
                            })
                        });
                    }
                    group.bench_function("fcs-only", |b| {
                        b.iter(|| {
                            let mut sum = 0u32;
                            for payload in black_box(&input).frames() {
                                sum ^= match fcs {
                                    FcsKind::Fcs32 => fcs::fcs32_update(fcs::FCS32_INIT, payload),
                                    _ => u32::from(fcs::fcs16_update(fcs::FCS16_INIT, payload)),
                                };
                            }
                            sum
                        })
                    });
                    group.finish();
                }
            }
        }
    }
}

fn bench_decode(c: &mut Criterion) {
    for size in SIZES {
        for input in inputs(size) {
            for (accm_name, accm) in ACCMS {
                for (fcs_name, fcs) in FCS_KINDS {
                    let name = format!("decode/{}/{accm_name}/{fcs_name}/{size}", input.name);
                    let mut group = c.benchmark_group(name);
                    group.sampling_mode(SamplingMode::Flat);
                    group.throughput(Throughput::Bytes(input.data.len() as u64));
                    // The stream of all frames, each flag shared by two frames.
                    let mut encoder = AsyncEncoder::new(EncoderConfig {
                        accm,
                        fcs,
                        ..Default::default()
                    });
                    let mut wire = Vec::new();
                    for payload in input.frames() {
                        encoder.encode(Protocol::Ipv4, payload, &mut wire);
                    }
                    let total = input.data.len();
                    group.bench_function("baseline", |b| match fcs {
                        FcsKind::Fcs32 => {
                            let mut decoder = baseline::Decoder::<u32>::new(accm);
                            b.iter(|| {
                                let mut n = 0;
                                for chunk in black_box(&wire).chunks(READ_SIZE) {
                                    decoder.input(chunk, |_, p| n += black_box(p).len());
                                }
                                assert_eq!(n, total);
                            })
                        }
                        _ => {
                            let mut decoder = baseline::Decoder::<u16>::new(accm);
                            b.iter(|| {
                                let mut n = 0;
                                for chunk in black_box(&wire).chunks(READ_SIZE) {
                                    decoder.input(chunk, |_, p| n += black_box(p).len());
                                }
                                assert_eq!(n, total);
                            })
                        }
                    });
                    for (kernels_name, kernels) in KERNELS {
                        let config = DecoderConfig {
                            accm,
                            fcs,
                            max_frame_len: DecoderConfig::frame_len_for_mru(size as u16),
                        };
                        let mut decoder = AsyncDecoder::new(config).with_kernels(kernels);
                        group.bench_function(kernels_name, |b| {
                            b.iter(|| {
                                let mut n = 0;
                                for mut chunk in black_box(&wire).chunks(READ_SIZE) {
                                    while let Some(result) = decoder.decode(&mut chunk) {
                                        if let Ok(frame) = result {
                                            n += black_box(frame.payload).len();
                                        }
                                    }
                                }
                                assert_eq!(n, total);
                            })
                        });
                    }
                    group.finish();
                }
            }
        }
    }
}

fn bench_fcs(c: &mut Criterion) {
    for size in SIZES {
        let count = WORKING_SET.div_ceil(size);
        let input = Input {
            name: "random",
            size,
            data: Rng(size as u64).bytes(size * count),
        };
        let mut group = c.benchmark_group(format!("fcs16/{}/{size}", input.name));
        group.sampling_mode(SamplingMode::Flat);
        group.throughput(Throughput::Bytes(input.data.len() as u64));
        let fcs16 = |update: fn(u16, &[u8]) -> u16| {
            let frames = black_box(&input).frames();
            frames.fold(0, |sum, p| sum ^ update(fcs::FCS16_INIT, p))
        };
        group.bench_function("bytewise", |b| b.iter(|| fcs16(bytewise::fcs16_update)));
        group.bench_function("portable", |b| {
            b.iter(|| fcs16(fcs::portable::fcs16_update))
        });
        group.bench_function("dispatched", |b| b.iter(|| fcs16(fcs::fcs16_update)));
        group.finish();
        let mut group = c.benchmark_group(format!("fcs32/{}/{size}", input.name));
        group.sampling_mode(SamplingMode::Flat);
        group.throughput(Throughput::Bytes(input.data.len() as u64));
        let fcs32 = |update: fn(u32, &[u8]) -> u32| {
            let frames = black_box(&input).frames();
            frames.fold(0, |sum, p| sum ^ update(fcs::FCS32_INIT, p))
        };
        group.bench_function("bytewise", |b| b.iter(|| fcs32(bytewise::fcs32_update)));
        group.bench_function("portable", |b| {
            b.iter(|| fcs32(fcs::portable::fcs32_update))
        });
        group.bench_function("dispatched", |b| b.iter(|| fcs32(fcs::fcs32_update)));
        group.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_fcs, bench_encode, bench_decode
}

/// One implementation timed in an interleaved cell: its name and one pass over the working set.
type Runner<'a> = (&'static str, Box<dyn FnMut() + 'a>);

/// Times the runners of one cell in interleaved rounds (each round runs every runner once, in
/// turn, so that a burst of load elsewhere on the machine hits them alike) and prints, per
/// runner, the best and the median throughput over the rounds in MB/s (10^6 bytes per second).
///
/// Each round runs the runners in an order of its own (shuffled with a fixed seed), so that each
/// follows each of the others about equally often: what ran just before matters. On an AMD EPYC
/// (Zen 5) a SIMD runner that came right after the 10 ms of the byte-at-a-time baseline ran up
/// to 40% slower than after another runner (`fcs-only` measured 28 GB/s there against 45 GB/s
/// after `ppp-frame-portable`), and a fixed order timed `ppp-frame` (always right after the
/// baseline) against `fcs-only` (always after the portable code) on unequal terms.
fn interleave(cell: &str, bytes: usize, rounds: usize, runners: &mut [Runner<'_>]) {
    let mut times = vec![Vec::with_capacity(rounds); runners.len()];
    for (_, run) in runners.iter_mut() {
        run(); // warm up
    }
    let mut order: Vec<usize> = (0..runners.len()).collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..rounds {
        for i in (1..order.len()).rev() {
            order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        for &i in &order {
            let start = std::time::Instant::now();
            (runners[i].1)();
            times[i].push(start.elapsed().as_secs_f64());
        }
    }
    for ((name, _), times) in runners.iter().zip(&mut times) {
        times.sort_by(f64::total_cmp);
        let mbps = |t: f64| bytes as f64 / t / 1e6;
        println!(
            "{cell}/{name} best {:.0} median {:.0}",
            mbps(times[0]),
            mbps(times[times.len() / 2])
        );
    }
}

/// The encode and decode cells of the criterion benches, timed by [`interleave`]: run with
/// `FRAMING_INTERLEAVED=<rounds>` (and optionally `FRAMING_FILTER=<substring of a cell name>`).
fn interleaved(rounds: usize, filter: &str) {
    let tier = std::env::var("FRAMING_TIER")
        .ok()
        .and_then(|level| level.parse::<u8>().ok());
    for size in SIZES {
        for input in inputs(size) {
            for (accm_name, accm) in ACCMS {
                for (fcs_name, fcs) in FCS_KINDS {
                    let tail = format!("{}/{accm_name}/{fcs_name}/{size}", input.name);
                    let bytes = input.data.len();
                    let cell = format!("encode/{tail}");
                    if cell.contains(filter) {
                        let xaccm = baseline::xaccm(accm);
                        let out = std::cell::RefCell::new(Vec::with_capacity(
                            WRITE_BUFFER + 2 * size + 64,
                        ));
                        let config = EncoderConfig {
                            accm,
                            fcs,
                            ..Default::default()
                        };
                        let mut encoders = KERNELS.map(|(_, kernels)| {
                            AsyncEncoder::new(config.clone()).with_kernels(kernels)
                        });
                        let [auto, portable] = &mut encoders;
                        // FRAMING_TIER=<level>: the same encode capped at a lower SIMD tier, to
                        // compare a tier's kernels with the ones the CPU picks.
                        let mut capped = tier.map(|level| {
                            AsyncEncoder::new(config.clone()).with_kernels(Kernels::SimdUpTo(level))
                        });
                        let (input, out) = (&input, &out);
                        let mut runners: Vec<Runner<'_>> = vec![
                            (
                                "baseline",
                                Box::new(move || {
                                    encode_set(black_box(input), &mut out.borrow_mut(), |p, o| {
                                        baseline_encode(fcs, &xaccm, p, o)
                                    })
                                }),
                            ),
                            (
                                "ppp-frame",
                                Box::new(move || {
                                    encode_set(black_box(input), &mut out.borrow_mut(), |p, o| {
                                        auto.encode(Protocol::Ipv4, p, o)
                                    })
                                }),
                            ),
                            (
                                "ppp-frame-portable",
                                Box::new(move || {
                                    encode_set(black_box(input), &mut out.borrow_mut(), |p, o| {
                                        portable.encode(Protocol::Ipv4, p, o)
                                    })
                                }),
                            ),
                            (
                                "fcs-only",
                                Box::new(move || {
                                    let mut sum = 0u32;
                                    for payload in black_box(input).frames() {
                                        sum ^= match fcs {
                                            FcsKind::Fcs32 => {
                                                fcs::fcs32_update(fcs::FCS32_INIT, payload)
                                            }
                                            _ => u32::from(fcs::fcs16_update(
                                                fcs::FCS16_INIT,
                                                payload,
                                            )),
                                        };
                                    }
                                    black_box(sum);
                                }),
                            ),
                        ];
                        if let Some(capped) = &mut capped {
                            runners.push((
                                "ppp-frame-capped",
                                Box::new(move || {
                                    encode_set(black_box(input), &mut out.borrow_mut(), |p, o| {
                                        capped.encode(Protocol::Ipv4, p, o)
                                    })
                                }),
                            ));
                        }
                        interleave(&cell, bytes, rounds, &mut runners);
                    }
                    let cell = format!("decode/{tail}");
                    if cell.contains(filter) {
                        let mut encoder = AsyncEncoder::new(EncoderConfig {
                            accm,
                            fcs,
                            ..Default::default()
                        });
                        let mut wire = Vec::new();
                        for payload in input.frames() {
                            encoder.encode(Protocol::Ipv4, payload, &mut wire);
                        }
                        let wire = &wire;
                        let mut base16 = baseline::Decoder::<u16>::new(accm);
                        let mut base32 = baseline::Decoder::<u32>::new(accm);
                        let config = DecoderConfig {
                            accm,
                            fcs,
                            max_frame_len: DecoderConfig::frame_len_for_mru(size as u16),
                        };
                        let mut decoders = KERNELS.map(|(_, kernels)| {
                            AsyncDecoder::new(config.clone()).with_kernels(kernels)
                        });
                        let [auto, portable] = &mut decoders;
                        let ours = |decoder: &mut AsyncDecoder| {
                            let mut n = 0;
                            for mut chunk in black_box(wire).chunks(READ_SIZE) {
                                while let Some(result) = decoder.decode(&mut chunk) {
                                    if let Ok(frame) = result {
                                        n += black_box(frame.payload).len();
                                    }
                                }
                            }
                            assert_eq!(n, bytes);
                        };
                        let mut runners: Vec<Runner<'_>> =
                            vec![
                                (
                                    "baseline",
                                    Box::new(move || {
                                        let mut n = 0;
                                        for chunk in black_box(wire).chunks(READ_SIZE) {
                                            match fcs {
                                                FcsKind::Fcs32 => base32
                                                    .input(chunk, |_, p| n += black_box(p).len()),
                                                _ => base16
                                                    .input(chunk, |_, p| n += black_box(p).len()),
                                            }
                                        }
                                        assert_eq!(n, bytes);
                                    }),
                                ),
                                ("ppp-frame", Box::new(move || ours(auto))),
                                ("ppp-frame-portable", Box::new(move || ours(portable))),
                            ];
                        interleave(&cell, bytes, rounds, &mut runners);
                    }
                }
            }
        }
    }
}

fn main() {
    if let Some(rounds) = std::env::var("FRAMING_INTERLEAVED")
        .ok()
        .and_then(|r| r.parse::<usize>().ok())
    {
        let filter = std::env::var("FRAMING_FILTER").unwrap_or_default();
        interleaved(rounds.max(1), &filter);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
