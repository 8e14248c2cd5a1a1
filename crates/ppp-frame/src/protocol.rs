//! PPP protocol numbers (the Protocol field of RFC 1661 §2).

use core::fmt;

macro_rules! protocols {
    ($( $(#[$doc:meta])* $name:ident = $value:literal, $label:literal; )*) => {
        /// A PPP protocol number.
        ///
        /// An open enum: numbers without a name here are kept in [`Protocol::Unknown`], so they
        /// round-trip into a Protocol-Reject. `Debug` prints unknown numbers in hex.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Protocol {
            $( $(#[$doc])* $name, )*
            /// A protocol number this crate has no name for.
            Unknown(u16),
        }

        impl Protocol {
            /// The 16-bit protocol number.
            pub const fn number(self) -> u16 {
                match self {
                    $( Protocol::$name => $value, )*
                    Protocol::Unknown(n) => n,
                }
            }

            /// The protocol for a 16-bit number.
            pub const fn from_number(n: u16) -> Self {
                match n {
                    $( $value => Protocol::$name, )*
                    n => Protocol::Unknown(n),
                }
            }

            /// The short name pppd uses in its logs ("LCP", "IPCP", ...), if the number is known.
            pub const fn name(self) -> Option<&'static str> {
                match self {
                    $( Protocol::$name => Some($label), )*
                    Protocol::Unknown(_) => None,
                }
            }
        }
    };
}

protocols! {
    /// Internet Protocol version 4 datagrams.
    Ipv4 = 0x0021, "IP";
    /// Van Jacobson compressed TCP/IP (RFC 1144).
    VjCompressed = 0x002D, "VJC_COMP";
    /// Van Jacobson uncompressed TCP/IP (RFC 1144).
    VjUncompressed = 0x002F, "VJC_UNCOMP";
    /// Multilink fragments (RFC 1990).
    Mp = 0x003D, "MP";
    /// Internet Protocol version 6 datagrams.
    Ipv6 = 0x0057, "IPV6";
    /// Compressed datagrams on a single link of a bundle (RFC 1962).
    IndividualLinkCompressed = 0x00FB, "ILCOMP";
    /// Compressed datagrams (RFC 1962).
    Compressed = 0x00FD, "COMP";
    /// MPLS unicast (RFC 3032).
    MplsUnicast = 0x0281, "MPLS";
    /// IP Control Protocol (RFC 1332).
    Ipcp = 0x8021, "IPCP";
    /// Encryption Control Protocol (RFC 1968).
    Ecp = 0x8053, "ECP";
    /// IPv6 Control Protocol (RFC 5072).
    Ipv6cp = 0x8057, "IPV6CP";
    /// Compression Control Protocol on a single link of a bundle (RFC 1962).
    IndividualLinkCcp = 0x80FB, "ILCCP";
    /// Compression Control Protocol (RFC 1962).
    Ccp = 0x80FD, "CCP";
    /// MPLS Control Protocol (RFC 3032).
    Mplscp = 0x8281, "MPLSCP";
    /// Link Control Protocol (RFC 1661).
    Lcp = 0xC021, "LCP";
    /// Password Authentication Protocol (RFC 1334).
    Pap = 0xC023, "PAP";
    /// Link Quality Report (RFC 1989).
    Lqr = 0xC025, "LQR";
    /// Callback Control Protocol (Microsoft).
    Cbcp = 0xC029, "CBCP";
    /// Bandwidth Allocation Control Protocol (RFC 2125).
    Bacp = 0xC02B, "BACP";
    /// Bandwidth Allocation Protocol (RFC 2125).
    Bap = 0xC02D, "BAP";
    /// Challenge Handshake Authentication Protocol (RFC 1994).
    Chap = 0xC223, "CHAP";
    /// Extensible Authentication Protocol (RFC 3748).
    Eap = 0xC227, "EAP";
}

impl Protocol {
    /// Whether the number is a valid PPP protocol number: low byte odd, high byte even (RFC 1661 §2).
    pub const fn is_valid(self) -> bool {
        let n = self.number();
        n & 0x0001 == 0x0001 && n & 0x0100 == 0
    }

    /// Whether the protocol field may be sent as one byte under Protocol-Field-Compression.
    ///
    /// Only numbers below 0x0100 compress (RFC 1661 §6.5), except 0x00FF, which is reserved as
    /// "compression inefficient": one byte 0xFF would read as the address field.
    pub const fn is_compressible(self) -> bool {
        let n = self.number();
        n < 0x0100 && n != 0x00FF
    }

    /// Whether this is a network-layer datagram protocol (0x0000–0x3FFF).
    pub const fn is_network_layer(self) -> bool {
        self.number() < 0x4000
    }

    /// Whether this is a Network Control Protocol (0x8000–0xBFFF).
    pub const fn is_network_control(self) -> bool {
        let n = self.number();
        n >= 0x8000 && n < 0xC000
    }

    /// Whether this is a link-layer control protocol (0xC000–0xFFFF: LCP, PAP, CHAP, LQR, ...).
    pub const fn is_link_control(self) -> bool {
        self.number() >= 0xC000
    }
}

impl From<u16> for Protocol {
    fn from(n: u16) -> Self {
        Protocol::from_number(n)
    }
}

impl From<Protocol> for u16 {
    fn from(p: Protocol) -> u16 {
        p.number()
    }
}

impl fmt::Debug for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Unknown({:#06x})", self.number()),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{:#06x}", self.number()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for n in 0..=u16::MAX {
            assert_eq!(Protocol::from(n).number(), n);
        }
    }

    #[test]
    fn names_and_classes() {
        assert_eq!(Protocol::from(0xC021), Protocol::Lcp);
        assert_eq!(format!("{:?}", Protocol::from(0x1235)), "Unknown(0x1235)");
        assert_eq!(Protocol::Ipcp.to_string(), "IPCP");
        assert!(Protocol::Ipv4.is_compressible());
        assert!(!Protocol::Lcp.is_compressible());
        assert!(!Protocol::Unknown(0x00FF).is_compressible());
        assert!(Protocol::Ipcp.is_network_control());
        assert!(Protocol::Chap.is_link_control());
        assert!(Protocol::Ipv6.is_network_layer());
        assert!(Protocol::Lcp.is_valid());
        assert!(!Protocol::Unknown(0x0100).is_valid());
        assert!(!Protocol::Unknown(0x0022).is_valid());
    }
}
