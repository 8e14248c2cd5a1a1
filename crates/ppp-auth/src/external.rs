//! External verification: the authenticator hands the peer's proof to someone else (a RADIUS
//! server, typically through `ppp-radius`) and takes a verdict back.
//!
//! With local secrets the authenticator computes the expected answer itself
//! ([`AuthEvent::SecretNeeded`](crate::AuthEvent::SecretNeeded) →
//! [`provide_secret`](crate::Authenticator::provide_secret)). With
//! [`Verification::External`] it never sees a secret: it emits
//! [`AuthEvent::VerifyNeeded`](crate::AuthEvent::VerifyNeeded) with a [`VerifyRequest`] holding
//! what the peer sent ([`Proof`]), and the owner answers with
//! [`provide_verdict`](crate::Authenticator::provide_verdict) and a [`Verdict`]. The verdict's
//! message reaches the peer in the PAP Ack/Nak or CHAP Success/Failure, an MS-CHAP-V2 Success
//! carries the authenticator response the verifier computed, and MPPE keys the verifier gives
//! become the machine's [`MsChapKeyMaterial`](crate::MsChapKeyMaterial).

use std::fmt;

use zeroize::Zeroize;

use crate::AuthProtocol;
use crate::common::SecretToken;
use crate::secret::Secret;

/// How the [`Authenticator`](crate::Authenticator) decides whether the peer is who it says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verification {
    /// Ask for the peer's secret ([`AuthEvent::SecretNeeded`](crate::AuthEvent::SecretNeeded))
    /// and check the proof here.
    #[default]
    Local,
    /// Hand the proof to a verifier ([`AuthEvent::VerifyNeeded`](crate::AuthEvent::VerifyNeeded))
    /// and apply its [`Verdict`].
    External,
}

/// What the peer sent to prove its identity, method by method, as a verifier (RADIUS) needs it.
/// `Debug` hides the PAP password.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Proof {
    /// PAP: the password in clear (RADIUS User-Password).
    Pap {
        /// The password.
        password: Secret,
    },
    /// CHAP with MD5 (RADIUS CHAP-Password and CHAP-Challenge).
    ChapMd5 {
        /// The CHAP identifier of the exchange.
        id: u8,
        /// Our challenge.
        challenge: Vec<u8>,
        /// The peer's 16-byte response.
        response: [u8; 16],
    },
    /// MS-CHAP (v1, RFC 2433; RADIUS MS-CHAP-Challenge and MS-CHAP-Response).
    MsChapV1 {
        /// The CHAP identifier of the exchange.
        id: u8,
        /// Our 8-byte challenge.
        challenge: [u8; 8],
        /// The LAN Manager response (usually zeros).
        lm_response: [u8; 24],
        /// The NT response.
        nt_response: [u8; 24],
        /// Flags: 1 when the NT response is to be used.
        flags: u8,
    },
    /// MS-CHAP-V2 (RFC 2759; RADIUS MS-CHAP-Challenge and MS-CHAP2-Response). The user name
    /// the challenge hash covers is the request's `peer_name` (without any domain).
    MsChapV2 {
        /// The CHAP identifier of the exchange.
        id: u8,
        /// Our 16-byte challenge.
        authenticator_challenge: [u8; 16],
        /// The peer's 16-byte challenge.
        peer_challenge: [u8; 16],
        /// The peer's NT response.
        nt_response: [u8; 24],
        /// The Flags byte (0).
        flags: u8,
    },
}

impl Proof {
    /// The method this proof belongs to.
    pub fn method(&self) -> AuthProtocol {
        match self {
            Proof::Pap { .. } => AuthProtocol::Pap,
            Proof::ChapMd5 { .. } => AuthProtocol::ChapMd5,
            Proof::MsChapV1 { .. } => AuthProtocol::MsChapV1,
            Proof::MsChapV2 { .. } => AuthProtocol::MsChapV2,
        }
    }
}

/// A proof the authenticator needs checked: hand it to the verifier and answer with
/// [`Authenticator::provide_verdict`](crate::Authenticator::provide_verdict) and the same
/// `token`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyRequest {
    /// Identifies this request: give it back with the verdict, so that a late verdict never
    /// lands on a later exchange (of this machine, or of another session).
    pub token: SecretToken,
    /// The name the peer authenticates as (PAP Peer-ID, CHAP Name): RADIUS User-Name.
    pub peer_name: String,
    /// Our name (the CHAP challenge's Name).
    pub server: String,
    /// The method.
    pub method: AuthProtocol,
    /// What the peer sent.
    pub proof: Proof,
}

impl VerifyRequest {
    /// Checks the proof against the peer's `secret` here, as a verifier that knows it would
    /// (a NAS that has the user in its own secrets but runs its authenticators in external
    /// mode for RADIUS, RouterOS `use-radius`): the [`Verdict`] a RADIUS server would give,
    /// with the MS-CHAP-V2 authenticator response and the MPPE key material. Responses are
    /// compared in constant time; an MS-CHAP (v1) proof with only the LAN Manager response is
    /// refused.
    ///
    /// ```
    /// use ppp_auth::{AuthProtocol, Proof, Secret, SecretToken, Verdict, VerifyRequest};
    /// use ppp_auth::crypto::chap_md5_response;
    ///
    /// let challenge = vec![7u8; 16];
    /// let request = VerifyRequest {
    ///     token: SecretToken(1),
    ///     peer_name: "alice".into(),
    ///     server: "ac1".into(),
    ///     method: AuthProtocol::ChapMd5,
    ///     proof: Proof::ChapMd5 {
    ///         id: 1,
    ///         response: chap_md5_response(1, b"wonderland", &challenge),
    ///         challenge,
    ///     },
    /// };
    /// assert!(matches!(request.verify_locally(&Secret::from("wonderland")), Verdict::Accept(_)));
    /// assert!(matches!(request.verify_locally(&Secret::from("guess")), Verdict::Reject(_)));
    /// ```
    pub fn verify_locally(&self, secret: &Secret) -> Verdict {
        use crate::crypto::{
            chap_md5_response, generate_authenticator_response, generate_nt_response_v2,
            hash_nt_password_hash, nt_challenge_response_v1, nt_password_hash, strip_domain,
        };
        use subtle::ConstantTimeEq;
        use zeroize::Zeroizing;

        let password = secret.expose();
        let keys = || ExternalKeys::MsChapMppeKeys {
            lm_key: [0; 8],
            nt_key: hash_nt_password_hash(&Zeroizing::new(nt_password_hash(password))),
        };
        match &self.proof {
            Proof::Pap { password: given } if given.ct_eq(password) => Verdict::accept(),
            Proof::ChapMd5 {
                id,
                challenge,
                response,
            } if bool::from(chap_md5_response(*id, password, challenge).ct_eq(response)) => {
                Verdict::accept()
            }
            Proof::MsChapV1 {
                challenge,
                nt_response,
                flags: 1,
                ..
            } if bool::from(nt_challenge_response_v1(challenge, password).ct_eq(nt_response)) => {
                Verdict::Accept(Acceptance {
                    keys: Some(keys()),
                    ..Acceptance::default()
                })
            }
            Proof::MsChapV2 {
                authenticator_challenge,
                peer_challenge,
                nt_response,
                ..
            } => {
                let user = strip_domain(self.peer_name.as_bytes());
                let expected = generate_nt_response_v2(
                    authenticator_challenge,
                    peer_challenge,
                    user,
                    password,
                );
                if !bool::from(expected.ct_eq(nt_response)) {
                    return Verdict::reject();
                }
                Verdict::Accept(Acceptance {
                    authenticator_response: Some(generate_authenticator_response(
                        password,
                        nt_response,
                        peer_challenge,
                        authenticator_challenge,
                        user,
                    )),
                    keys: Some(keys()),
                    ..Acceptance::default()
                })
            }
            _ => Verdict::reject(),
        }
    }
}

/// The verifier's answer to a [`VerifyRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The peer is who it says (RADIUS Access-Accept).
    Accept(Acceptance),
    /// It is not, or it may not log in (RADIUS Access-Reject).
    Reject(Rejection),
}

impl Verdict {
    /// An acceptance with nothing more than the default messages.
    pub fn accept() -> Self {
        Verdict::Accept(Acceptance::default())
    }

    /// A rejection with the default messages.
    pub fn reject() -> Self {
        Verdict::Reject(Rejection::default())
    }
}

/// What comes with an acceptance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acceptance {
    /// Text for the peer (RADIUS Reply-Message): in the PAP Authenticate-Ack, the CHAP Success,
    /// or after `M=` in an MS-CHAP-V2 Success. `None`: pppd's words ("Login ok", "Access
    /// granted").
    pub message: Option<String>,
    /// MS-CHAP-V2: the 20-byte authenticator response the verifier computed (RADIUS
    /// MS-CHAP2-Success, `S=` and 40 hex digits). Required for MS-CHAP-V2: an acceptance
    /// without it fails the peer, whose mutual authentication could not succeed.
    pub authenticator_response: Option<[u8; 20]>,
    /// MS-CHAP: the MPPE key material the verifier gives, if any.
    pub keys: Option<ExternalKeys>,
}

/// What comes with a rejection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rejection {
    /// Text for the peer (RADIUS Reply-Message, or the `M=` of an MS-CHAP-Error): in the PAP
    /// Authenticate-Nak, the CHAP Failure, or after `M=` in an MS-CHAP Failure. `None`:
    /// pppd's words ("Login incorrect", "Access denied").
    pub message: Option<String>,
    /// MS-CHAP: the `E=` error code (from RADIUS MS-CHAP-Error; default 691,
    /// ERROR_AUTHENTICATION_FAILURE).
    pub error_code: Option<u32>,
}

/// MPPE key material a verifier gives (RFC 2548), decrypted. `Debug` hides the keys; they are
/// zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize)]
#[non_exhaustive]
pub enum ExternalKeys {
    /// MS-MPPE-Send-Key and MS-MPPE-Recv-Key (RFC 2548 §2.4.2-3): the authenticator's send and
    /// receive start keys (MS-CHAP-V2; shorter keys padded with zeros to 16 bytes).
    SendRecv {
        /// The key for what the authenticator sends.
        send: [u8; 16],
        /// The key for what the authenticator receives.
        recv: [u8; 16],
    },
    /// MS-CHAP-MPPE-Keys (RFC 2548 §2.4.1, MS-CHAP v1): the LAN Manager key and the NT key
    /// (HashNtPasswordHash of the password, as FreeRADIUS and Windows send it).
    MsChapMppeKeys {
        /// The first 8 bytes of the LAN Manager password hash.
        lm_key: [u8; 8],
        /// HashNtPasswordHash of the password.
        nt_key: [u8; 16],
    },
}

impl Drop for ExternalKeys {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl fmt::Debug for ExternalKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExternalKeys::SendRecv { .. } => f.write_str("SendRecv { .. }"),
            ExternalKeys::MsChapMppeKeys { .. } => f.write_str("MsChapMppeKeys { .. }"),
        }
    }
}
