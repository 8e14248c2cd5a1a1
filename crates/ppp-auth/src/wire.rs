//! PAP (RFC 1334) and CHAP (RFC 1994) packets: parse and emit symmetrically.
//!
//! Both formats share the 4-byte header `Code | Identifier | Length(16)`. Parsing checks every
//! length and never panics: bytes past the Length field (link padding) are ignored, anything
//! shorter is an [`AuthError`]. Emitting checks the one-byte length fields and the 16-bit Length.
//! [`Display`](std::fmt::Display) gives pppd-like log summaries that never show a password, a
//! response value or an authenticator response.

use std::fmt;

use crate::AuthError;
use crate::secret::Secret;

/// Splits a packet into its code, identifier and the data within the Length field.
fn split_header(bytes: &[u8]) -> Result<(u8, u8, &[u8]), AuthError> {
    let [code, id, hi, lo, ..] = *bytes else {
        return Err(AuthError::Truncated { len: bytes.len() });
    };
    let length = u16::from_be_bytes([hi, lo]);
    let len = usize::from(length);
    if len < 4 || len > bytes.len() {
        return Err(AuthError::BadLength {
            length,
            available: bytes.len(),
        });
    }
    Ok((code, id, &bytes[4..len]))
}

/// Writes the 4-byte header; `data_len` is what follows it.
fn emit_header(out: &mut Vec<u8>, code: u8, id: u8, data_len: usize) -> Result<(), AuthError> {
    let len = data_len + 4;
    let length = u16::try_from(len).map_err(|_| AuthError::PacketTooLong { len })?;
    out.extend_from_slice(&[code, id]);
    out.extend_from_slice(&length.to_be_bytes());
    Ok(())
}

/// Reads a one-byte length and that many bytes.
fn take_counted<'a>(
    data: &'a [u8],
    field: &'static str,
) -> Result<(&'a [u8], &'a [u8]), AuthError> {
    let (&n, rest) = data
        .split_first()
        .ok_or(AuthError::FieldOverrun { field })?;
    let n = usize::from(n);
    if n > rest.len() {
        return Err(AuthError::FieldOverrun { field });
    }
    Ok(rest.split_at(n))
}

fn counted_len(field: &'static str, bytes: &[u8]) -> Result<u8, AuthError> {
    u8::try_from(bytes.len()).map_err(|_| AuthError::FieldTooLong {
        field,
        len: bytes.len(),
    })
}

/// Writes bytes as pppd's `print_string` would: quoted, printable ASCII as is, others escaped.
pub(crate) struct Quoted<'a>(pub &'a [u8]);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for &c in self.0 {
            match c {
                b'"' | b'\\' => write!(f, "\\{}", c as char)?,
                b' '..=b'~' => write!(f, "{}", c as char)?,
                b'\n' => f.write_str("\\n")?,
                b'\r' => f.write_str("\\r")?,
                b'\t' => f.write_str("\\t")?,
                _ => write!(f, "\\{c:03o}")?,
            }
        }
        f.write_str("\"")
    }
}

/// A CHAP Success/Failure message with any MS-CHAPv2 authenticator response hidden.
struct RedactedMessage<'a>(&'a [u8]);

impl fmt::Display for RedactedMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.strip_prefix(b"S=") {
            Some(rest) => {
                let skip = rest.iter().take_while(|c| c.is_ascii_hexdigit()).count();
                let mut shown = b"S=<hidden>".to_vec();
                shown.extend_from_slice(&rest[skip..]);
                Quoted(&shown).fmt(f)
            }
            None => Quoted(self.0).fmt(f),
        }
    }
}

macro_rules! open_code {
    ($(#[$meta:meta])* $name:ident { $( $(#[$doc:meta])* $variant:ident = $value:expr, $label:expr; )* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$doc])* $variant, )*
            /// A code this crate has no name for.
            Unknown(u8),
        }

        impl $name {
            /// The code's byte.
            pub const fn number(self) -> u8 {
                match self {
                    $( $name::$variant => $value, )*
                    $name::Unknown(n) => n,
                }
            }

            /// The code for a byte.
            pub const fn from_number(n: u8) -> Self {
                match n {
                    $( $value => $name::$variant, )*
                    n => $name::Unknown(n),
                }
            }

            /// pppd's name for the code, if known.
            pub const fn name(self) -> Option<&'static str> {
                match self {
                    $( $name::$variant => Some($label), )*
                    $name::Unknown(_) => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $( $name::$variant => f.write_str(stringify!($variant)), )*
                    $name::Unknown(n) => write!(f, "Unknown({n:#04x})"),
                }
            }
        }
    };
}

open_code! {
    /// A PAP packet code (RFC 1334 §2.2).
    PapCode {
        /// Authenticate-Request: Peer-ID and Password.
        AuthenticateRequest = 1, "AuthReq";
        /// Authenticate-Ack.
        AuthenticateAck = 2, "AuthAck";
        /// Authenticate-Nak.
        AuthenticateNak = 3, "AuthNak";
    }
}

open_code! {
    /// A CHAP packet code (RFC 1994 §4).
    ChapCode {
        /// Challenge: Value and Name of the authenticator.
        Challenge = 1, "Challenge";
        /// Response: Value and Name of the peer.
        Response = 2, "Response";
        /// Success.
        Success = 3, "Success";
        /// Failure.
        Failure = 4, "Failure";
    }
}

/// A PAP packet (RFC 1334 §2.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PapPacket {
    /// Authenticate-Request (code 1): the peer's name and password.
    Request {
        /// Identifier.
        id: u8,
        /// Peer-ID (the user name).
        peer_id: Vec<u8>,
        /// Password, kept in a [`Secret`] so it is zeroized and never printed.
        password: Secret,
    },
    /// Authenticate-Ack (code 2) with its message.
    Ack {
        /// Identifier.
        id: u8,
        /// Message (may be empty).
        message: Vec<u8>,
    },
    /// Authenticate-Nak (code 3) with its message.
    Nak {
        /// Identifier.
        id: u8,
        /// Message (may be empty).
        message: Vec<u8>,
    },
    /// Any other code, kept whole.
    Unknown {
        /// The code.
        code: u8,
        /// Identifier.
        id: u8,
        /// Everything after the header, within Length.
        data: Vec<u8>,
    },
}

impl PapPacket {
    /// Parses a PAP packet (the PPP information field of protocol 0xC023).
    ///
    /// Ack and Nak without a Msg-Length byte are accepted with an empty message, as pppd does.
    pub fn parse(bytes: &[u8]) -> Result<Self, AuthError> {
        let (code, id, data) = split_header(bytes)?;
        Ok(match PapCode::from_number(code) {
            PapCode::AuthenticateRequest => {
                let (peer_id, rest) = take_counted(data, "Peer-ID")?;
                let (password, _) = take_counted(rest, "Passwd")?;
                PapPacket::Request {
                    id,
                    peer_id: peer_id.to_vec(),
                    password: Secret::new(password),
                }
            }
            c @ (PapCode::AuthenticateAck | PapCode::AuthenticateNak) => {
                let message = if data.is_empty() {
                    &[][..]
                } else {
                    take_counted(data, "Msg")?.0
                };
                let message = message.to_vec();
                if c == PapCode::AuthenticateAck {
                    PapPacket::Ack { id, message }
                } else {
                    PapPacket::Nak { id, message }
                }
            }
            PapCode::Unknown(code) => PapPacket::Unknown {
                code,
                id,
                data: data.to_vec(),
            },
        })
    }

    /// The packet's code.
    pub fn code(&self) -> PapCode {
        match self {
            PapPacket::Request { .. } => PapCode::AuthenticateRequest,
            PapPacket::Ack { .. } => PapCode::AuthenticateAck,
            PapPacket::Nak { .. } => PapCode::AuthenticateNak,
            PapPacket::Unknown { code, .. } => PapCode::from_number(*code),
        }
    }

    /// The packet's identifier.
    pub fn id(&self) -> u8 {
        match self {
            PapPacket::Request { id, .. }
            | PapPacket::Ack { id, .. }
            | PapPacket::Nak { id, .. }
            | PapPacket::Unknown { id, .. } => *id,
        }
    }

    /// The number of bytes [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        4 + match self {
            PapPacket::Request {
                peer_id, password, ..
            } => 2 + peer_id.len() + password.len(),
            PapPacket::Ack { message, .. } | PapPacket::Nak { message, .. } => 1 + message.len(),
            PapPacket::Unknown { data, .. } => data.len(),
        }
    }

    /// Appends the packet to `out`; fails (writing nothing) if a field is too long.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), AuthError> {
        let start = out.len();
        let result = self.emit_unchecked(out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn emit_unchecked(&self, out: &mut Vec<u8>) -> Result<(), AuthError> {
        let code = self.code().number();
        let id = self.id();
        match self {
            PapPacket::Request {
                peer_id, password, ..
            } => {
                let peer_len = counted_len("Peer-ID", peer_id)?;
                let pass_len = counted_len("Passwd", password.expose())?;
                emit_header(out, code, id, 2 + peer_id.len() + password.len())?;
                out.push(peer_len);
                out.extend_from_slice(peer_id);
                out.push(pass_len);
                out.extend_from_slice(password.expose());
            }
            PapPacket::Ack { message, .. } | PapPacket::Nak { message, .. } => {
                let len = counted_len("Msg", message)?;
                emit_header(out, code, id, 1 + message.len())?;
                out.push(len);
                out.extend_from_slice(message);
            }
            PapPacket::Unknown { data, .. } => {
                emit_header(out, code, id, data.len())?;
                out.extend_from_slice(data);
            }
        }
        Ok(())
    }

    /// The packet as bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, AuthError> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(&mut out)?;
        Ok(out)
    }
}

impl fmt::Display for PapPacket {
    /// pppd's summary, e.g. `PAP AuthReq id=0x1 user="alice" password=<hidden>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.id();
        match self {
            PapPacket::Request { peer_id, .. } => {
                write!(
                    f,
                    "PAP AuthReq id={id:#x} user={} password=<hidden>",
                    Quoted(peer_id)
                )
            }
            PapPacket::Ack { message, .. } => {
                write!(f, "PAP AuthAck id={id:#x} {}", Quoted(message))
            }
            PapPacket::Nak { message, .. } => {
                write!(f, "PAP AuthNak id={id:#x} {}", Quoted(message))
            }
            PapPacket::Unknown { code, data, .. } => {
                write!(f, "PAP code={code:#x} id={id:#x} <{} bytes>", data.len())
            }
        }
    }
}

/// A CHAP packet (RFC 1994 §4), also carrying MS-CHAP (RFC 2433) and MS-CHAP-V2 (RFC 2759).
#[derive(Clone, PartialEq, Eq)]
pub enum ChapPacket {
    /// Challenge (code 1).
    Challenge {
        /// Identifier.
        id: u8,
        /// The challenge value.
        value: Vec<u8>,
        /// The authenticator's name.
        name: Vec<u8>,
    },
    /// Response (code 2).
    Response {
        /// Identifier (the challenge's).
        id: u8,
        /// The response value (a hash: never logged).
        value: Vec<u8>,
        /// The peer's name.
        name: Vec<u8>,
    },
    /// Success (code 3).
    Success {
        /// Identifier (the response's).
        id: u8,
        /// Message (MS-CHAP-V2: `S=<40 hex> M=<text>`).
        message: Vec<u8>,
    },
    /// Failure (code 4).
    Failure {
        /// Identifier (the response's).
        id: u8,
        /// Message (MS-CHAP: `E=691 R=0 C=<hex> V=0 M=<text>`).
        message: Vec<u8>,
    },
    /// Any other code (MS-CHAP Change-Password, ...), kept whole.
    Unknown {
        /// The code.
        code: u8,
        /// Identifier.
        id: u8,
        /// Everything after the header, within Length.
        data: Vec<u8>,
    },
}

impl fmt::Debug for ChapPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Response values are password hashes: show their size only.
        match self {
            ChapPacket::Response { id, value, name } => f
                .debug_struct("Response")
                .field("id", id)
                .field("value", &format_args!("<{} bytes>", value.len()))
                .field("name", &String::from_utf8_lossy(name))
                .finish(),
            ChapPacket::Challenge { id, value, name } => f
                .debug_struct("Challenge")
                .field("id", id)
                .field("value", value)
                .field("name", &String::from_utf8_lossy(name))
                .finish(),
            ChapPacket::Success { id, message } => f
                .debug_struct("Success")
                .field("id", id)
                .field("message", &format_args!("{}", RedactedMessage(message)))
                .finish(),
            ChapPacket::Failure { id, message } => f
                .debug_struct("Failure")
                .field("id", id)
                .field("message", &String::from_utf8_lossy(message))
                .finish(),
            ChapPacket::Unknown { code, id, data } => f
                .debug_struct("Unknown")
                .field("code", &format_args!("{code:#04x}"))
                .field("id", id)
                .field("data", data)
                .finish(),
        }
    }
}

impl ChapPacket {
    /// Parses a CHAP packet (the PPP information field of protocol 0xC223).
    pub fn parse(bytes: &[u8]) -> Result<Self, AuthError> {
        let (code, id, data) = split_header(bytes)?;
        Ok(match ChapCode::from_number(code) {
            c @ (ChapCode::Challenge | ChapCode::Response) => {
                let (value, name) = take_counted(data, "Value")?;
                let (value, name) = (value.to_vec(), name.to_vec());
                if c == ChapCode::Challenge {
                    ChapPacket::Challenge { id, value, name }
                } else {
                    ChapPacket::Response { id, value, name }
                }
            }
            ChapCode::Success => ChapPacket::Success {
                id,
                message: data.to_vec(),
            },
            ChapCode::Failure => ChapPacket::Failure {
                id,
                message: data.to_vec(),
            },
            ChapCode::Unknown(code) => ChapPacket::Unknown {
                code,
                id,
                data: data.to_vec(),
            },
        })
    }

    /// The packet's code.
    pub fn code(&self) -> ChapCode {
        match self {
            ChapPacket::Challenge { .. } => ChapCode::Challenge,
            ChapPacket::Response { .. } => ChapCode::Response,
            ChapPacket::Success { .. } => ChapCode::Success,
            ChapPacket::Failure { .. } => ChapCode::Failure,
            ChapPacket::Unknown { code, .. } => ChapCode::from_number(*code),
        }
    }

    /// The packet's identifier.
    pub fn id(&self) -> u8 {
        match self {
            ChapPacket::Challenge { id, .. }
            | ChapPacket::Response { id, .. }
            | ChapPacket::Success { id, .. }
            | ChapPacket::Failure { id, .. }
            | ChapPacket::Unknown { id, .. } => *id,
        }
    }

    /// The number of bytes [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        4 + match self {
            ChapPacket::Challenge { value, name, .. }
            | ChapPacket::Response { value, name, .. } => 1 + value.len() + name.len(),
            ChapPacket::Success { message, .. } | ChapPacket::Failure { message, .. } => {
                message.len()
            }
            ChapPacket::Unknown { data, .. } => data.len(),
        }
    }

    /// Appends the packet to `out`; fails (writing nothing) if a field is too long.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), AuthError> {
        let code = self.code().number();
        let id = self.id();
        let data_len = self.buffer_len() - 4;
        match self {
            ChapPacket::Challenge { value, name, .. }
            | ChapPacket::Response { value, name, .. } => {
                let value_len = counted_len("Value", value)?;
                emit_header(out, code, id, data_len)?;
                out.push(value_len);
                out.extend_from_slice(value);
                out.extend_from_slice(name);
            }
            ChapPacket::Success { message: data, .. }
            | ChapPacket::Failure { message: data, .. }
            | ChapPacket::Unknown { data, .. } => {
                emit_header(out, code, id, data_len)?;
                out.extend_from_slice(data);
            }
        }
        Ok(())
    }

    /// The packet as bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, AuthError> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(&mut out)?;
        Ok(out)
    }
}

impl fmt::Display for ChapPacket {
    /// pppd's summary, e.g. `CHAP Challenge id=0x1 <16 bytes>, name = "server"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.id();
        match self {
            ChapPacket::Challenge { value, name, .. } => write!(
                f,
                "CHAP Challenge id={id:#x} <{} bytes>, name = {}",
                value.len(),
                Quoted(name)
            ),
            ChapPacket::Response { value, name, .. } => write!(
                f,
                "CHAP Response id={id:#x} <{} bytes>, name = {}",
                value.len(),
                Quoted(name)
            ),
            ChapPacket::Success { message, .. } => {
                write!(f, "CHAP Success id={id:#x} {}", RedactedMessage(message))
            }
            ChapPacket::Failure { message, .. } => {
                write!(f, "CHAP Failure id={id:#x} {}", Quoted(message))
            }
            ChapPacket::Unknown { code, data, .. } => {
                write!(f, "CHAP code={code:#x} id={id:#x} <{} bytes>", data.len())
            }
        }
    }
}

/// Parses a PAP packet: the fuzzing entry point, same as [`PapPacket::parse`].
pub fn parse_pap_packet(bytes: &[u8]) -> Result<PapPacket, AuthError> {
    PapPacket::parse(bytes)
}

/// Parses a CHAP packet: the fuzzing entry point, same as [`ChapPacket::parse`].
pub fn parse_chap_packet(bytes: &[u8]) -> Result<ChapPacket, AuthError> {
    ChapPacket::parse(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pap_request_golden() {
        let bytes = [
            1, 7, 0, 16, 5, b'a', b'l', b'i', b'c', b'e', 5, b's', b'e', b'c', b'r', b'3',
        ];
        let packet = PapPacket::parse(&bytes).unwrap();
        assert_eq!(
            packet,
            PapPacket::Request {
                id: 7,
                peer_id: b"alice".to_vec(),
                password: Secret::new("secr3")
            }
        );
        assert_eq!(packet.to_bytes().unwrap(), bytes);
        assert_eq!(
            packet.to_string(),
            "PAP AuthReq id=0x7 user=\"alice\" password=<hidden>"
        );
        assert!(!format!("{packet:?}").contains("secr3"));
    }

    #[test]
    fn pap_ack_without_message_and_padding() {
        assert_eq!(
            PapPacket::parse(&[2, 1, 0, 4]).unwrap(),
            PapPacket::Ack {
                id: 1,
                message: vec![]
            }
        );
        assert_eq!(
            PapPacket::parse(&[3, 1, 0, 7, 2, b'n', b'o', 0xff, 0xff]).unwrap(),
            PapPacket::Nak {
                id: 1,
                message: b"no".to_vec()
            }
        );
    }

    #[test]
    fn malformed_packets_are_typed_errors() {
        let cases: &[(&[u8], AuthError)] = &[
            (&[1, 1, 0], AuthError::Truncated { len: 3 }),
            (
                &[1, 1, 0, 3],
                AuthError::BadLength {
                    length: 3,
                    available: 4,
                },
            ),
            (
                &[1, 1, 0, 9, 1],
                AuthError::BadLength {
                    length: 9,
                    available: 5,
                },
            ),
            (
                &[1, 1, 0, 6, 5, b'a'],
                AuthError::FieldOverrun { field: "Peer-ID" },
            ),
            (
                &[1, 1, 0, 6, 1, b'a'],
                AuthError::FieldOverrun { field: "Passwd" },
            ),
            (
                &[2, 1, 0, 6, 9, b'a'],
                AuthError::FieldOverrun { field: "Msg" },
            ),
        ];
        for (bytes, err) in cases {
            assert_eq!(PapPacket::parse(bytes).unwrap_err(), *err, "{bytes:?}");
        }
        assert_eq!(
            ChapPacket::parse(&[1, 1, 0, 4]).unwrap_err(),
            AuthError::FieldOverrun { field: "Value" }
        );
        assert_eq!(
            ChapPacket::parse(&[2, 1, 0, 6, 3, 0]).unwrap_err(),
            AuthError::FieldOverrun { field: "Value" }
        );
    }

    #[test]
    fn chap_challenge_golden_and_summary() {
        let mut bytes = vec![1, 1, 0, 27, 16];
        bytes.extend(0u8..16);
        bytes.extend_from_slice(b"server");
        let packet = ChapPacket::parse(&bytes).unwrap();
        assert_eq!(
            packet,
            ChapPacket::Challenge {
                id: 1,
                value: (0u8..16).collect(),
                name: b"server".to_vec()
            }
        );
        assert_eq!(packet.to_bytes().unwrap(), bytes);
        assert_eq!(
            packet.to_string(),
            "CHAP Challenge id=0x1 <16 bytes>, name = \"server\""
        );
    }

    #[test]
    fn success_summary_hides_authenticator_response() {
        let packet = ChapPacket::Success {
            id: 2,
            message: b"S=407A5589115FD0D6209F510FE9C04566932CDA56 M=Access granted".to_vec(),
        };
        assert_eq!(
            packet.to_string(),
            "CHAP Success id=0x2 \"S=<hidden> M=Access granted\""
        );
        assert!(!format!("{packet:?}").contains("407A"));
    }

    #[test]
    fn emit_rejects_oversized_fields() {
        let packet = ChapPacket::Response {
            id: 1,
            value: vec![0; 256],
            name: vec![],
        };
        assert_eq!(
            packet.to_bytes().unwrap_err(),
            AuthError::FieldTooLong {
                field: "Value",
                len: 256
            }
        );
        let packet = ChapPacket::Success {
            id: 1,
            message: vec![0; 70_000],
        };
        assert_eq!(
            packet.to_bytes().unwrap_err(),
            AuthError::PacketTooLong { len: 70_004 }
        );
        let mut out = vec![9];
        let packet = PapPacket::Request {
            id: 1,
            peer_id: vec![0; 300],
            password: Secret::new("x"),
        };
        assert!(packet.emit(&mut out).is_err());
        assert_eq!(out, [9]);
    }

    #[test]
    fn unknown_codes_print_hex() {
        assert_eq!(
            format!("{:?}", ChapCode::from_number(0x17)),
            "Unknown(0x17)"
        );
        assert_eq!(format!("{:?}", PapCode::from_number(9)), "Unknown(0x09)");
        let packet = ChapPacket::parse(&[7, 3, 0, 6, 0xaa, 0xbb]).unwrap();
        assert_eq!(
            packet,
            ChapPacket::Unknown {
                code: 7,
                id: 3,
                data: vec![0xaa, 0xbb]
            }
        );
        assert_eq!(packet.to_bytes().unwrap(), [7, 3, 0, 6, 0xaa, 0xbb]);
    }

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..max)
    }

    fn pap_packet() -> impl Strategy<Value = PapPacket> {
        prop_oneof![
            (any::<u8>(), bytes(256), bytes(256)).prop_map(|(id, peer_id, pw)| {
                PapPacket::Request {
                    id,
                    peer_id,
                    password: Secret::new(pw),
                }
            }),
            (any::<u8>(), bytes(256)).prop_map(|(id, message)| PapPacket::Ack { id, message }),
            (any::<u8>(), bytes(256)).prop_map(|(id, message)| PapPacket::Nak { id, message }),
            (4u8.., any::<u8>(), bytes(300)).prop_map(|(code, id, data)| PapPacket::Unknown {
                code,
                id,
                data
            }),
        ]
    }

    fn chap_packet() -> impl Strategy<Value = ChapPacket> {
        prop_oneof![
            (any::<u8>(), bytes(256), bytes(300))
                .prop_map(|(id, value, name)| ChapPacket::Challenge { id, value, name }),
            (any::<u8>(), bytes(256), bytes(300))
                .prop_map(|(id, value, name)| ChapPacket::Response { id, value, name }),
            (any::<u8>(), bytes(300)).prop_map(|(id, message)| ChapPacket::Success { id, message }),
            (any::<u8>(), bytes(300)).prop_map(|(id, message)| ChapPacket::Failure { id, message }),
            (5u8.., any::<u8>(), bytes(300)).prop_map(|(code, id, data)| ChapPacket::Unknown {
                code,
                id,
                data
            }),
        ]
    }

    proptest! {
        #[test]
        fn pap_round_trip(packet in pap_packet()) {
            match packet.to_bytes() {
                Ok(bytes) => {
                    prop_assert_eq!(bytes.len(), packet.buffer_len());
                    prop_assert_eq!(PapPacket::parse(&bytes).unwrap(), packet);
                }
                Err(_) => prop_assert!(packet.buffer_len() > 4 + 2 + 255),
            }
        }

        #[test]
        fn chap_round_trip(packet in chap_packet()) {
            match packet.to_bytes() {
                Ok(bytes) => {
                    prop_assert_eq!(bytes.len(), packet.buffer_len());
                    prop_assert_eq!(ChapPacket::parse(&bytes).unwrap(), packet);
                }
                Err(_) => {
                    let too_long = matches!(&packet, ChapPacket::Challenge { value, .. } | ChapPacket::Response { value, .. } if value.len() > 255);
                    prop_assert!(too_long);
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in bytes(600)) {
            // Whatever parses re-emits to the bytes within its Length field when canonical.
            if let Ok(p) = parse_chap_packet(&data) {
                let again = p.to_bytes().unwrap();
                prop_assert_eq!(ChapPacket::parse(&again).unwrap(), p);
            }
            if let Ok(p) = parse_pap_packet(&data) {
                let again = p.to_bytes().unwrap();
                let _ = p.to_string();
                prop_assert_eq!(PapPacket::parse(&again).unwrap(), p);
            }
        }
    }
}
