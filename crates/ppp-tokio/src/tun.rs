//! TUN devices: the kernel's side of a PPP link's IP traffic.
//!
//! [`TunDevice::create`] opens `/dev/net/tun` and asks for a layer-3 device without the
//! packet-information prefix (`IFF_TUN | IFF_NO_PI`): every read returns one IPv4 or IPv6
//! packet, every write injects one, which is exactly what a PPP link carries. The device exists
//! as long as the `TunDevice` does. It is created in the network namespace of the calling
//! thread; configure it (MTU, addresses, routes) with [`crate::netconfig`].
//!
//! [`TunDevice::create_with_offload`] adds the virtio-net header and the kernel's offloads
//! (`IFF_VNET_HDR`, `TUNSETOFFLOAD`): reads give TCP super-packets of up to 64 KiB, which
//! [`crate::offload`] cuts to the link's MTU, and writes take the super-packets it coalesces.
//!
//! The ioctl is done by hand rather than through a TUN crate: it is one `ioctl(2)` with a
//! fixed-size `struct ifreq`, while the crates bring address management, platform layers and
//! dependencies this stack does not use.
//!
//! ```no_run
//! use ppp_tokio::{netconfig, tun::TunDevice};
//!
//! # async fn run() -> std::io::Result<()> {
//! let tun = TunDevice::create(Some("ppp0"))?;
//! netconfig::set_mtu(tun.name(), 1492)?;
//! netconfig::set_up(tun.name())?;
//! let mut buf = vec![0; 65535];
//! let len = tun.recv(&mut buf).await?;
//! tun.send(&buf[..len]).await?; // reflect it
//! # Ok(())
//! # }
//! ```

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use tokio::io::unix::AsyncFd;
use tracing::debug;

use crate::packet::{interface_index, interface_name, interface_request, register};

/// The clone device every TUN is created from.
const TUN_CLONE_DEVICE: &str = "/dev/net/tun";

/// A TUN device (`IFF_TUN | IFF_NO_PI`): IP packets in, IP packets out.
///
/// [`recv`](Self::recv) and [`send`](Self::send) take `&self`, so one device can be shared
/// between a reading and a writing task.
#[derive(Debug)]
pub struct TunDevice {
    fd: AsyncFd<File>,
    name: String,
    index: u32,
    offload: bool,
    udp_gso: bool,
}

impl TunDevice {
    /// Creates a TUN device called `name`, or with a name the kernel chooses (`tun0`, `tun1`...)
    /// if `name` is `None`. The device is down and has no address.
    ///
    /// Must be called within a tokio runtime. Needs `CAP_NET_ADMIN` in the calling thread's
    /// network namespace.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a name that is empty, longer than 15 bytes or has a NUL; `EBUSY` if an
    /// interface of that name exists and is not a free TUN device; `EPERM` without the
    /// capability; `ENOENT` if `/dev/net/tun` is missing.
    ///
    /// # Panics
    ///
    /// As tokio's `AsyncFd` does, if the current runtime was built without I/O enabled.
    pub fn create(name: Option<&str>) -> io::Result<TunDevice> {
        TunDevice::open(name, false)
    }

    /// Creates a TUN device with offloads, like [`create`](Self::create) otherwise: every packet
    /// read and written is preceded by a 10-byte virtio-net header
    /// ([`crate::offload::VirtioNetHdr`], little-endian), and the kernel hands over TCP
    /// super-packets of up to 64 KiB with their checksums left to finish (`IFF_VNET_HDR`,
    /// `TUNSETVNETHDRSZ` 10, `TUNSETOFFLOAD` with `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`, and
    /// `TUN_F_USO4 | TUN_F_USO6` for UDP where the kernel has them: see
    /// [`takes_udp_gso`](Self::takes_udp_gso)) and takes such super-packets back. See [`crate::offload`] for cutting them to the link's
    /// MTU and merging received segments. Read with a buffer of at least
    /// [`offload::VNET_HDR_LEN`](crate::offload::VNET_HDR_LEN) +
    /// [`offload::MAX_PACKET_LEN`](crate::offload::MAX_PACKET_LEN) bytes.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create); `EINVAL` from a kernel without these offloads.
    ///
    /// # Panics
    ///
    /// As [`create`](Self::create).
    pub fn create_with_offload(name: Option<&str>) -> io::Result<TunDevice> {
        TunDevice::open(name, true)
    }

    fn open(name: Option<&str>, offload: bool) -> io::Result<TunDevice> {
        let mut request = match name {
            Some(name) => interface_request(name)?,
            None => interface_request("tun%d")?,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(TUN_CLONE_DEVICE)?;
        let mut flags = libc::IFF_TUN | libc::IFF_NO_PI;
        if offload {
            flags |= libc::IFF_VNET_HDR;
        }
        request.ifr_ifru.ifru_flags = flags as libc::c_short;
        set_interface(&file, &mut request)?;
        let udp_gso = offload && enable_offloads(&file)?;
        let name = interface_name(&request);
        let index = interface_index(&name)?;
        debug!("{name}: TUN device created (index {index}, offloads {offload}, UDP GSO {udp_gso})");
        Ok(TunDevice {
            fd: register(file)?,
            name,
            index,
            offload,
            udp_gso,
        })
    }

    /// Whether the device takes and gives UDP super-packets (`GSO_UDP_L4`, `TUN_F_USO4 |
    /// TUN_F_USO6`: Linux 6.2 and later) besides TCP ones: only with offloads, where the kernel
    /// knows them. [`crate::offload::Coalescer::with_udp`] may merge datagrams for it, and its
    /// reads may hold UDP super-packets ([`crate::offload::segment`] cuts them).
    pub fn takes_udp_gso(&self) -> bool {
        self.udp_gso
    }

    /// Whether the device was created with offloads ([`create_with_offload`]): packets come and
    /// go behind a virtio-net header.
    ///
    /// [`create_with_offload`]: Self::create_with_offload
    pub fn has_offload(&self) -> bool {
        self.offload
    }

    /// The name of the interface.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface index (for rtnetlink, see [`crate::rtnl`]).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Waits for the next IP packet the kernel routes into the device and copies it into `buf`.
    /// Returns its length; a packet longer than `buf` is truncated, so pass at least the MTU.
    ///
    /// Cancel safe: if the future is dropped before it completes, no packet was consumed.
    ///
    /// # Errors
    ///
    /// Errors of `read(2)` other than `EAGAIN`.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| fd.get_ref().read(buf)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Waits for the next IP packet and returns it in a vector of its own length. The packet is
    /// read into a scratch buffer of the calling thread (64 KiB and a virtio-net header, one per
    /// thread), so a server with thousands of devices waiting for packets holds no buffer per
    /// device. On a device with offloads the vector starts with the virtio-net header.
    ///
    /// Cancel safe, like [`recv`](Self::recv).
    ///
    /// # Errors
    ///
    /// Errors of `read(2)` other than `EAGAIN`.
    pub async fn recv_packet(&self) -> io::Result<Vec<u8>> {
        loop {
            let mut guard = self.fd.readable().await?;
            let read = guard.try_io(|fd| {
                SCRATCH.with_borrow_mut(|buf| {
                    let len = fd.get_ref().read(buf)?;
                    Ok(buf[..len].to_vec())
                })
            });
            match read {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Takes the next packet if one is already waiting, without waiting for one: `Ok(None)` when
    /// none is. Lets a loop woken by [`recv`](Self::recv) read what else is queued before it
    /// acts (and send the frames of all of it in one batch).
    ///
    /// # Errors
    ///
    /// Errors of `read(2)` other than `EAGAIN`.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self
            .fd
            .try_io(tokio::io::Interest::READABLE, |file| (&*file).read(buf))
        {
            Ok(len) => Ok(Some(len)),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Waits for the next IP packet, then takes what else is already queued, appending each to
    /// `batch` (through the thread's scratch buffer, as [`recv_packet`](Self::recv_packet)
    /// does): at most `max_packets`, and no more once `batch` holds [`PacketBatch::FULL`]
    /// bytes. Returns how many were appended (at least one). One allocation for many packets
    /// where [`recv_packet`](Self::recv_packet) makes one each.
    ///
    /// Cancel safe, like [`recv`](Self::recv): a packet read is in `batch`.
    ///
    /// # Errors
    ///
    /// Errors of `read(2)` other than `EAGAIN` (packets appended before it stay in `batch`).
    pub async fn recv_batch(
        &self,
        batch: &mut PacketBatch,
        max_packets: usize,
    ) -> io::Result<usize> {
        let before = batch.len();
        loop {
            let mut guard = self.fd.readable().await?;
            let mut drained = false;
            let result = SCRATCH.with_borrow_mut(|buf| {
                let mut file = guard.get_inner();
                while batch.len() - before < max_packets.max(1)
                    && batch.byte_len() < PacketBatch::FULL
                {
                    match file.read(buf) {
                        Ok(len) => batch.push(&buf[..len]),
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                            drained = true;
                            break;
                        }
                        Err(error) => return Err(error),
                    }
                }
                Ok(batch.len() - before)
            });
            if drained {
                guard.clear_ready();
            }
            match result {
                Ok(0) => continue,
                other => return other,
            }
        }
    }

    /// Hands one IP packet to the kernel as if it had arrived on the interface.
    ///
    /// # Errors
    ///
    /// `EINVAL` for a packet the kernel cannot take (empty, too long); `EIO` if the interface
    /// is down; other errors of `write(2)`.
    pub async fn send(&self, packet: &[u8]) -> io::Result<()> {
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| fd.get_ref().write(packet)) {
                Ok(Ok(written)) if written == packet.len() => return Ok(()),
                Ok(Ok(written)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        format!("wrote {written} of {} bytes", packet.len()),
                    ));
                }
                Ok(Err(error)) => return Err(error),
                Err(_would_block) => continue,
            }
        }
    }
}

thread_local! {
    /// Where [`TunDevice::recv_packet`] and [`TunDevice::recv_batch`] read: the largest packet,
    /// and the virtio-net header of a device with offloads; one per thread.
    static SCRATCH: RefCell<Vec<u8>> =
        RefCell::new(vec![0; 65_536 + crate::offload::VNET_HDR_LEN]);
}

/// IP packets read from a TUN device ([`TunDevice::recv_batch`]), back to back in one buffer.
///
/// ```
/// use ppp_tokio::tun::PacketBatch;
///
/// let mut batch = PacketBatch::default();
/// batch.push(&[0x45, 0, 0, 20]);
/// batch.push(&[0x60, 0]);
/// assert_eq!(batch.len(), 2);
/// assert_eq!(batch.get(1), Some(&[0x60, 0][..]));
/// if let Some(packet) = batch.get_mut(0) {
///     packet[1] = 0x10;
/// }
/// assert_eq!(batch.iter().next(), Some(&[0x45, 0x10, 0, 20][..]));
/// batch.clear();
/// assert!(batch.is_empty());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PacketBatch {
    bytes: Vec<u8>,
    /// Where each packet ends in `bytes`.
    ends: Vec<usize>,
}

impl PacketBatch {
    /// Bytes after which [`TunDevice::recv_batch`] reads no more into a batch.
    pub const FULL: usize = 64 * 1024;

    /// The number of packets.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The bytes of all packets together.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// Appends a copy of `packet`.
    pub fn push(&mut self, packet: &[u8]) {
        self.bytes.extend_from_slice(packet);
        self.ends.push(self.bytes.len());
    }

    /// Packet `index`.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        let (start, end) = self.bounds(index)?;
        self.bytes.get(start..end)
    }

    /// Packet `index`, to change in place.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut [u8]> {
        let (start, end) = self.bounds(index)?;
        self.bytes.get_mut(start..end)
    }

    /// The packets in the order they were read.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).filter_map(|index| self.get(index))
    }

    /// Forgets every packet (keeps the memory).
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    fn bounds(&self, index: usize) -> Option<(usize, usize)> {
        let end = *self.ends.get(index)?;
        let start = match index.checked_sub(1) {
            Some(previous) => *self.ends.get(previous)?,
            None => 0,
        };
        Some((start, end))
    }
}

/// `TUNSETIFF`: attaches the open clone device to a new (or existing, free) TUN interface.
#[allow(unsafe_code)]
fn set_interface(file: &File, request: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: `file` is an open `/dev/net/tun` descriptor; TUNSETIFF reads and writes exactly
    // one `struct ifreq`, and `request` is a valid, exclusively borrowed `ifreq` with a
    // NUL-terminated name (built by `interface_request`).
    let result = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            libc::TUNSETIFF,
            request as *mut libc::ifreq,
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `TUN_F_USO4` and `TUN_F_USO6` (linux/if_tun.h, Linux 6.2): UDP segmentation offload.
const TUN_F_USO4: libc::c_uint = 0x20;
const TUN_F_USO6: libc::c_uint = 0x40;

/// The virtio-net header's length, little-endian byte order on every host, and the offloads
/// (checksums, TCP segmentation over IPv4 and IPv6, and UDP segmentation where the kernel has
/// it) of a TUN device opened with `IFF_VNET_HDR`. Returns whether UDP segmentation is on.
#[allow(unsafe_code)]
fn enable_offloads(file: &File) -> io::Result<bool> {
    let check = |result: libc::c_int| {
        if result < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    let header_len = crate::offload::VNET_HDR_LEN as libc::c_int;
    // SAFETY: `file` is an open TUN descriptor; TUNSETVNETHDRSZ reads one `int` through the
    // pointer, which points to a live local `c_int`.
    check(unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            libc::TUNSETVNETHDRSZ,
            &header_len as *const libc::c_int,
        )
    })?;
    if cfg!(target_endian = "big") {
        let little_endian: libc::c_int = 1;
        // SAFETY: as above: TUNSETVNETLE reads one `int` through a pointer to a live local.
        check(unsafe {
            libc::ioctl(
                file.as_raw_fd(),
                libc::TUNSETVNETLE,
                &little_endian as *const libc::c_int,
            )
        })?;
    }
    let offloads = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;
    let set_offloads = |offloads: libc::c_uint| {
        // SAFETY: `file` is an open TUN descriptor; TUNSETOFFLOAD takes its argument by value
        // (an `unsigned long` of flags) and dereferences nothing.
        check(unsafe {
            libc::ioctl(
                file.as_raw_fd(),
                libc::TUNSETOFFLOAD,
                libc::c_ulong::from(offloads),
            )
        })
    };
    // A kernel that does not know the UDP flags refuses them all (EINVAL): then without.
    if set_offloads(offloads | TUN_F_USO4 | TUN_F_USO6).is_ok() {
        return Ok(true);
    }
    set_offloads(offloads).map(|()| false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_refused_before_any_syscall() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let _guard = runtime.enter();
        for name in ["", "a-name-far-too-long", "nul\0"] {
            let error = TunDevice::create(Some(name)).expect_err(name);
            assert_eq!(
                error.kind(),
                io::ErrorKind::InvalidInput,
                "{name:?}: {error}"
            );
        }
    }
}
