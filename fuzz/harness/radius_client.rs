//! The `radius_client` harness, shared by the fuzz target and the seed generator
//! (`tests/fuzz_seeds`).
//!
//! Input: `[selector, chunk, 0xA5, chunk, ...]`. A RADIUS client (one server, secret "fuzz")
//! sends an Access-Request of the method `selector % 4` (PAP, CHAP-MD5, MS-CHAPv1, MS-CHAPv2)
//! and an Accounting-Request. Chunks arrive 500 ms apart. Odd chunks of at least 20 bytes are
//! made authentic answers to request number `i % requests sent` (its identifier, the Length
//! field, then signed); other chunks arrive as they are from the authentication (`i % 3 == 0`)
//! or the accounting port. Every chunk also goes to a dynamic-authorization server, signed as a
//! request when selector bit 7 is set; what it asks is acknowledged.

// The seed generator uses parts the fuzz target does not.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ppp_auth::{AuthProtocol, Proof, SecretToken, VerifyRequest};
use ppp_radius::crypto::{sign_request, sign_response};
use ppp_radius::{
    AccessRequest, AccountingRecord, ClientConfig, ClientEvent, DaeClient, DaeConfig, DaeEvent,
    DaeServer, NasIdentity, RadiusClient, Secret, ServerConfig, SessionContext, Transmit,
};

/// The separator of chunks in the input.
pub const SEPARATOR: u8 = 0xA5;

/// The client, the DAE server and every request the client sent.
pub struct Radius {
    /// The client machine.
    pub client: RadiusClient,
    /// The dynamic-authorization server.
    pub dae: DaeServer,
    /// Every datagram the client sent, in order.
    pub sent: Vec<Transmit>,
    secret: Secret,
    selector: u8,
    t0: Instant,
    chunks: u64,
}

/// What one chunk caused.
pub struct Output {
    /// The client's events.
    pub client: Vec<ClientEvent>,
    /// The DAE server's events.
    pub dae: Vec<DaeEvent>,
}

impl Radius {
    /// The client with its two requests sent, and the DAE server, at `t0`.
    pub fn new(selector: u8, t0: Instant) -> Self {
        let server: SocketAddr = "127.0.0.1:1812".parse().unwrap();
        let acct: SocketAddr = "127.0.0.1:1813".parse().unwrap();
        let secret = Secret::from("fuzz");
        let mut config = ClientConfig::new(
            vec![ServerConfig::new(server, acct, secret.clone())],
            NasIdentity::named("fuzz"),
        );
        config.spool_capacity = 4;
        let mut client = RadiusClient::new(config, ppp_core::Random::seeded(1));
        let method = [
            AuthProtocol::Pap,
            AuthProtocol::ChapMd5,
            AuthProtocol::MsChapV1,
            AuthProtocol::MsChapV2,
        ][usize::from(selector % 4)];
        let proof = match method {
            AuthProtocol::Pap => Proof::Pap {
                password: Secret::from("pw"),
            },
            AuthProtocol::ChapMd5 => Proof::ChapMd5 {
                id: 1,
                challenge: vec![2; 16],
                response: [3; 16],
            },
            AuthProtocol::MsChapV1 => Proof::MsChapV1 {
                id: 1,
                challenge: [2; 8],
                lm_response: [0; 24],
                nt_response: [3; 24],
                flags: 1,
            },
            _ => Proof::MsChapV2 {
                id: 1,
                authenticator_challenge: [2; 16],
                peer_challenge: [4; 16],
                nt_response: [3; 24],
                flags: 0,
            },
        };
        let verify = VerifyRequest {
            token: SecretToken(1),
            peer_name: "alice".into(),
            server: "fuzz".into(),
            method,
            proof,
        };
        client.authenticate(t0, AccessRequest::new(&verify, &SessionContext::default()));
        client.account(t0, AccountingRecord::stop("S", "alice"));
        let sent = std::iter::from_fn(|| client.poll_transmit()).collect();
        let dae = DaeServer::new(DaeConfig::new(
            vec![DaeClient {
                address: "127.0.0.1".parse().unwrap(),
                secret: secret.clone(),
            }],
            NasIdentity::named("fuzz"),
        ));
        Radius {
            client,
            dae,
            sent,
            secret,
            selector,
            t0,
            chunks: 0,
        }
    }

    /// The request the next chunk answers if it is made authentic.
    pub fn next_answered(&self) -> Option<&Transmit> {
        let i = usize::try_from(self.chunks).ok()?;
        (i % 2 == 1 && !self.sent.is_empty()).then(|| &self.sent[i % self.sent.len()])
    }

    /// One chunk into the client and the DAE server.
    pub fn chunk(&mut self, chunk: &[u8]) -> Output {
        let i = self.chunks as usize;
        self.chunks += 1;
        let now = self.t0 + Duration::from_millis(i as u64 * 500);
        let server: SocketAddr = "127.0.0.1:1812".parse().unwrap();
        let acct: SocketAddr = "127.0.0.1:1813".parse().unwrap();
        let mut datagram = chunk.to_vec();
        // Odd chunks are made authentic: identifier and signature of a request in flight.
        if i % 2 == 1 && datagram.len() >= 20 && !self.sent.is_empty() {
            let t = &self.sent[i % self.sent.len()];
            datagram[1] = t.bytes[1];
            let len = u16::try_from(datagram.len().min(4096)).unwrap_or(20);
            datagram[2..4].copy_from_slice(&len.to_be_bytes());
            let mut request_authenticator = [0u8; 16];
            request_authenticator.copy_from_slice(&t.bytes[4..20]);
            sign_response(&mut datagram, &request_authenticator, &self.secret);
            self.client
                .handle_input(now, t.socket, t.destination, &datagram);
        } else {
            self.client.handle_input(
                now,
                0,
                if i.is_multiple_of(3) { server } else { acct },
                &datagram,
            );
        }
        let mut dae_request = chunk.to_vec();
        if self.selector & 0x80 != 0 && dae_request.len() >= 20 {
            sign_request(&mut dae_request, &self.secret);
        }
        let dae = &mut self.dae;
        dae.handle_input(
            now,
            1_700_000_000,
            "127.0.0.1:4000".parse().unwrap(),
            &dae_request,
        );
        let mut dae_events = Vec::new();
        while let Some(event) = dae.poll_event() {
            if let DaeEvent::Disconnect { token, .. } | DaeEvent::Change { token, .. } = &event {
                dae.respond(now, *token, ppp_radius::DaeOutcome::Ack);
            }
            dae_events.push(event);
        }
        while dae.poll_transmit().is_some() {}
        self.client.handle_timeout(now);
        self.sent
            .extend(std::iter::from_fn(|| self.client.poll_transmit()));
        Output {
            client: std::iter::from_fn(|| self.client.poll_event()).collect(),
            dae: dae_events,
        }
    }

    /// Everything ends: with time, no request stays in flight.
    pub fn finish(&mut self) {
        let client = &mut self.client;
        let mut now = self.t0 + Duration::from_secs(3600);
        for _ in 0..1000 {
            let Some(at) = client.poll_timeout() else {
                break;
            };
            now = now.max(at);
            client.handle_timeout(now);
            while client.poll_transmit().is_some() {}
            while client.poll_event().is_some() {}
            if client.in_flight() == 0 {
                break;
            }
        }
        assert_eq!(client.in_flight(), 0);
    }
}

/// The whole target. Returns the client's and the DAE server's events.
pub fn run(data: &[u8]) -> Option<(Vec<ClientEvent>, Vec<DaeEvent>)> {
    let (&selector, rest) = data.split_first()?;
    let mut radius = Radius::new(selector, Instant::now());
    let (mut client, mut dae) = (Vec::new(), Vec::new());
    for chunk in rest.split(|b| *b == SEPARATOR) {
        let output = radius.chunk(chunk);
        client.extend(output.client);
        dae.extend(output.dae);
    }
    radius.finish();
    Some((client, dae))
}
