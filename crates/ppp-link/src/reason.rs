//! Why a link went down, typed all the way up.

use std::fmt;

use ppp_auth::{AuthProtocol, FailureReason};
use ppp_ccp::CcpFailure;
use ppp_core::CloseReason;
use ppp_frame::Protocol;
use ppp_lcp::FinishReason;

/// Why a link went down ([`LinkEvent::LinkDown`](crate::LinkEvent::LinkDown)).
///
/// [`Display`](fmt::Display) gives plain words for logs and status lines; programs map the
/// variants to exit codes and accounting causes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DownReason {
    /// We closed it ([`Link::close`](crate::Link::close)).
    Closed(CloseReason),
    /// The peer sent an LCP Terminate-Request.
    PeerTerminated {
        /// Its words, if it sent any.
        message: String,
    },
    /// The lower layer went away (carrier lost, PADT, the serial line closed).
    LowerLayerDown,
    /// The peer stopped answering LCP Echo-Requests.
    EchoTimeout,
    /// LCP could not be negotiated (no answer to Configure-Requests, a failed option, a
    /// Code-Reject).
    LcpFailed(FinishReason),
    /// Authentication failed, in one direction or the other.
    AuthFailed(AuthFailure),
    /// The peer requires authentication and we have no credentials.
    NoCredentials {
        /// The method the peer asked for.
        method: AuthProtocol,
    },
    /// Every network protocol stopped; the last one for this reason.
    NoNetworkProtocols {
        /// The last NCP that stopped.
        protocol: Protocol,
        /// Why it stopped.
        reason: FinishReason,
    },
    /// Neither IPCP nor IPv6CP is configured.
    NoNetworkProtocolsConfigured,
    /// Encryption is required and CCP could not provide it.
    Encryption(CcpFailure),
    /// Our own Magic-Number came back: the line is looped back.
    LoopbackDetected,
    /// The link could not join the bundle it was meant for (RFC 1990).
    Multilink(MultilinkRefusal),
}

/// Why a link was refused by a Multilink bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MultilinkRefusal {
    /// The bundle runs Multilink and this link did not negotiate it (or the other way round:
    /// a link without Multilink already carries the network layer alone).
    NotNegotiated,
    /// The link's peer (authenticated name and Endpoint Discriminator) is not the bundle's.
    DifferentPeer,
    /// The bundle has as many members as it can take.
    BundleFull,
}

impl fmt::Display for MultilinkRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MultilinkRefusal::NotNegotiated => "Multilink not negotiated on this link",
            MultilinkRefusal::DifferentPeer => "the link's peer is not the bundle's",
            MultilinkRefusal::BundleFull => "the bundle is full",
        })
    }
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownReason::Closed(reason) => write!(f, "closed: {reason}"),
            DownReason::PeerTerminated { message } if message.is_empty() => {
                f.write_str("peer requested termination")
            }
            DownReason::PeerTerminated { message } => {
                write!(f, "peer requested termination: {message}")
            }
            DownReason::LowerLayerDown => f.write_str("lower layer down"),
            DownReason::EchoTimeout => f.write_str("peer not responding to LCP echo requests"),
            DownReason::LcpFailed(reason) => write!(f, "LCP failed: {reason}"),
            DownReason::AuthFailed(failure) => write!(f, "{failure}"),
            DownReason::NoCredentials { method } => write!(
                f,
                "the peer requires {} authentication and we have no credentials",
                method.log_name()
            ),
            DownReason::NoNetworkProtocols { protocol, reason } => {
                write!(f, "no network protocols running ({protocol}: {reason})")
            }
            DownReason::NoNetworkProtocolsConfigured => {
                f.write_str("no network protocols configured")
            }
            DownReason::Encryption(failure) => write!(f, "encryption failed: {failure}"),
            DownReason::LoopbackDetected => f.write_str("loopback detected"),
            DownReason::Multilink(refusal) => write!(f, "not joined to the bundle: {refusal}"),
        }
    }
}

impl DownReason {
    /// The words for our LCP Terminate-Request when this reason closes the link.
    pub(crate) fn terminate_text(&self) -> String {
        match self {
            DownReason::Closed(reason) => reason.text().to_owned(),
            DownReason::AuthFailed(AuthFailure {
                side: AuthSide::Peer,
                ..
            }) => "Authentication failed".to_owned(),
            other => other.to_string(),
        }
    }
}

/// Which side's authentication failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthSide {
    /// We checked the peer and it failed.
    Peer,
    /// The peer checked us and rejected us (or we could not answer it).
    Us,
}

/// An authentication failure: whose, with which method, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthFailure {
    /// Whose authentication failed.
    pub side: AuthSide,
    /// The method.
    pub method: AuthProtocol,
    /// Why.
    pub reason: FailureReason,
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.side {
            AuthSide::Peer => write!(
                f,
                "peer failed to authenticate ({}): {}",
                self.method.log_name(),
                self.reason
            ),
            AuthSide::Us => write!(
                f,
                "authentication to the peer failed ({}): {}",
                self.method.log_name(),
                self.reason
            ),
        }
    }
}
