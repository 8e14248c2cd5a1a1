//! The AT command engine: a queue of commands, one in flight at a time, each with its own
//! timeout; unsolicited result codes; the hand-over to PPP at `CONNECT`; hang-up.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use tracing::debug;

use crate::error::ModemError;
use crate::event::{DisconnectReason, ModemEvent, Urc, impl_modem_driver};
use crate::line::{CarrierWatch, LineReader, LineStats};
use crate::response::{
    FinalResult, InfoResponse, ResponseLine, command_names, is_echo_of, parse_response_line,
};

/// Identifies a command queued with [`AtEngine::enqueue`] in its [`ModemEvent::CommandDone`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandId(pub u64);

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Which final result counts as success for a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Expect {
    /// `OK` (most commands).
    #[default]
    Ok,
    /// `CONNECT` (`ATD`, `ATA`): the modem goes online.
    Connect,
}

/// A command to send: the text without its trailing `\r`, its timeout and what it expects.
#[derive(Clone, PartialEq, Eq)]
pub struct AtCommand {
    /// The command line, e.g. `AT+CSQ` (the engine appends `\r`).
    pub text: String,
    /// How long to wait for the final result code after sending.
    pub timeout: Duration,
    /// Which final result counts as success.
    pub expect: Expect,
    /// Whether the text holds a secret (a PIN): it is then never logged nor put in errors or
    /// events; everything after the first `=` is shown as `<hidden>`.
    pub sensitive: bool,
}

impl AtCommand {
    /// A command that expects `OK`.
    pub fn new(text: impl Into<String>, timeout: Duration) -> Self {
        Self {
            text: text.into(),
            timeout,
            expect: Expect::Ok,
            sensitive: false,
        }
    }

    /// A command that expects `CONNECT` (a dial or answer).
    pub fn connect(text: impl Into<String>, timeout: Duration) -> Self {
        Self {
            expect: Expect::Connect,
            ..Self::new(text, timeout)
        }
    }

    /// Marks the command as holding a secret.
    #[must_use]
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// The text as it may be logged: a sensitive command's arguments are hidden.
    pub fn display_text(&self) -> String {
        if !self.sensitive {
            return self.text.clone();
        }
        match self.text.split_once('=') {
            Some((head, _)) => format!("{head}=<hidden>"),
            None => "<hidden>".to_owned(),
        }
    }
}

impl fmt::Debug for AtCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AtCommand")
            .field("text", &self.display_text())
            .field("timeout", &self.timeout)
            .field("expect", &self.expect)
            .finish()
    }
}

/// What a command got back: its final result code and the information lines before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandOutcome {
    /// The final result code.
    pub final_result: FinalResult,
    /// The information responses that belonged to the command, in order (at most
    /// [`EngineConfig::max_info_lines`]).
    pub info_lines: Vec<InfoResponse>,
    /// What the command expected.
    pub expect: Expect,
}

impl CommandOutcome {
    /// Whether the final result is the expected one.
    pub fn is_success(&self) -> bool {
        match self.expect {
            Expect::Ok => self.final_result.is_ok(),
            Expect::Connect => self.final_result.is_connect(),
        }
    }
}

/// How to hang up an online call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum HangupMethod {
    /// Guard time of silence, `+++`, guard time, then `ATH`. Works on any port.
    #[default]
    Escape,
    /// Drop DTR ([`ModemEvent::SetDtr`]`(false)`) for [`EngineConfig::dtr_low_time`], then raise it.
    /// Needs a port with modem-control lines and a modem set to hang up on DTR (`AT&D2`).
    Dtr,
}

/// The engine's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineConfig {
    /// The longest response line kept (default 1024 bytes); longer ones are dropped and counted.
    pub max_line_len: usize,
    /// The most information lines kept per command (default 64); more are dropped.
    pub max_info_lines: usize,
    /// The most commands waiting in the queue (default 32).
    pub max_queue: usize,
    /// The escape guard time (default 1 s, the usual `S12=50`).
    pub guard_time: Duration,
    /// How [`AtEngine::hang_up`] hangs up an online call (default [`HangupMethod::Escape`]).
    pub hangup_method: HangupMethod,
    /// How long to wait for `ATH` to answer (default 5 s).
    pub hangup_timeout: Duration,
    /// How long DTR stays low for [`HangupMethod::Dtr`] (default 500 ms).
    pub dtr_low_time: Duration,
    /// Whether to watch the online stream for a `NO CARRIER` line (default true). The adapter
    /// keeps feeding the online bytes to `handle_input` (as well as to PPP) for this.
    pub watch_no_carrier: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_line_len: 1024,
            max_info_lines: 64,
            max_queue: 32,
            guard_time: Duration::from_secs(1),
            hangup_method: HangupMethod::Escape,
            hangup_timeout: Duration::from_secs(5),
            dtr_low_time: Duration::from_millis(500),
            watch_no_carrier: true,
        }
    }
}

/// The engine's state, as seen from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EngineState {
    /// Command mode: lines are interpreted, commands can be queued.
    Command,
    /// Online: the serial bytes are the PPP stream.
    Online,
    /// A hang-up is in progress.
    HangingUp,
}

/// Counters kept by the engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// The line reader's counters (lines, over-long lines, control bytes).
    pub lines: LineStats,
    /// Command echoes recognised and skipped.
    pub echoes: u64,
    /// Final result codes that arrived with no command in flight (ignored).
    pub unsolicited_finals: u64,
    /// Commands that timed out.
    pub timeouts: u64,
    /// Information lines dropped because a command had too many.
    pub dropped_info_lines: u64,
}

#[derive(Debug)]
enum Mode {
    Command,
    Online(CarrierWatch),
    GuardBefore {
        deadline: Instant,
        watch: CarrierWatch,
    },
    GuardAfter {
        deadline: Instant,
    },
    /// `ATH` (internal) in flight.
    HangupCommand,
    DtrLow {
        deadline: Instant,
    },
}

impl Mode {
    fn name(&self) -> &'static str {
        match self {
            Self::Command => "in command mode",
            Self::Online(_) => "online",
            _ => "hanging up",
        }
    }
}

#[derive(Debug)]
struct InFlight {
    /// `None` for the engine's own `ATH`.
    id: Option<CommandId>,
    command: AtCommand,
    names: Vec<String>,
    deadline: Instant,
    info_lines: Vec<InfoResponse>,
    echo_seen: bool,
}

/// The sans-IO AT command engine.
///
/// Queue commands with [`enqueue`](Self::enqueue); each is written (with `\r`) when the one before
/// it has finished, and finishes with an [`ModemEvent::CommandDone`] carrying its [`CommandOutcome`]
/// or [`ModemError::Timeout`]. Lines that do not belong to the command in flight become
/// [`ModemEvent::Urc`]. An echoed command line is recognised and skipped, so echo may be on or off.
///
/// At `CONNECT` the engine emits [`ModemEvent::Connected`] with the bytes that followed in the same
/// chunk and stops interpreting lines; while online it only watches for `NO CARRIER`
/// ([`EngineConfig::watch_no_carrier`]). [`hang_up`](Self::hang_up) ends the call.
#[derive(Debug)]
pub struct AtEngine {
    config: EngineConfig,
    reader: LineReader,
    queue: VecDeque<(Option<CommandId>, AtCommand)>,
    in_flight: Option<InFlight>,
    mode: Mode,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<ModemEvent>,
    next_id: u64,
    stats: EngineStats,
}

impl Default for AtEngine {
    fn default() -> Self {
        Self::new(EngineConfig::default())
    }
}

impl AtEngine {
    /// An engine in command mode with nothing queued.
    pub fn new(config: EngineConfig) -> Self {
        Self {
            reader: LineReader::new(config.max_line_len),
            config,
            queue: VecDeque::new(),
            in_flight: None,
            mode: Mode::Command,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            next_id: 1,
            stats: EngineStats::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Queues a command; it is sent at once if nothing is in flight. Fails when online, while
    /// hanging up, or when the queue is full.
    pub fn enqueue(&mut self, now: Instant, command: AtCommand) -> Result<CommandId, ModemError> {
        if !matches!(self.mode, Mode::Command) {
            return Err(ModemError::InvalidState {
                operation: "queueing a command",
                state: self.mode.name(),
            });
        }
        if self.queue.len() >= self.config.max_queue {
            return Err(ModemError::QueueFull {
                limit: self.config.max_queue,
            });
        }
        let id = CommandId(self.next_id);
        self.next_id += 1;
        self.queue.push_back((Some(id), command));
        self.start_next(now);
        Ok(id)
    }

    /// Cancels every queued command and the one in flight (each gets an [`ModemEvent::CommandDone`]
    /// with [`ModemError::Cancelled`]). A late answer to the cancelled command is ignored.
    pub fn cancel_all(&mut self) {
        if let Some(flight) = self.in_flight.take()
            && let Some(id) = flight.id
        {
            self.events.push_back(ModemEvent::CommandDone {
                id,
                command: flight.command.display_text(),
                result: Err(ModemError::Cancelled {
                    command: flight.command.display_text(),
                }),
            });
        }
        while let Some((id, command)) = self.queue.pop_front() {
            if let Some(id) = id {
                self.events.push_back(ModemEvent::CommandDone {
                    id,
                    command: command.display_text(),
                    result: Err(ModemError::Cancelled {
                        command: command.display_text(),
                    }),
                });
            }
        }
    }

    /// Hangs up. Online: with [`HangupMethod::Escape`], waits one guard time (the caller must
    /// stop writing PPP data from `now`), sends `+++`, waits another guard time and sends `ATH`;
    /// with [`HangupMethod::Dtr`], emits [`ModemEvent::SetDtr`]`(false)`, then `(true)` after
    /// [`EngineConfig::dtr_low_time`]. In command mode: cancels all commands (aborting a dial in
    /// progress) and sends `ATH`. Either way it ends with [`ModemEvent::Disconnected`]. While a
    /// hang-up is already in progress this does nothing.
    pub fn hang_up(&mut self, now: Instant) {
        match std::mem::replace(&mut self.mode, Mode::Command) {
            Mode::Online(watch) => match self.config.hangup_method {
                HangupMethod::Escape => {
                    debug!(
                        "hang-up: {:?} guard time before +++",
                        self.config.guard_time
                    );
                    self.mode = Mode::GuardBefore {
                        deadline: now + self.config.guard_time,
                        watch,
                    };
                }
                HangupMethod::Dtr => self.drop_dtr(now),
            },
            Mode::Command => {
                self.cancel_all();
                self.send_hangup_command(now);
            }
            other => self.mode = other,
        }
    }

    /// Hangs up by dropping DTR, whatever [`EngineConfig::hangup_method`] says (for an adapter
    /// that knows its port has modem-control lines).
    pub fn hang_up_dtr(&mut self, now: Instant) {
        self.cancel_all();
        self.drop_dtr(now);
    }

    /// The adapter saw carrier (DCD) drop: if online, the call is over.
    pub fn carrier_lost(&mut self, now: Instant) {
        if matches!(self.mode, Mode::Online(_) | Mode::GuardBefore { .. }) {
            self.end_call(now, DisconnectReason::CarrierLost);
        }
    }

    fn drop_dtr(&mut self, now: Instant) {
        debug!("hang-up: dropping DTR");
        self.events.push_back(ModemEvent::SetDtr(false));
        self.mode = Mode::DtrLow {
            deadline: now + self.config.dtr_low_time,
        };
    }

    fn send_hangup_command(&mut self, now: Instant) {
        self.reader.clear();
        self.mode = Mode::HangupCommand;
        let command = AtCommand::new("ATH", self.config.hangup_timeout);
        self.send(now, None, command);
    }

    /// The state as seen from outside.
    pub fn state(&self) -> EngineState {
        match self.mode {
            Mode::Command => EngineState::Command,
            Mode::Online(_) => EngineState::Online,
            _ => EngineState::HangingUp,
        }
    }

    /// Whether the modem is online.
    pub fn is_online(&self) -> bool {
        matches!(self.mode, Mode::Online(_))
    }

    /// Whether the engine is in command mode with nothing in flight or queued.
    pub fn is_idle(&self) -> bool {
        matches!(self.mode, Mode::Command) && self.in_flight.is_none() && self.queue.is_empty()
    }

    /// The counters.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            lines: self.reader.stats(),
            ..self.stats
        }
    }

    /// Bytes received from the modem at `now`, in chunks of any size.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            match &mut self.mode {
                Mode::Online(watch) | Mode::GuardBefore { watch, .. } => {
                    if !self.config.watch_no_carrier {
                        return;
                    }
                    let Some(used) = watch.feed(rest) else {
                        return;
                    };
                    rest = &rest[used..];
                    debug!("rcvd [NO CARRIER] while online");
                    self.end_call(now, DisconnectReason::NoCarrier);
                }
                _ => {
                    let (used, line) = self.reader.feed(rest);
                    rest = &rest[used..];
                    let Some(line) = line else { continue };
                    if matches!(self.mode, Mode::GuardAfter { .. }) && line.trim() == "OK" {
                        // The modem took the escape: it is in command mode now, so ATH goes
                        // at once and its own OK answers the ATH, not this one.
                        debug!("rcvd [OK] (escape accepted)");
                        self.send_hangup_command(now);
                        continue;
                    }
                    if let Some(text) = self.handle_line(now, &line) {
                        if rest.first() == Some(&b'\n') {
                            rest = &rest[1..];
                        }
                        self.events.push_back(ModemEvent::Connected {
                            rate: text.as_deref().and_then(crate::response::connect_rate),
                            text,
                            initial_data: rest.to_vec(),
                        });
                        return;
                    }
                }
            }
        }
    }

    /// Handles one complete line; returns `Some(connect text)` when it put the engine online.
    fn handle_line(&mut self, now: Instant, line: &str) -> Option<Option<String>> {
        if let Some(flight) = &mut self.in_flight {
            if !flight.echo_seen && is_echo_of(line, &flight.command.text) {
                flight.echo_seen = true;
                self.stats.echoes += 1;
                debug!("rcvd [{}] (echo)", flight.command.display_text());
                return None;
            }
            if flight.command.sensitive
                && line
                    .trim()
                    .get(..2)
                    .is_some_and(|p| p.eq_ignore_ascii_case("AT"))
            {
                debug!("rcvd [<hidden>] (echo of a sensitive command)");
                return None;
            }
        }
        debug!("rcvd [{line}]");
        match parse_response_line(line.as_bytes()) {
            ResponseLine::Final(result) => {
                if let Some(flight) = self.in_flight.take() {
                    return self.complete(now, flight, result);
                }
                match result {
                    FinalResult::NoCarrier => {
                        self.events.push_back(ModemEvent::Urc(Urc::NoCarrier))
                    }
                    FinalResult::Connect(text) if matches!(self.mode, Mode::Command) => {
                        // An auto-answered call (ATS0>0) with nothing in flight.
                        self.go_online();
                        return Some(text);
                    }
                    _ => {
                        self.stats.unsolicited_finals += 1;
                        debug!("ignoring unsolicited final result {line:?}");
                    }
                }
            }
            ResponseLine::Ring => self.events.push_back(ModemEvent::Urc(Urc::Ring)),
            ResponseLine::Info(info) => {
                let belongs = self
                    .in_flight
                    .as_ref()
                    .is_some_and(|flight| belongs_to(&flight.names, &info));
                match (belongs, self.in_flight.as_mut()) {
                    (true, Some(flight)) => {
                        if flight.info_lines.len() < self.config.max_info_lines {
                            flight.info_lines.push(info);
                        } else {
                            self.stats.dropped_info_lines += 1;
                        }
                    }
                    _ => {
                        let urc = match info {
                            InfoResponse::Registration(registration) => {
                                Urc::Registration(registration)
                            }
                            other => Urc::Info(other),
                        };
                        self.events.push_back(ModemEvent::Urc(urc));
                    }
                }
            }
        }
        None
    }

    fn complete(
        &mut self,
        now: Instant,
        flight: InFlight,
        result: FinalResult,
    ) -> Option<Option<String>> {
        let connect = match &result {
            FinalResult::Connect(text) => Some(text.clone()),
            _ => None,
        };
        match flight.id {
            Some(id) => {
                let outcome = CommandOutcome {
                    final_result: result,
                    info_lines: flight.info_lines,
                    expect: flight.command.expect,
                };
                self.events.push_back(ModemEvent::CommandDone {
                    id,
                    command: flight.command.display_text(),
                    result: Ok(outcome),
                });
            }
            None => {
                // Our own ATH: whatever it got, the modem is in command mode and on-hook.
                self.mode = Mode::Command;
                self.events.push_back(ModemEvent::Disconnected {
                    reason: DisconnectReason::HangUp,
                });
                self.start_next(now);
                return None;
            }
        }
        if connect.is_some() && matches!(self.mode, Mode::Command) {
            self.go_online();
            return connect;
        }
        self.start_next(now);
        None
    }

    fn go_online(&mut self) {
        debug!("online: handing the line over to PPP");
        self.mode = Mode::Online(CarrierWatch::default());
        self.reader.clear();
        // Nothing can be sent while online.
        let queued: Vec<_> = self.queue.drain(..).collect();
        for (id, command) in queued {
            if let Some(id) = id {
                self.events.push_back(ModemEvent::CommandDone {
                    id,
                    command: command.display_text(),
                    result: Err(ModemError::Cancelled {
                        command: command.display_text(),
                    }),
                });
            }
        }
    }

    fn end_call(&mut self, now: Instant, reason: DisconnectReason) {
        self.mode = Mode::Command;
        self.reader.clear();
        self.events.push_back(ModemEvent::Disconnected { reason });
        self.start_next(now);
    }

    fn start_next(&mut self, now: Instant) {
        if self.in_flight.is_some() || !matches!(self.mode, Mode::Command) {
            return;
        }
        if let Some((id, command)) = self.queue.pop_front() {
            self.send(now, id, command);
        }
    }

    fn send(&mut self, now: Instant, id: Option<CommandId>, command: AtCommand) {
        debug!("sent [{}]", command.display_text());
        let mut bytes = Vec::with_capacity(command.text.len() + 1);
        bytes.extend_from_slice(command.text.as_bytes());
        bytes.push(b'\r');
        self.transmit.push_back(bytes);
        self.in_flight = Some(InFlight {
            id,
            names: command_names(&command.text),
            deadline: now + command.timeout,
            command,
            info_lines: Vec::new(),
            echo_seen: false,
        });
    }

    /// The clock reached `now`: times out the command in flight and runs the hang-up steps. A
    /// spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.in_flight.as_ref().is_some_and(|f| f.deadline <= now)
            && let Some(flight) = self.in_flight.take()
        {
            self.stats.timeouts += 1;
            let command = flight.command.display_text();
            debug!("no final result for [{command}]: timeout");
            match flight.id {
                Some(id) => self.events.push_back(ModemEvent::CommandDone {
                    id,
                    command: command.clone(),
                    result: Err(ModemError::Timeout { command }),
                }),
                None => {
                    self.mode = Mode::Command;
                    self.events.push_back(ModemEvent::Disconnected {
                        reason: DisconnectReason::HangUpUnconfirmed,
                    });
                }
            }
            self.start_next(now);
        }
        match self.mode {
            Mode::GuardBefore { deadline, .. } if deadline <= now => {
                debug!("sent [+++]");
                self.transmit.push_back(b"+++".to_vec());
                self.reader.clear();
                // The modem answers OK one guard time after the last `+` it received; ATH goes
                // on that OK. Without one (some modems stay silent), it goes after a second
                // guard time, by which the modem's own guard time has surely run out.
                self.mode = Mode::GuardAfter {
                    deadline: now + self.config.guard_time * 2,
                };
            }
            Mode::GuardAfter { deadline } if deadline <= now => self.send_hangup_command(now),
            Mode::DtrLow { deadline } if deadline <= now => {
                debug!("hang-up: raising DTR");
                self.events.push_back(ModemEvent::SetDtr(true));
                self.mode = Mode::Command;
                self.reader.clear();
                self.events.push_back(ModemEvent::Disconnected {
                    reason: DisconnectReason::HangUp,
                });
                self.start_next(now);
            }
            _ => {}
        }
    }

    /// The next bytes to write to the modem. Poll until `None` after every input.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next event. Poll until `None` after every input.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ModemEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next (`None`: only input
    /// can change anything). Ask again after every input.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let flight = self.in_flight.as_ref().map(|f| f.deadline);
        let mode = match self.mode {
            Mode::GuardBefore { deadline, .. }
            | Mode::GuardAfter { deadline }
            | Mode::DtrLow { deadline } => Some(deadline),
            _ => None,
        };
        match (flight, mode) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl_modem_driver!(AtEngine);

/// Whether an information line belongs to a command with these `+NAME`s: plain text and lines of
/// commands without a `+NAME` always do; `+NAME:` lines must match one of the command's names;
/// the unsolicited form of a registration line never does.
fn belongs_to(names: &[String], info: &InfoResponse) -> bool {
    let name = match info {
        InfoResponse::Registration(registration) if registration.is_unsolicited() => return false,
        InfoResponse::Text(_) => return true,
        InfoResponse::SignalQuality(_) => "+CSQ",
        InfoResponse::Registration(registration) => registration.kind.prefix(),
        InfoResponse::Attached(_) => "+CGATT",
        InfoResponse::Pin(_) => "+CPIN",
        InfoResponse::Operator(_) => "+COPS",
        InfoResponse::Extended { name, .. } => name.as_str(),
    };
    names.is_empty()
        || names
            .iter()
            .any(|own| name.get(1..).is_some_and(|n| n.eq_ignore_ascii_case(own)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::{ExtendedError, SignalQuality};
    use proptest::prelude::*;

    const SEC: Duration = Duration::from_secs(1);

    fn events(engine: &mut AtEngine) -> Vec<ModemEvent> {
        std::iter::from_fn(|| engine.poll_event()).collect()
    }

    fn sent(engine: &mut AtEngine) -> Vec<String> {
        std::iter::from_fn(|| engine.poll_transmit())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect()
    }

    fn done(event: &ModemEvent) -> (CommandId, &Result<CommandOutcome, ModemError>) {
        match event {
            ModemEvent::CommandDone { id, result, .. } => (*id, result),
            other => panic!("not CommandDone: {other:?}"),
        }
    }

    #[test]
    fn one_in_flight_with_info_lines() {
        let t0 = Instant::now();
        let mut engine = AtEngine::default();
        let a = engine.enqueue(t0, AtCommand::new("AT+CSQ", SEC)).unwrap();
        let b = engine.enqueue(t0, AtCommand::new("ATI", SEC)).unwrap();
        assert_eq!(sent(&mut engine), ["AT+CSQ\r"]);
        engine.handle_input(t0, b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n");
        assert_eq!(sent(&mut engine), ["ATI\r"]);
        engine.handle_input(t0, b"\r\nQuectel\r\nEC25\r\n\r\nOK\r\n");
        let events = events(&mut engine);
        assert_eq!(events.len(), 2);
        let (id, result) = done(&events[0]);
        assert_eq!(id, a);
        let outcome = result.as_ref().unwrap();
        assert!(outcome.is_success());
        assert_eq!(
            outcome.info_lines,
            [InfoResponse::SignalQuality(SignalQuality {
                rssi: 20,
                ber: 99
            })]
        );
        let (id, result) = done(&events[1]);
        assert_eq!(id, b);
        assert_eq!(
            result.as_ref().unwrap().info_lines,
            [
                InfoResponse::Text("Quectel".into()),
                InfoResponse::Text("EC25".into())
            ]
        );
        assert!(engine.is_idle());
    }

    #[test]
    fn echo_on_is_skipped() {
        let t0 = Instant::now();
        let mut engine = AtEngine::default();
        engine.enqueue(t0, AtCommand::new("AT+CSQ", SEC)).unwrap();
        let _ = sent(&mut engine);
        for chunk in [&b"AT+C"[..], b"SQ\r\r\n+CSQ: 5,0\r\n\r\nO", b"K\r\n"] {
            engine.handle_input(t0, chunk);
        }
        let events = events(&mut engine);
        let (_, result) = done(&events[0]);
        assert_eq!(result.as_ref().unwrap().info_lines.len(), 1);
        assert_eq!(engine.stats().echoes, 1);
    }

    #[test]
    fn error_results_are_outcomes() {
        let t0 = Instant::now();
        let mut engine = AtEngine::default();
        engine
            .enqueue(t0, AtCommand::new("AT+CPIN=\"0000\"", SEC).sensitive())
            .unwrap();
        engine.handle_input(t0, b"AT+CPIN=\"0000\"\r\r\n+CME ERROR: 16\r\n");
        let events = events(&mut engine);
        let ModemEvent::CommandDone {
            command, result, ..
        } = &events[0]
        else {
            panic!()
        };
        assert_eq!(command, "AT+CPIN=<hidden>");
        let outcome = result.as_ref().unwrap();
        assert!(!outcome.is_success());
        assert_eq!(
            outcome.final_result,
            FinalResult::CmeError(ExtendedError::Code(16))
        );
    }

    #[test]
    fn timeout_then_next_command() {
        let t0 = Instant::now();
        let mut engine = AtEngine::default();
        engine
            .enqueue(t0, AtCommand::new("AT+CSQ", 2 * SEC))
            .unwrap();
        engine.enqueue(t0, AtCommand::new("AT", SEC)).unwrap();
        assert_eq!(engine.poll_timeout(), Some(t0 + 2 * SEC));
        engine.handle_timeout(t0 + SEC); // spurious
        assert!(events(&mut engine).is_empty());
        engine.handle_timeout(t0 + 2 * SEC);
        let events = events(&mut engine);
        assert_eq!(
            done(&events[0]).1,
            &Err(ModemError::Timeout {
                command: "AT+CSQ".into()
            })
        );
        assert_eq!(sent(&mut engine), ["AT+CSQ\r", "AT\r"]);
        assert_eq!(engine.poll_timeout(), Some(t0 + 3 * SEC));
    }

    #[test]
    fn urcs_between_and_during_commands() {
        let t0 = Instant::now();
        let mut engine = AtEngine::default();
        engine.handle_input(
            t0,
            b"\r\nRING\r\n\r\n+CREG: 5\r\n\r\n+CMTI: \"SM\",1\r\nOK\r\n",
        );
        engine.enqueue(t0, AtCommand::new("AT+CSQ", SEC)).unwrap();
        engine.handle_input(t0, b"\r\n+CEREG: 1\r\n+CSQ: 10,0\r\nRING\r\nOK\r\n");
        let events = events(&mut engine);
        assert!(matches!(events[0], ModemEvent::Urc(Urc::Ring)));
        assert!(
            matches!(&events[1], ModemEvent::Urc(Urc::Registration(r)) if r.status.is_registered())
        );
        assert!(
            matches!(&events[2], ModemEvent::Urc(Urc::Info(InfoResponse::Extended { name, .. })) if name == "+CMTI")
        );
        assert!(matches!(&events[3], ModemEvent::Urc(Urc::Registration(_))));
        assert!(matches!(events[4], ModemEvent::Urc(Urc::Ring)));
        assert_eq!(done(&events[5]).1.as_ref().unwrap().info_lines.len(), 1);
        assert_eq!(engine.stats().unsolicited_finals, 1);
    }

    #[test]
    fn connect_hands_over_with_initial_data() {
        let t0 = Instant::now();
        let mut engine = AtEngine::default();
        engine
            .enqueue(t0, AtCommand::connect("ATD*99#", 30 * SEC))
            .unwrap();
        engine.handle_input(t0, b"\r\nCONNECT 150000000\r\n\x7e\xff\x7d\x23\xc0\x21");
        let events = events(&mut engine);
        assert!(done(&events[0]).1.as_ref().unwrap().is_success());
        assert_eq!(
            events[1],
            ModemEvent::Connected {
                rate: Some(150_000_000),
                text: Some("150000000".into()),
                initial_data: b"\x7e\xff\x7d\x23\xc0\x21".to_vec(),
            }
        );
        assert!(engine.is_online());
        assert_eq!(engine.poll_timeout(), None);
        assert!(engine.enqueue(t0, AtCommand::new("AT", SEC)).is_err());
        // PPP bytes are not interpreted, even if they look like result codes.
        engine.handle_input(t0, b"\x7eOK\r\nERROR\r\n\x7e");
        assert!(engine.poll_event().is_none());
        // NO CARRIER ends the call.
        engine.handle_input(t0, b"\r\nNO CARRIER\r\n");
        assert_eq!(
            events_of(&mut engine),
            [ModemEvent::Disconnected {
                reason: DisconnectReason::NoCarrier
            }]
        );
        assert_eq!(engine.state(), EngineState::Command);
    }

    fn events_of(engine: &mut AtEngine) -> Vec<ModemEvent> {
        events(engine)
    }

    #[test]
    fn escape_hang_up_with_guard_times() {
        let t0 = Instant::now();
        let mut engine = AtEngine::default();
        engine
            .enqueue(t0, AtCommand::connect("ATD*99#", SEC))
            .unwrap();
        engine.handle_input(t0, b"CONNECT\r\n");
        let _ = (sent(&mut engine), events(&mut engine));
        let t1 = t0 + 10 * SEC;
        engine.hang_up(t1);
        assert_eq!(engine.state(), EngineState::HangingUp);
        assert!(sent(&mut engine).is_empty());
        assert_eq!(engine.poll_timeout(), Some(t1 + SEC));
        engine.handle_timeout(t1 + SEC);
        assert_eq!(sent(&mut engine), ["+++"]);
        // Without an answer ATH would go after two guard times.
        assert_eq!(engine.poll_timeout(), Some(t1 + 3 * SEC));
        // The modem accepts the escape one guard time after the last `+`: ATH goes on its OK,
        // and the next OK answers the ATH.
        let accepted = t1 + 2 * SEC + Duration::from_millis(100);
        engine.handle_input(accepted, b"\r\nOK\r\n");
        assert_eq!(sent(&mut engine), ["ATH\r"]);
        assert!(
            events(&mut engine).is_empty(),
            "the escape's OK does not answer ATH"
        );
        engine.handle_input(accepted, b"\r\nOK\r\n");
        assert_eq!(
            events(&mut engine),
            [ModemEvent::Disconnected {
                reason: DisconnectReason::HangUp
            }]
        );
        assert!(engine.is_idle());
    }

    #[test]
    fn escape_hang_up_without_an_answer_sends_ath_after_two_guard_times() {
        let t0 = Instant::now();
        let mut engine = AtEngine::default();
        engine
            .enqueue(t0, AtCommand::connect("ATD*99#", SEC))
            .unwrap();
        engine.handle_input(t0, b"CONNECT\r\n");
        let _ = (sent(&mut engine), events(&mut engine));
        engine.hang_up(t0);
        engine.handle_timeout(t0 + SEC);
        assert_eq!(sent(&mut engine), ["+++"]);
        engine.handle_timeout(t0 + 2 * SEC);
        assert!(
            sent(&mut engine).is_empty(),
            "still inside the modem's guard time"
        );
        engine.handle_timeout(t0 + 3 * SEC);
        assert_eq!(sent(&mut engine), ["ATH\r"]);
    }

    #[test]
    fn dtr_hang_up() {
        let t0 = Instant::now();
        let mut engine = AtEngine::new(EngineConfig {
            hangup_method: HangupMethod::Dtr,
            ..EngineConfig::default()
        });
        engine.handle_input(t0, b"CONNECT\r\n"); // auto-answer
        assert!(engine.is_online());
        let _ = events(&mut engine);
        engine.hang_up(t0);
        assert_eq!(events(&mut engine), [ModemEvent::SetDtr(false)]);
        engine.handle_timeout(t0 + Duration::from_millis(500));
        assert_eq!(
            events(&mut engine),
            [
                ModemEvent::SetDtr(true),
                ModemEvent::Disconnected {
                    reason: DisconnectReason::HangUp
                }
            ]
        );
    }

    #[test]
    fn hang_up_in_command_mode_cancels() {
        let t0 = Instant::now();
        let mut engine = AtEngine::default();
        engine
            .enqueue(t0, AtCommand::connect("ATDT123", SEC))
            .unwrap();
        engine.hang_up(t0);
        assert_eq!(sent(&mut engine), ["ATDT123\r", "ATH\r"]);
        engine.handle_input(t0, b"\r\nNO CARRIER\r\n\r\nOK\r\n");
        let events = events(&mut engine);
        assert!(matches!(
            done(&events[0]).1,
            Err(ModemError::Cancelled { .. })
        ));
        assert_eq!(
            events[1],
            ModemEvent::Disconnected {
                reason: DisconnectReason::HangUp
            }
        );
    }

    #[test]
    fn queue_is_bounded() {
        let t0 = Instant::now();
        let mut engine = AtEngine::new(EngineConfig {
            max_queue: 2,
            ..EngineConfig::default()
        });
        for _ in 0..3 {
            engine.enqueue(t0, AtCommand::new("AT", SEC)).unwrap();
        }
        assert_eq!(
            engine.enqueue(t0, AtCommand::new("AT", SEC)),
            Err(ModemError::QueueFull { limit: 2 })
        );
    }

    #[test]
    fn info_lines_are_bounded() {
        let t0 = Instant::now();
        let mut engine = AtEngine::new(EngineConfig {
            max_info_lines: 2,
            ..EngineConfig::default()
        });
        engine.enqueue(t0, AtCommand::new("ATI", SEC)).unwrap();
        engine.handle_input(t0, b"a\rb\rc\rd\rOK\r");
        let events = events(&mut engine);
        assert_eq!(done(&events[0]).1.as_ref().unwrap().info_lines.len(), 2);
        assert_eq!(engine.stats().dropped_info_lines, 2);
    }

    fn conversation(echo: bool) -> Vec<u8> {
        let mut bytes = Vec::new();
        if echo {
            bytes.extend_from_slice(b"AT+CSQ\r");
        }
        bytes.extend_from_slice(b"\r\n+CSQ: 20,99\r\n\r\nRING\r\n\0\r\r\nOK\r\n");
        if echo {
            bytes.extend_from_slice(b"ATD*99#\r");
        }
        bytes.extend_from_slice(b"\r\nCONNECT 115200\r\n\x7e\xff\x03\xc0\x21");
        bytes
    }

    /// Runs the two-command conversation split at `cuts`; returns the events and PPP bytes.
    fn run_split(echo: bool, cuts: &[usize]) -> (Vec<ModemEvent>, Vec<u8>) {
        let t0 = Instant::now();
        let mut engine = AtEngine::default();
        engine.enqueue(t0, AtCommand::new("AT+CSQ", SEC)).unwrap();
        engine
            .enqueue(t0, AtCommand::connect("ATD*99#", SEC))
            .unwrap();
        let bytes = conversation(echo);
        let mut events = Vec::new();
        let mut ppp = Vec::new();
        let mut start = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.push(bytes.len());
        cuts.sort_unstable();
        for cut in cuts {
            if cut < start {
                continue;
            }
            let chunk = &bytes[start..cut];
            if engine.is_online() {
                ppp.extend_from_slice(chunk);
            }
            engine.handle_input(t0, chunk);
            start = cut;
            while let Some(event) = engine.poll_event() {
                if let ModemEvent::Connected { initial_data, .. } = &event {
                    ppp.extend_from_slice(initial_data);
                }
                let event = match event {
                    ModemEvent::Connected { rate, text, .. } => ModemEvent::Connected {
                        rate,
                        text,
                        initial_data: Vec::new(),
                    },
                    other => other,
                };
                events.push(event);
            }
        }
        (events, ppp)
    }

    proptest! {
        #[test]
        fn chunking_and_echo_do_not_change_the_outcome(
            cuts in proptest::collection::vec(0usize..200, 0..12),
            echo in any::<bool>(),
        ) {
            let (expected_events, expected_ppp) = run_split(false, &[]);
            prop_assert_eq!(expected_events.len(), 4);
            prop_assert_eq!(&expected_ppp, b"\x7e\xff\x03\xc0\x21");
            let (events, ppp) = run_split(echo, &cuts);
            prop_assert_eq!(events, expected_events);
            // A cut between the CR and LF of the CONNECT line leaves the LF in the PPP stream
            // (harmless: PPP discards everything before a flag).
            let ppp = ppp.strip_prefix(b"\n").unwrap_or(&ppp);
            prop_assert_eq!(ppp, &expected_ppp[..]);
        }

        #[test]
        fn arbitrary_input_never_panics_and_stays_bounded(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..30),
            lines in proptest::collection::vec("(OK|ERROR|RING|CONNECT|NO CARRIER|\\+CSQ: 1,2|x{0,40})", 0..30),
        ) {
            let t0 = Instant::now();
            let mut engine = AtEngine::new(EngineConfig {
                max_line_len: 64,
                max_info_lines: 4,
                ..EngineConfig::default()
            });
            for (i, chunk) in chunks.iter().enumerate() {
                let now = t0 + SEC * u32::try_from(i).unwrap_or(0);
                if engine.is_idle() {
                    let _ = engine.enqueue(now, AtCommand::new("ATI", SEC));
                }
                engine.handle_input(now, chunk);
                if let Some(line) = lines.get(i) {
                    engine.handle_input(now, format!("\r\n{line}\r\n").as_bytes());
                }
                engine.handle_timeout(now);
                if i % 7 == 6 {
                    engine.hang_up(now);
                }
                while let Some(event) = engine.poll_event() {
                    if let ModemEvent::CommandDone { result: Ok(outcome), .. } = event {
                        prop_assert!(outcome.info_lines.len() <= 4);
                    }
                }
                while engine.poll_transmit().is_some() {}
                prop_assert!(engine.reader.pending().len() <= 64);
                prop_assert!(engine.queue.len() <= engine.config.max_queue);
            }
        }
    }

    /// Throughput of the line reader, parser and engine on a stream of responses. Run with
    /// `cargo test -p ppp-modem --release -- --ignored --nocapture throughput`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn throughput() {
        let t0 = Instant::now();
        let mut engine = AtEngine::new(EngineConfig {
            max_info_lines: 1_000_000,
            ..EngineConfig::default()
        });
        let mut stream = Vec::new();
        for i in 0..200_000u32 {
            let line = match i % 4 {
                0 => format!("+CSQ: {},99\r\n", i % 32),
                1 => "+CREG: 0,1\r\n".to_owned(),
                2 => "+COPS: 0,0,\"Operator\",7\r\n".to_owned(),
                _ => "Quectel EC25 Revision: EC25EFAR06A06M4G\r\n".to_owned(),
            };
            stream.extend_from_slice(line.as_bytes());
        }
        stream.extend_from_slice(b"OK\r\n");
        engine.enqueue(t0, AtCommand::new("ATI", SEC)).unwrap();
        let start = std::time::Instant::now();
        for chunk in stream.chunks(4096) {
            engine.handle_input(t0, chunk);
        }
        let elapsed = start.elapsed();
        let Some(ModemEvent::CommandDone {
            result: Ok(outcome),
            ..
        }) = engine.poll_event()
        else {
            panic!("no outcome");
        };
        assert_eq!(outcome.info_lines.len(), 200_000);
        println!(
            "{} lines, {} bytes in {:?}: {:.0} lines/s, {:.1} MB/s",
            200_000,
            stream.len(),
            elapsed,
            200_000.0 / elapsed.as_secs_f64(),
            stream.len() as f64 / elapsed.as_secs_f64() / 1e6
        );
    }
}
