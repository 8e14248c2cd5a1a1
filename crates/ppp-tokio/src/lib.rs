//! Thin tokio adapters that drive the sans-IO cores of the stack.
//!
//! This crate is where I/O lives: it owns sockets, timers and files, and does nothing a core
//! could do. It exists as a crate of its own so the protocol crates stay free of tokio.
//!
//! - [`StreamDriver`]: runs a [`ppp_link::Link`] over any byte stream (`AsyncRead +
//!   AsyncWrite`): a serial port from tokio-serial, a pty, a unix socket to a QEMU guest's serial
//!   line. It sleeps until the link's next deadline or the next bytes, and hands back events and
//!   datagrams.
//! - [`Capture`]: writes what crosses a link into a pcap file (`--pcap FILE`).
//! - [`icmp`]: building and answering ICMP echo, enough for a ping across a link without a TUN
//!   device.
//! - [`serial`]: serial ports and modems: a `ppp-modem` machine until `CONNECT`, then the link on
//!   the same line while `NO CARRIER` is watched, then the hang-up.
//! - [`bundle`]: several modem lines online under one core: the members of a Multilink bundle
//!   (a dial-out client with several ports) or the calls of a server (a `LinkTable`, where a
//!   second call of the same peer joins its bundle).
//! - [`packet`]: raw Ethernet for PPPoE (`AF_PACKET` with a kernel filter that passes only PPPoE).
//! - [`pppoe`]: the PPPoE client and access concentrator runtimes (packet socket, sans-IO
//!   `PppoeClient`/`PppoeServer`, a TUN device per session).
//! - [`tun`]: TUN devices, the kernel's side of a link's IP traffic.
//! - [`offload`]: TUN offloads in user space (virtio-net header, TCP segmentation to the
//!   session's MTU, coalescing of received segments), for a TUN device with `IFF_VNET_HDR`.
//! - [`radius`]: the RADIUS client over UDP (authentication, accounting with a spool on
//!   disk) and the dynamic-authorization listener.
//! - [`aaa`]: the servers' AAA: local secrets then RADIUS, rate limits, session and idle
//!   timeouts, one session per user, accounting records, Disconnect and CoA.
//! - [`kernel`]: the kernel data path where the kernel has PPP: `/dev/ppp` units and channels,
//!   PPPoE sockets, the PPP line discipline; datagrams never reach user space.
//! - [`netconfig`]: interface addresses, MTU, default routes and resolv.conf files (via `ip`).
//! - `netns` (feature `test-util`): network namespaces for tests and harnesses; `freeradius`
//!   (the same feature): a FreeRADIUS 3.2 with its own configuration for tests.
//! - [`now`]: the one clock every driver uses (tokio's, so tests may pause
//!   and advance time).
//!
//! # Cancel safety
//!
//! Every driver's `next()` is cancel safe: dropping its future (in a `select!`) loses no bytes
//! and no events. Outbound frames wait in a queue owned by the driver and are written from
//! within `next()`, so a reader and a writer never block each other.
//!
//! # Example
//!
//! ```no_run
//! use ppp_link::{Link, LinkConfig, LinkEvent};
//! use ppp_tokio::{DriverEvent, StreamDriver};
//!
//! # async fn run() -> std::io::Result<()> {
//! let line = tokio::net::UnixStream::connect("/tmp/ttyS1.sock").await?;
//! let mut config = LinkConfig::default();
//! config.lcp.allow.clear();
//! let random = ppp_link::Random::from_os().map_err(std::io::Error::other)?;
//! let mut driver = StreamDriver::new(Link::new(config, random), line);
//! driver.open();
//! loop {
//!     match driver.next().await? {
//!         DriverEvent::Link(LinkEvent::IpUp { local, peer, .. }) => println!("up: {local} -> {peer}"),
//!         DriverEvent::Link(LinkEvent::LinkDown { reason }) => break println!("down: {reason}"),
//!         DriverEvent::Datagram(datagram) => { let _ = datagram; }
//!         DriverEvent::Link(_) => {}
//!         DriverEvent::Closed => break,
//!     }
//! }
//! # Ok(())
//! # }
//! ```
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod aaa;
pub mod bundle;
#[cfg(feature = "test-util")]
pub mod freeradius;
pub mod icmp;
pub mod kernel;
pub mod netconfig;
#[cfg(feature = "test-util")]
pub mod netns;
pub mod offload;
pub mod packet;
pub mod pppoe;
pub mod radius;
pub mod ring;
pub mod rtnl;
pub mod serial;
pub mod tun;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ppp_frame::pcap::{Direction, LinkType, PcapWriter};
use ppp_link::{CapturedPacket, Datagram, Link, LinkEvent};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Records packets into a pcap file with Wireshark's "PPP with direction" link type.
#[derive(Debug)]
pub struct Capture {
    writer: PcapWriter<BufWriter<File>>,
    epoch: (Instant, SystemTime),
}

impl Capture {
    /// Creates (or truncates) the file at `path`.
    ///
    /// # Errors
    ///
    /// Any error creating or writing the file.
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = BufWriter::new(File::create(path)?);
        Ok(Capture {
            writer: PcapWriter::new(file, LinkType::PppWithDirection)?,
            epoch: (Instant::now(), SystemTime::now()),
        })
    }

    /// Records one packet.
    ///
    /// # Errors
    ///
    /// Any error writing the file.
    pub fn record(&mut self, packet: &CapturedPacket) -> io::Result<()> {
        let wall = self.wall_clock(packet.at);
        let direction = if packet.sent {
            Direction::Sent
        } else {
            Direction::Received
        };
        self.writer
            .write_ppp(wall, direction, packet.protocol, &packet.payload)
    }

    /// Flushes the file.
    ///
    /// # Errors
    ///
    /// Any error writing the file.
    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }

    fn wall_clock(&self, at: Instant) -> Duration {
        let (instant, system) = self.epoch;
        let wall = if at >= instant {
            system + (at - instant)
        } else {
            system - (instant - at)
        };
        wall.duration_since(UNIX_EPOCH).unwrap_or_default()
    }
}

/// The time now, from tokio's clock: every adapter reads time here, so tests that pause and
/// advance tokio's clock (`tokio::time::pause`) drive the cores on virtual time too.
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Bytes waiting to be written to a stream, with how much of the first buffer went out.
///
/// Writing goes through [`write_some`](Outbox::write_some), one `write` at a time, and the
/// progress is kept here, not in a future: a write cancelled in a `select!` loses nothing and the
/// next call goes on where the last one stopped (tokio's `AsyncWriteExt::write` is cancel safe).
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    queue: VecDeque<Vec<u8>>,
    written: usize,
}

impl Outbox {
    /// Queues `bytes` after what is already waiting.
    pub(crate) fn push(&mut self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.queue.push_back(bytes);
        }
    }

    /// Forgets what waits (the line is gone).
    pub(crate) fn clear(&mut self) {
        self.queue.clear();
        self.written = 0;
    }

    /// Tries to write the next bytes that wait; `Ready` with the progress recorded.
    pub(crate) fn poll_write_some<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let Some(front) = self.queue.front() else {
            return Poll::Pending;
        };
        match Pin::new(writer).poll_write(cx, &front[self.written..]) {
            Poll::Ready(Ok(0)) => Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(n)) => {
                self.written += n;
                if self.written == front.len() {
                    self.queue.pop_front();
                    self.written = 0;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Writes everything that waits, then flushes. Cancel safe.
    pub(crate) async fn drain<W: AsyncWrite + Unpin>(&mut self, writer: &mut W) -> io::Result<()> {
        while let Some(front) = self.queue.front() {
            let n = writer.write(&front[self.written..]).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.written += n;
            if self.written == front.len() {
                self.queue.pop_front();
                self.written = 0;
            }
        }
        writer.flush().await
    }
}

/// Sleeps until `deadline`, or forever when there is none.
pub(crate) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// What [`read_or_write`] did.
pub(crate) enum Io {
    /// Read this many bytes into the buffer (0: end of stream).
    Read(io::Result<usize>),
    /// Wrote some of the outbox.
    Wrote(io::Result<()>),
}

/// Waits until the stream can take more of `outbox` (written, progress recorded) or has bytes
/// for `buf`, whichever comes first: reading never waits for a blocked write, so two ends that
/// both have a full pipe of output cannot deadlock. Cancel safe: it completes on a single poll
/// that did one read or one write.
pub(crate) async fn read_or_write<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    outbox: &mut Outbox,
    buf: &mut [u8],
) -> Io {
    std::future::poll_fn(|cx| {
        if let Poll::Ready(result) = outbox.poll_write_some(stream, cx) {
            return Poll::Ready(Io::Wrote(result));
        }
        let mut read = ReadBuf::new(buf);
        match Pin::new(&mut *stream).poll_read(cx, &mut read) {
            Poll::Ready(result) => Poll::Ready(Io::Read(result.map(|()| read.filled().len()))),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// What [`StreamDriver::next`] hands back.
/// What [`StreamDriver::next`] hands back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriverEvent {
    /// An event of the link.
    Link(LinkEvent),
    /// A datagram received on the link.
    Datagram(Datagram),
    /// The byte stream ended (carrier lost, peer closed the socket); the link has been told.
    Closed,
}

/// Runs a [`Link`] over a byte stream.
///
/// Cancel safe: [`next`](Self::next) and [`flush`](Self::flush) may be dropped at any `.await`
/// (in a `select!` with a TUN device or a signal) without losing or truncating a frame: bytes
/// for the line wait in an outbound queue that keeps its progress, and input is fed to the link
/// as soon as it is read.
pub struct StreamDriver<S> {
    link: Link,
    stream: S,
    outbox: Outbox,
    capture: Option<Capture>,
    closed: bool,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> StreamDriver<S> {
    /// A driver for `link` over `stream`.
    pub fn new(link: Link, stream: S) -> Self {
        StreamDriver {
            link,
            stream,
            outbox: Outbox::default(),
            capture: None,
            closed: false,
            buf: vec![0; 16 * 1024],
        }
    }

    /// Records every packet into `capture`.
    pub fn set_capture(&mut self, capture: Capture) {
        self.link.enable_capture();
        self.capture = Some(capture);
    }

    /// The link, to inspect it.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The link, to call it (send datagrams, close it). Output it produces goes out on the next
    /// [`next`](Self::next) or [`flush`](Self::flush).
    pub fn link_mut(&mut self) -> &mut Link {
        &mut self.link
    }

    /// Opens the link and signals that the line is up.
    pub fn open(&mut self) {
        let now = now();
        self.link.open(now);
        self.link.up(now);
    }

    /// Writes everything the link wants to send and records captures. Cancel safe.
    ///
    /// # Errors
    ///
    /// Errors writing the stream or the capture.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.collect_output()?;
        self.outbox.drain(&mut self.stream).await
    }

    /// Moves what the link wants to send into the outbox (dropped once the line is gone) and
    /// records captures.
    fn collect_output(&mut self) -> io::Result<()> {
        while let Some(bytes) = self.link.poll_transmit() {
            if !self.closed {
                self.outbox.push(bytes);
            }
        }
        if self.closed {
            self.outbox.clear();
        }
        if let Some(capture) = self.capture.as_mut() {
            while let Some(packet) = self.link.poll_capture() {
                capture.record(&packet)?;
            }
            capture.flush()?;
        }
        Ok(())
    }

    /// Runs the link until it has something to report. Cancel safe (see [`StreamDriver`]).
    ///
    /// # Errors
    ///
    /// Errors reading or writing the stream or the capture.
    pub async fn next(&mut self) -> io::Result<DriverEvent> {
        loop {
            self.collect_output()?;
            if let Some(event) = self.link.poll_event() {
                return Ok(DriverEvent::Link(event));
            }
            if let Some(datagram) = self.link.poll_datagram() {
                return Ok(DriverEvent::Datagram(datagram));
            }
            if self.closed {
                return Ok(DriverEvent::Closed);
            }
            let deadline = self.link.poll_timeout();
            tokio::select! {
                io = read_or_write(&mut self.stream, &mut self.outbox, &mut self.buf) => {
                    let now = now();
                    match io {
                        Io::Wrote(Ok(())) => {}
                        Io::Read(Ok(0)) => {
                            self.closed = true;
                            self.link.down(now);
                        }
                        Io::Read(Ok(n)) => self.link.handle_input(now, &self.buf[..n]),
                        Io::Read(Err(error)) | Io::Wrote(Err(error)) => {
                            self.closed = true;
                            self.link.down(now);
                            self.collect_output().ok();
                            return Err(error);
                        }
                    }
                }
                () = sleep_until(deadline) => self.link.handle_timeout(now()),
            }
        }
    }

    /// The link and the stream back.
    pub fn into_parts(self) -> (Link, S) {
        (self.link, self.stream)
    }
}
