//! The client against servers in the test: answers signed as a RADIUS server signs them,
//! forged ones, silence, failover, the spool, identifier exhaustion.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ppp_auth::{AuthProtocol, Proof, SecretToken, Verdict, VerifyRequest};

use super::*;
use crate::access::SessionContext;
use crate::accounting::Counters;
use crate::attribute::{Attribute, AttributeType, VENDOR_MIKROTIK, mikrotik};
use crate::crypto::{sign_response, unhide_password, verify_request};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn config(servers: usize) -> ClientConfig {
    let servers = (0..servers)
        .map(|i| {
            ServerConfig::new(
                addr(1812 + 10 * i as u16),
                addr(1813 + 10 * i as u16),
                format!("secret{i}").as_str(),
            )
        })
        .collect();
    ClientConfig::new(servers, NasIdentity::named("ac1"))
}

fn pap(name: &str, password: &str) -> AccessRequest {
    let request = VerifyRequest {
        token: SecretToken(1),
        peer_name: name.into(),
        server: "ac1".into(),
        method: AuthProtocol::Pap,
        proof: Proof::Pap {
            password: Secret::from(password),
        },
    };
    AccessRequest::new(&request, &SessionContext::default())
}

/// What a RADIUS server with `secret` answers to `request`: Accept for alice's password,
/// Reject otherwise (accounting: a response). With a Message-Authenticator unless `plain`.
fn serve(request: &[u8], secret: &Secret, plain: bool) -> Vec<u8> {
    let p = Packet::parse(request).unwrap();
    let code = if p.code == Code::ACCOUNTING_REQUEST {
        assert_eq!(verify_request(request, secret, true), Ok(()));
        Code::ACCOUNTING_RESPONSE
    } else {
        let hidden = &p.get(AttributeType::USER_PASSWORD).unwrap().value;
        let password = unhide_password(hidden, secret, &p.authenticator).unwrap();
        if password.expose() == b"correct horse" {
            Code::ACCESS_ACCEPT
        } else {
            Code::ACCESS_REJECT
        }
    };
    let mut answer = Packet::new(code, p.identifier);
    if !plain {
        answer.push(Attribute::new(
            AttributeType::MESSAGE_AUTHENTICATOR,
            [0; 16],
        ));
    }
    if code == Code::ACCESS_ACCEPT {
        answer.push(Attribute::text(AttributeType::REPLY_MESSAGE, "Welcome"));
        answer.push(Attribute::integer(AttributeType::SESSION_TIMEOUT, 600));
        answer.push(Attribute::vendor(
            VENDOR_MIKROTIK,
            mikrotik::RATE_LIMIT,
            b"2M/1M",
        ));
    } else if code == Code::ACCESS_REJECT {
        answer.push(Attribute::text(AttributeType::REPLY_MESSAGE, "Go away"));
    }
    let mut bytes = answer.to_bytes().unwrap();
    sign_response(&mut bytes, &p.authenticator, secret);
    bytes
}

fn secret(i: usize) -> Secret {
    Secret::from(format!("secret{i}").as_str())
}

fn drain(client: &mut RadiusClient) -> Vec<Transmit> {
    std::iter::from_fn(|| client.poll_transmit()).collect()
}

fn events(client: &mut RadiusClient) -> Vec<ClientEvent> {
    std::iter::from_fn(|| client.poll_event()).collect()
}

#[test]
fn accept_and_reject_with_authorization() {
    let mut c = RadiusClient::new(config(1), Random::seeded(1));
    let now = Instant::now();
    let ok = c.authenticate(now, pap("alice", "correct horse"));
    let bad = c.authenticate(now, pap("alice", "wrong"));
    let sent = drain(&mut c);
    assert_eq!(sent.len(), 2);
    for t in &sent {
        c.handle_input(
            now,
            t.socket,
            t.destination,
            &serve(&t.bytes, &secret(0), false),
        );
    }
    let got = events(&mut c);
    let ClientEvent::Access { request, answer } = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(*request, ok);
    let Verdict::Accept(a) = &answer.verdict else {
        panic!()
    };
    assert_eq!(a.message.as_deref(), Some("Welcome"));
    assert_eq!(
        answer.authorization.session_timeout,
        Some(Duration::from_secs(600))
    );
    assert_eq!(
        answer.authorization.rate_limit.map(|r| r.rate.tx),
        Some(1_000_000)
    );
    let ClientEvent::Access { request, answer } = &got[1] else {
        panic!()
    };
    assert_eq!(*request, bad);
    assert!(
        matches!(&answer.verdict, Verdict::Reject(r) if r.message.as_deref() == Some("Go away"))
    );
    assert_eq!((c.in_flight(), c.poll_timeout()), (0, None));
    assert_eq!(c.stats().answers, 2);
}

#[test]
fn forged_and_unsolicited_answers_are_dropped_and_counted() {
    let mut c = RadiusClient::new(config(1), Random::seeded(2));
    let now = Instant::now();
    let id = c.authenticate(now, pap("alice", "correct horse"));
    let t = drain(&mut c).remove(0);
    // Signed with another secret.
    c.handle_input(
        now,
        0,
        t.destination,
        &serve(&t.bytes, &Secret::from("guess"), false),
    );
    // Without Message-Authenticator (a Blast-RADIUS forgery has none that verifies).
    c.handle_input(now, 0, t.destination, &serve(&t.bytes, &secret(0), true));
    // From another address, on another socket, with another identifier.
    let good = serve(&t.bytes, &secret(0), false);
    c.handle_input(now, 0, addr(9999), &good);
    c.handle_input(now, 1, t.destination, &good);
    let mut other_id = good.clone();
    other_id[1] ^= 0xff;
    c.handle_input(now, 0, t.destination, &other_id);
    c.handle_input(now, 0, t.destination, &good[..10]);
    // An Accounting-Response to an Access-Request.
    let mut wrong_code = good.clone();
    wrong_code[0] = 5;
    c.handle_input(now, 0, t.destination, &wrong_code);
    assert_eq!(events(&mut c), []);
    let stats = c.stats();
    assert_eq!(
        (
            stats.forged,
            stats.unsolicited,
            stats.malformed,
            stats.unexpected_code
        ),
        (2, 3, 1, 1)
    );
    // The real answer still counts.
    c.handle_input(now, 0, t.destination, &good);
    assert!(matches!(&events(&mut c)[..], [ClientEvent::Access { request, .. }] if *request == id));
    // And a second copy of it is unsolicited now.
    c.handle_input(now, 0, t.destination, &good);
    assert_eq!(c.stats().unsolicited, 4);
}

#[test]
fn retransmission_then_failover_then_timeout() {
    let mut c = RadiusClient::new(config(2), Random::seeded(3));
    let t0 = Instant::now();
    let id = c.authenticate(t0, pap("alice", "correct horse"));
    let first = drain(&mut c);
    assert_eq!(first[0].destination, addr(1812));
    // Two retransmissions, identical, 3 s apart.
    for _ in 0..2 {
        let now = c.poll_timeout().unwrap();
        assert_eq!(
            now - t0,
            Duration::from_secs(3) * (c.stats().retransmissions as u32 + 1)
        );
        c.handle_timeout(now);
        let again = drain(&mut c);
        assert_eq!(again, first);
    }
    // Then the second server, with a new authenticator and its own secret.
    let now = c.poll_timeout().unwrap();
    c.handle_timeout(now);
    assert_eq!(events(&mut c), [ClientEvent::ServerDown { server: 0 }]);
    let second = drain(&mut c).remove(0);
    assert_eq!(second.destination, addr(1822));
    // It answers: accepted, verified with secret1.
    c.handle_input(
        now,
        0,
        second.destination,
        &serve(&second.bytes, &secret(1), false),
    );
    assert!(matches!(&events(&mut c)[..], [ClientEvent::Access { request, .. }] if *request == id));
    // A new request skips the dead server while its dead time runs.
    c.authenticate(now, pap("alice", "x"));
    assert_eq!(drain(&mut c)[0].destination, addr(1822));
    // Nobody answers: after 3 transmissions to each server, a timeout.
    let id = c.authenticate(now, pap("alice", "x"));
    let mut sent = 0;
    while let Some(at) = c.poll_timeout() {
        c.handle_timeout(at);
        sent += drain(&mut c).len();
    }
    assert!(sent >= 5, "{sent}");
    assert!(events(&mut c).contains(&ClientEvent::AccessTimeout { request: id }));
    assert_eq!(c.config().access_deadline(), Duration::from_secs(18));
}

#[test]
fn identifiers_run_out_and_requests_wait() {
    let mut cfg = config(1);
    cfg.sockets = 2;
    let mut c = RadiusClient::new(cfg, Random::seeded(4));
    let now = Instant::now();
    let ids: Vec<RequestId> = (0..600)
        .map(|_| c.authenticate(now, pap("alice", "correct horse")))
        .collect();
    let sent = drain(&mut c);
    assert_eq!(sent.len(), 512);
    assert_eq!(c.in_flight(), 600);
    let mut seen = std::collections::HashSet::new();
    for t in &sent {
        assert!(
            seen.insert((t.socket, t.bytes[1])),
            "identifier reused while in flight"
        );
    }
    // Answering frees identifiers for the waiting ones.
    let mut answered = 0;
    let mut queue: VecDeque<Transmit> = sent.into();
    while let Some(t) = queue.pop_front() {
        c.handle_input(
            now,
            t.socket,
            t.destination,
            &serve(&t.bytes, &secret(0), false),
        );
        queue.extend(drain(&mut c));
        answered += events(&mut c).len();
    }
    assert_eq!(answered, ids.len());
    assert_eq!(c.in_flight(), 0);
}

#[test]
fn accounting_is_spooled_and_delivered_later() {
    let mut c = RadiusClient::new(config(2), Random::seeded(5));
    let t0 = Instant::now();
    let mut stop = AccountingRecord::stop("S1", "alice");
    stop.counters = Some(Counters {
        input_octets: 1000,
        output_octets: 2000,
        ..Counters::default()
    });
    let record = c.account(t0, stop.clone());
    // Nobody answers: 3 transmissions to each of two servers, each with a new identifier
    // and a growing Acct-Delay-Time.
    let mut sent = drain(&mut c);
    let mut now = t0;
    while c.spooled() == 0 {
        now = c.poll_timeout().unwrap();
        c.handle_timeout(now);
        sent.extend(drain(&mut c));
    }
    assert_eq!(sent.len(), 6);
    let delays: Vec<u32> = sent
        .iter()
        .map(|t| {
            let p = Packet::parse(&t.bytes).unwrap();
            p.get(AttributeType::ACCT_DELAY_TIME)
                .unwrap()
                .as_u32()
                .unwrap()
        })
        .collect();
    assert_eq!(delays, [0, 3, 6, 9, 12, 15]);
    let got = events(&mut c);
    assert!(got.contains(&ClientEvent::Spooled { record }), "{got:?}");
    assert!(c.is_spooled(record));
    // A late answer to an earlier transmission is unsolicited now (the record is spooled).
    c.handle_input(
        now,
        sent[0].socket,
        sent[0].destination,
        &serve(&sent[0].bytes, &secret(0), false),
    );
    assert_eq!(c.stats().unsolicited, 1);
    // The spool is retried; this time server 0 answers.
    let retry_at = c.poll_timeout().unwrap();
    assert_eq!(retry_at - now, Duration::from_secs(30));
    c.handle_timeout(retry_at);
    let t = drain(&mut c).remove(0);
    let p = Packet::parse(&t.bytes).unwrap();
    assert!(
        p.get(AttributeType::ACCT_DELAY_TIME)
            .unwrap()
            .as_u32()
            .unwrap()
            >= 48
    );
    let sent_record = AccountingRecord::from_packet(&p).unwrap();
    assert_eq!(sent_record.counters, stop.counters);
    c.handle_input(
        retry_at,
        t.socket,
        t.destination,
        &serve(
            &t.bytes,
            &secret(t.destination.port() as usize / 10 - 181),
            false,
        ),
    );
    let got = events(&mut c);
    assert!(got.contains(&ClientEvent::Accounted { record }), "{got:?}");
    assert_eq!(c.spooled(), 0);
    assert!(!c.is_spooled(record));
}

#[test]
fn resubmitted_records_keep_their_id_and_delay() {
    let mut c = RadiusClient::new(config(1), Random::seeded(6));
    let now = Instant::now();
    let mut stop = AccountingRecord::stop("S2", "bob");
    stop.delay = Duration::from_secs(100);
    c.resubmit(now, RecordId(42), stop.clone());
    c.resubmit(now, RecordId(42), stop);
    let sent = drain(&mut c);
    assert_eq!(sent.len(), 1);
    let p = Packet::parse(&sent[0].bytes).unwrap();
    assert_eq!(
        p.get(AttributeType::ACCT_DELAY_TIME).unwrap().as_u32(),
        Ok(100)
    );
    c.handle_input(
        now,
        0,
        sent[0].destination,
        &serve(&sent[0].bytes, &secret(0), false),
    );
    assert_eq!(
        events(&mut c),
        [ClientEvent::Accounted {
            record: RecordId(42)
        }]
    );
}

#[test]
fn spurious_timeouts_do_nothing() {
    let mut c = RadiusClient::new(config(1), Random::seeded(7));
    let now = Instant::now();
    c.handle_timeout(now);
    c.authenticate(now, pap("a", "b"));
    let _ = drain(&mut c);
    c.handle_timeout(now + Duration::from_secs(1));
    assert_eq!((drain(&mut c), events(&mut c)), (vec![], vec![]));
}

#[test]
fn no_server_for_the_kind() {
    let mut cfg = config(1);
    cfg.servers[0].acct = None;
    let mut c = RadiusClient::new(cfg, Random::seeded(8));
    let id = c.account(Instant::now(), AccountingRecord::start("S", "u"));
    assert_eq!(events(&mut c), [ClientEvent::Spooled { record: id }]);
}
