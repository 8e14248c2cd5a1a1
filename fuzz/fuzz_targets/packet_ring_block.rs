//! Walking a block of the access concentrator's PADI receive ring (`ppp_tokio::ring`), whose
//! offsets and lengths come from shared memory: on arbitrary bytes it never panics and yields at
//! most one frame per 48 bytes; frames laid out as the kernel lays them out come back exactly.
//!
//! Input: `[mode]` + bytes. Mode even: the bytes are a block. Mode odd: the bytes are frames
//! separated by `0xA5`, laid out in a block of 4 KiB (or 64 KiB if they need it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ppp_tokio::ring::{block_frames, frames_into_block};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let frames = block_frames(rest).count();
        assert!(
            frames <= rest.len() / 48,
            "{frames} frames from {} bytes",
            rest.len()
        );
        return;
    }
    let frames: Vec<&[u8]> = rest.split(|&b| b == 0xA5).collect();
    let Some(block) =
        frames_into_block(&frames, 4096).or_else(|| frames_into_block(&frames, 65536))
    else {
        return;
    };
    assert!(
        block_frames(&block).eq(frames.iter().copied()),
        "the frames come back"
    );
});
