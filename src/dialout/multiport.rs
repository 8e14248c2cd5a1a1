//! `ppp-server` on several ports at once: every port answers calls, and each call's link goes
//! into one [`LinkTable`], so a second call from the same peer (authenticated name and Endpoint
//! Discriminator, with Multilink negotiated) joins that peer's bundle, and another peer gets a
//! bundle (or a link) of its own. A port whose call ends answers again.
//!
//! Kept apart from [`server`](super::server) (one port, one [`Link`](ppp_link::Link)), which
//! it shares the configuration, secrets and events with.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use ppp_link::{CloseReason, Datagram, LinkEvent, LinkTable, Random, TableEvent, UnitId};
use ppp_modem::{Answerer, ModemEvent};
use ppp_tokio::bundle::{LinesEvent, ModemLines, hang_up_all};
use ppp_tokio::icmp;
use ppp_tokio::serial::{self, Connected, ModemControl, ModemPort, SerialError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::client::is_retryable;
use super::config::ServerConfig;
use super::server::{ServerEvent, ServerExit, ServerIo, ServerOptions};
use super::status::{MemberStatus, SharedStatus};
use super::{CallEnd, DialOutError};

/// How long to wait for the callers' Terminate-Acks at shutdown.
const TERMINATE_LIMIT: Duration = Duration::from_secs(4);
/// How long a modem may take to confirm a hang-up.
const HANGUP_LIMIT: Duration = Duration::from_secs(10);
/// The pause before a port whose answering failed answers again.
const RETRY_WAIT: Duration = Duration::from_secs(1);

/// What a port's task reports.
enum TaskDone<S> {
    /// A call was answered.
    Answered {
        line: usize,
        port: Box<ModemPort<S, Answerer>>,
        connected: Connected,
    },
    /// Answering failed.
    Failed {
        line: usize,
        port: S,
        error: SerialError,
    },
    /// The port is back (hung up, or stopped).
    PortBack { line: usize, port: S },
}

/// Serves calls on `ports` (in the order of the configuration's `[[line]]`s) until told to
/// stop; with `once`, until the first calls are all over.
///
/// # Errors
///
/// A bad configuration, or a modem failure that retrying cannot fix.
pub async fn run_multiport_server<S>(
    config: &ServerConfig,
    ports: Vec<S>,
    mut io: ServerIo,
    status: SharedStatus,
    options: ServerOptions,
) -> Result<ServerExit, DialOutError>
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
    let secrets = config.secrets()?;
    let link_config = Arc::new(config.link_config()?);
    let local = config
        .profile
        .local_address
        .unwrap_or(Ipv4Addr::UNSPECIFIED);
    let random: Random = options.random;
    status.set_state("waiting for call", "waiting for ring");
    status.lock().members = configs
        .iter()
        .map(|c| MemberStatus::new(c.port.as_str()))
        .collect();
    let emit = |event: ServerEvent| {
        let _ = io.events.send(event);
    };
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<TaskDone<S>>();
    let (stop_tasks, stopped) = watch::channel(false);
    let mut idle: Vec<Option<S>> = ports.into_iter().map(Some).collect();
    for (line, config) in configs.iter().enumerate() {
        answer(
            line,
            config,
            &mut idle,
            Duration::ZERO,
            &status,
            &done_tx,
            &stopped,
        )?;
    }
    let mut driver: ModemLines<LinkTable<usize>, S, Answerer> =
        ModemLines::new(LinkTable::new(random));
    driver.watch_dcd(!config.ignore_dcd);
    let mut served = 0u64;
    let mut outbound = io.outbound.take();
    let reason = loop {
        let packet = async {
            match outbound.as_mut() {
                Some(channel) => channel.recv().await,
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
                    LinesEvent::Core(TableEvent::Link { key, event }) => match event {
                        LinkEvent::SecretNeeded(request) => {
                            let entry = secrets.lookup_now(&request.client, &request.server);
                            if entry.is_none() {
                                warn!("line {}: no secret for \"{}\"", key + 1, request.client);
                            }
                            if let Err(error) = driver.core_mut().provide_secret(
                                serial::now(),
                                key,
                                request.token,
                                entry,
                            ) {
                                debug!("secret answer not taken: {error}");
                            }
                        }
                        LinkEvent::Authenticated { peer_name } => {
                            if let Some(m) = status.lock().members.get_mut(key) {
                                m.peer_name.clone_from(&peer_name);
                            }
                            status.lock().peer_name.clone_from(&peer_name);
                            emit(ServerEvent::Authenticated { peer_name });
                        }
                        LinkEvent::Phase(phase) => {
                            debug!("line {}: phase {phase}", key + 1);
                            if let Some(m) = status.lock().members.get_mut(key) {
                                m.phase = Some(phase.to_string());
                            }
                        }
                        other => debug!("line {}: {other:?}", key + 1),
                    },
                    LinesEvent::Core(TableEvent::Network { unit, event }) => match event {
                        LinkEvent::IpUp { local: ours, peer, .. } => {
                            let mtu = driver.core().mtu(unit);
                            {
                                let mut guard = status.lock();
                                guard.address = Some(ours);
                                guard.peer_address = Some(peer);
                                guard.mtu = mtu;
                                guard.connected_since = Some(serial::now());
                                "connected".clone_into(&mut guard.status);
                            }
                            let mtu = mtu.unwrap_or(config.max_mtu);
                            emit(ServerEvent::IpUp { local: ours, peer, mtu });
                        }
                        other => debug!("{unit}: {other:?}"),
                    },
                    LinesEvent::Core(TableEvent::Joined { unit, key, members }) => {
                        info!("line {} joined {unit}: {members} line{}", key + 1, if members == 1 { "" } else { "s" });
                        let mut guard = status.lock();
                        for (index, member) in guard.members.iter_mut().enumerate() {
                            if index == key || driver.core().unit_of(index) == Some(unit) {
                                member.joined = true;
                                member.unit = Some(unit.to_string());
                            }
                        }
                        if let UnitId::Bundle(_) = unit {
                            guard.mrru = driver.core().mtu(unit);
                        }
                    }
                    LinesEvent::Core(TableEvent::Left { unit, key, members }) => {
                        info!("line {} left {unit}: {members} left", key + 1);
                        if let Some(m) = status.lock().members.get_mut(key) {
                            m.joined = false;
                        }
                    }
                    LinesEvent::Core(TableEvent::Removed { key, reason }) => {
                        debug!("line {}: link removed ({reason})", key + 1);
                        if driver.ended(key).is_none()
                            && let Some(port) = driver.take_line(key)
                        {
                            // The link ended with the call still up: hang it up.
                            info!("line {}: call ended: {reason}", key + 1);
                            emit(ServerEvent::CallEnded { reason: CallEnd::Link(reason) });
                            hang_up(key, port, &status, &done_tx);
                        }
                    }
                    LinesEvent::Core(TableEvent::UnitDown { unit }) => {
                        // A link's own unit also goes when the link moves into a bundle.
                        debug!("{unit} down");
                        if driver.core().is_empty() {
                            status.lock().call_ended();
                        }
                    }
                    LinesEvent::Core(other) => debug!("{other:?}"),
                    LinesEvent::CarrierLost { line, reason } => {
                        warn!("line {}: carrier lost ({reason})", line + 1);
                        if let Some(port) = driver.take_line(line) {
                            emit(ServerEvent::CallEnded { reason: CallEnd::CarrierLost });
                            hang_up(line, port, &status, &done_tx);
                        }
                    }
                    LinesEvent::Datagram((unit, datagram)) => {
                        if let Some(inbound) = &io.inbound {
                            let _ = inbound.try_send(datagram);
                        } else if let Datagram::Ipv4(packet) = datagram
                            && config.answer_ping
                            && let Some(reply) = icmp::echo_reply(&packet, local)
                        {
                            let _ = driver.core_mut().send_ipv4(serial::now(), unit, &reply);
                        }
                    }
                    LinesEvent::Modem { line, event } => debug!("line {}: modem: {event:?}", line + 1),
                    _ => {}
                }
            }
            done = done_rx.recv() => {
                let Some(done) = done else { break CallEnd::Shutdown };
                match done {
                    TaskDone::Answered { line, port, connected } => {
                        info!("line {}: answered a call", line + 1);
                        served += 1;
                        {
                            let mut guard = status.lock();
                            if let Some(m) = guard.members.get_mut(line) {
                                "connected".clone_into(&mut m.status);
                                m.rate = connected.rate;
                                m.attempts += 1;
                            }
                            guard.attempts += 1;
                            "connected".clone_into(&mut guard.dial_status);
                        }
                        emit(ServerEvent::Answered { rate: connected.rate });
                        driver.core_mut().add_link(serial::now(), line, link_config.clone(), None);
                        driver.add_line(line, *port, connected);
                    }
                    TaskDone::Failed { line, port, error } => {
                        warn!("line {}: answering failed: {error}", line + 1);
                        if let Some(m) = status.lock().members.get_mut(line) {
                            m.last_error = Some(error.to_string());
                        }
                        if !is_retryable(&error) {
                            idle[line] = Some(port);
                            let _ = stop_tasks.send(true);
                            return Err(DialOutError::Serial(error));
                        }
                        idle[line] = Some(port);
                        answer(line, &configs[line], &mut idle, RETRY_WAIT, &status, &done_tx, &stopped)?;
                    }
                    TaskDone::PortBack { line, port } => {
                        idle[line] = Some(port);
                        if config.once && served > 0 && driver.is_empty() {
                            break CallEnd::Shutdown;
                        }
                        answer(line, &configs[line], &mut idle, Duration::ZERO, &status, &done_tx, &stopped)?;
                    }
                }
            }
            packet = packet => match packet {
                // Our host's packets go to the first unit up (one caller at a time on a TUN).
                Some(packet) => {
                    let unit = driver.core().units().next().map(|(unit, _)| unit);
                    if let Some(unit) = unit {
                        let _ = driver.core_mut().send_ipv4(serial::now(), unit, &packet);
                    }
                }
                None => outbound = None,
            },
            _ = io.shutdown.changed() => break CallEnd::Shutdown,
        }
    };
    // Stop: answering tasks give their ports back, calls up are terminated and hung up.
    let _ = stop_tasks.send(true);
    if !driver.is_empty() {
        driver
            .core_mut()
            .close_all(serial::now(), reason.close_reason());
        let _ = tokio::time::timeout(TERMINATE_LIMIT, async {
            while !driver.core().is_empty() {
                if driver.next().await.is_err() {
                    break;
                }
            }
        })
        .await;
        let _ = tokio::time::timeout(Duration::from_secs(1), driver.flush()).await;
    }
    let ports = driver.take_all();
    for (line, _, result) in hang_up_all(ports, CloseReason::UserRequest, HANGUP_LIMIT).await {
        if let Err(error) = result {
            warn!("line {}: hang-up: {error}", line + 1);
        }
    }
    status.lock().call_ended();
    Ok(match reason {
        CallEnd::Shutdown if !config.once => ServerExit::Shutdown,
        reason => ServerExit::CallEnded(reason),
    })
}

/// Starts answering on `line` (after `wait`).
fn answer<S>(
    line: usize,
    config: &ServerConfig,
    idle: &mut [Option<S>],
    wait: Duration,
    status: &SharedStatus,
    done: &mpsc::UnboundedSender<TaskDone<S>>,
    stopped: &watch::Receiver<bool>,
) -> Result<(), DialOutError>
where
    S: AsyncRead + AsyncWrite + ModemControl + Unpin + Send + 'static,
{
    let Some(port) = idle[line].take() else {
        return Ok(());
    };
    if *stopped.borrow() {
        idle[line] = Some(port);
        return Ok(());
    }
    let mut answerer = Answerer::new(config.answer_config());
    answerer.open(serial::now())?;
    if let Some(m) = status.lock().members.get_mut(line) {
        "waiting for call".clone_into(&mut m.status);
        "waiting for ring".clone_into(&mut m.dial_status);
        m.phase = None;
        m.joined = false;
        m.unit = None;
        m.peer_name = None;
        m.rate = None;
    }
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
        let mut modem = ModemPort::new(port, answerer);
        let mut observe = |event: &ModemEvent| debug!("line {}: modem: {event:?}", line + 1);
        let result = tokio::select! {
            result = modem.run_until_connected(&mut observe) => Some(result),
            _ = stopped.wait_for(|stop| *stop) => None,
        };
        let message = match result {
            Some(Ok(connected)) => TaskDone::Answered {
                line,
                port: Box::new(modem),
                connected,
            },
            Some(Err(error)) => TaskDone::Failed {
                line,
                port: modem.into_parts().0,
                error,
            },
            None => TaskDone::PortBack {
                line,
                port: modem.into_parts().0,
            },
        };
        let _ = done.send(message);
    });
    Ok(())
}

/// Hangs `port` up in a task of its own; it comes back as [`TaskDone::PortBack`].
fn hang_up<S>(
    line: usize,
    mut port: ModemPort<S, Answerer>,
    status: &SharedStatus,
    done: &mpsc::UnboundedSender<TaskDone<S>>,
) where
    S: AsyncRead + AsyncWrite + ModemControl + Unpin + Send + 'static,
{
    if let Some(m) = status.lock().members.get_mut(line) {
        "hanging up".clone_into(&mut m.status);
        m.joined = false;
    }
    let done = done.clone();
    tokio::spawn(async move {
        let mut observe = |event: &ModemEvent| debug!("line {}: modem: {event:?}", line + 1);
        if let Err(error) = port
            .hang_up(CloseReason::UserRequest, HANGUP_LIMIT, &mut observe)
            .await
        {
            warn!("line {}: hang-up: {error}", line + 1);
        }
        let _ = done.send(TaskDone::PortBack {
            line,
            port: port.into_parts().0,
        });
    });
}
