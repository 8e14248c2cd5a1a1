//! Stateless AC-Cookies: HMAC-SHA1 (RFC 2104) truncated to 128 bits, over the client's MAC
//! address, its Host-Uniq and a time window.
//!
//! HMAC is written out here over the workspace's `sha1` crate (a dozen lines) rather than pulling
//! in the `hmac` crate; it is checked against the RFC 2202 test vectors. SHA-1 is fine for a MAC
//! (HMAC-SHA1 needs no collision resistance) and the cookie only has to outlive one discovery.
//!
//! The key lives in a [`CookieKey`], which is zeroized when dropped and never printed; the padded
//! copy HMAC makes of it is zeroized after each use.

use core::fmt;

use ppp_core::Random;
use sha1::{Digest, Sha1};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::wire::MacAddr;

/// Bytes of the cookie key (the HMAC-SHA1 output size, as RFC 2104 recommends).
pub(crate) const KEY_LEN: usize = 20;

/// The access concentrator's cookie key: drawn from the injected [`Random`], zeroized on drop,
/// never cloned, never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct CookieKey([u8; KEY_LEN]);

impl CookieKey {
    /// A fresh key from `random` (filled in place: no copy of it is left behind).
    pub(crate) fn generate(random: &Random) -> Self {
        let mut key = CookieKey([0; KEY_LEN]);
        random.fill(&mut key.0);
        key
    }

    #[cfg(test)]
    pub(crate) fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        CookieKey(bytes)
    }

    #[cfg(test)]
    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CookieKey(..)")
    }
}

/// Length of a cookie on the wire.
pub const COOKIE_LEN: usize = 16;
const BLOCK: usize = 64;

/// HMAC-SHA1 of `parts` (concatenated) under `key`.
pub(crate) fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    let mut pad = [0u8; BLOCK];
    if key.len() > BLOCK {
        pad[..20].copy_from_slice(&Sha1::digest(key));
    } else {
        pad[..key.len()].copy_from_slice(key);
    }
    for byte in &mut pad {
        *byte ^= 0x36;
    }
    let mut inner = Sha1::new();
    inner.update(pad.as_slice());
    for part in parts {
        inner.update(part);
    }
    for byte in &mut pad {
        *byte ^= 0x36 ^ 0x5c;
    }
    let mut outer = Sha1::new();
    outer.update(pad.as_slice());
    pad.zeroize();
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The cookie for `client` with `host_uniq` in time window `window`.
pub(crate) fn make(
    key: &CookieKey,
    client: MacAddr,
    host_uniq: &[u8],
    window: u64,
) -> [u8; COOKIE_LEN] {
    let len = (host_uniq.len() as u64).to_be_bytes();
    let mac = hmac_sha1(&key.0, &[&client.0, &window.to_be_bytes(), &len, host_uniq]);
    let mut cookie = [0u8; COOKIE_LEN];
    cookie.copy_from_slice(&mac[..COOKIE_LEN]);
    cookie
}

/// Whether `cookie` is the one for `client`/`host_uniq` in `window` or the window before, compared
/// in constant time.
pub(crate) fn check(
    key: &CookieKey,
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
        let key = CookieKey::from_bytes([7u8; 20]);
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
        assert!(!check(
            &CookieKey::from_bytes([8u8; 20]),
            mac,
            b"uniq",
            10,
            &cookie
        ));
        assert!(!check(&key, mac, b"uniq", 10, &cookie[..15]));
    }

    #[test]
    fn the_key_is_random_zeroizable_and_secret() {
        fn zeroized_on_drop<T: ZeroizeOnDrop>() {}
        zeroized_on_drop::<CookieKey>();
        let a = CookieKey::generate(&Random::seeded(1));
        let b = CookieKey::generate(&Random::seeded(2));
        assert_ne!(a.bytes(), b.bytes());
        assert_eq!(
            CookieKey::generate(&Random::seeded(1)).bytes(),
            a.bytes(),
            "seeded keys replay"
        );
        let mut key = a;
        assert_ne!(key.bytes(), &[0; KEY_LEN]);
        key.zeroize();
        assert_eq!(key.bytes(), &[0; KEY_LEN]);
        assert_eq!(format!("{key:?}"), "CookieKey(..)");
    }
}
