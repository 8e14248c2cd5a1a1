//! The last known radio and network values, for a monitor view.

use crate::response::{
    AccessTechnology, InfoResponse, PinStatus, RegistrationKind, RegistrationStatus, SignalQuality,
};

/// The last values seen in `+CSQ`, `+COPS`, `+CREG`/`+CGREG`/`+CEREG`, `+CGATT` and `+CPIN`
/// lines (responses and unsolicited codes alike).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModemStatus {
    /// The last `+CSQ`.
    pub signal: Option<SignalQuality>,
    /// The signal strength in dBm from the last `+CSQ` (`None` when unknown).
    pub signal_dbm: Option<i16>,
    /// The operator name from the last `+COPS` that had one.
    pub operator: Option<String>,
    /// The circuit-switched registration (`+CREG`).
    pub registration: Option<RegistrationStatus>,
    /// The packet registration (`+CGREG`).
    pub gprs_registration: Option<RegistrationStatus>,
    /// The EPS (LTE) registration (`+CEREG`).
    pub eps_registration: Option<RegistrationStatus>,
    /// The access technology from the last `+COPS` or registration line that had one.
    pub access_technology: Option<AccessTechnology>,
    /// The packet-domain attach state (`+CGATT`).
    pub attached: Option<bool>,
    /// The SIM state (`+CPIN`).
    pub pin: Option<PinStatus>,
}

impl ModemStatus {
    /// Whether any registration says home or roaming.
    pub fn is_registered(&self) -> bool {
        [
            self.registration,
            self.gprs_registration,
            self.eps_registration,
        ]
        .into_iter()
        .flatten()
        .any(RegistrationStatus::is_registered)
    }

    /// Takes in one information line; returns whether anything changed.
    pub fn update(&mut self, info: &InfoResponse) -> bool {
        let before = self.clone();
        match info {
            InfoResponse::SignalQuality(quality) => {
                self.signal = Some(*quality);
                self.signal_dbm = quality.dbm();
            }
            InfoResponse::Registration(registration) => {
                let slot = match registration.kind {
                    RegistrationKind::CircuitSwitched => &mut self.registration,
                    RegistrationKind::Gprs => &mut self.gprs_registration,
                    _ => &mut self.eps_registration,
                };
                *slot = Some(registration.status);
                if registration.access_technology.is_some() {
                    self.access_technology = registration.access_technology;
                }
            }
            InfoResponse::Attached(attached) => self.attached = Some(*attached),
            InfoResponse::Pin(pin) => self.pin = Some(pin.clone()),
            InfoResponse::Operator(operator) => {
                if operator.name.is_some() {
                    self.operator.clone_from(&operator.name);
                }
                if operator.access_technology.is_some() {
                    self.access_technology = operator.access_technology;
                }
            }
            _ => {}
        }
        *self != before
    }
}
