//! The `pppoe_discovery` machines harness, shared by the fuzz target and the seed generator
//! (`tests/fuzz_seeds`).
//!
//! Input: Ethernet frames separated by 0xA5, 300 ms apart, each into a discovery client (MAC
//! 02:00:00:00:00:01) and an access concentrator (02:00:00:00:00:02) that also talk to each
//! other: the client's frames go to the AC at once, the AC's frames reach the client after every
//! second input frame. Each frame's first two bytes are also reported to the AC as the session
//! id of a session frame from the client that it does not know.

// The seed generator uses parts the fuzz target does not.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use pppoe_discovery::ppp_core::{CloseReason, Machine, Random};
use pppoe_discovery::{AcConfig, AcEvent, AccessConcentrator, Client, ClientConfig, MacAddr};

/// The separator of frames in the input.
pub const SEPARATOR: u8 = 0xA5;
/// The client's MAC address.
pub const CLIENT: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
/// The access concentrator's MAC address.
pub const AC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

/// The client and the access concentrator.
pub struct Discovery {
    /// The discovery client.
    pub client: Client,
    /// The access concentrator.
    pub ac: AccessConcentrator,
    now: Instant,
    frames: u64,
}

impl Discovery {
    /// Both machines, the client opened (its PADI queued), at `now`.
    pub fn new(now: Instant) -> Self {
        let mut client = Client::new(ClientConfig::default(), CLIENT, Random::seeded(1));
        client.open(now);
        let config = AcConfig {
            max_queued_frames: 8,
            max_queued_events: 8,
            limiter_slots: 64,
            ..AcConfig::default()
        };
        let ac = AccessConcentrator::new(config, AC, Random::seeded(2));
        Discovery {
            client,
            ac,
            now,
            frames: 0,
        }
    }

    /// One frame into both: returns the frames the AC sent to the client this time (every
    /// second frame; the seed generator reads the ones for other MACs) and the AC's events.
    pub fn frame(&mut self, frame: &[u8]) -> (Vec<Vec<u8>>, Vec<AcEvent>) {
        let (client, ac) = (&mut self.client, &mut self.ac);
        let i = self.frames;
        self.frames += 1;
        let t = self.now + Duration::from_millis(i * 300);
        client.handle_input(t, frame);
        ac.handle_input(t, frame);
        // Let the two talk, so that later frames meet every state.
        while let Some(out) = client.poll_transmit() {
            ac.handle_input(t, &out);
        }
        let mut delivered = Vec::new();
        if i.is_multiple_of(2) {
            while let Some(out) = ac.poll_transmit() {
                client.handle_input(t, &out);
                delivered.push(out);
            }
        }
        if let [a, b, ..] = *frame {
            let _ = ac.unknown_session(t, CLIENT, u16::from_be_bytes([a, b]));
        }
        Machine::handle_timeout(client, t);
        Machine::handle_timeout(ac, t);
        // The AC's queue holds at most its bound plus the frames its one possible session needs.
        assert!(ac.transmit_queue_len() <= 8 + 2);
        while client.poll_event().is_some() {}
        (delivered, std::iter::from_fn(|| ac.poll_event()).collect())
    }

    /// Closes a session, the AC and the client, and drains them.
    pub fn finish(mut self) {
        let (client, ac, now) = (&mut self.client, &mut self.ac, self.now);
        let first = ac.sessions().next().map(|s| s.session_id());
        if let Some(id) = first {
            let _ = ac.close_session(now, id, CloseReason::AdminReset);
        }
        ac.close(now, CloseReason::Shutdown);
        client.close(now, CloseReason::UserRequest);
        while ac.poll_transmit().is_some() {}
        while client.poll_transmit().is_some() {}
    }
}

/// The machines part of the target. Returns every event of the AC.
pub fn run(data: &[u8]) -> Vec<AcEvent> {
    let mut discovery = Discovery::new(Instant::now());
    let mut events = Vec::new();
    for frame in data.split(|b| *b == SEPARATOR) {
        events.extend(discovery.frame(frame).1);
    }
    discovery.finish();
    events
}
