//! The SIMD kernels behind [`crate::fcs`] and [`crate::scan`]: the only module of the crate with
//! unsafe code.
//!
//! On x86-64 the CPU is probed once (`std::is_x86_feature_detected!`, result cached in an atomic)
//! and the best [`Tier`] is used:
//!
//! | tier | needs | FCS | byte-set scan |
//! |---|---|---|---|
//! | [`Tier::Sse`] | PCLMULQDQ, SSSE3, SSE4.1 | 4 x 128-bit folding | 16-byte nibble lookup |
//! | [`Tier::Avx2`] | + AVX2 | as above | 32-byte nibble lookup |
//! | [`Tier::Avx512`] | + AVX-512 F/BW/VL, VPCLMULQDQ | 4 x 512-bit folding | as above |
//!
//! Everywhere else (and when the environment variable `PPP_FRAME_PORTABLE` is set to anything
//! when the tier is first needed) the tier is [`Tier::Portable`] and every function here returns
//! `None`, so the callers use their safe portable code.
//!
//! The unsafe operations are unaligned loads from slices (always in bounds, see each `SAFETY`
//! comment) and calls of `#[target_feature]` functions, which happen only after the tier has been
//! clamped to what the running CPU supports. Everything else uses the safe intrinsics.
#![allow(unsafe_code)]

use crate::fcs::FoldConstants;
use std::sync::atomic::{AtomicU8, Ordering};

/// A level of instruction-set support, from none to AVX-512.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Tier {
    /// No SIMD kernel: the safe portable code.
    Portable = 1,
    /// PCLMULQDQ, SSSE3 and SSE4.1.
    Sse = 2,
    /// [`Tier::Sse`] plus AVX2.
    Avx2 = 3,
    /// [`Tier::Avx2`] plus AVX-512 F, BW, VL and VPCLMULQDQ.
    Avx512 = 4,
}

/// The cached tier; 0 until first detected.
static TIER: AtomicU8 = AtomicU8::new(0);

/// The tier of the running CPU (detected on first use, then cached).
#[inline]
pub(crate) fn tier() -> Tier {
    match TIER.load(Ordering::Relaxed) {
        1 => Tier::Portable,
        2 => Tier::Sse,
        3 => Tier::Avx2,
        4 => Tier::Avx512,
        _ => detect_and_cache(),
    }
}

#[cold]
fn detect_and_cache() -> Tier {
    let tier = if std::env::var_os("PPP_FRAME_PORTABLE").is_some() {
        Tier::Portable
    } else {
        detect()
    };
    TIER.store(tier as u8, Ordering::Relaxed);
    tier
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Tier {
    x86::detect()
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Tier {
    Tier::Portable
}

/// Every tier this CPU can run, portable first (for tests that compare them).
#[cfg(test)]
pub(crate) fn available_tiers() -> Vec<Tier> {
    let best = detect();
    [Tier::Portable, Tier::Sse, Tier::Avx2, Tier::Avx512]
        .into_iter()
        .filter(|t| *t <= best)
        .collect()
}

/// Folds `data` into the CRC register `register`; returns the new register and the number of
/// bytes consumed (all of them, as the kernels handle partial blocks), or `None` if no kernel
/// applies (portable tier or fewer than 16 bytes). The caller finishes anything left.
#[inline]
pub(crate) fn crc_fold(k: &FoldConstants, register: u32, data: &[u8]) -> Option<(u32, usize)> {
    crc_fold_up_to(tier(), k, register, data)
}

/// [`crc_fold`] using no tier above `max` (tests use it to exercise every kernel).
#[inline]
pub(crate) fn crc_fold_up_to(
    max: Tier,
    k: &FoldConstants,
    register: u32,
    data: &[u8],
) -> Option<(u32, usize)> {
    #[cfg(target_arch = "x86_64")]
    {
        x86::crc_fold(max.min(tier_for_tests_or_cpu()), k, register, data)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (max, k, register, data);
        None
    }
}

/// The highest tier the CPU really has, ignoring `PPP_FRAME_PORTABLE` in tests so that every
/// kernel is exercised; the environment switch applies to the dispatched paths only.
#[cfg(target_arch = "x86_64")]
#[inline]
fn tier_for_tests_or_cpu() -> Tier {
    #[cfg(test)]
    {
        detect()
    }
    #[cfg(not(test))]
    {
        tier()
    }
}

/// The two 16-byte nibble tables of a byte set (see [`crate::scan`]): bit `h` of `low[l]` is set
/// when byte `16*h + l` is in the set (`h < 8`), bit `h` of `high[l]` when byte `16*(h+8) + l` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct NibbleTables {
    /// Rows for bytes 0x00–0x7F.
    pub(crate) low: [u8; 16],
    /// Rows for bytes 0x80–0xFF.
    pub(crate) high: [u8; 16],
}

/// The index of the first byte of `data` in the set `t`, `data.len()` if none, or `None` if no
/// kernel applies (portable tier or fewer than 16 bytes).
#[inline]
pub(crate) fn find_in_set(t: &NibbleTables, data: &[u8]) -> Option<usize> {
    find_in_set_up_to(tier(), t, data)
}

/// [`find_in_set`] using no tier above `max`.
#[inline]
pub(crate) fn find_in_set_up_to(max: Tier, t: &NibbleTables, data: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        x86::find_in_set(max.min(tier_for_tests_or_cpu()), t, data)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (max, t, data);
        None
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{NibbleTables, Tier};
    use crate::fcs::{FoldConstants, fold_index};
    use core::arch::x86_64::*;

    pub(super) fn detect() -> Tier {
        if !(is_x86_feature_detected!("pclmulqdq")
            && is_x86_feature_detected!("ssse3")
            && is_x86_feature_detected!("sse4.1"))
        {
            return Tier::Portable;
        }
        if !is_x86_feature_detected!("avx2") {
            return Tier::Sse;
        }
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("vpclmulqdq")
        {
            Tier::Avx512
        } else {
            Tier::Avx2
        }
    }

    /// `tier` must not exceed what the CPU supports (the callers clamp it).
    #[inline]
    pub(super) fn crc_fold(
        tier: Tier,
        k: &FoldConstants,
        register: u32,
        data: &[u8],
    ) -> Option<(u32, usize)> {
        match tier {
            Tier::Portable => None,
            Tier::Avx512 if data.len() >= 256 => {
                // SAFETY: the tier is at most the detected one, so the CPU has AVX-512 F/BW/VL,
                // VPCLMULQDQ, PCLMULQDQ and SSE4.1; the kernel needs at least 256 bytes.
                Some(unsafe { fold_avx512(k, register, data) })
            }
            _ if data.len() >= 16 => {
                // SAFETY: any tier from Sse up has PCLMULQDQ and SSE4.1; at least 16 bytes.
                Some(unsafe { fold_sse(k, register, data) })
            }
            _ => None,
        }
    }

    /// Loads 16 bytes.
    #[inline(always)]
    fn load128(block: &[u8; 16]) -> __m128i {
        // SAFETY: `block` is 16 readable bytes; the load has no alignment requirement.
        unsafe { _mm_loadu_si128(block.as_ptr().cast()) }
    }

    /// Loads 64 bytes.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn load512(block: &[u8; 64]) -> __m512i {
        // SAFETY: `block` is 64 readable bytes; the load has no alignment requirement.
        unsafe { _mm512_loadu_si512(block.as_ptr().cast()) }
    }

    /// The folding multiplier pair for `D` bits, as a 128-bit value.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn pair<const D: u32>(k: &FoldConstants) -> __m128i {
        let [hi, lo] = k.fold[const { fold_index(D) }];
        _mm_set_epi64x(lo as i64, hi as i64)
    }

    /// `x` folded forward over the distance of `pair`: `x.lane0·pair.lane0 ^ x.lane1·pair.lane1`.
    #[inline]
    #[target_feature(enable = "pclmulqdq")]
    fn fold128(x: __m128i, pair: __m128i) -> __m128i {
        _mm_xor_si128(
            _mm_clmulepi64_si128(x, pair, 0x00),
            _mm_clmulepi64_si128(x, pair, 0x11),
        )
    }

    /// Reduces the final 128-bit accumulator to the CRC register (see [`FoldConstants`]).
    #[inline]
    #[target_feature(enable = "pclmulqdq,sse4.1")]
    fn reduce128(k: &FoldConstants, x: __m128i) -> u32 {
        let x63 = _mm_cvtsi64_si128(k.x63 as i64);
        // T = X_hi·x^64 + X_lo, with X_hi·x^64 replaced by X_hi·(x^63 mod P)·x: at most 96 bits.
        let t = _mm_xor_si128(
            _mm_clmulepi64_si128(x, x63, 0x00),
            _mm_unpackhi_epi64(_mm_setzero_si128(), x),
        );
        // Same again for the (at most 32-bit) upper part: the result lands in lane 1, 64 bits.
        let t = _mm_xor_si128(_mm_clmulepi64_si128(t, x63, 0x00), t);
        let t_rev = _mm_extract_epi64(t, 1) as u64;
        // Barrett: q = T + floor(T·mu' / x^64); the floor comes out one bit short in lane 0.
        let f = _mm_clmulepi64_si128(
            _mm_cvtsi64_si128(t_rev as i64),
            _mm_cvtsi64_si128(k.mu as i64),
            0x00,
        );
        let q_rev = t_rev ^ ((_mm_cvtsi128_si64(f) as u64) << 1);
        // register = (q·(P - x^w)) mod x^w, found in lane 1 above bit 63 - w.
        let r = _mm_clmulepi64_si128(
            _mm_cvtsi64_si128(q_rev as i64),
            _mm_cvtsi64_si128(k.poly as i64),
            0x00,
        );
        let lane1 = _mm_extract_epi64(r, 1) as u64;
        ((lane1 >> (63 - k.width)) & ((1u64 << k.width) - 1)) as u32
    }

    /// Folds `data` (at least 16 bytes) with 128-bit PCLMULQDQ.
    #[target_feature(enable = "pclmulqdq,sse4.1")]
    fn fold_sse(k: &FoldConstants, register: u32, data: &[u8]) -> (u32, usize) {
        let (blocks, _) = data.as_chunks::<16>();
        let Some((first, mut rest)) = blocks.split_first() else {
            return (register, 0);
        };
        let mut x = _mm_xor_si128(load128(first), _mm_cvtsi32_si128(register as i32));
        if rest.len() >= 7 {
            // Four independent accumulators, 64 bytes apart, hide the multiplier latency.
            let k512 = pair::<512>(k);
            let mut x1 = load128(&rest[0]);
            let mut x2 = load128(&rest[1]);
            let mut x3 = load128(&rest[2]);
            rest = &rest[3..];
            let (quads, tail) = rest.as_chunks::<4>();
            for q in quads {
                x = _mm_xor_si128(fold128(x, k512), load128(&q[0]));
                x1 = _mm_xor_si128(fold128(x1, k512), load128(&q[1]));
                x2 = _mm_xor_si128(fold128(x2, k512), load128(&q[2]));
                x3 = _mm_xor_si128(fold128(x3, k512), load128(&q[3]));
            }
            rest = tail;
            x = _mm_xor_si128(
                _mm_xor_si128(fold128(x, pair::<384>(k)), fold128(x1, pair::<256>(k))),
                _mm_xor_si128(fold128(x2, pair::<128>(k)), x3),
            );
        }
        let k128 = pair::<128>(k);
        for b in rest {
            x = _mm_xor_si128(fold128(x, k128), load128(b));
        }
        finish(k, x, data, blocks.len() * 16)
    }

    /// Shuffle masks for [`finish`]: `[0x80; 16]`, then `0..16`, then `[0x80; 16]`. PSHUFB
    /// zeroes lanes whose mask byte has bit 7 set.
    const SHIFT_MASKS: [u8; 48] = {
        let mut t = [0x80u8; 48];
        let mut i = 0;
        while i < 16 {
            t[16 + i] = i as u8;
            i += 1;
        }
        t
    };

    /// Folds in the last `data.len() - done` (< 16) bytes, which follow the accumulator `x`, and
    /// reduces; returns the register and `data.len()`, or `done` if nothing was left.
    ///
    /// The accumulator stands for a 16-byte message block `X`, so the data is `X ++ tail`, with
    /// `r` tail bytes. That is the same as `(zeros(16 - r) ++ X[..r]) ++ (X[r..] ++ tail)`: two
    /// whole blocks, the first folded forward over the second. The tail is taken from the last 16
    /// bytes of `data`, whose first `16 - r` bytes were folded already and are masked out.
    #[inline]
    #[target_feature(enable = "pclmulqdq,sse4.1")]
    fn finish(k: &FoldConstants, x: __m128i, data: &[u8], done: usize) -> (u32, usize) {
        let r = data.len() - done;
        let masks = (
            SHIFT_MASKS.get(r..).and_then(|m| m.first_chunk::<16>()),
            SHIFT_MASKS
                .get(16 + r..)
                .and_then(|m| m.first_chunk::<16>()),
            data.last_chunk::<16>(),
        );
        let (true, (Some(first_mask), Some(second_mask), Some(last))) = (r > 0, masks) else {
            return (reduce128(k, x), done);
        };
        let first_mask = load128(first_mask);
        let first = _mm_shuffle_epi8(x, first_mask);
        let tail_lanes = _mm_cmpgt_epi8(first_mask, _mm_set1_epi8(-1));
        let second = _mm_or_si128(
            _mm_shuffle_epi8(x, load128(second_mask)),
            _mm_and_si128(load128(last), tail_lanes),
        );
        let x = _mm_xor_si128(fold128(first, pair::<128>(k)), second);
        (reduce128(k, x), data.len())
    }

    /// `z` folded forward over the distance of `pair` (broadcast to the four lanes), xor `next`.
    #[inline]
    #[target_feature(enable = "avx512f,vpclmulqdq")]
    fn fold512(z: __m512i, pair: __m512i, next: __m512i) -> __m512i {
        _mm512_ternarylogic_epi64(
            _mm512_clmulepi64_epi128(z, pair, 0x00),
            _mm512_clmulepi64_epi128(z, pair, 0x11),
            next,
            0x96,
        )
    }

    /// Folds `data` (at least 256 bytes) with 512-bit VPCLMULQDQ.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,vpclmulqdq,pclmulqdq,sse4.1")]
    fn fold_avx512(k: &FoldConstants, register: u32, data: &[u8]) -> (u32, usize) {
        let (wide, _) = data.as_chunks::<64>();
        let Some(([b0, b1, b2, b3], mut rest)) = wide.split_first_chunk::<4>() else {
            return fold_sse(k, register, data);
        };
        let mut z0 = _mm512_xor_si512(
            load512(b0),
            _mm512_zextsi128_si512(_mm_cvtsi32_si128(register as i32)),
        );
        let mut z1 = load512(b1);
        let mut z2 = load512(b2);
        let mut z3 = load512(b3);
        // Four 512-bit accumulators, 256 bytes apart.
        let k2048 = _mm512_broadcast_i32x4(pair::<2048>(k));
        let (quads, tail) = rest.as_chunks::<4>();
        for q in quads {
            z0 = fold512(z0, k2048, load512(&q[0]));
            z1 = fold512(z1, k2048, load512(&q[1]));
            z2 = fold512(z2, k2048, load512(&q[2]));
            z3 = fold512(z3, k2048, load512(&q[3]));
        }
        rest = tail;
        let z = fold512(
            z0,
            _mm512_broadcast_i32x4(pair::<1536>(k)),
            _mm512_setzero_si512(),
        );
        let z = fold512(z1, _mm512_broadcast_i32x4(pair::<1024>(k)), z);
        let mut z = fold512(
            z2,
            _mm512_broadcast_i32x4(pair::<512>(k)),
            _mm512_xor_si512(z, z3),
        );
        let k512 = _mm512_broadcast_i32x4(pair::<512>(k));
        for b in rest {
            z = fold512(z, k512, load512(b));
        }
        // Four 128-bit lanes, earliest in lane 0, folded into one.
        let mut x = _mm_xor_si128(
            _mm_xor_si128(
                fold128(_mm512_castsi512_si128(z), pair::<384>(k)),
                fold128(_mm512_extracti32x4_epi32::<1>(z), pair::<256>(k)),
            ),
            _mm_xor_si128(
                fold128(_mm512_extracti32x4_epi32::<2>(z), pair::<128>(k)),
                _mm512_extracti32x4_epi32::<3>(z),
            ),
        );
        let done = wide.len() * 64;
        let (blocks, _) = data.get(done..).unwrap_or_default().as_chunks::<16>();
        let k128 = pair::<128>(k);
        for b in blocks {
            x = _mm_xor_si128(fold128(x, k128), load128(b));
        }
        finish(k, x, data, done + blocks.len() * 16)
    }

    /// `tier` must not exceed what the CPU supports (the callers clamp it).
    #[inline]
    pub(super) fn find_in_set(tier: Tier, t: &NibbleTables, data: &[u8]) -> Option<usize> {
        match tier {
            Tier::Portable => None,
            Tier::Avx2 | Tier::Avx512 if data.len() >= 32 => {
                // SAFETY: tiers from Avx2 up have AVX2; at least 32 bytes.
                Some(unsafe { find_avx2(t, data) })
            }
            _ if data.len() >= 16 => {
                // SAFETY: tiers from Sse up have SSSE3; at least 16 bytes.
                Some(unsafe { find_ssse3(t, data) })
            }
            _ => None,
        }
    }

    /// Bit `i` set when byte `i` of `v` is in the set: row lookup by low nibble (bit 7 of the
    /// index selects the table, as PSHUFB zeroes lanes whose index has bit 7 set), then the bit of
    /// the high nibble.
    #[inline]
    #[target_feature(enable = "ssse3")]
    fn classify128(v: __m128i, low: __m128i, high: __m128i, bits: __m128i) -> u32 {
        let row = _mm_or_si128(
            _mm_shuffle_epi8(low, v),
            _mm_shuffle_epi8(high, _mm_xor_si128(v, _mm_set1_epi8(i8::MIN))),
        );
        let hi = _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(0x0F));
        let bit = _mm_shuffle_epi8(bits, hi);
        let hit = _mm_cmpeq_epi8(_mm_and_si128(row, bit), bit);
        _mm_movemask_epi8(hit) as u32
    }

    const HIGH_NIBBLE_BITS: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];

    #[target_feature(enable = "ssse3")]
    fn find_ssse3(t: &NibbleTables, data: &[u8]) -> usize {
        let low = load128(&t.low);
        let high = load128(&t.high);
        let bits = load128(&HIGH_NIBBLE_BITS);
        let (blocks, tail) = data.as_chunks::<16>();
        for (i, b) in blocks.iter().enumerate() {
            let m = classify128(load128(b), low, high, bits);
            if m != 0 {
                return i * 16 + m.trailing_zeros() as usize;
            }
        }
        if !tail.is_empty() {
            // The last 16 bytes, overlapping bytes already known not to match.
            if let Some(last) = data.last_chunk::<16>() {
                let m = classify128(load128(last), low, high, bits);
                if m != 0 {
                    return data.len() - 16 + m.trailing_zeros() as usize;
                }
            }
        }
        data.len()
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn classify256(v: __m256i, low: __m256i, high: __m256i, bits: __m256i) -> u32 {
        let row = _mm256_or_si256(
            _mm256_shuffle_epi8(low, v),
            _mm256_shuffle_epi8(high, _mm256_xor_si256(v, _mm256_set1_epi8(i8::MIN))),
        );
        let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0F));
        let bit = _mm256_shuffle_epi8(bits, hi);
        let hit = _mm256_cmpeq_epi8(_mm256_and_si256(row, bit), bit);
        _mm256_movemask_epi8(hit) as u32
    }

    /// Loads 32 bytes.
    #[inline]
    #[target_feature(enable = "avx")]
    fn load256(block: &[u8; 32]) -> __m256i {
        // SAFETY: `block` is 32 readable bytes; the load has no alignment requirement.
        unsafe { _mm256_loadu_si256(block.as_ptr().cast()) }
    }

    #[target_feature(enable = "avx2")]
    fn find_avx2(t: &NibbleTables, data: &[u8]) -> usize {
        let low = _mm256_broadcastsi128_si256(load128(&t.low));
        let high = _mm256_broadcastsi128_si256(load128(&t.high));
        let bits = _mm256_broadcastsi128_si256(load128(&HIGH_NIBBLE_BITS));
        let (blocks, tail) = data.as_chunks::<32>();
        for (i, b) in blocks.iter().enumerate() {
            let m = classify256(load256(b), low, high, bits);
            if m != 0 {
                return i * 32 + m.trailing_zeros() as usize;
            }
        }
        if !tail.is_empty() {
            // The last 32 bytes, overlapping bytes already known not to match.
            if let Some(last) = data.last_chunk::<32>() {
                let m = classify256(load256(last), low, high, bits);
                if m != 0 {
                    return data.len() - 32 + m.trailing_zeros() as usize;
                }
            }
        }
        data.len()
    }
}
