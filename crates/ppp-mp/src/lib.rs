//! The PPP Multilink Protocol (RFC 1990), sans-IO. (Being written.)
#![forbid(unsafe_code)]
#![deny(missing_docs)]
