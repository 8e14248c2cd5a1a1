//! The crate's error type.

use crate::attribute::AttributeType;

/// Everything that can go wrong in this crate: decoding a packet or an attribute, building one
/// that does not fit, reading a `Mikrotik-Rate-Limit`, or a spool record.
///
/// Bad input never panics and never allocates more than the input: it gets one of these.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RadiusError {
    /// Fewer than the 20 header bytes.
    #[error("packet shorter than its 20-byte header ({len} bytes)")]
    Truncated {
        /// Bytes available.
        len: usize,
    },
    /// The Length field is below 20, above 4096, or larger than the bytes received.
    #[error("length field {length} does not fit the {available} bytes received")]
    BadLength {
        /// The Length field.
        length: u16,
        /// Bytes available.
        available: usize,
    },
    /// An attribute's length byte is below 2 or runs past the end of the packet.
    #[error("attribute at offset {offset} runs past the end of the packet")]
    AttributeOverrun {
        /// Where the attribute starts, from the start of the attribute list.
        offset: usize,
    },
    /// The packet would be longer than RADIUS allows (4096 bytes).
    #[error("packet of {len} bytes is longer than 4096")]
    PacketTooLong {
        /// Its length.
        len: usize,
    },
    /// An attribute value is longer than 253 bytes (when emitting).
    #[error("{kind} value of {len} bytes is longer than 253")]
    AttributeTooLong {
        /// The attribute.
        kind: AttributeType,
        /// The value's length.
        len: usize,
    },
    /// An attribute's value does not have the shape its type requires.
    #[error("{kind}: {problem}")]
    BadValue {
        /// The attribute.
        kind: AttributeType,
        /// What is wrong.
        problem: &'static str,
    },
    /// A vendor attribute's value does not have the shape its type requires.
    #[error("vendor {vendor} attribute {kind}: {problem}")]
    BadVendorValue {
        /// The vendor (311 Microsoft, 14988 MikroTik).
        vendor: u32,
        /// The vendor's attribute type.
        kind: u8,
        /// What is wrong.
        problem: &'static str,
    },
    /// A `Mikrotik-Rate-Limit` string is not in RouterOS syntax.
    #[error("rate limit {problem}")]
    RateLimitSyntax {
        /// What is wrong.
        problem: &'static str,
    },
    /// A stored accounting record could not be read back.
    #[error("spooled record: {problem}")]
    BadRecord {
        /// What is wrong.
        problem: &'static str,
    },
}
