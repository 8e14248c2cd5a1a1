//! The dial-out sequence: init strings, SIM PIN, network registration, APN, dial, `CONNECT`.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use ppp_core::CloseReason;
use tracing::debug;

use crate::engine::{AtCommand, AtEngine, CommandId, CommandOutcome, EngineConfig, EngineState};
use crate::error::{CallFailure, ModemError};
use crate::event::{ModemEvent, Urc, impl_modem_driver};
use crate::response::{FinalResult, InfoResponse, PinStatus, RegistrationKind, RegistrationStatus};
use crate::status::ModemStatus;

/// The PDP type in `AT+CGDCONT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum PdpType {
    /// `"IP"` (IPv4).
    #[default]
    Ip,
    /// `"IPV6"`.
    Ipv6,
    /// `"IPV4V6"` (dual stack).
    Ipv4v6,
}

impl PdpType {
    /// The text used in `AT+CGDCONT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ip => "IP",
            Self::Ipv6 => "IPV6",
            Self::Ipv4v6 => "IPV4V6",
        }
    }
}

/// What to dial.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DialTarget {
    /// `ATD*99#`: packet data on the default context.
    Packet,
    /// `ATD*99***<cid>#`: packet data on [`DialerConfig::cid`].
    PacketWithCid,
    /// `ATDT<number>`: a tone-dialled phone number (analog or CSD).
    Phone(String),
    /// `ATD<text>`: anything else, as given.
    Raw(String),
}

/// The dial-out settings. [`DialerConfig::cellular`] and [`DialerConfig::phone`] give sane
/// starting points; `Default` is `cellular(None)`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DialerConfig {
    /// Init commands sent first, each expecting `OK`. Cellular default: `ATZ` (reset to the
    /// stored profile), `ATE0V1` (echo off, verbose result codes), `AT+CMEE=1` (numeric
    /// `+CME ERROR` codes). Phone default: `ATZ`, `ATE0V1`.
    pub init: Vec<String>,
    /// The timeout of every command except the dial (default 5 s).
    pub command_timeout: Duration,
    /// Whether to ask `AT+CPIN?` (default true for cellular).
    pub check_pin: bool,
    /// The SIM PIN, sent with `AT+CPIN="<pin>"` only if the SIM asks for it. Never logged.
    pub pin: Option<String>,
    /// Which registrations to poll (`AT+CREG?`, `AT+CEREG?`, ...); registered when any of them
    /// says home or roaming, denied when every one that answered says denied. Empty: skip.
    /// Cellular default: `+CREG` and `+CEREG`.
    pub registration: Vec<RegistrationKind>,
    /// How often to poll registration (default 1 s).
    pub registration_poll_interval: Duration,
    /// How long to wait for registration (default 60 s).
    pub registration_timeout: Duration,
    /// Whether to ask `AT+CSQ` and `AT+COPS?` once registered, for [`ModemStatus`] (cellular
    /// default true). Their failures are ignored.
    pub query_status: bool,
    /// The APN, set with `AT+CGDCONT=<cid>,"<pdp type>","<apn>"` (none: leave the context alone).
    pub apn: Option<String>,
    /// The context id (default 1).
    pub cid: u8,
    /// The PDP type (default IP).
    pub pdp_type: PdpType,
    /// What to dial (cellular default [`DialTarget::Packet`]).
    pub target: DialTarget,
    /// How long to wait for `CONNECT` (default 60 s).
    pub dial_timeout: Duration,
    /// The engine's settings (line limit, hang-up method, guard time, ...).
    pub engine: EngineConfig,
}

impl fmt::Debug for DialerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DialerConfig")
            .field("init", &self.init)
            .field("command_timeout", &self.command_timeout)
            .field("check_pin", &self.check_pin)
            .field("pin", &self.pin.as_ref().map(|_| "<hidden>"))
            .field("registration", &self.registration)
            .field(
                "registration_poll_interval",
                &self.registration_poll_interval,
            )
            .field("registration_timeout", &self.registration_timeout)
            .field("query_status", &self.query_status)
            .field("apn", &self.apn)
            .field("cid", &self.cid)
            .field("pdp_type", &self.pdp_type)
            .field("target", &self.target)
            .field("dial_timeout", &self.dial_timeout)
            .field("engine", &self.engine)
            .finish()
    }
}

impl Default for DialerConfig {
    fn default() -> Self {
        Self::cellular(None)
    }
}

impl DialerConfig {
    /// A cellular modem: init, PIN check, registration on `+CREG`/`+CEREG`, status query, the
    /// APN on context 1 if given, `ATD*99#`.
    pub fn cellular(apn: Option<&str>) -> Self {
        Self {
            init: vec!["ATZ".into(), "ATE0V1".into(), "AT+CMEE=1".into()],
            command_timeout: Duration::from_secs(5),
            check_pin: true,
            pin: None,
            registration: vec![RegistrationKind::CircuitSwitched, RegistrationKind::Eps],
            registration_poll_interval: Duration::from_secs(1),
            registration_timeout: Duration::from_secs(60),
            query_status: true,
            apn: apn.map(Into::into),
            cid: 1,
            pdp_type: PdpType::Ip,
            target: DialTarget::Packet,
            dial_timeout: Duration::from_secs(60),
            engine: EngineConfig::default(),
        }
    }

    /// An analog (or CSD) modem dialling a phone number: init, `ATDT<number>`.
    pub fn phone(number: &str) -> Self {
        Self {
            init: vec!["ATZ".into(), "ATE0V1".into()],
            check_pin: false,
            registration: Vec::new(),
            query_status: false,
            target: DialTarget::Phone(number.into()),
            ..Self::cellular(None)
        }
    }

    /// The dial command text.
    pub fn dial_command(&self) -> String {
        match &self.target {
            DialTarget::Packet => "ATD*99#".to_owned(),
            DialTarget::PacketWithCid => format!("ATD*99***{}#", self.cid),
            DialTarget::Phone(number) => format!("ATDT{number}"),
            DialTarget::Raw(text) => format!("ATD{text}"),
        }
    }

    /// Checks that every string can be sent safely (no quotes or control characters where they
    /// would break the command line).
    pub fn validate(&self) -> Result<(), ModemError> {
        let bad = |what: &str, text: &str, quotes_ok: bool| -> Result<(), ModemError> {
            if text.is_empty()
                || text
                    .chars()
                    .any(|c| c.is_control() || (!quotes_ok && c == '"'))
            {
                return Err(ModemError::InvalidConfig {
                    reason: format!("{what} is empty or has a quote or control character"),
                });
            }
            Ok(())
        };
        for init in &self.init {
            bad("an init string", init, true)?;
        }
        if let Some(pin) = &self.pin {
            bad("the PIN", pin, false)?;
        }
        if let Some(apn) = &self.apn {
            bad("the APN", apn, false)?;
        }
        match &self.target {
            DialTarget::Phone(text) | DialTarget::Raw(text) => bad("the number", text, false)?,
            DialTarget::Packet | DialTarget::PacketWithCid => {}
        }
        Ok(())
    }
}

/// Where the dialer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DialerState {
    /// Not started.
    Idle,
    /// Sending the init strings.
    Initializing,
    /// Checking the SIM and entering the PIN.
    CheckingSim,
    /// Polling network registration.
    WaitingForRegistration,
    /// Asking signal and operator.
    QueryingStatus,
    /// Setting the APN.
    SettingApn,
    /// `ATD` sent, waiting for `CONNECT`.
    Dialing,
    /// Online: the serial bytes are PPP.
    Online,
    /// Hanging up.
    HangingUp,
    /// The call ended (or was hung up); `start` may be called again.
    Disconnected,
    /// The sequence failed ([`ModemEvent::Failed`] says why); `start` may be called again.
    Failed,
}

#[derive(Clone, Copy, Debug, Default)]
struct Round {
    registered: bool,
    denied: usize,
    answered: usize,
}

#[derive(Clone, Debug)]
enum Step {
    None,
    Init(usize),
    PinQuery,
    PinEntry,
    Registration {
        started: Instant,
        index: usize,
        round: Round,
    },
    RegistrationWait {
        started: Instant,
        until: Instant,
    },
    Status(usize),
    Apn,
    Dial,
}

/// The dial-out state machine, on an [`AtEngine`].
///
/// [`open`](Self::open) runs: the init strings; `AT+CPIN?` and, if the SIM asks, the PIN
/// (a rejected PIN fails with [`ModemError::WrongPin`]); `AT+CREG?`/`AT+CEREG?` every
/// [`DialerConfig::registration_poll_interval`] until registered (stat 1 or 5; 3 fails with
/// [`ModemError::RegistrationDenied`], and the wait is bounded by
/// [`DialerConfig::registration_timeout`]); `AT+CSQ` and `AT+COPS?`; `AT+CGDCONT`; the dial. At
/// `CONNECT` it emits [`ModemEvent::Connected`]; `BUSY`, `NO CARRIER`, `NO ANSWER` and `NO DIALTONE`
/// end in [`ModemEvent::Failed`] with [`ModemError::CallFailed`]. A dropped call gives
/// [`ModemEvent::Disconnected`]. [`close`](Self::close) ends a call (or aborts the sequence).
///
/// Commands the application queues itself with [`enqueue`](Self::enqueue) get their
/// [`ModemEvent::CommandDone`]; the dialer's own commands do not produce one.
#[derive(Debug)]
pub struct Dialer {
    config: DialerConfig,
    engine: AtEngine,
    state: DialerState,
    step: Step,
    pending: Option<CommandId>,
    own: Vec<CommandId>,
    status: ModemStatus,
    events: VecDeque<ModemEvent>,
}

impl Dialer {
    /// A dialer, idle. Fails if [`DialerConfig::validate`] does.
    pub fn new(config: DialerConfig) -> Result<Self, ModemError> {
        config.validate()?;
        Ok(Self {
            engine: AtEngine::new(config.engine.clone()),
            config,
            state: DialerState::Idle,
            step: Step::None,
            pending: None,
            own: Vec::new(),
            status: ModemStatus::default(),
            events: VecDeque::new(),
        })
    }

    /// Starts the dial-out sequence. Possible when idle, disconnected or failed.
    pub fn open(&mut self, now: Instant) -> Result<(), ModemError> {
        if !matches!(
            self.state,
            DialerState::Idle | DialerState::Disconnected | DialerState::Failed
        ) || self.engine.state() != EngineState::Command
        {
            return Err(ModemError::InvalidState {
                operation: "starting the dialer",
                state: "busy",
            });
        }
        debug!("dialer: starting");
        self.init_step(now, 0);
        self.pump(now);
        Ok(())
    }

    /// Hangs up the call, or aborts the sequence in progress (see [`AtEngine::hang_up`]). Ends
    /// with [`ModemEvent::Disconnected`]. Does nothing when idle, failed or disconnected.
    pub fn close(&mut self, now: Instant, reason: CloseReason) {
        debug!("dialer: closing: {reason}");
        if matches!(
            self.state,
            DialerState::Idle | DialerState::Disconnected | DialerState::Failed
        ) && !self.engine.is_online()
        {
            return;
        }
        debug!("dialer: hanging up");
        // The cancelled command's CommandDone is ours: swallow it.
        if let Some(id) = self.pending.take() {
            self.own.push(id);
        }
        self.step = Step::None;
        self.state = DialerState::HangingUp;
        self.engine.hang_up(now);
        self.pump(now);
    }

    /// Queues `AT+CSQ`, `AT+COPS?` and the registration queries to refresh the
    /// [`ModemStatus`]; the answers arrive as [`ModemEvent::StatusUpdated`]. Only in command mode.
    pub fn refresh_status(&mut self, now: Instant) -> Result<(), ModemError> {
        let mut texts = vec!["AT+CSQ".to_owned(), "AT+COPS?".to_owned()];
        texts.extend(
            self.config
                .registration
                .iter()
                .map(|kind| format!("AT{}?", kind.prefix())),
        );
        for text in texts {
            let id = self
                .engine
                .enqueue(now, AtCommand::new(text, self.config.command_timeout))?;
            self.own.push(id);
        }
        self.pump(now);
        Ok(())
    }

    /// Queues an application command; its outcome comes as [`ModemEvent::CommandDone`].
    pub fn enqueue(&mut self, now: Instant, command: AtCommand) -> Result<CommandId, ModemError> {
        let id = self.engine.enqueue(now, command)?;
        self.pump(now);
        Ok(id)
    }

    /// The adapter saw carrier (DCD) drop.
    pub fn carrier_lost(&mut self, now: Instant) {
        self.engine.carrier_lost(now);
        self.pump(now);
    }

    /// Where the sequence is.
    pub fn state(&self) -> DialerState {
        self.state
    }

    /// The last known signal, operator and registration.
    pub fn status(&self) -> &ModemStatus {
        &self.status
    }

    /// The configuration.
    pub fn config(&self) -> &DialerConfig {
        &self.config
    }

    /// The engine underneath (for its counters).
    pub fn engine(&self) -> &AtEngine {
        &self.engine
    }

    /// Whether the modem is online.
    pub fn is_online(&self) -> bool {
        self.engine.is_online()
    }

    /// Bytes received from the modem at `now`. While online, keep feeding the bytes here as
    /// well as to PPP, so that `NO CARRIER` is seen.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        self.engine.handle_input(now, bytes);
        self.pump(now);
    }

    /// The clock reached `now`. A spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.engine.handle_timeout(now);
        if let Step::RegistrationWait { started, until } = self.step
            && until <= now
        {
            self.registration_step(now, started, 0, Round::default());
        }
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
        let wait = match self.step {
            Step::RegistrationWait { until, .. } => Some(until),
            _ => None,
        };
        [self.engine.poll_timeout(), wait]
            .into_iter()
            .flatten()
            .min()
    }

    fn pump(&mut self, now: Instant) {
        while let Some(event) = self.engine.poll_event() {
            match event {
                ModemEvent::CommandDone {
                    id,
                    command,
                    result,
                } => {
                    if let Ok(outcome) = &result {
                        for info in &outcome.info_lines {
                            self.note(info);
                        }
                    }
                    if self.pending == Some(id) {
                        self.pending = None;
                        self.on_done(now, &command, result);
                    } else if let Some(index) = self.own.iter().position(|own| *own == id) {
                        self.own.swap_remove(index);
                    } else {
                        self.events.push_back(ModemEvent::CommandDone {
                            id,
                            command,
                            result,
                        });
                    }
                }
                ModemEvent::Urc(urc) => {
                    if let Urc::Registration(registration) = &urc {
                        let info = InfoResponse::Registration(registration.clone());
                        self.note(&info);
                        if registration.status.is_registered()
                            && matches!(self.step, Step::RegistrationWait { .. })
                        {
                            self.after_registration(now);
                        }
                    }
                    self.events.push_back(ModemEvent::Urc(urc));
                }
                ModemEvent::Connected { .. } => {
                    debug!("dialer: connected");
                    self.state = DialerState::Online;
                    self.step = Step::None;
                    self.events.push_back(event);
                }
                ModemEvent::Disconnected { .. } => {
                    if self.state != DialerState::Failed {
                        self.state = DialerState::Disconnected;
                        self.step = Step::None;
                        self.events.push_back(event);
                    }
                }
                other => self.events.push_back(other),
            }
        }
    }

    fn note(&mut self, info: &InfoResponse) {
        if self.status.update(info) {
            self.events
                .push_back(ModemEvent::StatusUpdated(self.status.clone()));
        }
    }

    fn issue(&mut self, now: Instant, step: Step, command: AtCommand) {
        self.step = step;
        match self.engine.enqueue(now, command) {
            Ok(id) => self.pending = Some(id),
            Err(error) => self.fail(error),
        }
    }

    fn fail(&mut self, error: ModemError) {
        debug!("dialer: failed: {error}");
        self.state = DialerState::Failed;
        self.step = Step::None;
        self.pending = None;
        self.engine.cancel_all();
        self.events.push_back(ModemEvent::Failed(error));
    }

    fn command(&self, text: impl Into<String>) -> AtCommand {
        AtCommand::new(text, self.config.command_timeout)
    }

    fn init_step(&mut self, now: Instant, index: usize) {
        self.state = DialerState::Initializing;
        match self.config.init.get(index) {
            Some(text) => {
                let command = self.command(text.clone());
                self.issue(now, Step::Init(index), command);
            }
            None if self.config.check_pin => {
                self.state = DialerState::CheckingSim;
                let command = self.command("AT+CPIN?");
                self.issue(now, Step::PinQuery, command);
            }
            None => self.after_pin(now),
        }
    }

    fn after_pin(&mut self, now: Instant) {
        if self.config.registration.is_empty() {
            self.after_registration(now);
        } else {
            self.state = DialerState::WaitingForRegistration;
            self.registration_step(now, now, 0, Round::default());
        }
    }

    fn registration_step(&mut self, now: Instant, started: Instant, index: usize, round: Round) {
        match self.config.registration.get(index) {
            Some(kind) => {
                let command = self.command(format!("AT{}?", kind.prefix()));
                self.issue(
                    now,
                    Step::Registration {
                        started,
                        index,
                        round,
                    },
                    command,
                );
            }
            None => {
                let waited = now.saturating_duration_since(started);
                if round.registered {
                    self.after_registration(now);
                } else if round.answered > 0 && round.denied == round.answered {
                    self.fail(ModemError::RegistrationDenied);
                } else if waited >= self.config.registration_timeout {
                    self.fail(ModemError::RegistrationTimeout { waited });
                } else {
                    debug!("dialer: not registered yet");
                    self.step = Step::RegistrationWait {
                        started,
                        until: now + self.config.registration_poll_interval,
                    };
                }
            }
        }
    }

    fn after_registration(&mut self, now: Instant) {
        if self.config.query_status {
            self.status_step(now, 0);
        } else {
            self.apn_step(now);
        }
    }

    fn status_step(&mut self, now: Instant, index: usize) {
        self.state = DialerState::QueryingStatus;
        match ["AT+CSQ", "AT+COPS?"].get(index) {
            Some(text) => {
                let command = self.command(*text);
                self.issue(now, Step::Status(index), command);
            }
            None => self.apn_step(now),
        }
    }

    fn apn_step(&mut self, now: Instant) {
        match &self.config.apn {
            Some(apn) => {
                self.state = DialerState::SettingApn;
                let text = format!(
                    "AT+CGDCONT={},\"{}\",\"{}\"",
                    self.config.cid,
                    self.config.pdp_type.as_str(),
                    apn
                );
                let command = self.command(text);
                self.issue(now, Step::Apn, command);
            }
            None => self.dial_step(now),
        }
    }

    fn dial_step(&mut self, now: Instant) {
        self.state = DialerState::Dialing;
        let command = AtCommand::connect(self.config.dial_command(), self.config.dial_timeout);
        self.issue(now, Step::Dial, command);
    }

    fn on_done(&mut self, now: Instant, command: &str, result: Result<CommandOutcome, ModemError>) {
        let step = std::mem::replace(&mut self.step, Step::None);
        // Status queries are best effort.
        if let Step::Status(index) = step {
            self.status_step(now, index + 1);
            return;
        }
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(error) => {
                if matches!(step, Step::Dial) {
                    // Abort the call attempt that never answered.
                    self.fail(error);
                    self.engine.hang_up(now);
                } else {
                    self.fail(error);
                }
                return;
            }
        };
        let failed = |outcome: &CommandOutcome| ModemError::CommandFailed {
            command: command.to_owned(),
            result: outcome.final_result.clone(),
        };
        match step {
            Step::Init(index) => {
                if outcome.is_success() {
                    self.init_step(now, index + 1);
                } else {
                    self.fail(failed(&outcome));
                }
            }
            Step::PinQuery => {
                if !outcome.is_success() {
                    return self.fail(failed(&outcome));
                }
                let pin = outcome.info_lines.iter().find_map(|info| match info {
                    InfoResponse::Pin(pin) => Some(pin.clone()),
                    _ => None,
                });
                match pin {
                    Some(PinStatus::Ready) | None => self.after_pin(now),
                    Some(PinStatus::SimPin) => match self.config.pin.clone() {
                        Some(pin) => {
                            let command = self.command(format!("AT+CPIN=\"{pin}\"")).sensitive();
                            self.issue(now, Step::PinEntry, command);
                        }
                        None => self.fail(ModemError::PinRequired),
                    },
                    Some(PinStatus::SimPuk) => self.fail(ModemError::PukRequired),
                    Some(PinStatus::Other(code)) => {
                        self.fail(ModemError::UnsupportedPinState { code });
                    }
                    Some(other) => self.fail(ModemError::UnsupportedPinState {
                        code: other.code().to_owned(),
                    }),
                }
            }
            Step::PinEntry => match &outcome.final_result {
                FinalResult::Ok => self.after_pin(now),
                FinalResult::CmeError(error) if error.is_incorrect_password() => {
                    self.fail(ModemError::WrongPin);
                }
                FinalResult::CmeError(error)
                    if *error
                        == crate::response::ExtendedError::Code(
                            crate::response::ExtendedError::SIM_PUK_REQUIRED,
                        ) =>
                {
                    self.fail(ModemError::PukRequired);
                }
                _ => self.fail(failed(&outcome)),
            },
            Step::Registration {
                started,
                index,
                mut round,
            } => {
                if outcome.is_success() {
                    let statuses = outcome.info_lines.iter().filter_map(|info| match info {
                        InfoResponse::Registration(registration) => Some(registration.status),
                        _ => None,
                    });
                    for status in statuses {
                        round.answered += 1;
                        if status.is_registered() {
                            round.registered = true;
                        } else if status == RegistrationStatus::Denied {
                            round.denied += 1;
                        }
                    }
                } else if index + 1 == self.config.registration.len() && round.answered == 0 {
                    // No query of this round answered at all.
                    return self.fail(failed(&outcome));
                }
                self.registration_step(now, started, index + 1, round);
            }
            Step::Apn => {
                if outcome.is_success() {
                    self.dial_step(now);
                } else {
                    self.fail(failed(&outcome));
                }
            }
            Step::Dial => {
                if !outcome.is_success() {
                    self.fail(ModemError::CallFailed {
                        reason: CallFailure::from_final(&outcome.final_result),
                    });
                }
                // On CONNECT the engine's Connected event follows and sets the state.
            }
            Step::None | Step::RegistrationWait { .. } | Step::Status(_) => {}
        }
    }
}

impl_modem_driver!(Dialer);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::DisconnectReason;
    use crate::sim::{CallBehaviour, Harness, SimConfig, SimModem, SimRegistration};

    const SEC: Duration = Duration::from_secs(1);

    fn harness(config: DialerConfig, sim: SimConfig) -> Harness<Dialer> {
        let t0 = Instant::now();
        let mut dialer = Dialer::new(config).unwrap();
        dialer.open(t0).unwrap();
        Harness::new(dialer, SimModem::new(sim), t0)
    }

    fn is_final(event: &ModemEvent) -> bool {
        matches!(event, ModemEvent::Connected { .. } | ModemEvent::Failed(_))
    }

    fn commands(h: &Harness<Dialer>) -> Vec<String> {
        h.modem.commands().iter().map(|(_, c)| c.clone()).collect()
    }

    #[test]
    fn cellular_success() {
        let mut config = DialerConfig::cellular(Some("internet"));
        config.pin = Some("1234".into());
        let sim = SimConfig {
            pin: Some("1234".into()),
            registration_delay: 3 * SEC,
            ..SimConfig::default()
        };
        let mut h = harness(config, sim);
        let event = h.run_until_event(120 * SEC, is_final).unwrap();
        assert_eq!(
            event,
            ModemEvent::Connected {
                rate: Some(115_200),
                text: Some("115200".into()),
                initial_data: Vec::new(),
            }
        );
        assert_eq!(h.machine.state(), DialerState::Online);
        let sent = commands(&h);
        assert_eq!(
            &sent[..5],
            ["ATZ", "ATE0V1", "AT+CMEE=1", "AT+CPIN?", "AT+CPIN=\"1234\""]
        );
        // Registration polled about once a second until the 3 s delay passed.
        let polls = sent.iter().filter(|c| *c == "AT+CREG?").count();
        assert!((3..=5).contains(&polls), "{polls} polls");
        assert!(sent.contains(&"AT+CGDCONT=1,\"IP\",\"internet\"".to_owned()));
        assert_eq!(sent.last().unwrap(), "ATD*99#");
        let status = h.machine.status();
        assert_eq!(status.signal_dbm, Some(-73));
        assert_eq!(status.operator.as_deref(), Some("SimNet"));
        assert!(status.is_registered());
        assert_eq!(
            status.access_technology,
            Some(crate::response::AccessTechnology::Eutran)
        );
        assert!(
            h.event_list()
                .iter()
                .any(|e| matches!(e, ModemEvent::StatusUpdated(_)))
        );
        // Online: PPP bytes flow both ways through the modem.
        h.send_ppp(b"\x7e\xff\x03\xc0\x21\x7e");
        assert_eq!(h.modem.take_peer_data(), b"\x7e\xff\x03\xc0\x21\x7e");
        h.modem.send_from_peer(b"\x7e\x01\x7e");
        h.settle();
        assert_eq!(h.host_ppp, b"\x7e\x01\x7e");
    }

    #[test]
    fn the_pin_is_never_logged_or_reported() {
        let mut config = DialerConfig::cellular(None);
        config.pin = Some("9876".into());
        assert!(!format!("{config:?}").contains("9876"));
        let mut h = harness(
            config,
            SimConfig {
                pin: Some("1111".into()),
                ..SimConfig::default()
            },
        );
        let event = h.run_until_event(60 * SEC, is_final).unwrap();
        assert_eq!(event, ModemEvent::Failed(ModemError::WrongPin));
        for event in h.event_list() {
            assert!(!format!("{event:?}").contains("9876"));
        }
    }

    #[test]
    fn pin_required_but_not_configured() {
        let mut h = harness(
            DialerConfig::cellular(None),
            SimConfig {
                pin: Some("1111".into()),
                ..SimConfig::default()
            },
        );
        let event = h.run_until_event(60 * SEC, is_final).unwrap();
        assert_eq!(event, ModemEvent::Failed(ModemError::PinRequired));
    }

    #[test]
    fn puk_locked() {
        let mut h = harness(
            DialerConfig::cellular(None),
            SimConfig {
                puk_locked: true,
                ..SimConfig::default()
            },
        );
        let event = h.run_until_event(60 * SEC, is_final).unwrap();
        assert_eq!(event, ModemEvent::Failed(ModemError::PukRequired));
    }

    #[test]
    fn registration_denied() {
        let mut h = harness(
            DialerConfig::cellular(None),
            SimConfig {
                registration: SimRegistration::Denied,
                registration_delay: 2 * SEC,
                ..SimConfig::default()
            },
        );
        let event = h.run_until_event(120 * SEC, is_final).unwrap();
        assert_eq!(event, ModemEvent::Failed(ModemError::RegistrationDenied));
        assert!(h.now < h.events[0].0 + 5 * SEC);
    }

    #[test]
    fn registration_timeout() {
        let t0 = Instant::now();
        let mut config = DialerConfig::cellular(None);
        config.registration_timeout = 10 * SEC;
        let mut dialer = Dialer::new(config).unwrap();
        dialer.open(t0).unwrap();
        let mut h = Harness::new(
            dialer,
            SimModem::new(SimConfig {
                registration: SimRegistration::Never,
                ..SimConfig::default()
            }),
            t0,
        );
        let event = h.run_until_event(120 * SEC, is_final).unwrap();
        let ModemEvent::Failed(ModemError::RegistrationTimeout { waited }) = event else {
            panic!("{event:?}");
        };
        assert!(waited >= 10 * SEC && waited <= 12 * SEC, "{waited:?}");
        let at = h.events.iter().find(|(_, e)| is_final(e)).unwrap().0;
        assert!(at - t0 >= 10 * SEC && at - t0 <= 12 * SEC);
    }

    #[test]
    fn roaming_counts_as_registered() {
        let mut h = harness(
            DialerConfig::cellular(None),
            SimConfig {
                registration: SimRegistration::Roaming,
                ..SimConfig::default()
            },
        );
        let event = h.run_until_event(60 * SEC, is_final).unwrap();
        assert!(matches!(event, ModemEvent::Connected { .. }));
    }

    #[test]
    fn call_failures() {
        let table = [
            (CallBehaviour::Busy, CallFailure::Busy),
            (CallBehaviour::NoCarrier, CallFailure::NoCarrier),
            (CallBehaviour::NoAnswer, CallFailure::NoAnswer),
            (CallBehaviour::NoDialtone, CallFailure::NoDialtone),
        ];
        for (behaviour, reason) in table {
            let mut h = harness(
                DialerConfig::phone("5551234"),
                SimConfig {
                    dial: behaviour,
                    ..SimConfig::default()
                },
            );
            let event = h.run_until_event(120 * SEC, is_final).unwrap();
            assert_eq!(event, ModemEvent::Failed(ModemError::CallFailed { reason }));
            assert_eq!(h.machine.state(), DialerState::Failed);
            assert_eq!(commands(&h), ["ATZ", "ATE0V1", "ATDT5551234"]);
        }
    }

    #[test]
    fn no_final_result_is_a_timeout() {
        let t0 = Instant::now();
        let mut config = DialerConfig::phone("5551234");
        config.dial_timeout = 30 * SEC;
        let mut dialer = Dialer::new(config).unwrap();
        dialer.open(t0).unwrap();
        let modem = SimModem::new(SimConfig {
            dial: CallBehaviour::Silent,
            ..SimConfig::default()
        });
        let mut h = Harness::new(dialer, modem, t0);
        let event = h.run_until_event(120 * SEC, is_final).unwrap();
        assert_eq!(
            event,
            ModemEvent::Failed(ModemError::Timeout {
                command: "ATDT5551234".into()
            })
        );
        assert_eq!(h.events.last().unwrap().0, t0 + 30 * SEC);
        // The call attempt is aborted with ATH afterwards.
        h.run_until(h.now + 10 * SEC);
        assert_eq!(commands(&h).last().unwrap(), "ATH");
    }

    #[test]
    fn silent_modem_times_out_at_init() {
        let mut h = harness(
            DialerConfig::cellular(None),
            SimConfig {
                silent: true,
                ..SimConfig::default()
            },
        );
        let event = h.run_until_event(120 * SEC, is_final).unwrap();
        assert_eq!(
            event,
            ModemEvent::Failed(ModemError::Timeout {
                command: "ATZ".into()
            })
        );
    }

    #[test]
    fn garbage_and_echo_are_tolerated() {
        let mut h = harness(
            DialerConfig::cellular(Some("apn")),
            SimConfig {
                garbage: true,
                echo: true,
                ..SimConfig::default()
            },
        );
        let event = h.run_until_event(60 * SEC, is_final).unwrap();
        assert!(matches!(event, ModemEvent::Connected { .. }), "{event:?}");
        assert!(h.machine.engine().stats().echoes >= 1);
    }

    #[test]
    fn no_carrier_mid_call() {
        let mut h = harness(
            DialerConfig::cellular(None),
            SimConfig {
                drop_call_after: Some(30 * SEC),
                ..SimConfig::default()
            },
        );
        h.run_until_event(60 * SEC, is_final).unwrap();
        let connected_at = h.now;
        let event = h
            .run_until_event(60 * SEC, |e| matches!(e, ModemEvent::Disconnected { .. }))
            .unwrap();
        assert_eq!(
            event,
            ModemEvent::Disconnected {
                reason: DisconnectReason::NoCarrier
            }
        );
        assert_eq!(h.now - connected_at, 30 * SEC);
        assert_eq!(h.machine.state(), DialerState::Disconnected);
        // It can dial again.
        let now = h.now;
        h.machine.open(now).unwrap();
        let event = h.run_until_event(60 * SEC, is_final).unwrap();
        assert!(matches!(event, ModemEvent::Connected { .. }));
    }

    #[test]
    fn hang_up_with_guard_times() {
        let mut h = harness(DialerConfig::phone("1"), SimConfig::default());
        h.run_until_event(60 * SEC, is_final).unwrap();
        h.run_until(h.now + 5 * SEC);
        let t1 = h.now;
        h.machine.close(t1, CloseReason::UserRequest);
        let event = h
            .run_until_event(60 * SEC, |e| matches!(e, ModemEvent::Disconnected { .. }))
            .unwrap();
        assert_eq!(
            event,
            ModemEvent::Disconnected {
                reason: DisconnectReason::HangUp
            }
        );
        assert_eq!(
            h.modem.escapes(),
            1,
            "the modem saw +++ with both guard times"
        );
        assert!(!h.modem.is_off_hook());
        let (ath_at, ath) = h.modem.commands().last().unwrap().clone();
        assert_eq!(ath, "ATH");
        assert_eq!(ath_at, t1 + 2 * SEC);
        assert_eq!(h.machine.state(), DialerState::Disconnected);
    }

    #[test]
    fn hang_up_with_dtr() {
        let mut config = DialerConfig::phone("1");
        config.engine.hangup_method = crate::engine::HangupMethod::Dtr;
        let mut h = harness(config, SimConfig::default());
        h.run_until_event(60 * SEC, is_final).unwrap();
        let now = h.now;
        h.machine.close(now, CloseReason::UserRequest);
        let event = h
            .run_until_event(60 * SEC, |e| matches!(e, ModemEvent::Disconnected { .. }))
            .unwrap();
        assert_eq!(
            event,
            ModemEvent::Disconnected {
                reason: DisconnectReason::HangUp
            }
        );
        let list = h.event_list();
        assert!(
            list.contains(&ModemEvent::SetDtr(false)) && list.contains(&ModemEvent::SetDtr(true))
        );
        assert!(!h.modem.is_off_hook());
        assert!(h.modem.dtr());
    }

    #[test]
    fn refresh_status_while_not_online() {
        let t0 = Instant::now();
        let mut dialer = Dialer::new(DialerConfig::cellular(None)).unwrap();
        dialer.refresh_status(t0).unwrap();
        let mut h = Harness::new(dialer, SimModem::new(SimConfig::default()), t0);
        h.run_until(t0 + SEC);
        assert_eq!(h.machine.status().signal_dbm, Some(-73));
        assert_eq!(h.machine.status().operator.as_deref(), Some("SimNet"));
        assert!(
            h.event_list()
                .iter()
                .all(|e| !matches!(e, ModemEvent::CommandDone { .. }))
        );
    }

    proptest::proptest! {
        #[test]
        fn any_chunking_echo_and_noise_still_connects(
            chunk_size in 1usize..24,
            echo in proptest::bool::ANY,
            garbage in proptest::bool::ANY,
            delay in 0u64..5,
        ) {
            let mut config = DialerConfig::cellular(Some("internet"));
            config.pin = Some("1234".into());
            let mut h = harness(
                config,
                SimConfig {
                    echo,
                    garbage,
                    pin: Some("1234".into()),
                    registration_delay: Duration::from_secs(delay),
                    ..SimConfig::default()
                },
            );
            h.chunk_size = Some(chunk_size);
            let event = h.run_until_event(120 * SEC, is_final);
            let connected = matches!(event, Some(ModemEvent::Connected { .. }));
            proptest::prop_assert!(connected, "{:?}", event);
            proptest::prop_assert_eq!(h.machine.status().signal_dbm, Some(-73));
        }
    }

    #[test]
    fn dial_strings_and_validation() {
        let mut config = DialerConfig::cellular(Some("apn"));
        assert_eq!(config.dial_command(), "ATD*99#");
        config.target = DialTarget::PacketWithCid;
        config.cid = 3;
        assert_eq!(config.dial_command(), "ATD*99***3#");
        config.apn = Some("bad\"apn".into());
        assert!(matches!(
            Dialer::new(config),
            Err(ModemError::InvalidConfig { .. })
        ));
        assert_eq!(DialerConfig::phone("123").dial_command(), "ATDT123");
    }
}
