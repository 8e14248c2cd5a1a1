//! The option-negotiation automaton of RFC 1661 §4, generic over the control protocol running on
//! it (LCP, IPCP, IPv6CP, CCP).
//!
//! The state table is the pure function [`transition`]; [`Fsm`] feeds it events derived from
//! packets, timeouts and administrative commands and executes the actions it returns.
//!
//! Notes from the RFC that shape the implementation:
//! - Receiving a Configure-Request in Opened renegotiates: This-Layer-Down first, then our own
//!   Configure-Request, then the answer to the peer's (`tld,scr,sca/8` or `tld,scr,scn/6`). The
//!   peer's options are checked only after our own request has been reset and sent, so what the
//!   check records survives.
//! - Acks, Naks and Rejects must carry the identifier of our outstanding Configure-Request and are
//!   accepted once per request; a Configure-Ack must echo our options byte for byte and a
//!   Configure-Reject may only list options we sent, unmodified and in order. Anything else is
//!   counted and discarded.
//! - The identifier changes whenever the request's options change or a valid reply was received;
//!   a plain retransmission keeps it.
//! - When the peer's first Configure-Request arrives while ours is unanswered (Req-Sent) and
//!   nothing else came from the peer since we sent it, our request may have been sent before the
//!   peer listened (PPPoE: the AC's request reaches a client whose session socket is not
//!   connected yet; a peer whose pppd is still starting) -- or the two requests simply crossed,
//!   and the peer's answer to ours is on its way. The restart timer is shortened to
//!   [`FsmConfig::early_retransmit`]: an answer within that time means nothing was lost and no
//!   copy is sent (every exchange with pppd happens once); without one, ours goes out again then
//!   instead of one restart interval (3 s) later. A copy is harmless if the first one did arrive:
//!   the peer, in Ack-Sent, answers it again and stays there (RCR+ in Ack-Sent), and the second
//!   answer to our request is discarded as a duplicate.
//! - Footnotes of the table: `r` (restart option, [`Fsm::set_restart_option`]), `p` (passive
//!   option, [`Fsm::set_passive`]), `x` (crossed connection, nothing special to do).

use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ppp_core::{CloseReason, LazyQueue, Machine};

use ppp_frame::Protocol;
use tracing::debug;

use crate::describe::describe_packet;
use crate::options::{is_subsequence, validate_options};
use crate::packet::{self, Code, ControlPacket, HEADER_LEN};

mod table;

pub use table::{Action, RfcEvent, State, transition};

/// Restart timer and counters (RFC 1661 §4.6). Default: 3 s, 2, 10, 5.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsmConfig {
    /// Restart timer period.
    pub restart_interval: Duration,
    /// Terminate-Requests sent without a Terminate-Ack before giving up.
    pub max_terminate: u32,
    /// Configure-Requests sent without an answer before giving up.
    pub max_configure: u32,
    /// Configure-Naks sent without sending a Configure-Ack before Naks turn into Rejects
    /// (`allow_nak` false). Also, as pppd does, Configure-Naks received beyond this many without
    /// an Ack are handled as Rejects of the options we asked for, and beyond `max_failure +
    /// max_configure` the negotiation fails, so a peer that Naks forever cannot loop us.
    pub max_failure: u32,
    /// How long our first Configure-Request may stay unanswered after the peer's first one
    /// arrived before it is sent again (see the module docs); `None`: wait the whole restart
    /// interval, as RFC 1661 alone would.
    pub early_retransmit: Option<Duration>,
}

impl Default for FsmConfig {
    fn default() -> Self {
        FsmConfig {
            restart_interval: Duration::from_secs(3),
            max_terminate: 2,
            max_configure: 10,
            max_failure: 5,
            early_retransmit: Some(Duration::from_millis(300)),
        }
    }
}

/// What we answer to a peer's Configure-Request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestVerdict {
    /// Every option is acceptable: Configure-Ack.
    Ack,
    /// Some values are unacceptable: Configure-Nak with our suggestions.
    Nak,
    /// Some options are not negotiable: Configure-Reject.
    Reject,
}

/// Why a control protocol gives up on negotiation: what it could not agree on.
///
/// [`Display`](fmt::Display) gives the words for logs and for our Terminate-Request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NegotiationFailure {
    /// The peer kept Nak'ing past Max-Failure + Max-Configure Configure-Naks.
    NoConvergence {
        /// Configure-Naks received without an Ack.
        naks: u32,
    },
    /// LCP: the peer refused every authentication protocol we require.
    PeerRefusedAuthentication,
    /// The peer rejected an option we cannot do without (named as in the RFC).
    RequiredOptionRejected {
        /// The option's name.
        option: &'static str,
    },
    /// IPCP: the address pool had no address for the peer.
    AddressPoolExhausted,
    /// IPCP: the peer wants us to use another address than the configured one and
    /// `accept-local` is off.
    LocalAddressRefused {
        /// Our configured address.
        configured: Ipv4Addr,
        /// The address the peer suggested.
        suggested: Ipv4Addr,
    },
    /// IPCP: no local address could be agreed (none configured and the peer gave none).
    NoLocalAddress,
    /// IPCP: the peer did not agree to an address of its own.
    NoPeerAddress,
    /// IPv6CP: the peer wants us to use another interface identifier than the configured one
    /// and `accept-local` is off.
    InterfaceIdRefused {
        /// Our configured identifier.
        configured: u64,
        /// The identifier the peer suggested.
        suggested: u64,
    },
    /// IPv6CP: no pair of distinct, non-zero interface identifiers could be agreed.
    NoInterfaceIds,
    /// CCP: encryption is required and the peer refused MPPE.
    EncryptionRefused,
    /// CCP: encryption is required and no MPPE keys exist (no MS-CHAP authentication ran).
    EncryptionUnavailable,
    /// CCP: encryption is required and the peer's MPPE options could not be agreed.
    EncryptionNotAgreed,
}

impl fmt::Display for NegotiationFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NegotiationFailure::NoConvergence { naks } => {
                write!(
                    f,
                    "negotiation does not converge ({naks} Configure-Naks received)"
                )
            }
            NegotiationFailure::PeerRefusedAuthentication => {
                f.write_str("peer refused to authenticate")
            }
            NegotiationFailure::RequiredOptionRejected { option } => {
                write!(f, "peer rejected the {option} option, which is required")
            }
            NegotiationFailure::AddressPoolExhausted => {
                f.write_str("address pool exhausted: no address for the peer")
            }
            NegotiationFailure::LocalAddressRefused {
                configured,
                suggested,
            } => write!(
                f,
                "peer wants us to use {suggested} instead of our configured address {configured} (accept-local is off)"
            ),
            NegotiationFailure::NoLocalAddress => {
                f.write_str("could not determine local IP address")
            }
            NegotiationFailure::NoPeerAddress => {
                f.write_str("peer refused to agree to an IP address")
            }
            NegotiationFailure::InterfaceIdRefused {
                configured,
                suggested,
            } => write!(
                f,
                "peer wants us to use interface identifier {suggested:#018x} instead of our configured {configured:#018x} (accept-local is off)"
            ),
            NegotiationFailure::NoInterfaceIds => {
                f.write_str("no interface identifiers could be agreed")
            }
            NegotiationFailure::EncryptionRefused => {
                f.write_str("MPPE required but refused by the peer")
            }
            NegotiationFailure::EncryptionUnavailable => {
                f.write_str("MPPE required, but keys are not available")
            }
            NegotiationFailure::EncryptionNotAgreed => {
                f.write_str("MPPE required but peer negotiation failed")
            }
        }
    }
}

/// Why an automaton finished (This-Layer-Finished): what its owner reports.
///
/// [`Display`](fmt::Display) gives plain words (no protocol name: the owner knows which
/// protocol finished).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FinishReason {
    /// Our owner closed it ([`Fsm::close`]).
    Closed(CloseReason),
    /// The peer sent a Terminate-Request; its data, if any, as text.
    PeerTerminated {
        /// The peer's words (lossy UTF-8, at most 128 bytes), empty if it sent none.
        message: String,
    },
    /// Max-Configure Configure-Requests went unanswered.
    ConfigureTimeout,
    /// Negotiation failed.
    NegotiationFailed(NegotiationFailure),
    /// The peer Code-Rejected a code we cannot do without.
    CodeRejected {
        /// The rejected code.
        code: Code,
    },
    /// The peer Protocol-Rejected this protocol.
    ProtocolRejected,
    /// The peer stopped answering LCP Echo-Requests (keepalive).
    PeerNotResponding,
    /// Our own Magic-Number came back: the line is looped back.
    LoopbackDetected,
    /// Terminate-Requests went unanswered after the peer finished without a reason we know
    /// (for example a Terminate-Ack that answered nothing we sent).
    Terminated,
}

impl fmt::Display for FinishReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FinishReason::Closed(reason) => write!(f, "closed: {reason}"),
            FinishReason::PeerTerminated { message } if message.is_empty() => {
                f.write_str("peer requested termination")
            }
            FinishReason::PeerTerminated { message } => {
                write!(f, "peer requested termination: {message}")
            }
            FinishReason::ConfigureTimeout => f.write_str("timeout sending Configure-Requests"),
            FinishReason::NegotiationFailed(failure) => write!(f, "{failure}"),
            FinishReason::CodeRejected { code } => write!(f, "peer Code-Rejected {code}"),
            FinishReason::ProtocolRejected => f.write_str("peer Protocol-Rejected it"),
            FinishReason::PeerNotResponding => f.write_str("peer not responding"),
            FinishReason::LoopbackDetected => f.write_str("loopback detected"),
            FinishReason::Terminated => f.write_str("terminated"),
        }
    }
}

/// What `handle_other_code` did with a packet whose code is not 1–7.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OtherCode {
    /// Understood and consumed, nothing to send.
    Handled,
    /// Understood; send this packet back (same protocol): code, identifier, data.
    Reply {
        /// Code of the reply.
        code: u8,
        /// Identifier of the reply.
        identifier: u8,
        /// Data of the reply.
        data: Vec<u8>,
    },
    /// Not a code of this protocol: the automaton sends Code-Reject (RUC).
    Unknown,
}

/// A control protocol that runs on the automaton: LCP, IPCP, IPv6CP, CCP.
pub trait ControlProtocol {
    /// The PPP protocol number carrying this protocol's packets.
    fn protocol(&self) -> Protocol;
    /// Short name for logs: "LCP", "IPCP", "IPV6CP", "CCP".
    fn name(&self) -> &'static str;
    /// Append the options (encoded type-length-value list) of our next Configure-Request to `out`.
    /// Called for every new request and retransmissions are built anew too (RFC allows either).
    fn build_request(&mut self, out: &mut Vec<u8>);
    /// Decide on the peer's Configure-Request whose option list is `options` (already checked to be
    /// a well-formed TLV list by the automaton; a malformed list is discarded by the automaton).
    /// For Nak append our suggested values of the unacceptable options to `reply`; for Reject append
    /// the rejected options verbatim; for Ack leave `reply` empty (the automaton echoes `options`).
    /// When `allow_nak` is false (Max-Failure Naks already sent), answer Reject instead of Nak.
    /// Record what the peer will use only when returning Ack.
    fn check_request(
        &mut self,
        options: &[u8],
        allow_nak: bool,
        reply: &mut Vec<u8>,
    ) -> RequestVerdict;
    /// The peer Acked our last Configure-Request (identifier and options already matched).
    fn on_ack(&mut self, options: &[u8]) {
        let _ = options;
    }
    /// The peer Nak'd: adjust what we request next. Err closes the automaton with the reason.
    fn on_nak(&mut self, options: &[u8]) -> Result<(), NegotiationFailure>;
    /// The peer Rejected: stop requesting these options. Err closes the automaton with the reason.
    fn on_reject(&mut self, options: &[u8]) -> Result<(), NegotiationFailure>;
    /// Codes other than 1–7 (LCP 8–13, CCP 14–15). Default: Unknown.
    ///
    /// A `Reply` is sent only in the Opened state (RXR → ser); in other states it is dropped.
    fn handle_other_code(
        &mut self,
        state: State,
        code: u8,
        identifier: u8,
        data: &[u8],
    ) -> OtherCode {
        let _ = (state, code, identifier, data);
        OtherCode::Unknown
    }
    /// The peer Code-Rejected one of our packets with code `rejected_code`: whether we can do
    /// without it (RXJ+) rather than having to stop (RXJ-). Default: codes 1–7 are essential.
    fn code_reject_permitted(&mut self, rejected_code: u8) -> bool {
        !(1..=7).contains(&rejected_code)
    }
    /// This-Layer-Up (tlu): negotiation finished in both directions. An error (no usable
    /// result: IPCP without an address, say) keeps the automaton from announcing Up: it closes
    /// at once with [`FinishReason::NegotiationFailed`], so it never sits in Opened unusable.
    fn this_layer_up(&mut self) -> Result<(), NegotiationFailure> {
        Ok(())
    }
    /// This-Layer-Down (tld): leaving Opened; forget negotiated values.
    fn this_layer_down(&mut self) {}
    /// Reset the per-negotiation state (called at `irc` when a fresh negotiation starts).
    ///
    /// Precisely: before the first Configure-Request of a negotiation, i.e. when a request is
    /// sent from a state other than Req-Sent, Ack-Rcvd and Ack-Sent (also on renegotiation from
    /// Opened), and always before `check_request` of that negotiation's first peer request.
    fn reset(&mut self) {}
    /// Short rendering of an option list for pppd-style logs: "<mru 1492> <magic 0x5d3c1a2b>".
    fn describe_options(&self, options: &[u8]) -> String;
}

/// Things the owner of an automaton must react to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FsmEvent {
    /// tlu: the protocol is Opened.
    Up,
    /// tld: the protocol left Opened.
    Down,
    /// tls: the lower layer is needed (for LCP: the link should be brought up).
    Started,
    /// tlf: the lower layer is no longer needed; carries why (timeout, terminate, negotiation failure).
    Finished {
        /// Why.
        reason: FinishReason,
    },
}

/// Packets the automaton counted and dropped, and illegal events it ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FsmCounters {
    /// Packets that did not parse (bad length, malformed option list, empty Code-Reject).
    pub malformed: u64,
    /// Acks, Naks and Rejects whose identifier is not that of our outstanding request (or that
    /// answer a request already answered).
    pub unexpected_identifier: u64,
    /// Configure-Acks that do not echo our options, Configure-Rejects listing options we did not
    /// send.
    pub mismatched_reply: u64,
    /// Packets received in Initial or Starting (the lower layer is not up).
    pub discarded: u64,
    /// Events the state table marks illegal (`-`).
    pub illegal_events: u64,
    /// Packets dropped because the transmit queue was full (nobody polled).
    pub transmit_overflow: u64,
    /// Times the restart timer was shortened because the peer's first Configure-Request arrived
    /// while ours was unanswered (see the module docs).
    pub early_retransmissions: u64,
}

/// Packets kept waiting for `poll_transmit` at most; beyond this new packets are dropped.
const MAX_QUEUED_PACKETS: usize = 64;
/// Events kept waiting for `poll_event` at most; beyond this the oldest are dropped.
const MAX_QUEUED_EVENTS: usize = 64;
/// Our MRU assumption for the peer until told otherwise.
const DEFAULT_PEER_MRU: usize = 1500;

/// What a received packet contributes to the actions it triggers.
#[derive(Default)]
struct Context<'a> {
    /// The whole received packet (for Code-Reject).
    raw: &'a [u8],
    /// Identifier of the received packet (for sca, scn, sta).
    identifier: u8,
    /// Options of a received Configure-Request (echoed by sca).
    options: &'a [u8],
    /// Code of our answer for scn (Nak or Reject) and its options.
    nak_code: Option<Code>,
    nak_options: Vec<u8>,
    /// The reply for ser.
    reply: Option<(u8, u8, Vec<u8>)>,
    /// The protocol was already reset for this event (no second reset at scr).
    reset_done: bool,
}

/// The RFC 1661 automaton running protocol `P`.
///
/// Inputs: [`up`](Self::up)/[`down`](Self::down) (lower layer), [`open`](Self::open)/
/// [`close`](Self::close) (administrative), [`handle_input`](Self::handle_input) (packets of the
/// protocol), [`handle_timeout`](Self::handle_timeout). After each, drain
/// [`poll_transmit`](Self::poll_transmit) and [`poll_event`](Self::poll_event), then wake up at
/// [`poll_timeout`](Self::poll_timeout). Two automata running a protocol with no options:
///
/// ```
/// use std::time::Instant;
/// use ppp_lcp::fsm::{ControlProtocol, Fsm, FsmConfig, FsmEvent, NegotiationFailure, RequestVerdict, State};
/// use ppp_lcp::{Machine, Protocol};
///
/// /// A control protocol without options: every request is acceptable.
/// struct Plain;
/// impl ControlProtocol for Plain {
///     fn protocol(&self) -> Protocol { Protocol::Unknown(0x80fd) }
///     fn name(&self) -> &'static str { "PLAIN" }
///     fn build_request(&mut self, _out: &mut Vec<u8>) {}
///     fn check_request(&mut self, _: &[u8], _: bool, _: &mut Vec<u8>) -> RequestVerdict {
///         RequestVerdict::Ack
///     }
///     fn on_nak(&mut self, _: &[u8]) -> Result<(), NegotiationFailure> { Ok(()) }
///     fn on_reject(&mut self, _: &[u8]) -> Result<(), NegotiationFailure> { Ok(()) }
///     fn describe_options(&self, _: &[u8]) -> String { String::new() }
/// }
///
/// let now = Instant::now();
/// let mut a = Fsm::new(Plain, FsmConfig::default());
/// let mut b = Fsm::new(Plain, FsmConfig::default());
/// for fsm in [&mut a, &mut b] {
///     fsm.open(now);
///     fsm.up(now);
/// }
/// // Shuttle packets until both are quiet (the `Machine` verbs work on any core).
/// fn shuttle(from: &mut impl Machine, to: &mut impl Machine, now: Instant) -> bool {
///     let mut moved = false;
///     while let Some(packet) = from.poll_transmit() {
///         to.handle_input(now, &packet);
///         moved = true;
///     }
///     moved
/// }
/// while shuttle(&mut a, &mut b, now) | shuttle(&mut b, &mut a, now) {}
/// assert_eq!((a.state(), b.state()), (State::Opened, State::Opened));
/// assert!(std::iter::from_fn(|| a.poll_event()).any(|e| e == FsmEvent::Up));
/// ```
pub struct Fsm<P: ControlProtocol> {
    protocol: P,
    config: FsmConfig,
    state: State,
    restart_count: u32,
    restart_deadline: Option<Instant>,
    /// Configure-Naks sent since the last Configure-Ack we sent.
    naks_sent: u32,
    /// Configure-Naks received since the last Configure-Ack received (or fresh negotiation).
    naks_received: u32,
    next_identifier: u8,
    /// Identifier and options of our last Configure-Request.
    request_identifier: u8,
    request_options: Vec<u8>,
    /// Whether the last request still awaits its (single) answer.
    request_unanswered: bool,
    /// Whether any packet came from the peer since this negotiation's first request.
    heard_from_peer: bool,
    /// Data of our Terminate-Requests (the close reason).
    terminate_data: Vec<u8>,
    finish_reason: Option<Box<FinishReason>>,
    /// This-Layer-Up failed in the transition now running: the automaton closes once it ends.
    failed_at_up: Option<Box<NegotiationFailure>>,
    /// Up was not announced (this_layer_up failed), so the matching Down is not either.
    up_suppressed: bool,
    passive: bool,
    silent: bool,
    restart_option: bool,
    peer_mru: usize,
    transmit: LazyQueue<Vec<u8>>,
    events: LazyQueue<FsmEvent>,
    counters: FsmCounters,
}

impl<P: ControlProtocol + fmt::Debug> fmt::Debug for Fsm<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fsm")
            .field("protocol", &self.protocol)
            .field("state", &self.state)
            .field("restart_count", &self.restart_count)
            .field("restart_deadline", &self.restart_deadline)
            .field("naks_sent", &self.naks_sent)
            .field("request_identifier", &self.request_identifier)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl<P: ControlProtocol> Fsm<P> {
    /// A new automaton in the Initial state.
    pub fn new(protocol: P, config: FsmConfig) -> Self {
        Fsm {
            protocol,
            config,
            state: State::Initial,
            restart_count: 0,
            restart_deadline: None,
            naks_sent: 0,
            naks_received: 0,
            next_identifier: 1,
            request_identifier: 0,
            request_options: Vec::new(),
            request_unanswered: false,
            heard_from_peer: false,
            terminate_data: Vec::new(),
            finish_reason: None,
            failed_at_up: None,
            up_suppressed: false,
            passive: false,
            silent: false,
            restart_option: false,
            peer_mru: DEFAULT_PEER_MRU,
            transmit: LazyQueue::new(),
            events: LazyQueue::new(),
            counters: FsmCounters::default(),
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The protocol running on the automaton.
    pub fn protocol(&self) -> &P {
        &self.protocol
    }

    /// The protocol running on the automaton, mutably (e.g. to change what the next request asks).
    pub fn protocol_mut(&mut self) -> &mut P {
        &mut self.protocol
    }

    /// The timer and counter configuration.
    pub fn config(&self) -> &FsmConfig {
        &self.config
    }

    /// What was counted and dropped so far.
    pub fn counters(&self) -> &FsmCounters {
        &self.counters
    }

    /// The restart counter (RFC 1661 §4.6).
    pub fn restart_count(&self) -> u32 {
        self.restart_count
    }

    /// pppd's `passive`: when Configure-Requests time out (TO- in Req-Sent, Ack-Rcvd, Ack-Sent),
    /// wait in Stopped for the peer instead of signalling This-Layer-Finished (table footnote `p`).
    pub fn set_passive(&mut self, passive: bool) {
        self.passive = passive;
    }

    /// pppd's `silent`: when the automaton would send its first Configure-Request (Up in Starting,
    /// Open in Closed), wait in Stopped for the peer's request instead.
    pub fn set_silent(&mut self, silent: bool) {
        self.silent = silent;
    }

    /// The restart option (table footnote `r`): an Open in Stopped, Closing, Stopping or Opened
    /// restarts the link with a Down and an Up.
    pub fn set_restart_option(&mut self, restart: bool) {
        self.restart_option = restart;
    }

    /// The peer's MRU: Code-Rejects are truncated to fit it. Default 1500.
    pub fn set_peer_mru(&mut self, mru: u16) {
        self.peer_mru = usize::from(mru).max(HEADER_LEN + 4);
    }

    /// The peer's MRU as last set.
    pub fn peer_mru(&self) -> usize {
        self.peer_mru
    }

    /// Lower layer is up (RFC event Up).
    pub fn up(&mut self, now: Instant) {
        if self.silent && self.state == State::Starting {
            debug!(
                "{}: lower layer up, silent: waiting for the peer",
                self.protocol.name()
            );
            self.protocol.reset();
            self.enter(State::Stopped);
            return;
        }
        self.apply(now, RfcEvent::Up, &mut Context::default());
    }

    /// Releases the memory of empty queues, and the buffers of a negotiation that is over
    /// (an idle link in Opened, Closed or Stopped keeps none). Call it now and then on links
    /// that go quiet; what it frees is allocated again when needed.
    pub fn compact(&mut self) {
        if self.state != State::Closing && self.state != State::Stopping {
            self.terminate_data = Vec::new();
        }
        self.request_options.shrink_to_fit();
    }

    /// Lower layer is down (RFC event Down).
    pub fn down(&mut self, now: Instant) {
        self.apply(now, RfcEvent::Down, &mut Context::default());
    }

    /// Administrative Open.
    pub fn open(&mut self, now: Instant) {
        if self.silent && self.state == State::Closed {
            debug!(
                "{}: open, silent: waiting for the peer",
                self.protocol.name()
            );
            self.protocol.reset();
            self.enter(State::Stopped);
            return;
        }
        let before = self.state;
        self.apply(now, RfcEvent::Open, &mut Context::default());
        let restarts = matches!(
            before,
            State::Stopped | State::Closing | State::Stopping | State::Opened
        );
        if self.restart_option && restarts {
            debug!(
                "{}: open with restart option: restarting",
                self.protocol.name()
            );
            self.down(now);
            self.up(now);
        }
    }

    /// Administrative Close; the reason's words go into our Terminate-Request and the reason
    /// into the Finished event ([`FinishReason::Closed`]).
    ///
    /// As in pppd, a passive or silent automaton waiting in Stopped goes to Closed *with*
    /// This-Layer-Finished (the table has no tlf there), so the owner learns the link is done.
    pub fn close(&mut self, now: Instant, reason: CloseReason) {
        self.terminate_data = reason.text().as_bytes().to_vec();
        self.close_with(now, FinishReason::Closed(reason));
    }

    /// Close because negotiation failed: the failure's words go into the Terminate-Request.
    fn fail(&mut self, now: Instant, failure: NegotiationFailure) {
        debug!("{}: negotiation failed: {failure}", self.protocol.name());
        self.terminate_data = failure.to_string().into_bytes();
        self.close_with(now, FinishReason::NegotiationFailed(failure));
    }

    /// Close for a reason of the protocol running on the automaton (LCP's keepalive, loopback):
    /// `text` goes into the Terminate-Request.
    pub(crate) fn close_for(&mut self, now: Instant, reason: FinishReason, text: &str) {
        self.terminate_data = text.as_bytes().to_vec();
        self.close_with(now, reason);
    }

    fn close_with(&mut self, now: Instant, reason: FinishReason) {
        if self.state == State::Stopped && (self.passive || self.silent) {
            self.enter(State::Closed);
            self.finish_reason = None;
            self.push_event(FsmEvent::Finished { reason });
            return;
        }
        self.finish_reason = Some(Box::new(reason));
        self.apply(now, RfcEvent::Close, &mut Context::default());
    }

    /// RXJ+ / RXJ- from outside the automaton: a Protocol-Reject concerning this protocol
    /// (the link calls this on an NCP with `permitted = false` when LCP receives a Protocol-Reject
    /// for it; LCP itself decides on Protocol-Rejects it receives). RXJ- finishes with
    /// [`FinishReason::ProtocolRejected`].
    pub fn handle_reject(&mut self, now: Instant, permitted: bool) {
        if !permitted {
            self.finish_reason = Some(Box::new(FinishReason::ProtocolRejected));
        }
        let event = if permitted {
            RfcEvent::RxjPlus
        } else {
            RfcEvent::RxjMinus
        };
        self.apply(now, event, &mut Context::default());
    }

    /// A packet of this protocol arrived: `packet` is the PPP information field (Code, Identifier,
    /// Length, Data). Malformed packets are counted and dropped, never panic.
    pub fn handle_input(&mut self, now: Instant, packet: &[u8]) {
        let parsed = match ControlPacket::parse(packet) {
            Ok(parsed) => parsed,
            Err(error) => {
                debug!(
                    "{}: dropped malformed packet: {error}",
                    self.protocol.name()
                );
                self.counters.malformed += 1;
                return;
            }
        };
        debug!(
            "rcvd {}",
            describe_packet(self.protocol.name(), packet, &|o| self
                .protocol
                .describe_options(o))
        );
        if matches!(self.state, State::Initial | State::Starting) {
            debug!(
                "{}: packet received in state {:?}, discarded",
                self.protocol.name(),
                self.state
            );
            self.counters.discarded += 1;
            return;
        }
        let context = Context {
            raw: &packet[..parsed.buffer_len()],
            identifier: parsed.identifier,
            ..Context::default()
        };
        self.dispatch(now, parsed, context);
        self.heard_from_peer = true;
    }

    fn dispatch<'a>(&mut self, now: Instant, parsed: ControlPacket<'a>, mut context: Context<'a>) {
        match parsed.code {
            Code::ConfigureRequest => self.receive_configure_request(now, parsed, context),
            Code::ConfigureAck => self.receive_configure_ack(now, parsed, context),
            Code::ConfigureNak | Code::ConfigureReject => {
                self.receive_configure_nak_or_reject(now, parsed, context)
            }
            Code::TerminateRequest => {
                if self.state == State::Opened {
                    let message =
                        String::from_utf8_lossy(&parsed.data[..parsed.data.len().min(128)])
                            .into_owned();
                    self.finish_reason = Some(Box::new(FinishReason::PeerTerminated { message }));
                }
                self.apply(now, RfcEvent::Rtr, &mut context);
            }
            Code::TerminateAck => self.apply(now, RfcEvent::Rta, &mut context),
            Code::CodeReject => {
                let Some(&rejected) = parsed.data.first() else {
                    self.counters.malformed += 1;
                    return;
                };
                if self.protocol.code_reject_permitted(rejected) {
                    self.apply(now, RfcEvent::RxjPlus, &mut context);
                } else {
                    self.finish_reason = Some(Box::new(FinishReason::CodeRejected {
                        code: Code::from(rejected),
                    }));
                    self.apply(now, RfcEvent::RxjMinus, &mut context);
                }
            }
            other => {
                let state = self.state;
                match self.protocol.handle_other_code(
                    state,
                    other.number(),
                    parsed.identifier,
                    parsed.data,
                ) {
                    OtherCode::Unknown => self.apply(now, RfcEvent::Ruc, &mut context),
                    OtherCode::Handled => self.apply(now, RfcEvent::Rxr, &mut context),
                    OtherCode::Reply {
                        code,
                        identifier,
                        data,
                    } => {
                        context.reply = Some((code, identifier, data));
                        self.apply(now, RfcEvent::Rxr, &mut context);
                    }
                }
            }
        }
    }

    /// The restart timer may have expired (TO+ / TO-); a spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.restart_deadline else {
            return;
        };
        if now < deadline {
            return;
        }
        self.restart_deadline = None;
        let event = if self.restart_count > 0 {
            RfcEvent::TimeoutPlus
        } else {
            RfcEvent::TimeoutMinus
        };
        if event == RfcEvent::TimeoutMinus && self.finish_reason.is_none() {
            self.finish_reason = Some(Box::new(if self.state.is_negotiating() {
                FinishReason::ConfigureTimeout
            } else {
                FinishReason::Terminated
            }));
        }
        self.apply(now, event, &mut Context::default());
    }

    /// Next packet to send on `protocol()`: the information field (Code, Identifier, Length, Data).
    /// Call until `None` after every input.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// Next event for the owner. Call until `None` after every input.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<FsmEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.restart_deadline
    }

    /// A fresh identifier for a packet of this protocol (shared with the automaton's own requests).
    pub fn allocate_identifier(&mut self) -> u8 {
        let identifier = self.next_identifier;
        self.next_identifier = self.next_identifier.wrapping_add(1);
        identifier
    }

    /// Queue a packet of this protocol (Echo-Request, Protocol-Reject, ...) after those already
    /// queued; it is logged like the automaton's own packets. Data is truncated to the peer's MRU.
    pub fn send_packet(&mut self, code: Code, identifier: u8, data: &[u8]) {
        let room = self.peer_mru.saturating_sub(HEADER_LEN);
        let data = &data[..data.len().min(room)];
        self.queue(packet::build(code, identifier, data));
    }

    fn queue(&mut self, bytes: Vec<u8>) {
        debug!(
            "sent {}",
            describe_packet(self.protocol.name(), &bytes, &|o| self
                .protocol
                .describe_options(o))
        );
        if self.transmit.len() >= MAX_QUEUED_PACKETS {
            self.counters.transmit_overflow += 1;
            return;
        }
        self.transmit.push_back(bytes);
    }

    fn push_event(&mut self, event: FsmEvent) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    fn enter(&mut self, next: State) {
        if next != self.state {
            debug!("{}: {:?} -> {:?}", self.protocol.name(), self.state, next);
        }
        self.state = next;
        if !next.restart_timer_runs() {
            self.restart_deadline = None;
        }
    }

    /// Whether a reply with `identifier` answers our outstanding request; counts it if not.
    fn answers_our_request(&mut self, identifier: u8) -> bool {
        if self.request_unanswered && identifier == self.request_identifier {
            return true;
        }
        let unexpected = UnexpectedReply {
            identifier,
            last_request: self.request_identifier,
            outstanding: self.request_unanswered,
        };
        debug!("{}: {unexpected}, discarded", self.protocol.name());
        self.counters.unexpected_identifier += 1;
        false
    }

    fn receive_configure_request<'a>(
        &mut self,
        now: Instant,
        parsed: ControlPacket<'a>,
        mut context: Context<'a>,
    ) {
        if validate_options(parsed.data).is_err() {
            debug!(
                "{}: Configure-Request with malformed options",
                self.protocol.name()
            );
            self.counters.malformed += 1;
            return;
        }
        context.options = parsed.data;
        let old = self.state;
        if old == State::RequestSent
            && self.request_unanswered
            && !self.heard_from_peer
            && let Some(early) = self.config.early_retransmit
            && let Some(at) = now.checked_add(early)
            && self.restart_deadline.is_some_and(|deadline| at < deadline)
        {
            debug!(
                "{}: the peer's first Configure-Request: ours goes out again in {early:?} unless answered",
                self.protocol.name()
            );
            self.restart_deadline = Some(at);
            self.counters.early_retransmissions += 1;
        }
        let checks = matches!(
            old,
            State::Stopped
                | State::RequestSent
                | State::AckReceived
                | State::AckSent
                | State::Opened
        );
        if !checks {
            // Closed answers with Terminate-Ack, Closing and Stopping ignore it: both cells are
            // the same for RCR+ and RCR-.
            self.apply(now, RfcEvent::RcrPlus, &mut context);
            return;
        }
        let (_, plus) = transition(old, RfcEvent::RcrPlus).unwrap_or((old, &[]));
        let (_, minus) = transition(old, RfcEvent::RcrMinus).unwrap_or((old, &[]));
        // Actions before sca/scn are the same for both events (tld, irc, scr): run them first so
        // the protocol is reset before it records what the peer asks for.
        let split = plus
            .iter()
            .position(|a| matches!(a, Action::Sca | Action::Scn))
            .unwrap_or(plus.len());
        let prefix_matches = minus.len() >= split && minus[..split] == plus[..split];
        let (prefix, _) = plus.split_at(if prefix_matches { split } else { 0 });
        let next_if_good = transition(old, RfcEvent::RcrPlus).map_or(old, |(s, _)| s);
        for &action in prefix {
            self.execute(
                now,
                old,
                next_if_good,
                RfcEvent::RcrPlus,
                action,
                &mut context,
            );
        }
        let allow_nak = self.naks_sent < self.config.max_failure;
        let mut reply = Vec::new();
        let verdict = self
            .protocol
            .check_request(parsed.data, allow_nak, &mut reply);
        let (event, nak_code) = match verdict {
            RequestVerdict::Ack => (RfcEvent::RcrPlus, None),
            RequestVerdict::Nak if allow_nak => (RfcEvent::RcrMinus, Some(Code::ConfigureNak)),
            RequestVerdict::Nak | RequestVerdict::Reject => {
                (RfcEvent::RcrMinus, Some(Code::ConfigureReject))
            }
        };
        context.nak_code = nak_code;
        context.nak_options = reply;
        let Some((next, actions)) = transition(old, event) else {
            self.counters.illegal_events += 1;
            return;
        };
        let rest = if prefix.len() <= actions.len() {
            &actions[prefix.len()..]
        } else {
            actions
        };
        for &action in rest {
            self.execute(now, old, next, event, action, &mut context);
        }
        self.enter(next);
        self.close_if_failed_at_up(now);
    }

    fn receive_configure_ack<'a>(
        &mut self,
        now: Instant,
        parsed: ControlPacket<'a>,
        mut context: Context<'a>,
    ) {
        if self.state.is_negotiating() || self.state == State::Opened {
            if !self.answers_our_request(parsed.identifier) {
                return;
            }
            if parsed.data != self.request_options.as_slice() {
                debug!(
                    "{}: Configure-Ack does not echo our request, discarded",
                    self.protocol.name()
                );
                self.counters.mismatched_reply += 1;
                return;
            }
            self.request_unanswered = false;
            self.naks_received = 0;
            self.protocol.on_ack(parsed.data);
        }
        self.apply(now, RfcEvent::Rca, &mut context);
    }

    fn receive_configure_nak_or_reject<'a>(
        &mut self,
        now: Instant,
        parsed: ControlPacket<'a>,
        mut context: Context<'a>,
    ) {
        if self.state.is_negotiating() || self.state == State::Opened {
            if !self.answers_our_request(parsed.identifier) {
                return;
            }
            if validate_options(parsed.data).is_err() {
                self.counters.malformed += 1;
                return;
            }
            let reject = parsed.code == Code::ConfigureReject;
            if reject && !is_subsequence(parsed.data, &self.request_options) {
                debug!(
                    "{}: Configure-Reject lists options we did not send, discarded",
                    self.protocol.name()
                );
                self.counters.mismatched_reply += 1;
                return;
            }
            self.request_unanswered = false;
            if self.state == State::Opened {
                // Renegotiation: start from a clean request before applying the peer's answer.
                self.protocol.reset();
                self.naks_sent = 0;
                self.naks_received = 0;
                context.reset_done = true;
            }
            let outcome = if reject {
                self.protocol.on_reject(parsed.data)
            } else {
                self.naks_received = self.naks_received.saturating_add(1);
                let limit = self.config.max_failure;
                if self.naks_received > limit.saturating_add(self.config.max_configure) {
                    Err(NegotiationFailure::NoConvergence {
                        naks: self.naks_received - 1,
                    })
                } else if self.naks_received > limit {
                    // Like pppd: a peer that keeps Nak'ing gets the options it Naks treated as
                    // Rejected, so the negotiation converges (only options we asked for count).
                    let asked = options_also_in(parsed.data, &self.request_options);
                    self.protocol.on_reject(&asked)
                } else {
                    self.protocol.on_nak(parsed.data)
                }
            };
            if let Err(failure) = outcome {
                self.fail(now, failure);
                return;
            }
        }
        self.apply(now, RfcEvent::Rcn, &mut context);
    }

    fn apply(&mut self, now: Instant, event: RfcEvent, context: &mut Context<'_>) {
        let old = self.state;
        let Some((next, actions)) = transition(old, event) else {
            debug!(
                "{}: illegal event {event:?} in state {old:?} ignored",
                self.protocol.name()
            );
            self.counters.illegal_events += 1;
            return;
        };
        for &action in actions {
            self.execute(now, old, next, event, action, context);
        }
        self.enter(next);
        self.close_if_failed_at_up(now);
    }

    /// This-Layer-Up failed during the transition that just ended (in Opened): close now, with
    /// the failure as the reason, so the automaton never stays in Opened unusable.
    fn close_if_failed_at_up(&mut self, now: Instant) {
        if let Some(failure) = self.failed_at_up.take() {
            self.fail(now, *failure);
        }
    }

    fn execute(
        &mut self,
        now: Instant,
        old: State,
        next: State,
        event: RfcEvent,
        action: Action,
        context: &mut Context<'_>,
    ) {
        match action {
            Action::Tlu => {
                self.finish_reason = None;
                match self.protocol.this_layer_up() {
                    Ok(()) => self.push_event(FsmEvent::Up),
                    Err(failure) => {
                        self.up_suppressed = true;
                        self.failed_at_up = Some(Box::new(failure));
                    }
                }
            }
            Action::Tld => {
                self.protocol.this_layer_down();
                if !std::mem::take(&mut self.up_suppressed) {
                    self.push_event(FsmEvent::Down);
                }
            }
            Action::Tls => self.push_event(FsmEvent::Started),
            Action::Tlf => {
                if self.passive && event == RfcEvent::TimeoutMinus && old.is_negotiating() {
                    debug!(
                        "{}: passive: waiting for the peer in Stopped",
                        self.protocol.name()
                    );
                    self.finish_reason = None;
                    return;
                }
                let reason = self
                    .finish_reason
                    .take()
                    .map_or(FinishReason::Terminated, |reason| *reason);
                self.push_event(FsmEvent::Finished { reason });
            }
            Action::Irc => {
                self.restart_count = if matches!(next, State::Closing | State::Stopping) {
                    self.config.max_terminate
                } else {
                    self.config.max_configure
                };
            }
            Action::Zrc => {
                self.restart_count = 0;
                self.restart_deadline = now.checked_add(self.config.restart_interval);
            }
            Action::Scr => self.send_configure_request(now, old, event, context),
            Action::Sca => {
                self.naks_sent = 0;
                let bytes = packet::build(Code::ConfigureAck, context.identifier, context.options);
                self.queue(bytes);
            }
            Action::Scn => {
                let code = context.nak_code.unwrap_or(Code::ConfigureReject);
                if code == Code::ConfigureNak {
                    self.naks_sent = self.naks_sent.saturating_add(1);
                }
                let bytes = packet::build(code, context.identifier, &context.nak_options);
                self.queue(bytes);
            }
            Action::Str => {
                let identifier = self.allocate_identifier();
                let room = self.peer_mru.saturating_sub(HEADER_LEN);
                let len = self.terminate_data.len().min(room);
                let bytes = packet::build(
                    Code::TerminateRequest,
                    identifier,
                    &self.terminate_data[..len],
                );
                self.queue(bytes);
                self.restart_count = self.restart_count.saturating_sub(1);
                self.restart_deadline = now.checked_add(self.config.restart_interval);
            }
            Action::Sta => {
                let bytes = packet::build(Code::TerminateAck, context.identifier, &[]);
                self.queue(bytes);
            }
            Action::Scj => {
                let identifier = self.allocate_identifier();
                let room = self.peer_mru.saturating_sub(HEADER_LEN);
                let rejected = &context.raw[..context.raw.len().min(room)];
                let bytes = packet::build(Code::CodeReject, identifier, rejected);
                self.queue(bytes);
            }
            Action::Ser => {
                if let Some((code, identifier, data)) = context.reply.take() {
                    self.send_packet(Code::from(code), identifier, &data);
                }
            }
        }
    }

    fn send_configure_request(
        &mut self,
        now: Instant,
        old: State,
        event: RfcEvent,
        context: &mut Context<'_>,
    ) {
        let fresh = !old.is_negotiating();
        if fresh && !context.reset_done {
            self.protocol.reset();
            self.naks_sent = 0;
            self.naks_received = 0;
            context.reset_done = true;
        }
        if fresh {
            self.terminate_data.clear();
            self.finish_reason = None;
            self.heard_from_peer = false;
        }
        let mut options = Vec::new();
        self.protocol.build_request(&mut options);
        let retransmission = event == RfcEvent::TimeoutPlus
            && self.request_unanswered
            && options == self.request_options;
        if !retransmission {
            self.request_identifier = self.allocate_identifier();
        }
        self.request_options = options;
        self.request_unanswered = true;
        let bytes = packet::build(
            Code::ConfigureRequest,
            self.request_identifier,
            &self.request_options,
        );
        self.queue(bytes);
        self.restart_count = self.restart_count.saturating_sub(1);
        self.restart_deadline = now.checked_add(self.config.restart_interval);
    }
}

impl<P: ControlProtocol> Machine for Fsm<P> {
    type Event = FsmEvent;

    fn handle_input(&mut self, now: Instant, input: &[u8]) {
        Fsm::handle_input(self, now, input);
    }

    fn handle_timeout(&mut self, now: Instant) {
        Fsm::handle_timeout(self, now);
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        Fsm::poll_transmit(self)
    }

    fn poll_event(&mut self) -> Option<FsmEvent> {
        Fsm::poll_event(self)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Fsm::poll_timeout(self)
    }
}

/// The options of `list` whose type also appears in `request` (verbatim, in order).
fn options_also_in(list: &[u8], request: &[u8]) -> Vec<u8> {
    let asked: Vec<u8> = crate::options::iter_options(request)
        .filter_map(|o| o.ok().map(|o| o.kind))
        .collect();
    let mut out = Vec::new();
    for option in crate::options::iter_options(list).flatten() {
        if asked.contains(&option.kind) {
            option.emit(&mut out);
        }
    }
    out
}

/// A Configure-Ack/Nak/Reject that answers no outstanding request of ours, in words for the
/// debug log.
struct UnexpectedReply {
    identifier: u8,
    last_request: u8,
    /// Whether our last request is still unanswered.
    outstanding: bool,
}

impl fmt::Display for UnexpectedReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let UnexpectedReply {
            identifier,
            last_request,
            outstanding,
        } = *self;
        if outstanding {
            write!(
                f,
                "reply id={identifier:#x} does not answer our request id={last_request:#x}"
            )
        } else if identifier == last_request {
            write!(
                f,
                "reply id={identifier:#x} repeats an answer: our request id={last_request:#x} was already answered"
            )
        } else {
            write!(
                f,
                "reply id={identifier:#x} while no request is outstanding (the last was id={last_request:#x})"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unexpected_reply_never_contradicts_itself() {
        let text = |identifier, last_request, outstanding| {
            super::UnexpectedReply {
                identifier,
                last_request,
                outstanding,
            }
            .to_string()
        };
        assert_eq!(
            text(1, 2, true),
            "reply id=0x1 does not answer our request id=0x2"
        );
        // The message of the issue: a second answer to a request already answered.
        let repeated = text(1, 1, false);
        assert_eq!(
            repeated,
            "reply id=0x1 repeats an answer: our request id=0x1 was already answered"
        );
        assert!(!repeated.contains("does not answer"));
        assert_eq!(
            text(3, 2, false),
            "reply id=0x3 while no request is outstanding (the last was id=0x2)"
        );
    }

    use super::*;

    /// A protocol with one option (type 1, 2 data bytes) whose answers tests script.
    #[derive(Debug, Default)]
    struct TestProtocol {
        value: u16,
        verdict: Option<RequestVerdict>,
        fail_on_reject: bool,
        fail_at_up: bool,
        acks: u32,
        naks: u32,
        resets: u32,
        ups: u32,
        downs: u32,
        allow_nak_seen: Vec<bool>,
    }

    impl ControlProtocol for TestProtocol {
        fn protocol(&self) -> Protocol {
            Protocol::Ipcp
        }
        fn name(&self) -> &'static str {
            "TEST"
        }
        fn build_request(&mut self, out: &mut Vec<u8>) {
            crate::options::push_option(out, 1, &self.value.to_be_bytes());
        }
        fn check_request(
            &mut self,
            options: &[u8],
            allow_nak: bool,
            reply: &mut Vec<u8>,
        ) -> RequestVerdict {
            self.allow_nak_seen.push(allow_nak);
            let verdict = self.verdict.unwrap_or(RequestVerdict::Ack);
            match verdict {
                RequestVerdict::Ack => {}
                RequestVerdict::Nak if allow_nak => crate::options::push_option(reply, 1, &[0, 9]),
                _ => reply.extend_from_slice(options),
            }
            verdict
        }
        fn on_ack(&mut self, _options: &[u8]) {
            self.acks += 1;
        }
        fn on_nak(&mut self, options: &[u8]) -> Result<(), NegotiationFailure> {
            self.naks += 1;
            if let [1, 4, a, b] = *options {
                self.value = u16::from_be_bytes([a, b]);
            }
            Ok(())
        }
        fn on_reject(&mut self, _options: &[u8]) -> Result<(), NegotiationFailure> {
            if self.fail_on_reject {
                Err(NegotiationFailure::RequiredOptionRejected { option: "test" })
            } else {
                Ok(())
            }
        }
        fn this_layer_up(&mut self) -> Result<(), NegotiationFailure> {
            if self.fail_at_up {
                return Err(NegotiationFailure::NoLocalAddress);
            }
            self.ups += 1;
            Ok(())
        }
        fn this_layer_down(&mut self) {
            self.downs += 1;
        }
        fn reset(&mut self) {
            self.resets += 1;
        }
        fn describe_options(&self, options: &[u8]) -> String {
            crate::describe::describe_raw_options(options)
        }
    }

    fn fsm() -> (Fsm<TestProtocol>, Instant) {
        (
            Fsm::new(TestProtocol::default(), FsmConfig::default()),
            Instant::now(),
        )
    }

    fn sent(fsm: &mut Fsm<TestProtocol>) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| fsm.poll_transmit()).collect()
    }

    fn events(fsm: &mut Fsm<TestProtocol>) -> Vec<FsmEvent> {
        std::iter::from_fn(|| fsm.poll_event()).collect()
    }

    fn pkt(code: u8, id: u8, data: &[u8]) -> Vec<u8> {
        packet::build(Code::from(code), id, data)
    }

    /// Open + Up: returns the first Configure-Request.
    fn start(fsm: &mut Fsm<TestProtocol>, now: Instant) -> Vec<u8> {
        fsm.open(now);
        assert_eq!(events(fsm), vec![FsmEvent::Started]);
        fsm.up(now);
        assert_eq!(fsm.state(), State::RequestSent);
        let mut out = sent(fsm);
        assert_eq!(out.len(), 1);
        out.remove(0)
    }

    #[test]
    fn reaches_opened_and_echoes_the_request_in_the_ack() {
        let (mut fsm, t0) = fsm();
        let request = start(&mut fsm, t0);
        assert_eq!(request, [1, 1, 0, 8, 1, 4, 0, 0]);
        assert_eq!(fsm.poll_timeout(), Some(t0 + Duration::from_secs(3)));

        // The peer's request: Acked with its options echoed. It is the first thing we hear
        // from the peer: ours goes out again if no answer comes soon (it may have been sent
        // before the peer listened).
        fsm.handle_input(t0, &pkt(1, 0x42, &[1, 4, 0, 7]));
        assert_eq!(sent(&mut fsm), vec![pkt(2, 0x42, &[1, 4, 0, 7])]);
        assert_eq!(fsm.counters().early_retransmissions, 1);
        assert_eq!(fsm.poll_timeout(), Some(t0 + Duration::from_millis(300)));
        assert_eq!(fsm.state(), State::AckSent);

        // The peer's Ack of our request.
        fsm.handle_input(t0, &pkt(2, 1, &[1, 4, 0, 0]));
        assert_eq!(fsm.state(), State::Opened);
        assert_eq!(events(&mut fsm), vec![FsmEvent::Up]);
        assert_eq!(fsm.poll_timeout(), None);
        assert_eq!(fsm.protocol().ups, 1);

        // A duplicate Ack is not an answer to an outstanding request.
        fsm.handle_input(t0, &pkt(2, 1, &[1, 4, 0, 0]));
        assert_eq!(fsm.state(), State::Opened);
        assert_eq!(fsm.counters().unexpected_identifier, 1);
    }

    /// Delivers everything `from` has queued to `to`, in order.
    fn deliver(from: &mut Fsm<TestProtocol>, to: &mut Fsm<TestProtocol>, now: Instant) -> usize {
        let packets = sent(from);
        for packet in &packets {
            to.handle_input(now, packet);
        }
        packets.len()
    }

    /// Moves packets both ways until neither side has anything to send.
    fn settle(a: &mut Fsm<TestProtocol>, b: &mut Fsm<TestProtocol>, now: Instant) {
        for _ in 0..20 {
            if deliver(a, b, now) + deliver(b, a, now) == 0 {
                return;
            }
        }
        panic!("the automata never went quiet");
    }

    /// A request sent before the peer listened is lost; the peer's first request makes us send
    /// ours again, so both sides open without waiting for the restart timer.
    #[test]
    fn request_lost_before_the_peer_listened_is_sent_again_soon() {
        let (mut a, t0) = fsm();
        let (mut b, _) = fsm();
        let lost = start(&mut a, t0);
        let later = t0 + Duration::from_millis(200);
        let first_of_b = start(&mut b, later);
        a.handle_input(later, &first_of_b);
        // Only the Ack for now: the peer may still answer ours.
        let out = sent(&mut a);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0][0], 2);
        b.handle_input(later, &out[0]);
        // No answer within the early-retransmit time: ours again, long before 3 s.
        let early = later + Duration::from_millis(300);
        assert_eq!(a.poll_timeout(), Some(early));
        a.handle_timeout(early);
        let again = sent(&mut a);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0], lost, "the same request, the same identifier");
        b.handle_input(early, &again[0]);
        settle(&mut a, &mut b, early);
        assert_eq!((a.state(), b.state()), (State::Opened, State::Opened));
        assert_eq!((a.protocol().ups, b.protocol().ups), (1, 1));
        assert_eq!(a.counters().early_retransmissions, 1);
    }

    /// Both first requests cross on the wire and both are answered at once: each side sends one
    /// Configure-Request and one Configure-Ack, nothing twice (as pppd expects).
    #[test]
    fn crossed_requests_are_not_sent_twice() {
        let (mut a, t0) = fsm();
        let (mut b, _) = fsm();
        let from_a = start(&mut a, t0);
        let from_b = start(&mut b, t0);
        a.handle_input(t0, &from_b);
        b.handle_input(t0, &from_a);
        let (to_b, to_a) = (sent(&mut a), sent(&mut b));
        assert_eq!(to_b.iter().map(|p| p[0]).collect::<Vec<_>>(), [2]);
        assert_eq!(to_a.iter().map(|p| p[0]).collect::<Vec<_>>(), [2]);
        let answered = t0 + Duration::from_millis(40);
        for packet in to_a {
            a.handle_input(answered, &packet);
        }
        for packet in to_b {
            b.handle_input(answered, &packet);
        }
        assert_eq!((a.state(), b.state()), (State::Opened, State::Opened));
        assert!(sent(&mut a).is_empty() && sent(&mut b).is_empty());
        assert_eq!((a.poll_timeout(), b.poll_timeout()), (None, None));
        assert_eq!(a.counters().unexpected_identifier, 0);
    }

    #[test]
    fn crossed_first_requests_open_once_despite_the_copies() {
        let (mut a, t0) = fsm();
        let (mut b, _) = fsm();
        let from_a = start(&mut a, t0);
        let from_b = start(&mut b, t0);
        b.handle_input(t0, &from_a);
        a.handle_input(t0, &from_b);
        settle(&mut a, &mut b, t0);
        assert_eq!((a.state(), b.state()), (State::Opened, State::Opened));
        assert_eq!((a.protocol().ups, b.protocol().ups), (1, 1));
        assert_eq!((a.protocol().downs, b.protocol().downs), (0, 0));
        assert_eq!(a.counters().unexpected_identifier, 0);
        assert_eq!(b.counters().unexpected_identifier, 0);
        // Nothing is left to retransmit.
        assert_eq!((a.poll_timeout(), b.poll_timeout()), (None, None));
    }

    /// Only the peer's first packet triggers the copy: once anything was heard (here a Nak of
    /// our request), a Configure-Request is just answered.
    #[test]
    fn no_copy_once_the_peer_was_heard() {
        let (mut fsm, t0) = fsm();
        start(&mut fsm, t0);
        fsm.handle_input(t0, &pkt(3, 1, &[1, 4, 0, 9]));
        let renewed = sent(&mut fsm);
        assert_eq!(renewed.len(), 1);
        fsm.handle_input(t0, &pkt(1, 7, &[1, 4, 0, 7]));
        assert_eq!(sent(&mut fsm), vec![pkt(2, 7, &[1, 4, 0, 7])]);
        assert_eq!(fsm.counters().early_retransmissions, 0);
    }

    #[test]
    fn restart_timer_retransmits_then_gives_up_after_max_configure() {
        let (mut fsm, t0) = fsm();
        let first = start(&mut fsm, t0);
        let interval = Duration::from_secs(3);
        // A spurious early timeout does nothing.
        fsm.handle_timeout(t0 + Duration::from_secs(1));
        assert!(sent(&mut fsm).is_empty());
        let mut now = t0;
        for _ in 1..10 {
            now += interval;
            assert_eq!(fsm.poll_timeout(), Some(now));
            fsm.handle_timeout(now);
            // Retransmissions keep the identifier: the options did not change.
            assert_eq!(sent(&mut fsm), vec![first.clone()]);
            assert_eq!(fsm.state(), State::RequestSent);
        }
        assert_eq!(fsm.restart_count(), 0);
        now += interval;
        fsm.handle_timeout(now);
        assert!(sent(&mut fsm).is_empty());
        assert_eq!(fsm.state(), State::Stopped);
        assert_eq!(
            events(&mut fsm),
            vec![FsmEvent::Finished {
                reason: FinishReason::ConfigureTimeout
            }]
        );
        assert_eq!(fsm.poll_timeout(), None);
    }

    #[test]
    fn passive_waits_in_stopped_without_finishing() {
        let (mut fsm, t0) = fsm();
        fsm.set_passive(true);
        start(&mut fsm, t0);
        let mut now = t0;
        while let Some(deadline) = fsm.poll_timeout() {
            now = deadline;
            fsm.handle_timeout(now);
        }
        let _ = sent(&mut fsm);
        assert_eq!(fsm.state(), State::Stopped);
        assert!(events(&mut fsm).is_empty());
        // The peer shows up: irc,scr,sca/8.
        fsm.handle_input(now, &pkt(1, 5, &[]));
        assert_eq!(fsm.state(), State::AckSent);
        assert_eq!(sent(&mut fsm).len(), 2);
    }

    #[test]
    fn closing_a_waiting_passive_automaton_finishes_it() {
        let (mut fsm, t0) = fsm();
        fsm.set_silent(true);
        fsm.open(t0);
        fsm.up(t0);
        let _ = events(&mut fsm);
        assert_eq!(fsm.state(), State::Stopped);
        fsm.close(t0, CloseReason::UserRequest);
        assert_eq!(fsm.state(), State::Closed);
        assert_eq!(
            events(&mut fsm),
            vec![FsmEvent::Finished {
                reason: FinishReason::Closed(CloseReason::UserRequest)
            }]
        );
        assert!(sent(&mut fsm).is_empty());
    }

    #[test]
    fn silent_waits_for_the_peer_request() {
        let (mut fsm, t0) = fsm();
        fsm.set_silent(true);
        fsm.open(t0);
        fsm.up(t0);
        assert_eq!(fsm.state(), State::Stopped);
        assert!(sent(&mut fsm).is_empty());
        fsm.handle_input(t0, &pkt(1, 5, &[1, 4, 0, 1]));
        let out = sent(&mut fsm);
        assert_eq!(
            out,
            vec![pkt(1, 1, &[1, 4, 0, 0]), pkt(2, 5, &[1, 4, 0, 1])]
        );
        assert_eq!(fsm.state(), State::AckSent);
    }

    #[test]
    fn close_sends_terminate_requests_until_max_terminate() {
        let (mut fsm, t0) = fsm();
        start(&mut fsm, t0);
        fsm.close(t0, CloseReason::UserRequest);
        assert_eq!(fsm.state(), State::Closing);
        assert_eq!(sent(&mut fsm), vec![pkt(5, 2, b"User request")]);
        let t1 = t0 + Duration::from_secs(3);
        fsm.handle_timeout(t1);
        assert_eq!(sent(&mut fsm), vec![pkt(5, 3, b"User request")]);
        let t2 = t1 + Duration::from_secs(3);
        fsm.handle_timeout(t2);
        assert!(sent(&mut fsm).is_empty());
        assert_eq!(fsm.state(), State::Closed);
        assert_eq!(
            events(&mut fsm),
            vec![FsmEvent::Finished {
                reason: FinishReason::Closed(CloseReason::UserRequest)
            }]
        );
    }

    #[test]
    fn terminate_ack_finishes_closing() {
        let (mut fsm, t0) = fsm();
        start(&mut fsm, t0);
        fsm.close(t0, CloseReason::from("bye"));
        let _ = sent(&mut fsm);
        fsm.handle_input(t0, &pkt(6, 2, &[]));
        assert_eq!(fsm.state(), State::Closed);
        assert_eq!(
            events(&mut fsm),
            vec![FsmEvent::Finished {
                reason: FinishReason::Closed(CloseReason::from("bye"))
            }]
        );
    }

    fn open_fsm() -> (Fsm<TestProtocol>, Instant) {
        let (mut fsm, t0) = fsm();
        start(&mut fsm, t0);
        fsm.handle_input(t0, &pkt(1, 0x42, &[1, 4, 0, 7]));
        fsm.handle_input(t0, &pkt(2, 1, &[1, 4, 0, 0]));
        let _ = sent(&mut fsm);
        let _ = events(&mut fsm);
        assert_eq!(fsm.state(), State::Opened);
        (fsm, t0)
    }

    #[test]
    fn peer_terminate_in_opened_waits_one_restart_period() {
        let (mut fsm, t0) = open_fsm();
        fsm.handle_input(t0, &pkt(5, 9, b"going away"));
        assert_eq!(sent(&mut fsm), vec![pkt(6, 9, &[])]);
        assert_eq!(fsm.state(), State::Stopping);
        assert_eq!(events(&mut fsm), vec![FsmEvent::Down]);
        let deadline = fsm.poll_timeout().unwrap();
        assert_eq!(deadline, t0 + Duration::from_secs(3));
        fsm.handle_timeout(deadline);
        assert_eq!(fsm.state(), State::Stopped);
        assert_eq!(
            events(&mut fsm),
            vec![FsmEvent::Finished {
                reason: FinishReason::PeerTerminated {
                    message: "going away".into()
                }
            }]
        );
    }

    #[test]
    fn renegotiation_from_opened() {
        let (mut fsm, t0) = open_fsm();
        let resets = fsm.protocol().resets;
        fsm.handle_input(t0, &pkt(1, 0x43, &[1, 4, 0, 8]));
        // tld, then our new request, then the Ack.
        assert_eq!(
            sent(&mut fsm),
            vec![pkt(1, 2, &[1, 4, 0, 0]), pkt(2, 0x43, &[1, 4, 0, 8])]
        );
        assert_eq!(events(&mut fsm), vec![FsmEvent::Down]);
        assert_eq!(fsm.protocol().resets, resets + 1);
        assert_eq!(fsm.state(), State::AckSent);
    }

    #[test]
    fn replies_with_wrong_identifier_or_options_are_ignored() {
        let (mut fsm, t0) = fsm();
        start(&mut fsm, t0);
        let cases: &[(u8, u8, &[u8])] = &[
            (2, 7, &[1, 4, 0, 0]), // Ack, wrong id
            (2, 1, &[1, 4, 0, 1]), // Ack, other options
            (2, 1, &[]),           // Ack, no options
            (3, 7, &[1, 4, 0, 9]), // Nak, wrong id
            (4, 7, &[1, 4, 0, 0]), // Reject, wrong id
            (4, 1, &[1, 4, 0, 1]), // Reject of an option we did not send
            (3, 1, &[1, 9, 0]),    // Nak with a malformed list
        ];
        for &(code, id, data) in cases {
            fsm.handle_input(t0, &pkt(code, id, data));
            assert_eq!(fsm.state(), State::RequestSent, "{code} {id} {data:?}");
            assert!(sent(&mut fsm).is_empty());
        }
        let counters = fsm.counters();
        assert_eq!(counters.unexpected_identifier, 3);
        assert_eq!(counters.mismatched_reply, 3);
        assert_eq!(counters.malformed, 1);
        assert_eq!(fsm.protocol().acks, 0);
        assert_eq!(fsm.protocol().naks, 0);
    }

    #[test]
    fn nak_adjusts_the_request_with_a_new_identifier() {
        let (mut fsm, t0) = fsm();
        start(&mut fsm, t0);
        fsm.handle_input(t0, &pkt(3, 1, &[1, 4, 0, 9]));
        assert_eq!(sent(&mut fsm), vec![pkt(1, 2, &[1, 4, 0, 9])]);
        assert_eq!(fsm.state(), State::RequestSent);
        // The same Nak again is stale now.
        fsm.handle_input(t0, &pkt(3, 1, &[1, 4, 0, 9]));
        assert!(sent(&mut fsm).is_empty());
        fsm.handle_input(t0, &pkt(2, 2, &[1, 4, 0, 9]));
        assert_eq!(fsm.state(), State::AckReceived);
    }

    #[test]
    fn max_failure_turns_naks_into_rejects() {
        let (mut fsm, t0) = fsm();
        fsm.protocol_mut().verdict = Some(RequestVerdict::Nak);
        start(&mut fsm, t0);
        for id in 0..7u8 {
            fsm.handle_input(t0, &pkt(1, id, &[1, 4, 0, 1]));
            let out: Vec<_> = sent(&mut fsm).into_iter().filter(|p| p[0] != 1).collect();
            let expected_code = if id < 5 { 3 } else { 4 };
            assert_eq!(out.len(), 1);
            assert_eq!(out[0][0], expected_code, "request {id}");
            assert_eq!(out[0][1], id);
        }
        assert_eq!(
            fsm.protocol().allow_nak_seen,
            vec![true, true, true, true, true, false, false]
        );
        // A Configure-Ack sent resets the count.
        fsm.protocol_mut().verdict = Some(RequestVerdict::Ack);
        fsm.handle_input(t0, &pkt(1, 9, &[1, 4, 0, 1]));
        fsm.protocol_mut().verdict = Some(RequestVerdict::Nak);
        fsm.handle_input(t0, &pkt(1, 10, &[1, 4, 0, 1]));
        assert_eq!(sent(&mut fsm).last().unwrap()[0], 3);
    }

    #[test]
    fn failure_at_this_layer_up_never_opens() {
        let (mut fsm, t0) = fsm();
        fsm.protocol_mut().fail_at_up = true;
        start(&mut fsm, t0);
        // The peer acks ours and sends its own: the table says Opened, but the protocol has no
        // usable result, so the automaton closes at once and never reports Up.
        fsm.handle_input(t0, &pkt(2, 1, &[1, 4, 0, 0]));
        fsm.handle_input(t0, &pkt(1, 7, &[1, 4, 0, 1]));
        assert_eq!(fsm.state(), State::Closing);
        assert_eq!(
            sent(&mut fsm),
            vec![
                pkt(2, 7, &[1, 4, 0, 1]),
                pkt(5, 2, b"could not determine local IP address")
            ]
        );
        assert_eq!(events(&mut fsm), vec![]);
        fsm.handle_input(t0, &pkt(6, 2, &[]));
        assert_eq!(fsm.state(), State::Closed);
        assert_eq!(
            events(&mut fsm),
            vec![FsmEvent::Finished {
                reason: FinishReason::NegotiationFailed(NegotiationFailure::NoLocalAddress)
            }]
        );
        assert_eq!(fsm.protocol().ups, 0);
    }

    #[test]
    fn negotiation_failure_closes_with_the_reason() {
        let (mut fsm, t0) = fsm();
        fsm.protocol_mut().fail_on_reject = true;
        start(&mut fsm, t0);
        fsm.handle_input(t0, &pkt(4, 1, &[1, 4, 0, 0]));
        assert_eq!(fsm.state(), State::Closing);
        assert_eq!(
            sent(&mut fsm),
            vec![pkt(
                5,
                2,
                b"peer rejected the test option, which is required"
            )]
        );
        fsm.handle_input(t0, &pkt(6, 2, &[]));
        assert_eq!(
            events(&mut fsm),
            vec![FsmEvent::Finished {
                reason: FinishReason::NegotiationFailed(
                    NegotiationFailure::RequiredOptionRejected { option: "test" }
                )
            }]
        );
    }

    #[test]
    fn unknown_codes_are_code_rejected_and_code_rejects_classified() {
        let (mut fsm, t0) = open_fsm();
        let unknown = pkt(0x20, 3, &[1, 2, 3]);
        fsm.handle_input(t0, &unknown);
        assert_eq!(sent(&mut fsm), vec![pkt(7, 2, &unknown)]);
        // A Code-Reject of a code we can do without: RXJ+, nothing changes.
        fsm.handle_input(t0, &pkt(7, 1, &pkt(14, 1, &[])));
        assert_eq!(fsm.state(), State::Opened);
        // A Code-Reject of Configure-Request: RXJ-.
        fsm.handle_input(t0, &pkt(7, 2, &pkt(1, 1, &[1, 4, 0, 0])));
        assert_eq!(fsm.state(), State::Stopping);
        assert_eq!(events(&mut fsm), vec![FsmEvent::Down]);
        assert_eq!(sent(&mut fsm).len(), 1);
        // An empty Code-Reject is malformed.
        fsm.handle_input(t0, &pkt(7, 3, &[]));
        assert_eq!(fsm.counters().malformed, 1);
    }

    #[test]
    fn code_reject_is_truncated_to_the_peer_mru() {
        let (mut fsm, t0) = open_fsm();
        fsm.set_peer_mru(128);
        let big = pkt(0x30, 1, &[0xaa; 400]);
        fsm.handle_input(t0, &big);
        let out = sent(&mut fsm);
        assert_eq!(out[0].len(), 128);
        assert_eq!(&out[0][4..], &big[..124]);
    }

    #[test]
    fn packets_before_the_lower_layer_is_up_are_discarded() {
        let (mut fsm, t0) = fsm();
        fsm.handle_input(t0, &pkt(1, 1, &[]));
        fsm.open(t0);
        fsm.handle_input(t0, &pkt(1, 1, &[]));
        assert_eq!(fsm.counters().discarded, 2);
        assert!(sent(&mut fsm).is_empty());
    }

    #[test]
    fn illegal_events_change_nothing() {
        let (mut fsm, t0) = fsm();
        fsm.down(t0);
        assert_eq!(fsm.state(), State::Initial);
        assert_eq!(fsm.counters().illegal_events, 1);
        fsm.up(t0);
        fsm.up(t0);
        assert_eq!(fsm.state(), State::Closed);
        assert_eq!(fsm.counters().illegal_events, 2);
    }

    #[test]
    fn restart_option_restarts_on_open() {
        let (mut fsm, t0) = open_fsm();
        fsm.set_restart_option(true);
        fsm.open(t0);
        assert_eq!(fsm.state(), State::RequestSent);
        assert_eq!(events(&mut fsm), vec![FsmEvent::Down]);
        assert_eq!(sent(&mut fsm).len(), 1);
    }

    #[test]
    fn lower_layer_down_and_up_again() {
        let (mut fsm, t0) = open_fsm();
        fsm.down(t0);
        assert_eq!(fsm.state(), State::Starting);
        assert_eq!(events(&mut fsm), vec![FsmEvent::Down]);
        fsm.up(t0);
        assert_eq!(fsm.state(), State::RequestSent);
        assert_eq!(sent(&mut fsm).len(), 1);
    }
}
