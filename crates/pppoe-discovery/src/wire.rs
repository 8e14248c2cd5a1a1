//! The wire format: Ethernet header, PPPoE header (RFC 2516 §4) and discovery tags (RFC 2516
//! Appendix A, RFC 4638).
//!
//! Two layers, as in smoltcp:
//!
//! - [`Packet`] is a view over the bytes of a whole Ethernet frame, with accessors and setters for
//!   the fixed headers and an iterator over the tags. After [`Packet::new_checked`] succeeds, no
//!   accessor can panic.
//! - [`DiscoveryRepr`] is the owned, parsed form of a discovery frame (Ethertype 0x8863):
//!   [`DiscoveryRepr::parse`] / [`DiscoveryRepr::buffer_len`] / [`DiscoveryRepr::emit`]. Parsing
//!   is lossless (unknown tags, tags after End-Of-List and empty values are all kept), so
//!   `emit(parse(bytes)) == bytes` for every well-formed frame without Ethernet padding.
//!
//! Ethernet pads frames to 60 bytes; the PPPoE LENGTH field says where the payload ends and
//! anything after it is ignored. A LENGTH longer than what arrived is an error.
//!
//! Nothing in this module panics on any input.

use core::fmt;

use crate::DiscoveryError;

/// Ethertype of PPPoE discovery frames.
pub const ETHERTYPE_DISCOVERY: u16 = 0x8863;
/// Ethertype of PPPoE session frames.
pub const ETHERTYPE_SESSION: u16 = 0x8864;
/// Length of the Ethernet header (destination, source, Ethertype; no VLAN tag).
pub const ETHERNET_HEADER_LEN: usize = 14;
/// Length of the PPPoE header (VER/TYPE, CODE, SESSION_ID, LENGTH).
pub const PPPOE_HEADER_LEN: usize = 6;
/// Both headers: where the PPPoE payload starts in an Ethernet frame.
pub const HEADER_LEN: usize = ETHERNET_HEADER_LEN + PPPOE_HEADER_LEN;
/// The VER/TYPE byte of RFC 2516: version 1, type 1.
pub const VERSION_TYPE: u8 = 0x11;
/// Length of a tag header (TAG_TYPE, TAG_LENGTH).
pub const TAG_HEADER_LEN: usize = 4;

/// A 48-bit Ethernet address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The broadcast address ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// Whether this is the broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Whether the group bit is set (multicast or broadcast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// Whether this is an individual (unicast), non-zero address: the only kind a PPPoE peer may
    /// have.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast() && self.0 != [0; 6]
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(bytes: [u8; 6]) -> Self {
        MacAddr(bytes)
    }
}

macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident($repr:ty, $width:literal) {
            $( $(#[$doc:meta])* $variant:ident = $value:literal, $label:literal; )*
        }
    ) => {
        $(#[$meta])*
        ///
        /// An open enum: values without a name here are kept in `Unknown`, so they round-trip.
        /// `Debug` prints unknown values in hex.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$doc])* $variant, )*
            /// A value this crate has no name for.
            Unknown($repr),
        }

        impl $name {
            /// The value on the wire.
            pub const fn value(self) -> $repr {
                match self {
                    $( $name::$variant => $value, )*
                    $name::Unknown(v) => v,
                }
            }

            /// The variant for a value on the wire.
            pub const fn from_value(v: $repr) -> Self {
                match v {
                    $( $value => $name::$variant, )*
                    v => $name::Unknown(v),
                }
            }

            /// The name RFC 2516 / RFC 4638 use, if the value is known.
            pub const fn name(self) -> Option<&'static str> {
                match self {
                    $( $name::$variant => Some($label), )*
                    $name::Unknown(_) => None,
                }
            }
        }

        impl From<$repr> for $name {
            fn from(v: $repr) -> Self {
                Self::from_value(v)
            }
        }

        impl From<$name> for $repr {
            fn from(v: $name) -> Self {
                v.value()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $( $name::$variant => f.write_str(stringify!($variant)), )*
                    $name::Unknown(v) => write!(f, concat!("Unknown({:#0", $width, "x})"), v),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, concat!("{:#0", $width, "x}"), self.value()),
                }
            }
        }
    };
}

open_enum! {
    /// The CODE field of the PPPoE header.
    Code(u8, 4) {
        /// Session data (Ethertype 0x8864).
        Session = 0x00, "SESS";
        /// PPPoE Active Discovery Offer.
        Pado = 0x07, "PADO";
        /// PPPoE Active Discovery Initiation.
        Padi = 0x09, "PADI";
        /// PPPoE Active Discovery Request.
        Padr = 0x19, "PADR";
        /// PPPoE Active Discovery Session-confirmation.
        Pads = 0x65, "PADS";
        /// PPPoE Active Discovery Terminate.
        Padt = 0xa7, "PADT";
    }
}

open_enum! {
    /// The TAG_TYPE of a discovery tag.
    TagType(u16, 6) {
        /// No further tags (length always 0).
        EndOfList = 0x0000, "End-Of-List";
        /// The service requested or offered (UTF-8, not NUL-terminated; empty = any).
        ServiceName = 0x0101, "Service-Name";
        /// The access concentrator's name.
        AcName = 0x0102, "AC-Name";
        /// Opaque client data, echoed by the AC to match answers to requests.
        HostUniq = 0x0103, "Host-Uniq";
        /// Opaque AC data (a cookie against PADR spoofing), echoed by the client.
        AcCookie = 0x0104, "AC-Cookie";
        /// Vendor data: 4-byte vendor id, then anything.
        VendorSpecific = 0x0105, "Vendor-Specific";
        /// Opaque relay data, echoed by both sides.
        RelaySessionId = 0x0110, "Relay-Session-Id";
        /// RFC 4638: largest PPP payload the sender can handle (2 bytes).
        PppMaxPayload = 0x0120, "PPP-Max-Payload";
        /// The requested service is not offered (optional UTF-8 text).
        ServiceNameError = 0x0201, "Service-Name-Error";
        /// The AC cannot serve the request (optional UTF-8 text).
        AcSystemError = 0x0202, "AC-System-Error";
        /// Any other error (optional UTF-8 text).
        GenericError = 0x0203, "Generic-Error";
    }
}

/// One discovery tag, owned.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Tag {
    /// TAG_TYPE.
    pub tag_type: TagType,
    /// TAG_VALUE (TAG_LENGTH is its length).
    pub value: Vec<u8>,
}

impl Tag {
    /// A tag of `tag_type` with `value`.
    pub fn new(tag_type: TagType, value: impl Into<Vec<u8>>) -> Self {
        Tag {
            tag_type,
            value: value.into(),
        }
    }

    /// A PPP-Max-Payload tag (RFC 4638).
    pub fn ppp_max_payload(max_payload: u16) -> Self {
        Tag::new(TagType::PppMaxPayload, max_payload.to_be_bytes())
    }

    /// Bytes this tag takes on the wire.
    pub fn wire_len(&self) -> usize {
        TAG_HEADER_LEN + self.value.len()
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", TagSummary(self.tag_type, &self.value))
    }
}

/// A tag as pppd-like log text: `Service-Name="internet"`, `Host-Uniq=0x0102`.
struct TagSummary<'a>(TagType, &'a [u8]);

impl fmt::Display for TagSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let TagSummary(tag_type, value) = *self;
        write!(f, "{tag_type}")?;
        match tag_type {
            TagType::EndOfList => Ok(()),
            TagType::ServiceName
            | TagType::AcName
            | TagType::ServiceNameError
            | TagType::AcSystemError
            | TagType::GenericError => {
                write!(f, "={:?}", String::from_utf8_lossy(value))
            }
            TagType::PppMaxPayload if value.len() == 2 => {
                write!(f, "={}", u16::from_be_bytes([value[0], value[1]]))
            }
            _ => {
                f.write_str("=0x")?;
                for byte in value.iter().take(32) {
                    write!(f, "{byte:02x}")?;
                }
                if value.len() > 32 {
                    f.write_str("...")?;
                }
                Ok(())
            }
        }
    }
}

/// A tag borrowed from a frame, as [`TagIter`] yields it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagRef<'a> {
    /// TAG_TYPE.
    pub tag_type: TagType,
    /// TAG_VALUE.
    pub value: &'a [u8],
}

impl TagRef<'_> {
    /// The owned tag.
    pub fn to_owned(&self) -> Tag {
        Tag::new(self.tag_type, self.value)
    }
}

/// Iterates over the tags of a PPPoE payload. Yields one error and stops when a tag runs past
/// the end.
#[derive(Clone, Debug)]
pub struct TagIter<'a> {
    payload: &'a [u8],
    offset: usize,
    failed: bool,
}

impl<'a> TagIter<'a> {
    /// Tags of `payload` (the PPPoE payload, already cut to LENGTH).
    pub fn new(payload: &'a [u8]) -> Self {
        TagIter {
            payload,
            offset: 0,
            failed: false,
        }
    }
}

impl<'a> Iterator for TagIter<'a> {
    type Item = Result<TagRef<'a>, DiscoveryError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.offset >= self.payload.len() {
            return None;
        }
        let rest = self.payload.get(self.offset..)?;
        let parsed = match rest {
            [t0, t1, l0, l1, value @ ..] => {
                let len = usize::from(u16::from_be_bytes([*l0, *l1]));
                value.get(..len).map(|value| {
                    (
                        TagRef {
                            tag_type: TagType::from_value(u16::from_be_bytes([*t0, *t1])),
                            value,
                        },
                        len,
                    )
                })
            }
            _ => None,
        };
        match parsed {
            Some((tag, len)) => {
                self.offset += TAG_HEADER_LEN + len;
                Some(Ok(tag))
            }
            None => {
                self.failed = true;
                Some(Err(DiscoveryError::TagOverrun {
                    offset: self.offset,
                }))
            }
        }
    }
}

/// A view over the bytes of an Ethernet frame carrying PPPoE (discovery or session).
///
/// Construct it with [`new_checked`](Self::new_checked); then no accessor panics. The setters
/// need a buffer of at least [`HEADER_LEN`] bytes (which `new_checked` guarantees).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const VER_TYPE: usize = 14;
    pub const CODE: usize = 15;
    pub const SESSION_ID: Range<usize> = 16..18;
    pub const LENGTH: Range<usize> = 18..20;
}

fn mac_at(bytes: &[u8], range: core::ops::Range<usize>) -> MacAddr {
    let mut mac = [0u8; 6];
    if let Some(src) = bytes.get(range) {
        mac.copy_from_slice(src);
    }
    MacAddr(mac)
}

fn u16_at(bytes: &[u8], range: core::ops::Range<usize>) -> u16 {
    match bytes.get(range) {
        Some([a, b]) => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it. Accessors return zeros for missing bytes and setters
    /// may panic if it is shorter than [`HEADER_LEN`]; prefer [`new_checked`](Self::new_checked).
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    ///
    /// # Errors
    ///
    /// [`DiscoveryError::Truncated`] or [`DiscoveryError::LengthMismatch`].
    pub fn new_checked(buffer: T) -> Result<Self, DiscoveryError> {
        let packet = Packet { buffer };
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that both headers are present and that LENGTH fits in what follows them (any
    /// excess is Ethernet padding).
    ///
    /// # Errors
    ///
    /// [`DiscoveryError::Truncated`] or [`DiscoveryError::LengthMismatch`].
    pub fn check_len(&self) -> Result<(), DiscoveryError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(DiscoveryError::Truncated {
                len,
                required: HEADER_LEN,
            });
        }
        let declared = usize::from(self.payload_len());
        let available = len - HEADER_LEN;
        if declared > available {
            return Err(DiscoveryError::LengthMismatch {
                declared,
                available,
            });
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination address.
    pub fn dst_addr(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), field::DST)
    }

    /// Source address.
    pub fn src_addr(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), field::SRC)
    }

    /// Ethertype (0x8863 or 0x8864 for PPPoE).
    pub fn ethertype(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// The VER/TYPE byte (0x11).
    pub fn version_type(&self) -> u8 {
        self.buffer
            .as_ref()
            .get(field::VER_TYPE)
            .copied()
            .unwrap_or(0)
    }

    /// CODE.
    pub fn code(&self) -> Code {
        Code::from_value(self.buffer.as_ref().get(field::CODE).copied().unwrap_or(0))
    }

    /// SESSION_ID.
    pub fn session_id(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::SESSION_ID)
    }

    /// LENGTH: bytes of PPPoE payload.
    pub fn payload_len(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::LENGTH)
    }

    /// The PPPoE payload, cut to LENGTH (Ethernet padding left out); empty if the frame is too
    /// short.
    pub fn payload(&self) -> &[u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        self.buffer.as_ref().get(HEADER_LEN..end).unwrap_or(&[])
    }

    /// The tags of a discovery payload.
    pub fn tags(&self) -> TagIter<'_> {
        TagIter::new(self.payload())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&addr.0);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&addr.0);
    }

    /// Sets the Ethertype.
    pub fn set_ethertype(&mut self, ethertype: u16) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&ethertype.to_be_bytes());
    }

    /// Sets the VER/TYPE byte.
    pub fn set_version_type(&mut self, version_type: u8) {
        self.buffer.as_mut()[field::VER_TYPE] = version_type;
    }

    /// Sets CODE.
    pub fn set_code(&mut self, code: Code) {
        self.buffer.as_mut()[field::CODE] = code.value();
    }

    /// Sets SESSION_ID.
    pub fn set_session_id(&mut self, session_id: u16) {
        self.buffer.as_mut()[field::SESSION_ID].copy_from_slice(&session_id.to_be_bytes());
    }

    /// Sets LENGTH.
    pub fn set_payload_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&len.to_be_bytes());
    }

    /// Everything after the headers, padding included.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let buffer = self.buffer.as_mut();
        let len = buffer.len();
        &mut buffer[HEADER_LEN.min(len)..]
    }
}

/// A parsed discovery frame (Ethertype 0x8863): PADI, PADO, PADR, PADS, PADT or an unknown code.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DiscoveryRepr {
    /// Destination address.
    pub dst: MacAddr,
    /// Source address.
    pub src: MacAddr,
    /// CODE.
    pub code: Code,
    /// SESSION_ID (0 except in PADS and PADT).
    pub session_id: u16,
    /// Every tag, in order, as received.
    pub tags: Vec<Tag>,
}

impl DiscoveryRepr {
    /// A frame with no tags yet.
    pub fn new(dst: MacAddr, src: MacAddr, code: Code, session_id: u16) -> Self {
        DiscoveryRepr {
            dst,
            src,
            code,
            session_id,
            tags: Vec::new(),
        }
    }

    /// Adds a tag (builder style).
    #[must_use]
    pub fn with_tag(mut self, tag_type: TagType, value: impl Into<Vec<u8>>) -> Self {
        self.tags.push(Tag::new(tag_type, value));
        self
    }

    /// Parses a discovery frame from a checked view.
    ///
    /// # Errors
    ///
    /// [`DiscoveryError::WrongEthertype`], [`DiscoveryError::BadVersionType`], [`DiscoveryError::TagOverrun`] (and the
    /// length errors of [`Packet::check_len`]).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self, DiscoveryError> {
        packet.check_len()?;
        if packet.ethertype() != ETHERTYPE_DISCOVERY {
            return Err(DiscoveryError::WrongEthertype {
                found: packet.ethertype(),
                expected: ETHERTYPE_DISCOVERY,
            });
        }
        if packet.version_type() != VERSION_TYPE {
            return Err(DiscoveryError::BadVersionType(packet.version_type()));
        }
        let tags = packet
            .tags()
            .map(|tag| tag.map(|t| t.to_owned()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DiscoveryRepr {
            dst: packet.dst_addr(),
            src: packet.src_addr(),
            code: packet.code(),
            session_id: packet.session_id(),
            tags,
        })
    }

    /// Parses a discovery frame from the bytes of an Ethernet frame (this is what a fuzz target
    /// calls).
    ///
    /// # Errors
    ///
    /// As [`parse`](Self::parse).
    pub fn parse_bytes(frame: &[u8]) -> Result<Self, DiscoveryError> {
        Self::parse(&Packet::new_checked(frame)?)
    }

    /// Bytes of PPPoE payload (the LENGTH field).
    pub fn payload_len(&self) -> usize {
        self.tags.iter().map(Tag::wire_len).sum()
    }

    /// Bytes of the whole Ethernet frame.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }

    /// Writes the frame into the start of `buffer` and returns its length.
    ///
    /// # Errors
    ///
    /// [`DiscoveryError::BufferTooSmall`] when `buffer` is shorter than [`buffer_len`](Self::buffer_len),
    /// [`DiscoveryError::TooLong`] when the payload or a tag value exceeds 65535 bytes.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, DiscoveryError> {
        let payload_len = self.payload_len();
        let length =
            u16::try_from(payload_len).map_err(|_| DiscoveryError::TooLong { len: payload_len })?;
        let required = HEADER_LEN + payload_len;
        let Some(buffer) = buffer.get_mut(..required) else {
            return Err(DiscoveryError::BufferTooSmall { required });
        };
        let mut packet = Packet::new_unchecked(&mut *buffer);
        packet.set_dst_addr(self.dst);
        packet.set_src_addr(self.src);
        packet.set_ethertype(ETHERTYPE_DISCOVERY);
        packet.set_version_type(VERSION_TYPE);
        packet.set_code(self.code);
        packet.set_session_id(self.session_id);
        packet.set_payload_len(length);
        let mut at = HEADER_LEN;
        for tag in &self.tags {
            // Each value is shorter than the payload, which fits a u16.
            let len = u16::try_from(tag.value.len()).map_err(|_| DiscoveryError::TooLong {
                len: tag.value.len(),
            })?;
            buffer[at..at + 2].copy_from_slice(&tag.tag_type.value().to_be_bytes());
            buffer[at + 2..at + 4].copy_from_slice(&len.to_be_bytes());
            buffer[at + 4..at + 4 + tag.value.len()].copy_from_slice(&tag.value);
            at += tag.wire_len();
        }
        Ok(required)
    }

    /// The frame as a new vector.
    ///
    /// # Errors
    ///
    /// [`DiscoveryError::TooLong`] as [`emit`](Self::emit).
    pub fn to_bytes(&self) -> Result<Vec<u8>, DiscoveryError> {
        let mut buffer = vec![0; self.buffer_len()];
        self.emit(&mut buffer)?;
        Ok(buffer)
    }

    /// The tags that count: those before the first End-Of-List (RFC 2516 Appendix A).
    pub fn effective_tags(&self) -> impl Iterator<Item = &Tag> {
        self.tags
            .iter()
            .take_while(|t| t.tag_type != TagType::EndOfList)
    }

    /// The value of the first tag of `tag_type` before End-Of-List.
    pub fn tag(&self, tag_type: TagType) -> Option<&[u8]> {
        self.effective_tags()
            .find(|t| t.tag_type == tag_type)
            .map(|t| t.value.as_slice())
    }

    /// Values of every tag of `tag_type` before End-Of-List.
    pub fn tags_of(&self, tag_type: TagType) -> impl Iterator<Item = &[u8]> {
        self.effective_tags()
            .filter(move |t| t.tag_type == tag_type)
            .map(|t| t.value.as_slice())
    }

    /// The PPP-Max-Payload value, if a well-formed (2-byte) tag is present.
    pub fn ppp_max_payload(&self) -> Option<u16> {
        match self.tag(TagType::PppMaxPayload)? {
            [a, b] => Some(u16::from_be_bytes([*a, *b])),
            _ => None,
        }
    }

    /// The first error tag (Service-Name-DiscoveryError, AC-System-DiscoveryError, Generic-DiscoveryError) and its text.
    pub fn error_tag(&self) -> Option<(TagType, String)> {
        self.effective_tags()
            .find(|t| {
                matches!(
                    t.tag_type,
                    TagType::ServiceNameError | TagType::AcSystemError | TagType::GenericError
                )
            })
            .map(|t| (t.tag_type, String::from_utf8_lossy(&t.value).into_owned()))
    }
}

impl fmt::Display for DiscoveryRepr {
    /// pppd-like summary: `PADI Service-Name="" Host-Uniq=0x0102`; session id when non-zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if self.session_id != 0 {
            write!(f, " session={:#06x}", self.session_id)?;
        }
        for tag in &self.tags {
            write!(f, " {}", TagSummary(tag.tag_type, &tag.value))?;
        }
        Ok(())
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Packet<T> {
    /// The same pppd-like summary as [`DiscoveryRepr`]'s, read in place (no allocation), so a log
    /// line costs nothing when debug logging is off: `PADI Service-Name="" Host-Uniq=0x0102`. A
    /// session frame shows its length instead of tags; a tag that runs past the end shows as
    /// `...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())?;
        if self.session_id() != 0 {
            write!(f, " session={:#06x}", self.session_id())?;
        }
        if self.ethertype() != ETHERTYPE_DISCOVERY {
            return write!(f, " len={}", self.payload_len());
        }
        for tag in self.tags() {
            match tag {
                Ok(tag) => write!(f, " {}", TagSummary(tag.tag_type, tag.value))?,
                Err(_) => return f.write_str(" ..."),
            }
        }
        Ok(())
    }
}

/// A discovery frame read in place: the headers and the first tag of each kind the state
/// machines look at (before End-Of-List, as [`DiscoveryRepr::tag`] finds them), with no copy and
/// no allocation. It accepts exactly the frames [`DiscoveryRepr::parse_bytes`] accepts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DiscoveryView<'a> {
    /// The whole frame, for logging.
    pub(crate) packet: Packet<&'a [u8]>,
    pub(crate) dst: MacAddr,
    pub(crate) src: MacAddr,
    pub(crate) code: Code,
    pub(crate) session_id: u16,
    pub(crate) service_name: Option<&'a [u8]>,
    pub(crate) host_uniq: Option<&'a [u8]>,
    pub(crate) ac_cookie: Option<&'a [u8]>,
    pub(crate) relay_session_id: Option<&'a [u8]>,
    /// The first PPP-Max-Payload tag, if it is well-formed (2 bytes).
    pub(crate) ppp_max_payload: Option<u16>,
    /// The first error tag and its text.
    pub(crate) error: Option<(TagType, &'a [u8])>,
}

impl<'a> DiscoveryView<'a> {
    /// Reads a discovery frame (Ethertype 0x8863). Every tag is checked, as in
    /// [`DiscoveryRepr::parse`].
    pub(crate) fn parse(frame: &'a [u8]) -> Result<Self, DiscoveryError> {
        let packet = Packet::new_checked(frame)?;
        if packet.ethertype() != ETHERTYPE_DISCOVERY {
            return Err(DiscoveryError::WrongEthertype {
                found: packet.ethertype(),
                expected: ETHERTYPE_DISCOVERY,
            });
        }
        if packet.version_type() != VERSION_TYPE {
            return Err(DiscoveryError::BadVersionType(packet.version_type()));
        }
        let mut view = DiscoveryView {
            packet,
            dst: packet.dst_addr(),
            src: packet.src_addr(),
            code: packet.code(),
            session_id: packet.session_id(),
            service_name: None,
            host_uniq: None,
            ac_cookie: None,
            relay_session_id: None,
            ppp_max_payload: None,
            error: None,
        };
        let mut max_payload: Option<&[u8]> = None;
        let mut ended = false;
        let end = HEADER_LEN + usize::from(packet.payload_len());
        for tag in TagIter::new(frame.get(HEADER_LEN..end).unwrap_or_default()) {
            let tag = tag?;
            if ended {
                continue;
            }
            let slot = match tag.tag_type {
                TagType::EndOfList => {
                    ended = true;
                    continue;
                }
                TagType::ServiceName => &mut view.service_name,
                TagType::HostUniq => &mut view.host_uniq,
                TagType::AcCookie => &mut view.ac_cookie,
                TagType::RelaySessionId => &mut view.relay_session_id,
                TagType::PppMaxPayload => &mut max_payload,
                TagType::ServiceNameError | TagType::AcSystemError | TagType::GenericError => {
                    if view.error.is_none() {
                        view.error = Some((tag.tag_type, tag.value));
                    }
                    continue;
                }
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(tag.value);
            }
        }
        view.ppp_max_payload = match max_payload {
            Some([a, b]) => Some(u16::from_be_bytes([*a, *b])),
            _ => None,
        };
        Ok(view)
    }
}

/// Writes a discovery frame straight into one vector of the right size: headers, then tags.
pub(crate) struct FrameWriter {
    buf: Vec<u8>,
    too_long: Option<usize>,
}

impl FrameWriter {
    /// A frame whose tags will take `payload_len` bytes (see [`tag_wire_len`]); the vector is
    /// allocated once with that capacity.
    pub(crate) fn new(
        dst: MacAddr,
        src: MacAddr,
        code: Code,
        session_id: u16,
        payload_len: usize,
    ) -> Self {
        let mut buf = Vec::with_capacity(HEADER_LEN.saturating_add(payload_len));
        buf.extend_from_slice(&dst.0);
        buf.extend_from_slice(&src.0);
        buf.extend_from_slice(&ETHERTYPE_DISCOVERY.to_be_bytes());
        buf.extend_from_slice(&[VERSION_TYPE, code.value()]);
        buf.extend_from_slice(&session_id.to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        FrameWriter {
            buf,
            too_long: None,
        }
    }

    /// Appends a tag.
    pub(crate) fn tag(&mut self, tag_type: TagType, value: &[u8]) -> &mut Self {
        match u16::try_from(value.len()) {
            Ok(len) => {
                self.buf.extend_from_slice(&tag_type.value().to_be_bytes());
                self.buf.extend_from_slice(&len.to_be_bytes());
                self.buf.extend_from_slice(value);
            }
            Err(_) => self.too_long = Some(value.len()),
        }
        self
    }

    /// The frame, with its LENGTH field set.
    pub(crate) fn finish(mut self) -> Result<Vec<u8>, DiscoveryError> {
        if let Some(len) = self.too_long {
            return Err(DiscoveryError::TooLong { len });
        }
        let payload_len = self.buf.len() - HEADER_LEN;
        let length =
            u16::try_from(payload_len).map_err(|_| DiscoveryError::TooLong { len: payload_len })?;
        self.buf[field::LENGTH].copy_from_slice(&length.to_be_bytes());
        Ok(self.buf)
    }
}

/// Bytes a tag with a `value_len`-byte value takes on the wire.
pub(crate) const fn tag_wire_len(value_len: usize) -> usize {
    TAG_HEADER_LEN + value_len
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CLIENT: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
    const AC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xac]);

    /// A PADI as laid out in RFC 2516 §5.1: broadcast destination, code 0x09, session 0, one
    /// Service-Name tag (empty: any service) and a Host-Uniq.
    const PADI: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // destination: broadcast
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // source: the host
        0x88, 0x63, // Ethertype: discovery
        0x11, 0x09, 0x00, 0x00, // VER=1 TYPE=1, CODE=PADI, SESSION_ID=0
        0x00, 0x0c, // LENGTH = 12
        0x01, 0x01, 0x00, 0x00, // Service-Name, length 0
        0x01, 0x03, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef, // Host-Uniq
    ];

    /// A PADS (RFC 2516 §5.4): unicast, code 0x65, session 0x1234, Service-Name "isp".
    const PADS: [u8; 27] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0xac, 0x88, 0x63, 0x11,
        0x65, 0x12, 0x34, 0x00, 0x07, 0x01, 0x01, 0x00, 0x03, b'i', b's', b'p',
    ];

    /// A PADT (RFC 2516 §5.5): no tags required.
    const PADT: [u8; 20] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0xac, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x88, 0x63, 0x11,
        0xa7, 0x12, 0x34, 0x00, 0x00,
    ];

    #[test]
    fn golden_frames() {
        let padi = DiscoveryRepr::new(MacAddr::BROADCAST, CLIENT, Code::Padi, 0)
            .with_tag(TagType::ServiceName, "")
            .with_tag(TagType::HostUniq, [0xde, 0xad, 0xbe, 0xef]);
        let pads = DiscoveryRepr::new(CLIENT, AC, Code::Pads, 0x1234)
            .with_tag(TagType::ServiceName, "isp");
        let padt = DiscoveryRepr::new(AC, CLIENT, Code::Padt, 0x1234);
        for (bytes, repr) in [(&PADI[..], padi), (&PADS[..], pads), (&PADT[..], padt)] {
            assert_eq!(DiscoveryRepr::parse_bytes(bytes).as_ref(), Ok(&repr));
            assert_eq!(repr.to_bytes().as_deref(), Ok(bytes));
            assert_eq!(repr.buffer_len(), bytes.len());
        }
    }

    #[test]
    fn view_accessors_and_setters() {
        let packet = Packet::new_checked(&PADS[..]).unwrap();
        assert_eq!(packet.dst_addr(), CLIENT);
        assert_eq!(packet.src_addr(), AC);
        assert_eq!(packet.ethertype(), ETHERTYPE_DISCOVERY);
        assert_eq!(packet.version_type(), 0x11);
        assert_eq!(packet.code(), Code::Pads);
        assert_eq!(packet.session_id(), 0x1234);
        assert_eq!(packet.payload_len(), 7);
        let tags: Vec<_> = packet.tags().collect();
        assert_eq!(
            tags,
            [Ok(TagRef {
                tag_type: TagType::ServiceName,
                value: b"isp"
            })]
        );

        let mut bytes = PADS;
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.set_session_id(0xbeef);
        packet.set_code(Code::Padt);
        assert_eq!(packet.session_id(), 0xbeef);
        assert_eq!(packet.code(), Code::Padt);
    }

    #[test]
    fn padding_is_ignored_and_overlong_length_is_an_error() {
        let mut padded = PADT.to_vec();
        padded.resize(60, 0);
        let repr = DiscoveryRepr::parse_bytes(&padded).unwrap();
        assert_eq!(repr.to_bytes().unwrap(), PADT);

        let mut long = PADS.to_vec();
        long[19] = 8;
        assert_eq!(
            DiscoveryRepr::parse_bytes(&long),
            Err(DiscoveryError::LengthMismatch {
                declared: 8,
                available: 7
            })
        );
    }

    #[test]
    fn malformed_frames() {
        // Table: (bytes, expected error).
        let mut bad_version = PADT;
        bad_version[14] = 0x21;
        let mut bad_ethertype = PADT;
        bad_ethertype[13] = 0x64;
        let mut overrun = PADS;
        overrun[23] = 4; // Service-Name claims 4 bytes, 3 present.
        let mut partial_header = PADS.to_vec();
        partial_header.extend_from_slice(&[0x01, 0x02]);
        partial_header[19] = 9;
        let cases: [(&[u8], DiscoveryError); 6] = [
            (
                &[],
                DiscoveryError::Truncated {
                    len: 0,
                    required: 20,
                },
            ),
            (
                &PADT[..19],
                DiscoveryError::Truncated {
                    len: 19,
                    required: 20,
                },
            ),
            (&bad_version, DiscoveryError::BadVersionType(0x21)),
            (
                &bad_ethertype,
                DiscoveryError::WrongEthertype {
                    found: 0x8864,
                    expected: 0x8863,
                },
            ),
            (&overrun, DiscoveryError::TagOverrun { offset: 0 }),
            (&partial_header, DiscoveryError::TagOverrun { offset: 7 }),
        ];
        for (bytes, error) in cases {
            assert_eq!(
                DiscoveryRepr::parse_bytes(bytes),
                Err(error),
                "{bytes:02x?}"
            );
        }
    }

    #[test]
    fn every_tag_type_round_trips_and_unknown_is_kept() {
        let types = [
            0x0000, 0x0101, 0x0102, 0x0103, 0x0104, 0x0105, 0x0110, 0x0120, 0x0201, 0x0202, 0x0203,
            0x0999,
        ];
        let mut repr = DiscoveryRepr::new(AC, CLIENT, Code::Pado, 0);
        for (i, t) in types.into_iter().enumerate() {
            repr.tags
                .push(Tag::new(TagType::from_value(t), vec![i as u8; i]));
            assert_eq!(TagType::from_value(t).value(), t);
        }
        let bytes = repr.to_bytes().unwrap();
        assert_eq!(DiscoveryRepr::parse_bytes(&bytes).unwrap(), repr);
        assert_eq!(
            format!("{:?}", TagType::from_value(0x0999)),
            "Unknown(0x0999)"
        );
        assert_eq!(format!("{:?}", Code::from_value(0x42)), "Unknown(0x42)");
        assert_eq!(TagType::PppMaxPayload.value(), 0x0120);
        assert_eq!(Code::Padt.value(), 0xa7);
        // Tags after End-Of-List do not count.
        assert_eq!(repr.tag(TagType::ServiceName), None);
    }

    #[test]
    fn summary_for_logs() {
        let repr = DiscoveryRepr::parse_bytes(&PADI).unwrap();
        assert_eq!(
            repr.to_string(),
            "PADI Service-Name=\"\" Host-Uniq=0xdeadbeef"
        );
        let mut pads = DiscoveryRepr::parse_bytes(&PADS).unwrap();
        pads.tags.push(Tag::ppp_max_payload(1500));
        assert_eq!(
            pads.to_string(),
            "PADS session=0x1234 Service-Name=\"isp\" PPP-Max-Payload=1500"
        );
        assert_eq!(pads.ppp_max_payload(), Some(1500));
    }

    #[test]
    fn the_writer_refuses_what_does_not_fit() {
        let mut writer = FrameWriter::new(AC, CLIENT, Code::Pado, 0, 0);
        writer.tag(TagType::VendorSpecific, &[0; 70_000]);
        assert_eq!(
            writer.finish(),
            Err(DiscoveryError::TooLong { len: 70_000 })
        );
        let mut writer = FrameWriter::new(AC, CLIENT, Code::Pado, 0, 0);
        for _ in 0..3 {
            writer.tag(TagType::VendorSpecific, &[0; 30_000]);
        }
        assert_eq!(
            writer.finish(),
            Err(DiscoveryError::TooLong { len: 90_012 })
        );
    }

    #[test]
    fn the_view_summary_of_a_session_frame() {
        let mut frame = PADT;
        frame[13] = 0x64;
        frame[15] = 0;
        assert_eq!(
            Packet::new_checked(&frame[..]).unwrap().to_string(),
            "SESS session=0x1234 len=0"
        );
        let mut overrun = PADS;
        overrun[23] = 4;
        assert_eq!(
            Packet::new_checked(&overrun[..]).unwrap().to_string(),
            "PADS session=0x1234 ..."
        );
    }

    #[test]
    fn emit_checks_buffer_and_lengths() {
        let repr = DiscoveryRepr::parse_bytes(&PADS).unwrap();
        let mut small = [0u8; 26];
        assert_eq!(
            repr.emit(&mut small),
            Err(DiscoveryError::BufferTooSmall { required: 27 })
        );
        let huge = DiscoveryRepr::new(AC, CLIENT, Code::Pado, 0)
            .with_tag(TagType::VendorSpecific, vec![0; 70_000]);
        assert_eq!(
            huge.to_bytes(),
            Err(DiscoveryError::TooLong { len: 70_004 })
        );
    }

    fn arb_tag() -> impl Strategy<Value = Tag> {
        (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(t, v)| Tag::new(TagType::from_value(t), v))
    }

    fn arb_repr() -> impl Strategy<Value = DiscoveryRepr> {
        (
            any::<[u8; 6]>(),
            any::<[u8; 6]>(),
            any::<u8>(),
            any::<u16>(),
            proptest::collection::vec(arb_tag(), 0..12),
        )
            .prop_map(|(dst, src, code, session_id, tags)| DiscoveryRepr {
                dst: MacAddr(dst),
                src: MacAddr(src),
                code: Code::from_value(code),
                session_id,
                tags,
            })
    }

    proptest! {
        #[test]
        fn parse_emit_round_trip(repr in arb_repr()) {
            let bytes = repr.to_bytes().unwrap();
            prop_assert_eq!(DiscoveryRepr::parse_bytes(&bytes).unwrap(), repr);
        }

        #[test]
        fn emit_parse_round_trip_with_padding(repr in arb_repr(), pad in 0usize..50) {
            let bytes = repr.to_bytes().unwrap();
            let mut padded = bytes.clone();
            padded.resize(bytes.len() + pad, 0);
            let parsed = DiscoveryRepr::parse_bytes(&padded).unwrap();
            prop_assert_eq!(parsed.to_bytes().unwrap(), bytes);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(repr) = DiscoveryRepr::parse_bytes(&bytes) {
                let emitted = repr.to_bytes().unwrap();
                prop_assert_eq!(&emitted[..], &bytes[..emitted.len()]);
                let _ = repr.to_string();
            }
            let packet = Packet::new_unchecked(&bytes[..]);
            let _ = (packet.code(), packet.session_id(), packet.payload(), packet.tags().count());
        }

        #[test]
        fn the_view_reads_what_the_repr_reads(
            repr in arb_repr(),
            pad in 0usize..8,
            flip in proptest::option::of((0usize..200, any::<u8>())),
        ) {
            // Well-formed frames (padded), and the same with one byte changed.
            let mut bytes = repr.to_bytes().unwrap();
            bytes.resize(bytes.len() + pad, 0);
            if let Some((at, value)) = flip {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            let view = DiscoveryView::parse(&bytes);
            let parsed = DiscoveryRepr::parse_bytes(&bytes);
            match (view, parsed) {
                (Ok(view), Ok(repr)) => {
                    prop_assert_eq!((view.dst, view.src, view.code, view.session_id), (repr.dst, repr.src, repr.code, repr.session_id));
                    prop_assert_eq!(view.service_name, repr.tag(TagType::ServiceName));
                    prop_assert_eq!(view.host_uniq, repr.tag(TagType::HostUniq));
                    prop_assert_eq!(view.ac_cookie, repr.tag(TagType::AcCookie));
                    prop_assert_eq!(view.relay_session_id, repr.tag(TagType::RelaySessionId));
                    prop_assert_eq!(view.ppp_max_payload, repr.ppp_max_payload());
                    prop_assert_eq!(
                        view.error.map(|(t, v)| (t, String::from_utf8_lossy(v).into_owned())),
                        repr.error_tag()
                    );
                    prop_assert_eq!(view.packet.to_string(), repr.to_string());
                }
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                (view, parsed) => prop_assert!(false, "view {:?}, repr {:?}", view.map(|_| ()), parsed),
            }
        }

        #[test]
        fn the_writer_writes_what_the_repr_emits(repr in arb_repr()) {
            let len = repr.tags.iter().map(|t| tag_wire_len(t.value.len())).sum();
            let mut writer = FrameWriter::new(repr.dst, repr.src, repr.code, repr.session_id, len);
            for tag in &repr.tags {
                writer.tag(tag.tag_type, &tag.value);
            }
            let written = writer.finish().unwrap();
            prop_assert_eq!(written.capacity(), written.len(), "one allocation of the right size");
            prop_assert_eq!(written, repr.to_bytes().unwrap());
        }

        #[test]
        fn discovery_shaped_bytes_never_panic(
            header in any::<[u8; 6]>(),
            payload in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let mut bytes = PADT[..14].to_vec();
            bytes.push(0x11);
            bytes.extend_from_slice(&header[..3]);
            bytes.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            bytes.extend_from_slice(&payload);
            if let Ok(repr) = DiscoveryRepr::parse_bytes(&bytes) {
                prop_assert_eq!(repr.to_bytes().unwrap(), bytes);
            }
        }
    }
}
