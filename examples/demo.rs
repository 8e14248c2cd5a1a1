//! The in-process demo: no hardware, no root.
//!
//! For now it shows the framing layer: frames go through the async HDLC encoder onto a simulated
//! serial line that delivers them in small, odd-sized chunks with some line noise, and the decoder
//! gives them back. `--pcap FILE` writes what was decoded for Wireshark.

use std::time::Duration;

use ppp_frame::pcap::{Direction, LinkType, PcapWriter};
use ppp_frame::{AsyncDecoder, AsyncEncoder, DecoderConfig, EncoderConfig, FcsKind, Protocol};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut pcap_path = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--pcap" => pcap_path = Some(args.next().ok_or("--pcap needs a file name")?),
            other => return Err(format!("unknown argument {other:?} (usage: demo [--pcap FILE])").into()),
        }
    }

    let frames: Vec<(Protocol, Vec<u8>)> = vec![
        (Protocol::Lcp, vec![1, 1, 0, 14, 1, 4, 5, 0xDC, 5, 6, 0x5D, 0x3C, 0x1A, 0x2B]),
        (Protocol::Lcp, vec![2, 1, 0, 14, 1, 4, 5, 0xDC, 5, 6, 0x5D, 0x3C, 0x1A, 0x2B]),
        (Protocol::Ipcp, vec![1, 1, 0, 10, 3, 6, 192, 0, 2, 1]),
        (Protocol::Ipv4, (0..=255u8).cycle().take(1400).collect()),
    ];

    for (label, accm, fcs) in [
        ("before negotiation (ACCM 0xffffffff, FCS-16)", 0xFFFF_FFFF, FcsKind::Fcs16),
        ("after negotiation (ACCM 0x0, FCS-32)", 0, FcsKind::Fcs32),
    ] {
        println!("framing {label}:");
        let mut encoder = AsyncEncoder::new(EncoderConfig { accm, fcs, ..EncoderConfig::default() });
        let mut wire = Vec::new();
        for (protocol, payload) in &frames {
            encoder.encode(*protocol, payload, &mut wire);
        }
        let payload_bytes: usize = frames.iter().map(|(_, p)| p.len()).sum();
        println!(
            "  encoded {} frames, {payload_bytes} payload bytes -> {} bytes on the line",
            frames.len(),
            wire.len()
        );
        // Line noise: an XON inserted by a modem (dropped while the receive ACCM covers it) and a
        // burst of garbage ending in a flag.
        let mut line = vec![0x11, 0x42, 0x42, 0x7E];
        line.extend_from_slice(&wire);
        let mut decoder = AsyncDecoder::new(DecoderConfig { accm, fcs, ..DecoderConfig::default() });
        let mut decoded = Vec::new();
        for chunk in line.chunks(7) {
            let mut input = chunk;
            while let Some(result) = decoder.decode(&mut input) {
                match result {
                    Ok(frame) => {
                        println!("  rcvd [{} {} bytes]", frame.protocol, frame.payload.len());
                        decoded.push((frame.protocol, frame.payload.to_vec()));
                    }
                    Err(error) => println!("  dropped a frame: {error}"),
                }
            }
        }
        assert_eq!(decoded, frames, "the decoder gives back what was encoded");
        let stats = decoder.stats();
        println!(
            "  decoder: {} frames, {} bytes, {} bad FCS, {} runts, {} control characters dropped",
            stats.frames, stats.bytes, stats.bad_fcs, stats.runts, stats.dropped_control_chars
        );
    }

    if let Some(path) = pcap_path {
        let file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let mut pcap = PcapWriter::new(file, LinkType::PppWithDirection)?;
        for (i, (protocol, payload)) in frames.iter().enumerate() {
            let direction = if i % 2 == 0 { Direction::Sent } else { Direction::Received };
            pcap.write_ppp(Duration::from_millis(i as u64), direction, *protocol, payload)?;
        }
        pcap.flush()?;
        println!("wrote {path}");
    }
    Ok(())
}
