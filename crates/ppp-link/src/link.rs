//! [`Link`]: one [`LinkControl`] (framing, LCP, authentication) and one [`NetworkLayer`] (NCPs,
//! CCP, datagrams), composed.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppp_auth::SecretToken;
use ppp_ccp::{CcpNegotiated, CcpSession};
use ppp_core::{CloseReason, Machine, Random};
use ppp_frame::{ByteSet, DecoderStats, Protocol};
use ppp_ipcp::{Ipcp, IpcpConfig, IpcpNegotiated, Ipv6cp, Ipv6cpConfig, Ipv6cpNegotiated};
use ppp_lcp::fsm::Fsm;
use ppp_lcp::{FinishReason, Lcp, LcpConfig, LcpNegotiated};

use crate::auth::{
    AuthConfig, MsChapKeyMaterial, SecretEntry, SecretRequest, Verdict, VerifyRequest,
};
use crate::control::LinkControl;
use crate::multilink::{Multilink, MultilinkEvent};
use crate::network::NetworkLayer;
use crate::reason::DownReason;
use crate::{AuthError, LinkError, LinkStats};

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
    /// Authentication: our credentials, our name, timers, and where peers' secrets come from.
    pub auth: AuthConfig,
    /// Compression and encryption (CCP with MPPE or Deflate; RouterOS `use-encryption`,
    /// `use-compression`), or `None` to run no CCP (its packets are Protocol-Rejected).
    pub ccp: Option<ppp_ccp::CcpConfig>,
    /// How frames travel.
    pub framing: Framing,
    /// Time without transmission after which the next frame gets its own opening flag (async).
    pub flag_time: Duration,
    /// Sync framing: bytes left free at the front of every frame [`Link::poll_transmit`] gives,
    /// for the lower layer's headers (PPPoE fills its 20 there), so no frame is copied again.
    pub headroom: usize,
}

impl AsRef<LcpConfig> for LinkConfig {
    fn as_ref(&self) -> &LcpConfig {
        &self.lcp
    }
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
    /// A secret is needed to check the peer: answer with [`Link::provide_secret`] (not reported
    /// when [`AuthConfig::secrets`] answers it).
    SecretNeeded(SecretRequest),
    /// The peer's proof is to be checked elsewhere (external verification, RADIUS): answer
    /// with [`Link::provide_verdict`].
    VerifyNeeded(VerifyRequest),
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
        reason: FinishReason,
    },
    /// The peer sent an Echo-Request or Configure-Request carrying our own magic number.
    LoopbackDetected,
    /// The link is down and the lower layer may be released.
    LinkDown {
        /// Why.
        reason: DownReason,
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

/// A whole PPP link, sans-IO: LCP, authentication, IPCP, IPv6CP and CCP over async or sync
/// framing.
///
/// It is a [`LinkControl`] (framing, LCP, authentication: what each member of a Multilink bundle
/// has) and a [`NetworkLayer`] (NCPs, CCP, datagrams: what a bundle has once) composed for one
/// link.
///
/// The run loop: call [`up`](Self::up) when the lower layer (serial line after CONNECT, PPPoE
/// session after PADS) is ready and [`open`](Self::open) to start; feed received bytes to
/// [`handle_input`](Self::handle_input), outbound IP packets to
/// [`send_ipv4`](Self::send_ipv4)/[`send_ipv6`](Self::send_ipv6); after each call drain
/// [`poll_transmit`](Self::poll_transmit), [`poll_event`](Self::poll_event) and
/// [`poll_datagram`](Self::poll_datagram) until they return `None`, then sleep until
/// [`poll_timeout`](Self::poll_timeout) and call [`handle_timeout`](Self::handle_timeout).
/// Nothing here reads a clock, sleeps, or panics on any input.
///
/// Two links in memory, a CHAP-authenticated PPP session with IPCP:
///
/// ```
/// use std::net::Ipv4Addr;
/// use std::sync::Arc;
/// use std::time::Instant;
/// use ppp_auth::SecretsTable;
/// use ppp_ipcp::IpcpConfig;
/// use ppp_link::auth::{AuthProtocol, ClientCredentials};
/// use ppp_link::{Datagram, Link, LinkConfig, LinkEvent, Machine, Random};
///
/// let mut client = LinkConfig::default();
/// client.auth.credentials = Some(ClientCredentials::password("alice", "correct horse"));
/// let mut server = LinkConfig {
///     ipcp: Some(IpcpConfig {
///         remote_address: Some(Ipv4Addr::new(192, 0, 2, 100)),
///         ..IpcpConfig::server(Ipv4Addr::new(192, 0, 2, 1), [None, None])
///     }),
///     ..LinkConfig::default()
/// };
/// server.lcp.require = vec![AuthProtocol::ChapMd5];
/// server.auth.secrets = Some(Arc::new(SecretsTable::parse_pppd("alice * \"correct horse\"\n")?));
///
/// // Programs use Random::from_os(); seeds make a run repeatable.
/// let mut a = Link::new(client, Random::seeded(1));
/// let mut b = Link::new(server, Random::seeded(2));
/// let now = Instant::now();
/// for link in [&mut a, &mut b] {
///     link.open(now);
///     link.up(now); // the line is connected
/// }
/// let mut client_address = None;
/// loop {
///     let mut moved = false;
///     while let Some(bytes) = a.poll_transmit() {
///         b.handle_input(now, &bytes);
///         moved = true;
///     }
///     while let Some(bytes) = b.poll_transmit() {
///         a.handle_input(now, &bytes);
///         moved = true;
///     }
///     while let Some(event) = a.poll_event() {
///         if let LinkEvent::IpUp { local, .. } = event {
///             client_address = Some(local);
///         }
///     }
///     while b.poll_event().is_some() {}
///     if !moved {
///         break; // a program sleeps until `poll_timeout()` or input here
///     }
/// }
/// assert_eq!(client_address, Some(Ipv4Addr::new(192, 0, 2, 100)));
/// assert_eq!(b.peer_name(), Some("alice"));
///
/// // An IPv4 packet crosses the link.
/// let packet = [0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 100, 192, 0, 2, 1];
/// a.send_ipv4(now, &packet)?;
/// while let Some(bytes) = a.poll_transmit() {
///     b.handle_input(now, &bytes);
/// }
/// assert_eq!(b.poll_datagram(), Some(Datagram::Ipv4(packet.to_vec())));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Link {
    inner: Multilink<()>,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("control", self.control())
            .field("network", self.network())
            .finish_non_exhaustive()
    }
}

impl Link {
    /// A link with `config`, drawing magic numbers, challenges and interface identifiers from
    /// `random` (`Random::from_os()` in programs; a seeded one in tests).
    pub fn new(config: LinkConfig, random: Random) -> Self {
        Self::with_shared_config(Arc::new(config), random)
    }

    /// A link whose configuration is shared with other links (a server's sessions).
    pub fn with_shared_config(config: Arc<LinkConfig>, random: Random) -> Self {
        let control = LinkControl::new(config.clone(), random.clone());
        Self::from_control(config, control, random)
    }

    /// A link over `control` (in any state), with a network layer of its own.
    pub(crate) fn from_control(
        config: Arc<LinkConfig>,
        control: LinkControl,
        random: Random,
    ) -> Self {
        let mut inner = Multilink::new(config, random);
        inner.insert_member((), control);
        Link { inner }
    }

    /// A link whose IPCP takes peer addresses from `ipcp` (for example one with an address
    /// pool), replacing the one built from the configuration. Works until the Network phase
    /// begins; afterwards it changes nothing and returns `false`.
    pub fn set_ipcp(&mut self, ipcp: Ipcp) -> bool {
        self.inner.set_ipcp(ipcp)
    }

    /// Replaces the CCP configuration (`None`: no CCP on this link), for example with a per-user
    /// one once the authenticator knows who the peer is. Works until the Network phase begins;
    /// afterwards it changes nothing and returns `false`.
    pub fn set_ccp(&mut self, ccp: Option<ppp_ccp::CcpConfig>) -> bool {
        self.inner.set_ccp(ccp)
    }

    /// Replaces the IPv6CP configuration (`None`: no IPv6 on this link), for example from the
    /// user's profile once the authenticator knows who the peer is. Works until the Network
    /// phase begins; afterwards it changes nothing and returns `false`.
    pub fn set_ipv6cp(&mut self, ipv6cp: Option<Ipv6cpConfig>) -> bool {
        self.inner.set_ipv6cp(ipv6cp)
    }

    /// The configuration.
    pub fn config(&self) -> &LinkConfig {
        self.control().config()
    }

    /// The per-link half: framing, LCP, authentication.
    pub fn control(&self) -> &LinkControl {
        self.inner
            .member(&())
            .expect("a Link always has its one member")
    }

    /// The network half: NCPs, CCP, datagrams.
    pub fn network(&self) -> &NetworkLayer {
        self.inner.network()
    }

    /// Whether the network layer runs over Multilink on this one link (an MRRU was negotiated
    /// both ways: packets up to the MRRU cross in fragments of the link's MTU).
    pub fn is_multilink(&self) -> bool {
        self.inner.is_multilink()
    }

    /// The MP machine, while Multilink runs on this link.
    pub fn mp(&self) -> Option<&ppp_mp::Bundle> {
        self.inner.mp()
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.control().phase()
    }

    /// The LCP machine (state, negotiated options, counters).
    pub fn lcp(&self) -> &Lcp {
        self.control().lcp()
    }

    /// The IPCP automaton, if IPv4 is enabled.
    pub fn ipcp(&self) -> Option<&Fsm<Ipcp>> {
        self.network().ipcp()
    }

    /// The IPv6CP automaton, if IPv6 is enabled.
    pub fn ipv6cp(&self) -> Option<&Fsm<Ipv6cp>> {
        self.network().ipv6cp()
    }

    /// What LCP negotiated, while it is Opened.
    pub fn lcp_negotiated(&self) -> Option<&LcpNegotiated> {
        self.control().lcp_negotiated()
    }

    /// The IPv4 addresses, while IPCP is Opened.
    pub fn ipcp_negotiated(&self) -> Option<&IpcpNegotiated> {
        self.network().ipcp_negotiated()
    }

    /// The IPv6 interface identifiers, while IPv6CP is Opened.
    pub fn ipv6cp_negotiated(&self) -> Option<&Ipv6cpNegotiated> {
        self.network().ipv6cp_negotiated()
    }

    /// Counters of frames, bytes, datagrams and errors.
    pub fn stats(&self) -> LinkStats {
        let mut stats = self.control().stats();
        let network = self.network().stats();
        stats.datagrams_in = network.datagrams_in;
        stats.datagrams_out = network.datagrams_out;
        stats.discarded += network.discarded;
        stats
    }

    /// The decoder's counters (async framing only).
    pub fn framing_stats(&self) -> Option<DecoderStats> {
        self.control().framing_stats()
    }

    /// The interface MTU: the peer's MRU capped by the configured MTU once LCP is Opened (the
    /// peer's MRRU when Multilink runs); 4 bytes less while MPPE encrypts what we send, as pppd
    /// does.
    pub fn mtu(&self) -> Option<u16> {
        self.lcp_negotiated()?;
        self.inner.mtu()
    }

    /// What CCP negotiated, while it is Opened.
    pub fn ccp_negotiated(&self) -> Option<&CcpNegotiated> {
        self.network().ccp_negotiated()
    }

    /// The CCP machine, if CCP is configured.
    pub fn ccp(&self) -> Option<&CcpSession> {
        self.network().ccp()
    }

    /// Starts recording every packet sent and received, for [`poll_capture`](Self::poll_capture).
    pub fn enable_capture(&mut self) {
        self.inner.enable_capture();
    }

    /// The next recorded packet, if capture is on.
    #[must_use]
    pub fn poll_capture(&mut self) -> Option<CapturedPacket> {
        self.inner.poll_capture().map(|((), packet)| packet)
    }

    /// The lower layer is up (RFC 1661 event Up): the line is connected, the session exists.
    pub fn up(&mut self, now: Instant) {
        self.inner.up(now, &());
    }

    /// The lower layer went down (carrier lost, PADT received).
    pub fn down(&mut self, now: Instant) {
        self.inner.down(now, &());
    }

    /// Administrative open: start negotiating once the lower layer is up.
    pub fn open(&mut self, now: Instant) {
        self.inner.open(now, &());
    }

    /// Administrative close: terminate the link for `reason` (its words go into the LCP
    /// Terminate-Request; [`LinkEvent::LinkDown`] carries it as [`DownReason::Closed`]).
    pub fn close(&mut self, now: Instant, reason: CloseReason) {
        self.inner.close(now, &(), reason);
    }

    /// Received bytes (async framing: any chunk of the stream; sync framing: one whole frame).
    ///
    /// Each frame is dispatched and its consequences run before the next one is decoded: a
    /// chunk may hold an LCP Configure-Ack followed by frames that already use the new ACCM
    /// (RFC 1662 §7.1), or an authentication Failure followed by the peer's Terminate-Request,
    /// whose LCP Down must not drop the failure before it is reported.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.inner.handle_input(now, &(), data);
    }

    /// One received frame already split into protocol and information field (sync framing:
    /// PPPoE decapsulation does the split, so nothing is copied).
    pub fn handle_frame(&mut self, now: Instant, protocol: Protocol, payload: &[u8]) {
        self.inner.handle_frame(now, &(), protocol, payload);
    }

    /// The time from [`poll_timeout`](Self::poll_timeout) has come. A spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
    }

    /// The answer to a [`LinkEvent::SecretNeeded`] with its token: the peer's secrets entry, or
    /// `None` when the name is unknown. An address the entry assigns becomes the peer's IPCP
    /// address.
    ///
    /// # Errors
    ///
    /// [`AuthError::NoSecretRequest`] when nothing is outstanding (the lookup timed out, the
    /// link went down), [`AuthError::StaleSecretAnswer`] when `token` is an earlier request's.
    pub fn provide_secret(
        &mut self,
        now: Instant,
        token: SecretToken,
        entry: Option<SecretEntry>,
    ) -> Result<(), AuthError> {
        self.inner.provide_secret(now, &(), token, entry)
    }

    /// The answer to a [`LinkEvent::VerifyNeeded`] with its token: the verifier's verdict
    /// (RADIUS Access-Accept or Access-Reject). An Access-Accept's Framed-IP-Address is the
    /// owner's to apply with [`set_peer_address`](Self::set_peer_address) first.
    ///
    /// # Errors
    ///
    /// [`AuthError::NoVerifyRequest`] when nothing is outstanding, [`AuthError::StaleVerdict`]
    /// when `token` is an earlier request's.
    pub fn provide_verdict(
        &mut self,
        now: Instant,
        token: SecretToken,
        verdict: Verdict,
    ) -> Result<(), AuthError> {
        self.inner.provide_verdict(now, &(), token, verdict)
    }

    /// The peer's IPCP address, set before the Network phase (from RADIUS, a profile).
    pub fn set_peer_address(&mut self, address: Ipv4Addr) {
        self.inner.set_peer_address(address);
    }

    /// Releases memory an idle link does not need (see [`LinkControl::compact`]).
    pub fn compact(&mut self, now: Instant) {
        self.inner.compact(now);
    }

    /// The name the peer authenticated as, once it has.
    pub fn peer_name(&self) -> Option<&str> {
        self.control().peer_name()
    }

    /// MS-CHAP key material for MPPE, once an MS-CHAP exchange succeeded (the one where we
    /// authenticated the peer if both directions ran MS-CHAP).
    pub fn mschap_key_material(&self) -> Option<&MsChapKeyMaterial> {
        self.control().mschap_key_material()
    }

    /// Sends an IPv4 packet.
    ///
    /// # Errors
    ///
    /// [`LinkError::NotReady`] unless IPCP is Opened, [`LinkError::TooBig`] past the MTU.
    pub fn send_ipv4(&mut self, now: Instant, packet: &[u8]) -> Result<(), LinkError> {
        self.inner.send_ipv4(now, packet)
    }

    /// Sends an IPv6 packet.
    ///
    /// # Errors
    ///
    /// [`LinkError::NotReady`] unless IPv6CP is Opened, [`LinkError::TooBig`] past the MTU.
    pub fn send_ipv6(&mut self, now: Instant, packet: &[u8]) -> Result<(), LinkError> {
        self.inner.send_ipv6(now, packet)
    }

    /// Next bytes (async) or frame (sync) for the lower layer.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.inner.poll_transmit().map(|((), bytes)| bytes)
    }

    /// Next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        loop {
            match self.inner.poll_event()? {
                MultilinkEvent::Member { event, .. } | MultilinkEvent::Network(event) => {
                    return Some(event);
                }
                // Joining and leaving its own network layer is the phase change already
                // reported.
                _ => {}
            }
        }
    }

    /// Next received datagram.
    #[must_use]
    pub fn poll_datagram(&mut self) -> Option<Datagram> {
        self.inner.poll_datagram()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called: the soonest deadline
    /// of LCP (restart timer, echo), the authentication sessions, the NCPs and CCP.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }
}

impl Machine for Link {
    type Event = LinkEvent;

    fn handle_input(&mut self, now: Instant, input: &[u8]) {
        Link::handle_input(self, now, input);
    }

    fn handle_timeout(&mut self, now: Instant) {
        Link::handle_timeout(self, now);
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        Link::poll_transmit(self)
    }

    fn poll_event(&mut self) -> Option<LinkEvent> {
        Link::poll_event(self)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Link::poll_timeout(self)
    }
}
