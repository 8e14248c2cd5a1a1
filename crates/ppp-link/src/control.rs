//! The per-link half of a PPP link: framing, LCP and authentication (RFC 1661 phases Dead,
//! Establish, Authenticate, Terminate, and the entry into Network).
//!
//! A [`LinkControl`] is what every member of a bundle has on its own; the network layer (NCPs,
//! CCP, datagrams) sits above one link ([`Link`](crate::Link)) or above a bundle of them
//! (Multilink). Frames of network-phase protocols come out of
//! [`receive_frame`](LinkControl::receive_frame) as [`Received::Network`] for the layer above,
//! which hands them back with [`protocol_reject`](LinkControl::protocol_reject) when it does not
//! run that protocol, and sends its own through [`send_frame`](LinkControl::send_frame).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use ppp_auth::{AuthEvent, AuthStatus, Authenticatee, Authenticator, SecretToken};
use ppp_core::{CloseReason, Random};
use ppp_frame::{DecoderStats, Protocol};
use ppp_lcp::fsm::State;
use ppp_lcp::{FinishReason, Lcp, LcpEvent, LcpNegotiated};
use tracing::{debug, info};

use crate::auth::{
    MsChapKeyMaterial, SecretEntry, SecretRequest, Verdict, VerifyRequest, is_for_authenticator,
};
use crate::framer::Framer;
use crate::reason::{AuthFailure, AuthSide, DownReason};
use crate::{AuthError, CapturedPacket, LinkConfig, LinkStats, Phase};

/// Queued events and captured packets kept at most; beyond, the oldest are dropped (never
/// a [`ControlEvent::SecretNeeded`]: at most one per authenticator is ever outstanding).
const MAX_QUEUE: usize = 1024;

/// How long the authentication machines stay after success before [`LinkControl::compact`]
/// may release them (a peer whose Success was lost sends its Response again meanwhile).
const AUTH_STATE_KEPT: std::time::Duration = std::time::Duration::from_secs(30);

/// What a [`LinkControl`] tells its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ControlEvent {
    /// The phase changed. Entering [`Phase::Network`] starts the network layer; leaving it
    /// stops it.
    Phase(Phase),
    /// LCP is Opened with these options.
    LinkUp(LcpNegotiated),
    /// Every negotiated authentication succeeded.
    Authenticated {
        /// The name the peer authenticated as, when we authenticated it.
        peer_name: Option<String>,
    },
    /// The authenticator needs a secret: answer with
    /// [`LinkControl::provide_secret`].
    SecretNeeded(SecretRequest),
    /// The authenticator checks the peer elsewhere ([`AuthenticatorConfig::external`]: RADIUS):
    /// answer with [`LinkControl::provide_verdict`].
    ///
    /// [`AuthenticatorConfig::external`]: crate::auth::AuthenticatorConfig::external
    VerifyNeeded(VerifyRequest),
    /// The peer Protocol-Rejected a network protocol we sent: stop it.
    ProtocolRejected(Protocol),
    /// The peer sent an Echo-Request or Configure-Request carrying our own magic number.
    LoopbackDetected,
    /// The link is down and the lower layer may be released.
    LinkDown {
        /// Why.
        reason: DownReason,
    },
}

/// What became of a received frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Received<'a> {
    /// LCP or authentication took it, or it was counted and dropped.
    Handled,
    /// A network-phase protocol (an NCP, CCP, a datagram, Multilink): for the layer above.
    Network {
        /// Its protocol.
        protocol: Protocol,
        /// Its information field.
        payload: &'a [u8],
    },
}

/// Framing, LCP and authentication of one link, sans-IO.
///
/// Inputs: [`up`](Self::up)/[`down`](Self::down) (lower layer), [`open`](Self::open)/
/// [`close`](Self::close), received frames ([`receive_frame`](Self::receive_frame), or
/// [`next_async_frame`](Self::next_async_frame) on a byte stream),
/// [`handle_timeout`](Self::handle_timeout), [`provide_secret`](Self::provide_secret). Outputs:
/// [`poll_transmit`](Self::poll_transmit) (bytes or frames for the lower layer),
/// [`poll_event`](Self::poll_event), [`poll_timeout`](Self::poll_timeout).
pub struct LinkControl {
    config: Arc<LinkConfig>,
    random: Random,
    phase: Phase,
    lcp: Lcp,
    authenticator: Option<Box<Authenticator>>,
    authenticatee: Option<Box<Authenticatee>>,
    authenticated_peer: Option<String>,
    /// When every authentication succeeded (the machines are released a while later).
    authenticated_at: Option<Instant>,
    /// MS-CHAP keys kept once the machines are released.
    key_material: Option<Box<MsChapKeyMaterial>>,
    framer: Framer,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<ControlEvent>,
    capture: Option<VecDeque<CapturedPacket>>,
    down_reason: Option<DownReason>,
    stats: LinkStats,
}

impl fmt::Debug for LinkControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkControl")
            .field("phase", &self.phase)
            .field("lcp", &self.lcp.state())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl LinkControl {
    /// The control half of a link with `config` (its LCP, authentication and framing parts),
    /// drawing magic numbers and challenges from `random`.
    pub fn new(config: Arc<LinkConfig>, random: Random) -> Self {
        // One LCP configuration for every link that shares `config`.
        let lcp = Lcp::with_shared_config(config.clone(), random.clone());
        LinkControl {
            framer: Framer::new(&config.framing),
            config,
            random,
            phase: Phase::Dead,
            lcp,
            authenticator: None,
            authenticatee: None,
            authenticated_peer: None,
            authenticated_at: None,
            key_material: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            capture: None,
            down_reason: None,
            stats: LinkStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The LCP machine.
    pub fn lcp(&self) -> &Lcp {
        &self.lcp
    }

    /// What LCP negotiated, while it is Opened.
    pub fn lcp_negotiated(&self) -> Option<&LcpNegotiated> {
        self.lcp.negotiated()
    }

    /// The name the peer authenticated as, once it has.
    pub fn peer_name(&self) -> Option<&str> {
        self.authenticated_peer.as_deref()
    }

    /// MS-CHAP key material for MPPE, once an MS-CHAP exchange succeeded (the one where we
    /// authenticated the peer if both directions ran MS-CHAP).
    pub fn mschap_key_material(&self) -> Option<&MsChapKeyMaterial> {
        self.authenticator
            .as_deref()
            .and_then(Authenticator::key_material)
            .or_else(|| {
                self.authenticatee
                    .as_deref()
                    .and_then(Authenticatee::key_material)
            })
            .or(self.key_material.as_deref())
    }

    /// Counters (frames, bytes, errors; the datagram counters belong to the network layer).
    pub fn stats(&self) -> LinkStats {
        let mut stats = self.stats;
        if let Some(framing) = self.framer.decoder_stats() {
            stats.framing = framing;
        }
        stats
    }

    /// The async decoder's counters (async framing only).
    pub fn framing_stats(&self) -> Option<DecoderStats> {
        self.framer.decoder_stats()
    }

    /// Starts recording every packet sent and received, for [`poll_capture`](Self::poll_capture).
    pub fn enable_capture(&mut self) {
        self.capture.get_or_insert_with(VecDeque::new);
    }

    /// The next recorded packet, if capture is on.
    #[must_use]
    pub fn poll_capture(&mut self) -> Option<CapturedPacket> {
        self.capture.as_mut()?.pop_front()
    }

    /// The lower layer is up (RFC 1661 event Up).
    pub fn up(&mut self, now: Instant) {
        if self.phase == Phase::Dead && self.lcp.state() == State::Starting {
            // Opened before, and the lower layer is back: negotiation starts over.
            self.down_reason = None;
            self.set_phase(Phase::Establish);
        }
        self.lcp.up(now);
        self.process(now);
    }

    /// The lower layer went down (carrier lost, PADT received): LCP gets its Down event, and
    /// the link reports [`ControlEvent::LinkDown`] and is Dead (RFC 1661 leaves LCP in
    /// Starting, waiting for the lower layer: [`up`](Self::up) starts over).
    pub fn down(&mut self, now: Instant) {
        self.down_reason.get_or_insert(DownReason::LowerLayerDown);
        self.lcp.down(now);
        self.process(now);
        if self.phase != Phase::Dead {
            let reason = self
                .down_reason
                .take()
                .unwrap_or(DownReason::LowerLayerDown);
            info!("link down: {reason}");
            self.framer.configure(None);
            self.authenticator = None;
            self.authenticatee = None;
            self.set_phase(Phase::Dead);
            push_bounded(&mut self.events, ControlEvent::LinkDown { reason });
        }
    }

    /// Administrative open: start negotiating once the lower layer is up.
    pub fn open(&mut self, now: Instant) {
        self.down_reason = None;
        if self.phase == Phase::Dead {
            self.set_phase(Phase::Establish);
        }
        self.lcp.open(now);
        self.process(now);
    }

    /// Administrative close: terminate the link for `reason`.
    pub fn close(&mut self, now: Instant, reason: CloseReason) {
        self.down_reason
            .get_or_insert_with(|| DownReason::Closed(reason.clone()));
        self.lcp.close(now, reason);
        self.process(now);
    }

    /// The layer above failed for good (no network protocol left, encryption impossible):
    /// terminate the link with `reason`.
    pub fn fail(&mut self, now: Instant, reason: DownReason) {
        // Logged once, as "link down: ...", when LCP finishes.
        debug!("closing the link: {reason}");
        let text = reason.terminate_text();
        self.down_reason.get_or_insert(reason);
        self.lcp.close(now, CloseReason::Other(text));
        self.set_phase(Phase::Terminate);
        self.process(now);
    }

    /// Async framing: the next whole frame in `input` (advanced past it), or `None` when the
    /// input is used up. Frames with a bad FCS and other damage are counted and skipped.
    pub fn next_async_frame(&mut self, input: &mut &[u8]) -> Option<(Protocol, Vec<u8>)> {
        loop {
            match self.framer.next_frame(input)? {
                Ok(frame) => return Some(frame),
                Err(error) => debug!("dropped a frame: {error}"),
            }
        }
    }

    /// Whether the lower layer carries a byte stream (async framing: feed
    /// [`next_async_frame`](Self::next_async_frame)) rather than whole frames.
    pub fn is_async(&self) -> bool {
        self.framer.is_async()
    }

    /// A sync frame that did not parse: counted.
    pub(crate) fn count_bad_frame(&mut self) {
        self.stats.bad_frames += 1;
    }

    /// One received frame. LCP and authentication packets are handled here; network-phase
    /// protocols are returned for the layer above once LCP is Opened (before, they are counted
    /// and dropped, RFC 1661 §3).
    pub fn receive_frame<'a>(
        &mut self,
        now: Instant,
        protocol: Protocol,
        payload: &'a [u8],
    ) -> Received<'a> {
        self.stats.frames_in += 1;
        self.stats.bytes_in += payload.len() as u64;
        self.lcp.note_traffic();
        if let Some(capture) = self.capture.as_mut() {
            push_bounded(
                capture,
                CapturedPacket {
                    at: now,
                    sent: false,
                    protocol,
                    payload: payload.to_vec(),
                },
            );
        }
        let received = match protocol {
            Protocol::Lcp => {
                self.lcp.handle_input(now, payload);
                Received::Handled
            }
            Protocol::Pap | Protocol::Chap
                if matches!(self.phase, Phase::Authenticate | Phase::Network) =>
            {
                let code = payload.first().copied().unwrap_or(0);
                let machine: Option<&mut dyn AuthMachine> = if is_for_authenticator(protocol, code)
                {
                    self.authenticator
                        .as_deref_mut()
                        .filter(|m| m.protocol() == protocol)
                        .map(|m| m as &mut dyn AuthMachine)
                } else {
                    self.authenticatee
                        .as_deref_mut()
                        .filter(|m| m.protocol() == protocol)
                        .map(|m| m as &mut dyn AuthMachine)
                };
                match machine {
                    Some(machine) => machine.input(now, payload),
                    None => self.stats.discarded += 1,
                }
                Received::Handled
            }
            Protocol::Pap | Protocol::Chap => {
                self.stats.discarded += 1;
                debug!("discarded {protocol} packet in phase {}", self.phase);
                Received::Handled
            }
            _ if self.lcp.state() == State::Opened => Received::Network { protocol, payload },
            _ => {
                self.stats.discarded += 1;
                debug!("discarded {protocol} packet before LCP is opened");
                Received::Handled
            }
        };
        self.process(now);
        received
    }

    /// The layer above does not run `protocol`: Protocol-Reject the packet (RFC 1661 §5.7).
    pub fn protocol_reject(&mut self, now: Instant, protocol: Protocol, payload: &[u8]) {
        if self.lcp.send_protocol_reject(protocol, payload) {
            self.stats.protocol_rejects_sent += 1;
            debug!("rejected unsupported protocol {protocol}");
        } else {
            self.stats.discarded += 1;
        }
        self.process(now);
    }

    /// The layer above counted a network-phase packet it dropped (early, or refused).
    pub fn count_discarded(&mut self) {
        self.stats.discarded += 1;
    }

    /// Frames and queues a packet of the layer above (an NCP packet, a datagram, a Multilink
    /// fragment).
    pub fn send_frame(&mut self, now: Instant, protocol: Protocol, payload: &[u8]) {
        self.emit(now, protocol, payload);
    }

    /// The time from [`poll_timeout`](Self::poll_timeout) has come. A spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        if due(self.lcp.poll_timeout(), now) {
            self.lcp.handle_timeout(now);
        }
        if let Some(machine) = self
            .authenticator
            .as_mut()
            .filter(|m| due(m.poll_timeout(), now))
        {
            machine.handle_timeout(now);
        }
        if let Some(machine) = self
            .authenticatee
            .as_mut()
            .filter(|m| due(m.poll_timeout(), now))
        {
            machine.handle_timeout(now);
        }
        self.process(now);
    }

    /// The answer to a [`ControlEvent::SecretNeeded`]: the peer's secret, or `None` when the
    /// name is unknown.
    ///
    /// # Errors
    ///
    /// [`AuthError::NoSecretRequest`] when nothing is outstanding (the lookup timed out, the
    /// link went down), [`AuthError::StaleSecretAnswer`] when `token` is an earlier request's.
    pub fn provide_secret(
        &mut self,
        now: Instant,
        token: SecretToken,
        entry: Option<SecretEntry>,
    ) -> Result<(), AuthError> {
        let machine = self
            .authenticator
            .as_mut()
            .ok_or(AuthError::NoSecretRequest)?;
        let result = machine.provide_secret(now, token, entry.map(|e| e.secret));
        self.process(now);
        result
    }

    /// The answer to a [`ControlEvent::VerifyNeeded`]: the verifier's verdict (RADIUS
    /// Access-Accept or Access-Reject) with the request's token.
    ///
    /// # Errors
    ///
    /// [`AuthError::NoVerifyRequest`] when nothing is outstanding (the verification timed out,
    /// the link went down), [`AuthError::StaleVerdict`] when `token` is an earlier request's.
    pub fn provide_verdict(
        &mut self,
        now: Instant,
        token: SecretToken,
        verdict: Verdict,
    ) -> Result<(), AuthError> {
        let machine = self
            .authenticator
            .as_mut()
            .ok_or(AuthError::NoVerifyRequest)?;
        let result = machine.provide_verdict(now, token, verdict);
        self.process(now);
        result
    }

    /// Releases memory an idle link does not need: empty queues, and (some time after
    /// authentication succeeded, unless the peer is re-challenged) the authentication machines,
    /// keeping the peer's name and the MS-CHAP keys. A server calls it now and then on quiet
    /// links; nothing it releases changes what the link does.
    pub fn compact(&mut self, now: Instant) {
        let rechallenges = self.authenticator.as_ref().is_some_and(|_| {
            self.config
                .auth
                .authenticator
                .rechallenge_interval
                .is_some()
        });
        if self.phase == Phase::Network
            && !rechallenges
            && self
                .authenticated_at
                .is_some_and(|at| now >= at + AUTH_STATE_KEPT)
            && (self.authenticator.is_some() || self.authenticatee.is_some())
        {
            if self.key_material.is_none() {
                self.key_material = self.mschap_key_material().cloned().map(Box::new);
            }
            self.authenticator = None;
            self.authenticatee = None;
        }
        if self.transmit.is_empty() {
            self.transmit = VecDeque::new();
        }
        if self.events.is_empty() {
            self.events = VecDeque::new();
        }
        if self.capture.as_ref().is_some_and(VecDeque::is_empty) {
            self.capture = Some(VecDeque::new());
        }
        self.lcp.compact();
    }

    /// Next bytes (async) or frame (sync) for the lower layer.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// Next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ControlEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called: the soonest of LCP
    /// (restart timer, echo) and the authentication machines.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.lcp.poll_timeout(),
            self.authenticator
                .as_deref()
                .and_then(Authenticator::poll_timeout),
            self.authenticatee
                .as_deref()
                .and_then(Authenticatee::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn emit(&mut self, now: Instant, protocol: Protocol, payload: &[u8]) {
        self.stats.frames_out += 1;
        self.stats.bytes_out += payload.len() as u64;
        if let Some(capture) = self.capture.as_mut() {
            push_bounded(
                capture,
                CapturedPacket {
                    at: now,
                    sent: true,
                    protocol,
                    payload: payload.to_vec(),
                },
            );
        }
        let frame = self.framer.encode(
            now,
            self.config.flag_time,
            self.config.headroom,
            protocol,
            payload,
        );
        self.transmit.push_back(frame);
    }

    fn set_phase(&mut self, phase: Phase) {
        if self.phase != phase {
            info!("phase {} -> {phase}", self.phase);
            self.phase = phase;
            push_bounded(&mut self.events, ControlEvent::Phase(phase));
        }
    }

    /// Runs the consequences of an input until LCP and authentication are quiet.
    fn process(&mut self, now: Instant) {
        // Bounded: machines only produce output in response to this call's inputs.
        for _ in 0..64 {
            let mut busy = false;
            while let Some(packet) = self.lcp.poll_transmit() {
                self.emit(now, Protocol::Lcp, &packet);
            }
            while let Some(event) = self.lcp.poll_event() {
                busy = true;
                self.on_lcp_event(now, event);
            }
            busy |= self.run_auth(now);
            if !busy {
                break;
            }
        }
    }

    fn on_lcp_event(&mut self, now: Instant, event: LcpEvent) {
        match event {
            LcpEvent::Started => {
                if self.phase == Phase::Dead {
                    self.set_phase(Phase::Establish);
                }
            }
            LcpEvent::Up(negotiated) => {
                info!(
                    "LCP up: mru {} mtu {} accm {:#x}/{:#x}",
                    negotiated.our_mru, negotiated.mtu, negotiated.our_accm, negotiated.peer_accm
                );
                self.framer.configure(Some(&negotiated));
                push_bounded(&mut self.events, ControlEvent::LinkUp(negotiated.clone()));
                self.start_auth(now, &negotiated);
            }
            LcpEvent::Down => {
                self.framer.configure(None);
                self.authenticator = None;
                self.authenticatee = None;
                if self.phase != Phase::Dead {
                    self.set_phase(
                        if matches!(self.lcp.state(), State::Closing | State::Stopping) {
                            Phase::Terminate
                        } else {
                            Phase::Establish
                        },
                    );
                }
            }
            LcpEvent::Finished { reason } => {
                let reason = self
                    .down_reason
                    .take()
                    .unwrap_or_else(|| down_reason_of(reason));
                info!("link down: {reason}");
                self.framer.configure(None);
                self.authenticator = None;
                self.authenticatee = None;
                self.set_phase(Phase::Dead);
                push_bounded(&mut self.events, ControlEvent::LinkDown { reason });
            }
            LcpEvent::ProtocolRejected(protocol) => {
                push_bounded(&mut self.events, ControlEvent::ProtocolRejected(protocol));
            }
            LcpEvent::EchoTimeout => {
                self.down_reason.get_or_insert(DownReason::EchoTimeout);
            }
            LcpEvent::LoopbackDetected => {
                push_bounded(&mut self.events, ControlEvent::LoopbackDetected);
            }
            LcpEvent::Identification { message } => {
                debug!("LCP: peer identifies itself as {message:?}");
            }
            LcpEvent::TimeRemaining { seconds } => {
                info!("the peer says the session ends in {seconds} s");
            }
            other => debug!("LCP: {other:?}"),
        }
    }

    fn start_auth(&mut self, now: Instant, negotiated: &LcpNegotiated) {
        if negotiated.auth_we_require.is_none() && negotiated.auth_peer_requires.is_none() {
            self.set_phase(Phase::Network);
            return;
        }
        self.set_phase(Phase::Authenticate);
        if let Some(method) = negotiated.auth_we_require {
            let mut machine = Authenticator::new(
                method,
                self.config.auth.authenticator.clone(),
                self.random.clone(),
            );
            machine.open(now);
            self.authenticator = Some(Box::new(machine));
        }
        if let Some(method) = negotiated.auth_peer_requires {
            let Some(credentials) = self.config.auth.credentials.as_ref() else {
                self.fail_inline(now, DownReason::NoCredentials { method });
                return;
            };
            let mut machine = Authenticatee::new(
                method,
                credentials.credentials(),
                self.config.auth.authenticatee.clone(),
                self.random.clone(),
            );
            machine.open(now);
            self.authenticatee = Some(Box::new(machine));
        }
    }

    /// Like [`fail`](Self::fail), from inside `process`.
    fn fail_inline(&mut self, now: Instant, reason: DownReason) {
        // Logged once, as "link down: ...", when LCP finishes.
        debug!("closing the link: {reason}");
        let text = reason.terminate_text();
        self.down_reason.get_or_insert(reason);
        self.lcp.close(now, CloseReason::Other(text));
        self.set_phase(Phase::Terminate);
    }

    /// Moves authentication along; true if anything happened.
    fn run_auth(&mut self, now: Instant) -> bool {
        let mut busy = false;
        let mut outgoing = Vec::new();
        let mut failure = None;
        if let Some(machine) = self.authenticator.as_mut() {
            while let Some(packet) = machine.poll_transmit() {
                outgoing.push((machine.protocol(), packet));
            }
            while let Some(event) = machine.poll_event() {
                match event {
                    AuthEvent::SecretNeeded(request) => {
                        busy = true;
                        self.events.push_back(ControlEvent::SecretNeeded(request));
                    }
                    AuthEvent::VerifyNeeded(request) => {
                        busy = true;
                        self.events.push_back(ControlEvent::VerifyNeeded(request));
                    }
                    AuthEvent::Succeeded { peer_name } => {
                        info!(
                            "peer authenticated as \"{}\"",
                            peer_name.as_deref().unwrap_or("")
                        );
                        self.authenticated_peer = peer_name;
                    }
                    AuthEvent::Failed(reason) => {
                        failure.get_or_insert(AuthFailure {
                            side: AuthSide::Peer,
                            method: machine.method(),
                            reason,
                        });
                    }
                    _ => {}
                }
            }
        }
        if let Some(machine) = self.authenticatee.as_mut() {
            while let Some(packet) = machine.poll_transmit() {
                outgoing.push((machine.protocol(), packet));
            }
            while let Some(event) = machine.poll_event() {
                match event {
                    AuthEvent::Succeeded { .. } => info!("we authenticated to the peer"),
                    AuthEvent::Failed(reason) => {
                        failure.get_or_insert(AuthFailure {
                            side: AuthSide::Us,
                            method: machine.method(),
                            reason,
                        });
                    }
                    _ => {}
                }
            }
        }
        for (protocol, packet) in outgoing {
            busy = true;
            self.emit(now, protocol, &packet);
        }
        if let Some(failure) = failure
            && matches!(self.phase, Phase::Authenticate | Phase::Network)
        {
            self.fail_inline(now, DownReason::AuthFailed(failure));
            return true;
        }
        if self.phase == Phase::Authenticate {
            let done = self
                .authenticator
                .as_ref()
                .is_none_or(|m| m.status() == &AuthStatus::Succeeded)
                && self
                    .authenticatee
                    .as_ref()
                    .is_none_or(|m| m.status() == &AuthStatus::Succeeded);
            if done {
                push_bounded(
                    &mut self.events,
                    ControlEvent::Authenticated {
                        peer_name: self.authenticated_peer.clone(),
                    },
                );
                self.authenticated_at = Some(now);
                self.set_phase(Phase::Network);
                busy = true;
            }
        }
        busy
    }
}

/// The link's down reason for an LCP that finished on its own.
fn down_reason_of(reason: FinishReason) -> DownReason {
    match reason {
        FinishReason::Closed(reason) => DownReason::Closed(reason),
        FinishReason::PeerTerminated { message } => DownReason::PeerTerminated { message },
        FinishReason::PeerNotResponding => DownReason::EchoTimeout,
        FinishReason::LoopbackDetected => DownReason::LoopbackDetected,
        other => DownReason::LcpFailed(other),
    }
}

/// The two authentication machines, as the demultiplexer feeds them.
trait AuthMachine {
    fn input(&mut self, now: Instant, packet: &[u8]);
}

impl AuthMachine for Authenticator {
    fn input(&mut self, now: Instant, packet: &[u8]) {
        self.handle_input(now, packet);
    }
}

impl AuthMachine for Authenticatee {
    fn input(&mut self, now: Instant, packet: &[u8]) {
        self.handle_input(now, packet);
    }
}

pub(crate) fn due(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_some_and(|t| t <= now)
}

pub(crate) fn push_bounded<T>(queue: &mut VecDeque<T>, item: T) {
    if queue.len() >= MAX_QUEUE {
        queue.pop_front();
    }
    queue.push_back(item);
}
