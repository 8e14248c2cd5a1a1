//! Session churn at a constant number of sessions (issue: the access concentrator's RSS rose
//! from 35 to 43 MB over ~950 churn cycles at 500 sessions, then levelled off). The library's
//! live heap, counted exactly, stays flat once the tables have grown to their working size: what
//! the program's RSS showed is the allocator's high-water mark, not a leak.

use std::alloc::System;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppp_auth::SecretsTable;
use ppp_ipcp::{AddressRange, Ipcp, IpcpConfig};
use ppp_link::auth::{AuthProtocol, ClientCredentials};
use ppp_link::pppoe::{PppoeClient, PppoeClientState, PppoeServer};
use ppp_link::{CloseReason, LinkConfig, Random};
use pppoe_discovery::{AcConfig, ClientConfig, MacAddr};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn live_bytes() -> isize {
    let stats = GLOBAL.stats();
    // A realloc is counted in bytes_allocated or bytes_deallocated (by its difference) too.
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize
}

const SESSIONS: usize = 500;
const CYCLES: usize = 950;
/// Sessions ended and started again in each cycle.
const CHURN: usize = 10;

struct World {
    now: Instant,
    ac: PppoeServer,
    clients: HashMap<MacAddr, PppoeClient>,
    next_mac: u32,
    client_link: LinkConfig,
}

impl World {
    fn exchange(&mut self) {
        let now = self.now;
        loop {
            let mut moved = false;
            for client in self.clients.values_mut() {
                while client.poll_event().is_some() {}
                while let Some(frame) = client.poll_transmit() {
                    self.ac.handle_input(now, &frame);
                    moved = true;
                }
            }
            while self.ac.poll_event().is_some() {}
            while let Some(frame) = self.ac.poll_transmit() {
                moved = true;
                let dst = MacAddr(frame[..6].try_into().unwrap());
                if let Some(client) = self.clients.get_mut(&dst) {
                    client.handle_input(now, &frame);
                }
            }
            if !moved {
                break;
            }
        }
    }

    fn connect(&mut self) {
        self.next_mac += 1;
        let b = self.next_mac.to_be_bytes();
        let mac = MacAddr([0x02, 0x30, b[0], b[1], b[2], b[3]]);
        let mut client = PppoeClient::new(
            ClientConfig::default(),
            self.client_link.clone(),
            mac,
            Random::seeded(u64::from(self.next_mac)),
        );
        client.open(self.now);
        self.clients.insert(mac, client);
    }

    /// Ends `count` sessions (the client's Terminate and PADT) and starts as many new ones.
    fn churn(&mut self, count: usize) {
        let gone: Vec<MacAddr> = self.clients.keys().take(count).copied().collect();
        for mac in &gone {
            if let Some(client) = self.clients.get_mut(mac) {
                client.close(self.now, CloseReason::UserRequest);
            }
        }
        self.exchange();
        self.now += Duration::from_millis(100);
        for mac in gone {
            self.clients.remove(&mac);
        }
        for _ in 0..count {
            self.connect();
        }
        self.exchange();
        // A keepalive round now and then.
        let until = self.now + Duration::from_secs(2);
        while let Some(at) = self.ac.poll_timeout().filter(|&at| at <= until) {
            self.now = self.now.max(at);
            self.ac.handle_timeout(self.now);
            self.exchange();
        }
        self.now = until;
    }
}

#[test]
fn the_live_heap_stays_flat_under_churn_at_a_constant_session_count() {
    let mut link = LinkConfig::pppoe();
    link.lcp.require = vec![AuthProtocol::ChapMd5];
    link.lcp.echo_interval = Some(Duration::from_secs(10));
    link.auth.secrets = Some(Arc::new(SecretsTable::parse_pppd("user * pw\n").unwrap()));
    let ac_config = AcConfig {
        max_sessions: 2 * SESSIONS,
        ..AcConfig::default()
    };
    let mut ac = PppoeServer::new(
        ac_config,
        link,
        MacAddr([0x02, 0, 0, 0, 0, 0xac]),
        Random::seeded(1),
    );
    // Addresses from a pool, as the program does: they must all come back.
    let pool = AddressRange::new(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 3, 254));
    ac.set_ipcp_factory(Box::new(move |_| {
        Ipcp::with_address_pool(
            IpcpConfig::server(Ipv4Addr::new(192, 0, 2, 1), [None, None]),
            pool.clone(),
        )
    }));
    let mut client_link = LinkConfig::pppoe();
    client_link.lcp.allow = vec![AuthProtocol::ChapMd5];
    client_link.auth.credentials = Some(ClientCredentials::password("user", "pw"));
    let mut world = World {
        now: Instant::now(),
        ac,
        clients: HashMap::new(),
        next_mac: 0,
        client_link,
    };
    for _ in 0..SESSIONS {
        world.connect();
    }
    world.exchange();
    let mut samples = Vec::new();
    for cycle in 0..CYCLES {
        world.churn(CHURN);
        assert_eq!(world.ac.session_count(), SESSIONS, "cycle {cycle}");
        if cycle % 50 == 49 {
            samples.push(live_bytes());
        }
    }
    assert!(
        world
            .clients
            .values()
            .all(|c| *c.state() == PppoeClientState::Connected)
    );
    // After warming up (the first 200 cycles), the live heap does not grow.
    let warm = samples[3];
    let last = *samples.last().unwrap();
    println!("live heap every 50 cycles: {samples:?}");
    assert!(
        last <= warm + warm / 50,
        "the live heap grew from {warm} to {last} bytes over {} cycles",
        CYCLES - 200
    );
}
