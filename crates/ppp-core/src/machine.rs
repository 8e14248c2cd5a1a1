//! The verbs of a sans-IO state machine.

use std::time::Instant;

/// A sans-IO state machine as its owner drives it: bytes and instants in; bytes, events and a
/// deadline out.
///
/// The cores implement it themselves ([`Fsm`], `Lcp`, `Link`, `PppoeClient`, `PppoeServer`, the
/// discovery client and access concentrator, the modem dialer and answerer, the authentication
/// machines), so a simulation harness, an adapter's loop or a test drives any of them without a
/// wrapper. Administrative verbs (`open`, `close`), answers (`provide_secret`) and extra outputs
/// (`poll_datagram`) are inherent methods, because their arguments differ per machine.
///
/// [`Fsm`]: https://docs.rs/ppp-lcp
pub trait Machine {
    /// What the machine tells its owner.
    type Event;

    /// Bytes (a chunk of a stream, or one whole frame, as the machine documents) arrived.
    fn handle_input(&mut self, now: Instant, input: &[u8]);

    /// The deadline from [`poll_timeout`](Self::poll_timeout) has come (or passed). A call before
    /// the deadline, or with no deadline, does nothing.
    fn handle_timeout(&mut self, now: Instant);

    /// The next bytes or frame to send, if any. Call until `None` after every input.
    #[must_use]
    fn poll_transmit(&mut self) -> Option<Vec<u8>>;

    /// The next event, if any. Call until `None` after every input.
    #[must_use]
    fn poll_event(&mut self) -> Option<Self::Event>;

    /// When [`handle_timeout`](Self::handle_timeout) should next be called, if ever.
    #[must_use]
    fn poll_timeout(&self) -> Option<Instant>;
}
