//! What each seed is for, checked on the seeds the generator makes and on the committed ones:
//! a seed that no longer parses, decrypts, brings the link up or gets its answer accepted has
//! gone stale.

use std::net::Ipv4Addr;

use ppp_auth::{AuthEvent, parse_chap_packet, parse_pap_packet};
use ppp_frame::{AsyncDecoder, DecoderConfig, FcsKind};
use ppp_lcp::{ControlPacket, validate_options};
use ppp_modem::{ChatScript, LineReader, ResponseLine, parse_response_line};
use ppp_mp::{MpHeader, SequenceFormat};
use ppp_radius::crypto::verify_response;
use ppp_radius::{ClientEvent, Packet, RateLimit, Secret, Verdict};
use ppp_tokio::icmp;
use ppp_tokio::offload::{Coalescer, Segments, VirtioNetHdr, segment};
use ppp_tokio::packet::{FilterVerdict, pppoe_filter};
use pppoe_discovery::mss::clamp_mss;
use pppoe_discovery::{AcEvent, DiscoveryRepr, MacAddr, decapsulate};

use crate::{
    auth_exchange, ccp_decompress, link_frames, mp_reassembly, pppoe_discovery_harness,
    radius_client,
};

/// Panics unless the seed `name` of `target` does what it is for.
pub fn check(target: &str, name: &str, bytes: &[u8]) {
    let what = format!("{target}/{name}");
    match target {
        "async_decoder" => assert!(async_frames(bytes) >= 1, "{what}: no frame decodes"),
        "frame_round_trip" => assert!(bytes.len() >= 7, "{what}: no header"),
        "control_packets" => assert!(
            ControlPacket::parse(bytes).is_ok() || validate_options(bytes).is_ok(),
            "{what}: neither a packet nor options"
        ),
        "auth_packets" => auth(&what, name, bytes),
        "link_frames" => {
            let (_, records, tail) = link_frames::parse(bytes).expect("a selector");
            assert!(
                !records.is_empty() && (tail.is_empty() || name.ends_with("raw-tail")),
                "{what}"
            );
            let phase = link_frames::run(bytes).unwrap().to_string();
            assert!(
                name.starts_with(&format!("{phase}-")),
                "{what}: ends in {phase}"
            );
        }
        "ccp_decompress" => {
            let datagrams = ccp_decompress::run(bytes);
            let packets = bytes[1..]
                .split(|&b| b == ccp_decompress::SEPARATOR)
                .count();
            assert!(!datagrams.is_empty(), "{what}: nothing decompressed");
            if name.ends_with("in-order") {
                assert_eq!(datagrams.len(), packets, "{what}");
            }
            if name.ends_with("key-change") {
                assert!(
                    datagrams.len() >= packets - 2,
                    "{what}: {} of {packets}",
                    datagrams.len()
                );
            }
        }
        "mp_reassembly" => {
            if let Some(format) = name.strip_prefix("header-") {
                let format = if format.starts_with("short") {
                    SequenceFormat::Short
                } else {
                    SequenceFormat::Long
                };
                assert!(
                    MpHeader::parse(format, bytes).is_ok(),
                    "{what}: not an MP header"
                );
            } else {
                let outcome = mp_reassembly::run_script(bytes);
                assert!(outcome.packets >= 1, "{what}: {outcome:?}");
            }
        }
        "pppoe_discovery" => {
            if name.starts_with("conversation-") {
                let other = MacAddr([2, 0, 0, 0, 0, 3]);
                let events = pppoe_discovery_harness::run(bytes);
                let ours = |e: &AcEvent| match e {
                    AcEvent::SessionUp { client_mac, .. } => (*client_mac == other, false),
                    AcEvent::SessionDown { client_mac, .. } => (false, *client_mac == other),
                    _ => (false, false),
                };
                let up = events.iter().any(|e| ours(e).0);
                let down = events.iter().any(|e| ours(e).1);
                assert!(up, "{what}: no session");
                assert_eq!(down, name.ends_with("padt"), "{what}");
            } else {
                assert!(
                    DiscoveryRepr::parse_bytes(bytes).is_ok() || decapsulate(bytes).is_ok(),
                    "{what}"
                );
            }
        }
        "bpf_filter" => {
            let (&pkttype, frame) = bytes.split_first().unwrap();
            let verdict = FilterVerdict::of(&pppoe_filter(), frame, u32::from(pkttype % 8));
            let pppoe = !name.starts_with("ipv4")
                && !name.starts_with("vlan")
                && !name.starts_with("truncated");
            assert_eq!(
                matches!(verdict, FilterVerdict::Accept(_)),
                pppoe && !name.ends_with("outgoing"),
                "{what}"
            );
        }
        "packet_ring_block" => {
            let (&mode, rest) = bytes.split_first().unwrap();
            let frames: Vec<&[u8]> = if mode % 2 == 0 {
                ppp_tokio::ring::block_frames(rest).collect()
            } else {
                rest.split(|&b| b == 0xA5).collect()
            };
            // Every frame of an unspoiled seed is a discovery frame; the others stay bounded.
            let whole =
                !name.contains("cut") && !name.contains("spoiled") && !name.contains("empty");
            if whole {
                assert!(!frames.is_empty(), "{what}");
                for frame in &frames {
                    assert!(DiscoveryRepr::parse_bytes(frame).is_ok(), "{what}");
                }
            } else {
                assert!(frames.len() <= rest.len() / 48, "{what}");
            }
        }
        "modem_responses" => modem(&what, name, bytes),
        "radius_packet" => {
            if name.starts_with("rate-limit-") {
                assert!(
                    std::str::from_utf8(bytes)
                        .unwrap()
                        .parse::<RateLimit>()
                        .is_ok(),
                    "{what}"
                );
            } else {
                assert!(Packet::parse(bytes).is_ok(), "{what}");
            }
            if name.starts_with("answer-") && !name.ends_with("accounting-response") {
                let verified = verify_response(bytes, &[7; 16], &Secret::from("fuzz"), true);
                assert_eq!(verified, Ok(()), "{what}");
            }
        }
        "radius_client" => {
            let (client, dae) = radius_client::run(bytes).unwrap();
            let access = client.iter().find_map(|e| match e {
                ClientEvent::Access { answer, .. } => Some(&answer.verdict),
                _ => None,
            });
            let accepted = matches!(access, Some(Verdict::Accept(_)));
            assert!(access.is_some(), "{what}: no access answer taken");
            assert_eq!(accepted, name.ends_with("accept"), "{what}");
            assert!(
                client
                    .iter()
                    .any(|e| matches!(e, ClientEvent::Accounted { .. })),
                "{what}"
            );
            // The DAE requests are signed already (selector bit 7 signs whatever the fuzzer
            // makes of them).
            assert!(!dae.is_empty(), "{what}: no DAE request taken");
        }
        "mss_clamp" => {
            let mut packet = bytes[3..].to_vec();
            let clamped = clamp_mss(&mut packet, 0).is_some();
            assert_eq!(clamped, name.starts_with("syn"), "{what}");
        }
        "icmp" => {
            let (us, packet) = (
                Ipv4Addr::new(bytes[1], bytes[2], bytes[3], bytes[4]),
                &bytes[5..],
            );
            if name.starts_with("reply-") {
                assert!(icmp::parse_echo_reply(packet).is_some(), "{what}");
            } else if name.starts_with("request-") && name.ends_with("-bytes") {
                assert!(icmp::echo_reply(packet, us).is_some(), "{what}");
            } else {
                assert!(packet.len() >= 20, "{what}");
            }
        }
        "vnet_offload" => {
            let mtu = u16::from_be_bytes([bytes[0], bytes[1]]);
            let (header, packet) = VirtioNetHdr::split(&bytes[3..]).expect("a header");
            let mut segments = Segments::new();
            let result = segment(&header, packet, mtu, &mut segments);
            if name.starts_with("refused-") {
                assert!(result.is_err(), "{what}: {result:?}");
            } else if name.starts_with("single-") {
                assert_eq!(result, Ok(1), "{what}");
            } else {
                let count = result.unwrap_or_else(|e| panic!("{what}: {e}"));
                let mut coalescer = Coalescer::new();
                for p in segments.iter() {
                    coalescer.push(p);
                }
                if name.ends_with("one-segment") {
                    assert_eq!(count, 1, "{what}");
                } else {
                    assert!(count >= 2, "{what}: {count} segments");
                    // Segments behind IPv6 extension headers are not merged.
                    if name.contains("hop-by-hop") {
                        assert_eq!(coalescer.len(), count, "{what}");
                    } else {
                        assert!(coalescer.len() < count, "{what}: nothing coalesced");
                    }
                }
            }
        }
        _ => panic!("{what}: no check for this target"),
    }
}

/// The frames that decode under the seed's own header (as the target reads it).
fn async_frames(bytes: &[u8]) -> usize {
    let Some((&[a, b, c, d, e, f], rest)) = bytes.split_first_chunk::<6>() else {
        return 0;
    };
    let fcs = [FcsKind::Fcs16, FcsKind::Fcs32, FcsKind::Null][usize::from(a % 3)];
    let accm = match b {
        0 => 0,
        1 => 0xFFFF_FFFF,
        _ => u32::from_le_bytes([b, c, d, e]),
    };
    let mut decoder = AsyncDecoder::new(DecoderConfig {
        accm,
        fcs,
        max_frame_len: usize::from(f) * 8,
    });
    let mut input = rest;
    let mut frames = 0;
    while let Some(result) = decoder.decode(&mut input) {
        frames += usize::from(result.is_ok());
    }
    frames
}

fn auth(what: &str, name: &str, bytes: &[u8]) {
    if name.starts_with("packet-") {
        assert!(
            parse_pap_packet(bytes).is_ok() || parse_chap_packet(bytes).is_ok(),
            "{what}"
        );
        return;
    }
    let (server, client) = auth_exchange::run(bytes).unwrap();
    let succeeded = |events: &[AuthEvent]| {
        events
            .iter()
            .any(|e| matches!(e, AuthEvent::Succeeded { .. }))
    };
    let failed = |events: &[AuthEvent]| events.iter().any(|e| matches!(e, AuthEvent::Failed(_)));
    let asked = server
        .iter()
        .any(|e| matches!(e, AuthEvent::SecretNeeded(_)));
    assert!(
        asked,
        "{what}: the authenticator never asked for the secret"
    );
    if name.ends_with("-success") {
        assert!(
            succeeded(&server) && succeeded(&client),
            "{what}: {server:?} {client:?}"
        );
    } else if name.ends_with("-failure") {
        assert!(failed(&server), "{what}: {server:?}");
    } else {
        assert!(!succeeded(&server) && !failed(&server), "{what}");
    }
}

fn modem(what: &str, name: &str, bytes: &[u8]) {
    if name.starts_with("chat-") {
        let parsed = ChatScript::parse(std::str::from_utf8(bytes).unwrap());
        assert!(parsed.is_ok(), "{what}: {parsed:?}");
        return;
    }
    if name.starts_with("line-") {
        assert!(!bytes.is_empty(), "{what}");
        return;
    }
    // A transcript: the line reader finds lines, and one of them is a final result.
    let mut reader = LineReader::new(256);
    let mut rest = bytes;
    let mut finals = 0;
    while !rest.is_empty() {
        let (used, line) = reader.feed(rest);
        if let Some(line) = line
            && matches!(parse_response_line(line.as_bytes()), ResponseLine::Final(_))
        {
            finals += 1;
        }
        if used == 0 {
            break;
        }
        rest = &rest[used..];
    }
    assert!(
        finals >= 1,
        "{what}: no final result in {:?}",
        String::from_utf8_lossy(bytes)
    );
}
