//! Multilink headers and reassembly: MP headers in both formats round-trip, and scripts of
//! fragments, raw frames, time, members and packets keep one `Bundle` within its limits and
//! accounting for every fragment (input format in `harness/mp_reassembly.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness/mp_reassembly.rs"]
mod mp_reassembly;

fuzz_target!(|data: &[u8]| {
    mp_reassembly::header_round_trip(data);
    let _ = mp_reassembly::run_script(data);
});
