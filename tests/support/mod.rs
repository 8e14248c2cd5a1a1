//! What the tests that run the real programs share: building them, killing them at the end,
//! waiting for a condition. Each such test file says `mod support;`; not every file uses
//! everything here.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Builds `examples` of the `ppp-stack` package (optimised if `release`) and returns the
/// directory they are in. Call it once per test binary (behind a `OnceLock`): cargo holds its
/// lock meanwhile, so concurrent calls would only wait for each other.
pub fn build_examples(release: bool, examples: &[&str]) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .arg("build")
        .args(release.then_some("--release"))
        .args(["-p", "ppp-stack"])
        .args(examples.iter().flat_map(|name| ["--example", name]))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building the programs failed");
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/<this test>
    let profile = exe.parent().and_then(Path::parent).expect("profile dir");
    if release {
        profile
            .parent()
            .expect("target dir")
            .join("release")
            .join("examples")
    } else {
        profile.join("examples")
    }
}

/// A child process, killed and reaped when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// Polls `condition` every 50 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
