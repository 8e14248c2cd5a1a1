//! Wireshark's dissectors read what we write: frames go through our encoder and decoder, into a
//! pcap, and tshark must decode every packet without a malformed-packet report.
//!
//! Skips, saying why, where tshark is not installed (`.ci/run` installs it).

use std::process::Command;
use std::time::Duration;

use ppp_frame::pcap::{Direction, LinkType, PcapWriter};
use ppp_frame::{AsyncDecoder, AsyncEncoder, DecoderConfig, EncoderConfig, Protocol};

/// An IPv4 header (with a correct checksum) and an ICMP echo request.
fn ipv4_ping() -> Vec<u8> {
    let mut packet = vec![
        0x45, 0x00, 0x00, 0x24, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, 192, 0, 2, 1, 192,
        0, 2, 2, // IPv4 192.0.2.1 -> 192.0.2.2
        0x08, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, // ICMP echo request id 1 seq 1
        b'p', b'p', b'p', b'-', b'f', b'r', b'a', b'm',
    ];
    let sum = checksum(&packet[..20]);
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
    let sum = checksum(&packet[20..]);
    packet[22..24].copy_from_slice(&sum.to_be_bytes());
    packet
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

#[test]
fn tshark_decodes_our_frames_without_malformed_packets() {
    if Command::new("tshark").arg("--version").output().is_err() {
        println!("skipped: tshark is not installed (apt-get install tshark)");
        return;
    }
    let frames: Vec<(Direction, Protocol, Vec<u8>)> = vec![
        // LCP Configure-Request: MRU 1500, magic 0x01020304 (the RFC 1662 golden frame).
        (
            Direction::Sent,
            Protocol::Lcp,
            vec![1, 1, 0, 14, 1, 4, 5, 0xDC, 5, 6, 1, 2, 3, 4],
        ),
        // LCP Configure-Ack of it.
        (
            Direction::Received,
            Protocol::Lcp,
            vec![2, 1, 0, 14, 1, 4, 5, 0xDC, 5, 6, 1, 2, 3, 4],
        ),
        // LCP Echo-Request with magic.
        (Direction::Sent, Protocol::Lcp, vec![9, 2, 0, 8, 1, 2, 3, 4]),
        // IPCP Configure-Request: IP-Address 192.0.2.1.
        (
            Direction::Sent,
            Protocol::Ipcp,
            vec![1, 1, 0, 10, 3, 6, 192, 0, 2, 1],
        ),
        // IPv4 ping, with bytes that need escaping in the stream.
        (Direction::Sent, Protocol::Ipv4, ipv4_ping()),
    ];
    let mut encoder = AsyncEncoder::new(EncoderConfig::default());
    let mut wire = Vec::new();
    for (_, protocol, payload) in &frames {
        encoder.encode(*protocol, payload, &mut wire);
    }
    let mut decoder = AsyncDecoder::new(DecoderConfig::default());
    let mut input = &wire[..];
    let mut pcap = PcapWriter::new(Vec::new(), LinkType::PppWithDirection).unwrap();
    let mut directions = frames.iter().map(|f| f.0);
    let mut count = 0;
    while let Some(result) = decoder.decode(&mut input) {
        let frame = result.expect("our own frames decode");
        let direction = directions.next().unwrap();
        pcap.write_ppp(
            Duration::from_millis(1_000 + count),
            direction,
            frame.protocol,
            frame.payload,
        )
        .unwrap();
        count += 1;
    }
    assert_eq!(count, frames.len() as u64);
    let dir = std::env::temp_dir().join(format!("ppp-frame-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("frames.pcap");
    std::fs::write(&path, pcap.into_inner()).unwrap();

    let output = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&path)
        .arg("-V")
        .output()
        .expect("tshark runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !text.contains("Malformed"),
        "tshark reports a malformed packet:\n{text}"
    );
    for expected in [
        "PPP Link Control Protocol",
        "Configuration Request",
        "Maximum Receive Unit: 1500",
        "Magic Number: 0x01020304",
        "Echo Request",
        "PPP IP Control Protocol",
        "192.0.2.1",
        "Internet Control Message Protocol",
        "Echo (ping) request",
    ] {
        assert!(
            text.contains(expected),
            "tshark output lacks {expected:?}:\n{text}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
