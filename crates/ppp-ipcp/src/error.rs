//! The crate's error type.

/// Why an option or an option list could not be decoded.
///
/// Small and `Copy`: it says where decoding stopped and why, never carries the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum IpcpError {
    /// An option header (type and length) is cut short by the end of the list.
    #[error(
        "option list truncated at offset {offset}: {remaining} byte(s) left, an option needs at least 2"
    )]
    TruncatedHeader {
        /// Byte offset of the option inside the list.
        offset: usize,
        /// How many bytes were left.
        remaining: usize,
    },
    /// An option's length field is below 2 or runs past the end of the list.
    #[error(
        "option type {kind:#04x} at offset {offset} has length {length} but {remaining} byte(s) are left"
    )]
    BadOptionLength {
        /// Byte offset of the option inside the list.
        offset: usize,
        /// The option type.
        kind: u8,
        /// The length field.
        length: u8,
        /// Bytes left in the list from `offset`.
        remaining: usize,
    },
    /// A known option carries a data field of the wrong size.
    #[error("option type {kind:#04x} has {actual} data byte(s), expected {expected}")]
    WrongDataLength {
        /// The option type.
        kind: u8,
        /// Data bytes required (the minimum, for options with a variable tail).
        expected: usize,
        /// Data bytes present.
        actual: usize,
    },
}
