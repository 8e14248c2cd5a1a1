//! Keepalive timings as the PPPoE programs configure them (`keepalive-timeout`, RouterOS
//! semantics, docs/pppoe.md), pinned on virtual time: a client notices a dead access
//! concentrator `keepalive-timeout` seconds after it last heard from it, and the access
//! concentrator drops a dead client's session (and its address) after twice that.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppp_auth::SecretsTable;
use ppp_ipcp::IpcpConfig;
use ppp_link::auth::{AuthProtocol, ClientCredentials};
use ppp_link::pppoe::{PppoeClient, PppoeClientEvent, PppoeServer, PppoeServerEvent};
use ppp_link::{DownReason, LinkConfig, LinkEvent, Random};
use ppp_sim::{Impairments, Pair};
use ppp_stack::pppoe::config::apply_keepalive;
use pppoe_discovery::{AcConfig, ClientConfig, MacAddr};

const TIMEOUT: u64 = 60;

fn pair() -> Pair<PppoeClient, PppoeServer> {
    let mut client_link = LinkConfig::pppoe();
    client_link.lcp.allow = vec![AuthProtocol::ChapMd5];
    client_link.auth.credentials = Some(ClientCredentials::password("user", "pw"));
    apply_keepalive(&mut client_link, TIMEOUT, false);
    let mut ac_link = LinkConfig::pppoe();
    ac_link.lcp.require = vec![AuthProtocol::ChapMd5];
    ac_link.ipcp = Some(IpcpConfig {
        remote_address: Some(Ipv4Addr::new(192, 0, 2, 100)),
        ..IpcpConfig::server(Ipv4Addr::new(192, 0, 2, 1), [None, None])
    });
    ac_link.auth.secrets = Some(Arc::new(SecretsTable::parse_pppd("user * pw\n").unwrap()));
    apply_keepalive(&mut ac_link, TIMEOUT, true);
    let start = Instant::now();
    let mut client = PppoeClient::new(
        ClientConfig::default(),
        client_link,
        MacAddr([2, 0, 0, 0, 0, 1]),
        Random::seeded(1),
    );
    client.open(start);
    let server = PppoeServer::new(
        AcConfig::default(),
        ac_link,
        MacAddr([2, 0, 0, 0, 0, 2]),
        Random::seeded(2),
    );
    let delay = Impairments::delay(Duration::from_millis(1));
    let mut pair = Pair::new_at(start, client, server, delay.clone(), delay, 3);
    assert!(pair.run_until(Duration::from_secs(5), |a, _| {
        a.link().is_some_and(|l| l.ipcp_negotiated().is_some())
    }));
    // A minute of idle keepalive first: both stay up.
    let until = pair.elapsed() + Duration::from_secs(120);
    pair.run_for(until);
    assert_eq!(pair.b.session_count(), 1);
    pair
}

/// When the last frame crossed `direction` before `now` (the channel's own clock): what the
/// receiving side last heard.
fn silence(pair: &mut Pair<PppoeClient, PppoeServer>, client_dies: bool) -> Instant {
    let cut = pair.now();
    let dead = Impairments {
        loss: 1.0,
        ..Impairments::delay(Duration::from_millis(1))
    };
    if client_dies {
        pair.a_to_b.set_impairments(dead.clone());
    }
    // Either way the client is deaf to the AC from now on (a dead client hears nothing; a dead
    // AC says nothing).
    pair.b_to_a.set_impairments(dead.clone());
    if !client_dies {
        pair.a_to_b.set_impairments(dead);
    }
    cut
}

#[test]
fn a_client_notices_a_dead_access_concentrator_after_keepalive_timeout() {
    let mut pair = pair();
    let cut = silence(&mut pair, false);
    let events_before = pair.a_events.len();
    let until = pair.elapsed() + Duration::from_secs(3 * TIMEOUT);
    pair.run_until(until, |a, _| {
        a.link().is_none_or(|l| l.ipcp_negotiated().is_none())
    });
    let down = pair.a_events[events_before..].iter().find_map(|e| match e {
        PppoeClientEvent::Link(LinkEvent::LinkDown { reason }) => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(down, Some(DownReason::EchoTimeout));
    let after = pair.now() - cut;
    // The last frame from the AC arrived at most one echo interval before the cut.
    assert!(
        after <= Duration::from_secs(TIMEOUT) + Duration::from_millis(10)
            && after >= Duration::from_secs(TIMEOUT - TIMEOUT / 6),
        "noticed after {after:?} (keepalive-timeout {TIMEOUT} s)"
    );
}

#[test]
fn the_access_concentrator_drops_a_dead_clients_session_after_twice_the_timeout() {
    let mut pair = pair();
    let cut = silence(&mut pair, true);
    let events_before = pair.b_events.len();
    let until = pair.elapsed() + Duration::from_secs(4 * TIMEOUT);
    pair.run_until(until, |_, b| b.session_count() == 0);
    assert_eq!(pair.b.session_count(), 0);
    let after = pair.now() - cut;
    assert!(
        after <= Duration::from_secs(2 * TIMEOUT) + Duration::from_millis(10)
            && after >= Duration::from_secs(2 * TIMEOUT - 2 * TIMEOUT / 6),
        "session dropped after {after:?} (2 × keepalive-timeout = {} s)",
        2 * TIMEOUT
    );
    assert!(pair.b_events[events_before..].iter().any(|e| matches!(
        e,
        PppoeServerEvent::Link {
            event: LinkEvent::LinkDown {
                reason: DownReason::EchoTimeout
            },
            ..
        }
    )));
}
