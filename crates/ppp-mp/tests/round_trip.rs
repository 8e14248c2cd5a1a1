//! Property: any list of packets, fragmented over any set of members with any MTUs, speeds and
//! backlogs, in either header format and from any starting sequence number, reassembles to the
//! same packets in the same order, whatever the interleaving of the members (each member
//! keeping its own order, as a PPP link does). Every frame also fits its member's MTU, and each
//! member sees increasing sequence numbers.

use std::time::{Duration, Instant};

use ppp_mp::{
    Bundle, BundleConfig, FragmenterConfig, MemberLink, MpHeader, ReassemblerConfig, SequenceFormat,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Member {
    mtu: u16,
    bits_per_second: u64,
    queued_bytes: usize,
}

fn member() -> impl Strategy<Value = Member> {
    (
        40u16..1600,
        prop_oneof![Just(0u64), 1_000u64..1_000_000_000],
        0usize..20_000,
    )
        .prop_map(|(mtu, bits_per_second, queued_bytes)| Member {
            mtu,
            bits_per_second,
            queued_bytes,
        })
}

fn protocol() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(0x0021u16),
        Just(0x0057),
        Just(0x00FD),
        Just(0x8021),
        Just(0x80FD),
        Just(0xC021),
        // Any valid protocol number: low byte odd, high byte even.
        any::<u16>().prop_map(|n| (n & 0xFEFF) | 0x0001),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fragmentation_round_trips(
        members in prop::collection::vec(member(), 1..5),
        packets in prop::collection::vec(
            (protocol(), prop::collection::vec(any::<u8>(), 0..=1500)),
            0..12,
        ),
        short in any::<bool>(),
        protocol_field_compression in any::<bool>(),
        fragmentation_threshold in 0usize..2000,
        min_fragment_size in 0usize..300,
        initial_sequence in any::<u32>(),
        interleaving in prop::collection::vec(any::<u8>(), 0..2000),
        elapsed_us in 0u64..2000,
    ) {
        let format = if short { SequenceFormat::Short } else { SequenceFormat::Long };
        let initial_sequence = initial_sequence & format.max_sequence();
        let config = BundleConfig {
            send: FragmenterConfig {
                format,
                peer_mrru: 1500,
                protocol_field_compression,
                fragmentation_threshold,
                min_fragment_size,
                initial_sequence,
                max_queued_fragments: 1 << 20,
            },
            receive: ReassemblerConfig {
                format,
                mrru: 1500,
                initial_sequence,
                max_buffered_bytes: 1 << 24,
                max_buffered_fragments: 1 << 20,
                ..ReassemblerConfig::default()
            },
        };
        let mut sender = Bundle::new(config.clone());
        let mut receiver = Bundle::new(config);
        let mut ids = Vec::new();
        for m in &members {
            let link = MemberLink::new(m.mtu).with_speed(m.bits_per_second);
            ids.push((sender.add_link(link).unwrap(), receiver.add_link(link).unwrap()));
        }
        let start = Instant::now();
        for (i, m) in members.iter().enumerate() {
            sender.report_queued_bytes(start, ids[i].0, m.queued_bytes).unwrap();
        }

        // Fragment everything; each member's frames in its own queue, in the order polled.
        let mut queues: Vec<Vec<Vec<u8>>> = vec![Vec::new(); members.len()];
        for (n, (protocol, information)) in packets.iter().enumerate() {
            let now = start + Duration::from_micros(elapsed_us * n as u64);
            sender.send(now, *protocol, information).unwrap();
            while let Some((member, frame)) = sender.poll_transmit() {
                let index = ids.iter().position(|&(s, _)| s == member).unwrap();
                prop_assert!(frame.len() <= usize::from(members[index].mtu));
                queues[index].push(frame);
            }
        }
        for queue in &queues {
            let sequences: Vec<u32> = queue
                .iter()
                .map(|f| MpHeader::parse(format, f).unwrap().0.sequence)
                .collect();
            prop_assert!(sequences.windows(2).all(|w| format.is_before(w[0], w[1])));
        }

        // Deliver in an arbitrary interleaving that keeps each member's order.
        let mut next = vec![0usize; members.len()];
        let mut choices = interleaving.iter().copied().chain(std::iter::repeat(0));
        let mut received = Vec::new();
        loop {
            let open: Vec<usize> = (0..members.len())
                .filter(|&i| next[i] < queues[i].len())
                .collect();
            if open.is_empty() {
                break;
            }
            let pick = open[usize::from(choices.next().unwrap_or(0)) % open.len()];
            let frame = &queues[pick][next[pick]];
            next[pick] += 1;
            receiver.handle_input(start, ids[pick].1, frame).unwrap();
            while let Some(p) = receiver.poll_packet() {
                received.push((p.protocol, p.information));
            }
        }
        prop_assert_eq!(&received, &packets);
        let stats = receiver.stats().received;
        prop_assert_eq!(stats.sequence_numbers_lost, 0);
        prop_assert_eq!(stats.fragments_discarded, 0);
        prop_assert_eq!(receiver.buffered_bytes(), 0);
        prop_assert_eq!(receiver.poll_timeout(), None);
    }
}
