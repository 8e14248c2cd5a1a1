//! Captures of our MP frames, dissected by tshark: no malformed packets, and tshark reads the
//! header fields (sequence numbers, B and E bits) as we wrote them, in both header formats.
//! Skips (with a message) when tshark is not installed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ppp_frame::Protocol;
use ppp_frame::pcap::{Direction, LinkType, PcapWriter};
use ppp_mp::{Bundle, BundleConfig, MemberLink, MpHeader, SequenceFormat};

/// An IPv4/UDP packet of `len` bytes with a correct header checksum (UDP checksum 0).
fn ipv4_udp(len: usize, id: u16) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&[192, 0, 2, 1]);
    p[16..20].copy_from_slice(&[198, 51, 100, 7]);
    let mut sum = 0u32;
    for pair in p[..20].chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p[20..22].copy_from_slice(&5000u16.to_be_bytes());
    p[22..24].copy_from_slice(&9u16.to_be_bytes());
    p[24..26].copy_from_slice(&((len - 20) as u16).to_be_bytes());
    for (i, byte) in p[28..].iter_mut().enumerate() {
        *byte = (i % 251) as u8;
    }
    p
}

fn tshark() -> Option<PathBuf> {
    let output = Command::new("tshark").arg("--version").output().ok()?;
    output.status.success().then(|| PathBuf::from("tshark"))
}

/// The datagrams captured: fragmented and whole ones.
const SIZES: [usize; 7] = [1400, 60, 1000, 200, 1500, 40, 576];

struct Written {
    headers: Vec<MpHeader>,
}

/// Sends IPv4 packets of several sizes over a two-member bundle, writes every frame to `path`
/// and checks the other end reassembles them.
fn write_capture(path: &Path, format: SequenceFormat, pfc: bool) -> Written {
    let mut config = BundleConfig::negotiated(
        1600,
        1600,
        format == SequenceFormat::Short,
        format == SequenceFormat::Short,
    );
    config.send.protocol_field_compression = pfc;
    config.send.initial_sequence = format.max_sequence() - 4;
    config.receive.initial_sequence = config.send.initial_sequence;
    let mut a = Bundle::new(config.clone());
    let mut b = Bundle::new(config);
    let link = MemberLink::new(600);
    let a_links = [a.add_link(link).unwrap(), a.add_link(link).unwrap()];
    let b_links = [b.add_link(link).unwrap(), b.add_link(link).unwrap()];
    let mut pcap = PcapWriter::new(Vec::new(), LinkType::Ppp).unwrap();
    let now = Instant::now();
    let mut headers = Vec::new();
    for (i, &size) in SIZES.iter().enumerate() {
        let datagram = ipv4_udp(size, i as u16);
        a.send(now, 0x0021, &datagram).unwrap();
        while let Some((member, frame)) = a.poll_transmit() {
            headers.push(MpHeader::parse(format, &frame).unwrap().0);
            let t =
                Duration::from_secs(1_700_000_000) + Duration::from_millis(headers.len() as u64);
            pcap.write_ppp(t, Direction::Sent, Protocol::Mp, &frame)
                .unwrap();
            let link = a_links.iter().position(|&m| m == member).unwrap();
            b.handle_input(now, b_links[link], &frame).unwrap();
        }
        let packet = b.poll_packet().expect("reassembled");
        assert_eq!(packet.information, datagram);
    }
    std::fs::write(path, pcap.into_inner()).unwrap();
    Written { headers }
}

fn tshark_output(tshark: &Path, path: &Path, format: SequenceFormat, extra: &[&str]) -> String {
    let mut command = Command::new(tshark);
    command.arg("-r").arg(path).args(extra);
    if format == SequenceFormat::Short {
        command.args(["-o", "mp.short_seqno:TRUE"]);
    }
    let output = command.output().expect("tshark runs");
    assert!(
        output.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn tshark_dissects_our_frames_in_both_formats() {
    let Some(tshark) = tshark() else {
        println!("skipped: tshark is not installed (apt-get install tshark)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("ppp-mp-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (format, pfc) in [(SequenceFormat::Long, false), (SequenceFormat::Short, true)] {
        let path = dir.join(format!("mp-{format:?}.pcap"));
        let written = write_capture(&path, format, pfc);

        let verbose = tshark_output(&tshark, &path, format, &["-V"]);
        assert!(
            !verbose.contains("Malformed"),
            "{format}: malformed:\n{verbose}"
        );
        assert!(
            !verbose.contains("Expert Info (Error"),
            "{format}:\n{verbose}"
        );
        assert!(
            !verbose.contains("Expert Info (Warn"),
            "{format}:\n{verbose}"
        );
        // Every packet was reassembled by Wireshark too and dissects as IPv4/UDP.
        let reassembled_ip = verbose
            .matches("[Protocols in frame: ppp:mp:ip:udp:data]")
            .count();
        assert_eq!(reassembled_ip, 7, "{format}:\n{verbose}");

        let fields = tshark_output(
            &tshark,
            &path,
            format,
            &[
                "-T",
                "fields",
                "-e",
                "mp.seq",
                "-e",
                "mp.sseq",
                "-e",
                "mp.first",
                "-e",
                "mp.last",
                "-e",
                "mp.reassembled.length",
            ],
        );
        let rows: Vec<Vec<&str>> = fields.lines().map(|l| l.split('\t').collect()).collect();
        assert_eq!(rows.len(), written.headers.len(), "{fields}");
        let flag = |s: &str| matches!(s, "1" | "True" | "TRUE");
        let mut reassembled_lengths = Vec::new();
        for (row, header) in rows.iter().zip(&written.headers) {
            let sequence = match format {
                SequenceFormat::Long => row[0],
                SequenceFormat::Short => row[1],
            };
            assert_eq!(sequence.parse::<u32>().unwrap(), header.sequence, "{row:?}");
            assert_eq!(flag(row[2]), header.begin, "{row:?}");
            assert_eq!(flag(row[3]), header.end, "{row:?}");
            if !row[4].is_empty() {
                reassembled_lengths.push(row[4].parse::<usize>().unwrap());
            }
        }
        // The sequence numbers wrapped inside the capture.
        assert!(
            written
                .headers
                .iter()
                .any(|h| h.sequence == format.max_sequence())
        );
        assert!(written.headers.iter().any(|h| h.sequence == 0));
        // Reassembled: the protocol field (1 byte with PFC) and the datagram.
        let protocol_field = if pfc { 1 } else { 2 };
        let expected: Vec<usize> = SIZES.iter().map(|s| s + protocol_field).collect();
        assert_eq!(reassembled_lengths, expected, "{format}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
