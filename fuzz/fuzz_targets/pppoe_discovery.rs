//! PPPoE discovery and session frames: parse/emit round trips, and arbitrary frames into a client
//! and an access concentrator never panic and never grow their queues without bound (input
//! format in `harness/pppoe_discovery.rs`). MSS clamping of arbitrary packets never panics (the
//! `mss_clamp` target checks more).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pppoe_discovery::{DiscoveryRepr, decapsulate, mss::clamp_mss};

#[path = "../harness/pppoe_discovery.rs"]
mod pppoe_discovery_harness;

fuzz_target!(|data: &[u8]| {
    if let Ok(repr) = DiscoveryRepr::parse_bytes(data) {
        let bytes = repr.to_bytes().expect("a parsed frame emits");
        assert_eq!(DiscoveryRepr::parse_bytes(&bytes).as_ref(), Ok(&repr));
    }
    let _ = decapsulate(data);
    let mut packet = data.to_vec();
    let _ = clamp_mss(&mut packet, 1452);
    let _ = pppoe_discovery_harness::run(data);
});
