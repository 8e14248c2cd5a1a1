//! A reconnect avalanche on virtual time: an access concentrator that has just restarted, and
//! clients that all start within one second (after an outage every subscriber redials at once).
//! Every client gets its session; discovery retransmissions back off (at most a few PADIs per
//! client, never a storm), and the time until the last client is up is reported.
//!
//! The clients start at 20,000 a second (four times the access concentrator's default PADI
//! limit): CI runs 2,000 clients within 100 ms; `AVALANCHE_CLIENTS=20000 cargo test --release -p
//! ppp-link --test avalanche -- --nocapture` runs the full size of the issue (20,000 within 1 s).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppp_auth::SecretsTable;
use ppp_ipcp::IpcpConfig;
use ppp_link::auth::{AuthProtocol, ClientCredentials};
use ppp_link::pppoe::{PppoeClient, PppoeClientState, PppoeServer};
use ppp_link::{LinkConfig, Random};
use ppp_sim::SimRng;
use pppoe_discovery::{AcConfig, ClientConfig, MacAddr};

const AC_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xac]);
const ONE_WAY: Duration = Duration::from_micros(500);

/// Who a frame on the segment is for.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum To {
    Ac,
    Client(usize),
}

/// A frame on the segment: when it arrives, its order, for whom, the bytes.
type InFlight = (Instant, u64, To, Vec<u8>);

#[test]
fn a_reconnect_avalanche_after_a_restart_gets_everyone_a_session_without_a_storm() {
    let clients_wanted: usize = std::env::var("AVALANCHE_CLIENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000);
    let start = Instant::now();
    let mut link = LinkConfig::pppoe();
    link.lcp.require = vec![AuthProtocol::ChapMd5];
    link.ipcp = Some(IpcpConfig::server(
        Ipv4Addr::new(192, 0, 2, 1),
        [None, None],
    ));
    link.auth.secrets = Some(Arc::new(SecretsTable::parse_pppd("user * pw\n").unwrap()));
    // Room for everyone; PADIs answered at a quarter of the rate clients start (for 20,000
    // clients that is the default limit, 5,000 a second with bursts of 5,000).
    let limit = (clients_wanted as u32 / 4).max(1);
    let ac_config = AcConfig {
        max_sessions: clients_wanted + 10,
        padi_limit: Some(pppoe_discovery::RateLimit::new(limit, limit)),
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
    let mut rng = SimRng::new(7);
    let mut clients: Vec<PppoeClient> = Vec::with_capacity(clients_wanted);
    let mut by_mac = HashMap::new();
    // Timers: (when, who); stale entries are skipped.
    let mut timers: BinaryHeap<Reverse<(Instant, usize)>> = BinaryHeap::new();
    let mut starts = Vec::with_capacity(clients_wanted);
    for n in 0..clients_wanted {
        let b = (n as u32).to_be_bytes();
        let mac = MacAddr([0x02, 0x20, b[0], b[1], b[2], b[3]]);
        clients.push(PppoeClient::new(
            ClientConfig::default(),
            client_link.clone(),
            mac,
            Random::seeded(n as u64 + 100),
        ));
        by_mac.insert(mac, n);
        // 20,000 starts a second.
        let at = start + Duration::from_micros(rng.below(50 * clients_wanted as u64));
        starts.push(at);
        timers.push(Reverse((at, usize::MAX - n)));
    }
    let mut started = vec![false; clients_wanted];
    let mut up_at: Vec<Option<Instant>> = vec![None; clients_wanted];
    let mut padis = vec![0u32; clients_wanted];
    // The segment: frames in flight, in delivery order.
    let mut wire: BinaryHeap<Reverse<InFlight>> = BinaryHeap::new();
    let mut sequence = 0u64;
    let mut ac_timer: Option<Instant> = None;
    let deadline = start + Duration::from_secs(60);
    let mut now = start;
    let mut up = 0;

    while up < clients_wanted && now < deadline {
        // The next thing to happen.
        let next_wire = wire.peek().map(|Reverse((at, ..))| *at);
        let next_timer = timers.peek().map(|Reverse((at, _))| *at);
        let Some(next) = [next_wire, next_timer, ac_timer]
            .into_iter()
            .flatten()
            .min()
        else {
            break;
        };
        now = next;
        let mut touched = Vec::new();
        let mut ac_touched = false;
        while wire.peek().is_some_and(|Reverse((at, ..))| *at <= now) {
            let Reverse((_, _, to_who, frame)) = wire.pop().unwrap();
            match to_who {
                To::Ac => {
                    ac.handle_input(now, &frame);
                    ac_touched = true;
                }
                To::Client(index) => {
                    clients[index].handle_input(now, &frame);
                    touched.push(index);
                }
            }
        }
        while let Some(&Reverse((at, who))) = timers.peek() {
            if at > now {
                break;
            }
            timers.pop();
            if who > clients_wanted {
                // A client starts.
                let index = usize::MAX - who;
                started[index] = true;
                clients[index].open(now);
                touched.push(index);
            } else if clients[who].poll_timeout().is_some_and(|t| t <= now) {
                clients[who].handle_timeout(now);
                touched.push(who);
            }
        }
        if ac_timer.is_some_and(|t| t <= now) {
            ac.handle_timeout(now);
            ac_touched = true;
        }
        touched.sort_unstable();
        touched.dedup();
        for index in touched {
            let client = &mut clients[index];
            while client.poll_event().is_some() {}
            while let Some(frame) = client.poll_transmit() {
                if frame.get(12..16) == Some(&[0x88, 0x63, 0x11, 0x09]) {
                    padis[index] += 1;
                }
                sequence += 1;
                wire.push(Reverse((now + ONE_WAY, sequence, To::Ac, frame)));
            }
            if up_at[index].is_none() && *client.state() == PppoeClientState::Connected {
                up_at[index] = Some(now);
                up += 1;
            }
            if let Some(at) = client.poll_timeout() {
                timers.push(Reverse((at, index)));
            }
        }
        if ac_touched || ac_timer.is_some_and(|t| t <= now) {
            while ac.poll_event().is_some() {}
            while let Some(frame) = ac.poll_transmit() {
                let dst = MacAddr(frame[..6].try_into().unwrap());
                if let Some(&index) = by_mac.get(&dst) {
                    sequence += 1;
                    wire.push(Reverse((now + ONE_WAY, sequence, To::Client(index), frame)));
                }
            }
            ac_timer = ac.poll_timeout();
        }
    }

    let last = up_at.iter().flatten().max().copied().unwrap_or(start);
    let total_padis: u32 = padis.iter().sum();
    let most_padis = padis.iter().copied().max().unwrap_or(0);
    let stats = ac.access_concentrator().stats();
    println!(
        "{clients_wanted} clients starting at 20,000/s: {up} up, the last {:.2} s after the first \
         start; {total_padis} PADIs sent ({:.2} per client, at most {most_padis}); the AC answered \
         at most its PADI limit and dropped {} PADIs over it",
        (last - start).as_secs_f64(),
        f64::from(total_padis) / clients_wanted as f64,
        stats.padi_limited,
    );
    assert_eq!(up, clients_wanted, "every client got a session");
    assert!(stats.padi_limited > 0, "the PADI limit was reached");
    assert_eq!(ac.session_count(), clients_wanted);
    // Backing off: a client sends a few PADIs (1 s, 2 s, 4 s ... apart), not one per
    // round trip.
    assert!(most_padis <= 5, "a client sent {most_padis} PADIs");
    assert!(
        f64::from(total_padis) <= 3.0 * clients_wanted as f64,
        "{total_padis} PADIs for {clients_wanted} clients"
    );
    let _ = starts;
}
