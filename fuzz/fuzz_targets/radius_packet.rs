//! RADIUS packets: parse/emit round trips, every reader of untrusted values (answers into
//! verdicts and authorizations, accounting records, rate limits, verification) never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ppp_auth::AuthProtocol;
use ppp_radius::crypto::{verify_request, verify_response};
use ppp_radius::{AccessAnswer, AccountingRecord, Authorization, Packet, RateLimit, Secret};

fuzz_target!(|data: &[u8]| {
    let secret = Secret::from("fuzz");
    let _ = verify_response(data, &[7; 16], &secret, true);
    let _ = verify_request(data, &secret, false);
    if let Ok(packet) = ppp_radius::parse_round_trip(data) {
        let _ = Authorization::from_packet(&packet);
        for method in [
            AuthProtocol::Pap,
            AuthProtocol::ChapMd5,
            AuthProtocol::MsChapV1,
            AuthProtocol::MsChapV2,
        ] {
            let _ = AccessAnswer::from_packet(&packet, method, &[7; 16], &secret);
        }
        if let Ok(record) = AccountingRecord::from_packet(&packet)
            && let Ok(bytes) = record.to_bytes()
        {
            assert_eq!(AccountingRecord::from_bytes(&bytes).ok(), Some(record));
        }
        let _ = Packet::parse(&packet.to_bytes().expect("emits"));
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(limit) = text.parse::<RateLimit>()
    {
        assert_eq!(limit.to_string().parse::<RateLimit>().ok(), Some(limit));
    }
});
