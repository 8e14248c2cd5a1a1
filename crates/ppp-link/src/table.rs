//! [`LinkTable`]: many links, each under a network layer of its own or, with Multilink, under
//! the bundle of its peer: what a server runs (PPPoE sessions, serial ports).
//!
//! A link is added when its lower layer exists (a PPPoE session after PADS, a call after
//! `CONNECT`) and starts under a network layer of its own. When it finishes authentication the
//! table places it: without Multilink it keeps its own network layer; with Multilink it joins the
//! bundle of the same peer (authenticated name and Endpoint Discriminator, RFC 1990 §5.1.3), or
//! makes one. Each network layer is a [`UnitId`], like Linux's `pppN` units for pppd: one
//! interface, one address.
//!
//! Every input touches only the unit it concerns; deadlines wait in a heap, so
//! [`poll_timeout`](LinkTable::poll_timeout) is O(1) and a timeout wakes only the units due.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Instant;

use foldhash::fast::FixedState;
use ppp_auth::SecretToken;
use ppp_core::{CloseReason, Random};
use ppp_frame::Protocol;
use ppp_ipcp::Ipcp;
use ppp_mp::BundleKey;
use tracing::info;

use crate::auth::{SecretEntry, Verdict};
use crate::{
    AuthError, Datagram, DownReason, LinkConfig, LinkControl, LinkError, LinkEvent, Multilink,
    MultilinkEvent,
};

/// A network layer of a [`LinkTable`]: one interface, as a `pppN` unit is for pppd.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnitId<K> {
    /// A link's own network layer (no Multilink).
    Link(K),
    /// A Multilink bundle (RFC 1990) of one or more links of the same peer; numbered from 1 in
    /// the order bundles were made.
    Bundle(u32),
}

impl<K: fmt::LowerHex> fmt::Display for UnitId<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnitId::Link(key) => write!(f, "link {key:#x}"),
            UnitId::Bundle(n) => write!(f, "bundle {n}"),
        }
    }
}

/// What a [`LinkTable`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TableEvent<K> {
    /// From a link: phases, LCP up, authentication (a `SecretNeeded` to answer with
    /// [`LinkTable::provide_secret`]), loopback, link down.
    Link {
        /// The link.
        key: K,
        /// What happened.
        event: LinkEvent,
    },
    /// From a network layer: `IpUp`, `IpDown`, `Ipv6Up`, `Ipv6Down`, `CcpUp`, `CcpDown`,
    /// `NcpFinished`.
    Network {
        /// The unit.
        unit: UnitId<K>,
        /// What happened.
        event: LinkEvent,
    },
    /// A link joined a Multilink bundle (the first one makes it).
    Joined {
        /// The bundle.
        unit: UnitId<K>,
        /// The link.
        key: K,
        /// Links in the bundle now.
        members: usize,
    },
    /// A link left a Multilink bundle.
    Left {
        /// The bundle.
        unit: UnitId<K>,
        /// The link.
        key: K,
        /// Links still in the bundle.
        members: usize,
    },
    /// A link is gone from the table: its PPP is over (the lower layer may be released).
    Removed {
        /// The link.
        key: K,
        /// Why.
        reason: DownReason,
    },
    /// A network layer is gone with its last link.
    UnitDown {
        /// Which.
        unit: UnitId<K>,
    },
}

/// A network layer and the links below it.
struct Unit<K> {
    multilink: Multilink<K>,
    /// The deadline this unit has an entry for in the timer heap.
    scheduled: Option<Instant>,
    /// Whether it is in the list of units to drain.
    dirty: bool,
    /// A timer woke it: release what an idle unit does not need once it is drained.
    compact: bool,
}

/// The table's maps. Keys come from the wire (the peer's address and session), so the hash is
/// keyed with a seed from the table's `Random` (the OS's entropy in the programs); foldhash is
/// several times faster than std's SipHash here, and a table is looked up several times per
/// frame.
type Map<K, V> = HashMap<K, V, FixedState>;

/// Many links, each under a network layer of its own or a Multilink bundle's, sans-IO.
///
/// Inputs: [`add_link`](Self::add_link), [`handle_input`](Self::handle_input) or
/// [`handle_frame`](Self::handle_frame) for a link, [`down`](Self::down) (its lower layer is
/// gone), [`handle_timeout`](Self::handle_timeout), [`provide_secret`](Self::provide_secret),
/// [`close_link`](Self::close_link), [`close_unit`](Self::close_unit),
/// [`close_all`](Self::close_all), datagrams for a unit ([`send_ipv4`](Self::send_ipv4),
/// [`send_ipv6`](Self::send_ipv6)). Outputs: [`poll_transmit`](Self::poll_transmit) (which link,
/// what bytes), [`poll_event`](Self::poll_event), [`poll_datagram`](Self::poll_datagram),
/// [`poll_timeout`](Self::poll_timeout).
///
/// [`PppoeServer`](crate::pppoe::PppoeServer) is one over PPPoE sessions; the example below runs
/// one over two lines.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Instant;
/// use ppp_link::{LinkConfig, LinkControl, LinkTable, Multilink, Random, TableEvent, UnitId};
///
/// let mut config = LinkConfig::pppoe();
/// config.lcp.allow.clear();
/// config.lcp.mrru = Some(1600);
/// let client = Arc::new(config.clone());
/// config.ipcp = Some(ppp_ipcp::IpcpConfig {
///     remote_address: Some("192.0.2.2".parse().unwrap()),
///     ..ppp_ipcp::IpcpConfig::server("192.0.2.1".parse().unwrap(), [None, None])
/// });
/// let server = Arc::new(config);
///
/// let now = Instant::now();
/// let random = Random::seeded(3); // programs: Random::from_os()
/// let mut table = LinkTable::new(random.fork());
/// let mut peer = Multilink::new(client.clone(), random.fork());
/// for line in 0..2u8 {
///     table.add_link(now, line, server.clone(), None);
///     peer.add_member(now, line, LinkControl::new(client.clone(), random.fork()));
///     peer.open(now, &line);
///     peer.up(now, &line);
/// }
/// loop {
///     let mut moved = false;
///     while let Some((line, frame)) = peer.poll_transmit() {
///         table.handle_input(now, line, &frame);
///         moved = true;
///     }
///     while let Some((line, frame)) = table.poll_transmit() {
///         peer.handle_input(now, &line, &frame);
///         moved = true;
///     }
///     while peer.poll_event().is_some() {}
///     if !moved {
///         break;
///     }
/// }
/// // Both lines came from the same peer: one bundle.
/// assert_eq!(table.unit_of(0), Some(UnitId::Bundle(1)));
/// assert_eq!(table.unit_of(1), Some(UnitId::Bundle(1)));
/// let events: Vec<_> = std::iter::from_fn(|| table.poll_event()).collect();
/// assert!(events.contains(&TableEvent::Joined { unit: UnitId::Bundle(1), key: 1, members: 2 }));
/// ```
pub struct LinkTable<K> {
    random: Random,
    /// Links in a bundle, and which (a link under its own network layer is found as
    /// `UnitId::Link(key)` in `units`, so it needs no entry here).
    bundled: Map<K, u32>,
    /// Links in the table.
    count: usize,
    units: Map<UnitId<K>, Box<Unit<K>>>,
    /// Which bundle each peer's links join.
    bundles: Map<BundleKey, u32>,
    next_bundle: u32,
    bundles_made: u64,
    timers: BinaryHeap<Reverse<(Instant, UnitId<K>)>>,
    dirty: Vec<UnitId<K>>,
    transmit: VecDeque<(K, Vec<u8>)>,
    events: VecDeque<TableEvent<K>>,
    datagrams: VecDeque<(UnitId<K>, Datagram)>,
}

impl<K> fmt::Debug for LinkTable<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkTable")
            .field("links", &self.count)
            .field("units", &self.units.len())
            .finish_non_exhaustive()
    }
}

impl<K: Copy + Eq + Hash + Ord + fmt::Debug + fmt::LowerHex> LinkTable<K> {
    /// An empty table; its links draw magic numbers and challenges from `random`.
    pub fn new(random: Random) -> Self {
        let seed = random.u64();
        let map = || FixedState::with_seed(seed);
        LinkTable {
            random,
            bundled: Map::with_hasher(map()),
            count: 0,
            units: Map::with_hasher(map()),
            bundles: Map::with_hasher(map()),
            next_bundle: 1,
            bundles_made: 0,
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            datagrams: VecDeque::new(),
        }
    }

    /// Adds a link whose lower layer is up, and opens it, under a network layer of its own
    /// (with `ipcp` instead of `config`'s, for address pools). A key already in use replaces
    /// nothing and returns `false`.
    pub fn add_link(
        &mut self,
        now: Instant,
        key: K,
        config: Arc<LinkConfig>,
        ipcp: Option<Ipcp>,
    ) -> bool {
        if self.unit_id(key).is_some() {
            return false;
        }
        let unit = UnitId::Link(key);
        if self.units.contains_key(&unit) {
            return false;
        }
        let mut multilink = Multilink::new(config.clone(), self.random.clone());
        // Where a link's traffic goes is decided here once it authenticated.
        multilink.hold_members(true);
        if let Some(ipcp) = ipcp {
            multilink.set_ipcp(ipcp);
        }
        multilink.add_member(now, key, LinkControl::new(config, self.random.clone()));
        multilink.open(now, &key);
        multilink.up(now, &key);
        self.count += 1;
        self.units.insert(
            unit,
            Box::new(Unit {
                multilink,
                scheduled: None,
                dirty: false,
                compact: false,
            }),
        );
        self.touch(unit);
        self.process(now);
        true
    }

    /// The keys of the links, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = K> + '_ {
        self.units
            .values()
            .flat_map(|unit| unit.multilink.members().map(|(key, _, _)| *key))
    }

    /// The number of links.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the table has no link.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// One link: framing, LCP, authentication (phase, peer name, counters).
    pub fn link(&self, key: K) -> Option<&LinkControl> {
        let unit = self.unit_id(key)?;
        self.units.get(&unit)?.multilink.member(&key)
    }

    /// The unit carrying a link's traffic: its own, or its bundle.
    pub fn unit_of(&self, key: K) -> Option<UnitId<K>> {
        self.unit_id(key)
    }

    /// The network layers, in no particular order.
    pub fn units(&self) -> impl Iterator<Item = (UnitId<K>, &Multilink<K>)> {
        self.units.iter().map(|(&id, unit)| (id, &unit.multilink))
    }

    /// One network layer and its links: addresses, MTU, CCP, members.
    pub fn unit(&self, unit: UnitId<K>) -> Option<&Multilink<K>> {
        self.units.get(&unit).map(|u| &u.multilink)
    }

    /// A unit's interface MTU (see [`Multilink::mtu`]).
    pub fn mtu(&self, unit: UnitId<K>) -> Option<u16> {
        self.unit(unit)?.mtu()
    }

    /// The network layer of a link, to set its IPCP, CCP or IPv6CP (from the user's profile)
    /// before the Network phase; what it does goes out with the next input or
    /// [`flush`](Self::flush).
    pub fn unit_of_mut(&mut self, key: K) -> Option<&mut Multilink<K>> {
        let unit = self.unit_id(key)?;
        self.touch(unit);
        self.units.get_mut(&unit).map(|u| &mut u.multilink)
    }

    /// Multilink bundles made so far.
    pub fn bundles_made(&self) -> u64 {
        self.bundles_made
    }

    /// Bytes received on a link (async framing: any chunk; sync framing: one frame).
    pub fn handle_input(&mut self, now: Instant, key: K, data: &[u8]) {
        if let Some(unit) = self.unit_id(key) {
            if let Some(u) = self.units.get_mut(&unit) {
                u.multilink.handle_input(now, &key, data);
            }
            self.touch(unit);
            self.process(now);
        }
    }

    /// One frame received on a link, already split into protocol and information field.
    pub fn handle_frame(&mut self, now: Instant, key: K, protocol: Protocol, payload: &[u8]) {
        if let Some(unit) = self.unit_id(key) {
            if let Some(u) = self.units.get_mut(&unit) {
                u.multilink.handle_frame(now, &key, protocol, payload);
            }
            self.touch(unit);
            self.process(now);
        }
    }

    /// A link's lower layer is gone (PADT, carrier lost): the link goes down and is removed at
    /// once; its events (`LinkDown`, then [`TableEvent::Removed`]) follow.
    pub fn down(&mut self, now: Instant, key: K) {
        if let Some(unit) = self.unit_id(key) {
            if let Some(u) = self.units.get_mut(&unit) {
                u.multilink.down(now, &key);
            }
            self.touch(unit);
            self.process(now);
        }
        // The link reports LinkDown when its lower layer goes; whatever state it was in, it is
        // gone from the table now (its key may be reused at once).
        if let Some(unit) = self.forget(key) {
            if let Some(u) = self.units.get_mut(&unit) {
                u.multilink.remove_member(now, &key);
            }
            self.events.push_back(TableEvent::Removed {
                key,
                reason: DownReason::LowerLayerDown,
            });
            self.touch(unit);
            self.process(now);
        }
    }

    /// The time from [`poll_timeout`](Self::poll_timeout) has come: only the units due are
    /// woken. A spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((at, unit_id))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(unit) = self.units.get_mut(&unit_id) else {
                continue;
            };
            if unit.scheduled != Some(at) {
                continue; // stale: the unit was rescheduled since
            }
            unit.scheduled = None;
            unit.compact = true;
            if unit.multilink.poll_timeout().is_some_and(|t| t <= now) {
                unit.multilink.handle_timeout(now);
            }
            self.touch(unit_id);
        }
        self.process(now);
    }

    /// The answer to a link's `SecretNeeded` with its token.
    ///
    /// # Errors
    ///
    /// As [`Link::provide_secret`](crate::Link::provide_secret); [`AuthError::NoSecretRequest`]
    /// when the link is gone.
    pub fn provide_secret(
        &mut self,
        now: Instant,
        key: K,
        token: SecretToken,
        entry: Option<SecretEntry>,
    ) -> Result<(), AuthError> {
        let unit = self.unit_id(key).ok_or(AuthError::NoSecretRequest)?;
        let result = self
            .units
            .get_mut(&unit)
            .ok_or(AuthError::NoSecretRequest)?
            .multilink
            .provide_secret(now, &key, token, entry);
        self.touch(unit);
        self.process(now);
        result
    }

    /// The answer to a link's `VerifyNeeded` with its token (RADIUS).
    ///
    /// # Errors
    ///
    /// As [`Link::provide_verdict`](crate::Link::provide_verdict);
    /// [`AuthError::NoVerifyRequest`] when the link is gone.
    pub fn provide_verdict(
        &mut self,
        now: Instant,
        key: K,
        token: SecretToken,
        verdict: Verdict,
    ) -> Result<(), AuthError> {
        let unit = self.unit_id(key).ok_or(AuthError::NoVerifyRequest)?;
        let result = self
            .units
            .get_mut(&unit)
            .ok_or(AuthError::NoVerifyRequest)?
            .multilink
            .provide_verdict(now, &key, token, verdict);
        self.touch(unit);
        self.process(now);
        result
    }

    /// Sends an IPv4 datagram through a unit.
    ///
    /// # Errors
    ///
    /// As [`Multilink::send_ipv4`]; [`LinkError::NotReady`] for an unknown unit.
    pub fn send_ipv4(
        &mut self,
        now: Instant,
        unit: UnitId<K>,
        packet: &[u8],
    ) -> Result<(), LinkError> {
        self.units
            .get_mut(&unit)
            .ok_or(LinkError::NotReady(Protocol::Ipv4))?
            .multilink
            .send_ipv4(now, packet)?;
        self.touch(unit);
        self.process(now);
        Ok(())
    }

    /// Sends an IPv6 datagram through a unit.
    ///
    /// # Errors
    ///
    /// As [`Multilink::send_ipv6`]; [`LinkError::NotReady`] for an unknown unit.
    pub fn send_ipv6(
        &mut self,
        now: Instant,
        unit: UnitId<K>,
        packet: &[u8],
    ) -> Result<(), LinkError> {
        self.units
            .get_mut(&unit)
            .ok_or(LinkError::NotReady(Protocol::Ipv6))?
            .multilink
            .send_ipv6(now, packet)?;
        self.touch(unit);
        self.process(now);
        Ok(())
    }

    /// Closes one link (LCP Terminate; its bundle carries on over the others).
    pub fn close_link(&mut self, now: Instant, key: K, reason: CloseReason) {
        if let Some(unit) = self.unit_id(key) {
            if let Some(u) = self.units.get_mut(&unit) {
                u.multilink.close(now, &key, reason);
            }
            self.touch(unit);
            self.process(now);
        }
    }

    /// Closes every link of a unit (a whole bundle).
    pub fn close_unit(&mut self, now: Instant, unit: UnitId<K>, reason: CloseReason) {
        if let Some(u) = self.units.get_mut(&unit) {
            u.multilink.close_all(now, reason);
            self.touch(unit);
        }
        self.process(now);
    }

    /// Closes every link.
    pub fn close_all(&mut self, now: Instant, reason: CloseReason) {
        let units: Vec<UnitId<K>> = self.units.keys().copied().collect();
        for unit in units {
            if let Some(u) = self.units.get_mut(&unit) {
                u.multilink.close_all(now, reason.clone());
            }
            self.touch(unit);
        }
        self.process(now);
    }

    /// Moves what units changed through [`unit_of_mut`](Self::unit_of_mut) want to send into
    /// the transmit queue.
    pub fn flush(&mut self, now: Instant) {
        self.process(now);
    }

    /// Next bytes or frame to send, and the link to send them on.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<(K, Vec<u8>)> {
        self.transmit.pop_front()
    }

    /// Frames waiting for [`poll_transmit`](Self::poll_transmit).
    pub fn queued_frames(&self) -> usize {
        self.transmit.len()
    }

    /// Next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<TableEvent<K>> {
        self.events.pop_front()
    }

    /// Next datagram received, with the unit it came through.
    #[must_use]
    pub fn poll_datagram(&mut self) -> Option<(UnitId<K>, Datagram)> {
        self.datagrams.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called. O(1); it may be
    /// early (a unit rescheduled later), never late.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// The unit a link is under, if the link is in the table.
    fn unit_id(&self, key: K) -> Option<UnitId<K>> {
        if let Some(&n) = self.bundled.get(&key) {
            return Some(UnitId::Bundle(n));
        }
        let own = UnitId::Link(key);
        self.units
            .get(&own)
            .is_some_and(|unit| unit.multilink.member(&key).is_some())
            .then_some(own)
    }

    /// Takes a link out of the index (its unit is left as it is); returns the unit it was in.
    fn forget(&mut self, key: K) -> Option<UnitId<K>> {
        let unit = self.unit_id(key)?;
        self.bundled.remove(&key);
        self.count -= 1;
        Some(unit)
    }

    /// Marks a unit for draining.
    fn touch(&mut self, unit_id: UnitId<K>) {
        if let Some(unit) = self.units.get_mut(&unit_id)
            && !unit.dirty
        {
            unit.dirty = true;
            self.dirty.push(unit_id);
        }
    }

    fn process(&mut self, now: Instant) {
        while let Some(unit_id) = self.dirty.pop() {
            self.drain_unit(now, unit_id);
        }
    }

    /// Moves a unit's frames, datagrams and events out, removes the links whose PPP is over,
    /// places links ready for the Network phase, and keeps the unit's timer entry current.
    fn drain_unit(&mut self, now: Instant, unit_id: UnitId<K>) {
        let Some(unit) = self.units.get_mut(&unit_id) else {
            return;
        };
        unit.dirty = false;
        while let Some(frame) = unit.multilink.poll_transmit() {
            self.transmit.push_back(frame);
        }
        while let Some(datagram) = unit.multilink.poll_datagram() {
            self.datagrams.push_back((unit_id, datagram));
        }
        let mut ended = Vec::new();
        let mut ready = Vec::new();
        while let Some(event) = unit.multilink.poll_event() {
            match event {
                MultilinkEvent::Member { member, event } => {
                    if let LinkEvent::LinkDown { reason } = &event {
                        ended.push((member, reason.clone()));
                    }
                    self.events
                        .push_back(TableEvent::Link { key: member, event });
                }
                MultilinkEvent::MemberReady {
                    member,
                    bundle,
                    multilink,
                } => ready.push((member, bundle, multilink)),
                MultilinkEvent::Joined { member, members }
                    if matches!(unit_id, UnitId::Bundle(_)) =>
                {
                    self.events.push_back(TableEvent::Joined {
                        unit: unit_id,
                        key: member,
                        members,
                    });
                }
                MultilinkEvent::Left { member, members }
                    if matches!(unit_id, UnitId::Bundle(_)) =>
                {
                    self.events.push_back(TableEvent::Left {
                        unit: unit_id,
                        key: member,
                        members,
                    });
                }
                MultilinkEvent::Network(event) => {
                    self.events.push_back(TableEvent::Network {
                        unit: unit_id,
                        event,
                    });
                }
                MultilinkEvent::BundleDown => {
                    if let UnitId::Bundle(n) = unit_id {
                        self.bundles.retain(|_, bundle| *bundle != n);
                    }
                }
                _ => {}
            }
        }
        for (key, reason) in ended {
            self.forget(key);
            if let Some(unit) = self.units.get_mut(&unit_id) {
                unit.multilink.remove_member(now, &key);
            }
            self.events.push_back(TableEvent::Removed { key, reason });
            self.touch(unit_id);
        }
        for (key, bundle, multilink) in ready {
            self.place(now, unit_id, key, bundle, multilink);
        }
        let Some(unit) = self.units.get_mut(&unit_id) else {
            return;
        };
        if unit.multilink.members().next().is_none() {
            // Its last link is gone. What it still had to say goes first.
            while let Some(frame) = unit.multilink.poll_transmit() {
                self.transmit.push_back(frame);
            }
            while let Some(event) = unit.multilink.poll_event() {
                if let MultilinkEvent::Network(event) = event {
                    self.events.push_back(TableEvent::Network {
                        unit: unit_id,
                        event,
                    });
                }
            }
            self.units.remove(&unit_id);
            if let UnitId::Bundle(n) = unit_id {
                self.bundles.retain(|_, bundle| *bundle != n);
            }
            self.events
                .push_back(TableEvent::UnitDown { unit: unit_id });
            return;
        }
        if unit.dirty {
            return; // drained again before this pass ends
        }
        if std::mem::take(&mut unit.compact) {
            unit.multilink.compact(now);
        }
        if let Some(at) = unit.multilink.poll_timeout()
            && unit.scheduled.is_none_or(|scheduled| at < scheduled)
        {
            unit.scheduled = Some(at);
            self.timers.push(Reverse((at, unit_id)));
        }
    }

    /// A link finished authentication: it keeps its own network layer, joins its peer's
    /// bundle, or makes a new bundle.
    fn place(&mut self, now: Instant, from: UnitId<K>, key: K, bundle: BundleKey, multilink: bool) {
        let existing = self
            .bundles
            .get(&bundle)
            .map(|&n| UnitId::Bundle(n))
            .filter(|unit| *unit != from && self.units.contains_key(unit));
        match (multilink, existing) {
            (true, Some(target)) => {
                // Into the peer's bundle: its own network layer (and any pool address) goes.
                let Some(control) = self
                    .units
                    .get_mut(&from)
                    .and_then(|u| u.multilink.remove_member(now, &key))
                else {
                    return;
                };
                if let Some(unit) = self.units.get_mut(&target) {
                    unit.multilink.add_member(now, key, control);
                }
                if let UnitId::Bundle(n) = target {
                    self.bundled.insert(key, n);
                }
                self.touch(from);
                self.touch(target);
            }
            (true, None) if matches!(from, UnitId::Link(_)) => {
                // A new bundle: the link's unit becomes it.
                let n = self.next_bundle;
                self.next_bundle = self.next_bundle.wrapping_add(1).max(1);
                let target = UnitId::Bundle(n);
                let Some(mut unit) = self.units.remove(&from) else {
                    return;
                };
                unit.scheduled = None;
                unit.dirty = false;
                unit.multilink.join(now, &key);
                self.units.insert(target, unit);
                self.bundles.insert(bundle, n);
                self.bundles_made += 1;
                self.bundled.insert(key, n);
                info!("link {key:#x}: Multilink bundle {n}");
                self.touch(target);
            }
            _ => {
                if let Some(unit) = self.units.get_mut(&from) {
                    unit.multilink.join(now, &key);
                }
                self.touch(from);
            }
        }
    }
}
