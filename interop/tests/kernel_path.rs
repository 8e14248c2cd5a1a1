//! The kernel data path (docs/data-plane.md) of this stack's real programs, inside the guest,
//! whose kernel has PPP: the programs are built on the host and put into the guest
//! ([`Scenario::with_our_programs`]); everything else runs there, so one guest boot per suite
//! serves every part.
//!
//! The guest makes a second network namespace ("peer", held by a sleeping process) and a veth
//! pair between it and its own (`ac0` here, `cl0` there). Each part prints
//! `PPPTEST-PART <tag> ready=<0|1> ping_out=<rc> ping_in=<rc>` and leaves its logs and two
//! iperf3 runs (`/log/iperf-<tag>-up.log`: peer to here, `-down.log`: here to peer) in `/log/`:
//!
//! - `ac-kernel`, `ac-tun`: our `access-concentrator` (`--data-plane kernel` / `tun`, MS-CHAPv2)
//!   on `ac0` against pppd's `rp-pppoe.so` in the peer namespace;
//! - `ac-kernel-mppe`: the same in kernel mode with MPPE-128 required on both sides: the keys
//!   go to the kernel's `ppp_mppe` (`PPPIOCSCOMPRESS`), pppd logs MPPE enabled;
//! - `ac-kernel-limits`: the same in kernel mode with a profile's `session-timeout` (45 s) and
//!   `only-one = "yes"`: a second pppd logging in as the same user while the first is up is
//!   refused, and the first session ends at its timeout, accounted (`Session-Timeout`) with
//!   the octets the kernel counted on its `pppN`;
//! - `client-kernel`, `client-tun`: our `pppoe-client` in the peer namespace against
//!   rp-pppoe's `pppoe-server` on `ac0` (user mode in bookworm's rp-pppoe 3.15, kernel mode
//!   `-k` in trixie's 4.0), CHAP;
//! - `dialout-kernel`, `dialout-tun`: our `dial-out dial --null-modem` on `/dev/ttyS2` in the
//!   peer namespace against pppd on `/dev/ttyS1` here; the host joins the two serial ports
//!   byte for byte (a null-modem cable);
//! - `dialin-kernel`: the other way round: our `dial-out server --null-modem --once` on
//!   `/dev/ttyS1` here, pppd dialling in from `/dev/ttyS2` in the peer namespace (CHAP). The
//!   call's datagrams go through the server's `pppN`, and the call's accounting line must
//!   count at least what iperf3's receivers got each way, which only the kernel's interface
//!   counters saw.
//!
//! In the serial parts our side has an 8-s idle timeout, which must end the call (and our
//! program) once iperf3 is done; on the kernel path that only works if the unit's idle time
//! is read from the kernel.
//!
//! By default only the kernel-mode parts run (CI's time budget); `PPP_KERNEL_PATH_PARTS=all`
//! adds the TUN-mode ones, or names the parts to run. Pings go both ways, iperf3 runs 3 s each
//! way, and the throughput table (one small guest: for comparing kernel and TUN in the same
//! guest, not absolute) is printed and written to `target/interop/kernel-path-<suite>.txt`.
//! Like every interop scenario it skips, saying why, where QEMU or the images are missing.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use ppp_interop::{GuestOutcome, Scenario, ScenarioRun, Suite, interop_dir};

macro_rules! suite_tests {
    ($($scenario:ident => $bookworm:ident, $trixie:ident;)*) => {$(
        #[test]
        fn $bookworm() {
            $scenario(Suite::Bookworm);
        }

        #[test]
        fn $trixie() {
            $scenario(Suite::Trixie);
        }
    )*};
}

suite_tests! {
    kernel_data_path => kernel_data_path_bookworm, kernel_data_path_trixie;
}

/// One part of the scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    AcKernel,
    AcTun,
    AcKernelMppe,
    AcKernelLimits,
    ClientKernel,
    ClientTun,
    DialoutKernel,
    DialoutTun,
    DialinKernel,
}

impl Part {
    const ALL: [Part; 9] = [
        Part::AcKernel,
        Part::AcTun,
        Part::AcKernelMppe,
        Part::AcKernelLimits,
        Part::ClientKernel,
        Part::ClientTun,
        Part::DialoutKernel,
        Part::DialoutTun,
        Part::DialinKernel,
    ];

    fn tag(self) -> &'static str {
        match self {
            Part::AcKernel => "ac-kernel",
            Part::AcTun => "ac-tun",
            Part::AcKernelMppe => "ac-kernel-mppe",
            Part::AcKernelLimits => "ac-kernel-limits",
            Part::ClientKernel => "client-kernel",
            Part::ClientTun => "client-tun",
            Part::DialoutKernel => "dialout-kernel",
            Part::DialoutTun => "dialout-tun",
            Part::DialinKernel => "dialin-kernel",
        }
    }

    fn kernel(self) -> bool {
        matches!(
            self,
            Part::AcKernel
                | Part::AcKernelMppe
                | Part::AcKernelLimits
                | Part::ClientKernel
                | Part::DialoutKernel
                | Part::DialinKernel
        )
    }

    /// The shell call that runs the part.
    fn call(self) -> String {
        let mode = if self.kernel() { "kernel" } else { "tun" };
        match self {
            Part::AcKernel | Part::AcTun => format!("ac_vs_pppd {} {mode} no ''", self.tag()),
            Part::AcKernelMppe => {
                format!("ac_vs_pppd {} {mode} required require-mppe-128", self.tag())
            }
            Part::AcKernelLimits => format!("ac_limits_vs_pppd {}", self.tag()),
            Part::ClientKernel | Part::ClientTun => {
                format!("client_vs_pppoe_server {} {mode}", self.tag())
            }
            Part::DialoutKernel | Part::DialoutTun => {
                format!("dialout_vs_pppd {} {mode}", self.tag())
            }
            Part::DialinKernel => format!("pppd_dials_in {} {mode}", self.tag()),
        }
    }
}

/// The parts to run: by default the kernel-mode ones (CI's budget); `PPP_KERNEL_PATH_PARTS=all`
/// adds the TUN-mode runs of the same scenarios for comparison, or names the parts
/// (comma-separated tags; for working on one of them).
fn parts() -> Vec<Part> {
    match std::env::var("PPP_KERNEL_PATH_PARTS") {
        Ok(list) if list.trim() == "all" => Part::ALL.to_vec(),
        Ok(list) if !list.is_empty() => Part::ALL
            .into_iter()
            .filter(|p| list.split(',').any(|t| t.trim() == p.tag()))
            .collect(),
        _ => Part::ALL.into_iter().filter(|p| p.kernel()).collect(),
    }
}

/// The user every part authenticates as, and her password.
const USER: &str = "alice";
const PASSWORD: &str = "kernel-path-secret";

/// The guest script: the peer namespace and the veth pair, the shell functions of the parts,
/// then the parts in order.
fn script(suite: Suite, parts: &[Part]) -> String {
    // rp-pppoe 4.0 runs pppd with its plugin (`-k`); Debian 12's 3.15 only in user mode.
    let server_mode = match suite {
        Suite::Trixie => "-k -g $(ls /usr/lib/pppd/*/rp-pppoe.so | head -n 1)",
        _ => "",
    };
    let calls: Vec<String> = parts.iter().map(|p| p.call()).collect();
    format!(
        r#"P=/opt/ppptest/bin
mkdir -p /log
echo "PPPTEST-KERNEL $(uname -r)"
# The peer namespace, held by a sleeping process, and a veth pair into it.
unshare -n sleep 100000 &
PEER=$!
sleep 1
peer() {{ nsenter -t $PEER -n "$@"; }}
ip link add ac0 type veth peer name cl0
PEERIF=$(ip -o link | sed -n 's/^[0-9]*: \([^@:]*\)@ac0.*/\1/p')
ip link set "$PEERIF" netns $PEER
[ "$PEERIF" = cl0 ] || peer ip link set "$PEERIF" name cl0
ip link set ac0 up
peer ip link set lo up
peer ip link set cl0 up
printf '%s * %s *\n' {USER} {PASSWORD} >/etc/ppp/chap-secrets
chmod 600 /etc/ppp/chap-secrets

# wait_for SECONDS COMMAND...: until COMMAND succeeds; fails after SECONDS.
wait_for() {{
    n=$1; shift
    while [ $n -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 1
        n=$((n - 1))
    done
    return 1
}}
# has_peer_addr ADDR: a point-to-point address here, on whichever pppN pppd got.
has_peer_addr() {{ ip -4 -o addr show | grep -q "inet $1 peer"; }}
# glibc loads libgcc_s.so.1 when a thread is cancelled (iperf3 3.16 and later do at the end of
# a test); the image's ELF closure does not carry it, our programs' libraries do.
IPERF_LIBS=/opt/ppptest/gcc
mkdir -p $IPERF_LIBS
cp $P/../lib/libgcc_s.so.1 $IPERF_LIBS/ 2>/dev/null
iperf3() {{ LD_LIBRARY_PATH=$IPERF_LIBS command iperf3 "$@"; }}
peer_has_peer_addr() {{ peer ip -4 -o addr show | grep -q "inet $1 peer"; }}

# measure TAG SERVER [LENGTH...]: iperf3 both ways between the peer namespace (client) and here
# (server); 3 s each unless LENGTH says otherwise (`-n 64K` for a slow serial line).
measure() {{
    tag=$1; server=$2; shift 2
    [ $# -gt 0 ] || set -- -t 3
    iperf3 -s -1 -B "$server" >/dev/null 2>&1 &
    sleep 1
    peer env LD_LIBRARY_PATH=$IPERF_LIBS timeout 30 iperf3 -c "$server" "$@" -f m \
        >/log/iperf-$tag-up.log 2>&1
    # The sender may finish long before a slow line delivered everything: the next server
    # can only listen once this one is gone (the client has its result by now).
    killall iperf3 2>/dev/null
    gone iperf3
    iperf3 -s -1 -B "$server" >/dev/null 2>&1 &
    sleep 1
    peer env LD_LIBRARY_PATH=$IPERF_LIBS timeout 30 iperf3 -c "$server" "$@" -f m -R \
        >/log/iperf-$tag-down.log 2>&1
    killall iperf3 2>/dev/null
    gone iperf3
}}

# gone NAME: waits (10 s at most) until no process named NAME is left (pppd sends its
# Terminate-Request and waits for the Ack), then kills what is left.
gone() {{
    n=0
    while [ $n -lt 20 ] && pidof "$1" >/dev/null; do sleep 0.5; n=$((n + 1)); done
    killall -9 "$1" 2>/dev/null
    return 0
}}

# stop_ours: ends our program (SIGTERM: it closes the link) and waits for it (10 s at most).
# `peer` forks, so the pid the shell knows is nsenter's; our programs run through their own
# loader (see ppp_interop::programs), which is the name they go by.
stop_ours() {{
    killall ld-linux-x86-64.so.2 2>/dev/null
    gone ld-linux-x86-64.so.2
}}

# not_running PID: the process is gone.
not_running() {{ ! kill -0 "$1" 2>/dev/null; }}

# stop PID...: SIGTERM, then wait (10 s at most) for them to end.
stop() {{
    kill "$@" 2>/dev/null
    for pid in "$@"; do
        n=0
        while [ $n -lt 20 ] && kill -0 $pid 2>/dev/null; do sleep 0.5; n=$((n + 1)); done
        kill -9 $pid 2>/dev/null
    done
}}

# pppd with rp-pppoe's plugin on cl0, as the user (run it in the peer namespace).
PPPOE_PPPD="plugin rp-pppoe.so nic-cl0 rp_pppoe_service internet user {USER} \
    password {PASSWORD} noipdefault noauth nodetach maxfail 1 debug logfd 2"

# write_ac_config PROFILE-LINE...: /tmp/ac.toml for our access concentrator on ac0 (MS-CHAPv2,
# the user's secret, addresses from 192.0.2.100 on), each argument one more line of its
# default profile.
write_ac_config() {{
    {{
        cat <<EOF
interfaces = ["ac0"]
ac-name = "our-ac"
services = ["internet"]
authentication = ["mschap2"]
default-profile = "default"
keepalive-timeout = 0
[[secrets]]
name = "{USER}"
password = "{PASSWORD}"
[profiles.default]
local-address = "192.0.2.1"
remote-address = "clients"
EOF
        printf '%s\n' "$@"
        printf '[pools]\nclients = ["192.0.2.100-192.0.2.199"]\n'
    }} >/tmp/ac.toml
}}

# ac_vs_pppd TAG MODE ENCRYPTION PPPD-OPTION: our access concentrator here, pppd's
# rp-pppoe plugin in the peer namespace.
ac_vs_pppd() {{
    write_ac_config 'dns-server = ["198.51.100.53"]' "use-encryption = \"$3\""
    $P/access-concentrator --config /tmp/ac.toml --control /tmp/ac.sock --data-plane $2 -v \
        >/log/$1-ours.log 2>&1 &
    ours=$!
    sleep 1
    peer pppd $PPPOE_PPPD $4 >/log/$1-pppd.log 2>&1 &
    theirs=$!
    ready=0; out=none; in=none
    if wait_for 60 peer_has_peer_addr 192.0.2.100; then
        ready=1
        sleep 1
        peer ping -c 3 -W 3 192.0.2.1 >/log/$1-ping-out.log 2>&1; out=$?
        ping -c 3 -W 3 192.0.2.100 >/log/$1-ping-in.log 2>&1; in=$?
        measure $1 192.0.2.1
        $P/access-concentrator --control /tmp/ac.sock sessions >/log/$1-sessions.log 2>&1
    fi
    killall pppd 2>/dev/null
    gone pppd
    stop_ours
    echo "PPPTEST-PART $1 ready=$ready ping_out=$out ping_in=$in"
}}

# ac_limits_vs_pppd TAG: our access concentrator in kernel mode with a session timeout and
# only-one against pppd's rp-pppoe plugin: a second login of the user while the first session
# is up is refused; the first ends at its session timeout (45 s from IPCP up).
ac_limits_vs_pppd() {{
    write_ac_config 'session-timeout = 45' 'idle-timeout = 300' 'only-one = "yes"'
    $P/access-concentrator --config /tmp/ac.toml --control /tmp/ac.sock --data-plane kernel -v \
        >/log/$1-ours.log 2>&1 &
    ours=$!
    sleep 1
    peer pppd $PPPOE_PPPD >/log/$1-pppd.log 2>&1 &
    theirs=$!
    ready=0; out=none; in=none; second=none; ended=0
    if wait_for 60 peer_has_peer_addr 192.0.2.100; then
        ready=1
        sleep 1
        peer ping -c 3 -W 3 192.0.2.1 >/log/$1-ping-out.log 2>&1; out=$?
        ping -c 3 -W 3 192.0.2.100 >/log/$1-ping-in.log 2>&1; in=$?
        measure $1 192.0.2.1
        $P/access-concentrator --control /tmp/ac.sock sessions >/log/$1-sessions.log 2>&1
        peer timeout 30 pppd $PPPOE_PPPD >/log/$1-pppd2.log 2>&1
        second=$?
        wait_for 90 not_running $theirs && ended=1
    fi
    killall pppd 2>/dev/null
    gone pppd
    stop_ours
    echo "PPPTEST-PART $1 ready=$ready ping_out=$out ping_in=$in second=$second ended=$ended"
}}

# client_vs_pppoe_server TAG MODE: rp-pppoe's pppoe-server here, our client in the peer
# namespace.
client_vs_pppoe_server() {{
    cat >/etc/ppp/pppoe-server-options <<EOF
require-chap
lcp-echo-interval 5
lcp-echo-failure 4
ms-dns 198.51.100.53
debug
logfile /log/$1-pppd.log
EOF
    pppoe-server {server_mode} -F -I ac0 -C isp-ac -S internet -L 192.0.2.1 -R 192.0.2.10 -N 4 \
        >/log/$1-pppoe-server.log 2>&1 &
    theirs=$!
    sleep 1
    peer $P/pppoe-client --interface cl0 --user {USER} --password {PASSWORD} --allow chap \
        --keepalive-timeout 0 --no-reconnect --data-plane $2 -v >/log/$1-ours.log 2>&1 &
    ours=$!
    ready=0; out=none; in=none
    if wait_for 60 has_peer_addr 192.0.2.1; then
        ready=1
        sleep 1
        peer ping -c 3 -W 3 192.0.2.1 >/log/$1-ping-out.log 2>&1; out=$?
        ping -c 3 -W 3 192.0.2.10 >/log/$1-ping-in.log 2>&1; in=$?
        measure $1 192.0.2.1
    fi
    stop_ours
    stop $theirs
    killall pppd 2>/dev/null
    gone pppd
    echo "PPPTEST-PART $1 ready=$ready ping_out=$out ping_in=$in"
}}

# dialout_vs_pppd TAG MODE: pppd on ttyS1 here, our dial-out on ttyS2 in the peer namespace;
# the host joins the two ports.
dialout_vs_pppd() {{
    stty -F /dev/ttyS1 raw -echo 115200
    stty -F /dev/ttyS2 raw -echo 115200
    pppd /dev/ttyS1 115200 local nocrtscts nolock nodetach debug logfd 2 require-chap \
        192.0.2.1:192.0.2.2 ms-dns 198.51.100.53 lcp-echo-interval 5 lcp-echo-failure 4 \
        >/log/$1-pppd.log 2>&1 &
    theirs=$!
    sleep 1
    peer $P/dial-out dial --port /dev/ttyS2 --null-modem --ignore-dcd --flow-control none \
        --user {USER} --password {PASSWORD} --keepalive-timeout 0 --idle-timeout 8 \
        --data-plane $2 -v >/log/$1-ours.log 2>&1 &
    ours=$!
    ready=0; out=none; in=none; idle=0
    if wait_for 60 has_peer_addr 192.0.2.1; then
        ready=1
        sleep 1
        peer ping -c 3 -W 3 192.0.2.1 >/log/$1-ping-out.log 2>&1; out=$?
        ping -c 3 -W 3 192.0.2.2 >/log/$1-ping-in.log 2>&1; in=$?
        measure $1 192.0.2.1 -n 64K
        # Quiet from here: our idle timeout ends the call, and the client.
        wait_for 20 not_running $ours && idle=1
    fi
    stop_ours
    stop $theirs
    gone pppd
    echo "PPPTEST-PART $1 ready=$ready ping_out=$out ping_in=$in idle_end=$idle"
}}

# pppd_dials_in TAG MODE: our dial-out server on ttyS1 here, pppd calling from ttyS2 in the
# peer namespace; the server's idle-timeout ends the call after the measurements.
pppd_dials_in() {{
    stty -F /dev/ttyS1 raw -echo 115200
    stty -F /dev/ttyS2 raw -echo 115200
    cat >/tmp/dialin.toml <<EOF
name = "dialin"
baud-rate = 115200
flow-control = "none"
ignore-dcd = true
authentication = ["chap"]
lcp-echo-interval = 0
[profile]
local-address = "192.0.2.1"
remote-address = "192.0.2.2"
dns-server = ["198.51.100.53"]
idle-timeout = "8s"
[[secret]]
name = "{USER}"
password = "{PASSWORD}"
EOF
    $P/dial-out server --config /tmp/dialin.toml --port /dev/ttyS1 --null-modem --once \
        --data-plane $2 -v >/log/$1-ours.log 2>&1 &
    ours=$!
    sleep 1
    peer pppd /dev/ttyS2 115200 local nocrtscts nolock nodetach debug logfd 2 noauth \
        user {USER} password {PASSWORD} noipdefault >/log/$1-pppd.log 2>&1 &
    ready=0; out=none; in=none; idle=0
    if wait_for 60 peer_has_peer_addr 192.0.2.2; then
        ready=1
        sleep 1
        peer ping -c 3 -W 3 192.0.2.1 >/log/$1-ping-out.log 2>&1; out=$?
        ping -c 3 -W 3 192.0.2.2 >/log/$1-ping-in.log 2>&1; in=$?
        measure $1 192.0.2.1 -n 64K
        # Quiet from here: the idle timeout ends the call and `--once` the server.
        wait_for 20 not_running $ours && idle=1
    fi
    stop_ours
    gone pppd
    echo "PPPTEST-PART $1 ready=$ready ping_out=$out ping_in=$in idle_end=$idle"
}}

{calls}
kill $PEER 2>/dev/null
echo PPPTEST-PARTS-DONE
"#,
        calls = calls.join("\n")
    )
}

/// Joins the guest's two serial ports byte for byte until one side closes.
fn join_serial_ports(a: UnixStream, b: UnixStream) -> Result<(), String> {
    let pipe = |mut from: UnixStream, mut to: UnixStream| {
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
        })
    };
    let clone = |s: &UnixStream| s.try_clone().map_err(|e| format!("serial socket: {e}"));
    pipe(clone(&a)?, clone(&b)?);
    pipe(b, a);
    Ok(())
}

/// What one part reported.
#[derive(Debug, Default)]
struct PartResult {
    ready: bool,
    ping_out: Option<i32>,
    ping_in: Option<i32>,
    up_mbps: Option<f64>,
    down_mbps: Option<f64>,
}

/// The receiver's rate from iperf3's text output (`-f m`), in Mbit/s.
fn iperf_rate(log: &str) -> Option<f64> {
    log.lines()
        .filter(|line| line.contains("receiver"))
        .find_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let unit = words.iter().position(|w| w.ends_with("bits/sec"))?;
            let value: f64 = words.get(unit.checked_sub(1)?)?.parse().ok()?;
            Some(match words[unit] {
                "Kbits/sec" => value / 1000.0,
                "Gbits/sec" => value * 1000.0,
                _ => value,
            })
        })
}

fn part_result(outcome: &GuestOutcome, part: Part) -> Option<PartResult> {
    let marker = format!("PPPTEST-PART {} ", part.tag());
    let line = outcome.console.lines().find(|l| l.starts_with(&marker))?;
    let value = |key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_owned)
    };
    let code = |key: &str| value(key).and_then(|v| v.parse().ok());
    Some(PartResult {
        ready: value("ready").as_deref() == Some("1"),
        ping_out: code("ping_out"),
        ping_in: code("ping_in"),
        up_mbps: outcome
            .file(&format!("iperf-{}-up.log", part.tag()))
            .as_deref()
            .and_then(iperf_rate),
        down_mbps: outcome
            .file(&format!("iperf-{}-down.log", part.tag()))
            .as_deref()
            .and_then(iperf_rate),
    })
}

/// What a part's logs must show beyond pings and iperf3.
fn check_logs(outcome: &GuestOutcome, part: Part) -> Result<(), String> {
    let ours = outcome
        .file(&format!("{}-ours.log", part.tag()))
        .unwrap_or_default();
    let theirs = outcome
        .file(&format!("{}-pppd.log", part.tag()))
        .unwrap_or_default();
    let expected_path = if part.kernel() {
        "kernel data path"
    } else {
        "TUN data path"
    };
    if !ours.contains(expected_path) {
        return Err(format!("our program did not log {expected_path:?}"));
    }
    if matches!(
        part,
        Part::AcKernel | Part::AcTun | Part::AcKernelMppe | Part::AcKernelLimits
    ) {
        // The `sessions` listing (kept one row per event) shows the peer's session.
        let sessions = outcome
            .file(&format!("{}-sessions.log", part.tag()))
            .unwrap_or_default();
        if !(sessions.contains(USER) && sessions.contains("192.0.2.100")) {
            return Err(format!(
                "`sessions` does not list {USER} at 192.0.2.100:\n{sessions}"
            ));
        }
    }
    if part == Part::AcKernelMppe && !theirs.contains("MPPE 128-bit stateless compression enabled")
    {
        return Err("pppd did not log MPPE 128-bit stateless compression enabled".into());
    }
    if matches!(
        part,
        Part::DialoutKernel | Part::DialoutTun | Part::DialinKernel
    ) {
        // Our side's idle timeout ended the quiet call, and with it the program.
        let marker = format!("PPPTEST-PART {} ", part.tag());
        let ended = outcome
            .console
            .lines()
            .any(|l| l.starts_with(&marker) && l.contains("idle_end=1"));
        let (said, status) = match part {
            Part::DialinKernel => ("closing the call (Idle timeout)", "exit status 0"),
            _ => ("idle timeout", "exit status 12"),
        };
        if !ended || !ours.contains(said) || !ours.contains(status) {
            return Err(format!(
                "our idle timeout did not end the quiet call ({said:?}, {status:?}):\n{ours}"
            ));
        }
    }
    if part == Part::DialinKernel {
        check_dialin_accounting(outcome, &ours)?;
    }
    if part == Part::AcKernelLimits {
        check_limits(outcome, &ours)?;
    }
    Ok(())
}

/// The dial-in server accounted at least what iperf3's receivers got (the kernel's counters).
fn check_dialin_accounting(outcome: &GuestOutcome, ours: &str) -> Result<(), String> {
    let (input, output) = accounted_octets(ours)
        .ok_or_else(|| format!("the server logged no accounting line:\n{ours}"))?;
    // What iperf3's receivers got (the sender's 64 KiB may not all cross the slow line before
    // it stops) is a floor for what the interface carried.
    let received = |direction: &str| {
        outcome
            .file(&format!(
                "iperf-{}-{direction}.log",
                Part::DialinKernel.tag()
            ))
            .as_deref()
            .and_then(iperf_received_bytes)
            .ok_or_else(|| format!("iperf3 {direction}: no receiver line"))
    };
    let (up, down) = (received("up")?, received("down")?);
    if input < up || output < down {
        return Err(format!(
            "the call was accounted {input} octets in and {output} out, less than iperf3 \
             received ({up} up, {down} down)"
        ));
    }
    Ok(())
}

/// The bytes the receiver got, from iperf3's text output (`76.4 KBytes` on its `receiver`
/// line), rounded down.
fn iperf_received_bytes(log: &str) -> Option<u64> {
    let line = log.lines().find(|line| line.contains("receiver"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let unit = words.iter().position(|w| w.ends_with("Bytes"))?;
    let value: f64 = words.get(unit.checked_sub(1)?)?.parse().ok()?;
    let scale = match words[unit] {
        "KBytes" => 1024.0,
        "MBytes" => 1024.0 * 1024.0,
        "GBytes" => 1024.0 * 1024.0 * 1024.0,
        _ => 1.0,
    };
    // iperf3 prints three significant digits: take the lowest value that prints this way.
    Some(((value - 0.05) * scale).max(0.0) as u64)
}

/// The octets in and out of the server's `user "..." accounted: N s, IN octets in, OUT out`.
fn accounted_octets(log: &str) -> Option<(u64, u64)> {
    let line = log.lines().find(|l| l.contains("accounted: "))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    // The number in front of the first `word`.
    let number_before = |word: &str| -> Option<u64> {
        let at = words.iter().position(|w| *w == word)?;
        words.get(at.checked_sub(1)?)?.parse().ok()
    };
    Some((number_before("octets")?, number_before("out")?))
}

/// `ac-kernel-limits`: the second login refused (only-one), the first session closed at its
/// session timeout and accounted with what the kernel counted.
fn check_limits(outcome: &GuestOutcome, ours: &str) -> Result<(), String> {
    let marker = format!("PPPTEST-PART {} ", Part::AcKernelLimits.tag());
    let line = outcome
        .console
        .lines()
        .find(|l| l.starts_with(&marker))
        .unwrap_or_default();
    if !ours.contains("refused: it has a session up (only-one)") {
        return Err("our AC did not refuse the second login (only-one)".into());
    }
    if line.contains("second=0") {
        return Err("the second pppd came up (only-one)".into());
    }
    if !line.contains("ended=1") {
        return Err("the first session did not end within 90 s of the checks".into());
    }
    if !ours.contains("closing (Session timeout)") {
        return Err("our AC did not close the session at its session timeout".into());
    }
    let accounted = ours
        .lines()
        .find(|l| l.contains("accounted:") && l.contains("Session-Timeout"))
        .ok_or("no accounting line with Session-Timeout in our AC's log")?;
    // "... accounted: 45 s, 123456 octets in, 654321 out (Session-Timeout)": the pings and
    // iperf3 runs crossed the kernel's interface, so both counters are well above zero.
    match accounted_octets(accounted) {
        Some((input, output)) if input > 100_000 && output > 100_000 => {
            eprintln!("ac-kernel-limits: {accounted}");
            Ok(())
        }
        _ => Err(format!(
            "the accounting line does not count the kernel's traffic: {accounted}"
        )),
    }
}

fn kernel_data_path(suite: Suite) {
    let parts = parts();
    Scenario::new("kernel-data-path", suite, script(suite, &parts))
        .with_our_programs()
        .with_second_serial()
        .memory_mb(384)
        .timeout(Duration::from_secs(600))
        .run(|run: &mut ScenarioRun| {
            let guest = run.guest().ok_or("no guest")?;
            let (a, b) = (guest.serial()?, guest.serial2()?);
            join_serial_ports(a, b)?;
            run.wait_for_console("PPPTEST-PARTS-DONE", Duration::from_secs(580))?;
            let outcome = run.wait_exit(Duration::from_secs(30))?.clone();
            let mut table = format!(
                "kernel data path vs TUN in the {suite} guest ({}), iperf3 3 s each way (serial: 64 KiB), Mbit/s\n\
                 {:<16} {:>10} {:>10}\n",
                outcome
                    .console
                    .lines()
                    .find_map(|l| l.strip_prefix("PPPTEST-KERNEL "))
                    .unwrap_or("?"),
                "part",
                "up",
                "down"
            );
            let mut failures = Vec::new();
            for &part in &parts {
                let Some(result) = part_result(&outcome, part) else {
                    failures.push(format!("{}: no result", part.tag()));
                    continue;
                };
                let rate = |r: Option<f64>| r.map_or("-".to_owned(), |r| format!("{r:.1}"));
                table.push_str(&format!(
                    "{:<16} {:>10} {:>10}\n",
                    part.tag(),
                    rate(result.up_mbps),
                    rate(result.down_mbps)
                ));
                let problem = if !result.ready {
                    Some("the link never came up".to_owned())
                } else if result.ping_out != Some(0) || result.ping_in != Some(0) {
                    Some(format!(
                        "pings failed (out {:?}, in {:?})",
                        result.ping_out, result.ping_in
                    ))
                } else if result.up_mbps.is_none() || result.down_mbps.is_none() {
                    Some("iperf3 did not finish both ways".to_owned())
                } else {
                    check_logs(&outcome, part).err()
                };
                if let Some(problem) = problem {
                    failures.push(format!("{}: {problem}", part.tag()));
                }
            }
            eprint!("{table}");
            run.trace(&table);
            let _ = std::fs::write(
                interop_dir().join(format!("kernel-path-{suite}.txt")),
                &table,
            );
            if failures.is_empty() {
                Ok(())
            } else {
                Err(failures.join("\n"))
            }
        });
}

#[test]
fn accounting_lines_are_read() {
    let log = "2026 INFO user \"alice\" accounted: 31 s, 70123 octets in, 69001 out\n";
    assert_eq!(accounted_octets(log), Some((70_123, 69_001)));
    assert_eq!(accounted_octets("nothing"), None);
    // The access concentrator's, with the Acct-Terminate-Cause after it.
    let line = "2026-12-07T15:00:00Z  INFO link 0x1 user \"alice\" accounted: 45 s, 1234567 \
                octets in, 7654321 out (Session-Timeout)";
    assert_eq!(accounted_octets(line), Some((1_234_567, 7_654_321)));
    assert_eq!(accounted_octets("accounted: nothing"), None);
    let iperf = "[  5]   0.00-0.36   sec  11.3 KBytes  0.26 Mbits/sec                  receiver";
    assert_eq!(iperf_received_bytes(iperf), Some(11_520));
    assert_eq!(iperf_received_bytes("no receiver"), None);
}

#[test]
fn iperf_rates_are_read() {
    let log = "[ ID] Interval           Transfer     Bitrate         Retr\n\
[  5]   0.00-3.00   sec  12.6 MBytes  35.2 Mbits/sec    0             sender\n\
[  5]   0.00-3.04   sec  12.5 MBytes  34.8 Mbits/sec                  receiver\n";
    assert_eq!(iperf_rate(log), Some(34.8));
    assert_eq!(
        iperf_rate("[  5] 0.00-3.04 sec 1 MBytes 900 Kbits/sec receiver"),
        Some(0.9)
    );
    assert_eq!(iperf_rate("nothing"), None);
}
