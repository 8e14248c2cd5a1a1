//! The access concentrator's AAA, shared by its two loops ([`super::run_server`] on the TUN
//! data path, [`crate::kernel::pppoe::run_server`] on the kernel's): who is accepted (the
//! secrets, the policy, RADIUS, `only-one`), each unit's [`NasSession`] from IPCP up (limits,
//! timers, accounting Start / Interim-Update / Stop), and what the process's [`Aaa`] asks of
//! a session (Disconnect, CoA, a login replacing it).
//!
//! The loops differ in who carries the datagrams: the TUN loop passes every packet through
//! the session's shapers and counts it; on the kernel path the kernel counts (the loop reads
//! its counters and idle time into the session before the timers and every record) and no
//! rate limit can be enforced, so a session granted one is refused and a CoA that sets one is
//! not applied ([`ServerAaa::new`]'s `enforces_rate_limits`).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use ppp_auth::{SecretEntry, SecretRequest, SecretsBackend, Verdict, VerifyRequest};
use ppp_link::CloseReason;
use ppp_link::pppoe::{PppoeServer, SessionEnd, UnitId};
use ppp_radius::{Authorization, Change, ErrorCause, NasPortType, SessionContext, TerminateCause};
use pppoe_discovery::MacAddr;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::{SessionDecision, SessionPolicy, SessionRequest};
use crate::aaa::{
    Aaa, AttachedServer, Deadlines, Grant, NasSession, OnlyOneCheck, RegisteredSession,
    SessionAccount, SessionLimits, Verified, clock_close_reason, terminate_cause,
};
use crate::now;

/// A user accepted (or being accepted), until its unit is up: who, what it may do.
struct Authorized {
    account: SessionAccount,
    limits: SessionLimits,
    authorization: Option<Authorization>,
}

/// How RADIUS hears where a PPPoE session is: NAS-Port the session id, NAS-Port-Id the
/// interface, NAS-Port-Type Ethernet, Calling-Station-Id the client's MAC address,
/// Called-Station-Id the service (as RouterOS does).
pub fn session_context(
    interface: &str,
    session_id: u16,
    client_mac: MacAddr,
    service_name: &str,
) -> SessionContext {
    SessionContext {
        nas_port: Some(u32::from(session_id)),
        nas_port_id: Some(interface.to_owned()),
        nas_port_type: Some(NasPortType::ETHERNET),
        calling_station_id: Some(client_mac.to_string()),
        called_station_id: (!service_name.is_empty()).then(|| service_name.to_owned()),
    }
}

/// A unit's (a session's own network layer, or a bundle's) enforcement and accounting, kept
/// by the loop next to the unit's interface.
#[derive(Debug, Default)]
pub(crate) struct UnitAaa {
    /// From IPCP up: the session that brought the unit up and its state.
    pub(crate) nas: Option<(u16, NasSession)>,
    /// Why the session that brought the unit up ended (for the Stop record).
    pub(crate) end: Option<SessionEnd>,
}

/// Where a loop keeps its units' [`UnitAaa`].
pub(crate) trait UnitsAaa {
    /// The unit's, if the loop has it.
    fn unit_aaa(&mut self, unit: UnitId) -> Option<&mut UnitAaa>;
}

/// The loop's AAA state: the process's [`Aaa`], this server's place in it, who was accepted,
/// and the units' deadlines (rate limits, timeouts, interim updates).
pub(crate) struct ServerAaa {
    pub(crate) aaa: Aaa,
    pub(crate) attached: AttachedServer,
    interface: String,
    /// Whether the loop can enforce rate limits (the TUN loop); where it cannot (the kernel
    /// path), a session granted one is refused and a CoA setting one is not applied.
    enforces_rate_limits: bool,
    authorized: HashMap<u16, Authorized>,
    /// The unit each session brought up (for its end reason).
    owned_unit: HashMap<u16, UnitId>,
    /// Units gone before the session that brought them up reported why it ended (a PADT
    /// ends the link first): their Stop waits for that reason.
    ending: HashMap<u16, (UnitId, NasSession)>,
    pub(crate) deadlines: Deadlines<UnitId>,
}

impl ServerAaa {
    /// A server on `interface` joins `aaa`.
    pub(crate) fn new(aaa: Aaa, interface: &str, enforces_rate_limits: bool) -> Self {
        ServerAaa {
            attached: aaa.attach(),
            aaa,
            interface: interface.to_owned(),
            enforces_rate_limits,
            authorized: HashMap::new(),
            owned_unit: HashMap::new(),
            ending: HashMap::new(),
            deadlines: Deadlines::default(),
        }
    }

    pub(crate) fn context(&self, server: &PppoeServer, session_id: u16) -> Option<SessionContext> {
        let record = server.access_concentrator().session(session_id)?;
        Some(session_context(
            &self.interface,
            session_id,
            record.client_mac(),
            record.service_name(),
        ))
    }

    /// A user is accepted (or about to be): a rate limit the loop cannot enforce, `only-one`,
    /// then what it may do until its unit is up. False when either refuses it.
    fn accept(
        &mut self,
        session_id: u16,
        user: &str,
        context: SessionContext,
        grant: &Grant,
        limits: SessionLimits,
    ) -> bool {
        if !self.enforces_rate_limits
            && let Some(limit) = limits.rate_limit
        {
            warn!(
                "session {session_id:#06x}: user \"{user}\" refused: its rate limit {limit} \
                 cannot be enforced on the kernel data path (the TUN data path can)"
            );
            return false;
        }
        let port = u32::from(session_id);
        match self.attached.check_only_one(port, user, limits.only_one) {
            OnlyOneCheck::Refuse => {
                info!(
                    "session {session_id:#06x}: user \"{user}\" refused: it has a session up \
                     (only-one)"
                );
                return false;
            }
            OnlyOneCheck::Replacing(keys) => info!(
                "session {session_id:#06x}: user \"{user}\" replaces its {} other session(s) \
                 (only-one)",
                keys.len()
            ),
            _ => {}
        }
        let authorization = grant.authorization().cloned();
        let class = authorization
            .as_ref()
            .map(|a| a.class.clone())
            .unwrap_or_default();
        self.authorized.insert(
            session_id,
            Authorized {
                account: SessionAccount {
                    user: user.to_owned(),
                    acct_session_id: self.aaa.new_acct_session_id(),
                    context,
                    authentic: grant.authentic(),
                    class,
                },
                limits,
                authorization,
            },
        );
        true
    }

    /// The link says the user authenticated: it joins the registry (for `only-one` and
    /// dynamic authorization).
    pub(crate) fn authenticated(&self, session_id: u16) {
        let Some(authorized) = self.authorized.get(&session_id) else {
            return;
        };
        let account = &authorized.account;
        self.attached
            .register(u32::from(session_id), RegisteredSession::of(account));
    }

    /// A unit's IPCP is up: the first of its sessions that was accepted starts enforcement
    /// and accounting (the Start record).
    pub(crate) fn unit_up(
        &mut self,
        server: &PppoeServer,
        extra: &mut UnitAaa,
        unit: UnitId,
        peer: Ipv4Addr,
    ) {
        let now = now();
        if let Some((owner, nas)) = extra.nas.as_mut() {
            // IPCP again on a running unit: a new address, the same session.
            self.attached.set_address(u32::from(*owner), Some(peer));
            if nas.framed_ip() != Some(peer) {
                debug!("{unit}: address now {peer}");
            }
            return;
        }
        let members: Vec<u16> = server
            .unit(unit)
            .into_iter()
            .flat_map(|u| u.members().map(|(id, _, _)| *id))
            .collect();
        let Some((owner, authorized)) = members
            .iter()
            .find_map(|id| Some((*id, self.authorized.remove(id)?)))
        else {
            return;
        };
        let interim = authorized
            .authorization
            .as_ref()
            .and_then(|a| a.interim_interval)
            .or(self.aaa.options().interim_interval);
        let mut nas = NasSession::new(now, authorized.account, authorized.limits, interim);
        nas.set_framed_ipv6_prefix(
            authorized
                .authorization
                .as_ref()
                .and_then(|a| a.framed_ipv6_prefix),
        );
        let start = nas.start(now, Some(peer));
        if let Some(limit) = nas.limits().rate_limit {
            info!("{unit}: rate limit {limit}");
        }
        self.aaa.account(start);
        self.attached.set_address(u32::from(owner), Some(peer));
        self.owned_unit.insert(owner, unit);
        self.deadlines.set(unit, nas.poll_timeout());
        extra.nas = Some((owner, nas));
    }

    /// A session is gone: out of the registry; its end reason kept for its unit's Stop (or
    /// the Stop of its unit, gone already).
    pub(crate) fn session_down(
        &mut self,
        units: &mut impl UnitsAaa,
        session_id: u16,
        reason: &SessionEnd,
    ) {
        self.authorized.remove(&session_id);
        self.attached.unregister(u32::from(session_id));
        if let Some((unit, nas)) = self.ending.remove(&session_id) {
            self.stop(unit, nas, terminate_cause(reason));
            return;
        }
        if let Some(unit) = self.owned_unit.remove(&session_id)
            && let Some(extra) = units.unit_aaa(unit)
        {
            extra.end = Some(reason.clone());
        }
    }

    /// A unit is gone: the Stop record, once the reason is known. (On the kernel path the
    /// caller reads the kernel's counters into the session first.)
    pub(crate) fn unit_down(&mut self, unit: UnitId, extra: &mut UnitAaa) {
        self.deadlines.set(unit, None);
        let Some((owner, nas)) = extra.nas.take() else {
            return;
        };
        self.owned_unit.remove(&owner);
        match extra.end.as_ref() {
            Some(end) => self.stop(unit, nas, terminate_cause(end)),
            None => {
                self.ending.insert(owner, (unit, nas));
            }
        }
    }

    /// Stops what is left (shutdown).
    pub(crate) fn stop_all(&mut self, cause: TerminateCause) {
        for (_, (unit, nas)) in std::mem::take(&mut self.ending) {
            self.stop(unit, nas, cause);
        }
    }

    fn stop(&mut self, unit: UnitId, nas: NasSession, cause: TerminateCause) {
        let now = now();
        let counters = nas.counters();
        info!(
            "{unit} user \"{}\" accounted: {} s, {} octets in, {} out ({})",
            nas.account().user,
            nas.uptime(now).as_secs(),
            counters.input_octets,
            counters.output_octets,
            cause
        );
        self.aaa.account(nas.stop(now, cause));
    }

    /// A unit's session timers are due (the TUN loop released its waiting packets first, the
    /// kernel loop read the kernel's counters and idle time into it): Interim-Updates go out,
    /// the unit's deadline is set again, and the reason to close the unit comes back when a
    /// Session-Timeout or Idle-Timeout ended it.
    pub(crate) fn timers_due(
        &mut self,
        unit: UnitId,
        session: &mut NasSession,
        now: Instant,
    ) -> Option<CloseReason> {
        session.handle_timeout(now);
        let mut close = None;
        while let Some(event) = session.poll_event() {
            match clock_close_reason(event) {
                Some(reason) => close = Some(reason),
                None => self.aaa.account(session.interim(now)),
            }
        }
        self.deadlines.set(unit, session.poll_timeout());
        close
    }

    /// A CoA for a session: its running unit's limits, or those it will start with. The
    /// CoA is NAKed with Session-Context-Not-Found when there is no such session, and with
    /// Unsupported-Attribute when it sets a rate limit the loop cannot enforce (then nothing of
    /// it is applied).
    pub(crate) fn change(
        &mut self,
        server: &PppoeServer,
        units: &mut impl UnitsAaa,
        session_id: u16,
        change: &Change,
    ) -> Result<(), ErrorCause> {
        if !self.enforces_rate_limits
            && let Some(limit) = change.rate_limit
        {
            warn!(
                "session {session_id:#06x}: CoA not applied: its rate limit {limit} cannot be \
                 enforced on the kernel data path"
            );
            return Err(ErrorCause::UNSUPPORTED_ATTRIBUTE);
        }
        let now = now();
        if let Some(unit) = server.session_unit(session_id)
            && let Some(extra) = units.unit_aaa(unit)
            && let Some((_, nas)) = extra.nas.as_mut()
        {
            nas.apply(now, change);
            if let Some(limit) = change.rate_limit {
                info!("{unit}: rate limit now {limit} (CoA)");
            }
            if let Some(timeout) = change.session_timeout {
                info!("{unit}: session timeout now {} s (CoA)", timeout.as_secs());
            }
            self.deadlines.set(unit, nas.poll_timeout());
            return Ok(());
        }
        let Some(pending) = self.authorized.get_mut(&session_id) else {
            return Err(ErrorCause::SESSION_CONTEXT_NOT_FOUND);
        };
        if change.rate_limit.is_some() {
            pending.limits.rate_limit = change.rate_limit;
        }
        if change.session_timeout.is_some() {
            pending.limits.session_timeout = change.session_timeout;
        }
        if change.idle_timeout.is_some() {
            pending.limits.idle_timeout = change.idle_timeout;
        }
        Ok(())
    }

    /// A session's authenticator (external mode) asks for a verdict: the secrets, then RADIUS,
    /// in a task of its own; the answer comes through `answer`.
    pub(crate) fn verify_needed(
        &self,
        server: &PppoeServer,
        session_id: u16,
        request: VerifyRequest,
        secrets: &Arc<dyn SecretsBackend>,
        answer: &mpsc::Sender<(SessionRequest, Verified)>,
    ) {
        let Some(context) = self.context(server, session_id) else {
            return;
        };
        let secret = SecretRequest {
            client: request.peer_name.clone(),
            server: request.server.clone(),
            method: request.method,
            token: request.token,
        };
        let Some(session_request) = session_request(server, session_id, secret) else {
            return;
        };
        let backend = Arc::clone(secrets);
        let answer = answer.clone();
        let aaa = self.aaa.clone();
        tokio::spawn(async move {
            let verified = aaa.verify(&request, &context, backend.as_ref()).await;
            answer.send((session_request, verified)).await.ok();
        });
    }
}

/// Who asks: the session's discovery record with the authentication request (`None` once the
/// session is gone).
fn session_request(
    server: &PppoeServer,
    session_id: u16,
    secret: SecretRequest,
) -> Option<SessionRequest> {
    let record = server.access_concentrator().session(session_id)?;
    Some(SessionRequest {
        session_id,
        client_mac: record.client_mac(),
        service_name: record.service_name().to_owned(),
        secret,
    })
}

/// A session's authenticator asks for the user's secret: looked up in a task of its own, the
/// answer coming through `answer`.
pub(crate) fn lookup_secret(
    server: &PppoeServer,
    session_id: u16,
    request: SecretRequest,
    secrets: &Arc<dyn SecretsBackend>,
    answer: &mpsc::Sender<(SessionRequest, Option<SecretEntry>)>,
) {
    let Some(session_request) = session_request(server, session_id, request) else {
        return;
    };
    let backend = Arc::clone(secrets);
    let answer = answer.clone();
    tokio::spawn(async move {
        let entry = session_request.secret.resolve(backend.as_ref()).await;
        answer.send((session_request, entry)).await.ok();
    });
}

/// A Disconnect-Request or `only-one` closes one of the server's sessions; `done` hears
/// whether there was such a session.
pub(crate) fn close_command(
    server: &mut PppoeServer,
    port: u32,
    reason: CloseReason,
    done: Option<oneshot::Sender<bool>>,
) {
    let found = u16::try_from(port)
        .ok()
        .filter(|id| server.session(*id).is_some());
    if let Some(id) = found {
        info!("session {id:#06x}: closing ({reason})");
        server.close_session(now(), id, reason);
    }
    if let Some(done) = done {
        let _ = done.send(found.is_some());
    }
}

/// Applies a decision's IPCP, CCP and IPv6CP to a session's network layer (a session that
/// joins a running bundle keeps the bundle's: these change nothing then).
fn apply_decision(server: &mut PppoeServer, session_id: u16, decision: &mut SessionDecision) {
    if let Some(unit) = server.session_unit_mut(session_id) {
        if let Some(ipcp) = decision.ipcp.take() {
            unit.set_ipcp(ipcp);
        }
        if let Some(ccp) = decision.ccp.take() {
            unit.set_ccp(ccp);
        }
        if let Some(ipv6cp) = decision.ipv6cp.take() {
            unit.set_ipv6cp(ipv6cp);
        }
    }
}

/// Whether an answer still belongs to its session (the id may have been reused meanwhile; the
/// token would refuse it too).
fn still_there(server: &PppoeServer, request: &SessionRequest) -> bool {
    server
        .session(request.session_id)
        .is_some_and(|s| s.client_mac() == request.client_mac)
}

/// Sets the session's IPCP, IPv6CP and CCP from the policy, then answers its secret request.
pub(crate) fn answer_secret(
    server: &mut PppoeServer,
    policy: &mut dyn SessionPolicy,
    nas: &mut ServerAaa,
    request: &SessionRequest,
    entry: Option<SecretEntry>,
) {
    let now = now();
    if !still_there(server, request) {
        return;
    }
    let mut decision = policy.decide(request, entry);
    match decision.entry.clone() {
        None => info!(
            "session {:#06x}: no secret for user \"{}\"",
            request.session_id, request.secret.client
        ),
        Some(entry) => {
            let context = nas.context(server, request.session_id).unwrap_or_default();
            if !nas.accept(
                request.session_id,
                &request.secret.client,
                context,
                &Grant::Local(entry),
                decision.limits,
            ) {
                decision.entry = None;
            }
        }
    }
    apply_decision(server, request.session_id, &mut decision);
    if let Err(error) = server.provide_secret(
        now,
        request.session_id,
        request.secret.token,
        decision.entry,
    ) {
        debug!(
            "session {:#06x}: secret answer not taken: {error}",
            request.session_id
        );
    }
}

/// Answers a verification (local secret or RADIUS): the policy's settings for the user, its
/// limits (RADIUS's winning), `only-one`, then the verdict.
pub(crate) fn answer_verdict(
    server: &mut PppoeServer,
    policy: &mut dyn SessionPolicy,
    nas: &mut ServerAaa,
    request: &SessionRequest,
    verified: Verified,
) {
    let now = now();
    if !still_there(server, request) {
        return;
    }
    let session_id = request.session_id;
    let user = request.secret.client.as_str();
    let mut verdict = verified.verdict;
    if let (Verdict::Accept(_), Some(grant)) = (&verdict, verified.grant.as_ref()) {
        let mut decision = match grant {
            Grant::Local(entry) => policy.decide(request, Some(entry.clone())),
            Grant::Radius(authorization) => policy.decide_radius(request, authorization),
        };
        let refused_by_policy = matches!(grant, Grant::Local(_)) && decision.entry.is_none();
        let limits = match grant.authorization() {
            Some(authorization) => decision.limits.with_authorization(authorization),
            None => decision.limits,
        };
        let context = nas.context(server, session_id).unwrap_or_default();
        if refused_by_policy || !nas.accept(session_id, user, context, grant, limits) {
            verdict = Verdict::reject();
        } else {
            let address = grant.peer_address();
            apply_decision(server, session_id, &mut decision);
            if let (Some(address), Some(unit)) = (address, server.session_unit_mut(session_id)) {
                unit.set_peer_address(address);
            }
        }
    } else if let Verdict::Accept(_) = verdict {
        verdict = Verdict::reject();
    }
    if let Err(error) = server.provide_verdict(now, session_id, request.secret.token, verdict) {
        debug!("session {session_id:#06x}: verdict not taken: {error}");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ppp_link::{DownReason, LinkConfig, Random};
    use ppp_radius::{AcctAuthentic, AcctSessionId, Counters, RateLimit};
    use pppoe_discovery::AcConfig;

    use super::*;
    use crate::aaa::{AaaOptions, OnlySession};

    impl UnitsAaa for HashMap<UnitId, UnitAaa> {
        fn unit_aaa(&mut self, unit: UnitId) -> Option<&mut UnitAaa> {
            self.get_mut(&unit)
        }
    }

    /// A loop's AAA: the TUN loop's (`enforces_rate_limits`) or the kernel loop's.
    fn server_aaa(enforces_rate_limits: bool) -> ServerAaa {
        let aaa = Aaa::with_random(AaaOptions::local(), Random::seeded(7));
        ServerAaa::new(aaa, "eth1", enforces_rate_limits)
    }

    fn pppoe_server() -> PppoeServer {
        PppoeServer::new(
            AcConfig::default(),
            LinkConfig::pppoe(),
            MacAddr([2, 0, 0, 0, 0, 1]),
            Random::seeded(1),
        )
    }

    fn rate(text: &str) -> RateLimit {
        text.parse().expect("a rate limit")
    }

    fn limited(rate_limit: Option<RateLimit>) -> SessionLimits {
        SessionLimits {
            rate_limit,
            session_timeout: Some(Duration::from_secs(3600)),
            ..SessionLimits::default()
        }
    }

    fn accept(nas: &mut ServerAaa, session_id: u16, user: &str, limits: SessionLimits) -> bool {
        let grant = Grant::Radius(Authorization::default());
        nas.accept(session_id, user, SessionContext::default(), &grant, limits)
    }

    fn nas_session(start: Instant, limits: SessionLimits, interim: Option<Duration>) -> NasSession {
        let account = SessionAccount {
            user: "alice".into(),
            acct_session_id: AcctSessionId::random(&Random::seeded(2)),
            context: SessionContext::default(),
            authentic: AcctAuthentic::LOCAL,
            class: Vec::new(),
        };
        let mut session = NasSession::new(start, account, limits, interim);
        session.start(start, None);
        session
    }

    /// The kernel path cannot shape: a user granted a rate limit (a profile's, a secret's,
    /// RADIUS's) is refused there, and let in on the TUN path; without one it is let in on
    /// both.
    #[test]
    fn a_rate_limit_is_refused_where_it_cannot_be_enforced() {
        let mut kernel = server_aaa(false);
        assert!(!accept(
            &mut kernel,
            1,
            "alice",
            limited(Some(rate("2M/1M")))
        ));
        assert!(
            kernel.authorized.is_empty(),
            "nothing kept for a refused user"
        );
        assert!(accept(&mut kernel, 2, "bob", limited(None)));
        let mut tun = server_aaa(true);
        assert!(accept(&mut tun, 1, "alice", limited(Some(rate("2M/1M")))));
    }

    /// `only-one` holds on the kernel path as on the TUN path (the same registry).
    #[test]
    fn only_one_refuses_a_second_login() {
        let mut nas = server_aaa(false);
        let once = SessionLimits {
            only_one: OnlySession::RefuseSecond,
            ..SessionLimits::default()
        };
        assert!(accept(&mut nas, 1, "alice", once));
        nas.authenticated(1);
        assert!(!accept(&mut nas, 2, "alice", once));
        assert!(accept(&mut nas, 3, "bob", once));
        // Gone, the first session no longer counts.
        let mut units: HashMap<UnitId, UnitAaa> = HashMap::new();
        let end = SessionEnd::Link(DownReason::Closed(CloseReason::AdminReset));
        nas.session_down(&mut units, 1, &end);
        assert!(accept(&mut nas, 2, "alice", once));
    }

    /// A CoA that sets a rate limit is not applied on the kernel path (none of it: the
    /// session timeout it carries too stays as it was) and answers false (NAKed); one without
    /// is applied. On the TUN path both are.
    #[test]
    fn a_coa_setting_a_rate_limit_is_refused_where_it_cannot_be_enforced() {
        let server = pppoe_server();
        let mut units: HashMap<UnitId, UnitAaa> = HashMap::new();
        let mut with_rate = Change::default();
        with_rate.rate_limit = Some(rate("4M/4M"));
        with_rate.session_timeout = Some(Duration::from_secs(60));
        let mut without = Change::default();
        without.idle_timeout = Some(Duration::from_secs(300));

        let mut kernel = server_aaa(false);
        assert!(accept(&mut kernel, 1, "alice", limited(None)));
        assert_eq!(
            kernel.change(&server, &mut units, 1, &with_rate),
            Err(ErrorCause::UNSUPPORTED_ATTRIBUTE)
        );
        let pending = kernel.authorized[&1].limits;
        assert_eq!(pending.rate_limit, None);
        assert_eq!(pending.session_timeout, Some(Duration::from_secs(3600)));
        assert_eq!(kernel.change(&server, &mut units, 1, &without), Ok(()));
        assert_eq!(
            kernel.authorized[&1].limits.idle_timeout,
            Some(Duration::from_secs(300))
        );
        // No such session: NAKed either way.
        assert_eq!(
            kernel.change(&server, &mut units, 9, &without),
            Err(ErrorCause::SESSION_CONTEXT_NOT_FOUND)
        );

        let mut tun = server_aaa(true);
        assert!(accept(&mut tun, 1, "alice", limited(None)));
        assert_eq!(tun.change(&server, &mut units, 1, &with_rate), Ok(()));
        assert_eq!(tun.authorized[&1].limits.rate_limit, Some(rate("4M/4M")));
    }

    /// The kernel loop's timers: what the kernel says about the last traffic (read into the
    /// session before the timers run) keeps the idle timeout away, or lets it end the session;
    /// interim updates go out with the kernel's counters; the deadline is set again.
    #[test]
    fn timers_run_on_the_kernels_idle_time() {
        let start = Instant::now();
        let mut nas = server_aaa(false);
        let unit = UnitId::Link(1);
        let limits = SessionLimits {
            idle_timeout: Some(Duration::from_secs(30)),
            ..SessionLimits::default()
        };
        let mut session = nas_session(start, limits, Some(Duration::from_secs(20)));
        // At 20 s the interim update is due; traffic 2 s ago.
        let now = start + Duration::from_secs(20);
        let counters = Counters {
            input_octets: 1000,
            input_packets: 10,
            output_octets: 5000,
            output_packets: 8,
        };
        session.observe_kernel(now, counters, now - Duration::from_secs(2));
        assert_eq!(nas.timers_due(unit, &mut session, now), None);
        assert_eq!(session.interim(now).counters, Some(counters));
        // The idle deadline moved to 18 s + 30 s, before the next interim update at 40 s.
        assert_eq!(nas.deadlines.next(), Some(start + Duration::from_secs(40)));
        let idle_due = start + Duration::from_secs(48);
        let later = start + Duration::from_secs(40);
        session.observe_kernel(later, counters, later - Duration::from_secs(22));
        assert_eq!(nas.timers_due(unit, &mut session, later), None);
        assert_eq!(nas.deadlines.next(), Some(idle_due));
        // Nothing since: idle at 48 s.
        session.observe_kernel(idle_due, counters, idle_due - Duration::from_secs(30));
        assert_eq!(
            nas.timers_due(unit, &mut session, idle_due),
            Some(CloseReason::IdleTimeout)
        );
        assert!(session.poll_event().is_none());
    }

    /// A unit gone before its session said why waits for the reason; the Stop then goes out
    /// and nothing is left behind.
    #[test]
    fn a_unit_gone_first_waits_for_its_sessions_reason() {
        let start = Instant::now();
        let mut nas = server_aaa(false);
        let unit = UnitId::Link(1);
        let mut extra = UnitAaa {
            nas: Some((1, nas_session(start, SessionLimits::default(), None))),
            end: None,
        };
        nas.deadlines
            .set(unit, Some(start + Duration::from_secs(5)));
        nas.unit_down(unit, &mut extra);
        assert!(extra.nas.is_none());
        assert!(nas.deadlines.is_empty());
        assert_eq!(nas.ending.len(), 1);
        let mut units: HashMap<UnitId, UnitAaa> = HashMap::new();
        let end = SessionEnd::Link(DownReason::PeerTerminated {
            message: String::new(),
        });
        nas.session_down(&mut units, 1, &end);
        assert!(nas.ending.is_empty());
        // A second unit_down (the kernel loop calls it at SessionDown too) does nothing.
        nas.unit_down(unit, &mut extra);
        assert!(nas.ending.is_empty());
    }
}
