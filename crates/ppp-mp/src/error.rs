//! The crate's error type.

use crate::MemberId;
use crate::header::SequenceFormat;

/// Everything that can go wrong in this crate: a malformed MP header, a packet the bundle cannot
/// carry, a member or a bundle that is not there.
///
/// All variants are small and `Copy`; none of them is a reason to take a member link down by
/// itself. Receive-side errors are also counted in the bundle's statistics, so a caller may
/// ignore them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MpError {
    /// The MP information field is shorter than the header.
    #[error("MP header truncated: {len} bytes, {format} header needs {required}")]
    Truncated {
        /// Bytes present.
        len: usize,
        /// Bytes the header needs.
        required: usize,
        /// The header format expected.
        format: SequenceFormat,
    },
    /// Reserved header bits are set (they must be zero when the Multi-Class extension, RFC 2686,
    /// is not negotiated, which this crate never does).
    #[error("MP header has reserved bits set (first byte {first_byte:#04x})")]
    ReservedBitsSet {
        /// The first header byte.
        first_byte: u8,
    },
    /// A caller buffer is too small for what is to be written into it.
    #[error("buffer too small: {required} bytes needed, {available} available")]
    BufferTooSmall {
        /// Bytes needed.
        required: usize,
        /// Bytes available.
        available: usize,
    },
    /// A sequence number does not fit the header format.
    #[error("sequence number {sequence:#x} does not fit the {format} header")]
    SequenceOutOfRange {
        /// The sequence number.
        sequence: u32,
        /// The header format.
        format: SequenceFormat,
    },
    /// A packet to send has a longer information field than the peer's MRRU.
    #[error("packet of {len} bytes exceeds the peer's MRRU of {mrru}")]
    PacketTooLong {
        /// Length of the information field.
        len: usize,
        /// The peer's MRRU.
        mrru: u16,
    },
    /// A received fragment is longer than any fragment of a packet within our MRRU can be.
    #[error("fragment of {len} bytes is longer than the largest reassembled packet ({limit})")]
    FragmentTooLong {
        /// Length of the fragment's data.
        len: usize,
        /// The largest reassembled packet, protocol field included.
        limit: usize,
    },
    /// Not a valid PPP protocol number (the low byte must be odd, the high byte even).
    #[error("invalid PPP protocol number {0:#06x}")]
    InvalidProtocol(u16),
    /// The bundle has no member link to send on.
    #[error("the bundle has no member links")]
    NoMembers,
    /// The bundle went down when its last member left; it takes no new members.
    #[error("the bundle is down")]
    BundleDown,
    /// No member with this id belongs to the bundle.
    #[error("{0} is not a member of the bundle")]
    UnknownMember(MemberId),
    /// The bundle already has as many members as it may have.
    #[error("too many member links (at most {max})")]
    TooManyMembers {
        /// The limit.
        max: usize,
    },
    /// A member's MTU leaves no room for data after the MP header.
    #[error("member MTU {mtu} too small: at least {required} needed")]
    MtuTooSmall {
        /// The MTU given.
        mtu: u16,
        /// The smallest usable MTU.
        required: u16,
    },
    /// The transmit queue cannot take the fragments of another packet until the caller drains
    /// it with `poll_transmit`.
    #[error(
        "transmit queue full: {queued} fragments queued, {needed} more do not fit under {limit}"
    )]
    TransmitQueueFull {
        /// Fragments queued now.
        queued: usize,
        /// Fragments the packet needs.
        needed: usize,
        /// The queue's limit.
        limit: usize,
    },
    /// An endpoint discriminator whose address length does not fit its class (RFC 1990
    /// §5.1.3).
    #[error("endpoint discriminator class {class} with a {len}-byte address")]
    InvalidEndpointDiscriminator {
        /// The class byte.
        class: u8,
        /// The address length.
        len: usize,
    },
    /// The bundle registry is full.
    #[error("too many bundles (at most {max})")]
    TooManyBundles {
        /// The limit.
        max: usize,
    },
}
