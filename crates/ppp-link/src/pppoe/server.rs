//! [`PppoeServer`]: an access concentrator and a [`LinkTable`] of its sessions: above each
//! session's link a network layer of its own or a Multilink bundle's.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use ppp_auth::SecretToken;
use ppp_core::{CloseReason, Machine, Random};
use ppp_ipcp::Ipcp;
use pppoe_discovery::{
    AcConfig, AcEvent, AcSession, AcSessionEnd, AccessConcentrator, MacAddr, SessionMtu,
};
use tracing::debug;

use super::{
    ETHERTYPE_DISCOVERY, ETHERTYPE_SESSION, encapsulate, ethertype, push_bounded,
    session_link_config,
};
use crate::auth::{SecretEntry, Verdict};
use crate::table::{LinkTable, TableEvent};
use crate::{
    AuthError, Datagram, DownReason, LinkConfig, LinkControl, LinkError, LinkEvent, Multilink,
};

/// A network layer of a [`PppoeServer`]: a session's own ([`UnitId::Link`] with the session
/// id), or a Multilink bundle's ([`UnitId::Bundle`]).
pub type UnitId = crate::table::UnitId<u16>;

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

/// A session of a [`PppoeServer`]: who its client is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerSession {
    client_mac: MacAddr,
}

impl ServerSession {
    /// The client's Ethernet address.
    pub fn client_mac(&self) -> MacAddr {
        self.client_mac
    }
}

/// A PPPoE server (access concentrator): discovery, a PPP link per session, and above each
/// session a network layer: its own, or with Multilink (an MRRU in the link configuration) a
/// bundle shared by the sessions of the same peer (authenticated name and Endpoint
/// Discriminator; RFC 1990 §5.1.3), so bonded lines carry one flow. The sessions live in a
/// [`LinkTable`].
///
/// Inputs: [`handle_input`](Self::handle_input) (every frame of Ethertype 0x8863 and 0x8864),
/// [`handle_timeout`](Self::handle_timeout), the answers [`provide_secret`](Self::provide_secret),
/// [`accept_session`](Self::accept_session) and [`reject_session`](Self::reject_session),
/// [`close_session`](Self::close_session), [`close_unit`](Self::close_unit),
/// [`close`](Self::close), datagrams ([`send_ipv4`](Self::send_ipv4),
/// [`send_ipv6`](Self::send_ipv6)) for a [`UnitId`]. Outputs:
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
/// [`PppoeClient`](super::PppoeClient) has the same without checks.
pub struct PppoeServer {
    ac: AccessConcentrator,
    mac: MacAddr,
    template: LinkConfig,
    /// One shared configuration per session MTU (almost always one).
    configs: Vec<(u16, Arc<LinkConfig>)>,
    ipcp_factory: Option<IpcpFactory>,
    limits: ServerLimits,
    table: LinkTable<u16>,
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
        let discovery = AccessConcentrator::new(ac, mac, random.clone());
        Self::with_discovery(discovery, link, mac, random)
    }

    /// One of several servers sharing an interface, one per worker thread: its discovery is
    /// member `member` of an [`AcGroup`](pppoe_discovery::AcGroup) (shared cookies, session
    /// count and id space; see there for which frames go to which member). A Multilink bundle
    /// joins sessions of one server only, so the caller should steer a peer's links to one
    /// member (by MAC address, as the group does).
    pub fn member(
        ac: AcConfig,
        link: LinkConfig,
        mac: MacAddr,
        random: Random,
        member: pppoe_discovery::AcMember,
    ) -> Self {
        let discovery = AccessConcentrator::member(ac, mac, random.clone(), member);
        Self::with_discovery(discovery, link, mac, random)
    }

    fn with_discovery(
        ac: AccessConcentrator,
        link: LinkConfig,
        mac: MacAddr,
        random: Random,
    ) -> Self {
        PppoeServer {
            ac,
            mac,
            template: link,
            configs: Vec::new(),
            ipcp_factory: None,
            limits: ServerLimits::default(),
            table: LinkTable::new(random),
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

    /// The sessions with a PPP link, in no particular order.
    pub fn sessions(&self) -> impl Iterator<Item = (u16, ServerSession)> + '_ {
        self.table
            .keys()
            .filter_map(|id| self.session(id).map(|session| (id, session)))
    }

    /// The number of sessions with a PPP link.
    pub fn session_count(&self) -> usize {
        self.table.len()
    }

    /// One session with a PPP link.
    pub fn session(&self, session_id: u16) -> Option<ServerSession> {
        self.table.link(session_id)?;
        self.client_of(session_id)
    }

    /// One session's link: framing, LCP, authentication (phase, peer name, counters).
    pub fn session_link(&self, session_id: u16) -> Option<&LinkControl> {
        self.table.link(session_id)
    }

    /// The network layer a session's traffic goes through.
    pub fn session_unit(&self, session_id: u16) -> Option<UnitId> {
        self.table.unit_of(session_id)
    }

    /// The network layers, in no particular order.
    pub fn units(&self) -> impl Iterator<Item = (UnitId, &Multilink<u16>)> {
        self.table.units()
    }

    /// One network layer and its sessions: addresses, MTU, CCP, members.
    pub fn unit(&self, unit: UnitId) -> Option<&Multilink<u16>> {
        self.table.unit(unit)
    }

    /// The interface MTU of a unit (see [`Multilink::mtu`]).
    pub fn mtu(&self, unit: UnitId) -> Option<u16> {
        self.table.mtu(unit)
    }

    /// A session's network layer, to set its IPCP, CCP or IPv6CP (from the user's profile)
    /// before the Network phase. What it does is sent on the next input or
    /// [`flush`](Self::flush).
    pub fn session_unit_mut(&mut self, session_id: u16) -> Option<&mut Multilink<u16>> {
        self.table.unit_of_mut(session_id)
    }

    /// The sessions and their network layers.
    pub fn table(&self) -> &LinkTable<u16> {
        &self.table
    }

    /// The discovery machine (statistics, configuration, the session records).
    pub fn access_concentrator(&self) -> &AccessConcentrator {
        &self.ac
    }

    /// Counters.
    pub fn stats(&self) -> ServerStats {
        ServerStats {
            bundles_made: self.table.bundles_made(),
            ..self.stats
        }
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
        let result = self.table.provide_secret(now, session_id, token, entry);
        self.process(now);
        result
    }

    /// The answer to a session's `VerifyNeeded` with its token (RADIUS).
    ///
    /// # Errors
    ///
    /// As [`Link::provide_verdict`](crate::Link::provide_verdict);
    /// [`AuthError::NoVerifyRequest`] when the session is gone.
    pub fn provide_verdict(
        &mut self,
        now: Instant,
        session_id: u16,
        token: SecretToken,
        verdict: Verdict,
    ) -> Result<(), AuthError> {
        let result = self.table.provide_verdict(now, session_id, token, verdict);
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
                Ok(s) if s.dst == self.mac => match self.session(s.session_id) {
                    Some(session) if session.client_mac == s.src => {
                        self.table
                            .handle_frame(now, s.session_id, s.protocol, s.payload);
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
        if self.table.poll_timeout().is_some_and(|t| t <= now) {
            self.table.handle_timeout(now);
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
        unit: UnitId,
        packet: &[u8],
    ) -> Result<(), LinkError> {
        self.table.send_ipv4(now, unit, packet)?;
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
        unit: UnitId,
        packet: &[u8],
    ) -> Result<(), LinkError> {
        self.table.send_ipv6(now, unit, packet)?;
        self.process(now);
        Ok(())
    }

    /// Ends a session: LCP Terminate, then PADT (its bundle carries on over the others). A
    /// session requested but not yet accepted gets a refusal.
    pub fn close_session(&mut self, now: Instant, session_id: u16, reason: CloseReason) {
        if self.table.link(session_id).is_some() {
            self.table.close_link(now, session_id, reason);
        } else {
            self.ac.close_session(now, session_id, reason);
        }
        self.process(now);
    }

    /// Ends every session of a unit (a whole bundle).
    pub fn close_unit(&mut self, now: Instant, unit: UnitId, reason: CloseReason) {
        self.table.close_unit(now, unit, reason);
        self.process(now);
    }

    /// Ends every session at once (an LCP Terminate-Request and a PADT to each, without
    /// waiting for answers) and stops answering discovery.
    pub fn close(&mut self, now: Instant, reason: CloseReason) {
        self.table.close_all(now, reason.clone());
        // The Terminate-Requests go out whatever the queue limit.
        while let Some((session_id, frame)) = self.table.poll_transmit() {
            if let Some(session) = self.client_of(session_id) {
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
        self.ac.close(now, reason);
        self.process(now);
    }

    /// Moves what units changed by [`session_unit_mut`](Self::session_unit_mut) want to send
    /// into the transmit queue.
    pub fn flush(&mut self, now: Instant) {
        self.table.flush(now);
        self.process(now);
    }

    /// Next Ethernet frame to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let frame = self.transmit.pop_front();
        if frame.is_none() {
            release_burst(&mut self.transmit);
        }
        frame
    }

    /// Next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<PppoeServerEvent> {
        let event = self.events.pop_front();
        if event.is_none() {
            release_burst(&mut self.events);
        }
        event
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
        match (self.table.poll_timeout(), self.ac.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whom a session is with, from the access concentrator's record (while discovery still
    /// has it).
    fn client_of(&self, session_id: u16) -> Option<ServerSession> {
        self.ac.session(session_id).map(|record| ServerSession {
            client_mac: record.client_mac(),
        })
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
            while let Some((session_id, frame)) = self.table.poll_transmit() {
                busy = true;
                if let Some(session) = self.client_of(session_id) {
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
            while let Some(datagram) = self.table.poll_datagram() {
                busy = true;
                if push_bounded(
                    &mut self.datagrams,
                    datagram,
                    self.limits.max_queued_datagrams,
                ) {
                    self.stats.datagrams_dropped += 1;
                }
            }
            while let Some(event) = self.table.poll_event() {
                busy = true;
                self.on_table(now, event);
            }
            if !busy {
                break;
            }
        }
    }

    fn on_table(&mut self, now: Instant, event: TableEvent<u16>) {
        let event = match event {
            TableEvent::Link { key, event } => PppoeServerEvent::Link {
                session_id: key,
                event,
            },
            TableEvent::Network { unit, event } => PppoeServerEvent::Network { unit, event },
            TableEvent::Joined { unit, key, members } => PppoeServerEvent::Joined {
                unit,
                session_id: key,
                members,
            },
            TableEvent::Left { unit, key, members } => PppoeServerEvent::Left {
                unit,
                session_id: key,
                members,
            },
            TableEvent::UnitDown { unit } => PppoeServerEvent::UnitDown { unit },
            TableEvent::Removed { key, reason } => {
                // PPP is over: send the PADT and forget the session (unless discovery ended
                // it first, and reported it).
                let Some(session) = self.client_of(key) else {
                    return;
                };
                let close = match &reason {
                    DownReason::Closed(reason) => reason.clone(),
                    other => CloseReason::Other(other.to_string()),
                };
                self.ac.close_session(now, key, close);
                // The access concentrator's SessionDown for this close is ours: reported here.
                PppoeServerEvent::SessionDown {
                    session_id: key,
                    client_mac: session.client_mac,
                    reason: SessionEnd::Link(reason),
                }
            }
        };
        self.events.push_back(event);
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
                let ipcp = match (self.ipcp_factory.as_mut(), self.ac.session(*session_id)) {
                    (Some(factory), Some(record)) => Some(factory(record)),
                    _ => None,
                };
                debug!("session {session_id:#06x} for {client_mac}");
                self.table.add_link(now, *session_id, config, ipcp);
            }
            AcEvent::SessionDown {
                session_id,
                client_mac,
                reason,
            } => {
                // A session we ended after PPP was over is already gone from our table.
                if self.table.link(*session_id).is_none() {
                    return;
                }
                // Its link's last events (LinkDown, Removed) are reported first.
                self.table.down(now, *session_id);
                while let Some(event) = self.table.poll_event() {
                    self.on_table(now, event);
                }
                self.events.push_back(PppoeServerEvent::SessionDown {
                    session_id: *session_id,
                    client_mac: *client_mac,
                    reason: SessionEnd::Discovery(reason.clone()),
                });
            }
            _ => {}
        }
    }
}

/// An empty queue that grew for a burst (a reconnect avalanche) gives its memory back.
fn release_burst<T>(queue: &mut VecDeque<T>) {
    if queue.capacity() > 1024 {
        *queue = VecDeque::new();
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
            .field("sessions", &self.table.len())
            .field("table", &self.table)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}
