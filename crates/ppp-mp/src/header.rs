//! The MP header (RFC 1990 §3) in its two formats, and wrap-safe sequence arithmetic.
//!
//! A Multilink fragment travels as a PPP frame of protocol 0x003D whose information field is
//! the MP header followed by the fragment data. The long format (the default) carries a 24-bit
//! sequence number, the short format (negotiated with the Short Sequence Number Header Format
//! option, LCP option 18) a 12-bit one:
//!
//! ```text
//! long:   |B|E|0|0|0|0|0|0|  sequence number (23..16)  |  (15..8)  |  (7..0)  |
//! short:  |B|E|0|0| seq (11..8) |  sequence number (7..0)  |
//! ```
//!
//! B marks the first fragment of a packet, E the last; a packet sent whole has both. The bits
//! shown as 0 are reserved (the Multi-Class extension of RFC 2686 gives them a meaning, which is
//! never negotiated here), so a header with any of them set is rejected with
//! [`MpError::ReservedBitsSet`]. That keeps parsing and emitting exact inverses: whatever
//! [`MpHeader::parse`] accepts, [`MpHeader::emit`] writes back byte for byte.
//!
//! Nothing in this module panics, whatever the input.
//!
//! ```
//! use ppp_mp::header::{MpHeader, SequenceFormat};
//!
//! let bytes = [0x80, 0x00, 0x01, 0x23, 0xAA];
//! let (header, data) = MpHeader::parse(SequenceFormat::Long, &bytes)?;
//! assert!(header.begin && !header.end);
//! assert_eq!(header.sequence, 0x000123);
//! assert_eq!(data, &[0xAA]);
//!
//! let mut out = [0u8; 4];
//! header.emit(&mut out)?;
//! assert_eq!(out, bytes[..4]);
//! # Ok::<(), ppp_mp::MpError>(())
//! ```

use core::fmt;

use crate::MpError;

/// The MP header format, which fixes the size of the sequence number space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SequenceFormat {
    /// The long format: 4 header bytes, 24-bit sequence numbers (the default).
    #[default]
    Long,
    /// The short format (Short Sequence Number Header Format, LCP option 18): 2 header bytes,
    /// 12-bit sequence numbers.
    Short,
}

impl SequenceFormat {
    /// Bits in a sequence number: 24 or 12.
    pub const fn bits(self) -> u32 {
        match self {
            SequenceFormat::Long => 24,
            SequenceFormat::Short => 12,
        }
    }

    /// The largest sequence number: `0xFFFFFF` or `0xFFF`.
    pub const fn max_sequence(self) -> u32 {
        (1 << self.bits()) - 1
    }

    /// Bytes in the header: 4 or 2.
    pub const fn header_len(self) -> usize {
        match self {
            SequenceFormat::Long => 4,
            SequenceFormat::Short => 2,
        }
    }

    /// `sequence + n`, wrapping around the sequence space.
    pub const fn add(self, sequence: u32, n: u32) -> u32 {
        sequence.wrapping_add(n) & self.max_sequence()
    }

    /// The sequence number after `sequence`, wrapping around.
    pub const fn next(self, sequence: u32) -> u32 {
        self.add(sequence, 1)
    }

    /// The sequence number before `sequence`, wrapping around.
    pub const fn previous(self, sequence: u32) -> u32 {
        sequence.wrapping_sub(1) & self.max_sequence()
    }

    /// How far `to` is after `from` (negative: before), taking the shorter way around the
    /// sequence space. Numbers exactly half the space apart count as `to` before `from`.
    pub const fn distance(self, from: u32, to: u32) -> i32 {
        let shift = 32 - self.bits();
        let difference = to.wrapping_sub(from) << shift;
        (difference as i32) >> shift
    }

    /// Whether `a` comes before `b` (wrap-safe).
    pub const fn is_before(self, a: u32, b: u32) -> bool {
        self.distance(a, b) > 0
    }
}

impl fmt::Display for SequenceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SequenceFormat::Long => "long (24-bit)",
            SequenceFormat::Short => "short (12-bit)",
        })
    }
}

/// Flag bit: the first fragment of a packet.
const BEGIN: u8 = 0x80;
/// Flag bit: the last fragment of a packet.
const END: u8 = 0x40;

/// An MP header: the owned representation, parsed from and emitted to bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MpHeader {
    /// The header format.
    pub format: SequenceFormat,
    /// The (B)eginning bit: the first fragment of a packet.
    pub begin: bool,
    /// The (E)nding bit: the last fragment of a packet.
    pub end: bool,
    /// The sequence number (24 or 12 bits).
    pub sequence: u32,
}

impl MpHeader {
    /// Parses the header at the start of an MP information field; returns it and the fragment
    /// data after it.
    ///
    /// # Errors
    ///
    /// [`MpError::Truncated`] when `bytes` is shorter than the header,
    /// [`MpError::ReservedBitsSet`] when a reserved bit is set.
    pub fn parse(format: SequenceFormat, bytes: &[u8]) -> Result<(MpHeader, &[u8]), MpError> {
        let required = format.header_len();
        if bytes.len() < required {
            return Err(MpError::Truncated {
                len: bytes.len(),
                required,
                format,
            });
        }
        let first = bytes[0];
        let (reserved, sequence) = match format {
            SequenceFormat::Long => (
                first & 0x3F,
                u32::from(bytes[1]) << 16 | u32::from(bytes[2]) << 8 | u32::from(bytes[3]),
            ),
            SequenceFormat::Short => (
                first & 0x30,
                u32::from(first & 0x0F) << 8 | u32::from(bytes[1]),
            ),
        };
        if reserved != 0 {
            return Err(MpError::ReservedBitsSet { first_byte: first });
        }
        let header = MpHeader {
            format,
            begin: first & BEGIN != 0,
            end: first & END != 0,
            sequence,
        };
        Ok((header, &bytes[required..]))
    }

    /// Bytes [`emit`](Self::emit) writes: 4 or 2.
    pub const fn buffer_len(&self) -> usize {
        self.format.header_len()
    }

    /// Writes the header to the start of `buffer`; returns the bytes written.
    ///
    /// # Errors
    ///
    /// [`MpError::BufferTooSmall`] when `buffer` is shorter than [`buffer_len`](Self::buffer_len),
    /// [`MpError::SequenceOutOfRange`] when the sequence number does not fit the format.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, MpError> {
        let len = self.buffer_len();
        if buffer.len() < len {
            return Err(MpError::BufferTooSmall {
                required: len,
                available: buffer.len(),
            });
        }
        if self.sequence > self.format.max_sequence() {
            return Err(MpError::SequenceOutOfRange {
                sequence: self.sequence,
                format: self.format,
            });
        }
        buffer[..len].copy_from_slice(&self.encode()[..len]);
        Ok(len)
    }

    /// The header bytes (the first [`buffer_len`](Self::buffer_len) of them), with the
    /// sequence number reduced into the format's space.
    pub(crate) fn encode(&self) -> [u8; 4] {
        let flags = if self.begin { BEGIN } else { 0 } | if self.end { END } else { 0 };
        let sequence = self.sequence & self.format.max_sequence();
        let [_, high, middle, low] = sequence.to_be_bytes();
        match self.format {
            SequenceFormat::Long => [flags, high, middle, low],
            SequenceFormat::Short => [flags | middle, low, 0, 0],
        }
    }

    /// The header as bytes, in a small array (only the first [`buffer_len`](Self::buffer_len)
    /// bytes are meaningful).
    ///
    /// # Errors
    ///
    /// [`MpError::SequenceOutOfRange`] when the sequence number does not fit the format.
    pub fn to_bytes(&self) -> Result<([u8; 4], usize), MpError> {
        let mut bytes = [0u8; 4];
        let len = self.emit(&mut bytes)?;
        Ok((bytes, len))
    }
}

/// A pppd-style one-line summary of a fragment, for logs: `[MP seq=0x000123 B E len=700]`.
#[derive(Clone, Copy, Debug)]
pub struct FragmentSummary {
    /// The fragment's header.
    pub header: MpHeader,
    /// Bytes of fragment data after the header.
    pub data_len: usize,
}

impl fmt::Display for FragmentSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.header;
        match h.format {
            SequenceFormat::Long => write!(f, "[MP seq={:#08x}", h.sequence)?,
            SequenceFormat::Short => write!(f, "[MP sseq={:#05x}", h.sequence)?,
        }
        if h.begin {
            f.write_str(" B")?;
        }
        if h.end {
            f.write_str(" E")?;
        }
        write!(f, " len={}]", self.data_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frames of RFC 1990 §3's figures (address, control, PID 0x003D, MP header, data),
    /// filled in with concrete values.
    #[test]
    fn long_format_golden_bytes() {
        // B set, E clear, sequence 0x012345, one data byte.
        let frame = [0xFF, 0x03, 0x00, 0x3D, 0x80, 0x01, 0x23, 0x45, 0x21];
        assert_eq!(&frame[2..4], &0x003Du16.to_be_bytes());
        let (header, data) = MpHeader::parse(SequenceFormat::Long, &frame[4..]).unwrap();
        assert_eq!(
            header,
            MpHeader {
                format: SequenceFormat::Long,
                begin: true,
                end: false,
                sequence: 0x012345,
            }
        );
        assert_eq!(data, &[0x21]);
        let (bytes, len) = header.to_bytes().unwrap();
        assert_eq!(&bytes[..len], &frame[4..8]);

        // B and E (a whole packet), largest sequence number.
        let whole = MpHeader {
            format: SequenceFormat::Long,
            begin: true,
            end: true,
            sequence: 0xFFFFFF,
        };
        let (bytes, len) = whole.to_bytes().unwrap();
        assert_eq!(&bytes[..len], &[0xC0, 0xFF, 0xFF, 0xFF]);
        // E only, sequence 0.
        let last = MpHeader {
            format: SequenceFormat::Long,
            begin: false,
            end: true,
            sequence: 0,
        };
        assert_eq!(last.to_bytes().unwrap(), ([0x40, 0, 0, 0], 4));
    }

    #[test]
    fn short_format_golden_bytes() {
        // B and E set, 12-bit sequence 0xABC: |1|1|0|0|1010| 10111100|
        let frame = [0xFF, 0x03, 0x00, 0x3D, 0xCA, 0xBC, 0x45, 0x00];
        let (header, data) = MpHeader::parse(SequenceFormat::Short, &frame[4..]).unwrap();
        assert_eq!(
            header,
            MpHeader {
                format: SequenceFormat::Short,
                begin: true,
                end: true,
                sequence: 0xABC,
            }
        );
        assert_eq!(data, &[0x45, 0x00]);
        let mut out = [0u8; 2];
        assert_eq!(header.emit(&mut out), Ok(2));
        assert_eq!(out, [0xCA, 0xBC]);
        // Neither bit (a middle fragment), sequence 0x001.
        let middle = MpHeader {
            format: SequenceFormat::Short,
            begin: false,
            end: false,
            sequence: 1,
        };
        assert_eq!(middle.to_bytes().unwrap(), ([0x00, 0x01, 0, 0], 2));
    }

    #[test]
    fn reserved_bits_and_truncation_are_errors() {
        for first in [0x01u8, 0x20, 0x3F] {
            assert_eq!(
                MpHeader::parse(SequenceFormat::Long, &[0x80 | first, 0, 0, 0]),
                Err(MpError::ReservedBitsSet {
                    first_byte: 0x80 | first
                })
            );
        }
        assert_eq!(
            MpHeader::parse(SequenceFormat::Short, &[0x10, 0]),
            Err(MpError::ReservedBitsSet { first_byte: 0x10 })
        );
        // The short format's low nibble is sequence, not reserved.
        assert!(MpHeader::parse(SequenceFormat::Short, &[0x0F, 0]).is_ok());
        assert_eq!(
            MpHeader::parse(SequenceFormat::Long, &[0x80, 0, 0]),
            Err(MpError::Truncated {
                len: 3,
                required: 4,
                format: SequenceFormat::Long
            })
        );
        assert!(matches!(
            MpHeader::parse(SequenceFormat::Short, &[]),
            Err(MpError::Truncated { required: 2, .. })
        ));
    }

    #[test]
    fn emit_checks_buffer_and_range() {
        let header = MpHeader {
            format: SequenceFormat::Short,
            begin: false,
            end: false,
            sequence: 0x1000,
        };
        assert_eq!(
            header.emit(&mut [0u8; 2]),
            Err(MpError::SequenceOutOfRange {
                sequence: 0x1000,
                format: SequenceFormat::Short
            })
        );
        let header = MpHeader {
            sequence: 5,
            ..header
        };
        assert_eq!(
            header.emit(&mut [0u8; 1]),
            Err(MpError::BufferTooSmall {
                required: 2,
                available: 1
            })
        );
    }

    #[test]
    fn every_short_header_round_trips() {
        for first in 0..=255u8 {
            for second in [0u8, 1, 0x7F, 0xFF] {
                let bytes = [first, second];
                if let Ok((header, rest)) = MpHeader::parse(SequenceFormat::Short, &bytes) {
                    assert!(rest.is_empty());
                    let mut out = [0u8; 2];
                    header.emit(&mut out).unwrap();
                    assert_eq!(out, bytes);
                } else {
                    assert_ne!(first & 0x30, 0);
                }
            }
        }
    }

    #[test]
    fn wrap_around_arithmetic_in_both_formats() {
        let long = SequenceFormat::Long;
        assert_eq!(long.next(0xFFFFFF), 0);
        assert_eq!(long.previous(0), 0xFFFFFF);
        assert_eq!(long.add(0xFFFFFE, 5), 3);
        assert_eq!(long.distance(0xFFFFFE, 3), 5);
        assert_eq!(long.distance(3, 0xFFFFFE), -5);
        assert!(long.is_before(0xFFFFFF, 0));
        assert!(!long.is_before(0, 0xFFFFFF));
        assert_eq!(long.distance(0, 0x7FFFFF), 0x7FFFFF);
        assert_eq!(long.distance(0, 0x800000), -0x800000);

        let short = SequenceFormat::Short;
        assert_eq!(short.next(0xFFF), 0);
        assert_eq!(short.previous(0), 0xFFF);
        assert_eq!(short.add(0xFF0, 0x20), 0x010);
        assert_eq!(short.distance(0xFF0, 0x010), 0x20);
        assert_eq!(short.distance(0x010, 0xFF0), -0x20);
        assert!(short.is_before(0xFFF, 0));
        assert_eq!(short.distance(0, 0x7FF), 0x7FF);
        assert_eq!(short.distance(0, 0x800), -0x800);
        // Numbers outside the space are reduced into it.
        assert_eq!(short.distance(0x1FFF, 0x1000), 1);
    }

    #[test]
    fn summary_reads_like_pppd() {
        let header = MpHeader {
            format: SequenceFormat::Long,
            begin: true,
            end: true,
            sequence: 0x123,
        };
        let summary = FragmentSummary {
            header,
            data_len: 700,
        };
        assert_eq!(summary.to_string(), "[MP seq=0x000123 B E len=700]");
        let short = FragmentSummary {
            header: MpHeader {
                format: SequenceFormat::Short,
                begin: false,
                end: true,
                sequence: 0xA,
            },
            data_len: 3,
        };
        assert_eq!(short.to_string(), "[MP sseq=0x00a E len=3]");
    }
}
