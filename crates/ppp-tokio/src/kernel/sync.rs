//! What the kernel has to be told while a link negotiates, decided without touching it.
//!
//! In the kernel data path the link's frames cross the channel and unit descriptors of
//! `/dev/ppp`, and the kernel's `ppp_generic` watches some of them: it starts its compressor
//! when a CCP Configure-Ack leaves and its decompressor when one arrives, as long as the unit's
//! `SC_CCP_OPEN` flag is set and `SC_CCP_UP` is not; it resets them on Reset-Acks. What it
//! cannot know is the key material and when the network protocols may pass. [`UnitSync`] is
//! the sans-IO bookkeeping of that: it looks at each frame the link is about to send and at
//! each event of the link, and answers with the [`KernelOp`]s to carry out *before* the frame
//! is written (a compressor must exist when its Configure-Ack goes by).
//!
//! The rules, as pppd follows them on Linux:
//! - every Configure-Request of ours names what we can decompress: its first option the
//!   kernel knows (MPPE, Deflate) becomes the unit's decompressor (`PPPIOCSCOMPRESS`,
//!   receive), with our receive start key appended for MPPE;
//! - every Configure-Ack of ours agrees to what we send: its first option becomes the
//!   compressor (transmit), with our send start key for MPPE;
//! - both take `SC_CCP_UP` away first (negotiating again), [`LinkEvent::CcpUp`] sets it;
//! - IPv4 and IPv6 are dropped by the unit until IPCP or IPv6CP is Opened
//!   (`PPPIOCSNPMODE`), and dropped again when it goes down;
//! - LCP's results go to the unit (MRU) and, for an async line, to the channel (ACCM,
//!   protocol and address field compression, MRU).
//!
//! Nothing here panics on any input; options longer than the kernel takes are ignored.

use std::collections::VecDeque;
use std::fmt;

use ppp_ccp::MppeKeys;
use ppp_link::LinkEvent;

/// `SC_COMP_PROT`: the channel may compress the protocol field (async lines).
pub const SC_COMP_PROT: u32 = 0x0000_0001;
/// `SC_COMP_AC`: the channel may omit address and control fields (async lines).
pub const SC_COMP_AC: u32 = 0x0000_0002;
/// `SC_CCP_OPEN`: the unit looks at CCP packets.
pub const SC_CCP_OPEN: u32 = 0x0000_0040;
/// `SC_CCP_UP`: the unit may send and receive compressed packets.
pub const SC_CCP_UP: u32 = 0x0000_0080;

/// The protocol number of CCP.
const PROTOCOL_CCP: u16 = 0x80FD;
/// The protocol number of CCP on individual links of a bundle (stays on the channel).
const PROTOCOL_CCP_LINK: u16 = 0x80FB;
/// IPv4.
pub const PROTOCOL_IPV4: u16 = 0x0021;
/// IPv6.
pub const PROTOCOL_IPV6: u16 = 0x0057;
/// CCP option type of MPPE/MPPC (RFC 3078).
const OPTION_MPPE: u8 = 18;
/// CCP option type of Deflate (RFC 1979), and the draft's number pppd still accepts.
const OPTION_DEFLATE: u8 = 26;
const OPTION_DEFLATE_DRAFT: u8 = 24;
/// The MPPE option's length.
const MPPE_OPTION_LEN: usize = 6;
/// The Deflate option's length.
const DEFLATE_OPTION_LEN: usize = 4;
/// The longest option `PPPIOCSCOMPRESS` takes (`CCP_MAX_OPTION_LENGTH`).
pub const MAX_COMPRESS_OPTION: usize = 32;

/// Which descriptor a frame of the link is written to: the kernel passes LCP, the
/// authentication protocols and per-link CCP on the channel, everything else (NCPs, CCP,
/// unknown protocols) on the unit, and hands them back the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// The channel's descriptor (protocols `0xC000` and above, and `0x80FB`).
    Channel,
    /// The unit's descriptor.
    Unit,
}

impl Route {
    /// Where frames of `protocol` go, as pppd decides it.
    pub fn of(protocol: u16) -> Route {
        if protocol >= 0xC000 || protocol == PROTOCOL_CCP_LINK {
            Route::Channel
        } else {
            Route::Unit
        }
    }
}

/// What the unit does with packets of a network protocol (`enum NPmode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NpMode {
    /// Pass them (the NCP is Opened).
    Pass,
    /// Drop them silently.
    Drop,
}

impl NpMode {
    /// The kernel's number.
    pub fn raw(self) -> i32 {
        match self {
            NpMode::Pass => 0,
            NpMode::Drop => 1,
        }
    }
}

/// The framing settings of an async channel (`ppp_async`), from LCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsyncSettings {
    /// Control characters we escape toward the peer (its ACCM).
    pub transmit_accm: u32,
    /// Control characters the peer escapes toward us (ours).
    pub receive_accm: u32,
    /// `SC_COMP_PROT | SC_COMP_AC` as LCP allows us.
    pub flags: u32,
    /// Our MRU.
    pub mru: u16,
}

impl Default for AsyncSettings {
    /// What holds before LCP is Opened: escape every control character, no compression.
    fn default() -> Self {
        AsyncSettings {
            transmit_accm: u32::MAX,
            receive_accm: u32::MAX,
            flags: 0,
            mru: 1500,
        }
    }
}

/// A CCP option with key material for `PPPIOCSCOMPRESS`; wiped on drop, never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct CompressorOption(Vec<u8>);

impl CompressorOption {
    /// The bytes the kernel takes: the option, then for MPPE the 16-byte start key.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The CCP option type.
    pub fn option_type(&self) -> u8 {
        self.0.first().copied().unwrap_or(0)
    }
}

impl fmt::Debug for CompressorOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CompressorOption(type {})", self.option_type())
    }
}

impl Drop for CompressorOption {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// One thing to tell the kernel, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KernelOp {
    /// `PPPIOCSFLAGS` on the unit.
    UnitFlags(u32),
    /// `PPPIOCSMRU` on the unit.
    UnitMru(u16),
    /// `PPPIOCSCOMPRESS` on the unit: the compressor (`transmit`) or the decompressor.
    Compressor {
        /// Compressor (what we send) rather than decompressor.
        transmit: bool,
        /// The option and key.
        option: CompressorOption,
    },
    /// `PPPIOCSNPMODE` on the unit.
    NpMode {
        /// The network protocol (`0x0021`, `0x0057`).
        protocol: u16,
        /// What to do with its packets.
        mode: NpMode,
    },
    /// The async channel's framing (`PPPIOCSASYNCMAP`, `PPPIOCSRASYNCMAP`, `PPPIOCSFLAGS`,
    /// `PPPIOCSMRU` on the channel); only for serial lines.
    AsyncChannel(AsyncSettings),
}

impl fmt::Display for KernelOp {
    /// The ioctl and its argument, for the log (never key material).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelOp::UnitFlags(flags) => write!(f, "PPPIOCSFLAGS {flags:#x}"),
            KernelOp::UnitMru(mru) => write!(f, "PPPIOCSMRU {mru}"),
            KernelOp::Compressor { transmit, option } => write!(
                f,
                "PPPIOCSCOMPRESS ({}, option type {})",
                if *transmit {
                    "compressor"
                } else {
                    "decompressor"
                },
                option.option_type()
            ),
            KernelOp::NpMode { protocol, mode } => write!(
                f,
                "PPPIOCSNPMODE {protocol:#06x} {}",
                match mode {
                    NpMode::Pass => "pass",
                    NpMode::Drop => "drop",
                }
            ),
            KernelOp::AsyncChannel(settings) => write!(
                f,
                "async channel (accm {:#x}/{:#x}, flags {:#x}, mru {})",
                settings.transmit_accm, settings.receive_accm, settings.flags, settings.mru
            ),
        }
    }
}

/// The protocol field and the rest of a frame as the link gives it (the protocol field may be
/// compressed to one byte).
pub fn split_protocol(frame: &[u8]) -> Option<(u16, &[u8])> {
    let first = *frame.first()?;
    if first & 1 == 1 {
        return Some((u16::from(first), &frame[1..]));
    }
    let second = *frame.get(1)?;
    Some((u16::from_be_bytes([first, second]), &frame[2..]))
}

/// The kernel side of one link's negotiation; see the [module](self) docs.
#[derive(Debug)]
pub struct UnitSync {
    flags: u32,
    ccp: bool,
    async_channel: bool,
    keys: Option<MppeKeys>,
    ops: VecDeque<KernelOp>,
}

/// The CCP codes the kernel's peek cares about.
const CONFIGURE_REQUEST: u8 = 1;
const CONFIGURE_ACK: u8 = 2;

impl UnitSync {
    /// The bookkeeping for a new unit: `ccp` when CCP runs in the kernel (the unit then looks
    /// at CCP packets from the start), `async_channel` for a serial line. The first ops set the
    /// unit's flags and keep IPv4 and IPv6 out until their NCPs are Opened.
    pub fn new(ccp: bool, async_channel: bool) -> Self {
        let flags = if ccp { SC_CCP_OPEN } else { 0 };
        let mut ops = VecDeque::new();
        ops.push_back(KernelOp::UnitFlags(flags));
        ops.push_back(KernelOp::NpMode {
            protocol: PROTOCOL_IPV4,
            mode: NpMode::Drop,
        });
        ops.push_back(KernelOp::NpMode {
            protocol: PROTOCOL_IPV6,
            mode: NpMode::Drop,
        });
        if async_channel {
            ops.push_back(KernelOp::AsyncChannel(AsyncSettings::default()));
        }
        UnitSync {
            flags,
            ccp,
            async_channel,
            keys: None,
            ops,
        }
    }

    /// The MPPE start keys (from MS-CHAP), once authentication gave them.
    pub fn set_mppe_keys(&mut self, keys: MppeKeys) {
        self.keys = Some(keys);
    }

    /// Whether MPPE keys are known.
    pub fn has_mppe_keys(&self) -> bool {
        self.keys.is_some()
    }

    /// The unit flags as last set.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// The link is about to send `frame` (protocol field first).
    pub fn on_transmit(&mut self, frame: &[u8]) {
        if !self.ccp {
            return;
        }
        let Some((protocol, packet)) = split_protocol(frame) else {
            return;
        };
        if protocol != PROTOCOL_CCP {
            return;
        }
        let (Some(&code), Some(length)) = (
            packet.first(),
            packet
                .get(2..4)
                .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]]))),
        ) else {
            return;
        };
        let transmit = match code {
            CONFIGURE_REQUEST => false,
            CONFIGURE_ACK => true,
            _ => return,
        };
        // Negotiating again: the unit must watch the Acks.
        self.set_flags(self.flags & !SC_CCP_UP);
        let options = packet.get(4..length.min(packet.len())).unwrap_or_default();
        if let Some(option) = self.compressor_option(options, transmit) {
            self.ops
                .push_back(KernelOp::Compressor { transmit, option });
        }
    }

    /// The first option in `options` the kernel can run, with its key.
    fn compressor_option(&self, mut options: &[u8], transmit: bool) -> Option<CompressorOption> {
        while let [kind, len, ..] = *options {
            let len = usize::from(len);
            if len < 2 || len > options.len() {
                return None;
            }
            let option = &options[..len];
            match kind {
                OPTION_MPPE if len == MPPE_OPTION_LEN => {
                    let keys = self.keys.as_ref()?;
                    let key = if transmit { &keys.send } else { &keys.recv };
                    let mut bytes = Vec::with_capacity(len + key.len());
                    bytes.extend_from_slice(option);
                    bytes.extend_from_slice(key);
                    return Some(CompressorOption(bytes));
                }
                OPTION_DEFLATE | OPTION_DEFLATE_DRAFT if len == DEFLATE_OPTION_LEN => {
                    return Some(CompressorOption(option.to_vec()));
                }
                _ => {}
            }
            options = &options[len..];
        }
        None
    }

    /// The link reported `event`.
    pub fn on_event(&mut self, event: &LinkEvent) {
        match event {
            LinkEvent::LinkUp(negotiated) => {
                self.ops.push_back(KernelOp::UnitMru(negotiated.our_mru));
                if self.async_channel {
                    let mut flags = 0;
                    if negotiated.pfc_tx {
                        flags |= SC_COMP_PROT;
                    }
                    if negotiated.acfc_tx {
                        flags |= SC_COMP_AC;
                    }
                    self.ops.push_back(KernelOp::AsyncChannel(AsyncSettings {
                        transmit_accm: negotiated.peer_accm,
                        receive_accm: negotiated.our_accm,
                        flags,
                        mru: negotiated.our_mru,
                    }));
                }
            }
            LinkEvent::CcpUp(_) if self.ccp => self.set_flags(self.flags | SC_CCP_UP),
            LinkEvent::CcpDown if self.ccp => self.set_flags(self.flags & !SC_CCP_UP),
            LinkEvent::IpUp { .. } => self.np_mode(PROTOCOL_IPV4, NpMode::Pass),
            LinkEvent::IpDown => self.np_mode(PROTOCOL_IPV4, NpMode::Drop),
            LinkEvent::Ipv6Up { .. } => self.np_mode(PROTOCOL_IPV6, NpMode::Pass),
            LinkEvent::Ipv6Down => self.np_mode(PROTOCOL_IPV6, NpMode::Drop),
            LinkEvent::LinkDown { .. } => {
                self.np_mode(PROTOCOL_IPV4, NpMode::Drop);
                self.np_mode(PROTOCOL_IPV6, NpMode::Drop);
                self.set_flags(self.flags & !SC_CCP_UP);
            }
            _ => {}
        }
    }

    fn set_flags(&mut self, flags: u32) {
        if flags != self.flags {
            self.flags = flags;
            self.ops.push_back(KernelOp::UnitFlags(flags));
        }
    }

    fn np_mode(&mut self, protocol: u16, mode: NpMode) {
        self.ops.push_back(KernelOp::NpMode { protocol, mode });
    }

    /// The next thing to tell the kernel.
    #[must_use]
    pub fn poll_op(&mut self) -> Option<KernelOp> {
        self.ops.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppp_ccp::CcpNegotiated;

    fn drain(sync: &mut UnitSync) -> Vec<KernelOp> {
        std::iter::from_fn(|| sync.poll_op()).collect()
    }

    fn keys() -> MppeKeys {
        MppeKeys::new([0x11; 16], [0x22; 16])
    }

    /// A CCP packet with `code` and `options`, protocol field first.
    fn ccp(code: u8, options: &[u8]) -> Vec<u8> {
        let len = u16::try_from(4 + options.len()).expect("short");
        let mut frame = vec![0x80, 0xFD, code, 7];
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(options);
        frame
    }

    const MPPE_128_STATELESS: [u8; 6] = [18, 6, 0x01, 0, 0, 0x40];

    #[test]
    fn routes_follow_pppd() {
        assert_eq!(Route::of(0xC021), Route::Channel);
        assert_eq!(Route::of(0xC223), Route::Channel);
        assert_eq!(Route::of(0x80FB), Route::Channel);
        assert_eq!(Route::of(0x8021), Route::Unit);
        assert_eq!(Route::of(0x80FD), Route::Unit);
        assert_eq!(Route::of(0x8057), Route::Unit);
        assert_eq!(Route::of(0x0021), Route::Unit);
    }

    #[test]
    fn a_new_unit_keeps_ip_out_and_looks_at_ccp() {
        let mut sync = UnitSync::new(true, false);
        assert_eq!(
            drain(&mut sync),
            [
                KernelOp::UnitFlags(SC_CCP_OPEN),
                KernelOp::NpMode {
                    protocol: PROTOCOL_IPV4,
                    mode: NpMode::Drop
                },
                KernelOp::NpMode {
                    protocol: PROTOCOL_IPV6,
                    mode: NpMode::Drop
                },
            ]
        );
        let mut sync = UnitSync::new(false, true);
        let ops = drain(&mut sync);
        assert_eq!(ops[0], KernelOp::UnitFlags(0));
        assert_eq!(ops[3], KernelOp::AsyncChannel(AsyncSettings::default()));
    }

    #[test]
    fn mppe_keys_go_with_requests_and_acks() {
        let mut sync = UnitSync::new(true, false);
        drain(&mut sync);
        sync.set_mppe_keys(keys());
        sync.on_transmit(&ccp(1, &MPPE_128_STATELESS));
        let ops = drain(&mut sync);
        let [KernelOp::Compressor { transmit, option }] = ops.as_slice() else {
            panic!("one compressor op: {ops:?}");
        };
        assert!(!transmit);
        assert_eq!(&option.as_bytes()[..6], &MPPE_128_STATELESS);
        assert_eq!(&option.as_bytes()[6..], &[0x22; 16], "the receive key");
        sync.on_transmit(&ccp(2, &MPPE_128_STATELESS));
        let ops = drain(&mut sync);
        let [KernelOp::Compressor { transmit, option }] = ops.as_slice() else {
            panic!("one compressor op: {ops:?}");
        };
        assert!(transmit);
        assert_eq!(&option.as_bytes()[6..], &[0x11; 16], "the send key");
        assert!(!format!("{option:?}").contains("17"), "no key in Debug");
    }

    #[test]
    fn ccp_up_is_set_after_the_acks_and_cleared_when_negotiating_again() {
        let mut sync = UnitSync::new(true, false);
        drain(&mut sync);
        sync.on_event(&LinkEvent::CcpUp(CcpNegotiated::default()));
        assert_eq!(
            drain(&mut sync),
            [KernelOp::UnitFlags(SC_CCP_OPEN | SC_CCP_UP)]
        );
        // The peer asks again: our Ack must pass with CCP_UP off, before its compressor.
        let deflate = [26, 4, 0x78, 0];
        sync.on_transmit(&ccp(2, &deflate));
        let ops = drain(&mut sync);
        assert_eq!(ops[0], KernelOp::UnitFlags(SC_CCP_OPEN));
        assert!(matches!(
            &ops[1],
            KernelOp::Compressor { transmit: true, option } if option.as_bytes() == deflate
        ));
        sync.on_event(&LinkEvent::CcpDown);
        assert_eq!(drain(&mut sync), [], "already off");
    }

    #[test]
    fn mppe_without_keys_or_unknown_options_give_no_compressor() {
        let mut sync = UnitSync::new(true, false);
        drain(&mut sync);
        sync.on_transmit(&ccp(1, &MPPE_128_STATELESS));
        assert_eq!(drain(&mut sync), []);
        sync.set_mppe_keys(keys());
        // BSD-Compress first, then Deflate: the Deflate option is taken.
        sync.on_transmit(&ccp(1, &[21, 3, 0x2F, 26, 4, 0x78, 0]));
        let ops = drain(&mut sync);
        assert!(matches!(
            &ops[..],
            [KernelOp::Compressor { transmit: false, option }] if option.option_type() == 26
        ));
        // Reset-Request, Terminate: nothing for the kernel.
        sync.on_transmit(&ccp(14, &[]));
        sync.on_transmit(&ccp(5, &[]));
        assert_eq!(drain(&mut sync), []);
    }

    #[test]
    fn without_ccp_frames_change_nothing() {
        let mut sync = UnitSync::new(false, false);
        drain(&mut sync);
        sync.set_mppe_keys(keys());
        sync.on_transmit(&ccp(1, &MPPE_128_STATELESS));
        sync.on_event(&LinkEvent::CcpUp(CcpNegotiated::default()));
        assert_eq!(drain(&mut sync), []);
    }

    #[test]
    fn ncps_open_and_close_their_protocols() {
        let mut sync = UnitSync::new(false, false);
        drain(&mut sync);
        sync.on_event(&LinkEvent::IpUp {
            local: [192, 0, 2, 1].into(),
            peer: [192, 0, 2, 2].into(),
            dns: vec![],
        });
        sync.on_event(&LinkEvent::Ipv6Down);
        assert_eq!(
            drain(&mut sync),
            [
                KernelOp::NpMode {
                    protocol: PROTOCOL_IPV4,
                    mode: NpMode::Pass
                },
                KernelOp::NpMode {
                    protocol: PROTOCOL_IPV6,
                    mode: NpMode::Drop
                },
            ]
        );
    }

    #[test]
    fn malformed_ccp_packets_are_harmless() {
        let mut sync = UnitSync::new(true, false);
        sync.set_mppe_keys(keys());
        for frame in [
            &[][..],
            &[0x80],
            &[0x80, 0xFD],
            &[0x80, 0xFD, 1],
            &[0x80, 0xFD, 1, 1, 0xFF, 0xFF, 18, 6, 1],
            &[0x80, 0xFD, 1, 1, 0, 8, 18, 0, 1, 2],
            &[0x80, 0xFD, 1, 1, 0, 2],
            &[0xFD, 1],
        ] {
            sync.on_transmit(frame);
        }
        for op in drain(&mut sync) {
            if let KernelOp::Compressor { option, .. } = op {
                assert!(option.as_bytes().len() <= MAX_COMPRESS_OPTION);
            }
        }
    }

    #[test]
    fn protocol_fields_split() {
        assert_eq!(split_protocol(&[0x21, 0x45]), Some((0x21, &[0x45][..])));
        assert_eq!(split_protocol(&[0xC0, 0x21, 1]), Some((0xC021, &[1][..])));
        assert_eq!(split_protocol(&[0xC0]), None);
        assert_eq!(split_protocol(&[]), None);
    }

    #[test]
    fn kernel_ops_read_as_ioctls() {
        assert_eq!(KernelOp::UnitMru(1492).to_string(), "PPPIOCSMRU 1492");
        assert_eq!(
            KernelOp::NpMode {
                protocol: PROTOCOL_IPV4,
                mode: NpMode::Pass
            }
            .to_string(),
            "PPPIOCSNPMODE 0x0021 pass"
        );
        assert_eq!(
            KernelOp::UnitFlags(SC_CCP_OPEN | SC_CCP_UP).to_string(),
            "PPPIOCSFLAGS 0xc0"
        );
    }

    proptest::proptest! {
        /// Whatever frame the link sends, the bookkeeping neither panics nor asks the kernel
        /// for an option longer than `PPPIOCSCOMPRESS` takes (plus a 16-byte MPPE key).
        #[test]
        fn arbitrary_frames_are_harmless(
            frames in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), 0..8),
            ccp_prefix in proptest::prelude::any::<bool>(),
        ) {
            let mut sync = UnitSync::new(true, true);
            sync.set_mppe_keys(MppeKeys::new([0x11; 16], [0x22; 16]));
            for frame in frames {
                let mut bytes = Vec::new();
                if ccp_prefix {
                    bytes.extend_from_slice(&PROTOCOL_CCP.to_be_bytes());
                }
                bytes.extend_from_slice(&frame);
                sync.on_transmit(&bytes);
                for op in drain(&mut sync) {
                    if let KernelOp::Compressor { option, .. } = op {
                        proptest::prop_assert!(option.as_bytes().len() <= MAX_COMPRESS_OPTION + 16);
                    }
                }
            }
        }
    }
}
