//! [`PppoeServer`]: an access concentrator, and above each session's link a network layer of
//! its own or a Multilink bundle's.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use ppp_auth::SecretToken;
use ppp_core::{CloseReason, Machine, Random};
use ppp_frame::Protocol;
use ppp_ipcp::Ipcp;
use ppp_mp::BundleKey;
use pppoe_discovery::{
    AcConfig, AcEvent, AcSession, AcSessionEnd, AccessConcentrator, MacAddr, SessionMtu,
};
use tracing::{debug, info};

use super::{
    ETHERTYPE_DISCOVERY, ETHERTYPE_SESSION, encapsulate, ethertype, push_bounded,
    session_link_config,
};
use crate::auth::SecretEntry;
use crate::{
    AuthError, Datagram, DownReason, LinkConfig, LinkControl, LinkError, LinkEvent, Multilink,
    MultilinkEvent,
};

/// Why a session of a [`PppoeServer`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEnd {
    /// PPP went down (the PADT followed).
    Link(DownReason),
    /// Discovery ended it (a PADT from the client, a newer session of the same host, a close
    /// before PPP ran).
    Discovery(AcSessionEnd),
}

impl fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionEnd::Link(reason) => write!(f, "{reason}"),
            SessionEnd::Discovery(end) => write!(f, "{end}"),
        }
    }
}

/// What carries a network layer (IPCP, IPv6CP, CCP, datagrams): one interface, as Linux's `pppN`
/// unit is for pppd.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnitId {
    /// A session's own network layer (no Multilink).
    Session(u16),
    /// A Multilink bundle (RFC 1990) of one or more sessions of the same peer; numbered from 1
    /// in the order bundles were made.
    Bundle(u32),
}

impl From<u16> for UnitId {
    fn from(session_id: u16) -> Self {
        UnitId::Session(session_id)
    }
}

impl fmt::Display for UnitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnitId::Session(id) => write!(f, "session {id:#06x}"),
            UnitId::Bundle(n) => write!(f, "bundle {n}"),
        }
    }
}

/// What a [`PppoeServer`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PppoeServerEvent {
    /// From the access concentrator's discovery (with [`AcConfig::accept_manually`], a
    /// `SessionRequested` to answer with [`PppoeServer::accept_session`] or
    /// [`PppoeServer::reject_session`]).
    Discovery(AcEvent),
    /// From the PPP link of a session: phases, LCP up, authentication (a `SecretNeeded` to
    /// answer with [`PppoeServer::provide_secret`]), link down.
    Link {
        /// The session.
        session_id: u16,
        /// What happened.
        event: LinkEvent,
    },
    /// From a network layer: `IpUp`, `IpDown`, `Ipv6Up`, `Ipv6Down`, `CcpUp`, `CcpDown`,
    /// `NcpFinished`.
    Network {
        /// The session's own, or a bundle's.
        unit: UnitId,
        /// What happened.
        event: LinkEvent,
    },
    /// A session joined a Multilink bundle (the first one makes it).
    Joined {
        /// The bundle.
        unit: UnitId,
        /// The session.
        session_id: u16,
        /// Sessions in the bundle now.
        members: usize,
    },
    /// A session left a Multilink bundle.
    Left {
        /// The bundle.
        unit: UnitId,
        /// The session.
        session_id: u16,
        /// Sessions still in the bundle.
        members: usize,
    },
    /// A session is gone (PPP ended and PADT sent, or PADT received).
    SessionDown {
        /// The session.
        session_id: u16,
        /// The client's Ethernet address.
        client_mac: MacAddr,
        /// Why.
        reason: SessionEnd,
    },
    /// A network layer is gone with its last session: a session's own after
    /// [`SessionDown`](Self::SessionDown), a bundle's when its last member left.
    UnitDown {
        /// Which.
        unit: UnitId,
    },
}

/// Builds each session's IPCP (for address pools), from its discovery record.
pub type IpcpFactory = Box<dyn FnMut(&AcSession) -> Ipcp + Send>;

/// Counters of a [`PppoeServer`] beyond those of its access concentrator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Session frames dropped because the transmit queue was full (the owner did not drain
    /// it); the links' timers send control packets again.
    pub tx_dropped: u64,
    /// Received datagrams dropped because the datagram queue was full.
    pub datagrams_dropped: u64,
    /// Session frames for sessions we do not have.
    pub unknown_session_frames: u64,
    /// Multilink bundles made.
    pub bundles_made: u64,
}

/// How much a [`PppoeServer`] queues before it drops (transmit, datagrams) or stops taking new
/// sessions (the access concentrator's own limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// Ethernet frames waiting for `poll_transmit`.
    pub max_queued_frames: usize,
    /// Datagrams waiting for `poll_datagram`.
    pub max_queued_datagrams: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_queued_frames: 65_536,
            max_queued_datagrams: 65_536,
        }
    }
}

/// A session of a [`PppoeServer`]: who its client is and which network layer carries its
/// traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerSession {
    client_mac: MacAddr,
    unit: UnitId,
}

impl ServerSession {
    /// The client's Ethernet address.
    pub fn client_mac(&self) -> MacAddr {
        self.client_mac
    }

    /// The network layer carrying the session's traffic: its own, or its bundle's.
    pub fn unit(&self) -> UnitId {
        self.unit
    }
}

/// A network layer and the sessions below it.
struct Unit {
    multilink: Multilink<u16>,
    /// The deadline this unit has an entry for in the timer heap.
    scheduled: Option<Instant>,
    /// Whether it is in the list of units to drain.
    dirty: bool,
}

/// A PPPoE server (access concentrator): discovery, a PPP link per session, and above each
/// session a network layer: its own, or with Multilink (an MRRU in the link configuration) a
/// bundle shared by the sessions of the same peer (authenticated name and Endpoint
/// Discriminator; RFC 1990 §5.1.3), so bonded lines carry one flow.
///
/// Inputs: [`handle_input`](Self::handle_input) (every frame of Ethertype 0x8863 and 0x8864),
/// [`handle_timeout`](Self::handle_timeout), the answers [`provide_secret`](Self::provide_secret),
/// [`accept_session`](Self::accept_session) and [`reject_session`](Self::reject_session),
/// [`close_session`](Self::close_session), [`close`](Self::close), datagrams
/// ([`send_ipv4`](Self::send_ipv4), [`send_ipv6`](Self::send_ipv6)) for a [`UnitId`]. Outputs:
/// [`poll_transmit`](Self::poll_transmit), [`poll_event`](Self::poll_event),
/// [`poll_datagram`](Self::poll_datagram) (with its [`UnitId`]),
/// [`poll_timeout`](Self::poll_timeout).
///
/// Cost: an input touches only its session's unit (a PADI none), a timeout only the units due;
/// `poll_timeout` is O(1). Queues: transmitted frames and received datagrams are bounded
/// ([`ServerLimits`]; what is dropped is counted in [`ServerStats`]); events are not dropped,
/// and there are at most a few per session between two drains.
///
/// An access concentrator that checks each client before granting its session and looks up
/// CHAP secrets itself (as it would ask RADIUS), with one client in memory:
///
/// ```
/// use std::time::Instant;
/// use ppp_link::auth::{AuthProtocol, ClientCredentials, SecretEntry};
/// use ppp_link::pppoe::{PppoeClient, PppoeClientState, PppoeServer, PppoeServerEvent};
/// use ppp_link::{LinkConfig, LinkEvent, Machine, Random};
/// use pppoe_discovery::{AcConfig, AcEvent, ClientConfig, MacAddr};
///
/// let mut ac_link = LinkConfig::pppoe();
/// ac_link.lcp.require = vec![AuthProtocol::ChapMd5];
/// ac_link.ipcp = Some(ppp_ipcp::IpcpConfig {
///     remote_address: Some("192.0.2.10".parse().unwrap()),
///     ..ppp_ipcp::IpcpConfig::server("192.0.2.1".parse().unwrap(), [None, None])
/// });
/// let ac_config = AcConfig { accept_manually: true, ..AcConfig::default() };
/// let mut server =
///     PppoeServer::new(ac_config, ac_link, MacAddr([2, 0, 0, 0, 0, 2]), Random::seeded(2));
///
/// let mut client_link = LinkConfig::pppoe();
/// client_link.auth.credentials = Some(ClientCredentials::password("alice", "wonderland"));
/// let mut client = PppoeClient::new(
///     ClientConfig::default(),
///     client_link,
///     MacAddr([2, 0, 0, 0, 0, 1]),
///     Random::seeded(1), // programs and adapters: Random::from_os()
/// );
///
/// let now = Instant::now();
/// client.open(now);
/// let mut granted = Vec::new();
/// loop {
///     let mut moved = false;
///     while let Some(frame) = client.poll_transmit() {
///         server.handle_input(now, &frame);
///         moved = true;
///     }
///     while let Some(frame) = server.poll_transmit() {
///         client.handle_input(now, &frame);
///         moved = true;
///     }
///     while client.poll_event().is_some() {}
///     while let Some(event) = server.poll_event() {
///         moved = true;
///         match event {
///             // The owner decides; here every client with a locally administered address.
///             PppoeServerEvent::Discovery(AcEvent::SessionRequested {
///                 session_id, client_mac, ..
///             }) => {
///                 if client_mac.0[0] & 0x02 != 0 {
///                     server.accept_session(now, session_id);
///                     granted.push(session_id);
///                 } else {
///                     server.reject_session(now, session_id, "not on this access concentrator");
///                 }
///             }
///             PppoeServerEvent::Link { session_id, event: LinkEvent::SecretNeeded(request) } => {
///                 let entry = (request.client == "alice").then(|| SecretEntry::new("wonderland"));
///                 server.provide_secret(now, session_id, request.token, entry).unwrap();
///             }
///             _ => {}
///         }
///     }
///     if !moved {
///         break;
///     }
/// }
/// assert_eq!(client.state(), &PppoeClientState::Connected);
/// assert_eq!(granted.len(), 1);
/// assert_eq!(server.session_count(), 1);
/// ```
///
/// [`PppoeClient`] has the same without checks.
pub struct PppoeServer {
    ac: AccessConcentrator,
    mac: MacAddr,
    template: LinkConfig,
    /// One shared configuration per session MTU (almost always one).
    configs: Vec<(u16, Arc<LinkConfig>)>,
    random: Random,
    ipcp_factory: Option<IpcpFactory>,
    limits: ServerLimits,
    sessions: HashMap<u16, ServerSession>,
    units: HashMap<UnitId, Unit>,
    /// Which bundle each peer's sessions join.
    bundles: HashMap<BundleKey, u32>,
    next_bundle: u32,
    timers: BinaryHeap<Reverse<(Instant, UnitId)>>,
    dirty: Vec<UnitId>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<PppoeServerEvent>,
    datagrams: VecDeque<(UnitId, Datagram)>,
    stats: ServerStats,
}

impl PppoeServer {
    /// A server on the interface with address `mac`; `link` is the PPP configuration of every
    /// session (its framing forced to sync, its MRU to what the session allows; with
    /// `link.lcp.mrru` set, sessions of the same peer form Multilink bundles). Cookie keys,
    /// session ids, magic numbers and challenges come from `random`.
    pub fn new(ac: AcConfig, link: LinkConfig, mac: MacAddr, random: Random) -> Self {
        PppoeServer {
            ac: AccessConcentrator::new(ac, mac, random.clone()),
            mac,
            template: link,
            configs: Vec::new(),
            random,
            ipcp_factory: None,
            limits: ServerLimits::default(),
            sessions: HashMap::new(),
            units: HashMap::new(),
            bundles: HashMap::new(),
            next_bundle: 1,
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            datagrams: VecDeque::new(),
            stats: ServerStats::default(),
        }
    }

    /// Builds each new session's IPCP with `factory` (for address pools) instead of from the
    /// template's IPCP configuration. A session that joins an existing bundle drops its own
    /// (a pool address goes back).
    pub fn set_ipcp_factory(&mut self, factory: IpcpFactory) {
        self.ipcp_factory = Some(factory);
    }

    /// Changes the queue limits.
    pub fn set_limits(&mut self, limits: ServerLimits) {
        self.limits = limits;
    }

    /// The sessions, in no particular order.
    pub fn sessions(&self) -> impl Iterator<Item = (u16, &ServerSession)> {
        self.sessions.iter().map(|(&id, session)| (id, session))
    }

    /// The number of sessions with a PPP link.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// One session.
    pub fn session(&self, session_id: u16) -> Option<&ServerSession> {
        self.sessions.get(&session_id)
    }

    /// One session's link: framing, LCP, authentication (phase, peer name, counters).
    pub fn session_link(&self, session_id: u16) -> Option<&LinkControl> {
        let session = self.sessions.get(&session_id)?;
        self.units.get(&session.unit)?.multilink.member(&session_id)
    }

    /// The network layers, in no particular order.
    pub fn units(&self) -> impl Iterator<Item = (UnitId, &Multilink<u16>)> {
        self.units.iter().map(|(&id, unit)| (id, &unit.multilink))
    }

    /// One network layer and its sessions: addresses, MTU, CCP, members.
    pub fn unit(&self, unit: UnitId) -> Option<&Multilink<u16>> {
        self.units.get(&unit).map(|u| &u.multilink)
    }

    /// The network layer a session's traffic goes through.
    pub fn session_unit(&self, session_id: u16) -> Option<UnitId> {
        self.sessions.get(&session_id).map(|s| s.unit)
    }

    /// The interface MTU of a unit (see [`Multilink::mtu`]).
    pub fn mtu(&self, unit: UnitId) -> Option<u16> {
        self.unit(unit)?.mtu()
    }

    /// A session's network layer, to set its IPCP, CCP or IPv6CP (from the user's profile)
    /// before the Network phase. What it does is sent on the next input or
    /// [`flush`](Self::flush).
    pub fn session_unit_mut(&mut self, session_id: u16) -> Option<&mut Multilink<u16>> {
        let unit = self.sessions.get(&session_id)?.unit;
        self.touch(unit);
        self.units.get_mut(&unit).map(|u| &mut u.multilink)
    }

    /// The discovery machine (statistics, configuration, the session records).
    pub fn access_concentrator(&self) -> &AccessConcentrator {
        &self.ac
    }

    /// Counters.
    pub fn stats(&self) -> ServerStats {
        self.stats
    }

    /// Our Ethernet address.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// The answer to a session's `SecretNeeded` with its token.
    ///
    /// # Errors
    ///
    /// As [`Link::provide_secret`](crate::Link::provide_secret); [`AuthError::NoSecretRequest`]
    /// when the session is gone.
    pub fn provide_secret(
        &mut self,
        now: Instant,
        session_id: u16,
        token: SecretToken,
        entry: Option<SecretEntry>,
    ) -> Result<(), AuthError> {
        let unit = self
            .sessions
            .get(&session_id)
            .ok_or(AuthError::NoSecretRequest)?
            .unit;
        let result = self
            .units
            .get_mut(&unit)
            .ok_or(AuthError::NoSecretRequest)?
            .multilink
            .provide_secret(now, &session_id, token, entry);
        self.touch(unit);
        self.process(now);
        result
    }

    /// Grants a session requested with [`AcConfig::accept_manually`]: its PADS goes out and its
    /// link starts. False if there is no such request.
    pub fn accept_session(&mut self, now: Instant, session_id: u16) -> bool {
        let accepted = self.ac.accept_session(now, session_id);
        self.process(now);
        accepted
    }

    /// Refuses a session requested with [`AcConfig::accept_manually`] (a PADS with
    /// Generic-Error `message`). False if there is no such request.
    pub fn reject_session(&mut self, now: Instant, session_id: u16, message: &str) -> bool {
        let rejected = self.ac.reject_session(now, session_id, message);
        self.process(now);
        rejected
    }

    /// An Ethernet frame arrived.
    pub fn handle_input(&mut self, now: Instant, frame: &[u8]) {
        match ethertype(frame) {
            Some(ETHERTYPE_DISCOVERY) => self.ac.handle_input(now, frame),
            Some(ETHERTYPE_SESSION) => match pppoe_discovery::decapsulate(frame) {
                Ok(s) if s.dst == self.mac => match self.sessions.get(&s.session_id) {
                    Some(session) if session.client_mac == s.src => {
                        let unit = session.unit;
                        if let Some(u) = self.units.get_mut(&unit) {
                            u.multilink
                                .handle_frame(now, &s.session_id, s.protocol, s.payload);
                        }
                        self.touch(unit);
                    }
                    _ => {
                        // After a restart, clients learn at once that their session is gone.
                        self.stats.unknown_session_frames += 1;
                        self.ac.unknown_session(now, s.src, s.session_id);
                    }
                },
                Ok(_) => {}
                Err(error) => debug!("dropped a session frame: {error}"),
            },
            _ => {}
        }
        self.process(now);
    }

    /// The time from [`poll_timeout`](Self::poll_timeout) has come: only the units due are
    /// woken. A spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.ac.poll_timeout().is_some_and(|t| t <= now) {
            self.ac.handle_timeout(now);
        }
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
            if unit.multilink.poll_timeout().is_some_and(|t| t <= now) {
                unit.multilink.handle_timeout(now);
            }
            self.touch(unit_id);
        }
        self.process(now);
    }

    /// Sends an IPv4 datagram through a network layer (a session's, or a bundle's).
    ///
    /// # Errors
    ///
    /// As [`Multilink::send_ipv4`]; [`LinkError::NotReady`] for an unknown unit.
    pub fn send_ipv4(
        &mut self,
        now: Instant,
        unit: impl Into<UnitId>,
        packet: &[u8],
    ) -> Result<(), LinkError> {
        let unit = unit.into();
        self.units
            .get_mut(&unit)
            .ok_or(LinkError::NotReady(Protocol::Ipv4))?
            .multilink
            .send_ipv4(now, packet)?;
        self.touch(unit);
        self.process(now);
        Ok(())
    }

    /// Sends an IPv6 datagram through a network layer (a session's, or a bundle's).
    ///
    /// # Errors
    ///
    /// As [`Multilink::send_ipv6`]; [`LinkError::NotReady`] for an unknown unit.
    pub fn send_ipv6(
        &mut self,
        now: Instant,
        unit: impl Into<UnitId>,
        packet: &[u8],
    ) -> Result<(), LinkError> {
        let unit = unit.into();
        self.units
            .get_mut(&unit)
            .ok_or(LinkError::NotReady(Protocol::Ipv6))?
            .multilink
            .send_ipv6(now, packet)?;
        self.touch(unit);
        self.process(now);
        Ok(())
    }

    /// Ends a session: LCP Terminate, then PADT (its bundle carries on over the others). A
    /// session requested but not yet accepted gets a refusal.
    pub fn close_session(&mut self, now: Instant, session_id: u16, reason: CloseReason) {
        match self.sessions.get(&session_id).map(|s| s.unit) {
            Some(unit) => {
                if let Some(u) = self.units.get_mut(&unit) {
                    u.multilink.close(now, &session_id, reason);
                }
                self.touch(unit);
            }
            None => {
                self.ac.close_session(now, session_id, reason);
            }
        }
        self.process(now);
    }

    /// Ends every session of a unit (a whole bundle).
    pub fn close_unit(&mut self, now: Instant, unit: UnitId, reason: CloseReason) {
        if let Some(u) = self.units.get_mut(&unit) {
            u.multilink.close_all(now, reason);
            self.touch(unit);
        }
        self.process(now);
    }

    /// Ends every session at once (an LCP Terminate-Request and a PADT to each, without
    /// waiting for answers) and stops answering discovery.
    pub fn close(&mut self, now: Instant, reason: CloseReason) {
        let units: Vec<UnitId> = self.units.keys().copied().collect();
        for unit_id in units {
            let Some(unit) = self.units.get_mut(&unit_id) else {
                continue;
            };
            unit.multilink.close_all(now, reason.clone());
            while let Some((session_id, frame)) = unit.multilink.poll_transmit() {
                if let Some(session) = self.sessions.get(&session_id) {
                    encapsulate(
                        frame,
                        session.client_mac,
                        self.mac,
                        session_id,
                        &mut self.transmit,
                        usize::MAX,
                        &mut self.stats.tx_dropped,
                    );
                }
            }
        }
        self.ac.close(now, reason);
        self.process(now);
    }

    /// Moves what units changed by [`session_unit_mut`](Self::session_unit_mut) want to send
    /// into the transmit queue.
    pub fn flush(&mut self, now: Instant) {
        self.process(now);
    }

    /// Next Ethernet frame to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// Next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<PppoeServerEvent> {
        self.events.pop_front()
    }

    /// Next datagram received, with the network layer it came through.
    #[must_use]
    pub fn poll_datagram(&mut self) -> Option<(UnitId, Datagram)> {
        self.datagrams.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called. O(1); it may be
    /// early (a unit rescheduled later), never late.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let units = self.timers.peek().map(|Reverse((at, _))| *at);
        match (units, self.ac.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Marks a unit for draining in `process`.
    fn touch(&mut self, unit_id: UnitId) {
        if let Some(unit) = self.units.get_mut(&unit_id)
            && !unit.dirty
        {
            unit.dirty = true;
            self.dirty.push(unit_id);
        }
    }

    fn process(&mut self, now: Instant) {
        loop {
            let mut busy = false;
            while let Some(event) = self.ac.poll_event() {
                busy = true;
                self.on_discovery(now, &event);
                self.events.push_back(PppoeServerEvent::Discovery(event));
            }
            // The PADS goes out before the new session's first LCP packet. While our queue is
            // full the access concentrator keeps its frames (and refuses new sessions).
            while self.transmit.len() < self.limits.max_queued_frames {
                let Some(frame) = self.ac.poll_transmit() else {
                    break;
                };
                busy = true;
                self.transmit.push_back(frame);
            }
            while let Some(unit_id) = self.dirty.pop() {
                busy = true;
                self.drain_unit(now, unit_id);
            }
            if !busy {
                break;
            }
        }
    }

    /// Moves a unit's frames, datagrams and events out, ends the sessions whose PPP is over,
    /// places sessions ready for the Network phase, and keeps the unit's timer entry current.
    fn drain_unit(&mut self, now: Instant, unit_id: UnitId) {
        let Some(unit) = self.units.get_mut(&unit_id) else {
            return;
        };
        unit.dirty = false;
        while let Some((session_id, frame)) = unit.multilink.poll_transmit() {
            if let Some(session) = self.sessions.get(&session_id) {
                encapsulate(
                    frame,
                    session.client_mac,
                    self.mac,
                    session_id,
                    &mut self.transmit,
                    self.limits.max_queued_frames,
                    &mut self.stats.tx_dropped,
                );
            }
        }
        while let Some(datagram) = unit.multilink.poll_datagram() {
            if push_bounded(
                &mut self.datagrams,
                (unit_id, datagram),
                self.limits.max_queued_datagrams,
            ) {
                self.stats.datagrams_dropped += 1;
            }
        }
        let mut ended = Vec::new();
        let mut ready = Vec::new();
        while let Some(event) = unit.multilink.poll_event() {
            match event {
                MultilinkEvent::Member { member, event } => {
                    if let LinkEvent::LinkDown { reason } = &event {
                        ended.push((member, reason.clone()));
                    }
                    self.events.push_back(PppoeServerEvent::Link {
                        session_id: member,
                        event,
                    });
                }
                MultilinkEvent::MemberReady {
                    member,
                    bundle,
                    multilink,
                } => ready.push((member, bundle, multilink)),
                MultilinkEvent::Joined { member, members }
                    if matches!(unit_id, UnitId::Bundle(_)) =>
                {
                    self.events.push_back(PppoeServerEvent::Joined {
                        unit: unit_id,
                        session_id: member,
                        members,
                    });
                }
                MultilinkEvent::Left { member, members }
                    if matches!(unit_id, UnitId::Bundle(_)) =>
                {
                    self.events.push_back(PppoeServerEvent::Left {
                        unit: unit_id,
                        session_id: member,
                        members,
                    });
                }
                MultilinkEvent::Network(event) => {
                    self.events.push_back(PppoeServerEvent::Network {
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
        for (session_id, reason) in ended {
            self.end_session(now, unit_id, session_id, reason);
        }
        for (session_id, key, multilink) in ready {
            self.place(now, unit_id, session_id, key, multilink);
        }
        let Some(unit) = self.units.get_mut(&unit_id) else {
            return;
        };
        if unit.multilink.members().next().is_none() {
            // Its last session is gone.
            self.units.remove(&unit_id);
            if let UnitId::Bundle(n) = unit_id {
                self.bundles.retain(|_, bundle| *bundle != n);
            }
            self.events
                .push_back(PppoeServerEvent::UnitDown { unit: unit_id });
            return;
        }
        if unit.dirty {
            return; // drained again before this pass ends
        }
        let deadline = unit.multilink.poll_timeout();
        if let Some(at) = deadline
            && unit.scheduled.is_none_or(|scheduled| at < scheduled)
        {
            unit.scheduled = Some(at);
            self.timers.push(Reverse((at, unit_id)));
        }
    }

    /// PPP is over on a session: its link leaves its unit, the PADT goes out and the session
    /// is forgotten.
    fn end_session(&mut self, now: Instant, unit_id: UnitId, session_id: u16, reason: DownReason) {
        if let Some(unit) = self.units.get_mut(&unit_id) {
            unit.multilink.remove_member(now, &session_id);
        }
        self.touch(unit_id);
        let Some(session) = self.sessions.remove(&session_id) else {
            return;
        };
        let close = match &reason {
            DownReason::Closed(reason) => reason.clone(),
            other => CloseReason::Other(other.to_string()),
        };
        self.ac.close_session(now, session_id, close);
        // The access concentrator's SessionDown for this close is ours: reported here.
        self.events.push_back(PppoeServerEvent::SessionDown {
            session_id,
            client_mac: session.client_mac,
            reason: SessionEnd::Link(reason),
        });
    }

    /// A session finished authentication: it carries its own network layer, joins its peer's
    /// bundle, or makes a new bundle.
    fn place(
        &mut self,
        now: Instant,
        from: UnitId,
        session_id: u16,
        key: BundleKey,
        multilink: bool,
    ) {
        let existing = self
            .bundles
            .get(&key)
            .map(|&n| UnitId::Bundle(n))
            .filter(|unit| *unit != from && self.units.contains_key(unit));
        match (multilink, existing) {
            (true, Some(bundle)) => {
                // Into the peer's bundle: its own network layer (and pool address) goes.
                let Some(control) = self
                    .units
                    .get_mut(&from)
                    .and_then(|u| u.multilink.remove_member(now, &session_id))
                else {
                    return;
                };
                if let Some(target) = self.units.get_mut(&bundle) {
                    target.multilink.add_member(now, session_id, control);
                }
                if let Some(session) = self.sessions.get_mut(&session_id) {
                    session.unit = bundle;
                }
                self.touch(from);
                self.touch(bundle);
            }
            (true, None) if matches!(from, UnitId::Session(_)) => {
                // A new bundle: the session's unit becomes it.
                let n = self.next_bundle;
                self.next_bundle = self.next_bundle.wrapping_add(1).max(1);
                let bundle = UnitId::Bundle(n);
                let Some(mut unit) = self.units.remove(&from) else {
                    return;
                };
                unit.scheduled = None;
                unit.dirty = false;
                unit.multilink.join(now, &session_id);
                self.units.insert(bundle, unit);
                self.bundles.insert(key, n);
                self.stats.bundles_made += 1;
                if let Some(session) = self.sessions.get_mut(&session_id) {
                    session.unit = bundle;
                }
                info!("session {session_id:#06x}: Multilink bundle {n}");
                self.touch(bundle);
            }
            _ => {
                if let Some(unit) = self.units.get_mut(&from) {
                    unit.multilink.join(now, &session_id);
                }
                self.touch(from);
            }
        }
    }

    /// The configuration of sessions with `mtu`, shared between them.
    fn config_for(&mut self, mtu: SessionMtu) -> Arc<LinkConfig> {
        if let Some((_, config)) = self.configs.iter().find(|(m, _)| *m == mtu.ppp_mtu) {
            return config.clone();
        }
        let config = Arc::new(session_link_config(&self.template, mtu));
        self.configs.push((mtu.ppp_mtu, config.clone()));
        config
    }

    fn on_discovery(&mut self, now: Instant, event: &AcEvent) {
        match event {
            AcEvent::SessionUp {
                session_id,
                client_mac,
                max_payload,
                ..
            } => {
                let config = self.config_for(SessionMtu::for_session(*max_payload));
                let mut multilink = Multilink::new(config.clone(), self.random.clone());
                // Where a session's traffic goes is decided here once it authenticated.
                multilink.hold_members(true);
                if let Some(factory) = self.ipcp_factory.as_mut()
                    && let Some(record) = self.ac.session(*session_id)
                {
                    multilink.set_ipcp(factory(record));
                }
                let unit = UnitId::Session(*session_id);
                multilink.add_member(
                    now,
                    *session_id,
                    LinkControl::new(config, self.random.clone()),
                );
                multilink.open(now, session_id);
                multilink.up(now, session_id);
                self.sessions.insert(
                    *session_id,
                    ServerSession {
                        client_mac: *client_mac,
                        unit,
                    },
                );
                self.units.insert(
                    unit,
                    Unit {
                        multilink,
                        scheduled: None,
                        dirty: false,
                    },
                );
                self.touch(unit);
            }
            AcEvent::SessionDown {
                session_id,
                client_mac,
                reason,
            } => {
                // A session we ended after PPP was over is already gone from our table.
                let Some(session) = self.sessions.remove(session_id) else {
                    return;
                };
                let unit_id = session.unit;
                if let Some(unit) = self.units.get_mut(&unit_id) {
                    unit.multilink.down(now, session_id);
                    // Its link's last events (LinkDown) are reported before it goes.
                    let mut events = Vec::new();
                    while let Some(event) = unit.multilink.poll_event() {
                        events.push(event);
                    }
                    unit.multilink.remove_member(now, session_id);
                    for event in events {
                        match event {
                            MultilinkEvent::Member { member, event } => {
                                self.events.push_back(PppoeServerEvent::Link {
                                    session_id: member,
                                    event,
                                });
                            }
                            MultilinkEvent::Network(event) => {
                                self.events.push_back(PppoeServerEvent::Network {
                                    unit: unit_id,
                                    event,
                                });
                            }
                            MultilinkEvent::Left { member, members }
                                if matches!(unit_id, UnitId::Bundle(_)) =>
                            {
                                self.events.push_back(PppoeServerEvent::Left {
                                    unit: unit_id,
                                    session_id: member,
                                    members,
                                });
                            }
                            _ => {}
                        }
                    }
                }
                self.events.push_back(PppoeServerEvent::SessionDown {
                    session_id: *session_id,
                    client_mac: *client_mac,
                    reason: SessionEnd::Discovery(reason.clone()),
                });
                self.touch(unit_id);
            }
            _ => {}
        }
    }
}

impl Machine for PppoeServer {
    type Event = PppoeServerEvent;

    fn handle_input(&mut self, now: Instant, input: &[u8]) {
        PppoeServer::handle_input(self, now, input);
    }

    fn handle_timeout(&mut self, now: Instant) {
        PppoeServer::handle_timeout(self, now);
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        PppoeServer::poll_transmit(self)
    }

    fn poll_event(&mut self) -> Option<PppoeServerEvent> {
        PppoeServer::poll_event(self)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        PppoeServer::poll_timeout(self)
    }
}

impl fmt::Debug for PppoeServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PppoeServer")
            .field("mac", &self.mac)
            .field("sessions", &self.sessions.len())
            .field("units", &self.units.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}
