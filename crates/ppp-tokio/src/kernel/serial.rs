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
    /// [`run_call`] closes the link when the interface carried no data packet either way for
    /// this long since IPCP came up (pppd's `idle`; the unit's `PPPIOCGIDLE`, in whole
    /// seconds) and ends with [`CallEnd::IdleTimeout`].
    pub idle_timeout: Option<Duration>,
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
    /// No data packet for [`CallOptions::idle_timeout`]: we closed the link.
    IdleTimeout,
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

/// A call on a connected tty in the kernel's PPP line discipline, driven by the caller's own
/// loop (a server that verifies callers through RADIUS, say); [`run_call`] is the simplest
/// such loop. The loop:
///
/// 1. [`poll_event`](Self::poll_event) until `None`: it sends what the link has to send, tells
///    the kernel and the interface what each event changes (MRU, ACCM, CCP, addresses, routes)
///    and hands the event on;
/// 2. waits for the first of [`recv`](Self::recv) (a control frame for the link, or the line
///    hanging up), the link's [`poll_timeout`](Link::poll_timeout), and its own inputs;
/// 3. at the end, [`finish`](Self::finish) takes the interface down and puts the tty back.
///
/// Datagrams never reach the loop: the kernel carries them. How much it carried and when it
/// last did are [`counters`](Self::counters) and [`last_traffic`](Self::last_traffic).
///
/// ```no_run
/// # async fn call(tty: &std::fs::File, mut link: ppp_link::Link) -> std::io::Result<()> {
/// use ppp_tokio::kernel::serial::{CallOptions, KernelCall};
/// use ppp_link::LinkEvent;
///
/// let mut call = KernelCall::start(tty, CallOptions::default(), false)?;
/// let now = std::time::Instant::now;
/// link.open(now());
/// link.up(now());
/// 'call: loop {
///     while let Some(event) = call.poll_event(&mut link) {
///         if let LinkEvent::LinkDown { .. } = event {
///             break 'call;
///         }
///     }
///     let deadline = link.poll_timeout();
///     let timer = async {
///         match deadline {
///             Some(at) => tokio::time::sleep_until(at.into()).await,
///             None => std::future::pending().await,
///         }
///     };
///     tokio::select! {
///         up = call.recv(&mut link) => if !up? { break 'call },
///         () = timer => link.handle_timeout(now()),
///     }
/// }
/// call.finish();
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct KernelCall {
    kernel: Option<KernelLink>,
    discipline: Option<PppLineDiscipline>,
    configured: Configured,
    options: CallOptions,
    name: String,
    buf: Vec<u8>,
    ip_up: bool,
    was_up: bool,
}

impl KernelCall {
    /// Switches the connected tty `tty` (kept open by the caller) to the PPP line discipline
    /// and connects its channel to a new unit (named `options.interface`, or `pppN`); `ccp`
    /// when the link may negotiate CCP (the unit watches it). Open the link afterwards.
    ///
    /// # Errors
    ///
    /// The tty cannot take the PPP discipline, or `/dev/ppp` fails (the tty is back in its
    /// discipline then).
    pub fn start(tty: &impl AsRawFd, options: CallOptions, ccp: bool) -> io::Result<KernelCall> {
        let discipline = PppLineDiscipline::set(super::sys::borrow_fd(tty))?;
        let kernel = match start_kernel(&discipline, options.interface.as_deref(), ccp) {
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
        Ok(KernelCall {
            kernel: Some(kernel),
            discipline: Some(discipline),
            configured: Configured::default(),
            options,
            name,
            buf: vec![0u8; BUFFER_LEN],
            ip_up: false,
            was_up: false,
        })
    }

    /// The interface carrying the call.
    pub fn interface(&self) -> &str {
        &self.name
    }

    /// The unit.
    pub fn unit(&self) -> &PppUnit {
        self.kernel().unit()
    }

    /// Whether a network protocol came up during the call.
    pub fn was_up(&self) -> bool {
        self.was_up
    }

    fn kernel(&self) -> &KernelLink {
        self.kernel
            .as_ref()
            .expect("the kernel link is there until finish")
    }

    fn kernel_mut(&mut self) -> &mut KernelLink {
        self.kernel
            .as_mut()
            .expect("the kernel link is there until finish")
    }

    /// Sends the link's frames, then takes its next event, applies what it changes to the
    /// kernel and (unless `no_configure`) to the interface, and returns it; `None` when the
    /// link has nothing more to say. A failure of the kernel closes the link (logged).
    pub fn poll_event(&mut self, link: &mut Link) -> Option<LinkEvent> {
        while let Some(frame) = link.poll_transmit() {
            let kernel = self.kernel_mut();
            if !kernel.has_mppe_keys()
                && let Some(keys) = keys_of(Some(link.control()))
            {
                kernel.set_mppe_keys(keys);
            }
            if let Err(error) = kernel.send(&frame) {
                warn!("{}: {error}", self.name);
                link.close(now(), CloseReason::Other("kernel data path failed".into()));
            }
        }
        // Datagrams never come here: the kernel keeps them.
        while link.poll_datagram().is_some() {}
        let event = link.poll_event()?;
        if let Err(error) = self.kernel_mut().apply(&event) {
            warn!("{}: {error}", self.name);
            link.close(now(), CloseReason::Other("kernel data path failed".into()));
        }
        self.configure(link, &event);
        Some(event)
    }

    fn configure(&mut self, link: &Link, event: &LinkEvent) {
        let name = &self.name;
        let options = &self.options;
        match event {
            LinkEvent::IpUp { local, peer, dns } => {
                self.was_up = true;
                self.ip_up = true;
                if !options.no_configure {
                    let resolv = options
                        .resolv_conf
                        .as_deref()
                        .map(|path| (path, dns.as_slice()));
                    let mtu = link.mtu().unwrap_or(1500);
                    if let Err(error) = self.configured.ip_up(
                        name,
                        (*local, *peer),
                        mtu,
                        options.default_route,
                        resolv,
                    ) {
                        warn!("{name}: interface not configured: {error}");
                    }
                }
            }
            LinkEvent::IpDown => {
                self.ip_up = false;
                self.configured.ip_down(name);
            }
            LinkEvent::Ipv6Up { local, peer } => {
                self.was_up = true;
                if !options.no_configure {
                    self.configured.ipv6_up(name, *local, *peer);
                }
            }
            LinkEvent::Ipv6Down => self.configured.ipv6_down(name),
            LinkEvent::CcpUp(_) | LinkEvent::CcpDown if self.ip_up && !options.no_configure => {
                if let Some(mtu) = link.mtu() {
                    follow_mtu(name, mtu);
                }
            }
            _ => {}
        }
    }

    /// Waits for the next control frame from the kernel and gives it to `link`; `Ok(false)`
    /// when the line hung up (the link was told it is down: drain
    /// [`poll_event`](Self::poll_event), then [`finish`](Self::finish)). Cancel safe.
    ///
    /// # Errors
    ///
    /// Reading the channel or the unit fails.
    pub async fn recv(&mut self, link: &mut Link) -> io::Result<bool> {
        let kernel = self
            .kernel
            .as_mut()
            .expect("the kernel link is there until finish");
        match kernel.recv(&mut self.buf).await? {
            KernelInput::Frame(len) => {
                link.handle_input(now(), &self.buf[..len]);
                Ok(true)
            }
            KernelInput::ChannelClosed => {
                info!("{}: the line hung up", self.name);
                link.down(now());
                Ok(false)
            }
        }
    }

    /// When the interface last carried a data packet either way (`PPPIOCGIDLE`, in whole
    /// seconds before `now`).
    ///
    /// # Errors
    ///
    /// The ioctl fails.
    pub fn last_traffic(&self, now: Instant) -> io::Result<Instant> {
        self.kernel().last_traffic(now)
    }

    /// What the kernel moved through the interface so far, through `rtnl` (an rtnetlink
    /// socket of this network namespace): received is what came from the peer.
    ///
    /// # Errors
    ///
    /// The kernel's refusal.
    pub fn counters(
        &self,
        rtnl: &mut crate::rtnl::RouteSocket,
    ) -> io::Result<crate::rtnl::LinkCounters> {
        self.kernel().counters(rtnl)
    }

    /// Gives the call's session what the kernel counted and when the interface last carried
    /// a packet ([`KernelLink::observe`]).
    pub fn observe(
        &self,
        now: Instant,
        rtnl: Option<&mut crate::rtnl::RouteSocket>,
        nas: &mut crate::aaa::NasSession,
    ) {
        self.kernel().observe(now, rtnl, nas);
    }

    /// Takes the interface's configuration away, removes the unit and puts the tty back in
    /// its previous discipline.
    pub fn finish(mut self) {
        self.configured.tear_down(&self.name);
        if let Some(kernel) = self.kernel.take() {
            drop(kernel.disconnect());
        }
        if let Some(discipline) = self.discipline.take()
            && let Err(error) = discipline.restore()
        {
            debug!("restoring the line discipline: {error}");
        }
        debug!("{}: removed", self.name);
    }
}

/// Runs `link` (configured by [`serial_link_config`], not yet opened) on the connected tty
/// `tty` (a serial port stream, kept open by the caller) in the kernel's PPP line discipline
/// until the link goes down, the line hangs up, or `shutdown` completes (then the link is
/// closed and the Terminate-Ack awaited a few seconds). `on_event` hears what the call does.
/// The tty is back in its previous discipline when this returns, the unit and its interface
/// are gone. A loop that needs more (verifying the peer elsewhere, timers of its own) drives
/// a [`KernelCall`] itself.
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
    let mut call = KernelCall::start(tty, options.clone(), ccp)?;
    on_event(CallEvent::InKernel {
        interface: call.interface().to_owned(),
    });
    let result = drive(&mut call, link, shutdown, &mut on_event).await;
    call.finish();
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
    call: &mut KernelCall,
    link: &mut Link,
    shutdown: impl Future<Output = ()>,
    on_event: &mut impl FnMut(CallEvent),
) -> io::Result<CallOutcome> {
    let mut closing: Option<(Instant, CallEnd)> = None;
    // The idle clock: from IPCP up, moved by the kernel's last data packet when it is due.
    let mut idle = IdleClock::new(call.options.idle_timeout);
    tokio::pin!(shutdown);
    link.open(now());
    link.up(now());
    let end = 'call: loop {
        while let Some(event) = call.poll_event(link) {
            match event {
                LinkEvent::IpUp { local, peer, dns } => {
                    idle.start(now());
                    on_event(CallEvent::IpUp {
                        local,
                        peer,
                        dns,
                        mtu: link.mtu().unwrap_or(1500),
                    });
                }
                LinkEvent::IpDown => {
                    idle.stop();
                    on_event(CallEvent::IpDown);
                }
                LinkEvent::Ipv6Up { local, peer } => on_event(CallEvent::Ipv6Up { local, peer }),
                LinkEvent::LinkDown { reason } => {
                    break 'call match closing {
                        Some((_, end)) => end,
                        None => CallEnd::Link(reason),
                    };
                }
                _ => {}
            }
        }
        let deadline = match &closing {
            Some((since, _)) => Some(
                link.poll_timeout()
                    .map_or(*since + CLOSE_GRACE, |t| t.min(*since + CLOSE_GRACE)),
            ),
            None => link.poll_timeout(),
        };
        let idle_deadline = idle.deadline().filter(|_| closing.is_none());
        tokio::select! {
            up = call.recv(link) => if !up? {
                while link.poll_event().is_some() {}
                break 'call match closing {
                    Some((_, end)) => end,
                    None => CallEnd::HungUp,
                };
            },
            () = sleep_until(deadline) => {
                let now = now();
                if let Some((since, end)) = &closing
                    && now >= *since + CLOSE_GRACE
                {
                    break 'call end.clone();
                }
                link.handle_timeout(now);
            }
            () = sleep_until(idle_deadline) => {
                let now = now();
                match call.last_traffic(now) {
                    Ok(last) => idle.traffic(last),
                    Err(error) => debug!("{}: idle time not read: {error}", call.interface()),
                }
                if idle.expired(now) {
                    info!("{}: idle timeout: closing the link", call.interface());
                    closing = Some((now, CallEnd::IdleTimeout));
                    link.close(now, CloseReason::IdleTimeout);
                }
            }
            () = &mut shutdown, if closing.is_none() => {
                closing = Some((now(), CallEnd::Shutdown));
                link.close(now(), CloseReason::UserRequest);
            }
        }
    };
    Ok(CallOutcome {
        end,
        was_up: call.was_up(),
    })
}

/// pppd's `idle` on the kernel path: when the interface last carried data (never before IPCP
/// came up), and whether that is longer ago than the timeout.
#[derive(Clone, Copy, Debug)]
struct IdleClock {
    timeout: Option<Duration>,
    last: Option<Instant>,
}

impl IdleClock {
    fn new(timeout: Option<Duration>) -> Self {
        IdleClock {
            timeout: timeout.filter(|t| !t.is_zero()),
            last: None,
        }
    }

    /// IPCP is up: the clock runs from `now`.
    fn start(&mut self, now: Instant) {
        self.last = Some(now);
    }

    /// IPCP went down: no idle time counts.
    fn stop(&mut self) {
        self.last = None;
    }

    /// The kernel says data last moved at `at` (earlier traffic does not move the clock back).
    fn traffic(&mut self, at: Instant) {
        if let Some(last) = &mut self.last {
            *last = (*last).max(at);
        }
    }

    /// When to look again.
    fn deadline(&self) -> Option<Instant> {
        Some(self.last? + self.timeout?)
    }

    fn expired(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|at| now >= at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idle_clock_runs_from_ipcp_up_and_follows_the_kernels_last_packet() {
        let start = Instant::now();
        let second = Duration::from_secs(1);
        let mut clock = IdleClock::new(Some(10 * second));
        assert_eq!(clock.deadline(), None, "not before IPCP is up");
        clock.start(start);
        assert_eq!(clock.deadline(), Some(start + 10 * second));
        // At the deadline the kernel reports a packet 3 s ago: look again 10 s after it.
        clock.traffic(start + 7 * second);
        assert!(!clock.expired(start + 10 * second));
        assert_eq!(clock.deadline(), Some(start + 17 * second));
        // A report older than what is known (whole seconds) changes nothing.
        clock.traffic(start + 5 * second);
        assert_eq!(clock.deadline(), Some(start + 17 * second));
        assert!(clock.expired(start + 17 * second));
        clock.stop();
        assert_eq!(clock.deadline(), None, "IPCP down");
        assert_eq!(IdleClock::new(Some(Duration::ZERO)).deadline(), None);
        let mut off = IdleClock::new(None);
        off.start(start);
        assert!(!off.expired(start + 1000 * second));
    }

    #[test]
    fn serial_calls_use_sync_framing_and_the_16_bit_fcs() {
        let template = LinkConfig::default();
        let config = serial_link_config(&KernelSupport::default(), &template);
        assert_eq!(config.framing, Framing::Sync);
        assert_eq!(config.ccp, None);
        assert_eq!(config.lcp.fcs_alternatives, None);
    }
}
