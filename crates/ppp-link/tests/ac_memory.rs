//! Memory of an access concentrator's idle sessions (issue: at most 2 KiB each): what the
//! server holds for each further idle PPPoE session (CHAP, IPCP, keepalive), measured with a
//! counting allocator as the difference between two sizes of the same world, so the fixed
//! costs (rate-limit tables, configuration) are left out.

use std::alloc::System;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppp_auth::SecretsTable;
use ppp_ipcp::IpcpConfig;
use ppp_link::auth::{AuthProtocol, ClientCredentials};
use ppp_link::pppoe::{PppoeClient, PppoeClientState, PppoeServer};
use ppp_link::{LinkConfig, Random};
use pppoe_discovery::{AcConfig, ClientConfig, MacAddr};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn live_bytes() -> isize {
    let stats = GLOBAL.stats();
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize + stats.bytes_reallocated
}

const AC_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xac]);

/// Bytes the AC holds with `sessions` idle sessions (what dropping it frees).
fn ac_bytes(sessions: u32) -> isize {
    let mut link = LinkConfig::pppoe();
    link.lcp.require = vec![AuthProtocol::ChapMd5];
    link.lcp.echo_interval = Some(Duration::from_secs(10));
    link.ipcp = Some(IpcpConfig::server(
        Ipv4Addr::new(192, 0, 2, 1),
        [None, None],
    ));
    link.auth.secrets = Some(Arc::new(SecretsTable::parse_pppd("user * pw\n").unwrap()));
    let ac_config = AcConfig {
        max_sessions: 100_000,
        padi_limit: None,
        padi_limit_per_mac: None,
        ..AcConfig::default()
    };
    let mut ac = PppoeServer::new(ac_config, link, AC_MAC, Random::seeded(1));
    let mut next = 0u32;
    ac.set_ipcp_factory(Box::new(move |_| {
        next += 1;
        ppp_ipcp::Ipcp::new(IpcpConfig {
            remote_address: Some(Ipv4Addr::from(0x0a00_0000 + next)),
            ..IpcpConfig::server(Ipv4Addr::new(192, 0, 2, 1), [None, None])
        })
    }));
    let mut client_link = LinkConfig::pppoe();
    client_link.lcp.allow = vec![AuthProtocol::ChapMd5];
    client_link.auth.credentials = Some(ClientCredentials::password("user", "pw"));
    let mut clients = HashMap::new();
    let mut now = Instant::now();
    for n in 0..sessions {
        let b = n.to_be_bytes();
        let mac = MacAddr([0x02, 0x10, b[0], b[1], b[2], b[3]]);
        let mut client = PppoeClient::new(
            ClientConfig::default(),
            client_link.clone(),
            mac,
            Random::seeded(u64::from(n) + 2),
        );
        client.open(now);
        clients.insert(mac, client);
    }
    let exchange = |ac: &mut PppoeServer, clients: &mut HashMap<MacAddr, PppoeClient>, now| {
        loop {
            let mut moved = false;
            for client in clients.values_mut() {
                while client.poll_event().is_some() {}
                while let Some(frame) = client.poll_transmit() {
                    ac.handle_input(now, &frame);
                    moved = true;
                }
            }
            while ac.poll_event().is_some() {}
            while let Some(frame) = ac.poll_transmit() {
                moved = true;
                let dst = MacAddr(frame[..6].try_into().unwrap());
                if let Some(client) = clients.get_mut(&dst) {
                    client.handle_input(now, &frame);
                }
            }
            if !moved {
                break;
            }
        }
    };
    exchange(&mut ac, &mut clients, now);
    assert!(
        clients
            .values()
            .all(|c| *c.state() == PppoeClientState::Connected)
    );
    // Half a minute of keepalive: the sessions are idle.
    let end = now + Duration::from_secs(30);
    while let Some(at) = ac.poll_timeout().filter(|&at| at <= end) {
        now = at;
        ac.handle_timeout(now);
        exchange(&mut ac, &mut clients, now);
    }
    assert_eq!(ac.session_count(), sessions as usize);
    let before = live_bytes();
    drop(ac);
    before - live_bytes()
}

#[test]
fn an_idle_session_costs_the_access_concentrator_at_most_2_kib() {
    let small = ac_bytes(1000);
    let large = ac_bytes(3000);
    let per_session = (large - small) / 2000;
    println!(
        "{per_session} bytes per further idle session ({small} B for 1000, {large} B for 3000)"
    );
    assert!(per_session <= 2048, "{per_session} bytes per idle session");
}
