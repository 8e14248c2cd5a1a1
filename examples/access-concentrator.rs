//! A PPPoE access concentrator: discovery on one or more interfaces, PPP with CHAP/MS-CHAP/PAP
//! against the configuration's secrets or a pppd `chap-secrets` file, then RADIUS (`[aaa]
//! use-radius`), each session's addresses from the user's profile (an address or a pool) or
//! RADIUS, its rate limit, session and idle timeouts, RADIUS accounting and dynamic
//! authorization (Disconnect, CoA), one TUN device per session (`ppp0`, `ppp1`, ...), TCP MSS
//! clamping; `sessions` lists the active sessions of a running instance.
//!
//! ```text
//! access-concentrator --config examples/pppoe/access-concentrator.toml --control /run/ac.sock -v
//! access-concentrator --control /run/ac.sock sessions
//! ```
//!
//! See docs/pppoe.md for every flag and configuration key, and for the exit status (0 stopped
//! on request, 1 fatal, 2 options, 7 an interface could not be opened); docs/aaa.md for RADIUS,
//! accounting, dynamic authorization, profiles and rate limits.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use clap::{Parser, Subcommand};
use ppp_auth::SecretsBackend;
use ppp_stack::pppoe::config::{self, AcFile};
use ppp_stack::pppoe::policy::ProfilePolicy;
use ppp_stack::pppoe::{ConfigError, control, format};
use ppp_tokio::aaa::{Aaa, AaaOptions};
use ppp_tokio::pppoe::{self, SharedServerSnapshot};
use ppp_tokio::radius::{DaeCounters, DaeListener, RadiusService};
use tokio::sync::watch;

/// A PPPoE access concentrator configured by a TOML file (and a few flags).
#[derive(Debug, Parser)]
#[command(name = "access-concentrator", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The TOML configuration (see examples/pppoe/access-concentrator.toml).
    #[arg(short, long, global = true)]
    config: Option<PathBuf>,
    /// Debug logs (pppd-like packet summaries).
    #[arg(short, long, global = true)]
    verbose: bool,
    /// The unix control socket (created by `run`, used by `sessions`).
    #[arg(long, global = true)]
    control: Option<PathBuf>,
    /// Interfaces to serve (repeat, or comma-separated), instead of the file's.
    #[arg(short, long, global = true, value_delimiter = ',')]
    interface: Vec<String>,
    /// The AC-Name, instead of the file's.
    #[arg(long, global = true)]
    ac_name: Option<String>,
    /// The services, instead of the file's.
    #[arg(long, global = true, value_delimiter = ',')]
    service: Vec<String>,
    /// Most sessions at once per interface, instead of the file's.
    #[arg(long, global = true)]
    max_sessions: Option<usize>,
    /// A pppd chap-secrets file, instead of the file's.
    #[arg(long, global = true)]
    chap_secrets: Option<PathBuf>,
    /// Multilink MRRU to offer (bundles of one user's sessions), instead of the file's.
    #[arg(long, global = true)]
    mrru: Option<u16>,
    /// Record every Ethernet frame into this pcap file (with several interfaces, the
    /// interface's name is appended).
    #[arg(long, global = true)]
    pcap: Option<PathBuf>,
    /// Who carries the datagrams: the kernel's PPPoE (a `pppN` per session, where the kernel
    /// has PPP), TUN devices through this process, or `auto` (the kernel's when it can); see
    /// docs/data-plane.md.
    #[arg(long, global = true, default_value = "auto")]
    data_plane: ppp_tokio::kernel::DataPlane,
    /// TUN devices without offloads (one packet per read and write; the file's `tun-offload`).
    #[arg(long, global = true)]
    no_tun_offload: bool,
    /// Worker threads per interface (0: one per CPU), instead of the file's `workers`.
    #[arg(long, global = true)]
    workers: Option<usize>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve (the default).
    Run,
    /// List the sessions of the instance running with the same --control socket.
    Sessions,
    /// The RADIUS client's and the dynamic-authorization listener's counters of that instance.
    Radius,
    /// Check the configuration and exit.
    Check,
}

impl Cli {
    fn file(&self) -> Result<AcFile, ConfigError> {
        let mut file = match &self.config {
            Some(path) => config::load::<AcFile>(path)?,
            None => AcFile::default(),
        };
        if !self.interface.is_empty() {
            file.interfaces.clone_from(&self.interface);
        }
        if let Some(name) = &self.ac_name {
            file.ac_name.clone_from(name);
        }
        if !self.service.is_empty() {
            file.services.clone_from(&self.service);
        }
        if let Some(max) = self.max_sessions {
            file.max_sessions = max;
        }
        if let Some(path) = &self.chap_secrets {
            file.chap_secrets = Some(path.clone());
        }
        if let Some(mrru) = self.mrru {
            file.mrru = Some(mrru);
        }
        if let Some(path) = &self.pcap {
            file.pcap = Some(path.clone());
        }
        if let Some(path) = &self.control {
            file.control = Some(path.clone());
        }
        if self.no_tun_offload {
            file.tun_offload = false;
        }
        if let Some(workers) = self.workers {
            file.workers = workers;
        }
        Ok(file)
    }
}

use ppp_stack::cli::{ExitStatus, init_logs, terminated};
use ppp_tokio::packet::InterfaceError;

/// Picks the data path (Multilink needs TUN; required MPPE needs the kernel's `ppp_mppe`).
fn data_plane_choice(
    requested: ppp_tokio::kernel::DataPlane,
    file: &AcFile,
) -> Result<ppp_tokio::kernel::Choice, ConfigError> {
    use ppp_tokio::kernel::{Lower, Needs, choose};
    let options = file.to_options(file.interfaces.first().map_or("", String::as_str))?;
    let needs = Needs {
        tun_only: options
            .link
            .lcp
            .mrru
            .map(|_| "Multilink (mrru)".to_owned())
            .or_else(|| aaa_needs_tun(file)),
        // A profile that requires MPPE needs the kernel's ppp_mppe.
        mppe_required: file
            .profiles
            .values()
            .any(|p| p.use_encryption == ppp_stack::pppoe::config::UseEncryption::Required),
    };
    let choice = choose(requested, Lower::Pppoe, &needs).map_err(|error| ConfigError::Invalid {
        key: "data-plane".to_owned(),
        message: error.to_string(),
    })?;
    tracing::info!("{}", choice.reason());
    Ok(choice)
}

/// What of the AAA only the TUN path can apply: rate limits (the kernel path's loop applies
/// RADIUS, timeouts, `only-one` and accounting too, but cannot shape). With a profile's or a
/// secret's rate limit the AC keeps the TUN path, where it is enforced, rather than refusing
/// those users; a rate limit RADIUS grants on the kernel path refuses that session (logged).
fn aaa_needs_tun(file: &AcFile) -> Option<String> {
    let limited = file
        .profiles
        .values()
        .any(|profile| profile.rate_limit.is_some())
        || file
            .secrets
            .iter()
            .any(|secret| secret.rate_limit.is_some());
    limited.then(|| "a rate limit".to_owned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.verbose);
    let status = match run(cli).await {
        Ok(code) => code,
        Err(error) => {
            tracing::error!("{error}");
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
    };
    tracing::info!("exit status {status}");
    status.into()
}

async fn run(cli: Cli) -> Result<ExitStatus, Box<dyn std::error::Error>> {
    let file = cli.file()?;
    match cli.command.as_ref().unwrap_or(&Command::Run) {
        Command::Sessions => {
            let path = file.control.ok_or("sessions needs --control PATH")?;
            print!("{}", control::query(&path, "sessions").await?);
            return Ok(ExitStatus::Success);
        }
        Command::Radius => {
            let path = file.control.ok_or("radius needs --control PATH")?;
            print!("{}", control::query(&path, "radius").await?);
            return Ok(ExitStatus::Success);
        }
        Command::Check => {
            file.validate()?;
            ProfilePolicy::from_file(&file)?;
            let table = file.secrets_table()?;
            println!(
                "configuration is valid: {} interface(s), {} secret(s), {} profile(s), {} pool(s), \
                 {} RADIUS server(s)",
                file.interfaces.len(),
                table.lines().len(),
                file.profiles.len(),
                file.pools.len(),
                file.radius.as_ref().map_or(0, |r| r.servers.len())
            );
            return Ok(ExitStatus::Success);
        }
        Command::Run => {}
    }
    file.validate()?;
    let policy = ProfilePolicy::from_file(&file)?;
    let secrets: Arc<dyn SecretsBackend> = Arc::new(file.secrets_table()?);
    let statuses: Vec<SharedServerSnapshot> = file
        .interfaces
        .iter()
        .map(|_| Arc::new(Mutex::new(Vec::new())))
        .collect();
    let (aaa, dae_counters) = start_aaa(&file).await?;
    let _control = match &file.control {
        Some(path) => {
            let statuses = statuses.clone();
            let radius = aaa.radius().cloned();
            let incoming = dae_counters.clone();
            let handler: control::Handler = Arc::new(move |command: &str| match command {
                "sessions" => {
                    let all: Vec<_> = statuses
                        .iter()
                        .flat_map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).clone())
                        .collect();
                    format::sessions(&all, SystemTime::now())
                }
                "radius" => format::radius(
                    radius.as_ref().map(RadiusService::stats),
                    incoming.as_ref().map(DaeCounters::get),
                ),
                _ => format!("unknown command {command:?}\n"),
            });
            Some(control::ControlServer::bind(path, handler)?)
        }
        None => None,
    };
    // The data path (kernel or TUN), decided once for every interface: see docs/data-plane.md.
    let kernel = data_plane_choice(cli.data_plane, &file)?.support().cloned();
    let (stop_tx, stop_rx) = watch::channel(false);
    let several = file.interfaces.len() > 1;
    let mut servers = tokio::task::JoinSet::new();
    for (interface, status) in file.interfaces.iter().zip(&statuses) {
        let mut options = file.to_options(interface)?;
        if several {
            options.pcap = options
                .pcap
                .map(|p| PathBuf::from(format!("{}.{interface}", p.display())));
            options.tun_prefix = format!("{}{}-", options.tun_prefix, servers.len());
        }
        options.aaa = Some(aaa.clone());
        let secrets = Arc::clone(&secrets);
        let policy = Box::new(policy.clone());
        let status = Arc::clone(status);
        let mut stop = stop_rx.clone();
        let kernel = kernel.clone();
        servers.spawn(async move {
            let shutdown = async move {
                stop.wait_for(|stopped| *stopped).await.ok();
            };
            match kernel {
                Some(support) => {
                    ppp_tokio::kernel::pppoe::run_server(
                        options, support, secrets, policy, status, shutdown,
                    )
                    .await
                }
                None => pppoe::run_server(options, secrets, policy, status, shutdown).await,
            }
        });
    }
    let status = tokio::select! {
        () = terminated() => {
            stop_tx.send(true).ok();
            let mut result = Ok(ExitStatus::Success);
            while let Some(joined) = servers.join_next().await {
                if let Err(error) = joined.map_err(Into::into).and_then(|r| r.map_err(Into::into)) {
                    result = Err(error);
                }
            }
            result
        }
        Some(joined) = servers.join_next() => {
            stop_tx.send(true).ok();
            while servers.join_next().await.is_some() {}
            joined??;
            Err("an interface's server stopped".into())
        }
    };
    // The Stop records of the sessions just closed: sent now, or kept in the spool.
    if let Some(radius) = aaa.radius().filter(|_| aaa.accounting()) {
        let left = radius.flush(Duration::from_secs(3)).await;
        if left > 0 {
            tracing::warn!(
                "RADIUS: {left} accounting record(s) not acknowledged; they wait in the spool"
            );
        }
    }
    status
}

/// The process's AAA: the RADIUS client and the dynamic-authorization listener when
/// `[radius]` is configured, and the registry `only-one` needs in any case.
async fn start_aaa(
    file: &AcFile,
) -> Result<(Aaa, Option<DaeCounters>), Box<dyn std::error::Error>> {
    let Some(radius) = &file.radius else {
        return Ok((Aaa::new(AaaOptions::local())?, None));
    };
    let service = RadiusService::spawn(radius.service_config(&file.ac_name))
        .await
        .map_err(|e| format!("RADIUS client: {e}"))?;
    tracing::info!(
        "RADIUS: {} server(s), authentication {}, accounting {}",
        radius.servers.len(),
        if file.aaa.use_radius { "on" } else { "off" },
        if file.aaa.accounting { "on" } else { "off" }
    );
    let mut options = AaaOptions::with_radius(service);
    options.use_radius = file.aaa.use_radius;
    options.accounting = file.aaa.accounting;
    options.interim_interval = Some(file.aaa.interim_update.0).filter(|i| !i.is_zero());
    let aaa = Aaa::new(options)?;
    let mut counters = None;
    if let Some((address, config)) = radius.dae_config(&file.ac_name) {
        let listener = DaeListener::bind(address, config)
            .await
            .map_err(|e| format!("dynamic authorization on {address}: {e}"))?;
        tracing::info!("RADIUS: dynamic authorization (Disconnect, CoA) on {address}");
        counters = Some(listener.counters());
        tokio::spawn(aaa.clone().serve_dae(listener));
    }
    Ok((aaa, counters))
}
