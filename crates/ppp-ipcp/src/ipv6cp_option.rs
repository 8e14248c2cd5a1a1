//! IPv6CP configuration options (RFC 5072 §4): wire types that parse and emit symmetrically.

use std::fmt;
use std::net::Ipv6Addr;

use crate::IpcpError;
use crate::tlv::{self, Hex};

/// A 64-bit IPv6 interface identifier (RFC 5072 §4.1), in network byte order.
///
/// The link-local address of an interface is `fe80::/64` followed by its identifier. The all-zero
/// identifier means "not known yet": a peer that sends it asks us to suggest one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct InterfaceId(pub [u8; 8]);

impl InterfaceId {
    /// The all-zero identifier ("please suggest one").
    pub const ZERO: Self = Self([0; 8]);

    /// Identifier from a 64-bit integer (big-endian).
    #[must_use]
    pub const fn from_u64(value: u64) -> Self {
        Self(value.to_be_bytes())
    }

    /// The identifier as a 64-bit integer (big-endian).
    #[must_use]
    pub const fn to_u64(self) -> u64 {
        u64::from_be_bytes(self.0)
    }

    /// Whether this is the all-zero identifier.
    #[must_use]
    pub const fn is_zero(self) -> bool {
        self.to_u64() == 0
    }

    /// The link-local address `fe80::/64` + this identifier.
    #[must_use]
    pub fn link_local(self) -> Ipv6Addr {
        let mut octets = [0; 16];
        octets[0] = 0xfe;
        octets[1] = 0x80;
        octets[8..].copy_from_slice(&self.0);
        Ipv6Addr::from(octets)
    }
}

impl From<u64> for InterfaceId {
    fn from(value: u64) -> Self {
        Self::from_u64(value)
    }
}

impl fmt::Debug for InterfaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InterfaceId({:#018x})", self.to_u64())
    }
}

/// Four colon-separated groups, as in the low half of an IPv6 address: `1234:5678:9abc:def0`.
impl fmt::Display for InterfaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = |i: usize| u16::from_be_bytes([self.0[i], self.0[i + 1]]);
        write!(f, "{:x}:{:x}:{:x}:{:x}", g(0), g(2), g(4), g(6))
    }
}

/// IPv6CP option types; an open enum so unknown types round-trip into Configure-Reject.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ipv6cpOptionKind {
    /// 1: Interface-Identifier.
    InterfaceIdentifier,
    /// 2: IPv6-Compression-Protocol.
    CompressionProtocol,
    /// Any other type.
    Unknown(u8),
}

impl From<u8> for Ipv6cpOptionKind {
    fn from(value: u8) -> Self {
        match value {
            1 => Self::InterfaceIdentifier,
            2 => Self::CompressionProtocol,
            other => Self::Unknown(other),
        }
    }
}

impl From<Ipv6cpOptionKind> for u8 {
    fn from(kind: Ipv6cpOptionKind) -> Self {
        match kind {
            Ipv6cpOptionKind::InterfaceIdentifier => 1,
            Ipv6cpOptionKind::CompressionProtocol => 2,
            Ipv6cpOptionKind::Unknown(other) => other,
        }
    }
}

impl fmt::Debug for Ipv6cpOptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InterfaceIdentifier => f.write_str("InterfaceIdentifier"),
            Self::CompressionProtocol => f.write_str("CompressionProtocol"),
            Self::Unknown(kind) => write!(f, "Unknown({kind:#04x})"),
        }
    }
}

/// One IPv6CP configuration option.
///
/// [`Ipv6cpOption::parse`] and [`Ipv6cpOption::emit`] are inverse; parsing never panics.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Ipv6cpOption {
    /// 1: Interface-Identifier.
    InterfaceIdentifier(InterfaceId),
    /// 2: IPv6-Compression-Protocol. Always rejected: no header compression is implemented.
    CompressionProtocol {
        /// The compression protocol (e.g. 0x004f for IPHC).
        protocol: u16,
        /// Protocol-specific parameters (at most 251 bytes).
        data: Vec<u8>,
    },
    /// An option type this crate does not know (`kind` should not be 1 or 2).
    Unknown {
        /// The option type.
        kind: u8,
        /// The data field (at most 253 bytes; longer data is truncated on emit).
        data: Vec<u8>,
    },
}

impl Ipv6cpOption {
    /// The option type.
    #[must_use]
    pub fn kind(&self) -> Ipv6cpOptionKind {
        match self {
            Self::InterfaceIdentifier(_) => Ipv6cpOptionKind::InterfaceIdentifier,
            Self::CompressionProtocol { .. } => Ipv6cpOptionKind::CompressionProtocol,
            Self::Unknown { kind, .. } => Ipv6cpOptionKind::Unknown(*kind),
        }
    }

    /// Decode one option from its type and data field (the bytes after type and length).
    pub fn parse(kind: u8, data: &[u8]) -> Result<Self, IpcpError> {
        Ok(match Ipv6cpOptionKind::from(kind) {
            Ipv6cpOptionKind::InterfaceIdentifier => {
                let id: [u8; 8] = data.try_into().map_err(|_| IpcpError::WrongDataLength {
                    kind,
                    expected: 8,
                    actual: data.len(),
                })?;
                Self::InterfaceIdentifier(InterfaceId(id))
            }
            Ipv6cpOptionKind::CompressionProtocol => match data {
                [hi, lo, rest @ ..] => Self::CompressionProtocol {
                    protocol: u16::from_be_bytes([*hi, *lo]),
                    data: rest.to_vec(),
                },
                _ => {
                    return Err(IpcpError::WrongDataLength {
                        kind,
                        expected: 2,
                        actual: data.len(),
                    });
                }
            },
            Ipv6cpOptionKind::Unknown(kind) => Self::Unknown {
                kind,
                data: data.to_vec(),
            },
        })
    }

    /// Decode a whole option list (the data of a Configure-* packet).
    pub fn parse_list(list: &[u8]) -> Result<Vec<Self>, IpcpError> {
        tlv::iter(list)
            .map(|item| item.and_then(|t| Self::parse(t.kind, t.data)))
            .collect()
    }

    /// Encoded size, type and length bytes included.
    #[must_use]
    pub fn buffer_len(&self) -> usize {
        2 + match self {
            Self::InterfaceIdentifier(_) => 8,
            Self::CompressionProtocol { data, .. } => (2 + data.len()).min(tlv::MAX_OPTION_DATA),
            Self::Unknown { data, .. } => data.len().min(tlv::MAX_OPTION_DATA),
        }
    }

    /// Append the encoded option (type, length, data) to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let kind = u8::from(self.kind());
        match self {
            Self::InterfaceIdentifier(id) => tlv::push(out, kind, &id.0),
            Self::CompressionProtocol { protocol, data } => {
                let mut buf = Vec::with_capacity(2 + data.len());
                buf.extend_from_slice(&protocol.to_be_bytes());
                buf.extend_from_slice(data);
                tlv::push(out, kind, &buf);
            }
            Self::Unknown { data, .. } => tlv::push(out, kind, data),
        }
    }

    /// Append every option of `options` to `out`.
    pub fn emit_list(options: &[Self], out: &mut Vec<u8>) {
        for option in options {
            option.emit(out);
        }
    }
}

impl fmt::Debug for Ipv6cpOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InterfaceIdentifier(id) => {
                f.debug_tuple("InterfaceIdentifier").field(id).finish()
            }
            Self::CompressionProtocol { protocol, data } => f
                .debug_struct("CompressionProtocol")
                .field("protocol", &format_args!("{protocol:#06x}"))
                .field("data", &Hex(data))
                .finish(),
            Self::Unknown { kind, data } => f
                .debug_struct("Unknown")
                .field("kind", &format_args!("{kind:#04x}"))
                .field("data", &Hex(data))
                .finish(),
        }
    }
}

/// pppd-style rendering without the angle brackets: `addr fe80::1234:5678:9abc:def0`.
impl fmt::Display for Ipv6cpOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InterfaceIdentifier(id) => write!(f, "addr fe80::{id}"),
            Self::CompressionProtocol { protocol, data } => {
                write!(f, "compress {protocol:#06x}")?;
                for b in data {
                    write!(f, " {b:02x}")?;
                }
                Ok(())
            }
            Self::Unknown { kind, data } => {
                write!(f, "option {kind:#04x}")?;
                for b in data {
                    write!(f, " {b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// Render an IPv6CP option list the way pppd logs it: `<addr fe80::1234:5678:9abc:def0>`.
#[must_use]
pub fn describe_ipv6cp_options(options: &[u8]) -> String {
    let mut text = String::new();
    for item in tlv::iter(options) {
        if !text.is_empty() {
            text.push(' ');
        }
        match item.and_then(|t| Ipv6cpOption::parse(t.kind, t.data)) {
            Ok(option) => text.push_str(&format!("<{option}>")),
            Err(error) => {
                text.push_str(&format!("<malformed: {error}>"));
                if !matches!(error, IpcpError::WrongDataLength { .. }) {
                    break;
                }
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ID: InterfaceId = InterfaceId::from_u64(0x1234_5678_9abc_def0);

    /// Golden encodings (layouts from RFC 5072 §4.1 and §4.2).
    #[test]
    fn golden_bytes() {
        let cases: Vec<(Ipv6cpOption, Vec<u8>)> = vec![
            (
                Ipv6cpOption::InterfaceIdentifier(ID),
                vec![0x01, 0x0a, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0],
            ),
            (
                Ipv6cpOption::InterfaceIdentifier(InterfaceId::ZERO),
                vec![0x01, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0],
            ),
            (
                Ipv6cpOption::CompressionProtocol {
                    protocol: 0x004f,
                    data: vec![0x00, 0x0f],
                },
                vec![0x02, 0x06, 0x00, 0x4f, 0x00, 0x0f],
            ),
            (
                Ipv6cpOption::Unknown {
                    kind: 0x07,
                    data: vec![],
                },
                vec![0x07, 0x02],
            ),
        ];
        for (option, bytes) in cases {
            let mut out = Vec::new();
            option.emit(&mut out);
            assert_eq!(out, bytes, "{option:?}");
            assert_eq!(option.buffer_len(), bytes.len());
            assert_eq!(Ipv6cpOption::parse_list(&bytes), Ok(vec![option]));
        }
    }

    #[test]
    fn wrong_sizes_are_typed_errors() {
        assert_eq!(
            Ipv6cpOption::parse_list(&[0x01, 0x06, 1, 2, 3, 4]),
            Err(IpcpError::WrongDataLength {
                kind: 1,
                expected: 8,
                actual: 4
            })
        );
        assert_eq!(
            Ipv6cpOption::parse_list(&[0x02, 0x02]),
            Err(IpcpError::WrongDataLength {
                kind: 2,
                expected: 2,
                actual: 0
            })
        );
        assert_eq!(
            Ipv6cpOption::parse_list(&[0x01, 0x0a, 0]),
            Err(IpcpError::BadOptionLength {
                offset: 0,
                kind: 1,
                length: 10,
                remaining: 3
            })
        );
    }

    #[test]
    fn interface_id_renderings() {
        assert_eq!(ID.to_string(), "1234:5678:9abc:def0");
        assert_eq!(format!("{ID:?}"), "InterfaceId(0x123456789abcdef0)");
        assert_eq!(
            ID.link_local(),
            "fe80::1234:5678:9abc:def0".parse::<Ipv6Addr>().unwrap()
        );
        assert!(InterfaceId::ZERO.is_zero());
        assert_eq!(InterfaceId::from(7).to_u64(), 7);
        let mut list = Vec::new();
        Ipv6cpOption::InterfaceIdentifier(ID).emit(&mut list);
        assert_eq!(
            describe_ipv6cp_options(&list),
            "<addr fe80::1234:5678:9abc:def0>"
        );
        assert_eq!(
            format!("{:?}", Ipv6cpOptionKind::from(0x99)),
            "Unknown(0x99)"
        );
    }

    fn any_option() -> impl Strategy<Value = Ipv6cpOption> {
        prop_oneof![
            any::<u64>().prop_map(|v| Ipv6cpOption::InterfaceIdentifier(InterfaceId::from(v))),
            (
                any::<u16>(),
                proptest::collection::vec(any::<u8>(), 0..=251)
            )
                .prop_map(|(protocol, data)| Ipv6cpOption::CompressionProtocol { protocol, data }),
            (3u8..=255, proptest::collection::vec(any::<u8>(), 0..=253))
                .prop_map(|(kind, data)| Ipv6cpOption::Unknown { kind, data }),
        ]
    }

    proptest! {
        #[test]
        fn list_round_trip(options in proptest::collection::vec(any_option(), 0..8)) {
            let mut bytes = Vec::new();
            Ipv6cpOption::emit_list(&options, &mut bytes);
            prop_assert_eq!(
                bytes.len(),
                options.iter().map(Ipv6cpOption::buffer_len).sum::<usize>()
            );
            prop_assert_eq!(Ipv6cpOption::parse_list(&bytes), Ok(options));
        }

        #[test]
        fn parse_then_emit_reproduces_input(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(options) = Ipv6cpOption::parse_list(&bytes) {
                let mut out = Vec::new();
                Ipv6cpOption::emit_list(&options, &mut out);
                prop_assert_eq!(out, bytes.clone());
            }
            let _ = describe_ipv6cp_options(&bytes);
        }
    }
}
