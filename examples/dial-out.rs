//! `dial-out`: a RouterOS-style `ppp-client` for serial modems, its `ppp-server` counterpart and
//! a `monitor` command. See `docs/dial-out.md`.
//!
//! ```text
//! dial-out dial --config examples/dialout/lte.toml -v
//! dial-out server --config examples/dialout/server.toml
//! dial-out monitor --control-socket /run/dial-out.sock
//! dial-out sim-modem --link /tmp/simmodem --peer-unix /tmp/guest-ttyS1.sock   # test tool
//! ```
//!
//! Exit status: pppd's numbers (0 success, 2 options, 7 port, 8 modem/connect, 10
//! negotiation, 11 peer auth, 12 idle, 15 peer dead, 16 hang-up, 19 our auth, 30 `--ping`), see
//! `docs/dial-out.md`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ppp_link::Datagram;
use ppp_modem::{MonitorConfig, StatusMonitor};
use ppp_stack::cli::{ExitStatus, init_logs};
use ppp_stack::dialout::config::ServerLineConfig;
use ppp_stack::dialout::net::{DEMAND_LOCAL, DEMAND_PEER, TunLink};
use ppp_stack::dialout::status::{query_control, serve_control};
use ppp_stack::dialout::{
    ClientConfig, ClientEvent, ClientIo, ClientOptions, DialOutError, LineConfig, ServerConfig,
    ServerEvent, ServerIo, ServerOptions, SharedStatus, UseEncryption, run_bundle_client,
    run_client, run_kernel_client, run_kernel_server, run_multiport_server, run_server,
};
use ppp_tokio::icmp;
use ppp_tokio::serial::{self, FlowControl, PortConfig, SimulatedModem, bridge_modem};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

#[derive(Parser, Debug)]
#[command(
    name = "dial-out",
    about = "PPP over serial modems: dial out, answer, monitor"
)]
struct Cli {
    /// Verbose logs: every AT command and PPP packet, pppd style.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Dial out and bring the link up (RouterOS ppp-client).
    Dial(Box<DialArgs>),
    /// Answer incoming calls (RouterOS ppp-server).
    Server(ServerArgs),
    /// Test tool: a simulated AT modem on a new pty (for `dial --port` or pppd), whose calls
    /// connect to a Unix socket (a QEMU guest's serial port, or `server` on another pty).
    SimModem(SimModemArgs),
    /// Show the status of a running dial-out or server.
    Monitor {
        /// The control socket of the running program.
        #[arg(long, default_value = "/run/dial-out.sock")]
        control_socket: PathBuf,
    },
}

#[derive(Args, Debug)]
struct DialArgs {
    /// A TOML file with the settings (keys as in RouterOS: apn, pin, user, ...).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The serial port; given several times, the ports make one Multilink bundle (replacing the
    /// file's `port` or `[[line]]`s; each line takes the other settings from the file).
    #[arg(long)]
    port: Vec<String>,
    /// Multilink MRRU (RFC 1990): MP over one port, or the bundle's MRRU over several.
    #[arg(long)]
    mrru: Option<u16>,
    /// The baud rate.
    #[arg(long)]
    baud_rate: Option<u32>,
    /// none, hardware or software.
    #[arg(long)]
    flow_control: Option<String>,
    /// The APN.
    #[arg(long)]
    apn: Option<String>,
    /// The SIM PIN.
    #[arg(long)]
    pin: Option<String>,
    /// The number to dial (default *99#).
    #[arg(long)]
    phone: Option<String>,
    /// Our PPP user name.
    #[arg(long)]
    user: Option<String>,
    /// Our PPP password: --password, --password-file or --password-env.
    #[command(flatten)]
    password: ppp_stack::profile::PasswordSource,
    /// A pppd chat script to run instead of the built-in sequence.
    #[arg(long)]
    chat_script: Option<PathBuf>,
    /// Redial after failures and lost calls.
    #[arg(long)]
    persist: bool,
    /// Give up after this many consecutive failures (default 10; 0: never).
    #[arg(long)]
    max_fail: Option<u32>,
    /// Bring the interface up first; the first packet dials.
    #[arg(long)]
    dial_on_demand: bool,
    /// Hang up after this many seconds without traffic.
    #[arg(long)]
    idle_timeout: Option<u64>,
    /// Add a default route through the link.
    #[arg(long)]
    add_default_route: bool,
    /// Write the peer's DNS servers here (use-peer-dns).
    #[arg(long)]
    resolv_conf: Option<PathBuf>,
    /// Write a pcap of the PPP packets.
    #[arg(long)]
    pcap: Option<PathBuf>,
    /// The control socket for `monitor`.
    #[arg(long)]
    control_socket: Option<PathBuf>,
    /// Run IPv6CP next to IPCP (profile use-ipv6).
    #[arg(long)]
    use_ipv6: bool,
    /// MPPE: no, yes (if the peer agrees) or required (profile use-encryption).
    #[arg(long, value_enum)]
    use_encryption: Option<UseEncryption>,
    /// Deflate compression (profile use-compression).
    #[arg(long)]
    use_compression: bool,
    /// Seconds without anything from the peer before it is declared dead (default 30; 0: no
    /// keepalive).
    #[arg(long)]
    keepalive_timeout: Option<u64>,
    /// pppd lcp-echo-interval: an LCP Echo-Request every this many seconds, 4 unanswered end
    /// the link (replaces --keepalive-timeout).
    #[arg(long)]
    lcp_echo_interval: Option<u64>,
    /// Do not end the call when DCD drops (pppd local).
    #[arg(long)]
    ignore_dcd: bool,
    /// No modem: a direct (null-modem) cable, the line is up at once (the file's
    /// `null-modem`).
    #[arg(long)]
    null_modem: bool,
    /// No TUN device (no root needed): only bring the link up, and ping the peer `--ping`
    /// times.
    #[arg(long)]
    no_tun: bool,
    /// Who carries the datagrams: the kernel's PPP line discipline (`pppN`, where the kernel
    /// has PPP), a TUN device through this process, or `auto` (the kernel's when it can);
    /// see docs/data-plane.md.
    #[arg(long, default_value = "auto")]
    data_plane: ppp_tokio::kernel::DataPlane,
    /// With --no-tun: once IPCP is up, ping the peer until it answered this many times, then
    /// hang up and exit (0); exit 30 if that did not happen within --ping-deadline.
    #[arg(long, default_value_t = 0, requires = "no_tun")]
    ping: u16,
    /// How long each echo request waits for its reply before the next is sent, in seconds.
    #[arg(long, default_value_t = 1.0)]
    ping_timeout: f64,
    /// How long all the pings may take from IPCP up, in seconds.
    #[arg(long, default_value_t = 10.0)]
    ping_deadline: f64,
}

#[derive(Args, Debug)]
struct SimModemArgs {
    /// Where to make a symlink to the pty the host opens as its modem.
    #[arg(long)]
    link: PathBuf,
    /// The far end of every call: a Unix stream socket to connect to.
    #[arg(long)]
    peer_unix: PathBuf,
    /// The SIM PIN the modem wants (none: no PIN).
    #[arg(long)]
    pin: Option<String>,
    /// Seconds from power-on to registration.
    #[arg(long, default_value_t = 0.0)]
    registration_delay: f64,
    /// What ATD does: connect, busy, no-carrier, no-answer.
    #[arg(long, default_value = "connect")]
    dial: String,
    /// Drop every call (NO CARRIER) after this many seconds.
    #[arg(long)]
    drop_after: Option<f64>,
}

#[derive(Args, Debug)]
struct ServerArgs {
    /// A TOML file with the settings.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The serial port; given several times, calls on all of them are answered and a second
    /// call of the same peer joins its Multilink bundle.
    #[arg(long)]
    port: Vec<String>,
    /// Accept Multilink (RFC 1990) with this MRRU (default with several ports: the MRU).
    #[arg(long)]
    mrru: Option<u16>,
    /// The baud rate.
    #[arg(long)]
    baud_rate: Option<u32>,
    /// none, hardware or software.
    #[arg(long)]
    flow_control: Option<String>,
    /// No modem: the line is connected from the start.
    #[arg(long)]
    null_modem: bool,
    /// A pppd chap-secrets file.
    #[arg(long)]
    chap_secrets: Option<PathBuf>,
    /// RINGs before answering.
    #[arg(long)]
    ring_count: Option<u32>,
    /// Serve one call, then exit.
    #[arg(long)]
    once: bool,
    /// The control socket for `monitor`.
    #[arg(long)]
    control_socket: Option<PathBuf>,
    /// Write a pcap of the PPP packets (every call, in order; not on the kernel data path).
    #[arg(long)]
    pcap: Option<PathBuf>,
    /// Who carries the callers' datagrams: the kernel's PPP line discipline (a `pppN`
    /// interface per call, where the kernel has PPP), a TUN device through this process, or
    /// `auto` (the kernel's when it can); see docs/data-plane.md.
    #[arg(long, default_value = "auto")]
    data_plane: ppp_tokio::kernel::DataPlane,
    /// No TUN device (no root needed) on the user-space path: callers reach only this
    /// server, which answers pings to its own address itself (`answer-ping`).
    #[arg(long)]
    no_tun: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            error!("cannot start the runtime: {error}");
            return ExitStatus::Fatal.into();
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Dial(args) => dial(*args).await,
            Command::Server(args) => server(args).await,
            Command::SimModem(args) => sim_modem(args).await.map(|()| ExitStatus::Success),
            Command::Monitor { control_socket } => {
                let text = query_control(&control_socket).await?;
                print!("{text}");
                Ok(ExitStatus::Success)
            }
        }
    });
    let status = match result {
        Ok(status) => status,
        Err(error) => {
            // A link failure was logged by the link ("link down: ..."); say it once.
            if !matches!(error, DialOutError::Link(_)) {
                error!("{error}");
            }
            error.exit_status()
        }
    };
    info!("exit status {status}");
    status.into()
}

/// A stop switch, thrown by Ctrl-C or SIGTERM (or by the program itself).
fn shutdown_switch() -> (Arc<watch::Sender<bool>>, watch::Receiver<bool>) {
    let (shutdown, receiver) = watch::channel(false);
    let shutdown = Arc::new(shutdown);
    let on_signal = Arc::clone(&shutdown);
    tokio::spawn(async move {
        ppp_stack::cli::terminated().await;
        info!("interrupted: hanging up");
        let _ = on_signal.send(true);
    });
    (shutdown, receiver)
}

async fn dial(args: DialArgs) -> Result<ExitStatus, DialOutError> {
    let mut config = match &args.config {
        Some(path) => ClientConfig::load(path)?,
        None => ClientConfig::default(),
    };
    macro_rules! set {
        ($($field:ident),*) => { $( if let Some(value) = args.$field.clone() { config.$field = value.into(); } )* };
    }
    set!(baud_rate, flow_control, max_fail, idle_timeout);
    set_ports(&mut config.port, &mut config.line, &args.port, |port| {
        LineConfig::port(port)
    });
    if args.mrru.is_some() {
        config.mrru = args.mrru;
    }
    if args.apn.is_some() {
        config.apn.clone_from(&args.apn);
    }
    if args.pin.is_some() {
        config.pin.clone_from(&args.pin);
    }
    if args.phone.is_some() {
        config.phone.clone_from(&args.phone);
    }
    if args.user.is_some() {
        config.user.clone_from(&args.user);
    }
    if let Some(password) = args
        .password
        .read()
        .map_err(|invalid| DialOutError::Config(invalid.to_string()))?
    {
        config.password = Some(password.0);
    }
    if args.chat_script.is_some() {
        config.chat_script.clone_from(&args.chat_script);
    }
    if args.resolv_conf.is_some() {
        config.resolv_conf.clone_from(&args.resolv_conf);
        config.use_peer_dns = true;
    }
    if args.control_socket.is_some() {
        config.control_socket.clone_from(&args.control_socket);
    }
    config.persist |= args.persist;
    config.dial_on_demand |= args.dial_on_demand;
    config.add_default_route |= args.add_default_route;
    config.ignore_dcd |= args.ignore_dcd;
    config.null_modem |= args.null_modem;
    config.profile.use_ipv6 |= args.use_ipv6;
    config.profile.use_compression |= args.use_compression;
    if let Some(encryption) = args.use_encryption {
        config.profile.use_encryption = encryption;
    }
    if let Some(seconds) = args.keepalive_timeout {
        config.keepalive_timeout = seconds;
    }
    if let Some(seconds) = args.lcp_echo_interval {
        config.lcp_echo_interval = seconds;
    }
    let seconds = |value: f64, flag: &str| {
        Duration::try_from_secs_f64(value)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| DialOutError::Config(format!("{flag} {value}: not a duration")))
    };
    let ping = PingPlan {
        count: args.ping,
        timeout: seconds(args.ping_timeout, "--ping-timeout")?,
        deadline: seconds(args.ping_deadline, "--ping-deadline")?,
    };
    let lines = config.lines()?;
    if lines.iter().any(|line| line.port.is_empty()) {
        return Err(DialOutError::Config(
            "no port (--port, `port` or `[[line]]` in the file)".into(),
        ));
    }
    let mut ports = Vec::with_capacity(lines.len());
    for line in &lines {
        ports.push(serial::open_port(&line.port_config()?)?);
    }
    let status = SharedStatus::new();
    status.set_state("disconnected", "idle");
    let _control = match &config.control_socket {
        Some(path) => Some(serve_control(path, status.clone())?),
        None => None,
    };
    if let Some(info_port) = &config.info_port {
        let info = PortConfig::new(info_port, config.baud_rate, FlowControl::None);
        tokio::spawn(info_channel(info, status.clone()));
    }
    let (shutdown_tx, shutdown) = shutdown_switch();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let pings = Arc::new(PingResult::default());
    let (replies_tx, replies_rx) = mpsc::unbounded_channel();
    let mut replies_rx = Some(replies_rx);
    let (outbound_tx_local, outbound_rx_local) = mpsc::channel(64);
    // The data path (kernel or TUN): see docs/data-plane.md.
    let kernel = if args.no_tun {
        None
    } else {
        data_plane_choice(args.data_plane, &config)?
    };
    let (outbound, inbound, mut tun) = if args.no_tun || kernel.is_some() {
        let (inbound_tx, inbound_rx) = mpsc::channel(64);
        tokio::spawn(forward_replies(inbound_rx, replies_tx));
        (outbound_rx_local, inbound_tx, None)
    } else {
        let (mut tun, outbound, inbound) =
            TunLink::create(config.interface.as_deref(), config.max_mtu).map_err(|error| {
                let name = config.interface.as_deref().unwrap_or("(a new one)");
                ppp_stack::cli::named(format_args!("TUN device {name}"), error)
            })?;
        info!("interface {}", tun.name());
        if config.dial_on_demand {
            tun.set_addresses(DEMAND_LOCAL, DEMAND_PEER, config.max_mtu)?;
            if config.add_default_route {
                tun.add_default_route(config.default_route_distance)?;
            }
        }
        (outbound, inbound, Some(tun))
    };
    let io = ClientIo {
        outbound,
        inbound,
        events: events_tx,
        shutdown,
    };
    let network = {
        let config = config.clone();
        let pings = Arc::clone(&pings);
        let shutdown_tx = Arc::clone(&shutdown_tx);
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    ClientEvent::IpUp {
                        local,
                        peer,
                        dns,
                        mtu,
                    } => {
                        if ping.count > 0
                            && let Some(replies) = replies_rx.take()
                        {
                            tokio::spawn(run_pings(
                                ping,
                                (local, peer),
                                outbound_tx_local.clone(),
                                replies,
                                Arc::clone(&pings),
                                Arc::clone(&shutdown_tx),
                            ));
                        }
                        if let Some(tun) = tun.as_mut() {
                            if let Err(error) = tun.set_addresses(local, peer, mtu) {
                                warn!("setting the addresses: {error}");
                            }
                            if config.add_default_route
                                && let Err(error) =
                                    tun.add_default_route(config.default_route_distance)
                            {
                                warn!("default route: {error}");
                            }
                            if config.use_peer_dns
                                && let Some(path) = &config.resolv_conf
                                && let Err(error) = tun.write_resolv_conf(path.clone(), &dns)
                            {
                                warn!("{}: {error}", path.display());
                            }
                        }
                    }
                    ClientEvent::Ipv6Up { local, peer } => {
                        if let Some(tun) = tun.as_mut()
                            && let Err(error) = tun.set_ipv6_link_local(local, peer)
                        {
                            warn!("setting the IPv6 link-local addresses: {error}");
                        }
                    }
                    ClientEvent::Ipv6Down => {
                        if let Some(tun) = tun.as_mut() {
                            tun.clear_ipv6_link_local();
                        }
                    }
                    ClientEvent::MtuChanged { mtu } => {
                        if let Some(tun) = tun.as_ref()
                            && let Err(error) = tun.set_mtu(mtu)
                        {
                            warn!("setting the mtu: {error}");
                        }
                    }
                    ClientEvent::CallEnded { .. } | ClientEvent::IpDown => {
                        if let Some(tun) = tun.as_mut() {
                            if matches!(event, ClientEvent::CallEnded { .. }) {
                                tun.clear_ipv6_link_local();
                            }
                            if config.dial_on_demand {
                                let _ =
                                    tun.set_addresses(DEMAND_LOCAL, DEMAND_PEER, config.max_mtu);
                            } else {
                                tun.clear_addresses();
                            }
                        }
                    }
                    _ => {}
                }
            }
            drop(tun);
        })
    };
    let options = ClientOptions {
        pcap: args.pcap.clone(),
        random: None,
    };
    let result = if let Some(support) = kernel {
        let port = ports
            .pop()
            .ok_or_else(|| DialOutError::Config("no port".into()))?;
        run_kernel_client(&config, port, io, status, support).await
    } else if config.is_bundle() {
        run_bundle_client(&config, ports, io, status, options).await
    } else {
        let port = ports
            .pop()
            .ok_or_else(|| DialOutError::Config("no port".into()))?;
        run_client(&config, port, io, status, options).await
    };
    let _ = network.await;
    let exit = result?;
    if args.ping > 0 && !pings.done.load(Ordering::Relaxed) {
        return Err(DialOutError::PingsUnanswered {
            answered: pings.answered.load(Ordering::Relaxed),
            sent: pings.sent.load(Ordering::Relaxed),
        });
    }
    Ok(exit.exit_status())
}

/// Picks the data path of a call: the kernel's PPP line discipline unless the configuration
/// needs what only the TUN path has (several lines, dial-on-demand) or the kernel lacks PPP;
/// logs which and why. `None`: TUN.
fn data_plane_choice(
    requested: ppp_tokio::kernel::DataPlane,
    config: &ClientConfig,
) -> Result<Option<ppp_tokio::kernel::KernelSupport>, DialOutError> {
    let tun_only = if config.is_bundle() {
        Some("Multilink over several lines")
    } else if config.dial_on_demand {
        Some("dial-on-demand")
    } else {
        None
    };
    let choice = choose_serial(requested, tun_only, config.profile.use_encryption)?;
    info!("{}", choice.reason());
    Ok(choice.support().cloned())
}

/// The data path of a serial line: `tun_only` names what rules the kernel's out; required
/// encryption needs the kernel's `ppp_mppe`.
fn choose_serial(
    requested: ppp_tokio::kernel::DataPlane,
    tun_only: Option<&str>,
    encryption: UseEncryption,
) -> Result<ppp_tokio::kernel::Choice, DialOutError> {
    use ppp_tokio::kernel::{Lower, Needs, choose};
    let needs = Needs {
        tun_only: tun_only.map(str::to_owned),
        mppe_required: encryption == UseEncryption::Required,
    };
    choose(requested, Lower::Serial, &needs)
        .map_err(|error| DialOutError::Config(error.to_string()))
}

/// `--ping`: how many replies are wanted, how long each echo waits, how long all may take.
#[derive(Clone, Copy, Debug)]
struct PingPlan {
    count: u16,
    timeout: Duration,
    deadline: Duration,
}

/// What `--ping` achieved.
#[derive(Debug, Default)]
struct PingResult {
    sent: AtomicU16,
    answered: AtomicU16,
    done: AtomicBool,
}

/// Our ICMP identifier for `--ping`.
const PING_ID: u16 = 0x0d1a;

/// `--no-tun`: hands the sequence numbers of echo replies to `--ping`.
async fn forward_replies(
    mut inbound: mpsc::Receiver<Datagram>,
    replies: mpsc::UnboundedSender<(std::net::Ipv4Addr, u16)>,
) {
    while let Some(datagram) = inbound.recv().await {
        if let Datagram::Ipv4(packet) = datagram
            && let Some((from, PING_ID, seq)) = icmp::parse_echo_reply(&packet)
        {
            let _ = replies.send((from, seq));
        }
    }
}

/// `--ping`: one echo request at a time, each waiting `plan.timeout` for its reply (a lost one
/// is followed by the next sequence number: the first echo may go out before the peer's
/// interface is up), until `plan.count` were answered or `plan.deadline` passed; then hangs up.
async fn run_pings(
    plan: PingPlan,
    (local, peer): (std::net::Ipv4Addr, std::net::Ipv4Addr),
    outbound: mpsc::Sender<Vec<u8>>,
    mut replies: mpsc::UnboundedReceiver<(std::net::Ipv4Addr, u16)>,
    result: Arc<PingResult>,
    shutdown: Arc<watch::Sender<bool>>,
) {
    let deadline = tokio::time::Instant::now() + plan.deadline;
    let mut answered = 0u16;
    let mut seq = 0u16;
    let finished = loop {
        if answered >= plan.count {
            break true;
        }
        if tokio::time::Instant::now() >= deadline {
            break false;
        }
        seq = seq.wrapping_add(1);
        let request = icmp::echo_request(local, peer, PING_ID, seq, b"dial-out");
        if outbound.send(request).await.is_err() {
            return;
        }
        result.sent.fetch_add(1, Ordering::Relaxed);
        let wait_until = (tokio::time::Instant::now() + plan.timeout).min(deadline);
        let reply = tokio::time::timeout_at(wait_until, async {
            while let Some((from, reply_seq)) = replies.recv().await {
                if reply_seq == seq {
                    return Some(from);
                }
            }
            None
        })
        .await;
        match reply {
            Ok(Some(from)) => {
                answered += 1;
                result.answered.store(answered, Ordering::Relaxed);
                println!("reply from {from}: icmp_seq={seq}");
                // The rest of the interval, as ping does.
                tokio::time::sleep_until(
                    wait_until.min(tokio::time::Instant::now() + Duration::from_millis(200)),
                )
                .await;
            }
            Ok(None) => return,
            Err(_) => println!(
                "no reply to icmp_seq={seq} within {} s",
                plan.timeout.as_secs_f32()
            ),
        }
    };
    let sent = result.sent.load(Ordering::Relaxed);
    if finished {
        result.done.store(true, Ordering::Relaxed);
        println!("{answered} pings answered ({sent} sent), hanging up");
    } else {
        println!(
            "{answered} of {} pings answered within {} s ({sent} sent), hanging up",
            plan.count,
            plan.deadline.as_secs_f32()
        );
    }
    let _ = shutdown.send(true);
}

/// Signal and operator from a second AT port (RouterOS `info-channel`).
async fn info_channel(port: PortConfig, status: SharedStatus) {
    let mut stream = match serial::open_port(&port) {
        Ok(stream) => stream,
        Err(error) => {
            warn!("info port: {error}");
            return;
        }
    };
    let mut monitor = StatusMonitor::new(MonitorConfig::default());
    monitor.open(serial::now());
    let mut buf = [0u8; 1024];
    loop {
        while let Some(bytes) = monitor.poll_transmit() {
            if stream.write_all(&bytes).await.is_err() {
                return;
            }
        }
        while let Some(event) = monitor.poll_event() {
            if let ppp_modem::ModemEvent::StatusUpdated(modem) = event {
                status.lock().update_modem(&modem);
            }
        }
        let deadline = monitor.poll_timeout();
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => monitor.handle_input(serial::now(), &buf[..n]),
            },
            () = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => tokio::time::sleep(Duration::from_secs(5)).await,
                }
            } => monitor.handle_timeout(serial::now()),
        }
    }
}

async fn server(args: ServerArgs) -> Result<ExitStatus, DialOutError> {
    let mut config = match &args.config {
        Some(path) => ServerConfig::load(path)?,
        None => ServerConfig::default(),
    };
    set_ports(&mut config.port, &mut config.line, &args.port, |port| {
        ServerLineConfig {
            port: port.to_owned(),
            ..ServerLineConfig::default()
        }
    });
    if args.mrru.is_some() {
        config.mrru = args.mrru;
    }
    if let Some(baud_rate) = args.baud_rate {
        config.baud_rate = baud_rate;
    }
    if let Some(flow) = args.flow_control {
        config.flow_control = flow;
    }
    if args.chap_secrets.is_some() {
        config.chap_secrets = args.chap_secrets;
    }
    if let Some(count) = args.ring_count {
        config.ring_count = count;
    }
    if args.control_socket.is_some() {
        config.control_socket = args.control_socket;
    }
    config.null_modem |= args.null_modem;
    config.once |= args.once;
    let lines = config.lines()?;
    if lines.iter().any(|line| line.port.is_empty()) {
        return Err(DialOutError::Config(
            "no port (--port, `port` or `[[line]]` in the file)".into(),
        ));
    }
    let mut ports = Vec::with_capacity(lines.len());
    for line in &lines {
        ports.push(serial::open_port(&line.port_config()?)?);
    }
    let status = SharedStatus::new();
    let _control = match &config.control_socket {
        Some(path) => Some(serve_control(path, status.clone())?),
        None => None,
    };
    // The data path (kernel or TUN): see docs/data-plane.md.
    let kernel = if lines.len() > 1 {
        if args.data_plane == ppp_tokio::kernel::DataPlane::Kernel {
            return Err(DialOutError::Config(
                "--data-plane kernel: several lines (Multilink) need the TUN data path".into(),
            ));
        }
        None
    } else {
        server_data_plane(args.data_plane, &config, args.no_tun)?
    };
    let (outbound, inbound, tun) = if args.no_tun || kernel.is_some() {
        (None, None, None)
    } else {
        let (tun, outbound, inbound) = TunLink::create(config.interface.as_deref(), config.max_mtu)
            .map_err(|error| {
                let name = config.interface.as_deref().unwrap_or("(a new one)");
                ppp_stack::cli::named(format_args!("TUN device {name}"), error)
            })?;
        info!("interface {}", tun.name());
        (Some(outbound), Some(inbound), Some(tun))
    };
    let (events, events_rx) = mpsc::unbounded_channel();
    let network = tokio::spawn(follow_server_events(events_rx, tun));
    let io = ServerIo {
        outbound,
        inbound,
        events,
        shutdown: shutdown_switch().1,
    };
    let random = ppp_link::Random::from_os()
        .map_err(|error| DialOutError::Io(std::io::Error::other(error)))?;
    let options = ServerOptions {
        pcap: args.pcap,
        random,
    };
    let result = if lines.len() > 1 {
        run_multiport_server(&config, ports, io, status, options).await
    } else {
        let port = ports
            .pop()
            .ok_or_else(|| DialOutError::Config("no port".into()))?;
        match kernel {
            Some(support) => run_kernel_server(&config, port, io, status, options, support).await,
            None => run_server(&config, port, io, status, options).await,
        }
    };
    let _ = network.await;
    Ok(result?.exit_status())
}

/// The server's TUN device follows its calls: the addresses and MTU of the call that is up,
/// none between calls.
async fn follow_server_events(
    mut events: mpsc::UnboundedReceiver<ServerEvent>,
    mut tun: Option<TunLink>,
) {
    while let Some(event) = events.recv().await {
        let Some(tun) = tun.as_mut() else { continue };
        match event {
            ServerEvent::IpUp { local, peer, mtu } => {
                if let Err(error) = tun.set_addresses(local, peer, mtu) {
                    warn!("setting the addresses: {error}");
                }
            }
            ServerEvent::CallEnded { .. } => tun.clear_addresses(),
            _ => {}
        }
    }
}

/// Picks the data path of the server's calls (one line): the kernel's PPP line discipline
/// unless the configuration needs what only the TUN path does (Multilink, rate limits) or the
/// kernel lacks PPP; logs which and why. `None`: TUN (or none with `--no-tun`).
fn server_data_plane(
    requested: ppp_tokio::kernel::DataPlane,
    config: &ServerConfig,
    no_tun: bool,
) -> Result<Option<ppp_tokio::kernel::KernelSupport>, DialOutError> {
    let tun_only = if config.mrru.is_some() {
        Some("Multilink (mrru)")
    } else if config.has_rate_limit() {
        Some("rate-limit")
    } else {
        None
    };
    let choice = choose_serial(requested, tun_only, config.profile.use_encryption)?;
    match choice.support() {
        None if no_tun => info!(
            "{} (--no-tun: no TUN device; the server answers pings to its own address)",
            choice.reason()
        ),
        _ => info!("{}", choice.reason()),
    }
    Ok(choice.support().cloned())
}

/// `--port` given once replaces the file's `port`, given several times its `[[line]]`s.
fn set_ports<L>(port: &mut String, lines: &mut Vec<L>, given: &[String], line: impl Fn(&str) -> L) {
    match given {
        [] => {}
        [one] => {
            one.clone_into(port);
            lines.clear();
        }
        several => {
            port.clear();
            *lines = several.iter().map(|p| line(p)).collect();
        }
    }
}

/// `SimModem` (from `ppp-modem`'s `sim` feature, a dev-dependency of this example) as a
/// [`SimulatedModem`] for the bridge.
struct Sim(ppp_modem::sim::SimModem);

impl SimulatedModem for Sim {
    fn handle_input(&mut self, now: std::time::Instant, bytes: &[u8]) {
        self.0.handle_input(now, bytes);
    }
    fn handle_timeout(&mut self, now: std::time::Instant) {
        self.0.handle_timeout(now);
    }
    fn poll_timeout(&self) -> Option<std::time::Instant> {
        self.0.poll_timeout()
    }
    fn poll_output(&mut self) -> Option<Vec<u8>> {
        self.0.poll_output()
    }
    fn send_from_peer(&mut self, bytes: &[u8]) {
        self.0.send_from_peer(bytes);
    }
    fn take_peer_data(&mut self) -> Vec<u8> {
        self.0.take_peer_data()
    }
    fn set_dtr(&mut self, now: std::time::Instant, level: bool) {
        self.0.set_dtr(now, level);
    }
}

async fn sim_modem(args: SimModemArgs) -> Result<(), DialOutError> {
    use ppp_modem::sim::{CallBehaviour, SimConfig, SimModem};
    use tokio_serial::SerialPort as _;
    let seconds = |value: f64| Duration::try_from_secs_f64(value.max(0.0)).unwrap_or_default();
    let mut config = SimConfig::default();
    config.pin.clone_from(&args.pin);
    config.registration_delay = seconds(args.registration_delay);
    config.drop_call_after = args.drop_after.map(seconds);
    config.dial = match args.dial.as_str() {
        "connect" => CallBehaviour::Connect(Some("115200".into())),
        "busy" => CallBehaviour::Busy,
        "no-carrier" => CallBehaviour::NoCarrier,
        "no-answer" => CallBehaviour::NoAnswer,
        other => return Err(DialOutError::Config(format!("--dial {other:?}"))),
    };
    let (master, slave) = tokio_serial::SerialStream::pair()
        .map_err(|error| DialOutError::Io(std::io::Error::other(error)))?;
    let name = slave
        .name()
        .ok_or_else(|| DialOutError::Config("the pty has no name".into()))?;
    let _ = std::fs::remove_file(&args.link);
    std::os::unix::fs::symlink(&name, &args.link)?;
    info!(
        "simulated modem on {name} ({}), calls go to {}",
        args.link.display(),
        args.peer_unix.display()
    );
    let peer = tokio::net::UnixStream::connect(&args.peer_unix).await?;
    let result = tokio::select! {
        result = bridge_modem(Sim(SimModem::new(config)), master, peer, None) => result.map(|_| ()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    let _ = std::fs::remove_file(&args.link);
    drop(slave);
    Ok(result?)
}
