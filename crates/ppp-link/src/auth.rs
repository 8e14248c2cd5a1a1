//! The link's Authenticate phase: which credentials and secrets it uses.
//!
//! LCP decides which method each direction uses; the link then runs a `ppp_auth`
//! [`Authenticator`](ppp_auth::Authenticator) (we check the peer) and/or
//! [`Authenticatee`](ppp_auth::Authenticatee) (we prove ourselves), feeds each the PAP/CHAP
//! packets of its role, and enters the Network phase only when every one of them succeeded.
//! Secrets for checking the peer come from a table ([`AuthConfig::secrets`]), or are asked for
//! with [`crate::LinkEvent::SecretNeeded`] and given back with [`crate::Link::provide_secret`],
//! so a lookup may take as long as a RADIUS round trip without the link doing any I/O.

use std::sync::Arc;

use ppp_auth::{Credentials, Secret};

pub use ppp_auth::{
    Acceptance, AuthProtocol, AuthenticateeConfig, AuthenticatorConfig, ExternalKeys,
    FailureReason, MsChapKeyMaterial, Proof, Rejection, SecretEntry, SecretRequest, SecretToken,
    SecretsTable, Verdict, Verification, VerifyRequest,
};

/// What we answer with when the peer asks us to authenticate (pppd `user` + `password`, or
/// `user` + the client lines of `chap-secrets`).
#[derive(Clone)]
pub enum ClientCredentials {
    /// One name and password for every authenticator.
    Password {
        /// Our name (pppd `user`).
        user: String,
        /// Our password.
        password: Secret,
    },
    /// Our name, and the secret for each authenticator name from a secrets table (lines whose
    /// client is `user`).
    Table {
        /// Our name (pppd `user`).
        user: String,
        /// The secrets.
        table: SecretsTable,
    },
}

impl ClientCredentials {
    /// A name and a password.
    pub fn password(user: impl Into<String>, password: impl Into<Secret>) -> Self {
        ClientCredentials::Password {
            user: user.into(),
            password: password.into(),
        }
    }

    /// Builds the `ppp_auth` credentials for one exchange.
    pub(crate) fn credentials(&self) -> Credentials {
        match self {
            ClientCredentials::Password { user, password } => {
                Credentials::new(user.clone(), password.clone())
            }
            ClientCredentials::Table { user, table } => {
                let (user, table) = (user.clone(), table.clone());
                Credentials::with_lookup(user.clone(), move |server| {
                    table.lookup_now(&user, server).map(|entry| entry.secret)
                })
            }
        }
    }
}

impl core::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ClientCredentials::Password { user, .. } => f
                .debug_struct("Password")
                .field("user", user)
                .finish_non_exhaustive(),
            ClientCredentials::Table { user, .. } => f
                .debug_struct("Table")
                .field("user", user)
                .finish_non_exhaustive(),
        }
    }
}

/// Authentication settings of a link.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// Our credentials when the peer authenticates us; `None`: we cannot be authenticated (set
    /// `lcp.allow` empty too, so LCP refuses the peer's request).
    pub credentials: Option<ClientCredentials>,
    /// Retransmission and timeouts when we are authenticated.
    pub authenticatee: AuthenticateeConfig,
    /// Our name, challenge length, retransmission, re-challenge interval when we authenticate
    /// the peer (pppd `name`, `chap-interval`).
    pub authenticator: AuthenticatorConfig,
    /// Where the peers' secrets come from: a table the link looks them up in at once (pppd's
    /// `chap-secrets`), or `None` to ask the owner with
    /// [`LinkEvent::SecretNeeded`](crate::LinkEvent::SecretNeeded) (a RADIUS server, a database).
    pub secrets: Option<Arc<SecretsTable>>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            credentials: None,
            authenticatee: AuthenticateeConfig::default(),
            authenticator: AuthenticatorConfig::new("ppp"),
            secrets: None,
        }
    }
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
