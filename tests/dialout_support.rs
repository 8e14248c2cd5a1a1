//! Shared by the `dialout_*` tests (included with `#[path]`): a simulated modem whose behaviour
//! changes from one call attempt to the next, and the wiring of client, modem and server.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ppp_link::Datagram;
use ppp_modem::sim::{SimConfig, SimModem};
use ppp_stack::dialout::{
    ClientConfig, ClientEvent, ClientExit, ClientIo, ClientOptions, DialOutError, ServerConfig,
    ServerEvent, ServerExit, ServerIo, ServerOptions, SharedStatus, run_client, run_server,
};
use ppp_tokio::serial::{SimulatedModem, bridge_modem, dtr_line};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_serial::SerialPort as _;

/// A [`SimModem`] that takes the next [`SimConfig`] from a list whenever the host starts a new
/// attempt (sends `ATZ` while on-hook); the last configuration repeats.
pub struct ScriptedSim {
    configs: VecDeque<SimConfig>,
    modem: SimModem,
    /// Every command line received, across all modems, shared with the test.
    pub commands: Arc<Mutex<Vec<String>>>,
    /// Ring this many times after each `ATS0=0` (the answerer's last init command).
    pub ring_after_init: Option<u32>,
}

impl ScriptedSim {
    /// A modem using `configs[0]` for the first attempt, `configs[1]` for the second, ...
    pub fn new(configs: Vec<SimConfig>) -> Self {
        let mut configs: VecDeque<SimConfig> = configs.into();
        let first = configs.front().cloned().unwrap_or_default();
        if configs.len() > 1 {
            configs.pop_front();
        }
        ScriptedSim {
            configs,
            modem: SimModem::new(first),
            commands: Arc::default(),
            ring_after_init: None,
        }
    }
}

impl SimulatedModem for ScriptedSim {
    fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        let starts_attempt = bytes.windows(3).any(|w| w.eq_ignore_ascii_case(b"ATZ"));
        if starts_attempt && !self.modem.is_off_hook() && !self.modem.commands().is_empty() {
            let config = if self.configs.len() > 1 {
                self.configs.pop_front().unwrap_or_default()
            } else {
                self.configs.front().cloned().unwrap_or_default()
            };
            self.modem = SimModem::new(config);
        }
        let before = self.modem.commands().len();
        self.modem.handle_input(now, bytes);
        let after = self.modem.commands().len();
        let mut ring = false;
        let mut log = self.commands.lock().unwrap();
        for (_, command) in &self.modem.commands()[before..after] {
            log.push(command.clone());
            ring |= command.eq_ignore_ascii_case("ATS0=0");
        }
        drop(log);
        if ring && let Some(count) = self.ring_after_init {
            self.modem.ring(now, count);
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.modem.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.modem.poll_timeout()
    }

    fn poll_output(&mut self) -> Option<Vec<u8>> {
        self.modem.poll_output()
    }

    fn send_from_peer(&mut self, bytes: &[u8]) {
        self.modem.send_from_peer(bytes);
    }

    fn take_peer_data(&mut self) -> Vec<u8> {
        self.modem.take_peer_data()
    }

    fn set_dtr(&mut self, now: Instant, level: bool) {
        self.modem.set_dtr(now, level);
    }
}

/// A dial-out client, a simulated modem and a null-modem ppp-server, wired in memory.
pub struct Rig {
    /// The client task.
    pub client: JoinHandle<Result<ClientExit, DialOutError>>,
    /// The server task.
    pub server: JoinHandle<Result<ServerExit, DialOutError>>,
    /// The client's events.
    pub client_events: mpsc::UnboundedReceiver<ClientEvent>,
    /// The server's events.
    pub server_events: mpsc::UnboundedReceiver<ServerEvent>,
    /// Packets for the client to send.
    pub outbound: mpsc::Sender<Vec<u8>>,
    /// Datagrams the client received.
    pub inbound: mpsc::Receiver<Datagram>,
    /// The client's `monitor` values.
    pub client_status: SharedStatus,
    /// The server's `monitor` values.
    pub server_status: SharedStatus,
    /// The AT commands the modem received.
    pub commands: Arc<Mutex<Vec<String>>>,
    /// Stops client and server.
    pub shutdown: watch::Sender<bool>,
    /// Set to true: the server goes silent (nothing passes between modem and server; the line
    /// stays up).
    pub silence: watch::Sender<bool>,
}

/// A cellular client: APN, PIN 1234, CHAP as alice, persist, short guard times.
pub fn client_config() -> ClientConfig {
    ClientConfig::parse(
        r#"
        port = "sim"
        apn = "internet"
        pin = "1234"
        user = "alice"
        password = "wonderland"
        persist = true
        holdoff = 0.5
        escape-guard-time = 0.2
        max-mru = 1500
        max-mtu = 1500
        use-peer-dns = true
        "#,
    )
    .expect("client config")
}

/// A null-modem server requiring CHAP, 198.51.100.1 handing out 198.51.100.2.
pub fn server_config() -> ServerConfig {
    ServerConfig::parse(
        r#"
        port = "sim"
        null-modem = true
        name = "sim-server"
        authentication = ["chap"]
        lcp-echo-interval = 0
        [profile]
        local-address = "198.51.100.1"
        remote-address = "198.51.100.2"
        dns-server = ["198.51.100.53"]
        [[secret]]
        name = "alice"
        password = "wonderland"
        "#,
    )
    .expect("server config")
}

/// The default simulated modem with `pin` and a 200 ms guard time.
pub fn sim_config(pin: Option<&str>) -> SimConfig {
    let mut config = SimConfig::default();
    config.pin = pin.map(str::to_owned);
    config.guard_time = Duration::from_millis(200);
    config
}

/// Spawns the three parts. Must run inside a tokio runtime.
pub fn rig(sims: Vec<SimConfig>, client: ClientConfig, server: ServerConfig) -> Rig {
    let (client_line, modem_host) = tokio::io::duplex(64 * 1024);
    let (client_line, dtr) = dtr_line(client_line);
    let (modem_peer, to_server) = tokio::io::duplex(64 * 1024);
    let (from_modem, server_line) = tokio::io::duplex(64 * 1024);
    let silence = silenceable_pipe(to_server, from_modem);
    let sim = ScriptedSim::new(sims);
    let commands = Arc::clone(&sim.commands);
    tokio::spawn(bridge_modem(sim, modem_host, modem_peer, Some(dtr)));

    let (shutdown, shutdown_rx) = watch::channel(false);
    let (server_events_tx, server_events) = mpsc::unbounded_channel();
    let server_status = SharedStatus::new();
    let server_io = ServerIo {
        outbound: None,
        inbound: None,
        events: server_events_tx,
        shutdown: shutdown_rx.clone(),
    };
    let server = tokio::spawn({
        let status = server_status.clone();
        async move {
            run_server(
                &server,
                server_line,
                server_io,
                status,
                ServerOptions::new(ppp_link::Random::seeded(7)),
            )
            .await
        }
    });

    let (outbound, outbound_rx) = mpsc::channel(16);
    let (inbound_tx, inbound) = mpsc::channel(16);
    let (client_events_tx, client_events) = mpsc::unbounded_channel();
    let client_status = SharedStatus::new();
    let client_io = ClientIo {
        outbound: outbound_rx,
        inbound: inbound_tx,
        events: client_events_tx,
        shutdown: shutdown_rx,
    };
    let client_task = tokio::spawn({
        let status = client_status.clone();
        async move {
            let options = ClientOptions {
                pcap: None,
                random: Some(ppp_link::Random::seeded(42)),
            };
            run_client(&client, client_line, client_io, status, options).await
        }
    });
    Rig {
        client: client_task,
        server,
        client_events,
        server_events,
        outbound,
        inbound,
        client_status,
        server_status,
        commands,
        shutdown,
        silence,
    }
}

/// Our client calling on a port of its own (the master end of a pty, say), with the test
/// holding the other ends of its [`ClientIo`].
pub struct Caller {
    /// The client's run.
    pub task: JoinHandle<Result<ClientExit, DialOutError>>,
    /// Packets for the client to send.
    pub outbound: mpsc::Sender<Vec<u8>>,
    /// Datagrams the client received.
    pub inbound: mpsc::Receiver<Datagram>,
    /// What the client reports.
    pub events: mpsc::UnboundedReceiver<ClientEvent>,
    /// Set to hang up.
    pub shutdown: watch::Sender<bool>,
}

/// Our address once the client reports IPCP up (within `limit`, real time); `Ok(None)` if the
/// client went away first.
pub async fn ip_up(
    events: &mut mpsc::UnboundedReceiver<ClientEvent>,
    limit: Duration,
) -> Result<Option<std::net::Ipv4Addr>, tokio::time::error::Elapsed> {
    tokio::time::timeout(limit, async {
        while let Some(event) = events.recv().await {
            if let ClientEvent::IpUp { local, .. } = event {
                return Some(local);
            }
        }
        None
    })
    .await
}

/// Starts our client (`config`, random numbers seeded with `seed`) on `port`.
pub fn call_on<S>(config: &str, port: S, seed: u64) -> Caller
where
    S: tokio::io::AsyncRead
        + tokio::io::AsyncWrite
        + ppp_tokio::serial::ModemControl
        + Unpin
        + Send
        + 'static,
{
    let client = ClientConfig::parse(config).expect("client config");
    let (outbound, outbound_rx) = mpsc::channel(16);
    let (inbound_tx, inbound) = mpsc::channel(16);
    let (events_tx, events) = mpsc::unbounded_channel();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let io = ClientIo {
        outbound: outbound_rx,
        inbound: inbound_tx,
        events: events_tx,
        shutdown: shutdown_rx,
    };
    let options = ClientOptions {
        pcap: None,
        random: Some(ppp_link::Random::seeded(seed)),
    };
    let task =
        tokio::spawn(
            async move { run_client(&client, port, io, SharedStatus::new(), options).await },
        );
    Caller {
        task,
        outbound,
        inbound,
        events,
        shutdown,
    }
}

/// The next client event matching `matches`, within `limit` (virtual time); panics with the
/// events seen otherwise.
pub async fn expect_client_event(
    rig: &mut Rig,
    limit: Duration,
    mut matches: impl FnMut(&ClientEvent) -> bool,
) -> ClientEvent {
    let mut seen = Vec::new();
    let result = tokio::time::timeout(limit, async {
        while let Some(event) = rig.client_events.recv().await {
            if matches(&event) {
                return Some(event);
            }
            seen.push(event);
        }
        None
    })
    .await;
    match result {
        Ok(Some(event)) => event,
        other => panic!("expected event not seen ({other:?}); events: {seen:#?}"),
    }
}

/// Sends a ping from `local` to `peer` through the client and waits for the reply.
pub async fn ping(rig: &mut Rig, local: std::net::Ipv4Addr, peer: std::net::Ipv4Addr, seq: u16) {
    let request = ppp_tokio::icmp::echo_request(local, peer, 0x4242, seq, b"dial-out ping");
    rig.outbound.send(request).await.expect("client gone");
    let reply = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match rig.inbound.recv().await {
                Some(Datagram::Ipv4(packet)) => {
                    if let Some(reply) = ppp_tokio::icmp::parse_echo_reply(&packet) {
                        return Some(reply);
                    }
                }
                Some(_) => {}
                None => return None,
            }
        }
    })
    .await
    .expect("no echo reply within 5 s")
    .expect("client gone");
    assert_eq!(reply, (peer, 0x4242, seq));
}

/// The `dial-out` example binary next to the test binary, if it was built.
pub fn example(name: &str) -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("examples").join(name);
    path.exists().then_some(path)
}

/// A pty whose master side is the simulated modem (PIN 1234), bridged after CONNECT to our
/// ppp-server in null-modem mode; the program under test opens `slave_path`.
pub struct PtyRig {
    /// Kept open so the pty stays up while the program runs.
    pub slave: tokio_serial::SerialStream,
    /// The pty's path for the program's `--port`.
    pub slave_path: String,
    /// What the server reports.
    pub server_events: mpsc::UnboundedReceiver<ServerEvent>,
    /// Dropping it stops the server.
    pub shutdown: watch::Sender<bool>,
}

/// Spawns the modem bridge and the server (it handles `calls` calls). Must run inside a tokio
/// runtime.
pub fn pty_rig(calls: u64) -> PtyRig {
    pty_rig_with(calls, server_config(), None)
}

/// [`pty_rig`] with another server configuration, and optionally the server's host side
/// (packets to send to the caller, datagrams from it) instead of its own ping answers.
pub fn pty_rig_with(
    calls: u64,
    server: ServerConfig,
    host: Option<(mpsc::Receiver<Vec<u8>>, mpsc::Sender<Datagram>)>,
) -> PtyRig {
    let (master, slave) = tokio_serial::SerialStream::pair().expect("pty pair");
    let slave_path = slave.name().expect("pty name");
    let (modem_peer, server_line) = tokio::io::duplex(64 * 1024);
    tokio::spawn(bridge_modem(
        ScriptedSim::new(vec![sim_config(Some("1234"))]),
        master,
        modem_peer,
        None,
    ));
    let (events, server_events) = mpsc::unbounded_channel();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (outbound, inbound) = host.unzip();
    tokio::spawn(async move {
        let io = ServerIo {
            outbound,
            inbound,
            events,
            shutdown: shutdown_rx,
        };
        run_server(
            &server,
            server_line,
            io,
            SharedStatus::new(),
            ServerOptions::new(ppp_link::Random::seeded(calls)),
        )
        .await
    });
    PtyRig {
        slave,
        slave_path,
        server_events,
        shutdown,
    }
}

/// A byte pipe between two streams that a test can turn into a black hole (both directions
/// dropped, the streams kept open): a peer that went silent without the line dropping, as on a
/// null-modem cable whose far end crashed.
pub fn silenceable_pipe<A, B>(a: A, b: B) -> watch::Sender<bool>
where
    A: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
    B: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (silent, silent_rx) = watch::channel(false);
    let (a_read, a_write) = tokio::io::split(a);
    let (b_read, b_write) = tokio::io::split(b);
    tokio::spawn(copy_unless_silent(a_read, b_write, silent_rx.clone()));
    tokio::spawn(copy_unless_silent(b_read, a_write, silent_rx));
    silent
}

async fn copy_unless_silent<R, W>(mut from: R, mut to: W, silent: watch::Receiver<bool>)
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if !*silent.borrow() && to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Operators' logs: plain text (no ANSI colours when stderr is not a terminal) and INFO/WARN
/// lines in words, never Rust debug formatting.
pub fn assert_operator_logs(stderr: &str) {
    assert!(
        !stderr.contains('\x1b'),
        "ANSI escape sequences in a redirected log:\n{stderr}"
    );
    for line in stderr.lines() {
        if line.contains(" DEBUG ") || line.contains(" TRACE ") {
            continue;
        }
        for debug_formatting in ["Some(", "None", " { ", "(\"", "\\\""] {
            assert!(
                !line.contains(debug_formatting),
                "Rust debug formatting ({debug_formatting}) in an operator's line: {line}"
            );
        }
        // A Rust path (`Error::Variant`), not an IPv6 address.
        let bytes = line.as_bytes();
        let path = bytes.windows(4).any(|w| {
            w[0].is_ascii_lowercase() && w[1] == b':' && w[2] == b':' && w[3].is_ascii_uppercase()
        });
        assert!(!path, "a Rust path in an operator's line: {line}");
    }
}
