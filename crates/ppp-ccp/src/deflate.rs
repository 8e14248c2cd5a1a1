//! Deflate compression (RFC 1979) framed as Linux `ppp_deflate` does it.
//!
//! The 0x00FD information field is a 2-byte sequence number followed by raw deflate data (no
//! zlib header). What is compressed is the datagram's protocol field, one byte when the
//! protocol is below 0x100 (as under PFC) and two otherwise, then the payload. Each packet ends
//! with a sync flush whose trailing empty stored block `00 00 FF FF` is left out (Linux's
//! `Z_PACKET_FLUSH`); the receiver puts it back before inflating.
//!
//! The history is shared by both ends across packets:
//! - Every datagram of protocol 0x0000–0x3FFF other than 0x00FB/0x00FD goes through the
//!   compressor and takes a sequence number, even when the result is not smaller and the
//!   datagram is sent uncompressed; the receiver then adds the uncompressed datagram to its
//!   history ([`DeflateDecompressor::add_uncompressed`], Linux `z_incomp`) and counts it.
//! - A sequence-number gap or a stream error stops decompression until the peer's Reset-Ack
//!   (the caller sends a Reset-Request); a reset restarts both ends at sequence 0 with an empty
//!   history.
//!
//! The compressor always has a 32 KiB window (miniz_oxide). When the peer asked for a smaller
//! window, the compressor restarts its history before it could reach further back than the
//! window, and datagrams larger than the window are sent uncompressed: the output never refers
//! further back than the peer can see.

use std::fmt;

use miniz_oxide::deflate::core::{CompressorOxide, create_comp_flags_from_zip_params};
use miniz_oxide::inflate::stream::InflateState;
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};
use ppp_frame::Protocol;
use tracing::debug;

use crate::CcpError;
use crate::mppe::split_protocol;

/// Sequence-number length.
pub const HEADER_LEN: usize = 2;
/// The sync-flush trailer that is not sent.
const SYNC_TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// Largest datagram (protocol field included) a decompressor produces.
pub const MAX_DATAGRAM: usize = 65_537;
/// zlib's default compression level.
const LEVEL: i32 = 6;

/// Whether Deflate handles datagrams of this protocol (Linux: 0x0000–0x3FFF except 0x00FB and
/// 0x00FD).
pub fn compresses(protocol: Protocol) -> bool {
    let n = protocol.number();
    n <= 0x3fff && n != 0x00fb && n != 0x00fd
}

/// The bytes the history sees for a datagram: protocol field (1 byte below 0x100) + payload.
fn history_bytes(protocol: Protocol, payload: &[u8]) -> Vec<u8> {
    let n = protocol.number();
    let mut input = Vec::with_capacity(payload.len() + 2);
    if n > 0xff {
        input.extend_from_slice(&n.to_be_bytes());
    } else {
        input.push(n as u8);
    }
    input.extend_from_slice(payload);
    input
}

fn new_compressor() -> Box<CompressorOxide> {
    Box::new(CompressorOxide::new(create_comp_flags_from_zip_params(
        LEVEL, -15, 0,
    )))
}

/// Compresses datagrams for the peer.
pub struct DeflateCompressor {
    window_bits: u8,
    sequence: u16,
    compressor: Box<CompressorOxide>,
    history: usize,
}

impl fmt::Debug for DeflateCompressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeflateCompressor")
            .field("window_bits", &self.window_bits)
            .field("sequence", &self.sequence)
            .finish_non_exhaustive()
    }
}

impl DeflateCompressor {
    /// A compressor for a peer that decompresses with a `window_bits` window (8–15).
    pub fn new(window_bits: u8) -> Self {
        DeflateCompressor {
            window_bits: window_bits.clamp(8, 15),
            sequence: 0,
            compressor: new_compressor(),
            history: 0,
        }
    }

    /// The sequence number of the next packet.
    pub fn sequence(&self) -> u16 {
        self.sequence
    }

    /// The peer sent a Reset-Request: sequence 0, empty history.
    pub fn reset(&mut self) {
        self.sequence = 0;
        self.restart_history();
    }

    fn restart_history(&mut self) {
        // Clears the dictionary and hash chains: nothing before this point is referred to.
        self.compressor.reset();
        self.history = 0;
    }

    /// The 0x00FD information field for a datagram, or `None` to send it uncompressed (a
    /// protocol Deflate does not handle, or no gain).
    pub fn compress(&mut self, protocol: Protocol, payload: &[u8]) -> Option<Vec<u8>> {
        if !compresses(protocol) {
            return None;
        }
        let input = history_bytes(protocol, payload);
        let sequence = self.sequence;
        self.sequence = self.sequence.wrapping_add(1);
        if self.window_bits < 15 {
            let window = 1usize << self.window_bits;
            if input.len() > window {
                // Cannot be compressed within the window: sent as it is; the peer adds it to
                // its history, which we never refer to.
                self.restart_history();
                return None;
            }
            if self.history + input.len() > window {
                self.restart_history();
            }
            self.history += input.len();
        }
        let mut out = vec![0u8; HEADER_LEN + input.len() + input.len() / 8 + 64];
        out[..HEADER_LEN].copy_from_slice(&sequence.to_be_bytes());
        let result = miniz_oxide::deflate::stream::deflate(
            &mut self.compressor,
            &input,
            &mut out[HEADER_LEN..],
            MZFlush::Sync,
        );
        let written = HEADER_LEN + result.bytes_written;
        let complete = result.status.is_ok()
            && result.bytes_consumed == input.len()
            && written < out.len()
            && out[..written].ends_with(&SYNC_TRAILER);
        if !complete {
            debug!(
                "Deflate: compressor failed ({:?}), restarting it",
                result.status
            );
            self.restart_history();
            return None;
        }
        out.truncate(written - SYNC_TRAILER.len());
        // Linux's rule: use the compressed form only if it is shorter.
        (out.len() - HEADER_LEN + 2 < payload.len()).then_some(out)
    }
}

/// Decompresses the peer's datagrams.
pub struct DeflateDecompressor {
    sequence: u16,
    state: Box<InflateState>,
    failed: bool,
}

impl fmt::Debug for DeflateDecompressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeflateDecompressor")
            .field("sequence", &self.sequence)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Default for DeflateDecompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl DeflateDecompressor {
    /// A decompressor (any window up to 15 bits).
    pub fn new() -> Self {
        DeflateDecompressor {
            sequence: 0,
            state: InflateState::new_boxed(DataFormat::Raw),
            failed: false,
        }
    }

    /// The sequence number expected next.
    pub fn sequence(&self) -> u16 {
        self.sequence
    }

    /// Whether packets are being discarded until the peer's Reset-Ack.
    pub fn is_discarding(&self) -> bool {
        self.failed
    }

    /// The peer's Reset-Ack arrived: sequence 0, empty history, decompressing again.
    pub fn reset(&mut self) {
        self.sequence = 0;
        self.state.reset(DataFormat::Raw);
        self.failed = false;
    }

    fn fail(&mut self, error: CcpError) -> CcpError {
        debug!("Deflate: {error}; discarding until Reset-Ack");
        self.failed = true;
        error
    }

    /// Decompress a 0x00FD information field into the protocol and the datagram.
    pub fn decompress(&mut self, info: &[u8]) -> Result<(Protocol, Vec<u8>), CcpError> {
        if self.failed {
            return Err(CcpError::Discarding);
        }
        let &[high, low, ref data @ ..] = info else {
            return Err(self.fail(CcpError::Truncated { len: info.len() }));
        };
        if data.is_empty() {
            return Err(self.fail(CcpError::Truncated { len: info.len() }));
        }
        let got = u16::from_be_bytes([high, low]);
        if got != self.sequence {
            let expected = self.sequence;
            return Err(self.fail(CcpError::SequenceMismatch { got, expected }));
        }
        self.sequence = self.sequence.wrapping_add(1);
        let mut input = Vec::with_capacity(data.len() + SYNC_TRAILER.len());
        input.extend_from_slice(data);
        input.extend_from_slice(&SYNC_TRAILER);
        match self.inflate(&input) {
            Ok(datagram) => split_protocol(datagram).map_err(|e| self.fail(e)),
            Err(error) => Err(self.fail(error)),
        }
    }

    /// A datagram arrived uncompressed (not as 0x00FD): add it to the history and count it, as
    /// the peer's compressor did (Linux `z_incomp`). Protocols Deflate does not handle are
    /// ignored, and so is everything while discarding.
    pub fn add_uncompressed(&mut self, protocol: Protocol, payload: &[u8]) {
        if self.failed || !compresses(protocol) {
            return;
        }
        self.sequence = self.sequence.wrapping_add(1);
        let bytes = history_bytes(protocol, payload);
        // Stored blocks of at most 65535 bytes, fed through the inflater.
        let mut stored = Vec::with_capacity(bytes.len() + 5 * (bytes.len() / 0xffff + 1));
        for chunk in bytes.chunks(0xffff) {
            let len = chunk.len() as u16;
            stored.push(0x00);
            stored.extend_from_slice(&len.to_le_bytes());
            stored.extend_from_slice(&(!len).to_le_bytes());
            stored.extend_from_slice(chunk);
        }
        match self.inflate(&stored) {
            Ok(out) if out == bytes => {}
            Ok(_) => {
                let _ = self.fail(CcpError::Inflate("history update mismatch"));
            }
            Err(error) => {
                let _ = self.fail(error);
            }
        }
    }

    fn inflate(&mut self, input: &[u8]) -> Result<Vec<u8>, CcpError> {
        let mut out = vec![0u8; (input.len() * 4 + 256).min(MAX_DATAGRAM + 1)];
        let mut consumed = 0;
        let mut written = 0;
        loop {
            let result = miniz_oxide::inflate::stream::inflate(
                &mut self.state,
                &input[consumed..],
                &mut out[written..],
                MZFlush::None,
            );
            consumed += result.bytes_consumed;
            written += result.bytes_written;
            match result.status {
                Ok(MZStatus::Ok) | Err(MZError::Buf) => {}
                Ok(MZStatus::StreamEnd) => return Err(CcpError::Inflate("final block")),
                Ok(MZStatus::NeedDict) => return Err(CcpError::Inflate("dictionary needed")),
                Err(_) => return Err(CcpError::Inflate("invalid deflate data")),
            }
            if written > MAX_DATAGRAM {
                return Err(CcpError::TooLong {
                    limit: MAX_DATAGRAM,
                });
            }
            if written == out.len() {
                let grown = (out.len() * 2).min(MAX_DATAGRAM + 1);
                out.resize(grown, 0);
                continue;
            }
            if consumed == input.len() {
                break;
            }
            if result.bytes_consumed == 0 && result.bytes_written == 0 {
                return Err(CcpError::Inflate("no progress"));
            }
        }
        out.truncate(written);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_matches_linux() {
        let mut compressor = DeflateCompressor::new(15);
        let payload = vec![0x45; 200];
        let info = compressor.compress(Protocol::Ipv4, &payload).unwrap();
        assert_eq!(&info[..2], &[0, 0]);
        // No zlib header, no sync trailer, ends on a byte boundary after an empty stored
        // block's header: decompressing with the trailer put back gives 0x21 + payload.
        let mut plain = Vec::new();
        let mut state = InflateState::new_boxed(DataFormat::Raw);
        let mut input = info[2..].to_vec();
        input.extend_from_slice(&SYNC_TRAILER);
        let mut out = vec![0u8; 1000];
        let result =
            miniz_oxide::inflate::stream::inflate(&mut state, &input, &mut out, MZFlush::None);
        plain.extend_from_slice(&out[..result.bytes_written]);
        assert_eq!(plain[0], 0x21);
        assert_eq!(&plain[1..], &payload[..]);
        assert_eq!(compressor.sequence(), 1);
        // A two-byte protocol is compressed as two bytes.
        let second = compressor
            .compress(Protocol::Unknown(0x0281), &payload)
            .unwrap();
        assert_eq!(&second[..2], &[0, 1]);
    }

    #[test]
    fn round_trip_with_incompressible_packets() {
        let mut tx = DeflateCompressor::new(15);
        let mut rx = DeflateDecompressor::new();
        let mut noise = 0x1234_5678u32;
        for i in 0..200usize {
            let payload: Vec<u8> = if i % 3 == 0 {
                (0..300)
                    .map(|_| {
                        noise ^= noise << 13;
                        noise ^= noise >> 17;
                        noise ^= noise << 5;
                        noise as u8
                    })
                    .collect()
            } else {
                format!("packet {i} packet {i} packet {i} hello hello").into_bytes()
            };
            let protocol = if i % 5 == 0 {
                Protocol::Ipv6
            } else {
                Protocol::Ipv4
            };
            match tx.compress(protocol, &payload) {
                Some(info) => assert_eq!(rx.decompress(&info).unwrap(), (protocol, payload)),
                None => rx.add_uncompressed(protocol, &payload),
            }
        }
        assert_eq!(tx.sequence(), rx.sequence());
    }

    #[test]
    fn small_windows_restart_history() {
        let mut tx = DeflateCompressor::new(9);
        let mut rx = DeflateDecompressor::new();
        for i in 0..100usize {
            let payload = vec![(i % 7) as u8; 50 + (i * 37) % 700];
            match tx.compress(Protocol::Ipv4, &payload) {
                Some(info) => assert_eq!(rx.decompress(&info).unwrap().1, payload),
                None => rx.add_uncompressed(Protocol::Ipv4, &payload),
            }
        }
    }

    #[test]
    fn gaps_and_garbage_stop_until_reset() {
        let mut tx = DeflateCompressor::new(15);
        let mut rx = DeflateDecompressor::new();
        let a = tx.compress(Protocol::Ipv4, &[7; 100]).unwrap();
        let _lost = tx.compress(Protocol::Ipv4, &[8; 100]).unwrap();
        let c = tx.compress(Protocol::Ipv4, &[9; 100]).unwrap();
        rx.decompress(&a).unwrap();
        assert_eq!(
            rx.decompress(&c),
            Err(CcpError::SequenceMismatch {
                got: 2,
                expected: 1
            })
        );
        assert_eq!(rx.decompress(&c), Err(CcpError::Discarding));
        tx.reset();
        rx.reset();
        let d = tx.compress(Protocol::Ipv4, &[9; 100]).unwrap();
        assert_eq!(rx.decompress(&d).unwrap().1, vec![9; 100]);
        // Garbage.
        let mut rx = DeflateDecompressor::new();
        assert!(rx.decompress(&[0, 0, 0xff, 0xff, 0xff]).is_err());
        assert!(rx.is_discarding());
    }
}
