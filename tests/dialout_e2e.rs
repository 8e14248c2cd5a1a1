//! The dial-out client against our ppp-server through the simulated modem, in memory and on
//! real (short) time: registration delay, BUSY with redial, a call dropped with NO CARRIER and the
//! redial after it, IPCP up and pings across, `monitor` output, a wrong PIN.

#[path = "dialout_support.rs"]
mod support;

use std::net::Ipv4Addr;
use std::time::Duration;

use ppp_link::{AuthFailure, AuthSide, DownReason};
use ppp_modem::ModemError;
use ppp_modem::sim::CallBehaviour;
use ppp_stack::dialout::{CallEnd, ClientEvent, DialOutError, ServerEvent};
use ppp_tokio::serial::SerialError;
use support::{client_config, expect_client_event, ping, rig, server_config, sim_config};

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

#[tokio::test]
async fn registration_busy_redial_ping_no_carrier_redial_ping() {
    init_logs();
    // Attempt 1: registration takes 1.5 s, then the network says BUSY.
    let mut first = sim_config(Some("1234"));
    first.registration_delay = Duration::from_millis(1500);
    first.dial = CallBehaviour::Busy;
    // Attempt 2: connects, and the network drops the call after 4 s.
    let mut second = sim_config(Some("1234"));
    second.drop_call_after = Some(Duration::from_secs(4));
    // Attempt 3 and later: connects and stays up.
    let third = sim_config(Some("1234"));
    let mut rig = rig(vec![first, second, third], client_config(), server_config());

    expect_client_event(&mut rig, Duration::from_secs(1), |e| {
        matches!(e, ClientEvent::Dialing { attempt: 1 })
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        rig.client_status.snapshot().dial_status,
        "waiting for registration"
    );

    let failed = expect_client_event(&mut rig, Duration::from_secs(20), |e| {
        matches!(e, ClientEvent::AttemptFailed { .. })
    })
    .await;
    let ClientEvent::AttemptFailed { error, retry_in } = failed else {
        unreachable!()
    };
    assert!(error.contains("BUSY"), "{error}");
    assert_eq!(retry_in, Some(Duration::from_millis(500)));

    expect_client_event(&mut rig, Duration::from_secs(5), |e| {
        matches!(e, ClientEvent::Dialing { attempt: 2 })
    })
    .await;
    let up = expect_client_event(&mut rig, Duration::from_secs(20), |e| {
        matches!(e, ClientEvent::IpUp { .. })
    })
    .await;
    assert_eq!(
        up,
        ClientEvent::IpUp {
            local: CLIENT,
            peer: SERVER,
            dns: vec![Ipv4Addr::new(198, 51, 100, 53)],
            mtu: 1500
        }
    );
    ping(&mut rig, CLIENT, SERVER, 1).await;
    ping(&mut rig, CLIENT, SERVER, 2).await;

    let monitor = rig.client_status.render();
    println!("{monitor}");
    for expected in [
        "status: connected",
        "dial-status: connected",
        "ipaddress: 198.51.100.2",
        "dns-server: 198.51.100.53",
        "mtu: 1500",
        "signal: -73dBm",
        "operator: SimNet",
    ] {
        assert!(
            monitor.contains(expected),
            "{expected:?} missing from\n{monitor}"
        );
    }

    // The network drops the call: link down, then a redial.
    let ended = expect_client_event(&mut rig, Duration::from_secs(40), |e| {
        matches!(e, ClientEvent::CallEnded { .. })
    })
    .await;
    println!("{ended:?}");
    expect_client_event(&mut rig, Duration::from_secs(5), |e| {
        matches!(e, ClientEvent::Dialing { attempt: 3 })
    })
    .await;
    expect_client_event(&mut rig, Duration::from_secs(30), |e| {
        matches!(e, ClientEvent::IpUp { .. })
    })
    .await;
    ping(&mut rig, CLIENT, SERVER, 3).await;

    // The server authenticated alice twice.
    let mut authenticated = 0;
    while let Ok(event) = rig.server_events.try_recv() {
        if matches!(event, ServerEvent::Authenticated { ref peer_name } if peer_name.as_deref() == Some("alice"))
        {
            authenticated += 1;
        }
    }
    assert!(
        authenticated >= 2,
        "server authenticated {authenticated} times"
    );

    // The modem saw the PIN, the APN and three dials.
    let commands = rig.commands.lock().unwrap().clone();
    assert!(
        commands.iter().any(|c| c == "AT+CPIN=\"1234\""),
        "{commands:?}"
    );
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with("AT+CGDCONT=1,\"IP\",\"internet\"")),
        "{commands:?}"
    );
    assert_eq!(
        commands.iter().filter(|c| c.starts_with("ATD")).count(),
        3,
        "{commands:?}"
    );

    // Shut down: the client hangs up (+++, ATH) and returns.
    rig.shutdown.send(true).unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(30), rig.client)
        .await
        .expect("client did not stop")
        .expect("client panicked");
    assert!(exit.is_ok(), "{exit:?}");
    let commands = rig.commands.lock().unwrap().clone();
    assert_eq!(
        commands.last().map(String::as_str),
        Some("ATH"),
        "{commands:?}"
    );
}

#[tokio::test]
async fn wrong_pin_is_a_clear_error_and_not_retried() {
    init_logs();
    let mut client = client_config();
    client.pin = Some("0000".into());
    let mut rig = rig(vec![sim_config(Some("1234"))], client, server_config());
    let result = tokio::time::timeout(Duration::from_secs(60), &mut rig.client)
        .await
        .expect("client hung")
        .expect("client panicked");
    let error = result.expect_err("a wrong PIN must fail");
    assert!(
        matches!(
            error,
            DialOutError::Serial(SerialError::Modem(ModemError::WrongPin))
        ),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "modem: the SIM rejected the PIN");
    let commands = rig.commands.lock().unwrap().clone();
    assert_eq!(
        commands
            .iter()
            .filter(|c| c.starts_with("AT+CPIN="))
            .count(),
        1,
        "the PIN must be tried once: {commands:?}"
    );
}

#[tokio::test]
async fn busy_without_persist_gives_up_and_max_fail_stops_persist() {
    init_logs();
    let mut busy = sim_config(None);
    busy.dial = CallBehaviour::Busy;
    let mut client = client_config();
    client.pin = None;
    client.max_fail = 3;
    let mut rig = rig(vec![busy], client, server_config());
    let result = tokio::time::timeout(Duration::from_secs(120), &mut rig.client)
        .await
        .expect("client hung")
        .expect("client panicked");
    let error = result.expect_err("BUSY three times must fail");
    assert!(error.to_string().contains("BUSY"), "{error}");
    let commands = rig.commands.lock().unwrap().clone();
    assert_eq!(
        commands.iter().filter(|c| c.starts_with("ATD")).count(),
        3,
        "{commands:?}"
    );
}

#[tokio::test]
async fn a_rejected_password_stops_after_the_default_max_fail_with_the_reason() {
    init_logs();
    let mut client = client_config();
    client.password = Some("not-the-password".into());
    // The default max-fail (pppd's 10), with a short holdoff so the test is quick.
    assert_eq!(client.max_fail, 10);
    client.holdoff = 0.002;
    let mut rig = rig(vec![sim_config(Some("1234"))], client, server_config());
    let result = tokio::time::timeout(Duration::from_secs(120), &mut rig.client)
        .await
        .expect("a rejected password must not be redialled forever")
        .expect("client panicked");
    let error = result.expect_err("ten rejections must fail");
    let DialOutError::MaxFail { attempts, last } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(*attempts, 10);
    assert!(
        matches!(
            last.as_ref(),
            DialOutError::Link(CallEnd::Link(DownReason::AuthFailed(AuthFailure {
                side: AuthSide::Us,
                ..
            })))
        ),
        "{last:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains("giving up after 10 consecutive failed attempts (max-fail 10)")
            && text.contains("authentication to the peer failed"),
        "{text}"
    );
    // pppd's exit status for "we failed to authenticate ourselves".
    assert_eq!(error.exit_status().code(), 19);
    let dials = rig
        .commands
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.starts_with("ATD"))
        .count();
    assert_eq!(dials, 10);
}

#[tokio::test]
async fn without_persist_a_rejected_password_is_an_error_not_a_normal_end() {
    init_logs();
    let mut client = client_config();
    client.password = Some("not-the-password".into());
    client.persist = false;
    let mut rig = rig(vec![sim_config(Some("1234"))], client, server_config());
    let result = tokio::time::timeout(Duration::from_secs(60), &mut rig.client)
        .await
        .expect("client hung")
        .expect("client panicked");
    let error = result.expect_err("a rejected password is a failure");
    assert_eq!(error.exit_status().code(), 19, "{error}");
}

#[tokio::test]
async fn keepalive_notices_a_peer_that_went_silent() {
    init_logs();
    let mut client = client_config();
    client.persist = false;
    client.keepalive_timeout = 3;
    let mut rig = rig(vec![sim_config(Some("1234"))], client, server_config());
    expect_client_event(&mut rig, Duration::from_secs(20), |e| {
        matches!(e, ClientEvent::IpUp { .. })
    })
    .await;
    // The far end stops answering; the line (no DCD, no NO CARRIER) stays up.
    rig.silence.send(true).expect("silence");
    let silent_since = tokio::time::Instant::now();
    let ended = expect_client_event(&mut rig, Duration::from_secs(20), |e| {
        matches!(e, ClientEvent::CallEnded { .. })
    })
    .await;
    assert_eq!(
        ended,
        ClientEvent::CallEnded {
            reason: CallEnd::Link(DownReason::EchoTimeout)
        }
    );
    let waited = silent_since.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(12),
        "{waited:?}"
    );
    let exit = tokio::time::timeout(Duration::from_secs(30), &mut rig.client)
        .await
        .expect("client hung")
        .expect("client panicked")
        .expect("the call was up");
    // pppd's exit status for a peer not answering echo requests.
    assert_eq!(exit.exit_status().code(), 15);
}

#[tokio::test]
async fn dial_on_demand_dials_on_the_first_packet_and_hangs_up_when_idle() {
    init_logs();
    let mut client = client_config();
    client.dial_on_demand = true;
    client.idle_timeout = 2;
    let mut rig = rig(vec![sim_config(Some("1234"))], client, server_config());

    // Nothing is dialed before there is traffic.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(rig.commands.lock().unwrap().is_empty());
    assert_eq!(rig.client_status.snapshot().status, "waiting for traffic");

    // The first packet dials, and is delivered once IPCP is up.
    let request = ppp_tokio::icmp::echo_request(CLIENT, SERVER, 7, 1, b"on demand");
    rig.outbound.send(request).await.unwrap();
    expect_client_event(&mut rig, Duration::from_secs(1), |e| {
        matches!(e, ClientEvent::Dialing { attempt: 1 })
    })
    .await;
    expect_client_event(&mut rig, Duration::from_secs(10), |e| {
        matches!(e, ClientEvent::IpUp { .. })
    })
    .await;
    let reply = tokio::time::timeout(Duration::from_secs(5), rig.inbound.recv())
        .await
        .expect("no reply to the packet that dialed")
        .expect("client gone");
    let ppp_link::Datagram::Ipv4(reply) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(
        ppp_tokio::icmp::parse_echo_reply(&reply),
        Some((SERVER, 7, 1))
    );

    // Two seconds without traffic: hang up (+++ then ATH), then wait for traffic again.
    let ended = expect_client_event(&mut rig, Duration::from_secs(6), |e| {
        matches!(e, ClientEvent::CallEnded { .. })
    })
    .await;
    assert_eq!(
        ended,
        ClientEvent::CallEnded {
            reason: ppp_stack::dialout::CallEnd::IdleTimeout
        }
    );
    assert_eq!(
        rig.commands.lock().unwrap().last().map(String::as_str),
        Some("ATH")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rig.client_status.snapshot().status, "waiting for traffic");

    // The next packet dials again.
    ping(&mut rig, CLIENT, SERVER, 2).await;
    let dials = rig
        .commands
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.starts_with("ATD"))
        .count();
    assert_eq!(dials, 2);
}

#[tokio::test]
async fn server_answers_after_the_ring_count_and_authenticates_from_chap_secrets() {
    use ppp_stack::dialout::{
        ClientConfig, ServerConfig, ServerIo, ServerOptions, SharedStatus, run_server,
    };
    use ppp_tokio::serial::bridge_modem;
    init_logs();
    // Here the modem is the server's: the server speaks AT to it (init, RINGs, ATA), and the
    // caller is on the far side of the call, a direct (null-modem) client.
    let dir = std::env::temp_dir().join(format!("dialout-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secrets = dir.join("chap-secrets");
    std::fs::write(
        &secrets,
        "# client server secret addresses\nbob * \"builder\" 198.51.100.77\n",
    )
    .unwrap();
    let server = ServerConfig::parse(&format!(
        "port = \"sim\"\nring-count = 2\nauthentication = [\"mschap2\"]\nchap-secrets = \"{}\"\n\
         lcp-echo-interval = 0\nonce = true\n[profile]\nlocal-address = \"198.51.100.1\"\n\
         use-encryption = \"yes\"\nuse-ipv6 = true\n",
        secrets.display()
    ))
    .unwrap();
    let client = ClientConfig::parse(
        "port = \"sim\"\nnull-modem = true\nuser = \"bob\"\npassword = \"builder\"\nallow = [\"mschap2\"]\n\
         [profile]\nuse-encryption = \"yes\"\nuse-ipv6 = true\n",
    )
    .unwrap();
    let (server_line, modem_host) = tokio::io::duplex(64 * 1024);
    let (modem_peer, client_line) = tokio::io::duplex(64 * 1024);
    let mut sim_cfg = sim_config(None);
    sim_cfg.ring_interval = Duration::from_millis(300);
    let mut sim = support::ScriptedSim::new(vec![sim_cfg]);
    sim.ring_after_init = Some(3);
    let commands = std::sync::Arc::clone(&sim.commands);
    tokio::spawn(bridge_modem(sim, modem_host, modem_peer, None));

    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    let (server_events_tx, mut server_events) = tokio::sync::mpsc::unbounded_channel();
    let server_task = tokio::spawn({
        let io = ServerIo {
            outbound: None,
            inbound: None,
            events: server_events_tx,
            shutdown: shutdown_rx.clone(),
        };
        async move {
            run_server(
                &server,
                server_line,
                io,
                SharedStatus::new(),
                ServerOptions::new(ppp_link::Random::seeded(11)),
            )
            .await
        }
    });
    let (outbound, outbound_rx) = tokio::sync::mpsc::channel(4);
    let (inbound_tx, mut inbound) = tokio::sync::mpsc::channel(4);
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let client_task = tokio::spawn(async move {
        let io = ppp_stack::dialout::ClientIo {
            outbound: outbound_rx,
            inbound: inbound_tx,
            events: events_tx,
            shutdown: shutdown_rx,
        };
        let options = ppp_stack::dialout::ClientOptions {
            pcap: None,
            random: Some(ppp_link::Random::seeded(5)),
        };
        ppp_stack::dialout::run_client(&client, client_line, io, SharedStatus::new(), options).await
    });

    let mut ipv6 = None;
    let (up, mut mtu) = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(event) = events.recv().await {
            match event {
                ClientEvent::IpUp { local, mtu, .. } => return (local, mtu),
                ClientEvent::Ipv6Up { local, peer } => ipv6 = Some((local, peer)),
                _ => {}
            }
        }
        (Ipv4Addr::UNSPECIFIED, 0)
    })
    .await
    .expect("no IPCP up");
    // The address comes from the chap-secrets line.
    assert_eq!(up, Ipv4Addr::new(198, 51, 100, 77));
    // Both sides allow MPPE: it takes 4 bytes of the MTU, whether CCP opened before IPCP (the
    // MTU of IpUp) or after it (a MtuChanged event).
    // Both have use-ipv6: IPv6CP opens too, before or after IPCP.
    tokio::time::timeout(Duration::from_secs(5), async {
        while mtu != 1496 || ipv6.is_none() {
            match events.recv().await {
                Some(ClientEvent::MtuChanged { mtu: changed }) => mtu = changed,
                Some(ClientEvent::Ipv6Up { local, peer }) => ipv6 = Some((local, peer)),
                Some(_) => {}
                None => break,
            }
        }
    })
    .await
    .expect("the MTU follows MPPE and IPv6CP opens");
    let (local6, peer6) = ipv6.expect("IPv6CP up");
    assert!(local6.is_unicast_link_local() && peer6.is_unicast_link_local());
    assert_ne!(local6, peer6);
    let request = ppp_tokio::icmp::echo_request(up, SERVER, 9, 1, b"x");
    outbound.send(request).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), inbound.recv())
        .await
        .unwrap()
        .unwrap();
    let ppp_link::Datagram::Ipv4(reply) = reply else {
        panic!()
    };
    assert_eq!(
        ppp_tokio::icmp::parse_echo_reply(&reply),
        Some((SERVER, 9, 1))
    );

    let mut names = Vec::new();
    while let Ok(event) = server_events.try_recv() {
        if let ServerEvent::Authenticated { peer_name } = event {
            names.push(peer_name);
        }
    }
    assert_eq!(names, vec![Some("bob".to_owned())]);
    let commands = commands.lock().unwrap().clone();
    assert!(commands.iter().any(|c| c == "ATA"), "{commands:?}");

    shutdown.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(20), client_task)
        .await
        .expect("client stops");
    let _ = tokio::time::timeout(Duration::from_secs(20), server_task)
        .await
        .expect("server stops");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_chat_script_replaces_the_built_in_sequence() {
    init_logs();
    let dir = std::env::temp_dir().join(format!("dialout-chat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("chat");
    std::fs::write(
        &script,
        "ABORT BUSY\nABORT 'NO CARRIER'\nTIMEOUT 5\n'' ATZ\nOK 'AT+CGDCONT=1,\"IP\",\"chat.apn\"'\nOK ATD*99#\nCONNECT ''\n",
    )
    .unwrap();
    let mut client = client_config();
    client.chat_script = Some(script);
    client.persist = false;
    let mut rig = rig(vec![sim_config(None)], client, server_config());
    expect_client_event(&mut rig, Duration::from_secs(10), |e| {
        matches!(e, ClientEvent::IpUp { .. })
    })
    .await;
    ping(&mut rig, CLIENT, SERVER, 1).await;
    let commands = rig.commands.lock().unwrap().clone();
    assert_eq!(
        commands,
        ["ATZ", "AT+CGDCONT=1,\"IP\",\"chat.apn\"", "ATD*99#"]
    );
    rig.shutdown.send(true).unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(20), rig.client)
        .await
        .expect("client stops");
    assert!(matches!(exit, Ok(Ok(_))), "{exit:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
