//! CCP configuration options (RFC 1962 §4): MPPE/MPPC (RFC 3078 §2), Deflate (RFC 1979) and
//! the option types we only recognise to Configure-Reject them.
//!
//! [`CcpOption::parse`] and [`CcpOption::emit`] are symmetric: every option that parses emits
//! the same bytes again (a known type with an unexpected length is kept as
//! [`CcpOption::Unknown`]). Nothing here panics on any input.

use core::fmt::{self, Write as _};

use ppp_lcp::options::{RawOption, iter_options, push_option};

macro_rules! option_types {
    ($( $(#[$doc:meta])* $name:ident = $value:literal; )*) => {
        /// A CCP option type. An open enum: unnamed types are kept in [`OptionType::Unknown`];
        /// `Debug` prints them in hex.
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub enum OptionType {
            $( $(#[$doc])* $name, )*
            /// A type without a name here.
            Unknown(u8),
        }

        impl OptionType {
            /// The type byte.
            pub const fn number(self) -> u8 {
                match self {
                    $( OptionType::$name => $value, )*
                    OptionType::Unknown(n) => n,
                }
            }

            /// The type for a byte.
            pub const fn from_number(n: u8) -> Self {
                match n {
                    $( $value => OptionType::$name, )*
                    n => OptionType::Unknown(n),
                }
            }
        }

        impl fmt::Debug for OptionType {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $( OptionType::$name => f.write_str(stringify!($name)), )*
                    OptionType::Unknown(n) => write!(f, "Unknown({n:#04x})"),
                }
            }
        }
    };
}

option_types! {
    /// Organization Unique Identifier (0).
    Oui = 0;
    /// Predictor type 1 (1).
    Predictor1 = 1;
    /// Predictor type 2 (2).
    Predictor2 = 2;
    /// Puddle Jumper (3).
    PuddleJumper = 3;
    /// Hewlett-Packard PPC (16).
    HpPpc = 16;
    /// Stac Electronics LZS (17).
    StacLzs = 17;
    /// Microsoft Point-to-Point Compression and Encryption (18, RFC 2118 / RFC 3078).
    Mppe = 18;
    /// Gandalf FZA (19).
    GandalfFza = 19;
    /// V.42bis (20).
    V42bis = 20;
    /// BSD-Compress (21, RFC 1977).
    BsdCompress = 21;
    /// LZS-DCP (23).
    LzsDcp = 23;
    /// Deflate, the number of the pre-RFC draft that pppd still accepts (24).
    DeflateDraft = 24;
    /// Deflate (26, RFC 1979).
    Deflate = 26;
}

impl From<u8> for OptionType {
    fn from(n: u8) -> Self {
        OptionType::from_number(n)
    }
}

/// The 32-bit Supported Bits of the MPPE/MPPC option (RFC 3078 §2.1), most significant octet
/// first on the wire. `Debug` prints them as pppd does: `MppeBits(+H -M +S -L -D -C)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MppeBits(pub u32);

impl MppeBits {
    /// H: stateless mode (a new key for every packet).
    pub const STATELESS: u32 = 0x0100_0000;
    /// M: 56-bit keys.
    pub const BITS_56: u32 = 0x80;
    /// S: 128-bit keys.
    pub const BITS_128: u32 = 0x40;
    /// L: 40-bit keys.
    pub const BITS_40: u32 = 0x20;
    /// D: obsolete, meaning unknown; never set by us and cleared in our Naks.
    pub const OBSOLETE_D: u32 = 0x10;
    /// C: MPPC compression (RFC 2118). Not implemented: never requested, cleared in our Naks.
    pub const MPPC: u32 = 0x01;
    /// Every bit defined by RFC 3078.
    pub const KNOWN: u32 = Self::STATELESS
        | Self::BITS_56
        | Self::BITS_128
        | Self::BITS_40
        | Self::OBSOLETE_D
        | Self::MPPC;
    /// The key-strength bits.
    pub const STRENGTHS: u32 = Self::BITS_56 | Self::BITS_128 | Self::BITS_40;

    /// Whether every bit of `mask` is set.
    pub const fn has(self, mask: u32) -> bool {
        self.0 & mask == mask
    }

    /// Whether stateless mode (H) is set.
    pub const fn stateless(self) -> bool {
        self.has(Self::STATELESS)
    }

    /// The bits with `mask` set or cleared.
    #[must_use]
    pub const fn with(self, mask: u32, set: bool) -> Self {
        if set {
            MppeBits(self.0 | mask)
        } else {
            MppeBits(self.0 & !mask)
        }
    }

    /// Bits set that RFC 3078 does not define.
    pub const fn unknown_bits(self) -> u32 {
        self.0 & !Self::KNOWN
    }
}

impl fmt::Debug for MppeBits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MppeBits({self})")
    }
}

impl fmt::Display for MppeBits {
    /// pppd's rendering: `+H -M +S -L -D -C`, then `+U` if undefined bits are set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flags = [
            ('H', Self::STATELESS),
            ('M', Self::BITS_56),
            ('S', Self::BITS_128),
            ('L', Self::BITS_40),
            ('D', Self::OBSOLETE_D),
            ('C', Self::MPPC),
        ];
        for (i, (name, mask)) in flags.into_iter().enumerate() {
            if i > 0 {
                f.write_char(' ')?;
            }
            f.write_char(if self.has(mask) { '+' } else { '-' })?;
            f.write_char(name)?;
        }
        if self.unknown_bits() != 0 {
            f.write_str(" +U")?;
        }
        Ok(())
    }
}

/// The Deflate option's data (RFC 1979 §2.1): window size, method and check method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeflateOption {
    /// Type 24 (the draft number pppd also accepts) rather than 26.
    pub draft: bool,
    /// Base-two logarithm of the LZ77 window, 8–23 on the wire (the high nibble plus 8); pppd
    /// and Linux work with 9–15.
    pub window_bits: u8,
    /// Compression method (the low nibble): 8 is Deflate.
    pub method: u8,
    /// Check method: 0 (sequence number) is the only one defined.
    pub check: u8,
}

impl DeflateOption {
    /// The only compression method: Deflate.
    pub const METHOD_DEFLATE: u8 = 8;
    /// The only check method: sequence numbers.
    pub const CHECK_SEQUENCE: u8 = 0;

    /// Type 26, method Deflate, sequence-number check, the given window.
    pub const fn new(window_bits: u8) -> Self {
        DeflateOption {
            draft: false,
            window_bits,
            method: Self::METHOD_DEFLATE,
            check: Self::CHECK_SEQUENCE,
        }
    }

    /// The option type (24 or 26).
    pub const fn option_type(self) -> OptionType {
        if self.draft {
            OptionType::DeflateDraft
        } else {
            OptionType::Deflate
        }
    }

    fn data(self) -> [u8; 2] {
        let nibble = self.window_bits.saturating_sub(8).min(15);
        [(nibble << 4) | (self.method & 0x0f), self.check]
    }
}

/// One CCP option.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum CcpOption {
    /// MPPE/MPPC (type 18, 4 data bytes).
    Mppe(MppeBits),
    /// Deflate (type 26, or the draft type 24; 2 data bytes).
    Deflate(DeflateOption),
    /// Any other option, or a known type with an unexpected length: Configure-Rejected.
    Unknown {
        /// The option type.
        kind: OptionType,
        /// The option data, excluding type and length.
        data: Vec<u8>,
    },
}

impl fmt::Debug for CcpOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CcpOption::Mppe(bits) => write!(f, "Mppe({bits})"),
            CcpOption::Deflate(option) => write!(f, "{option:?}"),
            CcpOption::Unknown { kind, data } => {
                write!(f, "Unknown {{ kind: {kind:?}, data: [")?;
                for (i, b) in data.iter().enumerate() {
                    if i > 0 {
                        f.write_char(' ')?;
                    }
                    write!(f, "{b:02x}")?;
                }
                f.write_str("] }")
            }
        }
    }
}

impl CcpOption {
    /// The option from its raw form (as yielded by [`iter_options`]). Never fails: what is not
    /// understood becomes [`CcpOption::Unknown`].
    pub fn parse(raw: RawOption<'_>) -> Self {
        let kind = OptionType::from(raw.kind);
        match (kind, raw.data) {
            (OptionType::Mppe, &[a, b, c, d]) => {
                CcpOption::Mppe(MppeBits(u32::from_be_bytes([a, b, c, d])))
            }
            (OptionType::Deflate | OptionType::DeflateDraft, &[first, check]) => {
                CcpOption::Deflate(DeflateOption {
                    draft: kind == OptionType::DeflateDraft,
                    window_bits: (first >> 4) + 8,
                    method: first & 0x0f,
                    check,
                })
            }
            _ => CcpOption::Unknown {
                kind,
                data: raw.data.to_vec(),
            },
        }
    }

    /// The option type.
    pub fn option_type(&self) -> OptionType {
        match self {
            CcpOption::Mppe(_) => OptionType::Mppe,
            CcpOption::Deflate(option) => option.option_type(),
            CcpOption::Unknown { kind, .. } => *kind,
        }
    }

    /// Length of the encoded option (type and length bytes included).
    pub fn buffer_len(&self) -> usize {
        2 + match self {
            CcpOption::Mppe(_) => 4,
            CcpOption::Deflate(_) => 2,
            CcpOption::Unknown { data, .. } => data.len().min(253),
        }
    }

    /// Append the encoded option to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let kind = self.option_type().number();
        match self {
            CcpOption::Mppe(bits) => push_option(out, kind, &bits.0.to_be_bytes()),
            CcpOption::Deflate(option) => push_option(out, kind, &option.data()),
            CcpOption::Unknown { data, .. } => push_option(out, kind, data),
        }
    }

    /// pppd's rendering: `mppe +H -M +S -L -D -C`, `deflate 15`, `deflate(old#) 15`.
    pub fn describe(&self, out: &mut String) {
        match self {
            CcpOption::Mppe(bits) => {
                let _ = write!(out, "mppe {bits}");
            }
            CcpOption::Deflate(option) => {
                let old = if option.draft { "(old#)" } else { "" };
                let _ = write!(out, "deflate{old} {}", option.window_bits);
                if option.method != DeflateOption::METHOD_DEFLATE {
                    let _ = write!(out, " method {:#x}", option.method);
                }
                if option.check != DeflateOption::CHECK_SEQUENCE {
                    let _ = write!(out, " check {:#x}", option.check);
                }
            }
            CcpOption::Unknown { kind, data } => {
                let rest: &[u8] = match (kind, data.as_slice()) {
                    (OptionType::BsdCompress, &[first]) => {
                        let _ = write!(out, "bsd v{} {}", first >> 5, first & 0x1f);
                        &[]
                    }
                    (OptionType::Predictor1, rest) => {
                        out.push_str("predictor 1");
                        rest
                    }
                    (OptionType::Predictor2, rest) => {
                        out.push_str("predictor 2");
                        rest
                    }
                    (_, rest) => {
                        let _ = write!(out, "{:02x} {:02x}", kind.number(), rest.len() + 2);
                        rest
                    }
                };
                for b in rest.iter().take(32) {
                    let _ = write!(out, " {b:02x}");
                }
                if rest.len() > 32 {
                    out.push_str(" ...");
                }
            }
        }
    }
}

/// Parse a whole option list; `None` if it is not a well-formed TLV list.
pub fn parse_options(list: &[u8]) -> Option<Vec<CcpOption>> {
    iter_options(list)
        .map(|raw| raw.ok().map(CcpOption::parse))
        .collect()
}

/// Encode an option list.
pub fn emit_options(options: &[CcpOption]) -> Vec<u8> {
    let mut out = Vec::new();
    for option in options {
        option.emit(&mut out);
    }
    out
}

/// pppd-style rendering of a CCP option list: `<mppe +H -M +S -L -D -C> <deflate 15>`.
pub fn describe_ccp_options(list: &[u8]) -> String {
    let mut out = String::new();
    for (i, raw) in iter_options(list).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match raw {
            Ok(raw) => {
                out.push('<');
                CcpOption::parse(raw).describe(&mut out);
                out.push('>');
            }
            Err(_) => out.push_str("<malformed>"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_bytes() {
        let cases: &[(CcpOption, &[u8], &str)] = &[
            // pppd require-mppe-128: stateless, 128-bit.
            (
                CcpOption::Mppe(MppeBits(MppeBits::STATELESS | MppeBits::BITS_128)),
                &[0x12, 0x06, 0x01, 0x00, 0x00, 0x40],
                "<mppe +H -M +S -L -D -C>",
            ),
            // Stateful 40- and 128-bit offer.
            (
                CcpOption::Mppe(MppeBits(MppeBits::BITS_128 | MppeBits::BITS_40)),
                &[0x12, 0x06, 0x00, 0x00, 0x00, 0x60],
                "<mppe -H -M +S +L -D -C>",
            ),
            // MPPC only (what Windows RAS offers without encryption).
            (
                CcpOption::Mppe(MppeBits(MppeBits::MPPC)),
                &[0x12, 0x06, 0x00, 0x00, 0x00, 0x01],
                "<mppe -H -M -S -L -D +C>",
            ),
            (
                CcpOption::Deflate(DeflateOption::new(15)),
                &[0x1a, 0x04, 0x78, 0x00],
                "<deflate 15>",
            ),
            (
                CcpOption::Deflate(DeflateOption {
                    draft: true,
                    ..DeflateOption::new(12)
                }),
                &[0x18, 0x04, 0x48, 0x00],
                "<deflate(old#) 12>",
            ),
            // BSD-Compress version 1, 15 bits.
            (
                CcpOption::Unknown {
                    kind: OptionType::BsdCompress,
                    data: vec![0x2f],
                },
                &[0x15, 0x03, 0x2f],
                "<bsd v1 15>",
            ),
        ];
        for (option, bytes, text) in cases {
            let mut out = Vec::new();
            option.emit(&mut out);
            assert_eq!(&out, bytes, "{option:?}");
            assert_eq!(option.buffer_len(), bytes.len());
            assert_eq!(parse_options(bytes), Some(vec![option.clone()]));
            assert_eq!(describe_ccp_options(bytes), *text);
        }
    }

    #[test]
    fn odd_lengths_and_unknown_bits() {
        // An MPPE option with 3 data bytes is not an MPPE option we understand.
        let odd = [0x12, 0x05, 0, 0, 0x40];
        let parsed = parse_options(&odd).unwrap();
        assert!(matches!(parsed[0], CcpOption::Unknown { .. }));
        assert_eq!(emit_options(&parsed), odd);
        assert_eq!(
            format!(
                "{:?}",
                CcpOption::parse(RawOption {
                    kind: 99,
                    data: &[0xab]
                })
            ),
            "Unknown { kind: Unknown(0x63), data: [ab] }"
        );
        assert_eq!(MppeBits(0x0200_0040).to_string(), "-H -M +S -L -D -C +U");
        assert_eq!(parse_options(&[0x12]), None);
    }

    proptest::proptest! {
        #[test]
        fn parse_emit_round_trip(kind in proptest::prop_oneof![
            proptest::strategy::Just(18u8), proptest::strategy::Just(24u8),
            proptest::strategy::Just(26u8), proptest::num::u8::ANY],
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..8)) {
            let mut list = Vec::new();
            push_option(&mut list, kind, &data);
            let parsed = parse_options(&list).unwrap();
            proptest::prop_assert_eq!(parsed.len(), 1);
            proptest::prop_assert_eq!(parsed[0].buffer_len(), list.len());
            proptest::prop_assert_eq!(emit_options(&parsed), list.clone());
            let _ = describe_ccp_options(&list);
        }

        #[test]
        fn describe_never_panics(list in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            let _ = describe_ccp_options(&list);
            let _ = parse_options(&list);
        }
    }
}
