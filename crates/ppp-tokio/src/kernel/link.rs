//! [`KernelLink`]: a link's channel and unit, with the kernel kept in step with the link.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppp_ccp::MppeKeys;
use ppp_link::LinkEvent;
use tracing::{debug, warn};

use super::device::{Idle, PppChannel, PppUnit};
use super::sync::{KernelOp, Route, UnitSync, split_protocol};
use crate::aaa::NasSession;
use crate::rtnl::{LinkCounters, RouteSocket};

/// What [`KernelLink::recv`] got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelInput {
    /// A frame of this length (protocol field first) is in the buffer.
    Frame(usize),
    /// The channel is gone (PADT, hang-up, interface down): the lower layer is down.
    ChannelClosed,
}

/// The kernel data path of one link: the channel its LCP and authentication frames cross, the
/// unit (`pppN`) its NCP and CCP frames cross, and the bookkeeping ([`UnitSync`]) that tells
/// the kernel what the link negotiated. Datagrams never come here: the kernel moves them
/// between the channel and the interface itself.
///
/// The run loop of an adapter: every frame the link wants to send goes through
/// [`send`](Self::send), every event of the link through [`apply`](Self::apply) (frames
/// first, then events: a compressor must exist before its Configure-Ack leaves, and
/// `SC_CCP_UP` may only be set once it left), and [`recv`](Self::recv) hands back what the
/// kernel passes up, for the link's `handle_frame`.
#[derive(Debug)]
pub struct KernelLink {
    channel: Arc<PppChannel>,
    unit: Arc<PppUnit>,
    sync: UnitSync,
    async_channel: bool,
    reader: KernelReader,
}

/// Reads what the kernel hands up from a link's channel and unit; a second one
/// ([`KernelLink::reader`]) can run in a task of its own.
#[derive(Debug)]
pub struct KernelReader {
    channel: Arc<PppChannel>,
    unit: Arc<PppUnit>,
    channel_closed: bool,
    unit_closed: bool,
    channel_buf: Vec<u8>,
}

impl KernelReader {
    fn new(channel: &Arc<PppChannel>, unit: &Arc<PppUnit>) -> Self {
        KernelReader {
            channel: Arc::clone(channel),
            unit: Arc::clone(unit),
            channel_closed: false,
            unit_closed: false,
            channel_buf: vec![0; CONTROL_FRAME_MAX],
        }
    }

    /// Whether the channel ended.
    pub fn channel_closed(&self) -> bool {
        self.channel_closed
    }

    /// Waits for the next frame from the channel or the unit. Cancel safe.
    ///
    /// # Errors
    ///
    /// Errors of `read(2)`.
    pub async fn recv(&mut self, buf: &mut [u8]) -> io::Result<KernelInput> {
        loop {
            if self.channel_closed {
                return Ok(KernelInput::ChannelClosed);
            }
            let unit_open = !self.unit_closed;
            let channel_buf = &mut self.channel_buf;
            tokio::select! {
                biased;
                result = self.channel.recv(channel_buf) => {
                    let n = result?;
                    if n == 0 {
                        self.channel_closed = true;
                        return Ok(KernelInput::ChannelClosed);
                    }
                    let len = n.min(buf.len());
                    buf[..len].copy_from_slice(&self.channel_buf[..len]);
                    return Ok(KernelInput::Frame(len));
                }
                result = self.unit.recv(buf), if unit_open => {
                    match result? {
                        // No channel behind the unit any more: the channel says why.
                        0 => self.unit_closed = true,
                        n => return Ok(KernelInput::Frame(n)),
                    }
                }
            }
        }
    }
}

impl KernelLink {
    /// Connects `channel` to `unit` and sets the unit up for a new link: CCP watched when
    /// `ccp` (CCP runs in the kernel), IPv4 and IPv6 held back until their NCPs are Opened;
    /// `async_channel` for a tty in the PPP line discipline (its framing follows LCP).
    ///
    /// # Errors
    ///
    /// The ioctls fail.
    pub fn new(
        channel: PppChannel,
        unit: Arc<PppUnit>,
        ccp: bool,
        async_channel: bool,
    ) -> io::Result<KernelLink> {
        channel.connect(&unit)?;
        debug!(
            "channel {} connected to {} (unit {})",
            channel.index(),
            unit.name(),
            unit.index()
        );
        let channel = Arc::new(channel);
        let reader = KernelReader::new(&channel, &unit);
        let mut link = KernelLink {
            channel,
            unit,
            sync: UnitSync::new(ccp, async_channel),
            async_channel,
            reader,
        };
        link.run_ops()?;
        Ok(link)
    }

    /// The unit.
    pub fn unit(&self) -> &Arc<PppUnit> {
        &self.unit
    }

    /// The channel's number.
    pub fn channel_index(&self) -> u32 {
        self.channel.index()
    }

    /// The interface's name (`pppN`).
    pub fn interface(&self) -> &str {
        self.unit.name()
    }

    /// Gives the MPPE start keys to the kernel's compressors as CCP negotiates (call once
    /// authentication succeeded, with `MsChapKeyMaterial::start_keys`).
    pub fn set_mppe_keys(&mut self, keys: MppeKeys) {
        self.sync.set_mppe_keys(keys);
    }

    /// Whether the channel ended (nothing more will come from [`recv`](Self::recv)).
    pub fn is_closed(&self) -> bool {
        self.reader.channel_closed
    }

    /// Whether MPPE keys were given.
    pub fn has_mppe_keys(&self) -> bool {
        self.sync.has_mppe_keys()
    }

    fn run_ops(&mut self) -> io::Result<()> {
        while let Some(op) = self.sync.poll_op() {
            let result = match &op {
                KernelOp::AsyncChannel(settings) if self.async_channel => {
                    self.channel.set_async(settings)
                }
                op => self.unit.apply(op),
            };
            if let Err(error) = result {
                warn!("{}: {op} failed: {error}", self.unit.name());
                if matches!(op, KernelOp::Compressor { .. }) {
                    // Never run CCP with a half-configured kernel: the caller closes.
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// Sends one frame of the link (protocol field first) on the channel or the unit, after
    /// telling the kernel what it changes.
    ///
    /// # Errors
    ///
    /// A compressor could not be set up (the link must be closed), or writing failed.
    pub fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        let Some((protocol, _)) = split_protocol(frame) else {
            return Ok(());
        };
        self.sync.on_transmit(frame);
        self.run_ops()?;
        let result = match Route::of(protocol) {
            Route::Channel => self.channel.send(frame),
            Route::Unit => self.unit.send(frame),
        };
        match result {
            // The other end went away: what we were saying no longer matters.
            Err(error) if self.reader.channel_closed => {
                debug!("frame not sent on a closed channel: {error}");
                Ok(())
            }
            other => other,
        }
    }

    /// Tells the kernel what `event` of the link changes (MRU, async framing, CCP up,
    /// network protocols passing).
    ///
    /// # Errors
    ///
    /// An ioctl that matters failed (see [`send`](Self::send)).
    pub fn apply(&mut self, event: &LinkEvent) -> io::Result<()> {
        self.sync.on_event(event);
        self.run_ops()
    }

    /// How long no data packet crossed the interface.
    ///
    /// # Errors
    ///
    /// The ioctl fails.
    pub fn idle(&self) -> io::Result<Idle> {
        self.unit.idle()
    }

    /// When the interface last carried a data packet either way (`PPPIOCGIDLE`, in whole
    /// seconds before `now`).
    ///
    /// # Errors
    ///
    /// The ioctl fails.
    pub fn last_traffic(&self, now: Instant) -> io::Result<Instant> {
        let idle = self.idle()?;
        let quiet = Duration::from_secs(idle.transmit.min(idle.receive));
        Ok(now.checked_sub(quiet).unwrap_or(now))
    }

    /// What the kernel moved through the unit's interface so far, through `rtnl` (an
    /// rtnetlink socket of this network namespace): received is what came from the peer.
    /// (The interface is asked for by name: its index is not the unit's number.)
    ///
    /// # Errors
    ///
    /// No such interface in this namespace, or the kernel's refusal.
    pub fn counters(&self, rtnl: &mut RouteSocket) -> io::Result<LinkCounters> {
        rtnl.link_counters(self.interface())
    }

    /// Gives a session on this link what the kernel counted on its interface and when the
    /// interface last carried a packet ([`NasSession::observe_kernel`]): call it before the
    /// session's timers and before each of its accounting records. What cannot be read (no
    /// `rtnl`, a refusal: logged at DEBUG) stays as the session had it.
    pub fn observe(&self, now: Instant, rtnl: Option<&mut RouteSocket>, nas: &mut NasSession) {
        let counters = match rtnl.map(|rtnl| self.counters(rtnl)) {
            Some(Ok(counters)) => counters.into(),
            Some(Err(error)) => {
                debug!("{}: counters not read: {error}", self.interface());
                nas.counters()
            }
            None => nas.counters(),
        };
        let last_traffic = self.last_traffic(now).unwrap_or_else(|error| {
            debug!("{}: idle time not read: {error}", self.interface());
            now
        });
        nas.observe_kernel(now, counters, last_traffic);
    }

    /// Waits for the next frame from the channel or the unit (see [`KernelReader::recv`]).
    /// Cancel safe.
    ///
    /// # Errors
    ///
    /// Errors of `read(2)`.
    pub async fn recv(&mut self, buf: &mut [u8]) -> io::Result<KernelInput> {
        self.reader.recv(buf).await
    }

    /// A reader of this link's channel and unit for another task (then do not call
    /// [`recv`](Self::recv) here as well: each frame goes to one reader).
    pub fn reader(&self) -> KernelReader {
        KernelReader::new(&self.channel, &self.unit)
    }

    /// Disconnects the channel from the unit (the unit stays, for the next call) and gives
    /// the unit back.
    pub fn disconnect(self) -> Arc<PppUnit> {
        if !self.reader.channel_closed {
            self.channel.disconnect().ok();
        }
        self.unit
    }
}

/// The largest control frame read from a channel (LCP and authentication frames are bounded
/// by the MRU; a longer one is truncated to this).
const CONTROL_FRAME_MAX: usize = 65_536;
