//! The PPPoE client (host) side of discovery, sans-IO.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use ppp_core::{CloseReason, Machine, Random};
use tracing::debug;

use crate::session::{DEFAULT_MAX_PAYLOAD, SessionMtu};
use crate::wire::{Code, DiscoveryRepr, MacAddr, TagType};

/// Most ACs a scan reports.
const MAX_SCAN_RESULTS: usize = 64;
/// Most services a scan reports per AC.
const MAX_SCAN_SERVICES: usize = 32;
/// Most declined offers a failed discovery reports (distinct AC, name and reason).
const MAX_DECLINED: usize = 8;
/// Most events kept when the owner does not drain them. An input adds at most one event, and
/// only an owner's `open`, `scan` or `close` starts what can add more, so an owner that drains
/// after each call never comes near it; beyond it, the oldest is dropped and counted in
/// [`ClientStats::events_dropped`].
const MAX_EVENTS: usize = 64;
/// Most frames kept when the owner does not drain them (an input adds at most one); beyond it,
/// the oldest is dropped and counted in [`ClientStats::tx_dropped`].
const MAX_TRANSMITS: usize = 64;

/// How the client discovers and which offer it takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// Only accept offers from an AC with this AC-Name (empty: any AC).
    pub ac_name: String,
    /// The Service-Name to request (empty: any service).
    pub service_name: String,
    /// Host-Uniq to send; `None` draws 8 random bytes from the client's [`Random`] at each
    /// [`Client::open`] and [`Client::scan`]; an empty vector sends none.
    pub host_uniq: Option<Vec<u8>>,
    /// Largest PPP payload wanted (pppd's `max-mru`). Above 1492 the client asks for it with a
    /// PPP-Max-Payload tag (RFC 4638).
    pub max_payload: u16,
    /// Wait for the first PADO/PADS; doubled after each retry.
    pub initial_timeout: Duration,
    /// Cap of the doubled wait.
    pub max_timeout: Duration,
    /// PADIs sent before giving up (over the whole attempt, including returns to discovery after
    /// unanswered PADRs).
    pub padi_attempts: u32,
    /// PADRs sent to one AC before going back to discovery.
    pub padr_attempts: u32,
}

impl Default for ClientConfig {
    /// Any AC, any service, random Host-Uniq, 1492, waits of 1 s, 2 s, 4 s, 8 s, 8 s …, 5 PADIs
    /// and 4 PADRs.
    fn default() -> Self {
        ClientConfig {
            ac_name: String::new(),
            service_name: String::new(),
            host_uniq: None,
            max_payload: DEFAULT_MAX_PAYLOAD,
            initial_timeout: Duration::from_secs(1),
            max_timeout: Duration::from_secs(8),
            padi_attempts: 5,
            padr_attempts: 4,
        }
    }
}

/// Why the client's session went down.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientSessionEnd {
    /// The AC sent a PADT (with the text of its Generic-Error tag, if any).
    PeerTerminated {
        /// The PADT's error text.
        message: Option<String>,
    },
    /// [`Client::close`] was called; a PADT was sent, with the reason's text.
    Closed(CloseReason),
}

impl fmt::Display for ClientSessionEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientSessionEnd::PeerTerminated { message: None } => {
                f.write_str("terminated by the access concentrator")
            }
            ClientSessionEnd::PeerTerminated {
                message: Some(message),
            } => write!(f, "terminated by the access concentrator: {message}"),
            ClientSessionEnd::Closed(reason) => write!(f, "closed: {reason}"),
        }
    }
}

/// An offer (PADO) the client did not take, and why: what a failed discovery reports so that an
/// operator sees which access concentrators answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeclinedOffer {
    /// The AC's Ethernet address.
    pub ac_mac: MacAddr,
    /// Its AC-Name (empty when the PADO had none).
    pub ac_name: String,
    /// The services it offered (an empty name means "any").
    pub services: Vec<String>,
    /// Why it was not taken.
    pub reason: DeclineReason,
}

/// Why an offer was not taken.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeclineReason {
    /// Its AC-Name is not the one configured.
    AcNameNotWanted {
        /// The configured AC-Name.
        wanted: String,
    },
    /// It does not offer the configured service.
    ServiceNotOffered {
        /// The configured service.
        wanted: String,
    },
    /// It carried no AC-Name tag (RFC 2516 requires one).
    NoAcName,
    /// It carried an error tag.
    Error {
        /// The tag.
        tag: TagType,
        /// Its text.
        text: String,
    },
}

impl fmt::Display for DeclineReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeclineReason::AcNameNotWanted { wanted } => write!(f, "not the AC-Name \"{wanted}\""),
            DeclineReason::ServiceNotOffered { wanted } => {
                write!(f, "does not offer service \"{wanted}\"")
            }
            DeclineReason::NoAcName => f.write_str("no AC-Name tag"),
            DeclineReason::Error { tag, text } => write!(f, "{tag}: {text}"),
        }
    }
}

impl fmt::Display for DeclinedOffer {
    /// `AC "isp-a" (02:00:00:00:00:01) offering "internet", "voice": not the AC-Name "isp-b"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AC \"{}\" ({})", self.ac_name, self.ac_mac)?;
        if !self.services.is_empty() {
            f.write_str(" offering ")?;
            for (i, service) in self.services.iter().enumerate() {
                let comma = if i == 0 { "" } else { ", " };
                if service.is_empty() {
                    write!(f, "{comma}any service")?;
                } else {
                    write!(f, "{comma}\"{service}\"")?;
                }
            }
        }
        write!(f, ": {}", self.reason)
    }
}

/// Why discovery failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiscoveryFailure {
    /// No PADO at all after every PADI.
    NoOffer,
    /// Access concentrators answered, but no offer was acceptable (a different AC-Name or
    /// service, an error tag); each one and why.
    NoAcceptableOffer {
        /// The offers, at most a few, in the order they came.
        declined: Vec<DeclinedOffer>,
    },
    /// PADRs went unanswered and no PADI attempts were left.
    NoConfirmation,
    /// The PADS carried a Service-Name-Error.
    ServiceNameError(String),
    /// The PADS carried an AC-System-Error (e.g. the AC is full).
    AcSystemError(String),
    /// The PADS carried a Generic-Error, or a session id of 0 without an error tag.
    GenericError(String),
}

impl fmt::Display for DiscoveryFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiscoveryFailure::NoOffer => f.write_str("no access concentrator answered"),
            DiscoveryFailure::NoAcceptableOffer { declined } => {
                f.write_str("no acceptable offer: ")?;
                for (i, offer) in declined.iter().enumerate() {
                    let separator = if i == 0 { "" } else { "; " };
                    write!(f, "{separator}{offer}")?;
                }
                Ok(())
            }
            DiscoveryFailure::NoConfirmation => {
                f.write_str("the access concentrator did not confirm the session")
            }
            DiscoveryFailure::ServiceNameError(text) => {
                write!(f, "service refused by the access concentrator: {text}")
            }
            DiscoveryFailure::AcSystemError(text) => {
                write!(f, "the access concentrator cannot serve: {text}")
            }
            DiscoveryFailure::GenericError(text) => {
                write!(f, "refused by the access concentrator: {text}")
            }
        }
    }
}

/// One AC that answered a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanResult {
    /// Its AC-Name.
    pub ac_name: String,
    /// Its Ethernet address.
    pub ac_mac: MacAddr,
    /// The services it offered (an empty name means "any").
    pub services: Vec<String>,
}

/// What the client reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiscoveryEvent {
    /// The PADS arrived: the session stage starts.
    SessionUp {
        /// The session id.
        session_id: u16,
        /// The AC's Ethernet address (destination of session frames).
        ac_mac: MacAddr,
        /// The AC's name (from its PADO).
        ac_name: String,
        /// The service granted (from the PADS).
        service_name: String,
        /// The RFC 4638 PPP-Max-Payload agreed, if any (see [`SessionMtu::for_session`]).
        max_payload: Option<u16>,
    },
    /// The session ended.
    SessionDown {
        /// The session id.
        session_id: u16,
        /// Why.
        reason: ClientSessionEnd,
    },
    /// Discovery failed; the client is idle again.
    Failed {
        /// Why.
        reason: DiscoveryFailure,
    },
    /// A scan's window closed.
    ScanComplete {
        /// Every AC that answered, in the order they first answered.
        results: Vec<ScanResult>,
    },
}

/// The session a client has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSession {
    /// The session id.
    pub session_id: u16,
    /// The AC's Ethernet address.
    pub ac_mac: MacAddr,
    /// The AC's name.
    pub ac_name: String,
    /// The service granted.
    pub service_name: String,
    /// The RFC 4638 PPP-Max-Payload agreed, if any.
    pub max_payload: Option<u16>,
    /// The sizes this session runs with.
    pub mtu: SessionMtu,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientStats {
    /// Frames sent.
    pub sent: u64,
    /// Frames taken into account.
    pub accepted: u64,
    /// Well-formed frames ignored (not for us, wrong state, wrong Host-Uniq …).
    pub ignored: u64,
    /// Frames that did not parse.
    pub malformed: u64,
    /// Frames dropped because the owner did not drain [`Client::poll_transmit`].
    pub tx_dropped: u64,
    /// Events dropped because the owner did not drain [`Client::poll_event`].
    pub events_dropped: u64,
}

#[derive(Clone, Debug)]
struct Offer {
    ac_mac: MacAddr,
    ac_name: Vec<u8>,
    cookie: Option<Vec<u8>>,
    relay_session_id: Option<Vec<u8>>,
}

#[derive(Debug)]
enum State {
    Idle,
    Discovering {
        deadline: Instant,
    },
    Requesting {
        offer: Offer,
        padr_sent: u32,
        deadline: Instant,
    },
    Up {
        session: ClientSession,
        relay_session_id: Option<Vec<u8>>,
    },
    Scanning {
        end: Instant,
        resend: Instant,
        results: Vec<ScanResult>,
    },
}

/// The client side of PPPoE discovery, sans-IO.
///
/// Inputs: [`open`](Self::open) / [`scan`](Self::scan) / [`close`](Self::close),
/// [`handle_input`](Self::handle_input) (every Ethernet frame of Ethertype 0x8863 received),
/// [`handle_timeout`](Self::handle_timeout). After each, drain
/// [`poll_transmit`](Self::poll_transmit) and [`poll_event`](Self::poll_event), then wake up at
/// [`poll_timeout`](Self::poll_timeout). It implements [`Machine`]. Session frames (0x8864) go
/// through [`session`](crate::session) with the ids of [`session`](Self::session).
///
/// The Host-Uniq of each attempt comes from the injected [`Random`] (unless configured).
///
/// A client and an access concentrator in memory:
///
/// ```
/// use std::time::Instant;
/// use ppp_core::{CloseReason, Random};
/// use pppoe_discovery::{
///     AcConfig, AccessConcentrator, Client, ClientConfig, ClientSessionEnd, DiscoveryEvent, MacAddr,
/// };
///
/// let now = Instant::now();
/// let config = ClientConfig { service_name: "internet".into(), ..ClientConfig::default() };
/// let mut client = Client::new(config, MacAddr([2, 0, 0, 0, 0, 1]), Random::seeded(1));
/// let mut ac = AccessConcentrator::new(AcConfig::default(), MacAddr([2, 0, 0, 0, 0, 0xac]), Random::seeded(2));
/// let exchange = |client: &mut Client, ac: &mut AccessConcentrator| {
///     while let Some(frame) = client.poll_transmit() {
///         ac.handle_input(now, &frame);
///         while let Some(answer) = ac.poll_transmit() {
///             client.handle_input(now, &answer);
///         }
///     }
/// };
/// client.open(now); // PADI
/// exchange(&mut client, &mut ac); // PADO, PADR, PADS
/// let Some(DiscoveryEvent::SessionUp { session_id, ac_name, .. }) = client.poll_event() else { panic!() };
/// assert_eq!((ac_name.as_str(), client.session().map(|s| s.session_id)), ("pppoe-ac", Some(session_id)));
///
/// client.close(now, CloseReason::UserRequest); // PADT, with "User request"
/// exchange(&mut client, &mut ac);
/// assert_eq!(
///     client.poll_event(),
///     Some(DiscoveryEvent::SessionDown { session_id, reason: ClientSessionEnd::Closed(CloseReason::UserRequest) })
/// );
/// assert_eq!(ac.session_count(), 0);
/// ```
pub struct Client {
    config: ClientConfig,
    mac: MacAddr,
    random: Random,
    host_uniq: Vec<u8>,
    padi_sent: u32,
    /// The offers of this discovery that were not taken.
    declined: Vec<DeclinedOffer>,
    state: State,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<DiscoveryEvent>,
    stats: ClientStats,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("mac", &self.mac)
            .field("state", &self.state)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client on the interface with address `mac`, drawing Host-Uniqs from `random`. Nothing
    /// is sent until [`open`](Self::open) or [`scan`](Self::scan).
    pub fn new(config: ClientConfig, mac: MacAddr, random: Random) -> Self {
        Client {
            config,
            mac,
            random,
            host_uniq: Vec::new(),
            padi_sent: 0,
            declined: Vec::new(),
            state: State::Idle,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: ClientStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The interface address.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// The Host-Uniq of the current attempt.
    pub fn host_uniq(&self) -> &[u8] {
        &self.host_uniq
    }

    /// The session, while up.
    pub fn session(&self) -> Option<&ClientSession> {
        match &self.state {
            State::Up { session, .. } => Some(session),
            _ => None,
        }
    }

    /// Whether nothing is going on (before start, after failure, after the session ended).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// Counters.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// Starts discovery: sends a PADI. Does nothing unless idle.
    pub fn open(&mut self, now: Instant) {
        if !self.is_idle() {
            return;
        }
        self.new_host_uniq();
        self.padi_sent = 0;
        self.declined.clear();
        self.send_padi(now, self.config.service_name.clone().into_bytes());
    }

    /// Starts a scan: PADIs for any service, resent with backoff, collecting every AC that
    /// answers until `window` has passed; then [`DiscoveryEvent::ScanComplete`]. Does nothing
    /// unless idle.
    pub fn scan(&mut self, now: Instant, window: Duration) {
        if !self.is_idle() {
            return;
        }
        self.new_host_uniq();
        self.padi_sent = 0;
        self.send_padi(now, Vec::new());
        self.state = State::Scanning {
            end: now + window,
            resend: now + self.backoff(0),
            results: Vec::new(),
        };
    }

    /// Ends the session (sending a PADT whose Generic-Error tag carries `reason`'s text, as
    /// rp-pppoe's client does, and reporting [`DiscoveryEvent::SessionDown`] with
    /// [`ClientSessionEnd::Closed`]) or abandons discovery or a scan (silently: there is nobody
    /// to tell yet).
    pub fn close(&mut self, _now: Instant, reason: CloseReason) {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Up {
                session,
                relay_session_id,
            } => {
                let mut padt =
                    DiscoveryRepr::new(session.ac_mac, self.mac, Code::Padt, session.session_id);
                if !self.host_uniq.is_empty() {
                    padt = padt.with_tag(TagType::HostUniq, self.host_uniq.clone());
                }
                if let Some(relay) = relay_session_id {
                    padt = padt.with_tag(TagType::RelaySessionId, relay);
                }
                if !reason.text().is_empty() {
                    padt = padt.with_tag(TagType::GenericError, reason.text());
                }
                self.send(&padt);
                debug!("PPPoE session {:#06x} closed: {reason}", session.session_id);
                self.push_event(DiscoveryEvent::SessionDown {
                    session_id: session.session_id,
                    reason: ClientSessionEnd::Closed(reason),
                });
            }
            State::Idle => {}
            other => debug!(state = ?other, "discovery abandoned"),
        }
    }

    /// An Ethernet frame arrived. Frames that do not parse, are not for this client or do not fit
    /// the current state are counted and dropped.
    pub fn handle_input(&mut self, now: Instant, frame: &[u8]) {
        let repr = match DiscoveryRepr::parse_bytes(frame) {
            Ok(repr) => repr,
            Err(error) => {
                self.stats.malformed += 1;
                debug!(%error, "dropped malformed frame");
                return;
            }
        };
        if repr.dst != self.mac || !repr.src.is_unicast() || !self.host_uniq_matches(&repr) {
            self.stats.ignored += 1;
            return;
        }
        debug!("rcvd [{repr}]");
        let accepted = match (repr.code, &self.state) {
            (Code::Pado, State::Discovering { .. }) => self.on_offer(now, &repr),
            (Code::Pado, State::Scanning { .. }) => self.on_scan_offer(&repr),
            (Code::Pads, State::Requesting { .. }) => self.on_confirmation(&repr),
            (Code::Padt, State::Up { .. }) => self.on_terminate(&repr),
            _ => false,
        };
        if accepted {
            self.stats.accepted += 1;
        } else {
            self.stats.ignored += 1;
        }
    }

    /// Time has come (see [`poll_timeout`](Self::poll_timeout)); a spurious call does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.state {
            State::Discovering { deadline } if *deadline <= now => {
                if self.padi_sent >= self.config.padi_attempts {
                    debug!("no acceptable PADO after {} PADIs", self.padi_sent);
                    let failure = if self.declined.is_empty() {
                        DiscoveryFailure::NoOffer
                    } else {
                        DiscoveryFailure::NoAcceptableOffer {
                            declined: std::mem::take(&mut self.declined),
                        }
                    };
                    self.fail(failure);
                } else {
                    self.send_padi(now, self.config.service_name.clone().into_bytes());
                }
            }
            State::Requesting {
                offer,
                padr_sent,
                deadline,
            } if *deadline <= now => {
                if *padr_sent >= self.config.padr_attempts {
                    debug!("no PADS after {padr_sent} PADRs");
                    if self.padi_sent >= self.config.padi_attempts {
                        self.fail(DiscoveryFailure::NoConfirmation);
                    } else {
                        self.send_padi(now, self.config.service_name.clone().into_bytes());
                    }
                } else {
                    let offer = offer.clone();
                    let padr_sent = *padr_sent;
                    self.send_padr(now, offer, padr_sent);
                }
            }
            State::Scanning {
                end,
                resend,
                results,
            } => {
                if *end <= now {
                    let results = std::mem::take(results);
                    self.state = State::Idle;
                    self.push_event(DiscoveryEvent::ScanComplete { results });
                } else if *resend <= now {
                    let end = *end;
                    self.send_padi(now, Vec::new());
                    let next = (now + self.backoff(self.padi_sent.saturating_sub(1))).min(end);
                    if let State::Scanning { resend, .. } = &mut self.state {
                        *resend = next;
                    }
                }
            }
            _ => {}
        }
    }

    /// The next Ethernet frame to send, if any. Poll until `None` after every input.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// The next event, if any. Poll until `None` after every input.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<DiscoveryEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called; `None` when nothing
    /// is pending. Poll again after every input.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Discovering { deadline } | State::Requesting { deadline, .. } => Some(*deadline),
            State::Scanning { end, resend, .. } => Some((*end).min(*resend)),
            State::Idle | State::Up { .. } => None,
        }
    }

    fn new_host_uniq(&mut self) {
        self.host_uniq = match &self.config.host_uniq {
            Some(fixed) => fixed.clone(),
            None => self.random.bytes::<8>().to_vec(),
        };
    }

    fn backoff(&self, retries: u32) -> Duration {
        let factor = 1u32.checked_shl(retries.min(31)).unwrap_or(u32::MAX);
        self.config
            .initial_timeout
            .checked_mul(factor)
            .unwrap_or(self.config.max_timeout)
            .min(self.config.max_timeout)
    }

    fn host_uniq_matches(&self, repr: &DiscoveryRepr) -> bool {
        match repr.code {
            // A PADT names its session; the Host-Uniq is optional in it.
            Code::Padt => true,
            _ if self.host_uniq.is_empty() => true,
            _ => repr.tag(TagType::HostUniq) == Some(self.host_uniq.as_slice()),
        }
    }

    fn requests_max_payload(&self) -> bool {
        self.config.max_payload > DEFAULT_MAX_PAYLOAD
    }

    fn send_padi(&mut self, now: Instant, service_name: Vec<u8>) {
        let mut padi = DiscoveryRepr::new(MacAddr::BROADCAST, self.mac, Code::Padi, 0)
            .with_tag(TagType::ServiceName, service_name);
        if !self.host_uniq.is_empty() {
            padi = padi.with_tag(TagType::HostUniq, self.host_uniq.clone());
        }
        if self.requests_max_payload() {
            padi = padi.with_tag(
                TagType::PppMaxPayload,
                self.config.max_payload.to_be_bytes(),
            );
        }
        self.send(&padi);
        let deadline = now + self.backoff(self.padi_sent);
        self.padi_sent += 1;
        if !matches!(self.state, State::Scanning { .. }) {
            self.state = State::Discovering { deadline };
        }
    }

    fn send_padr(&mut self, now: Instant, offer: Offer, padr_sent: u32) {
        let mut padr = DiscoveryRepr::new(offer.ac_mac, self.mac, Code::Padr, 0)
            .with_tag(TagType::ServiceName, self.config.service_name.as_bytes());
        if !self.host_uniq.is_empty() {
            padr = padr.with_tag(TagType::HostUniq, self.host_uniq.clone());
        }
        if let Some(cookie) = &offer.cookie {
            padr = padr.with_tag(TagType::AcCookie, cookie.clone());
        }
        if let Some(relay) = &offer.relay_session_id {
            padr = padr.with_tag(TagType::RelaySessionId, relay.clone());
        }
        if self.requests_max_payload() {
            padr = padr.with_tag(
                TagType::PppMaxPayload,
                self.config.max_payload.to_be_bytes(),
            );
        }
        self.send(&padr);
        self.state = State::Requesting {
            offer,
            padr_sent: padr_sent + 1,
            deadline: now + self.backoff(padr_sent),
        };
    }

    fn on_offer(&mut self, now: Instant, pado: &DiscoveryRepr) -> bool {
        if let Some(reason) = self.decline_reason(pado) {
            let offer = DeclinedOffer {
                ac_mac: pado.src,
                ac_name: String::from_utf8_lossy(pado.tag(TagType::AcName).unwrap_or_default())
                    .into_owned(),
                services: pado
                    .tags_of(TagType::ServiceName)
                    .take(MAX_SCAN_SERVICES)
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
                reason,
            };
            debug!("PADO declined: {offer}");
            let known = self.declined.iter().any(|d| {
                d.ac_mac == offer.ac_mac && d.ac_name == offer.ac_name && d.reason == offer.reason
            });
            if !known && self.declined.len() < MAX_DECLINED {
                self.declined.push(offer);
            }
            return false;
        }
        let Some(ac_name) = pado.tag(TagType::AcName) else {
            return false;
        };
        let offer = Offer {
            ac_mac: pado.src,
            ac_name: ac_name.to_vec(),
            cookie: pado.tag(TagType::AcCookie).map(<[u8]>::to_vec),
            relay_session_id: pado.tag(TagType::RelaySessionId).map(<[u8]>::to_vec),
        };
        self.send_padr(now, offer, 0);
        true
    }

    /// Why an offer is not acceptable, if it is not.
    fn decline_reason(&self, pado: &DiscoveryRepr) -> Option<DeclineReason> {
        if let Some((tag, text)) = pado.error_tag() {
            return Some(DeclineReason::Error { tag, text });
        }
        let Some(ac_name) = pado.tag(TagType::AcName) else {
            return Some(DeclineReason::NoAcName);
        };
        if !self.config.ac_name.is_empty() && ac_name != self.config.ac_name.as_bytes() {
            return Some(DeclineReason::AcNameNotWanted {
                wanted: self.config.ac_name.clone(),
            });
        }
        let wanted = self.config.service_name.as_bytes();
        if !wanted.is_empty() && !pado.tags_of(TagType::ServiceName).any(|s| s == wanted) {
            return Some(DeclineReason::ServiceNotOffered {
                wanted: self.config.service_name.clone(),
            });
        }
        None
    }

    fn on_scan_offer(&mut self, pado: &DiscoveryRepr) -> bool {
        let State::Scanning { results, .. } = &mut self.state else {
            return false;
        };
        let ac_name =
            String::from_utf8_lossy(pado.tag(TagType::AcName).unwrap_or_default()).into_owned();
        let index = match results
            .iter()
            .position(|r| r.ac_mac == pado.src && r.ac_name == ac_name)
        {
            Some(index) => index,
            None if results.len() < MAX_SCAN_RESULTS => {
                results.push(ScanResult {
                    ac_name,
                    ac_mac: pado.src,
                    services: Vec::new(),
                });
                results.len() - 1
            }
            None => return false,
        };
        let services = &mut results[index].services;
        for service in pado.tags_of(TagType::ServiceName) {
            let service = String::from_utf8_lossy(service).into_owned();
            if services.len() < MAX_SCAN_SERVICES && !services.contains(&service) {
                services.push(service);
            }
        }
        true
    }

    fn on_confirmation(&mut self, pads: &DiscoveryRepr) -> bool {
        let State::Requesting { offer, .. } = &self.state else {
            return false;
        };
        if pads.src != offer.ac_mac {
            return false;
        }
        if let Some((tag, text)) = pads.error_tag() {
            let reason = match tag {
                TagType::ServiceNameError => DiscoveryFailure::ServiceNameError(text),
                TagType::AcSystemError => DiscoveryFailure::AcSystemError(text),
                _ => DiscoveryFailure::GenericError(text),
            };
            self.fail(reason);
            return true;
        }
        if pads.session_id == 0 {
            self.fail(DiscoveryFailure::GenericError(
                "PADS with session id 0".into(),
            ));
            return true;
        }
        let max_payload = if self.requests_max_payload() {
            pads.ppp_max_payload()
                .filter(|&m| m >= DEFAULT_MAX_PAYLOAD)
                .map(|m| m.min(self.config.max_payload))
        } else {
            None
        };
        let service_name = pads.tag(TagType::ServiceName).map_or_else(
            || self.config.service_name.clone(),
            |s| String::from_utf8_lossy(s).into_owned(),
        );
        let session = ClientSession {
            session_id: pads.session_id,
            ac_mac: offer.ac_mac,
            ac_name: String::from_utf8_lossy(&offer.ac_name).into_owned(),
            service_name,
            max_payload,
            mtu: SessionMtu::for_session(max_payload),
        };
        let relay_session_id = offer.relay_session_id.clone();
        debug!(
            "PPPoE session {:#06x} with {} ({:?}), max payload {:?}",
            session.session_id, session.ac_mac, session.ac_name, session.max_payload
        );
        self.push_event(DiscoveryEvent::SessionUp {
            session_id: session.session_id,
            ac_mac: session.ac_mac,
            ac_name: session.ac_name.clone(),
            service_name: session.service_name.clone(),
            max_payload,
        });
        self.state = State::Up {
            session,
            relay_session_id,
        };
        true
    }

    fn on_terminate(&mut self, padt: &DiscoveryRepr) -> bool {
        let State::Up { session, .. } = &self.state else {
            return false;
        };
        if padt.src != session.ac_mac || padt.session_id != session.session_id {
            return false;
        }
        let session_id = session.session_id;
        self.state = State::Idle;
        let message = padt.error_tag().map(|(_, text)| text);
        self.push_event(DiscoveryEvent::SessionDown {
            session_id,
            reason: ClientSessionEnd::PeerTerminated { message },
        });
        true
    }

    fn fail(&mut self, reason: DiscoveryFailure) {
        debug!("discovery failed: {reason}");
        self.state = State::Idle;
        self.push_event(DiscoveryEvent::Failed { reason });
    }

    fn push_event(&mut self, event: DiscoveryEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
            self.stats.events_dropped += 1;
        }
        self.events.push_back(event);
    }

    fn send(&mut self, repr: &DiscoveryRepr) {
        match repr.to_bytes() {
            Ok(frame) => {
                debug!("sent [{repr}]");
                if self.transmits.len() >= MAX_TRANSMITS {
                    self.transmits.pop_front();
                    self.stats.tx_dropped += 1;
                }
                self.transmits.push_back(frame);
                self.stats.sent += 1;
            }
            Err(error) => debug!(%error, "cannot send [{repr}]"),
        }
    }
}

impl Machine for Client {
    type Event = DiscoveryEvent;

    fn handle_input(&mut self, now: Instant, input: &[u8]) {
        Client::handle_input(self, now, input);
    }

    fn handle_timeout(&mut self, now: Instant) {
        Client::handle_timeout(self, now);
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        Client::poll_transmit(self)
    }

    fn poll_event(&mut self) -> Option<DiscoveryEvent> {
        Client::poll_event(self)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Client::poll_timeout(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Tag;

    const ME: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
    const AC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xac]);
    const OTHER_AC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xad]);

    fn client(config: ClientConfig) -> Client {
        Client::new(config, ME, Random::seeded(7))
    }

    fn sent(client: &mut Client) -> Vec<DiscoveryRepr> {
        std::iter::from_fn(|| client.poll_transmit())
            .map(|f| DiscoveryRepr::parse_bytes(&f).unwrap())
            .collect()
    }

    fn events(client: &mut Client) -> Vec<DiscoveryEvent> {
        std::iter::from_fn(|| client.poll_event()).collect()
    }

    fn pado(client: &Client, ac: MacAddr, name: &str, services: &[&str]) -> DiscoveryRepr {
        let mut pado = DiscoveryRepr::new(ME, ac, Code::Pado, 0).with_tag(TagType::AcName, name);
        for service in services {
            pado = pado.with_tag(TagType::ServiceName, *service);
        }
        pado.with_tag(TagType::HostUniq, client.host_uniq())
            .with_tag(TagType::AcCookie, [0xc0; 16])
            .with_tag(TagType::RelaySessionId, [0x52, 0x53])
    }

    fn pads(client: &Client, session_id: u16) -> DiscoveryRepr {
        DiscoveryRepr::new(ME, AC, Code::Pads, session_id)
            .with_tag(TagType::ServiceName, "internet")
            .with_tag(TagType::HostUniq, client.host_uniq())
    }

    fn feed(client: &mut Client, now: Instant, repr: &DiscoveryRepr) {
        client.handle_input(now, &repr.to_bytes().unwrap());
    }

    #[test]
    fn padi_retries_with_backoff_then_gives_up() {
        let t0 = Instant::now();
        let mut c = client(ClientConfig::default());
        c.open(t0);
        let padi = sent(&mut c);
        assert_eq!(padi.len(), 1);
        assert_eq!(
            (padi[0].dst, padi[0].src, padi[0].code, padi[0].session_id),
            (MacAddr::BROADCAST, ME, Code::Padi, 0)
        );
        assert_eq!(
            padi[0].tags,
            [
                Tag::new(TagType::ServiceName, ""),
                Tag::new(TagType::HostUniq, c.host_uniq())
            ]
        );
        assert_eq!(c.host_uniq().len(), 8);
        let mut deadlines = Vec::new();
        while let Some(deadline) = c.poll_timeout() {
            deadlines.push(deadline - t0);
            c.handle_timeout(deadline - Duration::from_millis(1)); // spurious: nothing
            assert!(c.poll_transmit().is_none());
            c.handle_timeout(deadline);
            for frame in sent(&mut c) {
                assert_eq!(frame.code, Code::Padi);
            }
        }
        let secs: Vec<u64> = deadlines.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [1, 3, 7, 15, 23]);
        assert_eq!(
            events(&mut c),
            [DiscoveryEvent::Failed {
                reason: DiscoveryFailure::NoOffer
            }]
        );
        assert_eq!(c.stats().sent, 5);
        assert!(c.is_idle());
    }

    #[test]
    fn padr_echoes_cookie_relay_and_host_uniq_then_retries_then_rediscover() {
        let t0 = Instant::now();
        let config = ClientConfig {
            service_name: "internet".into(),
            max_payload: 1500,
            ..ClientConfig::default()
        };
        let mut c = client(config);
        c.open(t0);
        assert_eq!(sent(&mut c)[0].ppp_max_payload(), Some(1500));
        let offer = pado(&c, AC, "ac", &["internet"]);
        feed(&mut c, t0, &offer);
        let padr = sent(&mut c);
        assert_eq!((padr[0].dst, padr[0].code), (AC, Code::Padr));
        assert_eq!(
            padr[0].tags,
            [
                Tag::new(TagType::ServiceName, "internet"),
                Tag::new(TagType::HostUniq, c.host_uniq()),
                Tag::new(TagType::AcCookie, [0xc0; 16]),
                Tag::new(TagType::RelaySessionId, [0x52, 0x53]),
                Tag::ppp_max_payload(1500),
            ]
        );
        // Another PADO now is ignored: we are requesting.
        let frame = pado(&c, OTHER_AC, "other", &["internet"]);
        feed(&mut c, t0, &frame);
        assert!(c.poll_transmit().is_none());
        let mut now = t0;
        let mut codes = Vec::new();
        for _ in 0..4 {
            now = c.poll_timeout().unwrap();
            c.handle_timeout(now);
            codes.extend(sent(&mut c).into_iter().map(|r| r.code));
        }
        assert_eq!(codes, [Code::Padr, Code::Padr, Code::Padr, Code::Padi]);
        assert_eq!(now - t0, Duration::from_secs(1 + 2 + 4 + 8));
        assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(2)));
    }

    #[test]
    fn pads_brings_the_session_up_and_padt_down() {
        let t0 = Instant::now();
        let mut c = client(ClientConfig {
            max_payload: 1500,
            ..ClientConfig::default()
        });
        c.open(t0);
        let frame = pado(&c, AC, "ac", &[""]);
        feed(&mut c, t0, &frame);
        let frame = pads(&c, 0x1234).with_tag(TagType::PppMaxPayload, 1500u16.to_be_bytes());
        feed(&mut c, t0, &frame);
        assert_eq!(
            events(&mut c),
            [DiscoveryEvent::SessionUp {
                session_id: 0x1234,
                ac_mac: AC,
                ac_name: "ac".into(),
                service_name: "internet".into(),
                max_payload: Some(1500),
            }]
        );
        assert_eq!(
            c.session().unwrap().mtu,
            SessionMtu {
                ppp_mtu: 1500,
                ethernet_mtu: 1508
            }
        );
        assert_eq!(c.poll_timeout(), None);
        // PADTs for another session or from another AC are ignored.
        feed(&mut c, t0, &DiscoveryRepr::new(ME, AC, Code::Padt, 0x1235));
        feed(
            &mut c,
            t0,
            &DiscoveryRepr::new(ME, OTHER_AC, Code::Padt, 0x1234),
        );
        assert!(c.session().is_some());
        feed(
            &mut c,
            t0,
            &DiscoveryRepr::new(ME, AC, Code::Padt, 0x1234).with_tag(TagType::GenericError, "bye"),
        );
        assert_eq!(
            events(&mut c),
            [DiscoveryEvent::SessionDown {
                session_id: 0x1234,
                reason: ClientSessionEnd::PeerTerminated {
                    message: Some("bye".into())
                },
            }]
        );
        assert!(c.is_idle());
    }

    #[test]
    fn close_sends_padt() {
        let t0 = Instant::now();
        let mut c = client(ClientConfig::default());
        c.open(t0);
        let frame = pado(&c, AC, "ac", &[""]);
        feed(&mut c, t0, &frame);
        let frame = pads(&c, 7);
        feed(&mut c, t0, &frame);
        let _ = (sent(&mut c), events(&mut c));
        c.close(t0, CloseReason::IdleTimeout);
        let padt = sent(&mut c);
        assert_eq!(
            (padt[0].dst, padt[0].code, padt[0].session_id),
            (AC, Code::Padt, 7)
        );
        assert_eq!(
            padt[0].tag(TagType::RelaySessionId),
            Some(&[0x52, 0x53][..])
        );
        assert_eq!(padt[0].tag(TagType::HostUniq), Some(c.host_uniq()));
        assert_eq!(
            padt[0].error_tag(),
            Some((TagType::GenericError, "Idle timeout".into()))
        );
        assert_eq!(
            events(&mut c),
            [DiscoveryEvent::SessionDown {
                session_id: 7,
                reason: ClientSessionEnd::Closed(CloseReason::IdleTimeout)
            }]
        );
        // Closing while discovering just stops.
        c.open(t0);
        let _ = sent(&mut c);
        c.close(t0, CloseReason::UserRequest);
        assert!(c.is_idle() && c.poll_timeout().is_none() && c.poll_transmit().is_none());
    }

    #[test]
    fn pads_errors_fail() {
        let cases = [
            (
                TagType::ServiceNameError,
                DiscoveryFailure::ServiceNameError("no".into()),
            ),
            (
                TagType::AcSystemError,
                DiscoveryFailure::AcSystemError("no".into()),
            ),
            (
                TagType::GenericError,
                DiscoveryFailure::GenericError("no".into()),
            ),
        ];
        for (tag, reason) in cases {
            let t0 = Instant::now();
            let mut c = client(ClientConfig::default());
            c.open(t0);
            let frame = pado(&c, AC, "ac", &[""]);
            feed(&mut c, t0, &frame);
            let frame = pads(&c, 0).with_tag(tag, "no");
            feed(&mut c, t0, &frame);
            assert_eq!(events(&mut c), [DiscoveryEvent::Failed { reason }]);
            assert!(c.is_idle());
        }
    }

    #[test]
    fn frames_not_for_us_are_ignored() {
        let t0 = Instant::now();
        let mut c = client(ClientConfig {
            ac_name: "wanted".into(),
            ..ClientConfig::default()
        });
        // A PADO before discovery.
        let frame = pado(&c, AC, "wanted", &[""]);
        feed(&mut c, t0, &frame);
        c.open(t0);
        let _ = sent(&mut c);
        let good = pado(&c, AC, "wanted", &[""]);
        let mut wrong_uniq = good.clone();
        wrong_uniq.tags[2] = Tag::new(TagType::HostUniq, [1, 2, 3]);
        let mut wrong_dst = good.clone();
        wrong_dst.dst = OTHER_AC;
        let mut broadcast_src = good.clone();
        broadcast_src.src = MacAddr::BROADCAST;
        let mut no_name = good.clone();
        no_name.tags.remove(0);
        let other_name = pado(&c, AC, "unwanted", &[""]);
        let with_error = good.clone().with_tag(TagType::AcSystemError, "busy");
        let pads_early = pads(&c, 5);
        for repr in [
            wrong_uniq,
            wrong_dst,
            broadcast_src,
            no_name,
            other_name,
            with_error,
            pads_early,
        ] {
            feed(&mut c, t0, &repr);
            assert!(c.poll_transmit().is_none(), "{repr}");
        }
        c.handle_input(t0, &[0u8; 10]);
        assert_eq!(c.stats().ignored, 8);
        assert_eq!(c.stats().malformed, 1);
        feed(&mut c, t0, &good);
        assert_eq!(sent(&mut c)[0].code, Code::Padr);
    }

    #[test]
    fn host_uniq_comes_from_the_injected_randomness() {
        let t0 = Instant::now();
        let host_uniq = |seed| {
            let mut c = Client::new(ClientConfig::default(), ME, Random::seeded(seed));
            c.open(t0);
            c.host_uniq().to_vec()
        };
        assert_eq!(host_uniq(1), host_uniq(1));
        assert_ne!(host_uniq(1), host_uniq(2));
        // A new attempt, a new Host-Uniq.
        let mut c = client(ClientConfig::default());
        c.open(t0);
        let first = c.host_uniq().to_vec();
        c.close(t0, CloseReason::UserRequest);
        c.open(t0);
        assert_ne!(c.host_uniq(), first);
        // Configured: used as is.
        let mut c = client(ClientConfig {
            host_uniq: Some(vec![1, 2]),
            ..ClientConfig::default()
        });
        c.open(t0);
        assert_eq!(c.host_uniq(), [1, 2]);
    }

    #[test]
    fn undrained_queues_stay_bounded_and_count_what_they_drop() {
        let t0 = Instant::now();
        let mut c = client(ClientConfig {
            padi_attempts: 1000,
            ..ClientConfig::default()
        });
        c.open(t0);
        while c.stats().sent < 100 {
            let deadline = c.poll_timeout().unwrap();
            c.handle_timeout(deadline);
        }
        assert_eq!(
            std::iter::from_fn(|| c.poll_transmit()).count(),
            MAX_TRANSMITS
        );
        assert_eq!(c.stats().tx_dropped, 100 - MAX_TRANSMITS as u64);
        // Open and fail again and again without draining events.
        let mut c = client(ClientConfig {
            padi_attempts: 1,
            ..ClientConfig::default()
        });
        for _ in 0..100 {
            c.open(t0);
            let deadline = c.poll_timeout().unwrap();
            c.handle_timeout(deadline);
        }
        assert_eq!(std::iter::from_fn(|| c.poll_event()).count(), MAX_EVENTS);
        assert_eq!(c.stats().events_dropped, 100 - MAX_EVENTS as u64);
    }

    #[test]
    fn reasons_read_as_words() {
        assert_eq!(
            ClientSessionEnd::Closed(CloseReason::UserRequest).to_string(),
            "closed: User request"
        );
        assert_eq!(
            ClientSessionEnd::PeerTerminated {
                message: Some("bye".into())
            }
            .to_string(),
            "terminated by the access concentrator: bye"
        );
        assert_eq!(
            DiscoveryFailure::NoOffer.to_string(),
            "no access concentrator answered"
        );
        assert_eq!(
            DiscoveryFailure::AcSystemError("full".into()).to_string(),
            "the access concentrator cannot serve: full"
        );
    }
}
