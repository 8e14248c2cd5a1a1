//! A bundle: the sending and receiving sides over a changing set of member links.

use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use tracing::debug;

use crate::MpError;
use crate::fragment::{FragmentationStats, Fragmenter, FragmenterConfig, MemberLink};
use crate::reassembly::{MemoryLimits, Packet, Reassembler, ReassemblerConfig, ReassemblyStats};

/// The most member links a bundle takes.
pub const MAX_MEMBERS: usize = 64;
/// The most events waiting for [`Bundle::poll_event`]; older ones are dropped (and counted)
/// beyond it.
pub const MAX_QUEUED_EVENTS: usize = 64;

/// A member link of a bundle, as the bundle numbers them (from 1, in the order they join).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId(pub u32);

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link {}", self.0)
    }
}

/// Configuration of a bundle: both sides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BundleConfig {
    /// The sending side.
    pub send: FragmenterConfig,
    /// The receiving side.
    pub receive: ReassemblerConfig,
}

impl BundleConfig {
    /// The configuration for what LCP negotiated on the first member: our MRRU
    /// (`our_mrru`), the peer's (`peer_mrru`), and whether each side asked for short sequence
    /// numbers (`ssnhf_rx`: we receive them; `ssnhf_tx`: we send them). Everything else is
    /// the default.
    pub fn negotiated(our_mrru: u16, peer_mrru: u16, ssnhf_rx: bool, ssnhf_tx: bool) -> Self {
        let format = |short| {
            if short {
                crate::SequenceFormat::Short
            } else {
                crate::SequenceFormat::Long
            }
        };
        BundleConfig {
            send: FragmenterConfig {
                format: format(ssnhf_tx),
                peer_mrru,
                ..FragmenterConfig::default()
            },
            receive: ReassemblerConfig {
                format: format(ssnhf_rx),
                mrru: our_mrru,
                ..ReassemblerConfig::default()
            },
        }
    }
}

/// Something that happened to a bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BundleEvent {
    /// The first member joined: the bundle is up (start the NCPs).
    Up,
    /// A member joined.
    MemberAdded(MemberId),
    /// A member left.
    MemberRemoved(MemberId),
    /// The last member left: the bundle is down for good (stop the NCPs; a new link makes a
    /// new bundle).
    Down,
}

/// Counters of a bundle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BundleStats {
    /// The sending side.
    pub sent: FragmentationStats,
    /// The receiving side.
    pub received: ReassemblyStats,
    /// Events dropped because nobody polled them.
    pub events_dropped: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BundleState {
    /// No member has joined yet.
    Empty,
    Up,
    Down,
}

/// A Multilink bundle: PPP packets in and out, MP fragments to and from its member links.
///
/// Each member link runs its own framing, LCP and authentication; once LCP negotiated the MRRU
/// on it and the bundle it belongs to was chosen ([`BundleRegistry`](crate::BundleRegistry)),
/// it is added with [`add_link`](Self::add_link). Frames of protocol 0x003D received on a member
/// go to [`handle_input`](Self::handle_input); packets to send (NCP, CCP and datagrams) go to
/// [`send`](Self::send), and what [`poll_transmit`](Self::poll_transmit) returns goes out on the
/// member it names as protocol 0x003D.
///
/// Two bundles exchanging a 3000-byte packet over two member links:
///
/// ```
/// use std::time::Instant;
/// use ppp_mp::{Bundle, BundleConfig, BundleEvent, MemberLink};
///
/// let now = Instant::now();
/// // Both sides negotiated an MRRU of 4000 and long sequence numbers.
/// let config = BundleConfig::negotiated(4000, 4000, false, false);
/// let (mut client, mut server) = (Bundle::new(config.clone()), Bundle::new(config));
/// // Two member links with a 1500-byte MTU each.
/// let link = MemberLink::new(1500);
/// let client_links = [client.add_link(link)?, client.add_link(link)?];
/// let server_links = [server.add_link(link)?, server.add_link(link)?];
/// assert_eq!(client.poll_event(), Some(BundleEvent::Up));
///
/// let datagram: Vec<u8> = (0..3000).map(|i| i as u8).collect();
/// client.send(now, 0x0021, &datagram)?;
/// let mut frames = 0;
/// while let Some((member, mp_information)) = client.poll_transmit() {
///     // Here: send `mp_information` as protocol 0x003D on `member`; it arrives on the same
///     // link at the server.
///     let link = client_links.iter().position(|&m| m == member).unwrap();
///     server.handle_input(now, server_links[link], &mp_information)?;
///     frames += 1;
/// }
/// assert!(frames >= 3, "3000 bytes do not fit two 1500-byte frames with headers");
/// let packet = server.poll_packet().expect("reassembled");
/// assert_eq!(packet.protocol, 0x0021);
/// assert_eq!(packet.information, datagram);
/// # Ok::<(), ppp_mp::MpError>(())
/// ```
#[derive(Debug)]
pub struct Bundle {
    state: BundleState,
    next_member: u32,
    members: Vec<MemberId>,
    fragmenter: Fragmenter,
    reassembler: Reassembler,
    events: VecDeque<BundleEvent>,
    events_dropped: u64,
}

impl Bundle {
    /// A bundle with no members yet.
    pub fn new(config: BundleConfig) -> Self {
        Bundle {
            state: BundleState::Empty,
            next_member: 1,
            members: Vec::new(),
            fragmenter: Fragmenter::new(config.send),
            reassembler: Reassembler::new(config.receive),
            events: VecDeque::new(),
            events_dropped: 0,
        }
    }

    /// Adds a member link; the first one brings the bundle up.
    ///
    /// # Errors
    ///
    /// [`MpError::BundleDown`] once the last member has left, [`MpError::TooManyMembers`],
    /// [`MpError::MtuTooSmall`].
    pub fn add_link(&mut self, link: MemberLink) -> Result<MemberId, MpError> {
        if self.state == BundleState::Down {
            return Err(MpError::BundleDown);
        }
        if self.members.len() >= MAX_MEMBERS {
            return Err(MpError::TooManyMembers { max: MAX_MEMBERS });
        }
        let id = MemberId(self.next_member);
        self.fragmenter.add_member(id, link)?;
        self.next_member = self.next_member.wrapping_add(1);
        self.reassembler.add_member(id);
        self.members.push(id);
        if self.state == BundleState::Empty {
            self.state = BundleState::Up;
            self.push_event(BundleEvent::Up);
        }
        self.push_event(BundleEvent::MemberAdded(id));
        debug!("MP: {id} joined the bundle (MTU {})", link.mtu);
        Ok(id)
    }

    /// Removes a member link (it went down). Its queued fragments move to the other members;
    /// what was in flight on it is lost. The last member leaving takes the bundle down.
    ///
    /// # Errors
    ///
    /// [`MpError::UnknownMember`].
    pub fn remove_link(&mut self, now: Instant, member: MemberId) -> Result<(), MpError> {
        let index = self
            .members
            .iter()
            .position(|&m| m == member)
            .ok_or(MpError::UnknownMember(member))?;
        self.members.remove(index);
        self.fragmenter.remove_member(now, member)?;
        self.reassembler.remove_member(now, member)?;
        self.push_event(BundleEvent::MemberRemoved(member));
        debug!("MP: {member} left the bundle");
        if self.members.is_empty() {
            self.state = BundleState::Down;
            self.push_event(BundleEvent::Down);
            debug!("MP: last member gone, bundle down");
        }
        Ok(())
    }

    /// Whether the bundle is up (it has members).
    pub fn is_up(&self) -> bool {
        self.state == BundleState::Up
    }

    /// The member links, in the order they joined.
    pub fn members(&self) -> &[MemberId] {
        &self.members
    }

    /// Changes a member's speed (bits per second, 0: unknown), which steers fragmentation.
    ///
    /// # Errors
    ///
    /// [`MpError::UnknownMember`].
    pub fn set_link_speed(
        &mut self,
        member: MemberId,
        bits_per_second: u64,
    ) -> Result<(), MpError> {
        self.fragmenter.set_speed(member, bits_per_second)
    }

    /// Reports the bytes waiting in a member's device queue, which steers fragmentation toward
    /// the members that will be free first.
    ///
    /// # Errors
    ///
    /// [`MpError::UnknownMember`].
    pub fn report_queued_bytes(
        &mut self,
        now: Instant,
        member: MemberId,
        queued_bytes: usize,
    ) -> Result<(), MpError> {
        self.fragmenter
            .report_queued_bytes(now, member, queued_bytes)
    }

    /// Sends a PPP packet (protocol number and information field) over the bundle: fragments
    /// wait for [`poll_transmit`](Self::poll_transmit).
    ///
    /// # Errors
    ///
    /// [`MpError::BundleDown`], [`MpError::NoMembers`], [`MpError::InvalidProtocol`],
    /// [`MpError::PacketTooLong`] (beyond the peer's MRRU), [`MpError::TransmitQueueFull`].
    pub fn send(&mut self, now: Instant, protocol: u16, information: &[u8]) -> Result<(), MpError> {
        if self.state == BundleState::Down {
            return Err(MpError::BundleDown);
        }
        self.fragmenter.send(now, protocol, information)
    }

    /// Takes in the information field of a protocol 0x003D frame received on `member`.
    ///
    /// # Errors
    ///
    /// [`MpError::UnknownMember`], a header error, [`MpError::FragmentTooLong`]; all are
    /// counted in [`stats`](Self::stats) and need no action.
    pub fn handle_input(
        &mut self,
        now: Instant,
        member: MemberId,
        mp_information: &[u8],
    ) -> Result<(), MpError> {
        self.reassembler.handle_input(now, member, mp_information)
    }

    /// The time from [`poll_timeout`](Self::poll_timeout) has come. Early or repeated calls do
    /// nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.reassembler.handle_timeout(now);
    }

    /// The next fragment to send: the member and the MP information field to send on it as
    /// protocol 0x003D. Poll until `None` after every `send` and `remove_link`, and send each
    /// member's frames in the order polled.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<(MemberId, Vec<u8>)> {
        self.fragmenter.poll_transmit()
    }

    /// The next reassembled packet. Poll until `None` after every `handle_input`,
    /// `handle_timeout` and `remove_link`.
    #[must_use]
    pub fn poll_packet(&mut self) -> Option<Packet> {
        self.reassembler.poll_packet()
    }

    /// The next event. Poll until `None` after `add_link` and `remove_link`.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<BundleEvent> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout): the reassembly timeout, while a
    /// missing fragment holds back others. Ask again after every input.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.reassembler.poll_timeout()
    }

    /// Counters of both sides.
    pub fn stats(&self) -> BundleStats {
        BundleStats {
            sent: self.fragmenter.stats(),
            received: self.reassembler.stats(),
            events_dropped: self.events_dropped,
        }
    }

    /// The receiving side's limits.
    pub fn limits(&self) -> MemoryLimits {
        self.reassembler.limits()
    }

    /// The most bytes the receiving side holds (see [`Reassembler::memory_bound`]).
    pub fn memory_bound(&self) -> usize {
        self.reassembler.memory_bound()
    }

    /// Bytes of fragment data the receiving side holds now.
    pub fn buffered_bytes(&self) -> usize {
        self.reassembler.buffered_bytes()
    }

    /// The sending side.
    pub fn fragmenter(&self) -> &Fragmenter {
        &self.fragmenter
    }

    /// The receiving side.
    pub fn reassembler(&self) -> &Reassembler {
        &self.reassembler
    }

    fn push_event(&mut self, event: BundleEvent) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        self.events.push_back(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_join_and_leave_and_the_last_takes_the_bundle_down() {
        let now = Instant::now();
        let mut bundle = Bundle::new(BundleConfig::default());
        assert!(!bundle.is_up());
        assert_eq!(bundle.send(now, 0x0021, &[1]), Err(MpError::NoMembers));
        let a = bundle.add_link(MemberLink::new(1500)).unwrap();
        let b = bundle.add_link(MemberLink::new(1500)).unwrap();
        assert_eq!((a, b), (MemberId(1), MemberId(2)));
        assert_eq!(bundle.members(), &[a, b]);
        let events: Vec<_> = std::iter::from_fn(|| bundle.poll_event()).collect();
        assert_eq!(
            events,
            [
                BundleEvent::Up,
                BundleEvent::MemberAdded(a),
                BundleEvent::MemberAdded(b)
            ]
        );
        bundle.remove_link(now, a).unwrap();
        assert!(bundle.is_up());
        assert_eq!(bundle.remove_link(now, a), Err(MpError::UnknownMember(a)));
        assert_eq!(
            bundle.handle_input(now, a, &[0xC0, 0, 0, 0, 0x21]),
            Err(MpError::UnknownMember(a))
        );
        let c = bundle.add_link(MemberLink::new(1500)).unwrap();
        assert_eq!(c, MemberId(3));
        bundle.remove_link(now, b).unwrap();
        bundle.remove_link(now, c).unwrap();
        let events: Vec<_> = std::iter::from_fn(|| bundle.poll_event()).collect();
        assert_eq!(
            events,
            [
                BundleEvent::MemberRemoved(a),
                BundleEvent::MemberAdded(c),
                BundleEvent::MemberRemoved(b),
                BundleEvent::MemberRemoved(c),
                BundleEvent::Down
            ]
        );
        assert!(!bundle.is_up());
        assert_eq!(
            bundle.add_link(MemberLink::new(1500)),
            Err(MpError::BundleDown)
        );
        assert_eq!(bundle.send(now, 0x0021, &[1]), Err(MpError::BundleDown));
        assert_eq!(bundle.stats().received.unknown_member, 1);
    }

    #[test]
    fn member_limit_and_event_queue_bound() {
        let mut bundle = Bundle::new(BundleConfig::default());
        for _ in 0..MAX_MEMBERS {
            bundle.add_link(MemberLink::new(1500)).unwrap();
        }
        assert_eq!(
            bundle.add_link(MemberLink::new(1500)),
            Err(MpError::TooManyMembers { max: MAX_MEMBERS })
        );
        // Up and 64 MemberAdded: one dropped.
        assert_eq!(bundle.stats().events_dropped, 1);
        assert_eq!(
            std::iter::from_fn(|| bundle.poll_event()).count(),
            MAX_QUEUED_EVENTS
        );
    }

    #[test]
    fn negotiated_config_maps_lcp_results() {
        let config = BundleConfig::negotiated(1614, 1600, true, false);
        assert_eq!(config.receive.mrru, 1614);
        assert_eq!(config.receive.format, crate::SequenceFormat::Short);
        assert_eq!(config.send.peer_mrru, 1600);
        assert_eq!(config.send.format, crate::SequenceFormat::Long);
    }
}
