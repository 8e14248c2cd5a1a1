//! PPP over Ethernet, sans-IO: discovery and the PPP link of each session, composed.
//!
//! [`PppoeClient`] runs a `pppoe_discovery::Client` and, once the PADS arrives, a [`Link`] with
//! sync framing over the session; [`PppoeServer`] runs a `pppoe_discovery::AccessConcentrator`
//! and one [`Link`] per session. Both take and give whole Ethernet frames, so any transport (an
//! AF_PACKET socket, a simulated segment) can carry them.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use ppp_frame::Protocol;
use ppp_ipcp::Ipcp;
use pppoe_discovery::{
    AcConfig, AcEvent, AcSession, AccessConcentrator, Client, ClientConfig, ClientEvent,
    ClientSession, MacAddr, SessionMtu,
};
use tracing::debug;

use crate::auth::SecretEntry;
use crate::{Datagram, Framing, Link, LinkConfig, LinkError, LinkEvent, Phase};

/// The Ethernet type of PPPoE discovery frames.
const ETHERTYPE_DISCOVERY: u16 = 0x8863;
/// The Ethernet type of PPPoE session frames.
const ETHERTYPE_SESSION: u16 = 0x8864;
/// Events and datagrams kept waiting at most; beyond, the oldest are dropped.
const MAX_QUEUE: usize = 4096;

fn ethertype(frame: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]))
}

fn push_bounded<T>(queue: &mut VecDeque<T>, item: T) {
    if queue.len() >= MAX_QUEUE {
        queue.pop_front();
    }
    queue.push_back(item);
}

/// The link configuration for a session: sync framing, and an MRU that fits the session.
fn session_link_config(template: &LinkConfig, mtu: SessionMtu, seed: u64) -> LinkConfig {
    let mut config = template.clone();
    config.framing = Framing::Sync;
    config.headroom = pppoe_discovery::wire::HEADER_LEN;
    config.seed = seed;
    config.lcp.mru = config.lcp.mru.min(mtu.ppp_mtu);
    config.lcp.max_mru = config.lcp.max_mru.min(mtu.ppp_mtu);
    config.lcp.mtu = Some(config.lcp.mtu.unwrap_or(mtu.ppp_mtu).min(mtu.ppp_mtu));
    config
}

/// Moves a link's output into Ethernet frames for a session: the link leaves room for the
/// headers in front of each frame (see [`session_link_config`]), filled here in place.
fn encapsulate_all(
    link: &mut Link,
    dst: MacAddr,
    src: MacAddr,
    session_id: u16,
    out: &mut VecDeque<Vec<u8>>,
) {
    while let Some(mut frame) = link.poll_transmit() {
        match pppoe_discovery::write_session_header(&mut frame, dst, src, session_id) {
            Ok(()) => out.push_back(frame),
            Err(error) => debug!("session {session_id:#06x}: frame not sent: {error}"),
        }
    }
}

/// Where a PPPoE client stands, in the words of RouterOS's `monitor`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientStatus {
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
    Disconnected(String),
}

impl std::fmt::Display for ClientStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientStatus::Idle => f.write_str("idle"),
            ClientStatus::Dialing => f.write_str("dialing"),
            ClientStatus::Establishing => f.write_str("establishing"),
            ClientStatus::VerifyingPassword => f.write_str("verifying password..."),
            ClientStatus::Negotiating => f.write_str("negotiating"),
            ClientStatus::Connected => f.write_str("connected"),
            ClientStatus::Disconnected(reason) => write!(f, "disconnected: {reason}"),
        }
    }
}

/// What a [`PppoeClient`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PppoeClientEvent {
    /// From discovery: session up, PADT, failure, scan results.
    Discovery(ClientEvent),
    /// From the PPP link of the session.
    Link(LinkEvent),
    /// The client is done (discovery failed, or the session ended and its PADT was sent).
    Down {
        /// Why.
        reason: String,
    },
}

/// A PPPoE client: discovery, then a PPP link over the session.
pub struct PppoeClient {
    discovery: Client,
    mac: MacAddr,
    template: LinkConfig,
    link: Option<Link>,
    session: Option<ClientSession>,
    status: ClientStatus,
    closing: Option<String>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<PppoeClientEvent>,
    seed: u64,
}

impl PppoeClient {
    /// A client on an interface with address `mac`; `link` is the PPP configuration (its framing
    /// is forced to sync and its MRU to what the session allows). Randomness (Host-Uniq, magic
    /// numbers, challenges) derives from `link.seed`.
    pub fn new(discovery: ClientConfig, link: LinkConfig, mac: MacAddr) -> Self {
        let seed = link.seed;
        PppoeClient {
            discovery: Client::with_seed(discovery, mac, seed ^ 0xD15C_0FE7),
            mac,
            template: link,
            link: None,
            session: None,
            status: ClientStatus::Idle,
            closing: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            seed,
        }
    }

    /// Starts discovery.
    pub fn start(&mut self, now: Instant) {
        self.status = ClientStatus::Dialing;
        self.closing = None;
        self.discovery.start(now);
        self.process(now);
    }

    /// Collects every access concentrator and service answering a PADI within `window`
    /// (reported as a `ScanComplete` discovery event).
    pub fn scan(&mut self, now: Instant, window: Duration) {
        self.discovery.scan(now, window);
        self.process(now);
    }

    /// Ends the session: LCP Terminate, then PADT.
    pub fn close(&mut self, now: Instant, reason: &str) {
        self.closing = Some(reason.to_owned());
        match self.link.as_mut() {
            Some(link) if link.phase() != Phase::Dead => link.close(now, reason),
            _ => {
                self.discovery.close(now);
                self.finish(reason.to_owned());
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

    /// The time from [`poll_timeout`](Self::poll_timeout) has come.
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
    pub fn status(&self) -> &ClientStatus {
        &self.status
    }

    /// The session (AC name and address, service, id, sizes), once the PADS arrived.
    pub fn session(&self) -> Option<&ClientSession> {
        self.session.as_ref()
    }

    /// The PPP link of the session.
    pub fn link(&self) -> Option<&Link> {
        self.link.as_ref()
    }

    /// The PPP link of the session, to answer its secret requests or capture its packets.
    pub fn link_mut(&mut self) -> Option<&mut Link> {
        self.link.as_mut()
    }

    /// Our Ethernet address.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    fn finish(&mut self, reason: String) {
        if !matches!(self.status, ClientStatus::Disconnected(_)) {
            self.status = ClientStatus::Disconnected(reason.clone());
            push_bounded(&mut self.events, PppoeClientEvent::Down { reason });
        }
    }

    fn process(&mut self, now: Instant) {
        for _ in 0..16 {
            let mut busy = false;
            while let Some(event) = self.discovery.poll_event() {
                busy = true;
                self.on_discovery(now, &event);
                push_bounded(&mut self.events, PppoeClientEvent::Discovery(event));
            }
            let mut link_events = Vec::new();
            if let (Some(link), Some(session)) = (self.link.as_mut(), &self.session) {
                encapsulate_all(
                    link,
                    session.ac_mac,
                    self.mac,
                    session.session_id,
                    &mut self.transmit,
                );
                while let Some(event) = link.poll_event() {
                    link_events.push(event);
                }
            }
            for event in link_events {
                busy = true;
                self.on_link(now, &event);
                push_bounded(&mut self.events, PppoeClientEvent::Link(event));
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

    fn on_discovery(&mut self, now: Instant, event: &ClientEvent) {
        match event {
            ClientEvent::SessionUp { .. } => {
                let Some(session) = self.discovery.session().cloned() else {
                    return;
                };
                let seed = self.seed.wrapping_add(u64::from(session.session_id));
                let mut link = Link::new(session_link_config(&self.template, session.mtu, seed));
                link.open(now);
                link.up(now);
                self.session = Some(session);
                self.link = Some(link);
                self.status = ClientStatus::Establishing;
            }
            ClientEvent::SessionDown { reason, .. } => {
                let reason = format!("session ended: {reason:?}");
                // The session is gone (PADT): the lower layer is down for good, so LCP goes
                // from Starting to Initial instead of waiting there for an Up that never comes.
                // Nothing is sent (RFC 1661: Down, then Close in Starting is tlf/Initial).
                if let Some(link) = self.link.as_mut() {
                    link.down(now);
                    link.close(now, &reason);
                }
                self.finish(reason);
            }
            ClientEvent::Failed { reason } => self.finish(format!("discovery failed: {reason:?}")),
            _ => {}
        }
    }

    fn on_link(&mut self, now: Instant, event: &LinkEvent) {
        if matches!(self.status, ClientStatus::Disconnected(_)) {
            // The session already ended (PADT): the link's last events (its phase dropping to
            // Establish, then Dead) must not make the client look alive again.
            return;
        }
        match event {
            LinkEvent::Phase(Phase::Establish) => self.status = ClientStatus::Establishing,
            LinkEvent::Phase(Phase::Authenticate) => self.status = ClientStatus::VerifyingPassword,
            LinkEvent::Phase(Phase::Network) => self.status = ClientStatus::Negotiating,
            LinkEvent::IpUp { .. } | LinkEvent::Ipv6Up { .. } => {
                self.status = ClientStatus::Connected;
            }
            LinkEvent::LinkDown { reason } => {
                // PPP is over: end the session with a PADT, as pppd's rp-pppoe plugin does.
                self.discovery.close(now);
                let reason = self.closing.take().unwrap_or_else(|| reason.clone());
                self.finish(reason);
            }
            _ => {}
        }
    }
}

/// A session of a [`PppoeServer`], for listing.
#[derive(Debug)]
pub struct ServerSession {
    /// The discovery side: client address, service, Host-Uniq, start time.
    pub discovery: AcSession,
    /// The PPP link.
    pub link: Link,
}

/// What a [`PppoeServer`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PppoeServerEvent {
    /// From the access concentrator's discovery.
    Discovery(AcEvent),
    /// From the PPP link of a session.
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
        reason: String,
    },
}

/// Makes the IPCP of each new session (its address pool, local address, DNS servers).
pub type IpcpFactory = Box<dyn FnMut(&AcSession) -> Ipcp + Send>;

/// A PPPoE access concentrator: discovery, and one PPP link per session.
///
/// `poll_timeout` looks at every session: fine for hundreds of sessions; an ISP-scale server
/// wants a timer wheel here.
pub struct PppoeServer {
    ac: AccessConcentrator,
    mac: MacAddr,
    template: LinkConfig,
    ipcp_factory: Option<IpcpFactory>,
    sessions: BTreeMap<u16, ServerSession>,
    closing: BTreeMap<u16, String>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<PppoeServerEvent>,
    datagrams: VecDeque<(u16, Datagram)>,
    seed: u64,
}

impl PppoeServer {
    /// An access concentrator with address `mac`; each session's link starts from `link` (its
    /// framing forced to sync, its MRU to what the session allows).
    pub fn new(ac: AcConfig, link: LinkConfig, mac: MacAddr, now: Instant) -> Self {
        let seed = link.seed;
        PppoeServer {
            ac: AccessConcentrator::with_seed(ac, mac, now, seed ^ 0xACAC_ACAC),
            mac,
            template: link,
            ipcp_factory: None,
            sessions: BTreeMap::new(),
            closing: BTreeMap::new(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            datagrams: VecDeque::new(),
            seed,
        }
    }

    /// Builds each new session's IPCP with `factory` (for address pools) instead of from the
    /// template's IPCP configuration.
    pub fn set_ipcp_factory(&mut self, factory: IpcpFactory) {
        self.ipcp_factory = Some(factory);
    }

    /// The sessions.
    pub fn sessions(&self) -> impl Iterator<Item = &ServerSession> {
        self.sessions.values()
    }

    /// One session.
    pub fn session(&self, session_id: u16) -> Option<&ServerSession> {
        self.sessions.get(&session_id)
    }

    /// One session's link, to answer its secret request, set its IPCP or capture its packets.
    pub fn link_mut(&mut self, session_id: u16) -> Option<&mut Link> {
        self.sessions.get_mut(&session_id).map(|s| &mut s.link)
    }

    /// The discovery machine (statistics, configuration).
    pub fn access_concentrator(&self) -> &AccessConcentrator {
        &self.ac
    }

    /// Our Ethernet address.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// The answer to a session's `SecretNeeded`.
    pub fn provide_secret(&mut self, now: Instant, session_id: u16, entry: Option<SecretEntry>) {
        if let Some(session) = self.sessions.get_mut(&session_id) {
            session.link.provide_secret(now, entry);
        }
        self.process(now);
    }

    /// An Ethernet frame arrived.
    pub fn handle_input(&mut self, now: Instant, frame: &[u8]) {
        match ethertype(frame) {
            Some(ETHERTYPE_DISCOVERY) => self.ac.handle_input(now, frame),
            Some(ETHERTYPE_SESSION) => match pppoe_discovery::decapsulate(frame) {
                Ok(s) if s.dst == self.mac => match self.sessions.get_mut(&s.session_id) {
                    Some(session) if session.discovery.client_mac == s.src => {
                        session.link.handle_frame(now, s.protocol, s.payload);
                    }
                    _ => debug!("session frame for unknown session {:#06x}", s.session_id),
                },
                Ok(_) => {}
                Err(error) => debug!("dropped a session frame: {error}"),
            },
            _ => {}
        }
        self.process(now);
    }

    /// The time from [`poll_timeout`](Self::poll_timeout) has come.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.ac.poll_timeout().is_some_and(|t| t <= now) {
            self.ac.handle_timeout(now);
        }
        for session in self.sessions.values_mut() {
            if session.link.poll_timeout().is_some_and(|t| t <= now) {
                session.link.handle_timeout(now);
            }
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
        self.process(now);
        Ok(())
    }

    /// Ends a session: LCP Terminate, then PADT.
    pub fn close_session(&mut self, now: Instant, session_id: u16, reason: &str) {
        if let Some(session) = self.sessions.get_mut(&session_id) {
            self.closing.insert(session_id, reason.to_owned());
            session.link.close(now, reason);
        }
        self.process(now);
    }

    /// Ends every session at once (PADT to each) and stops answering.
    pub fn shutdown(&mut self, now: Instant) {
        for session in self.sessions.values_mut() {
            session.link.close(now, "access concentrator shutting down");
        }
        self.ac.shutdown(now);
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

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sessions
            .values()
            .filter_map(|s| s.link.poll_timeout())
            .chain(self.ac.poll_timeout())
            .min()
    }

    fn process(&mut self, now: Instant) {
        for _ in 0..16 {
            let mut busy = false;
            while let Some(event) = self.ac.poll_event() {
                busy = true;
                self.on_discovery(now, &event);
                push_bounded(&mut self.events, PppoeServerEvent::Discovery(event));
            }
            // The PADS goes out before the new session's first LCP packet.
            while let Some(frame) = self.ac.poll_transmit() {
                busy = true;
                self.transmit.push_back(frame);
            }
            let mut ended = Vec::new();
            for (&session_id, session) in self.sessions.iter_mut() {
                let client = session.discovery.client_mac;
                encapsulate_all(
                    &mut session.link,
                    client,
                    self.mac,
                    session_id,
                    &mut self.transmit,
                );
                while let Some(datagram) = session.link.poll_datagram() {
                    push_bounded(&mut self.datagrams, (session_id, datagram));
                }
                while let Some(event) = session.link.poll_event() {
                    busy = true;
                    if let LinkEvent::LinkDown { reason } = &event {
                        ended.push((session_id, client, reason.clone()));
                    }
                    push_bounded(
                        &mut self.events,
                        PppoeServerEvent::Link { session_id, event },
                    );
                }
            }
            for (session_id, client_mac, reason) in ended {
                // PPP is over: send the PADT and forget the session.
                self.ac.close_session(now, session_id);
                self.sessions.remove(&session_id);
                let reason = self.closing.remove(&session_id).unwrap_or(reason);
                push_bounded(
                    &mut self.events,
                    PppoeServerEvent::SessionDown {
                        session_id,
                        client_mac,
                        reason,
                    },
                );
            }
            while let Some(frame) = self.ac.poll_transmit() {
                busy = true;
                self.transmit.push_back(frame);
            }
            if !busy {
                break;
            }
        }
    }

    fn on_discovery(&mut self, now: Instant, event: &AcEvent) {
        match event {
            AcEvent::SessionUp { session_id, .. } => {
                let Some(discovery) = self.ac.session(*session_id).cloned() else {
                    return;
                };
                let mtu = SessionMtu::for_session(discovery.max_payload);
                let seed = self
                    .seed
                    .wrapping_add(u64::from(*session_id).wrapping_mul(0x9E37_79B9));
                let mut link = Link::new(session_link_config(&self.template, mtu, seed));
                if let Some(factory) = self.ipcp_factory.as_mut() {
                    link.set_ipcp(factory(&discovery));
                }
                link.open(now);
                link.up(now);
                self.sessions
                    .insert(*session_id, ServerSession { discovery, link });
            }
            AcEvent::SessionDown {
                session_id,
                client_mac,
                reason,
            } => {
                if let Some(mut session) = self.sessions.remove(session_id) {
                    session.link.down(now);
                    while let Some(event) = session.link.poll_event() {
                        push_bounded(
                            &mut self.events,
                            PppoeServerEvent::Link {
                                session_id: *session_id,
                                event,
                            },
                        );
                    }
                    push_bounded(
                        &mut self.events,
                        PppoeServerEvent::SessionDown {
                            session_id: *session_id,
                            client_mac: *client_mac,
                            reason: format!("{reason:?}"),
                        },
                    );
                }
            }
            _ => {}
        }
    }
}

impl std::fmt::Debug for PppoeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PppoeServer")
            .field("mac", &self.mac)
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for PppoeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PppoeClient")
            .field("mac", &self.mac)
            .field("status", &self.status)
            .field("session", &self.session)
            .field("link", &self.link)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use ppp_ipcp::IpcpConfig;

    use super::*;
    use crate::auth::{AuthProtocol, AuthenticatorConfig, ClientCredentials};

    const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x10]);
    const AC_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x20]);

    /// A CHAP client and AC with the AC's SecretNeeded answered, frames exchanged at once.
    fn connected_pair(start: Instant) -> (PppoeClient, PppoeServer, Instant) {
        let mut client_link = LinkConfig::pppoe();
        client_link.auth.credentials = Some(ClientCredentials::password("alice", "secret"));
        let mut server_link = LinkConfig {
            seed: 7,
            ipcp: Some(IpcpConfig {
                remote_address: Some(Ipv4Addr::new(192, 0, 2, 10)),
                ..IpcpConfig::server(Ipv4Addr::new(192, 0, 2, 1), [None, None])
            }),
            ..LinkConfig::pppoe()
        };
        server_link.lcp.allow.clear();
        server_link.lcp.require = vec![AuthProtocol::ChapMd5];
        server_link.auth.authenticator = AuthenticatorConfig::new("ac");
        let mut client = PppoeClient::new(ClientConfig::default(), client_link, CLIENT_MAC);
        let mut server = PppoeServer::new(AcConfig::default(), server_link, AC_MAC, start);
        let secrets = ppp_auth::SecretsTable::parse_pppd("alice * secret\n").expect("secrets");
        client.start(start);
        let mut now = start;
        for _ in 0..200 {
            let mut moved = false;
            while let Some(frame) = client.poll_transmit() {
                moved = true;
                server.handle_input(now, &frame);
            }
            while let Some(frame) = server.poll_transmit() {
                moved = true;
                client.handle_input(now, &frame);
            }
            while let Some(event) = server.poll_event() {
                if let PppoeServerEvent::Link {
                    session_id,
                    event: LinkEvent::SecretNeeded(request),
                } = event
                {
                    let entry = secrets.lookup_now(&request.client, &request.server);
                    server.provide_secret(now, session_id, entry);
                    moved = true;
                }
            }
            if client.status() == &ClientStatus::Connected {
                return (client, server, now);
            }
            if !moved {
                now += Duration::from_millis(100);
                client.handle_timeout(now);
                server.handle_timeout(now);
            }
        }
        panic!("no session: {client:?}");
    }

    #[test]
    fn a_padt_leaves_the_client_disconnected_with_a_dead_link() {
        let start = Instant::now();
        let (mut client, _server, now) = connected_pair(start);
        let session_id = client.session().expect("a session").session_id;
        while client.poll_event().is_some() {}
        // A bare PADT from the AC (RFC 2516 §5.5), as rp-pppoe sends when its pppd exits.
        let mut padt = Vec::new();
        padt.extend_from_slice(&CLIENT_MAC.0);
        padt.extend_from_slice(&AC_MAC.0);
        padt.extend_from_slice(&ETHERTYPE_DISCOVERY.to_be_bytes());
        padt.extend_from_slice(&[0x11, 0xA7]);
        padt.extend_from_slice(&session_id.to_be_bytes());
        padt.extend_from_slice(&[0, 0]);
        client.handle_input(now, &padt);
        let events: Vec<_> = std::iter::from_fn(|| client.poll_event()).collect();
        let downs = events
            .iter()
            .filter(|e| matches!(e, PppoeClientEvent::Down { .. }))
            .count();
        assert_eq!(downs, 1, "{events:?}");
        assert!(matches!(client.status(), ClientStatus::Disconnected(_)));
        assert_eq!(client.link().map(Link::phase), Some(Phase::Dead));
        assert_eq!(
            client.poll_transmit(),
            None,
            "nothing goes to a dead session"
        );
        let later = now + Duration::from_secs(30);
        client.handle_timeout(later);
        assert!(matches!(client.status(), ClientStatus::Disconnected(_)));
        assert_eq!(client.poll_transmit(), None);
        assert_eq!(client.poll_timeout(), None);
    }
}
