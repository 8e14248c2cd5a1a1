//! Raw Ethernet for PPPoE: an `AF_PACKET` socket bound to one interface that sees only PPPoE.
//!
//! [`PacketSocket`] receives and sends whole Ethernet frames (destination, source, ethertype,
//! payload; no FCS) on one interface. A classic BPF program attached with `SO_ATTACH_FILTER`
//! lets only PPPoE Discovery (`0x8863`) and PPPoE Session (`0x8864`) frames reach user space and
//! drops the copies of our own outgoing frames (`PACKET_OUTGOING`), so the kernel does the
//! filtering and nothing else is ever copied out. [`pppoe_filter`] returns that program, and
//! [`FilterVerdict::of`] evaluates it on a frame without a socket, which is what the unit tests
//! (and a fuzzer, if one wants) exercise.
//!
//! The socket lives in the network namespace of the thread that created it, for its whole life;
//! see `netns` (feature `test-util`) for creating it inside a test namespace.
//!
//! ```no_run
//! use ppp_tokio::packet::{PacketSocket, ETHERTYPE_PPPOE_DISCOVERY};
//!
//! # async fn run() -> std::io::Result<()> {
//! let socket = PacketSocket::bind("eth0")?;
//! let mut frame = vec![0xFF; 6]; // broadcast: a PADI
//! frame.extend_from_slice(&socket.mac());
//! frame.extend_from_slice(&ETHERTYPE_PPPOE_DISCOVERY.to_be_bytes());
//! frame.extend_from_slice(&[0x11, 0x09, 0x00, 0x00, 0x00, 0x04, 0x01, 0x01, 0x00, 0x00]);
//! socket.send(&frame).await?;
//! let mut buf = vec![0; socket.mtu() as usize + 18];
//! let len = socket.recv(&mut buf).await?;
//! println!("received {len} bytes of PPPoE");
//! # Ok(())
//! # }
//! ```
//!
//! # Unsafe code
//!
//! What socket2 does not wrap is done with `libc`, in small `#[allow(unsafe_code)]` items, each
//! block with its `SAFETY` argument: `bind(2)` with a `sockaddr_ll` on the stack; the
//! `SIOCGIFINDEX`/`SIOCGIFHWADDR`/`SIOCGIFMTU` `ioctl(2)`s with a fixed-size, zero-initialised
//! `ifreq` on the stack, and reading the union field each one wrote; `setsockopt(2)` through
//! one wrapper (`set_socket_option`) taking the option's value by reference; tokio's
//! `AsyncFd::register` (which wants the promise that the descriptor stays owned). No pointer
//! outlives its call and no buffer size depends on input; the only input-dependent logic, the
//! filter, is the pure [`pppoe_filter`] / [`FilterVerdict::of`].

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::OnceLock;

use socket2::{Domain, Socket, Type};
use tokio::io::unix::AsyncFd;
use tracing::debug;

/// The ethertype of PPPoE Discovery frames (PADI, PADO, PADR, PADS, PADT).
pub const ETHERTYPE_PPPOE_DISCOVERY: u16 = 0x8863;
/// The ethertype of PPPoE Session frames (PPP inside).
pub const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
/// The length of an Ethernet header: destination, source, ethertype.
pub const ETHERNET_HEADER_LEN: usize = 14;

/// `ETH_P_ALL`: every protocol, in host order (the socket API wants it in network order).
const ETH_P_ALL: u16 = 0x0003;
/// `PACKET_OUTGOING`: a frame this host sent, looped back to packet taps.
const PACKET_OUTGOING: u32 = 4;
/// `ARPHRD_ETHER`: the hardware type of Ethernet-like interfaces.
const ARPHRD_ETHER: u16 = 1;

// Classic BPF opcodes (linux/bpf_common.h): class | size | mode, or class | op | source.
const BPF_LD: u16 = 0x00;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_H: u16 = 0x08;
const BPF_B: u16 = 0x10;
const BPF_ABS: u16 = 0x20;
const BPF_JEQ: u16 = 0x10;
const BPF_K: u16 = 0x00;
const BPF_LD_W_ABS: u16 = BPF_LD | BPF_W | BPF_ABS;
const BPF_LD_H_ABS: u16 = BPF_LD | BPF_H | BPF_ABS;
const BPF_LD_B_ABS: u16 = BPF_LD | BPF_B | BPF_ABS;
const BPF_JMP_JEQ_K: u16 = BPF_JMP | BPF_JEQ | BPF_K;
const BPF_ALU: u16 = 0x04;
const BPF_MOD: u16 = 0x90;
const BPF_ALU_MOD_K: u16 = BPF_ALU | BPF_MOD | BPF_K;
const BPF_RET_K: u16 = BPF_RET | BPF_K;
/// `SKF_AD_OFF + SKF_AD_PKTTYPE`: the offset that loads the packet type instead of data.
const SKF_AD_PKTTYPE_OFFSET: u32 = (-0x1000_i32 + 4) as u32;
/// How many bytes of an accepted frame to keep: all of them.
const ACCEPT_ALL: u32 = 0x0004_0000;

/// One classic BPF instruction (`struct sock_filter`): opcode, jump offsets if true and if
/// false, constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BpfInstruction {
    /// The opcode: class, size, mode or operation, source.
    pub code: u16,
    /// How many instructions to skip if the comparison holds.
    pub jt: u8,
    /// How many instructions to skip if it does not.
    pub jf: u8,
    /// The constant operand.
    pub k: u32,
}

impl BpfInstruction {
    /// The form socket2 attaches (for socket2 0.6: `socket2::SockFilter::new(..)`).
    fn to_sock_filter(self) -> socket2::SockFilter {
        socket2::SockFilter::new(self.code, self.jt, self.jf, self.k)
    }
}

const fn insn(code: u16, jt: u8, jf: u8, k: u32) -> BpfInstruction {
    BpfInstruction { code, jt, jf, k }
}

/// The classic BPF program attached to every [`PacketSocket`].
///
/// ```text
/// (000) ld  #pktType               ; SKF_AD_PKTTYPE
/// (001) jeq #4 (outgoing)  jt 6  jf 2
/// (002) ldh [12]                   ; ethertype
/// (003) jeq #0x8863        jt 5  jf 4
/// (004) jeq #0x8864        jt 5  jf 6
/// (005) ret #262144                ; accept the whole frame
/// (006) ret #0                     ; drop
/// ```
pub fn pppoe_filter() -> [BpfInstruction; 7] {
    [
        insn(BPF_LD_W_ABS, 0, 0, SKF_AD_PKTTYPE_OFFSET),
        insn(BPF_JMP_JEQ_K, 4, 0, PACKET_OUTGOING),
        insn(BPF_LD_H_ABS, 0, 0, 12),
        insn(BPF_JMP_JEQ_K, 1, 0, u32::from(ETHERTYPE_PPPOE_DISCOVERY)),
        insn(BPF_JMP_JEQ_K, 0, 1, u32::from(ETHERTYPE_PPPOE_SESSION)),
        insn(BPF_RET_K, 0, 0, ACCEPT_ALL),
        insn(BPF_RET_K, 0, 0, 0),
    ]
}

/// The classic BPF program of a socket bound to one ethertype
/// ([`PacketSocket::bind_ethertype`]).
///
/// ```text
/// (000) ld  #pktType               ; SKF_AD_PKTTYPE
/// (001) jeq #4 (outgoing)  jt 3  jf 0
/// (002) ldh [12]                   ; ethertype
/// (003) jeq #ethertype     jt 0  jf 1
/// (004) ret #262144                ; accept the whole frame
/// (005) ret #0                     ; drop
/// ```
pub fn ethertype_filter(ethertype: u16) -> [BpfInstruction; 6] {
    [
        insn(BPF_LD_W_ABS, 0, 0, SKF_AD_PKTTYPE_OFFSET),
        insn(BPF_JMP_JEQ_K, 3, 0, PACKET_OUTGOING),
        insn(BPF_LD_H_ABS, 0, 0, 12),
        insn(BPF_JMP_JEQ_K, 0, 1, u32::from(ethertype)),
        insn(BPF_RET_K, 0, 0, ACCEPT_ALL),
        insn(BPF_RET_K, 0, 0, 0),
    ]
}

/// The program [`PacketSocket::keep_discovery_only`] attaches: PPPoE Discovery only
/// ([`ethertype_filter`] for 0x8863), for the kernel data path, where the kernel's `pppoe`
/// takes the session frames and none of them should be copied to user space.
pub fn discovery_filter() -> [BpfInstruction; 6] {
    ethertype_filter(ETHERTYPE_PPPOE_DISCOVERY)
}

/// The PPPoE Discovery code of a PADI.
const CODE_PADI: u32 = 0x09;
/// Where the Discovery code is in an Ethernet frame: after the header and the version/type byte.
const CODE_OFFSET: u32 = 15;

/// The program of an access concentrator's PADI socket: PPPoE Discovery frames with the PADI
/// code only. With [`discovery_except_padi_filter`] on a second socket, a flood of PADIs fills
/// only its own receive queue, never the one the clients' PADRs and PADTs wait in.
///
/// ```text
/// (000) ld  #pktType               ; SKF_AD_PKTTYPE
/// (001) jeq #4 (outgoing)  jt 5  jf 0
/// (002) ldh [12]                   ; ethertype
/// (003) jeq #0x8863        jt 0  jf 3
/// (004) ldb [15]                   ; discovery code
/// (005) jeq #0x09 (PADI)   jt 0  jf 1
/// (006) ret #262144                ; accept the whole frame
/// (007) ret #0                     ; drop
/// ```
pub fn padi_filter() -> [BpfInstruction; 8] {
    discovery_code_filter(0, 1)
}

/// The program of an access concentrator's socket for the rest of PPPoE Discovery (PADRs,
/// PADTs, anything but PADIs): [`padi_filter`] with the last comparison's outcomes swapped.
///
/// ```text
/// (005) jeq #0x09 (PADI)   jt 1  jf 0
/// ```
pub fn discovery_except_padi_filter() -> [BpfInstruction; 8] {
    discovery_code_filter(1, 0)
}

fn discovery_code_filter(padi_jt: u8, padi_jf: u8) -> [BpfInstruction; 8] {
    [
        insn(BPF_LD_W_ABS, 0, 0, SKF_AD_PKTTYPE_OFFSET),
        insn(BPF_JMP_JEQ_K, 5, 0, PACKET_OUTGOING),
        insn(BPF_LD_H_ABS, 0, 0, 12),
        insn(BPF_JMP_JEQ_K, 0, 3, u32::from(ETHERTYPE_PPPOE_DISCOVERY)),
        insn(BPF_LD_B_ABS, 0, 0, CODE_OFFSET),
        insn(BPF_JMP_JEQ_K, padi_jt, padi_jf, CODE_PADI),
        insn(BPF_RET_K, 0, 0, ACCEPT_ALL),
        insn(BPF_RET_K, 0, 0, 0),
    ]
}

/// Where the last byte of the source MAC address is in an Ethernet frame.
const SOURCE_MAC_LAST: u32 = 11;

/// `filter` (one of this module's filters: its last two instructions accept and drop) narrowed
/// to the frames of the clients of worker `index` of `count`: those whose source MAC address
/// ends in a byte ≡ `index` (mod `count`), as
/// [`AcGroup::member_of`](pppoe_discovery::AcGroup::member_of) assigns them. So the kernel
/// steers each client's frames to one worker's socket, and no frame crosses threads. With
/// `count` ≤ 1, `filter` as it is.
///
/// Three instructions go in before the accepting one; a jump that dropped still drops:
///
/// ```text
/// (n-2) ldb [11]                   ; last byte of the source address
/// (n-1) mod #count
/// (n)   jeq #index         jt 0  jf 1
/// (n+1) ret #262144                ; accept the whole frame
/// (n+2) ret #0                     ; drop
/// ```
///
/// ```
/// use ppp_tokio::packet::{FilterVerdict, ethertype_filter, shard_filter};
///
/// let odd = shard_filter(&ethertype_filter(0x8864), 1, 2);
/// let mut frame = vec![0xff; 6]; // destination
/// frame.extend_from_slice(&[2, 0, 0, 0, 0, 0x03]); // source: ends in an odd byte
/// frame.extend_from_slice(&[0x88, 0x64, 0x11, 0x00]);
/// assert!(matches!(FilterVerdict::of(&odd, &frame, 0), FilterVerdict::Accept(_)));
/// frame[11] = 0x04;
/// assert_eq!(FilterVerdict::of(&odd, &frame, 0), FilterVerdict::Drop);
/// ```
pub fn shard_filter(filter: &[BpfInstruction], index: u16, count: u16) -> Vec<BpfInstruction> {
    if count <= 1 || filter.len() < 2 {
        return filter.to_vec();
    }
    let accept = filter.len() - 2;
    let drop = filter.len() - 1;
    let mut steered = Vec::with_capacity(filter.len() + 3);
    for (pc, instruction) in filter[..accept].iter().enumerate() {
        let mut instruction = *instruction;
        if instruction.code == BPF_JMP_JEQ_K {
            // A jump to the drop now skips the three new instructions too.
            for offset in [&mut instruction.jt, &mut instruction.jf] {
                if pc + 1 + usize::from(*offset) == drop {
                    *offset += 3;
                }
            }
        }
        steered.push(instruction);
    }
    steered.extend([
        insn(BPF_LD_B_ABS, 0, 0, SOURCE_MAC_LAST),
        insn(BPF_ALU_MOD_K, 0, 0, u32::from(count)),
        insn(BPF_JMP_JEQ_K, 0, 1, u32::from(index)),
    ]);
    steered.extend_from_slice(&filter[accept..]);
    steered
}

/// What a classic BPF program decides about one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterVerdict {
    /// Deliver up to this many bytes of the frame.
    Accept(u32),
    /// Drop the frame.
    Drop,
}

impl FilterVerdict {
    /// Runs `program` on `frame` the way the kernel would for a frame of packet type `pkttype`
    /// (`PACKET_HOST` = 0, `PACKET_BROADCAST` = 1, `PACKET_OUTGOING` = 4, ...).
    ///
    /// Supports the instructions this module's filters use (absolute loads of words, half-words
    /// and bytes,
    /// `SKF_AD_PKTTYPE`, `mod #k`, `jeq #k`, `ret #k`); anything else, a load past the end of
    /// the frame, a modulo by 0 or a jump out of the program drops the frame, as the kernel
    /// does. Never panics.
    pub fn of(program: &[BpfInstruction], frame: &[u8], pkttype: u32) -> FilterVerdict {
        let mut accumulator: u32 = 0;
        let mut pc = 0usize;
        // Classic BPF only jumps forward, so the program runs at most `len` instructions.
        while let Some(instruction) = program.get(pc) {
            pc += 1;
            match instruction.code {
                BPF_LD_W_ABS if instruction.k == SKF_AD_PKTTYPE_OFFSET => accumulator = pkttype,
                BPF_LD_W_ABS => match load(frame, instruction.k, 4) {
                    Some(bytes) => {
                        accumulator = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                    }
                    None => return FilterVerdict::Drop,
                },
                BPF_LD_H_ABS => match load(frame, instruction.k, 2) {
                    Some(bytes) => {
                        accumulator = u32::from(u16::from_be_bytes([bytes[0], bytes[1]]))
                    }
                    None => return FilterVerdict::Drop,
                },
                BPF_LD_B_ABS => match load(frame, instruction.k, 1) {
                    Some(bytes) => accumulator = u32::from(bytes[0]),
                    None => return FilterVerdict::Drop,
                },
                BPF_ALU_MOD_K => match accumulator.checked_rem(instruction.k) {
                    Some(rest) => accumulator = rest,
                    None => return FilterVerdict::Drop,
                },
                BPF_JMP_JEQ_K => {
                    let offset = if accumulator == instruction.k {
                        instruction.jt
                    } else {
                        instruction.jf
                    };
                    pc += usize::from(offset);
                }
                BPF_RET_K if instruction.k == 0 => return FilterVerdict::Drop,
                BPF_RET_K => return FilterVerdict::Accept(instruction.k),
                _ => return FilterVerdict::Drop,
            }
        }
        FilterVerdict::Drop
    }
}

fn load(frame: &[u8], offset: u32, len: usize) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    frame.get(start..start.checked_add(len)?)
}

/// What [`interface_info`] reads about a network interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// The interface index.
    pub index: u32,
    /// The hardware (MAC) address.
    pub mac: [u8; 6],
    /// The MTU: the largest payload of an Ethernet frame.
    pub mtu: u32,
}

/// Reads the index, MAC address and MTU of the Ethernet interface `ifname` in the network
/// namespace of the calling thread.
///
/// # Errors
///
/// `InvalidInput` if the name is empty, too long or contains a NUL; `NotFound`-like OS errors
/// (`ENODEV`) if there is no such interface; `InvalidInput` if it is not an Ethernet interface.
pub fn interface_info(ifname: &str) -> io::Result<InterfaceInfo> {
    // Any socket will do for the SIOCGIF* ioctls, which act in the socket's namespace; a Unix
    // datagram socket needs no privilege.
    let socket = Socket::new(Domain::UNIX, Type::DGRAM.cloexec(), None)?;
    InterfaceInfo::query(&socket, ifname)
}

impl InterfaceInfo {
    #[allow(unsafe_code)]
    pub(crate) fn query(socket: &Socket, ifname: &str) -> io::Result<InterfaceInfo> {
        let fd = socket.as_raw_fd();
        let request = interface_request(ifname)?;
        let index = ifreq_ioctl(fd, libc::SIOCGIFINDEX, &request)?;
        // SAFETY: SIOCGIFINDEX succeeded, so the kernel wrote `ifru_ifindex`; every bit pattern
        // of a c_int is valid.
        let index = unsafe { index.ifr_ifru.ifru_ifindex };
        let hwaddr = ifreq_ioctl(fd, libc::SIOCGIFHWADDR, &request)?;
        // SAFETY: SIOCGIFHWADDR succeeded, so the kernel wrote `ifru_hwaddr`, a plain `sockaddr`
        // of integers.
        let hwaddr = unsafe { hwaddr.ifr_ifru.ifru_hwaddr };
        let mtu = ifreq_ioctl(fd, libc::SIOCGIFMTU, &request)?;
        // SAFETY: SIOCGIFMTU succeeded, so the kernel wrote `ifru_mtu`, a c_int.
        let mtu = unsafe { mtu.ifr_ifru.ifru_mtu };
        if hwaddr.sa_family != ARPHRD_ETHER {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{ifname} is not an Ethernet interface (hardware type {})",
                    hwaddr.sa_family
                ),
            ));
        }
        let mut mac = [0u8; 6];
        for (byte, data) in mac.iter_mut().zip(hwaddr.sa_data) {
            *byte = data as u8;
        }
        Ok(InterfaceInfo {
            index: u32::try_from(index).map_err(|_| io::Error::other("negative ifindex"))?,
            mac,
            mtu: u32::try_from(mtu).map_err(|_| io::Error::other("negative MTU"))?,
        })
    }
}

/// The index of interface `ifname` (any kind) in the calling thread's network namespace.
#[allow(unsafe_code)]
pub(crate) fn interface_index(ifname: &str) -> io::Result<u32> {
    let socket = Socket::new(Domain::UNIX, Type::DGRAM.cloexec(), None)?;
    let request = interface_request(ifname)?;
    let answer = ifreq_ioctl(socket.as_raw_fd(), libc::SIOCGIFINDEX, &request)?;
    // SAFETY: SIOCGIFINDEX succeeded, so the kernel wrote `ifru_ifindex`; every bit pattern of
    // a c_int is valid.
    let index = unsafe { answer.ifr_ifru.ifru_ifindex };
    u32::try_from(index).map_err(|_| io::Error::other("negative ifindex"))
}

/// An `ifreq` naming `ifname`, everything else zero.
pub(crate) fn interface_request(ifname: &str) -> io::Result<libc::ifreq> {
    let bytes = ifname.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name {ifname:?} (1 to 15 bytes, no NUL)"),
        ));
    }
    // SAFETY: `ifreq` is plain old data (integers, arrays of integers, and a union of those
    // and a raw pointer); all zeroes is a valid value of every field.
    #[allow(unsafe_code)]
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(bytes) {
        *slot = *byte as libc::c_char;
    }
    Ok(request)
}

/// The interface name in an `ifreq` the kernel filled in.
pub(crate) fn interface_name(request: &libc::ifreq) -> String {
    let bytes: Vec<u8> = request
        .ifr_name
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Runs one of the `SIOCGIF*` ioctls that read into an `ifreq`.
#[allow(unsafe_code)]
fn ifreq_ioctl(fd: RawFd, request: libc::Ioctl, input: &libc::ifreq) -> io::Result<libc::ifreq> {
    let mut output: libc::ifreq = *input;
    // SAFETY: `fd` is an open socket owned by the caller for the duration of the call; the
    // SIOCGIF* requests read and write exactly one `struct ifreq`, and `output` is a valid,
    // exclusively borrowed `ifreq` on our stack with a NUL-terminated name.
    let result = unsafe { libc::ioctl(fd, request, &mut output as *mut libc::ifreq) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(output)
}

/// Registers a descriptor-owning `inner` with the current tokio runtime's reactor.
///
/// Only for `socket2::Socket` and `std::fs::File`: types that own their descriptor and always
/// return the same one from `as_raw_fd`. Returns an error instead of panicking when there is no
/// runtime.
#[allow(unsafe_code)]
pub(crate) fn register<T: AsRawFd>(inner: T) -> io::Result<AsyncFd<T>> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(io::Error::other(
            "no tokio runtime: create sockets and TUN devices inside one (Handle::enter)",
        ));
    }
    // SAFETY: `inner` is a `Socket` or a `File`, which own an open descriptor that stays open
    // and the same until they are dropped, and the `AsyncFd` owns `inner` from here on (we
    // never call `into_inner` or hand out `&mut` access that could replace the descriptor).
    unsafe { AsyncFd::register(inner) }.map_err(io::Error::from)
}

/// Binds the packet socket `fd` to interface `ifindex`, receiving every protocol (the BPF
/// filter then selects).
#[allow(unsafe_code)]
pub(crate) fn bind_to_interface(fd: RawFd, ifindex: u32, protocol: u16) -> io::Result<()> {
    let ifindex = libc::c_int::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ifindex out of range"))?;
    let address = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as libc::c_ushort,
        sll_protocol: protocol.to_be(),
        sll_ifindex: ifindex,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `fd` is an open AF_PACKET socket; `address` is a fully initialised `sockaddr_ll`
    // on our stack and `len` is exactly its size, which is what AF_PACKET's bind expects.
    let result = unsafe {
        libc::bind(
            fd,
            (&address as *const libc::sockaddr_ll).cast::<libc::sockaddr>(),
            len,
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `setsockopt(fd, level, option, value)`, for an option that reads exactly one `T`.
#[allow(unsafe_code)]
pub(crate) fn set_socket_option<T>(
    fd: RawFd,
    level: libc::c_int,
    option: libc::c_int,
    value: &T,
) -> io::Result<()> {
    let len = libc::socklen_t::try_from(std::mem::size_of::<T>())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "option too large"))?;
    // SAFETY: `fd` is an open socket; `value` is a live, initialised `T` and `len` its exact
    // size; the kernel reads at most `len` bytes from it during the call. The callers pass the
    // structure each option expects (a c_int for SO_RCVBUFFORCE, PACKET_IGNORE_OUTGOING and
    // PACKET_VERSION, a packet_mreq for PACKET_ADD_MEMBERSHIP, a tpacket_req3 for
    // PACKET_RX_RING with TPACKET_V3); a wrong one makes the kernel return EINVAL, never read
    // beyond `len`.
    let result = unsafe {
        libc::setsockopt(
            fd,
            level,
            option,
            (value as *const T).cast::<libc::c_void>(),
            len,
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `SO_RCVBUFFORCE`: a receive buffer beyond `rmem_max` (needs `CAP_NET_ADMIN`).
fn force_receive_buffer(fd: RawFd, bytes: usize) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    set_socket_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &value)
}

/// `PACKET_IGNORE_OUTGOING`: the socket no longer gets a copy of the frames the host sends.
fn set_ignore_outgoing(fd: RawFd) -> io::Result<()> {
    let value: libc::c_int = 1;
    set_socket_option(fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &value)
}

/// Adds a `PACKET_MR_PROMISC` membership for interface `ifindex` to the packet socket `fd`.
fn add_promiscuous_membership(fd: RawFd, ifindex: u32) -> io::Result<()> {
    let ifindex = libc::c_int::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ifindex out of range"))?;
    let request = libc::packet_mreq {
        mr_ifindex: ifindex,
        mr_type: libc::PACKET_MR_PROMISC as libc::c_ushort,
        mr_alen: 0,
        mr_address: [0; 8],
    };
    set_socket_option(fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &request)
}

/// An interface could not be opened for PPPoE ([`PacketSocket::bind`]): the error names it
/// (`eth9: No such device (os error 19)`). It is the inner error of the [`io::Error`] `bind`
/// returns, with the same [`io::ErrorKind`], so programs can tell "cannot open the interface"
/// from later failures.
#[derive(Debug)]
pub struct InterfaceError {
    /// The interface.
    pub interface: String,
    /// What the system said.
    pub source: io::Error,
}

impl InterfaceError {
    pub(crate) fn wrap(interface: &str, source: io::Error) -> io::Error {
        io::Error::new(
            source.kind(),
            InterfaceError {
                interface: interface.to_owned(),
                source,
            },
        )
    }

    /// The `InterfaceError` inside `error`, if it is one.
    pub fn of(error: &io::Error) -> Option<&InterfaceError> {
        error.get_ref()?.downcast_ref()
    }
}

impl std::fmt::Display for InterfaceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.interface, self.source)
    }
}

impl std::error::Error for InterfaceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// An `AF_PACKET` raw socket bound to one Ethernet interface, seeing only PPPoE frames.
///
/// Both [`recv`](Self::recv) and [`send`](Self::send) take `&self`, so one socket can be shared
/// (for instance in an `Arc`) between a receiving task and a sending task.
#[derive(Debug)]
pub struct PacketSocket {
    fd: AsyncFd<Socket>,
    /// Where the frames go out, when the receiving socket does not get the host's outgoing
    /// frames anyway (bound to one ethertype, or after [`ignore_outgoing`](Self::ignore_outgoing)):
    /// a second socket on the interface, bound to no protocol (it receives nothing) and
    /// registered with the reactor only while its send buffer is full. A frame is charged to
    /// the socket that sent it, and freeing it wakes whoever waits on that socket: on the
    /// receiving socket, registered with epoll, that was one wakeup per frame sent (6 % of a
    /// busy sender's time).
    sender: OnceLock<Socket>,
    ifname: String,
    info: InterfaceInfo,
}

impl PacketSocket {
    /// Opens a raw packet socket on interface `ifname` of the calling thread's network
    /// namespace, with the PPPoE filter attached, and reads the interface's MAC and MTU.
    ///
    /// Must be called within a tokio runtime (the socket registers with its reactor). Needs
    /// `CAP_NET_RAW`.
    ///
    /// # Errors
    ///
    /// The interface does not exist or is not Ethernet, the process lacks `CAP_NET_RAW`, or there
    /// is no tokio runtime.
    ///
    /// # Panics
    ///
    /// As tokio's `AsyncFd` does, if the current runtime was built without I/O enabled.
    pub fn bind(ifname: &str) -> io::Result<PacketSocket> {
        let filter = pppoe_filter().map(BpfInstruction::to_sock_filter);
        Self::bind_unnamed(ifname, &filter, ETH_P_ALL)
            .map_err(|source| InterfaceError::wrap(ifname, source))
    }

    /// Like [`bind`](Self::bind), but the socket receives only frames of `ethertype`
    /// ([`ETHERTYPE_PPPOE_DISCOVERY`] or [`ETHERTYPE_PPPOE_SESSION`]), in a receive queue of its
    /// own: a server with one socket for each serves session frames first and a flood of
    /// discovery frames fills only the discovery socket's queue. The kernel hands such a socket
    /// no copies of outgoing frames; the filter ([`ethertype_filter`]) checks both again.
    ///
    /// # Errors
    ///
    /// As for [`bind`](Self::bind).
    pub fn bind_ethertype(ifname: &str, ethertype: u16) -> io::Result<PacketSocket> {
        let filter = ethertype_filter(ethertype).map(BpfInstruction::to_sock_filter);
        Self::bind_unnamed(ifname, &filter, ethertype)
            .map_err(|source| InterfaceError::wrap(ifname, source))
    }

    /// Like [`bind_ethertype`](Self::bind_ethertype), with a filter of the caller's (such as
    /// [`padi_filter`] and [`discovery_except_padi_filter`]: an access concentrator's PADIs in
    /// one queue, its PADRs and PADTs in another). The filter should accept only frames of
    /// `ethertype`.
    ///
    /// # Errors
    ///
    /// As for [`bind`](Self::bind); the kernel refuses an invalid program.
    pub fn bind_filtered(
        ifname: &str,
        ethertype: u16,
        filter: &[BpfInstruction],
    ) -> io::Result<PacketSocket> {
        let filter: Vec<_> = filter
            .iter()
            .map(|instruction| instruction.to_sock_filter())
            .collect();
        Self::bind_unnamed(ifname, &filter, ethertype)
            .map_err(|source| InterfaceError::wrap(ifname, source))
    }

    fn bind_unnamed(
        ifname: &str,
        filter: &[socket2::SockFilter],
        protocol: u16,
    ) -> io::Result<PacketSocket> {
        // Protocol 0: the socket receives nothing until it is bound, so no unfiltered frame can
        // queue up before the filter is attached.
        let socket = Socket::new(Domain::PACKET, Type::RAW.cloexec(), None)?;
        let info = InterfaceInfo::query(&socket, ifname)?;
        socket.attach_filter(filter)?;
        bind_to_interface(socket.as_raw_fd(), info.index, protocol)?;
        socket.set_nonblocking(true)?;
        debug!(
            "{ifname}: packet socket up, index {} mac {} mtu {}",
            info.index,
            format_mac(&info.mac),
            info.mtu
        );
        let socket = PacketSocket {
            fd: register(socket)?,
            sender: OnceLock::new(),
            ifname: ifname.to_owned(),
            info,
        };
        // A socket bound to one ethertype gets no copy of outgoing frames: the sender's frames
        // do not come back to it.
        if protocol != ETH_P_ALL {
            socket.add_sender()?;
        }
        Ok(socket)
    }

    /// Opens the send-only socket (see `sender`).
    fn add_sender(&self) -> io::Result<()> {
        let sender = Socket::new(Domain::PACKET, Type::RAW.cloexec(), None)?;
        bind_to_interface(sender.as_raw_fd(), self.info.index, 0)?;
        sender.set_nonblocking(true)?;
        let _ = self.sender.set(sender);
        Ok(())
    }

    /// Runs `send` on the socket frames go out on: the send-only one if there is one, waiting
    /// while its buffer is full, else this one, whenever the reactor finds it writable.
    async fn transmit<T>(&self, mut send: impl FnMut(&Socket) -> io::Result<T>) -> io::Result<T> {
        if let Some(sender) = self.sender.get() {
            loop {
                match send(sender) {
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                        wait_writable(sender).await?;
                    }
                    result => return result,
                }
            }
        }
        loop {
            let mut guard = self.fd.writable().await?;
            if let Ok(result) = guard.try_io(|fd| send(fd.get_ref())) {
                return result;
            }
        }
    }

    /// The MAC address of the interface, read when the socket was bound.
    pub fn mac(&self) -> [u8; 6] {
        self.info.mac
    }

    /// The MTU of the interface, read when the socket was bound: the largest Ethernet payload
    /// [`send`](Self::send) accepts.
    pub fn mtu(&self) -> u32 {
        self.info.mtu
    }

    /// The interface index.
    pub fn ifindex(&self) -> u32 {
        self.info.index
    }

    /// Receives frames addressed to any Ethernet address, not only the interface's (a
    /// promiscuous membership of this socket, dropped with it): for a tool that speaks for many
    /// hosts on one interface, such as a load generator with one MAC address per client.
    ///
    /// # Errors
    ///
    /// Errors of `setsockopt(2)`.
    pub fn set_promiscuous(&self) -> io::Result<()> {
        add_promiscuous_membership(self.fd.get_ref().as_raw_fd(), self.info.index)
    }

    /// Sizes the socket's receive queue for bursts (a reconnect avalanche, a stalled process):
    /// `bytes` of frames (the kernel counts their overhead too, so about `bytes / 2` of
    /// payload). Beyond the system's `net.core.rmem_max` where the process has `CAP_NET_ADMIN`
    /// (`SO_RCVBUFFORCE`), up to it otherwise. Returns the size the kernel set.
    ///
    /// # Errors
    ///
    /// Errors of `setsockopt(2)`.
    pub fn set_receive_buffer(&self, bytes: usize) -> io::Result<usize> {
        let socket = self.fd.get_ref();
        if force_receive_buffer(socket.as_raw_fd(), bytes).is_err() {
            socket.set_recv_buffer_size(bytes)?;
        }
        socket.recv_buffer_size()
    }

    /// Replaces the filter by [`discovery_filter`]: from now on only PPPoE Discovery frames
    /// reach this socket (the kernel data path: session frames belong to the kernel).
    ///
    /// # Errors
    ///
    /// Errors of `setsockopt(2)`.
    pub fn keep_discovery_only(&self) -> io::Result<()> {
        let filter = discovery_filter().map(BpfInstruction::to_sock_filter);
        self.fd.get_ref().attach_filter(&filter)
    }

    /// The interface name the socket was bound with.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Waits for the next PPPoE frame and copies it, Ethernet header included, into `buf`.
    /// Returns its length.
    ///
    /// A frame longer than `buf` is truncated to `buf.len()`: pass a buffer of at least
    /// `mtu() + 14` bytes (`+ 18` if 802.1Q tags may arrive).
    ///
    /// Cancel safe: if the future is dropped before it completes, no frame was consumed.
    ///
    /// # Errors
    ///
    /// Errors of `recv(2)` other than `EAGAIN`.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| fd.get_ref().read(buf)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Stops the kernel from handing the socket a copy of every frame the host sends on the
    /// interface (`PACKET_IGNORE_OUTGOING`, Linux 4.20): a socket bound to all protocols
    /// ([`bind`](Self::bind)) otherwise gets each one cloned to it and filtered away, which
    /// costs a busy session's sender measurably.
    ///
    /// # Errors
    ///
    /// Errors of `setsockopt(2)` (`ENOPROTOOPT` on older kernels).
    pub fn ignore_outgoing(&self) -> io::Result<()> {
        set_ignore_outgoing(self.fd.as_raw_fd())?;
        // Now the frames of a send-only socket would not come back either.
        if self.sender.get().is_none() {
            self.add_sender()?;
        }
        Ok(())
    }

    /// Takes the next frame if one is already waiting, without waiting for one: `Ok(None)` when
    /// the queue is empty. Lets a loop that was woken by [`recv`](Self::recv) read a batch of
    /// frames before it acts on them (coalescing TCP segments for a TUN device with offloads).
    ///
    /// # Errors
    ///
    /// Errors of `recv(2)` other than `EAGAIN`.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.fd.try_io(tokio::io::Interest::READABLE, |socket| {
            let mut socket = socket;
            socket.read(buf)
        }) {
            Ok(len) => Ok(Some(len)),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Takes the frames already waiting, without waiting for one: as many as `frames` has slots,
    /// in one `recvmmsg(2)` call where [`try_recv`](Self::try_recv) makes one `recv(2)` each.
    /// Returns how many (0 when the queue is empty); `frames` holds them until the next call. A
    /// frame longer than a slot is truncated to it, as [`recv`](Self::recv) truncates.
    ///
    /// # Errors
    ///
    /// Errors of `recvmmsg(2)` other than `EAGAIN`.
    pub fn try_recv_batch(&self, frames: &mut ReceivedFrames) -> io::Result<usize> {
        frames.lens.clear();
        match self.fd.try_io(tokio::io::Interest::READABLE, |socket| {
            receive_messages(socket.as_raw_fd(), frames)
        }) {
            Ok(count) => Ok(count),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(error) => Err(error),
        }
    }

    /// Sends one whole Ethernet frame (destination, source, ethertype, payload; the kernel adds
    /// no header and the NIC the FCS).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the frame is shorter than an Ethernet header; `EMSGSIZE` if its payload
    /// exceeds the MTU; other errors of `send(2)` (`ENETDOWN`, `ENXIO`, `ENOBUFS`).
    pub async fn send(&self, frame: &[u8]) -> io::Result<()> {
        if frame.len() < ETHERNET_HEADER_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("an Ethernet frame of {} bytes", frame.len()),
            ));
        }
        let sent = self.transmit(|socket| (&*socket).write(frame)).await?;
        if sent != frame.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {sent} of {} bytes", frame.len()),
            ));
        }
        Ok(())
    }

    /// Sends whole Ethernet frames, in order, a batch at a time: up to [`SEND_BATCH`] frames in
    /// one `sendmmsg(2)` call where [`send`](Self::send) makes one `send(2)` each. A frame that
    /// cannot be sent (shorter than an Ethernet header, `EMSGSIZE`, `ENOBUFS`, ...) is handed to
    /// `failed` with its index and the error, and the frames after it are still sent, as a loop
    /// over [`send`](Self::send) that logs and goes on would. Returns how many were sent.
    ///
    /// Not cancel safe: if the future is dropped while it waits for the socket to become
    /// writable, the frames not yet handed to the kernel are not sent.
    pub async fn send_batch<F: AsRef<[u8]>>(
        &self,
        frames: &[F],
        mut failed: impl FnMut(usize, io::Error),
    ) -> usize {
        let mut next = 0;
        let mut sent = 0;
        while next < frames.len() {
            if frames[next].as_ref().len() < ETHERNET_HEADER_LEN {
                failed(
                    next,
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("an Ethernet frame of {} bytes", frames[next].as_ref().len()),
                    ),
                );
                next += 1;
                continue;
            }
            // Up to the next frame too short to send, which the kernel would take as it is.
            let run = frames[next..]
                .iter()
                .take(SEND_BATCH)
                .take_while(|frame| frame.as_ref().len() >= ETHERNET_HEADER_LEN)
                .count();
            match self.send_some(&frames[next..next + run]).await {
                Ok(count) => {
                    next += count;
                    sent += count;
                }
                // The first frame of the run failed (sendmmsg reports an error only then).
                Err(error) => {
                    failed(next, error);
                    next += 1;
                }
            }
        }
        sent
    }

    /// Waits until the socket is writable and hands `frames` (at most [`SEND_BATCH`], each at
    /// least an Ethernet header) to one `sendmmsg(2)`; returns how many the kernel took (at
    /// least one) or the error of the first.
    async fn send_some<F: AsRef<[u8]>>(&self, frames: &[F]) -> io::Result<usize> {
        self.transmit(|socket| send_messages(socket.as_raw_fd(), frames))
            .await
    }
}

/// Frames [`PacketSocket::try_recv_batch`] received, each in a slot of its own (one buffer for
/// all; no allocation after [`new`](Self::new)).
#[derive(Clone, Debug)]
pub struct ReceivedFrames {
    bytes: Vec<u8>,
    slot_len: usize,
    /// The length of each frame received, in order.
    lens: Vec<usize>,
}

impl ReceivedFrames {
    /// Room for `slots` frames (at most [`RECEIVE_BATCH_MAX`]) of up to `slot_len` bytes each
    /// (such as `mtu() + 18`).
    pub fn new(slots: usize, slot_len: usize) -> ReceivedFrames {
        let slots = slots.clamp(1, RECEIVE_BATCH_MAX);
        ReceivedFrames {
            bytes: vec![0; slots * slot_len.max(1)],
            slot_len: slot_len.max(1),
            lens: Vec::with_capacity(slots),
        }
    }

    /// How many frames the last receive gave.
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// Whether it gave none.
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// Frame `index`.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        let start = index.checked_mul(self.slot_len)?;
        self.bytes.get(start..start + *self.lens.get(index)?)
    }

    /// The frames in the order they were received.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).filter_map(|index| self.get(index))
    }

    fn slots(&self) -> usize {
        self.bytes.len() / self.slot_len
    }
}

/// Slots of a [`ReceivedFrames`], at most.
pub const RECEIVE_BATCH_MAX: usize = 64;

/// `recvmmsg(2)` without waiting into the slots of `frames`, one buffer each; sets the frames'
/// lengths and returns how many (the error of the first receive, `WouldBlock` included, when
/// none).
#[allow(unsafe_code)]
fn receive_messages(fd: RawFd, frames: &mut ReceivedFrames) -> io::Result<usize> {
    let slots = frames.slots().min(RECEIVE_BATCH_MAX);
    let mut buffers = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; RECEIVE_BATCH_MAX];
    // SAFETY: `mmsghdr` is plain old data (pointers, integers and padding); all zeroes is a
    // valid value of it: no name, no buffers, no control data, no flags.
    let mut messages: [libc::mmsghdr; RECEIVE_BATCH_MAX] = unsafe { std::mem::zeroed() };
    let slot_len = frames.slot_len;
    for ((slot, buffer), message) in frames
        .bytes
        .chunks_exact_mut(slot_len)
        .zip(&mut buffers)
        .zip(&mut messages)
    {
        buffer.iov_base = slot.as_mut_ptr().cast::<libc::c_void>();
        buffer.iov_len = slot.len();
        message.msg_hdr.msg_iov = buffer;
        message.msg_hdr.msg_iovlen = 1;
    }
    let count = libc::c_uint::try_from(slots).unwrap_or(0);
    // SAFETY: `fd` is an open packet socket owned by the caller for the call. `messages[..count]`
    // are initialised `mmsghdr`s, each pointing to one `iovec` of `buffers` (on this stack frame
    // until the call returns), which describes one distinct slot of `frames.bytes`, exclusively
    // borrowed for the call and `slot_len` bytes long; the kernel writes at most that much into
    // each slot and each message's `msg_len` and `msg_flags`. No name (`msg_name` null), no
    // control data, no timeout (null), MSG_DONTWAIT.
    let result = unsafe {
        libc::recvmmsg(
            fd,
            messages.as_mut_ptr(),
            count,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    let received = usize::try_from(result).unwrap_or(0).min(slots);
    frames.lens.extend(
        messages[..received]
            .iter()
            .map(|message| (message.msg_len as usize).min(slot_len)),
    );
    Ok(received)
}

/// Waits until the send-only socket `socket` may take a frame again: registers a duplicate of
/// it with the reactor for that long (epoll reports a socket that is already writable at once).
async fn wait_writable(socket: &Socket) -> io::Result<()> {
    let registered = register(socket.try_clone()?)?;
    let _ready = registered.writable().await?;
    Ok(())
}

/// Frames [`PacketSocket::send_batch`] hands to the kernel in one `sendmmsg(2)` call, at most.
pub const SEND_BATCH: usize = 64;

/// `sendmmsg(2)` of up to [`SEND_BATCH`] frames on a connected (bound) packet socket, one
/// message of one buffer each; returns how many messages the kernel took, or the error of the
/// first (`WouldBlock` included).
#[allow(unsafe_code)]
fn send_messages<F: AsRef<[u8]>>(fd: RawFd, frames: &[F]) -> io::Result<usize> {
    let frames = &frames[..frames.len().min(SEND_BATCH)];
    let mut buffers = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; SEND_BATCH];
    // SAFETY: `mmsghdr` is plain old data (pointers, integers and padding); all zeroes is a
    // valid value of it: no name, no buffers, no control data, no flags.
    let mut messages: [libc::mmsghdr; SEND_BATCH] = unsafe { std::mem::zeroed() };
    for ((frame, buffer), message) in frames.iter().zip(&mut buffers).zip(&mut messages) {
        let frame = frame.as_ref();
        // The kernel only reads through this pointer (sendmmsg never writes the data).
        buffer.iov_base = frame.as_ptr().cast_mut().cast::<libc::c_void>();
        buffer.iov_len = frame.len();
        message.msg_hdr.msg_iov = buffer;
        message.msg_hdr.msg_iovlen = 1;
    }
    let count = libc::c_uint::try_from(frames.len()).unwrap_or(0);
    // SAFETY: `fd` is an open packet socket owned by the caller for the call. `messages[..count]`
    // are initialised `mmsghdr`s, each pointing to one `iovec` of `buffers`, which lives on this
    // stack frame until the call returns and describes a frame borrowed from `frames`, alive and
    // unchanged for the call; the kernel reads those and writes only each message's `msg_len`
    // within `messages`. No name (`msg_name` null: the socket is bound) and no control data.
    let result = unsafe { libc::sendmmsg(fd, messages.as_mut_ptr(), count, 0) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    // A packet socket takes a frame whole or not at all: each message taken was sent whole.
    match usize::try_from(result) {
        Ok(taken) if taken > 0 => Ok(taken),
        // Not for a non-empty batch; an error rather than a caller retrying forever.
        _ => Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "sendmmsg took no frame",
        )),
    }
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interface_that_cannot_be_opened_is_named() {
        // Not root: EPERM at the socket; root: ENODEV at the lookup. Either way, named.
        let error = PacketSocket::bind("ppp-nosuch9").expect_err("no such interface");
        assert!(error.to_string().starts_with("ppp-nosuch9: "), "{error}");
        let inner = InterfaceError::of(&error).expect("an InterfaceError");
        assert_eq!(inner.interface, "ppp-nosuch9");
        assert_eq!(inner.source.kind(), error.kind());
    }

    const PACKET_HOST: u32 = 0;
    const PACKET_BROADCAST: u32 = 1;
    const PACKET_OTHERHOST: u32 = 3;

    fn frame(ethertype: u16) -> Vec<u8> {
        let mut frame = vec![0xFF; 6];
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        frame.extend_from_slice(&ethertype.to_be_bytes());
        frame.extend_from_slice(&[0x11, 0x09, 0, 0, 0, 0]);
        frame
    }

    #[test]
    fn filter_table() {
        let program = pppoe_filter();
        let cases: &[(&str, Vec<u8>, u32, FilterVerdict)] = &[
            (
                "PADI broadcast",
                frame(0x8863),
                PACKET_BROADCAST,
                FilterVerdict::Accept(ACCEPT_ALL),
            ),
            (
                "session to us",
                frame(0x8864),
                PACKET_HOST,
                FilterVerdict::Accept(ACCEPT_ALL),
            ),
            (
                "session to another host",
                frame(0x8864),
                PACKET_OTHERHOST,
                FilterVerdict::Accept(ACCEPT_ALL),
            ),
            (
                "our own discovery",
                frame(0x8863),
                PACKET_OUTGOING,
                FilterVerdict::Drop,
            ),
            (
                "our own session",
                frame(0x8864),
                PACKET_OUTGOING,
                FilterVerdict::Drop,
            ),
            ("IPv4", frame(0x0800), PACKET_HOST, FilterVerdict::Drop),
            ("ARP", frame(0x0806), PACKET_BROADCAST, FilterVerdict::Drop),
            ("IPv6", frame(0x86DD), PACKET_HOST, FilterVerdict::Drop),
            (
                "local experimental",
                frame(0x88B5),
                PACKET_HOST,
                FilterVerdict::Drop,
            ),
            (
                "802.1Q tagged",
                frame(0x8100),
                PACKET_HOST,
                FilterVerdict::Drop,
            ),
            ("runt", vec![0xFF; 13], PACKET_HOST, FilterVerdict::Drop),
            ("empty", Vec::new(), PACKET_HOST, FilterVerdict::Drop),
        ];
        for (name, frame, pkttype, expected) in cases {
            assert_eq!(
                FilterVerdict::of(&program, frame, *pkttype),
                *expected,
                "{name}"
            );
        }
    }

    #[test]
    fn ethertype_filters_take_only_their_own() {
        let discovery = ethertype_filter(ETHERTYPE_PPPOE_DISCOVERY);
        let session = ethertype_filter(ETHERTYPE_PPPOE_SESSION);
        let accept = FilterVerdict::Accept(ACCEPT_ALL);
        let of = FilterVerdict::of;
        assert_eq!(of(&discovery, &frame(0x8863), PACKET_BROADCAST), accept);
        assert_eq!(
            of(&discovery, &frame(0x8864), PACKET_HOST),
            FilterVerdict::Drop
        );
        assert_eq!(of(&session, &frame(0x8864), PACKET_HOST), accept);
        assert_eq!(
            of(&session, &frame(0x8863), PACKET_BROADCAST),
            FilterVerdict::Drop
        );
        for program in [&discovery, &session] {
            for ethertype in [0x8863, 0x8864] {
                let outgoing = of(program, &frame(ethertype), PACKET_OUTGOING);
                assert_eq!(outgoing, FilterVerdict::Drop);
            }
            assert_eq!(
                of(program, &frame(0x0800), PACKET_HOST),
                FilterVerdict::Drop
            );
            assert_eq!(of(program, &[0xFF; 13], PACKET_HOST), FilterVerdict::Drop);
        }
    }

    #[test]
    fn padi_filters_split_discovery_by_code() {
        let padis = padi_filter();
        let rest = discovery_except_padi_filter();
        let accept = FilterVerdict::Accept(ACCEPT_ALL);
        let of = FilterVerdict::of;
        let discovery = |code: u8| {
            let mut frame = frame(0x8863);
            frame.resize(20, 0);
            frame[14] = 0x11;
            frame[15] = code;
            frame
        };
        for (code, name) in [
            (0x09, "PADI"),
            (0x19, "PADR"),
            (0xa7, "PADT"),
            (0x07, "PADO"),
        ] {
            let padi = code == 0x09;
            for pkttype in [PACKET_HOST, PACKET_BROADCAST] {
                let frame = discovery(code);
                let expect = |take: bool| if take { accept } else { FilterVerdict::Drop };
                assert_eq!(of(&padis, &frame, pkttype), expect(padi), "{name}");
                assert_eq!(of(&rest, &frame, pkttype), expect(!padi), "{name}");
                // Never what we sent ourselves.
                assert_eq!(of(&padis, &frame, PACKET_OUTGOING), FilterVerdict::Drop);
                assert_eq!(of(&rest, &frame, PACKET_OUTGOING), FilterVerdict::Drop);
            }
        }
        for program in [&padis, &rest] {
            let mut session = discovery(0x09);
            session[12..14].copy_from_slice(&0x8864u16.to_be_bytes());
            assert_eq!(of(program, &session, PACKET_HOST), FilterVerdict::Drop);
            // Too short to have a code: dropped, as by the kernel.
            assert_eq!(
                of(program, &discovery(0x09)[..15], PACKET_HOST),
                FilterVerdict::Drop
            );
            for (pc, instruction) in program.iter().enumerate() {
                if instruction.code == BPF_JMP_JEQ_K {
                    assert!(
                        pc + 1 + usize::from(instruction.jt.max(instruction.jf)) < program.len()
                    );
                }
            }
        }
    }

    #[test]
    fn shard_filters_split_clients_by_address_and_keep_what_the_filter_dropped() {
        let of = FilterVerdict::of;
        let accept = FilterVerdict::Accept(ACCEPT_ALL);
        let discovery = |code: u8, last: u8| {
            let mut frame = frame(0x8863);
            frame.resize(20, 0);
            frame[11] = last;
            frame[15] = code;
            frame
        };
        for count in [2u16, 3, 4, 7] {
            let sessions: Vec<_> = (0..count)
                .map(|k| shard_filter(&ethertype_filter(ETHERTYPE_PPPOE_SESSION), k, count))
                .collect();
            let rest: Vec<_> = (0..count)
                .map(|k| shard_filter(&discovery_except_padi_filter(), k, count))
                .collect();
            for last in 0..=255u8 {
                let mut session = frame(0x8864);
                session[11] = last;
                let takers = |programs: &[Vec<BpfInstruction>], frame: &[u8], pkttype| {
                    programs
                        .iter()
                        .enumerate()
                        .filter(|(_, p)| of(p, frame, pkttype) == accept)
                        .map(|(k, _)| k)
                        .collect::<Vec<_>>()
                };
                // Exactly one worker takes each client's frames: the one its address names.
                let mine = vec![usize::from(u16::from(last) % count)];
                assert_eq!(takers(&sessions, &session, PACKET_HOST), mine);
                assert_eq!(takers(&rest, &discovery(0x19, last), PACKET_HOST), mine);
                assert_eq!(
                    takers(&rest, &discovery(0xa7, last), PACKET_BROADCAST),
                    mine
                );
                // What the filter dropped, every worker still drops.
                assert!(takers(&sessions, &session, PACKET_OUTGOING).is_empty());
                assert!(takers(&rest, &discovery(0x09, last), PACKET_HOST).is_empty());
                assert!(takers(&sessions, &discovery(0x19, last), PACKET_HOST).is_empty());
                assert!(takers(&rest, &session, PACKET_HOST).is_empty());
            }
            for program in sessions.iter().chain(&rest) {
                for (pc, instruction) in program.iter().enumerate() {
                    if instruction.code == BPF_JMP_JEQ_K {
                        assert!(
                            pc + 1 + usize::from(instruction.jt.max(instruction.jf))
                                < program.len()
                        );
                    }
                }
            }
        }
        // One worker: the filter unchanged.
        assert_eq!(shard_filter(&padi_filter(), 0, 1), padi_filter().to_vec());
        // A modulo by zero drops, as the kernel refuses it.
        let mut broken = shard_filter(&padi_filter(), 0, 2);
        broken[7].k = 0;
        assert_eq!(
            of(&broken, &discovery(0x09, 2), PACKET_HOST),
            FilterVerdict::Drop
        );
    }

    #[test]
    fn filter_golden_instructions() {
        // The program as `tcpdump -dd` style tuples {code, jt, jf, k}.
        let expected: [(u16, u8, u8, u32); 7] = [
            (0x20, 0, 0, 0xFFFF_F004),
            (0x15, 4, 0, 4),
            (0x28, 0, 0, 12),
            (0x15, 1, 0, 0x8863),
            (0x15, 0, 1, 0x8864),
            (0x06, 0, 0, 0x0004_0000),
            (0x06, 0, 0, 0),
        ];
        let program = pppoe_filter();
        for (instruction, (code, jt, jf, k)) in program.iter().zip(expected) {
            assert_eq!(
                (
                    instruction.code,
                    instruction.jt,
                    instruction.jf,
                    instruction.k
                ),
                (code, jt, jf, k)
            );
        }
        // Every jump lands inside the program.
        for (pc, instruction) in program.iter().enumerate() {
            if instruction.code == BPF_JMP_JEQ_K {
                assert!(pc + 1 + usize::from(instruction.jt.max(instruction.jf)) < program.len());
            }
        }
    }

    #[test]
    fn interpreter_rejects_what_it_does_not_know() {
        let program = [insn(0x07, 0, 0, 0), insn(BPF_RET_K, 0, 0, 1)];
        assert_eq!(
            FilterVerdict::of(&program, &frame(0x8863), 0),
            FilterVerdict::Drop
        );
        let jump_out = [insn(BPF_JMP_JEQ_K, 200, 200, 0)];
        assert_eq!(FilterVerdict::of(&jump_out, &[], 0), FilterVerdict::Drop);
        let far_load = [insn(BPF_LD_W_ABS, 0, 0, u32::MAX), insn(BPF_RET_K, 0, 0, 1)];
        assert_eq!(
            FilterVerdict::of(&far_load, &frame(0x8863), 0),
            FilterVerdict::Drop
        );
        assert_eq!(
            FilterVerdict::of(&[], &frame(0x8863), 0),
            FilterVerdict::Drop
        );
    }

    #[test]
    fn interface_names() {
        assert!(interface_request("").is_err());
        assert!(interface_request("sixteen-bytes-xx").is_err());
        assert!(interface_request("a\0b").is_err());
        let request = interface_request("fifteen-bytes-x").expect("15 bytes fit");
        assert_eq!(interface_name(&request), "fifteen-bytes-x");
    }

    #[test]
    fn mac_format() {
        assert_eq!(
            format_mac(&[0x02, 0, 0x5e, 0x10, 0xAB, 0xff]),
            "02:00:5e:10:ab:ff"
        );
    }

    #[test]
    fn loopback_is_not_ethernet() {
        // `lo` has hardware type ARPHRD_LOOPBACK (772).
        let error = interface_info("lo").expect_err("lo is not Ethernet");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{error}");
        let error = interface_info("no-such-if0").expect_err("no such interface");
        assert_eq!(error.raw_os_error(), Some(libc::ENODEV), "{error}");
    }
}
