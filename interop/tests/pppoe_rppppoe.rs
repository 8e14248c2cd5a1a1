//! This stack's PPPoE client and access concentrator against rp-pppoe and pppd's rp-pppoe
//! plugin in the guest, over the guest NIC's Ethernet socket (no root needed).
//!
//! - `pppoe_client_vs_pppoe_server_*`: the guest runs rp-pppoe's `pppoe-server` (pppd behind it
//!   requires CHAP or MS-CHAPv2 and sends LCP echoes); our `PppoeClient` discovers it, comes up
//!   with 192.0.2.10, pings 192.0.2.1, answers the guest's pings and closes the session (LCP
//!   Terminate, PADT). rp-pppoe runs pppd in user mode (`pty`) in both suites; the `kernel`
//!   variant (rp-pppoe 4.0 only) runs it with the plugin (`pppoe-server -k`).
//! - `pppoe_server_ends_session_*`: the same session, ended by the guest (SIGTERM to its pppd);
//!   `pppoe-server`'s PADT must take our client down cleanly.
//! - `pppd_plugin_client_vs_our_ac_*`: the guest runs `pppd plugin rp-pppoe.so` (kernel-mode
//!   PPPoE) against our `PppoeServer` (CHAP or MS-CHAPv2 required, pool 192.0.2.100–199, DNS
//!   198.51.100.53); both sides ping each other, then the guest ends pppd with SIGTERM and our
//!   server forgets the session (after pppd 2.5's PADT; pppd 2.4.9 sends none, so there LCP's
//!   Terminate exchange ends it).
//!
//! Like the other scenario files, each scenario is a function of the suite and `suite_tests!`
//! makes one test per Debian suite.

use std::net::Ipv4Addr;
use std::time::Duration;

use ppp_auth::SecretsTable;
use ppp_interop::pppoe_peer::{PppoePlan, PppoeReport, run_pppoe_client, run_pppoe_server};
use ppp_interop::{GuestOutcome, Scenario, ScenarioRun, Suite};
use ppp_ipcp::{AddressRange, Ipcp, IpcpConfig, Ipv6cpConfig};
use ppp_link::auth::{AuthProtocol, AuthenticatorConfig, ClientCredentials};
use ppp_link::pppoe::{PppoeClient, PppoeServer};
use ppp_link::{LinkConfig, Random};
use pppoe_discovery::{AcConfig, ClientConfig, MacAddr};

macro_rules! suite_tests {
    ($($scenario:ident($($arg:expr),*) => $bookworm:ident, $trixie:ident;)*) => {$(
        #[test]
        fn $bookworm() {
            $scenario(Suite::Bookworm, $($arg),*);
        }

        #[test]
        fn $trixie() {
            $scenario(Suite::Trixie, $($arg),*);
        }
    )*};
}

suite_tests! {
    pppoe_client_vs_pppoe_server(AuthProtocol::ChapMd5, ServerMode::Pty)
        => pppoe_client_vs_pppoe_server_chap_bookworm, pppoe_client_vs_pppoe_server_chap_trixie;
    pppoe_client_vs_pppoe_server(AuthProtocol::MsChapV2, ServerMode::Pty)
        => pppoe_client_vs_pppoe_server_mschapv2_bookworm,
           pppoe_client_vs_pppoe_server_mschapv2_trixie;
    pppoe_server_ends_session() => pppoe_server_ends_session_bookworm,
        pppoe_server_ends_session_trixie;
    pppd_plugin_client_vs_our_ac(AuthProtocol::ChapMd5)
        => pppd_plugin_client_vs_our_ac_chap_bookworm, pppd_plugin_client_vs_our_ac_chap_trixie;
    pppd_plugin_client_vs_our_ac(AuthProtocol::MsChapV2)
        => pppd_plugin_client_vs_our_ac_mschapv2_bookworm,
           pppd_plugin_client_vs_our_ac_mschapv2_trixie;
}

/// `pppoe-server -k` (pppd with the rp-pppoe plugin for each session): rp-pppoe 4.0 only, as
/// Debian 12 builds 3.15 without kernel mode (`pppoe-server: invalid option -- 'k'`).
#[test]
fn pppoe_client_vs_pppoe_server_kernel_chap_trixie() {
    pppoe_client_vs_pppoe_server(Suite::Trixie, AuthProtocol::ChapMd5, ServerMode::Kernel);
}

/// The user both sides know.
const USER: &str = "alice";
/// Her password (no spaces or quotes: it goes on pppd's command line and into chap-secrets).
const PASSWORD: &str = "pppoe-interop-secret";
/// The AC name and service of the guest's `pppoe-server`.
const ISP_AC: &str = "isp-ac";
/// The AC name of our access concentrator.
const OUR_AC: &str = "our-ac";
/// The service both offer.
const SERVICE: &str = "internet";
/// The AC's address in both scenarios.
const AC_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The address `pppoe-server -R` hands out first.
const RP_CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
/// The first address of our pool.
const POOL_FIRST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
/// The last address of our pool.
const POOL_LAST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 199);
/// The DNS server both ACs hand out.
const DNS: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 53);
/// Our MAC address on the guest's segment (locally administered).
const HOST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
/// The console line the guest prints after its ping, followed by ping's exit code.
const GUEST_PING_MARKER: &str = "PPPTEST-PING rc=";
/// The most one guest run may take.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

/// How `pppoe-server` runs pppd for a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerMode {
    /// User mode (the default of both versions): `pppd pty 'pppoe -n -I eth0 -e SESSION:MAC'`.
    Pty,
    /// Kernel mode (`-k`, rp-pppoe 4.0): pppd with the rp-pppoe plugin and
    /// `rp_pppoe_sess SESSION:MAC`.
    Kernel,
}

/// Who ends the session in scenario 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// Our client closes it (LCP Terminate, PADT) once both sides pinged.
    WeClose,
    /// The guest's pppd is sent SIGTERM once both sides pinged; `pppoe-server` sends a PADT (in
    /// user mode pppd's Terminate-Request is lost with its `pppoe` helper).
    AcCloses,
}

/// pppd's option for requiring `method` of the peer.
fn pppd_require(method: AuthProtocol) -> &'static str {
    match method {
        AuthProtocol::MsChapV2 => "require-mschap-v2",
        AuthProtocol::MsChapV1 => "require-mschap",
        AuthProtocol::Pap => "require-pap",
        _ => "require-chap",
    }
}

/// How pppd (and our log) prints the LCP Authentication-Protocol option for `method`.
fn auth_option_text(method: AuthProtocol) -> &'static str {
    match method {
        AuthProtocol::MsChapV2 => "<auth chap MS-v2>",
        AuthProtocol::Pap => "<auth pap>",
        _ => "<auth chap MD5>",
    }
}

/// Whether some line of `log` contains `needle`, with runs of spaces counted as one (pppd writes
/// `local  IP address`).
fn log_has(log: &[String], needle: &str) -> bool {
    let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let needle = squeeze(needle);
    log.iter().any(|line| squeeze(line).contains(&needle))
}

/// A failure message with our report, pppd's log and the guest's other logs.
fn failure(what: &str, report: &PppoeReport, outcome: Option<&GuestOutcome>) -> String {
    let mut message = format!("{what}\n  ours: {}", report.summary());
    if let Some(outcome) = outcome {
        for tag in ["pppd", "pppoe-server", "syslog", "ping"] {
            let lines = outcome.tagged_lines(tag);
            if !lines.is_empty() {
                message.push_str(&format!("\n  {tag}:\n    {}", lines.join("\n    ")));
            }
        }
    }
    message
}

/// The guest script of scenario 1: syslogd (rp-pppoe logs there), pppd's options for
/// `pppoe-server` (auth `method`, echoes, DNS, a log file), chap-secrets, then `pppoe-server` on
/// eth0; once `ppp0` has its address the guest pings our address, prints
/// `PPPTEST-PING rc=<rc>`, waits (30 s at most) for pppd to end the session we close (or, with
/// [`Ending::AcCloses`], waits for the host's line on ttyS1 and sends pppd SIGTERM), and stops
/// `pppoe-server`. Exits with ping's exit code (99 when `ppp0` never came up).
fn pppoe_server_script(method: AuthProtocol, mode: ServerMode, ending: Ending) -> String {
    let end_session = match ending {
        Ending::WeClose => "",
        Ending::AcCloses => {
            "stty -F /dev/ttyS1 raw -echo 2>/dev/null
timeout 60 head -n 1 /dev/ttyS1 >/dev/null
echo 'released by the host: ending the session'
kill $(pidof pppd) 2>/dev/null
"
        }
    };
    let require = pppd_require(method);
    // rp-pppoe 4.0 takes the plugin's path with `-g`.
    let kernel_setup = match mode {
        ServerMode::Pty => "kernel=\n",
        ServerMode::Kernel => {
            "plugin=$(ls /usr/lib/pppd/*/rp-pppoe.so | head -n 1)
kernel=\"-k -g $plugin\"
echo \"pppoe-server kernel mode: $kernel\"
"
        }
    };
    format!(
        "ip link set eth0 up
mkdir -p /log
syslogd -n -O /log/syslog.log &
cat >/etc/ppp/pppoe-server-options <<'EOF'
{require}
lcp-echo-interval 2
lcp-echo-failure 4
ms-dns {DNS}
debug
logfile /log/pppd.log
EOF
printf '%s * %s *\\n' {USER} {PASSWORD} >/etc/ppp/chap-secrets
{kernel_setup}ppptest-run pppoe-server pppoe-server $kernel -F -I eth0 -C {ISP_AC} -S {SERVICE} \
-L {AC_ADDR} -R {RP_CLIENT_ADDR} -N 4 &
sleep 1
echo PPPTEST-READY
i=0
while [ $i -lt 60 ]; do
    ip -4 addr show dev ppp0 2>/dev/null | grep -q 'inet ' && break
    sleep 1
    i=$((i + 1))
done
ping_rc=none
if ip -4 addr show dev ppp0 2>/dev/null | grep -q 'inet '; then
    ip -4 addr show dev ppp0 >/log/ppp0-addr.txt 2>&1
    sleep 1
    ppptest-run ping ping -c 3 -W 3 {RP_CLIENT_ADDR}
    ping_rc=$?
fi
echo \"{GUEST_PING_MARKER}$ping_rc\"
{end_session}i=0
while [ $i -lt 30 ] && pidof pppd >/dev/null; do
    sleep 1
    i=$((i + 1))
done
if pidof pppd >/dev/null; then echo PPPTEST-PPPD-STILL-RUNNING; else echo PPPTEST-PPPD-GONE; fi
sleep 1
kill $(pidof pppoe-server) 2>/dev/null
sleep 1
kill $(pidof syslogd) 2>/dev/null
[ \"$ping_rc\" = none ] && exit 99
exit $ping_rc
"
    )
}

/// Scenario 1: our `PppoeClient` against rp-pppoe's `pppoe-server`, the AC requiring `method`.
fn pppoe_client_vs_pppoe_server(suite: Suite, method: AuthProtocol, mode: ServerMode) {
    pppoe_client_session(suite, method, mode, Ending::WeClose);
}

/// Scenario 1 with the AC ending the session: the guest ends its pppd and `pppoe-server` sends
/// a PADT; our client must notice and go down by itself.
fn pppoe_server_ends_session(suite: Suite) {
    pppoe_client_session(
        suite,
        AuthProtocol::ChapMd5,
        ServerMode::Pty,
        Ending::AcCloses,
    );
}

/// Our client against the guest's `pppoe-server` in `mode`, requiring `method`, ended as
/// `ending` says.
fn pppoe_client_session(suite: Suite, method: AuthProtocol, mode: ServerMode, ending: Ending) {
    let name = match (method, mode, ending) {
        (_, _, Ending::AcCloses) => "pppoe-server-ends-session",
        (_, ServerMode::Kernel, _) => "pppoe-client-vs-pppoe-server-kernel-chap",
        (AuthProtocol::MsChapV2, _, _) => "pppoe-client-vs-pppoe-server-mschapv2",
        _ => "pppoe-client-vs-pppoe-server-chap",
    };
    Scenario::new(name, suite, pppoe_server_script(method, mode, ending))
        .with_ethernet_socket()
        .timeout(SCENARIO_TIMEOUT)
        .run(|run: &mut ScenarioRun| {
            run.wait_for_console("PPPTEST-READY", Duration::from_secs(60))?;
            let mut link = LinkConfig::pppoe();
            link.lcp.allow = vec![AuthProtocol::ChapMd5, AuthProtocol::MsChapV2];
            link.auth.credentials = Some(ClientCredentials::password(USER, PASSWORD));
            let discovery = ClientConfig {
                service_name: SERVICE.to_owned(),
                ..ClientConfig::default()
            };
            let client = PppoeClient::new(
                discovery,
                link,
                MacAddr(HOST_MAC),
                Random::seeded(0x5050_4F45),
            );
            let mut plan = PppoePlan::new(GUEST_PING_MARKER).timeout(Duration::from_secs(80));
            if ending == Ending::AcCloses {
                plan = plan.release_guest();
            }
            let report = run_pppoe_client(run, client, &plan)?;
            let outcome = run.wait_exit(Duration::from_secs(40))?.clone();
            match ending {
                Ending::WeClose => check_client(suite, mode, &report, &outcome, method),
                Ending::AcCloses => check_ac_ended(&report, &outcome),
            }
        });
}

fn check_client(
    suite: Suite,
    mode: ServerMode,
    report: &PppoeReport,
    outcome: &GuestOutcome,
    method: AuthProtocol,
) -> Result<(), String> {
    let fail = |what: &str| Err(failure(what, report, Some(outcome)));
    if report.ac_name.as_deref() != Some(ISP_AC) {
        return fail("the session is not with the guest's AC");
    }
    if report.ip_up != Some((RP_CLIENT_ADDR, AC_ADDR)) {
        return fail(&format!(
            "expected IpUp local {RP_CLIENT_ADDR} peer {AC_ADDR}"
        ));
    }
    if report.dns.first() != Some(&DNS) {
        return fail(&format!("expected DNS {DNS}"));
    }
    if report.echo_replies < 3 {
        return fail(&format!("3 echo replies wanted from {AC_ADDR}"));
    }
    if report.echo_requests_answered < 3 {
        return fail("the guest's 3 echo requests were not all answered");
    }
    if !report.closed_by_us || report.session_down.is_none() {
        return fail("we did not close the session");
    }
    if report.padt_sent == 0 || report.sessions_left != 0 {
        return fail("we sent no PADT, or our client still holds the session");
    }
    if !report.logged("sent [LCP ConfReq") {
        return fail("our log shows no `sent [LCP ConfReq`");
    }
    let ping = outcome.tagged_lines("ping").join("\n");
    if !outcome.succeeded() || !ping.contains("3 packets received") {
        return fail(&format!(
            "the guest's ping failed (script exit {:?})",
            outcome.exit_code
        ));
    }
    if !outcome.console.contains("PPPTEST-PPPD-GONE") {
        return fail("the guest's pppd did not end after we closed the session");
    }
    let pppd_log = outcome.pppd_log();
    // pppd 2.4.9 logs no success line for CHAP as the authenticator; 2.5 logs
    // `Peer alice authenticated with CHAP` (also for MS-CHAPv2).
    let response = format!("name = \"{USER}\"");
    let success = format!("Peer {USER} authenticated with CHAP");
    let remote = format!("remote IP address {RP_CLIENT_ADDR}");
    let mut needles = vec![
        "rcvd [CHAP Response",
        response.as_str(),
        "sent [CHAP Success",
        remote.as_str(),
        "rcvd [LCP TermReq",
    ];
    if suite == Suite::Trixie {
        needles.push(success.as_str());
    }
    for needle in needles {
        if !log_has(&pppd_log, needle) {
            return fail(&format!("pppd did not log `{needle}`"));
        }
    }
    let offered = auth_option_text(method);
    if !report.logged(offered) {
        return fail(&format!("pppd's LCP ConfReq did not carry {offered}"));
    }
    let connect = match mode {
        ServerMode::Pty => "Connect: ppp0 <--> /dev/pts/",
        ServerMode::Kernel => "Connect: ppp0 <--> eth0",
    };
    if !log_has(&pppd_log, connect) {
        return fail(&format!("pppd did not log `{connect}`"));
    }
    if !report.logged("rcvd [LCP EchoReq") || !report.logged("sent [LCP EchoRep") {
        return fail("pppd's LCP echoes (lcp-echo-interval 2) were not answered");
    }
    let syslog = outcome.file("syslog.log").unwrap_or_default();
    let mac = "02:00:00:00:00:01";
    for event in ["created", "closed"] {
        let id = report.session_id.unwrap_or(0);
        let line = format!("Session {id} {event} for client {mac}");
        if !syslog.contains(&line) {
            return fail(&format!("pppoe-server did not log `{line}`"));
        }
    }
    Ok(())
}

/// The checks of [`pppoe_server_ends_session`]: the session came up and carried pings, the
/// guest ended pppd, and `pppoe-server`'s PADT took our client down (it holds no session and sent
/// no PADT of its own).
fn check_ac_ended(report: &PppoeReport, outcome: &GuestOutcome) -> Result<(), String> {
    let fail = |what: &str| Err(failure(what, report, Some(outcome)));
    if report.ip_up != Some((RP_CLIENT_ADDR, AC_ADDR)) || report.echo_replies < 3 {
        return fail("the session did not come up and carry our pings");
    }
    if report.closed_by_us || !report.guest_released {
        return fail("the guest was not released to end the session");
    }
    let Some(reason) = report.session_down.as_deref() else {
        return fail("our client did not go down when the AC ended the session");
    };
    if report.sessions_left != 0 {
        return fail(&format!(
            "our client still holds the session (down: {reason})"
        ));
    }
    // In user mode pppd's Terminate-Request never reaches the wire: pppd's SIGTERM also ends
    // the `pppoe` helper on its pty first; `pppoe-server` then sends the PADT.
    if report.padt_received == 0 || !reason.contains("terminated by the access concentrator") {
        return fail(&format!(
            "pppoe-server's PADT did not end our session (down: {reason})"
        ));
    }
    if report.padt_sent != 0 {
        return fail("we sent a PADT for a session the AC had ended");
    }
    if !outcome.console.contains("PPPTEST-PPPD-GONE") {
        return fail("the guest's pppd did not end");
    }
    if !log_has(&outcome.pppd_log(), "sent [LCP TermReq") {
        return fail("pppd did not log its Terminate-Request");
    }
    Ok(())
}

/// The guest script of scenario 2: `pppd plugin rp-pppoe.so` on eth0 asking for service
/// `internet` of our AC, as `alice`; once `ppp0` has its address the guest pings our address,
/// prints `PPPTEST-PING rc=<rc>`, waits (60 s at most) for the host's line on ttyS1, ends pppd
/// with SIGTERM and prints `PPPTEST-PPPD rc=<rc>`. Exits with ping's exit code (99 when `ppp0`
/// never came up).
fn pppd_plugin_script() -> String {
    format!(
        "ip link set eth0 up
stty -F /dev/ttyS1 raw -echo 2>/dev/null
ppptest-run pppd pppd plugin rp-pppoe.so nic-eth0 rp_pppoe_service {SERVICE} \
rp_pppoe_ac {OUR_AC} user {USER} password {PASSWORD} noipdefault usepeerdns noauth +ipv6 \
nodetach debug logfd 2 maxfail 1 lcp-echo-interval 2 lcp-echo-failure 4 &
i=0
while [ $i -lt 60 ]; do
    ip -4 addr show dev ppp0 2>/dev/null | grep -q 'inet ' && break
    pidof pppd >/dev/null || break
    sleep 1
    i=$((i + 1))
done
ping_rc=none
if ip -4 addr show dev ppp0 2>/dev/null | grep -q 'inet '; then
    ip -4 addr show dev ppp0 >/log/ppp0-addr.txt 2>&1
    cp /etc/ppp/resolv.conf /log/resolv.conf 2>/dev/null
    sleep 1
    ppptest-run ping ping -c 3 -W 3 {AC_ADDR}
    ping_rc=$?
fi
echo \"{GUEST_PING_MARKER}$ping_rc\"
timeout 60 head -n 1 /dev/ttyS1 >/dev/null
echo 'released by the host'
kill $(pidof pppd) 2>/dev/null
i=0
while [ $i -lt 20 ] && pidof pppd >/dev/null; do
    sleep 1
    i=$((i + 1))
done
if pidof pppd >/dev/null; then echo PPPTEST-PPPD-STILL-RUNNING; else echo PPPTEST-PPPD-GONE; fi
sleep 1
[ \"$ping_rc\" = none ] && exit 99
exit $ping_rc
"
    )
}

/// Scenario 2: pppd's rp-pppoe plugin against our `PppoeServer`, which requires `method`.
fn pppd_plugin_client_vs_our_ac(suite: Suite, method: AuthProtocol) {
    let name = match method {
        AuthProtocol::MsChapV2 => "pppd-plugin-client-vs-our-ac-mschapv2",
        _ => "pppd-plugin-client-vs-our-ac-chap",
    };
    Scenario::new(name, suite, pppd_plugin_script())
        .with_ethernet_socket()
        .timeout(SCENARIO_TIMEOUT)
        .run(|run: &mut ScenarioRun| {
            let mut link = LinkConfig::pppoe();
            link.lcp.allow.clear();
            link.lcp.require = vec![method];
            link.lcp.echo_interval = Some(Duration::from_secs(2));
            link.lcp.echo_failure = 4;
            link.auth.authenticator = AuthenticatorConfig::new(OUR_AC);
            // IPv6CP next to IPCP (the AC's `use-ipv6`): pppd runs with `+ipv6`.
            link.ipv6cp = Some(Ipv6cpConfig::default());
            let ac = AcConfig {
                ac_name: OUR_AC.to_owned(),
                services: vec![SERVICE.to_owned()],
                ..AcConfig::default()
            };
            let mut server =
                PppoeServer::new(ac, link, MacAddr(HOST_MAC), Random::seeded(0x4143_4143));
            let pool = AddressRange::new(POOL_FIRST, POOL_LAST);
            server.set_ipcp_factory(Box::new(move |_| {
                Ipcp::with_address_pool(
                    IpcpConfig::server(AC_ADDR, [Some(DNS), None]),
                    pool.clone(),
                )
            }));
            let secrets = SecretsTable::parse_pppd(&format!("{USER} {OUR_AC} {PASSWORD} *\n"))
                .map_err(|e| format!("secrets: {e}"))?;
            let plan = PppoePlan::new(GUEST_PING_MARKER)
                .release_guest()
                .timeout(Duration::from_secs(90));
            let report = run_pppoe_server(run, server, secrets, &plan)?;
            let outcome = run.wait_exit(Duration::from_secs(40))?.clone();
            check_server(suite, &report, &outcome, method)
        });
}

fn check_server(
    suite: Suite,
    report: &PppoeReport,
    outcome: &GuestOutcome,
    method: AuthProtocol,
) -> Result<(), String> {
    let fail = |what: &str| Err(failure(what, report, Some(outcome)));
    if report.secret_lookups != [(format!("{USER}@{OUR_AC}"), true)] {
        return fail("expected one secret lookup for alice@our-ac");
    }
    if !report.authenticated {
        return fail("our server did not authenticate the client");
    }
    if report.ip_up != Some((AC_ADDR, POOL_FIRST)) {
        return fail(&format!("expected IpUp local {AC_ADDR} peer {POOL_FIRST}"));
    }
    if report.echo_replies < 3 {
        return fail(&format!("3 echo replies wanted from {POOL_FIRST}"));
    }
    if report.echo_requests_answered < 3 {
        return fail("the guest's 3 echo requests were not all answered");
    }
    if !report.guest_released || report.session_down.is_none() {
        return fail("the session did not end after we released the guest");
    }
    if report.sessions_left != 0 {
        return fail("our server still holds a session");
    }
    // pppd 2.5's plugin sends a PADT after LCP terminated; 2.4.9's sends none, so there the
    // session ends with LCP (Terminate-Ack, then one restart interval in Stopping).
    if suite == Suite::Trixie
        && (report.padt_received == 0
            || report.session_down.as_deref() != Some("terminated by the client"))
    {
        return fail("pppd 2.5's PADT did not end the session");
    }
    if !report.logged("sent [LCP EchoReq") || !report.logged("rcvd [LCP EchoRep") {
        return fail("pppd did not answer our LCP echoes");
    }
    let ping = outcome.tagged_lines("ping").join("\n");
    if !outcome.succeeded() || !ping.contains("3 packets received") {
        return fail(&format!(
            "the guest's ping failed (script exit {:?})",
            outcome.exit_code
        ));
    }
    if !outcome.console.contains("PPPTEST-PPPD-GONE") {
        return fail("the guest's pppd did not end");
    }
    let pppd_log = outcome.pppd_log();
    let auth = "CHAP authentication succeeded";
    let local = format!("local IP address {POOL_FIRST}");
    let remote = format!("remote IP address {AC_ADDR}");
    let dns = format!("primary DNS address {DNS}");
    let offered = auth_option_text(method);
    for needle in [
        auth,
        local.as_str(),
        remote.as_str(),
        dns.as_str(),
        offered,
        "sent [LCP TermReq",
        // IPv6CP opened with our AC: pppd printed both link-local addresses.
        "local  LL address fe80::",
        "remote LL address fe80::",
    ] {
        if !log_has(&pppd_log, needle) {
            return fail(&format!("pppd did not log `{needle}`"));
        }
    }
    Ok(())
}
