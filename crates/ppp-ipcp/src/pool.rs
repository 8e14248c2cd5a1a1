//! A ready-made [`AddressPool`]: a range of consecutive IPv4 addresses shared between sessions.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::AddressPool;

#[derive(Debug)]
struct RangeState {
    first: u32,
    last: u32,
    in_use: BTreeSet<u32>,
}

/// The addresses `first..=last`, handed out lowest free first (RouterOS `ip pool`).
///
/// Clones share one set of addresses, so a server gives each session's [`crate::Ipcp`] a clone;
/// an address comes back when its session renegotiates or ends. Memory is bounded by the number
/// of addresses in use. Never panics, even if another holder panicked while holding the lock.
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
                in_use: BTreeSet::new(),
            })),
        }
    }

    /// How many addresses are handed out.
    #[must_use]
    pub fn in_use(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .in_use
            .len()
    }
}

impl AddressPool for AddressRange {
    fn allocate(&mut self) -> Option<Ipv4Addr> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.last < state.first {
            return None;
        }
        // Lowest free address: the first gap in the sorted set of used ones.
        let mut candidate = state.first;
        for &used in state.in_use.range(state.first..=state.last) {
            if used != candidate {
                break;
            }
            if candidate == state.last {
                return None;
            }
            candidate += 1;
        }
        state.in_use.insert(candidate);
        Some(Ipv4Addr::from(candidate))
    }

    fn release(&mut self, address: Ipv4Addr) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.in_use.remove(&u32::from(address));
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
}
