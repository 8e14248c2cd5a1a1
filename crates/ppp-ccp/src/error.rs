//! The crate's error type.

/// Why a compressed (protocol 0x00FD) packet could not be turned back into a datagram, or why
/// the transforms could not be built.
///
/// None of these is a reason to panic or to drop the link by itself: [`CcpError::is_fatal`]
/// says when the link must go down, [`CcpError::needs_reset_request`] when the peer's
/// compressor must be reset with a CCP Reset-Request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CcpError {
    /// The information field is too short for the header and a protocol field.
    #[error("compressed packet too short: {len} bytes")]
    Truncated {
        /// Length of the information field.
        len: usize,
    },
    /// An MPPE packet whose encrypted bit (D) is clear.
    #[error("MPPE packet without the encrypted bit (header {header:#06x})")]
    NotEncrypted {
        /// The 2-byte MPPE header.
        header: u16,
    },
    /// An MPPC-compressed packet (bit C): MPPC is never negotiated here.
    #[error("MPPC-compressed packet (header {header:#06x}): MPPC is not supported")]
    MppcNotSupported {
        /// The 2-byte MPPE header.
        header: u16,
    },
    /// The flushed bit (A) is clear where it is mandatory (stateless mode, stateful flag
    /// packets).
    #[error("MPPE packet without the mandatory flushed bit (coherency count {count:#05x})")]
    FlushedBitMissing {
        /// The packet's coherency count.
        count: u16,
    },
    /// A late or duplicated packet (stateless mode): discarded.
    #[error("late or duplicated MPPE packet (coherency count {count:#05x}, last {last:#05x})")]
    StalePacket {
        /// The packet's coherency count.
        count: u16,
        /// The last coherency count accepted.
        last: u16,
    },
    /// Packets were lost in stateful mode: discard until a flushed packet resynchronises.
    #[error("MPPE coherency count {count:#05x}, expected {expected:#05x}: packets lost")]
    CoherencyLost {
        /// The packet's coherency count.
        count: u16,
        /// The coherency count expected.
        expected: u16,
    },
    /// Packets are being discarded until the peer resets its compressor (stateful MPPE: a
    /// flushed packet; Deflate: a Reset-Ack).
    #[error("discarding until the peer resynchronises")]
    Discarding,
    /// The packet decrypted into something that is not a datagram (keys out of step: a
    /// key change the decryptor never saw).
    #[error("MPPE packet (coherency count {count:#05x}) did not decrypt to a datagram")]
    Undecryptable {
        /// The packet's coherency count.
        count: u16,
    },
    /// A Deflate packet with an unexpected sequence number.
    #[error("Deflate sequence number {got}, expected {expected}")]
    SequenceMismatch {
        /// The packet's sequence number.
        got: u16,
        /// The sequence number expected.
        expected: u16,
    },
    /// The Deflate stream does not decode.
    #[error("Deflate stream error: {0}")]
    Inflate(&'static str),
    /// The datagram decompresses to more than the limit.
    #[error("decompressed packet longer than {limit} bytes")]
    TooLong {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The datagram has no (complete) protocol field.
    #[error("decompressed packet has no protocol field")]
    MissingProtocol,
    /// Too many malformed MPPE packets: the link must go down (Linux `DECOMP_FATALERROR`).
    #[error("too many MPPE errors")]
    TooManyErrors,
    /// MPPE was negotiated but no keys were given.
    #[error("MPPE negotiated but no MPPE keys are available")]
    MissingKeys,
    /// CCP is not opened, or negotiated nothing for this direction.
    #[error("no compression negotiated for this direction")]
    NotNegotiated,
}

impl CcpError {
    /// Whether the peer's compressor must be reset: send a CCP Reset-Request (unless one is
    /// already awaiting its Reset-Ack).
    pub fn needs_reset_request(&self) -> bool {
        matches!(
            self,
            CcpError::CoherencyLost { .. }
                | CcpError::Discarding
                | CcpError::Undecryptable { .. }
                | CcpError::SequenceMismatch { .. }
                | CcpError::Inflate(_)
                | CcpError::TooLong { .. }
                | CcpError::MissingProtocol
        )
    }

    /// Whether the link must go down (pppd: "Too many MPPE errors, closing LCP").
    pub fn is_fatal(&self) -> bool {
        matches!(self, CcpError::TooManyErrors | CcpError::MissingKeys)
    }
}
