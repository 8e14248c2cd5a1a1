//! A ready-made [`AddressPool`]: a range of consecutive IPv4 addresses shared between sessions.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::AddressPool;

#[derive(Debug)]
struct RangeState {
    first: u32,
    last: u32,
    /// Every address in `first..next` has been handed out at some time; those not in
    /// `returned` still are. `u64` so that a range ending at 255.255.255.255 can be exhausted.
    next: u64,
    /// Addresses below `next` that came back: free again, handed out lowest first.
    returned: BTreeSet<u32>,
}

impl RangeState {
    fn in_use(&self) -> usize {
        let handed_out = self.next - u64::from(self.first);
        usize::try_from(handed_out).unwrap_or(usize::MAX) - self.returned.len()
    }
}

/// The addresses `first..=last`, handed out lowest free first (RouterOS `ip pool`).
///
/// Clones share one set of addresses, so a server gives each session's [`crate::Ipcp`] a clone;
/// an address comes back when its session renegotiates or ends. Allocation and release cost
/// O(log n) whatever the number of sessions (an access concentrator hands out tens of
/// thousands); memory is bounded by the most addresses in use at once. Never panics, even if
/// another holder panicked while holding the lock.
///
/// ```
/// use std::net::Ipv4Addr;
/// use ppp_ipcp::{AddressPool, AddressRange};
///
/// let mut pool = AddressRange::new(Ipv4Addr::new(192, 0, 2, 10), Ipv4Addr::new(192, 0, 2, 11));
/// let first = pool.allocate().unwrap();
/// assert_eq!(first, Ipv4Addr::new(192, 0, 2, 10));
/// assert_eq!(pool.allocate(), Some(Ipv4Addr::new(192, 0, 2, 11)));
/// assert_eq!(pool.allocate(), None);
/// pool.release(first);
/// assert_eq!(pool.allocate(), Some(first));
/// ```
#[derive(Clone, Debug)]
pub struct AddressRange {
    state: Arc<Mutex<RangeState>>,
}

impl AddressRange {
    /// The pool `first..=last`; empty when `last < first`.
    #[must_use]
    pub fn new(first: Ipv4Addr, last: Ipv4Addr) -> Self {
        Self {
            state: Arc::new(Mutex::new(RangeState {
                first: u32::from(first),
                last: u32::from(last),
                next: u64::from(u32::from(first)),
                returned: BTreeSet::new(),
            })),
        }
    }

    /// How many addresses are handed out.
    #[must_use]
    pub fn in_use(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .in_use()
    }
}

impl AddressPool for AddressRange {
    fn allocate(&mut self) -> Option<Ipv4Addr> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // Every returned address is below `next`, so the lowest free one is the lowest
        // returned one, or else `next`.
        if let Some(address) = state.returned.pop_first() {
            return Some(Ipv4Addr::from(address));
        }
        let address = u32::try_from(state.next)
            .ok()
            .filter(|&next| next <= state.last)?;
        state.next += 1;
        Some(Ipv4Addr::from(address))
    }

    fn release(&mut self, address: Ipv4Addr) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let address = u32::from(address);
        // Only addresses handed out and not yet back (a double or foreign release is harmless).
        if address < state.first || u64::from(address) >= state.next {
            return;
        }
        state.returned.insert(address);
        // Give the top of the handed-out block back to `next`, so that `returned` holds only
        // the gaps below the highest address in use.
        while state.next > u64::from(state.first) {
            let top = (state.next - 1) as u32;
            if !state.returned.remove(&top) {
                break;
            }
            state.next -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_lowest_free_and_takes_back() {
        let mut pool =
            AddressRange::new(Ipv4Addr::new(192, 0, 2, 10), Ipv4Addr::new(192, 0, 2, 12));
        let mut other = pool.clone();
        assert_eq!(pool.allocate(), Some(Ipv4Addr::new(192, 0, 2, 10)));
        assert_eq!(other.allocate(), Some(Ipv4Addr::new(192, 0, 2, 11)));
        assert_eq!(pool.allocate(), Some(Ipv4Addr::new(192, 0, 2, 12)));
        assert_eq!(other.allocate(), None);
        assert_eq!(pool.in_use(), 3);
        other.release(Ipv4Addr::new(192, 0, 2, 11));
        assert_eq!(pool.allocate(), Some(Ipv4Addr::new(192, 0, 2, 11)));
        // Releasing an address that is not ours is harmless.
        pool.release(Ipv4Addr::new(198, 51, 100, 1));
        assert_eq!(pool.in_use(), 3);
    }

    #[test]
    fn edge_ranges() {
        let mut empty = AddressRange::new(Ipv4Addr::new(192, 0, 2, 2), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(empty.allocate(), None);
        let top = Ipv4Addr::new(255, 255, 255, 255);
        let mut single = AddressRange::new(top, top);
        assert_eq!(single.allocate(), Some(top));
        assert_eq!(single.allocate(), None);
    }

    #[test]
    fn a_released_top_address_shrinks_the_block() {
        let mut pool = AddressRange::new(Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 9));
        let taken: Vec<_> = (0..5).map(|_| pool.allocate().unwrap()).collect();
        for address in taken.iter().rev() {
            pool.release(*address);
        }
        let state = pool.state.lock().unwrap();
        assert_eq!(state.next, u64::from(state.first));
        assert!(state.returned.is_empty());
    }

    proptest::proptest! {
        /// The pool behaves as the obvious model: a set of used addresses, the lowest free
        /// one handed out, releases of anything (taken, free, foreign) accepted.
        #[test]
        fn matches_the_lowest_free_model(
            size in 1u32..40,
            operations in proptest::collection::vec((proptest::bool::ANY, 0u32..48), 0..200),
        ) {
            let first = u32::from(Ipv4Addr::new(192, 0, 2, 0)) + 3;
            let last = first + size - 1;
            let mut pool = AddressRange::new(Ipv4Addr::from(first), Ipv4Addr::from(last));
            let mut model = BTreeSet::new();
            for (allocate, offset) in operations {
                if allocate {
                    let expected = (first..=last).find(|a| !model.contains(a));
                    if let Some(a) = expected {
                        model.insert(a);
                    }
                    proptest::prop_assert_eq!(pool.allocate(), expected.map(Ipv4Addr::from));
                } else {
                    let address = first - 2 + offset;
                    model.remove(&address);
                    pool.release(Ipv4Addr::from(address));
                }
                proptest::prop_assert_eq!(pool.in_use(), model.len());
            }
        }
    }
}
