//! Arbitrary frames into a link in every phase: Establish, Authenticate and Network, on IPv4 and
//! IPv6. Two links are first brought to the chosen phase by talking to each other; then the fuzzer's
//! frames (any protocol, any bytes) and timer expiries are fed to one of them. Nothing may panic,
//! and queues stay bounded. The input format is in `harness/link_frames.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness/link_frames.rs"]
mod link_frames;

fuzz_target!(|data: &[u8]| {
    let _ = link_frames::run(data);
});
