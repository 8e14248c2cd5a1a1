//! The NAS side of AAA for the servers (the access concentrator of [`crate::pppoe`], a dial-in
//! server): who a user is (local secrets, then RADIUS), what it may do (a profile's or
//! RADIUS's limits: rate limit, Session-Timeout, Idle-Timeout, one session per user), what it
//! did (RFC 2866 accounting), and what an operator or a RADIUS server changes while it runs
//! (RFC 5176 Disconnect-Request and CoA-Request).
//!
//! - [`Aaa`] is shared by every server of a process (one per interface): the
//!   [`RadiusService`], the settings of `/ppp aaa`, and the registry of authenticated sessions
//!   that `only-one` and dynamic authorization look through. Each server
//!   [`attach`](Aaa::attach)es and gets the [`AaaCommand`]s meant for its sessions.
//! - [`Aaa::verify`] decides a [`VerifyRequest`] (an authenticator in external mode): the
//!   local secrets first (checked here with
//!   [`verify_locally`](ppp_auth::VerifyRequest::verify_locally)), then RADIUS; no answer from
//!   any server is a refusal, logged as such.
//! - [`NasSession`] is a running session's enforcement and accounting, sans-IO: its two
//!   [`Shaper`]s (what it receives from the user, what it sends to the user), its
//!   [`SessionClock`], its counters, and its accounting records (Start, Interim-Update, Stop
//!   with [`terminate_cause`]).
//! - [`Aaa::serve_dae`] answers a [`DaeListener`]'s requests: it finds the sessions a request
//!   selects in the registry, has their servers act, and ACKs or NAKs.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::hash::Hash;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ppp_auth::{Rejection, SecretEntry, SecretRequest, SecretsBackend, Verdict, VerifyRequest};
use ppp_core::{CloseReason, Random};
use ppp_link::DownReason;
use ppp_link::pppoe::SessionEnd;
use ppp_radius::limits::{Admission, ClockEvent, SessionClock, Shaper};
use ppp_radius::{
    AccessRequest, AccountingRecord, AcctAuthentic, AcctSessionId, AcctStatusType, Authorization,
    Change, Counters, DaeEvent, DaeOutcome, ErrorCause, RateLimit, SessionContext, SessionIdentity,
    SessionSelector, TerminateCause,
};
use pppoe_discovery::AcSessionEnd;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::radius::{DaeListener, RadiusService, ServiceError};

/// RouterOS `only-one`, as the servers apply it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OnlySession {
    /// Any number of sessions per user.
    #[default]
    Any,
    /// A second login of a user with a session up is refused (RouterOS `only-one=yes`).
    RefuseSecond,
    /// A second login closes the first (Acct-Terminate-Cause Port-Preempted).
    ReplaceFirst,
}

/// What a session may do: a profile's (or a secret's) limits, with RADIUS's winning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionLimits {
    /// The rate limit (`rx` the user's upload, `tx` its download).
    pub rate_limit: Option<RateLimit>,
    /// The longest the session may last (from IPCP up).
    pub session_timeout: Option<Duration>,
    /// How long it may carry no traffic.
    pub idle_timeout: Option<Duration>,
    /// One session per user.
    pub only_one: OnlySession,
}

impl SessionLimits {
    /// These limits with what RADIUS said instead, where it said something
    /// (Mikrotik-Rate-Limit, Session-Timeout, Idle-Timeout).
    pub fn with_authorization(mut self, authorization: &Authorization) -> Self {
        if authorization.rate_limit.is_some() {
            self.rate_limit = authorization.rate_limit;
        }
        if authorization.session_timeout.is_some() {
            self.session_timeout = authorization.session_timeout.filter(|t| !t.is_zero());
        }
        if authorization.idle_timeout.is_some() {
            self.idle_timeout = authorization.idle_timeout.filter(|t| !t.is_zero());
        }
        self
    }
}

/// The process-wide AAA settings (RouterOS `/ppp aaa` and the RADIUS client).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct AaaOptions {
    /// The RADIUS client (authentication and accounting), if one is configured.
    pub radius: Option<RadiusService>,
    /// Authenticate users the local secrets do not have through RADIUS (`use-radius`): the
    /// servers then run their authenticators in external mode.
    pub use_radius: bool,
    /// Send accounting records (`accounting`; needs `radius`).
    pub accounting: bool,
    /// Interim-Update interval when RADIUS gives no Acct-Interim-Interval (`interim-update`).
    pub interim_interval: Option<Duration>,
}

impl AaaOptions {
    /// No RADIUS: local secrets only, no accounting.
    pub fn local() -> Self {
        AaaOptions::default()
    }

    /// With a RADIUS client: `use-radius` and `accounting` on, no interim updates unless
    /// RADIUS asks for them.
    pub fn with_radius(radius: RadiusService) -> Self {
        AaaOptions {
            radius: Some(radius),
            use_radius: true,
            accounting: true,
            interim_interval: None,
        }
    }
}

/// Identifies a session across the servers of a process: the server (see
/// [`Aaa::attach`]) and its port (a PPPoE session id, a line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    /// The server.
    pub server: u32,
    /// The session within the server.
    pub port: u32,
}

/// What a server is asked to do with one of its sessions.
#[derive(Debug)]
#[non_exhaustive]
pub enum AaaCommand {
    /// End the session (a Disconnect-Request: `AdminReset`; another login with `only-one`:
    /// `Replaced`). `done` says whether there was such a session.
    Close {
        /// The session.
        port: u32,
        /// Why.
        reason: CloseReason,
        /// Answered with whether the session existed.
        done: Option<oneshot::Sender<bool>>,
    },
    /// Change the session's limits (a CoA-Request).
    Change {
        /// The session.
        port: u32,
        /// What changes.
        change: Change,
        /// Answered with `Ok` once the change is applied, or with why it is not:
        /// [`ErrorCause::SESSION_CONTEXT_NOT_FOUND`] when the server has no such session,
        /// [`ErrorCause::UNSUPPORTED_ATTRIBUTE`] when it sets something the session cannot
        /// have (a rate limit on the kernel data path). Nothing of a refused change is applied.
        done: oneshot::Sender<Result<(), ErrorCause>>,
    },
}

/// An authenticated session as the registry knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredSession {
    /// User-Name.
    pub user: String,
    /// Acct-Session-Id.
    pub acct_session_id: String,
    /// Framed-IP-Address, once IPCP is up.
    pub framed_ip_address: Option<Ipv4Addr>,
    /// NAS-Port-Id.
    pub nas_port_id: Option<String>,
    /// NAS-Port.
    pub nas_port: Option<u32>,
    /// Calling-Station-Id.
    pub calling_station_id: Option<String>,
}

impl RegisteredSession {
    /// The session `account` names, before IPCP gave it an address.
    pub fn of(account: &SessionAccount) -> RegisteredSession {
        RegisteredSession {
            user: account.user.clone(),
            acct_session_id: account.acct_session_id.to_string(),
            framed_ip_address: None,
            nas_port_id: account.context.nas_port_id.clone(),
            nas_port: account.context.nas_port,
            calling_station_id: account.context.calling_station_id.clone(),
        }
    }

    fn identity(&self) -> SessionIdentity<'_> {
        SessionIdentity {
            acct_session_id: &self.acct_session_id,
            user_name: &self.user,
            framed_ip_address: self.framed_ip_address,
            nas_port_id: self.nas_port_id.as_deref(),
            nas_port: self.nas_port,
            calling_station_id: self.calling_station_id.as_deref(),
        }
    }
}

#[derive(Default)]
struct Registry {
    next_server: u32,
    servers: HashMap<u32, mpsc::UnboundedSender<AaaCommand>>,
    sessions: HashMap<SessionKey, RegisteredSession>,
}

struct Shared {
    options: AaaOptions,
    random: Random,
    registry: Mutex<Registry>,
}

/// The AAA of a process, shared by its servers (clones share everything).
#[derive(Clone)]
pub struct Aaa {
    shared: Arc<Shared>,
}

impl fmt::Debug for Aaa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aaa")
            .field("use_radius", &self.shared.options.use_radius)
            .field("accounting", &self.accounting())
            .field("interim_interval", &self.shared.options.interim_interval)
            .finish_non_exhaustive()
    }
}

/// What [`Aaa::verify`] decided.
#[derive(Debug)]
pub struct Verified {
    /// For the authenticator.
    pub verdict: Verdict,
    /// Who vouched for the user, when it is accepted.
    pub grant: Option<Grant>,
}

/// Who accepted a user, with what came with the acceptance.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Grant {
    /// A local secret (its profile, its address).
    Local(SecretEntry),
    /// A RADIUS server (the session's attributes).
    Radius(Authorization),
}

impl Grant {
    /// Acct-Authentic.
    pub fn authentic(&self) -> AcctAuthentic {
        match self {
            Grant::Local(_) => AcctAuthentic::LOCAL,
            Grant::Radius(_) => AcctAuthentic::RADIUS,
        }
    }

    /// The address the user is to have: its secret's, or RADIUS's Framed-IP-Address (not
    /// 255.255.255.254, "the NAS picks", nor 255.255.255.255, "the user picks": the pool does
    /// then).
    pub fn peer_address(&self) -> Option<Ipv4Addr> {
        match self {
            Grant::Local(entry) => entry.assigned_address(),
            Grant::Radius(authorization) => authorization
                .framed_ip_address
                .filter(|a| u32::from(*a) < 0xFFFF_FFFE),
        }
    }

    /// RADIUS's authorization, if RADIUS granted.
    pub fn authorization(&self) -> Option<&Authorization> {
        match self {
            Grant::Radius(a) => Some(a),
            Grant::Local(_) => None,
        }
    }
}

/// What a login may do with respect to `only-one`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnlyOneCheck {
    /// Go ahead.
    Admit,
    /// Refuse it: the user has a session up.
    Refuse,
    /// Go ahead; these sessions of the user are being closed.
    Replacing(Vec<SessionKey>),
}

impl Aaa {
    /// The AAA of a process.
    ///
    /// # Errors
    ///
    /// The OS has no entropy (for Acct-Session-Ids).
    pub fn new(options: AaaOptions) -> std::io::Result<Aaa> {
        let random = Random::from_os().map_err(std::io::Error::other)?;
        Ok(Self::with_random(options, random))
    }

    /// The same with `random` for Acct-Session-Ids (seeded in tests).
    pub fn with_random(options: AaaOptions, random: Random) -> Aaa {
        Aaa {
            shared: Arc::new(Shared {
                options,
                random,
                registry: Mutex::new(Registry::default()),
            }),
        }
    }

    /// The settings.
    pub fn options(&self) -> &AaaOptions {
        &self.shared.options
    }

    /// Whether users the local secrets do not have go to RADIUS (authenticators in external
    /// mode).
    pub fn uses_radius(&self) -> bool {
        self.shared.options.use_radius && self.shared.options.radius.is_some()
    }

    /// Whether sessions are accounted.
    pub fn accounting(&self) -> bool {
        self.shared.options.accounting && self.shared.options.radius.is_some()
    }

    /// The RADIUS client.
    pub fn radius(&self) -> Option<&RadiusService> {
        self.shared.options.radius.as_ref()
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.shared
            .registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A server joins: its number for [`SessionKey`]s, and the commands for its sessions.
    pub fn attach(&self) -> AttachedServer {
        let (tx, commands) = mpsc::unbounded_channel();
        let mut registry = self.registry();
        let id = registry.next_server;
        registry.next_server += 1;
        registry.servers.insert(id, tx);
        AttachedServer {
            aaa: self.clone(),
            id,
            commands,
        }
    }

    /// A fresh Acct-Session-Id (random: unique across restarts and NASes).
    pub fn new_acct_session_id(&self) -> AcctSessionId {
        AcctSessionId::random(&self.shared.random)
    }

    /// Decides a verification: the user's local secret if `secrets` has one (checked here),
    /// otherwise RADIUS when `use-radius` is on, otherwise a refusal. No answer from any
    /// RADIUS server is a refusal with the message "RADIUS server is not responding", logged
    /// at WARN.
    pub async fn verify(
        &self,
        request: &VerifyRequest,
        context: &SessionContext,
        secrets: &dyn SecretsBackend,
    ) -> Verified {
        let lookup = SecretRequest {
            client: request.peer_name.clone(),
            server: request.server.clone(),
            method: request.method,
            token: request.token,
        };
        if let Some(entry) = lookup.resolve(secrets).await {
            let verdict = request.verify_locally(&entry.secret);
            let grant = matches!(verdict, Verdict::Accept(_)).then_some(Grant::Local(entry));
            return Verified { verdict, grant };
        }
        let Some(radius) = self.radius().filter(|_| self.shared.options.use_radius) else {
            info!("user \"{}\": no such user", request.peer_name);
            return Verified {
                verdict: Verdict::reject(),
                grant: None,
            };
        };
        match radius
            .authenticate(AccessRequest::new(request, context))
            .await
        {
            Ok(answer) => {
                let grant = match &answer.verdict {
                    Verdict::Accept(_) => Some(Grant::Radius(answer.authorization)),
                    Verdict::Reject(rejection) => {
                        match &rejection.message {
                            Some(message) => info!(
                                "user \"{}\" rejected by RADIUS: {}",
                                request.peer_name,
                                message.replace(char::is_control, " ")
                            ),
                            None => info!("user \"{}\" rejected by RADIUS", request.peer_name),
                        }
                        None
                    }
                    _ => None,
                };
                Verified {
                    verdict: answer.verdict,
                    grant,
                }
            }
            Err(error) => {
                let why = match error {
                    ServiceError::NoAnswer => "no RADIUS server answered".to_owned(),
                    other => other.to_string(),
                };
                warn!(
                    "user \"{}\" refused: {why} (every server tried)",
                    request.peer_name
                );
                Verified {
                    verdict: Verdict::Reject(Rejection {
                        message: Some("RADIUS server is not responding".into()),
                        error_code: None,
                    }),
                    grant: None,
                }
            }
        }
    }

    /// Sends an accounting record (in order with the ones before), when accounting is on.
    pub fn account(&self, record: AccountingRecord) {
        if !self.accounting() {
            return;
        }
        if let Some(radius) = self.radius()
            && let Err(error) = radius.submit(record)
        {
            warn!("RADIUS accounting: {error}");
        }
    }

    /// Closes a session of any server of the process (`only-one` replacing it).
    pub fn close(&self, key: SessionKey, reason: CloseReason) {
        let registry = self.registry();
        if let Some(server) = registry.servers.get(&key.server) {
            let _ = server.send(AaaCommand::Close {
                port: key.port,
                reason,
                done: None,
            });
        }
    }

    /// The sessions of the process that `selector` selects.
    pub fn select(&self, selector: &SessionSelector) -> Vec<SessionKey> {
        let registry = self.registry();
        let mut keys: Vec<SessionKey> = registry
            .sessions
            .iter()
            .filter(|(_, s)| selector.selects(&s.identity()))
            .map(|(k, _)| *k)
            .collect();
        keys.sort_unstable();
        keys
    }

    /// Authenticated sessions of the process (for `only-one` and dynamic authorization).
    pub fn sessions(&self) -> Vec<(SessionKey, RegisteredSession)> {
        let registry = self.registry();
        let mut all: Vec<_> = registry
            .sessions
            .iter()
            .map(|(k, s)| (*k, s.clone()))
            .collect();
        all.sort_unstable_by_key(|(k, _)| *k);
        all
    }

    /// Answers a dynamic-authorization listener's requests until it closes: a
    /// Disconnect-Request closes every session it selects (`AdminReset`: Acct-Terminate-Cause
    /// Admin-Reset) and is ACKed; a CoA-Request changes their rate limit, Session-Timeout,
    /// Idle-Timeout or interim interval; a request that selects nothing is NAKed with
    /// Session-Context-Not-Found (503), one that changes nothing with
    /// Unsupported-Attribute (401), and one that no selected session could take with the cause
    /// its server gave (Unsupported-Attribute for a rate limit on the kernel data path).
    /// Forged requests never get here: the listener drops and counts them.
    pub async fn serve_dae(self, mut listener: DaeListener) {
        while let Some(request) = listener.recv().await {
            let (selector, change) = match &request.event {
                DaeEvent::Disconnect { session, .. } => (session.clone(), None),
                DaeEvent::Change {
                    session, change, ..
                } => (session.clone(), Some(change.clone())),
                _ => {
                    request.respond(DaeOutcome::Nak(ErrorCause::UNSUPPORTED_SERVICE));
                    continue;
                }
            };
            let keys = self.select(&selector);
            if keys.is_empty() {
                info!("dynamic authorization: no session matches");
                request.respond(DaeOutcome::Nak(ErrorCause::SESSION_CONTEXT_NOT_FOUND));
                continue;
            }
            if change.as_ref().is_some_and(Change::is_empty) {
                request.respond(DaeOutcome::Nak(ErrorCause::UNSUPPORTED_ATTRIBUTE));
                continue;
            }
            let mut answers = Vec::new();
            {
                let registry = self.registry();
                for key in &keys {
                    let Some(server) = registry.servers.get(&key.server) else {
                        continue;
                    };
                    let (command, answer) = match &change {
                        None => {
                            let (done, answer) = oneshot::channel();
                            let command = AaaCommand::Close {
                                port: key.port,
                                reason: CloseReason::AdminReset,
                                done: Some(done),
                            };
                            (command, Answer::Closed(answer))
                        }
                        Some(change) => {
                            let (done, answer) = oneshot::channel();
                            let command = AaaCommand::Change {
                                port: key.port,
                                change: change.clone(),
                                done,
                            };
                            (command, Answer::Changed(answer))
                        }
                    };
                    if server.send(command).is_ok() {
                        answers.push(answer);
                    }
                }
            }
            let mut acted = 0;
            // Why nothing was done, if a server said more than "no such session".
            let mut refused = None;
            for answer in answers {
                match answer.outcome().await {
                    Ok(()) => acted += 1,
                    Err(cause) if cause != ErrorCause::SESSION_CONTEXT_NOT_FOUND => {
                        refused.get_or_insert(cause);
                    }
                    Err(_) => {}
                }
            }
            let what = if change.is_some() {
                "CoA-Request"
            } else {
                "Disconnect-Request"
            };
            if acted > 0 {
                info!("dynamic authorization: {what} applied to {acted} session(s)");
                request.respond(DaeOutcome::Ack);
            } else {
                let cause = refused.unwrap_or(ErrorCause::SESSION_CONTEXT_NOT_FOUND);
                info!("dynamic authorization: {what} refused ({cause})");
                request.respond(DaeOutcome::Nak(cause));
            }
        }
    }
}

/// A server's answer to one command of [`Aaa::serve_dae`], on its way.
enum Answer {
    Closed(oneshot::Receiver<bool>),
    Changed(oneshot::Receiver<Result<(), ErrorCause>>),
}

impl Answer {
    /// The answer; a server that does not answer within 2 s, or drops the command, has no
    /// such session.
    async fn outcome(self) -> Result<(), ErrorCause> {
        let wait = Duration::from_secs(2);
        let missing = ErrorCause::SESSION_CONTEXT_NOT_FOUND;
        match self {
            Answer::Closed(answer) => match tokio::time::timeout(wait, answer).await {
                Ok(Ok(true)) => Ok(()),
                _ => Err(missing),
            },
            Answer::Changed(answer) => match tokio::time::timeout(wait, answer).await {
                Ok(Ok(outcome)) => outcome,
                _ => Err(missing),
            },
        }
    }
}

/// A server's place in the process's [`Aaa`]: its sessions' registry entries and the commands
/// for them. Its sessions leave the registry when it is dropped.
#[derive(Debug)]
pub struct AttachedServer {
    aaa: Aaa,
    id: u32,
    commands: mpsc::UnboundedReceiver<AaaCommand>,
}

impl AttachedServer {
    /// The process's AAA.
    pub fn aaa(&self) -> &Aaa {
        &self.aaa
    }

    /// The key of one of this server's sessions.
    pub fn key(&self, port: u32) -> SessionKey {
        SessionKey {
            server: self.id,
            port,
        }
    }

    /// The next command for one of this server's sessions. Cancel safe.
    pub async fn recv(&mut self) -> Option<AaaCommand> {
        self.commands.recv().await
    }

    /// Applies `only-one` to a login of `user` on `port`: with
    /// [`OnlySession::ReplaceFirst`] the user's other sessions are closed now (with
    /// `CloseReason::Replaced`).
    pub fn check_only_one(&self, port: u32, user: &str, rule: OnlySession) -> OnlyOneCheck {
        if rule == OnlySession::Any {
            return OnlyOneCheck::Admit;
        }
        let own = self.key(port);
        let others: Vec<SessionKey> = self
            .aaa
            .registry()
            .sessions
            .iter()
            .filter(|(k, s)| **k != own && s.user == user)
            .map(|(k, _)| *k)
            .collect();
        if others.is_empty() {
            return OnlyOneCheck::Admit;
        }
        match rule {
            OnlySession::RefuseSecond => OnlyOneCheck::Refuse,
            _ => {
                for key in &others {
                    self.aaa.close(*key, CloseReason::Replaced);
                }
                OnlyOneCheck::Replacing(others)
            }
        }
    }

    /// Records an authenticated session.
    pub fn register(&self, port: u32, session: RegisteredSession) {
        self.aaa.registry().sessions.insert(self.key(port), session);
    }

    /// Records a session's address (IPCP up).
    pub fn set_address(&self, port: u32, address: Option<Ipv4Addr>) {
        if let Some(session) = self.aaa.registry().sessions.get_mut(&self.key(port)) {
            session.framed_ip_address = address;
        }
    }

    /// Forgets a session.
    pub fn unregister(&self, port: u32) {
        self.aaa.registry().sessions.remove(&self.key(port));
    }
}

impl Drop for AttachedServer {
    fn drop(&mut self) {
        let mut registry = self.aaa.registry();
        registry.servers.remove(&self.id);
        let id = self.id;
        registry.sessions.retain(|k, _| k.server != id);
    }
}

/// The Acct-Terminate-Cause for the way a PPPoE session of the access concentrator ended (see
/// [`TerminateCause`] for the table).
pub fn terminate_cause(end: &SessionEnd) -> TerminateCause {
    match end {
        SessionEnd::Link(reason) => link_terminate_cause(reason),
        SessionEnd::Discovery(AcSessionEnd::PeerTerminated { .. }) => TerminateCause::USER_REQUEST,
        SessionEnd::Discovery(AcSessionEnd::Closed(reason)) => TerminateCause::from(reason),
        SessionEnd::Discovery(AcSessionEnd::Replaced) => TerminateCause::PORT_PREEMPTED,
        _ => TerminateCause::NAS_REQUEST,
    }
}

/// The Acct-Terminate-Cause for the way a PPP link went down.
pub fn link_terminate_cause(reason: &DownReason) -> TerminateCause {
    match reason {
        DownReason::Closed(reason) => TerminateCause::from(reason),
        DownReason::PeerTerminated { .. } => TerminateCause::USER_REQUEST,
        DownReason::LowerLayerDown | DownReason::EchoTimeout => TerminateCause::LOST_CARRIER,
        DownReason::AuthFailed(_) | DownReason::NoCredentials { .. } => TerminateCause::USER_ERROR,
        DownReason::LoopbackDetected => TerminateCause::PORT_ERROR,
        _ => TerminateCause::SERVICE_UNAVAILABLE,
    }
}

/// Who a running session is, for its accounting records.
#[derive(Clone, Debug)]
pub struct SessionAccount {
    /// User-Name.
    pub user: String,
    /// Acct-Session-Id.
    pub acct_session_id: AcctSessionId,
    /// Port and station attributes.
    pub context: SessionContext,
    /// Who authenticated it.
    pub authentic: AcctAuthentic,
    /// Class values from the Access-Accept (echoed).
    pub class: Vec<Vec<u8>>,
}

/// A running session's enforcement and accounting, sans-IO (times in, packets and records
/// out): the rate limit as two [`Shaper`]s, the [`SessionClock`], and the counters.
///
/// ```
/// use std::time::{Duration, Instant};
/// use ppp_radius::limits::Admission;
/// use ppp_radius::{AcctAuthentic, AcctSessionId, RateLimit, SessionContext};
/// use ppp_tokio::aaa::{NasSession, SessionAccount, SessionLimits};
///
/// let start = Instant::now();
/// let mut limits = SessionLimits::default();
/// limits.rate_limit = Some("8k/8k".parse::<RateLimit>()?);
/// limits.idle_timeout = Some(Duration::from_secs(60));
/// let account = SessionAccount {
///     user: "alice".into(),
///     acct_session_id: AcctSessionId::random(&ppp_core::Random::seeded(1)),
///     context: SessionContext::default(),
///     authentic: AcctAuthentic::LOCAL,
///     class: Vec::new(),
/// };
/// let mut session = NasSession::new(start, account, limits, None);
/// let start_record = session.start(start, Some("192.0.2.100".parse().unwrap()));
/// assert_eq!(start_record.user_name.as_deref(), Some("alice"));
/// // 8 kbit/s: the bucket lets a few packets through, then they wait.
/// let mut passed = 0;
/// for _ in 0..10 {
///     if let Admission::Now(_) = session.transmit(start, vec![0x45; 1000]) {
///         passed += 1;
///     }
/// }
/// assert!(passed < 10);
/// let stop = session.stop(start + Duration::from_secs(5), ppp_radius::TerminateCause::USER_REQUEST);
/// assert_eq!(stop.counters.unwrap().output_octets, 1000 * passed);
/// # Ok::<(), ppp_radius::RadiusError>(())
/// ```
#[derive(Debug)]
pub struct NasSession {
    account: SessionAccount,
    limits: SessionLimits,
    framed_ip: Option<Ipv4Addr>,
    framed_ipv6_prefix: Option<(Ipv6Addr, u8)>,
    clock: SessionClock,
    /// What the NAS receives from the user (its upload; RouterOS `rx`).
    rx: Shaper<Vec<u8>>,
    /// What the NAS sends to the user (its download; RouterOS `tx`).
    tx: Shaper<Vec<u8>>,
    counters: Counters,
    interim: Option<Duration>,
    started: bool,
}

impl NasSession {
    /// A session authenticated at `now`, with `limits` and the interim interval (RADIUS's
    /// Acct-Interim-Interval wins over the configured one, which the caller passes as
    /// `interim`). The clock starts at [`start`](Self::start).
    pub fn new(
        now: Instant,
        account: SessionAccount,
        limits: SessionLimits,
        interim: Option<Duration>,
    ) -> Self {
        let directions = limits
            .rate_limit
            .map(|r| r.directions())
            .unwrap_or_default();
        NasSession {
            account,
            limits,
            framed_ip: None,
            framed_ipv6_prefix: None,
            clock: SessionClock::new(now),
            rx: Shaper::new(now, directions.rx),
            tx: Shaper::new(now, directions.tx),
            counters: Counters::default(),
            interim: interim.filter(|i| !i.is_zero()),
            started: false,
        }
    }

    /// Who the session is.
    pub fn account(&self) -> &SessionAccount {
        &self.account
    }

    /// The limits in force.
    pub fn limits(&self) -> &SessionLimits {
        &self.limits
    }

    /// What moved so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The address given to the user.
    pub fn framed_ip(&self) -> Option<Ipv4Addr> {
        self.framed_ip
    }

    /// The IPv6 prefix routed to the user (RADIUS Framed-IPv6-Prefix).
    pub fn framed_ipv6_prefix(&self) -> Option<(Ipv6Addr, u8)> {
        self.framed_ipv6_prefix
    }

    /// Sets the IPv6 prefix routed to the user.
    pub fn set_framed_ipv6_prefix(&mut self, prefix: Option<(Ipv6Addr, u8)>) {
        self.framed_ipv6_prefix = prefix;
    }

    /// How long it has been up.
    pub fn uptime(&self, now: Instant) -> Duration {
        self.clock.elapsed(now)
    }

    /// The network layer is up (IPCP, with the user's address): the timers start and the
    /// Start record is made.
    pub fn start(&mut self, now: Instant, framed_ip: Option<Ipv4Addr>) -> AccountingRecord {
        self.framed_ip = framed_ip;
        self.clock = SessionClock::new(now);
        self.clock
            .set_session_timeout(now, self.limits.session_timeout);
        self.clock.set_idle_timeout(now, self.limits.idle_timeout);
        self.clock.set_interim_interval(now, self.interim);
        self.started = true;
        self.record(now, AcctStatusType::START)
    }

    /// Whether [`start`](Self::start) was called.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// A packet from the user: [`Admission::Now`] (counted) to deliver, or it waits (see
    /// [`poll_received`](Self::poll_received)), or it is dropped.
    pub fn receive(&mut self, now: Instant, packet: Vec<u8>) -> Admission<Vec<u8>> {
        let len = packet.len();
        let admission = self.rx.offer(now, len, packet);
        if let Admission::Now(_) = admission {
            self.count_in(now, len);
        }
        admission
    }

    /// A packet for the user: as [`receive`](Self::receive).
    pub fn transmit(&mut self, now: Instant, packet: Vec<u8>) -> Admission<Vec<u8>> {
        let len = packet.len();
        let admission = self.tx.offer(now, len, packet);
        if let Admission::Now(_) = admission {
            self.count_out(now, len);
        }
        admission
    }

    /// A packet for the user, borrowed: as [`transmit`](Self::transmit), but copied only if it
    /// has to wait (`Admission::Now` and `Admission::Dropped` give the borrowed packet back).
    pub fn transmit_slice<'p>(&mut self, now: Instant, packet: &'p [u8]) -> Admission<&'p [u8]> {
        if self.tx.pass_now(now, packet.len()) {
            self.count_out(now, packet.len());
            return Admission::Now(packet);
        }
        match self.transmit(now, packet.to_vec()) {
            Admission::Now(_) => Admission::Now(packet),
            Admission::Queued => Admission::Queued,
            Admission::Dropped(_) => Admission::Dropped(packet),
        }
    }

    /// The next waiting packet from the user that may be delivered now.
    pub fn poll_received(&mut self, now: Instant) -> Option<Vec<u8>> {
        let packet = self.rx.poll_release(now)?;
        self.count_in(now, packet.len());
        Some(packet)
    }

    /// The next waiting packet for the user that may be sent now.
    pub fn poll_transmitted(&mut self, now: Instant) -> Option<Vec<u8>> {
        let packet = self.tx.poll_release(now)?;
        self.count_out(now, packet.len());
        Some(packet)
    }

    fn count_in(&mut self, now: Instant, len: usize) {
        self.counters.input_octets += len as u64;
        self.counters.input_packets += 1;
        self.clock.activity(now);
    }

    fn count_out(&mut self, now: Instant, len: usize) {
        self.counters.output_octets += len as u64;
        self.counters.output_packets += 1;
        self.clock.activity(now);
    }

    /// On the kernel data path, where the session's datagrams never pass through
    /// [`receive`](Self::receive) and [`transmit`](Self::transmit): what the kernel counted on
    /// the session's interface (`counters`, the totals since the interface was created, from
    /// [`RouteSocket::link_counters`](crate::rtnl::RouteSocket::link_counters) with received =
    /// input), and when its data path last carried a packet (`last_traffic`, from the unit's
    /// `PPPIOCGIDLE`), which moves the idle deadline. Call it before
    /// [`handle_timeout`](Self::handle_timeout) and before taking an accounting record. A
    /// session that also passes packets itself would count them twice.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use ppp_radius::{AcctAuthentic, AcctSessionId, Counters, SessionContext};
    /// use ppp_tokio::aaa::{NasSession, SessionAccount, SessionLimits};
    ///
    /// let start = Instant::now();
    /// let mut limits = SessionLimits::default();
    /// limits.idle_timeout = Some(Duration::from_secs(30));
    /// let account = SessionAccount {
    ///     user: "alice".into(),
    ///     acct_session_id: AcctSessionId::random(&ppp_core::Random::seeded(1)),
    ///     context: SessionContext::default(),
    ///     authentic: AcctAuthentic::LOCAL,
    ///     class: Vec::new(),
    /// };
    /// let mut session = NasSession::new(start, account, limits, None);
    /// session.start(start, None);
    /// assert_eq!(session.poll_timeout(), Some(start + Duration::from_secs(30)));
    /// // At the idle deadline the kernel says the interface carried a packet 5 s ago.
    /// let now = start + Duration::from_secs(30);
    /// let kernel = Counters { input_octets: 840, input_packets: 10, ..Counters::default() };
    /// session.observe_kernel(now, kernel, now - Duration::from_secs(5));
    /// session.handle_timeout(now);
    /// assert!(session.poll_event().is_none());
    /// assert_eq!(session.poll_timeout(), Some(start + Duration::from_secs(55)));
    /// assert_eq!(session.counters(), kernel);
    /// ```
    pub fn observe_kernel(&mut self, now: Instant, counters: Counters, last_traffic: Instant) {
        self.counters = counters;
        self.clock.activity(last_traffic.min(now));
    }

    /// Packets dropped because a shaper's queue was full (both directions).
    pub fn dropped(&self) -> u64 {
        self.rx.stats().dropped + self.tx.stats().dropped
    }

    /// The timers' time has come.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.clock.handle_timeout(now);
    }

    /// What the timers say: end the session (Session-Timeout, Idle-Timeout), or send an
    /// Interim-Update ([`interim`](Self::interim)).
    pub fn poll_event(&mut self) -> Option<ClockEvent> {
        self.clock.poll_event()
    }

    /// The earliest of the timers and of the waiting packets' release.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.clock.poll_timeout(),
            self.rx.poll_timeout(),
            self.tx.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Applies a CoA-Request: the rate limit from now, the Session-Timeout counted from the
    /// start, the Idle-Timeout from the last traffic, the interim interval from now.
    pub fn apply(&mut self, now: Instant, change: &Change) {
        if let Some(limit) = change.rate_limit {
            self.limits.rate_limit = Some(limit);
            let directions = limit.directions();
            self.rx.set_limit(now, directions.rx);
            self.tx.set_limit(now, directions.tx);
        }
        if let Some(timeout) = change.session_timeout {
            self.limits.session_timeout = Some(timeout).filter(|t| !t.is_zero());
            self.clock
                .set_session_timeout(now, self.limits.session_timeout);
        }
        if let Some(timeout) = change.idle_timeout {
            self.limits.idle_timeout = Some(timeout).filter(|t| !t.is_zero());
            self.clock.set_idle_timeout(now, self.limits.idle_timeout);
        }
        if let Some(interval) = change.interim_interval {
            self.interim = Some(interval).filter(|i| !i.is_zero());
            self.clock.set_interim_interval(now, self.interim);
        }
    }

    /// An Interim-Update record at `now`.
    pub fn interim(&self, now: Instant) -> AccountingRecord {
        self.record(now, AcctStatusType::INTERIM_UPDATE)
    }

    /// The Stop record at `now`.
    pub fn stop(&self, now: Instant, cause: TerminateCause) -> AccountingRecord {
        let mut record = self.record(now, AcctStatusType::STOP);
        record.terminate_cause = Some(cause);
        record
    }

    fn record(&self, now: Instant, status: AcctStatusType) -> AccountingRecord {
        let mut record = AccountingRecord::new(
            status,
            self.account.acct_session_id.as_str(),
            self.account.user.as_str(),
        );
        record.session = self.account.context.clone();
        record.framed_ip_address = self.framed_ip;
        record.class.clone_from(&self.account.class);
        record.authentic = Some(self.account.authentic);
        if status != AcctStatusType::START {
            record.session_time = Some(Duration::from_secs(self.clock.elapsed(now).as_secs()));
            record.counters = Some(self.counters);
        }
        record
    }
}

/// Deadlines of many sessions, the earliest first: the run loop sleeps until
/// [`next`](Self::next) and wakes only the sessions due.
#[derive(Debug)]
pub struct Deadlines<K> {
    by_time: BTreeSet<(Instant, K)>,
    by_key: HashMap<K, Instant>,
}

impl<K> Default for Deadlines<K> {
    fn default() -> Self {
        Deadlines {
            by_time: BTreeSet::new(),
            by_key: HashMap::new(),
        }
    }
}

impl<K: Copy + Ord + Hash> Deadlines<K> {
    /// Sets (or clears) `key`'s deadline.
    pub fn set(&mut self, key: K, at: Option<Instant>) {
        if let Some(old) = self.by_key.remove(&key) {
            self.by_time.remove(&(old, key));
        }
        if let Some(at) = at {
            self.by_key.insert(key, at);
            self.by_time.insert((at, key));
        }
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Takes the keys due at `now` (their deadlines are cleared).
    pub fn take_due(&mut self, now: Instant) -> Vec<K> {
        let mut due = Vec::new();
        while let Some(&(at, key)) = self.by_time.first() {
            if at > now {
                break;
            }
            self.by_time.pop_first();
            self.by_key.remove(&key);
            due.push(key);
        }
        due
    }

    /// Deadlines set.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether none is set.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// Logs why a session's clock ends it, and the reason to close it with.
pub fn clock_close_reason(event: ClockEvent) -> Option<CloseReason> {
    match event {
        ClockEvent::SessionTimeout => Some(CloseReason::SessionTimeout),
        ClockEvent::IdleTimeout => Some(CloseReason::IdleTimeout),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppp_link::{AuthFailure, AuthSide};

    fn account() -> SessionAccount {
        SessionAccount {
            user: "alice".into(),
            acct_session_id: AcctSessionId::random(&Random::seeded(1)),
            context: SessionContext::default(),
            authentic: AcctAuthentic::RADIUS,
            class: vec![b"gold".to_vec()],
        }
    }

    /// The session clock on tokio's paused time: idle and session timeouts and interim updates
    /// arrive on time with no real waiting.
    #[tokio::test(start_paused = true)]
    async fn timers_on_virtual_time() {
        let start = crate::now();
        let limits = SessionLimits {
            session_timeout: Some(Duration::from_secs(3600)),
            idle_timeout: Some(Duration::from_secs(300)),
            ..SessionLimits::default()
        };
        let mut session = NasSession::new(start, account(), limits, Some(Duration::from_secs(60)));
        session.start(start, None);
        let mut log = Vec::new();
        // Traffic every 100 s for 1000 s keeps the idle timer away; then silence.
        let mut next_packet = start + Duration::from_secs(100);
        loop {
            let wake = session.poll_timeout().expect("a timer");
            let wake = if next_packet < start + Duration::from_secs(1000) {
                wake.min(next_packet)
            } else {
                wake
            };
            tokio::time::sleep_until(wake.into()).await;
            let now = crate::now();
            if now >= next_packet && next_packet < start + Duration::from_secs(1000) {
                let _ = session.receive(now, vec![0x45; 100]);
                next_packet += Duration::from_secs(100);
            }
            session.handle_timeout(now);
            let mut ended = false;
            while let Some(event) = session.poll_event() {
                log.push((now.duration_since(start).as_secs(), event));
                ended |= clock_close_reason(event).is_some();
            }
            if ended {
                break;
            }
        }
        let interims = log
            .iter()
            .filter(|(_, e)| *e == ClockEvent::InterimUpdate)
            .count();
        // The last packet at 900 s: idle at 1200 s; interim updates every 60 s until then (the
        // one due at 1200 s gives way to the Stop).
        assert_eq!(log.last(), Some(&(1200, ClockEvent::IdleTimeout)));
        assert_eq!(interims, 19);
        let stop = session.stop(crate::now(), TerminateCause::IDLE_TIMEOUT);
        assert_eq!(stop.session_time, Some(Duration::from_secs(1200)));
        assert_eq!(stop.counters.map(|c| c.input_packets), Some(9));
        assert_eq!(stop.class, vec![b"gold".to_vec()]);
    }

    /// A CoA changing the rate applies to the next second.
    #[tokio::test(start_paused = true)]
    async fn coa_changes_the_rate() {
        let start = crate::now();
        let limits = SessionLimits {
            rate_limit: Some("1M/1M".parse().unwrap()),
            ..SessionLimits::default()
        };
        let mut session = NasSession::new(start, account(), limits, None);
        session.start(start, None);
        let mut sent = 0u64;
        let run = |session: &mut NasSession, until: Instant, sent: &mut u64| {
            let mut now = crate::now();
            while now < until {
                while let Admission::Now(_) | Admission::Queued =
                    session.transmit(now, vec![0x45; 1250])
                {}
                while session.poll_transmitted(now).is_some() {}
                now = session.poll_timeout().unwrap_or(until).min(until);
            }
            *sent = session.counters().output_octets;
        };
        run(&mut session, start + Duration::from_secs(4), &mut sent);
        let first = sent;
        let mut change = Change::default();
        change.rate_limit = Some("4M/4M".parse().unwrap());
        tokio::time::advance(Duration::from_secs(4)).await;
        session.apply(crate::now(), &change);
        run(&mut session, start + Duration::from_secs(8), &mut sent);
        let second = sent - first;
        let mbit = |bytes: u64| bytes as f64 * 8.0 / 4.0 / 1e6;
        assert!((mbit(first) - 1.0).abs() < 0.1, "{}", mbit(first));
        assert!((mbit(second) - 4.0).abs() < 0.2, "{}", mbit(second));
    }

    #[test]
    fn terminate_causes() {
        use ppp_auth::FailureReason;
        let table = [
            (
                SessionEnd::Link(DownReason::Closed(CloseReason::IdleTimeout)),
                TerminateCause::IDLE_TIMEOUT,
            ),
            (
                SessionEnd::Link(DownReason::Closed(CloseReason::SessionTimeout)),
                TerminateCause::SESSION_TIMEOUT,
            ),
            (
                SessionEnd::Link(DownReason::Closed(CloseReason::AdminReset)),
                TerminateCause::ADMIN_RESET,
            ),
            (
                SessionEnd::Link(DownReason::Closed(CloseReason::Shutdown)),
                TerminateCause::NAS_REBOOT,
            ),
            (
                SessionEnd::Link(DownReason::Closed(CloseReason::Replaced)),
                TerminateCause::PORT_PREEMPTED,
            ),
            (
                SessionEnd::Link(DownReason::PeerTerminated {
                    message: String::new(),
                }),
                TerminateCause::USER_REQUEST,
            ),
            (
                SessionEnd::Link(DownReason::EchoTimeout),
                TerminateCause::LOST_CARRIER,
            ),
            (
                SessionEnd::Link(DownReason::LowerLayerDown),
                TerminateCause::LOST_CARRIER,
            ),
            (
                SessionEnd::Link(DownReason::AuthFailed(AuthFailure {
                    side: AuthSide::Peer,
                    method: ppp_auth::AuthProtocol::Pap,
                    reason: FailureReason::Timeout,
                })),
                TerminateCause::USER_ERROR,
            ),
            (
                SessionEnd::Link(DownReason::NoNetworkProtocolsConfigured),
                TerminateCause::SERVICE_UNAVAILABLE,
            ),
            (
                SessionEnd::Discovery(AcSessionEnd::PeerTerminated { message: None }),
                TerminateCause::USER_REQUEST,
            ),
            (
                SessionEnd::Discovery(AcSessionEnd::Replaced),
                TerminateCause::PORT_PREEMPTED,
            ),
        ];
        for (end, cause) in table {
            assert_eq!(terminate_cause(&end), cause, "{end}");
        }
    }

    fn registered(user: &str, id: &str) -> RegisteredSession {
        RegisteredSession {
            user: user.into(),
            acct_session_id: id.into(),
            framed_ip_address: None,
            nas_port_id: Some("eth1".into()),
            nas_port: Some(1),
            calling_station_id: None,
        }
    }

    #[tokio::test]
    async fn only_one_refuses_or_replaces() {
        let aaa = Aaa::with_random(AaaOptions::default(), Random::seeded(3));
        let mut first = aaa.attach();
        let second = aaa.attach();
        first.register(1, registered("alice", "A1"));
        assert_eq!(
            second.check_only_one(7, "alice", OnlySession::Any),
            OnlyOneCheck::Admit
        );
        assert_eq!(
            second.check_only_one(7, "bob", OnlySession::RefuseSecond),
            OnlyOneCheck::Admit
        );
        assert_eq!(
            second.check_only_one(7, "alice", OnlySession::RefuseSecond),
            OnlyOneCheck::Refuse
        );
        assert_eq!(
            second.check_only_one(7, "alice", OnlySession::ReplaceFirst),
            OnlyOneCheck::Replacing(vec![first.key(1)])
        );
        // The first server is told to close its session.
        match first.recv().await {
            Some(AaaCommand::Close {
                port: 1,
                reason: CloseReason::Replaced,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        // A session's own re-authentication is not a second session.
        assert_eq!(
            first.check_only_one(1, "alice", OnlySession::RefuseSecond),
            OnlyOneCheck::Admit
        );
        drop(first);
        assert!(aaa.sessions().is_empty(), "a detached server's sessions go");
    }

    #[test]
    fn selection_across_servers() {
        let aaa = Aaa::with_random(AaaOptions::default(), Random::seeded(4));
        let a = aaa.attach();
        let b = aaa.attach();
        a.register(1, registered("alice", "A1"));
        b.register(1, registered("alice", "B1"));
        b.register(2, registered("bob", "B2"));
        let mut by_user = SessionSelector::default();
        by_user.user_name = Some("alice".into());
        assert_eq!(aaa.select(&by_user), vec![a.key(1), b.key(1)]);
        let mut by_id = SessionSelector::default();
        by_id.acct_session_id = Some("B2".into());
        assert_eq!(aaa.select(&by_id), vec![b.key(2)]);
        assert!(aaa.select(&SessionSelector::default()).is_empty());
        b.unregister(2);
        assert!(aaa.select(&by_id).is_empty());
    }

    #[test]
    fn deadlines_wake_only_what_is_due() {
        let start = Instant::now();
        let mut deadlines = Deadlines::default();
        deadlines.set(1u32, Some(start + Duration::from_secs(5)));
        deadlines.set(2, Some(start + Duration::from_secs(1)));
        deadlines.set(3, Some(start + Duration::from_secs(3)));
        deadlines.set(3, Some(start + Duration::from_secs(9)));
        deadlines.set(1, None);
        assert_eq!(deadlines.next(), Some(start + Duration::from_secs(1)));
        assert_eq!(deadlines.take_due(start + Duration::from_secs(4)), vec![2]);
        assert_eq!(deadlines.len(), 1);
        assert_eq!(deadlines.take_due(start + Duration::from_secs(9)), vec![3]);
        assert!(deadlines.is_empty());
    }
}
