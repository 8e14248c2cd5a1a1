//! [`CcpSession`]: the CCP automaton, the data transforms it negotiated and the Reset-Request
//! timer, behind the usual sans-IO verbs.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use ppp_core::{CloseReason, Machine};
use ppp_frame::Protocol;
use ppp_lcp::fsm::{FinishReason, Fsm, FsmConfig, FsmEvent, NegotiationFailure, State};
use ppp_lcp::packet::Code;
use tracing::{debug, info};

use crate::CcpError;
use crate::ccp::{Ccp, CcpConfig, CcpNegotiated};
use crate::mppe::{self, MppeKeys};
use crate::transform::{Compressor, Decompressor};

/// How long a Reset-Request waits for its Reset-Ack before another may be sent (pppd's
/// `RACKTIMEOUT`).
pub const RESET_ACK_TIMEOUT: Duration = Duration::from_secs(1);

/// What the owner of a [`CcpSession`] must react to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CcpEvent {
    /// CCP is Opened; datagrams now go through [`CcpSession::compress`] and
    /// [`CcpSession::decompress`].
    Up(CcpNegotiated),
    /// CCP left Opened; datagrams go out uncompressed (or are dropped if encryption is
    /// required) until the next `Up`.
    Down,
    /// CCP gave up (timeout, Terminate, negotiation failure). Unless encryption is required the
    /// link goes on without compression.
    Finished {
        /// Why.
        reason: FinishReason,
    },
    /// The link must go down (pppd closes LCP): encryption is required and could not be
    /// negotiated, or MPPE lost sync beyond repair.
    LinkFailure {
        /// Why; its words go into the LCP Terminate-Request.
        reason: CcpFailure,
    },
}

/// Why CCP takes the link down.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CcpFailure {
    /// Encryption is required and could not be agreed.
    NegotiationFailed(NegotiationFailure),
    /// Encryption is required and CCP finished.
    Finished(FinishReason),
    /// The compressor or decompressor failed beyond repair (MPPE lost sync, keys missing).
    DataPath(CcpError),
}

impl fmt::Display for CcpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CcpFailure::NegotiationFailed(failure) => write!(f, "{failure}"),
            CcpFailure::Finished(reason) => {
                write!(f, "CCP finished ({reason}), encryption required")
            }
            CcpFailure::DataPath(error) => write!(f, "{error}"),
        }
    }
}

/// What to do with an outgoing datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transmit {
    /// Send this information field with protocol 0x00FD.
    Compressed(Vec<u8>),
    /// Send the datagram as it is.
    Uncompressed,
    /// Do not send it: encryption is required and not in place.
    Drop,
}

/// CCP on the RFC 1661 automaton plus the compressor and decompressor it negotiated.
///
/// Inputs: [`open`](Self::open), [`up`](Self::up), [`down`](Self::down),
/// [`close`](Self::close), [`handle_input`](Self::handle_input) (CCP packets, protocol
/// 0x80FD), [`handle_timeout`](Self::handle_timeout). Outputs: [`poll_transmit`](Self::poll_transmit)
/// (CCP packets), [`poll_event`](Self::poll_event), [`poll_timeout`](Self::poll_timeout); drain
/// the first two after every input. Data path: [`compress`](Self::compress) for every datagram
/// sent, [`decompress`](Self::decompress) for every 0x00FD packet received (it sends
/// Reset-Requests itself), [`receive_uncompressed`](Self::receive_uncompressed) for every
/// other datagram received.
///
/// A Reset-Request from the peer resets our compressor at once and queues the Reset-Ack:
/// send the queued CCP packets before further compressed datagrams (as the Linux kernel resets
/// its compressor when the Reset-Ack goes out). MPPE makes every datagram 4 bytes longer (2
/// header bytes, and the protocol field moves inside): lower the MTU by 4 as pppd does.
pub struct CcpSession {
    fsm: Fsm<Ccp>,
    keys: Option<MppeKeys>,
    compressor: Option<Compressor>,
    decompressor: Option<Decompressor>,
    reset_deadline: Option<Instant>,
    reset_repeat: bool,
    events: VecDeque<CcpEvent>,
    link_failed: bool,
    closed_by_owner: bool,
    /// Stateless MPPE packets in a row that did not decrypt.
    undecryptable_run: u32,
    /// Times CCP was negotiated again to bring stateless MPPE keys back in step.
    renegotiations: u64,
}

impl fmt::Debug for CcpSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CcpSession")
            .field("fsm", &self.fsm)
            .field("has_keys", &self.keys.is_some())
            .field("compressor", &self.compressor)
            .field("decompressor", &self.decompressor)
            .field("reset_deadline", &self.reset_deadline)
            .finish_non_exhaustive()
    }
}

/// Stateless MPPE packets in a row that must fail to decrypt before CCP is negotiated again
/// (one could be damaged on the way; a lost sync fails every packet).
const UNDECRYPTABLE_BEFORE_RENEGOTIATION: u32 = 2;

/// Events kept waiting for `poll_event` at most.
const MAX_QUEUED_EVENTS: usize = 16;

impl CcpSession {
    /// A session in the Initial state.
    #[must_use]
    pub fn new(config: CcpConfig, fsm_config: FsmConfig) -> Self {
        CcpSession {
            fsm: Fsm::new(Ccp::new(config), fsm_config),
            keys: None,
            compressor: None,
            decompressor: None,
            reset_deadline: None,
            reset_repeat: false,
            events: VecDeque::new(),
            link_failed: false,
            closed_by_owner: false,
            undecryptable_run: 0,
            renegotiations: 0,
        }
    }

    /// Times CCP was negotiated again because stateless MPPE lost sync (see
    /// [`decompress`](Self::decompress)).
    pub fn renegotiations(&self) -> u64 {
        self.renegotiations
    }

    /// Negotiates CCP again (the peer answers our Configure-Request by renegotiating too), so
    /// that both sides start over from the start keys. Only in Opened.
    pub fn renegotiate(&mut self, now: Instant) {
        if self.fsm.state() != State::Opened {
            return;
        }
        self.renegotiations += 1;
        self.undecryptable_run = 0;
        self.fsm.down(now);
        self.fsm.up(now);
        self.after_input(now);
    }

    /// The MPPE start keys from MS-CHAP (before the lower layer comes up). Without them MPPE is
    /// neither requested nor accepted.
    pub fn set_mppe_keys(&mut self, keys: MppeKeys) {
        self.keys = Some(keys);
        self.fsm.protocol_mut().set_mppe_available(true);
    }

    /// The automaton.
    pub fn fsm(&self) -> &Fsm<Ccp> {
        &self.fsm
    }

    /// The automaton, mutably (passive/silent options, peer MRU).
    pub fn fsm_mut(&mut self) -> &mut Fsm<Ccp> {
        &mut self.fsm
    }

    /// The protocol policy and results.
    pub fn ccp(&self) -> &Ccp {
        self.fsm.protocol()
    }

    /// The automaton's state.
    pub fn state(&self) -> State {
        self.fsm.state()
    }

    /// What was negotiated, while Opened.
    pub fn negotiated(&self) -> Option<&CcpNegotiated> {
        if self.fsm.state() == State::Opened {
            self.fsm.protocol().negotiated()
        } else {
            None
        }
    }

    /// The compressor, while Opened with a method for what we send.
    pub fn compressor(&self) -> Option<&Compressor> {
        self.compressor.as_ref()
    }

    /// The decompressor, while Opened with a method for what we receive.
    pub fn decompressor(&self) -> Option<&Decompressor> {
        self.decompressor.as_ref()
    }

    /// Administrative Open.
    pub fn open(&mut self, now: Instant) {
        self.closed_by_owner = false;
        self.fsm.open(now);
        self.after_input(now);
    }

    /// Lower layer up (the link entered the network phase).
    pub fn up(&mut self, now: Instant) {
        self.link_failed = false;
        self.fsm.up(now);
        self.after_input(now);
    }

    /// Lower layer down.
    pub fn down(&mut self, now: Instant) {
        self.fsm.down(now);
        self.after_input(now);
    }

    /// Administrative Close (no [`CcpEvent::LinkFailure`] follows from it).
    pub fn close(&mut self, now: Instant, reason: CloseReason) {
        self.closed_by_owner = true;
        self.fsm.close(now, reason);
        self.after_input(now);
    }

    /// LCP received a Protocol-Reject of CCP: the peer does not do CCP.
    pub fn handle_protocol_reject(&mut self, now: Instant) {
        self.fsm.handle_reject(now, false);
        self.after_input(now);
    }

    /// A CCP packet (protocol 0x80FD information field).
    pub fn handle_input(&mut self, now: Instant, packet: &[u8]) {
        self.fsm.handle_input(now, packet);
        self.after_input(now);
    }

    /// Timers may have expired; a spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.fsm.handle_timeout(now);
        if self.reset_deadline.is_some_and(|deadline| now >= deadline) {
            self.reset_deadline = None;
            let outstanding = self.fsm.protocol().reset_request_outstanding();
            match outstanding {
                Some(identifier) if self.reset_repeat && self.fsm.state() == State::Opened => {
                    self.reset_repeat = false;
                    self.fsm.send_packet(Code::ResetRequest, identifier, &[]);
                    self.reset_deadline = Some(now + RESET_ACK_TIMEOUT);
                }
                _ => {
                    self.reset_repeat = false;
                    self.fsm.protocol_mut().set_reset_request_outstanding(None);
                }
            }
        }
        self.after_input(now);
    }

    /// Next CCP packet to send (protocol 0x80FD information field).
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.fsm.poll_transmit()
    }

    /// Next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<CcpEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.fsm.poll_timeout(), self.reset_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// What to do with an outgoing datagram of `protocol` (LCP and CCP packets never come
    /// here).
    pub fn compress(&mut self, protocol: Protocol, payload: &[u8]) -> Transmit {
        let required = self.fsm.protocol().requires_encryption();
        if let Some(compressor) = self.compressor.as_mut() {
            if let Some(info) = compressor.compress(protocol, payload) {
                return Transmit::Compressed(info);
            }
        } else if required && mppe::encrypts(protocol) {
            return Transmit::Drop;
        }
        Transmit::Uncompressed
    }

    /// A 0x00FD packet arrived: the datagram inside, or why it was dropped. Sends a
    /// Reset-Request when the error calls for one (at most one awaiting its Reset-Ack, repeated
    /// after [`RESET_ACK_TIMEOUT`] if errors went on); a fatal error closes CCP and raises
    /// [`CcpEvent::LinkFailure`].
    pub fn decompress(
        &mut self,
        now: Instant,
        info: &[u8],
    ) -> Result<(Protocol, Vec<u8>), CcpError> {
        let Some(decompressor) = self.decompressor.as_mut() else {
            return Err(CcpError::NotNegotiated);
        };
        let stateless_mppe = matches!(
            decompressor,
            Decompressor::Mppe(d) if !d.is_stateful()
        );
        let result = decompressor.decompress(info);
        match &result {
            Ok(_) => self.undecryptable_run = 0,
            Err(error) => {
                debug!("CCP: dropped compressed packet: {error}");
                if error.is_fatal() {
                    self.link_failure(CcpFailure::DataPath(error.clone()));
                    self.fsm
                        .close(now, CloseReason::Other("Lost compression sync".into()));
                    self.after_input(now);
                } else if stateless_mppe && matches!(error, CcpError::Undecryptable { .. }) {
                    // Stateless MPPE out of step (4,096 packets lost in a row: the 12-bit count
                    // wrapped). A Reset-Request changes nothing there (every packet is flushed
                    // already); negotiating CCP again restarts both sides from the start keys.
                    self.undecryptable_run += 1;
                    if self.undecryptable_run >= UNDECRYPTABLE_BEFORE_RENEGOTIATION {
                        info!("MPPE keys out of step: negotiating CCP again");
                        self.renegotiate(now);
                    }
                } else if error.needs_reset_request() {
                    self.request_reset(now);
                }
            }
        }
        result
    }

    /// A datagram other than 0x00FD arrived: whether to deliver it. Deflate adds it to its
    /// history; unencrypted data is refused when encryption is required or the peer encrypts.
    pub fn receive_uncompressed(&mut self, protocol: Protocol, payload: &[u8]) -> bool {
        let encrypted = matches!(self.decompressor, Some(Decompressor::Mppe(_)));
        if let Some(decompressor) = self.decompressor.as_mut() {
            decompressor.add_uncompressed(protocol, payload);
        }
        let refuse =
            (encrypted || self.fsm.protocol().requires_encryption()) && mppe::encrypts(protocol);
        if refuse {
            debug!("CCP: dropped unencrypted {protocol} datagram");
        }
        !refuse
    }

    /// Send a Reset-Request (pppd `ccp_datainput`): at most one awaits its Reset-Ack; further
    /// requests meanwhile are repeated once when [`RESET_ACK_TIMEOUT`] expires.
    pub fn request_reset(&mut self, now: Instant) {
        if self.fsm.state() != State::Opened {
            return;
        }
        if self.fsm.protocol().reset_request_outstanding().is_some() {
            self.reset_repeat = true;
            return;
        }
        if Ccp::send_reset_request(&mut self.fsm).is_some() {
            self.reset_deadline = Some(now + RESET_ACK_TIMEOUT);
            self.reset_repeat = false;
        }
    }

    fn push_event(&mut self, event: CcpEvent) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    fn link_failure(&mut self, reason: CcpFailure) {
        if self.link_failed {
            return;
        }
        self.link_failed = true;
        debug!("CCP: {reason}: the link must go down");
        self.push_event(CcpEvent::LinkFailure { reason });
    }

    fn after_input(&mut self, _now: Instant) {
        while let Some(event) = self.fsm.poll_event() {
            match event {
                FsmEvent::Up => {
                    let negotiated = self
                        .fsm
                        .protocol()
                        .negotiated()
                        .copied()
                        .unwrap_or_default();
                    let keys = self.keys.as_ref();
                    let compressor = negotiated
                        .transmit
                        .map(|method| Compressor::new(method, keys))
                        .transpose();
                    let decompressor = negotiated
                        .receive
                        .map(|method| Decompressor::new(method, keys))
                        .transpose();
                    match (compressor, decompressor) {
                        (Ok(compressor), Ok(decompressor)) => {
                            self.compressor = compressor;
                            self.decompressor = decompressor;
                        }
                        (Err(error), _) | (_, Err(error)) => {
                            self.link_failure(CcpFailure::DataPath(error));
                        }
                    }
                    self.push_event(CcpEvent::Up(negotiated));
                }
                FsmEvent::Down => {
                    self.compressor = None;
                    self.decompressor = None;
                    self.reset_deadline = None;
                    self.reset_repeat = false;
                    self.push_event(CcpEvent::Down);
                }
                FsmEvent::Finished { reason } => {
                    self.compressor = None;
                    self.decompressor = None;
                    if self.fsm.protocol().requires_encryption() && !self.closed_by_owner {
                        self.link_failure(CcpFailure::Finished(reason.clone()));
                    }
                    self.push_event(CcpEvent::Finished { reason });
                }
                _ => {}
            }
        }
        let ccp = self.fsm.protocol_mut();
        let reset_compressor = ccp.take_compressor_reset();
        let reset_decompressor = ccp.take_decompressor_reset();
        let outstanding = ccp.reset_request_outstanding();
        if reset_compressor && let Some(compressor) = self.compressor.as_mut() {
            debug!("CCP: Reset-Request answered: compressor reset");
            compressor.reset();
        }
        if reset_decompressor {
            if let Some(decompressor) = self.decompressor.as_mut() {
                debug!("CCP: Reset-Ack received: decompressor reset");
                decompressor.reset();
            }
            if outstanding.is_none() {
                self.reset_deadline = None;
                self.reset_repeat = false;
            }
        }
        let lower_layer_up = !matches!(self.fsm.state(), State::Initial | State::Starting);
        if lower_layer_up && let Some(failure) = self.fsm.protocol().failure().cloned() {
            self.link_failure(CcpFailure::NegotiationFailed(failure));
        }
    }
}

impl Machine for CcpSession {
    type Event = CcpEvent;

    fn handle_input(&mut self, now: Instant, input: &[u8]) {
        CcpSession::handle_input(self, now, input);
    }

    fn handle_timeout(&mut self, now: Instant) {
        CcpSession::handle_timeout(self, now);
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        CcpSession::poll_transmit(self)
    }

    fn poll_event(&mut self) -> Option<CcpEvent> {
        CcpSession::poll_event(self)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        CcpSession::poll_timeout(self)
    }
}
