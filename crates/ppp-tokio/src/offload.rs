//! TUN offloads in user space: the virtio-net header, TCP and UDP segmentation (GSO) and
//! coalescing (GRO), without I/O.
//!
//! A TUN device opened with `IFF_VNET_HDR` and offloads enabled (`TUNSETOFFLOAD` with
//! `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`) hands user space TCP *super-packets* of up to 64 KiB,
//! each behind a 10-byte [`VirtioNetHdr`] that says how the kernel would have cut it
//! ([`GsoType`], `gso_size`) and where the checksum it left unfinished lives; and it accepts
//! such super-packets back. One read and one write then move dozens of segments, where a plain
//! TUN moves one. A PPPoE session carries packets of its MTU (1492 bytes at most), so:
//!
//! - **towards the peer** [`segment`] cuts a super-packet into IP packets that fit the session's
//!   MTU (segment size the smaller of the kernel's `gso_size` and what the MTU holds), with
//!   correct IPv4 lengths, identifiers and header checksums, IPv6 payload lengths, TCP sequence
//!   numbers, flags (FIN and PSH on the last segment only, CWR on the first only) and complete
//!   TCP checksums; a packet that is not a super-packet but has its checksum left to finish
//!   (`NEEDS_CSUM`, TCP or UDP) gets it finished. The packets go into a [`Segments`] buffer the
//!   caller keeps and reuses, with optional headroom before each for the PPPoE and Ethernet
//!   headers;
//! - **towards the kernel** a [`Coalescer`] takes the IP packets received from the peer, in
//!   order, and merges consecutive in-sequence segments of a TCP flow (same addresses and ports,
//!   ACK with at most PSH, same options, equal-sized segments but the last, checksums right)
//!   into one super-packet with a `TCPV4`/`TCPV6` header, `NEEDS_CSUM` and the pseudo-header sum
//!   in the checksum field, as the kernel expects of a packet with a partial checksum. Anything
//!   else passes through unchanged behind a `NONE` header (the kernel checks its checksums);
//! - where the kernel has UDP segmentation on TUN (Linux 6.2, `TUN_F_USO4`/`USO6`), UDP is
//!   handled the same way: [`segment`] cuts a `UDP_L4` super-packet into its datagrams and a
//!   [`Coalescer::with_udp`] merges consecutive datagrams of a flow into one, so that a stream
//!   of small datagrams crosses the TUN device in one write per up to
//!   [`MAX_UDP_SEGMENTS`] instead of one each;
//! - [`clamp_syn_mss`] lowers the MSS option of SYNs to what the MTU carries
//!   ([`pppoe_discovery::mss::clamp_mss`]), so peers rarely need segmenting at all.
//!
//! All of it is safe code and never panics on any input: a header or packet that cannot be
//! handled is a typed [`OffloadError`] (segmentation) or passes through as it came
//! (coalescing). Memory stays bounded: a segment is at most the MTU, a coalesced packet at most
//! 64 KiB, and both outputs keep their buffers across batches, so a loop that clears and reuses
//! them allocates nothing once warmed up.
//!
//! # Byte order
//!
//! The header's 16-bit fields are little-endian: what TUN uses on little-endian hosts, and on
//! every host once `TUNSETVNETLE` is set (which [`TunDevice::create_with_offload`] does).
//!
//! [`TunDevice::create_with_offload`]: crate::tun::TunDevice::create_with_offload
//!
//! # A forwarding loop
//!
//! One read from the TUN device gives one header and one packet; [`segment`] appends the
//! session-sized packets to the batch, which goes to the peer with one `sendmmsg` or a few
//! writes. From the peer, every decapsulated packet goes into the coalescer; after each batch of
//! reads the coalescer's frames (header and packet, ready for one `write(2)` each) go to the TUN
//! device, and both buffers are cleared for the next round.
//!
//! ```
//! use ppp_tokio::offload::{clamp_syn_mss, segment, Coalescer, GsoType, Segments, VirtioNetHdr};
//!
//! // A 3000-byte TCP super-packet as the TUN device would hand it over (IPv4, MSS 1448).
//! let mut packet = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2];
//! packet.extend_from_slice(&[0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x18, 1, 0, 0, 0, 0, 0]);
//! packet.extend((0..3000).map(|i| i as u8));
//! let total = packet.len() as u16;
//! packet[2..4].copy_from_slice(&total.to_be_bytes());
//! let mut read = VirtioNetHdr {
//!     gso_type: GsoType::TcpV4,
//!     gso_size: 1448,
//!     ..VirtioNetHdr::default()
//! }
//! .to_bytes()
//! .to_vec();
//! read.extend_from_slice(&packet);
//!
//! // Towards the peer: a session MTU of 1492, 22 bytes of headroom for Ethernet and PPPoE.
//! let mut batch = Segments::with_headroom(22);
//! let (header, packet) = VirtioNetHdr::split(&read)?;
//! let count = segment(&header, packet, 1492, &mut batch)?;
//! assert_eq!(count, 3); // 1448 + 1448 + 104 bytes of data
//! for i in 0..batch.len() {
//!     let frame = batch.get_with_headroom_mut(i).unwrap();
//!     clamp_syn_mss(&mut frame[22..], 1492);
//!     // fill frame[..22] with the Ethernet and PPPoE headers, send the frame
//!     assert!(frame.len() <= 22 + 1492);
//! }
//!
//! // From the peer: the same segments coalesce back into one super-packet for the kernel.
//! let mut coalescer = Coalescer::new();
//! for segment in batch.iter() {
//!     coalescer.push(segment);
//! }
//! assert_eq!(coalescer.len(), 1);
//! for frame in coalescer.frames() {
//!     let (header, packet) = VirtioNetHdr::split(frame)?;
//!     assert_eq!((header.gso_type, header.gso_size), (GsoType::TcpV4, 1448));
//!     assert_eq!(packet.len(), 40 + 3000);
//!     // write `frame` to the TUN device
//! }
//! coalescer.clear();
//! batch.clear();
//! # Ok::<(), ppp_tokio::offload::OffloadError>(())
//! ```

use std::ops::Range;

use pppoe_discovery::mss::{clamp_mss, mss_for_mtu_v4, mss_for_mtu_v6};

/// Length of `struct virtio_net_hdr` (without the `num_buffers` field of the mergeable-buffers
/// variant): what `TUNSETVNETHDRSZ` is set to.
pub const VNET_HDR_LEN: usize = 10;

/// The largest IP packet the offloads deal in (the IPv4 total length and IPv6 payload length
/// are 16 bits).
pub const MAX_PACKET_LEN: usize = 65_535;

/// IP protocol number of TCP.
const TCP: u8 = 6;
/// IP protocol number of UDP.
const UDP: u8 = 17;
/// Length of a UDP header.
const UDP_HEADER_LEN: usize = 8;
/// Where the checksum sits in a UDP header.
const UDP_CHECKSUM_OFFSET: usize = 6;
/// The most datagrams one UDP super-packet may hold (the kernel's `UDP_MAX_SEGMENTS`).
pub const MAX_UDP_SEGMENTS: usize = 64;
/// TCP flags (byte 13 of the header).
const FIN: u8 = 0x01;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const CWR: u8 = 0x80;
/// Where the checksum sits in a TCP header.
const TCP_CHECKSUM_OFFSET: usize = 16;
/// Open flows a [`Coalescer`] extends at once.
const MAX_OPEN_FLOWS: usize = 8;

/// The kind of segmentation a [`VirtioNetHdr`] announces (`gso_type` without its ECN bit).
/// Open: values this module does not know round-trip as [`GsoType::Unknown`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GsoType {
    /// `VIRTIO_NET_HDR_GSO_NONE` (0): a single packet.
    #[default]
    None,
    /// `VIRTIO_NET_HDR_GSO_TCPV4` (1): an IPv4 TCP super-packet.
    TcpV4,
    /// `VIRTIO_NET_HDR_GSO_UDP` (3): UDP fragmentation offload (not handled here).
    Udp,
    /// `VIRTIO_NET_HDR_GSO_TCPV6` (4): an IPv6 TCP super-packet.
    TcpV6,
    /// `VIRTIO_NET_HDR_GSO_UDP_L4` (5): a UDP super-packet: datagrams of `gso_size` bytes of
    /// data each (the last may be shorter) behind one IP and UDP header.
    UdpL4,
    /// Any other value (below 0x80).
    Unknown(u8),
}

impl GsoType {
    /// The ECN bit of `gso_type` (`VIRTIO_NET_HDR_GSO_ECN`).
    pub const ECN_BIT: u8 = 0x80;

    /// From the low seven bits of the `gso_type` byte.
    pub fn from_code(code: u8) -> GsoType {
        match code & !Self::ECN_BIT {
            0 => GsoType::None,
            1 => GsoType::TcpV4,
            3 => GsoType::Udp,
            4 => GsoType::TcpV6,
            5 => GsoType::UdpL4,
            other => GsoType::Unknown(other),
        }
    }

    /// The code (seven bits; an `Unknown` value is masked to them).
    pub fn code(self) -> u8 {
        match self {
            GsoType::None => 0,
            GsoType::TcpV4 => 1,
            GsoType::Udp => 3,
            GsoType::TcpV6 => 4,
            GsoType::UdpL4 => 5,
            GsoType::Unknown(code) => code & !Self::ECN_BIT,
        }
    }
}

/// `struct virtio_net_hdr`: what precedes every packet read from or written to a TUN device
/// opened with `IFF_VNET_HDR`.
///
/// [`parse`](Self::parse) and [`emit`](Self::emit) are symmetric: every 10 bytes parse, and
/// emit gives the same 10 bytes back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VirtioNetHdr {
    /// [`NEEDS_CSUM`](Self::NEEDS_CSUM), [`DATA_VALID`](Self::DATA_VALID), other bits as they
    /// came.
    pub flags: u8,
    /// The segmentation the packet asks for (or, written to the kernel, went through).
    pub gso_type: GsoType,
    /// The ECN bit of `gso_type`: the super-packet's first segment has CWR set.
    pub ecn: bool,
    /// Length of the headers (IP and TCP) before the data; informative only here.
    pub hdr_len: u16,
    /// The size of each segment's data (the MSS), but the last.
    pub gso_size: u16,
    /// Where the checksummed part starts, from the start of the IP header (`NEEDS_CSUM`).
    pub csum_start: u16,
    /// Where the checksum field is, from `csum_start` (`NEEDS_CSUM`).
    pub csum_offset: u16,
}

impl VirtioNetHdr {
    /// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start + csum_offset` holds the
    /// pseudo-header's sum; the rest of it is to be computed from `csum_start` on.
    pub const NEEDS_CSUM: u8 = 1;
    /// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksums were verified.
    pub const DATA_VALID: u8 = 2;

    /// Reads the header from the first [`VNET_HDR_LEN`] bytes of `bytes`.
    ///
    /// # Errors
    ///
    /// [`OffloadError::ShortHeader`] if there are fewer.
    pub fn parse(bytes: &[u8]) -> Result<VirtioNetHdr, OffloadError> {
        let Some(b) = bytes.first_chunk::<VNET_HDR_LEN>() else {
            return Err(OffloadError::ShortHeader { len: bytes.len() });
        };
        let word = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Ok(VirtioNetHdr {
            flags: b[0],
            gso_type: GsoType::from_code(b[1]),
            ecn: b[1] & GsoType::ECN_BIT != 0,
            hdr_len: word(2),
            gso_size: word(4),
            csum_start: word(6),
            csum_offset: word(8),
        })
    }

    /// Splits what a TUN read returned into the header and the packet after it.
    ///
    /// # Errors
    ///
    /// [`OffloadError::ShortHeader`] if `frame` is shorter than the header.
    pub fn split(frame: &[u8]) -> Result<(VirtioNetHdr, &[u8]), OffloadError> {
        let header = VirtioNetHdr::parse(frame)?;
        Ok((header, &frame[VNET_HDR_LEN..]))
    }

    /// The header's 10 bytes.
    pub fn to_bytes(&self) -> [u8; VNET_HDR_LEN] {
        let mut bytes = [0; VNET_HDR_LEN];
        bytes[0] = self.flags;
        bytes[1] = self.gso_type.code() | if self.ecn { GsoType::ECN_BIT } else { 0 };
        bytes[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        bytes[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        bytes[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        bytes[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        bytes
    }

    /// Writes the header into the first [`VNET_HDR_LEN`] bytes of `buf`.
    ///
    /// # Errors
    ///
    /// [`OffloadError::ShortHeader`] if `buf` is shorter.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), OffloadError> {
        let len = buf.len();
        let Some(target) = buf.first_chunk_mut::<VNET_HDR_LEN>() else {
            return Err(OffloadError::ShortHeader { len });
        };
        *target = self.to_bytes();
        Ok(())
    }
}

/// Why a packet could not be segmented (or a header not read).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OffloadError {
    /// Fewer bytes than a virtio-net header.
    #[error("virtio-net header needs {VNET_HDR_LEN} bytes, got {len}")]
    ShortHeader {
        /// The bytes there were.
        len: usize,
    },
    /// Neither IPv4 nor IPv6.
    #[error("not an IPv4 or IPv6 packet")]
    NotIp,
    /// A header or length field runs past the packet, or contradicts itself.
    #[error("malformed or truncated IP/TCP packet")]
    Malformed,
    /// A super-packet that is not TCP (or is behind an IPv6 header this module does not walk).
    #[error("GSO packet is not TCP (or has an unsupported IPv6 extension header)")]
    NotTcp,
    /// A `UDP_L4` super-packet that is not plain UDP (IPv4 without options, IPv6 without
    /// extension headers, the UDP length as the IP length says).
    #[error("UDP GSO packet is not plain UDP over IPv4 or IPv6")]
    NotUdp,
    /// A `UDP_L4` super-packet whose datagrams (`gso_size` bytes of data each) do not fit the
    /// MTU: datagrams cannot be cut smaller.
    #[error("UDP GSO datagrams of {size} bytes do not fit the MTU {mtu}")]
    DatagramTooBig {
        /// One datagram's IP length.
        size: usize,
        /// The MTU asked for.
        mtu: u16,
    },
    /// An IP fragment as a super-packet.
    #[error("GSO packet is an IP fragment")]
    Fragment,
    /// `TCPV4` on an IPv6 packet or `TCPV6` on an IPv4 one.
    #[error("GSO type {gso_type:?} on an IPv{version} packet")]
    GsoMismatch {
        /// The header's type.
        gso_type: GsoType,
        /// The packet's IP version.
        version: u8,
    },
    /// A segmentation this module does not do (UDP fragmentation, unknown).
    #[error("GSO type {0:?} not supported")]
    UnsupportedGso(GsoType),
    /// A super-packet with `gso_size` 0.
    #[error("GSO packet with a segment size of 0")]
    ZeroSegmentSize,
    /// The MTU does not leave a byte of data after the headers.
    #[error("MTU {mtu} leaves no room for data after {headers} bytes of headers")]
    MtuTooSmall {
        /// The MTU asked for.
        mtu: u16,
        /// The IP and TCP headers' length.
        headers: usize,
    },
    /// A single packet longer than the MTU.
    #[error("{len}-byte packet does not fit the MTU {mtu}")]
    TooBig {
        /// The packet's length.
        len: usize,
        /// The MTU asked for.
        mtu: u16,
    },
    /// `csum_start + csum_offset` does not leave two bytes inside the packet.
    #[error("checksum at {start}+{offset} outside the {len}-byte packet")]
    ChecksumOutOfRange {
        /// `csum_start`.
        start: u16,
        /// `csum_offset`.
        offset: u16,
        /// The packet's length.
        len: usize,
    },
}

/// Packets in one reusable buffer: what [`segment`] writes.
///
/// The packets lie one after the other in a single vector, each after `headroom` bytes the
/// caller may fill (with Ethernet and PPPoE headers, say) to send packet and headers as one
/// frame. [`clear`](Self::clear) forgets the packets and keeps the memory.
#[derive(Clone, Debug, Default)]
pub struct Segments {
    buf: Vec<u8>,
    packets: Vec<Range<usize>>,
    headroom: usize,
}

impl Segments {
    /// An empty buffer without headroom.
    pub fn new() -> Segments {
        Segments::default()
    }

    /// An empty buffer that leaves `headroom` bytes (zeros) before every packet.
    pub fn with_headroom(headroom: usize) -> Segments {
        Segments {
            headroom,
            ..Segments::default()
        }
    }

    /// Forgets the packets, keeping the memory for the next ones.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.packets.clear();
    }

    /// How many packets there are.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// The headroom before each packet.
    pub fn headroom(&self) -> usize {
        self.headroom
    }

    /// Packet `index`.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        self.buf.get(self.packets.get(index)?.clone())
    }

    /// Packet `index` with the headroom before it, to fill in the headroom (or change the
    /// packet: see [`clamp_syn_mss`]).
    pub fn get_with_headroom_mut(&mut self, index: usize) -> Option<&mut [u8]> {
        let range = self.packets.get(index)?;
        let start = range.start.checked_sub(self.headroom)?;
        self.buf.get_mut(start..range.end)
    }

    /// The packets in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.packets.iter().map(|range| &self.buf[range.clone()])
    }

    /// Appends headroom, `head` and `tail` as a new packet; its range.
    fn push(&mut self, head: &[u8], tail: &[u8]) -> Range<usize> {
        self.buf.resize(self.buf.len() + self.headroom, 0);
        let start = self.buf.len();
        self.buf.extend_from_slice(head);
        self.buf.extend_from_slice(tail);
        let range = start..self.buf.len();
        self.packets.push(range.clone());
        range
    }

    /// Drops everything after `mark` (from [`Self::mark`]).
    fn truncate(&mut self, (bytes, packets): (usize, usize)) {
        self.buf.truncate(bytes);
        self.packets.truncate(packets);
    }

    fn mark(&self) -> (usize, usize) {
        (self.buf.len(), self.packets.len())
    }
}

/// Cuts what one TUN read gave (`header`, `packet`) into IP packets of at most `mtu` bytes and
/// appends them to `out`. Returns how many were appended; on error `out` is as it was.
///
/// - `GSO_NONE`: the packet as it is (at most `mtu` bytes), with its checksum finished if the
///   header says `NEEDS_CSUM` (TCP, UDP or anything with a ones'-complement checksum).
/// - `GSO_TCPV4`/`GSO_TCPV6`: segments of `min(gso_size, mtu - headers)` bytes of data each, the
///   IP header (with IPv4 options or IPv6 hop-by-hop and destination options headers) and TCP
///   header (with its options) copied into each and fixed up; checksums computed from scratch,
///   whatever the super-packet's checksum field held. Bytes after the IP length are dropped.
/// - `GSO_UDP_L4`: one datagram per `gso_size` bytes of data (the last may be shorter), with
///   the IP and UDP headers copied and fixed up (IPv4 identifiers counting up from the
///   super-packet's) and full UDP checksums; plain IPv4 or IPv6 only, and every datagram must
///   fit `mtu` (datagrams are never cut smaller).
///
/// # Errors
///
/// See [`OffloadError`]: a header that asks for something this module does not do, a packet
/// that is not what the header says, an MTU too small.
pub fn segment(
    header: &VirtioNetHdr,
    packet: &[u8],
    mtu: u16,
    out: &mut Segments,
) -> Result<usize, OffloadError> {
    let mark = out.mark();
    let result = match header.gso_type {
        GsoType::None => segment_single(header, packet, mtu, out),
        GsoType::TcpV4 | GsoType::TcpV6 => segment_tcp(header, packet, mtu, out),
        GsoType::UdpL4 => segment_udp(header, packet, mtu, out),
        other => Err(OffloadError::UnsupportedGso(other)),
    };
    if result.is_err() {
        out.truncate(mark);
    }
    result
}

/// A packet that is not a super-packet.
fn segment_single(
    header: &VirtioNetHdr,
    packet: &[u8],
    mtu: u16,
    out: &mut Segments,
) -> Result<usize, OffloadError> {
    if packet.len() > usize::from(mtu) {
        return Err(OffloadError::TooBig {
            len: packet.len(),
            mtu,
        });
    }
    let range = out.push(packet, &[]);
    if header.flags & VirtioNetHdr::NEEDS_CSUM != 0 {
        finish_checksum(&mut out.buf[range], header.csum_start, header.csum_offset)?;
    }
    Ok(1)
}

/// Completes a partial checksum: the ones'-complement sum from `start` to the end (the field
/// at `start + offset` holding the pseudo-header's sum), complemented, into the field.
fn finish_checksum(packet: &mut [u8], start: u16, offset: u16) -> Result<(), OffloadError> {
    let (from, at) = (usize::from(start), usize::from(start) + usize::from(offset));
    if at + 2 > packet.len() {
        return Err(OffloadError::ChecksumOutOfRange {
            start,
            offset,
            len: packet.len(),
        });
    }
    let sum = !fold(sum_words(&packet[from..], 0));
    // Zero is sent as all ones: the same to a TCP receiver, required by UDP.
    let sum = if sum == 0 { 0xFFFF } else { sum };
    packet[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    Ok(())
}

/// Where the parts of an IP packet carrying TCP are.
#[derive(Clone, Copy, Debug)]
struct TcpLayout {
    /// 4 or 6.
    version: u8,
    /// Length of the IP header (with IPv4 options, IPv6 extension headers): where TCP starts.
    ip_header_len: usize,
    /// Length of the TCP header with its options.
    tcp_header_len: usize,
    /// Length of the IP packet by its header (at most the buffer's length).
    ip_len: usize,
}

impl TcpLayout {
    fn headers_len(&self) -> usize {
        self.ip_header_len + self.tcp_header_len
    }
}

/// Finds the TCP header of an IPv4 or IPv6 packet.
fn tcp_layout(packet: &[u8]) -> Result<TcpLayout, OffloadError> {
    let version = packet.first().ok_or(OffloadError::NotIp)? >> 4;
    let (ip_header_len, ip_len) = match version {
        4 => {
            let header_len = usize::from(packet[0] & 0x0F) * 4;
            if packet.len() < 20 || header_len < 20 || header_len > packet.len() {
                return Err(OffloadError::Malformed);
            }
            let ip_len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
            if ip_len < header_len || ip_len > packet.len() {
                return Err(OffloadError::Malformed);
            }
            if u16::from_be_bytes([packet[6], packet[7]]) & 0x3FFF != 0 {
                return Err(OffloadError::Fragment);
            }
            if packet[9] != TCP {
                return Err(OffloadError::NotTcp);
            }
            (header_len, ip_len)
        }
        6 => {
            if packet.len() < 40 {
                return Err(OffloadError::Malformed);
            }
            let ip_len = 40 + usize::from(u16::from_be_bytes([packet[4], packet[5]]));
            if ip_len > packet.len() {
                return Err(OffloadError::Malformed);
            }
            let (mut next, mut at) = (packet[6], 40);
            // Hop-by-hop and destination options only: behind a routing header the
            // pseudo-header's destination is not the one in the IPv6 header.
            for _ in 0..4 {
                match next {
                    TCP => break,
                    0 | 60 => {
                        let ext = packet.get(at..at + 2).ok_or(OffloadError::Malformed)?;
                        next = ext[0];
                        at += (usize::from(ext[1]) + 1) * 8;
                    }
                    44 => return Err(OffloadError::Fragment),
                    _ => return Err(OffloadError::NotTcp),
                }
            }
            if next != TCP {
                return Err(OffloadError::NotTcp);
            }
            if at > ip_len {
                return Err(OffloadError::Malformed);
            }
            (at, ip_len)
        }
        _ => return Err(OffloadError::NotIp),
    };
    let tcp = &packet[ip_header_len..ip_len];
    if tcp.len() < 20 {
        return Err(OffloadError::Malformed);
    }
    let tcp_header_len = usize::from(tcp[12] >> 4) * 4;
    if tcp_header_len < 20 || tcp_header_len > tcp.len() {
        return Err(OffloadError::Malformed);
    }
    Ok(TcpLayout {
        version,
        ip_header_len,
        tcp_header_len,
        ip_len,
    })
}

/// A TCP super-packet.
fn segment_tcp(
    header: &VirtioNetHdr,
    packet: &[u8],
    mtu: u16,
    out: &mut Segments,
) -> Result<usize, OffloadError> {
    let layout = tcp_layout(packet)?;
    let expected = if layout.version == 4 {
        GsoType::TcpV4
    } else {
        GsoType::TcpV6
    };
    if header.gso_type != expected {
        return Err(OffloadError::GsoMismatch {
            gso_type: header.gso_type,
            version: layout.version,
        });
    }
    if header.gso_size == 0 {
        return Err(OffloadError::ZeroSegmentSize);
    }
    let headers_len = layout.headers_len();
    let room = usize::from(mtu).saturating_sub(headers_len);
    if room == 0 {
        return Err(OffloadError::MtuTooSmall {
            mtu,
            headers: headers_len,
        });
    }
    let segment_size = usize::from(header.gso_size).min(room);
    let (headers, data) = packet[..layout.ip_len].split_at(headers_len);
    let tcp_at = layout.ip_header_len;
    let seq = u32::from_be_bytes([
        headers[tcp_at + 4],
        headers[tcp_at + 5],
        headers[tcp_at + 6],
        headers[tcp_at + 7],
    ]);
    let id = u16::from_be_bytes([headers[4], headers[5]]);
    let flags = headers[tcp_at + 13];
    let count = data.len().div_ceil(segment_size).max(1);
    for (index, offset) in (0..count).map(|i| (i, i * segment_size)) {
        let chunk = &data[offset..(offset + segment_size).min(data.len())];
        let range = out.push(headers, chunk);
        let p = &mut out.buf[range];
        let len = p.len();
        if layout.version == 4 {
            p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            p[4..6].copy_from_slice(&id.wrapping_add(index as u16).to_be_bytes());
            set_ipv4_checksum(p, layout.ip_header_len);
        } else {
            p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
        }
        let tcp = tcp_at;
        p[tcp + 4..tcp + 8].copy_from_slice(&seq.wrapping_add(offset as u32).to_be_bytes());
        let mut segment_flags = flags;
        if index + 1 < count {
            segment_flags &= !(FIN | PSH);
        }
        if index > 0 {
            segment_flags &= !CWR;
        }
        p[tcp + 13] = segment_flags;
        p[tcp + TCP_CHECKSUM_OFFSET..tcp + TCP_CHECKSUM_OFFSET + 2].fill(0);
        let sum = !fold(sum_words(&p[tcp..], pseudo_header_sum(p, len - tcp)));
        p[tcp + TCP_CHECKSUM_OFFSET..tcp + TCP_CHECKSUM_OFFSET + 2]
            .copy_from_slice(&sum.to_be_bytes());
    }
    Ok(count)
}

/// The sum of the TCP pseudo-header (not folded) of the packet `p` (IPv4 or IPv6, by its first
/// nibble, with the addresses of its fixed header), for a TCP segment of `tcp_len` bytes.
fn pseudo_header_sum(p: &[u8], tcp_len: usize) -> u64 {
    pseudo_header_sum_of(p, TCP, tcp_len)
}

/// [`pseudo_header_sum`] for `protocol` (TCP or UDP) and `len` bytes of it.
fn pseudo_header_sum_of(p: &[u8], protocol: u8, len: usize) -> u64 {
    let addresses = if p[0] >> 4 == 4 {
        &p[12..20]
    } else {
        &p[8..40]
    };
    sum_words(addresses, u64::from(protocol) + len as u64)
}

/// Where the UDP header of a plain UDP packet starts (IPv4 without options and unfragmented,
/// or IPv6 without extension headers; the IP and UDP lengths as long as the packet), `None`
/// for anything else.
fn plain_udp(packet: &[u8]) -> Option<usize> {
    let ip_header_len = match packet.first()? >> 4 {
        4 if packet.len() >= 20 + UDP_HEADER_LEN
            && packet[0] & 0x0F == 5
            && packet[9] == UDP
            && usize::from(u16::from_be_bytes([packet[2], packet[3]])) == packet.len()
            && u16::from_be_bytes([packet[6], packet[7]]) & 0x3FFF == 0 =>
        {
            20
        }
        6 if packet.len() >= 40 + UDP_HEADER_LEN
            && packet[6] == UDP
            && 40 + usize::from(u16::from_be_bytes([packet[4], packet[5]])) == packet.len() =>
        {
            40
        }
        _ => return None,
    };
    let udp = &packet[ip_header_len..];
    (usize::from(u16::from_be_bytes([udp[4], udp[5]])) == udp.len()).then_some(ip_header_len)
}

/// A UDP super-packet.
fn segment_udp(
    header: &VirtioNetHdr,
    packet: &[u8],
    mtu: u16,
    out: &mut Segments,
) -> Result<usize, OffloadError> {
    // The UDP length of a super-packet is its whole length, which may not fit 16 bits: take
    // the IP length as the truth and check the UDP one only where it can hold it.
    let ip_header_len = match packet.first().map(|b| b >> 4) {
        Some(4) if packet.len() >= 20 && packet[0] & 0x0F == 5 && packet[9] == UDP => 20,
        Some(6) if packet.len() >= 40 && packet[6] == UDP => 40,
        Some(4 | 6) => return Err(OffloadError::NotUdp),
        _ => return Err(OffloadError::NotIp),
    };
    let version = packet[0] >> 4;
    let ip_len = if version == 4 {
        if u16::from_be_bytes([packet[6], packet[7]]) & 0x3FFF != 0 {
            return Err(OffloadError::Fragment);
        }
        usize::from(u16::from_be_bytes([packet[2], packet[3]]))
    } else {
        40 + usize::from(u16::from_be_bytes([packet[4], packet[5]]))
    };
    let headers_len = ip_header_len + UDP_HEADER_LEN;
    if ip_len < headers_len || ip_len > packet.len() {
        return Err(OffloadError::Malformed);
    }
    if header.gso_size == 0 {
        return Err(OffloadError::ZeroSegmentSize);
    }
    let segment_size = usize::from(header.gso_size);
    let (headers, data) = packet[..ip_len].split_at(headers_len);
    let largest = headers_len + segment_size.min(data.len());
    if largest > usize::from(mtu) {
        return Err(OffloadError::DatagramTooBig { size: largest, mtu });
    }
    let id = u16::from_be_bytes([headers[4], headers[5]]);
    let count = data.len().div_ceil(segment_size).max(1);
    for (index, offset) in (0..count).map(|i| (i, i * segment_size)) {
        let chunk = &data[offset..(offset + segment_size).min(data.len())];
        let range = out.push(headers, chunk);
        let p = &mut out.buf[range];
        let len = p.len();
        if version == 4 {
            p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            p[4..6].copy_from_slice(&id.wrapping_add(index as u16).to_be_bytes());
            set_ipv4_checksum(p, ip_header_len);
        } else {
            p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
        }
        let udp = ip_header_len;
        let udp_len = len - udp;
        p[udp + 4..udp + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        p[udp + UDP_CHECKSUM_OFFSET..udp + UDP_CHECKSUM_OFFSET + 2].fill(0);
        let sum = match !fold(sum_words(&p[udp..], pseudo_header_sum_of(p, UDP, udp_len))) {
            // A computed 0 goes as all ones: 0 means "no checksum" in UDP.
            0 => 0xFFFF,
            sum => sum,
        };
        p[udp + UDP_CHECKSUM_OFFSET..udp + UDP_CHECKSUM_OFFSET + 2]
            .copy_from_slice(&sum.to_be_bytes());
    }
    Ok(count)
}

/// Recomputes the IPv4 header checksum.
fn set_ipv4_checksum(p: &mut [u8], header_len: usize) {
    p[10..12].fill(0);
    let sum = !fold(sum_words(&p[..header_len], 0));
    p[10..12].copy_from_slice(&sum.to_be_bytes());
}

/// Adds `bytes` as big-endian 16-bit words to `acc` (an odd last byte padded with zero), in
/// 32-bit steps; fold the result with [`fold`]. `bytes` must start at an even offset of what is
/// checksummed.
fn sum_words(bytes: &[u8], mut acc: u64) -> u64 {
    let mut words = bytes.chunks_exact(4);
    for word in &mut words {
        acc += u64::from(u32::from_be_bytes([word[0], word[1], word[2], word[3]]));
    }
    let mut tail = [0u8; 4];
    let rest = words.remainder();
    tail[..rest.len()].copy_from_slice(rest);
    acc + u64::from(u32::from_be_bytes(tail))
}

/// Folds a sum into 16 bits with end-around carries.
fn fold(mut acc: u64) -> u16 {
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    acc as u16
}

/// Lowers the MSS option of a TCP SYN or SYN-ACK in the IPv4 or IPv6 `packet` to what `mtu`
/// carries (`mtu` − 40 for IPv4, − 60 for IPv6), fixing the TCP checksum. Returns the MSS it
/// replaced, `None` if the packet was left alone (anything but a SYN with a larger MSS). Run it
/// on complete packets (after [`segment`], before [`Coalescer::push`]): a checksum still
/// partial would come out wrong.
pub fn clamp_syn_mss(packet: &mut [u8], mtu: u16) -> Option<u16> {
    let max = match packet.first()? >> 4 {
        4 => mss_for_mtu_v4(mtu),
        6 => mss_for_mtu_v6(mtu),
        _ => return None,
    };
    clamp_mss(packet, max)
}

/// A TCP segment a [`Coalescer`] may merge: IPv4 without options and unfragmented or IPv6
/// without extension headers, exactly as long as its IP header says, ACK with or without PSH,
/// data, both checksums right.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    version: u8,
    ip_header_len: usize,
    tcp_header_len: usize,
    seq: u32,
    id: u16,
    flags: u8,
    data_len: usize,
}

impl Candidate {
    fn of(packet: &[u8]) -> Option<Candidate> {
        let layout = tcp_layout(packet).ok()?;
        let plain_ip = match layout.version {
            4 => layout.ip_header_len == 20 && fold(sum_words(&packet[..20], 0)) == 0xFFFF,
            _ => layout.ip_header_len == 40,
        };
        if !plain_ip || layout.ip_len != packet.len() {
            return None;
        }
        let tcp_at = layout.ip_header_len;
        let tcp = &packet[tcp_at..];
        let flags = tcp[13];
        let data_len = tcp.len() - layout.tcp_header_len;
        if flags & !PSH != ACK || data_len == 0 {
            return None;
        }
        let pseudo = pseudo_header_sum(packet, tcp.len());
        if fold(sum_words(tcp, pseudo)) != 0xFFFF {
            return None;
        }
        Some(Candidate {
            version: layout.version,
            ip_header_len: layout.ip_header_len,
            tcp_header_len: layout.tcp_header_len,
            seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
            id: u16::from_be_bytes([packet[4], packet[5]]),
            flags,
            data_len,
        })
    }
}

/// A UDP datagram a [`Coalescer`] may merge (when it merges UDP): plain UDP ([`plain_udp`])
/// with data, a non-zero UDP checksum that is right, and (IPv4) a right header checksum.
#[derive(Clone, Copy, Debug)]
struct UdpCandidate {
    version: u8,
    ip_header_len: usize,
    id: u16,
    data_len: usize,
}

impl UdpCandidate {
    fn of(packet: &[u8]) -> Option<UdpCandidate> {
        let ip_header_len = plain_udp(packet)?;
        let version = packet[0] >> 4;
        if version == 4 && fold(sum_words(&packet[..20], 0)) != 0xFFFF {
            return None;
        }
        let udp = &packet[ip_header_len..];
        let data_len = udp.len() - UDP_HEADER_LEN;
        if data_len == 0
            || udp[UDP_CHECKSUM_OFFSET..UDP_CHECKSUM_OFFSET + 2] == [0, 0]
            || fold(sum_words(udp, pseudo_header_sum_of(packet, UDP, udp.len()))) != 0xFFFF
        {
            return None;
        }
        Some(UdpCandidate {
            version,
            ip_header_len,
            id: u16::from_be_bytes([packet[4], packet[5]]),
            data_len,
        })
    }
}

/// A flow a [`Coalescer`] may still extend.
#[derive(Clone, Copy, Debug)]
struct OpenFlow {
    /// Index of its frame.
    frame: usize,
    /// What the next packet must be to carry the flow on.
    next: Next,
    /// The IPv4 identifier of the last packet merged.
    last_id: u16,
    /// The data length of the first packet: every one but the last has it.
    segment_size: usize,
}

/// How an open flow goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    /// TCP: the sequence number the next segment must have.
    Tcp(u32),
    /// UDP: how many datagrams the super-packet holds.
    Udp(usize),
}

/// Merges the TCP segments received from the peer into super-packets for a TUN device with
/// offloads (GRO in user space).
///
/// [`push`](Self::push) each received IP packet in order; then write each of
/// [`frames`](Self::frames) (a [`VirtioNetHdr`] and the packet, one `write(2)` each) to the
/// device and [`clear`](Self::clear). A segment joins the super-packet of its flow (same
/// addresses and ports, IPv4 without options, IPv6 without extension headers, the same IP and
/// TCP header fields but for lengths, identifier, sequence number, window and checksums) when
/// it carries on the sequence exactly, has ACK and at most PSH set, has the same amount of data
/// as the first segment (or less, then it is the last), has right checksums, and keeps the
/// super-packet within 64 KiB; a PSH ends the super-packet. The super-packet's window is the
/// latest segment's, its IPv4 identifier the first's (the following segments' must count up
/// from it). Up to 8 flows are extended at once; any other packet of a flow ends its
/// super-packet, so a flow's packets keep their order.
///
/// A super-packet goes out with `TCPV4`/`TCPV6`, `gso_size` the first segment's data length,
/// `NEEDS_CSUM` with `csum_start` at the TCP header and the pseudo-header's sum in the TCP
/// checksum field, as the kernel takes them. Everything else (a flow's lone segment included)
/// goes out byte for byte as it came behind a header of zeros (`GSO_NONE`, no flags: the kernel
/// checks its checksums).
///
/// With [`with_udp`](Self::with_udp), UDP datagrams are merged the same way (GRO for UDP):
/// consecutive datagrams of a flow (same addresses and ports, plain IPv4 or IPv6, the same IP
/// header fields but for lengths, identifier and checksum, IPv4 identifiers counting up), each
/// with as much data as the first (or less, then it is the last), right non-zero checksums, at
/// most [`MAX_UDP_SEGMENTS`] and 64 KiB, become one `UDP_L4` super-packet with `gso_size` the
/// first's data length, `NEEDS_CSUM` and the pseudo-header's sum in the UDP checksum field; the
/// kernel cuts it back into the same datagrams.
///
/// Frames are kept across [`clear`](Self::clear) and reused: no allocation in steady state.
#[derive(Clone, Debug, Default)]
pub struct Coalescer {
    /// Header and packet each; the first `used` are this batch's.
    frames: Vec<Vec<u8>>,
    used: usize,
    /// Flows that may grow, oldest first.
    open: Vec<OpenFlow>,
    /// Whether UDP datagrams are merged too.
    udp: bool,
}

impl Coalescer {
    /// An empty coalescer (TCP only).
    pub fn new() -> Coalescer {
        Coalescer::default()
    }

    /// An empty coalescer that merges UDP datagrams too when `udp`: only for a TUN device
    /// whose kernel takes `UDP_L4` super-packets
    /// ([`TunDevice::takes_udp_gso`](crate::tun::TunDevice::takes_udp_gso)).
    pub fn with_udp(udp: bool) -> Coalescer {
        Coalescer {
            udp,
            ..Coalescer::default()
        }
    }

    /// Turns merging UDP on or off for the packets pushed from now on (for a coalescer that
    /// serves one device after another, between their batches).
    pub fn set_udp(&mut self, udp: bool) {
        self.udp = udp;
    }

    /// How many frames there are.
    pub fn len(&self) -> usize {
        self.used
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// The frames in order: each a [`VirtioNetHdr`] and an IP packet of at most
    /// [`MAX_PACKET_LEN`] bytes.
    pub fn frames(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.frames[..self.used].iter().map(Vec::as_slice)
    }

    /// Forgets the frames (after they were written), keeping their memory.
    pub fn clear(&mut self) {
        self.used = 0;
        self.open.clear();
    }

    /// Takes the next IP packet received from the peer. Never fails: what cannot be merged is
    /// kept as it is. A packet longer than [`MAX_PACKET_LEN`] is kept too (the kernel will
    /// refuse it).
    pub fn push(&mut self, packet: &[u8]) {
        if self.udp
            && let Some(candidate) = UdpCandidate::of(packet)
        {
            self.push_udp(&candidate, packet);
            return;
        }
        let Some(candidate) = Candidate::of(packet) else {
            self.close_flow_of(packet);
            self.push_verbatim(packet);
            return;
        };
        if let Some(at) = self.open.iter().position(|flow| {
            matches!(flow.next, Next::Tcp(_))
                && same_ports_and_addresses(&self.frames[flow.frame][VNET_HDR_LEN..], packet)
        }) {
            let flow = self.open[at];
            if self.extends(&flow, &candidate, packet) {
                self.merge(at, &candidate, packet);
                return;
            }
            self.open.remove(at);
        }
        self.push_verbatim(packet);
        if candidate.flags & PSH == 0 {
            if self.open.len() == MAX_OPEN_FLOWS {
                self.open.remove(0);
            }
            self.open.push(OpenFlow {
                frame: self.used - 1,
                next: Next::Tcp(candidate.seq.wrapping_add(candidate.data_len as u32)),
                last_id: candidate.id,
                segment_size: candidate.data_len,
            });
        }
    }

    /// [`push`](Self::push) of a UDP candidate.
    fn push_udp(&mut self, candidate: &UdpCandidate, packet: &[u8]) {
        if let Some(at) = self.open.iter().position(|flow| {
            matches!(flow.next, Next::Udp(_))
                && same_udp_flow(&self.frames[flow.frame][VNET_HDR_LEN..], packet)
        }) {
            let flow = self.open[at];
            if self.extends_udp(&flow, candidate, packet) {
                self.merge_udp(at, candidate, packet);
                return;
            }
            self.open.remove(at);
        }
        self.push_verbatim(packet);
        if self.open.len() == MAX_OPEN_FLOWS {
            self.open.remove(0);
        }
        self.open.push(OpenFlow {
            frame: self.used - 1,
            next: Next::Udp(1),
            last_id: candidate.id,
            segment_size: candidate.data_len,
        });
    }

    /// Whether `candidate` carries on the UDP `flow`'s super-packet.
    fn extends_udp(&self, flow: &OpenFlow, candidate: &UdpCandidate, packet: &[u8]) -> bool {
        let first = &self.frames[flow.frame][VNET_HDR_LEN..];
        let datagrams = match flow.next {
            Next::Udp(datagrams) => datagrams,
            Next::Tcp(_) => return false,
        };
        let ip_same = if candidate.version == 4 {
            first[..2] == packet[..2] && first[6..10] == packet[6..10]
        } else {
            first[..4] == packet[..4] && first[6..8] == packet[6..8]
        };
        ip_same
            && datagrams < MAX_UDP_SEGMENTS
            && candidate.data_len <= flow.segment_size
            && (candidate.version == 6 || candidate.id == flow.last_id.wrapping_add(1))
            && first.len() + candidate.data_len <= MAX_PACKET_LEN
    }

    /// Appends the data of `candidate` to the UDP super-packet of open flow `at`.
    fn merge_udp(&mut self, at: usize, candidate: &UdpCandidate, packet: &[u8]) {
        let flow = &mut self.open[at];
        let frame = &mut self.frames[flow.frame];
        let ip = candidate.ip_header_len;
        frame.extend_from_slice(&packet[ip + UDP_HEADER_LEN..]);
        let datagrams = match flow.next {
            Next::Udp(datagrams) => datagrams + 1,
            Next::Tcp(_) => 1,
        };
        flow.next = Next::Udp(datagrams);
        flow.last_id = candidate.id;
        let segment_size = flow.segment_size;
        let ends = candidate.data_len < segment_size || datagrams == MAX_UDP_SEGMENTS;
        let header = VirtioNetHdr {
            flags: VirtioNetHdr::NEEDS_CSUM,
            gso_type: GsoType::UdpL4,
            ecn: false,
            hdr_len: (ip + UDP_HEADER_LEN) as u16,
            gso_size: segment_size as u16,
            csum_start: ip as u16,
            csum_offset: UDP_CHECKSUM_OFFSET as u16,
        };
        let p = seal(frame, &header, candidate.version, ip);
        let udp_len = p.len() - ip;
        p[ip + 4..ip + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        let partial = fold(pseudo_header_sum_of(p, UDP, udp_len));
        p[ip + UDP_CHECKSUM_OFFSET..ip + UDP_CHECKSUM_OFFSET + 2]
            .copy_from_slice(&partial.to_be_bytes());
        if ends {
            self.open.remove(at);
        }
    }

    /// Appends a frame with a `GSO_NONE` header and `packet` as it is.
    fn push_verbatim(&mut self, packet: &[u8]) {
        if self.used == self.frames.len() {
            self.frames.push(Vec::new());
        }
        let frame = &mut self.frames[self.used];
        self.used += 1;
        frame.clear();
        frame.extend_from_slice(&VirtioNetHdr::default().to_bytes());
        frame.extend_from_slice(packet);
    }

    /// Ends the super-packet of the flow `packet` (TCP or UDP, not a candidate) belongs to, if
    /// any.
    fn close_flow_of(&mut self, packet: &[u8]) {
        let frames = &self.frames;
        self.open.retain(|flow| {
            let first = &frames[flow.frame][VNET_HDR_LEN..];
            match flow.next {
                Next::Tcp(_) => !same_ports_and_addresses(first, packet),
                Next::Udp(_) => !same_udp_flow(first, packet),
            }
        });
    }

    /// Whether `candidate` carries on `flow`'s super-packet.
    fn extends(&self, flow: &OpenFlow, candidate: &Candidate, packet: &[u8]) -> bool {
        let frame = &self.frames[flow.frame];
        flow.next == Next::Tcp(candidate.seq)
            && candidate.data_len <= flow.segment_size
            && (candidate.version == 6 || candidate.id == flow.last_id.wrapping_add(1))
            && frame.len() - VNET_HDR_LEN + candidate.data_len <= MAX_PACKET_LEN
            && headers_match(&frame[VNET_HDR_LEN..], packet, candidate)
    }

    /// Appends the data of `candidate` to the super-packet of open flow `at`.
    fn merge(&mut self, at: usize, candidate: &Candidate, packet: &[u8]) {
        let flow = &mut self.open[at];
        let frame = &mut self.frames[flow.frame];
        let (ip, tcp) = (candidate.ip_header_len, candidate.tcp_header_len);
        frame.extend_from_slice(&packet[ip + tcp..]);
        flow.next = Next::Tcp(candidate.seq.wrapping_add(candidate.data_len as u32));
        flow.last_id = candidate.id;
        let segment_size = flow.segment_size;
        let ends = candidate.flags & PSH != 0 || candidate.data_len < segment_size;
        let header = VirtioNetHdr {
            flags: VirtioNetHdr::NEEDS_CSUM,
            gso_type: if candidate.version == 4 {
                GsoType::TcpV4
            } else {
                GsoType::TcpV6
            },
            ecn: false,
            hdr_len: (ip + tcp) as u16,
            gso_size: segment_size as u16,
            csum_start: ip as u16,
            csum_offset: TCP_CHECKSUM_OFFSET as u16,
        };
        let p = seal(frame, &header, candidate.version, ip);
        let len = p.len();
        // The latest window, PSH if this segment had it.
        p[ip + 13] |= candidate.flags & PSH;
        p[ip + 14..ip + 16].copy_from_slice(&packet[ip + 14..ip + 16]);
        let partial = fold(pseudo_header_sum(p, len - ip));
        p[ip + TCP_CHECKSUM_OFFSET..ip + TCP_CHECKSUM_OFFSET + 2]
            .copy_from_slice(&partial.to_be_bytes());
        if ends {
            self.open.remove(at);
        }
    }
}

/// Puts `header` in front of a super-packet that grew and sets its IP length (and the IPv4
/// header checksum) to its new size; returns the packet.
fn seal<'f>(
    frame: &'f mut [u8],
    header: &VirtioNetHdr,
    version: u8,
    ip_header_len: usize,
) -> &'f mut [u8] {
    frame[..VNET_HDR_LEN].copy_from_slice(&header.to_bytes());
    let p = &mut frame[VNET_HDR_LEN..];
    let len = p.len();
    if version == 4 {
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        set_ipv4_checksum(p, ip_header_len);
    } else {
        p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
    }
    p
}

/// Whether `packet` is TCP between the same addresses and ports as `first` (a candidate, so
/// with a plain IP header). `packet` may be anything.
fn same_ports_and_addresses(first: &[u8], packet: &[u8]) -> bool {
    let Ok(layout) = tcp_layout(packet) else {
        return false;
    };
    let (addresses, tcp_at) = match layout.version {
        4 => (12..20, 20),
        _ => (8..40, 40),
    };
    first.first().map(|b| b >> 4) == Some(layout.version)
        && first.get(addresses.clone()) == packet.get(addresses)
        && first.get(tcp_at..tcp_at + 4)
            == packet.get(layout.ip_header_len..layout.ip_header_len + 4)
}

/// Whether `packet` is UDP between the same addresses and ports as `first` (a UDP candidate, so
/// plain UDP). `packet` may be anything; an IPv6 packet behind extension headers or an IPv4
/// fragment after the first never matches.
fn same_udp_flow(first: &[u8], packet: &[u8]) -> bool {
    let Some(version) = packet.first().map(|b| b >> 4) else {
        return false;
    };
    let (addresses, udp_at) = match version {
        4 if packet.len() >= 20
            && packet[9] == UDP
            && u16::from_be_bytes([packet[6], packet[7]]) & 0x1FFF == 0 =>
        {
            (12..20, usize::from(packet[0] & 0x0F) * 4)
        }
        6 if packet.len() >= 40 && packet[6] == UDP => (8..40, 40),
        _ => return false,
    };
    let first_udp_at = if version == 4 { 20 } else { 40 };
    first.first().map(|b| b >> 4) == Some(version)
        && first.get(addresses.clone()) == packet.get(addresses)
        && first.get(first_udp_at..first_udp_at + 4).is_some()
        && first.get(first_udp_at..first_udp_at + 4) == packet.get(udp_at..udp_at + 4)
}

/// Whether the headers of `packet` (a candidate of the same flow) equal those of `first` but
/// for lengths, identifier, sequence number, flags, window and checksums; the flags were
/// checked apart.
fn headers_match(first: &[u8], packet: &[u8], candidate: &Candidate) -> bool {
    let ip = candidate.ip_header_len;
    let tcp_end = ip + candidate.tcp_header_len;
    if first.len() < tcp_end || usize::from(first[ip + 12] >> 4) * 4 != candidate.tcp_header_len {
        return false;
    }
    let ip_same = if candidate.version == 4 {
        first[..2] == packet[..2]
            && first[6..10] == packet[6..10]
            && first[12..20] == packet[12..20]
    } else {
        first[..4] == packet[..4] && first[6..40] == packet[6..40]
    };
    ip_same
        && first[ip..ip + 4] == packet[ip..ip + 4]
        && first[ip + 8..ip + 13] == packet[ip + 8..ip + 13]
        && first[ip + 18..tcp_end] == packet[ip + 18..tcp_end]
}

#[cfg(test)]
mod tests;
