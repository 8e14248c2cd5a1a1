//! Two links driven by tokio over an in-memory byte stream: they come up, ping each other, and
//! the capture they write is read by tshark (when installed) without malformed packets.

use std::net::Ipv4Addr;
use std::time::Duration;

use ppp_ipcp::IpcpConfig;
use ppp_link::{CloseReason, Datagram, DownReason, Link, LinkConfig, LinkEvent, Random};
use ppp_tokio::{Capture, DriverEvent, StreamDriver, icmp};

const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// A client and a server configuration without authentication.
fn configs() -> (LinkConfig, LinkConfig) {
    let mut client = LinkConfig::default();
    client.lcp.allow.clear();
    let mut server = LinkConfig {
        ipcp: Some(IpcpConfig {
            remote_address: Some(CLIENT),
            ..IpcpConfig::server(SERVER, [None, None])
        }),
        ..LinkConfig::default()
    };
    server.lcp.allow.clear();
    (client, server)
}

/// Answers pings until the link goes down; returns the link's frame counters.
async fn echo_server<S>(mut driver: StreamDriver<S>) -> ppp_link::LinkStats
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    driver.open();
    loop {
        match driver.next().await.unwrap() {
            DriverEvent::Datagram(Datagram::Ipv4(packet)) => {
                if let Some(reply) = icmp::echo_reply(&packet, SERVER) {
                    driver
                        .link_mut()
                        .send_ipv4(ppp_tokio::now(), &reply)
                        .unwrap();
                }
            }
            DriverEvent::Link(LinkEvent::LinkDown { .. }) | DriverEvent::Closed => {
                break driver.link().stats();
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn links_over_a_duplex_stream_ping_each_other() {
    let (a, b) = tokio::io::duplex(4096);
    let (client_config, server_config) = configs();
    let dir = std::env::temp_dir().join(format!("ppp-tokio-duplex-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("client.pcap");

    let server = tokio::spawn(echo_server(StreamDriver::new(
        Link::new(server_config, Random::seeded(2)),
        b,
    )));

    let mut driver = StreamDriver::new(Link::new(client_config, Random::seeded(1)), a);
    driver.set_capture(Capture::create(&pcap).unwrap());
    driver.open();
    let result = tokio::time::timeout(Duration::from_secs(20), async {
        let mut replies = 0;
        loop {
            match driver.next().await.unwrap() {
                DriverEvent::Link(LinkEvent::IpUp { local, peer, .. }) => {
                    assert_eq!((local, peer), (CLIENT, SERVER));
                    for seq in 1..=3 {
                        let now = ppp_tokio::now();
                        let ping =
                            icmp::echo_request(CLIENT, SERVER, 0x77, seq, b"across the link");
                        driver.link_mut().send_ipv4(now, &ping).unwrap();
                    }
                }
                DriverEvent::Datagram(Datagram::Ipv4(packet)) => {
                    assert_eq!(icmp::parse_echo_reply(&packet).map(|r| r.0), Some(SERVER));
                    replies += 1;
                    if replies == 3 {
                        let reason = CloseReason::from("done");
                        driver.link_mut().close(ppp_tokio::now(), reason);
                    }
                }
                DriverEvent::Link(LinkEvent::LinkDown { reason }) => break (replies, Some(reason)),
                DriverEvent::Closed => break (replies, None),
                _ => {}
            }
        }
    })
    .await
    .expect("the session finishes in time");
    assert_eq!(
        result,
        (3, Some(DownReason::Closed(CloseReason::from("done"))))
    );
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

/// `next` dropped over and over in a `select!` (a timer that keeps winning) while big frames go
/// through a pipe that takes 64 bytes at a time: every frame arrives whole (no FCS errors at the
/// peer) and every ping is answered.
#[tokio::test]
async fn next_is_cancel_safe_in_a_select() {
    let (a, b) = tokio::io::duplex(64);
    let (client_config, server_config) = configs();
    let server = tokio::spawn(echo_server(StreamDriver::new(
        Link::new(server_config, Random::seeded(4)),
        b,
    )));
    let mut driver = StreamDriver::new(Link::new(client_config, Random::seeded(3)), a);
    driver.open();
    let pings = 40u16;
    let mut cancelled = 0u64;
    let replies = tokio::time::timeout(Duration::from_secs(30), async {
        let mut replies = 0u16;
        loop {
            let event = tokio::select! {
                event = driver.next() => event.unwrap(),
                () = tokio::time::sleep(Duration::from_micros(20)) => {
                    cancelled += 1;
                    continue;
                }
            };
            match event {
                DriverEvent::Link(LinkEvent::IpUp { .. }) => {
                    for seq in 1..=pings {
                        let ping = icmp::echo_request(CLIENT, SERVER, 0x42, seq, &[0x7e; 1000]);
                        driver
                            .link_mut()
                            .send_ipv4(ppp_tokio::now(), &ping)
                            .unwrap();
                    }
                }
                DriverEvent::Datagram(Datagram::Ipv4(packet)) => {
                    assert!(icmp::parse_echo_reply(&packet).is_some());
                    replies += 1;
                    if replies == pings {
                        driver
                            .link_mut()
                            .close(ppp_tokio::now(), CloseReason::UserRequest);
                    }
                }
                DriverEvent::Link(LinkEvent::LinkDown { .. }) | DriverEvent::Closed => {
                    break replies;
                }
                _ => {}
            }
        }
    })
    .await
    .expect("the session finishes in time");
    assert_eq!(replies, pings);
    assert!(cancelled > 0, "the timer never interrupted next()");
    drop(driver);
    let stats = server.await.unwrap();
    assert_eq!(stats.framing.bad_fcs, 0, "{stats:?}");
}
