//! The classic BPF program the AF_PACKET socket attaches, run by its interpreter on arbitrary
//! frames: it accepts exactly the PPPoE frames that were not sent by us; and the access
//! concentrator's pair of discovery filters splits the PPPoE Discovery frames not sent by us
//! between them by code (PADIs to one, the rest to the other), each exactly once; and with
//! worker threads (`shard_filter`), each such frame goes to exactly the worker its source
//! address names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ppp_tokio::packet::{
    FilterVerdict, discovery_except_padi_filter, ethertype_filter, padi_filter, pppoe_filter,
    shard_filter,
};

fuzz_target!(|data: &[u8]| {
    let Some((&pkttype, frame)) = data.split_first() else {
        return;
    };
    let pkttype = u32::from(pkttype % 8);
    let verdict = FilterVerdict::of(&pppoe_filter(), frame, pkttype);
    let ethertype = frame.get(12..14).map(|t| u16::from_be_bytes([t[0], t[1]]));
    let wanted = matches!(ethertype, Some(0x8863 | 0x8864)) && pkttype != 4;
    assert_eq!(
        matches!(verdict, FilterVerdict::Accept(_)),
        wanted,
        "{verdict:?} for type {ethertype:?} pkttype {pkttype}"
    );

    let accepted = |program: &[_]| {
        matches!(
            FilterVerdict::of(program, frame, pkttype),
            FilterVerdict::Accept(_)
        )
    };
    let padi = accepted(&padi_filter());
    let rest = accepted(&discovery_except_padi_filter());
    let discovery = ethertype == Some(0x8863) && pkttype != 4 && frame.len() > 15;
    assert_eq!(
        padi,
        discovery && frame[15] == 0x09,
        "PADI filter, pkttype {pkttype}"
    );
    assert_eq!(
        rest,
        discovery && frame[15] != 0x09,
        "other discovery filter, pkttype {pkttype}"
    );

    // Worker threads: 1 to 8 workers (from the pkttype byte), each frame to one worker at most,
    // the one its source address names, and only what the unsteered filter accepts.
    let workers = u16::from(data[0] / 8 % 8) + 1;
    for (base, name) in [
        (ethertype_filter(0x8864).to_vec(), "session"),
        (discovery_except_padi_filter().to_vec(), "discovery"),
    ] {
        let takers: Vec<u16> = (0..workers)
            .filter(|&k| accepted(&shard_filter(&base, k, workers)))
            .collect();
        let expected: Vec<u16> = if accepted(&base) {
            vec![u16::from(frame[11]) % workers]
        } else {
            Vec::new()
        };
        assert_eq!(takers, expected, "{name} frames of {workers} workers");
    }
});
