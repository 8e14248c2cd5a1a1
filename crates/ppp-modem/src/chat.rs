//! pppd `chat`-style scripts: parsed into a [`ChatScript`] and run by a [`ChatRunner`] on the
//! same verbs as the other machines.
//!
//! Supported: expect/send pairs separated by white space, `''` or `""` for "expect nothing",
//! single and double quotes, comment lines starting with `#`, sub-expect/sub-send alternatives
//! (`ogin:-BREAK-ogin:`), and the keywords `ABORT`, `CLR_ABORT`, `TIMEOUT <seconds>`, `SAY`,
//! `ECHO ON|OFF` and `HANGUP ON|OFF` (both accepted and ignored). Send strings end with `\r`
//! unless they end in `\c`; `BREAK` and `EOT` are special send strings. Escapes: `\b \c \d \K \n
//! \N \p \q \r \s \t \\ \ddd` (octal) and `^X` (control characters); `\d`, `\p`, `\K`, `\c`
//! and `\q` only in send strings. Rejected with [`ModemError::ChatUnsupported`]: `REPORT`,
//! `CLR_REPORT`, `\T`, `\U`, `@file` and environment substitution.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use ppp_core::CloseReason;
use tracing::debug;

use crate::error::ModemError;
use crate::event::{DisconnectReason, ModemEvent, impl_modem_driver};
use crate::line::CarrierWatch;
use crate::response::connect_rate;

/// The longest expect or ABORT string accepted.
pub const MAX_PATTERN_LEN: usize = 256;
/// The default expect timeout (chat's 45 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(45);
/// The most input bytes held while a send (with its delays) is in progress.
const MAX_INBOX: usize = 4096;

/// One piece of a send string.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendPart {
    /// Bytes to write.
    Bytes(Vec<u8>),
    /// Wait this long before the next part (`\d`: 1 s, `\p`: 100 ms).
    Delay(Duration),
    /// Send a break (`BREAK` or `\K`).
    Break,
}

/// A send string, split into bytes, delays and breaks.
#[derive(Clone, PartialEq, Eq)]
pub struct SendString {
    /// The parts, in order.
    pub parts: Vec<SendPart>,
    /// `\q`: do not log the text.
    pub quiet: bool,
}

impl fmt::Debug for SendString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.quiet {
            return f.write_str("SendString(<hidden>)");
        }
        f.debug_tuple("SendString").field(&self.parts).finish()
    }
}

impl SendString {
    fn display(&self) -> String {
        if self.quiet {
            return "<hidden>".to_owned();
        }
        let mut text = String::new();
        for part in &self.parts {
            match part {
                SendPart::Bytes(bytes) => text.push_str(&printable(bytes)),
                SendPart::Delay(delay) => text.push_str(&format!("<delay {delay:?}>")),
                SendPart::Break => text.push_str("<break>"),
            }
        }
        text
    }
}

/// An expect string with its sub-send/sub-expect alternatives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectString {
    /// The first string to wait for (empty: expect nothing).
    pub first: Vec<u8>,
    /// On timeout: send the string, then wait for the next one, in order.
    pub alternatives: Vec<(SendString, Vec<u8>)>,
}

/// One step of a chat script.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChatStep {
    /// `ABORT <string>`: fail if this arrives while expecting.
    Abort(Vec<u8>),
    /// `CLR_ABORT <string>`: forget an ABORT string.
    ClearAbort(Vec<u8>),
    /// `TIMEOUT <seconds>`: the timeout for the following expects.
    Timeout(Duration),
    /// `SAY <string>`: an [`ModemEvent::Say`] for the user.
    Say(String),
    /// `ECHO ON|OFF`: accepted; received text is logged at debug level either way.
    Echo(bool),
    /// `HANGUP ON|OFF`: accepted and ignored (hang-up handling belongs to the adapter).
    Hangup(bool),
    /// Wait for `expect`, then send `send` (none: the script ends after the expect).
    Exchange {
        /// What to wait for.
        expect: ExpectString,
        /// What to send after it.
        send: Option<SendString>,
    },
}

/// A parsed chat script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatScript {
    /// The steps, in order.
    pub steps: Vec<ChatStep>,
}

impl ChatScript {
    /// Parses a script in chat's syntax (a file's contents or a command-line script).
    pub fn parse(script: &str) -> Result<Self, ModemError> {
        let words = tokenize(script)?;
        let mut steps = Vec::new();
        let mut index = 0;
        let arg = |index: usize, keyword: &str| -> Result<&String, ModemError> {
            words.get(index + 1).ok_or_else(|| ModemError::ChatSyntax {
                word: index + 1,
                message: format!("{keyword} needs an argument"),
            })
        };
        while index < words.len() {
            let word = words[index].as_str();
            let number = index + 1;
            let step = match word {
                "ABORT" => Some(ChatStep::Abort(pattern(arg(index, word)?, number + 1)?)),
                "CLR_ABORT" => Some(ChatStep::ClearAbort(pattern(
                    arg(index, word)?,
                    number + 1,
                )?)),
                "TIMEOUT" => {
                    let value = arg(index, word)?;
                    let seconds: u64 = value.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        ModemError::ChatSyntax {
                            word: number + 1,
                            message: format!("TIMEOUT needs a positive number, not {value:?}"),
                        }
                    })?;
                    Some(ChatStep::Timeout(Duration::from_secs(seconds)))
                }
                "SAY" => {
                    let text = unescape(arg(index, word)?, Context::Say, number + 1)?;
                    Some(ChatStep::Say(
                        String::from_utf8_lossy(&text.bytes).into_owned(),
                    ))
                }
                "ECHO" | "HANGUP" => {
                    let value = arg(index, word)?;
                    let on = match value.as_str() {
                        "ON" => true,
                        "OFF" => false,
                        _ => {
                            return Err(ModemError::ChatSyntax {
                                word: number + 1,
                                message: format!("{word} takes ON or OFF, not {value:?}"),
                            });
                        }
                    };
                    Some(if word == "ECHO" {
                        ChatStep::Echo(on)
                    } else {
                        ChatStep::Hangup(on)
                    })
                }
                "REPORT" | "CLR_REPORT" => {
                    return Err(ModemError::ChatUnsupported {
                        feature: word.to_owned(),
                    });
                }
                _ => None,
            };
            if let Some(step) = step {
                steps.push(step);
                index += 2;
                continue;
            }
            let expect = expect_string(word, number)?;
            let send = match words.get(index + 1) {
                Some(send) => Some(send_string(send, number + 1)?),
                None => None,
            };
            steps.push(ChatStep::Exchange { expect, send });
            index += 2;
        }
        Ok(Self { steps })
    }
}

/// Splits a script into words: white space separates, quotes group (and are removed), a `#` at
/// the start of a line comments it out. Backslash escapes are kept for later.
fn tokenize(script: &str) -> Result<Vec<String>, ModemError> {
    let mut words = Vec::new();
    for line in script.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let mut chars = line.chars().peekable();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
                continue;
            }
            let mut word = String::new();
            let mut quote: Option<char> = None;
            while let Some(&c) = chars.peek() {
                match quote {
                    None if c.is_whitespace() => break,
                    None if c == '\'' || c == '"' => quote = Some(c),
                    Some(q) if c == q => quote = None,
                    _ if c == '\\' => {
                        word.push(c);
                        chars.next();
                        if let Some(next) = chars.next() {
                            word.push(next);
                        }
                        continue;
                    }
                    _ => word.push(c),
                }
                chars.next();
            }
            if quote.is_some() {
                return Err(ModemError::ChatSyntax {
                    word: words.len() + 1,
                    message: "unterminated quote".to_owned(),
                });
            }
            if word.starts_with('@') && words.is_empty() {
                return Err(ModemError::ChatUnsupported {
                    feature: "@file".to_owned(),
                });
            }
            words.push(word);
        }
    }
    Ok(words)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Expect,
    Send,
    Say,
}

struct Unescaped {
    bytes: Vec<u8>,
    parts: Vec<SendPart>,
    add_return: bool,
    quiet: bool,
}

fn unescape(text: &str, context: Context, word: usize) -> Result<Unescaped, ModemError> {
    let mut out = Unescaped {
        bytes: Vec::new(),
        parts: Vec::new(),
        add_return: context == Context::Send,
        quiet: false,
    };
    let send_only = |escape: char| -> Result<(), ModemError> {
        if context == Context::Send {
            Ok(())
        } else {
            Err(ModemError::ChatSyntax {
                word,
                message: format!("\\{escape} is only allowed in send strings"),
            })
        }
    };
    let flush = |out: &mut Unescaped| {
        if !out.bytes.is_empty() {
            let bytes = std::mem::take(&mut out.bytes);
            out.parts.push(SendPart::Bytes(bytes));
        }
    };
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        i += 1;
        match c {
            b'^' if i < bytes.len() => {
                let ctl = bytes[i];
                i += 1;
                out.bytes.push(if ctl == b'?' { 0x7f } else { ctl & 0x1f });
            }
            b'\\' if i < bytes.len() => {
                let escape = bytes[i];
                i += 1;
                match escape {
                    b'b' => out.bytes.push(0x08),
                    b'n' => out.bytes.push(b'\n'),
                    b'r' => out.bytes.push(b'\r'),
                    b's' => out.bytes.push(b' '),
                    b't' => out.bytes.push(b'\t'),
                    b'\\' => out.bytes.push(b'\\'),
                    b'-' => out.bytes.push(b'-'),
                    b'N' => out.bytes.push(0),
                    b'0'..=b'7' => {
                        let mut value = u32::from(escape - b'0');
                        for _ in 0..2 {
                            match bytes.get(i) {
                                Some(d @ b'0'..=b'7') => {
                                    value = value * 8 + u32::from(d - b'0');
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        out.bytes.push((value & 0xff) as u8);
                    }
                    b'c' => {
                        send_only('c')?;
                        if i != bytes.len() {
                            return Err(ModemError::ChatSyntax {
                                word,
                                message: "\\c must end the send string".to_owned(),
                            });
                        }
                        out.add_return = false;
                    }
                    b'd' | b'p' => {
                        send_only(char::from(escape))?;
                        flush(&mut out);
                        out.parts.push(SendPart::Delay(if escape == b'd' {
                            Duration::from_secs(1)
                        } else {
                            Duration::from_millis(100)
                        }));
                    }
                    b'K' => {
                        send_only('K')?;
                        flush(&mut out);
                        out.parts.push(SendPart::Break);
                    }
                    b'q' => {
                        send_only('q')?;
                        out.quiet = true;
                    }
                    b'T' | b'U' => {
                        return Err(ModemError::ChatUnsupported {
                            feature: format!("\\{}", char::from(escape)),
                        });
                    }
                    other => {
                        return Err(ModemError::ChatSyntax {
                            word,
                            message: format!("unknown escape \\{}", char::from(other)),
                        });
                    }
                }
            }
            other => out.bytes.push(other),
        }
    }
    if out.add_return {
        out.bytes.push(b'\r');
    }
    if context == Context::Send {
        flush(&mut out);
    }
    Ok(out)
}

fn pattern(text: &str, word: usize) -> Result<Vec<u8>, ModemError> {
    let bytes = unescape(text, Context::Expect, word)?.bytes;
    if bytes.len() > MAX_PATTERN_LEN {
        return Err(ModemError::ChatSyntax {
            word,
            message: format!("longer than {MAX_PATTERN_LEN} bytes"),
        });
    }
    Ok(bytes)
}

fn send_string(text: &str, word: usize) -> Result<SendString, ModemError> {
    match text {
        "BREAK" => Ok(SendString {
            parts: vec![SendPart::Break],
            quiet: false,
        }),
        "EOT" => Ok(SendString {
            parts: vec![SendPart::Bytes(vec![0x04])],
            quiet: false,
        }),
        _ => {
            let out = unescape(text, Context::Send, word)?;
            Ok(SendString {
                parts: out.parts,
                quiet: out.quiet,
            })
        }
    }
}

/// Splits `a-b-c` at dashes not escaped with a backslash.
fn split_dashes(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'-' => {
                pieces.push(&text[start..i]);
                start = i + 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    pieces.push(text.get(start..).unwrap_or_default());
    pieces
}

fn expect_string(text: &str, word: usize) -> Result<ExpectString, ModemError> {
    let pieces = split_dashes(text);
    let first = pattern(pieces[0], word)?;
    let mut alternatives = Vec::new();
    let mut rest = pieces[1..].iter();
    while let Some(send) = rest.next() {
        let expect = rest.next().ok_or_else(|| ModemError::ChatSyntax {
            word,
            message: "a sub-send needs a sub-expect after it".to_owned(),
        })?;
        alternatives.push((send_string(send, word)?, pattern(expect, word)?));
    }
    Ok(ExpectString {
        first,
        alternatives,
    })
}

fn printable(bytes: &[u8]) -> String {
    let mut text = String::new();
    for &b in bytes {
        match b {
            0x20..=0x7e => text.push(char::from(b)),
            0..=0x1f => {
                text.push('^');
                text.push(char::from(b + 0x40));
            }
            _ => text.push_str(&format!("\\x{b:02x}")),
        }
    }
    text
}

/// Where a chat script run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChatState {
    /// Not started.
    Idle,
    /// Running the script.
    Running,
    /// The script completed: online.
    Online,
    /// Hanging up (DTR low).
    HangingUp,
    /// The script failed, or the call ended.
    Finished,
}

#[derive(Clone, Debug)]
enum Then {
    NextStep,
    Expect(usize),
}

#[derive(Clone, Debug)]
enum Phase {
    Idle,
    Step,
    Expect {
        alternative: usize,
        deadline: Instant,
    },
    Send {
        parts: VecDeque<SendPart>,
        wait_until: Option<Instant>,
        then: Then,
    },
    Online(CarrierWatch),
    DtrLow {
        deadline: Instant,
    },
    Finished,
}

/// Runs a [`ChatScript`] against the modem: the same verbs as the other machines.
///
/// When the last step is done it emits [`ModemEvent::Connected`] (with the rest of the input as
/// `initial_data`, after skipping the remainder of the matched line if it ends before any PPP
/// flag). ABORT strings end the run with [`ModemError::ChatAborted`], an expect that never
/// arrives (after its alternatives) with [`ModemError::ChatTimeout`], both as [`ModemEvent::Failed`].
/// Online, a `NO CARRIER` line gives [`ModemEvent::Disconnected`]; [`close`](Self::close) drops
/// DTR for `dtr_low_time`.
#[derive(Debug)]
pub struct ChatRunner {
    script: ChatScript,
    step: usize,
    phase: Phase,
    timeout: Duration,
    aborts: Vec<Vec<u8>>,
    recent: VecDeque<u8>,
    inbox: Vec<u8>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<ModemEvent>,
    dtr_low_time: Duration,
}

impl ChatRunner {
    /// A runner for `script`, idle.
    pub fn new(script: ChatScript) -> Self {
        Self {
            script,
            step: 0,
            phase: Phase::Idle,
            timeout: DEFAULT_TIMEOUT,
            aborts: Vec::new(),
            recent: VecDeque::new(),
            inbox: Vec::new(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            dtr_low_time: Duration::from_millis(500),
        }
    }

    /// Sets how long DTR stays low on hang-up (default 500 ms).
    #[must_use]
    pub fn with_dtr_low_time(mut self, time: Duration) -> Self {
        self.dtr_low_time = time;
        self
    }

    /// Starts (or restarts) the script from its first step.
    pub fn open(&mut self, now: Instant) {
        self.step = 0;
        self.timeout = DEFAULT_TIMEOUT;
        self.aborts.clear();
        self.recent.clear();
        self.inbox.clear();
        self.phase = Phase::Step;
        self.drive(now);
    }

    /// Drops DTR to hang up (or abort the script); ends with [`ModemEvent::Disconnected`].
    pub fn close(&mut self, now: Instant, reason: CloseReason) {
        debug!("chat script: closing: {reason}");
        if matches!(
            self.phase,
            Phase::Idle | Phase::Finished | Phase::DtrLow { .. }
        ) {
            return;
        }
        self.events.push_back(ModemEvent::SetDtr(false));
        self.phase = Phase::DtrLow {
            deadline: now + self.dtr_low_time,
        };
    }

    /// Where the run is.
    pub fn state(&self) -> ChatState {
        match self.phase {
            Phase::Idle => ChatState::Idle,
            Phase::Step | Phase::Expect { .. } | Phase::Send { .. } => ChatState::Running,
            Phase::Online(_) => ChatState::Online,
            Phase::DtrLow { .. } => ChatState::HangingUp,
            Phase::Finished => ChatState::Finished,
        }
    }

    /// Whether the script completed and the line is online.
    pub fn is_online(&self) -> bool {
        matches!(self.phase, Phase::Online(_))
    }

    /// Bytes received from the modem at `now`.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        match &mut self.phase {
            Phase::Online(watch) => {
                let carrier_lost = watch.feed(bytes).is_some();
                if carrier_lost {
                    debug!("chat: NO CARRIER while online");
                    self.phase = Phase::Finished;
                    self.events.push_back(ModemEvent::Disconnected {
                        reason: DisconnectReason::NoCarrier,
                    });
                }
            }
            Phase::Step | Phase::Expect { .. } | Phase::Send { .. } => {
                self.inbox.extend_from_slice(bytes);
                if self.inbox.len() > MAX_INBOX {
                    let excess = self.inbox.len() - MAX_INBOX;
                    self.inbox.drain(..excess);
                }
                self.drive(now);
            }
            _ => {}
        }
    }

    /// The clock reached `now`. A spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.phase {
            Phase::Expect {
                alternative,
                deadline,
            } if *deadline <= now => {
                let alternative = *alternative;
                let Some(ChatStep::Exchange { expect, .. }) =
                    self.script.steps.get(self.step).cloned()
                else {
                    return;
                };
                match expect.alternatives.get(alternative) {
                    Some((send, _)) => {
                        debug!("chat: timeout, trying alternative {}", alternative + 1);
                        self.log_send(send);
                        self.phase = Phase::Send {
                            parts: send.parts.iter().cloned().collect(),
                            wait_until: None,
                            then: Then::Expect(alternative + 1),
                        };
                        self.drive(now);
                    }
                    None => {
                        let pattern = if alternative == 0 {
                            expect.first.as_slice()
                        } else {
                            expect
                                .alternatives
                                .get(alternative - 1)
                                .map(|(_, p)| p.as_slice())
                                .unwrap_or_default()
                        };
                        let expect = printable(pattern);
                        self.fail(ModemError::ChatTimeout { expect });
                    }
                }
            }
            Phase::Send { wait_until, .. } if wait_until.is_some_and(|at| at <= now) => {
                *wait_until = None;
                self.drive(now);
            }
            Phase::DtrLow { deadline } if *deadline <= now => {
                self.phase = Phase::Finished;
                self.events.push_back(ModemEvent::SetDtr(true));
                self.events.push_back(ModemEvent::Disconnected {
                    reason: DisconnectReason::HangUp,
                });
            }
            _ => {}
        }
    }

    /// The next bytes to write to the modem.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ModemEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Expect { deadline, .. } | Phase::DtrLow { deadline } => Some(*deadline),
            Phase::Send { wait_until, .. } => *wait_until,
            _ => None,
        }
    }

    fn fail(&mut self, error: ModemError) {
        debug!("chat: failed: {error}");
        self.phase = Phase::Finished;
        self.events.push_back(ModemEvent::Failed(error));
    }

    fn log_send(&self, send: &SendString) {
        debug!("chat: send ({})", send.display());
    }

    fn expect_pattern(&self, alternative: usize) -> Option<&[u8]> {
        match self.script.steps.get(self.step) {
            Some(ChatStep::Exchange { expect, .. }) => match alternative {
                0 => Some(&expect.first),
                n => expect.alternatives.get(n - 1).map(|(_, p)| p.as_slice()),
            },
            _ => None,
        }
    }

    fn start_expect(&mut self, now: Instant, alternative: usize) {
        self.recent.clear();
        let pattern = self.expect_pattern(alternative).unwrap_or_default();
        debug!("chat: expect ({})", printable(pattern));
        if pattern.is_empty() {
            self.after_match(now);
        } else {
            self.phase = Phase::Expect {
                alternative,
                deadline: now + self.timeout,
            };
        }
    }

    fn after_match(&mut self, _now: Instant) {
        let send = match self.script.steps.get(self.step) {
            Some(ChatStep::Exchange {
                send: Some(send), ..
            }) => send.clone(),
            _ => {
                self.step += 1;
                self.phase = Phase::Step;
                return;
            }
        };
        self.log_send(&send);
        self.phase = Phase::Send {
            parts: send.parts.into_iter().collect(),
            wait_until: None,
            then: Then::NextStep,
        };
    }

    /// Runs steps, sends and matching until the run has to wait for input or time.
    fn drive(&mut self, now: Instant) {
        for _ in 0..10_000 {
            match &mut self.phase {
                Phase::Step => {
                    let Some(step) = self.script.steps.get(self.step).cloned() else {
                        self.go_online();
                        return;
                    };
                    match step {
                        ChatStep::Abort(pattern) => self.aborts.push(pattern),
                        ChatStep::ClearAbort(pattern) => self.aborts.retain(|p| *p != pattern),
                        ChatStep::Timeout(timeout) => self.timeout = timeout,
                        ChatStep::Say(text) => self.events.push_back(ModemEvent::Say(text)),
                        ChatStep::Echo(_) | ChatStep::Hangup(_) => {}
                        ChatStep::Exchange { .. } => {
                            self.start_expect(now, 0);
                            continue;
                        }
                    }
                    self.step += 1;
                }
                Phase::Send {
                    parts,
                    wait_until,
                    then,
                } => {
                    if wait_until.is_some() {
                        return;
                    }
                    match parts.pop_front() {
                        Some(SendPart::Bytes(bytes)) => self.transmit.push_back(bytes),
                        Some(SendPart::Break) => self.events.push_back(ModemEvent::SendBreak),
                        Some(SendPart::Delay(delay)) => {
                            *wait_until = Some(now + delay);
                            return;
                        }
                        None => match then.clone() {
                            Then::NextStep => {
                                self.step += 1;
                                self.phase = Phase::Step;
                            }
                            Then::Expect(alternative) => self.start_expect(now, alternative),
                        },
                    }
                }
                Phase::Expect { alternative, .. } => {
                    let alternative = *alternative;
                    let Some(pattern) = self.expect_pattern(alternative).map(<[u8]>::to_vec) else {
                        self.fail(ModemError::ChatSyntax {
                            word: 0,
                            message: "internal: no expect string".to_owned(),
                        });
                        return;
                    };
                    let mut consumed = None;
                    let mut aborted = None;
                    for (index, &byte) in self.inbox.iter().enumerate() {
                        self.recent.push_back(byte);
                        if self.recent.len() > MAX_PATTERN_LEN {
                            self.recent.pop_front();
                        }
                        if let Some(abort) = self.aborts.iter().find(|a| ends_with(&self.recent, a))
                        {
                            aborted = Some(String::from_utf8_lossy(abort).into_owned());
                            break;
                        }
                        if ends_with(&self.recent, &pattern) {
                            consumed = Some(index + 1);
                            break;
                        }
                    }
                    if let Some(matched) = aborted {
                        self.inbox.clear();
                        self.fail(ModemError::ChatAborted { matched });
                        return;
                    }
                    let Some(consumed) = consumed else {
                        self.inbox.clear();
                        return;
                    };
                    debug!("chat: got ({})", printable(&pattern));
                    self.inbox.drain(..consumed);
                    self.after_match(now);
                }
                _ => return,
            }
        }
    }

    fn go_online(&mut self) {
        let mut data = std::mem::take(&mut self.inbox);
        // The rest of the matched line (such as " 115200\r\n") is not PPP.
        let end = data
            .iter()
            .take(64)
            .take_while(|b| **b != 0x7e)
            .position(|b| *b == b'\r' || *b == b'\n');
        let text = end.map(|end| {
            let text = String::from_utf8_lossy(&data[..end]).trim().to_owned();
            let mut skip = end;
            while matches!(data.get(skip), Some(b'\r' | b'\n')) {
                skip += 1;
            }
            data.drain(..skip);
            text
        });
        let text = text.filter(|t| !t.is_empty());
        debug!("chat: script done, online");
        self.phase = Phase::Online(CarrierWatch::default());
        self.events.push_back(ModemEvent::Connected {
            rate: text.as_deref().and_then(connect_rate),
            text,
            initial_data: data,
        });
    }
}

fn ends_with(recent: &VecDeque<u8>, pattern: &[u8]) -> bool {
    !pattern.is_empty()
        && recent.len() >= pattern.len()
        && recent
            .iter()
            .skip(recent.len() - pattern.len())
            .eq(pattern.iter())
}

impl_modem_driver!(ChatRunner);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{CallBehaviour, Harness, SimConfig, SimModem};

    const SEC: Duration = Duration::from_secs(1);

    fn bytes(text: &str) -> SendString {
        SendString {
            parts: vec![SendPart::Bytes(text.as_bytes().to_vec())],
            quiet: false,
        }
    }

    fn exchange(expect: &str, send: Option<&str>) -> ChatStep {
        ChatStep::Exchange {
            expect: ExpectString {
                first: expect.as_bytes().to_vec(),
                alternatives: Vec::new(),
            },
            send: send.map(bytes),
        }
    }

    const DIAL: &str = r#"
        # A classic pppd dial script.
        ABORT BUSY ABORT 'NO CARRIER' ABORT "NO DIALTONE"
        TIMEOUT 10
        SAY "dialling\n"
        '' ATZ
        OK ATE0V1
        OK ATDT5551234
        CONNECT ''
    "#;

    #[test]
    fn parses_a_dial_script() {
        let script = ChatScript::parse(DIAL).unwrap();
        assert_eq!(
            script.steps,
            [
                ChatStep::Abort(b"BUSY".to_vec()),
                ChatStep::Abort(b"NO CARRIER".to_vec()),
                ChatStep::Abort(b"NO DIALTONE".to_vec()),
                ChatStep::Timeout(10 * SEC),
                ChatStep::Say("dialling\n".into()),
                exchange("", Some("ATZ\r")),
                exchange("OK", Some("ATE0V1\r")),
                exchange("OK", Some("ATDT5551234\r")),
                exchange("CONNECT", Some("\r")),
            ]
        );
    }

    #[test]
    fn parses_escapes_and_alternatives() {
        let script = ChatScript::parse(
            r"ogin:-BREAK-ogin: user\c word: \qsecret '' AT\dZ^C ECHO ON HANGUP OFF x",
        )
        .unwrap();
        assert_eq!(
            script.steps[0],
            ChatStep::Exchange {
                expect: ExpectString {
                    first: b"ogin:".to_vec(),
                    alternatives: vec![(
                        SendString {
                            parts: vec![SendPart::Break],
                            quiet: false
                        },
                        b"ogin:".to_vec()
                    )],
                },
                send: Some(bytes("user")),
            }
        );
        let ChatStep::Exchange {
            send: Some(secret), ..
        } = &script.steps[1]
        else {
            panic!()
        };
        assert!(secret.quiet);
        assert!(!format!("{secret:?}").contains("secret"));
        assert_eq!(
            script.steps[2],
            ChatStep::Exchange {
                expect: ExpectString {
                    first: Vec::new(),
                    alternatives: Vec::new()
                },
                send: Some(SendString {
                    parts: vec![
                        SendPart::Bytes(b"AT".to_vec()),
                        SendPart::Delay(SEC),
                        SendPart::Bytes(b"Z\x03\r".to_vec()),
                    ],
                    quiet: false
                }),
            }
        );
        assert_eq!(script.steps[3], ChatStep::Echo(true));
        assert_eq!(script.steps[4], ChatStep::Hangup(false));
        assert_eq!(script.steps[5], exchange("x", None));
    }

    #[test]
    fn rejects_what_it_does_not_support() {
        let table = [
            ("REPORT CONNECT '' AT", "unsupported"),
            (r"'' ATDT\T", "unsupported"),
            ("@/etc/chatscript", "unsupported"),
            ("'' 'AT", "syntax"),
            ("TIMEOUT soon", "syntax"),
            ("TIMEOUT", "syntax"),
            (r"OK\d AT", "syntax"),
            (r"'' AT\cZ", "syntax"),
            (r"'' AT\z", "syntax"),
            ("ogin:-BREAK '' ", "syntax"),
            ("ECHO MAYBE", "syntax"),
        ];
        for (script, kind) in table {
            let error = ChatScript::parse(script).unwrap_err();
            let ok = match kind {
                "unsupported" => matches!(error, ModemError::ChatUnsupported { .. }),
                _ => matches!(error, ModemError::ChatSyntax { .. }),
            };
            assert!(ok, "{script:?} gave {error:?}");
        }
    }

    fn run(script: &str, sim: SimConfig) -> Harness<ChatRunner> {
        let t0 = Instant::now();
        let mut runner = ChatRunner::new(ChatScript::parse(script).unwrap());
        runner.open(t0);
        Harness::new(runner, SimModem::new(sim), t0)
    }

    fn is_final(event: &ModemEvent) -> bool {
        matches!(event, ModemEvent::Connected { .. } | ModemEvent::Failed(_))
    }

    #[test]
    fn runs_a_dial_script_against_the_modem() {
        let mut h = run(DIAL, SimConfig::default());
        let event = h.run_until_event(60 * SEC, is_final).unwrap();
        assert_eq!(
            event,
            ModemEvent::Connected {
                rate: Some(115_200),
                text: Some("115200".into()),
                initial_data: Vec::new()
            }
        );
        assert_eq!(h.event_list()[0], ModemEvent::Say("dialling\n".into()));
        let commands: Vec<_> = h.modem.commands().iter().map(|(_, c)| c.clone()).collect();
        assert_eq!(commands, ["ATZ", "ATE0V1", "ATDT5551234"]);
        assert_eq!(h.machine.state(), ChatState::Online);
        // The final '' sent a bare CR into the online stream.
        assert_eq!(h.modem.take_peer_data(), b"\r");
        h.modem.drop_call(h.now);
        h.settle();
        assert_eq!(
            h.events.last().unwrap().1,
            ModemEvent::Disconnected {
                reason: DisconnectReason::NoCarrier
            }
        );
    }

    #[test]
    fn abort_strings_end_the_run() {
        let mut h = run(
            DIAL,
            SimConfig {
                dial: CallBehaviour::Busy,
                ..SimConfig::default()
            },
        );
        let event = h.run_until_event(60 * SEC, is_final).unwrap();
        assert_eq!(
            event,
            ModemEvent::Failed(ModemError::ChatAborted {
                matched: "BUSY".into()
            })
        );
    }

    #[test]
    fn timeouts_and_alternatives() {
        let t0 = Instant::now();
        let script = ChatScript::parse("TIMEOUT 5 ogin:-BREAK-ogin: ppp word: \\qsecret").unwrap();
        let mut runner = ChatRunner::new(script);
        runner.open(t0);
        assert_eq!(runner.poll_timeout(), Some(t0 + 5 * SEC));
        runner.handle_input(t0, b"welcome\r\n");
        runner.handle_timeout(t0 + 5 * SEC);
        assert_eq!(runner.poll_event(), Some(ModemEvent::SendBreak));
        assert_eq!(runner.poll_timeout(), Some(t0 + 10 * SEC));
        runner.handle_input(t0 + 6 * SEC, b"\r\nlog");
        runner.handle_input(t0 + 6 * SEC, b"in: ");
        assert_eq!(runner.poll_transmit(), Some(b"ppp\r".to_vec()));
        runner.handle_input(t0 + 7 * SEC, b"Password: ");
        assert_eq!(runner.poll_transmit(), Some(b"secret\r".to_vec()));
        assert!(matches!(
            runner.poll_event(),
            Some(ModemEvent::Connected { .. })
        ));

        // No alternative left: a timeout error naming the expect string.
        let mut runner = ChatRunner::new(ChatScript::parse("TIMEOUT 2 OK AT").unwrap());
        runner.open(t0);
        runner.handle_timeout(t0 + 2 * SEC);
        assert_eq!(
            runner.poll_event(),
            Some(ModemEvent::Failed(ModemError::ChatTimeout {
                expect: "OK".into()
            }))
        );
    }

    #[test]
    fn delays_and_held_input() {
        let t0 = Instant::now();
        let mut runner = ChatRunner::new(ChatScript::parse(r"'' AT\dZ OK ''").unwrap());
        runner.open(t0);
        assert_eq!(runner.poll_transmit(), Some(b"AT".to_vec()));
        assert_eq!(runner.poll_transmit(), None);
        assert_eq!(runner.poll_timeout(), Some(t0 + SEC));
        // Input arriving during the delay is kept for the next expect.
        runner.handle_input(t0, b"\r\nOK\r\n");
        runner.handle_timeout(t0 + SEC);
        assert_eq!(runner.poll_transmit(), Some(b"Z\r".to_vec()));
        assert_eq!(runner.poll_transmit(), Some(b"\r".to_vec()));
        assert!(runner.is_online());
    }

    #[test]
    fn initial_data_after_connect() {
        let t0 = Instant::now();
        let mut runner = ChatRunner::new(ChatScript::parse("'' ATD1 CONNECT").unwrap());
        runner.open(t0);
        runner.handle_input(t0, b"\r\nCONNECT 9600\r\n\x7e\xff\x03");
        assert_eq!(
            runner.poll_event(),
            Some(ModemEvent::Connected {
                rate: Some(9600),
                text: Some("9600".into()),
                initial_data: b"\x7e\xff\x03".to_vec()
            })
        );
        runner.close(t0, CloseReason::UserRequest);
        assert_eq!(runner.poll_event(), Some(ModemEvent::SetDtr(false)));
        runner.handle_timeout(t0 + SEC);
        assert_eq!(runner.poll_event(), Some(ModemEvent::SetDtr(true)));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(text in "[ -~\\n\\t]{0,200}") {
            let _ = ChatScript::parse(&text);
        }

        #[test]
        fn runner_never_panics(
            chunks in proptest::collection::vec(proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..64), 0..20),
        ) {
            let t0 = Instant::now();
            let mut runner = ChatRunner::new(ChatScript::parse(DIAL).unwrap());
            runner.open(t0);
            for (i, chunk) in chunks.iter().enumerate() {
                let now = t0 + SEC * u32::try_from(i).unwrap_or(0);
                runner.handle_input(now, chunk);
                runner.handle_timeout(now);
                while runner.poll_event().is_some() {}
                while runner.poll_transmit().is_some() {}
                proptest::prop_assert!(runner.inbox.len() <= MAX_INBOX);
                proptest::prop_assert!(runner.recent.len() <= MAX_PATTERN_LEN);
            }
        }
    }
}
