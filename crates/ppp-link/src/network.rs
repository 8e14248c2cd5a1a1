//! The network half of a PPP link: IPCP, IPv6CP, CCP and the datagrams they carry.
//!
//! One [`NetworkLayer`] sits above one link ([`Link`](crate::Link)) or above a Multilink bundle:
//! NCPs and CCP belong to the bundle, LCP and authentication to each member (RFC 1990 §2). It
//! starts when the link (or the bundle's first member) enters the Network phase
//! ([`up`](NetworkLayer::up)) and stops when it leaves it ([`down`](NetworkLayer::down)). It
//! speaks in PPP packets (protocol + information field); the owner frames them.

use std::collections::VecDeque;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use ppp_ccp::{CcpEvent, CcpNegotiated, CcpSession, CompressionMethod, MppeKeys, Transmit};
use ppp_core::{CloseReason, LazyQueue, Random};
use ppp_frame::Protocol;
use ppp_ipcp::{Ipcp, IpcpNegotiated, Ipv6cp, Ipv6cpConfig, Ipv6cpNegotiated};
use ppp_lcp::FinishReason;
use ppp_lcp::fsm::{ControlProtocol, Fsm, FsmConfig, FsmEvent, State};
use tracing::{debug, info};

use crate::control::{due, push_bounded};
use crate::reason::DownReason;
use crate::{Datagram, LinkConfig, LinkError};

/// What the network layer tells its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetworkEvent {
    /// IPCP is Opened.
    IpUp {
        /// Our address.
        local: Ipv4Addr,
        /// The peer's address.
        peer: Ipv4Addr,
        /// DNS servers the peer gave us.
        dns: Vec<Ipv4Addr>,
    },
    /// IPCP left Opened.
    IpDown,
    /// IPv6CP is Opened.
    Ipv6Up {
        /// Our link-local address.
        local: Ipv6Addr,
        /// The peer's link-local address.
        peer: Ipv6Addr,
    },
    /// IPv6CP left Opened.
    Ipv6Down,
    /// CCP is Opened.
    CcpUp(CcpNegotiated),
    /// CCP left Opened or finished.
    CcpDown,
    /// An NCP stopped for good; the link stays up while another NCP runs.
    NcpFinished {
        /// The NCP.
        protocol: Protocol,
        /// Why.
        reason: FinishReason,
    },
    /// The link must go down for this reason (no NCP left, encryption impossible): the owner
    /// closes LCP with it.
    Failed(DownReason),
}

/// What the network layer did with a received packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handled {
    /// Taken (or counted and dropped as early or refused, RFC 1661 §3).
    Taken,
    /// Not a protocol this layer runs: the owner sends a Protocol-Reject.
    Unsupported,
}

/// Counters of the network layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetworkStats {
    /// IP datagrams received and delivered.
    pub datagrams_in: u64,
    /// IP datagrams sent.
    pub datagrams_out: u64,
    /// Packets dropped: NCP packets before the Network phase, datagrams before their NCP is
    /// Opened, compressed packets that did not decompress, datagrams refused by CCP.
    pub discarded: u64,
}

/// IPCP, IPv6CP and CCP over one link or bundle, sans-IO.
pub struct NetworkLayer {
    fsm_config: FsmConfig,
    random: Random,
    ipcp: Option<Box<Fsm<Ipcp>>>,
    ipv6cp: Option<Box<Fsm<Ipv6cp>>>,
    ccp: Option<Box<CcpSession>>,
    /// Between `up` and `down`.
    running: bool,
    /// The NCPs start when CCP comes up (encryption is required), or when it settles (MPPE is
    /// offered: up or finished, at the latest at `ncp_hold_deadline`).
    ncps_wait_for_ccp: bool,
    /// With MPPE offered but not required: when the NCPs start even if CCP has not settled.
    ncp_hold_deadline: Option<Instant>,
    /// The MTU datagrams are checked against (before MPPE's 4 bytes).
    mtu: u16,
    transmit: VecDeque<(Protocol, Vec<u8>)>,
    events: LazyQueue<NetworkEvent>,
    datagrams: VecDeque<Datagram>,
    stats: NetworkStats,
}

impl fmt::Debug for NetworkLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetworkLayer")
            .field("ipcp", &self.ipcp.as_deref().map(Fsm::state))
            .field("ipv6cp", &self.ipv6cp.as_ref().map(|f| f.state()))
            .field("ccp", &self.ccp.as_ref().map(|c| c.state()))
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl NetworkLayer {
    /// The network layer for `config` (its IPCP, IPv6CP and CCP parts), drawing IPv6 interface
    /// identifiers from `random`.
    pub fn new(config: &LinkConfig, random: Random) -> Self {
        let fsm_config = config.lcp.fsm.clone();
        let ipcp = config
            .ipcp
            .clone()
            .map(|c| Box::new(Fsm::new(Ipcp::new(c), fsm_config.clone())));
        let ipv6cp = config
            .ipv6cp
            .clone()
            .map(|c| Box::new(ipv6cp_fsm(c, &fsm_config, &random)));
        let ccp = config
            .ccp
            .clone()
            .map(|c| Box::new(CcpSession::new(c, fsm_config.clone())));
        NetworkLayer {
            fsm_config,
            random,
            ipcp,
            ipv6cp,
            ccp,
            running: false,
            ncps_wait_for_ccp: false,
            ncp_hold_deadline: None,
            mtu: 1500,
            transmit: VecDeque::new(),
            events: LazyQueue::new(),
            datagrams: VecDeque::new(),
            stats: NetworkStats::default(),
        }
    }

    /// Replaces IPCP (for example with one drawing from an address pool). Works until
    /// [`up`](Self::up); afterwards it changes nothing and returns `false`.
    pub fn set_ipcp(&mut self, ipcp: Ipcp) -> bool {
        if self.running {
            return false;
        }
        self.ipcp = Some(Box::new(Fsm::new(ipcp, self.fsm_config.clone())));
        true
    }

    /// Replaces the CCP configuration (`None`: no CCP). Works until [`up`](Self::up).
    pub fn set_ccp(&mut self, ccp: Option<ppp_ccp::CcpConfig>) -> bool {
        if self.running {
            return false;
        }
        self.ccp = ccp.map(|c| Box::new(CcpSession::new(c, self.fsm_config.clone())));
        true
    }

    /// Replaces the IPv6CP configuration (`None`: no IPv6). Works until [`up`](Self::up).
    pub fn set_ipv6cp(&mut self, ipv6cp: Option<Ipv6cpConfig>) -> bool {
        if self.running {
            return false;
        }
        self.ipv6cp = ipv6cp.map(|c| Box::new(ipv6cp_fsm(c, &self.fsm_config, &self.random)));
        true
    }

    /// The peer's address from a secrets entry or an authorization server (before IPCP
    /// negotiates it).
    pub fn set_peer_address(&mut self, address: Ipv4Addr) {
        if let Some(ipcp) = self.ipcp.as_mut() {
            ipcp.protocol_mut().set_remote_address(Some(address));
        }
    }

    /// The IPCP automaton, if IPv4 is enabled.
    pub fn ipcp(&self) -> Option<&Fsm<Ipcp>> {
        self.ipcp.as_deref()
    }

    /// The IPv6CP automaton, if IPv6 is enabled.
    pub fn ipv6cp(&self) -> Option<&Fsm<Ipv6cp>> {
        self.ipv6cp.as_deref()
    }

    /// The CCP machine, if CCP is configured.
    pub fn ccp(&self) -> Option<&CcpSession> {
        self.ccp.as_deref()
    }

    /// The IPv4 addresses, while IPCP is Opened.
    pub fn ipcp_negotiated(&self) -> Option<&IpcpNegotiated> {
        opened(self.ipcp.as_deref()).and_then(|fsm| fsm.protocol().negotiated())
    }

    /// The IPv6 interface identifiers, while IPv6CP is Opened.
    pub fn ipv6cp_negotiated(&self) -> Option<&Ipv6cpNegotiated> {
        opened(self.ipv6cp.as_deref()).and_then(|fsm| fsm.protocol().negotiated())
    }

    /// What CCP negotiated, while it is Opened.
    pub fn ccp_negotiated(&self) -> Option<&CcpNegotiated> {
        self.ccp.as_ref()?.negotiated()
    }

    /// Counters.
    pub fn stats(&self) -> NetworkStats {
        self.stats
    }

    /// Releases the memory of empty queues (an idle layer keeps none).
    pub fn compact(&mut self) {
        if let Some(fsm) = self.ipcp.as_mut() {
            fsm.compact();
        }
        if let Some(fsm) = self.ipv6cp.as_mut() {
            fsm.compact();
        }
        if self.transmit.is_empty() {
            self.transmit = VecDeque::new();
        }
        if self.datagrams.is_empty() {
            self.datagrams = VecDeque::new();
        }
    }

    /// Whether the layer runs (between [`up`](Self::up) and [`down`](Self::down)).
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// The MTU for datagrams: `mtu` as given, 4 bytes less while MPPE encrypts what we send (its
    /// header and the protocol field go inside the peer's MRU), as pppd does.
    pub fn mtu(&self) -> u16 {
        let mppe = self
            .ccp_negotiated()
            .is_some_and(|n| matches!(n.transmit, Some(CompressionMethod::Mppe(_))));
        if mppe {
            self.mtu.saturating_sub(4)
        } else {
            self.mtu
        }
    }

    /// Sets the MTU datagrams are checked against (the link's, or a bundle's MRRU).
    pub fn set_mtu(&mut self, mtu: u16) {
        self.mtu = mtu;
    }

    /// The Network phase began: start CCP (keyed with `keys` from MS-CHAP for MPPE) and the
    /// NCPs (after CCP when encryption is required, as pppd does).
    pub fn up(&mut self, now: Instant, keys: Option<MppeKeys>, mtu: u16) {
        self.mtu = mtu;
        if self.ipcp.is_none() && self.ipv6cp.is_none() {
            push_bounded(
                &mut self.events,
                NetworkEvent::Failed(DownReason::NoNetworkProtocolsConfigured),
            );
            return;
        }
        self.running = true;
        if let Some(ccp) = self.ccp.as_mut() {
            if let Some(keys) = keys {
                ccp.set_mppe_keys(keys);
            }
            ccp.open(now);
            ccp.up(now);
        }
        // With encryption required, the NCPs start once CCP is Opened (pppd
        // `continue_networks`): pppd keeps its IPCP Closed until then and answers an early
        // IPCP Configure-Request with a Terminate-Ack, which would cost a restart interval. A
        // peer that requires MPPE does the same to us when we only offer it, so then the NCPs
        // wait until CCP settles (up, or finished), one restart interval at most.
        let ccp = self.ccp.as_ref().map(|c| c.ccp());
        if ccp.is_some_and(ppp_ccp::Ccp::requires_encryption) {
            debug!("encryption required: the NCPs wait for CCP");
            self.ncps_wait_for_ccp = true;
        } else if ccp.is_some_and(|c| {
            c.config().encryption == ppp_ccp::Encryption::Yes && c.mppe_available()
        }) {
            debug!("encryption offered: the NCPs wait for CCP to settle");
            self.ncps_wait_for_ccp = true;
            self.ncp_hold_deadline = Some(now + self.fsm_config.restart_interval);
        } else {
            self.start_ncps(now);
        }
        self.process(now);
    }

    /// The Network phase ended (LCP left Opened, the link or bundle went down).
    pub fn down(&mut self, now: Instant) {
        self.running = false;
        self.ncps_wait_for_ccp = false;
        self.ncp_hold_deadline = None;
        // A control protocol that never saw its lower layer come up (Initial, Starting) gets
        // no Down: that is an illegal event in RFC 1661's table.
        let was_up = |state: State| !matches!(state, State::Initial | State::Starting);
        if let Some(ccp) = self.ccp.as_mut().filter(|c| was_up(c.state())) {
            ccp.down(now);
        }
        if let Some(fsm) = self.ipcp.as_mut().filter(|f| was_up(f.state())) {
            fsm.down(now);
        }
        if let Some(fsm) = self.ipv6cp.as_mut().filter(|f| was_up(f.state())) {
            fsm.down(now);
        }
        self.process(now);
    }

    /// Closes every NCP and CCP (the owner is closing the link).
    pub fn close(&mut self, now: Instant, reason: &CloseReason) {
        if let Some(fsm) = self.ipcp.as_mut() {
            fsm.close(now, reason.clone());
        }
        if let Some(fsm) = self.ipv6cp.as_mut() {
            fsm.close(now, reason.clone());
        }
        if let Some(ccp) = self.ccp.as_mut() {
            ccp.close(now, reason.clone());
        }
        self.process(now);
    }

    /// A received packet of a network-phase protocol. Early packets of protocols we run are
    /// counted and dropped (RFC 1661 §3); protocols we do not run are [`Handled::Unsupported`].
    pub fn handle_frame(&mut self, now: Instant, protocol: Protocol, payload: &[u8]) -> Handled {
        if self.rejects(protocol) {
            return Handled::Unsupported;
        }
        let running = self.running;
        match protocol {
            Protocol::Ipcp if running => {
                if let Some(fsm) = self.ipcp.as_mut() {
                    fsm.handle_input(now, payload);
                }
            }
            Protocol::Ipv6cp if running => {
                if let Some(fsm) = self.ipv6cp.as_mut() {
                    fsm.handle_input(now, payload);
                }
            }
            Protocol::Ccp if running => {
                if let Some(ccp) = self.ccp.as_mut() {
                    ccp.handle_input(now, payload);
                }
            }
            Protocol::Compressed if self.ccp_negotiated().is_some() => {
                let Some(ccp) = self.ccp.as_mut() else {
                    return Handled::Taken;
                };
                match ccp.decompress(now, payload) {
                    Ok((inner, data)) => self.deliver(inner, &data, true),
                    Err(error) => {
                        self.stats.discarded += 1;
                        debug!("dropped a compressed packet: {error}");
                    }
                }
            }
            Protocol::Ipv4 | Protocol::Ipv6 => self.deliver(protocol, payload, false),
            _ => {
                self.stats.discarded += 1;
                debug!("discarded {protocol} packet before its protocol runs");
            }
        }
        self.process(now);
        Handled::Taken
    }

    /// LCP received a Protocol-Reject for `protocol`: the NCP (or CCP) carrying it stops.
    pub fn protocol_rejected(&mut self, now: Instant, protocol: Protocol) {
        match protocol {
            Protocol::Ipcp | Protocol::Ipv4 => {
                if let Some(fsm) = self.ipcp.as_mut() {
                    fsm.handle_reject(now, false);
                }
            }
            Protocol::Ipv6cp | Protocol::Ipv6 => {
                if let Some(fsm) = self.ipv6cp.as_mut() {
                    fsm.handle_reject(now, false);
                }
            }
            Protocol::Ccp | Protocol::Compressed => {
                if let Some(ccp) = self.ccp.as_mut() {
                    ccp.handle_protocol_reject(now);
                }
            }
            other => debug!("peer rejected {other}"),
        }
        self.process(now);
    }

    /// The time from [`poll_timeout`](Self::poll_timeout) has come. A spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(fsm) = self.ipcp.as_mut().filter(|f| due(f.poll_timeout(), now)) {
            fsm.handle_timeout(now);
        }
        if let Some(fsm) = self.ipv6cp.as_mut().filter(|f| due(f.poll_timeout(), now)) {
            fsm.handle_timeout(now);
        }
        if let Some(ccp) = self.ccp.as_mut().filter(|c| due(c.poll_timeout(), now)) {
            ccp.handle_timeout(now);
        }
        if due(self.ncp_hold_deadline, now) {
            debug!("CCP has not settled: the NCPs start");
            self.release_ncps(now);
        }
        self.process(now);
    }

    /// Sends an IPv4 packet.
    ///
    /// # Errors
    ///
    /// [`LinkError::NotReady`] unless IPCP is Opened, [`LinkError::TooBig`] past the MTU.
    pub fn send_ipv4(&mut self, packet: &[u8]) -> Result<(), LinkError> {
        if self.ipcp_negotiated().is_none() {
            return Err(LinkError::NotReady(Protocol::Ipv4));
        }
        self.send_datagram(Protocol::Ipv4, packet)
    }

    /// Sends an IPv6 packet.
    ///
    /// # Errors
    ///
    /// [`LinkError::NotReady`] unless IPv6CP is Opened, [`LinkError::TooBig`] past the MTU.
    pub fn send_ipv6(&mut self, packet: &[u8]) -> Result<(), LinkError> {
        if self.ipv6cp_negotiated().is_none() {
            return Err(LinkError::NotReady(Protocol::Ipv6));
        }
        self.send_datagram(Protocol::Ipv6, packet)
    }

    fn send_datagram(&mut self, protocol: Protocol, packet: &[u8]) -> Result<(), LinkError> {
        let mtu = usize::from(self.mtu());
        if packet.len() > mtu {
            return Err(LinkError::TooBig {
                len: packet.len(),
                mtu,
            });
        }
        match self.ccp.as_mut().map(|ccp| ccp.compress(protocol, packet)) {
            None | Some(Transmit::Uncompressed) => {
                self.stats.datagrams_out += 1;
                self.transmit.push_back((protocol, packet.to_vec()));
            }
            Some(Transmit::Compressed(info)) => {
                self.stats.datagrams_out += 1;
                self.transmit.push_back((Protocol::Compressed, info));
            }
            Some(Transmit::Drop) => self.stats.discarded += 1,
        }
        Ok(())
    }

    /// Next packet to send: its protocol and information field.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<(Protocol, Vec<u8>)> {
        self.transmit.pop_front()
    }

    /// Next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<NetworkEvent> {
        self.events.pop_front()
    }

    /// Next received datagram.
    #[must_use]
    pub fn poll_datagram(&mut self) -> Option<Datagram> {
        self.datagrams.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.ipcp.as_deref().and_then(Fsm::poll_timeout),
            self.ipv6cp.as_ref().and_then(|f| f.poll_timeout()),
            self.ccp.as_ref().and_then(|c| c.poll_timeout()),
            self.ncp_hold_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether a protocol is one we do not run at all (it gets a Protocol-Reject).
    fn rejects(&self, protocol: Protocol) -> bool {
        match protocol {
            Protocol::Ipcp | Protocol::Ipv4 => self.ipcp.is_none(),
            Protocol::Ipv6cp | Protocol::Ipv6 => self.ipv6cp.is_none(),
            Protocol::Ccp | Protocol::Compressed => self.ccp.is_none(),
            _ => true,
        }
    }

    /// Hands a datagram (received as it is, or out of a compressed packet) to the owner if its
    /// NCP is up and CCP lets it through.
    fn deliver(&mut self, protocol: Protocol, payload: &[u8], decompressed: bool) {
        let datagram = match protocol {
            Protocol::Ipv4 if self.ipcp_negotiated().is_some() => Datagram::Ipv4(payload.to_vec()),
            Protocol::Ipv6 if self.ipv6cp_negotiated().is_some() => {
                Datagram::Ipv6(payload.to_vec())
            }
            _ => {
                self.stats.discarded += 1;
                return;
            }
        };
        if !decompressed
            && let Some(ccp) = self.ccp.as_mut()
            && !ccp.receive_uncompressed(protocol, payload)
        {
            self.stats.discarded += 1;
            return;
        }
        self.stats.datagrams_in += 1;
        push_bounded(&mut self.datagrams, datagram);
    }

    /// Starts the NCPs held back for CCP, if they were.
    fn release_ncps(&mut self, now: Instant) {
        self.ncp_hold_deadline = None;
        if self.ncps_wait_for_ccp && self.running {
            self.ncps_wait_for_ccp = false;
            self.start_ncps(now);
        }
    }

    fn start_ncps(&mut self, now: Instant) {
        if let Some(fsm) = self.ipcp.as_mut() {
            start_ncp(fsm, now);
        }
        if let Some(fsm) = self.ipv6cp.as_mut() {
            start_ncp(fsm, now);
        }
    }

    /// Moves output and events of the NCPs and CCP along until they are quiet.
    fn process(&mut self, now: Instant) {
        for _ in 0..64 {
            let mut busy = false;
            if let Some(fsm) = self.ipcp.as_mut() {
                while let Some(packet) = fsm.poll_transmit() {
                    self.transmit.push_back((Protocol::Ipcp, packet));
                }
            }
            if let Some(fsm) = self.ipv6cp.as_mut() {
                while let Some(packet) = fsm.poll_transmit() {
                    self.transmit.push_back((Protocol::Ipv6cp, packet));
                }
            }
            if let Some(ccp) = self.ccp.as_mut() {
                while let Some(packet) = ccp.poll_transmit() {
                    self.transmit.push_back((Protocol::Ccp, packet));
                }
            }
            while let Some(event) = self.ipcp.as_deref_mut().and_then(Fsm::poll_event) {
                busy = true;
                self.on_ipcp_event(event);
            }
            while let Some(event) = self.ipv6cp.as_mut().and_then(|f| f.poll_event()) {
                busy = true;
                self.on_ipv6cp_event(event);
            }
            while let Some(event) = self.ccp.as_mut().and_then(|c| c.poll_event()) {
                busy = true;
                self.on_ccp_event(now, event);
            }
            if !busy {
                break;
            }
        }
    }

    fn on_ipcp_event(&mut self, event: FsmEvent) {
        match event {
            FsmEvent::Up => {
                // The automaton reports Up only with a usable result (see `this_layer_up`).
                if let Some(n) = self.ipcp_negotiated().copied() {
                    info!("IPCP up: local {} remote {}", n.local, n.peer);
                    push_bounded(
                        &mut self.events,
                        NetworkEvent::IpUp {
                            local: n.local,
                            peer: n.peer,
                            dns: n.dns.iter().flatten().copied().collect(),
                        },
                    );
                }
            }
            FsmEvent::Down => push_bounded(&mut self.events, NetworkEvent::IpDown),
            FsmEvent::Finished { reason } => self.ncp_finished(Protocol::Ipcp, reason),
            _ => {}
        }
    }

    fn on_ipv6cp_event(&mut self, event: FsmEvent) {
        match event {
            FsmEvent::Up => {
                if let Some(n) = self.ipv6cp_negotiated().copied() {
                    info!(
                        "IPV6CP up: local {} remote {}",
                        n.local_link_local(),
                        n.peer_link_local()
                    );
                    push_bounded(
                        &mut self.events,
                        NetworkEvent::Ipv6Up {
                            local: n.local_link_local(),
                            peer: n.peer_link_local(),
                        },
                    );
                }
            }
            FsmEvent::Down => push_bounded(&mut self.events, NetworkEvent::Ipv6Down),
            FsmEvent::Finished { reason } => self.ncp_finished(Protocol::Ipv6cp, reason),
            _ => {}
        }
    }

    fn on_ccp_event(&mut self, now: Instant, event: CcpEvent) {
        match event {
            CcpEvent::Up(negotiated) => {
                info!("CCP up: {negotiated}");
                push_bounded(&mut self.events, NetworkEvent::CcpUp(negotiated));
                self.release_ncps(now);
            }
            CcpEvent::Down => push_bounded(&mut self.events, NetworkEvent::CcpDown),
            CcpEvent::Finished { reason } => {
                info!("CCP finished: {reason}");
                push_bounded(&mut self.events, NetworkEvent::CcpDown);
                // Without MPPE (only offered), the NCPs go on.
                if self.ncp_hold_deadline.is_some() {
                    self.release_ncps(now);
                }
            }
            CcpEvent::LinkFailure { reason } => push_bounded(
                &mut self.events,
                NetworkEvent::Failed(DownReason::Encryption(reason)),
            ),
            _ => {}
        }
    }

    /// An NCP finished; when none is left running, the link must close as pppd does.
    fn ncp_finished(&mut self, protocol: Protocol, reason: FinishReason) {
        if !self.running {
            return;
        }
        info!("{protocol} finished: {reason}");
        push_bounded(
            &mut self.events,
            NetworkEvent::NcpFinished {
                protocol,
                reason: reason.clone(),
            },
        );
        let running = |state: Option<State>| {
            state.is_some_and(|s| !matches!(s, State::Initial | State::Closed | State::Stopped))
        };
        let any_running = running(self.ipcp.as_deref().map(Fsm::state))
            || running(self.ipv6cp.as_ref().map(|f| f.state()));
        if !any_running {
            push_bounded(
                &mut self.events,
                NetworkEvent::Failed(DownReason::NoNetworkProtocols { protocol, reason }),
            );
        }
    }
}

fn opened<P: ControlProtocol>(fsm: Option<&Fsm<P>>) -> Option<&Fsm<P>> {
    fsm.filter(|f| f.state() == State::Opened)
}

fn start_ncp<P: ControlProtocol>(fsm: &mut Fsm<P>, now: Instant) {
    match fsm.state() {
        State::Initial => {
            fsm.open(now);
            fsm.up(now);
        }
        State::Starting => fsm.up(now),
        State::Closed => fsm.open(now),
        _ => {}
    }
}

/// The IPv6CP automaton for `config`, its interface identifiers drawn from `random`.
fn ipv6cp_fsm(config: Ipv6cpConfig, fsm: &FsmConfig, random: &Random) -> Fsm<Ipv6cp> {
    Fsm::new(Ipv6cp::new(config, random.clone()), fsm.clone())
}
