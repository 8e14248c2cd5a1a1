//! Several modem lines online at once under one core: the members of a Multilink bundle
//! ([`Multilink`], a dial-out client with several ports) or the calls of a server
//! ([`LinkTable`], where a second call of the same peer joins its bundle).
//!
//! Each line is a [`ModemPort`] that reached `CONNECT` (see [`ModemPort::run_until_connected`]):
//! its modem machine keeps watching the line for `NO CARRIER`, and DCD is read every
//! [`DCD_POLL_INTERVAL`] where the port has it, as in an [`OnlineSession`](crate::serial::OnlineSession).
//! A line whose call ends is reported ([`LinesEvent::CarrierLost`]) and its link told (its lower
//! layer is down); the others carry on. The owner takes a line back with
//! [`ModemLines::take_line`] to hang it up and redial it, while the rest keep running.
//!
//! The core is anything that implements [`LineSet`]: the owner adds a line's link to the core
//! (`Multilink::add_member` + `open` + `up`, or `LinkTable::add_link`) and then the line here
//! ([`ModemLines::add_line`]); datagrams to send go to the core directly
//! ([`ModemLines::core_mut`]) and leave on the next [`ModemLines::next`].
//!
//! # Cancel safety
//!
//! [`ModemLines::next`] is cancel safe: bytes for each line wait in the line's own outbound queue
//! that keeps its progress, input is handed to the core as soon as it is read, and a poll of the
//! lines completes after one read or one write.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use ppp_link::{LinkConfig, LinkControl, Multilink, MultilinkEvent, LinkEvent, Random};
//! use ppp_modem::{Dialer, DialerConfig};
//! use ppp_tokio::bundle::{LinesEvent, ModemLines};
//! use ppp_tokio::serial::{self, FlowControl, ModemPort, PortConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = LinkConfig::default();
//! config.lcp.mrru = Some(1500); // Multilink
//! let config = Arc::new(config);
//! let random = Random::from_os()?;
//! let mut lines = ModemLines::new(Multilink::new(config.clone(), random.fork()));
//! for (index, path) in ["/dev/ttyUSB0", "/dev/ttyUSB2"].into_iter().enumerate() {
//!     let port = serial::open_port(&PortConfig::new(path, 115_200, FlowControl::Hardware))?;
//!     let mut modem = ModemPort::new(port, Dialer::new(DialerConfig::phone("5551234"))?);
//!     modem.machine_mut().open(serial::now())?;
//!     let connected = modem.run_until_connected(&mut |_| {}).await?;
//!     let now = serial::now();
//!     let bundle = lines.core_mut();
//!     bundle.add_member(now, index, LinkControl::new(config.clone(), random.fork()));
//!     bundle.open(now, &index);
//!     bundle.up(now, &index);
//!     lines.add_line(index, modem, connected);
//! }
//! loop {
//!     match lines.next().await? {
//!         LinesEvent::Core(MultilinkEvent::Network(LinkEvent::IpUp { local, .. })) => {
//!             println!("bundle up: {local}");
//!         }
//!         LinesEvent::CarrierLost { line, reason } => {
//!             println!("line {line}: {reason}");
//!             let _port = lines.take_line(line); // hang up, redial...
//!         }
//!         LinesEvent::Core(MultilinkEvent::BundleDown) => break,
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use ppp_link::{
    CapturedPacket, CloseReason, Datagram, LinkTable, Multilink, MultilinkEvent, TableEvent, UnitId,
};
use ppp_modem::{DisconnectReason, ModemEvent};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tracing::{debug, info};

use crate::serial::{
    Connected, DCD_POLL_INTERVAL, ModemControl, ModemMachine, ModemPort, SerialError,
};
use crate::{Capture, Io, now, sleep_until};

/// A core that runs links over several lines, each keyed by its line number: what
/// [`ModemLines`] drives.
pub trait LineSet {
    /// What the core reports.
    type Event;
    /// A received datagram, as the core hands it out.
    type Datagram;

    /// Bytes received on `line`.
    fn handle_input(&mut self, now: Instant, line: usize, bytes: &[u8]);
    /// The call on `line` ended under its link (carrier lost): its lower layer is down.
    fn lower_down(&mut self, now: Instant, line: usize);
    /// `line` is gone: its link leaves the core.
    fn remove_line(&mut self, now: Instant, line: usize);
    /// The core's deadline came.
    fn handle_timeout(&mut self, now: Instant);
    /// The next bytes to send, and on which line.
    fn poll_transmit(&mut self) -> Option<(usize, Vec<u8>)>;
    /// The next event.
    fn poll_event(&mut self) -> Option<Self::Event>;
    /// The next datagram received.
    fn poll_datagram(&mut self) -> Option<Self::Datagram>;
    /// When [`handle_timeout`](Self::handle_timeout) is due.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Starts recording packets, where the core can.
    fn enable_capture(&mut self) {}
    /// The next packet recorded.
    fn poll_capture(&mut self) -> Option<CapturedPacket> {
        None
    }
}

impl LineSet for Multilink<usize> {
    type Event = MultilinkEvent<usize>;
    type Datagram = Datagram;

    fn handle_input(&mut self, now: Instant, line: usize, bytes: &[u8]) {
        Multilink::handle_input(self, now, &line, bytes);
    }

    fn lower_down(&mut self, now: Instant, line: usize) {
        self.down(now, &line);
    }

    fn remove_line(&mut self, now: Instant, line: usize) {
        let _ = self.remove_member(now, &line);
    }

    fn handle_timeout(&mut self, now: Instant) {
        Multilink::handle_timeout(self, now);
    }

    fn poll_transmit(&mut self) -> Option<(usize, Vec<u8>)> {
        Multilink::poll_transmit(self)
    }

    fn poll_event(&mut self) -> Option<Self::Event> {
        Multilink::poll_event(self)
    }

    fn poll_datagram(&mut self) -> Option<Datagram> {
        Multilink::poll_datagram(self)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Multilink::poll_timeout(self)
    }

    fn enable_capture(&mut self) {
        Multilink::enable_capture(self);
    }

    fn poll_capture(&mut self) -> Option<CapturedPacket> {
        Multilink::poll_capture(self).map(|(_, packet)| packet)
    }
}

impl LineSet for LinkTable<usize> {
    type Event = TableEvent<usize>;
    type Datagram = (UnitId<usize>, Datagram);

    fn handle_input(&mut self, now: Instant, line: usize, bytes: &[u8]) {
        LinkTable::handle_input(self, now, line, bytes);
    }

    fn lower_down(&mut self, now: Instant, line: usize) {
        self.down(now, line);
    }

    fn remove_line(&mut self, now: Instant, line: usize) {
        // `down` removes a link whatever its state; a second call finds nothing.
        self.down(now, line);
    }

    fn handle_timeout(&mut self, now: Instant) {
        LinkTable::handle_timeout(self, now);
    }

    fn poll_transmit(&mut self) -> Option<(usize, Vec<u8>)> {
        LinkTable::poll_transmit(self)
    }

    fn poll_event(&mut self) -> Option<Self::Event> {
        LinkTable::poll_event(self)
    }

    fn poll_datagram(&mut self) -> Option<Self::Datagram> {
        LinkTable::poll_datagram(self)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        LinkTable::poll_timeout(self)
    }
}

/// What [`ModemLines::next`] hands back.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinesEvent<E, D> {
    /// An event of the core (a member's LCP, the bundle's IPCP, a link joining a bundle, ...).
    Core(E),
    /// A datagram received.
    Datagram(D),
    /// An event of a line's modem machine other than the end of its call.
    Modem {
        /// The line.
        line: usize,
        /// What its modem said.
        event: ModemEvent,
    },
    /// The call on a line ended under us: `NO CARRIER`, DCD dropped, EOF or an error on the
    /// line. Its link has been told; take the line back with [`ModemLines::take_line`].
    CarrierLost {
        /// The line.
        line: usize,
        /// How the call ended.
        reason: DisconnectReason,
    },
}

/// One line online.
struct Line<S, M> {
    key: usize,
    port: ModemPort<S, M>,
    /// The call ended (the line is no longer read nor written).
    ended: Option<DisconnectReason>,
    /// When DCD is read next; `None` where it is not watched.
    next_dcd_poll: Option<Instant>,
    /// DCD was seen high during this call: only a drop after that ends it.
    dcd_seen_high: bool,
}

/// Several modem lines online under one core `C` ([`Multilink`] or [`LinkTable`]), each a
/// [`ModemPort`] on a stream `S` with its modem machine `M`. See the [module docs](self).
pub struct ModemLines<C: LineSet, S, M> {
    core: C,
    lines: Vec<Line<S, M>>,
    capture: Option<Capture>,
    watch_dcd: bool,
    /// Which line is polled first next time (so a busy line cannot starve the others).
    next_poll: usize,
    pending: VecDeque<LinesEvent<C::Event, C::Datagram>>,
}

impl<C: LineSet, S, M> fmt::Debug for ModemLines<C, S, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModemLines")
            .field(
                "lines",
                &self
                    .lines
                    .iter()
                    .map(|l| (l.key, l.ended))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl<C, S, M> ModemLines<C, S, M>
where
    C: LineSet,
    S: AsyncRead + AsyncWrite + ModemControl + Unpin,
    M: ModemMachine,
{
    /// No lines yet, over `core`.
    pub fn new(core: C) -> Self {
        ModemLines {
            core,
            lines: Vec::new(),
            capture: None,
            watch_dcd: true,
            next_poll: 0,
            pending: VecDeque::new(),
        }
    }

    /// The core.
    pub fn core(&self) -> &C {
        &self.core
    }

    /// The core, to add links, send datagrams or close links; what it sends goes out on the
    /// next [`next`](Self::next).
    pub fn core_mut(&mut self) -> &mut C {
        &mut self.core
    }

    /// Whether DCD is watched on lines that have it (the default); `false` is pppd's `local`.
    /// Applies to lines added afterwards.
    pub fn watch_dcd(&mut self, watch: bool) {
        self.watch_dcd = watch;
    }

    /// Records every packet the core lets us see into `capture` (`--pcap`).
    pub fn set_capture(&mut self, capture: Capture) {
        self.core.enable_capture();
        self.capture = Some(capture);
    }

    /// Takes the capture back.
    pub fn take_capture(&mut self) -> Option<Capture> {
        self.capture.take()
    }

    /// Adds a line that reached `CONNECT`; its link must already be in the core (see the
    /// [module docs](self)). The bytes that came with `CONNECT` go to the core at once. A line
    /// number already online is replaced (its port dropped).
    pub fn add_line(&mut self, line: usize, port: ModemPort<S, M>, connected: Connected) {
        self.lines.retain(|l| l.key != line);
        let next_dcd_poll = (self.watch_dcd && port.stream.has_modem_lines()).then(now);
        self.lines.push(Line {
            key: line,
            port,
            ended: None,
            next_dcd_poll,
            dcd_seen_high: false,
        });
        if !connected.initial_data.is_empty() {
            let now = now();
            self.core.handle_input(now, line, &connected.initial_data);
            if let Some(entry) = self.lines.last_mut() {
                // Online now: the machine watches these bytes for NO CARRIER too.
                entry
                    .port
                    .machine
                    .handle_input(now, &connected.initial_data);
            }
        }
    }

    /// The line numbers online (or ended and not yet taken back), in the order added.
    pub fn lines(&self) -> impl Iterator<Item = usize> + '_ {
        self.lines.iter().map(|l| l.key)
    }

    /// How many lines there are.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether there is no line.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// How the call on `line` ended, once it has; `None` while it is up (or unknown).
    pub fn ended(&self, line: usize) -> Option<DisconnectReason> {
        self.lines.iter().find(|l| l.key == line)?.ended
    }

    /// A line's modem machine.
    pub fn machine(&self, line: usize) -> Option<&M> {
        self.lines
            .iter()
            .find(|l| l.key == line)
            .map(|l| l.port.machine())
    }

    /// Takes `line` out: its link leaves the core (told first that its lower layer is down,
    /// if its call had not ended) and the port comes back, in whatever state its modem is, to
    /// be hung up ([`ModemPort::hang_up`]) and dialled again. Bytes still queued for it are
    /// dropped: close its link first and let [`next`](Self::next) run for a clean end.
    pub fn take_line(&mut self, line: usize) -> Option<ModemPort<S, M>> {
        let index = self.lines.iter().position(|l| l.key == line)?;
        let mut entry = self.lines.remove(index);
        let now = now();
        if entry.ended.is_none() {
            self.core.lower_down(now, line);
        }
        self.core.remove_line(now, line);
        entry.port.outbox.clear();
        Some(entry.port)
    }

    /// Takes every line out (see [`take_line`](Self::take_line)).
    pub fn take_all(&mut self) -> Vec<(usize, ModemPort<S, M>)> {
        let keys: Vec<usize> = self.lines().collect();
        keys.into_iter()
            .filter_map(|key| self.take_line(key).map(|port| (key, port)))
            .collect()
    }

    /// Writes what waits for the lines still up (a last Terminate-Ack before a hang-up).
    /// Cancel safe; bound it with a timeout.
    ///
    /// # Errors
    ///
    /// Errors writing the capture; a line that cannot be written is left as it is.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.collect_output()?;
        for line in self.lines.iter_mut().filter(|l| l.ended.is_none()) {
            if let Err(error) = line.port.outbox.drain(&mut line.port.stream).await {
                debug!("line {}: {error}", line.key);
            }
        }
        Ok(())
    }

    /// Moves the core's output into the lines' queues (dropped for lines whose call ended) and
    /// records captures.
    fn collect_output(&mut self) -> io::Result<()> {
        while let Some((key, bytes)) = self.core.poll_transmit() {
            if let Some(line) = self
                .lines
                .iter_mut()
                .find(|l| l.key == key && l.ended.is_none())
            {
                line.port.outbox.push(bytes);
            }
        }
        if let Some(capture) = self.capture.as_mut() {
            let mut recorded = false;
            while let Some(packet) = self.core.poll_capture() {
                capture.record(&packet)?;
                recorded = true;
            }
            if recorded {
                capture.flush()?;
            }
        }
        Ok(())
    }

    /// The call on line `index` is over: the core is told its lower layer is down.
    fn lose_carrier(&mut self, index: usize, reason: DisconnectReason) -> bool {
        let line = &mut self.lines[index];
        if line.ended.is_some() {
            return false;
        }
        debug!("line {}: call ended ({reason})", line.key);
        line.ended = Some(reason);
        line.next_dcd_poll = None;
        line.port.outbox.clear();
        let key = line.key;
        self.core.lower_down(now(), key);
        true
    }

    /// Reads DCD on line `index`; true when it dropped after having been high in this call.
    fn dcd_dropped(&mut self, index: usize) -> bool {
        let now = now();
        let line = &mut self.lines[index];
        match line.port.stream.carrier_detect() {
            None => {
                debug!("line {}: DCD cannot be read: not watched", line.key);
                line.next_dcd_poll = None;
                false
            }
            Some(true) => {
                line.dcd_seen_high = true;
                line.next_dcd_poll = Some(now + DCD_POLL_INTERVAL);
                false
            }
            Some(false) if line.dcd_seen_high => {
                info!("line {}: DCD dropped: carrier lost", line.key);
                line.port.machine.carrier_lost(now);
                // The machine's own Disconnected is swallowed: report ours.
                while line.port.machine.poll_event().is_some() {}
                self.lose_carrier(index, DisconnectReason::CarrierLost)
            }
            Some(false) => {
                line.next_dcd_poll = Some(now + DCD_POLL_INTERVAL);
                false
            }
        }
    }

    /// Looks at the modem machines (output, events, DCD) for something to report.
    fn poll_lines(&mut self) -> Option<LinesEvent<C::Event, C::Datagram>> {
        for index in 0..self.lines.len() {
            let line = &mut self.lines[index];
            while let Some(bytes) = line.port.machine.poll_transmit() {
                if line.ended.is_none() {
                    line.port.outbox.push(bytes);
                }
            }
            while let Some(event) = self.lines[index].port.machine.poll_event() {
                let key = self.lines[index].key;
                match event {
                    ModemEvent::Disconnected { reason } => {
                        if self.lose_carrier(index, reason) {
                            return Some(LinesEvent::CarrierLost { line: key, reason });
                        }
                    }
                    ModemEvent::SetDtr(level) => {
                        if let Err(error) = self.lines[index].port.stream.set_dtr(level) {
                            debug!("line {key}: DTR: {error}");
                        }
                    }
                    event => return Some(LinesEvent::Modem { line: key, event }),
                }
            }
            let line = &self.lines[index];
            if line.ended.is_none()
                && line.next_dcd_poll.is_some_and(|at| at <= now())
                && self.dcd_dropped(index)
            {
                return Some(LinesEvent::CarrierLost {
                    line: self.lines[index].key,
                    reason: DisconnectReason::CarrierLost,
                });
            }
        }
        None
    }

    /// Runs the lines and the core until something happens. With no line and no deadline of
    /// the core it waits forever: put it in a `select!` with what adds lines. Cancel safe.
    ///
    /// # Errors
    ///
    /// Errors writing the capture. (An error reading or writing a line ends that line's call.)
    pub async fn next(&mut self) -> io::Result<LinesEvent<C::Event, C::Datagram>> {
        loop {
            self.collect_output()?;
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            if let Some(event) = self.core.poll_event() {
                return Ok(LinesEvent::Core(event));
            }
            if let Some(datagram) = self.core.poll_datagram() {
                return Ok(LinesEvent::Datagram(datagram));
            }
            if let Some(event) = self.poll_lines() {
                // The core reacts to a line going down: its events come next.
                self.collect_output()?;
                return Ok(event);
            }
            let deadline = self
                .lines
                .iter()
                .filter(|l| l.ended.is_none())
                .flat_map(|l| [l.port.machine.poll_timeout(), l.next_dcd_poll])
                .chain([self.core.poll_timeout()])
                .flatten()
                .min();
            let start = self.next_poll;
            tokio::select! {
                (index, io) = read_or_write_any(&mut self.lines, start) => {
                    self.next_poll = index + 1;
                    let now = now();
                    let read = match io {
                        Io::Wrote(Ok(())) => continue,
                        Io::Wrote(Err(error)) => Err(error),
                        Io::Read(read) => read,
                    };
                    match read {
                        Ok(0) | Err(_) => {
                            if let Err(error) = &read {
                                debug!("line {}: {error}", self.lines[index].key);
                            }
                            let line = &mut self.lines[index];
                            line.port.machine.carrier_lost(now);
                            while line.port.machine.poll_event().is_some() {}
                            let key = line.key;
                            if self.lose_carrier(index, DisconnectReason::CarrierLost) {
                                self.pending.push_back(LinesEvent::CarrierLost {
                                    line: key,
                                    reason: DisconnectReason::CarrierLost,
                                });
                            }
                        }
                        Ok(n) => {
                            let line = &mut self.lines[index];
                            let bytes = &line.port.buf[..n];
                            self.core.handle_input(now, line.key, bytes);
                            line.port.machine.handle_input(now, bytes);
                        }
                    }
                }
                () = sleep_until(deadline) => {
                    let now = now();
                    if self.core.poll_timeout().is_some_and(|at| at <= now) {
                        self.core.handle_timeout(now);
                    }
                    for line in &mut self.lines {
                        if line.port.machine.poll_timeout().is_some_and(|at| at <= now) {
                            line.port.machine.handle_timeout(now);
                        }
                    }
                }
            }
        }
    }
}

/// Waits until one of the lines still up can take more of its outbox (written, progress kept)
/// or has bytes for its buffer; returns its index. Cancel safe: it completes on a single poll
/// that did one read or one write. Pending forever without such a line.
async fn read_or_write_any<S: AsyncRead + AsyncWrite + Unpin, M>(
    lines: &mut [Line<S, M>],
    start: usize,
) -> (usize, Io) {
    std::future::poll_fn(|cx| {
        let count = lines.len();
        for step in 0..count {
            let index = (start + step) % count;
            let line = &mut lines[index];
            if line.ended.is_some() {
                continue;
            }
            let port = &mut line.port;
            if let Poll::Ready(result) = port.outbox.poll_write_some(&mut port.stream, cx) {
                return Poll::Ready((index, Io::Wrote(result)));
            }
            let mut read = ReadBuf::new(&mut port.buf);
            if let Poll::Ready(result) = Pin::new(&mut port.stream).poll_read(cx, &mut read) {
                return Poll::Ready((index, Io::Read(result.map(|()| read.filled().len()))));
            }
        }
        Poll::Pending
    })
    .await
}

/// What [`hang_up_all`] gives back for each line: its number, its port in command mode, and
/// how the hang-up went.
pub type HungUpLine<S, M> = (
    usize,
    ModemPort<S, M>,
    Result<DisconnectReason, SerialError>,
);

/// One line's hang-up in progress.
type HangUp<'a, S, M> = Pin<Box<dyn Future<Output = HungUpLine<S, M>> + Send + 'a>>;

/// Hangs every port up at once (each waiting at most `limit` for its modem), and gives them
/// back in the order given.
pub async fn hang_up_all<'a, S, M>(
    ports: Vec<(usize, ModemPort<S, M>)>,
    reason: CloseReason,
    limit: Duration,
) -> Vec<HungUpLine<S, M>>
where
    S: AsyncRead + AsyncWrite + ModemControl + Unpin + Send + 'a,
    M: ModemMachine + Send + 'a,
{
    let futures: Vec<HangUp<'a, S, M>> = ports
        .into_iter()
        .map(|(key, mut port)| {
            let reason = reason.clone();
            let future: HangUp<'a, S, M> = Box::pin(async move {
                let mut observe = |event: &ModemEvent| debug!("line {key}: modem: {event:?}");
                let result = port.hang_up(reason, limit, &mut observe).await;
                (key, port, result)
            });
            future
        })
        .collect();
    join_all(futures).await
}

/// Runs every future to completion, concurrently; their outputs in the order given.
async fn join_all<T>(mut futures: Vec<Pin<Box<dyn Future<Output = T> + Send + '_>>>) -> Vec<T> {
    let mut outputs: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => waiting = true,
                }
            }
        }
        if waiting {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ppp_link::{LinkConfig, LinkControl, LinkEvent, Random};
    use ppp_modem::{AnswerConfig, Answerer};

    use super::*;

    type Lines = ModemLines<Multilink<usize>, tokio::io::DuplexStream, Answerer>;

    /// A null-modem line (connected at once).
    async fn direct(
        stream: tokio::io::DuplexStream,
    ) -> (ModemPort<tokio::io::DuplexStream, Answerer>, Connected) {
        let mut config = AnswerConfig::default();
        config.null_modem = true;
        let mut port = ModemPort::new(stream, Answerer::new(config));
        port.machine_mut().open(now()).expect("open");
        let connected = port
            .run_until_connected(&mut |_| {})
            .await
            .expect("connected");
        (port, connected)
    }

    fn config(server: bool) -> Arc<LinkConfig> {
        let mut config = LinkConfig::default();
        config.lcp.allow.clear();
        config.lcp.mrru = Some(4000);
        if server {
            config.ipcp = Some(ppp_ipcp::IpcpConfig {
                remote_address: Some("192.0.2.2".parse().expect("address")),
                ..ppp_ipcp::IpcpConfig::server("192.0.2.1".parse().expect("address"), [None, None])
            });
        }
        Arc::new(config)
    }

    async fn side(streams: Vec<tokio::io::DuplexStream>, server: bool, seed: u64) -> Lines {
        let config = config(server);
        let random = Random::seeded(seed);
        let mut lines = ModemLines::new(Multilink::new(config.clone(), random.fork()));
        for (index, stream) in streams.into_iter().enumerate() {
            let (port, connected) = direct(stream).await;
            let now = now();
            let bundle = lines.core_mut();
            bundle.add_member(now, index, LinkControl::new(config.clone(), random.fork()));
            bundle.open(now, &index);
            bundle.up(now, &index);
            lines.add_line(index, port, connected);
        }
        lines
    }

    fn udp(len: usize, tag: u8) -> Vec<u8> {
        let mut packet = vec![tag; len];
        let total = u16::try_from(len).expect("length").to_be_bytes();
        packet[..20].copy_from_slice(&[
            0x45, 0, total[0], total[1], 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 2, 192, 0, 2, 1,
        ]);
        packet
    }

    /// Runs both sides until `b` hands out a datagram (or `a` an event matching `until_a`).
    async fn run_until<F>(a: &mut Lines, b: &mut Lines, mut until: F) -> bool
    where
        F: FnMut(&LinesEvent<MultilinkEvent<usize>, Datagram>, bool) -> bool,
    {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                tokio::select! {
                    event = a.next() => if until(&event.expect("a"), true) { return },
                    event = b.next() => if until(&event.expect("b"), false) { return },
                }
            }
        })
        .await
        .is_ok()
    }

    /// Two lines, one bundle: a 3000-byte packet crosses in fragments over both; one line's
    /// far end goes away (EOF: carrier lost), the bundle carries on over the other, and the
    /// line comes back for a hang-up.
    #[tokio::test]
    async fn a_bundle_over_two_lines_survives_one_line_ending() {
        let (a0, b0) = tokio::io::duplex(64 * 1024);
        let (a1, b1) = tokio::io::duplex(64 * 1024);
        let mut a = side(vec![a0, a1], false, 1).await;
        let mut b = side(vec![b0, b1], true, 2).await;
        bring_up(&mut a, &mut b).await;
        assert!(a.core().is_multilink());

        let packet = udp(3000, 7);
        a.core_mut().send_ipv4(now(), &packet).expect("sent");
        let mut received = None;
        assert!(
            run_until(&mut a, &mut b, |event, ours| {
                if let LinesEvent::Datagram(Datagram::Ipv4(p)) = event
                    && !ours
                {
                    received = Some(p.clone());
                }
                received.is_some()
            })
            .await
        );
        assert_eq!(received.as_deref(), Some(&packet[..]));
        let stats = b.core().mp().expect("MP").stats();
        assert!(stats.received.fragments_received >= 2, "{stats:?}");

        // Line 1 of b goes away: a sees its call end, the member leave, the bundle stay.
        let port = b.take_line(1).expect("line 1");
        drop(port);
        let mut lost = None;
        let mut left = None;
        assert!(
            run_until(&mut a, &mut b, |event, ours| {
                match event {
                    LinesEvent::CarrierLost { line, reason } if ours => {
                        lost = Some((*line, *reason));
                    }
                    LinesEvent::Core(MultilinkEvent::Left { member, members }) if ours => {
                        left = Some((*member, *members));
                    }
                    _ => {}
                }
                lost.is_some() && left.is_some()
            })
            .await
        );
        assert_eq!(lost, Some((1, DisconnectReason::CarrierLost)));
        assert_eq!(left, Some((1, 1)));
        assert_eq!(a.ended(1), Some(DisconnectReason::CarrierLost));
        assert!(a.take_line(1).is_some());
        assert_eq!(a.lines().collect::<Vec<_>>(), vec![0]);

        let packet = udp(2500, 9);
        a.core_mut()
            .send_ipv4(now(), &packet)
            .expect("sent over one line");
        let mut received = None;
        assert!(
            run_until(&mut a, &mut b, |event, ours| {
                if let LinesEvent::Datagram(Datagram::Ipv4(p)) = event
                    && !ours
                {
                    received = Some(p.clone());
                }
                received.is_some()
            })
            .await,
            "the bundle carries on over the line left"
        );
        assert_eq!(received.as_deref(), Some(&packet[..]));
    }

    /// `next` dropped at every await (a `select!` against a short timer) loses nothing.
    #[tokio::test]
    async fn next_is_cancel_safe() {
        let (a0, b0) = tokio::io::duplex(512);
        let (a1, b1) = tokio::io::duplex(512);
        let mut a = side(vec![a0, a1], false, 3).await;
        let mut b = side(vec![b0, b1], true, 4).await;
        bring_up(&mut a, &mut b).await;
        let packets: Vec<Vec<u8>> = (0..20).map(|i| udp(1800, i)).collect();
        for packet in &packets {
            a.core_mut().send_ipv4(now(), packet).expect("sent");
        }
        let mut received = Vec::new();
        let result = tokio::time::timeout(Duration::from_secs(10), async {
            while received.len() < packets.len() {
                // Cancel a's next() often: its writes must resume where they stopped.
                tokio::select! {
                    _ = a.next() => {}
                    _ = tokio::task::yield_now() => {}
                }
                tokio::select! {
                    event = b.next() => {
                        if let LinesEvent::Datagram(Datagram::Ipv4(p)) = event.expect("b") {
                            received.push(p);
                        }
                    }
                    () = tokio::time::sleep(Duration::from_millis(1)) => {}
                }
            }
        })
        .await;
        assert!(
            result.is_ok(),
            "{} of {} received",
            received.len(),
            packets.len()
        );
        assert_eq!(received, packets);
    }

    /// Runs both sides until `a`'s bundle has two members and IPCP is up.
    async fn bring_up(a: &mut Lines, b: &mut Lines) {
        let mut joined = 0;
        let mut up = false;
        assert!(
            run_until(a, b, |event, ours| {
                match event {
                    LinesEvent::Core(MultilinkEvent::Joined { members, .. }) if ours => {
                        joined = *members;
                    }
                    LinesEvent::Core(MultilinkEvent::Network(LinkEvent::IpUp { .. })) if ours => {
                        up = true;
                    }
                    _ => {}
                }
                up && joined == 2
            })
            .await,
            "bundle up over two lines"
        );
    }

    #[tokio::test]
    async fn hang_up_all_gives_every_port_back() {
        let (a0, _b0) = tokio::io::duplex(64);
        let (a1, _b1) = tokio::io::duplex(64);
        let mut ports = Vec::new();
        for (index, stream) in [a0, a1].into_iter().enumerate() {
            let (port, _) = direct(stream).await;
            ports.push((index, port));
        }
        let hung = hang_up_all(ports, CloseReason::UserRequest, Duration::from_secs(2)).await;
        assert_eq!(hung.iter().map(|h| h.0).collect::<Vec<_>>(), vec![0, 1]);
        for (_, _, result) in &hung {
            assert!(result.is_ok(), "{result:?}");
        }
    }
}
