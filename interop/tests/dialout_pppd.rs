//! The dial-out client (`ppp_stack::dialout::run_client`) through the simulated modem to real
//! pppd answering on the guest's serial port.
//!
//! On the host, in-process on a current-thread tokio runtime: our client speaks AT to a
//! `ppp_modem::sim::SimModem` (PIN, ~1 s registration delay, APN, `ATD*99#`) that
//! `ppp_tokio::serial::bridge_modem` runs; after `CONNECT` the modem carries the call to the
//! guest's `/dev/ttyS1` socket, where pppd waits as the answering side (addresses
//! `192.0.2.1:192.0.2.2`, `ms-dns`, LCP echoes every 5 s; no authentication, or `require-chap`
//! with a chap-secrets entry for us). No TUN: the test pings pppd's address through the client's
//! packet channels (`ppp_tokio::icmp`) and answers the guest's own `ping -c 3`. Then it stops the
//! client, which terminates the link (LCP Terminate-Request), escapes the modem (`+++`) and
//! hangs up (`ATH`); pppd exits.
//!
//! pppd sends its first LCP Configure-Request before the call exists: the modem drops what the
//! far end sends while no call is up, as a real one would. The client starts only once pppd's
//! first bytes arrived on the socket, so pppd has the tty in raw mode (without echo) before any
//! byte of ours can reach the guest.

use ppp_interop::our_link::{LogBuffer, PppdSerial, block_on_with_our_logs, pppd_serial};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ppp_interop::our_link::{GUEST_PING_MARKER, GUEST_PPPD_MARKER, console_marker_code};
use ppp_interop::{GuestOutcome, Scenario, ScenarioRun, Suite, pppd_session_script};
use ppp_link::Datagram;
use ppp_modem::sim::{SimConfig, SimModem};
use ppp_stack::dialout::{
    ClientConfig, ClientEvent, ClientExit, ClientIo, ClientOptions, SharedStatus, run_client,
};
use ppp_tokio::icmp;
use ppp_tokio::serial::{SimulatedModem, bridge_modem, dtr_line};
use tokio::sync::{mpsc, watch};

/// One test per suite for each scenario function.
macro_rules! suite_tests {
    ($($scenario:ident => $bookworm:ident, $trixie:ident;)*) => {$(
        #[test]
        fn $bookworm() {
            $scenario(Suite::Bookworm);
        }

        #[test]
        fn $trixie() {
            $scenario(Suite::Trixie);
        }
    )*};
}

suite_tests! {
    dialout_binary_ping => dialout_binary_ping_pppd_bookworm, dialout_binary_ping_pppd_trixie;
    dialout_noauth => dialout_via_sim_modem_to_pppd_bookworm, dialout_via_sim_modem_to_pppd_trixie;
    dialout_chap => dialout_via_sim_modem_to_pppd_chap_bookworm, dialout_via_sim_modem_to_pppd_chap_trixie;
}

/// pppd's address (the answering side's `local` address).
const PPPD: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The address pppd assigns us.
const OURS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// The DNS server pppd hands out (`ms-dns`).
const DNS: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 53);
/// The name we authenticate as in the CHAP variant.
const USER: &str = "alice";
/// Our CHAP secret (in pppd's chap-secrets and our configuration).
const PASSWORD: &str = "dial-0ut-s3cret";
/// The APN the client sets with `AT+CGDCONT`.
const APN: &str = "internet";
/// The SIM PIN.
const PIN: &str = "1234";
/// pppd's exit status after the peer terminated the link on a `local` line: 16, `EXIT_HANGUP`
/// (pppd logs `LCP terminated by peer`, sends its Terminate-Ack, then `Connection terminated.`
/// and `Modem hangup`; the simulated modem's `ATH` does not reach the guest's tty).
const PPPD_EXIT_HANGUP: i32 = 16;
/// pppd's timers and limits: quick retransmissions while the call is being set up (its
/// Configure-Requests before `CONNECT` are lost in the modem), LCP echoes every 5 s.
const PPPD_COMMON: &str = "lcp-restart 1 lcp-max-configure 30 ipcp-restart 1 \
                           lcp-echo-interval 5 lcp-echo-failure 4 ms-dns 198.51.100.53 \
                           192.0.2.1:192.0.2.2";

/// The ICMP identifier of our echo requests.
const PING_ID: u16 = 0xD1A1;
/// Echo replies we want from pppd's address.
const PINGS: u16 = 3;
/// Echo requests sent beyond [`PINGS`] before giving up.
const PING_EXTRA_TRIES: u16 = 3;
/// How long one echo request may go unanswered before the next is sent.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// How long after IpUp our first echo request waits (pppd configures `ppp0` only after the
/// last IPCP Configure-Ack).
const FIRST_PING_DELAY: Duration = Duration::from_millis(500);
/// The most the dial, the session and the hang-up may take together.
const DIAL_OUT_LIMIT: Duration = Duration::from_secs(75);
/// How long the client may take to hang up once told to stop (Terminate-Ack within 4 s, then
/// two guard times and `ATH`).
const HANG_UP_LIMIT: Duration = Duration::from_secs(20);
/// How often the loop looks at the console and the pings without other activity.
const TICK: Duration = Duration::from_millis(200);

/// One variant of the scenario.
struct Case {
    /// The scenario's name (log directory).
    name: &'static str,
    /// Guest setup before pppd starts.
    setup: String,
    /// pppd's authentication options.
    pppd_auth: &'static str,
    /// Our `user`/`password` lines for the client's TOML, if any.
    credentials: Option<(&'static str, &'static str)>,
    /// Lines pppd must log besides its addresses.
    pppd_needles: Vec<&'static str>,
    /// IPv6CP too: pppd with `+ipv6`, our client with `use-ipv6`.
    ipv6: bool,
    /// The seed of our link's RNG.
    seed: u64,
}

fn dialout_noauth(suite: Suite) {
    run_case(
        suite,
        &Case {
            name: "dialout-pppd-noauth",
            setup: String::new(),
            pppd_auth: "noauth +ipv6",
            credentials: None,
            pppd_needles: vec![
                "rcvd [LCP ConfAck",
                "rcvd [LCP EchoRep",
                "rcvd [IPCP ConfAck",
                "rcvd [IPV6CP ConfAck",
                "local  LL address fe80::",
                "remote LL address fe80::",
                "rcvd [LCP TermReq",
            ],
            ipv6: true,
            seed: 0x7001,
        },
    );
}

fn dialout_chap(suite: Suite) {
    let mut pppd_needles = vec![
        "sent [CHAP Challenge",
        "rcvd [CHAP Response",
        "sent [CHAP Success",
        "rcvd [LCP EchoRep",
        "rcvd [IPCP ConfAck",
        "rcvd [LCP TermReq",
    ];
    // As the authenticator, pppd 2.4.9 logs no success line for CHAP (only `sent [CHAP
    // Success`); pppd 2.5 logs `Peer NAME authenticated with CHAP`.
    if suite == Suite::Trixie {
        pppd_needles.push("Peer alice authenticated with CHAP");
    }
    run_case(
        suite,
        &Case {
            name: "dialout-pppd-chap",
            setup: format!("printf '{USER} * \"{PASSWORD}\" *\\n' >/etc/ppp/chap-secrets"),
            pppd_auth: "require-chap name pppdserver",
            credentials: Some((USER, PASSWORD)),
            pppd_needles,
            ipv6: false,
            seed: 0x7002,
        },
    );
}

/// The quick test of docs/dial-out.md with the real program: `dial-out dial --no-tun --ping 3`
/// on a pty whose other end is the simulated modem, the call bridged to pppd. The first echo
/// goes out the moment IPCP opens, before pppd's `ppp0` is up; the program must retry past it
/// and exit 0 with 3 replies (it used to wait forever), hang up cleanly (pppd exits 16), and
/// every protocol must open with one exchange.
fn dialout_binary_ping(suite: Suite) {
    let binary = dial_out_binary();
    let options = format!("noauth +ipv6 {PPPD_COMMON}");
    let script = pppd_session_script("", &options, OURS);
    Scenario::new("dialout-binary-ping", suite, script)
        .timeout(Duration::from_secs(110))
        .run(|run: &mut ScenarioRun| {
            let PppdSerial { stream, .. } = pppd_serial(run, "starting dial-out")?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("runtime: {e}"))?;
            let output = runtime.block_on(async {
                use tokio_serial::SerialPort as _;
                let guest_line = tokio::net::UnixStream::from_std(stream)
                    .map_err(|e| format!("serial socket: {e}"))?;
                let (master, slave) =
                    tokio_serial::SerialStream::pair().map_err(|e| format!("pty: {e}"))?;
                let path = slave.name().ok_or("the pty has no name")?;
                let modem = Modem(SimModem::new(sim_config()));
                let bridge = tokio::spawn(bridge_modem(modem, master, guest_line, None));
                let child = tokio::process::Command::new(&binary)
                    .args(["dial", "--port", &path, "--flow-control", "none"])
                    .args(["--apn", APN, "--pin", PIN, "--use-ipv6", "--no-tun"])
                    .args(["--ping", "3", "-v"])
                    .kill_on_drop(true)
                    .output();
                let output = tokio::time::timeout(DIAL_OUT_LIMIT, child)
                    .await
                    .map_err(|_| "dial-out did not finish in time (the pings hang)".to_owned())?
                    .map_err(|e| format!("dial-out: {e}"))?;
                drop(slave);
                bridge.abort();
                Ok::<_, String>(output)
            })?;
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            for line in stdout.lines() {
                run.trace(format!("dial-out stdout: {line}"));
            }
            for line in stderr.lines() {
                run.trace(format!("dial-out: {line}"));
            }
            let outcome = run.wait_exit(Duration::from_secs(40))?;
            let pppd_log = outcome.pppd_log();
            let fail = |what: String| {
                Err(format!(
                    "{what}\n  dial-out exit {:?}\n  stdout:\n{stdout}\n  pppd log:\n    {}",
                    output.status.code(),
                    pppd_log.join("\n    ")
                ))
            };
            if output.status.code() != Some(0) || !stdout.contains("3 pings answered") {
                return fail("dial-out --ping 3 did not succeed".to_owned());
            }
            let ours: Vec<String> = stderr.lines().map(str::to_owned).collect();
            if let Err(what) = ppp_interop::our_link::one_exchange_each(&ours, &pppd_log) {
                return fail(what);
            }
            let pppd_exit = console_marker_code(&outcome.console, GUEST_PPPD_MARKER);
            if pppd_exit != Some(PPPD_EXIT_HANGUP) {
                return fail(format!(
                    "pppd exit {pppd_exit:?}, expected {PPPD_EXIT_HANGUP}"
                ));
            }
            Ok(())
        });
}

/// The `dial-out` program, built by `cargo build -p ppp-stack --example dial-out` (a no-op
/// after `cargo test --workspace`) into `target/debug/examples/`.
fn dial_out_binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "-p", "ppp-stack", "--example", "dial-out"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building dial-out failed");
    let exe = std::env::current_exe().expect("test executable");
    exe.parent()
        .and_then(std::path::Path::parent)
        .expect("target dir")
        .join("examples")
        .join("dial-out")
}

/// Runs one variant: pppd answering on ttyS1, our client dialing through the simulated modem,
/// pings both ways, our hang-up, and the checks on both sides.
fn run_case(suite: Suite, case: &Case) {
    let options = format!("{} {PPPD_COMMON}", case.pppd_auth);
    let script = pppd_session_script(&case.setup, &options, OURS);
    Scenario::new(case.name, suite, script)
        .timeout(Duration::from_secs(110))
        .run(|run: &mut ScenarioRun| {
            let started = Instant::now();
            let report = drive(run, case)?;
            run.trace(format!(
                "dial-out part took {:.1} s",
                started.elapsed().as_secs_f64()
            ));
            let outcome = run.wait_exit(Duration::from_secs(40))?;
            check(&report, outcome, case)?;
            let pppd_exit = console_marker_code(&outcome.console, GUEST_PPPD_MARKER);
            if pppd_exit != Some(PPPD_EXIT_HANGUP) {
                return Err(format!(
                    "pppd exit {pppd_exit:?}, expected {PPPD_EXIT_HANGUP}\n  ours: {}",
                    report.summary()
                ));
            }
            Ok(())
        });
}

/// What happened on our side.
#[derive(Debug, Default)]
struct Report {
    /// The client's events, in order.
    events: Vec<ClientEvent>,
    /// `(local, peer, dns)` from [`ClientEvent::IpUp`].
    ip_up: Option<(Ipv4Addr, Ipv4Addr, Vec<Ipv4Addr>)>,
    /// Echo requests we sent to pppd's address.
    echo_requests_sent: u16,
    /// Echo replies from pppd's address.
    echo_replies: u16,
    /// The guest's echo requests to our address that we answered.
    echo_requests_answered: u32,
    /// Whether the guest's ping marker appeared on the console.
    guest_done: bool,
    /// Whether we told the client to stop.
    stop_sent: bool,
    /// How the client ended (`Err`: its error, or that it panicked or did not stop).
    client_exit: Option<Result<ClientExit, String>>,
    /// The modem's command lines, in order.
    commands: Vec<String>,
    /// `+++` escapes the modem accepted.
    escapes: u32,
    /// Calls the modem connected.
    calls: u32,
    /// Whether [`DIAL_OUT_LIMIT`] ended the run.
    timed_out: bool,
    /// Our `tracing` output (debug level).
    log: Vec<String>,
}

impl Report {
    fn logged(&self, needle: &str) -> bool {
        self.log.iter().any(|line| line.contains(needle))
    }

    fn summary(&self) -> String {
        format!(
            "ip_up {:?}, echo sent {} replies {} answered {}, guest_done {}, stop_sent {}, \
             client_exit {:?}, calls {}, escapes {}, timed_out {}, commands {:?}, events {:?}",
            self.ip_up,
            self.echo_requests_sent,
            self.echo_replies,
            self.echo_requests_answered,
            self.guest_done,
            self.stop_sent,
            self.client_exit,
            self.calls,
            self.escapes,
            self.timed_out,
            self.commands,
            self.events
        )
    }
}

/// The checks on both sides after the guest powered off.
fn check(report: &Report, outcome: &GuestOutcome, case: &Case) -> Result<(), String> {
    let pppd_log = outcome.pppd_log();
    let fail = |what: String| {
        Err(format!(
            "{what}\n  ours: {}\n  pppd log:\n    {}",
            report.summary(),
            pppd_log.join("\n    ")
        ))
    };
    // pppd Naks both our DNS options (RFC 1877 129 and 131) with its only `ms-dns`, so the
    // list holds it twice.
    let dns_ok = |dns: &[Ipv4Addr]| dns.first() == Some(&DNS) && dns.iter().all(|d| *d == DNS);
    if !report
        .ip_up
        .as_ref()
        .is_some_and(|(local, peer, dns)| (*local, *peer) == (OURS, PPPD) && dns_ok(dns))
    {
        return fail(format!("expected IpUp local {OURS} peer {PPPD} dns {DNS}"));
    }
    if report.echo_replies < PINGS {
        return fail(format!("{PINGS} echo replies wanted from {PPPD}"));
    }
    if report.echo_requests_answered < 3 {
        return fail("the guest's 3 echo requests were not all answered".to_owned());
    }
    if report.client_exit != Some(Ok(ClientExit::Shutdown)) {
        return fail("the client did not stop cleanly".to_owned());
    }
    let call_ended = ClientEvent::CallEnded {
        reason: ppp_stack::dialout::CallEnd::Shutdown,
    };
    if report.events.last() != Some(&call_ended) {
        return fail("the client's last event is not `CallEnded` for the shutdown".to_owned());
    }
    let expected_apn = format!("AT+CGDCONT=1,\"IP\",\"{APN}\"");
    for (what, present) in [
        (
            "the PIN",
            report
                .commands
                .iter()
                .any(|c| *c == format!("AT+CPIN=\"{PIN}\"")),
        ),
        (
            "the APN",
            report.commands.iter().any(|c| c.starts_with(&expected_apn)),
        ),
        ("ATD*99#", report.commands.iter().any(|c| c == "ATD*99#")),
        (
            "ATH last",
            report.commands.last().is_some_and(|c| c == "ATH"),
        ),
    ] {
        if !present {
            return fail(format!("the modem did not get {what}"));
        }
    }
    if report.calls != 1 || report.escapes != 1 {
        return fail("expected one call and one `+++` escape".to_owned());
    }
    if !report.logged("sent [LCP ConfReq") || !report.logged("sent [LCP EchoRep") {
        return fail("our log shows no `sent [LCP ConfReq` or no `sent [LCP EchoRep`".to_owned());
    }
    // The hang-up in order: Terminate-Request, its Ack, the escape, `ATH`.
    let hang_up = [
        "sent [LCP TermReq",
        "rcvd [LCP TermAck",
        "sent [+++]",
        "sent [ATH]",
    ];
    let positions: Vec<Option<usize>> = hang_up
        .iter()
        .map(|needle| report.log.iter().position(|line| line.contains(needle)))
        .collect();
    if positions.iter().any(Option::is_none) || !positions.is_sorted() {
        return fail(format!(
            "our log does not show {hang_up:?} in this order: {positions:?}"
        ));
    }
    // Each protocol (LCP, IPCP, IPv6CP) opens with one exchange: no request of ours repeated,
    // and IPv6CP comes up once on each side (pppd 2.4.9 once saw it open with an interface
    // identifier it had Nak'ed, then again).
    if let Err(what) = ppp_interop::our_link::one_exchange_each(&report.log, &pppd_log) {
        return fail(what);
    }
    if case.ipv6 {
        let ours = report
            .log
            .iter()
            .filter(|l| l.contains("IPV6CP up"))
            .count();
        let pppd = pppd_log
            .iter()
            .filter(|l| l.contains("local  LL address"))
            .count();
        if ours != 1 || pppd != 1 {
            return fail(format!(
                "IPv6CP came up {ours} times on our side and {pppd} times on pppd's"
            ));
        }
    }
    if case.credentials.is_some() && !report.logged("we authenticated to the peer") {
        return fail("our log does not say we authenticated".to_owned());
    }
    let ping = outcome.tagged_lines("ping").join("\n");
    if !outcome.succeeded() || !ping.contains("3 packets received") {
        return fail(format!(
            "the guest's ping failed (script exit {:?}): {ping}",
            outcome.exit_code
        ));
    }
    let local_line = format!("local  IP address {PPPD}");
    let remote_line = format!("remote IP address {OURS}");
    let needles = case
        .pppd_needles
        .iter()
        .copied()
        .chain([local_line.as_str(), remote_line.as_str()]);
    for needle in needles {
        if !pppd_log.iter().any(|line| line.contains(needle)) {
            return fail(format!("pppd did not log `{needle}`"));
        }
    }
    Ok(())
}

/// The client's configuration: cellular (PIN, APN, `*99#`), our LCP echoes every 5 s, no
/// `persist` (one call), 0.5 s escape guard time; `user`/`password` when given.
fn client_config(case: &Case) -> Result<ClientConfig, String> {
    let mut text = format!(
        "port = \"sim\"\n\
         apn = \"{APN}\"\n\
         pin = \"{PIN}\"\n\
         use-peer-dns = true\n\
         lcp-echo-interval = 5\n\
         registration-timeout = 20\n\
         escape-guard-time = 0.5\n"
    );
    if let Some((user, password)) = case.credentials {
        text.push_str(&format!(
            "user = \"{user}\"\npassword = \"{password}\"\nallow = [\"chap\"]\n"
        ));
    }
    if case.ipv6 {
        text.push_str("[profile]\nuse-ipv6 = true\n");
    }
    ClientConfig::parse(&text).map_err(|e| format!("client configuration: {e}"))
}

/// The simulated modem: a SIM with a PIN, registration after about a second, `CONNECT 115200`
/// to `ATD`, a 0.5 s escape guard time.
fn sim_config() -> SimConfig {
    let mut config = SimConfig::default();
    config.pin = Some(PIN.to_owned());
    config.registration_delay = Duration::from_secs(1);
    config.guard_time = Duration::from_millis(500);
    config
}

/// A [`SimModem`] for [`bridge_modem`] (the trait lives in ppp-tokio, the modem in ppp-modem).
struct Modem(SimModem);

impl SimulatedModem for Modem {
    fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        self.0.handle_input(now, bytes);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.0.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.0.poll_timeout()
    }

    fn poll_output(&mut self) -> Option<Vec<u8>> {
        self.0.poll_output()
    }

    fn send_from_peer(&mut self, bytes: &[u8]) {
        self.0.send_from_peer(bytes);
    }

    fn take_peer_data(&mut self) -> Vec<u8> {
        self.0.take_peer_data()
    }

    fn set_dtr(&mut self, now: Instant, level: bool) {
        self.0.set_dtr(now, level);
    }
}

/// Waits for pppd's first bytes on the serial line, then runs the client and the modem on a
/// current-thread runtime with a `tracing` subscriber scoped to this thread (our log goes to
/// the scenario's trace).
fn drive(run: &mut ScenarioRun, case: &Case) -> Result<Report, String> {
    let config = client_config(case)?;
    let PppdSerial {
        stream, console, ..
    } = pppd_serial(run, "dropped: no call yet; dialing")?;
    block_on_with_our_logs(|logs| dial(run, stream, console, config, case.seed, logs))?
}

/// The dial-out run: modem bridge and client tasks, pings both ways, the stop once our pings
/// and the guest's are done, and the wait for the client's hang-up.
async fn dial(
    run: &mut ScenarioRun,
    serial: UnixStream,
    console: PathBuf,
    config: ClientConfig,
    seed: u64,
    logs: LogBuffer,
) -> Result<Report, String> {
    let guest_line =
        tokio::net::UnixStream::from_std(serial).map_err(|e| format!("serial socket: {e}"))?;
    let (client_line, modem_host) = tokio::io::duplex(64 * 1024);
    let (client_line, dtr) = dtr_line(client_line);
    let modem = Modem(SimModem::new(sim_config()));
    let mut bridge = tokio::spawn(bridge_modem(modem, modem_host, guest_line, Some(dtr)));

    let (outbound, outbound_rx) = mpsc::channel(64);
    let (inbound_tx, mut inbound) = mpsc::channel(64);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (stop, stop_rx) = watch::channel(false);
    let io = ClientIo {
        outbound: outbound_rx,
        inbound: inbound_tx,
        events: events_tx,
        shutdown: stop_rx,
    };
    let options = ClientOptions {
        pcap: Some(run.log_dir().join("link.pcap")),
        random: Some(ppp_link::Random::seeded(seed)),
    };
    let mut client = tokio::spawn(async move {
        run_client(&config, client_line, io, SharedStatus::new(), options).await
    });

    let mut report = Report::default();
    let mut pinger = Pinger::default();
    let deadline = Instant::now() + DIAL_OUT_LIMIT;
    let mut stop_deadline = None;
    let mut tick = tokio::time::interval(TICK);
    while report.client_exit.is_none() {
        tokio::select! {
            Some(event) = events.recv() => {
                run.trace(format!("client event {event:?}"));
                if let ClientEvent::IpUp { local, peer, dns, .. } = &event {
                    report.ip_up = Some((*local, *peer, dns.clone()));
                }
                report.events.push(event);
            }
            Some(datagram) = inbound.recv() => {
                handle_datagram(run, &datagram, &outbound, &mut pinger, &mut report).await;
            }
            joined = &mut client => {
                report.client_exit = Some(match joined {
                    Ok(Ok(exit)) => Ok(exit),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(format!("the client task failed: {e}")),
                });
            }
            _ = tick.tick() => {}
        }
        for line in logs.take_lines() {
            run.trace(format!("ours: {line}"));
            report.log.push(line);
        }
        let now = Instant::now();
        if let Some((local, peer, _)) = report.ip_up.clone()
            && !report.stop_sent
        {
            pinger.tick(now, (local, peer), &outbound, &mut report, run);
        }
        if !report.guest_done
            && std::fs::read(&console)
                .is_ok_and(|bytes| String::from_utf8_lossy(&bytes).contains(GUEST_PING_MARKER))
        {
            report.guest_done = true;
            run.trace(format!("console shows {GUEST_PING_MARKER:?}"));
        }
        let pings_over = pinger.done(&report)
            || report.echo_requests_sent >= PINGS + PING_EXTRA_TRIES
                && pinger
                    .outstanding
                    .is_none_or(|(_, at)| now.saturating_duration_since(at) >= PING_TIMEOUT);
        if !report.stop_sent && report.ip_up.is_some() && pings_over && report.guest_done {
            report.stop_sent = true;
            stop_deadline = Some(now + HANG_UP_LIMIT);
            run.trace("telling the client to hang up");
            let _ = stop.send(true);
        }
        if report.client_exit.is_none()
            && (now >= deadline || stop_deadline.is_some_and(|at| now >= at))
        {
            report.timed_out = true;
            run.trace("dial-out limit passed; aborting the client");
            client.abort();
            report.client_exit = Some(Err("timed out".to_owned()));
        }
    }
    run.trace(format!("client ended: {:?}", report.client_exit));
    while let Ok(event) = events.try_recv() {
        run.trace(format!("client event {event:?}"));
        report.events.push(event);
    }
    // The client dropped its line: the bridge sees EOF and gives the modem back.
    match tokio::time::timeout(Duration::from_secs(5), &mut bridge).await {
        Ok(Ok(Ok(modem))) => {
            report.commands = modem.0.commands().iter().map(|(_, c)| c.clone()).collect();
            report.escapes = modem.0.escapes();
            report.calls = modem.0.calls();
        }
        Ok(Ok(Err(e))) => run.trace(format!("modem bridge failed: {e}")),
        Ok(Err(e)) => run.trace(format!("modem bridge task failed: {e}")),
        Err(_) => {
            run.trace("modem bridge did not end");
            bridge.abort();
        }
    }
    for line in logs.take_lines() {
        run.trace(format!("ours: {line}"));
        report.log.push(line);
    }
    run.trace(format!("our side: {}", report.summary()));
    Ok(report)
}

/// Answers the guest's echo requests to our address and counts pppd's echo replies.
async fn handle_datagram(
    run: &mut ScenarioRun,
    datagram: &Datagram,
    outbound: &mpsc::Sender<Vec<u8>>,
    pinger: &mut Pinger,
    report: &mut Report,
) {
    let Datagram::Ipv4(packet) = datagram else {
        run.trace(format!("other datagram {datagram:?}"));
        return;
    };
    let Some((local, peer, _)) = report.ip_up.clone() else {
        return;
    };
    if let Some(reply) = icmp::echo_reply(packet, local) {
        match outbound.send(reply).await {
            Ok(()) => report.echo_requests_answered += 1,
            Err(_) => run.trace("echo reply not sent: the client is gone"),
        }
    } else if let Some((from, id, seq)) = icmp::parse_echo_reply(packet) {
        run.trace(format!("echo reply from {from} id {id:#x} seq {seq}"));
        if from == peer && id == PING_ID {
            pinger.reply(seq, report);
        }
    } else {
        run.trace(format!("other IPv4 datagram of {} bytes", packet.len()));
    }
}

/// Sends echo requests to pppd one at a time until enough replies came.
#[derive(Debug, Default)]
struct Pinger {
    next_seq: u16,
    outstanding: Option<(u16, Instant)>,
    ready_since: Option<Instant>,
}

impl Pinger {
    fn done(&self, report: &Report) -> bool {
        report.echo_replies >= PINGS
    }

    fn tick(
        &mut self,
        now: Instant,
        (local, peer): (Ipv4Addr, Ipv4Addr),
        outbound: &mpsc::Sender<Vec<u8>>,
        report: &mut Report,
        run: &mut ScenarioRun,
    ) {
        if self.done(report) || report.echo_requests_sent >= PINGS + PING_EXTRA_TRIES {
            return;
        }
        let ready_since = *self.ready_since.get_or_insert(now);
        if now.saturating_duration_since(ready_since) < FIRST_PING_DELAY
            || self
                .outstanding
                .is_some_and(|(_, sent)| now.saturating_duration_since(sent) < PING_TIMEOUT)
        {
            return;
        }
        self.next_seq = self.next_seq.wrapping_add(1);
        let request = icmp::echo_request(local, peer, PING_ID, self.next_seq, b"dial-out interop");
        match outbound.try_send(request) {
            Ok(()) => {
                report.echo_requests_sent += 1;
                self.outstanding = Some((self.next_seq, now));
                run.trace(format!("ping {peer} seq {}", self.next_seq));
            }
            Err(e) => run.trace(format!("ping {peer} not sent: {e}")),
        }
    }

    fn reply(&mut self, seq: u16, report: &mut Report) {
        if self.outstanding.is_some_and(|(s, _)| s == seq) {
            self.outstanding = None;
            report.echo_replies += 1;
        }
    }
}

/// The configurations parse without a guest (a typo here would otherwise show only as a failed
/// QEMU scenario).
#[test]
fn dialout_pppd_configurations_parse() {
    for credentials in [None, Some((USER, PASSWORD))] {
        let case = Case {
            name: "parse",
            setup: String::new(),
            pppd_auth: "noauth",
            credentials,
            pppd_needles: Vec::new(),
            ipv6: true,
            seed: 1,
        };
        let config = client_config(&case).expect("client configuration");
        assert_eq!(config.apn.as_deref(), Some(APN));
        assert_eq!(config.user.is_some(), credentials.is_some());
        assert!(!config.persist, "one call only");
        config.dialer_config().expect("dialer configuration");
        let link = config.link_config().expect("link configuration");
        assert_eq!(link.lcp.allow.is_empty(), credentials.is_none());
        assert!(link.ipv6cp.is_some(), "use-ipv6 in the profile");
    }
    let script = pppd_session_script("", &format!("noauth {PPPD_COMMON}"), OURS);
    assert!(script.contains("ms-dns 198.51.100.53 192.0.2.1:192.0.2.2 &"));
    assert!(script.contains("ping -c 3 -W 3 192.0.2.2"));
}
