//! A PPPoE client and access concentrator on virtual time over a simulated Ethernet segment:
//! discovery, LCP, authentication, IPCP, datagrams, and every way of ending a session. The
//! machines go into the harness as they are: no wrappers.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppp_auth::SecretsTable;
use ppp_ipcp::{AddressRange, Ipcp, IpcpConfig};
use ppp_link::auth::{AuthProtocol, AuthenticatorConfig, ClientCredentials, FailureReason};
use ppp_link::pppoe::{
    PppoeClient, PppoeClientEvent, PppoeClientState, PppoeDown, PppoeServer, PppoeServerEvent,
    SessionEnd, UnitId,
};
use ppp_link::{
    AuthFailure, AuthSide, CloseReason, Datagram, DownReason, LinkConfig, LinkEvent, Random,
};
use ppp_sim::{Impairments, Pair};
use pppoe_discovery::{AcConfig, AcEvent, AcSessionEnd, ClientConfig, ClientSessionEnd, MacAddr};

const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x10]);
const AC_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x20]);

/// An ICMP echo request from `src` to `dst` with a correct IPv4 header checksum (MPPE checks
/// that what it decrypted is a datagram).
fn ping(src: Ipv4Addr, dst: Ipv4Addr, seq: u8) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 28, 0, seq, 0, 0, 64, 1, 0, 0];
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let mut sum: u32 = p
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p.extend_from_slice(&[8, 0, 0, 0, 0, 1, 0, seq]);
    p
}

fn connected(pair: &Pair<PppoeClient, PppoeServer>) -> bool {
    pair.a.state() == &PppoeClientState::Connected
}

fn disconnected(client: &PppoeClient) -> bool {
    matches!(client.state(), PppoeClientState::Disconnected(_))
}

/// The address the client got.
fn address(events: &[PppoeClientEvent]) -> Option<Ipv4Addr> {
    events.iter().find_map(|e| match e {
        PppoeClientEvent::Link(LinkEvent::IpUp { local, .. }) => Some(*local),
        _ => None,
    })
}

/// The client and the AC, their links and discovery configured for `method`.
fn machines(method: AuthProtocol, password: &str, seed: u64) -> (PppoeClient, PppoeServer) {
    let mut client_link = LinkConfig::pppoe();
    client_link.lcp.allow = vec![method];
    client_link.auth.credentials = Some(ClientCredentials::password("alice", password));
    let mut server_link = LinkConfig::pppoe();
    server_link.lcp.allow.clear();
    server_link.lcp.require = vec![method];
    server_link.auth.authenticator = AuthenticatorConfig::new("ac");
    server_link.auth.secrets = Some(Arc::new(
        SecretsTable::parse_pppd("alice * \"correct horse\"\n").unwrap(),
    ));
    let client = PppoeClient::new(
        ClientConfig::default(),
        client_link,
        CLIENT_MAC,
        Random::seeded(seed),
    );
    let mut server = PppoeServer::new(
        AcConfig::default(),
        server_link,
        AC_MAC,
        Random::seeded(seed + 1),
    );
    let pool = AddressRange::new(Ipv4Addr::new(192, 0, 2, 100), Ipv4Addr::new(192, 0, 2, 199));
    server.set_ipcp_factory(Box::new(move |_| {
        Ipcp::with_address_pool(
            IpcpConfig::server(SERVER_ADDR, [Some(Ipv4Addr::new(198, 51, 100, 53)), None]),
            pool.clone(),
        )
    }));
    (client, server)
}

fn setup(
    method: AuthProtocol,
    password: &str,
    line: Impairments,
    seed: u64,
) -> Pair<PppoeClient, PppoeServer> {
    let start = Instant::now();
    let (mut client, server) = machines(method, password, seed);
    client.open(start);
    Pair::new_at(start, client, server, line.clone(), line, seed)
}

#[test]
fn a_session_comes_up_carries_datagrams_and_ends_with_a_padt() {
    for method in [
        AuthProtocol::ChapMd5,
        AuthProtocol::MsChapV2,
        AuthProtocol::Pap,
    ] {
        let mut pair = setup(
            method,
            "correct horse",
            Impairments::delay(Duration::from_micros(200)),
            1,
        );
        assert!(pair.run_until_pair(Duration::from_secs(5), connected));
        assert!(
            pair.elapsed() < Duration::from_millis(50),
            "{:?}",
            pair.elapsed()
        );
        let session = pair.a.session().unwrap().clone();
        assert_eq!(
            (session.ac_name.as_str(), session.mtu.ppp_mtu),
            ("pppoe-ac", 1492)
        );
        assert_eq!(session.service_name, "internet", "the service granted");
        let local = address(&pair.a_events).expect("an address from the pool");
        assert_eq!(local, Ipv4Addr::new(192, 0, 2, 100));
        let lcp = pair.a.link().unwrap().lcp_negotiated().unwrap().clone();
        assert_eq!(
            (lcp.our_mru, lcp.peer_mru, lcp.auth_peer_requires),
            (1492, 1492, Some(method))
        );

        let now = pair.now();
        let request = ping(local, SERVER_ADDR, 1);
        pair.a.send_ipv4(now, &request).unwrap();
        pair.run_for(pair.elapsed() + Duration::from_millis(10));
        let id = session.session_id;
        assert_eq!(
            pair.b.poll_datagram(),
            Some((UnitId::Link(id), Datagram::Ipv4(request.clone())))
        );
        let now = pair.now();
        let reply = ping(SERVER_ADDR, local, 2);
        pair.b.send_ipv4(now, UnitId::Link(id), &reply).unwrap();
        pair.run_for(pair.elapsed() + Duration::from_millis(10));
        assert_eq!(pair.a.poll_datagram(), Some(Datagram::Ipv4(reply)));
        assert_eq!(pair.b.session_count(), 1);

        let now = pair.now();
        pair.a.close(now, CloseReason::UserRequest);
        pair.run_for(pair.elapsed() + Duration::from_secs(5));
        assert_eq!(
            pair.a.state(),
            &PppoeClientState::Disconnected(PppoeDown::Link(DownReason::Closed(
                CloseReason::UserRequest
            )))
        );
        assert_eq!(pair.b.session_count(), 0, "the AC forgot the session");
        // The client's LCP Terminate-Request, or its PADT if that came first.
        assert!(
            pair.b_events.iter().any(|e| matches!(
                e,
                PppoeServerEvent::SessionDown {
                    reason: SessionEnd::Link(DownReason::PeerTerminated { .. })
                        | SessionEnd::Discovery(AcSessionEnd::PeerTerminated { .. }),
                    ..
                }
            )),
            "{:?}",
            pair.b_events
        );
    }
}

#[test]
fn the_server_ending_a_session_reaches_the_client() {
    let mut pair = setup(
        AuthProtocol::ChapMd5,
        "correct horse",
        Impairments::delay(Duration::from_micros(200)),
        2,
    );
    assert!(pair.run_until_pair(Duration::from_secs(5), connected));
    let id = pair.a.session().unwrap().session_id;
    let now = pair.now();
    pair.b.close_session(now, id, CloseReason::AdminReset);
    assert!(pair.run_until(Duration::from_secs(10), |c, _| disconnected(c)));
    assert_eq!(pair.b.session_count(), 0);
    // The AC's Terminate-Request, then (its link done) its PADT with the reason, which ends
    // the client's session before the client's LCP has waited out its Stopping state.
    assert_eq!(
        pair.a.state(),
        &PppoeClientState::Disconnected(PppoeDown::Session(ClientSessionEnd::PeerTerminated {
            message: Some("Administrative reset".into())
        }))
    );
}

#[test]
fn a_wrong_password_ends_the_session_and_frees_it() {
    let mut pair = setup(
        AuthProtocol::MsChapV2,
        "wrong",
        Impairments::delay(Duration::from_micros(200)),
        3,
    );
    assert!(pair.run_until(Duration::from_secs(30), |c, _| disconnected(c)));
    assert!(
        matches!(
            pair.a.state(),
            PppoeClientState::Disconnected(PppoeDown::Link(DownReason::AuthFailed(AuthFailure {
                side: AuthSide::Us,
                method: AuthProtocol::MsChapV2,
                reason: FailureReason::Rejected { .. },
            })))
        ),
        "{}",
        pair.a.state()
    );
    pair.run_for(pair.elapsed() + Duration::from_secs(5));
    assert_eq!(pair.b.session_count(), 0);
}

#[test]
fn a_padt_leaves_the_client_disconnected_with_a_dead_link() {
    let mut pair = setup(
        AuthProtocol::ChapMd5,
        "correct horse",
        Impairments::delay(Duration::from_micros(200)),
        4,
    );
    assert!(pair.run_until_pair(Duration::from_secs(5), connected));
    let session_id = pair.a.session().unwrap().session_id;
    // A bare PADT from the AC (RFC 2516 §5.5), as rp-pppoe sends when its pppd exits.
    let mut padt = Vec::new();
    padt.extend_from_slice(&CLIENT_MAC.0);
    padt.extend_from_slice(&AC_MAC.0);
    padt.extend_from_slice(&0x8863u16.to_be_bytes());
    padt.extend_from_slice(&[0x11, 0xA7]);
    padt.extend_from_slice(&session_id.to_be_bytes());
    padt.extend_from_slice(&[0, 0]);
    let now = pair.now();
    let events_before = pair.a_events.len();
    pair.a.handle_input(now, &padt);
    pair.flush();
    let downs = pair.a_events[events_before..]
        .iter()
        .filter(|e| matches!(e, PppoeClientEvent::Down { .. }))
        .count();
    assert_eq!(downs, 1, "{:?}", &pair.a_events[events_before..]);
    assert_eq!(
        pair.a.state(),
        &PppoeClientState::Disconnected(PppoeDown::Session(ClientSessionEnd::PeerTerminated {
            message: None
        }))
    );
    assert_eq!(
        pair.a.link().map(|l| l.phase()),
        Some(ppp_link::Phase::Dead)
    );
    assert_eq!(
        pair.a.poll_transmit(),
        None,
        "nothing goes to a dead session"
    );
    let later = now + Duration::from_secs(30);
    pair.a.handle_timeout(later);
    assert!(disconnected(&pair.a));
    assert_eq!(pair.a.poll_transmit(), None);
    assert_eq!(pair.a.poll_timeout(), None);
}

/// With `accept_manually` the owner decides: a refusal ends discovery with the message, an
/// acceptance starts PPP.
#[test]
fn the_owner_accepts_or_refuses_requested_sessions() {
    for accept in [false, true] {
        let start = Instant::now();
        let (mut client, _) = machines(AuthProtocol::ChapMd5, "correct horse", 5);
        let (_, template) = machines(AuthProtocol::ChapMd5, "correct horse", 6);
        drop(template);
        let mut server_link = LinkConfig::pppoe();
        server_link.lcp.allow.clear();
        server_link.lcp.require = vec![AuthProtocol::ChapMd5];
        server_link.auth.secrets = Some(Arc::new(
            SecretsTable::parse_pppd("alice * \"correct horse\"\n").unwrap(),
        ));
        server_link.ipcp = Some(IpcpConfig {
            remote_address: Some(Ipv4Addr::new(192, 0, 2, 50)),
            ..IpcpConfig::server(SERVER_ADDR, [None, None])
        });
        let server = PppoeServer::new(
            AcConfig {
                accept_manually: true,
                ..AcConfig::default()
            },
            server_link,
            AC_MAC,
            Random::seeded(7),
        );
        client.open(start);
        let line = Impairments::delay(Duration::from_micros(200));
        let mut pair = Pair::new_at(start, client, server, line.clone(), line, 8);
        pair.on_b_event(move |server, now, event| {
            if let PppoeServerEvent::Discovery(AcEvent::SessionRequested {
                session_id,
                client_mac,
                ..
            }) = event
            {
                assert_eq!(*client_mac, CLIENT_MAC);
                if accept {
                    assert!(server.accept_session(now, *session_id));
                } else {
                    assert!(server.reject_session(now, *session_id, "not today"));
                }
            }
        });
        if accept {
            assert!(pair.run_until_pair(Duration::from_secs(5), connected));
        } else {
            assert!(pair.run_until(Duration::from_secs(60), |c, _| disconnected(c)));
            assert!(
                matches!(
                    pair.a.state(),
                    PppoeClientState::Disconnected(PppoeDown::Discovery(_))
                ),
                "{}",
                pair.a.state()
            );
            assert_eq!(pair.b.session_count(), 0);
        }
    }
}

/// A late answer to an earlier request never lands on the session that reused the id.
#[test]
fn secret_answers_carry_a_token() {
    let start = Instant::now();
    let (mut client, _) = machines(AuthProtocol::ChapMd5, "correct horse", 9);
    let mut server_link = LinkConfig::pppoe();
    server_link.lcp.allow.clear();
    server_link.lcp.require = vec![AuthProtocol::ChapMd5];
    server_link.ipcp = Some(IpcpConfig {
        remote_address: Some(Ipv4Addr::new(192, 0, 2, 51)),
        ..IpcpConfig::server(SERVER_ADDR, [None, None])
    });
    let server = PppoeServer::new(AcConfig::default(), server_link, AC_MAC, Random::seeded(10));
    client.open(start);
    let line = Impairments::delay(Duration::from_micros(200));
    let mut pair = Pair::new_at(start, client, server, line.clone(), line, 11);
    let found = pair.run_until_pair(Duration::from_secs(5), |p| {
        p.b_events.iter().any(|e| {
            matches!(
                e,
                PppoeServerEvent::Link {
                    event: LinkEvent::SecretNeeded(_),
                    ..
                }
            )
        })
    });
    assert!(found);
    let (session_id, request) = pair
        .b_events
        .iter()
        .find_map(|e| match e {
            PppoeServerEvent::Link {
                session_id,
                event: LinkEvent::SecretNeeded(request),
            } => Some((*session_id, request.clone())),
            _ => None,
        })
        .unwrap();
    let entry = Some(ppp_auth::SecretEntry::new("correct horse"));
    let now = pair.now();
    let stale = ppp_auth::SecretToken(request.token.0.wrapping_add(1));
    assert_eq!(
        pair.b.provide_secret(now, session_id, stale, entry.clone()),
        Err(ppp_link::AuthError::StaleSecretAnswer)
    );
    assert_eq!(
        pair.b.provide_secret(now, session_id, request.token, entry),
        Ok(())
    );
    assert!(pair.run_until_pair(Duration::from_secs(5), connected));
}

#[test]
fn sessions_come_up_over_a_lossy_segment() {
    for seed in 0..40 {
        let mut pair = setup(
            AuthProtocol::MsChapV2,
            "correct horse",
            Impairments::lossy(0.2, Duration::from_millis(1)),
            100 + seed,
        );
        assert!(
            pair.run_until_pair(Duration::from_secs(120), connected),
            "seed {seed}: {:?}",
            pair.a
        );
    }
}

/// An AC that lost its sessions (a restart) answers their frames with a PADT, so the client
/// notices at once instead of after its keepalive gives up.
#[test]
fn a_restarted_ac_sends_clients_away_at_once() {
    let mut pair = setup(
        AuthProtocol::ChapMd5,
        "correct horse",
        Impairments::delay(Duration::from_micros(200)),
        12,
    );
    assert!(pair.run_until_pair(Duration::from_secs(5), connected));
    let (_, fresh) = machines(AuthProtocol::ChapMd5, "correct horse", 13);
    pair.b = fresh;
    let now = pair.now();
    let local = address(&pair.a_events).unwrap();
    pair.a.send_ipv4(now, &ping(local, SERVER_ADDR, 3)).unwrap();
    let restart = pair.elapsed();
    assert!(pair.run_until(Duration::from_secs(10), |c, _| disconnected(c)));
    assert!(
        pair.elapsed() - restart < Duration::from_millis(10),
        "{:?}",
        pair.elapsed() - restart
    );
    assert!(matches!(
        pair.a.state(),
        PppoeClientState::Disconnected(PppoeDown::Session(ClientSessionEnd::PeerTerminated { .. }))
    ));
    assert_eq!(pair.b.stats().unknown_session_frames, 1);
}

/// Every frame of a whole session (discovery, LCP, CHAP, IPCP, a ping, the hang-up).
fn session_frames(client_random: Random, server_random: Random) -> Vec<Vec<u8>> {
    let start = Instant::now();
    let (_, template) = machines(AuthProtocol::ChapMd5, "correct horse", 0);
    drop(template);
    let mut client_link = LinkConfig::pppoe();
    client_link.lcp.allow = vec![AuthProtocol::ChapMd5];
    client_link.auth.credentials = Some(ClientCredentials::password("alice", "correct horse"));
    let mut server_link = LinkConfig::pppoe();
    server_link.lcp.allow.clear();
    server_link.lcp.require = vec![AuthProtocol::ChapMd5];
    server_link.auth.secrets = Some(Arc::new(
        SecretsTable::parse_pppd("alice * \"correct horse\"\n").unwrap(),
    ));
    server_link.ipcp = Some(IpcpConfig {
        remote_address: Some(Ipv4Addr::new(192, 0, 2, 60)),
        ..IpcpConfig::server(SERVER_ADDR, [None, None])
    });
    let mut client = PppoeClient::new(
        ClientConfig::default(),
        client_link,
        CLIENT_MAC,
        client_random,
    );
    let server = PppoeServer::new(AcConfig::default(), server_link, AC_MAC, server_random);
    client.open(start);
    let line = Impairments::delay(Duration::from_micros(200));
    let mut pair = Pair::new_at(start, client, server, line.clone(), line, 3);
    pair.enable_tap();
    assert!(pair.run_until_pair(Duration::from_secs(5), connected));
    let now = pair.now();
    let local = address(&pair.a_events).unwrap();
    pair.a.send_ipv4(now, &ping(local, SERVER_ADDR, 1)).unwrap();
    pair.run_for(pair.elapsed() + Duration::from_millis(10));
    let now = pair.now();
    pair.a.close(now, CloseReason::UserRequest);
    pair.run_for(pair.elapsed() + Duration::from_secs(5));
    pair.take_tap()
        .into_iter()
        .map(|frame| frame.bytes)
        .collect()
}

/// The CHAP Challenge the AC sent (its value), from a session's frames.
fn chap_challenge(frames: &[Vec<u8>]) -> Vec<u8> {
    frames
        .iter()
        .find_map(|frame| {
            let session = pppoe_discovery::decapsulate(frame).ok()?;
            (session.protocol == ppp_frame::Protocol::Chap && session.payload.first() == Some(&1))
                .then(|| session.payload[5..5 + usize::from(session.payload[4])].to_vec())
        })
        .expect("a CHAP Challenge")
}

/// A seeded pair replays byte for byte; two access concentrators with the same configuration and
/// their own entropy issue different challenges, cookies, session ids and magic numbers.
#[test]
fn randomness_decides_every_unpredictable_value() {
    let first = session_frames(Random::seeded(21), Random::seeded(22));
    let again = session_frames(Random::seeded(21), Random::seeded(22));
    assert_eq!(first, again, "the same seeds give the same frames");

    let one = session_frames(Random::seeded(21), Random::from_os().unwrap());
    let two = session_frames(Random::seeded(21), Random::from_os().unwrap());
    assert_ne!(chap_challenge(&one), chap_challenge(&two));
    // The PADO's AC-Cookie and the PADS's session id differ too.
    let discovery = |frames: &[Vec<u8>], code: u8| {
        frames
            .iter()
            .find(|f| f.get(12..16) == Some(&[0x88, 0x63, 0x11, code][..]))
            .cloned()
            .expect("a discovery frame")
    };
    assert_ne!(discovery(&one, 0x07), discovery(&two, 0x07), "PADO cookies");
    assert_ne!(
        discovery(&one, 0x65)[16..18],
        discovery(&two, 0x65)[16..18],
        "session ids"
    );
}
