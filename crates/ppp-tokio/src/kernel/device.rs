//! The kernel objects of the PPP data path: `/dev/ppp` units and channels, PPPoE sockets and
//! the PPP line discipline of a tty.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use pppoe_discovery::MacAddr;
use tokio::io::unix::AsyncFd;
use tracing::debug;

use super::sync::{AsyncSettings, KernelOp, NpMode};
use super::sys;
use crate::packet::register;

/// The device of the kernel's generic PPP layer.
pub const PPP_DEVICE: &str = "/dev/ppp";

/// An open `/dev/ppp` instance, non-blocking and registered with tokio.
#[derive(Debug)]
struct PppFile {
    fd: AsyncFd<File>,
}

impl PppFile {
    /// Opens `/dev/ppp`, makes the instance a unit or a channel with `setup` (an ioctl on the
    /// descriptor), and only then registers it with tokio: the kernel's `poll` of an instance
    /// that is neither yet answers without registering a wait queue, so a descriptor added to
    /// epoll before `setup` would never be woken.
    fn open<T>(setup: impl FnOnce(BorrowedFd<'_>) -> io::Result<T>) -> io::Result<(PppFile, T)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(PPP_DEVICE)
            .map_err(|error| io::Error::new(error.kind(), format!("{PPP_DEVICE}: {error}")))?;
        let value = setup(file.as_fd())?;
        let file = PppFile {
            fd: register(file)?,
        };
        Ok((file, value))
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }

    /// The next frame (protocol field first); 0 when the unit has no channel any more or the
    /// channel is gone. Cancel safe.
    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| fd.get_ref().read(buf)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Writes one frame; the kernel queues it (a full queue drops it, as a line would).
    fn send(&self, frame: &[u8]) -> io::Result<()> {
        match self.fd.get_ref().write(frame) {
            Ok(_) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                debug!("kernel queue full: frame dropped");
                Ok(())
            }
            Err(error) => Err(error),
        }
    }
}

/// How long the unit's data path has been quiet (`PPPIOCGIDLE`), in whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Idle {
    /// Since the last data packet sent.
    pub transmit: u64,
    /// Since the last data packet received.
    pub receive: u64,
}

/// A PPP unit: the kernel's network interface (`pppN`) carrying the datagrams of a link, and
/// the descriptor through which its NCP and CCP packets reach user space.
///
/// Dropping it removes the interface.
#[derive(Debug)]
pub struct PppUnit {
    file: PppFile,
    index: u32,
    name: String,
}

impl PppUnit {
    /// Creates a new unit with the first free number (`PPPIOCNEWUNIT`); its interface is
    /// `pppN`, down, without addresses. Needs `CAP_NET_ADMIN` in the calling thread's network
    /// namespace, which the interface belongs to.
    ///
    /// # Errors
    ///
    /// `/dev/ppp` is missing or cannot be opened (no `ppp_generic`), or the ioctl fails.
    pub fn create() -> io::Result<PppUnit> {
        let (file, index) = PppFile::open(|fd| sys::new_unit(fd, -1))?;
        let index = u32::try_from(index).map_err(io::Error::other)?;
        let name = format!("ppp{index}");
        debug!("{name}: PPP unit {index} created");
        Ok(PppUnit { file, index, name })
    }

    /// The unit's number.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames the interface (while it is down), like pppd's `ifname`.
    ///
    /// # Errors
    ///
    /// See [`crate::netconfig::ip`].
    pub fn rename(&mut self, name: &str) -> io::Result<()> {
        crate::netconfig::ip(&["link", "set", "dev", &self.name, "name", name])?;
        debug!("{}: renamed {name}", self.name);
        name.clone_into(&mut self.name);
        Ok(())
    }

    /// `PPPIOCSFLAGS`.
    ///
    /// # Errors
    ///
    /// The ioctl fails.
    pub fn set_flags(&self, flags: u32) -> io::Result<()> {
        sys::ioctl_set_int(self.file.fd(), sys::PPPIOCSFLAGS, flags as libc::c_int)
    }

    /// `PPPIOCGFLAGS` (the unit's flags and its compression state bits).
    ///
    /// # Errors
    ///
    /// The ioctl fails.
    pub fn flags(&self) -> io::Result<u32> {
        sys::ioctl_get_int(self.file.fd(), sys::PPPIOCGFLAGS).map(|f| f as u32)
    }

    /// `PPPIOCSMRU`: the largest packet the unit takes (for decompression).
    ///
    /// # Errors
    ///
    /// The ioctl fails.
    pub fn set_mru(&self, mru: u16) -> io::Result<()> {
        sys::ioctl_set_int(self.file.fd(), sys::PPPIOCSMRU, libc::c_int::from(mru))
    }

    /// `PPPIOCSCOMPRESS`: a compressor (`transmit`) or decompressor for `option` (a CCP option,
    /// then key material for MPPE).
    ///
    /// # Errors
    ///
    /// `EINVAL` when the kernel has no such compressor (`ppp_mppe`, `ppp_deflate` missing),
    /// `ENOBUFS` when it refuses the option.
    pub fn set_compressor(&self, option: &[u8], transmit: bool) -> io::Result<()> {
        sys::set_compress(self.file.fd(), option, transmit)
    }

    /// `PPPIOCSNPMODE`: whether packets of network protocol `protocol` pass.
    ///
    /// # Errors
    ///
    /// The ioctl fails.
    pub fn set_np_mode(&self, protocol: u16, mode: NpMode) -> io::Result<()> {
        sys::set_np_mode(self.file.fd(), protocol, mode.raw())
    }

    /// `PPPIOCGIDLE`: how long no data packet crossed the interface.
    ///
    /// # Errors
    ///
    /// The ioctl fails.
    pub fn idle(&self) -> io::Result<Idle> {
        let (transmit, receive) = sys::idle(self.file.fd())?;
        Ok(Idle {
            transmit: u64::try_from(transmit).unwrap_or(0),
            receive: u64::try_from(receive).unwrap_or(0),
        })
    }

    /// Waits for the next NCP, CCP or unknown-protocol frame the kernel hands up (protocol
    /// field first). Returns 0 when no channel is connected any more. Cancel safe.
    ///
    /// # Errors
    ///
    /// Errors of `read(2)`.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.recv(buf).await
    }

    /// Sends a frame (protocol field first) through the unit: the kernel compresses or
    /// encrypts it like data when CCP says so, and hands it to a channel.
    ///
    /// # Errors
    ///
    /// Errors of `write(2)`.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.file.send(frame)
    }

    /// Carries out one [`KernelOp`] that concerns the unit (the async channel's are ignored).
    ///
    /// # Errors
    ///
    /// The ioctl's.
    pub fn apply(&self, op: &KernelOp) -> io::Result<()> {
        match op {
            KernelOp::UnitFlags(flags) => self.set_flags(*flags),
            KernelOp::UnitMru(mru) => self.set_mru(*mru),
            KernelOp::Compressor { transmit, option } => {
                self.set_compressor(option.as_bytes(), *transmit)
            }
            KernelOp::NpMode { protocol, mode } => self.set_np_mode(*protocol, *mode),
            _ => Ok(()),
        }
    }
}

/// A PPP channel opened through `/dev/ppp` (`PPPIOCATTCHAN`): the descriptor through which a
/// link's LCP and authentication frames reach user space.
#[derive(Debug)]
pub struct PppChannel {
    file: PppFile,
    index: u32,
}

impl PppChannel {
    /// Attaches to channel `index` (from a PPPoE socket or a tty in the PPP line discipline).
    ///
    /// # Errors
    ///
    /// `/dev/ppp` cannot be opened, or no such channel exists in this network namespace.
    pub fn attach(index: u32) -> io::Result<PppChannel> {
        let raw = libc::c_int::try_from(index).map_err(io::Error::other)?;
        let (file, ()) = PppFile::open(|fd| sys::ioctl_set_int(fd, sys::PPPIOCATTCHAN, raw))?;
        Ok(PppChannel { file, index })
    }

    /// The channel's number.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Connects the channel to `unit` (`PPPIOCCONNECT`): from now on its data frames go to the
    /// unit's interface and its NCP frames to the unit's descriptor.
    ///
    /// # Errors
    ///
    /// The ioctl fails (`EINVAL`: already connected).
    pub fn connect(&self, unit: &PppUnit) -> io::Result<()> {
        let raw = libc::c_int::try_from(unit.index()).map_err(io::Error::other)?;
        sys::ioctl_set_int(self.file.fd(), sys::PPPIOCCONNECT, raw)
    }

    /// Disconnects the channel from its unit (`PPPIOCDISCONN`).
    ///
    /// # Errors
    ///
    /// The ioctl fails.
    pub fn disconnect(&self) -> io::Result<()> {
        sys::disconnect(self.file.fd())
    }

    /// Sets the framing of an async (serial) channel.
    ///
    /// # Errors
    ///
    /// The ioctls fail (`ENOTTY` on a channel that is not async).
    pub fn set_async(&self, settings: &AsyncSettings) -> io::Result<()> {
        let fd = self.file.fd();
        sys::ioctl_set_int(
            fd,
            sys::PPPIOCSASYNCMAP,
            settings.transmit_accm as libc::c_int,
        )?;
        sys::ioctl_set_int(
            fd,
            sys::PPPIOCSRASYNCMAP,
            settings.receive_accm as libc::c_int,
        )?;
        sys::ioctl_set_int(fd, sys::PPPIOCSFLAGS, settings.flags as libc::c_int)?;
        sys::ioctl_set_int(fd, sys::PPPIOCSMRU, libc::c_int::from(settings.mru))
    }

    /// Waits for the next LCP or authentication frame (protocol field first; for an async line
    /// without address and control fields). Returns 0 when the channel is gone (PADT, hang-up).
    /// Cancel safe.
    ///
    /// # Errors
    ///
    /// Errors of `read(2)`.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.recv(buf).await
    }

    /// Sends a frame (protocol field first) on the channel.
    ///
    /// # Errors
    ///
    /// Errors of `write(2)`.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.file.send(frame)
    }
}

/// A PPPoE session in the kernel: an `AF_PPPOX` socket of protocol `PX_PROTO_OE` connected to
/// the session id and the peer's Ethernet address (client and access concentrator alike). The
/// kernel then moves the session's frames between the interface and the socket's channel.
///
/// Dropping it ends the kernel's part of the session.
#[derive(Debug)]
pub struct PppoeSocket {
    fd: OwnedFd,
    session_id: u16,
}

impl PppoeSocket {
    /// Connects a new PPPoE socket to session `session_id` with `peer` over `interface`.
    ///
    /// # Errors
    ///
    /// `EAFNOSUPPORT`/`EPROTONOSUPPORT` without the `pppoe` module, `InvalidInput` for an
    /// interface name that does not fit, `EBUSY` if the session is taken, others of
    /// `connect(2)`.
    pub fn connect(interface: &str, session_id: u16, peer: MacAddr) -> io::Result<PppoeSocket> {
        if interface.is_empty() || interface.len() >= libc::IFNAMSIZ || interface.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("interface name {interface:?}"),
            ));
        }
        let fd = sys::pppoe_socket()?;
        let address = sys::sockaddr_pppoe(session_id, peer.0, interface);
        sys::connect_pppoe(fd.as_fd(), &address)?;
        debug!("{interface}: PPPoE session {session_id:#06x} with {peer} in the kernel");
        Ok(PppoeSocket { fd, session_id })
    }

    /// The session id.
    pub fn session_id(&self) -> u16 {
        self.session_id
    }

    /// The number of the socket's PPP channel (`PPPIOCGCHAN`).
    ///
    /// # Errors
    ///
    /// The ioctl fails (the socket is not connected).
    pub fn channel_index(&self) -> io::Result<u32> {
        let index = sys::ioctl_get_int(self.fd.as_fd(), sys::PPPIOCGCHAN)?;
        u32::try_from(index).map_err(io::Error::other)
    }
}

/// A tty switched to the PPP line discipline (`N_PPP`, the kernel's async HDLC): its bytes no
/// longer reach `read(2)`; the kernel frames and unframes, and the tty becomes a PPP channel.
/// [`restore`](Self::restore) puts the previous discipline back (dropping it does too).
#[derive(Debug)]
pub struct PppLineDiscipline {
    tty: OwnedFd,
    previous: libc::c_int,
    restored: bool,
}

impl PppLineDiscipline {
    /// Switches the tty `fd` to `N_PPP` (`TIOCSETD`), remembering its discipline.
    ///
    /// # Errors
    ///
    /// `fd` is not a tty, or the kernel has no `ppp_async` (`EINVAL`).
    pub fn set(fd: BorrowedFd<'_>) -> io::Result<PppLineDiscipline> {
        let tty = fd.try_clone_to_owned()?;
        let previous = sys::line_discipline(tty.as_fd())?;
        sys::set_line_discipline(tty.as_fd(), sys::N_PPP)?;
        Ok(PppLineDiscipline {
            tty,
            previous,
            restored: false,
        })
    }

    /// The number of the tty's PPP channel (`PPPIOCGCHAN`).
    ///
    /// # Errors
    ///
    /// The ioctl fails.
    pub fn channel_index(&self) -> io::Result<u32> {
        let index = sys::ioctl_get_int(self.tty.as_fd(), sys::PPPIOCGCHAN)?;
        u32::try_from(index).map_err(io::Error::other)
    }

    /// Puts the previous line discipline back (the tty reads and writes bytes again).
    ///
    /// # Errors
    ///
    /// The ioctl fails (the tty was hung up).
    pub fn restore(mut self) -> io::Result<()> {
        self.restored = true;
        let previous = if self.previous == sys::N_PPP {
            sys::N_TTY
        } else {
            self.previous
        };
        sys::set_line_discipline(self.tty.as_fd(), previous)
    }
}

impl Drop for PppLineDiscipline {
    fn drop(&mut self) {
        if !self.restored {
            sys::set_line_discipline(self.tty.as_fd(), sys::N_TTY).ok();
        }
    }
}
