//! The authentication methods and their LCP Authentication-Protocol option encoding.

use std::fmt;

use ppp_frame::Protocol;

/// CHAP algorithm byte for MD5 (RFC 1994).
pub const CHAP_MD5: u8 = 5;
/// CHAP algorithm byte for MS-CHAP (RFC 2433).
pub const CHAP_MICROSOFT_V1: u8 = 0x80;
/// CHAP algorithm byte for MS-CHAP-V2 (RFC 2759).
pub const CHAP_MICROSOFT_V2: u8 = 0x81;

/// An authentication method as named by LCP's Authentication-Protocol option (type 3).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthProtocol {
    /// PAP (protocol 0xC023, no data).
    Pap,
    /// CHAP with MD5 (0xC223, algorithm 5).
    ChapMd5,
    /// MS-CHAP (0xC223, algorithm 0x80).
    MsChapV1,
    /// MS-CHAP-V2 (0xC223, algorithm 0x81).
    MsChapV2,
    /// Any other protocol or CHAP algorithm; no machine implements it.
    Unknown {
        /// The protocol number.
        protocol: u16,
        /// The option data after the protocol number.
        algorithm: Option<u8>,
    },
}

impl AuthProtocol {
    /// The PPP protocol that carries the method's packets.
    pub const fn protocol(self) -> Protocol {
        match self {
            AuthProtocol::Pap => Protocol::Pap,
            AuthProtocol::ChapMd5 | AuthProtocol::MsChapV1 | AuthProtocol::MsChapV2 => {
                Protocol::Chap
            }
            AuthProtocol::Unknown { protocol, .. } => Protocol::from_number(protocol),
        }
    }

    /// The CHAP algorithm byte, if the method is a CHAP one.
    pub const fn chap_algorithm(self) -> Option<u8> {
        match self {
            AuthProtocol::Pap => None,
            AuthProtocol::ChapMd5 => Some(CHAP_MD5),
            AuthProtocol::MsChapV1 => Some(CHAP_MICROSOFT_V1),
            AuthProtocol::MsChapV2 => Some(CHAP_MICROSOFT_V2),
            AuthProtocol::Unknown { algorithm, .. } => algorithm,
        }
    }

    /// Whether this crate has machines for the method.
    pub const fn is_supported(self) -> bool {
        !matches!(self, AuthProtocol::Unknown { .. })
    }

    /// The data of the Authentication-Protocol option naming this method.
    pub fn option_data(self) -> Vec<u8> {
        let mut data = self.protocol().number().to_be_bytes().to_vec();
        data.extend(self.chap_algorithm());
        data
    }

    /// The method an Authentication-Protocol option's data names: `None` only when the data is
    /// shorter than the two protocol bytes. Known protocols with an unexpected length or
    /// algorithm, and other protocols, come back as [`AuthProtocol::Unknown`] (keeping only
    /// the first data byte after the protocol).
    pub fn from_option_data(data: &[u8]) -> Option<Self> {
        let [hi, lo, ref rest @ ..] = *data else {
            return None;
        };
        let protocol = u16::from_be_bytes([hi, lo]);
        Some(match (protocol, rest) {
            (0xC023, []) => AuthProtocol::Pap,
            (0xC223, [CHAP_MD5]) => AuthProtocol::ChapMd5,
            (0xC223, [CHAP_MICROSOFT_V1]) => AuthProtocol::MsChapV1,
            (0xC223, [CHAP_MICROSOFT_V2]) => AuthProtocol::MsChapV2,
            _ => AuthProtocol::Unknown {
                protocol,
                algorithm: rest.first().copied(),
            },
        })
    }

    /// pppd's rendering: "pap", "chap MD5", "chap MS", "chap MS-v2".
    pub const fn log_name(self) -> &'static str {
        match self {
            AuthProtocol::Pap => "pap",
            AuthProtocol::ChapMd5 => "chap MD5",
            AuthProtocol::MsChapV1 => "chap MS",
            AuthProtocol::MsChapV2 => "chap MS-v2",
            AuthProtocol::Unknown { .. } => "unknown",
        }
    }
}

impl fmt::Debug for AuthProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthProtocol::Pap => f.write_str("Pap"),
            AuthProtocol::ChapMd5 => f.write_str("ChapMd5"),
            AuthProtocol::MsChapV1 => f.write_str("MsChapV1"),
            AuthProtocol::MsChapV2 => f.write_str("MsChapV2"),
            AuthProtocol::Unknown {
                protocol,
                algorithm: Some(a),
            } => {
                write!(f, "Unknown({protocol:#06x}, {a:#04x})")
            }
            AuthProtocol::Unknown {
                protocol,
                algorithm: None,
            } => write!(f, "Unknown({protocol:#06x})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_data_table() {
        let table: &[(AuthProtocol, &[u8])] = &[
            (AuthProtocol::Pap, &[0xc0, 0x23]),
            (AuthProtocol::ChapMd5, &[0xc2, 0x23, 5]),
            (AuthProtocol::MsChapV1, &[0xc2, 0x23, 0x80]),
            (AuthProtocol::MsChapV2, &[0xc2, 0x23, 0x81]),
            (
                AuthProtocol::Unknown {
                    protocol: 0xc227,
                    algorithm: None,
                },
                &[0xc2, 0x27],
            ),
            (
                AuthProtocol::Unknown {
                    protocol: 0xc223,
                    algorithm: Some(6),
                },
                &[0xc2, 0x23, 6],
            ),
        ];
        for (method, data) in table {
            assert_eq!(method.option_data(), *data, "{method:?}");
            assert_eq!(AuthProtocol::from_option_data(data), Some(*method));
        }
        assert_eq!(AuthProtocol::from_option_data(&[0xc0]), None);
        assert_eq!(
            format!(
                "{:?}",
                AuthProtocol::from_option_data(&[0xc2, 0x23, 6]).unwrap()
            ),
            "Unknown(0xc223, 0x06)"
        );
        assert_eq!(AuthProtocol::MsChapV2.protocol(), Protocol::Chap);
        assert!(
            !AuthProtocol::Unknown {
                protocol: 1,
                algorithm: None
            }
            .is_supported()
        );
    }
}
