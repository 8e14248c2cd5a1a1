//! The answer sequence for a PPP server: init, count `RING`s, `ATA`, `CONNECT`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use ppp_core::CloseReason;
use tracing::debug;

use crate::engine::{AtCommand, AtEngine, CommandId, EngineConfig, EngineState};
use crate::error::ModemError;
use crate::event::{DisconnectReason, ModemEvent, Urc, impl_modem_driver};

/// The answer settings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AnswerConfig {
    /// Init commands, each expecting `OK`. Default: `ATZ`, `ATE0V1`, `ATS0=0` (the modem must not
    /// auto-answer: we count the rings).
    pub init: Vec<String>,
    /// The timeout of the init commands (default 5 s).
    pub command_timeout: Duration,
    /// Answer at this many `RING`s (default 1; at least 1).
    pub ring_count: u32,
    /// Start counting again when no `RING` came for this long (default 15 s).
    pub ring_reset_after: Duration,
    /// How long to wait for `CONNECT` after `ATA` (default 60 s).
    pub answer_timeout: Duration,
    /// A direct cable with no modem: no AT at all, connected at once on `start`.
    pub null_modem: bool,
    /// The engine's settings.
    pub engine: EngineConfig,
}

impl Default for AnswerConfig {
    fn default() -> Self {
        Self {
            init: vec!["ATZ".into(), "ATE0V1".into(), "ATS0=0".into()],
            command_timeout: Duration::from_secs(5),
            ring_count: 1,
            ring_reset_after: Duration::from_secs(15),
            answer_timeout: Duration::from_secs(60),
            null_modem: false,
            engine: EngineConfig::default(),
        }
    }
}

/// Where the answerer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AnswererState {
    /// Not started.
    Idle,
    /// Sending the init strings.
    Initializing,
    /// Waiting for `RING`s.
    WaitingForRing,
    /// `ATA` sent.
    Answering,
    /// Online: the serial bytes are PPP.
    Online,
    /// Hanging up.
    HangingUp,
    /// An init string failed ([`ModemEvent::Failed`] says why); `start` may be called again.
    Failed,
}

/// The answer state machine, on an [`AtEngine`].
///
/// [`open`](Self::open) sends the init strings, then waits for [`AnswerConfig::ring_count`]
/// `RING`s, sends `ATA` and at `CONNECT` emits [`ModemEvent::Connected`]. If the answer fails
/// (`NO CARRIER`, timeout) it goes back to waiting; when a call ends ([`ModemEvent::Disconnected`])
/// it re-runs the init strings and waits for the next call. With
/// [`AnswerConfig::null_modem`] there is no AT at all: `open` connects at once, and
/// `close` drops DTR and ends in the idle state.
#[derive(Debug)]
pub struct Answerer {
    config: AnswerConfig,
    engine: AtEngine,
    state: AnswererState,
    pending: Option<(CommandId, Option<usize>)>,
    rings: u32,
    last_ring: Option<Instant>,
    null_online: bool,
    dtr_up_at: Option<Instant>,
    events: VecDeque<ModemEvent>,
}

impl Answerer {
    /// An answerer, idle.
    pub fn new(config: AnswerConfig) -> Self {
        Self {
            engine: AtEngine::new(config.engine.clone()),
            config,
            state: AnswererState::Idle,
            pending: None,
            rings: 0,
            last_ring: None,
            null_online: false,
            dtr_up_at: None,
            events: VecDeque::new(),
        }
    }

    /// Starts: init then wait for rings (or, null-modem, connect at once). Possible when idle
    /// or failed.
    pub fn open(&mut self, now: Instant) -> Result<(), ModemError> {
        if !matches!(self.state, AnswererState::Idle | AnswererState::Failed)
            || self.engine.state() != EngineState::Command
        {
            return Err(ModemError::InvalidState {
                operation: "starting the answerer",
                state: "busy",
            });
        }
        if self.config.null_modem {
            debug!("answerer: null modem, connected");
            self.state = AnswererState::Online;
            self.null_online = true;
            self.events.push_back(ModemEvent::Connected {
                rate: None,
                text: None,
                initial_data: Vec::new(),
            });
            return Ok(());
        }
        self.init_step(now, 0);
        self.pump(now);
        Ok(())
    }

    /// Hangs up the current call (see [`AtEngine::hang_up`]); afterwards the answerer waits for
    /// the next call (null modem: drops DTR, then idles).
    pub fn close(&mut self, now: Instant, reason: CloseReason) {
        debug!("answerer: closing: {reason}");
        if self.null_online {
            self.null_online = false;
            self.state = AnswererState::HangingUp;
            self.events.push_back(ModemEvent::SetDtr(false));
            self.dtr_up_at = Some(now + self.config.engine.dtr_low_time);
            return;
        }
        if matches!(self.state, AnswererState::Online | AnswererState::Answering) {
            self.state = AnswererState::HangingUp;
            self.pending = None;
            self.engine.hang_up(now);
            self.pump(now);
        }
    }

    /// The adapter saw carrier (DCD) drop.
    pub fn carrier_lost(&mut self, now: Instant) {
        if self.null_online {
            self.null_online = false;
            self.state = AnswererState::Idle;
            self.events.push_back(ModemEvent::Disconnected {
                reason: DisconnectReason::CarrierLost,
            });
            return;
        }
        self.engine.carrier_lost(now);
        self.pump(now);
    }

    /// Where the answerer is.
    pub fn state(&self) -> AnswererState {
        self.state
    }

    /// The rings counted for the current call.
    pub fn rings(&self) -> u32 {
        self.rings
    }

    /// The engine underneath.
    pub fn engine(&self) -> &AtEngine {
        &self.engine
    }

    /// Whether the line is online.
    pub fn is_online(&self) -> bool {
        self.null_online || self.engine.is_online()
    }

    /// Bytes received from the modem at `now` (while online, keep feeding them here as well as
    /// to PPP so that `NO CARRIER` is seen; ignored in null-modem mode).
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        if self.config.null_modem {
            return;
        }
        self.engine.handle_input(now, bytes);
        self.pump(now);
    }

    /// The clock reached `now`. A spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.dtr_up_at.is_some_and(|at| at <= now) {
            self.dtr_up_at = None;
            self.state = AnswererState::Idle;
            self.events.push_back(ModemEvent::SetDtr(true));
            self.events.push_back(ModemEvent::Disconnected {
                reason: DisconnectReason::HangUp,
            });
        }
        self.engine.handle_timeout(now);
        self.pump(now);
    }

    /// The next bytes to write to the modem.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.engine.poll_transmit()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ModemEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.engine.poll_timeout(), self.dtr_up_at]
            .into_iter()
            .flatten()
            .min()
    }

    fn init_step(&mut self, now: Instant, index: usize) {
        match self.config.init.get(index) {
            Some(text) => {
                self.state = AnswererState::Initializing;
                let command = AtCommand::new(text.clone(), self.config.command_timeout);
                match self.engine.enqueue(now, command) {
                    Ok(id) => self.pending = Some((id, Some(index))),
                    Err(error) => self.fail(error),
                }
            }
            None => self.wait_for_ring(),
        }
    }

    fn wait_for_ring(&mut self) {
        debug!("answerer: waiting for RING");
        self.state = AnswererState::WaitingForRing;
        self.rings = 0;
        self.last_ring = None;
    }

    fn fail(&mut self, error: ModemError) {
        debug!("answerer: failed: {error}");
        self.state = AnswererState::Failed;
        self.pending = None;
        self.engine.cancel_all();
        self.events.push_back(ModemEvent::Failed(error));
    }

    fn on_ring(&mut self, now: Instant) {
        if self.state != AnswererState::WaitingForRing {
            return;
        }
        if self
            .last_ring
            .is_some_and(|last| now.saturating_duration_since(last) >= self.config.ring_reset_after)
        {
            self.rings = 0;
        }
        self.rings += 1;
        self.last_ring = Some(now);
        debug!("answerer: RING {}/{}", self.rings, self.config.ring_count);
        if self.rings >= self.config.ring_count.max(1) {
            self.state = AnswererState::Answering;
            let command = AtCommand::connect("ATA", self.config.answer_timeout);
            match self.engine.enqueue(now, command) {
                Ok(id) => self.pending = Some((id, None)),
                Err(error) => self.fail(error),
            }
        }
    }

    fn pump(&mut self, now: Instant) {
        while let Some(event) = self.engine.poll_event() {
            match event {
                ModemEvent::CommandDone {
                    id,
                    command,
                    result,
                } => {
                    // Every command is the answerer's own: a stale one (cancelled by a
                    // hang-up) is dropped.
                    let Some((_, init_index)) = self.pending.filter(|(p, _)| *p == id) else {
                        continue;
                    };
                    self.pending = None;
                    match (init_index, result) {
                        (Some(index), Ok(outcome)) if outcome.is_success() => {
                            self.init_step(now, index + 1);
                        }
                        (Some(_), Ok(outcome)) => self.fail(ModemError::CommandFailed {
                            command,
                            result: outcome.final_result,
                        }),
                        (Some(_), Err(error)) => self.fail(error),
                        (None, Ok(outcome)) if outcome.is_success() => {}
                        (None, Ok(outcome)) => {
                            debug!("answerer: ATA gave {}", outcome.final_result);
                            self.wait_for_ring();
                        }
                        (None, Err(error)) => {
                            debug!("answerer: ATA: {error}");
                            self.state = AnswererState::HangingUp;
                            self.engine.hang_up(now);
                        }
                    }
                }
                ModemEvent::Urc(Urc::Ring) => {
                    self.events.push_back(ModemEvent::Urc(Urc::Ring));
                    self.on_ring(now);
                }
                ModemEvent::Connected { .. } => {
                    debug!("answerer: connected");
                    self.state = AnswererState::Online;
                    self.events.push_back(event);
                }
                ModemEvent::Disconnected { .. } => {
                    self.events.push_back(event);
                    // Ready for the next call.
                    self.init_step(now, 0);
                }
                other => self.events.push_back(other),
            }
        }
    }
}

impl_modem_driver!(Answerer);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{CallBehaviour, Harness, SimConfig, SimModem};

    const SEC: Duration = Duration::from_secs(1);

    fn harness(config: AnswerConfig, sim: SimConfig) -> Harness<Answerer> {
        let t0 = Instant::now();
        let mut answerer = Answerer::new(config);
        answerer.open(t0).unwrap();
        let mut h = Harness::new(answerer, SimModem::new(sim), t0);
        h.run_until(t0 + SEC);
        h
    }

    fn rings(h: &Harness<Answerer>) -> usize {
        h.event_list()
            .iter()
            .filter(|e| matches!(e, ModemEvent::Urc(Urc::Ring)))
            .count()
    }

    #[test]
    fn answers_at_the_ring_count() {
        let config = AnswerConfig {
            ring_count: 3,
            ..AnswerConfig::default()
        };
        let mut h = harness(config, SimConfig::default());
        assert_eq!(h.machine.state(), AnswererState::WaitingForRing);
        let now = h.now;
        h.modem.ring(now, 5);
        let event = h
            .run_until_event(60 * SEC, |e| matches!(e, ModemEvent::Connected { .. }))
            .unwrap();
        assert_eq!(
            event,
            ModemEvent::Connected {
                rate: Some(33600),
                text: Some("33600".into()),
                initial_data: Vec::new()
            }
        );
        assert_eq!(rings(&h), 3);
        // Third ring at 2 ring intervals after the first.
        assert_eq!(h.now, now + 12 * SEC);
        assert_eq!(h.modem.commands().last().unwrap().1, "ATA");
        assert_eq!(h.machine.state(), AnswererState::Online);
    }

    #[test]
    fn too_few_rings_do_not_answer_and_the_count_resets() {
        let config = AnswerConfig {
            ring_count: 2,
            ..AnswerConfig::default()
        };
        let mut h = harness(config, SimConfig::default());
        let now = h.now;
        h.modem.ring(now, 1);
        h.run_until(now + 60 * SEC);
        assert_eq!(h.machine.rings(), 1);
        assert_eq!(h.machine.state(), AnswererState::WaitingForRing);
        // A new call long after: counting starts again, so one ring is still not enough...
        let now = h.now;
        h.modem.ring(now, 1);
        h.run_until(now + SEC);
        assert_eq!(h.machine.rings(), 1);
        // ...but two are.
        let now = h.now;
        h.modem.ring(now, 2);
        let event = h.run_until_event(30 * SEC, |e| matches!(e, ModemEvent::Connected { .. }));
        assert!(event.is_some());
    }

    #[test]
    fn no_carrier_goes_back_to_waiting() {
        let mut h = harness(
            AnswerConfig::default(),
            SimConfig {
                answer: CallBehaviour::NoCarrier,
                ..SimConfig::default()
            },
        );
        let now = h.now;
        h.modem.ring(now, 1);
        h.run_until(now + SEC);
        assert_eq!(h.machine.state(), AnswererState::WaitingForRing);
        assert_eq!(h.machine.rings(), 0);
        assert!(
            !h.event_list()
                .iter()
                .any(|e| matches!(e, ModemEvent::Failed(_)))
        );
    }

    #[test]
    fn after_a_call_it_waits_for_the_next() {
        let mut h = harness(
            AnswerConfig::default(),
            SimConfig {
                drop_call_after: Some(10 * SEC),
                ..SimConfig::default()
            },
        );
        let now = h.now;
        h.modem.ring(now, 1);
        h.run_until_event(10 * SEC, |e| matches!(e, ModemEvent::Connected { .. }))
            .unwrap();
        h.run_until_event(20 * SEC, |e| matches!(e, ModemEvent::Disconnected { .. }))
            .unwrap();
        h.run_until(h.now + SEC);
        assert_eq!(h.machine.state(), AnswererState::WaitingForRing);
        let now = h.now;
        h.modem.ring(now, 1);
        let event = h.run_until_event(10 * SEC, |e| matches!(e, ModemEvent::Connected { .. }));
        assert!(event.is_some());
        assert_eq!(h.modem.calls(), 2);
    }

    #[test]
    fn null_modem_connects_at_once() {
        let t0 = Instant::now();
        let mut answerer = Answerer::new(AnswerConfig {
            null_modem: true,
            ..AnswerConfig::default()
        });
        answerer.open(t0).unwrap();
        assert!(answerer.is_online());
        assert_eq!(
            answerer.poll_event(),
            Some(ModemEvent::Connected {
                rate: None,
                text: None,
                initial_data: Vec::new()
            })
        );
        assert_eq!(answerer.poll_transmit(), None);
        answerer.handle_input(t0, b"\r\nNO CARRIER\r\n");
        assert!(answerer.is_online(), "no AT interpretation on a null modem");
        answerer.close(t0, CloseReason::UserRequest);
        assert_eq!(answerer.poll_event(), Some(ModemEvent::SetDtr(false)));
        let at = answerer.poll_timeout().unwrap();
        answerer.handle_timeout(at);
        assert_eq!(answerer.poll_event(), Some(ModemEvent::SetDtr(true)));
        assert!(matches!(
            answerer.poll_event(),
            Some(ModemEvent::Disconnected { .. })
        ));
        assert_eq!(answerer.state(), AnswererState::Idle);
    }

    #[test]
    fn init_failure_is_reported() {
        let t0 = Instant::now();
        let mut answerer = Answerer::new(AnswerConfig {
            init: vec!["AT+BOGUS".into()],
            ..AnswerConfig::default()
        });
        answerer.open(t0).unwrap();
        let mut h = Harness::new(answerer, SimModem::new(SimConfig::default()), t0);
        let event = h.run_until_event(10 * SEC, |e| matches!(e, ModemEvent::Failed(_)));
        assert!(matches!(
            event,
            Some(ModemEvent::Failed(ModemError::CommandFailed { .. }))
        ));
    }
}
