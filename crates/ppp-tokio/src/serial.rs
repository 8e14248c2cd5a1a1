//! Serial lines and modems: open a port with tokio-serial, drive a `ppp-modem` machine
//! ([`Dialer`], [`Answerer`], [`ChatRunner`]) over any byte stream until `CONNECT`, run the PPP
//! [`Link`] on the same stream while watching for `NO CARRIER`, and give the stream back to the
//! modem for the hang-up.
//!
//! - [`open_port`] opens a real port ([`PortConfig`]: path, baud rate, flow control).
//! - [`ModemControl`] is "set DTR, read DCD": the serial port implements it; pipes, sockets and
//!   in-memory streams ignore it; [`DtrStream`] reports the DTR levels on a channel (for a
//!   simulated modem).
//! - [`ModemPort`] runs a [`ModemMachine`] on a stream: [`ModemPort::run_until_connected`],
//!   [`ModemPort::hang_up`].
//! - [`OnlineSession`] runs the [`Link`] after `CONNECT`, with the modem still listening for
//!   `NO CARRIER` and DCD read every second where the port has it (pppd's `modem`: a drop after
//!   DCD was seen high ends the call); carrier loss (or EOF) takes the link down
//!   ([`SessionEvent::CarrierLost`]).
//! - [`bridge_modem`] puts a [`SimulatedModem`] between two streams: the host side (our dial-out
//!   client, or pppd) speaks AT to it and, once online, PPP to whatever is on the peer side.
//!
//! Every wait here is bounded by the machines' own timeouts (AT command timeouts, chat
//! `TIMEOUT`, the LCP restart timer) or by an explicit limit, and all times are taken from
//! [`tokio::time::Instant`], so tests can run on paused (virtual) time.
//!
//! # Example
//!
//! ```no_run
//! use ppp_link::{Link, LinkConfig, LinkEvent};
//! use ppp_modem::{Dialer, DialerConfig};
//! use ppp_tokio::serial::{self, FlowControl, ModemPort, PortConfig, SessionEvent};
//!
//! # async fn run() -> Result<(), serial::SerialError> {
//! let port = serial::open_port(&PortConfig::new("/dev/ttyUSB2", 115_200, FlowControl::Hardware))?;
//! let dialer = Dialer::new(DialerConfig::cellular(Some("internet")))?;
//! let mut modem = ModemPort::new(port, dialer);
//! modem.machine_mut().open(serial::now())?;
//! let connected = modem.run_until_connected(&mut |event| println!("{event:?}")).await?;
//! let random = ppp_link::Random::from_os().expect("the OS has entropy");
//! let mut session = modem.into_session(Link::new(LinkConfig::default(), random), connected);
//! loop {
//!     match session.next().await? {
//!         SessionEvent::Link(LinkEvent::IpUp { local, .. }) => println!("local  IP address {local}"),
//!         SessionEvent::CarrierLost(reason) => break println!("carrier lost: {reason:?}"),
//!         SessionEvent::Closed => break,
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io;
use std::str::FromStr;
use std::time::{Duration, Instant};

use ppp_link::{CloseReason, Datagram, Link, LinkEvent};
use ppp_modem::{
    Answerer, ChatRunner, Dialer, DisconnectReason, ModemDriver, ModemError, ModemEvent,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info};

pub use crate::now;
use crate::{Capture, Io, Outbox, read_or_write, sleep_until};

/// Flow control on a serial port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FlowControl {
    /// None.
    None,
    /// RTS/CTS (the usual setting for modems).
    #[default]
    Hardware,
    /// XON/XOFF.
    Software,
}

impl FromStr for FlowControl {
    type Err = SerialError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "none" | "no" | "off" => Ok(FlowControl::None),
            "hardware" | "rtscts" | "crtscts" | "rts-cts" => Ok(FlowControl::Hardware),
            "software" | "xonxoff" | "xon-xoff" => Ok(FlowControl::Software),
            _ => Err(SerialError::InvalidFlowControl(text.to_owned())),
        }
    }
}

impl fmt::Display for FlowControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FlowControl::None => "none",
            FlowControl::Hardware => "hardware",
            FlowControl::Software => "software",
        })
    }
}

/// Where and how to open a serial port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortConfig {
    /// The device path, such as `/dev/ttyUSB2`.
    pub path: String,
    /// The baud rate.
    pub baud_rate: u32,
    /// Flow control.
    pub flow_control: FlowControl,
}

impl PortConfig {
    /// A port at `path`, 8N1.
    pub fn new(path: impl Into<String>, baud_rate: u32, flow_control: FlowControl) -> Self {
        PortConfig {
            path: path.into(),
            baud_rate,
            flow_control,
        }
    }
}

/// What can go wrong on a serial line or with its modem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SerialError {
    /// The port could not be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The device path.
        path: String,
        /// Why.
        source: tokio_serial::Error,
    },
    /// Reading or writing the line failed.
    #[error("serial line: {0}")]
    Io(#[from] io::Error),
    /// The modem sequence failed (timeout, wrong PIN, BUSY, ...).
    #[error("modem: {0}")]
    Modem(#[from] ModemError),
    /// The line was closed (EOF) before the modem connected or hung up.
    #[error("the line was closed")]
    Closed,
    /// The machine did not finish within the limit given.
    #[error("no answer from the modem within {0:?}")]
    Timeout(Duration),
    /// The machine stopped without connecting.
    #[error("the modem stopped without connecting ({0})")]
    Stopped(String),
    /// A flow-control name that is not `none`, `hardware` or `software`.
    #[error("unknown flow control {0:?} (none, hardware, software)")]
    InvalidFlowControl(String),
}

/// Opens a serial port, 8N1 with the given speed and flow control, DTR raised.
///
/// # Errors
///
/// [`SerialError::Open`] when the device cannot be opened or configured.
pub fn open_port(config: &PortConfig) -> Result<tokio_serial::SerialStream, SerialError> {
    use tokio_serial::SerialPort as _;
    let flow = match config.flow_control {
        FlowControl::None => tokio_serial::FlowControl::None,
        FlowControl::Hardware => tokio_serial::FlowControl::Hardware,
        FlowControl::Software => tokio_serial::FlowControl::Software,
    };
    let builder = tokio_serial::new(&config.path, config.baud_rate)
        .data_bits(tokio_serial::DataBits::Eight)
        .parity(tokio_serial::Parity::None)
        .stop_bits(tokio_serial::StopBits::One)
        .flow_control(flow);
    let open_error = |source| SerialError::Open {
        path: config.path.clone(),
        source,
    };
    let mut port = tokio_serial::SerialStream::open(&builder).map_err(open_error)?;
    if let Err(error) = port.write_data_terminal_ready(true) {
        // A pty or a USB adapter without modem-control lines.
        debug!("{}: cannot raise DTR: {error}", config.path);
    }
    debug!(
        "opened {} at {} baud, flow control {}",
        config.path, config.baud_rate, config.flow_control
    );
    Ok(port)
}

/// The modem-control lines of a transport: "set DTR", "read DCD". A serial port has them;
/// streams without modem-control lines (ptys, sockets, in-memory pipes) ignore DTR, and the
/// modem machines fall back to the `+++`/`ATH` escape, and report no DCD, so only `NO CARRIER`
/// and EOF end a call there.
pub trait ModemControl {
    /// Sets DTR to `level` (false drops it: a hang-up for a modem set to `AT&D2`).
    ///
    /// # Errors
    ///
    /// The port's error setting the line.
    fn set_dtr(&mut self, level: bool) -> io::Result<()> {
        let _ = level;
        Ok(())
    }

    /// Whether [`set_dtr`](Self::set_dtr) really does something on this transport.
    fn has_modem_lines(&self) -> bool {
        false
    }

    /// The level of DCD (Data Carrier Detect), or `None` where the transport has no such line
    /// or cannot read it.
    fn carrier_detect(&mut self) -> Option<bool> {
        None
    }
}

impl ModemControl for tokio_serial::SerialStream {
    /// Sets DTR; a port without modem-control lines (a pty) only logs the failure (a warning
    /// the first time in the process, debug afterwards), since the escape sequence still works
    /// there.
    fn set_dtr(&mut self, level: bool) -> io::Result<()> {
        use std::sync::atomic::{AtomicBool, Ordering};
        use tokio_serial::SerialPort as _;
        static WARNED: AtomicBool = AtomicBool::new(false);
        debug!("DTR {}", if level { "up" } else { "down" });
        if let Err(error) = self.write_data_terminal_ready(level) {
            let port = self.name().unwrap_or_else(|| "the serial port".to_owned());
            if WARNED.swap(true, Ordering::Relaxed) {
                debug!("cannot set DTR on {port}: {error}");
            } else {
                tracing::warn!(
                    "cannot set DTR on {port}: {error} (no modem-control lines: hang-ups use +++ and ATH)"
                );
            }
        }
        Ok(())
    }

    fn has_modem_lines(&self) -> bool {
        true
    }

    /// DCD from the port; `None` where it cannot be read (a pty).
    fn carrier_detect(&mut self) -> Option<bool> {
        use tokio_serial::SerialPort as _;
        self.read_carrier_detect().ok()
    }
}

impl ModemControl for tokio::io::DuplexStream {}
impl ModemControl for tokio::net::UnixStream {}
impl ModemControl for tokio::net::TcpStream {}

impl<T: ModemControl + ?Sized> ModemControl for Box<T> {
    fn set_dtr(&mut self, level: bool) -> io::Result<()> {
        (**self).set_dtr(level)
    }

    fn has_modem_lines(&self) -> bool {
        (**self).has_modem_lines()
    }

    fn carrier_detect(&mut self) -> Option<bool> {
        (**self).carrier_detect()
    }
}

/// A stream whose DTR levels go to a channel: the host side of a line to a [`SimulatedModem`]
/// run by [`bridge_modem`], so a DTR hang-up reaches the simulated modem.
#[derive(Debug)]
pub struct DtrStream<S> {
    inner: S,
    dtr: watch::Sender<bool>,
}

/// Wraps `stream` in a [`DtrStream`]; the receiver sees every DTR level set (initially high).
pub fn dtr_line<S>(stream: S) -> (DtrStream<S>, watch::Receiver<bool>) {
    let (dtr, levels) = watch::channel(true);
    (DtrStream { inner: stream, dtr }, levels)
}

impl<S> ModemControl for DtrStream<S> {
    fn set_dtr(&mut self, level: bool) -> io::Result<()> {
        debug!("DTR {}", if level { "up" } else { "down" });
        // Nobody listening is fine: there is no modem to hang up.
        let _ = self.dtr.send(level);
        Ok(())
    }

    fn has_modem_lines(&self) -> bool {
        true
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for DtrStream<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for DtrStream<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A modem machine the adapter can drive: the common verbs plus close (hang-up) and carrier
/// loss.
pub trait ModemMachine: ModemDriver {
    /// Hangs up the call or aborts the sequence (ends with [`ModemEvent::Disconnected`] when there
    /// was something to end).
    fn close(&mut self, now: Instant, reason: CloseReason);
    /// The adapter saw the carrier go (DCD dropped, or the stream ended).
    fn carrier_lost(&mut self, now: Instant);
}

impl ModemMachine for Dialer {
    fn close(&mut self, now: Instant, reason: CloseReason) {
        Dialer::close(self, now, reason);
    }

    fn carrier_lost(&mut self, now: Instant) {
        Dialer::carrier_lost(self, now);
    }
}

impl ModemMachine for Answerer {
    fn close(&mut self, now: Instant, reason: CloseReason) {
        Answerer::close(self, now, reason);
    }

    fn carrier_lost(&mut self, now: Instant) {
        Answerer::carrier_lost(self, now);
    }
}

impl ModemMachine for ChatRunner {
    fn close(&mut self, now: Instant, reason: CloseReason) {
        ChatRunner::close(self, now, reason);
    }

    fn carrier_lost(&mut self, now: Instant) {
        // A chat script has no call state to clear beyond dropping DTR.
        ChatRunner::close(self, now, CloseReason::Other("carrier lost".into()));
    }
}

/// The modem reached `CONNECT`: the line now carries PPP.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Connected {
    /// The rate from `CONNECT <rate>`.
    pub rate: Option<u32>,
    /// The text after `CONNECT`.
    pub text: Option<String>,
    /// The first PPP bytes, received with the `CONNECT` line.
    pub initial_data: Vec<u8>,
}

/// A modem machine on a byte stream, in command mode.
///
/// Cancel safe: bytes for the modem wait in an outbound queue that keeps its progress, so a
/// dropped future never truncates a command or a frame.
pub struct ModemPort<S, M> {
    pub(crate) stream: S,
    pub(crate) machine: M,
    pub(crate) outbox: Outbox,
    pub(crate) buf: Vec<u8>,
}

impl<S, M> fmt::Debug for ModemPort<S, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModemPort").finish_non_exhaustive()
    }
}

/// What one step of a machine produced that ends a wait.
enum Outcome {
    Connected(Connected),
    Failed(ModemError),
    Disconnected(DisconnectReason),
}

impl<S, M> ModemPort<S, M>
where
    S: AsyncRead + AsyncWrite + ModemControl + Unpin,
    M: ModemMachine,
{
    /// `machine` on `stream`. Start the machine (`Dialer::start`, ...) before running it.
    pub fn new(stream: S, machine: M) -> Self {
        ModemPort {
            stream,
            machine,
            outbox: Outbox::default(),
            buf: vec![0; 4096],
        }
    }

    /// The machine.
    pub fn machine(&self) -> &M {
        &self.machine
    }

    /// The machine, to start it or queue commands.
    pub fn machine_mut(&mut self) -> &mut M {
        &mut self.machine
    }

    /// The stream.
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The stream and the machine back.
    pub fn into_parts(self) -> (S, M) {
        (self.stream, self.machine)
    }

    /// Writes what the machine wants to send, applies DTR changes, hands every event to
    /// `observe`, and returns the first event that ends a wait.
    async fn pump(
        &mut self,
        observe: &mut (dyn FnMut(&ModemEvent) + Send),
    ) -> io::Result<Option<Outcome>> {
        let mut outcome = None;
        loop {
            let mut moved = false;
            while let Some(bytes) = self.machine.poll_transmit() {
                self.outbox.push(bytes);
                moved = true;
            }
            while let Some(event) = self.machine.poll_event() {
                moved = true;
                observe(&event);
                match event {
                    ModemEvent::SetDtr(level) => self.stream.set_dtr(level)?,
                    ModemEvent::Connected {
                        rate,
                        text,
                        initial_data,
                    } if outcome.is_none() => {
                        outcome = Some(Outcome::Connected(Connected {
                            rate,
                            text,
                            initial_data,
                        }));
                    }
                    ModemEvent::Failed(error) if outcome.is_none() => {
                        outcome = Some(Outcome::Failed(error));
                    }
                    ModemEvent::Disconnected { reason } if outcome.is_none() => {
                        outcome = Some(Outcome::Disconnected(reason));
                    }
                    _ => {}
                }
            }
            if !moved {
                return Ok(outcome);
            }
        }
    }

    /// Waits for input or the machine's next deadline (but not past `limit`), and feeds it.
    /// Returns false at EOF.
    async fn step(&mut self, limit: Option<Instant>) -> io::Result<bool> {
        let deadline = match (self.machine.poll_timeout(), limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        tokio::select! {
            io = read_or_write(&mut self.stream, &mut self.outbox, &mut self.buf) => {
                let now = now();
                if self.machine.poll_timeout().is_some_and(|at| at <= now) {
                    self.machine.handle_timeout(now);
                }
                match io {
                    Io::Wrote(result) => result?,
                    Io::Read(read) => match read? {
                        0 => return Ok(false),
                        n => self.machine.handle_input(now, &self.buf[..n]),
                    },
                }
            }
            () = sleep_until(deadline) => self.machine.handle_timeout(now()),
        }
        Ok(true)
    }

    /// Runs the machine until `CONNECT`. Every event (status updates, `RING`s, command
    /// results) is shown to `observe` first. Bounded by the machine's own timeouts.
    ///
    /// # Errors
    ///
    /// [`SerialError::Modem`] when the machine fails (wrong PIN, `BUSY`, a timeout),
    /// [`SerialError::Closed`] at EOF, [`SerialError::Stopped`] if it ends otherwise, and I/O
    /// errors.
    pub async fn run_until_connected(
        &mut self,
        observe: &mut (dyn FnMut(&ModemEvent) + Send),
    ) -> Result<Connected, SerialError> {
        loop {
            match self.pump(observe).await? {
                Some(Outcome::Connected(connected)) => return Ok(connected),
                Some(Outcome::Failed(error)) => return Err(SerialError::Modem(error)),
                // An answerer goes back to waiting by itself; a dialer stops here.
                Some(Outcome::Disconnected(reason))
                    if !self.machine.is_online() && self.machine.poll_timeout().is_none() =>
                {
                    return Err(SerialError::Stopped(format!("{reason:?}")));
                }
                _ => {}
            }
            if !self.step(None).await? {
                self.machine.carrier_lost(now());
                let _ = self.pump(observe).await;
                return Err(SerialError::Closed);
            }
        }
    }

    /// Hangs up (or aborts a sequence in progress) and waits at most `limit` for the modem to
    /// confirm. Stop writing PPP before calling this (the escape needs a guard time of silence).
    ///
    /// # Errors
    ///
    /// [`SerialError::Timeout`] when nothing confirmed the hang-up in time, and I/O errors.
    pub async fn hang_up(
        &mut self,
        reason: CloseReason,
        limit: Duration,
        observe: &mut (dyn FnMut(&ModemEvent) + Send),
    ) -> Result<DisconnectReason, SerialError> {
        let until = now() + limit;
        self.machine.close(now(), reason);
        loop {
            if let Some(Outcome::Disconnected(reason)) = self.pump(observe).await? {
                return Ok(reason);
            }
            if now() >= until {
                return Err(SerialError::Timeout(limit));
            }
            if self.machine.poll_timeout().is_none() && !self.machine.is_online() {
                // Nothing left to wait for (idle, failed): there was no call.
                return Ok(DisconnectReason::HangUp);
            }
            if !self.step(Some(until)).await? {
                self.machine.carrier_lost(now());
                let _ = self.pump(observe).await;
                return Ok(DisconnectReason::CarrierLost);
            }
        }
    }

    /// Runs `link` on the line after `connected` (the link is opened, told the line is up and
    /// given the initial data).
    pub fn into_session(self, link: Link, connected: Connected) -> OnlineSession<S, M> {
        let mut session = OnlineSession {
            port: self,
            link,
            capture: None,
            outbound: None,
            idle_timeout: None,
            last_activity: now(),
            ended: None,
            next_dcd_poll: None,
            dcd_seen_high: false,
            link_down: false,
        };
        session.watch_dcd(true);
        let now = now();
        session.link.open(now);
        session.link.up(now);
        if !connected.initial_data.is_empty() {
            session.link.handle_input(now, &connected.initial_data);
            // The machine is online now: let it watch these bytes for NO CARRIER too.
            session
                .port
                .machine
                .handle_input(now, &connected.initial_data);
        }
        session
    }
}

/// What [`OnlineSession::next`] hands back.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// An event of the link.
    Link(LinkEvent),
    /// A datagram received on the link.
    Datagram(Datagram),
    /// An event of the modem machine other than the end of the call (status, unsolicited
    /// codes).
    Modem(ModemEvent),
    /// The call ended under us: `NO CARRIER` from the modem, or EOF on the line. The link has
    /// been told (it reports `LinkDown`); the next events drain it, then [`SessionEvent::Closed`].
    CarrierLost(DisconnectReason),
    /// No datagram in either direction for the idle timeout.
    IdleTimeout,
    /// Nothing more will happen: the call is over and the link is down.
    Closed,
}

/// A [`Link`] running on a modem line after `CONNECT`.
pub struct OnlineSession<S, M> {
    port: ModemPort<S, M>,
    link: Link,
    capture: Option<Capture>,
    outbound: Option<mpsc::Receiver<Vec<u8>>>,
    idle_timeout: Option<Duration>,
    last_activity: Instant,
    ended: Option<DisconnectReason>,
    /// When DCD is read next (every [`DCD_POLL_INTERVAL`]); `None` on transports without it.
    next_dcd_poll: Option<Instant>,
    /// Whether DCD was seen high during this call: only a drop after that ends the call, so a
    /// modem or cable that never raises DCD (`AT&C0` wiring aside) does not hang up at once.
    dcd_seen_high: bool,
    /// The link already went down (and said why): hanging up does not close it again.
    link_down: bool,
}

/// How often an online session reads DCD on a port with modem-control lines.
pub const DCD_POLL_INTERVAL: Duration = Duration::from_secs(1);

impl<S, M> fmt::Debug for OnlineSession<S, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnlineSession")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl<S, M> OnlineSession<S, M>
where
    S: AsyncRead + AsyncWrite + ModemControl + Unpin,
    M: ModemMachine,
{
    /// The link.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The link, to send datagrams or close it; what it sends goes out on the next
    /// [`next`](Self::next).
    pub fn link_mut(&mut self) -> &mut Link {
        &mut self.link
    }

    /// The modem machine.
    pub fn machine(&self) -> &M {
        &self.port.machine
    }

    /// Records every packet into `capture` (`--pcap`).
    pub fn set_capture(&mut self, capture: Capture) {
        self.link.enable_capture();
        self.capture = Some(capture);
    }

    /// Takes the capture back (to keep one pcap file across calls).
    pub fn take_capture(&mut self) -> Option<Capture> {
        self.capture.take()
    }

    /// IP packets (IPv4 or IPv6, by their version) to send on the link (from a TUN device, or a
    /// test); each counts as activity for the idle timeout. Packets while their NCP is not up
    /// are dropped.
    pub fn set_outbound(&mut self, outbound: mpsc::Receiver<Vec<u8>>) {
        self.outbound = Some(outbound);
    }

    /// Takes the outbound channel back (to keep it across calls).
    pub fn take_outbound(&mut self) -> Option<mpsc::Receiver<Vec<u8>>> {
        self.outbound.take()
    }

    /// Whether DCD is watched (the default on ports with modem-control lines); `false` is pppd's
    /// `local`: only `NO CARRIER` and EOF end the call.
    pub fn watch_dcd(&mut self, watch: bool) {
        self.next_dcd_poll = (watch && self.port.stream.has_modem_lines()).then(now);
    }

    /// Reports [`SessionEvent::IdleTimeout`] after this long without datagrams.
    pub fn set_idle_timeout(&mut self, idle_timeout: Option<Duration>) {
        self.idle_timeout = idle_timeout;
        self.last_activity = now();
    }

    /// Why the call ended, once it has.
    pub fn ended(&self) -> Option<DisconnectReason> {
        self.ended
    }

    /// Moves the link's output into the outbox (dropped once the call ended) and records
    /// captures.
    fn collect_output(&mut self) -> io::Result<()> {
        if self.ended.is_none() {
            while let Some(bytes) = self.link.poll_transmit() {
                self.port.outbox.push(bytes);
            }
        } else {
            while self.link.poll_transmit().is_some() {}
            self.port.outbox.clear();
        }
        if let Some(capture) = self.capture.as_mut() {
            while let Some(packet) = self.link.poll_capture() {
                capture.record(&packet)?;
            }
            capture.flush()?;
        }
        Ok(())
    }

    /// Reads DCD; true when it dropped after having been high in this call (the call is then
    /// over: the modem machine and the link are told, as for EOF).
    fn dcd_dropped(&mut self) -> bool {
        let now = now();
        match self.port.stream.carrier_detect() {
            None => {
                debug!("DCD cannot be read on this port: not watched");
                self.next_dcd_poll = None;
                false
            }
            Some(true) => {
                self.dcd_seen_high = true;
                self.next_dcd_poll = Some(now + DCD_POLL_INTERVAL);
                false
            }
            Some(false) if self.dcd_seen_high => {
                info!("DCD dropped: carrier lost");
                self.next_dcd_poll = None;
                self.port.machine.carrier_lost(now);
                self.lose_carrier(DisconnectReason::CarrierLost);
                // The machine's own Disconnected is swallowed: report ours.
                while self.port.machine.poll_event().is_some() {}
                true
            }
            Some(false) => {
                self.next_dcd_poll = Some(now + DCD_POLL_INTERVAL);
                false
            }
        }
    }

    fn lose_carrier(&mut self, reason: DisconnectReason) {
        if self.ended.is_none() {
            debug!("carrier lost: {reason:?}");
            self.ended = Some(reason);
            self.link.down(now());
        }
    }

    /// Runs the link and the modem watch until something happens. Cancel safe: dropping the
    /// future loses no input and truncates no frame.
    ///
    /// # Errors
    ///
    /// Errors writing the line or the capture. (A read error counts as carrier loss.)
    pub async fn next(&mut self) -> io::Result<SessionEvent> {
        loop {
            self.collect_output()?;
            if let Some(event) = self.link.poll_event() {
                self.link_down |= matches!(event, LinkEvent::LinkDown { .. });
                return Ok(SessionEvent::Link(event));
            }
            if let Some(datagram) = self.link.poll_datagram() {
                self.last_activity = now();
                return Ok(SessionEvent::Datagram(datagram));
            }
            // Modem output (NO CARRIER watch, DTR changes).
            while let Some(bytes) = self.port.machine.poll_transmit() {
                if self.ended.is_none() {
                    self.port.outbox.push(bytes);
                }
            }
            if let Some(event) = self.port.machine.poll_event() {
                match event {
                    ModemEvent::Disconnected { reason } => {
                        let first = self.ended.is_none();
                        self.lose_carrier(reason);
                        if first {
                            return Ok(SessionEvent::CarrierLost(reason));
                        }
                        continue;
                    }
                    ModemEvent::SetDtr(level) => {
                        self.port.stream.set_dtr(level)?;
                        continue;
                    }
                    other => return Ok(SessionEvent::Modem(other)),
                }
            }
            if self.ended.is_some() {
                return Ok(SessionEvent::Closed);
            }
            if self.next_dcd_poll.is_some_and(|at| at <= now()) && self.dcd_dropped() {
                return Ok(SessionEvent::CarrierLost(DisconnectReason::CarrierLost));
            }
            let idle_at = self.idle_timeout.map(|idle| self.last_activity + idle);
            if idle_at.is_some_and(|at| at <= now()) {
                self.last_activity = now();
                return Ok(SessionEvent::IdleTimeout);
            }
            let deadline = [
                self.link.poll_timeout(),
                self.port.machine.poll_timeout(),
                idle_at,
                self.next_dcd_poll,
            ]
            .into_iter()
            .flatten()
            .min();
            let outbound = async {
                match self.outbound.as_mut() {
                    Some(channel) => channel.recv().await,
                    None => std::future::pending().await,
                }
            };
            let port = &mut self.port;
            tokio::select! {
                io = read_or_write(&mut port.stream, &mut port.outbox, &mut port.buf) => {
                    let now = now();
                    let read = match io {
                        Io::Wrote(result) => {
                            result?;
                            continue;
                        }
                        Io::Read(read) => read,
                    };
                    match read {
                        Ok(0) | Err(_) => {
                            self.port.machine.carrier_lost(now);
                            self.lose_carrier(DisconnectReason::CarrierLost);
                            // The machine's own Disconnected is swallowed: report ours.
                            while self.port.machine.poll_event().is_some() {}
                            return Ok(SessionEvent::CarrierLost(DisconnectReason::CarrierLost));
                        }
                        Ok(n) => {
                            let bytes = &self.port.buf[..n];
                            self.link.handle_input(now, bytes);
                            self.port.machine.handle_input(now, bytes);
                        }
                    }
                }
                packet = outbound => {
                    match packet {
                        Some(packet) => {
                            self.last_activity = now();
                            let sent = match packet.first().map(|b| b >> 4) {
                                Some(6) => self.link.send_ipv6(now(), &packet),
                                _ => self.link.send_ipv4(now(), &packet),
                            };
                            if let Err(error) = sent {
                                debug!("outbound packet dropped: {error}");
                            }
                        }
                        None => self.outbound = None,
                    }
                }
                () = sleep_until(deadline) => {
                    let now = now();
                    self.link.handle_timeout(now);
                    self.port.machine.handle_timeout(now);
                }
            }
        }
    }

    /// Ends the call: terminates the link (waiting at most `terminate_limit` for the
    /// Terminate-Ack), then hangs the modem up (at most `hangup_limit`). Gives back the port,
    /// in command mode, the capture, and how the call ended.
    pub async fn hang_up(
        mut self,
        reason: CloseReason,
        terminate_limit: Duration,
        hangup_limit: Duration,
        observe: &mut (dyn FnMut(&ModemEvent) + Send),
    ) -> HungUp<S, M> {
        if self.ended.is_none() && !self.link_down {
            self.link.close(now(), reason.clone());
            let until = now() + terminate_limit;
            let _ = tokio::time::timeout_at(until.into(), async {
                loop {
                    match self.next().await {
                        Ok(SessionEvent::Link(LinkEvent::LinkDown { .. }))
                        | Ok(SessionEvent::Closed)
                        | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            })
            .await;
            if self.collect_output().is_ok() && self.ended.is_none() {
                let _ = self.port.outbox.drain(&mut self.port.stream).await;
            }
        }
        let ended = self.ended;
        let capture = self.capture.take();
        let mut port = self.port;
        let result = match ended {
            Some(reason) => Ok(reason),
            None => port.hang_up(reason, hangup_limit, observe).await,
        };
        HungUp {
            port,
            capture,
            result,
        }
    }

    /// The port back without hanging up (after carrier loss), and the link.
    pub fn into_parts(self) -> (ModemPort<S, M>, Link) {
        (self.port, self.link)
    }
}

/// What [`OnlineSession::hang_up`] gives back.
#[derive(Debug)]
pub struct HungUp<S, M> {
    /// The port, in command mode (start the machine again to redial).
    pub port: ModemPort<S, M>,
    /// The capture, to go on recording the next call into the same file.
    pub capture: Option<Capture>,
    /// How the call ended, or why the hang-up was not confirmed.
    pub result: Result<DisconnectReason, SerialError>,
}

/// A simulated modem [`bridge_modem`] can run: the shape of `ppp_modem::sim::SimModem`.
///
/// Implement it for a wrapper around `SimModem` (the `sim` feature of `ppp-modem` is a
/// dev-dependency feature, so the implementation lives with the tests that enable it).
pub trait SimulatedModem {
    /// Bytes from the host (the DTE) at `now`.
    fn handle_input(&mut self, now: Instant, bytes: &[u8]);
    /// The clock reached `now`.
    fn handle_timeout(&mut self, now: Instant);
    /// When `handle_timeout` should be called next.
    fn poll_timeout(&self) -> Option<Instant>;
    /// The next bytes for the host.
    fn poll_output(&mut self) -> Option<Vec<u8>>;
    /// Bytes from the far end of the call.
    fn send_from_peer(&mut self, bytes: &[u8]);
    /// Bytes the host sent while online, for the far end.
    fn take_peer_data(&mut self) -> Vec<u8>;
    /// The host set DTR.
    fn set_dtr(&mut self, now: Instant, level: bool);
}

/// Runs `modem` between the `host` stream (the side that speaks AT: our dial-out client, or
/// pppd with a chat script) and the `peer` stream (the far end of the call: our ppp-server in
/// null-modem mode, or pppd), until the host side closes; returns the modem for inspection.
///
/// DTR levels arrive on `dtr` (see [`dtr_line`]). Peer bytes while no call is up are dropped,
/// as a real modem would. After EOF or an error on the peer side the bridge stops using that
/// side.
///
/// # Errors
///
/// I/O errors on either stream.
pub async fn bridge_modem<M, H, P>(
    mut modem: M,
    mut host: H,
    mut peer: P,
    mut dtr: Option<watch::Receiver<bool>>,
) -> io::Result<M>
where
    M: SimulatedModem,
    H: AsyncRead + AsyncWrite + Unpin,
    P: AsyncRead + AsyncWrite + Unpin,
{
    let mut host_buf = vec![0u8; 4096];
    let mut peer_buf = vec![0u8; 4096];
    let mut peer_open = true;
    loop {
        while let Some(bytes) = modem.poll_output() {
            host.write_all(&bytes).await?;
        }
        host.flush().await?;
        let to_peer = modem.take_peer_data();
        if !to_peer.is_empty() && peer_open && peer.write_all(&to_peer).await.is_err() {
            peer_open = false;
        }
        let deadline = modem.poll_timeout();
        let dtr_changed = async {
            match dtr.as_mut() {
                Some(levels) => levels.changed().await,
                None => std::future::pending().await,
            }
        };
        let peer_read = async {
            if peer_open {
                peer.read(&mut peer_buf).await
            } else {
                std::future::pending().await
            }
        };
        tokio::select! {
            biased;
            () = sleep_until(deadline) => modem.handle_timeout(now()),
            changed = dtr_changed => {
                let now = now();
                match changed {
                    Ok(()) => {
                        let level = dtr.as_mut().is_some_and(|levels| *levels.borrow_and_update());
                        modem.set_dtr(now, level);
                    }
                    Err(_) => dtr = None,
                }
            }
            read = host.read(&mut host_buf) => {
                let now = now();
                if modem.poll_timeout().is_some_and(|at| at <= now) {
                    modem.handle_timeout(now);
                }
                match read? {
                    0 => return Ok(modem),
                    n => modem.handle_input(now, &host_buf[..n]),
                }
            }
            read = peer_read => {
                match read {
                    Ok(n) if n > 0 => modem.send_from_peer(&peer_buf[..n]),
                    _ => peer_open = false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppp_link::LinkConfig;
    use ppp_modem::{DialerConfig, HangupMethod};
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use tokio::io::ReadBuf;

    #[test]
    fn flow_control_names() {
        for (text, expected) in [
            ("none", Some(FlowControl::None)),
            ("Hardware", Some(FlowControl::Hardware)),
            ("rtscts", Some(FlowControl::Hardware)),
            ("xonxoff", Some(FlowControl::Software)),
            ("software", Some(FlowControl::Software)),
            ("sometimes", None),
        ] {
            assert_eq!(text.parse::<FlowControl>().ok(), expected, "{text}");
        }
        assert_eq!(FlowControl::Hardware.to_string(), "hardware");
    }

    /// A modem that says OK to every line and CONNECT to `ATD`, then sends `after_connect`.
    async fn scripted_modem(mut line: tokio::io::DuplexStream, after_connect: &'static [u8]) {
        let mut buf = [0u8; 256];
        let mut pending = Vec::new();
        loop {
            let n = match line.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            pending.extend_from_slice(&buf[..n]);
            while let Some(end) = pending.iter().position(|&b| b == b'\r') {
                let command: Vec<u8> = pending.drain(..=end).collect();
                if command.starts_with(b"ATD") {
                    let mut reply = b"\r\nCONNECT 9600\r\n".to_vec();
                    reply.extend_from_slice(after_connect);
                    let _ = line.write_all(&reply).await;
                    // Online: swallow everything until the line closes.
                    while matches!(line.read(&mut buf).await, Ok(n) if n > 0) {}
                    return;
                }
                let _ = line.write_all(b"\r\nOK\r\n").await;
            }
        }
    }

    fn phone_dialer() -> Dialer {
        let mut config = DialerConfig::phone("5551234");
        config.engine.hangup_method = HangupMethod::Escape;
        Dialer::new(config).expect("config")
    }

    #[tokio::test]
    async fn connect_hands_over_the_initial_data() {
        let (host, modem) = tokio::io::duplex(4096);
        tokio::spawn(scripted_modem(modem, b"~\xff\x7d\x23"));
        let mut port = ModemPort::new(host, phone_dialer());
        port.machine_mut().open(now()).expect("open");
        let mut seen = Vec::new();
        let connected = port
            .run_until_connected(&mut |event| seen.push(format!("{event:?}")))
            .await
            .expect("connected");
        assert_eq!(connected.rate, Some(9600));
        assert_eq!(connected.initial_data, b"~\xff\x7d\x23");
        let mut session = port.into_session(
            Link::new(LinkConfig::default(), ppp_link::Random::seeded(1)),
            connected,
        );
        let first = tokio::time::timeout(Duration::from_secs(2), session.next())
            .await
            .expect("an event")
            .expect("no error");
        assert!(matches!(first, SessionEvent::Link(_)), "{first:?}");
    }

    #[tokio::test]
    async fn no_carrier_while_online_takes_the_link_down() {
        let (host, modem) = tokio::io::duplex(4096);
        tokio::spawn(scripted_modem(modem, b"\r\nNO CARRIER\r\n"));
        let mut port = ModemPort::new(host, phone_dialer());
        port.machine_mut().open(now()).expect("open");
        let connected = port
            .run_until_connected(&mut |_| {})
            .await
            .expect("connected");
        let mut session = port.into_session(
            Link::new(LinkConfig::default(), ppp_link::Random::seeded(1)),
            connected,
        );
        let mut lost = None;
        let mut link_down = false;
        let result = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match session.next().await.expect("no error") {
                    SessionEvent::CarrierLost(reason) => lost = Some(reason),
                    SessionEvent::Link(LinkEvent::LinkDown { .. }) => link_down = true,
                    SessionEvent::Closed => break,
                    _ => {}
                }
            }
        })
        .await;
        assert!(result.is_ok(), "the session did not close");
        assert_eq!(lost, Some(DisconnectReason::NoCarrier));
        // LCP never opened here, so the link has no LinkDown to report; it is told all the same.
        let _ = link_down;
        assert_eq!(session.ended(), Some(DisconnectReason::NoCarrier));
    }

    /// An in-memory line with a DCD level the test sets.
    struct DcdLine {
        inner: tokio::io::DuplexStream,
        dcd: Arc<std::sync::atomic::AtomicBool>,
    }

    impl ModemControl for DcdLine {
        fn has_modem_lines(&self) -> bool {
            true
        }
        fn carrier_detect(&mut self) -> Option<bool> {
            Some(self.dcd.load(std::sync::atomic::Ordering::Relaxed))
        }
    }

    impl AsyncRead for DcdLine {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for DcdLine {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            data: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.inner).poll_write(cx, data)
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }
        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    /// An online session on a [`DcdLine`] whose DCD starts at `dcd`; the flag sets it later.
    async fn dcd_session(
        dcd: bool,
    ) -> (
        OnlineSession<DcdLine, Dialer>,
        Arc<std::sync::atomic::AtomicBool>,
    ) {
        let (host, modem) = tokio::io::duplex(4096);
        tokio::spawn(scripted_modem(modem, b""));
        let level = Arc::new(std::sync::atomic::AtomicBool::new(dcd));
        let line = DcdLine {
            inner: host,
            dcd: Arc::clone(&level),
        };
        let mut port = ModemPort::new(line, phone_dialer());
        port.machine_mut().open(now()).expect("open");
        let connected = port
            .run_until_connected(&mut |_| {})
            .await
            .expect("connected");
        let session = port.into_session(
            Link::new(LinkConfig::default(), ppp_link::Random::seeded(1)),
            connected,
        );
        (session, level)
    }

    /// Runs `session` for at most `limit`; the reason of a carrier loss within it, if any.
    async fn carrier_loss_within(
        session: &mut OnlineSession<DcdLine, Dialer>,
        limit: Duration,
    ) -> Option<DisconnectReason> {
        tokio::time::timeout(limit, async {
            loop {
                if let SessionEvent::CarrierLost(reason) = session.next().await.expect("no error") {
                    return reason;
                }
            }
        })
        .await
        .ok()
    }

    /// DCD low from the start (a modem that does not drive it) ends nothing; DCD seen high and
    /// then dropped ends the call as carrier loss, with no `NO CARRIER` from the modem.
    #[tokio::test]
    async fn dcd_drop_while_online_is_carrier_loss() {
        use std::sync::atomic::Ordering::Relaxed;
        let (mut session, dcd) = dcd_session(false).await;
        let quiet = carrier_loss_within(
            &mut session,
            DCD_POLL_INTERVAL * 2 + Duration::from_millis(500),
        )
        .await;
        assert!(
            quiet.is_none(),
            "DCD never high: the call goes on ({quiet:?})"
        );
        assert_eq!(session.ended(), None);
        dcd.store(true, Relaxed);
        assert_eq!(
            carrier_loss_within(&mut session, DCD_POLL_INTERVAL * 2).await,
            None
        );
        dcd.store(false, Relaxed);
        let lost = carrier_loss_within(&mut session, DCD_POLL_INTERVAL * 3).await;
        assert_eq!(
            lost,
            Some(DisconnectReason::CarrierLost),
            "DCD drop noticed"
        );
        assert_eq!(session.ended(), Some(DisconnectReason::CarrierLost));
    }

    /// `watch_dcd(false)` (pppd `local`): a DCD drop ends nothing.
    #[tokio::test]
    async fn dcd_ignored_when_not_watched() {
        let (mut session, dcd) = dcd_session(true).await;
        session.watch_dcd(false);
        dcd.store(false, std::sync::atomic::Ordering::Relaxed);
        let quiet = carrier_loss_within(&mut session, DCD_POLL_INTERVAL * 2).await;
        assert!(quiet.is_none(), "{quiet:?}");
        assert_eq!(session.ended(), None);
    }

    #[tokio::test]
    async fn eof_before_connect_is_closed() {
        let (host, modem) = tokio::io::duplex(64);
        drop(modem);
        let mut port = ModemPort::new(host, phone_dialer());
        port.machine_mut().open(now()).expect("open");
        let result = port.run_until_connected(&mut |_| {}).await;
        assert!(
            matches!(result, Err(SerialError::Closed | SerialError::Io(_))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn dtr_levels_reach_the_channel() {
        let (stream, _other) = tokio::io::duplex(64);
        let (mut stream, mut levels) = dtr_line(stream);
        assert!(stream.has_modem_lines());
        stream.set_dtr(false).expect("set");
        levels.changed().await.expect("changed");
        assert!(!*levels.borrow_and_update());
        stream.set_dtr(true).expect("set");
        levels.changed().await.expect("changed");
        assert!(*levels.borrow_and_update());
    }

    /// A minimal simulated modem: `OK` to every line, online after `ATD`, a pipe afterwards.
    #[derive(Default)]
    struct PipeModem {
        online: bool,
        line: Vec<u8>,
        output: Vec<Vec<u8>>,
        to_peer: Vec<u8>,
        dtr_drops: u32,
    }

    impl SimulatedModem for PipeModem {
        fn handle_input(&mut self, _now: Instant, bytes: &[u8]) {
            if self.online {
                self.to_peer.extend_from_slice(bytes);
                return;
            }
            for &byte in bytes {
                if byte == b'\r' {
                    let line = std::mem::take(&mut self.line);
                    if line.starts_with(b"ATD") {
                        self.online = true;
                        self.output.push(b"\r\nCONNECT\r\n".to_vec());
                    } else {
                        self.output.push(b"\r\nOK\r\n".to_vec());
                    }
                } else {
                    self.line.push(byte);
                }
            }
        }
        fn handle_timeout(&mut self, _now: Instant) {}
        fn poll_timeout(&self) -> Option<Instant> {
            None
        }
        fn poll_output(&mut self) -> Option<Vec<u8>> {
            (!self.output.is_empty()).then(|| self.output.remove(0))
        }
        fn send_from_peer(&mut self, bytes: &[u8]) {
            if self.online {
                self.output.push(bytes.to_vec());
            }
        }
        fn take_peer_data(&mut self) -> Vec<u8> {
            std::mem::take(&mut self.to_peer)
        }
        fn set_dtr(&mut self, _now: Instant, level: bool) {
            if !level {
                self.dtr_drops += 1;
                self.online = false;
            }
        }
    }

    #[tokio::test]
    async fn the_bridge_passes_data_only_while_online_and_applies_dtr() {
        let (mut host, modem_host) = tokio::io::duplex(4096);
        let (modem_peer, mut peer) = tokio::io::duplex(4096);
        let (dtr_stream, levels) = dtr_line(tokio::io::duplex(8).0);
        let mut dtr_stream = dtr_stream;
        let bridge = tokio::spawn(bridge_modem(
            PipeModem::default(),
            modem_host,
            modem_peer,
            Some(levels),
        ));
        // Before the call, peer bytes are dropped.
        peer.write_all(b"lost").await.expect("write");
        host.write_all(b"AT\r").await.expect("write");
        let mut buf = [0u8; 64];
        let n = host.read(&mut buf).await.expect("read");
        assert_eq!(&buf[..n], b"\r\nOK\r\n");
        host.write_all(b"ATD*99#\r").await.expect("write");
        let n = host.read(&mut buf).await.expect("read");
        assert_eq!(&buf[..n], b"\r\nCONNECT\r\n");
        host.write_all(b"ppp out").await.expect("write");
        let n = peer.read(&mut buf).await.expect("read");
        assert_eq!(&buf[..n], b"ppp out");
        peer.write_all(b"ppp in").await.expect("write");
        let n = host.read(&mut buf).await.expect("read");
        assert_eq!(&buf[..n], b"ppp in");
        dtr_stream.set_dtr(false).expect("dtr");
        tokio::task::yield_now().await;
        drop(host);
        let modem = tokio::time::timeout(Duration::from_secs(2), bridge)
            .await
            .expect("the bridge ends with the host side")
            .expect("no panic")
            .expect("no error");
        assert_eq!(modem.dtr_drops, 1);
        assert!(!modem.online);
    }
}
