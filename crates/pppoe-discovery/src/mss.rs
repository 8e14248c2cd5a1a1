//! TCP MSS clamping for IPv4 and IPv6 SYN segments, as PPPoE routers do so that hosts behind
//! them never send segments larger than the session's MTU allows.
//!
//! [`clamp_mss`] rewrites the MSS option of a SYN (or SYN-ACK) down to a limit and fixes the TCP
//! checksum incrementally (RFC 1624), without touching anything else. Everything that is not a
//! well-formed, unfragmented TCP SYN with an MSS option above the limit is left alone.
//!
//! ```
//! use pppoe_discovery::mss::{clamp_mss, mss_for_mtu_v4};
//!
//! let mut not_ip = [0u8; 10];
//! assert_eq!(clamp_mss(&mut not_ip, mss_for_mtu_v4(1492)), None);
//! assert_eq!(mss_for_mtu_v4(1492), 1452);
//! ```

const TCP: u8 = 6;
const SYN: u8 = 0x02;
const OPTION_END: u8 = 0;
const OPTION_NOP: u8 = 1;
const OPTION_MSS: u8 = 2;

/// The MSS that fits an IPv4 MTU: `mtu` − 20 (IPv4 header) − 20 (TCP header).
pub const fn mss_for_mtu_v4(mtu: u16) -> u16 {
    mtu.saturating_sub(40)
}

/// The MSS that fits an IPv6 MTU: `mtu` − 40 (IPv6 header) − 20 (TCP header).
pub const fn mss_for_mtu_v6(mtu: u16) -> u16 {
    mtu.saturating_sub(60)
}

/// Lowers the MSS option of a TCP SYN in the IPv4 or IPv6 packet `packet` to `max_mss`, fixing
/// the TCP checksum. Returns the original MSS when it was rewritten, `None` when the packet was
/// left alone (not IP, not TCP, not a SYN, a non-first fragment, no MSS option, already small
/// enough, or malformed). Never panics.
pub fn clamp_mss(packet: &mut [u8], max_mss: u16) -> Option<u16> {
    let (tcp_start, end) = match packet.first()? >> 4 {
        4 => locate_tcp_v4(packet)?,
        6 => locate_tcp_v6(packet)?,
        _ => return None,
    };
    let segment = packet.get_mut(tcp_start..end)?;
    clamp_in_segment(segment, max_mss)
}

/// Where the TCP segment of an IPv4 packet is: `(start, end)`.
fn locate_tcp_v4(packet: &[u8]) -> Option<(usize, usize)> {
    let header_len = usize::from(packet.first()? & 0x0f) * 4;
    if header_len < 20 || packet.len() < header_len {
        return None;
    }
    let total_len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    let fragment_offset = u16::from_be_bytes([packet[6], packet[7]]) & 0x1fff;
    if packet[9] != TCP || fragment_offset != 0 || total_len < header_len {
        return None;
    }
    Some((header_len, total_len.min(packet.len())))
}

/// Where the TCP segment of an IPv6 packet is, after any hop-by-hop, routing and destination
/// options headers. Fragments are left alone.
fn locate_tcp_v6(packet: &[u8]) -> Option<(usize, usize)> {
    if packet.len() < 40 {
        return None;
    }
    let end = (40 + usize::from(u16::from_be_bytes([packet[4], packet[5]]))).min(packet.len());
    let mut next = packet[6];
    let mut at = 40;
    for _ in 0..8 {
        match next {
            TCP => return Some((at, end)),
            0 | 43 | 60 => {
                let header = packet.get(at..at + 2)?;
                next = header[0];
                at += (usize::from(header[1]) + 1) * 8;
            }
            _ => return None,
        }
    }
    None
}

/// Clamps the MSS option in a TCP segment.
fn clamp_in_segment(segment: &mut [u8], max_mss: u16) -> Option<u16> {
    if segment.len() < 20 || segment[13] & SYN == 0 {
        return None;
    }
    let header_len = usize::from(segment[12] >> 4) * 4;
    if header_len < 20 || header_len > segment.len() {
        return None;
    }
    let mut at = 20;
    while at < header_len {
        match segment[at] {
            OPTION_END => return None,
            OPTION_NOP => at += 1,
            kind => {
                let len = usize::from(*segment.get(at + 1)?);
                if len < 2 || at + len > header_len {
                    return None;
                }
                if kind == OPTION_MSS && len == 4 {
                    let old = u16::from_be_bytes([segment[at + 2], segment[at + 3]]);
                    if old <= max_mss {
                        return None;
                    }
                    rewrite(segment, at + 2, &max_mss.to_be_bytes());
                    return Some(old);
                }
                at += len;
            }
        }
    }
    None
}

/// Writes `new` at `offset` in `segment` and updates the TCP checksum (bytes 16..18) by RFC 1624
/// eqn. 3, word by word, whatever the alignment of `offset`.
fn rewrite(segment: &mut [u8], offset: usize, new: &[u8]) {
    let first_word = offset & !1;
    let end_word = (offset + new.len() + 1) & !1;
    let words = |s: &[u8]| -> Vec<u16> {
        (first_word..end_word)
            .step_by(2)
            .map(|i| {
                u16::from_be_bytes([
                    s.get(i).copied().unwrap_or(0),
                    s.get(i + 1).copied().unwrap_or(0),
                ])
            })
            .collect()
    };
    let old_words = words(segment);
    segment[offset..offset + new.len()].copy_from_slice(new);
    let new_words = words(segment);
    let mut sum = u32::from(!u16::from_be_bytes([segment[16], segment[17]]));
    for (old, new) in old_words.iter().zip(&new_words) {
        sum += u32::from(!old) + u32::from(*new);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    segment[16..18].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Internet checksum from scratch, to check the incremental update against.
    fn checksum(chunks: &[&[u8]]) -> u16 {
        let mut sum = 0u32;
        let bytes: Vec<u8> = chunks.concat();
        for pair in bytes.chunks(2) {
            let word = u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
            sum += u32::from(word);
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// A SYN from 192.0.2.1:40000 to 198.51.100.7:80 with `options`, checksums filled in.
    fn ipv4_syn(options: &[u8], flags: u8) -> Vec<u8> {
        let tcp_len = 20 + options.len();
        let total = 20 + tcp_len;
        let mut p = vec![
            0x45,
            0x00,
            (total >> 8) as u8,
            total as u8, // version, IHL, TOS, total length
            0x12,
            0x34,
            0x40,
            0x00, // id, DF
            0x40,
            0x06,
            0x00,
            0x00, // TTL 64, TCP, header checksum
            192,
            0,
            2,
            1,
            198,
            51,
            100,
            7, // addresses
            0x9c,
            0x40,
            0x00,
            0x50, // ports 40000 → 80
            0x00,
            0x00,
            0x00,
            0x01,
            0x00,
            0x00,
            0x00,
            0x00, // seq 1, ack 0
            ((tcp_len / 4) << 4) as u8,
            flags,
            0xfa,
            0xf0, // data offset, flags, window
            0x00,
            0x00,
            0x00,
            0x00, // checksum, urgent pointer
        ];
        p.extend_from_slice(options);
        let ip_sum = checksum(&[&p[..20]]);
        p[10..12].copy_from_slice(&ip_sum.to_be_bytes());
        let tcp_sum = tcp_checksum_v4(&p);
        p[36..38].copy_from_slice(&tcp_sum.to_be_bytes());
        p
    }

    fn tcp_checksum_v4(p: &[u8]) -> u16 {
        let tcp = &p[20..];
        let pseudo = [&p[12..20], &[0, 6], &(tcp.len() as u16).to_be_bytes()[..]].concat();
        let mut zeroed = tcp.to_vec();
        zeroed[16] = 0;
        zeroed[17] = 0;
        checksum(&[&pseudo, &zeroed])
    }

    fn ipv6_syn(options: &[u8], hop_by_hop: bool) -> Vec<u8> {
        let tcp_len = 20 + options.len();
        let ext_len = if hop_by_hop { 8 } else { 0 };
        let payload_len = tcp_len + ext_len;
        let mut p = vec![0x60, 0, 0, 0, (payload_len >> 8) as u8, payload_len as u8];
        p.push(if hop_by_hop { 0 } else { 6 });
        p.push(64);
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        if hop_by_hop {
            p.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]); // next TCP, PadN
        }
        let tcp_start = p.len();
        p.extend_from_slice(&[0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0]);
        p.extend_from_slice(&[((tcp_len / 4) << 4) as u8, SYN, 0xfa, 0xf0, 0, 0, 0, 0]);
        p.extend_from_slice(options);
        let sum = tcp_checksum_v6(&p, tcp_start);
        p[tcp_start + 16..tcp_start + 18].copy_from_slice(&sum.to_be_bytes());
        p
    }

    fn tcp_checksum_v6(p: &[u8], tcp_start: usize) -> u16 {
        let tcp = &p[tcp_start..];
        let pseudo = [
            &p[8..40],
            &(tcp.len() as u32).to_be_bytes()[..],
            &[0, 0, 0, 6],
        ]
        .concat();
        let mut zeroed = tcp.to_vec();
        zeroed[16] = 0;
        zeroed[17] = 0;
        checksum(&[&pseudo, &zeroed])
    }

    const MSS_1460: [u8; 4] = [2, 4, 0x05, 0xb4];

    #[test]
    fn golden_ipv4_syn_is_clamped() {
        let mut p = ipv4_syn(&MSS_1460, SYN);
        // A hand-checked frame: the bytes that matter.
        assert_eq!(&p[..4], [0x45, 0x00, 0x00, 0x2c]);
        assert_eq!(&p[40..44], MSS_1460);
        assert_eq!(clamp_mss(&mut p, 1452), Some(1460));
        assert_eq!(&p[40..44], [2, 4, 0x05, 0xac]);
        assert_eq!(u16::from_be_bytes([p[36], p[37]]), tcp_checksum_v4(&p));
        // Idempotent.
        assert_eq!(clamp_mss(&mut p, 1452), None);
    }

    #[test]
    fn odd_offsets_and_other_options() {
        // NOP, NOP, SACK-permitted... table of option layouts, MSS at odd and even offsets.
        let layouts: [&[u8]; 4] = [
            &[1, 2, 4, 0x05, 0xb4, 0, 0, 0], // MSS at odd offset
            &[1, 1, 4, 2, 2, 4, 0x05, 0xb4], // SACK-permitted first
            &[1, 3, 3, 7, 2, 4, 0xff, 0xff], // window scale, MSS 65535
            &[
                2, 4, 0x05, 0xb4, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 4, 2,
            ], // with timestamps
        ];
        for options in layouts {
            let mut p = ipv4_syn(options, SYN | 0x10);
            let before = p.clone();
            assert!(clamp_mss(&mut p, 1400).is_some(), "{options:?}");
            assert_eq!(
                u16::from_be_bytes([p[36], p[37]]),
                tcp_checksum_v4(&p),
                "{options:?}"
            );
            let changed: Vec<usize> = (0..p.len()).filter(|&i| p[i] != before[i]).collect();
            assert!(
                changed.iter().all(|&i| (36..38).contains(&i) || i >= 40),
                "{changed:?}"
            );
        }
    }

    #[test]
    fn left_alone() {
        let cases: Vec<(Vec<u8>, u16)> = vec![
            (ipv4_syn(&MSS_1460, 0x10), 1400),               // not a SYN
            (ipv4_syn(&MSS_1460, SYN), 1460),                // already small enough
            (ipv4_syn(&[1, 1, 1, 0], SYN), 1400),            // no MSS option
            (ipv4_syn(&[2, 0, 0, 0], SYN), 1400),            // bad option length
            (ipv4_syn(&[3, 9, 0, 0], SYN), 1400),            // option runs past the header
            (ipv4_syn(&MSS_1460, SYN)[..30].to_vec(), 1400), // truncated
            (vec![0x45; 19], 1400),
            (vec![], 1400),
        ];
        for (mut p, limit) in cases {
            let before = p.clone();
            assert_eq!(clamp_mss(&mut p, limit), None);
            assert_eq!(p, before);
        }
        let mut fragment = ipv4_syn(&MSS_1460, SYN);
        fragment[7] = 1;
        assert_eq!(clamp_mss(&mut fragment, 1400), None);
        let mut udp = ipv4_syn(&MSS_1460, SYN);
        udp[9] = 17;
        assert_eq!(clamp_mss(&mut udp, 1400), None);
    }

    #[test]
    fn golden_ipv6_syn_is_clamped() {
        for hop_by_hop in [false, true] {
            let mut p = ipv6_syn(&[1, 2, 4, 0x05, 0xa0, 0, 0, 0], hop_by_hop);
            let tcp_start = if hop_by_hop { 48 } else { 40 };
            assert_eq!(clamp_mss(&mut p, mss_for_mtu_v6(1492)), Some(1440));
            assert_eq!(&p[tcp_start + 21..tcp_start + 25], [2, 4, 0x05, 0x98]);
            let sum = u16::from_be_bytes([p[tcp_start + 16], p[tcp_start + 17]]);
            assert_eq!(sum, tcp_checksum_v6(&p, tcp_start));
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_packets_never_panic(mut bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120), limit: u16) {
            let _ = clamp_mss(&mut bytes, limit);
        }

        #[test]
        fn checksum_stays_right(mss in 0u16.., limit in 0u16.., pad in 0usize..3) {
            let mut options = vec![1; pad];
            options.extend_from_slice(&[2, 4]);
            options.extend_from_slice(&mss.to_be_bytes());
            options.resize(8, 0);
            let mut p = ipv4_syn(&options, SYN);
            let clamped = clamp_mss(&mut p, limit);
            proptest::prop_assert_eq!(clamped.is_some(), mss > limit);
            proptest::prop_assert_eq!(u16::from_be_bytes([p[36], p[37]]), tcp_checksum_v4(&p));
        }

        /// IPv6 (with and without a hop-by-hop header), any checksum-preserving layout: the
        /// MSS ends at exactly the limit, only ever lower, the checksum stays right, a second
        /// clamp does nothing, and a lower limit finds the clamped value.
        #[test]
        fn ipv6_clamp_is_idempotent_and_never_raises(
            mss: u16,
            limit: u16,
            pad in 0usize..3,
            hop_by_hop: bool,
        ) {
            let mut options = vec![1; pad];
            options.extend_from_slice(&[2, 4]);
            options.extend_from_slice(&mss.to_be_bytes());
            options.resize(8, 0);
            let mut p = ipv6_syn(&options, hop_by_hop);
            let tcp_start = if hop_by_hop { 48 } else { 40 };
            let at = tcp_start + 20 + pad + 2;
            let clamped = clamp_mss(&mut p, limit);
            proptest::prop_assert_eq!(clamped, (mss > limit).then_some(mss));
            proptest::prop_assert_eq!(u16::from_be_bytes([p[at], p[at + 1]]), mss.min(limit));
            let sum = u16::from_be_bytes([p[tcp_start + 16], p[tcp_start + 17]]);
            proptest::prop_assert_eq!(sum, tcp_checksum_v6(&p, tcp_start));
            let again = p.clone();
            proptest::prop_assert_eq!(clamp_mss(&mut p, limit), None);
            proptest::prop_assert_eq!(&p, &again);
            if let Some(lower) = mss.min(limit).checked_sub(1) {
                proptest::prop_assert_eq!(clamp_mss(&mut p, lower), Some(mss.min(limit)));
                let sum = u16::from_be_bytes([p[tcp_start + 16], p[tcp_start + 17]]);
                proptest::prop_assert_eq!(sum, tcp_checksum_v6(&p, tcp_start));
            }
        }
    }
}
