//! Arbitrary 0x00FD packets into every decompressor (Deflate, stateless and stateful MPPE):
//! typed errors, never a panic or an unbounded allocation (input format in
//! `harness/ccp_decompress.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness/ccp_decompress.rs"]
mod ccp_decompress;

fuzz_target!(|data: &[u8]| {
    let _ = ccp_decompress::run(data);
});
