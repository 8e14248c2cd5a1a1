//! Two links driven by tokio over an in-memory byte stream: they come up, ping each other, and
//! the capture they write is read by tshark (when installed) without malformed packets.

use std::net::Ipv4Addr;
use std::time::Duration;

use ppp_ipcp::IpcpConfig;
use ppp_link::{Datagram, Link, LinkConfig, LinkEvent};
use ppp_tokio::{Capture, DriverEvent, StreamDriver, icmp};

const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

#[tokio::test]
async fn links_over_a_duplex_stream_ping_each_other() {
    let (a, b) = tokio::io::duplex(4096);
    let mut client_config = LinkConfig {
        seed: 1,
        ..LinkConfig::default()
    };
    client_config.lcp.allow.clear();
    let mut server_config = LinkConfig {
        seed: 2,
        ipcp: Some(IpcpConfig {
            remote_address: Some(CLIENT),
            ..IpcpConfig::server(SERVER, [None, None])
        }),
        ..LinkConfig::default()
    };
    server_config.lcp.allow.clear();

    let dir = std::env::temp_dir().join(format!("ppp-tokio-duplex-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("client.pcap");

    let server = tokio::spawn(async move {
        let mut driver = StreamDriver::new(Link::new(server_config), b);
        driver.start();
        loop {
            match driver.next().await.unwrap() {
                DriverEvent::Datagram(Datagram::Ipv4(packet)) => {
                    if let Some(reply) = icmp::echo_reply(&packet, SERVER) {
                        let now = std::time::Instant::now();
                        driver.link_mut().send_ipv4(now, &reply).unwrap();
                    }
                }
                DriverEvent::Link(LinkEvent::LinkDown { .. }) | DriverEvent::Closed => break,
                _ => {}
            }
        }
    });

    let mut driver = StreamDriver::new(Link::new(client_config), a);
    driver.set_capture(Capture::create(&pcap).unwrap());
    driver.start();
    let result = tokio::time::timeout(Duration::from_secs(20), async {
        let mut replies = 0;
        loop {
            match driver.next().await.unwrap() {
                DriverEvent::Link(LinkEvent::IpUp { local, peer, .. }) => {
                    assert_eq!((local, peer), (CLIENT, SERVER));
                    for seq in 1..=3 {
                        let now = std::time::Instant::now();
                        let ping =
                            icmp::echo_request(CLIENT, SERVER, 0x77, seq, b"across the link");
                        driver.link_mut().send_ipv4(now, &ping).unwrap();
                    }
                }
                DriverEvent::Datagram(Datagram::Ipv4(packet)) => {
                    assert_eq!(icmp::parse_echo_reply(&packet).map(|r| r.0), Some(SERVER));
                    replies += 1;
                    if replies == 3 {
                        driver.link_mut().close(std::time::Instant::now(), "done");
                    }
                }
                DriverEvent::Link(LinkEvent::LinkDown { reason }) => break (replies, reason),
                DriverEvent::Closed => break (replies, "closed".to_owned()),
                _ => {}
            }
        }
    })
    .await
    .expect("the session finishes in time");
    assert_eq!(result, (3, "done".to_owned()));
    drop(driver);
    server.await.unwrap();

    if std::process::Command::new("tshark")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipped the tshark check: tshark is not installed");
        return;
    }
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(!text.contains("Malformed"), "{text}");
    for expected in [
        "Configuration Request",
        "Configuration Ack",
        "IPCP",
        "Echo (ping) request",
        "Echo (ping) reply",
        "Termination Request",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
