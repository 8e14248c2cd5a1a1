//! LCP option types and the typed LCP configuration.

use core::fmt;
use std::time::Duration;

use ppp_frame::{FcsKind, Protocol};

use crate::fsm::FsmConfig;

macro_rules! option_types {
    ($( $(#[$doc:meta])* $name:ident = $value:literal; )*) => {
        /// An LCP Configuration Option type. An open enum: unnamed types are kept in
        /// [`LcpOptionType::Unknown`] and Rejected verbatim; `Debug` prints them in hex.
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub enum LcpOptionType {
            $( $(#[$doc])* $name, )*
            /// A type without a name here.
            Unknown(u8),
        }

        impl LcpOptionType {
            /// The type byte.
            pub const fn number(self) -> u8 {
                match self {
                    $( LcpOptionType::$name => $value, )*
                    LcpOptionType::Unknown(n) => n,
                }
            }

            /// The option type for a byte.
            pub const fn from_number(n: u8) -> Self {
                match n {
                    $( $value => LcpOptionType::$name, )*
                    n => LcpOptionType::Unknown(n),
                }
            }
        }

        impl fmt::Debug for LcpOptionType {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $( LcpOptionType::$name => f.write_str(stringify!($name)), )*
                    LcpOptionType::Unknown(n) => write!(f, "Unknown({n:#04x})"),
                }
            }
        }
    };
}

option_types! {
    /// Maximum-Receive-Unit (1), RFC 1661 §6.1.
    Mru = 1;
    /// Async-Control-Character-Map (2), RFC 1662 §7.1.
    Accm = 2;
    /// Authentication-Protocol (3), RFC 1661 §6.2.
    AuthenticationProtocol = 3;
    /// Quality-Protocol (4), RFC 1661 §6.3.
    QualityProtocol = 4;
    /// Magic-Number (5), RFC 1661 §6.4.
    MagicNumber = 5;
    /// Protocol-Field-Compression (7), RFC 1661 §6.5.
    ProtocolFieldCompression = 7;
    /// Address-and-Control-Field-Compression (8), RFC 1661 §6.6.
    AddressControlFieldCompression = 8;
    /// FCS-Alternatives (9), RFC 1570.
    FcsAlternatives = 9;
    /// Callback (13), RFC 1570.
    Callback = 13;
    /// Multilink Maximum-Received-Reconstructed-Unit (17), RFC 1990.
    Mrru = 17;
    /// Multilink Short-Sequence-Number-Header-Format (18), RFC 1990.
    ShortSequenceNumberHeaderFormat = 18;
    /// Endpoint Discriminator (19), RFC 1990.
    EndpointDiscriminator = 19;
}

impl From<u8> for LcpOptionType {
    fn from(n: u8) -> Self {
        LcpOptionType::from_number(n)
    }
}

impl From<LcpOptionType> for u8 {
    fn from(kind: LcpOptionType) -> u8 {
        kind.number()
    }
}

/// CHAP algorithm byte for MD5 (RFC 1994).
pub const CHAP_MD5: u8 = 5;
/// CHAP algorithm byte for MS-CHAP (RFC 2433).
pub const CHAP_MICROSOFT_V1: u8 = 0x80;
/// CHAP algorithm byte for MS-CHAP-V2 (RFC 2759).
pub const CHAP_MICROSOFT_V2: u8 = 0x81;

/// An authentication method as named by the Authentication-Protocol option.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthProtocol {
    /// PAP (c023).
    Pap,
    /// CHAP with MD5 (c223, algorithm 5).
    ChapMd5,
    /// MS-CHAP (c223, algorithm 0x80).
    MsChapV1,
    /// MS-CHAP-V2 (c223, algorithm 0x81).
    MsChapV2,
}

impl AuthProtocol {
    /// The PPP protocol that carries the method's packets.
    pub const fn protocol(self) -> Protocol {
        match self {
            AuthProtocol::Pap => Protocol::Pap,
            _ => Protocol::Chap,
        }
    }

    /// The CHAP algorithm byte, if the method is a CHAP one.
    pub const fn chap_algorithm(self) -> Option<u8> {
        match self {
            AuthProtocol::Pap => None,
            AuthProtocol::ChapMd5 => Some(CHAP_MD5),
            AuthProtocol::MsChapV1 => Some(CHAP_MICROSOFT_V1),
            AuthProtocol::MsChapV2 => Some(CHAP_MICROSOFT_V2),
        }
    }

    /// The data of the Authentication-Protocol option naming this method.
    pub fn option_data(self) -> Vec<u8> {
        let mut data = self.protocol().number().to_be_bytes().to_vec();
        data.extend(self.chap_algorithm());
        data
    }

    /// The method an Authentication-Protocol option's data names, if we know it.
    ///
    /// PAP takes exactly the two protocol bytes, CHAP exactly one algorithm byte more.
    pub fn from_option_data(data: &[u8]) -> Option<Self> {
        match *data {
            [0xc0, 0x23] => Some(AuthProtocol::Pap),
            [0xc2, 0x23, CHAP_MD5] => Some(AuthProtocol::ChapMd5),
            [0xc2, 0x23, CHAP_MICROSOFT_V1] => Some(AuthProtocol::MsChapV1),
            [0xc2, 0x23, CHAP_MICROSOFT_V2] => Some(AuthProtocol::MsChapV2),
            _ => None,
        }
    }

    /// pppd's rendering: "pap", "chap MD5", "chap MS", "chap MS-v2".
    pub const fn log_name(self) -> &'static str {
        match self {
            AuthProtocol::Pap => "pap",
            AuthProtocol::ChapMd5 => "chap MD5",
            AuthProtocol::MsChapV1 => "chap MS",
            AuthProtocol::MsChapV2 => "chap MS-v2",
        }
    }
}

/// The FCS-Alternatives option value (RFC 1570): a set of FCS formats, one bit each.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FcsAlternatives(pub u8);

impl FcsAlternatives {
    /// No FCS.
    pub const NULL: FcsAlternatives = FcsAlternatives(0x01);
    /// The 16-bit CCITT FCS (the default FCS).
    pub const CCITT16: FcsAlternatives = FcsAlternatives(0x02);
    /// The 32-bit CCITT FCS.
    pub const CCITT32: FcsAlternatives = FcsAlternatives(0x04);

    /// Whether every format of `other` is in `self`.
    pub const fn contains(self, other: FcsAlternatives) -> bool {
        self.0 & other.0 == other.0
    }

    /// The formats in both sets.
    pub const fn intersection(self, other: FcsAlternatives) -> FcsAlternatives {
        FcsAlternatives(self.0 & other.0)
    }

    /// Both sets' formats.
    pub const fn union(self, other: FcsAlternatives) -> FcsAlternatives {
        FcsAlternatives(self.0 | other.0)
    }

    /// Whether no known format is in the set.
    pub const fn is_empty(self) -> bool {
        self.0 & 0x07 == 0
    }

    /// The strongest format of the set (32-bit, then 16-bit, then none), the one used when a
    /// set with several formats is agreed.
    pub const fn strongest(self) -> Option<FcsKind> {
        if self.0 & 0x04 != 0 {
            Some(FcsKind::Fcs32)
        } else if self.0 & 0x02 != 0 {
            Some(FcsKind::Fcs16)
        } else if self.0 & 0x01 != 0 {
            Some(FcsKind::Null)
        } else {
            None
        }
    }
}

impl fmt::Debug for FcsAlternatives {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FcsAlternatives({:#04x})", self.0)
    }
}

/// The class of an Endpoint Discriminator (RFC 1990 §5.1.3), an open enum.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndpointClass {
    /// 0: no address.
    Null,
    /// 1: locally assigned address (at most 20 bytes).
    Local,
    /// 2: IPv4 address (4 bytes).
    Ipv4,
    /// 3: IEEE 802.1 MAC address (6 bytes).
    Ieee802,
    /// 4: PPP Magic-Number block (at most 20 bytes, a multiple of 4).
    MagicNumberBlock,
    /// 5: public switched network directory number (at most 15 bytes).
    PhoneNumber,
    /// A class without a name here.
    Unknown(u8),
}

impl EndpointClass {
    /// The class byte.
    pub const fn number(self) -> u8 {
        match self {
            EndpointClass::Null => 0,
            EndpointClass::Local => 1,
            EndpointClass::Ipv4 => 2,
            EndpointClass::Ieee802 => 3,
            EndpointClass::MagicNumberBlock => 4,
            EndpointClass::PhoneNumber => 5,
            EndpointClass::Unknown(n) => n,
        }
    }

    /// The class for a byte.
    pub const fn from_number(n: u8) -> Self {
        match n {
            0 => EndpointClass::Null,
            1 => EndpointClass::Local,
            2 => EndpointClass::Ipv4,
            3 => EndpointClass::Ieee802,
            4 => EndpointClass::MagicNumberBlock,
            5 => EndpointClass::PhoneNumber,
            n => EndpointClass::Unknown(n),
        }
    }

    /// Whether `len` address bytes are valid for the class.
    pub const fn valid_address_len(self, len: usize) -> bool {
        match self {
            EndpointClass::Null => len == 0,
            EndpointClass::Local => len <= 20,
            EndpointClass::Ipv4 => len == 4,
            EndpointClass::Ieee802 => len == 6,
            EndpointClass::MagicNumberBlock => len <= 20 && len.is_multiple_of(4),
            EndpointClass::PhoneNumber => len <= 15,
            EndpointClass::Unknown(_) => false,
        }
    }
}

impl fmt::Debug for EndpointClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointClass::Null => f.write_str("Null"),
            EndpointClass::Local => f.write_str("Local"),
            EndpointClass::Ipv4 => f.write_str("Ipv4"),
            EndpointClass::Ieee802 => f.write_str("Ieee802"),
            EndpointClass::MagicNumberBlock => f.write_str("MagicNumberBlock"),
            EndpointClass::PhoneNumber => f.write_str("PhoneNumber"),
            EndpointClass::Unknown(n) => write!(f, "Unknown({n:#04x})"),
        }
    }
}

/// An Endpoint Discriminator (RFC 1990 §5.1.3): class and address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EndpointDiscriminator {
    /// The address class.
    pub class: EndpointClass,
    /// The address bytes.
    pub address: Vec<u8>,
}

impl EndpointDiscriminator {
    /// Parse the option data; `None` if the class is unknown or the address length does not fit
    /// the class.
    pub fn from_option_data(data: &[u8]) -> Option<Self> {
        let (&class, address) = data.split_first()?;
        let class = EndpointClass::from_number(class);
        class
            .valid_address_len(address.len())
            .then(|| EndpointDiscriminator {
                class,
                address: address.to_vec(),
            })
    }

    /// The option data (class byte, then address).
    pub fn option_data(&self) -> Vec<u8> {
        let mut data = Vec::with_capacity(self.address.len() + 1);
        data.push(self.class.number());
        data.extend_from_slice(&self.address[..self.address.len().min(20)]);
        data
    }
}

/// The default MRU (RFC 1661 §6.1).
pub const DEFAULT_MRU: u16 = 1500;
/// The smallest MRU we accept from the peer or adopt from a Nak (pppd's MINMRU).
pub const MIN_MRU: u16 = 128;

/// LCP configuration, mirroring pppd/RouterOS options. `LcpConfig::default()` behaves like pppd
/// on a serial line without options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LcpConfig {
    /// The MRU we request (pppd `mru`); requested only when it differs from 1500.
    pub mru: u16,
    /// The largest MRU we adopt when the peer Naks ours (RouterOS `max-mru`).
    pub max_mru: u16,
    /// Cap on the packets we send whatever the peer's MRU (pppd `mtu`, RouterOS `max-mtu`).
    pub mtu: Option<u16>,
    /// The ACCM we request: control characters the peer must escape toward us. `Some(0)` by
    /// default; `None` (pppd `default-asyncmap`, or a PPPoE link) does not negotiate it.
    pub accm: Option<u32>,
    /// Negotiate a Magic-Number and detect loopback (pppd `nomagic` turns it off).
    pub magic: bool,
    /// Request and accept Protocol-Field-Compression (pppd `nopcomp` turns it off).
    pub pfc: bool,
    /// Request and accept Address-and-Control-Field-Compression (pppd `noaccomp` turns it off).
    pub acfc: bool,
    /// FCS formats we request to receive (RFC 1570); `None` does not negotiate.
    pub fcs_alternatives: Option<FcsAlternatives>,
    /// FCS formats we are able to send when the peer requests them.
    pub accept_fcs: FcsAlternatives,
    /// Methods we agree to authenticate ourselves with when the peer asks, most preferred first.
    /// Empty: Reject the Authentication-Protocol option.
    pub allow: Vec<AuthProtocol>,
    /// Methods we require the peer to authenticate with (pppd `require-pap`, `require-chap`),
    /// most preferred first. Empty: no authentication of the peer.
    pub require: Vec<AuthProtocol>,
    /// Link Quality Reporting period in hundredths of a second (RFC 1989) that we request and
    /// whether we accept LQR at all; `None`: do not request, Reject the peer's.
    pub lqr_period: Option<u32>,
    /// Multilink MRRU to request (pppd `mrru`); also whether we accept the peer's MRRU.
    pub mrru: Option<u16>,
    /// Request and accept short sequence numbers for Multilink (pppd `ssnhf`).
    pub ssnhf: bool,
    /// Our Endpoint Discriminator (pppd `endpoint`).
    pub endpoint_discriminator: Option<EndpointDiscriminator>,
    /// Send an Echo-Request this often once Opened (pppd `lcp-echo-interval`); `None`: never.
    pub echo_interval: Option<Duration>,
    /// Declare the peer dead after this many unanswered Echo-Requests (pppd
    /// `lcp-echo-failure`); 0: never.
    pub echo_failure: u32,
    /// Send an Echo-Request only when nothing arrived from the peer during the last interval,
    /// and count only such silent intervals toward `echo_failure` (pppd `lcp-echo-adaptive`;
    /// RouterOS `keepalive-timeout` behaves so). The link reports traffic with
    /// [`Lcp::note_traffic`](super::Lcp::note_traffic).
    pub echo_adaptive: bool,
    /// Restart timer and counters.
    pub fsm: FsmConfig,
    /// pppd `passive`: when our Configure-Requests go unanswered, keep waiting for the peer.
    pub passive: bool,
    /// pppd `silent`: send nothing until the peer's Configure-Request arrives.
    pub silent: bool,
    /// Our Magic-Number seen in this many consecutive Configure-Requests means the line is looped
    /// back (pppd `lcp-max-loopback`-like; 0 disables the check).
    pub loopback_fail: u32,
}

impl Default for LcpConfig {
    fn default() -> Self {
        LcpConfig {
            mru: DEFAULT_MRU,
            max_mru: DEFAULT_MRU,
            mtu: None,
            accm: Some(0),
            magic: true,
            pfc: true,
            acfc: true,
            fcs_alternatives: None,
            accept_fcs: FcsAlternatives::CCITT16,
            allow: vec![
                AuthProtocol::ChapMd5,
                AuthProtocol::MsChapV2,
                AuthProtocol::MsChapV1,
                AuthProtocol::Pap,
            ],
            require: Vec::new(),
            lqr_period: None,
            mrru: None,
            ssnhf: false,
            endpoint_discriminator: None,
            echo_interval: None,
            echo_failure: 0,
            echo_adaptive: false,
            fsm: FsmConfig::default(),
            passive: false,
            silent: false,
            loopback_fail: 5,
        }
    }
}

impl LcpConfig {
    /// Defaults for a link without async framing (PPPoE, RFC 2516): no ACCM, no PFC/ACFC, MRU
    /// 1492.
    pub fn pppoe() -> Self {
        LcpConfig {
            mru: 1492,
            max_mru: 1492,
            accm: None,
            pfc: false,
            acfc: false,
            ..LcpConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_option_data_round_trips() {
        let cases: &[(AuthProtocol, &[u8])] = &[
            (AuthProtocol::Pap, &[0xc0, 0x23]),
            (AuthProtocol::ChapMd5, &[0xc2, 0x23, 0x05]),
            (AuthProtocol::MsChapV1, &[0xc2, 0x23, 0x80]),
            (AuthProtocol::MsChapV2, &[0xc2, 0x23, 0x81]),
        ];
        for &(auth, data) in cases {
            assert_eq!(auth.option_data(), data);
            assert_eq!(AuthProtocol::from_option_data(data), Some(auth));
        }
        assert_eq!(AuthProtocol::from_option_data(&[0xc2, 0x23]), None);
        assert_eq!(AuthProtocol::from_option_data(&[0xc2, 0x27]), None);
        assert_eq!(AuthProtocol::from_option_data(&[0xc0, 0x23, 0]), None);
    }

    #[test]
    fn endpoint_discriminator_lengths() {
        let cases: &[(&[u8], bool)] = &[
            (&[0], true),
            (&[0, 1], false),
            (&[1, 1, 2, 3], true),
            (&[2, 10, 0, 0, 1], true),
            (&[2, 10, 0, 0], false),
            (&[3, 0, 1, 2, 3, 4, 5], true),
            (&[4, 1, 2, 3, 4, 5, 6, 7, 8], true),
            (&[4, 1, 2, 3], false),
            (&[5, b'5', b'5', b'5'], true),
            (&[6, 1], false),
            (&[], false),
        ];
        for &(data, valid) in cases {
            let parsed = EndpointDiscriminator::from_option_data(data);
            assert_eq!(parsed.is_some(), valid, "{data:?}");
            if let Some(ed) = parsed {
                assert_eq!(ed.option_data(), data);
            }
        }
    }

    #[test]
    fn option_types_debug_in_hex() {
        assert_eq!(format!("{:?}", LcpOptionType::from(0x42)), "Unknown(0x42)");
        assert_eq!(
            LcpOptionType::from(19),
            LcpOptionType::EndpointDiscriminator
        );
        for n in 0..=u8::MAX {
            assert_eq!(LcpOptionType::from(n).number(), n);
        }
    }

    #[test]
    fn fcs_alternatives_pick_the_strongest() {
        assert_eq!(FcsAlternatives(0x07).strongest(), Some(FcsKind::Fcs32));
        assert_eq!(FcsAlternatives(0x03).strongest(), Some(FcsKind::Fcs16));
        assert_eq!(FcsAlternatives(0x01).strongest(), Some(FcsKind::Null));
        assert_eq!(FcsAlternatives(0x08).strongest(), None);
        assert!(FcsAlternatives(0x08).is_empty());
    }
}
