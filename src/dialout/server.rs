//! `ppp-server` mode: answer calls on a serial line (after `ring-count` RINGs, or at once on a
//! null-modem cable), authenticate the caller from `chap-secrets` or the TOML secrets, hand out
//! the profile's addresses, and serve until the call ends; then wait for the next one.

use std::net::Ipv4Addr;
use std::time::Duration;

use ppp_link::{Datagram, Link, LinkEvent, Random};
use ppp_modem::{Answerer, ModemEvent};
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

/// Serves calls on `port` until told to stop (or after one call with `once`).
///
/// # Errors
///
/// A bad configuration, a modem failure that retrying cannot fix, or with `once` a call that
/// did not end normally ([`DialOutError::Link`]; its [`CallEnd::exit_status`] is the
/// program's).
pub async fn run_server<S>(
    config: &ServerConfig,
    mut port: S,
    mut io: ServerIo,
    status: SharedStatus,
    options: ServerOptions,
) -> Result<ServerExit, DialOutError>
where
    S: AsyncRead + AsyncWrite + ModemControl + Unpin,
{
    let secrets = config.secrets()?;
    config.link_config()?;
    let random = options.random;
    let mut capture = match &options.pcap {
        Some(path) => {
            Some(Capture::create(path).map_err(|error| crate::cli::named(path.display(), error))?)
        }
        None => None,
    };
    let emit = |event: ServerEvent| {
        let _ = io.events.send(event);
    };
    let mut observe = |event: &ModemEvent| match event {
        ModemEvent::Urc(urc) => debug!("modem: {urc:?}"),
        other => debug!("modem: {other:?}"),
    };
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
        let link = Link::new(config.link_config()?, random.clone());
        let mut session = modem.into_session(link, connected);
        session.watch_dcd(!config.ignore_dcd);
        if let Some(capture) = capture.take() {
            session.set_capture(capture);
        }
        if let Some(outbound) = io.outbound.take() {
            session.set_outbound(outbound);
        }
        let mut local = Ipv4Addr::UNSPECIFIED;
        let mut was_up = false;
        let reason = loop {
            let next = tokio::select! {
                next = session.next() => next,
                _ = io.shutdown.changed() => break CallEnd::Shutdown,
            };
            match next {
                Err(error) => break CallEnd::LineError(error.to_string()),
                Ok(SessionEvent::Link(event)) => match event {
                    LinkEvent::SecretNeeded(request) => {
                        let entry = secrets.lookup_now(&request.client, &request.server);
                        if entry.is_none() {
                            warn!("no secret for \"{}\"", request.client);
                        }
                        if let Err(error) =
                            session
                                .link_mut()
                                .provide_secret(serial::now(), request.token, entry)
                        {
                            debug!("secret answer not taken: {error}");
                        }
                    }
                    LinkEvent::Authenticated { peer_name } => {
                        // The link already logged "peer authenticated as ...".
                        status.lock().peer_name.clone_from(&peer_name);
                        emit(ServerEvent::Authenticated { peer_name });
                    }
                    LinkEvent::IpUp {
                        local: ours, peer, ..
                    } => {
                        // The link logged "IPCP up: local ... remote ...".
                        local = ours;
                        was_up = true;
                        {
                            let mut guard = status.lock();
                            guard.address = Some(ours);
                            guard.peer_address = Some(peer);
                            guard.mtu = session.link().mtu();
                            guard.mru = session.link().lcp_negotiated().map(|n| n.our_mru);
                            guard.connected_since = Some(serial::now());
                        }
                        emit(ServerEvent::IpUp { local: ours, peer });
                    }
                    LinkEvent::Ipv6Up { .. } => was_up = true,
                    LinkEvent::LinkDown { reason } => break CallEnd::Link(reason),
                    LinkEvent::Phase(phase) => debug!("phase {phase}"),
                    other => debug!("link: {other:?}"),
                },
                Ok(SessionEvent::Datagram(datagram)) => {
                    if let Some(inbound) = &io.inbound {
                        let _ = inbound.try_send(datagram);
                    } else if let Datagram::Ipv4(packet) = datagram
                        && config.answer_ping
                        && let Some(reply) = icmp::echo_reply(&packet, local)
                    {
                        let _ = session.link_mut().send_ipv4(serial::now(), &reply);
                    }
                }
                Ok(SessionEvent::CarrierLost(reason)) => warn!("carrier lost ({reason})"),
                Ok(SessionEvent::Closed) => break CallEnd::CarrierLost,
                Ok(_) => {}
            }
        };
        io.outbound = session.take_outbound();
        status.lock().call_ended();
        let hung_up = session
            .hang_up(
                reason.close_reason(),
                Duration::from_secs(4),
                Duration::from_secs(10),
                &mut observe,
            )
            .await;
        let modem = hung_up.port;
        capture = hung_up.capture;
        if let Err(error) = hung_up.result {
            warn!("hang-up: {error}");
        }
        if let CallEnd::Link(_) = reason {
            // The link logged "link down: ..." with the same words.
            debug!("call ended: {reason}");
        } else {
            info!("call ended: {reason}");
        }
        emit(ServerEvent::CallEnded {
            reason: reason.clone(),
        });
        port = modem.into_parts().0;
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
