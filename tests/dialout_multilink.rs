//! Several ports in one Multilink bundle: the dial-out client with two lines, each through its
//! own simulated modem (own modem sequence), against our ppp-server on two null-modem ports
//! (`run_multiport_server`, one `LinkTable`). Both lines join one bundle on both sides; a
//! 3000-byte ping crosses in fragments; the network drops one call, the bundle carries on over
//! the other line, the dropped line is redialled (`persist`) and joins again; `monitor` shows
//! the members; a second peer gets a bundle of its own.

#[path = "dialout_support.rs"]
mod support;

use std::net::Ipv4Addr;
use std::time::Duration;

use ppp_link::Datagram;
use ppp_modem::sim::SimConfig;
use ppp_stack::dialout::{
    CallEnd, ClientConfig, ClientEvent, ClientIo, ClientOptions, ServerConfig, ServerEvent,
    ServerIo, ServerOptions, SharedStatus, run_bundle_client, run_multiport_server,
};
use ppp_tokio::serial::{DtrStream, bridge_modem, dtr_line};
use support::{ScriptedSim, sim_config};
use tokio::sync::{mpsc, watch};

const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Two lines: a cellular modem (PIN, APN) and an analog one (`ATDT`), CHAP as `user`.
fn client_config(user: &str) -> ClientConfig {
    ClientConfig::parse(&format!(
        r#"
        user = "{user}"
        password = "wonderland"
        persist = true
        holdoff = 0.5
        escape-guard-time = 0.2
        mrru = 4000
        lcp-echo-interval = 1
        [[line]]
        port = "sim0"
        apn = "internet"
        pin = "1234"
        [[line]]
        port = "sim1"
        phone = "5551234"
        "#
    ))
    .expect("client config")
}

/// Our server on `ports` null-modem lines, CHAP, alice and bob with their own addresses, MRRU
/// 4000 (what our client's bundle may send).
fn server_config(ports: usize) -> ServerConfig {
    let mut text = String::from(
        r#"
        null-modem = true
        name = "sim-server"
        authentication = ["chap"]
        lcp-echo-interval = 1
        mrru = 4000
        [profile]
        local-address = "198.51.100.1"
        remote-address = "198.51.100.2"
        [[secret]]
        name = "alice"
        password = "wonderland"
        address = "198.51.100.2"
        [[secret]]
        name = "bob"
        password = "wonderland"
        address = "198.51.100.3"
        "#,
    );
    for port in 0..ports {
        text.push_str(&format!("[[line]]\nport = \"srv{port}\"\n"));
    }
    ServerConfig::parse(&text).expect("server config")
}

type ClientLine = DtrStream<tokio::io::DuplexStream>;

/// One line: client side (with DTR), the simulated modem, and the server's side.
fn line(sims: Vec<SimConfig>) -> (ClientLine, tokio::io::DuplexStream) {
    let (client_line, modem_host) = tokio::io::duplex(64 * 1024);
    let (client_line, dtr) = dtr_line(client_line);
    let (modem_peer, server_line) = tokio::io::duplex(64 * 1024);
    tokio::spawn(bridge_modem(
        ScriptedSim::new(sims),
        modem_host,
        modem_peer,
        Some(dtr),
    ));
    (client_line, server_line)
}

struct Client {
    task: tokio::task::JoinHandle<
        Result<ppp_stack::dialout::ClientExit, ppp_stack::dialout::DialOutError>,
    >,
    events: mpsc::UnboundedReceiver<ClientEvent>,
    outbound: mpsc::Sender<Vec<u8>>,
    inbound: mpsc::Receiver<Datagram>,
    status: SharedStatus,
    shutdown: watch::Sender<bool>,
}

fn client(config: ClientConfig, ports: Vec<ClientLine>, seed: u64) -> Client {
    client_with_pcap(config, ports, seed, None)
}

fn client_with_pcap(
    config: ClientConfig,
    ports: Vec<ClientLine>,
    seed: u64,
    pcap: Option<std::path::PathBuf>,
) -> Client {
    let (outbound, outbound_rx) = mpsc::channel(16);
    let (inbound_tx, inbound) = mpsc::channel(16);
    let (events_tx, events) = mpsc::unbounded_channel();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let status = SharedStatus::new();
    let io = ClientIo {
        outbound: outbound_rx,
        inbound: inbound_tx,
        events: events_tx,
        shutdown: shutdown_rx,
    };
    let task = tokio::spawn({
        let status = status.clone();
        async move {
            let options = ClientOptions {
                pcap,
                random: Some(ppp_link::Random::seeded(seed)),
            };
            run_bundle_client(&config, ports, io, status, options).await
        }
    });
    Client {
        task,
        events,
        outbound,
        inbound,
        status,
        shutdown,
    }
}

/// The next client event matching `matches` within `limit`.
async fn expect(
    client: &mut Client,
    limit: Duration,
    mut matches: impl FnMut(&ClientEvent) -> bool,
) -> ClientEvent {
    let mut seen = Vec::new();
    let result = tokio::time::timeout(limit, async {
        while let Some(event) = client.events.recv().await {
            if matches(&event) {
                return Some(event);
            }
            seen.push(event);
        }
        None
    })
    .await;
    match result {
        Ok(Some(event)) => event,
        other => panic!("expected event not seen ({other:?}); events: {seen:#?}"),
    }
}

/// Echo requests until one is answered within 2 s, at most `tries`; the sequence numbers used.
/// (Right after a line drops, the server sends on it until its LCP echoes find it dead: a reply
/// that loses a fragment there is lost, as in a real network.)
async fn ping_until_answered(client: &mut Client, local: Ipv4Addr, first_seq: u16, tries: u16) {
    for seq in first_seq..first_seq + tries {
        let request = ppp_tokio::icmp::echo_request(local, SERVER, 0x3000, seq, &[0x5a; 2972]);
        client.outbound.send(request).await.expect("client gone");
        let answered = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(datagram) = client.inbound.recv().await {
                if let Datagram::Ipv4(packet) = datagram
                    && ppp_tokio::icmp::parse_echo_reply(&packet) == Some((SERVER, 0x3000, seq))
                {
                    return true;
                }
            }
            false
        })
        .await;
        if answered == Ok(true) {
            return;
        }
    }
    panic!("none of {tries} pings answered");
}

/// A `len`-byte echo request from `local` to the server, and its reply.
async fn big_ping(client: &mut Client, local: Ipv4Addr, seq: u16, len: usize) {
    let payload = vec![0x5a; len - 28];
    let request = ppp_tokio::icmp::echo_request(local, SERVER, 0x3000, seq, &payload);
    assert_eq!(request.len(), len);
    client.outbound.send(request).await.expect("client gone");
    let reply = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match client.inbound.recv().await {
                Some(Datagram::Ipv4(packet)) => {
                    if let Some(reply) = ppp_tokio::icmp::parse_echo_reply(&packet) {
                        return Some((reply, packet.len()));
                    }
                }
                Some(_) => {}
                None => return None,
            }
        }
    })
    .await
    .expect("no echo reply within 5 s")
    .expect("client gone");
    assert_eq!(reply, ((SERVER, 0x3000, seq), len));
}

#[tokio::test]
async fn two_lines_one_bundle_a_line_drops_and_is_redialled() {
    init_logs();
    // Line 2's first call is dropped by the network after 6 s; its redial stays up.
    let mut dropped = sim_config(None);
    dropped.drop_call_after = Some(Duration::from_secs(6));
    let (client0, server0) = line(vec![sim_config(Some("1234"))]);
    let (client1, server1) = line(vec![dropped, sim_config(None)]);

    let (server_events_tx, mut server_events) = mpsc::unbounded_channel();
    let (server_stop, server_stop_rx) = watch::channel(false);
    let server_status = SharedStatus::new();
    let server = tokio::spawn({
        let status = server_status.clone();
        let io = ServerIo {
            outbound: None,
            inbound: None,
            events: server_events_tx,
            shutdown: server_stop_rx,
        };
        async move {
            run_multiport_server(
                &server_config(2),
                vec![server0, server1],
                io,
                status,
                ServerOptions::new(ppp_link::Random::seeded(9)),
            )
            .await
        }
    });

    let pcap = std::env::temp_dir().join(format!("dialout-multilink-{}.pcap", std::process::id()));
    let mut client = client_with_pcap(
        client_config("alice"),
        vec![client0, client1],
        21,
        Some(pcap.clone()),
    );
    let up = expect(&mut client, Duration::from_secs(20), |e| {
        matches!(e, ClientEvent::IpUp { .. })
    })
    .await;
    let ClientEvent::IpUp { local, mtu, .. } = up else {
        unreachable!()
    };
    assert_eq!(local, Ipv4Addr::new(198, 51, 100, 2));
    assert_eq!(mtu, 4000, "the bundle's MTU is the peer's MRRU");
    expect(&mut client, Duration::from_secs(10), |e| {
        matches!(e, ClientEvent::LineJoined { members: 2, .. })
    })
    .await;
    // Fragments of a 3000-byte packet cross both lines, both ways.
    for seq in 1..=3 {
        big_ping(&mut client, local, seq, 3000).await;
    }
    let monitor = client.status.render();
    println!("{monitor}");
    for needle in [
        "members: 2 of 2 lines in the bundle",
        "line-1: sim0 status=connected",
        "line-2: sim1 status=connected",
        "multilink=joined",
        "mrru: 4000",
    ] {
        assert!(
            monitor.contains(needle),
            "{needle:?} missing from\n{monitor}"
        );
    }
    let server_monitor = server_status.render();
    println!("{server_monitor}");
    assert!(
        server_monitor.contains("unit=bundle-1") && server_monitor.contains("peer-name=alice"),
        "{server_monitor}"
    );

    // The network drops line 2's call: the bundle carries on over line 1.
    let ended = expect(&mut client, Duration::from_secs(15), |e| {
        matches!(e, ClientEvent::LineEnded { line: 1, .. })
    })
    .await;
    assert!(
        matches!(
            ended,
            ClientEvent::LineEnded {
                reason: CallEnd::CarrierLost,
                retry_in: Some(_),
                ..
            }
        ),
        "{ended:?}"
    );
    ping_until_answered(&mut client, local, 10, 8).await;
    // Redialled, it joins again.
    expect(&mut client, Duration::from_secs(20), |e| {
        matches!(
            e,
            ClientEvent::LineJoined {
                line: 1,
                members: 2
            }
        )
    })
    .await;
    ping_until_answered(&mut client, local, 20, 8).await;
    let snapshot = client.status.snapshot();
    assert_eq!(snapshot.members[1].attempts, 2, "{snapshot:?}");

    // The server authenticated alice on three calls, all in one bundle.
    let mut names = 0;
    while let Ok(event) = server_events.try_recv() {
        if matches!(event, ServerEvent::Authenticated { ref peer_name } if peer_name.as_deref() == Some("alice"))
        {
            names += 1;
        }
    }
    assert!(names >= 3, "server authenticated alice {names} times");

    client.shutdown.send(true).expect("stop");
    let exit = tokio::time::timeout(Duration::from_secs(30), client.task)
        .await
        .expect("client stops")
        .expect("no panic");
    assert!(exit.is_ok(), "{exit:?}");
    server_stop.send(true).expect("stop");
    let _ = tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("server stops");
    tshark_dissects(&pcap);
    let _ = std::fs::remove_file(&pcap);
}

/// tshark reads the client's capture (every line's frames, MP fragments included) with no
/// malformed packet; skipped without tshark.
fn tshark_dissects(pcap: &std::path::Path) {
    let Ok(output) = std::process::Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .arg("-V")
        .output()
    else {
        println!("skipped: tshark is not installed (apt-get install tshark)");
        return;
    };
    assert!(output.status.success(), "tshark failed: {output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains("Malformed"), "{text}");
    for needle in [
        "PPP Multilink Protocol",
        "Multilink MRRU",
        "Multilink Endpoint Discriminator",
        "Internet Control Message Protocol",
    ] {
        assert!(
            text.contains(needle),
            "{needle:?} not in tshark's dissection"
        );
    }
    let frames = text.matches("\nFrame ").count();
    println!("tshark dissected {frames} frames, none malformed");
}

/// Two peers on four server ports: each gets its own bundle and its own address.
#[tokio::test]
async fn the_server_keeps_each_peer_in_its_own_bundle() {
    init_logs();
    let mut server_ports = Vec::new();
    let mut alice_ports = Vec::new();
    let mut bob_ports = Vec::new();
    for index in 0..4 {
        let (client_line, server_line) = line(vec![sim_config(None)]);
        server_ports.push(server_line);
        if index < 2 {
            alice_ports.push(client_line);
        } else {
            bob_ports.push(client_line);
        }
    }
    let (server_events_tx, _server_events) = mpsc::unbounded_channel();
    let (server_stop, server_stop_rx) = watch::channel(false);
    let server_status = SharedStatus::new();
    let server = tokio::spawn({
        let status = server_status.clone();
        let io = ServerIo {
            outbound: None,
            inbound: None,
            events: server_events_tx,
            shutdown: server_stop_rx,
        };
        async move {
            run_multiport_server(
                &server_config(4),
                server_ports,
                io,
                status,
                ServerOptions::new(ppp_link::Random::seeded(19)),
            )
            .await
        }
    });
    let analog = |user: &str| {
        let mut config = client_config(user);
        for line in &mut config.line {
            line.apn = None;
            line.pin = None;
            line.phone = Some("5551234".into());
        }
        config
    };
    let mut alice = client(analog("alice"), alice_ports, 31);
    let mut bob = client(analog("bob"), bob_ports, 32);
    for (peer, address) in [
        (&mut alice, Ipv4Addr::new(198, 51, 100, 2)),
        (&mut bob, Ipv4Addr::new(198, 51, 100, 3)),
    ] {
        expect(peer, Duration::from_secs(20), |e| {
            matches!(e, ClientEvent::LineJoined { members: 2, .. })
        })
        .await;
        big_ping(peer, address, 1, 3000).await;
    }
    let monitor = server_status.render();
    println!("{monitor}");
    let units: Vec<&str> = monitor
        .lines()
        .filter_map(|l| l.split(" unit=").nth(1))
        .map(|rest| rest.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(units.len(), 4, "{monitor}");
    assert_eq!(units[0], units[1], "{monitor}");
    assert_eq!(units[2], units[3], "{monitor}");
    assert_ne!(units[0], units[2], "{monitor}");
    for peer in [alice, bob] {
        peer.shutdown.send(true).expect("stop");
        let exit = tokio::time::timeout(Duration::from_secs(30), peer.task)
            .await
            .expect("client stops")
            .expect("no panic");
        assert!(exit.is_ok(), "{exit:?}");
    }
    server_stop.send(true).expect("stop");
    let _ = tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("server stops");
}

#[test]
fn line_tables_inherit_the_top_level_and_default_the_mrru() {
    let config = ClientConfig::parse(
        "user = \"u\"\nbaud-rate = 57600\napn = \"top\"\n[[line]]\nport = \"/dev/ttyUSB0\"\n\
         [[line]]\nport = \"/dev/ttyUSB2\"\napn = \"other\"\nbaud-rate = 9600\nnull-modem = true\n",
    )
    .expect("parses");
    assert!(config.is_bundle());
    let lines = config.lines().expect("lines");
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].port, "/dev/ttyUSB0");
    assert_eq!(lines[0].apn.as_deref(), Some("top"));
    assert_eq!(lines[0].baud_rate, 57600);
    assert_eq!(lines[1].apn.as_deref(), Some("other"));
    assert_eq!(lines[1].baud_rate, 9600);
    assert!(lines[1].null_modem && !lines[0].null_modem);
    assert_eq!(config.link_config().expect("link").lcp.mrru, Some(1500));
    assert!(
        ClientConfig::parse("port = \"/dev/ttyS0\"\n[[line]]\nport = \"/dev/ttyS1\"\n")
            .expect("parses")
            .lines()
            .is_err(),
        "port and [[line]] together"
    );
    assert!(
        ClientConfig::parse("[[line]]\nphone = \"1\"\n")
            .expect("parses")
            .lines()
            .is_err(),
        "a line without a port"
    );
    // One port: as before, MP only with an explicit mrru.
    let single = ClientConfig::parse("port = \"/dev/ttyS0\"").expect("parses");
    assert_eq!(single.lines().expect("lines").len(), 1);
    assert_eq!(single.link_config().expect("link").lcp.mrru, None);
    let server =
        ServerConfig::parse("[[line]]\nport = \"a\"\n[[line]]\nport = \"b\"\nring-count = 3\n")
            .expect("parses");
    let lines = server.lines().expect("lines");
    assert_eq!(lines[1].ring_count, 3);
    assert_eq!(server.link_config().expect("link").lcp.mrru, Some(1500));
}
