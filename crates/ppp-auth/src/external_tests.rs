//! External verification: both roles in memory, a verifier in the test that decides as a RADIUS
//! server would (it knows the passwords; the authenticator never does).

use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

use crate::crypto::{
    chap_md5_response, generate_authenticator_response, generate_nt_response_v2,
    hash_nt_password_hash, nt_challenge_response_v1, nt_password_hash, strip_domain,
};
use crate::mppe_keys::{get_asymmetric_start_key, get_master_key};
use crate::*;

const ALL: [AuthProtocol; 4] = [
    AuthProtocol::Pap,
    AuthProtocol::ChapMd5,
    AuthProtocol::MsChapV1,
    AuthProtocol::MsChapV2,
];

/// How the test verifier answers.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// As a RADIUS server would: check the proof against the user's password.
    Check,
    /// Accept, but leave the MS-CHAP-V2 authenticator response out.
    AcceptWithoutResponse,
    /// Never answer.
    Silent,
    /// `VerifyRequest::verify_locally` with alice's password.
    Local,
}

/// The verifier: alice's password is "correct horse"; anyone else is unknown.
fn verify(request: &VerifyRequest) -> Verdict {
    let password: &[u8] = match request.peer_name.as_str() {
        "alice" | "CORP\\alice" => b"correct horse",
        _ => {
            return Verdict::Reject(Rejection {
                message: Some(format!("Unknown user {}", request.peer_name)),
                error_code: Some(691),
            });
        }
    };
    let deny = || {
        Verdict::Reject(Rejection {
            message: Some("Wrong password, try again".into()),
            error_code: Some(691),
        })
    };
    let welcome = Some("Welcome to the test network".to_owned());
    match &request.proof {
        Proof::Pap { password: given } => {
            if !given.ct_eq(password) {
                return deny();
            }
            Verdict::Accept(Acceptance {
                message: welcome,
                ..Acceptance::default()
            })
        }
        Proof::ChapMd5 {
            id,
            challenge,
            response,
        } => {
            if !bool::from(chap_md5_response(*id, password, challenge).ct_eq(response)) {
                return deny();
            }
            Verdict::Accept(Acceptance {
                message: welcome,
                ..Acceptance::default()
            })
        }
        Proof::MsChapV1 {
            challenge,
            nt_response,
            ..
        } => {
            if !bool::from(nt_challenge_response_v1(challenge, password).ct_eq(nt_response)) {
                return deny();
            }
            // As FreeRADIUS: MS-CHAP-MPPE-Keys with the hash of the NT hash.
            Verdict::Accept(Acceptance {
                message: welcome,
                authenticator_response: None,
                keys: Some(ExternalKeys::MsChapMppeKeys {
                    lm_key: [0; 8],
                    nt_key: hash_nt_password_hash(&nt_password_hash(password)),
                }),
            })
        }
        Proof::MsChapV2 {
            authenticator_challenge,
            peer_challenge,
            nt_response,
            ..
        } => {
            let user = strip_domain(request.peer_name.as_bytes());
            let expected =
                generate_nt_response_v2(authenticator_challenge, peer_challenge, user, password);
            if !bool::from(expected.ct_eq(nt_response)) {
                return deny();
            }
            let response = generate_authenticator_response(
                password,
                nt_response,
                peer_challenge,
                authenticator_challenge,
                user,
            );
            // As FreeRADIUS: MS-MPPE-Send-Key/Recv-Key are the server's start keys.
            let master = get_master_key(
                &hash_nt_password_hash(&nt_password_hash(password)),
                nt_response,
            );
            Verdict::Accept(Acceptance {
                message: welcome,
                authenticator_response: Some(response),
                keys: Some(ExternalKeys::SendRecv {
                    send: get_asymmetric_start_key(&master, true, true),
                    recv: get_asymmetric_start_key(&master, false, true),
                }),
            })
        }
    }
}

struct Run {
    server: Authenticator,
    client: Authenticatee,
    server_events: Vec<AuthEvent>,
    client_events: Vec<AuthEvent>,
    requests: Vec<VerifyRequest>,
}

/// Shuttles packets (and verdicts, as `mode` says) until both sides are quiet.
fn run(method: AuthProtocol, name: &str, password: &str, mode: Mode, seed: u64) -> Run {
    let config = AuthenticatorConfig::new("nas").external();
    let mut r = Run {
        server: Authenticator::new(method, config, Random::seeded(seed)),
        client: Authenticatee::new(
            method,
            Credentials::new(name, password),
            AuthenticateeConfig::default(),
            Random::seeded(seed + 100),
        ),
        server_events: Vec::new(),
        client_events: Vec::new(),
        requests: Vec::new(),
    };
    let now = Instant::now();
    r.server.open(now);
    r.client.open(now);
    for _ in 0..8 {
        while let Some(p) = r.server.poll_transmit() {
            r.client.handle_input(now, &p);
        }
        while let Some(p) = r.client.poll_transmit() {
            r.server.handle_input(now, &p);
        }
        while let Some(event) = r.server.poll_event() {
            if let AuthEvent::VerifyNeeded(request) = &event {
                r.requests.push(request.clone());
                let verdict = match (mode, verify(request)) {
                    (Mode::Silent, _) => None,
                    (Mode::Local, _) => {
                        Some(request.verify_locally(&Secret::from("correct horse")))
                    }
                    (Mode::AcceptWithoutResponse, Verdict::Accept(mut a)) => {
                        a.authenticator_response = None;
                        Some(Verdict::Accept(a))
                    }
                    (_, v) => Some(v),
                };
                if let Some(v) = verdict {
                    r.server.provide_verdict(now, request.token, v).unwrap();
                }
            }
            r.server_events.push(event);
        }
        while let Some(event) = r.client.poll_event() {
            r.client_events.push(event);
        }
    }
    r
}

#[test]
fn every_method_accepted_with_the_verifier_message() {
    for method in ALL {
        let r = run(method, "alice", "correct horse", Mode::Check, 1);
        assert_eq!(r.server.status(), &AuthStatus::Succeeded, "{method:?}");
        assert_eq!(r.client.status(), &AuthStatus::Succeeded, "{method:?}");
        assert_eq!(r.server.peer_name(), Some("alice"));
        assert_eq!(r.requests.len(), 1);
        let request = &r.requests[0];
        assert_eq!(
            (request.method, request.proof.method()),
            (method, method),
            "{method:?}"
        );
        assert_eq!(
            (request.peer_name.as_str(), request.server.as_str()),
            ("alice", "nas")
        );
        // No secret was ever asked for.
        assert!(
            !r.server_events
                .iter()
                .any(|e| matches!(e, AuthEvent::SecretNeeded(_)))
        );
        assert_eq!(
            r.server_events.last(),
            Some(&AuthEvent::Succeeded {
                peer_name: Some("alice".into())
            })
        );
        match method {
            AuthProtocol::MsChapV1 | AuthProtocol::MsChapV2 => {
                // The keys from the verifier are the keys the client derives itself.
                let (c_send, c_recv) = r.client.key_material().unwrap().start_keys();
                let (s_send, s_recv) = r.server.key_material().unwrap().start_keys();
                assert_eq!((c_send, c_recv), (s_recv, s_send), "{method:?}");
                assert!(r.server.key_material().unwrap().is_server());
            }
            _ => assert!(r.server.key_material().is_none()),
        }
    }
}

/// A NAS that knows the secret verifies in place what it would have sent to RADIUS: every
/// method succeeds with a right password, with the same MPPE keys on both sides, and fails
/// with a wrong one.
#[test]
fn local_verification_of_external_requests() {
    for method in ALL {
        let r = run(method, "alice", "correct horse", Mode::Local, 5);
        assert_eq!(r.server.status(), &AuthStatus::Succeeded, "{method:?}");
        assert_eq!(r.client.status(), &AuthStatus::Succeeded, "{method:?}");
        if matches!(method, AuthProtocol::MsChapV1 | AuthProtocol::MsChapV2) {
            let (c_send, c_recv) = r.client.key_material().unwrap().start_keys();
            let (s_send, s_recv) = r.server.key_material().unwrap().start_keys();
            assert_eq!((c_send, c_recv), (s_recv, s_send), "{method:?}");
        }
        let r = run(method, "alice", "battery staple", Mode::Local, 6);
        assert!(
            matches!(r.server.status(), AuthStatus::Failed(_)),
            "{method:?}"
        );
        assert!(
            matches!(r.client.status(), AuthStatus::Failed(_)),
            "{method:?}"
        );
    }
}

#[test]
fn success_messages_carry_the_verifier_text() {
    // PAP: the Ack's message; CHAP: the Success message; MS-CHAP-V2: S=... M=<text>.
    for method in ALL {
        let config = AuthenticatorConfig::new("nas").external();
        let mut server = Authenticator::new(method, config, Random::seeded(9));
        let mut client = Authenticatee::new(
            method,
            Credentials::new("alice", "correct horse"),
            AuthenticateeConfig::default(),
            Random::seeded(10),
        );
        let now = Instant::now();
        server.open(now);
        client.open(now);
        let mut last_from_server = Vec::new();
        for _ in 0..4 {
            while let Some(p) = server.poll_transmit() {
                client.handle_input(now, &p);
                last_from_server = p;
            }
            while let Some(p) = client.poll_transmit() {
                server.handle_input(now, &p);
            }
            while let Some(event) = server.poll_event() {
                if let AuthEvent::VerifyNeeded(request) = event {
                    server
                        .provide_verdict(now, request.token, verify(&request))
                        .unwrap();
                }
            }
        }
        let text = String::from_utf8_lossy(&last_from_server).into_owned();
        assert!(
            text.contains("Welcome to the test network"),
            "{method:?}: {text:?}"
        );
        if method == AuthProtocol::MsChapV2 {
            assert!(text.contains("S="), "{text:?}");
            assert!(text.ends_with(" M=Welcome to the test network"), "{text:?}");
        }
    }
}

#[test]
fn every_method_rejected_with_the_verifier_message() {
    for method in ALL {
        let r = run(method, "alice", "wrong", Mode::Check, 2);
        assert_eq!(
            r.server.status(),
            &AuthStatus::Failed(FailureReason::Refused {
                name: "alice".into(),
                message: Some("Wrong password, try again".into()),
            }),
            "{method:?}"
        );
        let AuthStatus::Failed(FailureReason::Rejected {
            message,
            error_code,
        }) = r.client.status()
        else {
            panic!("{method:?}: {:?}", r.client.status());
        };
        // The peer sees the verifier's text (after M= for MS-CHAP).
        assert_eq!(message, "Wrong password, try again", "{method:?}");
        let ms = matches!(method, AuthProtocol::MsChapV1 | AuthProtocol::MsChapV2);
        assert_eq!(*error_code, ms.then_some(691), "{method:?}");
        assert!(r.server.key_material().is_none());
    }
    let r = run(AuthProtocol::ChapMd5, "mallory", "x", Mode::Check, 3);
    assert!(matches!(
        r.client.status(),
        AuthStatus::Failed(FailureReason::Rejected { message, .. }) if message == "Unknown user mallory"
    ));
}

#[test]
fn mschap_v2_acceptance_without_authenticator_response_fails() {
    let r = run(
        AuthProtocol::MsChapV2,
        "alice",
        "correct horse",
        Mode::AcceptWithoutResponse,
        4,
    );
    assert_eq!(
        r.server.status(),
        &AuthStatus::Failed(FailureReason::IncompleteVerdict {
            name: "alice".into()
        })
    );
    assert!(matches!(
        r.client.status(),
        AuthStatus::Failed(FailureReason::Rejected { .. })
    ));
}

#[test]
fn stale_and_unexpected_verdicts_are_refused() {
    let r = run(AuthProtocol::ChapMd5, "alice", "x", Mode::Silent, 5);
    let mut server = r.server;
    let request = r.requests[0].clone();
    let now = Instant::now();
    // A verdict for another token is refused and leaves the request outstanding.
    assert_eq!(
        server.provide_verdict(now, SecretToken(request.token.0 ^ 1), Verdict::accept()),
        Err(AuthError::StaleVerdict)
    );
    assert_eq!(server.verify_request(), Some(&request));
    // A secret is not what the machine waits for.
    assert_eq!(
        server.provide_secret(now, request.token, None),
        Err(AuthError::NoSecretRequest)
    );
    server
        .provide_verdict(now, request.token, Verdict::reject())
        .unwrap();
    // Once decided, the same token is refused.
    assert_eq!(
        server.provide_verdict(now, request.token, Verdict::accept()),
        Err(AuthError::NoVerifyRequest)
    );
    assert!(matches!(
        server.status(),
        AuthStatus::Failed(FailureReason::Refused { message: None, .. })
    ));
    // And a local-mode machine has no verification to answer.
    let mut local = Authenticator::new(
        AuthProtocol::Pap,
        AuthenticatorConfig::new("nas"),
        Random::seeded(1),
    );
    assert_eq!(
        local.provide_verdict(now, request.token, Verdict::accept()),
        Err(AuthError::NoVerifyRequest)
    );
}

#[test]
fn silent_verifier_times_out_and_late_verdict_is_refused() {
    for method in ALL {
        let r = run(method, "alice", "correct horse", Mode::Silent, 6);
        let mut server = r.server;
        let token = r.requests[0].token;
        let at = server.poll_timeout().unwrap();
        assert!(at >= Instant::now() + Duration::from_secs(29));
        server.handle_timeout(at);
        assert_eq!(
            server.status(),
            &AuthStatus::Failed(FailureReason::VerificationTimeout)
        );
        assert_eq!(
            server.provide_verdict(at, token, Verdict::accept()),
            Err(AuthError::NoVerifyRequest)
        );
    }
}

#[test]
fn malformed_responses_never_reach_the_verifier() {
    // A CHAP-MD5 response of the wrong length is refused here.
    let config = AuthenticatorConfig::new("nas").external();
    let mut server = Authenticator::new(AuthProtocol::ChapMd5, config, Random::seeded(7));
    let now = Instant::now();
    server.open(now);
    let challenge = server.poll_transmit().unwrap();
    let ChapPacket::Challenge { id, .. } = ChapPacket::parse(&challenge).unwrap() else {
        panic!()
    };
    let response = ChapPacket::Response {
        id,
        value: vec![0; 5],
        name: b"alice".to_vec(),
    };
    server.handle_input(now, &response.to_bytes().unwrap());
    assert_eq!(
        server.poll_event(),
        Some(AuthEvent::Failed(FailureReason::BadResponse {
            name: "alice".into()
        }))
    );
}

#[test]
fn proofs_hide_the_password() {
    let r = run(AuthProtocol::Pap, "alice", "correct horse", Mode::Silent, 8);
    let shown = format!("{:?}", r.requests[0]);
    assert!(!shown.contains("correct horse"), "{shown}");
    let keys = ExternalKeys::SendRecv {
        send: [0x42; 16],
        recv: [0x43; 16],
    };
    assert_eq!(format!("{keys:?}"), "SendRecv { .. }");
}
