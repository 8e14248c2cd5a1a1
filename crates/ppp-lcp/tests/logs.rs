//! pppd-style packet summaries reach `tracing` at debug level.
//!
//! A test binary of its own: `tracing` caches per call site whether anyone listens, and tests on
//! other threads without a subscriber would race that cache.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use ppp_lcp::Random;
use ppp_lcp::lcp::{Lcp, LcpConfig};

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

struct MessageVisitor<'a>(&'a mut String);

impl tracing::field::Visit for MessageVisitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            use std::fmt::Write as _;
            let _ = write!(self.0, "{value:?}");
        }
    }
}

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut message = String::new();
        event.record(&mut MessageVisitor(&mut message));
        self.0.lock().unwrap().push(message);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn packets_are_logged_like_pppd() {
    let recorder = Recorder::default();
    tracing::subscriber::with_default(recorder.clone(), || {
        let now = Instant::now();
        let mut lcp = Lcp::new(LcpConfig::default(), Random::scripted(&[0x5d3c_1a2b]));
        lcp.open(now);
        lcp.up(now);
        let mut terminate = vec![5, 2, 0, 16];
        terminate.extend_from_slice(b"User request");
        lcp.handle_input(now, &terminate);
    });
    let lines = recorder.0.lock().unwrap().clone();
    for expected in [
        "sent [LCP ConfReq id=0x1 <asyncmap 0x0> <magic 0x5d3c1a2b> <pcomp> <accomp>]",
        "rcvd [LCP TermReq id=0x2 \"User request\"]",
        "sent [LCP TermAck id=0x2]",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "missing {expected:?} in {lines:#?}"
        );
    }
}
