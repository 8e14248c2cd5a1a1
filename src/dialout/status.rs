//! What `monitor` shows: the state of the dial-out client or the server, shared between the run
//! loop and the control socket.
//!
//! The control socket is a Unix stream socket; a client writes one line (`monitor`) and reads
//! the answer, `key: value` lines in RouterOS's `monitor` style, until EOF.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use ppp_modem::ModemStatus;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tracing::debug;

/// The values `monitor` prints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// The overall state: `disconnected`, `dialing`, `connected`, `waiting for traffic`, ...
    pub status: String,
    /// Where the modem sequence is: `initializing`, `checking SIM`, `waiting for registration`,
    /// `dialing`, `connected`, `hanging up`, ...
    pub dial_status: String,
    /// When the current call came up (IPCP Opened).
    pub connected_since: Option<Instant>,
    /// Our address.
    pub address: Option<Ipv4Addr>,
    /// The peer's address.
    pub peer_address: Option<Ipv4Addr>,
    /// Our IPv6 link-local address, while IPv6CP is up.
    pub ipv6_address: Option<Ipv6Addr>,
    /// The peer's IPv6 link-local address, while IPv6CP is up.
    pub ipv6_peer: Option<Ipv6Addr>,
    /// DNS servers from the peer.
    pub dns: Vec<Ipv4Addr>,
    /// The interface MTU.
    pub mtu: Option<u16>,
    /// Our MRU.
    pub mru: Option<u16>,
    /// The signal strength in dBm (`AT+CSQ`).
    pub signal_dbm: Option<i16>,
    /// The operator (`AT+COPS?`).
    pub operator: Option<String>,
    /// The rate from `CONNECT`.
    pub rate: Option<u32>,
    /// Call attempts so far.
    pub attempts: u32,
    /// Consecutive failures.
    pub failures: u32,
    /// The last error.
    pub last_error: Option<String>,
    /// Server: the name the peer authenticated as.
    pub peer_name: Option<String>,
    /// Multilink: the bundle's MRRU (what the peer reassembles), while it runs over MP.
    pub mrru: Option<u16>,
    /// The lines of a client with several ports (or the calls of a server on several ports),
    /// in port order; empty for a single port.
    pub members: Vec<MemberStatus>,
}

/// One line of a bundle as `monitor` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberStatus {
    /// The serial port.
    pub port: String,
    /// `dialing`, `connected`, `hanging up`, `redialing`, `disconnected`, `failed`, ...
    pub status: String,
    /// Where its modem sequence is.
    pub dial_status: String,
    /// Its link's phase (`establish`, `authenticate`, `network`, ...), while a call is up.
    pub phase: Option<String>,
    /// Whether it is in the bundle (carrying the network layer).
    pub joined: bool,
    /// Server: the name the caller authenticated as.
    pub peer_name: Option<String>,
    /// Server: the bundle (or the link's own unit) it carries.
    pub unit: Option<String>,
    /// The rate from `CONNECT`.
    pub rate: Option<u32>,
    /// Calls attempted on it.
    pub attempts: u32,
    /// Its last error.
    pub last_error: Option<String>,
}

impl MemberStatus {
    /// A line on `port`, idle.
    pub fn new(port: impl Into<String>) -> Self {
        MemberStatus {
            port: port.into(),
            status: "disconnected".into(),
            dial_status: "idle".into(),
            ..MemberStatus::default()
        }
    }

    /// One `monitor` value: `port=... status=... ...`.
    fn render(&self) -> String {
        let mut out = format!(
            "{} status={} dial-status={}",
            self.port,
            self.status.replace(' ', "-"),
            self.dial_status.replace(' ', "-")
        );
        if let Some(phase) = &self.phase {
            let _ = write!(out, " phase={phase}");
        }
        let _ = write!(
            out,
            " multilink={}",
            if self.joined { "joined" } else { "no" }
        );
        if let Some(unit) = &self.unit {
            let _ = write!(out, " unit={}", unit.replace(' ', "-"));
        }
        if let Some(name) = &self.peer_name {
            let _ = write!(out, " peer-name={name}");
        }
        if let Some(rate) = self.rate {
            let _ = write!(out, " rate={rate}");
        }
        let _ = write!(out, " attempts={}", self.attempts);
        if let Some(error) = &self.last_error {
            let _ = write!(out, " last-error=\"{error}\"");
        }
        out
    }
}

impl Status {
    /// Takes in the modem's status (signal, operator).
    pub fn update_modem(&mut self, modem: &ModemStatus) {
        if modem.signal_dbm.is_some() {
            self.signal_dbm = modem.signal_dbm;
        }
        if modem.operator.is_some() {
            self.operator.clone_from(&modem.operator);
        }
    }

    /// The call went down: clears what belonged to it.
    pub fn call_ended(&mut self) {
        self.connected_since = None;
        self.address = None;
        self.peer_address = None;
        self.ipv6_address = None;
        self.ipv6_peer = None;
        self.dns.clear();
        self.rate = None;
        self.peer_name = None;
        self.mrru = None;
    }

    /// The `monitor` text at `now`.
    pub fn render(&self, now: Instant) -> String {
        let mut out = String::new();
        let mut line = |key: &str, value: &dyn std::fmt::Display| {
            let _ = writeln!(out, "{key:>12}: {value}");
        };
        line("status", &self.status);
        line("dial-status", &self.dial_status);
        if let Some(since) = self.connected_since {
            line(
                "uptime",
                &format_uptime(now.saturating_duration_since(since).as_secs()),
            );
        }
        if let Some(address) = self.address {
            line("ipaddress", &address);
        }
        if let Some(peer) = self.peer_address {
            line("remote", &peer);
        }
        if let Some(address) = self.ipv6_address {
            line("ipv6-local", &address);
        }
        if let Some(peer) = self.ipv6_peer {
            line("ipv6-remote", &peer);
        }
        if !self.dns.is_empty() {
            let list: Vec<String> = self.dns.iter().map(ToString::to_string).collect();
            line("dns-server", &list.join(","));
        }
        if let Some(mtu) = self.mtu {
            line("mtu", &mtu);
        }
        if let Some(mru) = self.mru {
            line("mru", &mru);
        }
        if let Some(rate) = self.rate {
            line("rate", &rate);
        }
        if let Some(mrru) = self.mrru {
            line("mrru", &mrru);
        }
        if !self.members.is_empty() {
            let joined = self.members.iter().filter(|m| m.joined).count();
            line(
                "members",
                &format!("{joined} of {} lines in the bundle", self.members.len()),
            );
            for (index, member) in self.members.iter().enumerate() {
                line(&format!("line-{}", index + 1), &member.render());
            }
        }
        if let Some(dbm) = self.signal_dbm {
            line("signal", &format!("{dbm}dBm"));
        }
        if let Some(operator) = &self.operator {
            line("operator", operator);
        }
        if let Some(name) = &self.peer_name {
            line("peer-name", name);
        }
        line("attempts", &self.attempts);
        if let Some(error) = &self.last_error {
            line("last-error", error);
        }
        out
    }
}

/// `1h2m3s`, RouterOS style.
fn format_uptime(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, (seconds / 60) % 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// A [`Status`] shared between tasks.
#[derive(Clone, Debug, Default)]
pub struct SharedStatus(Arc<Mutex<Status>>);

impl SharedStatus {
    /// A new, empty status.
    pub fn new() -> Self {
        SharedStatus::default()
    }

    /// Locks it (a poisoned lock is taken over: the status is plain data).
    pub fn lock(&self) -> MutexGuard<'_, Status> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A copy.
    pub fn snapshot(&self) -> Status {
        self.lock().clone()
    }

    /// Sets both state strings.
    pub fn set_state(&self, status: &str, dial_status: &str) {
        let mut guard = self.lock();
        status.clone_into(&mut guard.status);
        dial_status.clone_into(&mut guard.dial_status);
    }

    /// The `monitor` text now.
    pub fn render(&self) -> String {
        self.lock().render(ppp_tokio::serial::now())
    }
}

/// Serves `monitor` on a Unix socket at `path` (replacing a stale socket file) until the task
/// is dropped.
///
/// # Errors
///
/// The socket cannot be bound.
pub fn serve_control(path: &Path, status: SharedStatus) -> std::io::Result<ControlServer> {
    let _ = std::fs::remove_file(path);
    let listener =
        UnixListener::bind(path).map_err(|error| crate::cli::named(path.display(), error))?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let status = status.clone();
            tokio::spawn(async move {
                if let Err(error) = answer(stream, &status).await {
                    debug!("control socket: {error}");
                }
            });
        }
    });
    Ok(ControlServer {
        path: path.to_owned(),
        task,
    })
}

async fn answer(stream: UnixStream, status: &SharedStatus) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut request = String::new();
    // Bounded: one short line.
    let mut reader = BufReader::new(read.take(256));
    reader.read_line(&mut request).await?;
    let reply = match request.trim() {
        "" | "monitor" | "print" => status.render(),
        other => format!("unknown command {other:?} (monitor)\n"),
    };
    write.write_all(reply.as_bytes()).await?;
    write.shutdown().await
}

/// The running control socket; removes the socket file when dropped.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Asks the program behind the control socket at `path` for its `monitor` text.
///
/// # Errors
///
/// Connecting, writing or reading fails.
pub async fn query_control(path: &Path) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(path).await?;
    stream.write_all(b"monitor\n").await?;
    let mut reply = String::new();
    stream.take(64 * 1024).read_to_string(&mut reply).await?;
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn render_in_monitor_style() {
        let start = Instant::now();
        let status = Status {
            status: "connected".into(),
            dial_status: "connected".into(),
            connected_since: Some(start),
            address: Some(Ipv4Addr::new(198, 51, 100, 2)),
            dns: vec![
                Ipv4Addr::new(198, 51, 100, 53),
                Ipv4Addr::new(198, 51, 100, 54),
            ],
            mtu: Some(1500),
            ipv6_peer: Some("fe80::1".parse().unwrap()),
            signal_dbm: Some(-73),
            operator: Some("SimNet".into()),
            attempts: 2,
            ..Status::default()
        };
        let text = status.render(start + Duration::from_secs(3723));
        for line in [
            "      status: connected",
            "      uptime: 1h2m3s",
            "   ipaddress: 198.51.100.2",
            "  dns-server: 198.51.100.53,198.51.100.54",
            "         mtu: 1500",
            " ipv6-remote: fe80::1",
            "      signal: -73dBm",
            "    operator: SimNet",
            "    attempts: 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from\n{text}"
            );
        }
        assert!(
            !text.lines().any(|l| l.trim_start().starts_with("remote:")),
            "no peer address, no line"
        );
    }

    #[test]
    fn members_are_listed_one_line_each() {
        let mut first = MemberStatus::new("/dev/ttyUSB0");
        first.status = "connected".into();
        first.dial_status = "connected".into();
        first.phase = Some("network".into());
        first.joined = true;
        first.rate = Some(115_200);
        first.attempts = 1;
        let mut second = MemberStatus::new("/dev/ttyUSB2");
        second.status = "redialing".into();
        second.attempts = 3;
        second.last_error = Some("modem: BUSY".into());
        let status = Status {
            status: "connected".into(),
            mrru: Some(1600),
            members: vec![first, second],
            ..Status::default()
        };
        let text = status.render(Instant::now());
        for line in [
            "        mrru: 1600",
            "     members: 1 of 2 lines in the bundle",
            "      line-1: /dev/ttyUSB0 status=connected dial-status=connected phase=network multilink=joined rate=115200 attempts=1",
            "      line-2: /dev/ttyUSB2 status=redialing dial-status=idle multilink=no attempts=3 last-error=\"modem: BUSY\"",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from\n{text}"
            );
        }
        assert!(
            !Status::default().render(Instant::now()).contains("members"),
            "a single port lists no members"
        );
    }

    #[tokio::test]
    async fn the_control_socket_answers_monitor() {
        let path = std::env::temp_dir().join(format!("dialout-status-{}.sock", std::process::id()));
        let status = SharedStatus::new();
        status.set_state("dialing", "waiting for registration");
        let server = serve_control(&path, status.clone()).expect("bind");
        let reply = query_control(&path).await.expect("query");
        assert!(
            reply.contains(" dial-status: waiting for registration"),
            "{reply}"
        );
        drop(server);
        assert!(!path.exists(), "the socket file is removed");
    }
}
