//! `PacketSocket` on a veth pair between two network namespaces: PPPoE frames cross both
//! ways, everything else (kernel ARP/IPv4/IPv6, a raw 0x88B5 frame) is filtered out in the
//! kernel, our own frames do not come back, MAC and MTU are read right.
//!
//! Needs root; skips with a printed reason otherwise (fails if `PPP_NETNS_REQUIRED=1`).

use std::io;
use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

use ppp_tokio::netns::{self, NetNs};
use ppp_tokio::packet::{
    ETHERTYPE_PPPOE_DISCOVERY, ETHERTYPE_PPPOE_SESSION, PacketSocket, ReceivedFrames, format_mac,
};

/// The whole test must finish within this.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// One expected frame must arrive within this.
const FRAME_TIMEOUT: Duration = Duration::from_secs(3);
const BROADCAST: [u8; 6] = [0xFF; 6];

/// A current-thread runtime for the sockets of a test.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Two namespaces, `ppp-pkt-<tag>c` (the client's) and `ppp-pkt-<tag>s` (the server's), joined
/// by the veth pair `veth-<tag>c`/`veth-<tag>s`.
fn veth_between_namespaces(tag: &str) -> (NetNs, NetNs) {
    let client = NetNs::create(&format!("ppp-pkt-{tag}c")).expect("client namespace");
    let server = NetNs::create(&format!("ppp-pkt-{tag}s")).expect("server namespace");
    netns::veth_pair(
        &client,
        &format!("veth-{tag}c"),
        &server,
        &format!("veth-{tag}s"),
    )
    .expect("veth pair");
    (client, server)
}

/// Packet sockets for PPPoE session frames on both ends of the pair [`veth_between_namespaces`]
/// made for `tag`: the client's, then the server's.
fn session_sockets(
    runtime: &tokio::runtime::Runtime,
    (client, server): (&NetNs, &NetNs),
    tag: &str,
) -> (PacketSocket, PacketSocket) {
    let (client_if, server_if) = (format!("veth-{tag}c"), format!("veth-{tag}s"));
    (
        bind_in(runtime, client, || {
            PacketSocket::bind_ethertype(&client_if, ETHERTYPE_PPPOE_SESSION)
        }),
        bind_in(runtime, server, || {
            PacketSocket::bind_ethertype(&server_if, ETHERTYPE_PPPOE_SESSION)
        }),
    )
}

/// Binds a packet socket with `bind` inside `netns` (socket calls act in the calling thread's
/// namespace), registered with `runtime`.
fn bind_in(
    runtime: &tokio::runtime::Runtime,
    netns: &NetNs,
    bind: impl FnOnce() -> io::Result<PacketSocket> + Send,
) -> PacketSocket {
    let handle = runtime.handle().clone();
    netns
        .run(|| {
            let _entered = handle.enter();
            bind()
        })
        .expect("enter namespace")
        .expect("bind packet socket")
}

fn frame(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(60);
    frame.extend_from_slice(&dst);
    frame.extend_from_slice(&src);
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(payload);
    // Pad to the Ethernet minimum so what is received is byte for byte what was sent.
    frame.resize(frame.len().max(60), 0);
    frame
}

/// A PADI with an empty Service-Name tag (RFC 2516 section 5.1).
const PADI: [u8; 10] = [0x11, 0x09, 0x00, 0x00, 0x00, 0x04, 0x01, 0x01, 0x00, 0x00];

/// A PPPoE session frame carrying an LCP Echo-Request, session id 0x1234.
const SESSION_LCP_ECHO: [u8; 16] = [
    0x11, 0x00, 0x12, 0x34, 0x00, 0x0A, 0xC0, 0x21, 0x09, 0x01, 0x00, 0x08, 0x01, 0x02, 0x03, 0x04,
];

/// The MAC `ip` shows for `ifname` in `netns`.
fn mac_from_ip(netns: &NetNs, ifname: &str) -> String {
    let text = netns
        .ip(&["-o", "link", "show", "dev", ifname])
        .expect("ip link show");
    let mut words = text.split_whitespace();
    words
        .find(|word| *word == "link/ether")
        .and_then(|_| words.next())
        .unwrap_or_else(|| panic!("no link/ether in {text}"))
        .to_owned()
}

async fn recv_one(socket: &PacketSocket, what: &str) -> Vec<u8> {
    let mut buf = vec![0; 2048];
    let len = tokio::time::timeout(FRAME_TIMEOUT, socket.recv(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing received on {}", socket.ifname()))
        .expect("recv");
    buf.truncate(len);
    let ethertype = u16::from_be_bytes([buf[12], buf[13]]);
    assert!(
        ethertype == ETHERTYPE_PPPOE_DISCOVERY || ethertype == ETHERTYPE_PPPOE_SESSION,
        "{what}: the filter let ethertype {ethertype:#06x} through"
    );
    buf
}

async fn assert_nothing_pending(socket: &PacketSocket) {
    let mut buf = vec![0; 2048];
    if let Ok(result) =
        tokio::time::timeout(Duration::from_millis(300), socket.recv(&mut buf)).await
    {
        let len = result.expect("recv");
        panic!(
            "{} received an unexpected frame: {:02x?}",
            socket.ifname(),
            &buf[..len]
        );
    }
}

#[test]
fn pppoe_frames_cross_a_veth_pair_and_nothing_else_does() {
    if netns::skip_without_netns("pppoe_frames_cross_a_veth_pair_and_nothing_else_does") {
        return;
    }
    let (client, server) = veth_between_namespaces("p");
    client
        .ip(&["link", "set", "dev", "veth-pc", "mtu", "1492"])
        .expect("client MTU");
    client
        .ip(&["addr", "add", "192.0.2.1/24", "dev", "veth-pc"])
        .expect("client address");
    server
        .ip(&["addr", "add", "192.0.2.2/24", "dev", "veth-ps"])
        .expect("server address");

    let runtime = runtime();
    let client_socket = bind_in(&runtime, &client, || PacketSocket::bind("veth-pc"));
    let server_socket = bind_in(&runtime, &server, || PacketSocket::bind("veth-ps"));

    // MAC and MTU as `ip` sees them.
    assert_eq!(
        format_mac(&client_socket.mac()),
        mac_from_ip(&client, "veth-pc")
    );
    assert_eq!(
        format_mac(&server_socket.mac()),
        mac_from_ip(&server, "veth-ps")
    );
    assert_eq!(client_socket.mtu(), 1492);
    assert_eq!(server_socket.mtu(), 1500);
    assert_ne!(client_socket.mac(), server_socket.mac());
    assert_eq!(client_socket.ifname(), "veth-pc");
    // Binding to an interface of the other namespace fails: the socket is in its own.
    let handle = runtime.handle().clone();
    let wrong_namespace = client.run(|| {
        let _entered = handle.enter();
        PacketSocket::bind("veth-ps")
    });
    assert!(wrong_namespace.expect("enter namespace").is_err());

    let (client_mac, server_mac) = (client_socket.mac(), server_socket.mac());
    runtime.block_on(async {
        tokio::time::timeout(TEST_TIMEOUT, async {
            // Discovery, client to server, broadcast.
            let padi = frame(BROADCAST, client_mac, ETHERTYPE_PPPOE_DISCOVERY, &PADI);
            client_socket.send(&padi).await.expect("send PADI");
            assert_eq!(recv_one(&server_socket, "PADI").await, padi);

            // Session, server to client, unicast. The client's first frame is this one, not the
            // copy of its own PADI.
            let echo = frame(
                client_mac,
                server_mac,
                ETHERTYPE_PPPOE_SESSION,
                &SESSION_LCP_ECHO,
            );
            server_socket.send(&echo).await.expect("send session frame");
            assert_eq!(recv_one(&client_socket, "session frame").await, echo);

            // Traffic the kernel makes (ARP, IPv4/UDP, IPv6 neighbour discovery and MLD) and a
            // raw frame of a local experimental ethertype: all dropped by the filter.
            let udp = client
                .run(|| UdpSocket::bind((Ipv4Addr::new(192, 0, 2, 1), 0)))
                .expect("enter namespace")
                .expect("UDP socket");
            udp.send_to(b"not PPPoE", (Ipv4Addr::new(192, 0, 2, 2), 9))
                .expect("UDP send");
            let experimental = frame(server_mac, client_mac, 0x88B5, b"not PPPoE either");
            client_socket
                .send(&experimental)
                .await
                .expect("send 0x88B5");
            let ipv4 = frame(server_mac, client_mac, 0x0800, &[0x45; 20]);
            client_socket
                .send(&ipv4)
                .await
                .expect("send IPv4-typed frame");
            // Wait (bounded) until the kernel's ARP exchange has crossed the link, then a little
            // longer for the UDP datagram and IPv6 chatter.
            let mut neighbours = String::new();
            for _ in 0..50 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                neighbours = client
                    .ip(&["neigh", "show", "192.0.2.2"])
                    .expect("ip neigh");
                if neighbours.contains("lladdr") {
                    break;
                }
            }
            assert!(
                neighbours.contains("lladdr"),
                "ARP crossed the link: {neighbours:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;

            // Markers: the next PPPoE frame on each side is the first thing each one receives.
            let marker = frame(
                server_mac,
                client_mac,
                ETHERTYPE_PPPOE_DISCOVERY,
                &[0x11, 0x19, 0, 0, 0, 0],
            );
            client_socket.send(&marker).await.expect("send marker");
            assert_eq!(recv_one(&server_socket, "marker after noise").await, marker);
            let reply = frame(
                client_mac,
                server_mac,
                ETHERTYPE_PPPOE_SESSION,
                &[0x11, 0, 0x12, 0x34, 0, 0],
            );
            server_socket.send(&reply).await.expect("send reply marker");
            assert_eq!(recv_one(&client_socket, "reply marker").await, reply);

            // The largest frame the MTU allows crosses; one byte more is refused locally.
            let largest = frame(
                server_mac,
                client_mac,
                ETHERTYPE_PPPOE_SESSION,
                &[0x5A; 1492],
            );
            client_socket
                .send(&largest)
                .await
                .expect("send MTU-sized frame");
            assert_eq!(recv_one(&server_socket, "MTU-sized frame").await, largest);
            let too_large = frame(
                server_mac,
                client_mac,
                ETHERTYPE_PPPOE_SESSION,
                &[0x5A; 1493],
            );
            let error = client_socket
                .send(&too_large)
                .await
                .expect_err("a frame over the MTU");
            assert_eq!(error.raw_os_error(), Some(libc::EMSGSIZE), "{error}");
            let runt = client_socket.send(&[0; 13]).await.expect_err("a runt");
            assert_eq!(runt.kind(), io::ErrorKind::InvalidInput);

            // Nothing else is queued on either side: no own frames, no kernel traffic.
            assert_nothing_pending(&client_socket).await;
            assert_nothing_pending(&server_socket).await;
        })
        .await
        .expect("the test timed out");
    });
}

/// `send_batch` (sendmmsg) and `try_recv_batch` (recvmmsg): 150 session frames of different
/// lengths go out in one call, in order, but for one too short for Ethernet and one beyond the
/// MTU, which are reported with their index while the rest still go; the receiver takes them in
/// batches, byte for byte and in order.
#[test]
fn frames_cross_in_batches() {
    if netns::skip_without_netns("frames_cross_in_batches") {
        return;
    }
    let (client, server) = veth_between_namespaces("b");
    let runtime = runtime();
    let (sender, receiver) = session_sockets(&runtime, (&client, &server), "b");
    // Room for the whole burst: nothing reads while it is sent.
    receiver
        .set_receive_buffer(4 << 20)
        .expect("receive buffer");
    let (client_mac, server_mac) = (sender.mac(), receiver.mac());
    const FRAMES: usize = 150;
    const TOO_SHORT: usize = 5;
    const TOO_LONG: usize = 77;
    let frames: Vec<Vec<u8>> = (0..FRAMES)
        .map(|i| match i {
            TOO_SHORT => vec![0; 10],
            TOO_LONG => frame(server_mac, client_mac, ETHERTYPE_PPPOE_SESSION, &[7; 1600]),
            _ => {
                // A session header, then the index and filler up to a length of its own.
                let mut payload = vec![0x11, 0x00, 0x12, 0x34, 0x00, 0x00];
                payload.extend_from_slice(&(i as u16).to_be_bytes());
                payload.resize(8 + (i * 97) % 1400, i as u8);
                frame(server_mac, client_mac, ETHERTYPE_PPPOE_SESSION, &payload)
            }
        })
        .collect();
    let expected: Vec<&Vec<u8>> = frames
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != TOO_SHORT && *i != TOO_LONG)
        .map(|(_, frame)| frame)
        .collect();
    runtime.block_on(async {
        tokio::time::timeout(TEST_TIMEOUT, async {
            let mut failed = Vec::new();
            let sent = sender
                .send_batch(&frames, |index, error| failed.push((index, error.kind())))
                .await;
            assert_eq!(sent, FRAMES - 2);
            assert_eq!(failed.len(), 2, "{failed:?}");
            assert_eq!(failed[0], (TOO_SHORT, io::ErrorKind::InvalidInput));
            assert_eq!(failed[1].0, TOO_LONG);

            let mut received: Vec<Vec<u8>> = Vec::new();
            let mut batches = 0;
            let mut batch = ReceivedFrames::new(64, 1600);
            let mut first = vec![0; 2048];
            while received.len() < expected.len() {
                let len = tokio::time::timeout(FRAME_TIMEOUT, receiver.recv(&mut first))
                    .await
                    .unwrap_or_else(|_| {
                        panic!("{} frames of {} received", received.len(), expected.len())
                    })
                    .expect("recv");
                received.push(first[..len].to_vec());
                loop {
                    let count = receiver.try_recv_batch(&mut batch).expect("recvmmsg");
                    assert_eq!(count, batch.len());
                    if count == 0 {
                        break;
                    }
                    batches += 1;
                    received.extend(batch.iter().map(<[u8]>::to_vec));
                }
            }
            assert_eq!(received.len(), expected.len());
            for (i, (got, want)) in received.iter().zip(&expected).enumerate() {
                assert_eq!(got, *want, "frame {i} differs");
            }
            assert!(batches > 0, "no frame was waiting behind the first");
            assert_nothing_pending(&receiver).await;
        })
        .await
        .expect("the test timed out");
    });
}

/// A socket bound to one ethertype sends through a send-only socket of its own; when that one's
/// buffer fills (here behind a slow token bucket on the veth, which holds the frames in its
/// queue) `send_batch` and `send` wait until it drains instead of failing: 2,000 frames of 1 KB
/// at 40 Mbit/s (about 0.4 s) all arrive, in order, and none is reported failed.
#[test]
fn a_full_send_buffer_is_waited_out() {
    if netns::skip_without_netns("a_full_send_buffer_is_waited_out") {
        return;
    }
    let (client, server) = veth_between_namespaces("w");
    // A queue that holds far more than a socket's send buffer (about 200 KB): the sender, not
    // the queue, must give way.
    client
        .exec_checked(&[
            "tc", "qdisc", "add", "dev", "veth-wc", "root", "tbf", "rate", "40mbit", "burst",
            "16kb", "limit", "8mb",
        ])
        .expect("tc qdisc tbf");
    let runtime = runtime();
    let (sender, receiver) = session_sockets(&runtime, (&client, &server), "w");
    receiver
        .set_receive_buffer(8 << 20)
        .expect("receive buffer");
    let (client_mac, server_mac) = (sender.mac(), receiver.mac());
    const FRAMES: usize = 2000;
    let frames: Vec<Vec<u8>> = (0..FRAMES)
        .map(|i| {
            let mut payload = vec![0x11, 0x00, 0x12, 0x34, 0x03, 0xF8];
            payload.extend_from_slice(&(i as u16).to_be_bytes());
            payload.resize(1000, i as u8);
            frame(server_mac, client_mac, ETHERTYPE_PPPOE_SESSION, &payload)
        })
        .collect();
    runtime.block_on(async {
        tokio::time::timeout(TEST_TIMEOUT, async {
            let mut failed = Vec::new();
            let sent = sender
                .send_batch(&frames[..FRAMES - 1], |index, error| {
                    failed.push((index, error.kind()))
                })
                .await;
            assert!(failed.is_empty(), "{failed:?}");
            assert_eq!(sent, FRAMES - 1);
            sender.send(&frames[FRAMES - 1]).await.expect("send");

            let mut buf = vec![0; 2048];
            for (i, want) in frames.iter().enumerate() {
                let len = tokio::time::timeout(FRAME_TIMEOUT, receiver.recv(&mut buf))
                    .await
                    .unwrap_or_else(|_| panic!("{i} frames of {FRAMES} received"))
                    .expect("recv");
                assert_eq!(&buf[..len], &want[..], "frame {i} differs");
            }
            assert_nothing_pending(&receiver).await;
        })
        .await
        .expect("the test timed out");
    });
}

/// Measurement, not a check: `cargo test -p ppp-tokio --release --test packet_netns --
/// --ignored --nocapture` prints the ping-pong round-trip rate and the one-way rate of
/// 1492-byte session frames between the two namespaces.
#[test]
#[ignore = "measurement; run explicitly"]
fn measure_packet_socket_rates() {
    if netns::skip_without_netns("measure_packet_socket_rates") {
        return;
    }
    let (client, server) = veth_between_namespaces("m");
    let runtime = runtime();
    let client_socket = bind_in(&runtime, &client, || PacketSocket::bind("veth-mc"));
    let server_socket = bind_in(&runtime, &server, || PacketSocket::bind("veth-ms"));
    let (client_mac, server_mac) = (client_socket.mac(), server_socket.mac());
    runtime.block_on(async {
        tokio::time::timeout(TEST_TIMEOUT, async {
            const ROUND_TRIPS: u32 = 5_000;
            let ping = frame(server_mac, client_mac, ETHERTYPE_PPPOE_SESSION, &SESSION_LCP_ECHO);
            let pong = frame(client_mac, server_mac, ETHERTYPE_PPPOE_SESSION, &SESSION_LCP_ECHO);
            let mut buf = vec![0; 2048];
            let start = std::time::Instant::now();
            for _ in 0..ROUND_TRIPS {
                client_socket.send(&ping).await.expect("send");
                server_socket.recv(&mut buf).await.expect("recv");
                server_socket.send(&pong).await.expect("send");
                client_socket.recv(&mut buf).await.expect("recv");
            }
            let elapsed = start.elapsed();
            println!(
                "ping-pong: {ROUND_TRIPS} round trips in {elapsed:?}: {:.1} us per round trip",
                elapsed.as_secs_f64() * 1e6 / f64::from(ROUND_TRIPS)
            );

            const BURST: u32 = 20_000;
            let big = frame(server_mac, client_mac, ETHERTYPE_PPPOE_SESSION, &[0x5A; 1492]);
            let start = std::time::Instant::now();
            let sender = async {
                for _ in 0..BURST {
                    client_socket.send(&big).await.expect("send");
                    tokio::task::yield_now().await;
                }
            };
            let receiver = async {
                let mut received = 0u32;
                let mut buf = vec![0; 2048];
                while let Ok(result) =
                    tokio::time::timeout(Duration::from_millis(500), server_socket.recv(&mut buf))
                        .await
                {
                    result.expect("recv");
                    received += 1;
                    if received == BURST {
                        break;
                    }
                }
                (received, start.elapsed())
            };
            let ((), (received, elapsed)) = tokio::join!(sender, receiver);
            println!(
                "one way: {received} of {BURST} 1506-byte frames received, {:.0} frames/s, {:.0} Mbit/s",
                f64::from(received) / elapsed.as_secs_f64(),
                f64::from(received) * 1506.0 * 8.0 / elapsed.as_secs_f64() / 1e6
            );
        })
        .await
        .expect("the measurement timed out");
    });
}
