//! The `link_frames` harness, shared by the fuzz target and the seed generator
//! (`tests/fuzz_seeds`), so that seeds are written in exactly the format the target reads.
//!
//! Input: `[selector, records..., raw tail]`. The selector's bit 0 turns CHAP on, and
//! `(selector >> 1) % 16` is the number of exchanges two links have before the input starts:
//! 0 leaves `us` in Establish, a few reach Authenticate (with CHAP: the peer's secret lookup is
//! never answered) or Network. Each record `[protocol hi, protocol lo, length, body...]` is one
//! frame into `us`; after it, time advances by `protocol hi × 40 ms`, due timers fire, and the
//! body is also sent as an IPv4 and an IPv6 datagram. Whatever does not make a whole record is fed
//! as one raw, possibly malformed frame.

// The seed generator uses parts the fuzz target does not.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use ppp_frame::Protocol;
use ppp_ipcp::{IpcpConfig, Ipv6cpConfig};
use ppp_link::auth::{AuthProtocol, ClientCredentials};
use ppp_link::{Framing, Link, LinkConfig, Phase, Random};

/// The configuration of `us` (`server == false`) and of the peer.
pub fn config(server: bool, auth: bool) -> LinkConfig {
    let mut config = LinkConfig {
        framing: Framing::Sync,
        ..LinkConfig::default()
    };
    config.ipv6cp = Some(Ipv6cpConfig::default());
    if server {
        config.ipcp = Some(IpcpConfig {
            remote_address: Some([192, 0, 2, 2].into()),
            ..IpcpConfig::server(
                [192, 0, 2, 1].into(),
                [Some([198, 51, 100, 1].into()), None],
            )
        });
        config.lcp.require = if auth {
            vec![AuthProtocol::ChapMd5]
        } else {
            vec![]
        };
    }
    config.lcp.allow = if auth {
        vec![AuthProtocol::ChapMd5]
    } else {
        vec![]
    };
    config.auth.credentials = Some(ClientCredentials::password("user", "secret"));
    config
}

fn drain(link: &mut Link) {
    while link.poll_event().is_some() {}
    while link.poll_datagram().is_some() {}
}

/// The link under test, at the time the next record arrives.
pub struct LinkFrames {
    /// The link the input goes to.
    pub us: Link,
    /// The virtual time.
    pub t: Instant,
}

impl LinkFrames {
    /// `us` after the selector's setup, and the peer it talked to (the target drops it; the
    /// seed generator goes on talking with it).
    pub fn new(selector: u8, now: Instant) -> (Self, Link) {
        let auth = selector & 1 != 0;
        let exchanges = usize::from(selector >> 1) % 16;
        let mut us = Link::new(config(false, auth), Random::seeded(1));
        let mut peer = Link::new(config(true, auth), Random::seeded(2));
        for link in [&mut us, &mut peer] {
            link.open(now);
            link.up(now);
        }
        for _ in 0..exchanges {
            while let Some(frame) = us.poll_transmit() {
                peer.handle_input(now, &frame);
            }
            while let Some(frame) = peer.poll_transmit() {
                us.handle_input(now, &frame);
            }
        }
        drain(&mut us);
        (LinkFrames { us, t: now }, peer)
    }

    /// One record into `us`: returns the frames `us` sent meanwhile (the target drops them).
    pub fn record(&mut self, protocol: u16, body: &[u8]) -> Vec<Vec<u8>> {
        let us = &mut self.us;
        let mut frame = Vec::new();
        ppp_frame::sync::encode(Protocol::from(protocol), body, false, &mut frame);
        us.handle_input(self.t, &frame);
        self.t += Duration::from_millis(u64::from(protocol >> 8) * 40);
        if us.poll_timeout().is_some_and(|deadline| deadline <= self.t) {
            us.handle_timeout(self.t);
        }
        let sent = std::iter::from_fn(|| us.poll_transmit()).collect();
        drain(us);
        let _ = us.send_ipv4(self.t, body);
        let _ = us.send_ipv6(self.t, body);
        sent
    }

    /// The raw tail into `us`.
    pub fn finish(&mut self, raw: &[u8]) {
        self.us.handle_input(self.t, raw);
        drain(&mut self.us);
    }
}

/// Appends a record (a body longer than 255 bytes is cut to 255).
pub fn push_record(out: &mut Vec<u8>, protocol: u16, body: &[u8]) {
    let body = &body[..body.len().min(255)];
    out.extend_from_slice(&protocol.to_be_bytes());
    out.push(body.len() as u8);
    out.extend_from_slice(body);
}

/// One record of an input: a frame's protocol and body.
pub type Record<'a> = (u16, &'a [u8]);

/// The selector, the records and the raw tail of an input.
pub fn parse(data: &[u8]) -> Option<(u8, Vec<Record<'_>>, &[u8])> {
    let (&selector, mut rest) = data.split_first()?;
    let mut records = Vec::new();
    while let [hi, lo, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (body, next) = tail.split_at(len);
        records.push((u16::from_be_bytes([*hi, *lo]), body));
        rest = next;
    }
    Some((selector, records, rest))
}

/// The whole target: nothing may panic, queues stay bounded. Returns the phase `us` ends in.
pub fn run(data: &[u8]) -> Option<Phase> {
    let (selector, records, tail) = parse(data)?;
    let (mut harness, _peer) = LinkFrames::new(selector, Instant::now());
    for (protocol, body) in records {
        let _ = harness.record(protocol, body);
    }
    harness.finish(tail);
    Some(harness.us.phase())
}
