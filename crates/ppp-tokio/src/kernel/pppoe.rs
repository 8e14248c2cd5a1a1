//! The PPPoE client and access concentrator on the kernel data path.
//!
//! Discovery runs as on the TUN path (the sans-IO `PppoeClient` / `PppoeServer` over a packet
//! socket, which now lets only Discovery frames through). When a session starts, its PPP
//! leaves the Ethernet: an `AF_PPPOX` socket is connected to the session, its channel attached
//! through `/dev/ppp` and connected to a new unit (`pppN`), and from then on the kernel
//! encapsulates and forwards every data packet. The core's session frames are taken apart and
//! written to the channel or the unit ([`KernelLink`]); what the kernel hands up is wrapped
//! into a session frame again and fed to the core, which never notices the difference.
//! Addresses, MTU, routes and `resolv.conf` go on `pppN` as they go on the TUN device.
//!
//! The options, snapshots and exits are those of [`crate::pppoe`]; what differs: no TCP MSS
//! clamping in user space (use the firewall's `TCPMSS` target, as with pppd and accel-ppp),
//! no Multilink (`mrru` needs the TUN path), and CCP only as the kernel's modules allow
//! ([`KernelSupport::kernel_ccp`]). The access concentrator applies the AAA of the TUN path
//! (the same code: RADIUS, `only-one`, Session-Timeout and Idle-Timeout, accounting, Disconnect
//! and CoA) with the counters and idle time the kernel keeps for each unit; it cannot enforce
//! rate limits, so a session granted one is refused and a CoA setting one is not applied.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use ppp_auth::{SecretEntry, SecretsBackend};
use ppp_ccp::MppeKeys;
use ppp_link::pppoe::{
    PppoeClient, PppoeClientEvent, PppoeServer, PppoeServerEvent, SessionEnd, UnitId,
};
use ppp_link::{CloseReason, DownReason, Link, LinkEvent, Random};
use ppp_radius::{Authorization, ErrorCause, TerminateCause};
use pppoe_discovery::{DiscoveryEvent, MacAddr};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::{KernelInput, KernelLink, KernelSupport, PppChannel, PppUnit, PppoeSocket};
use crate::aaa::{Aaa, AaaCommand, AaaOptions, Verified};
use crate::netconfig::{self, IpFamily};
use crate::packet::{ETHERTYPE_PPPOE_SESSION, PacketSocket};
use crate::pppoe::nas::{
    ServerAaa, UnitAaa, UnitsAaa, answer_secret, answer_verdict, close_command, lookup_secret,
};
use crate::pppoe::{
    ClientExit, ClientOptions, EthernetCapture, PadiReport, ServerOptions, SessionDecision,
    SessionPolicy, SessionRequest, SessionSnapshot, SharedClientSnapshot, SharedServerSnapshot,
    StatusBoard, bind_discovery, method_name, recv_padis, route_prefix, touched_sessions,
    update_client_status,
};
use crate::rtnl::RouteSocket;
use crate::{now, sleep_until};

/// Largest frame read at once.
const BUFFER_LEN: usize = 65_536;
/// How long a closing client or server waits for its Terminate-Ack and PADT to go out.
const CLOSE_GRACE: Duration = Duration::from_secs(3);
/// Control frames from the kernel waiting for the access concentrator's loop, at most.
const KERNEL_QUEUE: usize = 1024;
/// Secret lookups under way at once, at most.
const LOOKUP_QUEUE: usize = 256;
/// Ethernet + PPPoE header length.
const SESSION_HEADER_LEN: usize = pppoe_discovery::wire::HEADER_LEN;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A session frame of the core, taken apart: session id and PPP frame (protocol field first).
/// `None` for anything else (discovery frames, malformed ones).
pub(crate) fn session_ppp_frame(frame: &[u8]) -> Option<(u16, &[u8])> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    if ethertype != ETHERTYPE_PPPOE_SESSION {
        return None;
    }
    let session = pppoe_discovery::decapsulate(frame).ok()?;
    let len = usize::from(u16::from_be_bytes([*frame.get(18)?, *frame.get(19)?]));
    let ppp = frame.get(SESSION_HEADER_LEN..SESSION_HEADER_LEN + len)?;
    Some((session.session_id, ppp))
}

/// A PPP frame from the kernel wrapped into the session frame the core expects.
pub(crate) fn wrap_session_frame(
    ppp: &[u8],
    dst: MacAddr,
    src: MacAddr,
    session_id: u16,
) -> Option<Vec<u8>> {
    let mut frame = vec![0; SESSION_HEADER_LEN];
    frame.extend_from_slice(ppp);
    pppoe_discovery::write_session_header(&mut frame, dst, src, session_id).ok()?;
    Some(frame)
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

async fn send_frame(socket: &PacketSocket, capture: &mut Option<EthernetCapture>, frame: &[u8]) {
    record(capture, frame);
    if let Err(error) = socket.send(frame).await {
        debug!("{}: frame not sent: {error}", socket.ifname());
    }
}

/// The session's kernel objects: the PPPoE socket (its channel) and the link's unit.
struct KernelSession {
    /// Kept open: closing it ends the kernel's part of the session.
    _socket: PppoeSocket,
    link: KernelLink,
}

impl KernelSession {
    /// Puts session `session_id` with `peer` on `interface` into the kernel, on a new unit
    /// (renamed `name` if given).
    fn start(
        interface: &str,
        session_id: u16,
        peer: MacAddr,
        name: Option<&str>,
        ccp: bool,
    ) -> io::Result<KernelSession> {
        let socket = PppoeSocket::connect(interface, session_id, peer)?;
        let channel = PppChannel::attach(socket.channel_index()?)?;
        let mut unit = PppUnit::create()?;
        if let Some(name) = name {
            unit.rename(name)?;
        }
        let link = KernelLink::new(channel, Arc::new(unit), ccp, false)?;
        Ok(KernelSession {
            _socket: socket,
            link,
        })
    }

    /// Sends one of the link's frames, keying MPPE first if authentication gave keys.
    fn send(&mut self, keys: Option<MppeKeys>, ppp: &[u8]) -> io::Result<()> {
        if !self.link.has_mppe_keys()
            && let Some(keys) = keys
        {
            self.link.set_mppe_keys(keys);
        }
        self.link.send(ppp)
    }
}

/// The MPPE start keys of a link, once MS-CHAP gave them.
pub(crate) fn keys_of(control: Option<&ppp_link::LinkControl>) -> Option<MppeKeys> {
    let material = control?.mschap_key_material()?;
    let (send, recv) = material.start_keys();
    Some(MppeKeys::new(send, recv))
}

/// What was configured on a unit's interface, to take down again.
#[derive(Debug, Default)]
pub(crate) struct Configured {
    ipv4: Option<(Ipv4Addr, Ipv4Addr)>,
    ipv6: Option<(Ipv6Addr, Ipv6Addr)>,
    default_route: Option<u32>,
    resolv_conf: Option<PathBuf>,
}

impl Configured {
    /// IPCP is up: MTU, up, the point-to-point address, optionally the default route and
    /// the DNS file.
    pub(crate) fn ip_up(
        &mut self,
        name: &str,
        (local, peer): (Ipv4Addr, Ipv4Addr),
        mtu: u16,
        default_route: Option<u32>,
        resolv_conf: Option<(&std::path::Path, &[Ipv4Addr])>,
    ) -> io::Result<()> {
        netconfig::set_mtu(name, u32::from(mtu))?;
        netconfig::disable_ipv6_address_generation(name).ok();
        netconfig::set_up(name)?;
        if self.ipv4 != Some((local, peer)) {
            self.ip_down(name);
            netconfig::add_point_to_point_ipv4(name, local, peer)?;
            self.ipv4 = Some((local, peer));
        }
        if let Some(metric) = default_route
            && self.default_route.is_none()
        {
            netconfig::add_default_route(name, IpFamily::V4, metric)?;
            self.default_route = Some(metric);
        }
        if let Some((path, dns)) = resolv_conf
            && !dns.is_empty()
        {
            let servers: Vec<IpAddr> = dns.iter().copied().map(IpAddr::V4).collect();
            netconfig::write_resolv_conf(path, &servers)?;
            self.resolv_conf = Some(path.to_owned());
        }
        info!("{name}: local IP address {local}, remote IP address {peer}, mtu {mtu}");
        Ok(())
    }

    pub(crate) fn ip_down(&mut self, name: &str) {
        if let Some(metric) = self.default_route.take() {
            netconfig::remove_default_route(name, IpFamily::V4, metric).ok();
        }
        if let Some(path) = self.resolv_conf.take() {
            netconfig::remove_resolv_conf(&path).ok();
        }
        if let Some((local, peer)) = self.ipv4.take() {
            netconfig::remove_point_to_point_ipv4(name, local, peer).ok();
        }
    }

    pub(crate) fn ipv6_up(&mut self, name: &str, local: Ipv6Addr, peer: Ipv6Addr) {
        if self.ipv6 == Some((local, peer)) {
            return;
        }
        self.ipv6_down(name);
        netconfig::disable_ipv6_address_generation(name).ok();
        netconfig::set_up(name).ok();
        match netconfig::add_ipv6_link_local(name, local, peer) {
            Ok(()) => {
                info!("{name}: local  LL address {local}, remote LL address {peer}");
                self.ipv6 = Some((local, peer));
            }
            Err(error) => warn!("{name}: adding the IPv6 link-local addresses failed: {error}"),
        }
    }

    pub(crate) fn ipv6_down(&mut self, name: &str) {
        if let Some((local, peer)) = self.ipv6.take() {
            netconfig::remove_ipv6_link_local(name, local, peer).ok();
        }
    }

    /// Undoes everything (the unit's interface goes with the unit).
    pub(crate) fn tear_down(&mut self, name: &str) {
        self.ip_down(name);
        self.ipv6_down(name);
    }
}

/// Sets an interface's MTU again after the link's changed (MPPE came or went).
pub(crate) fn follow_mtu(name: &str, mtu: u16) {
    match netconfig::set_mtu(name, u32::from(mtu)) {
        Ok(()) => info!("{name}: mtu {mtu}"),
        Err(error) => warn!("{name}: setting mtu {mtu} failed: {error}"),
    }
}

/// The client's session in the kernel and what is configured on its interface.
struct ClientKernel {
    session: KernelSession,
    session_id: u16,
    ac_mac: MacAddr,
    configured: Configured,
}

impl ClientKernel {
    fn name(&self) -> &str {
        self.session.link.interface()
    }

    fn tear_down(mut self) {
        let name = self.name().to_owned();
        self.configured.tear_down(&name);
        debug!("{name}: removed");
    }
}

/// [`crate::pppoe::run_client`] on the kernel data path; `support` is what
/// [`KernelSupport::probe`] found (it decides CCP). Without `options.no_tun` the session's
/// interface is the unit's `pppN` (named `options.tun_name` if given); with it the kernel
/// still carries the session but no address is configured.
///
/// # Errors
///
/// Binding the packet socket, creating the capture file, or receiving from the socket fails.
/// Failures setting up the session in the kernel end the session (and are retried like any
/// other end).
pub async fn run_client(
    options: ClientOptions,
    support: KernelSupport,
    status: SharedClientSnapshot,
    shutdown: impl Future<Output = ()>,
) -> io::Result<ClientExit> {
    let socket = PacketSocket::bind(&options.interface)?;
    socket.keep_discovery_only()?;
    let mac = options.mac.unwrap_or(MacAddr(socket.mac()));
    let mut capture = options
        .pcap
        .as_deref()
        .map(EthernetCapture::create)
        .transpose()?;
    let link_config = support.link_config(&options.link);
    let ccp = support.mppe || support.deflate;
    tokio::pin!(shutdown);
    let mut backoff = options.reconnect.map(|b| b.initial);
    let mut frame_buf = vec![0u8; BUFFER_LEN];
    let mut kernel_buf = vec![0u8; BUFFER_LEN];
    let mut sessions_started = 0;
    let random = Random::from_os().map_err(io::Error::other)?;
    loop {
        let started_before = sessions_started;
        let mut client = PppoeClient::new(
            options.discovery.clone(),
            link_config.clone(),
            mac,
            random.clone(),
        );
        let mut kernel: Option<ClientKernel> = None;
        let mut closing_since: Option<Instant> = None;
        let mut shutting_down = false;
        client.open(now());
        update_client_status(&status, &client, None, sessions_started);
        let mut socket_error = None;
        let reason = loop {
            let frames: Vec<Vec<u8>> = std::iter::from_fn(|| client.poll_transmit()).collect();
            let events: Vec<PppoeClientEvent> =
                std::iter::from_fn(|| client.poll_event()).collect();
            // A new session goes into the kernel before its first frame is routed.
            for event in &events {
                if let PppoeClientEvent::Discovery(DiscoveryEvent::SessionUp {
                    session_id,
                    ac_mac,
                    ac_name,
                    service_name,
                    ..
                }) = event
                {
                    info!(
                        "PPPoE session {session_id:#06x} with {ac_name} ({ac_mac}), service \"{service_name}\""
                    );
                    let name = options.tun_name.as_deref().filter(|_| !options.no_tun);
                    match KernelSession::start(&options.interface, *session_id, *ac_mac, name, ccp)
                    {
                        Ok(session) => {
                            info!("session in the kernel on {}", session.link.interface());
                            kernel = Some(ClientKernel {
                                session,
                                session_id: *session_id,
                                ac_mac: *ac_mac,
                                configured: Configured::default(),
                            });
                        }
                        Err(error) => {
                            warn!("putting the session into the kernel failed: {error}");
                            client
                                .close(now(), CloseReason::Other("kernel data path failed".into()));
                        }
                    }
                }
            }
            for frame in frames {
                match session_ppp_frame(&frame) {
                    Some((session_id, ppp)) => {
                        record(&mut capture, &frame);
                        let keys = keys_of(client.link().map(Link::control));
                        match kernel.as_mut() {
                            Some(k) if k.session_id == session_id => {
                                if let Err(error) = k.session.send(keys, ppp) {
                                    warn!("{}: {error}", k.name());
                                    client.close(
                                        now(),
                                        CloseReason::Other("kernel data path failed".into()),
                                    );
                                }
                            }
                            _ => debug!("session frame dropped: no session in the kernel"),
                        }
                    }
                    None => send_frame(&socket, &mut capture, &frame).await,
                }
            }
            let mut down = None;
            for event in events {
                match event {
                    PppoeClientEvent::Link(event) => {
                        if let Some(k) = kernel.as_mut()
                            && let Err(error) = k.session.link.apply(&event)
                        {
                            warn!("{}: {error}", k.name());
                            client
                                .close(now(), CloseReason::Other("kernel data path failed".into()));
                        }
                        let Some(k) = kernel.as_mut() else { continue };
                        let name = k.name().to_owned();
                        match event {
                            LinkEvent::IpUp { local, peer, dns } => {
                                sessions_started += 1;
                                lock(&status).connected_since = Some(SystemTime::now());
                                if options.no_tun {
                                    info!(
                                        "local IP address {local}, remote IP address {peer} (interface not configured)"
                                    );
                                    continue;
                                }
                                let mtu = client.link().and_then(Link::mtu).unwrap_or(1492);
                                let resolv = options
                                    .resolv_conf
                                    .as_deref()
                                    .map(|path| (path, dns.as_slice()));
                                if let Err(error) = k.configured.ip_up(
                                    &name,
                                    (local, peer),
                                    mtu,
                                    options.default_route_metric,
                                    resolv,
                                ) {
                                    warn!("configuring {name} failed: {error}");
                                    client.close(
                                        now(),
                                        CloseReason::Other("interface configuration failed".into()),
                                    );
                                }
                            }
                            LinkEvent::IpDown => k.configured.ip_down(&name),
                            LinkEvent::Ipv6Up { local, peer } if !options.no_tun => {
                                k.configured.ipv6_up(&name, local, peer);
                            }
                            LinkEvent::Ipv6Down => k.configured.ipv6_down(&name),
                            LinkEvent::CcpUp(_) | LinkEvent::CcpDown
                                if k.configured.ipv4.is_some() =>
                            {
                                if let Some(mtu) = client.link().and_then(Link::mtu) {
                                    follow_mtu(&name, mtu);
                                }
                            }
                            _ => {}
                        }
                    }
                    PppoeClientEvent::Down { reason } => down = Some(reason),
                    _ => {}
                }
            }
            update_client_status(
                &status,
                &client,
                kernel.as_ref().map(ClientKernel::name),
                sessions_started,
            );
            if let Some(reason) = down {
                for frame in std::iter::from_fn(|| client.poll_transmit()).collect::<Vec<_>>() {
                    if session_ppp_frame(&frame).is_none() {
                        send_frame(&socket, &mut capture, &frame).await;
                    }
                }
                break Some(reason);
            }
            let deadline = match closing_since {
                Some(since) => Some(
                    client
                        .poll_timeout()
                        .map_or(since + CLOSE_GRACE, |t| t.min(since + CLOSE_GRACE)),
                ),
                None => client.poll_timeout(),
            };
            let kernel_input = async {
                match kernel.as_mut().filter(|k| !k.session.link.is_closed()) {
                    Some(k) => {
                        let input = k.session.link.recv(&mut kernel_buf).await;
                        (k.session_id, k.ac_mac, input)
                    }
                    None => std::future::pending().await,
                }
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
                    let frame = &frame_buf[..len];
                    record(&mut capture, frame);
                    client.handle_input(now(), frame);
                }
                (session_id, ac_mac, input) = kernel_input => match input {
                    Ok(KernelInput::Frame(n)) => {
                        if let Some(frame) =
                            wrap_session_frame(&kernel_buf[..n], mac, ac_mac, session_id)
                        {
                            record(&mut capture, &frame);
                            client.handle_input(now(), &frame);
                        }
                    }
                    Ok(KernelInput::ChannelClosed) => {
                        // The kernel unbound the session (a PADT, the interface went down):
                        // discovery sees the PADT and ends the session.
                        debug!("the kernel closed the session's channel");
                        if closing_since.is_none() {
                            closing_since = Some(now());
                            client.close(now(), CloseReason::Other("PPPoE session ended".into()));
                        }
                    }
                    Err(error) => {
                        warn!("reading the kernel's frames failed: {error}");
                        client.close(now(), CloseReason::Other("kernel data path failed".into()));
                    }
                },
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
        if let Some(k) = kernel.take() {
            k.tear_down();
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

/// A session of the access concentrator in the kernel.
struct ServerKernel {
    session: KernelSession,
    client_mac: MacAddr,
    reader: JoinHandle<()>,
    configured: Configured,
    user: Option<String>,
    started: SystemTime,
    /// Enforcement and accounting of its unit, from IPCP up.
    aaa: UnitAaa,
}

impl ServerKernel {
    fn name(&self) -> &str {
        self.session.link.interface()
    }

    /// Reads the kernel's counters and idle time into the unit's session, if it has one.
    fn observe(&mut self, now: Instant, rtnl: Option<&mut RouteSocket>) {
        if let Some((_, nas)) = self.aaa.nas.as_mut() {
            self.session.link.observe(now, rtnl, nas);
        }
    }

    fn tear_down(mut self) {
        self.reader.abort();
        let name = self.name().to_owned();
        self.configured.tear_down(&name);
        debug!("{name}: removed");
    }
}

/// A session's own unit is its only one (no Multilink on this path).
impl UnitsAaa for HashMap<u16, ServerKernel> {
    fn unit_aaa(&mut self, unit: UnitId) -> Option<&mut UnitAaa> {
        match unit {
            UnitId::Link(id) => self.get_mut(&id).map(|k| &mut k.aaa),
            UnitId::Bundle(_) => None,
        }
    }
}

/// The unit a session's ending leaves behind: its Stop record with the kernel's last counters
/// (the reason known, or kept until it is), before the unit is removed.
fn session_gone(
    nas: &mut ServerAaa,
    rtnl: Option<&mut RouteSocket>,
    id: u16,
    kernel: &mut ServerKernel,
) {
    kernel.observe(now(), rtnl);
    nas.unit_down(UnitId::Link(id), &mut kernel.aaa);
}

/// A policy's decisions with their CCP as the kernel can run it
/// ([`KernelSupport::kernel_ccp`]).
struct KernelPolicy {
    policy: Box<dyn SessionPolicy>,
    support: KernelSupport,
}

impl KernelPolicy {
    fn kernel(&self, mut decision: SessionDecision) -> SessionDecision {
        decision.ccp = decision.ccp.map(|ccp| self.support.kernel_ccp(ccp));
        decision
    }
}

impl SessionPolicy for KernelPolicy {
    fn decide(&mut self, request: &SessionRequest, entry: Option<SecretEntry>) -> SessionDecision {
        let decision = self.policy.decide(request, entry);
        self.kernel(decision)
    }

    fn decide_radius(
        &mut self,
        request: &SessionRequest,
        authorization: &Authorization,
    ) -> SessionDecision {
        let decision = self.policy.decide_radius(request, authorization);
        self.kernel(decision)
    }
}

/// What a session's reader task passes to the loop.
enum FromKernel {
    Frame(Vec<u8>),
    Closed,
}

/// Reads a session's control frames from the kernel into the loop's channel.
async fn read_kernel(
    mut reader: super::KernelReader,
    session_id: u16,
    out: mpsc::Sender<(u16, FromKernel)>,
) {
    let mut buf = vec![0u8; BUFFER_LEN];
    loop {
        let item = match reader.recv(&mut buf).await {
            Ok(KernelInput::Frame(n)) => FromKernel::Frame(buf[..n].to_vec()),
            Ok(KernelInput::ChannelClosed) => FromKernel::Closed,
            Err(error) => {
                debug!("session {session_id:#06x}: reading the kernel failed: {error}");
                FromKernel::Closed
            }
        };
        let last = matches!(item, FromKernel::Closed);
        if out.send((session_id, item)).await.is_err() || last {
            return;
        }
    }
}

/// [`crate::pppoe::run_server`] on the kernel data path: every session gets a PPPoE socket, a
/// channel and a unit (`pppN`, numbered by the kernel; `options.tun_prefix` is not used);
/// `support` is what [`KernelSupport::probe`] found (it decides CCP). `options.aaa` applies as
/// on the TUN path (RADIUS, `only-one`, timeouts, accounting with the kernel's counters,
/// dynamic authorization), except rate limits, which the kernel cannot enforce here: a
/// session granted one is refused, a CoA setting one NAKed (both logged).
///
/// # Errors
///
/// Binding the packet socket, creating the capture file, or receiving from the socket fails.
pub async fn run_server(
    options: ServerOptions,
    support: KernelSupport,
    secrets: Arc<dyn SecretsBackend>,
    policy: Box<dyn SessionPolicy>,
    status: SharedServerSnapshot,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    // Discovery only (session frames belong to the kernel), PADIs apart, as on the TUN path.
    let (socket, mut padis) = bind_discovery(&options.interface, 0, 1)?;
    let mac = MacAddr(socket.mac());
    let mut capture = options
        .pcap
        .as_deref()
        .map(EthernetCapture::create)
        .transpose()?;
    if options.link.lcp.mrru.is_some() {
        warn!("kernel data path: Multilink (mrru) is not offered");
    }
    if options.clamp_mss {
        info!(
            "kernel data path: clamp-mss is left to the firewall (its TCPMSS target), as with pppd"
        );
    }
    if options.workers > 1 {
        info!(
            "kernel data path: one thread instead of {} workers (the kernel carries the datagrams)",
            options.workers
        );
    }
    let aaa = match options.aaa.clone() {
        Some(aaa) => aaa,
        None => Aaa::new(AaaOptions::default())?,
    };
    let mut link_config = support.link_config(&options.link);
    if aaa.uses_radius() {
        link_config.auth.authenticator = link_config.auth.authenticator.clone().external();
    }
    let mut policy = KernelPolicy {
        policy,
        support: support.clone(),
    };
    let random = Random::from_os().map_err(io::Error::other)?;
    let mut server = PppoeServer::new(options.ac.clone(), link_config, mac, random);
    info!(
        "access concentrator \"{}\" on {} ({mac}), services \"{}\", kernel data path",
        options.ac.ac_name,
        options.interface,
        options.ac.services.join("\", \"")
    );
    // The sessions' counters, for accounting (without it they stay at zero).
    let mut rtnl = match RouteSocket::open() {
        Ok(rtnl) => Some(rtnl),
        Err(error) => {
            warn!("no rtnetlink socket: the sessions' accounting counters stay at zero: {error}");
            None
        }
    };
    let mut nas = ServerAaa::new(aaa, &options.interface, false);
    let (lookup_tx, mut lookup_rx) =
        mpsc::channel::<(SessionRequest, Option<SecretEntry>)>(LOOKUP_QUEUE);
    let (verify_tx, mut verify_rx) = mpsc::channel::<(SessionRequest, Verified)>(LOOKUP_QUEUE);
    let (kernel_tx, mut kernel_rx) = mpsc::channel::<(u16, FromKernel)>(KERNEL_QUEUE);
    let mut sessions: HashMap<u16, ServerKernel> = HashMap::new();
    // The `sessions` listing, one row refreshed per session an event touched (never rebuilt
    // from every session), as on the TUN path.
    let mut board = StatusBoard::new(Arc::clone(&status));
    let mut touched: Vec<u16> = Vec::new();
    let mut frame_buf = vec![0u8; BUFFER_LEN];
    let mut padi_report = PadiReport::default();
    tokio::pin!(shutdown);
    let mut closing_since: Option<Instant> = None;
    let mut socket_error = None;
    loop {
        let frames: Vec<Vec<u8>> = std::iter::from_fn(|| server.poll_transmit()).collect();
        let events: Vec<PppoeServerEvent> = std::iter::from_fn(|| server.poll_event()).collect();
        for event in &events {
            touched_sessions(&server, event, &mut touched);
        }
        for event in &events {
            if let PppoeServerEvent::Discovery(pppoe_discovery::AcEvent::SessionUp {
                session_id,
                client_mac,
                service_name,
                ..
            }) = event
            {
                info!("session {session_id:#06x} from {client_mac} for service \"{service_name}\"");
                // A profile may turn CCP on after authentication: the unit watches CCP
                // whenever the kernel has a compressor.
                let ccp = support.mppe || support.deflate;
                match KernelSession::start(&options.interface, *session_id, *client_mac, None, ccp)
                {
                    Ok(session) => {
                        let reader = tokio::spawn(read_kernel(
                            session.link.reader(),
                            *session_id,
                            kernel_tx.clone(),
                        ));
                        debug!(
                            "session {session_id:#06x} in the kernel on {}",
                            session.link.interface()
                        );
                        sessions.insert(
                            *session_id,
                            ServerKernel {
                                session,
                                client_mac: *client_mac,
                                reader,
                                configured: Configured::default(),
                                user: None,
                                started: SystemTime::now(),
                                aaa: UnitAaa::default(),
                            },
                        );
                    }
                    Err(error) => {
                        warn!(
                            "session {session_id:#06x}: putting it into the kernel failed: {error}"
                        );
                        server.close_session(
                            now(),
                            *session_id,
                            CloseReason::Other("kernel data path failed".into()),
                        );
                    }
                }
            }
        }
        for frame in frames {
            let Some((session_id, ppp)) = session_ppp_frame(&frame) else {
                send_frame(&socket, &mut capture, &frame).await;
                continue;
            };
            record(&mut capture, &frame);
            match sessions.get_mut(&session_id) {
                Some(kernel) => {
                    let keys = keys_of(server.session_link(session_id));
                    if let Err(error) = kernel.session.send(keys, ppp) {
                        warn!("session {session_id:#06x}: {error}");
                        server.close_session(
                            now(),
                            session_id,
                            CloseReason::Other("kernel data path failed".into()),
                        );
                    }
                }
                None => debug!("session {session_id:#06x}: frame dropped, not in the kernel"),
            }
        }
        for event in events {
            match event {
                PppoeServerEvent::Link {
                    session_id,
                    event: LinkEvent::SecretNeeded(request),
                } => lookup_secret(&server, session_id, request, &secrets, &lookup_tx),
                PppoeServerEvent::Link {
                    session_id,
                    event: LinkEvent::VerifyNeeded(request),
                } => nas.verify_needed(&server, session_id, request, &secrets, &verify_tx),
                PppoeServerEvent::Link { session_id, event } => {
                    if let LinkEvent::Authenticated { peer_name } = &event {
                        if let Some(kernel) = sessions.get_mut(&session_id) {
                            kernel.user.clone_from(peer_name);
                        }
                        nas.authenticated(session_id);
                    }
                    apply(&mut server, &mut sessions, session_id, &event);
                }
                PppoeServerEvent::Network {
                    unit: UnitId::Link(session_id),
                    event,
                } => {
                    apply(&mut server, &mut sessions, session_id, &event);
                    let Some(kernel) = sessions.get_mut(&session_id) else {
                        continue;
                    };
                    let name = kernel.name().to_owned();
                    match event {
                        LinkEvent::IpUp { local, peer, .. } => {
                            info!(
                                "{name}: session {session_id:#06x} user \"{}\" up: local {local}, remote {peer}",
                                kernel.user.as_deref().unwrap_or_default()
                            );
                            nas.unit_up(&server, &mut kernel.aaa, UnitId::Link(session_id), peer);
                            if options.no_tun {
                                continue;
                            }
                            let mtu = server.mtu(UnitId::Link(session_id)).unwrap_or(1492);
                            if let Err(error) =
                                kernel
                                    .configured
                                    .ip_up(&name, (local, peer), mtu, None, None)
                            {
                                warn!("{name}: interface not configured: {error}");
                                server.close_session(
                                    now(),
                                    session_id,
                                    CloseReason::Other("interface configuration failed".into()),
                                );
                            }
                        }
                        LinkEvent::IpDown => kernel.configured.ip_down(&name),
                        LinkEvent::Ipv6Up { local, peer } if !options.no_tun => {
                            kernel.configured.ipv6_up(&name, local, peer);
                            let prefix = kernel
                                .aaa
                                .nas
                                .as_ref()
                                .and_then(|(_, n)| n.framed_ipv6_prefix());
                            if let Some((prefix, len)) = prefix {
                                route_prefix(&name, prefix, len);
                            }
                        }
                        LinkEvent::Ipv6Down => kernel.configured.ipv6_down(&name),
                        LinkEvent::CcpUp(_) | LinkEvent::CcpDown
                            if kernel.configured.ipv4.is_some() =>
                        {
                            if let Some(mtu) = server.mtu(UnitId::Link(session_id)) {
                                follow_mtu(&name, mtu);
                            }
                        }
                        _ => {}
                    }
                }
                PppoeServerEvent::UnitDown {
                    unit: UnitId::Link(session_id),
                } => {
                    // Before its session reported why it ended: the Stop waits for the reason.
                    if let Some(kernel) = sessions.get_mut(&session_id) {
                        session_gone(&mut nas, rtnl.as_mut(), session_id, kernel);
                    }
                }
                PppoeServerEvent::SessionDown {
                    session_id,
                    client_mac,
                    reason,
                } => {
                    let user = sessions
                        .get(&session_id)
                        .and_then(|k| k.user.clone())
                        .unwrap_or_default();
                    info!(
                        "session {session_id:#06x} from {client_mac} user \"{user}\" down: {reason}"
                    );
                    nas.session_down(&mut sessions, session_id, &reason);
                    if let Some(mut kernel) = sessions.remove(&session_id) {
                        // The unit goes with the session: its Stop now, with the last counters.
                        session_gone(&mut nas, rtnl.as_mut(), session_id, &mut kernel);
                        kernel.tear_down();
                    }
                }
                _ => {}
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for id in touched.drain(..) {
            match session_snapshot(&server, &sessions, id) {
                Some(snapshot) => board.put(snapshot),
                None => board.remove(id),
            }
        }
        if closing_since.is_some() && server.session_count() == 0 {
            for frame in std::iter::from_fn(|| server.poll_transmit()).collect::<Vec<_>>() {
                if session_ppp_frame(&frame).is_none() {
                    send_frame(&socket, &mut capture, &frame).await;
                }
            }
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
        tokio::select! {
            received = socket.recv(&mut frame_buf) => {
                let len = match received {
                    Ok(len) => len,
                    Err(error) => {
                        socket_error = Some(error);
                        break;
                    }
                };
                let frame = &frame_buf[..len];
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
            Some((session_id, input)) = kernel_rx.recv() => {
                let Some(kernel) = sessions.get(&session_id) else { continue };
                match input {
                    FromKernel::Frame(ppp) => {
                        if let Some(frame) =
                            wrap_session_frame(&ppp, mac, kernel.client_mac, session_id)
                        {
                            record(&mut capture, &frame);
                            server.handle_input(now(), &frame);
                        }
                    }
                    FromKernel::Closed => {
                        debug!("session {session_id:#06x}: the kernel closed its channel");
                    }
                }
            }
            Some((request, entry)) = lookup_rx.recv() => {
                answer_secret(&mut server, &mut policy, &mut nas, &request, entry);
            }
            Some((request, verified)) = verify_rx.recv() => {
                answer_verdict(&mut server, &mut policy, &mut nas, &request, verified);
            }
            Some(command) = nas.attached.recv() => {
                match command {
                    AaaCommand::Close { port, reason, done } => {
                        close_command(&mut server, port, reason, done);
                    }
                    AaaCommand::Change { port, change, done } => {
                        let id = u16::try_from(port).ok();
                        // An Idle-Timeout set now counts from the kernel's last traffic.
                        if let Some(kernel) = id.and_then(|id| sessions.get_mut(&id)) {
                            kernel.observe(now(), rtnl.as_mut());
                        }
                        let outcome = id
                            .ok_or(ErrorCause::SESSION_CONTEXT_NOT_FOUND)
                            .and_then(|id| nas.change(&server, &mut sessions, id, &change));
                        let _ = done.send(outcome);
                        touched.extend(id);
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
                    let UnitId::Link(session_id) = unit else { continue };
                    let Some(kernel) = sessions.get_mut(&session_id) else { continue };
                    // The timers and the Interim-Updates see what the kernel counted.
                    kernel.observe(now, rtnl.as_mut());
                    let Some((_, session)) = kernel.aaa.nas.as_mut() else { continue };
                    if let Some(reason) = nas.timers_due(unit, session, now) {
                        info!("{unit}: closing ({reason})");
                        server.close_unit(now, unit, reason);
                    }
                }
            }
            () = &mut shutdown, if closing_since.is_none() => {
                info!("access concentrator shutting down");
                closing_since = Some(now());
                server.close(now(), CloseReason::Shutdown);
            }
        }
    }
    for (session_id, mut kernel) in sessions.drain() {
        if kernel.aaa.nas.is_some() && kernel.aaa.end.is_none() {
            kernel.aaa.end = Some(SessionEnd::Link(DownReason::Closed(CloseReason::Shutdown)));
        }
        session_gone(&mut nas, rtnl.as_mut(), session_id, &mut kernel);
        kernel.tear_down();
    }
    nas.stop_all(TerminateCause::NAS_REBOOT);
    board.clear();
    match socket_error {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// Tells a session's kernel side about an event of its link; a failure closes the session.
fn apply(
    server: &mut PppoeServer,
    sessions: &mut HashMap<u16, ServerKernel>,
    session_id: u16,
    event: &LinkEvent,
) {
    let Some(kernel) = sessions.get_mut(&session_id) else {
        return;
    };
    if let Err(error) = kernel.session.link.apply(event) {
        warn!("session {session_id:#06x}: {error}");
        server.close_session(
            now(),
            session_id,
            CloseReason::Other("kernel data path failed".into()),
        );
    }
}

/// What `encoding` says for a network layer's CCP (as on the TUN path).
fn encoding(negotiated: Option<&ppp_ccp::CcpNegotiated>) -> String {
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

/// One session's row of the `sessions` listing; `None` once the session is gone.
fn session_snapshot(
    server: &PppoeServer,
    sessions: &HashMap<u16, ServerKernel>,
    id: u16,
) -> Option<SessionSnapshot> {
    let session = server.session(id)?;
    let kernel = sessions.get(&id);
    let link = server.session_link(id);
    let unit = server.unit(UnitId::Link(id));
    let negotiated = unit.and_then(|u| u.network().ipcp_negotiated());
    Some(SessionSnapshot {
        session_id: id,
        user: kernel
            .and_then(|k| k.user.clone())
            .or_else(|| link.and_then(|l| l.peer_name()).map(str::to_owned)),
        client_mac: session.client_mac(),
        service_name: server
            .access_concentrator()
            .session(id)
            .map(|r| r.service_name().to_owned())
            .unwrap_or_default(),
        address: negotiated.map(|n| n.peer),
        local_address: negotiated.map(|n| n.local),
        interface: kernel.map(|k| k.name().to_owned()),
        started: kernel.map_or(SystemTime::now(), |k| k.started),
        state: link.map_or_else(|| "dead".to_owned(), |l| l.phase().to_string()),
        encoding: encoding(unit.and_then(|u| u.ccp_negotiated())),
        bundle: None,
        rate_limit: None,
        acct_session_id: kernel
            .and_then(|k| k.aaa.nas.as_ref())
            .map(|(_, n)| n.account().acct_session_id.to_string()),
        ccp_resyncs: unit
            .and_then(|u| u.network().ccp())
            .map_or(0, ppp_ccp::CcpSession::renegotiations),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppp_auth::{AuthProtocol, SecretRequest};
    use ppp_ccp::{CcpConfig, Encryption};

    /// A policy that turns MPPE and Deflate on for everyone.
    struct Compressing;

    impl SessionPolicy for Compressing {
        fn decide(&mut self, _: &SessionRequest, entry: Option<SecretEntry>) -> SessionDecision {
            SessionDecision {
                entry,
                ccp: Some(Some(compressing())),
                ..SessionDecision::default()
            }
        }

        fn decide_radius(&mut self, _: &SessionRequest, _: &Authorization) -> SessionDecision {
            SessionDecision {
                ccp: Some(Some(compressing())),
                ..SessionDecision::default()
            }
        }
    }

    fn compressing() -> CcpConfig {
        CcpConfig {
            encryption: Encryption::Yes,
            compression: true,
            ..CcpConfig::default()
        }
    }

    /// The policy's CCP for a session, local or RADIUS, is cut to what the kernel runs.
    #[test]
    fn decisions_get_the_kernels_ccp() {
        let request = SessionRequest {
            session_id: 1,
            client_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            service_name: String::new(),
            secret: SecretRequest {
                client: "alice".into(),
                server: "ac".into(),
                method: AuthProtocol::Pap,
                token: ppp_auth::SecretToken(1),
            },
        };
        let support = KernelSupport {
            deflate: true,
            ..KernelSupport::default()
        };
        let mut policy = KernelPolicy {
            policy: Box::new(Compressing),
            support,
        };
        let local = policy.decide(&request, Some(SecretEntry::new("pw")));
        let radius = policy.decide_radius(&request, &Authorization::default());
        for decision in [local, radius] {
            let ccp = decision.ccp.flatten().expect("Deflate stays");
            assert_eq!(ccp.encryption, Encryption::No, "no ppp_mppe, no MPPE");
            assert!(ccp.compression);
        }
        policy.support.deflate = false;
        let local = policy.decide(&request, None);
        assert_eq!(local.ccp, Some(None), "nothing left: CCP off");
    }

    #[test]
    fn session_frames_unwrap_and_wrap() {
        let ppp = [0xC0, 0x21, 1, 1, 0, 4];
        let ac = MacAddr([2, 0, 0, 0, 0, 1]);
        let client = MacAddr([2, 0, 0, 0, 0, 2]);
        let frame = wrap_session_frame(&ppp, client, ac, 0x1234).expect("frame");
        assert_eq!(frame.len(), 20 + ppp.len());
        assert_eq!(session_ppp_frame(&frame), Some((0x1234, &ppp[..])));
        // Ethernet padding after the PPPoE payload is not part of the PPP frame.
        let mut padded = frame.clone();
        padded.resize(60, 0);
        assert_eq!(session_ppp_frame(&padded), Some((0x1234, &ppp[..])));
        // Discovery frames and runts are not session frames.
        let mut discovery = frame;
        discovery[13] = 0x63;
        assert_eq!(session_ppp_frame(&discovery), None);
        assert_eq!(session_ppp_frame(&[0; 19]), None);
    }
}
