//! TUN devices with offloads (`TunDevice::create_with_offload`) in a network namespace, both
//! ways:
//!
//! - a TCP stream from the namespace's stack to the TUN's peer arrives as super-packets (reads
//!   larger than the MTU, `GSO_TCPV4`), and `offload::segment` cuts every read into packets that
//!   fit the MTU with valid checksums, carrying the stream's bytes in order (the peer's side of
//!   TCP is played here: SYN-ACK, then one cumulative ACK per read);
//! - segments from the peer to a listener in the namespace, merged by the `Coalescer`, are taken
//!   as super-packets and read by the listener in order;
//! - a coalesced super-packet forwarded out of a second TUN device without offloads comes out
//!   cut by the kernel with checksums it finished from the `Coalescer`'s partial checksum, all
//!   valid (IPv4 and IPv6).
//!
//! Needs root; skips with a printed reason otherwise (fails if `PPP_NETNS_REQUIRED=1`).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use ppp_tokio::netconfig;
use ppp_tokio::netns::{self, NetNs};
use ppp_tokio::offload::{
    Coalescer, GsoType, MAX_PACKET_LEN, Segments, VNET_HDR_LEN, VirtioNetHdr, segment,
};
use ppp_tokio::tun::TunDevice;

const TEST_TIMEOUT: Duration = Duration::from_secs(30);
const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const PORT: u16 = 5001;
/// The namespace's listening port, and the peer's port, for the coalescing direction.
const LISTEN_PORT: u16 = 5002;
const PEER_PORT: u16 = 40000;
/// Data per segment the peer sends.
const SEGMENT_DATA: usize = 1400;
const MTU: u16 = 1492;
const STREAM_LEN: usize = 2 << 20;
/// Our initial sequence number, as the peer.
const PEER_ISS: u32 = 0x1000_0000;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;

fn stream_byte(i: usize) -> u8 {
    (i * 13 + i / 4093) as u8
}

/// Ones' complement sum of 16-bit words, folded.
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    for part in parts {
        for pair in part.chunks(2) {
            sum += u64::from(u16::from_be_bytes([
                pair[0],
                pair.get(1).copied().unwrap_or(0),
            ]));
        }
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

/// Whether an IPv4 TCP packet's header and TCP checksums verify.
fn checksums_ok(p: &[u8]) -> bool {
    let header_len = usize::from(p[0] & 0x0F) * 4;
    let tcp = &p[header_len..];
    let pseudo = [&p[12..20], &[0, 6], &(tcp.len() as u16).to_be_bytes()[..]].concat();
    checksum(&[&p[..header_len]]) == 0xFFFF && checksum(&[&pseudo, tcp]) == 0xFFFF
}

/// The fields of a TCP packet from the peer to the local address.
struct FromPeer<'a> {
    src_port: u16,
    dst_port: u16,
    id: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    options: &'a [u8],
    data: &'a [u8],
}

impl FromPeer<'_> {
    /// The IPv4 packet, checksums complete.
    fn build(&self) -> Vec<u8> {
        let tcp_len = 20 + self.options.len() + self.data.len();
        let mut p = vec![0x45, 0];
        p.extend_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
        p.extend_from_slice(&self.id.to_be_bytes());
        p.extend_from_slice(&[0x40, 0, 64, 6, 0, 0]);
        p.extend_from_slice(&PEER.octets());
        p.extend_from_slice(&LOCAL.octets());
        let sum = !checksum(&[&p]);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p.extend_from_slice(&self.src_port.to_be_bytes());
        p.extend_from_slice(&self.dst_port.to_be_bytes());
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&self.ack.to_be_bytes());
        p.push((((20 + self.options.len()) / 4) << 4) as u8);
        p.push(self.flags);
        p.extend_from_slice(&0xFFFFu16.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 0]);
        p.extend_from_slice(self.options);
        p.extend_from_slice(self.data);
        let pseudo = [&p[12..20], &[0, 6], &(tcp_len as u16).to_be_bytes()[..]].concat();
        let sum = !checksum(&[&pseudo, &p[20..]]);
        p[36..38].copy_from_slice(&sum.to_be_bytes());
        p
    }
}

/// An IPv4 TCP packet without data from the peer to the local address, checksums complete.
fn peer_packet(
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    options: &[u8],
) -> Vec<u8> {
    FromPeer {
        src_port,
        dst_port,
        id: 0,
        seq,
        ack,
        flags,
        options,
        data: &[],
    }
    .build()
}

/// What the peer side saw.
#[derive(Default)]
struct Seen {
    reads: usize,
    super_packets: usize,
    largest_read: usize,
    segments: usize,
    gso_sizes: Vec<u16>,
    stream: Vec<u8>,
}

/// Plays the peer of the connection the namespace opens to `PEER:PORT` until its FIN.
async fn play_peer(tun: &TunDevice) -> Seen {
    let mut seen = Seen::default();
    let mut buf = vec![0; VNET_HDR_LEN + MAX_PACKET_LEN];
    let mut segments = Segments::new();
    let mut expected: Option<u32> = None;
    let mut client_port = 0;
    let mut finished = false;
    while !finished {
        let len = tun.recv(&mut buf).await.expect("TUN recv");
        let (header, packet) = VirtioNetHdr::split(&buf[..len]).expect("virtio-net header");
        seen.reads += 1;
        if header.gso_type == GsoType::TcpV4 {
            seen.super_packets += usize::from(packet.len() > usize::from(MTU));
            if !seen.gso_sizes.contains(&header.gso_size) {
                seen.gso_sizes.push(header.gso_size);
            }
        }
        seen.largest_read = seen.largest_read.max(packet.len());
        if packet.first().map(|b| b >> 4) != Some(4) {
            continue; // IPv6 chatter is not ours
        }
        segments.clear();
        segment(&header, packet, MTU, &mut segments)
            .unwrap_or_else(|e| panic!("segment {header:?}: {e}"));
        let mut answer = None;
        for p in segments.iter() {
            seen.segments += 1;
            assert!(p.len() <= usize::from(MTU), "{} bytes", p.len());
            assert!(checksums_ok(p), "checksums of a segment");
            if p[9] != 6 || p[16..20] != PEER.octets() || p[22..24] != PORT.to_be_bytes() {
                continue;
            }
            let tcp = &p[20..];
            let flags = tcp[13];
            let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
            let data = &tcp[usize::from(tcp[12] >> 4) * 4..];
            if flags & SYN != 0 {
                client_port = u16::from_be_bytes([tcp[0], tcp[1]]);
                expected = Some(seq.wrapping_add(1));
                // MSS 1452, window scale 7.
                let options = [2, 4, 0x05, 0xac, 1, 3, 3, 7];
                answer = Some(peer_packet(
                    PORT,
                    client_port,
                    PEER_ISS,
                    seq.wrapping_add(1),
                    SYN | ACK,
                    &options,
                ));
                continue;
            }
            let Some(next) = expected else { continue };
            if seq == next {
                seen.stream.extend_from_slice(data);
                let mut next = next.wrapping_add(data.len() as u32);
                if flags & FIN != 0 {
                    next = next.wrapping_add(1);
                    finished = true;
                }
                expected = Some(next);
            }
            answer = Some(peer_packet(
                PORT,
                client_port,
                PEER_ISS.wrapping_add(1),
                expected.unwrap_or(0),
                ACK | if finished { FIN } else { 0 },
                &[],
            ));
        }
        if let Some(answer) = answer {
            let frame = [&VirtioNetHdr::default().to_bytes()[..], &answer].concat();
            tun.send(&frame).await.expect("TUN send");
        }
    }
    seen
}

#[test]
fn tcp_through_an_offloading_tun_arrives_as_super_packets() {
    if netns::skip_without_netns("tcp_through_an_offloading_tun_arrives_as_super_packets") {
        return;
    }
    let netns = NetNs::create("ppp-offload").expect("namespace");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let handle = runtime.handle().clone();
    let tun = netns
        .run(|| {
            let _entered = handle.enter();
            let tun = TunDevice::create_with_offload(Some("pppoff0"))?;
            netconfig::set_mtu(tun.name(), u32::from(MTU))?;
            netconfig::disable_ipv6_address_generation(tun.name())?;
            netconfig::set_up(tun.name())?;
            netconfig::add_point_to_point_ipv4(tun.name(), LOCAL, PEER)?;
            std::io::Result::Ok(tun)
        })
        .expect("enter namespace")
        .expect("create and configure the TUN device");
    assert!(tun.has_offload());
    let features = netns
        .exec_checked(&["ethtool", "-k", tun.name()])
        .unwrap_or_default();
    eprintln!(
        "offloads: {}",
        features
            .lines()
            .filter(|l| l.contains("segmentation-offload:") || l.contains("tx-checksumming"))
            .collect::<Vec<_>>()
            .join("; ")
    );

    let seen = std::thread::scope(|scope| {
        let client = scope.spawn(|| {
            netns
                .run(|| {
                    let peer: SocketAddr = (PEER, PORT).into();
                    let mut stream = TcpStream::connect_timeout(&peer, Duration::from_secs(10))?;
                    let data: Vec<u8> = (0..STREAM_LEN).map(stream_byte).collect();
                    stream.write_all(&data)?;
                    stream.shutdown(Shutdown::Write)?;
                    std::io::Result::Ok(())
                })
                .expect("enter namespace")
        });
        let seen = runtime.block_on(async {
            tokio::time::timeout(TEST_TIMEOUT, play_peer(&tun))
                .await
                .expect("the stream did not end in time")
        });
        client.join().expect("client thread").expect("client");
        seen
    });
    eprintln!(
        "{} reads, {} of them super-packets (largest {} bytes, gso_size {:?}), {} segments",
        seen.reads, seen.super_packets, seen.largest_read, seen.gso_sizes, seen.segments
    );
    assert_eq!(seen.stream.len(), STREAM_LEN);
    assert!(
        seen.stream
            .iter()
            .enumerate()
            .all(|(i, &b)| b == stream_byte(i)),
        "the stream's bytes in order"
    );
    assert!(
        seen.super_packets >= 1,
        "no super-packet in {} reads",
        seen.reads
    );
    assert!(seen.largest_read > usize::from(MTU));
}

/// The acknowledgment number of the next TCP packet from the listener to the peer (SYN-ACK:
/// also its sequence number).
async fn next_from_listener(tun: &TunDevice, buf: &mut [u8]) -> (u8, u32, u32) {
    let mut segments = Segments::new();
    loop {
        let len = tun.recv(buf).await.expect("TUN recv");
        let (header, packet) = VirtioNetHdr::split(&buf[..len]).expect("virtio-net header");
        segments.clear();
        if segment(&header, packet, u16::MAX, &mut segments).is_err() {
            continue;
        }
        for p in segments.iter() {
            if p.len() < 40 || p[0] != 0x45 || p[9] != 6 || p[20..22] != LISTEN_PORT.to_be_bytes() {
                continue;
            }
            assert!(checksums_ok(p));
            let tcp = &p[20..];
            let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
            let ack = u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]]);
            return (tcp[13], seq, ack);
        }
    }
}

/// Connects to the namespace's listener as the peer and sends it `data` in segments of
/// `SEGMENT_DATA` bytes, coalesced into super-packets and written to the TUN, a window of 32
/// segments at a time. Returns the frames written and how many were super-packets.
async fn send_coalesced(tun: &TunDevice, data: &[u8]) -> (usize, usize) {
    const ISS: u32 = 1000;
    let mut buf = vec![0; VNET_HDR_LEN + MAX_PACKET_LEN];
    let none = VirtioNetHdr::default().to_bytes();
    let send = |packet: Vec<u8>| async move {
        let frame = [&none[..], &packet].concat();
        tun.send(&frame).await.expect("TUN send");
    };
    let syn = peer_packet(PEER_PORT, LISTEN_PORT, ISS, 0, SYN, &[2, 4, 0x05, 0xac]);
    send(syn).await;
    let (flags, their_seq, _) = next_from_listener(tun, &mut buf).await;
    assert_eq!(flags, SYN | ACK, "SYN-ACK");
    let their_next = their_seq.wrapping_add(1);
    send(peer_packet(
        PEER_PORT,
        LISTEN_PORT,
        ISS + 1,
        their_next,
        ACK,
        &[],
    ))
    .await;
    let mut coalescer = Coalescer::new();
    let (mut frames, mut super_packets) = (0, 0);
    let mut sent = 0usize;
    let mut id = 1u16;
    while sent < data.len() {
        let window = &data[sent..(sent + 32 * SEGMENT_DATA).min(data.len())];
        let chunks = window.chunks(SEGMENT_DATA).count();
        for (i, chunk) in window.chunks(SEGMENT_DATA).enumerate() {
            let offset = sent + i * SEGMENT_DATA;
            let packet = FromPeer {
                src_port: PEER_PORT,
                dst_port: LISTEN_PORT,
                id,
                seq: ISS + 1 + offset as u32,
                ack: their_next,
                flags: if i + 1 == chunks { ACK | PSH } else { ACK },
                options: &[],
                data: chunk,
            }
            .build();
            id = id.wrapping_add(1);
            coalescer.push(&packet);
        }
        for frame in coalescer.frames() {
            let (header, _) = VirtioNetHdr::split(frame).expect("header");
            super_packets += usize::from(header.gso_type == GsoType::TcpV4);
            frames += 1;
            tun.send(frame)
                .await
                .expect("TUN send of a coalesced frame");
        }
        coalescer.clear();
        sent += window.len();
        let target = ISS + 1 + sent as u32;
        loop {
            let (_, _, ack) = next_from_listener(tun, &mut buf).await;
            if ack == target {
                break;
            }
        }
    }
    let fin = peer_packet(
        PEER_PORT,
        LISTEN_PORT,
        ISS + 1 + data.len() as u32,
        their_next,
        FIN | ACK,
        &[],
    );
    send(fin).await;
    (frames, super_packets)
}

#[test]
fn coalesced_super_packets_are_taken_by_an_offloading_tun() {
    if netns::skip_without_netns("coalesced_super_packets_are_taken_by_an_offloading_tun") {
        return;
    }
    let netns = NetNs::create("ppp-gro").expect("namespace");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let handle = runtime.handle().clone();
    let (tun, listener) = netns
        .run(|| {
            let _entered = handle.enter();
            let tun = TunDevice::create_with_offload(Some("pppgro0"))?;
            netconfig::set_mtu(tun.name(), u32::from(MTU))?;
            netconfig::disable_ipv6_address_generation(tun.name())?;
            netconfig::set_up(tun.name())?;
            netconfig::add_point_to_point_ipv4(tun.name(), LOCAL, PEER)?;
            let listener = TcpListener::bind((LOCAL, LISTEN_PORT))?;
            std::io::Result::Ok((tun, listener))
        })
        .expect("enter namespace")
        .expect("create and configure the TUN device");
    let data: Vec<u8> = (0..STREAM_LEN / 2).map(stream_byte).collect();
    let (received, (frames, super_packets)) = std::thread::scope(|scope| {
        let server = scope.spawn(|| {
            let (mut stream, _) = listener.accept()?;
            stream.set_read_timeout(Some(TEST_TIMEOUT))?;
            let mut received = Vec::new();
            stream.read_to_end(&mut received)?;
            std::io::Result::Ok(received)
        });
        let written = runtime.block_on(async {
            tokio::time::timeout(TEST_TIMEOUT, send_coalesced(&tun, &data))
                .await
                .expect("the transfer did not end in time")
        });
        (
            server.join().expect("server thread").expect("server"),
            written,
        )
    });
    eprintln!(
        "{} bytes in {} segments written as {frames} frames, {super_packets} of them super-packets",
        data.len(),
        data.len().div_ceil(SEGMENT_DATA)
    );
    assert_eq!(received.len(), data.len());
    assert!(received == data, "the stream's bytes in order");
    assert!(super_packets >= 1);
    assert!(frames < data.len().div_ceil(SEGMENT_DATA));
}

/// A TCP data segment from the peer's side of the offloading TUN to a host behind the second
/// TUN, checksums complete: IPv4 192.0.2.2 → 198.51.100.2 or IPv6 2001:db8:1::2 →
/// 2001:db8:2::2.
fn forwarded_segment(v6: bool, id: u16, seq: u32, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut tcp = vec![0x9c, 0x40, 0x13, 0x8b]; // 40000 → 5003
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&1u32.to_be_bytes());
    tcp.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    tcp.extend_from_slice(data);
    let (mut p, pseudo) = if v6 {
        let src: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let dst: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
        p.extend_from_slice(&[6, 64]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        let pseudo = [
            &src[..],
            &dst,
            &(tcp.len() as u32).to_be_bytes(),
            &[0, 0, 0, 6],
        ]
        .concat();
        (p, pseudo)
    } else {
        let mut p = vec![0x45, 0];
        p.extend_from_slice(&((20 + tcp.len()) as u16).to_be_bytes());
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&[0x40, 0, 64, 6, 0, 0]);
        p.extend_from_slice(&PEER.octets());
        p.extend_from_slice(&[198, 51, 100, 2]);
        let sum = !checksum(&[&p]);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        let pseudo = [&p[12..20], &[0, 6], &(tcp.len() as u16).to_be_bytes()[..]].concat();
        (p, pseudo)
    };
    let sum = !checksum(&[&pseudo, &tcp]);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(&tcp);
    p
}

/// Whether a forwarded IPv4 or IPv6 TCP packet's checksums verify; its data and sequence number.
fn forwarded_data(p: &[u8]) -> Option<(u32, Vec<u8>)> {
    let (header_len, pseudo) = match p.first()? >> 4 {
        4 if p.len() >= 40 && p[9] == 6 => {
            let header_len = usize::from(p[0] & 0x0F) * 4;
            assert_eq!(
                checksum(&[&p[..header_len]]),
                0xFFFF,
                "IPv4 header checksum"
            );
            let tcp_len = (p.len() - header_len) as u16;
            let pseudo = [&p[12..20], &[0, 6], &tcp_len.to_be_bytes()[..]].concat();
            (header_len, pseudo)
        }
        6 if p.len() >= 60 && p[6] == 6 => {
            let tcp_len = (p.len() - 40) as u32;
            (
                40,
                [&p[8..40], &tcp_len.to_be_bytes()[..], &[0, 0, 0, 6]].concat(),
            )
        }
        _ => return None,
    };
    let tcp = &p[header_len..];
    if tcp[2..4] != [0x13, 0x8b] {
        return None;
    }
    assert_eq!(
        checksum(&[&pseudo, tcp]),
        0xFFFF,
        "TCP checksum of a forwarded segment"
    );
    let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
    Some((seq, tcp[usize::from(tcp[12] >> 4) * 4..].to_vec()))
}

/// The kernel forwards a coalesced super-packet out of a TUN device without offloads: it has to
/// cut it and finish the checksums itself from the partial checksum the `Coalescer` wrote, so
/// every packet read from the second device verifying proves that partial checksum right (a
/// local socket would have trusted it). IPv4 and IPv6.
#[test]
fn coalesced_super_packets_forwarded_by_the_kernel_have_valid_checksums() {
    if netns::skip_without_netns(
        "coalesced_super_packets_forwarded_by_the_kernel_have_valid_checksums",
    ) {
        return;
    }
    let netns = NetNs::create("ppp-fwd").expect("namespace");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let handle = runtime.handle().clone();
    let (ingress, egress) = netns
        .run(|| {
            let _entered = handle.enter();
            std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")?;
            std::fs::write("/proc/sys/net/ipv6/conf/all/forwarding", "1")?;
            let ingress = TunDevice::create_with_offload(Some("pppgro1"))?;
            let egress = TunDevice::create(Some("pppfwd0"))?;
            for (tun, mtu) in [(&ingress, MTU), (&egress, 1500)] {
                netconfig::set_mtu(tun.name(), u32::from(mtu))?;
                netconfig::disable_ipv6_address_generation(tun.name())?;
                netconfig::set_up(tun.name())?;
            }
            netconfig::add_point_to_point_ipv4(ingress.name(), LOCAL, PEER)?;
            netconfig::add_point_to_point_ipv4(
                egress.name(),
                Ipv4Addr::new(198, 51, 100, 1),
                Ipv4Addr::new(198, 51, 100, 2),
            )?;
            netconfig::ip(&[
                "-6",
                "addr",
                "add",
                "2001:db8:1::1/64",
                "dev",
                "pppgro1",
                "nodad",
            ])?;
            netconfig::ip(&[
                "-6",
                "addr",
                "add",
                "2001:db8:2::1/64",
                "dev",
                "pppfwd0",
                "nodad",
            ])?;
            std::io::Result::Ok((ingress, egress))
        })
        .expect("enter namespace")
        .expect("create and configure the TUN devices");
    const SEGMENTS: usize = 20;
    for v6 in [false, true] {
        let data: Vec<u8> = (0..SEGMENTS * SEGMENT_DATA).map(stream_byte).collect();
        let mut coalescer = Coalescer::new();
        for (i, chunk) in data.chunks(SEGMENT_DATA).enumerate() {
            let flags = if i + 1 == SEGMENTS { ACK | PSH } else { ACK };
            let seq = 1 + (i * SEGMENT_DATA) as u32;
            coalescer.push(&forwarded_segment(v6, 100 + i as u16, seq, flags, chunk));
        }
        assert_eq!(coalescer.len(), 1, "one super-packet");
        let frame = coalescer.frames().next().expect("a frame").to_vec();
        let received = runtime.block_on(async {
            ingress
                .send(&frame)
                .await
                .expect("TUN send of the super-packet");
            let mut received = vec![0u8; data.len()];
            let (mut bytes, mut packets) = (0, 0);
            let mut buf = vec![0; 2048];
            tokio::time::timeout(TEST_TIMEOUT, async {
                while bytes < data.len() {
                    let len = egress.recv(&mut buf).await.expect("TUN recv");
                    let Some((seq, part)) = forwarded_data(&buf[..len]) else {
                        continue;
                    };
                    assert!(len <= 1500);
                    let at = seq as usize - 1;
                    received[at..at + part.len()].copy_from_slice(&part);
                    bytes += part.len();
                    packets += 1;
                }
            })
            .await
            .expect("the forwarded segments did not arrive in time");
            eprintln!(
                "IPv{}: one {}-byte super-packet in, {packets} packets with valid checksums out",
                if v6 { 6 } else { 4 },
                frame.len() - VNET_HDR_LEN
            );
            received
        });
        assert!(received == data, "the data forwarded");
    }
}

/// A UDP datagram from the peer (192.0.2.2:40001) to the namespace's socket, checksums complete.
fn peer_datagram(id: u16, port: u16, data: &[u8]) -> Vec<u8> {
    let udp_len = 8 + data.len();
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&((20 + udp_len) as u16).to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0x40, 0, 64, 17, 0, 0]);
    p.extend_from_slice(&PEER.octets());
    p.extend_from_slice(&LOCAL.octets());
    let sum = !checksum(&[&p]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut udp = 40001u16.to_be_bytes().to_vec();
    udp.extend_from_slice(&port.to_be_bytes());
    udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(data);
    let pseudo = [
        &PEER.octets()[..],
        &LOCAL.octets(),
        &[0, 17],
        &(udp_len as u16).to_be_bytes(),
    ]
    .concat();
    let sum = match !checksum(&[&pseudo, &udp]) {
        0 => 0xFFFF,
        sum => sum,
    };
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(&udp);
    p
}

/// Where the kernel has UDP segmentation offload (`TUN_F_USO4`, Linux 6.2): datagrams from the
/// peer merged by a `Coalescer::with_udp` into `UDP_L4` super-packets are taken by the TUN
/// device and reach a socket in the namespace as the same datagrams, in order.
#[test]
fn coalesced_udp_super_packets_reach_a_socket_as_the_same_datagrams() {
    const NAME: &str = "coalesced_udp_super_packets_reach_a_socket_as_the_same_datagrams";
    if netns::skip_without_netns(NAME) {
        return;
    }
    const PORT: u16 = 5004;
    const COUNT: usize = 200;
    let netns = NetNs::create("ppp-ugro").expect("namespace");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let handle = runtime.handle().clone();
    let (tun, socket) = netns
        .run(|| {
            let _entered = handle.enter();
            let tun = TunDevice::create_with_offload(Some("pppugro0"))?;
            netconfig::set_mtu(tun.name(), u32::from(MTU))?;
            netconfig::disable_ipv6_address_generation(tun.name())?;
            netconfig::set_up(tun.name())?;
            netconfig::add_point_to_point_ipv4(tun.name(), LOCAL, PEER)?;
            let socket = std::net::UdpSocket::bind((LOCAL, PORT))?;
            socket.set_read_timeout(Some(Duration::from_secs(5)))?;
            std::io::Result::Ok((tun, socket))
        })
        .expect("enter namespace")
        .expect("create and configure the TUN device");
    if !tun.takes_udp_gso() {
        eprintln!("skipping {NAME}: this kernel has no UDP segmentation offload on TUN");
        return;
    }
    // 64-byte datagrams but every 50th, which is shorter and ends a super-packet.
    let sent: Vec<Vec<u8>> = (0..COUNT)
        .map(|i| {
            let len = if i % 50 == 49 { 20 } else { 64 };
            (0..len).map(|j| (i * 3 + j) as u8).collect()
        })
        .collect();
    let mut coalescer = Coalescer::with_udp(true);
    for (i, data) in sent.iter().enumerate() {
        coalescer.push(&peer_datagram(0x100 + i as u16, PORT, data));
    }
    let super_packets = coalescer
        .frames()
        .filter(|frame| VirtioNetHdr::split(frame).expect("header").0.gso_type == GsoType::UdpL4)
        .count();
    assert_eq!(coalescer.len(), 4, "one super-packet per 50 datagrams");
    assert_eq!(super_packets, 4);
    runtime.block_on(async {
        for frame in coalescer.frames() {
            tun.send(frame)
                .await
                .expect("the kernel takes a UDP super-packet");
        }
    });
    let mut buf = [0u8; 2048];
    for (i, data) in sent.iter().enumerate() {
        let (len, from) = socket
            .recv_from(&mut buf)
            .unwrap_or_else(|error| panic!("datagram {i} of {COUNT}: {error}"));
        assert_eq!(from, SocketAddr::from((PEER, 40001)));
        assert_eq!(&buf[..len], data.as_slice(), "datagram {i}");
    }
}
