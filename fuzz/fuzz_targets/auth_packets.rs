//! PAP and CHAP packets: parse/emit round trips, and arbitrary packets into both machines of
//! every method never panic.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use ppp_auth::{
    AuthEvent, AuthProtocol, Authenticatee, AuthenticateeConfig, Authenticator,
    AuthenticatorConfig, Credentials, Random, SecretToken, parse_chap_packet, parse_pap_packet,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = parse_pap_packet(data) {
        let bytes = packet.to_bytes().expect("a parsed packet emits");
        assert_eq!(parse_pap_packet(&bytes).ok(), Some(packet));
    }
    if let Ok(packet) = parse_chap_packet(data) {
        let bytes = packet.to_bytes().expect("a parsed packet emits");
        assert_eq!(parse_chap_packet(&bytes).ok(), Some(packet));
    }
    let Some((&selector, rest)) = data.split_first() else { return };
    let method = [AuthProtocol::Pap, AuthProtocol::ChapMd5, AuthProtocol::MsChapV1, AuthProtocol::MsChapV2]
        [usize::from(selector % 4)];
    let now = Instant::now();
    let mut server = Authenticator::new(method, AuthenticatorConfig::new("server"), Random::seeded(1));
    let mut client = Authenticatee::new(
        method,
        Credentials::new("alice", "correct horse"),
        AuthenticateeConfig::default(),
        Random::seeded(2),
    );
    server.open(now);
    client.open(now);
    let mut token = SecretToken(0);
    for (i, packet) in rest.split(|b| *b == 0xA5).enumerate() {
        let t = now + Duration::from_millis(i as u64 * 700);
        server.handle_input(t, packet);
        client.handle_input(t, packet);
        if selector & 0x80 != 0 {
            // The token of the request, or (after a stale one) a wrong one: both are handled.
            let _ = server.provide_secret(t, token, Some(ppp_auth::Secret::new(packet.to_vec())));
        }
        server.handle_timeout(t);
        client.handle_timeout(t);
        while server.poll_transmit().is_some() {}
        while let Some(event) = server.poll_event() {
            if let AuthEvent::SecretNeeded(request) = event {
                token = request.token;
            }
        }
        while client.poll_transmit().is_some() {}
        while client.poll_event().is_some() {}
    }
});
