//! A simulated modem that speaks AT in memory, and a harness that connects it to any
//! [`ModemDriver`] on virtual time. For tests (here, in the dial-out program and in the interop
//! harness); enabled by the `sim` cargo feature.
//!
//! The [`SimModem`] is sans-IO like everything else: bytes from the host go in with
//! [`SimModem::handle_input`], its replies come out of [`SimModem::poll_output`], and delayed
//! behaviour (registration, connect delay, dropped calls, rings, escape guard time) runs on
//! [`SimModem::poll_timeout`] / [`SimModem::handle_timeout`]. After `CONNECT` it is a transparent
//! pipe: host bytes come out of [`SimModem::take_peer_data`] for the PPP peer, and the peer's
//! bytes go in with [`SimModem::send_from_peer`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::event::{ModemDriver, ModemEvent};

/// What the simulated modem does with `ATD` (or `ATA`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallBehaviour {
    /// Answers `CONNECT` followed by this text (e.g. `Some("115200")`).
    Connect(Option<String>),
    /// Answers `BUSY`.
    Busy,
    /// Answers `NO CARRIER`.
    NoCarrier,
    /// Answers `NO ANSWER`.
    NoAnswer,
    /// Answers `NO DIALTONE`.
    NoDialtone,
    /// Never answers.
    Silent,
}

/// How the simulated network treats registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimRegistration {
    /// Registers (home) after [`SimConfig::registration_delay`].
    Home,
    /// Registers roaming after the delay.
    Roaming,
    /// Denies registration after the delay.
    Denied,
    /// Searches forever.
    Never,
}

/// The simulated modem's behaviour.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimConfig {
    /// Echo at power-on (default true, like real modems; `ATE0` turns it off).
    pub echo: bool,
    /// The SIM PIN, if the SIM needs one (default none).
    pub pin: Option<String>,
    /// Whether the SIM is blocked (`+CPIN: SIM PUK`).
    pub puk_locked: bool,
    /// Registration.
    pub registration: SimRegistration,
    /// Time from power-on (or PIN entry) to registration (default 0).
    pub registration_delay: Duration,
    /// What `ATD` does.
    pub dial: CallBehaviour,
    /// What `ATA` does while ringing.
    pub answer: CallBehaviour,
    /// Delay before the result of `ATD`/`ATA` (default 0).
    pub connect_delay: Duration,
    /// Drop the call (`NO CARRIER`) this long after `CONNECT`.
    pub drop_call_after: Option<Duration>,
    /// Put binary noise and NULs before every response.
    pub garbage: bool,
    /// Never say anything at all.
    pub silent: bool,
    /// The `+CSQ` values.
    pub csq: (u8, u8),
    /// The operator name for `+COPS?`.
    pub operator: String,
    /// The access technology for `+COPS?`.
    pub access_technology: u8,
    /// The interval between `RING`s (default 6 s).
    pub ring_interval: Duration,
    /// The escape guard time (default 1 s).
    pub guard_time: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            echo: true,
            pin: None,
            puk_locked: false,
            registration: SimRegistration::Home,
            registration_delay: Duration::ZERO,
            dial: CallBehaviour::Connect(Some("115200".into())),
            answer: CallBehaviour::Connect(Some("33600".into())),
            connect_delay: Duration::ZERO,
            drop_call_after: None,
            garbage: false,
            silent: false,
            csq: (20, 99),
            operator: "SimNet".into(),
            access_technology: 7,
            ring_interval: Duration::from_secs(6),
            guard_time: Duration::from_secs(1),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Mode {
    Command,
    /// A dial or answer in progress: the result is due at the deadline.
    Calling {
        due: Instant,
        behaviour: CallBehaviour,
    },
    Online {
        since: Instant,
    },
    /// Escaped to command mode with the call still up.
    EscapedCall,
}

/// A simulated AT modem (see the [module docs](self)).
#[derive(Debug)]
pub struct SimModem {
    config: SimConfig,
    mode: Mode,
    echo: bool,
    line: Vec<u8>,
    output: VecDeque<Vec<u8>>,
    to_peer: Vec<u8>,
    powered_at: Option<Instant>,
    pin_entered_at: Option<Instant>,
    rings_left: u32,
    next_ring: Option<Instant>,
    last_ring: Option<Instant>,
    last_host_rx: Option<Instant>,
    escape_due: Option<Instant>,
    commands: Vec<(Instant, String)>,
    escapes: u32,
    calls: u32,
    dtr: bool,
}

impl SimModem {
    /// A modem, on-hook in command mode.
    pub fn new(config: SimConfig) -> Self {
        Self {
            echo: config.echo,
            config,
            mode: Mode::Command,
            line: Vec::new(),
            output: VecDeque::new(),
            to_peer: Vec::new(),
            powered_at: None,
            pin_entered_at: None,
            rings_left: 0,
            next_ring: None,
            last_ring: None,
            last_host_rx: None,
            escape_due: None,
            commands: Vec::new(),
            escapes: 0,
            calls: 0,
            dtr: true,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Every command line received, with its time (PINs included: this is a test tool).
    pub fn commands(&self) -> &[(Instant, String)] {
        &self.commands
    }

    /// How many `+++` escapes were accepted (guard times respected).
    pub fn escapes(&self) -> u32 {
        self.escapes
    }

    /// How many calls reached `CONNECT`.
    pub fn calls(&self) -> u32 {
        self.calls
    }

    /// Whether the modem is online (a transparent pipe).
    pub fn is_online(&self) -> bool {
        matches!(self.mode, Mode::Online { .. })
    }

    /// Whether a call is up (online, or escaped to command mode without hanging up).
    pub fn is_off_hook(&self) -> bool {
        matches!(self.mode, Mode::Online { .. } | Mode::EscapedCall)
    }

    /// The DTR level last set.
    pub fn dtr(&self) -> bool {
        self.dtr
    }

    /// Starts an incoming call: `count` `RING`s, the first at `now`, then every
    /// [`SimConfig::ring_interval`].
    pub fn ring(&mut self, now: Instant, count: u32) {
        self.rings_left = count;
        self.next_ring = (count > 0).then_some(now);
        self.handle_timeout(now);
    }

    /// Drops the call at once (`NO CARRIER`), as if the remote end hung up.
    pub fn drop_call(&mut self, _now: Instant) {
        if self.is_off_hook() {
            self.mode = Mode::Command;
            self.say("NO CARRIER");
        }
    }

    /// The host set DTR. Dropping it hangs up a call (like `AT&D2`).
    pub fn set_dtr(&mut self, _now: Instant, level: bool) {
        self.dtr = level;
        if !level && self.is_off_hook() {
            self.mode = Mode::Command;
            self.say("NO CARRIER");
        }
    }

    /// Bytes the PPP peer sends: delivered to the host while online, dropped otherwise.
    pub fn send_from_peer(&mut self, bytes: &[u8]) {
        if self.is_online() && !bytes.is_empty() {
            self.output.push_back(bytes.to_vec());
        }
    }

    /// Bytes the host sent while online, for the PPP peer.
    pub fn take_peer_data(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.to_peer)
    }

    /// Bytes from the host (the DTE) at `now`.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        self.powered_at.get_or_insert(now);
        let silence = self
            .last_host_rx
            .is_none_or(|last| now.duration_since(last) >= self.config.guard_time);
        self.last_host_rx = Some(now);
        if let Mode::Online { .. } = self.mode {
            if let Some(_due) = self.escape_due.take() {
                // Data inside the guard time after "+++": it was data after all.
                self.to_peer.extend_from_slice(b"+++");
            }
            if bytes == b"+++" && silence {
                self.escape_due = Some(now + self.config.guard_time);
            } else {
                self.to_peer.extend_from_slice(bytes);
            }
            return;
        }
        if matches!(self.mode, Mode::Calling { .. }) {
            // Any character aborts a call attempt.
            self.mode = Mode::Command;
            self.say("NO CARRIER");
        }
        for &byte in bytes {
            if self.echo && !self.config.silent {
                self.output.push_back(vec![byte]);
            }
            match byte {
                b'\r' => {
                    let line = String::from_utf8_lossy(&self.line).trim().to_owned();
                    self.line.clear();
                    if !line.is_empty() {
                        self.command(now, &line);
                    }
                }
                b'\n' => {}
                _ if self.line.len() < 512 => self.line.push(byte),
                _ => {}
            }
        }
    }

    fn say(&mut self, line: &str) {
        if self.config.silent {
            return;
        }
        if self.config.garbage {
            self.output.push_back(b"\0\xfe\xff\x00\r\r\n".to_vec());
        }
        self.output
            .push_back(format!("\r\n{line}\r\n").into_bytes());
    }

    fn registration_status(&self, now: Instant) -> u8 {
        let Some(start) = self.pin_entered_at.or(if self.config.pin.is_none() {
            self.powered_at
        } else {
            None
        }) else {
            return 0;
        };
        if self.config.puk_locked {
            return 0;
        }
        if now.duration_since(start) < self.config.registration_delay {
            return 2;
        }
        match self.config.registration {
            SimRegistration::Home => 1,
            SimRegistration::Roaming => 5,
            SimRegistration::Denied => 3,
            SimRegistration::Never => 2,
        }
    }

    fn command(&mut self, now: Instant, line: &str) {
        self.commands.push((now, line.to_owned()));
        let upper = line.to_ascii_uppercase();
        let Some(body) = upper.strip_prefix("AT") else {
            self.say("ERROR");
            return;
        };
        let pin_ready =
            !self.config.puk_locked && (self.config.pin.is_none() || self.pin_entered_at.is_some());
        match body {
            "" | "Z" | "&F" => {
                if !body.is_empty() {
                    self.echo = self.config.echo;
                }
                self.say("OK");
            }
            "I" => {
                self.say("SimModem");
                self.say("OK");
            }
            "+CPIN?" => {
                let state = if self.config.puk_locked {
                    "SIM PUK"
                } else if pin_ready {
                    "READY"
                } else {
                    "SIM PIN"
                };
                self.say(&format!("+CPIN: {state}"));
                self.say("OK");
            }
            "+CSQ" => {
                let (rssi, ber) = self.config.csq;
                self.say(&format!("+CSQ: {rssi},{ber}"));
                self.say("OK");
            }
            "+COPS?" => {
                let status = self.registration_status(now);
                if status == 1 || status == 5 {
                    let line = format!(
                        "+COPS: 0,0,\"{}\",{}",
                        self.config.operator, self.config.access_technology
                    );
                    self.say(&line);
                } else {
                    self.say("+COPS: 0");
                }
                self.say("OK");
            }
            "+CREG?" | "+CGREG?" | "+CEREG?" => {
                let status = self.registration_status(now);
                let name = body.trim_end_matches('?');
                self.say(&format!("{name}: 0,{status}"));
                self.say("OK");
            }
            "+CGATT?" => {
                let attached = matches!(self.registration_status(now), 1 | 5);
                self.say(&format!("+CGATT: {}", u8::from(attached)));
                self.say("OK");
            }
            "H" | "H0" => {
                self.mode = Mode::Command;
                self.say("OK");
            }
            "O" | "O0" if self.mode == Mode::EscapedCall => {
                self.mode = Mode::Online { since: now };
                self.say("CONNECT");
            }
            "A" => {
                let ringing = self.rings_left > 0
                    || self
                        .last_ring
                        .is_some_and(|t| now.duration_since(t) < self.config.ring_interval * 2);
                let behaviour = if ringing {
                    self.config.answer.clone()
                } else {
                    CallBehaviour::NoCarrier
                };
                self.rings_left = 0;
                self.next_ring = None;
                self.last_ring = None;
                self.start_call(now, behaviour);
            }
            _ if body.starts_with('D') => {
                let behaviour = self.config.dial.clone();
                self.start_call(now, behaviour);
            }
            _ if body.starts_with("+CPIN=") => {
                let given = line
                    .split_once('=')
                    .map(|(_, pin)| pin.trim().trim_matches('"'));
                match &self.config.pin {
                    _ if self.config.puk_locked => self.say("+CME ERROR: 12"),
                    Some(pin) if self.pin_entered_at.is_none() => {
                        if given == Some(pin.as_str()) {
                            self.pin_entered_at = Some(now);
                            self.say("OK");
                        } else {
                            self.say("+CME ERROR: 16");
                        }
                    }
                    _ => self.say("+CME ERROR: 3"),
                }
            }
            _ if body.starts_with("+CGDCONT=") || body.starts_with("+CMEE") => self.say("OK"),
            _ if body.starts_with('+') => self.say("ERROR"),
            _ => {
                // Basic commands such as E0V1&D2S0=0: only E0/E1 matter here.
                if body.contains("E0") {
                    self.echo = false;
                } else if body.contains("E1") {
                    self.echo = true;
                }
                self.say("OK");
            }
        }
    }

    fn start_call(&mut self, now: Instant, behaviour: CallBehaviour) {
        self.mode = Mode::Calling {
            due: now + self.config.connect_delay,
            behaviour,
        };
        self.handle_timeout(now);
    }

    /// The clock reached `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Mode::Calling { due, behaviour } = &self.mode
            && *due <= now
        {
            let behaviour = behaviour.clone();
            self.mode = Mode::Command;
            match behaviour {
                CallBehaviour::Connect(text) => {
                    self.calls += 1;
                    self.escape_due = None;
                    self.last_host_rx = Some(now);
                    self.mode = Mode::Online { since: now };
                    match text {
                        Some(text) => self.say(&format!("CONNECT {text}")),
                        None => self.say("CONNECT"),
                    }
                }
                CallBehaviour::Busy => self.say("BUSY"),
                CallBehaviour::NoCarrier => self.say("NO CARRIER"),
                CallBehaviour::NoAnswer => self.say("NO ANSWER"),
                CallBehaviour::NoDialtone => self.say("NO DIALTONE"),
                CallBehaviour::Silent => {
                    self.mode = Mode::Calling {
                        due: now + Duration::from_secs(86_400 * 365),
                        behaviour: CallBehaviour::Silent,
                    };
                }
            }
        }
        if let Mode::Online { since } = self.mode
            && let Some(drop_after) = self.config.drop_call_after
            && now.duration_since(since) >= drop_after
        {
            self.mode = Mode::Command;
            self.say("NO CARRIER");
        }
        if let Some(due) = self.escape_due
            && due <= now
            && self.is_online()
        {
            self.escape_due = None;
            self.escapes += 1;
            self.mode = Mode::EscapedCall;
            self.say("OK");
        }
        while let Some(at) = self.next_ring.filter(|at| *at <= now) {
            self.say("RING");
            self.last_ring = Some(at);
            self.rings_left = self.rings_left.saturating_sub(1);
            self.next_ring = (self.rings_left > 0).then(|| at + self.config.ring_interval);
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let call = match &self.mode {
            Mode::Calling { due, .. } => Some(*due),
            Mode::Online { since } => self.config.drop_call_after.map(|d| *since + d),
            _ => None,
        };
        [call, self.escape_due, self.next_ring]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next bytes for the host.
    pub fn poll_output(&mut self) -> Option<Vec<u8>> {
        self.output.pop_front()
    }
}

/// A [`ModemDriver`] wired to a [`SimModem`] on virtual time.
///
/// Bytes move between the two with zero latency; [`ModemEvent::SetDtr`] is applied to the modem;
/// while the driver is online the modem's bytes go both to the driver (which watches for
/// `NO CARRIER`) and to [`host_ppp`](Self::host_ppp), as an adapter would do.
#[derive(Debug)]
pub struct Harness<M> {
    /// The machine under test.
    pub machine: M,
    /// The simulated modem.
    pub modem: SimModem,
    /// The virtual clock.
    pub now: Instant,
    /// Every event the machine emitted, with its time.
    pub events: Vec<(Instant, ModemEvent)>,
    /// The PPP bytes the host received while online (including `initial_data`).
    pub host_ppp: Vec<u8>,
    /// Deliver the modem's output to the machine in pieces of at most this many bytes (to test
    /// lines split across reads); `None` (the default): as the modem produced it.
    pub chunk_size: Option<usize>,
}

impl<M: ModemDriver> Harness<M> {
    /// Wires `machine` to `modem`, with the clock at `start`.
    pub fn new(machine: M, modem: SimModem, start: Instant) -> Self {
        Self {
            machine,
            modem,
            now: start,
            events: Vec::new(),
            host_ppp: Vec::new(),
            chunk_size: None,
        }
    }

    /// Moves bytes and events until nothing moves at the current time.
    pub fn settle(&mut self) {
        for _ in 0..100_000 {
            let mut moved = false;
            while let Some(bytes) = self.machine.poll_transmit() {
                self.modem.handle_input(self.now, &bytes);
                moved = true;
            }
            while let Some(bytes) = self.modem.poll_output() {
                let size = self.chunk_size.unwrap_or(bytes.len()).max(1);
                for chunk in bytes.chunks(size) {
                    if self.machine.is_online() {
                        self.host_ppp.extend_from_slice(chunk);
                    }
                    self.machine.handle_input(self.now, chunk);
                }
                moved = true;
            }
            while let Some(event) = self.machine.poll_event() {
                match &event {
                    ModemEvent::SetDtr(level) => self.modem.set_dtr(self.now, *level),
                    ModemEvent::Connected { initial_data, .. } => {
                        self.host_ppp.extend_from_slice(initial_data);
                    }
                    _ => {}
                }
                self.events.push((self.now, event));
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }

    /// The host writes PPP bytes to the modem (while online).
    pub fn send_ppp(&mut self, bytes: &[u8]) {
        self.modem.handle_input(self.now, bytes);
        self.settle();
    }

    /// Runs timers in order until the clock reaches `until`.
    pub fn run_until(&mut self, until: Instant) {
        self.run(until, |_| false);
    }

    /// Runs for `limit` of virtual time or until an event matching `matches` is emitted; returns
    /// that event.
    pub fn run_until_event(
        &mut self,
        limit: Duration,
        mut matches: impl FnMut(&ModemEvent) -> bool,
    ) -> Option<ModemEvent> {
        let until = self.now + limit;
        self.run(until, &mut matches)
    }

    fn run(
        &mut self,
        until: Instant,
        mut matches: impl FnMut(&ModemEvent) -> bool,
    ) -> Option<ModemEvent> {
        let mut seen = self.events.len();
        for _ in 0..1_000_000 {
            self.settle();
            if let Some((_, event)) = self.events[seen..].iter().find(|(_, e)| matches(e)) {
                return Some(event.clone());
            }
            seen = self.events.len();
            let next = [self.machine.poll_timeout(), self.modem.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) if at <= until => {
                    self.now = self.now.max(at);
                    self.machine.handle_timeout(self.now);
                    self.modem.handle_timeout(self.now);
                }
                _ => {
                    self.now = self.now.max(until);
                    self.settle();
                    return self.events[seen..]
                        .iter()
                        .find(|(_, e)| matches(e))
                        .map(|(_, e)| e.clone());
                }
            }
        }
        None
    }

    /// The events emitted so far, without their times.
    pub fn event_list(&self) -> Vec<ModemEvent> {
        self.events.iter().map(|(_, e)| e.clone()).collect()
    }
}
