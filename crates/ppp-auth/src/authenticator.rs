//! The authenticator: we check the peer (RFC 1334 §2.1 "authenticator", RFC 1994).

use std::collections::VecDeque;
use std::time::Instant;

use ppp_core::{Machine, Random};
use ppp_frame::Protocol;
use subtle::ConstantTimeEq;
use tracing::debug;

use crate::common::{
    AuthEvent, AuthStatus, AuthenticatorConfig, FailureReason, SecretRequest, SecretToken, Timer,
    Timers,
};
use crate::crypto::{
    authenticator_response_text, chap_md5_response, generate_authenticator_response,
    generate_nt_response_v2, hex_lower, nt_challenge_response_v1, strip_domain,
};
use crate::external::{ExternalKeys, Proof, Verdict, Verification, VerifyRequest};
use crate::mppe_keys::MsChapKeyMaterial;
use crate::secret::Secret;
use crate::wire::{ChapPacket, PapPacket};
use crate::{AuthError, AuthProtocol};

/// pppd's PAP messages.
const PAP_ACK_MESSAGE: &[u8] = b"Login ok";
const PAP_NAK_MESSAGE: &[u8] = b"Login incorrect";
/// pppd's CHAP messages.
const CHAP_GRANTED: &str = "Access granted";
const CHAP_DENIED: &str = "Access denied";
/// MS-CHAP error 691, ERROR_AUTHENTICATION_FAILURE.
const MSCHAP_AUTH_FAILURE: u32 = 691;

/// A response or request waiting for the caller's secret.
enum Pending {
    Chap {
        id: u8,
        value: Vec<u8>,
        name: Vec<u8>,
    },
    Pap {
        id: u8,
        peer_id: Vec<u8>,
        password: Secret,
    },
}

/// The outcome of checking one response, locally or from a verifier's [`Verdict`].
enum Decision {
    Accepted {
        message: Vec<u8>,
        key_material: Option<MsChapKeyMaterial>,
    },
    Rejected {
        reason: FailureReason,
        /// The verifier's text for the peer, instead of pppd's.
        message: Option<String>,
        /// MS-CHAP: the `E=` code, instead of 691.
        error_code: Option<u32>,
    },
}

impl Decision {
    fn rejected(reason: FailureReason) -> Self {
        Decision::Rejected {
            reason,
            message: None,
            error_code: None,
        }
    }
}

/// Checks the peer with one method: PAP, CHAP-MD5, MS-CHAP or MS-CHAP-V2.
///
/// Sans-IO, with the same verbs as [`Authenticatee`](crate::Authenticatee). When the peer names
/// itself, the machine emits [`AuthEvent::SecretNeeded`] (also available from
/// [`secret_request`](Self::secret_request)); the caller looks the secret up (for instance with
/// a [`SecretsBackend`](crate::SecretsBackend)) and answers with
/// [`provide_secret`](Self::provide_secret). The machine never blocks and never does I/O.
///
/// With [`Verification::External`] (see [`AuthenticatorConfig::external`]) it emits
/// [`AuthEvent::VerifyNeeded`] instead, with the peer's [`Proof`], and the caller answers with
/// [`provide_verdict`](Self::provide_verdict):
///
/// ```
/// use std::time::Instant;
/// use ppp_auth::{
///     Acceptance, AuthEvent, AuthProtocol, AuthStatus, Authenticatee, AuthenticateeConfig,
///     Authenticator, AuthenticatorConfig, Credentials, Proof, Random, Verdict,
/// };
///
/// let config = AuthenticatorConfig::new("nas").external();
/// let mut server = Authenticator::new(AuthProtocol::Pap, config, Random::seeded(1));
/// let credentials = Credentials::new("alice", "secret");
/// let mut client = Authenticatee::new(
///     AuthProtocol::Pap, credentials, AuthenticateeConfig::default(), Random::seeded(2));
/// let now = Instant::now();
/// server.open(now);
/// client.open(now);
/// while let Some(packet) = client.poll_transmit() {
///     server.handle_input(now, &packet);
/// }
/// let Some(AuthEvent::VerifyNeeded(request)) = server.poll_event() else { unreachable!() };
/// assert!(matches!(&request.proof, Proof::Pap { password } if password.expose() == b"secret"));
/// // A RADIUS server would decide here.
/// let message = Some("Welcome, alice".to_owned());
/// let verdict = Verdict::Accept(Acceptance { message, ..Acceptance::default() });
/// server.provide_verdict(now, request.token, verdict)?;
/// while let Some(packet) = server.poll_transmit() {
///     client.handle_input(now, &packet);
/// }
/// assert_eq!(server.status(), &AuthStatus::Succeeded);
/// assert_eq!(client.status(), &AuthStatus::Succeeded);
/// # Ok::<(), ppp_auth::AuthError>(())
/// ```
pub struct Authenticator {
    method: AuthProtocol,
    config: AuthenticatorConfig,
    random: Random,
    status: AuthStatus,
    started: bool,
    timers: Timers,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<AuthEvent>,
    /// CHAP: the identifier responses must carry.
    id: u8,
    /// CHAP: the current challenge value.
    challenge: Vec<u8>,
    /// CHAP: whether a response for `id` is still acceptable.
    challenge_valid: bool,
    /// CHAP: the packet retransmitted on timeout (a Challenge, or a Failure offering a retry).
    outstanding: Vec<u8>,
    transmissions: u32,
    /// What a retransmission timeout means (a Failure offering a retry already failed the peer).
    failure_on_timeout: FailureReason,
    pending: Option<Pending>,
    request: Option<SecretRequest>,
    verify: Option<VerifyRequest>,
    /// CHAP: the id and bytes of the last Success/Failure, resent if the response is repeated.
    last_result: Option<(u8, Vec<u8>)>,
    /// PAP: the outcome (Ack?) and its message, resent for repeated requests.
    pap_result: Option<(bool, Vec<u8>)>,
    peer_name: Option<String>,
    key_material: Option<MsChapKeyMaterial>,
    retries_left: u8,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("method", &self.method)
            .field("status", &self.status)
            .field("peer_name", &self.peer_name)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// A machine for `method`; `random` supplies challenges and identifiers.
    pub fn new(method: AuthProtocol, config: AuthenticatorConfig, random: Random) -> Self {
        let retries_left = config.mschap_retries;
        Authenticator {
            method,
            config,
            random,
            status: AuthStatus::Pending,
            started: false,
            timers: Timers::default(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            id: 0,
            challenge: Vec::new(),
            challenge_valid: false,
            outstanding: Vec::new(),
            transmissions: 0,
            failure_on_timeout: FailureReason::Timeout,
            pending: None,
            request: None,
            verify: None,
            last_result: None,
            pap_result: None,
            peer_name: None,
            key_material: None,
            retries_left,
        }
    }

    /// The method.
    pub fn method(&self) -> AuthProtocol {
        self.method
    }

    /// The PPP protocol of the packets this machine reads and writes (PAP or CHAP).
    pub fn protocol(&self) -> Protocol {
        self.method.protocol()
    }

    /// Where authentication stands.
    pub fn status(&self) -> &AuthStatus {
        &self.status
    }

    /// The name the peer authenticated as, once it has.
    pub fn peer_name(&self) -> Option<&str> {
        self.peer_name.as_deref()
    }

    /// MS-CHAP/MS-CHAP-V2: the material MPPE keys derive from, after success.
    pub fn key_material(&self) -> Option<&MsChapKeyMaterial> {
        self.key_material.as_ref()
    }

    /// The secret lookup waiting for [`provide_secret`](Self::provide_secret), if any.
    pub fn secret_request(&self) -> Option<&SecretRequest> {
        self.request.as_ref()
    }

    /// The verification waiting for [`provide_verdict`](Self::provide_verdict), if any.
    pub fn verify_request(&self) -> Option<&VerifyRequest> {
        self.verify.as_ref()
    }

    /// Begins: CHAP sends the first Challenge; PAP waits for an Authenticate-Request. A second
    /// call does nothing.
    pub fn open(&mut self, now: Instant) {
        if self.started {
            return;
        }
        self.started = true;
        if self.method == AuthProtocol::Pap {
            self.timers
                .set(Timer::GiveUp, now + self.config.request_timeout);
        } else {
            self.id = self.random.bytes::<1>()[0];
            self.send_challenge(now);
        }
    }

    /// A PAP or CHAP packet (the PPP information field) arrived. Malformed packets and packets
    /// that do not fit the exchange are logged and dropped. Input before
    /// [`open`](Self::open) starts the machine first.
    pub fn handle_input(&mut self, now: Instant, packet: &[u8]) {
        if !self.started {
            self.open(now);
        }
        if self.method == AuthProtocol::Pap {
            match PapPacket::parse(packet) {
                Ok(p) => {
                    debug!("rcvd [{p}]");
                    self.handle_pap(now, p);
                }
                Err(e) => debug!("rcvd malformed PAP packet: {e}"),
            }
        } else {
            match ChapPacket::parse(packet) {
                Ok(p) => {
                    debug!("rcvd [{p}]");
                    self.handle_chap(now, p);
                }
                Err(e) => debug!("rcvd malformed CHAP packet: {e}"),
            }
        }
    }

    /// The answer to the outstanding [`SecretRequest`] whose [`token`](SecretRequest::token) is
    /// `token`: the peer's secret, or `None` when the peer is unknown (which fails it).
    ///
    /// # Errors
    ///
    /// [`AuthError::NoSecretRequest`] when no lookup is outstanding (for instance after it timed
    /// out), [`AuthError::StaleSecretAnswer`] when `token` belongs to an earlier request: a late
    /// answer never lands on a later exchange.
    pub fn provide_secret(
        &mut self,
        now: Instant,
        token: SecretToken,
        secret: Option<Secret>,
    ) -> Result<(), AuthError> {
        let request = self.request.as_ref().ok_or(AuthError::NoSecretRequest)?;
        if request.token != token {
            return Err(AuthError::StaleSecretAnswer);
        }
        let pending = self.pending.take().ok_or(AuthError::NoSecretRequest)?;
        self.request = None;
        self.timers.stop(Timer::SecretLookup);
        match pending {
            Pending::Pap {
                id,
                peer_id,
                password,
            } => {
                let name = String::from_utf8_lossy(&peer_id).into_owned();
                let ok = secret.as_ref().is_some_and(|s| s.ct_eq(password.expose()));
                self.send_pap_result(id, ok, None);
                if ok {
                    self.peer_name = Some(name.clone());
                    self.succeed(name);
                } else if secret.is_none() {
                    self.fail(FailureReason::UnknownUser { name });
                } else {
                    self.fail(FailureReason::WrongSecret { name });
                }
            }
            Pending::Chap { id, value, name } => {
                let decision = match secret {
                    None => Decision::rejected(FailureReason::UnknownUser {
                        name: String::from_utf8_lossy(&name).into_owned(),
                    }),
                    Some(secret) => self.verify(id, &value, &name, &secret),
                };
                self.chap_result(now, id, &name, decision);
            }
        }
        Ok(())
    }

    /// The verifier's answer to the outstanding [`VerifyRequest`] whose
    /// [`token`](VerifyRequest::token) is `token` ([`Verification::External`] only).
    ///
    /// An [`Acceptance`](crate::Acceptance) sends the peer a PAP Ack or CHAP Success with the
    /// verdict's message (pppd's words when there is none); for MS-CHAP-V2 the Success carries
    /// the verdict's authenticator response as `S=`, and an acceptance without one fails the
    /// peer ([`FailureReason::IncompleteVerdict`]). MPPE keys in the verdict become
    /// [`key_material`](Self::key_material). A [`Rejection`](crate::Rejection) sends a Nak or
    /// Failure with its message (and MS-CHAP `E=` code) and fails with
    /// [`FailureReason::Refused`].
    ///
    /// # Errors
    ///
    /// [`AuthError::NoVerifyRequest`] when no verification is outstanding (for instance after
    /// it timed out), [`AuthError::StaleVerdict`] when `token` belongs to an earlier request: a
    /// late verdict never lands on a later exchange.
    pub fn provide_verdict(
        &mut self,
        now: Instant,
        token: SecretToken,
        verdict: Verdict,
    ) -> Result<(), AuthError> {
        let request = self.verify.as_ref().ok_or(AuthError::NoVerifyRequest)?;
        if request.token != token {
            return Err(AuthError::StaleVerdict);
        }
        let request = self.verify.take().ok_or(AuthError::NoVerifyRequest)?;
        let pending = self.pending.take().ok_or(AuthError::NoVerifyRequest)?;
        self.timers.stop(Timer::SecretLookup);
        let name = request.peer_name;
        match (pending, verdict) {
            (Pending::Pap { id, .. }, Verdict::Accept(acceptance)) => {
                self.send_pap_result(id, true, acceptance.message.as_deref());
                self.peer_name = Some(name.clone());
                self.succeed(name);
            }
            (Pending::Pap { id, .. }, Verdict::Reject(rejection)) => {
                self.send_pap_result(id, false, rejection.message.as_deref());
                self.fail(FailureReason::Refused {
                    name,
                    message: rejection.message,
                });
            }
            (Pending::Chap { id, name: raw, .. }, Verdict::Reject(rejection)) => {
                let decision = Decision::Rejected {
                    reason: FailureReason::Refused {
                        name,
                        message: rejection.message.clone(),
                    },
                    message: rejection.message,
                    error_code: rejection.error_code,
                };
                self.chap_result(now, id, &raw, decision);
            }
            (Pending::Chap { id, name: raw, .. }, Verdict::Accept(acceptance)) => {
                let decision = Self::accepted(request.proof, name, acceptance);
                self.chap_result(now, id, &raw, decision);
            }
        }
        Ok(())
    }

    /// What a verifier's acceptance of a CHAP-family proof means for the peer.
    fn accepted(proof: Proof, name: String, acceptance: crate::Acceptance) -> Decision {
        let granted = acceptance
            .message
            .clone()
            .unwrap_or_else(|| CHAP_GRANTED.to_owned());
        let keys = |version: u8, nt_response: [u8; 24], challenge: &[u8]| {
            acceptance.keys.as_ref().map(|keys| match keys {
                ExternalKeys::SendRecv { send, recv } => {
                    MsChapKeyMaterial::from_start_keys(version, *send, *recv, true)
                }
                ExternalKeys::MsChapMppeKeys { nt_key, .. } => {
                    MsChapKeyMaterial::from_password_hash_hash(
                        version,
                        *nt_key,
                        nt_response,
                        challenge,
                        true,
                    )
                }
            })
        };
        match proof {
            Proof::MsChapV2 {
                authenticator_challenge,
                nt_response,
                flags,
                ..
            } => {
                let Some(response) = acceptance.authenticator_response else {
                    return Decision::rejected(FailureReason::IncompleteVerdict { name });
                };
                let mut message = authenticator_response_text(&response);
                if flags == 0 {
                    message.push_str(" M=");
                    message.push_str(&granted);
                }
                Decision::Accepted {
                    message: message.into_bytes(),
                    key_material: keys(2, nt_response, &authenticator_challenge),
                }
            }
            Proof::MsChapV1 {
                challenge,
                nt_response,
                ..
            } => Decision::Accepted {
                message: granted.into_bytes(),
                key_material: keys(1, nt_response, &challenge),
            },
            _ => Decision::Accepted {
                message: granted.into_bytes(),
                key_material: None,
            },
        }
    }

    /// The time from [`poll_timeout`](Self::poll_timeout) has come. Spurious calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.take_due(now) {
            match timer {
                Timer::Retransmit => {
                    if self.transmissions >= self.config.max_transmissions {
                        debug!("peer failed to respond to CHAP challenge");
                        self.fail(self.failure_on_timeout.clone());
                    } else {
                        self.transmissions += 1;
                        debug!(
                            "sent [CHAP id={:#x}] (retransmission {})",
                            self.outstanding.get(1).copied().unwrap_or(0),
                            self.transmissions
                        );
                        self.transmit.push_back(self.outstanding.clone());
                        self.timers
                            .set(Timer::Retransmit, now + self.config.retransmit_interval);
                    }
                }
                Timer::GiveUp => {
                    debug!("timed out waiting for the peer's authenticate-request");
                    self.fail(FailureReason::Timeout);
                }
                Timer::Rechallenge => {
                    if self.status == AuthStatus::Succeeded && self.pending.is_none() {
                        self.id = self.id.wrapping_add(1);
                        self.send_challenge(now);
                    }
                }
                Timer::SecretLookup => {
                    self.pending = None;
                    self.request = None;
                    if self.verify.take().is_some() {
                        self.fail(FailureReason::VerificationTimeout);
                    } else {
                        self.fail(FailureReason::SecretLookupTimeout);
                    }
                }
            }
        }
    }

    /// The next information field to send, with [`protocol`](Self::protocol). Poll until `None`
    /// after every input.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next event. Poll until `None` after every input.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<AuthEvent> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    fn fail(&mut self, reason: FailureReason) {
        if matches!(self.status, AuthStatus::Failed(_)) {
            return;
        }
        debug!("peer authentication failed: {reason}");
        self.timers.stop_all();
        self.challenge_valid = false;
        self.key_material = None;
        self.status = AuthStatus::Failed(reason.clone());
        self.events.push_back(AuthEvent::Failed(reason));
    }

    fn succeed(&mut self, name: String) {
        self.timers.stop(Timer::GiveUp);
        self.timers.stop(Timer::Retransmit);
        if self.status == AuthStatus::Pending {
            debug!(
                "{} peer authentication succeeded for {name:?}",
                self.method.log_name()
            );
            self.status = AuthStatus::Succeeded;
            self.events.push_back(AuthEvent::Succeeded {
                peer_name: Some(name),
            });
        }
    }

    fn ask_secret(&mut self, now: Instant, client: &[u8], pending: Pending) {
        if self.config.verification == Verification::External {
            self.ask_verifier(now, client, pending);
            return;
        }
        let request = SecretRequest {
            client: String::from_utf8_lossy(client).into_owned(),
            server: self.config.our_name.clone(),
            method: self.method,
            token: SecretToken(self.random.u64()),
        };
        self.pending = Some(pending);
        self.request = Some(request.clone());
        self.timers
            .set(Timer::SecretLookup, now + self.config.secret_timeout);
        self.events.push_back(AuthEvent::SecretNeeded(request));
    }

    /// External verification: hands the proof over, or fails a malformed response at once.
    fn ask_verifier(&mut self, now: Instant, client: &[u8], pending: Pending) {
        let peer_name = String::from_utf8_lossy(client).into_owned();
        let proof = match &pending {
            Pending::Pap { password, .. } => Some(Proof::Pap {
                password: password.clone(),
            }),
            Pending::Chap { id, value, .. } => self.chap_proof(*id, value),
        };
        let Some(proof) = proof else {
            if let Pending::Chap { id, name, .. } = pending {
                let decision = Decision::rejected(FailureReason::BadResponse { name: peer_name });
                self.chap_result(now, id, &name, decision);
            }
            return;
        };
        let request = VerifyRequest {
            token: SecretToken(self.random.u64()),
            peer_name,
            server: self.config.our_name.clone(),
            method: self.method,
            proof,
        };
        self.pending = Some(pending);
        self.verify = Some(request.clone());
        self.timers
            .set(Timer::SecretLookup, now + self.config.secret_timeout);
        self.events.push_back(AuthEvent::VerifyNeeded(request));
    }

    /// The proof in a CHAP Response's value, or `None` when it is malformed for the method.
    fn chap_proof(&self, id: u8, value: &[u8]) -> Option<Proof> {
        match self.method {
            AuthProtocol::MsChapV1 => {
                // LM-Response(24) NT-Response(24) Flags(1).
                if value.len() != 49 {
                    return None;
                }
                Some(Proof::MsChapV1 {
                    id,
                    challenge: self.challenge.get(..8)?.try_into().ok()?,
                    lm_response: value[..24].try_into().ok()?,
                    nt_response: value[24..48].try_into().ok()?,
                    flags: value[48],
                })
            }
            AuthProtocol::MsChapV2 => {
                // Peer-Challenge(16) Reserved(8) NT-Response(24) Flags(1).
                if value.len() != 49 {
                    return None;
                }
                Some(Proof::MsChapV2 {
                    id,
                    authenticator_challenge: self.challenge.get(..16)?.try_into().ok()?,
                    peer_challenge: value[..16].try_into().ok()?,
                    nt_response: value[24..48].try_into().ok()?,
                    flags: value[48],
                })
            }
            _ => Some(Proof::ChapMd5 {
                id,
                challenge: self.challenge.clone(),
                response: value.try_into().ok()?,
            }),
        }
    }

    // ---- PAP ----

    fn handle_pap(&mut self, now: Instant, packet: PapPacket) {
        match packet {
            PapPacket::Request {
                id,
                peer_id,
                password,
            } => {
                if self.pending.is_some() {
                    debug!("PAP: request id={id:#x} while checking the previous one, ignored");
                } else if let Some((ok, message)) = self.pap_result.clone() {
                    // The peer did not get our answer: repeat it (pppd does the same).
                    self.send_pap_packet(id, ok, message);
                } else if self.status == AuthStatus::Pending {
                    self.timers.stop(Timer::GiveUp);
                    let client = peer_id.clone();
                    self.ask_secret(
                        now,
                        &client,
                        Pending::Pap {
                            id,
                            peer_id,
                            password,
                        },
                    );
                }
            }
            other => debug!("PAP: ignoring {:?} id={:#x}", other.code(), other.id()),
        }
    }

    /// Decides the PAP exchange: Ack or Nak with `message` (pppd's words when `None`).
    fn send_pap_result(&mut self, id: u8, ok: bool, message: Option<&str>) {
        let default = if ok { PAP_ACK_MESSAGE } else { PAP_NAK_MESSAGE };
        let mut message = message.map_or_else(|| default.to_vec(), |m| m.as_bytes().to_vec());
        // The Msg-Length byte caps the text.
        message.truncate(255);
        self.pap_result = Some((ok, message.clone()));
        self.send_pap_packet(id, ok, message);
    }

    fn send_pap_packet(&mut self, id: u8, ok: bool, message: Vec<u8>) {
        let packet = if ok {
            PapPacket::Ack { id, message }
        } else {
            PapPacket::Nak { id, message }
        };
        self.queue(packet.to_bytes(), &packet);
    }

    fn queue<P: std::fmt::Display>(&mut self, bytes: Result<Vec<u8>, AuthError>, packet: &P) {
        match bytes {
            Ok(bytes) => {
                debug!("sent [{packet}]");
                self.transmit.push_back(bytes);
            }
            Err(e) => debug!("cannot build packet: {e}"),
        }
    }

    // ---- CHAP ----

    fn challenge_len(&self) -> usize {
        match self.method {
            AuthProtocol::MsChapV1 => 8,
            AuthProtocol::MsChapV2 => 16,
            _ => usize::from(self.config.challenge_len.max(1)),
        }
    }

    fn new_challenge_value(&mut self) {
        let mut value = vec![0u8; self.challenge_len()];
        self.random.fill(&mut value);
        self.challenge = value;
    }

    fn send_challenge(&mut self, now: Instant) {
        self.new_challenge_value();
        let packet = ChapPacket::Challenge {
            id: self.id,
            value: self.challenge.clone(),
            name: self.config.our_name.as_bytes().to_vec(),
        };
        let bytes = match packet.to_bytes() {
            Ok(b) => b,
            Err(e) => {
                debug!("cannot build CHAP challenge: {e}");
                return;
            }
        };
        debug!("sent [{packet}]");
        self.outstanding = bytes.clone();
        self.transmit.push_back(bytes);
        self.transmissions = 1;
        self.challenge_valid = true;
        self.failure_on_timeout = FailureReason::Timeout;
        self.timers
            .set(Timer::Retransmit, now + self.config.retransmit_interval);
    }

    fn handle_chap(&mut self, now: Instant, packet: ChapPacket) {
        let ChapPacket::Response { id, value, name } = packet else {
            debug!("CHAP: ignoring {:?} id={:#x}", packet.code(), packet.id());
            return;
        };
        if self.pending.is_some() {
            debug!("CHAP: response id={id:#x} while checking the previous one, ignored");
            return;
        }
        if self.challenge_valid && id == self.id && !matches!(self.status, AuthStatus::Failed(_)) {
            self.challenge_valid = false;
            self.timers.stop(Timer::Retransmit);
            let client = name.clone();
            self.ask_secret(now, &client, Pending::Chap { id, value, name });
            return;
        }
        // A repeated response to a challenge already decided: repeat the decision, nothing more.
        if let Some((last_id, bytes)) = &self.last_result
            && *last_id == id
            && !self.challenge_valid
        {
            debug!("sent [CHAP result id={id:#x}] (again)");
            self.transmit.push_back(bytes.clone());
            return;
        }
        debug!(
            "CHAP: response id={id:#x} does not answer our challenge id={:#x}, ignored",
            self.id
        );
    }

    fn verify(&self, id: u8, value: &[u8], name: &[u8], secret: &Secret) -> Decision {
        let name_text = String::from_utf8_lossy(name).into_owned();
        let bad = || {
            Decision::rejected(FailureReason::BadResponse {
                name: name_text.clone(),
            })
        };
        let wrong = || {
            Decision::rejected(FailureReason::WrongSecret {
                name: name_text.clone(),
            })
        };
        match self.method {
            AuthProtocol::MsChapV1 => {
                // LM-Response(24) NT-Response(24) Flags(1): only the NT response is supported.
                let (Ok(challenge), [_lm @ .., flag]) =
                    (<[u8; 8]>::try_from(&self.challenge[..]), value)
                else {
                    return bad();
                };
                if value.len() != 49 || *flag != 1 {
                    return bad();
                }
                let expected = nt_challenge_response_v1(&challenge, secret.expose());
                if !bool::from(expected.ct_eq(&value[24..48])) {
                    return wrong();
                }
                Decision::Accepted {
                    message: CHAP_GRANTED.as_bytes().to_vec(),
                    key_material: Some(MsChapKeyMaterial::new_v1(
                        secret.expose(),
                        expected,
                        challenge,
                        true,
                    )),
                }
            }
            AuthProtocol::MsChapV2 => {
                // Peer-Challenge(16) Reserved(8) NT-Response(24) Flags(1).
                let Ok(challenge) = <[u8; 16]>::try_from(&self.challenge[..]) else {
                    return bad();
                };
                if value.len() != 49 {
                    return bad();
                }
                let mut peer_challenge = [0u8; 16];
                peer_challenge.copy_from_slice(&value[..16]);
                let user = strip_domain(name);
                let expected =
                    generate_nt_response_v2(&challenge, &peer_challenge, user, secret.expose());
                if !bool::from(expected.ct_eq(&value[24..48])) {
                    return wrong();
                }
                let s = generate_authenticator_response(
                    secret.expose(),
                    &expected,
                    &peer_challenge,
                    &challenge,
                    user,
                );
                let mut message = authenticator_response_text(&s);
                // pppd leaves M= out for peers that set Flags (some Windows versions choke on it).
                if value[48] == 0 {
                    message.push_str(" M=");
                    message.push_str(CHAP_GRANTED);
                }
                Decision::Accepted {
                    message: message.into_bytes(),
                    key_material: Some(MsChapKeyMaterial::new_v2(
                        secret.expose(),
                        expected,
                        challenge,
                        true,
                    )),
                }
            }
            _ => {
                if value.len() != 16 {
                    return bad();
                }
                let expected = chap_md5_response(id, secret.expose(), &self.challenge);
                if !bool::from(expected.ct_eq(value)) {
                    return wrong();
                }
                Decision::Accepted {
                    message: CHAP_GRANTED.as_bytes().to_vec(),
                    key_material: None,
                }
            }
        }
    }

    fn chap_result(&mut self, now: Instant, id: u8, name: &[u8], decision: Decision) {
        let name = String::from_utf8_lossy(name).into_owned();
        let decision = match (&self.peer_name, decision) {
            (Some(was), Decision::Accepted { .. }) if *was != name => {
                Decision::rejected(FailureReason::NameChanged {
                    was: was.clone(),
                    now: name.clone(),
                })
            }
            (_, d) => d,
        };
        match decision {
            Decision::Accepted {
                message,
                key_material,
            } => {
                self.send_chap_result(ChapPacket::Success { id, message });
                self.key_material = key_material;
                self.peer_name = Some(name.clone());
                self.succeed(name);
                if let Some(interval) = self.config.rechallenge_interval {
                    self.timers.set(Timer::Rechallenge, now + interval);
                }
            }
            Decision::Rejected {
                reason,
                message: text,
                error_code,
            } => {
                let ms = matches!(self.method, AuthProtocol::MsChapV1 | AuthProtocol::MsChapV2);
                let retry = ms && self.retries_left > 0 && self.status == AuthStatus::Pending;
                if retry {
                    self.retries_left -= 1;
                    self.new_challenge_value();
                }
                let message = if ms {
                    let mut m = format!(
                        "E={} R={} C={} V=0",
                        error_code.unwrap_or(MSCHAP_AUTH_FAILURE),
                        u8::from(retry),
                        hex_lower(&self.challenge)
                    );
                    // RFC 2433 has no M= for v1; pppd reads one all the same, so a verifier's
                    // text goes there too.
                    if self.method == AuthProtocol::MsChapV2 || text.is_some() {
                        m.push_str(" M=");
                        m.push_str(text.as_deref().unwrap_or(CHAP_DENIED));
                    }
                    m
                } else {
                    text.unwrap_or_else(|| CHAP_DENIED.to_owned())
                };
                let failure = ChapPacket::Failure {
                    id,
                    message: message.into_bytes(),
                };
                if retry {
                    // The retried response carries the next identifier and answers C=.
                    debug!("peer authentication failed ({reason}); retry allowed");
                    if let Ok(bytes) = failure.to_bytes() {
                        debug!("sent [{failure}]");
                        self.outstanding = bytes.clone();
                        self.transmit.push_back(bytes);
                    }
                    self.id = id.wrapping_add(1);
                    self.challenge_valid = true;
                    self.transmissions = 1;
                    self.failure_on_timeout = reason;
                    self.timers
                        .set(Timer::Retransmit, now + self.config.retransmit_interval);
                } else {
                    self.send_chap_result(failure);
                    self.fail(reason);
                }
            }
        }
    }

    fn send_chap_result(&mut self, packet: ChapPacket) {
        if let Ok(bytes) = packet.to_bytes() {
            debug!("sent [{packet}]");
            self.last_result = Some((packet.id(), bytes.clone()));
            self.transmit.push_back(bytes);
        }
    }
}

impl Machine for Authenticator {
    type Event = AuthEvent;

    fn handle_input(&mut self, now: Instant, input: &[u8]) {
        Authenticator::handle_input(self, now, input);
    }

    fn handle_timeout(&mut self, now: Instant) {
        Authenticator::handle_timeout(self, now);
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        Authenticator::poll_transmit(self)
    }

    fn poll_event(&mut self) -> Option<AuthEvent> {
        Authenticator::poll_event(self)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Authenticator::poll_timeout(self)
    }
}
