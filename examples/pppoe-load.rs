//! `pppoe-load`: brings up many PPPoE client sessions from one process on one interface (one
//! Ethernet address per client, a promiscuous packet socket), reports the set-up rate and, given
//! the access concentrator's pid, its memory and CPU, then ends every session cleanly (LCP
//! Terminate and PADT) and exits.
//!
//! ```sh
//! pppoe-load --interface veth-c --sessions 10000 --rate 2000 --user alice \
//!     --password-file ./alice.pw --ac-pid $(pidof access-concentrator)
//! ```
//!
//! Exit status 0 when every session came up and went down again, 1 otherwise, 2 for bad options.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use ppp_link::auth::{AuthProtocol, ClientCredentials};
use ppp_link::pppoe::{PppoeClient, PppoeClientState};
use ppp_link::{CloseReason, LinkConfig, Random};
use ppp_tokio::now;
use ppp_tokio::packet::PacketSocket;
use pppoe_discovery::{ClientConfig, Code, DiscoveryRepr, MacAddr, TagType};

/// Many PPPoE clients from one process, for load tests of an access concentrator.
#[derive(Debug, Parser)]
#[command(name = "pppoe-load", version)]
struct Cli {
    /// The Ethernet interface (it receives for every client: the socket is promiscuous).
    #[arg(short, long)]
    interface: String,
    /// Sessions to bring up.
    #[arg(long, default_value_t = 100)]
    sessions: u32,
    /// New sessions started per second.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// The user name every client authenticates as.
    #[arg(long)]
    user: String,
    /// A file holding the password (first line), so it does not show in `ps`.
    #[arg(long, conflicts_with = "password_env")]
    password_file: Option<PathBuf>,
    /// An environment variable holding the password.
    #[arg(long, default_value = "PPPOE_LOAD_PASSWORD")]
    password_env: String,
    /// The service to ask for (empty: any).
    #[arg(long, default_value = "")]
    service_name: String,
    /// The access concentrator's process id, to report its memory (RSS) and CPU time.
    #[arg(long)]
    ac_pid: Option<u32>,
    /// Seconds to keep the sessions up before ending them.
    #[arg(long, default_value_t = 0)]
    hold: u64,
    /// Seconds to wait for every session to come up.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// The first byte pair of the clients' Ethernet addresses (02:XX: locally administered).
    #[arg(long, default_value_t = 0x4c)]
    mac_prefix: u8,
    /// With the sessions up, flood the AC with PADIs from random addresses for this many
    /// seconds, as fast as one thread sends them (within `--hold`, which it lengthens if
    /// needed); one second in, one more client starts: how long it takes to connect, how many
    /// sessions went down and the AC's memory before and after are reported.
    #[arg(long, default_value_t = 0)]
    padi_flood: u64,
}

/// Sends PADIs from random locally administered addresses on `interface` for `duration`, as
/// fast as one thread can, from a socket and runtime of its own. Returns how many were sent.
fn padi_flood(
    interface: String,
    duration: Duration,
    random: Random,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                eprintln!("pppoe-load: flood runtime: {error}");
                return 0;
            }
        };
        runtime.block_on(async {
            let socket = match PacketSocket::bind(&interface) {
                Ok(socket) => socket,
                Err(error) => {
                    eprintln!("pppoe-load: flood socket: {error}");
                    return 0;
                }
            };
            // PADI for any service; its source address changes with every frame.
            let padi = DiscoveryRepr::new(
                MacAddr::BROADCAST,
                MacAddr([2, 0, 0, 0, 0, 0]),
                Code::Padi,
                0,
            )
            .with_tag(TagType::ServiceName, []);
            let Ok(mut frame) = padi.to_bytes() else {
                return 0;
            };
            let until = now() + duration;
            let mut sent = 0u64;
            while now() < until {
                for _ in 0..256 {
                    let mac = random.bytes::<6>();
                    frame[6] = (mac[0] & 0xfe) | 0x02;
                    frame[7..12].copy_from_slice(&mac[1..]);
                    if socket.send(&frame).await.is_ok() {
                        sent += 1;
                    }
                }
            }
            sent
        })
    })
}

/// The AC's resident memory (kB) and CPU time (clock ticks) from /proc.
fn ac_usage(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): utime is the 14th field overall.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((rss, utime + stime))
}

/// Clock ticks per second of /proc's CPU times (the Linux default; `getconf CLK_TCK`).
const TICKS_PER_SECOND: f64 = 100.0;

struct Load {
    socket: PacketSocket,
    clients: Vec<PppoeClient>,
    by_mac: HashMap<MacAddr, usize>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    up: Vec<Option<Instant>>,
    up_count: usize,
    down_count: usize,
    failures: usize,
}

impl Load {
    /// Sends what `index` has to send and keeps its timer entry.
    async fn drain(&mut self, index: usize) {
        let now = now();
        while let Some(frame) = self.clients[index].poll_transmit() {
            if let Err(error) = self.socket.send(&frame).await {
                eprintln!("pppoe-load: frame not sent: {error}");
            }
        }
        while self.clients[index].poll_event().is_some() {}
        while self.clients[index].poll_datagram().is_some() {}
        match self.clients[index].state() {
            PppoeClientState::Connected if self.up[index].is_none() => {
                self.up[index] = Some(now);
                self.up_count += 1;
            }
            PppoeClientState::Disconnected(_) => {
                if self.up[index].take().is_some() {
                    self.down_count += 1;
                } else {
                    self.failures += 1;
                }
            }
            _ => {}
        }
        if let Some(at) = self.clients[index].poll_timeout() {
            self.timers.push(Reverse((at, index)));
        }
    }

    /// Waits for a frame or the next client deadline (or `limit`) and feeds it.
    async fn step(&mut self, limit: Instant) {
        let next_timer = self.timers.peek().map(|Reverse((at, _))| *at);
        let deadline = next_timer.map_or(limit, |t| t.min(limit));
        let mut buf = vec![0u8; 2048];
        tokio::select! {
            received = self.socket.recv(&mut buf) => {
                let Ok(len) = received else { return };
                let frame = &buf[..len];
                let Some(dst) = frame.get(..6) else { return };
                let dst = MacAddr(dst.try_into().expect("six bytes"));
                if let Some(&index) = self.by_mac.get(&dst) {
                    self.clients[index].handle_input(now(), frame);
                    self.drain(index).await;
                }
            }
            () = tokio::time::sleep_until(deadline.into()) => {
                let now = now();
                while let Some(&Reverse((at, index))) = self.timers.peek() {
                    if at > now {
                        break;
                    }
                    self.timers.pop();
                    if self.clients[index].poll_timeout().is_some_and(|t| t <= now) {
                        self.clients[index].handle_timeout(now);
                        self.drain(index).await;
                    }
                }
            }
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let password = match &cli.password_file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => text.lines().next().unwrap_or_default().to_owned(),
            Err(error) => {
                eprintln!("pppoe-load: {}: {error}", path.display());
                return ExitCode::from(2);
            }
        },
        None => std::env::var(&cli.password_env).unwrap_or_default(),
    };
    let socket = match PacketSocket::bind(&cli.interface) {
        Ok(socket) => socket,
        Err(error) => {
            eprintln!("pppoe-load: {error}");
            return ExitCode::from(2);
        }
    };
    // Room for the AC's answers to thousands of clients at once.
    if let Err(error) = socket.set_receive_buffer(8 << 20) {
        eprintln!("pppoe-load: {}: receive buffer: {error}", cli.interface);
    }
    if let Err(error) = socket.set_promiscuous() {
        eprintln!("pppoe-load: {}: promiscuous mode: {error}", cli.interface);
        return ExitCode::from(2);
    }
    let random = match Random::from_os() {
        Ok(random) => random,
        Err(error) => {
            eprintln!("pppoe-load: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut link = LinkConfig::pppoe();
    link.lcp.allow = vec![
        AuthProtocol::MsChapV2,
        AuthProtocol::ChapMd5,
        AuthProtocol::Pap,
    ];
    link.auth.credentials = Some(ClientCredentials::password(cli.user.clone(), password));
    let discovery = ClientConfig {
        service_name: cli.service_name.clone(),
        ..ClientConfig::default()
    };
    let count = cli.sessions as usize;
    // With a flood, one more client (the last) starts during it.
    let total = count + usize::from(cli.padi_flood > 0);
    let mut load = Load {
        socket,
        clients: Vec::with_capacity(total),
        by_mac: HashMap::with_capacity(total),
        timers: BinaryHeap::new(),
        up: vec![None; total],
        up_count: 0,
        down_count: 0,
        failures: 0,
    };
    for n in 0..total as u32 {
        let b = n.to_be_bytes();
        let mac = MacAddr([0x02, cli.mac_prefix, b[0], b[1], b[2], b[3]]);
        load.clients.push(PppoeClient::new(
            discovery.clone(),
            link.clone(),
            mac,
            random.fork(),
        ));
        load.by_mac.insert(mac, n as usize);
    }

    let before = cli.ac_pid.and_then(ac_usage);
    let start = now();
    let interval = Duration::from_secs(1) / cli.rate.max(1);
    let deadline = start + Duration::from_secs(cli.timeout);
    let progress = std::io::stderr().is_terminal();
    let mut started = 0;
    let mut next_report = start;
    while load.up_count < count && now() < deadline {
        // Start the clients due.
        let due = start + interval * started as u32;
        if started < count && due <= now() {
            load.clients[started].open(now());
            load.drain(started).await;
            started += 1;
            continue;
        }
        let limit = if started < count { due } else { deadline };
        load.step(limit.min(next_report.max(now()) + Duration::from_millis(500)))
            .await;
        if now() >= next_report {
            let elapsed = (now() - start).as_secs_f64();
            let line = format!(
                "{}/{count} up after {elapsed:.1} s ({:.0}/s), {} failed",
                load.up_count,
                load.up_count as f64 / elapsed.max(0.001),
                load.failures
            );
            if progress {
                eprint!("\r{line}   ");
                let _ = std::io::stderr().flush();
            } else {
                eprintln!("{line}");
            }
            next_report = now() + Duration::from_millis(500);
        }
    }
    let last_up = load.up.iter().flatten().max().copied().unwrap_or(start);
    let setup = (last_up - start).as_secs_f64();
    let after = cli.ac_pid.and_then(ac_usage);
    if progress {
        eprintln!();
    }
    println!(
        "{} of {count} sessions up in {setup:.2} s ({:.0} set-ups/s), {} failed",
        load.up_count,
        load.up_count as f64 / setup.max(0.001),
        load.failures
    );
    if let (Some((rss_before, cpu_before)), Some((rss_after, cpu_after))) = (before, after) {
        let cpu = (cpu_after - cpu_before) as f64 / TICKS_PER_SECOND;
        println!(
            "access concentrator: RSS {} MB before, {} MB with the sessions up \
             ({:.0} bytes per session); {cpu:.2} s of CPU for the set-ups ({:.0}% of a core)",
            rss_before / 1024,
            rss_after / 1024,
            (rss_after.saturating_sub(rss_before) * 1024) as f64 / load.up_count.max(1) as f64,
            100.0 * cpu / setup.max(0.001)
        );
    }
    let all_up = load.up_count == count;

    let flood = Duration::from_secs(cli.padi_flood);
    let hold_until = now() + Duration::from_secs(cli.hold).max(flood + Duration::from_secs(2));
    if cli.padi_flood > 0 {
        let down_before = load.down_count;
        let usage_before = cli.ac_pid.and_then(ac_usage);
        let rss_before = usage_before.map(|(rss, _)| rss);
        let flood_start = now();
        let flooder = padi_flood(cli.interface.clone(), flood, random.fork());
        let join_at = flood_start + Duration::from_secs(1);
        while now() < join_at {
            load.step(join_at).await;
        }
        let rss_during = cli.ac_pid.and_then(ac_usage).map(|(rss, _)| rss);
        let joining = now();
        load.clients[count].open(joining);
        load.drain(count).await;
        let flood_end = flood_start + flood;
        while now() < flood_end {
            load.step(flood_end).await;
        }
        let sent = flooder.join().unwrap_or(0);
        let usage_after = cli.ac_pid.and_then(ac_usage);
        let rss_after = usage_after.map(|(rss, _)| rss);
        let flood_cpu = usage_before
            .zip(usage_after)
            .map(|((_, before), (_, after))| {
                100.0 * after.saturating_sub(before) as f64
                    / TICKS_PER_SECOND
                    / (now() - flood_start).as_secs_f64()
            });
        let joined = load.up[count].map(|at| at - joining);
        println!(
            "PADI flood: {sent} PADIs in {:.1} s ({:.0}/s); a new client {}; {} of {count} \
             sessions went down during it; AC RSS {} before, {} one second in, {} at the end; \
             AC CPU {} of a core during it",
            (now() - flood_start).as_secs_f64(),
            sent as f64 / flood.as_secs_f64().max(0.001),
            joined.map_or("did not connect during the flood".to_owned(), |t| format!(
                "connected in {:.2} s",
                t.as_secs_f64()
            )),
            load.down_count - down_before,
            rss_before.map_or("?".to_owned(), |kb| format!("{} MB", kb / 1024)),
            rss_during.map_or("?".to_owned(), |kb| format!("{} MB", kb / 1024)),
            rss_after.map_or("?".to_owned(), |kb| format!("{} MB", kb / 1024)),
            flood_cpu.map_or("?".to_owned(), |cpu| format!("{cpu:.0}%")),
        );
    }
    while now() < hold_until {
        load.step(hold_until).await;
    }
    // End every session: LCP Terminate, then PADT.
    let closing = now();
    for index in 0..total {
        load.clients[index].close(now(), CloseReason::UserRequest);
        load.drain(index).await;
    }
    let close_deadline = closing + Duration::from_secs(20);
    while load.up.iter().any(Option::is_some) && now() < close_deadline {
        load.step(close_deadline).await;
    }
    let still_up = load.up.iter().filter(|u| u.is_some()).count();
    println!(
        "{} sessions ended in {:.2} s{}",
        load.down_count,
        (now() - closing).as_secs_f64(),
        if still_up > 0 {
            format!(", {still_up} did not end")
        } else {
            String::new()
        }
    );
    if all_up && still_up == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
