//! Stateless AC-Cookies: HMAC-SHA1 (RFC 2104) truncated to 128 bits, over the client's MAC
//! address, its Host-Uniq and a time window.
//!
//! HMAC is written out here over the workspace's `sha1` crate (a dozen lines) rather than pulling
//! in the `hmac` crate; it is checked against the RFC 2202 test vectors. SHA-1 is fine for a MAC
//! (HMAC-SHA1 needs no collision resistance) and the cookie only has to outlive one discovery.

use sha1::{Digest, Sha1};

use crate::wire::MacAddr;

/// Length of a cookie on the wire.
pub const COOKIE_LEN: usize = 16;
const BLOCK: usize = 64;

/// HMAC-SHA1 of `parts` (concatenated) under `key`.
pub(crate) fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..20].copy_from_slice(&Sha1::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha1::new();
    inner.update(block.map(|b| b ^ 0x36));
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha1::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The cookie for `client` with `host_uniq` in time window `window`.
pub(crate) fn make(
    key: &[u8; 20],
    client: MacAddr,
    host_uniq: &[u8],
    window: u64,
) -> [u8; COOKIE_LEN] {
    let len = (host_uniq.len() as u64).to_be_bytes();
    let mac = hmac_sha1(key, &[&client.0, &window.to_be_bytes(), &len, host_uniq]);
    let mut cookie = [0u8; COOKIE_LEN];
    cookie.copy_from_slice(&mac[..COOKIE_LEN]);
    cookie
}

/// Whether `cookie` is the one for `client`/`host_uniq` in `window` or the window before, compared
/// in constant time.
pub(crate) fn check(
    key: &[u8; 20],
    client: MacAddr,
    host_uniq: &[u8],
    window: u64,
    cookie: &[u8],
) -> bool {
    if cookie.len() != COOKIE_LEN {
        return false;
    }
    let mut ok = false;
    for w in [Some(window), window.checked_sub(1)].into_iter().flatten() {
        let expected = make(key, client, host_uniq, w);
        let diff = expected
            .iter()
            .zip(cookie)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        ok |= diff == 0;
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rfc2202_vectors() {
        assert_eq!(
            hex(&hmac_sha1(&[0x0b; 20], &[b"Hi There"])),
            "b617318655057264e28bc0b6fb378c8ef146be00"
        );
        assert_eq!(
            hex(&hmac_sha1(b"Jefe", &[b"what do ya want ", b"for nothing?"])),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            hex(&hmac_sha1(
                &[0xaa; 80],
                &[b"Test Using Larger Than Block-Size Key - Hash Key First"]
            )),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112"
        );
    }

    #[test]
    fn cookie_windows() {
        let key = [7u8; 20];
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let cookie = make(&key, mac, b"uniq", 10);
        assert!(check(&key, mac, b"uniq", 10, &cookie));
        assert!(check(&key, mac, b"uniq", 11, &cookie));
        assert!(!check(&key, mac, b"uniq", 12, &cookie));
        assert!(!check(&key, mac, b"other", 10, &cookie));
        assert!(!check(
            &key,
            MacAddr([2, 0, 0, 0, 0, 2]),
            b"uniq",
            10,
            &cookie
        ));
        assert!(!check(&[8u8; 20], mac, b"uniq", 10, &cookie));
        assert!(!check(&key, mac, b"uniq", 10, &cookie[..15]));
    }
}
