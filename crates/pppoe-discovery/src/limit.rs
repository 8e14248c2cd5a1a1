//! Rate limits in bounded memory: a token bucket, and a fixed-size table of token buckets keyed
//! by Ethernet address.
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
