//! PPP over Ethernet, sans-IO: discovery and the PPP link of each session, composed.
//!
//! [`PppoeClient`] runs a `pppoe_discovery::Client` and, once the PADS arrives, a [`Link`] with
//! sync framing over the session (Multilink over that one session when an MRRU is configured:
//! pppd's `mrru`, so that 1500-byte packets cross a 1492-byte session in fragments);
//! [`PppoeServer`] runs a `pppoe_discovery::AccessConcentrator` and, above each session's
//! [`LinkControl`](crate::LinkControl), a network layer: the session's own, or that of a
//! Multilink bundle the session joined with other sessions of the same peer ([`UnitId`]). Both
//! take and give whole Ethernet frames, so any transport (an AF_PACKET socket, a simulated
//! segment) can carry them.
//!
//! The server is built for many sessions: every input touches only the sessions it concerns
//! (a frame its session, a PADI none), deadlines wait in a heap so [`PppoeServer::poll_timeout`]
//! is O(1) and a timeout wakes only the sessions that are due, sessions are found by id in a
//! hash table, and every session shares one configuration.

mod client;
mod server;

pub use client::{PppoeClient, PppoeClientEvent, PppoeClientState, PppoeDown};
pub use server::{
    IpcpFactory, PppoeServer, PppoeServerEvent, ServerLimits, ServerSession, ServerStats,
    SessionEnd, UnitId,
};

use std::collections::VecDeque;

use pppoe_discovery::{MacAddr, SessionMtu};
use tracing::debug;

use crate::{Framing, Link, LinkConfig};

/// The Ethernet type of PPPoE discovery frames.
pub(crate) const ETHERTYPE_DISCOVERY: u16 = 0x8863;
/// The Ethernet type of PPPoE session frames.
pub(crate) const ETHERTYPE_SESSION: u16 = 0x8864;
/// Events and datagrams a client keeps waiting at most; beyond, the oldest are dropped.
pub(crate) const MAX_CLIENT_QUEUE: usize = 4096;

pub(crate) fn ethertype(frame: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]))
}

pub(crate) fn push_bounded<T>(queue: &mut VecDeque<T>, item: T, limit: usize) -> bool {
    let dropped = queue.len() >= limit;
    if dropped {
        queue.pop_front();
    }
    queue.push_back(item);
    dropped
}

/// The link configuration for a session: sync framing, and an MRU that fits the session.
pub(crate) fn session_link_config(template: &LinkConfig, mtu: SessionMtu) -> LinkConfig {
    let mut config = template.clone();
    config.framing = Framing::Sync;
    config.headroom = pppoe_discovery::wire::HEADER_LEN;
    config.lcp.mru = config.lcp.mru.min(mtu.ppp_mtu);
    config.lcp.max_mru = config.lcp.max_mru.min(mtu.ppp_mtu);
    config.lcp.mtu = Some(config.lcp.mtu.unwrap_or(mtu.ppp_mtu).min(mtu.ppp_mtu));
    config
}

/// Moves a link's output into Ethernet frames for a session: the link leaves room for the
/// headers in front of each frame (see [`session_link_config`]), filled here in place. Frames
/// beyond `limit` queued are dropped and counted.
pub(crate) fn encapsulate_all(
    link: &mut Link,
    dst: MacAddr,
    src: MacAddr,
    session_id: u16,
    out: &mut VecDeque<Vec<u8>>,
    limit: usize,
    dropped: &mut u64,
) {
    while let Some(frame) = link.poll_transmit() {
        encapsulate(frame, dst, src, session_id, out, limit, dropped);
    }
}

/// One frame of a session's link into an Ethernet frame (see [`encapsulate_all`]).
pub(crate) fn encapsulate(
    mut frame: Vec<u8>,
    dst: MacAddr,
    src: MacAddr,
    session_id: u16,
    out: &mut VecDeque<Vec<u8>>,
    limit: usize,
    dropped: &mut u64,
) {
    if out.len() >= limit {
        *dropped += 1;
        return;
    }
    match pppoe_discovery::write_session_header(&mut frame, dst, src, session_id) {
        Ok(()) => out.push_back(frame),
        Err(error) => debug!("session {session_id:#06x}: frame not sent: {error}"),
    }
}
