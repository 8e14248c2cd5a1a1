//! The error type of this crate.

use thiserror::Error;

/// Why a frame could not be decoded or encoded.
///
/// Decoding errors are informational: the decoder has already counted and dropped the frame, and
/// goes on with the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame's FCS did not check.
    #[error("bad FCS")]
    BadFcs,
    /// The frame was shorter than a protocol field plus FCS.
    #[error("runt frame of {len} bytes")]
    Runt {
        /// Bytes between the flags, after unescaping.
        len: usize,
    },
    /// The frame grew past the configured maximum and was discarded.
    #[error("frame longer than the maximum of {max} bytes")]
    TooLong {
        /// The configured maximum, in unescaped bytes between the flags.
        max: usize,
    },
    /// The sender aborted the frame with the 0x7D 0x7E sequence.
    #[error("frame aborted by the sender")]
    Aborted,
    /// The protocol field is not a valid PPP protocol number.
    #[error("invalid protocol field")]
    InvalidProtocol,
    /// The address/control field is present but not 0xFF 0x03.
    #[error("invalid address/control field {address:#04x} {control:#04x}")]
    InvalidAddressControl {
        /// The address byte received.
        address: u8,
        /// The control byte received.
        control: u8,
    },
    /// The frame was empty or had no protocol field.
    #[error("frame has no protocol field")]
    Truncated,
    /// The caller's buffer is too small for the encoded frame.
    #[error("buffer too small: {required} bytes required")]
    BufferTooSmall {
        /// The size the buffer must have.
        required: usize,
    },
}
