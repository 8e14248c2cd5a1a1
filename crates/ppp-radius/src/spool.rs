//! The accounting spool: records no server acknowledged, kept (bounded) and retried, so that a
//! RADIUS outage loses no Stop record.
//!
//! The core keeps them in memory. The adapter (ppp-tokio's `radius` module) also writes every
//! record to disk before sending it and marks it done when a server acknowledges it, and gives
//! the unacknowledged ones back with [`RadiusClient::resubmit`](crate::RadiusClient::resubmit)
//! after a restart.

use std::collections::{HashSet, VecDeque};
use std::time::Instant;

use crate::accounting::{AccountingRecord, AcctStatusType};
use crate::client::RecordId;

/// Records waiting for a server, oldest first, bounded.
#[derive(Debug)]
pub struct Spool {
    queue: VecDeque<(RecordId, AccountingRecord, Instant)>,
    ids: HashSet<RecordId>,
    /// Taken for a retry, not yet acknowledged.
    in_flight: HashSet<RecordId>,
    capacity: usize,
}

impl Spool {
    /// An empty spool that holds at most `capacity` records.
    pub fn new(capacity: usize) -> Self {
        Spool {
            queue: VecDeque::new(),
            ids: HashSet::new(),
            in_flight: HashSet::new(),
            capacity,
        }
    }

    /// Records waiting (not counting those being retried).
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no record waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether `id` waits or is being retried.
    pub fn contains(&self, id: RecordId) -> bool {
        self.ids.contains(&id) || self.in_flight.contains(&id)
    }

    /// Adds a record at the end, spooled at `at` (its Acct-Delay-Time keeps counting from
    /// there). When the spool is full, the oldest Interim-Update goes (an
    /// interim update is superseded by the next one and by the Stop), else the oldest record;
    /// its id is returned.
    pub fn push(
        &mut self,
        id: RecordId,
        record: AccountingRecord,
        at: Instant,
    ) -> Option<RecordId> {
        self.in_flight.remove(&id);
        if self.capacity == 0 {
            return Some(id);
        }
        let mut dropped = None;
        if self.queue.len() >= self.capacity {
            let victim = self
                .queue
                .iter()
                .position(|(_, r, _)| r.status == AcctStatusType::INTERIM_UPDATE)
                .unwrap_or(0);
            if let Some((gone, ..)) = self.queue.remove(victim) {
                self.ids.remove(&gone);
                dropped = Some(gone);
            }
        }
        self.ids.insert(id);
        self.queue.push_back((id, record, at));
        dropped
    }

    /// Takes the oldest record to send it again; it counts as in the spool until
    /// [`remove_in_flight`](Self::remove_in_flight) or [`push`](Self::push).
    pub fn take_for_retry(&mut self) -> Option<(RecordId, AccountingRecord, Instant)> {
        let (id, record, at) = self.queue.pop_front()?;
        self.ids.remove(&id);
        self.in_flight.insert(id);
        Some((id, record, at))
    }

    /// A retried record was acknowledged (or failed again and is being pushed back): true if
    /// it was being retried.
    pub fn remove_in_flight(&mut self, id: RecordId) -> bool {
        self.in_flight.remove(&id)
    }

    /// The waiting records' ids and status, oldest first.
    pub fn summary(&self) -> Vec<(RecordId, AcctStatusType)> {
        self.queue
            .iter()
            .map(|(id, r, _)| (*id, r.status))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_spool_drops_interim_updates_first() {
        let t = Instant::now();
        let mut s = Spool::new(3);
        assert_eq!(
            s.push(RecordId(1), AccountingRecord::start("a", "u"), t),
            None
        );
        assert_eq!(
            s.push(RecordId(2), AccountingRecord::interim("a", "u"), t),
            None
        );
        assert_eq!(
            s.push(RecordId(3), AccountingRecord::stop("a", "u"), t),
            None
        );
        assert_eq!(
            s.push(RecordId(4), AccountingRecord::stop("b", "u"), t),
            Some(RecordId(2))
        );
        assert_eq!(
            s.push(RecordId(5), AccountingRecord::stop("c", "u"), t),
            Some(RecordId(1))
        );
        assert_eq!(
            s.summary().iter().map(|(id, _)| id.0).collect::<Vec<_>>(),
            [3, 4, 5]
        );
        let (id, ..) = s.take_for_retry().unwrap();
        assert!(s.contains(id) && s.len() == 2);
        assert!(s.remove_in_flight(id));
        assert!(!s.contains(id));
        assert_eq!(
            Spool::new(0).push(RecordId(9), AccountingRecord::stop("x", "u"), t),
            Some(RecordId(9))
        );
    }
}
