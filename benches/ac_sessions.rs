//! The access concentrator at ISP scale (`cargo bench --bench ac_sessions`): the library's
//! `PppoeServer` with our own `PppoeClient`s in one process, one thread, on virtual time, CHAP.
//! Only the access concentrator's calls are timed (the clients' work is not counted).
//!
//! - `setup/N`: one complete set-up (PADI → IPCP Opened) with N sessions already up; the
//!   throughput is set-ups per second of AC CPU.
//! - `keepalive/N`: one second of virtual time with N idle sessions (LCP echo every 10 s, as
//!   `keepalive-timeout = 60` gives); the time is AC CPU per second, so 50 ms is 5% of a core.
//! - `padi/N`: one PADI from a new host (its PADO built and queued) with N sessions up.
//!
//! Before the groups it prints the bytes the AC holds per idle session (a counting allocator:
//! what dropping the AC frees, over the number of sessions).
//!
//! Sizes: 10,000 and 100,000 sessions; `AC_BENCH_SESSIONS=1000,10000` chooses others, and
//! `AC_BENCH_MEMORY_ONLY=1` prints the memory figure only (CI only builds the bench).
#![allow(missing_docs)]

use std::alloc::System;
use std::collections::HashMap;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ppp_auth::SecretsTable;
use ppp_ipcp::IpcpConfig;
use ppp_link::auth::{AuthProtocol, ClientCredentials};
use ppp_link::pppoe::{PppoeClient, PppoeClientState, PppoeServer};
use ppp_link::{CloseReason, LinkConfig, Random};
use pppoe_discovery::{AcConfig, ClientConfig, MacAddr};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Live heap bytes.
fn live_bytes() -> isize {
    let stats = GLOBAL.stats();
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize + stats.bytes_reallocated
}

const AC_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xac]);

fn mac(n: u32) -> MacAddr {
    let b = n.to_be_bytes();
    MacAddr([0x02, 0x10, b[0], b[1], b[2], b[3]])
}

fn ac_link() -> LinkConfig {
    let mut link = LinkConfig::pppoe();
    link.lcp.require = vec![AuthProtocol::ChapMd5];
    link.lcp.echo_interval = Some(Duration::from_secs(10));
    link.lcp.echo_failure = 6;
    link.ipcp = Some(IpcpConfig::server(
        Ipv4Addr::new(192, 0, 2, 1),
        [None, None],
    ));
    link.auth.secrets = Some(Arc::new(
        SecretsTable::parse_pppd("user * password\n").expect("secrets"),
    ));
    link
}

fn client_link() -> LinkConfig {
    let mut link = LinkConfig::pppoe();
    link.lcp.allow = vec![AuthProtocol::ChapMd5];
    link.auth.credentials = Some(ClientCredentials::password("user", "password"));
    link
}

/// The AC and its clients on one segment without delay, on virtual time.
struct World {
    now: Instant,
    ac: PppoeServer,
    clients: Vec<Option<PppoeClient>>,
    by_mac: HashMap<MacAddr, usize>,
    /// Clients that may have something to send.
    pending: Vec<usize>,
    /// Time spent in the AC's calls.
    ac_time: Duration,
    next_mac: u32,
}

impl World {
    fn new() -> Self {
        let ac_config = AcConfig {
            max_sessions: 200_000,
            padi_limit: None,
            padi_limit_per_mac: None,
            ..AcConfig::default()
        };
        // Addresses for the clients: a pool larger than any run.
        let mut next = 0u32;
        let mut ac = PppoeServer::new(ac_config, ac_link(), AC_MAC, Random::seeded(1));
        ac.set_ipcp_factory(Box::new(move |_| {
            next += 1;
            let peer = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + next);
            ppp_ipcp::Ipcp::new(IpcpConfig {
                remote_address: Some(peer),
                ..IpcpConfig::server(Ipv4Addr::new(192, 0, 2, 1), [None, None])
            })
        }));
        World {
            now: Instant::now(),
            ac,
            clients: Vec::new(),
            by_mac: HashMap::new(),
            pending: Vec::new(),
            ac_time: Duration::ZERO,
            next_mac: 0,
        }
    }

    fn timed<T>(&mut self, call: impl FnOnce(&mut PppoeServer) -> T) -> T {
        let start = Instant::now();
        let result = call(&mut self.ac);
        self.ac_time += start.elapsed();
        result
    }

    /// Starts a new client; returns its index.
    fn add_client(&mut self) -> usize {
        self.next_mac += 1;
        let address = mac(self.next_mac);
        let mut client = PppoeClient::new(
            ClientConfig::default(),
            client_link(),
            address,
            Random::seeded(u64::from(self.next_mac)),
        );
        client.open(self.now);
        let index = self.clients.len();
        self.clients.push(Some(client));
        self.by_mac.insert(address, index);
        self.pending.push(index);
        index
    }

    /// Moves frames until nobody has anything to send.
    fn pump(&mut self) {
        let now = self.now;
        loop {
            let mut moved = false;
            while let Some(index) = self.pending.pop() {
                let Some(client) = self.clients[index].as_mut() else {
                    continue;
                };
                while client.poll_event().is_some() {}
                while let Some(frame) = client.poll_transmit() {
                    moved = true;
                    self.ac_time += {
                        let start = Instant::now();
                        self.ac.handle_input(now, &frame);
                        start.elapsed()
                    };
                }
            }
            loop {
                let frame = self.timed(|ac| {
                    while ac.poll_event().is_some() {}
                    while ac.poll_datagram().is_some() {}
                    ac.poll_transmit()
                });
                let Some(frame) = frame else { break };
                moved = true;
                let dst = MacAddr(frame[..6].try_into().expect("a frame"));
                if let Some(&index) = self.by_mac.get(&dst)
                    && let Some(client) = self.clients[index].as_mut()
                {
                    client.handle_input(now, &frame);
                    self.pending.push(index);
                }
            }
            if !moved {
                break;
            }
        }
    }

    /// Advances virtual time to `until`, firing the AC's and the clients' timers on the way.
    fn advance(&mut self, until: Instant) {
        loop {
            self.pump();
            let next = self.timed(|ac| ac.poll_timeout());
            let Some(next) = next.filter(|&t| t <= until) else {
                break;
            };
            self.now = self.now.max(next);
            let now = self.now;
            self.timed(|ac| ac.handle_timeout(now));
        }
        self.now = until;
        // The clients answer echoes on input; their own timers (echo, restart) are far off.
        self.pump();
    }

    fn connected(&self, index: usize) -> bool {
        self.clients[index]
            .as_ref()
            .is_some_and(|c| *c.state() == PppoeClientState::Connected)
    }

    /// Brings `count` sessions up.
    fn populate(&mut self, count: usize) {
        for _ in 0..count {
            self.add_client();
            if self.pending.len() >= 512 {
                self.pump();
            }
        }
        self.pump();
        let up = (0..self.clients.len())
            .filter(|&i| self.connected(i))
            .count();
        assert_eq!(up, count, "every session came up");
        assert_eq!(self.ac.session_count(), count);
    }

    /// Takes a client's session down (uncounted: its PADT and the AC's work on it).
    fn remove(&mut self, index: usize) {
        if let Some(client) = self.clients[index].as_mut() {
            client.close(self.now, CloseReason::UserRequest);
        }
        self.pending.push(index);
        let until = self.now + Duration::from_millis(1);
        let before = self.ac_time;
        self.advance(until);
        self.ac_time = before;
        if let Some(client) = self.clients[index].take() {
            self.by_mac.remove(&client.mac());
        }
    }
}

fn sizes() -> Vec<usize> {
    std::env::var("AC_BENCH_SESSIONS")
        .ok()
        .map(|list| {
            list.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect()
        })
        .unwrap_or_else(|| vec![10_000, 100_000])
}

/// Bytes the AC holds per idle session: what dropping it frees.
fn bytes_per_session(sessions: usize) -> usize {
    let mut world = World::new();
    world.populate(sessions);
    world.advance(world.now + Duration::from_secs(30));
    let World { ac, clients, .. } = world;
    let before = live_bytes();
    drop(ac);
    let after = live_bytes();
    drop(clients);
    usize::try_from(before - after).unwrap_or(0) / sessions
}

fn bench_ac(c: &mut Criterion) {
    for &sessions in &sizes() {
        println!(
            "ac_sessions: {} bytes per idle session with {sessions} sessions",
            bytes_per_session(sessions.min(20_000))
        );
        if std::env::var_os("AC_BENCH_MEMORY_ONLY").is_some() {
            continue;
        }
        let mut world = World::new();
        world.populate(sessions);

        let mut group = c.benchmark_group("ac_sessions");
        group.sample_size(20);
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("setup/{sessions}"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    world.ac_time = Duration::ZERO;
                    let index = world.add_client();
                    world.pump();
                    spent += world.ac_time;
                    if !world.connected(index) {
                        let client = world.clients[index].as_ref().unwrap();
                        let sid = client.session().map(|s| s.session_id);
                        panic!(
                            "{:?} client lcp {:?} ac lcp {:?} ac phase {:?}",
                            client.state(),
                            client.link().map(|l| l.lcp().state()),
                            sid.and_then(|s| world.ac.session_link(s))
                                .map(|l| l.lcp().state()),
                            sid.and_then(|s| world.ac.session_link(s))
                                .map(|l| l.phase()),
                        );
                    }
                    world.remove(index);
                }
                spent
            })
        });
        group.bench_function(format!("padi/{sessions}"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                let mut padi = Vec::new();
                for n in 0..iters {
                    // A PADI from a host never seen: broadcast, Service-Name empty, Host-Uniq.
                    padi.clear();
                    padi.extend_from_slice(&[0xff; 6]);
                    padi.extend_from_slice(&mac(0x8000_0000 | n as u32).0);
                    padi.extend_from_slice(&[0x88, 0x63, 0x11, 0x09, 0, 0, 0, 12]);
                    padi.extend_from_slice(&[0x01, 0x01, 0, 0, 0x01, 0x03, 0, 4]);
                    padi.extend_from_slice(&(n as u32).to_be_bytes());
                    world.now += Duration::from_micros(100);
                    let now = world.now;
                    let start = Instant::now();
                    world.ac.handle_input(now, black_box(&padi));
                    while let Some(frame) = world.ac.poll_transmit() {
                        black_box(frame);
                    }
                    while world.ac.poll_event().is_some() {}
                    spent += start.elapsed();
                }
                spent
            })
        });
        group.throughput(Throughput::Elements(sessions as u64));
        group.bench_function(format!("keepalive/{sessions}"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    world.ac_time = Duration::ZERO;
                    let until = world.now + Duration::from_secs(1);
                    world.advance(until);
                    spent += world.ac_time;
                }
                assert_eq!(world.ac.session_count(), sessions, "no session lost");
                spent
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench_ac);
criterion_main!(benches);
