//! The hash functions of CHAP-MD5 (RFC 1994), MS-CHAP (RFC 2433) and MS-CHAP-V2 (RFC 2759), as
//! pure functions. The names follow the RFCs' pseudo-code.

use des::Des;
use des::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use md4::Md4;
use md5::Md5;
use sha1::{Digest, Sha1};
use zeroize::Zeroizing;

/// CHAP-MD5 response (RFC 1994 §4.1): `MD5(Identifier ‖ secret ‖ challenge)`.
pub fn chap_md5_response(id: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update([id]);
    md5.update(secret);
    md5.update(challenge);
    md5.finalize().into()
}

/// The password as UTF-16LE, as NtPasswordHash wants it. A password that is not UTF-8 is taken
/// byte by byte (Latin-1), as pppd does.
fn utf16le(password: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(password.len() * 2));
    match std::str::from_utf8(password) {
        Ok(s) => s
            .encode_utf16()
            .for_each(|u| out.extend_from_slice(&u.to_le_bytes())),
        Err(_) => password
            .iter()
            .for_each(|&b| out.extend_from_slice(&[b, 0])),
    }
    out
}

/// NtPasswordHash (RFC 2759 §8.3): MD4 of the UTF-16LE password.
pub fn nt_password_hash(password: &[u8]) -> [u8; 16] {
    Md4::digest(&*utf16le(password)).into()
}

/// HashNtPasswordHash (RFC 2759 §8.4): MD4 of the password hash ("PasswordHashHash").
pub fn hash_nt_password_hash(password_hash: &[u8; 16]) -> [u8; 16] {
    Md4::digest(password_hash).into()
}

/// Expands 7 key bytes to the 8-byte DES key (the parity bits are ignored by DES).
fn des_key(seven: &[u8]) -> [u8; 8] {
    let k = |i: usize| u64::from(seven.get(i).copied().unwrap_or(0));
    let bits = (0..7).fold(0u64, |acc, i| (acc << 8) | k(i));
    let mut key = [0u8; 8];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = (((bits >> (49 - 7 * i)) & 0x7f) as u8) << 1;
    }
    key
}

fn des_encrypt(clear: &[u8; 8], seven: &[u8]) -> [u8; 8] {
    let key = Zeroizing::new(des_key(seven));
    let cipher = Des::new(GenericArray::from_slice(&*key));
    let mut block = GenericArray::clone_from_slice(clear);
    cipher.encrypt_block(&mut block);
    block.into()
}

/// ChallengeResponse (RFC 2759 §8.5): the 8-byte challenge DES-encrypted with each third of the
/// zero-padded 21-byte password hash.
pub fn challenge_response(challenge: &[u8; 8], password_hash: &[u8; 16]) -> [u8; 24] {
    let mut z = Zeroizing::new([0u8; 21]);
    z[..16].copy_from_slice(password_hash);
    let mut out = [0u8; 24];
    for i in 0..3 {
        out[i * 8..i * 8 + 8].copy_from_slice(&des_encrypt(challenge, &z[i * 7..i * 7 + 7]));
    }
    out
}

/// The user name MS-CHAP-V2 hashes: without any `DOMAIN\` prefix (RFC 2759 §8.2).
pub fn strip_domain(user: &[u8]) -> &[u8] {
    match user.iter().rposition(|&c| c == b'\\') {
        Some(i) => &user[i + 1..],
        None => user,
    }
}

/// ChallengeHash (RFC 2759 §8.2): the first 8 bytes of
/// `SHA1(PeerChallenge ‖ AuthenticatorChallenge ‖ UserName)`. `user` is used as given (see
/// [`strip_domain`]).
pub fn challenge_hash(
    peer_challenge: &[u8; 16],
    authenticator_challenge: &[u8; 16],
    user: &[u8],
) -> [u8; 8] {
    let digest = Sha1::new()
        .chain_update(peer_challenge)
        .chain_update(authenticator_challenge)
        .chain_update(user)
        .finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// GenerateNTResponse (RFC 2759 §8.1): the MS-CHAP-V2 NT-Response.
pub fn generate_nt_response_v2(
    authenticator_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
    user: &[u8],
    password: &[u8],
) -> [u8; 24] {
    let hash = Zeroizing::new(nt_password_hash(password));
    challenge_response(
        &challenge_hash(peer_challenge, authenticator_challenge, user),
        &hash,
    )
}

/// NtChallengeResponse (RFC 2433 §A.5): the MS-CHAP (v1) NT response.
pub fn nt_challenge_response_v1(challenge: &[u8; 8], password: &[u8]) -> [u8; 24] {
    let hash = Zeroizing::new(nt_password_hash(password));
    challenge_response(challenge, &hash)
}

const MAGIC1: &[u8; 39] = b"Magic server to client signing constant";
const MAGIC2: &[u8; 41] = b"Pad to make it do more than one iteration";

/// GenerateAuthenticatorResponse (RFC 2759 §8.7): the 20 bytes the authenticator proves itself
/// with; [`authenticator_response_text`] gives the `S=` form.
pub fn generate_authenticator_response(
    password: &[u8],
    nt_response: &[u8; 24],
    peer_challenge: &[u8; 16],
    authenticator_challenge: &[u8; 16],
    user: &[u8],
) -> [u8; 20] {
    let hash_hash = Zeroizing::new(hash_nt_password_hash(&nt_password_hash(password)));
    let digest = Sha1::new()
        .chain_update(*hash_hash)
        .chain_update(nt_response)
        .chain_update(MAGIC1)
        .finalize();
    let challenge = challenge_hash(peer_challenge, authenticator_challenge, user);
    Sha1::new()
        .chain_update(digest)
        .chain_update(challenge)
        .chain_update(MAGIC2)
        .finalize()
        .into()
}

/// `S=` followed by 40 uppercase hex digits (RFC 2759 §5).
pub fn authenticator_response_text(response: &[u8; 20]) -> String {
    let mut s = String::with_capacity(42);
    s.push_str("S=");
    s.push_str(&hex_upper(response));
    s
}

pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes hex (either case); `None` if the length is odd or a digit is bad.
pub(crate) fn from_hex(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        from_hex(s.as_bytes()).expect("test hex")
    }

    pub(crate) fn arr<const N: usize>(s: &str) -> [u8; N] {
        hex(s).try_into().expect("test hex length")
    }

    #[test]
    fn chap_md5_vector() {
        let challenge: Vec<u8> = (0u8..16).collect();
        assert_eq!(
            chap_md5_response(1, b"secret", &challenge),
            arr::<16>("740E86463BDA3A4D7017D6E0FBA0699D")
        );
    }

    /// RFC 2759 §9.2.
    #[test]
    fn mschap_v2_vectors() {
        let auth = arr::<16>("5B5D7C7D7B3F2F3E3C2C602132262628");
        let peer = arr::<16>("21402324255E262A28295F2B3A337C7E");
        assert_eq!(
            challenge_hash(&peer, &auth, b"User"),
            arr::<8>("D02E4386BCE91226")
        );
        let hash = nt_password_hash(b"clientPass");
        assert_eq!(hash, arr::<16>("44EBBA8D5312B8D611474411F56989AE"));
        assert_eq!(
            hash_nt_password_hash(&hash),
            arr::<16>("41C00C584BD2D91C4017A2A12FA59F3F")
        );
        let nt = generate_nt_response_v2(&auth, &peer, b"User", b"clientPass");
        assert_eq!(
            nt,
            arr::<24>("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
        );
        let s = generate_authenticator_response(b"clientPass", &nt, &peer, &auth, b"User");
        assert_eq!(
            authenticator_response_text(&s),
            "S=407A5589115FD0D6209F510FE9C04566932CDA56"
        );
    }

    /// RFC 2433 B.2.
    #[test]
    fn mschap_v1_vectors() {
        assert_eq!(
            nt_password_hash(b"MyPw"),
            arr::<16>("FC156AF7EDCD6C0EDDE3337D427F4EAC")
        );
        assert_eq!(
            nt_challenge_response_v1(&arr::<8>("102DB5DF085D3041"), b"MyPw"),
            arr::<24>("4E9D3C8F9CFD385D5BF4D3246791956CA4C351AB409A3D61")
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(strip_domain(b"CORP\\alice"), b"alice");
        assert_eq!(strip_domain(b"alice"), b"alice");
        assert_eq!(from_hex(b"0aFf"), Some(vec![0x0a, 0xff]));
        assert_eq!(from_hex(b"0aF"), None);
        assert_eq!(from_hex(b"zz"), None);
        assert_eq!(hex_lower(&[0xab, 1]), "ab01");
        // Non-UTF-8 passwords are taken as Latin-1, like pppd.
        assert_eq!(nt_password_hash(&[0xe9]), nt_password_hash("é".as_bytes()));
    }
}
