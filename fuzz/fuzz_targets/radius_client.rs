//! Answers into the RADIUS client machine and requests into the dynamic-authorization server:
//! raw datagrams (which must all be dropped as forged or malformed), and datagrams the fuzzer
//! shapes but that are signed with the right secret, so it reaches the attribute readers. No
//! panic, no unbounded growth, every request ends. The input format is in
//! `harness/radius_client.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness/radius_client.rs"]
mod radius_client;

fuzz_target!(|data: &[u8]| {
    let _ = radius_client::run(data);
});
