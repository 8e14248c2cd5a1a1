//! The crate's error type.

/// Everything that can go wrong in this crate: decoding a PAP or CHAP packet, building a machine
/// for a method it does not implement, or reading a pppd secrets file.
///
/// Decoding errors never reach the link: the machines log the packet and drop it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Fewer than the 4 header bytes (Code, Identifier, Length).
    #[error("packet shorter than its 4-byte header ({len} bytes)")]
    Truncated {
        /// Bytes available.
        len: usize,
    },
    /// The Length field is below 4 or larger than the bytes available.
    #[error("length field {length} does not fit the {available} bytes received")]
    BadLength {
        /// The Length field.
        length: u16,
        /// Bytes available.
        available: usize,
    },
    /// A length byte inside the packet (Peer-ID, Passwd, Msg, Value-Size) runs past its end.
    #[error("{field} runs past the end of the packet")]
    FieldOverrun {
        /// The field whose length byte is wrong.
        field: &'static str,
    },
    /// A field is longer than its one-byte length can say (when emitting).
    #[error("{field} is {len} bytes, more than 255")]
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// The whole packet would be longer than 65535 bytes (when emitting).
    #[error("packet of {len} bytes does not fit a 16-bit length")]
    PacketTooLong {
        /// Its length.
        len: usize,
    },
    /// [`provide_secret`](crate::Authenticator::provide_secret) was called with no lookup
    /// outstanding.
    #[error("no secret lookup is outstanding")]
    NoSecretRequest,
    /// [`provide_secret`](crate::Authenticator::provide_secret) answered an earlier request
    /// (its token is not the outstanding request's).
    #[error("the answer is for an earlier secret lookup")]
    StaleSecretAnswer,
    /// [`provide_verdict`](crate::Authenticator::provide_verdict) was called with no
    /// verification outstanding.
    #[error("no verification is outstanding")]
    NoVerifyRequest,
    /// [`provide_verdict`](crate::Authenticator::provide_verdict) answered an earlier request.
    #[error("the verdict is for an earlier verification")]
    StaleVerdict,
    /// A line of a pppd secrets file could not be read.
    #[error("secrets file line {line}: {problem}")]
    SecretsSyntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: &'static str,
    },
}
