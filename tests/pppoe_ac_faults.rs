//! Root only (skips otherwise): the real `access-concentrator` and 20 real `pppoe-client`
//! processes, each client on its own veth behind a bridge in the client namespace (one MAC
//! address each).
//!
//! - A restarted AC: it is SIGKILLed and started again; it answers the clients' next session
//!   frames (their LCP echoes, every 2 s with `keepalive-timeout` 12, sent after an interval
//!   without traffic) with a PADT, so every client is back within 10 s of the restart instead
//!   of after its 12 s keepalive timeout.
//! - A stopping AC: SIGTERM with its sessions up; it sends every client Terminate and PADT and
//!   removes the session interfaces in one batch, within a bound (the time is printed).
//! - An MPPE session whose AC stalls (SIGSTOP for 1.5 s: longer than issue 18's 0.2 s, so that
//!   even the AC's 8 MiB receive queue overflows) during a UDP upload at the rate the client
//!   reaches: the upstream direction carries traffic again within seconds (MPPE resynchronises
//!   by renegotiating CCP; `sessions` counts it in RESYNCS, printed).
//! - A PADI flood at the rate one sender reaches (random source MACs, 4 s) while sessions are
//!   up: the AC serves session frames first (their own socket and queue), so pings through
//!   the sessions are not lost (< 1%); a new client connects within 2 s: its first PADI most
//!   likely meets the exhausted PADI limit, its retransmission a second later is recognised as
//!   a client trying again and answered (the AC's retry lane; the AC's flood report is printed).
//!
//! The tests take turns (each loads the whole machine; overlapping, they would measure each
//! other).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use ppp_stack::pppoe::control;
use ppp_tokio::netns::{self, NetNs};
use ppp_tokio::packet::PacketSocket;
use pppoe_discovery::{Code, DiscoveryRepr, MacAddr, TagType};

const CLIENTS: usize = 20;

/// Held by each test for its whole run: one at a time.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

mod support;

use support::{Killed, build_examples, wait_until};

fn programs() -> (PathBuf, PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| build_programs(false)).clone()
}

/// The programs as a deployment runs them (optimised), for the flood: a debug build of the
/// AC cannot take a flood at the rate one sender reaches, whatever it serves first.
fn release_programs() -> (PathBuf, PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| build_programs(true)).clone()
}

fn build_programs(release: bool) -> (PathBuf, PathBuf, PathBuf) {
    let examples = build_examples(
        release,
        &["pppoe-client", "pppoe-load", "access-concentrator"],
    );
    (
        examples.join("pppoe-client"),
        examples.join("access-concentrator"),
        examples.join("pppoe-load"),
    )
}

/// The AC's configuration in `dir`: CHAP, a pool of documentation addresses.
fn ac_config(dir: &Path, sessions: usize) -> PathBuf {
    std::fs::write(dir.join("chap-secrets"), "load * \"load secret\" *\n").expect("secrets");
    std::fs::write(dir.join("password"), "load secret\n").expect("password file");
    let path = dir.join("ac.toml");
    std::fs::write(
        &path,
        format!(
            r#"
            interfaces = ["veth-s"]
            ac-name = "restart-ac"
            max-sessions = {max}
            authentication = ["chap"]
            chap-secrets = "{secrets}"
            [profiles.default]
            local-address = "192.0.2.1"
            remote-address = "clients"
            [pools]
            clients = ["192.0.2.10-192.0.2.250", "198.51.100.10-198.51.100.250"]
            "#,
            max = sessions + 10,
            secrets = dir.join("chap-secrets").display(),
        ),
    )
    .expect("ac.toml");
    path
}

fn start_ac(ns: &NetNs, bin: &Path, config: &Path, control: &Path) -> Killed {
    std::fs::remove_file(control).ok();
    let ac = Killed(
        ns.command(bin)
            .arg("--config")
            .arg(config)
            .arg("--control")
            .arg(control)
            .stdout(Stdio::null())
            // Its log next to its configuration, for a look after a failure.
            .stderr(std::fs::File::create(config.with_extension("log")).expect("the AC's log file"))
            .spawn()
            .expect("start the access concentrator"),
    );
    wait_until("the AC's control socket", Duration::from_secs(10), || {
        control.exists()
    });
    ac
}

/// Sessions the AC lists with an address (IPCP up).
fn sessions_up(runtime: &tokio::runtime::Runtime, control: &Path) -> usize {
    runtime
        .block_on(control::query(control, "sessions"))
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter(|line| {
            line.contains("load") && (line.contains(" 192.0.2.") || line.contains(" 198.51.100."))
        })
        .count()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The client namespace's switch: a bridge with the veth to the AC and one veth per client.
fn client_ports(ns: &NetNs, count: usize) -> Vec<String> {
    ns.ip(&["link", "add", "br-c", "type", "bridge"])
        .expect("bridge");
    ns.ip(&["link", "set", "veth-c", "master", "br-c"])
        .expect("veth-c into the bridge");
    ns.ip(&["link", "set", "br-c", "up"]).expect("bridge up");
    (0..count)
        .map(|n| {
            let (port, client) = (format!("p{n}"), format!("c{n}"));
            ns.ip(&[
                "link", "add", &port, "type", "veth", "peer", "name", &client,
            ])
            .expect("client veth");
            ns.ip(&["link", "set", &port, "master", "br-c"])
                .expect("into the bridge");
            ns.ip(&["link", "set", &port, "up"]).expect("port up");
            ns.ip(&["link", "set", &client, "up"]).expect("client up");
            client
        })
        .collect()
}

#[test]
fn clients_are_back_within_10_s_of_an_ac_restart() {
    if netns::skip_without_netns("clients_are_back_within_10_s_of_an_ac_restart") {
        return;
    }
    let _turn = one_at_a_time();
    let (client_bin, ac_bin, _) = programs();
    let client_ns = NetNs::create("rst-c").expect("namespace");
    let server_ns = NetNs::create("rst-s").expect("namespace");
    netns::veth_pair(&client_ns, "veth-c", &server_ns, "veth-s").expect("veth pair");
    let dir = std::env::temp_dir().join(format!("pppoe-restart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = ac_config(&dir, CLIENTS);
    let control_path = dir.join("ac.sock");
    let runtime = runtime();
    let mut ac = start_ac(&server_ns, &ac_bin, &config, &control_path);
    let clients: Vec<Killed> = client_ports(&client_ns, CLIENTS)
        .iter()
        .map(|port| {
            Killed(
                client_ns
                    .command(&client_bin)
                    .args(["--interface", port, "--user", "load"])
                    .args(["--password", "load secret", "--allow", "chap"])
                    .args([
                        "--keepalive-timeout",
                        "12",
                        "--tun-name",
                        &format!("t{port}"),
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start a client"),
            )
        })
        .collect();
    wait_until("every client's session", Duration::from_secs(60), || {
        sessions_up(&runtime, &control_path) == CLIENTS
    });

    // SIGKILL: no Terminate, no PADT; the clients' sessions are left dangling.
    drop(std::mem::replace(
        &mut ac,
        Killed(Command::new("true").spawn().expect("true")),
    ));
    let restarted = Instant::now();
    ac = start_ac(&server_ns, &ac_bin, &config, &control_path);
    let mut back = 0;
    while restarted.elapsed() < Duration::from_secs(20) {
        back = sessions_up(&runtime, &control_path);
        if back == CLIENTS {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = restarted.elapsed();
    println!(
        "{back} of {CLIENTS} clients back {:.1} s after the restart",
        took.as_secs_f64()
    );
    assert_eq!(back, CLIENTS, "clients back after the restart");
    assert!(
        took < Duration::from_secs(10),
        "the clients took {took:?} to come back"
    );
    drop(clients);
    drop(ac);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stopping_an_ac_with_200_sessions_is_quick() {
    if netns::skip_without_netns("stopping_an_ac_with_200_sessions_is_quick") {
        return;
    }
    let _turn = one_at_a_time();
    const SESSIONS: usize = 200;
    let (_, ac_bin, load_bin) = programs();
    let client_ns = NetNs::create("stop-c").expect("namespace");
    let server_ns = NetNs::create("stop-s").expect("namespace");
    netns::veth_pair(&client_ns, "veth-c", &server_ns, "veth-s").expect("veth pair");
    let dir = std::env::temp_dir().join(format!("pppoe-stop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = ac_config(&dir, SESSIONS);
    let control_path = dir.join("ac.sock");
    let runtime = runtime();
    let mut ac = start_ac(&server_ns, &ac_bin, &config, &control_path);
    let mut load = Killed(
        client_ns
            .command(&load_bin)
            .args(["--interface", "veth-c", "--user", "load"])
            .arg("--password-file")
            .arg(dir.join("password"))
            .args(["--sessions", &SESSIONS.to_string(), "--rate", "1000"])
            .args(["--hold", "60", "--timeout", "60"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the generator"),
    );
    let interfaces = || {
        server_ns
            .ip(&["-o", "link", "show"])
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(": ppp"))
            .count()
    };
    wait_until(
        "every session with its interface",
        Duration::from_secs(60),
        || sessions_up(&runtime, &control_path) == SESSIONS && interfaces() == SESSIONS,
    );
    let pid = ac.0.id().to_string();
    let stopping = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let mut exited = None;
    while stopping.elapsed() < Duration::from_secs(30) {
        if let Ok(Some(status)) = ac.0.try_wait() {
            exited = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = stopping.elapsed();
    println!(
        "an AC with {SESSIONS} sessions stopped in {:.2} s ({} interfaces left)",
        took.as_secs_f64(),
        interfaces()
    );
    assert!(
        exited.is_some_and(|s| s.success()),
        "the AC did not stop cleanly: {exited:?}"
    );
    assert_eq!(interfaces(), 0, "every session interface removed");
    // Generous for CI's shared cores; a stop takes well under a second here (printed above).
    assert!(took < Duration::from_secs(5), "stopping took {took:?}");
    // The generator's sessions ended by the AC's Terminate and PADT, not by a timeout.
    load.0.kill().ok();
    drop(load);
    drop(ac);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The clients' addresses the AC lists.
fn client_addresses(runtime: &tokio::runtime::Runtime, control: &Path) -> Vec<Ipv4Addr> {
    runtime
        .block_on(control::query(control, "sessions"))
        .unwrap_or_default()
        .lines()
        .skip(1)
        .flat_map(|line| {
            line.split_whitespace()
                .filter_map(|word| word.parse::<Ipv4Addr>().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Sends PADIs from ever new source MACs on `ifname` as fast as one task can for `duration`;
/// returns how many.
async fn padi_flood(ifname: &str, duration: Duration) -> u64 {
    let socket = PacketSocket::bind(ifname).expect("flood socket");
    // PADIs for any service from 02:f1:00:00:00:00, 02:f1:00:00:00:01, ...
    let padi = DiscoveryRepr::new(
        MacAddr::BROADCAST,
        MacAddr([2, 0xf1, 0, 0, 0, 0]),
        Code::Padi,
        0,
    )
    .with_tag(TagType::ServiceName, []);
    let mut frame = padi.to_bytes().expect("a PADI");
    let until = Instant::now() + duration;
    let mut sent: u64 = 0;
    while Instant::now() < until {
        for _ in 0..256 {
            frame[8..12].copy_from_slice(&(sent as u32).to_be_bytes());
            if socket.send(&frame).await.is_ok() {
                sent += 1;
            }
        }
    }
    sent
}

fn start_client(ns: &NetNs, bin: &Path, port: &str) -> Killed {
    Killed(
        ns.command(bin)
            .args(["--interface", port, "--user", "load"])
            .args(["--password", "load secret", "--allow", "chap"])
            .args(["--tun-name", &format!("t{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a client"),
    )
}

#[test]
fn a_padi_flood_does_not_starve_sessions_or_new_clients() {
    if netns::skip_without_netns("a_padi_flood_does_not_starve_sessions_or_new_clients") {
        return;
    }
    let _turn = one_at_a_time();
    if !netns::has_program("ping") {
        eprintln!("skipping: no ping");
        return;
    }
    const UP: usize = 5;
    const PINGS: usize = 200;
    let (client_bin, ac_bin, _) = release_programs();
    let client_ns = NetNs::create("fld-c").expect("namespace");
    let server_ns = NetNs::create("fld-s").expect("namespace");
    netns::veth_pair(&client_ns, "veth-c", &server_ns, "veth-s").expect("veth pair");
    let dir = std::env::temp_dir().join(format!("pppoe-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = ac_config(&dir, UP + 1);
    let control_path = dir.join("ac.sock");
    let runtime = runtime();
    let ac = start_ac(&server_ns, &ac_bin, &config, &control_path);
    let ports = client_ports(&client_ns, UP + 1);
    let mut clients: Vec<Killed> = ports[..UP]
        .iter()
        .map(|port| start_client(&client_ns, &client_bin, port))
        .collect();
    wait_until("the sessions", Duration::from_secs(60), || {
        sessions_up(&runtime, &control_path) == UP
    });
    let addresses = client_addresses(&runtime, &control_path);
    assert_eq!(addresses.len(), UP, "{addresses:?}");
    for address in &addresses {
        let output = server_ns
            .exec(&[
                "ping",
                "-c",
                "2",
                "-i",
                "0.2",
                "-W",
                "2",
                &address.to_string(),
            ])
            .expect("ping");
        assert!(
            output.status.success(),
            "ping {address} before the flood:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }

    let (sent, connected_after, lost) = std::thread::scope(|scope| {
        let flood = scope.spawn(|| {
            client_ns
                .run_async(|| padi_flood("veth-c", Duration::from_secs(4)))
                .expect("flood thread")
        });
        std::thread::sleep(Duration::from_millis(500));
        let pings: Vec<Child> = addresses
            .iter()
            .map(|address| {
                server_ns
                    .command("ping")
                    .args(["-q", "-c", &PINGS.to_string(), "-i", "0.01", "-W", "1"])
                    .arg(address.to_string())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("ping")
            })
            .collect();
        let joining = Instant::now();
        clients.push(start_client(&client_ns, &client_bin, &ports[UP]));
        let mut connected_after = None;
        while joining.elapsed() < Duration::from_secs(10) {
            if sessions_up(&runtime, &control_path) == UP + 1 {
                connected_after = Some(joining.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut lost = 0;
        for ping in pings {
            let output = ping.wait_with_output().expect("ping output");
            let text = String::from_utf8_lossy(&output.stdout);
            let received: usize = text
                .split(',')
                .find_map(|part| part.trim().strip_suffix(" received"))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0);
            lost += PINGS - received.min(PINGS);
        }
        (flood.join().expect("flood"), connected_after, lost)
    });
    println!(
        "PADI flood: {sent} PADIs in 4 s ({} /s); the new client connected after {}; \
         {lost} of {} pings lost",
        sent / 4,
        connected_after.map_or("never".to_owned(), |t| format!("{:.2} s", t.as_secs_f64())),
        PINGS * UP
    );
    assert!(sent > 10_000, "the flood was no flood: {sent} PADIs");
    // Within 2 s (issue 18): its first PADI competes with the flood's for the AC's overall
    // PADI budget and is most likely refused, but its retransmission a second later is
    // recognised as a client trying again and answered (the AC's retry lane).
    let log = std::fs::read_to_string(config.with_extension("log")).unwrap_or_default();
    for line in log
        .lines()
        .filter(|line| line.contains("refused by the PADI limits"))
    {
        println!("the AC: {line}");
    }
    assert!(
        connected_after.is_some_and(|t| t < Duration::from_secs(2)),
        "a new client during the flood: {connected_after:?}; the AC's log:\n{log}"
    );
    assert!(
        lost * 100 < PINGS * UP,
        "{lost} of {} pings lost during the flood",
        PINGS * UP
    );
    drop(clients);
    drop(ac);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_mppe_upload_survives_a_stalled_ac() {
    if netns::skip_without_netns("an_mppe_upload_survives_a_stalled_ac") {
        return;
    }
    let _turn = one_at_a_time();
    if !netns::has_program("ping") {
        eprintln!("skipping: no ping");
        return;
    }
    let (client_bin, ac_bin, _) = release_programs();
    let client_ns = NetNs::create("mppe-c").expect("namespace");
    let server_ns = NetNs::create("mppe-s").expect("namespace");
    netns::veth_pair(&client_ns, "veth-c", &server_ns, "veth-s").expect("veth pair");
    let dir = std::env::temp_dir().join(format!("pppoe-stall-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("chap-secrets"), "load * \"load secret\" *\n").expect("secrets");
    let config = dir.join("ac.toml");
    std::fs::write(
        &config,
        format!(
            r#"
            interfaces = ["veth-s"]
            authentication = ["mschap2"]
            chap-secrets = "{}"
            [profiles.default]
            local-address = "192.0.2.1"
            remote-address = "clients"
            use-encryption = "required"
            [pools]
            clients = ["192.0.2.10-192.0.2.250"]
            "#,
            dir.join("chap-secrets").display()
        ),
    )
    .expect("ac.toml");
    let control_path = dir.join("ac.sock");
    let runtime = runtime();
    let ac = start_ac(&server_ns, &ac_bin, &config, &control_path);
    let client = Killed(
        client_ns
            .command(&client_bin)
            .args(["--interface", "veth-c", "--user", "load"])
            .args(["--password", "load secret", "--allow", "mschap2"])
            .args(["--use-encryption", "required", "--tun-name", "tmppe"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the client"),
    );
    let listing = || {
        runtime
            .block_on(control::query(&control_path, "sessions"))
            .unwrap_or_default()
    };
    wait_until("the encrypted session", Duration::from_secs(30), || {
        let text = listing();
        text.contains("MPPE128") && text.contains(" 192.0.2.")
    });
    let ping_ok = || {
        client_ns
            .exec(&["ping", "-c", "1", "-W", "1", "192.0.2.1"])
            .is_ok_and(|o| o.status.success())
    };
    wait_until("a first ping", Duration::from_secs(10), &ping_ok);

    // The upload: UDP to the AC's discard port as fast as one thread sends, for 3 s; the AC
    // stands still for 1.5 s in the middle of it.
    let ac_pid = ac.0.id().to_string();
    let sent = std::thread::scope(|scope| {
        let upload = scope.spawn(|| {
            client_ns
                .run(|| {
                    let socket = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp");
                    let until = Instant::now() + Duration::from_millis(3000);
                    let payload = [0x55u8; 36];
                    let mut sent = 0u64;
                    while Instant::now() < until {
                        if socket.send_to(&payload, "192.0.2.1:9").is_ok() {
                            sent += 1;
                        }
                    }
                    sent
                })
                .expect("upload thread")
        });
        std::thread::sleep(Duration::from_millis(500));
        Command::new("kill")
            .args(["-STOP", &ac_pid])
            .status()
            .expect("kill");
        std::thread::sleep(Duration::from_millis(1500));
        Command::new("kill")
            .args(["-CONT", &ac_pid])
            .status()
            .expect("kill");
        upload.join().expect("upload")
    });
    let stalled = Instant::now();
    let mut recovered = None;
    while stalled.elapsed() < Duration::from_secs(15) {
        if ping_ok() {
            recovered = Some(stalled.elapsed());
            break;
        }
    }
    let text = listing();
    println!(
        "MPPE upload of {sent} datagrams with a 1.5 s stall of the AC: upstream pings answered \
         again after {recovered:?}\n{text}"
    );
    assert!(
        recovered.is_some_and(|t| t < Duration::from_secs(10)),
        "the encrypted upstream stayed dead after the stall"
    );
    drop(client);
    drop(ac);
    let _ = std::fs::remove_dir_all(&dir);
}
