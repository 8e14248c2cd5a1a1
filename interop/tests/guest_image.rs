//! Checks of the guest image itself, independent of this stack: the tools run, and pppd can do
//! what later scenarios rely on (MS-CHAPv2 needs MD4 and DES, which pppd 2.5 takes from
//! OpenSSL's legacy provider). Two pppd processes talk over a pty inside the guest.

use std::time::Duration;

use ppp_interop::{Scenario, ScenarioRun, Suite};

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
    pppd_pair_mschapv2 => guest_image_pppd_pair_mschapv2_bookworm, guest_image_pppd_pair_mschapv2_trixie;
}

/// pppd's exit status when `maxconnect` ended the link.
const PPPD_EXIT_CONNECT_TIME: i32 = 13;

/// The server pppd requires MS-CHAPv2 from a client pppd it runs over a pty (both take the secret
/// from `/etc/ppp/chap-secrets`); both authenticate, IPCP comes up with documentation addresses,
/// and `maxconnect` ends the link (pppd exit 13, `EXIT_CONNECT_TIME`).
fn pppd_pair_mschapv2(suite: Suite) {
    let script = "\
printf 'client server s3cret-Pass *\\n' > /etc/ppp/chap-secrets
pppd --version 2>&1 | head -n 1
ppptest-run pppd pppd nodetach debug logfd 2 nolock local name server require-mschap-v2 \
    192.0.2.1:192.0.2.2 maxconnect 4 lcp-restart 1 \
    pty 'pppd notty nodetach debug logfile /log/client.log nolock local noauth \
    user client remotename server noipdefault'
rc=$?
sleep 1
exit $rc
";
    Scenario::new("guest-image-pppd-pair-mschapv2", suite, script)
        .serial(false)
        .timeout(Duration::from_secs(90))
        .run(|run: &mut ScenarioRun| {
            let outcome = run.wait_exit(Duration::from_secs(80))?;
            if outcome.exit_code != Some(PPPD_EXIT_CONNECT_TIME) {
                return Err(format!("server pppd exit {:?}", outcome.exit_code));
            }
            let server = outcome.pppd_log();
            let client = outcome
                .file("client.log")
                .ok_or("the client pppd left no log")?;
            let expect = [
                (&server.join("\n"), "rcvd [CHAP Response"),
                (&server.join("\n"), "sent [CHAP Success"),
                (&server.join("\n"), "remote IP address 192.0.2.2"),
                (&client, "CHAP authentication succeeded"),
                (&client, "local  IP address 192.0.2.2"),
            ];
            for (log, needle) in expect {
                if !log.contains(needle) {
                    return Err(format!(
                        "missing `{needle}`\n--- server\n{}\n--- client\n{client}",
                        server.join("\n")
                    ));
                }
            }
            Ok(())
        });
}
