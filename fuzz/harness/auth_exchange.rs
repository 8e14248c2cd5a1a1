//! The `auth_packets` exchange harness, shared by the fuzz target and the seed generator
//! (`tests/fuzz_seeds`).
//!
//! Input: `[selector, packet, 0xA5, packet, 0xA5, ...]`. `selector % 4` picks the method (PAP,
//! CHAP-MD5, MS-CHAPv1, MS-CHAPv2) of an authenticator ("server", no secrets) and an
//! authenticatee ("alice", "correct horse"). Each packet goes to both, 700 ms apart; with
//! selector bit 7 set, each packet is also offered to the authenticator as the secret of its
//! last secret request (so the packet after a response can be the password).

// The seed generator uses parts the fuzz target does not.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use ppp_auth::{
    AuthEvent, AuthProtocol, Authenticatee, AuthenticateeConfig, Authenticator,
    AuthenticatorConfig, Credentials, Random, Secret, SecretToken,
};

/// The separator of packets in the input.
pub const SEPARATOR: u8 = 0xA5;

/// The two machines and the last secret request's token.
pub struct AuthExchange {
    /// The authenticator.
    pub server: Authenticator,
    /// The authenticatee.
    pub client: Authenticatee,
    selector: u8,
    token: SecretToken,
    now: Instant,
    packets: u64,
}

/// What the machines sent and reported while one packet was handled.
#[derive(Default)]
pub struct Output {
    /// Packets the authenticator sent.
    pub server_sent: Vec<Vec<u8>>,
    /// Packets the authenticatee sent.
    pub client_sent: Vec<Vec<u8>>,
    /// Events of the authenticator.
    pub server_events: Vec<AuthEvent>,
    /// Events of the authenticatee.
    pub client_events: Vec<AuthEvent>,
}

impl AuthExchange {
    /// Both machines of the selector's method, opened at `now`.
    pub fn new(selector: u8, now: Instant) -> Self {
        let method = [
            AuthProtocol::Pap,
            AuthProtocol::ChapMd5,
            AuthProtocol::MsChapV1,
            AuthProtocol::MsChapV2,
        ][usize::from(selector % 4)];
        let mut server = Authenticator::new(
            method,
            AuthenticatorConfig::new("server"),
            Random::seeded(1),
        );
        let mut client = Authenticatee::new(
            method,
            Credentials::new("alice", "correct horse"),
            AuthenticateeConfig::default(),
            Random::seeded(2),
        );
        server.open(now);
        client.open(now);
        AuthExchange {
            server,
            client,
            selector,
            token: SecretToken(0),
            now,
            packets: 0,
        }
    }

    /// What the machines sent when they opened (the target drops it with the first packet's
    /// output; the seed generator needs it to answer).
    pub fn opening(&mut self) -> Output {
        self.collect()
    }

    /// One packet into both machines.
    pub fn packet(&mut self, packet: &[u8]) -> Output {
        let t = self.now + Duration::from_millis(self.packets * 700);
        self.packets += 1;
        self.server.handle_input(t, packet);
        self.client.handle_input(t, packet);
        if self.selector & 0x80 != 0 {
            // The token of the request, or (after a stale one) a wrong one: both are handled.
            let _ = self
                .server
                .provide_secret(t, self.token, Some(Secret::new(packet.to_vec())));
        }
        self.server.handle_timeout(t);
        self.client.handle_timeout(t);
        self.collect()
    }

    fn collect(&mut self) -> Output {
        let mut output = Output {
            server_sent: std::iter::from_fn(|| self.server.poll_transmit()).collect(),
            ..Output::default()
        };
        while let Some(event) = self.server.poll_event() {
            if let AuthEvent::SecretNeeded(request) = &event {
                self.token = request.token;
            }
            output.server_events.push(event);
        }
        output.client_sent = std::iter::from_fn(|| self.client.poll_transmit()).collect();
        output.client_events = std::iter::from_fn(|| self.client.poll_event()).collect();
        output
    }
}

/// The exchange part of the target: every packet into both machines. Returns every event.
pub fn run(data: &[u8]) -> Option<(Vec<AuthEvent>, Vec<AuthEvent>)> {
    let (&selector, rest) = data.split_first()?;
    let mut exchange = AuthExchange::new(selector, Instant::now());
    let (mut server, mut client) = (Vec::new(), Vec::new());
    for packet in rest.split(|b| *b == SEPARATOR) {
        let output = exchange.packet(packet);
        server.extend(output.server_events);
        client.extend(output.client_events);
    }
    Some((server, client))
}
