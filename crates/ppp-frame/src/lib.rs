//! RFC 1662 PPP framing: everything a PPP link needs between bytes on a wire and
//! `(protocol, payload)`.
//!
//! - [`AsyncEncoder`] / [`AsyncDecoder`]: async HDLC-like framing (RFC 1662 §4) for serial lines and
//!   modems, with flag sharing, address/control and protocol field compression, transmit and receive
//!   ACCMs (plus an extended 256-bit escape map like pppd's `escape` option), FCS-16 or FCS-32.
//!   The decoder takes chunks of any size and never fails: damaged frames are counted in
//!   [`DecoderStats`] and dropped, and memory stays bounded by the configured maximum frame size.
//!   On x86-64 both run SIMD kernels chosen at run time (the encoder escapes a payload and folds
//!   its FCS in one pass; the decoder unescapes a block at a time); [`Kernels`] selects the
//!   portable or the byte-at-a-time reference code instead, which give the same results.
//! - [`sync`]: the framing PPPoE uses (protocol field and payload, no flags, no FCS).
//! - [`fcs`]: FCS-16 and FCS-32, with carry-less-multiply fast paths chosen at run time.
//! - [`Protocol`]: PPP protocol numbers as an open enum.
//! - [`pcap`]: a pcap writer so any session can be opened in Wireshark.
//!
//! Nothing here does I/O or reads a clock; nothing panics on any input.
//!
//! # Example
//!
//! ```
//! use ppp_frame::{AsyncDecoder, AsyncEncoder, DecoderConfig, EncoderConfig, Protocol};
//!
//! // Before LCP has negotiated anything both sides use the defaults: ACCM 0xFFFFFFFF, FCS-16.
//! let mut encoder = AsyncEncoder::new(EncoderConfig::default());
//! let mut wire = Vec::new();
//! encoder.encode(Protocol::Ipv4, b"\x45\x00\x00\x14 an IPv4 datagram", &mut wire);
//! encoder.encode(Protocol::Lcp, &[9, 1, 0, 8, 0, 0, 0, 0], &mut wire);
//!
//! // The decoder accepts the stream in chunks of any size.
//! let mut decoder = AsyncDecoder::new(DecoderConfig::default());
//! let mut frames = Vec::new();
//! for chunk in wire.chunks(5) {
//!     let mut input = chunk;
//!     while let Some(result) = decoder.decode(&mut input) {
//!         let frame = result.expect("an undamaged stream");
//!         frames.push((frame.protocol, frame.payload.to_vec()));
//!     }
//! }
//! assert_eq!(frames[0].0, Protocol::Ipv4);
//! assert_eq!(frames[1], (Protocol::Lcp, vec![9, 1, 0, 8, 0, 0, 0, 0]));
//! assert_eq!(decoder.stats().frames, 2);
//! ```
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod async_hdlc;
mod error;
pub mod fcs;
pub mod pcap;
mod protocol;
pub mod scan;
mod simd;
pub mod sync;

pub use async_hdlc::{
    ALLSTATIONS, AsyncDecoder, AsyncEncoder, DecoderConfig, DecoderStats, ESCAPE, EncoderConfig,
    FLAG, FcsKind, Frame, Kernels, UI,
};
pub use error::FrameError;
pub use protocol::Protocol;
pub use scan::ByteSet;
