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
//!   nothing else came from the peer since we sent it, our request was most likely sent before
//!   the peer listened (PPPoE: the AC's request reaches a client whose session socket is not
//!   connected yet; a peer whose pppd is still starting). Ours is sent again at once, before the
//!   answer to the peer's, instead of one restart interval (3 s) later. It is safe when the first
//!   copy did arrive: the peer, then in Ack-Sent, answers the copy again and stays there
//!   (RCR+ in Ack-Sent), our Ack follows the copy on the wire, and the second answer to our
//!   request is discarded as a duplicate.
//! - Footnotes of the table: `r` (restart option, [`Fsm::set_restart_option`]), `p` (passive
//!   option, [`Fsm::set_passive`]), `x` (crossed connection, nothing special to do).

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use ppp_frame::Protocol;
use tracing::debug;

use crate::describe::describe_packet;
use crate::options::{is_subsequence, validate_options};
use crate::packet::{self, Code, ControlPacket, HEADER_LEN};

/// The ten states of RFC 1661 §4.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// 0: lower layer down, no Open.
    Initial,
    /// 1: Open done, waiting for the lower layer.
    Starting,
    /// 2: lower layer up, no Open (or closed).
    Closed,
    /// 3: negotiation gave up or the peer terminated; waiting for a Configure-Request or Down.
    Stopped,
    /// 4: Terminate-Request sent after Close.
    Closing,
    /// 5: Terminate-Request sent (or acknowledged) without Close.
    Stopping,
    /// 6: Configure-Request sent, nothing acknowledged yet.
    RequestSent,
    /// 7: our Configure-Request was acknowledged, the peer's not yet.
    AckReceived,
    /// 8: we acknowledged the peer's Configure-Request, ours is outstanding.
    AckSent,
    /// 9: both directions negotiated.
    Opened,
}

impl State {
    /// Whether the restart timer runs in this state (Closing, Stopping, and the three
    /// negotiating states).
    pub const fn restart_timer_runs(self) -> bool {
        matches!(
            self,
            State::Closing
                | State::Stopping
                | State::RequestSent
                | State::AckReceived
                | State::AckSent
        )
    }

    /// Whether a Configure-Request of ours is being negotiated (Req-Sent, Ack-Rcvd, Ack-Sent).
    pub const fn is_negotiating(self) -> bool {
        matches!(
            self,
            State::RequestSent | State::AckReceived | State::AckSent
        )
    }
}

/// The events of RFC 1661 §4.3, named as in the state table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// Lower layer is up.
    Up,
    /// Lower layer is down.
    Down,
    /// Administrative Open.
    Open,
    /// Administrative Close.
    Close,
    /// TO+: restart timer expired, restart counter still above zero.
    TimeoutPlus,
    /// TO-: restart timer expired, restart counter exhausted.
    TimeoutMinus,
    /// RCR+: Configure-Request received, every option acceptable.
    RcrPlus,
    /// RCR-: Configure-Request received, answered with Nak or Reject.
    RcrMinus,
    /// RCA: Configure-Ack received.
    Rca,
    /// RCN: Configure-Nak or Configure-Reject received.
    Rcn,
    /// RTR: Terminate-Request received.
    Rtr,
    /// RTA: Terminate-Ack received.
    Rta,
    /// RUC: packet with an unknown code received.
    Ruc,
    /// RXJ+: Code-Reject or Protocol-Reject of something we can do without.
    RxjPlus,
    /// RXJ-: Code-Reject or Protocol-Reject that makes going on impossible.
    RxjMinus,
    /// RXR: Echo-Request, Echo-Reply or Discard-Request (or another code the protocol handled).
    Rxr,
}

impl Event {
    /// All 16 events, in the order of the RFC table.
    pub const ALL: [Event; 16] = [
        Event::Up,
        Event::Down,
        Event::Open,
        Event::Close,
        Event::TimeoutPlus,
        Event::TimeoutMinus,
        Event::RcrPlus,
        Event::RcrMinus,
        Event::Rca,
        Event::Rcn,
        Event::Rtr,
        Event::Rta,
        Event::Ruc,
        Event::RxjPlus,
        Event::RxjMinus,
        Event::Rxr,
    ];
}

impl State {
    /// All 10 states, in the order of the RFC table.
    pub const ALL: [State; 10] = [
        State::Initial,
        State::Starting,
        State::Closed,
        State::Stopped,
        State::Closing,
        State::Stopping,
        State::RequestSent,
        State::AckReceived,
        State::AckSent,
        State::Opened,
    ];
}

/// The actions of RFC 1661 §4.4, named as in the state table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// This-Layer-Up.
    Tlu,
    /// This-Layer-Down.
    Tld,
    /// This-Layer-Started.
    Tls,
    /// This-Layer-Finished.
    Tlf,
    /// Initialize-Restart-Count (Max-Configure before scr, Max-Terminate before str).
    Irc,
    /// Zero-Restart-Count (and run the restart timer once more, so the Terminate-Ack can leave).
    Zrc,
    /// Send-Configure-Request.
    Scr,
    /// Send-Configure-Ack.
    Sca,
    /// Send-Configure-Nak or Configure-Reject.
    Scn,
    /// Send-Terminate-Request.
    Str,
    /// Send-Terminate-Ack.
    Sta,
    /// Send-Code-Reject.
    Scj,
    /// Send-Echo-Reply.
    Ser,
}

/// RFC 1661 §4.1: the next state and the actions for `event` in `state`, or `None` for the
/// cells marked `-` (an event that cannot happen in a correct implementation: no transition is
/// taken).
///
/// The `r`, `p` and `x` footnotes are not part of the result; [`Fsm`] applies them.
pub fn transition(state: State, event: Event) -> Option<(State, &'static [Action])> {
    use Action::*;
    use Event as E;
    use State::*;
    let cell: (State, &'static [Action]) = match (event, state) {
        (E::Up, Initial) => (Closed, &[]),
        (E::Up, Starting) => (RequestSent, &[Irc, Scr]),
        (E::Up, _) => return None,

        (E::Down, Initial | Starting) => return None,
        (E::Down, Closed) => (Initial, &[]),
        (E::Down, Stopped) => (Starting, &[Tls]),
        (E::Down, Closing) => (Initial, &[]),
        (E::Down, Stopping | RequestSent | AckReceived | AckSent) => (Starting, &[]),
        (E::Down, Opened) => (Starting, &[Tld]),

        (E::Open, Initial) => (Starting, &[Tls]),
        (E::Open, Starting) => (Starting, &[]),
        (E::Open, Closed) => (RequestSent, &[Irc, Scr]),
        (E::Open, Stopped) => (Stopped, &[]),
        (E::Open, Closing | Stopping) => (Stopping, &[]),
        (E::Open, RequestSent) => (RequestSent, &[]),
        (E::Open, AckReceived) => (AckReceived, &[]),
        (E::Open, AckSent) => (AckSent, &[]),
        (E::Open, Opened) => (Opened, &[]),

        (E::Close, Initial) => (Initial, &[]),
        (E::Close, Starting) => (Initial, &[Tlf]),
        (E::Close, Closed | Stopped) => (Closed, &[]),
        (E::Close, Closing | Stopping) => (Closing, &[]),
        (E::Close, RequestSent | AckReceived | AckSent) => (Closing, &[Irc, Str]),
        (E::Close, Opened) => (Closing, &[Tld, Irc, Str]),

        (E::TimeoutPlus, Closing) => (Closing, &[Str]),
        (E::TimeoutPlus, Stopping) => (Stopping, &[Str]),
        (E::TimeoutPlus, RequestSent | AckReceived) => (RequestSent, &[Scr]),
        (E::TimeoutPlus, AckSent) => (AckSent, &[Scr]),
        (E::TimeoutPlus, _) => return None,

        (E::TimeoutMinus, Closing) => (Closed, &[Tlf]),
        (E::TimeoutMinus, Stopping | RequestSent | AckReceived | AckSent) => (Stopped, &[Tlf]),
        (E::TimeoutMinus, _) => return None,

        (E::RcrPlus | E::RcrMinus | E::Rca | E::Rcn | E::Rtr | E::Rta, Initial | Starting) => {
            return None;
        }
        (E::RcrPlus, Closed) => (Closed, &[Sta]),
        (E::RcrPlus, Stopped) => (AckSent, &[Irc, Scr, Sca]),
        (E::RcrPlus, Closing) => (Closing, &[]),
        (E::RcrPlus, Stopping) => (Stopping, &[]),
        (E::RcrPlus, RequestSent) => (AckSent, &[Sca]),
        (E::RcrPlus, AckReceived) => (Opened, &[Sca, Tlu]),
        (E::RcrPlus, AckSent) => (AckSent, &[Sca]),
        (E::RcrPlus, Opened) => (AckSent, &[Tld, Scr, Sca]),

        (E::RcrMinus, Closed) => (Closed, &[Sta]),
        (E::RcrMinus, Stopped) => (RequestSent, &[Irc, Scr, Scn]),
        (E::RcrMinus, Closing) => (Closing, &[]),
        (E::RcrMinus, Stopping) => (Stopping, &[]),
        (E::RcrMinus, RequestSent) => (RequestSent, &[Scn]),
        (E::RcrMinus, AckReceived) => (AckReceived, &[Scn]),
        (E::RcrMinus, AckSent) => (RequestSent, &[Scn]),
        (E::RcrMinus, Opened) => (RequestSent, &[Tld, Scr, Scn]),

        (E::Rca, Closed) => (Closed, &[Sta]),
        (E::Rca, Stopped) => (Stopped, &[Sta]),
        (E::Rca, Closing) => (Closing, &[]),
        (E::Rca, Stopping) => (Stopping, &[]),
        (E::Rca, RequestSent) => (AckReceived, &[Irc]),
        (E::Rca, AckReceived) => (RequestSent, &[Scr]),
        (E::Rca, AckSent) => (Opened, &[Irc, Tlu]),
        (E::Rca, Opened) => (RequestSent, &[Tld, Scr]),

        (E::Rcn, Closed) => (Closed, &[Sta]),
        (E::Rcn, Stopped) => (Stopped, &[Sta]),
        (E::Rcn, Closing) => (Closing, &[]),
        (E::Rcn, Stopping) => (Stopping, &[]),
        (E::Rcn, RequestSent) => (RequestSent, &[Irc, Scr]),
        (E::Rcn, AckReceived) => (RequestSent, &[Scr]),
        (E::Rcn, AckSent) => (AckSent, &[Irc, Scr]),
        (E::Rcn, Opened) => (RequestSent, &[Tld, Scr]),

        (E::Rtr, Closed) => (Closed, &[Sta]),
        (E::Rtr, Stopped) => (Stopped, &[Sta]),
        (E::Rtr, Closing) => (Closing, &[Sta]),
        (E::Rtr, Stopping) => (Stopping, &[Sta]),
        (E::Rtr, RequestSent | AckReceived | AckSent) => (RequestSent, &[Sta]),
        (E::Rtr, Opened) => (Stopping, &[Tld, Zrc, Sta]),

        (E::Rta, Closed) => (Closed, &[]),
        (E::Rta, Stopped) => (Stopped, &[]),
        (E::Rta, Closing) => (Closed, &[Tlf]),
        (E::Rta, Stopping) => (Stopped, &[Tlf]),
        (E::Rta, RequestSent | AckReceived) => (RequestSent, &[]),
        (E::Rta, AckSent) => (AckSent, &[]),
        (E::Rta, Opened) => (RequestSent, &[Tld, Scr]),

        (E::Ruc | E::RxjPlus | E::RxjMinus | E::Rxr, Initial | Starting) => return None,
        (E::Ruc, other) => (other, &[Scj]),

        (E::RxjPlus, RequestSent | AckReceived) => (RequestSent, &[]),
        (E::RxjPlus, other) => (other, &[]),

        (E::RxjMinus, Closed | Closing) => (Closed, &[Tlf]),
        (E::RxjMinus, Stopped | Stopping | RequestSent | AckReceived | AckSent) => {
            (Stopped, &[Tlf])
        }
        (E::RxjMinus, Opened) => (Stopping, &[Tld, Irc, Str]),

        (E::Rxr, Opened) => (Opened, &[Ser]),
        (E::Rxr, other) => (other, &[]),
    };
    Some(cell)
}

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
}

impl Default for FsmConfig {
    fn default() -> Self {
        FsmConfig {
            restart_interval: Duration::from_secs(3),
            max_terminate: 2,
            max_configure: 10,
            max_failure: 5,
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

/// Why a protocol gives up on negotiation (e.g. the peer rejects an option we cannot do without).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegotiationFailure(pub String);

impl fmt::Display for NegotiationFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
    /// This-Layer-Up (tlu): negotiation finished in both directions.
    fn this_layer_up(&mut self) {}
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
        /// Why, in words for logs and for the user.
        reason: String,
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
    /// Our Configure-Request sent again at once because the peer's first one arrived while ours
    /// was unanswered (see the module docs).
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
    finish_reason: Option<String>,
    passive: bool,
    silent: bool,
    restart_option: bool,
    peer_mru: usize,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<FsmEvent>,
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
            passive: false,
            silent: false,
            restart_option: false,
            peer_mru: DEFAULT_PEER_MRU,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
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
        self.apply(now, Event::Up, &mut Context::default());
    }

    /// Lower layer is down (RFC event Down).
    pub fn down(&mut self, now: Instant) {
        self.apply(now, Event::Down, &mut Context::default());
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
        self.apply(now, Event::Open, &mut Context::default());
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

    /// Administrative Close; `reason` goes into our Terminate-Request and the Finished event.
    ///
    /// As in pppd, a passive or silent automaton waiting in Stopped goes to Closed *with*
    /// This-Layer-Finished (the table has no tlf there), so the owner learns the link is done.
    pub fn close(&mut self, now: Instant, reason: &str) {
        self.finish_reason = Some(reason.to_owned());
        self.terminate_data = reason.as_bytes().to_vec();
        if self.state == State::Stopped && (self.passive || self.silent) {
            self.enter(State::Closed);
            self.finish_reason = None;
            self.push_event(FsmEvent::Finished {
                reason: reason.to_owned(),
            });
            return;
        }
        self.apply(now, Event::Close, &mut Context::default());
    }

    /// RXJ+ / RXJ- from outside the automaton: a Protocol-Reject concerning this protocol
    /// (the link calls this on an NCP with `permitted = false` when LCP receives a Protocol-Reject
    /// for it; LCP itself decides on Protocol-Rejects it receives).
    pub fn handle_reject(&mut self, now: Instant, permitted: bool, reason: &str) {
        if !permitted {
            self.finish_reason = Some(reason.to_owned());
        }
        let event = if permitted {
            Event::RxjPlus
        } else {
            Event::RxjMinus
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
                    let mut reason = String::from("peer requested termination");
                    if !parsed.data.is_empty() {
                        reason.push_str(": ");
                        reason.push_str(&String::from_utf8_lossy(
                            &parsed.data[..parsed.data.len().min(128)],
                        ));
                    }
                    self.finish_reason = Some(reason);
                }
                self.apply(now, Event::Rtr, &mut context);
            }
            Code::TerminateAck => self.apply(now, Event::Rta, &mut context),
            Code::CodeReject => {
                let Some(&rejected) = parsed.data.first() else {
                    self.counters.malformed += 1;
                    return;
                };
                if self.protocol.code_reject_permitted(rejected) {
                    self.apply(now, Event::RxjPlus, &mut context);
                } else {
                    self.finish_reason = Some(format!(
                        "{} Code-Reject of code {:?}",
                        self.protocol.name(),
                        Code::from(rejected)
                    ));
                    self.apply(now, Event::RxjMinus, &mut context);
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
                    OtherCode::Unknown => self.apply(now, Event::Ruc, &mut context),
                    OtherCode::Handled => self.apply(now, Event::Rxr, &mut context),
                    OtherCode::Reply {
                        code,
                        identifier,
                        data,
                    } => {
                        context.reply = Some((code, identifier, data));
                        self.apply(now, Event::Rxr, &mut context);
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
            Event::TimeoutPlus
        } else {
            Event::TimeoutMinus
        };
        if event == Event::TimeoutMinus && self.finish_reason.is_none() {
            let what = if self.state.is_negotiating() {
                "Configure"
            } else {
                "Terminate"
            };
            self.finish_reason = Some(format!(
                "{}: timeout sending {what}-Requests",
                self.protocol.name()
            ));
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
        debug!(
            "{}: reply id={:#x} does not answer our request id={:#x}, discarded",
            self.protocol.name(),
            identifier,
            self.request_identifier
        );
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
        if old == State::RequestSent && self.request_unanswered && !self.heard_from_peer {
            debug!(
                "{}: the peer's first Configure-Request: ours may have been lost, sent again",
                self.protocol.name()
            );
            let bytes = packet::build(
                Code::ConfigureRequest,
                self.request_identifier,
                &self.request_options,
            );
            self.queue(bytes);
            self.restart_deadline = now.checked_add(self.config.restart_interval);
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
            self.apply(now, Event::RcrPlus, &mut context);
            return;
        }
        let (_, plus) = transition(old, Event::RcrPlus).unwrap_or((old, &[]));
        let (_, minus) = transition(old, Event::RcrMinus).unwrap_or((old, &[]));
        // Actions before sca/scn are the same for both events (tld, irc, scr): run them first so
        // the protocol is reset before it records what the peer asks for.
        let split = plus
            .iter()
            .position(|a| matches!(a, Action::Sca | Action::Scn))
            .unwrap_or(plus.len());
        let prefix_matches = minus.len() >= split && minus[..split] == plus[..split];
        let (prefix, _) = plus.split_at(if prefix_matches { split } else { 0 });
        let next_if_good = transition(old, Event::RcrPlus).map_or(old, |(s, _)| s);
        for &action in prefix {
            self.execute(now, old, next_if_good, Event::RcrPlus, action, &mut context);
        }
        let allow_nak = self.naks_sent < self.config.max_failure;
        let mut reply = Vec::new();
        let verdict = self
            .protocol
            .check_request(parsed.data, allow_nak, &mut reply);
        let (event, nak_code) = match verdict {
            RequestVerdict::Ack => (Event::RcrPlus, None),
            RequestVerdict::Nak if allow_nak => (Event::RcrMinus, Some(Code::ConfigureNak)),
            RequestVerdict::Nak | RequestVerdict::Reject => {
                (Event::RcrMinus, Some(Code::ConfigureReject))
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
        self.apply(now, Event::Rca, &mut context);
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
                    Err(NegotiationFailure(format!(
                        "{}: negotiation does not converge ({} Configure-Naks received)",
                        self.protocol.name(),
                        self.naks_received - 1
                    )))
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
                debug!("{}: negotiation failed: {failure}", self.protocol.name());
                self.close(now, &failure.0);
                return;
            }
        }
        self.apply(now, Event::Rcn, &mut context);
    }

    fn apply(&mut self, now: Instant, event: Event, context: &mut Context<'_>) {
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
    }

    fn execute(
        &mut self,
        now: Instant,
        old: State,
        next: State,
        event: Event,
        action: Action,
        context: &mut Context<'_>,
    ) {
        match action {
            Action::Tlu => {
                self.finish_reason = None;
                self.protocol.this_layer_up();
                self.push_event(FsmEvent::Up);
            }
            Action::Tld => {
                self.protocol.this_layer_down();
                self.push_event(FsmEvent::Down);
            }
            Action::Tls => self.push_event(FsmEvent::Started),
            Action::Tlf => {
                if self.passive && event == Event::TimeoutMinus && old.is_negotiating() {
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
                    .unwrap_or_else(|| format!("{} finished", self.protocol.name()));
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
        event: Event,
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
        let retransmission = event == Event::TimeoutPlus
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

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1661 §4.1, cell by cell, as printed in the RFC (footnote letters kept).
    const RFC_TABLE: [(&str, [&str; 10]); 16] = [
        //            Initial   Starting     Closed       Stopped          Closing   Stopping  Req-Sent     Ack-Rcvd     Ack-Sent     Opened
        (
            "Up",
            ["2", "irc,scr/6", "-", "-", "-", "-", "-", "-", "-", "-"],
        ),
        (
            "Down",
            ["-", "-", "0", "tls/1", "0", "1", "1", "1", "1", "tld/1"],
        ),
        (
            "Open",
            [
                "tls/1",
                "1",
                "irc,scr/6",
                "3r",
                "5r",
                "5r",
                "6",
                "7",
                "8",
                "9r",
            ],
        ),
        (
            "Close",
            [
                "0",
                "tlf/0",
                "2",
                "2",
                "4",
                "4",
                "irc,str/4",
                "irc,str/4",
                "irc,str/4",
                "tld,irc,str/4",
            ],
        ),
        (
            "TO+",
            [
                "-", "-", "-", "-", "str/4", "str/5", "scr/6", "scr/6", "scr/8", "-",
            ],
        ),
        (
            "TO-",
            [
                "-", "-", "-", "-", "tlf/2", "tlf/3", "tlf/3p", "tlf/3p", "tlf/3p", "-",
            ],
        ),
        (
            "RCR+",
            [
                "-",
                "-",
                "sta/2",
                "irc,scr,sca/8",
                "4",
                "5",
                "sca/8",
                "sca,tlu/9",
                "sca/8",
                "tld,scr,sca/8",
            ],
        ),
        (
            "RCR-",
            [
                "-",
                "-",
                "sta/2",
                "irc,scr,scn/6",
                "4",
                "5",
                "scn/6",
                "scn/7",
                "scn/6",
                "tld,scr,scn/6",
            ],
        ),
        (
            "RCA",
            [
                "-",
                "-",
                "sta/2",
                "sta/3",
                "4",
                "5",
                "irc/7",
                "scr/6x",
                "irc,tlu/9",
                "tld,scr/6x",
            ],
        ),
        (
            "RCN",
            [
                "-",
                "-",
                "sta/2",
                "sta/3",
                "4",
                "5",
                "irc,scr/6",
                "scr/6x",
                "irc,scr/8",
                "tld,scr/6x",
            ],
        ),
        (
            "RTR",
            [
                "-",
                "-",
                "sta/2",
                "sta/3",
                "sta/4",
                "sta/5",
                "sta/6",
                "sta/6",
                "sta/6",
                "tld,zrc,sta/5",
            ],
        ),
        (
            "RTA",
            [
                "-",
                "-",
                "2",
                "3",
                "tlf/2",
                "tlf/3",
                "6",
                "6",
                "8",
                "tld,scr/6",
            ],
        ),
        (
            "RUC",
            [
                "-", "-", "scj/2", "scj/3", "scj/4", "scj/5", "scj/6", "scj/7", "scj/8", "scj/9",
            ],
        ),
        ("RXJ+", ["-", "-", "2", "3", "4", "5", "6", "6", "8", "9"]),
        (
            "RXJ-",
            [
                "-",
                "-",
                "tlf/2",
                "tlf/3",
                "tlf/2",
                "tlf/3",
                "tlf/3",
                "tlf/3",
                "tlf/3",
                "tld,irc,str/5",
            ],
        ),
        (
            "RXR",
            ["-", "-", "2", "3", "4", "5", "6", "7", "8", "ser/9"],
        ),
    ];

    fn parse_cell(cell: &str) -> Option<(State, Vec<Action>)> {
        if cell == "-" {
            return None;
        }
        let (actions, state) = cell.rsplit_once('/').unwrap_or(("", cell));
        let digit = state.trim_end_matches(['r', 'p', 'x']);
        let state = State::ALL[digit.parse::<usize>().unwrap()];
        let actions = actions
            .split(',')
            .filter(|a| !a.is_empty())
            .map(|a| match a {
                "tlu" => Action::Tlu,
                "tld" => Action::Tld,
                "tls" => Action::Tls,
                "tlf" => Action::Tlf,
                "irc" => Action::Irc,
                "zrc" => Action::Zrc,
                "scr" => Action::Scr,
                "sca" => Action::Sca,
                "scn" => Action::Scn,
                "str" => Action::Str,
                "sta" => Action::Sta,
                "scj" => Action::Scj,
                "ser" => Action::Ser,
                other => panic!("unknown action {other}"),
            })
            .collect();
        Some((state, actions))
    }

    #[test]
    fn transition_matches_rfc1661_table_cell_by_cell() {
        let mut cells = 0;
        for (row, (event, (name, cols))) in Event::ALL.iter().zip(RFC_TABLE.iter()).enumerate() {
            for (col, (state, cell)) in State::ALL.iter().zip(cols.iter()).enumerate() {
                let expected = parse_cell(cell);
                let got = transition(*state, *event).map(|(s, a)| (s, a.to_vec()));
                assert_eq!(
                    got, expected,
                    "row {row} {name} ({event:?}), column {col} {state:?}"
                );
                cells += 1;
            }
        }
        assert_eq!(cells, 160);
    }

    #[test]
    fn rcr_plus_and_minus_share_the_actions_before_the_answer() {
        for state in State::ALL {
            let plus = transition(state, Event::RcrPlus);
            let minus = transition(state, Event::RcrMinus);
            let (Some((_, plus)), Some((_, minus))) = (plus, minus) else {
                continue;
            };
            let split = plus
                .iter()
                .position(|a| matches!(a, Action::Sca | Action::Scn));
            if let Some(split) = split {
                assert_eq!(plus[..split], minus[..split], "{state:?}");
            }
        }
    }

    /// A protocol with one option (type 1, 2 data bytes) whose answers tests script.
    #[derive(Debug, Default)]
    struct TestProtocol {
        value: u16,
        verdict: Option<RequestVerdict>,
        fail_on_reject: bool,
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
                Err(NegotiationFailure("option 1 is required".into()))
            } else {
                Ok(())
            }
        }
        fn this_layer_up(&mut self) {
            self.ups += 1;
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
        // from the peer, so ours goes out again first (same identifier), in case the peer was
        // not listening yet when it was sent.
        fsm.handle_input(t0, &pkt(1, 0x42, &[1, 4, 0, 7]));
        assert_eq!(
            sent(&mut fsm),
            vec![request.clone(), pkt(2, 0x42, &[1, 4, 0, 7])]
        );
        assert_eq!(fsm.counters().early_retransmissions, 1);
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
    fn request_lost_before_the_peer_listened_is_sent_again_at_its_first_request() {
        let (mut a, t0) = fsm();
        let (mut b, _) = fsm();
        let lost = start(&mut a, t0);
        let later = t0 + Duration::from_millis(200);
        let first_of_b = start(&mut b, later);
        a.handle_input(later, &first_of_b);
        let out = sent(&mut a);
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0], lost,
            "our request again, same identifier, before the Ack"
        );
        assert_eq!(out[1][0], 2);
        for packet in &out {
            b.handle_input(later, packet);
        }
        settle(&mut a, &mut b, later);
        assert_eq!((a.state(), b.state()), (State::Opened, State::Opened));
        assert_eq!((a.protocol().ups, b.protocol().ups), (1, 1));
        assert_eq!(a.counters().early_retransmissions, 1);
    }

    /// Both requests crossed and both arrived: both sides send theirs again, and the copies
    /// cause no renegotiation: each peer answers the copy in Ack-Sent and stays there, and the
    /// second Ack of each request is discarded as a duplicate.
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
        assert_eq!(a.counters().unexpected_identifier, 1);
        assert_eq!(b.counters().unexpected_identifier, 1);
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
                reason: "TEST: timeout sending Configure-Requests".into()
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
        fsm.close(t0, "User request");
        assert_eq!(fsm.state(), State::Closed);
        assert_eq!(
            events(&mut fsm),
            vec![FsmEvent::Finished {
                reason: "User request".into()
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
        fsm.close(t0, "User request");
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
                reason: "User request".into()
            }]
        );
    }

    #[test]
    fn terminate_ack_finishes_closing() {
        let (mut fsm, t0) = fsm();
        start(&mut fsm, t0);
        fsm.close(t0, "bye");
        let _ = sent(&mut fsm);
        fsm.handle_input(t0, &pkt(6, 2, &[]));
        assert_eq!(fsm.state(), State::Closed);
        assert_eq!(
            events(&mut fsm),
            vec![FsmEvent::Finished {
                reason: "bye".into()
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
                reason: "peer requested termination: going away".into()
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
    fn negotiation_failure_closes_with_the_reason() {
        let (mut fsm, t0) = fsm();
        fsm.protocol_mut().fail_on_reject = true;
        start(&mut fsm, t0);
        fsm.handle_input(t0, &pkt(4, 1, &[1, 4, 0, 0]));
        assert_eq!(fsm.state(), State::Closing);
        assert_eq!(sent(&mut fsm), vec![pkt(5, 2, b"option 1 is required")]);
        fsm.handle_input(t0, &pkt(6, 2, &[]));
        assert_eq!(
            events(&mut fsm),
            vec![FsmEvent::Finished {
                reason: "option 1 is required".into()
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
