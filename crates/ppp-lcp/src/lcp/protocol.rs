//! LCP as a [`ControlProtocol`]: what we request, and what we Ack, Nak and Reject.

use core::fmt::{self, Write as _};
use std::collections::VecDeque;
use std::sync::Arc;

use ppp_core::Random;
use ppp_frame::{FcsKind, Protocol};

use super::config::{
    AuthProtocol, DEFAULT_MRU, EndpointClass, EndpointDiscriminator, FcsAlternatives, LcpConfig,
    LcpOptionType, MIN_MRU,
};
use crate::describe::Hex;
use crate::fsm::{ControlProtocol, NegotiationFailure, OtherCode, RequestVerdict, State};
use crate::lcp::SharedLcpConfig;
use crate::options::{iter_options, push_option};
use crate::packet::Code;

/// The Quality-Protocol number of Link Quality Reporting.
const LQR: [u8; 2] = [0xc0, 0x25];

/// What was agreed in both directions when LCP reached Opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LcpNegotiated {
    /// Largest packet we receive (our MRU as the peer Acked it; 1500 if not negotiated).
    pub our_mru: u16,
    /// Largest packet the peer receives (its MRU; 1500 if not negotiated).
    pub peer_mru: u16,
    /// Largest packet we send: the peer's MRU capped by the configured MTU.
    pub mtu: u16,
    /// Control characters the peer must escape toward us (0xFFFFFFFF if not negotiated).
    pub our_accm: u32,
    /// Control characters we must escape toward the peer (0xFFFFFFFF if not negotiated).
    pub peer_accm: u32,
    /// We may compress the protocol field of what we send.
    pub pfc_tx: bool,
    /// The peer may compress the protocol field of what it sends.
    pub pfc_rx: bool,
    /// We may omit address and control fields in what we send.
    pub acfc_tx: bool,
    /// The peer may omit address and control fields in what it sends.
    pub acfc_rx: bool,
    /// FCS we append to what we send.
    pub fcs_tx: FcsKind,
    /// FCS the peer appends to what it sends.
    pub fcs_rx: FcsKind,
    /// The method the peer must authenticate with (we are the authenticator).
    pub auth_we_require: Option<AuthProtocol>,
    /// The method we must authenticate with (the peer is the authenticator).
    pub auth_peer_requires: Option<AuthProtocol>,
    /// Our Magic-Number, if negotiated.
    pub our_magic: Option<u32>,
    /// The peer's Magic-Number, if negotiated.
    pub peer_magic: Option<u32>,
    /// LQR reporting period we asked the peer for (hundredths of a second).
    pub our_lqr_period: Option<u32>,
    /// LQR reporting period the peer asked us for (hundredths of a second).
    pub peer_lqr_period: Option<u32>,
    /// Multilink: the MRRU we receive, if Multilink was negotiated from our side.
    pub our_mrru: Option<u16>,
    /// Multilink: the peer's MRRU.
    pub peer_mrru: Option<u16>,
    /// Multilink: the peer sends us short sequence numbers.
    pub ssnhf_rx: bool,
    /// Multilink: we send short sequence numbers.
    pub ssnhf_tx: bool,
    /// Our Endpoint Discriminator as Acked.
    pub our_endpoint: Option<EndpointDiscriminator>,
    /// The peer's Endpoint Discriminator.
    pub peer_endpoint: Option<EndpointDiscriminator>,
}

impl LcpNegotiated {
    /// The transmit framing for an asynchronous line: the peer's ACCM, our PFC/ACFC permission
    /// and FCS (`extra_escapes` left empty for the link to fill in).
    pub fn encoder_config(&self) -> ppp_frame::EncoderConfig {
        ppp_frame::EncoderConfig {
            accm: self.peer_accm,
            acfc: self.acfc_tx,
            pfc: self.pfc_tx,
            fcs: self.fcs_tx,
            ..ppp_frame::EncoderConfig::default()
        }
    }

    /// The receive framing for an asynchronous line: our ACCM, the peer's FCS, and room for our
    /// MRU (never less than 1500, which a receiver must always take, RFC 1661 §6.1).
    pub fn decoder_config(&self) -> ppp_frame::DecoderConfig {
        ppp_frame::DecoderConfig {
            accm: self.our_accm,
            fcs: self.fcs_rx,
            max_frame_len: ppp_frame::DecoderConfig::frame_len_for_mru(
                self.our_mru.max(DEFAULT_MRU),
            ),
        }
    }
}

/// The options of one direction (what one side asked for and got).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Side {
    mru: Option<u16>,
    accm: Option<u32>,
    auth: Option<AuthProtocol>,
    lqr_period: Option<u32>,
    magic: Option<u32>,
    pfc: bool,
    acfc: bool,
    fcs: Option<FcsAlternatives>,
    mrru: Option<u16>,
    ssnhf: bool,
    endpoint: Option<EndpointDiscriminator>,
}

/// Something LCP saw that the [`super::Lcp`] wrapper reports or acts upon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Note {
    EchoReply,
    EchoRejected,
    Loopback,
    ProtocolRejected(Protocol),
    Identification(String),
    TimeRemaining(u32),
}

/// Notes kept at most between two drains.
const MAX_NOTES: usize = 16;

/// LCP's side of the automaton: the option policy of RFC 1661 §6, RFC 1570 and RFC 1990.
pub struct LcpProtocol {
    config: SharedLcpConfig,
    random: Random,
    /// What our next Configure-Request asks for.
    request: Side,
    /// Methods of `config.require` the peer refused.
    refused_auth: Vec<AuthProtocol>,
    /// Our request as the peer Acked it.
    ours: Option<Side>,
    /// The peer's request as we Acked it.
    peers: Option<Side>,
    negotiated: Option<LcpNegotiated>,
    /// Consecutive Configure-Requests carrying our own Magic-Number.
    loops_seen: u32,
    notes: VecDeque<Note>,
}

impl fmt::Debug for LcpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LcpProtocol")
            .field("request", &self.request)
            .field("negotiated", &self.negotiated)
            .field("loops_seen", &self.loops_seen)
            .finish_non_exhaustive()
    }
}

impl LcpProtocol {
    /// LCP with `config`, drawing Magic-Numbers from `random`.
    pub fn new(config: LcpConfig, random: Random) -> Self {
        Self::with_shared_config(Arc::new(config), random)
    }

    /// LCP whose configuration is shared with other links (a server's sessions: one copy for
    /// all of them).
    pub fn with_shared_config(config: SharedLcpConfig, random: Random) -> Self {
        // The request is filled in by `reset` when the first negotiation starts (the Magic-Number
        // is drawn then).
        LcpProtocol {
            config,
            random,
            request: Side::default(),
            refused_auth: Vec::new(),
            ours: None,
            peers: None,
            negotiated: None,
            loops_seen: 0,
            notes: VecDeque::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LcpConfig {
        (*self.config).as_ref()
    }

    /// Releases the memory of empty queues (an idle link keeps none).
    pub(crate) fn compact(&mut self) {
        if self.notes.is_empty() {
            self.notes = VecDeque::new();
        }
    }

    /// What was negotiated, while Opened.
    pub fn negotiated(&self) -> Option<&LcpNegotiated> {
        self.negotiated.as_ref()
    }

    /// The Magic-Number our requests carry now (0 when not negotiating one).
    pub fn our_magic(&self) -> u32 {
        self.request.magic.unwrap_or(0)
    }

    pub(crate) fn take_note(&mut self) -> Option<Note> {
        self.notes.pop_front()
    }

    fn note(&mut self, note: Note) {
        if self.notes.len() < MAX_NOTES {
            self.notes.push_back(note);
        }
    }

    fn fresh_magic(&mut self) -> u32 {
        // Zero is not a valid Magic-Number; neither is the one we use now.
        let current = self.request.magic.unwrap_or(0);
        for _ in 0..16 {
            let magic = self.random.u32();
            if magic != 0 && magic != current {
                return magic;
            }
        }
        current.wrapping_add(0x9E37_79B9).max(1)
    }

    /// The first required method the peer has not refused.
    fn next_required_auth(&self) -> Option<AuthProtocol> {
        self.config()
            .require
            .iter()
            .copied()
            .find(|auth| !self.refused_auth.contains(auth))
    }

    fn refuse_current_auth(&mut self) -> Result<(), NegotiationFailure> {
        if let Some(current) = self.request.auth {
            self.refused_auth.push(current);
        }
        self.request.auth = self.next_required_auth();
        if self.request.auth.is_none() && !self.config().require.is_empty() {
            return Err(NegotiationFailure::PeerRefusedAuthentication);
        }
        Ok(())
    }

    fn build_negotiated(&self) -> LcpNegotiated {
        let ours = self.ours.clone().unwrap_or_default();
        let peers = self.peers.clone().unwrap_or_default();
        let peer_mru = peers.mru.unwrap_or(DEFAULT_MRU);
        LcpNegotiated {
            our_mru: ours.mru.unwrap_or(DEFAULT_MRU),
            peer_mru,
            mtu: self.config().mtu.map_or(peer_mru, |mtu| mtu.min(peer_mru)),
            our_accm: ours.accm.unwrap_or(u32::MAX),
            peer_accm: peers.accm.unwrap_or(u32::MAX),
            pfc_tx: peers.pfc,
            pfc_rx: ours.pfc,
            acfc_tx: peers.acfc,
            acfc_rx: ours.acfc,
            fcs_tx: peers
                .fcs
                .and_then(FcsAlternatives::strongest)
                .unwrap_or(FcsKind::Fcs16),
            fcs_rx: ours
                .fcs
                .and_then(FcsAlternatives::strongest)
                .unwrap_or(FcsKind::Fcs16),
            auth_we_require: ours.auth,
            auth_peer_requires: peers.auth,
            our_magic: ours.magic,
            peer_magic: peers.magic,
            our_lqr_period: ours.lqr_period,
            peer_lqr_period: peers.lqr_period,
            our_mrru: ours.mrru,
            peer_mrru: peers.mrru,
            ssnhf_rx: ours.ssnhf,
            ssnhf_tx: peers.ssnhf,
            our_endpoint: ours.endpoint,
            peer_endpoint: peers.endpoint,
        }
    }
}

fn be_u16(data: &[u8]) -> Option<u16> {
    match *data {
        [a, b] => Some(u16::from_be_bytes([a, b])),
        _ => None,
    }
}

fn be_u32(data: &[u8]) -> Option<u32> {
    match *data {
        [a, b, c, d] => Some(u32::from_be_bytes([a, b, c, d])),
        _ => None,
    }
}

/// Accumulates the answer to a Configure-Request: Rejects win over Naks (RFC 1661 §5.3–5.4).
struct Answer {
    naks: Vec<u8>,
    rejects: Vec<u8>,
    allow_nak: bool,
}

impl Answer {
    fn reject(&mut self, kind: u8, data: &[u8]) {
        push_option(&mut self.rejects, kind, data);
    }

    /// Nak with `suggestion`, or Reject the original option when Naks are used up.
    fn nak(&mut self, kind: u8, original: &[u8], suggestion: &[u8]) {
        if self.allow_nak {
            push_option(&mut self.naks, kind, suggestion);
        } else {
            self.reject(kind, original);
        }
    }
}

impl ControlProtocol for LcpProtocol {
    fn protocol(&self) -> Protocol {
        Protocol::Lcp
    }

    fn name(&self) -> &'static str {
        "LCP"
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        let request = &self.request;
        if let Some(mru) = request.mru {
            push_option(out, LcpOptionType::Mru.number(), &mru.to_be_bytes());
        }
        if let Some(accm) = request.accm {
            push_option(out, LcpOptionType::Accm.number(), &accm.to_be_bytes());
        }
        if let Some(auth) = request.auth {
            push_option(
                out,
                LcpOptionType::AuthenticationProtocol.number(),
                &auth.option_data(),
            );
        }
        if let Some(period) = request.lqr_period {
            let mut data = LQR.to_vec();
            data.extend_from_slice(&period.to_be_bytes());
            push_option(out, LcpOptionType::QualityProtocol.number(), &data);
        }
        if let Some(magic) = request.magic {
            push_option(
                out,
                LcpOptionType::MagicNumber.number(),
                &magic.to_be_bytes(),
            );
        }
        if request.pfc {
            push_option(out, LcpOptionType::ProtocolFieldCompression.number(), &[]);
        }
        if request.acfc {
            push_option(
                out,
                LcpOptionType::AddressControlFieldCompression.number(),
                &[],
            );
        }
        if let Some(fcs) = request.fcs {
            push_option(out, LcpOptionType::FcsAlternatives.number(), &[fcs.0]);
        }
        if let Some(mrru) = request.mrru {
            push_option(out, LcpOptionType::Mrru.number(), &mrru.to_be_bytes());
        }
        if request.ssnhf {
            push_option(
                out,
                LcpOptionType::ShortSequenceNumberHeaderFormat.number(),
                &[],
            );
        }
        if let Some(endpoint) = &request.endpoint {
            push_option(
                out,
                LcpOptionType::EndpointDiscriminator.number(),
                &endpoint.option_data(),
            );
        }
    }

    fn check_request(
        &mut self,
        options: &[u8],
        allow_nak: bool,
        reply: &mut Vec<u8>,
    ) -> RequestVerdict {
        let mut answer = Answer {
            naks: Vec::new(),
            rejects: Vec::new(),
            allow_nak,
        };
        let mut peer = Side::default();
        let mut looped = false;
        for option in iter_options(options) {
            let Ok(option) = option else {
                // The automaton validated the list; be safe anyway.
                return RequestVerdict::Reject;
            };
            let (kind, data) = (option.kind, option.data);
            match LcpOptionType::from(kind) {
                LcpOptionType::Mru => match be_u16(data) {
                    Some(mru) if mru >= MIN_MRU => peer.mru = Some(mru),
                    Some(_) => answer.nak(kind, data, &MIN_MRU.to_be_bytes()),
                    None => answer.reject(kind, data),
                },
                LcpOptionType::Accm => match be_u32(data) {
                    Some(accm) => peer.accm = Some(accm),
                    None => answer.reject(kind, data),
                },
                LcpOptionType::AuthenticationProtocol => {
                    let Some(&preferred) = self.config().allow.first() else {
                        answer.reject(kind, data);
                        continue;
                    };
                    match AuthProtocol::from_option_data(data) {
                        Some(auth) if self.config().allow.contains(&auth) => peer.auth = Some(auth),
                        _ if data.len() < 2 => answer.reject(kind, data),
                        _ => answer.nak(kind, data, &preferred.option_data()),
                    }
                }
                LcpOptionType::QualityProtocol => match (self.config().lqr_period, data) {
                    (Some(_), [0xc0, 0x25, a, b, c, d]) => {
                        peer.lqr_period = Some(u32::from_be_bytes([*a, *b, *c, *d]));
                    }
                    (Some(period), [_, _, ..]) => {
                        let mut suggestion = LQR.to_vec();
                        suggestion.extend_from_slice(&period.to_be_bytes());
                        answer.nak(kind, data, &suggestion);
                    }
                    _ => answer.reject(kind, data),
                },
                LcpOptionType::MagicNumber => match be_u32(data) {
                    Some(magic) if self.request.magic.is_some_and(|ours| ours == magic) => {
                        // Our own Magic-Number: maybe a looped-back line (RFC 1661 §6.4). Nak
                        // with another number whatever Max-Failure says, as pppd does.
                        looped = true;
                        let suggestion = self.fresh_magic();
                        push_option(&mut answer.naks, kind, &suggestion.to_be_bytes());
                    }
                    Some(0) => {
                        let suggestion = self.fresh_magic();
                        answer.nak(kind, data, &suggestion.to_be_bytes());
                    }
                    Some(magic) => peer.magic = Some(magic),
                    None => answer.reject(kind, data),
                },
                LcpOptionType::ProtocolFieldCompression if data.is_empty() && self.config().pfc => {
                    peer.pfc = true;
                }
                LcpOptionType::AddressControlFieldCompression
                    if data.is_empty() && self.config().acfc =>
                {
                    peer.acfc = true;
                }
                LcpOptionType::FcsAlternatives => match *data {
                    [bits] => {
                        let wanted = FcsAlternatives(bits);
                        let possible = wanted.intersection(self.config().accept_fcs);
                        if possible == wanted && !wanted.is_empty() {
                            peer.fcs = Some(wanted);
                        } else if !possible.is_empty() {
                            answer.nak(kind, data, &[possible.0]);
                        } else {
                            answer.reject(kind, data);
                        }
                    }
                    _ => answer.reject(kind, data),
                },
                LcpOptionType::Mrru if self.config().mrru.is_some() => match be_u16(data) {
                    Some(mrru) if mrru >= MIN_MRU => peer.mrru = Some(mrru),
                    Some(_) => answer.nak(kind, data, &MIN_MRU.to_be_bytes()),
                    None => answer.reject(kind, data),
                },
                LcpOptionType::ShortSequenceNumberHeaderFormat
                    if data.is_empty() && self.config().ssnhf =>
                {
                    peer.ssnhf = true;
                }
                LcpOptionType::EndpointDiscriminator => {
                    match EndpointDiscriminator::from_option_data(data) {
                        Some(endpoint) => peer.endpoint = Some(endpoint),
                        None => answer.reject(kind, data),
                    }
                }
                // Callback, options we do not do, wrong lengths and unknown types.
                _ => answer.reject(kind, data),
            }
        }
        if looped {
            self.loops_seen = self.loops_seen.saturating_add(1);
            if self.config().loopback_fail > 0 && self.loops_seen >= self.config().loopback_fail {
                self.note(Note::Loopback);
            }
        }
        if !answer.rejects.is_empty() {
            reply.extend_from_slice(&answer.rejects);
            RequestVerdict::Reject
        } else if !answer.naks.is_empty() {
            reply.extend_from_slice(&answer.naks);
            RequestVerdict::Nak
        } else {
            self.loops_seen = 0;
            self.peers = Some(peer);
            RequestVerdict::Ack
        }
    }

    fn on_ack(&mut self, _options: &[u8]) {
        // The automaton checked the Ack echoes the request built from `self.request`.
        self.ours = Some(self.request.clone());
    }

    fn on_nak(&mut self, options: &[u8]) -> Result<(), NegotiationFailure> {
        for option in iter_options(options) {
            let Ok(option) = option else { break };
            let data = option.data;
            match LcpOptionType::from(option.kind) {
                LcpOptionType::Mru => {
                    if let Some(mru) = be_u16(data) {
                        let adopted = mru.clamp(MIN_MRU, self.config().max_mru.max(MIN_MRU));
                        self.request.mru = (adopted != DEFAULT_MRU).then_some(adopted);
                    }
                }
                LcpOptionType::Accm => {
                    if let Some(accm) = be_u32(data) {
                        // The union of both maps satisfies both sides (RFC 1662 §7.1).
                        self.request.accm = Some(self.request.accm.unwrap_or(0) | accm);
                    }
                }
                LcpOptionType::AuthenticationProtocol => {
                    if self.request.auth.is_none() {
                        // The peer suggests we authenticate it; only the config decides that.
                        continue;
                    }
                    match AuthProtocol::from_option_data(data) {
                        Some(suggested)
                            if self.config().require.contains(&suggested)
                                && !self.refused_auth.contains(&suggested)
                                && Some(suggested) != self.request.auth =>
                        {
                            if let Some(current) = self.request.auth {
                                self.refused_auth.push(current);
                            }
                            self.request.auth = Some(suggested);
                        }
                        _ => self.refuse_current_auth()?,
                    }
                }
                LcpOptionType::QualityProtocol => match data {
                    [0xc0, 0x25, a, b, c, d] if self.request.lqr_period.is_some() => {
                        self.request.lqr_period = Some(u32::from_be_bytes([*a, *b, *c, *d]));
                    }
                    _ => self.request.lqr_period = None,
                },
                // A new Magic-Number MUST be chosen (RFC 1661 §6.4).
                LcpOptionType::MagicNumber if self.request.magic.is_some() => {
                    self.request.magic = Some(self.fresh_magic());
                }
                LcpOptionType::FcsAlternatives => {
                    if let ([bits], Some(_)) = (data, self.request.fcs) {
                        let possible = FcsAlternatives(*bits)
                            .intersection(self.config().fcs_alternatives.unwrap_or_default());
                        self.request.fcs = (!possible.is_empty()).then_some(possible);
                    }
                }
                LcpOptionType::Mrru => {
                    if let (Some(mrru), Some(_)) = (be_u16(data), self.request.mrru) {
                        self.request.mrru = Some(mrru.max(MIN_MRU));
                    }
                }
                // Boolean options and discriminators cannot be Nak'd sensibly: stop asking.
                LcpOptionType::ProtocolFieldCompression => self.request.pfc = false,
                LcpOptionType::AddressControlFieldCompression => self.request.acfc = false,
                LcpOptionType::ShortSequenceNumberHeaderFormat => self.request.ssnhf = false,
                LcpOptionType::EndpointDiscriminator => self.request.endpoint = None,
                // Options we did not ask for that the peer would like us to: ignore.
                _ => {}
            }
        }
        Ok(())
    }

    fn on_reject(&mut self, options: &[u8]) -> Result<(), NegotiationFailure> {
        for option in iter_options(options) {
            let Ok(option) = option else { break };
            match LcpOptionType::from(option.kind) {
                LcpOptionType::Mru => self.request.mru = None,
                LcpOptionType::Accm => self.request.accm = None,
                LcpOptionType::AuthenticationProtocol => {
                    self.request.auth = None;
                    if !self.config().require.is_empty() {
                        return Err(NegotiationFailure::PeerRefusedAuthentication);
                    }
                }
                LcpOptionType::QualityProtocol => self.request.lqr_period = None,
                LcpOptionType::MagicNumber => self.request.magic = None,
                LcpOptionType::ProtocolFieldCompression => self.request.pfc = false,
                LcpOptionType::AddressControlFieldCompression => self.request.acfc = false,
                LcpOptionType::FcsAlternatives => self.request.fcs = None,
                LcpOptionType::Mrru => self.request.mrru = None,
                LcpOptionType::ShortSequenceNumberHeaderFormat => self.request.ssnhf = false,
                LcpOptionType::EndpointDiscriminator => self.request.endpoint = None,
                _ => {}
            }
        }
        Ok(())
    }

    fn handle_other_code(
        &mut self,
        state: State,
        code: u8,
        identifier: u8,
        data: &[u8],
    ) -> OtherCode {
        let opened = state == State::Opened;
        let our_magic = self.ours.as_ref().and_then(|ours| ours.magic);
        let carries_our_magic =
            be_u32(data.get(..4).unwrap_or_default()).is_some_and(|magic| our_magic == Some(magic));
        match Code::from(code) {
            Code::ProtocolReject => {
                // Only meaningful in Opened (RFC 1661 §5.7); discarded otherwise.
                if let (true, [hi, lo, ..]) = (opened, data) {
                    let rejected = Protocol::from(u16::from_be_bytes([*hi, *lo]));
                    self.note(Note::ProtocolRejected(rejected));
                }
                OtherCode::Handled
            }
            Code::EchoRequest => {
                if !opened {
                    return OtherCode::Handled;
                }
                if carries_our_magic {
                    self.note(Note::Loopback);
                    return OtherCode::Handled;
                }
                let mut reply = our_magic.unwrap_or(0).to_be_bytes().to_vec();
                reply.extend_from_slice(data.get(4..).unwrap_or_default());
                OtherCode::Reply {
                    code: Code::EchoReply.number(),
                    identifier,
                    data: reply,
                }
            }
            Code::EchoReply => {
                if opened {
                    if carries_our_magic {
                        self.note(Note::Loopback);
                    } else {
                        self.note(Note::EchoReply);
                    }
                }
                OtherCode::Handled
            }
            Code::DiscardRequest => OtherCode::Handled,
            Code::Identification => {
                if let Some(message) = data.get(4..) {
                    let message = &message[..message.len().min(256)];
                    self.note(Note::Identification(
                        String::from_utf8_lossy(message).into_owned(),
                    ));
                }
                OtherCode::Handled
            }
            Code::TimeRemaining => {
                if let Some(seconds) = data.get(4..8).and_then(be_u32) {
                    self.note(Note::TimeRemaining(seconds));
                }
                OtherCode::Handled
            }
            _ => OtherCode::Unknown,
        }
    }

    fn code_reject_permitted(&mut self, rejected_code: u8) -> bool {
        if rejected_code == Code::EchoRequest.number() {
            self.note(Note::EchoRejected);
        }
        !(1..=7).contains(&rejected_code)
    }

    fn this_layer_up(&mut self) -> Result<(), NegotiationFailure> {
        self.negotiated = Some(self.build_negotiated());
        Ok(())
    }

    fn this_layer_down(&mut self) {
        self.negotiated = None;
    }

    fn reset(&mut self) {
        let shared = self.config.clone();
        let config: &LcpConfig = (*shared).as_ref();
        self.refused_auth.clear();
        self.request = Side {
            mru: (config.mru != DEFAULT_MRU).then_some(config.mru),
            accm: config.accm,
            auth: config.require.first().copied(),
            lqr_period: config.lqr_period,
            magic: None,
            pfc: config.pfc,
            acfc: config.acfc,
            fcs: config.fcs_alternatives,
            mrru: config.mrru,
            ssnhf: config.ssnhf && config.mrru.is_some(),
            endpoint: config.endpoint_discriminator.clone(),
        };
        if self.config().magic {
            self.request.magic = Some(self.fresh_magic());
        }
        self.ours = None;
        self.peers = None;
        self.loops_seen = 0;
    }

    fn describe_options(&self, options: &[u8]) -> String {
        describe_lcp_options(options)
    }
}

/// Render an LCP option list pppd-style: `<mru 1492> <asyncmap 0x0> <auth chap MD5>
/// <magic 0x5d3c1a2b> <pcomp> <accomp>`.
pub fn describe_lcp_options(options: &[u8]) -> String {
    let mut out = String::new();
    for option in iter_options(options) {
        if !out.is_empty() {
            out.push(' ');
        }
        let Ok(option) = option else {
            out.push_str("<malformed>");
            break;
        };
        let data = option.data;
        let _ = match (LcpOptionType::from(option.kind), data) {
            (LcpOptionType::Mru, _) if be_u16(data).is_some() => {
                write!(out, "<mru {}>", be_u16(data).unwrap_or_default())
            }
            (LcpOptionType::Accm, _) if be_u32(data).is_some() => {
                write!(out, "<asyncmap {:#x}>", be_u32(data).unwrap_or_default())
            }
            (LcpOptionType::AuthenticationProtocol, _)
                if AuthProtocol::from_option_data(data).is_some() =>
            {
                let auth = AuthProtocol::from_option_data(data).map_or("?", AuthProtocol::log_name);
                write!(out, "<auth {auth}>")
            }
            (LcpOptionType::QualityProtocol, [0xc0, 0x25, a, b, c, d]) => {
                write!(
                    out,
                    "<quality lqr {}>",
                    u32::from_be_bytes([*a, *b, *c, *d])
                )
            }
            (LcpOptionType::MagicNumber, _) if be_u32(data).is_some() => {
                write!(out, "<magic {:#x}>", be_u32(data).unwrap_or_default())
            }
            (LcpOptionType::ProtocolFieldCompression, []) => write!(out, "<pcomp>"),
            (LcpOptionType::AddressControlFieldCompression, []) => write!(out, "<accomp>"),
            (LcpOptionType::FcsAlternatives, [bits]) => write!(out, "<fcs-alt {bits:#x}>"),
            (LcpOptionType::Mrru, _) if be_u16(data).is_some() => {
                write!(out, "<mrru {}>", be_u16(data).unwrap_or_default())
            }
            (LcpOptionType::ShortSequenceNumberHeaderFormat, []) => write!(out, "<ssnhf>"),
            (LcpOptionType::EndpointDiscriminator, [class, address @ ..]) => {
                let class = EndpointClass::from_number(*class);
                write!(out, "<endpoint {class:?}:{}>", Hex(address))
            }
            (LcpOptionType::Callback, [operation, ..]) => {
                write!(out, "<callback {operation:#x}>")
            }
            _ => {
                let _ = write!(out, "<{:02x} {:02x}", option.kind, option.encoded_len());
                if !data.is_empty() {
                    let _ = write!(out, " {}", Hex(data));
                }
                write!(out, ">")
            }
        };
    }
    out
}
