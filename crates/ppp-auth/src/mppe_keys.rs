//! MPPE key derivation from MS-CHAP material (RFC 3079 §2 and §3), as pure functions. CCP/MPPE
//! itself lives elsewhere; the machines expose [`MsChapKeyMaterial`] after success.

use sha1::{Digest, Sha1};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::hash_nt_password_hash;

/// An MPPE session key length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MppeKeyLength {
    /// 40-bit keys (8 bytes, the first 3 salted).
    Bits40,
    /// 56-bit keys (8 bytes, the first salted).
    Bits56,
    /// 128-bit keys (16 bytes).
    Bits128,
}

impl MppeKeyLength {
    /// The key length in bytes (8 or 16).
    pub const fn bytes(self) -> usize {
        match self {
            MppeKeyLength::Bits40 | MppeKeyLength::Bits56 => 8,
            MppeKeyLength::Bits128 => 16,
        }
    }
}

const SHS_PAD1: [u8; 40] = [0; 40];
const SHS_PAD2: [u8; 40] = [0xF2; 40];
const MASTER_MAGIC: &[u8; 27] = b"This is the MPPE Master Key";
const CLIENT_SEND_MAGIC: &[u8; 84] =
    b"On the client side, this is the send key; on the server side, it is the receive key.";
const CLIENT_RECEIVE_MAGIC: &[u8; 84] =
    b"On the client side, this is the receive key; on the server side, it is the send key.";

/// GetMasterKey (RFC 3079 §3.4): the first 16 bytes of
/// `SHA1(PasswordHashHash ‖ NT-Response ‖ "This is the MPPE Master Key")`.
pub fn get_master_key(password_hash_hash: &[u8; 16], nt_response: &[u8; 24]) -> [u8; 16] {
    let digest = Sha1::new()
        .chain_update(password_hash_hash)
        .chain_update(nt_response)
        .chain_update(MASTER_MAGIC)
        .finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// GetAsymmetricStartKey (RFC 3079 §3.4): the start key for one direction, 16 bytes (use the
/// first [`MppeKeyLength::bytes`] of it). `is_send` and `is_server` say whose key for which
/// direction: the client's send key is the server's receive key.
pub fn get_asymmetric_start_key(master_key: &[u8; 16], is_send: bool, is_server: bool) -> [u8; 16] {
    let magic = if is_send == is_server {
        CLIENT_RECEIVE_MAGIC
    } else {
        CLIENT_SEND_MAGIC
    };
    let digest = Sha1::new()
        .chain_update(master_key)
        .chain_update(SHS_PAD1)
        .chain_update(magic)
        .chain_update(SHS_PAD2)
        .finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// GetNewKeyFromSHA (RFC 3079 §2.4/§3.4): the first `length` bytes of
/// `SHA1(StartKey[..length] ‖ Pad1 ‖ SessionKey[..length] ‖ Pad2)`, in a 16-byte array
/// (bytes past `length` are zero).
pub fn get_new_key_from_sha(
    start_key: &[u8; 16],
    session_key: &[u8; 16],
    length: MppeKeyLength,
) -> [u8; 16] {
    let n = length.bytes();
    let digest = Sha1::new()
        .chain_update(&start_key[..n])
        .chain_update(SHS_PAD1)
        .chain_update(&session_key[..n])
        .chain_update(SHS_PAD2)
        .finalize();
    let mut key = [0u8; 16];
    key[..n].copy_from_slice(&digest[..n]);
    key
}

/// The salt of reduced-strength keys (RFC 3079 §2.1, §2.2): 40-bit keys start D1 26 9E, 56-bit
/// keys start D1. 128-bit keys are unchanged.
pub fn reduce_session_key(key: &mut [u8; 16], length: MppeKeyLength) {
    match length {
        MppeKeyLength::Bits40 => key[..3].copy_from_slice(&[0xD1, 0x26, 0x9E]),
        MppeKeyLength::Bits56 => key[0] = 0xD1,
        MppeKeyLength::Bits128 => {}
    }
}

/// The first session key MPPE encrypts with (RFC 3079 §2.1-2.3 and §3.1-3.3):
/// GetNewKeyFromSHA of the start key with itself, then salted for 40/56 bits. The first
/// `length.bytes()` bytes are the key. (RFC 3079 calls the MS-CHAP v1 start key the "initial
/// session key"; this function is the step after it.)
pub fn initial_session_key(start_key: &[u8; 16], length: MppeKeyLength) -> [u8; 16] {
    let mut key = get_new_key_from_sha(start_key, start_key, length);
    reduce_session_key(&mut key, length);
    key
}

/// The MS-CHAP (v1) start key as pppd derives it for MPPE: the first 16 bytes of
/// `SHA1(PasswordHashHash ‖ PasswordHashHash ‖ Challenge)` (RFC 3079 §2.4 GetStartKey for
/// 128 bits; pppd uses it for 40 bits too, taking the first 8 bytes).
pub fn mschap_v1_start_key(password_hash_hash: &[u8; 16], challenge: &[u8; 8]) -> [u8; 16] {
    let digest = Sha1::new()
        .chain_update(password_hash_hash)
        .chain_update(password_hash_hash)
        .chain_update(challenge)
        .finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// The MS-CHAP material MPPE needs, from a successful MS-CHAP or MS-CHAP-V2 exchange. Zeroized on
/// drop; its `Debug` shows nothing of the keys.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct MsChapKeyMaterial {
    /// The MS-CHAP version: 1 or 2.
    pub version: u8,
    /// HashNtPasswordHash of the password.
    pub password_hash_hash: [u8; 16],
    /// The 24-byte NT-Response the peer sent.
    pub nt_response: [u8; 24],
    /// The authenticator's challenge (8 bytes for v1, 16 for v2; v1 uses the first 8).
    pub authenticator_challenge: [u8; 16],
    /// Whether we are the server (the authenticator).
    pub is_server: bool,
}

impl std::fmt::Debug for MsChapKeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsChapKeyMaterial")
            .field("version", &self.version)
            .field("is_server", &self.is_server)
            .finish_non_exhaustive()
    }
}

impl MsChapKeyMaterial {
    /// Material for MS-CHAP-V2 from the password, the NT-Response and the challenge.
    pub fn new_v2(
        password: &[u8],
        nt_response: [u8; 24],
        authenticator_challenge: [u8; 16],
        is_server: bool,
    ) -> Self {
        let hash = zeroize::Zeroizing::new(crate::crypto::nt_password_hash(password));
        MsChapKeyMaterial {
            version: 2,
            password_hash_hash: hash_nt_password_hash(&hash),
            nt_response,
            authenticator_challenge,
            is_server,
        }
    }

    /// Material for MS-CHAP (v1).
    pub fn new_v1(
        password: &[u8],
        nt_response: [u8; 24],
        challenge: [u8; 8],
        is_server: bool,
    ) -> Self {
        let hash = zeroize::Zeroizing::new(crate::crypto::nt_password_hash(password));
        let mut authenticator_challenge = [0u8; 16];
        authenticator_challenge[..8].copy_from_slice(&challenge);
        MsChapKeyMaterial {
            version: 1,
            password_hash_hash: hash_nt_password_hash(&hash),
            nt_response,
            authenticator_challenge,
            is_server,
        }
    }

    /// The MasterKey (v2, RFC 3079 §3.4); for v1 the pppd start key of
    /// [`mschap_v1_start_key`].
    pub fn master_key(&self) -> [u8; 16] {
        if self.version == 1 {
            let mut challenge = [0u8; 8];
            challenge.copy_from_slice(&self.authenticator_challenge[..8]);
            mschap_v1_start_key(&self.password_hash_hash, &challenge)
        } else {
            get_master_key(&self.password_hash_hash, &self.nt_response)
        }
    }

    /// Our (send, receive) start keys. For v1 both directions use the same key.
    pub fn start_keys(&self) -> ([u8; 16], [u8; 16]) {
        let master = zeroize::Zeroizing::new(self.master_key());
        if self.version == 1 {
            return (*master, *master);
        }
        (
            get_asymmetric_start_key(&master, true, self.is_server),
            get_asymmetric_start_key(&master, false, self.is_server),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::tests::arr;
    use crate::crypto::{generate_nt_response_v2, nt_password_hash};

    fn inputs() -> ([u8; 16], [u8; 24]) {
        let hash_hash = hash_nt_password_hash(&nt_password_hash(b"clientPass"));
        let nt = generate_nt_response_v2(
            &arr("5B5D7C7D7B3F2F3E3C2C602132262628"),
            &arr("21402324255E262A28295F2B3A337C7E"),
            b"User",
            b"clientPass",
        );
        (hash_hash, nt)
    }

    /// RFC 3079 §3.5 with the errata for the send key.
    #[test]
    fn rfc3079_v2_vectors() {
        let (hash_hash, nt) = inputs();
        let master = get_master_key(&hash_hash, &nt);
        assert_eq!(master, arr::<16>("FDECE3717A8C838CB388E527AE3CDD31"));
        // The RFC's "SendStartKey128" is the server's send key, i.e. the client's receive key.
        let server_send = get_asymmetric_start_key(&master, true, true);
        assert_eq!(server_send, arr::<16>("8B7CDC149B993A1BA118CB153F56DCCB"));
        assert_eq!(get_asymmetric_start_key(&master, false, false), server_send);
        let client_send = get_asymmetric_start_key(&master, true, false);
        assert_eq!(client_send, arr::<16>("D5F0E9521E3EA9589645E86051C82226"));
        assert_eq!(get_asymmetric_start_key(&master, false, true), client_send);
        assert_eq!(
            initial_session_key(&server_send, MppeKeyLength::Bits128),
            arr::<16>("405CB2247A7956E6E211007AE27B22D4")
        );
    }

    #[test]
    fn key_material_matches_the_functions() {
        let (_, nt) = inputs();
        let auth = arr::<16>("5B5D7C7D7B3F2F3E3C2C602132262628");
        let server = MsChapKeyMaterial::new_v2(b"clientPass", nt, auth, true);
        let client = MsChapKeyMaterial::new_v2(b"clientPass", nt, auth, false);
        assert_eq!(
            server.master_key(),
            arr::<16>("FDECE3717A8C838CB388E527AE3CDD31")
        );
        let (s_send, s_recv) = server.start_keys();
        let (c_send, c_recv) = client.start_keys();
        assert_eq!((s_send, s_recv), (c_recv, c_send));
        assert_eq!(s_send, arr::<16>("8B7CDC149B993A1BA118CB153F56DCCB"));
        assert!(!format!("{server:?}").contains("8B"));
    }

    #[test]
    fn reduced_keys_are_salted() {
        let start = arr::<16>("8B7CDC149B993A1BA118CB153F56DCCB");
        let k40 = initial_session_key(&start, MppeKeyLength::Bits40);
        assert_eq!(&k40[..3], &[0xD1, 0x26, 0x9E]);
        assert_eq!(&k40[8..], &[0; 8]);
        let k56 = initial_session_key(&start, MppeKeyLength::Bits56);
        assert_eq!(k56[0], 0xD1);
        assert_eq!(
            &k56[1..8],
            &get_new_key_from_sha(&start, &start, MppeKeyLength::Bits56)[1..8]
        );
    }

    /// RFC 3079 §2.5.3: MS-CHAP (v1), password "clientPass", challenge 102DB5DF085D3041.
    #[test]
    fn rfc3079_v1_start_key() {
        let hash_hash = hash_nt_password_hash(&nt_password_hash(b"clientPass"));
        let challenge = arr::<8>("102DB5DF085D3041");
        let start = mschap_v1_start_key(&hash_hash, &challenge);
        assert_eq!(start, arr::<16>("A8947850CFC0ACC1D1789FB62DDCDDB0"));
        let nt = crate::crypto::nt_challenge_response_v1(&challenge, b"clientPass");
        let material = MsChapKeyMaterial::new_v1(b"clientPass", nt, challenge, true);
        assert_eq!(material.start_keys(), (start, start));
    }

    /// RFC 3079 §3.5.2 (errata): the first message encrypted with the session key.
    #[test]
    fn rc4_of_test_message() {
        use rc4::{KeyInit, Rc4, StreamCipher};
        let key = initial_session_key(
            &arr("8B7CDC149B993A1BA118CB153F56DCCB"),
            MppeKeyLength::Bits128,
        );
        let mut rc4 = Rc4::<rc4::consts::U16>::new_from_slice(&key).unwrap();
        let mut data = *b"test message";
        rc4.apply_keystream(&mut data);
        assert_eq!(data, arr::<12>("81848317DF68846272FB5ABE"));
    }
}
