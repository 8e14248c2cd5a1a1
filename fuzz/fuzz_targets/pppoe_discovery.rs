//! PPPoE discovery and session frames: parse/emit round trips, and arbitrary frames into a client
//! and an access concentrator never panic and never grow their queues without bound. MSS clamping
//! of arbitrary packets never panics.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use pppoe_discovery::ppp_core::{CloseReason, Machine, Random};
use pppoe_discovery::{
    AcConfig, AccessConcentrator, Client, ClientConfig, DiscoveryRepr, MacAddr, decapsulate,
    mss::clamp_mss,
};

const CLIENT: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const AC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

fuzz_target!(|data: &[u8]| {
    if let Ok(repr) = DiscoveryRepr::parse_bytes(data) {
        let bytes = repr.to_bytes().expect("a parsed frame emits");
        assert_eq!(DiscoveryRepr::parse_bytes(&bytes).as_ref(), Ok(&repr));
    }
    let _ = decapsulate(data);
    let mut packet = data.to_vec();
    let _ = clamp_mss(&mut packet, 1452);

    let now = Instant::now();
    let mut client = Client::new(ClientConfig::default(), CLIENT, Random::seeded(1));
    client.open(now);
    let config = AcConfig {
        max_queued_frames: 8,
        max_queued_events: 8,
        limiter_slots: 64,
        ..AcConfig::default()
    };
    let mut ac = AccessConcentrator::new(config, AC, Random::seeded(2));
    for (i, frame) in data.split(|b| *b == 0xA5).enumerate() {
        let t = now + Duration::from_millis(i as u64 * 300);
        client.handle_input(t, frame);
        ac.handle_input(t, frame);
        // Let the two talk, so that later frames meet every state.
        while let Some(out) = client.poll_transmit() {
            ac.handle_input(t, &out);
        }
        if i % 2 == 0 {
            while let Some(out) = ac.poll_transmit() {
                client.handle_input(t, &out);
            }
        }
        if let [a, b, ..] = *frame {
            let _ = ac.unknown_session(t, CLIENT, u16::from_be_bytes([a, b]));
        }
        Machine::handle_timeout(&mut client, t);
        Machine::handle_timeout(&mut ac, t);
        // The AC's queue holds at most its bound plus the frames its one possible session needs.
        assert!(ac.transmit_queue_len() <= 8 + 2);
        while client.poll_event().is_some() {}
        while ac.poll_event().is_some() {}
    }
    let first = ac.sessions().next().map(|s| s.session_id());
    if let Some(id) = first {
        let _ = ac.close_session(now, id, CloseReason::AdminReset);
    }
    ac.close(now, CloseReason::Shutdown);
    client.close(now, CloseReason::UserRequest);
    while ac.poll_transmit().is_some() {}
    while client.poll_transmit().is_some() {}
});
