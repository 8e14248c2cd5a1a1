//! Root only (skips otherwise): the real `access-concentrator` in one network namespace and
//! `pppoe-load` (many PPPoE clients from one process, one MAC address each) in another, joined
//! by a veth pair. CI brings 200 sessions up (the full-size figures, 10,000 sessions with
//! optimised programs, are in docs/pppoe.md, "At scale"; `PPPOE_LOAD_SESSIONS=10000` runs this
//! test at that size), checks the AC lists them with one interface each, that none of them goes
//! down during a 3-second PADI flood (`--padi-flood`), and
//! that everything is gone again (sessions, interfaces) when the generator ends them. The AC
//! runs without `ip` on its PATH: its session interfaces are configured over rtnetlink.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ppp_stack::pppoe::control;
use ppp_tokio::netns::{self, NetNs};

mod support;

use support::{Killed, build_examples, wait_until};

fn programs() -> (PathBuf, PathBuf) {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let examples =
        BUILT.get_or_init(|| build_examples(false, &["pppoe-load", "access-concentrator"]));
    (
        examples.join("pppoe-load"),
        examples.join("access-concentrator"),
    )
}

#[test]
fn many_sessions_from_one_generator_come_up_and_go_away_cleanly() {
    if netns::skip_without_netns("many_sessions_from_one_generator_come_up_and_go_away_cleanly") {
        return;
    }
    let sessions: u32 = std::env::var("PPPOE_LOAD_SESSIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let (load_bin, ac_bin) = programs();
    let client_ns = NetNs::create("load-c").expect("namespace");
    let server_ns = NetNs::create("load-s").expect("namespace");
    netns::veth_pair(&client_ns, "veth-c", &server_ns, "veth-s").expect("veth pair");
    let dir = std::env::temp_dir().join(format!("pppoe-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let control_path = dir.join("ac.sock");
    std::fs::write(dir.join("chap-secrets"), "load * \"load secret\" *\n").expect("secrets");
    std::fs::write(dir.join("password"), "load secret\n").expect("password file");
    // Addresses: 192.0.2.0/24 and 198.51.100.0/24 for CI's 200 sessions; the full-size run
    // needs a larger pool: 198.18.0.0/15, the benchmarking range (RFC 2544).
    let pool = if sessions <= 400 {
        r#"["192.0.2.10-192.0.2.250", "198.51.100.10-198.51.100.250"]"#.to_owned()
    } else {
        r#"["198.18.0.1-198.19.255.254"]"#.to_owned()
    };
    let ac_toml = dir.join("ac.toml");
    std::fs::write(
        &ac_toml,
        format!(
            r#"
            interfaces = ["veth-s"]
            ac-name = "load-ac"
            max-sessions = {max}
            authentication = ["chap"]
            chap-secrets = "{secrets}"
            [profiles.default]
            local-address = "192.0.2.1"
            remote-address = "clients"
            [pools]
            clients = {pool}
            "#,
            max = sessions + 10,
            secrets = dir.join("chap-secrets").display(),
        ),
    )
    .expect("ac.toml");
    // Without `ip` on its PATH: session interfaces are configured over rtnetlink, with no
    // process spawned per session.
    let ac = Killed(
        server_ns
            .command("env")
            .arg("PATH=/nonexistent")
            .arg(&ac_bin)
            .arg("--config")
            .arg(&ac_toml)
            .arg("--control")
            .arg(&control_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the access concentrator"),
    );
    wait_until("the AC's control socket", Duration::from_secs(10), || {
        control_path.exists()
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let listed = |runtime: &tokio::runtime::Runtime| {
        runtime
            .block_on(control::query(&control_path, "sessions"))
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter(|line| line.contains("load"))
            .count()
    };
    let interfaces = || {
        server_ns
            .ip(&["-o", "link", "show"])
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(": ppp"))
            .count()
    };

    let rate = sessions.clamp(100, 2000);
    let mut load = server_ns_client(&client_ns, &load_bin, sessions, rate, &dir, ac.0.id());
    // While the sessions are held up, look at the AC.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen_all = false;
    while Instant::now() < deadline {
        if listed(&runtime) == sessions as usize {
            seen_all = true;
            break;
        }
        if let Ok(Some(_)) = load.0.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Interfaces follow the sessions (created as each session's IPCP comes up).
    let mut with_sessions = interfaces();
    while with_sessions < sessions as usize && Instant::now() < deadline {
        if let Ok(Some(_)) = load.0.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        with_sessions = interfaces();
    }
    let output = std::mem::replace(&mut load.0, Command::new("true").spawn().expect("true"))
        .wait_with_output()
        .expect("generator output");
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the generator failed:\n{report}");
    assert!(seen_all, "the AC never listed {sessions} sessions");
    assert_eq!(
        with_sessions, sessions as usize,
        "one interface per session"
    );
    assert!(
        report.contains(&format!("{sessions} of {sessions} sessions up")),
        "{report}"
    );
    // The flood: the sessions stayed up. Whether the extra client got in is printed, not
    // asserted: here the AC is a debug build, which cannot read a flood at the rate one sender
    // reaches (its ring overflows, clients' PADIs with the flood's), on a machine shared with
    // the generator; tests/pppoe_ac_faults.rs asserts the 2-second bound with release builds.
    assert!(report.contains("PADI flood:"), "{report}");
    assert!(
        report.contains(&format!("0 of {sessions} sessions went down during it")),
        "{report}"
    );
    // Everything ended: no session listed, no interface left.
    wait_until(
        "the AC to forget every session",
        Duration::from_secs(30),
        || listed(&runtime) == 0 && interfaces() == 0,
    );
    drop(ac);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts the generator in `ns`, holding the sessions up for a few seconds.
fn server_ns_client(
    ns: &NetNs,
    bin: &Path,
    sessions: u32,
    rate: u32,
    dir: &Path,
    ac_pid: u32,
) -> Killed {
    Killed(
        ns.command(bin)
            .args(["--interface", "veth-c", "--user", "load"])
            .arg("--password-file")
            .arg(dir.join("password"))
            .args(["--sessions", &sessions.to_string()])
            .args(["--rate", &rate.to_string()])
            .args(["--hold", "10", "--timeout", "120"])
            // With the sessions up, 3 s of PADI flood and one more client during it.
            .args(["--padi-flood", "3"])
            .args(["--ac-pid", &ac_pid.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the generator"),
    )
}
