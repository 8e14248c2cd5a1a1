//! The shared-secret cryptography of RADIUS: User-Password hiding (RFC 2865 §5.2), the
//! salt-encrypted MPPE keys (RFC 2548 §2.4.2), Message-Authenticator (RFC 3579 §3.2), Request
//! and Response Authenticators (RFC 2865 §3, RFC 2866 §3, RFC 5176 §3).
//!
//! All comparisons of authenticators are constant time. The [`Secret`] type is `ppp-auth`'s:
//! zeroized on drop, `Debug` prints `Secret(***)`.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::RadiusError;
use crate::attribute::AttributeType;
use crate::packet::{HEADER_LEN, attribute_spans, checked_body};

pub use ppp_auth::Secret;

/// Why a packet's authenticity could not be established: it is dropped, counted, and never
/// trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum AuthenticityError {
    /// The packet does not parse.
    #[error("malformed packet")]
    Malformed,
    /// The Request or Response Authenticator is not what the shared secret gives.
    #[error("wrong authenticator")]
    BadAuthenticator,
    /// No Message-Authenticator where one is required (RFC 3579, Blast-RADIUS).
    #[error("missing Message-Authenticator")]
    MissingMessageAuthenticator,
    /// The Message-Authenticator is wrong, not 16 bytes, or there are several.
    #[error("wrong Message-Authenticator")]
    BadMessageAuthenticator,
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// XORs `data` (a multiple of 16 bytes) with the RFC 2865 §5.2 keystream: block 1 with
/// `MD5(secret ‖ first)`, block i with `MD5(secret ‖ c(i-1))` where c is the ciphertext.
fn keystream(data: &mut [u8], secret: &Secret, first: &[&[u8]], encrypt: bool) {
    let mut previous: Vec<u8> = first.concat();
    for block in data.chunks_mut(16) {
        let key = Zeroizing::new(md5(&[secret.expose(), &previous]));
        let cipher: Vec<u8> = if encrypt {
            block.iter_mut().zip(key.iter()).for_each(|(b, k)| *b ^= k);
            block.to_vec()
        } else {
            let c = block.to_vec();
            block.iter_mut().zip(key.iter()).for_each(|(b, k)| *b ^= k);
            c
        };
        previous = cipher;
    }
}

/// Hides a password for User-Password (RFC 2865 §5.2) with the Request Authenticator: padded
/// with zeros to a multiple of 16 bytes.
///
/// # Errors
///
/// [`RadiusError::BadValue`] when the password is longer than 128 bytes.
pub fn hide_password(
    password: &[u8],
    secret: &Secret,
    authenticator: &[u8; 16],
) -> Result<Vec<u8>, RadiusError> {
    if password.len() > 128 {
        return Err(RadiusError::BadValue {
            kind: AttributeType::USER_PASSWORD,
            problem: "password longer than 128 bytes",
        });
    }
    let mut out = password.to_vec();
    out.resize(password.len().div_ceil(16).max(1) * 16, 0);
    keystream(&mut out, secret, &[authenticator], true);
    Ok(out)
}

/// Recovers a hidden User-Password (trailing zero padding removed).
///
/// # Errors
///
/// [`RadiusError::BadValue`] when the value is not a multiple of 16 bytes (16..=128).
pub fn unhide_password(
    hidden: &[u8],
    secret: &Secret,
    authenticator: &[u8; 16],
) -> Result<Secret, RadiusError> {
    if hidden.is_empty() || !hidden.len().is_multiple_of(16) || hidden.len() > 128 {
        return Err(RadiusError::BadValue {
            kind: AttributeType::USER_PASSWORD,
            problem: "hidden password is not 16..=128 bytes in blocks of 16",
        });
    }
    let mut out = Zeroizing::new(hidden.to_vec());
    keystream(&mut out, secret, &[authenticator], false);
    let end = out.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    Ok(Secret::new(&out[..end]))
}

/// Decrypts a value hidden as User-Password is (MS-CHAP-MPPE-Keys, RFC 2548 §2.4.1), keeping
/// every byte (no padding removed); `None` unless it is a non-empty multiple of 16 bytes.
pub fn unhide_blocks(
    hidden: &[u8],
    secret: &Secret,
    authenticator: &[u8; 16],
) -> Option<Zeroizing<Vec<u8>>> {
    if hidden.is_empty() || !hidden.len().is_multiple_of(16) {
        return None;
    }
    let mut out = Zeroizing::new(hidden.to_vec());
    keystream(&mut out, secret, &[authenticator], false);
    Some(out)
}

/// Encrypts a key for MS-MPPE-Send-Key / MS-MPPE-Recv-Key (RFC 2548 §2.4.2): the result is the
/// 2-byte salt (its high bit set here) then `Key-Length ‖ Key ‖ padding` encrypted with
/// `MD5(secret ‖ Request-Authenticator ‖ salt)` and chained as User-Password.
pub fn encrypt_salted(
    key: &[u8],
    secret: &Secret,
    request_authenticator: &[u8; 16],
    salt: [u8; 2],
) -> Vec<u8> {
    let salt = [salt[0] | 0x80, salt[1]];
    let mut plain = Zeroizing::new(Vec::with_capacity(1 + key.len() + 15));
    plain.push(u8::try_from(key.len()).unwrap_or(u8::MAX));
    plain.extend_from_slice(key);
    let padded = plain.len().div_ceil(16) * 16;
    plain.resize(padded, 0);
    keystream(&mut plain, secret, &[request_authenticator, &salt], true);
    let mut out = salt.to_vec();
    out.extend_from_slice(&plain);
    out
}

/// Decrypts an MS-MPPE-Send-Key / MS-MPPE-Recv-Key value (RFC 2548 §2.4.2): the key, without
/// its length byte and padding.
///
/// # Errors
///
/// [`RadiusError::BadVendorValue`] when the value is malformed: no salt, salt without its
/// high bit, not a multiple of 16 bytes, or a Key-Length past the end.
pub fn decrypt_salted(
    value: &[u8],
    secret: &Secret,
    request_authenticator: &[u8; 16],
    vendor_type: u8,
) -> Result<Zeroizing<Vec<u8>>, RadiusError> {
    let bad = |problem| RadiusError::BadVendorValue {
        vendor: crate::attribute::VENDOR_MICROSOFT,
        kind: vendor_type,
        problem,
    };
    let Some((salt, cipher)) = value.split_first_chunk::<2>() else {
        return Err(bad("no salt"));
    };
    if salt[0] & 0x80 == 0 {
        return Err(bad("salt without its high bit"));
    }
    if cipher.is_empty() || !cipher.len().is_multiple_of(16) {
        return Err(bad("encrypted key is not a multiple of 16 bytes"));
    }
    let mut plain = Zeroizing::new(cipher.to_vec());
    keystream(&mut plain, secret, &[request_authenticator, salt], false);
    let len = usize::from(plain[0]);
    if len + 1 > plain.len() {
        return Err(bad("key length past the end"));
    }
    Ok(Zeroizing::new(plain[1..=len].to_vec()))
}

/// The HMAC-MD5 Message-Authenticator (RFC 3579 §3.2) over `bytes` as given (the caller has
/// zeroed the attribute's value and put the right Authenticator in the header).
pub fn hmac_md5(bytes: &[u8], secret: &Secret) -> [u8; 16] {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Md5> as Mac>::new_from_slice(secret.expose())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(bytes);
    mac.finalize().into_bytes().into()
}

/// Where the Message-Authenticator's 16-byte value is in `bytes`, if there is one.
fn find_message_authenticator(bytes: &[u8]) -> Result<Option<usize>, AuthenticityError> {
    let body = checked_body(bytes).map_err(|_| AuthenticityError::Malformed)?;
    let mut found = None;
    for span in attribute_spans(body) {
        let (offset, kind, value) = span.map_err(|_| AuthenticityError::Malformed)?;
        if AttributeType(kind) == AttributeType::MESSAGE_AUTHENTICATOR {
            if value.len() != 16 || found.is_some() {
                return Err(AuthenticityError::BadMessageAuthenticator);
            }
            found = Some(HEADER_LEN + offset + 2);
        }
    }
    Ok(found)
}

/// The length that counts (the Length field); callers have checked it.
fn packet_len(bytes: &[u8]) -> usize {
    usize::from(u16::from_be_bytes([bytes[2], bytes[3]])).min(bytes.len())
}

/// Computes the Message-Authenticator into its attribute, with `header_authenticator` in the
/// Authenticator field while hashing; leaves the Authenticator field as it was.
fn fill_message_authenticator(bytes: &mut [u8], secret: &Secret, header_authenticator: [u8; 16]) {
    let Ok(Some(at)) = find_message_authenticator(bytes) else {
        return;
    };
    let len = packet_len(bytes);
    let saved: [u8; 16] = bytes[4..20].try_into().unwrap_or([0; 16]);
    bytes[4..20].copy_from_slice(&header_authenticator);
    bytes[at..at + 16].fill(0);
    let mac = hmac_md5(&bytes[..len], secret);
    bytes[at..at + 16].copy_from_slice(&mac);
    bytes[4..20].copy_from_slice(&saved);
}

/// Signs an encoded Access-Request (or Status-Server) whose Authenticator is already the
/// random Request Authenticator: fills the Message-Authenticator attribute, if present.
pub fn sign_access_request(bytes: &mut [u8], secret: &Secret) {
    let authenticator: [u8; 16] = bytes
        .get(4..20)
        .and_then(|a| a.try_into().ok())
        .unwrap_or([0; 16]);
    fill_message_authenticator(bytes, secret, authenticator);
}

/// Signs an encoded Accounting-Request, Disconnect-Request or CoA-Request: the
/// Message-Authenticator (if present) over the packet with a zero Authenticator, then the
/// Request Authenticator `MD5(packet with zero Authenticator ‖ secret)` (RFC 2866 §3, RFC 5176
/// §3.2).
pub fn sign_request(bytes: &mut [u8], secret: &Secret) {
    if checked_body(bytes).is_err() {
        return;
    }
    fill_message_authenticator(bytes, secret, [0; 16]);
    let len = packet_len(bytes);
    bytes[4..20].fill(0);
    let auth = md5(&[&bytes[..len], secret.expose()]);
    bytes[4..20].copy_from_slice(&auth);
}

/// Signs an encoded answer (Access-Accept/Reject/Challenge, Accounting-Response, CoA and
/// Disconnect ACK/NAK) to a request whose Authenticator was `request_authenticator`: the
/// Message-Authenticator (if present), then the Response Authenticator
/// `MD5(Code ‖ Identifier ‖ Length ‖ Request Authenticator ‖ attributes ‖ secret)`.
pub fn sign_response(bytes: &mut [u8], request_authenticator: &[u8; 16], secret: &Secret) {
    if checked_body(bytes).is_err() {
        return;
    }
    fill_message_authenticator(bytes, secret, *request_authenticator);
    let len = packet_len(bytes);
    bytes[4..20].copy_from_slice(request_authenticator);
    let auth = md5(&[&bytes[..len], secret.expose()]);
    bytes[4..20].copy_from_slice(&auth);
}

/// Checks the Message-Authenticator of `bytes` with `header_authenticator` in the header.
fn check_message_authenticator(
    bytes: &[u8],
    secret: &Secret,
    header_authenticator: &[u8; 16],
    required: bool,
) -> Result<(), AuthenticityError> {
    let Some(at) = find_message_authenticator(bytes)? else {
        return if required {
            Err(AuthenticityError::MissingMessageAuthenticator)
        } else {
            Ok(())
        };
    };
    let len = packet_len(bytes);
    let mut copy = Zeroizing::new(bytes[..len].to_vec());
    copy[4..20].copy_from_slice(header_authenticator);
    copy[at..at + 16].fill(0);
    let expected = hmac_md5(&copy, secret);
    if bool::from(expected.ct_eq(&bytes[at..at + 16])) {
        Ok(())
    } else {
        Err(AuthenticityError::BadMessageAuthenticator)
    }
}

/// Verifies an answer to a request whose Authenticator was `request_authenticator`: the
/// Response Authenticator, then the Message-Authenticator (which must be present when
/// `require_message_authenticator`).
///
/// # Errors
///
/// The [`AuthenticityError`] that makes the answer untrustworthy.
pub fn verify_response(
    bytes: &[u8],
    request_authenticator: &[u8; 16],
    secret: &Secret,
    require_message_authenticator: bool,
) -> Result<(), AuthenticityError> {
    checked_body(bytes).map_err(|_| AuthenticityError::Malformed)?;
    let len = packet_len(bytes);
    let expected = md5(&[
        &bytes[..4],
        request_authenticator,
        &bytes[HEADER_LEN..len],
        secret.expose(),
    ]);
    if !bool::from(expected.ct_eq(&bytes[4..20])) {
        return Err(AuthenticityError::BadAuthenticator);
    }
    check_message_authenticator(
        bytes,
        secret,
        request_authenticator,
        require_message_authenticator,
    )
}

/// Verifies an Accounting-Request, Disconnect-Request or CoA-Request: the Request
/// Authenticator, then the Message-Authenticator (required when
/// `require_message_authenticator`).
///
/// # Errors
///
/// The [`AuthenticityError`] that makes the request untrustworthy.
pub fn verify_request(
    bytes: &[u8],
    secret: &Secret,
    require_message_authenticator: bool,
) -> Result<(), AuthenticityError> {
    checked_body(bytes).map_err(|_| AuthenticityError::Malformed)?;
    let len = packet_len(bytes);
    let expected = md5(&[
        &bytes[..4],
        &[0; 16],
        &bytes[HEADER_LEN..len],
        secret.expose(),
    ]);
    if !bool::from(expected.ct_eq(&bytes[4..20])) {
        return Err(AuthenticityError::BadAuthenticator);
    }
    check_message_authenticator(bytes, secret, &[0; 16], require_message_authenticator)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::Attribute;
    use crate::packet::tests::{RFC2865_PAP_ACCEPT, RFC2865_PAP_REQUEST, hex};
    use crate::packet::{Code, Packet};
    use proptest::prelude::*;

    fn secret() -> Secret {
        Secret::from("xyzzy5461")
    }

    /// RFC 2865 §7.1: the password "arctangent" hidden with the request's authenticator.
    #[test]
    fn rfc2865_user_password() {
        let request = Packet::parse(&hex(RFC2865_PAP_REQUEST)).unwrap();
        let hidden = &request.get(AttributeType::USER_PASSWORD).unwrap().value;
        let password = unhide_password(hidden, &secret(), &request.authenticator).unwrap();
        assert_eq!(password.expose(), b"arctangent");
        assert_eq!(
            hide_password(b"arctangent", &secret(), &request.authenticator).unwrap(),
            *hidden
        );
    }

    /// RFC 2865 §7.1: the Access-Accept's Response Authenticator.
    #[test]
    fn rfc2865_response_authenticator() {
        let request = Packet::parse(&hex(RFC2865_PAP_REQUEST)).unwrap();
        let accept = hex(RFC2865_PAP_ACCEPT);
        assert_eq!(
            verify_response(&accept, &request.authenticator, &secret(), false),
            Ok(())
        );
        assert_eq!(
            verify_response(&accept, &request.authenticator, &secret(), true),
            Err(AuthenticityError::MissingMessageAuthenticator)
        );
        assert_eq!(
            verify_response(&accept, &request.authenticator, &Secret::from("x"), false),
            Err(AuthenticityError::BadAuthenticator)
        );
        // Signing the parsed answer again gives the same bytes.
        let mut again = Packet::parse(&accept).unwrap().to_bytes().unwrap();
        again[4..20].fill(0);
        sign_response(&mut again, &request.authenticator, &secret());
        assert_eq!(again, accept);
    }

    /// RFC 2548 §2.4.2 keys: encrypt then decrypt, and a tampered value fails or differs.
    #[test]
    fn rfc2548_salted_key_round_trip() {
        let auth = [7u8; 16];
        let key = [0x5au8; 16];
        let value = encrypt_salted(&key, &secret(), &auth, [0x12, 0x34]);
        assert_eq!(value.len(), 2 + 32);
        assert_eq!(value[0], 0x92);
        let got = decrypt_salted(&value, &secret(), &auth, 16).unwrap();
        assert_eq!(&got[..], &key);
        assert!(decrypt_salted(&value[..5], &secret(), &auth, 16).is_err());
        let mut no_high = value.clone();
        no_high[0] &= 0x7f;
        assert!(decrypt_salted(&no_high, &secret(), &auth, 16).is_err());
        let other = decrypt_salted(&value, &Secret::from("other"), &auth, 16);
        assert!(other.map(|k| k[..] != key).unwrap_or(true));
    }

    /// RFC 3579 §3.2: Message-Authenticator on an Access-Request, signed and checked; the
    /// answer's computed over the request's authenticator.
    #[test]
    fn rfc3579_message_authenticator() {
        let mut request = Packet::new(Code::ACCESS_REQUEST, 9);
        request.authenticator = [3; 16];
        request.push(Attribute::text(AttributeType::USER_NAME, "alice"));
        request.push(Attribute::new(
            AttributeType::MESSAGE_AUTHENTICATOR,
            [0; 16],
        ));
        let mut bytes = request.to_bytes().unwrap();
        sign_access_request(&mut bytes, &secret());
        let at = bytes.len() - 16;
        let mut zeroed = bytes.clone();
        zeroed[at..].fill(0);
        assert_eq!(bytes[at..], hmac_md5(&zeroed, &secret()));

        let mut answer = Packet::new(Code::ACCESS_ACCEPT, 9);
        answer.push(Attribute::new(
            AttributeType::MESSAGE_AUTHENTICATOR,
            [0; 16],
        ));
        let mut bytes = answer.to_bytes().unwrap();
        sign_response(&mut bytes, &[3; 16], &secret());
        assert_eq!(verify_response(&bytes, &[3; 16], &secret(), true), Ok(()));
        // A forged Message-Authenticator with a correct Response Authenticator (what
        // Blast-RADIUS produces by an MD5 collision) is caught.
        let mut forged = bytes.clone();
        forged[22] ^= 1;
        let len = forged.len();
        forged[4..20].copy_from_slice(&[3; 16]);
        let auth = md5(&[&forged[..len], secret().expose()]);
        forged[4..20].copy_from_slice(&auth);
        assert_eq!(
            verify_response(&forged, &[3; 16], &secret(), true),
            Err(AuthenticityError::BadMessageAuthenticator)
        );
        // Two of them are refused.
        let mut twice = answer.clone();
        twice.push(Attribute::new(
            AttributeType::MESSAGE_AUTHENTICATOR,
            [0; 16],
        ));
        let mut bytes = twice.to_bytes().unwrap();
        sign_response(&mut bytes, &[3; 16], &secret());
        assert_eq!(
            verify_response(&bytes, &[3; 16], &secret(), true),
            Err(AuthenticityError::BadMessageAuthenticator)
        );
    }

    #[test]
    fn request_authenticators() {
        let mut request = Packet::new(Code::COA_REQUEST, 1);
        request.push(Attribute::text(AttributeType::ACCT_SESSION_ID, "abc"));
        request.push(Attribute::new(
            AttributeType::MESSAGE_AUTHENTICATOR,
            [0; 16],
        ));
        let mut bytes = request.to_bytes().unwrap();
        sign_request(&mut bytes, &secret());
        assert_eq!(verify_request(&bytes, &secret(), true), Ok(()));
        assert_eq!(
            verify_request(&bytes, &Secret::from("wrong"), true),
            Err(AuthenticityError::BadAuthenticator)
        );
        let mut tampered = bytes.clone();
        tampered[23] ^= 1;
        assert_eq!(
            verify_request(&tampered, &secret(), false),
            Err(AuthenticityError::BadAuthenticator)
        );
        assert_eq!(
            verify_request(&[0; 5], &secret(), false),
            Err(AuthenticityError::Malformed)
        );
    }

    proptest! {
        #[test]
        fn password_round_trip(password in proptest::collection::vec(1u8.., 0..=128), auth in any::<[u8; 16]>()) {
            let hidden = hide_password(&password, &secret(), &auth).unwrap();
            prop_assert_eq!(hidden.len() % 16, 0);
            let back = unhide_password(&hidden, &secret(), &auth).unwrap();
            prop_assert_eq!(back.expose(), &password[..]);
        }

        #[test]
        fn salted_round_trip(key in proptest::collection::vec(any::<u8>(), 0..=64), auth in any::<[u8; 16]>(), salt in any::<[u8; 2]>()) {
            let value = encrypt_salted(&key, &secret(), &auth, salt);
            let back = decrypt_salted(&value, &secret(), &auth, 16).unwrap();
            prop_assert_eq!(&back[..], &key[..]);
        }

        #[test]
        fn verification_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), auth in any::<[u8; 16]>()) {
            let _ = verify_response(&bytes, &auth, &secret(), true);
            let _ = verify_request(&bytes, &secret(), true);
        }
    }
}
