//! The receiving side: reassembles packets from MP fragments arriving on several member links.
//!
//! # Rules
//!
//! Packets are delivered strictly in sequence-number order. `expected` is the sequence number
//! of the next fragment to consume; a fragment that arrives at `expected` is consumed at once
//! (appended to the packet in progress), others are kept in a window of slots until the
//! fragments before them have arrived or have been declared lost. Sequence numbers are compared
//! wrap-safe ([`SequenceFormat::distance`]): a fragment before `expected` is late (or a
//! duplicate of one already consumed) and is dropped.
//!
//! **Loss detection (RFC 1990 §4.1).** Each member link delivers fragments in the order they were
//! sent, and the sender gives each member increasing sequence numbers. So once every member has
//! delivered a fragment numbered at least `M` (M = the minimum over the members of the highest
//! sequence number received on each), a fragment numbered below `M` that has not arrived never
//! will: it is declared lost, the packet it belonged to is dropped (the fragments before it back
//! to the B fragment, and those after it up to the next B fragment), and reassembly continues.
//! A fragment with B set ends the packet before it, complete or not.
//!
//! **Idle members.** A member that has carried nothing recently holds `M` back: its highest
//! sequence number stays old. That never delays packets whose fragments all arrived, only the
//! detection of losses. Three rules keep a loss from stalling delivery indefinitely:
//!
//! 1. A member that joins counts as having received everything before `expected` (it holds `M`
//!    at `expected` until it carries traffic), and a member that leaves no longer counts, which
//!    at once declares lost whatever was in flight on it.
//! 2. The reassembly timeout ([`ReassemblerConfig::reassembly_timeout`]): when delivery is
//!    blocked by a missing fragment, every fragment still missing below the highest sequence
//!    number that had arrived when the block began is declared lost once the block has lasted
//!    the timeout. Put differently: a fragment is lost when a higher-numbered one has been
//!    waiting for the timeout. A packet in progress whose next fragment has not come for the
//!    timeout is dropped the same way. [`Reassembler::poll_timeout`] gives the deadline.
//! 3. The memory bound (below): traffic that keeps coming pushes the oldest incomplete data out.
//!
//! So the timeout should exceed the largest difference in delay between the members; the default
//! is one second.
//!
//! A peer that restarts its numbering would have every fragment look late; after a full window
//! of consecutive late fragments the reassembler resynchronises on the latest one (counted in
//! [`ReassemblyStats::resyncs`]).
//!
//! # Memory bound
//!
//! - Fragments kept out of order: at most [`ReassemblerConfig::max_buffered_fragments`] sequence
//!   numbers ahead of `expected` (rounded up to a power of two, at most a quarter of the
//!   sequence space: 1024 in the short format). A fragment further ahead moves the window,
//!   dropping the oldest data.
//! - Bytes: the fragments kept plus the packet in progress hold at most
//!   [`ReassemblerConfig::max_buffered_bytes`] bytes of data (raised to at least twice the
//!   largest packet, MRRU + 2). A fragment that would go over drops the oldest incomplete
//!   packet, as often as needed ([`ReassemblyStats::overflows`]).
//! - Reassembled packets wait for [`Reassembler::poll_packet`] in a queue that holds as much as
//!   one call can release: [`ReassemblerConfig::max_buffered_bytes`] of information and one
//!   packet more than the window has fragments. A caller that drains the queue after every call,
//!   as it should, never loses a packet to it; beyond it packets are dropped and counted
//!   ([`ReassemblyStats::packets_dropped_queue_full`]).
//!
//! [`Reassembler::memory_bound`] adds these up (with the bookkeeping) into one number of bytes:
//! about twice `max_buffered_bytes`.
//! A fragment longer than the largest packet is refused before anything is stored.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tracing::debug;

use crate::MemberId;
use crate::MpError;
use crate::header::{FragmentSummary, MpHeader, SequenceFormat};

/// Configuration of the receiving side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReassemblerConfig {
    /// The header format the peer sends (short when we asked for the Short Sequence Number
    /// Header Format, LCP `ssnhf_rx`).
    pub format: SequenceFormat,
    /// Our MRRU: the longest information field of a reassembled packet we accept.
    pub mrru: u16,
    /// The sequence number of the peer's first fragment (RFC 1990 §11.2: 0; other values are
    /// for tests of the wrap-around).
    pub initial_sequence: u32,
    /// The most bytes of fragment data kept (out-of-order fragments and the packet in progress).
    pub max_buffered_bytes: usize,
    /// How far ahead of the next expected sequence number fragments are kept.
    pub max_buffered_fragments: usize,
    /// How long a missing fragment may hold back later ones before it is declared lost.
    pub reassembly_timeout: Duration,
}

impl Default for ReassemblerConfig {
    fn default() -> Self {
        ReassemblerConfig {
            format: SequenceFormat::Long,
            mrru: 1500,
            initial_sequence: 0,
            max_buffered_bytes: 256 * 1024,
            max_buffered_fragments: 1024,
            reassembly_timeout: Duration::from_secs(1),
        }
    }
}

/// A reassembled PPP packet.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Packet {
    /// The PPP protocol number.
    pub protocol: u16,
    /// The information field.
    pub information: Vec<u8>,
}

/// Counters of the receiving side. Every well-formed fragment from a member ends up in exactly
/// one of `fragments_too_long`, `duplicate_fragments`, `late_fragments`,
/// `fragments_delivered`, `fragments_discarded`, `null_fragments`, or is still buffered
/// ([`Reassembler::buffered_fragments`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Fragments with a valid header from a member.
    pub fragments_received: u64,
    /// Frames whose MP header did not parse.
    pub malformed_headers: u64,
    /// Frames from a member not in the bundle.
    pub unknown_member: u64,
    /// Fragments longer than any fragment of a packet within our MRRU.
    pub fragments_too_long: u64,
    /// Fragments whose sequence number was already buffered.
    pub duplicate_fragments: u64,
    /// Fragments older than the next expected one (already consumed or declared lost).
    pub late_fragments: u64,
    /// Fragments that went into delivered packets.
    pub fragments_delivered: u64,
    /// Fragments dropped with their incomplete, too long or malformed packet, or to keep the
    /// memory bound.
    pub fragments_discarded: u64,
    /// Empty fragments with both B and E set (no packet).
    pub null_fragments: u64,
    /// Sequence numbers declared lost without their fragment ever arriving.
    pub sequence_numbers_lost: u64,
    /// Packets queued for `poll_packet`.
    pub packets_delivered: u64,
    /// Partly reassembled packets dropped (a fragment lost, or a new B fragment before E).
    pub packets_discarded: u64,
    /// Packets dropped for exceeding our MRRU.
    pub packets_too_long: u64,
    /// Packets dropped without a valid protocol field.
    pub packets_malformed: u64,
    /// Packets dropped because the delivery queue was full.
    pub packets_dropped_queue_full: u64,
    /// Times the memory bound made the oldest data go.
    pub overflows: u64,
    /// Times the reassembly timeout declared fragments lost.
    pub timeouts: u64,
    /// Times the receiver resynchronised on a peer that restarted its numbering.
    pub resyncs: u64,
    /// The most bytes of fragment data held at once.
    pub peak_buffered_bytes: usize,
    /// The most fragments held at once.
    pub peak_buffered_fragments: usize,
}

/// The limits a [`Reassembler`] works within, after its configuration was normalised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryLimits {
    /// Bytes of fragment data held at most.
    pub buffered_bytes: usize,
    /// Sequence numbers ahead of the next expected one that are kept (a power of two).
    pub window: usize,
    /// Reassembled packets waiting at most (the window plus one).
    pub queued_packets: usize,
    /// Bytes of information in reassembled packets waiting at most (the same as
    /// `buffered_bytes`).
    pub queued_bytes: usize,
    /// The longest reassembled packet, protocol field included (MRRU + 2).
    pub packet_len: usize,
}

#[derive(Debug)]
struct Stored {
    begin: bool,
    end: bool,
    data: Vec<u8>,
}

#[derive(Clone, Copy, Debug)]
enum ProtocolField {
    Empty,
    High(u8),
    Complete(u16),
}

#[derive(Debug)]
struct Assembly {
    protocol: ProtocolField,
    information: Vec<u8>,
    fragments: u64,
}

#[derive(Clone, Copy, Debug)]
struct Stall {
    since: Instant,
    /// Fragments missing before this sequence number are lost once the timeout passes.
    horizon: u32,
}

#[derive(Clone, Copy, Debug)]
struct ReceiveMember {
    id: MemberId,
    /// The highest sequence number received on the member (never before `expected - 1`).
    highest: u32,
}

/// Reads protocol-field bytes from the start of `data` into `field`; returns the new state and
/// the bytes after the field, or `None` when the field is invalid (RFC 1661 §2: the low byte is
/// odd, the high byte even).
fn take_protocol_field(
    mut field: ProtocolField,
    mut data: &[u8],
) -> Option<(ProtocolField, &[u8])> {
    loop {
        let (&byte, rest) = match (field, data.split_first()) {
            (ProtocolField::Complete(_), _) | (_, None) => return Some((field, data)),
            (_, Some(split)) => split,
        };
        data = rest;
        field = match field {
            ProtocolField::Empty if byte & 1 == 1 => ProtocolField::Complete(u16::from(byte)),
            ProtocolField::Empty => ProtocolField::High(byte),
            ProtocolField::High(high) if byte & 1 == 1 => {
                ProtocolField::Complete(u16::from(high) << 8 | u16::from(byte))
            }
            _ => return None,
        };
    }
}

/// The receiving side of a bundle: MP information fields from the members in, packets out.
#[derive(Debug)]
pub struct Reassembler {
    format: SequenceFormat,
    mrru: usize,
    limits: MemoryLimits,
    /// Bytes out-of-order fragments may use: the bound less room for the packet in progress.
    store_limit: usize,
    timeout: Duration,
    expected: u32,
    assembly: Option<Assembly>,
    /// Out-of-order fragments, at `sequence % window` (allocated at the first one).
    slots: Vec<Option<Stored>>,
    stored_fragments: usize,
    stored_bytes: usize,
    highest_stored: u32,
    members: Vec<ReceiveMember>,
    stall: Option<Stall>,
    forced_horizon: Option<u32>,
    consecutive_late: usize,
    delivered: VecDeque<Packet>,
    /// Bytes of information in `delivered`.
    queued_bytes: usize,
    stats: ReassemblyStats,
}

impl Reassembler {
    /// A reassembler with no members yet. The limits are normalised as described in the
    /// [module docs](self); [`limits`](Self::limits) gives the result.
    pub fn new(config: ReassemblerConfig) -> Self {
        let format = config.format;
        let packet_len = usize::from(config.mrru) + 2;
        let max_window = 1usize << (format.bits() - 2);
        let window = config
            .max_buffered_fragments
            .clamp(2, max_window)
            .next_power_of_two()
            .min(max_window);
        let buffered_bytes = config.max_buffered_bytes.max(2 * packet_len);
        let limits = MemoryLimits {
            buffered_bytes,
            window,
            queued_packets: window + 1,
            queued_bytes: buffered_bytes,
            packet_len,
        };
        Reassembler {
            format,
            mrru: usize::from(config.mrru),
            limits,
            store_limit: buffered_bytes - packet_len,
            timeout: config.reassembly_timeout,
            expected: config.initial_sequence & format.max_sequence(),
            assembly: None,
            slots: Vec::new(),
            stored_fragments: 0,
            stored_bytes: 0,
            highest_stored: 0,
            members: Vec::new(),
            stall: None,
            forced_horizon: None,
            consecutive_late: 0,
            delivered: VecDeque::new(),
            queued_bytes: 0,
            stats: ReassemblyStats::default(),
        }
    }

    /// The header format expected from the peer.
    pub fn format(&self) -> SequenceFormat {
        self.format
    }

    /// The limits in force.
    pub fn limits(&self) -> MemoryLimits {
        self.limits
    }

    /// The most bytes this reassembler holds: fragment data, reassembled packets waiting, and
    /// the bookkeeping for both (window slots, packet headers; the allocator's own overhead is
    /// not counted).
    pub fn memory_bound(&self) -> usize {
        let l = self.limits;
        l.buffered_bytes
            + l.queued_bytes
            + l.window * std::mem::size_of::<Option<Stored>>()
            + l.queued_packets * std::mem::size_of::<Packet>()
    }

    /// Counters.
    pub fn stats(&self) -> ReassemblyStats {
        self.stats
    }

    /// Bytes of fragment data held now (out-of-order fragments and the packet in progress).
    pub fn buffered_bytes(&self) -> usize {
        self.stored_bytes + self.assembly.as_ref().map_or(0, |a| a.information.len())
    }

    /// Fragments held now (out-of-order ones and those in the packet in progress).
    pub fn buffered_fragments(&self) -> usize {
        self.stored_fragments + self.assembly.as_ref().map_or(0, |a| a.fragments as usize)
    }

    /// Packets waiting for [`poll_packet`](Self::poll_packet).
    pub fn queued_packets(&self) -> usize {
        self.delivered.len()
    }

    /// The sequence number of the next fragment to consume.
    pub fn expected_sequence(&self) -> u32 {
        self.expected
    }

    /// Adds a member. Until it carries a fragment it holds loss detection at the next expected
    /// sequence number.
    pub fn add_member(&mut self, id: MemberId) {
        if !self.members.iter().any(|m| m.id == id) {
            self.members.push(ReceiveMember {
                id,
                highest: self.format.previous(self.expected),
            });
        }
    }

    /// Removes a member: what was in flight on it is lost, which may let reassembly go on.
    ///
    /// # Errors
    ///
    /// [`MpError::UnknownMember`].
    pub fn remove_member(&mut self, now: Instant, id: MemberId) -> Result<(), MpError> {
        let index = self
            .members
            .iter()
            .position(|m| m.id == id)
            .ok_or(MpError::UnknownMember(id))?;
        self.members.swap_remove(index);
        self.advance(now);
        Ok(())
    }

    /// Takes in one MP information field (the payload of a protocol 0x003D frame) received on
    /// `member`.
    ///
    /// # Errors
    ///
    /// [`MpError::UnknownMember`], a header error from [`MpHeader::parse`], or
    /// [`MpError::FragmentTooLong`]. Every case is also counted; none needs action.
    pub fn handle_input(
        &mut self,
        now: Instant,
        member: MemberId,
        mp_information: &[u8],
    ) -> Result<(), MpError> {
        let Some(index) = self.members.iter().position(|m| m.id == member) else {
            self.stats.unknown_member += 1;
            return Err(MpError::UnknownMember(member));
        };
        let (header, data) = match MpHeader::parse(self.format, mp_information) {
            Ok(parsed) => parsed,
            Err(error) => {
                self.stats.malformed_headers += 1;
                debug!("rcvd malformed MP header on {member}: {error}");
                return Err(error);
            }
        };
        self.stats.fragments_received += 1;
        debug!(
            "rcvd {} on {member}",
            FragmentSummary {
                header,
                data_len: data.len()
            }
        );
        let result = if data.len() > self.limits.packet_len {
            self.stats.fragments_too_long += 1;
            Err(MpError::FragmentTooLong {
                len: data.len(),
                limit: self.limits.packet_len,
            })
        } else {
            self.place(header, data);
            Ok(())
        };
        let highest = &mut self.members[index].highest;
        if self.format.is_before(*highest, header.sequence) {
            *highest = header.sequence;
        }
        self.advance(now);
        result
    }

    /// The deadline has come (or passed): declares lost what the reassembly timeout says is
    /// lost. Calling it early, or again, does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(stall) = self.stall else {
            return;
        };
        if self.deadline(stall).is_none_or(|deadline| now < deadline) {
            return;
        }
        self.stats.timeouts += 1;
        let horizon = match self.forced_horizon {
            Some(forced) if self.format.is_before(stall.horizon, forced) => forced,
            _ => stall.horizon,
        };
        debug!(
            "MP reassembly timeout: fragments missing before {:#x} are lost",
            horizon
        );
        self.forced_horizon = Some(horizon);
        self.stall = None;
        self.advance(now);
    }

    /// The next reassembled packet. Poll until `None` after every input and timeout.
    #[must_use]
    pub fn poll_packet(&mut self) -> Option<Packet> {
        let packet = self.delivered.pop_front()?;
        self.queued_bytes -= packet.information.len();
        Some(packet)
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due: while a missing fragment blocks
    /// delivery. Ask again after every input.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.stall.and_then(|stall| self.deadline(stall))
    }

    fn deadline(&self, stall: Stall) -> Option<Instant> {
        stall.since.checked_add(self.timeout)
    }

    fn slot(&self, sequence: u32) -> usize {
        sequence as usize & (self.limits.window - 1)
    }

    /// Puts a fragment where it belongs: consumed if it is the next one, kept if it is ahead,
    /// dropped if it is late, a duplicate, or pushed out by the memory bound.
    fn place(&mut self, header: MpHeader, data: &[u8]) {
        let format = self.format;
        let sequence = header.sequence;
        let mut offset = format.distance(self.expected, sequence);
        if offset < 0 {
            self.consecutive_late += 1;
            if self.consecutive_late < self.limits.window {
                self.stats.late_fragments += 1;
                return;
            }
            self.resync(sequence);
            offset = 0;
        }
        self.consecutive_late = 0;
        if offset as usize >= self.limits.window {
            self.slide_window(format.add(sequence, 1u32.wrapping_sub(self.limits.window as u32)));
        }
        loop {
            offset = format.distance(self.expected, sequence);
            if offset < 0 {
                // Pushed out with the oldest data to make room.
                self.stats.fragments_discarded += 1;
                return;
            }
            if self.is_stored(sequence) {
                self.stats.duplicate_fragments += 1;
                return;
            }
            if offset == 0 {
                self.consume(header.begin, header.end, data);
                self.expected = format.next(self.expected);
                return;
            }
            if self.stored_bytes + data.len() <= self.store_limit {
                break;
            }
            self.stats.overflows += 1;
            self.drop_head_packet();
        }
        if self.slots.is_empty() {
            self.slots.resize_with(self.limits.window, || None);
        }
        let slot = self.slot(sequence);
        self.slots[slot] = Some(Stored {
            begin: header.begin,
            end: header.end,
            data: data.to_vec(),
        });
        if self.stored_fragments == 0 || format.is_before(self.highest_stored, sequence) {
            self.highest_stored = sequence;
        }
        self.stored_fragments += 1;
        self.stored_bytes += data.len();
        self.note_peaks();
    }

    /// Consumes the fragment numbered `expected` (the caller moves `expected` on).
    fn consume(&mut self, begin: bool, end: bool, data: &[u8]) {
        if begin {
            if let Some(old) = self.assembly.take() {
                self.discard(old, "a B fragment came before its E fragment");
            }
            if end {
                self.deliver_whole(data);
                return;
            }
            self.assembly = Some(Assembly {
                protocol: ProtocolField::Empty,
                information: Vec::new(),
                fragments: 0,
            });
        }
        let Some(assembly) = self.assembly.as_mut() else {
            // The beginning of this packet was lost.
            self.stats.fragments_discarded += 1;
            return;
        };
        assembly.fragments += 1;
        let parsed = take_protocol_field(assembly.protocol, data);
        let too_long =
            parsed.is_some_and(|(_, rest)| assembly.information.len() + rest.len() > self.mrru);
        match parsed {
            None => {
                let old = self.assembly.take();
                self.stats.packets_malformed += 1;
                self.stats.fragments_discarded += old.map_or(0, |a| a.fragments);
                debug!("MP packet dropped: invalid protocol field");
                return;
            }
            Some(_) if too_long => {
                let old = self.assembly.take();
                self.stats.packets_too_long += 1;
                self.stats.fragments_discarded += old.map_or(0, |a| a.fragments);
                debug!("MP packet dropped: longer than the MRRU {}", self.mrru);
                return;
            }
            Some((protocol, rest)) => {
                assembly.protocol = protocol;
                assembly.information.extend_from_slice(rest);
            }
        }
        self.note_peaks();
        if end && let Some(done) = self.assembly.take() {
            match done.protocol {
                ProtocolField::Complete(protocol) => self.deliver(
                    Packet {
                        protocol,
                        information: done.information,
                    },
                    done.fragments,
                ),
                _ => {
                    self.stats.packets_malformed += 1;
                    self.stats.fragments_discarded += done.fragments;
                    debug!("MP packet dropped: no protocol field");
                }
            }
        }
    }

    /// A packet in a single fragment (B and E set).
    fn deliver_whole(&mut self, data: &[u8]) {
        if data.is_empty() {
            self.stats.null_fragments += 1;
            return;
        }
        let (protocol, information) = match data {
            [low, rest @ ..] if low & 1 == 1 => (u16::from(*low), rest),
            [high, low, rest @ ..] if low & 1 == 1 => {
                (u16::from(*high) << 8 | u16::from(*low), rest)
            }
            _ => {
                self.stats.packets_malformed += 1;
                self.stats.fragments_discarded += 1;
                debug!("MP packet dropped: invalid protocol field");
                return;
            }
        };
        if information.len() > self.mrru {
            self.stats.packets_too_long += 1;
            self.stats.fragments_discarded += 1;
            debug!("MP packet dropped: longer than the MRRU {}", self.mrru);
            return;
        }
        self.deliver(
            Packet {
                protocol,
                information: information.to_vec(),
            },
            1,
        );
    }

    fn deliver(&mut self, packet: Packet, fragments: u64) {
        if self.delivered.len() >= self.limits.queued_packets
            || self.queued_bytes + packet.information.len() > self.limits.queued_bytes
        {
            self.stats.packets_dropped_queue_full += 1;
            self.stats.fragments_discarded += fragments;
            debug!("MP packet dropped: delivery queue full");
            return;
        }
        debug!(
            "MP packet reassembled: protocol {:#06x}, {} bytes from {} fragments",
            packet.protocol,
            packet.information.len(),
            fragments
        );
        self.stats.packets_delivered += 1;
        self.stats.fragments_delivered += fragments;
        self.queued_bytes += packet.information.len();
        self.delivered.push_back(packet);
    }

    fn discard(&mut self, assembly: Assembly, why: &str) {
        self.stats.packets_discarded += 1;
        self.stats.fragments_discarded += assembly.fragments;
        debug!(
            "MP packet of {}+ bytes dropped: {why}",
            assembly.information.len()
        );
    }

    fn take_slot(&mut self, sequence: u32) -> Option<Stored> {
        if self.stored_fragments == 0 {
            return None;
        }
        let slot = self.slot(sequence);
        let stored = self.slots[slot].take()?;
        self.stored_fragments -= 1;
        self.stored_bytes -= stored.data.len();
        Some(stored)
    }

    fn is_stored(&self, sequence: u32) -> bool {
        self.stored_fragments > 0 && self.slots[self.slot(sequence)].is_some()
    }

    /// Sequence numbers before the returned one that have not arrived are lost (`None`: no
    /// member has told anything yet).
    fn loss_horizon(&self) -> Option<u32> {
        let format = self.format;
        let from_members = self
            .members
            .iter()
            .map(|m| format.distance(self.expected, m.highest))
            .min()
            .map(|d| format.add(self.expected, d as u32));
        match (from_members, self.forced_horizon) {
            (Some(m), Some(forced)) if format.is_before(m, forced) => Some(forced),
            (Some(m), _) => Some(m),
            (None, forced) => forced,
        }
    }

    /// Consumes what can be consumed and declares lost what the horizon says is lost.
    fn advance(&mut self, now: Instant) {
        let format = self.format;
        let mut horizon = None;
        loop {
            if let Some(stored) = self.take_slot(self.expected) {
                self.consume(stored.begin, stored.end, &stored.data);
                self.expected = format.next(self.expected);
                continue;
            }
            if self.stored_fragments == 0 && self.assembly.is_none() {
                // Nothing waits on the missing fragment; a loss shows when something does.
                break;
            }
            let Some(h) = *horizon.get_or_insert_with(|| self.loss_horizon()) else {
                break;
            };
            let gap = format.distance(self.expected, h);
            if gap <= 0 {
                break;
            }
            let first_lost = self.expected;
            let mut lost = 0u64;
            if self.stored_fragments == 0 {
                lost = gap as u64;
                self.expected = h;
            } else {
                while self.expected != h && !self.is_stored(self.expected) {
                    lost += 1;
                    self.expected = format.next(self.expected);
                }
            }
            self.stats.sequence_numbers_lost += lost;
            debug!("MP fragments lost: {lost} from {first_lost:#x}");
            if let Some(old) = self.assembly.take() {
                self.discard(old, "a fragment was lost");
            }
        }
        self.after_move(now);
    }

    /// Drops the oldest incomplete packet: the one in progress, or the one starting at
    /// `expected`, up to the next stored B fragment.
    fn drop_head_packet(&mut self) {
        let format = self.format;
        if let Some(old) = self.assembly.take() {
            self.discard(old, "buffer full");
        }
        let mut first = true;
        while self.stored_fragments > 0 {
            let slot = self.slot(self.expected);
            match &self.slots[slot] {
                Some(stored) if stored.begin && !first => break,
                Some(_) => {
                    let _ = self.take_slot(self.expected);
                    self.stats.fragments_discarded += 1;
                }
                None => self.stats.sequence_numbers_lost += 1,
            }
            first = false;
            self.expected = format.next(self.expected);
        }
        debug!(
            "MP buffer full: oldest packet dropped, next expected {:#x}",
            self.expected
        );
    }

    /// Moves `expected` to `new_expected` (ahead), dropping everything before it.
    fn slide_window(&mut self, new_expected: u32) {
        let format = self.format;
        self.stats.overflows += 1;
        if let Some(old) = self.assembly.take() {
            self.discard(old, "window moved past it");
        }
        while self.expected != new_expected {
            if self.stored_fragments == 0 {
                let rest = format.distance(self.expected, new_expected).max(0);
                self.stats.sequence_numbers_lost += rest as u64;
                self.expected = new_expected;
                break;
            }
            if self.take_slot(self.expected).is_some() {
                self.stats.fragments_discarded += 1;
            } else {
                self.stats.sequence_numbers_lost += 1;
            }
            self.expected = format.next(self.expected);
        }
        debug!(
            "MP fragment far ahead: window moved to {:#x}",
            self.expected
        );
    }

    /// Starts over at `sequence` after a peer restarted its numbering.
    fn resync(&mut self, sequence: u32) {
        self.stats.resyncs += 1;
        if let Some(old) = self.assembly.take() {
            self.discard(old, "resynchronising");
        }
        if self.stored_fragments > 0 {
            for slot in &mut self.slots {
                if slot.take().is_some() {
                    self.stats.fragments_discarded += 1;
                }
            }
        }
        self.stored_fragments = 0;
        self.stored_bytes = 0;
        self.expected = sequence;
        self.stall = None;
        self.forced_horizon = None;
        let before = self.format.previous(sequence);
        for member in &mut self.members {
            member.highest = before;
        }
        debug!("MP receiver resynchronised at {sequence:#x}");
    }

    fn after_move(&mut self, now: Instant) {
        let format = self.format;
        let floor = format.previous(self.expected);
        for member in &mut self.members {
            if format.is_before(member.highest, floor) {
                member.highest = floor;
            }
        }
        if let Some(forced) = self.forced_horizon
            && format.distance(self.expected, forced) <= 0
        {
            self.forced_horizon = None;
        }
        if self.stored_fragments == 0 && self.assembly.is_none() {
            self.stall = None;
            return;
        }
        let renew = self
            .stall
            .is_none_or(|stall| format.distance(self.expected, stall.horizon) <= 0);
        if renew {
            let horizon = if self.stored_fragments > 0 {
                format.next(self.highest_stored)
            } else {
                format.next(self.expected)
            };
            self.stall = Some(Stall {
                since: now,
                horizon,
            });
        }
    }

    fn note_peaks(&mut self) {
        let bytes = self.buffered_bytes();
        let fragments = self.buffered_fragments();
        let stats = &mut self.stats;
        stats.peak_buffered_bytes = stats.peak_buffered_bytes.max(bytes);
        stats.peak_buffered_fragments = stats.peak_buffered_fragments.max(fragments);
    }
}

#[cfg(test)]
mod tests;
