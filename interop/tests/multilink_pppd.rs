//! Multilink PPP (RFC 1990) over two serial lines against pppd `multilink` in the guest, whose
//! `/dev/ttyS1` and `/dev/ttyS2` are two unix sockets on the host.
//!
//! - `multilink_dialout_to_pppd_*`: our dial-out client with two ports
//!   (`ppp_stack::dialout::run_bundle_client`), each through its own simulated modem (line 1:
//!   PIN, quick registration; line 2: no PIN, slower registration, so pppd on ttyS1 makes the
//!   bundle and pppd on ttyS2 joins it), calls pppd answering on both ttys with `multilink mrru
//!   4000`. Both lines join one bundle on both sides; the guest pings us with 3000-byte packets
//!   (`ping -s 2972`) and we ping pppd with 3000-byte packets, all in MP fragments over both
//!   lines; the network drops line 2's call mid-ping (`NO CARRIER` to us; pppd on ttyS2 finds
//!   its link dead by LCP echoes) and the bundle carries on over line 1.
//! - `multilink_pppd_calls_our_server_*`: two pppds with `multilink mrru 4000 user alice` call
//!   our `dial-out server` on two null-modem ports (`run_multiport_server`, one `LinkTable`); the
//!   second call joins the first one's bundle on our side (CHAP as alice both times), the guest
//!   pings our address with 3000-byte packets, then ends both pppds.
//!
//! Each scenario is bounded (`Scenario::timeout`, our own limits inside).

use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use ppp_interop::our_link::{LogBuffer, block_on_with_our_logs, first_bytes};
use ppp_interop::{GuestOutcome, Scenario, ScenarioRun, Suite};
use ppp_link::Datagram;
use ppp_modem::sim::{SimConfig, SimModem};
use ppp_stack::dialout::{
    CallEnd, ClientConfig, ClientEvent, ClientIo, ClientOptions, ServerConfig, ServerIo,
    ServerOptions, SharedStatus, run_bundle_client, run_multiport_server,
};
use ppp_tokio::icmp;
use ppp_tokio::serial::{SimulatedModem, bridge_modem, dtr_line};
use tokio::sync::{mpsc, watch};

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
    pppd_calls_our_server => multilink_pppd_calls_our_server_bookworm,
        multilink_pppd_calls_our_server_trixie;
}

/// Our dial-out with two ports against two pppds with `multilink` on the guest's two serial
/// lines: one bundle, 3000-byte pings in fragments, one line dropped mid-ping and the bundle
/// carries on. (This once stalled: every small packet went whole on the first member, so pppd's
/// other channel never heard a sequence number and Linux's MP receiver, which takes RFC 1990's M
/// over all channels, never declared the Protocol-Rejected first fragment lost. ppp-mp now lets
/// idle members take turns.)
#[test]
fn multilink_dialout_to_pppd_bookworm() {
    dialout_to_pppd(Suite::Bookworm);
}

/// See [`multilink_dialout_to_pppd_bookworm`].
#[test]
fn multilink_dialout_to_pppd_trixie() {
    dialout_to_pppd(Suite::Trixie);
}

/// pppd's address when it answers.
const PPPD: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The address pppd gives us.
const OURS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// Our server's address.
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// The address our server gives alice.
const ALICE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// Both sides' MRRU: a 3000-byte packet is one IP packet in MP fragments.
const MRRU: u16 = 4000;
/// The size of every ping (IP header included).
const PING_SIZE: usize = 3000;
/// Our ICMP identifier.
const PING_ID: u16 = 0x3a3a;
/// The console line the guest prints after its ping.
const PING_MARKER: &str = "PPPTEST-PING rc=";
/// How long our side may run.
const LIMIT: Duration = Duration::from_secs(100);

/// The guest's part of the first scenario: two pppds answering with `multilink`, the 3000-byte
/// ping once `ppp0` is up.
fn answering_script() -> String {
    let options = format!(
        "local nocrtscts nolock nodetach debug logfd 2 noauth multilink mrru {MRRU} \
         lcp-restart 1 lcp-max-configure 60 ipcp-restart 1 lcp-echo-interval 1 \
         lcp-echo-failure 3 ms-dns 198.51.100.53 {PPPD}:{OURS}"
    );
    format!(
        "mkdir -p /var/run /run
stty -F /dev/ttyS1 raw -echo 2>/dev/null
stty -F /dev/ttyS2 raw -echo 2>/dev/null
ppptest-run pppd pppd /dev/ttyS1 115200 {options} &
p1=$!
ppptest-run pppd2 pppd /dev/ttyS2 115200 {options} &
p2=$!
i=0
while [ $i -lt 60 ]; do
    ip -4 addr show dev ppp0 2>/dev/null | grep -q 'inet ' && break
    sleep 1
    i=$((i + 1))
done
ip addr show dev ppp0 >/log/ppp0.txt 2>&1
sleep 2
ppptest-run ping ping -c 30 -i 0.5 -W 2 -s {} {OURS}
echo \"{PING_MARKER}$?\"
wait $p2
echo \"PPPTEST-PPPD2 rc=$?\"
wait $p1
echo \"PPPTEST-PPPD rc=$?\"
",
        PING_SIZE - 28
    )
}

/// The simulated modems: line 1 with a PIN and a quick registration, line 2 slower, its call
/// dropped by the network `drop_after` after `CONNECT`.
fn sims(drop_after: Duration) -> [SimConfig; 2] {
    let mut first = SimConfig::default();
    first.pin = Some("1234".into());
    first.registration_delay = Duration::from_millis(300);
    first.guard_time = Duration::from_millis(300);
    let mut second = SimConfig::default();
    second.registration_delay = Duration::from_secs(3);
    second.guard_time = Duration::from_millis(300);
    second.drop_call_after = Some(drop_after);
    [first, second]
}

fn client_config() -> ClientConfig {
    ClientConfig::parse(&format!(
        "mrru = {MRRU}\nlcp-echo-interval = 2\nescape-guard-time = 0.3\nuse-peer-dns = true\n\
         [[line]]\nport = \"sim0\"\napn = \"internet\"\npin = \"1234\"\n\
         [[line]]\nport = \"sim1\"\nphone = \"5551234\"\n"
    ))
    .expect("client configuration")
}

/// What happened on our side of the first scenario.
#[derive(Debug, Default)]
struct DialReport {
    events: Vec<(Duration, ClientEvent)>,
    ip_up: Option<Ipv4Addr>,
    pings_sent: u32,
    /// When each of our echo requests to pppd was answered.
    replies: Vec<Duration>,
    /// Guest echo requests we answered.
    answered: u32,
    /// When line 2's call ended.
    dropped_at: Option<Duration>,
    joined_two: bool,
    exit: Option<String>,
    log: Vec<String>,
}

fn dialout_to_pppd(suite: Suite) {
    Scenario::new("multilink-dialout-pppd", suite, answering_script())
        .with_second_serial()
        .timeout(Duration::from_secs(150))
        .run(|run: &mut ScenarioRun| {
            let (one, two) = both_lines(run)?;
            let report = block_on_with_our_logs(|logs| dial(run, one, two, logs))??;
            let outcome = run.wait_exit(Duration::from_secs(40))?;
            check_dial(&report, outcome)
        });
}

/// Waits for pppd's first bytes on both serial sockets (the ttys are raw then) and hands them
/// over nonblocking.
fn both_lines(run: &mut ScenarioRun) -> Result<(UnixStream, UnixStream), String> {
    let guest = run.guest().ok_or("the guest already exited")?;
    let mut one = guest.serial()?;
    let mut two = guest.serial2().map_err(|e| e.to_string())?;
    let first = first_bytes(&mut one, Duration::from_secs(60))?;
    let second = first_bytes(&mut two, Duration::from_secs(60))?;
    run.trace(format!(
        "pppd talks on both lines ({} and {} bytes)",
        first.len(),
        second.len()
    ));
    for stream in [&one, &two] {
        stream
            .set_nonblocking(true)
            .map_err(|e| format!("serial socket: {e}"))?;
    }
    Ok((one, two))
}

async fn dial(
    run: &mut ScenarioRun,
    one: UnixStream,
    two: UnixStream,
    logs: LogBuffer,
) -> Result<DialReport, String> {
    let started = Instant::now();
    let mut ports = Vec::new();
    for (guest, sim) in [one, two].into_iter().zip(sims(Duration::from_secs(14))) {
        let guest = tokio::net::UnixStream::from_std(guest).map_err(|e| e.to_string())?;
        let (line, modem_host) = tokio::io::duplex(64 * 1024);
        let (line, dtr) = dtr_line(line);
        tokio::spawn(bridge_modem(
            Modem(SimModem::new(sim)),
            modem_host,
            guest,
            Some(dtr),
        ));
        ports.push(line);
    }
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
        random: Some(ppp_link::Random::seeded(0x3a1)),
    };
    let config = client_config();
    let status = SharedStatus::new();
    let mut client = tokio::spawn({
        let status = status.clone();
        async move { run_bundle_client(&config, ports, io, status, options).await }
    });
    let console = run
        .guest()
        .ok_or("the guest already exited")?
        .console_path()
        .to_owned();
    let mut report = DialReport::default();
    let mut tick = tokio::time::interval(Duration::from_millis(1000));
    let mut seq = 0u16;
    let mut guest_done = false;
    let mut stop_sent = false;
    while report.exit.is_none() {
        tokio::select! {
            Some(event) = events.recv() => {
                let at = started.elapsed();
                run.trace(format!("client event {event:?}"));
                match &event {
                    ClientEvent::IpUp { local, .. } => report.ip_up = Some(*local),
                    ClientEvent::LineJoined { members: 2, .. } => {
                        report.joined_two = true;
                        run.trace(format!("monitor:\n{}", status.render()));
                    }
                    ClientEvent::LineEnded { line: 1, .. } => {
                        report.dropped_at = Some(at);
                        run.trace(format!("monitor:\n{}", status.render()));
                    }
                    _ => {}
                }
                report.events.push((at, event));
            }
            Some(datagram) = inbound.recv() => {
                if let Datagram::Ipv4(packet) = datagram {
                    if let Some(reply) = icmp::echo_reply(&packet, OURS) {
                        if outbound.send(reply).await.is_ok() {
                            report.answered += 1;
                        }
                    } else if let Some((from, PING_ID, _)) = icmp::parse_echo_reply(&packet)
                        && from == PPPD
                        && packet.len() == PING_SIZE
                    {
                        report.replies.push(started.elapsed());
                    }
                }
            }
            joined = &mut client => {
                report.exit = Some(match joined {
                    Ok(result) => format!("{result:?}"),
                    Err(e) => format!("client task failed: {e}"),
                });
            }
            _ = tick.tick() => {
                if let Some(local) = report.ip_up && !stop_sent {
                    seq = seq.wrapping_add(1);
                    let request = icmp::echo_request(local, PPPD, PING_ID, seq, &[0xa5; PING_SIZE - 28]);
                    if outbound.try_send(request).is_ok() {
                        report.pings_sent += 1;
                    }
                }
                if !guest_done
                    && std::fs::read(&console).is_ok_and(|b| String::from_utf8_lossy(&b).contains(PING_MARKER))
                {
                    guest_done = true;
                    run.trace("the guest's ping is over");
                }
                let after_drop = report
                    .dropped_at
                    .map_or(0, |at| report.replies.iter().filter(|&&r| r > at).count());
                if !stop_sent && guest_done && (after_drop >= 3 || started.elapsed() > LIMIT / 2) {
                    stop_sent = true;
                    run.trace(format!("monitor before the hang-up:\n{}", status.render()));
                    let _ = stop.send(true);
                }
                if started.elapsed() > LIMIT {
                    client.abort();
                    report.exit = Some("timed out".into());
                }
            }
        }
        for line in logs.take_lines() {
            run.trace(format!("ours: {line}"));
            report.log.push(line);
        }
    }
    for line in logs.take_lines() {
        run.trace(format!("ours: {line}"));
        report.log.push(line);
    }
    run.trace(format!("our side: {report:?}"));
    Ok(report)
}

fn check_dial(report: &DialReport, outcome: &GuestOutcome) -> Result<(), String> {
    let pppd = outcome.pppd_log();
    let pppd2 = outcome
        .file("pppd2.log")
        .map(|text| text.lines().map(str::to_owned).collect::<Vec<_>>())
        .unwrap_or_else(|| outcome.tagged_lines("pppd2"));
    let ping = outcome.tagged_lines("ping").join("\n");
    let fail = |what: &str| {
        Err(format!(
            "{what}\n  ours: joined_two {} ip_up {:?} pings sent {} replies {:?} dropped at {:?} \
             answered {} exit {:?}\n  guest ping:\n{ping}\n  pppd (ttyS1):\n    {}\n  pppd (ttyS2):\n    {}",
            report.joined_two,
            report.ip_up,
            report.pings_sent,
            report.replies,
            report.dropped_at,
            report.answered,
            report.exit,
            pppd.join("\n    "),
            pppd2.join("\n    ")
        ))
    };
    if report.ip_up != Some(OURS) || !report.joined_two {
        return fail("the bundle did not come up over both lines");
    }
    let Some(dropped) = report.dropped_at else {
        return fail("line 2's call was not dropped");
    };
    let ended = report.events.iter().any(|(_, e)| {
        matches!(
            e,
            ClientEvent::LineEnded {
                line: 1,
                reason: CallEnd::CarrierLost,
                ..
            }
        )
    });
    if !ended {
        return fail("line 2 did not end with the carrier");
    }
    let before = report.replies.iter().filter(|&&at| at < dropped).count();
    let after = report.replies.iter().filter(|&&at| at > dropped).count();
    if before < 3 || after < 3 {
        return fail(&format!(
            "3000-byte pings to pppd: {before} answered before the drop, {after} after (3 each wanted)"
        ));
    }
    let received: u32 = ping
        .lines()
        .find_map(|l| {
            l.split(" packets transmitted, ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    if received < 15 || report.answered < 15 {
        return fail(&format!(
            "the guest's 3000-byte pings: {received} of 30 answered (we answered {})",
            report.answered
        ));
    }
    if !report
        .log
        .iter()
        .any(|l| l.contains("Multilink bundle up: MRRU 4000"))
    {
        return fail("our log does not show the bundle");
    }
    for (log, needle) in [(&pppd, "rcvd [LCP ConfReq"), (&pppd2, "rcvd [LCP ConfReq")] {
        if !log
            .iter()
            .any(|l| l.contains(needle) && l.contains("mrru 4000"))
        {
            return fail(&format!("pppd did not log `{needle} ... mrru 4000`"));
        }
    }
    Ok(())
}

/// The guest's part of the second scenario: two pppds calling with `multilink` as alice.
fn calling_script() -> String {
    let options = format!(
        "local nocrtscts nolock nodetach debug logfd 2 noauth multilink mrru {MRRU} \
         user alice password multilink-s3cret lcp-restart 1 lcp-max-configure 30 \
         ipcp-restart 1 noipdefault"
    );
    format!(
        "mkdir -p /var/run /run
stty -F /dev/ttyS1 raw -echo 2>/dev/null
stty -F /dev/ttyS2 raw -echo 2>/dev/null
ppptest-run pppd pppd /dev/ttyS1 115200 {options} &
p1=$!
i=0
while [ $i -lt 60 ]; do
    ip -4 addr show dev ppp0 2>/dev/null | grep -q 'inet ' && break
    sleep 1
    i=$((i + 1))
done
ppptest-run pppd2 pppd /dev/ttyS2 115200 {options} &
p2=$!
i=0
while [ $i -lt 30 ]; do
    grep -q 'bundle' /log/pppd2.log 2>/dev/null && break
    sleep 1
    i=$((i + 1))
done
sleep 2
ip addr show dev ppp0 >/log/ppp0.txt 2>&1
ppptest-run ping ping -c 10 -i 0.5 -W 2 -s {} {SERVER}
echo \"{PING_MARKER}$?\"
kill $p2
wait $p2
echo \"PPPTEST-PPPD2 rc=$?\"
kill $p1
wait $p1
echo \"PPPTEST-PPPD rc=$?\"
",
        PING_SIZE - 28
    )
}

fn server_config() -> ServerConfig {
    ServerConfig::parse(&format!(
        "null-modem = true\nname = \"our-server\"\nauthentication = [\"chap\"]\n\
         lcp-echo-interval = 0\nmrru = {MRRU}\n\
         [profile]\nlocal-address = \"{SERVER}\"\nremote-address = \"{ALICE}\"\n\
         [[secret]]\nname = \"alice\"\npassword = \"multilink-s3cret\"\n\
         [[line]]\nport = \"ttyS1\"\n[[line]]\nport = \"ttyS2\"\n"
    ))
    .expect("server configuration")
}

fn pppd_calls_our_server(suite: Suite) {
    Scenario::new("multilink-pppd-calls-server", suite, calling_script())
        .with_second_serial()
        .timeout(Duration::from_secs(150))
        .run(|run: &mut ScenarioRun| {
            let guest = run.guest().ok_or("the guest already exited")?;
            let one = guest.serial()?;
            let two = guest.serial2().map_err(|e| e.to_string())?;
            let console = guest.console_path().to_owned();
            for stream in [&one, &two] {
                stream
                    .set_nonblocking(true)
                    .map_err(|e| format!("serial socket: {e}"))?;
            }
            let monitor = block_on_with_our_logs(|logs| async move {
                let ports = vec![
                    tokio::net::UnixStream::from_std(one).map_err(|e| e.to_string())?,
                    tokio::net::UnixStream::from_std(two).map_err(|e| e.to_string())?,
                ];
                let (events, mut events_rx) = mpsc::unbounded_channel();
                let (stop, stop_rx) = watch::channel(false);
                let status = SharedStatus::new();
                let io = ServerIo {
                    outbound: None,
                    inbound: None,
                    events,
                    shutdown: stop_rx,
                };
                let config = server_config();
                let mut server = tokio::spawn({
                    let status = status.clone();
                    async move {
                        run_multiport_server(
                            &config,
                            ports,
                            io,
                            status,
                            ServerOptions::new(ppp_link::Random::seeded(0x3a2)),
                        )
                        .await
                    }
                });
                let started = Instant::now();
                let mut monitor = String::new();
                let mut lines = Vec::new();
                loop {
                    tokio::select! {
                        Some(event) = events_rx.recv() => lines.push(format!("server event {event:?}")),
                        _ = &mut server => break,
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                    let text = status.render();
                    if text.contains("2 of 2 lines in the bundle") {
                        monitor = text;
                    }
                    let done = std::fs::read(&console)
                        .is_ok_and(|b| String::from_utf8_lossy(&b).contains(PING_MARKER));
                    if done || started.elapsed() > LIMIT {
                        // Let the guest end its pppds, then stop.
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        let _ = stop.send(true);
                        let _ = tokio::time::timeout(Duration::from_secs(20), &mut server).await;
                        break;
                    }
                }
                lines.extend(logs.take_lines());
                Ok::<_, String>((monitor, lines))
            })??;
            let (monitor, lines) = monitor;
            for line in &lines {
                run.trace(format!("ours: {line}"));
            }
            run.trace(format!("monitor with both lines:\n{monitor}"));
            let outcome = run.wait_exit(Duration::from_secs(40))?;
            let ping = outcome.tagged_lines("ping").join("\n");
            let pppd2 = outcome.file("pppd2.log").unwrap_or_default();
            let fail = |what: &str| {
                Err(format!(
                    "{what}\n  monitor:\n{monitor}\n  guest ping:\n{ping}\n  pppd (ttyS1):\n    {}\n  pppd (ttyS2):\n{pppd2}",
                    outcome.pppd_log().join("\n    ")
                ))
            };
            for needle in [
                "2 of 2 lines in the bundle",
                "unit=bundle-1 peer-name=alice",
            ] {
                if !monitor.contains(needle) {
                    return fail(&format!("our monitor never showed `{needle}`"));
                }
            }
            if !lines.iter().any(|l| l.contains("line 2 joined bundle 1: 2 lines")) {
                return fail("the second call did not join the first one's bundle");
            }
            if !ping.contains(" 0% packet loss") && !ping.contains(" 10% packet loss") {
                return fail("the guest's 3000-byte pings were not answered");
            }
            Ok(())
        });
}

/// A [`SimModem`] for [`bridge_modem`].
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

/// The configurations parse without a guest.
#[test]
fn multilink_configurations_parse() {
    let client = client_config();
    assert_eq!(client.lines().expect("lines").len(), 2);
    assert_eq!(client.link_config().expect("link").lcp.mrru, Some(MRRU));
    let server = server_config();
    assert_eq!(server.lines().expect("lines").len(), 2);
    assert_eq!(server.link_config().expect("link").lcp.mrru, Some(MRRU));
    assert!(answering_script().contains("multilink mrru 4000"));
    assert!(calling_script().contains("user alice"));
}
