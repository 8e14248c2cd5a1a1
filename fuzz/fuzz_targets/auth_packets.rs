//! PAP and CHAP packets: parse/emit round trips, and arbitrary packets into both machines of
//! every method never panic. The exchange's input format is in `harness/auth_exchange.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ppp_auth::{parse_chap_packet, parse_pap_packet};

#[path = "../harness/auth_exchange.rs"]
mod auth_exchange;

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = parse_pap_packet(data) {
        let bytes = packet.to_bytes().expect("a parsed packet emits");
        assert_eq!(parse_pap_packet(&bytes).ok(), Some(packet));
    }
    if let Ok(packet) = parse_chap_packet(data) {
        let bytes = packet.to_bytes().expect("a parsed packet emits");
        assert_eq!(parse_chap_packet(&bytes).ok(), Some(packet));
    }
    let _ = auth_exchange::run(data);
});
