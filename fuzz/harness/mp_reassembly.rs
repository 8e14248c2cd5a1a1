//! The `mp_reassembly` harness, shared by the fuzz target and the seed generator
//! (`tests/fuzz_seeds`).
//!
//! 1. The input as an MP header in both formats: where it parses, emitting the header gives back
//!    the same bytes, and the rest is the fragment data.
//! 2. The input as a script driving one `Bundle` whose sending side is looped back into its
//!    receiving side: fragments with arbitrary flags, sequence numbers (near the next expected
//!    one, or anywhere) and lengths on several members, raw frames, members leaving and
//!    joining, time passing, packets sent through the fragmenter. After every step: the
//!    receiver stays within its memory limits and accounts for every fragment it received.
//!
//! The script: a setup byte (bit 0: short sequence numbers; bit 1: protocol field compression;
//! bits 2-3: members − 1; bits 6-7: the initial sequence is shifted left by 4 × their value),
//! MRRU (u16, 64 + x % 1600), initial sequence (u16), fragmentation threshold (×4), minimum
//! fragment size, buffer limit (u16, ×4), fragment limit (×8), reassembly timeout (×4 ms), each
//! member's MTU (u16, 8 + x % 1600); then operations, each a byte `op` (member `op >> 4`, bit 6:
//! poll packets afterwards) and its arguments by `op & 7`:
//! - 0-2: a fragment `[flags (B 0x80, E 0x40, length multiplier 0x0F), delta (i16) from the next
//!   expected sequence number (with `op & 8`: an absolute number, u16 high bits + flags), length
//!   byte, data]`;
//! - 3: a raw frame `[length, bytes]`;
//! - 4: time passes `[×8 ms]` (`op & 8`: the timeout runs even if not due);
//! - 5: with `op & 8`, the member leaves; else a member joins `[MTU u16]`;
//! - 6, 7: a packet `[protocol u16, length u16 % 2048]` of `op` bytes through the fragmenter,
//!   looped back (`op & 8`: in reverse order).

// The seed generator uses parts the fuzz target does not.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use ppp_mp::{
    Bundle, BundleConfig, FragmenterConfig, MemberId, MemberLink, MpHeader, ReassemblerConfig,
    SequenceFormat,
};

struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.byte()?, self.byte()?]))
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
}

/// The input as an MP header in both formats: what parses emits back to the same bytes.
pub fn header_round_trip(data: &[u8]) {
    for format in [SequenceFormat::Long, SequenceFormat::Short] {
        if let Ok((header, rest)) = MpHeader::parse(format, data) {
            let mut out = [0u8; 4];
            let len = header.emit(&mut out).expect("a parsed header emits");
            assert_eq!(len, header.buffer_len());
            assert_eq!(&out[..len], &data[..len]);
            assert_eq!(rest, &data[len..]);
        }
    }
}

fn check(bundle: &Bundle) {
    let r = bundle.reassembler();
    let limits = r.limits();
    assert!(r.buffered_bytes() <= limits.buffered_bytes);
    assert!(r.queued_packets() <= limits.queued_packets);
    let s = r.stats();
    assert!(s.peak_buffered_bytes <= limits.buffered_bytes);
    assert_eq!(
        s.fragments_received,
        s.fragments_too_long
            + s.duplicate_fragments
            + s.late_fragments
            + s.fragments_delivered
            + s.fragments_discarded
            + s.null_fragments
            + r.buffered_fragments() as u64
    );
}

/// How far a script got.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Operations run.
    pub operations: usize,
    /// Packets the bundle delivered (counted where the script polls for them).
    pub packets: usize,
}

/// Runs the input as a script (see the module docs).
pub fn run_script(data: &[u8]) -> Outcome {
    let mut outcome = Outcome::default();
    let _ = script(data, &mut outcome);
    outcome
}

fn script(data: &[u8], outcome: &mut Outcome) -> Option<()> {
    let mut s = Script(data);
    let setup = s.byte()?;
    let format = if setup & 1 == 1 {
        SequenceFormat::Short
    } else {
        SequenceFormat::Long
    };
    let mrru = 64 + s.u16()? % 1600;
    let initial_sequence = u32::from(s.u16()?) << (setup >> 4 & 0x0C);
    let config = BundleConfig {
        send: FragmenterConfig {
            format,
            peer_mrru: mrru,
            protocol_field_compression: setup & 2 != 0,
            fragmentation_threshold: usize::from(s.byte()?) * 4,
            min_fragment_size: usize::from(s.byte()?),
            initial_sequence,
            max_queued_fragments: 256,
        },
        receive: ReassemblerConfig {
            format,
            mrru,
            initial_sequence,
            max_buffered_bytes: usize::from(s.u16()?) * 4,
            max_buffered_fragments: usize::from(s.byte()?) * 8,
            reassembly_timeout: Duration::from_millis(u64::from(s.byte()?) * 4),
        },
    };
    let mut bundle = Bundle::new(config);
    let mut now = Instant::now();
    let mut members: Vec<MemberId> = Vec::new();
    for _ in 0..=(setup >> 2 & 3) {
        let mtu = 8 + s.u16()? % 1600;
        members.push(bundle.add_link(MemberLink::new(mtu)).ok()?);
    }
    let mut frame = Vec::new();
    for _ in 0..4096 {
        let op = s.byte()?;
        let member = if members.is_empty() {
            MemberId(u32::from(op))
        } else {
            members[usize::from(op >> 4) % members.len()]
        };
        match op & 7 {
            // A fragment near the next expected sequence number.
            0..=2 => {
                let flags = s.byte()?;
                let delta = i32::from(s.u16()? as i16);
                let sequence = if op & 8 == 0 {
                    format.add(bundle.reassembler().expected_sequence(), delta as u32)
                } else {
                    format.add(0, (u32::from(s.u16()?) << 8) | u32::from(flags))
                };
                let header = MpHeader {
                    format,
                    begin: flags & 0x80 != 0,
                    end: flags & 0x40 != 0,
                    sequence,
                };
                let len = usize::from(s.byte()?) * usize::from(flags & 0x0F);
                frame.clear();
                frame.resize(header.buffer_len(), 0);
                header.emit(&mut frame).expect("emits");
                let data = s.bytes(len).to_vec();
                frame.extend_from_slice(&data);
                frame.resize(header.buffer_len() + len, 0x21);
                let _ = bundle.handle_input(now, member, &frame);
            }
            // A raw frame.
            3 => {
                let len = usize::from(s.byte()?);
                let raw = s.bytes(len).to_vec();
                let _ = bundle.handle_input(now, member, &raw);
            }
            // Time passes; the timeout runs when due (or spuriously).
            4 => {
                now += Duration::from_millis(u64::from(s.byte()?) * 8);
                if op & 8 != 0 || bundle.poll_timeout().is_some_and(|t| t <= now) {
                    bundle.handle_timeout(now);
                }
            }
            // A member leaves or joins.
            5 => {
                if op & 8 != 0 && !members.is_empty() {
                    let _ = bundle.remove_link(now, member);
                    members.retain(|&m| m != member);
                } else if let Ok(id) = bundle.add_link(MemberLink::new(8 + s.u16()? % 1600)) {
                    members.push(id);
                }
            }
            // A packet through the fragmenter, looped back, possibly reordered.
            _ => {
                let protocol = s.u16()?;
                let len = usize::from(s.u16()? % 2048);
                let information = vec![op; len];
                if bundle.send(now, protocol, &information).is_ok() {
                    let mut frames: Vec<(MemberId, Vec<u8>)> =
                        std::iter::from_fn(|| bundle.poll_transmit()).collect();
                    if op & 8 != 0 {
                        frames.reverse();
                    }
                    for (m, f) in frames {
                        let _ = bundle.handle_input(now, m, &f);
                    }
                }
            }
        }
        if op & 0x40 != 0 {
            while bundle.poll_packet().is_some() {
                outcome.packets += 1;
            }
        }
        outcome.operations += 1;
        while bundle.poll_event().is_some() {}
        check(&bundle);
    }
    Some(())
}
