//! PPP over Ethernet, sans-IO: discovery and the PPP link of each session, composed.
//!
//! [`PppoeClient`] runs a `pppoe_discovery::Client` and, once the PADS arrives, a [`Link`] with
//! sync framing over the session; [`PppoeServer`] runs a `pppoe_discovery::AccessConcentrator`
//! and one [`Link`] per session. Both take and give whole Ethernet frames, so any transport (an
//! AF_PACKET socket, a simulated segment) can carry them.
//!
//! The server is built for many sessions: every input touches only the sessions it concerns
//! (a frame its session, a PADI none), deadlines wait in a heap so [`PppoeServer::poll_timeout`]
//! is O(1) and a timeout wakes only the sessions that are due, sessions are found by id in a
//! hash table, and every session shares one configuration.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppp_auth::SecretToken;
use ppp_core::{CloseReason, Machine, Random};
use ppp_frame::Protocol;
use ppp_ipcp::Ipcp;
use pppoe_discovery::{
    AcConfig, AcEvent, AcSession, AcSessionEnd, AccessConcentrator, Client, ClientConfig,
    ClientSession, ClientSessionEnd, DiscoveryEvent, DiscoveryFailure, MacAddr, SessionMtu,
};
use tracing::debug;

use crate::auth::SecretEntry;
use crate::{
    AuthError, Datagram, DownReason, Framing, Link, LinkConfig, LinkError, LinkEvent, Phase,
};

/// The Ethernet type of PPPoE discovery frames.
const ETHERTYPE_DISCOVERY: u16 = 0x8863;
/// The Ethernet type of PPPoE session frames.
const ETHERTYPE_SESSION: u16 = 0x8864;
/// Events and datagrams a client keeps waiting at most; beyond, the oldest are dropped.
const MAX_CLIENT_QUEUE: usize = 4096;

fn ethertype(frame: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]))
}

fn push_bounded<T>(queue: &mut VecDeque<T>, item: T, limit: usize) -> bool {
    let dropped = queue.len() >= limit;
    if dropped {
        queue.pop_front();
    }
    queue.push_back(item);
    dropped
}

/// The link configuration for a session: sync framing, and an MRU that fits the session.
fn session_link_config(template: &LinkConfig, mtu: SessionMtu) -> LinkConfig {
    let mut config = template.clone();
    config.framing = Framing::Sync;
    config.headroom = pppoe_discovery::wire::HEADER_LEN;
    config.lcp.mru = config.lcp.mru.min(mtu.ppp_mtu);
    config.lcp.max_mru = config.lcp.max_mru.min(mtu.ppp_mtu);
    config.lcp.mtu = Some(config.lcp.mtu.unwrap_or(mtu.ppp_mtu).min(mtu.ppp_mtu));
    config
}

/// Moves a link's output into Ethernet frames for a session: the link leaves room for the
/// headers in front of each frame (see [`session_link_config`]), filled here in place. Frames
/// beyond `limit` queued are dropped and counted.
fn encapsulate_all(
    link: &mut Link,
    dst: MacAddr,
    src: MacAddr,
    session_id: u16,
    out: &mut VecDeque<Vec<u8>>,
    limit: usize,
    dropped: &mut u64,
) {
    while let Some(mut frame) = link.poll_transmit() {
        if out.len() >= limit {
            *dropped += 1;
            continue;
        }
        match pppoe_discovery::write_session_header(&mut frame, dst, src, session_id) {
            Ok(()) => out.push_back(frame),
            Err(error) => debug!("session {session_id:#06x}: frame not sent: {error}"),
        }
    }
}

/// Why a PPPoE client's session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PppoeDown {
    /// Discovery found no session.
    Discovery(DiscoveryFailure),
    /// The session ended in discovery (a PADT from the access concentrator).
    Session(ClientSessionEnd),
    /// PPP went down on the session.
    Link(DownReason),
    /// We closed before a session existed.
    Closed(CloseReason),
}

impl fmt::Display for PppoeDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PppoeDown::Discovery(failure) => write!(f, "discovery failed: {failure}"),
            PppoeDown::Session(end) => write!(f, "session ended: {end}"),
            PppoeDown::Link(reason) => write!(f, "{reason}"),
            PppoeDown::Closed(reason) => write!(f, "closed: {reason}"),
        }
    }
}

/// Where a PPPoE client stands, in the words of RouterOS's `monitor`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PppoeClientState {
    /// Not started, or stopped.
    Idle,
    /// Looking for an access concentrator (PADI/PADR).
    Dialing,
    /// The session exists and LCP is negotiating.
    Establishing,
    /// Authenticating.
    VerifyingPassword,
    /// Authenticated; the NCPs are negotiating.
    Negotiating,
    /// IPCP (or IPv6CP) is up: traffic flows.
    Connected,
    /// The session ended; why.
    Disconnected(PppoeDown),
}

impl fmt::Display for PppoeClientState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PppoeClientState::Idle => f.write_str("idle"),
            PppoeClientState::Dialing => f.write_str("dialing"),
            PppoeClientState::Establishing => f.write_str("establishing"),
            PppoeClientState::VerifyingPassword => f.write_str("verifying password..."),
            PppoeClientState::Negotiating => f.write_str("negotiating"),
            PppoeClientState::Connected => f.write_str("connected"),
            PppoeClientState::Disconnected(reason) => write!(f, "disconnected: {reason}"),
        }
    }
}

/// What a [`PppoeClient`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PppoeClientEvent {
    /// From discovery: session up, PADT, failure, scan results.
    Discovery(DiscoveryEvent),
    /// From the PPP link of the session.
    Link(LinkEvent),
    /// The client is done (discovery failed, or the session ended and its PADT was sent).
    Down {
        /// Why.
        reason: PppoeDown,
    },
}

/// A PPPoE client: discovery, then a PPP link over the session.
///
/// ```
/// use std::time::Instant;
/// use ppp_link::pppoe::{PppoeClient, PppoeClientState, PppoeServer};
/// use ppp_link::{LinkConfig, Machine, Random};
/// use pppoe_discovery::{AcConfig, ClientConfig, MacAddr};
///
/// let mut client_link = LinkConfig::pppoe();
/// client_link.lcp.allow.clear(); // no authentication in this example
/// let mut ac_link = LinkConfig::pppoe();
/// ac_link.ipcp = Some(ppp_ipcp::IpcpConfig {
///     remote_address: Some("192.0.2.10".parse().unwrap()),
///     ..ppp_ipcp::IpcpConfig::server("192.0.2.1".parse().unwrap(), [None, None])
/// });
/// let mut client = PppoeClient::new(
///     ClientConfig::default(),
///     client_link,
///     MacAddr([2, 0, 0, 0, 0, 1]),
///     Random::seeded(1), // programs: Random::from_os()
/// );
/// let mut server = PppoeServer::new(
///     AcConfig::default(),
///     ac_link,
///     MacAddr([2, 0, 0, 0, 0, 2]),
///     Random::seeded(2),
/// );
/// let now = Instant::now();
/// client.open(now);
/// // One Ethernet segment in memory: frames go across until both sides are quiet.
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
///     while server.poll_event().is_some() {}
///     if !moved {
///         break;
///     }
/// }
/// assert_eq!(client.state(), &PppoeClientState::Connected);
/// assert_eq!(server.session_count(), 1);
/// ```
pub struct PppoeClient {
    discovery: Client,
    mac: MacAddr,
    template: LinkConfig,
    random: Random,
    link: Option<Link>,
    session: Option<ClientSession>,
    state: PppoeClientState,
    closing: Option<CloseReason>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<PppoeClientEvent>,
}

impl PppoeClient {
    /// A client on an interface with address `mac`; `link` is the PPP configuration (its framing
    /// is forced to sync and its MRU to what the session allows). Host-Uniq, magic numbers and
    /// challenges come from `random`.
    pub fn new(discovery: ClientConfig, link: LinkConfig, mac: MacAddr, random: Random) -> Self {
        PppoeClient {
            discovery: Client::new(discovery, mac, random.clone()),
            mac,
            template: link,
            random,
            link: None,
            session: None,
            state: PppoeClientState::Idle,
            closing: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Starts discovery.
    pub fn open(&mut self, now: Instant) {
        self.state = PppoeClientState::Dialing;
        self.closing = None;
        self.discovery.open(now);
        self.process(now);
    }

    /// Collects every access concentrator and service answering a PADI within `window`
    /// (reported as a `ScanComplete` discovery event).
    pub fn scan(&mut self, now: Instant, window: Duration) {
        self.discovery.scan(now, window);
        self.process(now);
    }

    /// Ends the session: LCP Terminate, then PADT.
    pub fn close(&mut self, now: Instant, reason: CloseReason) {
        self.closing = Some(reason.clone());
        match self.link.as_mut() {
            Some(link) if link.phase() != Phase::Dead => link.close(now, reason),
            _ => {
                self.discovery.close(now, reason.clone());
                self.finish(PppoeDown::Closed(reason));
            }
        }
        self.process(now);
    }

    /// An Ethernet frame arrived (discovery or session; others are ignored).
    pub fn handle_input(&mut self, now: Instant, frame: &[u8]) {
        match ethertype(frame) {
            Some(ETHERTYPE_DISCOVERY) => self.discovery.handle_input(now, frame),
            Some(ETHERTYPE_SESSION) => {
                let (Some(session), Some(link)) = (&self.session, self.link.as_mut()) else {
                    return;
                };
                match pppoe_discovery::decapsulate(frame) {
                    Ok(s)
                        if s.session_id == session.session_id
                            && s.src == session.ac_mac
                            && s.dst == self.mac =>
                    {
                        link.handle_frame(now, s.protocol, s.payload);
                    }
                    Ok(_) => {}
                    Err(error) => debug!("dropped a session frame: {error}"),
                }
            }
            _ => {}
        }
        self.process(now);
    }

    /// The time from [`poll_timeout`](Self::poll_timeout) has come. A spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.discovery.poll_timeout().is_some_and(|t| t <= now) {
            self.discovery.handle_timeout(now);
        }
        if let Some(link) = self.link.as_mut()
            && link.poll_timeout().is_some_and(|t| t <= now)
        {
            link.handle_timeout(now);
        }
        self.process(now);
    }

    /// The answer to the link's `SecretNeeded` (when we authenticate the access concentrator
    /// and no secrets table is configured).
    ///
    /// # Errors
    ///
    /// As [`Link::provide_secret`]; [`AuthError::NoSecretRequest`] without a session.
    pub fn provide_secret(
        &mut self,
        now: Instant,
        token: SecretToken,
        entry: Option<SecretEntry>,
    ) -> Result<(), AuthError> {
        let link = self.link.as_mut().ok_or(AuthError::NoSecretRequest)?;
        let result = link.provide_secret(now, token, entry);
        self.process(now);
        result
    }

    /// Sends an IPv4 datagram over the session.
    ///
    /// # Errors
    ///
    /// As [`Link::send_ipv4`]; [`LinkError::NotReady`] without a session.
    pub fn send_ipv4(&mut self, now: Instant, packet: &[u8]) -> Result<(), LinkError> {
        let link = self
            .link
            .as_mut()
            .ok_or(LinkError::NotReady(Protocol::Ipv4))?;
        link.send_ipv4(now, packet)?;
        self.process(now);
        Ok(())
    }

    /// Sends an IPv6 datagram over the session.
    ///
    /// # Errors
    ///
    /// As [`Link::send_ipv6`]; [`LinkError::NotReady`] without a session.
    pub fn send_ipv6(&mut self, now: Instant, packet: &[u8]) -> Result<(), LinkError> {
        let link = self
            .link
            .as_mut()
            .ok_or(LinkError::NotReady(Protocol::Ipv6))?;
        link.send_ipv6(now, packet)?;
        self.process(now);
        Ok(())
    }

    /// Next Ethernet frame to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// Next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<PppoeClientEvent> {
        self.events.pop_front()
    }

    /// Next datagram received over the session.
    #[must_use]
    pub fn poll_datagram(&mut self) -> Option<Datagram> {
        self.link.as_mut()?.poll_datagram()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.discovery.poll_timeout(),
            self.link.as_ref().and_then(Link::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Where the client stands.
    pub fn state(&self) -> &PppoeClientState {
        &self.state
    }

    /// The session (AC name and address, service, id, sizes), once the PADS arrived.
    pub fn session(&self) -> Option<&ClientSession> {
        self.session.as_ref()
    }

    /// The PPP link of the session.
    pub fn link(&self) -> Option<&Link> {
        self.link.as_ref()
    }

    /// The PPP link of the session, to capture its packets or change it before the Network
    /// phase.
    pub fn link_mut(&mut self) -> Option<&mut Link> {
        self.link.as_mut()
    }

    /// The discovery machine (statistics, Host-Uniq).
    pub fn discovery(&self) -> &Client {
        &self.discovery
    }

    /// Our Ethernet address.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    fn finish(&mut self, reason: PppoeDown) {
        if !matches!(self.state, PppoeClientState::Disconnected(_)) {
            self.state = PppoeClientState::Disconnected(reason.clone());
            push_bounded(
                &mut self.events,
                PppoeClientEvent::Down { reason },
                MAX_CLIENT_QUEUE,
            );
        }
    }

    fn process(&mut self, now: Instant) {
        for _ in 0..16 {
            let mut busy = false;
            while let Some(event) = self.discovery.poll_event() {
                busy = true;
                self.on_discovery(now, &event);
                push_bounded(
                    &mut self.events,
                    PppoeClientEvent::Discovery(event),
                    MAX_CLIENT_QUEUE,
                );
            }
            let mut link_events = Vec::new();
            if let (Some(link), Some(session)) = (self.link.as_mut(), &self.session) {
                let mut dropped = 0;
                encapsulate_all(
                    link,
                    session.ac_mac,
                    self.mac,
                    session.session_id,
                    &mut self.transmit,
                    usize::MAX,
                    &mut dropped,
                );
                while let Some(event) = link.poll_event() {
                    link_events.push(event);
                }
            }
            for event in link_events {
                busy = true;
                self.on_link(now, &event);
                push_bounded(
                    &mut self.events,
                    PppoeClientEvent::Link(event),
                    MAX_CLIENT_QUEUE,
                );
            }
            while let Some(frame) = self.discovery.poll_transmit() {
                busy = true;
                self.transmit.push_back(frame);
            }
            if !busy {
                break;
            }
        }
    }

    fn on_discovery(&mut self, now: Instant, event: &DiscoveryEvent) {
        match event {
            DiscoveryEvent::SessionUp { .. } => {
                let Some(session) = self.discovery.session().cloned() else {
                    return;
                };
                let config = session_link_config(&self.template, session.mtu);
                let mut link = Link::new(config, self.random.clone());
                link.open(now);
                link.up(now);
                self.session = Some(session);
                self.link = Some(link);
                self.state = PppoeClientState::Establishing;
            }
            DiscoveryEvent::SessionDown { reason, .. } => {
                // The session is gone (PADT): the lower layer is down for good, so LCP goes
                // from Starting to Initial instead of waiting there for an Up that never comes.
                // Nothing is sent (RFC 1661: Down, then Close in Starting is tlf/Initial).
                if let Some(link) = self.link.as_mut() {
                    link.down(now);
                    link.close(now, CloseReason::Other(reason.to_string()));
                }
                self.finish(PppoeDown::Session(reason.clone()));
            }
            DiscoveryEvent::Failed { reason } => self.finish(PppoeDown::Discovery(reason.clone())),
            _ => {}
        }
    }

    fn on_link(&mut self, now: Instant, event: &LinkEvent) {
        if matches!(self.state, PppoeClientState::Disconnected(_)) {
            // The session already ended (PADT): the link's last events (its phase dropping to
            // Establish, then Dead) must not make the client look alive again.
            return;
        }
        match event {
            LinkEvent::Phase(Phase::Establish) => self.state = PppoeClientState::Establishing,
            LinkEvent::Phase(Phase::Authenticate) => {
                self.state = PppoeClientState::VerifyingPassword;
            }
            LinkEvent::Phase(Phase::Network) => self.state = PppoeClientState::Negotiating,
            LinkEvent::IpUp { .. } | LinkEvent::Ipv6Up { .. } => {
                self.state = PppoeClientState::Connected;
            }
            LinkEvent::LinkDown { reason } => {
                // PPP is over: end the session with a PADT, as pppd's rp-pppoe plugin does.
                let close = match reason {
                    DownReason::Closed(reason) => reason.clone(),
                    other => CloseReason::Other(other.to_string()),
                };
                self.discovery.close(now, close);
                self.closing = None;
                self.finish(PppoeDown::Link(reason.clone()));
            }
            _ => {}
        }
    }
}

impl Machine for PppoeClient {
    type Event = PppoeClientEvent;

    fn handle_input(&mut self, now: Instant, input: &[u8]) {
        PppoeClient::handle_input(self, now, input);
    }

    fn handle_timeout(&mut self, now: Instant) {
        PppoeClient::handle_timeout(self, now);
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        PppoeClient::poll_transmit(self)
    }

    fn poll_event(&mut self) -> Option<PppoeClientEvent> {
        PppoeClient::poll_event(self)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        PppoeClient::poll_timeout(self)
    }
}

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
    /// From the PPP link of a session (a `SecretNeeded` to answer with
    /// [`PppoeServer::provide_secret`]).
    Link {
        /// The session.
        session_id: u16,
        /// What happened.
        event: LinkEvent,
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

/// A session of a [`PppoeServer`].
pub struct ServerSession {
    link: Link,
    client_mac: MacAddr,
    /// The deadline this session has an entry for in the timer heap.
    scheduled: Option<Instant>,
    /// Whether it is in the list of sessions to drain.
    dirty: bool,
}

impl ServerSession {
    /// The PPP link.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The client's Ethernet address.
    pub fn client_mac(&self) -> MacAddr {
        self.client_mac
    }
}

impl fmt::Debug for ServerSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSession")
            .field("client_mac", &self.client_mac)
            .field("link", &self.link)
            .finish_non_exhaustive()
    }
}

/// A PPPoE server (access concentrator): discovery and one PPP link per session.
///
/// Inputs: [`handle_input`](Self::handle_input) (every frame of Ethertype 0x8863 and 0x8864),
/// [`handle_timeout`](Self::handle_timeout), the answers [`provide_secret`](Self::provide_secret),
/// [`accept_session`](Self::accept_session) and [`reject_session`](Self::reject_session),
/// [`close_session`](Self::close_session), [`close`](Self::close). Outputs:
/// [`poll_transmit`](Self::poll_transmit), [`poll_event`](Self::poll_event),
/// [`poll_datagram`](Self::poll_datagram), [`poll_timeout`](Self::poll_timeout).
///
/// Cost: an input touches only its session (a PADI none), a timeout only the sessions due;
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
    timers: BinaryHeap<Reverse<(Instant, u16)>>,
    dirty: Vec<u16>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<PppoeServerEvent>,
    datagrams: VecDeque<(u16, Datagram)>,
    stats: ServerStats,
}

impl PppoeServer {
    /// A server on the interface with address `mac`; `link` is the PPP configuration of every
    /// session (its framing forced to sync, its MRU to what the session allows). Cookie keys,
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
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            datagrams: VecDeque::new(),
            stats: ServerStats::default(),
        }
    }

    /// Builds each new session's IPCP with `factory` (for address pools) instead of from the
    /// template's IPCP configuration.
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

    /// One session's link, to set its CCP or IPv6CP before the Network phase or capture its
    /// packets. What it does is sent on the next input or [`flush`](Self::flush).
    pub fn link_mut(&mut self, session_id: u16) -> Option<&mut Link> {
        let session = self.sessions.get_mut(&session_id)?;
        if !session.dirty {
            session.dirty = true;
            self.dirty.push(session_id);
        }
        Some(&mut session.link)
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
    /// As [`Link::provide_secret`]; [`AuthError::NoSecretRequest`] when the session is gone.
    pub fn provide_secret(
        &mut self,
        now: Instant,
        session_id: u16,
        token: SecretToken,
        entry: Option<SecretEntry>,
    ) -> Result<(), AuthError> {
        let session = self
            .sessions
            .get_mut(&session_id)
            .ok_or(AuthError::NoSecretRequest)?;
        let result = session.link.provide_secret(now, token, entry);
        self.touch(session_id);
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
                Ok(s) if s.dst == self.mac => match self.sessions.get_mut(&s.session_id) {
                    Some(session) if session.client_mac == s.src => {
                        session.link.handle_frame(now, s.protocol, s.payload);
                        self.touch(s.session_id);
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

    /// The time from [`poll_timeout`](Self::poll_timeout) has come: only the sessions due are
    /// woken. A spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.ac.poll_timeout().is_some_and(|t| t <= now) {
            self.ac.handle_timeout(now);
        }
        while let Some(&Reverse((at, session_id))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(session) = self.sessions.get_mut(&session_id) else {
                continue;
            };
            if session.scheduled != Some(at) {
                continue; // stale: the session was rescheduled since
            }
            session.scheduled = None;
            if session.link.poll_timeout().is_some_and(|t| t <= now) {
                session.link.handle_timeout(now);
            }
            self.touch(session_id);
        }
        self.process(now);
    }

    /// Sends an IPv4 datagram to a session's client.
    ///
    /// # Errors
    ///
    /// As [`Link::send_ipv4`]; [`LinkError::NotReady`] for an unknown session.
    pub fn send_ipv4(
        &mut self,
        now: Instant,
        session_id: u16,
        packet: &[u8],
    ) -> Result<(), LinkError> {
        let session = self
            .sessions
            .get_mut(&session_id)
            .ok_or(LinkError::NotReady(Protocol::Ipv4))?;
        session.link.send_ipv4(now, packet)?;
        self.touch(session_id);
        self.process(now);
        Ok(())
    }

    /// Sends an IPv6 datagram to a session's client.
    ///
    /// # Errors
    ///
    /// As [`Link::send_ipv6`]; [`LinkError::NotReady`] for an unknown session.
    pub fn send_ipv6(
        &mut self,
        now: Instant,
        session_id: u16,
        packet: &[u8],
    ) -> Result<(), LinkError> {
        let session = self
            .sessions
            .get_mut(&session_id)
            .ok_or(LinkError::NotReady(Protocol::Ipv6))?;
        session.link.send_ipv6(now, packet)?;
        self.touch(session_id);
        self.process(now);
        Ok(())
    }

    /// Ends a session: LCP Terminate, then PADT. A session requested but not yet accepted gets
    /// a refusal.
    pub fn close_session(&mut self, now: Instant, session_id: u16, reason: CloseReason) {
        match self.sessions.get_mut(&session_id) {
            Some(session) => {
                session.link.close(now, reason);
                self.touch(session_id);
            }
            None => {
                self.ac.close_session(now, session_id, reason);
            }
        }
        self.process(now);
    }

    /// Ends every session at once (an LCP Terminate-Request and a PADT to each, without
    /// waiting for answers) and stops answering discovery.
    pub fn close(&mut self, now: Instant, reason: CloseReason) {
        let ids: Vec<u16> = self.sessions.keys().copied().collect();
        for session_id in ids {
            if let Some(session) = self.sessions.get_mut(&session_id) {
                session.link.close(now, reason.clone());
                let client_mac = session.client_mac;
                encapsulate_all(
                    &mut session.link,
                    client_mac,
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

    /// Moves what sessions changed by [`link_mut`](Self::link_mut) want to send into the
    /// transmit queue.
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

    /// Next datagram received, with the session it came from.
    #[must_use]
    pub fn poll_datagram(&mut self) -> Option<(u16, Datagram)> {
        self.datagrams.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called. O(1); it may be
    /// early (a session rescheduled later), never late.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let sessions = self.timers.peek().map(|Reverse((at, _))| *at);
        match (sessions, self.ac.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Marks a session for draining in `process`.
    fn touch(&mut self, session_id: u16) {
        if let Some(session) = self.sessions.get_mut(&session_id)
            && !session.dirty
        {
            session.dirty = true;
            self.dirty.push(session_id);
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
            while let Some(session_id) = self.dirty.pop() {
                busy = true;
                self.drain_session(now, session_id);
            }
            if !busy {
                break;
            }
        }
    }

    /// Moves a session's frames, datagrams and events out, ends it if PPP is over, and keeps
    /// its timer entry current.
    fn drain_session(&mut self, now: Instant, session_id: u16) {
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return;
        };
        session.dirty = false;
        let client_mac = session.client_mac;
        encapsulate_all(
            &mut session.link,
            client_mac,
            self.mac,
            session_id,
            &mut self.transmit,
            self.limits.max_queued_frames,
            &mut self.stats.tx_dropped,
        );
        while let Some(datagram) = session.link.poll_datagram() {
            if push_bounded(
                &mut self.datagrams,
                (session_id, datagram),
                self.limits.max_queued_datagrams,
            ) {
                self.stats.datagrams_dropped += 1;
            }
        }
        let mut ended = None;
        while let Some(event) = session.link.poll_event() {
            if let LinkEvent::LinkDown { reason } = &event {
                ended = Some(reason.clone());
            }
            self.events
                .push_back(PppoeServerEvent::Link { session_id, event });
        }
        if let Some(reason) = ended {
            // PPP is over: send the PADT and forget the session.
            self.sessions.remove(&session_id);
            let close = match &reason {
                DownReason::Closed(reason) => reason.clone(),
                other => CloseReason::Other(other.to_string()),
            };
            self.ac.close_session(now, session_id, close);
            // The access concentrator's SessionDown for this close is ours: reported here.
            self.events.push_back(PppoeServerEvent::SessionDown {
                session_id,
                client_mac,
                reason: SessionEnd::Link(reason),
            });
            return;
        }
        let deadline = session.link.poll_timeout();
        if let Some(at) = deadline
            && session.scheduled.is_none_or(|scheduled| at < scheduled)
        {
            session.scheduled = Some(at);
            self.timers.push(Reverse((at, session_id)));
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
                let mut link = Link::with_shared_config(config, self.random.clone());
                if let Some(factory) = self.ipcp_factory.as_mut()
                    && let Some(record) = self.ac.session(*session_id)
                {
                    link.set_ipcp(factory(record));
                }
                link.open(now);
                link.up(now);
                self.sessions.insert(
                    *session_id,
                    ServerSession {
                        link,
                        client_mac: *client_mac,
                        scheduled: None,
                        dirty: false,
                    },
                );
                self.touch(*session_id);
            }
            AcEvent::SessionDown {
                session_id,
                client_mac,
                reason,
            } => {
                // A session we ended after PPP was over is already gone from our table.
                if let Some(mut session) = self.sessions.remove(session_id) {
                    session.link.down(now);
                    while let Some(event) = session.link.poll_event() {
                        self.events.push_back(PppoeServerEvent::Link {
                            session_id: *session_id,
                            event,
                        });
                    }
                    self.events.push_back(PppoeServerEvent::SessionDown {
                        session_id: *session_id,
                        client_mac: *client_mac,
                        reason: SessionEnd::Discovery(reason.clone()),
                    });
                }
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
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for PppoeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PppoeClient")
            .field("mac", &self.mac)
            .field("state", &self.state)
            .field("session", &self.session)
            .field("link", &self.link)
            .finish_non_exhaustive()
    }
}
