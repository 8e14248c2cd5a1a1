//! The dial-out client with several ports in one Multilink bundle (RFC 1990): each `[[line]]`
//! is dialled with its own modem sequence, every line that connects joins the one bundle, a line
//! that drops is hung up and (with `persist`) dialled again while the bundle carries on over the
//! others, and the bundle ends when its last line is gone.
//!
//! The lines run under one [`Multilink`] in a [`ModemLines`] driver; dialing and hanging up
//! happen in a task per line, so a line that takes 30 s to register stops nothing else.

use std::sync::Arc;
use std::time::Duration;

use ppp_lcp::{EndpointClass, EndpointDiscriminator};
use ppp_link::{
    CloseReason, LinkConfig, LinkControl, LinkEvent, Multilink, MultilinkEvent, Phase, Random,
};
use ppp_modem::ModemEvent;
use ppp_tokio::Capture;
use ppp_tokio::bundle::{LinesEvent, ModemLines, hang_up_all};
use ppp_tokio::serial::{self, Connected, ModemControl, ModemPort, SerialError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::client::{
    ClientEvent, ClientExit, ClientIo, ClientOptions, DialMachine, is_retryable, log_modem_event,
};
use super::config::ClientConfig;
use super::status::{MemberStatus, SharedStatus};
use super::{CallEnd, DialOutError};

/// The longest wait between attempts on a line.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long to wait for the peer's Terminate-Acks when the bundle closes.
const TERMINATE_LIMIT: Duration = Duration::from_secs(4);
/// How long a modem may take to confirm a hang-up.
const HANGUP_LIMIT: Duration = Duration::from_secs(10);

/// What a line's task reports.
enum TaskDone<S> {
    /// The modem connected.
    Connected {
        line: usize,
        port: Box<ModemPort<S, DialMachine>>,
        connected: Connected,
    },
    /// The modem sequence failed; the port is back in command mode.
    DialFailed {
        line: usize,
        port: S,
        error: SerialError,
    },
    /// Stopped before connecting (shut down), or hung up: the port is back.
    PortBack { line: usize, port: S },
}

/// Where a line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Its task dials (or waits to dial again).
    Dialing,
    /// Its call is up, its link in the bundle's [`Multilink`].
    Online,
    /// Its task hangs up.
    HangingUp,
    /// No more calls on it (without `persist`, or `max-fail` reached, or a fatal error).
    Done,
}

/// Why a line's call or attempt ended.
#[derive(Clone, Debug)]
enum LineEnd {
    /// The attempt failed before or after `CONNECT` without the line ever joining the bundle.
    Failed {
        error: String,
        retryable: bool,
        /// After `CONNECT`: why the link failed.
        link: Option<CallEnd>,
    },
    /// A call that joined the bundle ended.
    Ended(CallEnd),
}

/// One port of the bundle.
struct Line<S> {
    config: ClientConfig,
    /// The port while no task has it.
    port: Option<S>,
    state: State,
    failures: u32,
    backoff: Duration,
    /// Whether the current call's link joined the bundle.
    joined: bool,
    end: Option<LineEnd>,
}

/// Runs the client over `ports` (in the order of the configuration's `[[line]]`s) until told to
/// stop, every line gave up, or (without `persist`) the bundle's last line is gone.
///
/// # Errors
///
/// A bad configuration; without a line that ever came up, the failure of the last line
/// ([`DialOutError::Serial`] or [`DialOutError::Link`]); with `persist`, [`DialOutError::MaxFail`]
/// once every line reached `max-fail`.
pub async fn run_bundle_client<S>(
    config: &ClientConfig,
    ports: Vec<S>,
    mut io: ClientIo,
    status: SharedStatus,
    options: ClientOptions,
) -> Result<ClientExit, DialOutError>
where
    S: AsyncRead + AsyncWrite + ModemControl + Unpin + Send + 'static,
{
    let configs = config.lines()?;
    if configs.len() != ports.len() {
        return Err(DialOutError::Config(format!(
            "{} ports opened for {} lines",
            ports.len(),
            configs.len()
        )));
    }
    for line in &configs {
        line.dialer_config()?;
        line.chat_script()?;
    }
    let random = match options.random {
        Some(random) => random,
        None => {
            Random::from_os().map_err(|error| DialOutError::Io(std::io::Error::other(error)))?
        }
    };
    let link_config = Arc::new(bundle_link_config(config, &random)?);
    let mut capture = match &options.pcap {
        Some(path) => {
            Some(Capture::create(path).map_err(|error| crate::cli::named(path.display(), error))?)
        }
        None => None,
    };
    {
        let mut guard = status.lock();
        guard.members = configs
            .iter()
            .map(|c| MemberStatus::new(c.port.as_str()))
            .collect();
    }
    let mut lines: Vec<Line<S>> = configs
        .into_iter()
        .zip(ports)
        .map(|(config, port)| Line {
            backoff: config.holdoff(),
            config,
            port: Some(port),
            state: State::Done,
            failures: 0,
            joined: false,
            end: None,
        })
        .collect();
    let events = io.events.clone();
    let emit = move |event: ClientEvent| {
        let _ = events.send(event);
    };
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<TaskDone<S>>();
    let (stop_tasks, tasks_stopped) = watch::channel(false);
    let mut attempt = 0u32;
    let mut pending: Option<Vec<u8>> = None;
    'session: loop {
        if *io.shutdown.borrow() {
            break 'session Ok(ClientExit::Shutdown);
        }
        if config.dial_on_demand && pending.is_none() {
            status.set_state("waiting for traffic", "idle");
            info!("dial-on-demand: waiting for the first packet");
            tokio::select! {
                packet = io.outbound.recv() => match packet {
                    Some(packet) => pending = Some(packet),
                    None => break 'session Ok(ClientExit::Shutdown),
                },
                _ = io.shutdown.changed() => break 'session Ok(ClientExit::Shutdown),
            }
            info!("dial-on-demand: outbound packet, dialing");
        }
        attempt += 1;
        status.lock().attempts = attempt;
        status.set_state("dialing", "dialing");
        emit(ClientEvent::Dialing { attempt });
        info!("dialing {} lines (attempt {attempt})", lines.len());
        let mut driver: ModemLines<Multilink<usize>, S, DialMachine> =
            ModemLines::new(Multilink::new(link_config.clone(), random.fork()));
        driver.watch_dcd(!config.ignore_dcd);
        if let Some(capture) = capture.take() {
            driver.set_capture(capture);
        }
        for (index, line) in lines.iter_mut().enumerate() {
            line.failures = 0;
            line.backoff = config.holdoff();
            start_dial(
                index,
                line,
                Duration::ZERO,
                &status,
                &done_tx,
                &tasks_stopped,
            )?;
        }
        let mut ip_up = false;
        let mut ever_up = false;
        let mut last_activity = tokio::time::Instant::now();
        let mut last_end: Option<CallEnd> = None;
        let mut last_failure: Option<DialOutError> = None;
        let reason = loop {
            if lines.iter().all(|l| l.state == State::Done) {
                break last_end.clone().unwrap_or(CallEnd::CarrierLost);
            }
            let idle_at = config
                .idle_timeout()
                .filter(|_| ip_up)
                .map(|idle| last_activity + idle);
            let idle = async {
                match idle_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = driver.next() => {
                    let event = match event {
                        Ok(event) => event,
                        Err(error) => break CallEnd::LineError(error.to_string()),
                    };
                    match event {
                        LinesEvent::Core(MultilinkEvent::Network(event)) => match event {
                            LinkEvent::IpUp { local, peer, dns } => {
                                let mtu = driver.core().mtu().unwrap_or(config.max_mtu);
                                for (i, server) in dns.iter().enumerate() {
                                    let which = if i == 0 { "primary  " } else { "secondary" };
                                    info!("{which} DNS address {server}");
                                }
                                {
                                    let mut guard = status.lock();
                                    "connected".clone_into(&mut guard.status);
                                    "connected".clone_into(&mut guard.dial_status);
                                    guard.address = Some(local);
                                    guard.peer_address = Some(peer);
                                    guard.dns.clone_from(&dns);
                                    guard.mtu = Some(mtu);
                                    guard.mrru = driver.core().is_multilink().then_some(mtu);
                                    guard.connected_since = Some(serial::now());
                                    guard.failures = 0;
                                    guard.last_error = None;
                                }
                                emit(ClientEvent::IpUp { local, peer, dns, mtu });
                                ip_up = true;
                                ever_up = true;
                                last_activity = tokio::time::Instant::now();
                                if let Some(packet) =
                                    pending.take_if(|p| p.first().is_some_and(|b| b >> 4 == 4))
                                    && let Err(error) =
                                        driver.core_mut().send_ipv4(serial::now(), &packet)
                                {
                                    debug!("the packet that dialed was dropped: {error}");
                                }
                            }
                            LinkEvent::CcpUp(_) | LinkEvent::CcpDown if ip_up => {
                                let mtu = driver.core().mtu().unwrap_or(config.max_mtu);
                                if status.lock().mtu.replace(mtu) != Some(mtu) {
                                    info!("mtu {mtu}");
                                    emit(ClientEvent::MtuChanged { mtu });
                                }
                            }
                            LinkEvent::IpDown => {
                                if ip_up {
                                    ip_up = false;
                                    emit(ClientEvent::IpDown);
                                }
                            }
                            LinkEvent::Ipv6Up { local, peer } => {
                                {
                                    let mut guard = status.lock();
                                    guard.ipv6_address = Some(local);
                                    guard.ipv6_peer = Some(peer);
                                }
                                emit(ClientEvent::Ipv6Up { local, peer });
                                ever_up = true;
                            }
                            LinkEvent::Ipv6Down => {
                                {
                                    let mut guard = status.lock();
                                    guard.ipv6_address = None;
                                    guard.ipv6_peer = None;
                                }
                                emit(ClientEvent::Ipv6Down);
                            }
                            other => debug!("bundle: {other:?}"),
                        },
                        LinesEvent::Core(MultilinkEvent::Member { member, event }) => {
                            on_member_event(member, event, &mut driver, &mut lines, &status, &done_tx);
                        }
                        LinesEvent::Core(MultilinkEvent::Joined { member, members }) => {
                            info!(
                                "line {} ({}) joined the bundle: {members} line{}",
                                member + 1,
                                lines[member].config.port,
                                if members == 1 { "" } else { "s" }
                            );
                            lines[member].joined = true;
                            lines[member].failures = 0;
                            lines[member].backoff = config.holdoff();
                            if let Some(m) = status.lock().members.get_mut(member) {
                                m.joined = true;
                                m.last_error = None;
                            }
                            emit(ClientEvent::LineJoined { line: member, members });
                        }
                        LinesEvent::Core(MultilinkEvent::Left { member, members }) => {
                            info!(
                                "line {} ({}) left the bundle: {members} line{} left",
                                member + 1,
                                lines[member].config.port,
                                if members == 1 { "" } else { "s" }
                            );
                            if let Some(m) = status.lock().members.get_mut(member) {
                                m.joined = false;
                            }
                        }
                        LinesEvent::Core(MultilinkEvent::BundleDown) => {
                            info!("bundle down: its last line is gone");
                            if ip_up {
                                ip_up = false;
                                emit(ClientEvent::IpDown);
                            }
                            let mut guard = status.lock();
                            guard.call_ended();
                            "disconnected".clone_into(&mut guard.status);
                        }
                        LinesEvent::Core(other) => debug!("bundle: {other:?}"),
                        LinesEvent::Datagram(datagram) => {
                            last_activity = tokio::time::Instant::now();
                            let _ = io.inbound.try_send(datagram);
                        }
                        LinesEvent::CarrierLost { line, reason } => {
                            warn!("line {} ({}): carrier lost ({reason})", line + 1, lines[line].config.port);
                            end_line(line, LineEnd::Ended(CallEnd::CarrierLost), &mut driver, &mut lines, &status, &done_tx);
                        }
                        LinesEvent::Modem { event, .. } => log_modem_event(&event),
                        _ => {}
                    }
                }
                done = done_rx.recv() => {
                    let Some(done) = done else { break CallEnd::Shutdown };
                    match done {
                        TaskDone::Connected { line, port, connected } => {
                            let entry = &mut lines[line];
                            info!(
                                "line {} ({}): connected{}",
                                line + 1,
                                entry.config.port,
                                connected.rate.map(|r| format!(" at {r}")).unwrap_or_default()
                            );
                            entry.state = State::Online;
                            entry.joined = false;
                            entry.end = None;
                            if let Some(m) = status.lock().members.get_mut(line) {
                                "connected".clone_into(&mut m.status);
                                m.rate = connected.rate;
                            }
                            emit(ClientEvent::LineConnected { line, rate: connected.rate });
                            if status.lock().rate.is_none() {
                                status.lock().rate = connected.rate;
                            }
                            let now = serial::now();
                            let bundle = driver.core_mut();
                            bundle.add_member(now, line, LinkControl::new(link_config.clone(), random.fork()));
                            bundle.open(now, &line);
                            bundle.up(now, &line);
                            if let Some(rate) = connected.rate {
                                bundle.set_member_speed(&line, u64::from(rate));
                            }
                            driver.add_line(line, *port, connected);
                        }
                        TaskDone::DialFailed { line, port, error } => {
                            lines[line].port = Some(port);
                            let retryable = is_retryable(&error);
                            let text = error.to_string();
                            warn!("line {} ({}): {text}", line + 1, lines[line].config.port);
                            last_failure = Some(DialOutError::Serial(error));
                            lines[line].end = Some(LineEnd::Failed { error: text, retryable, link: None });
                            after_call(line, &mut lines, config, &status, &done_tx, &tasks_stopped, &emit)?;
                        }
                        TaskDone::PortBack { line, port } => {
                            lines[line].port = Some(port);
                            if lines[line].state == State::HangingUp {
                                if let Some(LineEnd::Ended(reason)) = &lines[line].end {
                                    last_end = Some(reason.clone());
                                }
                                if let Some(LineEnd::Failed { link: Some(reason), .. }) = &lines[line].end {
                                    last_failure = Some(DialOutError::Link(reason.clone()));
                                }
                                after_call(line, &mut lines, config, &status, &done_tx, &tasks_stopped, &emit)?;
                            } else {
                                lines[line].state = State::Done;
                            }
                        }
                    }
                }
                packet = io.outbound.recv() => {
                    let Some(packet) = packet else { continue };
                    last_activity = tokio::time::Instant::now();
                    let now = serial::now();
                    let sent = match packet.first().map(|b| b >> 4) {
                        Some(6) => driver.core_mut().send_ipv6(now, &packet),
                        _ => driver.core_mut().send_ipv4(now, &packet),
                    };
                    if let Err(error) = sent {
                        debug!("outbound packet dropped: {error}");
                    }
                }
                () = idle => {
                    info!("idle timeout: hanging up");
                    break CallEnd::IdleTimeout;
                }
                _ = io.shutdown.changed() => break CallEnd::Shutdown,
            }
        };
        // The session is over: every line still up terminates its link and hangs up; dialing
        // tasks stop.
        if ip_up {
            emit(ClientEvent::IpDown);
        }
        status.lock().call_ended();
        status.set_state("hanging up", "hanging up");
        let _ = stop_tasks.send(true);
        close_bundle(&mut driver, &reason).await;
        let ports = driver.take_all();
        for (line, _) in &ports {
            lines[*line].state = State::HangingUp;
        }
        for (line, port, result) in hang_up_all(ports, reason.close_reason(), HANGUP_LIMIT).await {
            if let Err(error) = result {
                warn!("line {}: hang-up: {error}", line + 1);
            }
            lines[line].port = Some(port.into_parts().0);
            lines[line].state = State::Done;
        }
        // The dialing tasks give their ports back.
        let waiting = lines.iter().filter(|l| l.port.is_none()).count();
        let _ = tokio::time::timeout(HANGUP_LIMIT * 2, async {
            let mut left = waiting;
            while left > 0 {
                match done_rx.recv().await {
                    Some(TaskDone::Connected { line, port, .. }) => {
                        let mut observe = |event: &ModemEvent| log_modem_event(event);
                        let mut port = *port;
                        let _ = port
                            .hang_up(reason.close_reason(), HANGUP_LIMIT, &mut observe)
                            .await;
                        lines[line].port = Some(port.into_parts().0);
                    }
                    Some(
                        TaskDone::DialFailed { line, port, .. } | TaskDone::PortBack { line, port },
                    ) => {
                        lines[line].port = Some(port);
                    }
                    None => break,
                }
                left -= 1;
            }
        })
        .await;
        let _ = stop_tasks.send(false);
        for (index, line) in lines.iter_mut().enumerate() {
            line.state = State::Done;
            if let Some(m) = status.lock().members.get_mut(index) {
                "disconnected".clone_into(&mut m.status);
                m.joined = false;
                m.phase = None;
            }
        }
        capture = driver.take_capture();
        info!("call ended: {reason}");
        emit(ClientEvent::CallEnded {
            reason: reason.clone(),
        });
        status.set_state("disconnected", "disconnected");
        if reason == CallEnd::Shutdown || *io.shutdown.borrow() {
            break 'session Ok(ClientExit::Shutdown);
        }
        if reason == CallEnd::IdleTimeout && config.dial_on_demand {
            continue;
        }
        if ever_up && !config.persist {
            break 'session Ok(ClientExit::CallEnded(reason));
        }
        if !ever_up {
            let error = last_failure.unwrap_or(DialOutError::Link(reason));
            let retryable = match &error {
                DialOutError::Serial(error) => is_retryable(error),
                _ => true,
            };
            if config.persist && config.max_fail > 0 && retryable {
                break 'session Err(DialOutError::MaxFail {
                    attempts: config.max_fail,
                    last: Box::new(error),
                });
            }
            break 'session Err(error);
        }
        // persist: every line gave up after the bundle had been up; start over.
        tokio::select! {
            () = tokio::time::sleep(config.holdoff()) => {}
            _ = io.shutdown.changed() => break 'session Ok(ClientExit::Shutdown),
        }
    }
}

/// The link configuration every line shares: the client's, with Multilink on (`mrru`) and an
/// Endpoint Discriminator (class 1, 8 random bytes) so the peer puts all lines in one bundle
/// even without authentication (RFC 1990 §5.1.3).
fn bundle_link_config(config: &ClientConfig, random: &Random) -> Result<LinkConfig, DialOutError> {
    let mut link = config.link_config()?;
    if link.lcp.mrru.is_none() {
        link.lcp.mrru = Some(config.max_mru);
    }
    if link.lcp.endpoint_discriminator.is_none() {
        link.lcp.endpoint_discriminator = Some(EndpointDiscriminator {
            class: EndpointClass::Local,
            address: random.bytes::<8>().to_vec(),
        });
    }
    Ok(link)
}

/// A member's own events: its phase for `monitor`, its link going down (then the line is hung
/// up).
fn on_member_event<S>(
    line: usize,
    event: LinkEvent,
    driver: &mut ModemLines<Multilink<usize>, S, DialMachine>,
    lines: &mut [Line<S>],
    status: &SharedStatus,
    done: &mpsc::UnboundedSender<TaskDone<S>>,
) where
    S: AsyncRead + AsyncWrite + ModemControl + Unpin + Send + 'static,
{
    match event {
        LinkEvent::Phase(phase) => {
            debug!("line {}: phase {phase}", line + 1);
            if let Some(m) = status.lock().members.get_mut(line) {
                m.phase = (phase != Phase::Dead).then(|| phase.to_string());
            }
        }
        LinkEvent::LinkDown { reason } => {
            if lines[line].state != State::Online {
                return;
            }
            let end = if lines[line].joined {
                LineEnd::Ended(CallEnd::Link(reason))
            } else {
                LineEnd::Failed {
                    error: format!("link failed: {reason}"),
                    retryable: true,
                    link: Some(CallEnd::Link(reason)),
                }
            };
            end_line(line, end, driver, lines, status, done);
        }
        LinkEvent::LinkUp(n) => debug!(
            "line {}: LCP up: mru {} peer mru {} mrru {:?}/{:?}",
            line + 1,
            n.our_mru,
            n.peer_mru,
            n.our_mrru,
            n.peer_mrru
        ),
        other => debug!("line {}: {other:?}", line + 1),
    }
}

/// A line's call is over (`end`): it leaves the bundle and its task hangs it up.
fn end_line<S>(
    line: usize,
    end: LineEnd,
    driver: &mut ModemLines<Multilink<usize>, S, DialMachine>,
    lines: &mut [Line<S>],
    status: &SharedStatus,
    done: &mpsc::UnboundedSender<TaskDone<S>>,
) where
    S: AsyncRead + AsyncWrite + ModemControl + Unpin + Send + 'static,
{
    let Some(mut port) = driver.take_line(line) else {
        return;
    };
    let entry = &mut lines[line];
    entry.state = State::HangingUp;
    let reason = match &end {
        LineEnd::Ended(reason) => reason.close_reason(),
        LineEnd::Failed { error, .. } => CloseReason::Other(error.clone()),
    };
    entry.end = Some(end);
    if let Some(m) = status.lock().members.get_mut(line) {
        "hanging up".clone_into(&mut m.status);
        m.joined = false;
        m.phase = None;
    }
    let done = done.clone();
    tokio::spawn(async move {
        let mut observe = |event: &ModemEvent| log_modem_event(event);
        if let Err(error) = port.hang_up(reason, HANGUP_LIMIT, &mut observe).await {
            warn!("line {}: hang-up: {error}", line + 1);
        }
        let _ = done.send(TaskDone::PortBack {
            line,
            port: port.into_parts().0,
        });
    });
}

/// After a line's attempt or call ended (its port is back): dial it again after its backoff, or
/// leave it done.
fn after_call<S>(
    line: usize,
    lines: &mut [Line<S>],
    config: &ClientConfig,
    status: &SharedStatus,
    done: &mpsc::UnboundedSender<TaskDone<S>>,
    stopped: &watch::Receiver<bool>,
    emit: &impl Fn(ClientEvent),
) -> Result<(), DialOutError>
where
    S: AsyncRead + AsyncWrite + ModemControl + Unpin + Send + 'static,
{
    let entry = &mut lines[line];
    let (wait, error) = match entry.end.clone() {
        Some(LineEnd::Failed {
            error, retryable, ..
        }) => {
            entry.failures += 1;
            let exhausted = config.max_fail > 0 && entry.failures >= config.max_fail;
            let wait = (config.persist && retryable && !exhausted).then_some(entry.backoff);
            entry.backoff = (entry.backoff * 2).min(MAX_BACKOFF);
            if exhausted {
                warn!(
                    "line {} ({}): giving up after {} consecutive failed attempts (max-fail)",
                    line + 1,
                    entry.config.port,
                    entry.failures
                );
            }
            (wait, Some(error))
        }
        Some(LineEnd::Ended(reason)) => {
            info!(
                "line {} ({}): call ended: {reason}",
                line + 1,
                entry.config.port
            );
            (config.persist.then(|| config.holdoff()), None)
        }
        None => (None, None),
    };
    emit(ClientEvent::LineEnded {
        line,
        reason: match &entry.end {
            Some(LineEnd::Ended(reason)) => reason.clone(),
            Some(LineEnd::Failed { error, .. }) => CallEnd::LineError(error.clone()),
            None => CallEnd::CarrierLost,
        },
        retry_in: wait,
    });
    if let Some(m) = status.lock().members.get_mut(line) {
        m.last_error.clone_from(&error);
        m.rate = None;
        if wait.is_some() {
            "redialing".clone_into(&mut m.status);
        } else {
            (if error.is_some() {
                "failed"
            } else {
                "disconnected"
            })
            .clone_into(&mut m.status);
        }
    }
    if let Some(error) = &error {
        let mut guard = status.lock();
        guard.last_error = Some(error.clone());
    }
    match wait {
        Some(wait) => start_dial(line, entry, wait, status, done, stopped),
        None => {
            entry.state = State::Done;
            Ok(())
        }
    }
}

/// Starts a line's dialing task, after `wait`.
fn start_dial<S>(
    line: usize,
    entry: &mut Line<S>,
    wait: Duration,
    status: &SharedStatus,
    done: &mpsc::UnboundedSender<TaskDone<S>>,
    stopped: &watch::Receiver<bool>,
) -> Result<(), DialOutError>
where
    S: AsyncRead + AsyncWrite + ModemControl + Unpin + Send + 'static,
{
    let Some(port) = entry.port.take() else {
        return Ok(());
    };
    let config = &entry.config;
    let machine = match config.chat_script()? {
        _ if config.null_modem => DialMachine::direct(status.clone()),
        Some(script) => DialMachine::chat(script, status.clone()),
        None => DialMachine::dialer(config.dialer_config()?, status.clone())?,
    }
    .for_line(line);
    entry.state = State::Dialing;
    entry.end = None;
    let attempts = {
        let mut guard = status.lock();
        guard.members.get_mut(line).map_or(0, |m| {
            m.attempts += 1;
            m.status = if wait.is_zero() {
                "dialing".into()
            } else {
                "redialing".into()
            };
            m.attempts
        })
    };
    let name = config.port.clone();
    let done = done.clone();
    let mut stopped = stopped.clone();
    tokio::spawn(async move {
        if !wait.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stopped.wait_for(|stop| *stop) => {
                    let _ = done.send(TaskDone::PortBack { line, port });
                    return;
                }
            }
        }
        info!("line {} ({name}): dialing (attempt {attempts})", line + 1);
        let mut machine = machine;
        if let Err(error) = machine.open(serial::now()) {
            let _ = done.send(TaskDone::DialFailed {
                line,
                port,
                error: SerialError::Modem(error),
            });
            return;
        }
        let mut modem = ModemPort::new(port, machine);
        let mut observe = |event: &ModemEvent| log_modem_event(event);
        let result = tokio::select! {
            result = modem.run_until_connected(&mut observe) => Some(result),
            _ = stopped.wait_for(|stop| *stop) => None,
        };
        let message = match result {
            Some(Ok(connected)) => TaskDone::Connected {
                line,
                port: Box::new(modem),
                connected,
            },
            Some(Err(error)) => TaskDone::DialFailed {
                line,
                port: modem.into_parts().0,
                error,
            },
            None => {
                let _ = modem
                    .hang_up(CloseReason::UserRequest, HANGUP_LIMIT, &mut observe)
                    .await;
                TaskDone::PortBack {
                    line,
                    port: modem.into_parts().0,
                }
            }
        };
        let _ = done.send(message);
    });
    Ok(())
}

/// Terminates every member's link (LCP Terminate-Request) and waits at most
/// [`TERMINATE_LIMIT`] for them to go down, then writes what is left for the lines.
async fn close_bundle<S>(
    driver: &mut ModemLines<Multilink<usize>, S, DialMachine>,
    reason: &CallEnd,
) where
    S: AsyncRead + AsyncWrite + ModemControl + Unpin + Send + 'static,
{
    let live: Vec<usize> = driver
        .lines()
        .filter(|&line| driver.ended(line).is_none())
        .collect();
    if live.is_empty() {
        return;
    }
    driver
        .core_mut()
        .close_all(serial::now(), reason.close_reason());
    let _ = tokio::time::timeout(TERMINATE_LIMIT, async {
        loop {
            let open = driver
                .core()
                .members()
                .any(|(line, control, _)| live.contains(line) && control.phase() != Phase::Dead);
            if !open {
                break;
            }
            if driver.next().await.is_err() {
                break;
            }
        }
    })
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(1), driver.flush()).await;
}
