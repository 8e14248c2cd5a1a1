//! Async HDLC-like framing (RFC 1662 §4): octet stuffing, ACCM, FCS.

use crate::fcs::{self, FCS16_GOOD, FCS16_INIT, FCS32_GOOD, FCS32_INIT, bytewise};
use crate::scan::{ByteSet, WordTest, find_first, find_first_portable};
use crate::simd::{self, Shape, Tier};
use crate::{FrameError, Protocol};

/// The flag sequence that opens and closes every frame.
pub const FLAG: u8 = 0x7E;
/// The control escape octet: the next octet is sent XOR 0x20.
pub const ESCAPE: u8 = 0x7D;
/// The All-Stations address.
pub const ALLSTATIONS: u8 = 0xFF;
/// The Unnumbered Information control field.
pub const UI: u8 = 0x03;

/// The Frame Check Sequence in use (RFC 1662 §C, RFC 1570 FCS-Alternatives).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FcsKind {
    /// The 16-bit FCS, the default.
    #[default]
    Fcs16,
    /// The 32-bit FCS.
    Fcs32,
    /// No FCS at all (RFC 1570 "Null FCS").
    Null,
}

impl FcsKind {
    /// Bytes the FCS occupies at the end of a frame.
    pub const fn len(self) -> usize {
        match self {
            FcsKind::Fcs16 => 2,
            FcsKind::Fcs32 => 4,
            FcsKind::Null => 0,
        }
    }

    /// Whether the FCS occupies no bytes (the null FCS).
    pub const fn is_empty(self) -> bool {
        matches!(self, FcsKind::Null)
    }
}

/// Which implementation of the framing loops an [`AsyncEncoder`] or [`AsyncDecoder`] runs.
///
/// All of them give the same bytes, frames, errors and statistics for every input (the tests and
/// the fuzz targets check that); they differ only in speed. The choice exists so that the portable
/// and reference code can be measured and compared with the default in one process.
///
/// ```
/// use ppp_frame::{AsyncEncoder, EncoderConfig, Kernels, Protocol};
///
/// let mut wire = [Vec::new(), Vec::new(), Vec::new()];
/// for (kernels, out) in [Kernels::Auto, Kernels::Portable, Kernels::Reference].into_iter().zip(&mut wire) {
///     let mut encoder = AsyncEncoder::new(EncoderConfig::default()).with_kernels(kernels);
///     encoder.encode(Protocol::Ipv4, &[0x45, 0x00, 0x7E, 0x11, 0x7D], out);
/// }
/// assert_eq!(wire[0], wire[1]);
/// assert_eq!(wire[0], wire[2]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kernels {
    /// The fastest code the running CPU supports: on x86-64 with SSSE3, SSE4.1, POPCNT and
    /// PCLMULQDQ (AVX2 when present), detected at run time, SIMD kernels that escape and fold the
    /// FCS in one pass and unescape a block at a time; elsewhere, or when the environment variable
    /// `PPP_FRAME_PORTABLE` was set when the CPU was first probed, the [`Kernels::Portable`] code.
    #[default]
    Auto,
    /// Safe, portable code without SIMD intrinsics: the encoder escapes a payload 16 bytes at a
    /// time (a word-at-a-time test, a block without escapes copied whole) and folds its
    /// slice-by-16 FCS in the same pass; the decoder searches for the next flag, escape or
    /// control character a word at a time and checks the FCS with the slice-by-16 tables (over
    /// the input itself when a whole frame arrived as one run without escapes).
    Portable,
    /// Byte at a time, as RFC 1662 describes it: the reference the others are checked against.
    Reference,
    /// For the fuzz targets, which compare every kernel with the reference: the SIMD kernels of
    /// no level above the given one (0: portable, 1: SSE4.1 and PCLMULQDQ, 2: AVX2, 3: AVX2 and
    /// VPCLMULQDQ, 4 and up: AVX-512), whatever this CPU would pick, clamped to what it has.
    #[doc(hidden)]
    SimdUpTo(u8),
}

/// How an encoder or decoder runs: byte by byte, or the fast code up to a SIMD tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Reference,
    Fast(Tier),
}

impl Kernels {
    fn path(self) -> Path {
        match self {
            Kernels::Auto => Path::Fast(Tier::Avx512),
            Kernels::Portable => Path::Fast(Tier::Portable),
            Kernels::Reference => Path::Reference,
            Kernels::SimdUpTo(level) => Path::Fast(match level {
                0 => Tier::Portable,
                1 => Tier::Sse,
                2 => Tier::Avx2,
                3 => Tier::Avx2Vpclmul,
                _ => Tier::Avx512,
            }),
        }
    }
}

/// The transmit side of a link's framing, as LCP negotiated it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncoderConfig {
    /// Control characters 0x00–0x1F to escape: bit n stands for character n. The peer's ACCM
    /// option; 0xFFFFFFFF until LCP is Opened.
    pub accm: u32,
    /// Further bytes to escape whatever the ACCM says (pppd's `escape` option). 0x7D and 0x7E are
    /// always escaped. Bytes 0x20–0x3F and 0x5E cannot be escaped (they would go out as control
    /// characters or as 0x7E, which a receiver drops or takes as a flag before unescaping, RFC 1662
    /// §4.2) and are ignored here, as pppd ignores them.
    pub extra_escapes: ByteSet,
    /// Omit the address and control fields (Address-and-Control-Field-Compression). Never applied
    /// to LCP.
    pub acfc: bool,
    /// Send protocol numbers below 0x100 in one byte (Protocol-Field-Compression). Never applied
    /// to LCP.
    pub pfc: bool,
    /// The FCS to append.
    pub fcs: FcsKind,
}

impl Default for EncoderConfig {
    /// The framing before any negotiation: ACCM 0xFFFFFFFF, no compression, FCS-16.
    fn default() -> Self {
        EncoderConfig {
            accm: 0xFFFF_FFFF,
            extra_escapes: ByteSet::EMPTY,
            acfc: false,
            pfc: false,
            fcs: FcsKind::Fcs16,
        }
    }
}

/// The set of bytes that must always be escaped.
const ALWAYS_ESCAPED: ByteSet = ByteSet::EMPTY.with(FLAG).with(ESCAPE);

/// Encodes PPP frames for an asynchronous line.
///
/// Frames are appended to a caller-owned buffer. Back-to-back frames share one flag: a frame
/// starts with an opening flag only after [`AsyncEncoder::line_idle`] (and for the first frame),
/// since the closing flag of the previous frame opens the next one.
///
/// LCP packets always go out with address/control and an uncompressed protocol field, and LCP
/// codes 1–7 (Configure-*, Terminate-*, Code-Reject) with every control character escaped, as if
/// nothing had been negotiated (RFC 1661 §6.5, §6.6; RFC 1662 §7.1), so a renegotiation always gets
/// through.
///
/// Nothing here panics. The payload is escaped and its FCS computed in one pass (see
/// [`Kernels`]).
///
/// # Example
///
/// ```
/// use ppp_frame::{AsyncDecoder, AsyncEncoder, DecoderConfig, EncoderConfig, FcsKind, Protocol};
///
/// // After LCP negotiated ACCM 0 and FCS-32.
/// let mut encoder = AsyncEncoder::new(EncoderConfig {
///     accm: 0,
///     fcs: FcsKind::Fcs32,
///     ..EncoderConfig::default()
/// });
/// let datagram = [0x45, 0x00, 0x00, 0x14, 0x7E, 0x7D, 0x11, 0x13];
/// let mut wire = Vec::new();
/// encoder.encode(Protocol::Ipv4, &datagram, &mut wire);
/// // Flag, address/control, protocol, the datagram with 0x7E and 0x7D escaped, FCS, flag.
/// assert_eq!(&wire[..5], &[0x7E, 0xFF, 0x03, 0x00, 0x21]);
/// assert_eq!(&wire[9..15], &[0x7D, 0x5E, 0x7D, 0x5D, 0x11, 0x13]);
/// assert_eq!(wire.last(), Some(&0x7E));
///
/// // Into a caller's buffer instead, with its length checked.
/// let mut buf = [0u8; 64];
/// encoder.line_idle();
/// let len = encoder.encode_into(Protocol::Ipv4, &datagram, &mut buf)?;
/// assert_eq!(&buf[..len], &wire[..]);
///
/// let mut decoder = AsyncDecoder::new(DecoderConfig {
///     accm: 0,
///     fcs: FcsKind::Fcs32,
///     ..DecoderConfig::default()
/// });
/// let mut input = &wire[..];
/// let frame = decoder.decode(&mut input).expect("a whole frame")?;
/// assert_eq!((frame.protocol, frame.payload), (Protocol::Ipv4, &datagram[..]));
/// # Ok::<(), ppp_frame::FrameError>(())
/// ```
#[derive(Clone, Debug)]
pub struct AsyncEncoder {
    config: EncoderConfig,
    escapes: ByteSet,
    default_escapes: ByteSet,
    open_flag: bool,
    kernels: Kernels,
    path: Path,
    /// How the SIMD kernels test for members of `escapes` and of `default_escapes`.
    shapes: [Shape; 2],
    /// The whole-frame SIMD kernels for `shapes` and the FCS on `path` (none: portable tier or
    /// reference path), chosen once.
    frame_encoders: [Option<simd::FrameEncoder>; 2],
    /// The last header framed, escaped, with its FCS register (a link's header rarely changes).
    head: Option<Head>,
}

/// A header as the SIMD encoder writes it, cached by [`AsyncEncoder`].
#[derive(Clone, Debug)]
struct Head {
    /// The protocol, and whether the frame is escaped with the default set (LCP Configure-*,
    /// Terminate-*, Code-Reject) rather than the negotiated one.
    key: (Protocol, bool),
    /// The header escaped, without and with the opening flag in front.
    bytes: [[u8; 16]; 2],
    /// How many bytes of `bytes` are used.
    lens: [u8; 2],
    /// The FCS register after the header.
    register: u32,
}

impl Head {
    /// The frame to encode: this header (with the opening flag if `open` is 1), then `payload`.
    #[inline(always)]
    fn parts<'a>(&'a self, open: usize, payload: &'a [u8]) -> simd::FrameParts<'a> {
        simd::FrameParts {
            head: &self.bytes[open],
            head_len: usize::from(self.lens[open]),
            payload,
            register: self.register,
        }
    }

    fn new(key: (Protocol, bool), header: &[u8], escapes: &ByteSet, fcs: FcsKind) -> Self {
        let mut bytes = [[0u8; 16]; 2];
        bytes[1][0] = FLAG;
        let mut len = 0;
        for &byte in header.iter().take(4) {
            let escaped: &[u8] = if escapes.contains(byte) {
                &[ESCAPE, byte ^ 0x20]
            } else {
                &[byte]
            };
            for &b in escaped {
                bytes[0][len] = b;
                bytes[1][len + 1] = b;
                len += 1;
            }
        }
        let register = match fcs {
            FcsKind::Fcs16 => u32::from(bytewise::fcs16_update(FCS16_INIT, header)),
            FcsKind::Fcs32 => bytewise::fcs32_update(FCS32_INIT, header),
            FcsKind::Null => 0,
        };
        Head {
            key,
            bytes,
            lens: [len as u8, len as u8 + 1],
            register,
        }
    }
}

impl AsyncEncoder {
    /// An encoder with `config`.
    pub fn new(config: EncoderConfig) -> Self {
        let mut encoder = AsyncEncoder {
            escapes: ByteSet::EMPTY,
            default_escapes: ByteSet::EMPTY,
            config,
            open_flag: true,
            kernels: Kernels::Auto,
            path: Kernels::Auto.path(),
            shapes: [ByteSet::EMPTY.shape(); 2],
            frame_encoders: [None; 2],
            head: None,
        };
        encoder.set_config(encoder.config.clone());
        encoder
    }

    /// The encoder with its loops run by `kernels` (the default is [`Kernels::Auto`]).
    #[must_use]
    pub fn with_kernels(mut self, kernels: Kernels) -> Self {
        self.kernels = kernels;
        self.path = kernels.path();
        self.choose_frame_encoders();
        self
    }

    /// The implementation in use.
    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// The encoder on `path` (tests use it to run every SIMD tier).
    #[cfg(test)]
    fn with_path(mut self, path: Path) -> Self {
        self.path = path;
        self.choose_frame_encoders();
        self
    }

    /// The configuration in use.
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// Replaces the configuration (for example when LCP reaches Opened).
    pub fn set_config(&mut self, config: EncoderConfig) {
        let mut extra = config.extra_escapes.bits();
        extra[1] = 0; // 0x20..=0x3F
        extra[2] &= !(1 << (0x5E - 0x40));
        let mut bits = ALWAYS_ESCAPED.with_accm(config.accm).bits();
        let mut default_bits = ALWAYS_ESCAPED.with_accm(0xFFFF_FFFF).bits();
        for i in 0..8 {
            bits[i] |= extra[i];
            default_bits[i] |= extra[i];
        }
        self.escapes = ByteSet::from_bits(bits);
        self.default_escapes = ByteSet::from_bits(default_bits);
        self.shapes = [self.escapes.shape(), self.default_escapes.shape()];
        self.config = config;
        self.head = None;
        self.choose_frame_encoders();
    }

    /// Chooses the whole-frame SIMD kernels for the escape sets, FCS and path in use.
    fn choose_frame_encoders(&mut self) {
        let fold = match self.config.fcs {
            FcsKind::Fcs16 => Some(&fcs::FCS16_FOLD),
            FcsKind::Fcs32 => Some(&fcs::FCS32_FOLD),
            FcsKind::Null => None,
        };
        self.frame_encoders = match self.path {
            Path::Fast(tier) => self
                .shapes
                .map(|shape| simd::frame_encoder(tier, &shape, fold)),
            Path::Reference => [None; 2],
        };
    }

    /// Marks the line as idle: the next frame starts with its own opening flag.
    ///
    /// Call this when nothing has been sent for a while (pppd and Linux use about 20 ms), so a
    /// receiver that lost sync on line noise resynchronises on the opening flag.
    pub fn line_idle(&mut self) {
        self.open_flag = true;
    }

    /// The largest number of bytes [`encode`](Self::encode) can append for a payload of
    /// `payload_len` bytes (every byte escaped, plus both flags).
    pub fn max_encoded_len(&self, payload_len: usize) -> usize {
        2 + 2 * (4 + payload_len + self.config.fcs.len())
    }

    /// Appends one frame carrying `payload` on `protocol` to `out`.
    #[inline]
    pub fn encode(&mut self, protocol: Protocol, payload: &[u8], out: &mut Vec<u8>) {
        // LCP codes 1 to 7 go out as if nothing was negotiated.
        let default_set = protocol == Protocol::Lcp && matches!(payload.first(), Some(1..=7));
        // The usual case first, with nothing else in the way: a SIMD kernel and the header of
        // the previous frame (for 64-byte frames everything before the kernel is a fair part of
        // the cost).
        if let (Some(encoder), Some(head)) =
            (&self.frame_encoders[usize::from(default_set)], &self.head)
            && head.key == (protocol, default_set)
        {
            let open = usize::from(self.open_flag);
            simd::encode_frame_into_vec(encoder, &head.parts(open, payload), out);
            self.open_flag = false;
            return;
        }
        self.encode_other(protocol, default_set, payload, out);
    }

    /// [`encode`](Self::encode) when the header changed, or without a SIMD kernel.
    #[inline(never)]
    fn encode_other(
        &mut self,
        protocol: Protocol,
        default_set: bool,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) {
        if let Path::Fast(tier) = self.path {
            // The whole frame in one pass, with the header escaped beforehand.
            let key = (protocol, default_set);
            let head = match &self.head {
                Some(head) if head.key == key => head,
                _ => {
                    let head = self.head_for(key);
                    self.head.insert(head)
                }
            };
            let open = usize::from(self.open_flag);
            if tier == Tier::Portable {
                let escapes = if default_set {
                    &self.default_escapes
                } else {
                    &self.escapes
                };
                if portable_frame_into_vec(head, open, escapes, self.config.fcs, payload, out) {
                    self.open_flag = false;
                    return;
                }
            }
            if let Some(encoder) = &self.frame_encoders[usize::from(default_set)] {
                simd::encode_frame_into_vec(encoder, &head.parts(open, payload), out);
                self.open_flag = false;
                return;
            }
        }
        out.reserve(self.max_encoded_len(payload.len()));
        let mut sink = VecSink(out);
        self.encode_with(protocol, payload, &mut sink);
    }

    /// The header of frames on `protocol` as it goes out, escaped (`key.1`: with the default
    /// escape set), and the FCS register after it.
    #[cold]
    fn head_for(&self, key: (Protocol, bool)) -> Head {
        let (word, len) = self.header(key.0);
        let escapes = if key.1 {
            &self.default_escapes
        } else {
            &self.escapes
        };
        Head::new(key, &word.to_le_bytes()[..len], escapes, self.config.fcs)
    }

    /// The address/control and protocol fields of frames on `protocol`, as a little-endian word,
    /// and how many bytes of it are used.
    fn header(&self, protocol: Protocol) -> (u32, usize) {
        let number = protocol.number();
        let is_lcp = protocol == Protocol::Lcp;
        let (mut word, mut header_len) = (0u32, 0);
        if is_lcp || !self.config.acfc {
            word = u32::from_le_bytes([ALLSTATIONS, UI, 0, 0]);
            header_len = 2;
        }
        if !is_lcp && self.config.pfc && protocol.is_compressible() {
            word |= u32::from(number as u8) << (8 * header_len);
            header_len += 1;
        } else {
            word |= u32::from(number.swap_bytes()) << (8 * header_len);
            header_len += 2;
        }
        (word, header_len)
    }

    /// Writes one frame carrying `payload` on `protocol` into `out`, returning its length.
    ///
    /// # Errors
    ///
    /// [`FrameError::BufferTooSmall`] when `out` is shorter than
    /// [`max_encoded_len`](Self::max_encoded_len) and the frame does not fit; `out` may then hold a
    /// partial frame and the encoder's flag state is unchanged.
    pub fn encode_into(
        &mut self,
        protocol: Protocol,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, FrameError> {
        let required = self.max_encoded_len(payload.len());
        if out.len() < required {
            // The exact length is known only after escaping; check that cheaply first.
            let mut counter = CountSink(0);
            let open_flag = self.open_flag;
            self.encode_with(protocol, payload, &mut counter);
            self.open_flag = open_flag;
            if counter.0 > out.len() {
                return Err(FrameError::BufferTooSmall {
                    required: counter.0,
                });
            }
        }
        let mut sink = SliceSink { buf: out, pos: 0 };
        self.encode_with(protocol, payload, &mut sink);
        Ok(sink.pos)
    }

    fn encode_with<S: Sink>(&mut self, protocol: Protocol, payload: &[u8], sink: &mut S) {
        let (word, header_len) = self.header(protocol);
        let header_bytes = word.to_le_bytes();
        let header = &header_bytes[..header_len];
        // LCP codes 1 to 7 go out as if nothing was negotiated.
        let escapes = if protocol == Protocol::Lcp && matches!(payload.first(), Some(1..=7)) {
            &self.default_escapes
        } else {
            &self.escapes
        };
        if self.open_flag {
            sink.put_byte(FLAG);
        }
        match self.path {
            Path::Reference => reference_body(sink, header, payload, escapes, self.config.fcs),
            Path::Fast(tier) => fast_body(sink, tier, header, payload, escapes, self.config.fcs),
        }
        sink.put_byte(FLAG);
        self.open_flag = false;
    }
}

/// Runs `$f::<$w, SPARSE>($args..., hits)` with `hits` the word test `$test` (a [`WordTest`]) as
/// a closure of its own, so that each kind of escape set gets a loop compiled for it, and `SPARSE`
/// whether the set's escapes are rare enough in blocks that need one to be found one by one (the
/// sets of a few bytes; not those with the control characters, which come in clusters).
macro_rules! with_word_test {
    ($test:expr, $f:ident::<$w:literal>, ($($arg:expr),*)) => {
        match $test {
            WordTest::Empty => $f::<$w, true>($($arg,)* |_| 0),
            WordTest::One(a) => $f::<$w, true>($($arg,)* move |x| WordTest::One(a).hits(x)),
            WordTest::Two(a, b) => {
                $f::<$w, true>($($arg,)* move |x| WordTest::Two(a, b).hits(x))
            }
            WordTest::Three(a, b, c) => {
                $f::<$w, true>($($arg,)* move |x| WordTest::Three(a, b, c).hits(x))
            }
            WordTest::ControlsPlus(a, b) => {
                $f::<$w, false>($($arg,)* move |x| WordTest::ControlsPlus(a, b).hits(x))
            }
        }
    };
}

/// Appends a whole frame with the portable code: the cached header (`head.bytes[open]`: with
/// the opening flag if `open` is 1), the payload escaped with its FCS folded in the same pass,
/// the FCS and the closing flag. Returns `false`, having written nothing, for escape sets
/// without a word-at-a-time test (arbitrary extra escapes), which take the general code.
#[inline]
fn portable_frame_into_vec(
    head: &Head,
    open: usize,
    escapes: &ByteSet,
    fcs: FcsKind,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> bool {
    let Some(test) = escapes.word_test() else {
        return false;
    };
    // Everything escaped, the closing flag, and room for the 16- and 32-byte writes that are
    // cut back afterwards.
    out.reserve(16 + 2 * (payload.len() + 4) + 1 + 32);
    let start = out.len();
    out.extend_from_slice(&head.bytes[open]);
    out.truncate(start + usize::from(head.lens[open]));
    let register = head.register;
    match fcs {
        FcsKind::Fcs16 => with_word_test!(test, body::<2>, (out, register, payload, escapes)),
        FcsKind::Fcs32 => with_word_test!(test, body::<4>, (out, register, payload, escapes)),
        FcsKind::Null => with_word_test!(test, body::<0>, (out, register, payload, escapes)),
    }
    true
}

/// The payload, FCS and closing flag of a frame with the portable code: [`stuff_fold`], then
/// the `W`-byte FCS (escaped) and the flag.
#[inline(never)]
fn body<const W: usize, const SPARSE: bool>(
    out: &mut Vec<u8>,
    register: u32,
    payload: &[u8],
    escapes: &ByteSet,
    hits: impl Fn(u64) -> u64,
) {
    let register = stuff_fold::<W>(out, register, payload, escapes, &hits, SPARSE);
    let fcs = u64::from(!register) & ((1u64 << (8 * W)) - 1);
    // The FCS bytes tested with the word test (the bytes past them are flags, which are in every
    // set; a byte no set of a word test holds stands in for them): most FCSs need no escape, and
    // then the frame's length is known without waiting for the FCS (a predicted branch rather
    // than a data dependency of the next frame's writes on this frame's FCS).
    let above = !((1u64 << (8 * W)) - 1);
    if hits(fcs | (above & 0x4141_4141_4141_4141)) == 0 {
        let at = out.len();
        out.extend_from_slice(&(fcs | (above & 0x7E7E_7E7E_7E7E_7E7E)).to_le_bytes());
        out.truncate(at + W + 1);
    } else {
        let trailer = fcs.to_le_bytes();
        stuff_piece(out, trailer.get(..W).unwrap_or_default(), escapes);
        out.push(FLAG);
    }
}

/// Appends the 16-byte `block` to `out`, each byte of `escapes` escaped (`hits`: its word test;
/// `sparse`: a block of this set that needs escapes usually needs one or two, so a block whose
/// word test flags at most two bytes goes to [`stuff_sparse`]; denser blocks, and every block of
/// the sets with the control characters, to [`stuff_piece`]).
#[inline(always)]
fn stuff_block(
    out: &mut Vec<u8>,
    block: &[u8; 16],
    escapes: &ByteSet,
    hits: &impl Fn(u64) -> u64,
    sparse: bool,
) {
    let (a, b) = block.split_at(8);
    let a = u64::from_le_bytes(a.try_into().unwrap_or_default());
    let b = u64::from_le_bytes(b.try_into().unwrap_or_default());
    let (a, b) = (hits(a), hits(b));
    if a | b == 0 {
        out.extend_from_slice(block);
        return;
    }
    if sparse {
        // The flags of both words in one word (each flags bit 7 of its bytes); wrong flags
        // (above a right one) only add to them. At most two: found one by one; more (a run of
        // flags or escapes) byte by byte.
        let flags = a | b >> 1;
        let above_lowest = flags & flags.wrapping_sub(1);
        if above_lowest & above_lowest.wrapping_sub(1) == 0 {
            stuff_sparse(out, block, escapes, hits);
            return;
        }
    }
    stuff_piece(out, block, escapes);
}

/// Appends the 16-byte `block`, which holds at least one byte of `escapes`, to `out` escaped: up
/// to two escapes found with the word test `hits` (its lowest flag is exact) and the runs around
/// them moved as whole words, then any bytes left one by one as in [`stuff_piece`]. A block of
/// typical IP that needs an escape needs one; byte by byte it would cost sixteen steps.
#[inline(always)]
fn stuff_sparse(
    out: &mut Vec<u8>,
    block: &[u8; 16],
    escapes: &ByteSet,
    hits: &impl Fn(u64) -> u64,
) {
    let whole = u128::from_le_bytes(*block);
    let mut piece = [0u8; 64];
    // Bytes of `block` taken, bytes of `piece` written (at most 32 in the end).
    let (mut src, mut dst) = (0usize, 0usize);
    for _ in 0..2 {
        // The bytes from `src` on, moved down; the zeros shifted in are masked out of the hits.
        let rest = whole.checked_shr(8 * src as u32).unwrap_or(0);
        let found = u128::from(hits(rest as u64)) | u128::from(hits((rest >> 64) as u64)) << 64;
        let found = found & u128::MAX.checked_shr(8 * src as u32).unwrap_or(0);
        if let Some(at) = piece.get_mut(dst..dst + 16) {
            at.copy_from_slice(&rest.to_le_bytes());
        }
        if found == 0 {
            dst += 16 - src;
            src = 16;
            break;
        }
        let run = (found.trailing_zeros() / 8) as usize;
        let byte = (rest >> (8 * (run & 15))) as u8;
        dst += run;
        if let Some(at) = piece.get_mut(dst..dst + 2) {
            at.copy_from_slice(&[ESCAPE, byte ^ 0x20]);
        }
        dst += 2;
        src += run + 1;
    }
    for &byte in block.get(src..).unwrap_or_default() {
        let escaped = escapes.contains(byte);
        // `dst` is at most 31 here (16 bytes and at most 15 escapes before this byte): the masks
        // only spare the bounds checks.
        piece[dst & 63] = if escaped { ESCAPE } else { byte };
        piece[(dst + 1) & 63] = byte ^ 0x20;
        dst += 1 + usize::from(escaped);
    }
    let len = out.len();
    out.extend_from_slice(&piece[..32]);
    out.truncate(len + dst);
}

/// Appends `data` (at most 16 bytes) to `out`, each byte in `escapes` escaped: through a
/// 32-byte array appended whole and cut back, so that the bytes are written without a branch
/// per byte and `out` grows once.
#[inline(always)]
fn stuff_piece(out: &mut Vec<u8>, data: &[u8], escapes: &ByteSet) {
    let mut piece = [0u8; 32];
    let mut n = 0;
    for &byte in data.iter().take(16) {
        let escaped = escapes.contains(byte);
        // `n` is at most 30 here (two bytes for each of at most 15 before): the masks only
        // spare the bounds checks.
        piece[n & 31] = if escaped { ESCAPE } else { byte };
        piece[(n + 1) & 31] = byte ^ 0x20;
        n += 1 + usize::from(escaped);
    }
    let len = out.len();
    out.extend_from_slice(&piece);
    out.truncate(len + n);
}

/// Appends `payload` to `out` with every byte of `escapes` escaped (`hits`: its word test) and
/// returns the `W`-byte FCS register (2: FCS-16, 4: FCS-32, 0: none) advanced over it, in one
/// pass, 16 bytes per step: a block without a byte to escape is appended as it is.
#[inline(always)]
fn stuff_fold<const W: usize>(
    out: &mut Vec<u8>,
    mut register: u32,
    payload: &[u8],
    escapes: &ByteSet,
    hits: &impl Fn(u64) -> u64,
    sparse: bool,
) -> u32 {
    let (blocks, tail) = payload.as_chunks::<16>();
    if let Some((mut current, rest)) = blocks.split_first() {
        // The FCS software-pipelined as in `fcs::portable`: the register-independent lookups of a
        // block are computed one block ahead.
        let mut pending = if W > 0 {
            fcs::portable::block_unreached::<W>(current)
        } else {
            0
        };
        for next in rest {
            if W > 0 {
                register = fcs::portable::block_reached::<W>(register, current, pending);
                pending = fcs::portable::block_unreached::<W>(next);
            }
            stuff_block(out, current, escapes, hits, sparse);
            current = next;
        }
        if W > 0 {
            register = fcs::portable::block_reached::<W>(register, current, pending);
        }
        stuff_block(out, current, escapes, hits, sparse);
    }
    if !tail.is_empty() {
        if W > 0 {
            register = fcs::portable::finish_tail::<W>(register, payload, tail.len());
        }
        stuff_piece(out, tail, escapes);
    }
    register
}

/// The FCS trailer for the register `register` (complemented, least significant byte first).
fn trailer(fcs: FcsKind, register: u32) -> ([u8; 4], usize) {
    let bytes = (!register).to_le_bytes();
    (bytes, fcs.len())
}

/// Header, payload and FCS of one frame, escaped, through the fast code up to `tier`: the payload
/// escaped and its FCS folded in one SIMD pass where a kernel applies, else the FCS over the
/// payload and then the escaping, each with the portable code.
#[inline]
fn fast_body<S: Sink>(
    sink: &mut S,
    tier: Tier,
    header: &[u8],
    payload: &[u8],
    escapes: &ByteSet,
    fcs: FcsKind,
) {
    stuff_short(sink, header, escapes);
    let (mut register, fold) = match fcs {
        FcsKind::Fcs16 => (
            u32::from(bytewise::fcs16_update(FCS16_INIT, header)),
            Some(&fcs::FCS16_FOLD),
        ),
        FcsKind::Fcs32 => (
            bytewise::fcs32_update(FCS32_INIT, header),
            Some(&fcs::FCS32_FOLD),
        ),
        FcsKind::Null => (0, None),
    };
    let mut rest = payload;
    if tier != Tier::Portable
        && let Some((folded, consumed)) =
            sink.stuff_simd(tier, &escapes.shape(), fold, register, payload)
    {
        register = folded;
        rest = payload.get(consumed..).unwrap_or_default();
    }
    register = fcs_update(tier, fcs, register, rest);
    stuff(sink, tier, rest, escapes);
    let (trailer, len) = trailer(fcs, register);
    stuff_short(sink, &trailer[..len], escapes);
}

/// Copies the at most four bytes of a header or an FCS to `sink` with one write, escaping every
/// byte in `escapes`.
#[inline]
fn stuff_short<S: Sink>(sink: &mut S, bytes: &[u8], escapes: &ByteSet) {
    let mut out = [0u8; 8];
    let mut len = 0;
    // Each byte writes two: an escape and the escaped byte, or the byte and something the next
    // byte overwrites.
    for &byte in bytes.iter().take(4) {
        let escaped = escapes.contains(byte);
        if let Some(slot) = out.get_mut(len..len + 2) {
            slot.copy_from_slice(&[if escaped { ESCAPE } else { byte }, byte ^ 0x20]);
        }
        len += 1 + usize::from(escaped);
    }
    sink.put_slice(&out[..len.min(8)]);
}

/// Header, payload and FCS of one frame, escaped byte by byte with the byte-at-a-time FCS.
fn reference_body<S: Sink>(
    sink: &mut S,
    header: &[u8],
    payload: &[u8],
    escapes: &ByteSet,
    fcs: FcsKind,
) {
    let register = match fcs {
        FcsKind::Fcs16 => u32::from(bytewise::fcs16_update(
            bytewise::fcs16_update(FCS16_INIT, header),
            payload,
        )),
        FcsKind::Fcs32 => {
            bytewise::fcs32_update(bytewise::fcs32_update(FCS32_INIT, header), payload)
        }
        FcsKind::Null => 0,
    };
    let (trailer, len) = trailer(fcs, register);
    for &byte in header.iter().chain(payload).chain(&trailer[..len]) {
        if escapes.contains(byte) {
            sink.put_escaped(byte);
        } else {
            sink.put_byte(byte);
        }
    }
}

/// Advances the register of `fcs` over `data` with the code of `tier` (the slice-by-16 tables for
/// [`Tier::Portable`]).
#[inline]
fn fcs_update(tier: Tier, fcs: FcsKind, register: u32, data: &[u8]) -> u32 {
    match fcs {
        // The register of FCS-16 stays below 2^16.
        FcsKind::Fcs16 => u32::from(fcs::fcs16_update_up_to(tier, register as u16, data)),
        FcsKind::Fcs32 => fcs::fcs32_update_up_to(tier, register, data),
        FcsKind::Null => register,
    }
}

/// The first byte of `data` in `set`, with the code of `tier`.
#[inline]
fn find(tier: Tier, data: &[u8], set: &ByteSet) -> usize {
    if tier == Tier::Portable {
        find_first_portable(data, set)
    } else {
        find_first(data, set)
    }
}

/// Where the encoder writes.
trait Sink {
    fn put_slice(&mut self, bytes: &[u8]);
    fn put_byte(&mut self, byte: u8);
    fn put_escaped(&mut self, byte: u8);
    /// Stuffs `data` and folds its CRC with a SIMD kernel of `tier` (see
    /// [`simd::stuff_into_slice`]); returns the register and the bytes of `data` consumed, or
    /// `None` if this sink or tier cannot.
    fn stuff_simd(
        &mut self,
        _: Tier,
        _: &Shape,
        _: Option<&fcs::FoldConstants>,
        _: u32,
        _: &[u8],
    ) -> Option<(u32, usize)> {
        None
    }
}

struct VecSink<'a>(&'a mut Vec<u8>);

impl Sink for VecSink<'_> {
    #[inline]
    fn put_slice(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
    #[inline]
    fn put_byte(&mut self, byte: u8) {
        self.0.push(byte);
    }
    #[inline]
    fn put_escaped(&mut self, byte: u8) {
        self.0.extend_from_slice(&[ESCAPE, byte ^ 0x20]);
    }
}

/// Writes into a slice that the caller checked is large enough.
struct SliceSink<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Sink for SliceSink<'_> {
    #[inline]
    fn put_slice(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.pos..self.pos + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.pos += bytes.len();
    }
    #[inline]
    fn put_byte(&mut self, byte: u8) {
        if let Some(dst) = self.buf.get_mut(self.pos) {
            *dst = byte;
        }
        self.pos += 1;
    }
    #[inline]
    fn put_escaped(&mut self, byte: u8) {
        self.put_slice(&[ESCAPE, byte ^ 0x20]);
    }
    #[inline]
    fn stuff_simd(
        &mut self,
        tier: Tier,
        escapes: &Shape,
        fold: Option<&fcs::FoldConstants>,
        register: u32,
        data: &[u8],
    ) -> Option<(u32, usize)> {
        let out = self.buf.get_mut(self.pos..)?;
        let (register, consumed, written) =
            simd::stuff_into_slice(tier, escapes, fold, register, data, out)?;
        self.pos += written;
        Some((register, consumed))
    }
}

/// Counts the bytes a frame needs.
struct CountSink(usize);

impl Sink for CountSink {
    fn put_slice(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
    fn put_byte(&mut self, _: u8) {
        self.0 += 1;
    }
    fn put_escaped(&mut self, _: u8) {
        self.0 += 2;
    }
}

/// Copies `data` to `sink`, escaping every byte in `escapes`, a run at a time.
#[inline]
fn stuff<S: Sink>(sink: &mut S, tier: Tier, mut data: &[u8], escapes: &ByteSet) {
    while !data.is_empty() {
        let run = find(tier, data, escapes);
        let (plain, rest) = data.split_at(run);
        sink.put_slice(plain);
        data = rest;
        // Escapes often come in clusters: handle them without another scan.
        while let Some((&byte, rest)) = data.split_first() {
            if !escapes.contains(byte) {
                break;
            }
            sink.put_escaped(byte);
            data = rest;
        }
    }
}

/// The receive side of a link's framing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Control characters that are dropped when they arrive unescaped, since a DCE may insert
    /// them (bit n stands for character n). Our own ACCM option; 0xFFFFFFFF until LCP is Opened.
    pub accm: u32,
    /// The FCS the peer appends.
    pub fcs: FcsKind,
    /// The largest frame accepted, counted in unescaped bytes between the flags (address, control,
    /// protocol, information and FCS). Longer frames are counted and dropped; the decoder never
    /// holds more than this.
    pub max_frame_len: usize,
}

impl DecoderConfig {
    /// The `max_frame_len` that admits an information field of `mru` bytes with the largest
    /// header and FCS.
    pub const fn frame_len_for_mru(mru: u16) -> usize {
        mru as usize + 2 + 2 + 4
    }
}

impl Default for DecoderConfig {
    /// The framing before any negotiation: ACCM 0xFFFFFFFF, FCS-16, room for a 1500-byte MRU.
    fn default() -> Self {
        DecoderConfig {
            accm: 0xFFFF_FFFF,
            fcs: FcsKind::Fcs16,
            max_frame_len: DecoderConfig::frame_len_for_mru(1500),
        }
    }
}

/// What the decoder has seen. Every dropped frame is counted in exactly one field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DecoderStats {
    /// Frames delivered.
    pub frames: u64,
    /// Payload bytes delivered (after the protocol field, before the FCS).
    pub bytes: u64,
    /// Frames dropped for a bad FCS.
    pub bad_fcs: u64,
    /// Frames dropped as too short to hold a protocol field and an FCS.
    pub runts: u64,
    /// Frames dropped for exceeding the maximum length.
    pub too_long: u64,
    /// Frames aborted by the sender (0x7D 0x7E).
    pub aborted: u64,
    /// Frames dropped for a bad address/control or protocol field.
    pub bad_header: u64,
    /// Unescaped control characters dropped because the receive ACCM covers them.
    pub dropped_control_chars: u64,
}

/// One decoded frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The protocol field.
    pub protocol: Protocol,
    /// The information field (and any padding).
    pub payload: &'a [u8],
    /// Whether the frame carried the address and control fields.
    pub address_control: bool,
    /// Whether the protocol field was compressed to one byte.
    pub protocol_compressed: bool,
}

/// Decodes a stream of async HDLC-like frames.
///
/// Feed it chunks of any size with [`decode`](Self::decode). Frames with a bad FCS, runts, aborted
/// frames and frames longer than [`DecoderConfig::max_frame_len`] are counted in
/// [`stats`](Self::stats) and dropped; the stream goes on with the next flag. Memory use is bounded
/// by the maximum frame length. Nothing here panics.
///
/// # Example
///
/// ```
/// use ppp_frame::{AsyncDecoder, AsyncEncoder, DecoderConfig, EncoderConfig, FrameError, Protocol};
///
/// let mut encoder = AsyncEncoder::new(EncoderConfig::default());
/// let mut wire = Vec::new();
/// encoder.encode(Protocol::Ipv4, b"first", &mut wire);
/// encoder.encode(Protocol::Ipv6, b"second", &mut wire);
/// // Line noise damages a third frame.
/// let start = wire.len();
/// encoder.encode(Protocol::Ipv4, b"third", &mut wire);
/// wire[start + 6] ^= 0x01;
///
/// // The stream arrives in reads of any size; each call returns at most one frame.
/// let mut decoder = AsyncDecoder::new(DecoderConfig::default());
/// let mut results = Vec::new();
/// for read in wire.chunks(7) {
///     let mut input = read;
///     while let Some(result) = decoder.decode(&mut input) {
///         results.push(result.map(|frame| (frame.protocol, frame.payload.to_vec())));
///     }
/// }
/// assert_eq!(
///     results,
///     [
///         Ok((Protocol::Ipv4, b"first".to_vec())),
///         Ok((Protocol::Ipv6, b"second".to_vec())),
///         Err(FrameError::BadFcs),
///     ]
/// );
/// assert_eq!((decoder.stats().frames, decoder.stats().bad_fcs), (2, 1));
/// ```
#[derive(Clone, Debug)]
pub struct AsyncDecoder {
    config: DecoderConfig,
    special: ByteSet,
    special_shape: Shape,
    buf: Vec<u8>,
    escaped: bool,
    discarding: bool,
    delivered: bool,
    stats: DecoderStats,
    kernels: Kernels,
    path: Path,
}

impl AsyncDecoder {
    /// A decoder with `config`.
    pub fn new(config: DecoderConfig) -> Self {
        let special = ALWAYS_ESCAPED.with_accm(config.accm);
        AsyncDecoder {
            special,
            special_shape: special.shape(),
            buf: Vec::with_capacity(config.max_frame_len.min(64 * 1024)),
            config,
            escaped: false,
            discarding: false,
            delivered: false,
            stats: DecoderStats::default(),
            kernels: Kernels::Auto,
            path: Kernels::Auto.path(),
        }
    }

    /// The decoder with its loops run by `kernels` (the default is [`Kernels::Auto`]).
    #[must_use]
    pub fn with_kernels(mut self, kernels: Kernels) -> Self {
        self.kernels = kernels;
        self.path = kernels.path();
        self
    }

    /// The implementation in use.
    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// The decoder on `path` (tests use it to run every SIMD tier).
    #[cfg(test)]
    fn with_path(mut self, path: Path) -> Self {
        self.path = path;
        self
    }

    /// The configuration in use.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Replaces the configuration; a frame in progress continues under the new one.
    pub fn set_config(&mut self, config: DecoderConfig) {
        self.special = ALWAYS_ESCAPED.with_accm(config.accm);
        self.special_shape = self.special.shape();
        self.config = config;
    }

    /// What the decoder has delivered and dropped so far.
    pub fn stats(&self) -> &DecoderStats {
        &self.stats
    }

    /// Consumes `input` up to the end of the next complete frame and returns it.
    ///
    /// Returns `None` once `input` is exhausted (it is then empty and a partial frame is kept for
    /// the next call); call again until then. `Some(Err(..))` reports a frame that was dropped (it
    /// is already counted); decoding goes on with the next call.
    pub fn decode<'a>(&'a mut self, input: &mut &[u8]) -> Option<Result<Frame<'a>, FrameError>> {
        if self.delivered {
            self.buf.clear();
            self.delivered = false;
        }
        match self.path {
            Path::Fast(tier) => self.decode_fast(tier, input),
            Path::Reference => self.decode_reference(input),
        }
    }

    /// [`decode`](Self::decode) with the fast code up to `tier`: runs of ordinary bytes are found
    /// and copied whole (SIMD kernels unescape whole blocks); flags, escapes after escapes, dropped
    /// control characters and the bytes near the length limit are decided here, one at a time.
    fn decode_fast<'a>(
        &'a mut self,
        tier: Tier,
        input: &mut &[u8],
    ) -> Option<Result<Frame<'a>, FrameError>> {
        while !input.is_empty() {
            if self.discarding {
                match memchr::memchr(FLAG, input) {
                    Some(at) => {
                        *input = &input[at + 1..];
                        self.discarding = false;
                        self.escaped = false;
                        self.buf.clear();
                        continue;
                    }
                    None => {
                        *input = &[];
                        return None;
                    }
                }
            }
            if tier != Tier::Portable {
                let limit = self.config.max_frame_len.saturating_sub(self.buf.len());
                let shape = &self.special_shape;
                let fold = match self.config.fcs {
                    FcsKind::Fcs16 => Some(&fcs::FCS16_FOLD),
                    FcsKind::Fcs32 => Some(&fcs::FCS32_FOLD),
                    FcsKind::Null => None,
                };
                if let Some((consumed, register)) = simd::unstuff_into(
                    tier,
                    shape,
                    fold,
                    input,
                    &mut self.escaped,
                    &mut self.buf,
                    limit,
                ) {
                    *input = input.get(consumed..).unwrap_or_default();
                    if register.is_some() {
                        // In front of the closing flag of a frame the kernel checked.
                        *input = input.get(1..).unwrap_or_default();
                        return Some(self.finish_frame(register));
                    }
                }
            }
            let run = find(tier, input, &self.special);
            if run > 0 {
                let (plain, rest) = input.split_at(run);
                *input = rest;
                if self.buf.len() + plain.len() > self.config.max_frame_len {
                    return Some(Err(self.too_long()));
                }
                // A whole frame in one run (nothing escaped in it, its closing flag next): its
                // FCS from the input, not from the copy the frame is delivered from, which the
                // loads would otherwise wait for.
                if tier == Tier::Portable
                    && !self.escaped
                    && self.buf.is_empty()
                    && rest.first() == Some(&FLAG)
                {
                    let register = match self.config.fcs {
                        FcsKind::Fcs16 => {
                            Some(u32::from(fcs::portable::fcs16_update(FCS16_INIT, plain)))
                        }
                        FcsKind::Fcs32 => Some(fcs::portable::fcs32_update(FCS32_INIT, plain)),
                        FcsKind::Null => None,
                    };
                    self.buf.extend_from_slice(plain);
                    *input = rest.get(1..).unwrap_or_default();
                    return Some(self.finish_frame(register));
                }
                self.buf.extend_from_slice(plain);
                if self.escaped {
                    let at = self.buf.len() - plain.len();
                    if let Some(first) = self.buf.get_mut(at) {
                        *first ^= 0x20;
                    }
                    self.escaped = false;
                }
                // A flag ends most runs: take it here rather than after another search.
                if input.first() != Some(&FLAG) {
                    continue;
                }
            }
            let (&byte, rest) = input.split_first()?;
            *input = rest;
            match byte {
                FLAG if self.escaped => return Some(Err(self.aborted())),
                FLAG if self.buf.is_empty() => {}
                FLAG => return Some(self.finish_frame(None)),
                // RFC 1662 §4.2: the octet after an escape is XORed with 0x20 whatever it is
                // (but a flag), so 0x7D 0x7D is an escaped 0x5D.
                ESCAPE if self.escaped => {
                    if self.buf.len() >= self.config.max_frame_len {
                        return Some(Err(self.too_long()));
                    }
                    self.buf.push(ESCAPE ^ 0x20);
                    self.escaped = false;
                }
                // Unescape the next octet here, without another scan and a one-byte copy, and
                // go on while escapes follow each other (escape-heavy data: every control
                // character at ACCM 0xFFFFFFFF, runs of flag or escape octets); flags, escaped
                // escapes and dropped control characters take the general path.
                ESCAPE => loop {
                    match input.split_first() {
                        Some((&next, rest)) if !self.special.contains(next) => {
                            if self.buf.len() >= self.config.max_frame_len {
                                return Some(Err(self.too_long()));
                            }
                            self.buf.push(next ^ 0x20);
                            *input = rest;
                        }
                        _ => {
                            self.escaped = true;
                            break;
                        }
                    }
                    match input.split_first() {
                        Some((&ESCAPE, rest)) => *input = rest,
                        _ => break,
                    }
                },
                _ => self.stats.dropped_control_chars += 1,
            }
        }
        None
    }

    /// [`decode`](Self::decode) one byte at a time, as RFC 1662 §4 describes it: the reference for
    /// the other paths.
    fn decode_reference<'a>(
        &'a mut self,
        input: &mut &[u8],
    ) -> Option<Result<Frame<'a>, FrameError>> {
        while let Some((&byte, rest)) = input.split_first() {
            *input = rest;
            if self.discarding {
                if byte == FLAG {
                    self.discarding = false;
                    self.escaped = false;
                    self.buf.clear();
                }
                continue;
            }
            if !self.special.contains(byte) {
                if self.buf.len() >= self.config.max_frame_len {
                    return Some(Err(self.too_long()));
                }
                self.buf.push(if self.escaped { byte ^ 0x20 } else { byte });
                self.escaped = false;
                continue;
            }
            match byte {
                FLAG if self.escaped => return Some(Err(self.aborted())),
                FLAG if self.buf.is_empty() => {}
                FLAG => return Some(self.finish_frame(None)),
                ESCAPE if self.escaped => {
                    if self.buf.len() >= self.config.max_frame_len {
                        return Some(Err(self.too_long()));
                    }
                    self.buf.push(ESCAPE ^ 0x20);
                    self.escaped = false;
                }
                ESCAPE => self.escaped = true,
                _ => self.stats.dropped_control_chars += 1,
            }
        }
        None
    }

    fn aborted(&mut self) -> FrameError {
        self.escaped = false;
        self.buf.clear();
        self.stats.aborted += 1;
        FrameError::Aborted
    }

    fn too_long(&mut self) -> FrameError {
        self.buf.clear();
        self.escaped = false;
        self.discarding = true;
        self.stats.too_long += 1;
        FrameError::TooLong {
            max: self.config.max_frame_len,
        }
    }

    /// Ends the frame in `buf` at its closing flag. `register`: the FCS register over it if the
    /// caller has it already.
    fn finish_frame(&mut self, register: Option<u32>) -> Result<Frame<'_>, FrameError> {
        self.delivered = true;
        let fcs_len = self.config.fcs.len();
        let len = self.buf.len();
        if len < fcs_len + 1 {
            self.stats.runts += 1;
            return Err(FrameError::Runt { len });
        }
        let good = match (self.config.fcs, self.path, register) {
            (FcsKind::Fcs16, _, Some(register)) => register == u32::from(FCS16_GOOD),
            (FcsKind::Fcs32, _, Some(register)) => register == FCS32_GOOD,
            (FcsKind::Fcs16, Path::Reference, None) => {
                bytewise::fcs16_update(FCS16_INIT, &self.buf) == FCS16_GOOD
            }
            (FcsKind::Fcs32, Path::Reference, None) => {
                bytewise::fcs32_update(FCS32_INIT, &self.buf) == FCS32_GOOD
            }
            (FcsKind::Fcs16, Path::Fast(tier), None) => {
                fcs::fcs16_update_up_to(tier, FCS16_INIT, &self.buf) == FCS16_GOOD
            }
            (FcsKind::Fcs32, Path::Fast(tier), None) => {
                fcs::fcs32_update_up_to(tier, FCS32_INIT, &self.buf) == FCS32_GOOD
            }
            (FcsKind::Null, ..) => true,
        };
        if !good && !cfg!(fuzzing) {
            self.stats.bad_fcs += 1;
            return Err(FrameError::BadFcs);
        }
        match parse_header(&self.buf[..len - fcs_len]) {
            Ok(frame) => {
                self.stats.frames += 1;
                self.stats.bytes += frame.payload.len() as u64;
                Ok(frame)
            }
            Err(e) => {
                self.stats.bad_header += 1;
                Err(e)
            }
        }
    }
}

/// Splits the address/control and protocol fields off a frame (FCS already removed).
fn parse_header(frame: &[u8]) -> Result<Frame<'_>, FrameError> {
    let (address_control, rest) = match frame {
        [ALLSTATIONS, UI, rest @ ..] => (true, rest),
        [ALLSTATIONS, control, ..] => {
            return Err(FrameError::InvalidAddressControl {
                address: ALLSTATIONS,
                control: *control,
            });
        }
        [ALLSTATIONS] => return Err(FrameError::Truncated),
        rest => (false, rest),
    };
    let (protocol, protocol_compressed, payload) = crate::sync::split_protocol(rest)?;
    Ok(Frame {
        protocol,
        payload,
        address_control,
        protocol_compressed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOLDEN_PAYLOAD: [u8; 14] = [
        0x01, 0x01, 0x00, 0x0E, 0x01, 0x04, 0x05, 0xDC, 0x05, 0x06, 0x01, 0x02, 0x03, 0x04,
    ];

    /// The golden LCP Configure-Request of the issue, stuffed at ACCM 0xFFFFFFFF with FCS-16.
    const GOLDEN_WIRE: [u8; 36] = [
        0x7E, 0xFF, 0x7D, 0x23, 0xC0, 0x21, 0x7D, 0x21, 0x7D, 0x21, 0x7D, 0x20, 0x7D, 0x2E, 0x7D,
        0x21, 0x7D, 0x24, 0x7D, 0x25, 0xDC, 0x7D, 0x25, 0x7D, 0x26, 0x7D, 0x21, 0x7D, 0x22, 0x7D,
        0x23, 0x7D, 0x24, 0xD1, 0xEC, 0x7E,
    ];

    fn decode_all(decoder: &mut AsyncDecoder, mut input: &[u8]) -> Vec<(Protocol, Vec<u8>)> {
        let mut frames = Vec::new();
        while let Some(result) = decoder.decode(&mut input) {
            if let Ok(frame) = result {
                frames.push((frame.protocol, frame.payload.to_vec()));
            }
        }
        frames
    }

    #[test]
    fn golden_frame_fcs16() {
        let mut encoder = AsyncEncoder::new(EncoderConfig::default());
        let mut wire = Vec::new();
        encoder.encode(Protocol::Lcp, &GOLDEN_PAYLOAD, &mut wire);
        assert_eq!(wire, GOLDEN_WIRE);
        let mut decoder = AsyncDecoder::new(DecoderConfig::default());
        assert_eq!(
            decode_all(&mut decoder, &wire),
            vec![(Protocol::Lcp, GOLDEN_PAYLOAD.to_vec())]
        );
    }

    #[test]
    fn golden_frame_fcs32() {
        let mut frame = vec![0xFF, 0x03, 0xC0, 0x21];
        frame.extend_from_slice(&GOLDEN_PAYLOAD);
        assert_eq!(fcs::fcs32(&frame).to_le_bytes(), [0x40, 0xB2, 0xF7, 0x2A]);
        let config = EncoderConfig {
            fcs: FcsKind::Fcs32,
            accm: 0,
            ..EncoderConfig::default()
        };
        let mut encoder = AsyncEncoder::new(config);
        let mut wire = Vec::new();
        encoder.encode(Protocol::Lcp, &GOLDEN_PAYLOAD, &mut wire);
        assert_eq!(&wire[wire.len() - 5..], &[0x40, 0xB2, 0xF7, 0x2A, 0x7E]);
        let mut decoder = AsyncDecoder::new(DecoderConfig {
            fcs: FcsKind::Fcs32,
            ..DecoderConfig::default()
        });
        assert_eq!(
            decode_all(&mut decoder, &wire),
            vec![(Protocol::Lcp, GOLDEN_PAYLOAD.to_vec())]
        );
    }

    #[test]
    fn lcp_configure_packets_ignore_negotiated_options() {
        let config = EncoderConfig {
            accm: 0,
            acfc: true,
            pfc: true,
            ..EncoderConfig::default()
        };
        let mut encoder = AsyncEncoder::new(config);
        let mut wire = Vec::new();
        encoder.encode(Protocol::Lcp, &GOLDEN_PAYLOAD, &mut wire);
        assert_eq!(wire, GOLDEN_WIRE);
        // An Echo-Request uses the negotiated ACCM but keeps address/control and the full protocol.
        wire.clear();
        encoder.line_idle();
        encoder.encode(Protocol::Lcp, &[9, 1, 0, 8, 0, 0, 0, 1], &mut wire);
        assert_eq!(
            wire,
            [
                0x7E, 0xFF, 0x03, 0xC0, 0x21, 9, 1, 0, 8, 0, 0, 0, 1, 0xE7, 0xE0, 0x7E
            ]
        );
    }

    #[test]
    fn compression_and_flag_sharing() {
        let config = EncoderConfig {
            accm: 0,
            acfc: true,
            pfc: true,
            ..EncoderConfig::default()
        };
        let mut encoder = AsyncEncoder::new(config);
        let mut wire = Vec::new();
        encoder.encode(Protocol::Ipv4, b"one", &mut wire);
        encoder.encode(Protocol::Ipv6, b"two", &mut wire);
        assert_eq!(wire.iter().filter(|&&b| b == FLAG).count(), 3);
        assert_eq!(&wire[..5], &[0x7E, 0x21, b'o', b'n', b'e']);
        let mut decoder = AsyncDecoder::new(DecoderConfig {
            accm: 0,
            ..DecoderConfig::default()
        });
        assert_eq!(
            decode_all(&mut decoder, &wire),
            vec![
                (Protocol::Ipv4, b"one".to_vec()),
                (Protocol::Ipv6, b"two".to_vec())
            ]
        );
        encoder.line_idle();
        wire.clear();
        encoder.encode(Protocol::Ipv4, b"", &mut wire);
        assert_eq!(wire[0], FLAG);
    }

    #[test]
    fn extra_escapes() {
        let config = EncoderConfig {
            accm: 0,
            extra_escapes: ByteSet::EMPTY.with(0x11).with(0x93),
            ..EncoderConfig::default()
        };
        let mut encoder = AsyncEncoder::new(config);
        let mut wire = Vec::new();
        encoder.encode(Protocol::Ipv4, &[0x11, 0x93, 0x13], &mut wire);
        assert_eq!(
            &wire[5..10],
            &[0x7D, 0x31, 0x7D, 0xB3, 0x13],
            "0x11 and 0x93 escaped, 0x13 not"
        );
        let mut decoder = AsyncDecoder::new(DecoderConfig {
            accm: 0,
            ..DecoderConfig::default()
        });
        assert_eq!(
            decode_all(&mut decoder, &wire),
            vec![(Protocol::Ipv4, vec![0x11, 0x93, 0x13])]
        );
    }

    #[test]
    fn an_escaped_escape_is_data() {
        let config = EncoderConfig {
            accm: 0,
            extra_escapes: ByteSet::EMPTY.with(0x5D),
            ..EncoderConfig::default()
        };
        let mut wire = Vec::new();
        AsyncEncoder::new(config).encode(Protocol::Ipv4, &[0x5D, 0x5D, 0xCD], &mut wire);
        assert_eq!(&wire[5..10], &[0x7D, 0x7D, 0x7D, 0x7D, 0xCD]);
        let mut decoder = AsyncDecoder::new(DecoderConfig {
            accm: 0,
            ..DecoderConfig::default()
        });
        assert_eq!(
            decode_all(&mut decoder, &wire),
            vec![(Protocol::Ipv4, vec![0x5D, 0x5D, 0xCD])]
        );
    }

    #[test]
    fn unescapable_extra_escapes_are_ignored() {
        let config = EncoderConfig {
            accm: 0,
            extra_escapes: ByteSet::EMPTY.with(0x2F).with(0x5E).with(0x20),
            ..EncoderConfig::default()
        };
        let mut wire = Vec::new();
        AsyncEncoder::new(config).encode(Protocol::Ipv4, &[0x2F, 0x5E, 0x20], &mut wire);
        assert_eq!(&wire[5..8], &[0x2F, 0x5E, 0x20]);
    }

    #[test]
    fn encode_into_reports_required_size() {
        let mut encoder = AsyncEncoder::new(EncoderConfig::default());
        let mut small = [0u8; 10];
        assert_eq!(
            encoder.encode_into(Protocol::Lcp, &GOLDEN_PAYLOAD, &mut small),
            Err(FrameError::BufferTooSmall { required: 36 })
        );
        let mut exact = [0u8; 36];
        assert_eq!(
            encoder.encode_into(Protocol::Lcp, &GOLDEN_PAYLOAD, &mut exact),
            Ok(36)
        );
        assert_eq!(exact, GOLDEN_WIRE);
    }

    #[test]
    fn inserted_control_characters_are_dropped() {
        let mut wire = GOLDEN_WIRE.to_vec();
        wire.insert(3, 0x11); // XON between the escape and the escaped byte
        wire.insert(10, 0x13); // XOFF elsewhere
        let mut decoder = AsyncDecoder::new(DecoderConfig::default());
        assert_eq!(decode_all(&mut decoder, &wire).len(), 1);
        assert_eq!(decoder.stats().dropped_control_chars, 2);
        // With a receive ACCM of 0 the same characters are data, so the FCS fails.
        let mut decoder = AsyncDecoder::new(DecoderConfig {
            accm: 0,
            ..DecoderConfig::default()
        });
        assert!(decode_all(&mut decoder, &wire).is_empty());
        assert_eq!(decoder.stats().bad_fcs, 1);
    }

    #[test]
    fn errors_are_counted_and_skipped() {
        let mut encoder = AsyncEncoder::new(EncoderConfig::default());
        let mut good = Vec::new();
        encoder.encode(Protocol::Ipv4, b"payload", &mut good);
        let mut wire = Vec::new();
        wire.extend_from_slice(&[0x7E, 0x41, 0x7E]); // runt
        wire.extend_from_slice(&[0x41, 0x42, 0x43, 0x44, 0x7E]); // bad FCS
        wire.extend_from_slice(&[0x41, 0x42, 0x7D, 0x7E]); // aborted
        wire.extend_from_slice(&good);
        let mut decoder = AsyncDecoder::new(DecoderConfig::default());
        let mut input = &wire[..];
        let mut results = Vec::new();
        while let Some(result) = decoder.decode(&mut input) {
            results.push(result.map(|f| f.payload.to_vec()));
        }
        assert_eq!(
            results,
            vec![
                Err(FrameError::Runt { len: 1 }),
                Err(FrameError::BadFcs),
                Err(FrameError::Aborted),
                Ok(b"payload".to_vec()),
            ]
        );
        let stats = decoder.stats();
        assert_eq!(
            (stats.runts, stats.bad_fcs, stats.aborted, stats.frames),
            (1, 1, 1, 1)
        );
    }

    #[test]
    fn long_frames_are_dropped_with_bounded_memory() {
        let mut decoder = AsyncDecoder::new(DecoderConfig {
            max_frame_len: 100,
            ..DecoderConfig::default()
        });
        let noise = vec![0x55u8; 1 << 20];
        let mut input = &noise[..];
        assert_eq!(
            decoder.decode(&mut input),
            Some(Err(FrameError::TooLong { max: 100 }))
        );
        assert_eq!(decoder.decode(&mut input), None);
        assert!(decoder.buf.capacity() <= 1024);
        let mut encoder = AsyncEncoder::new(EncoderConfig::default());
        let mut good = Vec::new();
        encoder.encode(Protocol::Ipv4, b"after", &mut good);
        assert_eq!(
            decode_all(&mut decoder, &good),
            vec![(Protocol::Ipv4, b"after".to_vec())]
        );
        assert_eq!(decoder.stats().too_long, 1);
    }

    #[test]
    fn bad_headers() {
        for (frame, error) in [
            (
                &[0xFF, 0x05, 0x00, 0x21][..],
                FrameError::InvalidAddressControl {
                    address: 0xFF,
                    control: 0x05,
                },
            ),
            (&[0xFF, 0x03, 0x00, 0x20][..], FrameError::InvalidProtocol),
            (&[0x02, 0x02][..], FrameError::InvalidProtocol),
            (&[0xFF, 0x03, 0x00][..], FrameError::Truncated),
        ] {
            assert_eq!(parse_header(frame), Err(error), "{frame:02x?}");
        }
    }

    /// The reference, the portable code and every SIMD tier this CPU has.
    fn paths() -> Vec<Path> {
        let mut paths = vec![Path::Reference];
        paths.extend(crate::simd::available_tiers().into_iter().map(Path::Fast));
        paths
    }

    /// The simulator's deterministic generator (one copy of it in the workspace).
    use ppp_sim::SimRng;

    /// Payloads that exercise the kernels: every kind of byte, dense and sparse escapes, runs of
    /// escapes and of escape octets, each at every length up to `max`.
    fn payload_patterns(len: usize, rng: &mut SimRng) -> Vec<Vec<u8>> {
        let random: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let sparse: Vec<u8> = (0..len)
            .map(|_| match rng.next_u64() % 40 {
                0 => 0x7E,
                1 => 0x7D,
                2 => (rng.next_u64() % 0x20) as u8,
                _ => b'a' + (rng.next_u64() % 26) as u8,
            })
            .collect();
        let specials: Vec<u8> = (0..len)
            .map(|_| {
                [0x7D, 0x7E, 0x5D, 0x5E, 0x00, 0x11, 0x13, 0x20, 0x1F, 0xFF]
                    [rng.next_u64() as usize % 10]
            })
            .collect();
        // Like a packet: random headers, then text with escapes only here and there (none in
        // bytes 128 to 255, so that the AVX-512 frame kernel keeps it).
        let headed: Vec<u8> = (0..len)
            .map(|i| match (i, rng.next_u64() % 64) {
                (0..64, _) => specials[i],
                (128..256, _) | (_, 3..) => b'a' + (i % 26) as u8,
                (_, 0) => 0x7E,
                (_, 1) => 0x7D,
                (_, _) => (rng.next_u64() % 0x20) as u8,
            })
            .collect();
        vec![
            random,
            sparse,
            specials,
            headed,
            vec![0x7E; len],
            vec![0x7D; len],
            vec![0x41; len],
        ]
    }

    fn encoder_configs() -> Vec<EncoderConfig> {
        let mut configs = Vec::new();
        for fcs in [FcsKind::Fcs16, FcsKind::Fcs32, FcsKind::Null] {
            for (accm, extra) in [
                (0, ByteSet::EMPTY),
                (0xFFFF_FFFF, ByteSet::EMPTY),
                (0x000A_0000, ByteSet::EMPTY),
                (0x0000_0001, ByteSet::EMPTY),
                (0, ByteSet::EMPTY.with(0x5D).with(0x91).with(0xFF)),
                (0xFFFF_FFFF, ByteSet::EMPTY.with(0x80)),
            ] {
                configs.push(EncoderConfig {
                    accm,
                    extra_escapes: extra,
                    fcs,
                    ..EncoderConfig::default()
                });
            }
        }
        configs
    }

    /// Every path writes the same bytes for every payload length up to 300 and beyond, for
    /// every kind of escape set, with and without address/control and protocol compression, for
    /// LCP (whose Configure-Requests ignore the ACCM) and back-to-back frames, into a vector and
    /// into exact and roomy slices.
    #[test]
    fn every_path_encodes_the_same() {
        let mut rng = SimRng::new(1);
        // Up to 300, then every length of a 128-byte step more (every length of the AVX-512
        // kernel's last step), then longer ones.
        let lengths: Vec<usize> = (0..=300)
            .chain(385..=512)
            .chain([513, 1500, 4099])
            .collect();
        for (n, mut config) in encoder_configs().into_iter().enumerate() {
            config.acfc = n % 2 == 1;
            config.pfc = n % 4 >= 2;
            for &len in &lengths {
                for payload in payload_patterns(len, &mut rng) {
                    // The second frame has the header of the first (the cached one).
                    let frames = [
                        (Protocol::Ipv4, &payload[..]),
                        (Protocol::Ipv4, &payload[payload.len() / 3..]),
                        (Protocol::Lcp, &payload[..]),
                        (Protocol::Ipv6, &payload[..payload.len() / 2]),
                    ];
                    let mut reference =
                        AsyncEncoder::new(config.clone()).with_path(Path::Reference);
                    let mut expected = Vec::new();
                    for (protocol, payload) in frames {
                        reference.encode(protocol, payload, &mut expected);
                    }
                    let first_len = {
                        let mut one = Vec::new();
                        AsyncEncoder::new(config.clone())
                            .with_path(Path::Reference)
                            .encode(Protocol::Ipv4, &payload, &mut one);
                        one.len()
                    };
                    for path in paths() {
                        let mut encoder = AsyncEncoder::new(config.clone()).with_path(path);
                        let mut wire = vec![0xAA; 3]; // appended after what is there
                        for (protocol, payload) in frames {
                            encoder.encode(protocol, payload, &mut wire);
                        }
                        assert_eq!(&wire[3..], &expected[..], "{path:?} {config:?} {len}");
                        for spare in [0, 1, 17, 200] {
                            let mut buf = vec![0u8; first_len + spare];
                            encoder.line_idle();
                            let n = encoder.encode_into(Protocol::Ipv4, &payload, &mut buf);
                            assert_eq!(n, Ok(first_len), "{path:?} {config:?} {len} {spare}");
                            assert_eq!(&buf[..first_len], &expected[..first_len]);
                        }
                    }
                }
            }
        }
    }

    /// Every result of a decoder, frames copied out.
    type Results = Vec<Result<(Protocol, Vec<u8>), FrameError>>;

    /// Decodes `wire` in chunks of `chunk` bytes; returns every result and the statistics.
    fn decode_results(
        decoder: &mut AsyncDecoder,
        wire: &[u8],
        chunk: usize,
    ) -> (Results, DecoderStats) {
        let mut results = Vec::new();
        for piece in wire.chunks(chunk.max(1)) {
            let mut input = piece;
            while let Some(result) = decoder.decode(&mut input) {
                results.push(result.map(|f| (f.protocol, f.payload.to_vec())));
            }
            assert!(input.is_empty());
        }
        (results, *decoder.stats())
    }

    /// A stream of frames and damage: good frames, escaped escapes, aborts, inserted control
    /// characters, runts, frames too long, flags in runs.
    fn messy_stream(rng: &mut SimRng, accm: u32, fcs: FcsKind) -> Vec<u8> {
        let mut encoder = AsyncEncoder::new(EncoderConfig {
            accm,
            fcs,
            extra_escapes: ByteSet::EMPTY.with(0x5D),
            ..EncoderConfig::default()
        });
        let mut wire = Vec::new();
        for _ in 0..12 {
            let len = (rng.next_u64() % 700) as usize;
            let mut patterns = payload_patterns(len, rng);
            let payload = patterns.swap_remove(rng.next_u64() as usize % patterns.len());
            encoder.encode(Protocol::Ipv4, &payload, &mut wire);
            match rng.next_u64() % 8 {
                0 => wire.extend_from_slice(&[0x41, 0x42, 0x7D, 0x7E]), // aborted
                1 => wire.extend_from_slice(&[0x7E, 0x7E, 0x7E]),
                2 => {
                    // A control character inserted somewhere.
                    let at = rng.next_u64() as usize % wire.len();
                    wire.insert(at, (rng.next_u64() % 0x20) as u8);
                }
                3 => {
                    let at = rng.next_u64() as usize % wire.len();
                    wire[at] ^= 1 << (rng.next_u64() % 8);
                }
                4 => {
                    let noise: Vec<u8> = (0..rng.next_u64() % 300)
                        .map(|_| rng.next_u64() as u8)
                        .collect();
                    wire.extend_from_slice(&noise);
                }
                _ => {}
            }
        }
        wire
    }

    /// Every path gives the same frames, errors and statistics on streams with damage of every
    /// kind, under several receive ACCMs and frame length limits, fed in chunks of several sizes.
    #[test]
    fn every_path_decodes_the_same() {
        let mut rng = SimRng::new(2);
        for round in 0..60 {
            for (accm, fcs) in [
                (0, FcsKind::Fcs16),
                (0xFFFF_FFFF, FcsKind::Fcs32),
                (0x000A_0000, FcsKind::Fcs16),
                (0x0000_0001, FcsKind::Null),
            ] {
                let wire = messy_stream(&mut rng, accm, fcs);
                let max_frame_len = [1 << 12, 700, 300, 33, 0][round % 5];
                let config = DecoderConfig {
                    accm,
                    fcs,
                    max_frame_len,
                };
                for chunk in [wire.len(), 4096, 100, 17, 1] {
                    let expected = decode_results(
                        &mut AsyncDecoder::new(config.clone()).with_path(Path::Reference),
                        &wire,
                        chunk,
                    );
                    for path in paths() {
                        let mut decoder = AsyncDecoder::new(config.clone()).with_path(path);
                        let got = decode_results(&mut decoder, &wire, chunk);
                        assert_eq!(got, expected, "{path:?} {config:?} chunk {chunk}");
                        assert!(decoder.buf.capacity() <= 2 * max_frame_len.max(1024) + 64);
                    }
                }
            }
        }
    }

    /// Escaped escapes (a peer that escapes 0x5D sends 7D 7D) in every position and run length.
    #[test]
    fn runs_of_escape_octets() {
        for run in 1..40 {
            for lead in 0..40 {
                let mut wire = vec![0x7E];
                wire.extend(std::iter::repeat_n(0x41, lead));
                wire.extend(std::iter::repeat_n(0x7D, run));
                wire.extend_from_slice(&[0x41; 40]);
                wire.push(0x7E);
                let config = DecoderConfig {
                    accm: 0,
                    fcs: FcsKind::Null,
                    ..DecoderConfig::default()
                };
                let expected = decode_results(
                    &mut AsyncDecoder::new(config.clone()).with_path(Path::Reference),
                    &wire,
                    wire.len(),
                );
                for path in paths() {
                    let mut decoder = AsyncDecoder::new(config.clone()).with_path(path);
                    assert_eq!(decode_results(&mut decoder, &wire, wire.len()), expected);
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn paths_agree_on_arbitrary_encodes(
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..700),
            accm: u32,
            extra: [u8; 2],
            fcs in proptest::sample::select(vec![FcsKind::Fcs16, FcsKind::Fcs32, FcsKind::Null]),
        ) {
            let config = EncoderConfig {
                accm,
                extra_escapes: ByteSet::EMPTY.with(extra[0]).with(extra[1]),
                fcs,
                ..EncoderConfig::default()
            };
            let mut expected = Vec::new();
            AsyncEncoder::new(config.clone()).with_path(Path::Reference).encode(Protocol::Ipv4, &payload, &mut expected);
            for path in paths() {
                let mut wire = Vec::new();
                AsyncEncoder::new(config.clone()).with_path(path).encode(Protocol::Ipv4, &payload, &mut wire);
                proptest::prop_assert_eq!(&wire, &expected);
            }
        }

        #[test]
        fn paths_agree_on_arbitrary_streams(
            wire in proptest::collection::vec(proptest::sample::select(vec![0x7Eu8, 0x7D, 0x5D, 0x5E, 0x00, 0x11, 0x41, 0xFF, 0x20]), 0..1500),
            accm: u32,
            max_frame_len in 0usize..400,
            chunk in 1usize..200,
            fcs in proptest::sample::select(vec![FcsKind::Fcs16, FcsKind::Fcs32, FcsKind::Null]),
        ) {
            let config = DecoderConfig { accm, fcs, max_frame_len };
            let expected = decode_results(
                &mut AsyncDecoder::new(config.clone()).with_path(Path::Reference), &wire, chunk);
            for path in paths() {
                let got = decode_results(&mut AsyncDecoder::new(config.clone()).with_path(path), &wire, chunk);
                proptest::prop_assert_eq!(&got, &expected);
            }
        }
    }
}
