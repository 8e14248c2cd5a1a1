//! CCP (RFC 1962) negotiation policy, plugged into the RFC 1661 automaton through
//! [`ControlProtocol`].
//!
//! In CCP each Configure-Request names what its sender can *decompress*: our request fixes
//! the method of what we receive, the peer's request (once we Ack it) the method of what we
//! send.

use std::fmt;

use ppp_auth::mppe_keys::MppeKeyLength;
use ppp_frame::Protocol;
use ppp_lcp::fsm::{ControlProtocol, Fsm, NegotiationFailure, OtherCode, RequestVerdict, State};
use ppp_lcp::packet::Code;
use tracing::debug;

use crate::mppe::MppeParams;
use crate::option::{CcpOption, DeflateOption, MppeBits, describe_ccp_options, parse_options};
use crate::transform::CompressionMethod;

/// Whether to use MPPE (RouterOS `use-encryption`; pppd `require-mppe` is
/// [`Encryption::Required`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Encryption {
    /// Never: MPPE is neither requested nor accepted.
    #[default]
    No,
    /// If the peer agrees and MPPE keys are available (MS-CHAP authentication); otherwise go
    /// on without it, with Deflate if compression is on.
    Yes,
    /// Both directions must be encrypted, or the link goes down (see
    /// [`Ccp::failure`] and `CcpEvent::LinkFailure`). Excludes Deflate.
    Required,
}

/// CCP policy, modelled on pppd's options (RouterOS profile settings in parentheses).
///
/// MPPE and Deflate exclude each other, as in pppd: while MPPE is part of our request we
/// neither request nor accept Deflate; when encryption is [`Encryption::Yes`] and the peer
/// refuses MPPE we fall back to requesting Deflate (if `compression` is on). MPPC (MPPE's
/// compression) is never used: we never set its bit and clear it in our Naks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CcpConfig {
    /// MPPE use (RouterOS `use-encryption`; pppd `require-mppe`).
    pub encryption: Encryption,
    /// Allow 128-bit MPPE keys (pppd `nomppe-128` clears it).
    pub mppe_128: bool,
    /// Allow 56-bit MPPE keys (neither pppd nor Linux support them; off by default).
    pub mppe_56: bool,
    /// Allow 40-bit MPPE keys (pppd `nomppe-40` clears it; `require-mppe-128` too).
    pub mppe_40: bool,
    /// Request and accept stateful MPPE (pppd `mppe-stateful`); otherwise stateless only.
    pub mppe_stateful: bool,
    /// Deflate compression (RouterOS `use-compression`; pppd `deflate`).
    pub compression: bool,
    /// The Deflate window we request for what we receive (pppd `deflate N`, 9–15).
    pub deflate_window: u8,
    /// Accept the draft Deflate option number 24 as well as 26 (pppd does).
    pub accept_deflate_draft: bool,
}

impl Default for CcpConfig {
    fn default() -> Self {
        CcpConfig {
            encryption: Encryption::No,
            mppe_128: true,
            mppe_56: false,
            mppe_40: true,
            mppe_stateful: false,
            compression: false,
            deflate_window: 15,
            accept_deflate_draft: true,
        }
    }
}

impl CcpConfig {
    /// pppd `require-mppe-128`: stateless 128-bit MPPE or no link.
    #[must_use]
    pub fn require_mppe_128() -> Self {
        CcpConfig {
            encryption: Encryption::Required,
            mppe_40: false,
            ..Self::default()
        }
    }

    /// pppd `deflate N` (no encryption).
    #[must_use]
    pub fn deflate(window_bits: u8) -> Self {
        CcpConfig {
            compression: true,
            deflate_window: window_bits.clamp(9, 15),
            ..Self::default()
        }
    }
}

/// What CCP settled on; available from [`Ccp::negotiated`] after This-Layer-Up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CcpNegotiated {
    /// How we transform what we send (the peer's request that we acknowledged).
    pub transmit: Option<CompressionMethod>,
    /// How the peer transforms what it sends us (our request that it acknowledged).
    pub receive: Option<CompressionMethod>,
}

impl fmt::Display for CcpNegotiated {
    /// "transmit MPPE 128-bit stateless, receive none": plain words for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let describe = |m: Option<CompressionMethod>| {
            m.map_or_else(|| "none".to_owned(), CompressionMethod::describe)
        };
        write!(
            f,
            "transmit {}, receive {}",
            describe(self.transmit),
            describe(self.receive)
        )
    }
}

impl CcpNegotiated {
    /// Whether both directions are MPPE-encrypted.
    pub fn fully_encrypted(&self) -> bool {
        self.transmit.is_some_and(CompressionMethod::is_mppe)
            && self.receive.is_some_and(CompressionMethod::is_mppe)
    }
}

/// The Compression Control Protocol: our requests, our answers to the peer's, the result, and
/// the Reset-Request/Reset-Ack exchange.
///
/// Run it on the automaton (`ppp_lcp::Fsm::new(Ccp::new(config), fsm_config)`) or through
/// [`crate::CcpSession`], which also owns the data transforms and the Reset-Request timer.
/// When using the automaton directly, after each input:
/// - [`Ccp::take_compressor_reset`]: a Reset-Request was answered; reset the compressor.
/// - [`Ccp::take_decompressor_reset`]: a Reset-Ack arrived; reset the decompressor.
/// - [`Ccp::failure`]: encryption is required and cannot be had: take the link down.
#[derive(Debug)]
pub struct Ccp {
    config: CcpConfig,
    mppe_available: bool,
    request_mppe: Option<MppeBits>,
    request_deflate: Option<DeflateOption>,
    receive: Option<CompressionMethod>,
    transmit: Option<CompressionMethod>,
    negotiated: Option<CcpNegotiated>,
    failure: Option<NegotiationFailure>,
    reset_request_outstanding: Option<u8>,
    compressor_reset_due: bool,
    decompressor_reset_due: bool,
    mppe_suggested: bool,
}

/// The strongest key strength among `bits` (S, then M, then L), as a single bit.
fn strongest(bits: u32) -> Option<u32> {
    [MppeBits::BITS_128, MppeBits::BITS_56, MppeBits::BITS_40]
        .into_iter()
        .find(|b| bits & b != 0)
}

fn params_from_bits(bits: MppeBits) -> Option<MppeParams> {
    let key_length = match strongest(bits.0)? {
        MppeBits::BITS_128 => MppeKeyLength::Bits128,
        MppeBits::BITS_56 => MppeKeyLength::Bits56,
        _ => MppeKeyLength::Bits40,
    };
    Some(MppeParams {
        key_length,
        stateful: !bits.stateless(),
    })
}

impl Ccp {
    /// CCP with `config`. MPPE is only negotiated once [`Ccp::set_mppe_available`] says keys
    /// exist.
    #[must_use]
    pub fn new(config: CcpConfig) -> Self {
        let mut ccp = Ccp {
            config,
            mppe_available: false,
            request_mppe: None,
            request_deflate: None,
            receive: None,
            transmit: None,
            negotiated: None,
            failure: None,
            reset_request_outstanding: None,
            compressor_reset_due: false,
            decompressor_reset_due: false,
            mppe_suggested: false,
        };
        ControlProtocol::reset(&mut ccp);
        ccp
    }

    /// The policy.
    pub fn config(&self) -> &CcpConfig {
        &self.config
    }

    /// Whether MPPE keys exist (MS-CHAP authenticated the link). Call before the automaton's
    /// Up; takes effect at the next negotiation.
    pub fn set_mppe_available(&mut self, available: bool) {
        self.mppe_available = available;
        if self.negotiated.is_none() {
            ControlProtocol::reset(self);
        }
    }

    /// Whether MPPE keys were announced.
    pub fn mppe_available(&self) -> bool {
        self.mppe_available
    }

    /// Whether the link must go down when CCP does not end up Opened with MPPE both ways
    /// (including when CCP finishes or the peer Protocol-Rejects it).
    pub fn requires_encryption(&self) -> bool {
        self.config.encryption == Encryption::Required
    }

    /// What was negotiated, between This-Layer-Up and This-Layer-Down.
    pub fn negotiated(&self) -> Option<&CcpNegotiated> {
        self.negotiated.as_ref()
    }

    /// Why the link must go down (required encryption that cannot be had), if so.
    pub fn failure(&self) -> Option<&NegotiationFailure> {
        self.failure.as_ref()
    }

    /// [`Ccp::failure`], taken.
    pub fn take_failure(&mut self) -> Option<NegotiationFailure> {
        self.failure.take()
    }

    /// Whether a Reset-Request was answered since the last call: reset the compressor.
    pub fn take_compressor_reset(&mut self) -> bool {
        std::mem::take(&mut self.compressor_reset_due)
    }

    /// Whether a Reset-Ack arrived since the last call: reset the decompressor.
    pub fn take_decompressor_reset(&mut self) -> bool {
        std::mem::take(&mut self.decompressor_reset_due)
    }

    /// The identifier of our Reset-Request awaiting its Reset-Ack.
    pub fn reset_request_outstanding(&self) -> Option<u8> {
        self.reset_request_outstanding
    }

    /// Record that a Reset-Request with `identifier` was sent (or `None`: stop waiting).
    pub fn set_reset_request_outstanding(&mut self, identifier: Option<u8>) {
        self.reset_request_outstanding = identifier;
    }

    /// Send a Reset-Request on `fsm` unless it is not Opened or one already awaits its
    /// Reset-Ack; returns the identifier used. For owners of a bare `Fsm<Ccp>` (the
    /// decompressor reported [`crate::CcpError::needs_reset_request`]); [`crate::CcpSession`]
    /// does this itself and also repeats the request after a timeout.
    pub fn send_reset_request(fsm: &mut Fsm<Ccp>) -> Option<u8> {
        if fsm.state() != State::Opened || fsm.protocol().reset_request_outstanding.is_some() {
            return None;
        }
        let identifier = fsm.allocate_identifier();
        fsm.send_packet(Code::ResetRequest, identifier, &[]);
        fsm.protocol_mut().reset_request_outstanding = Some(identifier);
        Some(identifier)
    }

    fn allowed_strengths(&self) -> u32 {
        let mut bits = 0;
        if self.config.mppe_128 {
            bits |= MppeBits::BITS_128;
        }
        if self.config.mppe_56 {
            bits |= MppeBits::BITS_56;
        }
        if self.config.mppe_40 {
            bits |= MppeBits::BITS_40;
        }
        bits
    }

    fn mppe_enabled(&self) -> bool {
        self.config.encryption != Encryption::No
            && self.mppe_available
            && self.allowed_strengths() != 0
    }

    fn deflate_allowed(&self) -> bool {
        self.config.compression && self.config.encryption != Encryption::Required
    }

    /// Our MPPE offer: every strength we allow, stateless unless stateful is configured.
    fn mppe_offer(&self) -> MppeBits {
        MppeBits(self.allowed_strengths()).with(MppeBits::STATELESS, !self.config.mppe_stateful)
    }

    /// The peer's MPPE request: acceptable parameters, or the bits to Nak with (`None`:
    /// Reject).
    fn judge_mppe(&self, bits: MppeBits) -> Result<MppeParams, Option<MppeBits>> {
        let allowed = self.allowed_strengths();
        let mut nak = false;
        let mut suggest = MppeBits(bits.0 & (MppeBits::STATELESS | MppeBits::STRENGTHS));
        if suggest != bits {
            // MPPC, D or undefined bits: cleared.
            nak = true;
        }
        if !suggest.stateless() && !self.config.mppe_stateful {
            suggest = suggest.with(MppeBits::STATELESS, true);
            nak = true;
        }
        let offered = suggest.0 & MppeBits::STRENGTHS;
        let usable = offered & allowed;
        let strength = match strongest(usable).or_else(|| strongest(allowed)) {
            Some(strength) => strength,
            None => return Err(None),
        };
        if offered != strength {
            nak = true;
        }
        suggest = MppeBits((suggest.0 & !MppeBits::STRENGTHS) | strength);
        if nak {
            Err(Some(suggest))
        } else {
            params_from_bits(suggest).ok_or(None)
        }
    }

    /// Stop requesting MPPE; fails when it is required.
    fn give_up_mppe(&mut self, failure: NegotiationFailure) -> Result<(), NegotiationFailure> {
        if self.config.encryption == Encryption::Required {
            debug!("CCP: {failure}");
            self.failure = Some(failure.clone());
            return Err(failure);
        }
        debug!("CCP: going on without MPPE");
        self.request_mppe = None;
        if self.deflate_allowed() && self.request_deflate.is_none() {
            self.request_deflate = Some(DeflateOption::new(self.config.deflate_window));
        }
        Ok(())
    }
}

impl ControlProtocol for Ccp {
    fn protocol(&self) -> Protocol {
        Protocol::Ccp
    }

    fn name(&self) -> &'static str {
        "CCP"
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        if let Some(bits) = self.request_mppe {
            CcpOption::Mppe(bits).emit(out);
        }
        if let Some(deflate) = self.request_deflate {
            CcpOption::Deflate(deflate).emit(out);
        }
    }

    fn check_request(
        &mut self,
        options: &[u8],
        allow_nak: bool,
        reply: &mut Vec<u8>,
    ) -> RequestVerdict {
        let parsed = parse_options(options).unwrap_or_default();
        let mppe_in_request = parsed.iter().any(|o| matches!(o, CcpOption::Mppe(_)));
        let mut rejects: Vec<&CcpOption> = Vec::new();
        // (original, suggestion)
        let mut naks: Vec<(Option<&CcpOption>, CcpOption)> = Vec::new();
        let mut chosen: Option<CompressionMethod> = None;
        let mut mppe_considered = false;
        for option in &parsed {
            match option {
                CcpOption::Mppe(bits) => {
                    if !self.mppe_enabled() || chosen.is_some() || mppe_considered {
                        rejects.push(option);
                        continue;
                    }
                    mppe_considered = true;
                    match self.judge_mppe(*bits) {
                        Ok(params) => chosen = Some(CompressionMethod::Mppe(params)),
                        Err(Some(suggest)) => naks.push((Some(option), CcpOption::Mppe(suggest))),
                        Err(None) => rejects.push(option),
                    }
                }
                CcpOption::Deflate(deflate) => {
                    let same_as_chosen = chosen
                        == Some(CompressionMethod::Deflate {
                            window_bits: deflate.window_bits,
                        })
                        && deflate.method == DeflateOption::METHOD_DEFLATE
                        && deflate.check == DeflateOption::CHECK_SEQUENCE
                        && (!deflate.draft || self.config.accept_deflate_draft);
                    if same_as_chosen {
                        // pppd offers Deflate under both numbers: Ack both, use the first.
                        continue;
                    }
                    let excluded = (mppe_in_request && self.mppe_enabled())
                        || self.request_mppe.is_some()
                        || !self.deflate_allowed()
                        || chosen.is_some()
                        || (deflate.draft && !self.config.accept_deflate_draft)
                        || !(9..=15).contains(&deflate.window_bits);
                    if excluded {
                        rejects.push(option);
                    } else if deflate.method != DeflateOption::METHOD_DEFLATE
                        || deflate.check != DeflateOption::CHECK_SEQUENCE
                    {
                        let suggest = DeflateOption {
                            draft: deflate.draft,
                            ..DeflateOption::new(deflate.window_bits)
                        };
                        naks.push((Some(option), CcpOption::Deflate(suggest)));
                    } else {
                        chosen = Some(CompressionMethod::Deflate {
                            window_bits: deflate.window_bits,
                        });
                    }
                }
                CcpOption::Unknown { .. } => rejects.push(option),
            }
        }
        let required = self.config.encryption == Encryption::Required;
        let mppe_coming =
            mppe_considered && rejects.iter().all(|o| !matches!(o, CcpOption::Mppe(_)));
        if required && rejects.is_empty() && !mppe_coming {
            if allow_nak && self.mppe_enabled() {
                // Suggest what the peer did not ask for (RFC 1661 §5.3 allows it).
                naks.push((None, CcpOption::Mppe(self.mppe_offer())));
            } else {
                self.failure = Some(NegotiationFailure::EncryptionNotAgreed);
            }
        } else if !required
            && rejects.is_empty()
            && !mppe_coming
            && allow_nak
            && self.request_mppe.is_some()
            && !self.mppe_suggested
        {
            // Optional encryption: suggest MPPE once per negotiation, so that a peer that can
            // do it encrypts both ways; if it asks again without MPPE, it gets what it asks.
            self.mppe_suggested = true;
            naks.push((None, CcpOption::Mppe(self.mppe_offer())));
        }
        if rejects.is_empty() && naks.is_empty() && (mppe_coming || !required) {
            self.transmit = chosen;
            return RequestVerdict::Ack;
        }
        if !rejects.is_empty() || !allow_nak || naks.is_empty() {
            for option in &rejects {
                option.emit(reply);
            }
            if rejects.is_empty() {
                for (original, _) in &naks {
                    if let Some(original) = original {
                        original.emit(reply);
                    }
                }
            }
            if reply.is_empty() {
                // Nothing specific to refuse (required MPPE the peer never offers): refuse the
                // whole request.
                reply.extend_from_slice(options);
            }
            return RequestVerdict::Reject;
        }
        for (_, suggestion) in &naks {
            suggestion.emit(reply);
        }
        RequestVerdict::Nak
    }

    fn on_ack(&mut self, _options: &[u8]) {
        self.receive = if let Some(bits) = self.request_mppe {
            params_from_bits(bits).map(CompressionMethod::Mppe)
        } else {
            self.request_deflate
                .map(|deflate| CompressionMethod::Deflate {
                    window_bits: deflate.window_bits,
                })
        };
    }

    fn on_nak(&mut self, options: &[u8]) -> Result<(), NegotiationFailure> {
        for option in parse_options(options).unwrap_or_default() {
            match option {
                CcpOption::Mppe(bits) if self.request_mppe.is_some() => {
                    let mut bits = MppeBits(bits.0 & (MppeBits::STATELESS | MppeBits::STRENGTHS));
                    if !self.config.mppe_stateful {
                        bits = bits.with(MppeBits::STATELESS, true);
                    }
                    match strongest(bits.0 & self.allowed_strengths()) {
                        Some(strength) => {
                            let stateless = bits.0 & MppeBits::STATELESS;
                            self.request_mppe = Some(MppeBits(stateless | strength));
                        }
                        None => self.give_up_mppe(NegotiationFailure::EncryptionNotAgreed)?,
                    }
                }
                CcpOption::Deflate(suggested) => {
                    let Some(ours) = self.request_deflate else {
                        continue;
                    };
                    let usable = suggested.method == DeflateOption::METHOD_DEFLATE
                        && (9..=ours.window_bits).contains(&suggested.window_bits);
                    self.request_deflate = usable.then_some(DeflateOption {
                        window_bits: suggested.window_bits,
                        ..ours
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn on_reject(&mut self, options: &[u8]) -> Result<(), NegotiationFailure> {
        for option in parse_options(options).unwrap_or_default() {
            match option {
                CcpOption::Mppe(_) if self.request_mppe.is_some() => {
                    self.give_up_mppe(NegotiationFailure::EncryptionRefused)?;
                }
                CcpOption::Deflate(_) => self.request_deflate = None,
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
        _data: &[u8],
    ) -> OtherCode {
        match Code::from(code) {
            Code::ResetRequest => {
                if state != State::Opened {
                    return OtherCode::Handled;
                }
                self.compressor_reset_due = true;
                OtherCode::Reply {
                    code: Code::ResetAck.number(),
                    identifier,
                    data: Vec::new(),
                }
            }
            Code::ResetAck => {
                if state == State::Opened {
                    // Like the Linux kernel: any Reset-Ack resets the decompressor.
                    self.decompressor_reset_due = true;
                    if self.reset_request_outstanding == Some(identifier) {
                        self.reset_request_outstanding = None;
                    }
                }
                OtherCode::Handled
            }
            _ => OtherCode::Unknown,
        }
    }

    fn this_layer_up(&mut self) -> Result<(), NegotiationFailure> {
        let negotiated = CcpNegotiated {
            transmit: self.transmit,
            receive: self.receive,
        };
        let describe = |m: Option<CompressionMethod>| {
            m.map_or_else(|| "none".to_owned(), CompressionMethod::describe)
        };
        debug!(
            "CCP up: transmit {}, receive {}",
            describe(negotiated.transmit),
            describe(negotiated.receive)
        );
        if self.config.encryption == Encryption::Required && !negotiated.fully_encrypted() {
            self.failure = Some(NegotiationFailure::EncryptionNotAgreed);
            return Err(NegotiationFailure::EncryptionNotAgreed);
        }
        self.negotiated = Some(negotiated);
        Ok(())
    }

    fn this_layer_down(&mut self) {
        self.negotiated = None;
        self.reset_request_outstanding = None;
        self.compressor_reset_due = false;
        self.decompressor_reset_due = false;
    }

    fn reset(&mut self) {
        self.request_mppe = self.mppe_enabled().then(|| self.mppe_offer());
        self.request_deflate = (self.deflate_allowed() && self.request_mppe.is_none())
            .then(|| DeflateOption::new(self.config.deflate_window));
        self.receive = None;
        self.transmit = None;
        self.negotiated = None;
        self.mppe_suggested = false;
        if self.config.encryption != Encryption::Required || self.mppe_enabled() {
            self.failure = None;
        } else {
            self.failure = Some(NegotiationFailure::EncryptionUnavailable);
        }
    }

    fn describe_options(&self, options: &[u8]) -> String {
        describe_ccp_options(options)
    }
}
