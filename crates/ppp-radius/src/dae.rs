//! Dynamic authorization, the NAS side (RFC 5176): Disconnect-Request ends a session,
//! CoA-Request changes it. Requests are authenticated with the sender's shared secret, matched
//! to a session, handed to the owner as typed events, and answered with an ACK or a NAK.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tracing::debug;

use crate::access::NasIdentity;
use crate::attribute::{Attribute, AttributeType};
use crate::authorization::{Authorization, RateLimit};
use crate::crypto::{AuthenticityError, Secret, sign_response, verify_request};
use crate::macros::open_enum;
use crate::packet::{Code, HEADER_LEN, Packet};

/// The default UDP port of dynamic authorization (RFC 5176 §3).
pub const DAE_PORT: u16 = 3799;

open_enum! {
    /// Error-Cause (RFC 5176 §3.5): why a request was refused (or, 201, what an ACK did).
    pub struct ErrorCause(u32) {
        /// 201: the session was removed (ACK of a Disconnect).
        RESIDUAL_SESSION_CONTEXT_REMOVED = 201 => "Residual-Session-Context-Removed",
        /// 401: an attribute the NAS does not support.
        UNSUPPORTED_ATTRIBUTE = 401 => "Unsupported-Attribute",
        /// 402: no attribute identifies a session.
        MISSING_ATTRIBUTE = 402 => "Missing-Attribute",
        /// 403: the request names another NAS.
        NAS_IDENTIFICATION_MISMATCH = 403 => "NAS-Identification-Mismatch",
        /// 404: the request is malformed.
        INVALID_REQUEST = 404 => "Invalid-Request",
        /// 405: the NAS does not offer this.
        UNSUPPORTED_SERVICE = 405 => "Unsupported-Service",
        /// 407: an attribute's value is wrong.
        INVALID_ATTRIBUTE_VALUE = 407 => "Invalid-Attribute-Value",
        /// 501: the NAS is configured to refuse it.
        ADMINISTRATIVELY_PROHIBITED = 501 => "Administratively-Prohibited",
        /// 503: no such session.
        SESSION_CONTEXT_NOT_FOUND = 503 => "Session-Context-Not-Found",
        /// 504: the session cannot be removed.
        SESSION_CONTEXT_NOT_REMOVABLE = 504 => "Session-Context-Not-Removable",
        /// 506: no resources for it now.
        RESOURCES_UNAVAILABLE = 506 => "Resources-Unavailable",
        /// 508: the request matches several sessions.
        MULTIPLE_SESSION_SELECTION_UNSUPPORTED = 508 => "Multiple-Session-Selection-Unsupported",
    }
}

/// One server (or proxy) allowed to send requests, and the secret shared with it. `Debug`
/// hides the secret.
#[derive(Clone, Debug)]
pub struct DaeClient {
    /// Its address (requests from other addresses are dropped).
    pub address: IpAddr,
    /// The shared secret.
    pub secret: Secret,
}

/// Settings of the [`DaeServer`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DaeConfig {
    /// Who may send requests.
    pub clients: Vec<DaeClient>,
    /// Our identity: a request naming another NAS-Identifier or NAS-IP-Address is refused
    /// (Error-Cause 403).
    pub nas: NasIdentity,
    /// Require a Message-Authenticator in requests (true).
    pub require_message_authenticator: bool,
    /// A request with an Event-Timestamp further than this from our clock is dropped as a
    /// replay (300 s, RFC 5176 §5).
    pub event_timestamp_window: Duration,
    /// Requests waiting for the owner's answer (1024); past this, new ones are refused with
    /// Error-Cause 506.
    pub max_pending: usize,
    /// How long an answer is kept to repeat it for a retransmitted request (30 s).
    pub duplicate_window: Duration,
}

impl DaeConfig {
    /// Defaults with `clients` and `nas`.
    pub fn new(clients: Vec<DaeClient>, nas: NasIdentity) -> Self {
        DaeConfig {
            clients,
            nas,
            require_message_authenticator: true,
            event_timestamp_window: Duration::from_secs(300),
            max_pending: 1024,
            duplicate_window: Duration::from_secs(30),
        }
    }
}

/// Which session a request is about: every attribute present must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionSelector {
    /// Acct-Session-Id.
    pub acct_session_id: Option<String>,
    /// User-Name.
    pub user_name: Option<String>,
    /// Framed-IP-Address.
    pub framed_ip_address: Option<Ipv4Addr>,
    /// NAS-Port-Id.
    pub nas_port_id: Option<String>,
    /// NAS-Port.
    pub nas_port: Option<u32>,
    /// Calling-Station-Id.
    pub calling_station_id: Option<String>,
}

impl SessionSelector {
    fn from_packet(packet: &Packet) -> Self {
        let text = |k| packet.get(k).map(|a: &Attribute| a.as_text());
        SessionSelector {
            acct_session_id: text(AttributeType::ACCT_SESSION_ID),
            user_name: text(AttributeType::USER_NAME),
            framed_ip_address: packet
                .get(AttributeType::FRAMED_IP_ADDRESS)
                .and_then(|a| a.as_ipv4().ok()),
            nas_port_id: text(AttributeType::NAS_PORT_ID),
            nas_port: packet
                .get(AttributeType::NAS_PORT)
                .and_then(|a| a.as_u32().ok()),
            calling_station_id: text(AttributeType::CALLING_STATION_ID),
        }
    }

    /// Whether it names no session at all.
    pub fn is_empty(&self) -> bool {
        *self == SessionSelector::default()
    }

    /// Whether a session with these properties is selected: every field the request carries
    /// equals the session's (a field the session does not have never matches).
    pub fn matches(
        &self,
        acct_session_id: &str,
        user_name: &str,
        framed_ip_address: Option<Ipv4Addr>,
        nas_port_id: Option<&str>,
    ) -> bool {
        !self.is_empty()
            && self
                .acct_session_id
                .as_deref()
                .is_none_or(|s| s == acct_session_id)
            && self.user_name.as_deref().is_none_or(|s| s == user_name)
            && self
                .framed_ip_address
                .is_none_or(|a| Some(a) == framed_ip_address)
            && self
                .nas_port_id
                .as_deref()
                .is_none_or(|p| Some(p) == nas_port_id)
    }
}

/// What identifies a session to a Disconnect-Request or CoA-Request: the values the NAS sent
/// in its Access-Request and accounting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionIdentity<'a> {
    /// Acct-Session-Id.
    pub acct_session_id: &'a str,
    /// User-Name.
    pub user_name: &'a str,
    /// Framed-IP-Address, once the session has one.
    pub framed_ip_address: Option<Ipv4Addr>,
    /// NAS-Port-Id.
    pub nas_port_id: Option<&'a str>,
    /// NAS-Port.
    pub nas_port: Option<u32>,
    /// Calling-Station-Id.
    pub calling_station_id: Option<&'a str>,
}

impl SessionSelector {
    /// Whether the session `identity` is selected: every attribute the request carries equals
    /// the session's (one the session does not have never matches), and the request names at
    /// least one.
    ///
    /// ```
    /// use ppp_radius::{SessionIdentity, SessionSelector};
    ///
    /// let mut selector = SessionSelector::default();
    /// selector.user_name = Some("alice".into());
    /// selector.calling_station_id = Some("02:00:00:00:00:01".into());
    /// let session = SessionIdentity {
    ///     acct_session_id: "4F2A9C0D11E2B377",
    ///     user_name: "alice",
    ///     calling_station_id: Some("02:00:00:00:00:01"),
    ///     ..SessionIdentity::default()
    /// };
    /// assert!(selector.selects(&session));
    /// assert!(!SessionSelector::default().selects(&session));
    /// ```
    pub fn selects(&self, identity: &SessionIdentity<'_>) -> bool {
        self.matches(
            identity.acct_session_id,
            identity.user_name,
            identity.framed_ip_address,
            identity.nas_port_id,
        ) && self.nas_port.is_none_or(|p| Some(p) == identity.nas_port)
            && self
                .calling_station_id
                .as_deref()
                .is_none_or(|c| Some(c) == identity.calling_station_id)
    }
}

/// What a CoA-Request changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Change {
    /// A new rate limit (Mikrotik-Rate-Limit).
    pub rate_limit: Option<RateLimit>,
    /// A new Session-Timeout (from the session's start).
    pub session_timeout: Option<Duration>,
    /// A new Idle-Timeout.
    pub idle_timeout: Option<Duration>,
    /// A new Acct-Interim-Interval.
    pub interim_interval: Option<Duration>,
}

impl Change {
    /// Whether it changes nothing this crate understands.
    pub fn is_empty(&self) -> bool {
        *self == Change::default()
    }
}

/// Identifies a request waiting for [`DaeServer::respond`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DaeToken(pub u64);

/// A verified request for the owner.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DaeEvent {
    /// End the session(s) selected (with Acct-Terminate-Cause Admin-Reset), then
    /// [`respond`](DaeServer::respond).
    Disconnect {
        /// Give it back with the answer.
        token: DaeToken,
        /// Which session.
        session: SessionSelector,
    },
    /// Apply `change` to the session(s) selected, then [`respond`](DaeServer::respond).
    Change {
        /// Give it back with the answer.
        token: DaeToken,
        /// Which session.
        session: SessionSelector,
        /// What changes.
        change: Change,
    },
}

/// The owner's answer to a [`DaeEvent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DaeOutcome {
    /// Done: Disconnect-ACK or CoA-ACK.
    Ack,
    /// Refused: Disconnect-NAK or CoA-NAK with this Error-Cause (for instance
    /// [`ErrorCause::SESSION_CONTEXT_NOT_FOUND`]).
    Nak(ErrorCause),
}

/// Why a request was dropped without an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DaeDrop {
    /// From an address that is not a configured client.
    UnknownClient,
    /// Does not parse, or is not a Disconnect-Request or CoA-Request.
    Malformed,
    /// Failed authentication with the client's secret (forged, or another secret).
    Forged(AuthenticityError),
    /// Its Event-Timestamp is outside the window: a replay, or a clock far off.
    Stale,
}

impl fmt::Display for DaeDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaeDrop::UnknownClient => f.write_str("from an unknown client"),
            DaeDrop::Malformed => f.write_str("malformed"),
            DaeDrop::Forged(e) => write!(f, "not authentic: {e}"),
            DaeDrop::Stale => f.write_str("Event-Timestamp outside the window"),
        }
    }
}

/// Counters of the dynamic-authorization server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DaeStats {
    /// Authentic requests handed to the owner.
    pub requests: u64,
    /// ACKs sent.
    pub acks: u64,
    /// NAKs sent.
    pub naks: u64,
    /// Retransmitted requests answered again from the cache.
    pub duplicates: u64,
    /// Dropped: unknown sender.
    pub unknown_client: u64,
    /// Dropped: malformed.
    pub malformed: u64,
    /// Dropped: failed authentication (forged, wrong secret, missing Message-Authenticator).
    pub forged: u64,
    /// Dropped: Event-Timestamp out of the window.
    pub stale: u64,
}

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaeTransmit {
    /// Where (the requester).
    pub destination: SocketAddr,
    /// The ACK or NAK.
    pub bytes: Vec<u8>,
}

/// An answer sent: when, to whom, for which identifier and Request Authenticator, the bytes.
type Answered = (Instant, SocketAddr, u8, [u8; 16], Vec<u8>);

struct Pending {
    from: SocketAddr,
    identifier: u8,
    authenticator: [u8; 16],
    code: Code,
    secret: Secret,
    received: Instant,
}

/// The NAS side of RFC 5176, sans-IO.
///
/// Feed it datagrams with [`handle_input`](Self::handle_input) (with the wall clock, for
/// Event-Timestamp), take [`DaeEvent`]s from [`poll_event`](Self::poll_event), answer each
/// with [`respond`](Self::respond), and send what [`poll_transmit`](Self::poll_transmit)
/// gives. Requests that fail authentication are dropped and counted, never answered.
///
/// ```
/// use std::time::Instant;
/// use ppp_radius::{
///     Attribute, AttributeType, Code, DaeClient, DaeConfig, DaeEvent, DaeOutcome, DaeServer,
///     NasIdentity, Packet, Secret,
/// };
///
/// let secret = Secret::from("dae-secret");
/// let client = DaeClient { address: "127.0.0.1".parse().unwrap(), secret: secret.clone() };
/// let mut dae = DaeServer::new(DaeConfig::new(vec![client], NasIdentity::named("ac1")));
/// // A Disconnect-Request as a RADIUS server sends it.
/// let mut request = Packet::new(Code::DISCONNECT_REQUEST, 1);
/// request.push(Attribute::text(AttributeType::ACCT_SESSION_ID, "4F2A9C0D11E2B377"));
/// request.push(Attribute::new(AttributeType::MESSAGE_AUTHENTICATOR, [0; 16]));
/// let mut bytes = request.to_bytes()?;
/// ppp_radius::crypto::sign_request(&mut bytes, &secret);
/// let now = Instant::now();
/// dae.handle_input(now, 1_700_000_000, "127.0.0.1:40000".parse().unwrap(), &bytes);
/// let Some(DaeEvent::Disconnect { token, session }) = dae.poll_event() else { panic!() };
/// assert_eq!(session.acct_session_id.as_deref(), Some("4F2A9C0D11E2B377"));
/// dae.respond(now, token, DaeOutcome::Ack);
/// let ack = dae.poll_transmit().unwrap();
/// assert_eq!(Packet::parse(&ack.bytes)?.code, Code::DISCONNECT_ACK);
/// # Ok::<(), ppp_radius::RadiusError>(())
/// ```
pub struct DaeServer {
    config: DaeConfig,
    next_token: u64,
    pending: HashMap<u64, Pending>,
    /// Answers sent, to repeat for a retransmitted request: (from, id, authenticator).
    answered: VecDeque<Answered>,
    events: VecDeque<DaeEvent>,
    transmit: VecDeque<DaeTransmit>,
    stats: DaeStats,
}

impl fmt::Debug for DaeServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaeServer")
            .field("clients", &self.config.clients.len())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl DaeServer {
    /// A server for `config`.
    pub fn new(config: DaeConfig) -> Self {
        DaeServer {
            config,
            next_token: 1,
            pending: HashMap::new(),
            answered: VecDeque::new(),
            events: VecDeque::new(),
            transmit: VecDeque::new(),
            stats: DaeStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> DaeStats {
        self.stats
    }

    /// A datagram arrived from `from`; `unix_time` is the wall clock (seconds since 1970),
    /// for the Event-Timestamp check.
    pub fn handle_input(&mut self, now: Instant, unix_time: u64, from: SocketAddr, bytes: &[u8]) {
        if let Err(reason) = self.request(now, unix_time, from, bytes) {
            debug!("DAE: dropped a request from {from}: {reason}");
            match reason {
                DaeDrop::UnknownClient => self.stats.unknown_client += 1,
                DaeDrop::Malformed => self.stats.malformed += 1,
                DaeDrop::Forged(_) => self.stats.forged += 1,
                DaeDrop::Stale => self.stats.stale += 1,
            }
        }
    }

    fn request(
        &mut self,
        now: Instant,
        unix_time: u64,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), DaeDrop> {
        let secret = self
            .config
            .clients
            .iter()
            .find(|c| c.address == from.ip())
            .map(|c| c.secret.clone())
            .ok_or(DaeDrop::UnknownClient)?;
        if bytes.len() < HEADER_LEN {
            return Err(DaeDrop::Malformed);
        }
        let code = Code(bytes[0]);
        if !matches!(code, Code::DISCONNECT_REQUEST | Code::COA_REQUEST) {
            return Err(DaeDrop::Malformed);
        }
        verify_request(bytes, &secret, self.config.require_message_authenticator)
            .map_err(DaeDrop::Forged)?;
        let packet = Packet::parse(bytes).map_err(|_| DaeDrop::Malformed)?;
        // A retransmission of a request already answered gets the same answer.
        self.answered
            .retain(|(at, ..)| now.saturating_duration_since(*at) < self.config.duplicate_window);
        if let Some((.., answer)) = self.answered.iter().find(|(_, f, id, a, _)| {
            *f == from && *id == packet.identifier && *a == packet.authenticator
        }) {
            self.stats.duplicates += 1;
            self.transmit.push_back(DaeTransmit {
                destination: from,
                bytes: answer.clone(),
            });
            return Ok(());
        }
        if self.pending.values().any(|p| {
            p.from == from
                && p.identifier == packet.identifier
                && p.authenticator == packet.authenticator
        }) {
            self.stats.duplicates += 1;
            return Ok(());
        }
        if let Some(ts) = packet
            .get(AttributeType::EVENT_TIMESTAMP)
            .and_then(|a| a.as_u32().ok())
            && u64::from(ts).abs_diff(unix_time) > self.config.event_timestamp_window.as_secs()
        {
            return Err(DaeDrop::Stale);
        }
        debug!("DAE: rcvd [{packet}] from {from}");
        self.stats.requests += 1;
        let token = self.next_token;
        self.next_token += 1;
        self.pending.insert(
            token,
            Pending {
                from,
                identifier: packet.identifier,
                authenticator: packet.authenticator,
                code,
                secret,
                received: now,
            },
        );
        let token = DaeToken(token);
        if self.pending.len() > self.config.max_pending {
            self.respond(
                now,
                token,
                DaeOutcome::Nak(ErrorCause::RESOURCES_UNAVAILABLE),
            );
            return Ok(());
        }
        if let Some(cause) = self.nas_mismatch(&packet) {
            self.respond(now, token, DaeOutcome::Nak(cause));
            return Ok(());
        }
        let session = SessionSelector::from_packet(&packet);
        if session.is_empty() {
            self.respond(now, token, DaeOutcome::Nak(ErrorCause::MISSING_ATTRIBUTE));
            return Ok(());
        }
        if code == Code::DISCONNECT_REQUEST {
            self.events
                .push_back(DaeEvent::Disconnect { token, session });
            return Ok(());
        }
        let authorization = Authorization::from_packet(&packet);
        let change = Change {
            rate_limit: authorization.rate_limit,
            session_timeout: authorization.session_timeout,
            idle_timeout: authorization.idle_timeout,
            interim_interval: authorization.interim_interval,
        };
        if change.is_empty() {
            self.respond(now, token, DaeOutcome::Nak(ErrorCause::UNSUPPORTED_SERVICE));
            return Ok(());
        }
        self.events.push_back(DaeEvent::Change {
            token,
            session,
            change,
        });
        Ok(())
    }

    /// Error-Cause 403 when the request names another NAS.
    fn nas_mismatch(&self, packet: &Packet) -> Option<ErrorCause> {
        let nas = &self.config.nas;
        let id_mismatch = packet
            .get(AttributeType::NAS_IDENTIFIER)
            .is_some_and(|a| nas.identifier.as_deref() != Some(a.as_text().as_str()));
        let ip_mismatch = packet
            .get(AttributeType::NAS_IP_ADDRESS)
            .is_some_and(|a| a.as_ipv4().ok() != nas.ip_address);
        (id_mismatch || ip_mismatch).then_some(ErrorCause::NAS_IDENTIFICATION_MISMATCH)
    }

    /// The owner's answer to the request `token`: an ACK, or a NAK with an Error-Cause. An
    /// unknown or already answered token does nothing (false).
    pub fn respond(&mut self, now: Instant, token: DaeToken, outcome: DaeOutcome) -> bool {
        let Some(p) = self.pending.remove(&token.0) else {
            return false;
        };
        let code = match (p.code, outcome) {
            (Code::DISCONNECT_REQUEST, DaeOutcome::Ack) => Code::DISCONNECT_ACK,
            (Code::DISCONNECT_REQUEST, DaeOutcome::Nak(_)) => Code::DISCONNECT_NAK,
            (_, DaeOutcome::Ack) => Code::COA_ACK,
            (_, DaeOutcome::Nak(_)) => Code::COA_NAK,
        };
        let mut answer = Packet::new(code, p.identifier);
        answer.push(Attribute::new(
            AttributeType::MESSAGE_AUTHENTICATOR,
            [0; 16],
        ));
        match outcome {
            DaeOutcome::Ack => self.stats.acks += 1,
            DaeOutcome::Nak(cause) => {
                self.stats.naks += 1;
                answer.push(Attribute::integer(AttributeType::ERROR_CAUSE, cause.0));
            }
        }
        let Ok(mut bytes) = answer.to_bytes() else {
            return false;
        };
        sign_response(&mut bytes, &p.authenticator, &p.secret);
        debug!("DAE: sent [{answer}] to {}", p.from);
        let _ = p.received;
        self.answered
            .push_back((now, p.from, p.identifier, p.authenticator, bytes.clone()));
        if self.answered.len() > self.config.max_pending {
            self.answered.pop_front();
        }
        self.transmit.push_back(DaeTransmit {
            destination: p.from,
            bytes,
        });
        true
    }

    /// The next datagram to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<DaeTransmit> {
        self.transmit.pop_front()
    }

    /// The next request for the owner.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<DaeEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::{VENDOR_MIKROTIK, mikrotik};
    use crate::crypto::{sign_request, verify_response};

    fn secret() -> Secret {
        Secret::from("dae")
    }

    fn server() -> DaeServer {
        let client = DaeClient {
            address: "127.0.0.1".parse().unwrap(),
            secret: secret(),
        };
        let mut nas = NasIdentity::named("ac1");
        nas.ip_address = Some(Ipv4Addr::new(192, 0, 2, 1));
        DaeServer::new(DaeConfig::new(vec![client], nas))
    }

    fn request(code: Code, attributes: Vec<Attribute>, with: &Secret) -> (Packet, Vec<u8>) {
        let mut p = Packet::new(code, 9);
        p.attributes = attributes;
        p.push(Attribute::new(
            AttributeType::MESSAGE_AUTHENTICATOR,
            [0; 16],
        ));
        let mut bytes = p.to_bytes().unwrap();
        sign_request(&mut bytes, with);
        p.authenticator.copy_from_slice(&bytes[4..20]);
        (p, bytes)
    }

    const FROM: &str = "127.0.0.1:4000";
    const NOW: u64 = 1_700_000_000;

    fn answer(dae: &mut DaeServer, request: &Packet) -> Packet {
        let t = dae.poll_transmit().unwrap();
        assert_eq!(
            verify_response(&t.bytes, &request.authenticator, &secret(), true),
            Ok(())
        );
        Packet::parse(&t.bytes).unwrap()
    }

    #[test]
    fn coa_changes_the_rate_and_is_acked() {
        let mut dae = server();
        let now = Instant::now();
        let (p, bytes) = request(
            Code::COA_REQUEST,
            vec![
                Attribute::text(AttributeType::USER_NAME, "alice"),
                Attribute::vendor(VENDOR_MIKROTIK, mikrotik::RATE_LIMIT, b"4M/2M"),
                Attribute::integer(AttributeType::SESSION_TIMEOUT, 60),
                Attribute::integer(AttributeType::EVENT_TIMESTAMP, NOW as u32 - 10),
            ],
            &secret(),
        );
        dae.handle_input(now, NOW, FROM.parse().unwrap(), &bytes);
        let Some(DaeEvent::Change {
            token,
            session,
            change,
        }) = dae.poll_event()
        else {
            panic!()
        };
        assert!(session.matches("X", "alice", None, None));
        assert!(!session.matches("X", "bob", None, None));
        assert_eq!(
            change.rate_limit,
            Some(RateLimit::new(4_000_000, 2_000_000))
        );
        assert_eq!(change.session_timeout, Some(Duration::from_secs(60)));
        assert!(dae.respond(now, token, DaeOutcome::Ack));
        assert!(!dae.respond(now, token, DaeOutcome::Ack));
        assert_eq!(answer(&mut dae, &p).code, Code::COA_ACK);
        // The server retransmits: the same answer again, no second event.
        dae.handle_input(now, NOW, FROM.parse().unwrap(), &bytes);
        assert_eq!(dae.poll_event(), None);
        assert_eq!(answer(&mut dae, &p).code, Code::COA_ACK);
        assert_eq!(dae.stats().duplicates, 1);
    }

    #[test]
    fn disconnect_nak_with_error_cause() {
        let mut dae = server();
        let now = Instant::now();
        let (p, bytes) = request(
            Code::DISCONNECT_REQUEST,
            vec![Attribute::text(AttributeType::ACCT_SESSION_ID, "S1")],
            &secret(),
        );
        dae.handle_input(now, NOW, FROM.parse().unwrap(), &bytes);
        let Some(DaeEvent::Disconnect { token, .. }) = dae.poll_event() else {
            panic!()
        };
        dae.respond(
            now,
            token,
            DaeOutcome::Nak(ErrorCause::SESSION_CONTEXT_NOT_FOUND),
        );
        let nak = answer(&mut dae, &p);
        assert_eq!(nak.code, Code::DISCONNECT_NAK);
        assert_eq!(
            nak.get(AttributeType::ERROR_CAUSE).unwrap().as_u32(),
            Ok(503)
        );
    }

    #[test]
    fn refused_requests() {
        let mut dae = server();
        let now = Instant::now();
        let from = FROM.parse().unwrap();
        // Wrong secret: dropped, counted, never answered.
        let (_, bytes) = request(
            Code::COA_REQUEST,
            vec![Attribute::text(AttributeType::USER_NAME, "alice")],
            &Secret::from("wrong"),
        );
        dae.handle_input(now, NOW, from, &bytes);
        assert_eq!((dae.poll_event(), dae.poll_transmit()), (None, None));
        assert_eq!(dae.stats().forged, 1);
        // Unknown sender.
        dae.handle_input(now, NOW, "198.51.100.7:1".parse().unwrap(), &bytes);
        assert_eq!(dae.stats().unknown_client, 1);
        // Replayed (old Event-Timestamp).
        let (_, bytes) = request(
            Code::DISCONNECT_REQUEST,
            vec![
                Attribute::text(AttributeType::USER_NAME, "alice"),
                Attribute::integer(AttributeType::EVENT_TIMESTAMP, (NOW - 3600) as u32),
            ],
            &secret(),
        );
        dae.handle_input(now, NOW, from, &bytes);
        assert_eq!(dae.stats().stale, 1);
        // Not a DAE request, garbage.
        dae.handle_input(now, NOW, from, &[1, 2, 3]);
        let (_, bytes) = request(Code::ACCESS_REQUEST, vec![], &secret());
        dae.handle_input(now, NOW, from, &bytes);
        assert_eq!(dae.stats().malformed, 2);
        // Authentic but naming another NAS, or no session: NAK at once.
        let (p, bytes) = request(
            Code::DISCONNECT_REQUEST,
            vec![
                Attribute::text(AttributeType::USER_NAME, "alice"),
                Attribute::text(AttributeType::NAS_IDENTIFIER, "other"),
            ],
            &secret(),
        );
        dae.handle_input(now, NOW, from, &bytes);
        let nak = answer(&mut dae, &p);
        assert_eq!(
            nak.get(AttributeType::ERROR_CAUSE).unwrap().as_u32(),
            Ok(403)
        );
        let (p, bytes) = request(Code::COA_REQUEST, vec![], &secret());
        dae.handle_input(now, NOW, from, &bytes);
        let nak = answer(&mut dae, &p);
        assert_eq!(nak.code, Code::COA_NAK);
        assert_eq!(
            nak.get(AttributeType::ERROR_CAUSE).unwrap().as_u32(),
            Ok(402)
        );
        // A CoA that changes nothing we know.
        let (p, bytes) = request(
            Code::COA_REQUEST,
            vec![Attribute::text(AttributeType::USER_NAME, "alice")],
            &secret(),
        );
        dae.handle_input(now, NOW, from, &bytes);
        let nak = answer(&mut dae, &p);
        assert_eq!(
            nak.get(AttributeType::ERROR_CAUSE).unwrap().as_u32(),
            Ok(405)
        );
        assert_eq!(dae.poll_event(), None);
    }

    #[test]
    fn message_authenticator_required() {
        let mut dae = server();
        let mut p = Packet::new(Code::DISCONNECT_REQUEST, 1);
        p.push(Attribute::text(AttributeType::USER_NAME, "alice"));
        let mut bytes = p.to_bytes().unwrap();
        sign_request(&mut bytes, &secret());
        dae.handle_input(Instant::now(), NOW, FROM.parse().unwrap(), &bytes);
        assert_eq!(dae.stats().forged, 1);
        assert_eq!(dae.poll_event(), None);
    }
}
