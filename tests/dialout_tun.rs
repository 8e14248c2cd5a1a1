//! Root only (skips otherwise): the real `dial-out` binary in a network namespace with a TUN
//! device, on a pty to the simulated modem and our ppp-server; the real `ping` through the TUN,
//! the default route with `default-route-distance` as its metric, the peer's DNS servers in the
//! `--resolv-conf` file, and a clean hang-up on SIGINT. And the other way round: the real
//! `dial-out server` with its TUN device in a namespace, called by our client, pinging it.

#[path = "dialout_support.rs"]
mod support;

use std::process::Stdio;
use std::time::Duration;

use ppp_stack::dialout::ServerEvent;
use ppp_tokio::netns::{NetNs, skip_without_netns};
use support::{PtyRig, example, pty_rig};

#[tokio::test]
async fn dial_out_tun_ping_in_a_namespace() {
    if skip_without_netns("dial_out_tun_ping_in_a_namespace") {
        return;
    }
    let Some(dial_out) = example("dial-out") else {
        eprintln!(
            "skipping dial_out_tun_ping_in_a_namespace: build the example first (cargo build --example dial-out)"
        );
        return;
    };
    let netns = NetNs::create("dialout").expect("namespace");
    let PtyRig {
        slave,
        slave_path,
        mut server_events,
        shutdown: _shutdown,
    } = pty_rig(5);

    let dir = std::env::temp_dir().join(format!("dial-out-tun-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let resolv = dir.join("resolv.conf");
    let config = dir.join("client.toml");
    std::fs::write(
        &config,
        format!(
            "port = \"{slave_path}\"\nflow-control = \"none\"\napn = \"internet\"\npin = \"1234\"\n\
             user = \"alice\"\npassword = \"wonderland\"\ninterface = \"ppp-test0\"\n\
             add-default-route = true\ndefault-route-distance = 7\nuse-peer-dns = true\n\
             resolv-conf = \"{}\"\n",
            resolv.display()
        ),
    )
    .expect("config file");
    let child = tokio::process::Command::from(netns.command(&dial_out))
        .args(["dial", "-v", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn dial-out");

    let up = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(event) = server_events.recv().await {
            if matches!(event, ServerEvent::IpUp { .. }) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(up, Ok(true), "the link did not come up");
    // Give the program a moment to configure the interface after IPCP.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ping = tokio::process::Command::from(netns.command("ping"))
        .args(["-c", "2", "-W", "2", "198.51.100.1"])
        .output()
        .await
        .expect("ping");
    let ping_out = format!(
        "{}{}",
        String::from_utf8_lossy(&ping.stdout),
        String::from_utf8_lossy(&ping.stderr)
    );
    let route = netns.ip(&["route", "show", "default"]).unwrap_or_default();
    let addr = netns
        .ip(&["addr", "show", "dev", "ppp-test0"])
        .unwrap_or_default();
    let resolv_text = std::fs::read_to_string(&resolv).unwrap_or_default();

    // Hang up with SIGINT, as a user would with Ctrl-C.
    let pid = child.id().expect("pid").to_string();
    let _ = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status();
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("dial-out did not stop")
        .expect("dial-out output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!(
        "--- ping ---\n{ping_out}\n--- route ---\n{route}\n--- addr ---\n{addr}\n--- resolv.conf ---\n{resolv_text}\n--- dial-out stderr ---\n{stderr}"
    );
    assert!(ping.status.success(), "ping failed:\n{ping_out}");
    assert!(ping_out.contains("2 received"), "{ping_out}");
    assert!(
        route.contains("dev ppp-test0") && route.contains("metric 7"),
        "{route}"
    );
    assert!(
        addr.contains("inet 198.51.100.2 peer 198.51.100.1"),
        "{addr}"
    );
    assert!(
        resolv_text.contains("nameserver 198.51.100.53"),
        "{resolv_text}"
    );
    assert!(output.status.success(), "dial-out exit: {}", output.status);
    assert!(!resolv.exists(), "resolv.conf must be removed on exit");
    let _ = std::fs::remove_dir_all(&dir);
    drop(slave);
}

/// The dial-in server's TUN data path: the real `dial-out server --data-plane tun` in a network
/// namespace, our client (in this process, on the other end of the pty) calling it; the
/// namespace's `ping` to the caller's address goes out through the server's TUN device, and
/// the client answers it.
#[tokio::test]
async fn dial_in_server_routes_a_caller_through_its_tun_device() {
    use ppp_link::Datagram;
    use ppp_tokio::icmp;
    use support::{Caller, call_on, ip_up};
    use tokio_serial::SerialPort as _;

    if skip_without_netns("dial_in_server_routes_a_caller_through_its_tun_device") {
        return;
    }
    let Some(dial_out) = example("dial-out") else {
        eprintln!("skipping: build the example first (cargo build --example dial-out)");
        return;
    };
    let netns = NetNs::create("dialin").expect("namespace");
    let (master, slave) = tokio_serial::SerialStream::pair().expect("pty pair");
    let slave_path = slave.name().expect("pty name");
    let dir = std::env::temp_dir().join(format!("dial-in-tun-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("server.toml");
    std::fs::write(
        &config,
        "null-modem = true\nflow-control = \"none\"\nonce = true\ninterface = \"dialin-test0\"\n\
         authentication = [\"chap\"]\nlcp-echo-interval = 0\n\
         [profile]\nlocal-address = \"198.51.100.1\"\nremote-address = \"198.51.100.2\"\n\
         [[secret]]\nname = \"alice\"\npassword = \"wonderland\"\n",
    )
    .expect("config file");
    let server = tokio::process::Command::from(netns.command(&dial_out))
        .args([
            "server",
            "-v",
            "--data-plane",
            "tun",
            "--port",
            &slave_path,
            "--config",
        ])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn dial-out server");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let Caller {
        task: client,
        outbound,
        mut inbound,
        mut events,
        shutdown: stop,
    } = call_on(
        "port = \"pty\"\nnull-modem = true\nuser = \"alice\"\npassword = \"wonderland\"\n",
        master,
        3,
    );
    // The caller answers every echo request the server's side sends it.
    let caller = std::net::Ipv4Addr::new(198, 51, 100, 2);
    let answering = tokio::spawn(async move {
        let mut answered = 0u32;
        while let Some(datagram) = inbound.recv().await {
            if let Datagram::Ipv4(packet) = datagram
                && let Some(reply) = icmp::echo_reply(&packet, caller)
            {
                answered += 1;
                let _ = outbound.send(reply).await;
            }
        }
        answered
    });
    let up = ip_up(&mut events, Duration::from_secs(20)).await;
    assert!(matches!(up, Ok(Some(_))), "the call did not come up");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let addr = netns
        .ip(&["addr", "show", "dev", "dialin-test0"])
        .unwrap_or_default();
    let ping = tokio::process::Command::from(netns.command("ping"))
        .args(["-c", "3", "-W", "2", "198.51.100.2"])
        .output()
        .await
        .expect("ping");
    let ping_out = String::from_utf8_lossy(&ping.stdout).into_owned();
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(20), client).await;
    let output = tokio::time::timeout(Duration::from_secs(20), server.wait_with_output())
        .await
        .expect("the server did not end with its call (--once)")
        .expect("server output");
    let answered = answering.await.expect("answering task");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let addr_after = netns
        .ip(&["addr", "show", "dev", "dialin-test0"])
        .unwrap_or_default();
    println!(
        "--- addr ---\n{addr}\n--- ping ---\n{ping_out}\n--- dial-out server stderr ---\n{stderr}"
    );
    assert!(
        stderr.contains("TUN data path (--data-plane tun)") && stderr.contains("dialin-test0"),
        "{stderr}"
    );
    assert!(
        addr.contains("inet 198.51.100.1 peer 198.51.100.2"),
        "{addr}"
    );
    assert!(ping_out.contains("3 received"), "{ping_out}");
    assert_eq!(answered, 3, "the caller answered every echo request");
    assert!(output.status.success(), "server exit: {}", output.status);
    assert!(
        !addr_after.contains("198.51.100.1"),
        "the TUN device keeps no address after the call: {addr_after}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    drop(slave);
}
