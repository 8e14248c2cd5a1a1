//! PPPoE runtimes: an AF_PACKET socket, the sans-IO [`PppoeClient`] / [`PppoeServer`] of
//! `ppp_link::pppoe`, and TUN devices for the IP traffic of each session.
//!
//! - [`run_client`]: discovery and PPP on one interface; when IPCP comes up a TUN device is
//!   created and configured (address, peer, MTU, optionally a default route and a resolv.conf
//!   style file), torn down when the link goes down; reconnects with exponential backoff unless
//!   told not to. [`ClientSnapshot`] is what a `monitor` shows.
//! - [`run_server`]: an access concentrator on one interface; secrets are looked up in an async
//!   [`SecretsBackend`], each session's IPCP comes from a [`SessionPolicy`] (the user's profile),
//!   one TUN per session (like pppd's `ppp0`, `ppp1`, ...), TCP MSS clamping both ways.
//!   [`SessionSnapshot`]s are what a `sessions` listing shows.
//! - [`scan`]: every access concentrator and service answering a PADI.
//! - [`EthernetCapture`]: every Ethernet frame sent and received, into a pcap file.
//!
//! Everything runs on the calling task; sockets, TUN devices and `ip` commands act in the
//! network namespace of the calling thread (see `netns` (feature `test-util`)). Each function stops when its
//! `shutdown` future completes, after ending its sessions properly (LCP Terminate, PADT).
//!
//! ```no_run
//! use std::sync::{Arc, Mutex};
//! use ppp_tokio::pppoe::{run_client, ClientOptions, ClientSnapshot};
//!
//! # async fn run() -> std::io::Result<()> {
//! let options = ClientOptions::new("eth0");
//! let status = Arc::new(Mutex::new(ClientSnapshot::default()));
//! let shutdown = async {
//!     tokio::signal::ctrl_c().await.ok();
//! };
//! let exit = run_client(options, status, shutdown).await?;
//! println!("stopped: {exit}");
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fs::File;
use std::future::Future;
use std::io::{self, BufWriter};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ppp_auth::{SecretEntry, SecretRequest, SecretsBackend};
use ppp_ccp::{CcpConfig, CompressionMethod, MppeKeyLength};
use ppp_frame::pcap::{LinkType, PcapWriter};
use ppp_ipcp::{Ipcp, Ipv6cpConfig};
use ppp_link::pppoe::{
    PppoeClient, PppoeClientEvent, PppoeDown, PppoeServer, PppoeServerEvent, SessionEnd, UnitId,
};
use ppp_link::{CloseReason, Datagram, DownReason, Link, LinkConfig, LinkEvent, Random};
use ppp_radius::limits::Admission;
use ppp_radius::{Authorization, ErrorCause, TerminateCause};
use pppoe_discovery::mss::{clamp_mss, mss_for_mtu_v4, mss_for_mtu_v6};
use pppoe_discovery::{
    AcConfig, AcGroup, AcMember, ClientConfig, DiscoveryEvent, MacAddr, ScanResult,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::aaa::{Aaa, AaaCommand, AaaOptions, SessionLimits, Verified};
use crate::netconfig::{self, IpFamily};
use crate::offload::{Coalescer, Segments, VNET_HDR_LEN, VirtioNetHdr, segment};
use crate::packet::{
    ETHERTYPE_PPPOE_DISCOVERY, ETHERTYPE_PPPOE_SESSION, PacketSocket, ReceivedFrames,
    discovery_except_padi_filter, ethertype_filter, padi_filter, shard_filter,
};
use crate::ring::{PacketRing, RingConfig};
use crate::rtnl::{PointToPoint, RouteSocket};
use crate::tun::{PacketBatch, TunDevice};
use crate::{now, sleep_until};

/// Largest frame or packet read at once.
const BUFFER_LEN: usize = 65_536;
/// How long a closing client or server waits for its Terminate-Ack and PADT to go out.
const CLOSE_GRACE: Duration = Duration::from_secs(3);
/// Packets from TUN devices of the server waiting for the run loop, at most.
const TUN_QUEUE: usize = 1024;
/// The receive queue of each packet socket: room for bursts (a reconnect avalanche, a loop
/// that stood still for a moment) of a few thousand frames.
const RECEIVE_BUFFER: usize = 8 << 20;
/// Blocks of the PADI ring the AC reads in one pass of its loop (each up to 64 KiB of PADIs,
/// about 450).
const PADI_BLOCKS: usize = 4;
/// Secret lookups under way at once, at most (beyond, requests wait in the channel).
const LOOKUP_QUEUE: usize = 256;

pub(crate) mod nas;

pub use nas::session_context;
use nas::{
    ServerAaa, UnitAaa, UnitsAaa, answer_secret, answer_verdict, close_command, lookup_secret,
};

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Records every Ethernet frame sent and received into a pcap file (link type Ethernet), for
/// `--pcap FILE`: Wireshark and tshark decode PPPoE discovery and session frames from it.
#[derive(Debug)]
pub struct EthernetCapture {
    writer: PcapWriter<BufWriter<File>>,
}

impl EthernetCapture {
    /// Creates (or truncates) the file at `path`.
    ///
    /// # Errors
    ///
    /// Any error creating or writing the file; its text starts with the path.
    pub fn create(path: &Path) -> io::Result<Self> {
        let named =
            |error: io::Error| io::Error::new(error.kind(), format!("{}: {error}", path.display()));
        let file = BufWriter::new(File::create(path).map_err(named)?);
        Ok(EthernetCapture {
            writer: PcapWriter::new(file, LinkType::Ethernet).map_err(named)?,
        })
    }

    /// Records one frame, stamped with the wall clock, and flushes the file so that it can be
    /// read while the program runs.
    ///
    /// # Errors
    ///
    /// Any error writing the file.
    pub fn record(&mut self, frame: &[u8]) -> io::Result<()> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.writer.write_packet(now, frame)?;
        self.writer.flush()
    }
}

/// Records into an optional capture; a failing capture is reported once and then dropped.
fn record(capture: &mut Option<EthernetCapture>, frame: &[u8]) {
    if let Some(writer) = capture.as_mut()
        && let Err(error) = writer.record(frame)
    {
        warn!("capture stopped: {error}");
        *capture = None;
    }
}

/// Takes every frame a machine has to send (`poll` until it gives nothing), records each and
/// sends them in order, many in one `sendmmsg(2)` ([`PacketSocket::send_batch`]); a frame that
/// cannot be sent is logged and the rest still go. `outgoing` is scratch space, reused from
/// pass to pass so that a pass allocates no list.
async fn send_frames(
    socket: &PacketSocket,
    capture: &mut Option<EthernetCapture>,
    outgoing: &mut Vec<Vec<u8>>,
    poll: impl FnMut() -> Option<Vec<u8>>,
) {
    outgoing.clear();
    outgoing.extend(std::iter::from_fn(poll));
    if outgoing.is_empty() {
        return;
    }
    for frame in outgoing.iter() {
        record(capture, frame);
    }
    socket
        .send_batch(outgoing, |_, error| {
            debug!("{}: frame not sent: {error}", socket.ifname());
        })
        .await;
    outgoing.clear();
}

/// Lowers the MSS of a TCP SYN to what `mtu` carries (IPv4 or IPv6 alike).
fn clamp(packet: &mut [u8], mtu: u16) {
    let max = match packet.first().map(|b| b >> 4) {
        Some(4) => mss_for_mtu_v4(mtu),
        Some(6) => mss_for_mtu_v6(mtu),
        _ => return,
    };
    if let Some(old) = clamp_mss(packet, max) {
        debug!("clamped TCP MSS {old} -> {max}");
    }
}

/// Waits for the next packet of an optional TUN device (forever without one).
async fn recv_tun(tun: Option<&TunDevice>, buf: &mut [u8]) -> io::Result<usize> {
    match tun {
        Some(tun) => tun.recv(buf).await,
        None => std::future::pending().await,
    }
}

/// Frames read from the session socket in one pass of a loop (the first waited for, the rest
/// only if already queued), so the packets they carry reach a TUN device with offloads as a
/// few coalesced super-packets.
const RECEIVE_BATCH: usize = 64;

/// After a frame read from the session socket: takes the frames already queued behind it (up
/// to `RECEIVE_BATCH - 1`, the room of `queued`, in one `recvmmsg(2)`), without waiting,
/// records each into `capture` and hands it to `handle`.
fn take_queued(
    socket: &PacketSocket,
    queued: &mut ReceivedFrames,
    capture: &mut Option<EthernetCapture>,
    mut handle: impl FnMut(&[u8]),
) -> io::Result<()> {
    socket.try_recv_batch(queued)?;
    for frame in queued.iter() {
        record(capture, frame);
        handle(frame);
    }
    Ok(())
}

/// Room for the frames [`take_queued`] takes from `socket` in one pass.
fn queued_frames(socket: &PacketSocket) -> ReceivedFrames {
    // An Ethernet header and two VLAN tags beyond the MTU.
    let slot_len = usize::try_from(socket.mtu()).unwrap_or(1500) + 22;
    ReceivedFrames::new(RECEIVE_BATCH - 1, slot_len)
}

/// Creates a session's TUN device: with offloads if `offload` and the kernel agrees (see
/// [`TunDevice::create_with_offload`]), else a plain one.
fn create_tun(name: Option<&str>, offload: bool) -> io::Result<TunDevice> {
    if offload {
        match TunDevice::create_with_offload(name) {
            Ok(tun) => return Ok(tun),
            Err(error) => warn!(
                "{}: TUN offloads refused ({error}); a TUN device without them instead",
                name.unwrap_or("tun")
            ),
        }
    }
    TunDevice::create(name)
}

/// Hands what one read from a TUN device gave to `send`, as IP packets of at most `mtu` bytes:
/// the read itself on a device without offloads; on one with them, the packet behind the
/// virtio-net header cut into segments (into `segments`, reused from read to read), each
/// handed over like a packet of its own (so MSS clamping, MPPE, rate limits and counters see
/// ordinary packets).
fn for_each_tun_packet(
    offload: bool,
    read: &mut [u8],
    mtu: u16,
    segments: &mut Segments,
    mut send: impl FnMut(&mut [u8]),
) {
    if !offload {
        send(read);
        return;
    }
    segments.clear();
    let cut = VirtioNetHdr::split(read)
        .and_then(|(header, packet)| segment(&header, packet, mtu, segments));
    if let Err(error) = cut {
        debug!("packet from the TUN device dropped: {error}");
        return;
    }
    for index in 0..segments.len() {
        if let Some(packet) = segments.get_with_headroom_mut(index) {
            send(packet);
        }
    }
}

/// Writes a packet from the peer to `tun`: at once on a device without offloads, into
/// `coalescer` on one with them (written by [`flush_tun`]).
async fn write_tun(tun: &TunDevice, coalescer: &mut Coalescer, packet: &[u8]) {
    if tun.has_offload() {
        coalescer.push(packet);
        return;
    }
    if let Err(error) = tun.send(packet).await {
        debug!("{}: packet not written: {error}", tun.name());
    }
}

/// Writes what `coalescer` holds to `tun` (a device with offloads), each frame with its
/// virtio-net header, and clears it.
async fn flush_tun(tun: &TunDevice, coalescer: &mut Coalescer) {
    for frame in coalescer.frames() {
        if let Err(error) = tun.send(frame).await {
            debug!("{}: packet not written: {error}", tun.name());
        }
    }
    coalescer.clear();
}

/// How a client reconnects after its session ends or discovery fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait.
    pub initial: Duration,
    /// The cap of the doubled wait.
    pub max: Duration,
}

impl Default for Backoff {
    /// 1 s, doubled up to 60 s.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

/// What [`run_client`] does.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The Ethernet interface (RouterOS `interface`).
    pub interface: String,
    /// Our Ethernet address instead of the interface's (tests run several clients on one
    /// interface this way).
    pub mac: Option<MacAddr>,
    /// Discovery: AC name, service name, max payload, retries.
    pub discovery: ClientConfig,
    /// The PPP link: LCP (MRU, MTU, echo), authentication, IPCP, CCP.
    pub link: LinkConfig,
    /// The TUN device's name (`None`: the kernel picks `tunN`).
    pub tun_name: Option<String>,
    /// Do not create a TUN device at all (discovery and PPP only).
    pub no_tun: bool,
    /// Add a default route through the session with this metric (RouterOS
    /// `add-default-route` + `default-route-distance`).
    pub default_route_metric: Option<u32>,
    /// Write the DNS servers the peer gave into this resolv.conf-style file (RouterOS
    /// `use-peer-dns`); never `/etc/resolv.conf` unless named here.
    pub resolv_conf: Option<PathBuf>,
    /// Reconnect after the session ends, with this backoff; `None`: stop after one attempt.
    pub reconnect: Option<Backoff>,
    /// Record every Ethernet frame into this pcap file.
    pub pcap: Option<PathBuf>,
    /// Open the TUN device with offloads (checksums, TCP segmentation): the kernel hands over
    /// and takes TCP super-packets of up to 64 KiB, cut to the session's MTU and coalesced
    /// again here, so one read or write moves many packets. Falls back to a TUN device without
    /// offloads (logged) if the kernel refuses. Default on.
    pub tun_offload: bool,
}

impl ClientOptions {
    /// A client on `interface` with the PPPoE defaults: any AC, any service, a TUN device,
    /// reconnecting.
    pub fn new(interface: &str) -> Self {
        ClientOptions {
            interface: interface.to_owned(),
            mac: None,
            discovery: ClientConfig::default(),
            link: LinkConfig::pppoe(),
            tun_name: None,
            no_tun: false,
            default_route_metric: None,
            resolv_conf: None,
            reconnect: Some(Backoff::default()),
            pcap: None,
            tun_offload: true,
        }
    }
}

/// What a client's `monitor` shows: a snapshot, updated by [`run_client`] as things change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientSnapshot {
    /// `dialing`, `connected`, `disconnected: ...` (RouterOS words).
    pub status: String,
    /// Since when the session is connected (IPCP up).
    pub connected_since: Option<SystemTime>,
    /// Sessions up (0 or 1).
    pub active_links: u32,
    /// The AC's name.
    pub ac_name: Option<String>,
    /// The AC's Ethernet address.
    pub ac_mac: Option<MacAddr>,
    /// The service granted.
    pub service_name: Option<String>,
    /// The PPPoE session id.
    pub session_id: Option<u16>,
    /// Our address.
    pub local_address: Option<Ipv4Addr>,
    /// The peer's address.
    pub remote_address: Option<Ipv4Addr>,
    /// Our IPv6 link-local address, while IPv6CP is up.
    pub local_ipv6: Option<Ipv6Addr>,
    /// The peer's IPv6 link-local address, while IPv6CP is up.
    pub remote_ipv6: Option<Ipv6Addr>,
    /// DNS servers the peer gave.
    pub dns: Vec<Ipv4Addr>,
    /// The interface MTU.
    pub mtu: Option<u16>,
    /// Our MRU.
    pub mru: Option<u16>,
    /// Compression and encryption in use (`none`, `MPPE128 stateless`, ...).
    pub encoding: String,
    /// The TUN device carrying the traffic.
    pub interface: Option<String>,
    /// Sessions established since the start.
    pub sessions_started: u64,
    /// Times this session's MPPE lost synchronisation and CCP was negotiated again to recover
    /// (see `ppp_ccp::CcpSession::renegotiations`).
    pub ccp_resyncs: u64,
}

/// Shared status of a running client.
pub type SharedClientSnapshot = Arc<Mutex<ClientSnapshot>>;

/// Why [`run_client`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientExit {
    /// The shutdown future completed.
    Shutdown,
    /// The session ended (or discovery failed) and reconnecting was not asked for.
    Disconnected(PppoeDown),
}

impl std::fmt::Display for ClientExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientExit::Shutdown => f.write_str("shut down"),
            ClientExit::Disconnected(reason) => write!(f, "disconnected: {reason}"),
        }
    }
}

/// How one direction's compression or encryption reads in `monitor` (RouterOS words):
/// `MPPE128 stateless`, `MPPE40 stateful`, `deflate`.
pub fn method_name(method: Option<CompressionMethod>) -> String {
    match method {
        None => "none".to_owned(),
        Some(CompressionMethod::Mppe(params)) => {
            let bits = match params.key_length {
                MppeKeyLength::Bits40 => 40,
                MppeKeyLength::Bits56 => 56,
                MppeKeyLength::Bits128 => 128,
            };
            let mode = if params.stateful {
                "stateful"
            } else {
                "stateless"
            };
            format!("MPPE{bits} {mode}")
        }
        Some(CompressionMethod::Deflate { .. }) => "deflate".to_owned(),
    }
}

/// What `encoding` says for a link: the negotiated compression or encryption (`none` while CCP
/// is not Opened); both directions when they differ (`sent / received`).
pub fn link_encoding(link: &Link) -> String {
    ccp_encoding(link.ccp_negotiated())
}

/// [`link_encoding`] for what a network layer's CCP negotiated.
fn ccp_encoding(negotiated: Option<&ppp_ccp::CcpNegotiated>) -> String {
    let Some(negotiated) = negotiated else {
        return "none".to_owned();
    };
    let (transmit, receive) = (
        method_name(negotiated.transmit),
        method_name(negotiated.receive),
    );
    if transmit == receive {
        transmit
    } else {
        format!("{transmit} / {receive}")
    }
}

/// The TUN device of a client's session and what was configured on it.
struct ClientInterface {
    tun: TunDevice,
    /// Packets from the peer, coalesced for a device with offloads.
    coalescer: Coalescer,
    default_route: Option<u32>,
    resolv_conf: Option<PathBuf>,
}

impl ClientInterface {
    fn create(
        options: &ClientOptions,
        local: Ipv4Addr,
        peer: Ipv4Addr,
        dns: &[Ipv4Addr],
        mtu: u16,
    ) -> io::Result<Self> {
        let tun = create_tun(options.tun_name.as_deref(), options.tun_offload)?;
        let name = tun.name().to_owned();
        netconfig::set_mtu(&name, u32::from(mtu))?;
        netconfig::disable_ipv6_address_generation(&name).ok();
        netconfig::set_up(&name)?;
        netconfig::add_point_to_point_ipv4(&name, local, peer)?;
        let mut interface = ClientInterface {
            coalescer: Coalescer::with_udp(tun.takes_udp_gso()),
            tun,
            default_route: None,
            resolv_conf: None,
        };
        if let Some(metric) = options.default_route_metric {
            netconfig::add_default_route(&name, IpFamily::V4, metric)?;
            interface.default_route = Some(metric);
        }
        if let Some(path) = options.resolv_conf.as_deref() {
            if dns.is_empty() {
                debug!(
                    "the peer gave no DNS servers; {} not written",
                    path.display()
                );
            } else {
                let servers: Vec<IpAddr> = dns.iter().copied().map(IpAddr::V4).collect();
                netconfig::write_resolv_conf(path, &servers)?;
                interface.resolv_conf = Some(path.to_owned());
            }
        }
        info!(
            "{name}: local IP address {local}, remote IP address {peer}, mtu {mtu}{}",
            if interface.tun.has_offload() {
                ", offloads on"
            } else {
                ""
            }
        );
        Ok(interface)
    }

    fn tear_down(self) {
        let name = self.tun.name().to_owned();
        if let Some(metric) = self.default_route {
            netconfig::remove_default_route(&name, IpFamily::V4, metric).ok();
        }
        if let Some(path) = self.resolv_conf {
            netconfig::remove_resolv_conf(&path).ok();
        }
        drop(self.tun);
        debug!("{name}: removed");
    }
}

/// Runs a PPPoE client on `options.interface` until `shutdown` completes (then it closes the
/// session: LCP Terminate and PADT) or, without `options.reconnect`, until the session ends.
/// `status` is kept up to date for `monitor`.
///
/// # Errors
///
/// Binding the packet socket, creating the capture file, or receiving from the socket fails.
/// Failures configuring the TUN device end the session (and are retried like any other end).
pub async fn run_client(
    options: ClientOptions,
    status: SharedClientSnapshot,
    shutdown: impl Future<Output = ()>,
) -> io::Result<ClientExit> {
    let socket = PacketSocket::bind(&options.interface)?;
    if let Err(error) = socket.set_receive_buffer(RECEIVE_BUFFER) {
        warn!("{}: receive buffer: {error}", options.interface);
    }
    // Our own frames need not come back to us.
    if let Err(error) = socket.ignore_outgoing() {
        debug!("{}: outgoing frames still seen: {error}", options.interface);
    }
    let mac = options.mac.unwrap_or(MacAddr(socket.mac()));
    let mut capture = options
        .pcap
        .as_deref()
        .map(EthernetCapture::create)
        .transpose()?;
    tokio::pin!(shutdown);
    let mut backoff = options.reconnect.map(|b| b.initial);
    let mut frame_buf = vec![0u8; BUFFER_LEN];
    // The largest super-packet behind its virtio-net header.
    let mut packet_buf = vec![0u8; BUFFER_LEN + VNET_HDR_LEN];
    let mut segments = Segments::new();
    let mut outgoing = Vec::new();
    let mut queued = queued_frames(&socket);
    let mut sessions_started = 0;
    let random = Random::from_os().map_err(io::Error::other)?;
    loop {
        let started_before = sessions_started;
        let mut client = PppoeClient::new(
            options.discovery.clone(),
            options.link.clone(),
            mac,
            random.clone(),
        );
        let mut interface: Option<ClientInterface> = None;
        // IPv6CP's link-local pair, kept to (re)apply when the TUN device exists.
        let mut ipv6: Option<(Ipv6Addr, Ipv6Addr)> = None;
        let mut closing_since: Option<Instant> = None;
        let mut shutting_down = false;
        client.open(now());
        update_client_status(&status, &client, None, sessions_started);
        let mut socket_error = None;
        let reason = loop {
            // Drain everything the client has for us.
            send_frames(&socket, &mut capture, &mut outgoing, || {
                client.poll_transmit()
            })
            .await;
            let mut down = None;
            while let Some(event) = client.poll_event() {
                match event {
                    PppoeClientEvent::Link(LinkEvent::IpUp { local, peer, dns }) => {
                        let mtu = client.link().and_then(Link::mtu).unwrap_or(1492);
                        let created = if options.no_tun {
                            info!(
                                "local IP address {local}, remote IP address {peer} (no TUN device)"
                            );
                            Ok(None)
                        } else {
                            ClientInterface::create(&options, local, peer, &dns, mtu).map(Some)
                        };
                        match created {
                            Ok(created) => {
                                interface = created;
                                if let (Some(interface), Some((local, peer))) =
                                    (interface.as_ref(), ipv6)
                                {
                                    add_link_local(interface.tun.name(), local, peer);
                                }
                            }
                            Err(error) => {
                                warn!("configuring the interface failed: {error}");
                                client.close(
                                    now(),
                                    CloseReason::Other("interface configuration failed".into()),
                                );
                            }
                        }
                        sessions_started += 1;
                        lock(&status).connected_since = Some(SystemTime::now());
                    }
                    PppoeClientEvent::Link(LinkEvent::Ipv6Up { local, peer }) => {
                        ipv6 = Some((local, peer));
                        match interface.as_ref() {
                            Some(interface) => add_link_local(interface.tun.name(), local, peer),
                            None => info!(
                                "local  LL address {local}, remote LL address {peer} (set when \
                                 the interface exists)"
                            ),
                        }
                    }
                    PppoeClientEvent::Link(LinkEvent::Ipv6Down) => {
                        if let (Some(interface), Some((local, peer))) = (interface.as_ref(), ipv6) {
                            netconfig::remove_ipv6_link_local(interface.tun.name(), local, peer)
                                .ok();
                        }
                        ipv6 = None;
                    }
                    // MPPE takes 4 bytes of the MTU; CCP may open after IPCP.
                    PppoeClientEvent::Link(LinkEvent::CcpUp(_) | LinkEvent::CcpDown) => {
                        if let (Some(interface), Some(mtu)) =
                            (interface.as_ref(), client.link().and_then(Link::mtu))
                        {
                            follow_mtu(interface.tun.name(), mtu);
                        }
                    }
                    PppoeClientEvent::Link(LinkEvent::IpDown) => {
                        if let Some(old) = interface.take() {
                            old.tear_down();
                        }
                    }
                    PppoeClientEvent::Discovery(DiscoveryEvent::SessionUp {
                        session_id,
                        ac_mac,
                        ac_name,
                        service_name,
                        ..
                    }) => info!(
                        "PPPoE session {session_id:#06x} with {ac_name} ({ac_mac}), service \"{service_name}\""
                    ),
                    PppoeClientEvent::Down { reason } => down = Some(reason),
                    _ => {}
                }
            }
            update_client_status(
                &status,
                &client,
                interface.as_ref().map(|i| i.tun.name()),
                sessions_started,
            );
            if let Some(reason) = down {
                // Let the PADT leave first.
                send_frames(&socket, &mut capture, &mut outgoing, || {
                    client.poll_transmit()
                })
                .await;
                break Some(reason);
            }
            while let Some(datagram) = client.poll_datagram() {
                let (Datagram::Ipv4(mut packet) | Datagram::Ipv6(mut packet)) = datagram;
                if let Some(interface) = interface.as_mut() {
                    let mtu = client.link().and_then(Link::mtu).unwrap_or(1492);
                    clamp(&mut packet, mtu);
                    write_tun(&interface.tun, &mut interface.coalescer, &packet).await;
                }
            }
            if let Some(interface) = interface.as_mut() {
                flush_tun(&interface.tun, &mut interface.coalescer).await;
            }
            let deadline = match closing_since {
                Some(since) => Some(
                    client
                        .poll_timeout()
                        .map_or(since + CLOSE_GRACE, |t| t.min(since + CLOSE_GRACE)),
                ),
                None => client.poll_timeout(),
            };
            tokio::select! {
                received = socket.recv(&mut frame_buf) => {
                    let len = match received {
                        Ok(len) => len,
                        Err(error) => {
                            socket_error = Some(error);
                            break None;
                        }
                    };
                    let now = now();
                    let frame = &frame_buf[..len];
                    record(&mut capture, frame);
                    client.handle_input(now, frame);
                    // What else is queued, so its packets coalesce for the TUN device.
                    let queued = take_queued(&socket, &mut queued, &mut capture, |frame| {
                        client.handle_input(now, frame);
                    });
                    if let Err(error) = queued {
                        socket_error = Some(error);
                        break None;
                    }
                }
                received = recv_tun(interface.as_ref().map(|i| &i.tun), &mut packet_buf) => {
                    match received {
                        Ok(len) => {
                            let mtu = client.link().and_then(Link::mtu).unwrap_or(1492);
                            let offload = interface.as_ref().is_some_and(|i| i.tun.has_offload());
                            let now = now();
                            let handed = std::cell::Cell::new(0);
                            let mut send = |packet: &mut [u8]| {
                                handed.set(handed.get() + 1);
                                clamp(packet, mtu);
                                let sent = match packet.first().map(|b| b >> 4) {
                                    Some(4) => client.send_ipv4(now, packet),
                                    Some(6) => client.send_ipv6(now, packet),
                                    _ => Ok(()),
                                };
                                if let Err(error) = sent {
                                    debug!("packet from the TUN device dropped: {error}");
                                }
                            };
                            let read = &mut packet_buf[..len];
                            for_each_tun_packet(offload, read, mtu, &mut segments, &mut send);
                            // What else the device holds (up to a batch of packets), so that
                            // their frames leave together; an error shows at the next wait.
                            while let Some(interface) = interface.as_ref()
                                && handed.get() < RECEIVE_BATCH
                                && let Ok(Some(len)) = interface.tun.try_recv(&mut packet_buf)
                            {
                                let read = &mut packet_buf[..len];
                                for_each_tun_packet(offload, read, mtu, &mut segments, &mut send);
                            }
                        }
                        Err(error) => {
                            warn!("TUN device failed: {error}");
                            client.close(now(), CloseReason::Other("TUN device failed".into()));
                        }
                    }
                }
                () = sleep_until(deadline) => {
                    let now = now();
                    if closing_since.is_some_and(|since| now >= since + CLOSE_GRACE) {
                        break None;
                    }
                    client.handle_timeout(now);
                }
                () = &mut shutdown, if !shutting_down => {
                    shutting_down = true;
                    closing_since = Some(now());
                    client.close(now(), CloseReason::UserRequest);
                }
            }
        };
        if let Some(old) = interface.take() {
            old.tear_down();
        }
        if let Some(error) = socket_error {
            lock(&status).status = format!("disconnected: {error}");
            return Err(error);
        }
        match &reason {
            Some(reason) => info!("PPPoE client: {reason}"),
            None => info!("PPPoE client: shut down"),
        }
        {
            let mut snapshot = lock(&status);
            snapshot.status = match &reason {
                Some(reason) => format!("disconnected: {reason}"),
                None => "disconnected: shut down".to_owned(),
            };
            snapshot.active_links = 0;
            snapshot.connected_since = None;
            snapshot.local_address = None;
            snapshot.remote_address = None;
            snapshot.local_ipv6 = None;
            snapshot.remote_ipv6 = None;
            snapshot.interface = None;
        }
        let Some(reason) = reason.filter(|_| !shutting_down) else {
            return Ok(ClientExit::Shutdown);
        };
        let (Some(wait), Some(policy)) = (backoff, options.reconnect) else {
            return Ok(ClientExit::Disconnected(reason));
        };
        // A session that came up resets the backoff.
        let wait = if sessions_started > started_before {
            policy.initial
        } else {
            wait
        };
        info!("reconnecting in {} ms", wait.as_millis());
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = &mut shutdown => return Ok(ClientExit::Shutdown),
        }
        backoff = Some((wait * 2).min(policy.max));
    }
}

/// Refreshes the client's `monitor` snapshot; `interface` is the session's device name (a TUN
/// device, or the kernel's `pppN` on the kernel data path, which calls this too).
pub(crate) fn update_client_status(
    status: &SharedClientSnapshot,
    client: &PppoeClient,
    interface: Option<&str>,
    sessions_started: u64,
) {
    let mut snapshot = lock(status);
    snapshot.status = client.state().to_string();
    snapshot.sessions_started = sessions_started;
    match client.session() {
        Some(session) => {
            snapshot.ac_name = Some(session.ac_name.clone());
            snapshot.ac_mac = Some(session.ac_mac);
            snapshot.service_name = Some(session.service_name.clone());
            snapshot.session_id = Some(session.session_id);
        }
        None => {
            snapshot.session_id = None;
        }
    }
    let link = client.link();
    let negotiated = link.and_then(Link::ipcp_negotiated);
    snapshot.local_address = negotiated.map(|n| n.local);
    snapshot.remote_address = negotiated.map(|n| n.peer);
    let ipv6 = link.and_then(Link::ipv6cp_negotiated);
    snapshot.local_ipv6 = ipv6.map(|n| n.local_link_local());
    snapshot.remote_ipv6 = ipv6.map(|n| n.peer_link_local());
    snapshot.dns = negotiated
        .map(|n| n.dns.iter().flatten().copied().collect())
        .unwrap_or_default();
    snapshot.mtu = link.and_then(Link::mtu);
    snapshot.mru = link.and_then(Link::lcp_negotiated).map(|n| n.our_mru);
    snapshot.encoding = link.map_or_else(|| "none".to_owned(), link_encoding);
    snapshot.ccp_resyncs = link
        .and_then(Link::ccp)
        .map_or(0, ppp_ccp::CcpSession::renegotiations);
    snapshot.active_links = u32::from(negotiated.is_some());
    if negotiated.is_none() {
        snapshot.connected_since = None;
    }
    snapshot.interface = interface.map(str::to_owned);
}

/// Sends a PADI and collects every access concentrator and service that answers within
/// `window` (RouterOS `/interface pppoe-client scan`).
///
/// # Errors
///
/// Binding the packet socket or receiving fails.
pub async fn scan(
    interface: &str,
    discovery: ClientConfig,
    window: Duration,
) -> io::Result<Vec<ScanResult>> {
    let socket = PacketSocket::bind(interface)?;
    let mac = MacAddr(socket.mac());
    let random = Random::from_os().map_err(io::Error::other)?;
    let mut client = PppoeClient::new(discovery, LinkConfig::pppoe(), mac, random);
    client.scan(now(), window);
    let give_up = now() + window + Duration::from_secs(1);
    let mut buf = vec![0u8; BUFFER_LEN];
    let mut capture = None;
    let mut outgoing = Vec::new();
    loop {
        send_frames(&socket, &mut capture, &mut outgoing, || {
            client.poll_transmit()
        })
        .await;
        while let Some(event) = client.poll_event() {
            if let PppoeClientEvent::Discovery(DiscoveryEvent::ScanComplete { results }) = event {
                return Ok(results);
            }
        }
        let deadline = client.poll_timeout().map_or(give_up, |t| t.min(give_up));
        tokio::select! {
            received = socket.recv(&mut buf) => {
                let len = received?;
                client.handle_input(now(), &buf[..len]);
            }
            () = sleep_until(Some(deadline)) => {
                let now = now();
                if now >= give_up {
                    return Ok(Vec::new());
                }
                client.handle_timeout(now);
            }
        }
    }
}

/// Who is asking to start a session, for a [`SessionPolicy`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRequest {
    /// The PPPoE session id.
    pub session_id: u16,
    /// The client's Ethernet address.
    pub client_mac: MacAddr,
    /// The PPPoE service the client was granted.
    pub service_name: String,
    /// The authentication request (user name, our name, method).
    pub secret: SecretRequest,
}

/// The server's decision for a session whose user was looked up (or accepted by RADIUS).
#[derive(Debug, Default)]
pub struct SessionDecision {
    /// The secrets entry to check the user against (`None`: the user is refused). Not used
    /// for a user RADIUS accepted.
    pub entry: Option<SecretEntry>,
    /// The session's IPCP (from the user's profile: local address, remote address or pool, DNS
    /// servers); `None` keeps the one of the server's link template.
    pub ipcp: Option<Ipcp>,
    /// The session's CCP (from the user's profile: encryption and compression): `None` keeps the
    /// server's link template, `Some(None)` turns CCP off for this session.
    pub ccp: Option<Option<CcpConfig>>,
    /// The session's IPv6CP (from the user's profile): `None` keeps the server's link template,
    /// `Some(None)` turns IPv6 off for this session.
    pub ipv6cp: Option<Option<Ipv6cpConfig>>,
    /// The profile's (or the secret's) rate limit, timeouts and `only-one`; RADIUS's
    /// attributes win over them.
    pub limits: SessionLimits,
}

/// What a server does with a user once the secrets backend answered: applies restrictions
/// (service) and builds the session's IPCP and CCP from the user's profile.
pub trait SessionPolicy: Send {
    /// The decision for `request`, whose lookup found `entry`.
    fn decide(&mut self, request: &SessionRequest, entry: Option<SecretEntry>) -> SessionDecision;

    /// The decision for a user a RADIUS server accepted with `authorization`: the default
    /// profile's settings, the address from Framed-IP-Address or Framed-Pool. The default
    /// keeps the server's link template (and the server applies Framed-IP-Address itself).
    fn decide_radius(
        &mut self,
        request: &SessionRequest,
        authorization: &Authorization,
    ) -> SessionDecision {
        let _ = (request, authorization);
        SessionDecision::default()
    }

    /// The policy for another worker thread of the same server ([`ServerOptions::workers`]),
    /// sharing with this one what must be shared (address pools, counters). `None` (the
    /// default): the policy cannot be shared, and the server runs on one thread.
    fn for_worker(&self) -> Option<Box<dyn SessionPolicy>> {
        None
    }
}

/// The policy that takes the backend's entry as it is and keeps the template's IPCP.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlainPolicy;

impl SessionPolicy for PlainPolicy {
    fn decide(&mut self, _request: &SessionRequest, entry: Option<SecretEntry>) -> SessionDecision {
        SessionDecision {
            entry,
            ..SessionDecision::default()
        }
    }

    fn for_worker(&self) -> Option<Box<dyn SessionPolicy>> {
        Some(Box::new(PlainPolicy))
    }
}

/// What [`run_server`] does.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// The Ethernet interface.
    pub interface: String,
    /// Discovery: AC name, services, max sessions, one session per host, PADO delay.
    pub ac: AcConfig,
    /// Each session's PPP link: LCP (required authentication, echo), our name, IPCP defaults,
    /// CCP.
    pub link: LinkConfig,
    /// TUN devices are named `PREFIX0`, `PREFIX1`, ... (lowest free number).
    pub tun_prefix: String,
    /// Do not create TUN devices (discovery and PPP only).
    pub no_tun: bool,
    /// Clamp the MSS of TCP SYNs both ways to the session's MTU.
    pub clamp_mss: bool,
    /// Open the sessions' TUN devices with offloads (checksums, TCP segmentation), like
    /// [`ClientOptions::tun_offload`]; TUN devices without them (logged once) if the kernel
    /// refuses. Default on.
    pub tun_offload: bool,
    /// Record every Ethernet frame into this pcap file.
    pub pcap: Option<PathBuf>,
    /// RADIUS, accounting, `only-one` and dynamic authorization, shared by the servers of a
    /// process (`None`: local secrets only, no accounting; profile limits still apply).
    pub aaa: Option<Aaa>,
    /// Worker threads serving the interface (default 1: everything on the calling task). With
    /// more, each worker is a whole server with sockets of its own, and the kernel steers every
    /// frame of a client to one of them by the client's MAC address (a socket filter:
    /// [`shard_filter`]), so a client's discovery and sessions, and their TUN devices' traffic,
    /// stay on one thread and no frame crosses threads. Session ids say which worker has a
    /// session (id ≡ worker mod workers); the workers share the cookie key, `max_sessions`,
    /// the interface numbers, the status board, the address pools (through
    /// [`SessionPolicy::for_worker`]) and AAA. PADIs are all read by worker 0 (the PADI limits
    /// see the whole flood). One worker is used anyway with Multilink (a bundle joins links of
    /// one worker only), with a capture file (one file, one order) or with a policy that
    /// cannot be shared; the log says why.
    pub workers: usize,
}

impl ServerOptions {
    /// An access concentrator on `interface` with the defaults of [`AcConfig`] and a PPPoE link.
    pub fn new(interface: &str) -> Self {
        ServerOptions {
            interface: interface.to_owned(),
            ac: AcConfig::default(),
            link: LinkConfig::pppoe(),
            tun_prefix: "ppp".to_owned(),
            no_tun: false,
            clamp_mss: true,
            tun_offload: true,
            pcap: None,
            aaa: None,
            workers: 1,
        }
    }
}

/// One session of a running server, for the `sessions` listing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionSnapshot {
    /// The PPPoE session id.
    pub session_id: u16,
    /// The user name, once authenticated.
    pub user: Option<String>,
    /// The client's Ethernet address.
    pub client_mac: MacAddr,
    /// The PPPoE service.
    pub service_name: String,
    /// The client's address, once IPCP is up.
    pub address: Option<Ipv4Addr>,
    /// Our address on the session.
    pub local_address: Option<Ipv4Addr>,
    /// The TUN device carrying the session's traffic.
    pub interface: Option<String>,
    /// When the session started (PADS).
    pub started: SystemTime,
    /// Where the link stands (phase).
    pub state: String,
    /// Compression and encryption in use.
    pub encoding: String,
    /// The Multilink bundle the session is a member of (its members share the interface).
    pub bundle: Option<u32>,
    /// The rate limit in force (RouterOS syntax), if any.
    pub rate_limit: Option<String>,
    /// Acct-Session-Id, once the session is up.
    pub acct_session_id: Option<String>,
    /// Times the session's MPPE lost synchronisation and CCP was negotiated again to recover.
    pub ccp_resyncs: u64,
}

/// The sessions of a running server, kept up to date by [`run_server`].
pub type SharedServerSnapshot = Arc<Mutex<Vec<SessionSnapshot>>>;

/// A session's TUN device and the task reading it.
struct SessionInterface {
    tun: Arc<TunDevice>,
    reader: JoinHandle<()>,
    index: u32,
}

/// The session interfaces of a server: their numbers, the rtnetlink socket that configures
/// them, their netdev group, and those being deleted.
///
/// The kernel deletes a device on its own slowly (closing a TUN device's descriptor waits for
/// RCU grace periods: about 10 ms, during which the loop would stand still), but a whole
/// netdev group in one batch as fast as one device. So a retired interface only moves to the
/// server's "doomed" group, and a reaper thread deletes that group a few times a second; the
/// descriptor is closed (cheaply, its device gone) once the reaper says so, and only then is
/// its number free again. At shutdown both groups go at once.
struct Interfaces {
    /// Shared by the workers of a server.
    numbers: Arc<Mutex<InterfaceNumbers>>,
    rtnl: Option<RouteSocket>,
    group: u32,
    doomed_group: u32,
    /// Retired interfaces and their deletion request, oldest first.
    doomed: VecDeque<(u64, SessionInterface)>,
    requested: u64,
    /// Deletion requests to the reaper (`None`: no reaper, interfaces closed at once).
    reaper: Option<std::sync::mpsc::Sender<u64>>,
    /// The last request the reaper carried out.
    reaped: tokio::sync::watch::Receiver<u64>,
    /// Shutting down: retired interfaces stay in the server's group, deleted with it at the
    /// end (moving each would wait for the kernel's lock behind the reaper's deletions).
    closing: bool,
    /// Create TUN devices with offloads (cleared once the kernel refuses them).
    offload: bool,
}

/// How long the reaper lets deletion requests gather before it deletes the doomed group.
const REAP_GATHER: Duration = Duration::from_millis(20);

impl Interfaces {
    fn new(
        no_tun: bool,
        offload: bool,
        numbers: Arc<Mutex<InterfaceNumbers>>,
        random: &Random,
    ) -> io::Result<Self> {
        // Not 0 (every device's), and unlikely to be another server's.
        let group = 0x0100_0000 | (random.u32() & 0x007f_ffff);
        let doomed_group = group | 0x0080_0000;
        let (done, reaped) = tokio::sync::watch::channel(0);
        let mut interfaces = Interfaces {
            numbers,
            rtnl: None,
            group,
            doomed_group,
            doomed: VecDeque::new(),
            requested: 0,
            reaper: None,
            reaped,
            closing: false,
            offload,
        };
        if no_tun {
            return Ok(interfaces);
        }
        interfaces.rtnl = Some(RouteSocket::open()?);
        // Opened here: a netlink socket acts in the namespace of the thread that opened it.
        let mut rtnl = RouteSocket::open()?;
        let (requests, incoming) = std::sync::mpsc::channel::<u64>();
        std::thread::Builder::new()
            .name("pppoe-reaper".into())
            .spawn(move || {
                while let Ok(mut last) = incoming.recv() {
                    std::thread::sleep(REAP_GATHER);
                    while let Ok(request) = incoming.try_recv() {
                        last = last.max(request);
                    }
                    if let Err(error) = rtnl.delete_group(doomed_group) {
                        debug!("deleting group {doomed_group} failed: {error}");
                    }
                    if done.send(last).is_err() {
                        return;
                    }
                }
            })?;
        interfaces.reaper = Some(requests);
        Ok(interfaces)
    }

    /// Creates and configures a session's TUN device (`PREFIXn`, the lowest free n).
    fn create(
        &mut self,
        prefix: &str,
        local: Ipv4Addr,
        peer: Ipv4Addr,
        mtu: u16,
    ) -> io::Result<(TunDevice, u32)> {
        let index = lock(&self.numbers).take();
        let offload = self.offload;
        let created = self.rtnl.as_mut().ok_or_else(no_rtnl).and_then(|rtnl| {
            let name = format!("{prefix}{index}");
            let tun = create_tun(Some(&name), offload)?;
            configure_session_interface(rtnl, self.group, tun, local, peer, mtu)
        });
        match created {
            Ok(tun) => {
                if offload && !tun.has_offload() {
                    self.offload = false;
                }
                Ok((tun, index))
            }
            Err(error) => {
                lock(&self.numbers).release(index);
                Err(error)
            }
        }
    }

    /// A session's interface is no longer needed: into the doomed group, deleted by the reaper.
    fn retire(&mut self, interface: SessionInterface) {
        interface.reader.abort();
        if self.closing {
            self.doomed.push_back((u64::MAX, interface));
            return;
        }
        let moved = match (self.rtnl.as_mut(), self.reaper.as_ref()) {
            (Some(rtnl), Some(_)) => rtnl.move_to_group(interface.tun.index(), self.doomed_group),
            _ => Err(no_rtnl()),
        };
        if let Err(error) = moved {
            debug!("{}: removed at once ({error})", interface.tun.name());
            lock(&self.numbers).release(interface.index);
            return;
        }
        self.requested += 1;
        self.doomed.push_back((self.requested, interface));
        let sent = self
            .reaper
            .as_ref()
            .is_some_and(|reaper| reaper.send(self.requested).is_ok());
        if !sent {
            warn!("the interface reaper stopped; interfaces are removed one by one");
            self.reaper = None;
            self.reaped_up_to(u64::MAX);
        }
    }

    /// Waits until the reaper deleted more (forever without a reaper).
    async fn reaped(&mut self) -> u64 {
        if self.reaper.is_none() || self.reaped.changed().await.is_err() {
            self.reaper = None;
            return std::future::pending().await;
        }
        *self.reaped.borrow_and_update()
    }

    /// Closes the descriptors of interfaces whose devices the reaper deleted.
    fn reaped_up_to(&mut self, done: u64) {
        while self
            .doomed
            .front()
            .is_some_and(|(request, _)| *request <= done)
        {
            if let Some((_, interface)) = self.doomed.pop_front() {
                lock(&self.numbers).release(interface.index);
                debug!("{}: removed", interface.tun.name());
            }
        }
    }

    /// Deletes every interface of the server (both groups) in one batch each.
    fn delete_all(&mut self, remaining: Vec<SessionInterface>) {
        self.reaper = None;
        let count = remaining.len() + self.doomed.len();
        let started = Instant::now();
        if let Some(rtnl) = self.rtnl.as_mut() {
            for group in [self.group, self.doomed_group] {
                if let Err(error) = rtnl.delete_group(group) {
                    warn!("deleting the session interfaces (group {group}) failed: {error}");
                }
            }
        }
        for interface in remaining {
            interface.reader.abort();
            lock(&self.numbers).release(interface.index);
        }
        self.reaped_up_to(u64::MAX);
        if count > 0 {
            info!(
                "{count} session interface(s) removed in {} ms",
                started.elapsed().as_millis()
            );
        }
    }
}

fn no_rtnl() -> io::Error {
    io::Error::other("no rtnetlink socket (no_tun)")
}

/// The numbers of session interfaces (`ppp0`, `ppp1`, ...): the lowest free one, in O(log n).
#[derive(Debug, Default)]
struct InterfaceNumbers {
    /// Numbers below `next` given back.
    free: BTreeSet<u32>,
    /// The lowest number never given out.
    next: u32,
}

impl InterfaceNumbers {
    fn take(&mut self) -> u32 {
        self.free.pop_first().unwrap_or_else(|| {
            self.next += 1;
            self.next - 1
        })
    }

    fn release(&mut self, number: u32) {
        if number < self.next {
            self.free.insert(number);
        }
        while self.next > 0 && self.free.remove(&(self.next - 1)) {
            self.next -= 1;
        }
    }
}

/// Per-session state of the runtime beyond the sans-IO server.
struct SessionExtra {
    user: Option<String>,
    started: SystemTime,
}

/// Per-unit state (a session's own network layer, or a Multilink bundle's): its interface.
#[derive(Default)]
struct UnitExtra {
    interface: Option<SessionInterface>,
    /// IPv6CP's link-local pair, kept to apply when the TUN device exists.
    ipv6: Option<(Ipv6Addr, Ipv6Addr)>,
    /// Enforcement and accounting, from IPCP up.
    aaa: UnitAaa,
}

impl UnitsAaa for BTreeMap<UnitId, UnitExtra> {
    fn unit_aaa(&mut self, unit: UnitId) -> Option<&mut UnitAaa> {
        self.get_mut(&unit).map(|e| &mut e.aaa)
    }
}

/// Runs an access concentrator on `options.interface` until `shutdown` completes (then every
/// session gets LCP Terminate and a PADT). Secrets come from `secrets`; `policy` decides each
/// session's IPCP and limits; `status` lists the sessions. With `options.aaa` using RADIUS,
/// users `secrets` does not have are authenticated by RADIUS; sessions are accounted, limited
/// and timed out as their profile or RADIUS says, and dynamic authorization reaches them.
///
/// # Errors
///
/// Binding the packet socket, creating the capture file, or receiving from the socket fails.
pub async fn run_server(
    mut options: ServerOptions,
    secrets: Arc<dyn SecretsBackend>,
    policy: Box<dyn SessionPolicy>,
    status: SharedServerSnapshot,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    lock(&status).clear();
    let policies = worker_policies(&options, policy.as_ref());
    if policies.is_empty() {
        return serve(options, secrets, policy, status, shutdown, Worker::alone()).await;
    }
    // At most MAX_WORKERS.
    let workers = u16::try_from(policies.len() + 1).unwrap_or(u16::MAX);
    info!("{}: {workers} worker threads", options.interface);
    // One AAA for all workers (its registry behind `only-one`).
    if options.aaa.is_none() {
        options.aaa = Some(Aaa::new(AaaOptions::default())?);
    }
    let random = Random::from_os().map_err(io::Error::other)?;
    let group = AcGroup::new(workers, &random, Instant::now());
    let numbers = Arc::new(Mutex::new(InterfaceNumbers::default()));
    let rows = Arc::new(Mutex::new(HashMap::new()));
    let worker = |index: u16| Worker {
        member: group.member(index),
        numbers: Arc::clone(&numbers),
        rows: Arc::clone(&rows),
    };
    // Any worker that ends ends them all (a failed socket, say); so does `shutdown`.
    let stop = Arc::new(watch::channel(false).0);
    let stopped = |stop: &Arc<watch::Sender<bool>>| {
        let mut stopped = stop.subscribe();
        async move {
            stopped.wait_for(|stopped| *stopped).await.ok();
        }
    };
    let mut threads = Vec::new();
    for (index, policy) in (1..workers).zip(policies) {
        let (done, finished) = oneshot::channel();
        let (options, secrets, status) =
            (options.clone(), Arc::clone(&secrets), Arc::clone(&status));
        let (worker, shutdown, stopper) = (worker(index), stopped(&stop), Arc::clone(&stop));
        let spawned = std::thread::Builder::new()
            .name(format!("pppoe-worker{index}"))
            .spawn(move || {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .and_then(|runtime| {
                            runtime
                                .block_on(serve(options, secrets, policy, status, shutdown, worker))
                        })
                }))
                .unwrap_or_else(|_| Err(io::Error::other("a worker thread panicked")));
                stopper.send_replace(true);
                done.send(result).ok();
            });
        match spawned {
            Ok(_) => threads.push(finished),
            Err(error) => {
                stop.send_replace(true);
                return Err(error);
            }
        }
    }
    let first = async {
        let result = serve(options, secrets, policy, status, stopped(&stop), worker(0)).await;
        stop.send_replace(true);
        result
    };
    let until = async {
        tokio::select! {
            () = shutdown => {}
            () = stopped(&stop) => {}
        }
        stop.send_replace(true);
    };
    let (mut result, ()) = tokio::join!(first, until);
    for finished in threads {
        let outcome = finished
            .await
            .unwrap_or_else(|_| Err(io::Error::other("a worker thread ended without a word")));
        if let (Ok(()), Err(error)) = (&result, outcome) {
            result = Err(error);
        }
    }
    result
}

/// Most worker threads of one server.
const MAX_WORKERS: usize = 64;

/// The policies of workers 1, 2, ... of `options` ([`ServerOptions::workers`], taken from
/// `policy`); none when one worker serves (asked for, or something needs it: logged).
fn worker_policies(
    options: &ServerOptions,
    policy: &dyn SessionPolicy,
) -> Vec<Box<dyn SessionPolicy>> {
    let wanted = options.workers.clamp(1, MAX_WORKERS);
    if wanted == 1 {
        return Vec::new();
    }
    let why = if options.link.lcp.mrru.is_some() {
        "Multilink bundles join the links of one worker only"
    } else if options.pcap.is_some() {
        "a capture file takes every frame in one order"
    } else if let Some(policies) = (1..wanted).map(|_| policy.for_worker()).collect() {
        return policies;
    } else {
        "the session policy cannot be shared between threads"
    };
    info!(
        "{}: one worker thread instead of {wanted}: {why}",
        options.interface
    );
    Vec::new()
}

/// Which worker of a server a loop is, and what the workers share.
struct Worker {
    /// Its discovery's place in the workers' group (`None`: the only worker).
    member: Option<AcMember>,
    numbers: Arc<Mutex<InterfaceNumbers>>,
    rows: Arc<Mutex<HashMap<u16, usize>>>,
}

impl Worker {
    fn alone() -> Self {
        Worker {
            member: None,
            numbers: Arc::default(),
            rows: Arc::default(),
        }
    }

    /// Its index and the number of workers.
    fn place(&self) -> (u16, u16) {
        self.member
            .as_ref()
            .map_or((0, 1), |m| (m.index(), m.group().members()))
    }
}

/// One worker of [`run_server`]: the whole server for the clients steered to it.
async fn serve(
    mut options: ServerOptions,
    secrets: Arc<dyn SecretsBackend>,
    mut policy: Box<dyn SessionPolicy>,
    status: SharedServerSnapshot,
    shutdown: impl Future<Output = ()>,
    worker: Worker,
) -> io::Result<()> {
    let (index, count) = worker.place();
    let aaa = match options.aaa.clone() {
        Some(aaa) => aaa,
        None => Aaa::new(AaaOptions::default())?,
    };
    if aaa.uses_radius() {
        options.link.auth.authenticator = options.link.auth.authenticator.clone().external();
    }
    // Session frames, PADRs and PADTs, and PADIs in queues of their own: a discovery flood
    // fills only its own, and the loop serves session frames first.
    // With several workers, each has sockets of its own that take only its clients' frames,
    // and worker 0 takes every PADI (`bind_discovery`).
    let socket = PacketSocket::bind_filtered(
        &options.interface,
        ETHERTYPE_PPPOE_SESSION,
        &shard_filter(&ethertype_filter(ETHERTYPE_PPPOE_SESSION), index, count),
    )?;
    let (discovery, mut padis) = bind_discovery(&options.interface, index, count)?;
    for (which, socket) in [("session", &socket), ("discovery", &discovery)] {
        match socket.set_receive_buffer(RECEIVE_BUFFER) {
            Ok(size) => debug!("{}: {which} receive buffer {size} bytes", options.interface),
            Err(error) => warn!("{}: {which} receive buffer: {error}", options.interface),
        }
    }
    let mac = MacAddr(socket.mac());
    let mut capture = options
        .pcap
        .as_deref()
        .map(EthernetCapture::create)
        .transpose()?;
    let random = Random::from_os().map_err(io::Error::other)?;
    let mut interfaces = Interfaces::new(
        options.no_tun,
        options.tun_offload,
        Arc::clone(&worker.numbers),
        &random,
    )?;
    let (ac, link) = (options.ac.clone(), options.link.clone());
    let mut server = match worker.member.clone() {
        Some(member) => PppoeServer::member(ac, link, mac, random, member),
        None => PppoeServer::new(ac, link, mac, random),
    };
    if index == 0 {
        info!(
            "access concentrator \"{}\" on {} ({mac}), services \"{}\"",
            options.ac.ac_name,
            options.interface,
            options.ac.services.join("\", \"")
        );
    }
    let mut nas = ServerAaa::new(aaa, &options.interface, true);
    let (lookup_tx, mut lookup_rx) =
        mpsc::channel::<(SessionRequest, Option<SecretEntry>)>(LOOKUP_QUEUE);
    let (verify_tx, mut verify_rx) = mpsc::channel::<(SessionRequest, Verified)>(LOOKUP_QUEUE);
    let (tun_tx, mut tun_rx) = mpsc::channel::<(UnitId, PacketBatch)>(TUN_QUEUE);
    let batches = BatchPool::default();
    let mut extras: BTreeMap<u16, SessionExtra> = BTreeMap::new();
    let mut units: BTreeMap<UnitId, UnitExtra> = BTreeMap::new();
    let mut board = StatusBoard::for_worker(status, Arc::clone(&worker.rows), index, count);
    let mut touched: Vec<u16> = Vec::new();
    let mut frame_buf = vec![0u8; BUFFER_LEN];
    let mut discovery_buf = vec![0u8; BUFFER_LEN];
    let mut segments = Segments::new();
    let mut outgoing = Vec::new();
    let mut queued = queued_frames(&socket);
    let mut to_tun = TunCoalescer::default();
    let mut padi_report = PadiReport::default();
    tokio::pin!(shutdown);
    let mut closing_since: Option<Instant> = None;
    let mut socket_error = None;
    loop {
        send_frames(&socket, &mut capture, &mut outgoing, || {
            server.poll_transmit()
        })
        .await;
        while let Some(event) = server.poll_event() {
            touched_sessions(&server, &event, &mut touched);
            match event {
                PppoeServerEvent::Discovery(pppoe_discovery::AcEvent::SessionUp {
                    session_id,
                    client_mac,
                    service_name,
                    ..
                }) => {
                    info!(
                        "session {session_id:#06x} from {client_mac} for service \"{service_name}\""
                    );
                    extras.insert(
                        session_id,
                        SessionExtra {
                            user: None,
                            started: SystemTime::now(),
                        },
                    );
                }
                PppoeServerEvent::Link {
                    session_id,
                    event: LinkEvent::SecretNeeded(request),
                } => lookup_secret(&server, session_id, request, &secrets, &lookup_tx),
                PppoeServerEvent::Link {
                    session_id,
                    event: LinkEvent::VerifyNeeded(request),
                } => nas.verify_needed(&server, session_id, request, &secrets, &verify_tx),
                PppoeServerEvent::Link {
                    session_id,
                    event: LinkEvent::Authenticated { peer_name },
                } => {
                    if let Some(extra) = extras.get_mut(&session_id) {
                        extra.user.clone_from(&peer_name);
                    }
                    nas.authenticated(session_id);
                }
                PppoeServerEvent::Network {
                    unit,
                    event: LinkEvent::IpUp { local, peer, .. },
                } => {
                    let users: BTreeSet<String> = server
                        .unit(unit)
                        .into_iter()
                        .flat_map(|u| u.members().map(|(id, _, _)| *id))
                        .filter_map(|id| extras.get(&id).and_then(|e| e.user.clone()))
                        .collect();
                    let users: Vec<String> = users.into_iter().collect();
                    info!(
                        "{unit} user \"{}\" up: local {local}, remote {peer}",
                        users.join("\", \"")
                    );
                    nas.unit_up(&server, &mut units.entry(unit).or_default().aaa, unit, peer);
                    if options.no_tun {
                        continue;
                    }
                    let mtu = server.mtu(unit).unwrap_or(1492);
                    match interfaces.create(&options.tun_prefix, local, peer, mtu) {
                        Ok((tun, index)) => {
                            let tun = Arc::new(tun);
                            let reader = tokio::spawn(read_tun(
                                Arc::clone(&tun),
                                unit,
                                tun_tx.clone(),
                                batches.clone(),
                            ));
                            let interface = SessionInterface { tun, reader, index };
                            let extra = units.entry(unit).or_default();
                            if let Some((local, peer)) = extra.ipv6 {
                                add_link_local(interface.tun.name(), local, peer);
                                let prefix = extra
                                    .aaa
                                    .nas
                                    .as_ref()
                                    .and_then(|(_, n)| n.framed_ipv6_prefix());
                                if let Some((prefix, len)) = prefix {
                                    route_prefix(interface.tun.name(), prefix, len);
                                }
                            }
                            if let Some(old) = extra.interface.replace(interface) {
                                interfaces.retire(old);
                            }
                        }
                        Err(error) => {
                            warn!("{unit}: interface not configured: {error}");
                            server.close_unit(
                                now(),
                                unit,
                                CloseReason::Other("interface configuration failed".into()),
                            );
                        }
                    }
                }
                PppoeServerEvent::Network {
                    unit,
                    event: LinkEvent::Ipv6Up { local, peer },
                } => {
                    let extra = units.entry(unit).or_default();
                    extra.ipv6 = Some((local, peer));
                    if let Some(interface) = extra.interface.as_ref() {
                        add_link_local(interface.tun.name(), local, peer);
                        let prefix = extra
                            .aaa
                            .nas
                            .as_ref()
                            .and_then(|(_, n)| n.framed_ipv6_prefix());
                        if let Some((prefix, len)) = prefix {
                            route_prefix(interface.tun.name(), prefix, len);
                        }
                    }
                }
                PppoeServerEvent::Network {
                    unit,
                    event: LinkEvent::Ipv6Down,
                } => {
                    if let Some(extra) = units.get_mut(&unit) {
                        if let (Some(interface), Some((local, peer))) =
                            (extra.interface.as_ref(), extra.ipv6)
                        {
                            netconfig::remove_ipv6_link_local(interface.tun.name(), local, peer)
                                .ok();
                        }
                        extra.ipv6 = None;
                    }
                }
                PppoeServerEvent::Network {
                    unit,
                    event: LinkEvent::CcpUp(_) | LinkEvent::CcpDown,
                } => {
                    let mtu = server.mtu(unit);
                    let interface = units.get(&unit).and_then(|e| e.interface.as_ref());
                    if let (Some(interface), Some(mtu)) = (interface, mtu) {
                        follow_mtu(interface.tun.name(), mtu);
                    }
                }
                PppoeServerEvent::Network {
                    unit,
                    event: LinkEvent::IpDown,
                } => {
                    if let Some(old) = units.get_mut(&unit).and_then(|e| e.interface.take()) {
                        interfaces.retire(old);
                    }
                }
                PppoeServerEvent::Joined {
                    unit,
                    session_id,
                    members,
                } => {
                    info!("session {session_id:#06x} joined {unit} ({members} members)");
                }
                PppoeServerEvent::Left {
                    unit,
                    session_id,
                    members,
                } => {
                    info!("session {session_id:#06x} left {unit} ({members} members)");
                }
                PppoeServerEvent::UnitDown { unit } => {
                    if let Some(mut extra) = units.remove(&unit) {
                        nas.unit_down(unit, &mut extra.aaa);
                        if let Some(old) = extra.interface {
                            interfaces.retire(old);
                        }
                    }
                }
                PppoeServerEvent::SessionDown {
                    session_id,
                    client_mac,
                    reason,
                } => {
                    let user = extras
                        .get(&session_id)
                        .and_then(|e| e.user.clone())
                        .unwrap_or_default();
                    info!(
                        "session {session_id:#06x} from {client_mac} user \"{user}\" down: {reason}"
                    );
                    extras.remove(&session_id);
                    nas.session_down(&mut units, session_id, &reason);
                }
                _ => {}
            }
        }
        let received_at = now();
        while let Some((unit, datagram)) = server.poll_datagram() {
            let (Datagram::Ipv4(packet) | Datagram::Ipv6(packet)) = datagram;
            let packet = match units.get_mut(&unit).and_then(|e| e.aaa.nas.as_mut()) {
                Some((_, session)) => match session.receive(received_at, packet) {
                    Admission::Now(packet) => packet,
                    Admission::Queued => {
                        nas.deadlines.set(unit, session.poll_timeout());
                        continue;
                    }
                    Admission::Dropped(_) => continue,
                },
                None => packet,
            };
            let mtu = server.mtu(unit);
            deliver(&units, mtu, &options, unit, packet, &mut to_tun).await;
        }
        to_tun.flush(&units).await;
        board.refresh(&mut touched, &server, &extras, &units);
        if closing_since.is_some() && server.session_count() == 0 {
            send_frames(&socket, &mut capture, &mut outgoing, || {
                server.poll_transmit()
            })
            .await;
            break;
        }
        let deadline = [server.poll_timeout(), nas.deadlines.next()]
            .into_iter()
            .flatten()
            .min();
        let deadline = match closing_since {
            Some(since) => {
                Some(deadline.map_or(since + CLOSE_GRACE, |t| t.min(since + CLOSE_GRACE)))
            }
            None => deadline,
        };
        // In this order: session frames first, discovery frames only when nothing else waits
        // (a PADI flood cannot starve sessions, their timers or their traffic).
        tokio::select! {
            biased;
            received = socket.recv(&mut frame_buf) => {
                let len = match received {
                    Ok(len) => len,
                    Err(error) => {
                        socket_error = Some(error);
                        break;
                    }
                };
                let now = now();
                let frame = &frame_buf[..len];
                record(&mut capture, frame);
                server.handle_input(now, frame);
                // What else is queued, so its packets coalesce for the TUN devices.
                let queued = take_queued(&socket, &mut queued, &mut capture, |frame| {
                    server.handle_input(now, frame);
                });
                if let Err(error) = queued {
                    socket_error = Some(error);
                    break;
                }
            }
            Some((unit, mut batch)) = tun_rx.recv() => {
                let now = now();
                let mut from_tun = |unit: UnitId, batch: &mut PacketBatch| {
                    let Some(mtu) = server.mtu(unit) else { return };
                    let offload = units
                        .get(&unit)
                        .and_then(|e| e.interface.as_ref())
                        .is_some_and(|i| i.tun.has_offload());
                    for index in 0..batch.len() {
                        let Some(read) = batch.get_mut(index) else { continue };
                        for_each_tun_packet(offload, read, mtu, &mut segments, |packet| {
                            if options.clamp_mss {
                                clamp(packet, mtu);
                            }
                            match units.get_mut(&unit).and_then(|e| e.aaa.nas.as_mut()) {
                                Some((_, session)) => match session.transmit_slice(now, packet) {
                                    Admission::Now(packet) => {
                                        send_to_unit(&mut server, now, unit, packet);
                                    }
                                    Admission::Queued => {
                                        nas.deadlines.set(unit, session.poll_timeout());
                                    }
                                    Admission::Dropped(_) => {}
                                },
                                None => send_to_unit(&mut server, now, unit, packet),
                            }
                        });
                    }
                };
                from_tun(unit, &mut batch);
                batches.put(batch);
                // What else the devices have read, so that the frames leave together.
                for _ in 1..RECEIVE_BATCH {
                    let Ok((unit, mut batch)) = tun_rx.try_recv() else { break };
                    from_tun(unit, &mut batch);
                    batches.put(batch);
                }
            }
            Some((request, entry)) = lookup_rx.recv() => {
                answer_secret(&mut server, policy.as_mut(), &mut nas, &request, entry);
            }
            Some((request, verified)) = verify_rx.recv() => {
                answer_verdict(&mut server, policy.as_mut(), &mut nas, &request, verified);
            }
            Some(command) = nas.attached.recv() => {
                match command {
                    AaaCommand::Close { port, reason, done } => {
                        close_command(&mut server, port, reason, done);
                    }
                    AaaCommand::Change { port, change, done } => {
                        let outcome = u16::try_from(port)
                            .map_err(|_| ErrorCause::SESSION_CONTEXT_NOT_FOUND)
                            .and_then(|id| nas.change(&server, &mut units, id, &change));
                        let _ = done.send(outcome);
                        if let Ok(id) = u16::try_from(port) {
                            touched.push(id);
                        }
                    }
                }
            }
            () = sleep_until(deadline) => {
                let now = now();
                if closing_since.is_some_and(|since| now >= since + CLOSE_GRACE) {
                    break;
                }
                server.handle_timeout(now);
                for unit in nas.deadlines.take_due(now) {
                    let Some(extra) = units.get_mut(&unit) else { continue };
                    let Some((_, session)) = extra.aaa.nas.as_mut() else { continue };
                    let mut inbound = Vec::new();
                    while let Some(packet) = session.poll_received(now) {
                        inbound.push(packet);
                    }
                    let mut outbound = Vec::new();
                    while let Some(packet) = session.poll_transmitted(now) {
                        outbound.push(packet);
                    }
                    let close = nas.timers_due(unit, session, now);
                    for packet in outbound {
                        send_to_unit(&mut server, now, unit, &packet);
                    }
                    for packet in inbound {
                        let mtu = server.mtu(unit);
                        deliver(&units, mtu, &options, unit, packet, &mut to_tun).await;
                    }
                    to_tun.flush(&units).await;
                    if let Some(reason) = close {
                        info!("{unit}: closing ({reason})");
                        server.close_unit(now, unit, reason);
                    }
                }
            }
            done = interfaces.reaped() => interfaces.reaped_up_to(done),
            () = &mut shutdown, if closing_since.is_none() => {
                info!("access concentrator shutting down");
                closing_since = Some(now());
                interfaces.closing = true;
                server.close(now(), CloseReason::Shutdown);
            }
            // PADRs and PADTs before PADIs; PADIs from their ring, up to PADI_BLOCKS blocks in
            // one pass of this loop, so the AC reads a flood as fast as one sender sends it
            // and the kernel does not drop clients' PADIs at a full queue.
            received = discovery.recv(&mut discovery_buf) => {
                let len = match received {
                    Ok(len) => len,
                    Err(error) => {
                        socket_error = Some(error);
                        break;
                    }
                };
                let frame = &discovery_buf[..len];
                record(&mut capture, frame);
                server.handle_input(now(), frame);
            }
            received = recv_padis(padis.as_mut(), |frame| {
                record(&mut capture, frame);
                server.handle_input(now(), frame);
            }) => {
                if let Err(error) = received {
                    socket_error = Some(error);
                    break;
                }
                padi_report.check(&options.interface, now(), server.access_concentrator().stats());
            }
        }
    }
    let mut remaining = Vec::new();
    for (unit, mut extra) in std::mem::take(&mut units) {
        if extra.aaa.nas.is_some() && extra.aaa.end.is_none() {
            extra.aaa.end = Some(SessionEnd::Link(DownReason::Closed(CloseReason::Shutdown)));
        }
        nas.unit_down(unit, &mut extra.aaa);
        remaining.extend(extra.interface);
    }
    interfaces.delete_all(remaining);
    nas.stop_all(TerminateCause::NAS_REBOOT);
    board.clear();
    match socket_error {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// PADIs from the ring, up to [`PADI_BLOCKS`] blocks, each given to `take`; never, without a
/// ring (a worker other than the first).
pub(crate) async fn recv_padis(
    padis: Option<&mut PacketRing>,
    take: impl FnMut(&[u8]),
) -> io::Result<()> {
    match padis {
        Some(padis) => padis.recv(PADI_BLOCKS, take).await.map(|_| ()),
        None => std::future::pending().await,
    }
}

/// An access concentrator's discovery sockets on `interface`: one for PADRs and PADTs (which
/// also sends), and a receive ring for PADIs, so that a PADI flood neither fills the queue the
/// PADRs wait in nor outruns the AC (a ring costs it a fraction of a core at the rate one
/// sender reaches, where reading PADIs one `recv` each could not keep up and the kernel dropped
/// clients' PADIs with the flood's). For worker `index` of `count` ([`ServerOptions::workers`]):
/// the PADR/PADT socket takes only that worker's clients ([`shard_filter`]), and only worker 0
/// has the PADI ring.
pub(crate) fn bind_discovery(
    interface: &str,
    index: u16,
    count: u16,
) -> io::Result<(PacketSocket, Option<PacketRing>)> {
    let discovery = PacketSocket::bind_filtered(
        interface,
        ETHERTYPE_PPPOE_DISCOVERY,
        &shard_filter(&discovery_except_padi_filter(), index, count),
    )?;
    let padis = (index == 0)
        .then(|| {
            PacketRing::bind(
                interface,
                ETHERTYPE_PPPOE_DISCOVERY,
                &padi_filter(),
                RingConfig::default(),
            )
        })
        .transpose()?;
    Ok((discovery, padis))
}

/// Logs PADIs refused by the AC's PADI limits (a flood, or more clients at once than the
/// limits allow), at most once per [`PadiReport::EVERY`], with what was refused and what the
/// retry lane let through since the last report.
#[derive(Debug, Default)]
pub(crate) struct PadiReport {
    /// The counters at the last report, and when it was.
    last: Option<(Instant, pppoe_discovery::AcStats)>,
}

impl PadiReport {
    /// Shortest time between two reports.
    pub(crate) const EVERY: Duration = Duration::from_secs(5);

    pub(crate) fn check(&mut self, interface: &str, now: Instant, stats: pppoe_discovery::AcStats) {
        let Some((since, last)) = self.last else {
            self.last = Some((now, stats));
            return;
        };
        if now < since + Self::EVERY {
            return;
        }
        let refused = (stats.padi_limited + stats.padi_limited_per_mac)
            .saturating_sub(last.padi_limited + last.padi_limited_per_mac);
        if refused > 0 {
            warn!(
                "{interface}: {} PADIs in the last {:.0} s, {refused} refused by the PADI limits \
                 ({} per MAC), {} answered as clients trying again, {} PADOs sent",
                stats.padi_received.saturating_sub(last.padi_received),
                (now - since).as_secs_f64(),
                stats
                    .padi_limited_per_mac
                    .saturating_sub(last.padi_limited_per_mac),
                stats
                    .padi_retries_answered
                    .saturating_sub(last.padi_retries_answered),
                stats.pado_sent.saturating_sub(last.pado_sent),
            );
        }
        self.last = Some((now, stats));
    }
}

/// Packets from users on their way to TUN devices with offloads: coalesced for one unit at a
/// time (a packet for another unit writes out the first's), written by
/// [`flush`](Self::flush) once the loop has handled what was ready.
#[derive(Default)]
struct TunCoalescer {
    coalescer: Coalescer,
    unit: Option<UnitId>,
}

impl TunCoalescer {
    /// Writes what is held to its unit's TUN device (nothing if the device is gone).
    async fn flush(&mut self, units: &BTreeMap<UnitId, UnitExtra>) {
        if let Some(unit) = self.unit.take() {
            match units.get(&unit).and_then(|e| e.interface.as_ref()) {
                Some(interface) => flush_tun(&interface.tun, &mut self.coalescer).await,
                None => self.coalescer.clear(),
            }
        }
    }
}

/// Writes a packet from a unit's user to its TUN device (through `to_tun` for a device with
/// offloads).
async fn deliver(
    units: &BTreeMap<UnitId, UnitExtra>,
    mtu: Option<u16>,
    options: &ServerOptions,
    unit: UnitId,
    mut packet: Vec<u8>,
    to_tun: &mut TunCoalescer,
) {
    let Some(interface) = units.get(&unit).and_then(|e| e.interface.as_ref()) else {
        return;
    };
    if options.clamp_mss {
        clamp(&mut packet, mtu.unwrap_or(1492));
    }
    if interface.tun.has_offload() && to_tun.unit != Some(unit) {
        to_tun.flush(units).await;
        to_tun.unit = Some(unit);
        to_tun.coalescer.set_udp(interface.tun.takes_udp_gso());
    }
    write_tun(&interface.tun, &mut to_tun.coalescer, &packet).await;
}

/// Sends a packet to a unit's user.
fn send_to_unit(server: &mut PppoeServer, now: Instant, unit: UnitId, packet: &[u8]) {
    let sent = match packet.first().map(|b| b >> 4) {
        Some(4) => server.send_ipv4(now, unit, packet),
        Some(6) => server.send_ipv6(now, unit, packet),
        _ => Ok(()),
    };
    if let Err(error) = sent {
        debug!("{unit}: packet dropped: {error}");
    }
}

/// Routes a RADIUS Framed-IPv6-Prefix to a session's interface.
pub(crate) fn route_prefix(name: &str, prefix: Ipv6Addr, len: u8) {
    let destination = format!("{prefix}/{len}");
    match netconfig::ip(&["-6", "route", "replace", destination.as_str(), "dev", name]) {
        Ok(_) => info!("{name}: routing {destination}"),
        Err(error) => warn!("{name}: routing {destination} failed: {error}"),
    }
}

/// Adds IPv6CP's link-local addresses to a session's TUN device.
fn add_link_local(name: &str, local: Ipv6Addr, peer: Ipv6Addr) {
    set_ipv6(name, true);
    match netconfig::add_ipv6_link_local(name, local, peer) {
        Ok(()) => info!("{name}: local  LL address {local}, remote LL address {peer}"),
        Err(error) => warn!("{name}: adding the IPv6 link-local addresses failed: {error}"),
    }
}

/// Turns IPv6 on or off on a session interface (`net.ipv6.conf.NAME.disable_ipv6`, in the
/// namespace of the calling thread); nothing to do on a kernel without IPv6.
fn set_ipv6(name: &str, on: bool) {
    let path = format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6");
    if let Err(error) = std::fs::write(&path, if on { "0" } else { "1" }) {
        debug!("{name}: IPv6 {}: {error}", if on { "on" } else { "off" });
    }
}

/// Sets a session interface's MTU again after the link's changed (MPPE came or went after the
/// interface was configured at IPCP up).
fn follow_mtu(name: &str, mtu: u16) {
    match netconfig::set_mtu(name, u32::from(mtu)) {
        Ok(()) => info!("{name}: mtu {mtu}"),
        Err(error) => warn!("{name}: setting mtu {mtu} failed: {error}"),
    }
}

/// Configures a session's new TUN device: IPv6 off, point-to-point IPv4, MTU, group, up.
fn configure_session_interface(
    rtnl: &mut RouteSocket,
    group: u32,
    tun: TunDevice,
    local: Ipv4Addr,
    peer: Ipv4Addr,
    mtu: u16,
) -> io::Result<TunDevice> {
    // IPv6 off until IPv6CP comes up (add_link_local turns it on): an interface with IPv6
    // brought up or given an MTU walks the kernel's whole IPv6 routing table, whose size grows
    // with the number of such interfaces.
    set_ipv6(tun.name(), false);
    rtnl.configure_point_to_point(&PointToPoint {
        index: tun.index(),
        mtu: u32::from(mtu),
        group,
        local,
        peer,
    })
    .map_err(|error| io::Error::new(error.kind(), format!("{}: {error}", tun.name())))?;
    debug!(
        "{}: local {local} peer {peer}/32 mtu {mtu}{}",
        tun.name(),
        if tun.has_offload() {
            ", offloads on"
        } else {
            ""
        }
    );
    Ok(tun)
}

/// Batches of TUN packets the server loop has emptied, for the `read_tun` tasks to fill again
/// (all on the loop's thread: the lock is never contended).
#[derive(Clone, Default)]
struct BatchPool(Arc<Mutex<Vec<PacketBatch>>>);

impl BatchPool {
    /// Emptied batches kept, at most (each keeps the memory of its largest read).
    const KEPT: usize = 64;

    /// An emptied batch, or a new one.
    fn take(&self) -> PacketBatch {
        lock(&self.0).pop().unwrap_or_default()
    }

    /// Empties `batch` and keeps it for [`take`](Self::take).
    fn put(&self, mut batch: PacketBatch) {
        batch.clear();
        let mut kept = lock(&self.0);
        if kept.len() < Self::KEPT {
            kept.push(batch);
        }
    }
}

/// Reads a session's TUN device, what is queued in batches (with no buffer of its own while it
/// waits: see [`TunDevice::recv_batch`]).
async fn read_tun(
    tun: Arc<TunDevice>,
    unit: UnitId,
    out: mpsc::Sender<(UnitId, PacketBatch)>,
    batches: BatchPool,
) {
    loop {
        // What the device holds, up to a batch, in a batch the loop has emptied before: one
        // message for all of it, and no allocation in steady state.
        let mut batch = batches.take();
        match tun.recv_batch(&mut batch, RECEIVE_BATCH).await {
            Ok(_) => {
                if out.send((unit, batch)).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                debug!("{}: read failed: {error}", tun.name());
                return;
            }
        }
    }
}

/// The `sessions` listing, kept up to date one session at a time: the loop refreshes only the
/// sessions an event touched (O(1) per event, whatever the number of sessions up), never the
/// whole list. Rows are in no particular order (a removal moves the last row into the gap);
/// `sessions` sorts them when it prints.
pub(crate) struct StatusBoard {
    shared: SharedServerSnapshot,
    /// Where each session's row is: shared by the workers of a server, whose session ids differ
    /// (always locked after `shared`).
    rows: Arc<Mutex<HashMap<u16, usize>>>,
    /// This board's sessions: ids ≡ `.0` (mod `.1`).
    mine: (u16, u16),
}

impl StatusBoard {
    pub(crate) fn new(shared: SharedServerSnapshot) -> Self {
        lock(&shared).clear();
        StatusBoard {
            shared,
            rows: Arc::default(),
            mine: (0, 1),
        }
    }

    /// The board of worker `index` of `count`, on a list the caller cleared, with `rows` shared
    /// by the workers.
    fn for_worker(
        shared: SharedServerSnapshot,
        rows: Arc<Mutex<HashMap<u16, usize>>>,
        index: u16,
        count: u16,
    ) -> Self {
        StatusBoard {
            shared,
            rows,
            mine: (index, count.max(1)),
        }
    }

    /// Puts a session's row in (new) or in place of its old one.
    pub(crate) fn put(&mut self, snapshot: SessionSnapshot) {
        let mut list = lock(&self.shared);
        let mut rows = lock(&self.rows);
        match rows.get(&snapshot.session_id) {
            Some(&row) => list[row] = snapshot,
            None => {
                rows.insert(snapshot.session_id, list.len());
                list.push(snapshot);
            }
        }
    }

    /// Takes a session's row out.
    pub(crate) fn remove(&mut self, session_id: u16) {
        let mut list = lock(&self.shared);
        let mut rows = lock(&self.rows);
        let Some(row) = rows.remove(&session_id) else {
            return;
        };
        list.swap_remove(row);
        if let Some(moved) = list.get(row) {
            rows.insert(moved.session_id, row);
        }
    }

    /// Builds the rows of `touched` sessions again (each once), and takes out those gone.
    fn refresh(
        &mut self,
        touched: &mut Vec<u16>,
        server: &PppoeServer,
        extras: &BTreeMap<u16, SessionExtra>,
        units: &BTreeMap<UnitId, UnitExtra>,
    ) {
        touched.sort_unstable();
        touched.dedup();
        for id in touched.drain(..) {
            match session_snapshot(server, extras, units, id) {
                Some(snapshot) => self.put(snapshot),
                None => self.remove(id),
            }
        }
    }

    /// Takes out the rows of this board's sessions (of another worker's, none).
    pub(crate) fn clear(&mut self) {
        let (index, count) = self.mine;
        let ids: Vec<u16> = lock(&self.rows)
            .keys()
            .copied()
            .filter(|id| id % count == index)
            .collect();
        for id in ids {
            self.remove(id);
        }
    }
}

/// The sessions whose row an event may change: its session, or every member of its unit.
pub(crate) fn touched_sessions(
    server: &PppoeServer,
    event: &PppoeServerEvent,
    touched: &mut Vec<u16>,
) {
    match event {
        PppoeServerEvent::Discovery(pppoe_discovery::AcEvent::SessionUp { session_id, .. })
        | PppoeServerEvent::Link { session_id, .. }
        | PppoeServerEvent::Joined { session_id, .. }
        | PppoeServerEvent::Left { session_id, .. }
        | PppoeServerEvent::SessionDown { session_id, .. } => touched.push(*session_id),
        PppoeServerEvent::Network { unit, .. } => match unit {
            UnitId::Link(id) => touched.push(*id),
            UnitId::Bundle(_) => touched.extend(
                server
                    .unit(*unit)
                    .into_iter()
                    .flat_map(|u| u.members().map(|(id, _, _)| *id)),
            ),
        },
        _ => {}
    }
}

/// One session's row of the `sessions` listing (`None`: no such session).
fn session_snapshot(
    server: &PppoeServer,
    extras: &BTreeMap<u16, SessionExtra>,
    units: &BTreeMap<UnitId, UnitExtra>,
    id: u16,
) -> Option<SessionSnapshot> {
    let session = server.session(id)?;
    let extra = extras.get(&id);
    let link = server.session_link(id);
    let unit_id = server.session_unit(id).unwrap_or(UnitId::Link(id));
    let unit = server.unit(unit_id);
    let nas = units
        .get(&unit_id)
        .and_then(|e| e.aaa.nas.as_ref())
        .map(|(_, n)| n);
    let negotiated = unit.and_then(|u| u.network().ipcp_negotiated());
    Some(SessionSnapshot {
        session_id: id,
        user: extra
            .and_then(|e| e.user.clone())
            .or_else(|| link.and_then(|l| l.peer_name()).map(str::to_owned)),
        client_mac: session.client_mac(),
        service_name: server
            .access_concentrator()
            .session(id)
            .map(|r| r.service_name().to_owned())
            .unwrap_or_default(),
        address: negotiated.map(|n| n.peer),
        local_address: negotiated.map(|n| n.local),
        interface: units
            .get(&unit_id)
            .and_then(|e| e.interface.as_ref())
            .map(|i| i.tun.name().to_owned()),
        started: extra.map_or(SystemTime::now(), |e| e.started),
        state: link.map_or_else(|| "dead".to_owned(), |l| l.phase().to_string()),
        encoding: ccp_encoding(unit.and_then(|u| u.ccp_negotiated())),
        bundle: match unit_id {
            UnitId::Bundle(n) => Some(n),
            UnitId::Link(_) => None,
        },
        rate_limit: nas
            .and_then(|n| n.limits().rate_limit)
            .map(|r| r.to_string()),
        acct_session_id: nas.map(|n| n.account().acct_session_id.to_string()),
        ccp_resyncs: unit
            .and_then(|u| u.network().ccp())
            .map_or(0, ppp_ccp::CcpSession::renegotiations),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppp_ccp::MppeParams;

    #[test]
    fn clamp_leaves_non_ip_alone() {
        let mut packet = [0u8; 4];
        clamp(&mut packet, 1492);
        assert_eq!(packet, [0; 4]);
        clamp(&mut [], 1492);
    }

    #[test]
    fn encoding_names() {
        let table = [
            (None, "none"),
            (
                Some(CompressionMethod::Mppe(MppeParams {
                    key_length: MppeKeyLength::Bits128,
                    stateful: false,
                })),
                "MPPE128 stateless",
            ),
            (
                Some(CompressionMethod::Mppe(MppeParams {
                    key_length: MppeKeyLength::Bits40,
                    stateful: true,
                })),
                "MPPE40 stateful",
            ),
            (
                Some(CompressionMethod::Deflate { window_bits: 15 }),
                "deflate",
            ),
        ];
        for (method, name) in table {
            assert_eq!(method_name(method), name);
        }
        assert_eq!(
            link_encoding(&Link::new(LinkConfig::pppoe(), Random::seeded(1))),
            "none"
        );
    }

    #[test]
    fn client_exit_reads_well() {
        assert_eq!(ClientExit::Shutdown.to_string(), "shut down");
        assert_eq!(
            ClientExit::Disconnected(PppoeDown::Discovery(
                pppoe_discovery::DiscoveryFailure::NoOffer
            ))
            .to_string(),
            "disconnected: discovery failed: no access concentrator answered"
        );
    }

    #[test]
    fn ethernet_capture_writes_a_pcap_header() {
        let path = std::env::temp_dir().join(format!("pppoe-capture-{}.pcap", std::process::id()));
        let mut capture = EthernetCapture::create(&path).expect("create");
        capture.record(&[0xff; 60]).expect("record");
        drop(capture);
        let bytes = std::fs::read(&path).expect("read");
        std::fs::remove_file(&path).ok();
        assert_eq!(&bytes[..4], &0xA1B2_C3D4u32.to_le_bytes());
        // link type 1 (Ethernet), then one record header of 16 bytes and the frame
        assert_eq!(&bytes[20..24], &1u32.to_le_bytes());
        assert_eq!(bytes.len(), 24 + 16 + 60);
    }

    #[test]
    fn interface_numbers_are_the_lowest_free() {
        let mut numbers = InterfaceNumbers::default();
        assert_eq!(
            (0..4).map(|_| numbers.take()).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        numbers.release(1);
        numbers.release(3);
        assert_eq!(numbers.take(), 1);
        assert_eq!(numbers.take(), 3);
        for n in [0, 1, 2, 3] {
            numbers.release(n);
        }
        assert_eq!((numbers.next, numbers.free.len()), (0, 0), "{numbers:?}");
        assert_eq!(numbers.take(), 0);
    }

    fn row(session_id: u16) -> SessionSnapshot {
        SessionSnapshot {
            session_id,
            user: None,
            client_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            service_name: String::new(),
            address: None,
            local_address: None,
            interface: None,
            started: UNIX_EPOCH,
            state: "establish".to_owned(),
            encoding: "none".to_owned(),
            bundle: None,
            rate_limit: None,
            acct_session_id: None,
            ccp_resyncs: 0,
        }
    }

    /// 20,000 random puts and removals of the sessions `id_of` draws; what the board should now
    /// list (session → state).
    fn churn(
        board: &mut StatusBoard,
        random: &Random,
        id_of: impl Fn(u32) -> u16,
    ) -> BTreeMap<u16, String> {
        let mut model = BTreeMap::new();
        for step in 0..20_000u32 {
            let id = id_of(random.u32());
            if random.u32().is_multiple_of(3) {
                board.remove(id);
                model.remove(&id);
            } else {
                let mut snapshot = row(id);
                snapshot.state = step.to_string();
                model.insert(id, snapshot.state.clone());
                board.put(snapshot);
            }
        }
        model
    }

    /// The list as it is, and as a map session → state.
    fn listed(shared: &SharedServerSnapshot) -> (Vec<SessionSnapshot>, BTreeMap<u16, String>) {
        let list = lock(shared).clone();
        let seen = list
            .iter()
            .map(|s| (s.session_id, s.state.clone()))
            .collect();
        (list, seen)
    }

    /// The board changes one row per session touched, whatever the number of rows, and stays
    /// the same set as a plain map after any sequence of puts and removals.
    #[test]
    fn status_board_changes_only_the_rows_touched() {
        let shared: SharedServerSnapshot = Arc::new(Mutex::new(vec![row(9999)]));
        let mut board = StatusBoard::new(Arc::clone(&shared));
        assert!(lock(&shared).is_empty(), "a new board starts empty");
        let model = churn(&mut board, &Random::seeded(7), |draw| (draw % 500) as u16);
        let (list, seen) = listed(&shared);
        assert_eq!(seen.len(), list.len(), "one row per session");
        assert_eq!(seen, model);
        for (id, row) in lock(&board.rows).iter() {
            assert_eq!(list[*row].session_id, *id);
        }
        // Changing one session of many leaves every other row as it was (no rebuild).
        let before = lock(&shared).clone();
        let some = *model.keys().next().expect("a session");
        let mut changed = row(some);
        changed.state = "network".to_owned();
        board.put(changed);
        let after = lock(&shared).clone();
        let differing = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        assert_eq!(differing, 1);
        board.clear();
        assert!(lock(&shared).is_empty());
    }

    /// The boards of two workers on one list, changed from two threads at once: every row in
    /// place, and a worker that ends takes out its own rows only.
    #[test]
    fn worker_boards_share_one_list() {
        let shared: SharedServerSnapshot = Arc::new(Mutex::new(Vec::new()));
        let rows = Arc::new(Mutex::new(HashMap::new()));
        let models: Vec<BTreeMap<u16, String>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..2u16)
                .map(|index| {
                    let mut board =
                        StatusBoard::for_worker(Arc::clone(&shared), Arc::clone(&rows), index, 2);
                    scope.spawn(move || {
                        let random = Random::seeded(u64::from(index) + 20);
                        // This worker's ids only: ≡ index (mod 2).
                        let model =
                            churn(&mut board, &random, |draw| (draw % 250) as u16 * 2 + index);
                        (board, model)
                    })
                })
                .collect();
            let mut boards = Vec::new();
            let mut models = Vec::new();
            for worker in workers {
                let (board, model) = worker.join().expect("no panic");
                boards.push(board);
                models.push(model);
            }
            let (list, seen) = listed(&shared);
            let mut all = models[0].clone();
            all.extend(models[1].clone());
            assert_eq!((seen.len(), &seen), (list.len(), &all));
            for (id, row) in lock(&rows).iter() {
                assert_eq!(list[*row].session_id, *id);
            }
            boards[1].clear();
            models
        });
        let (_, left) = listed(&shared);
        assert_eq!(left, models[0], "worker 1's rows gone, worker 0's kept");
    }

    #[test]
    fn default_options() {
        let client = ClientOptions::new("eth0");
        assert_eq!(client.link.framing, ppp_link::Framing::Sync);
        assert!(client.reconnect.is_some());
        let server = ServerOptions::new("eth0");
        assert_eq!(server.tun_prefix, "ppp");
        assert!(server.clamp_mss);
    }
}
