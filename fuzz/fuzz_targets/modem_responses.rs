//! Modem output: response lines, the line reader over arbitrary chunks, chat scripts and the AT
//! engine never panic and stay bounded.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use ppp_modem::{AtCommand, AtEngine, ChatScript, EngineConfig, LineReader, parse_response_line};

fuzz_target!(|data: &[u8]| {
    let _ = parse_response_line(data);
    let _ = ChatScript::parse(&String::from_utf8_lossy(data));
    let mut reader = LineReader::new(256);
    let mut rest = data;
    while !rest.is_empty() {
        let (used, line) = reader.feed(rest);
        if let Some(line) = line {
            // The limit is on raw bytes; lossy UTF-8 turns each bad byte into one U+FFFD.
            assert!(line.chars().count() <= 256);
        }
        if used == 0 {
            break;
        }
        rest = &rest[used..];
    }
    let now = Instant::now();
    let mut engine = AtEngine::new(EngineConfig::default());
    let _ = engine.enqueue(now, AtCommand::new("AT+CSQ", Duration::from_secs(1)));
    let _ = engine.enqueue(now, AtCommand::connect("ATD*99#", Duration::from_secs(30)));
    for (i, chunk) in data.chunks(7).enumerate() {
        let t = now + Duration::from_millis(i as u64 * 100);
        engine.handle_input(t, chunk);
        engine.handle_timeout(t);
        while engine.poll_transmit().is_some() {}
        while engine.poll_event().is_some() {}
    }
});
