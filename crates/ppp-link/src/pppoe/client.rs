//! [`PppoeClient`]: discovery, then a PPP link over the session.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use ppp_auth::SecretToken;
use ppp_core::{CloseReason, Machine, Random};
use ppp_frame::Protocol;
use pppoe_discovery::{
    Client, ClientConfig, ClientSession, ClientSessionEnd, DiscoveryEvent, DiscoveryFailure,
    MacAddr,
};
use tracing::debug;

use super::{
    ETHERTYPE_DISCOVERY, ETHERTYPE_SESSION, MAX_CLIENT_QUEUE, encapsulate_all, ethertype,
    push_bounded, session_link_config,
};
use crate::auth::SecretEntry;
use crate::{AuthError, Datagram, DownReason, Link, LinkConfig, LinkError, LinkEvent, Phase};

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
