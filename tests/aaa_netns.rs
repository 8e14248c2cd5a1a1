//! AAA through the real programs: `access-concentrator` and `pppoe-client` as child processes in
//! two network namespaces, two FreeRADIUS 3.2 instances inside the AC's namespace (on its
//! loopback), `radclient` sending dynamic authorization, `iperf3` measuring rate limits.
//!
//! One FreeRADIUS pair, one AC and one pair of namespaces serve every assertion of
//! [`radius_through_the_programs`] in turn, to keep CI time modest (about a minute and a half):
//! PAP, CHAP, MS-CHAPv1 and MS-CHAPv2 through RADIUS with MPPE keys from RADIUS, the
//! Reply-Message at the client on success and on reject, accounting with octet counts that match
//! the pings sent, interim updates on time, Stop on every way a session ends (client hang-up,
//! Disconnect-Request, idle timeout, session timeout, lost carrier, AC shutdown), a CoA changing
//! the rate, a forged CoA refused and counted, failover to the second server, a login refused
//! while no server answers, the accounting spool delivered when a server comes back, and the
//! rate limit measured with iperf3.
//!
//! They need root, FreeRADIUS and radclient: without them they print why and pass, unless
//! `PPP_NETNS_REQUIRED=1` / `PPP_FREERADIUS_REQUIRED=1` (CI), where they fail. iperf3 missing
//! makes only the rate measurements skip.

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ppp_stack::pppoe::control;
use ppp_tokio::freeradius::{self, FreeRadius, Mode, SECRET};
use ppp_tokio::netns::{self, NetNs};

/// The AC's address on every session.
const AC_ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The secret radclient signs dynamic authorization with (the first server's).
const DAE_PORT: u16 = 3799;

const USERS: &str = r#"alice	Cleartext-Password := "correct horse"
	Reply-Message = "Welcome, alice",
	Class = "gold",
	Acct-Interim-Interval = 2

limited	Cleartext-Password := "slow lane"
	Mikrotik-Rate-Limit = "2M/1M"

idle	Cleartext-Password := "idle hands"
	Idle-Timeout = 3

short	Cleartext-Password := "short lived"
	Session-Timeout = 4,
	Framed-IP-Address = 192.0.2.150

DEFAULT	Auth-Type := Reject
"#;

mod support;

use support::{build_examples, wait_until};

/// The program binaries, built once.
fn programs() -> (PathBuf, PathBuf) {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let examples =
        BUILT.get_or_init(|| build_examples(false, &["pppoe-client", "access-concentrator"]));
    (
        examples.join("pppoe-client"),
        examples.join("access-concentrator"),
    )
}

/// A child program whose stderr is collected by a thread; killed on drop.
struct Program {
    child: Child,
    log: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Program {
    fn spawn(mut command: Command) -> Program {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("start a program");
        let mut stderr = child.stderr.take().expect("stderr");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&text);
            }
        });
        Program {
            child,
            log,
            reader: Some(reader),
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn signal(&self, signal: &str) {
        Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .ok();
    }

    /// Waits for the exit (killed after `limit`): the exit code and the whole log.
    fn wait(&mut self, limit: Duration) -> (Option<i32>, String) {
        let deadline = Instant::now() + limit;
        let mut code = None;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                code = status.code();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if code.is_none() {
            self.child.kill().ok();
            self.child.wait().ok();
        }
        if let Some(reader) = self.reader.take() {
            reader.join().ok();
        }
        (code, self.log())
    }

    /// SIGTERM, then the exit code and the log.
    fn stop(&mut self) -> (Option<i32>, String) {
        self.signal("-TERM");
        self.wait(Duration::from_secs(10))
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn query(path: &Path, command: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime
        .block_on(control::query(path, command))
        .unwrap_or_default()
}

/// The value of `key` in a detail record (`Acct-Input-Octets = 3084` gives "3084").
fn field<'a>(record: &'a str, key: &str) -> Option<&'a str> {
    record.lines().find_map(|line| {
        let (k, v) = line.trim().split_once(" = ")?;
        (k == key).then(|| v.trim_matches('"'))
    })
}

fn number(record: &str, key: &str) -> u64 {
    field(record, key)
        .unwrap_or_else(|| panic!("no {key} in\n{record}"))
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number in\n{record}"))
}

/// The test bed: namespaces, FreeRADIUS ×2 in the AC's namespace, the AC program.
struct Bed {
    client_ns: NetNs,
    server_ns: NetNs,
    primary: FreeRadius,
    secondary: FreeRadius,
    ac: Program,
    ac_control: PathBuf,
    client_bin: PathBuf,
    dir: PathBuf,
    sessions: usize,
}

impl Bed {
    fn start(name: &str) -> Bed {
        let (client_bin, ac_bin) = programs();
        let client_ns = NetNs::create(&format!("{name}-c")).expect("client namespace");
        let server_ns = NetNs::create(&format!("{name}-s")).expect("server namespace");
        netns::veth_pair(&client_ns, "veth-c", &server_ns, "veth-s").expect("veth pair");
        let (a1, c1, a2, c2) = (18120, 18130, 18121, 18131);
        let primary =
            FreeRadius::start_in(&server_ns, USERS, a1, c1, Mode::Debug).expect("FreeRADIUS 1");
        let secondary =
            FreeRadius::start_in(&server_ns, USERS, a2, c2, Mode::Debug).expect("FreeRADIUS 2");
        let dir = std::env::temp_dir().join(format!("aaa-netns-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config = dir.join("ac.toml");
        std::fs::write(
            &config,
            format!(
                r#"
                interfaces = ["veth-s"]
                ac-name = "aaa-ac"
                authentication = ["mschap2", "mschap1", "chap", "pap"]
                keepalive-timeout = 2
                [profiles.default]
                local-address = "192.0.2.1"
                remote-address = "clients"
                use-encryption = "yes"
                [pools]
                clients = ["192.0.2.100-192.0.2.149"]
                [aaa]
                use-radius = true
                accounting = true
                [radius]
                nas-identifier = "aaa-ac"
                nas-ip-address = "127.0.0.1"
                timeout = "300ms"
                retries = 2
                accounting-retry = "1s"
                accounting-spool = "{spool}"
                [[radius.servers]]
                address = "127.0.0.1"
                secret = "{SECRET}"
                authentication-port = {a1}
                accounting-port = {c1}
                [[radius.servers]]
                address = "127.0.0.1"
                secret = "{SECRET}"
                authentication-port = {a2}
                accounting-port = {c2}
                [radius.incoming]
                accept = true
                address = "127.0.0.1"
                port = {DAE_PORT}
                "#,
                spool = dir.join("spool").display()
            ),
        )
        .expect("write ac.toml");
        let ac_control = dir.join("ac.sock");
        let mut command = server_ns.command(&ac_bin);
        command
            .arg("--config")
            .arg(&config)
            .arg("--control")
            .arg(&ac_control)
            .arg("-v");
        let ac = Program::spawn(command);
        wait_until("the AC's control socket", Duration::from_secs(10), || {
            ac_control.exists()
        });
        Bed {
            client_ns,
            server_ns,
            primary,
            secondary,
            ac,
            ac_control,
            client_bin,
            dir,
            sessions: 0,
        }
    }

    /// Starts `pppoe-client` for `user` with `method` (not waiting).
    fn client(&mut self, user: &str, password: &str, method: &str) -> (Program, PathBuf) {
        self.sessions += 1;
        let control = self.dir.join(format!("client{}.sock", self.sessions));
        let mut command = self.client_ns.command(&self.client_bin);
        command
            .args([
                "--interface",
                "veth-c",
                "--user",
                user,
                "--password",
                password,
            ])
            .args([
                "--allow",
                method,
                "--no-reconnect",
                "--keepalive-timeout",
                "2",
            ])
            .args(["--use-encryption", "yes"])
            .arg("--control")
            .arg(&control)
            .arg("-v");
        (Program::spawn(command), control)
    }

    /// Starts a client and waits until it is connected: its monitor text.
    fn connect(&mut self, user: &str, password: &str, method: &str) -> (Program, PathBuf, String) {
        let (client, control) = self.client(user, password, method);
        let mut monitor = String::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !monitor.contains("status: connected") {
            assert!(
                Instant::now() < deadline,
                "{user} ({method}) did not connect:\n{}\n--- AC:\n{}",
                client.log(),
                self.ac.log()
            );
            std::thread::sleep(Duration::from_millis(100));
            monitor = query(&control, "monitor");
        }
        (client, control, monitor)
    }

    fn ping(&self, count: u32, size: u32) {
        let output = self
            .client_ns
            .exec(&[
                "ping",
                "-c",
                &count.to_string(),
                "-s",
                &size.to_string(),
                "-i",
                "0.2",
                "-W",
                "2",
                &AC_ADDRESS.to_string(),
            ])
            .expect("run ping");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            text.contains(&format!("{count} received")),
            "ping failed:\n{text}"
        );
    }

    /// Accounting records of `user` with `status` at `server`, oldest first.
    fn records(server: &FreeRadius, user: &str, status: &str) -> Vec<String> {
        server
            .detail_records_with(&format!("User-Name = \"{user}\""))
            .into_iter()
            .filter(|r| field(r, "Acct-Status-Type") == Some(status))
            .collect()
    }

    /// Waits until `server` has more than `before` records of `user` with `status`: the newest.
    fn next_record(
        &self,
        server: &FreeRadius,
        user: &str,
        status: &str,
        before: usize,
        within: Duration,
    ) -> String {
        let deadline = Instant::now() + within;
        loop {
            let records = Self::records(server, user, status);
            if records.len() > before {
                return records.last().cloned().unwrap_or_default();
            }
            assert!(
                Instant::now() < deadline,
                "no new {status} record for {user} ({before} before):\n{}\n--- AC:\n{}",
                server.detail(),
                self.ac.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Bed {
    /// radclient in the AC's namespace: `kind` (coa, disconnect) with `attributes`, signed with
    /// `secret`: its output.
    fn radclient(&self, kind: &str, secret: &str, attributes: &str) -> String {
        let mut child = self
            .server_ns
            .command("radclient")
            .args(["-x", "-r", "1", "-t", "2"])
            .arg(format!("127.0.0.1:{DAE_PORT}"))
            .args([kind, secret])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("radclient (freeradius-utils)");
        use std::io::Write as _;
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

    /// iperf3 from the client's namespace to the AC's address for `seconds` (after one second
    /// left out): the receiver's rate in bits per second. `reverse`: the AC sends.
    fn iperf(&self, seconds: u32, reverse: bool) -> f64 {
        let mut args = vec![
            "iperf3".to_owned(),
            "-c".into(),
            AC_ADDRESS.to_string(),
            "-t".into(),
            seconds.to_string(),
            "-O".into(),
            "1".into(),
            "-J".into(),
        ];
        if reverse {
            args.push("-R".into());
        }
        let output = self.client_ns.exec(&args).expect("run iperf3");
        let text = String::from_utf8_lossy(&output.stdout);
        // "sum_received": { ..., "bits_per_second": N, ... }
        let received = text
            .split("\"sum_received\"")
            .nth(1)
            .unwrap_or_else(|| panic!("iperf3 failed:\n{text}"));
        received
            .split("\"bits_per_second\":")
            .nth(1)
            .and_then(|rest| rest.split([',', '}']).next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no rate in\n{text}"))
    }

    fn acct_session_id(record: &str) -> String {
        field(record, "Acct-Session-Id")
            .unwrap_or_else(|| panic!("no Acct-Session-Id in {record}"))
            .to_owned()
    }
}

/// Asserts that `rate` (bits per second) is within 10% of `limit`.
fn within_ten_percent(what: &str, rate: f64, limit: f64) {
    eprintln!(
        "{what}: {:.3} Mbit/s for a limit of {:.3} Mbit/s ({:+.1}%)",
        rate / 1e6,
        limit / 1e6,
        (rate / limit - 1.0) * 100.0
    );
    assert!(
        (rate - limit).abs() <= limit * 0.10,
        "{what}: {rate} bit/s is not within 10% of {limit}"
    );
}

fn skip(test: &str) -> bool {
    netns::skip_without_netns(test) || freeradius::skip(test)
}

#[test]
fn radius_through_the_programs() {
    if skip("radius_through_the_programs") {
        return;
    }
    let mut bed = Bed::start("aaa");

    // Every method through RADIUS; pings of known sizes in and out; the client hangs up.
    for (method, mppe) in [
        ("pap", false),
        ("chap", false),
        ("mschap1", true),
        ("mschap2", true),
    ] {
        let stops = Bed::records(&bed.primary, "alice", "Stop").len();
        let starts = Bed::records(&bed.primary, "alice", "Start").len();
        let (mut client, _control, monitor) = bed.connect("alice", "correct horse", method);
        // MPPE keys from RADIUS (MS-CHAP): the session is encrypted with them.
        assert_eq!(
            monitor.contains("encoding: MPPE128 stateless"),
            mppe,
            "{method}: {monitor}"
        );
        let start = bed.next_record(
            &bed.primary,
            "alice",
            "Start",
            starts,
            Duration::from_secs(5),
        );
        assert_eq!(field(&start, "Class"), Some("0x676f6c64"), "{start}");
        assert_eq!(field(&start, "NAS-Port-Type"), Some("Ethernet"), "{start}");
        assert_eq!(field(&start, "NAS-Identifier"), Some("aaa-ac"), "{start}");
        assert_eq!(field(&start, "Acct-Authentic"), Some("RADIUS"), "{start}");
        bed.ping(3, 1000);
        let (code, log) = client.stop();
        assert_eq!(code, Some(0), "{log}");
        assert!(
            log.contains("Remote message: Welcome, alice"),
            "{method}:\n{log}"
        );
        let stop = bed.next_record(&bed.primary, "alice", "Stop", stops, Duration::from_secs(5));
        assert_eq!(
            field(&stop, "Acct-Session-Id"),
            field(&start, "Acct-Session-Id")
        );
        // 3 echo requests of 1000 bytes of data: 1028-byte IP packets each way.
        assert_eq!(
            number(&stop, "Acct-Input-Octets"),
            3 * 1028,
            "{method}:\n{stop}"
        );
        assert_eq!(
            number(&stop, "Acct-Output-Octets"),
            3 * 1028,
            "{method}:\n{stop}"
        );
        assert_eq!(number(&stop, "Acct-Input-Packets"), 3, "{stop}");
        assert_eq!(number(&stop, "Acct-Output-Packets"), 3, "{stop}");
        assert_eq!(
            field(&stop, "Acct-Terminate-Cause"),
            Some("User-Request"),
            "{stop}"
        );
        assert_eq!(field(&stop, "Class"), Some("0x676f6c64"), "{stop}");
    }

    // A refusal: the Reply-Message of the Access-Reject at the client, exit status 19.
    for method in ["pap", "mschap2"] {
        let (mut client, _) = bed.client("mallory", "guess", method);
        let (code, log) = client.wait(Duration::from_secs(20));
        assert_eq!(code, Some(19), "{method}:\n{log}");
        assert!(log.contains("Login refused by RADIUS"), "{method}:\n{log}");
    }

    // Interim updates every 2 s (Acct-Interim-Interval), then a Disconnect-Request.
    let starts = Bed::records(&bed.primary, "alice", "Start").len();
    let (mut client, _, _) = bed.connect("alice", "correct horse", "chap");
    let start = bed.next_record(
        &bed.primary,
        "alice",
        "Start",
        starts,
        Duration::from_secs(5),
    );
    let id = Bed::acct_session_id(&start);
    std::thread::sleep(Duration::from_millis(4_600));
    let interims: Vec<String> = Bed::records(&bed.primary, "alice", "Interim-Update")
        .into_iter()
        .filter(|r| field(r, "Acct-Session-Id") == Some(id.as_str()))
        .collect();
    let times: Vec<u64> = interims
        .iter()
        .map(|r| number(r, "Acct-Session-Time"))
        .collect();
    assert_eq!(times, vec![2, 4], "interim updates:\n{interims:?}");
    let received: Vec<u64> = interims.iter().map(|r| number(r, "Timestamp")).collect();
    assert!(
        received[1] - received[0] >= 1 && received[1] - received[0] <= 3,
        "interims received at {received:?}"
    );
    let stops = Bed::records(&bed.primary, "alice", "Stop").len();
    let answer = bed.radclient(
        "disconnect",
        SECRET,
        &format!("Acct-Session-Id = \"{id}\", NAS-Identifier = \"aaa-ac\""),
    );
    assert!(answer.contains("Received Disconnect-ACK"), "{answer}");
    let (code, log) = client.wait(Duration::from_secs(10));
    assert!(log.contains("Administrative reset"), "{code:?}\n{log}");
    let stop = bed.next_record(&bed.primary, "alice", "Stop", stops, Duration::from_secs(5));
    assert_eq!(field(&stop, "Acct-Session-Id"), Some(id.as_str()));
    assert_eq!(
        field(&stop, "Acct-Terminate-Cause"),
        Some("Admin-Reset"),
        "{stop}"
    );
    // A session that is not there: NAK.
    let answer = bed.radclient("disconnect", SECRET, "User-Name = \"nobody\"");
    assert!(answer.contains("Disconnect-NAK"), "{answer}");

    // The rate limit from RADIUS (2M/1M: the user's upload/download), measured; a CoA raises
    // it; a forged CoA is refused and counted.
    let starts = Bed::records(&bed.primary, "limited", "Start").len();
    let (mut client, _, _) = bed.connect("limited", "slow lane", "mschap2");
    let start = bed.next_record(
        &bed.primary,
        "limited",
        "Start",
        starts,
        Duration::from_secs(5),
    );
    let id = Bed::acct_session_id(&start);
    let sessions = query(&bed.ac_control, "sessions");
    assert!(sessions.contains("2M/1M"), "{sessions}");
    if netns::has_program("iperf3") {
        let iperf_server = Program::spawn({
            let mut command = bed.server_ns.command("iperf3");
            command.args(["-s", "-B", &AC_ADDRESS.to_string()]);
            command
        });
        std::thread::sleep(Duration::from_millis(300));
        within_ten_percent("upload through 2M/1M", bed.iperf(5, false), 2e6);
        within_ten_percent("download through 2M/1M", bed.iperf(5, true), 1e6);
        let answer = bed.radclient(
            "coa",
            SECRET,
            &format!("Acct-Session-Id = \"{id}\", Mikrotik-Rate-Limit = \"4M/2M\""),
        );
        assert!(answer.contains("Received CoA-ACK"), "{answer}");
        within_ten_percent("download after a CoA to 4M/2M", bed.iperf(5, true), 2e6);
        iperf_server.signal("-KILL");
    } else {
        eprintln!("no iperf3: the rate measurements are skipped");
        let answer = bed.radclient(
            "coa",
            SECRET,
            &format!("Acct-Session-Id = \"{id}\", Mikrotik-Rate-Limit = \"4M/2M\""),
        );
        assert!(answer.contains("Received CoA-ACK"), "{answer}");
    }
    assert!(query(&bed.ac_control, "sessions").contains("4M/2M"));
    let forged = bed.radclient(
        "coa",
        "not-the-secret",
        &format!("Acct-Session-Id = \"{id}\", Mikrotik-Rate-Limit = \"100M/100M\""),
    );
    assert!(!forged.contains("Received"), "{forged}");
    let counters = query(&bed.ac_control, "radius");
    assert!(counters.contains("incoming-forged: 1"), "{counters}");
    assert!(
        query(&bed.ac_control, "sessions").contains("4M/2M"),
        "unchanged"
    );
    client.stop();

    // Idle-Timeout 3 s: no traffic, the session ends on time.
    let stops = Bed::records(&bed.primary, "idle", "Stop").len();
    let (mut client, _, _) = bed.connect("idle", "idle hands", "pap");
    let connected = Instant::now();
    let (_, log) = client.wait(Duration::from_secs(10));
    let lasted = connected.elapsed();
    assert!(log.contains("Idle timeout"), "{log}");
    assert!(
        lasted >= Duration::from_millis(2_500) && lasted < Duration::from_secs(5),
        "idle session lasted {lasted:?}"
    );
    let stop = bed.next_record(&bed.primary, "idle", "Stop", stops, Duration::from_secs(5));
    assert_eq!(
        field(&stop, "Acct-Terminate-Cause"),
        Some("Idle-Timeout"),
        "{stop}"
    );
    assert_eq!(number(&stop, "Acct-Session-Time"), 3, "{stop}");

    // Session-Timeout 4 s and the Framed-IP-Address from RADIUS, with traffic all along.
    let stops = Bed::records(&bed.primary, "short", "Stop").len();
    let (mut client, _, monitor) = bed.connect("short", "short lived", "chap");
    assert!(monitor.contains("local-address: 192.0.2.150"), "{monitor}");
    let connected = Instant::now();
    let _ = bed
        .client_ns
        .exec(&["ping", "-c", "30", "-i", "0.2", "-w", "6", "192.0.2.1"]);
    let (_, log) = client.wait(Duration::from_secs(10));
    let lasted = connected.elapsed();
    assert!(log.contains("Session timeout"), "{log}");
    assert!(lasted < Duration::from_secs(7), "session lasted {lasted:?}");
    let stop = bed.next_record(&bed.primary, "short", "Stop", stops, Duration::from_secs(5));
    assert_eq!(
        field(&stop, "Acct-Terminate-Cause"),
        Some("Session-Timeout"),
        "{stop}"
    );
    assert_eq!(number(&stop, "Acct-Session-Time"), 4, "{stop}");
    assert_eq!(
        field(&stop, "Framed-IP-Address"),
        Some("192.0.2.150"),
        "{stop}"
    );

    // The client vanishes (SIGKILL): the AC's keepalive (2 × 2 s, then its Terminate-Requests
    // unanswered, as pppd) ends it as Lost-Carrier.
    let stops = Bed::records(&bed.primary, "alice", "Stop").len();
    let (mut client, _, _) = bed.connect("alice", "correct horse", "pap");
    client.signal("-KILL");
    client.wait(Duration::from_secs(2));
    let stop = bed.next_record(
        &bed.primary,
        "alice",
        "Stop",
        stops,
        Duration::from_secs(20),
    );
    assert_eq!(
        field(&stop, "Acct-Terminate-Cause"),
        Some("Lost-Carrier"),
        "{stop}"
    );

    // The first server goes down: authentication and accounting fail over to the second.
    bed.primary.kill();
    let starts = Bed::records(&bed.secondary, "alice", "Start").len();
    let (mut client, _, _) = bed.connect("alice", "correct horse", "mschap2");
    bed.next_record(
        &bed.secondary,
        "alice",
        "Start",
        starts,
        Duration::from_secs(5),
    );
    // Both down: the Stop waits in the spool, and reaches the first server when it is back.
    bed.secondary.kill();
    let (code, _) = client.stop();
    assert_eq!(code, Some(0));
    wait_until("the Stop to be spooled", Duration::from_secs(10), || {
        !query(&bed.ac_control, "radius").contains("accounting-spooled: 0")
    });
    // No server answers a login now: refused, and both sides say why.
    let (mut client, _) = bed.client("alice", "correct horse", "pap");
    let (code, log) = client.wait(Duration::from_secs(30));
    assert_eq!(code, Some(19), "{log}");
    assert!(log.contains("RADIUS server is not responding"), "{log}");
    assert!(
        bed.ac
            .log()
            .contains("user \"alice\" refused: no RADIUS server answered"),
        "{}",
        bed.ac.log()
    );
    let (auth, acct) = (bed.primary.auth.port(), bed.primary.acct.port());
    bed.primary =
        FreeRadius::start_in(&bed.server_ns, USERS, auth, acct, Mode::Debug).expect("restart");
    let stop = bed.next_record(&bed.primary, "alice", "Stop", 0, Duration::from_secs(10));
    assert_eq!(
        field(&stop, "Acct-Terminate-Cause"),
        Some("User-Request"),
        "{stop}"
    );
    assert!(number(&stop, "Acct-Delay-Time") >= 1, "{stop}");

    // The AC stops with a session up: its Stop says NAS-Reboot, sent before the AC exits.
    let stops = Bed::records(&bed.primary, "alice", "Stop").len();
    let (mut client, _, _) = bed.connect("alice", "correct horse", "pap");
    let (code, log) = bed.ac.stop();
    assert_eq!(code, Some(0), "{log}");
    let stop = bed.next_record(&bed.primary, "alice", "Stop", stops, Duration::from_secs(1));
    assert_eq!(
        field(&stop, "Acct-Terminate-Cause"),
        Some("NAS-Reboot"),
        "{stop}"
    );
    client.wait(Duration::from_secs(10));
    assert!(log.contains("dynamic authorization"), "{log}");
    for line in log.lines() {
        assert!(!line.contains(SECRET), "a secret in the log: {line}");
        if line.contains(" DEBUG ") {
            continue;
        }
        for debug_formatting in ["Some(", "None", " { ", "(\""] {
            assert!(
                !line.contains(debug_formatting),
                "Rust debug formatting in an operator's line: {line}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&bed.dir);
}
