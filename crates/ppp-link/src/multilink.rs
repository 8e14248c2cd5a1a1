//! [`Multilink`]: one network layer (IPCP, IPv6CP, CCP, datagrams) over a bundle of member links
//! (RFC 1990), each with its own framing, LCP and authentication ([`LinkControl`]).
//!
//! A member that reaches the Network phase joins the bundle. The first one starts the network
//! layer: over Multilink (every network-layer packet in MP fragments, `ppp_mp::Bundle`) when LCP
//! negotiated an MRRU in both directions, or directly on the link when it did not (then it stays
//! the only member: that is a plain [`Link`](crate::Link)). Later members must have negotiated
//! Multilink with the same peer (authenticated name and Endpoint Discriminator, RFC 1990 §5.1.3);
//! members leave when their link leaves the Network phase, and the last one to leave takes the
//! network layer down.
//!
//! Received network-phase packets are taken from any member, in MP fragments or directly
//! (RFC 1990 §3 allows both); MP frames on a link that did not negotiate Multilink are
//! Protocol-Rejected.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use ppp_auth::SecretToken;
use ppp_ccp::{CcpNegotiated, MppeKeys};
use ppp_core::{CloseReason, LazyQueue, Random};
use ppp_frame::Protocol;
use ppp_ipcp::{Ipcp, Ipv6cpConfig};
use ppp_mp::{Bundle, BundleConfig, BundleKey, EndpointDiscriminator, MemberId, MemberLink};
use tracing::{debug, info};

use crate::auth::{SecretEntry, Verdict};
use crate::control::{ControlEvent, LinkControl, Received, push_bounded};
use crate::network::{Handled, NetworkEvent, NetworkLayer};
use crate::reason::{DownReason, MultilinkRefusal};
use crate::{AuthError, CapturedPacket, Datagram, LinkConfig, LinkError, LinkEvent, Phase};

/// What a [`Multilink`] tells its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MultilinkEvent<K> {
    /// Something that concerns one member link: [`LinkEvent::Phase`], [`LinkEvent::LinkUp`],
    /// [`LinkEvent::Authenticated`], [`LinkEvent::SecretNeeded`] (answer with
    /// [`Multilink::provide_secret`]), [`LinkEvent::LoopbackDetected`], [`LinkEvent::LinkDown`]
    /// (the member stays listed until [`Multilink::remove_member`]).
    Member {
        /// The member.
        member: K,
        /// What happened to it.
        event: LinkEvent,
    },
    /// With [`Multilink::hold_members`]: a member reached the Network phase and waits for
    /// [`Multilink::join`] (this bundle) or [`Multilink::remove_member`] (to join another one).
    MemberReady {
        /// The member.
        member: K,
        /// Which bundle it belongs to: its peer's authenticated name and Endpoint
        /// Discriminator.
        bundle: BundleKey,
        /// Whether Multilink was negotiated on it.
        multilink: bool,
    },
    /// A member joined the bundle.
    Joined {
        /// The member.
        member: K,
        /// Members in the bundle now.
        members: usize,
    },
    /// A member left the bundle.
    Left {
        /// The member.
        member: K,
        /// Members still in the bundle.
        members: usize,
    },
    /// Something that concerns the network layer: [`LinkEvent::IpUp`], [`LinkEvent::IpDown`],
    /// [`LinkEvent::Ipv6Up`], [`LinkEvent::Ipv6Down`], [`LinkEvent::CcpUp`],
    /// [`LinkEvent::CcpDown`], [`LinkEvent::NcpFinished`].
    Network(LinkEvent),
    /// The last member left: the network layer is down. A member joining later starts it
    /// again, as a new bundle.
    BundleDown,
}

/// How a member carries the network layer.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Role {
    /// Not in the bundle: before the Network phase, after leaving it, or refused.
    Idle,
    /// In the Network phase, waiting for the owner ([`Multilink::join`]).
    Ready,
    /// The only member, without Multilink headers (a plain link).
    Direct,
    /// A member of the MP bundle.
    Mp(MemberId),
}

struct Member<K> {
    key: K,
    control: LinkControl,
    role: Role,
}

/// One network layer over one or more member links, sans-IO.
///
/// The owner keys members with its own identifiers `K` (a port index, a PPPoE session id).
/// Inputs: [`add_member`](Self::add_member)/[`remove_member`](Self::remove_member), per member
/// [`up`](Self::up)/[`down`](Self::down)/[`open`](Self::open)/[`close`](Self::close) and
/// [`handle_input`](Self::handle_input), [`handle_timeout`](Self::handle_timeout),
/// [`provide_secret`](Self::provide_secret), [`send_ipv4`](Self::send_ipv4)/
/// [`send_ipv6`](Self::send_ipv6). Outputs: [`poll_transmit`](Self::poll_transmit) (which
/// member, what bytes), [`poll_event`](Self::poll_event), [`poll_datagram`](Self::poll_datagram),
/// [`poll_timeout`](Self::poll_timeout).
///
/// Two bundles of two links each, in memory; a 3000-byte packet crosses in fragments:
///
/// ```
/// use std::sync::Arc;
/// use std::time::Instant;
/// use ppp_link::{Datagram, LinkConfig, LinkControl, Multilink, MultilinkEvent, LinkEvent, Random};
///
/// let mut config = LinkConfig::pppoe();
/// config.lcp.allow.clear();
/// config.lcp.mrru = Some(4000); // Multilink, with packets up to 4000 bytes
/// let client = Arc::new(config.clone());
/// config.ipcp = Some(ppp_ipcp::IpcpConfig {
///     remote_address: Some("192.0.2.2".parse().unwrap()),
///     ..ppp_ipcp::IpcpConfig::server("192.0.2.1".parse().unwrap(), [None, None])
/// });
/// let server = Arc::new(config);
///
/// let now = Instant::now();
/// let random = Random::seeded(7); // programs: Random::from_os()
/// let mut a = Multilink::new(client.clone(), random.fork());
/// let mut b = Multilink::new(server.clone(), random.fork());
/// for line in 0..2 {
///     a.add_member(now, line, LinkControl::new(client.clone(), random.fork()));
///     b.add_member(now, line, LinkControl::new(server.clone(), random.fork()));
///     for bundle in [&mut a, &mut b] {
///         bundle.open(now, &line);
///         bundle.up(now, &line);
///     }
/// }
/// let mut up = false;
/// loop {
///     let mut moved = false;
///     while let Some((line, frame)) = a.poll_transmit() {
///         b.handle_input(now, &line, &frame); // line n of one is line n of the other
///         moved = true;
///     }
///     while let Some((line, frame)) = b.poll_transmit() {
///         a.handle_input(now, &line, &frame);
///         moved = true;
///     }
///     while let Some(event) = a.poll_event() {
///         up |= matches!(event, MultilinkEvent::Network(LinkEvent::IpUp { .. }));
///     }
///     while b.poll_event().is_some() {}
///     if !moved {
///         break;
///     }
/// }
/// assert!(up);
/// assert_eq!(a.joined(), 2);
/// assert_eq!(a.mtu(), Some(4000));
///
/// let mut packet = vec![0u8; 3000];
/// packet[..20].copy_from_slice(&[
///     0x45, 0, 0x0b, 0xb8, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 2, 192, 0, 2, 1,
/// ]);
/// a.send_ipv4(now, &packet)?;
/// let mut used = std::collections::BTreeSet::new();
/// while let Some((line, frame)) = a.poll_transmit() {
///     used.insert(line);
///     b.handle_input(now, &line, &frame);
/// }
/// assert_eq!(used.len(), 2, "fragments went over both lines");
/// assert_eq!(b.poll_datagram(), Some(Datagram::Ipv4(packet)));
/// # Ok::<(), ppp_link::LinkError>(())
/// ```
pub struct Multilink<K> {
    config: Arc<LinkConfig>,
    members: Vec<Member<K>>,
    network: NetworkLayer,
    mp: Option<Box<Bundle>>,
    identity: Option<Box<BundleKey>>,
    hold: bool,
    capture: bool,
    next_transmit: usize,
    events: LazyQueue<MultilinkEvent<K>>,
}

impl<K: fmt::Debug> fmt::Debug for Multilink<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Multilink")
            .field(
                "members",
                &self
                    .members
                    .iter()
                    .map(|m| (&m.key, &m.role, &m.control))
                    .collect::<Vec<_>>(),
            )
            .field("network", &self.network)
            .field("multilink", &self.mp.is_some())
            .finish_non_exhaustive()
    }
}

impl<K: Clone + Eq + fmt::Debug> Multilink<K> {
    /// A bundle without members whose network layer runs `config`'s IPCP, IPv6CP and CCP,
    /// drawing interface identifiers from `random`.
    pub fn new(config: Arc<LinkConfig>, random: Random) -> Self {
        Multilink {
            network: NetworkLayer::new(&config, random),
            config,
            members: Vec::new(),
            mp: None,
            identity: None,
            hold: false,
            capture: false,
            next_transmit: 0,
            events: LazyQueue::new(),
        }
    }

    /// Whether members wait for [`join`](Self::join) when they reach the Network phase (a
    /// server that chooses among several bundles) instead of joining this one at once (the
    /// default).
    pub fn hold_members(&mut self, hold: bool) {
        self.hold = hold;
    }

    /// The configuration of the network layer.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Adds a member link. A link already in the Network phase (moved here from another
    /// [`Multilink`] after [`MultilinkEvent::MemberReady`]) joins at once; any other joins when
    /// it gets there.
    pub fn add_member(&mut self, now: Instant, key: K, mut control: LinkControl) {
        if self.capture {
            control.enable_capture();
        }
        let network = control.phase() == Phase::Network;
        self.members.reserve_exact(1);
        self.members.push(Member {
            key,
            control,
            role: Role::Idle,
        });
        if network {
            let index = self.members.len() - 1;
            self.join_index(now, index);
        }
        self.process(now);
    }

    /// A member added without running anything (a fresh link, for [`Link`](crate::Link)).
    pub(crate) fn insert_member(&mut self, key: K, control: LinkControl) {
        self.members.reserve_exact(1);
        self.members.push(Member {
            key,
            control,
            role: Role::Idle,
        });
    }

    /// Takes a member out (it leaves the bundle first if it was in it) and gives its link back,
    /// in whatever state it is.
    pub fn remove_member(&mut self, now: Instant, key: &K) -> Option<LinkControl> {
        let index = self.index(key)?;
        self.leave_index(now, index);
        let member = self.members.remove(index);
        self.process(now);
        Some(member.control)
    }

    /// A [`MultilinkEvent::MemberReady`] member joins this bundle. Returns `false` when `key`
    /// is not a member waiting to join.
    pub fn join(&mut self, now: Instant, key: &K) -> bool {
        let Some(index) = self.index(key) else {
            return false;
        };
        if self.members[index].role != Role::Ready {
            return false;
        }
        self.join_index(now, index);
        self.process(now);
        true
    }

    /// The members: their keys and links, and whether each is in the bundle.
    pub fn members(&self) -> impl Iterator<Item = (&K, &LinkControl, bool)> {
        self.members.iter().map(|m| {
            (
                &m.key,
                &m.control,
                matches!(m.role, Role::Direct | Role::Mp(_)),
            )
        })
    }

    /// One member's link.
    pub fn member(&self, key: &K) -> Option<&LinkControl> {
        self.members
            .iter()
            .find(|m| m.key == *key)
            .map(|m| &m.control)
    }

    /// Members in the bundle (carrying the network layer).
    pub fn joined(&self) -> usize {
        self.members
            .iter()
            .filter(|m| matches!(m.role, Role::Direct | Role::Mp(_)))
            .count()
    }

    /// Whether the network layer runs over Multilink (MP headers), rather than directly on a
    /// single link.
    pub fn is_multilink(&self) -> bool {
        self.mp.is_some()
    }

    /// Which peer the bundle belongs to, once a member joined.
    pub fn bundle_key(&self) -> Option<&BundleKey> {
        self.identity.as_deref()
    }

    /// The MP machine, while the network layer runs over Multilink (counters, memory).
    pub fn mp(&self) -> Option<&Bundle> {
        self.mp.as_deref()
    }

    /// The network layer (NCPs, CCP, datagrams).
    pub fn network(&self) -> &NetworkLayer {
        &self.network
    }

    /// See [`Link::set_ipcp`](crate::Link::set_ipcp).
    pub fn set_ipcp(&mut self, ipcp: Ipcp) -> bool {
        self.network.set_ipcp(ipcp)
    }

    /// See [`Link::set_ccp`](crate::Link::set_ccp).
    pub fn set_ccp(&mut self, ccp: Option<ppp_ccp::CcpConfig>) -> bool {
        self.network.set_ccp(ccp)
    }

    /// See [`Link::set_ipv6cp`](crate::Link::set_ipv6cp).
    pub fn set_ipv6cp(&mut self, ipv6cp: Option<Ipv6cpConfig>) -> bool {
        self.network.set_ipv6cp(ipv6cp)
    }

    /// The MTU for datagrams: the peer's MRRU over Multilink, the link's MTU otherwise (4 bytes
    /// less while MPPE encrypts); before the network layer runs, the first member's LCP MTU.
    pub fn mtu(&self) -> Option<u16> {
        if self.network.is_running() {
            return Some(self.network.mtu());
        }
        self.members
            .iter()
            .find_map(|m| m.control.lcp_negotiated())
            .map(|n| n.mtu)
    }

    /// What CCP negotiated, while it is Opened.
    pub fn ccp_negotiated(&self) -> Option<&CcpNegotiated> {
        self.network.ccp_negotiated()
    }

    /// Tells the fragmenter a member's speed, so fragments are shared in proportion (members of
    /// unknown speed count as equal).
    pub fn set_member_speed(&mut self, key: &K, bits_per_second: u64) {
        if let (Some(Role::Mp(id)), Some(mp)) = (self.role(key), self.mp.as_mut()) {
            let _ = mp.set_link_speed(id, bits_per_second);
        }
    }

    /// Tells the fragmenter how many bytes wait in a member's device queue, so new fragments
    /// go to the members that will be free first.
    pub fn report_queued_bytes(&mut self, now: Instant, key: &K, queued_bytes: usize) {
        if let (Some(Role::Mp(id)), Some(mp)) = (self.role(key), self.mp.as_mut()) {
            let _ = mp.report_queued_bytes(now, id, queued_bytes);
        }
    }

    /// Starts recording every packet each member sends and receives.
    pub fn enable_capture(&mut self) {
        self.capture = true;
        for member in &mut self.members {
            member.control.enable_capture();
        }
    }

    /// The next recorded packet and the member it crossed, if capture is on.
    #[must_use]
    pub fn poll_capture(&mut self) -> Option<(K, CapturedPacket)> {
        self.members
            .iter_mut()
            .find_map(|m| m.control.poll_capture().map(|p| (m.key.clone(), p)))
    }

    /// A member's lower layer is up (line connected, session established).
    pub fn up(&mut self, now: Instant, key: &K) {
        if let Some(index) = self.index(key) {
            self.members[index].control.up(now);
            self.process(now);
        }
    }

    /// A member's lower layer went down.
    pub fn down(&mut self, now: Instant, key: &K) {
        if let Some(index) = self.index(key) {
            self.members[index].control.down(now);
            self.process(now);
        }
    }

    /// Administrative open of a member: it negotiates once its lower layer is up.
    pub fn open(&mut self, now: Instant, key: &K) {
        if let Some(index) = self.index(key) {
            self.members[index].control.open(now);
            self.process(now);
        }
    }

    /// Administrative close of a member: its LCP terminates for `reason`; the bundle carries
    /// on over the others.
    pub fn close(&mut self, now: Instant, key: &K, reason: CloseReason) {
        if let Some(index) = self.index(key) {
            self.members[index].control.close(now, reason);
            self.process(now);
        }
    }

    /// Closes every member (the whole bundle) for `reason`.
    pub fn close_all(&mut self, now: Instant, reason: CloseReason) {
        for member in &mut self.members {
            member.control.close(now, reason.clone());
        }
        self.process(now);
    }

    /// Bytes received on a member (async framing: any chunk; sync framing: one frame).
    pub fn handle_input(&mut self, now: Instant, key: &K, data: &[u8]) {
        let Some(index) = self.index(key) else {
            return;
        };
        if !self.members[index].control.is_async() {
            match ppp_frame::sync::decode(data) {
                Ok(frame) => self.frame_at(now, index, frame.protocol, frame.payload),
                Err(error) => {
                    self.members[index].control.count_bad_frame();
                    debug!("dropped a frame: {error}");
                }
            }
            return;
        }
        let mut input = data;
        while let Some((protocol, payload)) =
            self.members[index].control.next_async_frame(&mut input)
        {
            self.frame_at(now, index, protocol, &payload);
        }
        self.process(now);
    }

    /// One frame received on a member, already split into protocol and information field.
    pub fn handle_frame(&mut self, now: Instant, key: &K, protocol: Protocol, payload: &[u8]) {
        if let Some(index) = self.index(key) {
            self.frame_at(now, index, protocol, payload);
        }
    }

    /// The time from [`poll_timeout`](Self::poll_timeout) has come. A spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        for member in &mut self.members {
            if member.control.poll_timeout().is_some_and(|t| t <= now) {
                member.control.handle_timeout(now);
            }
        }
        if self.network.poll_timeout().is_some_and(|t| t <= now) {
            self.network.handle_timeout(now);
        }
        if let Some(mp) = self.mp.as_mut()
            && mp.poll_timeout().is_some_and(|t| t <= now)
        {
            mp.handle_timeout(now);
        }
        self.process(now);
    }

    /// The answer to a member's [`LinkEvent::SecretNeeded`]; see
    /// [`Link::provide_secret`](crate::Link::provide_secret).
    ///
    /// # Errors
    ///
    /// [`AuthError::NoSecretRequest`] when nothing is outstanding (or `key` is no member),
    /// [`AuthError::StaleSecretAnswer`] when `token` is an earlier request's.
    pub fn provide_secret(
        &mut self,
        now: Instant,
        key: &K,
        token: SecretToken,
        entry: Option<SecretEntry>,
    ) -> Result<(), AuthError> {
        let index = self.index(key).ok_or(AuthError::NoSecretRequest)?;
        let result = self.answer_secret(now, index, token, entry);
        self.process(now);
        result
    }

    /// The answer to a member's [`LinkEvent::VerifyNeeded`]; see
    /// [`Link::provide_verdict`](crate::Link::provide_verdict).
    ///
    /// # Errors
    ///
    /// [`AuthError::NoVerifyRequest`] when nothing is outstanding (or `key` is no member),
    /// [`AuthError::StaleVerdict`] when `token` is an earlier request's.
    pub fn provide_verdict(
        &mut self,
        now: Instant,
        key: &K,
        token: SecretToken,
        verdict: Verdict,
    ) -> Result<(), AuthError> {
        let index = self.index(key).ok_or(AuthError::NoVerifyRequest)?;
        let result = self.members[index]
            .control
            .provide_verdict(now, token, verdict);
        self.process(now);
        result
    }

    /// The peer's IPCP address (a RADIUS Framed-IP-Address, a secrets entry's address), set
    /// before the network layer starts; afterwards it changes nothing.
    pub fn set_peer_address(&mut self, address: std::net::Ipv4Addr) {
        if !self.network.is_running() {
            self.network.set_peer_address(address);
        }
    }

    /// Releases memory an idle bundle does not need (see [`LinkControl::compact`]).
    pub fn compact(&mut self, now: Instant) {
        for member in &mut self.members {
            member.control.compact(now);
        }
        self.network.compact();
    }

    /// Sends an IPv4 packet over the bundle.
    ///
    /// # Errors
    ///
    /// [`LinkError::NotReady`] unless IPCP is Opened, [`LinkError::TooBig`] past the MTU.
    pub fn send_ipv4(&mut self, now: Instant, packet: &[u8]) -> Result<(), LinkError> {
        self.network.send_ipv4(packet)?;
        self.flush_network(now);
        Ok(())
    }

    /// Sends an IPv6 packet over the bundle.
    ///
    /// # Errors
    ///
    /// [`LinkError::NotReady`] unless IPv6CP is Opened, [`LinkError::TooBig`] past the MTU.
    pub fn send_ipv6(&mut self, now: Instant, packet: &[u8]) -> Result<(), LinkError> {
        self.network.send_ipv6(packet)?;
        self.flush_network(now);
        Ok(())
    }

    /// Next bytes (async) or frame (sync) to send, and the member to send them on. Members take
    /// turns.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<(K, Vec<u8>)> {
        let count = self.members.len();
        for step in 0..count {
            let index = (self.next_transmit + step) % count;
            if let Some(bytes) = self.members[index].control.poll_transmit() {
                self.next_transmit = (index + 1) % count;
                return Some((self.members[index].key.clone(), bytes));
            }
        }
        None
    }

    /// Next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<MultilinkEvent<K>> {
        self.events.pop_front()
    }

    /// Next received datagram.
    #[must_use]
    pub fn poll_datagram(&mut self) -> Option<Datagram> {
        self.network.poll_datagram()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.members
            .iter()
            .filter_map(|m| m.control.poll_timeout())
            .chain(self.network.poll_timeout())
            .chain(self.mp.as_deref().and_then(Bundle::poll_timeout))
            .min()
    }

    fn index(&self, key: &K) -> Option<usize> {
        self.members.iter().position(|m| m.key == *key)
    }

    fn role(&self, key: &K) -> Option<Role> {
        self.index(key).map(|i| self.members[i].role.clone())
    }

    fn frame_at(&mut self, now: Instant, index: usize, protocol: Protocol, payload: &[u8]) {
        if let Received::Network { protocol, payload } = self.members[index]
            .control
            .receive_frame(now, protocol, payload)
        {
            // The control half's consequences (a Network phase just entered) run first.
            self.process(now);
            let role = self.members[index].role.clone();
            match (protocol, role) {
                (Protocol::Mp, Role::Mp(id)) => {
                    if let Some(mp) = self.mp.as_mut()
                        && let Err(error) = mp.handle_input(now, id, payload)
                    {
                        debug!("dropped a Multilink fragment: {error}");
                    }
                    self.deliver_reassembled(now, index);
                }
                (Protocol::Mp, _) => self.members[index]
                    .control
                    .protocol_reject(now, protocol, payload),
                (_, Role::Direct | Role::Mp(_)) => {
                    if self.network.handle_frame(now, protocol, payload) == Handled::Unsupported {
                        self.members[index]
                            .control
                            .protocol_reject(now, protocol, payload);
                    }
                }
                // Not (yet) in the bundle: what its network layer would get is dropped.
                (_, Role::Idle | Role::Ready) => self.members[index].control.count_discarded(),
            }
        }
        self.process(now);
    }

    /// Packets the MP machine put back together go to the network layer; one it does not run is
    /// Protocol-Rejected on the member it completed on.
    fn deliver_reassembled(&mut self, now: Instant, index: usize) {
        let Some(mp) = self.mp.as_mut() else {
            return;
        };
        let mut packets = Vec::new();
        while let Some(packet) = mp.poll_packet() {
            packets.push(packet);
        }
        for packet in packets {
            let protocol = Protocol::from_number(packet.protocol);
            if self
                .network
                .handle_frame(now, protocol, &packet.information)
                == Handled::Unsupported
            {
                self.members[index]
                    .control
                    .protocol_reject(now, protocol, &packet.information);
            }
        }
    }

    fn answer_secret(
        &mut self,
        now: Instant,
        index: usize,
        token: SecretToken,
        entry: Option<SecretEntry>,
    ) -> Result<(), AuthError> {
        let address = entry.as_ref().and_then(SecretEntry::assigned_address);
        let result = self.members[index]
            .control
            .provide_secret(now, token, entry);
        if result.is_ok()
            && let Some(address) = address
            && !self.network.is_running()
        {
            self.network.set_peer_address(address);
        }
        result
    }

    /// The bundle a member belongs to, and whether it negotiated Multilink.
    fn identity_of(control: &LinkControl) -> (BundleKey, bool) {
        let negotiated = control.lcp_negotiated();
        let endpoint = negotiated
            .and_then(|n| n.peer_endpoint.as_ref())
            .and_then(|e| EndpointDiscriminator::from_option_data(&e.option_data()).ok());
        let multilink = negotiated.is_some_and(|n| n.our_mrru.is_some() && n.peer_mrru.is_some());
        (
            BundleKey::new(control.peer_name().map(str::as_bytes), endpoint),
            multilink,
        )
    }

    fn join_index(&mut self, now: Instant, index: usize) {
        let (key, multilink) = Self::identity_of(&self.members[index].control);
        let Some(negotiated) = self.members[index].control.lcp_negotiated().cloned() else {
            return;
        };
        let refusal = if !self.network.is_running() {
            // The first member: the network layer starts, over Multilink or directly.
            let mtu = if multilink {
                let (ours, peers) = (
                    negotiated.our_mrru.unwrap_or(1500),
                    negotiated.peer_mrru.unwrap_or(1500),
                );
                let mut bundle = Bundle::new(BundleConfig::negotiated(
                    ours,
                    peers,
                    negotiated.ssnhf_rx,
                    negotiated.ssnhf_tx,
                ));
                match bundle.add_link(MemberLink::new(negotiated.mtu)) {
                    Ok(id) => self.members[index].role = Role::Mp(id),
                    Err(error) => {
                        debug!("cannot start the bundle: {error}");
                        return;
                    }
                }
                self.mp = Some(Box::new(bundle));
                // The bundle's MTU is what the peer reassembles; each member link's own MTU
                // (LCP `mtu`) only bounds the fragments on it.
                peers
            } else {
                self.members[index].role = Role::Direct;
                negotiated.mtu
            };
            let keys = self.members[index].control.mschap_key_material().map(|k| {
                let (send, receive) = k.start_keys();
                MppeKeys::new(send, receive)
            });
            if multilink {
                info!("Multilink bundle up: MRRU {mtu}");
            }
            self.identity = Some(Box::new(key));
            self.network.up(now, keys, mtu);
            None
        } else if !multilink || self.mp.is_none() {
            Some(MultilinkRefusal::NotNegotiated)
        } else if self.identity.as_deref() != Some(&key) {
            Some(MultilinkRefusal::DifferentPeer)
        } else {
            match self
                .mp
                .as_mut()
                .map(|mp| mp.add_link(MemberLink::new(negotiated.mtu)))
            {
                Some(Ok(id)) => {
                    self.members[index].role = Role::Mp(id);
                    None
                }
                _ => Some(MultilinkRefusal::BundleFull),
            }
        };
        match refusal {
            None => {
                let members = self.joined();
                push_bounded(
                    &mut self.events,
                    MultilinkEvent::Joined {
                        member: self.members[index].key.clone(),
                        members,
                    },
                );
            }
            Some(refusal) => {
                self.members[index].role = Role::Idle;
                self.members[index]
                    .control
                    .fail(now, DownReason::Multilink(refusal));
            }
        }
    }

    fn leave_index(&mut self, now: Instant, index: usize) {
        match std::mem::replace(&mut self.members[index].role, Role::Idle) {
            Role::Mp(id) => {
                if let Some(mp) = self.mp.as_mut() {
                    let _ = mp.remove_link(now, id);
                }
            }
            Role::Direct => {}
            Role::Idle | Role::Ready => return,
        }
        let members = self.joined();
        push_bounded(
            &mut self.events,
            MultilinkEvent::Left {
                member: self.members[index].key.clone(),
                members,
            },
        );
        if members == 0 {
            self.network.down(now);
            self.mp = None;
            self.identity = None;
            push_bounded(&mut self.events, MultilinkEvent::BundleDown);
        }
    }

    /// Frames what the network layer wants to send: in MP fragments over the members, or on the
    /// one direct member.
    fn flush_network(&mut self, now: Instant) {
        while let Some((protocol, payload)) = self.network.poll_transmit() {
            if let Some(mp) = self.mp.as_mut() {
                if let Err(error) = mp.send(now, protocol.number(), &payload) {
                    debug!("{protocol} packet not sent over the bundle: {error}");
                }
            } else if let Some(member) = self.members.iter_mut().find(|m| m.role == Role::Direct) {
                member.control.send_frame(now, protocol, &payload);
            }
        }
        if let Some(mp) = self.mp.as_mut() {
            while let Some((id, information)) = mp.poll_transmit() {
                if let Some(member) = self.members.iter_mut().find(|m| m.role == Role::Mp(id)) {
                    member.control.send_frame(now, Protocol::Mp, &information);
                }
            }
        }
    }

    /// Moves events between the members, the MP machine and the network layer until all are
    /// quiet.
    fn process(&mut self, now: Instant) {
        for _ in 0..64 {
            let mut busy = false;
            for index in 0..self.members.len() {
                while let Some(event) = self.members[index].control.poll_event() {
                    busy = true;
                    self.on_control_event(now, index, event);
                }
            }
            self.flush_network(now);
            while let Some(event) = self.network.poll_event() {
                busy = true;
                self.on_network_event(now, event);
            }
            if let Some(mp) = self.mp.as_mut() {
                while let Some(event) = mp.poll_event() {
                    debug!("bundle: {event:?}");
                }
            }
            if !busy {
                break;
            }
        }
    }

    fn member_event(&mut self, index: usize, event: LinkEvent) {
        let member = self.members[index].key.clone();
        push_bounded(&mut self.events, MultilinkEvent::Member { member, event });
    }

    fn on_control_event(&mut self, now: Instant, index: usize, event: ControlEvent) {
        match event {
            ControlEvent::Phase(phase) => {
                let role = self.members[index].role.clone();
                if phase == Phase::Network && role == Role::Idle {
                    if self.hold {
                        let (bundle, multilink) = Self::identity_of(&self.members[index].control);
                        self.members[index].role = Role::Ready;
                        push_bounded(
                            &mut self.events,
                            MultilinkEvent::MemberReady {
                                member: self.members[index].key.clone(),
                                bundle,
                                multilink,
                            },
                        );
                    } else {
                        self.join_index(now, index);
                    }
                } else if phase != Phase::Network {
                    if role == Role::Ready {
                        self.members[index].role = Role::Idle;
                    }
                    self.leave_index(now, index);
                }
                self.member_event(index, LinkEvent::Phase(phase));
            }
            ControlEvent::LinkUp(negotiated) => {
                self.member_event(index, LinkEvent::LinkUp(negotiated));
            }
            ControlEvent::Authenticated { peer_name } => {
                self.member_event(index, LinkEvent::Authenticated { peer_name });
            }
            ControlEvent::SecretNeeded(request) => {
                match self.members[index].control.config().auth.secrets.clone() {
                    Some(table) => {
                        let entry = table.lookup_now(&request.client, &request.server);
                        if let Err(error) = self.answer_secret(now, index, request.token, entry) {
                            debug!("secret not taken: {error}");
                        }
                    }
                    // Never dropped: the link waits in Authenticate for the answer.
                    None => {
                        let member = self.members[index].key.clone();
                        self.events.push_back(MultilinkEvent::Member {
                            member,
                            event: LinkEvent::SecretNeeded(request),
                        });
                    }
                }
            }
            ControlEvent::ProtocolRejected(protocol) => {
                if matches!(self.members[index].role, Role::Direct | Role::Mp(_)) {
                    self.network.protocol_rejected(now, protocol);
                }
            }
            ControlEvent::VerifyNeeded(request) => {
                // Never dropped: the link waits in Authenticate for the verdict.
                let member = self.members[index].key.clone();
                self.events.push_back(MultilinkEvent::Member {
                    member,
                    event: LinkEvent::VerifyNeeded(request),
                });
            }
            ControlEvent::LoopbackDetected => {
                self.member_event(index, LinkEvent::LoopbackDetected);
            }
            ControlEvent::LinkDown { reason } => {
                self.leave_index(now, index);
                self.member_event(index, LinkEvent::LinkDown { reason });
            }
        }
    }

    fn on_network_event(&mut self, now: Instant, event: NetworkEvent) {
        let event = match event {
            NetworkEvent::IpUp { local, peer, dns } => LinkEvent::IpUp { local, peer, dns },
            NetworkEvent::IpDown => LinkEvent::IpDown,
            NetworkEvent::Ipv6Up { local, peer } => LinkEvent::Ipv6Up { local, peer },
            NetworkEvent::Ipv6Down => LinkEvent::Ipv6Down,
            NetworkEvent::CcpUp(negotiated) => LinkEvent::CcpUp(negotiated),
            NetworkEvent::CcpDown => LinkEvent::CcpDown,
            NetworkEvent::NcpFinished { protocol, reason } => {
                LinkEvent::NcpFinished { protocol, reason }
            }
            NetworkEvent::Failed(reason) => {
                // The bundle's network layer failed for good: every member goes down with it.
                for member in &mut self.members {
                    if matches!(member.role, Role::Direct | Role::Mp(_)) {
                        member.control.fail(now, reason.clone());
                    }
                }
                return;
            }
        };
        push_bounded(&mut self.events, MultilinkEvent::Network(event));
    }
}
