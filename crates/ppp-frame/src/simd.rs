//! The SIMD kernels behind [`crate::fcs`], [`crate::scan`] and the async HDLC encoder and decoder:
//! the only module of the crate with unsafe code.
//!
//! On x86-64 the CPU is probed once (`std::is_x86_feature_detected!`, result cached in an atomic)
//! and the best [`Tier`] is used:
//!
//! | tier | needs | FCS | byte-set scan | stuffing and unstuffing |
//! |---|---|---|---|---|
//! | [`Tier::Sse`] | PCLMULQDQ, SSSE3, SSE4.1, POPCNT | 4 x 128-bit folding | 16-byte nibble lookup | 16-byte classification |
//! | [`Tier::Avx2`] | + AVX2 | as above | 32-byte nibble lookup | 32-byte classification |
//! | [`Tier::Avx2Vpclmul`] | + VPCLMULQDQ | 4 x 256-bit folding | as above | as above, 256-bit folding |
//! | [`Tier::Avx512`] | + AVX-512 F/BW/VL | 4 x 512-bit folding (from 256 bytes) | as above | stuffing for ACCM 0 and 0xFFFFFFFF: 64-byte classification into mask registers, 512-bit folding; else as above |
//!
//! Everywhere else (and when the environment variable `PPP_FRAME_PORTABLE` is set to anything
//! when the tier is first needed) the tier is [`Tier::Portable`] and every function here returns
//! `None`, so the callers use their safe portable code. (No kernel uses AVX-512 VBMI2's byte
//! expand and compress yet: the 8-byte table shuffles below serve every tier.)
//!
//! # Stuffing and unstuffing
//!
//! [`encode_frame_into_vec`] writes a whole frame and [`stuff_into_slice`] a payload (for
//! caller-owned buffers): the payload is escaped and its FCS folded in one pass. Each 64-byte step
//! loads the data once, folds it into carry-less-multiplication accumulators, classifies its
//! bytes against the escape set (two compares for ACCM 0, three for ACCM 0xFFFFFFFF, a
//! nibble-table lookup for any other set) and stores it. A 32-byte block (16 on [`Tier::Sse`])
//! with nothing to escape is stored as it is; any other block is expanded eight bytes at a time,
//! without further branches, with a shuffle from a 256-entry table indexed by the eight bytes'
//! escape mask (the shuffle leaves a gap before each escaped byte; an XOR from the same entry
//! writes 0x7D into the gap and flips bit 5 of the escaped byte), so the cost of a block does not
//! depend on how many bytes it escapes. The opening flag with the header, and the FCS with the
//! closing flag, go through one such expansion each.
//! The stuffing loops prefetch the data 1 KiB ahead (into the next frame when frames follow each
//! other in memory): without it the loads of a working set larger than L2 stalled the encoder at
//! about 55% of the speed of the bare FCS pass.
//! On [`Tier::Avx512`] a whole frame whose payload is longer than [`crate::fcs::SHORT_FOLD_MAX`]
//! (and whose second 128 bytes need no escape: escape-dense data goes to the 256-bit kernel) is
//! written by one kernel, `frame_avx512`: 128-byte steps up to the last 1 to 128 bytes, which are
//! read with masked loads, and an FCS whose whole blocks are all folded onto the end of the last
//! one at once, one multiplication deep (then [`x86`]'s `finish` takes the partial block), where
//! the end of the payload used to be a chain of multiplications that the next frame waited on.
//! A frame whose payload has 16 to [`crate::fcs::SHORT_FOLD_MAX`] bytes is written, on tiers from
//! [`Tier::Avx2`] up, by a kernel of its own (`frame_short_vpclmul`, `frame_short_avx2`): one
//! window, one loop of 32-byte steps that escapes and folds two blocks per step (with one 256-bit
//! carry-less multiplication pair where VPCLMULQDQ is there), each block over its own distance to
//! the last one. The kernel of a frame is chosen once per encoder configuration
//! ([`frame_encoder`]), not per frame, and so are the escape set's operands ([`SetOps`]).
//!
//! [`unstuff_into`] does the reverse for the decoder: a 128-, 32- or 16-byte block with no flag,
//! escape or ACCM character is copied; otherwise bytes after an escape get bit 5 flipped (a byte
//! shift of the escape compare) and the escapes are squeezed out eight bytes at a time with a
//! shuffle from a 256-entry compaction table. It stops in front of anything it does not handle (a
//! flag, a received control character, an escaped escape `7D 7D`) and near the frame length
//! limit, and leaves those to the caller's scalar code, so frame boundaries, errors and
//! statistics are decided in one place.
//!
//! # Safety
//!
//! The unsafe operations are unaligned loads from slices and unaligned stores into windows of
//! output slices (always in bounds, see each `SAFETY` comment), `Vec::set_len` after a kernel
//! wrote the bytes it reports, and calls of `#[target_feature]` functions, which happen only after
//! the tier has been clamped to what the running CPU supports. Everything else uses the safe
//! intrinsics.
#![allow(unsafe_code)]

use crate::fcs::FoldConstants;
use core::mem::MaybeUninit;
use std::sync::atomic::{AtomicU8, Ordering};

/// A level of instruction-set support, from none to AVX-512.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Tier {
    /// No SIMD kernel: the safe portable code.
    Portable = 1,
    /// PCLMULQDQ, SSSE3, SSE4.1 and POPCNT.
    Sse = 2,
    /// [`Tier::Sse`] plus AVX2.
    Avx2 = 3,
    /// [`Tier::Avx2`] plus VPCLMULQDQ (carry-less multiplication of 256-bit vectors).
    Avx2Vpclmul = 4,
    /// [`Tier::Avx2Vpclmul`] plus AVX-512 F, BW and VL.
    Avx512 = 5,
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
        4 => Tier::Avx2Vpclmul,
        5 => Tier::Avx512,
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
    [
        Tier::Portable,
        Tier::Sse,
        Tier::Avx2,
        Tier::Avx2Vpclmul,
        Tier::Avx512,
    ]
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

/// How the kernels test bytes for membership in a set (computed by [`crate::scan::ByteSet`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Shape {
    /// Exactly the bytes `a` and `b`, equal or adjacent (0x7D and 0x7E): tested as a range with
    /// one add and one compare.
    Pair(u8, u8),
    /// Every byte below 0x20, plus `a` and `b` (equal or adjacent): the range test and two
    /// instructions more.
    ControlsPlus(u8, u8),
    /// Anything else: the nibble tables.
    Nibbles(NibbleTables),
}

/// The operands the kernels test a [`Shape`] with, as bytes: for [`Shape::Pair`] and
/// [`Shape::ControlsPlus`], `bias` added to a byte moves the range of the pair to the bottom of
/// the signed bytes, where it is below `limit`; for [`Shape::Nibbles`], the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SetOps {
    /// The bias in every byte (loaded as it is into a 128- or 256-bit vector).
    bias: [u8; 32],
    /// The limit in every byte.
    limit: [u8; 32],
    tables: NibbleTables,
}

impl SetOps {
    /// The operands of `shape`.
    pub(crate) const fn of(shape: &Shape) -> Self {
        let (a, b, tables) = match *shape {
            Shape::Pair(a, b) | Shape::ControlsPlus(a, b) => (
                a,
                b,
                NibbleTables {
                    low: [0; 16],
                    high: [0; 16],
                },
            ),
            Shape::Nibbles(t) => (0, 0, t),
        };
        // `[lo, lo + span]` moved to `[-128, -128 + span]`, all else above (span 0 or 1).
        let lo = if a < b { a } else { b };
        let span = if a.abs_diff(b) == 0 { 0 } else { 1 };
        SetOps {
            bias: [0x80u8.wrapping_sub(lo); 32],
            limit: [(-127 + span) as u8; 32],
            tables,
        }
    }
}

/// Writes `data` into `out` with every byte of the set `escapes` escaped (0x7D, then the byte XOR
/// 0x20), and folds `data` into the CRC register `register` with the constants `fold` (none: no
/// FCS). Returns the new register, the bytes of `data` consumed and the bytes of `out` written;
/// `None` if no kernel applies (portable tier, or fewer than 16 bytes). Consumes less than all of
/// `data` when `out` has no room for a block's worst case (twice its length) plus slack: the
/// caller finishes byte by byte.
#[inline]
pub(crate) fn stuff_into_slice(
    max: Tier,
    escapes: &Shape,
    fold: Option<&FoldConstants>,
    register: u32,
    data: &[u8],
    out: &mut [u8],
) -> Option<(u32, usize, usize)> {
    #[cfg(target_arch = "x86_64")]
    {
        let tier = max.min(tier_for_tests_or_cpu());
        if tier == Tier::Portable || data.len() < 16 {
            return None;
        }
        let len = out.len();
        // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and the kernel only ever stores
        // initialised bytes, so `out` holds initialised bytes throughout.
        let out = unsafe {
            core::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<MaybeUninit<u8>>(), len)
        };
        Some(x86::stuff(tier, escapes, fold, register, data, out))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (max, escapes, fold, register, data, out);
        None
    }
}

/// The parts of one frame for [`encode_frame_into_vec`].
pub(crate) struct FrameParts<'a> {
    /// The opening flag (if the frame has one) and the address/control and protocol fields,
    /// already escaped: `head[..head_len]` (at most 9 bytes). Kept in memory the encoder owns,
    /// written once per header, so that loading it as a vector does not wait for the stores.
    pub(crate) head: &'a [u8; 16],
    /// How many bytes of `head` are used.
    pub(crate) head_len: usize,
    /// The information field.
    pub(crate) payload: &'a [u8],
    /// The FCS register after the header (unused without an FCS).
    pub(crate) register: u32,
}

/// A whole-frame kernel chosen once for a tier, an escape set and an FCS (see
/// [`frame_encoder`]), so that a frame pays for no dispatch on them: for 64-byte frames the
/// per-frame match on tier, set and FCS width cost about a tenth of the encoding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FrameEncoder {
    /// The tier the kernel was chosen for, already clamped to what the CPU supports.
    tier: Tier,
    /// The FCS folding constants (any, unused, without an FCS).
    k: &'static FoldConstants,
    /// The escape set.
    shape: Shape,
    /// The escape set's operands, worked out once here rather than in every frame.
    ops: SetOps,
    /// The kernel for payloads of up to [`crate::fcs::SHORT_FOLD_MAX`] bytes.
    #[cfg(target_arch = "x86_64")]
    short: x86::FrameKernel,
    /// The kernel for longer payloads.
    #[cfg(target_arch = "x86_64")]
    long: x86::FrameKernel,
}

/// The whole-frame encoder for frames escaped with `escapes` and carrying the FCS of `fold`
/// (none: no FCS), using no tier above `max`; `None` if no kernel applies (portable tier).
pub(crate) fn frame_encoder(
    max: Tier,
    escapes: &Shape,
    fold: Option<&'static FoldConstants>,
) -> Option<FrameEncoder> {
    #[cfg(target_arch = "x86_64")]
    {
        let tier = max.min(tier_for_tests_or_cpu());
        let width = fold.map_or(0, |k| (k.width / 8) as usize);
        let (short, long) = x86::frame_kernels(tier, escapes, width)?;
        Some(FrameEncoder {
            tier,
            k: fold.unwrap_or(&crate::fcs::FCS16_FOLD),
            shape: *escapes,
            ops: SetOps::of(escapes),
            short,
            long,
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (max, escapes, fold);
        None
    }
}

/// Appends a whole frame to `out` with the kernel of `encoder`: the opening flag if asked for,
/// header, payload and FCS with every byte of the set `encoder` was made for escaped, the closing
/// flag; the payload escaped and its FCS folded in one pass.
#[inline]
pub(crate) fn encode_frame_into_vec(
    encoder: &FrameEncoder,
    frame: &FrameParts<'_>,
    out: &mut Vec<u8>,
) {
    #[cfg(target_arch = "x86_64")]
    {
        // The head, everything else escaped (payload, an FCS of up to four bytes), the closing
        // flag, slack.
        out.reserve(16 + 2 * (frame.payload.len() + 4) + 1 + x86::SLACK);
        let len = out.len();
        let spare = out.spare_capacity_mut();
        let kernel = if frame.payload.len() > crate::fcs::SHORT_FOLD_MAX {
            encoder.long
        } else {
            encoder.short
        };
        // SAFETY: `frame_encoder` chose the kernel for `encoder.tier`, which it clamped to what
        // the running CPU supports (and which is not the portable tier): the kernel's target
        // features are all present. The kernel writes inside `spare` only.
        let written = unsafe { kernel(encoder, frame, spare) };
        // SAFETY: the kernel initialised the first `written` bytes of the spare capacity.
        unsafe { out.set_len(len + written) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (encoder, frame, out);
    }
}

/// Unstuffs `data` onto the end of `buf`: bytes are copied, escapes removed and the byte after
/// each XORed with 0x20, `escaped` carrying an escape that ended the previous input. Stops in front
/// of a byte of `special` other than an escape that starts an escape pair (flags, received
/// control characters, the second octet of `7D 7D`), before `buf` would grow by more than `limit`
/// bytes (it may stop up to a block short of that), and before the last (fewer than 16) bytes of
/// `data`. `special` must contain 0x7D.
///
/// Returns the bytes of `data` consumed, or `None` if no kernel applies (portable tier, fewer than
/// 16 bytes of data, or no room); with them, when it stopped in front of a flag that closes a
/// frame of 16 to [`crate::fcs::SHORT_FOLD_MAX`] bytes in `buf` (no escape pending) and `fcs`
/// gives the FCS, the FCS register over that frame, checked in the same call.
#[inline]
pub(crate) fn unstuff_into(
    max: Tier,
    special: &Shape,
    fcs: Option<&FoldConstants>,
    data: &[u8],
    escaped: &mut bool,
    buf: &mut Vec<u8>,
    limit: usize,
) -> Option<(usize, Option<u32>)> {
    #[cfg(target_arch = "x86_64")]
    {
        let tier = max.min(tier_for_tests_or_cpu());
        // The output is never longer than the input.
        let room = limit.min(data.len());
        if tier == Tier::Portable || data.len() < 16 || room == 0 {
            return None;
        }
        // The kernel stores whole blocks, possibly past `room` (it never reports those bytes).
        buf.reserve(room + x86::UNSTUFF_SLACK);
        let len = buf.len();
        let spare = buf.spare_capacity_mut();
        let end = (room + x86::UNSTUFF_SLACK).min(spare.len());
        let spare = &mut spare[..end];
        let (consumed, written) = x86::unstuff(tier, special, data, escaped, spare, room);
        // SAFETY: the kernel initialised the first `written` bytes of the spare capacity.
        unsafe { buf.set_len(len + written) };
        let register = match (fcs, data.get(consumed)) {
            (Some(k), Some(&x86::FLAG))
                if !*escaped && (16..=crate::fcs::SHORT_FOLD_MAX).contains(&buf.len()) =>
            {
                // A frame that began in this input and had nothing to unescape is the input
                // itself: read it there rather than from the bytes just stored (a load spanning
                // two recent stores waits for them to reach the cache).
                let frame = match data.get(..consumed) {
                    Some(frame) if len == 0 && written == consumed => frame,
                    _ => &buf[..],
                };
                Some(x86::frame_register(k, frame))
            }
            _ => None,
        };
        Some((consumed, register))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (max, special, fcs, data, escaped, buf, limit);
        None
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{FrameEncoder, FrameParts, NibbleTables, SetOps, Shape, Tier};
    use crate::fcs::{FoldConstants, SHORT_FOLD_MAX, fold_index};
    use core::arch::x86_64::*;
    use core::mem::MaybeUninit;

    pub(super) fn detect() -> Tier {
        if !(is_x86_feature_detected!("pclmulqdq")
            && is_x86_feature_detected!("ssse3")
            && is_x86_feature_detected!("sse4.1")
            && is_x86_feature_detected!("popcnt"))
        {
            return Tier::Portable;
        }
        if !is_x86_feature_detected!("avx2") {
            return Tier::Sse;
        }
        if !is_x86_feature_detected!("vpclmulqdq") {
            return Tier::Avx2;
        }
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
        {
            Tier::Avx512
        } else {
            Tier::Avx2Vpclmul
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
            _ if (16..=SHORT_FOLD_MAX).contains(&data.len()) => {
                // SAFETY: any tier from Sse up has PCLMULQDQ, SSSE3 and SSE4.1.
                Some((unsafe { fold_short(k, register, data) }, data.len()))
            }
            Tier::Avx512 if data.len() >= 256 => {
                // SAFETY: the tier is at most the detected one, so the CPU has AVX-512 F/BW/VL,
                // VPCLMULQDQ, PCLMULQDQ and SSE4.1; the kernel needs at least 256 bytes.
                Some(unsafe { fold_avx512(k, register, data) })
            }
            Tier::Avx2Vpclmul | Tier::Avx512 if data.len() >= 128 => {
                // SAFETY: both tiers have AVX2, VPCLMULQDQ, PCLMULQDQ and SSE4.1; the kernel
                // needs at least 128 bytes.
                Some(unsafe { fold_vpclmul256(k, register, data) })
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

    /// Reduces the final 128-bit accumulator to the CRC register (see [`FoldConstants`]): the low
    /// `w` bits of the quotient from three independent multiplications, then the register from
    /// a fourth.
    ///
    /// In the bit-reversed layout a product's coefficient of `x^(64+j)` lands in bit `62 - j` of
    /// lane 0 and its coefficient of `x^j` in bit `62 - j` of lane 1, so both halves of the
    /// quotient's low bits line up once they are in the same lane.
    #[inline]
    #[target_feature(enable = "pclmulqdq,sse4.1")]
    fn reduce128(k: &FoldConstants, x: __m128i) -> u32 {
        reduce128_width(k, k.width, x)
    }

    /// [`reduce128`] for constants of width `width` (a constant where the caller knows it).
    #[inline]
    #[target_feature(enable = "pclmulqdq,sse4.1")]
    fn reduce128_width(k: &FoldConstants, width: u32, x: __m128i) -> u32 {
        // Lane 0: bits 64.. of X_hi·mu2_low and of X_lo·(mu - x^64).
        let upper = fold128(x, _mm_set_epi64x(k.mu as i64, k.mu2_low as i64));
        // Lane 1: the low bits of X_hi·mu2_high, and those of X_lo itself (the x^64 term of mu),
        // moved down one bit to the same place.
        let lower = _mm_xor_si128(
            _mm_clmulepi64_si128(x, _mm_cvtsi64_si128(k.mu2_high as i64), 0x00),
            _mm_srli_epi64::<1>(x),
        );
        // The low w bits of q, coefficient x^j in bit 63 - j (the bits above them, high powers,
        // do not reach the low w bits of the product below; bit 63 - 63 = 0 is shifted out).
        let q = _mm_slli_epi64::<1>(_mm_xor_si128(upper, _mm_unpackhi_epi64(lower, lower)));
        // The register: the low w bits of q·(P - x^w), in lane 1 from bit 63 - w up.
        let r = _mm_clmulepi64_si128(q, _mm_cvtsi64_si128(k.poly as i64), 0x00);
        register_of(width, _mm_extract_epi64::<1>(r) as u64)
    }

    /// The `width`-bit register held in bits `63 - width ..= 62` of `lane` (see [`reduce128`]).
    #[inline(always)]
    fn register_of(width: u32, lane: u64) -> u32 {
        ((lane >> (63 - width)) & ((1u64 << width) - 1)) as u32
    }

    /// Folds 16 to [`crate::fcs::SHORT_FOLD_MAX`] bytes in one step: the data, padded with zeros
    /// at its front to whole blocks, has the same CRC once the register is XORed into its first
    /// bytes, and each block is multiplied by the constants of its own distance to the end, all
    /// at once (a loop folding block after block would be a chain of multiplications).
    #[inline]
    #[target_feature(enable = "pclmulqdq,ssse3,sse4.1")]
    fn fold_short(k: &FoldConstants, register: u32, data: &[u8]) -> u32 {
        fold_short_width(k, k.width, register, data)
    }

    /// [`fold_short`] for constants of width `width` (a constant where the caller knows it).
    #[inline]
    #[target_feature(enable = "pclmulqdq,ssse3,sse4.1")]
    fn fold_short_width(k: &FoldConstants, width: u32, register: u32, data: &[u8]) -> u32 {
        let n = data.len();
        let (Some(first), Some(last)) = (data.first_chunk::<16>(), data.last_chunk::<16>()) else {
            return register;
        };
        let reg = _mm_cvtsi32_si128(register as i32);
        // The first r (1 to 16) bytes make block 0, at the end of a block of zeros; then come
        // `whole` whole blocks, block j over 128·(whole - j) bits to the end.
        let whole = (n - 1) / 16;
        let r = n - 16 * whole;
        let (Some(up), Some(down), Some(pair0)) = (
            SHIFT_MASKS.get(r..).and_then(|m| m.first_chunk::<16>()),
            SHIFT_MASKS
                .get(16 + r..)
                .and_then(|m| m.first_chunk::<16>()),
            k.fold.get(whole.wrapping_sub(1)),
        ) else {
            // A single block, the register in its first bytes.
            return reduce128_width(k, width, _mm_xor_si128(load128(first), reg));
        };
        // The register goes into the first bytes: those of block 0, and those of block 1 when
        // r is shorter than the register.
        let b0 = _mm_shuffle_epi8(_mm_xor_si128(load128(first), reg), load128(up));
        let spill = _mm_shuffle_epi8(reg, load128(down));
        let mut x = fold128(b0, load_pair(pair0));
        let middle = data.get(r..n - 16).unwrap_or_default();
        let x = match (
            middle.first_chunk::<16>(),
            k.fold.get(whole.wrapping_sub(2)),
        ) {
            (Some(b1), Some(pair1)) => {
                x = _mm_xor_si128(
                    x,
                    fold128(_mm_xor_si128(load128(b1), spill), load_pair(pair1)),
                );
                // Blocks 2 to whole - 1, counted back from the end.
                let (rest, _) = middle.get(16..).unwrap_or_default().as_chunks::<16>();
                for (b, pair) in rest.iter().rev().zip(&k.fold) {
                    x = _mm_xor_si128(x, fold128(load128(b), load_pair(pair)));
                }
                _mm_xor_si128(x, load128(last))
            }
            // Block 1 is the last block.
            _ => _mm_xor_si128(x, _mm_xor_si128(load128(last), spill)),
        };
        reduce128_width(k, width, x)
    }

    /// A folding multiplier pair as a 128-bit value (lane 0: the first element).
    #[inline]
    #[target_feature(enable = "sse2")]
    fn load_pair(pair: &[u64; 2]) -> __m128i {
        // SAFETY: `pair` is 16 readable bytes; the load has no alignment requirement.
        unsafe { _mm_loadu_si128(pair.as_ptr().cast()) }
    }

    /// Folds `data` (at least 16 bytes) with 128-bit PCLMULQDQ.
    #[target_feature(enable = "pclmulqdq,sse4.1")]
    fn fold_sse(k: &FoldConstants, register: u32, data: &[u8]) -> (u32, usize) {
        let (blocks, _) = data.as_chunks::<16>();
        let Some((first, mut rest)) = blocks.split_first() else {
            return (register, 0);
        };
        let mut x = _mm_xor_si128(load128(first), _mm_cvtsi32_si128(register as i32));
        if (3..7).contains(&rest.len()) {
            // Short buffers: the first four blocks folded as a tree, not a chain (latency).
            let [b1, b2, b3] = [&rest[0], &rest[1], &rest[2]];
            x = _mm_xor_si128(
                _mm_xor_si128(
                    fold128(x, pair::<384>(k)),
                    fold128(load128(b1), pair::<256>(k)),
                ),
                _mm_xor_si128(fold128(load128(b2), pair::<128>(k)), load128(b3)),
            );
            rest = &rest[3..];
        }
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

    /// `z` folded forward over the distance of `pair` (broadcast to both lanes), xor `next`.
    #[inline]
    #[target_feature(enable = "avx2,vpclmulqdq")]
    fn fold256(z: __m256i, pair: __m256i, next: __m256i) -> __m256i {
        _mm256_xor_si256(
            _mm256_xor_si256(
                _mm256_clmulepi64_epi128(z, pair, 0x00),
                _mm256_clmulepi64_epi128(z, pair, 0x11),
            ),
            next,
        )
    }

    /// The folding multiplier pair for `D` bits in both 128-bit lanes.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn pair256<const D: u32>(k: &FoldConstants) -> __m256i {
        _mm256_broadcastsi128_si256(pair::<D>(k))
    }

    /// A 256-bit accumulator (two 16-byte blocks, the earlier in lane 0) folded into one
    /// 128-bit accumulator.
    #[inline]
    #[target_feature(enable = "avx2,pclmulqdq")]
    fn narrow(k: &FoldConstants, z: __m256i) -> __m128i {
        _mm_xor_si128(
            fold128(_mm256_castsi256_si128(z), pair::<128>(k)),
            _mm256_extracti128_si256::<1>(z),
        )
    }

    /// Folds `data` (at least 128 bytes) with 256-bit VPCLMULQDQ: four accumulators 128 bytes
    /// apart, each folding two 16-byte blocks per instruction pair.
    #[target_feature(enable = "avx2,vpclmulqdq,pclmulqdq,sse4.1")]
    fn fold_vpclmul256(k: &FoldConstants, register: u32, data: &[u8]) -> (u32, usize) {
        let (wide, _) = data.as_chunks::<32>();
        let Some(([b0, b1, b2, b3], rest)) = wide.split_first_chunk::<4>() else {
            return fold_sse(k, register, data);
        };
        let mut z0 = _mm256_xor_si256(
            load256(b0),
            _mm256_zextsi128_si256(_mm_cvtsi32_si128(register as i32)),
        );
        let mut z1 = load256(b1);
        let mut z2 = load256(b2);
        let mut z3 = load256(b3);
        let k1024 = pair256::<1024>(k);
        let (quads, tail) = rest.as_chunks::<4>();
        for q in quads {
            z0 = fold256(z0, k1024, load256(&q[0]));
            z1 = fold256(z1, k1024, load256(&q[1]));
            z2 = fold256(z2, k1024, load256(&q[2]));
            z3 = fold256(z3, k1024, load256(&q[3]));
        }
        let zero = _mm256_setzero_si256();
        let mut z = _mm256_xor_si256(
            _mm256_xor_si256(
                fold256(z0, pair256::<768>(k), zero),
                fold256(z1, pair256::<512>(k), zero),
            ),
            fold256(z2, pair256::<256>(k), z3),
        );
        for b in tail {
            z = fold256(z, pair256::<256>(k), load256(b));
        }
        let mut x = narrow(k, z);
        let done = wide.len() * 32;
        if let Some(b) = data.get(done..).and_then(|d| d.first_chunk::<16>()) {
            x = _mm_xor_si128(fold128(x, pair::<128>(k)), load128(b));
            return finish(k, x, data, done + 16);
        }
        finish(k, x, data, done)
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
            Tier::Avx2 | Tier::Avx2Vpclmul | Tier::Avx512 if data.len() >= 32 => {
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
        _mm_movemask_epi8(nibble_members128(v, low, high, bits)) as u32
    }

    /// [`classify128`] as a byte mask: 0xFF in the lanes of members.
    #[inline]
    #[target_feature(enable = "ssse3")]
    fn nibble_members128(v: __m128i, low: __m128i, high: __m128i, bits: __m128i) -> __m128i {
        let row = _mm_or_si128(
            _mm_shuffle_epi8(low, v),
            _mm_shuffle_epi8(high, _mm_xor_si128(v, _mm_set1_epi8(i8::MIN))),
        );
        let hi = _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(0x0F));
        let bit = _mm_shuffle_epi8(bits, hi);
        _mm_cmpeq_epi8(_mm_and_si128(row, bit), bit)
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
        _mm256_movemask_epi8(nibble_members256(v, low, high, bits)) as u32
    }

    /// [`classify256`] as a byte mask: 0xFF in the lanes of members.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn nibble_members256(v: __m256i, low: __m256i, high: __m256i, bits: __m256i) -> __m256i {
        let row = _mm256_or_si256(
            _mm256_shuffle_epi8(low, v),
            _mm256_shuffle_epi8(high, _mm256_xor_si256(v, _mm256_set1_epi8(i8::MIN))),
        );
        let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0F));
        let bit = _mm256_shuffle_epi8(bits, hi);
        _mm256_cmpeq_epi8(_mm256_and_si256(row, bit), bit)
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

    // ----- Stuffing (encoder) and unstuffing (decoder) -----

    /// Spare room [`super::encode_frame_into_vec`] reserves past the frame's worst case: the
    /// frame kernels store whole windows (up to 256 bytes in [`frame_avx512`]) near the end,
    /// and a frame with a short payload goes into one window of [`SHORT_WINDOW`] bytes.
    pub(super) const SLACK: usize = if SHORT_WINDOW > 256 {
        SHORT_WINDOW
    } else {
        256
    };

    /// The classification a kernel is compiled for (its `KIND` parameter): [`Shape::Pair`].
    const PAIR: u8 = 0;
    /// [`Shape::ControlsPlus`].
    const CONTROLS: u8 = 1;
    /// [`Shape::Nibbles`].
    const NIBBLES: u8 = 2;

    /// The classification of `shape`.
    fn kind(shape: &Shape) -> u8 {
        match shape {
            Shape::Pair(..) => PAIR,
            Shape::ControlsPlus(..) => CONTROLS,
            Shape::Nibbles(_) => NIBBLES,
        }
    }

    /// A set's operands in 16 lanes: the range of one or two bytes (`bias` added to a byte moves
    /// the range to the bottom of the signed bytes, where it is below `limit`), or the nibble
    /// tables.
    #[derive(Clone, Copy)]
    struct Set128 {
        bias: __m128i,
        limit: __m128i,
        low: __m128i,
        high: __m128i,
        bits: __m128i,
    }

    impl Set128 {
        #[inline]
        #[target_feature(enable = "sse2")]
        fn new(shape: &Shape) -> Self {
            let (a, b, t) = match *shape {
                Shape::Pair(a, b) | Shape::ControlsPlus(a, b) => (a, b, None),
                Shape::Nibbles(t) => (0, 0, Some(t)),
            };
            // As in `SetOps::of`, without the detour through memory.
            let (lo, span) = (a.min(b), a.abs_diff(b).min(1));
            let bias = 0x80u8.wrapping_sub(lo);
            let limit = (-127 + i16::from(span)) as i8;
            let zero = [0u8; 16];
            let t = t.unwrap_or(NibbleTables {
                low: zero,
                high: zero,
            });
            Set128 {
                bias: _mm_set1_epi8(bias as i8),
                limit: _mm_set1_epi8(limit),
                low: load128(&t.low),
                high: load128(&t.high),
                bits: load128(&HIGH_NIBBLE_BITS),
            }
        }

        /// The operands worked out beforehand.
        #[inline]
        #[target_feature(enable = "sse2")]
        fn load(ops: &SetOps) -> Self {
            let (bias, limit) = (&ops.bias, &ops.limit);
            Set128 {
                bias: bias.first_chunk().map_or(_mm_setzero_si128(), load128),
                limit: limit.first_chunk().map_or(_mm_setzero_si128(), load128),
                low: load128(&ops.tables.low),
                high: load128(&ops.tables.high),
                bits: load128(&HIGH_NIBBLE_BITS),
            }
        }
    }

    /// 0xFF in the lanes of `v` that hold members of the set.
    #[inline]
    #[target_feature(enable = "ssse3")]
    fn members128<const KIND: u8>(set: &Set128, v: __m128i) -> __m128i {
        match KIND {
            PAIR => _mm_cmplt_epi8(_mm_add_epi8(v, set.bias), set.limit),
            CONTROLS => _mm_or_si128(
                _mm_cmplt_epi8(_mm_add_epi8(v, set.bias), set.limit),
                _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v),
            ),
            _ => nibble_members128(v, set.low, set.high, set.bits),
        }
    }

    /// Bit `i` set when byte `i` of `v` is a member of the set.
    #[inline]
    #[target_feature(enable = "ssse3")]
    fn mask128<const KIND: u8>(set: &Set128, v: __m128i) -> u32 {
        _mm_movemask_epi8(members128::<KIND>(set, v)) as u32
    }

    /// [`Set128`] in 32 lanes.
    #[derive(Clone, Copy)]
    struct Set256 {
        bias: __m256i,
        limit: __m256i,
        low: __m256i,
        high: __m256i,
        bits: __m256i,
    }

    impl Set256 {
        /// The operands worked out beforehand.
        #[inline]
        #[target_feature(enable = "avx2")]
        fn load(ops: &SetOps) -> Self {
            let tables = Set128::load(ops);
            Set256 {
                bias: load256(&ops.bias),
                limit: load256(&ops.limit),
                ..Set256::new(&tables)
            }
        }

        #[inline]
        #[target_feature(enable = "avx2")]
        fn new(set: &Set128) -> Self {
            Set256 {
                bias: _mm256_broadcastsi128_si256(set.bias),
                limit: _mm256_broadcastsi128_si256(set.limit),
                low: _mm256_broadcastsi128_si256(set.low),
                high: _mm256_broadcastsi128_si256(set.high),
                bits: _mm256_broadcastsi128_si256(set.bits),
            }
        }
    }

    /// [`members128`] for 32 bytes.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn members256<const KIND: u8>(set: &Set256, v: __m256i) -> __m256i {
        match KIND {
            PAIR => _mm256_cmpgt_epi8(set.limit, _mm256_add_epi8(v, set.bias)),
            CONTROLS => _mm256_or_si256(
                _mm256_cmpgt_epi8(set.limit, _mm256_add_epi8(v, set.bias)),
                _mm256_cmpeq_epi8(_mm256_min_epu8(v, _mm256_set1_epi8(0x1F)), v),
            ),
            _ => nibble_members256(v, set.low, set.high, set.bits),
        }
    }

    /// [`mask128`] for 32 bytes.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn mask256<const KIND: u8>(set: &Set256, v: __m256i) -> u32 {
        _mm256_movemask_epi8(members256::<KIND>(set, v)) as u32
    }

    /// The `N`-byte window of `out` at `at`, if `out` is long enough.
    #[inline]
    fn window<const N: usize>(
        out: &mut [MaybeUninit<u8>],
        at: usize,
    ) -> Option<&mut [MaybeUninit<u8>; N]> {
        out.get_mut(at..)?.first_chunk_mut::<N>()
    }

    /// Stores the 16 bytes `v` at `win[at..at + 16]`, with `at` clamped to `N - 16`.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn store128_at<const N: usize>(win: &mut [MaybeUninit<u8>; N], at: usize, v: __m128i) {
        let at = at.min(N - 16);
        // SAFETY: `at + 16 <= N`, so the 16 bytes stored lie inside `win`; the store has no
        // alignment requirement.
        unsafe { _mm_storeu_si128(win.as_mut_ptr().add(at).cast(), v) }
    }

    /// Stores the low 8 bytes of `v` at `win[at..at + 8]`, with `at` clamped to `N - 8`.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn store64_at<const N: usize>(win: &mut [MaybeUninit<u8>; N], at: usize, v: __m128i) {
        let at = at.min(N - 8);
        // SAFETY: `at + 8 <= N`, so the 8 bytes stored lie inside `win`; the store has no
        // alignment requirement.
        unsafe { _mm_storel_epi64(win.as_mut_ptr().add(at).cast(), v) }
    }

    /// Stores the 32 bytes `v` at `win[at..at + 32]`, with `at` clamped to `N - 32`.
    #[inline]
    #[target_feature(enable = "avx")]
    fn store256_at<const N: usize>(win: &mut [MaybeUninit<u8>; N], at: usize, v: __m256i) {
        let at = at.min(N - 32);
        // SAFETY: `at + 32 <= N`, so the 32 bytes stored lie inside `win`; the store has no
        // alignment requirement.
        unsafe { _mm256_storeu_si256(win.as_mut_ptr().add(at).cast(), v) }
    }

    /// Loads 8 bytes into the low half.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn load64(bytes: &[u8; 8]) -> __m128i {
        // SAFETY: `bytes` is 8 readable bytes; the load has no alignment requirement.
        unsafe { _mm_loadl_epi64(bytes.as_ptr().cast()) }
    }

    /// Loads block `i` of `blocks`, or zeros past the end.
    #[inline]
    #[target_feature(enable = "avx")]
    fn load256_at(blocks: &[[u8; 32]], i: usize) -> __m256i {
        blocks.get(i).map_or(_mm256_setzero_si256(), |b| load256(b))
    }

    /// Loads the 32 bytes `half` (0 or 1, clamped) of a 64-byte block.
    #[inline]
    #[target_feature(enable = "avx")]
    fn load256_half(block: &[[u8; 16]; 4], half: usize) -> __m256i {
        let at = 32 * half.min(1);
        // SAFETY: `block` is 64 contiguous readable bytes and `at + 32 <= 64`; the load has no
        // alignment requirement.
        unsafe { _mm256_loadu_si256(block.as_ptr().cast::<u8>().add(at).cast()) }
    }

    /// One entry of [`EXPAND`].
    #[derive(Clone, Copy)]
    #[repr(C, align(32))]
    struct Expansion {
        /// PSHUFB indices: the source byte of each output byte, 0x80 (a zero) for an escape octet.
        shuffle: [u8; 16],
        /// XORed into the shuffled bytes: 0x7D on escape octets, 0x20 on escaped bytes.
        xor: [u8; 16],
    }

    /// How eight bytes expand when the bytes flagged in the index (bit `i` for byte `i`) are
    /// escaped: `8 + popcount` output bytes. 8 KiB.
    static EXPAND: [Expansion; 256] = {
        let mut table = [Expansion {
            shuffle: [0x80; 16],
            xor: [0; 16],
        }; 256];
        let mut mask = 0;
        while mask < 256 {
            let entry = &mut table[mask];
            let (mut i, mut j) = (0, 0);
            while i < 8 {
                if mask >> i & 1 != 0 {
                    entry.xor[j] = 0x7D;
                    entry.shuffle[j + 1] = i as u8;
                    entry.xor[j + 1] = 0x20;
                    j += 2;
                } else {
                    entry.shuffle[j] = i as u8;
                    j += 1;
                }
                i += 1;
            }
            mask += 1;
        }
        table
    };

    /// Which bytes of eight survive when the bytes flagged in the index are removed: PSHUFB
    /// indices of the `8 - popcount` kept bytes in order, then 0x80. 2 KiB.
    static COMPRESS: [[u8; 8]; 256] = {
        let mut table = [[0x80u8; 8]; 256];
        let mut mask = 0;
        while mask < 256 {
            let (mut i, mut j) = (0, 0);
            while i < 8 {
                if mask >> i & 1 == 0 {
                    table[mask][j] = i as u8;
                    j += 1;
                }
                i += 1;
            }
            mask += 1;
        }
        table
    };

    /// Ends a frame at `out[w..]`: the `W`-byte FCS of `register` (its complement, least
    /// significant byte first) with its members of `set` escaped, then the closing flag.
    /// Returns where the frame ends (`w` unchanged if fewer than 16 bytes are left).
    #[inline]
    #[target_feature(enable = "ssse3,popcnt")]
    fn close_frame<const KIND: u8, const W: usize>(
        set: &Set128,
        register: u32,
        out: &mut [MaybeUninit<u8>],
        w: usize,
    ) -> usize {
        let fcs = u64::from(!register) & ((1u64 << (8 * W)) - 1);
        let v = _mm_cvtsi64_si128((fcs | u64::from(FLAG) << (8 * W)) as i64);
        let mask = mask128::<KIND>(set, v) & ((1u32 << W) - 1);
        let Some(win) = window::<16>(out, w) else {
            return w;
        };
        if KIND == PAIR && mask == 0 {
            // With two bytes to escape the FCS rarely has one: then the length is a constant,
            // and the next frame's stores need not wait for the FCS (a predicted branch, not a
            // data dependency).
            store64_at(win, 0, v);
            w + W + 1
        } else {
            // With the control characters, one FCS in four or more needs an escape: no branch
            // to mispredict.
            expand8(v, mask, win, 0);
            w + W + 1 + mask.count_ones() as usize
        }
    }

    /// Writes the low 8 bytes of `v`, with those flagged in the low 8 bits of `mask` escaped, at
    /// `win[at..]`; returns how many bytes that is (8 to 16). Stores 16 bytes.
    #[inline]
    #[target_feature(enable = "ssse3,popcnt")]
    fn expand8<const N: usize>(
        v: __m128i,
        mask: u32,
        win: &mut [MaybeUninit<u8>; N],
        at: usize,
    ) -> usize {
        let mask = (mask & 0xFF) as u8;
        let entry = &EXPAND[usize::from(mask)];
        let out = _mm_xor_si128(
            _mm_shuffle_epi8(v, load128(&entry.shuffle)),
            load128(&entry.xor),
        );
        store128_at(win, at, out);
        8 + mask.count_ones() as usize
    }

    /// Writes the 16 bytes `v`, with those flagged in `mask` escaped, at `win[at..]`; returns
    /// how many bytes that is (16 to 32). Needs `at + 32 <= N` (else the stores are clamped and
    /// the output is garbage, but stays inside `win`).
    #[inline]
    #[target_feature(enable = "ssse3,popcnt")]
    fn emit16<const N: usize>(
        v: __m128i,
        mask: u32,
        win: &mut [MaybeUninit<u8>; N],
        at: usize,
    ) -> usize {
        if mask == 0 {
            store128_at(win, at, v);
            return 16;
        }
        let n = expand8(v, mask, win, at);
        n + expand8(_mm_srli_si128::<8>(v), mask >> 8, win, at + n)
    }

    /// Writes the last `tail` (1 to 15) bytes of `data` (at least 16 bytes) escaped at
    /// `win[at..]`: the last 16 bytes of `data` shifted down so that the new ones come first,
    /// their escape mask with them. Returns how many bytes that is (stores 32 from `at`, clamped
    /// as [`emit16`] clamps), or `None` (nothing written) when `tail` is 0 or 16 or more, or
    /// `data` is shorter than 16 bytes.
    ///
    /// (The short-frame kernels keep this inline: as a call it cost their 64-byte frames 2 %.)
    #[inline]
    #[target_feature(enable = "ssse3,popcnt")]
    fn emit_last<const KIND: u8, const N: usize>(
        set: &Set128,
        data: &[u8],
        tail: usize,
        win: &mut [MaybeUninit<u8>; N],
        at: usize,
    ) -> Option<usize> {
        if !(1..16).contains(&tail) {
            return None;
        }
        let last = data.last_chunk::<16>()?;
        let shift = SHIFT_MASKS.get(32 - tail..)?.first_chunk::<16>()?;
        let v = load128(last);
        let mask = mask128::<KIND>(set, v) >> (16 - tail);
        emit16(_mm_shuffle_epi8(v, load128(shift)), mask, win, at);
        Some(tail + mask.count_ones() as usize)
    }

    /// [`emit16`] for 32 bytes (32 to 64 written). Needs `at + 64 <= N`.
    #[inline]
    #[target_feature(enable = "avx2,popcnt")]
    fn emit32<const N: usize>(
        v: __m256i,
        mask: u32,
        win: &mut [MaybeUninit<u8>; N],
        at: usize,
    ) -> usize {
        if mask == 0 {
            store256_at(win, at, v);
            return 32;
        }
        // Something to escape: all four groups through the table, without a branch per 16 bytes
        // (escapes in random data would mispredict it).
        let (lo, hi) = (_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let mut n = at;
        n += expand8(lo, mask, win, n);
        n += expand8(_mm_srli_si128::<8>(lo), mask >> 8, win, n);
        n += expand8(hi, mask >> 16, win, n);
        n += expand8(_mm_srli_si128::<8>(hi), mask >> 24, win, n);
        n - at
    }

    /// Four accumulators 16 bytes apart folded into one.
    #[inline]
    #[target_feature(enable = "pclmulqdq")]
    fn collapse(k: &FoldConstants, x: [__m128i; 4]) -> __m128i {
        _mm_xor_si128(
            _mm_xor_si128(fold128(x[0], pair::<384>(k)), fold128(x[1], pair::<256>(k))),
            _mm_xor_si128(fold128(x[2], pair::<128>(k)), x[3]),
        )
    }

    /// 64 bytes stuffed with four 16-byte classifications; evaluates to the bytes written (at most
    /// 128). A macro, so that it is compiled into the kernel (a call would spill the
    /// accumulators).
    macro_rules! step64_sse {
        ($set:expr, $q:expr, $win:expr) => {{
            let mut at = 0;
            for block in $q {
                let v = load128(block);
                at += emit16(v, mask128::<KIND>($set, v), $win, at);
            }
            at
        }};
    }

    /// 64 bytes stuffed with two 32-byte classifications; evaluates to the bytes written (at most
    /// 128).
    macro_rules! step64_avx2 {
        ($set:expr, $q:expr, $win:expr) => {{
            let (y0, y1) = (load256_half($q, 0), load256_half($q, 1));
            let at = emit32(y0, mask256::<KIND>($set, y0), $win, 0);
            at + emit32(y1, mask256::<KIND>($set, y1), $win, at)
        }};
    }

    /// Defines a stuffing kernel (see [`super::stuff_into_slice`]) for one tier: `$step` stuffs 64
    /// bytes with the tier's widest classification, the rest is shared. The kernel returns the
    /// register, the bytes of `data` consumed and the bytes of `out` written.
    macro_rules! stuff_kernel {
        (
            $(#[$attr:meta])* $name:ident, $features:literal, $widen:path, $step:ident,
            $acc:ty, $start:ident, $advance:ident, $collapse:ident
        ) => {
            $(#[$attr])*
            #[target_feature(enable = $features)]
            fn $name<const KIND: u8, const FOLD: bool>(
                k: &FoldConstants,
                register: u32,
                shape: &Shape,
                data: &[u8],
                out: &mut [MaybeUninit<u8>],
            ) -> (u32, usize, usize) {
                let set = &Set128::new(shape);
                let wide = &$widen(set);
                let (blocks, _) = data.as_chunks::<16>();
                let (quads, _) = blocks.as_chunks::<4>();
                let initial = _mm_cvtsi32_si128(register as i32);
                let mut w = 0;
                // 64 bytes per step into a 128-byte window, folded into accumulators 64 bytes
                // apart.
                let mut acc: Option<$acc> = None;
                let mut quads_done = 0;
                for q in quads {
                    let Some(win) = window::<128>(out, w) else {
                        break;
                    };
                    if FOLD {
                        acc = Some(match acc {
                            None => $start(q, initial),
                            Some(acc) => $advance(k, acc, q),
                        });
                    }
                    w += $step!(wide, q, win);
                    quads_done += 1;
                }
                let mut done = quads_done * 64;
                let mut x = acc.map(|acc| $collapse(k, acc));
                // Then 16 bytes per step into a 32-byte window.
                for b in blocks.get(quads_done * 4..).unwrap_or_default() {
                    let Some(win) = window::<32>(out, w) else {
                        break;
                    };
                    let v = load128(b);
                    if FOLD {
                        x = Some(match x {
                            None => _mm_xor_si128(v, initial),
                            Some(x) => _mm_xor_si128(fold128(x, pair::<128>(k)), v),
                        });
                    }
                    w += emit16(v, mask128::<KIND>(set, v), win, 0);
                    done += 16;
                }
                // The last few bytes: the last 16 bytes of `data` shifted down so that the new
                // ones come first, their escape mask with them; the CRC takes them the same way.
                let tail = data.len() - done;
                let mut finished = None;
                if done == blocks.len() * 16
                    && let Some(win) = window::<32>(out, w)
                    && let Some(written) = emit_last::<KIND, 32>(set, data, tail, win, 0)
                {
                    w += written;
                    if let Some(x) = x {
                        finished = Some(finish(k, x, data, done).0);
                    }
                    done = data.len();
                }
                let register = match (finished, x) {
                    (Some(register), _) => register,
                    (None, Some(x)) => reduce128(k, x),
                    (None, None) => register,
                };
                (register, done, w)
            }
        };
    }

    stuff_kernel!(
        /// The stuffing kernel of [`Tier::Sse`].
        stuff_sse,
        "pclmulqdq,ssse3,sse4.1,popcnt",
        Set128::clone,
        step64_sse,
        [__m128i; 4],
        start128,
        advance128,
        collapse
    );
    stuff_kernel!(
        /// The stuffing kernel of [`Tier::Avx2`].
        stuff_avx2,
        "avx2,pclmulqdq,ssse3,sse4.1,popcnt",
        Set256::new,
        step64_avx2,
        [__m128i; 4],
        start128,
        advance128,
        collapse
    );
    /// Writes the 128 bytes `$y` (four vectors) with every byte of the set escaped into the
    /// 256-byte window `$win`; evaluates to how many bytes that is. While escapes are rare
    /// (`$dirty` of `$steps` steps had one), one branch tests all 128 bytes; once they are
    /// common (random data has one in every other step), a branch per 32 bytes mispredicts less.
    /// A macro, so that it is compiled into the kernel with the accumulators in registers.
    macro_rules! emit128 {
        ($wide:expr, $y:expr, $win:expr, $steps:expr, $dirty:expr) => {{
            let y = $y;
            let members = y.map(|v| members256::<KIND>($wide, v));
            let any = _mm256_or_si256(
                _mm256_or_si256(members[0], members[1]),
                _mm256_or_si256(members[2], members[3]),
            );
            $steps += 1;
            if $dirty * 4 <= $steps && _mm256_testz_si256(any, any) != 0 {
                for (j, v) in y.into_iter().enumerate() {
                    store256_at($win, 32 * j, v);
                }
                128
            } else {
                $dirty += 1;
                let m = members.map(|v| _mm256_movemask_epi8(v) as u32);
                let mut at = emit32(y[0], m[0], $win, 0);
                at += emit32(y[1], m[1], $win, at);
                at += emit32(y[2], m[2], $win, at);
                at + emit32(y[3], m[3], $win, at)
            }
        }};
    }

    /// The stuffing kernel of [`Tier::Avx2Vpclmul`] and up: 128 bytes per step, folded into four
    /// 256-bit accumulators 128 bytes apart (as [`fold_vpclmul256`] does) and stored with four
    /// stores when nothing in them is escaped; then 32, 16 and the last few bytes.
    #[target_feature(enable = "avx2,vpclmulqdq,pclmulqdq,ssse3,sse4.1,popcnt")]
    fn stuff_vpclmul<const KIND: u8, const FOLD: bool>(
        k: &FoldConstants,
        register: u32,
        shape: &Shape,
        data: &[u8],
        out: &mut [MaybeUninit<u8>],
    ) -> (u32, usize, usize) {
        let set = &Set128::new(shape);
        let wide = &Set256::new(set);
        let initial = _mm256_zextsi128_si256(_mm_cvtsi32_si128(register as i32));
        let (chunks, _) = data.as_chunks::<128>();
        let k1024 = pair256::<1024>(k);
        let (mut w, mut done) = (0, 0);
        // Steps so far, and those with something to escape.
        let (mut steps, mut dirty) = (0u32, 0u32);
        let load4 = |chunk: &[u8; 128]| {
            let (ys, _) = chunk.as_chunks::<32>();
            [
                load256_at(ys, 0),
                load256_at(ys, 1),
                load256_at(ys, 2),
                load256_at(ys, 3),
            ]
        };
        // The first step starts the accumulators, the others fold them forward (the first one
        // taken out of the loop, so that the accumulators stay in registers).
        let mut acc = None;
        if let (Some((first, rest)), Some(win)) = (chunks.split_first(), window::<256>(out, 0)) {
            let y = load4(first);
            let mut z = [_mm256_xor_si256(y[0], initial), y[1], y[2], y[3]];
            w += emit128!(wide, y, win, steps, dirty);
            done += 128;
            for chunk in rest {
                let Some(win) = window::<256>(out, w) else {
                    break;
                };
                prefetch(chunk.as_ptr().wrapping_add(PREFETCH_AHEAD));
                let y = load4(chunk);
                if FOLD {
                    z = [
                        fold256(z[0], k1024, y[0]),
                        fold256(z[1], k1024, y[1]),
                        fold256(z[2], k1024, y[2]),
                        fold256(z[3], k1024, y[3]),
                    ];
                }
                w += emit128!(wide, y, win, steps, dirty);
                done += 128;
            }
            acc = Some(z);
        }
        // (Less than a step left, unless the output ran short.)
        if FOLD
            && let Some(z) = acc
            && data.len() - done < 128
            && let Some(win) = window::<256>(out, w)
        {
            return stuff_rest_by_lane::<KIND>(k, set, wide, z, data, done, win, w);
        }
        // The four accumulators folded into one, 32 bytes wide.
        let zero = _mm256_setzero_si256();
        let z = acc.map(|z| {
            _mm256_xor_si256(
                _mm256_xor_si256(
                    fold256(z[0], pair256::<768>(k), zero),
                    fold256(z[1], pair256::<512>(k), zero),
                ),
                fold256(z[2], pair256::<256>(k), z[3]),
            )
        });
        stuff_rest256::<KIND, FOLD>(k, register, set, wide, initial, z, data, done, out, w)
    }

    /// The end of [`stuff_vpclmul`] when it folded: `data[done..]` (less than a step) stuffed
    /// into `win` (which starts at `w` of the output), and every 16-byte block from the eight of
    /// the accumulators `z` to the last whole one of the data folded over its own distance to
    /// the end of that last one ([`FoldConstants::by_lane`], one multiplication deep, where
    /// folding block by block was a chain of them that the frame's FCS waited behind); the last
    /// 1 to 15 bytes go through [`finish`]. Returns what the kernels return.
    #[inline]
    #[target_feature(enable = "avx2,vpclmulqdq,pclmulqdq,ssse3,sse4.1,popcnt")]
    #[allow(clippy::too_many_arguments)]
    fn stuff_rest_by_lane<const KIND: u8>(
        k: &FoldConstants,
        set: &Set128,
        wide: &Set256,
        z: [__m256i; 4],
        data: &[u8],
        done: usize,
        win: &mut [MaybeUninit<u8>; 256],
        w: usize,
    ) -> (u32, usize, usize) {
        let rest = data.get(done..).unwrap_or_default();
        // Less than 128 bytes are left, so at most seven whole blocks, and their bytes all
        // escaped fit the window with room for the whole-vector stores.
        let whole = (rest.len() / 16).min(7);
        // Block `b` (the accumulators' eight, then the data's) is folded with
        // `by_lane[9 - whole + b]`; the last whole one gets `by_lane[16]`, zero, and is added
        // as it is.
        let (lanes, _) = k
            .by_lane
            .get(9 - whole..)
            .unwrap_or_default()
            .as_chunks::<2>();
        let mut folded = _mm256_setzero_si256();
        for (z, pairs) in z.iter().zip(lanes) {
            folded = fold256(*z, load_pairs256(pairs), folded);
        }
        let (ys, _) = rest.as_chunks::<32>();
        let ys = ys.get(..whole / 2).unwrap_or_default();
        let mut at = 0;
        for (y, pairs) in ys.iter().zip(lanes.get(4..).unwrap_or_default()) {
            let v = load256(y);
            folded = fold256(v, load_pairs256(pairs), folded);
            at += emit32(v, mask256::<KIND>(wide, v), win, at);
        }
        let mut end = done + 32 * ys.len();
        if whole % 2 == 1
            && let Some(b) = data.get(end..).and_then(|d| d.first_chunk::<16>())
        {
            let v = load128(b);
            at += emit16(v, mask128::<KIND>(set, v), win, at);
            end += 16;
        }
        // The last whole block, as it is: the data's, or else the accumulators' last.
        let last = match data.get(..end).and_then(|d| d.last_chunk::<16>()) {
            Some(b) if whole > 0 => load128(b),
            _ => _mm256_extracti128_si256::<1>(z[3]),
        };
        let x = _mm_xor_si128(
            _mm_xor_si128(
                _mm256_castsi256_si128(folded),
                _mm256_extracti128_si256::<1>(folded),
            ),
            last,
        );
        // The last few bytes.
        at += emit_last::<KIND, 256>(set, data, data.len() - end, win, at).unwrap_or(0);
        let (register, done) = finish(k, x, data, end);
        (register, done, w + at)
    }

    /// The end of the VPCLMULQDQ stuffing kernels: `data[done..]` (less than a step) stuffed
    /// into `out` from `w`, 32, 16 and the last few bytes, folded onto the 256-bit accumulator
    /// `z` (none: no data folded yet, `initial` holds the register); returns what the kernels
    /// return.
    #[inline]
    #[target_feature(enable = "avx2,vpclmulqdq,pclmulqdq,ssse3,sse4.1,popcnt")]
    #[allow(clippy::too_many_arguments)]
    fn stuff_rest256<const KIND: u8, const FOLD: bool>(
        k: &FoldConstants,
        register: u32,
        set: &Set128,
        wide: &Set256,
        initial: __m256i,
        mut z: Option<__m256i>,
        data: &[u8],
        mut done: usize,
        out: &mut [MaybeUninit<u8>],
        mut w: usize,
    ) -> (u32, usize, usize) {
        // 32 bytes per step.
        let (ys, _) = data.get(done..).unwrap_or_default().as_chunks::<32>();
        for y in ys {
            let Some(win) = window::<64>(out, w) else {
                break;
            };
            let v = load256(y);
            if FOLD {
                z = Some(match z {
                    None => _mm256_xor_si256(v, initial),
                    Some(z) => fold256(z, pair256::<256>(k), v),
                });
            }
            w += emit32(v, mask256::<KIND>(wide, v), win, 0);
            done += 32;
        }
        let mut x = z.map(|z| narrow(k, z));
        // Then 16 bytes.
        if let (Some(b), Some(win)) = (
            data.get(done..).and_then(|d| d.first_chunk::<16>()),
            window::<32>(out, w),
        ) {
            let v = load128(b);
            if FOLD {
                x = Some(match x {
                    None => _mm_xor_si128(v, _mm256_castsi256_si128(initial)),
                    Some(x) => _mm_xor_si128(fold128(x, pair::<128>(k)), v),
                });
            }
            w += emit16(v, mask128::<KIND>(set, v), win, 0);
            done += 16;
        }
        // The last few bytes: the last 16 bytes of `data` shifted down so that the new ones
        // come first, their escape mask with them; the CRC takes them the same way.
        let tail = data.len() - done;
        let mut finished = None;
        if let Some(win) = window::<32>(out, w)
            && let Some(written) = emit_last::<KIND, 32>(set, data, tail, win, 0)
        {
            w += written;
            if let Some(x) = x {
                finished = Some(finish(k, x, data, done).0);
            }
            done = data.len();
        }
        let register = match (finished, x) {
            (Some(register), _) => register,
            (None, Some(x)) if FOLD => reduce128(k, x),
            _ => register,
        };
        (register, done, w)
    }

    /// How far ahead of the bytes being stuffed the stuffing kernels prefetch (the frames of a
    /// link follow each other in memory more often than not, so this runs into the next frame).
    const PREFETCH_AHEAD: usize = 1024;

    /// Asks for the cache line at `p` to be loaded into all cache levels. A prefetch is a hint:
    /// it never faults and has no architectural effect, whatever the address (it may lie past
    /// the end of the data).
    #[inline]
    #[target_feature(enable = "sse")]
    fn prefetch(p: *const u8) {
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }

    /// Stores the 64 bytes `v` at `win[at..at + 64]`, with `at` clamped to `N - 64`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn store512_at<const N: usize>(win: &mut [MaybeUninit<u8>; N], at: usize, v: __m512i) {
        let at = at.min(N - 64);
        // SAFETY: `at + 64 <= N`, so the 64 bytes stored lie inside `win`; the store has no
        // alignment requirement.
        unsafe { _mm512_storeu_si512(win.as_mut_ptr().add(at).cast(), v) }
    }

    /// The stuffing kernel of [`Tier::Avx512`] for the sets tested as ranges ([`PAIR`],
    /// [`CONTROLS`]), always folding: 128 bytes per step in two 512-bit vectors, folded into two
    /// 512-bit accumulators 64 bytes apart (half the carry-less multiplications of 256-bit
    /// folding) and classified into mask registers (a compare or two per 64 bytes, no mask
    /// extraction); a step with nothing to escape is two stores. Then as [`stuff_vpclmul`].
    #[target_feature(
        enable = "avx512f,avx512bw,avx512vl,avx2,vpclmulqdq,pclmulqdq,ssse3,sse4.1,popcnt"
    )]
    fn stuff_avx512<const KIND: u8>(
        k: &FoldConstants,
        register: u32,
        shape: &Shape,
        data: &[u8],
        out: &mut [MaybeUninit<u8>],
    ) -> (u32, usize, usize) {
        let set = &Set128::new(shape);
        let wide = &Set256::new(set);
        let bias = _mm512_broadcast_i32x4(set.bias);
        let limit = _mm512_broadcast_i32x4(set.limit);
        let controls = _mm512_set1_epi8(0x1F);
        // Bit i set when byte i of `v` is in the set.
        let members = |v: __m512i| -> u64 {
            let range = _mm512_cmplt_epi8_mask(_mm512_add_epi8(v, bias), limit);
            if KIND == CONTROLS {
                range | _mm512_cmple_epu8_mask(v, controls)
            } else {
                range
            }
        };
        let initial = _mm256_zextsi128_si256(_mm_cvtsi32_si128(register as i32));
        let (chunks, _) = data.as_chunks::<128>();
        // Data with escapes near its start (random or escape-dense data, at ACCM 0xFFFFFFFF
        // nearly everything) is stuffed faster by the 256-bit kernel, whose masks come from
        // vector compares: take it for the whole payload.
        if let Some((h0, h1)) = chunks
            .first()
            .and_then(|c| Some((c.first_chunk::<64>()?, c.last_chunk::<64>()?)))
            && members(load512(h0)) | members(load512(h1)) != 0
        {
            return stuff_vpclmul::<KIND, true>(k, register, shape, data, out);
        }
        let k1024 = _mm512_broadcast_i32x4(pair::<1024>(k));
        let (mut w, mut done) = (0, 0);
        let mut acc: Option<[__m512i; 2]> = None;
        for chunk in chunks {
            let Some(win) = window::<256>(out, w) else {
                break;
            };
            let (halves, _) = chunk.as_chunks::<64>();
            let (Some(h0), Some(h1)) = (halves.first(), halves.get(1)) else {
                break;
            };
            prefetch(chunk.as_ptr().wrapping_add(PREFETCH_AHEAD));
            let v = [load512(h0), load512(h1)];
            acc = Some(match acc {
                None => [
                    _mm512_xor_si512(v[0], _mm512_zextsi256_si512(initial)),
                    v[1],
                ],
                Some(a) => [fold512(a[0], k1024, v[0]), fold512(a[1], k1024, v[1])],
            });
            let (m0, m1) = (members(v[0]), members(v[1]));
            if m0 | m1 == 0 {
                store512_at(win, 0, v[0]);
                store512_at(win, 64, v[1]);
                w += 128;
            } else {
                let quarters = [
                    _mm512_castsi512_si256(v[0]),
                    _mm512_extracti64x4_epi64::<1>(v[0]),
                    _mm512_castsi512_si256(v[1]),
                    _mm512_extracti64x4_epi64::<1>(v[1]),
                ];
                let masks = [m0 as u32, (m0 >> 32) as u32, m1 as u32, (m1 >> 32) as u32];
                let mut at = 0;
                for (y, m) in quarters.into_iter().zip(masks) {
                    at += emit32(y, m, win, at);
                }
                w += at;
            }
            done += 128;
        }
        // The two accumulators folded into one, then its four 128-bit lanes into two.
        let z = acc.map(|a| {
            let z = fold512(a[0], _mm512_broadcast_i32x4(pair::<512>(k)), a[1]);
            fold256(
                _mm512_castsi512_si256(z),
                pair256::<256>(k),
                _mm512_extracti64x4_epi64::<1>(z),
            )
        });
        stuff_rest256::<KIND, true>(k, register, set, wide, initial, z, data, done, out, w)
    }

    /// The first 64 bytes of data, with the register XORed in, as four 128-bit accumulators.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn start128(q: &[[u8; 16]; 4], initial: __m128i) -> [__m128i; 4] {
        [
            _mm_xor_si128(load128(&q[0]), initial),
            load128(&q[1]),
            load128(&q[2]),
            load128(&q[3]),
        ]
    }

    /// The four accumulators folded forward over the next 64 bytes, which are XORed in.
    #[inline]
    #[target_feature(enable = "pclmulqdq")]
    fn advance128(k: &FoldConstants, acc: [__m128i; 4], q: &[[u8; 16]; 4]) -> [__m128i; 4] {
        let k512 = pair::<512>(k);
        let mut acc = acc;
        for (a, b) in acc.iter_mut().zip(q) {
            *a = _mm_xor_si128(fold128(*a, k512), load128(b));
        }
        acc
    }

    /// `tier` must not exceed what the CPU supports (the callers clamp it) and must not be
    /// [`Tier::Portable`]; `data` must hold at least 16 bytes (else nothing is done).
    pub(super) fn stuff(
        tier: Tier,
        shape: &Shape,
        fold: Option<&FoldConstants>,
        register: u32,
        data: &[u8],
        out: &mut [MaybeUninit<u8>],
    ) -> (u32, usize, usize) {
        // Without a fold the constants are never read; any will do.
        let (k, folding) = match fold {
            Some(k) => (k, true),
            None => (&crate::fcs::FCS16_FOLD, false),
        };
        macro_rules! dispatch {
            ($($kind:ident),*) => {
                match (tier, kind(shape), folding) {
                    (Tier::Portable, ..) => (register, 0, 0),
                    (Tier::Avx512, PAIR, true) => {
                        // SAFETY: the Avx512 tier has AVX-512 F/BW/VL, AVX2, VPCLMULQDQ and
                        // everything Sse has.
                        unsafe { stuff_avx512::<PAIR>(k, register, shape, data, out) }
                    }
                    (Tier::Avx512, CONTROLS, true) => {
                        // SAFETY: as above.
                        unsafe { stuff_avx512::<CONTROLS>(k, register, shape, data, out) }
                    }
                    $(
                        (Tier::Sse, $kind, true) => {
                            // SAFETY: the Sse tier has PCLMULQDQ, SSSE3, SSE4.1 and POPCNT.
                            unsafe { stuff_sse::<$kind, true>(k, register, shape, data, out) }
                        }
                        (Tier::Sse, $kind, false) => {
                            // SAFETY: the Sse tier has PCLMULQDQ, SSSE3, SSE4.1 and POPCNT.
                            unsafe { stuff_sse::<$kind, false>(k, register, shape, data, out) }
                        }
                        (Tier::Avx2, $kind, true) => {
                            // SAFETY: the Avx2 tier has AVX2 and everything Sse has.
                            unsafe { stuff_avx2::<$kind, true>(k, register, shape, data, out) }
                        }
                        (Tier::Avx2 | Tier::Avx2Vpclmul | Tier::Avx512, $kind, false) => {
                            // SAFETY: tiers from Avx2 up have AVX2 and everything Sse has.
                            unsafe { stuff_avx2::<$kind, false>(k, register, shape, data, out) }
                        }
                        // (AVX-512 with PAIR and CONTROLS is taken above.)
                        #[allow(unreachable_patterns)]
                        (Tier::Avx2Vpclmul | Tier::Avx512, $kind, true) => {
                            // SAFETY: tiers from Avx2Vpclmul up have AVX2, VPCLMULQDQ and
                            // everything Sse has.
                            unsafe { stuff_vpclmul::<$kind, true>(k, register, shape, data, out) }
                        }
                    )*
                    _ => (register, 0, 0),
                }
            };
        }
        dispatch!(PAIR, CONTROLS, NIBBLES)
    }

    /// Spare room [`unstuff`] wants past its output limit: its block stores may go that far.
    pub(super) const UNSTUFF_SLACK: usize = 128;

    /// Unstuffs one 16-byte block `v` whose special-byte mask is `special` (see
    /// [`super::unstuff_into`]) into `win`, `escaped` telling whether the byte before the block
    /// was an unfinished escape; returns the bytes of the block consumed (0 to 16: it stops at the
    /// first byte it leaves to the caller), the bytes written and whether the last byte consumed
    /// is an escape (unchanged if nothing was consumed).
    #[inline]
    #[target_feature(enable = "ssse3,popcnt")]
    fn unstuff16(
        v: __m128i,
        special: u32,
        escaped: bool,
        win: &mut [MaybeUninit<u8>; 16],
    ) -> (usize, usize, bool) {
        let escapes = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7D));
        let e = _mm_movemask_epi8(escapes) as u32;
        // Flags and control characters, and an escape right after an escape (7D 7D: the second
        // is data; a run of them alternates), stop the block.
        let hard = (special & !e) | (e & (e << 1 | u32::from(escaped)));
        let n = (hard | 1 << 16).trailing_zeros();
        if n == 0 {
            return (0, 0, escaped);
        }
        let kept = (1u32 << n) - 1;
        let e = e & kept;
        let remove = (e | !kept) & 0xFFFF;
        // Bit 5 flipped in every byte after an escape (only the kept ones matter).
        let carry = _mm_cvtsi32_si128(if escaped { 0x20 } else { 0 });
        let flips = _mm_or_si128(
            _mm_and_si128(_mm_slli_si128::<1>(escapes), _mm_set1_epi8(0x20)),
            carry,
        );
        let v = _mm_xor_si128(v, flips);
        let (low, high) = ((remove & 0xFF) as u8, (remove >> 8) as u8);
        store64_at(
            win,
            0,
            _mm_shuffle_epi8(v, load64(&COMPRESS[usize::from(low)])),
        );
        let at = 8 - low.count_ones() as usize;
        store64_at(
            win,
            at,
            _mm_shuffle_epi8(_mm_srli_si128::<8>(v), load64(&COMPRESS[usize::from(high)])),
        );
        let written = at + 8 - high.count_ones() as usize;
        (n as usize, written, e >> (n - 1) & 1 != 0)
    }

    /// Writes the 32-byte block `v` into `win` without the bytes flagged in `remove`, with bit 5
    /// flipped in each byte after an escape (`escapes`: 0xFF in the escape octets; `escaped`:
    /// the byte before the block was one); returns how many bytes that is.
    #[inline]
    #[target_feature(enable = "avx2,popcnt")]
    fn compact32(
        v: __m256i,
        escapes: __m256i,
        escaped: bool,
        remove: u32,
        win: &mut [MaybeUninit<u8>; 32],
    ) -> usize {
        // The escape mask moved up one byte across the two lanes, and the carried escape into
        // byte 0.
        let carried = _mm256_permute2x128_si256::<0x08>(escapes, escapes);
        let after = _mm256_alignr_epi8::<15>(escapes, carried);
        let flips = _mm256_or_si256(
            _mm256_and_si256(after, _mm256_set1_epi8(0x20)),
            _mm256_zextsi128_si256(_mm_cvtsi32_si128(i32::from(escaped) << 5)),
        );
        let v = _mm256_xor_si256(v, flips);
        let (lo, hi) = (_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let mut at = 0;
        for (group, r) in [lo, _mm_srli_si128::<8>(lo), hi, _mm_srli_si128::<8>(hi)]
            .into_iter()
            .zip(remove.to_le_bytes())
        {
            store64_at(
                win,
                at,
                _mm_shuffle_epi8(group, load64(&COMPRESS[usize::from(r)])),
            );
            at += 8 - r.count_ones() as usize;
        }
        at
    }

    /// The unstuffing loop over 16-byte blocks from input `i` and output `w` on, committing
    /// nothing past output `limit`; returns the bytes consumed and written in total.
    #[inline]
    #[target_feature(enable = "ssse3,popcnt")]
    fn unstuff_blocks<const KIND: u8>(
        set: &Set128,
        data: &[u8],
        escaped: &mut bool,
        out: &mut [MaybeUninit<u8>],
        limit: usize,
        mut i: usize,
        mut w: usize,
    ) -> (usize, usize) {
        while let (Some(block), Some(win)) = (
            data.get(i..).and_then(|d| d.first_chunk::<16>()),
            window::<16>(out, w),
        ) {
            let v = load128(block);
            let special = mask128::<KIND>(set, v);
            let (n, written, now_escaped) = if special == 0 && !*escaped {
                store128_at(win, 0, v);
                (16, 16, false)
            } else {
                unstuff16(v, special, *escaped, win)
            };
            if w + written > limit {
                break;
            }
            i += n;
            w += written;
            *escaped = now_escaped;
            if n < 16 {
                break;
            }
        }
        (i, w)
    }

    /// The unstuffing kernel of [`Tier::Sse`]: returns the bytes consumed and written.
    #[target_feature(enable = "ssse3,popcnt")]
    fn unstuff_sse<const KIND: u8>(
        shape: &Shape,
        data: &[u8],
        escaped: &mut bool,
        out: &mut [MaybeUninit<u8>],
        limit: usize,
    ) -> (usize, usize) {
        unstuff_blocks::<KIND>(&Set128::new(shape), data, escaped, out, limit, 0, 0)
    }

    /// The unstuffing kernel of [`Tier::Avx2`] and up: a 32-byte block with nothing to do is
    /// copied whole (and then 64 bytes at a time while that lasts), a block whose only special
    /// byte is the closing flag is copied up to it, others go through [`unstuff32`].
    #[target_feature(enable = "avx2,popcnt,bmi1")]
    fn unstuff_avx2<const KIND: u8>(
        shape: &Shape,
        data: &[u8],
        escaped_io: &mut bool,
        out: &mut [MaybeUninit<u8>],
        limit: usize,
    ) -> (usize, usize) {
        let set = &Set128::new(shape);
        let wide = &Set256::new(set);
        let flag = _mm256_set1_epi8(FLAG as i8);
        let (mut i, mut w) = (0, 0);
        let mut escaped = *escaped_io;
        // Whether the last block had something to unescape (then the next one likely has too).
        let mut dense = false;
        loop {
            // 64 bytes with nothing special before the first flag (if any): copied up to it,
            // stored whole (only the bytes before the flag count). The common case: the bytes
            // of a frame with nothing to unescape, and its end.
            if !escaped
                && !dense
                && let (Some(block), Some(win)) = (
                    data.get(i..).and_then(|d| d.first_chunk::<64>()),
                    window::<64>(out, w),
                )
            {
                let (halves, _) = block.as_chunks::<32>();
                let (v0, v1) = (load256_at(halves, 0), load256_at(halves, 1));
                let special = u64::from(mask256::<KIND>(wide, v0))
                    | u64::from(mask256::<KIND>(wide, v1)) << 32;
                if special == 0 && w + 64 <= limit {
                    // Nothing special at all: the next addresses are constants, so the next
                    // loads need not wait for this block's masks (a predicted branch, not a
                    // data dependency through the flag position).
                    store256_at(win, 0, v0);
                    store256_at(win, 32, v1);
                    i += 64;
                    w += 64;
                    continue;
                }
                let flags = u64::from(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v0, flag)) as u32)
                    | u64::from(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v1, flag)) as u32) << 32;
                let n = flags.trailing_zeros() as usize;
                let before = special & !flags & (flags ^ flags.wrapping_sub(1));
                if before == 0 && w + n <= limit {
                    store256_at(win, 0, v0);
                    store256_at(win, 32, v1);
                    i += n;
                    w += n;
                    if n < 64 {
                        break;
                    }
                    continue;
                }
            }
            let (Some(block), Some(win)) = (
                data.get(i..).and_then(|d| d.first_chunk::<32>()),
                window::<32>(out, w),
            ) else {
                break;
            };
            let v = load256(block);
            let special = mask256::<KIND>(wide, v);
            if !escaped {
                // The same for 32 bytes.
                if special == 0 && w + 32 <= limit {
                    store256_at(win, 0, v);
                    i += 32;
                    w += 32;
                    dense = false;
                    continue;
                }
                let flags = _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, flag)) as u32;
                let n = flags.trailing_zeros() as usize;
                let before = special & !flags & (flags ^ flags.wrapping_sub(1));
                if before == 0 && w + n <= limit {
                    store256_at(win, 0, v);
                    i += n;
                    w += n;
                    if n < 32 {
                        break;
                    }
                    dense = false;
                    continue;
                }
            }
            // Escapes (and maybe more). Flags and control characters stop the block, and so
            // does an escape right after an escape (7D 7D: the second is data; a run of them
            // alternates), which is rare.
            dense = true;
            let escapes = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(0x7D));
            let e = _mm256_movemask_epi8(escapes) as u32;
            let hard = (special & !e) | (e & e << 1) | (e & u32::from(escaped));
            if hard == 0 {
                // The whole block: what it writes and whether it ends on an escape follow from
                // the block alone, so blocks do not wait for each other (the carried escape
                // only flips a byte).
                let written = 32 - e.count_ones() as usize;
                if w + written > limit {
                    break;
                }
                compact32(v, escapes, escaped, e, win);
                i += 32;
                w += written;
                escaped = e >> 31 != 0;
                continue;
            }
            let n = hard.trailing_zeros();
            if n == 0 {
                break;
            }
            let kept = (1u32 << n) - 1;
            let e = e & kept;
            let written = compact32(v, escapes, escaped, e | !kept, win);
            if w + written > limit {
                break;
            }
            i += n as usize;
            w += written;
            escaped = e >> (n - 1) & 1 != 0;
            break;
        }
        *escaped_io = escaped;
        if data.get(i..).is_some_and(|rest| rest.len() < 32) {
            return unstuff_blocks::<KIND>(set, data, escaped_io, out, limit, i, w);
        }
        (i, w)
    }

    /// `tier` must not exceed what the CPU supports (the callers clamp it).
    pub(super) fn unstuff(
        tier: Tier,
        shape: &Shape,
        data: &[u8],
        escaped: &mut bool,
        out: &mut [MaybeUninit<u8>],
        limit: usize,
    ) -> (usize, usize) {
        macro_rules! dispatch {
            ($($kind:ident),*) => {
                match (tier, kind(shape)) {
                    (Tier::Portable, _) => (0, 0),
                    $(
                        (Tier::Sse, $kind) => {
                            // SAFETY: the Sse tier has SSSE3 and POPCNT.
                            unsafe { unstuff_sse::<$kind>(shape, data, escaped, out, limit) }
                        }
                        (Tier::Avx2 | Tier::Avx2Vpclmul | Tier::Avx512, $kind) => {
                            // SAFETY: tiers from Avx2 up have AVX2, SSSE3 and POPCNT.
                            unsafe { unstuff_avx2::<$kind>(shape, data, escaped, out, limit) }
                        }
                    )*
                    _ => (0, 0),
                }
            };
        }
        dispatch!(PAIR, CONTROLS, NIBBLES)
    }

    /// A whole-frame kernel: `(encoder, frame, output)` to the bytes written. Unsafe to call:
    /// the CPU must have the kernel's target features (see [`frame_kernel`]).
    pub(super) type FrameKernel =
        unsafe fn(&FrameEncoder, &FrameParts<'_>, &mut [MaybeUninit<u8>]) -> usize;

    /// The whole-frame kernels for `tier` (which must not exceed what the CPU supports: the
    /// caller clamps it), escape set `shape` and an FCS of `width` bytes (0, 2 or 4), for
    /// payloads of up to [`SHORT_FOLD_MAX`] bytes and for longer ones; `None` for the portable
    /// tier. On [`Tier::Avx512`] `frame_avx512` takes the long FCS-16 and FCS-32 frames with the
    /// two-byte and the control-character sets.
    pub(super) fn frame_kernels(
        tier: Tier,
        shape: &Shape,
        width: usize,
    ) -> Option<(FrameKernel, FrameKernel)> {
        let short = match short_kernel(tier, shape, width) {
            Some(short) => short,
            None => frame_kernel(tier.min(Tier::Avx2Vpclmul), shape, width)?,
        };
        Some((short, frame_kernel(tier, shape, width).unwrap_or(short)))
    }

    /// Invokes the selector macro `$choose` with every escape-set kind and FCS width a frame
    /// kernel is instantiated for.
    macro_rules! every_set_and_width {
        ($choose:ident) => {
            $choose!(
                (PAIR, 2),
                (PAIR, 4),
                (PAIR, 0),
                (CONTROLS, 2),
                (CONTROLS, 4),
                (CONTROLS, 0),
                (NIBBLES, 2),
                (NIBBLES, 4),
                (NIBBLES, 0)
            )
        };
    }

    /// The short-payload encoder ([`frame_short_avx2`], [`frame_short_vpclmul`]) for `shape` and
    /// an FCS of `width` bytes, on tiers from [`Tier::Avx2`] up.
    fn short_kernel(tier: Tier, shape: &Shape, width: usize) -> Option<FrameKernel> {
        macro_rules! choose {
            ($(($kind:ident, $width:literal)),*) => {
                match (tier, kind(shape), width) {
                    $(
                        (Tier::Avx2, $kind, $width) => {
                            Some(frame_short_avx2::<$kind, $width> as FrameKernel)
                        }
                        (Tier::Avx2Vpclmul | Tier::Avx512, $kind, $width) => {
                            Some(frame_short_vpclmul::<$kind, $width> as FrameKernel)
                        }
                    )*
                    _ => None,
                }
            };
        }
        every_set_and_width!(choose)
    }

    /// The kernel of [`frame_kernels`] for one tier (the first one listed that applies).
    fn frame_kernel(tier: Tier, shape: &Shape, width: usize) -> Option<FrameKernel> {
        macro_rules! choose {
            ($(($kind:ident, $width:literal)),*) => {
                match (tier, kind(shape), width) {
                    (Tier::Portable, ..) => None,
                    (Tier::Avx512, PAIR, 2) => Some(frame_avx512::<PAIR, 2> as FrameKernel),
                    (Tier::Avx512, PAIR, 4) => Some(frame_avx512::<PAIR, 4> as FrameKernel),
                    (Tier::Avx512, CONTROLS, 2) => {
                        Some(frame_avx512::<CONTROLS, 2> as FrameKernel)
                    }
                    (Tier::Avx512, CONTROLS, 4) => {
                        Some(frame_avx512::<CONTROLS, 4> as FrameKernel)
                    }
                    $(
                        (Tier::Sse, $kind, $width) => {
                            Some(frame_sse::<$kind, $width> as FrameKernel)
                        }
                        // (AVX-512 with PAIR and CONTROLS and an FCS is taken above.)
                        #[allow(unreachable_patterns)]
                        (Tier::Avx2 | Tier::Avx2Vpclmul | Tier::Avx512, $kind, $width) => {
                            Some(frame_avx2::<$kind, $width> as FrameKernel)
                        }
                    )*
                    _ => None,
                }
            };
        }
        every_set_and_width!(choose)
    }

    /// Writes the payload bytes `data` (16 to [`SHORT_FOLD_MAX`]) escaped into `out` from `w`
    /// on, 16 bytes at a time; evaluates to the new `w`. The last partial block is the last 16
    /// bytes of `data` shifted down so that the new ones come first, their escape mask with them.
    macro_rules! emit_payload_sse {
        ($set:expr, $wide:expr, $data:expr, $out:expr, $w:expr) => {{
            let (_, mut w) = ($wide, $w);
            let (blocks, tail) = $data.as_chunks::<16>();
            for b in blocks {
                if let Some(win) = window::<32>($out, w) {
                    let v = load128(b);
                    w += emit16(v, mask128::<KIND>($set, v), win, 0);
                }
            }
            emit_tail!($set, $data, tail.len(), $out, w)
        }};
    }

    /// [`emit_payload_sse`] 32 bytes at a time.
    macro_rules! emit_payload_avx2 {
        ($set:expr, $wide:expr, $data:expr, $out:expr, $w:expr) => {{
            let mut w = $w;
            let (blocks, rest) = $data.as_chunks::<32>();
            for b in blocks {
                if let Some(win) = window::<64>($out, w) {
                    let v = load256(b);
                    w += emit32(v, mask256::<KIND>($wide, v), win, 0);
                }
            }
            let (blocks, tail) = rest.as_chunks::<16>();
            for b in blocks {
                if let Some(win) = window::<32>($out, w) {
                    let v = load128(b);
                    w += emit16(v, mask128::<KIND>($set, v), win, 0);
                }
            }
            emit_tail!($set, $data, tail.len(), $out, w)
        }};
    }

    /// The last `$tail` (< 16) bytes of `$data` (at least 16 bytes) escaped at `$w`; evaluates
    /// to the new `w`.
    macro_rules! emit_tail {
        ($set:expr, $data:expr, $tail:expr, $out:expr, $w:expr) => {{
            let w = $w;
            match window::<32>($out, w) {
                Some(win) => w + emit_last::<KIND, 32>($set, $data, $tail, win, 0).unwrap_or(0),
                None => w,
            }
        }};
    }

    /// Folds the 32 bytes `$y` (two blocks) into the 128-bit accumulator `$acc` with 128-bit
    /// multiplications, each block with its pair of `$pairs`.
    macro_rules! fold_pairs_128 {
        ($acc:expr, $y:expr, $pairs:expr) => {{
            let [p0, p1] = $pairs;
            let (y, acc): (__m256i, __m128i) = ($y, $acc);
            let lo = _mm256_castsi256_si128(y);
            let hi = _mm256_extracti128_si256::<1>(y);
            _mm_xor_si128(
                acc,
                _mm_xor_si128(fold128(lo, load_pair(p0)), fold128(hi, load_pair(p1))),
            )
        }};
        // The accumulator's initial value, and the accumulator as one 128-bit value.
        (zero) => {
            _mm_setzero_si128()
        };
        (narrow $acc:expr) => {
            $acc
        };
    }

    /// [`fold_pairs_128`] with 256-bit multiplications into a 256-bit accumulator.
    macro_rules! fold_pairs_256 {
        ($acc:expr, $y:expr, $pairs:expr) => {{
            let (y, acc): (__m256i, __m256i) = ($y, $acc);
            let pairs = load_pairs256($pairs);
            _mm256_xor_si256(
                acc,
                _mm256_xor_si256(
                    _mm256_clmulepi64_epi128(y, pairs, 0x00),
                    _mm256_clmulepi64_epi128(y, pairs, 0x11),
                ),
            )
        }};
        (zero) => {
            _mm256_setzero_si256()
        };
        (narrow $acc:expr) => {{
            let acc: __m256i = $acc;
            _mm_xor_si128(
                _mm256_castsi256_si128(acc),
                _mm256_extracti128_si256::<1>(acc),
            )
        }};
    }

    /// Two folding multiplier pairs as one 256-bit value.
    #[inline]
    #[target_feature(enable = "avx")]
    fn load_pairs256(pairs: &[[u64; 2]; 2]) -> __m256i {
        // SAFETY: `pairs` is 32 readable bytes; the load has no alignment requirement.
        unsafe { _mm256_loadu_si256(pairs.as_ptr().cast()) }
    }

    /// Defines the whole-frame encoder for payloads of 16 to [`SHORT_FOLD_MAX`] bytes of a tier
    /// from [`Tier::Avx2`] up (others go to [`frame_avx2`]), with `$fold` folding 32 bytes into
    /// the accumulator: a function of its own, so that it needs few registers and no stack. The
    /// payload is escaped 32 bytes at a time and its FCS folded in the same pass, all into one
    /// window of `out` (one bounds check for the frame).
    ///
    /// The FCS takes the payload's whole 16-byte blocks from the front, each folded over its own
    /// distance to the end of the last one ([`FoldConstants::by_lane`], one multiplication
    /// deep), then the last 1 to 15 bytes through [`finish`]. (For a 64-byte payload that is
    /// half the instructions of [`fold_short_width`], whose blocks end at the end of the payload
    /// and need shifting into place.)
    macro_rules! frame_short_kernel {
        ($(#[$attr:meta])* $name:ident, $features:literal, $fold:ident) => {
            $(#[$attr])*
            #[target_feature(enable = $features)]
            fn $name<const KIND: u8, const W: usize>(
                encoder: &FrameEncoder,
                frame: &FrameParts<'_>,
                out: &mut [MaybeUninit<u8>],
            ) -> usize {
                let data = frame.payload;
                if !(16..=SHORT_FOLD_MAX).contains(&data.len()) {
                    return frame_avx2::<KIND, W>(encoder, frame, out);
                }
                // (Always there: `encode_frame_into_vec` reserves it.)
                let Some(win) = window::<SHORT_WINDOW>(out, 0) else {
                    return frame_avx2::<KIND, W>(encoder, frame, out);
                };
                let k = encoder.k;
                let set = &Set128::load(&encoder.ops);
                let wide = &Set256::load(&encoder.ops);
                // The opening flag and the header, escaped beforehand.
                store128_at(win, 0, load128(frame.head));
                let mut w = frame.head_len.min(16);
                let (chunks, rest) = data.as_chunks::<32>();
                // Block 0 of the `whole` whole blocks goes over 128·(whole - 1) bits, with
                // `by_lane[17 - whole]`; the last one gets `by_lane[16]`, zero, and is added
                // as it is.
                let whole = data.len() / 16;
                let lanes = k.by_lane.get(17 - whole..).unwrap_or_default();
                let (lanes, _) = lanes.as_chunks::<2>();
                // The register goes into the first bytes.
                let mut first = _mm256_zextsi128_si256(_mm_cvtsi32_si128(frame.register as i32));
                let mut acc = $fold!(zero);
                let mut last = _mm256_castsi256_si128(first);
                for (chunk, pairs) in chunks.iter().zip(lanes) {
                    let y = load256(chunk);
                    w += emit32(y, mask256::<KIND>(wide, y), win, w);
                    if W > 0 {
                        acc = $fold!(acc, _mm256_xor_si256(y, first), pairs);
                        last = _mm256_extracti128_si256::<1>(y);
                        first = _mm256_setzero_si256();
                    }
                }
                let (blocks, tail) = rest.as_chunks::<16>();
                if let Some(b) = blocks.first() {
                    let v = load128(b);
                    w += emit16(v, mask128::<KIND>(set, v), win, w);
                    last = v;
                }
                // The last few bytes: the last 16 bytes of `data` shifted down so that the new
                // ones come first, their escape mask with them.
                let tail = tail.len();
                if tail > 0
                    && let (Some(end), Some(shift)) = (
                        data.last_chunk::<16>(),
                        SHIFT_MASKS
                            .get(32 - tail..)
                            .and_then(|m| m.first_chunk::<16>()),
                    )
                {
                    let v = load128(end);
                    let mask = mask128::<KIND>(set, v) >> (16 - tail);
                    emit16(_mm_shuffle_epi8(v, load128(shift)), mask, win, w);
                    w += tail + mask.count_ones() as usize;
                }
                let register = if W > 0 {
                    // The two lanes of the accumulator (the first block of a lane 1 holding
                    // anything is the last block, its pair zero), and the last whole block as
                    // it is, with the register if it is block 0.
                    let x = _mm_xor_si128(
                        $fold!(narrow acc),
                        _mm_xor_si128(last, _mm256_castsi256_si128(first)),
                    );
                    if tail > 0 {
                        finish(k, x, data, 16 * whole).0
                    } else {
                        reduce128_width(k, 8 * W as u32, x)
                    }
                } else {
                    frame.register
                };
                close_frame::<KIND, W>(set, register, win, w)
            }
        };
    }

    frame_short_kernel!(
        /// The short-payload encoder of [`Tier::Avx2`].
        frame_short_avx2,
        "avx2,pclmulqdq,ssse3,sse4.1,popcnt",
        fold_pairs_128
    );
    frame_short_kernel!(
        /// The short-payload encoder of [`Tier::Avx2Vpclmul`] and up: two blocks per
        /// multiplication.
        frame_short_vpclmul,
        "avx2,vpclmulqdq,pclmulqdq,ssse3,sse4.1,popcnt",
        fold_pairs_256
    );

    /// The window [`frame_short_vpclmul`] and [`frame_short_avx2`] write a frame into: the head,
    /// a payload of up to [`SHORT_FOLD_MAX`] bytes all escaped, and room for the whole-vector
    /// stores at its end and the FCS with the closing flag.
    const SHORT_WINDOW: usize = 16 + 2 * SHORT_FOLD_MAX + 64;

    /// Defines the whole-frame encoder of a tier (see [`super::encode_frame_into_vec`], which
    /// sizes `out`); it returns the bytes written. Payloads up to [`SHORT_FOLD_MAX`] bytes are
    /// escaped here and their FCS folded in one step ([`fold_short`]); longer ones go through
    /// the tier's one-pass stuffing kernel.
    macro_rules! frame_kernel {
        ($(#[$attr:meta])* $name:ident, $features:literal, $widen:path, $emit:ident) => {
            $(#[$attr])*
            #[target_feature(enable = $features)]
            fn $name<const KIND: u8, const W: usize>(
                encoder: &FrameEncoder,
                frame: &FrameParts<'_>,
                out: &mut [MaybeUninit<u8>],
            ) -> usize {
                let (tier, shape, k) = (encoder.tier, &encoder.shape, encoder.k);
                let set = &Set128::load(&encoder.ops);
                let wide = &$widen(set);
                // The opening flag and the header, escaped beforehand.
                if let Some(win) = window::<16>(out, 0) {
                    store128_at(win, 0, load128(frame.head));
                }
                let mut w = frame.head_len.min(16);
                let fold = (W > 0).then_some(k);
                let mut register = frame.register;
                let payload = frame.payload;
                if (16..=SHORT_FOLD_MAX).contains(&payload.len()) {
                    w = $emit!(set, wide, payload, out, w);
                    if W > 0 {
                        register = fold_short_width(k, 8 * W as u32, register, payload);
                    }
                } else {
                    let (consumed, written) = match (payload.len() >= 16, out.get_mut(w..)) {
                        (true, Some(rest)) => {
                            let (r, c, n) = stuff(tier, shape, fold, register, payload, rest);
                            register = r;
                            (c, n)
                        }
                        _ => (0, 0),
                    };
                    w += written;
                    // A payload shorter than 16 bytes (or whatever the kernel left).
                    let rest = payload.get(consumed..).unwrap_or_default();
                    for piece in rest.chunks(15) {
                        let mut bytes = [0u8; 16];
                        bytes[..piece.len()].copy_from_slice(piece);
                        if let Some(win) = window::<32>(out, w) {
                            let v = load128(&bytes);
                            let mask = mask128::<KIND>(set, v) & ((1u32 << piece.len()) - 1);
                            emit16(v, mask, win, 0);
                            w += piece.len() + mask.count_ones() as usize;
                        }
                    }
                    register = match W {
                        2 => u32::from(crate::fcs::portable::fcs16_update(register as u16, rest)),
                        4 => crate::fcs::portable::fcs32_update(register, rest),
                        _ => register,
                    };
                }
                close_frame::<KIND, W>(set, register, out, w)
            }
        };
    }

    frame_kernel!(
        /// The whole-frame encoder of [`Tier::Sse`].
        frame_sse,
        "pclmulqdq,ssse3,sse4.1,popcnt",
        Set128::clone,
        emit_payload_sse
    );
    frame_kernel!(
        /// The whole-frame encoder of [`Tier::Avx2`] and up.
        frame_avx2,
        "avx2,pclmulqdq,ssse3,sse4.1,popcnt",
        Set256::new,
        emit_payload_avx2
    );

    /// Loads the bytes of `data[at..at + 64]` flagged in `mask` (bit `i` for byte `at + i`) and
    /// zeros elsewhere; flags past the end of `data` are dropped.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn load512_masked(data: &[u8], at: usize, mask: u64) -> __m512i {
        let available = data.len().saturating_sub(at);
        let mask = mask
            & u64::MAX
                .checked_shr(64u32.saturating_sub(available.min(64) as u32))
                .unwrap_or(0);
        if available == 0 || mask == 0 {
            return _mm512_setzero_si512();
        }
        // SAFETY: `at < data.len()`, so the pointer is inside `data`; the masked load reads
        // only the flagged bytes, which all lie inside `data` (the mask was cut to the bytes
        // available), and bytes not flagged are neither read nor able to fault.
        unsafe { _mm512_maskz_loadu_epi8(mask, data.as_ptr().add(at).cast()) }
    }

    /// Loads four consecutive folding pairs of [`FoldConstants::by_lane`] from `j` on (clamped
    /// to the last four), one per 128-bit lane.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn by_lane(k: &FoldConstants, j: usize) -> __m512i {
        let j = j.min(k.by_lane.len() - 4);
        match k.by_lane.get(j..).and_then(|p| p.first_chunk::<4>()) {
            // SAFETY: `pairs` is 64 readable bytes; the load has no alignment requirement.
            Some(pairs) => unsafe { _mm512_loadu_si512(pairs.as_ptr().cast()) },
            None => _mm512_setzero_si512(),
        }
    }

    /// Each 128-bit lane of `v` folded over the distance of the pair in the same lane of `pairs`.
    #[inline]
    #[target_feature(enable = "avx512f,vpclmulqdq")]
    fn fold512_lanes(v: __m512i, pairs: __m512i) -> __m512i {
        _mm512_xor_si512(
            _mm512_clmulepi64_epi128(v, pairs, 0x00),
            _mm512_clmulepi64_epi128(v, pairs, 0x11),
        )
    }

    /// The whole-frame encoder of [`Tier::Avx512`] for the sets tested as ranges ([`PAIR`],
    /// [`CONTROLS`]) with an FCS (`W` 2 or 4), for payloads longer than [`SHORT_FOLD_MAX`]
    /// (others go to [`frame_avx2`]): the header, then the payload in one pass of 128-byte steps
    /// (two 512-bit loads folded into two accumulators 64 bytes apart, classified into mask
    /// registers, stored with two stores when nothing is escaped) up to its last 1 to 128
    /// bytes, which are loaded with masked loads and stored the same way. Their whole 16-byte
    /// blocks and the eight blocks of the accumulators are then folded onto the end at once,
    /// each over its own distance (one multiplication deep, where block-by-block folding of
    /// the end was a chain of them that the next frame waited behind), and the last partial
    /// block goes through [`finish`]. Then the FCS and the closing flag.
    #[target_feature(
        enable = "avx512f,avx512bw,avx512vl,avx2,vpclmulqdq,pclmulqdq,ssse3,sse4.1,popcnt"
    )]
    fn frame_avx512<const KIND: u8, const W: usize>(
        encoder: &FrameEncoder,
        frame: &FrameParts<'_>,
        out: &mut [MaybeUninit<u8>],
    ) -> usize {
        let payload = frame.payload;
        if W == 0 || payload.len() <= SHORT_FOLD_MAX {
            return frame_avx2::<KIND, W>(encoder, frame, out);
        }
        let (k, register) = (encoder.k, frame.register);
        let set = &Set128::load(&encoder.ops);
        let bias = _mm512_broadcast_i32x4(set.bias);
        let limit = _mm512_broadcast_i32x4(set.limit);
        let controls = _mm512_set1_epi8(0x1F);
        // Bit i set when byte i of `v` is in the set.
        let members = |v: __m512i| -> u64 {
            let range = _mm512_cmplt_epi8_mask(_mm512_add_epi8(v, bias), limit);
            if KIND == CONTROLS {
                range | _mm512_cmple_epu8_mask(v, controls)
            } else {
                range
            }
        };
        // Whole 128-byte steps over all but the last 1 to 128 bytes (at least two steps).
        let steps = (payload.len() - 1) / 128;
        let (chunks, _) = payload.as_chunks::<128>();
        let chunks = chunks.get(..steps).unwrap_or_default();
        // Escape-dense data (random data at ACCM 0xFFFFFFFF, runs of flags) is stuffed faster by
        // the 256-bit kernel, whose masks come from vector compares: a payload whose second step
        // needs an escape goes there whole. (Not the first step: that is where a packet's
        // headers are, whose addresses, sequence numbers and checksums need one in about one
        // frame in six, with nothing after them.)
        if let Some(second) = chunks.get(1)
            && let (Some(h0), Some(h1)) = (second.first_chunk::<64>(), second.last_chunk::<64>())
            && members(load512(h0)) | members(load512(h1)) != 0
        {
            return frame_avx2::<KIND, W>(encoder, frame, out);
        }
        // The opening flag and the header, escaped beforehand.
        if let Some(win) = window::<16>(out, 0) {
            store128_at(win, 0, load128(frame.head));
        }
        let mut w = frame.head_len.min(16);
        let k1024 = _mm512_broadcast_i32x4(pair::<1024>(k));
        let mut acc = [
            _mm512_zextsi128_si512(_mm_cvtsi32_si128(register as i32)),
            _mm512_setzero_si512(),
        ];
        // Steps so far, and those with something to escape: while escapes are rare one branch
        // tests all 128 bytes; once they are common (random data), a branch per 32 bytes
        // mispredicts less.
        let (mut taken, mut dirty) = (0u32, 0u32);
        for (i, chunk) in chunks.iter().enumerate() {
            let Some(win) = window::<256>(out, w) else {
                break;
            };
            let (halves, _) = chunk.as_chunks::<64>();
            let (Some(h0), Some(h1)) = (halves.first(), halves.get(1)) else {
                break;
            };
            prefetch(chunk.as_ptr().wrapping_add(PREFETCH_AHEAD));
            let v = [load512(h0), load512(h1)];
            acc = if i == 0 {
                [_mm512_xor_si512(v[0], acc[0]), v[1]]
            } else {
                [fold512(acc[0], k1024, v[0]), fold512(acc[1], k1024, v[1])]
            };
            let m = [members(v[0]), members(v[1])];
            taken += 1;
            if dirty * 4 <= taken && m[0] | m[1] == 0 {
                store512_at(win, 0, v[0]);
                store512_at(win, 64, v[1]);
                w += 128;
            } else {
                dirty += u32::from(m[0] | m[1] != 0);
                w += emit128_avx512(v, m, win);
            }
        }
        // The last 1 to 128 bytes.
        let done = chunks.len() * 128;
        let tail = payload.get(done..).unwrap_or_default();
        let rem = tail.len();
        let masks = [
            u64::MAX
                .checked_shr(64u32.saturating_sub(rem as u32))
                .unwrap_or(0),
            u64::MAX
                .checked_shr(128u32.saturating_sub(rem as u32))
                .unwrap_or(0),
        ];
        let v = [
            load512_masked(tail, 0, masks[0]),
            load512_masked(tail, 64, masks[1]),
        ];
        let m = [members(v[0]) & masks[0], members(v[1]) & masks[1]];
        if let Some(win) = window::<256>(out, w) {
            if m[0] | m[1] == 0 {
                store512_at(win, 0, v[0]);
                store512_at(win, 64, v[1]);
            } else {
                emit128_avx512(v, m, win);
            }
            w += rem + (m[0].count_ones() + m[1].count_ones()) as usize;
        }
        // The FCS: the accumulators' eight blocks and the tail's whole blocks (`whole`), in
        // lanes 0 to 15 of [acc[0], acc[1], b[0], b[1]], each folded over its distance to the end
        // of the last whole block (lane 7 + whole, which is taken as it is).
        let whole = rem / 16;
        let block_lanes = u32::MAX.checked_shr(32 - 2 * whole as u32).unwrap_or(0);
        let b = [
            _mm512_maskz_mov_epi64(block_lanes as u8, v[0]),
            _mm512_maskz_mov_epi64((block_lanes >> 8) as u8, v[1]),
        ];
        let last = 0b11u32 << (2 * (7 + whole));
        let first = 9 - whole;
        let folded = _mm512_ternarylogic_epi64(
            fold512_lanes(acc[0], by_lane(k, first)),
            fold512_lanes(acc[1], by_lane(k, first + 4)),
            _mm512_ternarylogic_epi64(
                fold512_lanes(b[0], by_lane(k, first + 8)),
                fold512_lanes(b[1], by_lane(k, first + 12)),
                _mm512_maskz_mov_epi64((last >> 8) as u8, acc[1]),
                0x96,
            ),
            0x96,
        );
        let folded = _mm512_ternarylogic_epi64(
            folded,
            _mm512_maskz_mov_epi64((last >> 16) as u8, b[0]),
            _mm512_maskz_mov_epi64((last >> 24) as u8, b[1]),
            0x96,
        );
        let halves = _mm256_xor_si256(
            _mm512_castsi512_si256(folded),
            _mm512_extracti64x4_epi64::<1>(folded),
        );
        let x = _mm_xor_si128(
            _mm256_castsi256_si128(halves),
            _mm256_extracti128_si256::<1>(halves),
        );
        let (register, _) = finish(k, x, payload, done + 16 * whole);
        close_frame::<KIND, W>(set, register, out, w)
    }

    /// Writes the 128 bytes `v` with the bytes flagged in `m` escaped into `win`, 32 bytes at a
    /// time through [`emit32`]; returns how many bytes that is.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,popcnt")]
    fn emit128_avx512(v: [__m512i; 2], m: [u64; 2], win: &mut [MaybeUninit<u8>; 256]) -> usize {
        let quarters = [
            _mm512_castsi512_si256(v[0]),
            _mm512_extracti64x4_epi64::<1>(v[0]),
            _mm512_castsi512_si256(v[1]),
            _mm512_extracti64x4_epi64::<1>(v[1]),
        ];
        let masks = [
            m[0] as u32,
            (m[0] >> 32) as u32,
            m[1] as u32,
            (m[1] >> 32) as u32,
        ];
        let mut at = 0;
        for (y, m) in quarters.into_iter().zip(masks) {
            at += emit32(y, m, win, at);
        }
        at
    }

    /// The flag sequence.
    pub(super) const FLAG: u8 = 0x7E;

    /// The FCS register over a whole received frame of 16 to [`SHORT_FOLD_MAX`] bytes (its
    /// FCS included), from the initial register. Only called on a tier from Sse up.
    #[inline]
    pub(super) fn frame_register(k: &FoldConstants, frame: &[u8]) -> u32 {
        let init = ((1u64 << k.width) - 1) as u32;
        // SAFETY: the callers run on a tier from Sse up, which has PCLMULQDQ, SSSE3 and SSE4.1.
        unsafe { fold_short(k, init, frame) }
    }
}
