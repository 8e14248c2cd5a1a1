//! A call on a serial line in the kernel's PPP line discipline (`N_PPP`, `ppp_async`): once
//! the line is connected (a modem said `CONNECT`, or a null-modem cable), the tty is switched
//! to the PPP discipline, which makes it a PPP channel; the channel is attached through
//! `/dev/ppp` and connected to a new unit (`pppN`). The kernel then does the async HDLC
//! framing (ACCM, FCS, escaping) and moves every datagram between the line and the interface;
//! the link's LCP, authentication, NCP and CCP frames cross the channel and unit descriptors
//! to the sans-IO [`Link`], which runs with [`Framing::Sync`] here (the kernel delimits
//! frames and strips the address and control fields).
//!
//! [`run_call`] runs one call on a connected tty and puts the tty back as it was afterwards;
//! dialing and hanging up stay with the caller (they need the tty in its normal discipline).

use std::fs::OpenOptions;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppp_link::{CloseReason, DownReason, Framing, Link, LinkConfig, LinkEvent};
use tracing::{debug, info, warn};

use super::device::PppLineDiscipline;
use super::pppoe::{Configured, follow_mtu, keys_of};
use super::{KernelInput, KernelLink, KernelSupport, PppChannel, PppUnit};
use crate::{now, sleep_until};

/// How long a closing call waits for the peer's Terminate-Ack.
const CLOSE_GRACE: Duration = Duration::from_secs(4);
/// Largest frame read at once.
const BUFFER_LEN: usize = 65_536;

/// Whether the kernel has the PPP line discipline: `/proc/tty/ldiscs` lists it, or a pty
/// takes it (which loads `ppp_async` where modules load on demand).
pub(crate) fn probe_line_discipline() -> io::Result<()> {
    if listed_line_discipline() {
        return Ok(());
    }
    let pty = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open("/dev/ptmx")?;
    PppLineDiscipline::set(pty.as_fd())?.restore()
}

fn listed_line_discipline() -> bool {
    std::fs::read_to_string("/proc/tty/ldiscs").is_ok_and(|text| {
        text.lines()
            .any(|line| line.split_whitespace().next() == Some("ppp"))
    })
}

/// The link configuration of a call on this data path: [`KernelSupport::link_config`] with
/// sync framing (the kernel's `ppp_async` frames).
pub fn serial_link_config(support: &KernelSupport, template: &LinkConfig) -> LinkConfig {
    let mut config = support.link_config(template);
    config.framing = Framing::Sync;
    config
}

/// How [`run_call`] sets up the interface.
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    /// The interface's name (pppd's `ifname`); `pppN` when `None`.
    pub interface: Option<String>,
    /// Leave the interface unconfigured (no addresses, MTU, routes).
    pub no_configure: bool,
    /// Add a default route through the interface with this metric once IPCP is up.
    pub default_route: Option<u32>,
    /// Write the peer's DNS servers to this file once IPCP is up.
    pub resolv_conf: Option<PathBuf>,
}

/// How a call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallEnd {
    /// The link went down.
    Link(DownReason),
    /// The channel went away: the line hung up.
    HungUp,
    /// The caller asked to stop.
    Shutdown,
}

/// What a call reports while it runs (for the program's status and events).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallEvent {
    /// The kernel took the line: the interface carrying the call.
    InKernel {
        /// Its name.
        interface: String,
    },
    /// IPCP is up and the interface configured.
    IpUp {
        /// Our address.
        local: Ipv4Addr,
        /// The peer's.
        peer: Ipv4Addr,
        /// The peer's DNS servers.
        dns: Vec<Ipv4Addr>,
        /// The interface's MTU.
        mtu: u16,
    },
    /// IPCP went down.
    IpDown,
    /// IPv6CP is up.
    Ipv6Up {
        /// Our link-local address.
        local: Ipv6Addr,
        /// The peer's.
        peer: Ipv6Addr,
    },
}

/// What [`run_call`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallOutcome {
    /// Why it ended.
    pub end: CallEnd,
    /// Whether a network protocol came up.
    pub was_up: bool,
}

/// Runs `link` (configured by [`serial_link_config`], not yet opened) on the connected tty
/// `tty` (a serial port stream, kept open by the caller) in the kernel's PPP line discipline until the link goes down, the line hangs up, or
/// `shutdown` completes (then the link is closed and the Terminate-Ack awaited a few seconds).
/// `on_event` hears what the call does. The tty is back in its previous discipline when this
/// returns, the unit and its interface are gone.
///
/// # Errors
///
/// The tty cannot take the PPP discipline, `/dev/ppp` fails, or reading it fails.
pub async fn run_call(
    tty: &impl AsRawFd,
    link: &mut Link,
    options: &CallOptions,
    shutdown: impl Future<Output = ()>,
    mut on_event: impl FnMut(CallEvent),
) -> io::Result<CallOutcome> {
    let ccp = link.config().ccp.is_some();
    let discipline = PppLineDiscipline::set(super::sys::borrow_fd(tty))?;
    let started = start_kernel(&discipline, options.interface.as_deref(), ccp);
    let mut kernel = match started {
        Ok(kernel) => kernel,
        Err(error) => {
            discipline.restore().ok();
            return Err(error);
        }
    };
    let name = kernel.interface().to_owned();
    info!(
        "serial line in the kernel on {name} (channel {})",
        kernel.channel_index()
    );
    on_event(CallEvent::InKernel {
        interface: name.clone(),
    });
    let result = drive(&mut kernel, link, options, shutdown, &mut on_event).await;
    let unit = kernel.disconnect();
    drop(unit);
    if let Err(error) = discipline.restore() {
        debug!("restoring the line discipline: {error}");
    }
    debug!("{name}: removed");
    result
}

fn start_kernel(
    discipline: &PppLineDiscipline,
    name: Option<&str>,
    ccp: bool,
) -> io::Result<KernelLink> {
    let channel = PppChannel::attach(discipline.channel_index()?)?;
    let mut unit = PppUnit::create()?;
    if let Some(name) = name {
        unit.rename(name)?;
    }
    KernelLink::new(channel, Arc::new(unit), ccp, true)
}

async fn drive(
    kernel: &mut KernelLink,
    link: &mut Link,
    options: &CallOptions,
    shutdown: impl Future<Output = ()>,
    on_event: &mut impl FnMut(CallEvent),
) -> io::Result<CallOutcome> {
    let name = kernel.interface().to_owned();
    let mut configured = Configured::default();
    let mut buf = vec![0u8; BUFFER_LEN];
    let mut closing: Option<Instant> = None;
    let mut was_up = false;
    let mut ip_up = false;
    tokio::pin!(shutdown);
    link.open(now());
    link.up(now());
    let end = 'call: loop {
        while let Some(frame) = link.poll_transmit() {
            if !kernel.has_mppe_keys()
                && let Some(keys) = keys_of(Some(link.control()))
            {
                kernel.set_mppe_keys(keys);
            }
            if let Err(error) = kernel.send(&frame) {
                warn!("{name}: {error}");
                link.close(now(), CloseReason::Other("kernel data path failed".into()));
            }
        }
        while let Some(event) = link.poll_event() {
            if let Err(error) = kernel.apply(&event) {
                warn!("{name}: {error}");
                link.close(now(), CloseReason::Other("kernel data path failed".into()));
            }
            match event {
                LinkEvent::IpUp { local, peer, dns } => {
                    let mtu = link.mtu().unwrap_or(1500);
                    was_up = true;
                    ip_up = true;
                    if !options.no_configure {
                        let resolv = options
                            .resolv_conf
                            .as_deref()
                            .map(|path| (path, dns.as_slice()));
                        if let Err(error) = configured.ip_up(
                            &name,
                            (local, peer),
                            mtu,
                            options.default_route,
                            resolv,
                        ) {
                            warn!("{name}: interface not configured: {error}");
                        }
                    }
                    on_event(CallEvent::IpUp {
                        local,
                        peer,
                        dns,
                        mtu,
                    });
                }
                LinkEvent::IpDown => {
                    ip_up = false;
                    configured.ip_down(&name);
                    on_event(CallEvent::IpDown);
                }
                LinkEvent::Ipv6Up { local, peer } => {
                    was_up = true;
                    if !options.no_configure {
                        configured.ipv6_up(&name, local, peer);
                    }
                    on_event(CallEvent::Ipv6Up { local, peer });
                }
                LinkEvent::Ipv6Down => configured.ipv6_down(&name),
                LinkEvent::CcpUp(_) | LinkEvent::CcpDown if ip_up && !options.no_configure => {
                    if let Some(mtu) = link.mtu() {
                        follow_mtu(&name, mtu);
                    }
                }
                LinkEvent::LinkDown { reason } => {
                    break 'call match closing {
                        Some(_) => CallEnd::Shutdown,
                        None => CallEnd::Link(reason),
                    };
                }
                _ => {}
            }
        }
        // Datagrams never come here: the kernel keeps them.
        while link.poll_datagram().is_some() {}
        let deadline = match closing {
            Some(since) => Some(
                link.poll_timeout()
                    .map_or(since + CLOSE_GRACE, |t| t.min(since + CLOSE_GRACE)),
            ),
            None => link.poll_timeout(),
        };
        tokio::select! {
            input = kernel.recv(&mut buf) => match input? {
                KernelInput::Frame(len) => link.handle_input(now(), &buf[..len]),
                KernelInput::ChannelClosed => {
                    info!("{name}: the line hung up");
                    link.down(now());
                    while link.poll_event().is_some() {}
                    break 'call match closing {
                        Some(_) => CallEnd::Shutdown,
                        None => CallEnd::HungUp,
                    };
                }
            },
            () = sleep_until(deadline) => {
                let now = now();
                if closing.is_some_and(|since| now >= since + CLOSE_GRACE) {
                    break 'call CallEnd::Shutdown;
                }
                link.handle_timeout(now);
            }
            () = &mut shutdown, if closing.is_none() => {
                closing = Some(now());
                link.close(now(), CloseReason::UserRequest);
            }
        }
    };
    configured.tear_down(&name);
    Ok(CallOutcome { end, was_up })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_calls_use_sync_framing_and_the_16_bit_fcs() {
        let template = LinkConfig::default();
        let config = serial_link_config(&KernelSupport::default(), &template);
        assert_eq!(config.framing, Framing::Sync);
        assert_eq!(config.ccp, None);
        assert_eq!(config.lcp.fcs_alternatives, None);
    }
}
