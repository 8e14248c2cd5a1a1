//! Multilink over one PPPoE session (pppd's and RouterOS's `mrru`: "MP over a single link ...
//! useful to overcome PathMTU discovery failures"), against pppd in the guest, both suites:
//!
//! - `pppd_plugin_multilink_vs_our_ac_*`: the guest's `pppd plugin rp-pppoe.so multilink mrru
//!   1614` against our `PppoeServer` with an MRRU of 1614: 1500-byte echo requests with Don't
//!   Fragment set go both ways through the 1492-byte session, in MP fragments.
//! - `pppoe_client_multilink_vs_pppoe_server_*`: our `PppoeClient` with an MRRU against
//!   rp-pppoe's `pppoe-server` whose pppd runs `multilink mrru 1614`: the same 1500-byte pings.
//!
//! Each checks that Multilink was negotiated on both sides (our log and pppd's), that MP frames
//! crossed, and that every 1500-byte ping was answered. Our 1500-byte packets (Don't Fragment
//! set) cross in MP fragments. pppd keeps its `ppp0` MTU at the session's 1492 whatever the
//! MRRU (`mtu 1500` does not raise it either), so Linux sends its own 1500-byte packets in IPv4
//! fragments, which our side puts back together to count the replies.

use std::net::Ipv4Addr;
use std::time::Duration;

use ppp_auth::SecretsTable;
use ppp_interop::pppoe_peer::{PppoePlan, PppoeReport, run_pppoe_client, run_pppoe_server};
use ppp_interop::{GuestOutcome, Scenario, ScenarioRun, Suite};
use ppp_ipcp::{Ipcp, IpcpConfig};
use ppp_link::auth::{AuthProtocol, AuthenticatorConfig, ClientCredentials};
use ppp_link::pppoe::{PppoeClient, PppoeServer};
use ppp_link::{LinkConfig, Random};
use pppoe_discovery::{AcConfig, ClientConfig, MacAddr};

const USER: &str = "alice";
const PASSWORD: &str = "pppoe-multilink-secret";
const OUR_AC: &str = "our-ac";
const ISP_AC: &str = "isp-ac";
const SERVICE: &str = "internet";
const AC_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const HOST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const GUEST_PING_MARKER: &str = "PPPTEST-PING rc=";
const MRRU: u16 = 1614;
/// Our echo requests: a whole Ethernet-sized IP packet, more than the session's 1492.
const PING_SIZE: usize = 1500;
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn pppd_plugin_multilink_vs_our_ac_bookworm() {
    pppd_plugin_multilink_vs_our_ac(Suite::Bookworm);
}

#[test]
fn pppd_plugin_multilink_vs_our_ac_trixie() {
    pppd_plugin_multilink_vs_our_ac(Suite::Trixie);
}

#[test]
fn pppoe_client_multilink_vs_pppoe_server_bookworm() {
    pppoe_client_multilink_vs_pppoe_server(Suite::Bookworm);
}

#[test]
fn pppoe_client_multilink_vs_pppoe_server_trixie() {
    pppoe_client_multilink_vs_pppoe_server(Suite::Trixie);
}

fn failure(what: &str, report: &PppoeReport, outcome: Option<&GuestOutcome>) -> String {
    let mut text = format!("{what}\nour side: {}", report.summary());
    if let Some(outcome) = outcome {
        for tag in ["pppd", "pppoe-server", "ping"] {
            let lines = outcome.tagged_lines(tag);
            if !lines.is_empty() {
                text.push_str(&format!("\n--- {tag} ---\n{}", lines.join("\n")));
            }
        }
        text.push_str(&format!(
            "\n--- pppd log ---\n{}",
            outcome.pppd_log().join("\n")
        ));
    }
    text
}

/// What both scenarios check.
fn check(report: &PppoeReport, outcome: &GuestOutcome) -> Result<(), String> {
    let fail = |what: &str| Err(failure(what, report, Some(outcome)));
    if !report.logged("Multilink bundle up: MRRU 1614") {
        return fail("our side did not run Multilink with the peer's MRRU of 1614");
    }
    if !report.logged("<mrru 1614>") {
        return fail("no MRRU option in our LCP exchange");
    }
    if !report.logged("[MP ") {
        return fail("no MP fragment crossed");
    }
    if report.echo_replies < 3 {
        return fail(&format!(
            "3 replies wanted to our {PING_SIZE}-byte pings with Don't Fragment"
        ));
    }
    let pppd_log = outcome.pppd_log().join("\n");
    if !pppd_log.contains("mrru 1614") {
        return fail("pppd's log shows no MRRU");
    }
    let ping = outcome.tagged_lines("ping").join("\n");
    if !ping.contains("3 packets received") {
        return fail("the guest's 1500-byte pings were not all answered");
    }
    Ok(())
}

/// The guest: `pppd plugin rp-pppoe.so ... multilink mrru 1614` against our AC; 1500-byte
/// pings to our address once `ppp0` is up, then waits for the host's release and ends pppd.
fn pppd_plugin_script() -> String {
    format!(
        "ip link set eth0 up
stty -F /dev/ttyS1 raw -echo 2>/dev/null
ppptest-run pppd pppd plugin rp-pppoe.so nic-eth0 rp_pppoe_service {SERVICE} \
rp_pppoe_ac {OUR_AC} user {USER} password {PASSWORD} noipdefault noauth multilink mrru {MRRU} \
nodetach debug logfd 2 maxfail 1 &
i=0
while [ $i -lt 60 ]; do
    ip -4 addr show dev ppp0 2>/dev/null | grep -q 'inet ' && break
    pidof pppd >/dev/null || break
    sleep 1
    i=$((i + 1))
done
ping_rc=none
if ip -4 addr show dev ppp0 2>/dev/null | grep -q 'inet '; then
    ip link show dev ppp0 >/log/ppp0-link.txt 2>&1
    sleep 1
    ppptest-run ping ping -c 3 -W 3 -s {payload} {AC_ADDR}
    ping_rc=$?
fi
echo \"{GUEST_PING_MARKER}$ping_rc\"
timeout 60 head -n 1 /dev/ttyS1 >/dev/null
kill $(pidof pppd) 2>/dev/null
i=0
while [ $i -lt 20 ] && pidof pppd >/dev/null; do
    sleep 1
    i=$((i + 1))
done
sleep 1
[ \"$ping_rc\" = none ] && exit 99
exit $ping_rc
",
        payload = PING_SIZE - 28
    )
}

fn pppd_plugin_multilink_vs_our_ac(suite: Suite) {
    Scenario::new(
        "pppd-plugin-multilink-vs-our-ac",
        suite,
        pppd_plugin_script(),
    )
    .with_ethernet_socket()
    .timeout(SCENARIO_TIMEOUT)
    .run(|run: &mut ScenarioRun| {
        let mut link = LinkConfig::pppoe();
        link.lcp.allow.clear();
        link.lcp.require = vec![AuthProtocol::ChapMd5];
        link.lcp.mrru = Some(MRRU);
        link.auth.authenticator = AuthenticatorConfig::new(OUR_AC);
        let ac = AcConfig {
            ac_name: OUR_AC.to_owned(),
            services: vec![SERVICE.to_owned()],
            ..AcConfig::default()
        };
        let mut server = PppoeServer::new(ac, link, MacAddr(HOST_MAC), Random::seeded(0x4d50_4d50));
        server.set_ipcp_factory(Box::new(|_| {
            Ipcp::new(IpcpConfig {
                remote_address: Some(CLIENT_ADDR),
                ..IpcpConfig::server(AC_ADDR, [None, None])
            })
        }));
        let secrets = SecretsTable::parse_pppd(&format!("{USER} {OUR_AC} {PASSWORD} *\n"))
            .map_err(|e| format!("secrets: {e}"))?;
        let plan = PppoePlan::new(GUEST_PING_MARKER)
            .release_guest()
            .ping_size(PING_SIZE)
            .timeout(Duration::from_secs(90));
        let report = run_pppoe_server(run, server, secrets, &plan)?;
        let outcome = run.wait_exit(Duration::from_secs(40))?.clone();
        check(&report, &outcome)
    });
}

/// The guest: rp-pppoe's `pppoe-server` whose pppd runs `multilink mrru 1614`; 1500-byte pings
/// to our address once `ppp0` is up, then waits for pppd to end the session we close.
fn pppoe_server_script() -> String {
    format!(
        "ip link set eth0 up
mkdir -p /log
syslogd -n -O /log/syslog.log &
cat >/etc/ppp/pppoe-server-options <<'EOF'
require-chap
multilink
mrru {MRRU}
debug
logfile /log/pppd.log
EOF
printf '%s * %s *\\n' {USER} {PASSWORD} >/etc/ppp/chap-secrets
ppptest-run pppoe-server pppoe-server -F -I eth0 -C {ISP_AC} -S {SERVICE} \
-L {AC_ADDR} -R {CLIENT_ADDR} -N 4 &
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
    ip link show dev ppp0 >/log/ppp0-link.txt 2>&1
    sleep 1
    ppptest-run ping ping -c 3 -W 3 -s {payload} {CLIENT_ADDR}
    ping_rc=$?
fi
echo \"{GUEST_PING_MARKER}$ping_rc\"
i=0
while [ $i -lt 30 ] && pidof pppd >/dev/null; do
    sleep 1
    i=$((i + 1))
done
kill $(pidof pppoe-server) 2>/dev/null
sleep 1
kill $(pidof syslogd) 2>/dev/null
[ \"$ping_rc\" = none ] && exit 99
exit $ping_rc
",
        payload = PING_SIZE - 28
    )
}

fn pppoe_client_multilink_vs_pppoe_server(suite: Suite) {
    Scenario::new(
        "pppoe-client-multilink-vs-pppoe-server",
        suite,
        pppoe_server_script(),
    )
    .with_ethernet_socket()
    .timeout(SCENARIO_TIMEOUT)
    .run(|run: &mut ScenarioRun| {
        run.wait_for_console("PPPTEST-READY", Duration::from_secs(60))?;
        let mut link = LinkConfig::pppoe();
        link.lcp.allow = vec![AuthProtocol::ChapMd5];
        link.lcp.mrru = Some(MRRU);
        link.auth.credentials = Some(ClientCredentials::password(USER, PASSWORD));
        let discovery = ClientConfig {
            service_name: SERVICE.to_owned(),
            ..ClientConfig::default()
        };
        let client = PppoeClient::new(
            discovery,
            link,
            MacAddr(HOST_MAC),
            Random::seeded(0x4d50_434c),
        );
        let plan = PppoePlan::new(GUEST_PING_MARKER)
            .ping_size(PING_SIZE)
            .timeout(Duration::from_secs(80));
        let report = run_pppoe_client(run, client, &plan)?;
        let outcome = run.wait_exit(Duration::from_secs(40))?.clone();
        check(&report, &outcome)
    });
}
