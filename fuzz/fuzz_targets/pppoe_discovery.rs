//! PPPoE discovery and session frames: parse/emit round trips, and arbitrary frames into a client
//! and an access concentrator never panic. MSS clamping of arbitrary packets never panics.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use pppoe_discovery::{
    AcConfig, AccessConcentrator, Client, ClientConfig, DiscoveryRepr, MacAddr, decapsulate,
    mss::clamp_mss,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(repr) = DiscoveryRepr::parse_bytes(data) {
        let bytes = repr.to_bytes().expect("a parsed frame emits");
        assert_eq!(DiscoveryRepr::parse_bytes(&bytes).as_ref(), Ok(&repr));
    }
    let _ = decapsulate(data);
    let mut packet = data.to_vec();
    let _ = clamp_mss(&mut packet, 1452);

    let now = Instant::now();
    let mut client = Client::with_seed(ClientConfig::default(), MacAddr([2, 0, 0, 0, 0, 1]), 1);
    client.start(now);
    let mut ac = AccessConcentrator::with_seed(AcConfig::default(), MacAddr([2, 0, 0, 0, 0, 2]), now, 2);
    for (i, frame) in data.split(|b| *b == 0xA5).enumerate() {
        let t = now + Duration::from_millis(i as u64 * 300);
        client.handle_input(t, frame);
        ac.handle_input(t, frame);
        client.handle_timeout(t);
        ac.handle_timeout(t);
        while client.poll_transmit().is_some() {}
        while client.poll_event().is_some() {}
        while ac.poll_transmit().is_some() {}
        while ac.poll_event().is_some() {}
    }
});
