//! The real `dial-out` binary on a pty (the slave end, opened with tokio-serial like a real
//! port), the simulated modem on the master end, our ppp-server behind it; three pings across
//! with `--no-tun --ping 3`, and `dial-out monitor` on the control socket while it runs.
//!
//! Needs the example built (`cargo build --example dial-out`; a plain `cargo test` builds it);
//! skips otherwise.

#[path = "dialout_support.rs"]
mod support;

use std::process::Stdio;
use std::time::Duration;

use ppp_stack::dialout::{ServerEvent, SharedStatus};
use support::{PtyRig, example, pty_rig};
use tokio::sync::{mpsc, watch};
use tokio_serial::SerialPort as _;

#[tokio::test]
async fn dial_out_binary_over_a_pty() {
    let Some(dial_out) = example("dial-out") else {
        eprintln!(
            "skipping dial_out_binary_over_a_pty: build the example first (cargo build --example dial-out)"
        );
        return;
    };
    let PtyRig {
        slave,
        slave_path,
        mut server_events,
        shutdown: _shutdown,
    } = pty_rig(3);

    let socket = std::env::temp_dir().join(format!("dial-out-test-{}.sock", std::process::id()));
    let pcap = std::env::temp_dir().join(format!("dial-out-test-{}.pcap", std::process::id()));
    let child = tokio::process::Command::new(&dial_out)
        .args(["dial", "--port", &slave_path, "--flow-control", "none"])
        .args(["--apn", "internet", "--pin", "1234", "--user", "alice"])
        .args(["--password", "wonderland", "--no-tun", "--ping", "3", "-v"])
        .arg("--control-socket")
        .arg(&socket)
        .arg("--pcap")
        .arg(&pcap)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn dial-out");

    // While the link is up, ask the running program for its status.
    let up = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(event) = server_events.recv().await {
            if matches!(event, ServerEvent::IpUp { .. }) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(up, Ok(true), "the link did not come up");
    let monitor = tokio::process::Command::new(&dial_out)
        .args(["monitor", "--control-socket"])
        .arg(&socket)
        .output()
        .await
        .expect("dial-out monitor");
    let monitor = String::from_utf8_lossy(&monitor.stdout).into_owned();
    println!("--- dial-out monitor ---\n{monitor}");

    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("dial-out did not finish")
        .expect("dial-out output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("--- dial-out stdout ---\n{stdout}\n--- dial-out stderr ---\n{stderr}");
    assert!(
        output.status.success(),
        "dial-out failed: {}",
        output.status
    );
    assert!(stdout.contains("3 pings answered"), "{stdout}");
    assert!(
        stderr.contains("local  IP address 198.51.100.2"),
        "{stderr}"
    );
    assert!(stderr.contains("sent [LCP ConfReq"), "{stderr}");
    assert!(!stderr.contains("1234\""), "the PIN must not be logged");
    assert!(
        !stderr.contains("wonderland"),
        "the password must not be logged"
    );
    for expected in [
        "status: connected",
        "ipaddress: 198.51.100.2",
        "signal: -73dBm",
        "operator: SimNet",
    ] {
        assert!(
            monitor.contains(expected),
            "{expected:?} missing from\n{monitor}"
        );
    }
    // The capture has the pcap header and the packets (LCP to the Terminate-Ack).
    let capture = std::fs::read(&pcap).expect("pcap file");
    assert!(capture.len() > 24 + 10 * 16, "only {} bytes", capture.len());
    assert_eq!(&capture[..4], &0xa1b2_c3d4u32.to_le_bytes());
    let _ = std::fs::remove_file(&pcap);
    drop(slave);
}

#[tokio::test]
async fn server_binary_on_a_pty_null_modem() {
    use ppp_stack::dialout::{ClientConfig, ClientEvent, ClientIo, ClientOptions, run_client};
    let Some(dial_out) = example("dial-out") else {
        eprintln!(
            "skipping server_binary_on_a_pty_null_modem: build the example first (cargo build --example dial-out)"
        );
        return;
    };
    let (master, slave) = tokio_serial::SerialStream::pair().expect("pty pair");
    let slave_path = slave.name().expect("pty name");
    let dir = std::env::temp_dir().join(format!("dial-out-server-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let secrets = dir.join("chap-secrets");
    std::fs::write(&secrets, "carol * \"s3cret\" 198.51.100.33\n").expect("secrets");
    let config = dir.join("server.toml");
    std::fs::write(
        &config,
        "flow-control = \"none\"\nauthentication = [\"mschap2\", \"chap\"]\n\
         [profile]\nlocal-address = \"198.51.100.1\"\ndns-server = [\"198.51.100.53\"]\n",
    )
    .expect("config");
    let server = tokio::process::Command::new(&dial_out)
        .args([
            "server",
            "--null-modem",
            "--once",
            "-v",
            "--port",
            &slave_path,
        ])
        .arg("--config")
        .arg(&config)
        .arg("--chap-secrets")
        .arg(&secrets)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn dial-out server");
    // Give the server a moment to open the port before the client talks.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let client = ClientConfig::parse(
        "port = \"pty\"\nnull-modem = true\nuser = \"carol\"\npassword = \"s3cret\"\n",
    )
    .expect("client config");
    let (outbound, outbound_rx) = mpsc::channel(4);
    let (inbound_tx, mut inbound) = mpsc::channel(4);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let client_task = tokio::spawn(async move {
        let io = ClientIo {
            outbound: outbound_rx,
            inbound: inbound_tx,
            events: events_tx,
            shutdown: shutdown_rx,
        };
        let options = ClientOptions {
            pcap: None,
            random: Some(ppp_link::Random::seeded(1)),
        };
        run_client(&client, master, io, SharedStatus::new(), options).await
    });
    let local = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(event) = events.recv().await {
            if let ClientEvent::IpUp { local, .. } = event {
                return Some(local);
            }
        }
        None
    })
    .await
    .expect("no IPCP up")
    .expect("client gone");
    assert_eq!(local, std::net::Ipv4Addr::new(198, 51, 100, 33));
    let server_addr = std::net::Ipv4Addr::new(198, 51, 100, 1);
    outbound
        .send(ppp_tokio::icmp::echo_request(
            local,
            server_addr,
            1,
            1,
            b"hi",
        ))
        .await
        .expect("send");
    let reply = tokio::time::timeout(Duration::from_secs(5), inbound.recv())
        .await
        .expect("no echo reply")
        .expect("client gone");
    let ppp_link::Datagram::Ipv4(reply) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(
        ppp_tokio::icmp::parse_echo_reply(&reply),
        Some((server_addr, 1, 1))
    );
    // Hang up: the server sees the Terminate-Request and exits (--once).
    shutdown.send(true).expect("shutdown");
    let _ = tokio::time::timeout(Duration::from_secs(10), client_task)
        .await
        .expect("client stops");
    let output = tokio::time::timeout(Duration::from_secs(20), server.wait_with_output())
        .await
        .expect("server did not exit")
        .expect("server output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("--- dial-out server stderr ---\n{stderr}");
    assert!(output.status.success(), "server exit: {}", output.status);
    assert!(
        stderr.matches("peer authenticated as \"carol\"").count() == 1,
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "the secret must not be logged");
    let _ = std::fs::remove_dir_all(&dir);
    drop(slave);
}
