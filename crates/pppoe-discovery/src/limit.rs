//! Rate limits in bounded memory: a token bucket, a fixed-size table of token buckets keyed
//! by Ethernet address, and a fixed-size memory of recently refused addresses that tells a
//! client trying again from a flood ([`RefusalMemory`]).
//!
//! The per-address table is direct-mapped: an address hashes (SipHash-2-4 under a key drawn from
//! the injected [`Random`], so nobody outside can aim two addresses at one slot) to one slot,
//! and the slot remembers the last address that used it. A different address takes the slot
//! over with a full bucket. So a flood of random addresses costs nothing but the table it
//! already has (its size never changes), an address that floods alone is held to its rate, and
//! an honest client whose slot was taken over only gains: its bucket starts full again. What
//! holds a flood of many addresses is the overall limit beside it.

use zeroize::{Zeroize, ZeroizeOnDrop};

use ppp_core::Random;

use crate::wire::MacAddr;

/// A token-bucket rate: on average `per_second` events a second, and at most `burst` at once.
///
/// `burst` 0 lets nothing through. Where a limit is optional (`Option<RateLimit>`), `None`
/// means no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Events a second, on average.
    pub per_second: u32,
    /// Events at once (the bucket's size).
    pub burst: u32,
}

impl RateLimit {
    /// `per_second` events a second, up to `burst` at once.
    pub const fn new(per_second: u32, burst: u32) -> Self {
        RateLimit { per_second, burst }
    }
}

/// One token, in the millionths the buckets count in (a rate of `r` a second refills `r`
/// millionths a microsecond, so the refill is smooth: no instant is favoured).
const TOKEN: u64 = 1_000_000;

/// A token bucket on a microsecond clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TokenBucket {
    /// Millionths of a token.
    tokens: u64,
    /// When `tokens` was last brought up to date, in microseconds.
    stamp_us: u64,
}

impl TokenBucket {
    /// A full bucket at `now_us`.
    pub(crate) fn full(limit: RateLimit, now_us: u64) -> Self {
        TokenBucket {
            tokens: u64::from(limit.burst) * TOKEN,
            stamp_us: now_us,
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn allow(&mut self, limit: RateLimit, now_us: u64) -> bool {
        let elapsed = now_us.saturating_sub(self.stamp_us);
        let refill = elapsed.saturating_mul(u64::from(limit.per_second));
        self.tokens = self
            .tokens
            .saturating_add(refill)
            .min(u64::from(limit.burst) * TOKEN);
        self.stamp_us = self.stamp_us.max(now_us);
        if self.tokens >= TOKEN {
            self.tokens -= TOKEN;
            true
        } else {
            false
        }
    }
}

/// The key of the address hash; secret, so zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
struct HashKey {
    k0: u64,
    k1: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    bucket: TokenBucket,
    /// The address that last used the slot; all zeros (never a unicast address) when unused.
    mac: [u8; 6],
}

/// Token buckets for Ethernet addresses, in a table whose size is fixed at creation.
pub(crate) struct MacLimiter {
    key: HashKey,
    slots: Box<[Slot]>,
}

impl core::fmt::Debug for MacLimiter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The key is a secret: never printed.
        f.debug_struct("MacLimiter")
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// Most slots a table may have (24 MiB).
pub(crate) const MAX_SLOTS: usize = 1 << 20;

impl MacLimiter {
    /// Bytes one slot takes (24 on 64-bit targets, as the configuration documents).
    #[cfg(test)]
    pub(crate) const SLOT_BYTES: usize = core::mem::size_of::<Slot>();

    /// A table of `slots` buckets (rounded up to a power of two, at most [`MAX_SLOTS`]; 0 makes
    /// a table that holds nothing and allocates nothing), keyed from `random`.
    pub(crate) fn new(slots: usize, random: &Random) -> Self {
        let mut key = HashKey { k0: 0, k1: 0 };
        key.k0 = random.u64();
        key.k1 = random.u64();
        let slots = if slots == 0 {
            0
        } else {
            slots.min(MAX_SLOTS).next_power_of_two()
        };
        MacLimiter {
            key,
            slots: vec![Slot::default(); slots].into_boxed_slice(),
        }
    }

    /// Slots in the table.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Takes a token from `mac`'s bucket if there is one. With no slots, always true.
    pub(crate) fn allow(&mut self, mac: MacAddr, limit: RateLimit, now_us: u64) -> bool {
        let mask = self.slots.len().wrapping_sub(1);
        let index = siphash24(self.key.k0, self.key.k1, &mac.0) as usize & mask;
        let Some(slot) = self.slots.get_mut(index) else {
            return true;
        };
        if slot.mac != mac.0 {
            *slot = Slot {
                bucket: TokenBucket::full(limit, now_us),
                mac: mac.0,
            };
        }
        slot.bucket.allow(limit, now_us)
    }
}

/// Length of one generation of [`RefusalMemory`], in microseconds.
pub(crate) const GENERATION_US: u64 = 500_000;

/// Generations one line of [`RefusalMemory`] holds (the current one and six before it: 3.5 s).
const GENERATIONS: u64 = 7;

/// Bits [`RefusalMemory`] sets in a generation's word for one address.
const BITS_PER_ADDRESS: u64 = 7;

/// One 64-byte line of [`RefusalMemory`]: a 64-bit Bloom word per generation, and the
/// generation last written to the line.
#[derive(Clone, Copy, Default)]
#[repr(align(64))]
struct RefusalLine {
    /// Word `g % GENERATIONS` holds the addresses refused in generation `g`.
    words: [u64; GENERATIONS as usize],
    /// The last generation written, plus one (0: never written).
    latest: u64,
}

/// Which addresses had a PADI refused recently, by half-second generation, in a blocked Bloom
/// filter of fixed size: what tells a client trying again from a flood of new addresses.
///
/// A client whose PADI was refused sends it again after its timeout (a second or more later),
/// from the same address, and not in between. A flood of random addresses rarely repeats an
/// address; a flood cycling through a set of addresses repeats each one more often than a client
/// would. [`try_again`](Self::try_again) says whether an address was refused between one and
/// three and a half seconds ago and not since, then remembers this refusal.
///
/// Each address maps (SipHash under a secret key, as [`MacLimiter`]) to one 64-byte line, so a
/// lookup costs one cache miss; within the line it sets seven bits of its generation's word.
/// The table is allocated at the first refusal (nothing while nobody floods) and never grows.
/// False positives grow steeply with the flood (the words fill): with the AC's default 32 MiB
/// (524,288 lines), of 700,000 refused PADIs a second about 35 pass for retries, of 1.1 million
/// about 220, of 1.5 million about 800 (computed for random addresses; with 16 MiB the same
/// floods give 300, 2,200 and 8,700), which the retry lane's own rate limit (2,000 a second by
/// default) then holds; beyond about two million a second they use up the lane and clients
/// trying again are back to competing with the flood.
pub(crate) struct RefusalMemory {
    key: HashKey,
    /// Lines once allocated.
    lines: Box<[RefusalLine]>,
    /// Lines to allocate at the first refusal (a power of two; 0: the memory is off).
    capacity: usize,
}

impl core::fmt::Debug for RefusalMemory {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The key is a secret: never printed.
        f.debug_struct("RefusalMemory")
            .field("lines", &self.lines.len())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// Most lines a refusal memory may have (64 MiB).
pub(crate) const MAX_REFUSAL_LINES: usize = 1 << 20;

impl RefusalMemory {
    /// A memory of about `bytes` (rounded up to a power of two of 64-byte lines, at most
    /// [`MAX_REFUSAL_LINES`]; 0 turns it off), keyed from `random`. Nothing is allocated yet.
    pub(crate) fn new(bytes: usize, random: &Random) -> Self {
        let mut key = HashKey { k0: 0, k1: 0 };
        key.k0 = random.u64();
        key.k1 = random.u64();
        let lines = bytes.div_ceil(core::mem::size_of::<RefusalLine>());
        let capacity = if lines == 0 {
            0
        } else {
            lines.min(MAX_REFUSAL_LINES).next_power_of_two()
        };
        RefusalMemory {
            key,
            lines: Box::new([]),
            capacity,
        }
    }

    /// Bytes allocated.
    #[cfg(test)]
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.lines.len() * core::mem::size_of::<RefusalLine>()
    }

    /// Whether `mac` had a PADI refused two to six generations ago (between one and three and
    /// a half seconds) and none in the last two; then remembers this refusal. Always false when
    /// the memory is off.
    pub(crate) fn try_again(&mut self, mac: MacAddr, now_us: u64) -> bool {
        if self.capacity == 0 {
            return false;
        }
        if self.lines.is_empty() {
            self.lines = vec![RefusalLine::default(); self.capacity].into_boxed_slice();
        }
        let hash = siphash24(self.key.k0, self.key.k1, &mac.0);
        let index = hash as usize & (self.lines.len() - 1);
        // Seven bit positions from the hash bits above any index (at most 20 bits): a line's
        // word holds only a few addresses per generation, so many bits per address keep
        // false positives rare.
        let mask =
            (0..BITS_PER_ADDRESS).fold(0u64, |mask, i| mask | 1 << ((hash >> (22 + 6 * i)) & 63));
        let Some(line) = self.lines.get_mut(index) else {
            return false;
        };
        let generation = (now_us / GENERATION_US).max(line.latest.saturating_sub(1));
        if line.latest == 0 {
            // Never written: every word is empty.
        } else {
            let last = line.latest - 1;
            let stale = (generation - last).min(GENERATIONS);
            for back in 0..stale {
                line.words[((generation - back) % GENERATIONS) as usize] = 0;
            }
        }
        let seen = |line: &RefusalLine, back: u64| {
            back <= generation
                && line.words[((generation - back) % GENERATIONS) as usize] & mask == mask
        };
        let retry =
            (2..GENERATIONS).any(|back| seen(line, back)) && !seen(line, 1) && !seen(line, 0);
        line.words[(generation % GENERATIONS) as usize] |= mask;
        line.latest = generation + 1;
        retry
    }
}

/// SipHash-2-4 (Aumasson and Bernstein, 2012) of `data` under the key (`k0`, `k1`).
fn siphash24(k0: u64, k1: u64, data: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let m = u64::from_le_bytes(word);
        v[3] ^= m;
        sip_round(&mut v);
        sip_round(&mut v);
        v[0] ^= m;
    }
    let mut last = (data.len() as u64 & 0xff) << 56;
    for (i, byte) in chunks.remainder().iter().enumerate() {
        last |= u64::from(*byte) << (8 * i);
    }
    v[3] ^= last;
    sip_round(&mut v);
    sip_round(&mut v);
    v[0] ^= last;
    v[2] ^= 0xff;
    for _ in 0..4 {
        sip_round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siphash_reference_vectors() {
        // The paper's key 00 01 .. 0f; messages 00 01 .. (n-1).
        let k0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let k1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        let message: Vec<u8> = (0..15).collect();
        assert_eq!(siphash24(k0, k1, &message), 0xa129_ca61_49be_45e5);
        assert_eq!(siphash24(k0, k1, &[]), 0x726f_db47_dd0e_0e31);
    }

    #[test]
    fn bucket_refills_at_its_rate_up_to_its_burst() {
        let limit = RateLimit::new(10, 3);
        let mut bucket = TokenBucket::full(limit, 0);
        assert_eq!((0..5).filter(|_| bucket.allow(limit, 0)).count(), 3);
        // 10 a second: one token every 100 ms (100,000 µs).
        assert!(!bucket.allow(limit, 99_999));
        assert!(bucket.allow(limit, 100_000));
        assert!(!bucket.allow(limit, 150_000));
        // A long pause refills to the burst, not beyond.
        assert_eq!(
            (0..10).filter(|_| bucket.allow(limit, 100_000_000)).count(),
            3
        );
        // Time going backwards neither refills nor panics.
        assert!(!bucket.allow(limit, 5));
        let nothing = RateLimit::new(1000, 0);
        assert!(!TokenBucket::full(nothing, 0).allow(nothing, 1_000_000_000));
        // Extremes saturate instead of overflowing.
        let most = RateLimit::new(u32::MAX, u32::MAX);
        let mut bucket = TokenBucket::full(most, 0);
        assert!(bucket.allow(most, u64::MAX));
    }

    fn memory() -> RefusalMemory {
        RefusalMemory::new(32 << 20, &Random::seeded(3))
    }

    const SECOND: u64 = 1_000_000;

    #[test]
    fn a_client_trying_again_is_recognised_once_per_try() {
        let client = MacAddr([2, 0, 0, 0, 0, 1]);
        for start in [0, 123_456, 10 * SECOND + 499_999, 77 * SECOND + 250_000] {
            let mut memory = memory();
            assert!(!memory.try_again(client, start), "a first PADI is no retry");
            // A retransmission a second later (a client's timeout), then two, then four seconds.
            assert!(memory.try_again(client, start + SECOND));
            assert!(memory.try_again(client, start + 3 * SECOND));
            // Beyond three and a half seconds the first refusal is forgotten.
            assert!(!memory.try_again(client, start + 7 * SECOND + 600_000));
            // Too soon after a refusal: not a client's timeout.
            let mut memory = self::memory();
            assert!(!memory.try_again(client, start));
            assert!(!memory.try_again(client, start + 400_000));
            // ... and so is a third try as soon again.
            assert!(!memory.try_again(client, start + 800_000));
        }
    }

    #[test]
    fn an_address_repeating_faster_than_a_client_never_passes() {
        let mut memory = memory();
        let flooder = MacAddr([2, 0, 0, 0, 0, 2]);
        let passed = (0..100u64)
            .filter(|i| memory.try_again(flooder, i * 300_000))
            .count();
        assert_eq!(passed, 0);
        // Time going backwards neither panics nor forgets.
        assert!(!memory.try_again(flooder, 0));
    }

    #[test]
    fn a_flood_of_random_addresses_rarely_passes_and_memory_stays_fixed() {
        let mut memory = memory();
        assert_eq!(
            memory.allocated_bytes(),
            0,
            "nothing until the first refusal"
        );
        let random = Random::seeded(9);
        let client = MacAddr([2, 0, 0, 0, 0, 1]);
        let mut passed = 0;
        // 600,000 refused PADIs a second for two and a half seconds, a client among them.
        let per_second = 600_000u64;
        let total = per_second * 5 / 2;
        for i in 0..total {
            let now = i * SECOND / per_second;
            if i == per_second / 2 {
                assert!(!memory.try_again(client, now));
            }
            if i == per_second * 3 / 2 {
                assert!(
                    memory.try_again(client, now),
                    "the client's retry is recognised"
                );
            }
            let mut mac = random.bytes::<6>();
            mac[0] = (mac[0] & 0xfe) | 0x02;
            passed += u64::from(memory.try_again(MacAddr(mac), now));
        }
        assert_eq!(memory.allocated_bytes(), 32 << 20);
        // Computed about 20 a second at this rate once the generations are full (fewer before):
        // far below the 2,000-a-second retry lane.
        println!("{passed} of {total} passed for retries");
        assert!(
            passed * 10_000 < total,
            "{passed} of the flood passed for retries"
        );
    }

    #[test]
    fn memory_off_allocates_nothing_and_recognises_nothing() {
        let mut memory = RefusalMemory::new(0, &Random::seeded(1));
        let client = MacAddr([2, 0, 0, 0, 0, 1]);
        assert!(!memory.try_again(client, 0));
        assert!(!memory.try_again(client, SECOND));
        assert_eq!(memory.allocated_bytes(), 0);
        assert_eq!(RefusalMemory::new(1, &Random::seeded(1)).capacity, 1);
        assert_eq!(
            RefusalMemory::new(usize::MAX, &Random::seeded(1)).capacity,
            MAX_REFUSAL_LINES
        );
    }

    #[test]
    fn table_limits_each_address_and_stays_its_size() {
        let limit = RateLimit::new(1, 2);
        let mut table = MacLimiter::new(100, &Random::seeded(1));
        assert_eq!(table.len(), 128);
        const { assert!(MacLimiter::SLOT_BYTES <= 24) };
        let flooder = MacAddr([2, 0, 0, 0, 0, 1]);
        assert_eq!(
            (0..100).filter(|_| table.allow(flooder, limit, 0)).count(),
            2
        );
        // Other addresses are not held back by the flooder (unless they share its slot, which
        // only resets it).
        let others = (0..50u8)
            .filter(|&i| table.allow(MacAddr([2, 1, 0, 0, 0, i]), limit, 0))
            .count();
        assert_eq!(others, 50);
        assert_eq!(table.len(), 128);
        let off = MacLimiter::new(0, &Random::seeded(1));
        assert_eq!(off.len(), 0);
        let mut off = off;
        assert!(off.allow(flooder, limit, 0));
        assert_eq!(
            MacLimiter::new(usize::MAX, &Random::seeded(1)).len(),
            MAX_SLOTS
        );
    }

    #[test]
    fn the_key_is_zeroized() {
        fn zeroized_on_drop<T: ZeroizeOnDrop>() {}
        zeroized_on_drop::<HashKey>();
        let mut key = HashKey { k0: 1, k1: 2 };
        key.zeroize();
        assert_eq!((key.k0, key.k1), (0, 0));
    }
}
