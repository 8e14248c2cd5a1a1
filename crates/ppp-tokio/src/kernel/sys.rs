//! The kernel interfaces of the PPP data path, as raw calls: the `/dev/ppp` ioctls
//! (`linux/ppp-ioctl.h`), the `AF_PPPOX` address (`linux/if_pppox.h`) and the tty line
//! discipline ioctls. Everything `unsafe` of the kernel data path is here, each block with its
//! `SAFETY` argument; the types above it ([`super::device`]) only call these functions.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// The line discipline number of PPP (`N_PPP` in `linux/tty.h`).
pub(crate) const N_PPP: libc::c_int = 3;
/// The line discipline of a plain terminal (`N_TTY`).
pub(crate) const N_TTY: libc::c_int = 0;
/// `PX_PROTO_OE`: PPP over Ethernet, the protocol of an `AF_PPPOX` socket.
pub(crate) const PX_PROTO_OE: libc::c_int = 0;
/// The size of `struct sockaddr_pppox` (packed: family, protocol, session id, remote MAC,
/// device name), which `connect(2)` on a PPPoE socket insists on.
pub(crate) const SOCKADDR_PPPOX_LEN: usize = 2 + 4 + 2 + 6 + libc::IFNAMSIZ;

// The ioctl number encoding of `asm-generic/ioctl.h`; PowerPC, MIPS and SPARC put the
// direction bits elsewhere.
#[cfg(not(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
)))]
mod encoding {
    pub(super) const WRITE: u32 = 1;
    pub(super) const READ: u32 = 2;
    pub(super) const DIR_SHIFT: u32 = 30;
}
#[cfg(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
))]
mod encoding {
    pub(super) const WRITE: u32 = 4;
    pub(super) const READ: u32 = 2;
    pub(super) const DIR_SHIFT: u32 = 29;
}

/// `_IOC(dir, 't', nr, size)`: the PPP ioctls all use type `'t'`.
const fn ppp_ioctl(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << encoding::DIR_SHIFT) | ((size as u32) << 16) | ((b't' as u32) << 8) | nr
}

const INT: usize = std::mem::size_of::<libc::c_int>();

/// `struct ppp_option_data` (PPPIOCSCOMPRESS): pointer, length, transmit flag.
#[repr(C)]
struct OptionData {
    ptr: *const u8,
    length: u32,
    transmit: libc::c_int,
}

/// `struct npioctl` (PPPIOCSNPMODE): protocol, mode.
#[repr(C)]
struct NpIoctl {
    protocol: libc::c_int,
    mode: libc::c_int,
}

/// `struct ppp_idle64` (PPPIOCGIDLE64): seconds since the last data packet sent, received.
#[repr(C)]
#[derive(Default)]
struct Idle64 {
    xmit_idle: i64,
    recv_idle: i64,
}

pub(crate) const PPPIOCGFLAGS: u32 = ppp_ioctl(encoding::READ, 90, INT);
pub(crate) const PPPIOCSFLAGS: u32 = ppp_ioctl(encoding::WRITE, 89, INT);
pub(crate) const PPPIOCSASYNCMAP: u32 = ppp_ioctl(encoding::WRITE, 87, INT);
pub(crate) const PPPIOCSRASYNCMAP: u32 = ppp_ioctl(encoding::WRITE, 84, INT);
pub(crate) const PPPIOCSMRU: u32 = ppp_ioctl(encoding::WRITE, 82, INT);
const PPPIOCSCOMPRESS: u32 = ppp_ioctl(encoding::WRITE, 77, std::mem::size_of::<OptionData>());
const PPPIOCSNPMODE: u32 = ppp_ioctl(encoding::WRITE, 75, std::mem::size_of::<NpIoctl>());
const PPPIOCGIDLE64: u32 = ppp_ioctl(encoding::READ, 63, std::mem::size_of::<Idle64>());
const PPPIOCNEWUNIT: u32 = ppp_ioctl(encoding::READ | encoding::WRITE, 62, INT);
pub(crate) const PPPIOCCONNECT: u32 = ppp_ioctl(encoding::WRITE, 58, INT);
const PPPIOCDISCONN: u32 = ppp_ioctl(0, 57, 0);
pub(crate) const PPPIOCATTCHAN: u32 = ppp_ioctl(encoding::WRITE, 56, INT);
pub(crate) const PPPIOCGCHAN: u32 = ppp_ioctl(encoding::READ, 55, INT);

fn check(result: libc::c_int) -> io::Result<libc::c_int> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

/// An ioctl that writes one `int` to the kernel (`_IOW(..., int)`).
pub(crate) fn ioctl_set_int(
    fd: BorrowedFd<'_>,
    request: u32,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `fd` is open for the call (borrowed); every request passed here is an `_IOW`
    // of one `int`, so the kernel reads exactly `size_of::<c_int>()` bytes from `&value`, a
    // valid local.
    check(unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            request as libc::Ioctl,
            &value as *const libc::c_int,
        )
    })
    .map(drop)
}

/// An ioctl that reads one `int` from the kernel (`_IOR(..., int)`).
pub(crate) fn ioctl_get_int(fd: BorrowedFd<'_>, request: u32) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    // SAFETY: `fd` is open for the call; every request passed here is an `_IOR` of one
    // `int`, so the kernel writes exactly `size_of::<c_int>()` bytes to `&mut value`, a valid,
    // exclusively borrowed local.
    check(unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            request as libc::Ioctl,
            &mut value as *mut libc::c_int,
        )
    })?;
    Ok(value)
}

/// PPPIOCNEWUNIT: makes the `/dev/ppp` instance `fd` a new unit (network interface), number
/// `unit` or any free one for -1; returns its number.
pub(crate) fn new_unit(fd: BorrowedFd<'_>, unit: libc::c_int) -> io::Result<libc::c_int> {
    let mut value = unit;
    // SAFETY: `fd` is open for the call; PPPIOCNEWUNIT is `_IOWR(int)`: the kernel reads the
    // wanted number from `value` and writes the unit's number back into it, a valid local.
    check(unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            PPPIOCNEWUNIT as libc::Ioctl,
            &mut value as *mut libc::c_int,
        )
    })?;
    Ok(value)
}

/// PPPIOCDISCONN: disconnects the channel of `fd` from its unit.
pub(crate) fn disconnect(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: `fd` is open for the call; PPPIOCDISCONN takes no argument.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), PPPIOCDISCONN as libc::Ioctl, 0) }).map(drop)
}

/// PPPIOCSCOMPRESS: gives the unit a compressor (`transmit`) or decompressor with `option`
/// (a CCP option, followed by key material for MPPE).
pub(crate) fn set_compress(fd: BorrowedFd<'_>, option: &[u8], transmit: bool) -> io::Result<()> {
    let length = u32::try_from(option.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "CCP option too long"))?;
    let data = OptionData {
        ptr: option.as_ptr(),
        length,
        transmit: libc::c_int::from(transmit),
    };
    // SAFETY: `fd` is open for the call; PPPIOCSCOMPRESS reads one `struct ppp_option_data`
    // from `&data` (a valid local with the kernel's layout), then `length` bytes from `ptr`,
    // which points into `option`, borrowed for the whole call and exactly `length` long.
    check(unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            PPPIOCSCOMPRESS as libc::Ioctl,
            &data as *const OptionData,
        )
    })
    .map(drop)
}

/// PPPIOCSNPMODE: what the unit does with packets of network protocol `protocol`.
pub(crate) fn set_np_mode(fd: BorrowedFd<'_>, protocol: u16, mode: libc::c_int) -> io::Result<()> {
    let data = NpIoctl {
        protocol: libc::c_int::from(protocol),
        mode,
    };
    // SAFETY: `fd` is open for the call; PPPIOCSNPMODE reads one `struct npioctl` (two
    // `int`s) from `&data`, a valid local with that layout.
    check(unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            PPPIOCSNPMODE as libc::Ioctl,
            &data as *const NpIoctl,
        )
    })
    .map(drop)
}

/// PPPIOCGIDLE64: seconds since the unit last sent and received a data packet.
pub(crate) fn idle(fd: BorrowedFd<'_>) -> io::Result<(i64, i64)> {
    let mut data = Idle64::default();
    // SAFETY: `fd` is open for the call; PPPIOCGIDLE64 writes one `struct ppp_idle64` (two
    // 64-bit integers) to `&mut data`, a valid, exclusively borrowed local with that layout.
    check(unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            PPPIOCGIDLE64 as libc::Ioctl,
            &mut data as *mut Idle64,
        )
    })?;
    Ok((data.xmit_idle, data.recv_idle))
}

/// TIOCSETD: sets the line discipline of the tty `fd`.
pub(crate) fn set_line_discipline(fd: BorrowedFd<'_>, discipline: libc::c_int) -> io::Result<()> {
    // SAFETY: `fd` is open for the call; TIOCSETD reads one `int` from `&discipline`.
    check(unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCSETD,
            &discipline as *const libc::c_int,
        )
    })
    .map(drop)
}

/// TIOCGETD: the line discipline of the tty `fd`.
pub(crate) fn line_discipline(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    let mut discipline: libc::c_int = 0;
    // SAFETY: `fd` is open for the call; TIOCGETD writes one `int` to `&mut discipline`.
    check(unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCGETD,
            &mut discipline as *mut libc::c_int,
        )
    })?;
    Ok(discipline)
}

/// The descriptor of `owner` (a tty stream that offers only `AsRawFd`, like tokio-serial's),
/// borrowed for as long as `owner` is.
pub(crate) fn borrow_fd<T: AsRawFd>(owner: &T) -> BorrowedFd<'_> {
    // SAFETY: `owner` owns its descriptor (the `AsRawFd` contract: it stays open while the
    // owner lives) and is borrowed for the lifetime of the result, so the descriptor cannot
    // be closed while the `BorrowedFd` exists.
    unsafe { BorrowedFd::borrow_raw(owner.as_raw_fd()) }
}

/// A new `AF_PPPOX` socket of protocol `PX_PROTO_OE` (close-on-exec).
pub(crate) fn pppoe_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments; it allocates nothing of ours.
    let fd = check(unsafe {
        libc::socket(
            libc::AF_PPPOX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            PX_PROTO_OE,
        )
    })?;
    // SAFETY: socket(2) succeeded, so `fd` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The bytes of a `struct sockaddr_pppox` for PPPoE session `session_id` with the peer at
/// `remote` over interface `device` (which must fit with its NUL: checked by the caller).
pub(crate) fn sockaddr_pppoe(
    session_id: u16,
    remote: [u8; 6],
    device: &str,
) -> [u8; SOCKADDR_PPPOX_LEN] {
    let mut address = [0u8; SOCKADDR_PPPOX_LEN];
    address[..2].copy_from_slice(&(libc::AF_PPPOX as u16).to_ne_bytes());
    address[2..6].copy_from_slice(&(PX_PROTO_OE as u32).to_ne_bytes());
    address[6..8].copy_from_slice(&session_id.to_be_bytes());
    address[8..14].copy_from_slice(&remote);
    let name = device.as_bytes();
    let len = name.len().min(libc::IFNAMSIZ - 1);
    address[14..14 + len].copy_from_slice(&name[..len]);
    address
}

/// connect(2) of a PPPoE socket to `address` (from [`sockaddr_pppoe`]).
pub(crate) fn connect_pppoe(
    fd: BorrowedFd<'_>,
    address: &[u8; SOCKADDR_PPPOX_LEN],
) -> io::Result<()> {
    // SAFETY: `fd` is open for the call; connect(2) reads `SOCKADDR_PPPOX_LEN` bytes from
    // `address`, which is exactly that long and borrowed for the call. The kernel copies the
    // address before it looks at it, so its (lack of) alignment does not matter.
    check(unsafe {
        libc::connect(
            fd.as_raw_fd(),
            address.as_ptr().cast::<libc::sockaddr>(),
            SOCKADDR_PPPOX_LEN as libc::socklen_t,
        )
    })
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers of `linux/ppp-ioctl.h` as the C headers compute them on x86-64.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn ioctl_numbers_match_the_c_headers() {
        assert_eq!(PPPIOCGFLAGS, 0x8004_745a);
        assert_eq!(PPPIOCSFLAGS, 0x4004_7459);
        assert_eq!(PPPIOCSASYNCMAP, 0x4004_7457);
        assert_eq!(PPPIOCSRASYNCMAP, 0x4004_7454);
        assert_eq!(PPPIOCSMRU, 0x4004_7452);
        assert_eq!(PPPIOCSCOMPRESS, 0x4010_744d);
        assert_eq!(PPPIOCSNPMODE, 0x4008_744b);
        assert_eq!(PPPIOCGIDLE64, 0x8010_743f);
        assert_eq!(PPPIOCNEWUNIT, 0xc004_743e);
        assert_eq!(PPPIOCCONNECT, 0x4004_743a);
        assert_eq!(PPPIOCDISCONN, 0x0000_7439);
        assert_eq!(PPPIOCATTCHAN, 0x4004_7438);
        assert_eq!(PPPIOCGCHAN, 0x8004_7437);
    }

    /// The argument structs have the kernel's sizes and field offsets (x86-64 and every other
    /// LP64 target: a pointer, two 32-bit ints; two ints; two 64-bit ints).
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn ioctl_argument_structs_match_the_kernel() {
        assert_eq!(std::mem::size_of::<OptionData>(), 16);
        assert_eq!(std::mem::offset_of!(OptionData, length), 8);
        assert_eq!(std::mem::offset_of!(OptionData, transmit), 12);
        assert_eq!(std::mem::size_of::<NpIoctl>(), 8);
        assert_eq!(std::mem::offset_of!(NpIoctl, mode), 4);
        assert_eq!(std::mem::size_of::<Idle64>(), 16);
        assert_eq!(std::mem::offset_of!(Idle64, recv_idle), 8);
    }

    #[test]
    fn pppoe_address_layout() {
        let address = sockaddr_pppoe(0x1234, [2, 0, 0, 0, 0, 1], "eth0");
        assert_eq!(address.len(), 30);
        assert_eq!(u16::from_ne_bytes([address[0], address[1]]), 24);
        assert_eq!(&address[2..6], &0u32.to_ne_bytes());
        assert_eq!(&address[6..8], &[0x12, 0x34]);
        assert_eq!(&address[8..14], &[2, 0, 0, 0, 0, 1]);
        assert_eq!(&address[14..18], b"eth0");
        assert!(address[18..].iter().all(|&b| b == 0));
        // A name that is too long keeps its terminating NUL.
        let long = sockaddr_pppoe(1, [0; 6], "a-very-long-interface-name");
        assert_eq!(long[29], 0);
    }
}
