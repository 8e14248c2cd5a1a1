//! A PPPoE client in the manner of RouterOS's `/interface pppoe-client`: discovery, PPP with
//! PAP/CHAP/MS-CHAP, IPCP, a TUN device with the negotiated addresses, optional default route and
//! DNS file, reconnection; `scan` lists the access concentrators answering, `monitor` asks a
//! running client for its status over its control socket.
//!
//! ```text
//! pppoe-client --interface eth0 --user alice --password-file /etc/ppp/alice.pass --add-default-route \
//!     --control /run/pppoe-client.sock --pcap /tmp/pppoe.pcap -v
//! pppoe-client --interface eth0 scan
//! pppoe-client --control /run/pppoe-client.sock monitor
//! ```
//!
//! See docs/pppoe.md for every flag and configuration key, and for the exit status (pppd's
//! numbers: 0 stopped on request or the session ended normally, 2 options, 7 interface, 8
//! discovery, 10 negotiation, 15 peer dead, 16 PADT, 19 our authentication).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand};
use ppp_stack::pppoe::config::{self, ClientFile, UseCompression, UseEncryption, UseIpv6};
use ppp_stack::pppoe::{control, format};
use ppp_tokio::pppoe::{self, ClientSnapshot};

/// A PPPoE client (RouterOS pppoe-client properties as flags or a TOML file).
#[derive(Debug, Parser)]
#[command(name = "pppoe-client", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Connect and keep the session up (the default).
    Run,
    /// List every access concentrator and service answering a PADI.
    Scan {
        /// How long to collect offers, in seconds.
        #[arg(long, default_value_t = 3)]
        duration: u64,
    },
    /// Print the status of the client running with the same --control socket.
    Monitor,
}

/// Settings; each overrides the configuration file's value.
#[derive(Debug, Args)]
struct Settings {
    /// A TOML file with the settings below (kebab-case keys).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Debug logs (pppd-like packet summaries).
    #[arg(short, long, global = true)]
    verbose: bool,
    /// The unix control socket (created by `run`, used by `monitor`).
    #[arg(long, global = true)]
    control: Option<PathBuf>,
    /// The Ethernet interface.
    #[arg(short, long, global = true)]
    interface: Option<String>,
    /// The service to ask for (empty: any).
    #[arg(long, global = true)]
    service_name: Option<String>,
    /// Only accept this access concentrator.
    #[arg(long, global = true)]
    ac_name: Option<String>,
    /// Our user name.
    #[arg(long, global = true)]
    user: Option<String>,
    /// Our password: --password, --password-file or --password-env.
    #[command(flatten)]
    password: ppp_stack::profile::PasswordSource,
    /// Methods we authenticate with: mschap2,mschap1,chap,pap.
    #[arg(long, global = true, value_delimiter = ',')]
    allow: Option<Vec<String>>,
    /// Largest MRU.
    #[arg(long, global = true)]
    max_mru: Option<u16>,
    /// Largest MTU.
    #[arg(long, global = true)]
    max_mtu: Option<u16>,
    /// Multilink MRRU to request.
    #[arg(long, global = true)]
    mrru: Option<u16>,
    /// Add a default route through the session.
    #[arg(long, global = true)]
    add_default_route: bool,
    /// The default route's metric.
    #[arg(long, global = true)]
    default_route_distance: Option<u32>,
    /// Write the peer's DNS servers to --resolv-conf.
    #[arg(long, global = true)]
    use_peer_dns: bool,
    /// The file the peer's DNS servers go to.
    #[arg(long, global = true)]
    resolv_conf: Option<PathBuf>,
    /// Seconds without LCP echo replies before the link is dead (0: no keepalive).
    #[arg(long, global = true)]
    keepalive_timeout: Option<u64>,
    /// MPPE (profile use-encryption).
    #[arg(long, global = true, value_enum)]
    use_encryption: Option<UseEncryption>,
    /// Deflate (profile use-compression).
    #[arg(long, global = true, value_enum)]
    use_compression: Option<UseCompression>,
    /// IPv6CP and link-local addresses (profile use-ipv6).
    #[arg(long, global = true, value_enum)]
    use_ipv6: Option<UseIpv6>,
    /// The TUN device's name.
    #[arg(long, global = true)]
    tun_name: Option<String>,
    /// Stop when the session ends instead of reconnecting.
    #[arg(long, global = true)]
    no_reconnect: bool,
    /// Record every Ethernet frame into this pcap file.
    #[arg(long, global = true)]
    pcap: Option<PathBuf>,
    /// Who carries the datagrams: the kernel's PPPoE (`pppN`, where the kernel has PPP), a
    /// TUN device through this process, or `auto` (the kernel's when it can); see
    /// docs/data-plane.md.
    #[arg(long, global = true, default_value = "auto")]
    data_plane: ppp_tokio::kernel::DataPlane,
    /// A TUN device without offloads (one packet per read and write; the file's
    /// `tun-offload`).
    #[arg(long, global = true)]
    no_tun_offload: bool,
}

impl Settings {
    fn file(&self) -> Result<ClientFile, ppp_stack::pppoe::ConfigError> {
        let mut file = match &self.config {
            Some(path) => config::load::<ClientFile>(path)?,
            None => ClientFile::default(),
        };
        macro_rules! set {
            ($($field:ident),*) => {$(
                if let Some(value) = &self.$field {
                    file.$field = value.clone().into();
                }
            )*};
        }
        set!(
            interface,
            service_name,
            ac_name,
            user,
            allow,
            max_mru,
            max_mtu
        );
        set!(
            default_route_distance,
            keepalive_timeout,
            tun_name,
            pcap,
            control
        );
        if let Some(password) = self
            .password
            .read()
            .map_err(|invalid| ConfigError::Invalid {
                key: invalid.key,
                message: invalid.message,
            })?
        {
            file.password = password;
        }
        if let Some(mrru) = self.mrru {
            file.mrru = Some(mrru);
        }
        if let Some(path) = &self.resolv_conf {
            file.resolv_conf = Some(path.clone());
        }
        if let Some(value) = self.use_encryption {
            file.profile.use_encryption = value;
        }
        if let Some(value) = self.use_compression {
            file.profile.use_compression = value;
        }
        if let Some(value) = self.use_ipv6 {
            file.profile.use_ipv6 = value;
        }
        file.add_default_route |= self.add_default_route;
        file.use_peer_dns |= self.use_peer_dns;
        if self.no_reconnect {
            file.reconnect = false;
        }
        if self.no_tun_offload {
            file.tun_offload = false;
        }
        Ok(file)
    }
}

use ppp_stack::cli::{ExitStatus, init_logs, terminated};
use ppp_stack::pppoe::ConfigError;
use ppp_tokio::packet::InterfaceError;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.settings.verbose);
    let status = match run(cli).await {
        Ok(code) => code,
        Err(error) => {
            tracing::error!("{error}");
            error_status(error.as_ref())
        }
    };
    tracing::info!("exit status {status}");
    status.into()
}

/// The exit status for an error that stopped the program.
fn error_status(error: &(dyn std::error::Error + 'static)) -> ExitStatus {
    if error.is::<ConfigError>() {
        ExitStatus::Options
    } else if error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| InterfaceError::of(e).is_some())
    {
        ExitStatus::OpenFailed
    } else {
        ExitStatus::Fatal
    }
}

/// The exit status for how the session ended (`was_up`: IPCP or IPv6CP came up).
fn exit_status(exit: &pppoe::ClientExit, was_up: bool) -> ExitStatus {
    use ppp_link::pppoe::PppoeDown;
    match exit {
        pppoe::ClientExit::Disconnected(PppoeDown::Discovery(_)) => ExitStatus::ConnectFailed,
        pppoe::ClientExit::Disconnected(PppoeDown::Session(_)) => ExitStatus::HangUp,
        pppoe::ClientExit::Disconnected(PppoeDown::Link(reason)) => {
            ExitStatus::from_down_reason(reason, was_up)
        }
        _ => ExitStatus::Success,
    }
}

/// Picks the data path for `options` (Multilink and required MPPE decide with the kernel).
fn data_plane_choice(
    requested: ppp_tokio::kernel::DataPlane,
    options: &pppoe::ClientOptions,
) -> Result<ppp_tokio::kernel::Choice, ConfigError> {
    use ppp_tokio::kernel::{Lower, Needs, choose};
    let needs = Needs {
        tun_only: options.link.lcp.mrru.map(|_| "Multilink (mrru)".to_owned()),
        mppe_required: options
            .link
            .ccp
            .as_ref()
            .is_some_and(|c| c.encryption == ppp_ccp::Encryption::Required),
    };
    let choice = choose(requested, Lower::Pppoe, &needs).map_err(|error| ConfigError::Invalid {
        key: "data-plane".to_owned(),
        message: error.to_string(),
    })?;
    tracing::info!("{}", choice.reason());
    Ok(choice)
}

async fn run(cli: Cli) -> Result<ExitStatus, Box<dyn std::error::Error>> {
    let file = cli.settings.file()?;
    match cli.command.unwrap_or(Command::Run) {
        Command::Monitor => {
            let path = file.control.ok_or("monitor needs --control PATH")?;
            print!("{}", control::query(&path, "monitor").await?);
            Ok(ExitStatus::Success)
        }
        Command::Scan { duration } => {
            let options = file.to_options()?;
            let results = pppoe::scan(
                &options.interface,
                options.discovery,
                Duration::from_secs(duration),
            )
            .await?;
            print!("{}", format::scan(&results));
            Ok(if results.is_empty() {
                ExitStatus::ConnectFailed
            } else {
                ExitStatus::Success
            })
        }
        Command::Run => {
            let options = file.to_options()?;
            let status = Arc::new(Mutex::new(ClientSnapshot::default()));
            let _control = match &file.control {
                Some(path) => {
                    let status = Arc::clone(&status);
                    let handler: control::Handler = Arc::new(move |command: &str| {
                        if command != "monitor" {
                            return format!("unknown command {command:?}\n");
                        }
                        let snapshot = status
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .clone();
                        format::monitor(&snapshot, SystemTime::now())
                    });
                    Some(control::ControlServer::bind(path, handler)?)
                }
                None => None,
            };
            // The data path (kernel or TUN): see docs/data-plane.md.
            let exit = match data_plane_choice(cli.settings.data_plane, &options)?.support() {
                Some(support) => {
                    ppp_tokio::kernel::pppoe::run_client(
                        options,
                        support.clone(),
                        Arc::clone(&status),
                        terminated(),
                    )
                    .await?
                }
                None => pppoe::run_client(options, Arc::clone(&status), terminated()).await?,
            };
            let was_up = status
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .sessions_started
                > 0;
            Ok(exit_status(&exit, was_up))
        }
    }
}
