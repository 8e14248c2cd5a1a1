//! This stack's PPPoE client and access concentrator on the guest NIC's Ethernet socket.
//!
//! [`run_pppoe_client`] drives a [`PppoeClient`] and [`run_pppoe_server`] a [`PppoeServer`] over
//! the [`EthernetLink`] of a [`ScenarioRun`] started with
//! [`with_ethernet_socket`](crate::Scenario::with_ethernet_socket): a plain blocking loop with
//! `Instant::now()` as time that hands every frame from the guest to the state machine, sends
//! whatever it wants to send, and sleeps until its `poll_timeout` or the next frame (200 ms at
//! most, to look at the console). Around that the loop answers secret requests from a
//! [`SecretsTable`] (server), pings the peer's address once IPCP is up, answers ICMP echo
//! requests to our address, watches the guest console for a marker (the guest's own ping
//! finished), then closes the session (client) or releases the guest with a line on its serial
//! port so that the guest ends pppd itself (server).
//!
//! Our `tracing` output (pppd-like `sent [LCP ConfReq ...]` lines), our events and a one-line
//! summary of every Ethernet frame go to the scenario's `trace.log`; the frames themselves to
//! `ethernet.pcap` in its log directory.

use crate::our_link::{LogBuffer, with_our_logs};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ppp_auth::SecretsTable;
use ppp_link::CloseReason;
use ppp_link::pppoe::{
    PppoeClient, PppoeClientEvent, PppoeClientState, PppoeServer, PppoeServerEvent, UnitId,
};
use ppp_link::{Datagram, LinkError, LinkEvent};
use ppp_tokio::icmp;

use crate::{EthernetLink, ScenarioRun, SerialLink};

/// The ICMP identifier of our echo requests.
const PING_ID: u16 = 0x5045;
/// How long one echo request may go unanswered before the next is sent.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// How long after IPCP came up our first echo request waits: pppd configures `ppp0` only after
/// IPCP is Opened on its side, and a datagram that arrives before is dropped by the guest kernel.
const FIRST_PING_DELAY: Duration = Duration::from_millis(700);
/// Echo requests sent beyond the wanted replies before giving up.
const PING_EXTRA_TRIES: u16 = 3;
/// The longest the loop sleeps without a frame or a deadline (console checks, pings, timeout).
const TICK: Duration = Duration::from_millis(200);
/// How long our timers keep running after the guest powered off while the session was still up
/// (LCP's Stopping state after a Terminate-Request lasts one restart interval, 3 s).
const AFTER_GUEST_EXIT: Duration = Duration::from_secs(5);
/// The line written to the guest's serial port to release it (see [`PppoePlan::release_guest`]).
pub const RELEASE_LINE: &[u8] = b"done\n";

/// The PPPoE Discovery EtherType.
const ETHERTYPE_DISCOVERY: u16 = 0x8863;
/// The PPPoE Session EtherType.
const ETHERTYPE_SESSION: u16 = 0x8864;
/// The PADT code.
const CODE_PADT: u8 = 0xA7;

/// What [`run_pppoe_client`] or [`run_pppoe_server`] does.
#[derive(Clone, Debug)]
pub struct PppoePlan {
    /// Echo replies wanted from the peer's address once IPCP is up (0: no pings).
    pub pings: u16,
    /// A console text that says the guest finished its part; `None`: do not wait for the guest.
    pub guest_done_marker: Option<String>,
    /// Once our pings and the guest are done, write [`RELEASE_LINE`] to the guest's serial port
    /// (the guest script then ends pppd itself).
    pub release_guest: bool,
    /// Once our pings and the guest are done, end the session ourselves (LCP Terminate, PADT).
    pub close_when_done: bool,
    /// How long the loop goes on after the session ended (to see the guest's last frames); it
    /// also ends when the guest powers off.
    pub linger: Duration,
    /// The most the whole run may take; the run ends with `timed_out` after it.
    pub timeout: Duration,
    /// Length of our echo requests' IPv4 packets (Don't Fragment is always set); 0: a short
    /// text payload.
    pub ping_size: usize,
}

impl PppoePlan {
    /// 3 pings, wait for `guest_done_marker`, then close; 2 s of lingering, 90 s at most.
    pub fn new(guest_done_marker: &str) -> PppoePlan {
        PppoePlan {
            pings: 3,
            guest_done_marker: Some(guest_done_marker.to_owned()),
            release_guest: false,
            close_when_done: true,
            linger: Duration::from_secs(2),
            timeout: Duration::from_secs(90),
            ping_size: 0,
        }
    }

    /// Our echo requests are IPv4 packets of `bytes` (with Don't Fragment, as always).
    #[must_use]
    pub fn ping_size(mut self, bytes: usize) -> PppoePlan {
        self.ping_size = bytes;
        self
    }

    /// Release the guest instead of closing the session ourselves.
    #[must_use]
    pub fn release_guest(mut self) -> PppoePlan {
        self.release_guest = true;
        self.close_when_done = false;
        self
    }

    /// The limit of the whole run.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> PppoePlan {
        self.timeout = timeout;
        self
    }
}

/// What happened while [`run_pppoe_client`] or [`run_pppoe_server`] ran.
#[derive(Clone, Debug, Default)]
pub struct PppoeReport {
    /// Every event of the state machine, as its `Debug` text, in order.
    pub events: Vec<String>,
    /// The PPPoE session id, once the session exists.
    pub session_id: Option<u16>,
    /// The AC name of the session (client).
    pub ac_name: Option<String>,
    /// `(local, peer)` from IPCP's `IpUp`.
    pub ip_up: Option<(Ipv4Addr, Ipv4Addr)>,
    /// DNS servers the peer gave us (client).
    pub dns: Vec<Ipv4Addr>,
    /// Time from the start of the run to `IpUp`.
    pub connected_after: Option<Duration>,
    /// Whether `Authenticated` came.
    pub authenticated: bool,
    /// Names of the secrets asked for (`client@server`) and whether the table had them.
    pub secret_lookups: Vec<(String, bool)>,
    /// Echo requests we sent.
    pub echo_requests_sent: u16,
    /// Echo replies we got from the peer's address.
    pub echo_replies: u16,
    /// Echo requests from the peer to our address that we answered.
    pub echo_requests_answered: u32,
    /// Why the session ended (client `Down`, server `SessionDown`).
    pub session_down: Option<String>,
    /// Whether we ended the session ourselves.
    pub closed_by_us: bool,
    /// Whether the guest was released on its serial port.
    pub guest_released: bool,
    /// Whether the guest's done marker appeared on the console.
    pub guest_done: bool,
    /// Ethernet frames sent and received.
    pub frames_sent: u64,
    /// Ethernet frames received.
    pub frames_received: u64,
    /// PADTs we sent.
    pub padt_sent: u32,
    /// PADTs the guest sent.
    pub padt_received: u32,
    /// Sessions still up at the end: our access concentrator's (server), 1 or 0 (client).
    pub sessions_left: usize,
    /// Whether the plan's timeout ended the run.
    pub timed_out: bool,
    /// Whether the Ethernet socket closed (QEMU exited).
    pub stream_closed: bool,
    /// Our `tracing` output (debug level), one line per message.
    pub log: Vec<String>,
}

impl PppoeReport {
    /// Whether a line of our log contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.log.iter().any(|line| line.contains(needle))
    }

    /// A short summary for failure messages.
    pub fn summary(&self) -> String {
        format!(
            "session {:?} ac {:?}, ip_up {:?} dns {:?} after {:?}, authenticated {}, \
             secret lookups {:?}, echo sent {} replies {} answered {}, session_down {:?}, \
             closed_by_us {}, guest_done {}, guest_released {}, frames out {} in {}, \
             PADT out {} in {}, sessions left {}, timed_out {}, stream_closed {}",
            self.session_id,
            self.ac_name,
            self.ip_up,
            self.dns,
            self.connected_after,
            self.authenticated,
            self.secret_lookups,
            self.echo_requests_sent,
            self.echo_replies,
            self.echo_requests_answered,
            self.session_down,
            self.closed_by_us,
            self.guest_done,
            self.guest_released,
            self.frames_sent,
            self.frames_received,
            self.padt_sent,
            self.padt_received,
            self.sessions_left,
            self.timed_out,
            self.stream_closed
        )
    }
}

/// Runs `client` (not started yet) on the guest NIC as `plan` says: starts discovery, pings the
/// AC's address once IPCP is up, answers the guest's pings, waits for the guest's marker and
/// then closes the session (or releases the guest, which ends it); returns once the session ended and [`PppoePlan::linger`] passed, the guest
/// powered off (after at most 5 s more of our timers while the session was still up), or the
/// plan's timeout passed (the report says which).
///
/// # Errors
///
/// When the Ethernet socket cannot be had or fails.
pub fn run_pppoe_client(
    run: &mut ScenarioRun,
    client: PppoeClient,
    plan: &PppoePlan,
) -> Result<PppoeReport, String> {
    let mut endpoint = ClientEndpoint {
        client,
        defrag: Defrag::default(),
    };
    with_our_logs(|logs| drive(run, &mut endpoint, plan, logs))
}

/// Runs `server` on the guest NIC as `plan` says: answers secret requests from `secrets`, pings
/// each session's client once its IPCP is up, answers echo requests to our address, waits for
/// the guest's marker and then releases the guest (or closes the session); returns once the
/// session ended and [`PppoePlan::linger`] passed, the guest powered off (after at most 5 s more
/// of our timers while the session was still up: pppd 2.4.9's plugin sends no PADT, so the
/// session ends with LCP's Stopping state), or the plan's timeout passed (the report says which).
///
/// # Errors
///
/// When the Ethernet socket cannot be had or fails.
pub fn run_pppoe_server(
    run: &mut ScenarioRun,
    server: PppoeServer,
    secrets: SecretsTable,
    plan: &PppoePlan,
) -> Result<PppoeReport, String> {
    let mut endpoint = ServerEndpoint {
        server,
        secrets,
        session: None,
        defrag: Defrag::default(),
    };
    with_our_logs(|logs| drive(run, &mut endpoint, plan, logs))
}

/// What the loop needs of a client or a server.
trait Endpoint {
    fn start(&mut self, now: Instant);
    fn handle_input(&mut self, now: Instant, frame: &[u8]);
    fn handle_timeout(&mut self, now: Instant);
    fn poll_transmit(&mut self) -> Option<Vec<u8>>;
    fn poll_timeout(&self) -> Option<Instant>;
    /// Takes events and datagrams: records them, answers secrets and echo requests, counts
    /// echo replies (returning their sequence numbers).
    fn collect(
        &mut self,
        now: Instant,
        report: &mut PppoeReport,
        run: &mut ScenarioRun,
    ) -> Vec<u16>;
    fn send_ipv4(&mut self, now: Instant, packet: &[u8]) -> Result<(), LinkError>;
    fn close(&mut self, now: Instant);
    fn sessions_left(&self) -> usize;
}

/// If `packet` is an echo request to `local`, the reply; if it is our echo reply from `peer`,
/// its sequence number.
enum Icmp {
    Request(Vec<u8>),
    Reply(u16),
    Other,
}

fn classify(packet: &[u8], (local, peer): (Ipv4Addr, Ipv4Addr)) -> Icmp {
    if let Some(reply) = icmp::echo_reply(packet, local) {
        return Icmp::Request(reply);
    }
    match icmp::parse_echo_reply(packet) {
        Some((from, id, seq)) if from == peer && id == PING_ID => Icmp::Reply(seq),
        _ => Icmp::Other,
    }
}

/// Puts IPv4 fragments back together (only what the pings need: whole datagrams from the
/// peer, fragments in any order, at most a few datagrams pending).
#[derive(Default)]
struct Defrag {
    /// (source, destination, identification) -> fragments (offset in bytes, more, data).
    pending: Vec<(FragmentKey, Vec<Fragment>)>,
}

/// Which datagram a fragment belongs to: source, destination, identification.
type FragmentKey = (Ipv4Addr, Ipv4Addr, u16);
/// A fragment: where its bytes go, whether more follow, the bytes.
type Fragment = (usize, bool, Vec<u8>);

impl Defrag {
    /// The whole datagram, once `packet` (a datagram or a fragment) completes it.
    fn accept(&mut self, packet: &[u8]) -> Option<Vec<u8>> {
        if packet.len() < 20 || packet[0] >> 4 != 4 {
            return Some(packet.to_vec());
        }
        let header_len = usize::from(packet[0] & 0x0f) * 4;
        let flags_offset = u16::from_be_bytes([packet[6], packet[7]]);
        let more = flags_offset & 0x2000 != 0;
        let offset = usize::from(flags_offset & 0x1fff) * 8;
        if !more && offset == 0 {
            return Some(packet.to_vec());
        }
        let total = usize::from(u16::from_be_bytes([packet[2], packet[3]])).min(packet.len());
        if header_len > total {
            return None;
        }
        let key = (
            Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]),
            Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]),
            u16::from_be_bytes([packet[4], packet[5]]),
        );
        let index = match self.pending.iter().position(|(k, _)| *k == key) {
            Some(index) => index,
            None => {
                if self.pending.len() >= 8 {
                    self.pending.remove(0);
                }
                self.pending.push((key, Vec::new()));
                self.pending.len() - 1
            }
        };
        let pieces = &mut self.pending[index].1;
        if offset == 0 {
            // Keep the first fragment's header for the whole datagram.
            pieces.push((0, more, packet[..total].to_vec()));
        } else {
            pieces.push((
                header_len + offset,
                more,
                packet[header_len..total].to_vec(),
            ));
        }
        pieces.sort_by_key(|(at, _, _)| *at);
        // Complete: starts at 0, no gaps, and the last has More Fragments clear.
        let mut end = 0;
        for (at, _, data) in pieces.iter() {
            if *at > end {
                return None;
            }
            end = end.max(at + data.len());
        }
        if pieces.last().is_none_or(|(_, more, _)| *more) || pieces[0].0 != 0 {
            return None;
        }
        let (_, pieces) = self.pending.remove(index);
        let mut whole = vec![0u8; end];
        for (at, _, data) in pieces {
            whole[at..at + data.len()].copy_from_slice(&data);
        }
        whole[2..4].copy_from_slice(&(end as u16).to_be_bytes());
        whole[6] &= 0xc0;
        whole[7] = 0;
        whole[10] = 0;
        whole[11] = 0;
        let mut sum = 0u32;
        for pair in whole[..header_len].chunks(2) {
            sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        whole[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        Some(whole)
    }
}

struct ClientEndpoint {
    client: PppoeClient,
    defrag: Defrag,
}

impl Endpoint for ClientEndpoint {
    fn start(&mut self, now: Instant) {
        self.client.open(now);
    }

    fn handle_input(&mut self, now: Instant, frame: &[u8]) {
        self.client.handle_input(now, frame);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.client.handle_timeout(now);
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.client.poll_transmit()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.client.poll_timeout()
    }

    fn collect(
        &mut self,
        now: Instant,
        report: &mut PppoeReport,
        run: &mut ScenarioRun,
    ) -> Vec<u16> {
        while let Some(event) = self.client.poll_event() {
            run.trace(format!("our event {event:?}"));
            match &event {
                PppoeClientEvent::Link(LinkEvent::IpUp { local, peer, dns }) => {
                    report.ip_up = Some((*local, *peer));
                    report.dns.clone_from(dns);
                    report.connected_after = Some(run.elapsed());
                }
                PppoeClientEvent::Link(LinkEvent::Authenticated { .. }) => {
                    report.authenticated = true;
                }
                PppoeClientEvent::Down { reason } => report.session_down = Some(reason.to_string()),
                _ => {}
            }
            report.events.push(format!("{event:?}"));
        }
        if let Some(session) = self.client.session() {
            report.session_id = Some(session.session_id);
            if report.ac_name.is_none() {
                report.ac_name = Some(session.ac_name.clone());
            }
        }
        let mut replies = Vec::new();
        while let Some(datagram) = self.client.poll_datagram() {
            let (Datagram::Ipv4(packet), Some(addresses)) = (&datagram, report.ip_up) else {
                run.trace(format!("other datagram {datagram:?}"));
                continue;
            };
            // A peer whose MTU is below the packet's size sends it in IPv4 fragments.
            let Some(packet) = self.defrag.accept(packet) else {
                continue;
            };
            let packet = &packet;
            match classify(packet, addresses) {
                Icmp::Request(reply) => match self.client.send_ipv4(now, &reply) {
                    Ok(()) => report.echo_requests_answered += 1,
                    Err(e) => run.trace(format!("echo reply not sent: {e}")),
                },
                Icmp::Reply(seq) => replies.push(seq),
                Icmp::Other => run.trace(format!("other IPv4 datagram of {} bytes", packet.len())),
            }
        }
        replies
    }

    fn send_ipv4(&mut self, now: Instant, packet: &[u8]) -> Result<(), LinkError> {
        self.client.send_ipv4(now, packet)
    }

    fn close(&mut self, now: Instant) {
        self.client
            .close(now, CloseReason::Other("interop scenario done".into()));
    }

    fn sessions_left(&self) -> usize {
        usize::from(!matches!(
            self.client.state(),
            PppoeClientState::Idle | PppoeClientState::Disconnected(_)
        ))
    }
}

struct ServerEndpoint {
    server: PppoeServer,
    secrets: SecretsTable,
    /// The network layer whose IPCP came up first (the one we ping): a session's own, or a
    /// Multilink bundle's.
    session: Option<UnitId>,
    defrag: Defrag,
}

impl Endpoint for ServerEndpoint {
    fn start(&mut self, _now: Instant) {}

    fn handle_input(&mut self, now: Instant, frame: &[u8]) {
        self.server.handle_input(now, frame);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.server.handle_timeout(now);
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.server.poll_transmit()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.server.poll_timeout()
    }

    fn collect(
        &mut self,
        now: Instant,
        report: &mut PppoeReport,
        run: &mut ScenarioRun,
    ) -> Vec<u16> {
        while let Some(event) = self.server.poll_event() {
            run.trace(format!("our event {event:?}"));
            match &event {
                PppoeServerEvent::Link {
                    session_id,
                    event: LinkEvent::SecretNeeded(request),
                } => {
                    let entry = self.secrets.lookup_now(&request.client, &request.server);
                    report.secret_lookups.push((
                        format!("{}@{}", request.client, request.server),
                        entry.is_some(),
                    ));
                    if let Err(error) =
                        self.server
                            .provide_secret(now, *session_id, request.token, entry)
                    {
                        run.trace(format!("secret answer not taken: {error}"));
                    }
                }
                PppoeServerEvent::Network {
                    unit,
                    event: LinkEvent::IpUp { local, peer, .. },
                } if self.session.is_none() => {
                    self.session = Some(*unit);
                    report.session_id = self
                        .server
                        .unit(*unit)
                        .and_then(|u| u.members().map(|(id, _, _)| *id).min());
                    report.ip_up = Some((*local, *peer));
                    report.connected_after = Some(run.elapsed());
                }
                PppoeServerEvent::Link {
                    event: LinkEvent::Authenticated { .. },
                    ..
                } => report.authenticated = true,
                PppoeServerEvent::SessionDown {
                    session_id, reason, ..
                } if report.session_id.is_none_or(|s| s == *session_id) => {
                    report.session_down = Some(reason.to_string());
                }
                _ => {}
            }
            report.events.push(format!("{event:?}"));
        }
        let mut replies = Vec::new();
        while let Some((unit, datagram)) = self.server.poll_datagram() {
            let (Datagram::Ipv4(packet), Some(addresses)) = (&datagram, report.ip_up) else {
                run.trace(format!("other datagram {datagram:?} in {unit}"));
                continue;
            };
            let Some(packet) = self.defrag.accept(packet) else {
                continue;
            };
            let packet = &packet;
            match classify(packet, addresses) {
                Icmp::Request(reply) => match self.server.send_ipv4(now, unit, &reply) {
                    Ok(()) => report.echo_requests_answered += 1,
                    Err(e) => run.trace(format!("echo reply not sent: {e}")),
                },
                Icmp::Reply(seq) => replies.push(seq),
                Icmp::Other => run.trace(format!("other IPv4 datagram of {} bytes", packet.len())),
            }
        }
        replies
    }

    fn send_ipv4(&mut self, now: Instant, packet: &[u8]) -> Result<(), LinkError> {
        let session = self
            .session
            .ok_or(LinkError::NotReady(ppp_frame::Protocol::Ipv4))?;
        self.server.send_ipv4(now, session, packet)
    }

    fn close(&mut self, now: Instant) {
        if let Some(unit) = self.session {
            self.server.close_unit(
                now,
                unit,
                CloseReason::Other("interop scenario done".into()),
            );
        }
    }

    fn sessions_left(&self) -> usize {
        self.server.sessions().count()
    }
}

/// Sends echo requests one at a time until enough replies came.
#[derive(Debug)]
struct Pinger {
    wanted: u16,
    /// IPv4 length of each echo request (0: short).
    size: usize,
    next_seq: u16,
    outstanding: Option<(u16, Instant)>,
    ready_since: Option<Instant>,
}

impl Pinger {
    fn done(&self, report: &PppoeReport) -> bool {
        report.echo_replies >= self.wanted
    }

    fn exhausted(&self, report: &PppoeReport, now: Instant) -> bool {
        report.echo_requests_sent >= self.wanted + PING_EXTRA_TRIES
            && self
                .outstanding
                .is_none_or(|(_, at)| now.saturating_duration_since(at) >= PING_TIMEOUT)
    }

    fn over(&self, report: &PppoeReport, now: Instant) -> bool {
        self.done(report) || self.exhausted(report, now)
    }

    fn tick(
        &mut self,
        now: Instant,
        endpoint: &mut dyn Endpoint,
        (local, peer): (Ipv4Addr, Ipv4Addr),
        report: &mut PppoeReport,
        run: &mut ScenarioRun,
    ) {
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
        let payload = if self.size > 28 {
            vec![0x5a; self.size - 28]
        } else {
            b"ppp-interop pppoe".to_vec()
        };
        let request = icmp::echo_request(local, peer, PING_ID, self.next_seq, &payload);
        match endpoint.send_ipv4(now, &request) {
            Ok(()) => {
                report.echo_requests_sent += 1;
                self.outstanding = Some((self.next_seq, now));
                run.trace(format!("ping {peer} seq {}", self.next_seq));
            }
            Err(e) => run.trace(format!("ping {peer} not sent: {e}")),
        }
    }

    fn reply(&mut self, seq: u16, report: &mut PppoeReport) {
        if self.outstanding.is_some_and(|(s, _)| s == seq) {
            self.outstanding = None;
            report.echo_replies += 1;
        }
    }
}

/// A one-line summary of an Ethernet frame for the trace: discovery code or session protocol.
pub fn describe_frame(frame: &[u8]) -> String {
    let byte = |i: usize| frame.get(i).copied().unwrap_or(0);
    let mac = |at: usize| {
        frame.get(at..at + 6).map_or_else(
            || "?".to_owned(),
            |m| {
                m.iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":")
            },
        )
    };
    let ethertype = u16::from_be_bytes([byte(12), byte(13)]);
    let session = u16::from_be_bytes([byte(16), byte(17)]);
    let what = match ethertype {
        ETHERTYPE_DISCOVERY => match byte(15) {
            0x09 => "PADI".to_owned(),
            0x07 => "PADO".to_owned(),
            0x19 => "PADR".to_owned(),
            0x65 => "PADS".to_owned(),
            CODE_PADT => "PADT".to_owned(),
            code => format!("discovery code {code:#04x}"),
        },
        ETHERTYPE_SESSION => {
            let protocol = u16::from_be_bytes([byte(20), byte(21)]);
            let name = match protocol {
                0xC021 => "LCP",
                0xC023 => "PAP",
                0xC223 => "CHAP",
                0x8021 => "IPCP",
                0x8057 => "IPv6CP",
                0x80FD => "CCP",
                0x0021 => "IPv4",
                0x0057 => "IPv6",
                _ => "protocol",
            };
            format!("{name} ({protocol:#06x}) code {}", byte(22))
        }
        other => format!("ethertype {other:#06x}"),
    };
    format!(
        "{what} session {session:#06x} {} -> {} ({} bytes)",
        mac(6),
        mac(0),
        frame.len()
    )
}

fn is_padt(frame: &[u8]) -> bool {
    frame.len() >= 16
        && u16::from_be_bytes([frame[12], frame[13]]) == ETHERTYPE_DISCOVERY
        && frame[15] == CODE_PADT
}

fn drive(
    run: &mut ScenarioRun,
    endpoint: &mut dyn Endpoint,
    plan: &PppoePlan,
    logs: &LogBuffer,
) -> Result<PppoeReport, String> {
    let mut eth = run.ethernet_link()?;
    let mut serial: Option<SerialLink> = if plan.release_guest {
        Some(run.serial_link()?)
    } else {
        None
    };
    let start = Instant::now();
    let deadline = start + plan.timeout;
    let mut report = PppoeReport::default();
    let mut pinger = Pinger {
        wanted: plan.pings,
        size: plan.ping_size,
        next_seq: 0,
        outstanding: None,
        ready_since: None,
    };
    let mut down_at: Option<Instant> = None;
    let mut closed_at: Option<Instant> = None;
    endpoint.start(start);
    loop {
        let now = Instant::now();
        if report.stream_closed {
            closed_at.get_or_insert(now);
        }
        for seq in endpoint.collect(now, &mut report, run) {
            run.trace(format!("echo reply seq {seq}"));
            pinger.reply(seq, &mut report);
        }
        send_all(run, endpoint, &mut eth, &mut report);
        for line in logs.take_lines() {
            run.trace(format!("ours: {line}"));
            report.log.push(line);
        }
        if report.session_down.is_some() {
            let at = *down_at.get_or_insert(now);
            if now.saturating_duration_since(at) >= plan.linger {
                break;
            }
        }
        if now >= deadline {
            report.timed_out = true;
            run.trace(format!("plan timeout {:?} passed", plan.timeout));
            break;
        }
        let session_up = report.ip_up.is_some() && report.session_down.is_none();
        if let Some(addresses) = report.ip_up
            && session_up
            && !report.closed_by_us
        {
            pinger.tick(now, endpoint, addresses, &mut report, run);
            send_all(run, endpoint, &mut eth, &mut report);
        }
        if !report.guest_done
            && let Some(marker) = plan.guest_done_marker.as_deref()
            && run
                .guest()
                .is_some_and(|g| g.console_so_far().contains(marker))
        {
            report.guest_done = true;
            run.trace(format!("console shows {marker:?}"));
        }
        let guest_over = report.guest_done || plan.guest_done_marker.is_none();
        if session_up && guest_over && pinger.over(&report, now) {
            if plan.close_when_done && !report.closed_by_us {
                report.closed_by_us = true;
                run.trace("closing the session");
                endpoint.close(now);
                continue;
            }
            if let Some(link) = serial.as_mut()
                && !report.guest_released
            {
                report.guest_released = true;
                run.trace("releasing the guest");
                link.write_bytes(RELEASE_LINE)
                    .map_err(|e| format!("writing to the guest's serial port: {e}"))?;
            }
        }
        let wake = endpoint
            .poll_timeout()
            .map_or(now + TICK, |t| t.min(now + TICK));
        let wait = wake
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        if report.stream_closed {
            // The guest is gone: only our timers run (say, LCP's Stopping state ending).
            if closed_at.is_some_and(|at| now.saturating_duration_since(at) >= AFTER_GUEST_EXIT) {
                break;
            }
            std::thread::sleep(wait);
        } else {
            match eth.recv_frame(wait).map_err(|e| e.to_string())? {
                Some(frame) => {
                    report.frames_received += 1;
                    if is_padt(&frame) {
                        report.padt_received += 1;
                    }
                    run.trace(format!("rcvd {}", describe_frame(&frame)));
                    endpoint.handle_input(Instant::now(), &frame);
                }
                None if eth.peer_closed() => {
                    report.stream_closed = true;
                    closed_at.get_or_insert_with(Instant::now);
                    run.trace("the Ethernet socket closed");
                    if report.session_down.is_some() || report.session_id.is_none() {
                        break;
                    }
                }
                None => {}
            }
        }
        let now = Instant::now();
        if endpoint.poll_timeout().is_some_and(|t| t <= now) {
            endpoint.handle_timeout(now);
        }
    }
    // Whatever the last step produced.
    let now = Instant::now();
    let _ = endpoint.collect(now, &mut report, run);
    send_all(run, endpoint, &mut eth, &mut report);
    for line in logs.take_lines() {
        run.trace(format!("ours: {line}"));
        report.log.push(line);
    }
    report.sessions_left = endpoint.sessions_left();
    run.trace(format!("our PPPoE peer ended: {}", report.summary()));
    Ok(report)
}

fn send_all(
    run: &mut ScenarioRun,
    endpoint: &mut dyn Endpoint,
    eth: &mut EthernetLink,
    report: &mut PppoeReport,
) {
    while let Some(frame) = endpoint.poll_transmit() {
        if report.stream_closed {
            run.trace(format!(
                "not sent (the guest is gone): {}",
                describe_frame(&frame)
            ));
            continue;
        }
        run.trace(format!("sent {}", describe_frame(&frame)));
        report.frames_sent += 1;
        if is_padt(&frame) {
            report.padt_sent += 1;
        }
        if let Err(e) = eth.send_frame(&frame) {
            // QEMU went away between two frames (the guest powered off): not the peer's fault.
            run.trace(format!("the Ethernet socket failed: {e}"));
            report.stream_closed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_summarised() {
        let mut padt = vec![0x52, 0x54, 0, 0x12, 0x34, 0x57, 2, 0, 0, 0, 0, 1];
        padt.extend_from_slice(&[0x88, 0x63, 0x11, 0xA7, 0x00, 0x05, 0x00, 0x00]);
        assert!(is_padt(&padt));
        assert_eq!(
            describe_frame(&padt),
            "PADT session 0x0005 02:00:00:00:00:01 -> 52:54:00:12:34:57 (20 bytes)"
        );
        let mut lcp = padt[..12].to_vec();
        lcp.extend_from_slice(&[0x88, 0x64, 0x11, 0x00, 0x00, 0x05, 0x00, 0x06]);
        lcp.extend_from_slice(&[0xC0, 0x21, 0x09, 0x01, 0x00, 0x08]);
        assert!(!is_padt(&lcp));
        assert!(describe_frame(&lcp).starts_with("LCP (0xc021) code 9 session 0x0005"));
        let cases: [&[u8]; 3] = [&[], &[1, 2, 3], &[0; 13]];
        for frame in cases {
            assert!(!is_padt(frame));
            let _ = describe_frame(frame);
        }
    }

    #[test]
    fn icmp_is_classified() {
        let us = Ipv4Addr::new(192, 0, 2, 10);
        let peer = Ipv4Addr::new(192, 0, 2, 1);
        let request = icmp::echo_request(peer, us, 7, 1, b"x");
        assert!(matches!(classify(&request, (us, peer)), Icmp::Request(_)));
        let ours = icmp::echo_request(us, peer, PING_ID, 9, b"x");
        let Some(reply) = icmp::echo_reply(&ours, peer) else {
            panic!("no reply built");
        };
        assert!(matches!(classify(&reply, (us, peer)), Icmp::Reply(9)));
        assert!(matches!(classify(&[0x45, 0], (us, peer)), Icmp::Other));
    }

    #[test]
    fn ipv4_fragments_are_put_back_together() {
        let us = Ipv4Addr::new(192, 0, 2, 1);
        let peer = Ipv4Addr::new(192, 0, 2, 2);
        let whole = icmp::echo_request(peer, us, 7, 1, &[0x5a; 1472]);
        // Split after 1480 bytes of payload (8-byte units), second fragment first.
        let mut first = whole[..20 + 1480].to_vec();
        first[2..4].copy_from_slice(&(1500u16).to_be_bytes());
        first[6] = 0x20; // More Fragments
        let mut second = whole[..20].to_vec();
        second.extend_from_slice(&whole[20 + 1480..]);
        let len = second.len() as u16;
        second[2..4].copy_from_slice(&len.to_be_bytes());
        second[6..8].copy_from_slice(&(1480u16 / 8).to_be_bytes());
        let mut defrag = Defrag::default();
        assert_eq!(defrag.accept(&second), None);
        let got = defrag.accept(&first).expect("complete");
        assert_eq!(&got[20..], &whole[20..]);
        assert!(matches!(classify(&got, (us, peer)), Icmp::Request(_)));
        assert_eq!(defrag.accept(&whole), Some(whole.clone()));
    }
}
