//! Secrets never reach the logs, while the pppd-style packet summaries do.
//!
//! A test binary of its own: `tracing` caches per call site whether anyone listens, and tests on
//! other threads without a subscriber would race that cache.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ppp_auth::{
    AuthEvent, AuthProtocol, Authenticatee, AuthenticateeConfig, Authenticator,
    AuthenticatorConfig, Credentials, Random, SecretsTable,
};

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One exchange between an authenticator and a peer, packets shuttled by hand.
fn exchange(method: AuthProtocol, password: &str, secrets: &SecretsTable) {
    let now = Instant::now();
    let mut server = Authenticator::new(
        method,
        AuthenticatorConfig::new("server"),
        Random::seeded(1),
    );
    let mut client = Authenticatee::new(
        method,
        Credentials::new("alice", password),
        AuthenticateeConfig::default(),
        Random::seeded(2),
    );
    server.open(now);
    client.open(now);
    for step in 0..20u64 {
        let t = now + Duration::from_millis(step);
        while let Some(packet) = server.poll_transmit() {
            client.handle_input(t, &packet);
        }
        while let Some(packet) = client.poll_transmit() {
            server.handle_input(t, &packet);
        }
        while let Some(event) = server.poll_event() {
            if let AuthEvent::SecretNeeded(request) = event {
                let entry = secrets.lookup_now(&request.client, &request.server);
                server
                    .provide_secret(t, request.token, entry.map(|e| e.secret))
                    .expect("a lookup was outstanding");
            }
        }
        while client.poll_event().is_some() {}
    }
}

#[test]
fn logs_never_show_secrets() {
    let secrets = SecretsTable::parse_pppd("alice server \"correct horse\"\n").unwrap();
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        for method in [
            AuthProtocol::Pap,
            AuthProtocol::ChapMd5,
            AuthProtocol::MsChapV1,
            AuthProtocol::MsChapV2,
        ] {
            exchange(method, "correct horse", &secrets);
            exchange(method, "wrong pw", &secrets);
        }
    });
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    for expected in [
        "sent [PAP AuthReq id=",
        "user=\"alice\" password=<hidden>]",
        "rcvd [CHAP Challenge id=",
        "bytes>, name = \"server\"]",
        "S=<hidden> M=Access granted",
    ] {
        assert!(logs.contains(expected), "missing {expected:?} in:\n{logs}");
    }
    let mut forbidden = vec![
        "correct horse".to_owned(),
        "wrong pw".to_owned(),
        "Secret(".to_owned(),
    ];
    forbidden.extend("0123456789ABCDEF".chars().map(|c| format!("S={c}")));
    for secret in forbidden {
        assert!(!logs.contains(&secret), "{secret} in logs");
    }
}
