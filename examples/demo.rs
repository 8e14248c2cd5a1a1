//! The in-process demo: no hardware, no root, about a second of virtual time.
//!
//! A dial-out client and a server run the whole PPP stack against each other over a simulated
//! serial line (async HDLC framing, 9 ms of delay each way): LCP, IPCP with DNS, IPv6CP, then ICMP
//! pings both ways, then a Terminate. Each side logs pppd-style packet summaries
//! (`-v` for every packet), and `--pcap FILE` writes the client's view for Wireshark.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ppp_frame::pcap::{Direction, LinkType, PcapWriter};
use ppp_ipcp::{IpcpConfig, Ipv6cpConfig};
use ppp_link::{Datagram, Link, LinkConfig, LinkEvent};
use ppp_sim::{Endpoint, Impairments, Pair};
use ppp_tokio::icmp;

const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DNS: [Ipv4Addr; 2] = [Ipv4Addr::new(198, 51, 100, 53), Ipv4Addr::new(198, 51, 100, 54)];

struct Side {
    name: &'static str,
    link: Link,
    address: Option<Ipv4Addr>,
    peer: Option<Ipv4Addr>,
    replies: u16,
    down: Option<String>,
    start: Instant,
}

impl Side {
    fn report(&mut self, now: Instant) {
        let t = (now - self.start).as_secs_f64();
        while let Some(event) = self.link.poll_event() {
            match event {
                LinkEvent::Phase(phase) => println!("{t:7.3}s {:>6}: phase {phase}", self.name),
                LinkEvent::LinkUp(n) => println!(
                    "{t:7.3}s {:>6}: LCP up: mru {} peer mru {} accm {:#x} pcomp {} accomp {} magic {:#010x}",
                    self.name,
                    n.our_mru,
                    n.peer_mru,
                    n.peer_accm,
                    n.pfc_tx,
                    n.acfc_tx,
                    n.our_magic.unwrap_or(0)
                ),
                LinkEvent::IpUp { local, peer, dns } => {
                    println!("{t:7.3}s {:>6}: local  IP address {local}", self.name);
                    println!("{t:7.3}s {:>6}: remote IP address {peer}", self.name);
                    for (i, server) in dns.iter().enumerate() {
                        println!("{t:7.3}s {:>6}: {} DNS address {server}", self.name, ["primary", "secondary"][i.min(1)]);
                    }
                    self.address = Some(local);
                    self.peer = Some(peer);
                }
                LinkEvent::Ipv6Up { local, peer } => {
                    println!("{t:7.3}s {:>6}: local  LL address {local}", self.name);
                    println!("{t:7.3}s {:>6}: remote LL address {peer}", self.name);
                }
                LinkEvent::LinkDown { reason } => {
                    println!("{t:7.3}s {:>6}: link down: {reason}", self.name);
                    self.down = Some(reason);
                }
                other => println!("{t:7.3}s {:>6}: {other:?}", self.name),
            }
        }
        while let Some(datagram) = self.link.poll_datagram() {
            let Datagram::Ipv4(packet) = datagram else { continue };
            let us = self.address.unwrap_or(Ipv4Addr::UNSPECIFIED);
            if let Some(reply) = icmp::echo_reply(&packet, us) {
                println!("{t:7.3}s {:>6}: ICMP echo request from {}, replying", self.name, src(&packet));
                let _ = self.link.send_ipv4(now, &reply);
            } else if let Some((from, _, seq)) = icmp::parse_echo_reply(&packet) {
                self.replies += 1;
                println!("{t:7.3}s {:>6}: ICMP echo reply from {from} seq {seq}", self.name);
            }
        }
    }
}

fn src(packet: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15])
}

impl Endpoint for Side {
    fn handle_input(&mut self, now: Instant, data: &[u8]) {
        let _span = tracing::info_span!("", side = self.name).entered();
        self.link.handle_input(now, data);
        self.report(now);
    }
    fn handle_timeout(&mut self, now: Instant) {
        let _span = tracing::info_span!("", side = self.name).entered();
        self.link.handle_timeout(now);
        self.report(now);
    }
    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.link.poll_transmit()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.link.poll_timeout()
    }
}

fn ping(src: Ipv4Addr, dst: Ipv4Addr, seq: u16) -> Vec<u8> {
    icmp::echo_request(src, dst, 0x1234, seq, b"ppp-demo")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut pcap_path = None;
    let mut verbose = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--pcap" => pcap_path = Some(args.next().ok_or("--pcap needs a file name")?),
            "-v" | "--verbose" => verbose = true,
            other => return Err(format!("unknown argument {other:?} (usage: demo [-v] [--pcap FILE])").into()),
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(if verbose { "debug" } else { "warn" })
        .without_time()
        .with_target(false)
        .init();

    let mut client = LinkConfig { seed: 0x5eed_0001, ..LinkConfig::default() };
    client.lcp.allow.clear();
    client.ipv6cp = Some(Ipv6cpConfig::default());
    let mut server = LinkConfig {
        seed: 0x5eed_0002,
        ipcp: Some(IpcpConfig {
            remote_address: Some(CLIENT_ADDR),
            ..IpcpConfig::server(SERVER_ADDR, [Some(DNS[0]), Some(DNS[1])])
        }),
        ipv6cp: Some(Ipv6cpConfig::default()),
        ..LinkConfig::default()
    };
    server.lcp.allow.clear();

    let line = Impairments::delay(Duration::from_millis(9));
    let mut pair = Pair::new(dummy(), dummy(), line.clone(), line, 42);
    let start = pair.start();
    pair.a = Side { name: "client", link: Link::new(client), ..dummy_at(start) };
    pair.b = Side { name: "server", link: Link::new(server), ..dummy_at(start) };
    pair.a.link.enable_capture();
    println!("client and server over a simulated serial line, 9 ms each way");
    for side in [&mut pair.a, &mut pair.b] {
        let _span = tracing::info_span!("", side = side.name).entered();
        side.link.open(start);
        side.link.up(start);
        side.report(start);
    }

    let ready = pair.run_until(Duration::from_secs(30), |a, b| {
        a.link.ipcp_negotiated().is_some()
            && b.link.ipcp_negotiated().is_some()
            && a.link.ipv6cp_negotiated().is_some()
            && b.link.ipv6cp_negotiated().is_some()
    });
    if !ready {
        return Err("the link did not come up".into());
    }
    let now = pair.now();
    for seq in 1..=3 {
        pair.a.link.send_ipv4(now, &ping(CLIENT_ADDR, SERVER_ADDR, seq))?;
    }
    pair.b.link.send_ipv4(now, &ping(SERVER_ADDR, CLIENT_ADDR, 9))?;
    pair.run_until(Duration::from_secs(30), |a, b| a.replies == 3 && b.replies == 1);
    let now = pair.now();
    pair.a.link.close(now, "demo finished");
    pair.a.report(now);
    pair.run_until(Duration::from_secs(60), |a, b| a.down.is_some() && b.down.is_some());

    let stats = pair.a.link.stats();
    println!(
        "\nsummary: {} pings answered, link up and down in {:.3} s of virtual time; client sent {} frames ({} bytes), received {} frames, {} bad FCS",
        pair.a.replies + pair.b.replies,
        pair.elapsed().as_secs_f64(),
        stats.frames_out,
        stats.bytes_out,
        stats.frames_in,
        stats.framing.bad_fcs
    );
    if pair.a.replies != 3 || pair.b.replies != 1 || pair.a.down.is_none() || pair.b.down.is_none() {
        return Err("the session did not complete".into());
    }

    if let Some(path) = pcap_path {
        let file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let mut pcap = PcapWriter::new(file, LinkType::PppWithDirection)?;
        let base = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
        let mut count = 0;
        while let Some(packet) = pair.a.link.poll_capture() {
            let direction = if packet.sent { Direction::Sent } else { Direction::Received };
            pcap.write_ppp(base + (packet.at - start), direction, packet.protocol, &packet.payload)?;
            count += 1;
        }
        pcap.flush()?;
        println!("wrote {count} packets to {path}");
    }
    Ok(())
}

fn dummy() -> Side {
    dummy_at(Instant::now())
}

fn dummy_at(start: Instant) -> Side {
    Side {
        name: "",
        link: Link::new(LinkConfig::default()),
        address: None,
        peer: None,
        replies: 0,
        down: None,
        start,
    }
}
