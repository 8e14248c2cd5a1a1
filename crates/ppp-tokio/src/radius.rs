//! RADIUS over UDP: the `ppp-radius` client machine in a task (authentication and accounting
//! against several servers), an accounting spool on disk, and a dynamic-authorization (RFC
//! 5176) listener.
//!
//! - [`RadiusService::spawn`] binds the client's sockets, runs the sans-IO
//!   [`ppp_radius::RadiusClient`] in a task and hands back a cloneable handle:
//!   [`authenticate`](RadiusService::authenticate) sends an Access-Request and waits for the
//!   verified answer, [`account`](RadiusService::account) writes a record to the spool on disk
//!   and sends it. Random values (Request Authenticators, ids) come from the OS.
//! - [`DiskSpool`]: an append-only journal in a directory. Every accounting record is written
//!   (and fsync'ed) before it is sent and marked done when a server acknowledges it; at start
//!   the records never acknowledged are sent again, with Acct-Delay-Time counting the time
//!   since their event. So a RADIUS outage, a crash or a restart loses no Stop record.
//! - [`DaeListener::bind`] listens for Disconnect-Request and CoA-Request (default port
//!   [`DAE_PORT`](ppp_radius::DAE_PORT), 3799), authenticates them with the
//!   [`ppp_radius::DaeServer`] core and hands each to the owner as a
//!   [`DaeRequest`] to answer.
//!
//! Shared secrets are never logged: the configuration's `Debug` hides them and the packet
//! summaries at debug level show attribute names, not values.
//!
//! ```no_run
//! use ppp_radius::{ClientConfig, NasIdentity, ServerConfig, Verdict};
//! use ppp_tokio::radius::{RadiusService, ServiceConfig};
//!
//! # async fn run(verify: ppp_auth::VerifyRequest) -> std::io::Result<()> {
//! let server = ServerConfig::new(
//!     "192.0.2.10:1812".parse().unwrap(),
//!     "192.0.2.10:1813".parse().unwrap(),
//!     "s3cret",
//! );
//! let client = ClientConfig::new(vec![server], NasIdentity::named("ac1"));
//! let mut config = ServiceConfig::new(client);
//! config.spool_dir = Some("/var/spool/ppp-radius".into());
//! let radius = RadiusService::spawn(config).await?;
//! let session = ppp_radius::SessionContext::default();
//! let request = ppp_radius::AccessRequest::new(&verify, &session);
//! match radius.authenticate(request).await {
//!     Ok(answer) => {
//!         // authenticator.provide_verdict(now, verify.token, answer.verdict)
//!         let _ = (answer.verdict, answer.authorization);
//!     }
//!     Err(no_answer) => eprintln!("RADIUS: {no_answer}"),
//! }
//! # Ok(())
//! # }
//! ```

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ppp_core::Random;
use ppp_radius::{
    AccessAnswer, AccessRequest, AccountingRecord, ClientConfig, ClientEvent, ClientStats,
    DaeConfig, DaeEvent, DaeOutcome, DaeServer, DaeStats, DaeToken, ErrorCause, RadiusClient,
    RecordId, RequestId,
};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::now;

/// Why [`RadiusService::authenticate`] or [`RadiusService::account`] has no result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// No server answered (every transmission to every server).
    #[error("no RADIUS server answered")]
    NoAnswer,
    /// The service task has stopped.
    #[error("the RADIUS service has stopped")]
    Stopped,
    /// Writing the accounting record to the spool on disk failed.
    #[error("accounting spool: {0}")]
    Spool(#[from] io::Error),
}

/// Settings of the [`RadiusService`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// The client machine's settings (servers, secrets, timers, sockets).
    pub client: ClientConfig,
    /// The local address the client's sockets bind to (port 0: chosen by the system).
    pub bind: SocketAddr,
    /// Where the accounting journal lives (`None`: the spool is in memory only).
    pub spool_dir: Option<PathBuf>,
}

impl ServiceConfig {
    /// `client`, sockets on any IPv4 address, no spool on disk.
    pub fn new(client: ClientConfig) -> Self {
        ServiceConfig {
            client,
            bind: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            spool_dir: None,
        }
    }
}

enum Command {
    Authenticate(
        AccessRequest,
        oneshot::Sender<Result<AccessAnswer, ServiceError>>,
    ),
    Account(
        Box<AccountingRecord>,
        oneshot::Sender<Result<RecordId, ServiceError>>,
    ),
    Spooled(oneshot::Sender<usize>),
    Shutdown(oneshot::Sender<()>),
}

/// A handle on the RADIUS client task; clones share the task. The task stops when the last
/// handle is dropped.
#[derive(Clone, Debug)]
pub struct RadiusService {
    commands: mpsc::Sender<Command>,
    /// Records given with [`submit`](Self::submit), in order.
    records: mpsc::UnboundedSender<Box<AccountingRecord>>,
    stats: Arc<Mutex<ClientStats>>,
    local_addrs: Arc<Vec<SocketAddr>>,
}

impl RadiusService {
    /// Binds the client's sockets, opens the spool (sending again what it holds), and starts
    /// the task.
    ///
    /// # Errors
    ///
    /// When a socket cannot be bound, the spool directory cannot be opened, or the OS has no
    /// entropy.
    pub async fn spawn(config: ServiceConfig) -> io::Result<RadiusService> {
        let random = Random::from_os().map_err(io::Error::other)?;
        let mut sockets = Vec::new();
        for _ in 0..config.client.sockets.max(1) {
            sockets.push(Arc::new(UdpSocket::bind(config.bind).await?));
        }
        let local_addrs = sockets
            .iter()
            .map(|s| s.local_addr())
            .collect::<io::Result<Vec<_>>>()?;
        let mut spool = match &config.spool_dir {
            Some(dir) => Some(DiskSpool::open(dir)?),
            None => None,
        };
        let record_ids = random.fork();
        let mut client = RadiusClient::new(config.client, random);
        let mut unacknowledged = HashSet::new();
        if let Some(spool) = spool.as_mut() {
            let pending = spool.take_pending();
            if !pending.is_empty() {
                info!(
                    "RADIUS: sending {} accounting records from the spool",
                    pending.len()
                );
            }
            let wall = unix_time();
            for (id, mut record) in pending {
                if let Some(ts) = record.event_timestamp {
                    record.delay = record
                        .delay
                        .max(Duration::from_secs(wall.saturating_sub(u64::from(ts))));
                }
                client.resubmit(now(), id, record);
                unacknowledged.insert(id);
            }
        }
        let (datagrams_tx, datagrams) = mpsc::channel(1024);
        let mut readers = Vec::new();
        for (index, socket) in sockets.iter().enumerate() {
            let socket = socket.clone();
            let tx = datagrams_tx.clone();
            readers.push(tokio::spawn(async move {
                let mut buf = vec![0u8; ppp_radius::MAX_PACKET_LEN];
                loop {
                    match socket.recv_from(&mut buf).await {
                        Ok((n, from)) => {
                            if tx.send((index, from, buf[..n].to_vec())).await.is_err() {
                                break;
                            }
                        }
                        Err(e) => debug!("RADIUS: receive error: {e}"),
                    }
                }
            }));
        }
        let (commands, commands_rx) = mpsc::channel(1024);
        let (records, records_rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Mutex::new(ClientStats::default()));
        let task = Task {
            record_ids,
            unacknowledged,
            client,
            sockets,
            spool,
            waiting_access: HashMap::new(),
            stats: stats.clone(),
        };
        tokio::spawn(async move {
            task.run(commands_rx, records_rx, datagrams).await;
            for reader in readers {
                reader.abort();
            }
        });
        Ok(RadiusService {
            commands,
            records,
            stats,
            local_addrs: Arc::new(local_addrs),
        })
    }

    /// Sends an Access-Request and waits for the verified answer (at most
    /// [`ClientConfig::access_deadline`]).
    ///
    /// # Errors
    ///
    /// [`ServiceError::NoAnswer`] when no server answered, [`ServiceError::Stopped`] when the
    /// task is gone.
    pub async fn authenticate(&self, request: AccessRequest) -> Result<AccessAnswer, ServiceError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Authenticate(request, tx))
            .await
            .map_err(|_| ServiceError::Stopped)?;
        rx.await.map_err(|_| ServiceError::Stopped)?
    }

    /// Writes a record to the spool on disk (fsync'ed) and sends it; it is sent again until a
    /// server acknowledges it, after restarts too. Without `event_timestamp`, it gets the wall
    /// clock's.
    ///
    /// # Errors
    ///
    /// [`ServiceError::Spool`] when the record could not be written, [`ServiceError::Stopped`]
    /// when the task is gone.
    pub async fn account(&self, mut record: AccountingRecord) -> Result<RecordId, ServiceError> {
        if record.event_timestamp.is_none() {
            record.event_timestamp = Some(u32::try_from(unix_time()).unwrap_or(u32::MAX));
        }
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Account(Box::new(record), tx))
            .await
            .map_err(|_| ServiceError::Stopped)?;
        rx.await.map_err(|_| ServiceError::Stopped)?
    }

    /// Like [`account`](Self::account) without waiting: the record joins the records given
    /// before it, in order, and is written to the spool on disk when the task takes it (a
    /// crash in between loses it). For run loops that must not wait on a disk.
    ///
    /// # Errors
    ///
    /// [`ServiceError::Stopped`] when the task is gone.
    pub fn submit(&self, mut record: AccountingRecord) -> Result<(), ServiceError> {
        if record.event_timestamp.is_none() {
            record.event_timestamp = Some(u32::try_from(unix_time()).unwrap_or(u32::MAX));
        }
        self.records
            .send(Box::new(record))
            .map_err(|_| ServiceError::Stopped)
    }

    /// Waits until every accounting record is acknowledged, at most `within` (before a
    /// program exits: what is left stays in the spool for its next start). The records still
    /// unacknowledged.
    pub async fn flush(&self, within: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = self.unacknowledged().await.unwrap_or(0);
            if left == 0 || tokio::time::Instant::now() >= deadline {
                return left;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Accounting records not yet acknowledged by any server (sent, waiting for a retry, or
    /// replayed from the spool on disk).
    ///
    /// # Errors
    ///
    /// [`ServiceError::Stopped`] when the task is gone.
    pub async fn unacknowledged(&self) -> Result<usize, ServiceError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Spooled(tx))
            .await
            .map_err(|_| ServiceError::Stopped)?;
        rx.await.map_err(|_| ServiceError::Stopped)
    }

    /// Stops the task now, as a process exit would: what is not acknowledged stays in the
    /// spool on disk for the next start. (Dropping every handle instead lets the task finish
    /// the requests in flight first.)
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// The client's counters (answers, forged and unsolicited datagrams, timeouts, spool).
    pub fn stats(&self) -> ClientStats {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The local addresses of the client's sockets.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }
}

struct Task {
    /// Where accounting record ids come from (random, so they stay unique across restarts).
    record_ids: Random,
    /// Records given to the client and not acknowledged yet.
    unacknowledged: HashSet<RecordId>,
    client: RadiusClient,
    sockets: Vec<Arc<UdpSocket>>,
    spool: Option<DiskSpool>,
    waiting_access: HashMap<RequestId, oneshot::Sender<Result<AccessAnswer, ServiceError>>>,
    stats: Arc<Mutex<ClientStats>>,
}

impl Task {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut records: mpsc::UnboundedReceiver<Box<AccountingRecord>>,
        mut datagrams: mpsc::Receiver<(usize, SocketAddr, Vec<u8>)>,
    ) {
        let mut open = true;
        loop {
            self.flush().await;
            let deadline = self.client.poll_timeout();
            // Every branch is cancel safe: channel receives and a sleep.
            tokio::select! {
                command = commands.recv(), if open => match command {
                    Some(Command::Shutdown(done)) => {
                        let _ = done.send(());
                        break;
                    }
                    Some(Command::Spooled(reply)) => {
                        // Submitted records not taken yet count too.
                        let _ = reply.send(self.unacknowledged.len() + records.len());
                    }
                    Some(command) => self.command(command),
                    None => open = false,
                },
                Some(record) = records.recv() => {
                    let (reply, _) = oneshot::channel();
                    self.command(Command::Account(record, reply));
                }
                Some((socket, from, bytes)) = datagrams.recv() => {
                    self.client.handle_input(now(), socket, from, &bytes);
                }
                () = sleep_until(deadline) => self.client.handle_timeout(now()),
            }
            if !open && self.client.in_flight() == 0 && records.is_empty() {
                self.flush().await;
                break;
            }
        }
        debug!("RADIUS: service stopped");
    }

    fn command(&mut self, command: Command) {
        let t = now();
        match command {
            Command::Authenticate(request, reply) => {
                let id = self.client.authenticate(t, request);
                self.waiting_access.insert(id, reply);
            }
            Command::Account(record, reply) => {
                // Written before it is sent: a crash after this point loses nothing.
                let id = RecordId(self.record_ids.u64());
                if let Some(spool) = self.spool.as_mut()
                    && let Err(e) = spool.append(id, &record)
                {
                    warn!("RADIUS: accounting spool: {e}");
                    let _ = reply.send(Err(ServiceError::Spool(e)));
                    return;
                }
                self.client.resubmit(t, id, *record);
                self.unacknowledged.insert(id);
                let _ = reply.send(Ok(id));
            }
            Command::Spooled(reply) => {
                let _ = reply.send(self.unacknowledged.len());
            }
            Command::Shutdown(done) => {
                let _ = done.send(());
            }
        }
    }

    /// Sends what the machine has to send and delivers its events.
    async fn flush(&mut self) {
        while let Some(t) = self.client.poll_transmit() {
            if let Some(socket) = self.sockets.get(t.socket)
                && let Err(e) = socket.send_to(&t.bytes, t.destination).await
            {
                debug!("RADIUS: send to {} failed: {e}", t.destination);
            }
        }
        while let Some(event) = self.client.poll_event() {
            match event {
                ClientEvent::Access { request, answer } => {
                    if let Some(reply) = self.waiting_access.remove(&request) {
                        let _ = reply.send(Ok(*answer));
                    }
                }
                ClientEvent::AccessTimeout { request } => {
                    if let Some(reply) = self.waiting_access.remove(&request) {
                        let _ = reply.send(Err(ServiceError::NoAnswer));
                    }
                }
                ClientEvent::Accounted { record } => {
                    self.unacknowledged.remove(&record);
                    if let Some(spool) = self.spool.as_mut()
                        && let Err(e) = spool.done(record)
                    {
                        warn!("RADIUS: accounting spool: {e}");
                    }
                }
                ClientEvent::Spooled { record } => {
                    info!("RADIUS: accounting record {record} spooled: no server answered");
                }
                ClientEvent::SpoolDropped { record } => {
                    self.unacknowledged.remove(&record);
                    warn!("RADIUS: accounting record {record} dropped: the spool is full");
                }
                ClientEvent::ServerDown { server } => {
                    warn!("RADIUS: server {server} does not answer");
                }
                ClientEvent::ServerUp { server } => info!("RADIUS: server {server} answers again"),
                _ => {}
            }
        }
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner) = self.client.stats();
    }
}

async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

fn unix_time() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The journal's file name inside the spool directory.
pub const JOURNAL_FILE: &str = "accounting.journal";

const ENTRY_RECORD: u8 = 1;
const ENTRY_DONE: u8 = 2;

/// Accounting records on disk until a server acknowledges them: an append-only journal
/// (`accounting.journal` in a directory) of entries `record(id, bytes)` and `done(id)`, each
/// fsync'ed. Opening it reads the records that have no `done`, rewrites the journal with only
/// them (through a temporary file and a rename), and gives them back with
/// [`take_pending`](Self::take_pending). A torn entry at the end (a crash while writing) is
/// ignored.
#[derive(Debug)]
pub struct DiskSpool {
    path: PathBuf,
    file: File,
    pending: HashMap<RecordId, ()>,
    replay: Vec<(RecordId, AccountingRecord)>,
    /// Entries written since the last rewrite.
    written: usize,
}

impl DiskSpool {
    /// Opens (or creates) the journal in `dir`.
    ///
    /// # Errors
    ///
    /// When the directory or the file cannot be created, read or rewritten.
    pub fn open(dir: &Path) -> io::Result<DiskSpool> {
        fs::create_dir_all(dir)?;
        let path = dir.join(JOURNAL_FILE);
        let mut bytes = Vec::new();
        if path.exists() {
            File::open(&path)?.read_to_end(&mut bytes)?;
        }
        let mut records: Vec<(RecordId, AccountingRecord)> = Vec::new();
        let mut done = std::collections::HashSet::new();
        let mut rest = &bytes[..];
        while let Some((kind, id, body, tail)) = read_entry(rest) {
            rest = tail;
            match kind {
                ENTRY_RECORD => match AccountingRecord::from_bytes(body) {
                    Ok(record) => records.push((id, record)),
                    Err(e) => warn!("RADIUS: unreadable record in the spool: {e}"),
                },
                ENTRY_DONE => {
                    done.insert(id);
                }
                _ => break,
            }
        }
        if !rest.is_empty() {
            warn!(
                "RADIUS: ignoring {} torn bytes at the end of the spool",
                rest.len()
            );
        }
        records.retain(|(id, _)| !done.contains(id));
        // Rewrite with only what is pending.
        let tmp = dir.join(format!("{JOURNAL_FILE}.tmp"));
        {
            let mut out = File::create(&tmp)?;
            for (id, record) in &records {
                out.write_all(&entry(ENTRY_RECORD, *id, &record_bytes(record)?))?;
            }
            out.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        let file = OpenOptions::new().append(true).open(&path)?;
        Ok(DiskSpool {
            path,
            file,
            pending: records.iter().map(|(id, _)| (*id, ())).collect(),
            replay: records,
            written: 0,
        })
    }

    /// The records an earlier run left unacknowledged (once; later calls give nothing).
    pub fn take_pending(&mut self) -> Vec<(RecordId, AccountingRecord)> {
        std::mem::take(&mut self.replay)
    }

    /// Records written and not yet done.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a record (fsync'ed).
    ///
    /// # Errors
    ///
    /// When writing or syncing fails.
    pub fn append(&mut self, id: RecordId, record: &AccountingRecord) -> io::Result<()> {
        self.write(&entry(ENTRY_RECORD, id, &record_bytes(record)?))?;
        self.pending.insert(id, ());
        Ok(())
    }

    /// Marks a record acknowledged (fsync'ed). When nothing is pending any more and the
    /// journal has grown, it is emptied.
    ///
    /// # Errors
    ///
    /// When writing or syncing fails.
    pub fn done(&mut self, id: RecordId) -> io::Result<()> {
        if self.pending.remove(&id).is_none() {
            return Ok(());
        }
        if self.pending.is_empty() && self.written > 1024 {
            self.file.set_len(0)?;
            self.file.sync_all()?;
            self.written = 0;
            return Ok(());
        }
        self.write(&entry(ENTRY_DONE, id, &[]))
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.file.sync_data()?;
        self.written += 1;
        Ok(())
    }
}

fn record_bytes(record: &AccountingRecord) -> io::Result<Vec<u8>> {
    record.to_bytes().map_err(io::Error::other)
}

/// One journal entry: kind (1), id (8, big-endian), length (2), body.
fn entry(kind: u8, id: RecordId, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(11 + body.len());
    out.push(kind);
    out.extend_from_slice(&id.0.to_be_bytes());
    out.extend_from_slice(&u16::try_from(body.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn read_entry(bytes: &[u8]) -> Option<(u8, RecordId, &[u8], &[u8])> {
    let (&kind, rest) = bytes.split_first()?;
    let (id, rest) = rest.split_first_chunk::<8>()?;
    let (len, rest) = rest.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    if rest.len() < len {
        return None;
    }
    Some((
        kind,
        RecordId(u64::from_be_bytes(*id)),
        &rest[..len],
        &rest[len..],
    ))
}

/// A verified Disconnect-Request or CoA-Request for the owner: act on it, then
/// [`respond`](Self::respond). Dropped without an answer, it is NAKed with Error-Cause 506
/// (Resources-Unavailable).
#[derive(Debug)]
pub struct DaeRequest {
    /// What is asked.
    pub event: DaeEvent,
    reply: Option<oneshot::Sender<DaeOutcome>>,
}

impl DaeRequest {
    /// Answers the request: ACK, or NAK with an Error-Cause.
    pub fn respond(mut self, outcome: DaeOutcome) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(outcome);
        }
    }
}

impl Drop for DaeRequest {
    fn drop(&mut self) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(DaeOutcome::Nak(ErrorCause::RESOURCES_UNAVAILABLE));
        }
    }
}

/// A dynamic-authorization listener: a UDP socket and the [`DaeServer`] core in a task.
#[derive(Debug)]
pub struct DaeListener {
    requests: mpsc::Receiver<DaeRequest>,
    local_addr: SocketAddr,
    stats: Arc<Mutex<DaeStats>>,
    task: JoinHandle<()>,
}

impl DaeListener {
    /// Listens on `addr` (port [`DAE_PORT`](ppp_radius::DAE_PORT), 3799, by default).
    ///
    /// # Errors
    ///
    /// When the socket cannot be bound.
    pub async fn bind(addr: SocketAddr, config: DaeConfig) -> io::Result<DaeListener> {
        let socket = UdpSocket::bind(addr).await?;
        let local_addr = socket.local_addr()?;
        let (tx, requests) = mpsc::channel(256);
        let stats = Arc::new(Mutex::new(DaeStats::default()));
        let task = tokio::spawn(run_dae(socket, DaeServer::new(config), tx, stats.clone()));
        Ok(DaeListener {
            requests,
            local_addr,
            stats,
            task,
        })
    }

    /// Listens on every address, port 3799.
    ///
    /// # Errors
    ///
    /// When the socket cannot be bound.
    pub async fn bind_default(config: DaeConfig) -> io::Result<DaeListener> {
        Self::bind(
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), ppp_radius::DAE_PORT),
            config,
        )
        .await
    }

    /// The next verified request. Cancel safe.
    pub async fn recv(&mut self) -> Option<DaeRequest> {
        self.requests.recv().await
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Counters (including forged requests dropped).
    pub fn stats(&self) -> DaeStats {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A handle on the counters that outlives moving the listener into a task.
    pub fn counters(&self) -> DaeCounters {
        DaeCounters(self.stats.clone())
    }
}

/// The counters of a [`DaeListener`], readable from anywhere (a status command).
#[derive(Clone, Debug)]
pub struct DaeCounters(Arc<Mutex<DaeStats>>);

impl DaeCounters {
    /// The counters now.
    pub fn get(&self) -> DaeStats {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for DaeListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run_dae(
    socket: UdpSocket,
    mut server: DaeServer,
    requests: mpsc::Sender<DaeRequest>,
    stats: Arc<Mutex<DaeStats>>,
) {
    let (answers_tx, mut answers) = mpsc::channel::<(DaeToken, DaeOutcome)>(256);
    let mut buf = vec![0u8; ppp_radius::MAX_PACKET_LEN];
    // Refused requests are worth an operator's attention, but a flood must not flood the log.
    let mut last_warning: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, from)) => {
                    let before = server.stats();
                    server.handle_input(now(), unix_time(), from, &buf[..n]);
                    let after = server.stats();
                    let refused = (after.forged + after.unknown_client + after.stale)
                        > (before.forged + before.unknown_client + before.stale);
                    let quiet = last_warning
                        .is_none_or(|at| now().duration_since(at) >= Duration::from_secs(1));
                    if refused && quiet {
                        last_warning = Some(now());
                        warn!(
                            "DAE: dropped a request from {}: not from a client with the right \
                             secret, or replayed ({} forged, {} from unknown clients, {} stale \
                             so far)",
                            from.ip(),
                            after.forged,
                            after.unknown_client,
                            after.stale
                        );
                    }
                }
                Err(e) => debug!("DAE: receive error: {e}"),
            },
            Some((token, outcome)) = answers.recv() => {
                server.respond(now(), token, outcome);
            }
        }
        while let Some(event) = server.poll_event() {
            let token = match &event {
                DaeEvent::Disconnect { token, .. } | DaeEvent::Change { token, .. } => *token,
                _ => continue,
            };
            let (reply, answer) = oneshot::channel();
            let request = DaeRequest {
                event,
                reply: Some(reply),
            };
            if requests.try_send(request).is_err() {
                // The owner is gone or far behind: the request is NAKed (the drop above).
                continue;
            }
            let answers_tx = answers_tx.clone();
            tokio::spawn(async move {
                let outcome = answer
                    .await
                    .unwrap_or(DaeOutcome::Nak(ErrorCause::RESOURCES_UNAVAILABLE));
                let _ = answers_tx.send((token, outcome)).await;
            });
        }
        while let Some(t) = server.poll_transmit() {
            if let Err(e) = socket.send_to(&t.bytes, t.destination).await {
                debug!("DAE: send to {} failed: {e}", t.destination);
            }
        }
        *stats.lock().unwrap_or_else(PoisonError::into_inner) = server.stats();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_keeps_what_was_not_acknowledged() {
        let dir = std::env::temp_dir().join(format!("ppp-radius-spool-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        {
            let mut spool = DiskSpool::open(&dir).unwrap();
            assert!(spool.take_pending().is_empty());
            spool
                .append(RecordId(1), &AccountingRecord::start("S1", "alice"))
                .unwrap();
            spool
                .append(RecordId(2), &AccountingRecord::stop("S1", "alice"))
                .unwrap();
            spool.done(RecordId(1)).unwrap();
        }
        // A torn entry at the end, as a crash leaves it.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.join(JOURNAL_FILE))
            .unwrap();
        f.write_all(&[ENTRY_RECORD, 0, 0, 0]).unwrap();
        drop(f);
        let mut spool = DiskSpool::open(&dir).unwrap();
        let pending = spool.take_pending();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].0, RecordId(2));
        assert_eq!(pending[0].1, AccountingRecord::stop("S1", "alice"));
        spool.done(RecordId(2)).unwrap();
        drop(spool);
        assert!(DiskSpool::open(&dir).unwrap().take_pending().is_empty());
        let _ = fs::remove_dir_all(&dir);
    }
}
