//! IPv6CP (RFC 5072): interface-identifier negotiation, plugged into the RFC 1661 automaton
//! through [`ControlProtocol`].

use std::fmt;
use std::net::Ipv6Addr;

use ppp_core::Random;
use ppp_frame::Protocol;
use ppp_lcp::fsm::{ControlProtocol, NegotiationFailure, RequestVerdict};
use tracing::debug;

use crate::ipv6cp_option::{InterfaceId, Ipv6cpOption, describe_ipv6cp_options};
use crate::tlv;

/// Where our own interface identifier comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum InterfaceIdSource {
    /// A configured identifier (pppd `ipv6 <local>,`). Must not be zero.
    Fixed(InterfaceId),
    /// Drawn from the injected random source when the [`Ipv6cp`] is created (pppd's default).
    #[default]
    Random,
    /// Request the zero identifier so that the peer suggests one (RFC 5072 §4.1).
    FromPeer,
}

/// IPv6CP policy, modelled on pppd's `ipv6` options.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Ipv6cpConfig {
    /// Our interface identifier.
    pub local: InterfaceIdSource,
    /// With [`InterfaceIdSource::Fixed`], take another identifier when the peer Naks ours
    /// (pppd `ipv6cp-accept-local`); without it such a Nak fails the negotiation. Random and
    /// peer-supplied identifiers always give way.
    pub accept_local: bool,
    /// The identifier the peer should use (pppd `ipv6 ,<remote>`): suggested when it sends zero
    /// or collides with ours, and insisted on unless `accept_remote`.
    pub remote: Option<InterfaceId>,
    /// Let the peer keep an identifier other than `remote` (pppd `ipv6cp-accept-remote`).
    pub accept_remote: bool,
}

/// What IPv6CP settled on; available from [`Ipv6cp::negotiated`] after This-Layer-Up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv6cpNegotiated {
    /// Our interface identifier.
    pub local_interface_id: InterfaceId,
    /// The peer's interface identifier.
    pub peer_interface_id: InterfaceId,
}

impl Ipv6cpNegotiated {
    /// Our link-local address, `fe80::/64` + our identifier.
    #[must_use]
    pub fn local_link_local(&self) -> Ipv6Addr {
        self.local_interface_id.link_local()
    }

    /// The peer's link-local address.
    #[must_use]
    pub fn peer_link_local(&self) -> Ipv6Addr {
        self.peer_interface_id.link_local()
    }
}

/// How many random draws are tried before falling back to a deterministic choice.
const RANDOM_ATTEMPTS: usize = 16;

/// The IPv6 Control Protocol.
///
/// Run it on the automaton: `ppp_lcp::Fsm::new(Ipv6cp::new(config, random), fsm_config)`. After
/// `FsmEvent::Up`, [`Ipv6cp::negotiated`] holds both identifiers; when they could not be agreed
/// (as pppd: unknown or equal identifiers) the automaton never reports Up and closes with
/// [`NegotiationFailure::NoInterfaceIds`].
///
/// IPv6-Compression-Protocol is not implemented: never requested, always Configure-Rejected.
pub struct Ipv6cp {
    config: Ipv6cpConfig,
    random: Random,
    /// Our identifier at the start of each negotiation (drawn once for `Random`).
    initial_local: InterfaceId,
    // What our next Configure-Request carries.
    request_id: bool,
    local: InterfaceId,
    acked_local: Option<InterfaceId>,
    // The peer's side.
    peer: Option<InterfaceId>,
    /// The identifier in the peer's latest request, Acked or not: what the peer uses if we end
    /// up rejecting the option.
    peer_requested: Option<InterfaceId>,
    suggested_for_peer: Option<InterfaceId>,
    negotiated: Option<Ipv6cpNegotiated>,
    failure: Option<NegotiationFailure>,
}

impl fmt::Debug for Ipv6cp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ipv6cp")
            .field("config", &self.config)
            .field("local", &self.local)
            .field("peer", &self.peer)
            .field("negotiated", &self.negotiated)
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

/// Set on random identifiers: clear the universal/local bit (0x02 of the first byte in the
/// modified EUI-64 format of RFC 4291), marking them as not globally unique.
fn random_id(random: &Random, avoid: &[InterfaceId]) -> InterfaceId {
    for _ in 0..RANDOM_ATTEMPTS {
        let mut id = InterfaceId::from_u64(random.u64());
        id.0[0] &= !0x02;
        if !id.is_zero() && !avoid.contains(&id) {
            return id;
        }
    }
    // A broken random source: walk small values, at most `avoid.len() + 1` steps.
    (1..=u64::try_from(avoid.len())
        .unwrap_or(u64::MAX)
        .saturating_add(1))
        .map(InterfaceId::from_u64)
        .find(|id| !avoid.contains(id))
        .unwrap_or(InterfaceId::from_u64(u64::MAX))
}

impl Ipv6cp {
    /// IPv6CP with `config`, drawing random identifiers from `random`.
    #[must_use]
    pub fn new(config: Ipv6cpConfig, random: Random) -> Self {
        let initial_local = match config.local {
            InterfaceIdSource::Fixed(id) if !id.is_zero() => id,
            InterfaceIdSource::Fixed(_) | InterfaceIdSource::Random => random_id(&random, &[]),
            InterfaceIdSource::FromPeer => InterfaceId::ZERO,
        };
        let mut ipv6cp = Self {
            config,
            random,
            initial_local,
            request_id: true,
            local: initial_local,
            acked_local: None,
            peer: None,
            peer_requested: None,
            suggested_for_peer: None,
            negotiated: None,
            failure: None,
        };
        ipv6cp.start_negotiation();
        ipv6cp
    }

    /// The policy.
    #[must_use]
    pub fn config(&self) -> &Ipv6cpConfig {
        &self.config
    }

    /// The negotiated identifiers, from This-Layer-Up until This-Layer-Down.
    #[must_use]
    pub fn negotiated(&self) -> Option<&Ipv6cpNegotiated> {
        self.negotiated.as_ref()
    }

    /// Why the negotiation could not produce usable identifiers (the owner should close the
    /// automaton with this reason). Cleared when a fresh negotiation starts.
    #[must_use]
    pub fn failure(&self) -> Option<&NegotiationFailure> {
        self.failure.as_ref()
    }

    /// Take the failure out (see [`Ipv6cp::failure`]).
    pub fn take_failure(&mut self) -> Option<NegotiationFailure> {
        self.failure.take()
    }

    fn fail(&mut self, failure: NegotiationFailure) -> NegotiationFailure {
        debug!("IPV6CP: {failure}");
        self.failure = Some(failure.clone());
        failure
    }

    fn start_negotiation(&mut self) {
        self.request_id = true;
        self.local = self.initial_local;
        self.acked_local = None;
        self.peer = None;
        self.peer_requested = None;
        self.suggested_for_peer = None;
        self.negotiated = None;
        self.failure = None;
    }

    /// An identifier to suggest to the peer: the configured one, else a random one, never zero and
    /// never ours. Stable within a negotiation.
    fn suggestion_for_peer(&mut self) -> InterfaceId {
        let ours = self.local;
        let usable = |id: &InterfaceId| !id.is_zero() && *id != ours;
        if let Some(id) = self.suggested_for_peer.filter(usable) {
            return id;
        }
        let id = match self.config.remote.filter(usable) {
            Some(id) => id,
            None => random_id(&self.random, &[ours]),
        };
        self.suggested_for_peer = Some(id);
        id
    }

    /// RFC 5072 §4.1 on receipt of the peer's Interface-Identifier.
    fn judge_id(&mut self, id: InterfaceId) -> Option<Ipv6cpOption> {
        if id.is_zero() && self.local.is_zero() {
            return None; // Reject: nobody can pick a unique identifier.
        }
        if let Some(remote) = self.config.remote
            && !self.config.accept_remote
            && id != remote
            && !remote.is_zero()
            && remote != self.local
        {
            return Some(Ipv6cpOption::InterfaceIdentifier(remote));
        }
        if id.is_zero() || id == self.local {
            let suggestion = self.suggestion_for_peer();
            return Some(Ipv6cpOption::InterfaceIdentifier(suggestion));
        }
        Some(Ipv6cpOption::InterfaceIdentifier(id))
    }

    fn decide(&mut self, options: &[u8], allow_nak: bool, reply: &mut Vec<u8>) -> RequestVerdict {
        let mut rejected = Vec::new();
        let mut naked = Vec::new();
        let mut peer = None;
        for item in tlv::iter(options) {
            let tlv = match item {
                Ok(tlv) => tlv,
                Err(error) => {
                    debug!("IPV6CP: malformed request: {error}");
                    let start = options.len().min(match error {
                        crate::IpcpError::TruncatedHeader { offset, .. }
                        | crate::IpcpError::BadOptionLength { offset, .. } => offset,
                        crate::IpcpError::WrongDataLength { .. } => options.len(),
                    });
                    rejected.extend_from_slice(&options[start..]);
                    break;
                }
            };
            match Ipv6cpOption::parse(tlv.kind, tlv.data) {
                Ok(Ipv6cpOption::InterfaceIdentifier(id)) => {
                    self.peer_requested = Some(id);
                    match self.judge_id(id) {
                        None => rejected.extend_from_slice(tlv.raw),
                        Some(Ipv6cpOption::InterfaceIdentifier(answer)) if answer == id => {
                            peer = Some(id);
                        }
                        Some(suggestion) if allow_nak => suggestion.emit(&mut naked),
                        Some(_) => rejected.extend_from_slice(tlv.raw),
                    }
                }
                // Compression is not implemented; unknown and badly sized options are rejected.
                Ok(_) | Err(_) => rejected.extend_from_slice(tlv.raw),
            }
        }
        if !rejected.is_empty() {
            reply.extend_from_slice(&rejected);
            RequestVerdict::Reject
        } else if !naked.is_empty() {
            reply.extend_from_slice(&naked);
            RequestVerdict::Nak
        } else {
            // The request we Ack is what the peer uses: without the option, its identifier is
            // no longer the one of an earlier Ack (it may have picked one unnegotiated).
            self.peer = peer;
            RequestVerdict::Ack
        }
    }

    fn adopt_nak(&mut self, options: &[u8]) -> Result<(), NegotiationFailure> {
        for tlv in tlv::iter(options).map_while(Result::ok) {
            let Ok(Ipv6cpOption::InterfaceIdentifier(suggested)) =
                Ipv6cpOption::parse(tlv.kind, tlv.data)
            else {
                continue;
            };
            if !self.request_id || suggested == self.local {
                continue;
            }
            let fixed = matches!(self.config.local, InterfaceIdSource::Fixed(id) if !id.is_zero());
            if fixed && !self.config.accept_local {
                return Err(self.fail(NegotiationFailure::InterfaceIdRefused {
                    configured: self.local.to_u64(),
                    suggested: suggested.to_u64(),
                }));
            }
            let avoid: Vec<InterfaceId> = self.peer.into_iter().collect();
            self.local = if suggested.is_zero() || avoid.contains(&suggested) {
                random_id(&self.random, &avoid)
            } else {
                suggested
            };
            debug!("IPV6CP: now requesting interface identifier {}", self.local);
        }
        Ok(())
    }

    fn adopt_reject(&mut self, options: &[u8]) {
        for tlv in tlv::iter(options).map_while(Result::ok) {
            if tlv.kind == 1 && self.request_id {
                self.request_id = false;
                if self.local.is_zero() {
                    let avoid: Vec<InterfaceId> = self.peer.into_iter().collect();
                    self.local = random_id(&self.random, &avoid);
                }
                debug!(
                    "IPV6CP: peer rejected Interface-Identifier; using {} unnegotiated",
                    self.local
                );
            }
        }
    }

    fn come_up(&mut self) -> Result<(), NegotiationFailure> {
        let local = if self.request_id {
            self.acked_local
        } else {
            Some(self.local)
        };
        // Not negotiated (we rejected the option, or the peer never sent it): the peer goes on
        // with what it last asked for, else it is the identifier configured for it.
        let peer = self
            .peer
            .or(self.peer_requested.filter(|id| !id.is_zero()))
            .or(self.config.remote);
        let agreed = match (local, peer) {
            (Some(local), Some(peer)) if !local.is_zero() && !peer.is_zero() && local != peer => {
                Some((local, peer))
            }
            _ => None,
        };
        let Some((local_interface_id, peer_interface_id)) = agreed else {
            self.negotiated = None;
            return Err(self.fail(NegotiationFailure::NoInterfaceIds));
        };
        let negotiated = Ipv6cpNegotiated {
            local_interface_id,
            peer_interface_id,
        };
        debug!(
            "IPV6CP: local LL address {}, remote LL address {}",
            negotiated.local_link_local(),
            negotiated.peer_link_local()
        );
        self.negotiated = Some(negotiated);
        Ok(())
    }
}

impl ControlProtocol for Ipv6cp {
    fn protocol(&self) -> Protocol {
        Protocol::Ipv6cp
    }

    fn name(&self) -> &'static str {
        "IPV6CP"
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        if self.request_id {
            Ipv6cpOption::InterfaceIdentifier(self.local).emit(out);
        }
    }

    fn check_request(
        &mut self,
        options: &[u8],
        allow_nak: bool,
        reply: &mut Vec<u8>,
    ) -> RequestVerdict {
        self.decide(options, allow_nak, reply)
    }

    fn on_ack(&mut self, options: &[u8]) {
        for tlv in tlv::iter(options).map_while(Result::ok) {
            if let Ok(Ipv6cpOption::InterfaceIdentifier(id)) =
                Ipv6cpOption::parse(tlv.kind, tlv.data)
            {
                self.acked_local = Some(id);
            }
        }
    }

    fn on_nak(&mut self, options: &[u8]) -> Result<(), NegotiationFailure> {
        self.adopt_nak(options)
    }

    fn on_reject(&mut self, options: &[u8]) -> Result<(), NegotiationFailure> {
        self.adopt_reject(options);
        Ok(())
    }

    fn this_layer_up(&mut self) -> Result<(), NegotiationFailure> {
        self.come_up()
    }

    fn this_layer_down(&mut self) {
        self.negotiated = None;
    }

    fn reset(&mut self) {
        self.start_negotiation();
    }

    fn describe_options(&self, options: &[u8]) -> String {
        describe_ipv6cp_options(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: InterfaceId = InterfaceId::from_u64(0x1234_5678_9abc_def0);
    const B: InterfaceId = InterfaceId::from_u64(0x0011_2233_4455_6677);
    const C: InterfaceId = InterfaceId::from_u64(0x0000_0000_0000_00cc);

    fn bytes(options: &[Ipv6cpOption]) -> Vec<u8> {
        let mut out = Vec::new();
        Ipv6cpOption::emit_list(options, &mut out);
        out
    }

    fn id(id: InterfaceId) -> Vec<u8> {
        bytes(&[Ipv6cpOption::InterfaceIdentifier(id)])
    }

    /// A generator yielding `values` in turn (then counting up from the last).
    fn scripted(values: &[u64]) -> Random {
        Random::scripted(values)
    }

    fn fixed(local: InterfaceId) -> Ipv6cpConfig {
        Ipv6cpConfig {
            local: InterfaceIdSource::Fixed(local),
            accept_local: true,
            ..Ipv6cpConfig::default()
        }
    }

    #[test]
    fn request_golden_bytes() {
        let mut ipv6cp = Ipv6cp::new(fixed(A), scripted(&[1]));
        let mut out = Vec::new();
        ipv6cp.build_request(&mut out);
        assert_eq!(
            out,
            [0x01, 0x0a, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0]
        );
        assert_eq!(
            ipv6cp.describe_options(&out),
            "<addr fe80::1234:5678:9abc:def0>"
        );
        assert_eq!(ipv6cp.protocol(), Protocol::Ipv6cp);
        assert_eq!(ipv6cp.name(), "IPV6CP");

        // Random identifiers have the universal/local bit cleared; FromPeer sends zero.
        let random = Ipv6cp::new(Ipv6cpConfig::default(), scripted(&[u64::MAX]));
        assert_eq!(random.local, InterfaceId::from_u64(0xfdff_ffff_ffff_ffff));
        let mut from_peer = Ipv6cp::new(
            Ipv6cpConfig {
                local: InterfaceIdSource::FromPeer,
                ..Ipv6cpConfig::default()
            },
            scripted(&[1]),
        );
        out.clear();
        from_peer.build_request(&mut out);
        assert_eq!(out, id(InterfaceId::ZERO));
    }

    /// RFC 5072 §4.1 answers: (our config, random values, peer's id, allow_nak, verdict, reply).
    #[test]
    fn answers() {
        use RequestVerdict::{Ack, Nak, Reject};
        let from_peer = Ipv6cpConfig {
            local: InterfaceIdSource::FromPeer,
            ..Ipv6cpConfig::default()
        };
        let insist_remote = Ipv6cpConfig {
            remote: Some(C),
            ..fixed(A)
        };
        let cases: Vec<(
            Ipv6cpConfig,
            u64,
            InterfaceId,
            bool,
            RequestVerdict,
            Vec<u8>,
        )> = vec![
            (fixed(A), 7, B, true, Ack, vec![]),
            // Collision: Nak with a new identifier for the peer.
            (fixed(A), B.to_u64(), A, true, Nak, id(B)),
            // Zero: suggest one.
            (fixed(A), B.to_u64(), InterfaceId::ZERO, true, Nak, id(B)),
            // The configured remote is suggested first.
            (
                Ipv6cpConfig {
                    remote: Some(C),
                    accept_remote: true,
                    ..fixed(A)
                },
                B.to_u64(),
                InterfaceId::ZERO,
                true,
                Nak,
                id(C),
            ),
            (insist_remote.clone(), 1, B, true, Nak, id(C)),
            (insist_remote.clone(), 1, C, true, Ack, vec![]),
            (insist_remote, 1, B, false, Reject, id(B)),
            // Both zero: nobody can choose; reject.
            (
                from_peer.clone(),
                1,
                InterfaceId::ZERO,
                true,
                Reject,
                id(InterfaceId::ZERO),
            ),
            (from_peer, 1, B, true, Ack, vec![]),
        ];
        for (config, random, peer, allow_nak, verdict, expected) in cases {
            let mut ipv6cp = Ipv6cp::new(config.clone(), scripted(&[random]));
            let mut reply = Vec::new();
            let got = ipv6cp.check_request(&id(peer), allow_nak, &mut reply);
            assert_eq!(
                (got, reply),
                (verdict, expected),
                "{config:?} peer {peer} allow_nak {allow_nak}"
            );
        }
    }

    #[test]
    fn compression_and_unknown_options_are_rejected() {
        let mut ipv6cp = Ipv6cp::new(fixed(A), scripted(&[1]));
        let compress = Ipv6cpOption::CompressionProtocol {
            protocol: 0x004f,
            data: vec![0, 15],
        };
        let unknown = Ipv6cpOption::Unknown {
            kind: 9,
            data: vec![1, 2],
        };
        let request = bytes(&[
            Ipv6cpOption::InterfaceIdentifier(InterfaceId::ZERO),
            compress.clone(),
            unknown.clone(),
        ]);
        let mut reply = Vec::new();
        assert_eq!(
            ipv6cp.check_request(&request, true, &mut reply),
            RequestVerdict::Reject
        );
        assert_eq!(reply, bytes(&[compress, unknown]));
        reply.clear();
        let short = [1, 4, 0, 0];
        assert_eq!(
            ipv6cp.check_request(&short, true, &mut reply),
            RequestVerdict::Reject
        );
        assert_eq!(reply, short);
    }

    #[test]
    fn suggestion_is_stable_and_never_ours() {
        // The random source first yields our own id, then zero, then B.
        let mut ipv6cp = Ipv6cp::new(fixed(B), scripted(&[B.to_u64(), 0, C.to_u64(), A.to_u64()]));
        for _ in 0..3 {
            let mut reply = Vec::new();
            let _ = ipv6cp.check_request(&id(B), true, &mut reply);
            assert_eq!(reply, id(C));
        }
        // A constant broken source still yields a usable identifier.
        let mut broken = Ipv6cp::new(fixed(InterfaceId::from_u64(1)), scripted(&[0]));
        let mut reply = Vec::new();
        let _ = broken.check_request(&id(InterfaceId::ZERO), true, &mut reply);
        assert_eq!(reply, id(InterfaceId::from_u64(2)));
    }

    #[test]
    fn naks_and_rejects_of_our_identifier() {
        // Taking the peer's suggestion.
        let mut ipv6cp = Ipv6cp::new(Ipv6cpConfig::default(), scripted(&[B.to_u64()]));
        ipv6cp.on_nak(&id(A)).unwrap();
        let mut out = Vec::new();
        ipv6cp.build_request(&mut out);
        assert_eq!(out, id(A));

        // A suggestion equal to the peer's own id is replaced by a random one.
        let mut ipv6cp = Ipv6cp::new(fixed(A), scripted(&[C.to_u64()]));
        let mut reply = Vec::new();
        let _ = ipv6cp.check_request(&id(B), true, &mut reply);
        ipv6cp.on_nak(&id(B)).unwrap();
        assert_eq!(ipv6cp.local, C);

        // A fixed identifier without accept-local: the Nak is a failure.
        let mut strict = Ipv6cp::new(
            Ipv6cpConfig {
                accept_local: false,
                ..fixed(A)
            },
            scripted(&[1]),
        );
        assert!(strict.on_nak(&id(A)).is_ok());
        let failure = strict.on_nak(&id(B)).unwrap_err();
        assert_eq!(
            failure,
            NegotiationFailure::InterfaceIdRefused {
                configured: A.to_u64(),
                suggested: B.to_u64()
            }
        );

        // Rejected while asking the peer to pick: choose one ourselves, negotiate no more.
        let mut from_peer = Ipv6cp::new(
            Ipv6cpConfig {
                local: InterfaceIdSource::FromPeer,
                ..Ipv6cpConfig::default()
            },
            scripted(&[C.to_u64()]),
        );
        from_peer.on_reject(&id(InterfaceId::ZERO)).unwrap();
        out.clear();
        from_peer.build_request(&mut out);
        assert!(out.is_empty());
        let mut reply = Vec::new();
        assert_eq!(
            from_peer.check_request(&id(B), true, &mut reply),
            RequestVerdict::Ack
        );
        from_peer.on_ack(&out);
        let _ = from_peer.this_layer_up();
        let got = from_peer.negotiated().unwrap();
        assert_eq!((got.local_interface_id, got.peer_interface_id), (C, B));
    }

    /// A renegotiation where the peer's last request has no Interface-Identifier: the
    /// identifier Acked in an earlier round is not the peer's any more (it may have picked one
    /// of its own after we rejected the option), so nothing stale is reported.
    #[test]
    fn an_earlier_round_does_not_decide_the_peers_identifier() {
        let mut ipv6cp = Ipv6cp::new(fixed(A), scripted(&[1]));
        let mut reply = Vec::new();
        assert_eq!(
            ipv6cp.check_request(&id(B), true, &mut reply),
            RequestVerdict::Ack
        );
        assert_eq!(
            ipv6cp.check_request(&[], true, &mut reply),
            RequestVerdict::Ack
        );
        ipv6cp.on_ack(&id(A));
        assert_eq!(
            ipv6cp.this_layer_up(),
            Ok(()),
            "B was the last identifier requested"
        );
        assert_eq!(ipv6cp.negotiated().unwrap().peer_interface_id, B);

        let mut ipv6cp = Ipv6cp::new(fixed(A), scripted(&[1]));
        assert_eq!(
            ipv6cp.check_request(&id(B), true, &mut reply),
            RequestVerdict::Ack
        );
        reply.clear();
        // Then the peer asks for 0 (let us pick), our Nak is lost, and it goes on without.
        let _ = ipv6cp.check_request(&id(InterfaceId::ZERO), true, &mut reply);
        assert_eq!(
            ipv6cp.check_request(&[], true, &mut reply),
            RequestVerdict::Ack
        );
        ipv6cp.on_ack(&id(A));
        assert_eq!(
            ipv6cp.this_layer_up(),
            Err(NegotiationFailure::NoInterfaceIds)
        );
    }

    #[test]
    fn results_and_failures_at_up() {
        let mut ipv6cp = Ipv6cp::new(fixed(A), scripted(&[1]));
        let mut reply = Vec::new();
        let _ = ipv6cp.check_request(&id(B), true, &mut reply);
        ipv6cp.on_ack(&id(A));
        let _ = ipv6cp.this_layer_up();
        let got = *ipv6cp.negotiated().unwrap();
        assert_eq!(
            got.local_link_local(),
            "fe80::1234:5678:9abc:def0".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            got.peer_link_local(),
            "fe80::11:2233:4455:6677".parse::<Ipv6Addr>().unwrap()
        );
        ipv6cp.this_layer_down();
        assert!(ipv6cp.negotiated().is_none());

        // The peer never sent an identifier and none is configured.
        let mut ipv6cp = Ipv6cp::new(fixed(A), scripted(&[1]));
        let _ = ipv6cp.check_request(&[], true, &mut reply);
        ipv6cp.on_ack(&id(A));
        let _ = ipv6cp.this_layer_up();
        assert!(ipv6cp.negotiated().is_none());
        assert_eq!(ipv6cp.failure(), Some(&NegotiationFailure::NoInterfaceIds));
        ipv6cp.reset();
        assert!(ipv6cp.failure().is_none());
    }

    proptest! {
        #[test]
        fn check_request_never_panics(
            list in proptest::collection::vec(any::<u8>(), 0..64),
            allow_nak in any::<bool>(),
            seed in any::<u64>(),
            source in 0u8..3,
        ) {
            let local = match source {
                0 => InterfaceIdSource::Fixed(A),
                1 => InterfaceIdSource::Random,
                _ => InterfaceIdSource::FromPeer,
            };
            let mut ipv6cp = Ipv6cp::new(
                Ipv6cpConfig { local, ..Ipv6cpConfig::default() },
                Random::seeded(seed),
            );
            let mut reply = Vec::new();
            match ipv6cp.check_request(&list, allow_nak, &mut reply) {
                RequestVerdict::Ack => prop_assert!(reply.is_empty()),
                RequestVerdict::Nak => {
                    prop_assert!(allow_nak);
                    for option in Ipv6cpOption::parse_list(&reply).unwrap() {
                        let Ipv6cpOption::InterfaceIdentifier(suggested) = option else {
                            panic!("unexpected Nak option {option:?}");
                        };
                        prop_assert!(!suggested.is_zero());
                        prop_assert_ne!(suggested, ipv6cp.local);
                    }
                }
                RequestVerdict::Reject => prop_assert!(!reply.is_empty()),
            }
            let _ = ipv6cp.on_nak(&list);
            let _ = ipv6cp.on_reject(&list);
            ipv6cp.on_ack(&list);
            let _ = ipv6cp.this_layer_up();
            let _ = ipv6cp.describe_options(&list);
        }
    }
}
