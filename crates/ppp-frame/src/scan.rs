//! Finding the next byte that needs attention in a run of bytes.
//!
//! The encoder looks for bytes it must escape; the decoder looks for flags, escapes and control
//! characters it must drop. Both are "first byte of `data` that is in this set", so both use
//! [`ByteSet`] and [`find_first`].
//!
//! # Speed
//!
//! A [`ByteSet`] classifies itself when it is built (all constructors are `const fn`), so
//! [`find_first`] picks its search without looking at the 256 bits again. It first tests the
//! first eight bytes a word at a time, inline, since runs are often short; then:
//!
//! * up to three members (ACCM 0: `{0x7D, 0x7E}`): the `memchr` crate's `memchr`/`memchr2`/
//!   `memchr3`, vectorised;
//! * anything else, for example all control characters plus `0x7D` and `0x7E` (ACCM 0xFFFFFFFF),
//!   or an arbitrary 256-bit escape map: a SIMD nibble-table lookup (PSHUFB, 16 or 32 bytes per
//!   step) on x86-64 with SSSE3/AVX2, detected at run time;
//! * otherwise (no SIMD, or `PPP_FRAME_PORTABLE`) a portable loop: 32 bytes per step, four
//!   64-bit words tested at once (SWAR), for sets of up to three bytes and for "all control
//!   characters plus at most two more"; one byte per step with the bit map for other sets.

use crate::simd::{self, NibbleTables, Shape};

/// A set of byte values, as a 256-bit map.
///
/// Besides the map it keeps what [`find_first`] needs to search fast (which kind of set it is, and
/// its nibble tables), all computed when the set is built; sets are small (68 bytes) and `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteSet {
    bits: [u32; 8],
    kind: Kind,
    nibbles: NibbleTables,
}

/// How [`find_first`] searches a set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    /// No member.
    Empty,
    /// One member.
    One(u8),
    /// Two members.
    Two(u8, u8),
    /// Three members.
    Three(u8, u8, u8),
    /// All of 0x00–0x1F plus these (possibly repeated or already in 0x00–0x1F) bytes.
    ControlsPlus(u8, u8),
    /// Anything else.
    General,
}

impl ByteSet {
    /// The empty set.
    pub const EMPTY: ByteSet = ByteSet::from_bits([0; 8]);

    /// A set from a 256-bit map: bit `b % 32` of word `b / 32` stands for byte `b`.
    pub const fn from_bits(bits: [u32; 8]) -> Self {
        ByteSet {
            bits,
            kind: classify(&bits),
            nibbles: nibble_tables(&bits),
        }
    }

    /// The 256-bit map.
    pub const fn bits(&self) -> [u32; 8] {
        self.bits
    }

    /// Adds `byte` to the set.
    pub const fn with(self, byte: u8) -> Self {
        let mut bits = self.bits;
        bits[(byte / 32) as usize] |= 1 << (byte % 32);
        ByteSet::from_bits(bits)
    }

    /// Adds every control character 0x00–0x1F whose bit is set in `accm` (bit n = character n).
    pub const fn with_accm(self, accm: u32) -> Self {
        let mut bits = self.bits;
        bits[0] |= accm;
        ByteSet::from_bits(bits)
    }

    /// Whether `byte` is in the set.
    #[inline]
    pub const fn contains(&self, byte: u8) -> bool {
        self.bits[(byte / 32) as usize] & (1 << (byte % 32)) != 0
    }

    /// The number of bytes in the set.
    pub const fn len(&self) -> usize {
        let mut n = 0;
        let mut i = 0;
        while i < 8 {
            n += self.bits[i].count_ones() as usize;
            i += 1;
        }
        n
    }

    /// Whether the set is empty.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How the SIMD stuffing and unstuffing kernels test for members.
    pub(crate) const fn shape(&self) -> Shape {
        match self.kind {
            // The kernels test a pair as a range of one or two bytes (one add, one compare).
            Kind::One(a) => Shape::Pair(a, a),
            Kind::Two(a, b) if a.abs_diff(b) == 1 => Shape::Pair(a, b),
            Kind::ControlsPlus(a, b) if a.abs_diff(b) <= 1 => Shape::ControlsPlus(a, b),
            Kind::Empty
            | Kind::Two(..)
            | Kind::ControlsPlus(..)
            | Kind::Three(..)
            | Kind::General => Shape::Nibbles(self.nibbles),
        }
    }
}

/// A word-at-a-time membership test (SWAR) for loops that scan and copy in one pass: the set
/// kinds that [`find_first_portable`] tests eight bytes at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WordTest {
    /// No member.
    Empty,
    /// One member.
    One(u8),
    /// Two members.
    Two(u8, u8),
    /// Three members.
    Three(u8, u8, u8),
    /// All of 0x00–0x1F plus these two bytes.
    ControlsPlus(u8, u8),
}

impl WordTest {
    /// The high bit of each byte of the little-endian word `x` that is in the set: zero exactly
    /// when no byte is, and the lowest bit set is exact (bits above it may be wrong).
    #[inline(always)]
    pub(crate) const fn hits(self, x: u64) -> u64 {
        match self {
            WordTest::Empty => 0,
            WordTest::One(a) => portable::equal(x, a),
            WordTest::Two(a, b) => portable::equal(x, a) | portable::equal(x, b),
            WordTest::Three(a, b, c) => {
                portable::equal(x, a) | portable::equal(x, b) | portable::equal(x, c)
            }
            WordTest::ControlsPlus(a, b) => {
                portable::below(x, 0x20) | portable::equal(x, a) | portable::equal(x, b)
            }
        }
    }
}

impl ByteSet {
    /// The set's word-at-a-time test, if it has one (not for arbitrary sets).
    pub(crate) const fn word_test(&self) -> Option<WordTest> {
        match self.kind {
            Kind::Empty => Some(WordTest::Empty),
            Kind::One(a) => Some(WordTest::One(a)),
            Kind::Two(a, b) => Some(WordTest::Two(a, b)),
            Kind::Three(a, b, c) => Some(WordTest::Three(a, b, c)),
            Kind::ControlsPlus(a, b) => Some(WordTest::ControlsPlus(a, b)),
            Kind::General => None,
        }
    }
}

/// Whether `a` and `b` are two adjacent bytes below 0x80, `a` first ([`portable::pair`]).
const fn is_low_pair(a: u8, b: u8) -> bool {
    a < 0x7F && b == a + 1
}

impl Default for ByteSet {
    fn default() -> Self {
        ByteSet::EMPTY
    }
}

const fn bit_is_set(bits: &[u32; 8], byte: usize) -> bool {
    bits[byte / 32] & (1 << (byte % 32)) != 0
}

/// The search strategy for the set `bits`.
const fn classify(bits: &[u32; 8]) -> Kind {
    // Up to three members of the whole set, and of the set without 0x00-0x1F.
    let mut members = [0u8; 3];
    let mut count = 0;
    let mut upper = [0u8; 2];
    let mut upper_count = 0;
    let mut b = 0;
    while b < 256 {
        if bit_is_set(bits, b) {
            if count < 3 {
                members[count] = b as u8;
            }
            count += 1;
            if b >= 0x20 {
                if upper_count < 2 {
                    upper[upper_count] = b as u8;
                }
                upper_count += 1;
            }
        }
        b += 1;
    }
    match count {
        0 => Kind::Empty,
        1 => Kind::One(members[0]),
        2 => Kind::Two(members[0], members[1]),
        3 => Kind::Three(members[0], members[1], members[2]),
        _ if bits[0] == u32::MAX && upper_count <= 2 => match upper_count {
            0 => Kind::ControlsPlus(0, 0),
            1 => Kind::ControlsPlus(upper[0], upper[0]),
            _ => Kind::ControlsPlus(upper[0], upper[1]),
        },
        _ => Kind::General,
    }
}

/// The set's rows for the nibble lookup (see [`NibbleTables`]).
const fn nibble_tables(bits: &[u32; 8]) -> NibbleTables {
    let mut low = [0u8; 16];
    let mut high = [0u8; 16];
    let mut b = 0;
    while b < 256 {
        if bit_is_set(bits, b) {
            let (row, hi) = (b & 0x0F, b >> 4);
            if hi < 8 {
                low[row] |= 1 << hi;
            } else {
                high[row] |= 1 << (hi - 8);
            }
        }
        b += 1;
    }
    NibbleTables { low, high }
}

impl core::fmt::Debug for ByteSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        /// A member, printed in hex.
        struct Hex(u8);
        impl core::fmt::Debug for Hex {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{:#04x}", self.0)
            }
        }
        f.debug_set()
            .entries((0..=255u8).filter(|b| self.contains(*b)).map(Hex))
            .finish()
    }
}

/// The index of the first byte of `data` that is in `set`, or `data.len()` if there is none.
#[inline]
pub fn find_first(data: &[u8], set: &ByteSet) -> usize {
    // Runs between bytes of the set are often short (escapes come in clusters, and with ACCM
    // 0xFFFFFFFF one random byte in eight is a control character), so look at the first eight
    // bytes here, word at a time, before calling a vectorised search with its set-up costs.
    let Some((head, rest)) = data.split_first_chunk::<8>() else {
        return find_in_short(data, set);
    };
    let x = u64::from_le_bytes(*head);
    let hits = match set.kind {
        Kind::Empty => return data.len(),
        Kind::One(a) => portable::equal(x, a),
        Kind::Two(a, b) => portable::equal(x, a) | portable::equal(x, b),
        Kind::Three(a, b, c) => {
            portable::equal(x, a) | portable::equal(x, b) | portable::equal(x, c)
        }
        Kind::ControlsPlus(a, b) => {
            portable::below(x, 0x20) | portable::equal(x, a) | portable::equal(x, b)
        }
        Kind::General => return find_long(data, set),
    };
    if hits != 0 {
        return (hits.trailing_zeros() / 8) as usize;
    }
    8 + find_long(rest, set)
}

/// [`find_first`] for fewer than eight bytes.
#[inline]
fn find_in_short(data: &[u8], set: &ByteSet) -> usize {
    data.iter()
        .position(|&c| set.contains(c))
        .unwrap_or(data.len())
}

/// [`find_first`] with the vectorised searches.
#[inline(never)]
fn find_long(data: &[u8], set: &ByteSet) -> usize {
    match set.kind {
        Kind::Empty => data.len(),
        Kind::One(a) if memchr_vectorised() => memchr::memchr(a, data).unwrap_or(data.len()),
        Kind::Two(a, b) if memchr_vectorised() => memchr::memchr2(a, b, data).unwrap_or(data.len()),
        Kind::Three(a, b, c) if memchr_vectorised() => {
            memchr::memchr3(a, b, c, data).unwrap_or(data.len())
        }
        Kind::One(_) | Kind::Two(..) | Kind::Three(..) => find_first_portable(data, set),
        Kind::ControlsPlus(..) => match simd::find_in_set(&set.nibbles, data) {
            Some(at) => at,
            None => find_first_portable(data, set),
        },
        Kind::General => match simd::find_in_set(&set.nibbles, data) {
            Some(at) => at,
            None => portable::find_in_bits(data, set),
        },
    }
}

/// Whether to use `memchr`'s own vectorised search: always, except when the SIMD kernels are
/// switched off on x86-64 (`PPP_FRAME_PORTABLE`, to measure the portable path), where its
/// word-at-a-time fallback stands in for a CPU without vector units.
#[inline]
fn memchr_vectorised() -> bool {
    !cfg!(target_arch = "x86_64") || simd::tier() != simd::Tier::Portable
}

/// [`find_first`] without the SIMD kernels: safe code only. Public so benches and fuzz targets
/// can compare it with the dispatched path.
pub fn find_first_portable(data: &[u8], set: &ByteSet) -> usize {
    match set.kind {
        Kind::Empty => data.len(),
        Kind::One(a) => portable::find_words(data, |x| portable::equal(x, a)),
        Kind::Two(a, b) if is_low_pair(a, b) => {
            portable::find_words(data, |x| portable::pair(x, a))
        }
        Kind::Two(a, b) => {
            portable::find_words(data, |x| portable::equal(x, a) | portable::equal(x, b))
        }
        Kind::Three(a, b, c) => portable::find_words(data, |x| {
            portable::equal(x, a) | portable::equal(x, b) | portable::equal(x, c)
        }),
        Kind::ControlsPlus(a, b) if is_low_pair(a, b) => {
            portable::find_words(data, |x| portable::below(x, 0x20) | portable::pair(x, a))
        }
        Kind::ControlsPlus(a, b) => portable::find_words(data, |x| {
            portable::below(x, 0x20) | portable::equal(x, a) | portable::equal(x, b)
        }),
        Kind::General => portable::find_in_bits(data, set),
    }
}

mod portable {
    use super::ByteSet;

    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;

    /// High bit of each byte of `x` below `n` (`n <= 0x80`). Bytes above the lowest flagged one
    /// may be flagged wrongly (borrows), the lowest flagged one is always right.
    #[inline(always)]
    pub(super) const fn below(x: u64, n: u8) -> u64 {
        x.wrapping_sub(ONES * n as u64) & !x & HIGHS
    }

    /// High bit of each byte of `x` equal to `lo` or `lo + 1` (`lo < 0x7F`), exactly (no
    /// carries cross bytes): six operations where two [`equal`] tests take eight or nine.
    #[inline(always)]
    pub(super) const fn pair(x: u64, lo: u8) -> u64 {
        let low7 = x & !HIGHS;
        // High bit set where the low seven bits are at least `lo`, and at least `lo + 2`.
        let from_lo = low7 + ONES * (0x80 - lo as u64);
        let past = low7 + ONES * (0x80 - (lo as u64 + 2));
        from_lo & !past & !x & HIGHS
    }

    /// High bit of each byte of `x` equal to `b`, with the same caveat as [`below`].
    #[inline(always)]
    pub(super) const fn equal(x: u64, b: u8) -> u64 {
        below(x ^ (ONES * b as u64), 1)
    }

    /// First byte of `data` whose flag `hits` sets (see [`below`] and [`equal`]), 32 bytes per
    /// step: four words are tested at once, and only a step with a hit looks at the words one by
    /// one.
    #[inline(always)]
    pub(super) fn find_words(data: &[u8], hits: impl Fn(u64) -> u64) -> usize {
        let word = |w: &[u8]| u64::from_le_bytes(w.try_into().unwrap_or_default());
        let (blocks, tail) = data.as_chunks::<32>();
        let mut done = 0;
        for block in blocks {
            let (a, b, c, d) = (
                hits(word(&block[..8])),
                hits(word(&block[8..16])),
                hits(word(&block[16..24])),
                hits(word(&block[24..])),
            );
            if a | b | c | d != 0 {
                // Each mask's lowest flag is exact, and a mask is zero exactly when its word has
                // no member.
                let (at, mask) = [(0, a), (8, b), (16, c)]
                    .into_iter()
                    .find(|(_, m)| *m != 0)
                    .unwrap_or((24, d));
                return done + at + (mask.trailing_zeros() / 8) as usize;
            }
            done += 32;
        }
        let (words, tail) = tail.as_chunks::<8>();
        for w in words {
            let mask = hits(u64::from_le_bytes(*w));
            if mask != 0 {
                return done + (mask.trailing_zeros() / 8) as usize;
            }
            done += 8;
        }
        let mut last = [0u8; 8];
        last[..tail.len()].copy_from_slice(tail);
        // Padding bytes could match (zero is a control character): mask them off.
        let mask = hits(u64::from_le_bytes(last)) & ((1u64 << (8 * tail.len())) - 1);
        if mask != 0 {
            done + (mask.trailing_zeros() / 8) as usize
        } else {
            data.len()
        }
    }

    /// First byte of `data` in `set`, one byte per step.
    pub(super) fn find_in_bits(data: &[u8], set: &ByteSet) -> usize {
        data.iter()
            .position(|&c| set.contains(c))
            .unwrap_or(data.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::Tier;
    use proptest::prelude::*;

    fn naive(data: &[u8], set: &ByteSet) -> usize {
        data.iter()
            .position(|&b| set.contains(b))
            .unwrap_or(data.len())
    }

    /// The search through one tier of kernels, falling back like [`find_first`] does.
    fn find_at(tier: Tier, data: &[u8], set: &ByteSet) -> usize {
        match set.kind {
            Kind::ControlsPlus(..) | Kind::General => {
                simd::find_in_set_up_to(tier, &set.nibbles, data)
                    .unwrap_or_else(|| find_first_portable(data, set))
            }
            _ => find_first(data, set),
        }
    }

    fn accm_set(accm: u32) -> ByteSet {
        ByteSet::EMPTY.with(0x7E).with(0x7D).with_accm(accm)
    }

    fn sets() -> Vec<(&'static str, ByteSet)> {
        let mut arbitrary = ByteSet::EMPTY;
        for b in [
            0x00u8, 0x11, 0x13, 0x7D, 0x7E, 0x80, 0x8F, 0x91, 0x93, 0xF0, 0xFF,
        ] {
            arbitrary = arbitrary.with(b);
        }
        vec![
            ("empty", ByteSet::EMPTY),
            ("flag", ByteSet::EMPTY.with(0x7E)),
            ("accm 0", accm_set(0)),
            ("accm xon/xoff", accm_set(0x000A_0000)),
            ("accm all", accm_set(u32::MAX)),
            ("controls only", ByteSet::EMPTY.with_accm(u32::MAX)),
            (
                "controls + one",
                ByteSet::EMPTY.with_accm(u32::MAX).with(0xFF),
            ),
            ("arbitrary", arbitrary),
            ("full", ByteSet::from_bits([u32::MAX; 8])),
            (
                "high half",
                ByteSet::from_bits([0, 0, 0, 0, u32::MAX, u32::MAX, u32::MAX, u32::MAX]),
            ),
        ]
    }

    #[test]
    fn classification() {
        assert_eq!(ByteSet::EMPTY.kind, Kind::Empty);
        assert_eq!(accm_set(0).kind, Kind::Two(0x7D, 0x7E));
        assert_eq!(accm_set(u32::MAX).kind, Kind::ControlsPlus(0x7D, 0x7E));
        assert_eq!(accm_set(1).kind, Kind::Three(0x00, 0x7D, 0x7E));
        assert_eq!(accm_set(0x000A_0000).kind, Kind::General);
        assert_eq!(accm_set(u32::MAX).len(), 34);
        assert!(ByteSet::default().is_empty());
        // Built at compile time, too.
        const SET: ByteSet = ByteSet::EMPTY.with(0x7E).with(0x7D).with_accm(u32::MAX);
        assert_eq!(SET, accm_set(u32::MAX));
        assert_eq!(ByteSet::from_bits(SET.bits()), SET);
    }

    /// The adjacent-pair word test is exact for every pair, byte value and neighbour.
    #[test]
    fn pair_test_is_exact() {
        for lo in 0..0x7Fu8 {
            for v in 0..=255u8 {
                for neighbour in [0x00u8, 0x01, 0x7F, 0x80, 0xFF, lo, lo + 1, v] {
                    let bytes = [neighbour, v, neighbour, v, v, neighbour, neighbour, v];
                    let expected = bytes.iter().enumerate().fold(0u64, |m, (i, &b)| {
                        m | (u64::from(b == lo || b == lo + 1) << (8 * i + 7))
                    });
                    assert_eq!(portable::pair(u64::from_le_bytes(bytes), lo), expected);
                }
            }
        }
    }

    #[test]
    fn debug_lists_members_in_hex() {
        assert_eq!(format!("{:?}", accm_set(0)), "{0x7d, 0x7e}");
    }

    /// Every kernel finds a member at every position of buffers of every length up to 300, at
    /// every alignment modulo 32, with and without non-members around it.
    #[test]
    fn every_position_every_length_every_tier() {
        for (name, set) in sets() {
            let member = (0..=255u8).find(|b| set.contains(*b));
            let non_member = (0..=255u8).rev().find(|b| !set.contains(*b));
            let Some(filler) = non_member else {
                // The full set: the first byte always matches.
                for tier in simd::available_tiers() {
                    assert_eq!(find_at(tier, &[1, 2, 3], &set), 0);
                }
                continue;
            };
            let mut buf = vec![filler; 300 + 32];
            for tier in simd::available_tiers() {
                for offset in 0..32 {
                    for len in 0..=300usize {
                        let data = &mut buf[offset..offset + len];
                        assert_eq!(find_at(tier, data, &set), len, "{name} {tier:?} none {len}");
                        assert_eq!(find_first(data, &set), len);
                        let Some(member) = member else { continue };
                        // A member at each position (every position for short buffers).
                        let step = if len < 80 { 1 } else { 7 };
                        for at in (0..len).step_by(step) {
                            data[at] = member;
                            assert_eq!(find_at(tier, data, &set), at, "{name} {tier:?} {len} {at}");
                            assert_eq!(find_first(data, &set), at);
                            assert_eq!(find_first_portable(data, &set), at);
                            data[at] = filler;
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_byte_value_in_every_set() {
        for (name, set) in sets() {
            for tier in simd::available_tiers() {
                for b in 0..=255u8 {
                    let mut data = [0xAAu8; 64];
                    data.iter_mut()
                        .for_each(|x| *x = if set.contains(0xAA) { b } else { 0xAA });
                    data[40] = b;
                    assert_eq!(
                        find_at(tier, &data, &set),
                        naive(&data, &set),
                        "{name} {b:#x}"
                    );
                    assert_eq!(find_first_portable(&data, &set), naive(&data, &set));
                }
            }
        }
    }

    fn any_set() -> impl Strategy<Value = ByteSet> {
        prop_oneof![
            any::<[u32; 8]>().prop_map(ByteSet::from_bits),
            any::<u32>().prop_map(accm_set),
            proptest::collection::vec(any::<u8>(), 0..6)
                .prop_map(|v| v.into_iter().fold(ByteSet::EMPTY, ByteSet::with)),
            (any::<u8>(), any::<u8>())
                .prop_map(|(a, b)| ByteSet::EMPTY.with_accm(u32::MAX).with(a).with(b)),
        ]
    }

    proptest! {
        #[test]
        fn find_first_matches_naive(set in any_set(),
                                    data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let expected = naive(&data, &set);
            prop_assert_eq!(find_first(&data, &set), expected);
            prop_assert_eq!(find_first_portable(&data, &set), expected);
            for tier in simd::available_tiers() {
                prop_assert_eq!(find_at(tier, &data, &set), expected);
            }
        }

        /// Sparse sets on data drawn mostly from outside the set, so matches lie far in.
        #[test]
        fn find_first_matches_naive_sparse(
            set in any_set(),
            data in proptest::collection::vec(prop_oneof![20 => Just(0x41u8), 1 => any::<u8>()], 0..600),
        ) {
            let expected = naive(&data, &set);
            prop_assert_eq!(find_first(&data, &set), expected);
            prop_assert_eq!(find_first_portable(&data, &set), expected);
            for tier in simd::available_tiers() {
                prop_assert_eq!(find_at(tier, &data, &set), expected);
            }
        }

        #[test]
        fn bits_round_trip(bits: [u32; 8]) {
            let set = ByteSet::from_bits(bits);
            prop_assert_eq!(set.bits(), bits);
            for b in 0..=255u8 {
                prop_assert_eq!(set.contains(b), bits[(b / 32) as usize] >> (b % 32) & 1 != 0);
            }
        }
    }
}
