//! PAP and CHAP packets: parse/emit round trips, and arbitrary packets into both machines of
//! every method never panic.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use ppp_auth::{
    AuthProtocol, Authenticatee, AuthenticateeConfig, Authenticator, AuthenticatorConfig,
    Credentials, parse_chap_packet, parse_pap_packet,
};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

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
    let mut server = Authenticator::new(method, AuthenticatorConfig::new("server"), Box::new(ChaCha8Rng::seed_from_u64(1)));
    let mut client = Authenticatee::new(
        method,
        Credentials::new("alice", "correct horse"),
        AuthenticateeConfig::default(),
        Box::new(ChaCha8Rng::seed_from_u64(2)),
    );
    server.start(now);
    client.start(now);
    for (i, packet) in rest.split(|b| *b == 0xA5).enumerate() {
        let t = now + Duration::from_millis(i as u64 * 700);
        server.handle_input(t, packet);
        client.handle_input(t, packet);
        if selector & 0x80 != 0 {
            let _ = server.provide_secret(t, Some(ppp_auth::Secret::new(packet.to_vec())));
        }
        server.handle_timeout(t);
        client.handle_timeout(t);
        while server.poll_transmit().is_some() {}
        while server.poll_event().is_some() {}
        while client.poll_transmit().is_some() {}
        while client.poll_event().is_some() {}
    }
});
