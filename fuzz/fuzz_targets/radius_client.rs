//! Answers into the RADIUS client machine and requests into the dynamic-authorization server:
//! raw datagrams (which must all be dropped as forged or malformed), and datagrams the fuzzer
//! shapes but that are signed with the right secret, so it reaches the attribute readers. No
//! panic, no unbounded growth, every request ends.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use ppp_auth::{AuthProtocol, Proof, SecretToken, VerifyRequest};
use ppp_radius::crypto::{sign_request, sign_response};
use ppp_radius::{
    AccessRequest, AccountingRecord, ClientConfig, DaeClient, DaeConfig, DaeServer, NasIdentity,
    RadiusClient, Secret, ServerConfig, SessionContext,
};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let server: SocketAddr = "127.0.0.1:1812".parse().unwrap();
    let acct: SocketAddr = "127.0.0.1:1813".parse().unwrap();
    let secret = Secret::from("fuzz");
    let mut config = ClientConfig::new(
        vec![ServerConfig::new(server, acct, secret.clone())],
        NasIdentity::named("fuzz"),
    );
    config.spool_capacity = 4;
    let mut client = RadiusClient::new(config, ppp_core::Random::seeded(1));
    let method = [AuthProtocol::Pap, AuthProtocol::ChapMd5, AuthProtocol::MsChapV1, AuthProtocol::MsChapV2]
        [usize::from(selector % 4)];
    let proof = match method {
        AuthProtocol::Pap => Proof::Pap { password: Secret::from("pw") },
        AuthProtocol::ChapMd5 => Proof::ChapMd5 { id: 1, challenge: vec![2; 16], response: [3; 16] },
        AuthProtocol::MsChapV1 => Proof::MsChapV1 {
            id: 1, challenge: [2; 8], lm_response: [0; 24], nt_response: [3; 24], flags: 1,
        },
        _ => Proof::MsChapV2 {
            id: 1, authenticator_challenge: [2; 16], peer_challenge: [4; 16], nt_response: [3; 24], flags: 0,
        },
    };
    let verify = VerifyRequest { token: SecretToken(1), peer_name: "alice".into(), server: "fuzz".into(), method, proof };
    let t0 = Instant::now();
    client.authenticate(t0, AccessRequest::new(&verify, &SessionContext::default()));
    client.account(t0, AccountingRecord::stop("S", "alice"));
    let mut sent: Vec<ppp_radius::Transmit> = std::iter::from_fn(|| client.poll_transmit()).collect();
    let mut dae = DaeServer::new(DaeConfig::new(
        vec![DaeClient { address: "127.0.0.1".parse().unwrap(), secret: secret.clone() }],
        NasIdentity::named("fuzz"),
    ));
    for (i, chunk) in rest.split(|b| *b == 0xA5).enumerate() {
        let now = t0 + Duration::from_millis(i as u64 * 500);
        let mut datagram = chunk.to_vec();
        // Odd chunks are made authentic: identifier and signature of a request in flight.
        if i % 2 == 1 && datagram.len() >= 20 && !sent.is_empty() {
            let t = &sent[i % sent.len()];
            datagram[1] = t.bytes[1];
            let len = u16::try_from(datagram.len().min(4096)).unwrap_or(20);
            datagram[2..4].copy_from_slice(&len.to_be_bytes());
            let mut request_authenticator = [0u8; 16];
            request_authenticator.copy_from_slice(&t.bytes[4..20]);
            sign_response(&mut datagram, &request_authenticator, &secret);
            client.handle_input(now, t.socket, t.destination, &datagram);
        } else {
            client.handle_input(now, 0, if i % 3 == 0 { server } else { acct }, &datagram);
        }
        let mut dae_request = chunk.to_vec();
        if selector & 0x80 != 0 && dae_request.len() >= 20 {
            sign_request(&mut dae_request, &secret);
        }
        dae.handle_input(now, 1_700_000_000, "127.0.0.1:4000".parse().unwrap(), &dae_request);
        while let Some(event) = dae.poll_event() {
            let token = match event {
                ppp_radius::DaeEvent::Disconnect { token, .. } | ppp_radius::DaeEvent::Change { token, .. } => token,
                _ => continue,
            };
            dae.respond(now, token, ppp_radius::DaeOutcome::Ack);
        }
        while dae.poll_transmit().is_some() {}
        client.handle_timeout(now);
        sent.extend(std::iter::from_fn(|| client.poll_transmit()));
        while client.poll_event().is_some() {}
    }
    // Everything ends: with time, no request stays in flight.
    let mut now = t0 + Duration::from_secs(3600);
    for _ in 0..1000 {
        let Some(at) = client.poll_timeout() else { break };
        now = now.max(at);
        client.handle_timeout(now);
        while client.poll_transmit().is_some() {}
        while client.poll_event().is_some() {}
        if client.in_flight() == 0 {
            break;
        }
    }
    assert_eq!(client.in_flight(), 0);
});
