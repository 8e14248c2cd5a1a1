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
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ppp_auth::SecretsTable;
use ppp_ccp::CcpConfig;
use ppp_frame::pcap::{LinkType, PcapWriter};
use ppp_ipcp::{AddressRange, Ipcp, IpcpConfig};
use ppp_link::auth::{AuthProtocol, AuthenticatorConfig, ClientCredentials};
use ppp_link::pppoe::{
    PppoeClient, PppoeClientEvent, PppoeClientState, PppoeServer, PppoeServerEvent,
};
use ppp_link::{CloseReason, Datagram, LinkConfig, LinkEvent, Random};
use ppp_sim::{Impairments, Pair};
use ppp_tokio::icmp;
use pppoe_discovery::{AcConfig, AcEvent, ClientConfig, DiscoveryEvent, MacAddr};

const AC_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DNS: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 53);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0x00, 0x5e, 0x00, 0x53, 0x01]);
const AC_MAC: MacAddr = MacAddr([0x02, 0x00, 0x5e, 0x00, 0x53, 0xac]);

fn stamp(start: Instant, now: Instant) -> String {
    format!("{:7.1} ms", (now - start).as_secs_f64() * 1000.0)
}

type Segment = Pair<PppoeClient, PppoeServer>;

/// Runs the segment, printing what each side reports and answering pings (the machines go into
/// the harness as they are: the demo only reacts to their events and datagrams).
struct Demo {
    start: Instant,
    printed: (usize, usize),
    address: Option<Ipv4Addr>,
    /// Echo replies the client and the AC received.
    replies: (u16, u16),
}

impl Demo {
    /// Steps until `done` holds; false if `limit` of virtual time passed first.
    fn run(
        &mut self,
        pair: &mut Segment,
        limit: Duration,
        done: impl Fn(&Segment, &Demo) -> bool,
    ) -> bool {
        let until = pair.elapsed() + limit;
        loop {
            self.react(pair);
            if done(pair, self) {
                return true;
            }
            if pair.elapsed() > until || !pair.step() {
                return done(pair, self);
            }
        }
    }

    fn react(&mut self, pair: &mut Segment) {
        let now = pair.now();
        let t = stamp(self.start, now);
        for event in &pair.a_events[self.printed.0..] {
            match event {
                PppoeClientEvent::Discovery(event) => {
                    println!("{t}  client: {}", describe_discovery(event))
                }
                PppoeClientEvent::Link(LinkEvent::Phase(phase)) => {
                    println!("{t}  client: phase {phase}")
                }
                PppoeClientEvent::Link(LinkEvent::Authenticated { .. }) => {
                    println!("{t}  client: authenticated")
                }
                PppoeClientEvent::Link(LinkEvent::CcpUp(n)) => println!("{t}  client: CCP up: {n}"),
                PppoeClientEvent::Link(LinkEvent::IpUp { local, peer, dns }) => {
                    println!("{t}  client: local  IP address {local}");
                    println!("{t}  client: remote IP address {peer}");
                    if let Some(dns) = dns.first() {
                        println!("{t}  client: primary   DNS address {dns}");
                    }
                    self.address = Some(*local);
                }
                PppoeClientEvent::Down { reason } => println!("{t}  client: down: {reason}"),
                _ => {}
            }
        }
        self.printed.0 = pair.a_events.len();
        let mut pings = Vec::new();
        for event in &pair.b_events[self.printed.1..] {
            match event {
                PppoeServerEvent::Discovery(AcEvent::SessionUp {
                    session_id,
                    client_mac,
                    service_name,
                    ..
                }) => {
                    println!(
                        "{t}      ac: session {session_id:#06x} for {client_mac}, service \"{service_name}\""
                    );
                }
                PppoeServerEvent::Link {
                    session_id,
                    event: LinkEvent::Authenticated { peer_name },
                } => {
                    println!(
                        "{t}      ac: session {session_id:#06x}: peer authenticated as \"{}\"",
                        peer_name.as_deref().unwrap_or("")
                    );
                }
                PppoeServerEvent::Network {
                    unit,
                    event: LinkEvent::IpUp { local, peer, .. },
                } => {
                    println!("{t}      ac: {unit}: IPCP up, {local} <-> {peer}");
                    pings.push((
                        *unit,
                        icmp::echo_request(*local, *peer, 0xac, 1, b"from the AC"),
                    ));
                }
                PppoeServerEvent::SessionDown {
                    session_id, reason, ..
                } => {
                    println!("{t}      ac: session {session_id:#06x} down: {reason}");
                }
                _ => {}
            }
        }
        self.printed.1 = pair.b_events.len();
        for (unit, ping) in pings {
            let _ = pair.b.send_ipv4(now, unit, &ping);
        }
        while let Some(Datagram::Ipv4(packet)) = pair.a.poll_datagram() {
            let us = self.address.unwrap_or(Ipv4Addr::UNSPECIFIED);
            if let Some(reply) = icmp::echo_reply(&packet, us) {
                println!("{t}  client: echo request from the AC, replying");
                let _ = pair.a.send_ipv4(now, &reply);
            } else if let Some((from, _, seq)) = icmp::parse_echo_reply(&packet) {
                self.replies.0 += 1;
                println!("{t}  client: echo reply from {from} seq={seq}");
            }
        }
        while let Some((unit, Datagram::Ipv4(packet))) = pair.b.poll_datagram() {
            if let Some(reply) = icmp::echo_reply(&packet, AC_ADDR) {
                println!("{t}      ac: {unit}: echo request, replying");
                let _ = pair.b.send_ipv4(now, unit, &reply);
            } else if icmp::parse_echo_reply(&packet).is_some() {
                self.replies.1 += 1;
                println!("{t}      ac: {unit}: echo reply");
            }
        }
        pair.flush();
    }
}

/// A discovery event in plain words.
fn describe_discovery(event: &DiscoveryEvent) -> String {
    match event {
        DiscoveryEvent::SessionUp {
            session_id,
            ac_name,
            ac_mac,
            service_name,
            ..
        } => format!(
            "PPPoE session {session_id:#06x} with {ac_name} ({ac_mac}), service \"{service_name}\""
        ),
        DiscoveryEvent::SessionDown { session_id, reason } => {
            format!("PPPoE session {session_id:#06x} ended: {reason}")
        }
        DiscoveryEvent::Failed { reason } => format!("discovery failed: {reason}"),
        DiscoveryEvent::ScanComplete { results } => format!("scan: {} answers", results.len()),
        _ => "discovery event".to_owned(),
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
    let mut client_link = LinkConfig::pppoe();
    client_link.lcp.allow = vec![AuthProtocol::MsChapV2, AuthProtocol::ChapMd5];
    client_link.auth.credentials = Some(ClientCredentials::password(
        "alice",
        "correct horse battery staple",
    ));
    client_link.ccp = Some(CcpConfig::require_mppe_128());
    // The AC: requires MS-CHAPv2, hands out addresses from a pool and a DNS server.
    let mut ac_link = LinkConfig::pppoe();
    ac_link.lcp.allow.clear();
    ac_link.lcp.require = vec![AuthProtocol::MsChapV2];
    ac_link.auth.authenticator = AuthenticatorConfig::new("demo-ac");
    ac_link.ccp = Some(CcpConfig::require_mppe_128());
    let ac_config = AcConfig {
        ac_name: "demo-ac".into(),
        services: vec!["internet".into()],
        ..AcConfig::default()
    };

    ac_link.auth.secrets = Some(Arc::new(SecretsTable::parse_pppd(
        "# client  server  secret\nalice  demo-ac  \"correct horse battery staple\"\n",
    )?));

    // Seeded, so every run of the demo is the same; programs use Random::from_os().
    let line = Impairments::delay(Duration::from_micros(500));
    let start = Instant::now();
    let mut client = PppoeClient::new(
        ClientConfig {
            service_name: "internet".into(),
            ..ClientConfig::default()
        },
        client_link,
        CLIENT_MAC,
        Random::seeded(0x5eed_c11e),
    );
    let mut server = PppoeServer::new(ac_config, ac_link, AC_MAC, Random::seeded(0x5eed_00ac));
    let pool = AddressRange::new(Ipv4Addr::new(192, 0, 2, 100), Ipv4Addr::new(192, 0, 2, 199));
    server.set_ipcp_factory(Box::new(move |_| {
        Ipcp::with_address_pool(IpcpConfig::server(AC_ADDR, [Some(DNS), None]), pool.clone())
    }));

    println!(
        "PPPoE client {CLIENT_MAC} and access concentrator {AC_MAC} on a simulated segment, 0.5 ms each way\n"
    );
    client.open(start);
    let mut pair = Pair::new_at(start, client, server, line.clone(), line, 7);
    pair.enable_tap();
    let mut demo = Demo {
        start,
        printed: (0, 0),
        address: None,
        replies: (0, 0),
    };
    let up = demo.run(&mut pair, Duration::from_secs(10), |p, _| {
        p.a.state() == &PppoeClientState::Connected
    });
    if !up {
        return Err(format!("the session did not come up: {}", pair.a.state()).into());
    }
    let connected_at = pair.elapsed();
    let now = pair.now();
    let address = demo.address.ok_or("no address")?;
    for seq in 1..=3 {
        pair.a.send_ipv4(
            now,
            &icmp::echo_request(address, AC_ADDR, 0xc1, seq, b"from the client"),
        )?;
    }
    demo.run(&mut pair, Duration::from_secs(10), |_, d| {
        d.replies == (3, 1)
    });
    let session = pair.a.session().ok_or("no session")?.clone();
    let link = pair.a.link().ok_or("no link")?;
    let lcp = link.lcp_negotiated().ok_or("LCP not open")?.clone();
    let encoding = ppp_tokio::pppoe::link_encoding(link);
    let mtu = link.mtu().unwrap_or(0);
    let ip = link.ipcp_negotiated().copied().ok_or("IPCP not open")?;
    let now = pair.now();
    pair.a.close(now, CloseReason::UserRequest);
    demo.run(&mut pair, Duration::from_secs(10), |p, _| {
        matches!(p.a.state(), PppoeClientState::Disconnected(_)) && p.b.session_count() == 0
    });
    let (client_replies, ac_replies) = demo.replies;

    println!("\nsession summary (monitor):");
    println!("          status: {}", pair.a.state());
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
        "  authentication: {}",
        lcp.auth_peer_requires.ok_or("no auth")?.log_name()
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
    if client_replies != 3 || ac_replies != 1 || pair.b.session_count() != 0 {
        return Err("the session did not complete".into());
    }

    if let Some(path) = pcap_path {
        let frames = pair.take_tap();
        let mut pcap = PcapWriter::new(
            BufWriter::new(std::fs::File::create(&path)?),
            LinkType::Ethernet,
        )?;
        let base = SystemTime::now().duration_since(UNIX_EPOCH)?;
        for frame in &frames {
            pcap.write_packet(base + (frame.at - start), &frame.bytes)?;
        }
        pcap.flush()?;
        println!("wrote {} Ethernet frames to {path}", frames.len());
    }
    Ok(())
}
