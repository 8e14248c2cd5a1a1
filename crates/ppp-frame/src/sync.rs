//! Synchronous framing as PPPoE uses it (RFC 2516 §7): the protocol field and the information
//! field, with no flags, no address/control field, no escaping and no FCS (Ethernet has its own).
//!
//! ```
//! use ppp_frame::{sync, Protocol};
//!
//! let mut frame = Vec::new();
//! sync::encode(Protocol::Ipv4, b"datagram", true, &mut frame);
//! assert_eq!(frame[0], 0x21); // compressed protocol field
//! let decoded = sync::decode(&frame).unwrap();
//! assert_eq!((decoded.protocol, decoded.payload), (Protocol::Ipv4, &b"datagram"[..]));
//! ```

use crate::{Frame, FrameError, Protocol};

/// The protocol field for `protocol`: its bytes and how many of them are used.
///
/// Compressed to one byte when `pfc` is set and the number is below 0x100, except for LCP.
pub fn protocol_field(protocol: Protocol, pfc: bool) -> ([u8; 2], usize) {
    let number = protocol.number();
    if pfc && protocol.is_compressible() {
        ([number as u8, 0], 1)
    } else {
        (number.to_be_bytes(), 2)
    }
}

/// Appends a frame (protocol field and `payload`) to `out`.
///
/// ```
/// use ppp_frame::{sync, Protocol};
///
/// let mut frame = Vec::new();
/// sync::encode(Protocol::Ipv6, b"datagram", false, &mut frame);
/// assert_eq!(&frame[..2], &[0x00, 0x57]); // PFC off: two bytes
/// let decoded = sync::decode(&frame)?;
/// assert_eq!((decoded.protocol, decoded.payload), (Protocol::Ipv6, &b"datagram"[..]));
/// assert!(!decoded.protocol_compressed);
/// # Ok::<(), ppp_frame::FrameError>(())
/// ```
pub fn encode(protocol: Protocol, payload: &[u8], pfc: bool, out: &mut Vec<u8>) {
    let (field, len) = protocol_field(protocol, pfc);
    out.reserve(len + payload.len());
    out.extend_from_slice(&field[..len]);
    out.extend_from_slice(payload);
}

/// Splits a frame into its protocol and information fields. Accepts compressed and uncompressed
/// protocol fields.
///
/// # Errors
///
/// [`FrameError::Truncated`] when there is no complete protocol field, and
/// [`FrameError::InvalidProtocol`] when it is not a valid PPP protocol number.
///
/// ```
/// use ppp_frame::{sync, FrameError, Protocol};
///
/// let mut frame = Vec::new();
/// sync::encode(Protocol::Ipv4, &[0x45, 0x00], true, &mut frame);
/// assert_eq!(frame, [0x21, 0x45, 0x00]); // PFC on: one byte
/// let decoded = sync::decode(&frame)?;
/// assert_eq!((decoded.protocol, decoded.payload), (Protocol::Ipv4, &[0x45, 0x00][..]));
/// assert_eq!(sync::decode(&[0x00]), Err(FrameError::Truncated));
/// # Ok::<(), FrameError>(())
/// ```
pub fn decode(frame: &[u8]) -> Result<Frame<'_>, FrameError> {
    let (protocol, protocol_compressed, payload) = split_protocol(frame)?;
    Ok(Frame {
        protocol,
        payload,
        address_control: false,
        protocol_compressed,
    })
}

/// Reads a protocol field: one byte when the first byte is odd, else two bytes whose second byte
/// is odd (RFC 1661 §2).
pub(crate) fn split_protocol(frame: &[u8]) -> Result<(Protocol, bool, &[u8]), FrameError> {
    match frame {
        [first, rest @ ..] if first & 1 == 1 => Ok((Protocol::from(u16::from(*first)), true, rest)),
        [high, low, rest @ ..] => {
            let protocol = Protocol::from(u16::from_be_bytes([*high, *low]));
            if protocol.is_valid() {
                Ok((protocol, false, rest))
            } else {
                Err(FrameError::InvalidProtocol)
            }
        }
        _ => Err(FrameError::Truncated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcp_is_never_compressed() {
        let mut out = Vec::new();
        encode(Protocol::Lcp, &[1], true, &mut out);
        assert_eq!(out, [0xC0, 0x21, 1]);
        out.clear();
        encode(Protocol::Ipv6, &[1], false, &mut out);
        assert_eq!(out, [0x00, 0x57, 1]);
    }

    #[test]
    fn bad_fields() {
        assert_eq!(decode(&[]), Err(FrameError::Truncated));
        assert_eq!(decode(&[0x00]), Err(FrameError::Truncated));
        assert_eq!(decode(&[0x00, 0x22]), Err(FrameError::InvalidProtocol));
        assert_eq!(decode(&[0x21]).map(|f| f.payload.len()), Ok(0));
    }
}
