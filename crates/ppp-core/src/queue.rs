//! [`LazyQueue`]: a first-in first-out queue that holds no memory while it is empty.
//!
//! A server keeps tens of thousands of idle links, each with a handful of event and control
//! queues that are empty almost all the time. A `VecDeque` is 32 bytes even when empty and keeps
//! its buffer after being drained; a `LazyQueue` is one pointer, and gives its buffer back as
//! soon as the last item is taken. Use it for queues that are rarely busy (events, control
//! packets), not for a data path that moves every packet.

use std::collections::VecDeque;
use std::fmt;

/// A FIFO queue that is one pointer while empty and frees its memory when drained.
///
/// ```
/// use ppp_core::LazyQueue;
///
/// let mut queue = LazyQueue::new();
/// assert_eq!(std::mem::size_of_val(&queue), std::mem::size_of::<usize>());
/// queue.push_back("up");
/// queue.push_back("down");
/// assert_eq!(queue.len(), 2);
/// assert_eq!(queue.pop_front(), Some("up"));
/// assert_eq!(queue.pop_front(), Some("down"));
/// assert_eq!(queue.pop_front(), None);
/// assert!(queue.is_empty());
/// ```
pub struct LazyQueue<T> {
    // Boxed on purpose: one pointer while empty instead of a 32-byte `VecDeque` header (what
    // the type is for).
    #[allow(clippy::box_collection)]
    items: Option<Box<VecDeque<T>>>,
}

impl<T> LazyQueue<T> {
    /// An empty queue (no allocation).
    pub const fn new() -> Self {
        LazyQueue { items: None }
    }

    /// Appends `item`.
    pub fn push_back(&mut self, item: T) {
        self.items.get_or_insert_with(Box::default).push_back(item);
    }

    /// Appends `item`; when `limit` items are already queued, the oldest is dropped first.
    /// Returns whether one was dropped.
    pub fn push_bounded(&mut self, item: T, limit: usize) -> bool {
        let items = self.items.get_or_insert_with(Box::default);
        let dropped = items.len() >= limit;
        if dropped {
            items.pop_front();
        }
        items.push_back(item);
        dropped
    }

    /// Takes the oldest item; the memory goes when the queue becomes empty.
    pub fn pop_front(&mut self) -> Option<T> {
        let items = self.items.as_mut()?;
        let item = items.pop_front();
        if items.is_empty() {
            self.items = None;
        }
        item
    }

    /// The oldest item.
    pub fn front(&self) -> Option<&T> {
        self.items.as_ref()?.front()
    }

    /// Items queued.
    pub fn len(&self) -> usize {
        self.items.as_ref().map_or(0, |items| items.len())
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_none()
    }

    /// Drops every item and the memory.
    pub fn clear(&mut self) {
        self.items = None;
    }

    /// The items, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter().flat_map(|items| items.iter())
    }
}

impl<T> Default for LazyQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone> Clone for LazyQueue<T> {
    fn clone(&self) -> Self {
        LazyQueue {
            items: self.items.clone(),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for LazyQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drained_queues_hold_no_memory() {
        let mut queue = LazyQueue::new();
        for n in 0..10 {
            queue.push_back(n);
        }
        assert_eq!(
            queue.iter().copied().collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        while queue.pop_front().is_some() {}
        assert!(queue.items.is_none());
        assert!(!queue.push_bounded(1, 2));
        assert!(!queue.push_bounded(2, 2));
        assert!(queue.push_bounded(3, 2));
        assert_eq!(queue.front(), Some(&2));
        queue.clear();
        assert_eq!(queue.len(), 0);
    }
}
