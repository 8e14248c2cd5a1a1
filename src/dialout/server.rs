//! `ppp-server` mode: answer calls on a serial line (after `ring-count` RINGs, or at once on a
//! null-modem cable), authenticate the caller from `chap-secrets` or the TOML secrets (then
//! RADIUS, with `[aaa] use-radius`), hand out the profile's addresses (or RADIUS's), enforce the
//! profile's or RADIUS's limits (rate limit, session and idle timeouts, `only-one`), account the
//! call (RADIUS accounting) and obey dynamic authorization (Disconnect, CoA), and serve until the
//! call ends; then wait for the next one.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppp_auth::{SecretRequest, SecretToken, SecretsBackend, SecretsTable, Verdict, VerifyRequest};
use ppp_link::{Datagram, Link, LinkEvent, Random};
use ppp_modem::{Answerer, ModemEvent};
use ppp_radius::limits::Admission;
use ppp_radius::{ErrorCause, NasPortType, SessionContext, TerminateCause};
use ppp_tokio::aaa::{
    Aaa, AaaCommand, AaaOptions, AttachedServer, Grant, NasSession, OnlyOneCheck,
    RegisteredSession, SessionAccount, Verified, clock_close_reason, link_terminate_cause,
};
use ppp_tokio::kernel::KernelSupport;
use ppp_tokio::kernel::serial::{self as kernel_serial, CallOptions, KernelCall};
use ppp_tokio::radius::{DaeListener, RadiusService};
use ppp_tokio::rtnl::RouteSocket;
use ppp_tokio::serial::{self, ModemControl, ModemPort, SessionEvent};
use ppp_tokio::{Capture, icmp};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::client::is_retryable;
use super::config::ServerConfig;
use super::status::SharedStatus;
use super::{CallEnd, DialOutError};

/// What the server tells the host side.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A call was answered.
    Answered {
        /// The rate from `CONNECT`.
        rate: Option<u32>,
    },
    /// The caller authenticated.
    Authenticated {
        /// As whom.
        peer_name: Option<String>,
    },
    /// IPCP is up.
    IpUp {
        /// Our address.
        local: Ipv4Addr,
        /// The caller's address.
        peer: Ipv4Addr,
        /// The interface MTU the link allows.
        mtu: u16,
    },
    /// The call ended.
    CallEnded {
        /// Why.
        reason: CallEnd,
    },
}

/// The server's connection to the host.
#[derive(Debug)]
pub struct ServerIo {
    /// IPv4 packets to send to the caller (from a TUN device), if any.
    pub outbound: Option<mpsc::Receiver<Vec<u8>>>,
    /// Datagrams from the caller (to a TUN device); without it only pings to our own address
    /// are answered (`answer-ping`).
    pub inbound: Option<mpsc::Sender<Datagram>>,
    /// Events.
    pub events: mpsc::UnboundedSender<ServerEvent>,
    /// Set to true to hang up and return.
    pub shutdown: watch::Receiver<bool>,
}

/// Options of one server run that are not in the file.
#[derive(Debug)]
pub struct ServerOptions {
    /// Record packets here (`--pcap`); one file per run, calls appended in order.
    pub pcap: Option<std::path::PathBuf>,
    /// Where challenges and magic numbers come from (`Random::from_os()` in the program, a
    /// seeded one in tests).
    pub random: Random,
}

impl ServerOptions {
    /// No capture, with `random`.
    pub fn new(random: Random) -> Self {
        ServerOptions { pcap: None, random }
    }
}

/// How the server ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerExit {
    /// Asked to stop.
    Shutdown,
    /// `once`: the call was served and ended normally (the caller hung up after its link was
    /// up). A call that failed ends the server with [`DialOutError::Link`].
    CallEnded(CallEnd),
}

impl std::fmt::Display for ServerExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerExit::Shutdown => f.write_str("shut down"),
            ServerExit::CallEnded(reason) => write!(f, "call ended: {reason}"),
        }
    }
}

impl ServerExit {
    /// The program's exit status.
    pub fn exit_status(&self) -> crate::cli::ExitStatus {
        match self {
            ServerExit::Shutdown => crate::cli::ExitStatus::Success,
            ServerExit::CallEnded(reason) => reason.exit_status(true),
        }
    }
}

/// The AAA of the server: RADIUS when `[radius]` is configured (and the dynamic-authorization
/// listener with `incoming.accept`), the registry `only-one` needs in any case.
struct ServerAaa {
    aaa: Aaa,
    attached: AttachedServer,
    dae: Option<tokio::task::JoinHandle<()>>,
}

impl ServerAaa {
    async fn start(config: &ServerConfig) -> Result<ServerAaa, DialOutError> {
        config.check_aaa()?;
        let mut dae = None;
        let aaa = match &config.radius {
            None => Aaa::new(AaaOptions::local())?,
            Some(radius) => {
                let service = RadiusService::spawn(radius.service_config(&config.name)).await?;
                let mut options = AaaOptions::with_radius(service);
                options.use_radius = config.aaa.use_radius;
                options.accounting = config.aaa.accounting;
                options.interim_interval =
                    Some(config.aaa.interim_update.0).filter(|i| !i.is_zero());
                let aaa = Aaa::new(options)?;
                if let Some((address, dae_config)) = radius.dae_config(&config.name) {
                    let listener = DaeListener::bind(address, dae_config).await?;
                    info!("RADIUS: dynamic authorization (Disconnect, CoA) on {address}");
                    dae = Some(tokio::spawn(aaa.clone().serve_dae(listener)));
                }
                aaa
            }
        };
        Ok(ServerAaa {
            attached: aaa.attach(),
            aaa,
            dae,
        })
    }

    /// Sends what accounting is left (at most 3 s); the rest stays in the spool.
    async fn finish(self) {
        if let Some(dae) = &self.dae {
            dae.abort();
        }
        if let Some(radius) = self.aaa.radius().filter(|_| self.aaa.accounting()) {
            let left = radius.flush(Duration::from_secs(3)).await;
            if left > 0 {
                warn!(
                    "RADIUS: {left} accounting record(s) not acknowledged; they wait in the spool"
                );
            }
        }
    }
}

/// How RADIUS hears where a call is: NAS-Port-Type Async, NAS-Port-Id the serial port.
fn call_context(config: &ServerConfig) -> SessionContext {
    SessionContext {
        nas_port_id: Some(config.port.clone()),
        nas_port_type: Some(NasPortType::ASYNC),
        ..SessionContext::default()
    }
}

/// The Acct-Terminate-Cause of a call that ended this way.
fn call_terminate_cause(reason: &CallEnd) -> TerminateCause {
    match reason {
        CallEnd::Link(reason) => link_terminate_cause(reason),
        CallEnd::CarrierLost => TerminateCause::LOST_CARRIER,
        CallEnd::IdleTimeout => TerminateCause::IDLE_TIMEOUT,
        CallEnd::Shutdown => TerminateCause::NAS_REBOOT,
        CallEnd::LineError(_) => TerminateCause::PORT_ERROR,
    }
}

/// One call's AAA: who was accepted (until IPCP is up), then its enforcement and accounting.
struct CallAaa {
    port: u32,
    /// The call runs on the kernel data path, which cannot enforce a rate limit.
    kernel: bool,
    accepted: Option<(
        SessionAccount,
        ppp_tokio::aaa::SessionLimits,
        Option<ppp_radius::Authorization>,
    )>,
    nas: Option<NasSession>,
}

impl CallAaa {
    /// A user is accepted: `only-one`, then what it may do. False when `only-one` refuses it.
    fn accept(
        &mut self,
        aaa: &ServerAaa,
        config: &ServerConfig,
        user: &str,
        grant: &Grant,
    ) -> bool {
        let mut limits = config.limits_for(user);
        if let Some(authorization) = grant.authorization() {
            limits = limits.with_authorization(authorization);
        }
        if self.kernel
            && let Some(limit) = limits.rate_limit
        {
            warn!(
                "user \"{user}\" refused: its rate limit {limit} cannot be enforced on the kernel \
                 data path (run with --data-plane tun)"
            );
            return false;
        }
        match aaa
            .attached
            .check_only_one(self.port, user, limits.only_one)
        {
            OnlyOneCheck::Refuse => {
                info!("user \"{user}\" refused: it has a call up (only-one)");
                return false;
            }
            OnlyOneCheck::Replacing(_) => {
                info!("user \"{user}\" replaces its other call (only-one)")
            }
            _ => {}
        }
        let authorization = grant.authorization().cloned();
        let account = SessionAccount {
            user: user.to_owned(),
            acct_session_id: aaa.aaa.new_acct_session_id(),
            context: call_context(config),
            authentic: grant.authentic(),
            class: authorization
                .as_ref()
                .map(|a| a.class.clone())
                .unwrap_or_default(),
        };
        self.accepted = Some((account, limits, authorization));
        true
    }

    fn authenticated(&self, aaa: &ServerAaa) {
        if let Some((account, _, _)) = &self.accepted {
            aaa.attached
                .register(self.port, RegisteredSession::of(account));
        }
    }

    fn ip_up(&mut self, aaa: &ServerAaa, peer: Ipv4Addr) {
        let now = serial::now();
        if let Some(nas) = &self.nas {
            aaa.attached.set_address(self.port, nas.framed_ip());
            return;
        }
        let Some((account, limits, authorization)) = self.accepted.take() else {
            return;
        };
        let interim = authorization
            .as_ref()
            .and_then(|a| a.interim_interval)
            .or(aaa.aaa.options().interim_interval);
        let mut nas = NasSession::new(now, account, limits, interim);
        let start = nas.start(now, Some(peer));
        if let Some(limit) = nas.limits().rate_limit {
            info!("rate limit {limit}");
        }
        aaa.aaa.account(start);
        aaa.attached.set_address(self.port, Some(peer));
        self.nas = Some(nas);
    }

    fn end(&mut self, aaa: &ServerAaa, reason: &CallEnd) {
        aaa.attached.unregister(self.port);
        if let Some(nas) = self.nas.take() {
            let now = serial::now();
            let counters = nas.counters();
            info!(
                "user \"{}\" accounted: {} s, {} octets in, {} out",
                nas.account().user,
                nas.uptime(now).as_secs(),
                counters.input_octets,
                counters.output_octets
            );
            aaa.aaa.account(nas.stop(now, call_terminate_cause(reason)));
        }
    }
}

/// Sends an IP packet to the caller.
fn send_packet(link: &mut Link, packet: &[u8]) {
    let sent = match packet.first().map(|b| b >> 4) {
        Some(6) => link.send_ipv6(serial::now(), packet),
        _ => link.send_ipv4(serial::now(), packet),
    };
    if let Err(error) = sent {
        debug!("outbound packet dropped: {error}");
    }
}

/// Waits until `at` (forever without one).
async fn sleep_until(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Waits for the next packet of an optional channel (forever without one).
async fn next_packet(channel: Option<&mut mpsc::Receiver<Vec<u8>>>) -> Option<Vec<u8>> {
    match channel {
        Some(channel) => channel.recv().await,
        None => std::future::pending().await,
    }
}

/// Serves calls on `port` until told to stop (or after one call with `once`), each call's
/// datagrams through this process ([`ServerIo`]).
///
/// # Errors
///
/// A bad configuration, a modem failure that retrying cannot fix, or with `once` a call that
/// did not end normally ([`DialOutError::Link`]; its [`CallEnd::exit_status`] is the
/// program's).
pub async fn run_server<S>(
    config: &ServerConfig,
    port: S,
    io: ServerIo,
    status: SharedStatus,
    options: ServerOptions,
) -> Result<ServerExit, DialOutError>
where
    S: AsyncRead + AsyncWrite + ModemControl + Unpin,
{
    serve_port(config, port, io, status, options, None).await
}

/// [`run_server`] on the kernel data path (docs/data-plane.md): once a call is answered, the
/// tty goes into the kernel's PPP line discipline and the call runs on a `pppN` interface
/// ([`KernelCall`]), which carries the caller's datagrams (the host routes them like any
/// interface's; `io.outbound`, `io.inbound` and `answer-ping` are not used). Authentication,
/// RADIUS, `only-one`, the session and idle timeouts, accounting (from the interface's
/// counters) and Disconnect/CoA work as on [`run_server`]; a rate limit cannot be enforced
/// here, so a caller granted one is refused, and a CoA that sets one is not applied.
/// `options.pcap` is not written (no frame crosses this process in a form worth recording).
///
/// # Errors
///
/// As [`run_server`].
pub async fn run_kernel_server<S>(
    config: &ServerConfig,
    port: S,
    io: ServerIo,
    status: SharedStatus,
    options: ServerOptions,
    support: KernelSupport,
) -> Result<ServerExit, DialOutError>
where
    S: AsyncRead + AsyncWrite + ModemControl + AsRawFd + Unpin,
{
    let path = KernelPath {
        support,
        descriptor: |port: &S| port.as_raw_fd(),
    };
    serve_port(config, port, io, status, options, Some(path)).await
}

/// The kernel data path of a server run: what the kernel has, and the port's descriptor (the
/// tty that goes into the PPP line discipline).
struct KernelPath<S> {
    support: KernelSupport,
    descriptor: fn(&S) -> RawFd,
}

/// A port's descriptor, for [`KernelCall::start`].
struct Tty(RawFd);

impl AsRawFd for Tty {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

async fn serve_port<S>(
    config: &ServerConfig,
    port: S,
    io: ServerIo,
    status: SharedStatus,
    options: ServerOptions,
    kernel: Option<KernelPath<S>>,
) -> Result<ServerExit, DialOutError>
where
    S: AsyncRead + AsyncWrite + ModemControl + Unpin,
{
    let secrets = Arc::new(config.secrets()?);
    config.link_config()?;
    let mut aaa = ServerAaa::start(config).await?;
    let (verdicts_tx, verdicts) = mpsc::unbounded_channel();
    let mut server = Served {
        config,
        secrets,
        status,
        verdicts_tx,
        verdicts,
    };
    let result = serve(&mut server, port, io, options, kernel, &mut aaa).await;
    aaa.finish().await;
    result
}

/// A verification's answer: the token it answers, the outcome, the user.
type Verification = (SecretToken, Verified, String);

/// What every call of a server run shares, and how both data paths handle the link's
/// authentication events and the AAA's commands.
struct Served<'a> {
    config: &'a ServerConfig,
    secrets: Arc<SecretsTable>,
    status: SharedStatus,
    verdicts_tx: mpsc::UnboundedSender<Verification>,
    verdicts: mpsc::UnboundedReceiver<Verification>,
}

impl Served<'_> {
    /// The link wants a local secret: looked up, then checked against `only-one`.
    fn secret_needed(
        &self,
        aaa: &ServerAaa,
        call: &mut CallAaa,
        link: &mut Link,
        request: &SecretRequest,
    ) {
        let mut entry = self.secrets.lookup_now(&request.client, &request.server);
        match &entry {
            None => warn!("no secret for \"{}\"", request.client),
            Some(found) => {
                if !call.accept(
                    aaa,
                    self.config,
                    &request.client,
                    &Grant::Local(found.clone()),
                ) {
                    entry = None;
                }
            }
        }
        if let Err(error) = link.provide_secret(serial::now(), request.token, entry) {
            debug!("secret answer not taken: {error}");
        }
    }

    /// The link wants a response verified elsewhere (RADIUS): asked in a task, answered
    /// through `verdicts`.
    fn verify_needed(&self, aaa: &ServerAaa, request: VerifyRequest) {
        let aaa = aaa.aaa.clone();
        let secrets: Arc<dyn SecretsBackend> = self.secrets.clone();
        let context = call_context(self.config);
        let tx = self.verdicts_tx.clone();
        tokio::spawn(async move {
            let verified = aaa.verify(&request, &context, secrets.as_ref()).await;
            let _ = tx.send((request.token, verified, request.peer_name.clone()));
        });
    }

    /// A verification came back: `only-one` and the granted address, then the verdict to the
    /// link.
    fn verified(
        &self,
        aaa: &ServerAaa,
        call: &mut CallAaa,
        link: &mut Link,
        (token, verified, user): Verification,
    ) {
        let mut verdict = verified.verdict;
        if let (Verdict::Accept(_), Some(grant)) = (&verdict, verified.grant.as_ref()) {
            if call.accept(aaa, self.config, &user, grant) {
                if let Some(address) = grant.peer_address() {
                    link.set_peer_address(address);
                }
            } else {
                verdict = Verdict::reject();
            }
        } else if let Verdict::Accept(_) = verdict {
            verdict = Verdict::reject();
        }
        if let Err(error) = link.provide_verdict(serial::now(), token, verdict) {
            debug!("verdict not taken: {error}");
        }
    }

    /// The caller authenticated.
    fn authenticated(&self, aaa: &ServerAaa, call: &CallAaa, peer_name: Option<String>) {
        // The link already logged "peer authenticated as ...".
        call.authenticated(aaa);
        self.status.lock().peer_name.clone_from(&peer_name);
    }

    /// IPCP is up: the call's accounting starts, the status shows it.
    fn ip_up(
        &self,
        aaa: &ServerAaa,
        call: &mut CallAaa,
        link: &Link,
        local: Ipv4Addr,
        peer: Ipv4Addr,
    ) {
        // The link logged "IPCP up: local ... remote ...".
        call.ip_up(aaa, peer);
        let mut guard = self.status.lock();
        guard.address = Some(local);
        guard.peer_address = Some(peer);
        guard.mtu = link.mtu();
        guard.mru = link.lcp_negotiated().map(|n| n.our_mru);
        guard.connected_since = Some(serial::now());
    }
}

/// Carries out a command of the AAA (Disconnect, CoA) on the call it names.
fn obey(call: &mut CallAaa, link: &mut Link, command: AaaCommand) {
    match command {
        AaaCommand::Close { port, reason, done } => {
            let ours = port == call.port;
            if ours {
                info!("closing the call ({reason})");
                link.close(serial::now(), reason);
            }
            if let Some(done) = done {
                let _ = done.send(ours);
            }
        }
        AaaCommand::Change { port, change, done } => {
            let outcome = if port != call.port || call.nas.is_none() {
                Err(ErrorCause::SESSION_CONTEXT_NOT_FOUND)
            } else if call.kernel
                && let Some(limit) = change.rate_limit
            {
                warn!(
                    "CoA not applied: its rate limit {limit} cannot be enforced on the kernel data path"
                );
                Err(ErrorCause::UNSUPPORTED_ATTRIBUTE)
            } else if let Some(nas) = call.nas.as_mut() {
                nas.apply(serial::now(), &change);
                if let Some(limit) = change.rate_limit {
                    info!("rate limit now {limit} (CoA)");
                }
                Ok(())
            } else {
                Err(ErrorCause::SESSION_CONTEXT_NOT_FOUND)
            };
            let _ = done.send(outcome);
        }
        _ => {}
    }
}

async fn serve<S>(
    server: &mut Served<'_>,
    mut port: S,
    mut io: ServerIo,
    options: ServerOptions,
    kernel: Option<KernelPath<S>>,
    aaa: &mut ServerAaa,
) -> Result<ServerExit, DialOutError>
where
    S: AsyncRead + AsyncWrite + ModemControl + Unpin,
{
    let config = server.config;
    let status = server.status.clone();
    let random = options.random;
    let mut capture = match &options.pcap {
        Some(_) if kernel.is_some() => {
            warn!("kernel data path: --pcap records nothing (the kernel frames the calls)");
            None
        }
        Some(path) => {
            Some(Capture::create(path).map_err(|error| crate::cli::named(path.display(), error))?)
        }
        None => None,
    };
    let kernel_link_config = match &kernel {
        Some(path) => Some((
            kernel_serial::serial_link_config(&path.support, &config.link_config()?),
            path.descriptor,
        )),
        None => None,
    };
    let events = io.events.clone();
    let emit = |event: ServerEvent| {
        let _ = events.send(event);
    };
    let mut observe = |event: &ModemEvent| match event {
        ModemEvent::Urc(urc) => debug!("modem: {urc:?}"),
        other => debug!("modem: {other:?}"),
    };
    let mut calls: u32 = 0;
    loop {
        if *io.shutdown.borrow() {
            return Ok(ServerExit::Shutdown);
        }
        status.set_state("waiting for call", "waiting for ring");
        let mut answerer = Answerer::new(config.answer_config());
        answerer.open(serial::now())?;
        let mut modem = ModemPort::new(port, answerer);
        let result = tokio::select! {
            result = modem.run_until_connected(&mut observe) => result,
            _ = io.shutdown.changed() => return Ok(ServerExit::Shutdown),
        };
        let connected = match result {
            Ok(connected) => connected,
            Err(error) => {
                warn!("answering failed: {error}");
                status.lock().last_error = Some(error.to_string());
                if !is_retryable(&error) {
                    return Err(DialOutError::Serial(error));
                }
                port = modem.into_parts().0;
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        info!("answered a call");
        status.set_state("connected", "connected");
        status.lock().rate = connected.rate;
        emit(ServerEvent::Answered {
            rate: connected.rate,
        });
        calls = calls.wrapping_add(1);
        let mut call = CallAaa {
            port: calls,
            kernel: kernel.is_some(),
            accepted: None,
            nas: None,
        };
        // Stale verdicts of an earlier call are dropped (their tokens would be refused too).
        while server.verdicts.try_recv().is_ok() {}
        let (reason, was_up) = if let Some((link_config, descriptor)) = &kernel_link_config {
            let mut link = Link::new(link_config.clone(), random.clone());
            let (stream, machine) = modem.into_parts();
            let tty = Tty(descriptor(&stream));
            let (reason, was_up) =
                kernel_call(server, aaa, &mut io, &tty, &mut link, &mut call).await;
            call.end(aaa, &reason);
            status.lock().call_ended();
            let mut modem = ModemPort::new(stream, machine);
            if let Err(error) = modem
                .hang_up(reason.close_reason(), Duration::from_secs(10), &mut observe)
                .await
            {
                warn!("hang-up: {error}");
            }
            port = modem.into_parts().0;
            (reason, was_up)
        } else {
            let link = Link::new(config.link_config()?, random.clone());
            let mut session = modem.into_session(link, connected);
            session.watch_dcd(!config.ignore_dcd);
            if let Some(capture) = capture.take() {
                session.set_capture(capture);
            }
            let (reason, was_up) =
                user_space_call(server, aaa, &mut io, &mut session, &mut call).await;
            call.end(aaa, &reason);
            status.lock().call_ended();
            let hung_up = session
                .hang_up(
                    reason.close_reason(),
                    Duration::from_secs(4),
                    Duration::from_secs(10),
                    &mut observe,
                )
                .await;
            capture = hung_up.capture;
            if let Err(error) = hung_up.result {
                warn!("hang-up: {error}");
            }
            port = hung_up.port.into_parts().0;
            (reason, was_up)
        };
        if let CallEnd::Link(_) = reason {
            // The link logged "link down: ..." with the same words.
            debug!("call ended: {reason}");
        } else {
            info!("call ended: {reason}");
        }
        emit(ServerEvent::CallEnded {
            reason: reason.clone(),
        });
        if reason == CallEnd::Shutdown {
            return Ok(ServerExit::Shutdown);
        }
        if config.once {
            return if reason.exit_status(was_up) == crate::cli::ExitStatus::Success {
                Ok(ServerExit::CallEnded(reason))
            } else {
                Err(DialOutError::Link(reason))
            };
        }
    }
}

/// One answered call whose datagrams cross this process: until it ends, and whether a network
/// protocol came up.
async fn user_space_call<S, M>(
    server: &mut Served<'_>,
    aaa: &mut ServerAaa,
    io: &mut ServerIo,
    session: &mut serial::OnlineSession<S, M>,
    call: &mut CallAaa,
) -> (CallEnd, bool)
where
    S: AsyncRead + AsyncWrite + ModemControl + Unpin,
    M: serial::ModemMachine,
{
    let config = server.config;
    let mut local = Ipv4Addr::UNSPECIFIED;
    let mut was_up = false;
    let reason = loop {
        let deadline = call.nas.as_ref().and_then(NasSession::poll_timeout);
        let next = tokio::select! {
            next = session.next() => next,
            _ = io.shutdown.changed() => break CallEnd::Shutdown,
            packet = next_packet(io.outbound.as_mut()) => {
                match packet {
                    Some(packet) => match call.nas.as_mut() {
                        Some(nas) => {
                            if let Admission::Now(packet) = nas.transmit(serial::now(), packet) {
                                send_packet(session.link_mut(), &packet);
                            }
                        }
                        None => send_packet(session.link_mut(), &packet),
                    },
                    None => io.outbound = None,
                }
                continue;
            }
            Some(verification) = server.verdicts.recv() => {
                server.verified(aaa, call, session.link_mut(), verification);
                continue;
            }
            Some(command) = aaa.attached.recv() => {
                obey(call, session.link_mut(), command);
                continue;
            }
            () = sleep_until(deadline) => {
                let now = serial::now();
                let Some(nas) = call.nas.as_mut() else { continue };
                let mut inbound = Vec::new();
                while let Some(packet) = nas.poll_received(now) {
                    inbound.push(packet);
                }
                while let Some(packet) = nas.poll_transmitted(now) {
                    send_packet(session.link_mut(), &packet);
                }
                nas.handle_timeout(now);
                while let Some(event) = nas.poll_event() {
                    match clock_close_reason(event) {
                        Some(reason) => {
                            info!("closing the call ({reason})");
                            session.link_mut().close(now, reason);
                        }
                        None => aaa.aaa.account(nas.interim(now)),
                    }
                }
                for packet in inbound {
                    deliver(config, io, session, call, local, packet);
                }
                continue;
            }
        };
        match next {
            Err(error) => break CallEnd::LineError(error.to_string()),
            Ok(SessionEvent::Link(event)) => match event {
                LinkEvent::SecretNeeded(request) => {
                    server.secret_needed(aaa, call, session.link_mut(), &request);
                }
                LinkEvent::VerifyNeeded(request) => server.verify_needed(aaa, request),
                LinkEvent::Authenticated { peer_name } => {
                    server.authenticated(aaa, call, peer_name.clone());
                    let _ = io.events.send(ServerEvent::Authenticated { peer_name });
                }
                LinkEvent::IpUp {
                    local: ours, peer, ..
                } => {
                    local = ours;
                    was_up = true;
                    server.ip_up(aaa, call, session.link(), ours, peer);
                    let mtu = session.link().mtu().unwrap_or(config.max_mtu);
                    let _ = io.events.send(ServerEvent::IpUp {
                        local: ours,
                        peer,
                        mtu,
                    });
                }
                LinkEvent::Ipv6Up { .. } => was_up = true,
                LinkEvent::LinkDown { reason } => break CallEnd::Link(reason),
                LinkEvent::Phase(phase) => debug!("phase {phase}"),
                other => debug!("link: {other:?}"),
            },
            Ok(SessionEvent::Datagram(datagram)) => {
                let (Datagram::Ipv4(packet) | Datagram::Ipv6(packet)) = datagram;
                let packet = match call.nas.as_mut() {
                    Some(nas) => match nas.receive(serial::now(), packet) {
                        Admission::Now(packet) => packet,
                        _ => continue,
                    },
                    None => packet,
                };
                deliver(config, io, session, call, local, packet);
            }
            Ok(SessionEvent::CarrierLost(reason)) => warn!("carrier lost ({reason})"),
            Ok(SessionEvent::Closed) => break CallEnd::CarrierLost,
            Ok(_) => {}
        }
    };
    (reason, was_up)
}

/// How long a closing kernel-path call waits for the caller's Terminate-Ack.
const KERNEL_CLOSE_GRACE: Duration = Duration::from_secs(4);

/// One answered call on the kernel data path (see [`run_kernel_server`]): until it ends, and
/// whether a network protocol came up. The session's timers read the interface's counters
/// and idle time from the kernel when they are due, and before every accounting record.
async fn kernel_call(
    server: &mut Served<'_>,
    aaa: &mut ServerAaa,
    io: &mut ServerIo,
    tty: &Tty,
    link: &mut Link,
    call: &mut CallAaa,
) -> (CallEnd, bool) {
    let options = CallOptions {
        interface: None,
        no_configure: false,
        default_route: None,
        resolv_conf: None,
        // The call's session (NasSession) keeps the idle timeout, with RADIUS's and CoA's.
        idle_timeout: None,
    };
    let mut kernel = match KernelCall::start(tty, options, link.config().ccp.is_some()) {
        Ok(kernel) => kernel,
        Err(error) => {
            warn!("putting the line into the kernel failed: {error}");
            return (CallEnd::LineError(error.to_string()), false);
        }
    };
    let mut rtnl = match RouteSocket::open() {
        Ok(rtnl) => Some(rtnl),
        Err(error) => {
            warn!("no rtnetlink socket: the call's counters stay at zero: {error}");
            None
        }
    };
    let mut closing: Option<Instant> = None;
    link.open(serial::now());
    link.up(serial::now());
    let reason = 'call: loop {
        while let Some(event) = kernel.poll_event(link) {
            match event {
                LinkEvent::SecretNeeded(request) => {
                    server.secret_needed(aaa, call, link, &request);
                }
                LinkEvent::VerifyNeeded(request) => server.verify_needed(aaa, request),
                LinkEvent::Authenticated { peer_name } => {
                    server.authenticated(aaa, call, peer_name.clone());
                    let _ = io.events.send(ServerEvent::Authenticated { peer_name });
                }
                LinkEvent::IpUp { local, peer, .. } => {
                    server.ip_up(aaa, call, link, local, peer);
                    let mtu = link.mtu().unwrap_or(server.config.max_mtu);
                    let _ = io.events.send(ServerEvent::IpUp { local, peer, mtu });
                }
                LinkEvent::LinkDown { reason } => {
                    break 'call match closing {
                        Some(_) => CallEnd::Shutdown,
                        None => CallEnd::Link(reason),
                    };
                }
                LinkEvent::Phase(phase) => debug!("phase {phase}"),
                other => debug!("link: {other:?}"),
            }
        }
        let link_deadline = match closing {
            Some(since) => Some(link.poll_timeout().map_or(since + KERNEL_CLOSE_GRACE, |t| {
                t.min(since + KERNEL_CLOSE_GRACE)
            })),
            None => link.poll_timeout(),
        };
        let nas_deadline = call.nas.as_ref().and_then(NasSession::poll_timeout);
        tokio::select! {
            up = kernel.recv(link) => match up {
                Ok(true) => {}
                Ok(false) => {
                    while link.poll_event().is_some() {}
                    break 'call match closing {
                        Some(_) => CallEnd::Shutdown,
                        None => CallEnd::CarrierLost,
                    };
                }
                Err(error) => break 'call CallEnd::LineError(error.to_string()),
            },
            () = sleep_until(link_deadline) => {
                let now = serial::now();
                if closing.is_some_and(|since| now >= since + KERNEL_CLOSE_GRACE) {
                    break 'call CallEnd::Shutdown;
                }
                link.handle_timeout(now);
            }
            _ = io.shutdown.changed(), if closing.is_none() => {
                closing = Some(serial::now());
                link.close(serial::now(), CallEnd::Shutdown.close_reason());
            }
            Some(verification) = server.verdicts.recv() => {
                server.verified(aaa, call, link, verification);
            }
            Some(command) = aaa.attached.recv() => {
                observe_kernel(&kernel, rtnl.as_mut(), call);
                obey(call, link, command);
            }
            () = sleep_until(nas_deadline) => {
                let now = serial::now();
                observe_kernel(&kernel, rtnl.as_mut(), call);
                let Some(nas) = call.nas.as_mut() else { continue };
                nas.handle_timeout(now);
                while let Some(event) = nas.poll_event() {
                    match clock_close_reason(event) {
                        Some(reason) => {
                            info!("closing the call ({reason})");
                            link.close(now, reason);
                        }
                        None => aaa.aaa.account(nas.interim(now)),
                    }
                }
            }
        }
    };
    // The Stop record counts what the interface carried up to here.
    observe_kernel(&kernel, rtnl.as_mut(), call);
    let was_up = kernel.was_up();
    kernel.finish();
    (reason, was_up)
}

/// Gives the call's session what the kernel counted on its interface and when it last
/// carried a packet.
fn observe_kernel(kernel: &KernelCall, rtnl: Option<&mut RouteSocket>, call: &mut CallAaa) {
    if let Some(nas) = call.nas.as_mut() {
        kernel.observe(serial::now(), rtnl, nas);
    }
}

/// Hands a datagram from the caller to the host (or answers a ping to our own address).
fn deliver<S, M>(
    config: &ServerConfig,
    io: &ServerIo,
    session: &mut serial::OnlineSession<S, M>,
    call: &mut CallAaa,
    local: Ipv4Addr,
    packet: Vec<u8>,
) where
    S: AsyncRead + AsyncWrite + ModemControl + Unpin,
    M: serial::ModemMachine,
{
    if let Some(inbound) = &io.inbound {
        let datagram = match packet.first().map(|b| b >> 4) {
            Some(6) => Datagram::Ipv6(packet),
            _ => Datagram::Ipv4(packet),
        };
        let _ = inbound.try_send(datagram);
    } else if config.answer_ping
        && let Some(reply) = icmp::echo_reply(&packet, local)
    {
        match call.nas.as_mut() {
            Some(nas) => {
                if let Admission::Now(reply) = nas.transmit(serial::now(), reply) {
                    send_packet(session.link_mut(), &reply);
                }
            }
            None => send_packet(session.link_mut(), &reply),
        }
    }
}
