//! The dial-out client's run loop: dial (built-in sequence or chat script), run PPP, hand
//! datagrams to the host side, hang up, and redial with backoff under `persist`.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use ppp_link::{CloseReason, Datagram, Link, LinkEvent, Machine, Random};
use ppp_modem::{
    AnswerConfig, Answerer, ChatRunner, ChatScript, Dialer, DialerConfig, DialerState, ModemDriver,
    ModemError, ModemEvent,
};
use ppp_tokio::Capture;
use ppp_tokio::serial::{self, ModemControl, ModemMachine, ModemPort, SerialError, SessionEvent};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::config::ClientConfig;
use super::status::SharedStatus;
use super::{CallEnd, DialOutError};

/// The longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long to wait for the peer's Terminate-Ack when hanging up.
const TERMINATE_LIMIT: Duration = Duration::from_secs(4);
/// How long the modem may take to confirm a hang-up (two guard times, `ATH`).
const HANGUP_LIMIT: Duration = Duration::from_secs(10);

/// What the client tells the host side (network setup, tests).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// A call attempt starts.
    Dialing {
        /// Its number, from 1.
        attempt: u32,
    },
    /// The attempt failed before `CONNECT` (or the link never came up).
    AttemptFailed {
        /// Why.
        error: String,
        /// The wait before the next attempt, if there is one.
        retry_in: Option<Duration>,
    },
    /// The modem connected.
    Connected {
        /// The rate from `CONNECT`.
        rate: Option<u32>,
    },
    /// IPCP is up: configure the interface.
    IpUp {
        /// Our address.
        local: Ipv4Addr,
        /// The peer's address.
        peer: Ipv4Addr,
        /// The peer's DNS servers.
        dns: Vec<Ipv4Addr>,
        /// The MTU to set.
        mtu: u16,
    },
    /// The link's MTU changed while IPCP was up (MPPE, which takes 4 bytes, came up or went
    /// down after IPCP): set it on the interface.
    MtuChanged {
        /// The MTU to set.
        mtu: u16,
    },
    /// IPCP went down.
    IpDown,
    /// IPv6CP is up (`use-ipv6`): put the link-local pair on the interface.
    Ipv6Up {
        /// Our link-local address.
        local: Ipv6Addr,
        /// The peer's link-local address.
        peer: Ipv6Addr,
    },
    /// IPv6CP went down.
    Ipv6Down,
    /// The call ended (with several ports: the bundle's last line is gone and no line is
    /// dialled again).
    CallEnded {
        /// Why.
        reason: CallEnd,
    },
    /// Several ports: the modem on a line connected.
    LineConnected {
        /// The line (its index in the configuration's `[[line]]`s).
        line: usize,
        /// The rate from `CONNECT`.
        rate: Option<u32>,
    },
    /// Several ports: a line's link joined the bundle.
    LineJoined {
        /// The line.
        line: usize,
        /// Lines in the bundle now.
        members: usize,
    },
    /// Several ports: a line's call or attempt ended (the bundle goes on over the others).
    LineEnded {
        /// The line.
        line: usize,
        /// Why.
        reason: CallEnd,
        /// When it is dialled again, if it is.
        retry_in: Option<Duration>,
    },
}

/// The client's connection to the host: packets both ways, events, and a stop switch.
#[derive(Debug)]
pub struct ClientIo {
    /// IPv4 packets to send (from the TUN device). With dial-on-demand the first one dials.
    pub outbound: mpsc::Receiver<Vec<u8>>,
    /// Datagrams received on the link (for the TUN device).
    pub inbound: mpsc::Sender<Datagram>,
    /// Events for the host side.
    pub events: mpsc::UnboundedSender<ClientEvent>,
    /// Set to true to hang up and return.
    pub shutdown: watch::Receiver<bool>,
}

/// How the client ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientExit {
    /// Asked to stop.
    Shutdown,
    /// One call was made, its link came up, and it ended (no `persist`). A call whose link
    /// never came up ends the client with [`DialOutError::Link`] instead.
    CallEnded(CallEnd),
}

impl ClientExit {
    /// The program's exit status.
    pub fn exit_status(&self) -> crate::cli::ExitStatus {
        match self {
            ClientExit::Shutdown => crate::cli::ExitStatus::Success,
            ClientExit::CallEnded(reason) => reason.exit_status(true),
        }
    }
}

impl std::fmt::Display for ClientExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientExit::Shutdown => f.write_str("shut down"),
            ClientExit::CallEnded(reason) => write!(f, "call ended: {reason}"),
        }
    }
}

/// The modem side: the built-in dialer or a chat script, with the dial status kept up to date.
pub struct DialMachine {
    inner: DialInner,
    status: SharedStatus,
    /// The line of a bundle whose `dial-status` it keeps (`None`: the program's).
    line: Option<usize>,
}

enum DialInner {
    Dialer(Box<Dialer>),
    Chat(Box<ChatRunner>),
    Direct(Box<Answerer>),
}

impl std::fmt::Debug for DialMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DialMachine").finish_non_exhaustive()
    }
}

impl DialMachine {
    /// The built-in sequence.
    ///
    /// # Errors
    ///
    /// An unusable configuration.
    pub fn dialer(config: DialerConfig, status: SharedStatus) -> Result<Self, ModemError> {
        Ok(DialMachine {
            inner: DialInner::Dialer(Box::new(Dialer::new(config)?)),
            status,
            line: None,
        })
    }

    /// A chat script.
    pub fn chat(script: ChatScript, status: SharedStatus) -> Self {
        DialMachine {
            inner: DialInner::Chat(Box::new(ChatRunner::new(script))),
            status,
            line: None,
        }
    }

    /// No modem: a direct cable, connected at once.
    pub fn direct(status: SharedStatus) -> Self {
        let mut config = AnswerConfig::default();
        config.null_modem = true;
        DialMachine {
            inner: DialInner::Direct(Box::new(Answerer::new(config))),
            status,
            line: None,
        }
    }

    /// Keeps the `dial-status` of line `line` of a bundle (its [`MemberStatus`]) instead of the
    /// program's.
    ///
    /// [`MemberStatus`]: super::status::MemberStatus
    pub fn for_line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }

    /// Starts the sequence.
    ///
    /// # Errors
    ///
    /// The machine is busy.
    pub fn open(&mut self, now: Instant) -> Result<(), ModemError> {
        match &mut self.inner {
            DialInner::Dialer(dialer) => dialer.open(now)?,
            DialInner::Chat(chat) => chat.open(now),
            DialInner::Direct(direct) => direct.open(now)?,
        }
        self.track();
        Ok(())
    }

    fn driver(&mut self) -> &mut dyn ModemDriver {
        match &mut self.inner {
            DialInner::Dialer(dialer) => dialer.as_mut(),
            DialInner::Chat(chat) => chat.as_mut(),
            DialInner::Direct(direct) => direct.as_mut(),
        }
    }

    fn track(&self) {
        let text = match &self.inner {
            DialInner::Dialer(dialer) => match dialer.state() {
                DialerState::Idle => "idle",
                DialerState::Initializing => "initializing",
                DialerState::CheckingSim => "checking SIM",
                DialerState::WaitingForRegistration => "waiting for registration",
                DialerState::QueryingStatus => "querying status",
                DialerState::SettingApn => "setting APN",
                DialerState::Dialing => "dialing",
                DialerState::Online => "connected",
                DialerState::HangingUp => "hanging up",
                DialerState::Disconnected => "disconnected",
                DialerState::Failed => "failed",
                _ => "busy",
            },
            DialInner::Chat(chat) => match chat.state() {
                ppp_modem::ChatState::Running => "running chat script",
                ppp_modem::ChatState::Online => "connected",
                ppp_modem::ChatState::HangingUp => "hanging up",
                ppp_modem::ChatState::Idle => "idle",
                _ => "disconnected",
            },
            DialInner::Direct(direct) => {
                if direct.is_online() {
                    "connected"
                } else {
                    "idle"
                }
            }
        };
        let mut status = self.status.lock();
        let dial_status = match self.line {
            Some(line) => match status.members.get_mut(line) {
                Some(member) => &mut member.dial_status,
                None => return,
            },
            None => &mut status.dial_status,
        };
        if dial_status != text {
            text.clone_into(dial_status);
        }
    }
}

impl Machine for DialMachine {
    type Event = ModemEvent;

    fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        self.driver().handle_input(now, bytes);
        self.track();
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.driver().handle_timeout(now);
        self.track();
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.driver().poll_transmit()
    }

    fn poll_event(&mut self) -> Option<ModemEvent> {
        let event = self.driver().poll_event();
        if let Some(ModemEvent::StatusUpdated(modem)) = &event {
            self.status.lock().update_modem(modem);
        }
        self.track();
        event
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match &self.inner {
            DialInner::Dialer(dialer) => dialer.poll_timeout(),
            DialInner::Chat(chat) => chat.poll_timeout(),
            DialInner::Direct(direct) => direct.poll_timeout(),
        }
    }
}

impl ModemDriver for DialMachine {
    fn is_online(&self) -> bool {
        match &self.inner {
            DialInner::Dialer(dialer) => dialer.is_online(),
            DialInner::Chat(chat) => chat.is_online(),
            DialInner::Direct(direct) => direct.is_online(),
        }
    }
}

impl ModemMachine for DialMachine {
    fn close(&mut self, now: Instant, reason: CloseReason) {
        match &mut self.inner {
            DialInner::Dialer(dialer) => dialer.close(now, reason),
            DialInner::Chat(chat) => chat.close(now, reason),
            DialInner::Direct(direct) => direct.close(now, reason),
        }
        self.track();
    }

    fn carrier_lost(&mut self, now: Instant) {
        match &mut self.inner {
            DialInner::Dialer(dialer) => dialer.carrier_lost(now),
            DialInner::Chat(chat) => chat.close(now, CloseReason::Other("carrier lost".into())),
            DialInner::Direct(direct) => direct.carrier_lost(now),
        }
        self.track();
    }
}

/// Whether an error is worth retrying: a wrong PIN, a blocked SIM or a bad configuration is not
/// (retrying a wrong PIN would block the SIM).
pub fn is_retryable(error: &SerialError) -> bool {
    match error {
        SerialError::Modem(error) => !matches!(
            error,
            ModemError::WrongPin
                | ModemError::PinRequired
                | ModemError::PukRequired
                | ModemError::UnsupportedPinState { .. }
                | ModemError::InvalidConfig { .. }
                | ModemError::ChatSyntax { .. }
                | ModemError::ChatUnsupported { .. }
        ),
        SerialError::Closed | SerialError::Open { .. } | SerialError::InvalidFlowControl(_) => {
            false
        }
        _ => true,
    }
}

/// Options of one run that are not in the file.
#[derive(Debug, Default)]
pub struct ClientOptions {
    /// Record packets here (`--pcap`); one file per run, calls appended in order.
    pub pcap: Option<std::path::PathBuf>,
    /// Where magic numbers and challenges come from; `None`: the operating system's entropy
    /// (tests pass a seeded one).
    pub random: Option<Random>,
}

/// Runs the client on `port` until it is told to stop, a non-retryable error happens,
/// `max-fail` is reached, or (without `persist`) the call ends.
///
/// # Errors
///
/// [`DialOutError::Serial`] for the failure that ended it, [`DialOutError::Config`] for a bad
/// configuration.
pub async fn run_client<S>(
    config: &ClientConfig,
    mut port: S,
    mut io: ClientIo,
    status: SharedStatus,
    options: ClientOptions,
) -> Result<ClientExit, DialOutError>
where
    S: AsyncRead + AsyncWrite + ModemControl + Unpin,
{
    let dialer_config = config.dialer_config()?;
    let script = config.chat_script()?;
    let random = match options.random {
        Some(random) => random,
        None => {
            Random::from_os().map_err(|error| DialOutError::Io(std::io::Error::other(error)))?
        }
    };
    // Validate the link settings before dialing.
    config.link_config()?;
    let mut capture = match &options.pcap {
        Some(path) => {
            Some(Capture::create(path).map_err(|error| crate::cli::named(path.display(), error))?)
        }
        None => None,
    };
    let mut backoff = config.holdoff();
    let mut attempt = 0u32;
    let mut pending: Option<Vec<u8>> = None;
    let events = io.events.clone();
    let emit = move |event: ClientEvent| {
        let _ = events.send(event);
    };
    loop {
        if *io.shutdown.borrow() {
            return Ok(ClientExit::Shutdown);
        }
        if config.dial_on_demand && pending.is_none() {
            status.set_state("waiting for traffic", "idle");
            info!("dial-on-demand: waiting for the first packet");
            tokio::select! {
                packet = io.outbound.recv() => match packet {
                    Some(packet) => pending = Some(packet),
                    None => return Ok(ClientExit::Shutdown),
                },
                _ = io.shutdown.changed() => return Ok(ClientExit::Shutdown),
            }
            info!("dial-on-demand: outbound packet, dialing");
        }
        attempt += 1;
        let failure = match dial(
            port,
            attempt,
            config,
            &script,
            &dialer_config,
            &status,
            &emit,
            &mut io.shutdown,
        )
        .await?
        {
            Dialled::Shutdown => return Ok(ClientExit::Shutdown),
            Dialled::Failed(back, error) => {
                port = back;
                Some(Failure::Modem(error))
            }
            Dialled::Connected(modem, connected) => {
                let mut observe = |event: &ModemEvent| log_modem_event(event);
                let link = Link::new(config.link_config()?, random.clone());
                let mut session = modem.into_session(link, connected);
                session.watch_dcd(!config.ignore_dcd);
                if let Some(capture) = capture.take() {
                    session.set_capture(capture);
                }
                // The session reads the host's packets itself while the call is up (so that its
                // `next` is never cancelled in the middle of writing a frame); the channel
                // comes back after the call.
                let (_, placeholder) = mpsc::channel(1);
                session.set_outbound(std::mem::replace(&mut io.outbound, placeholder));
                let mut ip_up = false;
                let mut ever_up = false;
                let mut stopping = false;
                let reason = loop {
                    let next = tokio::select! {
                        next = session.next() => next,
                        _ = io.shutdown.changed(), if !stopping => {
                            stopping = true;
                            break CallEnd::Shutdown;
                        }
                    };
                    match next {
                        Err(error) => break CallEnd::LineError(error.to_string()),
                        Ok(SessionEvent::Link(event)) => match event {
                            LinkEvent::IpUp { local, peer, dns } => {
                                let mtu = session.link().mtu().unwrap_or(config.max_mtu);
                                // The link logged "IPCP up: local ... remote ...".
                                for (i, server) in dns.iter().enumerate() {
                                    // pppd's words and alignment.
                                    let which = if i == 0 { "primary  " } else { "secondary" };
                                    info!("{which} DNS address {server}");
                                }
                                {
                                    let mut guard = status.lock();
                                    guard.address = Some(local);
                                    guard.peer_address = Some(peer);
                                    guard.dns.clone_from(&dns);
                                    guard.mtu = Some(mtu);
                                    guard.mru = session.link().lcp_negotiated().map(|n| n.our_mru);
                                    guard.connected_since = Some(serial::now());
                                    guard.failures = 0;
                                    guard.last_error = None;
                                }
                                emit(ClientEvent::IpUp {
                                    local,
                                    peer,
                                    dns,
                                    mtu,
                                });
                                backoff = config.holdoff();
                                ip_up = true;
                                ever_up = true;
                                // The idle clock runs from IPCP up, not from CONNECT.
                                session.set_idle_timeout(config.idle_timeout());
                                if let Some(packet) =
                                    pending.take_if(|p| p.first().is_some_and(|b| b >> 4 == 4))
                                    && let Err(error) =
                                        session.link_mut().send_ipv4(serial::now(), &packet)
                                {
                                    debug!("the packet that dialed was dropped: {error}");
                                }
                            }
                            LinkEvent::CcpUp(_) | LinkEvent::CcpDown if ip_up => {
                                let mtu = session.link().mtu().unwrap_or(config.max_mtu);
                                let changed = status.lock().mtu.replace(mtu) != Some(mtu);
                                if changed {
                                    info!("mtu {mtu}");
                                    emit(ClientEvent::MtuChanged { mtu });
                                }
                            }
                            LinkEvent::IpDown => {
                                ip_up = false;
                                emit(ClientEvent::IpDown);
                            }
                            LinkEvent::Ipv6Up { local, peer } => {
                                // The link logged "IPV6CP up: local ... remote ...".
                                {
                                    let mut guard = status.lock();
                                    guard.ipv6_address = Some(local);
                                    guard.ipv6_peer = Some(peer);
                                }
                                emit(ClientEvent::Ipv6Up { local, peer });
                                ever_up = true;
                                if let Some(packet) =
                                    pending.take_if(|p| p.first().is_some_and(|b| b >> 4 == 6))
                                    && let Err(error) =
                                        session.link_mut().send_ipv6(serial::now(), &packet)
                                {
                                    debug!("the packet that dialed was dropped: {error}");
                                }
                            }
                            LinkEvent::Ipv6Down => {
                                {
                                    let mut guard = status.lock();
                                    guard.ipv6_address = None;
                                    guard.ipv6_peer = None;
                                }
                                emit(ClientEvent::Ipv6Down);
                            }
                            LinkEvent::LinkDown { reason } => break CallEnd::Link(reason),
                            LinkEvent::Phase(phase) => debug!("phase {phase}"),
                            LinkEvent::LinkUp(n) => debug!(
                                "LCP up: mru {} peer mru {} magic {:#010x}",
                                n.our_mru,
                                n.peer_mru,
                                n.our_magic.unwrap_or(0)
                            ),
                            other => debug!("link: {other:?}"),
                        },
                        Ok(SessionEvent::Datagram(datagram)) => {
                            let _ = io.inbound.try_send(datagram);
                        }
                        Ok(SessionEvent::CarrierLost(reason)) => {
                            warn!("carrier lost ({reason})");
                        }
                        Ok(SessionEvent::IdleTimeout) => {
                            info!("idle timeout: hanging up");
                            break CallEnd::IdleTimeout;
                        }
                        Ok(SessionEvent::Closed) => break CallEnd::CarrierLost,
                        Ok(SessionEvent::Modem(event)) => log_modem_event(&event),
                        Ok(_) => {}
                    }
                };
                if let Some(outbound) = session.take_outbound() {
                    io.outbound = outbound;
                }
                if ip_up {
                    emit(ClientEvent::IpDown);
                }
                status.lock().call_ended();
                status.set_state("hanging up", "hanging up");
                let hung_up = session
                    .hang_up(
                        reason.close_reason(),
                        TERMINATE_LIMIT,
                        HANGUP_LIMIT,
                        &mut observe,
                    )
                    .await;
                capture = hung_up.capture;
                let modem = hung_up.port;
                if let Err(error) = hung_up.result {
                    warn!("hang-up: {error}");
                }
                if let CallEnd::Link(_) = reason {
                    // The link logged "link down: ..." with the same words.
                    debug!("call ended: {reason}");
                } else {
                    info!("call ended: {reason}");
                }
                emit(ClientEvent::CallEnded {
                    reason: reason.clone(),
                });
                status.set_state("disconnected", "disconnected");
                port = modem.into_parts().0;
                if stopping || *io.shutdown.borrow() {
                    return Ok(ClientExit::Shutdown);
                }
                if !config.persist && !config.dial_on_demand {
                    return if ever_up {
                        Ok(ClientExit::CallEnded(reason))
                    } else {
                        Err(DialOutError::Link(reason))
                    };
                }
                if reason == CallEnd::IdleTimeout {
                    // Dial again on the next packet, at once.
                    continue;
                }
                if ever_up {
                    None
                } else {
                    // A call whose link never came up counts as a failure (max-fail).
                    Some(Failure::Link(reason))
                }
            }
        };
        let mut exhausted = false;
        let retry_in = failure.as_ref().map_or(Some(config.holdoff()), |error| {
            let mut guard = status.lock();
            guard.failures += 1;
            guard.last_error = Some(error.to_string());
            "disconnected".clone_into(&mut guard.status);
            exhausted = config.max_fail > 0 && guard.failures >= config.max_fail;
            (config.persist && error.is_retryable() && !exhausted).then_some(backoff)
        });
        if let Some(error) = failure {
            emit(ClientEvent::AttemptFailed {
                error: error.to_string(),
                retry_in,
            });
            let Some(wait) = retry_in else {
                // The program logs the error it ends with, once.
                let error = match error {
                    Failure::Modem(error) => DialOutError::Serial(error),
                    Failure::Link(reason) => DialOutError::Link(reason),
                };
                if config.persist && exhausted && is_retryable_error(&error) {
                    return Err(DialOutError::MaxFail {
                        attempts: config.max_fail,
                        last: Box::new(error),
                    });
                }
                return Err(error);
            };
            backoff = (backoff * 2).min(MAX_BACKOFF);
            warn!(
                "attempt {attempt} failed: {error}; redialing in {} s",
                wait.as_secs_f32()
            );
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = io.shutdown.changed() => return Ok(ClientExit::Shutdown),
            }
        } else if let Some(wait) = retry_in {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = io.shutdown.changed() => return Ok(ClientExit::Shutdown),
            }
        }
    }
}

/// What one dial attempt came to.
enum Dialled<S> {
    /// Shutdown was asked for while dialling; the modem was hung up.
    Shutdown,
    /// The modem did not connect; the port comes back for the next attempt.
    Failed(S, SerialError),
    /// `CONNECT`: the port in its modem driver, and what the modem said.
    Connected(ModemPort<S, DialMachine>, serial::Connected),
}

/// One attempt of both data paths: the status and events of a new attempt, the dialer or chat
/// script run until `CONNECT`, a failure or shutdown (which hangs up), and on `CONNECT` its log
/// line, status and event.
#[allow(clippy::too_many_arguments)]
async fn dial<S>(
    port: S,
    attempt: u32,
    config: &ClientConfig,
    script: &Option<ChatScript>,
    dialer_config: &DialerConfig,
    status: &SharedStatus,
    emit: &impl Fn(ClientEvent),
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Dialled<S>, DialOutError>
where
    S: AsyncRead + AsyncWrite + ModemControl + Unpin,
{
    {
        let mut guard = status.lock();
        guard.attempts = attempt;
        "dialing".clone_into(&mut guard.status);
    }
    emit(ClientEvent::Dialing { attempt });
    info!("dialing (attempt {attempt})");
    let mut machine = match script {
        _ if config.null_modem => DialMachine::direct(status.clone()),
        Some(script) => DialMachine::chat(script.clone(), status.clone()),
        None => DialMachine::dialer(dialer_config.clone(), status.clone())?,
    };
    machine.open(serial::now())?;
    let mut modem = ModemPort::new(port, machine);
    let mut observe = |event: &ModemEvent| log_modem_event(event);
    let result = tokio::select! {
        result = modem.run_until_connected(&mut observe) => Some(result),
        _ = shutdown.changed() => None,
    };
    match result {
        None => {
            let _ = modem
                .hang_up(CloseReason::UserRequest, HANGUP_LIMIT, &mut observe)
                .await;
            Ok(Dialled::Shutdown)
        }
        Some(Err(error)) => Ok(Dialled::Failed(modem.into_parts().0, error)),
        Some(Ok(connected)) => {
            info!(
                "connected{}",
                connected
                    .rate
                    .map(|r| format!(" at {r}"))
                    .unwrap_or_default()
            );
            {
                let mut guard = status.lock();
                "connected".clone_into(&mut guard.status);
                guard.rate = connected.rate;
            }
            emit(ClientEvent::Connected {
                rate: connected.rate,
            });
            Ok(Dialled::Connected(modem, connected))
        }
    }
}

/// Why an attempt failed.
#[derive(Debug)]
enum Failure {
    /// Before `CONNECT`.
    Modem(SerialError),
    /// After `CONNECT`, the link never reached IPCP up.
    Link(CallEnd),
}

/// Whether the error that ended an attempt would have been retried (it was `max-fail` that
/// stopped us, not the error itself).
fn is_retryable_error(error: &DialOutError) -> bool {
    match error {
        DialOutError::Serial(error) => is_retryable(error),
        _ => true,
    }
}

impl Failure {
    fn is_retryable(&self) -> bool {
        match self {
            Failure::Modem(error) => is_retryable(error),
            Failure::Link(_) => true,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Modem(error) => write!(f, "{error}"),
            Failure::Link(reason) => write!(f, "link failed: {reason}"),
        }
    }
}

/// Logs a modem event, pppd/chat style (secrets are never in events).
pub(crate) fn log_modem_event(event: &ModemEvent) {
    match event {
        ModemEvent::StatusUpdated(status) => debug!(
            "modem status: signal {:?} dBm, operator {:?}",
            status.signal_dbm, status.operator
        ),
        ModemEvent::Failed(error) => debug!("modem: {error}"),
        ModemEvent::Say(text) => info!("{text}"),
        other => debug!("modem: {other:?}"),
    }
}

/// [`run_client`] on the kernel data path (docs/data-plane.md): the line is dialled as there;
/// once it is connected, the tty goes into the kernel's PPP line discipline and the call runs
/// on a `pppN` unit ([`ppp_tokio::kernel::serial::run_call`]), so datagrams never cross this
/// process (`io.outbound` and `io.inbound` stay unused); `idle-timeout` reads the unit's idle
/// time from the kernel. Not for bundles or dial-on-demand, which need the TUN path.
///
/// # Errors
///
/// As [`run_client`].
pub async fn run_kernel_client<S>(
    config: &ClientConfig,
    mut port: S,
    io: ClientIo,
    status: SharedStatus,
    support: ppp_tokio::kernel::KernelSupport,
) -> Result<ClientExit, DialOutError>
where
    S: AsyncRead + AsyncWrite + ModemControl + std::os::fd::AsRawFd + Unpin,
{
    use ppp_tokio::kernel::serial::{self as kernel_serial, CallEvent, CallOptions};

    let dialer_config = config.dialer_config()?;
    let script = config.chat_script()?;
    let random =
        Random::from_os().map_err(|error| DialOutError::Io(std::io::Error::other(error)))?;
    let link_config = kernel_serial::serial_link_config(&support, &config.link_config()?);
    let call_options = CallOptions {
        interface: config.interface.clone(),
        no_configure: false,
        default_route: config
            .add_default_route
            .then_some(config.default_route_distance),
        resolv_conf: config.resolv_conf.clone().filter(|_| config.use_peer_dns),
        idle_timeout: config.idle_timeout(),
    };
    let mut attempt = 0u32;
    let mut shutdown = io.shutdown.clone();
    let emit = |event: ClientEvent| {
        let _ = io.events.send(event);
    };
    loop {
        if *shutdown.borrow() {
            return Ok(ClientExit::Shutdown);
        }
        attempt += 1;
        let failure = match dial(
            port,
            attempt,
            config,
            &script,
            &dialer_config,
            &status,
            &emit,
            &mut shutdown,
        )
        .await?
        {
            Dialled::Shutdown => return Ok(ClientExit::Shutdown),
            Dialled::Failed(back, error) => {
                port = back;
                Failure::Modem(error)
            }
            Dialled::Connected(modem, _connected) => {
                let mut observe = |event: &ModemEvent| log_modem_event(event);
                let (stream, machine) = modem.into_parts();
                let mut link = Link::new(link_config.clone(), random.clone());
                let mut stop = io.shutdown.clone();
                let stopped = async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                };
                let outcome =
                    kernel_serial::run_call(&stream, &mut link, &call_options, stopped, |event| {
                        match event {
                            CallEvent::IpUp {
                                local,
                                peer,
                                dns,
                                mtu,
                            } => {
                                {
                                    let mut guard = status.lock();
                                    guard.address = Some(local);
                                    guard.peer_address = Some(peer);
                                    guard.dns.clone_from(&dns);
                                    guard.mtu = Some(mtu);
                                    guard.connected_since = Some(serial::now());
                                    guard.failures = 0;
                                    guard.last_error = None;
                                }
                                emit(ClientEvent::IpUp {
                                    local,
                                    peer,
                                    dns,
                                    mtu,
                                });
                            }
                            CallEvent::IpDown => emit(ClientEvent::IpDown),
                            CallEvent::Ipv6Up { local, peer } => {
                                emit(ClientEvent::Ipv6Up { local, peer });
                            }
                            _ => {}
                        }
                    })
                    .await;
                let (reason, was_up) = match outcome {
                    Ok(outcome) => (
                        match outcome.end {
                            kernel_serial::CallEnd::Link(reason) => CallEnd::Link(reason),
                            kernel_serial::CallEnd::Shutdown => CallEnd::Shutdown,
                            kernel_serial::CallEnd::IdleTimeout => CallEnd::IdleTimeout,
                            _ => CallEnd::CarrierLost,
                        },
                        outcome.was_up,
                    ),
                    Err(error) => (CallEnd::LineError(error.to_string()), false),
                };
                status.lock().call_ended();
                status.set_state("hanging up", "hanging up");
                let mut modem = ModemPort::new(stream, machine);
                if let Err(error) = modem
                    .hang_up(reason.close_reason(), HANGUP_LIMIT, &mut observe)
                    .await
                {
                    warn!("hang-up: {error}");
                }
                port = modem.into_parts().0;
                info!("call ended: {reason}");
                emit(ClientEvent::CallEnded {
                    reason: reason.clone(),
                });
                status.set_state("disconnected", "disconnected");
                if reason == CallEnd::Shutdown || *shutdown.borrow() {
                    return Ok(ClientExit::Shutdown);
                }
                if !config.persist {
                    return if was_up {
                        Ok(ClientExit::CallEnded(reason))
                    } else {
                        Err(DialOutError::Link(reason))
                    };
                }
                Failure::Link(reason)
            }
        };
        let exhausted = {
            let mut guard = status.lock();
            guard.failures += 1;
            guard.last_error = Some(failure.to_string());
            config.max_fail > 0 && guard.failures >= config.max_fail
        };
        if !config.persist || exhausted || !failure.is_retryable() {
            return Err(match failure {
                Failure::Modem(error) => DialOutError::Serial(error),
                Failure::Link(reason) => DialOutError::Link(reason),
            });
        }
        let wait = config.holdoff();
        warn!(
            "attempt {attempt} failed: {failure}; redialing in {} s",
            wait.as_secs_f32()
        );
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return Ok(ClientExit::Shutdown),
        }
    }
}
