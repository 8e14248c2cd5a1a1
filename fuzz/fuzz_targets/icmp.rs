//! The ICMP echo helpers (`ppp_tokio::icmp`), on arbitrary bytes: no panic; the checksum agrees
//! with a byte-at-a-time reference and verifies once appended; every echo reply built parses
//! back to the request's identifier, sequence number, addresses and data, with correct IPv4
//! header and ICMP checksums; and every request built is answered.
//!
//! Input: `[flags, us (4 bytes), packet...]`. Flags bit 0: answer as the packet's destination
//! (else as `us`); bit 1: fill in correct IPv4 header and ICMP checksums first.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use ppp_tokio::icmp::{checksum, echo_reply, echo_request, parse_echo_reply};

/// RFC 1071 one byte at a time.
fn reference_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for (i, byte) in data.iter().enumerate() {
        sum += if i % 2 == 0 {
            u32::from(*byte) << 8
        } else {
            u32::from(*byte)
        };
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// `(header length, end)` of an IPv4 packet's payload, as the helpers read it.
fn bounds(packet: &[u8]) -> (usize, usize) {
    let ihl = usize::from(packet[0] & 0x0F) * 4;
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    (ihl, total.clamp(ihl, packet.len()))
}

fn fix_checksums(packet: &mut [u8]) {
    if packet.len() < 20 {
        return;
    }
    let ihl = (usize::from(packet[0] & 0x0F) * 4).clamp(20, packet.len());
    packet[10..12].fill(0);
    let sum = checksum(&packet[..ihl]);
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    let end = total.clamp(ihl, packet.len());
    if end >= ihl + 4 {
        packet[ihl + 2..ihl + 4].fill(0);
        let sum = checksum(&packet[ihl..end]);
        packet[ihl + 2..ihl + 4].copy_from_slice(&sum.to_be_bytes());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&[flags, a, b, c, d], packet)) = data.split_first_chunk::<5>() else {
        return;
    };
    let sum = checksum(packet);
    assert_eq!(sum, reference_checksum(packet));
    if packet.len() % 2 == 0 {
        let mut with = packet.to_vec();
        with.extend_from_slice(&sum.to_be_bytes());
        assert_eq!(checksum(&with), 0);
    }
    let mut packet = packet.to_vec();
    if flags & 2 != 0 {
        fix_checksums(&mut packet);
    }
    let us = match packet.get(16..20) {
        Some(dst) if flags & 1 != 0 => Ipv4Addr::new(dst[0], dst[1], dst[2], dst[3]),
        _ => Ipv4Addr::new(a, b, c, d),
    };

    if let Some(reply) = echo_reply(&packet, us) {
        let (ihl, end) = bounds(&packet);
        let request = &packet[ihl..end];
        let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
        assert_eq!(packet.get(16..20), Some(&us.octets()[..]));
        assert_eq!(request[0], 8);
        assert_eq!(checksum(&reply[..20]), 0, "IPv4 header checksum");
        assert_eq!(checksum(&reply[20..]), 0, "ICMP checksum");
        assert_eq!(
            usize::from(u16::from_be_bytes([reply[2], reply[3]])),
            reply.len()
        );
        assert_eq!(
            (&reply[12..16], &reply[16..20]),
            (&us.octets()[..], &src.octets()[..])
        );
        assert_eq!(reply[20], 0);
        assert_eq!(
            &reply[24..],
            &request[4..],
            "identifier, sequence and data echoed"
        );
        let id = u16::from_be_bytes([request[4], request[5]]);
        let seq = u16::from_be_bytes([request[6], request[7]]);
        assert_eq!(parse_echo_reply(&reply), Some((us, id, seq)));
        assert_eq!(echo_reply(&reply, src), None, "a reply is not answered");
    }
    if let Some((from, id, seq)) = parse_echo_reply(&packet) {
        let (ihl, end) = bounds(&packet);
        assert_eq!(&packet[12..16], &from.octets()[..]);
        assert_eq!((packet[ihl], checksum(&packet[ihl..end])), (0, 0));
        assert_eq!(
            &packet[ihl + 4..ihl + 8],
            &[(id >> 8) as u8, id as u8, (seq >> 8) as u8, seq as u8]
        );
    }

    // A request built from the input is answered and the answer parses back. (IPv4 carries at
    // most 65,507 bytes of echo data; the helpers' callers send a few dozen.)
    let payload = &packet[packet.len().min(8)..];
    let payload = &payload[..payload.len().min(65_507)];
    let (id, seq) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
    let src = Ipv4Addr::from(u32::from_be_bytes([flags, a, b, c]));
    let request = echo_request(src, us, id, seq, payload);
    assert_eq!(checksum(&request[..20]), 0);
    assert_eq!(checksum(&request[20..]), 0);
    assert_eq!(parse_echo_reply(&request), None);
    let reply = echo_reply(&request, us).expect("our own request is answered");
    assert_eq!(parse_echo_reply(&reply), Some((us, id, seq)));
    assert_eq!(&reply[28..], payload);
});
