//! A call on a serial line in the kernel's PPP line discipline.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;

use super::device::PppLineDiscipline;

/// Whether the kernel has the PPP line discipline: `/proc/tty/ldiscs` lists it, or a pty
/// takes it (which loads `ppp_async` where modules load on demand).
pub(crate) fn probe_line_discipline() -> io::Result<()> {
    if listed_line_discipline() {
        return Ok(());
    }
    let pty = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open("/dev/ptmx")?;
    PppLineDiscipline::set(pty.as_fd())?.restore()
}

fn listed_line_discipline() -> bool {
    std::fs::read_to_string("/proc/tty/ldiscs").is_ok_and(|text| {
        text.lines()
            .any(|line| line.split_whitespace().next() == Some("ppp"))
    })
}
