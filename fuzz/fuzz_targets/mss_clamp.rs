//! TCP MSS clamping, which the PPPoE adapter runs on every IPv4 and IPv6 packet it forwards, on
//! arbitrary packets: it never panics; it changes nothing but the MSS value and the TCP checksum;
//! it only ever lowers the MSS, to exactly the limit; it is idempotent; and a segment whose TCP
//! checksum was right still has a right checksum.
//!
//! Input: `[limit hi, limit lo, flags, packet...]`. Flags bit 0: fill in correct IPv4 header
//! and TCP checksums before clamping (the fuzzer cannot find them by itself), so the checksum
//! property is checked on valid segments and not only vacuously.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pppoe_discovery::mss::{clamp_mss, mss_for_mtu_v4, mss_for_mtu_v6};

/// The ones' complement sum of `bytes` (odd length padded with a zero byte), not folded.
fn sum(bytes: &[u8]) -> u32 {
    bytes
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w.get(1).copied().unwrap_or(0)])))
        .sum()
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

/// Where the TCP segment is, found independently of the code under test (same rules: IPv4
/// unfragmented, IPv6 after hop-by-hop, routing and destination options headers), and the
/// pseudo-header's sum.
fn tcp_segment(packet: &[u8]) -> Option<(usize, usize, u32)> {
    match packet.first()? >> 4 {
        4 => {
            let ihl = usize::from(packet[0] & 0x0F) * 4;
            if ihl < 20 || packet.len() < ihl || packet[9] != 6 {
                return None;
            }
            let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
            if total < ihl || u16::from_be_bytes([packet[6], packet[7]]) & 0x1FFF != 0 {
                return None;
            }
            let end = total.min(packet.len());
            let pseudo = sum(&packet[12..20]) + 6 + (end - ihl) as u32;
            Some((ihl, end, pseudo))
        }
        6 => {
            if packet.len() < 40 {
                return None;
            }
            let end =
                (40 + usize::from(u16::from_be_bytes([packet[4], packet[5]]))).min(packet.len());
            let (mut next, mut at) = (packet[6], 40);
            for _ in 0..8 {
                match next {
                    6 => {
                        if at > end {
                            return None;
                        }
                        let len = (end - at) as u32;
                        let pseudo = sum(&packet[8..40]) + (len >> 16) + (len & 0xFFFF) + 6;
                        return Some((at, end, pseudo));
                    }
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
        _ => None,
    }
}

/// Whether the TCP checksum verifies (the sum of pseudo-header and segment is all ones).
fn tcp_checksum_ok(packet: &[u8]) -> Option<bool> {
    let (start, end, pseudo) = tcp_segment(packet)?;
    if end - start < 20 {
        return None;
    }
    Some(fold(pseudo + sum(&packet[start..end])) == 0xFFFF)
}

/// Fills in the IPv4 header checksum and the TCP checksum.
fn fix_checksums(packet: &mut [u8]) {
    if packet.first().is_some_and(|b| b >> 4 == 4) && packet.len() >= 20 {
        let ihl = (usize::from(packet[0] & 0x0F) * 4).clamp(20, packet.len());
        packet[10..12].fill(0);
        let header_sum = !fold(sum(&packet[..ihl]));
        packet[10..12].copy_from_slice(&header_sum.to_be_bytes());
    }
    if let Some((start, end, pseudo)) = tcp_segment(packet)
        && end - start >= 20
    {
        packet[start + 16..start + 18].fill(0);
        let tcp_sum = !fold(pseudo + sum(&packet[start..end]));
        packet[start + 16..start + 18].copy_from_slice(&tcp_sum.to_be_bytes());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&[hi, lo, flags], packet)) = data.split_first_chunk::<3>() else {
        return;
    };
    let limit = u16::from_be_bytes([hi, lo]);
    assert!(mss_for_mtu_v4(limit) <= limit && mss_for_mtu_v6(limit) <= limit);
    let mut packet = packet.to_vec();
    if flags & 1 != 0 {
        fix_checksums(&mut packet);
    }
    let before = packet.clone();
    let valid_before = tcp_checksum_ok(&before) == Some(true);
    match clamp_mss(&mut packet, limit) {
        None => assert_eq!(packet, before, "left alone means untouched"),
        Some(old) => {
            assert!(old > limit, "MSS {old} raised or kept at limit {limit}");
            let changed: Vec<usize> = (0..packet.len())
                .filter(|&i| packet[i] != before[i])
                .collect();
            assert!(changed.len() <= 4, "changed bytes {changed:?}");
            // The MSS option that was there now says exactly the limit.
            let (start, end, _) = tcp_segment(&before).expect("a clamped packet is TCP");
            let option = (start + 20..end.saturating_sub(3)).find(|&i| {
                before[i..i + 4] == [2, 4, (old >> 8) as u8, old as u8]
                    && packet[i..i + 4] == [2, 4, hi, lo]
            });
            assert!(
                option.is_some(),
                "no MSS option rewritten from {old} to {limit}"
            );
            assert!(
                changed.iter().all(|&i| (start..end).contains(&i)),
                "outside the segment: {changed:?}"
            );
            if valid_before {
                assert_eq!(
                    tcp_checksum_ok(&packet),
                    Some(true),
                    "checksum broken by clamping"
                );
            }
            // Idempotent, and never raised: the same or a higher limit leaves it alone...
            let clamped = packet.clone();
            assert_eq!(clamp_mss(&mut packet, limit), None);
            assert_eq!(
                clamp_mss(&mut packet, limit.saturating_add(u16::from(flags))),
                None
            );
            assert_eq!(packet, clamped);
            // ...and a lower one finds the MSS at the limit.
            if let Some(lower) = limit.checked_sub(u16::from(flags >> 1).max(1)) {
                assert_eq!(clamp_mss(&mut packet, lower), Some(limit));
                if valid_before {
                    assert_eq!(tcp_checksum_ok(&packet), Some(true));
                }
            }
        }
    }
});
