//! The Link Control Protocol: [`Lcp`] wraps `Fsm<LcpProtocol>` and adds the Echo-Request
//! keepalive, loopback detection and Protocol-Reject handling.

mod config;
mod protocol;

use std::time::{Duration, Instant};

use ppp_core::{CloseReason, LazyQueue, Machine, Random};
use ppp_frame::Protocol;
use tracing::debug;

pub use config::{
    AuthProtocol, CHAP_MD5, CHAP_MICROSOFT_V1, CHAP_MICROSOFT_V2, DEFAULT_MRU, EndpointClass,
    EndpointDiscriminator, FcsAlternatives, LcpConfig, LcpOptionType, MIN_MRU,
};
pub use protocol::{LcpNegotiated, LcpProtocol, describe_lcp_options};

use crate::fsm::{FinishReason, Fsm, FsmEvent, State};
use crate::packet::Code;
use protocol::Note;

/// What LCP tells the link.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LcpEvent {
    /// This-Layer-Started: the lower layer is needed (bring the line or session up, then call
    /// [`Lcp::up`]).
    Started,
    /// LCP is Opened with these values: reconfigure framing, start authentication.
    Up(LcpNegotiated),
    /// LCP left Opened: NCPs and authentication go down.
    Down,
    /// This-Layer-Finished: the lower layer is no longer needed; why.
    Finished {
        /// Why.
        reason: FinishReason,
    },
    /// The peer rejected a protocol we sent (not LCP): stop that protocol (its NCP gets RXJ-).
    ProtocolRejected(Protocol),
    /// `echo_failure` Echo-Requests in a row went unanswered; LCP is closing the link.
    EchoTimeout,
    /// Our own Magic-Number came back: the line is looped back.
    LoopbackDetected,
    /// The peer sent an Identification packet (RFC 1570).
    Identification {
        /// Its message, lossily decoded as UTF-8.
        message: String,
    },
    /// The peer announced the time left in the session (RFC 1570).
    TimeRemaining {
        /// Seconds left.
        seconds: u32,
    },
}

/// Events kept waiting for `poll_event` at most; beyond this the oldest are dropped.
const MAX_QUEUED_EVENTS: usize = 64;

/// Echo-Request keepalive state.
#[derive(Clone, Debug, Default)]
struct Echo {
    interval: Option<Duration>,
    failure: u32,
    deadline: Option<Instant>,
    pending: u32,
    /// The peer Code-Rejected Echo-Request: stop sending them.
    rejected: bool,
    /// Only silent intervals send an Echo-Request (`LcpConfig::echo_adaptive`).
    adaptive: bool,
    /// When the peer was last heard from (adaptive mode).
    last_heard: Option<Instant>,
}

/// An LCP configuration shared by many links: any owner that can lend an [`LcpConfig`] (a
/// link configuration holding one, or the configuration itself).
pub type SharedLcpConfig = std::sync::Arc<dyn AsRef<LcpConfig> + Send + Sync>;

impl AsRef<LcpConfig> for LcpConfig {
    fn as_ref(&self) -> &LcpConfig {
        self
    }
}

/// The Link Control Protocol, sans-IO.
///
/// Inputs: [`up`](Lcp::up)/[`down`](Lcp::down) (lower layer), [`open`](Lcp::open)/
/// [`close`](Lcp::close) (administrative), [`handle_input`](Lcp::handle_input) (LCP packets),
/// [`handle_timeout`](Lcp::handle_timeout). After each, drain [`poll_transmit`](Lcp::poll_transmit)
/// (send each on protocol 0xC021) and [`poll_event`](Lcp::poll_event) until `None`, then wake up
/// at [`poll_timeout`](Lcp::poll_timeout).
#[derive(Debug)]
pub struct Lcp {
    fsm: Fsm<LcpProtocol>,
    echo: Echo,
    loopback_reported: bool,
    events: LazyQueue<LcpEvent>,
}

impl Lcp {
    /// LCP with `config`, drawing Magic-Numbers from `random`.
    pub fn new(config: LcpConfig, random: Random) -> Self {
        Self::with_shared_config(std::sync::Arc::new(config), random)
    }

    /// LCP whose configuration is shared with other links (a server's sessions keep one copy
    /// for all).
    pub fn with_shared_config(shared: SharedLcpConfig, random: Random) -> Self {
        let config: &LcpConfig = (*shared).as_ref();
        let echo = Echo {
            interval: config.echo_interval.filter(|i| !i.is_zero()),
            failure: config.echo_failure,
            adaptive: config.echo_adaptive,
            ..Echo::default()
        };
        let (fsm_config, passive, silent) = (config.fsm.clone(), config.passive, config.silent);
        let mut fsm = Fsm::new(LcpProtocol::with_shared_config(shared, random), fsm_config);
        fsm.set_passive(passive);
        fsm.set_silent(silent);
        Lcp {
            fsm,
            echo,
            loopback_reported: false,
            events: LazyQueue::new(),
        }
    }

    /// Releases the memory of empty queues (see [`Fsm::compact`]).
    pub fn compact(&mut self) {
        self.fsm.compact();
        self.fsm.protocol_mut().compact();
    }

    /// The automaton's state.
    pub fn state(&self) -> State {
        self.fsm.state()
    }

    /// The underlying automaton (counters, configuration).
    pub fn fsm(&self) -> &Fsm<LcpProtocol> {
        &self.fsm
    }

    /// The configuration.
    pub fn config(&self) -> &LcpConfig {
        self.fsm.protocol().config()
    }

    /// What was negotiated, while Opened.
    pub fn negotiated(&self) -> Option<&LcpNegotiated> {
        self.fsm.protocol().negotiated()
    }

    /// Echo-Requests sent and not answered yet.
    pub fn echoes_pending(&self) -> u32 {
        self.echo.pending
    }

    /// Lower layer is up.
    pub fn up(&mut self, now: Instant) {
        self.fsm.up(now);
        self.after_input(now);
    }

    /// Lower layer is down.
    pub fn down(&mut self, now: Instant) {
        self.fsm.down(now);
        self.after_input(now);
    }

    /// Administrative Open.
    pub fn open(&mut self, now: Instant) {
        self.loopback_reported = false;
        self.fsm.open(now);
        self.after_input(now);
    }

    /// Administrative Close: terminate the link; the reason's words go in the
    /// Terminate-Request.
    pub fn close(&mut self, now: Instant, reason: CloseReason) {
        self.fsm.close(now, reason);
        self.after_input(now);
    }

    /// An LCP packet arrived (the information field of a protocol 0xC021 frame). Malformed
    /// packets are counted and dropped; nothing panics.
    pub fn handle_input(&mut self, now: Instant, packet: &[u8]) {
        self.fsm.handle_input(now, packet);
        self.after_input(now);
    }

    /// Timers may have expired (restart timer, echo timer); a spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.fsm.handle_timeout(now);
        if self.echo.deadline.is_some_and(|deadline| now >= deadline) {
            self.echo_tick(now);
        }
        self.after_input(now);
    }

    /// Next LCP packet to send (information field). Call until `None` after every input.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.fsm.poll_transmit()
    }

    /// Next event. Call until `None` after every input.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<LcpEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Lcp::handle_timeout) should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.fsm.poll_timeout(), self.echo.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Send a Protocol-Reject for a packet of an unsupported `protocol` whose information field is
    /// `information` (RFC 1661 §5.7). Only in Opened; returns whether it was queued. The packet is
    /// truncated to the peer's MRU.
    pub fn send_protocol_reject(&mut self, protocol: Protocol, information: &[u8]) -> bool {
        if self.fsm.state() != State::Opened {
            return false;
        }
        let mut data = Vec::with_capacity(information.len().min(1500) + 2);
        data.extend_from_slice(&protocol.number().to_be_bytes());
        data.extend_from_slice(&information[..information.len().min(usize::from(u16::MAX))]);
        let identifier = self.fsm.allocate_identifier();
        self.fsm
            .send_packet(Code::ProtocolReject, identifier, &data);
        true
    }

    /// Send an Identification packet (RFC 1570) with `message`. Allowed in any state where the
    /// lower layer is up; returns whether it was queued.
    pub fn send_identification(&mut self, message: &str) -> bool {
        if matches!(self.fsm.state(), State::Initial | State::Starting) {
            return false;
        }
        let mut data = self.magic_for_packets().to_be_bytes().to_vec();
        data.extend_from_slice(message.as_bytes());
        let identifier = self.fsm.allocate_identifier();
        self.fsm
            .send_packet(Code::Identification, identifier, &data);
        true
    }

    /// Send a Time-Remaining packet (RFC 1570): `seconds` left in the session and `message`.
    /// Only in Opened; returns whether it was queued.
    pub fn send_time_remaining(&mut self, seconds: u32, message: &str) -> bool {
        if self.fsm.state() != State::Opened {
            return false;
        }
        let mut data = self.magic_for_packets().to_be_bytes().to_vec();
        data.extend_from_slice(&seconds.to_be_bytes());
        data.extend_from_slice(message.as_bytes());
        let identifier = self.fsm.allocate_identifier();
        self.fsm.send_packet(Code::TimeRemaining, identifier, &data);
        true
    }

    /// Send a Discard-Request (only in Opened); returns whether it was queued.
    pub fn send_discard_request(&mut self, payload: &[u8]) -> bool {
        if self.fsm.state() != State::Opened {
            return false;
        }
        let mut data = self.magic_for_packets().to_be_bytes().to_vec();
        data.extend_from_slice(payload);
        let identifier = self.fsm.allocate_identifier();
        self.fsm
            .send_packet(Code::DiscardRequest, identifier, &data);
        true
    }

    /// Something arrived from the peer at `now` (any frame of any protocol): with
    /// [`LcpConfig::echo_adaptive`] the peer counts as alive, so no Echo-Request goes out until
    /// an interval passes in silence. Cheap: call it for every received frame.
    pub fn note_traffic(&mut self, now: Instant) {
        self.echo.last_heard = Some(now);
    }

    /// The Magic-Number field of Echo/Discard/Identification packets: ours once negotiated, else 0.
    fn magic_for_packets(&self) -> u32 {
        self.negotiated().and_then(|n| n.our_magic).unwrap_or(0)
    }

    fn echo_tick(&mut self, now: Instant) {
        let Some(interval) = self.echo.interval else {
            self.echo.deadline = None;
            return;
        };
        if self.fsm.state() != State::Opened || self.echo.rejected {
            self.echo.deadline = None;
            return;
        }
        if self.echo.adaptive {
            self.adaptive_echo_tick(now, interval);
            return;
        }
        if self.echo.failure > 0 && self.echo.pending >= self.echo.failure {
            debug!(
                "LCP: no response to {} echo-requests, peer not responding",
                self.echo.pending
            );
            self.echo.deadline = None;
            self.push_event(LcpEvent::EchoTimeout);
            self.fsm
                .close_for(now, FinishReason::PeerNotResponding, "Peer not responding");
            return;
        }
        let data = self.magic_for_packets().to_be_bytes();
        let identifier = self.fsm.allocate_identifier();
        self.fsm.send_packet(Code::EchoRequest, identifier, &data);
        self.echo.pending = self.echo.pending.saturating_add(1);
        self.echo.deadline = now.checked_add(interval);
    }

    /// RouterOS-style keepalive: the peer is declared dead once it has been silent (no frame at
    /// all, Echo-Replies included) for `interval × failure`, and Echo-Requests go out only in
    /// the silent intervals before that. The timer is set so that the declaration happens on
    /// time, not at the next interval after.
    fn adaptive_echo_tick(&mut self, now: Instant, interval: Duration) {
        let heard = *self.echo.last_heard.get_or_insert(now);
        let idle = now.saturating_duration_since(heard);
        let timeout = (self.echo.failure > 0).then(|| interval.saturating_mul(self.echo.failure));
        if timeout.is_some_and(|timeout| idle >= timeout) {
            debug!(
                "LCP: nothing from the peer for {} s ({} echo-requests unanswered), peer not \
                 responding",
                idle.as_secs(),
                self.echo.pending
            );
            self.echo.deadline = None;
            self.push_event(LcpEvent::EchoTimeout);
            self.fsm
                .close_for(now, FinishReason::PeerNotResponding, "Peer not responding");
            return;
        }
        // Silent for an interval: an Echo-Request now and the next one an interval later.
        // Otherwise the next tick is when the silence will have lasted an interval (not an
        // interval from now: a tick just short of it would put off the first request until
        // just before the timeout, too late for the reply).
        let mut next = if idle >= interval {
            let data = self.magic_for_packets().to_be_bytes();
            let identifier = self.fsm.allocate_identifier();
            self.fsm.send_packet(Code::EchoRequest, identifier, &data);
            self.echo.pending = self.echo.pending.saturating_add(1);
            now.checked_add(interval)
        } else {
            self.echo.pending = 0;
            heard.checked_add(interval)
        };
        if let (Some(timeout), Some(at)) = (timeout, next) {
            next = Some(at.min(heard + timeout));
        }
        self.echo.deadline = next;
    }

    fn push_event(&mut self, event: LcpEvent) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// React to what the protocol noted and the automaton signalled, then send a due
    /// Echo-Request (which may itself close the link, hence the second pass).
    fn after_input(&mut self, now: Instant) {
        self.process_notes_and_events(now);
        if self.echo.deadline.is_some_and(|deadline| deadline <= now) {
            self.echo_tick(now);
            self.process_notes_and_events(now);
        }
    }

    fn process_notes_and_events(&mut self, now: Instant) {
        while let Some(note) = self.fsm.protocol_mut().take_note() {
            match note {
                Note::EchoReply => self.echo.pending = 0,
                Note::EchoRejected => {
                    debug!("LCP: peer rejects Echo-Request, keepalive disabled");
                    self.echo.rejected = true;
                    self.echo.deadline = None;
                }
                Note::Loopback => {
                    if !self.loopback_reported {
                        self.loopback_reported = true;
                        debug!("LCP: serial line is looped back");
                        self.push_event(LcpEvent::LoopbackDetected);
                        if !matches!(self.fsm.state(), State::Opened) {
                            self.fsm.close_for(
                                now,
                                FinishReason::LoopbackDetected,
                                "Loopback detected",
                            );
                        }
                    }
                }
                Note::ProtocolRejected(Protocol::Lcp) => {
                    self.fsm.handle_reject(now, false);
                }
                Note::ProtocolRejected(protocol) => {
                    debug!("LCP: peer rejected protocol {protocol}");
                    self.fsm.handle_reject(now, true);
                    self.push_event(LcpEvent::ProtocolRejected(protocol));
                }
                Note::Identification(message) => {
                    self.push_event(LcpEvent::Identification { message });
                }
                Note::TimeRemaining(seconds) => {
                    self.push_event(LcpEvent::TimeRemaining { seconds });
                }
            }
        }
        while let Some(event) = self.fsm.poll_event() {
            let event = match event {
                FsmEvent::Up => {
                    let negotiated = self.negotiated().cloned();
                    let Some(negotiated) = negotiated else {
                        continue;
                    };
                    self.fsm.set_peer_mru(negotiated.peer_mru);
                    self.loopback_reported = false;
                    self.echo.pending = 0;
                    self.echo.rejected = false;
                    self.echo.last_heard = Some(now);
                    if self.echo.interval.is_some() {
                        // Like pppd: the first Echo-Request goes out right away.
                        self.echo.deadline = Some(now);
                    }
                    LcpEvent::Up(negotiated)
                }
                FsmEvent::Down => {
                    self.echo.deadline = None;
                    self.echo.pending = 0;
                    LcpEvent::Down
                }
                FsmEvent::Started => LcpEvent::Started,
                FsmEvent::Finished { reason } => LcpEvent::Finished { reason },
            };
            self.push_event(event);
        }
    }
}

impl Machine for Lcp {
    type Event = LcpEvent;

    fn handle_input(&mut self, now: Instant, input: &[u8]) {
        Lcp::handle_input(self, now, input);
    }

    fn handle_timeout(&mut self, now: Instant) {
        Lcp::handle_timeout(self, now);
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        Lcp::poll_transmit(self)
    }

    fn poll_event(&mut self) -> Option<LcpEvent> {
        Lcp::poll_event(self)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Lcp::poll_timeout(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsm::NegotiationFailure;
    use crate::packet::ControlPacket;

    fn pkt(code: u8, id: u8, data: &[u8]) -> Vec<u8> {
        crate::packet::build(Code::from(code), id, data)
    }

    fn sent(lcp: &mut Lcp) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| lcp.poll_transmit()).collect()
    }

    /// What went out except our own Configure-Requests (ours is sent again when the peer's first
    /// request arrives before any answer to it: see the `fsm` module docs).
    fn replies(lcp: &mut Lcp) -> Vec<Vec<u8>> {
        sent(lcp).into_iter().filter(|p| p[0] != 1).collect()
    }

    fn events(lcp: &mut Lcp) -> Vec<LcpEvent> {
        std::iter::from_fn(|| lcp.poll_event()).collect()
    }

    /// Magic-Numbers from a fixed list, then counting up.
    fn magics(list: &[u32]) -> Random {
        let values: Vec<u64> = list.iter().map(|&m| u64::from(m)).collect();
        Random::scripted(if values.is_empty() {
            &[0x1000_0000]
        } else {
            &values
        })
    }

    /// Deliver packets both ways until both sides are quiet; returns how many moved.
    fn exchange(a: &mut Lcp, b: &mut Lcp, now: Instant) -> usize {
        let mut moved = 0;
        for _ in 0..100 {
            let from_a = sent(a);
            let from_b = sent(b);
            if from_a.is_empty() && from_b.is_empty() {
                return moved;
            }
            moved += from_a.len() + from_b.len();
            for p in from_a {
                b.handle_input(now, &p);
            }
            for p in from_b {
                a.handle_input(now, &p);
            }
        }
        panic!("the exchange does not settle");
    }

    fn up_event(events: &[LcpEvent]) -> Option<&LcpNegotiated> {
        events.iter().find_map(|e| match e {
            LcpEvent::Up(n) => Some(n),
            _ => None,
        })
    }

    fn start(lcp: &mut Lcp, now: Instant) {
        lcp.open(now);
        lcp.up(now);
    }

    #[test]
    fn golden_configure_request_is_acked_verbatim() {
        // RFC 1662's golden frame payload: ConfReq id 1, MRU 1500, Magic-Number 0x01020304.
        let golden = [
            0x01, 0x01, 0x00, 0x0E, 0x01, 0x04, 0x05, 0xDC, 0x05, 0x06, 0x01, 0x02, 0x03, 0x04,
        ];
        let now = Instant::now();
        let mut lcp = Lcp::new(LcpConfig::default(), magics(&[0x5d3c_1a2b]));
        start(&mut lcp, now);
        let _ = sent(&mut lcp);
        lcp.handle_input(now, &golden);
        let mut ack = golden;
        ack[0] = 2;
        assert_eq!(replies(&mut lcp), vec![ack.to_vec()]);
        assert_eq!(
            crate::describe_packet("LCP", &golden, &describe_lcp_options),
            "[LCP ConfReq id=0x1 <mru 1500> <magic 0x1020304>]"
        );
    }

    #[test]
    fn builds_golden_request_bytes() {
        let config = LcpConfig {
            mru: 1492,
            max_mru: 1492,
            accm: None,
            pfc: false,
            acfc: false,
            ..LcpConfig::default()
        };
        let now = Instant::now();
        let mut lcp = Lcp::new(config, magics(&[0x0102_0304]));
        start(&mut lcp, now);
        assert_eq!(
            sent(&mut lcp),
            vec![vec![
                0x01, 0x01, 0x00, 0x0E, 0x01, 0x04, 0x05, 0xD4, 0x05, 0x06, 0x01, 0x02, 0x03, 0x04
            ]]
        );
        let mut lcp = Lcp::new(LcpConfig::default(), magics(&[0x5d3c_1a2b]));
        start(&mut lcp, now);
        let request = sent(&mut lcp).remove(0);
        assert_eq!(
            crate::describe_packet("LCP", &request, &describe_lcp_options),
            "[LCP ConfReq id=0x1 <asyncmap 0x0> <magic 0x5d3c1a2b> <pcomp> <accomp>]"
        );
    }

    #[test]
    fn two_instances_reach_opened_with_expected_values() {
        let now = Instant::now();
        let client_config = LcpConfig {
            mru: 1400,
            allow: vec![AuthProtocol::ChapMd5, AuthProtocol::Pap],
            ..LcpConfig::default()
        };
        let server_config = LcpConfig {
            accm: Some(0x000a_0000),
            require: vec![AuthProtocol::MsChapV2, AuthProtocol::ChapMd5],
            mtu: Some(1300),
            ..LcpConfig::default()
        };
        let mut client = Lcp::new(client_config, magics(&[0x1111_1111]));
        let mut server = Lcp::new(server_config, magics(&[0x2222_2222]));
        start(&mut client, now);
        start(&mut server, now);
        exchange(&mut client, &mut server, now);
        assert_eq!(client.state(), State::Opened);
        assert_eq!(server.state(), State::Opened);
        let client_events = events(&mut client);
        let server_events = events(&mut server);
        assert!(client_events.starts_with(&[LcpEvent::Started]));
        let c = up_event(&client_events).expect("client up").clone();
        let s = up_event(&server_events).expect("server up").clone();
        // The server asked for MS-CHAP-V2, the client Nak'd with CHAP-MD5, the server took it.
        assert_eq!(c.auth_peer_requires, Some(AuthProtocol::ChapMd5));
        assert_eq!(s.auth_we_require, Some(AuthProtocol::ChapMd5));
        assert_eq!(c.auth_we_require, None);
        assert_eq!((c.our_mru, c.peer_mru), (1400, 1500));
        assert_eq!((s.our_mru, s.peer_mru, s.mtu), (1500, 1400, 1300));
        assert_eq!((c.our_accm, c.peer_accm), (0, 0x000a_0000));
        assert_eq!((s.our_accm, s.peer_accm), (0x000a_0000, 0));
        assert_eq!(
            (c.our_magic, c.peer_magic),
            (Some(0x1111_1111), Some(0x2222_2222))
        );
        assert_eq!(
            (s.our_magic, s.peer_magic),
            (Some(0x2222_2222), Some(0x1111_1111))
        );
        assert!(c.pfc_tx && c.pfc_rx && c.acfc_tx && c.acfc_rx);
        assert_eq!(c.fcs_tx, ppp_frame::FcsKind::Fcs16);
        assert_eq!(client.negotiated(), Some(&c));
        let encoder = c.encoder_config();
        assert_eq!(
            (encoder.accm, encoder.pfc, encoder.acfc),
            (0x000a_0000, true, true)
        );
        let decoder = s.decoder_config();
        assert_eq!(decoder.accm, 0x000a_0000);
        assert_eq!(
            decoder.max_frame_len,
            ppp_frame::DecoderConfig::frame_len_for_mru(1500)
        );
    }

    #[test]
    fn peer_naks_our_mru_and_rejects_magic() {
        let now = Instant::now();
        let config = LcpConfig {
            mru: 1400,
            max_mru: 1500,
            ..LcpConfig::default()
        };
        let mut lcp = Lcp::new(config, magics(&[0xabcd_0001]));
        start(&mut lcp, now);
        let first = sent(&mut lcp).remove(0);
        let request = ControlPacket::parse(&first).unwrap();
        assert_eq!(request.data[..4], [1, 4, 0x05, 0x78]);
        // Nak: MRU 1280.
        lcp.handle_input(now, &pkt(3, request.identifier, &[1, 4, 0x05, 0x00]));
        let second = sent(&mut lcp).remove(0);
        let request = ControlPacket::parse(&second).unwrap();
        assert_eq!(request.identifier, 2);
        assert_eq!(request.data[..4], [1, 4, 0x05, 0x00]);
        // Reject: the Magic-Number, copied from the request.
        lcp.handle_input(now, &pkt(4, 2, &[5, 6, 0xab, 0xcd, 0, 1]));
        let third = sent(&mut lcp).remove(0);
        let request = ControlPacket::parse(&third).unwrap();
        assert_eq!(
            describe_lcp_options(request.data),
            "<mru 1280> <asyncmap 0x0> <pcomp> <accomp>"
        );
        lcp.handle_input(now, &pkt(2, request.identifier, request.data));
        lcp.handle_input(now, &pkt(1, 7, &[]));
        assert_eq!(lcp.state(), State::Opened);
        let n = up_event(&events(&mut lcp)).cloned().unwrap();
        assert_eq!(n.our_mru, 1280);
        assert_eq!(n.our_magic, None);
        assert_eq!(n.peer_accm, u32::MAX);
    }

    #[test]
    fn mru_nak_is_clamped_to_max_mru() {
        let now = Instant::now();
        let mut lcp = Lcp::new(
            LcpConfig {
                mru: 1400,
                max_mru: 1450,
                ..LcpConfig::default()
            },
            magics(&[7]),
        );
        start(&mut lcp, now);
        let _ = sent(&mut lcp);
        lcp.handle_input(now, &pkt(3, 1, &[1, 4, 0x20, 0x00]));
        let request = sent(&mut lcp).remove(0);
        assert_eq!(request[4..8], [1, 4, 0x05, 0xaa]);
    }

    /// A scripted peer answering each of our Configure-Requests with `answer(options)`.
    fn run_against(lcp: &mut Lcp, now: Instant, answer: impl Fn(&[u8]) -> (u8, Vec<u8>)) -> usize {
        let mut requests = 0;
        for _ in 0..100 {
            let out = sent(lcp);
            if out.is_empty() {
                break;
            }
            for p in out {
                let parsed = ControlPacket::parse(&p).unwrap();
                if parsed.code == Code::ConfigureRequest {
                    requests += 1;
                    let (code, options) = answer(parsed.data);
                    lcp.handle_input(now, &pkt(code, parsed.identifier, &options));
                }
            }
        }
        requests
    }

    fn finished_reason(events: &[LcpEvent]) -> Option<&FinishReason> {
        events.iter().find_map(|e| match e {
            LcpEvent::Finished { reason } => Some(reason),
            _ => None,
        })
    }

    #[test]
    fn peer_that_naks_forever_ends_the_negotiation() {
        let now = Instant::now();
        let mut lcp = Lcp::new(LcpConfig::default(), magics(&[]));
        start(&mut lcp, now);
        // Always Nak the ACCM, even once we no longer ask for it.
        let requests = run_against(&mut lcp, now, |_| (3, vec![2, 6, 0, 0, 0, 1]));
        // 5 Naks processed as Naks, 10 more treated as Rejects, the 16th ends it.
        assert_eq!(requests, 16);
        assert_eq!(lcp.state(), State::Closing);
        let _ = sent(&mut lcp);
        lcp.handle_input(now, &pkt(6, 17, &[]));
        assert_eq!(
            finished_reason(&events(&mut lcp)),
            Some(&FinishReason::NegotiationFailed(
                NegotiationFailure::NoConvergence { naks: 15 }
            ))
        );
    }

    #[test]
    fn naks_beyond_max_failure_are_treated_as_rejects() {
        let now = Instant::now();
        let config = LcpConfig {
            mru: 1400,
            max_mru: 1400,
            ..LcpConfig::default()
        };
        let mut lcp = Lcp::new(config, magics(&[]));
        start(&mut lcp, now);
        // Nak the MRU (with an unacceptable value) as long as we ask for it, then Ack.
        let requests = run_against(&mut lcp, now, |options| {
            if options.starts_with(&[1, 4]) {
                (3, vec![1, 4, 0xff, 0xff])
            } else {
                (2, options.to_vec())
            }
        });
        assert_eq!(requests, 7);
        lcp.handle_input(now, &pkt(1, 1, &[]));
        assert_eq!(lcp.state(), State::Opened);
        let n = up_event(&events(&mut lcp)).cloned().unwrap();
        assert_eq!(n.our_mru, DEFAULT_MRU);
    }

    #[test]
    fn peer_requests_nakd_forever_turn_into_rejects() {
        let now = Instant::now();
        let mut lcp = Lcp::new(LcpConfig::default(), magics(&[]));
        start(&mut lcp, now);
        let _ = sent(&mut lcp);
        // The peer insists on an MRU below 128.
        let mut codes = Vec::new();
        for id in 0..7 {
            lcp.handle_input(now, &pkt(1, id, &[1, 4, 0, 64]));
            codes.extend(replies(&mut lcp).iter().map(|p| p[0]));
        }
        assert_eq!(codes, [3, 3, 3, 3, 3, 4, 4]);
    }

    #[test]
    fn authentication_policy_as_the_peer() {
        let now = Instant::now();
        type Case = (Vec<AuthProtocol>, &'static [u8], u8, &'static [u8]);
        let cases: &[Case] = &[
            // (allow, requested option data, answer code, answer options)
            (
                vec![AuthProtocol::Pap],
                &[0xc0, 0x23],
                2,
                &[3, 4, 0xc0, 0x23],
            ),
            (
                vec![AuthProtocol::Pap],
                &[0xc2, 0x23, 5],
                3,
                &[3, 4, 0xc0, 0x23],
            ),
            (
                vec![AuthProtocol::ChapMd5, AuthProtocol::Pap],
                &[0xc2, 0x27],
                3,
                &[3, 5, 0xc2, 0x23, 5],
            ),
            (vec![], &[0xc0, 0x23], 4, &[3, 4, 0xc0, 0x23]),
            (vec![AuthProtocol::Pap], &[0xc0], 4, &[3, 3, 0xc0]),
        ];
        for (allow, requested, code, answer) in cases {
            let mut lcp = Lcp::new(
                LcpConfig {
                    allow: allow.clone(),
                    ..LcpConfig::default()
                },
                magics(&[]),
            );
            start(&mut lcp, now);
            let _ = sent(&mut lcp);
            let mut options = Vec::new();
            crate::push_option(&mut options, 3, requested);
            lcp.handle_input(now, &pkt(1, 1, &options));
            assert_eq!(
                replies(&mut lcp),
                vec![pkt(*code, 1, answer)],
                "{allow:?} {requested:?}"
            );
        }
    }

    #[test]
    fn authenticator_falls_back_then_gives_up() {
        let now = Instant::now();
        let mut lcp = Lcp::new(
            LcpConfig {
                require: vec![AuthProtocol::MsChapV2, AuthProtocol::Pap],
                ..LcpConfig::default()
            },
            magics(&[9]),
        );
        start(&mut lcp, now);
        let first = sent(&mut lcp).remove(0);
        assert_eq!(first[10..15], [3, 5, 0xc2, 0x23, 0x81]);
        // The peer suggests EAP, which we do not require: next method.
        lcp.handle_input(now, &pkt(3, 1, &[3, 4, 0xc2, 0x27]));
        let second = sent(&mut lcp).remove(0);
        assert_eq!(second[10..14], [3, 4, 0xc0, 0x23]);
        // Nak of PAP as well: nothing left.
        lcp.handle_input(now, &pkt(3, 2, &[3, 5, 0xc2, 0x23, 5]));
        assert_eq!(lcp.state(), State::Closing);
        assert_eq!(
            sent(&mut lcp),
            vec![pkt(5, 3, b"peer refused to authenticate")]
        );
        lcp.handle_input(now, &pkt(6, 3, &[]));
        assert!(events(&mut lcp).contains(&LcpEvent::Finished {
            reason: FinishReason::NegotiationFailed(NegotiationFailure::PeerRefusedAuthentication)
        }));
    }

    #[test]
    fn malformed_and_odd_options_never_panic_or_loop() {
        let now = Instant::now();
        type Answer = Option<(u8, &'static [u8])>;
        let cases: &[(&[u8], Answer)] = &[
            // (options, Some((answer code, answer options))) or None when dropped.
            (&[1, 0], None),
            (&[1, 1], None),
            (&[1, 9, 0, 0], None),
            (&[7, 2, 1], None),
            (&[1, 3, 5], Some((4, &[1, 3, 5]))),
            (&[5, 2], Some((4, &[5, 2]))),
            (&[7, 3, 0], Some((4, &[7, 3, 0]))),
            (&[2, 5, 0, 0, 0], Some((4, &[2, 5, 0, 0, 0]))),
            (&[13, 3, 6], Some((4, &[13, 3, 6]))),
            (&[0x42, 2], Some((4, &[0x42, 2]))),
            (
                &[5, 6, 0, 0, 0, 0],
                Some((3, &[5, 6, 0x0b, 0xad, 0xf0, 0x0e])),
            ),
            (&[9, 3, 0x04], Some((4, &[9, 3, 0x04]))),
            (&[9, 3, 0x06], Some((3, &[9, 3, 0x02]))),
            (&[19, 4, 2, 1], Some((4, &[19, 4, 2, 1]))),
            (&[19, 3, 2, 1], None),
            (&[17, 4, 5, 0xdc], Some((4, &[17, 4, 5, 0xdc]))),
        ];
        for &(options, expected) in cases {
            let mut lcp = Lcp::new(LcpConfig::default(), magics(&[0x0bad_f00d]));
            start(&mut lcp, now);
            let _ = sent(&mut lcp);
            lcp.handle_input(now, &pkt(1, 1, options));
            let out = replies(&mut lcp);
            match expected {
                None => assert!(out.is_empty(), "{options:?}: {out:?}"),
                Some((code, answer)) => assert_eq!(out, vec![pkt(code, 1, answer)], "{options:?}"),
            }
        }
    }

    #[test]
    fn lcp_talking_to_itself_detects_loopback() {
        let now = Instant::now();
        let mut lcp = Lcp::new(LcpConfig::default(), magics(&[]));
        start(&mut lcp, now);
        let mut detected = false;
        for _ in 0..40 {
            for p in sent(&mut lcp) {
                lcp.handle_input(now, &p);
            }
            let evs = events(&mut lcp);
            if evs.contains(&LcpEvent::LoopbackDetected) {
                detected = true;
                break;
            }
        }
        assert!(detected);
        assert_eq!(lcp.state(), State::Closing);
    }

    fn opened_pair(config: LcpConfig) -> (Lcp, Lcp, Instant) {
        let now = Instant::now();
        let mut a = Lcp::new(config, magics(&[0xaaaa_0001]));
        let mut b = Lcp::new(LcpConfig::default(), magics(&[0xbbbb_0002]));
        start(&mut a, now);
        start(&mut b, now);
        exchange(&mut a, &mut b, now);
        assert_eq!(a.state(), State::Opened);
        assert_eq!(b.state(), State::Opened);
        let _ = events(&mut a);
        let _ = events(&mut b);
        (a, b, now)
    }

    #[test]
    fn echo_detects_a_dead_peer_after_interval_times_failure() {
        let config = LcpConfig {
            echo_interval: Some(Duration::from_secs(10)),
            echo_failure: 3,
            ..LcpConfig::default()
        };
        let (mut a, _b, t0) = opened_pair(config);
        // The first Echo-Request went out when LCP opened and was answered during the exchange;
        // from now on the peer never answers.
        let mut now = t0;
        let mut echo_requests = 0;
        loop {
            for p in sent(&mut a) {
                if p[0] == 9 {
                    echo_requests += 1;
                    assert_eq!(p[4..8], 0xaaaa_0001u32.to_be_bytes());
                }
            }
            let evs = events(&mut a);
            if evs.contains(&LcpEvent::EchoTimeout) {
                break;
            }
            now = a.poll_timeout().expect("echo timer");
            assert!(now - t0 <= Duration::from_secs(40));
            a.handle_timeout(now);
        }
        // Unanswered requests at 10, 20 and 30 s; at 40 s the peer is declared dead.
        assert_eq!(now - t0, Duration::from_secs(40));
        assert_eq!(echo_requests, 3);
        assert_eq!(a.state(), State::Closing);
    }

    #[test]
    fn echo_replies_reset_the_failure_count() {
        let config = LcpConfig {
            echo_interval: Some(Duration::from_secs(10)),
            echo_failure: 2,
            ..LcpConfig::default()
        };
        let (mut a, mut b, t0) = opened_pair(config);
        let mut now = t0;
        for _ in 0..10 {
            // b answers every Echo-Request.
            exchange(&mut a, &mut b, now);
            assert_eq!(a.echoes_pending(), 0);
            now = a.poll_timeout().unwrap();
            a.handle_timeout(now);
        }
        assert_eq!(a.state(), State::Opened);
        assert!(!events(&mut a).contains(&LcpEvent::EchoTimeout));
        assert_eq!(now - t0, Duration::from_secs(100));
    }

    #[test]
    fn adaptive_echo_stays_quiet_while_traffic_flows_and_counts_only_silence() {
        let config = LcpConfig {
            echo_interval: Some(Duration::from_secs(10)),
            echo_failure: 3,
            echo_adaptive: true,
            ..LcpConfig::default()
        };
        let (mut a, mut b, t0) = opened_pair(config);
        // The Echo-Request at opening is answered.
        exchange(&mut a, &mut b, t0);
        let _ = events(&mut a);
        let mut now = t0;
        // Traffic in every interval: no Echo-Request for a minute.
        for _ in 0..6 {
            now = a.poll_timeout().unwrap();
            a.note_traffic(now - Duration::from_secs(1));
            a.handle_timeout(now);
            assert!(a.poll_transmit().is_none(), "no echo while traffic flows");
        }
        let last_heard = now - Duration::from_secs(1);
        // The peer goes silent: an Echo-Request in each silent interval, and the link closes
        // exactly 3 × 10 s after the peer was last heard.
        let mut sent = 0;
        while a.state() == State::Opened {
            now = a.poll_timeout().unwrap();
            a.handle_timeout(now);
            while let Some(packet) = a.poll_transmit() {
                if packet[0] == 9 {
                    sent += 1;
                }
            }
        }
        assert_eq!(sent, 2);
        assert!(events(&mut a).contains(&LcpEvent::EchoTimeout));
        assert_eq!(now - last_heard, Duration::from_secs(30));
    }

    /// A tick just short of an interval of silence does not put the Echo-Request off by a
    /// whole interval (with `failure` 2 that left no time for the reply before the timeout).
    #[test]
    fn adaptive_echo_goes_out_once_the_silence_lasts_an_interval() {
        let config = LcpConfig {
            echo_interval: Some(Duration::from_secs(1)),
            echo_failure: 2,
            echo_adaptive: true,
            ..LcpConfig::default()
        };
        let (mut a, mut b, t0) = opened_pair(config);
        exchange(&mut a, &mut b, t0);
        let _ = events(&mut a);
        let tick = a.poll_timeout().unwrap();
        let heard = tick - Duration::from_millis(999);
        a.note_traffic(heard);
        a.handle_timeout(tick);
        assert!(
            a.poll_transmit().is_none(),
            "not silent for an interval yet"
        );
        let next = a.poll_timeout().unwrap();
        assert_eq!(next, heard + Duration::from_secs(1));
        a.handle_timeout(next);
        assert!(
            a.poll_transmit().is_some_and(|p| p[0] == 9),
            "an Echo-Request once the silence lasts an interval"
        );
        assert_eq!(a.state(), State::Opened);
    }

    #[test]
    fn echo_reply_with_our_magic_is_loopback() {
        let (mut a, _b, now) = opened_pair(LcpConfig::default());
        a.handle_input(now, &pkt(10, 1, &0xaaaa_0001u32.to_be_bytes()));
        assert_eq!(events(&mut a), vec![LcpEvent::LoopbackDetected]);
        // An Echo-Request from the peer is answered with our magic.
        a.handle_input(now, &pkt(9, 7, &[0xbb, 0xbb, 0, 2, b'x']));
        assert_eq!(sent(&mut a), vec![pkt(10, 7, &[0xaa, 0xaa, 0, 1, b'x'])]);
    }

    #[test]
    fn protocol_reject_handling() {
        let (mut a, mut b, now) = opened_pair(LcpConfig::default());
        assert!(b.send_protocol_reject(Protocol::Ipv6cp, &[1, 1, 0, 4]));
        exchange(&mut a, &mut b, now);
        assert_eq!(
            events(&mut a),
            vec![LcpEvent::ProtocolRejected(Protocol::Ipv6cp)]
        );
        assert_eq!(a.state(), State::Opened);
        // A Protocol-Reject of LCP itself is catastrophic.
        a.handle_input(now, &pkt(8, 9, &[0xc0, 0x21, 1, 1, 0, 4]));
        assert_eq!(a.state(), State::Stopping);
        // Not sent outside Opened.
        assert!(!a.send_protocol_reject(Protocol::Ipcp, &[]));
    }

    #[test]
    fn protocol_reject_is_truncated_to_the_peer_mru() {
        let config = LcpConfig {
            mru: 300,
            ..LcpConfig::default()
        };
        let (_a, mut b, _now) = opened_pair(config);
        let _ = sent(&mut b);
        assert!(b.send_protocol_reject(Protocol::Unknown(0x4021), &[0u8; 1000]));
        let out = sent(&mut b);
        assert_eq!(out[0].len(), 300);
        assert_eq!(out[0][4..6], [0x40, 0x21]);
    }

    #[test]
    fn echo_request_code_rejected_disables_keepalive() {
        let config = LcpConfig {
            echo_interval: Some(Duration::from_secs(5)),
            echo_failure: 1,
            ..LcpConfig::default()
        };
        let (mut a, _b, now) = opened_pair(config);
        assert!(a.poll_timeout().is_some());
        a.handle_input(now, &pkt(7, 1, &pkt(9, 3, &0xaaaa_0001u32.to_be_bytes())));
        assert_eq!(a.state(), State::Opened);
        assert_eq!(a.poll_timeout(), None);
    }

    #[test]
    fn identification_and_time_remaining_are_reported() {
        let (mut a, mut b, now) = opened_pair(LcpConfig::default());
        assert!(b.send_identification("hello"));
        assert!(b.send_time_remaining(60, "bye"));
        exchange(&mut a, &mut b, now);
        assert_eq!(
            events(&mut a),
            vec![
                LcpEvent::Identification {
                    message: "hello".into()
                },
                LcpEvent::TimeRemaining { seconds: 60 }
            ]
        );
        a.handle_input(now, &pkt(12, 1, &[0, 0, 0, 0, b'h', b'i']));
        a.handle_input(now, &pkt(13, 2, &[0, 0, 0, 0, 0, 0, 0x0e, 0x10]));
        assert_eq!(
            events(&mut a),
            vec![
                LcpEvent::Identification {
                    message: "hi".into()
                },
                LcpEvent::TimeRemaining { seconds: 3600 }
            ]
        );
    }

    #[test]
    fn close_and_finish_between_instances() {
        let (mut a, mut b, now) = opened_pair(LcpConfig::default());
        a.close(now, CloseReason::UserRequest);
        exchange(&mut a, &mut b, now);
        assert_eq!(a.state(), State::Closed);
        assert_eq!(b.state(), State::Stopping);
        assert_eq!(
            events(&mut a),
            vec![
                LcpEvent::Down,
                LcpEvent::Finished {
                    reason: FinishReason::Closed(CloseReason::UserRequest)
                }
            ]
        );
        assert_eq!(events(&mut b), vec![LcpEvent::Down]);
        let later = now + Duration::from_secs(3);
        assert_eq!(b.poll_timeout(), Some(later));
        b.handle_timeout(later);
        assert_eq!(
            events(&mut b),
            vec![LcpEvent::Finished {
                reason: FinishReason::PeerTerminated {
                    message: "User request".into()
                }
            }]
        );
    }

    /// Two instances over a link that loses a seeded share of packets, on virtual time: when
    /// both end up Opened they agree on every value, and the whole run is quiet in the end.
    fn lossy_run(seed: u64, loss_percent: u64) -> (Lcp, Lcp) {
        let loss = Random::seeded(seed ^ 0x1055);
        let mut a = Lcp::new(
            LcpConfig {
                mru: 1400,
                require: vec![AuthProtocol::Pap],
                ..LcpConfig::default()
            },
            Random::seeded(seed ^ 1),
        );
        let mut b = Lcp::new(LcpConfig::pppoe(), Random::seeded(seed ^ 2));
        let t0 = Instant::now();
        let mut now = t0;
        start(&mut a, now);
        start(&mut b, now);
        for _ in 0..2000 {
            let mut moved = false;
            for from_a in [true, false] {
                let (from, to) = if from_a {
                    (&mut a, &mut b)
                } else {
                    (&mut b, &mut a)
                };
                while let Some(p) = from.poll_transmit() {
                    moved = true;
                    if loss.u64() % 100 >= loss_percent {
                        to.handle_input(now, &p);
                    }
                }
            }
            let _ = events(&mut a);
            let _ = events(&mut b);
            if moved {
                continue;
            }
            let next = [a.poll_timeout(), b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next else { break };
            now = next.max(now);
            a.handle_timeout(now);
            b.handle_timeout(now);
        }
        assert!(now - t0 < Duration::from_secs(600));
        (a, b)
    }

    #[test]
    fn lossy_link_negotiations_agree() {
        let mut opened = 0;
        for seed in 0..200 {
            let (a, b) = lossy_run(seed, 30);
            if a.state() == State::Opened && b.state() == State::Opened {
                opened += 1;
                let (na, nb) = (a.negotiated().unwrap(), b.negotiated().unwrap());
                assert_eq!(na.our_mru, nb.peer_mru);
                assert_eq!(na.peer_mru, nb.our_mru);
                assert_eq!(na.our_magic, nb.peer_magic);
                assert_eq!(na.peer_magic, nb.our_magic);
                assert_eq!(na.auth_we_require, nb.auth_peer_requires);
                assert_eq!((na.pfc_rx, na.acfc_rx), (nb.pfc_tx, nb.acfc_tx));
                assert_eq!((na.pfc_tx, na.acfc_tx), (false, false));
                assert_eq!(na.our_accm, nb.peer_accm);
            }
        }
        // With 30% loss and 10 tries nearly every run opens.
        assert!(opened >= 190, "only {opened} of 200 runs opened");
        let (a, b) = lossy_run(7, 0);
        assert_eq!((a.state(), b.state()), (State::Opened, State::Opened));
    }

    /// Not a correctness test: `cargo test --release -p ppp-lcp -- --ignored --nocapture
    /// negotiation_throughput` prints how long a full in-process negotiation takes.
    #[test]
    #[ignore]
    fn negotiation_throughput() {
        let rounds = 20_000;
        let started = std::time::Instant::now();
        let now = Instant::now();
        let mut packets = 0;
        for seed in 0..rounds {
            let mut a = Lcp::new(LcpConfig::default(), Random::seeded(seed));
            let mut b = Lcp::new(LcpConfig::default(), Random::seeded(seed + 1_000_000));
            start(&mut a, now);
            start(&mut b, now);
            packets += exchange(&mut a, &mut b, now);
            assert_eq!(a.state(), State::Opened);
        }
        let elapsed = started.elapsed();
        println!(
            "{rounds} negotiations ({packets} packets) in {elapsed:?}: {:.2} us per negotiation",
            elapsed.as_secs_f64() * 1e6 / rounds as f64
        );
    }

    fn arbitrary_config() -> impl proptest::strategy::Strategy<Value = LcpConfig> {
        use proptest::prelude::*;
        let auth = proptest::sample::subsequence(
            vec![
                AuthProtocol::Pap,
                AuthProtocol::ChapMd5,
                AuthProtocol::MsChapV1,
                AuthProtocol::MsChapV2,
            ],
            0..=4,
        );
        (
            (
                600u16..2000,
                proptest::option::of(any::<u32>()),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
            ),
            (
                auth.clone(),
                auth,
                proptest::option::of(1000u16..1600),
                any::<bool>(),
            ),
        )
            .prop_map(
                |((mru, accm, magic, pfc, acfc), (allow, require, mrru, ssnhf))| LcpConfig {
                    mru,
                    max_mru: mru.max(1500),
                    accm,
                    magic,
                    pfc,
                    acfc,
                    allow,
                    require,
                    mrru,
                    ssnhf,
                    ..LcpConfig::default()
                },
            )
    }

    proptest::proptest! {
        #[test]
        fn random_configurations_open_consistently_or_finish(
            config_a in arbitrary_config(),
            config_b in arbitrary_config(),
            seed in proptest::num::u64::ANY,
        ) {
            let now = Instant::now();
            let mut a = Lcp::new(config_a.clone(), Random::seeded(seed));
            let mut b = Lcp::new(config_b.clone(), Random::seeded(seed.wrapping_add(1)));
            start(&mut a, now);
            start(&mut b, now);
            exchange(&mut a, &mut b, now);
            if let (Some(na), Some(nb)) = (a.negotiated(), b.negotiated()) {
                proptest::prop_assert_eq!(na.our_mru, nb.peer_mru);
                proptest::prop_assert_eq!(na.our_accm, nb.peer_accm);
                proptest::prop_assert_eq!(na.our_magic, nb.peer_magic);
                proptest::prop_assert_eq!(na.pfc_rx, nb.pfc_tx);
                proptest::prop_assert_eq!(na.acfc_rx, nb.acfc_tx);
                proptest::prop_assert_eq!(na.auth_we_require, nb.auth_peer_requires);
                proptest::prop_assert_eq!(na.our_mrru, nb.peer_mrru);
                if let Some(auth) = na.auth_we_require {
                    proptest::prop_assert!(config_a.require.contains(&auth));
                    proptest::prop_assert!(config_b.allow.contains(&auth));
                }
                proptest::prop_assert_eq!(
                    na.auth_we_require.is_some(),
                    !config_a.require.is_empty()
                );
            } else {
                // The only way not to open here: authentication cannot be agreed.
                let a_needs = !config_a.require.iter().any(|m| config_b.allow.contains(m));
                let b_needs = !config_b.require.iter().any(|m| config_a.allow.contains(m));
                proptest::prop_assert!(
                    (a_needs && !config_a.require.is_empty())
                        || (b_needs && !config_b.require.is_empty()),
                    "{:?} / {:?}", a.state(), b.state()
                );
            }
        }

        #[test]
        fn arbitrary_packets_never_panic_in_any_state(
            steps in proptest::collection::vec(
                (0u8..6, proptest::collection::vec(proptest::num::u8::ANY, 0..40)),
                0..40,
            ),
            seed in proptest::num::u64::ANY,
        ) {
            let config = LcpConfig {
                echo_interval: Some(Duration::from_secs(1)),
                echo_failure: 2,
                require: vec![AuthProtocol::ChapMd5],
                ..LcpConfig::default()
            };
            let mut lcp = Lcp::new(config, Random::seeded(seed));
            let mut now = Instant::now();
            for (action, bytes) in steps {
                match action {
                    0 => lcp.open(now),
                    1 => lcp.up(now),
                    2 => {
                        now += Duration::from_millis(700);
                        lcp.handle_timeout(now);
                    }
                    3 => {
                        // A structurally valid packet with arbitrary code, id and data.
                        let code = bytes.first().copied().unwrap_or(1) % 16;
                        let id = bytes.get(1).copied().unwrap_or(1);
                        lcp.handle_input(now, &pkt(code, id, bytes.get(2..).unwrap_or_default()));
                    }
                    4 => lcp.handle_input(now, &bytes),
                    _ => if bytes.first().is_some_and(|b| b % 4 == 0) {
                        lcp.close(now, CloseReason::from("x"));
                    } else if bytes.first().is_some_and(|b| b % 4 == 1) {
                        lcp.down(now);
                    },
                }
                let out = sent(&mut lcp);
                proptest::prop_assert!(out.len() <= 64);
                for p in out {
                    proptest::prop_assert!(ControlPacket::parse(&p).is_ok());
                }
                let _ = events(&mut lcp);
            }
        }
    }
}
