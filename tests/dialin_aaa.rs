//! The dial-in server (`dial-out server`) with RADIUS: a dial-out client calls through the
//! simulated modem (in memory), the server authenticates it through a FreeRADIUS 3.2 on
//! loopback, accounts the call (NAS-Port-Type Async), ends it on a Disconnect-Request from
//! `radclient` and on RADIUS's Session-Timeout, with the right Acct-Terminate-Cause.
//!
//! Skips (with the reason) where freeradius and radclient are not installed, unless
//! `PPP_FREERADIUS_REQUIRED=1`.

#[path = "dialout_support.rs"]
mod support;

use std::io::Write as _;
use std::net::{Ipv4Addr, UdpSocket};
use std::process::Stdio;
use std::time::{Duration, Instant};

use ppp_stack::dialout::{ClientEvent, ServerConfig, ServerEvent};
use ppp_tokio::freeradius::{self, FreeRadius, SECRET};
use support::{client_config, expect_client_event, ping, rig, sim_config};

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

const USERS: &str = r#"alice	Cleartext-Password := "wonderland"
	Reply-Message = "Welcome to the dial-in",
	Mikrotik-Rate-Limit = "64k/64k"

timed	Cleartext-Password := "wonderland"
	Session-Timeout = 2

DEFAULT	Auth-Type := Reject
"#;

fn server(fr: &FreeRadius, dae_port: u16) -> ServerConfig {
    ServerConfig::parse(&format!(
        r#"
        port = "/dev/ttyS9"
        null-modem = true
        name = "dialin"
        authentication = ["chap"]
        lcp-echo-interval = 0
        [profile]
        local-address = "198.51.100.1"
        remote-address = "198.51.100.2"
        [aaa]
        use-radius = true
        [radius]
        timeout = "300ms"
        retries = 2
        [[radius.servers]]
        address = "127.0.0.1"
        secret = "{SECRET}"
        authentication-port = {}
        accounting-port = {}
        [radius.incoming]
        accept = true
        address = "127.0.0.1"
        port = {dae_port}
        "#,
        fr.auth.port(),
        fr.acct.port(),
    ))
    .expect("server config")
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn radclient(port: u16, kind: &str, attributes: &str) -> String {
    let mut child = std::process::Command::new("radclient")
        .args(["-x", "-r", "1", "-t", "2"])
        .arg(format!("127.0.0.1:{port}"))
        .args([kind, SECRET])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("radclient");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(format!("{attributes}, Message-Authenticator = 0x00\n").as_bytes())
        .expect("radclient input");
    drop(stdin);
    let out = child.wait_with_output().expect("radclient output");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn field<'a>(record: &'a str, key: &str) -> Option<&'a str> {
    record.lines().find_map(|line| {
        let (k, v) = line.trim().split_once(" = ")?;
        (k == key).then(|| v.trim_matches('"'))
    })
}

/// Waits for a detail record of `user` with `status` (bounded).
async fn record(fr: &FreeRadius, user: &str, status: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(r) = fr
            .detail_records_with(&format!("User-Name = \"{user}\""))
            .into_iter()
            .find(|r| field(r, "Acct-Status-Type") == Some(status))
        {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "no {status} for {user}:\n{}",
            fr.detail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn dial_in_server_through_freeradius() {
    if freeradius::skip("dial_in_server_through_freeradius") {
        return;
    }
    let fr = FreeRadius::start(USERS).expect("FreeRADIUS");

    // alice: RADIUS accepts (no local secret), the call is accounted, a Disconnect-Request
    // ends it.
    let dae = free_port();
    let mut call = rig(
        vec![sim_config(Some("1234"))],
        client_config(),
        server(&fr, dae),
    );
    expect_client_event(&mut call, Duration::from_secs(20), |e| {
        matches!(e, ClientEvent::IpUp { .. })
    })
    .await;
    let start = record(&fr, "alice", "Start").await;
    assert_eq!(field(&start, "NAS-Port-Type"), Some("Async"), "{start}");
    assert_eq!(field(&start, "NAS-Port-Id"), Some("/dev/ttyS9"), "{start}");
    assert_eq!(field(&start, "Acct-Authentic"), Some("RADIUS"), "{start}");
    ping(&mut call, CLIENT, SERVER, 1).await;
    let answer =
        tokio::task::spawn_blocking(move || radclient(dae, "disconnect", "User-Name = \"alice\""))
            .await
            .expect("radclient");
    assert!(answer.contains("Received Disconnect-ACK"), "{answer}");
    let stop = record(&fr, "alice", "Stop").await;
    assert_eq!(
        field(&stop, "Acct-Terminate-Cause"),
        Some("Admin-Reset"),
        "{stop}"
    );
    assert_eq!(field(&stop, "Acct-Input-Packets"), Some("1"), "{stop}");
    assert_eq!(field(&stop, "Acct-Output-Packets"), Some("1"), "{stop}");
    let _ = call.shutdown.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(15), &mut call.server).await;

    // timed: RADIUS's Session-Timeout of 2 s ends the call on time.
    let dae = free_port();
    let mut client = client_config();
    client.user = Some("timed".into());
    client.persist = false;
    let mut call = rig(vec![sim_config(Some("1234"))], client, server(&fr, dae));
    expect_client_event(&mut call, Duration::from_secs(20), |e| {
        matches!(e, ClientEvent::IpUp { .. })
    })
    .await;
    let up = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = call.server_events.recv().await {
            if let ServerEvent::CallEnded { reason } = event {
                return reason;
            }
        }
        panic!("the server stopped");
    })
    .await
    .expect("the call did not end");
    assert!(ended.to_string().contains("Session timeout"), "{ended}");
    assert!(up.elapsed() < Duration::from_secs(5), "{:?}", up.elapsed());
    let stop = record(&fr, "timed", "Stop").await;
    assert_eq!(
        field(&stop, "Acct-Terminate-Cause"),
        Some("Session-Timeout"),
        "{stop}"
    );
    assert_eq!(field(&stop, "Acct-Session-Time"), Some("2"), "{stop}");
    let _ = call.shutdown.send(true);
}
