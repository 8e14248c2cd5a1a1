//! This stack's whole link (`ppp_link::Link` on `ppp_tokio::StreamDriver`) against real pppd on
//! the guest's serial port, without authentication: LCP and IPCP open on both sides, each side
//! pings the other, and our Terminate-Request ends pppd.

use std::net::Ipv4Addr;
use std::time::Duration;

use ppp_interop::our_link::{GUEST_PPPD_MARKER, check_session, console_marker_code};
use ppp_interop::{OurLinkPlan, Scenario, ScenarioRun, Suite, pppd_session_script, run_our_link};
use ppp_ipcp::IpcpConfig;
use ppp_link::LinkConfig;

/// One test per suite for each scenario function.
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
    link_noauth => link_pppd_noauth_bookworm, link_pppd_noauth_trixie;
}

/// Our address (pppd assigns it).
const OURS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// pppd's address.
const PPPD: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// pppd's exit status after the peer terminated the link: 16, `EXIT_HANGUP` (pppd treats the
/// peer's Terminate-Request on a `local` line as a hangup).
const PPPD_EXIT_HANGUP: i32 = 16;

/// pppd `noauth 192.0.2.2:192.0.2.1` and our link without authentication, asking for an address
/// (and DNS, which pppd rejects): LCP and IPCP reach Opened on both sides, our IpUp carries the
/// addresses pppd assigned, 3 pings each way succeed, pppd's CCP request gets our
/// Protocol-Reject, and our Terminate-Request ends pppd.
fn link_noauth(suite: Suite) {
    let script = pppd_session_script(
        "",
        "noauth lcp-restart 1 ipcp-restart 1 192.0.2.2:192.0.2.1",
        OURS,
    );
    Scenario::new("link-pppd-noauth", suite, script)
        .timeout(Duration::from_secs(100))
        .run(|run: &mut ScenarioRun| {
            let mut config = LinkConfig::default();
            config.lcp.allow.clear();
            config.ipcp = Some(IpcpConfig::client());
            let report = run_our_link(run, OurLinkPlan::new(config).seed(0x1001))?;
            let outcome = run.wait_exit(Duration::from_secs(40))?;
            check_session(
                &report,
                outcome,
                (OURS, PPPD),
                3,
                &[
                    "rcvd [LCP ConfAck",
                    "rcvd [IPCP ConfAck",
                    "Protocol-Reject for 'Compression Control Protocol'",
                    "rcvd [LCP TermReq",
                ],
            )?;
            let pppd_exit = console_marker_code(&outcome.console, GUEST_PPPD_MARKER);
            if pppd_exit != Some(PPPD_EXIT_HANGUP) {
                return Err(format!(
                    "pppd exit {pppd_exit:?}, expected {PPPD_EXIT_HANGUP}"
                ));
            }
            if !report.logged("sent [IPCP ConfReq") {
                return Err("our log shows no `sent [IPCP ConfReq`".into());
            }
            Ok(())
        });
}
