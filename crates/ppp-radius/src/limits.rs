//! Enforcing what a session was granted, sans-IO: its rate limit as a token-bucket [`Shaper`]
//! per direction (with RouterOS bursts), and its [`SessionClock`] (Session-Timeout,
//! Idle-Timeout, the interim-update schedule).
//!
//! Both take `Instant`s and never read a clock: the owner feeds packets and the time, drains
//! what is due and sleeps until [`poll_timeout`](Shaper::poll_timeout), as with every core of
//! the stack. They serve local profiles (RouterOS `/ppp profile rate-limit`, `idle-timeout`,
//! `session-timeout`) and RADIUS ([`Authorization`](crate::Authorization),
//! [`Change`](crate::Change)) alike.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crate::authorization::{RateLimit, RxTx};

/// One direction of a [`RateLimit`]: the rate, and the burst allowed while the average stays
/// low. All rates in bits per second; 0 means unlimited (`rate`) or no burst.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DirectionLimit {
    /// The limit (RouterOS `max-limit`); 0: unlimited.
    pub rate: u64,
    /// The limit while bursting (`burst-limit`); no burst unless above `rate`.
    pub burst_rate: u64,
    /// Bursting is allowed while the average rate over `burst_time` is below this
    /// (`burst-threshold`).
    pub burst_threshold: u64,
    /// The window the average is taken over (`burst-time`), in 16 steps as RouterOS does.
    pub burst_time: Duration,
}

impl DirectionLimit {
    /// A plain limit of `rate` bits per second.
    pub fn new(rate: u64) -> Self {
        DirectionLimit {
            rate,
            ..DirectionLimit::default()
        }
    }

    /// No limit at all.
    pub fn is_unlimited(&self) -> bool {
        self.rate == 0
    }

    /// Whether bursts are configured: a burst rate above the rate, a threshold and a time.
    pub fn bursts(&self) -> bool {
        self.rate > 0
            && self.burst_rate > self.rate
            && self.burst_threshold > 0
            && !self.burst_time.is_zero()
    }
}

impl RateLimit {
    /// Both directions as shaper limits: `rx` is what the NAS receives from the user (the
    /// user's upload), `tx` what it sends to the user (the download).
    ///
    /// ```
    /// use std::time::Duration;
    /// use ppp_radius::RateLimit;
    ///
    /// let limit: RateLimit = "2M/1M 4M/2M 1500k/750k 8/8".parse()?;
    /// let both = limit.directions();
    /// assert_eq!(both.rx.rate, 2_000_000);
    /// assert_eq!(both.tx.burst_rate, 2_000_000);
    /// assert_eq!(both.tx.burst_time, Duration::from_secs(8));
    /// assert!(both.rx.bursts());
    /// # Ok::<(), ppp_radius::RadiusError>(())
    /// ```
    pub fn directions(&self) -> RxTx<DirectionLimit> {
        let pick = |rx: bool| {
            let side = |pair: RxTx<u64>| if rx { pair.rx } else { pair.tx };
            DirectionLimit {
                rate: side(self.rate),
                burst_rate: self.burst_rate.map_or(0, side),
                burst_threshold: self.burst_threshold.map_or(0, side),
                burst_time: self
                    .burst_time
                    .map_or(Duration::ZERO, |t| if rx { t.rx } else { t.tx }),
            }
        };
        RxTx {
            rx: pick(true),
            tx: pick(false),
        }
    }
}

/// Nano-bits per bit: the bucket counts in 10⁻⁹ bit so that `elapsed_ns × rate` adds exactly.
const NANO: u128 = 1_000_000_000;
/// The averaging window's steps (RouterOS computes the average every `burst-time / 16`).
const STEPS: usize = 16;
/// The bucket holds at least this much (bytes), so that full-size packets pass at any rate.
const MIN_DEPTH_BYTES: u64 = 3 * 1514;
/// The queue holds at least this much (bytes).
const MIN_QUEUE_BYTES: u64 = 32 * 1024;

/// What [`Shaper::offer`] did with a packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission<T> {
    /// It may go now.
    Now(T),
    /// It waits in the queue; [`Shaper::poll_release`] gives it back when its time comes.
    Queued,
    /// The queue is full: it is dropped (given back to the owner).
    Dropped(T),
}

/// Counters of a [`Shaper`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShaperStats {
    /// Packets that went through (at once or after waiting).
    pub passed: u64,
    /// Bytes that went through.
    pub passed_bytes: u64,
    /// Packets that had to wait.
    pub delayed: u64,
    /// Packets dropped because the queue was full.
    pub dropped: u64,
}

/// A token-bucket shaper for one direction of a session, with RouterOS burst semantics.
///
/// - Packets pass while the bucket has tokens for them; the bucket fills at the current limit
///   and holds 50 ms of it (at least three full-size frames). Packets that find it empty wait
///   in a FIFO queue (100 ms of the limit, at least 32 KiB) and leave when their tokens have
///   accrued; when the queue is full they are dropped. Queuing rather than dropping at once
///   is what lets TCP run at the limit.
/// - Bursts (RouterOS `burst-limit`, `burst-threshold`, `burst-time`): the average rate over
///   the last `burst-time` is recomputed every `burst-time / 16`; while it is below the
///   threshold the limit is the burst rate, otherwise the rate. A session that was quiet may
///   so run at the burst rate for a while, then falls back to its rate.
///
/// ```
/// use std::time::{Duration, Instant};
/// use ppp_radius::limits::{Admission, DirectionLimit, Shaper};
///
/// let start = Instant::now();
/// // 1 Mbit/s: 125 kB/s.
/// let mut shaper = Shaper::new(start, DirectionLimit::new(1_000_000));
/// let mut now = start;
/// let mut sent = 0u64;
/// let mut id = 0u32;
/// // Offer 1000-byte packets as fast as they are taken, for 10 virtual seconds.
/// while now < start + Duration::from_secs(10) {
///     while let Admission::Now(_) | Admission::Queued = shaper.offer(now, 1000, id) {
///         id += 1;
///     }
///     while let Some(_packet) = shaper.poll_release(now) {
///         sent += 1000;
///     }
///     now = shaper.poll_timeout().unwrap_or(now + Duration::from_millis(1));
/// }
/// let rate = (shaper.stats().passed_bytes * 8) as f64 / 10.0;
/// assert!((rate - 1e6).abs() < 0.02e6, "{rate}");
/// ```
pub struct Shaper<T> {
    limit: DirectionLimit,
    /// Tokens, in nano-bits.
    tokens: u128,
    /// When `tokens` was last brought up to date.
    updated: Instant,
    /// Bits passed per step of the averaging window (the last STEPS completed steps).
    steps: [u64; STEPS],
    /// Bits passed in the step under way.
    current: u64,
    /// Where the step under way started.
    step_start: Instant,
    bursting: bool,
    queue: VecDeque<(T, u64)>,
    queued_bytes: u64,
    stats: ShaperStats,
}

impl<T> fmt::Debug for Shaper<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shaper")
            .field("limit", &self.limit)
            .field("bursting", &self.bursting)
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl<T> Shaper<T> {
    /// A shaper for `limit`, its bucket full, starting at `now`. A new session may burst (its
    /// average is zero).
    pub fn new(now: Instant, limit: DirectionLimit) -> Self {
        let mut shaper = Shaper {
            limit,
            tokens: 0,
            updated: now,
            steps: [0; STEPS],
            current: 0,
            step_start: now,
            bursting: limit.bursts(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            stats: ShaperStats::default(),
        };
        shaper.tokens = shaper.depth();
        shaper
    }

    /// The limit in force.
    pub fn limit(&self) -> DirectionLimit {
        self.limit
    }

    /// Whether the burst rate applies now.
    pub fn is_bursting(&self) -> bool {
        self.bursting
    }

    /// The rate that applies now (bits per second; 0: unlimited).
    pub fn current_rate(&self) -> u64 {
        if self.bursting {
            self.limit.burst_rate
        } else {
            self.limit.rate
        }
    }

    /// Counters.
    pub fn stats(&self) -> ShaperStats {
        self.stats
    }

    /// Packets waiting.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Changes the limit (a RADIUS CoA): what accrued so far counts at the old limit. Waiting
    /// packets stay in order; with no limit any more they all become due.
    pub fn set_limit(&mut self, now: Instant, limit: DirectionLimit) {
        self.advance(now);
        self.limit = limit;
        if !limit.bursts() {
            self.bursting = false;
        }
        self.tokens = self.tokens.min(self.depth());
    }

    /// Offers a packet of `bytes` bytes at `now`.
    pub fn offer(&mut self, now: Instant, bytes: usize, packet: T) -> Admission<T> {
        let bytes = bytes as u64;
        if self.limit.is_unlimited() && self.queue.is_empty() {
            self.pass(bytes);
            return Admission::Now(packet);
        }
        self.advance(now);
        let cost = u128::from(bytes) * 8 * NANO;
        if self.queue.is_empty() && self.tokens >= cost {
            self.tokens -= cost;
            self.pass(bytes);
            return Admission::Now(packet);
        }
        if self.queued_bytes + bytes > self.queue_limit() {
            self.stats.dropped += 1;
            return Admission::Dropped(packet);
        }
        self.stats.delayed += 1;
        self.queued_bytes += bytes;
        self.queue.push_back((packet, bytes));
        Admission::Queued
    }

    /// Lets a packet of `bytes` bytes through at `now` without taking it, if
    /// [`offer`](Self::offer) would admit it at once (counted the same way); `false`, and nothing
    /// counted, if it would have to wait or be dropped: the caller then offers it, owned. Spares
    /// a caller that holds a borrowed packet the copy `offer` needs only to queue it.
    pub fn pass_now(&mut self, now: Instant, bytes: usize) -> bool {
        let bytes = bytes as u64;
        if !self.queue.is_empty() {
            return false;
        }
        if self.limit.is_unlimited() {
            self.pass(bytes);
            return true;
        }
        self.advance(now);
        let cost = u128::from(bytes) * 8 * NANO;
        if self.tokens >= cost {
            self.tokens -= cost;
            self.pass(bytes);
            return true;
        }
        false
    }

    /// The next waiting packet whose time has come, in order.
    pub fn poll_release(&mut self, now: Instant) -> Option<T> {
        let &(_, bytes) = self.queue.front()?;
        if !self.limit.is_unlimited() {
            self.advance(now);
            let cost = u128::from(bytes) * 8 * NANO;
            if self.tokens < cost {
                return None;
            }
            self.tokens -= cost;
        }
        let (packet, bytes) = self.queue.pop_front()?;
        self.queued_bytes -= bytes;
        self.pass(bytes);
        Some(packet)
    }

    /// When the first waiting packet is due (`None`: nothing waits). It may be a little early
    /// when the burst state changes meanwhile; [`poll_release`](Self::poll_release) then gives
    /// nothing and this gives a later time.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let &(_, bytes) = self.queue.front()?;
        let rate = u128::from(self.current_rate());
        if rate == 0 {
            return Some(self.updated);
        }
        let cost = u128::from(bytes) * 8 * NANO;
        let missing = cost.saturating_sub(self.tokens);
        let nanos = missing.div_ceil(rate);
        let wait = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        // Never earlier than the next step boundary when bursting may change on it.
        Some(self.updated + wait)
    }

    fn depth(&self) -> u128 {
        let rate = self.current_rate().max(self.limit.rate);
        let bits = (rate / 20).max(MIN_DEPTH_BYTES * 8);
        u128::from(bits) * NANO
    }

    fn queue_limit(&self) -> u64 {
        (self.current_rate() / 8 / 10).max(MIN_QUEUE_BYTES)
    }

    fn pass(&mut self, bytes: u64) {
        self.stats.passed += 1;
        self.stats.passed_bytes += bytes;
        self.current += bytes * 8;
    }

    /// Brings the bucket and the averaging window up to `now`.
    fn advance(&mut self, now: Instant) {
        if now <= self.updated {
            return;
        }
        if self.limit.bursts() {
            let step = self.limit.burst_time / STEPS as u32;
            let step = step.max(Duration::from_millis(1));
            // A long quiet time empties the window at once.
            if now.duration_since(self.step_start) > self.limit.burst_time + step {
                let boundary = now - step;
                self.refill(boundary);
                self.steps = [0; STEPS];
                self.steps[STEPS - 1] = self.current;
                self.current = 0;
                self.step_start = boundary;
                self.update_bursting();
            }
            while now >= self.step_start + step {
                let boundary = self.step_start + step;
                self.refill(boundary);
                self.steps.rotate_left(1);
                self.steps[STEPS - 1] = self.current;
                self.current = 0;
                self.step_start = boundary;
                self.update_bursting();
            }
        }
        self.refill(now);
    }

    fn refill(&mut self, until: Instant) {
        if until <= self.updated {
            return;
        }
        let elapsed = until.duration_since(self.updated).as_nanos();
        let added = elapsed.saturating_mul(u128::from(self.current_rate()));
        self.tokens = self.tokens.saturating_add(added).min(self.depth());
        self.updated = until;
    }

    fn update_bursting(&mut self) {
        let bits: u64 = self.steps.iter().sum();
        let average = u128::from(bits) * NANO / self.limit.burst_time.as_nanos().max(1);
        self.bursting = average < u128::from(self.limit.burst_threshold);
    }
}

/// Why a [`SessionClock`] says the session should end or report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClockEvent {
    /// The session reached its Session-Timeout: close it with `CloseReason::SessionTimeout`.
    SessionTimeout,
    /// Nothing moved for the Idle-Timeout: close it with `CloseReason::IdleTimeout`.
    IdleTimeout,
    /// Time for an accounting Interim-Update.
    InterimUpdate,
}

/// A session's timers: Session-Timeout from its start, Idle-Timeout from its last traffic, and
/// the interim-update schedule.
///
/// ```
/// use std::time::{Duration, Instant};
/// use ppp_radius::limits::{ClockEvent, SessionClock};
///
/// let start = Instant::now();
/// let mut clock = SessionClock::new(start);
/// clock.set_idle_timeout(start, Some(Duration::from_secs(30)));
/// clock.set_interim_interval(start, Some(Duration::from_secs(60)));
/// assert_eq!(clock.poll_timeout(), Some(start + Duration::from_secs(30)));
/// // Traffic at 20 s moves the idle deadline to 50 s; a wake-up at 30 s finds nothing to do.
/// clock.activity(start + Duration::from_secs(20));
/// clock.handle_timeout(start + Duration::from_secs(30));
/// assert_eq!(clock.poll_event(), None);
/// let at = clock.poll_timeout().unwrap();
/// assert_eq!(at, start + Duration::from_secs(50));
/// clock.handle_timeout(at);
/// assert_eq!(clock.poll_event(), Some(ClockEvent::IdleTimeout));
/// ```
#[derive(Clone, Debug)]
pub struct SessionClock {
    started: Instant,
    last_activity: Instant,
    session_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    interim: Option<Duration>,
    next_interim: Option<Instant>,
    /// The session was told to end (once).
    ended: bool,
    events: VecDeque<ClockEvent>,
}

impl SessionClock {
    /// A session that starts at `now`, without any timer.
    pub fn new(now: Instant) -> Self {
        SessionClock {
            started: now,
            last_activity: now,
            session_timeout: None,
            idle_timeout: None,
            interim: None,
            next_interim: None,
            ended: false,
            events: VecDeque::new(),
        }
    }

    /// When the session started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// How long the session has lasted at `now`.
    pub fn elapsed(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }

    /// The Session-Timeout (`None`: none), counted from the start (a CoA may shorten or
    /// lengthen it; one already past ends the session at the next
    /// [`handle_timeout`](Self::handle_timeout)).
    pub fn set_session_timeout(&mut self, _now: Instant, timeout: Option<Duration>) {
        self.session_timeout = timeout.filter(|t| !t.is_zero());
    }

    /// The Idle-Timeout (`None`: none), counted from the last traffic.
    pub fn set_idle_timeout(&mut self, _now: Instant, timeout: Option<Duration>) {
        self.idle_timeout = timeout.filter(|t| !t.is_zero());
    }

    /// The interim-update interval (`None`: no interim updates); the first is due one
    /// interval after `now`.
    pub fn set_interim_interval(&mut self, now: Instant, interval: Option<Duration>) {
        self.interim = interval.filter(|t| !t.is_zero());
        self.next_interim = self.interim.map(|i| now + i);
    }

    /// The Session-Timeout in force.
    pub fn session_timeout(&self) -> Option<Duration> {
        self.session_timeout
    }

    /// The Idle-Timeout in force.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// The interim interval in force.
    pub fn interim_interval(&self) -> Option<Duration> {
        self.interim
    }

    /// Traffic went through (either way) at `now`.
    pub fn activity(&mut self, now: Instant) {
        if now > self.last_activity {
            self.last_activity = now;
        }
    }

    /// The time has come (or not: a spurious call changes nothing).
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.ended {
            if let Some(limit) = self.session_timeout
                && now >= self.started + limit
            {
                self.ended = true;
                self.events.push_back(ClockEvent::SessionTimeout);
            } else if let Some(idle) = self.idle_timeout
                && now >= self.last_activity + idle
            {
                self.ended = true;
                self.events.push_back(ClockEvent::IdleTimeout);
            }
        }
        if let (Some(interval), Some(next)) = (self.interim, self.next_interim)
            && now >= next
            && !self.ended
        {
            self.events.push_back(ClockEvent::InterimUpdate);
            // After a long stall, the next one is an interval from now, not a burst of them.
            let mut following = next + interval;
            if following <= now {
                following = now + interval;
            }
            self.next_interim = Some(following);
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClockEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next needed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.ended {
            return None;
        }
        let session = self.session_timeout.map(|t| self.started + t);
        let idle = self.idle_timeout.map(|t| self.last_activity + t);
        [session, idle, self.next_interim]
            .into_iter()
            .flatten()
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives a shaper with an always-full sender of `size`-byte packets for `seconds` of
    /// virtual time; returns the bytes passed per second of each second.
    fn saturate(shaper: &mut Shaper<u32>, start: Instant, seconds: u64, size: usize) -> Vec<u64> {
        let mut now = start;
        let mut per_second = vec![0u64; seconds as usize];
        let end = start + Duration::from_secs(seconds);
        let mut record = |now: Instant| {
            let second = now.duration_since(start).as_secs() as usize;
            if let Some(slot) = per_second.get_mut(second) {
                *slot += size as u64;
            }
        };
        while now < end {
            loop {
                match shaper.offer(now, size, 0) {
                    Admission::Now(_) => record(now),
                    Admission::Queued => {}
                    Admission::Dropped(_) => break,
                }
            }
            while shaper.poll_release(now).is_some() {
                record(now);
            }
            now = shaper
                .poll_timeout()
                .unwrap_or(now + Duration::from_millis(1))
                .max(now + Duration::from_micros(1));
        }
        per_second
    }

    #[test]
    fn plain_limit_holds_over_time() {
        let start = Instant::now();
        for rate in [64_000, 1_000_000, 2_000_000, 100_000_000] {
            let mut shaper = Shaper::new(start, DirectionLimit::new(rate));
            let seconds = saturate(&mut shaper, start, 5, 1500);
            // After the first second (which includes the full bucket and the queue), each
            // second carries the rate within one packet.
            for (i, bytes) in seconds.iter().enumerate().skip(1) {
                let bits = bytes * 8;
                assert!(
                    bits.abs_diff(rate) <= 1500 * 8,
                    "rate {rate}, second {i}: {bits}"
                );
            }
        }
    }

    #[test]
    fn pass_now_answers_as_offer_does() {
        let start = Instant::now();
        for rate in [0, 8_000, 1_000_000] {
            let limit = DirectionLimit::new(rate);
            let (mut offered, mut passed) = (Shaper::new(start, limit), Shaper::new(start, limit));
            for i in 0..400u32 {
                let now = start + Duration::from_micros(u64::from(i) * 700);
                let bytes = 64 + (i as usize * 37) % 1400;
                let expected = std::mem::discriminant(&offered.offer(now, bytes, i));
                let got = if passed.pass_now(now, bytes) {
                    std::mem::discriminant(&Admission::Now(i))
                } else {
                    let admission = passed.offer(now, bytes, i);
                    assert!(
                        !matches!(admission, Admission::Now(_)),
                        "rate {rate}, packet {i}"
                    );
                    std::mem::discriminant(&admission)
                };
                assert_eq!(got, expected, "rate {rate}, packet {i}");
                while offered.poll_release(now).is_some() {}
                while passed.poll_release(now).is_some() {}
            }
            assert_eq!(passed.stats(), offered.stats(), "rate {rate}");
        }
    }

    #[test]
    fn unlimited_passes_everything() {
        let start = Instant::now();
        let mut shaper = Shaper::new(start, DirectionLimit::new(0));
        for i in 0..10_000 {
            assert_eq!(shaper.offer(start, 1500, i), Admission::Now(i));
        }
        assert_eq!(shaper.poll_timeout(), None);
    }

    #[test]
    fn full_queue_drops_and_order_is_kept() {
        let start = Instant::now();
        let mut shaper = Shaper::new(start, DirectionLimit::new(8_000)); // 1 kB/s
        let mut admitted = Vec::new();
        let mut dropped = 0;
        for i in 0..200u32 {
            match shaper.offer(start, 1000, i) {
                Admission::Now(i) => admitted.push(i),
                Admission::Queued => {}
                Admission::Dropped(_) => dropped += 1,
            }
        }
        assert!(dropped > 0);
        assert_eq!(shaper.stats().dropped, dropped);
        let mut now = start;
        while let Some(at) = shaper.poll_timeout() {
            now = at.max(now);
            while let Some(i) = shaper.poll_release(now) {
                admitted.push(i);
            }
        }
        let mut sorted = admitted.clone();
        sorted.sort_unstable();
        assert_eq!(admitted, sorted, "FIFO");
        // 1 kB/s: the queue of 32 kB (+ the bucket) took about 36 s to drain.
        let took = now.duration_since(start).as_secs();
        assert!((30..=40).contains(&took), "{took}");
    }

    /// RouterOS's example: 1M limit, 2M burst, threshold 768k, burst-time 16 s. A saturating
    /// sender bursts at 2M while the average is below the threshold (about 6 s), then runs at
    /// 1M; after a quiet while it may burst again.
    #[test]
    fn bursts_follow_the_average() {
        let start = Instant::now();
        let limit: RateLimit = "1M/1M 2M/2M 768k/768k 16/16".parse().unwrap();
        let mut shaper = Shaper::new(start, limit.directions().rx);
        assert!(shaper.is_bursting());
        let seconds = saturate(&mut shaper, start, 30, 1500);
        let mbit = |b: u64| b as f64 * 8.0 / 1e6;
        // First seconds at the burst rate.
        for (i, &bytes) in seconds.iter().enumerate().take(5) {
            assert!(
                (mbit(bytes) - 2.0).abs() < 0.15,
                "second {i}: {}",
                mbit(bytes)
            );
        }
        // The average over 16 s crosses 768k after about 6 s at 2M: from then on 1M.
        for (i, &bytes) in seconds.iter().enumerate().skip(8) {
            assert!(
                (mbit(bytes) - 1.0).abs() < 0.15,
                "second {i}: {}",
                mbit(bytes)
            );
        }
        assert!(!shaper.is_bursting());
        // 20 quiet seconds: the average falls to zero, bursting is allowed again.
        while let Some(at) = shaper.poll_timeout() {
            while shaper.poll_release(at).is_some() {}
        }
        let later = start + Duration::from_secs(50);
        assert!(matches!(shaper.offer(later, 100, 0), Admission::Now(_)));
        assert!(shaper.is_bursting());
    }

    #[test]
    fn a_change_applies_at_once() {
        let start = Instant::now();
        let mut shaper = Shaper::new(start, DirectionLimit::new(1_000_000));
        let first = saturate(&mut shaper, start, 3, 1000);
        let mid = start + Duration::from_secs(3);
        shaper.set_limit(mid, DirectionLimit::new(4_000_000));
        let second = saturate(&mut shaper, mid, 3, 1000);
        let mbit = |b: u64| b as f64 * 8.0 / 1e6;
        assert!((mbit(first[2]) - 1.0).abs() < 0.05, "{}", mbit(first[2]));
        assert!((mbit(second[2]) - 4.0).abs() < 0.05, "{}", mbit(second[2]));
        // Unlimited: whatever waited is due now.
        shaper.offer(mid + Duration::from_secs(3), 60_000, 7);
        shaper.set_limit(mid + Duration::from_secs(3), DirectionLimit::new(0));
        let now = mid + Duration::from_secs(3);
        while shaper.poll_release(now).is_some() {}
        assert_eq!(shaper.queued(), 0);
    }

    proptest::proptest! {
        /// Whatever is offered when, no more passes than the bucket plus the limit over the
        /// time, and nothing is lost: every packet passes, waits or is dropped.
        #[test]
        fn never_above_the_limit(
            rate in 8_000u64..100_000_000,
            offers in proptest::collection::vec((0u64..50_000, 40usize..1600), 1..300),
        ) {
            let start = Instant::now();
            let mut shaper = Shaper::new(start, DirectionLimit::new(rate));
            let depth_bits = (rate / 20).max(MIN_DEPTH_BYTES * 8);
            let mut now = start;
            let (mut passed, mut queued, mut dropped) = (0u64, 0u64, 0u64);
            for (gap_us, size) in offers {
                now += Duration::from_micros(gap_us);
                while shaper.poll_release(now).is_some() {
                    passed += 1;
                }
                match shaper.offer(now, size, ()) {
                    Admission::Now(()) => passed += 1,
                    Admission::Queued => queued += 1,
                    Admission::Dropped(()) => dropped += 1,
                }
                let elapsed = now.duration_since(start).as_secs_f64();
                let bits = shaper.stats().passed_bytes * 8;
                proptest::prop_assert!(
                    bits as f64 <= depth_bits as f64 + rate as f64 * elapsed + 1.0,
                    "{bits} bits after {elapsed} s at {rate}"
                );
            }
            proptest::prop_assert_eq!(shaper.stats().passed, passed);
            proptest::prop_assert_eq!(shaper.stats().dropped, dropped);
            proptest::prop_assert_eq!(shaper.stats().delayed, queued);
        }
    }

    #[test]
    fn session_timeout_and_interim() {
        let start = Instant::now();
        let mut clock = SessionClock::new(start);
        clock.set_session_timeout(start, Some(Duration::from_secs(10)));
        clock.set_interim_interval(start, Some(Duration::from_secs(3)));
        let mut events = Vec::new();
        while let Some(at) = clock.poll_timeout() {
            clock.handle_timeout(at);
            while let Some(e) = clock.poll_event() {
                events.push((at.duration_since(start).as_secs(), e));
            }
        }
        assert_eq!(
            events,
            vec![
                (3, ClockEvent::InterimUpdate),
                (6, ClockEvent::InterimUpdate),
                (9, ClockEvent::InterimUpdate),
                (10, ClockEvent::SessionTimeout),
            ]
        );
        // Nothing more once ended.
        clock.handle_timeout(start + Duration::from_secs(100));
        assert_eq!(clock.poll_event(), None);
    }

    #[test]
    fn idle_timeout_follows_traffic_and_a_coa_shortens_the_session() {
        let start = Instant::now();
        let mut clock = SessionClock::new(start);
        clock.set_idle_timeout(start, Some(Duration::from_secs(5)));
        for s in 1..=20 {
            clock.activity(start + Duration::from_secs(s));
        }
        assert_eq!(clock.poll_timeout(), Some(start + Duration::from_secs(25)));
        // A CoA: the session may last 15 s from its start, which is past: it ends now.
        clock.set_session_timeout(
            start + Duration::from_secs(21),
            Some(Duration::from_secs(15)),
        );
        let now = start + Duration::from_secs(21);
        assert!(clock.poll_timeout().unwrap() <= now);
        clock.handle_timeout(now);
        assert_eq!(clock.poll_event(), Some(ClockEvent::SessionTimeout));
        assert_eq!(clock.poll_timeout(), None);
    }

    #[test]
    fn stalled_interim_does_not_burst() {
        let start = Instant::now();
        let mut clock = SessionClock::new(start);
        clock.set_interim_interval(start, Some(Duration::from_secs(60)));
        clock.handle_timeout(start + Duration::from_secs(600));
        assert_eq!(clock.poll_event(), Some(ClockEvent::InterimUpdate));
        assert_eq!(clock.poll_event(), None);
        assert_eq!(clock.poll_timeout(), Some(start + Duration::from_secs(660)));
    }
}
