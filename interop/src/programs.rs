//! This stack's programs inside the guest: release builds of `access-concentrator`,
//! `pppoe-client` and `dial-out`, built on the host, stripped, packed with the host's shared
//! libraries (and its dynamic loader, so the guest's older or newer glibc does not matter) into
//! a second initramfs that [`Guest::start`](crate::Guest::start) appends to the image's. In the
//! guest they are `/opt/ppptest/bin/<name>`, small scripts that run
//! `/opt/ppptest/libexec/<name>` through `/opt/ppptest/lib/ld-linux-x86-64.so.2`.
//!
//! The guest image stays as it was (cached by its packages), and the programs are always the
//! ones of the working tree: [`GuestPrograms::ensure`] runs `cargo build --release` for them
//! once per process (cargo finds them up to date in a moment when nothing changed).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use crate::{Error, Result, interop_dir, package_dir};

/// The programs put into the guest (examples of the workspace's root package).
pub const PROGRAMS: [&str; 3] = ["access-concentrator", "pppoe-client", "dial-out"];

/// Where the programs are in the guest (`bin/` wrappers, `libexec/` binaries, `lib/`).
pub const GUEST_PREFIX: &str = "/opt/ppptest";

/// The packed programs: an uncompressed `newc` cpio archive to append to an initramfs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestPrograms {
    /// The archive.
    pub archive: PathBuf,
}

impl GuestPrograms {
    /// Builds (once per process) and packs the programs.
    ///
    /// # Errors
    ///
    /// [`Error::Programs`] when cargo, `ldd`, `strip` or `cpio` failed.
    pub fn ensure() -> Result<GuestPrograms> {
        static CACHE: OnceLock<Mutex<Option<std::result::Result<GuestPrograms, String>>>> =
            OnceLock::new();
        let cache = CACHE.get_or_init(|| Mutex::new(None));
        let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
        let entry = cache.get_or_insert_with(|| Self::build().map_err(|e| e.to_string()));
        entry.clone().map_err(Error::Programs)
    }

    fn build() -> Result<GuestPrograms> {
        let started = Instant::now();
        let workspace = package_dir()
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("."));
        let target = interop_dir()
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| workspace.join("target"));
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut command = Command::new(cargo);
        command
            .current_dir(&workspace)
            .args(["build", "--release", "--quiet"])
            .env("CARGO_TARGET_DIR", &target);
        for program in PROGRAMS {
            command.args(["--example", program]);
        }
        run(&mut command, "cargo build --release (the guest's programs)")?;
        let dir = interop_dir().join("programs");
        let stage = dir.join("stage");
        let _ = fs::remove_dir_all(&stage);
        let root = stage.join(GUEST_PREFIX.trim_start_matches('/'));
        for sub in ["bin", "libexec", "lib"] {
            fs::create_dir_all(root.join(sub))
                .map_err(|e| Error::io(format!("creating {}", root.join(sub).display()), e))?;
        }
        let mut libraries: Vec<(std::ffi::OsString, PathBuf)> = Vec::new();
        for program in PROGRAMS {
            let binary = target.join("release").join("examples").join(program);
            let staged = root.join("libexec").join(program);
            run(
                Command::new("strip").arg("-o").arg(&staged).arg(&binary),
                &format!("strip {}", binary.display()),
            )?;
            for library in shared_libraries(&binary)? {
                if !libraries.contains(&library) {
                    libraries.push(library);
                }
            }
            let wrapper = root.join("bin").join(program);
            fs::write(
                &wrapper,
                format!(
                    "#!/bin/sh\nexec {GUEST_PREFIX}/lib/ld-linux-x86-64.so.2 --library-path \
                     {GUEST_PREFIX}/lib {GUEST_PREFIX}/libexec/{program} \"$@\"\n"
                ),
            )
            .map_err(|e| Error::io(format!("writing {}", wrapper.display()), e))?;
            set_executable(&wrapper)?;
        }
        for (name, library) in &libraries {
            let staged = root.join("lib").join(name);
            fs::copy(library, &staged)
                .map_err(|e| Error::io(format!("copying {}", library.display()), e))?;
            set_executable(&staged)?;
        }
        let archive = dir.join("programs.cpio");
        let list = Command::new("sh")
            .current_dir(&stage)
            .args([
                "-c",
                "find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet",
            ])
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| Error::io("running cpio", e))?;
        if !list.status.success() {
            return Err(Error::Programs(format!(
                "cpio failed: {}",
                String::from_utf8_lossy(&list.stderr)
            )));
        }
        fs::write(&archive, &list.stdout)
            .map_err(|e| Error::io(format!("writing {}", archive.display()), e))?;
        eprintln!(
            "ppp-interop: the guest's programs packed into {} ({} KiB, {:.1} s)",
            archive.display(),
            list.stdout.len() / 1024,
            started.elapsed().as_secs_f64()
        );
        Ok(GuestPrograms { archive })
    }
}

/// The shared libraries `binary` loads on this host, the dynamic loader included (from
/// `ldd`), as their real files.
fn shared_libraries(binary: &Path) -> Result<Vec<(std::ffi::OsString, PathBuf)>> {
    let output = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| Error::io("running ldd", e))?;
    if !output.status.success() {
        return Err(Error::Programs(format!(
            "ldd {}: {}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let mut libraries = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
        // "/lib64/ld-linux-x86-64.so.2 (0x...)"; the vDSO has no file.
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/')),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else {
            continue;
        };
        let named = PathBuf::from(path);
        // Keep the name the loader looks for, copy the real file.
        let real = fs::canonicalize(&named)
            .map_err(|e| Error::io(format!("resolving {}", named.display()), e))?;
        if let Some(name) = named.file_name() {
            libraries.push((name.to_owned(), real));
        }
    }
    Ok(libraries)
}

fn set_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::io(format!("chmod {}", path.display()), e))
}

fn run(command: &mut Command, what: &str) -> Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io(format!("starting {what}"), e))?;
    if output.status.success() {
        return Ok(());
    }
    Err(Error::Programs(format!(
        "{what} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    )))
}

/// `base` (the image's initramfs) followed by `archive` (uncompressed cpio), at a 4-byte
/// boundary as the kernel's initramfs unpacker wants for an uncompressed archive after a
/// compressed one.
pub fn concatenate_initramfs(base: &Path, archive: &Path, out: &Path) -> Result<()> {
    let mut bytes =
        fs::read(base).map_err(|e| Error::io(format!("reading {}", base.display()), e))?;
    while bytes.len() % 4 != 0 {
        bytes.push(0);
    }
    let extra =
        fs::read(archive).map_err(|e| Error::io(format!("reading {}", archive.display()), e))?;
    bytes.extend_from_slice(&extra);
    fs::write(out, bytes).map_err(|e| Error::io(format!("writing {}", out.display()), e))
}
