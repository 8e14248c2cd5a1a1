//! The crate's error type.

/// Why a control packet or an option list could not be decoded.
///
/// Decoding errors never reach the link: the automaton counts the packet and drops it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LcpError {
    /// Fewer than the 4 header bytes (Code, Identifier, Length).
    #[error("control packet shorter than its 4-byte header ({len} bytes)")]
    Truncated {
        /// Bytes available.
        len: usize,
    },
    /// The Length field is below 4 or larger than the bytes available.
    #[error("control packet length field {length} does not fit the {available} bytes received")]
    BadLength {
        /// The Length field.
        length: u16,
        /// Bytes available.
        available: usize,
    },
    /// An option's length byte is below 2 or runs past the end of the list.
    #[error("malformed option at offset {offset}")]
    MalformedOption {
        /// Offset of the bad option in the list.
        offset: usize,
    },
}
