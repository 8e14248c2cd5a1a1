//! The RADIUS packet (RFC 2865 §3): Code, Identifier, Length, Authenticator, attributes; parse
//! and emit symmetrically. Signing and verifying live in [`crate::crypto`].

use std::fmt;

use crate::RadiusError;
use crate::attribute::{
    Attribute, AttributeType, MAX_VALUE_LEN, VendorAttribute, vendor_attributes,
};
use crate::macros::open_enum;

/// The header: Code, Identifier, Length, Authenticator.
pub const HEADER_LEN: usize = 20;
/// The largest packet RADIUS allows (RFC 2865 §3).
pub const MAX_PACKET_LEN: usize = 4096;

open_enum! {
    /// A packet code.
    pub struct Code(u8) {
        /// 1, RFC 2865.
        ACCESS_REQUEST = 1 => "Access-Request",
        /// 2, RFC 2865.
        ACCESS_ACCEPT = 2 => "Access-Accept",
        /// 3, RFC 2865.
        ACCESS_REJECT = 3 => "Access-Reject",
        /// 4, RFC 2866.
        ACCOUNTING_REQUEST = 4 => "Accounting-Request",
        /// 5, RFC 2866.
        ACCOUNTING_RESPONSE = 5 => "Accounting-Response",
        /// 11, RFC 2865.
        ACCESS_CHALLENGE = 11 => "Access-Challenge",
        /// 12, RFC 5997.
        STATUS_SERVER = 12 => "Status-Server",
        /// 40, RFC 5176.
        DISCONNECT_REQUEST = 40 => "Disconnect-Request",
        /// 41, RFC 5176.
        DISCONNECT_ACK = 41 => "Disconnect-ACK",
        /// 42, RFC 5176.
        DISCONNECT_NAK = 42 => "Disconnect-NAK",
        /// 43, RFC 5176.
        COA_REQUEST = 43 => "CoA-Request",
        /// 44, RFC 5176.
        COA_ACK = 44 => "CoA-ACK",
        /// 45, RFC 5176.
        COA_NAK = 45 => "CoA-NAK",
    }
}

impl Code {
    /// Whether the Authenticator of packets with this code is computed over the packet
    /// (Accounting-Request, Disconnect-Request, CoA-Request: RFC 2866 §3, RFC 5176 §3) rather
    /// than random (Access-Request, Status-Server).
    pub fn has_computed_request_authenticator(self) -> bool {
        matches!(
            self,
            Code::ACCOUNTING_REQUEST | Code::DISCONNECT_REQUEST | Code::COA_REQUEST
        )
    }
}

/// A RADIUS packet: header fields and attributes in order.
///
/// [`parse`](Self::parse) and [`emit`](Self::emit) are symmetric: a parsed packet emits the
/// same bytes (up to any padding after Length, which RFC 2865 says to ignore). Nothing here
/// panics on any input.
///
/// ```
/// use ppp_radius::{Attribute, AttributeType, Code, Packet};
///
/// let mut packet = Packet::new(Code::ACCESS_REQUEST, 7);
/// packet.push(Attribute::text(AttributeType::USER_NAME, "alice"));
/// let bytes = packet.to_bytes()?;
/// assert_eq!(bytes.len(), 20 + 7);
/// assert_eq!(Packet::parse(&bytes)?, packet);
/// # Ok::<(), ppp_radius::RadiusError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Packet {
    /// The code.
    pub code: Code,
    /// Matches answers to requests.
    pub identifier: u8,
    /// The Request or Response Authenticator.
    pub authenticator: [u8; 16],
    /// The attributes, in order.
    pub attributes: Vec<Attribute>,
}

impl fmt::Debug for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packet")
            .field("code", &self.code)
            .field("identifier", &self.identifier)
            .field("attributes", &self.attributes)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Packet {
    /// A one-line summary for debug logs: code, identifier and attribute names, no values
    /// (some are secret).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} id={:#x}", self.code, self.identifier)?;
        for a in &self.attributes {
            write!(f, " {}", a.kind)?;
        }
        Ok(())
    }
}

impl Packet {
    /// An empty packet with a zero Authenticator.
    pub fn new(code: Code, identifier: u8) -> Self {
        Packet {
            code,
            identifier,
            authenticator: [0; 16],
            attributes: Vec::new(),
        }
    }

    /// Parses a packet. Bytes after Length are ignored (RFC 2865 §3).
    ///
    /// # Errors
    ///
    /// [`RadiusError::Truncated`], [`RadiusError::BadLength`] or
    /// [`RadiusError::AttributeOverrun`].
    pub fn parse(bytes: &[u8]) -> Result<Self, RadiusError> {
        let body = checked_body(bytes)?;
        let mut attributes = Vec::new();
        for item in attribute_spans(body) {
            let (offset, kind, value) = item?;
            let _ = offset;
            attributes.push(Attribute::new(AttributeType(kind), value));
        }
        let mut authenticator = [0u8; 16];
        authenticator.copy_from_slice(&bytes[4..20]);
        Ok(Packet {
            code: Code(bytes[0]),
            identifier: bytes[1],
            authenticator,
            attributes,
        })
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + self
                .attributes
                .iter()
                .map(|a| 2 + a.value.len())
                .sum::<usize>()
    }

    /// Appends the packet to `out`.
    ///
    /// # Errors
    ///
    /// [`RadiusError::AttributeTooLong`] or [`RadiusError::PacketTooLong`]; nothing is written
    /// then.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), RadiusError> {
        let len = self.buffer_len();
        if len > MAX_PACKET_LEN {
            return Err(RadiusError::PacketTooLong { len });
        }
        if let Some(a) = self
            .attributes
            .iter()
            .find(|a| a.value.len() > MAX_VALUE_LEN)
        {
            return Err(RadiusError::AttributeTooLong {
                kind: a.kind,
                len: a.value.len(),
            });
        }
        out.reserve(len);
        out.push(self.code.0);
        out.push(self.identifier);
        // Checked above: at most 4096.
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&self.authenticator);
        for a in &self.attributes {
            out.push(a.kind.0);
            out.push((a.value.len() + 2) as u8);
            out.extend_from_slice(&a.value);
        }
        Ok(())
    }

    /// The packet as bytes.
    ///
    /// # Errors
    ///
    /// As [`emit`](Self::emit).
    pub fn to_bytes(&self) -> Result<Vec<u8>, RadiusError> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(&mut out)?;
        Ok(out)
    }

    /// Adds an attribute at the end.
    pub fn push(&mut self, attribute: Attribute) {
        self.attributes.push(attribute);
    }

    /// The first attribute of type `kind`.
    pub fn get(&self, kind: AttributeType) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.kind == kind)
    }

    /// Every attribute of type `kind`, in order.
    pub fn all(&self, kind: AttributeType) -> impl Iterator<Item = &Attribute> {
        self.attributes.iter().filter(move |a| a.kind == kind)
    }

    /// Every vendor attribute in every Vendor-Specific attribute, in order.
    pub fn vendor_attributes(&self) -> impl Iterator<Item = VendorAttribute<'_>> {
        self.all(AttributeType::VENDOR_SPECIFIC)
            .flat_map(|a| vendor_attributes(&a.value))
    }

    /// The value of the first vendor attribute `kind` of `vendor`.
    pub fn vendor(&self, vendor: u32, kind: u8) -> Option<&[u8]> {
        self.vendor_attributes()
            .find(|v| v.vendor == vendor && v.kind == kind)
            .map(|v| v.value)
    }
}

/// The attribute bytes of a packet whose header and Length are sound.
pub(crate) fn checked_body(bytes: &[u8]) -> Result<&[u8], RadiusError> {
    if bytes.len() < HEADER_LEN {
        return Err(RadiusError::Truncated { len: bytes.len() });
    }
    let length = u16::from_be_bytes([bytes[2], bytes[3]]);
    let len = usize::from(length);
    if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&len) || len > bytes.len() {
        return Err(RadiusError::BadLength {
            length,
            available: bytes.len(),
        });
    }
    Ok(&bytes[HEADER_LEN..len])
}

/// Walks an attribute list: `(offset in the list, type, value)`, or the error that ends it.
pub(crate) fn attribute_spans(
    body: &[u8],
) -> impl Iterator<Item = Result<(usize, u8, &[u8]), RadiusError>> {
    let mut offset = 0;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || offset >= body.len() {
            return None;
        }
        let rest = &body[offset..];
        let len = rest.get(1).map_or(0, |l| usize::from(*l));
        if len < 2 || len > rest.len() {
            failed = true;
            return Some(Err(RadiusError::AttributeOverrun { offset }));
        }
        let item = (offset, rest[0], &rest[2..len]);
        offset += len;
        Some(Ok(item))
    })
}

/// The fuzzing entry point: parses, and checks that emitting gives the same bytes back.
///
/// # Errors
///
/// As [`Packet::parse`].
///
/// # Panics
///
/// When a parsed packet does not emit the bytes it came from: a bug in this crate.
pub fn parse_round_trip(bytes: &[u8]) -> Result<Packet, RadiusError> {
    let packet = Packet::parse(bytes)?;
    let again = packet.to_bytes().expect("a parsed packet fits");
    let len = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
    assert_eq!(again, bytes[..len], "parse/emit round trip");
    Ok(packet)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 2865 §7.1: the Access-Request of "nemo" with PAP (password "arctangent", secret
    /// "xyzzy5461").
    pub(crate) const RFC2865_PAP_REQUEST: &str = "010000380f403f9473978057bd83d5cb98f4227a\
        01066e656d6f02120dbe708d93d413ce3196e43f782a0aee0406c0a8\
        0110050600000003";
    /// RFC 2865 §7.1: its Access-Accept.
    pub(crate) const RFC2865_PAP_ACCEPT: &str = "0200002686fe220e7624ba2a1005f6bf9b55e0b2\
        0606000000010f06000000000e06c0a80103";

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc2865_examples_parse_and_emit() {
        let bytes = hex(RFC2865_PAP_REQUEST);
        let p = parse_round_trip(&bytes).unwrap();
        assert_eq!(p.code, Code::ACCESS_REQUEST);
        assert_eq!(p.identifier, 0);
        assert_eq!(p.get(AttributeType::USER_NAME).unwrap().as_text(), "nemo");
        assert_eq!(
            p.get(AttributeType::NAS_IP_ADDRESS).unwrap().as_ipv4(),
            Ok("192.168.1.16".parse().unwrap())
        );
        assert_eq!(p.get(AttributeType::NAS_PORT).unwrap().as_u32(), Ok(3));
        let bytes = hex(RFC2865_PAP_ACCEPT);
        let p = parse_round_trip(&bytes).unwrap();
        assert_eq!(p.code, Code::ACCESS_ACCEPT);
        assert_eq!(p.get(AttributeType::SERVICE_TYPE).unwrap().as_u32(), Ok(1));
        assert_eq!(
            p.to_string(),
            "Access-Accept id=0x0 Service-Type AttributeType(15) AttributeType(14)"
        );
    }

    #[test]
    fn malformed_packets() {
        assert_eq!(
            Packet::parse(&[1; 19]),
            Err(RadiusError::Truncated { len: 19 })
        );
        let mut bytes = hex(RFC2865_PAP_ACCEPT);
        bytes[3] = 19;
        assert!(matches!(
            Packet::parse(&bytes),
            Err(RadiusError::BadLength { .. })
        ));
        bytes[3] = 0x27;
        assert!(matches!(
            Packet::parse(&bytes),
            Err(RadiusError::BadLength { .. })
        ));
        bytes[3] = 0x26;
        bytes[21] = 1; // first attribute length 1
        assert_eq!(
            Packet::parse(&bytes),
            Err(RadiusError::AttributeOverrun { offset: 0 })
        );
        bytes[21] = 0x40;
        assert!(Packet::parse(&bytes).is_err());
        // Padding after Length is ignored.
        let mut padded = hex(RFC2865_PAP_ACCEPT);
        padded.extend_from_slice(&[0; 5]);
        assert_eq!(
            Packet::parse(&padded).unwrap(),
            Packet::parse(&hex(RFC2865_PAP_ACCEPT)).unwrap()
        );
    }

    #[test]
    fn emit_limits() {
        let mut p = Packet::new(Code::ACCESS_REQUEST, 1);
        p.push(Attribute::new(AttributeType::CLASS, vec![0; 254]));
        assert!(matches!(
            p.to_bytes(),
            Err(RadiusError::AttributeTooLong { len: 254, .. })
        ));
        let mut p = Packet::new(Code::ACCESS_REQUEST, 1);
        for _ in 0..17 {
            p.push(Attribute::new(AttributeType::CLASS, vec![0; 253]));
        }
        assert!(matches!(
            p.to_bytes(),
            Err(RadiusError::PacketTooLong { .. })
        ));
    }

    fn attribute() -> impl Strategy<Value = Attribute> {
        (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..=253))
            .prop_map(|(k, v)| Attribute::new(AttributeType(k), v))
    }

    proptest! {
        #[test]
        fn round_trip(
            code in any::<u8>(),
            identifier in any::<u8>(),
            authenticator in any::<[u8; 16]>(),
            attributes in proptest::collection::vec(attribute(), 0..12),
        ) {
            let p = Packet { code: Code(code), identifier, authenticator, attributes };
            if let Ok(bytes) = p.to_bytes() {
                prop_assert_eq!(Packet::parse(&bytes).unwrap(), p.clone());
                prop_assert_eq!(parse_round_trip(&bytes).unwrap(), p);
            }
        }

        #[test]
        fn any_bytes_parse_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Packet::parse(&bytes);
        }
    }
}
