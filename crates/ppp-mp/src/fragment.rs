//! The sending side: splits PPP packets into MP fragments across member links.
//!
//! # Fragmentation policy
//!
//! The fragmenter keeps, for each member, an estimate of when the member's transmit queue will
//! have drained (`busy_until`): every fragment queued on a member adds its size divided by the
//! member's speed, and [`Fragmenter::report_queued_bytes`] resets the estimate from what the
//! caller sees in the member's device queue. A packet is then placed so that it finishes as
//! early as possible:
//!
//! - A packet whose MP payload (protocol field and information) is at most
//!   [`FragmenterConfig::fragmentation_threshold`] bytes goes whole, as one fragment with both
//!   B and E set, on the member that would finish sending it first.
//! - A larger packet is split by water-filling: each member gets a share in proportion to its
//!   speed, minus what it still has queued, so that all shares finish at the same time; a member
//!   so busy that it would finish after that time gets nothing. A share smaller than
//!   [`FragmenterConfig::min_fragment_size`] is given to the other members instead (so a packet
//!   only slightly above the threshold is not cut into slivers).
//! - A member's share larger than what one frame on it can carry (its MTU less the MP header)
//!   becomes several fragments of near-equal size on that member.
//!
//! Fragments take consecutive sequence numbers in data order; the first carries B, the last E.
//! The transmit queue is one FIFO in sequence order, so every member sees strictly increasing
//! sequence numbers, as RFC 1990 §4.1 requires, as long as the caller sends each member's
//! frames in the order they are polled.
//!
//! The protocol field goes inside the fragmented data, compressed to one byte when
//! [`FragmenterConfig::protocol_field_compression`] is set and the protocol number is below
//! 0x100 (RFC 1661 §6.5).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tracing::debug;

use crate::MemberId;
use crate::MpError;
use crate::header::{FragmentSummary, MpHeader, SequenceFormat};

/// The speed assumed for a member whose speed is not known: 100 Mbit/s. Only ratios matter
/// when no member's speed is known.
pub const DEFAULT_BITS_PER_SECOND: u64 = 100_000_000;

/// What the sender needs to know about a member link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemberLink {
    /// The largest MP information field (header and fragment data) one frame on this link may
    /// carry: the peer's MRU on the link, less any per-link encapsulation the caller adds.
    pub mtu: u16,
    /// The link's speed in bits per second; 0 when unknown ([`DEFAULT_BITS_PER_SECOND`]).
    pub bits_per_second: u64,
}

impl MemberLink {
    /// A member link with MTU `mtu` and unknown speed.
    pub const fn new(mtu: u16) -> Self {
        MemberLink {
            mtu,
            bits_per_second: 0,
        }
    }

    /// The same link with a known speed.
    pub const fn with_speed(self, bits_per_second: u64) -> Self {
        MemberLink {
            bits_per_second,
            ..self
        }
    }
}

/// Configuration of the sending side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FragmenterConfig {
    /// The header format we send (short when the peer asked for the Short Sequence Number
    /// Header Format, LCP `ssnhf_tx`).
    pub format: SequenceFormat,
    /// The peer's MRRU: the longest information field we may send.
    pub peer_mrru: u16,
    /// Send the protocol field of packets below 0x100 as one byte (when Protocol-Field
    /// Compression was negotiated).
    pub protocol_field_compression: bool,
    /// Packets whose MP payload (protocol field and information) is at most this long go
    /// unfragmented on one member.
    pub fragmentation_threshold: usize,
    /// The smallest fragment worth splitting off for another member (at least 1).
    pub min_fragment_size: usize,
    /// The sequence number of the first fragment (RFC 1990 §11.2: 0; other values are for
    /// tests of the wrap-around).
    pub initial_sequence: u32,
    /// The most fragments the transmit queue holds before [`Fragmenter::send`] refuses
    /// packets with [`MpError::TransmitQueueFull`].
    pub max_queued_fragments: usize,
}

impl Default for FragmenterConfig {
    fn default() -> Self {
        FragmenterConfig {
            format: SequenceFormat::Long,
            peer_mrru: 1500,
            protocol_field_compression: false,
            fragmentation_threshold: 256,
            min_fragment_size: 64,
            initial_sequence: 0,
            max_queued_fragments: 1024,
        }
    }
}

/// Counters of the sending side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragmentationStats {
    /// Packets accepted by `send`.
    pub packets_sent: u64,
    /// Fragments queued.
    pub fragments_sent: u64,
    /// Bytes of MP payload (protocol field and information) sent.
    pub payload_bytes_sent: u64,
    /// Packets sent whole (one fragment with B and E).
    pub packets_unfragmented: u64,
    /// Packets refused because their information field exceeded the peer's MRRU.
    pub packets_too_long: u64,
    /// Packets refused because the transmit queue was full.
    pub packets_refused_queue_full: u64,
    /// Queued fragments moved to another member when theirs left the bundle.
    pub fragments_rerouted: u64,
    /// Queued fragments dropped when their member left and no other could carry them.
    pub fragments_dropped_member_left: u64,
}

#[derive(Clone, Debug)]
struct SendMember {
    id: MemberId,
    /// Largest fragment data per frame on this member (MTU less the MP header).
    capacity: usize,
    mtu: u16,
    bytes_per_second: f64,
    /// When the member's queue is estimated to drain.
    busy_until: Option<Instant>,
    /// Bytes queued here and not yet polled.
    unpolled_bytes: usize,
}

impl SendMember {
    /// Seconds from `now` until the member is free.
    fn start(&self, now: Instant) -> f64 {
        self.busy_until.map_or(0.0, |busy| {
            busy.saturating_duration_since(now).as_secs_f64()
        })
    }

    fn charge(&mut self, now: Instant, bytes: usize) {
        let base = self.busy_until.map_or(now, |busy| busy.max(now));
        let seconds = bytes as f64 / self.bytes_per_second;
        let busy = Duration::try_from_secs_f64(seconds)
            .ok()
            .and_then(|d| base.checked_add(d))
            .unwrap_or(base);
        self.busy_until = Some(busy);
    }
}

/// One piece of the plan for a packet: `len` bytes of payload on member index `member`.
#[derive(Clone, Copy, Debug)]
struct Piece {
    member: usize,
    len: usize,
}

/// A member's share while planning.
#[derive(Clone, Copy, Debug)]
struct Share {
    member: usize,
    start: f64,
    rate: f64,
    bytes: f64,
}

/// The sending side of a bundle: packets in, `(member, MP information field)` frames out.
#[derive(Debug)]
pub struct Fragmenter {
    config: FragmenterConfig,
    members: Vec<SendMember>,
    next_sequence: u32,
    queue: VecDeque<(MemberId, Vec<u8>)>,
    stats: FragmentationStats,
    shares: Vec<Share>,
    plan: Vec<Piece>,
    /// Where the search for a whole-packet member starts among equally good ones: members take
    /// turns, so every member carries traffic (the peer's loss detection needs a sequence
    /// number from every link, RFC 1990 §4.1).
    next_turn: usize,
}

impl Fragmenter {
    /// A fragmenter with no members yet. `min_fragment_size` is raised to 1 if 0.
    pub fn new(mut config: FragmenterConfig) -> Self {
        config.min_fragment_size = config.min_fragment_size.max(1);
        config.initial_sequence &= config.format.max_sequence();
        Fragmenter {
            next_sequence: config.initial_sequence,
            config,
            members: Vec::new(),
            queue: VecDeque::new(),
            stats: FragmentationStats::default(),
            shares: Vec::new(),
            plan: Vec::new(),
            next_turn: 0,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &FragmenterConfig {
        &self.config
    }

    /// The sequence number the next fragment will carry.
    pub fn next_sequence(&self) -> u32 {
        self.next_sequence
    }

    /// Counters.
    pub fn stats(&self) -> FragmentationStats {
        self.stats
    }

    /// Fragments waiting to be polled.
    pub fn queued_fragments(&self) -> usize {
        self.queue.len()
    }

    /// Adds a member link.
    ///
    /// # Errors
    ///
    /// [`MpError::MtuTooSmall`] when the MTU leaves no room after the header.
    pub fn add_member(&mut self, id: MemberId, link: MemberLink) -> Result<(), MpError> {
        let header = self.config.format.header_len();
        let required = header as u16 + 1;
        if link.mtu < required {
            return Err(MpError::MtuTooSmall {
                mtu: link.mtu,
                required,
            });
        }
        self.members.retain(|m| m.id != id);
        self.members.push(SendMember {
            id,
            capacity: usize::from(link.mtu) - header,
            mtu: link.mtu,
            bytes_per_second: bytes_per_second(link.bits_per_second),
            busy_until: None,
            unpolled_bytes: 0,
        });
        Ok(())
    }

    /// Removes a member. Its fragments still in the transmit queue move to the member that will
    /// be free first among those whose MTU fits them (the queue keeps its sequence order, so
    /// every member still sees increasing sequence numbers); fragments no member can carry are
    /// dropped and counted, and the peer's reassembly sees them as lost.
    ///
    /// # Errors
    ///
    /// [`MpError::UnknownMember`].
    pub fn remove_member(&mut self, now: Instant, id: MemberId) -> Result<(), MpError> {
        let index = self.index(id)?;
        self.members.swap_remove(index);
        let mut kept = VecDeque::with_capacity(self.queue.len());
        for (member, frame) in self.queue.drain(..) {
            if member != id {
                kept.push_back((member, frame));
                continue;
            }
            let target = self
                .members
                .iter_mut()
                .filter(|m| usize::from(m.mtu) >= frame.len())
                .min_by(|a, b| a.start(now).total_cmp(&b.start(now)));
            match target {
                Some(target) => {
                    target.charge(now, frame.len());
                    target.unpolled_bytes += frame.len();
                    self.stats.fragments_rerouted += 1;
                    debug!("MP fragment moved from {id} to {}", target.id);
                    kept.push_back((target.id, frame));
                }
                None => {
                    self.stats.fragments_dropped_member_left += 1;
                    debug!("MP fragment dropped: {id} left and no member can carry it");
                }
            }
        }
        self.queue = kept;
        Ok(())
    }

    /// Changes a member's speed.
    ///
    /// # Errors
    ///
    /// [`MpError::UnknownMember`].
    pub fn set_speed(&mut self, id: MemberId, bits_per_second: u64) -> Result<(), MpError> {
        let index = self.index(id)?;
        self.members[index].bytes_per_second = bytes_per_second(bits_per_second);
        Ok(())
    }

    /// Reports how many bytes wait in a member's device queue at `now` (frames already polled
    /// but not yet on the wire). Fragments still in this fragmenter's own queue are added.
    ///
    /// # Errors
    ///
    /// [`MpError::UnknownMember`].
    pub fn report_queued_bytes(
        &mut self,
        now: Instant,
        id: MemberId,
        queued_bytes: usize,
    ) -> Result<(), MpError> {
        let index = self.index(id)?;
        let member = &mut self.members[index];
        member.busy_until = None;
        member.charge(now, queued_bytes.saturating_add(member.unpolled_bytes));
        Ok(())
    }

    /// Fragments a packet of protocol `protocol` and information field `information` and queues
    /// the fragments.
    ///
    /// # Errors
    ///
    /// [`MpError::InvalidProtocol`], [`MpError::PacketTooLong`] (longer than the peer's MRRU),
    /// [`MpError::NoMembers`], [`MpError::TransmitQueueFull`]. Nothing is queued and no sequence
    /// number is used on error.
    pub fn send(&mut self, now: Instant, protocol: u16, information: &[u8]) -> Result<(), MpError> {
        if protocol & 0x0101 != 0x0001 {
            return Err(MpError::InvalidProtocol(protocol));
        }
        if information.len() > usize::from(self.config.peer_mrru) {
            self.stats.packets_too_long += 1;
            return Err(MpError::PacketTooLong {
                len: information.len(),
                mrru: self.config.peer_mrru,
            });
        }
        if self.members.is_empty() {
            return Err(MpError::NoMembers);
        }
        let protocol_bytes = protocol.to_be_bytes();
        let protocol_field: &[u8] = if self.config.protocol_field_compression && protocol < 0x100 {
            &protocol_bytes[1..]
        } else {
            &protocol_bytes
        };
        let total = protocol_field.len() + information.len();
        self.plan(now, total);
        let needed = self.plan.len();
        if self.queue.len() + needed > self.config.max_queued_fragments {
            self.stats.packets_refused_queue_full += 1;
            return Err(MpError::TransmitQueueFull {
                queued: self.queue.len(),
                needed,
                limit: self.config.max_queued_fragments,
            });
        }

        let format = self.config.format;
        let header_len = format.header_len();
        let mut offset = 0;
        for (i, piece) in self.plan.iter().enumerate() {
            let header = MpHeader {
                format,
                begin: i == 0,
                end: i + 1 == needed,
                sequence: self.next_sequence,
            };
            let mut frame = Vec::with_capacity(header_len + piece.len);
            frame.extend_from_slice(&header.encode()[..header_len]);
            copy_payload(&mut frame, protocol_field, information, offset, piece.len);
            offset += piece.len;
            let member = &mut self.members[piece.member];
            member.charge(now, frame.len());
            member.unpolled_bytes += frame.len();
            debug!(
                "sent {} on {}",
                FragmentSummary {
                    header,
                    data_len: piece.len
                },
                member.id
            );
            self.queue.push_back((member.id, frame));
            self.next_sequence = format.next(self.next_sequence);
        }
        self.stats.packets_sent += 1;
        self.stats.fragments_sent += needed as u64;
        self.stats.payload_bytes_sent += total as u64;
        if needed == 1 {
            self.stats.packets_unfragmented += 1;
        }
        Ok(())
    }

    /// The next fragment to send: the member to send it on and the MP information field to put
    /// in a frame of protocol 0x003D. Poll until `None` after every [`send`](Self::send).
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<(MemberId, Vec<u8>)> {
        let (id, frame) = self.queue.pop_front()?;
        if let Some(member) = self.members.iter_mut().find(|m| m.id == id) {
            member.unpolled_bytes = member.unpolled_bytes.saturating_sub(frame.len());
        }
        Some((id, frame))
    }

    fn index(&self, id: MemberId) -> Result<usize, MpError> {
        self.members
            .iter()
            .position(|m| m.id == id)
            .ok_or(MpError::UnknownMember(id))
    }

    /// Fills `self.plan` with the pieces of a `total`-byte payload, in data order.
    fn plan(&mut self, now: Instant, total: usize) {
        self.plan.clear();
        if total <= self.config.fragmentation_threshold {
            let finish = |m: &SendMember| m.start(now) + total as f64 / m.bytes_per_second;
            let soonest = self
                .members
                .iter()
                .filter(|m| m.capacity >= total)
                .map(finish)
                .min_by(f64::total_cmp);
            if let Some(soonest) = soonest {
                // Among the members that finish it soonest (within a microsecond), the next in
                // turn.
                let count = self.members.len();
                let member = (0..count)
                    .map(|k| (self.next_turn + k) % count)
                    .find(|&i| {
                        let m = &self.members[i];
                        m.capacity >= total && finish(m) <= soonest + 1e-6
                    })
                    .unwrap_or(0);
                self.next_turn = (member + 1) % count;
                self.plan.push(Piece { member, len: total });
                return;
            }
        }

        self.shares.clear();
        self.shares
            .extend(self.members.iter().enumerate().map(|(i, m)| Share {
                member: i,
                start: m.start(now),
                rate: m.bytes_per_second,
                bytes: 0.0,
            }));
        self.shares.sort_by(|a, b| a.start.total_cmp(&b.start));
        loop {
            water_fill(&mut self.shares, total as f64);
            if self.shares.len() <= 1 {
                break;
            }
            // Give a sliver share to the others rather than cut a tiny fragment.
            let smallest = self
                .shares
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.bytes.total_cmp(&b.1.bytes))
                .map(|(i, s)| (i, s.bytes));
            match smallest {
                Some((i, bytes)) if bytes < self.config.min_fragment_size as f64 => {
                    self.shares.remove(i);
                }
                _ => break,
            }
        }

        // Whole bytes: round each share, then give the difference to the largest.
        let mut assigned = 0usize;
        let mut largest = 0;
        let mut largest_bytes = -1.0;
        for (i, share) in self.shares.iter_mut().enumerate() {
            share.bytes = share.bytes.max(0.0).round().min(total as f64);
            assigned += share.bytes as usize;
            if share.bytes > largest_bytes {
                largest = i;
                largest_bytes = share.bytes;
            }
        }
        if assigned > total {
            let excess = (assigned - total) as f64;
            // Rounding gave out a byte or two too many: take them from the largest share, and
            // should that not be enough (it always is), start over with everything there.
            if self.shares[largest].bytes >= excess {
                self.shares[largest].bytes -= excess;
            } else {
                for share in &mut self.shares {
                    share.bytes = 0.0;
                }
                self.shares[largest].bytes = total as f64;
            }
        } else {
            self.shares[largest].bytes += (total - assigned) as f64;
        }

        for share in &self.shares {
            let bytes = share.bytes as usize;
            if bytes == 0 {
                continue;
            }
            let capacity = self.members[share.member].capacity;
            let pieces = bytes.div_ceil(capacity);
            let base = bytes / pieces;
            let extra = bytes % pieces;
            for p in 0..pieces {
                self.plan.push(Piece {
                    member: share.member,
                    len: base + usize::from(p < extra),
                });
            }
        }
        // The payload has at least the protocol field, and the shares add up to it: the plan
        // is never empty.
    }
}

/// Water-filling over `shares` sorted by start time: finds the finishing time `T` at which the
/// members that start before it can send `total` bytes together, and gives each
/// `rate * (T - start)`; members starting after `T` are removed.
fn water_fill(shares: &mut Vec<Share>, total: f64) {
    let mut rate_sum = 0.0;
    let mut weighted_start = 0.0;
    let mut finish = 0.0;
    let mut used = 0;
    for (i, share) in shares.iter().enumerate() {
        if i > 0 && finish <= share.start {
            break;
        }
        rate_sum += share.rate;
        weighted_start += share.rate * share.start;
        finish = (total + weighted_start) / rate_sum;
        used = i + 1;
    }
    shares.truncate(used.max(1));
    for share in shares.iter_mut() {
        share.bytes = share.rate * (finish - share.start);
    }
}

fn bytes_per_second(bits_per_second: u64) -> f64 {
    let bits = if bits_per_second == 0 {
        DEFAULT_BITS_PER_SECOND
    } else {
        bits_per_second
    };
    (bits as f64 / 8.0).max(1.0)
}

/// Appends `len` bytes of the payload `protocol_field ++ information` from `offset`.
fn copy_payload(
    frame: &mut Vec<u8>,
    protocol_field: &[u8],
    information: &[u8],
    offset: usize,
    len: usize,
) {
    let end = offset + len;
    let split = protocol_field.len();
    if offset < split {
        frame.extend_from_slice(&protocol_field[offset..end.min(split)]);
    }
    if end > split {
        frame.extend_from_slice(&information[offset.max(split) - split..end - split]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(n: u32) -> MemberId {
        MemberId(n)
    }

    fn drain(f: &mut Fragmenter) -> Vec<(MemberId, MpHeader, Vec<u8>)> {
        let format = f.config().format;
        std::iter::from_fn(|| f.poll_transmit())
            .map(|(m, frame)| {
                let (h, data) = MpHeader::parse(format, &frame).unwrap();
                (m, h, data.to_vec())
            })
            .collect()
    }

    #[test]
    fn small_packets_go_whole_and_alternate_between_equal_members() {
        let now = Instant::now();
        let mut f = Fragmenter::new(FragmenterConfig::default());
        f.add_member(member(1), MemberLink::new(1500)).unwrap();
        f.add_member(member(2), MemberLink::new(1500)).unwrap();
        for _ in 0..4 {
            f.send(now, 0x0021, &[0x45; 100]).unwrap();
        }
        let frames = drain(&mut f);
        assert_eq!(frames.len(), 4);
        let members: Vec<_> = frames.iter().map(|(m, _, _)| m.0).collect();
        assert_eq!(members, [1, 2, 1, 2]);
        for (i, (_, h, data)) in frames.iter().enumerate() {
            assert!(h.begin && h.end);
            assert_eq!(h.sequence, i as u32);
            assert_eq!(&data[..2], &[0x00, 0x21]);
            assert_eq!(data.len(), 102);
        }
        assert_eq!(f.stats().packets_unfragmented, 4);
    }

    /// Sparse traffic (each packet sent when the links are idle again): members still take
    /// turns, so the peer hears a sequence number on every link (pppd's loss detection waits for
    /// one from each).
    #[test]
    fn idle_members_take_turns_with_small_packets() {
        let mut now = Instant::now();
        let mut f = Fragmenter::new(FragmenterConfig::default());
        for n in 1..=3 {
            f.add_member(member(n), MemberLink::new(1500)).unwrap();
        }
        let mut members = Vec::new();
        for _ in 0..6 {
            f.send(now, 0x8021, &[1, 1, 0, 4]).unwrap();
            members.extend(drain(&mut f).into_iter().map(|(m, _, _)| m.0));
            now += Duration::from_secs(1);
        }
        assert_eq!(members, [1, 2, 3, 1, 2, 3]);
    }

    #[test]
    fn split_follows_link_speed() {
        let now = Instant::now();
        let mut f = Fragmenter::new(FragmenterConfig {
            protocol_field_compression: true,
            ..FragmenterConfig::default()
        });
        f.add_member(member(1), MemberLink::new(1500).with_speed(3_000_000))
            .unwrap();
        f.add_member(member(2), MemberLink::new(1500).with_speed(1_000_000))
            .unwrap();
        f.send(now, 0x0021, &[7; 1199]).unwrap();
        let frames = drain(&mut f);
        assert_eq!(frames.len(), 2);
        // 1200 bytes of payload (one-byte protocol field): 900 on the fast link, 300 on the slow.
        assert_eq!(frames[0].0, member(1));
        assert_eq!(frames[0].2.len(), 900);
        assert_eq!(frames[0].2[0], 0x21);
        assert_eq!(frames[1].0, member(2));
        assert_eq!(frames[1].2.len(), 300);
        assert!(frames[0].1.begin && !frames[0].1.end);
        assert!(!frames[1].1.begin && frames[1].1.end);
    }

    #[test]
    fn backlog_shifts_the_split() {
        let now = Instant::now();
        let mut f = Fragmenter::new(FragmenterConfig::default());
        f.add_member(member(1), MemberLink::new(1500).with_speed(8_000_000))
            .unwrap();
        f.add_member(member(2), MemberLink::new(1500).with_speed(8_000_000))
            .unwrap();
        // Member 1 has 400 bytes waiting: both finish together when member 2 takes 400 more.
        f.report_queued_bytes(now, member(1), 400).unwrap();
        f.send(now, 0x0021, &[1; 998]).unwrap();
        let frames = drain(&mut f);
        let on = |id| {
            frames
                .iter()
                .filter(|(m, _, _)| *m == member(id))
                .map(|(_, _, d)| d.len())
                .sum::<usize>()
        };
        assert_eq!(on(1), 300);
        assert_eq!(on(2), 700);
        // A member busy for longer than the whole packet takes gets nothing.
        f.report_queued_bytes(now, member(1), 100_000).unwrap();
        f.report_queued_bytes(now, member(2), 0).unwrap();
        f.send(now, 0x0021, &[1; 998]).unwrap();
        let frames = drain(&mut f);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].0, member(2));
    }

    #[test]
    fn mtu_is_respected_and_min_fragment_applies() {
        let now = Instant::now();
        let mut f = Fragmenter::new(FragmenterConfig {
            peer_mrru: 1614,
            ..FragmenterConfig::default()
        });
        f.add_member(member(1), MemberLink::new(1492)).unwrap();
        f.send(now, 0x0021, &[9; 1500]).unwrap();
        let frames = drain(&mut f);
        assert_eq!(frames.len(), 2);
        assert!(frames.iter().all(|(_, _, d)| d.len() + 4 <= 1492));
        assert_eq!(frames.iter().map(|(_, _, d)| d.len()).sum::<usize>(), 1502);

        // A 270-byte payload over a fast and a very slow link: the slow share would be a sliver.
        let mut f = Fragmenter::new(FragmenterConfig::default());
        f.add_member(member(1), MemberLink::new(1500).with_speed(100_000_000))
            .unwrap();
        f.add_member(member(2), MemberLink::new(1500).with_speed(1_000_000))
            .unwrap();
        f.send(now, 0x0021, &[9; 268]).unwrap();
        let frames = drain(&mut f);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].0, member(1));
    }

    #[test]
    fn errors_leave_no_trace() {
        let now = Instant::now();
        let mut f = Fragmenter::new(FragmenterConfig {
            max_queued_fragments: 3,
            ..FragmenterConfig::default()
        });
        assert_eq!(f.send(now, 0x0021, &[]), Err(MpError::NoMembers));
        assert_eq!(
            f.add_member(member(1), MemberLink::new(4)),
            Err(MpError::MtuTooSmall {
                mtu: 4,
                required: 5
            })
        );
        f.add_member(member(1), MemberLink::new(100)).unwrap();
        assert_eq!(
            f.send(now, 0x0020, &[]),
            Err(MpError::InvalidProtocol(0x0020))
        );
        assert_eq!(
            f.send(now, 0x0121, &[]),
            Err(MpError::InvalidProtocol(0x0121))
        );
        assert_eq!(
            f.send(now, 0x0021, &[0; 1501]),
            Err(MpError::PacketTooLong {
                len: 1501,
                mrru: 1500
            })
        );
        // 1000 bytes over 96-byte fragments: 11 fragments, more than the queue takes.
        assert!(matches!(
            f.send(now, 0x0021, &[0; 1000]),
            Err(MpError::TransmitQueueFull { needed: 11, .. })
        ));
        assert_eq!(f.next_sequence(), 0);
        assert_eq!(f.queued_fragments(), 0);
        assert_eq!(f.stats().packets_refused_queue_full, 1);
    }

    #[test]
    fn sequence_wraps_in_both_formats() {
        let now = Instant::now();
        for (format, start) in [
            (SequenceFormat::Long, 0xFFFFFE),
            (SequenceFormat::Short, 0xFFE),
        ] {
            let mut f = Fragmenter::new(FragmenterConfig {
                format,
                initial_sequence: start,
                ..FragmenterConfig::default()
            });
            f.add_member(member(1), MemberLink::new(400)).unwrap();
            f.send(now, 0x0021, &[0; 1400]).unwrap();
            let seqs: Vec<u32> = drain(&mut f).iter().map(|(_, h, _)| h.sequence).collect();
            assert_eq!(seqs, [start, start + 1, 0, 1]);
        }
    }

    #[test]
    fn removed_member_fragments_move_to_another() {
        let now = Instant::now();
        let mut f = Fragmenter::new(FragmenterConfig::default());
        f.add_member(member(1), MemberLink::new(400)).unwrap();
        f.add_member(member(2), MemberLink::new(1000)).unwrap();
        f.send(now, 0x0021, &[0; 1400]).unwrap();
        assert!(f.queue.iter().any(|(m, _)| *m == member(1)));
        f.remove_member(now, member(1)).unwrap();
        let frames = drain(&mut f);
        assert!(frames.iter().all(|(m, _, _)| *m == member(2)));
        assert_eq!(f.stats().fragments_rerouted, 2);
        assert_eq!(frames.len() as u64, f.stats().fragments_sent);
        // Still in sequence order: member 2 sees increasing numbers.
        let seqs: Vec<u32> = frames.iter().map(|(_, h, _)| h.sequence).collect();
        assert_eq!(seqs, [0, 1, 2]);
        assert_eq!(
            f.remove_member(now, member(1)),
            Err(MpError::UnknownMember(member(1)))
        );

        // Fragments no remaining member can carry are dropped.
        let mut f = Fragmenter::new(FragmenterConfig::default());
        f.add_member(member(1), MemberLink::new(1500)).unwrap();
        f.add_member(member(2), MemberLink::new(600)).unwrap();
        f.send(now, 0x0021, &[0; 1400]).unwrap();
        f.remove_member(now, member(1)).unwrap();
        let frames = drain(&mut f);
        assert_eq!(f.stats().fragments_dropped_member_left, 1);
        assert_eq!(
            frames.len() as u64 + f.stats().fragments_dropped_member_left,
            f.stats().fragments_sent
        );
    }
}
