//! A FreeRADIUS 3.2 for tests (feature `test-util`): a copy of the packaged configuration in a
//! temporary directory, with our users, one client (127.0.0.1) and its secret, the `detail`
//! accounting module writing into the directory, Message-Authenticator required in requests
//! and added to every Access answer, on free loopback ports, in this network namespace or in a
//! test's ([`FreeRadius::start_in`]). Killed (and its directory removed) on drop.
//!
//! ```no_run
//! use ppp_tokio::freeradius::{self, FreeRadius};
//!
//! if !freeradius::skip("my_test") {
//!     let server = FreeRadius::start("alice Cleartext-Password := \"secret\"\n").unwrap();
//!     println!("authentication on {}, accounting on {}", server.auth, server.acct);
//! }
//! ```

use std::fs;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::netns::NetNs;

/// The packaged configuration we copy.
const PACKAGED: &str = "/etc/freeradius/3.0";
/// The secret shared with the test NAS.
pub const SECRET: &str = "testing-radius-secret";

/// Why the FreeRADIUS tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    if Command::new("freeradius")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        return Some(
            "freeradius is not installed (apt-get install freeradius freeradius-utils)".into(),
        );
    }
    if !Path::new(PACKAGED).join("radiusd.conf").exists() {
        return Some(format!("{PACKAGED}/radiusd.conf is missing"));
    }
    None
}

/// Prints why a test skips and returns true, when FreeRADIUS is not there. With
/// `PPP_FREERADIUS_REQUIRED=1` (as CI sets it) a missing FreeRADIUS fails the test instead.
pub fn skip(test: &str) -> bool {
    match skip_reason() {
        Some(reason) if std::env::var_os("PPP_FREERADIUS_REQUIRED").is_some() => {
            panic!("{test}: {reason}, and PPP_FREERADIUS_REQUIRED is set")
        }
        Some(reason) => {
            eprintln!("skipping {test}: {reason}");
            true
        }
        None => false,
    }
}

/// Two free UDP ports on loopback (auth, acct).
pub fn free_ports() -> (u16, u16) {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

/// A running FreeRADIUS.
#[derive(Debug)]
pub struct FreeRadius {
    child: Child,
    dir: PathBuf,
    /// The namespace it runs in (`ip netns exec`), if not ours.
    netns: Option<String>,
    /// Where Access-Requests go.
    pub auth: SocketAddr,
    /// Where Accounting-Requests go.
    pub acct: SocketAddr,
}

static INSTANCES: AtomicUsize = AtomicUsize::new(0);

/// How FreeRADIUS runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `-X`: single-threaded, every request logged in detail (its log is kept for failures).
    Debug,
    /// `-f`: the thread pool, normal logging (for the load figure).
    Threaded,
}

impl FreeRadius {
    /// Starts one with `users` (the `files` module's authorize file) on free ports, in debug
    /// mode.
    ///
    /// # Errors
    ///
    /// As [`start_on`](Self::start_on).
    pub fn start(users: &str) -> io::Result<FreeRadius> {
        let (auth, acct) = free_ports();
        Self::start_on(users, auth, acct, Mode::Debug)
    }

    /// Starts one on the given ports.
    ///
    /// # Errors
    ///
    /// Copying the configuration fails, or it does not start within 20 s (its log in the
    /// error).
    pub fn start_on(users: &str, auth: u16, acct: u16, mode: Mode) -> io::Result<FreeRadius> {
        Self::launch(None, users, auth, acct, mode)
    }

    /// Starts one inside the network namespace `netns` (on its loopback, which must be up),
    /// on the given ports, so that programs in that namespace reach it on 127.0.0.1.
    ///
    /// # Errors
    ///
    /// As [`start_on`](Self::start_on).
    pub fn start_in(
        netns: &NetNs,
        users: &str,
        auth: u16,
        acct: u16,
        mode: Mode,
    ) -> io::Result<FreeRadius> {
        Self::launch(Some(netns), users, auth, acct, mode)
    }

    fn launch(
        netns: Option<&NetNs>,
        users: &str,
        auth: u16,
        acct: u16,
        mode: Mode,
    ) -> io::Result<FreeRadius> {
        let n = INSTANCES.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ppp-freeradius-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let raddb = dir.join("raddb");
        copy_tree(Path::new(PACKAGED), &raddb)?;
        configure(&raddb, &dir, users, auth, acct)?;
        let log = fs::File::create(dir.join("freeradius.log"))?;
        let mut command = match netns {
            Some(ns) => ns.command("freeradius"),
            None => Command::new("freeradius"),
        };
        match mode {
            Mode::Debug => command.arg("-X"),
            Mode::Threaded => command.args(["-f", "-l", "stdout"]),
        };
        let child = command
            .arg("-d")
            .arg(&raddb)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut server = FreeRadius {
            child,
            dir,
            netns: netns.map(|ns| ns.name().to_owned()),
            auth: SocketAddr::from(([127, 0, 0, 1], auth)),
            acct: SocketAddr::from(([127, 0, 0, 1], acct)),
        };
        server.wait_ready(mode)?;
        Ok(server)
    }

    fn wait_ready(&mut self, mode: Mode) -> io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log();
            let ready = match mode {
                Mode::Debug => log.contains("Ready to process requests"),
                // Without -X nothing is printed when ready: wait for the ports.
                Mode::Threaded => {
                    let (auth, acct) = (self.auth, self.acct);
                    let bound =
                        move || UdpSocket::bind(auth).is_err() && UdpSocket::bind(acct).is_err();
                    match &self.netns {
                        Some(name) => NetNs::existing(name)?.run(bound)?,
                        None => bound(),
                    }
                }
            };
            if ready {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "freeradius exited with {status}:\n{log}"
                )));
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!("freeradius not ready:\n{log}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The directory it runs in (configuration, logs, the detail files).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What it printed so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("freeradius.log")).unwrap_or_default()
    }

    /// Everything the `detail` module wrote.
    pub fn detail(&self) -> String {
        let mut out = String::new();
        let mut stack = vec![self.dir.join("log").join("radacct")];
        while let Some(path) = stack.pop() {
            let Ok(entries) = fs::read_dir(&path) else {
                continue;
            };
            for entry in entries.flatten() {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(text) = fs::read_to_string(&p) {
                    out.push_str(&text);
                }
            }
        }
        out
    }

    /// The detail records (blank-line separated) that contain `needle`.
    pub fn detail_records_with(&self, needle: &str) -> Vec<String> {
        self.detail()
            .split("\n\n")
            .filter(|r| r.contains(needle))
            .map(str::to_owned)
            .collect()
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops it (SIGKILL) and waits.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for FreeRadius {
    fn drop(&mut self) {
        self.kill();
        if std::env::var_os("PPP_KEEP_FREERADIUS").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("FreeRADIUS directory kept: {}", self.dir.display());
        }
    }
}

/// `cp -rL`: symlinks followed (mods-enabled and sites-enabled are links).
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let meta = match fs::metadata(&source) {
            Ok(m) => m,
            Err(_) => continue, // a dangling link
        };
        if meta.is_dir() {
            copy_tree(&source, &target)?;
        } else {
            fs::copy(&source, &target)?;
        }
    }
    Ok(())
}

/// Our site, modules, client and users.
fn configure(raddb: &Path, dir: &Path, users: &str, auth: u16, acct: u16) -> io::Result<()> {
    let conf = fs::read_to_string(raddb.join("radiusd.conf"))?;
    let mut out = String::new();
    for line in conf.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("logdir =") {
            out.push_str(&format!("logdir = {}\n", dir.join("log").display()));
        } else if trimmed.starts_with("run_dir =") {
            out.push_str(&format!("run_dir = {}\n", dir.join("run").display()));
        } else if trimmed.starts_with("reject_delay =") {
            // The default 1 s delay before an Access-Reject would only slow the tests down.
            out.push_str("\treject_delay = 0\n");
        } else if trimmed.starts_with("user = ") || trimmed.starts_with("group = ") {
            // Stay the user we are: the directory is ours.
            out.push_str("#\n");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    fs::write(raddb.join("radiusd.conf"), out)?;
    fs::create_dir_all(dir.join("log"))?;
    fs::create_dir_all(dir.join("run"))?;
    // Only the modules the site uses.
    let enabled = raddb.join("mods-enabled");
    fs::remove_dir_all(&enabled)?;
    fs::create_dir_all(&enabled)?;
    for module in [
        "always",
        "attr_filter",
        "chap",
        "detail",
        "expr",
        "files",
        "mschap",
        "pap",
        "preprocess",
    ] {
        fs::copy(
            raddb.join("mods-available").join(module),
            enabled.join(module),
        )?;
    }
    let sites = raddb.join("sites-enabled");
    fs::remove_dir_all(&sites)?;
    fs::create_dir_all(&sites)?;
    fs::write(sites.join("test"), site(auth, acct))?;
    fs::write(
        raddb.join("clients.conf"),
        format!(
            "client test-nas {{\n\tipaddr = 127.0.0.1\n\tsecret = {SECRET}\n\
             \trequire_message_authenticator = yes\n}}\n"
        ),
    )?;
    fs::write(raddb.join("mods-config/files/authorize"), users)?;
    Ok(())
}

/// The virtual server: PAP, CHAP, MS-CHAP from the users file; accounting into `detail`;
/// every Access answer signed with a Message-Authenticator (FreeRADIUS before 3.2.5 adds one
/// only for EAP: the Blast-RADIUS advisories' policy for older servers).
fn site(auth: u16, acct: u16) -> String {
    format!(
        r#"server test {{
listen {{
	type = auth
	ipaddr = 127.0.0.1
	port = {auth}
}}
listen {{
	type = acct
	ipaddr = 127.0.0.1
	port = {acct}
}}
authorize {{
	preprocess
	chap
	mschap
	files
	pap
}}
authenticate {{
	Auth-Type PAP {{
		pap
	}}
	Auth-Type CHAP {{
		chap
	}}
	Auth-Type MS-CHAP {{
		mschap
	}}
}}
preacct {{
	preprocess
}}
accounting {{
	detail
	ok
}}
post-auth {{
	update reply {{
		Message-Authenticator := 0x00
	}}
	Post-Auth-Type REJECT {{
		attr_filter.access_reject
		update reply {{
			Reply-Message := "Login refused by RADIUS"
			Message-Authenticator := 0x00
		}}
	}}
}}
}}
"#
    )
}
