//! ICMP echo over IPv4: enough to ping across a link, and to answer pings, without a TUN device.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use ppp_tokio::icmp;
//!
//! let request = icmp::echo_request(Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2), 7, 1, b"hi");
//! let reply = icmp::echo_reply(&request, Ipv4Addr::new(192, 0, 2, 2)).expect("a request to us");
//! assert_eq!(icmp::parse_echo_reply(&reply), Some((Ipv4Addr::new(192, 0, 2, 2), 7, 1)));
//! ```

use std::net::Ipv4Addr;

/// The Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for pair in &mut chunks {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, icmp: &[u8]) -> Vec<u8> {
    let total = 20 + icmp.len();
    let mut packet = Vec::with_capacity(total);
    packet.extend_from_slice(&[0x45, 0]);
    packet.extend_from_slice(&(total as u16).to_be_bytes());
    packet.extend_from_slice(&[0, 0, 0x40, 0, ttl, 1, 0, 0]);
    packet.extend_from_slice(&src.octets());
    packet.extend_from_slice(&dst.octets());
    let sum = checksum(&packet);
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
    packet.extend_from_slice(icmp);
    packet
}

/// An ICMP echo request from `src` to `dst`.
pub fn echo_request(src: Ipv4Addr, dst: Ipv4Addr, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0];
    icmp.extend_from_slice(&id.to_be_bytes());
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(payload);
    let sum = checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    ipv4_packet(src, dst, 64, &icmp)
}

/// The fields of an IPv4 ICMP packet: source, destination, ICMP message.
fn split(packet: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, &[u8])> {
    let header_len = usize::from(packet.first()? & 0x0F) * 4;
    if packet[0] >> 4 != 4 || header_len < 20 || packet.len() < header_len + 8 || packet[9] != 1 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    let end = total.clamp(header_len, packet.len());
    let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    Some((src, dst, &packet[header_len..end]))
}

/// The echo reply to `packet` if it is an ICMP echo request addressed to `us`.
pub fn echo_reply(packet: &[u8], us: Ipv4Addr) -> Option<Vec<u8>> {
    let (src, dst, icmp) = split(packet)?;
    if dst != us || icmp.len() < 8 || icmp[0] != 8 || checksum(icmp) != 0 {
        return None;
    }
    let mut reply = icmp.to_vec();
    reply[0] = 0;
    reply[2..4].copy_from_slice(&[0, 0]);
    let sum = checksum(&reply);
    reply[2..4].copy_from_slice(&sum.to_be_bytes());
    Some(ipv4_packet(us, src, 64, &reply))
}

/// `(source, id, sequence)` of an ICMP echo reply with a correct checksum.
pub fn parse_echo_reply(packet: &[u8]) -> Option<(Ipv4Addr, u16, u16)> {
    let (src, _, icmp) = split(packet)?;
    if icmp.len() < 8 || icmp[0] != 0 || checksum(icmp) != 0 {
        return None;
    }
    Some((
        src,
        u16::from_be_bytes([icmp[4], icmp[5]]),
        u16::from_be_bytes([icmp[6], icmp[7]]),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn checksums_verify() {
        let request = echo_request(
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(192, 0, 2, 2),
            1,
            2,
            b"odd",
        );
        assert_eq!(checksum(&request[..20]), 0);
        assert_eq!(checksum(&request[20..]), 0);
        assert!(echo_reply(&request, Ipv4Addr::new(192, 0, 2, 3)).is_none());
        assert!(parse_echo_reply(&request).is_none());
        assert!(split(&[0x45]).is_none());
    }

    fn address() -> impl Strategy<Value = Ipv4Addr> {
        any::<u32>().prop_map(Ipv4Addr::from)
    }

    proptest! {
        /// Request → reply → parse gives back the addresses, identifier, sequence and data,
        /// every checksum verifies, and the request is answered by its destination only.
        #[test]
        fn echo_round_trip(
            src in address(),
            dst in address(),
            id: u16,
            seq: u16,
            payload in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let request = echo_request(src, dst, id, seq, &payload);
            prop_assert_eq!(checksum(&request[..20]), 0);
            prop_assert_eq!(checksum(&request[20..]), 0);
            prop_assert_eq!(parse_echo_reply(&request), None);
            if src != dst {
                prop_assert_eq!(echo_reply(&request, src), None);
            }
            let reply = echo_reply(&request, dst).expect("a request to dst");
            prop_assert_eq!(checksum(&reply[..20]), 0);
            prop_assert_eq!(checksum(&reply[20..]), 0);
            prop_assert_eq!(&reply[16..20], &src.octets()[..]);
            prop_assert_eq!(&reply[28..], &payload[..]);
            prop_assert_eq!(parse_echo_reply(&reply), Some((dst, id, seq)));
            prop_assert_eq!(echo_reply(&reply, src), None);
        }

        /// Arbitrary bytes: no panic, and whatever is answered or parsed has the right type.
        #[test]
        fn arbitrary_packets(packet in proptest::collection::vec(any::<u8>(), 0..80), us in address()) {
            if let Some(reply) = echo_reply(&packet, us) {
                prop_assert_eq!(checksum(&reply[20..]), 0);
                prop_assert!(parse_echo_reply(&reply).is_some());
            }
            if parse_echo_reply(&packet).is_some() {
                prop_assert_eq!(echo_reply(&packet, us), None);
            }
        }

        /// A checksum appended to even-length data makes the whole verify.
        #[test]
        fn appended_checksum_verifies(mut data in proptest::collection::vec(any::<u8>(), 0..200)) {
            data.truncate(data.len() & !1);
            let sum = checksum(&data);
            data.extend_from_slice(&sum.to_be_bytes());
            prop_assert_eq!(checksum(&data), 0);
        }
    }
}
