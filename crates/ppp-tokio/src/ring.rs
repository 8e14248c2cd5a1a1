//! A packet socket that receives into a memory-mapped ring (`PACKET_RX_RING`, `TPACKET_V3`):
//! for a queue that must keep up with a flood.
//!
//! With a plain packet socket every frame is an `sk_buff` queued to the socket, and reading it
//! (even many at a time with `recvmmsg(2)`) takes the queue's lock, copies it out and frees it
//! in the reader's time. With a receive ring the kernel copies each frame into a shared
//! ring of blocks as it arrives (in the sender's or the interrupt's time) and frees it there;
//! the reader walks a block that the kernel has handed over, frame by frame, with no system
//! call, and hands the block back by writing one word. An access concentrator reads PADIs
//! this way: a flood at the rate one sender reaches then costs it a fraction of a core, so
//! it keeps up and the kernel does not drop the PADIs of clients among the flood's.
//!
//! Blocks are handed over when full or after [`RingConfig::retire_after`] (so a lone frame
//! waits at most that long), and the ring holds [`RingConfig::blocks`] of them: what the
//! reader may fall behind by before the kernel drops frames.
//!
//! # Unsafe code
//!
//! The `setsockopt(2)` calls go through the packet module's one wrapper; `mmap(2)`/`munmap(2)`
//! of the ring, owned by [`PacketRing`] for its lifetime; the block status word read and
//! written atomically (it is the one word the kernel and the reader hand the block over with);
//! and a byte slice over a block while the block is the reader's. Walking a block's frames is
//! the safe, bounds-checked [`block_frames`], fuzzed on arbitrary bytes
//! (`fuzz/fuzz_targets/packet_ring_block.rs`).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use tokio::io::unix::AsyncFd;
use tracing::debug;

use crate::packet::{
    BpfInstruction, InterfaceError, InterfaceInfo, bind_to_interface, register, set_socket_option,
};

/// `TP_STATUS_USER`: the block belongs to the reader.
const TP_STATUS_USER: u32 = 1;
/// `TP_STATUS_KERNEL`: the block belongs to the kernel.
const TP_STATUS_KERNEL: u32 = 0;
/// Where a block's status word is: after the block descriptor's version and private-area offset.
const BLOCK_STATUS_OFFSET: usize = 8;
/// Size of a block descriptor (`struct tpacket_block_desc` with `tpacket_hdr_v1`).
const BLOCK_HEADER_LEN: usize = 48;
/// Size of a frame header (`struct tpacket3_hdr`).
const FRAME_HEADER_LEN: usize = 48;

/// The shape of a receive ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingConfig {
    /// Bytes in a block: a multiple of the page size (4 KiB), at least 8 KiB.
    pub block_size: usize,
    /// Blocks in the ring.
    pub blocks: usize,
    /// How long the kernel keeps filling a block that is not full before handing it over.
    pub retire_after: Duration,
}

impl Default for RingConfig {
    /// 128 blocks of 64 KiB (8 MiB, about 58,000 small frames: 100 ms of a flood of 600,000
    /// frames a second), handed over at the latest 1 ms after their first frame.
    fn default() -> Self {
        RingConfig {
            block_size: 64 << 10,
            blocks: 128,
            retire_after: Duration::from_millis(1),
        }
    }
}

/// A raw packet socket on one interface receiving, through a filter, into a `TPACKET_V3` ring.
///
/// Receive only: send with a [`crate::packet::PacketSocket`].
///
/// ```no_run
/// use ppp_tokio::packet::{ETHERTYPE_PPPOE_DISCOVERY, padi_filter};
/// use ppp_tokio::ring::{PacketRing, RingConfig};
///
/// # async fn run() -> std::io::Result<()> {
/// let mut ring = PacketRing::bind("eth0", ETHERTYPE_PPPOE_DISCOVERY, &padi_filter(), RingConfig::default())?;
/// let frames = ring.recv(64, |frame| println!("a PADI of {} bytes", frame.len())).await?;
/// println!("{frames} frames");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct PacketRing {
    fd: AsyncFd<Socket>,
    ring: NonNull<u8>,
    config: RingConfig,
    /// The block to read next.
    next: usize,
}

// SAFETY: the mapping is owned by this value alone (created in `bind`, unmapped in `drop`) and
// only touched through `&mut self` (or `&self` for nothing but the file descriptor), so moving
// it to another thread moves the only access to it.
#[allow(unsafe_code)]
unsafe impl Send for PacketRing {}

impl PacketRing {
    /// Opens a packet socket on `ifname` for frames of `ethertype`, with the receive ring
    /// `config` and the classic BPF `filter` (which should accept only frames of `ethertype`).
    /// Frames this host sends are not received. Must be called within a tokio runtime. Needs
    /// `CAP_NET_RAW`.
    ///
    /// # Errors
    ///
    /// As for [`crate::packet::PacketSocket::bind`]; an invalid ring shape (`EINVAL`); the
    /// mapping fails.
    pub fn bind(
        ifname: &str,
        ethertype: u16,
        filter: &[BpfInstruction],
        config: RingConfig,
    ) -> io::Result<PacketRing> {
        Self::bind_unnamed(ifname, ethertype, filter, config)
            .map_err(|source| InterfaceError::wrap(ifname, source))
    }

    fn bind_unnamed(
        ifname: &str,
        ethertype: u16,
        filter: &[BpfInstruction],
        config: RingConfig,
    ) -> io::Result<PacketRing> {
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_owned());
        if config.block_size < 8192 || !config.block_size.is_multiple_of(4096) || config.blocks == 0
        {
            return Err(invalid(
                "ring blocks: a multiple of 4 KiB, at least 8 KiB, and some",
            ));
        }
        let len = config
            .block_size
            .checked_mul(config.blocks)
            .ok_or_else(|| invalid("ring too large"))?;
        // Protocol 0 until bound: nothing is received before the ring and the filter are in
        // place.
        let socket = Socket::new(Domain::PACKET, Type::RAW.cloexec(), None)?;
        let fd = socket.as_raw_fd();
        let info = InterfaceInfo::query(&socket, ifname)?;
        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        set_socket_option(fd, libc::SOL_PACKET, libc::PACKET_VERSION, &version)?;
        let frame_size: u32 = 2048;
        let block_size =
            u32::try_from(config.block_size).map_err(|_| invalid("block too large"))?;
        let blocks = u32::try_from(config.blocks).map_err(|_| invalid("too many blocks"))?;
        let request = libc::tpacket_req3 {
            tp_block_size: block_size,
            tp_block_nr: blocks,
            tp_frame_size: frame_size,
            tp_frame_nr: (block_size / frame_size)
                .checked_mul(blocks)
                .ok_or_else(|| invalid("ring too large"))?,
            tp_retire_blk_tov: u32::try_from(config.retire_after.as_millis())
                .unwrap_or(u32::MAX)
                .max(1),
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        set_socket_option(fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &request)?;
        let ring = map_ring(fd, len)?;
        let ring = PacketRing {
            fd: register(socket)?,
            ring,
            config,
            next: 0,
        };
        let filter: Vec<_> = filter
            .iter()
            .map(|i| socket2::SockFilter::new(i.code, i.jt, i.jf, i.k))
            .collect();
        ring.fd.get_ref().attach_filter(&filter)?;
        bind_to_interface(fd, info.index, ethertype)?;
        ring.fd.get_ref().set_nonblocking(true)?;
        debug!(
            "{ifname}: packet ring up, {} blocks of {} bytes",
            config.blocks, config.block_size
        );
        Ok(ring)
    }

    /// The ring's shape.
    pub fn config(&self) -> RingConfig {
        self.config
    }

    /// Waits until the kernel hands over a block, then calls `each` with every frame (Ethernet
    /// header first) of it and of the blocks after it that are ready too, up to `max_blocks`
    /// blocks, handing each back to the kernel when done. Returns how many frames.
    ///
    /// Cancel safe: a block is handed back only after all its frames were given to `each`,
    /// which happens without waiting.
    ///
    /// # Errors
    ///
    /// Errors of waiting for the socket (tokio's reactor).
    pub async fn recv(
        &mut self,
        max_blocks: usize,
        mut each: impl FnMut(&[u8]),
    ) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut frames = 0;
            let mut blocks = 0;
            while blocks < max_blocks.max(1)
                && take_block(self.ring, self.config, &mut self.next, &mut |frame| {
                    frames += 1;
                    each(frame);
                })
            {
                blocks += 1;
            }
            if blocks > 0 {
                return Ok(frames);
            }
            // Nothing ready: wait for the next hand-over (the readiness is cleared only if no
            // event came since it was reported, so none is lost).
            guard.clear_ready();
        }
    }
}

/// If block `next` of the ring at `ring` is the reader's: gives its frames to `each`, hands
/// it back, moves `next` on and returns true. Called only by [`PacketRing::recv`] with its own
/// mapping, shape and cursor.
fn take_block(
    ring: NonNull<u8>,
    config: RingConfig,
    next: &mut usize,
    each: &mut dyn FnMut(&[u8]),
) -> bool {
    let offset = *next * config.block_size;
    // SAFETY: `offset + BLOCK_STATUS_OFFSET` is inside the mapping (`next < blocks`, and a
    // block is larger than its header), 4-aligned (blocks are page-aligned), and the word
    // there is the block's status, which the kernel also accesses atomically.
    #[allow(unsafe_code)]
    let status =
        unsafe { AtomicU32::from_ptr(ring.as_ptr().add(offset + BLOCK_STATUS_OFFSET).cast()) };
    if status.load(Ordering::Acquire) & TP_STATUS_USER == 0 {
        return false;
    }
    {
        // SAFETY: the block lies inside the mapping; its status says it is the reader's,
        // and the kernel writes none of its bytes until we hand it back (below, after the
        // slice is gone); the acquire load above orders our reads after the kernel's writes.
        #[allow(unsafe_code)]
        let block =
            unsafe { std::slice::from_raw_parts(ring.as_ptr().add(offset), config.block_size) };
        for frame in block_frames(block) {
            each(frame);
        }
    }
    status.store(TP_STATUS_KERNEL, Ordering::Release);
    *next = (*next + 1) % config.blocks;
    true
}

impl Drop for PacketRing {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        let len = self.config.block_size * self.config.blocks;
        // SAFETY: `ring` is the start of a mapping of `len` bytes made in `bind` and not yet
        // unmapped; no slice into it outlives `take_block`. The socket closes afterwards.
        unsafe {
            libc::munmap(self.ring.as_ptr().cast(), len);
        }
    }
}

/// The frames of one `TPACKET_V3` block (as the kernel lays it out: a block descriptor whose
/// `num_pkts` and `offset_to_first_pkt` lead to a chain of frame headers, each with the
/// frame's offset `tp_mac` and length `tp_snaplen`, and the offset to the next header).
///
/// Everything is checked against the block's bounds: a header or frame that would reach past
/// the block ends the walk, and so does a chain offset too small to hold a header, so it
/// yields at most `block.len() / 48` frames, and never panics, whatever the bytes.
///
/// ```
/// use ppp_tokio::ring::block_frames;
///
/// // A block with one 4-byte frame: descriptor (48 bytes), then a frame header at 48 with the
/// // frame 64 bytes after it.
/// let mut block = vec![0u8; 256];
/// block[8..12].copy_from_slice(&1u32.to_ne_bytes()); // status: the reader's
/// block[12..16].copy_from_slice(&1u32.to_ne_bytes()); // one frame
/// block[16..20].copy_from_slice(&48u32.to_ne_bytes()); // first at 48
/// block[48 + 12..48 + 16].copy_from_slice(&4u32.to_ne_bytes()); // snaplen
/// block[48 + 24..48 + 26].copy_from_slice(&64u16.to_ne_bytes()); // mac at +64
/// block[112..116].copy_from_slice(b"ppp!");
/// assert_eq!(block_frames(&block).collect::<Vec<_>>(), [b"ppp!"]);
/// ```
pub fn block_frames(block: &[u8]) -> impl Iterator<Item = &[u8]> {
    let word = |at: usize| -> Option<u32> {
        let bytes = block.get(at..at.checked_add(4)?)?;
        Some(u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    };
    let half = |at: usize| -> Option<u16> {
        let bytes = block.get(at..at.checked_add(2)?)?;
        Some(u16::from_ne_bytes([bytes[0], bytes[1]]))
    };
    let count = word(12)
        .map_or(0, |n| n as usize)
        .min(block.len() / FRAME_HEADER_LEN);
    let mut at = word(16).map_or(usize::MAX, |first| first as usize);
    if at < BLOCK_HEADER_LEN {
        at = usize::MAX;
    }
    let mut left = count;
    std::iter::from_fn(move || {
        if left == 0 || at.checked_add(FRAME_HEADER_LEN)? > block.len() {
            return None;
        }
        left -= 1;
        let next = word(at)? as usize;
        let snaplen = word(at + 12)? as usize;
        let mac = usize::from(half(at + 24)?);
        let start = at.checked_add(mac)?;
        let frame = block.get(start..start.checked_add(snaplen)?)?;
        at = if next >= FRAME_HEADER_LEN {
            at.saturating_add(next)
        } else {
            // The last frame has no next; a chain that does not advance ends here too.
            left = 0;
            usize::MAX
        };
        Some(frame)
    })
}

/// A block of `size` bytes holding `frames` as the kernel lays them out in a `TPACKET_V3` ring
/// (the inverse of [`block_frames`], for tests and fuzzing). Returns `None` if they do not fit.
///
/// ```
/// use ppp_tokio::ring::{block_frames, frames_into_block};
///
/// let frames: [&[u8]; 2] = [b"first frame", b"second"];
/// let block = frames_into_block(&frames, 4096).unwrap();
/// assert!(block_frames(&block).eq(frames));
/// assert!(frames_into_block(&frames, 100).is_none());
/// ```
pub fn frames_into_block(frames: &[&[u8]], size: usize) -> Option<Vec<u8>> {
    // Where the frame starts after its header: the header and a `sockaddr_ll`, aligned.
    const MAC_OFFSET: usize = 80;
    let mut block = vec![0u8; size];
    let put = |block: &mut [u8], at: usize, value: u32| {
        block[at..at + 4].copy_from_slice(&value.to_ne_bytes());
    };
    if size < BLOCK_HEADER_LEN {
        return None;
    }
    put(&mut block, BLOCK_STATUS_OFFSET, TP_STATUS_USER);
    put(&mut block, 12, u32::try_from(frames.len()).ok()?);
    put(&mut block, 16, BLOCK_HEADER_LEN as u32);
    let mut at = BLOCK_HEADER_LEN;
    for (i, frame) in frames.iter().enumerate() {
        let next = (MAC_OFFSET + frame.len()).next_multiple_of(16);
        if at + MAC_OFFSET + frame.len() > size {
            return None;
        }
        let last = i + 1 == frames.len();
        put(
            &mut block,
            at,
            if last { 0 } else { u32::try_from(next).ok()? },
        );
        put(&mut block, at + 12, u32::try_from(frame.len()).ok()?);
        put(&mut block, at + 16, u32::try_from(frame.len()).ok()?);
        block[at + 24..at + 26].copy_from_slice(&(MAC_OFFSET as u16).to_ne_bytes());
        block[at + MAC_OFFSET..at + MAC_OFFSET + frame.len()].copy_from_slice(frame);
        at += next;
    }
    Some(block)
}

/// Maps the receive ring of `fd` (`len` bytes, shared with the kernel).
#[allow(unsafe_code)]
fn map_ring(fd: RawFd, len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: a fresh shared mapping of the socket's ring, which PACKET_RX_RING just created
    // with exactly `len` bytes; no existing memory is affected (null hint, no MAP_FIXED).
    let address = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_LOCKED,
            fd,
            0,
        )
    };
    if address == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(address.cast()).ok_or_else(|| io::Error::other("mmap returned null"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(frames: &[&[u8]], size: usize) -> Vec<u8> {
        frames_into_block(frames, size).expect("the frames fit")
    }

    #[test]
    fn walks_the_frames_of_a_block() {
        let frames: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 60 + usize::from(i)]).collect();
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let block = block(&refs, 8192);
        assert_eq!(block_frames(&block).collect::<Vec<_>>(), refs);
        // An empty block, and one whose count is larger than its chain.
        assert_eq!(block_frames(&self::block(&[], 8192)).count(), 0);
        let mut short = self::block(&refs[..2], 8192);
        short[12..16].copy_from_slice(&1000u32.to_ne_bytes());
        assert_eq!(block_frames(&short).count(), 2);
    }

    #[test]
    fn bad_offsets_end_the_walk() {
        let frame = [7u8; 64];
        let good = block(&[&frame, &frame], 8192);
        // The first frame's length reaches past the block.
        let mut long = good.clone();
        long[48 + 12..48 + 16].copy_from_slice(&100_000u32.to_ne_bytes());
        assert_eq!(block_frames(&long).count(), 0);
        // The first header is inside the descriptor.
        let mut inside = good.clone();
        inside[16..20].copy_from_slice(&8u32.to_ne_bytes());
        assert_eq!(block_frames(&inside).count(), 0);
        // A chain that points at itself yields its frame once.
        let mut looped = good.clone();
        looped[48..52].copy_from_slice(&0u32.to_ne_bytes());
        assert_eq!(block_frames(&looped).count(), 1);
        // Truncated blocks.
        for len in 0..200 {
            assert!(block_frames(&good[..len]).count() <= 2);
        }
    }

    #[test]
    fn a_ring_receives_what_a_socket_sends() {
        if crate::netns::skip_without_netns("a_ring_receives_what_a_socket_sends") {
            return;
        }
        use crate::netns::{self, NetNs};
        use crate::packet::{ETHERTYPE_PPPOE_DISCOVERY, PacketSocket, padi_filter};
        let a = NetNs::create("ring-a").expect("namespace");
        let b = NetNs::create("ring-b").expect("namespace");
        netns::veth_pair(&a, "ring-a", &b, "ring-b").expect("veth pair");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let received = std::thread::scope(|scope| {
            let a = &a;
            scope.spawn(move || {
                ready_rx.recv().expect("the ring is up");
                a.run_async(|| async {
                    let socket = PacketSocket::bind("ring-a").expect("socket");
                    // 500 PADIs (more than the ring holds at once, read while it fills) and
                    // one PADR that the filter keeps out.
                    for i in 0..500u32 {
                        let mut frame = vec![0xff; 6];
                        frame.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
                        frame.extend_from_slice(&0x8863u16.to_be_bytes());
                        frame.extend_from_slice(&[0x11, 0x09, 0, 0, 0, 4]);
                        frame.extend_from_slice(&i.to_be_bytes());
                        socket.send(&frame).await.expect("send");
                        if i % 50 == 0 {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                    let mut padr = vec![0xff; 6];
                    padr.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x88, 0x63, 0x11, 0x19, 0, 0]);
                    padr.extend_from_slice(&[0, 0]);
                    socket.send(&padr).await.expect("send");
                })
                .expect("sender")
            });
            b.run_async(|| async {
                let mut ring = PacketRing::bind(
                    "ring-b",
                    ETHERTYPE_PPPOE_DISCOVERY,
                    &padi_filter(),
                    RingConfig {
                        block_size: 8192,
                        blocks: 4,
                        retire_after: Duration::from_millis(1),
                    },
                )
                .expect("ring");
                ready_tx.send(()).expect("signal");
                let mut seen = Vec::new();
                let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                while seen.len() < 500 {
                    let got = tokio::time::timeout_at(
                        deadline,
                        ring.recv(8, |frame| {
                            assert_eq!(frame[15], 0x09, "only PADIs");
                            let number = [frame[20], frame[21], frame[22], frame[23]];
                            seen.push(u32::from_be_bytes(number));
                        }),
                    )
                    .await;
                    match got {
                        Ok(result) => {
                            result.expect("recv");
                        }
                        Err(_) => break,
                    }
                }
                seen
            })
            .expect("receiver")
        });
        assert_eq!(
            received,
            (0..500).collect::<Vec<_>>(),
            "every PADI, in order"
        );
    }
}
