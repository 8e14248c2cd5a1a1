//! End to end in one process against a real FreeRADIUS 3.2: our authenticatee ↔ our
//! authenticator in external mode ↔ our RADIUS service ↔ FreeRADIUS; accounting into its
//! detail file; failover; the spool across an outage and a restart; radclient against our
//! dynamic-authorization listener. Skips (with the reason) where freeradius is not installed.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use ppp_auth::{
    AuthEvent, AuthProtocol, AuthStatus, Authenticatee, AuthenticateeConfig, Authenticator,
    AuthenticatorConfig, Credentials, FailureReason, Random, Verdict,
};
use ppp_radius::{
    AccessRequest, AccountingRecord, Authorization, ClientConfig, Counters, DaeClient, DaeConfig,
    DaeEvent, DaeOutcome, NasIdentity, NasPortType, RateLimit, RxTx, ServerConfig, SessionContext,
    TerminateCause,
};
use ppp_tokio::aaa::{Aaa, AaaCommand, AaaOptions, RegisteredSession};
use ppp_tokio::freeradius::{self, FreeRadius, Mode, SECRET};
use ppp_tokio::radius::{DaeListener, RadiusService, ServiceConfig};
use tokio::io::AsyncWriteExt;

const USERS: &str = r#"alice	Cleartext-Password := "correct horse"
	Reply-Message = "Welcome, alice",
	Framed-IP-Address = 192.0.2.10,
	Framed-IPv6-Prefix = 2001:db8:1::/64,
	Session-Timeout = 3600,
	Idle-Timeout = 300,
	Acct-Interim-Interval = 60,
	Class = "gold",
	Mikrotik-Rate-Limit = "2M/1M 4M/2M 1500k/750k 8/8 5"

bob	Cleartext-Password := "bobpass"
	Framed-Pool = "pool-b"

DEFAULT	Auth-Type := Reject
"#;

fn nas() -> NasIdentity {
    let mut nas = NasIdentity::named("test-nas");
    nas.ip_address = Some(Ipv4Addr::new(127, 0, 0, 1));
    nas
}

fn session() -> SessionContext {
    SessionContext {
        nas_port: Some(7),
        nas_port_id: Some("eth0:7".into()),
        nas_port_type: Some(NasPortType::ETHERNET),
        calling_station_id: Some("02:00:00:00:00:07".into()),
        called_station_id: None,
    }
}

fn service_config(servers: Vec<ServerConfig>) -> ServiceConfig {
    let mut client = ClientConfig::new(servers, nas());
    client.retransmit_interval = Duration::from_millis(300);
    client.max_transmissions = 2;
    client.spool_retry_interval = Duration::from_millis(300);
    let mut config = ServiceConfig::new(client);
    config.bind = "127.0.0.1:0".parse().unwrap();
    config
}

fn server(fr: &FreeRadius) -> ServerConfig {
    ServerConfig::new(fr.auth, fr.acct, SECRET)
}

struct Outcome {
    server: Authenticator,
    client: Authenticatee,
    authorization: Option<Authorization>,
}

/// One authentication: packets shuttled in memory, the verdict from RADIUS.
async fn authenticate(
    radius: &RadiusService,
    method: AuthProtocol,
    name: &str,
    password: &str,
    seed: u64,
) -> Outcome {
    let mut server = Authenticator::new(
        method,
        AuthenticatorConfig::new("test-nas").external(),
        Random::seeded(seed),
    );
    let mut client = Authenticatee::new(
        method,
        Credentials::new(name, password),
        AuthenticateeConfig::default(),
        Random::seeded(seed + 1000),
    );
    let now = Instant::now();
    server.open(now);
    client.open(now);
    let mut authorization = None;
    for _ in 0..8 {
        while let Some(p) = server.poll_transmit() {
            client.handle_input(now, &p);
        }
        while let Some(p) = client.poll_transmit() {
            server.handle_input(now, &p);
        }
        while let Some(event) = server.poll_event() {
            if let AuthEvent::VerifyNeeded(request) = event {
                let answer = radius
                    .authenticate(AccessRequest::new(&request, &session()))
                    .await
                    .expect("RADIUS answers");
                authorization = Some(answer.authorization);
                server
                    .provide_verdict(now, request.token, answer.verdict)
                    .unwrap();
            }
        }
        if server.status() != &AuthStatus::Pending && client.status() != &AuthStatus::Pending {
            break;
        }
    }
    Outcome {
        server,
        client,
        authorization,
    }
}

const METHODS: [AuthProtocol; 4] = [
    AuthProtocol::Pap,
    AuthProtocol::ChapMd5,
    AuthProtocol::MsChapV1,
    AuthProtocol::MsChapV2,
];

#[tokio::test]
async fn every_method_through_freeradius() {
    if freeradius::skip("every_method_through_freeradius") {
        return;
    }
    let fr = FreeRadius::start(USERS).unwrap();
    let radius = RadiusService::spawn(service_config(vec![server(&fr)]))
        .await
        .unwrap();
    for (i, method) in METHODS.into_iter().enumerate() {
        let o = authenticate(&radius, method, "alice", "correct horse", i as u64).await;
        assert_eq!(
            o.server.status(),
            &AuthStatus::Succeeded,
            "{method:?}\n{}",
            fr.log()
        );
        assert_eq!(o.client.status(), &AuthStatus::Succeeded, "{method:?}");
        assert_eq!(o.server.peer_name(), Some("alice"));
        if matches!(method, AuthProtocol::MsChapV1 | AuthProtocol::MsChapV2) {
            // MPPE keys from RADIUS equal the keys the client derives itself.
            let (s_send, s_recv) = o
                .server
                .key_material()
                .expect("keys from RADIUS")
                .start_keys();
            let (c_send, c_recv) = o.client.key_material().unwrap().start_keys();
            assert_eq!((s_send, s_recv), (c_recv, c_send), "{method:?}");
            if method == AuthProtocol::MsChapV2 {
                // Given as MS-MPPE-Send/Recv-Key, not derived here (we never saw a password).
                assert!(o.server.key_material().unwrap().nt_response().is_none());
            }
        }
        // The Reply-Message reached the peer: for MS-CHAP-V2 after M= in the Success, which
        // the client checked against its own authenticator response.
        let a = o.authorization.unwrap();
        assert_eq!(a.reply_message.as_deref(), Some("Welcome, alice"));
    }
    assert_eq!(radius.stats().forged, 0);
}

#[tokio::test]
async fn reject_carries_the_reply_message() {
    if freeradius::skip("reject_carries_the_reply_message") {
        return;
    }
    let fr = FreeRadius::start(USERS).unwrap();
    let radius = RadiusService::spawn(service_config(vec![server(&fr)]))
        .await
        .unwrap();
    for (i, method) in METHODS.into_iter().enumerate() {
        for (name, password) in [("alice", "wrong"), ("mallory", "x")] {
            let o = authenticate(&radius, method, name, password, 10 + i as u64).await;
            assert_eq!(
                o.server.status(),
                &AuthStatus::Failed(FailureReason::Refused {
                    name: name.into(),
                    message: Some("Login refused by RADIUS".into())
                }),
                "{method:?} {name}"
            );
            let AuthStatus::Failed(FailureReason::Rejected { message, .. }) = o.client.status()
            else {
                panic!("{method:?}: {:?}", o.client.status());
            };
            assert_eq!(message, "Login refused by RADIUS", "{method:?} {name}");
            assert!(o.server.key_material().is_none());
        }
    }
}

#[tokio::test]
async fn authorization_from_the_users_file() {
    if freeradius::skip("authorization_from_the_users_file") {
        return;
    }
    let fr = FreeRadius::start(USERS).unwrap();
    let radius = RadiusService::spawn(service_config(vec![server(&fr)]))
        .await
        .unwrap();
    let o = authenticate(&radius, AuthProtocol::Pap, "alice", "correct horse", 20).await;
    let a = o.authorization.unwrap();
    assert_eq!(a.framed_ip_address, Some(Ipv4Addr::new(192, 0, 2, 10)));
    assert_eq!(
        a.framed_ipv6_prefix,
        Some(("2001:db8:1::".parse().unwrap(), 64))
    );
    assert_eq!(a.session_timeout, Some(Duration::from_secs(3600)));
    assert_eq!(a.idle_timeout, Some(Duration::from_secs(300)));
    assert_eq!(a.interim_interval, Some(Duration::from_secs(60)));
    assert_eq!(a.class, [b"gold".to_vec()]);
    let limit: RateLimit = "2M/1M 4M/2M 1500k/750k 8/8 5".parse().unwrap();
    assert_eq!(a.rate_limit, Some(limit));
    assert_eq!(
        limit.burst_rate,
        Some(RxTx {
            rx: 4_000_000,
            tx: 2_000_000
        })
    );
    let o = authenticate(&radius, AuthProtocol::ChapMd5, "bob", "bobpass", 21).await;
    assert_eq!(o.server.status(), &AuthStatus::Succeeded);
    let a = o.authorization.unwrap();
    assert_eq!(a.framed_pool.as_deref(), Some("pool-b"));
    assert_eq!((a.framed_ip_address, a.rate_limit), (None, None));
}

/// Waits until every record is acknowledged (bounded).
async fn wait_acknowledged(radius: &RadiusService, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let left = radius.unacknowledged().await.unwrap();
        if left == 0 || Instant::now() > deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn spool_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ppp-radius-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test]
async fn accounting_lands_in_the_detail_file() {
    if freeradius::skip("accounting_lands_in_the_detail_file") {
        return;
    }
    let fr = FreeRadius::start(USERS).unwrap();
    let mut config = service_config(vec![server(&fr)]);
    let dir = spool_dir("detail");
    config.spool_dir = Some(dir.clone());
    let radius = RadiusService::spawn(config).await.unwrap();
    let session_id = ppp_radius::AcctSessionId::random(&Random::seeded(30)).to_string();
    let mut start = AccountingRecord::start(&session_id, "alice");
    start.session = session();
    start.class = vec![b"gold".to_vec()];
    start.framed_ip_address = Some(Ipv4Addr::new(192, 0, 2, 10));
    radius.account(start.clone()).await.unwrap();
    let mut interim = start.clone();
    interim.status = ppp_radius::AcctStatusType::INTERIM_UPDATE;
    interim.session_time = Some(Duration::from_secs(60));
    interim.counters = Some(Counters {
        input_octets: 12_345,
        output_octets: 67_890,
        input_packets: 100,
        output_packets: 200,
    });
    radius.account(interim).await.unwrap();
    let mut stop = start.clone();
    stop.status = ppp_radius::AcctStatusType::STOP;
    stop.session_time = Some(Duration::from_secs(125));
    stop.counters = Some(Counters {
        input_octets: 5_000_000_123,
        output_octets: (1 << 32) + 42,
        input_packets: 4_000_000,
        output_packets: 5_000_000,
    });
    stop.terminate_cause = Some(TerminateCause::from(&ppp_core::CloseReason::UserRequest));
    radius.account(stop).await.unwrap();
    assert_eq!(wait_acknowledged(&radius, Duration::from_secs(10)).await, 0);
    let records = fr.detail_records_with(&session_id);
    assert_eq!(records.len(), 3, "{}", fr.detail());
    let find = |status: &str| {
        records
            .iter()
            .find(|r| r.contains(&format!("Acct-Status-Type = {status}")))
            .unwrap_or_else(|| panic!("no {status} in {records:?}"))
            .clone()
    };
    let interim = find("Interim-Update");
    for line in [
        "Acct-Input-Octets = 12345",
        "Acct-Output-Octets = 67890",
        "Acct-Input-Packets = 100",
        "Acct-Session-Time = 60",
        "Class = 0x676f6c64",
        "NAS-Port-Type = Ethernet",
        "NAS-Identifier = \"test-nas\"",
        "Calling-Station-Id = \"02:00:00:00:00:07\"",
    ] {
        assert!(interim.contains(line), "{line} not in {interim}");
    }
    let stop = find("Stop");
    for line in [
        // 5_000_000_123 = 1 gigaword + 705_032_827.
        "Acct-Input-Octets = 705032827",
        "Acct-Input-Gigawords = 1",
        "Acct-Output-Octets = 42",
        "Acct-Output-Gigawords = 1",
        "Acct-Terminate-Cause = User-Request",
        "Acct-Session-Time = 125",
        "Acct-Delay-Time = 0",
    ] {
        assert!(stop.contains(line), "{line} not in {stop}");
    }
    assert!(find("Start").contains("Framed-IP-Address = 192.0.2.10"));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn first_server_down_fails_over_to_the_second() {
    if freeradius::skip("first_server_down_fails_over_to_the_second") {
        return;
    }
    let fr = FreeRadius::start(USERS).unwrap();
    // Nothing listens on the first server's ports.
    let (dead_auth, dead_acct) = freeradius::free_ports();
    let dead = ServerConfig::new(
        SocketAddr::from(([127, 0, 0, 1], dead_auth)),
        SocketAddr::from(([127, 0, 0, 1], dead_acct)),
        SECRET,
    );
    let radius = RadiusService::spawn(service_config(vec![dead, server(&fr)]))
        .await
        .unwrap();
    let started = Instant::now();
    let o = authenticate(
        &radius,
        AuthProtocol::MsChapV2,
        "alice",
        "correct horse",
        40,
    )
    .await;
    assert_eq!(o.server.status(), &AuthStatus::Succeeded);
    // Two transmissions to the dead one (300 ms apart: one retransmission), then the live one.
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(radius.stats().retransmissions, 1);
    // The next one goes straight to the live server.
    let started = Instant::now();
    let o = authenticate(&radius, AuthProtocol::Pap, "alice", "correct horse", 41).await;
    assert_eq!(o.server.status(), &AuthStatus::Succeeded);
    assert!(started.elapsed() < Duration::from_millis(300));
    // Accounting fails over too.
    radius
        .account(AccountingRecord::start("FAILOVER-1", "alice"))
        .await
        .unwrap();
    assert_eq!(wait_acknowledged(&radius, Duration::from_secs(10)).await, 0);
    assert_eq!(fr.detail_records_with("FAILOVER-1").len(), 1);
}

#[tokio::test]
async fn accounting_waits_for_a_server_and_survives_a_restart() {
    if freeradius::skip("accounting_waits_for_a_server_and_survives_a_restart") {
        return;
    }
    let (auth, acct) = freeradius::free_ports();
    let down = ServerConfig::new(
        SocketAddr::from(([127, 0, 0, 1], auth)),
        SocketAddr::from(([127, 0, 0, 1], acct)),
        SECRET,
    );
    let dir = spool_dir("outage");
    let mut config = service_config(vec![down.clone()]);
    config.spool_dir = Some(dir.clone());
    let radius = RadiusService::spawn(config.clone()).await.unwrap();
    // No server: the Stop goes to the spool.
    let mut stop = AccountingRecord::stop("OUTAGE-1", "alice");
    stop.counters = Some(Counters {
        input_octets: 111,
        output_octets: 222,
        ..Counters::default()
    });
    stop.terminate_cause = Some(TerminateCause::LOST_CARRIER);
    radius.account(stop).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(radius.unacknowledged().await.unwrap(), 1);
    assert!(radius.stats().spooled >= 1);
    // The server comes back: the spool is retried and delivered.
    let fr = FreeRadius::start_on(USERS, auth, acct, Mode::Debug).unwrap();
    assert_eq!(wait_acknowledged(&radius, Duration::from_secs(10)).await, 0);
    let records = fr.detail_records_with("OUTAGE-1");
    assert_eq!(records.len(), 1, "{}", fr.detail());
    assert!(records[0].contains("Acct-Input-Octets = 111"));
    assert!(records[0].contains("Acct-Terminate-Cause = Lost-Carrier"));
    assert!(records[0].contains("Acct-Delay-Time = "), "{}", records[0]);
    drop(fr);
    // Down again; a Stop is written, then the NAS restarts (the service is dropped) before
    // any server answered.
    let mut stop = AccountingRecord::stop("RESTART-1", "bob");
    // The session ended 30 s ago (by the wall clock): Acct-Delay-Time says so after the
    // restart.
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    stop.event_timestamp = Some(wall as u32 - 30);
    radius.account(stop).await.unwrap();
    radius.shutdown().await;
    drop(radius);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let journal = std::fs::read(dir.join(ppp_tokio::radius::JOURNAL_FILE)).unwrap();
    assert!(
        journal.windows(9).any(|w| w == b"RESTART-1"),
        "the record is on disk"
    );
    // A new process: the spool is replayed to the server that is back.
    let fr = FreeRadius::start_on(USERS, auth, acct, Mode::Debug).unwrap();
    let radius = RadiusService::spawn(config).await.unwrap();
    assert_eq!(wait_acknowledged(&radius, Duration::from_secs(10)).await, 0);
    let records = fr.detail_records_with("RESTART-1");
    assert_eq!(records.len(), 1, "{}", fr.detail());
    assert!(records[0].contains("User-Name = \"bob\""));
    let delay: u32 = records[0]
        .lines()
        .find_map(|l| l.trim().strip_prefix("Acct-Delay-Time = "))
        .unwrap()
        .parse()
        .unwrap();
    assert!((30..60).contains(&delay), "{delay}");
    // OUTAGE-1 was acknowledged before: not sent twice.
    assert!(fr.detail_records_with("OUTAGE-1").is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs radclient with `input` against `to`; its output.
async fn radclient(to: SocketAddr, kind: &str, secret: &str, input: &str) -> String {
    let mut child = tokio::process::Command::new("radclient")
        .args(["-x", "-r", "1", "-t", "2"])
        .arg(to.to_string())
        .arg(kind)
        .arg(secret)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("radclient (freeradius-utils)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A DAE listener on a free loopback port that takes requests from 127.0.0.1 signed with
/// `secret`.
async fn dae_listener(secret: &str) -> DaeListener {
    let client = DaeClient {
        address: "127.0.0.1".parse().unwrap(),
        secret: secret.into(),
    };
    DaeListener::bind(
        "127.0.0.1:0".parse().unwrap(),
        DaeConfig::new(vec![client], nas()),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn radclient_disconnect_and_coa() {
    if freeradius::skip("radclient_disconnect_and_coa") {
        return;
    }
    let dae_secret = "dae-test-secret";
    let mut listener = dae_listener(dae_secret).await;
    let to = listener.local_addr();

    // Disconnect-Request for one session.
    let request = tokio::spawn(radclient(
        to,
        "disconnect",
        dae_secret,
        "Acct-Session-Id = \"4F2A9C0D11E2B377\", NAS-Identifier = \"test-nas\", Message-Authenticator = 0x00\n",
    ));
    let r = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .unwrap()
        .unwrap();
    let DaeEvent::Disconnect { session, .. } = &r.event else {
        panic!("{:?}", r.event)
    };
    assert!(session.matches("4F2A9C0D11E2B377", "alice", None, None));
    r.respond(DaeOutcome::Ack);
    let out = request.await.unwrap();
    assert!(out.contains("Received Disconnect-ACK"), "{out}");

    // CoA-Request changing the rate and the session timeout.
    let request = tokio::spawn(radclient(
        to,
        "coa",
        dae_secret,
        "User-Name = \"alice\", Mikrotik-Rate-Limit = \"4M/2M\", Session-Timeout = 120, Message-Authenticator = 0x00\n",
    ));
    let r = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .unwrap()
        .unwrap();
    let DaeEvent::Change {
        session, change, ..
    } = &r.event
    else {
        panic!("{:?}", r.event)
    };
    assert_eq!(session.user_name.as_deref(), Some("alice"));
    assert_eq!(
        change.rate_limit,
        Some(RateLimit::new(4_000_000, 2_000_000))
    );
    assert_eq!(change.session_timeout, Some(Duration::from_secs(120)));
    r.respond(DaeOutcome::Ack);
    let out = request.await.unwrap();
    assert!(out.contains("Received CoA-ACK"), "{out}");

    // A session we do not have: NAK with Error-Cause.
    let request = tokio::spawn(radclient(
        to,
        "disconnect",
        dae_secret,
        "User-Name = \"nobody\", Message-Authenticator = 0x00\n",
    ));
    let r = listener.recv().await.unwrap();
    r.respond(DaeOutcome::Nak(
        ppp_radius::ErrorCause::SESSION_CONTEXT_NOT_FOUND,
    ));
    let out = request.await.unwrap();
    assert!(out.contains("Disconnect-NAK"), "{out}");
    assert!(out.contains("Session-Context-Not-Found"), "{out}");

    // A CoA signed with the wrong secret: dropped and counted, never answered.
    let out = radclient(
        to,
        "coa",
        "not-the-secret",
        "User-Name = \"alice\", Session-Timeout = 1, Message-Authenticator = 0x00\n",
    )
    .await;
    assert!(!out.contains("Received"), "{out}");
    assert!(
        tokio::time::timeout(Duration::from_millis(200), listener.recv())
            .await
            .is_err()
    );
    let stats = listener.stats();
    assert!(stats.forged >= 1, "{stats:?}");
    assert_eq!((stats.acks, stats.naks), (2, 1));
}

/// `Aaa::serve_dae` answers a CoA with the cause its server gave: a server that cannot take a
/// rate limit (the kernel data path) refuses it, and radclient sees a CoA-NAK with
/// Unsupported-Attribute, not Session-Context-Not-Found; a CoA the server takes is ACKed.
#[tokio::test]
async fn serve_dae_naks_a_coa_with_the_servers_cause() {
    if freeradius::skip("serve_dae_naks_a_coa_with_the_servers_cause") {
        return;
    }
    let dae_secret = "dae-test-secret";
    let listener = dae_listener(dae_secret).await;
    let to = listener.local_addr();
    let aaa = Aaa::with_random(AaaOptions::local(), Random::seeded(5));
    let mut attached = aaa.attach();
    attached.register(
        7,
        RegisteredSession {
            user: "alice".into(),
            acct_session_id: "4F2A9C0D11E2B377".into(),
            framed_ip_address: None,
            nas_port_id: None,
            nas_port: Some(7),
            calling_station_id: None,
        },
    );
    tokio::spawn(aaa.clone().serve_dae(listener));
    // The server: a rate limit is refused as the kernel data path refuses it; the rest applies.
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(command) = attached.recv().await {
            if let AaaCommand::Change { port, change, done } = command {
                seen.push(port);
                let outcome = match change.rate_limit {
                    Some(_) => Err(ppp_radius::ErrorCause::UNSUPPORTED_ATTRIBUTE),
                    None => Ok(()),
                };
                let _ = done.send(outcome);
                if seen.len() == 2 {
                    return seen;
                }
            }
        }
        seen
    });

    let out = radclient(
        to,
        "coa",
        dae_secret,
        "User-Name = \"alice\", Mikrotik-Rate-Limit = \"4M/2M\", Message-Authenticator = 0x00\n",
    )
    .await;
    assert!(out.contains("Received CoA-NAK"), "{out}");
    assert!(out.contains("Unsupported-Attribute"), "{out}");

    let out = radclient(
        to,
        "coa",
        dae_secret,
        "User-Name = \"alice\", Session-Timeout = 120, Message-Authenticator = 0x00\n",
    )
    .await;
    assert!(out.contains("Received CoA-ACK"), "{out}");
    let seen = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, [7, 7]);
}

/// The load figure: 1,000 PAP authentications started at once through FreeRADIUS (threaded,
/// normal logging), 4 client sockets. Prints the set-up rate and latency; asserts only that all
/// were accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_authentications_at_once() {
    if freeradius::skip("thousand_authentications_at_once") {
        return;
    }
    let (auth, acct) = freeradius::free_ports();
    let fr = FreeRadius::start_on(USERS, auth, acct, Mode::Threaded).unwrap();
    let mut config = service_config(vec![server(&fr)]);
    config.client.sockets = 4;
    config.client.retransmit_interval = Duration::from_secs(3);
    config.client.max_transmissions = 3;
    let radius = RadiusService::spawn(config).await.unwrap();
    const N: usize = 1000;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(N);
    for i in 0..N {
        let radius = radius.clone();
        tasks.push(tokio::spawn(async move {
            let request = ppp_auth::VerifyRequest {
                token: ppp_auth::SecretToken(i as u64),
                peer_name: "alice".into(),
                server: "test-nas".into(),
                method: AuthProtocol::Pap,
                proof: ppp_auth::Proof::Pap {
                    password: "correct horse".into(),
                },
            };
            let t = Instant::now();
            let answer = radius
                .authenticate(AccessRequest::new(&request, &session()))
                .await;
            (
                t.elapsed(),
                answer.map(|a| matches!(a.verdict, Verdict::Accept(_))),
            )
        }));
    }
    let mut latencies = Vec::with_capacity(N);
    for task in tasks {
        let (latency, accepted) = task.await.unwrap();
        assert!(matches!(accepted, Ok(true)), "{accepted:?}");
        latencies.push(latency);
    }
    let total = started.elapsed();
    latencies.sort();
    let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    eprintln!(
        "RADIUS load: {N} PAP authentications at once through FreeRADIUS in {:.2?}: {:.0}/s; \
         latency p50 {:.2?}, p90 {:.2?}, p99 {:.2?}, max {:.2?}; retransmissions {}",
        total,
        N as f64 / total.as_secs_f64(),
        pct(50),
        pct(90),
        pct(99),
        latencies[N - 1],
        radius.stats().retransmissions
    );
}

/// The load figure through the whole stack: 1,000 PPPoE clients start at once against one
/// `PppoeServer` on a simulated segment (in memory, one task), the server's authenticator in
/// external mode, every CHAP response verified by FreeRADIUS (threaded) through the real
/// `RadiusService` (4 sockets) and `Aaa::verify`. Prints the set-up rate (PADI to IPCP up) and
/// the latencies; asserts only that all came up (bounded at 120 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_pppoe_sessions_through_freeradius() {
    use std::collections::HashMap;

    use ppp_link::pppoe::{PppoeClient, PppoeClientEvent, PppoeServer, PppoeServerEvent};
    use ppp_link::{LinkConfig, LinkEvent};
    use ppp_tokio::aaa::{Aaa, AaaOptions, Verified};
    use pppoe_discovery::{AcConfig, ClientConfig as DiscoveryConfig, MacAddr};

    if freeradius::skip("thousand_pppoe_sessions_through_freeradius") {
        return;
    }
    const N: usize = 1000;
    let (auth, acct) = freeradius::free_ports();
    let fr = FreeRadius::start_on(USERS, auth, acct, Mode::Threaded).unwrap();
    let mut config = service_config(vec![server(&fr)]);
    config.client.sockets = 4;
    config.client.retransmit_interval = Duration::from_secs(3);
    config.client.max_transmissions = 3;
    let radius = RadiusService::spawn(config).await.unwrap();
    let mut options = AaaOptions::with_radius(radius.clone());
    options.accounting = false;
    let aaa = Aaa::with_random(options, Random::seeded(77));
    let secrets: std::sync::Arc<dyn ppp_auth::SecretsBackend> =
        std::sync::Arc::new(ppp_auth::SecretsTable::new());

    let mut ac_link = LinkConfig::pppoe();
    ac_link.lcp.allow = Vec::new();
    ac_link.lcp.require = vec![AuthProtocol::ChapMd5];
    ac_link.lcp.echo_interval = None;
    ac_link.auth.authenticator = AuthenticatorConfig::new("test-nas").external();
    ac_link.ipcp = Some(ppp_ipcp::IpcpConfig::server(
        Ipv4Addr::new(192, 0, 2, 1),
        [None, None],
    ));
    let ac_config = AcConfig {
        max_sessions: 2 * N,
        padi_limit: None,
        padi_limit_per_mac: None,
        ..AcConfig::default()
    };
    let ac_mac = MacAddr([0x02, 0, 0, 0, 0, 0xac]);
    let mut ac = PppoeServer::new(ac_config, ac_link, ac_mac, Random::seeded(1));
    // Addresses from the session id: every client gets its own.
    ac.set_ipcp_factory(Box::new(|session| {
        let mut config = ppp_ipcp::IpcpConfig::server(Ipv4Addr::new(192, 0, 2, 1), [None, None]);
        let id = session.session_id();
        config.remote_address = Some(Ipv4Addr::new(10, (id >> 8) as u8, id as u8, 1));
        ppp_ipcp::Ipcp::new(config)
    }));

    let mut clients = Vec::with_capacity(N);
    let mut by_mac = HashMap::new();
    for i in 0..N {
        let mac = MacAddr([0x02, 0x10, 0, 0, (i >> 8) as u8, i as u8]);
        let mut link = LinkConfig::pppoe();
        link.lcp.echo_interval = None;
        link.auth.credentials = Some(ppp_link::auth::ClientCredentials::password(
            "alice",
            "correct horse",
        ));
        let client = PppoeClient::new(
            DiscoveryConfig::default(),
            link,
            mac,
            Random::seeded(1000 + i as u64),
        );
        by_mac.insert(mac.0, i);
        clients.push(client);
    }
    let (verdicts_tx, mut verdicts) = tokio::sync::mpsc::unbounded_channel();
    let started = Instant::now();
    for client in &mut clients {
        client.open(started);
    }
    let mut up_at: Vec<Option<Duration>> = vec![None; N];
    let mut radius_latency = Vec::with_capacity(N);
    let mut up = 0;
    let deadline = started + Duration::from_secs(120);
    while up < N {
        assert!(Instant::now() < deadline, "only {up} of {N} sessions up");
        let now = Instant::now();
        // Shuttle frames and events until the segment is quiet.
        loop {
            let mut moved = false;
            for client in &mut clients {
                while let Some(frame) = client.poll_transmit() {
                    ac.handle_input(now, &frame);
                    moved = true;
                }
            }
            while let Some(frame) = ac.poll_transmit() {
                moved = true;
                let dst: [u8; 6] = frame[..6].try_into().unwrap();
                if let Some(&i) = by_mac.get(&dst) {
                    clients[i].handle_input(now, &frame);
                } else if dst == [0xff; 6] {
                    for client in &mut clients {
                        client.handle_input(now, &frame);
                    }
                }
            }
            while let Some(event) = ac.poll_event() {
                if let PppoeServerEvent::Link {
                    session_id,
                    event: LinkEvent::VerifyNeeded(request),
                } = event
                {
                    let aaa = aaa.clone();
                    let secrets = secrets.clone();
                    let tx = verdicts_tx.clone();
                    tokio::spawn(async move {
                        let asked = Instant::now();
                        let verified: Verified =
                            aaa.verify(&request, &session(), secrets.as_ref()).await;
                        let _ = tx.send((session_id, request.token, verified, asked.elapsed()));
                    });
                }
            }
            for (i, client) in clients.iter_mut().enumerate() {
                while let Some(event) = client.poll_event() {
                    if let PppoeClientEvent::Link(LinkEvent::IpUp { .. }) = event
                        && up_at[i].is_none()
                    {
                        up_at[i] = Some(started.elapsed());
                        up += 1;
                    }
                }
            }
            if !moved {
                break;
            }
        }
        if up == N {
            break;
        }
        let next = clients
            .iter()
            .filter_map(PppoeClient::poll_timeout)
            .chain(ac.poll_timeout())
            .min()
            .unwrap_or(now + Duration::from_millis(100))
            .min(now + Duration::from_millis(100));
        tokio::select! {
            Some((session_id, token, verified, latency)) = verdicts.recv() => {
                radius_latency.push(latency);
                let _ = ac.provide_verdict(Instant::now(), session_id, token, verified.verdict);
                while let Ok((session_id, token, verified, latency)) = verdicts.try_recv() {
                    radius_latency.push(latency);
                    let _ = ac.provide_verdict(Instant::now(), session_id, token, verified.verdict);
                }
            }
            () = tokio::time::sleep_until(next.into()) => {
                let now = Instant::now();
                ac.handle_timeout(now);
                for client in &mut clients {
                    if client.poll_timeout().is_some_and(|t| t <= now) {
                        client.handle_timeout(now);
                    }
                }
            }
        }
    }
    let total = started.elapsed();
    let mut setup: Vec<Duration> = up_at.into_iter().flatten().collect();
    setup.sort();
    radius_latency.sort();
    let pct = |v: &[Duration], p: usize| v[(v.len() * p / 100).min(v.len() - 1)];
    eprintln!(
        "PPPoE + RADIUS load: {N} sessions (PADI to IPCP up, CHAP verified by FreeRADIUS) in \
         {total:.2?}: {:.0} sessions/s; set-up p50 {:.2?}, p90 {:.2?}, p99 {:.2?}, max {:.2?}; \
         RADIUS round trip p50 {:.2?}, p99 {:.2?}, max {:.2?} ({} verifications); \
         retransmissions {}, timeouts {}",
        N as f64 / total.as_secs_f64(),
        pct(&setup, 50),
        pct(&setup, 90),
        pct(&setup, 99),
        setup[N - 1],
        pct(&radius_latency, 50),
        pct(&radius_latency, 99),
        radius_latency[radius_latency.len() - 1],
        radius_latency.len(),
        radius.stats().retransmissions,
        radius.stats().access_timeouts,
    );
    assert_eq!(ac.session_count(), N);
}
