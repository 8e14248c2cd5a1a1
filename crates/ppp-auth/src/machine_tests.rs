//! Both machines against each other, on virtual time over the `ppp-sim` link.

use std::future::Future;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use ppp_sim::{Impairments, Machine, Pair};
use proptest::prelude::*;

use crate::*;

const ALL: [AuthProtocol; 4] = [
    AuthProtocol::Pap,
    AuthProtocol::ChapMd5,
    AuthProtocol::MsChapV1,
    AuthProtocol::MsChapV2,
];
const CHAP_METHODS: [AuthProtocol; 3] = [
    AuthProtocol::ChapMd5,
    AuthProtocol::MsChapV1,
    AuthProtocol::MsChapV2,
];

fn rng(seed: u64) -> Random {
    Random::seeded(seed)
}

fn table() -> SecretsTable {
    SecretsTable::parse_pppd(
        "# client server secret addresses\n\
         alice server \"correct horse\" 192.0.2.2\n\
         CORP\\\\bob * bobpass\n\
         carol * carolpass\n",
    )
    .unwrap()
}

/// The authenticator side: answers secret lookups from a table, synchronously.
struct Server {
    m: Authenticator,
    table: SecretsTable,
    answer: bool,
    events: Vec<AuthEvent>,
    lookups: usize,
}

impl Server {
    fn new(method: AuthProtocol, config: AuthenticatorConfig, seed: u64) -> Self {
        Server {
            m: Authenticator::new(method, config, rng(seed)),
            table: table(),
            answer: true,
            events: Vec::new(),
            lookups: 0,
        }
    }

    fn drain(&mut self, now: Instant) {
        while let Some(event) = self.m.poll_event() {
            if let AuthEvent::SecretNeeded(req) = &event {
                self.lookups += 1;
                if self.answer {
                    let entry = block_on(req.resolve(&self.table));
                    self.m
                        .provide_secret(now, req.token, entry.map(|e| e.secret.clone()))
                        .unwrap();
                }
            }
            self.events.push(event);
        }
    }
}

impl Machine for Server {
    type Event = ();

    fn poll_event(&mut self) -> Option<()> {
        None
    }
    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.m.handle_input(now, data);
        self.drain(now);
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.m.handle_timeout(now);
        self.drain(now);
    }
    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.m.poll_transmit()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.m.poll_timeout()
    }
}

/// The authenticatee side.
struct Client {
    m: Authenticatee,
    events: Vec<AuthEvent>,
}

impl Client {
    fn new(
        method: AuthProtocol,
        credentials: Credentials,
        config: AuthenticateeConfig,
        seed: u64,
    ) -> Self {
        Client {
            m: Authenticatee::new(method, credentials, config, rng(seed)),
            events: Vec::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(event) = self.m.poll_event() {
            self.events.push(event);
        }
    }
}

impl Machine for Client {
    type Event = ();

    fn poll_event(&mut self) -> Option<()> {
        None
    }
    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.m.handle_input(now, data);
        self.drain();
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.m.handle_timeout(now);
        self.drain();
    }
    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.m.poll_transmit()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.m.poll_timeout()
    }
}

/// Polls a future that is ready at once (the table backend never waits).
fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn pair(
    method: AuthProtocol,
    credentials: Credentials,
    server_config: AuthenticatorConfig,
    client_config: AuthenticateeConfig,
    link: Impairments,
    seed: u64,
) -> Pair<Client, Server> {
    let client = Client::new(method, credentials, client_config, seed.wrapping_mul(3));
    let server = Server::new(method, server_config, seed.wrapping_mul(7).wrapping_add(1));
    let mut pair = Pair::new(client, server, link.clone(), link, seed);
    let now = pair.start();
    pair.a.m.open(now);
    pair.b.m.open(now);
    pair.b.drain(now);
    pair
}

fn done(c: &Client, s: &Server) -> bool {
    c.m.status() != &AuthStatus::Pending && s.m.status() != &AuthStatus::Pending
}

fn run(
    method: AuthProtocol,
    credentials: Credentials,
    link: Impairments,
    seed: u64,
) -> Pair<Client, Server> {
    let mut p = pair(
        method,
        credentials,
        AuthenticatorConfig::new("server"),
        AuthenticateeConfig::default(),
        link,
        seed,
    );
    p.run_until(Duration::from_secs(120), done);
    p
}

fn alice() -> Credentials {
    Credentials::new("alice", "correct horse")
}

#[test]
fn every_method_succeeds() {
    for method in ALL {
        let p = run(
            method,
            alice(),
            Impairments::delay(Duration::from_millis(20)),
            1,
        );
        assert_eq!(p.a.m.status(), &AuthStatus::Succeeded, "{method:?}");
        assert_eq!(p.b.m.status(), &AuthStatus::Succeeded, "{method:?}");
        assert_eq!(p.b.m.peer_name(), Some("alice"));
        assert_eq!(p.a.events, [AuthEvent::Succeeded { peer_name: None }]);
        assert_eq!(
            p.b.events.last(),
            Some(&AuthEvent::Succeeded {
                peer_name: Some("alice".into())
            })
        );
        assert!(
            p.elapsed() < Duration::from_millis(100),
            "{method:?} took {:?}",
            p.elapsed()
        );
        match method {
            AuthProtocol::MsChapV1 | AuthProtocol::MsChapV2 => {
                let (c, s) = (p.a.m.key_material().unwrap(), p.b.m.key_material().unwrap());
                assert_eq!(c.nt_response(), s.nt_response());
                let (c_send, c_recv) = c.start_keys();
                let (s_send, s_recv) = s.start_keys();
                assert_eq!((c_send, c_recv), (s_recv, s_send));
            }
            _ => assert!(p.a.m.key_material().is_none() && p.b.m.key_material().is_none()),
        }
        // The table also knows the address to assign.
        let entry =
            p.b.table
                .lookup_now(p.b.m.peer_name().unwrap(), "server")
                .unwrap();
        assert_eq!(
            entry.assigned_address(),
            Some(std::net::Ipv4Addr::new(192, 0, 2, 2))
        );
    }
}

#[test]
fn mschap_v2_strips_the_domain_but_looks_up_the_full_name() {
    let p = run(
        AuthProtocol::MsChapV2,
        Credentials::new("CORP\\bob", "bobpass"),
        Impairments::default(),
        2,
    );
    assert_eq!(p.a.m.status(), &AuthStatus::Succeeded);
    assert_eq!(p.b.m.peer_name(), Some("CORP\\bob"));
}

#[test]
fn wrong_password_fails_both_sides() {
    for method in ALL {
        let p = run(
            method,
            Credentials::new("alice", "wrong"),
            Impairments::default(),
            3,
        );
        assert_eq!(
            p.b.m.status(),
            &AuthStatus::Failed(FailureReason::WrongSecret {
                name: "alice".into()
            }),
            "{method:?}"
        );
        let AuthStatus::Failed(FailureReason::Rejected {
            message,
            error_code,
        }) = p.a.m.status()
        else {
            panic!("{method:?}: {:?}", p.a.m.status());
        };
        let expected = match method {
            AuthProtocol::Pap => ("Login incorrect", None),
            AuthProtocol::ChapMd5 => ("Access denied", None),
            AuthProtocol::MsChapV1 => ("E=691 R=0 C=", Some(691)),
            _ => ("Access denied", Some(691)),
        };
        assert!(message.starts_with(expected.0), "{method:?}: {message}");
        assert_eq!(*error_code, expected.1);
        assert!(p.b.m.key_material().is_none() && p.a.m.key_material().is_none());
    }
}

#[test]
fn unknown_user_fails() {
    for method in ALL {
        let p = run(
            method,
            Credentials::new("mallory", "correct horse"),
            Impairments::default(),
            4,
        );
        assert_eq!(
            p.b.m.status(),
            &AuthStatus::Failed(FailureReason::UnknownUser {
                name: "mallory".into()
            }),
            "{method:?}"
        );
        assert!(matches!(
            p.a.m.status(),
            AuthStatus::Failed(FailureReason::Rejected { .. })
        ));
    }
}

#[test]
fn silent_peer_times_out() {
    // Our authenticator alone: CHAP sends 10 challenges 3 s apart, PAP waits 30 s.
    for method in ALL {
        let mut s = Server::new(method, AuthenticatorConfig::new("server"), 5);
        let t0 = Instant::now();
        s.m.open(t0);
        let mut sent = 0;
        let mut now = t0;
        while let Some(at) = s.m.poll_timeout() {
            while s.m.poll_transmit().is_some() {
                sent += 1;
            }
            now = at;
            s.handle_timeout(now);
        }
        while s.m.poll_transmit().is_some() {
            sent += 1;
        }
        assert_eq!(
            s.m.status(),
            &AuthStatus::Failed(FailureReason::Timeout),
            "{method:?}"
        );
        let (expected_sent, expected_time) = if method == AuthProtocol::Pap {
            (0, 30)
        } else {
            (10, 30)
        };
        assert_eq!(sent, expected_sent, "{method:?}");
        assert_eq!(now - t0, Duration::from_secs(expected_time), "{method:?}");
    }
    // Our authenticatee alone: PAP sends 10 requests then fails at 30 s; CHAP waits 30 s.
    for method in ALL {
        let mut c = Client::new(method, alice(), AuthenticateeConfig::default(), 6);
        let t0 = Instant::now();
        c.m.open(t0);
        let mut sent = 0;
        let mut now = t0;
        while let Some(at) = c.m.poll_timeout() {
            while c.m.poll_transmit().is_some() {
                sent += 1;
            }
            now = at;
            c.handle_timeout(now);
        }
        assert_eq!(
            c.m.status(),
            &AuthStatus::Failed(FailureReason::Timeout),
            "{method:?}"
        );
        assert_eq!(
            sent,
            if method == AuthProtocol::Pap { 10 } else { 0 },
            "{method:?}"
        );
        assert_eq!(now - t0, Duration::from_secs(30), "{method:?}");
        assert_eq!(c.events, [AuthEvent::Failed(FailureReason::Timeout)]);
    }
}

#[test]
fn lossy_link_recovers() {
    for method in ALL {
        for seed in 0..20 {
            let p = run(
                method,
                alice(),
                Impairments::lossy(0.3, Duration::from_millis(30)),
                seed,
            );
            assert_eq!(
                p.a.m.status(),
                &AuthStatus::Succeeded,
                "{method:?} seed {seed}"
            );
            assert_eq!(
                p.b.m.status(),
                &AuthStatus::Succeeded,
                "{method:?} seed {seed}"
            );
            assert_eq!(p.b.lookups, 1, "{method:?} seed {seed}: one lookup only");
        }
    }
}

#[test]
fn chaotic_link_never_authenticates_a_wrong_password() {
    for method in ALL {
        for seed in 0..20 {
            let link = Impairments::chaos(0.2, Duration::from_millis(30));
            let good = run(method, alice(), link.clone(), seed);
            assert_ne!(
                good.b.m.status(),
                &AuthStatus::Pending,
                "{method:?} seed {seed}"
            );
            let bad = run(method, Credentials::new("alice", "nope"), link, seed);
            assert_ne!(
                bad.b.m.status(),
                &AuthStatus::Succeeded,
                "{method:?} seed {seed}"
            );
            assert_ne!(
                bad.a.m.status(),
                &AuthStatus::Succeeded,
                "{method:?} seed {seed}"
            );
        }
    }
}

/// Runs one scripted CHAP exchange by hand and returns the response bytes.
fn exchange(s: &mut Server, c: &mut Client, now: Instant) -> Vec<u8> {
    let challenge = s.m.poll_transmit().expect("challenge");
    c.handle_input(now, &challenge);
    let response = c.m.poll_transmit().expect("response");
    s.handle_input(now, &response);
    let result = s.m.poll_transmit().expect("result");
    c.handle_input(now, &result);
    response
}

#[test]
fn replayed_response_does_not_authenticate() {
    for method in CHAP_METHODS {
        let t0 = Instant::now();
        let mut config = AuthenticatorConfig::new("server");
        config.rechallenge_interval = Some(Duration::from_secs(60));
        let mut s = Server::new(method, config, 10);
        let mut c = Client::new(method, alice(), AuthenticateeConfig::default(), 11);
        s.m.open(t0);
        c.m.open(t0);
        let old = exchange(&mut s, &mut c, t0);
        assert_eq!(s.m.status(), &AuthStatus::Succeeded);
        // A repeat of the same response only repeats the decision: no new lookup.
        s.handle_input(t0, &old);
        assert!(matches!(
            ChapPacket::parse(&s.m.poll_transmit().unwrap()).unwrap(),
            ChapPacket::Success { .. }
        ));
        assert_eq!(s.lookups, 1);
        // Re-challenge: the old response (old id) is ignored...
        let t1 = t0 + Duration::from_secs(60);
        s.handle_timeout(t1);
        let challenge = s.m.poll_transmit().expect("re-challenge");
        s.handle_input(t1, &old);
        assert_eq!(s.m.poll_transmit(), None);
        assert_eq!(s.lookups, 1);
        // ...and the old response with the new id fails against the new challenge.
        let mut forged = old.clone();
        forged[1] = challenge[1];
        s.handle_input(t1, &forged);
        assert_eq!(s.lookups, 2);
        assert!(
            matches!(
                s.m.status(),
                AuthStatus::Failed(FailureReason::WrongSecret { .. })
            ),
            "{method:?}: {:?}",
            s.m.status()
        );
        // A different authenticator (another challenge) does not accept it either.
        let mut other = Server::new(method, AuthenticatorConfig::new("server"), 12);
        other.m.open(t0);
        let challenge = other.m.poll_transmit().unwrap();
        let mut forged = old.clone();
        forged[1] = challenge[1];
        other.handle_input(t0, &forged);
        assert!(
            matches!(
                other.m.status(),
                AuthStatus::Failed(FailureReason::WrongSecret { .. })
            ),
            "{method:?}"
        );
    }
}

#[test]
fn rechallenges_keep_the_link_up_and_catch_a_name_change() {
    for method in CHAP_METHODS {
        let mut config = AuthenticatorConfig::new("server");
        config.rechallenge_interval = Some(Duration::from_secs(10));
        let mut p = pair(
            method,
            alice(),
            config,
            AuthenticateeConfig::default(),
            Impairments::delay(Duration::from_millis(5)),
            13,
        );
        p.run_for(Duration::from_secs(35));
        assert_eq!(p.b.m.status(), &AuthStatus::Succeeded);
        assert_eq!(p.a.m.status(), &AuthStatus::Succeeded);
        assert_eq!(
            p.b.lookups, 4,
            "{method:?}: first challenge and three re-challenges"
        );
        assert_eq!(
            p.b.events
                .iter()
                .filter(|e| matches!(e, AuthEvent::Succeeded { .. }))
                .count(),
            1
        );

        // A peer that answers a re-challenge with another name is failed.
        let t0 = Instant::now();
        let mut config = AuthenticatorConfig::new("server");
        config.rechallenge_interval = Some(Duration::from_secs(10));
        let mut s = Server::new(method, config, 14);
        let mut c = Client::new(method, alice(), AuthenticateeConfig::default(), 15);
        s.m.open(t0);
        c.m.open(t0);
        exchange(&mut s, &mut c, t0);
        let t1 = t0 + Duration::from_secs(10);
        s.handle_timeout(t1);
        let mut carol = Client::new(
            method,
            Credentials::new("carol", "carolpass"),
            AuthenticateeConfig::default(),
            16,
        );
        carol.m.open(t1);
        let challenge = s.m.poll_transmit().unwrap();
        carol.handle_input(t1, &challenge);
        s.handle_input(t1, &carol.m.poll_transmit().unwrap());
        assert_eq!(
            s.m.status(),
            &AuthStatus::Failed(FailureReason::NameChanged {
                was: "alice".into(),
                now: "carol".into()
            })
        );
    }
}

#[test]
fn mschap_retry_with_new_challenge() {
    for method in [AuthProtocol::MsChapV1, AuthProtocol::MsChapV2] {
        let mut attempts = 0;
        let creds = Credentials::with_lookup("alice", move |server| {
            assert_eq!(server, "server");
            attempts += 1;
            Some(Secret::new(if attempts == 1 {
                "typo"
            } else {
                "correct horse"
            }))
        });
        let mut sc = AuthenticatorConfig::new("server");
        sc.mschap_retries = 1;
        let cc = AuthenticateeConfig {
            mschap_retries: 1,
            ..AuthenticateeConfig::default()
        };
        let mut p = pair(
            method,
            creds,
            sc,
            cc,
            Impairments::delay(Duration::from_millis(10)),
            17,
        );
        p.run_until(Duration::from_secs(60), done);
        assert_eq!(p.b.m.status(), &AuthStatus::Succeeded, "{method:?}");
        assert_eq!(p.a.m.status(), &AuthStatus::Succeeded, "{method:?}");
        assert_eq!(p.b.lookups, 2);
    }
    // Without retries allowed on our side, R=1 from the authenticator ends in failure.
    let mut sc = AuthenticatorConfig::new("server");
    sc.mschap_retries = 1;
    let mut p = pair(
        AuthProtocol::MsChapV2,
        Credentials::new("alice", "typo"),
        sc,
        AuthenticateeConfig::default(),
        Impairments::default(),
        18,
    );
    p.run_until(Duration::from_secs(60), |c, _| {
        c.m.status() != &AuthStatus::Pending
    });
    assert_eq!(
        p.a.m.status(),
        &AuthStatus::Failed(FailureReason::Rejected {
            message: "Access denied".into(),
            error_code: Some(691)
        })
    );
}

#[test]
fn mschap_v2_wrong_authenticator_response_fails() {
    let t0 = Instant::now();
    let mut c = Client::new(
        AuthProtocol::MsChapV2,
        alice(),
        AuthenticateeConfig::default(),
        19,
    );
    c.m.open(t0);
    let challenge = ChapPacket::Challenge {
        id: 9,
        value: vec![7; 16],
        name: b"server".to_vec(),
    };
    c.handle_input(t0, &challenge.to_bytes().unwrap());
    assert!(c.m.poll_transmit().is_some());
    // Wrong id: ignored.
    let success = |id, m: &str| {
        ChapPacket::Success {
            id,
            message: m.as_bytes().to_vec(),
        }
        .to_bytes()
        .unwrap()
    };
    c.handle_input(
        t0,
        &success(8, "S=0000000000000000000000000000000000000000"),
    );
    assert_eq!(c.m.status(), &AuthStatus::Pending);
    c.handle_input(
        t0,
        &success(
            9,
            "S=0000000000000000000000000000000000000000 M=Access granted",
        ),
    );
    assert_eq!(
        c.m.status(),
        &AuthStatus::Failed(FailureReason::MutualAuthFailed)
    );
    // A Success without S= fails too.
    let mut c = Client::new(
        AuthProtocol::MsChapV2,
        alice(),
        AuthenticateeConfig::default(),
        19,
    );
    c.m.open(t0);
    c.handle_input(t0, &challenge.to_bytes().unwrap());
    c.handle_input(t0, &success(9, "Access granted"));
    assert_eq!(
        c.m.status(),
        &AuthStatus::Failed(FailureReason::MutualAuthFailed)
    );
}

#[test]
fn secret_lookup_timeout_and_late_answer() {
    let mut s = Server::new(
        AuthProtocol::ChapMd5,
        AuthenticatorConfig::new("server"),
        20,
    );
    s.answer = false;
    let mut c = Client::new(
        AuthProtocol::ChapMd5,
        alice(),
        AuthenticateeConfig::default(),
        21,
    );
    let t0 = Instant::now();
    s.m.open(t0);
    c.m.open(t0);
    c.handle_input(t0, &s.m.poll_transmit().unwrap());
    s.handle_input(t0, &c.m.poll_transmit().unwrap());
    let request = s.m.secret_request().cloned().unwrap();
    assert_eq!(
        request,
        SecretRequest {
            client: "alice".into(),
            server: "server".into(),
            method: AuthProtocol::ChapMd5,
            token: request.token,
        }
    );
    assert_eq!(s.events, [AuthEvent::SecretNeeded(request.clone())]);
    // Repeated responses while the lookup runs are ignored.
    s.handle_input(t0, &c.m.poll_transmit().unwrap_or_default());
    assert_eq!(s.lookups, 1);
    s.handle_timeout(s.m.poll_timeout().unwrap());
    assert_eq!(
        s.m.status(),
        &AuthStatus::Failed(FailureReason::SecretLookupTimeout)
    );
    assert_eq!(
        s.m.provide_secret(t0, request.token, None),
        Err(AuthError::NoSecretRequest)
    );
}

/// A late answer to an earlier lookup never settles the current one.
#[test]
fn stale_secret_answers_are_refused() {
    let mut s = Server::new(AuthProtocol::Pap, AuthenticatorConfig::new("server"), 30);
    s.answer = false;
    let mut c = Client::new(
        AuthProtocol::Pap,
        alice(),
        AuthenticateeConfig::default(),
        31,
    );
    let t0 = Instant::now();
    s.m.open(t0);
    c.m.open(t0);
    s.handle_input(t0, &c.m.poll_transmit().unwrap());
    let request = s.m.secret_request().cloned().unwrap();
    let stale = SecretToken(request.token.0 ^ 1);
    assert_eq!(
        s.m.provide_secret(t0, stale, Some(Secret::new("correct horse"))),
        Err(AuthError::StaleSecretAnswer)
    );
    assert_eq!(s.m.status(), &AuthStatus::Pending);
    assert_eq!(
        s.m.provide_secret(t0, request.token, Some(Secret::new("correct horse"))),
        Ok(())
    );
    assert_eq!(s.m.status(), &AuthStatus::Succeeded);
}

/// Two authenticators with the same configuration and independent generators issue different
/// challenges; the same seed reproduces the challenge byte for byte.
#[test]
fn challenges_come_from_the_generator() {
    let challenge = |random: Random| {
        let mut m = Authenticator::new(
            AuthProtocol::ChapMd5,
            AuthenticatorConfig::new("server"),
            random,
        );
        m.open(Instant::now());
        m.poll_transmit().unwrap()
    };
    assert_ne!(challenge(Random::seeded(1)), challenge(Random::seeded(2)));
    assert_eq!(challenge(Random::seeded(3)), challenge(Random::seeded(3)));
}

#[test]
fn spurious_timeouts_do_nothing() {
    for method in ALL {
        let mut p = pair(
            method,
            alice(),
            AuthenticatorConfig::new("server"),
            AuthenticateeConfig::default(),
            Impairments::default(),
            22,
        );
        let now = p.start();
        p.a.m.handle_timeout(now);
        p.b.m.handle_timeout(now);
        p.run_until(Duration::from_secs(10), done);
        assert_eq!(p.b.m.status(), &AuthStatus::Succeeded);
        let later = p.now() + Duration::from_secs(1000);
        p.a.m.handle_timeout(later);
        p.b.m.handle_timeout(later);
        assert_eq!(p.a.m.status(), &AuthStatus::Succeeded);
        assert_eq!(p.b.m.status(), &AuthStatus::Succeeded);
    }
}

fn packet_soup() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
    // (kind, bytes): kind 0..4 input a packet, 4 timeout, 5 provide a secret.
    let packet = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..80),
        (
            1u8..=4,
            any::<u8>(),
            proptest::collection::vec(any::<u8>(), 0..60)
        )
            .prop_map(|(code, id, body)| {
                let mut p = vec![code, id, 0, 0];
                p.extend(body);
                let len = p.len() as u16;
                p[2..4].copy_from_slice(&len.to_be_bytes());
                p
            }),
    ];
    proptest::collection::vec((0u8..6, packet), 0..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_packets_never_panic(method in 0usize..4, soup in packet_soup(), seed in any::<u64>()) {
        let method = ALL[method];
        let t0 = Instant::now();
        let mut config = AuthenticatorConfig::new("server");
        config.rechallenge_interval = Some(Duration::from_secs(5));
        config.mschap_retries = 2;
        let mut s = Authenticator::new(method, config, rng(seed));
        let cc = AuthenticateeConfig { mschap_retries: 2, ..AuthenticateeConfig::default() };
        let mut c = Authenticatee::new(method, alice(), cc, rng(seed ^ 1));
        s.open(t0);
        c.open(t0);
        let mut now = t0;
        for (kind, bytes) in soup {
            now += Duration::from_millis(700);
            match kind {
                0..=3 => {
                    s.handle_input(now, &bytes);
                    c.handle_input(now, &bytes);
                    // Let them also talk to each other a little.
                    if let Some(p) = c.poll_transmit() { s.handle_input(now, &p); }
                    if let Some(p) = s.poll_transmit() { c.handle_input(now, &p); }
                }
                4 => {
                    s.handle_timeout(now);
                    c.handle_timeout(now);
                }
                _ => {
                    let token = s.secret_request().map_or(SecretToken(0), |r| r.token);
                    let _ = s.provide_secret(now, token, Some(Secret::new(bytes)));
                }
            }
            while s.poll_transmit().is_some() {}
            while c.poll_transmit().is_some() {}
            while s.poll_event().is_some() {}
            while c.poll_event().is_some() {}
            if let Some(t) = s.poll_timeout() { prop_assert!(t >= t0); }
        }
    }
}

/// Throughput of whole exchanges (run with
/// `cargo test -p ppp-auth --release -- --ignored --nocapture exchange_rate`).
#[test]
#[ignore]
fn exchange_rate() {
    for method in ALL {
        let n = 2000u32;
        let start = Instant::now();
        for seed in 0..n {
            let p = run(method, alice(), Impairments::default(), u64::from(seed));
            assert_eq!(p.b.m.status(), &AuthStatus::Succeeded);
        }
        let per = start.elapsed() / n;
        println!("{method:?}: {per:?} per exchange (both roles, sim harness included)");
    }
}
