//! Frame Check Sequences of RFC 1662 appendix C: FCS-16 and FCS-32.
//!
//! Both are reflected CRCs: FCS-16 is CRC-16/X-25 (polynomial 0x1021, reflected), FCS-32 is the
//! CRC-32 of Ethernet (polynomial 0x04C11DB7, reflected). The `*_update` functions advance the raw
//! register; start from [`FCS16_INIT`] / [`FCS32_INIT`], and a frame received intact (payload plus
//! the transmitted FCS) leaves [`FCS16_GOOD`] / [`FCS32_GOOD`].
//!
//! # Speed
//!
//! [`fcs16_update`] and [`fcs32_update`] pick the fastest implementation for the running CPU:
//!
//! * on x86-64 with PCLMULQDQ (detected at run time, once), buffers of [`CLMUL_MIN_LEN`] bytes
//!   or more are folded 16 bytes at a time with carry-less multiplication (32 bytes per
//!   instruction pair with 256-bit VPCLMULQDQ on AVX2 machines that have it, from 128 bytes; 64
//!   with 512-bit VPCLMULQDQ on AVX-512 machines, from 256 bytes) and reduced with a Barrett
//!   reduction;
//! * everywhere else, and for short buffers and tails, the [`portable`] slice-by-16 tables
//!   (16 bytes per step, no unsafe code).
//!
//! Every implementation returns exactly what the [`bytewise`] reference returns, for every input;
//! the tests check all lengths up to 2048 at many alignments and initial registers.
//!
//! The folding constants are not copied from anywhere: a `const fn` computes them at compile time
//! from the generator polynomial (`x^n mod P` and the Barrett quotient `floor(x^(64+w) / P)`);
//! the algebra is written down next to it, and a test re-derives the relations independently.
//!
//! Setting the environment variable `PPP_FRAME_PORTABLE` (to anything) before the first call
//! switches the SIMD kernels off for the whole process, to measure or fuzz the portable paths
//! (the framing codecs can also be switched one by one, see [`crate::Kernels`]).
//!
//! The async HDLC encoder does not call these: it folds the FCS of a payload in the same pass
//! that escapes it.

use crate::simd::Tier;

/// Initial FCS-16 register value.
pub const FCS16_INIT: u16 = 0xFFFF;
/// FCS-16 register value after a frame with a correct FCS has been run through it.
pub const FCS16_GOOD: u16 = 0xF0B8;
/// Initial FCS-32 register value.
pub const FCS32_INIT: u32 = 0xFFFF_FFFF;
/// FCS-32 register value after a frame with a correct FCS has been run through it.
pub const FCS32_GOOD: u32 = 0xDEBB_20E3;

/// Buffers at least this long use carry-less multiplication when the CPU has it; shorter ones use
/// the [`portable`] tables, which are faster there.
pub const CLMUL_MIN_LEN: usize = 64;

/// The FCS-16 generator x^16 + x^12 + x^5 + 1, not reflected, with its x^16 term.
const FCS16_POLY: u64 = 0x1_1021;
/// The FCS-32 generator (x^32 + x^26 + ... + 1), not reflected, with its x^32 term.
const FCS32_POLY: u64 = 0x1_04C1_1DB7;

/// Folding constants of FCS-16, derived at compile time.
pub(crate) static FCS16_FOLD: FoldConstants = FoldConstants::derive(FCS16_POLY, 16);
/// Folding constants of FCS-32, derived at compile time.
pub(crate) static FCS32_FOLD: FoldConstants = FoldConstants::derive(FCS32_POLY, 32);

/// Advances the FCS-16 register over `data`.
///
/// Updates compose, so a frame can be checked as it arrives:
///
/// ```
/// use ppp_frame::fcs::{FCS16_GOOD, FCS16_INIT, fcs16, fcs16_update};
///
/// let mut frame = b"\xFF\x03\xC0\x21 an LCP packet".to_vec();
/// frame.extend_from_slice(&fcs16(&frame).to_le_bytes()); // the FCS goes out low byte first
/// let (a, b) = frame.split_at(7);
/// assert_eq!(fcs16_update(fcs16_update(FCS16_INIT, a), b), FCS16_GOOD);
/// ```
#[inline]
pub fn fcs16_update(fcs: u16, data: &[u8]) -> u16 {
    if data.len() >= CLMUL_MIN_LEN
        && let Some((register, done)) = crate::simd::crc_fold(&FCS16_FOLD, u32::from(fcs), data)
    {
        // The folded register of a 16-bit CRC fits in 16 bits.
        let rest = data.get(done..).unwrap_or_default();
        return portable::fcs16_update(register as u16, rest);
    }
    portable::fcs16_update(fcs, data)
}

/// Advances the FCS-32 register over `data`.
///
/// ```
/// use ppp_frame::fcs::{FCS32_GOOD, FCS32_INIT, fcs32, fcs32_update};
///
/// let mut frame = vec![0x5A; 1500];
/// frame.extend_from_slice(&fcs32(&frame).to_le_bytes());
/// assert_eq!(fcs32_update(FCS32_INIT, &frame), FCS32_GOOD);
/// frame[700] ^= 0x04; // one bit damaged
/// assert_ne!(fcs32_update(FCS32_INIT, &frame), FCS32_GOOD);
/// ```
#[inline]
pub fn fcs32_update(fcs: u32, data: &[u8]) -> u32 {
    if data.len() >= CLMUL_MIN_LEN
        && let Some((register, done)) = crate::simd::crc_fold(&FCS32_FOLD, fcs, data)
    {
        let rest = data.get(done..).unwrap_or_default();
        return portable::fcs32_update(register, rest);
    }
    portable::fcs32_update(fcs, data)
}

/// [`fcs16_update`] using no SIMD tier above `max` ([`Tier::Portable`]: the slice-by-16 tables).
#[inline]
pub(crate) fn fcs16_update_up_to(max: Tier, fcs: u16, data: &[u8]) -> u16 {
    if max != Tier::Portable
        && data.len() >= CLMUL_MIN_LEN
        && let Some((register, done)) =
            crate::simd::crc_fold_up_to(max, &FCS16_FOLD, u32::from(fcs), data)
    {
        let rest = data.get(done..).unwrap_or_default();
        return portable::fcs16_update(register as u16, rest);
    }
    portable::fcs16_update(fcs, data)
}

/// [`fcs32_update`] using no SIMD tier above `max` ([`Tier::Portable`]: the slice-by-16 tables).
#[inline]
pub(crate) fn fcs32_update_up_to(max: Tier, fcs: u32, data: &[u8]) -> u32 {
    if max != Tier::Portable
        && data.len() >= CLMUL_MIN_LEN
        && let Some((register, done)) = crate::simd::crc_fold_up_to(max, &FCS32_FOLD, fcs, data)
    {
        let rest = data.get(done..).unwrap_or_default();
        return portable::fcs32_update(register, rest);
    }
    portable::fcs32_update(fcs, data)
}

/// The FCS-16 of `data` as transmitted: the complement of the register, sent low byte first.
///
/// ```
/// // The check value of RFC 1662's FCS-16 (CRC-16/X-25).
/// assert_eq!(ppp_frame::fcs::fcs16(b"123456789"), 0x906E);
/// ```
pub fn fcs16(data: &[u8]) -> u16 {
    !fcs16_update(FCS16_INIT, data)
}

/// The FCS-32 of `data` as transmitted: the complement of the register, sent low byte first.
///
/// ```
/// // The check value of RFC 1662's FCS-32 (the CRC-32 of Ethernet).
/// assert_eq!(ppp_frame::fcs::fcs32(b"123456789"), 0xCBF4_3926);
/// ```
pub fn fcs32(data: &[u8]) -> u32 {
    !fcs32_update(FCS32_INIT, data)
}

/// The constants that carry-less-multiplication folding needs for one reflected CRC of width
/// `w <= 32`, derived from its generator polynomial `P` (degree `w`).
///
/// # The algebra
///
/// A reflected CRC register `R` after a message `M` of `L` bits is `(R·x^L + M·x^w) mod P`, where
/// the first bit on the wire is the highest-degree coefficient of `M`. A 16-byte block loaded
/// little-endian into a 128-bit register holds the polynomial bit-reversed: bit `k` is the
/// coefficient of `x^(127-k)`. Multiplying two such bit-reversed 64-bit halves with PCLMULQDQ
/// yields the bit-reversed 127-bit product one position short of 128 bits, that is, the product
/// times `x`. Hence every multiplier below is stored bit-reversed (`u64::reverse_bits`) and is
/// `x^(n-1) mod P` where the algebra wants `x^n`.
///
/// * Folding a 128-bit accumulator `A = A_hi·x^64 + A_lo` forward over `D` bits of later data
///   replaces `A·x^D` by `A_hi·(x^(D+63) mod P)·x + A_lo·(x^(D-1) mod P)·x`, which is congruent
///   mod `P` and at most 96 bits long: [`Self::fold`] holds that pair for each distance `D`.
/// * The final 128-bit accumulator `X = X_hi·x^64 + X_lo` stands for `X·x^w mod P`, which is
///   the low `w` bits of `q·(P - x^w)` for the quotient `q` of `X·x^w` by `P`; only the low
///   `w` bits of `q` matter. `q` is the sum of the quotients of its two halves, each found by
///   Barrett reduction: `X_lo·x^w` with `mu = floor(x^(64+w) / P)` (degree 64) gives
///   `X_lo + floor(X_lo·(mu - x^64) / x^64)`, and `X_hi·x^(64+w)` with
///   `mu2 = floor(x^(128+w) / P)` (degree 128) gives `floor(X_hi·mu2 / x^64)`, whose low `w` bits
///   need only `X_hi·(bits 64.. of mu2)` and `X_hi·(bits ..64 of mu2)`. So three independent
///   multiplications give the low bits of `q`, and a fourth one the register: two
///   multiplications deep.
/// * A short buffer (up to [`SHORT_FOLD_MAX`] bytes) is padded with zeros at its front to whole
///   16-byte blocks, which leaves its CRC unchanged once the initial register is XORed into its
///   first bytes, and every block is folded over its own distance to the end at once (one
///   multiplication deep): [`Self::fold`] holds every multiple of 128 bits up to 2048.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FoldConstants {
    /// The CRC width `w` in bits (16 or 32).
    pub(crate) width: u32,
    /// `fold[i]` folds over `FOLD_DISTANCES[i]` bits: `[x^(D+63) mod P, x^(D-1) mod P]`, both
    /// bit-reversed into 64 bits; lane 0 multiplies the earlier (low-address) half.
    pub(crate) fold: [[u64; 2]; FOLD_DISTANCES.len()],
    /// `fold` backwards, then zeros: `by_lane[j]` folds over `2048 - 128·j` bits for `j < 16`
    /// and is zero from 16 on. Four consecutive entries are the constants of four consecutive
    /// 16-byte blocks, each folded over its own distance to a common end (the block that ends
    /// there gets zero), so 64 bytes of them load as one vector.
    pub(crate) by_lane: [[u64; 2]; 32],
    /// `floor(x^(64+w) / P)` without its `x^64` term, bit-reversed.
    pub(crate) mu: u64,
    /// Bits 0 to 63 of `floor(x^(128+w) / P)`, bit-reversed.
    pub(crate) mu2_low: u64,
    /// Bits 64 to `64 + w - 1` of `floor(x^(128+w) / P)`, bit-reversed.
    pub(crate) mu2_high: u64,
    /// `P - x^w`, bit-reversed.
    pub(crate) poly: u64,
}

/// The folding distances, in bits, that [`FoldConstants::fold`] has constants for: every
/// multiple of 128 up to 2048 (`fold[i]` is for `128·(i + 1)` bits).
pub(crate) const FOLD_DISTANCES: [u32; 16] = {
    let mut d = [0; 16];
    let mut i = 0;
    while i < 16 {
        d[i] = 128 * (i as u32 + 1);
        i += 1;
    }
    d
};

/// Buffers up to this long are folded in one step (see [`FoldConstants`]): 16 blocks of 16 bytes,
/// the longest distance [`FoldConstants::fold`] covers plus one block.
pub(crate) const SHORT_FOLD_MAX: usize = 16 * (FOLD_DISTANCES.len() + 1);

/// Index into [`FoldConstants::fold`] of a folding distance in bits.
pub(crate) const fn fold_index(distance: u32) -> usize {
    let mut i = 0;
    while i < FOLD_DISTANCES.len() {
        if FOLD_DISTANCES[i] == distance {
            return i;
        }
        i += 1;
    }
    panic!("no folding constants for this distance")
}

impl FoldConstants {
    /// Derives the constants of the reflected CRC with generator `poly` (not reflected, with its
    /// `x^width` term) and width `width` (at most 32).
    pub(crate) const fn derive(poly: u64, width: u32) -> Self {
        assert!(width >= 8 && width <= 32);
        assert!(poly >> width == 1);
        let mut fold = [[0u64; 2]; FOLD_DISTANCES.len()];
        let mut i = 0;
        while i < FOLD_DISTANCES.len() {
            let d = FOLD_DISTANCES[i];
            fold[i] = [
                xn_mod(d + 63, poly, width).reverse_bits(),
                xn_mod(d - 1, poly, width).reverse_bits(),
            ];
            i += 1;
        }
        let mut by_lane = [[0u64; 2]; 32];
        let mut j = 0;
        while j < FOLD_DISTANCES.len() {
            by_lane[j] = fold[FOLD_DISTANCES.len() - 1 - j];
            j += 1;
        }
        let mu2 = quotient_low(128 + width, poly, width);
        FoldConstants {
            width,
            fold,
            by_lane,
            mu: (quotient_low(64 + width, poly, width) as u64).reverse_bits(),
            mu2_low: (mu2 as u64).reverse_bits(),
            mu2_high: (((mu2 >> 64) as u64) & ((1u64 << width) - 1)).reverse_bits(),
            poly: (poly & ((1u64 << width) - 1)).reverse_bits(),
        }
    }
}

/// `x^n mod poly` over GF(2), `poly` of degree `width` (bit `d` is the coefficient of `x^d`).
const fn xn_mod(n: u32, poly: u64, width: u32) -> u64 {
    let mut r: u64 = 1;
    let mut i = 0;
    while i < n {
        r <<= 1;
        if r >> width & 1 != 0 {
            r ^= poly;
        }
        i += 1;
    }
    r
}

/// The low 128 bits of `floor(x^n / poly)` over GF(2), `poly` of degree `width`: long division,
/// one dividend bit at a time from the top, keeping the `width`-bit remainder.
const fn quotient_low(n: u32, poly: u64, width: u32) -> u128 {
    let mut rem: u64 = 0;
    let mut quotient: u128 = 0;
    let mut i = n + 1;
    while i > 0 {
        i -= 1;
        // Bring down the dividend's coefficient of x^i (only x^n is set).
        rem = rem << 1 | (i == n) as u64;
        let bit = rem >> width & 1;
        if bit != 0 {
            rem ^= poly;
        }
        quotient = quotient << 1 | bit as u128;
    }
    quotient
}

/// Slice-by-16 table-driven FCS: 16 bytes per step with 16 lookup tables, safe code only.
///
/// This is what [`fcs16_update`] / [`fcs32_update`] use on CPUs without carry-less multiplication,
/// and for short buffers and tails everywhere. Public so benches and fuzz targets can compare it
/// with the dispatched path.
pub mod portable {
    use super::bytewise::{FCS16_TABLE, FCS32_TABLE};

    const fn slice_tables16() -> [[u32; 256]; 16] {
        let mut t = [[0u32; 256]; 16];
        let mut v = 0;
        while v < 256 {
            t[0][v] = FCS16_TABLE[v] as u32;
            v += 1;
        }
        let mut k = 1;
        while k < 16 {
            let mut v = 0;
            while v < 256 {
                let prev = t[k - 1][v];
                t[k][v] = (prev >> 8) ^ FCS16_TABLE[(prev & 0xFF) as usize] as u32;
                v += 1;
            }
            k += 1;
        }
        t
    }

    const fn slice_tables32() -> [[u32; 256]; 16] {
        let mut t = [[0u32; 256]; 16];
        t[0] = FCS32_TABLE;
        let mut k = 1;
        while k < 16 {
            let mut v = 0;
            while v < 256 {
                let prev = t[k - 1][v];
                t[k][v] = (prev >> 8) ^ FCS32_TABLE[(prev & 0xFF) as usize];
                v += 1;
            }
            k += 1;
        }
        t
    }

    /// `SLICE16[k][v]`: the FCS-16 register contribution of byte `v` followed by `k` zero bytes
    /// (zero-extended to 32 bits, so that both FCS widths share one code path).
    static SLICE16: [[u32; 256]; 16] = slice_tables16();
    /// `SLICE32[k][v]`: the FCS-32 register contribution of byte `v` followed by `k` zero bytes.
    static SLICE32: [[u32; 256]; 16] = slice_tables32();

    /// The part of a 16-byte block's contribution that the register does not reach: the lookups
    /// of bytes `REG..16`, where `REG` is the register width in bytes (2 or 4).
    #[inline(always)]
    fn unreached<const REG: usize>(t: &[[u32; 256]; 16], block: &[u8; 16]) -> u32 {
        let mut acc = 0;
        let mut i = REG;
        while i < 16 {
            acc ^= t[15 - i][usize::from(block[i])];
            i += 1;
        }
        acc
    }

    /// The part of a 16-byte block's contribution that depends on the register: the lookups of
    /// its first `REG` bytes with the register XORed in.
    #[inline(always)]
    fn reached<const REG: usize>(t: &[[u32; 256]; 16], block: &[u8; 16], reg: u32) -> u32 {
        let x = u32::from_le_bytes([block[0], block[1], block[2], block[3]]) ^ reg;
        let mut acc = 0;
        let mut i = 0;
        while i < REG {
            acc ^= t[15 - i][((x >> (8 * i)) & 0xFF) as usize];
            i += 1;
        }
        acc
    }

    /// Slice-by-16 over whole blocks, software-pipelined.
    ///
    /// Of the sixteen lookups of a block only the first `REG` depend on the register; the other
    /// ones depend on the data alone. Computing those for the *next* block while this block's
    /// register-dependent lookups run, and carrying them across the loop as a separate value,
    /// keeps the chain from one block's register to the next at one load and `REG` XORs. Written
    /// as one expression the compiler would turn the sixteen XORs into a single chain (it does,
    /// whatever the bracketing), and that chain, not the number of instructions, is what bounds
    /// a table-driven CRC on an out-of-order core: this is about twice as fast.
    #[inline(always)]
    fn blocks<const REG: usize>(t: &[[u32; 256]; 16], mut reg: u32, blocks: &[[u8; 16]]) -> u32 {
        let Some((mut current, rest)) = blocks.split_first() else {
            return reg;
        };
        let mut pending = unreached::<REG>(t, current);
        for next in rest {
            reg = pending ^ reached::<REG>(t, current, reg);
            pending = unreached::<REG>(t, next);
            current = next;
        }
        pending ^ reached::<REG>(t, current, reg)
    }

    /// Advances the register over fewer than 16 bytes in one step (slicing by their number
    /// `n`): byte `i` XOR the register's byte `i` looks up the table of `n - 1 - i` zero bytes
    /// after it, and the register bytes that reach past the data move down. The lookups do not
    /// depend on each other, so the chain through the register is one load deep, where a byte at
    /// a time it would be one load per byte (the tails of frames: the last bytes before the flag).
    #[inline(always)]
    fn tail(t: &[[u32; 256]; 16], reg: u32, data: &[u8]) -> u32 {
        let n = data.len();
        let reg_bytes = reg.to_le_bytes();
        let mut acc = reg.checked_shr(8 * n as u32).unwrap_or(0);
        for (i, &byte) in data.iter().enumerate().take(15) {
            let r = reg_bytes.get(i).copied().unwrap_or(0);
            acc ^= t[(n - 1 - i) & 15][usize::from(byte ^ r)];
        }
        acc
    }

    /// Advances the register over the last `n` (1 to 15) bytes of `window`, the 16 bytes that end
    /// the data (the bytes in front of those `n` are already in `reg`).
    ///
    /// A register of zero stays zero over zero bytes, so the tail with the register XORed into its
    /// first bytes and zeros in front of it is a half block (`n` up to 8) or a block of its own,
    /// sliced with the fixed tables of those positions: a masked word load instead of a lookup
    /// table chosen per byte, no branch per byte. Register bytes that reach past the data (`n`
    /// below the register's width) move down, as in [`tail`].
    #[inline(always)]
    fn tail_in_window(t: &[[u32; 256]; 16], reg: u32, window: &[u8; 16], n: usize) -> u32 {
        let (lo, hi) = window.split_at(8);
        let lo = u64::from_le_bytes(lo.try_into().unwrap_or_default());
        let hi = u64::from_le_bytes(hi.try_into().unwrap_or_default());
        let reg64 = u64::from(reg);
        let lookups = |acc: u32, word: u64, last_table: usize| {
            let mut acc = acc;
            let mut i = 0;
            while i < 8 {
                acc ^= t[last_table - i][usize::from((word >> (8 * i)) as u8)];
                i += 1;
            }
            acc
        };
        if n <= 8 {
            // 0 to 56: the bytes in front of the tail are masked off.
            let shift = (8 * (8 - n) as u32) & 63;
            let word = (hi & (u64::MAX << shift)) ^ (reg64 << shift);
            lookups(reg.checked_shr(8 * n as u32).unwrap_or(0), word, 7)
        } else {
            // 8 to 56; the register (4 bytes at most) may reach into the upper word.
            let shift = (8 * (16 - n) as u32) & 63;
            let low = (lo & (u64::MAX << shift)) ^ (reg64 << shift);
            let high = hi ^ (reg64 >> (64 - shift));
            lookups(lookups(0, low, 15), high, 7)
        }
    }

    /// The register advanced over the last `n` (0 to 15) bytes of `data`, the ones after its
    /// whole blocks: [`tail_in_window`] when `data` has 16 bytes, else [`tail`].
    #[inline(always)]
    fn finish(t: &[[u32; 256]; 16], reg: u32, data: &[u8], n: usize) -> u32 {
        if n == 0 {
            return reg;
        }
        match data.last_chunk::<16>() {
            Some(window) => tail_in_window(t, reg, window, n),
            None => tail(t, reg, data.get(data.len() - n..).unwrap_or_default()),
        }
    }

    /// The slice tables of the FCS whose register is `REG` bytes wide (2: FCS-16, 4: FCS-32).
    #[inline(always)]
    const fn tables<const REG: usize>() -> &'static [[u32; 256]; 16] {
        if REG == 2 { &SLICE16 } else { &SLICE32 }
    }

    /// For loops that fold the FCS into their own pass over the data (the portable framing
    /// code): the part of a 16-byte block's step that does not depend on the register, for a
    /// `REG`-byte register (2: FCS-16, 4: FCS-32). Compute it a block ahead and combine it with
    /// [`block_reached`] (see [`blocks`] for why).
    #[inline(always)]
    pub(crate) fn block_unreached<const REG: usize>(block: &[u8; 16]) -> u32 {
        unreached::<REG>(tables::<REG>(), block)
    }

    /// The register after the 16-byte `block`: `unreached` (from [`block_unreached`]) XOR the
    /// register-dependent lookups.
    #[inline(always)]
    pub(crate) fn block_reached<const REG: usize>(
        reg: u32,
        block: &[u8; 16],
        unreached: u32,
    ) -> u32 {
        unreached ^ reached::<REG>(tables::<REG>(), block, reg)
    }

    /// The `REG`-byte register advanced over the last `n` (fewer than 16) bytes of `data`, the
    /// ones after its whole blocks.
    #[inline(always)]
    pub(crate) fn finish_tail<const REG: usize>(reg: u32, data: &[u8], n: usize) -> u32 {
        finish(tables::<REG>(), reg, data, n)
    }

    /// Advances the FCS-16 register over `data`, 16 bytes per step.
    pub fn fcs16_update(fcs: u16, data: &[u8]) -> u16 {
        let (whole, tail) = data.as_chunks::<16>();
        let reg = blocks::<2>(&SLICE16, u32::from(fcs), whole);
        // The register stays below 2^16: every entry of the FCS-16 tables does.
        finish(&SLICE16, reg, data, tail.len()) as u16
    }

    /// Advances the FCS-32 register over `data`, 16 bytes per step.
    pub fn fcs32_update(fcs: u32, data: &[u8]) -> u32 {
        let (whole, tail) = data.as_chunks::<16>();
        let reg = blocks::<4>(&SLICE32, fcs, whole);
        finish(&SLICE32, reg, data, tail.len())
    }
}

/// The byte-at-a-time table-driven algorithm of RFC 1662 appendix C (and of Linux `ppp_async`).
///
/// Kept as the reference the fast paths are tested against and as the baseline of the benches.
pub mod bytewise {
    const fn table16() -> [u16; 256] {
        let mut t = [0u16; 256];
        let mut i = 0;
        while i < 256 {
            let mut v = i as u16;
            let mut b = 0;
            while b < 8 {
                v = if v & 1 != 0 {
                    (v >> 1) ^ 0x8408
                } else {
                    v >> 1
                };
                b += 1;
            }
            t[i] = v;
            i += 1;
        }
        t
    }
    const fn table32() -> [u32; 256] {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut v = i as u32;
            let mut b = 0;
            while b < 8 {
                v = if v & 1 != 0 {
                    (v >> 1) ^ 0xEDB8_8320
                } else {
                    v >> 1
                };
                b += 1;
            }
            t[i] = v;
            i += 1;
        }
        t
    }
    /// The 256-entry FCS-16 table.
    pub static FCS16_TABLE: [u16; 256] = table16();
    /// The 256-entry FCS-32 table.
    pub static FCS32_TABLE: [u32; 256] = table32();

    /// Advances the FCS-16 register one byte at a time.
    pub fn fcs16_update(mut fcs: u16, data: &[u8]) -> u16 {
        for &b in data {
            fcs = (fcs >> 8) ^ FCS16_TABLE[((fcs ^ u16::from(b)) & 0xFF) as usize];
        }
        fcs
    }

    /// Advances the FCS-32 register one byte at a time.
    pub fn fcs32_update(mut fcs: u32, data: &[u8]) -> u32 {
        for &b in data {
            fcs = (fcs >> 8) ^ FCS32_TABLE[((fcs ^ u32::from(b)) & 0xFF) as usize];
        }
        fcs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{self, Tier};
    use proptest::prelude::*;

    /// The simulator's deterministic generator (one copy of it in the workspace).
    use ppp_sim::SimRng;

    fn random_bytes(rng: &mut SimRng, n: usize) -> Vec<u8> {
        (0..n).map(|_| rng.next_u64() as u8).collect()
    }

    /// FCS-16 through one tier: SIMD fold (when the tier can) plus the portable tail.
    fn fcs16_at(tier: Tier, fcs: u16, data: &[u8]) -> u16 {
        match simd::crc_fold_up_to(tier, &FCS16_FOLD, u32::from(fcs), data) {
            Some((reg, done)) => portable::fcs16_update(reg as u16, &data[done..]),
            None => portable::fcs16_update(fcs, data),
        }
    }

    fn fcs32_at(tier: Tier, fcs: u32, data: &[u8]) -> u32 {
        match simd::crc_fold_up_to(tier, &FCS32_FOLD, fcs, data) {
            Some((reg, done)) => portable::fcs32_update(reg, &data[done..]),
            None => portable::fcs32_update(fcs, data),
        }
    }

    #[test]
    fn rfc1662_check_values() {
        assert_eq!(fcs16(b"123456789"), 0x906E);
        assert_eq!(fcs32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn good_residues() {
        let mut frame = b"123456789".to_vec();
        frame.extend_from_slice(&fcs16(b"123456789").to_le_bytes());
        assert_eq!(fcs16_update(FCS16_INIT, &frame), FCS16_GOOD);
        let mut frame = b"123456789".to_vec();
        frame.extend_from_slice(&fcs32(b"123456789").to_le_bytes());
        assert_eq!(fcs32_update(FCS32_INIT, &frame), FCS32_GOOD);
    }

    #[test]
    fn good_residues_of_long_frames() {
        let mut rng = SimRng::new(7);
        for len in [63, 64, 65, 255, 256, 257, 1500, 4000] {
            let mut frame = random_bytes(&mut rng, len);
            frame.extend_from_slice(&fcs16(&frame).to_le_bytes());
            assert_eq!(fcs16_update(FCS16_INIT, &frame), FCS16_GOOD, "len {len}");
            let mut frame = random_bytes(&mut rng, len);
            frame.extend_from_slice(&fcs32(&frame).to_le_bytes());
            assert_eq!(fcs32_update(FCS32_INIT, &frame), FCS32_GOOD, "len {len}");
        }
    }

    /// The generator relations the constants must satisfy, recomputed independently: `x^n mod P`
    /// must agree with multiplication, `mu·P` must equal `x^(64+w)` plus a remainder of degree
    /// < w, and `x^n mod P` must agree with the byte tables.
    #[test]
    fn derived_constants_are_consistent() {
        for (poly, width) in [(FCS16_POLY, 16u32), (FCS32_POLY, 32)] {
            // x^(n+m) = x^n · x^m (mod P), with a bitwise polynomial multiply-and-reduce.
            let mulmod = |a: u64, b: u64| -> u64 {
                let mut r = 0u128;
                for i in 0..64 {
                    if b >> i & 1 != 0 {
                        r ^= u128::from(a) << i;
                    }
                }
                for bit in (width..128).rev() {
                    if r >> bit & 1 != 0 {
                        r ^= u128::from(poly) << (bit - width);
                    }
                }
                r as u64
            };
            for n in [0u32, 1, 31, 63, 64, 127, 191, 575, 2111] {
                for m in [0u32, 5, 64, 200] {
                    assert_eq!(
                        xn_mod(n + m, poly, width),
                        mulmod(xn_mod(n, poly, width), xn_mod(m, poly, width))
                    );
                }
            }
            // mu·P + x^(64+w) has degree < w.
            let mu = quotient_low(64 + width, poly, width);
            assert_eq!(mu >> 64, 1, "mu has degree 64");
            let mut prod = 0u128;
            for i in 0..=64 {
                if mu >> i & 1 != 0 {
                    prod ^= u128::from(poly) << i;
                }
            }
            prod ^= 1 << (64 + width);
            assert!(
                prod >> width == 0,
                "Barrett quotient wrong for width {width}"
            );
            // mu2·P + x^(128+w) has degree < w, checked on bits 0..128 of the product (mu2 has
            // degree 128: its top bit is implied and contributes P·x^128, which cancels x^(128+w)
            // above bit 127 and leaves (P - x^w)·x^128, nothing below bit 128).
            let mu2 = quotient_low(128 + width, poly, width);
            let mut prod = 0u128;
            for i in 0..128 {
                if mu2 >> i & 1 != 0 {
                    prod ^= u128::from(poly) << i;
                }
            }
            assert!(prod >> width == 0, "mu2 wrong for width {width}");
        }
        // Spot check against the byte tables: byte 0x80 is the polynomial 1 and byte 0x01 is x^7
        // (reflected), so their entries are x^w and x^(w+7) mod P, reflected into w bits.
        for (byte, n) in [(0x80usize, 0u32), (0x01, 7)] {
            assert_eq!(
                u64::from(bytewise::FCS32_TABLE[byte]),
                xn_mod(32 + n, FCS32_POLY, 32).reverse_bits() >> 32
            );
            assert_eq!(
                u64::from(bytewise::FCS16_TABLE[byte]),
                xn_mod(16 + n, FCS16_POLY, 16).reverse_bits() >> 48
            );
        }
    }

    /// Every tier the CPU has (and the portable one) equals the byte-at-a-time reference for all
    /// lengths 0..=2048, at random alignments and random initial registers.
    #[test]
    fn every_tier_matches_bytewise_for_all_lengths() {
        let mut rng = SimRng::new(0x5EED);
        let buf = random_bytes(&mut rng, 2048 + 64);
        for tier in simd::available_tiers() {
            for len in 0..=2048usize {
                let offset = (rng.next_u64() % 64) as usize;
                let data = &buf[offset..offset + len];
                let init16 = rng.next_u64() as u16;
                let init32 = rng.next_u64() as u32;
                assert_eq!(
                    fcs16_at(tier, init16, data),
                    bytewise::fcs16_update(init16, data),
                    "FCS-16 tier {tier:?} len {len} offset {offset}"
                );
                assert_eq!(
                    fcs32_at(tier, init32, data),
                    bytewise::fcs32_update(init32, data),
                    "FCS-32 tier {tier:?} len {len} offset {offset}"
                );
            }
        }
    }

    #[test]
    fn dispatched_matches_bytewise_for_all_lengths() {
        let mut rng = SimRng::new(99);
        let buf = random_bytes(&mut rng, 2048 + 64);
        for len in 0..=2048usize {
            let offset = (rng.next_u64() % 64) as usize;
            let data = &buf[offset..offset + len];
            assert_eq!(
                fcs16_update(FCS16_INIT, data),
                bytewise::fcs16_update(FCS16_INIT, data)
            );
            assert_eq!(
                fcs32_update(FCS32_INIT, data),
                bytewise::fcs32_update(FCS32_INIT, data)
            );
        }
    }

    #[test]
    fn special_patterns() {
        for tier in simd::available_tiers() {
            for fill in [0x00u8, 0xFF, 0x7E, 0x7D] {
                for len in [16usize, 64, 256, 1500, 4096] {
                    let data = vec![fill; len];
                    for init in [0u32, 0xFFFF_FFFF, 0x8000_0001] {
                        assert_eq!(
                            fcs16_at(tier, init as u16, &data),
                            bytewise::fcs16_update(init as u16, &data)
                        );
                        assert_eq!(
                            fcs32_at(tier, init, &data),
                            bytewise::fcs32_update(init, &data)
                        );
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn fast_equals_bytewise(data in proptest::collection::vec(any::<u8>(), 0..5000),
                                init16: u16, init32: u32, split in 0usize..5000) {
            prop_assert_eq!(fcs16_update(init16, &data), bytewise::fcs16_update(init16, &data));
            prop_assert_eq!(fcs32_update(init32, &data), bytewise::fcs32_update(init32, &data));
            for tier in simd::available_tiers() {
                prop_assert_eq!(fcs16_at(tier, init16, &data), bytewise::fcs16_update(init16, &data));
                prop_assert_eq!(fcs32_at(tier, init32, &data), bytewise::fcs32_update(init32, &data));
            }
            // Incremental updates compose.
            let split = split.min(data.len());
            let (a, b) = data.split_at(split);
            prop_assert_eq!(fcs32_update(fcs32_update(init32, a), b), fcs32_update(init32, &data));
            prop_assert_eq!(fcs16_update(fcs16_update(init16, a), b), fcs16_update(init16, &data));
        }
    }
}
