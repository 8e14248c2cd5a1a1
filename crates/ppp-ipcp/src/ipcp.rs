//! IPCP (RFC 1332, RFC 1877): address and name-server negotiation policies for clients and
//! servers, plugged into the RFC 1661 automaton through [`ControlProtocol`].

use std::fmt;
use std::net::Ipv4Addr;

use ppp_frame::Protocol;
use ppp_lcp::fsm::{ControlProtocol, NegotiationFailure, RequestVerdict};
use tracing::debug;

use crate::ipcp_option::{IpcpOption, describe_ipcp_options};
use crate::tlv;

/// Where a server gets the address it hands to its peer.
///
/// [`AddressPool::allocate`] is called lazily, the first time a negotiation needs an address for
/// the peer. The address then stays with the [`Ipcp`] across renegotiations (a peer keeps its
/// address when the link renegotiates) until [`Ipcp::release_peer_address`] or drop hand it back
/// with [`AddressPool::release`]; after a `None` (pool exhausted) the next negotiation asks
/// again. Any `FnMut() -> Option<Ipv4Addr>` is a pool that never takes addresses back.
pub trait AddressPool {
    /// An address for the peer, or `None` when the pool is exhausted.
    fn allocate(&mut self) -> Option<Ipv4Addr>;
    /// `address` (from [`AddressPool::allocate`]) is no longer used. Default: nothing.
    fn release(&mut self, address: Ipv4Addr) {
        let _ = address;
    }
}

impl<F: FnMut() -> Option<Ipv4Addr>> AddressPool for F {
    fn allocate(&mut self) -> Option<Ipv4Addr> {
        self()
    }
}

/// IPCP policy, modelled on pppd's options (RouterOS profile names in parentheses).
///
/// The defaults are those of a pppd client with `noipdefault`: ask the peer for our address,
/// accept whatever it assigns, accept the address it announces for itself, no DNS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpcpConfig {
    /// Our address (pppd `local:`; RouterOS `local-address`). `None` requests 0.0.0.0 so that
    /// the peer assigns one.
    pub local_address: Option<Ipv4Addr>,
    /// Take the address the peer Naks us with instead of `local_address` (pppd
    /// `ipcp-accept-local`). Without it, a Nak with another address fails the negotiation.
    /// Always true in effect when `local_address` is `None`.
    pub accept_local: bool,
    /// The address the peer must use (pppd `:remote`; RouterOS `remote-address`). When `None`,
    /// the address pool given to [`Ipcp::with_address_pool`], if any, supplies it.
    pub remote_address: Option<Ipv4Addr>,
    /// Let the peer use the address it asks for even when it differs from the one we have for it
    /// (pppd `ipcp-accept-remote`). Always true in effect when we have no address for the peer.
    pub accept_remote: bool,
    /// Ask the peer for DNS servers (pppd `usepeerdns`).
    pub request_dns: bool,
    /// Ask the peer for NBNS (WINS) servers.
    pub request_nbns: bool,
    /// DNS servers we hand to a peer asking for them (pppd `ms-dns`; RouterOS `dns-server`);
    /// requests for a missing entry are rejected.
    pub dns_servers: [Option<Ipv4Addr>; 2],
    /// NBNS servers we hand out (pppd `ms-wins`; RouterOS `wins-server`).
    pub nbns_servers: [Option<Ipv4Addr>; 2],
}

impl Default for IpcpConfig {
    fn default() -> Self {
        Self {
            local_address: None,
            accept_local: true,
            remote_address: None,
            accept_remote: false,
            request_dns: false,
            request_nbns: false,
            dns_servers: [None; 2],
            nbns_servers: [None; 2],
        }
    }
}

impl IpcpConfig {
    /// A dial-up/PPPoE client: ask for an address and for DNS servers (pppd `noipdefault
    /// usepeerdns`).
    #[must_use]
    pub fn client() -> Self {
        Self {
            request_dns: true,
            ..Self::default()
        }
    }

    /// A server (access concentrator) at `local_address`, handing out `dns_servers`; the peer's
    /// address is `remote_address` or comes from an [`AddressPool`].
    #[must_use]
    pub fn server(local_address: Ipv4Addr, dns_servers: [Option<Ipv4Addr>; 2]) -> Self {
        Self {
            local_address: Some(local_address),
            accept_local: false,
            dns_servers,
            ..Self::default()
        }
    }
}

/// What IPCP settled on; available from [`Ipcp::negotiated`] after This-Layer-Up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpcpNegotiated {
    /// Our address.
    pub local: Ipv4Addr,
    /// The peer's address; 0.0.0.0 when it did not announce one and we had none for it.
    pub peer: Ipv4Addr,
    /// Primary and secondary DNS servers the peer gave us.
    pub dns: [Option<Ipv4Addr>; 2],
    /// Primary and secondary NBNS servers the peer gave us.
    pub nbns: [Option<Ipv4Addr>; 2],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Allocation {
    NotAsked,
    Allocated(Ipv4Addr),
    Exhausted,
}

/// Per-option result of judging a peer's request.
enum Judgement {
    Ack,
    Nak(IpcpOption),
    Reject,
}

fn nonzero(address: Ipv4Addr) -> Option<Ipv4Addr> {
    (!address.is_unspecified()).then_some(address)
}

const DNS_NAMES: [&str; 2] = ["primary DNS", "secondary DNS"];
const NBNS_NAMES: [&str; 2] = ["primary NBNS", "secondary NBNS"];

/// The IP Control Protocol: our requests, our answers to the peer's, and the result.
///
/// Run it on the automaton: `ppp_lcp::Fsm::new(Ipcp::new(config), fsm_config)`. After the
/// automaton reports `FsmEvent::Up`, [`Ipcp::negotiated`] holds the addresses; if it is `None`,
/// [`Ipcp::failure`] says why (for example "could not determine local IP address" or an
/// exhausted address pool) and the owner should `close` the automaton with that reason, as pppd
/// does. Failures that surface while answering Naks and Rejects are returned to the automaton
/// directly.
///
/// Compression: IP-Compression-Protocol (Van Jacobson, RFC 1332 §3.2) is not implemented; it is
/// never requested and always Configure-Rejected, as is the deprecated IP-Addresses option.
pub struct Ipcp {
    config: IpcpConfig,
    pool: Option<Box<dyn AddressPool + Send>>,
    // What our next Configure-Request carries.
    request_address: bool,
    local: Ipv4Addr,
    request_dns: [bool; 2],
    dns: [Ipv4Addr; 2],
    request_nbns: [bool; 2],
    nbns: [Ipv4Addr; 2],
    // What the peer acknowledged of our request.
    acked: Option<Vec<IpcpOption>>,
    // The peer's side.
    allocation: Allocation,
    peer_address: Option<Ipv4Addr>,
    /// The peer's acked request carried an IP-Address: it agreed to `peer_address`.
    peer_agreed: bool,
    /// The peer asked for an address of its own that we did not give it (Nak, then Reject after
    /// Max-Failure): if its final request has no address, it did not agree to ours.
    peer_insisted: bool,
    missing_address_nak_sent: bool,
    // Results.
    negotiated: Option<IpcpNegotiated>,
    failure: Option<NegotiationFailure>,
}

impl fmt::Debug for Ipcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ipcp")
            .field("config", &self.config)
            .field("has_pool", &self.pool.is_some())
            .field("local", &self.local)
            .field("allocation", &self.allocation)
            .field("peer_address", &self.peer_address)
            .field("negotiated", &self.negotiated)
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

impl Ipcp {
    /// IPCP with `config` and no address pool.
    #[must_use]
    pub fn new(config: IpcpConfig) -> Self {
        let mut ipcp = Self {
            config,
            pool: None,
            request_address: true,
            local: Ipv4Addr::UNSPECIFIED,
            request_dns: [false; 2],
            dns: [Ipv4Addr::UNSPECIFIED; 2],
            request_nbns: [false; 2],
            nbns: [Ipv4Addr::UNSPECIFIED; 2],
            acked: None,
            allocation: Allocation::NotAsked,
            peer_address: None,
            peer_agreed: false,
            peer_insisted: false,
            missing_address_nak_sent: false,
            negotiated: None,
            failure: None,
        };
        ipcp.start_negotiation();
        ipcp
    }

    /// IPCP for a server that takes the peer's address from `pool` (used when
    /// `config.remote_address` is `None`).
    #[must_use]
    pub fn with_address_pool(config: IpcpConfig, pool: impl AddressPool + Send + 'static) -> Self {
        let mut ipcp = Self::new(config);
        ipcp.pool = Some(Box::new(pool));
        ipcp
    }

    /// The policy.
    #[must_use]
    pub fn config(&self) -> &IpcpConfig {
        &self.config
    }

    /// Sets the address the peer must use (for example the one its secrets entry assigns, learnt
    /// during authentication). Takes effect from the next Configure-Request judged; set it before
    /// IPCP starts.
    pub fn set_remote_address(&mut self, address: Option<Ipv4Addr>) {
        self.config.remote_address = address;
    }

    /// The negotiated addresses, from This-Layer-Up until This-Layer-Down.
    #[must_use]
    pub fn negotiated(&self) -> Option<&IpcpNegotiated> {
        self.negotiated.as_ref()
    }

    /// Why the current negotiation cannot succeed, if it cannot (the owner should close the
    /// automaton with this reason). Cleared when a fresh negotiation starts.
    #[must_use]
    pub fn failure(&self) -> Option<&NegotiationFailure> {
        self.failure.as_ref()
    }

    /// Take the failure out (see [`Ipcp::failure`]).
    pub fn take_failure(&mut self) -> Option<NegotiationFailure> {
        self.failure.take()
    }

    /// Hand the address allocated for the peer back to the pool (when the session ends but this
    /// `Ipcp` lives on; dropping it does the same).
    pub fn release_peer_address(&mut self) {
        self.release_allocation();
    }

    /// The address allocated for the peer from the pool, if any.
    #[must_use]
    pub fn allocated_peer_address(&self) -> Option<Ipv4Addr> {
        match self.allocation {
            Allocation::Allocated(a) => Some(a),
            Allocation::NotAsked | Allocation::Exhausted => None,
        }
    }

    fn accept_local(&self) -> bool {
        self.config.accept_local || self.config.local_address.and_then(nonzero).is_none()
    }

    fn accept_remote(&self) -> bool {
        self.config.accept_remote
            || (self.config.remote_address.and_then(nonzero).is_none() && self.pool.is_none())
    }

    fn fail(&mut self, failure: NegotiationFailure) -> NegotiationFailure {
        debug!("IPCP: {failure}");
        self.failure = Some(failure.clone());
        failure
    }

    fn release_allocation(&mut self) {
        if let Allocation::Allocated(address) = self.allocation
            && let Some(pool) = self.pool.as_mut()
        {
            pool.release(address);
        }
        self.allocation = Allocation::NotAsked;
    }

    fn start_negotiation(&mut self) {
        if self.allocation == Allocation::Exhausted {
            self.allocation = Allocation::NotAsked;
        }
        self.request_address = true;
        self.local = self.config.local_address.unwrap_or(Ipv4Addr::UNSPECIFIED);
        self.request_dns = [self.config.request_dns; 2];
        self.dns = [Ipv4Addr::UNSPECIFIED; 2];
        self.request_nbns = [self.config.request_nbns; 2];
        self.nbns = [Ipv4Addr::UNSPECIFIED; 2];
        self.acked = None;
        self.peer_address = None;
        self.peer_agreed = false;
        self.peer_insisted = false;
        self.missing_address_nak_sent = false;
        self.negotiated = None;
        self.failure = None;
    }

    /// Whether we have an address for the peer (configured, or allocated from the pool).
    fn has_address_for_peer(&self) -> bool {
        self.config.remote_address.and_then(nonzero).is_some()
            || matches!(self.allocation, Allocation::Allocated(_))
    }

    /// The address the peer should use: the configured remote address, else one from the pool
    /// (allocated on first use in a negotiation).
    fn address_for_peer(&mut self) -> Option<Ipv4Addr> {
        if let Some(address) = self.config.remote_address.and_then(nonzero) {
            return Some(address);
        }
        self.pool.as_ref()?;
        match self.allocation {
            Allocation::Allocated(address) => Some(address),
            Allocation::Exhausted => None,
            Allocation::NotAsked => {
                let allocated = self.pool.as_mut().and_then(|pool| pool.allocate());
                match allocated.and_then(nonzero) {
                    Some(address) => {
                        debug!("IPCP: allocated {address} for the peer");
                        self.allocation = Allocation::Allocated(address);
                        Some(address)
                    }
                    None => {
                        self.allocation = Allocation::Exhausted;
                        let _ = self.fail(NegotiationFailure::AddressPoolExhausted);
                        None
                    }
                }
            }
        }
    }

    fn judge(&mut self, option: &IpcpOption, peer_address: &mut Option<Ipv4Addr>) -> Judgement {
        match *option {
            IpcpOption::IpAddress(requested) => {
                if !requested.is_unspecified() && self.accept_remote() {
                    *peer_address = Some(requested);
                    return Judgement::Ack;
                }
                match self.address_for_peer() {
                    Some(ours) if ours == requested => {
                        *peer_address = Some(requested);
                        Judgement::Ack
                    }
                    Some(ours) => {
                        self.peer_insisted |= !requested.is_unspecified();
                        Judgement::Nak(IpcpOption::IpAddress(ours))
                    }
                    // Neither side knows the peer's address (pppd: never Ack 0.0.0.0), or the
                    // pool is exhausted.
                    None => Judgement::Reject,
                }
            }
            IpcpOption::PrimaryDns(a) => {
                Self::judge_server(self.config.dns_servers[0], a, IpcpOption::PrimaryDns)
            }
            IpcpOption::SecondaryDns(a) => {
                Self::judge_server(self.config.dns_servers[1], a, IpcpOption::SecondaryDns)
            }
            IpcpOption::PrimaryNbns(a) => {
                Self::judge_server(self.config.nbns_servers[0], a, IpcpOption::PrimaryNbns)
            }
            IpcpOption::SecondaryNbns(a) => {
                Self::judge_server(self.config.nbns_servers[1], a, IpcpOption::SecondaryNbns)
            }
            // Not implemented (VJ), deprecated, or unknown.
            IpcpOption::IpCompressionProtocol { .. }
            | IpcpOption::IpAddresses { .. }
            | IpcpOption::Unknown { .. } => Judgement::Reject,
        }
    }

    fn judge_server(
        ours: Option<Ipv4Addr>,
        requested: Ipv4Addr,
        make: fn(Ipv4Addr) -> IpcpOption,
    ) -> Judgement {
        match ours.and_then(nonzero) {
            None => Judgement::Reject,
            Some(server) if server == requested => Judgement::Ack,
            Some(server) => Judgement::Nak(make(server)),
        }
    }

    fn decide(&mut self, options: &[u8], allow_nak: bool, reply: &mut Vec<u8>) -> RequestVerdict {
        let mut rejected = Vec::new();
        let mut naked = Vec::new();
        let mut peer_address = None;
        let mut saw_address = false;
        for item in tlv::iter(options) {
            let tlv = match item {
                Ok(tlv) => tlv,
                Err(error) => {
                    // The automaton only hands us well-formed lists; be safe anyway.
                    debug!("IPCP: malformed request: {error}");
                    let start = options.len().min(match error {
                        crate::IpcpError::TruncatedHeader { offset, .. }
                        | crate::IpcpError::BadOptionLength { offset, .. } => offset,
                        crate::IpcpError::WrongDataLength { .. } => options.len(),
                    });
                    rejected.extend_from_slice(&options[start..]);
                    break;
                }
            };
            let judgement = match IpcpOption::parse(tlv.kind, tlv.data) {
                Ok(option) => {
                    if matches!(option, IpcpOption::IpAddress(_)) {
                        saw_address = true;
                    }
                    self.judge(&option, &mut peer_address)
                }
                Err(_) => Judgement::Reject,
            };
            match judgement {
                Judgement::Ack => {}
                Judgement::Nak(suggestion) if allow_nak => suggestion.emit(&mut naked),
                Judgement::Nak(_) | Judgement::Reject => rejected.extend_from_slice(tlv.raw),
            }
        }
        // pppd: a peer that does not ask for an address is told the one we have for it, once.
        if rejected.is_empty()
            && !saw_address
            && allow_nak
            && !self.missing_address_nak_sent
            && let Some(address) = self.address_for_peer()
        {
            self.missing_address_nak_sent = true;
            IpcpOption::IpAddress(address).emit(&mut naked);
        }
        if !rejected.is_empty() {
            reply.extend_from_slice(&rejected);
            RequestVerdict::Reject
        } else if !naked.is_empty() {
            reply.extend_from_slice(&naked);
            RequestVerdict::Nak
        } else {
            self.peer_agreed = saw_address;
            self.peer_address = match peer_address {
                Some(address) => Some(address),
                None => self.address_for_peer(),
            };
            RequestVerdict::Ack
        }
    }

    fn adopt_nak(&mut self, options: &[u8]) -> Result<(), NegotiationFailure> {
        for tlv in tlv::iter(options).map_while(Result::ok) {
            let Ok(option) = IpcpOption::parse(tlv.kind, tlv.data) else {
                continue;
            };
            match option {
                IpcpOption::IpAddress(suggested) => {
                    if !self.request_address
                        || suggested.is_unspecified()
                        || suggested == self.local
                    {
                        continue;
                    }
                    if !self.accept_local() {
                        return Err(self.fail(NegotiationFailure::LocalAddressRefused {
                            configured: self.local,
                            suggested,
                        }));
                    }
                    debug!("IPCP: peer assigns us {suggested}");
                    self.local = suggested;
                }
                IpcpOption::PrimaryDns(a) if self.request_dns[0] => self.dns[0] = a,
                IpcpOption::SecondaryDns(a) if self.request_dns[1] => self.dns[1] = a,
                IpcpOption::PrimaryNbns(a) if self.request_nbns[0] => self.nbns[0] = a,
                IpcpOption::SecondaryNbns(a) if self.request_nbns[1] => self.nbns[1] = a,
                // Unsolicited suggestions for options we do not want: ignored.
                _ => {}
            }
        }
        Ok(())
    }

    fn adopt_reject(&mut self, options: &[u8]) -> Result<(), NegotiationFailure> {
        for tlv in tlv::iter(options).map_while(Result::ok) {
            match tlv.kind {
                3 if self.request_address => {
                    self.request_address = false;
                    if self.local.is_unspecified() {
                        return Err(self.fail(NegotiationFailure::NoLocalAddress));
                    }
                    debug!("IPCP: peer rejected IP-Address; keeping {}", self.local);
                }
                129 | 131 => {
                    let i = usize::from(tlv.kind == 131);
                    if self.request_dns[i] {
                        debug!("IPCP: peer rejected {}; going on without", DNS_NAMES[i]);
                    }
                    self.request_dns[i] = false;
                }
                130 | 132 => {
                    let i = usize::from(tlv.kind == 132);
                    if self.request_nbns[i] {
                        debug!("IPCP: peer rejected {}; going on without", NBNS_NAMES[i]);
                    }
                    self.request_nbns[i] = false;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn come_up(&mut self) -> Result<(), NegotiationFailure> {
        let mut local = (!self.request_address).then_some(self.local);
        let mut dns = [None; 2];
        let mut nbns = [None; 2];
        for option in self.acked.iter().flatten() {
            match *option {
                IpcpOption::IpAddress(a) => local = Some(a),
                IpcpOption::PrimaryDns(a) => dns[0] = nonzero(a),
                IpcpOption::SecondaryDns(a) => dns[1] = nonzero(a),
                IpcpOption::PrimaryNbns(a) => nbns[0] = nonzero(a),
                IpcpOption::SecondaryNbns(a) => nbns[1] = nonzero(a),
                _ => {}
            }
        }
        let Some(local) = local.and_then(nonzero) else {
            self.negotiated = None;
            return Err(self.fail(NegotiationFailure::NoLocalAddress));
        };
        if let Some(failure) = self.failure.clone() {
            // E.g. the pool ran dry but the peer went on with an address of its own choosing.
            self.negotiated = None;
            return Err(failure);
        }
        if !self.peer_agreed && self.peer_insisted && self.has_address_for_peer() {
            // The peer asked for another address, we refused it (Naks, then a Reject after
            // Max-Failure) and it went on without one: it never agreed to ours. (A peer that
            // simply asks for none is assumed to take ours, as pppd does.)
            self.negotiated = None;
            return Err(self.fail(NegotiationFailure::NoPeerAddress));
        }
        let peer = self.peer_address.unwrap_or(Ipv4Addr::UNSPECIFIED);
        debug!("IPCP: local IP address {local}, remote IP address {peer}");
        for (i, server) in dns.iter().enumerate() {
            if let Some(server) = server {
                debug!("IPCP: {} address {server}", DNS_NAMES[i]);
            }
        }
        self.negotiated = Some(IpcpNegotiated {
            local,
            peer,
            dns,
            nbns,
        });
        // What the peer Acked lives on in `negotiated`.
        self.acked = None;
        Ok(())
    }
}

impl Drop for Ipcp {
    fn drop(&mut self) {
        self.release_allocation();
    }
}

impl ControlProtocol for Ipcp {
    fn protocol(&self) -> Protocol {
        Protocol::Ipcp
    }

    fn name(&self) -> &'static str {
        "IPCP"
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        if self.request_address {
            IpcpOption::IpAddress(self.local).emit(out);
        }
        if self.request_dns[0] {
            IpcpOption::PrimaryDns(self.dns[0]).emit(out);
        }
        if self.request_nbns[0] {
            IpcpOption::PrimaryNbns(self.nbns[0]).emit(out);
        }
        if self.request_dns[1] {
            IpcpOption::SecondaryDns(self.dns[1]).emit(out);
        }
        if self.request_nbns[1] {
            IpcpOption::SecondaryNbns(self.nbns[1]).emit(out);
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
        self.acked = Some(
            tlv::iter(options)
                .map_while(Result::ok)
                .filter_map(|t| IpcpOption::parse(t.kind, t.data).ok())
                .collect(),
        );
    }

    fn on_nak(&mut self, options: &[u8]) -> Result<(), NegotiationFailure> {
        self.adopt_nak(options)
    }

    fn on_reject(&mut self, options: &[u8]) -> Result<(), NegotiationFailure> {
        self.adopt_reject(options)
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
        describe_ipcp_options(options)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::VAN_JACOBSON;
    use proptest::prelude::*;

    const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
    const OTHER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 55);
    const DNS1: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 53);
    const DNS2: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 54);
    const ZERO: Ipv4Addr = Ipv4Addr::UNSPECIFIED;

    fn bytes(options: &[IpcpOption]) -> Vec<u8> {
        let mut out = Vec::new();
        IpcpOption::emit_list(options, &mut out);
        out
    }

    fn server_config() -> IpcpConfig {
        IpcpConfig {
            remote_address: Some(CLIENT),
            nbns_servers: [Some(OTHER), None],
            ..IpcpConfig::server(SERVER, [Some(DNS1), Some(DNS2)])
        }
    }

    #[test]
    fn client_request_golden_bytes() {
        let mut client = Ipcp::new(IpcpConfig::client());
        let mut out = Vec::new();
        client.build_request(&mut out);
        assert_eq!(
            out,
            [3, 6, 0, 0, 0, 0, 0x81, 6, 0, 0, 0, 0, 0x83, 6, 0, 0, 0, 0]
        );
        assert_eq!(
            client.describe_options(&out),
            "<addr 0.0.0.0> <ms-dns1 0.0.0.0> <ms-dns2 0.0.0.0>"
        );
        let mut server = Ipcp::new(server_config());
        out.clear();
        server.build_request(&mut out);
        assert_eq!(out, [3, 6, 192, 0, 2, 1]);
        assert_eq!(server.protocol(), Protocol::Ipcp);
        assert_eq!(server.name(), "IPCP");
    }

    /// How a server answers requests: (request, allow_nak, verdict, reply).
    #[test]
    fn server_answers() {
        use IpcpOption::*;
        use RequestVerdict::{Ack, Nak, Reject};
        let vj = IpCompressionProtocol {
            protocol: VAN_JACOBSON,
            data: vec![0x0f, 0x01],
        };
        let cases: Vec<(Vec<IpcpOption>, bool, RequestVerdict, Vec<IpcpOption>)> = vec![
            (vec![IpAddress(CLIENT)], true, Ack, vec![]),
            (vec![IpAddress(ZERO)], true, Nak, vec![IpAddress(CLIENT)]),
            (vec![IpAddress(OTHER)], true, Nak, vec![IpAddress(CLIENT)]),
            // Past Max-Failure the automaton no longer allows Naks: reject verbatim.
            (
                vec![IpAddress(OTHER)],
                false,
                Reject,
                vec![IpAddress(OTHER)],
            ),
            (
                vec![IpAddress(ZERO), PrimaryDns(ZERO), SecondaryDns(ZERO)],
                true,
                Nak,
                vec![IpAddress(CLIENT), PrimaryDns(DNS1), SecondaryDns(DNS2)],
            ),
            (
                vec![IpAddress(CLIENT), PrimaryDns(DNS1), SecondaryDns(DNS2)],
                true,
                Ack,
                vec![],
            ),
            (
                vec![IpAddress(CLIENT), PrimaryNbns(ZERO), SecondaryNbns(ZERO)],
                true,
                Reject,
                vec![SecondaryNbns(ZERO)],
            ),
            (
                vec![IpAddress(CLIENT), PrimaryNbns(ZERO)],
                true,
                Nak,
                vec![PrimaryNbns(OTHER)],
            ),
            // Reject wins over Nak and carries only the rejected options.
            (
                vec![IpAddress(ZERO), vj.clone()],
                true,
                Reject,
                vec![vj.clone()],
            ),
            (
                vec![
                    IpAddresses {
                        source: CLIENT,
                        destination: SERVER,
                    },
                    IpAddress(CLIENT),
                    Unknown {
                        kind: 0x99,
                        data: vec![1],
                    },
                ],
                true,
                Reject,
                vec![
                    IpAddresses {
                        source: CLIENT,
                        destination: SERVER,
                    },
                    Unknown {
                        kind: 0x99,
                        data: vec![1],
                    },
                ],
            ),
            // No IP-Address at all: tell the peer its address (pppd), once.
            (vec![PrimaryDns(DNS1)], true, Nak, vec![IpAddress(CLIENT)]),
            (vec![], false, Ack, vec![]),
        ];
        for (request, allow_nak, verdict, expected) in cases {
            let mut server = Ipcp::new(server_config());
            let mut reply = Vec::new();
            let got = server.check_request(&bytes(&request), allow_nak, &mut reply);
            assert_eq!(
                (got, IpcpOption::parse_list(&reply).unwrap()),
                (verdict, expected),
                "request {request:?}, allow_nak {allow_nak}"
            );
        }
    }

    #[test]
    fn badly_sized_known_option_is_rejected_verbatim() {
        let mut server = Ipcp::new(server_config());
        let request = [3, 5, 192, 0, 2, 0x81, 3, 0];
        let mut reply = Vec::new();
        assert_eq!(
            server.check_request(&request, true, &mut reply),
            RequestVerdict::Reject
        );
        assert_eq!(reply, request);
    }

    #[test]
    fn missing_address_is_naked_once_then_assigned() {
        let mut server = Ipcp::new(server_config());
        let mut reply = Vec::new();
        assert_eq!(
            server.check_request(&[], true, &mut reply),
            RequestVerdict::Nak
        );
        assert_eq!(reply, bytes(&[IpcpOption::IpAddress(CLIENT)]));
        reply.clear();
        assert_eq!(
            server.check_request(&[], true, &mut reply),
            RequestVerdict::Ack
        );
        assert!(reply.is_empty());
        server.on_ack(&bytes(&[IpcpOption::IpAddress(SERVER)]));
        let _ = server.this_layer_up();
        assert_eq!(
            server.negotiated(),
            Some(&IpcpNegotiated {
                local: SERVER,
                peer: CLIENT,
                dns: [None; 2],
                nbns: [None; 2],
            })
        );
    }

    #[test]
    fn peer_address_policies() {
        use RequestVerdict::{Ack, Nak, Reject};
        // (config, request, verdict)
        let accept = IpcpConfig {
            accept_remote: true,
            ..server_config()
        };
        let unknown_peer = IpcpConfig::client();
        let cases = [
            (accept.clone(), OTHER, Ack),
            (accept, ZERO, Nak),
            (unknown_peer.clone(), SERVER, Ack),
            // Neither side knows the peer's address: pppd rejects 0.0.0.0 rather than Ack it.
            (unknown_peer, ZERO, Reject),
        ];
        for (config, requested, verdict) in cases {
            let mut ipcp = Ipcp::new(config.clone());
            let mut reply = Vec::new();
            let request = bytes(&[IpcpOption::IpAddress(requested)]);
            assert_eq!(
                ipcp.check_request(&request, true, &mut reply),
                verdict,
                "{config:?} {requested}"
            );
        }
    }

    #[test]
    fn client_takes_naked_address_and_dns() {
        let mut client = Ipcp::new(IpcpConfig::client());
        client
            .on_nak(&bytes(&[
                IpcpOption::IpAddress(CLIENT),
                IpcpOption::PrimaryDns(DNS1),
                IpcpOption::SecondaryDns(DNS2),
                IpcpOption::PrimaryNbns(OTHER), // unsolicited: ignored
            ]))
            .unwrap();
        let mut out = Vec::new();
        client.build_request(&mut out);
        let expected = bytes(&[
            IpcpOption::IpAddress(CLIENT),
            IpcpOption::PrimaryDns(DNS1),
            IpcpOption::SecondaryDns(DNS2),
        ]);
        assert_eq!(out, expected);
        client.on_ack(&out);
        let _ = client.this_layer_up();
        let got = client.negotiated().unwrap();
        assert_eq!(got.local, CLIENT);
        assert_eq!(got.dns, [Some(DNS1), Some(DNS2)]);
        client.this_layer_down();
        assert!(client.negotiated().is_none());
    }

    #[test]
    fn static_client_refuses_another_address() {
        let config = IpcpConfig {
            local_address: Some(OTHER),
            accept_local: false,
            ..IpcpConfig::client()
        };
        let mut client = Ipcp::new(config.clone());
        // The same address in a Nak is fine.
        assert!(
            client
                .on_nak(&bytes(&[IpcpOption::IpAddress(OTHER)]))
                .is_ok()
        );
        let failure = client
            .on_nak(&bytes(&[IpcpOption::IpAddress(CLIENT)]))
            .unwrap_err();
        assert_eq!(
            failure,
            NegotiationFailure::LocalAddressRefused {
                configured: OTHER,
                suggested: CLIENT
            }
        );
        assert!(failure.to_string().contains("accept-local"), "{failure}");
        // With accept-local the suggestion is taken.
        let mut flexible = Ipcp::new(IpcpConfig {
            accept_local: true,
            ..config
        });
        flexible
            .on_nak(&bytes(&[IpcpOption::IpAddress(CLIENT)]))
            .unwrap();
        let mut out = Vec::new();
        flexible.build_request(&mut out);
        assert_eq!(&out[..6], &bytes(&[IpcpOption::IpAddress(CLIENT)])[..]);
    }

    #[test]
    fn rejections() {
        let mut client = Ipcp::new(IpcpConfig::client());
        client
            .on_reject(&bytes(&[
                IpcpOption::PrimaryDns(ZERO),
                IpcpOption::SecondaryDns(ZERO),
            ]))
            .unwrap();
        let mut out = Vec::new();
        client.build_request(&mut out);
        assert_eq!(out, bytes(&[IpcpOption::IpAddress(ZERO)]));
        let failure = client
            .on_reject(&bytes(&[IpcpOption::IpAddress(ZERO)]))
            .unwrap_err();
        assert_eq!(failure, NegotiationFailure::NoLocalAddress);
        assert_eq!(client.failure(), Some(&failure));
        // A fresh negotiation asks for everything again.
        client.reset();
        assert!(client.failure().is_none());
        out.clear();
        client.build_request(&mut out);
        assert_eq!(out.len(), 18);

        // A server that knows its address goes on without the option.
        let mut server = Ipcp::new(server_config());
        server
            .on_reject(&bytes(&[IpcpOption::IpAddress(SERVER)]))
            .unwrap();
        out.clear();
        server.build_request(&mut out);
        assert!(out.is_empty());
        server.on_ack(&out);
        let _ = server.this_layer_up();
        assert_eq!(server.negotiated().unwrap().local, SERVER);
    }

    #[test]
    fn ack_of_zero_address_is_a_failure_at_up() {
        let mut client = Ipcp::new(IpcpConfig::default());
        client.on_ack(&bytes(&[IpcpOption::IpAddress(ZERO)]));
        assert_eq!(
            client.this_layer_up(),
            Err(NegotiationFailure::NoLocalAddress)
        );
        assert!(client.negotiated().is_none());
        assert_eq!(
            client.take_failure(),
            Some(NegotiationFailure::NoLocalAddress)
        );
        assert!(client.failure().is_none());
    }

    /// A pool that records what happens to it.
    #[derive(Clone, Default)]
    struct RecordingPool {
        free: Arc<Mutex<Vec<Ipv4Addr>>>,
        allocations: Arc<Mutex<u32>>,
    }

    impl AddressPool for RecordingPool {
        fn allocate(&mut self) -> Option<Ipv4Addr> {
            *self.allocations.lock().unwrap() += 1;
            self.free.lock().unwrap().pop()
        }
        fn release(&mut self, address: Ipv4Addr) {
            self.free.lock().unwrap().push(address);
        }
    }

    #[test]
    fn pool_allocates_once_and_releases() {
        let pool = RecordingPool::default();
        pool.free.lock().unwrap().push(CLIENT);
        let config = IpcpConfig::server(SERVER, [None; 2]);
        let mut server = Ipcp::with_address_pool(config.clone(), pool.clone());
        for _ in 0..3 {
            let mut reply = Vec::new();
            let verdict =
                server.check_request(&bytes(&[IpcpOption::IpAddress(ZERO)]), true, &mut reply);
            assert_eq!(verdict, RequestVerdict::Nak);
            assert_eq!(reply, bytes(&[IpcpOption::IpAddress(CLIENT)]));
        }
        assert_eq!(*pool.allocations.lock().unwrap(), 1);
        assert_eq!(server.allocated_peer_address(), Some(CLIENT));
        assert!(pool.free.lock().unwrap().is_empty());

        // A second session finds the pool empty: reject 0.0.0.0 and report why.
        let mut second = Ipcp::with_address_pool(config, pool.clone());
        let mut reply = Vec::new();
        let verdict =
            second.check_request(&bytes(&[IpcpOption::IpAddress(ZERO)]), true, &mut reply);
        assert_eq!(verdict, RequestVerdict::Reject);
        assert_eq!(
            second.failure(),
            Some(&NegotiationFailure::AddressPoolExhausted)
        );

        // Renegotiation keeps the address.
        server.reset();
        assert_eq!(server.allocated_peer_address(), Some(CLIENT));
        assert_eq!(*pool.allocations.lock().unwrap(), 2);
        // The first session ends: its address goes back.
        server.release_peer_address();
        assert_eq!(*pool.free.lock().unwrap(), vec![CLIENT]);
        drop(server);
        assert_eq!(pool.free.lock().unwrap().len(), 1);
        // After exhaustion the next negotiation asks the pool again.
        second.reset();
        reply.clear();
        let verdict =
            second.check_request(&bytes(&[IpcpOption::IpAddress(ZERO)]), true, &mut reply);
        assert_eq!(verdict, RequestVerdict::Nak);
        drop(second);
        assert_eq!(*pool.free.lock().unwrap(), vec![CLIENT]);
    }

    #[test]
    fn closures_are_pools() {
        let mut next = 10u8;
        let mut server =
            Ipcp::with_address_pool(IpcpConfig::server(SERVER, [None; 2]), move || {
                next += 1;
                Some(Ipv4Addr::new(192, 0, 2, next))
            });
        let mut reply = Vec::new();
        let _ = server.check_request(&[], true, &mut reply);
        assert_eq!(
            reply,
            bytes(&[IpcpOption::IpAddress(Ipv4Addr::new(192, 0, 2, 11))])
        );
        assert!(format!("{server:?}").contains("has_pool: true"));
    }

    proptest! {
        /// Arbitrary bytes as a request never panic, and the answer is consistent.
        #[test]
        fn check_request_never_panics(
            list in proptest::collection::vec(any::<u8>(), 0..80),
            allow_nak in any::<bool>(),
            with_pool in any::<bool>(),
        ) {
            let mut ipcp = if with_pool {
                Ipcp::with_address_pool(server_config(), || None)
            } else {
                Ipcp::new(server_config())
            };
            let mut reply = Vec::new();
            let verdict = ipcp.check_request(&list, allow_nak, &mut reply);
            match verdict {
                RequestVerdict::Ack => prop_assert!(reply.is_empty()),
                RequestVerdict::Nak => {
                    prop_assert!(allow_nak);
                    prop_assert!(IpcpOption::parse_list(&reply).is_ok());
                }
                RequestVerdict::Reject => prop_assert!(!reply.is_empty()),
            }
            let _ = ipcp.on_nak(&list);
            let _ = ipcp.on_reject(&list);
            ipcp.on_ack(&list);
            let _ = ipcp.this_layer_up();
            let _ = ipcp.describe_options(&list);
        }

        /// Well-formed random option lists: rejected options are a verbatim subset of the request.
        #[test]
        fn rejects_are_verbatim(kinds in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..8)), 0..6)) {
            let mut list = Vec::new();
            for (kind, data) in &kinds {
                tlv::push(&mut list, *kind, data);
            }
            let mut ipcp = Ipcp::new(server_config());
            let mut reply = Vec::new();
            if ipcp.check_request(&list, true, &mut reply) == RequestVerdict::Reject {
                for option in tlv::iter(&reply) {
                    let option = option.unwrap();
                    prop_assert!(list.windows(option.raw.len()).any(|w| w == option.raw));
                }
            }
        }
    }
}
