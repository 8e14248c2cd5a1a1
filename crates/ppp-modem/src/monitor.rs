//! Periodic signal and registration queries on a port of their own (many cellular modems offer
//! a second AT port next to the PPP one).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tracing::debug;

use crate::engine::{AtCommand, AtEngine, EngineConfig};
use crate::event::{ModemEvent, Urc, impl_modem_driver};
use crate::response::InfoResponse;
use crate::status::ModemStatus;

/// The monitor's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MonitorConfig {
    /// How often to ask (default 10 s).
    pub interval: Duration,
    /// The timeout of each query (default 5 s).
    pub command_timeout: Duration,
    /// The queries. Default: `AT+CSQ`, `AT+COPS?`, `AT+CREG?`, `AT+CEREG?`.
    pub queries: Vec<String>,
    /// The engine's settings.
    pub engine: EngineConfig,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            command_timeout: Duration::from_secs(5),
            queries: ["AT+CSQ", "AT+COPS?", "AT+CREG?", "AT+CEREG?"]
                .map(String::from)
                .to_vec(),
            engine: EngineConfig::default(),
        }
    }
}

/// Asks the configured queries every [`MonitorConfig::interval`] and keeps the answers (and any
/// registration URCs) in a [`ModemStatus`]; emits [`ModemEvent::StatusUpdated`] when it changes.
/// Failed or timed-out queries are skipped (counted in the engine's stats for timeouts); a
/// round starts only when the previous one is finished, so a slow modem is never flooded.
#[derive(Debug)]
pub struct StatusMonitor {
    config: MonitorConfig,
    engine: AtEngine,
    next_round: Option<Instant>,
    status: ModemStatus,
    events: VecDeque<ModemEvent>,
}

impl StatusMonitor {
    /// A monitor, stopped.
    pub fn new(config: MonitorConfig) -> Self {
        Self {
            engine: AtEngine::new(config.engine.clone()),
            config,
            next_round: None,
            status: ModemStatus::default(),
            events: VecDeque::new(),
        }
    }

    /// Starts polling: the first round now.
    pub fn open(&mut self, now: Instant) {
        self.next_round = Some(now);
        self.handle_timeout(now);
    }

    /// Stops polling (a round in progress finishes).
    pub fn close(&mut self, _now: Instant) {
        self.next_round = None;
    }

    /// The last known values.
    pub fn status(&self) -> &ModemStatus {
        &self.status
    }

    /// The engine underneath.
    pub fn engine(&self) -> &AtEngine {
        &self.engine
    }

    /// Whether the port went online (it should not: this is a monitor port).
    pub fn is_online(&self) -> bool {
        self.engine.is_online()
    }

    /// Bytes received from the modem at `now`.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        self.engine.handle_input(now, bytes);
        self.pump();
    }

    /// The clock reached `now`. A spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.engine.handle_timeout(now);
        if self.next_round.is_some_and(|at| at <= now) && self.engine.is_idle() {
            debug!("monitor: polling");
            self.next_round = Some(now + self.config.interval);
            for text in &self.config.queries {
                let command = AtCommand::new(text.clone(), self.config.command_timeout);
                if let Err(error) = self.engine.enqueue(now, command) {
                    debug!("monitor: {error}");
                    break;
                }
            }
        }
        self.pump();
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
        // While a round is still running, its end (input or a command timeout) comes first.
        let round = self.next_round.filter(|_| self.engine.is_idle());
        [self.engine.poll_timeout(), round]
            .into_iter()
            .flatten()
            .min()
    }

    fn note(&mut self, info: &InfoResponse) {
        if self.status.update(info) {
            self.events
                .push_back(ModemEvent::StatusUpdated(self.status.clone()));
        }
    }

    fn pump(&mut self) {
        while let Some(event) = self.engine.poll_event() {
            match event {
                ModemEvent::CommandDone { result, .. } => {
                    if let Ok(outcome) = result {
                        for info in &outcome.info_lines {
                            self.note(info);
                        }
                    }
                }
                ModemEvent::Urc(Urc::Registration(registration)) => {
                    let info = InfoResponse::Registration(registration.clone());
                    self.note(&info);
                    self.events
                        .push_back(ModemEvent::Urc(Urc::Registration(registration)));
                }
                other => self.events.push_back(other),
            }
        }
    }
}

impl_modem_driver!(StatusMonitor);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{Harness, SimConfig, SimModem, SimRegistration};

    #[test]
    fn polls_and_tracks_status() {
        let t0 = Instant::now();
        let mut monitor = StatusMonitor::new(MonitorConfig::default());
        monitor.open(t0);
        let modem = SimModem::new(SimConfig {
            registration: SimRegistration::Roaming,
            registration_delay: Duration::from_secs(15),
            ..SimConfig::default()
        });
        let mut h = Harness::new(monitor, modem, t0);
        h.run_until(t0 + Duration::from_secs(1));
        let status = h.machine.status().clone();
        assert_eq!(status.signal_dbm, Some(-73));
        assert_eq!(
            status.registration,
            Some(crate::response::RegistrationStatus::Searching)
        );
        assert_eq!(status.operator, None);
        h.run_until(t0 + Duration::from_secs(25));
        let status = h.machine.status();
        assert_eq!(
            status.registration,
            Some(crate::response::RegistrationStatus::Roaming)
        );
        assert_eq!(status.operator.as_deref(), Some("SimNet"));
        // Three rounds: at 0, 10 and 20 s.
        let rounds = h
            .modem
            .commands()
            .iter()
            .filter(|(_, c)| c == "AT+CSQ")
            .count();
        assert_eq!(rounds, 3);
        assert!(
            h.event_list()
                .iter()
                .all(|e| matches!(e, ModemEvent::StatusUpdated(_)))
        );
    }

    #[test]
    fn a_silent_modem_is_not_flooded() {
        let t0 = Instant::now();
        let mut monitor = StatusMonitor::new(MonitorConfig::default());
        monitor.open(t0);
        let modem = SimModem::new(SimConfig {
            silent: true,
            ..SimConfig::default()
        });
        let mut h = Harness::new(monitor, modem, t0);
        h.run_until(t0 + Duration::from_secs(60));
        // Each round takes 4 x 5 s of timeouts, so at most 3 rounds in 60 s.
        assert!(h.modem.commands().len() <= 16);
        assert!(h.machine.engine().stats().timeouts >= 8);
    }
}
