//! The authenticatee: we prove ourselves to the peer (RFC 1334 §2.1 "peer", RFC 1994 "peer").

use std::collections::VecDeque;
use std::time::Instant;

use ppp_core::{Machine, Random};
use ppp_frame::Protocol;
use subtle::ConstantTimeEq;
use tracing::{debug, info};

use crate::AuthProtocol;
use crate::common::{
    AuthEvent, AuthStatus, AuthenticateeConfig, Credentials, FailureReason, MsChapFailure, Timer,
    Timers,
};
use crate::crypto::{
    chap_md5_response, generate_authenticator_response, generate_nt_response_v2,
    nt_challenge_response_v1, strip_domain,
};
use crate::mppe_keys::MsChapKeyMaterial;
use crate::secret::Secret;
use crate::wire::{ChapPacket, PapPacket};

/// The last CHAP response we sent, to resend it for a repeated challenge and check the result.
struct SentResponse {
    id: u8,
    challenge: Vec<u8>,
    packet: Vec<u8>,
    /// MS-CHAP-V2: the `S=` value we expect in Success.
    expected_authenticator_response: Option<[u8; 20]>,
    key_material: Option<MsChapKeyMaterial>,
    /// A Success for this response has been accepted.
    done: bool,
}

/// Proves our identity to the peer with one method: PAP, CHAP-MD5, MS-CHAP or MS-CHAP-V2.
///
/// Sans-IO: feed it the information fields of PAP or CHAP packets ([`protocol`](Self::protocol)
/// says which) with [`handle_input`](Self::handle_input), call
/// [`handle_timeout`](Self::handle_timeout) at [`poll_timeout`](Self::poll_timeout), and after
/// each call drain [`poll_transmit`](Self::poll_transmit) and [`poll_event`](Self::poll_event).
pub struct Authenticatee {
    method: AuthProtocol,
    config: AuthenticateeConfig,
    credentials: Credentials,
    random: Random,
    status: AuthStatus,
    started: bool,
    timers: Timers,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<AuthEvent>,
    // PAP
    pap_request: Option<PapPacket>,
    pap_first_id: u8,
    pap_transmissions: u32,
    chap_transmissions: u32,
    // CHAP
    last_response: Option<SentResponse>,
    retries_left: u8,
    authenticator_name: String,
    key_material: Option<MsChapKeyMaterial>,
}

impl std::fmt::Debug for Authenticatee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticatee")
            .field("method", &self.method)
            .field("name", &self.credentials.name())
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Authenticatee {
    /// A machine for `method`. `random` supplies PAP identifiers and the MS-CHAP-V2 peer challenge.
    pub fn new(
        method: AuthProtocol,
        credentials: Credentials,
        config: AuthenticateeConfig,
        random: Random,
    ) -> Self {
        let retries_left = config.mschap_retries;
        Authenticatee {
            method,
            config,
            credentials,
            random,
            status: AuthStatus::Pending,
            started: false,
            timers: Timers::default(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            pap_request: None,
            pap_first_id: 0,
            pap_transmissions: 0,
            chap_transmissions: 0,
            last_response: None,
            retries_left,
            authenticator_name: String::new(),
            key_material: None,
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

    /// MS-CHAP/MS-CHAP-V2: the material MPPE keys derive from, once the last challenge succeeded.
    pub fn key_material(&self) -> Option<&MsChapKeyMaterial> {
        self.key_material.as_ref()
    }

    /// Begins: PAP sends the first Authenticate-Request; CHAP waits for a challenge. A second call
    /// does nothing.
    pub fn open(&mut self, now: Instant) {
        if self.started {
            return;
        }
        self.started = true;
        if self.method == AuthProtocol::Pap {
            let Some(password) = self.credentials.secret_for("") else {
                self.fail(FailureReason::NoSecret {
                    authenticator: String::new(),
                });
                return;
            };
            self.pap_first_id = self.random.bytes::<1>()[0];
            self.pap_request = Some(PapPacket::Request {
                id: self.pap_first_id,
                peer_id: self.credentials.name().as_bytes().to_vec(),
                password,
            });
            self.send_pap_request(now);
        } else if let Some(timeout) = self.config.chap_timeout {
            self.timers.set(Timer::GiveUp, now + timeout);
        }
    }

    /// A PAP or CHAP packet (the PPP information field) arrived. Malformed packets and packets
    /// that do not fit the exchange are logged and dropped. Input before
    /// [`open`](Self::open) starts the machine first (a peer's challenge may arrive before the
    /// link has told us authentication begins).
    pub fn handle_input(&mut self, now: Instant, packet: &[u8]) {
        if !self.started {
            self.open(now);
        }
        if self.method == AuthProtocol::Pap {
            match PapPacket::parse(packet) {
                Ok(p) => {
                    debug!("rcvd [{p}]");
                    self.handle_pap(p);
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

    /// The time from [`poll_timeout`](Self::poll_timeout) has come. Spurious calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.take_due(now) {
            match timer {
                Timer::Retransmit if self.method == AuthProtocol::Pap => {
                    if self.pap_transmissions >= self.config.max_transmissions {
                        debug!("No response to PAP authenticate-requests");
                        self.fail(FailureReason::Timeout);
                    } else {
                        self.send_pap_request(now);
                    }
                }
                Timer::Retransmit => {
                    // RFC 1994 §4.2 lets the peer repeat its Response: a lost Success or
                    // Failure is recovered this way (the authenticator repeats its decision).
                    if let Some(last) = self.last_response.as_ref().filter(|l| !l.done)
                        && self.chap_transmissions < self.config.max_transmissions
                    {
                        self.chap_transmissions += 1;
                        debug!("sent [CHAP Response id={:#x}] (again)", last.id);
                        self.transmit.push_back(last.packet.clone());
                        self.timers
                            .set(Timer::Retransmit, now + self.config.retransmit_interval);
                    }
                }
                Timer::GiveUp => {
                    debug!("timed out waiting for CHAP challenge or result");
                    self.fail(FailureReason::Timeout);
                }
                Timer::Rechallenge | Timer::SecretLookup => {}
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
        debug!("authentication failed: {reason}");
        self.timers.stop_all();
        self.key_material = None;
        self.status = AuthStatus::Failed(reason.clone());
        self.events.push_back(AuthEvent::Failed(reason));
    }

    fn succeed(&mut self) {
        self.timers.stop_all();
        if self.status == AuthStatus::Pending {
            debug!("{} authentication succeeded", self.method.log_name());
            self.status = AuthStatus::Succeeded;
            self.events
                .push_back(AuthEvent::Succeeded { peer_name: None });
        }
    }

    fn send_pap_request(&mut self, now: Instant) {
        let Some(PapPacket::Request { id, .. }) = self.pap_request.as_mut() else {
            return;
        };
        if self.pap_transmissions > 0 {
            *id = id.wrapping_add(1);
        }
        self.pap_transmissions += 1;
        if let Some(request) = &self.pap_request {
            match request.to_bytes() {
                Ok(bytes) => {
                    debug!("sent [{request}]");
                    self.transmit.push_back(bytes);
                }
                Err(e) => {
                    debug!("cannot build PAP request: {e}");
                    self.fail(FailureReason::NoSecret {
                        authenticator: String::new(),
                    });
                    return;
                }
            }
        }
        self.timers
            .set(Timer::Retransmit, now + self.config.retransmit_interval);
    }

    fn handle_pap(&mut self, packet: PapPacket) {
        if self.status != AuthStatus::Pending || self.pap_transmissions == 0 {
            return;
        }
        // Accept a reply to any request we sent (they all carry the same credentials).
        let sent = self.pap_transmissions.min(256) as u16;
        let ours = |id: u8| u16::from(id.wrapping_sub(self.pap_first_id)) < sent;
        match packet {
            PapPacket::Ack { id, message } if ours(id) => {
                self.pap_request = None;
                remote_message(&message);
                self.succeed();
            }
            PapPacket::Nak { id, message } if ours(id) => {
                self.pap_request = None;
                self.fail(FailureReason::Rejected {
                    message: String::from_utf8_lossy(&message).into_owned(),
                    error_code: None,
                });
            }
            other => debug!(
                "PAP: ignoring {} id={:#x}",
                other.code().name().unwrap_or("packet"),
                other.id()
            ),
        }
    }

    fn handle_chap(&mut self, now: Instant, packet: ChapPacket) {
        if matches!(self.status, AuthStatus::Failed(_)) {
            return;
        }
        match packet {
            ChapPacket::Challenge { id, value, name } => {
                self.answer_challenge(now, id, value, &name)
            }
            ChapPacket::Success { id, message } => self.chap_success(id, &message),
            ChapPacket::Failure { id, message } => self.chap_failure(now, id, &message),
            other => debug!(
                "CHAP: ignoring code {:?} id={:#x}",
                other.code(),
                other.id()
            ),
        }
    }

    fn answer_challenge(&mut self, now: Instant, id: u8, challenge: Vec<u8>, name: &[u8]) {
        let expected_len = match self.method {
            AuthProtocol::MsChapV1 => Some(8),
            AuthProtocol::MsChapV2 => Some(16),
            _ => None,
        };
        if expected_len.is_some_and(|n| n != challenge.len()) || challenge.is_empty() {
            debug!(
                "CHAP: ignoring challenge of {} bytes for {}",
                challenge.len(),
                self.method.log_name()
            );
            return;
        }
        // A retransmitted challenge gets the same response (the MS-CHAP-V2 peer challenge must
        // not change, or the Success for the first response would not verify).
        if let Some(last) = &self.last_response
            && last.id == id
            && last.challenge == challenge
        {
            debug!("sent [CHAP Response id={id:#x}] (again)");
            self.transmit.push_back(last.packet.clone());
            return;
        }
        let authenticator = String::from_utf8_lossy(name).into_owned();
        self.authenticator_name.clone_from(&authenticator);
        let Some(secret) = self.credentials.secret_for(&authenticator) else {
            self.fail(FailureReason::NoSecret { authenticator });
            return;
        };
        self.respond(now, id, challenge, &secret);
    }

    /// Builds and sends the response to `challenge` with identifier `id`.
    fn respond(&mut self, now: Instant, id: u8, challenge: Vec<u8>, secret: &Secret) {
        let user = self.credentials.name().as_bytes().to_vec();
        let mut expected_authenticator_response = None;
        let mut key_material = None;
        let value = match self.method {
            AuthProtocol::MsChapV1 => {
                let Ok(c) = <[u8; 8]>::try_from(&challenge[..]) else {
                    return;
                };
                let nt = nt_challenge_response_v1(&c, secret.expose());
                key_material = Some(MsChapKeyMaterial::new_v1(secret.expose(), nt, c, false));
                let mut value = vec![0u8; 24];
                value.extend_from_slice(&nt);
                value.push(1); // use the NT response
                value
            }
            AuthProtocol::MsChapV2 => {
                let Ok(c) = <[u8; 16]>::try_from(&challenge[..]) else {
                    return;
                };
                let mut peer_challenge = [0u8; 16];
                self.random.fill(&mut peer_challenge);
                let hashed_user = strip_domain(&user);
                let nt = generate_nt_response_v2(&c, &peer_challenge, hashed_user, secret.expose());
                expected_authenticator_response = Some(generate_authenticator_response(
                    secret.expose(),
                    &nt,
                    &peer_challenge,
                    &c,
                    hashed_user,
                ));
                key_material = Some(MsChapKeyMaterial::new_v2(secret.expose(), nt, c, false));
                let mut value = peer_challenge.to_vec();
                value.extend_from_slice(&[0u8; 8]);
                value.extend_from_slice(&nt);
                value.push(0); // flags
                value
            }
            _ => chap_md5_response(id, secret.expose(), &challenge).to_vec(),
        };
        let response = ChapPacket::Response {
            id,
            value,
            name: user,
        };
        let packet = match response.to_bytes() {
            Ok(p) => p,
            Err(e) => {
                debug!("cannot build CHAP response: {e}");
                self.fail(FailureReason::NoSecret {
                    authenticator: String::new(),
                });
                return;
            }
        };
        debug!("sent [{response}]");
        self.transmit.push_back(packet.clone());
        self.chap_transmissions = 1;
        self.timers
            .set(Timer::Retransmit, now + self.config.retransmit_interval);
        self.last_response = Some(SentResponse {
            id,
            challenge,
            packet,
            expected_authenticator_response,
            key_material,
            done: false,
        });
        // After a success the link is up: a lost re-challenge result is not fatal by timeout.
        if self.status == AuthStatus::Pending
            && let Some(timeout) = self.config.chap_timeout
        {
            self.timers.set(Timer::GiveUp, now + timeout);
        }
    }

    fn chap_success(&mut self, id: u8, message: &[u8]) {
        let Some(last) = self.last_response.as_mut() else {
            debug!("CHAP: Success before any response, ignored");
            return;
        };
        if last.id != id {
            debug!(
                "CHAP: Success id={id:#x} does not match our response id={:#x}, ignored",
                last.id
            );
            return;
        }
        if last.done {
            return;
        }
        if let Some(expected) = last.expected_authenticator_response
            && !authenticator_response_matches(message, &expected)
        {
            self.fail(FailureReason::MutualAuthFailed);
            return;
        }
        last.done = true;
        self.key_material = last.key_material.clone();
        // MS-CHAP-V2: "S=<response> M=<text>"; the others: the text.
        match message.windows(3).position(|w| w == b" M=") {
            Some(at) => remote_message(&message[at + 3..]),
            None if !message.starts_with(b"S=") => remote_message(message),
            None => {}
        }
        self.succeed();
    }

    fn chap_failure(&mut self, now: Instant, id: u8, message: &[u8]) {
        let Some(last) = self.last_response.as_ref() else {
            debug!("CHAP: Failure before any response, ignored");
            return;
        };
        if last.id != id || last.done {
            debug!("CHAP: Failure id={id:#x} does not match our pending response, ignored");
            return;
        }
        let text = String::from_utf8_lossy(message).into_owned();
        if matches!(self.method, AuthProtocol::MsChapV1 | AuthProtocol::MsChapV2) {
            let failure = MsChapFailure::parse(message);
            let challenge_len = if self.method == AuthProtocol::MsChapV1 {
                8
            } else {
                16
            };
            if let (true, Some(challenge)) = (failure.retry, failure.challenge.as_ref())
                && self.retries_left > 0
                && challenge.len() == challenge_len
            {
                self.retries_left -= 1;
                let authenticator = self.authenticator_name.clone();
                let Some(secret) = self.credentials.secret_for(&authenticator) else {
                    self.fail(FailureReason::NoSecret { authenticator });
                    return;
                };
                debug!("MS-CHAP failure with retry allowed: retrying");
                self.respond(now, id.wrapping_add(1), challenge.clone(), &secret);
                return;
            }
            self.fail(FailureReason::Rejected {
                message: failure.message.unwrap_or(text),
                error_code: failure.error_code,
            });
        } else {
            self.fail(FailureReason::Rejected {
                message: text,
                error_code: None,
            });
        }
    }
}

/// Logs the authenticator's words on success, as pppd does ("Remote message: ..."): a RADIUS
/// server's Reply-Message reaches the user this way.
fn remote_message(message: &[u8]) {
    let text = String::from_utf8_lossy(message).replace(char::is_control, " ");
    let text = text.trim();
    if !text.is_empty() {
        info!("Remote message: {text}");
    }
}

/// Whether a Success message starts with `S=` and the expected 40 hex digits (either case),
/// followed by nothing, or by ` M=`/`M=` and text (as pppd accepts).
fn authenticator_response_matches(message: &[u8], expected: &[u8; 20]) -> bool {
    let Some(rest) = message.strip_prefix(b"S=") else {
        return false;
    };
    let Some(hex) = rest.get(..40) else {
        return false;
    };
    let Some(got) = crate::crypto::from_hex(hex) else {
        return false;
    };
    let tail = &rest[40..];
    let tail_ok = tail.is_empty() || tail.starts_with(b" M=") || tail.starts_with(b"M=");
    bool::from(got.ct_eq(expected)) && tail_ok
}

impl Machine for Authenticatee {
    type Event = AuthEvent;

    fn handle_input(&mut self, now: Instant, input: &[u8]) {
        Authenticatee::handle_input(self, now, input);
    }

    fn handle_timeout(&mut self, now: Instant) {
        Authenticatee::handle_timeout(self, now);
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        Authenticatee::poll_transmit(self)
    }

    fn poll_event(&mut self) -> Option<AuthEvent> {
        Authenticatee::poll_event(self)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Authenticatee::poll_timeout(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticator_response_forms() {
        let expected: [u8; 20] =
            crate::crypto::tests::arr("407A5589115FD0D6209F510FE9C04566932CDA56");
        for ok in [
            &b"S=407A5589115FD0D6209F510FE9C04566932CDA56"[..],
            b"S=407A5589115FD0D6209F510FE9C04566932CDA56 M=Access granted",
            b"S=407a5589115fd0d6209f510fe9c04566932cda56M=x",
        ] {
            assert!(authenticator_response_matches(ok, &expected));
        }
        for bad in [
            &b""[..],
            b"S=407A",
            b"S=507A5589115FD0D6209F510FE9C04566932CDA56",
            b"S=407A5589115FD0D6209F510FE9C04566932CDA56xyz",
            b"M=Access granted",
        ] {
            assert!(!authenticator_response_matches(bad, &expected));
        }
    }
}
