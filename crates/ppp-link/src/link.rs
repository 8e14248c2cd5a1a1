//! The link: phases, demultiplexing, framing and the composition of LCP, authentication and the
//! NCPs.

use std::collections::VecDeque;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use ppp_frame::{
    AsyncDecoder, AsyncEncoder, ByteSet, DecoderConfig, DecoderStats, EncoderConfig, Protocol,
};
use ppp_ipcp::{Ipcp, IpcpConfig, IpcpNegotiated, Ipv6cp, Ipv6cpConfig, Ipv6cpNegotiated};
use ppp_lcp::fsm::{Fsm, FsmConfig, FsmEvent, State};
use ppp_lcp::lcp::{Lcp, LcpConfig, LcpEvent, LcpNegotiated, SplitMix64};
use tracing::{debug, info};

use ppp_auth::{AuthEvent, AuthStatus, Authenticatee, Authenticator};
use ppp_ccp::{CcpEvent, CcpNegotiated, CcpSession, CompressionMethod, MppeKeys, Transmit};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use crate::auth::{
    AuthConfig, MsChapKeyMaterial, SecretEntry, SecretRequest, is_for_authenticator,
};
use crate::{LinkError, LinkStats};

/// How PPP frames travel on the lower layer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Framing {
    /// Async HDLC-like framing (RFC 1662 §4) on a serial line or modem: [`Link::handle_input`]
    /// takes any chunk of received bytes and [`Link::poll_transmit`] gives bytes to write.
    Async {
        /// Bytes to escape on transmit beyond the negotiated ACCM (pppd `escape`).
        extra_escapes: ByteSet,
    },
    /// Frames that are already delimited by the lower layer (PPPoE, RFC 2516): each
    /// [`Link::handle_input`] is one frame (protocol field and information) and each
    /// [`Link::poll_transmit`] is one frame to send.
    Sync,
}

impl Framing {
    /// Async framing without extra escapes.
    pub const fn serial() -> Self {
        Framing::Async {
            extra_escapes: ByteSet::EMPTY,
        }
    }
}

/// The configuration of a link: pppd's and RouterOS's options, by layer.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    /// LCP options: MRU, ACCM, authentication (`allow`, `require`), echo, restart timer, ...
    pub lcp: LcpConfig,
    /// IPCP options, or `None` to run no IPv4 (pppd `noip`).
    pub ipcp: Option<IpcpConfig>,
    /// IPv6CP options, or `None` to run no IPv6 (pppd without `+ipv6`).
    pub ipv6cp: Option<Ipv6cpConfig>,
    /// Authentication: our credentials, our name, timers.
    pub auth: AuthConfig,
    /// Compression and encryption (CCP with MPPE or Deflate; RouterOS `use-encryption`,
    /// `use-compression`), or `None` to run no CCP (its packets are Protocol-Rejected).
    pub ccp: Option<ppp_ccp::CcpConfig>,
    /// How frames travel.
    pub framing: Framing,
    /// Seed of the random numbers (Magic-Numbers, interface identifiers). The same seed and the
    /// same inputs give the same link.
    pub seed: u64,
    /// Time without transmission after which the next frame gets its own opening flag (async).
    pub flag_time: Duration,
    /// Sync framing: bytes left free at the front of every frame [`Link::poll_transmit`] gives,
    /// for the lower layer's headers (PPPoE fills its 20 there), so no frame is copied again.
    pub headroom: usize,
}

impl Default for LinkConfig {
    /// A dial-out client on a serial line: pppd's LCP defaults, ask for an address and DNS, no
    /// IPv6.
    fn default() -> Self {
        LinkConfig {
            lcp: LcpConfig::default(),
            ipcp: Some(IpcpConfig::client()),
            ipv6cp: None,
            auth: AuthConfig::default(),
            ccp: None,
            framing: Framing::serial(),
            seed: 0,
            flag_time: Duration::from_millis(20),
            headroom: 0,
        }
    }
}

impl LinkConfig {
    /// A PPPoE link (RFC 2516): sync framing and LCP without ACCM, PFC or ACFC, MRU 1492.
    pub fn pppoe() -> Self {
        LinkConfig {
            lcp: LcpConfig::pppoe(),
            framing: Framing::Sync,
            ..LinkConfig::default()
        }
    }
}

/// The phases of a link (RFC 1661 §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Nothing is happening.
    Dead,
    /// LCP is negotiating.
    Establish,
    /// LCP is Opened and the negotiated authentication is running.
    Authenticate,
    /// Authentication (if any) succeeded: NCPs run and datagrams flow once their NCP is Opened.
    Network,
    /// The link is being terminated.
    Terminate,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Dead => "dead",
            Phase::Establish => "establish",
            Phase::Authenticate => "authenticate",
            Phase::Network => "network",
            Phase::Terminate => "terminate",
        })
    }
}

/// What the link tells its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkEvent {
    /// The phase changed.
    Phase(Phase),
    /// LCP is Opened with these options.
    LinkUp(LcpNegotiated),
    /// Every negotiated authentication succeeded.
    Authenticated {
        /// The name the peer authenticated as, when we authenticated it.
        peer_name: Option<String>,
    },
    /// A session needs a secret: answer with [`Link::provide_secret`].
    SecretNeeded(SecretRequest),
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
    /// CCP is Opened: datagrams are compressed or encrypted as negotiated.
    CcpUp(CcpNegotiated),
    /// CCP left Opened or finished; datagrams go out as they are (or not at all if encryption is
    /// required).
    CcpDown,
    /// An NCP stopped for good (the peer rejected it, or negotiation failed); the link stays up
    /// while another NCP runs.
    NcpFinished {
        /// The NCP.
        protocol: Protocol,
        /// Why.
        reason: String,
    },
    /// The peer sent an Echo-Request or Configure-Request carrying our own magic number.
    LoopbackDetected,
    /// The link is down and the lower layer may be released.
    LinkDown {
        /// Why, in words for logs and users.
        reason: String,
    },
}

/// A network-layer datagram received on the link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Datagram {
    /// An IPv4 packet.
    Ipv4(Vec<u8>),
    /// An IPv6 packet.
    Ipv6(Vec<u8>),
}

/// A PPP packet as it crossed the link, for captures (`--pcap`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturedPacket {
    /// When it was sent or received.
    pub at: Instant,
    /// Whether we sent it.
    pub sent: bool,
    /// Its protocol.
    pub protocol: Protocol,
    /// Its information field.
    pub payload: Vec<u8>,
}

/// Queued items kept at most; beyond this the oldest events and captures are dropped.
const MAX_QUEUE: usize = 1024;

/// A whole PPP link, sans-IO: LCP, authentication, IPCP and IPv6CP over async or sync framing.
///
/// The run loop: call [`up`](Self::up) when the lower layer (serial line after CONNECT, PPPoE
/// session after PADS) is ready and [`open`](Self::open) to start; feed received bytes to
/// [`handle_input`](Self::handle_input), outbound IP packets to
/// [`send_ipv4`](Self::send_ipv4)/[`send_ipv6`](Self::send_ipv6); after each call drain
/// [`poll_transmit`](Self::poll_transmit), [`poll_event`](Self::poll_event) and
/// [`poll_datagram`](Self::poll_datagram) until they return `None`, then sleep until
/// [`poll_timeout`](Self::poll_timeout) and call [`handle_timeout`](Self::handle_timeout).
/// Nothing here reads a clock, sleeps, or panics on any input.
pub struct Link {
    config: LinkConfig,
    phase: Phase,
    lcp: Lcp,
    lcp_negotiated: Option<LcpNegotiated>,
    ipcp: Option<Fsm<Ipcp>>,
    ipv6cp: Option<Fsm<Ipv6cp>>,
    ccp: Option<CcpSession>,
    ncps_started: bool,
    /// The NCPs start when CCP comes up (encryption is required).
    ncps_wait_for_ccp: bool,
    rng: SplitMix64,
    authenticator: Option<Authenticator>,
    authenticatee: Option<Authenticatee>,
    authenticated_peer: Option<String>,
    framer: Framer,
    last_transmit: Option<Instant>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<LinkEvent>,
    datagrams: VecDeque<Datagram>,
    capture: Option<VecDeque<CapturedPacket>>,
    down_reason: Option<String>,
    stats: LinkStats,
}

// One per link, so the size of the async variant does not matter.
#[allow(clippy::large_enum_variant)]
enum Framer {
    Async {
        encoder: AsyncEncoder,
        decoder: AsyncDecoder,
        extra_escapes: ByteSet,
    },
    Sync {
        pfc: bool,
    },
}

impl Framer {
    fn new(framing: &Framing) -> Self {
        match framing {
            Framing::Async { extra_escapes } => Framer::Async {
                encoder: AsyncEncoder::new(EncoderConfig {
                    extra_escapes: *extra_escapes,
                    ..EncoderConfig::default()
                }),
                decoder: AsyncDecoder::new(DecoderConfig::default()),
                extra_escapes: *extra_escapes,
            },
            Framing::Sync => Framer::Sync { pfc: false },
        }
    }

    /// Applies what LCP negotiated (at LCP Opened) or the defaults (`None`, when LCP goes down).
    fn configure(&mut self, negotiated: Option<&LcpNegotiated>) {
        match self {
            Framer::Async {
                encoder,
                decoder,
                extra_escapes,
            } => {
                let (tx, rx) = match negotiated {
                    Some(n) => (
                        EncoderConfig {
                            accm: n.peer_accm,
                            extra_escapes: *extra_escapes,
                            acfc: n.acfc_tx,
                            pfc: n.pfc_tx,
                            fcs: n.fcs_tx,
                        },
                        DecoderConfig {
                            accm: n.our_accm,
                            fcs: n.fcs_rx,
                            max_frame_len: DecoderConfig::frame_len_for_mru(n.our_mru.max(1500)),
                        },
                    ),
                    None => (
                        EncoderConfig {
                            extra_escapes: *extra_escapes,
                            ..EncoderConfig::default()
                        },
                        DecoderConfig::default(),
                    ),
                };
                encoder.set_config(tx);
                decoder.set_config(rx);
            }
            Framer::Sync { pfc } => *pfc = negotiated.is_some_and(|n| n.pfc_tx),
        }
    }
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("phase", &self.phase)
            .field("lcp", &self.lcp.state())
            .field("ipcp", &self.ipcp.as_ref().map(Fsm::state))
            .field("ipv6cp", &self.ipv6cp.as_ref().map(Fsm::state))
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Link {
    /// A link with `config`.
    pub fn new(config: LinkConfig) -> Self {
        let mut rng = SplitMix64::new(config.seed);
        let lcp = Lcp::with_seed(config.lcp.clone(), rng.next_u64());
        let ncp_fsm = config.lcp.fsm.clone();
        let ipcp = config
            .ipcp
            .clone()
            .map(|c| Fsm::new(Ipcp::new(c), ncp_fsm.clone()));
        let ipv6_seed = rng.next_u64();
        let ipv6cp = config
            .ipv6cp
            .clone()
            .map(|c| ipv6cp_fsm(c, &ncp_fsm, ipv6_seed));
        let ccp = config
            .ccp
            .clone()
            .map(|c| CcpSession::new(c, ncp_fsm.clone()));
        Link {
            framer: Framer::new(&config.framing),
            ccp,
            config,
            phase: Phase::Dead,
            lcp,
            lcp_negotiated: None,
            ipcp,
            ipv6cp,
            ncps_started: false,
            ncps_wait_for_ccp: false,
            rng,
            authenticator: None,
            authenticatee: None,
            authenticated_peer: None,
            last_transmit: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            datagrams: VecDeque::new(),
            capture: None,
            down_reason: None,
            stats: LinkStats::default(),
        }
    }

    /// A link whose IPCP takes peer addresses from `ipcp` (for example one with an address
    /// pool), replacing the one built from the configuration.
    pub fn set_ipcp(&mut self, ipcp: Ipcp) {
        self.ipcp = Some(Fsm::new(ipcp, self.config.lcp.fsm.clone()));
    }

    /// Replaces the CCP configuration (`None`: no CCP on this link), for example with a per-user
    /// one once the authenticator knows who the peer is. CCP starts with the Network phase, so
    /// this works until then; afterwards it changes nothing and returns `false`.
    pub fn set_ccp(&mut self, ccp: Option<ppp_ccp::CcpConfig>) -> bool {
        if !self.before_network() {
            return false;
        }
        self.ccp = ccp
            .clone()
            .map(|c| CcpSession::new(c, self.config.lcp.fsm.clone()));
        self.config.ccp = ccp;
        true
    }

    /// Replaces the IPv6CP configuration (`None`: no IPv6 on this link), for example from the
    /// user's profile once the authenticator knows who the peer is. Works until the Network
    /// phase begins; afterwards it changes nothing and returns `false`.
    pub fn set_ipv6cp(&mut self, ipv6cp: Option<Ipv6cpConfig>) -> bool {
        if !self.before_network() {
            return false;
        }
        let seed = self.rng.next_u64();
        self.ipv6cp = ipv6cp
            .clone()
            .map(|c| ipv6cp_fsm(c, &self.config.lcp.fsm, seed));
        self.config.ipv6cp = ipv6cp;
        true
    }

    /// Whether the Network phase has not begun yet (the NCPs and CCP can still be replaced).
    fn before_network(&self) -> bool {
        !self.ncps_started && self.phase != Phase::Network
    }

    /// The configuration.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The LCP machine (state, negotiated options, counters).
    pub fn lcp(&self) -> &Lcp {
        &self.lcp
    }

    /// The IPCP automaton, if IPv4 is enabled.
    pub fn ipcp(&self) -> Option<&Fsm<Ipcp>> {
        self.ipcp.as_ref()
    }

    /// The IPv6CP automaton, if IPv6 is enabled.
    pub fn ipv6cp(&self) -> Option<&Fsm<Ipv6cp>> {
        self.ipv6cp.as_ref()
    }

    /// What LCP negotiated, while it is Opened.
    pub fn lcp_negotiated(&self) -> Option<&LcpNegotiated> {
        self.lcp_negotiated.as_ref()
    }

    /// The IPv4 addresses, while IPCP is Opened.
    pub fn ipcp_negotiated(&self) -> Option<&IpcpNegotiated> {
        let ipcp = self.ipcp.as_ref()?;
        (ipcp.state() == State::Opened)
            .then(|| ipcp.protocol().negotiated())
            .flatten()
    }

    /// The IPv6 interface identifiers, while IPv6CP is Opened.
    pub fn ipv6cp_negotiated(&self) -> Option<&Ipv6cpNegotiated> {
        let ipv6cp = self.ipv6cp.as_ref()?;
        (ipv6cp.state() == State::Opened)
            .then(|| ipv6cp.protocol().negotiated())
            .flatten()
    }

    /// Counters of frames, bytes and errors.
    pub fn stats(&self) -> LinkStats {
        let mut stats = self.stats;
        if let Framer::Async { decoder, .. } = &self.framer {
            stats.framing = *decoder.stats();
        }
        stats
    }

    /// The decoder's counters (async framing only).
    pub fn framing_stats(&self) -> Option<DecoderStats> {
        match &self.framer {
            Framer::Async { decoder, .. } => Some(*decoder.stats()),
            Framer::Sync { .. } => None,
        }
    }

    /// The interface MTU: the peer's MRU capped by the configured MTU, once LCP is Opened; 4
    /// bytes less while MPPE encrypts what we send (its header and the protocol field go inside
    /// the peer's MRU), as pppd does.
    pub fn mtu(&self) -> Option<u16> {
        let mtu = self.lcp_negotiated.as_ref()?.mtu;
        let mppe = self
            .ccp_negotiated()
            .is_some_and(|n| matches!(n.transmit, Some(CompressionMethod::Mppe(_))));
        Some(if mppe { mtu.saturating_sub(4) } else { mtu })
    }

    /// What CCP negotiated, while it is Opened.
    pub fn ccp_negotiated(&self) -> Option<&CcpNegotiated> {
        self.ccp.as_ref()?.negotiated()
    }

    /// The CCP machine, if CCP is configured.
    pub fn ccp(&self) -> Option<&CcpSession> {
        self.ccp.as_ref()
    }

    /// Starts recording every packet sent and received, for [`poll_capture`](Self::poll_capture).
    pub fn enable_capture(&mut self) {
        self.capture.get_or_insert_with(VecDeque::new);
    }

    /// The next recorded packet, if capture is on.
    #[must_use]
    pub fn poll_capture(&mut self) -> Option<CapturedPacket> {
        self.capture.as_mut()?.pop_front()
    }

    /// The lower layer is up (RFC 1661 event Up): the line is connected, the session exists.
    pub fn up(&mut self, now: Instant) {
        self.lcp.up(now);
        self.process(now);
    }

    /// The lower layer went down (carrier lost, PADT received).
    pub fn down(&mut self, now: Instant) {
        self.down_reason
            .get_or_insert_with(|| "lower layer down".to_owned());
        self.lcp.down(now);
        self.process(now);
    }

    /// Administrative open: start negotiating once the lower layer is up.
    pub fn open(&mut self, now: Instant) {
        self.down_reason = None;
        if self.phase == Phase::Dead {
            self.set_phase(Phase::Establish);
        }
        self.lcp.open(now);
        self.process(now);
    }

    /// Administrative close: terminate the link with `reason`.
    pub fn close(&mut self, now: Instant, reason: &str) {
        self.down_reason.get_or_insert_with(|| reason.to_owned());
        self.lcp.close(now, reason);
        self.process(now);
    }

    /// Received bytes (async framing: any chunk of the stream; sync framing: one whole frame).
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        // Each frame is dispatched and its consequences run before the next one is decoded: a
        // chunk may hold an LCP Configure-Ack followed by frames that already use the new ACCM
        // (RFC 1662 §7.1), or an authentication Failure followed by the peer's
        // Terminate-Request, whose LCP Down must not drop the failure before it is reported.
        if let Framer::Sync { .. } = self.framer {
            match ppp_frame::sync::decode(data) {
                Ok(frame) => {
                    let (protocol, payload) = (frame.protocol, frame.payload.to_vec());
                    self.dispatch(now, protocol, &payload);
                }
                Err(error) => {
                    self.stats.bad_frames += 1;
                    debug!("dropped a frame: {error}");
                }
            }
            self.process(now);
            return;
        }
        let mut input = data;
        while let Framer::Async { decoder, .. } = &mut self.framer {
            let (protocol, payload) = match decoder.decode(&mut input) {
                None => break,
                Some(Ok(frame)) => (frame.protocol, frame.payload.to_vec()),
                Some(Err(error)) => {
                    debug!("dropped a frame: {error}");
                    continue;
                }
            };
            self.dispatch(now, protocol, &payload);
            self.process(now);
        }
        self.process(now);
    }

    /// One received frame already split into protocol and information field (sync framing:
    /// PPPoE decapsulation does the split, so nothing is copied).
    pub fn handle_frame(&mut self, now: Instant, protocol: Protocol, payload: &[u8]) {
        self.dispatch(now, protocol, payload);
        self.process(now);
    }

    /// The time from [`poll_timeout`](Self::poll_timeout) has come. A spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.lcp.poll_timeout().is_some_and(|t| t <= now) {
            self.lcp.handle_timeout(now);
        }
        if let Some(fsm) = self.ipcp.as_mut().filter(|f| due(f.poll_timeout(), now)) {
            fsm.handle_timeout(now);
        }
        if let Some(fsm) = self.ipv6cp.as_mut().filter(|f| due(f.poll_timeout(), now)) {
            fsm.handle_timeout(now);
        }
        if let Some(ccp) = self.ccp.as_mut().filter(|c| due(c.poll_timeout(), now)) {
            ccp.handle_timeout(now);
        }
        if let Some(machine) = self
            .authenticator
            .as_mut()
            .filter(|m| due(m.poll_timeout(), now))
        {
            machine.handle_timeout(now);
        }
        if let Some(machine) = self
            .authenticatee
            .as_mut()
            .filter(|m| due(m.poll_timeout(), now))
        {
            machine.handle_timeout(now);
        }
        self.process(now);
    }

    /// The answer to a [`LinkEvent::SecretNeeded`]: the peer's secrets entry, or `None` when the
    /// name is unknown. An address the entry assigns becomes the peer's IPCP address.
    pub fn provide_secret(&mut self, now: Instant, entry: Option<SecretEntry>) {
        if let Some(address) = entry.as_ref().and_then(SecretEntry::assigned_address)
            && let Some(ipcp) = self.ipcp.as_mut()
        {
            ipcp.protocol_mut().set_remote_address(Some(address));
        }
        if let Some(machine) = self.authenticator.as_mut()
            && let Err(error) = machine.provide_secret(now, entry.map(|e| e.secret))
        {
            debug!("secret not taken: {error}");
        }
        self.process(now);
    }

    /// The name the peer authenticated as, once it has.
    pub fn peer_name(&self) -> Option<&str> {
        self.authenticated_peer.as_deref()
    }

    /// MS-CHAP key material for MPPE, once an MS-CHAP exchange succeeded (the one where we
    /// authenticated the peer if both directions ran MS-CHAP).
    pub fn mschap_key_material(&self) -> Option<&MsChapKeyMaterial> {
        self.authenticator
            .as_ref()
            .and_then(Authenticator::key_material)
            .or_else(|| {
                self.authenticatee
                    .as_ref()
                    .and_then(Authenticatee::key_material)
            })
    }

    /// Sends an IPv4 packet.
    ///
    /// # Errors
    ///
    /// [`LinkError::NotReady`] unless IPCP is Opened, [`LinkError::TooBig`] past the MTU.
    pub fn send_ipv4(&mut self, now: Instant, packet: &[u8]) -> Result<(), LinkError> {
        if self.ipcp_negotiated().is_none() {
            return Err(LinkError::NotReady(Protocol::Ipv4));
        }
        self.send_datagram(now, Protocol::Ipv4, packet)
    }

    /// Sends an IPv6 packet.
    ///
    /// # Errors
    ///
    /// [`LinkError::NotReady`] unless IPv6CP is Opened, [`LinkError::TooBig`] past the MTU.
    pub fn send_ipv6(&mut self, now: Instant, packet: &[u8]) -> Result<(), LinkError> {
        if self.ipv6cp_negotiated().is_none() {
            return Err(LinkError::NotReady(Protocol::Ipv6));
        }
        self.send_datagram(now, Protocol::Ipv6, packet)
    }

    fn send_datagram(
        &mut self,
        now: Instant,
        protocol: Protocol,
        packet: &[u8],
    ) -> Result<(), LinkError> {
        let mtu = usize::from(self.mtu().unwrap_or(1500));
        if packet.len() > mtu {
            return Err(LinkError::TooBig {
                len: packet.len(),
                mtu,
            });
        }
        self.stats.datagrams_out += 1;
        match self.ccp.as_mut().map(|ccp| ccp.compress(protocol, packet)) {
            None | Some(Transmit::Uncompressed) => self.emit(now, protocol, packet),
            Some(Transmit::Compressed(info)) => self.emit(now, Protocol::Compressed, &info),
            Some(Transmit::Drop) => {
                self.stats.datagrams_out -= 1;
                self.stats.discarded += 1;
            }
        }
        Ok(())
    }

    /// Next bytes (async) or frame (sync) for the lower layer.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// Next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    /// Next received datagram.
    #[must_use]
    pub fn poll_datagram(&mut self) -> Option<Datagram> {
        self.datagrams.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called: the soonest deadline
    /// of LCP (restart timer, echo), the authentication sessions and the NCPs.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.lcp.poll_timeout(),
            self.ipcp.as_ref().and_then(Fsm::poll_timeout),
            self.ipv6cp.as_ref().and_then(Fsm::poll_timeout),
            self.ccp.as_ref().and_then(CcpSession::poll_timeout),
            self.authenticator
                .as_ref()
                .and_then(Authenticator::poll_timeout),
            self.authenticatee
                .as_ref()
                .and_then(Authenticatee::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Hands one received frame to the protocol it belongs to.
    fn dispatch(&mut self, now: Instant, protocol: Protocol, payload: &[u8]) {
        self.stats.frames_in += 1;
        self.lcp.note_traffic();
        self.stats.bytes_in += payload.len() as u64;
        if let Some(capture) = self.capture.as_mut() {
            push_bounded(
                capture,
                CapturedPacket {
                    at: now,
                    sent: false,
                    protocol,
                    payload: payload.to_vec(),
                },
            );
        }
        let lcp_opened = self.lcp.state() == State::Opened;
        match protocol {
            Protocol::Lcp => self.lcp.handle_input(now, payload),
            Protocol::Pap | Protocol::Chap
                if matches!(self.phase, Phase::Authenticate | Phase::Network) =>
            {
                let code = payload.first().copied().unwrap_or(0);
                if is_for_authenticator(protocol, code) {
                    match self
                        .authenticator
                        .as_mut()
                        .filter(|m| m.protocol() == protocol)
                    {
                        Some(machine) => machine.handle_input(now, payload),
                        None => self.stats.discarded += 1,
                    }
                } else {
                    match self
                        .authenticatee
                        .as_mut()
                        .filter(|m| m.protocol() == protocol)
                    {
                        Some(machine) => machine.handle_input(now, payload),
                        None => self.stats.discarded += 1,
                    }
                }
            }
            Protocol::Ipcp if self.phase == Phase::Network && self.ipcp.is_some() => {
                if let Some(fsm) = self.ipcp.as_mut() {
                    fsm.handle_input(now, payload);
                }
            }
            Protocol::Ipv6cp if self.phase == Phase::Network && self.ipv6cp.is_some() => {
                if let Some(fsm) = self.ipv6cp.as_mut() {
                    fsm.handle_input(now, payload);
                }
            }
            Protocol::Ccp if self.phase == Phase::Network && self.ccp.is_some() => {
                if let Some(ccp) = self.ccp.as_mut() {
                    ccp.handle_input(now, payload);
                }
            }
            Protocol::Compressed if self.ccp_negotiated().is_some() => {
                let Some(ccp) = self.ccp.as_mut() else { return };
                match ccp.decompress(now, payload) {
                    Ok((inner, data)) => self.deliver(inner, &data, true),
                    Err(error) => {
                        self.stats.discarded += 1;
                        debug!("dropped a compressed packet: {error}");
                    }
                }
            }
            Protocol::Ipv4 if self.ipcp_negotiated().is_some() => {
                self.deliver(protocol, payload, false);
            }
            Protocol::Ipv6 if self.ipv6cp_negotiated().is_some() => {
                self.deliver(protocol, payload, false);
            }
            // Known protocols that are merely early (RFC 1661 §3: NCP and data packets before the
            // Network phase, datagrams before their NCP is Opened) are silently discarded.
            Protocol::Pap | Protocol::Chap | Protocol::Ipcp | Protocol::Ipv6cp | Protocol::Ccp
                if !self.rejects(protocol) =>
            {
                self.stats.discarded += 1;
                debug!("discarded {protocol} packet in phase {}", self.phase);
            }
            Protocol::Ipv4 | Protocol::Ipv6 if !self.rejects(protocol) => {
                self.stats.discarded += 1;
            }
            _ if lcp_opened => self.protocol_reject(now, protocol, payload),
            _ => {
                self.stats.discarded += 1;
                debug!("discarded {protocol} packet before LCP is opened");
            }
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

    /// Whether a known protocol is one we do not run at all (so it gets a Protocol-Reject).
    fn rejects(&self, protocol: Protocol) -> bool {
        match protocol {
            Protocol::Ipcp | Protocol::Ipv4 => self.ipcp.is_none(),
            Protocol::Ipv6cp | Protocol::Ipv6 => self.ipv6cp.is_none(),
            Protocol::Ccp => self.ccp.is_none(),
            Protocol::Pap | Protocol::Chap => false,
            _ => true,
        }
    }

    fn protocol_reject(&mut self, now: Instant, protocol: Protocol, payload: &[u8]) {
        if self.lcp.send_protocol_reject(protocol, payload) {
            self.stats.protocol_rejects_sent += 1;
            debug!("rejected unsupported protocol {protocol}");
        } else {
            self.stats.discarded += 1;
        }
        self.drain_lcp_transmit(now);
    }

    /// Frames and queues a packet.
    fn emit(&mut self, now: Instant, protocol: Protocol, payload: &[u8]) {
        self.stats.frames_out += 1;
        self.stats.bytes_out += payload.len() as u64;
        if let Some(capture) = self.capture.as_mut() {
            push_bounded(
                capture,
                CapturedPacket {
                    at: now,
                    sent: true,
                    protocol,
                    payload: payload.to_vec(),
                },
            );
        }
        let mut out = Vec::new();
        match &mut self.framer {
            Framer::Async { encoder, .. } => {
                if self
                    .last_transmit
                    .is_none_or(|t| now.saturating_duration_since(t) >= self.config.flag_time)
                {
                    encoder.line_idle();
                }
                encoder.encode(protocol, payload, &mut out);
            }
            Framer::Sync { pfc } => {
                let pfc = *pfc && protocol != Protocol::Lcp;
                out.reserve(self.config.headroom + 2 + payload.len());
                out.resize(self.config.headroom, 0);
                ppp_frame::sync::encode(protocol, payload, pfc, &mut out);
            }
        }
        self.last_transmit = Some(now);
        self.transmit.push_back(out);
    }

    fn drain_lcp_transmit(&mut self, now: Instant) {
        while let Some(packet) = self.lcp.poll_transmit() {
            self.emit(now, Protocol::Lcp, &packet);
        }
    }

    fn set_phase(&mut self, phase: Phase) {
        if self.phase != phase {
            info!("phase {} -> {phase}", self.phase);
            self.phase = phase;
            push_bounded(&mut self.events, LinkEvent::Phase(phase));
        }
    }

    /// Runs the consequences of an input until every machine is quiet.
    fn process(&mut self, now: Instant) {
        // Bounded: each round consumes queued output; machines only produce output in response to
        // inputs or events of this call, so a few rounds settle it.
        for _ in 0..64 {
            let mut busy = false;
            self.drain_lcp_transmit(now);
            while let Some(event) = self.lcp.poll_event() {
                busy = true;
                self.on_lcp_event(now, event);
            }
            busy |= self.run_auth(now);
            busy |= self.run_ncps(now);
            busy |= self.run_ccp(now);
            if !busy {
                break;
            }
        }
    }

    fn on_lcp_event(&mut self, now: Instant, event: LcpEvent) {
        match event {
            LcpEvent::Started => {
                if self.phase == Phase::Dead {
                    self.set_phase(Phase::Establish);
                }
            }
            LcpEvent::Up(negotiated) => {
                info!(
                    "LCP up: mru {} mtu {} accm {:#x}/{:#x}",
                    negotiated.our_mru, negotiated.mtu, negotiated.our_accm, negotiated.peer_accm
                );
                self.framer.configure(Some(&negotiated));
                self.lcp_negotiated = Some(negotiated.clone());
                push_bounded(&mut self.events, LinkEvent::LinkUp(negotiated.clone()));
                self.start_auth(now, &negotiated);
            }
            LcpEvent::Down => {
                self.framer.configure(None);
                self.lcp_negotiated = None;
                self.authenticator = None;
                self.authenticatee = None;
                self.stop_ncps(now);
                if self.phase != Phase::Dead {
                    self.set_phase(
                        if matches!(self.lcp.state(), State::Closing | State::Stopping) {
                            Phase::Terminate
                        } else {
                            Phase::Establish
                        },
                    );
                }
            }
            LcpEvent::Finished { reason } => {
                let reason = self.down_reason.take().unwrap_or(reason);
                info!("link down: {reason}");
                self.framer.configure(None);
                self.lcp_negotiated = None;
                self.authenticator = None;
                self.authenticatee = None;
                self.stop_ncps(now);
                self.set_phase(Phase::Dead);
                push_bounded(&mut self.events, LinkEvent::LinkDown { reason });
            }
            LcpEvent::ProtocolRejected(protocol) => {
                let reason = format!("peer rejected {protocol}");
                match protocol {
                    Protocol::Ipcp | Protocol::Ipv4 => {
                        if let Some(fsm) = self.ipcp.as_mut() {
                            fsm.handle_reject(now, false, &reason);
                        }
                    }
                    Protocol::Ipv6cp | Protocol::Ipv6 => {
                        if let Some(fsm) = self.ipv6cp.as_mut() {
                            fsm.handle_reject(now, false, &reason);
                        }
                    }
                    Protocol::Ccp | Protocol::Compressed => {
                        if let Some(ccp) = self.ccp.as_mut() {
                            ccp.handle_protocol_reject(now);
                        }
                    }
                    _ => debug!("{reason}"),
                }
            }
            LcpEvent::EchoTimeout => {
                self.down_reason
                    .get_or_insert_with(|| "peer not responding to LCP echo requests".to_owned());
            }
            LcpEvent::LoopbackDetected => {
                push_bounded(&mut self.events, LinkEvent::LoopbackDetected);
            }
            other => debug!("LCP: {other:?}"),
        }
    }

    fn start_auth(&mut self, now: Instant, negotiated: &LcpNegotiated) {
        if negotiated.auth_we_require.is_none() && negotiated.auth_peer_requires.is_none() {
            self.enter_network(now);
            return;
        }
        self.set_phase(Phase::Authenticate);
        if let Some(method) = negotiated.auth_we_require {
            let rng = ChaCha8Rng::seed_from_u64(self.rng.next_u64());
            let mut machine = Authenticator::new(
                method,
                self.config.auth.authenticator.clone(),
                Box::new(rng),
            );
            machine.start(now);
            self.authenticator = Some(machine);
        }
        if let Some(method) = negotiated.auth_peer_requires {
            let Some(credentials) = self.config.auth.credentials.as_ref() else {
                self.fail(
                    now,
                    &format!(
                        "the peer requires {} authentication and we have no credentials",
                        method.log_name()
                    ),
                );
                return;
            };
            let rng = ChaCha8Rng::seed_from_u64(self.rng.next_u64());
            let mut machine = Authenticatee::new(
                method,
                credentials.credentials(),
                self.config.auth.authenticatee.clone(),
                Box::new(rng),
            );
            machine.start(now);
            self.authenticatee = Some(machine);
        }
    }

    /// Moves authentication along; true if anything happened.
    fn run_auth(&mut self, now: Instant) -> bool {
        let mut busy = false;
        let mut outgoing = Vec::new();
        let mut failure = None;
        let mut secret_requests = Vec::new();
        if let Some(machine) = self.authenticator.as_mut() {
            while let Some(packet) = machine.poll_transmit() {
                outgoing.push((machine.protocol(), packet));
            }
            while let Some(event) = machine.poll_event() {
                match event {
                    AuthEvent::SecretNeeded(request) => secret_requests.push(request),
                    AuthEvent::Succeeded { peer_name } => {
                        info!(
                            "peer authenticated as {:?}",
                            peer_name.as_deref().unwrap_or("")
                        );
                        self.authenticated_peer = peer_name;
                    }
                    AuthEvent::Failed(reason) => {
                        failure.get_or_insert(format!("peer failed to authenticate: {reason}"));
                    }
                    _ => {}
                }
            }
        }
        if let Some(machine) = self.authenticatee.as_mut() {
            while let Some(packet) = machine.poll_transmit() {
                outgoing.push((machine.protocol(), packet));
            }
            while let Some(event) = machine.poll_event() {
                match event {
                    AuthEvent::Succeeded { .. } => info!("we authenticated to the peer"),
                    AuthEvent::Failed(reason) => {
                        failure
                            .get_or_insert(format!("authentication to the peer failed: {reason}"));
                    }
                    _ => {}
                }
            }
        }
        for (protocol, packet) in outgoing {
            busy = true;
            self.emit(now, protocol, &packet);
        }
        for request in secret_requests {
            busy = true;
            push_bounded(&mut self.events, LinkEvent::SecretNeeded(request));
        }
        if let Some(reason) = failure
            && matches!(self.phase, Phase::Authenticate | Phase::Network)
        {
            self.fail(now, &reason);
            return true;
        }
        if self.phase == Phase::Authenticate {
            let done = self
                .authenticator
                .as_ref()
                .is_none_or(|m| m.status() == &AuthStatus::Succeeded)
                && self
                    .authenticatee
                    .as_ref()
                    .is_none_or(|m| m.status() == &AuthStatus::Succeeded);
            if done {
                push_bounded(
                    &mut self.events,
                    LinkEvent::Authenticated {
                        peer_name: self.authenticated_peer.clone(),
                    },
                );
                self.enter_network(now);
                busy = true;
            }
        }
        busy
    }

    fn fail(&mut self, now: Instant, reason: &str) {
        info!("{reason}");
        self.down_reason.get_or_insert_with(|| reason.to_owned());
        self.lcp.close(now, reason);
        self.set_phase(Phase::Terminate);
    }

    fn enter_network(&mut self, now: Instant) {
        self.set_phase(Phase::Network);
        if self.ipcp.is_none() && self.ipv6cp.is_none() {
            self.fail(now, "no network protocols configured");
            return;
        }
        self.ncps_started = true;
        let keys = self.mschap_key_material().map(|k| {
            let (send, receive) = k.start_keys();
            MppeKeys::new(send, receive)
        });
        if let Some(ccp) = self.ccp.as_mut() {
            if let Some(keys) = keys {
                ccp.set_mppe_keys(keys);
            }
            ccp.open(now);
            ccp.up(now);
        }
        // With encryption required, the NCPs start once CCP is Opened, as pppd does
        // (`continue_networks`): pppd keeps its IPCP Closed until then and answers an early
        // IPCP Configure-Request with a Terminate-Ack, which would cost a restart interval.
        if self
            .ccp
            .as_ref()
            .is_some_and(|ccp| ccp.ccp().requires_encryption())
        {
            debug!("encryption required: the NCPs wait for CCP");
            self.ncps_wait_for_ccp = true;
            return;
        }
        self.start_ncps(now);
    }

    fn start_ncps(&mut self, now: Instant) {
        if let Some(fsm) = self.ipcp.as_mut() {
            start_ncp(fsm, now);
        }
        if let Some(fsm) = self.ipv6cp.as_mut() {
            start_ncp(fsm, now);
        }
    }

    fn stop_ncps(&mut self, now: Instant) {
        self.ncps_started = false;
        self.ncps_wait_for_ccp = false;
        // A control protocol that never saw its lower layer come up (Initial, Starting) gets
        // no Down: that is an illegal event in RFC 1661's table.
        let was_up = |state: State| !matches!(state, State::Initial | State::Starting);
        if let Some(ccp) = self.ccp.as_mut().filter(|ccp| was_up(ccp.state())) {
            ccp.down(now);
        }
        if let Some(fsm) = self.ipcp.as_mut().filter(|fsm| was_up(fsm.state())) {
            fsm.down(now);
        }
        if let Some(fsm) = self.ipv6cp.as_mut().filter(|fsm| was_up(fsm.state())) {
            fsm.down(now);
        }
    }

    /// Moves the NCPs' output and events along; true if anything happened.
    fn run_ncps(&mut self, now: Instant) -> bool {
        let mut busy = false;
        let mut outgoing = Vec::new();
        let mut ipcp_events = Vec::new();
        let mut ipv6cp_events = Vec::new();
        if let Some(fsm) = self.ipcp.as_mut() {
            while let Some(packet) = fsm.poll_transmit() {
                outgoing.push((Protocol::Ipcp, packet));
            }
            while let Some(event) = fsm.poll_event() {
                ipcp_events.push(event);
            }
        }
        if let Some(fsm) = self.ipv6cp.as_mut() {
            while let Some(packet) = fsm.poll_transmit() {
                outgoing.push((Protocol::Ipv6cp, packet));
            }
            while let Some(event) = fsm.poll_event() {
                ipv6cp_events.push(event);
            }
        }
        for (protocol, packet) in outgoing {
            busy = true;
            self.emit(now, protocol, &packet);
        }
        for event in ipcp_events {
            busy = true;
            self.on_ipcp_event(now, event);
        }
        for event in ipv6cp_events {
            busy = true;
            self.on_ipv6cp_event(now, event);
        }
        busy
    }

    /// Moves CCP's output and events along; true if anything happened.
    fn run_ccp(&mut self, now: Instant) -> bool {
        let Some(ccp) = self.ccp.as_mut() else {
            return false;
        };
        let mut outgoing = Vec::new();
        let mut events = Vec::new();
        while let Some(packet) = ccp.poll_transmit() {
            outgoing.push(packet);
        }
        while let Some(event) = ccp.poll_event() {
            events.push(event);
        }
        let busy = !outgoing.is_empty() || !events.is_empty();
        for packet in outgoing {
            self.emit(now, Protocol::Ccp, &packet);
        }
        for event in events {
            match event {
                CcpEvent::Up(negotiated) => {
                    info!(
                        "CCP up: transmit {:?}, receive {:?}",
                        negotiated.transmit, negotiated.receive
                    );
                    push_bounded(&mut self.events, LinkEvent::CcpUp(negotiated));
                    if self.ncps_wait_for_ccp && self.phase == Phase::Network {
                        self.ncps_wait_for_ccp = false;
                        self.start_ncps(now);
                    }
                }
                CcpEvent::Down => push_bounded(&mut self.events, LinkEvent::CcpDown),
                CcpEvent::Finished { reason } => {
                    info!("CCP finished: {reason}");
                    push_bounded(&mut self.events, LinkEvent::CcpDown);
                }
                CcpEvent::LinkFailure { reason } => self.fail(now, &reason),
                _ => {}
            }
        }
        busy
    }

    fn on_ipcp_event(&mut self, now: Instant, event: FsmEvent) {
        match event {
            FsmEvent::Up => {
                let Some(fsm) = self.ipcp.as_mut() else {
                    return;
                };
                match fsm.protocol().negotiated().copied() {
                    Some(n) => {
                        info!("IPCP up: local {} remote {}", n.local, n.peer);
                        push_bounded(
                            &mut self.events,
                            LinkEvent::IpUp {
                                local: n.local,
                                peer: n.peer,
                                dns: n.dns.iter().flatten().copied().collect(),
                            },
                        );
                    }
                    None => {
                        let reason = fsm
                            .protocol_mut()
                            .take_failure()
                            .map_or_else(|| "IPCP failed".to_owned(), |f| f.0);
                        fsm.close(now, &reason);
                    }
                }
            }
            FsmEvent::Down => push_bounded(&mut self.events, LinkEvent::IpDown),
            FsmEvent::Finished { reason } => self.ncp_finished(now, Protocol::Ipcp, reason),
            _ => {}
        }
    }

    fn on_ipv6cp_event(&mut self, now: Instant, event: FsmEvent) {
        match event {
            FsmEvent::Up => {
                let Some(fsm) = self.ipv6cp.as_mut() else {
                    return;
                };
                match fsm.protocol().negotiated().copied() {
                    Some(n) => {
                        info!(
                            "IPV6CP up: local {} remote {}",
                            n.local_link_local(),
                            n.peer_link_local()
                        );
                        push_bounded(
                            &mut self.events,
                            LinkEvent::Ipv6Up {
                                local: n.local_link_local(),
                                peer: n.peer_link_local(),
                            },
                        );
                    }
                    None => {
                        let reason = fsm
                            .protocol_mut()
                            .take_failure()
                            .map_or_else(|| "IPV6CP failed".to_owned(), |f| f.0);
                        fsm.close(now, &reason);
                    }
                }
            }
            FsmEvent::Down => push_bounded(&mut self.events, LinkEvent::Ipv6Down),
            FsmEvent::Finished { reason } => self.ncp_finished(now, Protocol::Ipv6cp, reason),
            _ => {}
        }
    }

    /// An NCP finished; when none is left running, the link closes as pppd does.
    fn ncp_finished(&mut self, now: Instant, protocol: Protocol, reason: String) {
        if !self.ncps_started {
            return;
        }
        info!("{protocol} finished: {reason}");
        push_bounded(
            &mut self.events,
            LinkEvent::NcpFinished {
                protocol,
                reason: reason.clone(),
            },
        );
        let running = |state: Option<State>| {
            state.is_some_and(|s| !matches!(s, State::Initial | State::Closed | State::Stopped))
        };
        let any_running = running(self.ipcp.as_ref().map(Fsm::state))
            || running(self.ipv6cp.as_ref().map(Fsm::state));
        if !any_running && self.phase == Phase::Network {
            self.fail(now, &format!("no network protocols running ({reason})"));
        }
    }
}

fn start_ncp<P: ppp_lcp::fsm::ControlProtocol>(fsm: &mut Fsm<P>, now: Instant) {
    match fsm.state() {
        State::Initial => {
            fsm.open(now);
            fsm.up(now);
        }
        State::Starting => fsm.up(now),
        State::Closed => {
            fsm.open(now);
        }
        _ => {}
    }
}

fn due(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_some_and(|t| t <= now)
}

fn push_bounded<T>(queue: &mut VecDeque<T>, item: T) {
    if queue.len() >= MAX_QUEUE {
        queue.pop_front();
    }
    queue.push_back(item);
}

/// The IPv6CP automaton for `config`, its interface identifiers drawn from a generator seeded
/// with `seed`.
fn ipv6cp_fsm(config: Ipv6cpConfig, fsm: &FsmConfig, seed: u64) -> Fsm<Ipv6cp> {
    let mut rng = SplitMix64::new(seed);
    Fsm::new(Ipv6cp::new(config, move || rng.next_u64()), fsm.clone())
}
