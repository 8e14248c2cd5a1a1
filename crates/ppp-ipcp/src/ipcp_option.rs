//! IPCP configuration options (RFC 1332 §3, RFC 1877): wire types that parse and emit
//! symmetrically.

use std::fmt;
use std::net::Ipv4Addr;

use crate::IpcpError;
use crate::tlv::{self, Hex};

/// The IP-Compression-Protocol value of Van Jacobson TCP/IP header compression (RFC 1332 §3.2).
///
/// This crate does not implement VJ compression: a peer asking for it is Configure-Rejected and we
/// never request it.
pub const VAN_JACOBSON: u16 = 0x002D;

/// IPCP option types; an open enum so unknown types round-trip into Configure-Reject.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpcpOptionKind {
    /// 1: IP-Addresses (RFC 1172, deprecated by RFC 1332).
    IpAddresses,
    /// 2: IP-Compression-Protocol.
    IpCompressionProtocol,
    /// 3: IP-Address.
    IpAddress,
    /// 129: Primary DNS Server Address (RFC 1877).
    PrimaryDns,
    /// 130: Primary NBNS Server Address (RFC 1877).
    PrimaryNbns,
    /// 131: Secondary DNS Server Address (RFC 1877).
    SecondaryDns,
    /// 132: Secondary NBNS Server Address (RFC 1877).
    SecondaryNbns,
    /// Any other type.
    Unknown(u8),
}

impl From<u8> for IpcpOptionKind {
    fn from(value: u8) -> Self {
        match value {
            1 => Self::IpAddresses,
            2 => Self::IpCompressionProtocol,
            3 => Self::IpAddress,
            129 => Self::PrimaryDns,
            130 => Self::PrimaryNbns,
            131 => Self::SecondaryDns,
            132 => Self::SecondaryNbns,
            other => Self::Unknown(other),
        }
    }
}

impl From<IpcpOptionKind> for u8 {
    fn from(kind: IpcpOptionKind) -> Self {
        match kind {
            IpcpOptionKind::IpAddresses => 1,
            IpcpOptionKind::IpCompressionProtocol => 2,
            IpcpOptionKind::IpAddress => 3,
            IpcpOptionKind::PrimaryDns => 129,
            IpcpOptionKind::PrimaryNbns => 130,
            IpcpOptionKind::SecondaryDns => 131,
            IpcpOptionKind::SecondaryNbns => 132,
            IpcpOptionKind::Unknown(other) => other,
        }
    }
}

impl fmt::Debug for IpcpOptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IpAddresses => f.write_str("IpAddresses"),
            Self::IpCompressionProtocol => f.write_str("IpCompressionProtocol"),
            Self::IpAddress => f.write_str("IpAddress"),
            Self::PrimaryDns => f.write_str("PrimaryDns"),
            Self::PrimaryNbns => f.write_str("PrimaryNbns"),
            Self::SecondaryDns => f.write_str("SecondaryDns"),
            Self::SecondaryNbns => f.write_str("SecondaryNbns"),
            Self::Unknown(kind) => write!(f, "Unknown({kind:#04x})"),
        }
    }
}

/// One IPCP configuration option.
///
/// [`IpcpOption::parse`] and [`IpcpOption::emit`] are inverse: every option that parses emits
/// the same bytes. Parsing never panics; a known type with a data field of the wrong size is an
/// [`IpcpError::WrongDataLength`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum IpcpOption {
    /// 1: IP-Addresses, deprecated: the sender's and the receiver's addresses. Always rejected.
    IpAddresses {
        /// Address of the sender of the Configure-Request.
        source: Ipv4Addr,
        /// Address of its peer.
        destination: Ipv4Addr,
    },
    /// 2: IP-Compression-Protocol: the protocol and its parameters (for VJ: max slot id and
    /// comp-slot-id). Always rejected: no header compression is implemented.
    IpCompressionProtocol {
        /// Compression protocol, e.g. [`VAN_JACOBSON`].
        protocol: u16,
        /// Protocol-specific parameters (at most 251 bytes).
        data: Vec<u8>,
    },
    /// 3: IP-Address: the address the sender wants to use, 0.0.0.0 to ask the peer for one.
    IpAddress(Ipv4Addr),
    /// 129: Primary DNS Server Address.
    PrimaryDns(Ipv4Addr),
    /// 130: Primary NBNS Server Address.
    PrimaryNbns(Ipv4Addr),
    /// 131: Secondary DNS Server Address.
    SecondaryDns(Ipv4Addr),
    /// 132: Secondary NBNS Server Address.
    SecondaryNbns(Ipv4Addr),
    /// An option type this crate does not know; `kind` should not be one of the types above
    /// (such an option would parse back as the known variant).
    Unknown {
        /// The option type.
        kind: u8,
        /// The data field (at most 253 bytes; longer data is truncated on emit).
        data: Vec<u8>,
    },
}

fn address(kind: u8, data: &[u8]) -> Result<Ipv4Addr, IpcpError> {
    let octets: [u8; 4] = data.try_into().map_err(|_| IpcpError::WrongDataLength {
        kind,
        expected: 4,
        actual: data.len(),
    })?;
    Ok(Ipv4Addr::from(octets))
}

impl IpcpOption {
    /// The option type.
    #[must_use]
    pub fn kind(&self) -> IpcpOptionKind {
        match self {
            Self::IpAddresses { .. } => IpcpOptionKind::IpAddresses,
            Self::IpCompressionProtocol { .. } => IpcpOptionKind::IpCompressionProtocol,
            Self::IpAddress(_) => IpcpOptionKind::IpAddress,
            Self::PrimaryDns(_) => IpcpOptionKind::PrimaryDns,
            Self::PrimaryNbns(_) => IpcpOptionKind::PrimaryNbns,
            Self::SecondaryDns(_) => IpcpOptionKind::SecondaryDns,
            Self::SecondaryNbns(_) => IpcpOptionKind::SecondaryNbns,
            Self::Unknown { kind, .. } => IpcpOptionKind::Unknown(*kind),
        }
    }

    /// Decode one option from its type and data field (the bytes after type and length).
    pub fn parse(kind: u8, data: &[u8]) -> Result<Self, IpcpError> {
        Ok(match IpcpOptionKind::from(kind) {
            IpcpOptionKind::IpAddresses => {
                if data.len() != 8 {
                    return Err(IpcpError::WrongDataLength {
                        kind,
                        expected: 8,
                        actual: data.len(),
                    });
                }
                Self::IpAddresses {
                    source: address(kind, &data[..4])?,
                    destination: address(kind, &data[4..])?,
                }
            }
            IpcpOptionKind::IpCompressionProtocol => match data {
                [hi, lo, rest @ ..] => Self::IpCompressionProtocol {
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
            IpcpOptionKind::IpAddress => Self::IpAddress(address(kind, data)?),
            IpcpOptionKind::PrimaryDns => Self::PrimaryDns(address(kind, data)?),
            IpcpOptionKind::PrimaryNbns => Self::PrimaryNbns(address(kind, data)?),
            IpcpOptionKind::SecondaryDns => Self::SecondaryDns(address(kind, data)?),
            IpcpOptionKind::SecondaryNbns => Self::SecondaryNbns(address(kind, data)?),
            IpcpOptionKind::Unknown(kind) => Self::Unknown {
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
            Self::IpAddresses { .. } => 8,
            Self::IpCompressionProtocol { data, .. } => (2 + data.len()).min(tlv::MAX_OPTION_DATA),
            Self::IpAddress(_)
            | Self::PrimaryDns(_)
            | Self::PrimaryNbns(_)
            | Self::SecondaryDns(_)
            | Self::SecondaryNbns(_) => 4,
            Self::Unknown { data, .. } => data.len().min(tlv::MAX_OPTION_DATA),
        }
    }

    /// Append the encoded option (type, length, data) to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let kind = u8::from(self.kind());
        match self {
            Self::IpAddresses {
                source,
                destination,
            } => {
                let mut data = [0; 8];
                data[..4].copy_from_slice(&source.octets());
                data[4..].copy_from_slice(&destination.octets());
                tlv::push(out, kind, &data);
            }
            Self::IpCompressionProtocol { protocol, data } => {
                let mut buf = Vec::with_capacity(2 + data.len());
                buf.extend_from_slice(&protocol.to_be_bytes());
                buf.extend_from_slice(data);
                tlv::push(out, kind, &buf);
            }
            Self::IpAddress(a)
            | Self::PrimaryDns(a)
            | Self::PrimaryNbns(a)
            | Self::SecondaryDns(a)
            | Self::SecondaryNbns(a) => tlv::push(out, kind, &a.octets()),
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

impl fmt::Debug for IpcpOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IpAddresses {
                source,
                destination,
            } => f
                .debug_struct("IpAddresses")
                .field("source", source)
                .field("destination", destination)
                .finish(),
            Self::IpCompressionProtocol { protocol, data } => f
                .debug_struct("IpCompressionProtocol")
                .field("protocol", &format_args!("{protocol:#06x}"))
                .field("data", &Hex(data))
                .finish(),
            Self::IpAddress(a) => f.debug_tuple("IpAddress").field(a).finish(),
            Self::PrimaryDns(a) => f.debug_tuple("PrimaryDns").field(a).finish(),
            Self::PrimaryNbns(a) => f.debug_tuple("PrimaryNbns").field(a).finish(),
            Self::SecondaryDns(a) => f.debug_tuple("SecondaryDns").field(a).finish(),
            Self::SecondaryNbns(a) => f.debug_tuple("SecondaryNbns").field(a).finish(),
            Self::Unknown { kind, data } => f
                .debug_struct("Unknown")
                .field("kind", &format_args!("{kind:#04x}"))
                .field("data", &Hex(data))
                .finish(),
        }
    }
}

/// pppd-style rendering without the angle brackets: `addr 192.0.2.1`, `ms-dns1 0.0.0.0`.
impl fmt::Display for IpcpOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IpAddresses {
                source,
                destination,
            } => write!(f, "addrs {source} {destination}"),
            Self::IpCompressionProtocol { protocol, data } => {
                if *protocol == VAN_JACOBSON {
                    f.write_str("compress VJ")?;
                } else {
                    write!(f, "compress {protocol:#06x}")?;
                }
                for b in data {
                    write!(f, " {b:02x}")?;
                }
                Ok(())
            }
            Self::IpAddress(a) => write!(f, "addr {a}"),
            Self::PrimaryDns(a) => write!(f, "ms-dns1 {a}"),
            Self::SecondaryDns(a) => write!(f, "ms-dns2 {a}"),
            Self::PrimaryNbns(a) => write!(f, "ms-wins1 {a}"),
            Self::SecondaryNbns(a) => write!(f, "ms-wins2 {a}"),
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

/// Render an IPCP option list the way pppd logs it: `<addr 192.0.2.1> <ms-dns1 0.0.0.0>`.
/// A malformed tail or a badly sized known option is shown as `<malformed ...>`.
#[must_use]
pub fn describe_ipcp_options(options: &[u8]) -> String {
    let mut text = String::new();
    for item in tlv::iter(options) {
        if !text.is_empty() {
            text.push(' ');
        }
        match item.and_then(|t| IpcpOption::parse(t.kind, t.data)) {
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

    const A1: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const A2: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

    /// Golden encodings (layouts from RFC 1332 §3 and RFC 1877 §1).
    #[test]
    fn golden_bytes() {
        let cases: Vec<(IpcpOption, Vec<u8>)> = vec![
            (
                IpcpOption::IpAddresses {
                    source: A1,
                    destination: A2,
                },
                vec![0x01, 0x0a, 192, 0, 2, 1, 198, 51, 100, 7],
            ),
            (
                IpcpOption::IpCompressionProtocol {
                    protocol: VAN_JACOBSON,
                    data: vec![0x0f, 0x01],
                },
                vec![0x02, 0x06, 0x00, 0x2d, 0x0f, 0x01],
            ),
            (IpcpOption::IpAddress(A1), vec![0x03, 0x06, 192, 0, 2, 1]),
            (
                IpcpOption::IpAddress(Ipv4Addr::UNSPECIFIED),
                vec![0x03, 0x06, 0, 0, 0, 0],
            ),
            (
                IpcpOption::PrimaryDns(A2),
                vec![0x81, 0x06, 198, 51, 100, 7],
            ),
            (
                IpcpOption::PrimaryNbns(A2),
                vec![0x82, 0x06, 198, 51, 100, 7],
            ),
            (IpcpOption::SecondaryDns(A1), vec![0x83, 0x06, 192, 0, 2, 1]),
            (
                IpcpOption::SecondaryNbns(A1),
                vec![0x84, 0x06, 192, 0, 2, 1],
            ),
            (
                IpcpOption::Unknown {
                    kind: 0x90,
                    data: vec![0xaa],
                },
                vec![0x90, 0x03, 0xaa],
            ),
        ];
        for (option, bytes) in cases {
            let mut out = Vec::new();
            option.emit(&mut out);
            assert_eq!(out, bytes, "{option:?}");
            assert_eq!(option.buffer_len(), bytes.len());
            assert_eq!(IpcpOption::parse(bytes[0], &bytes[2..]), Ok(option.clone()));
            assert_eq!(IpcpOption::parse_list(&bytes), Ok(vec![option]));
        }
    }

    #[test]
    fn wrong_sizes_are_typed_errors() {
        let cases: &[(&[u8], IpcpError)] = &[
            (
                &[0x03, 0x05, 1, 2, 3],
                IpcpError::WrongDataLength {
                    kind: 3,
                    expected: 4,
                    actual: 3,
                },
            ),
            (
                &[0x81, 0x07, 1, 2, 3, 4, 5],
                IpcpError::WrongDataLength {
                    kind: 0x81,
                    expected: 4,
                    actual: 5,
                },
            ),
            (
                &[0x01, 0x06, 1, 2, 3, 4],
                IpcpError::WrongDataLength {
                    kind: 1,
                    expected: 8,
                    actual: 4,
                },
            ),
            (
                &[0x02, 0x03, 0],
                IpcpError::WrongDataLength {
                    kind: 2,
                    expected: 2,
                    actual: 1,
                },
            ),
            (
                &[0x03, 0x00],
                IpcpError::BadOptionLength {
                    offset: 0,
                    kind: 3,
                    length: 0,
                    remaining: 2,
                },
            ),
            (
                &[0x03, 0x06, 1, 2],
                IpcpError::BadOptionLength {
                    offset: 0,
                    kind: 3,
                    length: 6,
                    remaining: 4,
                },
            ),
        ];
        for (bytes, error) in cases {
            assert_eq!(IpcpOption::parse_list(bytes), Err(*error), "{bytes:02x?}");
        }
    }

    #[test]
    fn debug_prints_unknown_in_hex() {
        let option = IpcpOption::Unknown {
            kind: 0xfe,
            data: vec![1, 0xff],
        };
        assert_eq!(
            format!("{option:?}"),
            "Unknown { kind: 0xfe, data: [01 ff] }"
        );
        assert_eq!(format!("{:?}", IpcpOptionKind::from(0x7f)), "Unknown(0x7f)");
        assert_eq!(u8::from(IpcpOptionKind::from(0x7f)), 0x7f);
    }

    #[test]
    fn describes_like_pppd() {
        let mut list = Vec::new();
        IpcpOption::emit_list(
            &[
                IpcpOption::IpAddress(A1),
                IpcpOption::PrimaryDns(Ipv4Addr::UNSPECIFIED),
                IpcpOption::SecondaryDns(Ipv4Addr::UNSPECIFIED),
            ],
            &mut list,
        );
        assert_eq!(
            describe_ipcp_options(&list),
            "<addr 192.0.2.1> <ms-dns1 0.0.0.0> <ms-dns2 0.0.0.0>"
        );
        assert_eq!(
            describe_ipcp_options(&[0x02, 0x06, 0x00, 0x2d, 0x0f, 0x01]),
            "<compress VJ 0f 01>"
        );
        assert!(describe_ipcp_options(&[0x03, 0x09]).starts_with("<malformed"));
    }

    fn any_option() -> impl Strategy<Value = IpcpOption> {
        let addr = any::<[u8; 4]>().prop_map(Ipv4Addr::from);
        prop_oneof![
            (addr.clone(), addr.clone()).prop_map(|(source, destination)| {
                IpcpOption::IpAddresses {
                    source,
                    destination,
                }
            }),
            (
                any::<u16>(),
                proptest::collection::vec(any::<u8>(), 0..=251)
            )
                .prop_map(|(protocol, data)| IpcpOption::IpCompressionProtocol { protocol, data }),
            addr.clone().prop_map(IpcpOption::IpAddress),
            addr.clone().prop_map(IpcpOption::PrimaryDns),
            addr.clone().prop_map(IpcpOption::PrimaryNbns),
            addr.clone().prop_map(IpcpOption::SecondaryDns),
            addr.prop_map(IpcpOption::SecondaryNbns),
            (
                any::<u8>().prop_filter("unknown type", |k| matches!(
                    IpcpOptionKind::from(*k),
                    IpcpOptionKind::Unknown(_)
                )),
                proptest::collection::vec(any::<u8>(), 0..=253)
            )
                .prop_map(|(kind, data)| IpcpOption::Unknown { kind, data }),
        ]
    }

    proptest! {
        #[test]
        fn list_round_trip(options in proptest::collection::vec(any_option(), 0..8)) {
            let mut bytes = Vec::new();
            IpcpOption::emit_list(&options, &mut bytes);
            prop_assert_eq!(
                bytes.len(),
                options.iter().map(IpcpOption::buffer_len).sum::<usize>()
            );
            prop_assert_eq!(IpcpOption::parse_list(&bytes), Ok(options));
        }

        #[test]
        fn parse_then_emit_reproduces_input(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(options) = IpcpOption::parse_list(&bytes) {
                let mut out = Vec::new();
                IpcpOption::emit_list(&options, &mut out);
                prop_assert_eq!(out, bytes.clone());
            }
            let _ = describe_ipcp_options(&bytes);
        }
    }
}
