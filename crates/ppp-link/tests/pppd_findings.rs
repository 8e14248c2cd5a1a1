//! Behaviours found by the interop scenarios against real pppd (`interop/tests/auth_pppd.rs`):
//!
//! - several frames in one `handle_input` chunk, as a serial line delivers them: each frame's
//!   consequences must run before the next frame (pppd 2.4.9 sends its CHAP Failure and its LCP
//!   Terminate-Request back to back);
//! - with MPPE required, IPCP starts only once CCP is Opened, as pppd does (pppd keeps IPCP
//!   Closed until then and answers an early IPCP Configure-Request with a Terminate-Ack).

use std::time::{Duration, Instant};

use ppp_auth::SecretsTable;
use ppp_ccp::CcpConfig;
use ppp_frame::{AsyncDecoder, AsyncEncoder, DecoderConfig, EncoderConfig, Protocol};
use ppp_ipcp::IpcpConfig;
use ppp_lcp::fsm::State;
use ppp_link::auth::{AuthProtocol, AuthenticatorConfig, ClientCredentials, FailureReason};
use ppp_link::{AuthFailure, AuthSide, DownReason, Link, LinkConfig, LinkEvent, Phase, Random};

/// The frames the link wants to send, decoded.
fn sent_frames(link: &mut Link, decoder: &mut AsyncDecoder) -> Vec<(Protocol, Vec<u8>)> {
    let mut frames = Vec::new();
    while let Some(bytes) = link.poll_transmit() {
        let mut input = bytes.as_slice();
        while let Some(result) = decoder.decode(&mut input) {
            if let Ok(frame) = result {
                frames.push((frame.protocol, frame.payload.to_vec()));
            }
        }
    }
    frames
}

fn packet(code: u8, id: u8, data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(4 + data.len()).expect("short packet");
    let mut p = vec![code, id];
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(data);
    p
}

#[test]
fn an_auth_failure_and_terminate_request_in_one_chunk_keep_the_failure_reason() {
    let start = Instant::now();
    let mut config = LinkConfig::default();
    config.auth.credentials = Some(ClientCredentials::password("alice", "wrong"));
    let mut link = Link::new(config, Random::seeded(7));
    link.open(start);
    link.up(start);
    let mut decoder = AsyncDecoder::new(DecoderConfig::default());
    let mut encoder = AsyncEncoder::new(EncoderConfig::default());

    // Ack our Configure-Request and ask for CHAP-MD5 with a Magic-Number of our own.
    let ours = sent_frames(&mut link, &mut decoder);
    let (_, confreq) = ours
        .iter()
        .find(|(p, payload)| *p == Protocol::Lcp && payload.first() == Some(&1))
        .expect("our LCP Configure-Request");
    let mut ack = confreq.clone();
    ack[0] = 2;
    let peer_req = packet(
        1,
        1,
        &[3, 5, 0xc2, 0x23, 0x05, 5, 6, 0x11, 0x22, 0x33, 0x44],
    );
    let mut wire = Vec::new();
    encoder.encode(Protocol::Lcp, &ack, &mut wire);
    encoder.encode(Protocol::Lcp, &peer_req, &mut wire);
    link.handle_input(start, &wire);
    assert_eq!(link.phase(), Phase::Authenticate);
    let _ = sent_frames(&mut link, &mut decoder);

    // One chunk: CHAP Challenge, CHAP Failure for it, LCP Terminate-Request.
    let mut challenge = vec![16];
    challenge.extend_from_slice(&[0xab; 16]);
    challenge.extend_from_slice(b"pppdserver");
    let mut chunk = Vec::new();
    encoder.encode(Protocol::Chap, &packet(1, 0x45, &challenge), &mut chunk);
    encoder.encode(
        Protocol::Chap,
        &packet(4, 0x45, b"Access denied"),
        &mut chunk,
    );
    encoder.encode(
        Protocol::Lcp,
        &packet(5, 2, b"Authentication failed"),
        &mut chunk,
    );
    let now = start + Duration::from_millis(50);
    link.handle_input(now, &chunk);

    // The peer acks our Terminate-Request (or our restart timer runs out).
    let sent = sent_frames(&mut link, &mut decoder);
    if let Some((_, term_req)) = sent
        .iter()
        .find(|(p, payload)| *p == Protocol::Lcp && payload.first() == Some(&5))
    {
        let mut wire = Vec::new();
        encoder.encode(Protocol::Lcp, &packet(6, term_req[1], &[]), &mut wire);
        link.handle_input(now, &wire);
    }
    for second in 1..30 {
        link.handle_timeout(now + Duration::from_secs(second));
    }
    let mut reason = None;
    while let Some(event) = link.poll_event() {
        if let LinkEvent::LinkDown { reason: r } = event {
            reason = Some(r);
        }
    }
    let reason = reason.expect("LinkDown");
    assert!(
        matches!(
            &reason,
            DownReason::AuthFailed(AuthFailure {
                side: AuthSide::Us,
                reason: FailureReason::Rejected { message, .. },
                ..
            }) if message == "Access denied"
        ),
        "{reason}"
    );
}

/// Moves one side's output to the other; fails if `from` sends IPCP before its CCP is Opened.
/// Returns whether anything moved.
fn carry(
    now: Instant,
    from: &mut Link,
    decoder: &mut AsyncDecoder,
    to: &mut Link,
    secrets: &SecretsTable,
) -> bool {
    let frames = sent_frames_raw(from);
    for bytes in &frames {
        let mut input = bytes.as_slice();
        while let Some(result) = decoder.decode(&mut input) {
            let frame = result.expect("the links send well-formed frames");
            assert!(
                frame.protocol != Protocol::Ipcp
                    || from.ccp_negotiated().is_some()
                    || from
                        .network()
                        .ccp()
                        .is_none_or(|c| c.state() != State::RequestSent
                            && c.state() != State::AckReceived
                            && c.state() != State::AckSent),
                "IPCP sent while CCP is negotiating"
            );
        }
        to.handle_input(now, bytes);
    }
    while let Some(event) = to.poll_event() {
        if let LinkEvent::SecretNeeded(request) = event {
            to.provide_secret(
                now,
                request.token,
                secrets.lookup_now(&request.client, &request.server),
            )
            .unwrap();
        }
    }
    !frames.is_empty()
}

fn sent_frames_raw(link: &mut Link) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| link.poll_transmit()).collect()
}

#[test]
fn with_mppe_required_ipcp_waits_for_ccp() {
    mppe_pair_opens_without_a_restart_interval(CcpConfig::require_mppe_128(), true);
}

/// `use-encryption = yes` against a peer that requires MPPE (pppd `require-mppe-128`): our
/// IPCP must wait for CCP too, or the peer answers it with a Terminate-Ack and IPCP comes up
/// one restart interval (3 s) late.
#[test]
fn with_mppe_offered_ipcp_waits_for_ccp_to_settle() {
    let offered = CcpConfig {
        encryption: ppp_ccp::Encryption::Yes,
        ..CcpConfig::default()
    };
    mppe_pair_opens_without_a_restart_interval(offered, true);
}

/// MPPE offered to a peer without CCP (it Protocol-Rejects CCP): IPCP starts as soon as CCP
/// finishes, not a restart interval later.
#[test]
fn with_mppe_offered_to_a_peer_without_ccp_ipcp_is_not_delayed() {
    let offered = CcpConfig {
        encryption: ppp_ccp::Encryption::Yes,
        ..CcpConfig::default()
    };
    mppe_pair_opens_without_a_restart_interval(offered, false);
}

fn mppe_pair_opens_without_a_restart_interval(client_ccp: CcpConfig, server_has_ccp: bool) {
    let start = Instant::now();
    let secrets = SecretsTable::parse_pppd("alice server \"correct horse\" *\n").expect("secrets");
    let mut client = LinkConfig::default();
    client.lcp.allow = vec![AuthProtocol::MsChapV2];
    client.auth.credentials = Some(ClientCredentials::password("alice", "correct horse"));
    client.ccp = Some(client_ccp);
    let mut server = LinkConfig::default();
    server.lcp.allow.clear();
    server.lcp.require = vec![AuthProtocol::MsChapV2];
    server.auth.authenticator = AuthenticatorConfig::new("server");
    server.ccp = server_has_ccp.then(CcpConfig::require_mppe_128);
    server.ipcp = Some(IpcpConfig {
        remote_address: Some(std::net::Ipv4Addr::new(192, 0, 2, 2)),
        ..IpcpConfig::server(std::net::Ipv4Addr::new(192, 0, 2, 1), [None, None])
    });
    let (mut a, mut b) = (
        Link::new(client, Random::seeded(11)),
        Link::new(server, Random::seeded(12)),
    );
    // Both sides ask for an ACCM of 0: control characters arrive unescaped once LCP is up.
    let observer = || {
        AsyncDecoder::new(DecoderConfig {
            accm: 0,
            ..DecoderConfig::default()
        })
    };
    let (mut decode_a, mut decode_b) = (observer(), observer());
    for link in [&mut a, &mut b] {
        link.open(start);
        link.up(start);
    }
    let mut now = start;
    for _ in 0..200 {
        now += Duration::from_millis(10);
        let moved = carry(now, &mut a, &mut decode_a, &mut b, &secrets)
            | carry(now, &mut b, &mut decode_b, &mut a, &secrets);
        if !moved && a.ipcp_negotiated().is_some() && b.ipcp_negotiated().is_some() {
            break;
        }
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    if server_has_ccp {
        assert!(a.ccp_negotiated().is_some_and(|n| n.fully_encrypted()));
    }
    assert!(a.ipcp_negotiated().is_some() && b.ipcp_negotiated().is_some());
    // Opened without a restart interval (3 s): no Configure-Request went unanswered.
    assert!(now - start < Duration::from_secs(1), "{:?}", now - start);
}
