//! Authentication and CCP of this stack's link against real pppd on the guest's serial port.
//!
//! - `client_*`: pppd is the authenticator (`require-pap`, `require-chap`, `require-mschap`,
//!   `require-mschap-v2`, MS-CHAPv2 with `require-mppe-128`, CHAP with `deflate 15`) with its
//!   secrets in `/etc/ppp/{pap,chap}-secrets`; our link answers as `alice`, takes the address
//!   pppd assigns, and (for the CCP cases) brings up MPPE or Deflate.
//! - `server_*`: our link requires PAP, CHAP-MD5, MS-CHAPv1 or MS-CHAPv2 from pppd (`user
//!   alice`, `remotename ourserver`), checks it against our secrets table, and assigns pppd its
//!   address; one case gives pppd a wrong password, and both sides must report the failure.
//!
//! Every successful case reaches IPCP Opened on both sides and pings across both ways; our
//! Terminate-Request ends pppd.

use std::net::Ipv4Addr;
use std::time::Duration;

use ppp_auth::SecretsTable;
use ppp_ccp::CcpConfig;
use ppp_interop::our_link::{GUEST_PPPD_MARKER, check_session, console_marker_code};
use ppp_interop::{
    OurLinkPlan, Scenario, ScenarioRun, Suite, pppd_on_serial, pppd_session_script, run_our_link,
};
use ppp_ipcp::IpcpConfig;
use ppp_lcp::lcp::AuthProtocol;
use ppp_link::LinkConfig;
use ppp_link::auth::{AuthenticatorConfig, ClientCredentials};

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
    client_pap => auth_pppd_client_pap_bookworm, auth_pppd_client_pap_trixie;
    client_chap => auth_pppd_client_chap_bookworm, auth_pppd_client_chap_trixie;
    client_mschap => auth_pppd_client_mschap_bookworm, auth_pppd_client_mschap_trixie;
    client_mschap_v2 => auth_pppd_client_mschap_v2_bookworm, auth_pppd_client_mschap_v2_trixie;
    client_mschap_v2_mppe => auth_pppd_client_mppe_bookworm, auth_pppd_client_mppe_trixie;
    client_mschap_v2_mppe_offered => auth_pppd_client_mppe_offered_bookworm, auth_pppd_client_mppe_offered_trixie;
    client_chap_deflate => auth_pppd_client_deflate_bookworm, auth_pppd_client_deflate_trixie;
    server_pap => auth_pppd_server_pap_bookworm, auth_pppd_server_pap_trixie;
    server_chap => auth_pppd_server_chap_bookworm, auth_pppd_server_chap_trixie;
    server_mschap => auth_pppd_server_mschap_bookworm, auth_pppd_server_mschap_trixie;
    server_mschap_v2 => auth_pppd_server_mschap_v2_bookworm, auth_pppd_server_mschap_v2_trixie;
    server_mschap_v2_mppe => auth_pppd_server_mppe_bookworm, auth_pppd_server_mppe_trixie;
    server_wrong_password => auth_pppd_server_wrong_password_bookworm, auth_pppd_server_wrong_password_trixie;
    client_wrong_password => auth_pppd_client_wrong_password_bookworm, auth_pppd_client_wrong_password_trixie;
}

/// Our address.
const OURS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// pppd's address.
const PPPD: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// The name we authenticate as (client cases) and pppd authenticates as (server cases).
const USER: &str = "alice";
/// Our name as authenticator (pppd's `remotename`).
const OUR_NAME: &str = "ourserver";
/// The password of the client cases (in pppd's secrets files and our credentials).
const CLIENT_PASSWORD: &str = "Client s3cret";
/// pppd's exit status after the peer terminated the link (`EXIT_HANGUP`).
const PPPD_EXIT_HANGUP: i32 = 16;
/// pppd's exit status when it failed to authenticate itself to the peer
/// (`EXIT_AUTH_TOPEER_FAILED`).
const PPPD_EXIT_AUTH_TOPEER_FAILED: i32 = 19;
/// pppd's exit status when the peer failed to authenticate itself (`EXIT_PEER_AUTH_FAILED`).
const PPPD_EXIT_PEER_AUTH_FAILED: i32 = 11;
/// pppd's LCP/IPCP timers for a quick start.
const PPPD_TIMERS: &str = "lcp-restart 1 ipcp-restart 1";

/// pppd authenticates us.
struct ClientCase {
    /// Scenario name (log directory).
    name: &'static str,
    /// pppd's authentication and compression options.
    pppd_options: &'static str,
    /// The secrets file pppd reads.
    secrets_file: &'static str,
    /// Our CCP configuration.
    ccp: Option<CcpConfig>,
    /// Lines pppd must log.
    pppd_needles: &'static [&'static str],
    /// How pppd 2.5 names the method in `Peer alice authenticated with NAME` (pppd 2.4.9 logs
    /// no such line for CHAP; it logs `PAP peer authentication succeeded for alice` for PAP).
    method_name: &'static str,
    /// Our seed.
    seed: u64,
}

fn client_pap(suite: Suite) {
    run_client_case(
        suite,
        &ClientCase {
            name: "auth-pppd-client-pap",
            pppd_options: "require-pap",
            secrets_file: "pap-secrets",
            ccp: None,
            pppd_needles: &[
                "rcvd [PAP AuthReq",
                "sent [PAP AuthAck",
                "PAP peer authentication succeeded for alice",
            ],
            method_name: "PAP",
            seed: 0x2001,
        },
    );
}

fn client_chap(suite: Suite) {
    run_client_case(
        suite,
        &ClientCase {
            name: "auth-pppd-client-chap",
            pppd_options: "require-chap",
            secrets_file: "chap-secrets",
            ccp: None,
            pppd_needles: &[
                "sent [CHAP Challenge",
                "rcvd [CHAP Response",
                "sent [CHAP Success",
            ],
            method_name: "CHAP",
            seed: 0x2002,
        },
    );
}

fn client_mschap(suite: Suite) {
    run_client_case(
        suite,
        &ClientCase {
            name: "auth-pppd-client-mschap",
            pppd_options: "require-mschap",
            secrets_file: "chap-secrets",
            ccp: None,
            pppd_needles: &[
                "<auth chap MS>",
                "rcvd [CHAP Response",
                "sent [CHAP Success",
            ],
            method_name: "CHAP",
            seed: 0x2003,
        },
    );
}

fn client_mschap_v2(suite: Suite) {
    run_client_case(
        suite,
        &ClientCase {
            name: "auth-pppd-client-mschap-v2",
            pppd_options: "require-mschap-v2",
            secrets_file: "chap-secrets",
            ccp: None,
            pppd_needles: &[
                "<auth chap MS-v2>",
                "rcvd [CHAP Response",
                "sent [CHAP Success",
            ],
            method_name: "CHAP",
            seed: 0x2004,
        },
    );
}

fn client_mschap_v2_mppe(suite: Suite) {
    run_client_case(
        suite,
        &ClientCase {
            name: "auth-pppd-client-mppe",
            pppd_options: "require-mschap-v2 require-mppe-128",
            secrets_file: "chap-secrets",
            ccp: Some(CcpConfig::require_mppe_128()),
            pppd_needles: &[
                "sent [CHAP Success",
                "rcvd [CCP ConfAck",
                "MPPE 128-bit stateless compression enabled",
            ],
            method_name: "CHAP",
            seed: 0x2005,
        },
    );
}

/// `use-encryption = yes` (MPPE offered, not required) against pppd `require-mppe-128`: MPPE
/// comes up, and our IPCP waits for CCP as pppd's does, so IPCP opens with one exchange
/// instead of a Terminate-Ack and a restart interval (3 s) late.
fn client_mschap_v2_mppe_offered(suite: Suite) {
    run_client_case(
        suite,
        &ClientCase {
            name: "auth-pppd-client-mppe-offered",
            pppd_options: "require-mschap-v2 require-mppe-128",
            secrets_file: "chap-secrets",
            ccp: Some(CcpConfig {
                encryption: ppp_ccp::Encryption::Yes,
                ..CcpConfig::default()
            }),
            pppd_needles: &[
                "sent [CHAP Success",
                "rcvd [CCP ConfAck",
                "MPPE 128-bit stateless compression enabled",
            ],
            method_name: "CHAP",
            seed: 0x2007,
        },
    );
}

fn client_chap_deflate(suite: Suite) {
    run_client_case(
        suite,
        &ClientCase {
            name: "auth-pppd-client-deflate",
            pppd_options: "require-chap deflate 15",
            secrets_file: "chap-secrets",
            ccp: Some(CcpConfig::deflate(15)),
            pppd_needles: &[
                "sent [CHAP Success",
                "rcvd [CCP ConfAck",
                "Deflate (15) compression enabled",
            ],
            method_name: "CHAP",
            seed: 0x2006,
        },
    );
}

/// pppd requires authentication from us (secrets in its file), assigns us 192.0.2.1; we answer
/// as `alice`, 3 pings each way, our Terminate-Request ends pppd.
fn run_client_case(suite: Suite, case: &ClientCase) {
    let setup = format!(
        "printf '{USER} * \"{CLIENT_PASSWORD}\" *\\n' >/etc/ppp/{}",
        case.secrets_file
    );
    let options = format!(
        "{} name pppdserver {PPPD_TIMERS} {PPPD}:{OURS}",
        case.pppd_options
    );
    let script = pppd_session_script(&setup, &options, OURS);
    Scenario::new(case.name, suite, script)
        .timeout(Duration::from_secs(100))
        .run(|run: &mut ScenarioRun| {
            let mut config = LinkConfig::default();
            config.auth.credentials = Some(ClientCredentials::password(USER, CLIENT_PASSWORD));
            config.ipcp = Some(IpcpConfig::client());
            config.ccp = case.ccp.clone();
            let report = run_our_link(run, OurLinkPlan::new(config).seed(case.seed))?;
            let outcome = run.wait_exit(Duration::from_secs(40))?;
            let success_line = format!("Peer {USER} authenticated with {}", case.method_name);
            let mut needles = case.pppd_needles.to_vec();
            if suite == Suite::Trixie {
                needles.push(&success_line);
            }
            check_session(&report, outcome, (OURS, PPPD), 3, &needles)?;
            expect_transformed_datagrams(&report, case.ccp.as_ref())?;
            // With MPPE required pppd keeps IPCP Closed until CCP is up; our IPCP waits too, so
            // pppd never has to answer an early Configure-Request with a Terminate-Ack.
            if outcome
                .pppd_log()
                .iter()
                .any(|l| l.contains("sent [IPCP TermAck"))
            {
                return Err("pppd answered an IPCP packet with a Terminate-Ack".into());
            }
            if !report.logged("we authenticated to the peer") {
                return Err("our log does not say we authenticated".into());
            }
            expect_pppd_exit(&outcome.console, PPPD_EXIT_HANGUP)
        });
}

/// We authenticate pppd (password `Server-s3cret` in both our table and pppd's options or
/// secrets file).
struct ServerCase {
    /// Scenario name (log directory).
    name: &'static str,
    /// The method we require.
    method: AuthProtocol,
    /// Guest setup (pppd's own secrets), if any.
    setup: &'static str,
    /// pppd's options naming its user and secret.
    pppd_options: &'static str,
    /// Our secrets table (pppd's format).
    our_secrets: &'static str,
    /// Whether our IPCP takes pppd's address from the secrets entry (else from its config).
    address_from_secrets: bool,
    /// Our CCP configuration.
    ccp: Option<CcpConfig>,
    /// Lines pppd must log.
    pppd_needles: &'static [&'static str],
    /// Our seed.
    seed: u64,
}

fn server_pap(suite: Suite) {
    run_server_case(
        suite,
        &ServerCase {
            name: "auth-pppd-server-pap",
            method: AuthProtocol::Pap,
            setup: "",
            pppd_options: "user alice password Server-s3cret",
            our_secrets: "alice ourserver Server-s3cret 192.0.2.2\n",
            address_from_secrets: true,
            ccp: None,
            pppd_needles: &[
                "sent [PAP AuthReq",
                "rcvd [PAP AuthAck",
                "PAP authentication succeeded",
            ],
            seed: 0x3001,
        },
    );
}

fn server_chap(suite: Suite) {
    run_server_case(
        suite,
        &ServerCase {
            name: "auth-pppd-server-chap",
            method: AuthProtocol::ChapMd5,
            setup: "printf 'alice ourserver \"Server-s3cret\"\\n' >/etc/ppp/chap-secrets",
            pppd_options: "user alice",
            our_secrets: "alice ourserver \"Server-s3cret\" *\n",
            address_from_secrets: false,
            ccp: None,
            pppd_needles: &[
                "rcvd [CHAP Challenge",
                "name = \"ourserver\"",
                "rcvd [CHAP Success",
                "CHAP authentication succeeded",
            ],
            seed: 0x3002,
        },
    );
}

fn server_mschap(suite: Suite) {
    run_server_case(
        suite,
        &ServerCase {
            name: "auth-pppd-server-mschap",
            method: AuthProtocol::MsChapV1,
            setup: "",
            pppd_options: "user alice password Server-s3cret",
            our_secrets: "alice * Server-s3cret\n",
            address_from_secrets: false,
            ccp: None,
            pppd_needles: &[
                "<auth chap MS>",
                "rcvd [CHAP Success",
                "CHAP authentication succeeded",
            ],
            seed: 0x3003,
        },
    );
}

fn server_mschap_v2(suite: Suite) {
    run_server_case(
        suite,
        &ServerCase {
            name: "auth-pppd-server-mschap-v2",
            method: AuthProtocol::MsChapV2,
            setup: "printf 'alice ourserver \"Server-s3cret\" *\\n' >/etc/ppp/chap-secrets",
            pppd_options: "user alice",
            our_secrets: "alice ourserver Server-s3cret 192.0.2.2\n",
            address_from_secrets: true,
            ccp: None,
            pppd_needles: &[
                "<auth chap MS-v2>",
                "rcvd [CHAP Success",
                "CHAP authentication succeeded",
            ],
            seed: 0x3004,
        },
    );
}

fn server_mschap_v2_mppe(suite: Suite) {
    run_server_case(
        suite,
        &ServerCase {
            name: "auth-pppd-server-mppe",
            method: AuthProtocol::MsChapV2,
            setup: "",
            pppd_options: "user alice password Server-s3cret require-mppe-128",
            our_secrets: "alice ourserver Server-s3cret *\n",
            address_from_secrets: false,
            ccp: Some(CcpConfig::require_mppe_128()),
            pppd_needles: &[
                "<auth chap MS-v2>",
                "CHAP authentication succeeded",
                "rcvd [CCP ConfAck",
                "MPPE 128-bit stateless compression enabled",
            ],
            seed: 0x3006,
        },
    );
}

/// Options pppd runs with as our client, after the case's own.
fn server_case_pppd_options(own: &str) -> String {
    format!("noauth remotename {OUR_NAME} noipdefault {PPPD_TIMERS} {own}")
}

/// Our link configuration as authenticator requiring `method`, at 192.0.2.1; pppd's address is
/// 192.0.2.2 from our config unless it comes from the secrets entry.
fn server_config(method: AuthProtocol, address_from_secrets: bool) -> LinkConfig {
    let mut config = LinkConfig::default();
    config.lcp.allow.clear();
    config.lcp.require = vec![method];
    config.auth.authenticator = AuthenticatorConfig::new(OUR_NAME);
    let mut ipcp = IpcpConfig::server(OURS, [None, None]);
    if !address_from_secrets {
        ipcp.remote_address = Some(PPPD);
    }
    config.ipcp = Some(ipcp);
    config
}

/// We require `case.method` from pppd, check it against our secrets and assign its address; 3
/// pings each way, our Terminate-Request ends pppd.
fn run_server_case(suite: Suite, case: &ServerCase) {
    let options = server_case_pppd_options(case.pppd_options);
    let script = pppd_session_script(case.setup, &options, OURS);
    Scenario::new(case.name, suite, script)
        .timeout(Duration::from_secs(100))
        .run(|run: &mut ScenarioRun| {
            let secrets = SecretsTable::parse_pppd(case.our_secrets)
                .map_err(|e| format!("our secrets: {e}"))?;
            let mut config = server_config(case.method, case.address_from_secrets);
            config.ccp = case.ccp.clone();
            let plan = OurLinkPlan::new(config).secrets(secrets).seed(case.seed);
            let report = run_our_link(run, plan)?;
            let outcome = run.wait_exit(Duration::from_secs(40))?;
            check_session(&report, outcome, (OURS, PPPD), 3, case.pppd_needles)?;
            expect_transformed_datagrams(&report, case.ccp.as_ref())?;
            if report.secret_lookups != [(format!("{USER}@{OUR_NAME}"), true)] {
                return Err(format!(
                    "expected one lookup of {USER}@{OUR_NAME}: {:?}",
                    report.secret_lookups
                ));
            }
            let authenticated = report.events.iter().any(|e| {
                matches!(e, ppp_link::LinkEvent::Authenticated { peer_name: Some(n) } if n == USER)
            });
            if !authenticated {
                return Err(format!(
                    "no Authenticated event for {USER}: {}",
                    report.summary()
                ));
            }
            expect_pppd_exit(&outcome.console, PPPD_EXIT_HANGUP)
        });
}

/// pppd answers our MS-CHAPv2 challenge with a wrong password: we send a Failure and close the
/// link (LinkDown says the peer failed to authenticate), pppd logs the failure and exits with
/// 19 (`EXIT_AUTH_TOPEER_FAILED`).
fn server_wrong_password(suite: Suite) {
    let options = server_case_pppd_options("user alice password Wrong-s3cret");
    let script = format!(
        "{}\nrc=$?\necho \"{GUEST_PPPD_MARKER}$rc\"\nexit $rc\n",
        pppd_on_serial(&options)
    );
    Scenario::new("auth-pppd-server-wrong-password", suite, script)
        .timeout(Duration::from_secs(90))
        .run(|run: &mut ScenarioRun| {
            let secrets = SecretsTable::parse_pppd("alice ourserver Server-s3cret *\n")
                .map_err(|e| format!("our secrets: {e}"))?;
            let config = server_config(AuthProtocol::MsChapV2, false);
            let plan = OurLinkPlan::new(config)
                .seed(0x3005)
                .secrets(secrets)
                .until_link_down()
                .timeout(Duration::from_secs(60));
            let report = run_our_link(run, plan)?;
            let outcome = run.wait_exit(Duration::from_secs(40))?;
            let pppd_log = outcome.pppd_log();
            let fail = |what: &str| {
                Err(format!(
                    "{what}\n  ours: {}\n  pppd log:\n    {}",
                    report.summary(),
                    pppd_log.join("\n    ")
                ))
            };
            let reason = report.link_down.clone().unwrap_or_default();
            if !reason.contains("peer failed to authenticate") {
                return fail("our LinkDown does not say the peer failed to authenticate");
            }
            if report.ip_up.is_some() {
                return fail("IPCP came up despite the failed authentication");
            }
            for needle in ["rcvd [CHAP Failure", "CHAP authentication failed"] {
                if !pppd_log.iter().any(|l| l.contains(needle)) {
                    return fail(&format!("pppd did not log `{needle}`"));
                }
            }
            if outcome.exit_code != Some(PPPD_EXIT_AUTH_TOPEER_FAILED) {
                return fail(&format!(
                    "pppd exit {:?}, expected {PPPD_EXIT_AUTH_TOPEER_FAILED}",
                    outcome.exit_code
                ));
            }
            Ok(())
        });
}

/// pppd requires MS-CHAPv2 and our password is wrong: pppd sends a Failure and ends the link
/// with exit 11 (`EXIT_PEER_AUTH_FAILED`); our LinkDown says authenticating to the peer failed.
fn client_wrong_password(suite: Suite) {
    let setup = format!("printf '{USER} * \"{CLIENT_PASSWORD}\" *\\n' >/etc/ppp/chap-secrets");
    let options = format!("require-mschap-v2 name pppdserver {PPPD_TIMERS} {PPPD}:{OURS}");
    let script = format!(
        "{setup}\n{}\nrc=$?\necho \"{GUEST_PPPD_MARKER}$rc\"\nexit $rc\n",
        pppd_on_serial(&options)
    );
    Scenario::new("auth-pppd-client-wrong-password", suite, script)
        .timeout(Duration::from_secs(90))
        .run(|run: &mut ScenarioRun| {
            let mut config = LinkConfig::default();
            config.auth.credentials = Some(ClientCredentials::password(USER, "Wrong s3cret"));
            let plan = OurLinkPlan::new(config)
                .seed(0x2007)
                .until_link_down()
                .timeout(Duration::from_secs(60));
            let report = run_our_link(run, plan)?;
            let outcome = run.wait_exit(Duration::from_secs(40))?;
            let pppd_log = outcome.pppd_log();
            let fail = |what: &str| {
                Err(format!(
                    "{what}\n  ours: {}\n  pppd log:\n    {}",
                    report.summary(),
                    pppd_log.join("\n    ")
                ))
            };
            let reason = report.link_down.clone().unwrap_or_default();
            if !reason.contains("authentication to the peer failed") {
                return fail("our LinkDown does not say authenticating to the peer failed");
            }
            if report.ip_up.is_some() {
                return fail("IPCP came up despite the failed authentication");
            }
            if !pppd_log.iter().any(|l| l.contains("sent [CHAP Failure")) {
                return fail("pppd did not log `sent [CHAP Failure`");
            }
            if outcome.exit_code != Some(PPPD_EXIT_PEER_AUTH_FAILED) {
                return fail(&format!(
                    "pppd exit {:?}, expected {PPPD_EXIT_PEER_AUTH_FAILED}",
                    outcome.exit_code
                ));
            }
            Ok(())
        });
}

/// The PPP protocol number of compressed or encrypted datagrams (RFC 1962).
const COMPRESSED_DATAGRAM: u16 = 0x00fd;

/// With CCP configured: CCP came up and the pings went encrypted or compressed both ways. MPPE
/// encrypts every datagram: 6 at least in each direction (3 echo requests and 3 replies).
/// Deflate sends a datagram as it is when compressing would not shrink it (RFC 1979; both
/// pppd and we do so with the first, 44-byte ping): 3 at least each way. Without CCP: none.
fn expect_transformed_datagrams(
    report: &ppp_interop::OurLinkReport,
    ccp: Option<&CcpConfig>,
) -> Result<(), String> {
    let sent = report.frames(true, COMPRESSED_DATAGRAM);
    let received = report.frames(false, COMPRESSED_DATAGRAM);
    let ok = match ccp {
        Some(config) => {
            let least = if config.compression { 3 } else { 6 };
            report.ccp_up && sent >= least && received >= least
        }
        None => sent == 0 && received == 0,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "CCP up {}, compressed frames sent {sent} received {received}: {}",
            report.ccp_up,
            report.summary()
        ))
    }
}

/// Checks pppd's exit code printed by the guest script.
fn expect_pppd_exit(console: &str, want: i32) -> Result<(), String> {
    match console_marker_code(console, GUEST_PPPD_MARKER) {
        Some(code) if code == want => Ok(()),
        other => Err(format!("pppd exit {other:?}, expected {want}")),
    }
}
