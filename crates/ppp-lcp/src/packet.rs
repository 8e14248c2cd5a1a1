//! Control packets: the Code, Identifier, Length, Data layout shared by LCP and the NCPs
//! (RFC 1661 §5).

use core::fmt;

use crate::LcpError;

macro_rules! codes {
    ($( $(#[$doc:meta])* $name:ident = $value:literal, $label:literal; )*) => {
        /// A control packet code. An open enum: unnamed codes are kept in [`Code::Unknown`] so they
        /// can be Code-Rejected; `Debug` prints them in hex.
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $( $(#[$doc])* $name, )*
            /// A code without a name here.
            Unknown(u8),
        }

        impl Code {
            /// The code byte.
            pub const fn number(self) -> u8 {
                match self {
                    $( Code::$name => $value, )*
                    Code::Unknown(n) => n,
                }
            }

            /// The code for a byte.
            pub const fn from_number(n: u8) -> Self {
                match n {
                    $( $value => Code::$name, )*
                    n => Code::Unknown(n),
                }
            }

            /// The short name pppd uses in its logs ("ConfReq", "EchoRep", ...), if known.
            pub const fn short_name(self) -> Option<&'static str> {
                match self {
                    $( Code::$name => Some($label), )*
                    Code::Unknown(_) => None,
                }
            }
        }
    };
}

codes! {
    /// Configure-Request (1).
    ConfigureRequest = 1, "ConfReq";
    /// Configure-Ack (2).
    ConfigureAck = 2, "ConfAck";
    /// Configure-Nak (3).
    ConfigureNak = 3, "ConfNak";
    /// Configure-Reject (4).
    ConfigureReject = 4, "ConfRej";
    /// Terminate-Request (5).
    TerminateRequest = 5, "TermReq";
    /// Terminate-Ack (6).
    TerminateAck = 6, "TermAck";
    /// Code-Reject (7).
    CodeReject = 7, "CodeRej";
    /// Protocol-Reject (8, LCP only).
    ProtocolReject = 8, "ProtRej";
    /// Echo-Request (9, LCP only).
    EchoRequest = 9, "EchoReq";
    /// Echo-Reply (10, LCP only).
    EchoReply = 10, "EchoRep";
    /// Discard-Request (11, LCP only).
    DiscardRequest = 11, "DiscReq";
    /// Identification (12, LCP only, RFC 1570).
    Identification = 12, "Ident";
    /// Time-Remaining (13, LCP only, RFC 1570).
    TimeRemaining = 13, "TimeRem";
    /// Reset-Request (14, CCP only, RFC 1962).
    ResetRequest = 14, "ResetReq";
    /// Reset-Ack (15, CCP only, RFC 1962).
    ResetAck = 15, "ResetAck";
}

impl From<u8> for Code {
    fn from(n: u8) -> Self {
        Code::from_number(n)
    }
}

impl From<Code> for u8 {
    fn from(code: Code) -> u8 {
        code.number()
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Code::Unknown(n) => write!(f, "Unknown({n:#04x})"),
            known => f.write_str(known.short_name().unwrap_or("?")),
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.short_name() {
            Some(name) => f.write_str(name),
            None => write!(f, "code={:#04x}", self.number()),
        }
    }
}

/// Size of the Code, Identifier and Length header.
pub const HEADER_LEN: usize = 4;

/// A control packet: the information field of an LCP/NCP frame.
///
/// [`ControlPacket::parse`] checks the Length field and ignores bytes past it (padding, RFC 1661
/// §5); [`ControlPacket::emit`] writes the same layout back. Neither panics on any input; data
/// longer than 65531 bytes cannot be represented and is truncated by `emit`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ControlPacket<'a> {
    /// The Code field.
    pub code: Code,
    /// The Identifier field.
    pub identifier: u8,
    /// The Data field (for Configure-* packets the option list).
    pub data: &'a [u8],
}

impl<'a> ControlPacket<'a> {
    /// Largest data field the 16-bit Length can describe.
    pub const MAX_DATA_LEN: usize = u16::MAX as usize - HEADER_LEN;

    /// Parse a packet, checking its Length field; bytes past `Length` are padding and ignored.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, LcpError> {
        let [code, identifier, hi, lo, ..] = *bytes else {
            return Err(LcpError::Truncated { len: bytes.len() });
        };
        let length = u16::from_be_bytes([hi, lo]);
        let end = usize::from(length);
        if end < HEADER_LEN || end > bytes.len() {
            return Err(LcpError::BadLength {
                length,
                available: bytes.len(),
            });
        }
        Ok(ControlPacket {
            code: Code::from_number(code),
            identifier,
            data: &bytes[HEADER_LEN..end],
        })
    }

    /// Bytes `emit` writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.data.len().min(Self::MAX_DATA_LEN)
    }

    /// Append the encoded packet to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let data = &self.data[..self.data.len().min(Self::MAX_DATA_LEN)];
        out.push(self.code.number());
        out.push(self.identifier);
        // Fits: data is at most MAX_DATA_LEN bytes.
        out.extend_from_slice(&((data.len() + HEADER_LEN) as u16).to_be_bytes());
        out.extend_from_slice(data);
    }

    /// The encoded packet in a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(&mut out);
        out
    }
}

impl fmt::Debug for ControlPacket<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlPacket")
            .field("code", &self.code)
            .field("identifier", &format_args!("{:#04x}", self.identifier))
            .field("data", &crate::describe::Hex(self.data))
            .finish()
    }
}

/// Build a packet's bytes from its parts.
pub(crate) fn build(code: Code, identifier: u8, data: &[u8]) -> Vec<u8> {
    ControlPacket {
        code,
        identifier,
        data,
    }
    .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_configure_request_from_rfc1662_frame() {
        // The payload of the golden frame: ConfReq id 1, MRU 1500, Magic-Number 0x01020304.
        let bytes = [
            0x01, 0x01, 0x00, 0x0E, 0x01, 0x04, 0x05, 0xDC, 0x05, 0x06, 0x01, 0x02, 0x03, 0x04,
        ];
        let packet = ControlPacket::parse(&bytes).unwrap();
        assert_eq!(packet.code, Code::ConfigureRequest);
        assert_eq!(packet.identifier, 1);
        assert_eq!(packet.data, &bytes[4..]);
        assert_eq!(packet.to_vec(), bytes);
        assert_eq!(packet.buffer_len(), 14);
    }

    #[test]
    fn parse_table() {
        type Parsed = Result<(u8, u8, &'static [u8]), LcpError>;
        let cases: &[(&[u8], Parsed)] = &[
            (&[], Err(LcpError::Truncated { len: 0 })),
            (&[9, 1, 0], Err(LcpError::Truncated { len: 3 })),
            (&[6, 1, 0, 4], Ok((6, 1, &[]))),
            // Padding past Length is ignored.
            (&[6, 1, 0, 4, 0xff, 0xff], Ok((6, 1, &[]))),
            (&[5, 2, 0, 6, b'h', b'i', 0], Ok((5, 2, b"hi"))),
            (
                &[5, 2, 0, 3],
                Err(LcpError::BadLength {
                    length: 3,
                    available: 4,
                }),
            ),
            (
                &[5, 2, 0, 9, 1],
                Err(LcpError::BadLength {
                    length: 9,
                    available: 5,
                }),
            ),
            (&[0x42, 7, 0, 5, 1], Ok((0x42, 7, &[1]))),
        ];
        for (bytes, expected) in cases {
            let got = ControlPacket::parse(bytes).map(|p| (p.code.number(), p.identifier, p.data));
            assert_eq!(&got, expected, "{bytes:?}");
        }
    }

    #[test]
    fn codes_round_trip_and_debug_in_hex() {
        for n in 0..=u8::MAX {
            assert_eq!(Code::from(n).number(), n);
        }
        assert_eq!(format!("{:?}", Code::from(0x2a)), "Unknown(0x2a)");
        assert_eq!(format!("{:?}", Code::EchoRequest), "EchoReq");
        assert_eq!(Code::from(14), Code::ResetRequest);
    }

    proptest! {
        #[test]
        fn emit_then_parse_round_trips(code in any::<u8>(), id in any::<u8>(), data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let packet = ControlPacket { code: Code::from(code), identifier: id, data: &data };
            let bytes = packet.to_vec();
            prop_assert_eq!(bytes.len(), packet.buffer_len());
            prop_assert_eq!(ControlPacket::parse(&bytes), Ok(packet));
        }

        #[test]
        fn parse_then_emit_reproduces_the_packet(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(packet) = ControlPacket::parse(&bytes) {
                let out = packet.to_vec();
                prop_assert_eq!(&out[..], &bytes[..out.len()]);
            }
        }
    }
}
