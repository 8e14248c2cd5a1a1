//! The in-process demo: no hardware, no root, well under a second.
//!
//! A PPPoE client and an access concentrator run the whole stack against each other over a
//! simulated Ethernet segment (0.5 ms each way), on virtual time: PPPoE discovery (PADI, PADO,
//! PADR, PADS), LCP, MS-CHAPv2 against the AC's secrets, CCP with 128-bit MPPE, IPCP with an
//! address from the AC's pool and DNS, then ICMP pings both ways through the encrypted session,
//! then the client hangs up (LCP Terminate, PADT). It prints the session summary; `-v` shows
//! every packet pppd-style, `--pcap FILE` writes the Ethernet frames for Wireshark.

use std::io::BufWriter;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ppp_auth::SecretsTable;
use ppp_ccp::CcpConfig;
use ppp_frame::pcap::{LinkType, PcapWriter};
use ppp_ipcp::{AddressRange, Ipcp, IpcpConfig};
use ppp_link::auth::{AuthProtocol, AuthenticatorConfig, ClientCredentials};
use ppp_link::pppoe::{ClientStatus, PppoeClient, PppoeClientEvent, PppoeServer, PppoeServerEvent};
use ppp_link::{Datagram, LinkConfig, LinkEvent};
use ppp_sim::{Endpoint, Impairments, Pair};
use ppp_tokio::icmp;
use pppoe_discovery::{AcConfig, ClientConfig, MacAddr};

const AC_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DNS: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 53);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0x00, 0x5e, 0x00, 0x53, 0x01]);
const AC_MAC: MacAddr = MacAddr([0x02, 0x00, 0x5e, 0x00, 0x53, 0xac]);

/// Everything that crossed the segment, for `--pcap`.
type Tap = Vec<(Instant, Vec<u8>)>;

struct Client {
    inner: PppoeClient,
    start: Instant,
    address: Option<Ipv4Addr>,
    replies: u16,
    tap: Tap,
}

struct Server {
    inner: PppoeServer,
    start: Instant,
    secrets: SecretsTable,
    replies: u16,
    tap: Tap,
}

fn stamp(start: Instant, now: Instant) -> String {
    format!("{:7.1} ms", (now - start).as_secs_f64() * 1000.0)
}

impl Client {
    fn report(&mut self, now: Instant) {
        let t = stamp(self.start, now);
        while let Some(event) = self.inner.poll_event() {
            match event {
                PppoeClientEvent::Discovery(event) => println!("{t}  client: {event:?}"),
                PppoeClientEvent::Link(LinkEvent::Phase(phase)) => {
                    println!("{t}  client: phase {phase}")
                }
                PppoeClientEvent::Link(LinkEvent::Authenticated { .. }) => {
                    println!("{t}  client: authenticated")
                }
                PppoeClientEvent::Link(LinkEvent::CcpUp(n)) => {
                    println!("{t}  client: CCP up: {:?}", n.transmit)
                }
                PppoeClientEvent::Link(LinkEvent::IpUp { local, peer, dns }) => {
                    println!("{t}  client: local  IP address {local}");
                    println!("{t}  client: remote IP address {peer}");
                    println!(
                        "{t}  client: primary   DNS address {}",
                        dns.first().copied().unwrap_or(Ipv4Addr::UNSPECIFIED)
                    );
                    self.address = Some(local);
                }
                PppoeClientEvent::Down { reason } => println!("{t}  client: down: {reason}"),
                PppoeClientEvent::Link(_) | _ => {}
            }
        }
        while let Some(datagram) = self.inner.poll_datagram() {
            if let Datagram::Ipv4(packet) = datagram {
                let us = self.address.unwrap_or(Ipv4Addr::UNSPECIFIED);
                if let Some(reply) = icmp::echo_reply(&packet, us) {
                    println!("{t}  client: echo request from the AC, replying");
                    let _ = self.inner.send_ipv4(now, &reply);
                } else if let Some((from, _, seq)) = icmp::parse_echo_reply(&packet) {
                    self.replies += 1;
                    println!("{t}  client: echo reply from {from} seq={seq}");
                }
            }
        }
    }
}

impl Server {
    fn report(&mut self, now: Instant) {
        let t = stamp(self.start, now);
        while let Some(event) = self.inner.poll_event() {
            match event {
                PppoeServerEvent::Discovery(event) => println!("{t}      ac: {event:?}"),
                PppoeServerEvent::Link {
                    session_id,
                    event: LinkEvent::SecretNeeded(request),
                } => {
                    println!(
                        "{t}      ac: session {session_id:#06x}: looking up the secret of {:?}",
                        request.client
                    );
                    let entry = self.secrets.lookup_now(&request.client, &request.server);
                    self.inner.provide_secret(now, session_id, entry);
                }
                PppoeServerEvent::Link {
                    session_id,
                    event: LinkEvent::Authenticated { peer_name },
                } => {
                    println!(
                        "{t}      ac: session {session_id:#06x}: peer authenticated as {:?}",
                        peer_name.unwrap_or_default()
                    );
                }
                PppoeServerEvent::Link {
                    session_id,
                    event: LinkEvent::IpUp { local, peer, .. },
                } => {
                    println!("{t}      ac: session {session_id:#06x}: IPCP up, {local} <-> {peer}");
                    let ping = icmp::echo_request(local, peer, 0xac, 1, b"from the AC");
                    let _ = self.inner.send_ipv4(now, session_id, &ping);
                }
                PppoeServerEvent::SessionDown {
                    session_id, reason, ..
                } => {
                    println!("{t}      ac: session {session_id:#06x} down: {reason}");
                }
                _ => {}
            }
        }
        while let Some((session_id, datagram)) = self.inner.poll_datagram() {
            if let Datagram::Ipv4(packet) = datagram {
                if let Some(reply) = icmp::echo_reply(&packet, AC_ADDR) {
                    println!("{t}      ac: session {session_id:#06x}: echo request, replying");
                    let _ = self.inner.send_ipv4(now, session_id, &reply);
                } else if icmp::parse_echo_reply(&packet).is_some() {
                    self.replies += 1;
                    println!("{t}      ac: session {session_id:#06x}: echo reply");
                }
            }
        }
    }
}

impl Endpoint for Client {
    fn handle_input(&mut self, now: Instant, frame: &[u8]) {
        let _span = tracing::info_span!("client").entered();
        self.inner.handle_input(now, frame);
        self.report(now);
    }
    fn handle_timeout(&mut self, now: Instant) {
        let _span = tracing::info_span!("client").entered();
        self.inner.handle_timeout(now);
        self.report(now);
    }
    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let frame = self.inner.poll_transmit()?;
        self.tap.push((Instant::now(), frame.clone()));
        Some(frame)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }
}

impl Endpoint for Server {
    fn handle_input(&mut self, now: Instant, frame: &[u8]) {
        let _span = tracing::info_span!("ac").entered();
        self.inner.handle_input(now, frame);
        self.report(now);
    }
    fn handle_timeout(&mut self, now: Instant) {
        let _span = tracing::info_span!("ac").entered();
        self.inner.handle_timeout(now);
        self.report(now);
    }
    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let frame = self.inner.poll_transmit()?;
        self.tap.push((Instant::now(), frame.clone()));
        Some(frame)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut pcap_path = None;
    let mut verbose = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--pcap" => pcap_path = Some(args.next().ok_or("--pcap needs a file name")?),
            "-v" | "--verbose" => verbose = true,
            other => {
                return Err(
                    format!("unknown argument {other:?} (usage: demo [-v] [--pcap FILE])").into(),
                );
            }
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(if verbose { "debug" } else { "warn" })
        .without_time()
        .with_target(false)
        .init();
    let wall_start = Instant::now();

    // The client: pppd's `user alice` with MS-CHAPv2 and required 128-bit MPPE.
    let mut client_link = LinkConfig {
        seed: 0x5eed_c11e,
        ..LinkConfig::pppoe()
    };
    client_link.lcp.allow = vec![AuthProtocol::MsChapV2, AuthProtocol::ChapMd5];
    client_link.auth.credentials = Some(ClientCredentials::password(
        "alice",
        "correct horse battery staple",
    ));
    client_link.ccp = Some(CcpConfig::require_mppe_128());
    // The AC: requires MS-CHAPv2, hands out addresses from a pool and a DNS server.
    let mut ac_link = LinkConfig {
        seed: 0x5eed_00ac,
        ..LinkConfig::pppoe()
    };
    ac_link.lcp.allow.clear();
    ac_link.lcp.require = vec![AuthProtocol::MsChapV2];
    ac_link.auth.authenticator = AuthenticatorConfig::new("demo-ac");
    ac_link.ccp = Some(CcpConfig::require_mppe_128());
    let ac_config = AcConfig {
        ac_name: "demo-ac".into(),
        services: vec!["internet".into()],
        ..AcConfig::default()
    };

    let line = Impairments::delay(Duration::from_micros(500));
    let start = Instant::now();
    let client = PppoeClient::new(
        ClientConfig {
            service_name: "internet".into(),
            ..ClientConfig::default()
        },
        client_link,
        CLIENT_MAC,
    );
    let mut server = PppoeServer::new(ac_config, ac_link, AC_MAC, start);
    let pool = AddressRange::new(Ipv4Addr::new(192, 0, 2, 100), Ipv4Addr::new(192, 0, 2, 199));
    server.set_ipcp_factory(Box::new(move |_| {
        Ipcp::with_address_pool(IpcpConfig::server(AC_ADDR, [Some(DNS), None]), pool.clone())
    }));
    let secrets = SecretsTable::parse_pppd(
        "# client  server  secret\nalice  demo-ac  \"correct horse battery staple\"\n",
    )?;
    let mut pair = Pair::new_at(
        start,
        Client {
            inner: client,
            start,
            address: None,
            replies: 0,
            tap: Vec::new(),
        },
        Server {
            inner: server,
            start,
            secrets,
            replies: 0,
            tap: Vec::new(),
        },
        line.clone(),
        line,
        7,
    );

    println!(
        "PPPoE client {CLIENT_MAC} and access concentrator {AC_MAC} on a simulated segment, 0.5 ms each way\n"
    );
    {
        let _span = tracing::info_span!("client").entered();
        pair.a.inner.start(start);
    }
    pair.a.report(start);
    let up = pair.run_until(Duration::from_secs(10), |c, _| {
        c.inner.status() == &ClientStatus::Connected
    });
    if !up {
        return Err(format!("the session did not come up: {}", pair.a.inner.status()).into());
    }
    let connected_at = pair.elapsed();
    let now = pair.now();
    let address = pair.a.address.ok_or("no address")?;
    for seq in 1..=3 {
        pair.a.inner.send_ipv4(
            now,
            &icmp::echo_request(address, AC_ADDR, 0xc1, seq, b"from the client"),
        )?;
    }
    pair.run_until(Duration::from_secs(10), |c, s| {
        c.replies == 3 && s.replies == 1
    });
    let session = pair.a.inner.session().ok_or("no session")?.clone();
    let link = pair.a.inner.link().ok_or("no link")?;
    let lcp = link.lcp_negotiated().ok_or("LCP not open")?.clone();
    let encoding = ppp_tokio::pppoe::link_encoding(link);
    let mtu = link.mtu().unwrap_or(0);
    let ip = link.ipcp_negotiated().copied().ok_or("IPCP not open")?;
    let now = pair.now();
    pair.a.inner.close(now, "demo finished");
    pair.a.report(now);
    pair.run_until(Duration::from_secs(10), |c, s| {
        matches!(c.inner.status(), ClientStatus::Disconnected(_)) && s.inner.sessions().count() == 0
    });
    let (client_replies, ac_replies) = (pair.a.replies, pair.b.replies);

    println!("\nsession summary (monitor):");
    println!("          status: {}", pair.a.inner.status());
    println!("         ac-name: {}", session.ac_name);
    println!("          ac-mac: {}", session.ac_mac);
    println!("    service-name: {}", session.service_name);
    println!("      session-id: {:#06x}", session.session_id);
    println!("   local-address: {}", ip.local);
    println!("  remote-address: {}", ip.peer);
    println!(
        "      dns-server: {}",
        ip.dns[0].map_or("-".into(), |d| d.to_string())
    );
    println!("             mtu: {mtu}");
    println!("             mru: {}", lcp.our_mru);
    println!(
        "  authentication: {:?}",
        lcp.auth_peer_requires.ok_or("no auth")?
    );
    println!("        encoding: {encoding}");
    println!(
        "           pings: {client_replies}/3 answered by the AC, {ac_replies}/1 answered by the client"
    );
    println!(
        "      connected after {:.1} ms of virtual time; whole run {:.1} ms of wall time",
        connected_at.as_secs_f64() * 1000.0,
        wall_start.elapsed().as_secs_f64() * 1000.0
    );
    if client_replies != 3 || ac_replies != 1 || pair.b.inner.sessions().count() != 0 {
        return Err("the session did not complete".into());
    }

    if let Some(path) = pcap_path {
        let mut frames: Vec<(Instant, Vec<u8>)> =
            pair.a.tap.drain(..).chain(pair.b.tap.drain(..)).collect();
        frames.sort_by_key(|(at, _)| *at);
        let mut pcap = PcapWriter::new(
            BufWriter::new(std::fs::File::create(&path)?),
            LinkType::Ethernet,
        )?;
        let base = SystemTime::now().duration_since(UNIX_EPOCH)?;
        for (i, (_, frame)) in frames.iter().enumerate() {
            pcap.write_packet(base + Duration::from_micros(i as u64 * 100), frame)?;
        }
        pcap.flush()?;
        println!("wrote {} Ethernet frames to {path}", frames.len());
    }
    Ok(())
}
