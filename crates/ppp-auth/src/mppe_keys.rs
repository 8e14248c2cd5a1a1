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

/// The MS-CHAP material MPPE needs, from a successful MS-CHAP or MS-CHAP-V2 exchange: derived
/// here from the password (local secrets), or given by an external verifier such as RADIUS
/// (RFC 2548 MS-MPPE-Send-Key/MS-MPPE-Recv-Key, or MS-CHAP-MPPE-Keys). Either way
/// [`start_keys`](Self::start_keys) gives what MPPE starts from. Zeroized on drop; its `Debug`
/// shows nothing of the keys.
#[derive(Clone, PartialEq, Eq, Zeroize)]
pub struct MsChapKeyMaterial {
    version: u8,
    is_server: bool,
    source: KeySource,
}

#[derive(Clone, PartialEq, Eq, Zeroize)]
enum KeySource {
    /// What RFC 3079 derives the keys from.
    Derived {
        password_hash_hash: [u8; 16],
        nt_response: [u8; 24],
        /// 8 bytes for v1 (in the first 8), 16 for v2.
        authenticator_challenge: [u8; 16],
    },
    /// The start keys themselves, from our point of view.
    StartKeys { send: [u8; 16], recv: [u8; 16] },
}

impl Drop for MsChapKeyMaterial {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for MsChapKeyMaterial {}

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
        Self::from_password_hash_hash(
            2,
            hash_nt_password_hash(&hash),
            nt_response,
            &authenticator_challenge,
            is_server,
        )
    }

    /// Material for MS-CHAP (v1).
    pub fn new_v1(
        password: &[u8],
        nt_response: [u8; 24],
        challenge: [u8; 8],
        is_server: bool,
    ) -> Self {
        let hash = zeroize::Zeroizing::new(crate::crypto::nt_password_hash(password));
        Self::from_password_hash_hash(
            1,
            hash_nt_password_hash(&hash),
            nt_response,
            &challenge,
            is_server,
        )
    }

    /// Material from HashNtPasswordHash of the password instead of the password: what a RADIUS
    /// server gives for MS-CHAP v1 in MS-CHAP-MPPE-Keys (RFC 2548 §2.4.1, the 16 bytes after
    /// the LM key; FreeRADIUS and Windows put the hash of the hash there). `version` is 1 or 2;
    /// `authenticator_challenge` is 8 bytes for v1 and 16 for v2 (longer is cut, shorter is
    /// padded with zeros).
    pub fn from_password_hash_hash(
        version: u8,
        password_hash_hash: [u8; 16],
        nt_response: [u8; 24],
        authenticator_challenge: &[u8],
        is_server: bool,
    ) -> Self {
        let mut challenge = [0u8; 16];
        let n = authenticator_challenge.len().min(16);
        challenge[..n].copy_from_slice(&authenticator_challenge[..n]);
        MsChapKeyMaterial {
            version,
            is_server,
            source: KeySource::Derived {
                password_hash_hash,
                nt_response,
                authenticator_challenge: challenge,
            },
        }
    }

    /// Material given as the MPPE start keys themselves, from our point of view: what a RADIUS
    /// server sends the authenticator (the NAS) in MS-MPPE-Send-Key and MS-MPPE-Recv-Key
    /// (RFC 2548 §2.4.2-3: the NAS's send and receive keys, i.e. GetAsymmetricStartKey of
    /// RFC 3079 §3.4 on the server side). [`start_keys`](Self::start_keys) returns
    /// `(send, recv)` unchanged.
    pub fn from_start_keys(version: u8, send: [u8; 16], recv: [u8; 16], is_server: bool) -> Self {
        MsChapKeyMaterial {
            version,
            is_server,
            source: KeySource::StartKeys { send, recv },
        }
    }

    /// The MS-CHAP version: 1 or 2.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Whether we are the server (the authenticator).
    pub fn is_server(&self) -> bool {
        self.is_server
    }

    /// The peer's 24-byte NT-Response, when the keys derive from it (not for start keys given
    /// directly).
    pub fn nt_response(&self) -> Option<&[u8; 24]> {
        match &self.source {
            KeySource::Derived { nt_response, .. } => Some(nt_response),
            KeySource::StartKeys { .. } => None,
        }
    }

    /// The MasterKey (v2, RFC 3079 §3.4); for v1 the pppd start key of
    /// [`mschap_v1_start_key`]. `None` when the start keys were given directly.
    pub fn master_key(&self) -> Option<[u8; 16]> {
        let KeySource::Derived {
            password_hash_hash,
            nt_response,
            authenticator_challenge,
        } = &self.source
        else {
            return None;
        };
        Some(if self.version == 1 {
            let mut challenge = [0u8; 8];
            challenge.copy_from_slice(&authenticator_challenge[..8]);
            mschap_v1_start_key(password_hash_hash, &challenge)
        } else {
            get_master_key(password_hash_hash, nt_response)
        })
    }

    /// Our (send, receive) start keys. For v1 both directions use the same key.
    pub fn start_keys(&self) -> ([u8; 16], [u8; 16]) {
        if let KeySource::StartKeys { send, recv } = &self.source {
            return (*send, *recv);
        }
        let master = zeroize::Zeroizing::new(self.master_key().unwrap_or_default());
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
            Some(arr::<16>("FDECE3717A8C838CB388E527AE3CDD31"))
        );
        let (s_send, s_recv) = server.start_keys();
        let (c_send, c_recv) = client.start_keys();
        assert_eq!((s_send, s_recv), (c_recv, c_send));
        assert_eq!(s_send, arr::<16>("8B7CDC149B993A1BA118CB153F56DCCB"));
        assert!(!format!("{server:?}").contains("8B"));
        // Given as start keys (RADIUS MS-MPPE-Send/Recv-Key), they come back unchanged.
        let given = MsChapKeyMaterial::from_start_keys(2, s_send, s_recv, true);
        assert_eq!(given.start_keys(), (s_send, s_recv));
        assert_eq!((given.master_key(), given.nt_response()), (None, None));
        // From the hash of the hash (RADIUS MS-CHAP-MPPE-Keys), the same keys as from the
        // password.
        let hash_hash = hash_nt_password_hash(&nt_password_hash(b"clientPass"));
        let from_hash = MsChapKeyMaterial::from_password_hash_hash(2, hash_hash, nt, &auth, true);
        assert_eq!(from_hash, server);
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
