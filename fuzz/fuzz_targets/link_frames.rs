//! Arbitrary frames into a link in every phase: Establish, Authenticate and Network, on IPv4 and
//! IPv6. Two links are first brought to the chosen phase by talking to each other; then the fuzzer's
//! frames (any protocol, any bytes) and timer expiries are fed to one of them. Nothing may panic,
//! and queues stay bounded.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use ppp_frame::Protocol;
use ppp_ipcp::{IpcpConfig, Ipv6cpConfig};
use ppp_link::auth::{AuthProtocol, ClientCredentials};
use ppp_link::{Framing, Link, LinkConfig, Random};

fn config(server: bool, auth: bool) -> LinkConfig {
    let mut config = LinkConfig { framing: Framing::Sync, ..LinkConfig::default() };
    config.ipv6cp = Some(Ipv6cpConfig::default());
    if server {
        config.ipcp = Some(IpcpConfig {
            remote_address: Some([192, 0, 2, 2].into()),
            ..IpcpConfig::server([192, 0, 2, 1].into(), [Some([198, 51, 100, 1].into()), None])
        });
        config.lcp.require = if auth { vec![AuthProtocol::ChapMd5] } else { vec![] };
    }
    config.lcp.allow = if auth { vec![AuthProtocol::ChapMd5] } else { vec![] };
    config.auth.credentials = Some(ClientCredentials::password("user", "secret"));
    config
}

fn drain(link: &mut Link) {
    while link.poll_event().is_some() {}
    while link.poll_datagram().is_some() {}
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else { return };
    let now = Instant::now();
    let auth = selector & 1 != 0;
    let exchanges = usize::from(selector >> 1) % 16;
    // The peer's secret lookup is never answered, so with auth we stay in Authenticate.
    let mut us = Link::new(config(false, auth), Random::seeded(1));
    let mut peer = Link::new(config(true, auth), Random::seeded(2));
    for link in [&mut us, &mut peer] {
        link.open(now);
        link.up(now);
    }
    // Let the two links talk for a chosen number of exchanges: 0 leaves us in Establish, a few
    // reach Authenticate (with auth) or Network.
    for _ in 0..exchanges {
        while let Some(frame) = us.poll_transmit() {
            peer.handle_input(now, &frame);
        }
        while let Some(frame) = peer.poll_transmit() {
            us.handle_input(now, &frame);
        }
    }
    drain(&mut us);
    let mut t = now;
    // Frames: [protocol hi, protocol lo, length, bytes...], with a timer tick between them.
    while let [hi, lo, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (body, next) = tail.split_at(len);
        rest = next;
        let mut frame = Vec::new();
        ppp_frame::sync::encode(Protocol::from(u16::from_be_bytes([*hi, *lo])), body, false, &mut frame);
        us.handle_input(t, &frame);
        t += Duration::from_millis(u64::from(*hi) * 40);
        if us.poll_timeout().is_some_and(|deadline| deadline <= t) {
            us.handle_timeout(t);
        }
        while us.poll_transmit().is_some() {}
        drain(&mut us);
        let _ = us.send_ipv4(t, body);
        let _ = us.send_ipv6(t, body);
    }
    // A raw, possibly malformed frame too.
    us.handle_input(t, rest);
    drain(&mut us);
});
