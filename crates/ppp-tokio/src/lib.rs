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
//! let mut driver = StreamDriver::new(Link::new(config), line);
//! driver.start();
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

pub mod icmp;
pub mod netconfig;
pub mod netns;
pub mod packet;
pub mod pppoe;
pub mod serial;
pub mod tun;

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ppp_frame::pcap::{Direction, LinkType, PcapWriter};
use ppp_link::{CapturedPacket, Datagram, Link, LinkEvent};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

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
pub struct StreamDriver<S> {
    link: Link,
    stream: S,
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
    pub fn start(&mut self) {
        let now = Instant::now();
        self.link.open(now);
        self.link.up(now);
    }

    /// Writes everything the link wants to send and records captures.
    ///
    /// # Errors
    ///
    /// Errors writing the stream or the capture.
    pub async fn flush(&mut self) -> io::Result<()> {
        while let Some(bytes) = self.link.poll_transmit() {
            if !self.closed {
                self.stream.write_all(&bytes).await?;
            }
        }
        self.stream.flush().await?;
        if let Some(capture) = self.capture.as_mut() {
            while let Some(packet) = self.link.poll_capture() {
                capture.record(&packet)?;
            }
            capture.flush()?;
        }
        Ok(())
    }

    /// Runs the link until it has something to report.
    ///
    /// # Errors
    ///
    /// Errors reading or writing the stream or the capture.
    pub async fn next(&mut self) -> io::Result<DriverEvent> {
        loop {
            self.flush().await?;
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
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                read = self.stream.read(&mut self.buf) => {
                    let now = Instant::now();
                    match read {
                        Ok(0) => {
                            self.closed = true;
                            self.link.down(now);
                        }
                        Ok(n) => self.link.handle_input(now, &self.buf[..n]),
                        Err(error) => {
                            self.closed = true;
                            self.link.down(now);
                            self.flush().await.ok();
                            return Err(error);
                        }
                    }
                }
                () = sleep => self.link.handle_timeout(Instant::now()),
            }
        }
    }

    /// The link and the stream back.
    pub fn into_parts(self) -> (Link, S) {
        (self.link, self.stream)
    }
}
