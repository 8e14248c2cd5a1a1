//! Interop harness: real pppd and rp-pppoe in a QEMU guest, driven from host-side tests.
//!
//! The host kernel of the development and CI machines has no PPP support, so pppd runs in a small
//! Debian guest under QEMU (TCG). `interop/build-guest.sh` builds the guest (a Debian kernel and an
//! initramfs with busybox, pppd, the rp-pppoe tools and the PPP/PPPoE modules) from Debian
//! packages; this crate starts it, hands it a scenario script through QEMU's fw_cfg, connects to
//! its second serial port (the raw async HDLC byte stream of `/dev/ttyS1`) or to a TAP interface
//! in a private network namespace, and collects the console and the guest's log files.
//!
//! A scenario is a suite (the Debian release whose pppd/rp-pppoe to test), a guest script and a
//! host-side driver closure:
//!
//! ```no_run
//! use std::time::Duration;
//! use ppp_interop::{Scenario, Suite};
//!
//! let script = "ppptest-run pppd pppd /dev/ttyS1 115200 local nocrtscts nolock nodetach \
//!               noauth debug logfd 2 lcp-max-configure 2\n";
//! Scenario::new("lcp-confreq", Suite::Bookworm, script).run(|run| {
//!     let mut link = run.serial_link()?;
//!     let frame = link.next_frame(Duration::from_secs(30))?.ok_or("no frame")?;
//!     run.trace(format!("got {:?}", frame.protocol));
//!     let outcome = run.wait_exit(Duration::from_secs(60))?;
//!     if !outcome.pppd_log().iter().any(|l| l.contains("sent [LCP ConfReq")) {
//!         return Err("pppd did not log its ConfReq".into());
//!     }
//!     Ok(())
//! });
//! ```
//!
//! [`Scenario::run`] prints why it skips (no QEMU, image cannot be built, not root for TAP
//! scenarios) and returns, unless `PPP_INTEROP_REQUIRED=1` is set, which turns a skip into a
//! failure. Logs of a failed scenario are kept under `target/interop/logs/<scenario>-<suite>/`.
//!
//! [`run_our_link`] runs this stack's `ppp_link::Link` against the guest's pppd on the serial
//! port (see [`our_link`]).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod our_link;
pub mod pppoe_peer;
pub mod programs;

pub use our_link::{OurLinkPlan, OurLinkReport, pppd_session_script, run_our_link};

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::net::UnixStream;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ppp_frame::pcap::{Direction, LinkType, PcapWriter};
use ppp_frame::{AsyncDecoder, DecoderConfig, Protocol};

/// The environment variable that turns skips into failures (set by `.ci/run`).
pub const REQUIRED_ENV: &str = "PPP_INTEROP_REQUIRED";
/// The environment variable that keeps the logs of passing scenarios too.
pub const KEEP_LOGS_ENV: &str = "PPP_INTEROP_KEEP_LOGS";
/// The environment variable listing the suites to run (`bookworm,trixie`; default: all).
pub const SUITES_ENV: &str = "PPP_INTEROP_SUITES";
/// The environment variable bounding how many guests run at once in one process (default 2).
pub const JOBS_ENV: &str = "PPP_INTEROP_JOBS";
/// The environment variable that makes [`GuestImage::ensure`] take a cached image as it is,
/// without running `build-guest.sh` (set by `ci.sh` right after it built the images).
pub const REUSE_IMAGES_ENV: &str = "PPP_INTEROP_REUSE_IMAGES";
/// The marker the guest's /init prints with the scenario script's exit code.
pub const EXIT_MARKER: &str = "PPPTEST-EXIT=";
/// The marker the guest's /init prints before running the scenario script.
pub const START_MARKER: &str = "PPPTEST-START";

/// Everything that can go wrong in the harness itself (not in a scenario's assertions).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// `build-guest.sh` failed and no earlier image is cached.
    #[error("guest image for {suite} cannot be built: {detail}")]
    ImageBuild {
        /// The suite whose image failed.
        suite: Suite,
        /// The end of the script's output.
        detail: String,
    },
    /// This stack's programs could not be built or packed for the guest.
    #[error("the guest's programs cannot be prepared: {0}")]
    Programs(String),
    /// QEMU did not start or exited before the harness could connect.
    #[error("QEMU failed: {0}")]
    Qemu(String),
    /// Something did not happen in time.
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long the harness waited.
        waited: Duration,
    },
    /// A network namespace or TAP operation failed.
    #[error("network setup failed: {0}")]
    Network(String),
    /// The guest was started without the requested feature (for example no serial port).
    #[error("{0}")]
    NotConfigured(&'static str),
}

impl Error {
    fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<Error> for String {
    fn from(error: Error) -> String {
        error.to_string()
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A Debian release whose pppd and rp-pppoe the guest runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Suite {
    /// Debian 12: kernel 6.1, pppd 2.4.9, rp-pppoe 3.15.
    Bookworm,
    /// Debian 13: kernel 6.12, pppd 2.5.x, rp-pppoe 4.0.
    Trixie,
}

impl Suite {
    /// Every suite, oldest first.
    pub const ALL: [Suite; 2] = [Suite::Bookworm, Suite::Trixie];

    /// The Debian code name, as `build-guest.sh` takes it.
    pub const fn codename(self) -> &'static str {
        match self {
            Suite::Bookworm => "bookworm",
            Suite::Trixie => "trixie",
        }
    }

    /// The suite for a code name.
    pub fn from_codename(name: &str) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.codename() == name)
    }

    /// Whether `PPP_INTEROP_SUITES` (a comma-separated list of code names) selects this suite;
    /// every suite is selected when it is unset or empty.
    pub fn is_selected(self) -> bool {
        match std::env::var(SUITES_ENV) {
            Ok(list) if !list.trim().is_empty() => list
                .split([',', ' '])
                .any(|s| s.trim().eq_ignore_ascii_case(self.codename())),
            _ => true,
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.codename())
    }
}

/// The directory of the `interop/` package (where `build-guest.sh` lives).
pub fn package_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The harness's working directory: `$CARGO_TARGET_DIR/interop`, by default
/// `<workspace>/target/interop`. Images, apt state and logs live below it.
pub fn interop_dir() -> PathBuf {
    let workspace = package_dir()
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        // Cargo takes a relative CARGO_TARGET_DIR from where it was started; the workspace root
        // is the usual place.
        Some(dir) if !dir.is_empty() => workspace.join(dir),
        _ => workspace.join("target"),
    };
    target.join("interop")
}

/// Whether `PPP_INTEROP_REQUIRED=1`: skips are then failures.
pub fn interop_required() -> bool {
    std::env::var(REQUIRED_ENV).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// The QEMU binary: `$PPP_INTEROP_QEMU` or `qemu-system-x86_64`.
pub fn qemu_binary() -> String {
    std::env::var("PPP_INTEROP_QEMU").unwrap_or_else(|_| "qemu-system-x86_64".to_owned())
}

/// Finds `program` on `PATH` (or checks it when it contains a slash).
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Whether the process runs with effective user id 0 (read from `/proc/self/status`).
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Host tools `build-guest.sh` needs.
const BUILD_TOOLS: [&str; 11] = [
    "bash",
    "apt-get",
    "apt-cache",
    "dpkg-deb",
    "depmod",
    "readelf",
    "cpio",
    "gzip",
    "xz",
    "zstd",
    "flock",
];

/// Why the harness cannot run here, if it cannot: QEMU is missing, or no image is cached and the
/// tools to build one are missing. `None` means serial scenarios can be attempted (the image
/// build itself may still fail; [`Scenario::run`] reports that as a skip too).
pub fn skip_reason() -> Option<String> {
    let qemu = qemu_binary();
    if find_program(&qemu).is_none() {
        return Some(format!(
            "{qemu} not found (install the Debian package qemu-system-x86)"
        ));
    }
    let any_cached = Suite::ALL
        .into_iter()
        .any(|suite| GuestImage::cached(suite).is_some());
    let missing: Vec<&str> = BUILD_TOOLS
        .into_iter()
        .filter(|tool| find_program(tool).is_none())
        .collect();
    if !any_cached && !missing.is_empty() {
        return Some(format!(
            "no guest image cached and missing tools to build one: {}",
            missing.join(", ")
        ));
    }
    None
}

/// Why scenarios with a TAP interface cannot run here, if they cannot (they need root for
/// `ip netns` and TAP devices, and `/dev/net/tun`).
pub fn tap_skip_reason() -> Option<String> {
    if let Some(reason) = skip_reason() {
        return Some(reason);
    }
    if !is_root() {
        return Some("TAP scenarios need root (ip netns, TAP devices)".to_owned());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing".to_owned());
    }
    if find_program("ip").is_none() {
        return Some("ip (iproute2) not found".to_owned());
    }
    None
}

/// A built guest: a kernel and an initramfs for one suite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestImage {
    /// The suite whose packages the image holds.
    pub suite: Suite,
    /// `target/interop/images/<suite>-<key>/`.
    pub dir: PathBuf,
    /// The kernel (`vmlinuz`).
    pub kernel: PathBuf,
    /// The initramfs (`initrd.gz`).
    pub initrd: PathBuf,
    /// `key=value` lines: suite, kernel, pppd version and every package with its version.
    pub manifest: String,
}

impl GuestImage {
    /// Opens the image in `dir` (as `build-guest.sh` leaves it).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the directory is not a complete image.
    pub fn open(suite: Suite, dir: &Path) -> Result<GuestImage> {
        let complete = dir.join("complete");
        if !complete.is_file() {
            return Err(Error::io(
                format!("{} is not a complete image", dir.display()),
                io::Error::from(io::ErrorKind::NotFound),
            ));
        }
        let manifest = fs::read_to_string(dir.join("manifest"))
            .map_err(|e| Error::io(format!("reading {}/manifest", dir.display()), e))?;
        Ok(GuestImage {
            suite,
            dir: dir.to_owned(),
            kernel: dir.join("vmlinuz"),
            initrd: dir.join("initrd.gz"),
            manifest,
        })
    }

    /// The image `build-guest.sh` built last for `suite`, if it is still complete. Does not check
    /// whether newer packages exist.
    pub fn cached(suite: Suite) -> Option<GuestImage> {
        let images = interop_dir().join("images");
        let current = fs::read_to_string(images.join(format!("{suite}.current"))).ok()?;
        GuestImage::open(suite, &images.join(current.trim())).ok()
    }

    /// The image for `suite`, built by `interop/build-guest.sh` unless the current package
    /// versions are cached already. The script runs at most once per suite and process (later
    /// calls return the first answer); when it fails (say, offline) the last cached image is used.
    /// With `PPP_INTEROP_REUSE_IMAGES=1` a cached image is taken without running the script.
    ///
    /// # Errors
    ///
    /// [`Error::ImageBuild`] when the script fails and nothing is cached.
    pub fn ensure(suite: Suite) -> Result<GuestImage> {
        type Cache = Mutex<HashMap<Suite, std::result::Result<GuestImage, String>>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
        let mut cache = cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let reuse = std::env::var(REUSE_IMAGES_ENV).is_ok_and(|v| v == "1");
        let entry = cache.entry(suite).or_insert_with(|| {
            match GuestImage::cached(suite).filter(|_| reuse) {
                Some(image) => Ok(image),
                None => GuestImage::build(suite).map_err(|e| e.to_string()),
            }
        });
        entry.clone().map_err(|detail| Error::ImageBuild {
            suite,
            detail: detail.clone(),
        })
    }

    fn build(suite: Suite) -> Result<GuestImage> {
        let script = package_dir().join("build-guest.sh");
        let started = Instant::now();
        let output = Command::new("bash")
            .arg(&script)
            .arg(suite.codename())
            .env(
                "CARGO_TARGET_DIR",
                interop_dir().parent().unwrap_or(Path::new(".")),
            )
            .stdin(Stdio::null())
            .output();
        let failure = match output {
            Ok(out) if out.status.success() => {
                let stdout = String::from_utf8_lossy(&out.stdout);
                let stderr = String::from_utf8_lossy(&out.stderr);
                for line in stderr.lines() {
                    eprintln!("{line}");
                }
                match stdout.lines().last() {
                    Some(dir) => {
                        let image = GuestImage::open(suite, Path::new(dir.trim()))?;
                        eprintln!(
                            "ppp-interop: {suite} image {} ready in {:.1} s",
                            image.dir.display(),
                            started.elapsed().as_secs_f64()
                        );
                        return Ok(image);
                    }
                    None => "build-guest.sh printed no image directory".to_owned(),
                }
            }
            Ok(out) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!(
                    "{} exited with {}: {}",
                    script.display(),
                    out.status,
                    tail.join("\n")
                )
            }
            Err(e) => format!("cannot run {}: {e}", script.display()),
        };
        match GuestImage::cached(suite) {
            Some(image) => {
                eprintln!(
                    "ppp-interop: warning: {failure}; using the cached image {}",
                    image.dir.display()
                );
                Ok(image)
            }
            None => Err(Error::ImageBuild {
                suite,
                detail: failure,
            }),
        }
    }

    /// A value from the manifest (`kernel`, `pppd`, `suite`).
    pub fn manifest_value(&self, key: &str) -> Option<&str> {
        self.manifest.lines().find_map(|line| {
            line.strip_prefix(key)
                .and_then(|rest| rest.strip_prefix('='))
        })
    }

    /// The pppd version in the image (for example `2.4.9`).
    pub fn pppd_version(&self) -> Option<&str> {
        self.manifest_value("pppd")
    }

    /// The version of a Debian package in the image.
    pub fn package_version(&self, package: &str) -> Option<&str> {
        self.manifest.lines().find_map(|line| {
            line.strip_prefix("package=")
                .and_then(|rest| rest.strip_prefix(package))
                .and_then(|rest| rest.strip_prefix('='))
        })
    }
}

/// How to start a guest.
#[derive(Clone, Debug)]
pub struct GuestConfig {
    /// The kernel and initramfs.
    pub image: GuestImage,
    /// The scenario script; the guest's /init runs it with `sh` in `/tmp`.
    pub script: String,
    /// Give the guest a second serial port (`/dev/ttyS1`) as a unix socket; QEMU then waits for
    /// the harness to connect before it boots the guest.
    pub serial: bool,
    /// Give the guest a third serial port (`/dev/ttyS2`) as a second unix socket (needs
    /// `serial`); QEMU waits for it too.
    pub second_serial: bool,
    /// A TAP interface name for a virtio-net NIC (the guest's `eth0`). QEMU creates it; the
    /// harness brings it up.
    pub tap: Option<String>,
    /// Give the guest a virtio-net NIC whose frames the harness reads and writes on a unix socket
    /// (QEMU's `-netdev stream`, each frame preceded by its length as a 4-byte big-endian
    /// number); needs no root. With `tap` too, this NIC is the guest's second one (`eth1`).
    pub ethernet_socket: bool,
    /// Run QEMU in this network namespace (where the TAP interface then lives).
    pub netns: Option<String>,
    /// Guest memory; 128 MiB is the smallest that boots.
    pub memory_mb: u32,
    /// Further QEMU arguments, appended last.
    pub extra_qemu_args: Vec<String>,
    /// Where QEMU writes the guest console; by default a file in a private temporary directory.
    pub console_path: Option<PathBuf>,
    /// An uncompressed cpio archive appended to the image's initramfs (this stack's programs,
    /// see [`programs`]).
    pub extra_initramfs: Option<PathBuf>,
}

impl GuestConfig {
    /// A configuration with a serial port, no network, 128 MiB and a temporary console file.
    pub fn new(image: GuestImage, script: impl Into<String>) -> Self {
        GuestConfig {
            image,
            script: script.into(),
            serial: true,
            second_serial: false,
            tap: None,
            ethernet_socket: false,
            netns: None,
            memory_mb: 128,
            extra_qemu_args: Vec::new(),
            console_path: None,
            extra_initramfs: None,
        }
    }
}

/// At most this many guests run at once in this process (`PPP_INTEROP_JOBS`, default 2).
struct GuestSlots {
    used: Mutex<usize>,
    freed: Condvar,
}

fn guest_slots() -> &'static GuestSlots {
    static SLOTS: OnceLock<GuestSlots> = OnceLock::new();
    SLOTS.get_or_init(|| GuestSlots {
        used: Mutex::new(0),
        freed: Condvar::new(),
    })
}

#[derive(Debug)]
struct GuestSlot;

impl GuestSlot {
    fn acquire() -> GuestSlot {
        let max = std::env::var(JOBS_ENV)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(2);
        let slots = guest_slots();
        let mut used = slots.used.lock().unwrap_or_else(|p| p.into_inner());
        while *used >= max {
            used = slots.freed.wait(used).unwrap_or_else(|p| p.into_inner());
        }
        *used += 1;
        GuestSlot
    }
}

impl Drop for GuestSlot {
    fn drop(&mut self) {
        let slots = guest_slots();
        let mut used = slots.used.lock().unwrap_or_else(|p| p.into_inner());
        *used = used.saturating_sub(1);
        slots.freed.notify_one();
    }
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A running QEMU guest. Dropping it kills QEMU.
#[derive(Debug)]
pub struct Guest {
    child: Option<Child>,
    run_dir: PathBuf,
    console_path: PathBuf,
    serial: Option<UnixStream>,
    serial2: Option<UnixStream>,
    ethernet: Option<UnixStream>,
    started: Instant,
    _slot: GuestSlot,
}

impl Guest {
    /// Starts QEMU with `config`; returns once the serial socket is connected (when
    /// `config.serial`) and the TAP interface is up (when `config.tap`).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] for file and process errors, [`Error::Qemu`] when QEMU exits early,
    /// [`Error::Timeout`] when its socket or TAP does not appear within 20 s,
    /// [`Error::Network`] when the TAP cannot be brought up.
    pub fn start(config: GuestConfig) -> Result<Guest> {
        let slot = GuestSlot::acquire();
        let run_dir = std::env::temp_dir().join(format!("ppp-interop-{}", unique_suffix()));
        fs::create_dir_all(&run_dir)
            .map_err(|e| Error::io(format!("creating {}", run_dir.display()), e))?;
        let script_path = run_dir.join("script.sh");
        fs::write(&script_path, &config.script)
            .map_err(|e| Error::io(format!("writing {}", script_path.display()), e))?;
        let console_path = config
            .console_path
            .clone()
            .unwrap_or_else(|| run_dir.join("console.log"));
        let socket_path = run_dir.join("ttyS1.sock");
        let socket2_path = run_dir.join("ttyS2.sock");
        let ethernet_path = run_dir.join("eth.sock");
        let qemu_log = run_dir.join("qemu.log");
        let initrd = match &config.extra_initramfs {
            Some(archive) => {
                let combined = run_dir.join("initrd.img");
                programs::concatenate_initramfs(&config.image.initrd, archive, &combined)?;
                combined
            }
            None => config.image.initrd.clone(),
        };

        let mut args: Vec<String> = vec![
            "-accel".into(),
            "tcg".into(),
            "-m".into(),
            config.memory_mb.to_string(),
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-display".into(),
            "none".into(),
            "-no-reboot".into(),
            "-kernel".into(),
            path_arg(&config.image.kernel)?,
            "-initrd".into(),
            path_arg(&initrd)?,
            "-append".into(),
            "console=ttyS0 quiet loglevel=3 panic=-1".into(),
            "-chardev".into(),
            format!("file,id=con,path={}", path_arg(&console_path)?),
            "-serial".into(),
            "chardev:con".into(),
            "-fw_cfg".into(),
            format!("name=opt/ppptest/script,file={}", path_arg(&script_path)?),
        ];
        if config.serial {
            args.push("-chardev".into());
            args.push(format!(
                "socket,id=ser1,path={},server=on,wait=on",
                path_arg(&socket_path)?
            ));
            args.push("-serial".into());
            args.push("chardev:ser1".into());
            if config.second_serial {
                args.push("-chardev".into());
                args.push(format!(
                    "socket,id=ser2,path={},server=on,wait=on",
                    path_arg(&socket2_path)?
                ));
                args.push("-serial".into());
                args.push("chardev:ser2".into());
            }
        }
        if let Some(tap) = &config.tap {
            args.push("-netdev".into());
            args.push(format!("tap,id=n0,ifname={tap},script=no,downscript=no"));
            args.push("-device".into());
            args.push("virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,romfile=".into());
        }
        if config.ethernet_socket {
            args.push("-netdev".into());
            args.push(format!(
                "stream,id=n1,server=on,addr.type=unix,addr.path={}",
                path_arg(&ethernet_path)?
            ));
            args.push("-device".into());
            args.push("virtio-net-pci,netdev=n1,mac=52:54:00:12:34:57,romfile=".into());
        }
        args.extend(config.extra_qemu_args.iter().cloned());

        let mut command = match &config.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns.as_str(), qemu_binary().as_str()]);
                c
            }
            None => Command::new(qemu_binary()),
        };
        let log = File::create(&qemu_log)
            .map_err(|e| Error::io(format!("creating {}", qemu_log.display()), e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| Error::io("duplicating the QEMU log handle", e))?;
        command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        let child = command
            .spawn()
            .map_err(|e| Error::io(format!("starting {}", qemu_binary()), e))?;
        let mut guest = Guest {
            child: Some(child),
            run_dir,
            console_path,
            serial: None,
            serial2: None,
            ethernet: None,
            started: Instant::now(),
            _slot: slot,
        };
        if config.serial {
            let stream = guest.poll_until("the serial socket", Duration::from_secs(20), || {
                UnixStream::connect(&socket_path).ok()
            })?;
            guest.serial = Some(stream);
            if config.second_serial {
                // QEMU creates the second socket once the first has its client.
                let stream = guest.poll_until(
                    "the second serial socket",
                    Duration::from_secs(20),
                    || UnixStream::connect(&socket2_path).ok(),
                )?;
                guest.serial2 = Some(stream);
            }
        }
        if config.ethernet_socket {
            let stream =
                guest.poll_until("the Ethernet socket", Duration::from_secs(20), || {
                    UnixStream::connect(&ethernet_path).ok()
                })?;
            guest.ethernet = Some(stream);
        }
        if let Some(tap) = &config.tap {
            let netns = config.netns.clone();
            guest.poll_until("the TAP interface", Duration::from_secs(20), || {
                ip_command(netns.as_deref(), &["link", "set", tap.as_str(), "up"]).ok()
            })?;
        }
        Ok(guest)
    }

    /// Calls `attempt` every 50 ms until it returns something, QEMU exits, or `limit` passes.
    fn poll_until<T>(
        &mut self,
        what: &str,
        limit: Duration,
        mut attempt: impl FnMut() -> Option<T>,
    ) -> Result<T> {
        let start = Instant::now();
        loop {
            if let Some(value) = attempt() {
                return Ok(value);
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = fs::read_to_string(self.run_dir.join("qemu.log")).unwrap_or_default();
                return Err(Error::Qemu(format!(
                    "exited with {status} before {what} was ready: {}",
                    log.trim()
                )));
            }
            if start.elapsed() > limit {
                return Err(Error::Timeout {
                    what: what.to_owned(),
                    waited: limit,
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// A handle on the guest's `/dev/ttyS1` (the unix socket QEMU serves it on).
    ///
    /// # Errors
    ///
    /// [`Error::NotConfigured`] when the guest was started without `serial`, [`Error::Io`] when
    /// the socket cannot be duplicated.
    pub fn serial(&self) -> Result<UnixStream> {
        self.serial
            .as_ref()
            .ok_or(Error::NotConfigured("the guest has no serial port"))?
            .try_clone()
            .map_err(|e| Error::io("duplicating the serial socket", e))
    }

    /// A handle on the guest's `/dev/ttyS2` (see [`GuestConfig::second_serial`]).
    ///
    /// # Errors
    ///
    /// [`Error::NotConfigured`] when the guest was started without it, [`Error::Io`] when the
    /// socket cannot be duplicated.
    pub fn serial2(&self) -> Result<UnixStream> {
        self.serial2
            .as_ref()
            .ok_or(Error::NotConfigured("the guest has no second serial port"))?
            .try_clone()
            .map_err(|e| Error::io("duplicating the second serial socket", e))
    }

    /// A handle on the guest NIC's Ethernet socket (see [`GuestConfig::ethernet_socket`]).
    ///
    /// # Errors
    ///
    /// [`Error::NotConfigured`] when the guest was started without it, [`Error::Io`] when the
    /// socket cannot be duplicated.
    pub fn ethernet(&self) -> Result<UnixStream> {
        self.ethernet
            .as_ref()
            .ok_or(Error::NotConfigured("the guest has no Ethernet socket"))?
            .try_clone()
            .map_err(|e| Error::io("duplicating the Ethernet socket", e))
    }

    /// Where the console is written.
    pub fn console_path(&self) -> &Path {
        &self.console_path
    }

    /// The console output so far.
    pub fn console_so_far(&self) -> String {
        fs::read(&self.console_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// QEMU's own stdout and stderr so far.
    pub fn qemu_log(&self) -> String {
        fs::read_to_string(self.run_dir.join("qemu.log")).unwrap_or_default()
    }

    /// Time since QEMU was started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Whether QEMU is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Waits until the console contains `needle`. Returns `false` when QEMU exits or `timeout`
    /// passes first.
    pub fn wait_for_console(&mut self, needle: &str, timeout: Duration) -> bool {
        let start = Instant::now();
        loop {
            if self.console_so_far().contains(needle) {
                return true;
            }
            if !self.is_running() || start.elapsed() > timeout {
                return self.console_so_far().contains(needle);
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the guest to power off, killing QEMU after `timeout`, and collects the outcome.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when waiting on QEMU fails.
    pub fn wait(mut self, timeout: Duration) -> Result<GuestOutcome> {
        let start = Instant::now();
        let mut timed_out = false;
        let mut status = None;
        if let Some(mut child) = self.child.take() {
            loop {
                match child.try_wait() {
                    Ok(Some(s)) => {
                        status = Some(s);
                        break;
                    }
                    Ok(None) if start.elapsed() > timeout => {
                        timed_out = true;
                        let _ = child.kill();
                        status = child.wait().ok();
                        break;
                    }
                    Ok(None) => thread::sleep(Duration::from_millis(50)),
                    Err(e) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(Error::io("waiting for QEMU", e));
                    }
                }
            }
        }
        let console = self.console_so_far();
        Ok(GuestOutcome {
            exit_code: parse_exit_code(&console),
            qemu_status: status,
            timed_out,
            elapsed: self.started.elapsed(),
            qemu_log: self.qemu_log(),
            console,
        })
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.run_dir);
    }
}

fn path_arg(path: &Path) -> Result<String> {
    let s = path.to_str().ok_or_else(|| {
        Error::io(
            format!("{} is not UTF-8", path.display()),
            io::Error::from(io::ErrorKind::InvalidInput),
        )
    })?;
    if s.contains(',') {
        return Err(Error::io(
            format!("{s} contains a comma, which QEMU options cannot take"),
            io::Error::from(io::ErrorKind::InvalidInput),
        ));
    }
    Ok(s.to_owned())
}

/// Runs `ip [-n NETNS] ARGS...`.
fn ip_command(netns: Option<&str>, args: &[&str]) -> Result<String> {
    let mut command = Command::new("ip");
    if let Some(ns) = netns {
        command.args(["-n", ns]);
    }
    let out = command
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io("running ip", e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Network(format!(
            "ip {}{}: {}",
            netns.map(|n| format!("-n {n} ")).unwrap_or_default(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// What a guest run left behind.
#[derive(Clone, Debug)]
pub struct GuestOutcome {
    /// The scenario script's exit code, from the `PPPTEST-EXIT=` marker (`None` when the guest
    /// did not get that far).
    pub exit_code: Option<i32>,
    /// The whole console (kernel messages, /init markers, what the script printed, dumped files).
    pub console: String,
    /// QEMU's exit status (`None` if it could not be collected).
    pub qemu_status: Option<ExitStatus>,
    /// Whether QEMU was killed because the guest did not power off in time.
    pub timed_out: bool,
    /// Time from QEMU's start to its end.
    pub elapsed: Duration,
    /// QEMU's own stdout and stderr.
    pub qemu_log: String,
}

impl GuestOutcome {
    /// The contents of `/log/NAME` as /init dumped it at the end of the run.
    pub fn file(&self, name: &str) -> Option<String> {
        console_file(&self.console, name)
    }

    /// The lines of the program that `ppptest-run TAG ...` ran: from `/log/TAG.log` when the run
    /// ended normally, else from the live `[TAG] ` lines on the console.
    pub fn tagged_lines(&self, tag: &str) -> Vec<String> {
        match self.file(&format!("{tag}.log")) {
            Some(text) => text.lines().map(str::to_owned).collect(),
            None => tagged_console_lines(&self.console, tag),
        }
    }

    /// pppd's log lines (run it as `ppptest-run pppd pppd ... logfd 2`).
    pub fn pppd_log(&self) -> Vec<String> {
        self.tagged_lines("pppd")
    }

    /// Whether the script ran to its end and exited with 0.
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }
}

/// The `PPPTEST-EXIT=<rc>` code on a console, if any.
pub fn parse_exit_code(console: &str) -> Option<i32> {
    console.lines().rev().find_map(|line| {
        let rest = &line[line.find(EXIT_MARKER)? + EXIT_MARKER.len()..];
        let digits: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        digits.parse().ok()
    })
}

/// The text /init printed between `PPPTEST-FILE-BEGIN NAME` and `PPPTEST-FILE-END NAME`.
pub fn console_file(console: &str, name: &str) -> Option<String> {
    let begin = format!("PPPTEST-FILE-BEGIN {name}");
    let end = format!("PPPTEST-FILE-END {name}");
    let mut lines = console.lines().skip_while(|line| line.trim_end() != begin);
    lines.next()?;
    let mut text = String::new();
    for line in lines {
        if line.trim_end() == end {
            return Some(text);
        }
        text.push_str(line.strip_suffix('\r').unwrap_or(line));
        text.push('\n');
    }
    None
}

/// The console lines `ppptest-run TAG` echoed live, without their `[TAG] ` prefix.
pub fn tagged_console_lines(console: &str, tag: &str) -> Vec<String> {
    let prefix = format!("[{tag}] ");
    console
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .map(|line| line.trim_end_matches('\r').to_owned())
        .collect()
}

/// The guest shell commands that put `/dev/ttyS1` (the harness's serial socket) in raw mode and
/// run pppd on it in the foreground with debug logging to the console and `/log/pppd.log`,
/// followed by `options` (for example `"noauth lcp-max-configure 3"`). The exit code is pppd's.
///
/// Until the tty is raw the guest echoes what the host sends, so a host driver should not send
/// before pppd's first frame arrived.
pub fn pppd_on_serial(options: &str) -> String {
    format!(
        "stty -F /dev/ttyS1 raw -echo 2>/dev/null\n\
         ppptest-run pppd pppd /dev/ttyS1 115200 local nocrtscts nolock nodetach debug logfd 2 {options}"
    )
}

/// A network namespace that exists as long as this value does (`ip netns add` / `delete`).
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates a namespace named `<prefix>-<pid>-<n>` with its loopback up.
    ///
    /// # Errors
    ///
    /// [`Error::Network`] when `ip netns add` fails (not root, no `ip`).
    pub fn create(prefix: &str) -> Result<NetNs> {
        let name = format!("{prefix}-{}", unique_suffix());
        ip_command(None, &["netns", "add", &name])?;
        let ns = NetNs { name };
        ip_command(Some(&ns.name), &["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NAME ARGS...`, returning its stdout.
    ///
    /// # Errors
    ///
    /// [`Error::Network`] when the command fails.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        ip_command(Some(&self.name), args)
    }

    /// A command that runs `program` inside the namespace (`ip netns exec NAME program`).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = ip_command(None, &["netns", "delete", &self.name]);
    }
}

/// The output of a command run with [`run_with_timeout`].
#[derive(Clone, Debug)]
pub struct CommandOutput {
    /// The exit status (`None` when it was killed on timeout).
    pub status: Option<ExitStatus>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Whether it was killed because it ran past the timeout.
    pub timed_out: bool,
}

/// Runs `command` with stdin closed and its output in memory, killing it after `timeout`.
///
/// # Errors
///
/// [`Error::Io`] when it cannot be started.
pub fn run_with_timeout(mut command: Command, timeout: Duration) -> Result<CommandOutput> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(format!("starting {command:?}"), e))?;
    let stdout = child.stdout.take().map(|mut out| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = out.read_to_end(&mut buf);
            buf
        })
    });
    let stderr = child.stderr.take().map(|mut err| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err.read_to_end(&mut buf);
            buf
        })
    });
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() > timeout => {
                timed_out = true;
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(Error::io("waiting for a command", e)),
        }
    };
    let collect = |handle: Option<thread::JoinHandle<Vec<u8>>>| {
        handle
            .and_then(|h| h.join().ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    };
    Ok(CommandOutput {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
        timed_out,
    })
}

/// A PPP frame read from the serial link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RxFrame {
    /// The protocol field.
    pub protocol: Protocol,
    /// The information field (FCS removed).
    pub payload: Vec<u8>,
    /// When it was complete, since the link was opened.
    pub at: Duration,
}

/// The guest's `/dev/ttyS1` as seen from the host: reads and writes raw bytes, decodes received
/// frames with `ppp-frame`, and records both directions (raw bytes and a pcap of the frames)
/// when created by a [`ScenarioRun`].
#[derive(Debug)]
pub struct SerialLink {
    stream: UnixStream,
    rx_decoder: AsyncDecoder,
    tx_decoder: AsyncDecoder,
    frames: std::collections::VecDeque<RxFrame>,
    recorder: Option<SerialRecorder>,
    opened: Instant,
    /// Bytes received that were delivered by [`SerialLink::next_frame`] or
    /// [`SerialLink::read_bytes`].
    received: u64,
    closed: bool,
}

#[derive(Debug)]
struct SerialRecorder {
    pcap: PcapWriter<BufWriter<File>>,
    raw_rx: BufWriter<File>,
    raw_tx: BufWriter<File>,
}

/// The most bytes a [`SerialLink`] keeps decoded but unread (older frames are dropped).
const MAX_QUEUED_FRAMES: usize = 1024;

impl SerialLink {
    /// Wraps a connected stream; records nothing.
    pub fn new(stream: UnixStream) -> SerialLink {
        SerialLink {
            stream,
            rx_decoder: AsyncDecoder::new(DecoderConfig::default()),
            tx_decoder: AsyncDecoder::new(DecoderConfig::default()),
            frames: std::collections::VecDeque::new(),
            recorder: None,
            opened: Instant::now(),
            received: 0,
            closed: false,
        }
    }

    /// Wraps a connected stream and records into `dir`: `serial-rx.bin`, `serial-tx.bin` (the
    /// raw bytes) and `serial.pcap` (decoded frames, `LINKTYPE_PPP_WITH_DIR`).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the files cannot be created.
    pub fn recording(stream: UnixStream, dir: &Path) -> Result<SerialLink> {
        let create = |name: &str| {
            let path = dir.join(name);
            File::create(&path)
                .map(BufWriter::new)
                .map_err(|e| Error::io(format!("creating {}", path.display()), e))
        };
        let pcap = PcapWriter::new(create("serial.pcap")?, LinkType::PppWithDirection)
            .map_err(|e| Error::io("writing the pcap header", e))?;
        let mut link = SerialLink::new(stream);
        link.recorder = Some(SerialRecorder {
            pcap,
            raw_rx: create("serial-rx.bin")?,
            raw_tx: create("serial-tx.bin")?,
        });
        Ok(link)
    }

    /// The underlying stream.
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// The decoder of received bytes (for its statistics, or to change its ACCM).
    pub fn rx_decoder(&mut self) -> &mut AsyncDecoder {
        &mut self.rx_decoder
    }

    /// Total bytes received so far.
    pub fn bytes_received(&self) -> u64 {
        self.received
    }

    /// Writes `bytes` to the guest's serial port (recorded as sent).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the socket fails.
    pub fn write_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream
            .write_all(bytes)
            .map_err(|e| Error::io("writing to the serial socket", e))?;
        if let Some(rec) = self.recorder.as_mut() {
            let _ = rec.raw_tx.write_all(bytes);
            let mut input = bytes;
            while let Some(result) = self.tx_decoder.decode(&mut input) {
                if let Ok(frame) = result {
                    let _ = rec.pcap.write_ppp(
                        wall_clock(),
                        Direction::Sent,
                        frame.protocol,
                        frame.payload,
                    );
                }
            }
        }
        Ok(())
    }

    /// Reads what arrives within `timeout` (an empty vector when nothing did). Received frames
    /// are also decoded and queued for [`SerialLink::next_frame`].
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the socket fails; end of stream (QEMU exited) gives an empty vector.
    pub fn read_bytes(&mut self, timeout: Duration) -> Result<Vec<u8>> {
        let timeout = timeout.max(Duration::from_millis(1));
        self.stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| Error::io("setting the serial read timeout", e))?;
        let mut buf = [0u8; 4096];
        let n = match self.stream.read(&mut buf) {
            Ok(0) => {
                self.closed = true;
                0
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                0
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                self.closed = true;
                0
            }
            Err(e) => return Err(Error::io("reading the serial socket", e)),
        };
        let bytes = buf[..n].to_vec();
        self.received += n as u64;
        self.absorb(&bytes);
        Ok(bytes)
    }

    fn absorb(&mut self, bytes: &[u8]) {
        let at = self.opened.elapsed();
        if let Some(rec) = self.recorder.as_mut() {
            let _ = rec.raw_rx.write_all(bytes);
        }
        let mut input = bytes;
        while let Some(result) = self.rx_decoder.decode(&mut input) {
            let Ok(frame) = result else { continue };
            if let Some(rec) = self.recorder.as_mut() {
                let _ = rec.pcap.write_ppp(
                    wall_clock(),
                    Direction::Received,
                    frame.protocol,
                    frame.payload,
                );
            }
            if self.frames.len() >= MAX_QUEUED_FRAMES {
                self.frames.pop_front();
            }
            self.frames.push_back(RxFrame {
                protocol: frame.protocol,
                payload: frame.payload.to_vec(),
                at,
            });
        }
    }

    /// The next frame received, waiting up to `timeout` for it (`None` on timeout or when QEMU
    /// closed the socket).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the socket fails.
    pub fn next_frame(&mut self, timeout: Duration) -> Result<Option<RxFrame>> {
        let start = Instant::now();
        loop {
            if let Some(frame) = self.frames.pop_front() {
                return Ok(Some(frame));
            }
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Ok(None);
            }
            let bytes = self.read_bytes(left.min(Duration::from_millis(500)))?;
            if bytes.is_empty() && self.peer_closed() {
                return Ok(None);
            }
        }
    }

    /// Waits up to `timeout` for a frame that `want` accepts, skipping (but recording) others.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the socket fails.
    pub fn expect_frame(
        &mut self,
        timeout: Duration,
        mut want: impl FnMut(&RxFrame) -> bool,
    ) -> Result<Option<RxFrame>> {
        let start = Instant::now();
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            match self.next_frame(left)? {
                Some(frame) if want(&frame) => return Ok(Some(frame)),
                Some(_) => continue,
                None => return Ok(None),
            }
        }
    }

    /// Whether the guest side closed the socket (QEMU exited).
    pub fn peer_closed(&self) -> bool {
        self.closed
    }

    /// Flushes the recording files.
    pub fn flush(&mut self) {
        if let Some(rec) = self.recorder.as_mut() {
            let _ = rec.pcap.flush();
            let _ = rec.raw_rx.flush();
            let _ = rec.raw_tx.flush();
        }
    }
}

impl Drop for SerialLink {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The largest Ethernet frame an [`EthernetLink`] accepts (QEMU's own limit for stream netdevs
/// is 69632 bytes; a longer length prefix means the stream is out of step).
pub const MAX_ETHERNET_FRAME: usize = 69_632;

/// The guest NIC's frames as seen from the host through QEMU's stream netdev: each frame on the
/// unix socket is preceded by its length (4 bytes, big-endian). Records an Ethernet pcap when
/// created by a [`ScenarioRun`].
#[derive(Debug)]
pub struct EthernetLink {
    stream: UnixStream,
    buffer: Vec<u8>,
    pcap: Option<PcapWriter<BufWriter<File>>>,
    closed: bool,
}

impl EthernetLink {
    /// Wraps a connected stream; records nothing.
    pub fn new(stream: UnixStream) -> EthernetLink {
        EthernetLink {
            stream,
            buffer: Vec::new(),
            pcap: None,
            closed: false,
        }
    }

    /// Wraps a connected stream and records both directions into `dir/ethernet.pcap`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be created.
    pub fn recording(stream: UnixStream, dir: &Path) -> Result<EthernetLink> {
        let path = dir.join("ethernet.pcap");
        let file = File::create(&path)
            .map(BufWriter::new)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        let pcap = PcapWriter::new(file, LinkType::Ethernet)
            .map_err(|e| Error::io("writing the pcap header", e))?;
        let mut link = EthernetLink::new(stream);
        link.pcap = Some(pcap);
        Ok(link)
    }

    /// Sends one Ethernet frame (destination MAC first, no FCS) to the guest.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the socket fails or the frame is longer than [`MAX_ETHERNET_FRAME`].
    pub fn send_frame(&mut self, frame: &[u8]) -> Result<()> {
        let len = u32::try_from(frame.len())
            .ok()
            .filter(|&n| n as usize <= MAX_ETHERNET_FRAME)
            .ok_or_else(|| {
                Error::io(
                    format!("an Ethernet frame of {} bytes", frame.len()),
                    io::Error::from(io::ErrorKind::InvalidInput),
                )
            })?;
        let mut wire = Vec::with_capacity(4 + frame.len());
        wire.extend_from_slice(&len.to_be_bytes());
        wire.extend_from_slice(frame);
        self.stream
            .write_all(&wire)
            .map_err(|e| Error::io("writing to the Ethernet socket", e))?;
        if let Some(pcap) = self.pcap.as_mut() {
            let _ = pcap.write_packet(wall_clock(), frame);
        }
        Ok(())
    }

    /// The next frame from the guest, waiting up to `timeout` (`None` on timeout or when QEMU
    /// closed the socket).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the socket fails or announces a frame longer than
    /// [`MAX_ETHERNET_FRAME`].
    pub fn recv_frame(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>> {
        let start = Instant::now();
        loop {
            if let Some(frame) = self.take_buffered()? {
                if let Some(pcap) = self.pcap.as_mut() {
                    let _ = pcap.write_packet(wall_clock(), &frame);
                }
                return Ok(Some(frame));
            }
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() || self.closed {
                return Ok(None);
            }
            self.stream
                .set_read_timeout(Some(left.min(Duration::from_millis(500))))
                .map_err(|e| Error::io("setting the Ethernet read timeout", e))?;
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk) {
                Ok(0) => self.closed = true,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => self.closed = true,
                Err(e) => return Err(Error::io("reading the Ethernet socket", e)),
            }
        }
    }

    /// Waits up to `timeout` for a frame that `want` accepts, skipping (but recording) others.
    ///
    /// # Errors
    ///
    /// As [`EthernetLink::recv_frame`].
    pub fn expect_frame(
        &mut self,
        timeout: Duration,
        mut want: impl FnMut(&[u8]) -> bool,
    ) -> Result<Option<Vec<u8>>> {
        let start = Instant::now();
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            match self.recv_frame(left)? {
                Some(frame) if want(&frame) => return Ok(Some(frame)),
                Some(_) => continue,
                None => return Ok(None),
            }
        }
    }

    fn take_buffered(&mut self) -> Result<Option<Vec<u8>>> {
        let Some(prefix) = self.buffer.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        if len > MAX_ETHERNET_FRAME {
            self.buffer.clear();
            return Err(Error::io(
                format!("the Ethernet socket announced a {len}-byte frame"),
                io::Error::from(io::ErrorKind::InvalidData),
            ));
        }
        if self.buffer.len() < 4 + len {
            return Ok(None);
        }
        let frame = self.buffer[4..4 + len].to_vec();
        self.buffer.drain(..4 + len);
        Ok(Some(frame))
    }

    /// Whether QEMU closed the socket.
    pub fn peer_closed(&self) -> bool {
        self.closed
    }
}

impl Drop for EthernetLink {
    fn drop(&mut self) {
        if let Some(pcap) = self.pcap.as_mut() {
            let _ = pcap.flush();
        }
    }
}

fn wall_clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// How a scenario ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScenarioResult {
    /// The driver returned `Ok` and the guest finished in time.
    Passed {
        /// Wall time of the whole scenario (guest start to power-off).
        elapsed: Duration,
    },
    /// The harness cannot run here; the reason says why.
    Skipped(String),
    /// The scenario failed; its logs are in `log_dir`.
    Failed {
        /// What went wrong.
        message: String,
        /// Where the console, trace and captures were kept.
        log_dir: PathBuf,
    },
}

/// The host-side driver of a scenario: drives the running guest and returns `Err` with a message
/// (or panics) when an expectation fails.
pub type Driver<'a> = Box<dyn FnOnce(&mut ScenarioRun) -> Result<(), String> + 'a>;

/// One interop scenario: a suite, a guest script, what the guest needs, and a time limit.
#[derive(Clone, Debug)]
pub struct Scenario {
    name: String,
    suite: Suite,
    script: String,
    serial: bool,
    second_serial: bool,
    tap: bool,
    ethernet_socket: bool,
    memory_mb: u32,
    timeout: Duration,
    extra_qemu_args: Vec<String>,
    our_programs: bool,
}

impl Scenario {
    /// A scenario named `name` (used for the log directory) running `script` in a `suite` guest
    /// with a serial port, no network, 128 MiB and a 120 s limit.
    pub fn new(name: impl Into<String>, suite: Suite, script: impl Into<String>) -> Scenario {
        Scenario {
            name: name.into(),
            suite,
            script: script.into(),
            serial: true,
            second_serial: false,
            tap: false,
            ethernet_socket: false,
            memory_mb: 128,
            timeout: Duration::from_secs(120),
            extra_qemu_args: Vec::new(),
            our_programs: false,
        }
    }

    /// Puts this stack's programs into the guest (`/opt/ppptest/bin/access-concentrator`,
    /// `pppoe-client`, `dial-out`; see [`programs`]); they are built for it first.
    #[must_use]
    pub fn with_our_programs(mut self) -> Scenario {
        self.our_programs = true;
        self
    }

    /// Whether the guest gets `/dev/ttyS1` as a socket (default yes).
    #[must_use]
    pub fn serial(mut self, serial: bool) -> Scenario {
        self.serial = serial;
        self
    }

    /// Gives the guest a third serial port, `/dev/ttyS2`, as a second unix socket
    /// ([`Guest::serial2`]): two lines for Multilink.
    #[must_use]
    pub fn with_second_serial(mut self) -> Scenario {
        self.second_serial = true;
        self
    }

    /// Gives the guest a virtio-net `eth0` whose host side is the TAP [`ScenarioRun::tap`] in a
    /// fresh network namespace [`ScenarioRun::netns`] (needs root).
    #[must_use]
    pub fn with_tap(mut self) -> Scenario {
        self.tap = true;
        self
    }

    /// Gives the guest a virtio-net `eth0` (`eth1` with a TAP too) whose frames the driver reads
    /// and writes through [`ScenarioRun::ethernet_link`]; needs no root.
    #[must_use]
    pub fn with_ethernet_socket(mut self) -> Scenario {
        self.ethernet_socket = true;
        self
    }

    /// The guest's memory.
    #[must_use]
    pub fn memory_mb(mut self, memory_mb: u32) -> Scenario {
        self.memory_mb = memory_mb;
        self
    }

    /// The limit for the whole run, from QEMU's start to the guest's power-off.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Scenario {
        self.timeout = timeout;
        self
    }

    /// Further QEMU arguments.
    #[must_use]
    pub fn extra_qemu_args(mut self, args: impl IntoIterator<Item = String>) -> Scenario {
        self.extra_qemu_args.extend(args);
        self
    }

    /// The scenario's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The suite it runs against.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Runs the scenario as a test: prints and returns on a skip (panics on a skip when
    /// `PPP_INTEROP_REQUIRED=1`), panics on a failure with the message and the log directory.
    pub fn run(self, driver: impl FnOnce(&mut ScenarioRun) -> Result<(), String>) {
        let name = format!("{}-{}", self.name, self.suite);
        match self.try_run(Box::new(driver)) {
            ScenarioResult::Passed { elapsed } => {
                eprintln!(
                    "ppp-interop: scenario {name} passed in {:.1} s",
                    elapsed.as_secs_f64()
                );
            }
            ScenarioResult::Skipped(reason) => {
                if interop_required() && !reason.starts_with("suite not selected") {
                    panic!("scenario {name} cannot run but {REQUIRED_ENV}=1: {reason}");
                }
                eprintln!("ppp-interop: SKIPPED scenario {name}: {reason}");
            }
            ScenarioResult::Failed { message, log_dir } => {
                panic!(
                    "scenario {name} failed: {message}\n  logs kept in {}",
                    log_dir.display()
                );
            }
        }
    }

    /// Runs the scenario and reports how it ended, without panicking.
    pub fn try_run(self, driver: Driver<'_>) -> ScenarioResult {
        if !self.suite.is_selected() {
            return ScenarioResult::Skipped(format!("suite not selected by {SUITES_ENV}"));
        }
        let reason = if self.tap {
            tap_skip_reason()
        } else {
            skip_reason()
        };
        if let Some(reason) = reason {
            return ScenarioResult::Skipped(reason);
        }
        let image = match GuestImage::ensure(self.suite) {
            Ok(image) => image,
            Err(e) => return ScenarioResult::Skipped(e.to_string()),
        };
        let log_dir = interop_dir()
            .join("logs")
            .join(format!("{}-{}", self.name, self.suite));
        let _ = fs::remove_dir_all(&log_dir);
        if let Err(e) = fs::create_dir_all(&log_dir) {
            return ScenarioResult::Failed {
                message: format!("cannot create {}: {e}", log_dir.display()),
                log_dir,
            };
        }
        let mut run = match ScenarioRun::start(&self, image, &log_dir) {
            Ok(run) => run,
            Err(e) => {
                return ScenarioResult::Failed {
                    message: e.to_string(),
                    log_dir,
                };
            }
        };
        let driven = panic::catch_unwind(AssertUnwindSafe(|| driver(&mut run)));
        let mut failure = match driven {
            Ok(Ok(())) => None,
            Ok(Err(message)) => Some(message),
            Err(payload) => Some(panic_message(payload.as_ref())),
        };
        if let Some(message) = &failure {
            run.trace(format!("driver failed: {message}"));
        }
        let mut left = self.timeout.saturating_sub(run.elapsed());
        if failure.is_some() {
            // Give the guest a moment to print what it was doing, then stop it.
            left = left.min(FAILURE_GRACE);
        }
        match run.wait_exit(left) {
            Ok(outcome) => {
                if outcome.timed_out && failure.is_none() {
                    failure = Some(format!(
                        "the guest did not power off within {:?}",
                        self.timeout
                    ));
                }
            }
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
        let elapsed = run.elapsed();
        run.finish();
        match failure {
            None => {
                if std::env::var_os(KEEP_LOGS_ENV).is_none() {
                    let _ = fs::remove_dir_all(&log_dir);
                }
                ScenarioResult::Passed { elapsed }
            }
            Some(message) => ScenarioResult::Failed { message, log_dir },
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".to_owned()
    }
}

/// A scenario in progress, handed to its driver.
#[derive(Debug)]
pub struct ScenarioRun {
    suite: Suite,
    image: GuestImage,
    log_dir: PathBuf,
    guest: Option<Guest>,
    outcome: Option<GuestOutcome>,
    trace: Option<BufWriter<File>>,
    netns: Option<NetNs>,
    tap: Option<String>,
    serial_taken: bool,
    ethernet_taken: bool,
    started: Instant,
}

/// How long a guest may go on after its driver failed, so its console shows what it was doing.
const FAILURE_GRACE: Duration = Duration::from_secs(3);

/// The TAP interface name inside a scenario's namespace (namespaces make it unique).
pub const SCENARIO_TAP: &str = "tap0";

impl ScenarioRun {
    fn start(scenario: &Scenario, image: GuestImage, log_dir: &Path) -> Result<ScenarioRun> {
        let trace_path = log_dir.join("trace.log");
        let trace = File::create(&trace_path)
            .map(BufWriter::new)
            .map_err(|e| Error::io(format!("creating {}", trace_path.display()), e))?;
        let netns = if scenario.tap {
            Some(NetNs::create("pppi")?)
        } else {
            None
        };
        let tap = scenario.tap.then(|| SCENARIO_TAP.to_owned());
        let script_copy = log_dir.join("script.sh");
        let _ = fs::write(&script_copy, &scenario.script);
        let mut run = ScenarioRun {
            suite: scenario.suite,
            image: image.clone(),
            log_dir: log_dir.to_owned(),
            guest: None,
            outcome: None,
            trace: Some(trace),
            netns,
            tap: tap.clone(),
            serial_taken: false,
            ethernet_taken: false,
            started: Instant::now(),
        };
        run.trace(format!(
            "scenario {} suite {} image {} (pppd {})",
            scenario.name,
            scenario.suite,
            image.dir.display(),
            image.pppd_version().unwrap_or("?")
        ));
        let config = GuestConfig {
            image,
            script: scenario.script.clone(),
            serial: scenario.serial,
            second_serial: scenario.second_serial,
            ethernet_socket: scenario.ethernet_socket,
            tap,
            netns: run.netns.as_ref().map(|ns| ns.name().to_owned()),
            memory_mb: scenario.memory_mb,
            extra_qemu_args: scenario.extra_qemu_args.clone(),
            console_path: Some(log_dir.join("console.log")),
            extra_initramfs: match scenario.our_programs {
                true => Some(programs::GuestPrograms::ensure()?.archive),
                false => None,
            },
        };
        let guest = Guest::start(config)?;
        run.started = guest.started;
        run.trace("guest started");
        run.guest = Some(guest);
        Ok(run)
    }

    /// The suite under test.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The guest image.
    pub fn image(&self) -> &GuestImage {
        &self.image
    }

    /// Where this run's logs go (kept when it fails).
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// Time since QEMU started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The running guest (`None` once it was waited for).
    pub fn guest(&mut self) -> Option<&mut Guest> {
        self.guest.as_mut()
    }

    /// The scenario's network namespace (TAP scenarios only).
    pub fn netns(&self) -> Option<&NetNs> {
        self.netns.as_ref()
    }

    /// The host side of the guest's `eth0` (TAP scenarios only), inside [`ScenarioRun::netns`].
    pub fn tap(&self) -> Option<&str> {
        self.tap.as_deref()
    }

    /// Appends a line to the run's `trace.log`, stamped with the time since QEMU started.
    pub fn trace(&mut self, line: impl fmt::Display) {
        let at = self.started.elapsed().as_secs_f64();
        if let Some(trace) = self.trace.as_mut() {
            let _ = writeln!(trace, "{at:9.3} {line}");
        }
    }

    /// The guest's serial port as a recording [`SerialLink`] (its files go to the log directory).
    ///
    /// # Errors
    ///
    /// When the scenario has no serial port or the guest was already waited for.
    pub fn serial_link(&mut self) -> Result<SerialLink, String> {
        let stream = self
            .guest
            .as_ref()
            .ok_or("the guest already exited")?
            .serial()?;
        if self.serial_taken {
            Ok(SerialLink::new(stream))
        } else {
            self.serial_taken = true;
            Ok(SerialLink::recording(stream, &self.log_dir)?)
        }
    }

    /// The guest NIC's Ethernet socket as an [`EthernetLink`]; the first one records
    /// `ethernet.pcap` in the log directory.
    ///
    /// # Errors
    ///
    /// When the scenario has no Ethernet socket or the guest was already waited for.
    pub fn ethernet_link(&mut self) -> Result<EthernetLink, String> {
        let stream = self
            .guest
            .as_ref()
            .ok_or("the guest already exited")?
            .ethernet()?;
        if self.ethernet_taken {
            Ok(EthernetLink::new(stream))
        } else {
            self.ethernet_taken = true;
            Ok(EthernetLink::recording(stream, &self.log_dir)?)
        }
    }

    /// Waits until the console contains `needle`.
    ///
    /// # Errors
    ///
    /// When the guest exits or `timeout` passes first.
    pub fn wait_for_console(&mut self, needle: &str, timeout: Duration) -> Result<(), String> {
        let guest = self.guest.as_mut().ok_or("the guest already exited")?;
        if guest.wait_for_console(needle, timeout) {
            self.trace(format!("console shows {needle:?}"));
            Ok(())
        } else {
            Err(format!(
                "the console did not show {needle:?} within {timeout:?}"
            ))
        }
    }

    /// Waits for the guest to power off (killing it after `timeout`) and returns the outcome;
    /// later calls return the same outcome.
    ///
    /// # Errors
    ///
    /// When QEMU cannot be waited for.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<&GuestOutcome, String> {
        if self.outcome.is_none() {
            let guest = self.guest.take().ok_or("no guest")?;
            let outcome = guest.wait(timeout)?;
            self.trace(format!(
                "guest ended after {:.1} s: script exit {:?}, timed out {}",
                outcome.elapsed.as_secs_f64(),
                outcome.exit_code,
                outcome.timed_out
            ));
            self.outcome = Some(outcome);
        }
        self.outcome.as_ref().ok_or_else(|| "no outcome".to_owned())
    }

    /// The outcome, once [`ScenarioRun::wait_exit`] was called.
    pub fn outcome(&self) -> Option<&GuestOutcome> {
        self.outcome.as_ref()
    }

    /// Runs `program args...` in the scenario's network namespace (or on the host when it has
    /// none), killing it after `timeout`; the command line and output go to the trace.
    ///
    /// # Errors
    ///
    /// When it cannot be started.
    pub fn host_command(
        &mut self,
        program: &str,
        args: &[&str],
        timeout: Duration,
    ) -> Result<CommandOutput, String> {
        let mut command = match &self.netns {
            Some(ns) => ns.command(program),
            None => Command::new(program),
        };
        command.args(args);
        self.trace(format!("run {program} {}", args.join(" ")));
        let out = run_with_timeout(command, timeout)?;
        self.trace(format!(
            "-> status {:?} timed out {}\n--- stdout\n{}--- stderr\n{}---",
            out.status, out.timed_out, out.stdout, out.stderr
        ));
        Ok(out)
    }

    fn finish(&mut self) {
        if let Some(outcome) = &self.outcome {
            let _ = fs::write(self.log_dir.join("qemu.log"), &outcome.qemu_log);
        }
        if let Some(mut trace) = self.trace.take() {
            let _ = trace.flush();
        }
        self.guest = None;
        self.netns = None;
    }
}

impl Drop for ScenarioRun {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONSOLE: &str = "[    1.000000] something\r\n\
PPPTEST-BOOT kernel=6.1.0-56-amd64 uptime=2.31\n\
PPPTEST-START uptime=2.60\n\
[pppd] using channel 1\n\
[pppd] sent [LCP ConfReq id=0x1 <asyncmap 0x0> <magic 0x39f13d83>]\n\
PPPTEST-FILE-BEGIN pppd.log\n\
using channel 1\n\
sent [LCP ConfReq id=0x1 <asyncmap 0x0> <magic 0x39f13d83>]\n\
PPPTEST-FILE-END pppd.log\n\
PPPTEST-EXIT=16 uptime=11.87\n";

    #[test]
    fn exit_code_is_parsed_from_the_marker() {
        let cases = [
            (CONSOLE, Some(16)),
            ("PPPTEST-EXIT=0 uptime=1\n", Some(0)),
            ("[  3.0] x\nPPPTEST-EXIT=125\r\n", Some(125)),
            ("no marker\n", None),
            ("PPPTEST-EXIT=\n", None),
        ];
        for (console, want) in cases {
            assert_eq!(parse_exit_code(console), want, "{console:?}");
        }
    }

    #[test]
    fn dumped_files_and_tagged_lines_are_extracted() {
        let file = console_file(CONSOLE, "pppd.log").expect("file present");
        assert_eq!(
            file,
            "using channel 1\nsent [LCP ConfReq id=0x1 <asyncmap 0x0> <magic 0x39f13d83>]\n"
        );
        assert_eq!(console_file(CONSOLE, "other.log"), None);
        assert_eq!(
            console_file("PPPTEST-FILE-BEGIN x\nunterminated", "x"),
            None
        );
        let tagged = tagged_console_lines(CONSOLE, "pppd");
        assert_eq!(tagged.len(), 2);
        assert!(tagged[1].starts_with("sent [LCP ConfReq"));
    }

    #[test]
    fn outcome_prefers_the_dumped_log_over_console_lines() {
        let outcome = GuestOutcome {
            exit_code: parse_exit_code(CONSOLE),
            console: CONSOLE.to_owned(),
            qemu_status: None,
            timed_out: false,
            elapsed: Duration::ZERO,
            qemu_log: String::new(),
        };
        assert_eq!(outcome.pppd_log().len(), 2);
        assert!(!outcome.succeeded());
        let cut = CONSOLE.split("PPPTEST-FILE-BEGIN").next().unwrap_or("");
        let outcome = GuestOutcome {
            console: cut.to_owned(),
            exit_code: None,
            ..outcome
        };
        assert_eq!(
            outcome.pppd_log().len(),
            2,
            "falls back to the [pppd] lines"
        );
    }

    #[test]
    fn suites_round_trip_their_codenames() {
        for suite in Suite::ALL {
            assert_eq!(Suite::from_codename(suite.codename()), Some(suite));
            assert_eq!(suite.to_string(), suite.codename());
        }
        assert_eq!(Suite::from_codename("sid"), None);
    }

    #[test]
    fn manifest_values_are_looked_up() {
        let image = GuestImage {
            suite: Suite::Bookworm,
            dir: PathBuf::from("/nonexistent"),
            kernel: PathBuf::from("/nonexistent/vmlinuz"),
            initrd: PathBuf::from("/nonexistent/initrd.gz"),
            manifest: "suite=bookworm\nkernel=6.1.0-56-amd64\npppd=2.4.9\n\
                       package=ppp=2.4.9-1+1.1+b1\npackage=pppoe=3.15-2\n"
                .to_owned(),
        };
        assert_eq!(image.pppd_version(), Some("2.4.9"));
        assert_eq!(image.manifest_value("kernel"), Some("6.1.0-56-amd64"));
        assert_eq!(image.package_version("pppoe"), Some("3.15-2"));
        assert_eq!(image.package_version("ppp"), Some("2.4.9-1+1.1+b1"));
        assert_eq!(image.package_version("pp"), None);
    }

    #[test]
    fn ethernet_link_frames_with_length_prefixes() {
        let (host, mut guest) = UnixStream::pair().expect("socketpair");
        let mut link = EthernetLink::new(host);
        let frame: Vec<u8> = (0..60u8).collect();
        let mut wire = Vec::new();
        for _ in 0..2 {
            wire.extend_from_slice(&60u32.to_be_bytes());
            wire.extend_from_slice(&frame);
        }
        // Split mid-prefix to exercise reassembly.
        guest.write_all(&wire[..2]).expect("write");
        guest.write_all(&wire[2..]).expect("write");
        for _ in 0..2 {
            let got = link.recv_frame(Duration::from_secs(5)).expect("read");
            assert_eq!(got.as_deref(), Some(&frame[..]));
        }
        link.send_frame(&frame).expect("send");
        let mut echoed = vec![0u8; 64];
        guest.read_exact(&mut echoed).expect("read back");
        assert_eq!(&echoed[..4], &60u32.to_be_bytes());
        assert_eq!(&echoed[4..], &frame[..]);
        guest.write_all(&u32::MAX.to_be_bytes()).expect("write");
        assert!(
            link.recv_frame(Duration::from_secs(5)).is_err(),
            "oversized length"
        );
        drop(guest);
        assert_eq!(link.recv_frame(Duration::from_secs(5)).expect("eof"), None);
        assert!(link.peer_closed());
    }

    #[test]
    fn serial_link_decodes_and_records_frames() {
        let (host, mut guest) = UnixStream::pair().expect("socketpair");
        let dir = std::env::temp_dir().join(format!("ppp-interop-unit-{}", unique_suffix()));
        fs::create_dir_all(&dir).expect("temp dir");
        let mut link = SerialLink::recording(host, &dir).expect("recording link");
        // An LCP Configure-Request (id 1, magic 0x01020304) as pppd frames it before LCP is
        // open: every control character escaped, FCS-16 little-endian.
        let mut encoder = ppp_frame::AsyncEncoder::new(ppp_frame::EncoderConfig::default());
        let payload = [0x01, 0x01, 0x00, 0x0A, 0x05, 0x06, 0x01, 0x02, 0x03, 0x04];
        let mut wire = b"echoed junk\r\n".to_vec();
        encoder.encode(Protocol::Lcp, &payload, &mut wire);
        assert!(
            wire.windows(8)
                .any(|w| w == [0x7E, 0xFF, 0x7D, 0x23, 0xC0, 0x21, 0x7D, 0x21])
        );
        guest.write_all(&wire).expect("write");
        let frame = link
            .next_frame(Duration::from_secs(5))
            .expect("read")
            .expect("a frame");
        assert_eq!(frame.protocol, Protocol::Lcp);
        assert_eq!(frame.payload, payload);
        link.write_bytes(&wire).expect("write back");
        drop(guest);
        assert_eq!(link.next_frame(Duration::from_secs(5)).expect("eof"), None);
        link.flush();
        let pcap = fs::read(dir.join("serial.pcap")).expect("pcap");
        // Header + 2 records of (16 + 1 direction + 4 address/control/protocol + 10).
        assert_eq!(pcap.len(), 24 + 2 * (16 + 1 + 4 + payload.len()));
        assert_eq!(fs::read(dir.join("serial-rx.bin")).expect("raw rx"), wire);
        let _ = fs::remove_dir_all(&dir);
    }
}
