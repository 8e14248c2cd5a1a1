//! Multilink (RFC 1990, `ppp-mp`): fragmenting 1500-byte IPv4 packets across member links and
//! reassembling them at the other end, both sides in the same timed loop, on one core.
//!
//! # What is measured
//!
//! * A working set of 8192 distinct 1500-byte packets (12 MiB, larger than the caches), sent in
//!   batches; throughput counts the packets' bytes, once (a packet fragmented and reassembled
//!   counts 1500 bytes). Every fragment is a fresh `Vec` as `poll_transmit` hands it out, and
//!   every reassembled packet a fresh `Vec` as `poll_packet` hands it out.
//! * `2-links-in-order`: two members of MTU 1500 (every packet in two fragments, one per
//!   member), fragments delivered in the order sent: the common case.
//! * `2-links-member-batches`: the same, but each batch of 128 packets arrives member by member,
//!   the second member's fragments first: every first fragment finds its second waiting.
//! * `4-links-mtu-256-reversed` (the worst case): four members of MTU 256 (eight fragments per
//!   packet, two per member), batches of 100 packets delivered member by member in reverse, so
//!   nearly everything waits in the reorder buffer until the last member's fragments arrive.
//! * Before the groups run, the bench prints the receiver's memory bound and the peak of
//!   buffered bytes each case reached.
//!
//! Run `cargo bench --bench multilink` (about a minute).
// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ppp_mp::{Bundle, BundleConfig, MemberId, MemberLink};

const PACKET_LEN: usize = 1500;
const WORKING_SET: usize = 8192;

/// Distinct IPv4-looking packets.
fn packets() -> Vec<Vec<u8>> {
    (0..WORKING_SET)
        .map(|n| {
            let mut p = vec![0u8; PACKET_LEN];
            p[0] = 0x45;
            p[2..4].copy_from_slice(&(PACKET_LEN as u16).to_be_bytes());
            p[4..8].copy_from_slice(&(n as u32).to_be_bytes());
            let mut x = n as u64 ^ 0x9E37_79B9_7F4A_7C15;
            for chunk in p[20..].chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
            }
            p
        })
        .collect()
}

/// How fragments reach the receiver.
#[derive(Clone, Copy)]
enum Delivery {
    /// In the order sent, one packet at a time.
    InOrder,
    /// A batch at a time, member by member, last member first.
    MembersReversed { batch: usize },
}

struct Case {
    name: &'static str,
    members: usize,
    mtu: u16,
    delivery: Delivery,
}

/// A sender and a receiver bundle joined by `members` links, with per-member queues.
struct Pair {
    sender: Bundle,
    receiver: Bundle,
    sender_ids: Vec<MemberId>,
    receiver_ids: Vec<MemberId>,
    queues: Vec<Vec<Vec<u8>>>,
    now: Instant,
    next: usize,
}

impl Pair {
    fn new(case: &Case) -> Self {
        let config = BundleConfig::negotiated(1600, 1600, false, false);
        let mut sender = Bundle::new(config.clone());
        let mut receiver = Bundle::new(config);
        let link = MemberLink::new(case.mtu).with_speed(1_000_000_000);
        let sender_ids = (0..case.members)
            .map(|_| sender.add_link(link).unwrap())
            .collect();
        let receiver_ids = (0..case.members)
            .map(|_| receiver.add_link(link).unwrap())
            .collect();
        Pair {
            sender,
            receiver,
            sender_ids,
            receiver_ids,
            queues: vec![Vec::new(); case.members],
            now: Instant::now(),
            next: 0,
        }
    }

    fn member_index(&self, member: MemberId) -> usize {
        self.sender_ids.iter().position(|&m| m == member).unwrap()
    }

    /// Sends `count` packets of the working set and reassembles them; returns the bytes
    /// delivered.
    fn run(&mut self, packets: &[Vec<u8>], count: usize, delivery: Delivery) -> usize {
        let mut delivered = 0;
        // What the members take to send a packet between them at 1 Gbit/s each.
        let step = Duration::from_nanos((PACKET_LEN as u64 * 8) / self.sender_ids.len() as u64);
        for _ in 0..count {
            let packet = &packets[self.next];
            self.next = (self.next + 1) % packets.len();
            self.now += step;
            self.sender.send(self.now, 0x0021, packet).unwrap();
            while let Some((member, frame)) = self.sender.poll_transmit() {
                let index = self.member_index(member);
                match delivery {
                    Delivery::InOrder => {
                        self.receiver
                            .handle_input(self.now, self.receiver_ids[index], &frame)
                            .unwrap();
                    }
                    Delivery::MembersReversed { .. } => self.queues[index].push(frame),
                }
            }
            while let Some(p) = self.receiver.poll_packet() {
                delivered += black_box(p).information.len();
            }
        }
        for index in (0..self.queues.len()).rev() {
            for frame in self.queues[index].drain(..) {
                self.receiver
                    .handle_input(self.now, self.receiver_ids[index], &frame)
                    .unwrap();
                while let Some(p) = self.receiver.poll_packet() {
                    delivered += black_box(p).information.len();
                }
            }
        }
        delivered
    }
}

fn cases() -> [Case; 3] {
    [
        Case {
            name: "2-links-in-order",
            members: 2,
            mtu: 1500,
            delivery: Delivery::InOrder,
        },
        Case {
            name: "2-links-member-batches",
            members: 2,
            mtu: 1500,
            delivery: Delivery::MembersReversed { batch: 128 },
        },
        Case {
            name: "4-links-mtu-256-reversed",
            members: 4,
            mtu: 256,
            delivery: Delivery::MembersReversed { batch: 100 },
        },
    ]
}

fn batch(case: &Case) -> usize {
    match case.delivery {
        Delivery::InOrder => 128,
        Delivery::MembersReversed { batch } => batch,
    }
}

fn bench_multilink(c: &mut Criterion) {
    let packets = packets();
    for case in cases() {
        // One untimed pass over the working set: nothing may be lost, and the memory used.
        let mut pair = Pair::new(&case);
        let batch = batch(&case);
        let rounds = WORKING_SET / batch;
        let delivered: usize = (0..rounds)
            .map(|_| pair.run(&packets, batch, case.delivery))
            .sum();
        assert_eq!(
            delivered,
            rounds * batch * PACKET_LEN,
            "{}: packets lost",
            case.name
        );
        let stats = pair.receiver.stats().received;
        assert_eq!(stats.sequence_numbers_lost + stats.fragments_discarded, 0);
        let fragments = pair.sender.stats().sent.fragments_sent as f64
            / pair.sender.stats().sent.packets_sent as f64;
        println!(
            "multilink/{}: {fragments:.1} fragments per packet; receiver buffered at most {} \
             bytes ({} fragments), bound {} bytes of fragment data, {} bytes in all",
            case.name,
            stats.peak_buffered_bytes,
            stats.peak_buffered_fragments,
            pair.receiver.limits().buffered_bytes,
            pair.receiver.memory_bound(),
        );

        let mut group = c.benchmark_group("multilink");
        group.throughput(Throughput::Bytes((batch * PACKET_LEN) as u64));
        group.bench_function(case.name, |b| {
            b.iter(|| pair.run(&packets, batch, case.delivery))
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = bench_multilink
}
criterion_main!(benches);
