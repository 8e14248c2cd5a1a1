//! The access concentrator (server) side of discovery, sans-IO.
//!
//! # Cost per frame and per session
//!
//! Nothing here walks the session table on a per-frame path. Sessions are kept in a B-tree by
//! session id (PADT, accept, close, session frames: O(log n)); repeated PADRs and
//! one-session-per-host are found in a second B-tree keyed by (client address, AC-Cookie)
//! (O(log n + sessions of that client)); session ids come from random draws checked against an
//! 8 KiB bitmap of the ids in use (O(1) expected). A PADI is read in place, answered from a
//! stateless cookie and written into one vector: no allocation but the PADO itself, and nothing
//! kept.
//!
//! A session costs its [`AcSession`] record (96 bytes on 64-bit targets, no heap while its
//! Host-Uniq and Relay-Session-Id together fit 22 bytes; the service name is shared with the
//! configuration) inside a B-tree node, plus a 24-byte entry in the second B-tree: measured with
//! a counting allocator, about 200 bytes and 0.3 allocations a session (B-tree nodes, with their
//! slack) at 1,000 to 50,000 sessions. Fixed per access concentrator: the id bitmap (8 KiB) and
//! the two per-address rate-limit tables ([`AcConfig::limiter_slots`] × 24 bytes each, 96 KiB
//! each by default), about 200 KiB; and once the overall PADI limit has refused a PADI, the
//! memory of refused addresses behind the retry lane ([`AcConfig::padi_retry_memory`], 32 MiB
//! by default). A PADI costs one allocation (its PADO) and about 0.3 µs
//! (release build, rate limits off), whatever the number of sessions.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ppp_core::{CloseReason, Machine, Random};
use tracing::debug;

use crate::cookie::{self, COOKIE_LEN, CookieKey};
use crate::limit::{MacLimiter, RateLimit, RefusalMemory, TokenBucket};
use crate::session::DEFAULT_MAX_PAYLOAD;
use crate::wire::{
    Code, DiscoveryView, ETHERTYPE_SESSION, FrameWriter, MacAddr, Packet, TagType, VERSION_TYPE,
    tag_wire_len,
};

/// The text of the Generic-Error in a PADT answering a frame for an unknown session.
const UNKNOWN_SESSION_TEXT: &str = "unknown session";

/// How the access concentrator answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcConfig {
    /// AC-Name sent in every PADO.
    pub ac_name: String,
    /// Services offered. A PADI for any service (empty Service-Name) is answered with all of
    /// them, and a session requested for any service is granted the first of them (reported in
    /// [`AcEvent::SessionUp`], [`AcSession::service_name`] and the PADS). A PADI for a service not
    /// in this list gets no PADO. With an empty list, only requests for any service are served,
    /// and they are granted the empty name.
    pub services: Vec<String>,
    /// Most sessions at once (at most 65,534: the session ids there are). Beyond it a PADR gets a
    /// PADS with AC-System-Error and session id 0, as rp-pppoe's `pppoe-server` does.
    pub max_sessions: usize,
    /// Do not answer PADIs while full (rp-pppoe's `-i`); by default they still get a PADO.
    pub ignore_padi_when_full: bool,
    /// A new session from a MAC address that already has one closes the old one (PADT and
    /// [`AcEvent::SessionDown`] with [`AcSessionEnd::Replaced`]).
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
    /// accepted, so a cookie lives between one and two windows. Windows count from the first
    /// instant the access concentrator is given (its first input of any kind).
    pub cookie_window: Duration,
    /// Largest PPP payload the AC can carry (RFC 4638); `None` or ≤ 1492 ignores
    /// PPP-Max-Payload.
    pub max_payload: Option<u16>,
    /// PADIs answered per second overall (accel-ppp's `padi-limit`); beyond, they are dropped and
    /// counted in [`AcStats::padi_limited`]. `None`: no limit.
    pub padi_limit: Option<RateLimit>,
    /// PADIs answered per second from one MAC address; beyond, they are dropped and counted in
    /// [`AcStats::padi_limited_per_mac`]. Checked before the overall limit, so one flooding host
    /// does not use it up. `None`: no limit.
    pub padi_limit_per_mac: Option<RateLimit>,
    /// PADIs answered per second beyond [`padi_limit`](Self::padi_limit) from clients trying
    /// again: a PADI over the overall limit is answered anyway (within this rate) when its
    /// address had a PADI refused between one and three and a half seconds before and none
    /// since, as a client retransmitting after its timeout does, and a flood of random
    /// addresses does not. So during a flood a new client connects at its first retransmission
    /// instead of competing with the flood for the overall limit. Counted in
    /// [`AcStats::padi_retries_answered`]. `None`: refused PADIs stay refused.
    pub padi_retry_limit: Option<RateLimit>,
    /// Bytes of the memory of refused addresses behind
    /// [`padi_retry_limit`](Self::padi_retry_limit) (rounded up to a power of two of 64-byte
    /// lines, at most 64 MiB), allocated at the first PADI refused by the overall limit and
    /// never grown. The larger, the fewer flood PADIs pass for retries: with 32 MiB about 35 a
    /// second of a flood of 700,000 random addresses a second, 220 of 1.1 million, 800 of 1.5
    /// million (see [`AcStats::padi_retries_answered`]). 0 turns the retry lane off.
    pub padi_retry_memory: usize,
    /// PADTs per second overall answering session frames for unknown sessions (see
    /// [`AccessConcentrator::unknown_session`]); beyond, counted in
    /// [`AcStats::unknown_session_limited`]. `None`: no limit.
    pub unknown_session_limit: Option<RateLimit>,
    /// The same, per client MAC address. `None`: no limit.
    pub unknown_session_limit_per_mac: Option<RateLimit>,
    /// Slots of each per-MAC rate-limit table (rounded up to a power of two, at most 2^20; 24
    /// bytes a slot). The tables never grow: a flood of random MAC addresses costs no memory.
    pub limiter_slots: usize,
    /// Frames held for [`AccessConcentrator::poll_transmit`] before answers to unauthenticated
    /// input (PADOs, refusals, repeated PADSes, PADTs for unknown sessions) are dropped and
    /// counted in [`AcStats::tx_dropped`], and new sessions wait (their PADR is dropped and
    /// counted in [`AcStats::padr_deferred`]; the client sends it again). Frames a session needs
    /// (its PADS, its PADT) are never dropped: they are bounded by the session table.
    pub max_queued_frames: usize,
    /// Events held for [`AccessConcentrator::poll_event`] before new sessions wait (as above).
    /// Events are never dropped: each session has at most three (requested, up, down), so the
    /// queue never holds more than this plus three per session.
    pub max_queued_events: usize,
}

impl Default for AcConfig {
    /// AC "pppoe-ac", one service "internet", 64 sessions, no delay, 60-second cookie windows,
    /// PPP-Max-Payload up to 1500; PADIs: 5,000 a second overall (bursts of 5,000) and 1 a
    /// second per MAC (bursts of 5), and beyond the overall limit 2,000 a second from clients
    /// trying again (a 32 MiB memory of refused addresses, allocated when first needed); PADTs for unknown sessions: 2,000 a second overall (bursts
    /// of 2,000) and 1 a second per MAC (bursts of 2); 4,096-slot limiter tables; 1,024 frames
    /// and 1,024 events queued.
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
            padi_limit: Some(RateLimit::new(5000, 5000)),
            padi_limit_per_mac: Some(RateLimit::new(1, 5)),
            padi_retry_limit: Some(RateLimit::new(2000, 2000)),
            padi_retry_memory: 32 << 20,
            unknown_session_limit: Some(RateLimit::new(2000, 2000)),
            unknown_session_limit_per_mac: Some(RateLimit::new(1, 2)),
            limiter_slots: 4096,
            max_queued_frames: 1024,
            max_queued_events: 1024,
        }
    }
}

/// Why a session of the access concentrator ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcSessionEnd {
    /// The client sent a PADT (with the text of its Generic-Error tag, if any).
    PeerTerminated {
        /// The PADT's error text.
        message: Option<String>,
    },
    /// The owner closed it ([`AccessConcentrator::close_session`] or
    /// [`AccessConcentrator::close`]); the PADT carried the reason's text.
    Closed(CloseReason),
    /// The same client opened a new session ([`AcConfig::one_session_per_host`]).
    Replaced,
}

impl fmt::Display for AcSessionEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcSessionEnd::PeerTerminated { message: None } => {
                f.write_str("terminated by the client")
            }
            AcSessionEnd::PeerTerminated {
                message: Some(message),
            } => write!(f, "terminated by the client: {message}"),
            AcSessionEnd::Closed(reason) => write!(f, "closed: {reason}"),
            AcSessionEnd::Replaced => f.write_str("replaced by a new session of the same client"),
        }
    }
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
        /// The service that will be granted (for a request for any service, the first one
        /// offered).
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
        /// The service granted (for a request for any service, the first one offered).
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
        reason: AcSessionEnd,
    },
}

/// Where a session of the table stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcSessionState {
    /// Waiting for [`AccessConcentrator::accept_session`] (with [`AcConfig::accept_manually`]).
    Requested,
    /// The PADS was sent.
    Up,
}

/// Host-Uniq and Relay-Session-Id bytes stored inline up to this many bytes together.
const INLINE_TAGS: usize = 22;

/// The client's Host-Uniq followed by its Relay-Session-Id: inline when short, else one heap
/// block.
#[derive(Clone, PartialEq, Eq)]
enum TagBytes {
    Inline { len: u8, buf: [u8; INLINE_TAGS] },
    Heap(Box<[u8]>),
}

impl TagBytes {
    fn new(parts: [&[u8]; 2]) -> Self {
        let len = parts[0].len() + parts[1].len();
        match u8::try_from(len) {
            Ok(short) if len <= INLINE_TAGS => {
                let mut buf = [0; INLINE_TAGS];
                buf[..parts[0].len()].copy_from_slice(parts[0]);
                buf[parts[0].len()..len].copy_from_slice(parts[1]);
                TagBytes::Inline { len: short, buf }
            }
            _ => TagBytes::Heap(parts.concat().into_boxed_slice()),
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            TagBytes::Inline { len, buf } => &buf[..usize::from(*len)],
            TagBytes::Heap(bytes) => bytes,
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            TagBytes::Inline { .. } => 0,
            TagBytes::Heap(bytes) => bytes.len(),
        }
    }
}

/// A session in the table: what discovery agreed, kept small (see the module documentation for
/// the bytes). The PADS is not kept: it is rebuilt from these fields when a client repeats its
/// PADR.
#[derive(Clone, PartialEq, Eq)]
pub struct AcSession {
    started: Instant,
    service_name: Arc<str>,
    tags: TagBytes,
    cookie: [u8; COOKIE_LEN],
    client_mac: MacAddr,
    session_id: u16,
    max_payload: Option<u16>,
    host_uniq_len: u16,
    has_host_uniq: bool,
    has_relay: bool,
    state: AcSessionState,
}

impl AcSession {
    /// The session id.
    pub fn session_id(&self) -> u16 {
        self.session_id
    }

    /// Requested or up.
    pub fn state(&self) -> AcSessionState {
        self.state
    }

    /// The client's Ethernet address.
    pub fn client_mac(&self) -> MacAddr {
        self.client_mac
    }

    /// The service granted (for a request for any service, the first one the AC offers).
    pub fn service_name(&self) -> &str {
        &self.service_name
    }

    /// The client's Host-Uniq (empty if it sent none).
    pub fn host_uniq(&self) -> &[u8] {
        self.tags
            .as_slice()
            .get(..usize::from(self.host_uniq_len))
            .unwrap_or_default()
    }

    /// The Relay-Session-Id of the PADR, echoed in PADS and PADT.
    pub fn relay_session_id(&self) -> Option<&[u8]> {
        let bytes = self.tags.as_slice();
        self.has_relay.then(|| {
            bytes
                .get(usize::from(self.host_uniq_len)..)
                .unwrap_or_default()
        })
    }

    /// The RFC 4638 PPP-Max-Payload agreed, if any.
    pub fn max_payload(&self) -> Option<u16> {
        self.max_payload
    }

    /// When the PADS was sent (or, while requested, when the PADR was accepted).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Bytes this record holds on the heap besides its own `size_of` (0 while the Host-Uniq and
    /// Relay-Session-Id fit 22 bytes together; the service name is shared with the
    /// configuration and not counted).
    pub fn heap_bytes(&self) -> usize {
        self.tags.heap_bytes()
    }
}

impl fmt::Debug for AcSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcSession")
            .field("session_id", &format_args!("{:#06x}", self.session_id))
            .field("state", &self.state)
            .field("client_mac", &self.client_mac)
            .field("service_name", &self.service_name())
            .field("host_uniq", &self.host_uniq())
            .field("relay_session_id", &self.relay_session_id())
            .field("max_payload", &self.max_payload)
            .field("started", &self.started)
            .finish()
    }
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AcStats {
    /// PADIs received.
    pub padi_received: u64,
    /// PADOs sent (put in the transmit queue).
    pub pado_sent: u64,
    /// PADIs not answered (unknown service, no Service-Name, full, delay queue full, closed).
    pub padi_ignored: u64,
    /// PADIs dropped by [`AcConfig::padi_limit_per_mac`].
    pub padi_limited_per_mac: u64,
    /// PADIs dropped by [`AcConfig::padi_limit`] (and not answered by the retry lane).
    pub padi_limited: u64,
    /// PADIs over [`AcConfig::padi_limit`] answered because their sender was trying again
    /// (see [`AcConfig::padi_retry_limit`]).
    pub padi_retries_answered: u64,
    /// PADRs received.
    pub padr_received: u64,
    /// PADRs with a missing or wrong AC-Cookie (dropped).
    pub bad_cookies: u64,
    /// PADRs repeated by a client that missed its PADS (the PADS is sent again).
    pub padr_repeated: u64,
    /// Valid PADRs dropped because the transmit or event queue was full (the client repeats
    /// them).
    pub padr_deferred: u64,
    /// PADS with Service-Name-Error sent.
    pub refused_service: u64,
    /// PADS with AC-System-Error sent (full).
    pub refused_full: u64,
    /// PADS granting a session sent.
    pub sessions_started: u64,
    /// PADTs received for a known session.
    pub padt_received: u64,
    /// PADTs sent for sessions of the table.
    pub padt_sent: u64,
    /// PADTs sent answering a session frame for an unknown session.
    pub unknown_session_padts: u64,
    /// Unknown-session PADTs not sent because of [`AcConfig::unknown_session_limit`] or
    /// [`AcConfig::unknown_session_limit_per_mac`].
    pub unknown_session_limited: u64,
    /// Answers to unauthenticated input (PADOs, refusals, repeated PADSes, unknown-session
    /// PADTs) dropped because the transmit queue was full.
    pub tx_dropped: u64,
    /// Frames that did not parse.
    pub malformed: u64,
    /// Well-formed frames ignored (not for us, unknown session, …).
    pub ignored: u64,
}

/// The session ids in use, as a bitmap over the whole 16-bit space (8 KiB).
#[derive(Clone)]
struct SessionIds {
    used: Box<[u64]>,
    /// The ids this table may hand out: those ≡ `offset` (mod `step`).
    step: u16,
    offset: u16,
}

/// Random draws before the bitmap is searched.
const ID_DRAWS: usize = 16;
const ID_WORDS: usize = (u16::MAX as usize + 1) / 64;

impl SessionIds {
    fn new() -> Self {
        let mut ids = SessionIds {
            used: vec![0; ID_WORDS].into_boxed_slice(),
            step: 1,
            offset: 0,
        };
        // Never handed out: 0 is "no session" and 0xFFFF is reserved (RFC 2516 §4).
        ids.set(0, true);
        ids.set(0xffff, true);
        ids
    }

    /// The ids of member `index` of a group of `members` ([`AcGroup`]): only those ≡ `index`
    /// (mod `members`), the others marked as in use, so that the members of a group never hand
    /// out the same id.
    fn for_member(index: u16, members: u16) -> Self {
        let mut ids = SessionIds::new();
        if members > 1 {
            for id in 0..=u16::MAX {
                if id % members != index {
                    ids.set(id, true);
                }
            }
        }
        ids.step = members.max(1);
        ids.offset = index;
        ids
    }

    fn is_used(&self, id: u16) -> bool {
        let id = usize::from(id);
        self.used
            .get(id / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    fn set(&mut self, id: u16, used: bool) {
        let id = usize::from(id);
        if let Some(word) = self.used.get_mut(id / 64) {
            if used {
                *word |= 1 << (id % 64);
            } else {
                *word &= !(1 << (id % 64));
            }
        }
    }

    /// A random free id, never 0 or 0xFFFF (and of this member's ids in a group): up to
    /// [`ID_DRAWS`] random draws (each free with the
    /// probability of a free id, so O(1) expected below a nearly full table), then the first free
    /// id after a random point (at most 1,024 words read). `None` when every id is in use.
    fn allocate(&mut self, random: &Random) -> Option<u16> {
        for _ in 0..ID_DRAWS {
            // A draw moved onto the ids of this table (ids of other members are marked used).
            let drawn = random.u32() >> 16;
            let step = u32::from(self.step);
            let Ok(id) = u16::try_from(drawn - drawn % step + u32::from(self.offset)) else {
                continue;
            };
            if !self.is_used(id) {
                self.set(id, true);
                return Some(id);
            }
        }
        let start = random.u32() as usize % ID_WORDS;
        for i in 0..ID_WORDS {
            let index = (start + i) % ID_WORDS;
            let free = !self.used[index];
            if free != 0 {
                let id = u16::try_from(index * 64 + free.trailing_zeros() as usize).ok()?;
                self.set(id, true);
                return Some(id);
            }
        }
        None
    }
}

/// Access concentrators that serve one interface together, one per worker thread: what they
/// share so that, to a client, they are one.
///
/// Each member sees only its own clients' frames (the caller steers every frame of a client to
/// one member, by its MAC address: see [`AcGroup::member_of`]); all PADIs go to one member
/// (say member 0, so that the PADI limits and the retry lane see the whole flood). The members
/// share what a client's discovery crosses between them or what counts for all:
/// - the cookie key and the origin of its time windows, so that a PADO from the member that
///   takes PADIs carries a cookie the member that gets the client's PADR accepts;
/// - the session count behind [`AcConfig::max_sessions`] (an atomic counter: a PADR takes a
///   slot or is refused, whichever member gets it);
/// - the session ids: member `k` of `n` hands out only ids ≡ `k` (mod `n`), so ids stay unique
///   on the interface and a session's id says which member has it.
///
/// Everything else (sessions, rate limits, per-host rules) is per member; with clients steered
/// by MAC address, a client's sessions are all in one member, so one-session-per-host holds.
///
/// ```
/// use std::time::Instant;
/// use ppp_core::Random;
/// use pppoe_discovery::{AcConfig, AcEvent, AcGroup, AccessConcentrator, Client, ClientConfig, DiscoveryEvent, MacAddr};
///
/// let now = Instant::now();
/// let ac_mac = MacAddr([2, 0, 0, 0, 0, 0xac]);
/// let group = AcGroup::new(2, &Random::seeded(1), now);
/// let mut members: Vec<AccessConcentrator> = (0..2)
///     .map(|k| {
///         let member = group.member(k).expect("k < 2");
///         AccessConcentrator::member(AcConfig::default(), ac_mac, Random::seeded(10 + u64::from(k)), member)
///     })
///     .collect();
/// // A client whose frames are steered to member 1 (its address is odd).
/// let client_mac = MacAddr([2, 0, 0, 0, 0, 0x03]);
/// assert_eq!(group.member_of(client_mac), 1);
/// let mut client = Client::new(ClientConfig::default(), client_mac, Random::seeded(2));
/// client.open(now);
/// loop {
///     let mut moved = false;
///     while let Some(frame) = client.poll_transmit() {
///         // PADIs to member 0, everything else to the client's member.
///         let to = if frame[15] == 0x09 { 0 } else { group.member_of(client_mac) };
///         members[usize::from(to)].handle_input(now, &frame);
///         moved = true;
///     }
///     for member in &mut members {
///         while let Some(frame) = member.poll_transmit() {
///             client.handle_input(now, &frame);
///             moved = true;
///         }
///     }
///     if !moved {
///         break;
///     }
/// }
/// let Some(AcEvent::SessionUp { session_id, .. }) = members[1].poll_event() else { panic!() };
/// assert_eq!(session_id % 2, 1, "member 1's ids are odd");
/// assert!(matches!(client.poll_event(), Some(DiscoveryEvent::SessionUp { .. })));
/// assert_eq!(group.sessions(), 1);
/// ```
#[derive(Clone)]
pub struct AcGroup {
    members: u16,
    cookie_key: Arc<CookieKey>,
    epoch: Instant,
    sessions: Arc<AtomicUsize>,
}

impl fmt::Debug for AcGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The cookie key is a secret: never printed.
        f.debug_struct("AcGroup")
            .field("members", &self.members)
            .field("sessions", &self.sessions())
            .finish_non_exhaustive()
    }
}

impl AcGroup {
    /// A group of `members` access concentrators (at least 1), with a cookie key drawn from
    /// `random` and cookie time windows counted from `epoch`.
    pub fn new(members: u16, random: &Random, epoch: Instant) -> Self {
        AcGroup {
            members: members.max(1),
            cookie_key: Arc::new(CookieKey::generate(random)),
            epoch,
            sessions: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// How many members the group has.
    pub fn members(&self) -> u16 {
        self.members
    }

    /// Member `index` (`None` unless `index < members`), to give to
    /// [`AccessConcentrator::member`].
    pub fn member(&self, index: u16) -> Option<AcMember> {
        (index < self.members).then(|| AcMember {
            group: self.clone(),
            index,
        })
    }

    /// The member that serves a client: its address's last byte modulo the number of members
    /// (what a socket filter can compute: see `ppp_tokio::packet::shard_filter`).
    pub fn member_of(&self, client: MacAddr) -> u16 {
        u16::from(client.0[5]) % self.members
    }

    /// The member that has session `session_id` (its id modulo the number of members).
    pub fn member_of_session(&self, session_id: u16) -> u16 {
        session_id % self.members
    }

    /// Sessions the members have together (requested or up).
    pub fn sessions(&self) -> usize {
        self.sessions.load(Ordering::Acquire)
    }
}

/// One member of an [`AcGroup`]: what [`AccessConcentrator::member`] is made from.
#[derive(Clone, Debug)]
pub struct AcMember {
    group: AcGroup,
    index: u16,
}

impl AcMember {
    /// Its index in the group.
    pub fn index(&self) -> u16 {
        self.index
    }

    /// The group.
    pub fn group(&self) -> &AcGroup {
        &self.group
    }
}

/// The access-concentrator side of PPPoE discovery for one interface, sans-IO.
///
/// Inputs: [`handle_input`](Self::handle_input) (every Ethernet frame of Ethertype 0x8863
/// received; session frames of Ethertype 0x8864 may be given too, see below),
/// [`handle_timeout`](Self::handle_timeout), [`close_session`](Self::close_session),
/// [`close`](Self::close) / [`open`](Self::open), [`accept_session`](Self::accept_session) /
/// [`reject_session`](Self::reject_session), [`unknown_session`](Self::unknown_session). After
/// each, drain [`poll_transmit`](Self::poll_transmit) and [`poll_event`](Self::poll_event), then
/// wake up at [`poll_timeout`](Self::poll_timeout). It implements [`Machine`].
///
/// It answers from construction (it only ever answers, so nothing is sent before the first
/// frame); [`close`](Self::close) ends every session and stops answering, [`open`](Self::open)
/// answers again.
///
/// AC-Cookies are stateless: an HMAC-SHA1 (truncated to 16 bytes) of the client's address, its
/// Host-Uniq and the time window, under a key drawn from the injected [`Random`] at creation
/// (zeroized on drop, never printed). A PADI therefore allocates nothing but its PADO and
/// keeps nothing (with a PADO delay, at most [`AcConfig::max_pending_offers`] frames wait). Its
/// cookie time windows start at the first instant it is given.
///
/// Session frames for a session it does not have (after a restart, say) are answered with a
/// PADT, rate-limited, so that the client starts again at once: call
/// [`unknown_session`](Self::unknown_session), or give the frame to
/// [`handle_input`](Self::handle_input).
///
/// A client and an access concentrator in memory:
///
/// ```
/// use std::time::Instant;
/// use ppp_core::Random;
/// use pppoe_discovery::{AcConfig, AcEvent, AccessConcentrator, Client, ClientConfig, DiscoveryEvent, MacAddr};
///
/// let now = Instant::now();
/// let mut ac = AccessConcentrator::new(AcConfig::default(), MacAddr([2, 0, 0, 0, 0, 0xac]), Random::seeded(1));
/// let mut client = Client::new(ClientConfig::default(), MacAddr([2, 0, 0, 0, 0, 1]), Random::seeded(2));
/// client.open(now); // PADI
/// loop {
///     let mut moved = false;
///     while let Some(frame) = client.poll_transmit() {
///         ac.handle_input(now, &frame); // PADI, then PADR
///         moved = true;
///     }
///     while let Some(frame) = ac.poll_transmit() {
///         client.handle_input(now, &frame); // PADO, then PADS
///         moved = true;
///     }
///     if !moved {
///         break;
///     }
/// }
/// let Some(AcEvent::SessionUp { session_id, service_name, .. }) = ac.poll_event() else { panic!() };
/// assert_eq!(service_name, "internet"); // asked for any service, granted the first offered
/// assert!(matches!(client.poll_event(), Some(DiscoveryEvent::SessionUp { session_id: id, .. }) if id == session_id));
/// assert_eq!(ac.session(session_id).map(|s| s.client_mac()), Some(MacAddr([2, 0, 0, 0, 0, 1])));
/// ```
pub struct AccessConcentrator {
    config: AcConfig,
    /// The configured services, shared with every session record.
    services: Vec<Arc<str>>,
    /// The name granted for "any service" when no service is configured.
    no_service: Arc<str>,
    mac: MacAddr,
    random: Random,
    cookie_key: Arc<CookieKey>,
    /// The first instant given (or the group's): the origin of cookie windows and of the rate
    /// limiters' clock.
    epoch: Option<Instant>,
    /// In a group: the sessions of all members, counted together.
    group_sessions: Option<Arc<AtomicUsize>>,
    open: bool,
    sessions: BTreeMap<u16, AcSession>,
    /// (client, AC-Cookie of its PADR) → session id.
    by_client: BTreeMap<(MacAddr, [u8; COOKIE_LEN]), u16>,
    ids: SessionIds,
    pending_offers: VecDeque<(Instant, Vec<u8>)>,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<AcEvent>,
    padi_overall: TokenBucket,
    padi_per_mac: MacLimiter,
    /// Beyond `padi_overall`: the retry lane's bucket and its memory of refused addresses.
    padi_retries: TokenBucket,
    padi_refusals: RefusalMemory,
    unknown_overall: TokenBucket,
    unknown_per_mac: MacLimiter,
    stats: AcStats,
}

impl Drop for AccessConcentrator {
    /// A member of a group gives its sessions' slots back to the group's count.
    fn drop(&mut self) {
        self.give_back_slots(self.sessions.len());
    }
}

impl fmt::Debug for AccessConcentrator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The cookie key is a secret: never printed.
        f.debug_struct("AccessConcentrator")
            .field("mac", &self.mac)
            .field("open", &self.open)
            .field("sessions", &self.sessions.len())
            .field("pending_offers", &self.pending_offers.len())
            .field("transmits", &self.transmits.len())
            .field("events", &self.events.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl AccessConcentrator {
    /// An access concentrator on the interface with address `mac`, drawing its cookie key, the
    /// keys of its rate-limit tables and its session ids from `random`. Nothing is sent; it
    /// answers from now on.
    pub fn new(config: AcConfig, mac: MacAddr, random: Random) -> Self {
        let cookie_key = Arc::new(CookieKey::generate(&random));
        Self::build(config, mac, random, cookie_key, None)
    }

    /// Member `member` of a group of access concentrators serving one interface together
    /// ([`AcGroup`]): like [`new`](Self::new), but with the group's cookie key and cookie
    /// windows, its session count for [`AcConfig::max_sessions`], and only this member's session
    /// ids. The caller gives it only the frames of its clients ([`AcGroup::member_of`]), and
    /// PADIs to one member only.
    pub fn member(config: AcConfig, mac: MacAddr, random: Random, member: AcMember) -> Self {
        let group = member.group;
        let mut ac = Self::build(config, mac, random, group.cookie_key, Some(group.sessions));
        ac.epoch = Some(group.epoch);
        ac.ids = SessionIds::for_member(member.index, group.members);
        ac
    }

    fn build(
        config: AcConfig,
        mac: MacAddr,
        random: Random,
        cookie_key: Arc<CookieKey>,
        group_sessions: Option<Arc<AtomicUsize>>,
    ) -> Self {
        let slots = |limit: Option<RateLimit>| limit.map_or(0, |_| config.limiter_slots);
        let padi_per_mac = MacLimiter::new(slots(config.padi_limit_per_mac), &random);
        let unknown_per_mac = MacLimiter::new(slots(config.unknown_session_limit_per_mac), &random);
        let retry_lane = config.padi_limit.is_some() && config.padi_retry_limit.is_some();
        let padi_refusals = RefusalMemory::new(
            if retry_lane {
                config.padi_retry_memory
            } else {
                0
            },
            &random,
        );
        let full = |limit: Option<RateLimit>| {
            limit.map_or_else(TokenBucket::default, |l| TokenBucket::full(l, 0))
        };
        AccessConcentrator {
            services: config
                .services
                .iter()
                .map(|s| Arc::from(s.as_str()))
                .collect(),
            no_service: Arc::from(""),
            mac,
            random,
            cookie_key,
            epoch: None,
            group_sessions,
            open: true,
            sessions: BTreeMap::new(),
            by_client: BTreeMap::new(),
            ids: SessionIds::new(),
            pending_offers: VecDeque::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            padi_overall: full(config.padi_limit),
            padi_per_mac,
            padi_retries: full(config.padi_retry_limit),
            padi_refusals,
            unknown_overall: full(config.unknown_session_limit),
            unknown_per_mac,
            stats: AcStats::default(),
            config,
        }
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

    /// Whether it answers (true from construction until [`close`](Self::close)).
    pub fn is_open(&self) -> bool {
        self.open
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

    /// Everything the AC holds that varies, in entries: sessions, delayed PADOs, undrained
    /// frames and events. With the queues drained and no PADO delay, PADIs never change it. (The
    /// id bitmap and the rate-limit tables have a fixed size from construction.)
    pub fn state_size(&self) -> usize {
        self.sessions.len() + self.pending_offers.len() + self.transmits.len() + self.events.len()
    }

    /// Frames waiting in the transmit queue.
    pub fn transmit_queue_len(&self) -> usize {
        self.transmits.len()
    }

    /// Whether the transmit queue holds [`AcConfig::max_queued_frames`] frames or more: until
    /// the owner drains it, answers to unauthenticated input are dropped and new sessions wait.
    /// Back-pressure for an owner whose socket is full: stop reading discovery frames instead.
    pub fn transmit_queue_full(&self) -> bool {
        self.transmits.len() >= self.config.max_queued_frames
    }

    /// Starts answering again after [`close`](Self::close). (An access concentrator answers from
    /// construction: calling this first is allowed, not needed.)
    pub fn open(&mut self, now: Instant) {
        self.clock(now);
        self.open = true;
    }

    /// Administrative close: ends every session with a PADT carrying `reason`'s text (reported
    /// as [`AcEvent::SessionDown`] with [`AcSessionEnd::Closed`]), drops delayed PADOs, and
    /// stops answering PADIs and PADRs until [`open`](Self::open). For a program shutting down,
    /// pass [`CloseReason::Shutdown`]. This is what `shutdown` was.
    pub fn close(&mut self, now: Instant, reason: CloseReason) {
        self.clock(now);
        self.open = false;
        self.pending_offers.clear();
        let ids: Vec<u16> = self.sessions.keys().copied().collect();
        for id in ids {
            self.end_session(id, AcSessionEnd::Closed(reason.clone()), reason.text());
        }
    }

    /// Ends a session: sends a PADT with `reason`'s text in a Generic-Error tag (or, to a
    /// session still requested, a PADS refusing it) and reports [`AcEvent::SessionDown`] with
    /// [`AcSessionEnd::Closed`]. Returns false if there is no such session.
    pub fn close_session(&mut self, now: Instant, session_id: u16, reason: CloseReason) -> bool {
        self.clock(now);
        let text = reason.text().to_owned();
        self.end_session(session_id, AcSessionEnd::Closed(reason), &text)
    }

    /// A frame arrived. Discovery frames (0x8863) are processed; session frames (0x8864)
    /// addressed to this AC for a session it does not have are answered as by
    /// [`unknown_session`](Self::unknown_session) (those of its sessions are none of its
    /// business and are ignored). Frames that do not parse, are not for this AC or do not fit
    /// are counted and dropped.
    pub fn handle_input(&mut self, now: Instant, frame: &[u8]) {
        self.clock(now);
        if let Ok(packet) = Packet::new_checked(frame)
            && packet.ethertype() == ETHERTYPE_SESSION
        {
            self.on_session_frame(now, &packet);
            return;
        }
        let view = match DiscoveryView::parse(frame) {
            Ok(view) => view,
            Err(error) => {
                self.stats.malformed += 1;
                debug!(%error, "dropped malformed frame");
                return;
            }
        };
        let for_us = view.dst == self.mac || (view.code == Code::Padi && view.dst.is_broadcast());
        if !for_us || !view.src.is_unicast() {
            self.stats.ignored += 1;
            return;
        }
        debug!("rcvd [{}]", view.packet);
        match view.code {
            Code::Padi => self.on_padi(now, &view),
            Code::Padr => self.on_padr(now, &view),
            Code::Padt => self.on_padt(&view),
            _ => self.stats.ignored += 1,
        }
    }

    /// Time has come for delayed PADOs; a spurious call does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.clock(now);
        while self
            .pending_offers
            .front()
            .is_some_and(|(at, _)| *at <= now)
        {
            if let Some((_, frame)) = self.pending_offers.pop_front()
                && self.push_answer(frame)
            {
                self.stats.pado_sent += 1;
            }
        }
    }

    /// A session frame (Ethertype 0x8864) addressed to this AC came from `client_mac` for
    /// `session_id`, which it does not have (as after a restart): queues a PADT for that session
    /// to the client, so it starts discovery again at once instead of waiting for its keepalive
    /// to fail. Rate-limited per client and overall ([`AcConfig::unknown_session_limit_per_mac`],
    /// [`AcConfig::unknown_session_limit`]) in bounded memory, and counted. Returns whether a
    /// PADT was queued: not for a session of the table with this client, session ids 0 and
    /// 0xFFFF, a non-unicast address, over the limits or with the transmit queue full.
    pub fn unknown_session(&mut self, now: Instant, client_mac: MacAddr, session_id: u16) -> bool {
        let now_us = self.clock(now);
        if !client_mac.is_unicast() || session_id == 0 || session_id == 0xffff {
            self.stats.ignored += 1;
            return false;
        }
        if self
            .sessions
            .get(&session_id)
            .is_some_and(|s| s.client_mac == client_mac)
        {
            return false;
        }
        if let Some(limit) = self.config.unknown_session_limit_per_mac
            && !self.unknown_per_mac.allow(client_mac, limit, now_us)
        {
            self.stats.unknown_session_limited += 1;
            return false;
        }
        if let Some(limit) = self.config.unknown_session_limit
            && !self.unknown_overall.allow(limit, now_us)
        {
            self.stats.unknown_session_limited += 1;
            return false;
        }
        let mut padt = FrameWriter::new(
            client_mac,
            self.mac,
            Code::Padt,
            session_id,
            tag_wire_len(UNKNOWN_SESSION_TEXT.len()),
        );
        padt.tag(TagType::GenericError, UNKNOWN_SESSION_TEXT.as_bytes());
        debug!("session {session_id:#06x} of {client_mac} unknown: PADT");
        let queued = padt.finish().is_ok_and(|frame| self.push_answer(frame));
        if queued {
            self.stats.unknown_session_padts += 1;
        }
        queued
    }

    /// Grants a requested session (see [`AcConfig::accept_manually`]): sends its PADS and
    /// reports [`AcEvent::SessionUp`]. Returns false if there is no such requested session.
    pub fn accept_session(&mut self, now: Instant, session_id: u16) -> bool {
        self.clock(now);
        let Some(session) = self
            .sessions
            .get_mut(&session_id)
            .filter(|s| s.state == AcSessionState::Requested)
        else {
            return false;
        };
        session.state = AcSessionState::Up;
        session.started = now;
        let event = up_event(session);
        let pads = self.pads_frame(&self.sessions[&session_id]);
        if let Some(pads) = pads {
            self.push_session_frame(pads);
        }
        self.stats.sessions_started += 1;
        self.events.push_back(event);
        true
    }

    /// Refuses a requested session (see [`AcConfig::accept_manually`]): sends a PADS with
    /// session id 0 and a Generic-Error carrying `message`, and frees the id; no event. Returns
    /// false if there is no such requested session.
    pub fn reject_session(&mut self, now: Instant, session_id: u16, message: &str) -> bool {
        self.clock(now);
        if self.sessions.get(&session_id).map(|s| s.state) != Some(AcSessionState::Requested) {
            return false;
        }
        if let Some(session) = self.remove_session(session_id) {
            self.send_refusal(&session, TagType::GenericError, message);
        }
        true
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
    /// due); `None` when nothing is pending. Poll again after every input.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending_offers.front().map(|(at, _)| *at)
    }

    /// Time since the first instant given (which becomes the origin).
    fn since_epoch(&mut self, now: Instant) -> Duration {
        let epoch = *self.epoch.get_or_insert(now);
        now.saturating_duration_since(epoch)
    }

    /// Microseconds since the first instant given: the rate limiters' clock.
    fn clock(&mut self, now: Instant) -> u64 {
        u64::try_from(self.since_epoch(now).as_micros()).unwrap_or(u64::MAX)
    }

    /// The cookie time window `now` falls in.
    fn window(&mut self, now: Instant) -> u64 {
        let window = self.config.cookie_window.as_millis().max(1);
        u64::try_from(self.since_epoch(now).as_millis() / window).unwrap_or(u64::MAX)
    }

    /// The PPP-Max-Payload to echo for a request, if both sides want more than 1492.
    fn agreed_max_payload(&self, requested: Option<u16>) -> Option<u16> {
        let ours = self
            .config
            .max_payload
            .filter(|&m| m > DEFAULT_MAX_PAYLOAD)?;
        let theirs = requested.filter(|&m| m > DEFAULT_MAX_PAYLOAD)?;
        Some(ours.min(theirs))
    }

    fn max_sessions(&self) -> usize {
        self.config.max_sessions.min(0xfffe)
    }

    fn is_full(&self) -> bool {
        match &self.group_sessions {
            Some(count) => count.load(Ordering::Acquire) >= self.max_sessions(),
            None => self.sessions.len() >= self.max_sessions(),
        }
    }

    /// Takes a session slot (from the group's count in a group, so that two members cannot
    /// both take the last one) and a session id; `None` when full or out of ids.
    fn take_slot(&mut self) -> Option<u16> {
        let max = self.max_sessions();
        match &self.group_sessions {
            None if self.sessions.len() >= max => return None,
            None => {}
            Some(count) => {
                count
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                        (n < max).then_some(n + 1)
                    })
                    .ok()?;
            }
        }
        let id = self.ids.allocate(&self.random);
        if id.is_none() {
            self.give_back_slots(1);
        }
        id
    }

    fn give_back_slots(&self, slots: usize) {
        if let Some(count) = &self.group_sessions {
            count.fetch_sub(slots, Ordering::AcqRel);
        }
    }

    /// The service granted for `requested`: the first offered for any (empty), the one named if
    /// offered, else `None`.
    fn grant(&self, requested: &[u8]) -> Option<Arc<str>> {
        if requested.is_empty() {
            return Some(self.services.first().unwrap_or(&self.no_service).clone());
        }
        self.services
            .iter()
            .find(|s| s.as_bytes() == requested)
            .cloned()
    }

    fn on_session_frame(&mut self, now: Instant, packet: &Packet<&[u8]>) {
        let src = packet.src_addr();
        if packet.dst_addr() != self.mac
            || packet.version_type() != VERSION_TYPE
            || packet.code() != Code::Session
        {
            self.stats.ignored += 1;
            return;
        }
        let id = packet.session_id();
        if self.sessions.get(&id).is_some_and(|s| s.client_mac == src) {
            self.stats.ignored += 1;
            return;
        }
        let _ = self.unknown_session(now, src, id);
    }

    fn on_padi(&mut self, now: Instant, padi: &DiscoveryView<'_>) {
        self.stats.padi_received += 1;
        if !self.open {
            self.stats.padi_ignored += 1;
            return;
        }
        let Some(requested) = padi.service_name else {
            debug!("PADI from {} without Service-Name", padi.src);
            self.stats.padi_ignored += 1;
            return;
        };
        let offer_all = requested.is_empty();
        if !offer_all && self.grant(requested).is_none() {
            debug!(
                "PADI from {} for unknown service {:?}",
                padi.src,
                String::from_utf8_lossy(requested)
            );
            self.stats.padi_ignored += 1;
            return;
        }
        if self.config.ignore_padi_when_full && self.is_full() {
            debug!("PADI from {} ignored: no free session slots", padi.src);
            self.stats.padi_ignored += 1;
            return;
        }
        let now_us = self.clock(now);
        if let Some(limit) = self.config.padi_limit_per_mac
            && !self.padi_per_mac.allow(padi.src, limit, now_us)
        {
            debug!("PADI from {} over the per-MAC limit", padi.src);
            self.stats.padi_limited_per_mac += 1;
            return;
        }
        if let Some(limit) = self.config.padi_limit
            && !self.padi_overall.allow(limit, now_us)
        {
            // Over the overall limit: answered only if the sender is trying again (and the
            // retry lane has room); every refusal is remembered for that.
            let retry = self.padi_refusals.try_again(padi.src, now_us);
            let lane = self.config.padi_retry_limit;
            if retry && lane.is_some_and(|lane| self.padi_retries.allow(lane, now_us)) {
                debug!(
                    "PADI from {} over the overall limit, answered: trying again",
                    padi.src
                );
                self.stats.padi_retries_answered += 1;
            } else {
                debug!("PADI from {} over the overall limit", padi.src);
                self.stats.padi_limited += 1;
                return;
            }
        }
        let delayed = !self.config.pado_delay.is_zero();
        if delayed && self.pending_offers.len() >= self.config.max_pending_offers {
            debug!("PADI from {} dropped: too many delayed PADOs", padi.src);
            self.stats.padi_ignored += 1;
            return;
        }
        if !delayed && self.transmit_queue_full() {
            self.stats.tx_dropped += 1;
            return;
        }
        let window = self.window(now);
        let cookie = cookie::make(
            &self.cookie_key,
            padi.src,
            padi.host_uniq.unwrap_or_default(),
            window,
        );
        let max_payload = self
            .agreed_max_payload(padi.ppp_max_payload)
            .map(u16::to_be_bytes);
        let offered: &[Arc<str>] = if offer_all { &self.services } else { &[] };
        let optional = [
            (TagType::HostUniq, padi.host_uniq),
            (TagType::AcCookie, Some(&cookie[..])),
            (TagType::RelaySessionId, padi.relay_session_id),
            (TagType::PppMaxPayload, max_payload.as_ref().map(|m| &m[..])),
        ];
        let len = tag_wire_len(self.config.ac_name.len())
            + tag_wire_len(requested.len())
            + offered.iter().map(|s| tag_wire_len(s.len())).sum::<usize>()
            + optional
                .iter()
                .filter_map(|(_, v)| v.map(|v| tag_wire_len(v.len())))
                .sum::<usize>();
        let mut pado = FrameWriter::new(padi.src, self.mac, Code::Pado, 0, len);
        pado.tag(TagType::AcName, self.config.ac_name.as_bytes())
            .tag(TagType::ServiceName, requested);
        for service in offered {
            pado.tag(TagType::ServiceName, service.as_bytes());
        }
        for (tag_type, value) in optional {
            if let Some(value) = value {
                pado.tag(tag_type, value);
            }
        }
        let frame = match pado.finish() {
            Ok(frame) => frame,
            Err(error) => {
                debug!(%error, "cannot answer the PADI from {}", padi.src);
                self.stats.padi_ignored += 1;
                return;
            }
        };
        if delayed {
            debug!(
                "delayed by {:?}: [{}]",
                self.config.pado_delay,
                Packet::new_unchecked(&frame[..])
            );
            self.pending_offers
                .push_back((now + self.config.pado_delay, frame));
        } else if self.push_answer(frame) {
            self.stats.pado_sent += 1;
        }
    }

    fn on_padr(&mut self, now: Instant, padr: &DiscoveryView<'_>) {
        self.stats.padr_received += 1;
        if !self.open {
            self.stats.ignored += 1;
            return;
        }
        let host_uniq = padr.host_uniq.unwrap_or_default();
        let cookie = padr.ac_cookie.unwrap_or_default();
        let window = self.window(now);
        let valid = cookie::check(&self.cookie_key, padr.src, host_uniq, window, cookie);
        let Some(cookie) = <[u8; COOKIE_LEN]>::try_from(cookie).ok().filter(|_| valid) else {
            debug!("PADR from {} with a bad AC-Cookie", padr.src);
            self.stats.bad_cookies += 1;
            return;
        };
        // The client missed our PADS and asks again: same answer, no new session.
        if let Some(&id) = self.by_client.get(&(padr.src, cookie)) {
            self.stats.padr_repeated += 1;
            let Some(session) = self.sessions.get(&id) else {
                return;
            };
            debug!(
                "PADR repeated by {}: PADS for session {id:#06x} again",
                padr.src
            );
            if session.state == AcSessionState::Up
                && let Some(pads) = self.pads_frame(session)
            {
                self.push_answer(pads);
            }
            return;
        }
        let Some(service_name) = padr.service_name.and_then(|r| self.grant(r)) else {
            debug!("PADR from {} for unknown service", padr.src);
            self.stats.refused_service += 1;
            self.send_error_pads(padr, TagType::ServiceNameError, "unknown service");
            return;
        };
        if self.transmit_queue_full() || self.events.len() >= self.config.max_queued_events {
            debug!("PADR from {} deferred: queues full", padr.src);
            self.stats.padr_deferred += 1;
            return;
        }
        if self.config.one_session_per_host {
            let old: Vec<u16> = self
                .by_client
                .range((padr.src, [0; COOKIE_LEN])..=(padr.src, [0xff; COOKIE_LEN]))
                .map(|(_, &id)| id)
                .collect();
            for id in old {
                self.end_session(id, AcSessionEnd::Replaced, CloseReason::Replaced.text());
            }
        }
        let Some(session_id) = self.take_slot() else {
            debug!("PADR from {} refused: no free session slots", padr.src);
            self.stats.refused_full += 1;
            self.send_error_pads(padr, TagType::AcSystemError, "no free session slots");
            return;
        };
        let relay = padr.relay_session_id;
        let state = if self.config.accept_manually {
            AcSessionState::Requested
        } else {
            AcSessionState::Up
        };
        let session = AcSession {
            started: now,
            service_name,
            tags: TagBytes::new([host_uniq, relay.unwrap_or_default()]),
            cookie,
            client_mac: padr.src,
            session_id,
            max_payload: self.agreed_max_payload(padr.ppp_max_payload),
            host_uniq_len: u16::try_from(host_uniq.len()).unwrap_or(u16::MAX),
            has_host_uniq: padr.host_uniq.is_some(),
            has_relay: relay.is_some(),
            state,
        };
        debug!(
            "PPPoE session {session_id:#06x} for {} service {:?}, max payload {:?}",
            session.client_mac, session.service_name, session.max_payload
        );
        let event = if state == AcSessionState::Up {
            if let Some(pads) = self.pads_frame(&session) {
                self.push_session_frame(pads);
            }
            self.stats.sessions_started += 1;
            up_event(&session)
        } else {
            AcEvent::SessionRequested {
                session_id,
                client_mac: session.client_mac,
                service_name: session.service_name().to_owned(),
                host_uniq: session.host_uniq().to_vec(),
                max_payload: session.max_payload,
            }
        };
        self.events.push_back(event);
        self.by_client
            .insert((session.client_mac, cookie), session_id);
        self.sessions.insert(session_id, session);
    }

    fn on_padt(&mut self, padt: &DiscoveryView<'_>) {
        if self
            .sessions
            .get(&padt.session_id)
            .is_none_or(|s| s.client_mac != padt.src)
        {
            debug!(
                "PADT from {} for unknown session {:#06x}",
                padt.src, padt.session_id
            );
            self.stats.ignored += 1;
            return;
        }
        self.stats.padt_received += 1;
        if let Some(session) = self.remove_session(padt.session_id) {
            let message = padt
                .error
                .map(|(_, text)| String::from_utf8_lossy(text).into_owned());
            self.events.push_back(AcEvent::SessionDown {
                session_id: session.session_id,
                client_mac: session.client_mac,
                reason: AcSessionEnd::PeerTerminated { message },
            });
        }
    }

    fn remove_session(&mut self, session_id: u16) -> Option<AcSession> {
        let session = self.sessions.remove(&session_id)?;
        self.by_client.remove(&(session.client_mac, session.cookie));
        self.ids.set(session_id, false);
        self.give_back_slots(1);
        Some(session)
    }

    /// Removes a session, tells the client (a PADT with `text`, or a refusing PADS while it is
    /// requested) and reports it.
    fn end_session(&mut self, session_id: u16, reason: AcSessionEnd, text: &str) -> bool {
        let Some(session) = self.remove_session(session_id) else {
            return false;
        };
        if session.state == AcSessionState::Requested {
            // No PADS yet: the client is still waiting for one, so it gets a refusal.
            self.send_refusal(&session, TagType::GenericError, text);
        } else {
            let relay = session.relay_session_id();
            let len = relay.map_or(0, |r| tag_wire_len(r.len()))
                + if text.is_empty() {
                    0
                } else {
                    tag_wire_len(text.len())
                };
            let mut padt =
                FrameWriter::new(session.client_mac, self.mac, Code::Padt, session_id, len);
            if let Some(relay) = relay {
                padt.tag(TagType::RelaySessionId, relay);
            }
            if !text.is_empty() {
                padt.tag(TagType::GenericError, text.as_bytes());
            }
            if let Ok(frame) = padt.finish() {
                self.push_session_frame(frame);
                self.stats.padt_sent += 1;
            }
        }
        debug!("PPPoE session {session_id:#06x} ended: {reason}");
        self.events.push_back(AcEvent::SessionDown {
            session_id,
            client_mac: session.client_mac,
            reason,
        });
        true
    }

    /// The PADS of a session, rebuilt from its record: Service-Name, then Host-Uniq,
    /// Relay-Session-Id and PPP-Max-Payload as agreed.
    ///
    /// The Service-Name is the service granted (for a request for any service, the first one
    /// offered), not an echo of the request: RFC 2516 §5.4 says the PADS names "the service under
    /// which Access Concentrator has accepted the PPPoE session", and clients (pppd, rp-pppoe,
    /// ours) take it as information only.
    fn pads_frame(&self, session: &AcSession) -> Option<Vec<u8>> {
        let max_payload = session.max_payload.map(u16::to_be_bytes);
        let host_uniq = session.has_host_uniq.then(|| session.host_uniq());
        let optional = [
            (TagType::HostUniq, host_uniq),
            (TagType::RelaySessionId, session.relay_session_id()),
            (TagType::PppMaxPayload, max_payload.as_ref().map(|m| &m[..])),
        ];
        let len = tag_wire_len(session.service_name.len())
            + optional
                .iter()
                .filter_map(|(_, v)| v.map(|v| tag_wire_len(v.len())))
                .sum::<usize>();
        let mut pads = FrameWriter::new(
            session.client_mac,
            self.mac,
            Code::Pads,
            session.session_id,
            len,
        );
        pads.tag(TagType::ServiceName, session.service_name.as_bytes());
        for (tag_type, value) in optional {
            if let Some(value) = value {
                pads.tag(tag_type, value);
            }
        }
        pads.finish().ok()
    }

    /// A PADS with session id 0 and an error tag, answering a PADR (echoing what it sent).
    fn send_error_pads(&mut self, padr: &DiscoveryView<'_>, error: TagType, text: &str) {
        let service = padr.service_name.unwrap_or_default();
        let optional = [
            (TagType::HostUniq, padr.host_uniq),
            (TagType::RelaySessionId, padr.relay_session_id),
        ];
        let len = tag_wire_len(service.len())
            + optional
                .iter()
                .filter_map(|(_, v)| v.map(|v| tag_wire_len(v.len())))
                .sum::<usize>()
            + tag_wire_len(text.len());
        let mut pads = FrameWriter::new(padr.src, self.mac, Code::Pads, 0, len);
        pads.tag(TagType::ServiceName, service);
        for (tag_type, value) in optional {
            if let Some(value) = value {
                pads.tag(tag_type, value);
            }
        }
        pads.tag(error, text.as_bytes());
        if let Ok(frame) = pads.finish() {
            self.push_answer(frame);
        }
    }

    /// A PADS with session id 0 and an error tag for a session of the table that never came up.
    fn send_refusal(&mut self, session: &AcSession, error: TagType, message: &str) {
        let host_uniq = session.has_host_uniq.then(|| session.host_uniq());
        let optional = [
            (TagType::HostUniq, host_uniq),
            (TagType::RelaySessionId, session.relay_session_id()),
        ];
        let len = tag_wire_len(session.service_name.len())
            + optional
                .iter()
                .filter_map(|(_, v)| v.map(|v| tag_wire_len(v.len())))
                .sum::<usize>()
            + tag_wire_len(message.len());
        let mut pads = FrameWriter::new(session.client_mac, self.mac, Code::Pads, 0, len);
        pads.tag(TagType::ServiceName, session.service_name.as_bytes());
        for (tag_type, value) in optional {
            if let Some(value) = value {
                pads.tag(tag_type, value);
            }
        }
        pads.tag(error, message.as_bytes());
        if let Ok(frame) = pads.finish() {
            self.push_session_frame(frame);
        }
    }

    /// Queues an answer to unauthenticated input, unless the queue is full (then it is dropped
    /// and counted). Returns whether it was queued.
    fn push_answer(&mut self, frame: Vec<u8>) -> bool {
        if self.transmit_queue_full() {
            debug!(
                "transmit queue full: dropped [{}]",
                Packet::new_unchecked(&frame[..])
            );
            self.stats.tx_dropped += 1;
            return false;
        }
        debug!("sent [{}]", Packet::new_unchecked(&frame[..]));
        self.transmits.push_back(frame);
        true
    }

    /// Queues a frame a session needs (its PADS, its PADT): never dropped. Bounded by the session
    /// table: new sessions wait while the queue is full, and a session ends once.
    fn push_session_frame(&mut self, frame: Vec<u8>) {
        debug!("sent [{}]", Packet::new_unchecked(&frame[..]));
        self.transmits.push_back(frame);
    }
}

fn up_event(session: &AcSession) -> AcEvent {
    AcEvent::SessionUp {
        session_id: session.session_id,
        client_mac: session.client_mac,
        service_name: session.service_name().to_owned(),
        host_uniq: session.host_uniq().to_vec(),
        max_payload: session.max_payload,
    }
}

impl Machine for AccessConcentrator {
    type Event = AcEvent;

    fn handle_input(&mut self, now: Instant, input: &[u8]) {
        AccessConcentrator::handle_input(self, now, input);
    }

    fn handle_timeout(&mut self, now: Instant) {
        AccessConcentrator::handle_timeout(self, now);
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        AccessConcentrator::poll_transmit(self)
    }

    fn poll_event(&mut self) -> Option<AcEvent> {
        AccessConcentrator::poll_event(self)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        AccessConcentrator::poll_timeout(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{DiscoveryRepr, Tag};

    const AC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xac]);
    const HOST: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
    const WINDOW: Duration = Duration::from_secs(60);

    fn ac(config: AcConfig) -> AccessConcentrator {
        AccessConcentrator::new(
            AcConfig {
                services: vec!["internet".into(), "video".into()],
                ..config
            },
            AC,
            Random::seeded(3),
        )
    }

    /// No rate limits, for tests that send many PADIs at one instant.
    fn unlimited() -> AcConfig {
        AcConfig {
            padi_limit: None,
            padi_limit_per_mac: None,
            unknown_session_limit: None,
            unknown_session_limit_per_mac: None,
            ..AcConfig::default()
        }
    }

    fn events(ac: &mut AccessConcentrator) -> Vec<AcEvent> {
        std::iter::from_fn(|| ac.poll_event()).collect()
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
        let mut ac = ac(AcConfig::default());
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
        let mut ac = ac(AcConfig::default());
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
        let mut ac = self::ac(AcConfig {
            max_sessions: 0,
            ignore_padi_when_full: true,
            ..AcConfig::default()
        });
        feed(&mut ac, now, &padi(""));
        assert!(ac.poll_transmit().is_none());
    }

    #[test]
    fn padr_gets_pads_and_a_session() {
        let now = Instant::now();
        let mut ac = ac(AcConfig::default());
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
                reason: AcSessionEnd::PeerTerminated { message: None }
            })
        );
    }

    #[test]
    fn bad_cookies_are_rejected() {
        let now = Instant::now();
        let mut ac = ac(AcConfig {
            cookie_window: WINDOW,
            ..AcConfig::default()
        });
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
        let mut ac = ac(AcConfig {
            max_sessions: 1,
            ..AcConfig::default()
        });
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
        // Asked for any service: granted the first one offered, in the table and the PADS.
        assert_eq!(
            ac.session(pads.session_id).map(AcSession::service_name),
            Some("internet")
        );
        assert_eq!(pads.tag(TagType::ServiceName), Some(&b"internet"[..]));

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
        let mut ac = ac(AcConfig {
            max_sessions: 5000,
            ..unlimited()
        });
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
            assert_eq!(events(&mut ac).len(), 1);
        }
        let ids: Vec<u16> = ac.sessions().map(AcSession::session_id).collect();
        assert_eq!(ids.len(), 5000);
        assert!(ids.iter().all(|&id| id != 0 && id != 0xffff));
        // Random, not sequential: the ids spread over the whole space.
        assert!(ids.first() < Some(&0x1000) && ids.last() > Some(&0xf000));
    }

    #[test]
    fn manual_accept_and_reject() {
        let now = Instant::now();
        let mut ac = ac(AcConfig {
            accept_manually: true,
            ..AcConfig::default()
        });
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
            ac.session(session_id).map(AcSession::state),
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
            ac.session(session_id).map(AcSession::state),
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

    /// PADI, PADO, PADR, PADS for `mac` (Host-Uniq aabb, Relay-Session-Id 01); the session id.
    fn connect(ac: &mut AccessConcentrator, now: Instant, mac: MacAddr, service: &str) -> u16 {
        let mut request = padi(service);
        request.src = mac;
        feed(ac, now, &request);
        let pado = sent(ac).remove(0);
        let mut request = padr(&pado, service);
        request.src = mac;
        feed(ac, now, &request);
        let pads = sent(ac).remove(0);
        assert_eq!(pads.code, Code::Pads);
        pads.session_id
    }

    /// A group of `n` members; PADIs go to member 0, PADRs to the client's member.
    fn group(n: u16, config: &AcConfig, now: Instant) -> (AcGroup, Vec<AccessConcentrator>) {
        let group = AcGroup::new(n, &Random::seeded(40), now);
        let members = (0..n)
            .map(|k| {
                let member = group.member(k).unwrap();
                AccessConcentrator::member(
                    config.clone(),
                    AC,
                    Random::seeded(41 + u64::from(k)),
                    member,
                )
            })
            .collect();
        (group, members)
    }

    /// A client's discovery through a group: its PADI to member 0, its PADR to its member; the
    /// PADS.
    fn connect_through(
        group: &AcGroup,
        members: &mut [AccessConcentrator],
        now: Instant,
        mac: MacAddr,
    ) -> DiscoveryRepr {
        let mut request = padi("");
        request.src = mac;
        feed(&mut members[0], now, &request);
        let pado = sent(&mut members[0]).remove(0);
        let mut request = padr(&pado, "");
        request.src = mac;
        let member = &mut members[usize::from(group.member_of(mac))];
        feed(member, now, &request);
        sent(member).remove(0)
    }

    #[test]
    fn a_group_shares_cookies_ids_and_the_session_limit() {
        let now = Instant::now();
        let config = AcConfig {
            max_sessions: 5,
            ..unlimited()
        };
        let (group, mut members) = group(3, &config, now);
        // Clients of every member; each member hands out only its own ids.
        for last in 1..=5u8 {
            let mac = MacAddr([0x02, 0, 0, 0, 0, last]);
            let pads = connect_through(&group, &mut members, now + Duration::from_secs(90), mac);
            assert_eq!(pads.code, Code::Pads);
            assert_ne!(pads.session_id, 0, "client {last} got a session");
            let member = group.member_of(mac);
            assert_eq!(member, u16::from(last) % 3);
            assert_eq!(group.member_of_session(pads.session_id), member);
            assert!(
                members[usize::from(member)]
                    .session(pads.session_id)
                    .is_some()
            );
        }
        assert_eq!(group.sessions(), 5);
        // Full, counted over the group: a sixth client is refused, by whichever member.
        let mac = MacAddr([0x02, 0, 0, 0, 0, 6]);
        let pads = connect_through(&group, &mut members, now, mac);
        assert_eq!(pads.session_id, 0);
        assert_eq!(
            pads.error_tag().map(|(t, _)| t),
            Some(TagType::AcSystemError)
        );
        assert_eq!(members[0].stats().refused_full, 1);
        // A session ends: its slot is free for any member's client.
        let (id, _) = members[1]
            .sessions()
            .next()
            .map(|s| (s.session_id(), ()))
            .unwrap();
        assert!(members[1].close_session(now, id, CloseReason::Shutdown));
        assert_eq!(group.sessions(), 4);
        let pads = connect_through(&group, &mut members, now, mac);
        assert_ne!(pads.session_id, 0);
        assert_eq!(group.sessions(), 5);
        // A member that stops gives its slots back.
        let held = members[2].session_count();
        drop(members.pop());
        assert_eq!(group.sessions(), 5 - held);
    }

    #[test]
    fn a_cookie_from_another_group_or_alone_is_refused() {
        let now = Instant::now();
        let (group, mut members) = group(2, &unlimited(), now);
        // A PADO from an access concentrator outside the group: its cookie does not pass.
        let mut alone = ac(unlimited());
        let mac = MacAddr([0x02, 0, 0, 0, 0, 1]);
        let mut request = padi("");
        request.src = mac;
        feed(&mut alone, now, &request);
        let pado = sent(&mut alone).remove(0);
        let mut request = padr(&pado, "");
        request.src = mac;
        feed(&mut members[1], now, &request);
        assert!(
            sent(&mut members[1]).is_empty(),
            "a foreign cookie gets no PADS"
        );
        assert_eq!(group.sessions(), 0);
    }

    #[test]
    fn group_members_hand_out_every_id_of_their_own_once() {
        for (index, members) in [(0u16, 1u16), (0, 2), (1, 2), (2, 3), (7, 8)] {
            let mut ids = SessionIds::for_member(index, members);
            let random = Random::seeded(5);
            let mut got = std::collections::BTreeSet::new();
            while let Some(id) = ids.allocate(&random) {
                assert_eq!(id % members, index);
                assert!(id != 0 && id != 0xffff);
                assert!(got.insert(id), "{id} twice");
            }
            let expected = (1..0xffffu32)
                .filter(|id| *id % u32::from(members) == u32::from(index))
                .count();
            assert_eq!(got.len(), expected, "member {index} of {members}");
        }
    }

    fn session_frame(src: MacAddr, dst: MacAddr, session_id: u16) -> Vec<u8> {
        let mut frame = Vec::new();
        crate::session::encapsulate(
            dst,
            src,
            session_id,
            ppp_frame::Protocol::Lcp,
            &[9, 1, 0, 8, 0, 0, 0, 0],
            &mut frame,
        )
        .unwrap();
        frame
    }

    #[test]
    fn independent_randomness_gives_different_cookies_keys_and_ids() {
        let now = Instant::now();
        let run = |random: Random| {
            let mut ac = AccessConcentrator::new(unlimited(), AC, random);
            feed(&mut ac, now, &padi(""));
            let pado = sent(&mut ac).remove(0);
            let ids: Vec<u16> = (0..4)
                .map(|i| connect(&mut ac, now, MacAddr([2, 0, 0, 0, 0x44, i]), ""))
                .collect();
            (ac, pado, ids)
        };
        let (mut a, pado_a, ids_a) = run(Random::seeded(1));
        let (_, pado_b, ids_b) = run(Random::seeded(2));
        assert_ne!(pado_a.tag(TagType::AcCookie), pado_b.tag(TagType::AcCookie));
        assert_ne!(ids_a, ids_b);
        // Different keys: B's cookie is worthless to A.
        feed(&mut a, now, &padr(&pado_b, ""));
        assert_eq!(a.stats().bad_cookies, 1);
        assert!(a.poll_transmit().is_none());
        // The same with generators keyed from the operating system, as programs use.
        let (_, pado_c, ids_c) = run(Random::from_os().unwrap());
        let (_, pado_d, ids_d) = run(Random::from_os().unwrap());
        assert_ne!(pado_c.tag(TagType::AcCookie), pado_d.tag(TagType::AcCookie));
        assert_ne!(ids_c, ids_d);
    }

    #[test]
    fn a_seeded_pair_replays_byte_for_byte() {
        let t0 = Instant::now();
        let script = |ac: &mut AccessConcentrator| {
            let mut frames = Vec::new();
            for i in 0..20u8 {
                let mac = MacAddr([2, 0x22, 0, 0, 0, i]);
                let now = t0 + Duration::from_millis(u64::from(i) * 100);
                let mut request = padi("");
                request.src = mac;
                ac.handle_input(now, &request.to_bytes().unwrap());
                let pado = ac.poll_transmit().unwrap();
                let mut request = padr(&DiscoveryRepr::parse_bytes(&pado).unwrap(), "");
                request.src = mac;
                frames.push(pado);
                ac.handle_input(now, &request.to_bytes().unwrap());
                frames.extend(std::iter::from_fn(|| ac.poll_transmit()));
            }
            ac.close(t0 + Duration::from_secs(5), CloseReason::Shutdown);
            frames.extend(std::iter::from_fn(|| ac.poll_transmit()));
            (frames, events(ac))
        };
        let mut a = AccessConcentrator::new(AcConfig::default(), AC, Random::seeded(9));
        let mut b = AccessConcentrator::new(AcConfig::default(), AC, Random::seeded(9));
        let (frames, events) = script(&mut a);
        // 20 PADOs, 20 PADSes, 20 PADTs; 20 sessions up and down.
        assert_eq!((frames.len(), events.len()), (60, 40));
        assert_eq!(script(&mut b), (frames, events));
    }

    #[test]
    fn a_session_record_is_small() {
        // The figure in the module documentation.
        let size = std::mem::size_of::<AcSession>();
        assert!(size <= 96, "{size} bytes");
        let now = Instant::now();
        let mut ac = ac(AcConfig::default());
        let id = connect(&mut ac, now, HOST, "");
        let session = ac.session(id).unwrap();
        assert_eq!(session.heap_bytes(), 0);
        assert!(size + session.heap_bytes() <= 96);
        assert_eq!(
            (session.host_uniq(), session.relay_session_id()),
            (&[0xaa, 0xbb][..], Some(&[0x01][..]))
        );
        assert_eq!(
            (session.service_name(), session.state(), session.started()),
            ("internet", AcSessionState::Up, now)
        );

        // A long Host-Uniq goes to the heap (once), and the PADS rebuilt for a repeated PADR is
        // the same, byte for byte.
        let other = MacAddr([2, 0, 0, 0, 0, 0x55]);
        let long = DiscoveryRepr::new(MacAddr::BROADCAST, other, Code::Padi, 0)
            .with_tag(TagType::ServiceName, "video")
            .with_tag(TagType::HostUniq, [7; 40])
            .with_tag(TagType::PppMaxPayload, 1500u16.to_be_bytes());
        feed(&mut ac, now, &long);
        let pado = sent(&mut ac).remove(0);
        let request = DiscoveryRepr::new(AC, other, Code::Padr, 0)
            .with_tag(TagType::ServiceName, "video")
            .with_tag(TagType::HostUniq, [7; 40])
            .with_tag(TagType::AcCookie, pado.tag(TagType::AcCookie).unwrap())
            .with_tag(TagType::PppMaxPayload, 1500u16.to_be_bytes());
        feed(&mut ac, now, &request);
        let first = ac.poll_transmit().unwrap();
        feed(&mut ac, now, &request);
        assert_eq!(ac.poll_transmit(), Some(first.clone()));
        let pads = DiscoveryRepr::parse_bytes(&first).unwrap();
        assert_eq!(
            pads.tags,
            [
                Tag::new(TagType::ServiceName, "video"),
                Tag::new(TagType::HostUniq, [7; 40]),
                Tag::ppp_max_payload(1500),
            ]
        );
        let session = ac.session(pads.session_id).unwrap();
        assert_eq!(session.heap_bytes(), 40);
        assert_eq!(
            (session.host_uniq(), session.relay_session_id()),
            (&[7; 40][..], None)
        );
        assert_eq!(session.max_payload(), Some(1500));

        // An empty Host-Uniq tag is kept as a tag (and echoed), not as "none".
        let third = MacAddr([2, 0, 0, 0, 0, 0x56]);
        let empty = DiscoveryRepr::new(MacAddr::BROADCAST, third, Code::Padi, 0)
            .with_tag(TagType::ServiceName, "")
            .with_tag(TagType::HostUniq, []);
        feed(&mut ac, now, &empty);
        let pado = sent(&mut ac).remove(0);
        let request = DiscoveryRepr::new(AC, third, Code::Padr, 0)
            .with_tag(TagType::ServiceName, "")
            .with_tag(TagType::HostUniq, [])
            .with_tag(TagType::AcCookie, pado.tag(TagType::AcCookie).unwrap());
        feed(&mut ac, now, &request);
        let pads = sent(&mut ac).remove(0);
        assert_eq!(
            pads.tags,
            [
                Tag::new(TagType::ServiceName, "internet"),
                Tag::new(TagType::HostUniq, []),
            ]
        );
    }

    #[test]
    fn cookie_windows_count_from_the_first_instant_given() {
        let t0 = Instant::now() + Duration::from_secs(1000);
        let mut ac = ac(AcConfig {
            cookie_window: WINDOW,
            ..AcConfig::default()
        });
        let cookie_at = |ac: &mut AccessConcentrator, at: Instant| {
            let mut request = padi("");
            request.src = MacAddr([2, 0, 0, 0, 0, 0x77]);
            feed(ac, at, &request);
            sent(ac).remove(0).tag(TagType::AcCookie).unwrap().to_vec()
        };
        let first = cookie_at(&mut ac, t0);
        let same_window = cookie_at(&mut ac, t0 + WINDOW - Duration::from_millis(1));
        let next_window = cookie_at(&mut ac, t0 + WINDOW);
        assert_eq!(first, same_window);
        assert_ne!(first, next_window);
        // A cookie issued at the very end of a window still lives one more window; none lives two.
        let request = DiscoveryRepr::new(AC, HOST, Code::Padr, 0)
            .with_tag(TagType::ServiceName, "")
            .with_tag(TagType::HostUniq, [0xaa, 0xbb]);
        let mut pado_for_host = padi("");
        pado_for_host.tags.truncate(2);
        feed(
            &mut ac,
            t0 + WINDOW - Duration::from_millis(1),
            &pado_for_host,
        );
        let cookie = sent(&mut ac)
            .remove(0)
            .tag(TagType::AcCookie)
            .unwrap()
            .to_vec();
        let request = request.with_tag(TagType::AcCookie, cookie);
        feed(&mut ac, t0 + 2 * WINDOW, &request);
        assert_eq!(ac.stats().bad_cookies, 1);
        feed(
            &mut ac,
            t0 + 2 * WINDOW - Duration::from_millis(1),
            &request,
        );
        assert_eq!(sent(&mut ac).remove(0).code, Code::Pads);
    }

    #[test]
    fn padi_limits_hold_under_a_flood_of_random_macs_in_bounded_memory() {
        let now = Instant::now();
        let mut ac = ac(AcConfig {
            padi_limit: Some(RateLimit::new(100, 100)),
            padi_limit_per_mac: Some(RateLimit::new(1, 3)),
            limiter_slots: 1000,
            ..AcConfig::default()
        });
        assert_eq!(ac.padi_per_mac.len(), 1024);
        // One host floods: its burst of 3 PADOs, then one a second.
        for _ in 0..50 {
            feed(&mut ac, now, &padi(""));
        }
        assert_eq!(sent(&mut ac).len(), 3);
        assert_eq!(ac.stats().padi_limited_per_mac, 47);
        feed(&mut ac, now + Duration::from_millis(1000), &padi(""));
        feed(&mut ac, now + Duration::from_millis(1001), &padi(""));
        assert_eq!(sent(&mut ac).len(), 1);

        // 50,000 PADIs from random MACs over one second: the overall limit lets its burst (100)
        // and one second of its rate (100) through, and nothing is kept.
        let random = Random::seeded(5);
        let start = now + Duration::from_secs(2);
        let mut pados = 0;
        for i in 0..50_000u64 {
            let mut mac = random.bytes::<6>();
            mac[0] = (mac[0] & 0xfe) | 0x02;
            let mut request = padi("");
            request.src = MacAddr(mac);
            feed(&mut ac, start + Duration::from_micros(i * 20), &request);
            pados += std::iter::from_fn(|| ac.poll_transmit()).count();
            assert_eq!(ac.state_size(), 0);
        }
        assert!((195..=200).contains(&pados), "{pados} PADOs");
        assert_eq!(ac.stats().padi_limited, 50_000 - pados as u64);
        assert_eq!(ac.padi_per_mac.len(), 1024, "the table never grows");
        // A client arriving after the flood is answered.
        let mut late = padi("");
        late.src = MacAddr([2, 0, 0, 0, 0, 0x99]);
        feed(&mut ac, start + Duration::from_secs(2), &late);
        assert_eq!(sent(&mut ac).len(), 1);
    }

    #[test]
    fn unknown_sessions_get_a_rate_limited_padt() {
        let now = Instant::now();
        let mut ac = ac(AcConfig {
            unknown_session_limit: Some(RateLimit::new(10, 10)),
            unknown_session_limit_per_mac: Some(RateLimit::new(1, 2)),
            ..AcConfig::default()
        });
        let id = connect(&mut ac, now, HOST, "");
        // Its own sessions: nothing.
        assert!(!ac.unknown_session(now, HOST, id));
        ac.handle_input(now, &session_frame(HOST, AC, id));
        assert!(ac.poll_transmit().is_none());
        // A client the AC does not know (as after a restart) gets a PADT for its session.
        let stranger = MacAddr([2, 0, 0, 0, 0, 0x33]);
        assert!(ac.unknown_session(now, stranger, 0x1234));
        let padt = sent(&mut ac).remove(0);
        assert_eq!(
            (padt.dst, padt.src, padt.code, padt.session_id),
            (stranger, AC, Code::Padt, 0x1234)
        );
        assert_eq!(
            padt.error_tag(),
            Some((TagType::GenericError, "unknown session".into()))
        );
        // Its session frames keep coming (given to handle_input): one more PADT (a burst of
        // two), then one a second.
        let frame = session_frame(stranger, AC, 0x1234);
        for _ in 0..100 {
            ac.handle_input(now, &frame);
        }
        assert_eq!(sent(&mut ac).len(), 1);
        ac.handle_input(now + Duration::from_secs(1), &frame);
        assert_eq!(sent(&mut ac).len(), 1);
        assert_eq!(ac.stats().unknown_session_limited, 99);
        assert_eq!(ac.stats().unknown_session_padts, 3);
        // Not for frames to another AC, ids 0 and 0xFFFF, or group addresses.
        ac.handle_input(now, &session_frame(stranger, HOST, 0x1234));
        assert!(!ac.unknown_session(now, stranger, 0));
        assert!(!ac.unknown_session(now, stranger, 0xffff));
        assert!(!ac.unknown_session(now, MacAddr::BROADCAST, 0x1234));
        assert!(ac.poll_transmit().is_none());
        // Overall: a thousand strangers at once get ten PADTs (the overall burst), and the
        // per-MAC table stays its size.
        let slots = ac.unknown_per_mac.len();
        let later = now + Duration::from_secs(60);
        let sent_padts = (0..1000u16)
            .filter(|&i| {
                let [a, b] = i.to_be_bytes();
                ac.unknown_session(later, MacAddr([2, 0, 0, 1, a, b]), 0x4000 + i)
            })
            .count();
        assert_eq!(sent_padts, 10);
        assert_eq!(sent(&mut ac).len(), 10);
        assert_eq!(ac.unknown_per_mac.len(), slots);
    }

    #[test]
    fn queues_are_bounded_and_session_frames_never_dropped() {
        let now = Instant::now();
        let mut ac = ac(AcConfig {
            max_queued_frames: 4,
            max_queued_events: 2,
            ..unlimited()
        });
        // Cookies for three hosts, drained.
        let padrs: Vec<DiscoveryRepr> = (1..=3)
            .map(|i| {
                let mac = MacAddr([2, 0, 0, 0, 1, i]);
                let mut request = padi("");
                request.src = mac;
                feed(&mut ac, now, &request);
                let mut request = padr(&sent(&mut ac).remove(0), "");
                request.src = mac;
                request
            })
            .collect();
        let flood = |ac: &mut AccessConcentrator| {
            for i in 0..10 {
                let mut request = padi("");
                request.src = MacAddr([2, 0, 0, 0, 2, i]);
                feed(ac, now, &request);
            }
        };
        // Ten PADIs undrained: four PADOs queued, six dropped and counted.
        flood(&mut ac);
        assert_eq!(ac.transmit_queue_len(), 4);
        assert!(ac.transmit_queue_full());
        assert_eq!(ac.stats().tx_dropped, 6);
        // A valid PADR waits (dropped, counted: the client sends it again).
        feed(&mut ac, now, &padrs[0]);
        assert_eq!((ac.session_count(), ac.stats().padr_deferred), (0, 1));
        let _ = sent(&mut ac);
        feed(&mut ac, now, &padrs[0]);
        feed(&mut ac, now, &padrs[1]);
        // Two events undrained: the third session waits too; no event is ever dropped.
        feed(&mut ac, now, &padrs[2]);
        assert_eq!((ac.session_count(), ac.stats().padr_deferred), (2, 2));
        assert_eq!(events(&mut ac).len(), 2);
        feed(&mut ac, now, &padrs[2]);
        assert_eq!(ac.session_count(), 3);
        // The queue full again (three PADSes and a PADO); closing still queues every PADT.
        flood(&mut ac);
        assert!(ac.transmit_queue_full());
        ac.close(now, CloseReason::Shutdown);
        let frames = sent(&mut ac);
        assert_eq!(frames.len(), 4 + 3);
        assert_eq!(frames.iter().filter(|f| f.code == Code::Padt).count(), 3);
        let downs = events(&mut ac);
        assert_eq!(downs.len(), 1 + 3);
        assert!(downs[1..].iter().all(|e| matches!(
            e,
            AcEvent::SessionDown {
                reason: AcSessionEnd::Closed(CloseReason::Shutdown),
                ..
            }
        )));
    }

    #[test]
    fn close_ends_sessions_with_the_reason_and_stops_answering() {
        let now = Instant::now();
        let mut ac = ac(AcConfig::default());
        let other = MacAddr([2, 0, 0, 0, 0, 0x02]);
        let a = connect(&mut ac, now, HOST, "");
        let b = connect(&mut ac, now, other, "video");
        let _ = events(&mut ac);
        assert!(ac.close_session(now, a, CloseReason::AdminReset));
        assert!(!ac.close_session(now, a, CloseReason::AdminReset));
        let padt = sent(&mut ac).remove(0);
        assert_eq!(
            (padt.dst, padt.code, padt.session_id),
            (HOST, Code::Padt, a)
        );
        assert_eq!(padt.tag(TagType::RelaySessionId), Some(&[0x01][..]));
        assert_eq!(
            padt.error_tag(),
            Some((TagType::GenericError, "Administrative reset".into()))
        );
        assert_eq!(
            events(&mut ac),
            [AcEvent::SessionDown {
                session_id: a,
                client_mac: HOST,
                reason: AcSessionEnd::Closed(CloseReason::AdminReset),
            }]
        );
        ac.close(now, CloseReason::Shutdown);
        assert!(!ac.is_open());
        let padt = sent(&mut ac).remove(0);
        assert_eq!((padt.dst, padt.session_id), (other, b));
        assert_eq!(
            padt.error_tag(),
            Some((TagType::GenericError, "Shutting down".into()))
        );
        assert_eq!(ac.state_size(), 1); // the SessionDown event
        let _ = events(&mut ac);
        // Closed: no answers.
        feed(&mut ac, now, &padi(""));
        assert!(ac.poll_transmit().is_none());
        ac.open(now);
        feed(&mut ac, now + Duration::from_secs(1), &padi(""));
        assert_eq!(sent(&mut ac).remove(0).code, Code::Pado);
    }

    #[test]
    fn session_ids_cover_the_space_then_run_out() {
        let random = Random::seeded(11);
        let mut ids = SessionIds::new();
        let mut seen = vec![false; 0x10000];
        for _ in 0..0xfffe {
            let id = ids.allocate(&random).expect("a free id");
            assert!(id != 0 && id != 0xffff && !seen[usize::from(id)]);
            seen[usize::from(id)] = true;
        }
        assert_eq!(ids.allocate(&random), None);
        ids.set(0x1234, false);
        assert_eq!(ids.allocate(&random), Some(0x1234));
    }

    #[test]
    fn reasons_read_as_words() {
        assert_eq!(
            AcSessionEnd::PeerTerminated { message: None }.to_string(),
            "terminated by the client"
        );
        assert_eq!(
            AcSessionEnd::PeerTerminated {
                message: Some("bye".into())
            }
            .to_string(),
            "terminated by the client: bye"
        );
        assert_eq!(
            AcSessionEnd::Closed(CloseReason::IdleTimeout).to_string(),
            "closed: Idle timeout"
        );
        assert_eq!(
            AcSessionEnd::Replaced.to_string(),
            "replaced by a new session of the same client"
        );
    }

    #[test]
    fn driven_through_the_machine_trait() {
        fn exchange<M: Machine>(machine: &mut M, now: Instant, frame: &[u8]) -> Vec<Vec<u8>> {
            machine.handle_input(now, frame);
            machine.handle_timeout(now); // spurious: nothing due
            std::iter::from_fn(|| machine.poll_transmit()).collect()
        }
        let now = Instant::now();
        let mut ac = ac(AcConfig::default());
        let out = exchange(&mut ac, now, &padi("").to_bytes().unwrap());
        assert_eq!(out.len(), 1);
        assert_eq!(Machine::poll_timeout(&ac), None);
        assert!(Machine::poll_event(&mut ac).is_none());
    }

    #[test]
    fn the_key_is_never_printed() {
        let ac = ac(AcConfig::default());
        let text = format!("{ac:?}");
        assert!(text.starts_with("AccessConcentrator {") && !text.contains("key"));
    }
}
