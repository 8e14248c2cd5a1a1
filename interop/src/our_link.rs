//! This stack's [`Link`] against the guest's pppd over the serial socket.
//!
//! [`run_our_link`] runs a [`Link`] with a [`StreamDriver`] on a current-thread tokio runtime
//! over the guest's `/dev/ttyS1` socket: it waits for pppd's first bytes (until then the guest
//! tty may still echo), answers [`LinkEvent::SecretNeeded`] from a [`SecretsTable`], pings the
//! peer's address once IPCP (and CCP, when configured) is up, answers ICMP echo requests to our
//! address, optionally waits for a marker on the guest console (the guest's own ping finished)
//! and then closes the link. Our `tracing` output (pppd-like `sent [LCP ConfReq ...]` lines) and
//! events go to the scenario's `trace.log`, the frames to `link.pcap` in its log directory.
//!
//! [`pppd_session_script`] is the matching guest script: pppd in the background on ttyS1, a
//! wait for `ppp0` to get its address, `ping -c 3` to our address, then pppd's exit code.

use std::io::{self, Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ppp_auth::SecretsTable;
use ppp_link::{Datagram, Link, LinkConfig, LinkEvent, LinkStats};
use ppp_tokio::{Capture, DriverEvent, StreamDriver, icmp};

use crate::ScenarioRun;

/// The console line the guest script of [`pppd_session_script`] prints after its ping, followed
/// by `rc=<ping's exit code>` (or `rc=none` when `ppp0` never got an address).
pub const GUEST_PING_MARKER: &str = "PPPTEST-PING rc=";
/// The console line the guest script prints when pppd exited, followed by `rc=<exit code>`.
pub const GUEST_PPPD_MARKER: &str = "PPPTEST-PPPD rc=";

/// The ICMP identifier of our echo requests.
const PING_ID: u16 = 0x5050;
/// How long one echo request may go unanswered before the next is sent.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// How long after IPCP (or CCP) came up our first echo request waits: pppd configures `ppp0`
/// only after it acknowledged our last request, so a datagram sent at once may find the
/// interface not up yet and be dropped by the peer's kernel.
const FIRST_PING_DELAY: Duration = Duration::from_millis(500);
/// Echo requests sent beyond the wanted replies before giving up.
const PING_EXTRA_TRIES: u16 = 3;
/// How often the loop wakes up without link activity (console checks, pings, deadline).
const TICK: Duration = Duration::from_millis(200);
/// How long to wait for pppd's first bytes on the serial line.
const FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(60);

/// What [`run_our_link`] does.
#[derive(Clone, Debug)]
pub struct OurLinkPlan {
    /// The link's configuration.
    pub config: LinkConfig,
    /// The seed of the link's randomness (a test harness: seeded, so a run can be replayed).
    pub seed: u64,
    /// Secrets for authenticating the peer (answers to [`LinkEvent::SecretNeeded`]); `None`
    /// answers every request with "unknown peer".
    pub secrets: Option<SecretsTable>,
    /// Echo replies wanted from the peer's address once the link carries IP (0: no pings).
    pub pings: u16,
    /// Wait for CCP to come up before pinging (set when `config.ccp` is configured).
    pub ping_after_ccp: bool,
    /// A console text that says the guest finished its part (by default
    /// [`GUEST_PING_MARKER`]); `None`: do not wait for the guest.
    pub guest_done_marker: Option<String>,
    /// Close the link (LCP Terminate-Request) once the pings and the guest are done.
    pub close_when_done: bool,
    /// The most the whole run may take; the run ends with `timed_out` after it.
    pub timeout: Duration,
}

impl OurLinkPlan {
    /// A plan with `config`: 3 pings (after CCP when `config.ccp` is set), wait for the guest's
    /// [`GUEST_PING_MARKER`], close, 90 s at most, no secrets.
    pub fn new(config: LinkConfig) -> OurLinkPlan {
        OurLinkPlan {
            ping_after_ccp: config.ccp.is_some(),
            config,
            seed: 0x1e7,
            secrets: None,
            pings: 3,
            guest_done_marker: Some(GUEST_PING_MARKER.to_owned()),
            close_when_done: true,
            timeout: Duration::from_secs(90),
        }
    }

    /// Seeds the link's randomness with `seed`.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> OurLinkPlan {
        self.seed = seed;
        self
    }

    /// Answers secret requests from `table`.
    #[must_use]
    pub fn secrets(mut self, table: SecretsTable) -> OurLinkPlan {
        self.secrets = Some(table);
        self
    }

    /// Neither pings nor waits for the guest nor closes: runs until the link goes down (for
    /// scenarios that fail on purpose).
    #[must_use]
    pub fn until_link_down(mut self) -> OurLinkPlan {
        self.pings = 0;
        self.guest_done_marker = None;
        self.close_when_done = false;
        self
    }

    /// The limit of the whole run.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> OurLinkPlan {
        self.timeout = timeout;
        self
    }
}

/// What happened while [`run_our_link`] ran.
#[derive(Clone, Debug, Default)]
pub struct OurLinkReport {
    /// Every event of the link, in order.
    pub events: Vec<LinkEvent>,
    /// `(local, peer)` from [`LinkEvent::IpUp`].
    pub ip_up: Option<(Ipv4Addr, Ipv4Addr)>,
    /// Whether [`LinkEvent::CcpUp`] came.
    pub ccp_up: bool,
    /// Echo requests we sent.
    pub echo_requests_sent: u16,
    /// Echo replies we got from the peer's address.
    pub echo_replies: u16,
    /// Echo requests from the peer to our address that we answered.
    pub echo_requests_answered: u32,
    /// Names of the secrets asked for (`client@server`) and whether the table had them.
    pub secret_lookups: Vec<(String, bool)>,
    /// The reason of [`LinkEvent::LinkDown`], if it came.
    pub link_down: Option<String>,
    /// Whether we closed the link ourselves.
    pub closed_by_us: bool,
    /// Whether the byte stream ended (QEMU exited).
    pub stream_closed: bool,
    /// Whether the guest's done marker appeared on the console.
    pub guest_done: bool,
    /// Whether the plan's timeout ended the run.
    pub timed_out: bool,
    /// An I/O error that ended the run.
    pub io_error: Option<String>,
    /// Our `tracing` output (debug level), one line per event.
    pub log: Vec<String>,
    /// The link's counters at the end.
    pub stats: LinkStats,
    /// Frames in our capture (`link.pcap`) by direction and PPP protocol number:
    /// `(sent, protocol, count)`.
    pub frames_by_protocol: Vec<(bool, u16, u32)>,
}

impl OurLinkReport {
    /// Whether a line of our log contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.log.iter().any(|line| line.contains(needle))
    }

    /// Configure-Requests we sent more than once with the same options (see
    /// [`repeated_configure_requests`]).
    pub fn repeated_configure_requests(&self) -> Vec<String> {
        repeated_configure_requests(&self.log, "sent")
    }

    /// How many frames of `protocol` (a PPP protocol number, say `0x00fd` for compressed or
    /// encrypted datagrams) we sent (`sent`) or received.
    pub fn frames(&self, sent: bool, protocol: u16) -> u32 {
        self.frames_by_protocol
            .iter()
            .filter(|(s, p, _)| *s == sent && *p == protocol)
            .map(|(_, _, n)| n)
            .sum()
    }

    /// A short summary for failure messages.
    pub fn summary(&self) -> String {
        format!(
            "ip_up {:?}, ccp_up {}, echo sent {} replies {} answered {}, link_down {:?}, \
             closed_by_us {}, guest_done {}, timed_out {}, stream_closed {}, io_error {:?}, \
             secret lookups {:?}",
            self.ip_up,
            self.ccp_up,
            self.echo_requests_sent,
            self.echo_replies,
            self.echo_requests_answered,
            self.link_down,
            self.closed_by_us,
            self.guest_done,
            self.timed_out,
            self.stream_closed,
            self.io_error,
            self.secret_lookups
        )
    }
}

/// Lines written by a scoped `tracing` subscriber (a `MakeWriter`), shared with a run loop that
/// takes them line by line into a scenario's trace.
#[derive(Clone, Default)]
pub struct LogBuffer {
    pending: Arc<Mutex<Vec<u8>>>,
}

impl LogBuffer {
    /// The complete lines written so far.
    pub fn take_lines(&self) -> Vec<String> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let Some(end) = pending.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let rest = pending.split_off(end + 1);
        let text = String::from_utf8_lossy(&pending).into_owned();
        *pending = rest;
        text.lines().map(str::to_owned).collect()
    }
}

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: a runaway logger cannot eat the machine's memory.
        if pending.len() < 16 << 20 {
            pending.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> LogBuffer {
        self.clone()
    }
}

/// Runs this stack's link on the guest's serial port as `plan` says, on a current-thread tokio
/// runtime with a `tracing` subscriber scoped to this thread (so scenarios running in parallel
/// keep their logs apart). Returns when the link went down, the stream closed, or the plan's
/// timeout passed; the report says which.
///
/// # Errors
///
/// When the guest is gone, pppd sent nothing within 60 s, or the runtime or capture cannot be
/// set up.
pub fn run_our_link(run: &mut ScenarioRun, plan: OurLinkPlan) -> Result<OurLinkReport, String> {
    let PppdSerial {
        stream,
        first,
        console,
    } = pppd_serial(run, "starting our link")?;
    block_on_with_our_logs(|logs| drive(run, stream, first, console, plan, logs))?
}

/// The guest's serial line once pppd talks on it.
#[derive(Debug)]
pub struct PppdSerial {
    /// The line, nonblocking, ready for `tokio::net::UnixStream::from_std`.
    pub stream: UnixStream,
    /// What pppd sent first.
    pub first: Vec<u8>,
    /// The guest's console log.
    pub console: PathBuf,
}

/// Waits (up to 60 s) for pppd's first bytes on the guest's serial line (see [`first_bytes`]),
/// notes in the trace that the run goes on (`then`), and hands the line over nonblocking.
///
/// # Errors
///
/// When the guest is gone, pppd sent nothing in time, or the socket fails.
pub fn pppd_serial(run: &mut ScenarioRun, then: &str) -> Result<PppdSerial, String> {
    let guest = run.guest().ok_or("the guest already exited")?;
    let mut stream = guest.serial()?;
    let console = guest.console_path().to_owned();
    let first = first_bytes(&mut stream, FIRST_BYTES_TIMEOUT)?;
    run.trace(format!(
        "first {} bytes from pppd arrived; {then}",
        first.len()
    ));
    stream
        .set_nonblocking(true)
        .map_err(|e| format!("serial socket: {e}"))?;
    Ok(PppdSerial {
        stream,
        first,
        console,
    })
}

/// Runs `body` with a `tracing` subscriber (debug level, no time, no colours) scoped to this
/// thread, so scenarios running in parallel keep their logs apart; the lines land in the
/// [`LogBuffer`] `body` is given.
pub fn with_our_logs<T>(body: impl FnOnce(&LogBuffer) -> T) -> T {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .without_time()
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    tracing::subscriber::with_default(subscriber, || body(&logs))
}

/// Runs the future `make` builds on a current-thread tokio runtime, inside [`with_our_logs`].
///
/// # Errors
///
/// When the runtime cannot be built.
pub fn block_on_with_our_logs<F: std::future::Future>(
    make: impl FnOnce(LogBuffer) -> F,
) -> Result<F::Output, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    Ok(with_our_logs(|logs| runtime.block_on(make(logs.clone()))))
}

/// Waits for the first bytes pppd sends on the serial socket (blocking, up to `timeout`): they
/// prove pppd has the guest's tty in raw mode, so nothing we send is echoed back.
pub fn first_bytes(stream: &mut UnixStream, timeout: Duration) -> Result<Vec<u8>, String> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(format!(
                "pppd sent nothing on the serial line within {timeout:?}"
            ));
        }
        stream
            .set_read_timeout(Some(left.min(Duration::from_millis(500))))
            .map_err(|e| format!("serial socket: {e}"))?;
        match stream.read(&mut buf) {
            Ok(0) => return Err("the serial socket closed before pppd sent anything".into()),
            Ok(n) => return Ok(buf[..n].to_vec()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(format!("reading the serial socket: {e}")),
        }
    }
}

/// Sends echo requests one at a time until enough replies came.
#[derive(Debug)]
struct Pinger {
    wanted: u16,
    next_seq: u16,
    outstanding: Option<(u16, Instant)>,
    /// When the link became ready for our pings.
    ready_since: Option<Instant>,
}

impl Pinger {
    fn done(&self, report: &OurLinkReport) -> bool {
        report.echo_replies >= self.wanted
    }

    fn tick<S>(
        &mut self,
        now: Instant,
        driver: &mut StreamDriver<S>,
        (local, peer): (Ipv4Addr, Ipv4Addr),
        report: &mut OurLinkReport,
        run: &mut ScenarioRun,
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        if self.done(report) || report.echo_requests_sent >= self.wanted + PING_EXTRA_TRIES {
            return;
        }
        let ready_since = *self.ready_since.get_or_insert(now);
        if now.saturating_duration_since(ready_since) < FIRST_PING_DELAY {
            return;
        }
        if self
            .outstanding
            .is_some_and(|(_, sent)| now.saturating_duration_since(sent) < PING_TIMEOUT)
        {
            return;
        }
        self.next_seq = self.next_seq.wrapping_add(1);
        let request = icmp::echo_request(local, peer, PING_ID, self.next_seq, b"ppp-interop ping");
        match driver.link_mut().send_ipv4(now, &request) {
            Ok(()) => {
                report.echo_requests_sent += 1;
                self.outstanding = Some((self.next_seq, now));
                run.trace(format!("ping {peer} seq {}", self.next_seq));
            }
            Err(e) => run.trace(format!("ping {peer} not sent: {e}")),
        }
    }

    fn reply(&mut self, seq: u16, report: &mut OurLinkReport) {
        if self.outstanding.is_some_and(|(s, _)| s == seq) {
            self.outstanding = None;
            report.echo_replies += 1;
        }
    }
}

async fn drive(
    run: &mut ScenarioRun,
    stream: UnixStream,
    first: Vec<u8>,
    console: PathBuf,
    plan: OurLinkPlan,
    logs: LogBuffer,
) -> Result<OurLinkReport, String> {
    let stream =
        tokio::net::UnixStream::from_std(stream).map_err(|e| format!("serial socket: {e}"))?;
    let mut driver = StreamDriver::new(
        Link::new(plan.config.clone(), ppp_link::Random::seeded(plan.seed)),
        stream,
    );
    let pcap = run.log_dir().join("link.pcap");
    let capture = Capture::create(&pcap).map_err(|e| format!("{}: {e}", pcap.display()))?;
    driver.set_capture(capture);
    driver.open();
    driver.link_mut().handle_input(Instant::now(), &first);

    let deadline = Instant::now() + plan.timeout;
    let mut report = OurLinkReport::default();
    let mut pinger = Pinger {
        wanted: plan.pings,
        next_seq: 0,
        outstanding: None,
        ready_since: None,
    };
    let mut closing = false;
    loop {
        if Instant::now() >= deadline {
            report.timed_out = true;
            run.trace(format!("our link: plan timeout {:?} passed", plan.timeout));
            break;
        }
        // `next` is only cancelled while it waits for input or a deadline: its writes go to a
        // unix socket with room to spare, which never makes it wait.
        let step = tokio::time::timeout(TICK, driver.next()).await;
        let now = Instant::now();
        match step {
            Err(_) => {}
            Ok(Err(e)) => {
                report.io_error = Some(e.to_string());
                break;
            }
            Ok(Ok(DriverEvent::Closed)) => {
                report.stream_closed = true;
                break;
            }
            Ok(Ok(DriverEvent::Link(event))) => {
                run.trace(format!("our event {event:?}"));
                match &event {
                    LinkEvent::SecretNeeded(request) => {
                        let entry = plan
                            .secrets
                            .as_ref()
                            .and_then(|t| t.lookup_now(&request.client, &request.server));
                        report.secret_lookups.push((
                            format!("{}@{}", request.client, request.server),
                            entry.is_some(),
                        ));
                        if let Err(error) =
                            driver.link_mut().provide_secret(now, request.token, entry)
                        {
                            run.trace(format!("secret answer not taken: {error}"));
                        }
                    }
                    LinkEvent::IpUp { local, peer, .. } => report.ip_up = Some((*local, *peer)),
                    LinkEvent::CcpUp(_) => report.ccp_up = true,
                    LinkEvent::LinkDown { reason } => report.link_down = Some(reason.to_string()),
                    _ => {}
                }
                report.events.push(event);
            }
            Ok(Ok(DriverEvent::Datagram(Datagram::Ipv4(packet)))) => {
                if let Some((local, peer)) = report.ip_up {
                    if let Some(reply) = icmp::echo_reply(&packet, local) {
                        match driver.link_mut().send_ipv4(now, &reply) {
                            Ok(()) => report.echo_requests_answered += 1,
                            Err(e) => run.trace(format!("echo reply not sent: {e}")),
                        }
                    } else if let Some((from, id, seq)) = icmp::parse_echo_reply(&packet) {
                        run.trace(format!("echo reply from {from} id {id:#x} seq {seq}"));
                        if from == peer && id == PING_ID {
                            pinger.reply(seq, &mut report);
                        }
                    } else {
                        run.trace(format!("other IPv4 datagram of {} bytes", packet.len()));
                    }
                }
            }
            Ok(Ok(DriverEvent::Datagram(other))) => {
                run.trace(format!("other datagram {other:?}"));
            }
        }
        for line in logs.take_lines() {
            run.trace(format!("ours: {line}"));
            report.log.push(line);
        }
        if report.link_down.is_some() {
            break;
        }
        if let Some(addresses) = report.ip_up
            && (report.ccp_up || !plan.ping_after_ccp)
            && !closing
        {
            pinger.tick(now, &mut driver, addresses, &mut report, run);
        }
        if !report.guest_done
            && let Some(marker) = plan.guest_done_marker.as_deref()
            && std::fs::read(&console)
                .is_ok_and(|bytes| String::from_utf8_lossy(&bytes).contains(marker))
        {
            report.guest_done = true;
            run.trace(format!("console shows {marker:?}"));
        }
        let pings_over = pinger.done(&report)
            || report.echo_requests_sent >= plan.pings + PING_EXTRA_TRIES
                && pinger
                    .outstanding
                    .is_none_or(|(_, at)| now - at >= PING_TIMEOUT);
        let guest_over = report.guest_done || plan.guest_done_marker.is_none();
        if plan.close_when_done && !closing && report.ip_up.is_some() && pings_over && guest_over {
            closing = true;
            report.closed_by_us = true;
            run.trace("our link: closing");
            driver.link_mut().close(
                now,
                ppp_link::CloseReason::Other("interop scenario done".into()),
            );
        }
    }
    if let Err(e) = driver.flush().await {
        report.io_error.get_or_insert(e.to_string());
    }
    for line in logs.take_lines() {
        run.trace(format!("ours: {line}"));
        report.log.push(line);
    }
    report.stats = driver.link().stats();
    drop(driver);
    report.frames_by_protocol = match std::fs::read(&pcap) {
        Ok(bytes) => pcap_protocol_counts(&bytes),
        Err(e) => {
            run.trace(format!("cannot read {}: {e}", pcap.display()));
            Vec::new()
        }
    };
    run.trace(format!("our link ended: {}", report.summary()));
    run.trace(format!("our link stats: {:?}", report.stats));
    Ok(report)
}

/// Counts the frames of a `LINKTYPE_PPP_WITH_DIR` capture as ppp-frame's `PcapWriter` writes it
/// (little-endian; each record: direction byte, `ff 03`, protocol, information) by direction
/// and protocol. Stops at the first truncated record.
fn pcap_protocol_counts(bytes: &[u8]) -> Vec<(bool, u16, u32)> {
    let mut counts: Vec<(bool, u16, u32)> = Vec::new();
    let mut rest = bytes.get(24..).unwrap_or_default();
    while let Some(header) = rest.get(..16) {
        let incl_len = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        let Some(record) = usize::try_from(incl_len)
            .ok()
            .and_then(|len| rest.get(16..16 + len))
        else {
            break;
        };
        if let [direction, 0xff, 0x03, hi, lo, ..] = *record {
            let key = (direction != 0, u16::from_be_bytes([hi, lo]));
            match counts.iter_mut().find(|(s, p, _)| (*s, *p) == key) {
                Some(entry) => entry.2 += 1,
                None => counts.push((key.0, key.1, 1)),
            }
        }
        rest = &rest[16 + record.len()..];
    }
    counts
}

/// A guest script: `setup` (say, writing `/etc/ppp/chap-secrets`), then pppd on ttyS1 with
/// `options` in the background (its log under the `pppd` tag); once `ppp0` has an IPv4 address
/// (60 s at most) `ping -c 3 -W 3 ping_target` (tag `ping`); then it prints
/// `PPPTEST-PING rc=<ping's exit code or none>`, waits for pppd and prints
/// `PPPTEST-PPPD rc=<pppd's exit code>`. The script exits with 0 when the ping succeeded and
/// pppd exited, 99 when `ppp0` never came up, and ping's exit code when it failed.
pub fn pppd_session_script(setup: &str, options: &str, ping_target: Ipv4Addr) -> String {
    format!(
        "{setup}
stty -F /dev/ttyS1 raw -echo 2>/dev/null
ppptest-run pppd pppd /dev/ttyS1 115200 local nocrtscts nolock nodetach debug logfd 2 {options} &
pppd_pid=$!
i=0
while [ $i -lt 60 ]; do
    ip -4 addr show dev ppp0 2>/dev/null | grep -q 'inet ' && break
    kill -0 $pppd_pid 2>/dev/null || break
    sleep 1
    i=$((i + 1))
done
ping_rc=none
if ip -4 addr show dev ppp0 2>/dev/null | grep -q 'inet '; then
    ip -4 addr show dev ppp0 >/log/ppp0-addr.txt 2>&1
    sleep 1
    ppptest-run ping ping -c 3 -W 3 {ping_target}
    ping_rc=$?
fi
echo \"{GUEST_PING_MARKER}$ping_rc\"
wait $pppd_pid
pppd_rc=$?
echo \"{GUEST_PPPD_MARKER}$pppd_rc\"
[ \"$ping_rc\" = none ] && exit 99
exit $ping_rc
"
    )
}

/// The number after `marker` on the console (for [`GUEST_PPPD_MARKER`]); `None` when the line
/// is missing or holds no number.
pub fn console_marker_code(console: &str, marker: &str) -> Option<i32> {
    console.lines().rev().find_map(|line| {
        let rest = &line[line.find(marker)? + marker.len()..];
        let digits: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        digits.parse().ok()
    })
}

/// The checks every session scenario shares: IPCP came up on our side with `local` and `peer`,
/// our pings got `pings` replies, the guest's pings got answered (its script exited with 0 and
/// its ping output shows no loss), we closed the link and it went down, our log shows our
/// Configure-Request, and pppd's log holds each of `pppd_needles` plus its IP addresses.
///
/// # Errors
///
/// A message naming the first check that failed, with the report's summary and pppd's log.
pub fn check_session(
    report: &OurLinkReport,
    outcome: &crate::GuestOutcome,
    (local, peer): (Ipv4Addr, Ipv4Addr),
    pings: u16,
    pppd_needles: &[&str],
) -> Result<(), String> {
    let pppd_log = outcome.pppd_log();
    let fail = |what: String| {
        Err(format!(
            "{what}\n  ours: {}\n  pppd log:\n    {}",
            report.summary(),
            pppd_log.join("\n    ")
        ))
    };
    if report.ip_up != Some((local, peer)) {
        return fail(format!("expected IpUp local {local} peer {peer}"));
    }
    if report.echo_replies < pings {
        return fail(format!("{pings} echo replies wanted from {peer}"));
    }
    if report.echo_requests_answered < 3 {
        return fail("the guest's 3 echo requests were not all answered".to_owned());
    }
    if !report.closed_by_us || report.link_down.is_none() {
        return fail("we did not close the link down cleanly".to_owned());
    }
    if !report.logged("sent [LCP ConfReq") {
        return fail("our log shows no `sent [LCP ConfReq`".to_owned());
    }
    if let Err(what) = one_exchange_each(&report.log, &pppd_log) {
        return fail(what);
    }
    let ping = outcome.tagged_lines("ping").join("\n");
    if !outcome.succeeded() || !ping.contains("3 packets received") {
        return fail(format!(
            "the guest's ping failed (script exit {:?}): {ping}",
            outcome.exit_code
        ));
    }
    let local_line = format!("local  IP address {peer}");
    let remote_line = format!("remote IP address {local}");
    let all = pppd_needles
        .iter()
        .copied()
        .chain([local_line.as_str(), remote_line.as_str()]);
    for needle in all {
        if !pppd_log.iter().any(|line| line.contains(needle)) {
            return fail(format!("pppd did not log `{needle}`"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_buffer_yields_complete_lines_only() {
        let mut buffer = LogBuffer::default();
        buffer.write_all(b"one\ntwo\nthr").unwrap();
        assert_eq!(buffer.take_lines(), ["one", "two"]);
        assert!(buffer.take_lines().is_empty());
        buffer.write_all(b"ee\n").unwrap();
        assert_eq!(buffer.take_lines(), ["three"]);
    }

    #[test]
    fn pcap_records_are_counted_by_direction_and_protocol() {
        let mut file = Vec::new();
        {
            let mut writer = ppp_frame::pcap::PcapWriter::new(
                &mut file,
                ppp_frame::pcap::LinkType::PppWithDirection,
            )
            .unwrap();
            let at = Duration::from_secs(1);
            let sent = ppp_frame::pcap::Direction::Sent;
            let received = ppp_frame::pcap::Direction::Received;
            writer
                .write_ppp(at, sent, ppp_frame::Protocol::Compressed, b"x")
                .unwrap();
            writer
                .write_ppp(at, sent, ppp_frame::Protocol::Compressed, b"yz")
                .unwrap();
            writer
                .write_ppp(at, received, ppp_frame::Protocol::Lcp, b"")
                .unwrap();
        }
        let report = OurLinkReport {
            frames_by_protocol: pcap_protocol_counts(&file),
            ..OurLinkReport::default()
        };
        assert_eq!(report.frames(true, 0x00fd), 2);
        assert_eq!(report.frames(false, 0xc021), 1);
        assert_eq!(report.frames(false, 0x00fd), 0);
        assert!(pcap_protocol_counts(&file[..file.len() - 1]).len() < 2);
        assert!(pcap_protocol_counts(&[]).is_empty());
    }

    #[test]
    fn marker_codes_parse() {
        let console = "x\nPPPTEST-PPPD rc=16\r\nPPPTEST-EXIT=0\n";
        assert_eq!(console_marker_code(console, GUEST_PPPD_MARKER), Some(16));
        assert_eq!(
            console_marker_code("PPPTEST-PING rc=none\n", GUEST_PING_MARKER),
            None
        );
        assert_eq!(console_marker_code("", GUEST_PPPD_MARKER), None);
    }

    #[test]
    fn session_script_pings_the_target() {
        let script = pppd_session_script("true", "noauth", Ipv4Addr::new(192, 0, 2, 1));
        assert!(script.contains("ping -c 3 -W 3 192.0.2.1"));
        assert!(script.contains("logfd 2 noauth &"));
        assert!(script.contains("echo \"PPPTEST-PPPD rc=$pppd_rc\""));
    }
}

/// The Configure-Requests in a pppd-style log (`sent [IPCP ConfReq id=0x1 <addr 0.0.0.0>]`, or
/// `rcvd` with `direction` "rcvd") that went out more than once with the same options: a
/// retransmission, where each protocol should open with one exchange (a request Nak'ed or
/// Rejected is followed by a different one, which is not counted).
pub fn repeated_configure_requests(log: &[String], direction: &str) -> Vec<String> {
    let marker = format!("{direction} [");
    let mut seen: Vec<String> = Vec::new();
    let mut repeated = Vec::new();
    for line in log {
        let Some(start) = line.find(&marker) else {
            continue;
        };
        let packet = &line[start + marker.len()..];
        if !packet.contains(" ConfReq ") {
            continue;
        }
        // Without the identifier: "IPCP ConfReq <addr 0.0.0.0>]".
        let key: String = packet
            .split(' ')
            .filter(|word| !word.starts_with("id="))
            .collect::<Vec<_>>()
            .join(" ");
        if seen.contains(&key) {
            repeated.push(line.clone());
        } else {
            seen.push(key);
        }
    }
    repeated
}

/// Each protocol opened with one exchange: no Configure-Request of ours went out twice with the
/// same options, and none of pppd's network-phase ones did (pppd's LCP requests before our side
/// starts are retransmitted by design and not counted).
///
/// # Errors
///
/// The repeated requests, in words.
pub fn one_exchange_each(ours: &[String], pppd_log: &[String]) -> Result<(), String> {
    let ours = repeated_configure_requests(ours, "sent");
    let pppd: Vec<String> = repeated_configure_requests(pppd_log, "sent")
        .into_iter()
        .filter(|line| !line.contains("[LCP "))
        .collect();
    if ours.is_empty() && pppd.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "a protocol took more than one exchange: our repeated requests {ours:?}, pppd's {pppd:?}"
        ))
    }
}

#[cfg(test)]
mod repeated_requests_tests {
    use super::repeated_configure_requests;

    #[test]
    fn only_identical_requests_count() {
        let log: Vec<String> = [
            "DEBUG sent [LCP ConfReq id=0x1 <magic 0x1>]",
            "DEBUG sent [IPCP ConfReq id=0x1 <addr 0.0.0.0>]",
            "DEBUG rcvd [IPCP ConfNak id=0x1 <addr 192.0.2.1>]",
            "DEBUG sent [IPCP ConfReq id=0x2 <addr 192.0.2.1>]",
            "DEBUG sent [LCP ConfReq id=0x2 <magic 0x1>]",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            repeated_configure_requests(&log, "sent"),
            vec!["DEBUG sent [LCP ConfReq id=0x2 <magic 0x1>]".to_owned()]
        );
        assert!(repeated_configure_requests(&log, "rcvd").is_empty());
    }
}
