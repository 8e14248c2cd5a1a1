//! The session stage (RFC 2516 §6): PPP frames in Ethertype 0x8864 frames, and the MTU rules.
//!
//! ```
//! use pppoe_discovery::session::{decapsulate, encapsulate};
//! use pppoe_discovery::MacAddr;
//! use ppp_frame::Protocol;
//!
//! let (client, ac) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]));
//! let mut frame = Vec::new();
//! encapsulate(ac, client, 0x1234, Protocol::Ipv4, b"datagram", &mut frame).unwrap();
//! let session = decapsulate(&frame).unwrap();
//! assert_eq!((session.session_id, session.protocol, session.payload), (0x1234, Protocol::Ipv4, &b"datagram"[..]));
//! ```

use ppp_frame::{Protocol, sync};

use crate::DiscoveryError;
use crate::wire::{Code, ETHERTYPE_SESSION, HEADER_LEN, MacAddr, Packet, VERSION_TYPE};

/// The PPP MRU/MTU over plain Ethernet: 1500 minus the 8 bytes of PPPoE and PPP headers.
pub const DEFAULT_MAX_PAYLOAD: u16 = 1492;
/// Bytes PPPoE adds inside the Ethernet payload: its 6-byte header and the 2-byte PPP protocol.
pub const PPPOE_OVERHEAD: u16 = 8;

/// A session frame, borrowed from the Ethernet frame it came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionFrame<'a> {
    /// Destination address.
    pub dst: MacAddr,
    /// Source address.
    pub src: MacAddr,
    /// SESSION_ID.
    pub session_id: u16,
    /// The PPP protocol.
    pub protocol: Protocol,
    /// The PPP information field (Ethernet padding left out).
    pub payload: &'a [u8],
}

/// Appends to `out` an Ethernet frame carrying `payload` as PPP `protocol` in session
/// `session_id`. The protocol field is never compressed.
///
/// # Errors
///
/// [`DiscoveryError::TooLong`] when the PPP frame does not fit the 16-bit LENGTH field (nothing is
/// appended then).
pub fn encapsulate(
    dst: MacAddr,
    src: MacAddr,
    session_id: u16,
    protocol: Protocol,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), DiscoveryError> {
    let ppp_len = payload.len() + 2;
    u16::try_from(ppp_len).map_err(|_| DiscoveryError::TooLong { len: ppp_len })?;
    let start = out.len();
    out.resize(start + HEADER_LEN, 0);
    sync::encode(protocol, payload, false, out);
    write_session_header(&mut out[start..], dst, src, session_id)
}

/// Fills the Ethernet and PPPoE headers of a session frame whose first [`HEADER_LEN`] bytes were
/// left free in front of the PPP frame (protocol field and information), so a frame built with
/// that headroom goes out without another copy.
///
/// # Errors
///
/// [`DiscoveryError::Truncated`] when `frame` is shorter than the headers, [`DiscoveryError::TooLong`] when the
/// PPP frame does not fit the 16-bit LENGTH field (the frame is left as it was).
pub fn write_session_header(
    frame: &mut [u8],
    dst: MacAddr,
    src: MacAddr,
    session_id: u16,
) -> Result<(), DiscoveryError> {
    let ppp_len = frame
        .len()
        .checked_sub(HEADER_LEN)
        .ok_or(DiscoveryError::Truncated {
            len: frame.len(),
            required: HEADER_LEN,
        })?;
    let length = u16::try_from(ppp_len).map_err(|_| DiscoveryError::TooLong { len: ppp_len })?;
    let mut packet = Packet::new_unchecked(frame);
    packet.set_dst_addr(dst);
    packet.set_src_addr(src);
    packet.set_ethertype(ETHERTYPE_SESSION);
    packet.set_version_type(VERSION_TYPE);
    packet.set_code(Code::Session);
    packet.set_session_id(session_id);
    packet.set_payload_len(length);
    Ok(())
}

/// Parses an Ethernet frame carrying a session frame (Ethernet padding is ignored). Accepts
/// compressed and uncompressed protocol fields.
///
/// # Errors
///
/// The header errors of [`Packet::check_len`], [`DiscoveryError::WrongEthertype`],
/// [`DiscoveryError::BadVersionType`], [`DiscoveryError::WrongCode`], and [`DiscoveryError::Ppp`] for a missing or invalid
/// protocol field.
pub fn decapsulate(frame: &[u8]) -> Result<SessionFrame<'_>, DiscoveryError> {
    let packet = Packet::new_checked(frame)?;
    if packet.ethertype() != ETHERTYPE_SESSION {
        return Err(DiscoveryError::WrongEthertype {
            found: packet.ethertype(),
            expected: ETHERTYPE_SESSION,
        });
    }
    if packet.version_type() != VERSION_TYPE {
        return Err(DiscoveryError::BadVersionType(packet.version_type()));
    }
    if packet.code() != Code::Session {
        return Err(DiscoveryError::WrongCode(packet.code()));
    }
    let end = HEADER_LEN + usize::from(packet.payload_len());
    let ppp = frame.get(HEADER_LEN..end).unwrap_or(&[]);
    let decoded = sync::decode(ppp)?;
    Ok(SessionFrame {
        dst: packet.dst_addr(),
        src: packet.src_addr(),
        session_id: packet.session_id(),
        protocol: decoded.protocol,
        payload: decoded.payload,
    })
}

/// The sizes a session runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionMtu {
    /// Largest PPP information field (LCP MRU to request, and MTU of the PPP interface).
    pub ppp_mtu: u16,
    /// MTU the Ethernet interface needs: `ppp_mtu` + 8.
    pub ethernet_mtu: u16,
}

impl SessionMtu {
    /// The sizes for a session whose RFC 4638 PPP-Max-Payload negotiation gave `agreed` (`None`
    /// when not negotiated): 1492 over a 1500-byte Ethernet MTU, or the agreed value (e.g. 1500
    /// over a 1508-byte Ethernet MTU). An agreed value below 1492 is ignored, as RFC 4638 says.
    pub fn for_session(agreed: Option<u16>) -> Self {
        let ppp_mtu = agreed
            .filter(|&m| m > DEFAULT_MAX_PAYLOAD)
            .map_or(DEFAULT_MAX_PAYLOAD, |m| m.min(u16::MAX - PPPOE_OVERHEAD));
        SessionMtu {
            ppp_mtu,
            ethernet_mtu: ppp_mtu + PPPOE_OVERHEAD,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const B: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    #[test]
    fn golden_session_frame() {
        // RFC 2516 §6: an LCP Echo-Request in session 0x1234.
        let mut frame = Vec::new();
        encapsulate(
            B,
            A,
            0x1234,
            Protocol::Lcp,
            &[0x09, 0x01, 0x00, 0x08, 1, 2, 3, 4],
            &mut frame,
        )
        .unwrap();
        let expected = [
            2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0x64, 0x11, 0x00, 0x12, 0x34, 0x00, 0x0a,
            0xc0, 0x21, 0x09, 0x01, 0x00, 0x08, 1, 2, 3, 4,
        ];
        assert_eq!(frame, expected);
        let mut padded = frame.clone();
        padded.resize(60, 0);
        let session = decapsulate(&padded).unwrap();
        assert_eq!(session.payload, &[0x09, 0x01, 0x00, 0x08, 1, 2, 3, 4]);
        assert_eq!((session.dst, session.src), (B, A));
    }

    #[test]
    fn bad_session_frames() {
        let mut frame = Vec::new();
        encapsulate(B, A, 1, Protocol::Ipv4, b"x", &mut frame).unwrap();
        let mut wrong_code = frame.clone();
        wrong_code[15] = 0x09;
        let mut discovery = frame.clone();
        discovery[13] = 0x63;
        let mut no_protocol = frame[..20].to_vec();
        no_protocol[19] = 0;
        assert_eq!(
            decapsulate(&wrong_code),
            Err(DiscoveryError::WrongCode(Code::Padi))
        );
        assert_eq!(
            decapsulate(&discovery),
            Err(DiscoveryError::WrongEthertype {
                found: 0x8863,
                expected: 0x8864
            })
        );
        assert_eq!(
            decapsulate(&no_protocol),
            Err(DiscoveryError::Ppp(ppp_frame::FrameError::Truncated))
        );
    }

    #[test]
    fn headers_written_in_place_match_encapsulate() {
        let (dst, src) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]));
        let mut expected = Vec::new();
        encapsulate(dst, src, 0x1234, Protocol::Ipv4, b"datagram", &mut expected).unwrap();
        let mut frame = vec![0; HEADER_LEN];
        sync::encode(Protocol::Ipv4, b"datagram", false, &mut frame);
        write_session_header(&mut frame, dst, src, 0x1234).unwrap();
        assert_eq!(frame, expected);
        assert_eq!(
            write_session_header(&mut [0; 19], dst, src, 1),
            Err(DiscoveryError::Truncated {
                len: 19,
                required: HEADER_LEN
            })
        );
    }

    #[test]
    fn mtu_rule() {
        assert_eq!(
            SessionMtu::for_session(None),
            SessionMtu {
                ppp_mtu: 1492,
                ethernet_mtu: 1500
            }
        );
        assert_eq!(
            SessionMtu::for_session(Some(1500)),
            SessionMtu {
                ppp_mtu: 1500,
                ethernet_mtu: 1508
            }
        );
        assert_eq!(SessionMtu::for_session(Some(1400)).ppp_mtu, 1492);
        assert_eq!(
            SessionMtu::for_session(Some(u16::MAX)).ethernet_mtu,
            u16::MAX
        );
    }

    proptest! {
        #[test]
        fn encapsulation_round_trips(id in any::<u16>(), number in any::<u16>(), payload in proptest::collection::vec(any::<u8>(), 0..100)) {
            let protocol = Protocol::from_number(number);
            prop_assume!(protocol.is_valid());
            let mut frame = Vec::new();
            encapsulate(A, B, id, protocol, &payload, &mut frame).unwrap();
            let session = decapsulate(&frame).unwrap();
            prop_assert_eq!((session.session_id, session.protocol, session.payload), (id, protocol, &payload[..]));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = decapsulate(&bytes);
        }
    }
}
