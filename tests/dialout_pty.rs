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

use ppp_stack::dialout::ServerEvent;
use support::{
    Caller, PtyRig, assert_operator_logs, call_on, example, ip_up, pty_rig, pty_rig_with,
    server_config,
};
use tokio::sync::mpsc;
use tokio_serial::SerialPort as _;

/// The lines an operator sees without `-v` (INFO, WARN, ERROR), joined.
fn info_lines(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|line| !line.contains(" DEBUG ") && !line.contains(" TRACE "))
        .collect::<Vec<_>>()
        .join("\n")
}

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
    assert_eq!(output.status.code(), Some(0));
    // Each event once: the link says "LCP up" and "IPCP up", the program does not repeat it.
    let info = info_lines(&stderr);
    assert_eq!(info.matches("LCP up").count(), 1, "{info}");
    assert_eq!(
        info.matches("IPCP up: local 198.51.100.2 remote 198.51.100.1")
            .count(),
        1,
        "{info}"
    );
    assert_eq!(info.matches("link down").count(), 1, "{info}");
    assert_operator_logs(&stderr);
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
    let pcap = dir.join("server.pcap");
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
            "--no-tun",
            "--once",
            "-v",
            "--port",
            &slave_path,
        ])
        .arg("--config")
        .arg(&config)
        .arg("--chap-secrets")
        .arg(&secrets)
        .arg("--pcap")
        .arg(&pcap)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn dial-out server");
    // Give the server a moment to open the port before the client talks.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let Caller {
        task: client_task,
        outbound,
        mut inbound,
        mut events,
        shutdown,
    } = call_on(
        "port = \"pty\"\nnull-modem = true\nuser = \"carol\"\npassword = \"s3cret\"\n",
        master,
        1,
    );
    let local = ip_up(&mut events, Duration::from_secs(20))
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
    let info = info_lines(&stderr);
    assert_eq!(info.matches("link down").count(), 1, "{info}");
    assert!(
        info.matches("cannot set DTR").count() <= 1,
        "warned more than once: {info}"
    );
    assert!(
        !stderr.contains("cannot set DTR: "),
        "the warning names the port: {stderr}"
    );
    assert_operator_logs(&stderr);
    // --pcap: the call's packets, LCP to the Terminate exchange.
    let capture = std::fs::read(&pcap).expect("the server's pcap file");
    assert!(capture.len() > 24 + 10 * 16, "only {} bytes", capture.len());
    assert!(!stderr.contains("s3cret"), "the secret must not be logged");
    let _ = std::fs::remove_dir_all(&dir);
    drop(slave);
}

/// Runs `dial-out dial` on the rig's pty with `args` after the usual ones, within `limit`.
async fn dial_out_on(
    dial_out: &std::path::Path,
    rig: &PtyRig,
    args: &[&str],
    limit: Duration,
) -> std::process::Output {
    let child = tokio::process::Command::new(dial_out)
        .args(["dial", "--port", &rig.slave_path, "--flow-control", "none"])
        .args(["--apn", "internet", "--pin", "1234", "--user", "alice"])
        .args(["--no-tun"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn dial-out");
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .expect("dial-out did not finish in time")
        .expect("dial-out output");
    println!(
        "--- dial-out {args:?}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[tokio::test]
async fn ping_retries_a_lost_echo_and_succeeds() {
    let Some(dial_out) = example("dial-out") else {
        eprintln!("skipping: build the example first (cargo build --example dial-out)");
        return;
    };
    // The server hands the caller's datagrams to us: we drop the first echo request (as pppd's
    // ppp0 not yet up does) and answer the others.
    let (to_caller, outbound) = mpsc::channel(8);
    let (inbound, mut from_caller) = mpsc::channel(8);
    let rig = pty_rig_with(5, server_config(), Some((outbound, inbound)));
    tokio::spawn(async move {
        let mut seen = 0;
        while let Some(datagram) = from_caller.recv().await {
            let ppp_link::Datagram::Ipv4(packet) = datagram else {
                continue;
            };
            seen += 1;
            if seen == 1 {
                continue;
            }
            let server = std::net::Ipv4Addr::new(198, 51, 100, 1);
            if let Some(reply) = ppp_tokio::icmp::echo_reply(&packet, server) {
                let _ = to_caller.send(reply).await;
            }
        }
    });
    // The password from a file, as operators should give it (`--password` shows in `ps`).
    let password_file = std::env::temp_dir().join(format!("dial-out-{}.pass", std::process::id()));
    std::fs::write(&password_file, "wonderland\n").expect("write the password file");
    let args = [
        "--password-file",
        password_file.to_str().expect("a UTF-8 path"),
        "--ping",
        "2",
        "--ping-timeout",
        "0.5",
    ];
    let output = dial_out_on(&dial_out, &rig, &args, Duration::from_secs(30)).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("no reply to icmp_seq=1"), "{stdout}");
    assert!(
        stdout.contains("reply from 198.51.100.1: icmp_seq=2"),
        "{stdout}"
    );
    assert!(stdout.contains("2 pings answered (3 sent)"), "{stdout}");
    std::fs::remove_file(&password_file).ok();
}

#[tokio::test]
async fn unanswered_pings_end_at_the_deadline_with_exit_30() {
    let Some(dial_out) = example("dial-out") else {
        eprintln!("skipping: build the example first (cargo build --example dial-out)");
        return;
    };
    let mut server = server_config();
    server.answer_ping = false;
    let rig = pty_rig_with(6, server, None);
    let args = [
        "--password",
        "wonderland",
        "--ping",
        "2",
        "--ping-timeout",
        "0.3",
        "--ping-deadline",
        "2",
    ];
    let started = std::time::Instant::now();
    let output = dial_out_on(&dial_out, &rig, &args, Duration::from_secs(30)).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(30), "{stderr}");
    assert!(
        stdout.contains("0 of 2 pings answered within 2 s"),
        "{stdout}"
    );
    assert!(stderr.contains("0 of "), "the error says why: {stderr}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_operator_logs(&stderr);
}

#[tokio::test]
async fn a_rejected_password_exits_19_and_says_why() {
    let Some(dial_out) = example("dial-out") else {
        eprintln!("skipping: build the example first (cargo build --example dial-out)");
        return;
    };
    let rig = pty_rig(7);
    let args = ["--password", "wrong", "--ping", "1"];
    let output = dial_out_on(&dial_out, &rig, &args, Duration::from_secs(30)).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(19), "{stderr}");
    let info = info_lines(&stderr);
    assert!(
        info.contains("link down: authentication to the peer failed (chap MD5)"),
        "{info}"
    );
    assert_eq!(
        info.matches("authentication to the peer failed").count(),
        1,
        "said once: {info}"
    );
    assert!(info.contains("exit status 19"), "{info}");
    assert_operator_logs(&stderr);
}

#[tokio::test]
async fn dial_flags_reach_the_link() {
    let Some(dial_out) = example("dial-out") else {
        eprintln!("skipping: build the example first (cargo build --example dial-out)");
        return;
    };
    let mut server = server_config();
    server.profile.use_ipv6 = true;
    server.profile.use_compression = true;
    let rig = pty_rig_with(8, server, None);
    let args = [
        "--password",
        "wonderland",
        "--use-ipv6",
        "--use-compression",
        "--use-encryption",
        "yes",
        "--lcp-echo-interval",
        "1",
        "--ignore-dcd",
        "--ping",
        "10",
        "-v",
    ];
    let output = dial_out_on(&dial_out, &rig, &args, Duration::from_secs(40)).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("IPV6CP up"), "--use-ipv6: {stderr}");
    assert!(
        stderr.contains("INFO CCP up: transmit Deflate 15"),
        "--use-compression: {stderr}"
    );
    assert!(
        stderr.contains("sent [LCP EchoReq"),
        "--lcp-echo-interval: {stderr}"
    );
    assert_operator_logs(&stderr);
}

#[tokio::test]
async fn server_once_exits_11_when_the_caller_fails_to_authenticate() {
    let Some(dial_out) = example("dial-out") else {
        eprintln!("skipping: build the example first (cargo build --example dial-out)");
        return;
    };
    let (master, slave) = tokio_serial::SerialStream::pair().expect("pty pair");
    let slave_path = slave.name().expect("pty name");
    let dir = std::env::temp_dir().join(format!("dial-out-server-11-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let secrets = dir.join("chap-secrets");
    std::fs::write(&secrets, "carol * \"s3cret\" 198.51.100.33\n").expect("secrets");
    let server = tokio::process::Command::new(&dial_out)
        .args(["server", "--null-modem", "--no-tun", "--once"])
        .args(["--port", &slave_path])
        .args(["--flow-control", "none"])
        .arg("--chap-secrets")
        .arg(&secrets)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn dial-out server");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let caller = call_on(
        "port = \"pty\"\nnull-modem = true\nuser = \"carol\"\npassword = \"wrong\"\n",
        master,
        2,
    );
    let result = tokio::time::timeout(Duration::from_secs(30), caller.task)
        .await
        .expect("client hung")
        .expect("client task");
    assert_eq!(result.expect_err("rejected").exit_status().code(), 19);
    let output = tokio::time::timeout(Duration::from_secs(20), server.wait_with_output())
        .await
        .expect("server did not exit")
        .expect("server output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("--- dial-out server stderr ---\n{stderr}");
    assert_eq!(output.status.code(), Some(11), "{stderr}");
    assert_operator_logs(&stderr);
    let _ = std::fs::remove_dir_all(&dir);
    drop(slave);
}

#[tokio::test]
async fn errors_name_their_object_and_exit_by_cause() {
    let Some(dial_out) = example("dial-out") else {
        eprintln!("skipping: build the example first (cargo build --example dial-out)");
        return;
    };
    let (_master, slave) = tokio_serial::SerialStream::pair().expect("pty pair");
    let pty = slave.name().expect("pty name");
    let missing = std::env::temp_dir().join(format!("dial-out-missing-{}", std::process::id()));
    let pcap = missing.join("x.pcap").display().to_string();
    let socket = missing.join("x.sock").display().to_string();
    let config = missing.join("x.toml").display().to_string();
    let cases: [(&[&str], i32, &str); 5] = [
        (&["dial", "--port", "/dev/ttyNOSUCH9"], 7, "/dev/ttyNOSUCH9"),
        (
            &["dial", "--port", &pty, "--no-tun", "--pcap", &pcap],
            1,
            &pcap,
        ),
        (
            &[
                "server",
                "--port",
                &pty,
                "--no-tun",
                "--control-socket",
                &socket,
            ],
            1,
            &socket,
        ),
        (&["dial", "--config", &config], 2, &config),
        // --ping needs --no-tun (clap's usage error).
        (&["dial", "--port", &pty, "--ping", "2"], 2, "--no-tun"),
    ];
    for (args, code, object) in cases {
        let output = tokio::time::timeout(
            Duration::from_secs(20),
            tokio::process::Command::new(&dial_out)
                .args(args)
                .args(["--flow-control", "none"])
                .stdin(Stdio::null())
                .output(),
        )
        .await
        .expect("dial-out did not finish")
        .expect("dial-out output");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(
            stderr.contains(object),
            "{args:?} must name {object}: {stderr}"
        );
        assert_operator_logs(&stderr);
    }
    drop(slave);
}
