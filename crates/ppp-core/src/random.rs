//! The one source of unpredictable values.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use rand_chacha::ChaCha12Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};

/// Where every value an attacker must not guess comes from: LCP Magic-Numbers, CHAP and MS-CHAP
/// challenges, the access concentrator's AC-Cookie key and session ids, the PPPoE Host-Uniq,
/// IPv6 interface identifiers.
///
/// A cheap, cloneable handle: clones share one generator, so a server with a hundred thousand
/// sessions holds one generator and a pointer per session. Cores take it at construction and
/// never make one up themselves; there is no default.
///
/// - Programs and adapters use [`Random::from_os`] (feature `os`): a ChaCha12 generator keyed
///   from the operating system's entropy (getrandom), as `rand`'s `StdRng` is.
/// - Tests and simulations use [`Random::seeded`], so every run can be replayed byte for byte.
/// - Anything else that is a [`CryptoRng`] fits through [`Random::from_rng`].
///
/// ```
/// use ppp_core::Random;
///
/// let a = Random::seeded(7);
/// let b = Random::seeded(7);
/// assert_eq!(a.u64(), b.u64()); // replayable
/// let mut challenge = [0u8; 16];
/// a.fill(&mut challenge);
/// ```
#[derive(Clone)]
pub struct Random {
    generator: Arc<Mutex<Box<dyn CryptoRng + Send>>>,
    seeded: bool,
}

/// The operating system could not provide entropy.
#[derive(Debug, thiserror::Error)]
#[error("no entropy from the operating system: {0}")]
pub struct EntropyError(String);

impl Random {
    /// A generator keyed from the operating system's entropy: what programs and adapters use.
    ///
    /// # Errors
    ///
    /// [`EntropyError`] when the operating system has no entropy to give (getrandom failed).
    #[cfg(feature = "os")]
    pub fn from_os() -> Result<Self, EntropyError> {
        let generator =
            ChaCha12Rng::try_from_os_rng().map_err(|error| EntropyError(error.to_string()))?;
        Ok(Random {
            generator: Arc::new(Mutex::new(Box::new(generator))),
            seeded: false,
        })
    }

    /// A generator from `seed`, for tests and simulations only: the same seed gives the same
    /// values, on every platform.
    pub fn seeded(seed: u64) -> Self {
        Random {
            generator: Arc::new(Mutex::new(Box::new(ChaCha12Rng::seed_from_u64(seed)))),
            seeded: true,
        }
    }

    /// Wraps any cryptographically secure generator.
    pub fn from_rng(rng: impl CryptoRng + Send + 'static) -> Self {
        Random {
            generator: Arc::new(Mutex::new(Box::new(rng))),
            seeded: false,
        }
    }

    /// A new, independent generator keyed from this one (for a worker thread that should not
    /// share a lock). Seeded handles give seeded children, so simulations stay replayable.
    pub fn fork(&self) -> Self {
        let mut seed = [0u8; 32];
        self.fill(&mut seed);
        Random {
            generator: Arc::new(Mutex::new(Box::new(ChaCha12Rng::from_seed(seed)))),
            seeded: self.seeded,
        }
    }

    /// A generator that yields `values` in turn (64 bits each; 32-bit draws take the low half),
    /// then counts up from the last one (from 1 if `values` is empty): for tests that need a
    /// particular magic number or identifier. Feature `test-util`.
    #[cfg(feature = "test-util")]
    pub fn scripted(values: &[u64]) -> Self {
        Random {
            generator: Arc::new(Mutex::new(Box::new(Scripted {
                values: values.iter().copied().collect(),
                last: 0,
            }))),
            seeded: true,
        }
    }

    /// Whether this handle came from [`Random::seeded`] (or was forked from one): programs can
    /// refuse to run with it.
    pub fn is_seeded(&self) -> bool {
        self.seeded
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&self, buf: &mut [u8]) {
        self.with(|rng| rng.fill_bytes(buf));
    }

    /// 32 random bits.
    pub fn u32(&self) -> u32 {
        self.with(|rng| rng.next_u32())
    }

    /// 64 random bits.
    pub fn u64(&self) -> u64 {
        self.with(|rng| rng.next_u64())
    }

    /// `N` random bytes.
    pub fn bytes<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        self.fill(&mut out);
        out
    }

    fn with<T>(&self, f: impl FnOnce(&mut dyn CryptoRng) -> T) -> T {
        // A panic while holding the lock cannot leave a generator half-updated in a way that
        // matters: its next output is still unpredictable.
        let mut guard = self
            .generator
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f(guard.as_mut())
    }
}

/// See [`Random::scripted`].
#[cfg(feature = "test-util")]
struct Scripted {
    values: std::collections::VecDeque<u64>,
    last: u64,
}

#[cfg(feature = "test-util")]
impl RngCore for Scripted {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.last = self
            .values
            .pop_front()
            .unwrap_or_else(|| self.last.wrapping_add(1));
        self.last
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        rand_core::impls::fill_bytes_via_next(self, dst);
    }
}

// A script is the opposite of secure; it exists only behind the `test-util` feature.
#[cfg(feature = "test-util")]
impl CryptoRng for Scripted {}

impl fmt::Debug for Random {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Random")
            .field("seeded", &self.seeded)
            .finish_non_exhaustive()
    }
}

impl RngCore for Random {
    fn next_u32(&mut self) -> u32 {
        self.u32()
    }

    fn next_u64(&mut self) -> u64 {
        self.u64()
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        self.fill(dst);
    }
}

impl CryptoRng for Random {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_generators_replay() {
        let a = Random::seeded(42);
        let b = Random::seeded(42);
        let xs: Vec<u64> = (0..16).map(|_| a.u64()).collect();
        let ys: Vec<u64> = (0..16).map(|_| b.u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(Random::seeded(43).u64(), Random::seeded(42).u64());
        assert!(a.is_seeded());
    }

    #[test]
    fn clones_share_one_generator() {
        let a = Random::seeded(1);
        let b = a.clone();
        let first = a.u64();
        let second = b.u64();
        let fresh = Random::seeded(1);
        assert_eq!(fresh.u64(), first);
        assert_eq!(fresh.u64(), second);
    }

    #[test]
    fn forks_are_independent_and_replayable() {
        let parent = Random::seeded(5);
        let child = parent.fork();
        assert!(child.is_seeded());
        let again = Random::seeded(5).fork();
        assert_eq!(child.u64(), again.u64());
        assert_ne!(child.u64(), parent.u64());
    }

    #[cfg(feature = "os")]
    #[test]
    fn os_generators_differ() {
        let a = Random::from_os().unwrap();
        let b = Random::from_os().unwrap();
        assert!(!a.is_seeded());
        assert_ne!(a.bytes::<16>(), b.bytes::<16>());
    }

    #[cfg(feature = "test-util")]
    #[test]
    fn scripted_values_then_counting() {
        let r = Random::scripted(&[7, 0x1_0000_0002]);
        assert_eq!(r.u64(), 7);
        assert_eq!(r.u32(), 2);
        assert_eq!(r.u64(), 0x1_0000_0003);
        assert_eq!(Random::scripted(&[]).u64(), 1);
    }

    #[test]
    fn custom_generator() {
        let mut r = Random::from_rng(ChaCha12Rng::seed_from_u64(3));
        let mut buf = [0u8; 5];
        r.fill_bytes(&mut buf);
        assert_ne!(buf, [0; 5]);
    }
}
