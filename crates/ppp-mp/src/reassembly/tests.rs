//! Scripted tests of the reassembler: fragments in, packets and counters out.
use super::*;

const A: MemberId = MemberId(1);
const B: MemberId = MemberId(2);
const C: MemberId = MemberId(3);

fn frag(format: SequenceFormat, sequence: u32, begin: bool, end: bool, data: &[u8]) -> Vec<u8> {
    let header = MpHeader {
        format,
        begin,
        end,
        sequence,
    };
    let mut out = vec![0; header.buffer_len()];
    header.emit(&mut out).unwrap();
    out.extend_from_slice(data);
    out
}

fn long(sequence: u32, begin: bool, end: bool, data: &[u8]) -> Vec<u8> {
    frag(SequenceFormat::Long, sequence, begin, end, data)
}

fn reassembler(members: &[MemberId]) -> Reassembler {
    let mut r = Reassembler::new(ReassemblerConfig::default());
    for &m in members {
        r.add_member(m);
    }
    r
}

fn packets(r: &mut Reassembler) -> Vec<Packet> {
    std::iter::from_fn(|| r.poll_packet()).collect()
}

/// Every fragment received is accounted for exactly once.
fn assert_accounted(r: &Reassembler) {
    let s = r.stats();
    assert_eq!(
        s.fragments_received,
        s.fragments_too_long
            + s.duplicate_fragments
            + s.late_fragments
            + s.fragments_delivered
            + s.fragments_discarded
            + s.null_fragments
            + r.buffered_fragments() as u64,
        "{s:#?}"
    );
}

#[test]
fn in_order_fragments_reassemble_with_both_protocol_field_forms() {
    let now = Instant::now();
    let mut r = reassembler(&[A]);
    r.handle_input(now, A, &long(0, true, false, &[0x00, 0x21, 1, 2]))
        .unwrap();
    r.handle_input(now, A, &long(1, false, false, &[3]))
        .unwrap();
    r.handle_input(now, A, &long(2, false, true, &[4, 5]))
        .unwrap();
    // Compressed protocol field, whole packet.
    r.handle_input(now, A, &long(3, true, true, &[0x21, 9]))
        .unwrap();
    // The protocol field split across fragments.
    r.handle_input(now, A, &long(4, true, false, &[0x80]))
        .unwrap();
    r.handle_input(now, A, &long(5, false, true, &[0x21, 7]))
        .unwrap();
    assert_eq!(
        packets(&mut r),
        [
            Packet {
                protocol: 0x0021,
                information: vec![1, 2, 3, 4, 5]
            },
            Packet {
                protocol: 0x0021,
                information: vec![9]
            },
            Packet {
                protocol: 0x8021,
                information: vec![7]
            },
        ]
    );
    assert_eq!(r.poll_timeout(), None);
    assert_eq!(r.buffered_bytes(), 0);
    assert_accounted(&r);
}

#[test]
fn fragments_reordered_across_members_are_put_in_order() {
    let now = Instant::now();
    let mut r = reassembler(&[A, B]);
    // Packet 1 = seq 0..=2, packet 2 = seq 3 (whole). B is faster and delivers 1 and 3 first.
    r.handle_input(now, B, &long(1, false, false, &[2]))
        .unwrap();
    r.handle_input(now, B, &long(3, true, true, &[0x57, 8]))
        .unwrap();
    assert!(packets(&mut r).is_empty());
    assert_eq!(r.buffered_fragments(), 2);
    // A's fragments 0 and 2 arrive: M was min(B: 3, A: none yet) so nothing was declared lost.
    r.handle_input(now, A, &long(0, true, false, &[0x21, 1]))
        .unwrap();
    r.handle_input(now, A, &long(2, false, true, &[3])).unwrap();
    let got = packets(&mut r);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].information, [1, 2, 3]);
    assert_eq!(got[1].protocol, 0x57);
    assert_eq!(r.stats().sequence_numbers_lost, 0);
    assert_accounted(&r);
}

#[test]
fn m_rule_declares_loss_only_below_every_members_last_sequence() {
    let now = Instant::now();
    let mut r = reassembler(&[A, B]);
    // Packet X = 0,1 (1 lost, it was on B); packet Y = 2 (whole, on A).
    r.handle_input(now, A, &long(0, true, false, &[0x21, 1]))
        .unwrap();
    r.handle_input(now, A, &long(2, true, true, &[0x21, 2]))
        .unwrap();
    // A has reached 2 but B has not carried anything: 1 may still come on B.
    assert!(packets(&mut r).is_empty());
    assert_eq!(r.stats().sequence_numbers_lost, 0);
    // B delivers 3 (whole): M = min(2, 3) = 2, so 1 is lost, X is dropped, Y and 3 delivered.
    r.handle_input(now, B, &long(3, true, true, &[0x21, 3]))
        .unwrap();
    let got: Vec<_> = packets(&mut r).into_iter().map(|p| p.information).collect();
    assert_eq!(got, [vec![2], vec![3]]);
    let s = r.stats();
    assert_eq!(s.sequence_numbers_lost, 1);
    assert_eq!(s.packets_discarded, 1);
    assert_eq!(s.fragments_discarded, 1);
    // The lost fragment arriving after all is late.
    r.handle_input(now, B, &long(1, false, true, &[9])).unwrap();
    assert_eq!(r.stats().late_fragments, 1);
    assert!(packets(&mut r).is_empty());
    assert_accounted(&r);
}

#[test]
fn loss_of_a_beginning_drops_the_rest_of_its_packet() {
    let now = Instant::now();
    let mut r = reassembler(&[A]);
    // 0 (B) is lost; 1 and 2 (middle, end) arrive; 3 is a whole packet.
    r.handle_input(now, A, &long(1, false, false, &[1]))
        .unwrap();
    r.handle_input(now, A, &long(2, false, true, &[2])).unwrap();
    r.handle_input(now, A, &long(3, true, true, &[0x21, 3]))
        .unwrap();
    let got = packets(&mut r);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].information, [3]);
    let s = r.stats();
    assert_eq!(s.sequence_numbers_lost, 1);
    assert_eq!(s.fragments_discarded, 2);
    assert_accounted(&r);
}

#[test]
fn a_b_fragment_ends_an_unfinished_packet() {
    let now = Instant::now();
    let mut r = reassembler(&[A]);
    r.handle_input(now, A, &long(0, true, false, &[0x21, 1]))
        .unwrap();
    r.handle_input(now, A, &long(1, true, true, &[0x21, 2]))
        .unwrap();
    let got = packets(&mut r);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].information, [2]);
    assert_eq!(r.stats().packets_discarded, 1);
    assert_accounted(&r);
}

#[test]
fn duplicates_are_dropped_wherever_they_arrive() {
    let now = Instant::now();
    let mut r = reassembler(&[A, B, C]);
    let f1 = long(1, false, true, &[2]);
    r.handle_input(now, B, &f1).unwrap();
    r.handle_input(now, B, &f1).unwrap();
    r.handle_input(now, C, &f1).unwrap();
    assert_eq!(r.stats().duplicate_fragments, 2);
    // A has carried nothing yet, so 0 is not lost: it arrives.
    let f0 = long(0, true, false, &[0x21, 1]);
    r.handle_input(now, A, &f0).unwrap();
    r.handle_input(now, A, &f0).unwrap();
    r.handle_input(now, B, &f1).unwrap();
    assert_eq!(r.stats().late_fragments, 2);
    let got = packets(&mut r);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].information, [1, 2]);
    assert_accounted(&r);
}

#[test]
fn an_idle_member_does_not_stall_delivery_past_the_timeout() {
    let start = Instant::now();
    let mut r = reassembler(&[A, B]);
    // B carried seq 0 and went idle; A carries 2.. while 1 (on B) was lost.
    r.handle_input(start, B, &long(0, true, true, &[0x21, 0]))
        .unwrap();
    assert_eq!(packets(&mut r).len(), 1);
    for seq in 2..10 {
        r.handle_input(start, A, &long(seq, true, true, &[0x21, seq as u8]))
            .unwrap();
    }
    // M = min(A: 9, B: 0): 1 cannot be declared lost; delivery waits.
    assert!(packets(&mut r).is_empty());
    let deadline = r.poll_timeout().expect("a deadline while blocked");
    assert_eq!(deadline, start + Duration::from_secs(1));
    // Early and spurious timeouts do nothing.
    r.handle_timeout(start + Duration::from_millis(999));
    assert!(packets(&mut r).is_empty());
    r.handle_timeout(deadline);
    let got: Vec<u8> = packets(&mut r).iter().map(|p| p.information[0]).collect();
    assert_eq!(got, (2..10).collect::<Vec<u8>>());
    let s = r.stats();
    assert_eq!((s.timeouts, s.sequence_numbers_lost), (1, 1));
    assert_eq!(r.poll_timeout(), None);
    r.handle_timeout(deadline + Duration::from_secs(5));
    assert_eq!(r.stats().timeouts, 1);
    assert_accounted(&r);
}

#[test]
fn a_member_leaving_releases_what_it_held_back() {
    let now = Instant::now();
    let mut r = reassembler(&[A, B, C]);
    r.handle_input(now, A, &long(0, true, false, &[0x21, 1]))
        .unwrap();
    // 1 was in flight on C when C died.
    r.handle_input(now, B, &long(2, true, true, &[0x21, 2]))
        .unwrap();
    r.handle_input(now, A, &long(3, true, true, &[0x21, 3]))
        .unwrap();
    assert!(packets(&mut r).is_empty());
    r.remove_member(now, C).unwrap();
    let got: Vec<u8> = packets(&mut r).iter().map(|p| p.information[0]).collect();
    assert_eq!(got, [2, 3]);
    assert_eq!(r.stats().packets_discarded, 1);
    assert_eq!(r.remove_member(now, C), Err(MpError::UnknownMember(C)));
    assert_accounted(&r);
}

#[test]
fn a_packet_in_progress_times_out_when_its_end_never_comes() {
    let now = Instant::now();
    let mut r = reassembler(&[A, B]);
    r.handle_input(now, A, &long(0, true, false, &[0x21, 1]))
        .unwrap();
    let deadline = r.poll_timeout().unwrap();
    r.handle_timeout(deadline);
    assert_eq!(r.buffered_bytes(), 0);
    assert_eq!(r.stats().packets_discarded, 1);
    assert_eq!(r.expected_sequence(), 2);
    assert_eq!(r.poll_timeout(), None);
    assert_accounted(&r);
}

#[test]
fn wrap_around_in_both_formats() {
    let now = Instant::now();
    for format in [SequenceFormat::Long, SequenceFormat::Short] {
        let start = format.max_sequence() - 2;
        let mut r = Reassembler::new(ReassemblerConfig {
            format,
            initial_sequence: start,
            ..ReassemblerConfig::default()
        });
        r.add_member(A);
        r.add_member(B);
        // Packets of two fragments each across the wrap, second fragment first.
        let mut expect = Vec::new();
        for n in 0..6u32 {
            let first = format.add(start, 2 * n);
            let second = format.next(first);
            r.handle_input(now, B, &frag(format, second, false, true, &[n as u8]))
                .unwrap();
            r.handle_input(now, A, &frag(format, first, true, false, &[0x21]))
                .unwrap();
            expect.push(vec![n as u8]);
        }
        let got: Vec<_> = packets(&mut r).into_iter().map(|p| p.information).collect();
        assert_eq!(got, expect, "{format}");
        assert_eq!(r.expected_sequence(), format.add(start, 12));
        assert_eq!(r.stats().late_fragments, 0);
        assert_accounted(&r);
    }
}

#[test]
fn byte_bound_drops_the_oldest_incomplete_packet() {
    let now = Instant::now();
    let mut r = Reassembler::new(ReassemblerConfig {
        mrru: 100,
        max_buffered_bytes: 400,
        ..ReassemblerConfig::default()
    });
    r.add_member(A);
    r.add_member(B);
    let limits = r.limits();
    assert_eq!(limits.buffered_bytes, 400);
    // Sequence 0 never comes (A holds M back); whole 100-byte packets pile up behind it.
    for seq in 1..=20u32 {
        let mut data = vec![0x21];
        data.extend(std::iter::repeat_n(seq as u8, 99));
        r.handle_input(now, B, &long(seq, true, true, &data))
            .unwrap();
        assert!(r.buffered_bytes() <= limits.buffered_bytes);
    }
    let s = r.stats();
    assert!(s.overflows > 0, "{s:?}");
    assert!(s.peak_buffered_bytes <= 400);
    // The oldest were dropped; what was delivered is in order and the newest is still there.
    let got: Vec<u8> = packets(&mut r).iter().map(|p| p.information[0]).collect();
    assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
    assert!(!got.is_empty());
    assert_accounted(&r);
}

#[test]
fn window_bound_moves_on_for_a_fragment_far_ahead() {
    let now = Instant::now();
    let mut r = Reassembler::new(ReassemblerConfig {
        max_buffered_fragments: 16,
        ..ReassemblerConfig::default()
    });
    r.add_member(A);
    r.add_member(B);
    assert_eq!(r.limits().window, 16);
    r.handle_input(now, B, &long(3, true, true, &[0x21, 3]))
        .unwrap();
    r.handle_input(now, B, &long(100, true, true, &[0x21, 100]))
        .unwrap();
    // The window moved to 85..=100: 3 was dropped, 100 is kept (A still holds M).
    assert_eq!(r.expected_sequence(), 85);
    assert_eq!(r.buffered_fragments(), 1);
    let s = r.stats();
    assert_eq!(s.overflows, 1);
    assert_eq!(s.fragments_discarded, 1);
    assert_eq!(s.sequence_numbers_lost, 84);
    assert_accounted(&r);
}

#[test]
fn configured_limits_are_normalised() {
    let r = Reassembler::new(ReassemblerConfig {
        format: SequenceFormat::Short,
        mrru: 1500,
        max_buffered_bytes: 0,
        max_buffered_fragments: 100_000,
        ..ReassemblerConfig::default()
    });
    let l = r.limits();
    assert_eq!(l.window, 1024, "a quarter of the 12-bit space");
    assert_eq!(l.buffered_bytes, 2 * 1502);
    assert_eq!(l.queued_packets, 1025);
    assert_eq!(l.queued_bytes, l.buffered_bytes);
    assert!(r.memory_bound() >= l.buffered_bytes + l.packet_len);
    let r = Reassembler::new(ReassemblerConfig {
        max_buffered_fragments: 100,
        ..ReassemblerConfig::default()
    });
    assert_eq!(r.limits().window, 128);
}

#[test]
fn bad_input_is_counted_and_never_stored() {
    let now = Instant::now();
    let mut r = Reassembler::new(ReassemblerConfig {
        mrru: 100,
        ..ReassemblerConfig::default()
    });
    r.add_member(A);
    assert!(matches!(
        r.handle_input(now, A, &[0x80, 0]),
        Err(MpError::Truncated { .. })
    ));
    assert!(matches!(
        r.handle_input(now, A, &[0x81, 0, 0, 0]),
        Err(MpError::ReservedBitsSet { .. })
    ));
    assert_eq!(
        r.handle_input(now, B, &long(0, true, true, &[0x21])),
        Err(MpError::UnknownMember(B))
    );
    // Invalid protocol fields: even low byte, two even bytes, nothing after the B+E header.
    r.handle_input(now, A, &long(0, true, true, &[0x00, 0x20, 1]))
        .unwrap();
    r.handle_input(now, A, &long(1, true, false, &[0x00]))
        .unwrap();
    r.handle_input(now, A, &long(2, false, true, &[0x02, 1]))
        .unwrap();
    r.handle_input(now, A, &long(3, true, true, &[])).unwrap();
    // Too long when reassembled.
    r.handle_input(now, A, &long(4, true, false, &[0x21; 60]))
        .unwrap();
    r.handle_input(now, A, &long(5, false, true, &[0; 60]))
        .unwrap();
    assert_eq!(
        r.handle_input(now, A, &long(6, true, true, &[0; 103])),
        Err(MpError::FragmentTooLong {
            len: 103,
            limit: 102
        })
    );
    let s = r.stats();
    assert_eq!(s.malformed_headers, 2);
    assert_eq!(s.unknown_member, 1);
    assert_eq!(s.fragments_too_long, 1);
    assert_eq!(s.packets_malformed, 2);
    assert_eq!(s.null_fragments, 1);
    assert_eq!(s.packets_too_long, 1);
    assert!(packets(&mut r).is_empty());
    assert_accounted(&r);
}

#[test]
fn delivery_queue_is_bounded_for_callers_that_do_not_poll() {
    let now = Instant::now();
    let mut r = Reassembler::new(ReassemblerConfig {
        mrru: 100,
        max_buffered_bytes: 0,
        ..ReassemblerConfig::default()
    });
    r.add_member(A);
    let limit = r.limits().queued_bytes;
    assert_eq!(limit, 204);
    for seq in 0..5 {
        r.handle_input(now, A, &long(seq, true, true, &[0x21; 100]))
            .unwrap();
    }
    // Two 99-byte packets fit 204 bytes, the rest is dropped.
    assert_eq!(r.queued_packets(), 2);
    assert_eq!(r.stats().packets_dropped_queue_full, 3);
    assert_eq!(packets(&mut r).len(), 2);
    r.handle_input(now, A, &long(5, true, true, &[0x21; 100]))
        .unwrap();
    assert_eq!(r.queued_packets(), 1);
    assert_accounted(&r);
}

#[test]
fn a_peer_that_restarts_its_numbering_is_followed_after_a_window_of_late_fragments() {
    let now = Instant::now();
    let mut r = Reassembler::new(ReassemblerConfig {
        max_buffered_fragments: 8,
        initial_sequence: 1000,
        ..ReassemblerConfig::default()
    });
    r.add_member(A);
    let mut got = Vec::new();
    for seq in 0..20 {
        r.handle_input(now, A, &long(seq, true, true, &[0x21, seq as u8]))
            .unwrap();
        got.extend(packets(&mut r).iter().map(|p| p.information[0]));
    }
    let s = r.stats();
    assert_eq!((s.late_fragments, s.resyncs), (7, 1));
    assert_eq!(got, (7..20).collect::<Vec<u8>>());
    assert_accounted(&r);
}

#[test]
fn a_duplicate_that_would_overflow_the_buffer_is_only_a_duplicate() {
    let now = Instant::now();
    let mut r = Reassembler::new(ReassemblerConfig {
        mrru: 100,
        max_buffered_bytes: 204,
        ..ReassemblerConfig::default()
    });
    r.add_member(A);
    r.add_member(B);
    // 0 has not come yet (A holds M): 1 ends its packet, 2 is a whole packet. 70 bytes kept
    // of the 102 out-of-order fragments may use.
    r.handle_input(now, B, &long(1, false, true, &[1; 30]))
        .unwrap();
    r.handle_input(now, B, &long(2, true, true, &[0x21; 40]))
        .unwrap();
    // A copy of 2 would not fit; it must be dropped as a copy, not make room by dropping the
    // packet of 0 and 1 (which would also have left the copy taken for the next fragment).
    r.handle_input(now, B, &long(2, true, true, &[0x21; 40]))
        .unwrap();
    let s = r.stats();
    assert_eq!((s.duplicate_fragments, s.overflows), (1, 0));
    r.handle_input(now, A, &long(0, true, false, &[0x21, 0]))
        .unwrap();
    let got: Vec<usize> = packets(&mut r)
        .iter()
        .map(|p| p.information.len())
        .collect();
    assert_eq!(got, [31, 39]);
    assert_eq!(r.buffered_bytes(), 0);
    assert_accounted(&r);
}

#[test]
fn overflow_drops_oldest_packets_until_the_new_fragment_fits() {
    let now = Instant::now();
    let mut r = Reassembler::new(ReassemblerConfig {
        mrru: 100,
        max_buffered_bytes: 204,
        ..ReassemblerConfig::default()
    });
    r.add_member(A);
    r.add_member(B);
    // 0 never comes. 1 begins a packet, 3 is a whole packet; 4 (100 bytes) does not fit next
    // to them: the packet of 0, then that of 1 and 2, then 3 go, and 4 is next in line.
    r.handle_input(now, B, &long(1, true, false, &[0x21; 50]))
        .unwrap();
    r.handle_input(now, B, &long(3, true, true, &[0x21; 40]))
        .unwrap();
    r.handle_input(now, B, &long(4, true, true, &[0x21; 100]))
        .unwrap();
    let s = r.stats();
    assert_eq!(s.overflows, 3);
    assert_eq!(s.fragments_discarded, 2);
    assert_eq!(s.sequence_numbers_lost, 2);
    let got: Vec<usize> = packets(&mut r)
        .iter()
        .map(|p| p.information.len())
        .collect();
    assert_eq!(got, [99]);
    assert_accounted(&r);
}
