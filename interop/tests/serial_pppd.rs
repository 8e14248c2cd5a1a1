//! Scenarios on the guest's serial port: pppd on `/dev/ttyS1`, this side on the unix socket QEMU
//! serves it on.
//!
//! Each scenario is a function of the suite returning the [`Scenario`] (name, guest script) and
//! its driver; `suite_tests!` turns it into one test per Debian suite, so
//! `cargo test -p ppp-interop serial_pppd_lcp_confreq` runs both and `..._trixie` one.

use std::time::Duration;

use ppp_frame::{AsyncEncoder, EncoderConfig, Protocol};
use ppp_interop::{RxFrame, Scenario, ScenarioRun, SerialLink, Suite, pppd_on_serial};

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
    lcp_confreq_reaches_host => serial_pppd_lcp_confreq_bookworm, serial_pppd_lcp_confreq_trixie;
    scripted_peer_opens_lcp => serial_pppd_lcp_opens_bookworm, serial_pppd_lcp_opens_trixie;
}

/// LCP Configure-Request code (RFC 1661 §5.1).
const CONFIGURE_REQUEST: u8 = 1;
/// LCP Configure-Ack code.
const CONFIGURE_ACK: u8 = 2;
/// LCP Terminate-Request code.
const TERMINATE_REQUEST: u8 = 5;
/// LCP Magic-Number option type (RFC 1661 §6.4).
const MAGIC_NUMBER: u8 = 5;
/// pppd's exit status after the peer terminated the link on a `local` line: 16, `EXIT_HANGUP`
/// (pppd logs "Modem hangup" once the Terminate-Ack went out).
const PPPD_EXIT_HANGUP: i32 = 16;

/// pppd starts on ttyS1 with nobody answering: its LCP Configure-Request arrives on the host,
/// decodes as such, and pppd logs it; pppd gives up after `lcp-max-configure` tries.
fn lcp_confreq_reaches_host(suite: Suite) {
    let script = format!(
        "{}\necho \"pppd exit=$?\"\n",
        pppd_on_serial("noauth lcp-max-configure 3 lcp-restart 1")
    );
    Scenario::new("serial-pppd-lcp-confreq", suite, script)
        .timeout(Duration::from_secs(90))
        .run(|run: &mut ScenarioRun| {
            let mut link = run.serial_link()?;
            let frame = link
                .expect_frame(Duration::from_secs(60), |f| f.protocol == Protocol::Lcp)?
                .ok_or("no LCP frame arrived on the serial socket within 60 s")?;
            run.trace(format!("rcvd {}", describe_lcp(&frame)));
            let code = frame.payload.first().copied();
            if code != Some(CONFIGURE_REQUEST) {
                return Err(format!("expected an LCP Configure-Request, got {frame:?}"));
            }
            if lcp_option(&frame.payload, MAGIC_NUMBER).is_none_or(|v| v.len() != 4) {
                return Err(format!("the ConfReq carries no Magic-Number: {frame:?}"));
            }
            let outcome = run.wait_exit(Duration::from_secs(60))?;
            if outcome.timed_out || outcome.exit_code.is_none() {
                return Err("the guest script did not finish".into());
            }
            let pppd_log = outcome.pppd_log();
            if !pppd_log.iter().any(|l| l.contains("sent [LCP ConfReq")) {
                return Err(format!(
                    "pppd did not log `sent [LCP ConfReq`: {pppd_log:#?}"
                ));
            }
            if !pppd_log
                .iter()
                .any(|l| l.contains("LCP: timeout sending Config-Requests"))
            {
                return Err(format!("pppd did not give up after 3 tries: {pppd_log:#?}"));
            }
            Ok(())
        });
}

/// A hand-scripted peer on the host (raw LCP packets, framed by ppp-frame's encoder) acks pppd's
/// Configure-Request and sends its own; pppd acks it, LCP opens, pppd moves on to IPCP, and the
/// host's Terminate-Request makes pppd exit. Proves both directions of the serial path.
fn scripted_peer_opens_lcp(suite: Suite) {
    let script = format!(
        "{}\nrc=$?\necho \"pppd exit=$rc\"\nexit $rc\n",
        pppd_on_serial(
            "noauth lcp-max-configure 20 lcp-restart 1 ipcp-max-configure 20 ipcp-restart 1 \
             192.0.2.1:192.0.2.2"
        )
    );
    Scenario::new("serial-pppd-lcp-opens", suite, script)
        .timeout(Duration::from_secs(90))
        .run(|run: &mut ScenarioRun| {
            let mut link = run.serial_link()?;
            let mut encoder = AsyncEncoder::new(EncoderConfig::default());
            let confreq = link
                .expect_frame(Duration::from_secs(60), |f| {
                    f.protocol == Protocol::Lcp && f.payload.first() == Some(&CONFIGURE_REQUEST)
                })?
                .ok_or("no LCP Configure-Request from pppd within 60 s")?;
            run.trace(format!("rcvd {}", describe_lcp(&confreq)));
            // Ack exactly what pppd asked for, then ask for a Magic-Number of our own.
            let mut ack = confreq.payload.clone();
            ack[0] = CONFIGURE_ACK;
            send_lcp(run, &mut link, &mut encoder, &ack)?;
            let our_confreq = [
                CONFIGURE_REQUEST,
                0x01,
                0x00,
                0x0A,
                MAGIC_NUMBER,
                0x06,
                0x5A,
                0x17,
                0xC3,
                0x9E,
            ];
            send_lcp(run, &mut link, &mut encoder, &our_confreq)?;
            let our_ack = link
                .expect_frame(Duration::from_secs(20), |f| {
                    f.protocol == Protocol::Lcp && f.payload.first() == Some(&CONFIGURE_ACK)
                })?
                .ok_or("pppd did not ack our Configure-Request")?;
            run.trace(format!("rcvd {}", describe_lcp(&our_ack)));
            if our_ack.payload[1..] != our_confreq[1..] {
                return Err(format!(
                    "pppd's Configure-Ack differs from our request: {our_ack:?}"
                ));
            }
            let ipcp = link
                .expect_frame(Duration::from_secs(20), |f| f.protocol == Protocol::Ipcp)?
                .ok_or("pppd did not start IPCP after LCP opened")?;
            run.trace(format!("rcvd IPCP {:02x?}", ipcp.payload));
            send_lcp(
                run,
                &mut link,
                &mut encoder,
                &[TERMINATE_REQUEST, 0x02, 0x00, 0x04],
            )?;
            let outcome = run.wait_exit(Duration::from_secs(60))?;
            let pppd_log = outcome.pppd_log();
            for needle in [
                "rcvd [LCP ConfAck",
                "rcvd [LCP ConfReq",
                "sent [IPCP ConfReq",
                "rcvd [LCP TermReq",
            ] {
                if !pppd_log.iter().any(|l| l.contains(needle)) {
                    return Err(format!("pppd did not log `{needle}`: {pppd_log:#?}"));
                }
            }
            if outcome.exit_code != Some(PPPD_EXIT_HANGUP) {
                return Err(format!(
                    "pppd exit {:?}, expected {PPPD_EXIT_HANGUP}",
                    outcome.exit_code
                ));
            }
            Ok(())
        });
}

/// Frames an LCP packet and writes it to the guest.
fn send_lcp(
    run: &mut ScenarioRun,
    link: &mut SerialLink,
    encoder: &mut AsyncEncoder,
    packet: &[u8],
) -> Result<(), String> {
    let mut wire = Vec::new();
    encoder.encode(Protocol::Lcp, packet, &mut wire);
    run.trace(format!("sent [LCP] {packet:02x?}"));
    Ok(link.write_bytes(&wire)?)
}

/// The value of the first LCP option of `kind` in a Configure-* packet.
fn lcp_option(packet: &[u8], kind: u8) -> Option<&[u8]> {
    let length = usize::from(u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?]));
    let mut options = packet.get(4..length.min(packet.len()))?;
    while let [t, l, ..] = *options {
        let len = usize::from(l);
        if len < 2 || len > options.len() {
            return None;
        }
        if t == kind {
            return options.get(2..len);
        }
        options = &options[len..];
    }
    None
}

/// A pppd-like one-line summary of an LCP packet for the trace.
fn describe_lcp(frame: &RxFrame) -> String {
    let p = &frame.payload;
    match (p.first(), p.get(1)) {
        (Some(code), Some(id)) => {
            format!("[LCP code={code} id={id:#x} len={}] {:02x?}", p.len(), p)
        }
        _ => format!("[LCP short packet {p:02x?}]"),
    }
}
