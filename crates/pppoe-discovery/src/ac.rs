//! The access concentrator (server) side of discovery, sans-IO.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use tracing::debug;

use crate::cookie;
use crate::session::DEFAULT_MAX_PAYLOAD;
use crate::wire::{Code, DiscoveryRepr, MacAddr, TagType};
use crate::{RandomSource, SplitMix64};

/// Most events kept when the caller does not drain them.
const MAX_EVENTS: usize = 4096;

/// How the access concentrator answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcConfig {
    /// AC-Name sent in every PADO.
    pub ac_name: String,
    /// Services offered. A PADI for any service (empty Service-Name) is answered with all of
    /// them; a PADI for a service not in this list gets no PADO.
    pub services: Vec<String>,
    /// Most sessions at once. Beyond it a PADR gets a PADS with AC-System-Error and session id
    /// 0, as rp-pppoe's `pppoe-server` does ("No client slots available").
    pub max_sessions: usize,
    /// Do not answer PADIs while full (rp-pppoe's `-i`); by default they still get a PADO.
    pub ignore_padi_when_full: bool,
    /// A new session from a MAC address that already has one closes the old one (PADT and
    /// [`AcEvent::SessionDown`] with [`DownReason::Replaced`]).
    pub one_session_per_host: bool,
    /// Hold each valid PADR as a requested session, report [`AcEvent::SessionRequested`] and
    /// wait for [`AccessConcentrator::accept_session`] or
    /// [`AccessConcentrator::reject_session`] (to check the client somewhere first). By default
    /// the PADS goes out at once and only [`AcEvent::SessionUp`] is reported. Requested sessions
    /// count toward `max_sessions`.
    pub accept_manually: bool,
    /// Wait before sending each PADO (so that a preferred AC on the same segment answers first).
    pub pado_delay: Duration,
    /// Delayed PADOs held at most (beyond, PADIs are dropped): bounds memory under a PADI flood.
    pub max_pending_offers: usize,
    /// Lifetime of a cookie's time window; a cookie from the current or the previous window is
    /// accepted, so a cookie lives between one and two windows.
    pub cookie_window: Duration,
    /// Largest PPP payload the AC can carry (RFC 4638); `None` or ≤ 1492 ignores
    /// PPP-Max-Payload.
    pub max_payload: Option<u16>,
}

impl Default for AcConfig {
    /// AC "pppoe-ac", one service "internet", 64 sessions, no delay, 60-second cookie windows,
    /// PPP-Max-Payload up to 1500.
    fn default() -> Self {
        AcConfig {
            ac_name: "pppoe-ac".into(),
            services: vec!["internet".into()],
            max_sessions: 64,
            ignore_padi_when_full: false,
            one_session_per_host: false,
            accept_manually: false,
            pado_delay: Duration::ZERO,
            max_pending_offers: 256,
            cookie_window: Duration::from_secs(60),
            max_payload: Some(1500),
        }
    }
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DownReason {
    /// The client sent a PADT.
    PeerTerminated,
    /// [`AccessConcentrator::close_session`] was called.
    Closed,
    /// The same client opened a new session ([`AcConfig::one_session_per_host`]).
    Replaced,
    /// [`AccessConcentrator::shutdown`] was called.
    Shutdown,
}

/// What the access concentrator reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcEvent {
    /// With [`AcConfig::accept_manually`]: a valid PADR arrived and a session id is reserved;
    /// answer with [`AccessConcentrator::accept_session`] or
    /// [`AccessConcentrator::reject_session`].
    SessionRequested {
        /// The session id reserved.
        session_id: u16,
        /// The client's Ethernet address.
        client_mac: MacAddr,
        /// The service requested (empty if the client asked for any).
        service_name: String,
        /// The client's Host-Uniq (empty if none).
        host_uniq: Vec<u8>,
        /// The RFC 4638 PPP-Max-Payload that will be agreed, if any.
        max_payload: Option<u16>,
    },
    /// A PADS was sent: the session stage starts (start PPP for it).
    SessionUp {
        /// The session id.
        session_id: u16,
        /// The client's Ethernet address.
        client_mac: MacAddr,
        /// The service granted (empty if the client asked for any).
        service_name: String,
        /// The client's Host-Uniq (empty if none).
        host_uniq: Vec<u8>,
        /// The RFC 4638 PPP-Max-Payload agreed, if any.
        max_payload: Option<u16>,
    },
    /// A session left the table (stop PPP for it). Also reported for a requested session
    /// (see [`AcConfig::accept_manually`]) that ends before it is accepted.
    SessionDown {
        /// The session id.
        session_id: u16,
        /// The client's Ethernet address.
        client_mac: MacAddr,
        /// Why.
        reason: DownReason,
    },
}

/// Where a session of the table stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcSessionState {
    /// Waiting for [`AccessConcentrator::accept_session`] (with [`AcConfig::accept_manually`]).
    Requested,
    /// The PADS was sent.
    Up,
}

/// A session in the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcSession {
    /// The session id.
    pub session_id: u16,
    /// Requested or up.
    pub state: AcSessionState,
    /// The client's Ethernet address.
    pub client_mac: MacAddr,
    /// The service granted.
    pub service_name: String,
    /// The client's Host-Uniq.
    pub host_uniq: Vec<u8>,
    /// The RFC 4638 PPP-Max-Payload agreed, if any.
    pub max_payload: Option<u16>,
    /// The Relay-Session-Id of the PADR, echoed in PADS and PADT.
    pub relay_session_id: Option<Vec<u8>>,
    /// When the PADR was accepted (and, unless accepted manually, the PADS sent).
    pub started: Instant,
    cookie: Vec<u8>,
    pads: Vec<u8>,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AcStats {
    /// PADIs received.
    pub padi_received: u64,
    /// PADOs sent.
    pub pado_sent: u64,
    /// PADIs not answered (unknown service, no Service-Name, full, delay queue full).
    pub padi_ignored: u64,
    /// PADRs received.
    pub padr_received: u64,
    /// PADRs with a missing or wrong AC-Cookie (dropped).
    pub bad_cookies: u64,
    /// PADRs repeated by a client that missed its PADS (the PADS is sent again).
    pub padr_repeated: u64,
    /// PADS with Service-Name-Error sent.
    pub refused_service: u64,
    /// PADS with AC-System-Error sent (full).
    pub refused_full: u64,
    /// PADS granting a session sent.
    pub sessions_started: u64,
    /// PADTs received for a known session.
    pub padt_received: u64,
    /// PADTs sent.
    pub padt_sent: u64,
    /// Frames that did not parse.
    pub malformed: u64,
    /// Well-formed frames ignored (not for us, unknown session, …).
    pub ignored: u64,
}

/// The access-concentrator side of PPPoE discovery for one interface, sans-IO.
///
/// Inputs: [`handle_input`](Self::handle_input) (every Ethernet frame of Ethertype 0x8863
/// received), [`handle_timeout`](Self::handle_timeout), [`close_session`](Self::close_session),
/// [`shutdown`](Self::shutdown). After each, drain [`poll_transmit`](Self::poll_transmit) and
/// [`poll_event`](Self::poll_event), then wake up at [`poll_timeout`](Self::poll_timeout).
///
/// AC-Cookies are stateless: an HMAC-SHA1 (truncated to 16 bytes) of the client's address, its
/// Host-Uniq and the time window, under a key drawn from the injected RNG at creation. A PADI
/// therefore allocates nothing (with a PADO delay, at most
/// [`AcConfig::max_pending_offers`] frames wait).
///
/// ```
/// use std::time::Instant;
/// use pppoe_discovery::{AcConfig, AccessConcentrator, Code, DiscoveryRepr, MacAddr, TagType};
///
/// let now = Instant::now();
/// let mut ac = AccessConcentrator::with_seed(AcConfig::default(), MacAddr([2, 0, 0, 0, 0, 0xac]), now, 1);
/// let host = MacAddr([2, 0, 0, 0, 0, 1]);
/// let padi = DiscoveryRepr::new(MacAddr::BROADCAST, host, Code::Padi, 0)
///     .with_tag(TagType::ServiceName, "");
/// ac.handle_input(now, &padi.to_bytes().unwrap());
/// let pado = DiscoveryRepr::parse_bytes(&ac.poll_transmit().unwrap()).unwrap();
/// assert_eq!((pado.code, pado.dst), (Code::Pado, host));
/// assert_eq!(pado.tag(TagType::AcName), Some(&b"pppoe-ac"[..]));
/// assert_eq!(ac.state_size(), 0); // nothing was kept for this PADI
/// ```
pub struct AccessConcentrator {
    config: AcConfig,
    mac: MacAddr,
    rng: RandomSource,
    cookie_key: [u8; 20],
    epoch: Instant,
    sessions: BTreeMap<u16, AcSession>,
    pending_offers: VecDeque<(Instant, Vec<u8>)>,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<AcEvent>,
    stats: AcStats,
}

impl core::fmt::Debug for AccessConcentrator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The cookie key is a secret: never printed.
        f.debug_struct("AccessConcentrator")
            .field("mac", &self.mac)
            .field("sessions", &self.sessions.len())
            .field("pending_offers", &self.pending_offers.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl AccessConcentrator {
    /// An access concentrator on the interface with address `mac`, created at `now` (the origin
    /// of cookie windows), drawing its cookie key and session ids from `rng`.
    pub fn new(
        config: AcConfig,
        mac: MacAddr,
        now: Instant,
        rng: impl FnMut() -> u64 + Send + 'static,
    ) -> Self {
        let mut rng: RandomSource = Box::new(rng);
        let mut cookie_key = [0u8; 20];
        for chunk in cookie_key.chunks_mut(8) {
            let bytes = rng().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        AccessConcentrator {
            config,
            mac,
            rng,
            cookie_key,
            epoch: now,
            sessions: BTreeMap::new(),
            pending_offers: VecDeque::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: AcStats::default(),
        }
    }

    /// An access concentrator drawing from a [`SplitMix64`] seeded with `seed`.
    pub fn with_seed(config: AcConfig, mac: MacAddr, now: Instant, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        AccessConcentrator::new(config, mac, now, move || rng.next_u64())
    }

    /// The configuration.
    pub fn config(&self) -> &AcConfig {
        &self.config
    }

    /// The interface address.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// Counters.
    pub fn stats(&self) -> AcStats {
        self.stats
    }

    /// The session table, by session id.
    pub fn sessions(&self) -> impl Iterator<Item = &AcSession> {
        self.sessions.values()
    }

    /// One session.
    pub fn session(&self, session_id: u16) -> Option<&AcSession> {
        self.sessions.get(&session_id)
    }

    /// Sessions open.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Everything the AC holds, in entries: sessions, delayed PADOs, undrained frames and
    /// events. With the queues drained and no PADO delay, PADIs never change it.
    pub fn state_size(&self) -> usize {
        self.sessions.len() + self.pending_offers.len() + self.transmits.len() + self.events.len()
    }

    /// A discovery frame arrived. Frames that do not parse, are not for this AC or do not fit are
    /// counted and dropped.
    pub fn handle_input(&mut self, now: Instant, frame: &[u8]) {
        let repr = match DiscoveryRepr::parse_bytes(frame) {
            Ok(repr) => repr,
            Err(error) => {
                self.stats.malformed += 1;
                debug!(%error, "dropped malformed frame");
                return;
            }
        };
        let for_us = repr.dst == self.mac || (repr.code == Code::Padi && repr.dst.is_broadcast());
        if !for_us || !repr.src.is_unicast() {
            self.stats.ignored += 1;
            return;
        }
        debug!("rcvd [{repr}]");
        match repr.code {
            Code::Padi => self.on_padi(now, &repr),
            Code::Padr => self.on_padr(now, &repr),
            Code::Padt => self.on_padt(&repr),
            _ => self.stats.ignored += 1,
        }
    }

    /// Time has come for delayed PADOs; a spurious call does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        while self
            .pending_offers
            .front()
            .is_some_and(|(at, _)| *at <= now)
        {
            if let Some((_, frame)) = self.pending_offers.pop_front() {
                self.transmits.push_back(frame);
            }
        }
    }

    /// Ends a session: sends a PADT and reports [`AcEvent::SessionDown`]. Returns false if there
    /// is no such session.
    pub fn close_session(&mut self, _now: Instant, session_id: u16) -> bool {
        self.end_session(session_id, DownReason::Closed, None)
    }

    /// Ends every session with a PADT (and drops delayed PADOs).
    pub fn shutdown(&mut self, _now: Instant) {
        self.pending_offers.clear();
        let ids: Vec<u16> = self.sessions.keys().copied().collect();
        for id in ids {
            self.end_session(id, DownReason::Shutdown, Some("AC shutting down"));
        }
    }

    /// The next Ethernet frame to send, if any. Poll until `None` after every input.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// The next event, if any. Poll until `None` after every input.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<AcEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called (a delayed PADO is
    /// due); `None` when nothing is pending.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending_offers.front().map(|(at, _)| *at)
    }

    fn window(&self, now: Instant) -> u64 {
        let window = self.config.cookie_window.as_millis().max(1);
        let elapsed = now.saturating_duration_since(self.epoch).as_millis();
        u64::try_from(elapsed / window).unwrap_or(u64::MAX)
    }

    /// The PPP-Max-Payload to echo for a request, if both sides want more than 1492.
    fn agreed_max_payload(&self, request: &DiscoveryRepr) -> Option<u16> {
        let ours = self
            .config
            .max_payload
            .filter(|&m| m > DEFAULT_MAX_PAYLOAD)?;
        let theirs = request
            .ppp_max_payload()
            .filter(|&m| m > DEFAULT_MAX_PAYLOAD)?;
        Some(ours.min(theirs))
    }

    fn is_full(&self) -> bool {
        self.sessions.len() >= self.config.max_sessions
    }

    fn on_padi(&mut self, now: Instant, padi: &DiscoveryRepr) {
        self.stats.padi_received += 1;
        let Some(requested) = padi.tag(TagType::ServiceName) else {
            debug!("PADI from {} without Service-Name", padi.src);
            self.stats.padi_ignored += 1;
            return;
        };
        let offered: Vec<&[u8]> = if requested.is_empty() {
            self.config.services.iter().map(|s| s.as_bytes()).collect()
        } else if self
            .config
            .services
            .iter()
            .any(|s| s.as_bytes() == requested)
        {
            Vec::new()
        } else {
            debug!(
                "PADI from {} for unknown service {:?}",
                padi.src,
                String::from_utf8_lossy(requested)
            );
            self.stats.padi_ignored += 1;
            return;
        };
        if self.config.ignore_padi_when_full && self.is_full() {
            debug!("PADI from {} ignored: no free session slots", padi.src);
            self.stats.padi_ignored += 1;
            return;
        }
        let host_uniq = padi.tag(TagType::HostUniq).unwrap_or_default();
        let cookie = cookie::make(&self.cookie_key, padi.src, host_uniq, self.window(now));
        let mut pado = DiscoveryRepr::new(padi.src, self.mac, Code::Pado, 0)
            .with_tag(TagType::AcName, self.config.ac_name.as_bytes())
            .with_tag(TagType::ServiceName, requested);
        for service in offered {
            pado = pado.with_tag(TagType::ServiceName, service);
        }
        if let Some(host_uniq) = padi.tag(TagType::HostUniq) {
            pado = pado.with_tag(TagType::HostUniq, host_uniq);
        }
        pado = pado.with_tag(TagType::AcCookie, cookie);
        if let Some(relay) = padi.tag(TagType::RelaySessionId) {
            pado = pado.with_tag(TagType::RelaySessionId, relay);
        }
        if let Some(max_payload) = self.agreed_max_payload(padi) {
            pado = pado.with_tag(TagType::PppMaxPayload, max_payload.to_be_bytes());
        }
        if self.config.pado_delay.is_zero() {
            self.send(&pado);
            self.stats.pado_sent += 1;
        } else if self.pending_offers.len() < self.config.max_pending_offers {
            if let Ok(frame) = pado.to_bytes() {
                debug!("delayed by {:?}: [{pado}]", self.config.pado_delay);
                self.pending_offers
                    .push_back((now + self.config.pado_delay, frame));
                self.stats.pado_sent += 1;
            }
        } else {
            debug!("PADI from {} dropped: too many delayed PADOs", padi.src);
            self.stats.padi_ignored += 1;
        }
    }

    fn on_padr(&mut self, now: Instant, padr: &DiscoveryRepr) {
        self.stats.padr_received += 1;
        let host_uniq = padr.tag(TagType::HostUniq).unwrap_or_default();
        let cookie = padr.tag(TagType::AcCookie).unwrap_or_default();
        if !cookie::check(
            &self.cookie_key,
            padr.src,
            host_uniq,
            self.window(now),
            cookie,
        ) {
            debug!("PADR from {} with a bad AC-Cookie", padr.src);
            self.stats.bad_cookies += 1;
            return;
        }
        // The client missed our PADS and asks again: same answer, no new session.
        if let Some(session) = self
            .sessions
            .values()
            .find(|s| s.client_mac == padr.src && s.host_uniq == host_uniq && s.cookie == cookie)
        {
            debug!(
                "PADR repeated by {}: PADS for session {:#06x} again",
                padr.src, session.session_id
            );
            let pads = (session.state == AcSessionState::Up).then(|| session.pads.clone());
            self.stats.padr_repeated += 1;
            if let Some(pads) = pads {
                self.push_transmit(pads);
            }
            return;
        }
        let relay = padr.tag(TagType::RelaySessionId);
        let requested = padr.tag(TagType::ServiceName);
        let known = requested.is_some_and(|r| {
            r.is_empty() || self.config.services.iter().any(|s| s.as_bytes() == r)
        });
        if !known {
            debug!("PADR from {} for unknown service", padr.src);
            self.stats.refused_service += 1;
            self.send_error_pads(padr, TagType::ServiceNameError, "unknown service");
            return;
        }
        if self.config.one_session_per_host {
            let old: Vec<u16> = self
                .sessions
                .values()
                .filter(|s| s.client_mac == padr.src)
                .map(|s| s.session_id)
                .collect();
            for id in old {
                self.end_session(id, DownReason::Replaced, Some("replaced by a new session"));
            }
        }
        let session_id = if self.is_full() {
            None
        } else {
            self.allocate_session_id()
        };
        let Some(session_id) = session_id else {
            debug!("PADR from {} refused: no free session slots", padr.src);
            self.stats.refused_full += 1;
            self.send_error_pads(padr, TagType::AcSystemError, "no free session slots");
            return;
        };
        let requested = requested.unwrap_or_default();
        let max_payload = self.agreed_max_payload(padr);
        let mut pads = DiscoveryRepr::new(padr.src, self.mac, Code::Pads, session_id)
            .with_tag(TagType::ServiceName, requested);
        if let Some(host_uniq) = padr.tag(TagType::HostUniq) {
            pads = pads.with_tag(TagType::HostUniq, host_uniq);
        }
        if let Some(relay) = relay {
            pads = pads.with_tag(TagType::RelaySessionId, relay);
        }
        if let Some(max_payload) = max_payload {
            pads = pads.with_tag(TagType::PppMaxPayload, max_payload.to_be_bytes());
        }
        let Ok(frame) = pads.to_bytes() else {
            return;
        };
        let state = if self.config.accept_manually {
            AcSessionState::Requested
        } else {
            debug!("sent [{pads}]");
            self.push_transmit(frame.clone());
            AcSessionState::Up
        };
        let session = AcSession {
            session_id,
            state,
            client_mac: padr.src,
            service_name: String::from_utf8_lossy(requested).into_owned(),
            host_uniq: host_uniq.to_vec(),
            max_payload,
            relay_session_id: relay.map(<[u8]>::to_vec),
            started: now,
            cookie: cookie.to_vec(),
            pads: frame,
        };
        debug!(
            "PPPoE session {session_id:#06x} for {} service {:?}, max payload {max_payload:?}",
            session.client_mac, session.service_name
        );
        let event = if state == AcSessionState::Up {
            self.stats.sessions_started += 1;
            AcEvent::SessionUp {
                session_id,
                client_mac: session.client_mac,
                service_name: session.service_name.clone(),
                host_uniq: session.host_uniq.clone(),
                max_payload,
            }
        } else {
            AcEvent::SessionRequested {
                session_id,
                client_mac: session.client_mac,
                service_name: session.service_name.clone(),
                host_uniq: session.host_uniq.clone(),
                max_payload,
            }
        };
        self.push_event(event);
        self.sessions.insert(session_id, session);
    }

    /// Grants a requested session (see [`AcConfig::accept_manually`]): sends its PADS and
    /// reports [`AcEvent::SessionUp`]. Returns false if there is no such requested session.
    pub fn accept_session(&mut self, now: Instant, session_id: u16) -> bool {
        let Some(session) = self
            .sessions
            .get_mut(&session_id)
            .filter(|s| s.state == AcSessionState::Requested)
        else {
            return false;
        };
        session.state = AcSessionState::Up;
        session.started = now;
        let event = AcEvent::SessionUp {
            session_id,
            client_mac: session.client_mac,
            service_name: session.service_name.clone(),
            host_uniq: session.host_uniq.clone(),
            max_payload: session.max_payload,
        };
        let pads = session.pads.clone();
        debug!("sent [PADS session={session_id:#06x}] (accepted)");
        self.push_transmit(pads);
        self.stats.sessions_started += 1;
        self.push_event(event);
        true
    }

    /// Refuses a requested session (see [`AcConfig::accept_manually`]): sends a PADS with
    /// session id 0 and a Generic-Error carrying `message`, and frees the id; no event. Returns
    /// false if there is no such requested session.
    pub fn reject_session(&mut self, _now: Instant, session_id: u16, message: &str) -> bool {
        if self.sessions.get(&session_id).map(|s| s.state) != Some(AcSessionState::Requested) {
            return false;
        }
        if let Some(session) = self.sessions.remove(&session_id) {
            self.send_refusal(&session, TagType::GenericError, message);
        }
        true
    }

    fn send_refusal(&mut self, session: &AcSession, error: TagType, message: &str) {
        let mut pads = DiscoveryRepr::new(session.client_mac, self.mac, Code::Pads, 0)
            .with_tag(TagType::ServiceName, session.service_name.as_bytes());
        if !session.host_uniq.is_empty() {
            pads = pads.with_tag(TagType::HostUniq, session.host_uniq.clone());
        }
        if let Some(relay) = &session.relay_session_id {
            pads = pads.with_tag(TagType::RelaySessionId, relay.clone());
        }
        pads = pads.with_tag(error, message);
        self.send(&pads);
    }

    fn on_padt(&mut self, padt: &DiscoveryRepr) {
        match self.sessions.get(&padt.session_id) {
            Some(session) if session.client_mac == padt.src => {
                self.stats.padt_received += 1;
                if let Some(session) = self.sessions.remove(&padt.session_id) {
                    self.push_event(AcEvent::SessionDown {
                        session_id: session.session_id,
                        client_mac: session.client_mac,
                        reason: DownReason::PeerTerminated,
                    });
                }
            }
            _ => {
                debug!(
                    "PADT from {} for unknown session {:#06x}",
                    padt.src, padt.session_id
                );
                self.stats.ignored += 1;
            }
        }
    }

    fn end_session(&mut self, session_id: u16, reason: DownReason, message: Option<&str>) -> bool {
        let Some(session) = self.sessions.remove(&session_id) else {
            return false;
        };
        if session.state == AcSessionState::Requested {
            // No PADS yet: the client is still waiting for one, so it gets a refusal.
            self.send_refusal(&session, TagType::GenericError, message.unwrap_or("closed"));
            self.push_event(AcEvent::SessionDown {
                session_id,
                client_mac: session.client_mac,
                reason,
            });
            return true;
        }
        let mut padt = DiscoveryRepr::new(session.client_mac, self.mac, Code::Padt, session_id);
        if let Some(relay) = &session.relay_session_id {
            padt = padt.with_tag(TagType::RelaySessionId, relay.clone());
        }
        if let Some(message) = message {
            padt = padt.with_tag(TagType::GenericError, message);
        }
        self.send(&padt);
        self.stats.padt_sent += 1;
        self.push_event(AcEvent::SessionDown {
            session_id,
            client_mac: session.client_mac,
            reason,
        });
        true
    }

    /// A random session id, non-zero, not 0xFFFF (reserved, RFC 2516 §4) and not in use.
    fn allocate_session_id(&mut self) -> Option<u16> {
        let usable = |id: u16, sessions: &BTreeMap<u16, AcSession>| {
            id != 0 && id != 0xffff && !sessions.contains_key(&id)
        };
        for _ in 0..32 {
            let id = ((self.rng)() >> 48) as u16;
            if usable(id, &self.sessions) {
                return Some(id);
            }
        }
        let start = ((self.rng)() >> 48) as u16;
        (0..=u16::MAX)
            .map(|i| start.wrapping_add(i))
            .find(|&id| usable(id, &self.sessions))
    }

    fn send_error_pads(&mut self, padr: &DiscoveryRepr, error: TagType, text: &str) {
        let mut pads = DiscoveryRepr::new(padr.src, self.mac, Code::Pads, 0).with_tag(
            TagType::ServiceName,
            padr.tag(TagType::ServiceName).unwrap_or_default(),
        );
        if let Some(host_uniq) = padr.tag(TagType::HostUniq) {
            pads = pads.with_tag(TagType::HostUniq, host_uniq);
        }
        if let Some(relay) = padr.tag(TagType::RelaySessionId) {
            pads = pads.with_tag(TagType::RelaySessionId, relay);
        }
        pads = pads.with_tag(error, text);
        self.send(&pads);
    }

    fn push_event(&mut self, event: AcEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    fn push_transmit(&mut self, frame: Vec<u8>) {
        // Bounded like the event queue: a caller that never drains loses the oldest frames.
        if self.transmits.len() >= MAX_EVENTS {
            self.transmits.pop_front();
        }
        self.transmits.push_back(frame);
    }

    fn send(&mut self, repr: &DiscoveryRepr) {
        match repr.to_bytes() {
            Ok(frame) => {
                debug!("sent [{repr}]");
                self.push_transmit(frame);
            }
            Err(error) => debug!(%error, "cannot send [{repr}]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Tag;

    const AC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xac]);
    const HOST: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
    const WINDOW: Duration = Duration::from_secs(60);

    fn ac(config: AcConfig, now: Instant) -> AccessConcentrator {
        AccessConcentrator::with_seed(
            AcConfig {
                services: vec!["internet".into(), "video".into()],
                ..config
            },
            AC,
            now,
            3,
        )
    }

    fn sent(ac: &mut AccessConcentrator) -> Vec<DiscoveryRepr> {
        std::iter::from_fn(|| ac.poll_transmit())
            .map(|f| DiscoveryRepr::parse_bytes(&f).unwrap())
            .collect()
    }

    fn feed(ac: &mut AccessConcentrator, now: Instant, repr: &DiscoveryRepr) {
        ac.handle_input(now, &repr.to_bytes().unwrap());
    }

    fn padi(service: &str) -> DiscoveryRepr {
        DiscoveryRepr::new(MacAddr::BROADCAST, HOST, Code::Padi, 0)
            .with_tag(TagType::ServiceName, service)
            .with_tag(TagType::HostUniq, [0xaa, 0xbb])
            .with_tag(TagType::RelaySessionId, [0x01])
    }

    /// The PADR a client sends after `pado`.
    fn padr(pado: &DiscoveryRepr, service: &str) -> DiscoveryRepr {
        DiscoveryRepr::new(AC, HOST, Code::Padr, 0)
            .with_tag(TagType::ServiceName, service)
            .with_tag(TagType::HostUniq, [0xaa, 0xbb])
            .with_tag(TagType::AcCookie, pado.tag(TagType::AcCookie).unwrap())
            .with_tag(TagType::RelaySessionId, [0x01])
    }

    #[test]
    fn pado_contents() {
        let now = Instant::now();
        let mut ac = ac(AcConfig::default(), now);
        feed(&mut ac, now, &padi(""));
        let pado = sent(&mut ac).remove(0);
        assert_eq!(
            (pado.dst, pado.src, pado.code, pado.session_id),
            (HOST, AC, Code::Pado, 0)
        );
        let cookie = pado.tag(TagType::AcCookie).unwrap().to_vec();
        assert_eq!(cookie.len(), crate::COOKIE_LEN);
        assert_eq!(
            pado.tags,
            [
                Tag::new(TagType::AcName, "pppoe-ac"),
                Tag::new(TagType::ServiceName, ""),
                Tag::new(TagType::ServiceName, "internet"),
                Tag::new(TagType::ServiceName, "video"),
                Tag::new(TagType::HostUniq, [0xaa, 0xbb]),
                Tag::new(TagType::AcCookie, cookie),
                Tag::new(TagType::RelaySessionId, [0x01]),
            ]
        );
        // A specific service is echoed alone.
        feed(&mut ac, now, &padi("video"));
        let pado = sent(&mut ac).remove(0);
        let services: Vec<&[u8]> = pado.tags_of(TagType::ServiceName).collect();
        assert_eq!(services, [b"video"]);
    }

    #[test]
    fn padis_that_get_no_pado() {
        let now = Instant::now();
        let mut ac = ac(AcConfig::default(), now);
        let mut unicast_elsewhere = padi("");
        unicast_elsewhere.dst = MacAddr([0x02, 0, 0, 0, 0, 0x99]);
        let mut multicast_src = padi("");
        multicast_src.src = MacAddr([0x03, 0, 0, 0, 0, 1]);
        let no_service = DiscoveryRepr::new(MacAddr::BROADCAST, HOST, Code::Padi, 0);
        for repr in [padi("voice"), unicast_elsewhere, multicast_src, no_service] {
            feed(&mut ac, now, &repr);
            assert!(ac.poll_transmit().is_none(), "{repr}");
        }
        ac.handle_input(now, b"garbage");
        assert_eq!(ac.stats().malformed, 1);
        assert_eq!(ac.stats().pado_sent, 0);
        // Full, with ignore_padi_when_full: silence.
        let mut ac = self::ac(
            AcConfig {
                max_sessions: 0,
                ignore_padi_when_full: true,
                ..AcConfig::default()
            },
            now,
        );
        feed(&mut ac, now, &padi(""));
        assert!(ac.poll_transmit().is_none());
    }

    #[test]
    fn padr_gets_pads_and_a_session() {
        let now = Instant::now();
        let mut ac = ac(AcConfig::default(), now);
        feed(&mut ac, now, &padi(""));
        let pado = sent(&mut ac).remove(0);
        let request = padr(&pado, "video");
        feed(&mut ac, now, &request);
        let pads = sent(&mut ac).remove(0);
        assert_eq!((pads.dst, pads.code), (HOST, Code::Pads));
        assert_ne!(pads.session_id, 0);
        assert_eq!(
            pads.tags,
            [
                Tag::new(TagType::ServiceName, "video"),
                Tag::new(TagType::HostUniq, [0xaa, 0xbb]),
                Tag::new(TagType::RelaySessionId, [0x01]),
            ]
        );
        assert_eq!(
            ac.poll_event(),
            Some(AcEvent::SessionUp {
                session_id: pads.session_id,
                client_mac: HOST,
                service_name: "video".into(),
                host_uniq: vec![0xaa, 0xbb],
                max_payload: None,
            })
        );
        // The same PADR again (the PADS was lost): the same PADS, no second session.
        feed(&mut ac, now, &request);
        assert_eq!(sent(&mut ac), std::slice::from_ref(&pads));
        assert_eq!(ac.session_count(), 1);
        assert_eq!(ac.stats().padr_repeated, 1);
        // A PADT from someone else does not end it; from the client it does.
        let mut padt = DiscoveryRepr::new(
            AC,
            MacAddr([0x02, 0, 0, 0, 0, 0x66]),
            Code::Padt,
            pads.session_id,
        );
        feed(&mut ac, now, &padt);
        assert_eq!(ac.session_count(), 1);
        padt.src = HOST;
        feed(&mut ac, now, &padt);
        assert_eq!(ac.session_count(), 0);
        assert_eq!(
            ac.poll_event(),
            Some(AcEvent::SessionDown {
                session_id: pads.session_id,
                client_mac: HOST,
                reason: DownReason::PeerTerminated
            })
        );
    }

    #[test]
    fn bad_cookies_are_rejected() {
        let now = Instant::now();
        let mut ac = ac(
            AcConfig {
                cookie_window: WINDOW,
                ..AcConfig::default()
            },
            now,
        );
        feed(&mut ac, now, &padi(""));
        let pado = sent(&mut ac).remove(0);
        let good = padr(&pado, "internet");
        let mut flipped = good.clone();
        flipped.tags[2].value[0] ^= 1;
        let mut missing = good.clone();
        missing.tags.remove(2);
        let mut other_uniq = good.clone();
        other_uniq.tags[1].value = vec![0xaa, 0xbc];
        let mut other_host = good.clone();
        other_host.src = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
        let mut to_broadcast = good.clone();
        to_broadcast.dst = MacAddr::BROADCAST;
        for repr in [flipped, missing, other_uniq, other_host] {
            feed(&mut ac, now, &repr);
            assert!(ac.poll_transmit().is_none(), "{repr}");
        }
        feed(&mut ac, now, &to_broadcast);
        assert_eq!(ac.stats().bad_cookies, 4);
        // Two windows later the cookie has expired.
        feed(&mut ac, now + 2 * WINDOW, &good);
        assert!(ac.poll_transmit().is_none());
        assert_eq!((ac.stats().bad_cookies, ac.session_count()), (5, 0));
        // In the next window it is still good.
        feed(&mut ac, now + WINDOW + WINDOW / 2, &good);
        assert_eq!(sent(&mut ac)[0].code, Code::Pads);
        assert_eq!(ac.session_count(), 1);
    }

    #[test]
    fn unknown_service_and_full_get_error_pads() {
        let now = Instant::now();
        let mut ac = ac(
            AcConfig {
                max_sessions: 1,
                ..AcConfig::default()
            },
            now,
        );
        feed(&mut ac, now, &padi(""));
        let pado = sent(&mut ac).remove(0);
        feed(&mut ac, now, &padr(&pado, "voice"));
        let pads = sent(&mut ac).remove(0);
        assert_eq!(pads.session_id, 0);
        assert_eq!(
            pads.error_tag().map(|(t, _)| t),
            Some(TagType::ServiceNameError)
        );
        assert_eq!(pads.tag(TagType::HostUniq), Some(&[0xaa, 0xbb][..]));

        feed(&mut ac, now, &padr(&pado, ""));
        let pads = sent(&mut ac).remove(0);
        assert_ne!(pads.session_id, 0);
        assert_eq!(
            ac.session(pads.session_id).map(|s| s.service_name.as_str()),
            Some("")
        );

        // Another host (its own cookie): the AC is full.
        let mut other = padi("");
        other.src = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
        feed(&mut ac, now, &other);
        let pado = sent(&mut ac).remove(0);
        let mut request = padr(&pado, "internet");
        request.src = other.src;
        feed(&mut ac, now, &request);
        let pads = sent(&mut ac).remove(0);
        assert_eq!((pads.session_id, pads.dst), (0, other.src));
        assert_eq!(
            pads.error_tag().map(|(t, _)| t),
            Some(TagType::AcSystemError)
        );
        assert_eq!(ac.stats().refused_full, 1);
        assert_eq!(ac.stats().refused_service, 1);
    }

    #[test]
    fn session_ids_are_random_unique_and_valid() {
        let now = Instant::now();
        let mut ac = ac(
            AcConfig {
                max_sessions: 5000,
                ..AcConfig::default()
            },
            now,
        );
        for i in 0..5000u32 {
            let [_, b, c, d] = i.to_be_bytes();
            let mut request = padi("");
            request.src = MacAddr([0x02, 0x11, b, c, d, 0]);
            feed(&mut ac, now, &request);
            let pado = sent(&mut ac).remove(0);
            let mut request = padr(&pado, "");
            request.src = MacAddr([0x02, 0x11, b, c, d, 0]);
            feed(&mut ac, now, &request);
            assert_eq!(sent(&mut ac)[0].code, Code::Pads);
        }
        let ids: Vec<u16> = ac.sessions().map(|s| s.session_id).collect();
        assert_eq!(ids.len(), 5000);
        assert!(ids.iter().all(|&id| id != 0 && id != 0xffff));
        // Random, not sequential: the ids spread over the whole space.
        assert!(ids.first() < Some(&0x1000) && ids.last() > Some(&0xf000));
    }

    #[test]
    fn manual_accept_and_reject() {
        let now = Instant::now();
        let mut ac = ac(
            AcConfig {
                accept_manually: true,
                ..AcConfig::default()
            },
            now,
        );
        feed(&mut ac, now, &padi(""));
        let pado = sent(&mut ac).remove(0);
        let request = padr(&pado, "internet");
        feed(&mut ac, now, &request);
        assert!(ac.poll_transmit().is_none());
        let Some(AcEvent::SessionRequested {
            session_id,
            client_mac,
            ..
        }) = ac.poll_event()
        else {
            panic!("no SessionRequested");
        };
        assert_eq!(client_mac, HOST);
        assert_eq!(
            ac.session(session_id).map(|s| s.state),
            Some(AcSessionState::Requested)
        );
        // A repeated PADR while the decision is pending gets nothing yet.
        feed(&mut ac, now, &request);
        assert!(ac.poll_transmit().is_none() && ac.poll_event().is_none());
        assert!(ac.accept_session(now, session_id));
        assert!(!ac.accept_session(now, session_id));
        assert!(!ac.reject_session(now, session_id, "no"));
        let pads = sent(&mut ac).remove(0);
        assert_eq!((pads.code, pads.session_id), (Code::Pads, session_id));
        assert!(
            matches!(ac.poll_event(), Some(AcEvent::SessionUp { session_id: id, .. }) if id == session_id)
        );
        assert_eq!(
            ac.session(session_id).map(|s| s.state),
            Some(AcSessionState::Up)
        );

        // Rejected: a PADS with session id 0 and the message, the id freed, no event.
        let mut other = padi("");
        other.src = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
        feed(&mut ac, now, &other);
        let pado = sent(&mut ac).remove(0);
        let mut request = padr(&pado, "internet");
        request.src = other.src;
        feed(&mut ac, now, &request);
        let Some(AcEvent::SessionRequested { session_id, .. }) = ac.poll_event() else {
            panic!("no SessionRequested");
        };
        assert!(ac.reject_session(now, session_id, "not subscribed"));
        let pads = sent(&mut ac).remove(0);
        assert_eq!((pads.dst, pads.session_id), (other.src, 0));
        assert_eq!(
            pads.error_tag(),
            Some((TagType::GenericError, "not subscribed".into()))
        );
        assert_eq!(pads.tag(TagType::HostUniq), Some(&[0xaa, 0xbb][..]));
        assert!(ac.poll_event().is_none());
        assert_eq!(ac.session_count(), 1);
    }
}
