//! Network namespaces for tests and harnesses: a private network stack per test, so PPPoE,
//! TUN devices, routes and addresses never touch the host's.
//!
//! - [`NetNs::create`] makes a namespace (`ip netns add`) that is deleted when dropped.
//! - [`NetNs::run`] runs a closure on a fresh thread that has entered the namespace; sockets and
//!   TUN devices created there belong to it for their whole life, and may then be used from any
//!   thread. [`NetNs::run_async`] does the same with a current-thread tokio runtime.
//! - [`NetNs::exec`] and [`NetNs::command`] run external tools inside (`ip netns exec`).
//! - [`veth_pair`] joins two namespaces with a virtual Ethernet cable.
//! - [`skip_reason`] and [`skip_without_netns`] let tests that need root skip under a plain
//!   `cargo test`, and fail when `PPP_NETNS_REQUIRED=1` (as CI sets it).
//!
//! Use only documentation addresses inside (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
//! 2001:db8::/32).
//!
//! ```no_run
//! use ppp_tokio::netns::{self, NetNs};
//! use ppp_tokio::packet::PacketSocket;
//!
//! # fn test() -> std::io::Result<()> {
//! if netns::skip_without_netns("my_test") {
//!     return Ok(());
//! }
//! let client = NetNs::create("client")?;
//! let server = NetNs::create("server")?;
//! netns::veth_pair(&client, "veth-c", &server, "veth-s")?;
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! // Sockets made inside a namespace, registered with the runtime of this thread.
//! let handle = runtime.handle().clone();
//! let socket = client.run(|| {
//!     let _entered = handle.enter();
//!     PacketSocket::bind("veth-c")
//! })??;
//! runtime.block_on(async { socket.send(&[0; 60]).await })?;
//! # Ok(())
//! # }
//! ```

use std::ffi::OsStr;
use std::fs::File;
use std::future::Future;
use std::io::{self, Write as _};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use tracing::{debug, warn};

use crate::netconfig;

/// The environment variable that turns a skip into a failure.
pub const REQUIRED_ENV: &str = "PPP_NETNS_REQUIRED";

/// Where `ip netns` keeps its namespaces.
const NETNS_DIR: &str = "/run/netns";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A named network namespace.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    owned: bool,
}

impl NetNs {
    /// Creates a namespace named `PREFIX-PID-N` (unique per process and call) with its loopback
    /// interface up. It is deleted when the `NetNs` is dropped.
    ///
    /// # Errors
    ///
    /// `ip netns add` fails (not root, no `ip`, namespaces not permitted).
    pub fn create(prefix: &str) -> io::Result<NetNs> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        netconfig::ip(&["netns", "add", name.as_str()])?;
        let netns = NetNs { name, owned: true };
        netconfig::ip(&["-n", netns.name.as_str(), "link", "set", "dev", "lo", "up"])?;
        debug!("created network namespace {}", netns.name);
        Ok(netns)
    }

    /// Refers to an existing namespace `name` (one in `/run/netns`), which is not deleted on
    /// drop.
    ///
    /// # Errors
    ///
    /// `NotFound` if there is no such namespace.
    pub fn existing(name: &str) -> io::Result<NetNs> {
        let netns = NetNs {
            name: name.to_owned(),
            owned: false,
        };
        std::fs::metadata(netns.path())?;
        Ok(netns)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file that stands for the namespace.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(NETNS_DIR).join(&self.name)
    }

    /// Runs `f` on a new thread that has entered this namespace, and returns its result. A panic
    /// in `f` is resumed on the calling thread.
    ///
    /// Sockets, TUN devices and child processes created by `f` live in the namespace. To make a
    /// [`PacketSocket`](crate::packet::PacketSocket) or [`TunDevice`](crate::tun::TunDevice)
    /// for a runtime on another thread, enter that runtime's handle inside `f`.
    ///
    /// # Errors
    ///
    /// Opening the namespace or `setns(2)` fails.
    pub fn run<F, R>(&self, f: F) -> io::Result<R>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        let namespace = File::open(self.path())?;
        std::thread::scope(|scope| {
            let thread = std::thread::Builder::new()
                .name(format!("netns-{}", self.name))
                .spawn_scoped(scope, move || {
                    enter(&namespace)?;
                    drop(namespace);
                    Ok(f())
                })?;
            match thread.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Runs the future `f` makes to completion on a current-thread tokio runtime (I/O and time
    /// enabled) on a new thread inside this namespace.
    ///
    /// # Errors
    ///
    /// Entering the namespace or building the runtime fails.
    pub fn run_async<F, Fut>(&self, f: F) -> io::Result<Fut::Output>
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future,
        Fut::Output: Send,
    {
        self.run(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            Ok(runtime.block_on(f()))
        })?
    }

    /// A command that runs `program` inside the namespace (`ip netns exec NAME program`); add
    /// arguments and spawn it as usual, or turn it into a `tokio::process::Command`.
    pub fn command<S: AsRef<OsStr>>(&self, program: S) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", self.name.as_str()])
            .arg(program);
        command
    }

    /// Runs `args[0] args[1..]` inside the namespace to completion and returns its output,
    /// whatever its exit status. Standard input is empty.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for empty `args`; spawning fails.
    pub fn exec<S: AsRef<OsStr>>(&self, args: &[S]) -> io::Result<Output> {
        let (program, rest) = args
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command"))?;
        self.command(program)
            .args(rest)
            .stdin(Stdio::null())
            .output()
    }

    /// Runs `args` inside the namespace like [`exec`](Self::exec), and returns its standard
    /// output if it succeeded.
    ///
    /// # Errors
    ///
    /// As [`netconfig::run`]: a [`netconfig::CommandError`] with the stderr if it fails.
    pub fn exec_checked<S: AsRef<OsStr>>(&self, args: &[S]) -> io::Result<String> {
        let (program, rest) = args
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command"))?;
        netconfig::run(self.command(program).args(rest))
    }

    /// Runs `ip -n NAME ARGS...`: iproute2 acting inside the namespace.
    ///
    /// # Errors
    ///
    /// As [`netconfig::ip`].
    pub fn ip<S: AsRef<OsStr>>(&self, args: &[S]) -> io::Result<String> {
        netconfig::run(
            Command::new("ip")
                .args(["-n", self.name.as_str()])
                .args(args),
        )
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        match netconfig::ip(&["netns", "del", self.name.as_str()]) {
            Ok(_) => debug!("deleted network namespace {}", self.name),
            Err(error) => warn!("could not delete network namespace {}: {error}", self.name),
        }
    }
}

/// Moves the calling thread into the network namespace `namespace` stands for.
#[allow(unsafe_code)]
fn enter(namespace: &File) -> io::Result<()> {
    // SAFETY: `namespace` is an open file for the whole call; setns(2) only reads the
    // descriptor and the flag, and switching the network namespace of this thread cannot break
    // any Rust invariant (it changes where future sockets are created).
    let result = unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Creates a veth pair: interface `name_a` in `ns_a` and `name_b` in `ns_b`, both up. The pair
/// is made directly inside `ns_a` (`ip -n A link add ...`), so the host namespace never sees it;
/// it disappears with either namespace.
///
/// # Errors
///
/// See [`netconfig::ip`]; interface names are at most 15 bytes.
pub fn veth_pair(ns_a: &NetNs, name_a: &str, ns_b: &NetNs, name_b: &str) -> io::Result<()> {
    ns_a.ip(&[
        "link",
        "add",
        name_a,
        "type",
        "veth",
        "peer",
        "name",
        name_b,
        "netns",
        ns_b.name(),
    ])?;
    ns_a.ip(&["link", "set", "dev", name_a, "up"])?;
    ns_b.ip(&["link", "set", "dev", name_b, "up"])?;
    Ok(())
}

/// Why namespace tests cannot run here, or `None` if they can: not root, no `ip` program, or
/// creating a namespace is refused (in a container without `CAP_SYS_ADMIN`, say). Probes once
/// per process.
pub fn skip_reason() -> Option<String> {
    static REASON: OnceLock<Option<String>> = OnceLock::new();
    REASON.get_or_init(probe).clone()
}

fn probe() -> Option<String> {
    if !cfg!(target_os = "linux") {
        return Some("network namespaces need Linux".into());
    }
    match effective_uid() {
        Some(0) => {}
        Some(uid) => return Some(format!("not root (effective uid {uid})")),
        None => return Some("cannot read the effective uid from /proc/self/status".into()),
    }
    if let Err(error) = Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        return Some(format!("no usable `ip` program (iproute2): {error}"));
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        // Not needed by every test, but a machine without it is not a full test machine.
        debug!("/dev/net/tun is missing");
    }
    match NetNs::create("ppp-probe") {
        Ok(netns) => {
            if let Err(error) = netns.run(|| ()) {
                return Some(format!("cannot enter a network namespace: {error}"));
            }
            None
        }
        Err(error) => Some(format!("cannot create a network namespace: {error}")),
    }
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("Uid:"))?;
    // Uid: real effective saved filesystem
    line.split_whitespace().nth(2)?.parse().ok()
}

/// For the first lines of a test that needs namespaces: `true` (after printing why) if the test
/// should return early because [`skip_reason`] found one, `false` if it can run.
///
/// # Panics
///
/// If there is a reason to skip and the environment has `PPP_NETNS_REQUIRED=1`: there, a skip
/// would hide a test that must run.
pub fn skip_without_netns(test_name: &str) -> bool {
    let Some(reason) = skip_reason() else {
        return false;
    };
    if std::env::var(REQUIRED_ENV).is_ok_and(|value| value == "1") {
        panic!("{test_name}: {REQUIRED_ENV}=1 but network namespaces are unavailable: {reason}");
    }
    // Straight to the process's stderr, past libtest's capture, so a plain `cargo test` shows
    // why the test did nothing.
    let _ = writeln!(io::stderr(), "skipping {test_name}: {reason}");
    true
}

/// Whether `program` can be found in `PATH` (for tests that need a tool such as `ping`).
pub fn has_program(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            let candidate = dir.join(program);
            candidate
                .metadata()
                .is_ok_and(|metadata| metadata.is_file())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_is_readable() {
        assert!(effective_uid().is_some());
    }

    #[test]
    fn finds_sh() {
        assert!(has_program("sh"));
        assert!(!has_program("ppp-no-such-program-anywhere"));
    }

    #[test]
    fn namespace_lifecycle() {
        if skip_without_netns("namespace_lifecycle") {
            return;
        }
        let netns = NetNs::create("ppp-unit").expect("create");
        let path = netns.path();
        assert!(path.exists());
        assert!(
            netns
                .name()
                .starts_with(&format!("ppp-unit-{}-", std::process::id()))
        );
        // Inside, only loopback exists.
        let links = netns.ip(&["-o", "link", "show"]).expect("ip link");
        assert_eq!(links.lines().count(), 1, "{links}");
        // `run` really is inside: a thread's namespace inode differs from ours.
        let outside = std::fs::read_link("/proc/thread-self/ns/net").expect("own netns");
        let inside = netns
            .run(|| std::fs::read_link("/proc/thread-self/ns/net"))
            .expect("run")
            .expect("readlink");
        assert_ne!(outside, inside);
        let value = netns.run_async(|| async { 6 * 7 }).expect("run_async");
        assert_eq!(value, 42);
        let output = netns.exec(&["ip", "-o", "link", "show"]).expect("exec");
        assert!(output.status.success());
        assert!(netns.exec_checked(&["false"]).is_err());
        assert!(netns.exec::<&str>(&[]).is_err());
        let existing = NetNs::existing(netns.name()).expect("existing");
        drop(existing);
        assert!(path.exists(), "a borrowed namespace is not deleted");
        drop(netns);
        assert!(!path.exists(), "deleted on drop");
    }
}
