//! Attributes (RFC 2865 §5): type, length, value; Vendor-Specific attributes (type 26) with the
//! vendor's own type-length-value inside (RFC 2865 §5.26, the format Microsoft and MikroTik use).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::RadiusError;
use crate::macros::open_enum;

/// The largest attribute value: 255 minus the type and length bytes.
pub const MAX_VALUE_LEN: usize = 253;

open_enum! {
    /// An attribute type (the RADIUS registry): the ones this crate reads or writes have names.
    pub struct AttributeType(u8) {
        /// 1, RFC 2865.
        USER_NAME = 1 => "User-Name",
        /// 2, RFC 2865 §5.2: hidden with the shared secret.
        USER_PASSWORD = 2 => "User-Password",
        /// 3, RFC 2865 §5.3: CHAP identifier and response.
        CHAP_PASSWORD = 3 => "CHAP-Password",
        /// 4, RFC 2865.
        NAS_IP_ADDRESS = 4 => "NAS-IP-Address",
        /// 5, RFC 2865.
        NAS_PORT = 5 => "NAS-Port",
        /// 6, RFC 2865.
        SERVICE_TYPE = 6 => "Service-Type",
        /// 7, RFC 2865.
        FRAMED_PROTOCOL = 7 => "Framed-Protocol",
        /// 8, RFC 2865.
        FRAMED_IP_ADDRESS = 8 => "Framed-IP-Address",
        /// 9, RFC 2865.
        FRAMED_IP_NETMASK = 9 => "Framed-IP-Netmask",
        /// 12, RFC 2865.
        FRAMED_MTU = 12 => "Framed-MTU",
        /// 18, RFC 2865.
        REPLY_MESSAGE = 18 => "Reply-Message",
        /// 24, RFC 2865.
        STATE = 24 => "State",
        /// 25, RFC 2865: echoed in accounting.
        CLASS = 25 => "Class",
        /// 26, RFC 2865 §5.26.
        VENDOR_SPECIFIC = 26 => "Vendor-Specific",
        /// 27, RFC 2865.
        SESSION_TIMEOUT = 27 => "Session-Timeout",
        /// 28, RFC 2865.
        IDLE_TIMEOUT = 28 => "Idle-Timeout",
        /// 30, RFC 2865.
        CALLED_STATION_ID = 30 => "Called-Station-Id",
        /// 31, RFC 2865.
        CALLING_STATION_ID = 31 => "Calling-Station-Id",
        /// 32, RFC 2865.
        NAS_IDENTIFIER = 32 => "NAS-Identifier",
        /// 33, RFC 2865.
        PROXY_STATE = 33 => "Proxy-State",
        /// 40, RFC 2866.
        ACCT_STATUS_TYPE = 40 => "Acct-Status-Type",
        /// 41, RFC 2866.
        ACCT_DELAY_TIME = 41 => "Acct-Delay-Time",
        /// 42, RFC 2866.
        ACCT_INPUT_OCTETS = 42 => "Acct-Input-Octets",
        /// 43, RFC 2866.
        ACCT_OUTPUT_OCTETS = 43 => "Acct-Output-Octets",
        /// 44, RFC 2866.
        ACCT_SESSION_ID = 44 => "Acct-Session-Id",
        /// 45, RFC 2866.
        ACCT_AUTHENTIC = 45 => "Acct-Authentic",
        /// 46, RFC 2866.
        ACCT_SESSION_TIME = 46 => "Acct-Session-Time",
        /// 47, RFC 2866.
        ACCT_INPUT_PACKETS = 47 => "Acct-Input-Packets",
        /// 48, RFC 2866.
        ACCT_OUTPUT_PACKETS = 48 => "Acct-Output-Packets",
        /// 49, RFC 2866.
        ACCT_TERMINATE_CAUSE = 49 => "Acct-Terminate-Cause",
        /// 50, RFC 2866.
        ACCT_MULTI_SESSION_ID = 50 => "Acct-Multi-Session-Id",
        /// 52, RFC 2869.
        ACCT_INPUT_GIGAWORDS = 52 => "Acct-Input-Gigawords",
        /// 53, RFC 2869.
        ACCT_OUTPUT_GIGAWORDS = 53 => "Acct-Output-Gigawords",
        /// 55, RFC 2869.
        EVENT_TIMESTAMP = 55 => "Event-Timestamp",
        /// 60, RFC 2865.
        CHAP_CHALLENGE = 60 => "CHAP-Challenge",
        /// 61, RFC 2865.
        NAS_PORT_TYPE = 61 => "NAS-Port-Type",
        /// 79, RFC 3579.
        EAP_MESSAGE = 79 => "EAP-Message",
        /// 80, RFC 3579 §3.2: HMAC-MD5 over the packet.
        MESSAGE_AUTHENTICATOR = 80 => "Message-Authenticator",
        /// 85, RFC 2869.
        ACCT_INTERIM_INTERVAL = 85 => "Acct-Interim-Interval",
        /// 87, RFC 2869.
        NAS_PORT_ID = 87 => "NAS-Port-Id",
        /// 88, RFC 2869.
        FRAMED_POOL = 88 => "Framed-Pool",
        /// 95, RFC 3162.
        NAS_IPV6_ADDRESS = 95 => "NAS-IPv6-Address",
        /// 97, RFC 3162.
        FRAMED_IPV6_PREFIX = 97 => "Framed-IPv6-Prefix",
        /// 101, RFC 5176.
        ERROR_CAUSE = 101 => "Error-Cause",
        /// 123, RFC 4818.
        DELEGATED_IPV6_PREFIX = 123 => "Delegated-IPv6-Prefix",
    }
}

/// Microsoft's vendor id (RFC 2548).
pub const VENDOR_MICROSOFT: u32 = 311;
/// MikroTik's vendor id.
pub const VENDOR_MIKROTIK: u32 = 14988;

/// Microsoft vendor attribute types (RFC 2548).
pub mod microsoft {
    /// MS-CHAP-Response (§2.1.3): Ident, Flags, LM-Response, NT-Response.
    pub const CHAP_RESPONSE: u8 = 1;
    /// MS-CHAP-Error (§2.1.5): Ident, then `E=... R=... M=...`.
    pub const CHAP_ERROR: u8 = 2;
    /// MS-MPPE-Encryption-Policy (§2.4.4).
    pub const MPPE_ENCRYPTION_POLICY: u8 = 7;
    /// MS-MPPE-Encryption-Types (§2.4.5).
    pub const MPPE_ENCRYPTION_TYPES: u8 = 8;
    /// MS-CHAP-Challenge (§2.3.1).
    pub const CHAP_CHALLENGE: u8 = 11;
    /// MS-CHAP-MPPE-Keys (§2.4.1): LM key and NT key, hidden like User-Password.
    pub const CHAP_MPPE_KEYS: u8 = 12;
    /// MS-MPPE-Send-Key (§2.4.2): salt-encrypted.
    pub const MPPE_SEND_KEY: u8 = 16;
    /// MS-MPPE-Recv-Key (§2.4.3): salt-encrypted.
    pub const MPPE_RECV_KEY: u8 = 17;
    /// MS-CHAP2-Response (§2.3.2): Ident, Flags, Peer-Challenge, Reserved, Response.
    pub const CHAP2_RESPONSE: u8 = 25;
    /// MS-CHAP2-Success (§2.3.3): Ident, then `S=` and 40 hex digits.
    pub const CHAP2_SUCCESS: u8 = 26;
}

/// MikroTik vendor attribute types (RouterOS).
pub mod mikrotik {
    /// Mikrotik-Recv-Limit: bytes the user may send.
    pub const RECV_LIMIT: u8 = 1;
    /// Mikrotik-Xmit-Limit: bytes the user may receive.
    pub const XMIT_LIMIT: u8 = 2;
    /// Mikrotik-Group: the profile name.
    pub const GROUP: u8 = 3;
    /// Mikrotik-Rate-Limit: `rx/tx [burst...]`.
    pub const RATE_LIMIT: u8 = 8;
    /// Mikrotik-Address-List.
    pub const ADDRESS_LIST: u8 = 19;
}

/// One attribute: its type and its value bytes (at most [`MAX_VALUE_LEN`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The type.
    pub kind: AttributeType,
    /// The value.
    pub value: Vec<u8>,
}

/// Attributes whose values are secret or hidden: `Debug` shows only their length.
fn is_secret(kind: AttributeType) -> bool {
    matches!(
        kind,
        AttributeType::USER_PASSWORD | AttributeType::CHAP_PASSWORD
    ) || kind == AttributeType::VENDOR_SPECIFIC
}

impl fmt::Debug for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_secret(self.kind) {
            return write!(f, "{:?}=<{} bytes>", self.kind, self.value.len());
        }
        write!(f, "{:?}={:02x?}", self.kind, self.value)
    }
}

impl Attribute {
    /// An attribute with raw bytes.
    pub fn new(kind: AttributeType, value: impl Into<Vec<u8>>) -> Self {
        Attribute {
            kind,
            value: value.into(),
        }
    }

    /// A text attribute.
    pub fn text(kind: AttributeType, value: &str) -> Self {
        Attribute::new(kind, value.as_bytes())
    }

    /// A 32-bit integer attribute (big-endian).
    pub fn integer(kind: AttributeType, value: u32) -> Self {
        Attribute::new(kind, value.to_be_bytes())
    }

    /// An IPv4 address attribute.
    pub fn ipv4(kind: AttributeType, value: Ipv4Addr) -> Self {
        Attribute::new(kind, value.octets())
    }

    /// A Vendor-Specific attribute holding one vendor attribute (RFC 2865 §5.26 format).
    pub fn vendor(vendor: u32, vendor_type: u8, value: &[u8]) -> Self {
        let mut v = Vec::with_capacity(6 + value.len());
        v.extend_from_slice(&vendor.to_be_bytes());
        v.push(vendor_type);
        v.push(u8::try_from(value.len() + 2).unwrap_or(u8::MAX));
        v.extend_from_slice(value);
        Attribute::new(AttributeType::VENDOR_SPECIFIC, v)
    }

    /// The value as UTF-8 text (lossy).
    pub fn as_text(&self) -> String {
        String::from_utf8_lossy(&self.value).into_owned()
    }

    /// The value as a 32-bit integer.
    ///
    /// # Errors
    ///
    /// [`RadiusError::BadValue`] when it is not 4 bytes.
    pub fn as_u32(&self) -> Result<u32, RadiusError> {
        let bytes: [u8; 4] = self.value[..]
            .try_into()
            .map_err(|_| RadiusError::BadValue {
                kind: self.kind,
                problem: "integer is not 4 bytes",
            })?;
        Ok(u32::from_be_bytes(bytes))
    }

    /// The value as an IPv4 address.
    ///
    /// # Errors
    ///
    /// [`RadiusError::BadValue`] when it is not 4 bytes.
    pub fn as_ipv4(&self) -> Result<Ipv4Addr, RadiusError> {
        self.as_u32()
            .map(Ipv4Addr::from)
            .map_err(|_| RadiusError::BadValue {
                kind: self.kind,
                problem: "address is not 4 bytes",
            })
    }

    /// The value as an IPv6 prefix (RFC 3162 §2.3: reserved, length, up to 16 bytes).
    ///
    /// # Errors
    ///
    /// [`RadiusError::BadValue`] when it is malformed.
    pub fn as_ipv6_prefix(&self) -> Result<(Ipv6Addr, u8), RadiusError> {
        let bad = |problem| RadiusError::BadValue {
            kind: self.kind,
            problem,
        };
        let [_, len, bits @ ..] = &self.value[..] else {
            return Err(bad("prefix shorter than 2 bytes"));
        };
        if *len > 128 || bits.len() > 16 || bits.len() * 8 < usize::from(*len) {
            return Err(bad("prefix length does not fit the bytes"));
        }
        let mut octets = [0u8; 16];
        octets[..bits.len()].copy_from_slice(bits);
        Ok((Ipv6Addr::from(octets), *len))
    }

    /// An IPv6 prefix attribute (RFC 3162 §2.3).
    pub fn ipv6_prefix(kind: AttributeType, prefix: Ipv6Addr, len: u8) -> Self {
        let len = len.min(128);
        let bytes = usize::from(len).div_ceil(8);
        let mut v = vec![0, len];
        v.extend_from_slice(&prefix.octets()[..bytes]);
        Attribute::new(kind, v)
    }

    /// The vendor attribute inside a Vendor-Specific attribute, when it holds exactly one in
    /// the RFC 2865 format: `(vendor, vendor type, value)`.
    pub fn as_vendor(&self) -> Option<VendorAttribute<'_>> {
        if self.kind != AttributeType::VENDOR_SPECIFIC {
            return None;
        }
        let (id, rest) = self.value.split_first_chunk::<4>()?;
        let [kind, len, value @ ..] = rest else {
            return None;
        };
        // Several vendor attributes may share one Vendor-Specific; only the first is read
        // here, `Packet::vendor_attributes` walks them all.
        let value = value.get(..usize::from(*len).checked_sub(2)?)?;
        Some(VendorAttribute {
            vendor: u32::from_be_bytes(*id),
            kind: *kind,
            value,
        })
    }
}

/// A vendor's attribute inside a Vendor-Specific attribute.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VendorAttribute<'a> {
    /// The vendor ([`VENDOR_MICROSOFT`], [`VENDOR_MIKROTIK`], ...).
    pub vendor: u32,
    /// The vendor's attribute type.
    pub kind: u8,
    /// The value.
    pub value: &'a [u8],
}

impl fmt::Debug for VendorAttribute<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Vendor-{}-Attr-{}=<{} bytes>",
            self.vendor,
            self.kind,
            self.value.len()
        )
    }
}

/// Every vendor attribute inside the value of one Vendor-Specific attribute (there may be
/// several); stops at the first malformed one.
pub(crate) fn vendor_attributes(value: &[u8]) -> impl Iterator<Item = VendorAttribute<'_>> {
    let (vendor, mut rest) = match value.split_first_chunk::<4>() {
        Some((id, rest)) => (u32::from_be_bytes(*id), rest),
        None => (0, &[][..]),
    };
    std::iter::from_fn(move || {
        let [kind, len, ..] = rest else {
            return None;
        };
        let len = usize::from(*len);
        if len < 2 || len > rest.len() {
            rest = &[];
            return None;
        }
        let attribute = VendorAttribute {
            vendor,
            kind: *kind,
            value: &rest[2..len],
        };
        rest = &rest[len..];
        Some(attribute)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_unknown_values() {
        assert_eq!(AttributeType::USER_NAME.to_string(), "User-Name");
        assert_eq!(AttributeType(200).to_string(), "AttributeType(200)");
        assert_eq!(format!("{:?}", AttributeType(200)), "AttributeType(0xc8)");
    }

    #[test]
    fn typed_values() {
        let a = Attribute::integer(AttributeType::SESSION_TIMEOUT, 3600);
        assert_eq!(a.as_u32(), Ok(3600));
        let a = Attribute::ipv4(
            AttributeType::FRAMED_IP_ADDRESS,
            Ipv4Addr::new(192, 0, 2, 1),
        );
        assert_eq!(a.as_ipv4(), Ok(Ipv4Addr::new(192, 0, 2, 1)));
        assert!(
            Attribute::new(AttributeType::SESSION_TIMEOUT, [1, 2])
                .as_u32()
                .is_err()
        );
        let p: Ipv6Addr = "2001:db8:1::".parse().unwrap();
        let a = Attribute::ipv6_prefix(AttributeType::FRAMED_IPV6_PREFIX, p, 48);
        assert_eq!(a.value.len(), 2 + 6);
        assert_eq!(a.as_ipv6_prefix(), Ok((p, 48)));
        assert!(
            Attribute::new(AttributeType::FRAMED_IPV6_PREFIX, [0, 64, 1])
                .as_ipv6_prefix()
                .is_err()
        );
    }

    #[test]
    fn vendor_attributes_round_trip() {
        let a = Attribute::vendor(VENDOR_MIKROTIK, mikrotik::RATE_LIMIT, b"2M/1M");
        let v = a.as_vendor().unwrap();
        assert_eq!((v.vendor, v.kind, v.value), (14988, 8, &b"2M/1M"[..]));
        // Two in one Vendor-Specific.
        let mut value = 311u32.to_be_bytes().to_vec();
        value.extend_from_slice(&[7, 6, 0, 0, 0, 1, 8, 6, 0, 0, 0, 6]);
        let all: Vec<_> = vendor_attributes(&value)
            .map(|v| (v.kind, v.value.len()))
            .collect();
        assert_eq!(all, [(7, 4), (8, 4)]);
        // Malformed: stops.
        assert_eq!(vendor_attributes(&[0, 0, 1, 55, 7, 1]).count(), 0);
        assert_eq!(vendor_attributes(&[0, 0]).count(), 0);
        assert!(format!("{a:?}").contains("bytes"));
    }
}
