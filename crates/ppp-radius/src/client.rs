//! The client machine: Access-Requests and Accounting-Requests to several servers, with
//! retransmission, failover, identifier management, answer verification and the accounting
//! spool.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ppp_core::Random;
use tracing::debug;

use crate::access::{AccessAnswer, AccessRequest, NasIdentity};
use crate::accounting::{AccountingRecord, AcctStatusType};
use crate::crypto::{AuthenticityError, Secret, verify_response};
use crate::packet::{Code, HEADER_LEN, Packet};
use crate::spool::Spool;

/// One RADIUS server (or one FreeRADIUS instance): where its authentication and accounting
/// ports are, and the secret shared with it. `Debug` hides the secret.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where Access-Requests go (port 1812), if this server authenticates.
    pub auth: Option<SocketAddr>,
    /// Where Accounting-Requests go (port 1813), if this server does accounting.
    pub acct: Option<SocketAddr>,
    /// The shared secret.
    pub secret: Secret,
}

impl ServerConfig {
    /// A server that does both, on `auth` and `acct`.
    pub fn new(auth: SocketAddr, acct: SocketAddr, secret: impl Into<Secret>) -> Self {
        ServerConfig {
            auth: Some(auth),
            acct: Some(acct),
            secret: secret.into(),
        }
    }
}

/// Settings of the [`RadiusClient`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The servers, in order of preference: a request goes to the first one that is not
    /// marked dead, and fails over to the next when it does not answer.
    pub servers: Vec<ServerConfig>,
    /// Who we are (added to every request).
    pub nas: NasIdentity,
    /// Time between transmissions of one request to one server (3 s).
    pub retransmit_interval: Duration,
    /// Transmissions to one server before failing over to the next (3).
    pub max_transmissions: u32,
    /// How long a server that did not answer is skipped by new requests (30 s).
    pub dead_time: Duration,
    /// Local sockets the adapter opens (1). Each has its own 256 identifiers per server, so
    /// up to `256 × sockets` requests are in flight to one server; more wait in a queue.
    pub sockets: usize,
    /// Requests that may wait for an identifier (10 000); more are refused at once (an access
    /// request with [`ClientEvent::AccessTimeout`], a record by spooling it).
    pub max_queued: usize,
    /// Require a valid Message-Authenticator in Access-Accept/Reject/Challenge (true: the
    /// Blast-RADIUS forgery). Accounting-Responses are checked when they carry one.
    pub require_message_authenticator: bool,
    /// Records no server acknowledged that are kept in memory (10 000); past this, the oldest
    /// Interim-Update (else the oldest record) is dropped.
    pub spool_capacity: usize,
    /// How often a spooled record is tried again while no server answers (30 s).
    pub spool_retry_interval: Duration,
    /// Spooled records sent at once when retrying (32).
    pub spool_batch: usize,
}

impl ClientConfig {
    /// Defaults with `servers` and `nas`.
    pub fn new(servers: Vec<ServerConfig>, nas: NasIdentity) -> Self {
        ClientConfig {
            servers,
            nas,
            retransmit_interval: Duration::from_secs(3),
            max_transmissions: 3,
            dead_time: Duration::from_secs(30),
            sockets: 1,
            max_queued: 10_000,
            require_message_authenticator: true,
            spool_capacity: 10_000,
            spool_retry_interval: Duration::from_secs(30),
            spool_batch: 32,
        }
    }

    /// The longest an access request can take before [`ClientEvent::AccessTimeout`]: every
    /// transmission to every server. Make `ppp-auth`'s `secret_timeout` longer than this.
    pub fn access_deadline(&self) -> Duration {
        self.retransmit_interval
            * self.max_transmissions
            * u32::try_from(self.servers.len().max(1)).unwrap_or(u32::MAX)
    }
}

/// Identifies an access request: given back in its [`ClientEvent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Identifies an accounting record, across restarts (random): the spool on disk keys records
/// by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId(pub u64);

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A datagram to send from local socket `socket` (0..[`ClientConfig::sockets`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Which local socket sends it.
    pub socket: usize,
    /// The server's address.
    pub destination: SocketAddr,
    /// The packet.
    pub bytes: Vec<u8>,
}

/// What the client tells its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// A verified answer to an access request.
    Access {
        /// The request.
        request: RequestId,
        /// The verdict for `ppp-auth` and the session attributes.
        answer: Box<AccessAnswer>,
    },
    /// No server answered the access request (every transmission to every server).
    AccessTimeout {
        /// The request.
        request: RequestId,
    },
    /// A server acknowledged the record: the spool on disk may forget it.
    Accounted {
        /// The record.
        record: RecordId,
    },
    /// No server acknowledged the record: it waits in the spool and is retried.
    Spooled {
        /// The record.
        record: RecordId,
    },
    /// The spool was full: this record is lost.
    SpoolDropped {
        /// The record.
        record: RecordId,
    },
    /// A server stopped answering and is skipped for [`ClientConfig::dead_time`].
    ServerDown {
        /// Its index in [`ClientConfig::servers`].
        server: usize,
    },
    /// A server that was marked down answered again.
    ServerUp {
        /// Its index.
        server: usize,
    },
}

/// Why an incoming datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// It does not parse.
    Malformed,
    /// No request of ours is waiting for this identifier from this address.
    Unsolicited,
    /// Its code does not answer the request (an Accounting-Response to an Access-Request...).
    UnexpectedCode,
    /// It failed verification: forged, or signed with another secret.
    Forged(AuthenticityError),
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropReason::Malformed => f.write_str("malformed"),
            DropReason::Unsolicited => f.write_str("unsolicited"),
            DropReason::UnexpectedCode => f.write_str("unexpected code"),
            DropReason::Forged(e) => write!(f, "not authentic: {e}"),
        }
    }
}

/// Counters of the client's work, for monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientStats {
    /// Requests sent (first transmissions).
    pub requests: u64,
    /// Retransmissions (to the same or the next server).
    pub retransmissions: u64,
    /// Verified answers.
    pub answers: u64,
    /// Datagrams that do not parse.
    pub malformed: u64,
    /// Answers to nothing we wait for.
    pub unsolicited: u64,
    /// Answers whose code does not fit the request.
    pub unexpected_code: u64,
    /// Answers that failed verification (bad authenticator or Message-Authenticator, missing
    /// Message-Authenticator): never trusted.
    pub forged: u64,
    /// Access requests no server answered.
    pub access_timeouts: u64,
    /// Records moved to the spool.
    pub spooled: u64,
    /// Records dropped from a full spool.
    pub spool_dropped: u64,
}

enum Kind {
    Access(AccessRequest),
    Accounting {
        record: Box<AccountingRecord>,
        /// When the client got it: Acct-Delay-Time counts from here.
        submitted: Instant,
    },
}

impl Kind {
    fn is_access(&self) -> bool {
        matches!(self, Kind::Access(_))
    }
}

/// One transmission's identity: socket, server address, identifier.
type Slot = (usize, SocketAddr, u8);

struct Transaction {
    kind: Kind,
    /// The server now tried.
    server: usize,
    /// Servers tried so far (failover ends when all were).
    tried: usize,
    /// Transmissions to `server`.
    transmissions: u32,
    /// When to retransmit or fail over.
    deadline: Option<Instant>,
    /// Identifiers this transaction holds, with the Request Authenticator sent under each (an
    /// accounting retransmission takes a new one, as its Acct-Delay-Time changed; a late
    /// answer to an earlier one still counts).
    slots: Vec<(Slot, [u8; 16])>,
    /// The bytes last sent (Access-Requests are resent unchanged to the same server).
    bytes: Vec<u8>,
}

struct ServerState {
    dead_until: Option<Instant>,
}

/// A sans-IO RADIUS client: authentication and accounting against several servers.
///
/// Inputs: [`authenticate`](Self::authenticate) and [`account`](Self::account) start
/// requests, [`handle_input`](Self::handle_input) takes datagrams from the servers,
/// [`handle_timeout`](Self::handle_timeout) the deadlines. Outputs:
/// [`poll_transmit`](Self::poll_transmit) gives datagrams (with the local socket to send them
/// from), [`poll_event`](Self::poll_event) answers, timeouts and spool news,
/// [`poll_timeout`](Self::poll_timeout) the next deadline. After every input, drain
/// `poll_transmit` and `poll_event` until `None`.
///
/// Every answer is matched by socket, source address and identifier, then verified (Response
/// Authenticator, Message-Authenticator) with that server's secret before anything in it is
/// read; anything else is dropped and counted in [`stats`](Self::stats).
///
/// ```
/// use std::net::SocketAddr;
/// use std::time::Instant;
/// use ppp_auth::{AuthProtocol, Proof, Secret, SecretToken, Verdict, VerifyRequest};
/// use ppp_radius::{
///     AccessRequest, ClientConfig, ClientEvent, NasIdentity, RadiusClient, ServerConfig,
///     SessionContext,
/// };
///
/// let server: SocketAddr = "127.0.0.1:1812".parse().unwrap();
/// let acct: SocketAddr = "127.0.0.1:1813".parse().unwrap();
/// let config = ClientConfig::new(
///     vec![ServerConfig::new(server, acct, "testing123")],
///     NasIdentity::named("ac1"),
/// );
/// let mut client = RadiusClient::new(config, ppp_core::Random::seeded(1));
/// let verify = VerifyRequest {
///     token: SecretToken(1),
///     peer_name: "alice".into(),
///     server: "ac1".into(),
///     method: AuthProtocol::Pap,
///     proof: Proof::Pap { password: Secret::from("correct horse") },
/// };
/// let now = Instant::now();
/// let id = client.authenticate(now, AccessRequest::new(&verify, &SessionContext::default()));
/// let datagram = client.poll_transmit().unwrap();
/// assert_eq!(datagram.destination, server);
/// // ... send it, feed answers to `handle_input`; here nobody answers:
/// while let Some(at) = client.poll_timeout() {
///     client.handle_timeout(at);
///     while client.poll_transmit().is_some() {}
/// }
/// assert_eq!(client.poll_event(), Some(ClientEvent::ServerDown { server: 0 }));
/// assert_eq!(client.poll_event(), Some(ClientEvent::AccessTimeout { request: id }));
/// ```
pub struct RadiusClient {
    config: ClientConfig,
    random: Random,
    servers: Vec<ServerState>,
    transactions: HashMap<u64, Transaction>,
    /// Identifiers in use → transaction.
    in_flight: HashMap<Slot, u64>,
    /// Where the search for a free identifier starts, per (socket, server address).
    next_identifier: HashMap<(usize, SocketAddr), u8>,
    /// Transactions waiting for an identifier.
    waiting: VecDeque<u64>,
    deadlines: BTreeSet<(Instant, u64)>,
    spool: Spool,
    /// When to retry the spool.
    spool_retry_at: Option<Instant>,
    /// Records from the spool now being sent.
    spool_in_flight: usize,
    transmit: VecDeque<Transmit>,
    events: VecDeque<ClientEvent>,
    stats: ClientStats,
}

impl fmt::Debug for RadiusClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RadiusClient")
            .field("servers", &self.config.servers.len())
            .field("transactions", &self.transactions.len())
            .field("spooled", &self.spool.len())
            .finish_non_exhaustive()
    }
}

impl RadiusClient {
    /// A client for `config`; `random` gives Request Authenticators, salts and ids.
    pub fn new(mut config: ClientConfig, random: Random) -> Self {
        config.sockets = config.sockets.max(1);
        config.max_transmissions = config.max_transmissions.max(1);
        let servers = config
            .servers
            .iter()
            .map(|_| ServerState { dead_until: None })
            .collect();
        let spool = Spool::new(config.spool_capacity);
        RadiusClient {
            config,
            random,
            servers,
            transactions: HashMap::new(),
            in_flight: HashMap::new(),
            next_identifier: HashMap::new(),
            waiting: VecDeque::new(),
            deadlines: BTreeSet::new(),
            spool,
            spool_retry_at: None,
            spool_in_flight: 0,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            stats: ClientStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// Requests and records not yet answered (sent or waiting for an identifier), spool not
    /// included.
    pub fn in_flight(&self) -> usize {
        self.transactions.len()
    }

    /// Records in the spool.
    pub fn spooled(&self) -> usize {
        self.spool.len()
    }

    /// Sends an Access-Request; the answer comes as [`ClientEvent::Access`] (or
    /// [`ClientEvent::AccessTimeout`]) with the returned id.
    pub fn authenticate(&mut self, now: Instant, request: AccessRequest) -> RequestId {
        let id = self.new_id();
        self.start(now, id, Kind::Access(request));
        RequestId(id)
    }

    /// Sends an accounting record; a server's acknowledgement comes as
    /// [`ClientEvent::Accounted`], or the record goes to the spool
    /// ([`ClientEvent::Spooled`]) and is retried until one does.
    pub fn account(&mut self, now: Instant, record: AccountingRecord) -> RecordId {
        let id = self.new_id();
        self.account_with_id(now, RecordId(id), record);
        RecordId(id)
    }

    /// Gives back a record that an earlier run could not deliver (read from the spool on disk
    /// at start), with the id it had then. It is sent with the others; set its
    /// [`delay`](AccountingRecord::delay) to the time since its event.
    pub fn resubmit(&mut self, now: Instant, record: RecordId, data: AccountingRecord) {
        if self.transactions.contains_key(&record.0) || self.spool.contains(record) {
            return;
        }
        self.account_with_id(now, record, data);
    }

    fn account_with_id(&mut self, now: Instant, id: RecordId, record: AccountingRecord) {
        self.start(
            now,
            id.0,
            Kind::Accounting {
                record: Box::new(record),
                submitted: now,
            },
        );
    }

    /// A random id not in use.
    fn new_id(&mut self) -> u64 {
        loop {
            let id = self.random.u64();
            if !self.transactions.contains_key(&id) && !self.spool.contains(RecordId(id)) {
                return id;
            }
        }
    }

    fn start(&mut self, now: Instant, id: u64, kind: Kind) {
        let access = kind.is_access();
        let Some(server) = self.first_server(now, access) else {
            debug!("RADIUS: no server configured for this request");
            self.give_up(now, id, kind, false);
            return;
        };
        if self.waiting.len() >= self.config.max_queued {
            debug!(
                "RADIUS: {} requests wait already; refused",
                self.waiting.len()
            );
            self.give_up(now, id, kind, false);
            return;
        }
        self.transactions.insert(
            id,
            Transaction {
                kind,
                server,
                tried: 1,
                transmissions: 0,
                deadline: None,
                slots: Vec::new(),
                bytes: Vec::new(),
            },
        );
        self.stats.requests += 1;
        if !self.waiting.is_empty() || !self.send(now, id) {
            self.waiting.push_back(id);
        }
    }

    /// The address requests of this kind go to at `server`.
    fn address(&self, server: usize, access: bool) -> Option<SocketAddr> {
        let s = self.config.servers.get(server)?;
        if access { s.auth } else { s.acct }
    }

    /// The first server for a kind that is not dead (or the first at all, if all are).
    fn first_server(&self, now: Instant, access: bool) -> Option<usize> {
        let usable: Vec<usize> = (0..self.config.servers.len())
            .filter(|&i| self.address(i, access).is_some())
            .collect();
        usable
            .iter()
            .copied()
            .find(|&i| self.servers[i].dead_until.is_none_or(|t| t <= now))
            .or(usable.first().copied())
    }

    /// The next server after `after` for a kind, wrapping, skipping dead ones when possible.
    fn next_server(&self, now: Instant, after: usize, access: bool) -> usize {
        let n = self.config.servers.len();
        let candidates: Vec<usize> = (1..=n)
            .map(|k| (after + k) % n)
            .filter(|&i| self.address(i, access).is_some())
            .collect();
        candidates
            .iter()
            .copied()
            .find(|&i| self.servers[i].dead_until.is_none_or(|t| t <= now))
            .or(candidates.first().copied())
            .unwrap_or(after)
    }

    /// A free identifier towards `destination` on any socket.
    fn allocate(&mut self, destination: SocketAddr) -> Option<(usize, u8)> {
        for socket in 0..self.config.sockets {
            let start = *self
                .next_identifier
                .get(&(socket, destination))
                .unwrap_or(&0);
            for k in 0..=255u8 {
                let identifier = start.wrapping_add(k);
                if !self
                    .in_flight
                    .contains_key(&(socket, destination, identifier))
                {
                    self.next_identifier
                        .insert((socket, destination), identifier.wrapping_add(1));
                    return Some((socket, identifier));
                }
            }
        }
        None
    }

    /// (Re)transmits transaction `id` to its current server; false when no identifier is
    /// free (it then waits).
    fn send(&mut self, now: Instant, id: u64) -> bool {
        let Some(tx) = self.transactions.get(&id) else {
            return true;
        };
        let access = tx.kind.is_access();
        let Some(destination) = self.address(tx.server, access) else {
            return true;
        };
        // An Access-Request goes again unchanged (same identifier and authenticator) to the
        // same server.
        if access
            && tx.transmissions > 0
            && let Some(&((socket, dest, _), _)) = tx.slots.last()
            && dest == destination
        {
            let bytes = tx.bytes.clone();
            self.transmit.push_back(Transmit {
                socket,
                destination,
                bytes,
            });
            self.stats.retransmissions += 1;
            self.arm(now, id);
            return true;
        }
        let server = tx.server;
        let Some((socket, identifier)) = self.allocate(destination) else {
            return false;
        };
        let secret = self.config.servers[server].secret.clone();
        let Some(tx) = self.transactions.get(&id) else {
            return true;
        };
        let encoded = match &tx.kind {
            Kind::Access(request) => {
                let authenticator = self.random.bytes::<16>();
                request
                    .encode(
                        identifier,
                        authenticator,
                        &secret,
                        self.config.nas.attributes(),
                    )
                    .map(|b| (b, authenticator))
            }
            Kind::Accounting { record, submitted } => {
                let delay = record.delay + now.saturating_duration_since(*submitted);
                record
                    .encode(identifier, &secret, &self.config.nas, delay)
                    .map(|b| {
                        let mut authenticator = [0u8; 16];
                        authenticator.copy_from_slice(&b[4..HEADER_LEN]);
                        (b, authenticator)
                    })
            }
        };
        let (bytes, authenticator) = match encoded {
            Ok(e) => e,
            Err(e) => {
                debug!("RADIUS: cannot encode request: {e}");
                let tx = self.transactions.remove(&id);
                if let Some(tx) = tx {
                    self.finish_slots(&tx);
                    let respooled = self.spool.remove_in_flight(RecordId(id));
                    self.give_up(now, id, tx.kind, respooled);
                }
                return true;
            }
        };
        if let Ok(p) = Packet::parse(&bytes) {
            debug!("RADIUS: sent [{p}] to server {server}");
        }
        let slot = (socket, destination, identifier);
        self.in_flight.insert(slot, id);
        let Some(tx) = self.transactions.get_mut(&id) else {
            return true;
        };
        if tx.transmissions > 0 {
            self.stats.retransmissions += 1;
        }
        tx.slots.push((slot, authenticator));
        tx.bytes.clone_from(&bytes);
        self.transmit.push_back(Transmit {
            socket,
            destination,
            bytes,
        });
        self.arm(now, id);
        true
    }

    /// Counts a transmission and sets the retransmission deadline.
    fn arm(&mut self, now: Instant, id: u64) {
        let Some(tx) = self.transactions.get_mut(&id) else {
            return;
        };
        tx.transmissions += 1;
        if let Some(old) = tx.deadline.take() {
            self.deadlines.remove(&(old, id));
        }
        let at = now + self.config.retransmit_interval;
        tx.deadline = Some(at);
        self.deadlines.insert((at, id));
    }

    /// Frees a finished transaction's identifiers and lets waiting ones go.
    fn finish_slots(&mut self, tx: &Transaction) {
        for (slot, _) in &tx.slots {
            self.in_flight.remove(slot);
        }
    }

    fn start_waiting(&mut self, now: Instant) {
        while let Some(&id) = self.waiting.front() {
            if !self.transactions.contains_key(&id) {
                self.waiting.pop_front();
                continue;
            }
            if !self.send(now, id) {
                break;
            }
            self.waiting.pop_front();
        }
    }

    /// No server took the request: an access timeout, or a record for the spool
    /// (`respooled`: it came from the spool, so the owner heard of it already).
    fn give_up(&mut self, now: Instant, id: u64, kind: Kind, respooled: bool) {
        match kind {
            Kind::Access(_) => {
                self.stats.access_timeouts += 1;
                self.events.push_back(ClientEvent::AccessTimeout {
                    request: RequestId(id),
                });
            }
            Kind::Accounting {
                mut record,
                submitted,
            } => {
                record.delay += now.saturating_duration_since(submitted);
                self.stats.spooled += 1;
                if let Some(dropped) = self.spool.push(RecordId(id), *record, now) {
                    self.stats.spool_dropped += 1;
                    self.events
                        .push_back(ClientEvent::SpoolDropped { record: dropped });
                }
                if !respooled && self.spool.contains(RecordId(id)) {
                    self.events.push_back(ClientEvent::Spooled {
                        record: RecordId(id),
                    });
                }
                self.spool_retry_at
                    .get_or_insert(now + self.config.spool_retry_interval);
            }
        }
    }

    /// A datagram arrived on local socket `socket` from `from`.
    pub fn handle_input(&mut self, now: Instant, socket: usize, from: SocketAddr, bytes: &[u8]) {
        if let Err(reason) = self.answer(now, socket, from, bytes) {
            debug!("RADIUS: dropped a datagram from {from}: {reason}");
            match reason {
                DropReason::Malformed => self.stats.malformed += 1,
                DropReason::Unsolicited => self.stats.unsolicited += 1,
                DropReason::UnexpectedCode => self.stats.unexpected_code += 1,
                DropReason::Forged(_) => self.stats.forged += 1,
            }
        }
        self.start_waiting(now);
    }

    fn answer(
        &mut self,
        now: Instant,
        socket: usize,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), DropReason> {
        if bytes.len() < HEADER_LEN {
            return Err(DropReason::Malformed);
        }
        let slot = (socket, from, bytes[1]);
        let id = *self.in_flight.get(&slot).ok_or(DropReason::Unsolicited)?;
        let tx = self.transactions.get(&id).ok_or(DropReason::Unsolicited)?;
        let authenticator = tx
            .slots
            .iter()
            .find(|(s, _)| *s == slot)
            .map(|(_, a)| *a)
            .ok_or(DropReason::Unsolicited)?;
        let server = self
            .config
            .servers
            .iter()
            .position(|s| {
                if tx.kind.is_access() {
                    s.auth == Some(from)
                } else {
                    s.acct == Some(from)
                }
            })
            .ok_or(DropReason::Unsolicited)?;
        let code = Code(bytes[0]);
        let expected = if tx.kind.is_access() {
            matches!(
                code,
                Code::ACCESS_ACCEPT | Code::ACCESS_REJECT | Code::ACCESS_CHALLENGE
            )
        } else {
            code == Code::ACCOUNTING_RESPONSE
        };
        if !expected {
            return Err(DropReason::UnexpectedCode);
        }
        let secret = &self.config.servers[server].secret;
        let require = tx.kind.is_access() && self.config.require_message_authenticator;
        verify_response(bytes, &authenticator, secret, require).map_err(DropReason::Forged)?;
        let packet = Packet::parse(bytes).map_err(|_| DropReason::Malformed)?;
        debug!("RADIUS: rcvd [{packet}] from server {server}");
        // Authentic: the transaction is done.
        let secret = secret.clone();
        let Some(tx) = self.transactions.remove(&id) else {
            return Err(DropReason::Unsolicited);
        };
        self.finish_slots(&tx);
        if let Some(at) = tx.deadline {
            self.deadlines.remove(&(at, id));
        }
        self.stats.answers += 1;
        self.mark_alive(server);
        match tx.kind {
            Kind::Access(request) => {
                let answer =
                    AccessAnswer::from_packet(&packet, request.method(), &authenticator, &secret);
                self.events.push_back(ClientEvent::Access {
                    request: RequestId(id),
                    answer: Box::new(answer),
                });
            }
            Kind::Accounting { .. } => {
                self.events.push_back(ClientEvent::Accounted {
                    record: RecordId(id),
                });
                if self.spool.remove_in_flight(RecordId(id)) {
                    self.spool_in_flight = self.spool_in_flight.saturating_sub(1);
                }
                // A server answers: try the spool soon.
                if !self.spool.is_empty() && self.spool_in_flight == 0 {
                    self.spool_retry_at = Some(now);
                }
            }
        }
        Ok(())
    }

    fn mark_alive(&mut self, server: usize) {
        if self.servers[server].dead_until.take().is_some() {
            self.events.push_back(ClientEvent::ServerUp { server });
        }
    }

    /// The deadline from [`poll_timeout`](Self::poll_timeout) has come: retransmissions,
    /// failovers, timeouts, spool retries. Spurious calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.remove(&(at, id));
            self.expire(now, id);
        }
        if self.spool_retry_at.is_some_and(|at| at <= now) {
            self.spool_retry_at = None;
            self.retry_spool(now);
        }
        self.start_waiting(now);
    }

    fn expire(&mut self, now: Instant, id: u64) {
        let n_servers = self.config.servers.len();
        let max = self.config.max_transmissions;
        let dead_time = self.config.dead_time;
        let Some(tx) = self.transactions.get_mut(&id) else {
            return;
        };
        tx.deadline = None;
        if tx.transmissions < max {
            self.send(now, id);
            return;
        }
        // This server had its chances.
        let server = tx.server;
        let access = tx.kind.is_access();
        let tried = tx.tried;
        if self.servers[server].dead_until.is_none_or(|t| t <= now) {
            debug!("RADIUS: server {server} does not answer");
            self.servers[server].dead_until = Some(now + dead_time);
            self.events.push_back(ClientEvent::ServerDown { server });
        }
        let usable = (0..n_servers)
            .filter(|&i| self.address(i, access).is_some())
            .count();
        if tried >= usable {
            if let Some(tx) = self.transactions.remove(&id) {
                self.finish_slots(&tx);
                let respooled = self.spool.remove_in_flight(RecordId(id));
                if respooled {
                    self.spool_in_flight = self.spool_in_flight.saturating_sub(1);
                }
                self.give_up(now, id, tx.kind, respooled);
            }
            return;
        }
        let next = self.next_server(now, server, access);
        if let Some(tx) = self.transactions.get_mut(&id) {
            tx.server = next;
            tx.tried += 1;
            tx.transmissions = 0;
        }
        if !self.send(now, id) {
            self.waiting.push_back(id);
        }
    }

    /// Sends a batch of spooled records again.
    fn retry_spool(&mut self, now: Instant) {
        let batch = self.config.spool_batch.max(1);
        for _ in 0..batch {
            let Some((id, record, spooled_at)) = self.spool.take_for_retry() else {
                break;
            };
            self.spool_in_flight += 1;
            self.transactions.insert(
                id.0,
                Transaction {
                    kind: Kind::Accounting {
                        record: Box::new(record),
                        submitted: spooled_at,
                    },
                    server: self.first_server(now, false).unwrap_or(0),
                    tried: 1,
                    transmissions: 0,
                    deadline: None,
                    slots: Vec::new(),
                    bytes: Vec::new(),
                },
            );
            if !self.send(now, id.0) {
                self.waiting.push_back(id.0);
            }
        }
        if !self.spool.is_empty() {
            self.spool_retry_at = Some(now + self.config.spool_retry_interval);
        }
    }

    /// The next datagram to send. Poll until `None` after every input.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmit.pop_front()
    }

    /// The next event. Poll until `None` after every input.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let first = self.deadlines.first().map(|(at, _)| *at);
        match (first, self.spool_retry_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether a record is spooled (waiting for a retry).
    pub fn is_spooled(&self, record: RecordId) -> bool {
        self.spool.contains(record)
    }

    /// The records in the spool, oldest first, with their status (for a status page).
    pub fn spool_summary(&self) -> Vec<(RecordId, AcctStatusType)> {
        self.spool.summary()
    }
}

#[cfg(test)]
mod tests;
