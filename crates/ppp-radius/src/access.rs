//! Authentication: a `ppp-auth` [`VerifyRequest`] becomes an Access-Request (RFC 2865, RFC
//! 2548 for MS-CHAP), and the verified Access-Accept or Access-Reject becomes a [`Verdict`]
//! plus the session's [`Authorization`].

use std::net::Ipv4Addr;

use ppp_auth::{
    Acceptance, AuthProtocol, ExternalKeys, MsChapFailure, Proof, Rejection, Verdict, VerifyRequest,
};
use tracing::debug;
use zeroize::Zeroizing;

use crate::RadiusError;
use crate::attribute::{Attribute, AttributeType, VENDOR_MICROSOFT, microsoft};
use crate::authorization::Authorization;
use crate::crypto::{Secret, decrypt_salted, hide_password, sign_access_request};
use crate::macros::open_enum;
use crate::packet::{Code, Packet};

open_enum! {
    /// NAS-Port-Type (RFC 2865 §5.41, RFC 4603).
    pub struct NasPortType(u32) {
        /// 0: an asynchronous serial line (a modem, a dial-in server).
        ASYNC = 0 => "Async",
        /// 1: a synchronous serial line.
        SYNC = 1 => "Sync",
        /// 2: ISDN synchronous.
        ISDN_SYNC = 2 => "ISDN",
        /// 5: a virtual port (a tunnel).
        VIRTUAL = 5 => "Virtual",
        /// 15: Ethernet (PPPoE, as most access concentrators say).
        ETHERNET = 15 => "Ethernet",
        /// 16: xDSL.
        XDSL = 16 => "xDSL",
        /// 32: PPPoE over Ethernet (RFC 4603).
        PPPOE_OVER_ETHERNET = 32 => "PPPoEoE",
    }
}

/// Service-Type Framed-User (RFC 2865 §5.6).
pub const SERVICE_TYPE_FRAMED: u32 = 2;
/// Framed-Protocol PPP (RFC 2865 §5.7).
pub const FRAMED_PROTOCOL_PPP: u32 = 1;

/// Who the NAS is: at least one of the two is required in every request (RFC 2865 §4.1).
/// The client machine adds them to every Access-Request and Accounting-Request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NasIdentity {
    /// NAS-Identifier: the NAS's name.
    pub identifier: Option<String>,
    /// NAS-IP-Address.
    pub ip_address: Option<Ipv4Addr>,
}

impl NasIdentity {
    /// A NAS known by name.
    pub fn named(identifier: impl Into<String>) -> Self {
        NasIdentity {
            identifier: Some(identifier.into()),
            ip_address: None,
        }
    }

    pub(crate) fn attributes(&self) -> impl Iterator<Item = Attribute> + '_ {
        let id = self
            .identifier
            .as_deref()
            .map(|n| Attribute::text(AttributeType::NAS_IDENTIFIER, n));
        let ip = self
            .ip_address
            .map(|a| Attribute::ipv4(AttributeType::NAS_IP_ADDRESS, a));
        id.into_iter().chain(ip)
    }
}

/// Where a session is, as RADIUS hears it in Access-Requests and accounting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionContext {
    /// NAS-Port: a number for the port (a PPPoE session id, a line number).
    pub nas_port: Option<u32>,
    /// NAS-Port-Id: the port's name (the interface and session, the tty).
    pub nas_port_id: Option<String>,
    /// NAS-Port-Type: [`NasPortType::ETHERNET`] for PPPoE, [`NasPortType::ASYNC`] for a
    /// serial line.
    pub nas_port_type: Option<NasPortType>,
    /// Calling-Station-Id: the client's MAC address (PPPoE) or the caller id (dial-in).
    pub calling_station_id: Option<String>,
    /// Called-Station-Id: our MAC address, service or number.
    pub called_station_id: Option<String>,
}

impl SessionContext {
    pub(crate) fn attributes(&self) -> Vec<Attribute> {
        let mut out = Vec::new();
        if let Some(p) = self.nas_port {
            out.push(Attribute::integer(AttributeType::NAS_PORT, p));
        }
        if let Some(p) = &self.nas_port_id {
            out.push(Attribute::text(AttributeType::NAS_PORT_ID, p));
        }
        if let Some(t) = self.nas_port_type {
            out.push(Attribute::integer(AttributeType::NAS_PORT_TYPE, t.0));
        }
        if let Some(c) = &self.calling_station_id {
            out.push(Attribute::text(AttributeType::CALLING_STATION_ID, c));
        }
        if let Some(c) = &self.called_station_id {
            out.push(Attribute::text(AttributeType::CALLED_STATION_ID, c));
        }
        out
    }
}

/// An Access-Request before it is sent: its attributes, and the PAP password that is hidden
/// with each server's secret and each transmission's Request Authenticator at
/// [`encode`](Self::encode). `Debug` hides the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRequest {
    method: AuthProtocol,
    attributes: Vec<Attribute>,
    password: Option<Secret>,
}

impl AccessRequest {
    /// The Access-Request for a `ppp-auth` verification: User-Name, the method's proof
    /// (User-Password; CHAP-Password and CHAP-Challenge; MS-CHAP-Challenge and MS-CHAP-Response
    /// or MS-CHAP2-Response), Service-Type Framed-User, Framed-Protocol PPP, and the session's
    /// port and station attributes. The client adds the NAS's identity and the
    /// Message-Authenticator.
    ///
    /// ```
    /// use ppp_auth::{AuthProtocol, Proof, Secret, SecretToken, VerifyRequest};
    /// use ppp_radius::{AccessRequest, AttributeType, NasPortType, SessionContext};
    ///
    /// let request = VerifyRequest {
    ///     token: SecretToken(1),
    ///     peer_name: "alice".into(),
    ///     server: "nas".into(),
    ///     method: AuthProtocol::Pap,
    ///     proof: Proof::Pap { password: Secret::from("secret") },
    /// };
    /// let session = SessionContext {
    ///     nas_port_type: Some(NasPortType::ETHERNET),
    ///     calling_station_id: Some("02:00:00:00:00:01".into()),
    ///     ..SessionContext::default()
    /// };
    /// let access = AccessRequest::new(&request, &session);
    /// assert_eq!(access.get(AttributeType::USER_NAME).unwrap().as_text(), "alice");
    /// assert!(!format!("{access:?}").contains("secret"));
    /// ```
    pub fn new(request: &VerifyRequest, session: &SessionContext) -> Self {
        let mut attributes = vec![Attribute::text(
            AttributeType::USER_NAME,
            &request.peer_name,
        )];
        let mut password = None;
        match &request.proof {
            Proof::Pap { password: p } => password = Some(p.clone()),
            Proof::ChapMd5 {
                id,
                challenge,
                response,
            } => {
                let mut value = vec![*id];
                value.extend_from_slice(response);
                attributes.push(Attribute::new(AttributeType::CHAP_PASSWORD, value));
                attributes.push(Attribute::new(
                    AttributeType::CHAP_CHALLENGE,
                    challenge.clone(),
                ));
            }
            Proof::MsChapV1 {
                id,
                challenge,
                lm_response,
                nt_response,
                flags,
            } => {
                attributes.push(Attribute::vendor(
                    VENDOR_MICROSOFT,
                    microsoft::CHAP_CHALLENGE,
                    challenge,
                ));
                let mut value = vec![*id, *flags];
                value.extend_from_slice(lm_response);
                value.extend_from_slice(nt_response);
                attributes.push(Attribute::vendor(
                    VENDOR_MICROSOFT,
                    microsoft::CHAP_RESPONSE,
                    &value,
                ));
            }
            Proof::MsChapV2 {
                id,
                authenticator_challenge,
                peer_challenge,
                nt_response,
                ..
            } => {
                attributes.push(Attribute::vendor(
                    VENDOR_MICROSOFT,
                    microsoft::CHAP_CHALLENGE,
                    authenticator_challenge,
                ));
                // Ident, Flags (zero), Peer-Challenge, Reserved (8 zeros), Response.
                let mut value = vec![*id, 0];
                value.extend_from_slice(peer_challenge);
                value.extend_from_slice(&[0; 8]);
                value.extend_from_slice(nt_response);
                attributes.push(Attribute::vendor(
                    VENDOR_MICROSOFT,
                    microsoft::CHAP2_RESPONSE,
                    &value,
                ));
            }
            // Proof is non-exhaustive: a method this crate does not know yet is sent with the
            // name alone, and the server rejects it.
            _ => debug!("no RADIUS encoding for this proof"),
        }
        attributes.push(Attribute::integer(
            AttributeType::SERVICE_TYPE,
            SERVICE_TYPE_FRAMED,
        ));
        attributes.push(Attribute::integer(
            AttributeType::FRAMED_PROTOCOL,
            FRAMED_PROTOCOL_PPP,
        ));
        attributes.extend(session.attributes());
        AccessRequest {
            method: request.method,
            attributes,
            password,
        }
    }

    /// The method the proof is for.
    pub fn method(&self) -> AuthProtocol {
        self.method
    }

    /// The first attribute of type `kind` (the password is not among them).
    pub fn get(&self, kind: AttributeType) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.kind == kind)
    }

    /// Adds an attribute (for instance a vendor attribute the server expects).
    pub fn push(&mut self, attribute: Attribute) {
        self.attributes.push(attribute);
    }

    /// The signed packet: Message-Authenticator first (as the Blast-RADIUS advisories ask),
    /// then User-Password hidden with `secret` and `authenticator` where there is one, then
    /// `extra` (the NAS identity) and the request's attributes.
    ///
    /// # Errors
    ///
    /// [`RadiusError`] when an attribute or the packet is too long.
    pub fn encode(
        &self,
        identifier: u8,
        authenticator: [u8; 16],
        secret: &Secret,
        extra: impl IntoIterator<Item = Attribute>,
    ) -> Result<Vec<u8>, RadiusError> {
        let mut packet = Packet::new(Code::ACCESS_REQUEST, identifier);
        packet.authenticator = authenticator;
        packet.push(Attribute::new(
            AttributeType::MESSAGE_AUTHENTICATOR,
            [0; 16],
        ));
        let mut attributes = self.attributes.iter().cloned();
        // User-Name first, as servers print it.
        packet.attributes.extend(attributes.next());
        if let Some(password) = &self.password {
            let hidden = hide_password(password.expose(), secret, &authenticator)?;
            packet.push(Attribute::new(AttributeType::USER_PASSWORD, hidden));
        }
        packet.attributes.extend(extra);
        packet.attributes.extend(attributes);
        let mut bytes = packet.to_bytes()?;
        sign_access_request(&mut bytes, secret);
        Ok(bytes)
    }
}

/// A verified Access-Accept or Access-Reject, read for `ppp-auth` and for the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessAnswer {
    /// What the authenticator does with the peer.
    pub verdict: Verdict,
    /// The session attributes (empty for a reject).
    pub authorization: Authorization,
}

impl AccessAnswer {
    /// Reads an answer whose authenticity the caller has checked
    /// ([`verify_response`](crate::crypto::verify_response)), to a request for `method` with
    /// Request Authenticator `request_authenticator`, under `secret` (for the MPPE keys).
    ///
    /// An Access-Accept gives [`Verdict::Accept`] with the Reply-Message, the MS-CHAP2-Success
    /// authenticator response and the MPPE keys (MS-MPPE-Send-Key/Recv-Key, or
    /// MS-CHAP-MPPE-Keys for MS-CHAP v1); anything else (Access-Reject, and Access-Challenge,
    /// which PPP cannot carry without EAP) gives [`Verdict::Reject`] with the Reply-Message or
    /// the MS-CHAP-Error's text and code. Malformed MS attributes are logged and left out.
    pub fn from_packet(
        packet: &Packet,
        method: AuthProtocol,
        request_authenticator: &[u8; 16],
        secret: &Secret,
    ) -> Self {
        let messages: Vec<String> = packet
            .all(AttributeType::REPLY_MESSAGE)
            .map(|a| a.as_text())
            .collect();
        let message = (!messages.is_empty()).then(|| messages.join("\n"));
        if packet.code != Code::ACCESS_ACCEPT {
            let mut rejection = Rejection {
                message,
                error_code: None,
            };
            if let Some([_ident, text @ ..]) =
                packet.vendor(VENDOR_MICROSOFT, microsoft::CHAP_ERROR)
            {
                let failure = MsChapFailure::parse(text);
                rejection.error_code = failure.error_code;
                if rejection.message.is_none() {
                    rejection.message = failure.message;
                }
            }
            return AccessAnswer {
                verdict: Verdict::Reject(rejection),
                authorization: Authorization::default(),
            };
        }
        let authenticator_response = (method == AuthProtocol::MsChapV2)
            .then(|| packet.vendor(VENDOR_MICROSOFT, microsoft::CHAP2_SUCCESS))
            .flatten()
            .and_then(parse_chap2_success);
        let keys = mppe_keys(packet, request_authenticator, secret);
        AccessAnswer {
            verdict: Verdict::Accept(Acceptance {
                message,
                authenticator_response,
                keys,
            }),
            authorization: Authorization::from_packet(packet),
        }
    }
}

/// MS-CHAP2-Success (RFC 2548 §2.3.3): Ident, then `S=` and 40 hex digits.
fn parse_chap2_success(value: &[u8]) -> Option<[u8; 20]> {
    let hex = value.get(1..)?.strip_prefix(b"S=")?.get(..40)?;
    let mut out = [0u8; 20];
    for (i, pair) in hex.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// The MPPE keys of an Access-Accept, decrypted.
fn mppe_keys(
    packet: &Packet,
    request_authenticator: &[u8; 16],
    secret: &Secret,
) -> Option<ExternalKeys> {
    let key = |kind| -> Option<[u8; 16]> {
        let value = packet.vendor(VENDOR_MICROSOFT, kind)?;
        match decrypt_salted(value, secret, request_authenticator, kind) {
            // 16 bytes for 128-bit keys; shorter keys (40/56-bit) are padded with zeros.
            Ok(k) if !k.is_empty() && k.len() <= 32 => {
                let mut out = [0u8; 16];
                let n = k.len().min(16);
                out[..n].copy_from_slice(&k[..n]);
                Some(out)
            }
            Ok(_) => {
                debug!("ignoring an MPPE key of a length MPPE cannot use");
                None
            }
            Err(e) => {
                debug!("ignoring {e}");
                None
            }
        }
    };
    if let (Some(send), Some(recv)) = (key(microsoft::MPPE_SEND_KEY), key(microsoft::MPPE_RECV_KEY))
    {
        return Some(ExternalKeys::SendRecv { send, recv });
    }
    // MS-CHAP-MPPE-Keys: LM key (8) and NT key (16), hidden as User-Password.
    let value = packet.vendor(VENDOR_MICROSOFT, microsoft::CHAP_MPPE_KEYS)?;
    if value.len() != 32 {
        debug!("ignoring MS-CHAP-MPPE-Keys of {} bytes", value.len());
        return None;
    }
    let plain: Zeroizing<Vec<u8>> =
        crate::crypto::unhide_blocks(value, secret, request_authenticator)?;
    let mut lm_key = [0u8; 8];
    let mut nt_key = [0u8; 16];
    lm_key.copy_from_slice(&plain[..8]);
    nt_key.copy_from_slice(&plain[8..24]);
    Some(ExternalKeys::MsChapMppeKeys { lm_key, nt_key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{encrypt_salted, sign_response, verify_response};
    use ppp_auth::SecretToken;

    fn verify_request(method: AuthProtocol, proof: Proof) -> VerifyRequest {
        VerifyRequest {
            token: SecretToken(1),
            peer_name: "alice".into(),
            server: "nas".into(),
            method,
            proof,
        }
    }

    #[test]
    fn pap_request_hides_the_password_per_transmission() {
        let request = verify_request(
            AuthProtocol::Pap,
            Proof::Pap {
                password: Secret::from("correct horse"),
            },
        );
        let session = SessionContext {
            nas_port_type: Some(NasPortType::ETHERNET),
            nas_port_id: Some("eth0".into()),
            ..SessionContext::default()
        };
        let access = AccessRequest::new(&request, &session);
        let secret = Secret::from("s3cret");
        let bytes = access
            .encode(5, [9; 16], &secret, NasIdentity::named("ac1").attributes())
            .unwrap();
        let p = Packet::parse(&bytes).unwrap();
        assert_eq!(p.attributes[0].kind, AttributeType::MESSAGE_AUTHENTICATOR);
        let hidden = &p.get(AttributeType::USER_PASSWORD).unwrap().value;
        let clear = crate::crypto::unhide_password(hidden, &secret, &[9; 16]).unwrap();
        assert_eq!(clear.expose(), b"correct horse");
        assert_eq!(
            p.get(AttributeType::NAS_IDENTIFIER).unwrap().as_text(),
            "ac1"
        );
        assert_eq!(
            p.get(AttributeType::NAS_PORT_TYPE).unwrap().as_u32(),
            Ok(15)
        );
        assert_eq!(p.get(AttributeType::SERVICE_TYPE).unwrap().as_u32(), Ok(2));
        assert_eq!(
            p.get(AttributeType::FRAMED_PROTOCOL).unwrap().as_u32(),
            Ok(1)
        );
        // The Message-Authenticator checks out (as the server would check it).
        let mut zeroed = bytes.clone();
        zeroed[22..38].fill(0);
        assert_eq!(bytes[22..38], crate::crypto::hmac_md5(&zeroed, &secret));
    }

    #[test]
    fn chap_and_mschap_attributes() {
        let chap = AccessRequest::new(
            &verify_request(
                AuthProtocol::ChapMd5,
                Proof::ChapMd5 {
                    id: 7,
                    challenge: vec![1; 16],
                    response: [2; 16],
                },
            ),
            &SessionContext::default(),
        );
        assert_eq!(chap.get(AttributeType::CHAP_PASSWORD).unwrap().value[0], 7);
        assert_eq!(
            chap.get(AttributeType::CHAP_CHALLENGE).unwrap().value,
            [1; 16]
        );
        let v2 = AccessRequest::new(
            &verify_request(
                AuthProtocol::MsChapV2,
                Proof::MsChapV2 {
                    id: 3,
                    authenticator_challenge: [4; 16],
                    peer_challenge: [5; 16],
                    nt_response: [6; 24],
                    flags: 0,
                },
            ),
            &SessionContext::default(),
        );
        let bytes = v2
            .encode(
                1,
                [0; 16],
                &Secret::from("x"),
                NasIdentity::named("n").attributes(),
            )
            .unwrap();
        let p = Packet::parse(&bytes).unwrap();
        let response = p
            .vendor(VENDOR_MICROSOFT, microsoft::CHAP2_RESPONSE)
            .unwrap();
        assert_eq!(response.len(), 50);
        assert_eq!(&response[..2], &[3, 0]);
        assert_eq!(&response[2..18], &[5; 16]);
        assert_eq!(&response[26..50], &[6; 24]);
        assert_eq!(
            p.vendor(VENDOR_MICROSOFT, microsoft::CHAP_CHALLENGE),
            Some(&[4u8; 16][..])
        );
    }

    #[test]
    fn accept_with_mschap2_success_and_keys() {
        let secret = Secret::from("s3cret");
        let request_auth = [0x11; 16];
        let mut accept = Packet::new(Code::ACCESS_ACCEPT, 1);
        accept.push(Attribute::new(
            AttributeType::MESSAGE_AUTHENTICATOR,
            [0; 16],
        ));
        let mut success = vec![3];
        success.extend_from_slice(b"S=407A5589115FD0D6209F510FE9C04566932CDA56");
        accept.push(Attribute::vendor(
            VENDOR_MICROSOFT,
            microsoft::CHAP2_SUCCESS,
            &success,
        ));
        let send = encrypt_salted(&[0xAA; 16], &secret, &request_auth, [0x80, 1]);
        let recv = encrypt_salted(&[0xBB; 16], &secret, &request_auth, [0x80, 2]);
        accept.push(Attribute::vendor(
            VENDOR_MICROSOFT,
            microsoft::MPPE_SEND_KEY,
            &send,
        ));
        accept.push(Attribute::vendor(
            VENDOR_MICROSOFT,
            microsoft::MPPE_RECV_KEY,
            &recv,
        ));
        accept.push(Attribute::text(AttributeType::REPLY_MESSAGE, "Hi"));
        let mut bytes = accept.to_bytes().unwrap();
        sign_response(&mut bytes, &request_auth, &secret);
        assert_eq!(
            verify_response(&bytes, &request_auth, &secret, true),
            Ok(())
        );
        let answer = AccessAnswer::from_packet(
            &Packet::parse(&bytes).unwrap(),
            AuthProtocol::MsChapV2,
            &request_auth,
            &secret,
        );
        let Verdict::Accept(a) = answer.verdict else {
            panic!()
        };
        assert_eq!(a.message.as_deref(), Some("Hi"));
        assert_eq!(a.authenticator_response.unwrap()[0], 0x40);
        assert_eq!(
            a.keys,
            Some(ExternalKeys::SendRecv {
                send: [0xAA; 16],
                recv: [0xBB; 16]
            })
        );
    }

    #[test]
    fn reject_with_mschap_error() {
        let mut reject = Packet::new(Code::ACCESS_REJECT, 1);
        let mut error = vec![3];
        error.extend_from_slice(
            b"E=648 R=0 C=00112233445566778899AABBCCDDEEFF V=3 M=Password expired",
        );
        reject.push(Attribute::vendor(
            VENDOR_MICROSOFT,
            microsoft::CHAP_ERROR,
            &error,
        ));
        let answer = AccessAnswer::from_packet(
            &reject,
            AuthProtocol::MsChapV2,
            &[0; 16],
            &Secret::from("x"),
        );
        assert_eq!(
            answer.verdict,
            Verdict::Reject(Rejection {
                message: Some("Password expired".into()),
                error_code: Some(648)
            })
        );
        // A Reply-Message wins over the M= text.
        reject.push(Attribute::text(AttributeType::REPLY_MESSAGE, "Call us"));
        let answer = AccessAnswer::from_packet(
            &reject,
            AuthProtocol::MsChapV2,
            &[0; 16],
            &Secret::from("x"),
        );
        assert!(
            matches!(answer.verdict, Verdict::Reject(Rejection { message: Some(m), error_code: Some(648) }) if m == "Call us")
        );
    }

    #[test]
    fn chap2_success_forms() {
        assert!(parse_chap2_success(b"\x01S=407A5589115FD0D6209F510FE9C04566932CDA56").is_some());
        assert!(parse_chap2_success(b"\x01S=407A").is_none());
        assert!(parse_chap2_success(b"\x01X=407A5589115FD0D6209F510FE9C04566932CDA56").is_none());
        assert!(parse_chap2_success(b"\x01S=ZZ7A5589115FD0D6209F510FE9C04566932CDA56").is_none());
        assert!(parse_chap2_success(b"").is_none());
    }
}
