//! The hooks the link's Authenticate phase drives.
//!
//! LCP decides which method each direction uses; the link then asks an [`AuthProvider`] for one
//! [`AuthSession`] per direction that needs one, feeds it the PAP/CHAP packets of its role, and
//! enters the Network phase only when every session has [`AuthStatus::Succeeded`]. A failed
//! session ends the link with its reason.

use std::time::Instant;

pub use ppp_lcp::lcp::AuthProtocol;

/// Which side of an authentication exchange we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthRole {
    /// We check the peer (we asked for authentication in our Configure-Request).
    Authenticator,
    /// We prove ourselves to the peer (it asked for authentication).
    Authenticatee,
}

/// How an authentication exchange stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthStatus {
    /// Still running.
    Pending,
    /// Done: the peer proved itself, or the peer accepted us.
    Succeeded,
    /// Done and failed; why, in words for the log and the user. Never contains a secret.
    Failed(String),
}

/// A request for a secret that the owner of the link resolves (asynchronously, from a secrets
/// file, a database or RADIUS) and answers with [`crate::Link::provide_secret`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRequest {
    /// Which session asks.
    pub role: AuthRole,
    /// The name the peer gave (authenticator) or the authenticator's name (authenticatee).
    pub peer_name: String,
    /// Our own name in the exchange.
    pub our_name: String,
}

/// The answer to a [`SecretRequest`].
#[derive(Clone, PartialEq, Eq)]
pub struct SecretAnswer {
    /// The shared secret or password; `None` when the name is unknown.
    pub secret: Option<Vec<u8>>,
    /// The address the secrets entry assigns to the peer, for IPCP.
    pub peer_address: Option<std::net::Ipv4Addr>,
}

impl core::fmt::Debug for SecretAnswer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SecretAnswer")
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("peer_address", &self.peer_address)
            .finish()
    }
}

/// One direction of authentication, sans-IO, with the verbs of every machine of the stack.
pub trait AuthSession: Send {
    /// The method this session runs.
    fn method(&self) -> AuthProtocol;
    /// Our role in it.
    fn role(&self) -> AuthRole;
    /// The Authenticate phase began.
    fn start(&mut self, now: Instant);
    /// A packet of the method's protocol, addressed to this role, arrived (the information field).
    fn handle_input(&mut self, now: Instant, packet: &[u8]);
    /// The time from [`poll_timeout`](Self::poll_timeout) has come; a spurious call is a no-op.
    fn handle_timeout(&mut self, now: Instant);
    /// Next packet to send on the method's protocol (the information field).
    fn poll_transmit(&mut self) -> Option<Vec<u8>>;
    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Where the exchange stands.
    fn status(&self) -> AuthStatus;
    /// A secret the session needs before it can go on, if any (asked once per exchange).
    fn poll_secret_request(&mut self) -> Option<SecretRequest> {
        None
    }
    /// The answer to the last [`SecretRequest`].
    fn provide_secret(&mut self, _now: Instant, _answer: SecretAnswer) {}
    /// The name the peer authenticated as (authenticator role), once known.
    fn peer_name(&self) -> Option<String> {
        None
    }
    /// MPPE key material derived from the exchange (MS-CHAP), for CCP.
    fn mppe_master_key(&self) -> Option<[u8; 16]> {
        None
    }
}

/// Makes authentication sessions for what LCP negotiated.
pub trait AuthProvider: Send {
    /// A session of `method` in `role`, or `None` if this provider cannot run it (the link then
    /// fails with a clear reason).
    fn session(&mut self, role: AuthRole, method: AuthProtocol) -> Option<Box<dyn AuthSession>>;
}

/// Whether a PAP or CHAP packet with `code` goes to our authenticator (true) or to our
/// authenticatee (false): PAP Authenticate-Request and CHAP Response travel toward the
/// authenticator, everything else toward the authenticatee.
pub(crate) fn is_for_authenticator(protocol: ppp_frame::Protocol, code: u8) -> bool {
    match protocol {
        ppp_frame::Protocol::Pap => code == 1,
        ppp_frame::Protocol::Chap => code == 2,
        _ => false,
    }
}
