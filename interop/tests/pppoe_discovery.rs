//! Scenarios on the Ethernet path, two ways: the guest's `eth0` is a virtio-net NIC whose host
//! side is either a TAP interface in a network namespace the test creates (and removes, even on
//! failure; needs root, else the test prints why it skips), or a unix socket carrying the frames
//! that the test reads and writes itself (QEMU's stream netdev; no root needed).
//!
//! Like `serial_pppd.rs`, each scenario is a function of the suite and `suite_tests!` makes one
//! test per Debian suite.

use std::time::Duration;

use ppp_interop::{EthernetLink, Scenario, ScenarioRun, Suite, find_program};

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
    pado_reaches_host => pppoe_discovery_pado_bookworm, pppoe_discovery_pado_trixie;
    pado_over_ethernet_socket => pppoe_socket_padi_pado_bookworm, pppoe_socket_padi_pado_trixie;
}

/// The access concentrator name the guest's pppoe-server announces.
const AC_NAME: &str = "ppptest-ac";
/// The service name it offers.
const SERVICE: &str = "ppptest-svc";

/// The guest script: pppoe-server on eth0, a READY marker, then wait for the host's line on
/// ttyS1 (at most 90 s).
fn pppoe_server_script() -> String {
    format!(
        "ip link set eth0 up\n\
         ppptest-run pppoe-server pppoe-server -F -I eth0 -C {AC_NAME} -S {SERVICE} \
         -L 192.0.2.1 -R 192.0.2.10 -N 4 &\n\
         sleep 1\n\
         echo PPPTEST-READY\n\
         timeout 90 head -n 1 /dev/ttyS1 >/dev/null\n\
         echo 'released by the host'\n"
    )
}

/// The guest runs rp-pppoe's `pppoe-server` on `eth0`; the host runs Debian's `pppoe-discovery`
/// on the TAP inside the namespace and sees the PADO with the AC name and service. The host
/// releases the guest by writing a line to its serial port.
fn pado_reaches_host(suite: Suite) {
    let script = pppoe_server_script();
    Scenario::new("pppoe-discovery-pado", suite, script)
        .with_tap()
        .timeout(Duration::from_secs(120))
        .run(|run: &mut ScenarioRun| {
            if find_program("pppoe-discovery").is_none() {
                return Err("pppoe-discovery not found on the host (Debian package ppp)".into());
            }
            let tap = run.tap().ok_or("no TAP")?.to_owned();
            let mut link = run.serial_link()?;
            run.wait_for_console("PPPTEST-READY", Duration::from_secs(60))?;
            let discovery = run.host_command(
                "pppoe-discovery",
                &["-I", &tap, "-t", "2", "-a", "5"],
                Duration::from_secs(30),
            )?;
            link.write_bytes(b"done\n")?;
            let stdout = &discovery.stdout;
            if !stdout.contains(&format!("Access-Concentrator: {AC_NAME}")) {
                return Err(format!(
                    "no PADO from {AC_NAME}: status {:?}\nstdout: {stdout}\nstderr: {}",
                    discovery.status, discovery.stderr
                ));
            }
            if !stdout.contains(&format!("Service-Name: {SERVICE}")) {
                return Err(format!("the PADO does not offer {SERVICE}: {stdout}"));
            }
            let outcome = run.wait_exit(Duration::from_secs(60))?;
            if outcome.exit_code != Some(0) {
                return Err(format!("guest script exit {:?}", outcome.exit_code));
            }
            Ok(())
        });
}

/// The PPPoE Discovery EtherType (RFC 2516).
const ETHERTYPE_DISCOVERY: u16 = 0x8863;
/// PPPoE codes and tags (RFC 2516 §5, Appendix A).
const CODE_PADI: u8 = 0x09;
const CODE_PADO: u8 = 0x07;
const TAG_SERVICE_NAME: u16 = 0x0101;
const TAG_AC_NAME: u16 = 0x0102;
const TAG_HOST_UNIQ: u16 = 0x0103;
/// The host side's MAC address (locally administered).
const HOST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];

/// The host sends a hand-built PADI on the guest NIC's Ethernet socket; the guest's
/// `pppoe-server` answers with a PADO to our MAC carrying its AC name, the service and our
/// Host-Uniq. Needs no root: this is the path the stack's own PPPoE client will take.
fn pado_over_ethernet_socket(suite: Suite) {
    Scenario::new("pppoe-socket-padi-pado", suite, pppoe_server_script())
        .with_ethernet_socket()
        .timeout(Duration::from_secs(120))
        .run(|run: &mut ScenarioRun| {
            let mut serial = run.serial_link()?;
            let mut eth = run.ethernet_link()?;
            run.wait_for_console("PPPTEST-READY", Duration::from_secs(60))?;
            let host_uniq = [0xC0, 0xFF, 0xEE, 0x01];
            let padi = padi_frame(&host_uniq);
            let pado = send_until_answered(run, &mut eth, &padi)?;
            serial.write_bytes(b"done\n")?;
            let pado = pado.ok_or("no PADO answered our PADI within 30 s")?;
            let tags =
                pppoe_tags(&pado[14..]).ok_or_else(|| format!("malformed PADO {pado:02x?}"))?;
            let tag = |kind: u16| {
                tags.iter()
                    .find(|(t, _)| *t == kind)
                    .map(|(_, v)| v.as_slice())
            };
            if tag(TAG_AC_NAME) != Some(AC_NAME.as_bytes()) {
                return Err(format!(
                    "PADO AC-Name {:?}, expected {AC_NAME}",
                    tag(TAG_AC_NAME)
                ));
            }
            if !tags
                .iter()
                .any(|(t, v)| *t == TAG_SERVICE_NAME && v == SERVICE.as_bytes())
            {
                return Err(format!("the PADO does not offer {SERVICE}: {tags:02x?}"));
            }
            if tag(TAG_HOST_UNIQ) != Some(&host_uniq[..]) {
                return Err(format!("the PADO does not echo our Host-Uniq: {tags:02x?}"));
            }
            let outcome = run.wait_exit(Duration::from_secs(60))?;
            if outcome.exit_code != Some(0) {
                return Err(format!("guest script exit {:?}", outcome.exit_code));
            }
            Ok(())
        });
}

/// Sends `padi` once a second until a PADO to our MAC arrives (30 s at most).
fn send_until_answered(
    run: &mut ScenarioRun,
    eth: &mut EthernetLink,
    padi: &[u8],
) -> Result<Option<Vec<u8>>, String> {
    for attempt in 1..=30 {
        eth.send_frame(padi)?;
        run.trace(format!("sent PADI #{attempt}"));
        let answer = eth.expect_frame(Duration::from_secs(1), |f| {
            f.len() >= 20
                && f[..6] == HOST_MAC
                && u16::from_be_bytes([f[12], f[13]]) == ETHERTYPE_DISCOVERY
                && f[15] == CODE_PADO
        })?;
        if let Some(frame) = answer {
            run.trace(format!("rcvd PADO {frame:02x?}"));
            return Ok(Some(frame));
        }
    }
    Ok(None)
}

/// A broadcast PADI asking for any service, with a Host-Uniq tag.
fn padi_frame(host_uniq: &[u8]) -> Vec<u8> {
    let mut tags = Vec::new();
    tags.extend_from_slice(&TAG_SERVICE_NAME.to_be_bytes());
    tags.extend_from_slice(&0u16.to_be_bytes());
    tags.extend_from_slice(&TAG_HOST_UNIQ.to_be_bytes());
    tags.extend_from_slice(&(host_uniq.len() as u16).to_be_bytes());
    tags.extend_from_slice(host_uniq);
    let mut frame = vec![0xFF; 6];
    frame.extend_from_slice(&HOST_MAC);
    frame.extend_from_slice(&ETHERTYPE_DISCOVERY.to_be_bytes());
    frame.extend_from_slice(&[0x11, CODE_PADI, 0x00, 0x00]);
    frame.extend_from_slice(&(tags.len() as u16).to_be_bytes());
    frame.extend_from_slice(&tags);
    frame
}

/// The tags of a PPPoE Discovery packet (`packet` starts at the version/type byte).
fn pppoe_tags(packet: &[u8]) -> Option<Vec<(u16, Vec<u8>)>> {
    let length = usize::from(u16::from_be_bytes([*packet.get(4)?, *packet.get(5)?]));
    let mut rest = packet.get(6..6 + length)?;
    let mut tags = Vec::new();
    while rest.len() >= 4 {
        let kind = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        tags.push((kind, rest.get(4..4 + len)?.to_vec()));
        rest = &rest[4 + len..];
    }
    Some(tags)
}
