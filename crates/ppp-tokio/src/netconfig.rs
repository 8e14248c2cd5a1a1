//! Interface configuration for the programs: MTU, link state, point-to-point addresses, default
//! routes, and the peer's DNS servers in a resolv.conf-style file.
//!
//! Everything runs the `ip` command of iproute2 through `std::process`, checks its exit status
//! and puts its standard error into the error ([`CommandError`]). That is deliberately simpler
//! than speaking rtnetlink: `ip` is on every Linux system that has PPP, its behaviour is what
//! administrators know (and what `pppd`'s scripts use), the commands appear verbatim in the
//! debug log so a failure can be reproduced by hand, and the stack carries no netlink
//! dependency. These calls are rare for a client (once per link up or down), so spawning a
//! process is cheap enough there; the access concentrator, which configures an interface per
//! session, uses rtnetlink instead ([`crate::rtnl`]).
//!
//! A child process inherits the network namespace of the thread that spawns it, so every
//! function acts in the namespace of the calling thread. Call them from that thread itself,
//! not through `tokio::task::spawn_blocking`, whose threads may be in another namespace.
//!
//! Nothing here touches `/etc/resolv.conf` or any route or address that was not asked for.
//!
//! ```no_run
//! use std::net::Ipv4Addr;
//! use ppp_tokio::netconfig::{self, IpFamily};
//!
//! # fn run() -> std::io::Result<()> {
//! netconfig::set_mtu("ppp0", 1492)?;
//! netconfig::set_up("ppp0")?;
//! netconfig::add_point_to_point_ipv4("ppp0", Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2))?;
//! netconfig::add_default_route("ppp0", IpFamily::V4, 100)?;
//! netconfig::write_resolv_conf("/etc/ppp/resolv.conf".as_ref(), &[Ipv4Addr::new(198, 51, 100, 53).into()])?;
//! # Ok(())
//! # }
//! ```

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use tracing::debug;

/// The program every function here runs.
const IP_PROGRAM: &str = "ip";

/// A configuration command that ran and failed.
#[derive(Debug, thiserror::Error)]
#[error("`{command}` failed ({status}): {stderr}")]
pub struct CommandError {
    /// The command line, space-separated.
    pub command: String,
    /// How it ended.
    pub status: ExitStatus,
    /// What it wrote to standard error, trimmed.
    pub stderr: String,
}

/// Which IP version a route is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpFamily {
    /// IPv4 (`ip -4`).
    V4,
    /// IPv6 (`ip -6`).
    V6,
}

impl IpFamily {
    fn flag(self) -> &'static str {
        match self {
            IpFamily::V4 => "-4",
            IpFamily::V6 => "-6",
        }
    }
}

/// Runs `ip ARGS...` in the calling thread's network namespace and returns its standard output.
///
/// # Errors
///
/// `NotFound` if there is no `ip` program; a [`CommandError`] (inside an `io::Error` of kind
/// `Other`) if it exits unsuccessfully.
pub fn ip<S: AsRef<OsStr>>(args: &[S]) -> io::Result<String> {
    run(Command::new(IP_PROGRAM).args(args))
}

/// Runs `command` to completion, checking its exit status; returns its standard output.
///
/// # Errors
///
/// Spawning fails, or a [`CommandError`] (inside an `io::Error`) if it exits unsuccessfully.
pub fn run(command: &mut Command) -> io::Result<String> {
    let line = command_line(command);
    debug!("running `{line}`");
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|error| io::Error::new(error.kind(), format!("`{line}`: {error}")))?;
    if !output.status.success() {
        return Err(io::Error::other(CommandError {
            command: line,
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        }));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn command_line(command: &Command) -> String {
    let mut line = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Sets the MTU of `ifname` (`ip link set dev IF mtu N`).
///
/// # Errors
///
/// See [`ip`].
pub fn set_mtu(ifname: &str, mtu: u32) -> io::Result<()> {
    ip(&["link", "set", "dev", ifname, "mtu", &mtu.to_string()]).map(drop)
}

/// Brings `ifname` up (`ip link set dev IF up`).
///
/// # Errors
///
/// See [`ip`].
pub fn set_up(ifname: &str) -> io::Result<()> {
    ip(&["link", "set", "dev", ifname, "up"]).map(drop)
}

/// Brings `ifname` down (`ip link set dev IF down`).
///
/// # Errors
///
/// See [`ip`].
pub fn set_down(ifname: &str) -> io::Result<()> {
    ip(&["link", "set", "dev", ifname, "down"]).map(drop)
}

/// Stops the kernel from generating IPv6 link-local addresses on `ifname`
/// (`ip link set dev IF addrgenmode none`), so the ones IPV6CP negotiated are the only ones.
/// Call it before [`set_up`].
///
/// # Errors
///
/// See [`ip`]; also fails on kernels without IPv6.
pub fn disable_ipv6_address_generation(ifname: &str) -> io::Result<()> {
    ip(&["link", "set", "dev", ifname, "addrgenmode", "none"]).map(drop)
}

/// The arguments after `ip -4 addr add|del` for a point-to-point IPv4 address.
fn point_to_point_ipv4_args(ifname: &str, local: Ipv4Addr, peer: Ipv4Addr) -> Vec<String> {
    vec![
        local.to_string(),
        "peer".into(),
        format!("{peer}/32"),
        "dev".into(),
        ifname.into(),
    ]
}

/// Adds the point-to-point IPv4 address `local peer PEER/32` to `ifname`, as IPCP negotiated
/// it; the kernel adds the host route to the peer.
///
/// # Errors
///
/// See [`ip`]; `File exists` in the stderr if the address is already there.
pub fn add_point_to_point_ipv4(ifname: &str, local: Ipv4Addr, peer: Ipv4Addr) -> io::Result<()> {
    let mut args = vec!["-4".to_owned(), "addr".into(), "add".into()];
    args.extend(point_to_point_ipv4_args(ifname, local, peer));
    ip(&args).map(drop)
}

/// Removes what [`add_point_to_point_ipv4`] added.
///
/// # Errors
///
/// See [`ip`].
pub fn remove_point_to_point_ipv4(ifname: &str, local: Ipv4Addr, peer: Ipv4Addr) -> io::Result<()> {
    let mut args = vec!["-4".to_owned(), "addr".into(), "del".into()];
    args.extend(point_to_point_ipv4_args(ifname, local, peer));
    ip(&args).map(drop)
}

/// The link-local address `fe80::/64` + the 64-bit interface identifier IPV6CP negotiated.
pub fn ipv6_link_local(interface_identifier: [u8; 8]) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    octets[0] = 0xFE;
    octets[1] = 0x80;
    octets[8..].copy_from_slice(&interface_identifier);
    Ipv6Addr::from(octets)
}

fn link_local_args(ifname: &str, local: Ipv6Addr, peer: Ipv6Addr) -> io::Result<Vec<String>> {
    for address in [local, peer] {
        if !address.is_unicast_link_local() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{address} is not an IPv6 link-local address"),
            ));
        }
    }
    Ok(vec![
        format!("{local}/128"),
        "peer".into(),
        format!("{peer}/128"),
        "dev".into(),
        ifname.into(),
    ])
}

/// Adds the IPv6 link-local address `local/128 peer PEER/128` to `ifname`, as IPV6CP
/// negotiated them (see [`ipv6_link_local`]).
///
/// # Errors
///
/// `InvalidInput` if an address is not in `fe80::/10`; otherwise see [`ip`].
pub fn add_ipv6_link_local(ifname: &str, local: Ipv6Addr, peer: Ipv6Addr) -> io::Result<()> {
    let mut args = vec!["-6".to_owned(), "addr".into(), "add".into()];
    args.extend(link_local_args(ifname, local, peer)?);
    ip(&args).map(drop)
}

/// Removes what [`add_ipv6_link_local`] added.
///
/// # Errors
///
/// `InvalidInput` if an address is not in `fe80::/10`; otherwise see [`ip`].
pub fn remove_ipv6_link_local(ifname: &str, local: Ipv6Addr, peer: Ipv6Addr) -> io::Result<()> {
    let mut args = vec!["-6".to_owned(), "addr".into(), "del".into()];
    args.extend(link_local_args(ifname, local, peer)?);
    ip(&args).map(drop)
}

/// Adds a default route through `ifname` with metric `metric` (the programs'
/// `default-route-distance`): `ip -4|-6 route add default dev IF metric N`. A route with a lower
/// metric wins, so an existing default route with a lower metric stays in charge.
///
/// # Errors
///
/// See [`ip`]; `File exists` in the stderr if the same route is already there.
pub fn add_default_route(ifname: &str, family: IpFamily, metric: u32) -> io::Result<()> {
    let metric = metric.to_string();
    ip(&[
        family.flag(),
        "route",
        "add",
        "default",
        "dev",
        ifname,
        "metric",
        &metric,
    ])
    .map(drop)
}

/// Removes the route [`add_default_route`] added.
///
/// # Errors
///
/// See [`ip`].
pub fn remove_default_route(ifname: &str, family: IpFamily, metric: u32) -> io::Result<()> {
    let metric = metric.to_string();
    ip(&[
        family.flag(),
        "route",
        "del",
        "default",
        "dev",
        ifname,
        "metric",
        &metric,
    ])
    .map(drop)
}

/// The text of a resolv.conf naming `servers`, one `nameserver` line each, in order.
pub fn resolv_conf(servers: &[IpAddr]) -> String {
    let mut text = String::from("# written by ppp-stack from the peer's DNS server options\n");
    for server in servers {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "nameserver {server}");
    }
    text
}

/// Writes [`resolv_conf`] of `servers` to `path`, replacing it atomically (a temporary file
/// beside it, then a rename). Only ever the file the user named: this never touches
/// `/etc/resolv.conf` unless that is the `path` given.
///
/// # Errors
///
/// Any error creating, writing or renaming the file.
pub fn write_resolv_conf(path: &Path, servers: &[IpAddr]) -> io::Result<()> {
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    let mut temporary_name = file_name.to_owned();
    temporary_name.push(format!(".tmp{}", std::process::id()));
    let temporary = path.with_file_name(temporary_name);
    let result = (|| {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(resolv_conf(servers).as_bytes())?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    debug!(
        "wrote {} DNS server(s) to {}",
        servers.len(),
        path.display()
    );
    result
}

/// Removes the file [`write_resolv_conf`] wrote; a file already gone is not an error.
///
/// # Errors
///
/// Any other error removing it.
pub fn remove_resolv_conf(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_to_point_arguments() {
        let args = point_to_point_ipv4_args(
            "ppp0",
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(192, 0, 2, 2),
        );
        assert_eq!(args.join(" "), "192.0.2.1 peer 192.0.2.2/32 dev ppp0");
    }

    #[test]
    fn link_local_arguments() {
        let local = ipv6_link_local([0x02, 0, 0, 0, 0, 0, 0, 0x01]);
        let peer = ipv6_link_local([0x02, 0, 0, 0, 0, 0, 0, 0x02]);
        assert_eq!(
            local,
            "fe80::200:0:0:1".parse::<Ipv6Addr>().expect("literal")
        );
        let args = link_local_args("ppp0", local, peer).expect("link-local");
        assert_eq!(
            args.join(" "),
            "fe80::200:0:0:1/128 peer fe80::200:0:0:2/128 dev ppp0"
        );
        let global: Ipv6Addr = "2001:db8::1".parse().expect("literal");
        assert!(link_local_args("ppp0", global, peer).is_err());
        assert!(link_local_args("ppp0", local, global).is_err());
    }

    #[test]
    fn resolv_conf_text() {
        let text = resolv_conf(&[
            Ipv4Addr::new(198, 51, 100, 53).into(),
            "2001:db8::53".parse().expect("literal"),
        ]);
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            ["nameserver 198.51.100.53", "nameserver 2001:db8::53"]
        );
        assert_eq!(
            resolv_conf(&[])
                .lines()
                .filter(|l| !l.starts_with('#'))
                .count(),
            0
        );
    }

    #[test]
    fn resolv_conf_file_round_trip() {
        let dir = std::env::temp_dir().join(format!("ppp-tokio-resolv-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("resolv.conf");
        write_resolv_conf(&path, &[Ipv4Addr::new(198, 51, 100, 1).into()]).expect("write");
        write_resolv_conf(&path, &[Ipv4Addr::new(198, 51, 100, 2).into()]).expect("rewrite");
        let text = fs::read_to_string(&path).expect("read");
        assert!(text.contains("nameserver 198.51.100.2\n"));
        assert!(!text.contains("198.51.100.1"));
        assert_eq!(
            fs::read_dir(&dir).expect("list").count(),
            1,
            "no temporary left"
        );
        remove_resolv_conf(&path).expect("remove");
        remove_resolv_conf(&path).expect("remove again");
        assert!(write_resolv_conf(Path::new("/"), &[]).is_err());
        fs::remove_dir(&dir).expect("clean up");
    }

    #[test]
    fn failing_command_reports_stderr() {
        let error =
            run(Command::new("sh").args(["-c", "echo oops >&2; exit 3"])).expect_err("exit 3");
        let inner = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<CommandError>())
            .expect("a CommandError");
        assert_eq!(inner.stderr, "oops");
        assert_eq!(inner.status.code(), Some(3));
        assert!(error.to_string().contains("sh -c echo oops >&2; exit 3"));
        let missing =
            run(&mut Command::new("/nonexistent/ppp-no-such-program")).expect_err("missing");
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }
}
