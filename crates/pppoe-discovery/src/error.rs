//! The error type of this crate.

use ppp_frame::FrameError;
use thiserror::Error;

use crate::wire::Code;

/// Why a PPPoE frame could not be parsed or emitted.
///
/// Small and `Copy`: parsing never allocates an error, and every failure names what was expected
/// and what came.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The frame is shorter than the Ethernet and PPPoE headers.
    #[error("frame of {len} bytes is shorter than the {required}-byte headers")]
    Truncated {
        /// Bytes received.
        len: usize,
        /// Bytes the headers need.
        required: usize,
    },
    /// The Ethertype is not the one expected (0x8863 discovery or 0x8864 session).
    #[error("ethertype {found:#06x}, expected {expected:#06x}")]
    WrongEthertype {
        /// The Ethertype received.
        found: u16,
        /// The Ethertype expected.
        expected: u16,
    },
    /// The VER/TYPE byte is not 0x11 (version 1, type 1).
    #[error("PPPoE version/type {0:#04x}, expected 0x11")]
    BadVersionType(u8),
    /// The PPPoE LENGTH field says more than the Ethernet payload holds.
    #[error("PPPoE length {declared} exceeds the {available} bytes of Ethernet payload")]
    LengthMismatch {
        /// The LENGTH field.
        declared: usize,
        /// Bytes after the PPPoE header.
        available: usize,
    },
    /// A tag header or value runs past the end of the PPPoE payload.
    #[error("tag at payload offset {offset} runs past the end of the payload")]
    TagOverrun {
        /// Offset of the tag in the PPPoE payload.
        offset: usize,
    },
    /// A session frame (0x8864) whose code is not 0x00.
    #[error("code {0:?} on a session frame, expected 0x00")]
    WrongCode(Code),
    /// The caller's buffer cannot hold the frame.
    #[error("buffer too small: {required} bytes required")]
    BufferTooSmall {
        /// The size the buffer must have.
        required: usize,
    },
    /// A payload or tag value does not fit its 16-bit length field.
    #[error("{len} bytes do not fit a 16-bit length field")]
    TooLong {
        /// The length that did not fit.
        len: usize,
    },
    /// The PPP frame inside a session frame is malformed.
    #[error("bad PPP frame in session: {0}")]
    Ppp(#[from] FrameError),
}
