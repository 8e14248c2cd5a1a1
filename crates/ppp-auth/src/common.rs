//! What both machines share: status, events, failure reasons, configuration and the timer table.

use std::fmt;
use std::time::{Duration, Instant};

use crate::AuthProtocol;
use crate::external::{Verification, VerifyRequest};
use crate::secret::Secret;

/// Where an authentication stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthStatus {
    /// Still going.
    Pending,
    /// Done: the peer is authenticated (authenticator) or we are (authenticatee). A later
    /// re-challenge that fails turns this into `Failed`.
    Succeeded,
    /// Failed; the link should go down.
    Failed(FailureReason),
}

/// Why an authentication failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureReason {
    /// The other side never answered in time (no Ack/challenge/result, or no response to our
    /// challenges).
    Timeout,
    /// The authenticator rejected us (PAP Nak, CHAP Failure). `error_code` is the MS-CHAP `E=`
    /// code when there was one.
    Rejected {
        /// The message, as text (lossy UTF-8).
        message: String,
        /// MS-CHAP error code (691 = authentication failure, ...).
        error_code: Option<u32>,
    },
    /// The peer authenticated as a name we have no secret for.
    UnknownUser {
        /// The name.
        name: String,
    },
    /// The peer's password or response did not match the secret.
    WrongSecret {
        /// The name.
        name: String,
    },
    /// The peer's response was malformed (wrong length, LAN Manager response, ...).
    BadResponse {
        /// The name.
        name: String,
    },
    /// The peer changed its name on a re-challenge.
    NameChanged {
        /// The name it authenticated with first.
        was: String,
        /// The name it gave now.
        now: String,
    },
    /// We have no secret to answer the authenticator with.
    NoSecret {
        /// The authenticator's name (empty for PAP).
        authenticator: String,
    },
    /// MS-CHAP-V2: the Success message's authenticator response (`S=`) was missing or wrong, so
    /// the authenticator does not know our password: the link must drop.
    MutualAuthFailed,
    /// The caller did not answer a secret lookup in time.
    SecretLookupTimeout,
    /// The external verifier (RADIUS) refused the peer (Access-Reject).
    Refused {
        /// The name the peer gave.
        name: String,
        /// The verifier's message (RADIUS Reply-Message), if it gave one.
        message: Option<String>,
    },
    /// The caller did not answer a verification ([`provide_verdict`]) in time (no RADIUS
    /// server answered).
    ///
    /// [`provide_verdict`]: crate::Authenticator::provide_verdict
    VerificationTimeout,
    /// The verifier accepted an MS-CHAP-V2 peer without the authenticator response the peer
    /// checks (RADIUS MS-CHAP2-Success): the peer could not have completed, so it is failed.
    IncompleteVerdict {
        /// The name the peer gave.
        name: String,
    },
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureReason::Timeout => f.write_str("timed out waiting for the peer"),
            FailureReason::Rejected {
                message,
                error_code: Some(code),
            } => {
                write!(f, "rejected by the authenticator (E={code}): {message}")
            }
            FailureReason::Rejected {
                message,
                error_code: None,
            } => {
                write!(f, "rejected by the authenticator: {message}")
            }
            FailureReason::UnknownUser { name } => write!(f, "no secret for peer {name:?}"),
            FailureReason::WrongSecret { name } => {
                write!(f, "peer {name:?} failed to authenticate")
            }
            FailureReason::BadResponse { name } => {
                write!(f, "malformed response from peer {name:?}")
            }
            FailureReason::NameChanged { was, now } => {
                write!(
                    f,
                    "peer changed its name from {was:?} to {now:?} on re-challenge"
                )
            }
            FailureReason::NoSecret { authenticator } => {
                write!(f, "no secret for authenticating us to {authenticator:?}")
            }
            FailureReason::MutualAuthFailed => {
                f.write_str("MS-CHAPv2 mutual authentication failed: wrong authenticator response")
            }
            FailureReason::SecretLookupTimeout => f.write_str("secret lookup timed out"),
            FailureReason::Refused {
                name,
                message: Some(message),
            } => write!(f, "peer {name:?} refused by the verifier: {message}"),
            FailureReason::Refused {
                name,
                message: None,
            } => write!(f, "peer {name:?} refused by the verifier"),
            FailureReason::VerificationTimeout => f.write_str("no verdict in time"),
            FailureReason::IncompleteVerdict { name } => write!(
                f,
                "verifier accepted peer {name:?} without an MS-CHAPv2 authenticator response"
            ),
        }
    }
}

/// A secret the authenticator needs: resolve it with a
/// [`SecretsBackend`](crate::SecretsBackend) (`backend.lookup(&req.client, &req.server)`) and
/// answer with [`Authenticator::provide_secret`](crate::Authenticator::provide_secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRequest {
    /// The name the peer authenticates as (pppd's "client").
    pub client: String,
    /// Our name (pppd's "server").
    pub server: String,
    /// The method being checked.
    pub method: AuthProtocol,
    /// Identifies this request: give it back with the answer, so that a late answer never
    /// lands on a later request (of this machine, or of another session that reused an id).
    pub token: SecretToken,
}

/// Identifies one [`SecretRequest`] or [`VerifyRequest`](crate::VerifyRequest): random, so
/// answers to different requests never match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SecretToken(pub u64);

impl SecretRequest {
    /// Looks the request up in `backend`.
    pub async fn resolve(&self, backend: &dyn crate::SecretsBackend) -> Option<crate::SecretEntry> {
        backend.lookup(&self.client, &self.server).await
    }
}

/// What a machine reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthEvent {
    /// The authenticator needs the secret for a peer name; answer with `provide_secret`.
    SecretNeeded(SecretRequest),
    /// The authenticator (in [`Verification::External`] mode) needs a proof checked; answer
    /// with `provide_verdict`.
    VerifyNeeded(VerifyRequest),
    /// Authentication succeeded (reported once; re-challenges that pass are silent).
    Succeeded {
        /// The peer's name (authenticator side); `None` on the authenticatee side.
        peer_name: Option<String>,
    },
    /// Authentication failed; the link should go down.
    Failed(FailureReason),
}

/// The authenticatee's name and how it finds the secret for an authenticator.
pub struct Credentials {
    pub(crate) name: String,
    pub(crate) source: SecretSource,
}

/// A caller's function from an authenticator's name to our secret for it.
pub(crate) type SecretLookup = Box<dyn FnMut(&str) -> Option<Secret> + Send>;

pub(crate) enum SecretSource {
    Fixed(Secret),
    Lookup(SecretLookup),
}

impl Credentials {
    /// Our name and the one secret we use with every authenticator.
    pub fn new(name: impl Into<String>, secret: impl Into<Secret>) -> Self {
        Credentials {
            name: name.into(),
            source: SecretSource::Fixed(secret.into()),
        }
    }

    /// Our name, and a function giving the secret for an authenticator's name (the CHAP
    /// Challenge's Name; the empty string for PAP). It is called for every challenge.
    pub fn with_lookup(
        name: impl Into<String>,
        lookup: impl FnMut(&str) -> Option<Secret> + Send + 'static,
    ) -> Self {
        Credentials {
            name: name.into(),
            source: SecretSource::Lookup(Box::new(lookup)),
        }
    }

    /// Our name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn secret_for(&mut self, authenticator: &str) -> Option<Secret> {
        match &mut self.source {
            SecretSource::Fixed(s) => Some(s.clone()),
            SecretSource::Lookup(f) => f(authenticator),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Settings of the [`Authenticatee`](crate::Authenticatee) (pppd's defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticateeConfig {
    /// Time between Authenticate-Requests (PAP, pppd `pap-restart`, 3 s), and between
    /// repetitions of a CHAP Response still waiting for its Success or Failure.
    pub retransmit_interval: Duration,
    /// PAP: Authenticate-Requests sent before giving up (pppd `pap-max-authreq`, 10). CHAP: how
    /// many times one Response is sent at most.
    pub max_transmissions: u32,
    /// CHAP: how long to wait for a challenge and then a result before failing (`None`: wait
    /// for ever, as pppd's CHAP client does; default 30 s). Not used after success.
    pub chap_timeout: Option<Duration>,
    /// MS-CHAP: how many times to answer a Failure with `R=1` and a `C=` challenge by retrying
    /// (default 0, as pppd).
    pub mschap_retries: u8,
}

impl Default for AuthenticateeConfig {
    fn default() -> Self {
        AuthenticateeConfig {
            retransmit_interval: Duration::from_secs(3),
            max_transmissions: 10,
            chap_timeout: Some(Duration::from_secs(30)),
            mschap_retries: 0,
        }
    }
}

/// Settings of the [`Authenticator`](crate::Authenticator) (pppd's defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticatorConfig {
    /// Our name: sent in CHAP Challenges, and the "server" of secret lookups.
    pub our_name: String,
    /// CHAP-MD5 challenge length in bytes (1..=255, default 16). MS-CHAP uses 8, MS-CHAP-V2 16.
    pub challenge_len: u8,
    /// CHAP: time between Challenge retransmissions (pppd `chap-restart`, 3 s).
    pub retransmit_interval: Duration,
    /// CHAP: Challenges sent before giving up (pppd `chap-max-challenge`, 10).
    pub max_transmissions: u32,
    /// CHAP: re-challenge the peer this long after each success (pppd `chap-interval`; default
    /// none).
    pub rechallenge_interval: Option<Duration>,
    /// PAP: how long to wait for an Authenticate-Request (pppd `pap-timeout`, 30 s).
    pub request_timeout: Duration,
    /// How long to wait for [`provide_secret`](crate::Authenticator::provide_secret) or
    /// [`provide_verdict`](crate::Authenticator::provide_verdict) (30 s). With RADIUS, make it
    /// longer than the client's retransmissions to every server take.
    pub secret_timeout: Duration,
    /// Whether the peer's proof is checked here against a secret (the default) or by an
    /// external verifier such as RADIUS.
    pub verification: Verification,
    /// MS-CHAP: failed responses the peer may retry (Failure with `R=1` and a fresh `C=`;
    /// default 0: a failure is final, `R=0`).
    pub mschap_retries: u8,
}

impl AuthenticatorConfig {
    /// pppd's defaults with our name.
    pub fn new(our_name: impl Into<String>) -> Self {
        AuthenticatorConfig {
            our_name: our_name.into(),
            challenge_len: 16,
            retransmit_interval: Duration::from_secs(3),
            max_transmissions: 10,
            rechallenge_interval: None,
            request_timeout: Duration::from_secs(30),
            secret_timeout: Duration::from_secs(30),
            mschap_retries: 0,
            verification: Verification::Local,
        }
    }

    /// The same settings with the peer's proof checked by an external verifier (RADIUS):
    /// the machine emits [`AuthEvent::VerifyNeeded`] instead of [`AuthEvent::SecretNeeded`].
    pub fn external(mut self) -> Self {
        self.verification = Verification::External;
        self
    }
}

impl Default for AuthenticatorConfig {
    fn default() -> Self {
        AuthenticatorConfig::new("")
    }
}

/// The timers of a machine, indexed by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Resend the request/challenge.
    Retransmit = 0,
    /// Give up waiting for the other side.
    GiveUp = 1,
    /// Re-challenge an authenticated peer.
    Rechallenge = 2,
    /// Give up waiting for the caller's secret.
    SecretLookup = 3,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Timers([Option<Instant>; 4]);

impl Timers {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.0[timer as usize] = Some(at);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.0[timer as usize] = None;
    }

    pub(crate) fn stop_all(&mut self) {
        self.0 = [None; 4];
    }

    pub(crate) fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }

    /// Takes the first timer due at `now`, if any.
    pub(crate) fn take_due(&mut self, now: Instant) -> Option<Timer> {
        const ALL: [Timer; 4] = [
            Timer::Retransmit,
            Timer::GiveUp,
            Timer::Rechallenge,
            Timer::SecretLookup,
        ];
        let timer = ALL
            .into_iter()
            .find(|t| self.0[*t as usize].is_some_and(|at| at <= now))?;
        self.0[timer as usize] = None;
        Some(timer)
    }
}

/// Parsed fields of an MS-CHAP Failure message: `E=691 R=1 C=<hex> V=3 M=<text>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MsChapFailure {
    /// `E=`: the error code.
    pub error_code: Option<u32>,
    /// `R=1`: a retry is allowed.
    pub retry: bool,
    /// `C=`: the challenge for the retry.
    pub challenge: Option<Vec<u8>>,
    /// `V=`: the password-change version.
    pub version: Option<u32>,
    /// `M=`: the text (everything after it).
    pub message: Option<String>,
}

impl MsChapFailure {
    /// Parses a Failure message; unknown or malformed fields are skipped.
    pub fn parse(message: &[u8]) -> Self {
        let text = String::from_utf8_lossy(message);
        let mut out = MsChapFailure::default();
        let mut rest = text.trim_start();
        while !rest.is_empty() {
            if let Some(m) = rest.strip_prefix("M=") {
                out.message = Some(m.to_owned());
                break;
            }
            let (field, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            rest = tail.trim_start();
            if let Some(v) = field.strip_prefix("E=") {
                out.error_code = v.parse().ok();
            } else if let Some(v) = field.strip_prefix("R=") {
                out.retry = v == "1";
            } else if let Some(v) = field.strip_prefix("C=") {
                out.challenge = crate::crypto::from_hex(v.as_bytes());
            } else if let Some(v) = field.strip_prefix("V=") {
                out.version = v.parse().ok();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mschap_failure_messages() {
        let f = MsChapFailure::parse(
            b"E=691 R=1 C=00112233445566778899aabbccddeeff V=3 M=Access denied here",
        );
        assert_eq!(f.error_code, Some(691));
        assert!(f.retry);
        assert_eq!(f.challenge.as_deref().map(<[u8]>::len), Some(16));
        assert_eq!(f.version, Some(3));
        assert_eq!(f.message.as_deref(), Some("Access denied here"));
        let f = MsChapFailure::parse(b"E=646 R=0");
        assert_eq!(
            (f.error_code, f.retry, f.challenge, f.message),
            (Some(646), false, None, None)
        );
        let f = MsChapFailure::parse(b"garbage C=zz");
        assert_eq!(f, MsChapFailure::default());
    }

    #[test]
    fn timers_take_in_order() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        assert_eq!(timers.take_due(t0), None);
        timers.set(Timer::GiveUp, t0);
        timers.set(Timer::Retransmit, t0 + Duration::from_secs(1));
        assert_eq!(timers.next(), Some(t0));
        assert_eq!(timers.take_due(t0), Some(Timer::GiveUp));
        assert_eq!(timers.take_due(t0), None);
        timers.stop_all();
        assert_eq!(timers.next(), None);
    }
}
