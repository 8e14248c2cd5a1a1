//! The TUN offloads (`ppp_tokio::offload`) on arbitrary input: a virtio-net header and a packet
//! as a TUN read would give them, through segmentation, then the segments through coalescing
//! (TCP and UDP).
//!
//! What must hold: no panic; the header's 10 bytes emit back as they came; a refused packet
//! leaves the output as it was; every segment fits the MTU; a super-packet's segments have right
//! IPv4 header and TCP (or UDP) checksums and carry the super-packet's data in order; a packet without
//! offloads passes unchanged; coalesced frames are at most 64 KiB plus the header and no more
//! than the segments; and segmenting the coalesced frames again at the same MTU gives exactly the
//! segments (coalescing loses and invents nothing).
//!
//! Input: `[mtu hi, mtu lo, flags]` + 10-byte header + packet. Flags bit 0: set the IP length
//! fields to the packet's length; bit 1: set the header's GSO type to TCP of the packet's IP
//! version; bit 2 (instead of bit 1): to `UDP_L4` (the fuzzer would rarely find these by
//! itself).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ppp_tokio::offload::{
    Coalescer, GsoType, MAX_PACKET_LEN, Segments, VNET_HDR_LEN, VirtioNetHdr, segment,
};

/// The ones' complement sum of `bytes` (odd length padded with a zero byte), not folded.
fn sum(bytes: &[u8]) -> u64 {
    bytes
        .chunks(2)
        .map(|w| u64::from(u16::from_be_bytes([w[0], w.get(1).copied().unwrap_or(0)])))
        .sum()
}

fn fold(mut sum: u64) -> u16 {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

/// Where TCP starts in a segment (IPv4 by its IHL, IPv6 after hop-by-hop and destination
/// options headers), found independently of the code under test.
fn tcp_start(p: &[u8]) -> Option<usize> {
    match p.first()? >> 4 {
        4 => Some(usize::from(p[0] & 0x0F) * 4),
        6 => {
            let (mut next, mut at) = (*p.get(6)?, 40);
            while next != 6 {
                next = *p.get(at)?;
                at += (usize::from(*p.get(at + 1)?) + 1) * 8;
            }
            Some(at)
        }
        _ => None,
    }
}

/// Whether a segment's IPv4 header checksum (if IPv4) and TCP checksum verify.
fn checksums_ok(p: &[u8]) -> bool {
    let Some(start) = tcp_start(p).filter(|&s| s + 20 <= p.len()) else {
        return false;
    };
    let tcp_len = (p.len() - start) as u64;
    let pseudo = if p[0] >> 4 == 4 {
        if fold(sum(&p[..start])) != 0xFFFF {
            return false;
        }
        sum(&p[12..20]) + 6 + tcp_len
    } else {
        sum(&p[8..40]) + 6 + tcp_len
    };
    fold(pseudo + sum(&p[start..])) == 0xFFFF
}

/// Whether a datagram's IPv4 header checksum (if IPv4) and UDP checksum (not 0) verify.
fn udp_checksums_ok(p: &[u8]) -> bool {
    let start = if p[0] >> 4 == 4 { 20 } else { 40 };
    if p.len() < start + 8 || p[start + 6..start + 8] == [0, 0] {
        return false;
    }
    let udp_len = (p.len() - start) as u64;
    let pseudo = if start == 20 {
        if fold(sum(&p[..20])) != 0xFFFF {
            return false;
        }
        sum(&p[12..20]) + 17 + udp_len
    } else {
        sum(&p[8..40]) + 17 + udp_len
    };
    fold(pseudo + sum(&p[start..])) == 0xFFFF
}

fuzz_target!(|data: &[u8]| {
    let Some((&[hi, lo, flags], rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let Some((header_bytes, packet)) = rest.split_first_chunk::<VNET_HDR_LEN>() else {
        return;
    };
    let mtu = u16::from_be_bytes([hi, lo]);
    let mut header = VirtioNetHdr::parse(header_bytes).expect("10 bytes parse");
    assert_eq!(&header.to_bytes(), header_bytes, "header round trip");
    let mut packet = packet.to_vec();
    let version = packet.first().map(|b| b >> 4);
    if flags & 1 != 0 {
        match version {
            Some(4) if packet.len() >= 20 => {
                let len = packet.len() as u16;
                packet[2..4].copy_from_slice(&len.to_be_bytes());
            }
            Some(6) if packet.len() >= 40 => {
                let len = (packet.len() - 40) as u16;
                packet[4..6].copy_from_slice(&len.to_be_bytes());
            }
            _ => {}
        }
    }
    if flags & 2 != 0 {
        header.gso_type = if version == Some(6) {
            GsoType::TcpV6
        } else {
            GsoType::TcpV4
        };
        header.gso_size = header.gso_size.max(1);
    } else if flags & 4 != 0 {
        header.gso_type = GsoType::UdpL4;
        header.gso_size = header.gso_size.max(1);
    }

    let mut segments = Segments::with_headroom(usize::from(flags >> 4));
    let count = match segment(&header, &packet, mtu, &mut segments) {
        Ok(count) => count,
        Err(_) => {
            assert!(segments.is_empty(), "refused, yet output");
            return;
        }
    };
    assert_eq!(count, segments.len());
    assert!(count >= 1);
    assert!(segments.iter().all(|p| p.len() <= usize::from(mtu)));
    // A super-packet's segments: where their data starts, and how their checksums are checked.
    let cut: Option<(usize, fn(&[u8]) -> bool)> = match header.gso_type {
        GsoType::TcpV4 | GsoType::TcpV6 => {
            let start = tcp_start(&packet).expect("segmented, so TCP");
            Some((
                start + usize::from(packet[start + 12] >> 4) * 4,
                checksums_ok,
            ))
        }
        GsoType::UdpL4 => Some((if version == Some(4) { 28 } else { 48 }, udp_checksums_ok)),
        _ => None,
    };
    if let Some((headers, checksums_right)) = cut {
        let ip_len = if version == Some(4) {
            usize::from(u16::from_be_bytes([packet[2], packet[3]]))
        } else {
            40 + usize::from(u16::from_be_bytes([packet[4], packet[5]]))
        };
        let mut data = Vec::new();
        for p in segments.iter() {
            assert!(checksums_right(p), "segment checksums");
            data.extend_from_slice(&p[headers..]);
        }
        assert_eq!(data, packet[headers..ip_len], "data kept in order");
    } else if header.flags & VirtioNetHdr::NEEDS_CSUM == 0 {
        assert_eq!(segments.get(0), Some(packet.as_slice()), "passed unchanged");
    }

    let mut coalescer = Coalescer::with_udp(true);
    for p in segments.iter() {
        coalescer.push(p);
    }
    assert!(coalescer.len() <= segments.len());
    let mut again = Segments::new();
    for frame in coalescer.frames() {
        assert!(frame.len() <= VNET_HDR_LEN + MAX_PACKET_LEN);
        let (header, packet) = VirtioNetHdr::split(frame).expect("a header");
        segment(&header, packet, mtu, &mut again).expect("coalesced frames segment again");
    }
    assert!(
        again.iter().eq(segments.iter()),
        "segmenting the coalesced frames gives the segments back"
    );

    // The packet as it came, twice, straight into a coalescer: bounded, never lost.
    coalescer.clear();
    coalescer.push(&packet);
    coalescer.push(&packet);
    assert_eq!(coalescer.len(), 2);
});
