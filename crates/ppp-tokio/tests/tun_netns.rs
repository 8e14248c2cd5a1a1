//! `TunDevice` and `netconfig` in a network namespace: a TUN configured as the local end of a
//! point-to-point link (192.0.2.1 peer 192.0.2.2, MTU 1400) sees the echo requests of a ping to
//! the peer, and the echo replies written back make the ping succeed; the default route with its
//! metric, the link-local addresses and the DNS file appear, and go away again.
//!
//! Needs root; skips with a printed reason otherwise (fails if `PPP_NETNS_REQUIRED=1`).

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use ppp_tokio::icmp;
use ppp_tokio::netconfig::{self, IpFamily};
use ppp_tokio::netns::{self, NetNs};
use ppp_tokio::tun::TunDevice;
use socket2::{Domain, Protocol, Socket, Type};

/// The whole test must finish within this.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);
const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const METRIC: u32 = 250;
const IFNAME: &str = "ppptun0";

fn link_locals() -> (Ipv6Addr, Ipv6Addr) {
    (
        netconfig::ipv6_link_local([0x02, 0, 0, 0, 0, 0, 0, 0x01]),
        netconfig::ipv6_link_local([0x02, 0, 0, 0, 0, 0, 0, 0x02]),
    )
}

/// Answers every echo request to the peer that arrives on `tun`; returns how many it answered
/// when `done` completes.
async fn answer_pings_until<F: std::future::Future>(
    tun: &TunDevice,
    done: F,
) -> (usize, F::Output) {
    let mut answered = 0;
    let mut buf = vec![0; 2048];
    tokio::pin!(done);
    loop {
        tokio::select! {
            output = &mut done => return (answered, output),
            received = tun.recv(&mut buf) => {
                let len = received.expect("TUN recv");
                let packet = &buf[..len];
                if let Some(reply) = icmp::echo_reply(packet, PEER) {
                    assert_eq!(&packet[12..16], &LOCAL.octets(), "the request comes from the local address");
                    tun.send(&reply).await.expect("TUN send");
                    answered += 1;
                }
            }
        }
    }
}

#[test]
fn ping_through_a_tun_device() {
    if netns::skip_without_netns("ping_through_a_tun_device") {
        return;
    }
    let netns = NetNs::create("ppp-tun").expect("namespace");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let handle = runtime.handle().clone();
    let (local6, peer6) = link_locals();

    // Create and configure inside the namespace.
    let (tun, kernel_named) = netns
        .run(|| {
            let _entered = handle.enter();
            let tun = TunDevice::create(Some(IFNAME))?;
            let kernel_named = TunDevice::create(None)?;
            netconfig::set_mtu(tun.name(), 1400)?;
            netconfig::disable_ipv6_address_generation(tun.name())?;
            netconfig::set_up(tun.name())?;
            netconfig::add_point_to_point_ipv4(tun.name(), LOCAL, PEER)?;
            netconfig::add_ipv6_link_local(tun.name(), local6, peer6)?;
            netconfig::add_default_route(tun.name(), IpFamily::V4, METRIC)?;
            netconfig::add_default_route(tun.name(), IpFamily::V6, METRIC)?;
            std::io::Result::Ok((tun, kernel_named))
        })
        .expect("enter namespace")
        .expect("create and configure the TUN device");
    assert_eq!(tun.name(), IFNAME);
    assert!(
        kernel_named.name().starts_with("tun"),
        "{}",
        kernel_named.name()
    );
    drop(kernel_named);

    // What `ip` shows inside the namespace.
    let link = netns
        .ip(&["-o", "link", "show", "dev", IFNAME])
        .expect("ip link");
    assert!(link.contains("mtu 1400"), "{link}");
    assert!(link.contains(",UP"), "{link}");
    let addresses = netns
        .ip(&["-o", "addr", "show", "dev", IFNAME])
        .expect("ip addr");
    assert!(
        addresses.contains("inet 192.0.2.1 peer 192.0.2.2/32"),
        "{addresses}"
    );
    assert!(
        addresses.contains(&format!("inet6 {local6} peer {peer6}/128")),
        "{addresses}"
    );
    let routes = netns
        .ip(&["-4", "route", "show", "default"])
        .expect("ip route");
    assert!(
        routes.contains(&format!("default dev {IFNAME}")),
        "{routes}"
    );
    assert!(routes.contains(&format!("metric {METRIC}")), "{routes}");
    let routes6 = netns
        .ip(&["-6", "route", "show", "default"])
        .expect("ip -6 route");
    assert!(
        routes6.contains(&format!("default dev {IFNAME} metric {METRIC}")),
        "{routes6}"
    );

    // The DNS file, in a place the test names (never /etc/resolv.conf).
    let dns_dir = std::env::temp_dir().join(format!("ppp-tun-dns-{}", std::process::id()));
    std::fs::create_dir_all(&dns_dir).expect("temp dir");
    let dns_file: PathBuf = dns_dir.join("resolv.conf");
    let servers: [IpAddr; 2] = [
        Ipv4Addr::new(198, 51, 100, 53).into(),
        Ipv4Addr::new(198, 51, 100, 54).into(),
    ];
    netconfig::write_resolv_conf(&dns_file, &servers).expect("write DNS file");
    let text = std::fs::read_to_string(&dns_file).expect("read DNS file");
    assert!(
        text.contains("nameserver 198.51.100.53\nnameserver 198.51.100.54\n"),
        "{text}"
    );

    // A raw ICMP socket inside the namespace: an echo request through the TUN, answered by us.
    let icmp_socket = netns
        .run(|| Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)))
        .expect("enter namespace")
        .expect("raw ICMP socket");
    icmp_socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");

    runtime.block_on(async {
        tokio::time::timeout(TEST_TIMEOUT, async {
            let request = icmp::echo_request(LOCAL, PEER, 0x5050, 1, b"ppp-tokio tun test");
            let peer: SocketAddr = (PEER, 0).into();
            icmp_socket
                .send_to(&request[20..], &peer.into())
                .expect("send echo request");
            let waiter = tokio::task::spawn_blocking(move || {
                let mut buf = [0u8; 2048];
                loop {
                    let len = (&icmp_socket).read(&mut buf).expect("echo reply in time");
                    let bytes = &buf[..len];
                    if let Some(fields) = icmp::parse_echo_reply(bytes) {
                        return fields;
                    }
                }
            });
            let (answered, reply) = answer_pings_until(&tun, waiter).await;
            assert_eq!(answered, 1);
            assert_eq!(reply.expect("waiter"), (PEER, 0x5050, 1));

            // The real `ping`, if installed.
            if netns::has_program("ping") {
                let mut ping = tokio::process::Command::from(netns.command("ping"));
                ping.args(["-n", "-c", "1", "-W", "2", "-s", "1000", &PEER.to_string()])
                    .stdin(Stdio::null())
                    .kill_on_drop(true);
                let (answered, output) = answer_pings_until(&tun, ping.output()).await;
                let output = output.expect("run ping");
                assert!(
                    output.status.success(),
                    "ping failed: {}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                );
                assert_eq!(answered, 1);
            } else {
                eprintln!("no `ping` program: only the raw-socket echo was checked");
            }
        })
        .await
        .expect("the test timed out");
    });

    // Undo it all.
    netns
        .run(|| {
            netconfig::remove_default_route(IFNAME, IpFamily::V4, METRIC)?;
            netconfig::remove_default_route(IFNAME, IpFamily::V6, METRIC)?;
            netconfig::remove_ipv6_link_local(IFNAME, local6, peer6)?;
            netconfig::remove_point_to_point_ipv4(IFNAME, LOCAL, PEER)?;
            netconfig::set_down(IFNAME)
        })
        .expect("enter namespace")
        .expect("unconfigure");
    let routes = netns.ip(&["route", "show", "default"]).expect("ip route");
    assert!(routes.trim().is_empty(), "{routes}");
    let addresses = netns
        .ip(&["-o", "addr", "show", "dev", IFNAME])
        .expect("ip addr");
    assert!(!addresses.contains("192.0.2.1"), "{addresses}");
    // Removing twice reports ip's complaint.
    let error = netns
        .run(|| netconfig::remove_default_route(IFNAME, IpFamily::V4, METRIC))
        .expect("enter namespace")
        .expect_err("no such route");
    assert!(
        error.to_string().contains("ip -4 route del default"),
        "{error}"
    );
    netconfig::remove_resolv_conf(&dns_file).expect("remove DNS file");
    std::fs::remove_dir(&dns_dir).expect("remove temp dir");
    drop(tun);
    let links = netns.ip(&["-o", "link", "show"]).expect("ip link");
    assert!(
        !links.contains(IFNAME),
        "the device goes with its descriptor: {links}"
    );
}

/// `recv_batch` and `try_recv`: 40 UDP datagrams sent to the peer while nobody reads the device
/// come out in order, the first ones in one batch (at most the number asked for), the rest with
/// `try_recv`, and then `try_recv` finds nothing without waiting.
#[test]
fn queued_packets_come_out_in_batches() {
    if netns::skip_without_netns("queued_packets_come_out_in_batches") {
        return;
    }
    const DATAGRAMS: usize = 40;
    const BATCH: usize = 25;
    let netns = NetNs::create("ppp-tunb").expect("namespace");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let handle = runtime.handle().clone();
    let (tun, udp) = netns
        .run(|| {
            let _entered = handle.enter();
            let tun = TunDevice::create(Some("ppptunb"))?;
            netconfig::disable_ipv6_address_generation(tun.name())?;
            netconfig::set_up(tun.name())?;
            netconfig::add_point_to_point_ipv4(tun.name(), LOCAL, PEER)?;
            let udp = std::net::UdpSocket::bind((LOCAL, 0))?;
            std::io::Result::Ok((tun, udp))
        })
        .expect("enter namespace")
        .expect("TUN device and UDP socket");
    for i in 0..DATAGRAMS {
        udp.send_to(&[i as u8; 16], (PEER, 9)).expect("send");
    }
    // The UDP payload of an IPv4 packet without options.
    let payload = |packet: &[u8]| packet[28..].to_vec();
    runtime.block_on(async {
        tokio::time::timeout(TEST_TIMEOUT, async {
            let mut batch = ppp_tokio::tun::PacketBatch::default();
            let count = tun.recv_batch(&mut batch, BATCH).await.expect("recv_batch");
            assert_eq!(count, BATCH, "all were queued");
            assert_eq!(batch.len(), BATCH);
            let mut payloads: Vec<Vec<u8>> = batch.iter().map(payload).collect();
            let mut buf = vec![0; 2048];
            while let Some(len) = tun.try_recv(&mut buf).expect("try_recv") {
                payloads.push(payload(&buf[..len]));
            }
            let expected: Vec<Vec<u8>> = (0..DATAGRAMS).map(|i| vec![i as u8; 16]).collect();
            assert_eq!(payloads, expected);
            assert_eq!(tun.try_recv(&mut buf).expect("try_recv"), None);
        })
        .await
        .expect("the test timed out");
    });
}
