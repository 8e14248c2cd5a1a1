//! The framing of one link: async HDLC-like (serial lines) or sync (PPPoE), with what LCP
//! negotiated applied at the right moment.

use std::time::{Duration, Instant};

use ppp_frame::{
    AsyncDecoder, AsyncEncoder, ByteSet, DecoderConfig, DecoderStats, EncoderConfig, FrameError,
    Protocol,
};
use ppp_lcp::LcpNegotiated;

use crate::Framing;

/// A link's framer. The async state (encoder, decoder and its buffer) is boxed, so a PPPoE
/// session pays one byte of state for framing instead of the async machinery it never uses.
pub(crate) enum Framer {
    Async(Box<AsyncFramer>),
    Sync {
        /// Protocol-Field-Compression on transmit (never on PPPoE unless negotiated).
        pfc: bool,
    },
}

pub(crate) struct AsyncFramer {
    encoder: AsyncEncoder,
    decoder: AsyncDecoder,
    extra_escapes: ByteSet,
    last_transmit: Option<Instant>,
}

impl Framer {
    pub(crate) fn new(framing: &Framing) -> Self {
        match framing {
            Framing::Async { extra_escapes } => Framer::Async(Box::new(AsyncFramer {
                encoder: AsyncEncoder::new(EncoderConfig {
                    extra_escapes: *extra_escapes,
                    ..EncoderConfig::default()
                }),
                decoder: AsyncDecoder::new(DecoderConfig::default()),
                extra_escapes: *extra_escapes,
                last_transmit: None,
            })),
            Framing::Sync => Framer::Sync { pfc: false },
        }
    }

    /// Applies what LCP negotiated (at LCP Opened) or the defaults (`None`, when LCP goes down).
    pub(crate) fn configure(&mut self, negotiated: Option<&LcpNegotiated>) {
        match self {
            Framer::Async(framer) => {
                let extra_escapes = framer.extra_escapes;
                let (tx, rx) = match negotiated {
                    Some(n) => (
                        EncoderConfig {
                            accm: n.peer_accm,
                            extra_escapes,
                            acfc: n.acfc_tx,
                            pfc: n.pfc_tx,
                            fcs: n.fcs_tx,
                        },
                        DecoderConfig {
                            accm: n.our_accm,
                            fcs: n.fcs_rx,
                            max_frame_len: DecoderConfig::frame_len_for_mru(n.our_mru.max(1500)),
                        },
                    ),
                    None => (
                        EncoderConfig {
                            extra_escapes,
                            ..EncoderConfig::default()
                        },
                        DecoderConfig::default(),
                    ),
                };
                framer.encoder.set_config(tx);
                framer.decoder.set_config(rx);
            }
            Framer::Sync { pfc } => *pfc = negotiated.is_some_and(|n| n.pfc_tx),
        }
    }

    /// Frames `payload` of `protocol` for the lower layer: async bytes (with an opening flag
    /// after `flag_time` of silence), or a sync frame with `headroom` free bytes in front.
    pub(crate) fn encode(
        &mut self,
        now: Instant,
        flag_time: Duration,
        headroom: usize,
        protocol: Protocol,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Framer::Async(framer) => {
                if framer
                    .last_transmit
                    .is_none_or(|t| now.saturating_duration_since(t) >= flag_time)
                {
                    framer.encoder.line_idle();
                }
                framer.last_transmit = Some(now);
                framer.encoder.encode(protocol, payload, &mut out);
            }
            Framer::Sync { pfc } => {
                let pfc = *pfc && protocol != Protocol::Lcp;
                out.reserve(headroom + 2 + payload.len());
                out.resize(headroom, 0);
                ppp_frame::sync::encode(protocol, payload, pfc, &mut out);
            }
        }
        out
    }

    /// Async framing: the next whole frame in `input` (which is advanced), or `None` when
    /// `input` is used up. Sync framing never has frames here.
    pub(crate) fn next_frame(
        &mut self,
        input: &mut &[u8],
    ) -> Option<Result<(Protocol, Vec<u8>), FrameError>> {
        match self {
            Framer::Async(framer) => framer
                .decoder
                .decode(input)
                .map(|result| result.map(|frame| (frame.protocol, frame.payload.to_vec()))),
            Framer::Sync { .. } => None,
        }
    }

    /// Whether frames arrive as a byte stream (async) rather than one by one (sync).
    pub(crate) fn is_async(&self) -> bool {
        matches!(self, Framer::Async(_))
    }

    /// The async decoder's counters.
    pub(crate) fn decoder_stats(&self) -> Option<DecoderStats> {
        match self {
            Framer::Async(framer) => Some(*framer.decoder.stats()),
            Framer::Sync { .. } => None,
        }
    }
}
