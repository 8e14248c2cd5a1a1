//! Hand-built IPv4 and IPv6 TCP packets through segmentation and coalescing; checksums checked
//! with a reference written apart from the module's (16-bit words, one at a time).

use super::*;

const SRC4: [u8; 4] = [192, 0, 2, 1];
const DST4: [u8; 4] = [198, 51, 100, 2];
const SRC6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const DST6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const RST: u8 = 0x04;
const SYN: u8 = 0x02;

/// The ones' complement sum of 16-bit words, folded after every addition.
fn reference_sum(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.concat();
    let mut sum: u32 = 0;
    for pair in bytes.chunks(2) {
        sum += u32::from(u16::from_be_bytes([
            pair[0],
            pair.get(1).copied().unwrap_or(0),
        ]));
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

/// Where TCP starts in a test packet (IPv4 with options, IPv6 with hop-by-hop/destination).
fn tcp_start(p: &[u8]) -> usize {
    if p[0] >> 4 == 4 {
        usize::from(p[0] & 0x0F) * 4
    } else {
        let (mut next, mut at) = (p[6], 40);
        while next != 6 {
            next = p[at];
            at += (usize::from(p[at + 1]) + 1) * 8;
        }
        at
    }
}

fn pseudo_header(p: &[u8], tcp_len: usize) -> Vec<u8> {
    if p[0] >> 4 == 4 {
        [&p[12..20], &[0, 6], &(tcp_len as u16).to_be_bytes()[..]].concat()
    } else {
        [
            &p[8..40],
            &(tcp_len as u32).to_be_bytes()[..],
            &[0, 0, 0, 6],
        ]
        .concat()
    }
}

/// Whether the packet's IPv4 header checksum (if IPv4) and TCP checksum verify.
fn checksums_ok(p: &[u8]) -> bool {
    let ip_ok = p[0] >> 4 == 6 || reference_sum(&[&p[..tcp_start(p)]]) == 0xFFFF;
    let tcp = &p[tcp_start(p)..];
    ip_ok && reference_sum(&[&pseudo_header(p, tcp.len()), tcp]) == 0xFFFF
}

/// A TCP packet with correct lengths and checksums.
#[derive(Clone)]
struct Tcp {
    v6: bool,
    src_port: u16,
    ip_options: Vec<u8>,
    id: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    options: Vec<u8>,
    data: Vec<u8>,
}

impl Default for Tcp {
    fn default() -> Tcp {
        Tcp {
            v6: false,
            src_port: 0x9c40,
            ip_options: Vec::new(),
            id: 0x1234,
            seq: 1000,
            ack: 77,
            flags: ACK,
            window: 502,
            options: Vec::new(),
            data: Vec::new(),
        }
    }
}

impl Tcp {
    fn build(&self) -> Vec<u8> {
        let mut tcp = self.src_port.to_be_bytes().to_vec();
        tcp.extend_from_slice(&[0x00, 0x50]);
        tcp.extend_from_slice(&self.seq.to_be_bytes());
        tcp.extend_from_slice(&self.ack.to_be_bytes());
        tcp.push((((20 + self.options.len()) / 4) << 4) as u8);
        tcp.push(self.flags);
        tcp.extend_from_slice(&self.window.to_be_bytes());
        tcp.extend_from_slice(&[0, 0, 0, 0]);
        tcp.extend_from_slice(&self.options);
        tcp.extend_from_slice(&self.data);
        let mut p = if self.v6 {
            let mut p = vec![0x60, 0, 0, 0];
            p.extend_from_slice(&((self.ip_options.len() + tcp.len()) as u16).to_be_bytes());
            p.push(if self.ip_options.is_empty() { 6 } else { 0 });
            p.push(64);
            p.extend_from_slice(&SRC6);
            p.extend_from_slice(&DST6);
            p
        } else {
            let header_len = 20 + self.ip_options.len();
            let mut p = vec![0x40 | (header_len / 4) as u8, 0];
            p.extend_from_slice(&((header_len + tcp.len()) as u16).to_be_bytes());
            p.extend_from_slice(&self.id.to_be_bytes());
            p.extend_from_slice(&[0x40, 0, 64, 6, 0, 0]);
            p.extend_from_slice(&SRC4);
            p.extend_from_slice(&DST4);
            p
        };
        p.extend_from_slice(&self.ip_options);
        if p[0] >> 4 == 4 {
            let header_len = p.len();
            let sum = !reference_sum(&[&p[..header_len]]);
            p[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        let start = p.len();
        p.extend_from_slice(&tcp);
        let sum = !reference_sum(&[&pseudo_header(&p, tcp.len()), &tcp]);
        p[start + 16..start + 18].copy_from_slice(&sum.to_be_bytes());
        p
    }
}

/// What the kernel leaves in the checksum field of a super-packet: the pseudo-header's sum.
fn with_partial_checksum(mut p: Vec<u8>) -> (VirtioNetHdr, Vec<u8>) {
    let start = tcp_start(&p);
    let len = p.len() - start;
    let partial = reference_sum(&[&pseudo_header(&p, len)]);
    p[start + 16..start + 18].copy_from_slice(&partial.to_be_bytes());
    let header = VirtioNetHdr {
        flags: VirtioNetHdr::NEEDS_CSUM,
        csum_start: start as u16,
        csum_offset: 16,
        ..VirtioNetHdr::default()
    };
    (header, p)
}

fn super_packet(tcp: &Tcp, gso_size: u16) -> (VirtioNetHdr, Vec<u8>) {
    let (mut header, p) = with_partial_checksum(tcp.build());
    header.gso_type = if tcp.v6 {
        GsoType::TcpV6
    } else {
        GsoType::TcpV4
    };
    header.gso_size = gso_size;
    header.hdr_len = (tcp_start(&p) + 20 + tcp.options.len()) as u16;
    (header, p)
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn field16(p: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([p[at], p[at + 1]])
}

fn field32(p: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]])
}

#[test]
fn header_golden_bytes_and_round_trip() {
    let bytes = [0x01, 0x81, 0x36, 0x00, 0xa8, 0x05, 0x14, 0x00, 0x10, 0x00];
    let header = VirtioNetHdr::parse(&bytes).unwrap();
    assert_eq!(
        header,
        VirtioNetHdr {
            flags: VirtioNetHdr::NEEDS_CSUM,
            gso_type: GsoType::TcpV4,
            ecn: true,
            hdr_len: 54,
            gso_size: 1448,
            csum_start: 20,
            csum_offset: 16,
        }
    );
    assert_eq!(header.to_bytes(), bytes);
    let mut buf = [0xEE; 12];
    header.emit(&mut buf).unwrap();
    assert_eq!(buf[..10], bytes);
    assert_eq!(buf[10..], [0xEE, 0xEE]);
    assert_eq!(
        header.emit(&mut [0; 9]),
        Err(OffloadError::ShortHeader { len: 9 })
    );
    assert_eq!(
        VirtioNetHdr::parse(&bytes[..3]),
        Err(OffloadError::ShortHeader { len: 3 })
    );
    let frame = [bytes.as_slice(), b"ip"].concat();
    let (split, rest) = VirtioNetHdr::split(&frame).unwrap();
    assert_eq!((split, rest), (header, b"ip".as_slice()));
    for code in 0..=255u8 {
        let mut bytes = [0u8; 10];
        bytes[1] = code;
        assert_eq!(VirtioNetHdr::parse(&bytes).unwrap().to_bytes(), bytes);
    }
    assert_eq!(GsoType::from_code(4), GsoType::TcpV6);
    assert_eq!(GsoType::from_code(0x42), GsoType::Unknown(0x42));
}

#[test]
fn ipv4_super_packet_is_cut_to_the_mtu() {
    let tcp = Tcp {
        flags: ACK | PSH | FIN | CWR,
        id: 0xFFFE,
        seq: 0xFFFF_F000,
        options: vec![1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], // timestamps
        data: data(4000),
        ..Tcp::default()
    };
    let (header, packet) = super_packet(&tcp, 1448);
    let mut out = Segments::new();
    // Headers 20 + 32: MTU 1492 holds 1440 bytes of data, less than gso_size.
    assert_eq!(segment(&header, &packet, 1492, &mut out), Ok(3));
    let sizes: Vec<usize> = out.iter().map(<[u8]>::len).collect();
    assert_eq!(sizes, [1492, 1492, 52 + 1120]);
    let mut rebuilt = Vec::new();
    for (i, p) in out.iter().enumerate() {
        assert!(checksums_ok(p), "segment {i}");
        assert_eq!(usize::from(field16(p, 2)), p.len());
        assert_eq!(field16(p, 4), 0xFFFEu16.wrapping_add(i as u16));
        assert_eq!(p[6], 0x40, "DF kept");
        assert_eq!(field32(p, 24), 0xFFFF_F000u32.wrapping_add(1440 * i as u32));
        let expected = match i {
            0 => ACK | CWR,
            1 => ACK,
            _ => ACK | PSH | FIN,
        };
        assert_eq!(p[33], expected, "flags of segment {i}");
        assert_eq!(p[40..52], tcp.options[..]);
        rebuilt.extend_from_slice(&p[52..]);
    }
    assert_eq!(rebuilt, tcp.data);
}

#[test]
fn ipv6_super_packet_behind_hop_by_hop_is_cut_by_gso_size() {
    let tcp = Tcp {
        v6: true,
        ip_options: vec![6, 0, 1, 4, 0, 0, 0, 0],
        flags: ACK | PSH,
        data: data(3001),
        ..Tcp::default()
    };
    let (header, packet) = super_packet(&tcp, 1000);
    let mut out = Segments::with_headroom(22);
    assert_eq!(segment(&header, &packet, 1492, &mut out), Ok(4));
    let mut rebuilt = Vec::new();
    for (i, p) in out.iter().enumerate() {
        assert!(checksums_ok(p), "segment {i}");
        assert_eq!(usize::from(field16(p, 4)), p.len() - 40);
        assert_eq!(p[..4], [0x60, 0, 0, 0]);
        assert_eq!(p[40..48], tcp.ip_options[..]);
        assert_eq!(field32(p, 48 + 4), 1000 + 1000 * i as u32);
        assert_eq!(p[48 + 13], if i == 3 { ACK | PSH } else { ACK });
        rebuilt.extend_from_slice(&p[68..]);
    }
    assert_eq!(rebuilt, tcp.data);
    assert_eq!(out.get(3).map(<[u8]>::len), Some(68 + 1));
    // The headroom is there, zeroed, before each packet.
    let frame = out.get_with_headroom_mut(1).unwrap();
    assert_eq!(frame.len(), 22 + 68 + 1000);
    assert_eq!(frame[..22], [0; 22]);
    assert_eq!(out.headroom(), 22);
    out.clear();
    assert!(out.is_empty() && out.get(0).is_none());
}

#[test]
fn ipv4_options_are_copied_into_every_segment() {
    let tcp = Tcp {
        ip_options: vec![1, 1, 1, 0], // NOP, NOP, NOP, EOL
        data: data(100),
        ..Tcp::default()
    };
    let (header, packet) = super_packet(&tcp, 30);
    let mut out = Segments::new();
    assert_eq!(segment(&header, &packet, 1500, &mut out), Ok(4));
    for p in out.iter() {
        assert_eq!(p[0], 0x46);
        assert_eq!(p[20..24], [1, 1, 1, 0]);
        assert!(checksums_ok(p));
    }
}

#[test]
fn a_super_packet_without_data_is_one_segment() {
    let (header, packet) = super_packet(&Tcp::default(), 1448);
    let mut out = Segments::new();
    assert_eq!(segment(&header, &packet, 1492, &mut out), Ok(1));
    assert_eq!(out.get(0), Some(Tcp::default().build().as_slice()));
}

#[test]
fn partial_checksums_of_single_packets_are_finished() {
    // TCP: the kernel's partial checksum becomes the full one.
    let complete = Tcp {
        data: data(333),
        ..Tcp::default()
    }
    .build();
    let (header, partial) = with_partial_checksum(complete.clone());
    let mut out = Segments::new();
    assert_eq!(segment(&header, &partial, 1492, &mut out), Ok(1));
    assert_eq!(out.get(0), Some(complete.as_slice()));
    // UDP over IPv6: checksum at 40 + 6.
    let mut udp = vec![0x60, 0, 0, 0, 0, 13, 17, 64];
    udp.extend_from_slice(&SRC6);
    udp.extend_from_slice(&DST6);
    udp.extend_from_slice(&[
        0x13, 0x88, 0x00, 0x35, 0, 13, 0, 0, b'h', b'e', b'l', b'l', b'o',
    ]);
    let pseudo = [&udp[8..40], &[0, 0, 0, 13, 0, 0, 0, 17]].concat();
    let partial = reference_sum(&[&pseudo]);
    udp[46..48].copy_from_slice(&partial.to_be_bytes());
    let header = VirtioNetHdr {
        flags: VirtioNetHdr::NEEDS_CSUM,
        csum_start: 40,
        csum_offset: 6,
        ..VirtioNetHdr::default()
    };
    out.clear();
    assert_eq!(segment(&header, &udp, 1492, &mut out), Ok(1));
    let p = out.get(0).unwrap();
    assert_eq!(reference_sum(&[&pseudo, &p[40..]]), 0xFFFF);
    // Without NEEDS_CSUM the packet goes as it is, whatever it is.
    out.clear();
    let header = VirtioNetHdr::default();
    assert_eq!(segment(&header, b"not even IP", 1492, &mut out), Ok(1));
    assert_eq!(out.get(0), Some(b"not even IP".as_slice()));
}

#[test]
fn errors_leave_the_output_as_it_was() {
    let (header, packet) = super_packet(
        &Tcp {
            data: data(3000),
            ..Tcp::default()
        },
        1448,
    );
    let mut out = Segments::with_headroom(4);
    segment(&VirtioNetHdr::default(), &[0x45; 20], 1500, &mut out).unwrap();
    let before: Vec<Vec<u8>> = out.iter().map(<[u8]>::to_vec).collect();
    let v6 = VirtioNetHdr {
        gso_type: GsoType::TcpV6,
        ..header
    };
    let cases = [
        (
            v6,
            packet.clone(),
            1500,
            OffloadError::GsoMismatch {
                gso_type: GsoType::TcpV6,
                version: 4,
            },
        ),
        (
            VirtioNetHdr {
                gso_size: 0,
                ..header
            },
            packet.clone(),
            1500,
            OffloadError::ZeroSegmentSize,
        ),
        (
            header,
            packet.clone(),
            40,
            OffloadError::MtuTooSmall {
                mtu: 40,
                headers: 40,
            },
        ),
        (
            VirtioNetHdr {
                gso_type: GsoType::Udp,
                ..header
            },
            packet.clone(),
            1500,
            OffloadError::UnsupportedGso(GsoType::Udp),
        ),
        (
            VirtioNetHdr {
                gso_type: GsoType::UdpL4,
                ..header
            },
            packet.clone(),
            1500,
            OffloadError::NotUdp,
        ),
        (
            VirtioNetHdr::default(),
            packet.clone(),
            1500,
            OffloadError::TooBig {
                len: packet.len(),
                mtu: 1500,
            },
        ),
        (
            VirtioNetHdr {
                flags: VirtioNetHdr::NEEDS_CSUM,
                csum_start: 30,
                csum_offset: 16,
                ..VirtioNetHdr::default()
            },
            packet[..47].to_vec(),
            1500,
            OffloadError::ChecksumOutOfRange {
                start: 30,
                offset: 16,
                len: 47,
            },
        ),
        (
            header,
            packet[..1000].to_vec(),
            1500,
            OffloadError::Malformed,
        ),
        (header, vec![0x20; 60], 1500, OffloadError::NotIp),
        (header, Vec::new(), 1500, OffloadError::NotIp),
    ];
    for (header, packet, mtu, error) in cases {
        assert_eq!(segment(&header, &packet, mtu, &mut out), Err(error));
        let after: Vec<Vec<u8>> = out.iter().map(<[u8]>::to_vec).collect();
        assert_eq!(after, before, "{error}");
    }
    let mut fragment = packet.clone();
    fragment[6] |= 0x20; // more fragments
    assert_eq!(
        segment(&header, &fragment, 1500, &mut out),
        Err(OffloadError::Fragment)
    );
    let mut udp = packet.clone();
    udp[9] = 17;
    assert_eq!(
        segment(&header, &udp, 1500, &mut out),
        Err(OffloadError::NotTcp)
    );
}

/// The segments of a super-packet of `len` bytes of data in `segment_size` steps.
fn segments_of(tcp: &Tcp, gso_size: u16, mtu: u16) -> Vec<Vec<u8>> {
    let (header, packet) = super_packet(tcp, gso_size);
    let mut out = Segments::new();
    segment(&header, &packet, mtu, &mut out).unwrap();
    out.iter().map(<[u8]>::to_vec).collect()
}

fn coalesce(packets: &[Vec<u8>]) -> Vec<(VirtioNetHdr, Vec<u8>)> {
    frames_of(Coalescer::new(), packets)
}

/// What `coalescer` makes of `packets`: each frame's header and packet.
fn frames_of(mut coalescer: Coalescer, packets: &[Vec<u8>]) -> Vec<(VirtioNetHdr, Vec<u8>)> {
    for p in packets {
        coalescer.push(p);
    }
    coalescer
        .frames()
        .map(|frame| {
            let (header, packet) = VirtioNetHdr::split(frame).unwrap();
            (header, packet.to_vec())
        })
        .collect()
}

#[test]
fn in_sequence_segments_become_the_super_packet_again() {
    for v6 in [false, true] {
        let tcp = Tcp {
            v6,
            flags: ACK | PSH,
            options: vec![1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2],
            data: data(5000),
            ..Tcp::default()
        };
        let segments = segments_of(&tcp, 1400, 1492);
        assert_eq!(segments.len(), 4);
        let frames = coalesce(&segments);
        assert_eq!(frames.len(), 1);
        let (header, packet) = &frames[0];
        let (expected_header, expected) = super_packet(&tcp, 1400);
        assert_eq!(*header, expected_header);
        assert_eq!(*packet, expected, "v6 {v6}");
    }
}

#[test]
fn what_cannot_be_merged_passes_unchanged() {
    let base = Tcp {
        data: data(100),
        ..Tcp::default()
    };
    let next = |tcp: &Tcp| Tcp {
        seq: tcp.seq + tcp.data.len() as u32,
        id: tcp.id.wrapping_add(1),
        ..tcp.clone()
    };
    let second = next(&base);
    let mut bad_checksum = second.build();
    let last = bad_checksum.len() - 1;
    bad_checksum[last] ^= 1;
    let mut with_trailer = second.build();
    with_trailer.push(0);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "gap in sequence",
            Tcp {
                seq: 5000,
                ..next(&base)
            }
            .build(),
        ),
        (
            "identifier not next",
            Tcp {
                id: 9,
                ..next(&base)
            }
            .build(),
        ),
        (
            "other ack",
            Tcp {
                ack: 78,
                ..next(&base)
            }
            .build(),
        ),
        ("bad checksum", bad_checksum),
        ("trailing byte", with_trailer),
        (
            "more data than the first",
            Tcp {
                data: data(101),
                ..next(&base)
            }
            .build(),
        ),
        (
            "FIN",
            Tcp {
                flags: ACK | FIN,
                ..next(&base)
            }
            .build(),
        ),
        (
            "RST",
            Tcp {
                flags: ACK | RST,
                ..next(&base)
            }
            .build(),
        ),
        (
            "no data",
            Tcp {
                data: Vec::new(),
                ..next(&base)
            }
            .build(),
        ),
        (
            "other options",
            Tcp {
                options: vec![1, 1, 1, 1],
                ..next(&base)
            }
            .build(),
        ),
        (
            "ip options",
            Tcp {
                ip_options: vec![1, 1, 1, 0],
                ..next(&base)
            }
            .build(),
        ),
        (
            "v6",
            Tcp {
                v6: true,
                ..next(&base)
            }
            .build(),
        ),
    ];
    for (what, packet) in cases {
        let frames = coalesce(&[base.build(), packet.clone()]);
        assert_eq!(frames.len(), 2, "{what}");
        assert_eq!(frames[0], (VirtioNetHdr::default(), base.build()), "{what}");
        assert_eq!(frames[1], (VirtioNetHdr::default(), packet), "{what}");
    }
    // A pure ACK of the flow ends its super-packet: later data does not jump ahead of it.
    let ack = Tcp {
        data: Vec::new(),
        ..next(&base)
    }
    .build();
    let frames = coalesce(&[base.build(), ack, second.build()]);
    assert_eq!(frames.len(), 3);
    // UDP and garbage pass too.
    let frames = coalesce(&[vec![], vec![0x45], b"garbage".to_vec()]);
    assert_eq!(frames.len(), 3);
    assert!(frames.iter().all(|(h, _)| *h == VirtioNetHdr::default()));
}

#[test]
fn psh_and_short_segments_end_a_super_packet_and_flows_interleave() {
    let a = segments_of(
        &Tcp {
            flags: ACK | PSH,
            data: data(3000),
            ..Tcp::default()
        },
        1000,
        1500,
    );
    let b = segments_of(
        &Tcp {
            v6: true,
            data: data(2500),
            ..Tcp::default()
        },
        1000,
        1500,
    );
    // a0 b0 a1 b1 a2 b2: two super-packets, in the order their first segments came.
    let interleaved = vec![
        a[0].clone(),
        b[0].clone(),
        a[1].clone(),
        b[1].clone(),
        a[2].clone(),
        b[2].clone(),
    ];
    let frames = coalesce(&interleaved);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].0.gso_type, GsoType::TcpV4);
    assert_eq!(frames[0].1.len(), 40 + 3000);
    assert_eq!(frames[1].0.gso_type, GsoType::TcpV6);
    assert_eq!(frames[1].1.len(), 60 + 2500);
    // After the PSH (a2) and the short segment (b2), the flows start anew.
    let mut more = a.clone();
    let mut after_psh = Tcp {
        seq: 4000,
        id: 0x1234 + 3,
        data: data(1000),
        ..Tcp::default()
    };
    more.push(after_psh.build());
    after_psh.seq += 1000;
    after_psh.id += 1;
    more.push(after_psh.build());
    let frames = coalesce(&more);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1].1.len(), 40 + 2000);
}

#[test]
fn super_packets_stop_at_64_kib() {
    let segments = segments_of(
        &Tcp {
            data: data(65_535 - 40),
            ..Tcp::default()
        },
        1000,
        1500,
    );
    let mut more = segments.clone();
    more.extend(segments_of(
        &Tcp {
            seq: 1000 + 65_535 - 40,
            id: 0x1234 + 66,
            data: data(3000),
            ..Tcp::default()
        },
        1000,
        1500,
    ));
    // The first super-packet is short at its end, so the next starts anew anyway; make the
    // data a multiple of the segment size to test the limit itself.
    let frames = coalesce(&more);
    assert!(frames.iter().all(|(_, p)| p.len() <= MAX_PACKET_LEN));
    let full = segments_of(
        &Tcp {
            data: data(65_000),
            ..Tcp::default()
        },
        1000,
        1500,
    );
    let mut twice = full.clone();
    twice.extend(segments_of(
        &Tcp {
            seq: 1000 + 65_000,
            id: 0x1234 + 65,
            data: data(1000),
            ..Tcp::default()
        },
        1000,
        1500,
    ));
    let frames = coalesce(&twice);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].1.len(), 40 + 65_000);
    assert_eq!(frames[1].1.len(), 40 + 1000);
    assert_eq!(frames[1].0, VirtioNetHdr::default());
}

#[test]
fn frames_are_reused_after_clear() {
    let segments = segments_of(
        &Tcp {
            data: data(3000),
            ..Tcp::default()
        },
        1000,
        1500,
    );
    let mut coalescer = Coalescer::new();
    for p in &segments {
        coalescer.push(p);
    }
    assert_eq!(coalescer.len(), 1);
    coalescer.clear();
    assert!(coalescer.is_empty());
    let capacity = coalescer.frames[0].capacity();
    for p in &segments {
        coalescer.push(p);
    }
    assert_eq!(coalescer.frames.len(), 1);
    assert_eq!(coalescer.frames[0].capacity(), capacity);
    assert_eq!(coalescer.frames().next().map(<[u8]>::len), Some(10 + 3040));
}

#[test]
fn syn_mss_is_clamped_for_the_mtu() {
    for (v6, expected) in [(false, 1452u16), (true, 1432)] {
        let syn = Tcp {
            v6,
            flags: SYN,
            options: vec![2, 4, 0x05, 0xb4],
            ..Tcp::default()
        };
        let mut p = syn.build();
        assert_eq!(clamp_syn_mss(&mut p, 1492), Some(1460));
        let at = tcp_start(&p) + 22;
        assert_eq!(field16(&p, at), expected);
        assert!(checksums_ok(&p));
        assert_eq!(clamp_syn_mss(&mut p, 1492), None);
    }
    assert_eq!(clamp_syn_mss(&mut [], 1492), None);
    assert_eq!(clamp_syn_mss(&mut [0x10; 40], 1492), None);
}

#[test]
fn a_syn_with_a_partial_checksum_is_finished_then_clamped() {
    let syn = Tcp {
        flags: SYN,
        options: vec![2, 4, 0x23, 0x28], // MSS 9000
        ..Tcp::default()
    };
    let (header, partial) = with_partial_checksum(syn.build());
    let mut out = Segments::with_headroom(22);
    segment(&header, &partial, 1492, &mut out).unwrap();
    let frame = out.get_with_headroom_mut(0).unwrap();
    assert_eq!(clamp_syn_mss(&mut frame[22..], 1492), Some(9000));
    let p = out.get(0).unwrap();
    assert_eq!(field16(p, 42), 1452);
    assert!(checksums_ok(p));
}

#[test]
fn many_flows_at_once_each_keep_their_order() {
    // Flows that differ by their source port, four segments each, round robin: eight are
    // extended at once; twelve take turns evicting each other and nothing merges, but no flow's
    // order is ever changed.
    for (count, merged) in [(8u16, true), (12, false)] {
        let flows: Vec<Vec<Vec<u8>>> = (0..count)
            .map(|n| {
                segments_of(
                    &Tcp {
                        src_port: 1000 + n,
                        seq: u32::from(n) * 100_000,
                        data: data(4000),
                        ..Tcp::default()
                    },
                    1000,
                    1500,
                )
            })
            .collect();
        let round_robin: Vec<Vec<u8>> = (0..4)
            .flat_map(|i| flows.iter().map(move |f| f[i].clone()))
            .collect();
        let frames = coalesce(&round_robin);
        let expected = if merged {
            flows.len()
        } else {
            round_robin.len()
        };
        assert_eq!(frames.len(), expected, "{count} flows");
        // Segmenting every frame again gives each flow's segments in their order.
        for (n, flow) in flows.iter().enumerate() {
            let mut again = Segments::new();
            for (header, packet) in &frames {
                if field16(packet, 20) == 1000 + n as u16 {
                    segment(header, packet, 1500, &mut again).unwrap();
                }
            }
            let again: Vec<Vec<u8>> = again.iter().map(<[u8]>::to_vec).collect();
            assert_eq!(&again, flow, "flow {n} of {count}");
        }
    }
}

#[test]
fn a_checksum_that_sums_to_zero_is_sent_as_all_ones() {
    // UDP over IPv4 whose checksum computes to 0: sent as 0xFFFF (RFC 768).
    let mut udp = vec![0x45, 0, 0, 30, 0, 0, 0, 0, 64, 17, 0, 0];
    udp.extend_from_slice(&SRC4);
    udp.extend_from_slice(&DST4);
    udp.extend_from_slice(&[0, 1, 0, 2, 0, 10, 0, 0, 0, 0]);
    let pseudo = [&udp[12..20], &[0, 17, 0, 10]].concat();
    // Choose the last data word so that the whole sum is 0xFFFF (checksum 0).
    let rest = reference_sum(&[&pseudo, &udp[20..]]);
    udp[28..30].copy_from_slice(&(0xFFFF - rest).to_be_bytes());
    assert_eq!(reference_sum(&[&pseudo, &udp[20..]]), 0xFFFF);
    let header = VirtioNetHdr {
        flags: VirtioNetHdr::NEEDS_CSUM,
        csum_start: 20,
        csum_offset: 6,
        ..VirtioNetHdr::default()
    };
    // The field holds the pseudo-header's sum, as the kernel leaves it.
    let partial = reference_sum(&[&pseudo]);
    udp[26..28].copy_from_slice(&partial.to_be_bytes());
    let mut out = Segments::new();
    segment(&header, &udp, 1500, &mut out).unwrap();
    assert_eq!(field16(out.get(0).unwrap(), 26), 0xFFFF);
}

proptest::proptest! {
    /// Any payload, MSS, MTU and TCP options: every segment fits the MTU with right checksums,
    /// and coalescing them gives back the super-packet, header and all.
    #[test]
    fn segment_then_coalesce_round_trips(
        v6: bool,
        len in 0usize..66_000,
        gso_size in 1u16..9000,
        mtu in 100u16..9000,
        option_words in 0usize..10,
        push: bool,
        seq: u32,
        id: u16,
        seed: u8,
    ) {
        let headers = if v6 { 60 } else { 40 } + option_words * 4;
        let len = len.min(MAX_PACKET_LEN - headers);
        let tcp = Tcp {
            v6,
            seq,
            id,
            flags: if push { ACK | PSH } else { ACK },
            options: vec![1; option_words * 4],
            data: (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect(),
            ..Tcp::default()
        };
        let (header, packet) = super_packet(&tcp, gso_size);
        let mut out = Segments::new();
        let count = segment(&header, &packet, mtu, &mut out).unwrap();
        let segment_size = usize::from(gso_size).min(usize::from(mtu) - headers);
        proptest::prop_assert_eq!(count, len.div_ceil(segment_size).max(1));
        for p in out.iter() {
            proptest::prop_assert!(p.len() <= usize::from(mtu));
            proptest::prop_assert!(checksums_ok(p));
        }
        let mut coalescer = Coalescer::new();
        for p in out.iter() {
            coalescer.push(p);
        }
        proptest::prop_assert_eq!(coalescer.len(), 1);
        let (merged_header, merged) = VirtioNetHdr::split(coalescer.frames().next().unwrap()).unwrap();
        if count == 1 {
            // A lone segment passes as it is, checksum complete.
            proptest::prop_assert_eq!(merged_header, VirtioNetHdr::default());
            let complete = tcp.build();
            proptest::prop_assert_eq!(merged, complete.as_slice());
        } else {
            proptest::prop_assert_eq!(merged, packet.as_slice());
            proptest::prop_assert_eq!(merged_header, VirtioNetHdr {
                gso_size: segment_size as u16,
                hdr_len: headers as u16,
                ..header
            });
        }
    }

    /// Arbitrary headers and bytes: no panic, and what comes out is bounded.
    #[test]
    fn arbitrary_input_never_panics(
        header in proptest::array::uniform10(proptest::prelude::any::<u8>()),
        packet in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        mtu: u16,
    ) {
        let header = VirtioNetHdr::parse(&header).unwrap();
        let mut out = Segments::new();
        if segment(&header, &packet, mtu, &mut out).is_ok() {
            proptest::prop_assert!(out.iter().all(|p| p.len() <= usize::from(mtu)));
        }
        let mut coalescer = Coalescer::new();
        coalescer.push(&packet);
        for p in out.iter() {
            coalescer.push(p);
        }
        proptest::prop_assert!(coalescer.len() <= out.len() + 1);
    }
}

/// A UDP datagram with correct lengths and checksums (IPv4 with DF, or IPv6).
#[derive(Clone)]
struct Udp {
    v6: bool,
    src_port: u16,
    id: u16,
    ttl: u8,
    data: Vec<u8>,
}

impl Default for Udp {
    fn default() -> Udp {
        Udp {
            v6: false,
            src_port: 0x9c41,
            id: 0x2000,
            ttl: 64,
            data: data(64),
        }
    }
}

impl Udp {
    fn build(&self) -> Vec<u8> {
        let udp_len = 8 + self.data.len();
        let mut p = if self.v6 {
            let mut p = vec![0x60, 0, 0, 0];
            p.extend_from_slice(&(udp_len as u16).to_be_bytes());
            p.extend_from_slice(&[17, self.ttl]);
            p.extend_from_slice(&SRC6);
            p.extend_from_slice(&DST6);
            p
        } else {
            let mut p = vec![0x45, 0];
            p.extend_from_slice(&((20 + udp_len) as u16).to_be_bytes());
            p.extend_from_slice(&self.id.to_be_bytes());
            p.extend_from_slice(&[0x40, 0, self.ttl, 17, 0, 0]);
            p.extend_from_slice(&SRC4);
            p.extend_from_slice(&DST4);
            let sum = !reference_sum(&[&p]);
            p[10..12].copy_from_slice(&sum.to_be_bytes());
            p
        };
        let start = p.len();
        p.extend_from_slice(&self.src_port.to_be_bytes());
        p.extend_from_slice(&5201u16.to_be_bytes());
        p.extend_from_slice(&(udp_len as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(&self.data);
        let pseudo = udp_pseudo_header(&p, udp_len);
        let sum = match !reference_sum(&[&pseudo, &p[start..]]) {
            0 => 0xFFFF,
            sum => sum,
        };
        p[start + 6..start + 8].copy_from_slice(&sum.to_be_bytes());
        p
    }
}

fn udp_pseudo_header(p: &[u8], udp_len: usize) -> Vec<u8> {
    if p[0] >> 4 == 4 {
        [&p[12..20], &[0, 17], &(udp_len as u16).to_be_bytes()[..]].concat()
    } else {
        [
            &p[8..40],
            &(udp_len as u32).to_be_bytes()[..],
            &[0, 0, 0, 17],
        ]
        .concat()
    }
}

/// The datagrams of one flow: `count` of `size` bytes of data, then one of `last` bytes (if not
/// 0), IPv4 identifiers counting up.
fn datagrams(v6: bool, count: usize, size: usize, last: usize) -> Vec<Vec<u8>> {
    let sizes = std::iter::repeat_n(size, count).chain((last > 0).then_some(last));
    sizes
        .enumerate()
        .map(|(i, len)| {
            Udp {
                v6,
                id: 0x2000 + i as u16,
                data: data(len + i).split_off(i),
                ..Udp::default()
            }
            .build()
        })
        .collect()
}

fn coalesce_udp(packets: &[Vec<u8>]) -> Vec<(VirtioNetHdr, Vec<u8>)> {
    frames_of(Coalescer::with_udp(true), packets)
}

#[test]
fn udp_datagrams_of_a_flow_become_one_super_packet_and_are_cut_back_the_same() {
    for v6 in [false, true] {
        let sent = datagrams(v6, 9, 64, 20);
        let frames = coalesce_udp(&sent);
        assert_eq!(frames.len(), 1, "v6 {v6}");
        let (header, packet) = &frames[0];
        let ip = if v6 { 40 } else { 20 };
        assert_eq!(
            *header,
            VirtioNetHdr {
                flags: VirtioNetHdr::NEEDS_CSUM,
                gso_type: GsoType::UdpL4,
                ecn: false,
                hdr_len: ip as u16 + 8,
                gso_size: 64,
                csum_start: ip as u16,
                csum_offset: 6,
            }
        );
        assert_eq!(packet.len(), ip + 8 + 9 * 64 + 20);
        assert_eq!(usize::from(field16(packet, ip + 4)), packet.len() - ip);
        // The checksum field holds the pseudo-header's sum (not complemented), as the kernel
        // expects of a partial checksum.
        let partial = reference_sum(&[&udp_pseudo_header(packet, packet.len() - ip)]);
        assert_eq!(field16(packet, ip + 6), partial);
        if !v6 {
            assert_eq!(
                reference_sum(&[&packet[..20]]),
                0xFFFF,
                "IPv4 header checksum"
            );
            assert_eq!(
                field16(packet, 4),
                0x2000,
                "the first datagram's identifier"
            );
        }
        let mut out = Segments::new();
        assert_eq!(segment(header, packet, 1500, &mut out), Ok(10));
        let back: Vec<Vec<u8>> = out.iter().map(<[u8]>::to_vec).collect();
        assert_eq!(back, sent, "v6 {v6}: cut back into the same datagrams");
    }
}

#[test]
fn udp_is_merged_only_when_asked_and_only_what_may_be() {
    let sent = datagrams(false, 4, 64, 0);
    assert_eq!(coalesce(&sent).len(), 4, "Coalescer::new leaves UDP alone");
    let mut gap = sent.clone();
    gap[2] = Udp {
        id: 0x2005,
        ..Udp::default()
    }
    .build();
    let mut ttl = sent.clone();
    ttl[2] = Udp {
        id: 0x2002,
        ttl: 63,
        ..Udp::default()
    }
    .build();
    let mut other_port = sent.clone();
    other_port[2] = Udp {
        id: 0x2002,
        src_port: 1,
        ..Udp::default()
    }
    .build();
    let mut no_checksum = sent.clone();
    no_checksum[2][26..28].fill(0);
    let mut bad_checksum = sent.clone();
    bad_checksum[2][30] ^= 1;
    let mut longer = sent.clone();
    longer[2] = Udp {
        id: 0x2002,
        data: data(65),
        ..Udp::default()
    }
    .build();
    for (name, packets, frames) in [
        ("identifiers with a gap", gap, 3),
        ("another TTL", ttl, 3),
        ("another source port", other_port, 3),
        ("no checksum", no_checksum, 3),
        ("a wrong checksum", bad_checksum, 3),
        ("a longer datagram", longer, 2),
    ] {
        let out = coalesce_udp(&packets);
        assert_eq!(out.len(), frames, "{name}");
        // Whatever was not merged went as it came, and the flow's order held.
        let mut all = Vec::new();
        for (header, packet) in &out {
            let mut cut = Segments::new();
            segment(header, packet, 1500, &mut cut).unwrap();
            all.extend(cut.iter().map(<[u8]>::to_vec));
        }
        assert_eq!(all, packets, "{name}");
    }
}

#[test]
fn udp_super_packets_stop_at_64_datagrams_and_a_shorter_one_ends_them() {
    let sent = datagrams(false, 130, 16, 0);
    let frames = coalesce_udp(&sent);
    let counts: Vec<usize> = frames
        .iter()
        .map(|(header, packet)| match header.gso_type {
            GsoType::UdpL4 => (packet.len() - 28).div_ceil(16),
            _ => 1,
        })
        .collect();
    assert_eq!(counts, vec![MAX_UDP_SEGMENTS, MAX_UDP_SEGMENTS, 2]);
    let mut short_then_more = datagrams(false, 3, 64, 10);
    short_then_more.push(
        Udp {
            id: 0x2004,
            ..Udp::default()
        }
        .build(),
    );
    assert_eq!(coalesce_udp(&short_then_more).len(), 2);
}

#[test]
fn tcp_and_udp_flows_between_the_same_ports_stay_apart() {
    let udp = datagrams(false, 3, 64, 0);
    let tcp = Tcp {
        src_port: Udp::default().src_port,
        data: data(64),
        ..Tcp::default()
    };
    let mut packets = vec![udp[0].clone(), tcp.build(), udp[1].clone()];
    packets.push(
        Tcp {
            seq: tcp.seq + 64,
            id: tcp.id + 1,
            ..tcp.clone()
        }
        .build(),
    );
    packets.push(udp[2].clone());
    let frames = coalesce_udp(&packets);
    let kinds: Vec<GsoType> = frames.iter().map(|(header, _)| header.gso_type).collect();
    assert_eq!(kinds, vec![GsoType::UdpL4, GsoType::TcpV4]);
}

#[test]
fn udp_super_packets_that_cannot_be_cut_are_refused() {
    let (header, packet) = coalesce_udp(&datagrams(false, 3, 1400, 0)).remove(0);
    let mut out = Segments::new();
    assert_eq!(
        segment(&header, &packet, 1400, &mut out),
        Err(OffloadError::DatagramTooBig {
            size: 1428,
            mtu: 1400
        })
    );
    assert!(out.is_empty());
    let zero = VirtioNetHdr {
        gso_size: 0,
        ..header
    };
    assert_eq!(
        segment(&zero, &packet, 1500, &mut out),
        Err(OffloadError::ZeroSegmentSize)
    );
    let mut tcp = Tcp::default().build();
    tcp.extend_from_slice(&[0; 8]);
    assert_eq!(
        segment(&header, &tcp, 1500, &mut out),
        Err(OffloadError::NotUdp)
    );
    let mut fragment = packet.clone();
    fragment[6] |= 0x20;
    assert_eq!(
        segment(&header, &fragment, 1500, &mut out),
        Err(OffloadError::Fragment)
    );
    let truncated = &packet[..packet.len() - 1];
    assert_eq!(
        segment(&header, truncated, 1500, &mut out),
        Err(OffloadError::Malformed)
    );
    assert!(out.is_empty(), "errors leave the output as it was");
}

proptest::proptest! {
    /// Any number and size of datagrams of one flow: merged and cut back, they are what was
    /// sent.
    #[test]
    fn udp_coalesce_then_segment_round_trips(
        v6: bool,
        count in 1usize..200,
        size in 1usize..1400,
        last in 0usize..1400,
    ) {
        let last = if last < size { last } else { 0 };
        let sent = datagrams(v6, count, size, last);
        let mut back = Vec::new();
        for (header, packet) in coalesce_udp(&sent) {
            let mut out = Segments::new();
            segment(&header, &packet, 1500, &mut out).unwrap();
            back.extend(out.iter().map(<[u8]>::to_vec));
        }
        proptest::prop_assert_eq!(back, sent);
    }

    /// Arbitrary bytes through a coalescer that merges UDP: no panic, bounded output.
    #[test]
    fn arbitrary_input_never_panics_with_udp(
        packets in proptest::collection::vec(
            proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120),
            0..8,
        ),
    ) {
        let mut coalescer = Coalescer::with_udp(true);
        for p in &packets {
            coalescer.push(p);
        }
        proptest::prop_assert!(coalescer.len() <= packets.len());
    }
}
