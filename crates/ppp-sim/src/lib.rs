//! A test harness for sans-IO protocol endpoints: two endpoints on virtual time, joined by a
//! simulated link that loses, duplicates, reorders, corrupts and delays what crosses it, all from
//! one seed so every run can be replayed.
//!
//! It is a crate of its own because every layer of the stack (LCP and the NCPs, authentication,
//! PPPoE discovery, Multilink) is tested with it; it is a dev-dependency only and is not published.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use ppp_sim::{Impairments, Machine, Pair};
//!
//! /// Sends "ping" once and reports every packet it receives as an event.
//! struct Pinger { sent: bool, received: Vec<Vec<u8>> }
//! impl Machine for Pinger {
//!     type Event = Vec<u8>;
//!     fn handle_input(&mut self, _now: Instant, data: &[u8]) { self.received.push(data.to_vec()); }
//!     fn handle_timeout(&mut self, _now: Instant) {}
//!     fn poll_transmit(&mut self) -> Option<Vec<u8>> {
//!         (!std::mem::replace(&mut self.sent, true)).then(|| b"ping".to_vec())
//!     }
//!     fn poll_event(&mut self) -> Option<Vec<u8>> { self.received.pop() }
//!     fn poll_timeout(&self) -> Option<Instant> { None }
//! }
//!
//! let link = Impairments { delay: Duration::from_millis(10), ..Impairments::default() };
//! let pinger = || Pinger { sent: false, received: Vec::new() };
//! let mut pair = Pair::new(pinger(), pinger(), link.clone(), link, 7);
//! assert!(pair.run_until_pair(Duration::from_secs(1), |p| p.a_events.len() == 1 && p.b_events.len() == 1));
//! assert_eq!(pair.elapsed(), Duration::from_millis(10));
//! assert_eq!(pair.b_events, [b"ping".to_vec()]);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::time::{Duration, Instant};

pub use ppp_core::Machine;

/// A small, fast, seedable generator (SplitMix64): plenty for choosing impairments, and the same
/// sequence on every platform.
#[derive(Clone, Debug)]
pub struct SimRng(u64);

impl SimRng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        SimRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A uniform number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// What the simulated link does to each packet (or chunk of bytes) that crosses it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Impairments {
    /// Probability that a packet is lost.
    pub loss: f64,
    /// Probability that a packet is delivered twice.
    pub duplicate: f64,
    /// Probability that one byte of a packet is changed.
    pub corrupt: f64,
    /// Probability that a packet is held back by up to `reorder_by`, letting later ones overtake.
    pub reorder: f64,
    /// How long a reordered packet is held back at most.
    pub reorder_by: Duration,
    /// Delay of every packet.
    pub delay: Duration,
    /// Extra random delay of up to this much (packets keep their order unless reordered).
    pub jitter: Duration,
}

impl Impairments {
    /// A perfect link with a fixed delay.
    pub fn delay(delay: Duration) -> Self {
        Impairments {
            delay,
            ..Impairments::default()
        }
    }

    /// A link that loses `loss` of all packets, with a fixed delay.
    pub fn lossy(loss: f64, delay: Duration) -> Self {
        Impairments {
            loss,
            delay,
            ..Impairments::default()
        }
    }

    /// Everything at once: loss, duplication, corruption and reordering at the given rate each.
    pub fn chaos(rate: f64, delay: Duration) -> Self {
        Impairments {
            loss: rate,
            duplicate: rate,
            corrupt: rate,
            reorder: rate,
            reorder_by: delay * 3,
            delay,
            jitter: delay / 2,
        }
    }
}

/// Counts of what a [`Channel`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelStats {
    /// Packets handed to the channel.
    pub sent: u64,
    /// Packets delivered (duplicates included).
    pub delivered: u64,
    /// Packets lost.
    pub lost: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Packets with a byte changed.
    pub corrupted: u64,
    /// Packets held back.
    pub reordered: u64,
}

/// One direction of a simulated link.
#[derive(Clone, Debug)]
pub struct Channel {
    impairments: Impairments,
    rng: SimRng,
    in_flight: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>,
    last_delivery: Option<Instant>,
    sequence: u64,
    stats: ChannelStats,
}

impl Channel {
    /// A channel with `impairments`, drawing its chances from `seed`.
    pub fn new(impairments: Impairments, seed: u64) -> Self {
        Channel {
            impairments,
            rng: SimRng::new(seed),
            in_flight: BinaryHeap::new(),
            last_delivery: None,
            sequence: 0,
            stats: ChannelStats::default(),
        }
    }

    /// What the channel has done so far.
    pub fn stats(&self) -> ChannelStats {
        self.stats
    }

    /// Changes the impairments from now on (packets in flight keep their fate).
    pub fn set_impairments(&mut self, impairments: Impairments) {
        self.impairments = impairments;
    }

    /// Sends `packet` at `now`.
    pub fn send(&mut self, now: Instant, mut packet: Vec<u8>) {
        self.stats.sent += 1;
        let imp = self.impairments.clone();
        if self.rng.chance(imp.loss) {
            self.stats.lost += 1;
            return;
        }
        if !packet.is_empty() && self.rng.chance(imp.corrupt) {
            let at = self.rng.below(packet.len() as u64) as usize;
            let flip = (self.rng.below(255) + 1) as u8;
            packet[at] ^= flip;
            self.stats.corrupted += 1;
        }
        let copies = if self.rng.chance(imp.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let jitter = random_duration(&mut self.rng, imp.jitter);
            let mut at = now + imp.delay + jitter;
            if self.rng.chance(imp.reorder) {
                self.stats.reordered += 1;
                at += random_duration(&mut self.rng, imp.reorder_by);
            } else if let Some(last) = self.last_delivery {
                // Jitter alone does not reorder: a serial line or a switch keeps order.
                at = at.max(last);
            }
            self.last_delivery = Some(self.last_delivery.map_or(at, |l| l.max(at)));
            self.sequence += 1;
            self.in_flight
                .push(Reverse((at, self.sequence, packet.clone())));
        }
    }

    /// When the next packet arrives.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.in_flight.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The next packet that has arrived by `now`.
    pub fn poll_deliver(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.next_delivery()? > now {
            return None;
        }
        let Reverse((_, _, packet)) = self.in_flight.pop()?;
        self.stats.delivered += 1;
        Some(packet)
    }

    /// Packets still in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

fn random_duration(rng: &mut SimRng, max: Duration) -> Duration {
    let nanos = max.as_nanos().min(u128::from(u64::MAX)) as u64;
    Duration::from_nanos(rng.below(nanos.saturating_add(1)))
}

/// A reaction to an event: the machine that reported it, the virtual time, the event.
type Reaction<M> = Box<dyn FnMut(&mut M, Instant, &<M as Machine>::Event)>;

/// Two machines joined by a simulated link, on virtual time.
///
/// Any [`Machine`] plugs in as it is (`Pair<Link, Link>`, `Pair<PppoeClient, PppoeServer>`):
/// the pair moves what each transmits across its channel, fires timeouts, and collects the
/// events each reports in [`a_events`](Self::a_events) / [`b_events`](Self::b_events). A test
/// that must answer an event (a secret lookup, a ping once IPCP is up) registers a reaction with
/// [`on_a_event`](Self::on_a_event) / [`on_b_event`](Self::on_b_event) instead of wrapping the
/// machine.
pub struct Pair<A: Machine, B: Machine> {
    /// The first machine.
    pub a: A,
    /// The second machine.
    pub b: B,
    /// The direction from `a` to `b`.
    pub a_to_b: Channel,
    /// The direction from `b` to `a`.
    pub b_to_a: Channel,
    /// Every event `a` reported, in order.
    pub a_events: Vec<A::Event>,
    /// Every event `b` reported, in order.
    pub b_events: Vec<B::Event>,
    react_a: Option<Reaction<A>>,
    react_b: Option<Reaction<B>>,
    tap: Option<Vec<TappedFrame>>,
    start: Instant,
    now: Instant,
}

/// A frame one side handed to the link, as [`Pair::enable_tap`] records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TappedFrame {
    /// When it was sent (virtual time).
    pub at: Instant,
    /// Whether `a` sent it (else `b`).
    pub from_a: bool,
    /// The bytes, before the link's impairments.
    pub bytes: Vec<u8>,
}

impl<A: Machine, B: Machine> fmt::Debug for Pair<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pair")
            .field("a_to_b", &self.a_to_b.stats())
            .field("b_to_a", &self.b_to_a.stats())
            .field("elapsed", &self.elapsed())
            .finish_non_exhaustive()
    }
}

impl<A: Machine, B: Machine> Pair<A, B> {
    /// Joins `a` and `b`; the link's chances come from `seed`; virtual time starts now.
    pub fn new(a: A, b: B, a_to_b: Impairments, b_to_a: Impairments, seed: u64) -> Self {
        Self::new_at(Instant::now(), a, b, a_to_b, b_to_a, seed)
    }

    /// Joins `a` and `b`, with virtual time starting at `start` (the instant the machines were
    /// opened at).
    pub fn new_at(
        start: Instant,
        a: A,
        b: B,
        a_to_b: Impairments,
        b_to_a: Impairments,
        seed: u64,
    ) -> Self {
        let mut rng = SimRng::new(seed);
        Pair {
            a,
            b,
            a_to_b: Channel::new(a_to_b, rng.next_u64()),
            b_to_a: Channel::new(b_to_a, rng.next_u64()),
            a_events: Vec::new(),
            b_events: Vec::new(),
            react_a: None,
            react_b: None,
            tap: None,
            start,
            now: start,
        }
    }

    /// Calls `reaction` with `a`, the time and each event `a` reports, before the event is
    /// recorded in [`a_events`](Self::a_events).
    pub fn on_a_event(&mut self, reaction: impl FnMut(&mut A, Instant, &A::Event) + 'static) {
        self.react_a = Some(Box::new(reaction));
    }

    /// Calls `reaction` with `b`, the time and each event `b` reports, before the event is
    /// recorded in [`b_events`](Self::b_events).
    pub fn on_b_event(&mut self, reaction: impl FnMut(&mut B, Instant, &B::Event) + 'static) {
        self.react_b = Some(Box::new(reaction));
    }

    /// Records every frame either side sends from now on (for a capture).
    pub fn enable_tap(&mut self) {
        self.tap.get_or_insert_with(Vec::new);
    }

    /// The frames recorded since [`enable_tap`](Self::enable_tap), in the order they were sent.
    pub fn take_tap(&mut self) -> Vec<TappedFrame> {
        self.tap.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The virtual time now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The virtual time the pair was created at; machines should be opened with it.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Virtual time elapsed since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Collects both machines' events (running the reactions), then moves what both want to
    /// send onto the link. Call it after acting on a machine between steps.
    pub fn flush(&mut self) {
        let now = self.now;
        loop {
            let mut moved = false;
            while let Some(event) = self.a.poll_event() {
                if let Some(react) = self.react_a.as_mut() {
                    react(&mut self.a, now, &event);
                }
                self.a_events.push(event);
                moved = true;
            }
            while let Some(event) = self.b.poll_event() {
                if let Some(react) = self.react_b.as_mut() {
                    react(&mut self.b, now, &event);
                }
                self.b_events.push(event);
                moved = true;
            }
            while let Some(packet) = self.a.poll_transmit() {
                if let Some(tap) = self.tap.as_mut() {
                    tap.push(TappedFrame {
                        at: now,
                        from_a: true,
                        bytes: packet.clone(),
                    });
                }
                self.a_to_b.send(now, packet);
                moved = true;
            }
            while let Some(packet) = self.b.poll_transmit() {
                if let Some(tap) = self.tap.as_mut() {
                    tap.push(TappedFrame {
                        at: now,
                        from_a: false,
                        bytes: packet.clone(),
                    });
                }
                self.b_to_a.send(now, packet);
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }

    /// When the next thing happens: a delivery or a timeout.
    fn next_event_time(&self) -> Option<Instant> {
        [
            self.a.poll_timeout(),
            self.b.poll_timeout(),
            self.a_to_b.next_delivery(),
            self.b_to_a.next_delivery(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Advances to the next thing that happens (a delivery or a timeout) and does it. Returns
    /// false when nothing is left to happen.
    pub fn step(&mut self) -> bool {
        self.flush();
        let Some(next) = self.next_event_time() else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.now;
        while let Some(packet) = self.a_to_b.poll_deliver(now) {
            self.b.handle_input(now, &packet);
        }
        while let Some(packet) = self.b_to_a.poll_deliver(now) {
            self.a.handle_input(now, &packet);
        }
        if self.a.poll_timeout().is_some_and(|t| t <= now) {
            self.a.handle_timeout(now);
        }
        if self.b.poll_timeout().is_some_and(|t| t <= now) {
            self.b.handle_timeout(now);
        }
        self.flush();
        true
    }

    /// Steps until `done` holds (true), nothing is left to happen, or `limit` of virtual time has
    /// passed since the start (false in both cases).
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&A, &B) -> bool) -> bool {
        loop {
            self.flush();
            if done(&self.a, &self.b) {
                return true;
            }
            if self.elapsed() > limit || !self.step() {
                return done(&self.a, &self.b);
            }
        }
    }

    /// Like [`run_until`](Self::run_until), with the whole pair (its events too) in view.
    pub fn run_until_pair(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        loop {
            self.flush();
            if done(self) {
                return true;
            }
            if self.elapsed() > limit || !self.step() {
                return done(self);
            }
        }
    }

    /// Steps until virtual time reaches `elapsed` since the start or nothing is left to happen.
    pub fn run_for(&mut self, elapsed: Duration) {
        let end = self.start + elapsed;
        loop {
            self.flush();
            match self.next_event_time() {
                Some(t) if t <= end => {
                    self.step();
                }
                _ => {
                    self.now = self.now.max(end);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_reproducible() {
        let mut a = SimRng::new(1);
        let mut b = SimRng::new(1);
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
        assert_ne!(SimRng::new(2).next_u64(), SimRng::new(1).next_u64());
    }

    #[test]
    fn loss_rate_is_roughly_right() {
        let now = Instant::now();
        let mut channel = Channel::new(Impairments::lossy(0.3, Duration::ZERO), 9);
        for i in 0..10_000u32 {
            channel.send(now, i.to_le_bytes().to_vec());
        }
        let lost = channel.stats().lost;
        assert!((2_700..3_300).contains(&lost), "lost {lost}");
        assert_eq!(channel.in_flight() as u64, 10_000 - lost);
    }

    #[test]
    fn order_is_kept_without_reordering() {
        let now = Instant::now();
        let imp = Impairments {
            jitter: Duration::from_millis(50),
            delay: Duration::from_millis(10),
            ..Impairments::default()
        };
        let mut channel = Channel::new(imp, 3);
        for i in 0..100u32 {
            channel.send(
                now + Duration::from_millis(u64::from(i)),
                i.to_le_bytes().to_vec(),
            );
        }
        let mut got = Vec::new();
        while let Some(p) = channel.poll_deliver(now + Duration::from_secs(10)) {
            got.push(u32::from_le_bytes(p.try_into().unwrap()));
        }
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn chaos_does_everything() {
        let now = Instant::now();
        let mut channel = Channel::new(Impairments::chaos(0.2, Duration::from_millis(5)), 5);
        for i in 0..1000u32 {
            channel.send(now, i.to_le_bytes().to_vec());
        }
        let s = channel.stats();
        assert!(
            s.lost > 100 && s.duplicated > 100 && s.corrupted > 100 && s.reordered > 100,
            "{s:?}"
        );
    }
}
