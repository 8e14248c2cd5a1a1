//! MPPE (RFC 3078) packet encryption and decryption, key changes as RFC 3079 and the Linux
//! `ppp_mppe` driver do them.
//!
//! Wire format of the 0x00FD information field:
//!
//! ```text
//! | A B C D | coherency count (12 bits) | RC4(protocol (2 bytes) ‖ payload) |
//! ```
//!
//! A (0x80) flushed: the RC4 state was reinitialised (a new session key); D (0x10) encrypted,
//! always set; B and C belong to MPPC and are never set by us. The protocol field is encrypted
//! as two bytes, as Linux does; on receive a one-byte (PFC) protocol field is accepted too.
//!
//! Keys: the caller hands in the MPPE start keys ([`MppeKeys`], from MS-CHAP via
//! `ppp_auth::mppe_keys`); the initial session key is GetNewKeyFromSHA of the start key with
//! itself, each key change is GetNewKeyFromSHA of the start key and the current key, RC4-encrypted
//! with itself, then salted for 40/56 bits. As in Linux, the coherency count starts so that the
//! first packet carries 0; stateless mode changes key before every packet (the first included);
//! stateful mode changes key on "flag" packets (count ending in 0xFF) and after a Reset-Request.

use std::fmt;

use ppp_auth::mppe_keys::{
    MppeKeyLength, get_new_key_from_sha, initial_session_key, reduce_session_key,
};
use ppp_frame::Protocol;
use rc4::consts::{U8, U16};
use rc4::{KeyInit, Rc4, StreamCipher};
use tracing::debug;
use zeroize::Zeroize;

use crate::CcpError;

/// Flushed bit (A).
pub const FLUSHED: u8 = 0x80;
/// MPPC bit B (packet at front of history): never set by MPPE.
pub const MPPC_FRONT: u8 = 0x40;
/// MPPC bit C (compressed): never set by us.
pub const MPPC_COMPRESSED: u8 = 0x20;
/// Encrypted bit (D): always set by MPPE.
pub const ENCRYPTED: u8 = 0x10;
/// Size of the coherency-count space.
const COUNT_SPACE: u16 = 0x1000;
/// Header length.
pub const HEADER_LEN: usize = 2;
/// Bogon score past which decryption errors become fatal (as Linux's `SANITY_MAX`).
const SANITY_MAX: u32 = 1600;

/// The MPPE start keys of both directions (RFC 3079 §3.4 GetAsymmetricStartKey; for MS-CHAPv1
/// the same key twice). `Debug` shows nothing of them; they are wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct MppeKeys {
    /// The start key of what we send.
    pub send: [u8; 16],
    /// The start key of what we receive.
    pub recv: [u8; 16],
}

impl MppeKeys {
    /// Keys from `(send, recv)`, as `ppp_auth::mppe_keys::MsChapKeyMaterial::start_keys`
    /// returns them.
    pub fn new(send: [u8; 16], recv: [u8; 16]) -> Self {
        MppeKeys { send, recv }
    }
}

impl fmt::Debug for MppeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MppeKeys { .. }")
    }
}

impl Drop for MppeKeys {
    fn drop(&mut self) {
        self.send.zeroize();
        self.recv.zeroize();
    }
}

/// What MPPE negotiated for one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MppeParams {
    /// Key strength.
    pub key_length: MppeKeyLength,
    /// Stateful mode (H bit clear): the key changes every 256 packets and after resets.
    pub stateful: bool,
}

enum Cipher {
    Short(Rc4<U8>),
    Long(Rc4<U16>),
}

impl Cipher {
    fn new(key: &[u8; 16], length: MppeKeyLength) -> Self {
        match length {
            MppeKeyLength::Bits128 => Cipher::Long(Rc4::<U16>::new(key.into())),
            MppeKeyLength::Bits40 | MppeKeyLength::Bits56 => {
                let mut short = [0u8; 8];
                short.copy_from_slice(&key[..8]);
                let cipher = Cipher::Short(Rc4::<U8>::new(&short.into()));
                short.zeroize();
                cipher
            }
        }
    }

    fn apply(&mut self, data: &mut [u8]) {
        match self {
            Cipher::Short(c) => c.apply_keystream(data),
            Cipher::Long(c) => c.apply_keystream(data),
        }
    }
}

/// One direction's key schedule: start key, current session key and the RC4 state.
struct KeySchedule {
    start_key: [u8; 16],
    session_key: [u8; 16],
    length: MppeKeyLength,
    cipher: Cipher,
}

impl KeySchedule {
    fn new(start_key: &[u8; 16], length: MppeKeyLength) -> Self {
        let session_key = initial_session_key(start_key, length);
        KeySchedule {
            start_key: *start_key,
            cipher: Cipher::new(&session_key, length),
            session_key,
            length,
        }
    }

    /// A key change (RFC 3079 GetKey): SHA of start and current key, RC4-encrypted with
    /// itself, salted; the RC4 state restarts with the new key.
    fn rekey(&mut self) {
        let mut interim = get_new_key_from_sha(&self.start_key, &self.session_key, self.length);
        let mut next = interim;
        let n = self.length.bytes();
        Cipher::new(&interim, self.length).apply(&mut next[..n]);
        reduce_session_key(&mut next, self.length);
        self.session_key = next;
        self.cipher = Cipher::new(&self.session_key, self.length);
        interim.zeroize();
        next.zeroize();
    }
}

impl KeySchedule {
    /// Tries up to `limit` further key changes on the body of a flushed packet (which starts
    /// with a fresh RC4 state): the schedule that decrypts it into a datagram, if one does.
    fn catch_up(&self, body: &[u8], limit: u32) -> Option<KeySchedule> {
        let mut trial = KeySchedule {
            start_key: self.start_key,
            session_key: self.session_key,
            length: self.length,
            cipher: Cipher::new(&self.session_key, self.length),
        };
        let probe_len = body.len().min(PROBE_LEN);
        for _ in 0..limit {
            trial.rekey();
            let mut probe = body[..probe_len].to_vec();
            Cipher::new(&trial.session_key, trial.length).apply(&mut probe);
            if plausible_prefix(&probe, body.len()) {
                trial.cipher = Cipher::new(&trial.session_key, trial.length);
                return Some(trial);
            }
        }
        None
    }
}

impl Drop for KeySchedule {
    fn drop(&mut self) {
        self.start_key.zeroize();
        self.session_key.zeroize();
    }
}

/// Whether MPPE encrypts datagrams of this protocol (Linux: 0x0021–0x00FA; anything else, such
/// as control protocols, goes out as it is).
pub fn encrypts(protocol: Protocol) -> bool {
    (0x0021..=0x00FA).contains(&protocol.number())
}

/// Encrypts datagrams for the peer.
pub struct MppeEncryptor {
    keys: KeySchedule,
    stateful: bool,
    count: u16,
    flush_next: bool,
}

impl fmt::Debug for MppeEncryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MppeEncryptor")
            .field("length", &self.keys.length)
            .field("stateful", &self.stateful)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl MppeEncryptor {
    /// An encryptor with our send start key.
    pub fn new(send_start_key: &[u8; 16], params: MppeParams) -> Self {
        MppeEncryptor {
            keys: KeySchedule::new(send_start_key, params.key_length),
            stateful: params.stateful,
            count: COUNT_SPACE - 1,
            flush_next: false,
        }
    }

    /// The 0x00FD information field for a datagram, or `None` for protocols MPPE leaves alone
    /// (see [`encrypts`]).
    pub fn encrypt(&mut self, protocol: Protocol, payload: &[u8]) -> Option<Vec<u8>> {
        if !encrypts(protocol) {
            return None;
        }
        self.count = (self.count + 1) % COUNT_SPACE;
        let mut flags = ENCRYPTED;
        if !self.stateful || self.count & 0xff == 0xff || self.flush_next {
            self.keys.rekey();
            flags |= FLUSHED;
            self.flush_next = false;
        }
        let mut out = Vec::with_capacity(HEADER_LEN + 2 + payload.len());
        out.push(flags | (self.count >> 8) as u8);
        out.push((self.count & 0xff) as u8);
        out.extend_from_slice(&protocol.number().to_be_bytes());
        out.extend_from_slice(payload);
        self.keys.cipher.apply(&mut out[HEADER_LEN..]);
        Some(out)
    }

    /// The peer sent a Reset-Request: the next packet changes key and carries the flushed bit.
    pub fn reset(&mut self) {
        self.flush_next = true;
    }

    /// The coherency count of the last packet sent (0xFFF before the first).
    pub fn coherency_count(&self) -> u16 {
        self.count
    }
}

/// Decrypts the peer's datagrams, keeping up with its key changes and lost packets.
pub struct MppeDecryptor {
    keys: KeySchedule,
    stateful: bool,
    count: u16,
    received: bool,
    discarding: bool,
    sanity_errors: u32,
    undecryptable: u64,
    resyncs: u64,
}

impl fmt::Debug for MppeDecryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MppeDecryptor")
            .field("length", &self.keys.length)
            .field("stateful", &self.stateful)
            .field("count", &self.count)
            .field("discarding", &self.discarding)
            .field("sanity_errors", &self.sanity_errors)
            .finish_non_exhaustive()
    }
}

impl MppeDecryptor {
    /// A decryptor with our receive start key.
    pub fn new(recv_start_key: &[u8; 16], params: MppeParams) -> Self {
        MppeDecryptor {
            keys: KeySchedule::new(recv_start_key, params.key_length),
            stateful: params.stateful,
            count: COUNT_SPACE - 1,
            received: false,
            discarding: false,
            sanity_errors: 0,
            undecryptable: 0,
            resyncs: 0,
        }
    }

    /// Whether the sender changes keys only on flag packets (stateful MPPE).
    pub fn is_stateful(&self) -> bool {
        self.stateful
    }

    /// Whether packets are being discarded until a flushed packet arrives (stateful mode).
    pub fn is_discarding(&self) -> bool {
        self.discarding
    }

    /// The coherency count of the last packet accepted.
    pub fn coherency_count(&self) -> u16 {
        self.count
    }

    fn bogon(&mut self, score: u32, error: CcpError) -> CcpError {
        self.sanity_errors = self.sanity_errors.saturating_add(score);
        if self.sanity_errors >= SANITY_MAX {
            CcpError::TooManyErrors
        } else {
            error
        }
    }

    /// Decrypt a 0x00FD information field into the protocol and the datagram.
    pub fn decrypt(&mut self, info: &[u8]) -> Result<(Protocol, Vec<u8>), CcpError> {
        let &[first, second, ref body @ ..] = info else {
            return Err(CcpError::Truncated { len: info.len() });
        };
        if body.is_empty() {
            return Err(CcpError::Truncated { len: info.len() });
        }
        let header = u16::from_be_bytes([first, second]);
        let count = header & 0x0fff;
        let flushed = first & FLUSHED != 0;
        if first & ENCRYPTED == 0 {
            return Err(self.bogon(100, CcpError::NotEncrypted { header }));
        }
        if first & (MPPC_COMPRESSED | MPPC_FRONT) != 0 {
            return Err(self.bogon(100, CcpError::MppcNotSupported { header }));
        }
        if !flushed && (!self.stateful || count & 0xff == 0xff) {
            return Err(self.bogon(100, CcpError::FlushedBitMissing { count }));
        }
        if self.stateful {
            self.stateful_sync(count, flushed)?;
        } else {
            let ahead = count.wrapping_sub(self.count) % COUNT_SPACE;
            if ahead > COUNT_SPACE / 2 || (ahead == 0 && self.received) {
                let last = self.count;
                return Err(self.bogon(1, CcpError::StalePacket { count, last }));
            }
            // RFC 3078 §8.1: one key change per packet, lost ones included.
            while self.count != count {
                self.keys.rekey();
                self.count = (self.count + 1) % COUNT_SPACE;
            }
        }
        let mut plain = body.to_vec();
        self.keys.cipher.apply(&mut plain);
        if !plausible(&plain) {
            // The keys are out of step with the sender's: it changed key on a flushed packet we
            // never saw (stateful: a Reset-Request's answer lost), or 4096 packets were lost in
            // a row (stateless: the count wrapped). A flushed packet restarts RC4, so the next
            // few key changes can be tried on it; otherwise nothing decrypted here is trusted.
            if flushed && let Some(keys) = self.keys.catch_up(body, MAX_MISSED_KEY_CHANGES) {
                debug!("MPPE: keys resynchronised at coherency count {count:#05x}");
                self.keys = keys;
                self.resyncs += 1;
                plain.copy_from_slice(body);
                self.keys.cipher.apply(&mut plain);
            } else {
                self.undecryptable += 1;
                if self.stateful {
                    self.discarding = true;
                }
                debug!("MPPE: coherency count {count:#05x} did not decrypt: keys out of step");
                return Err(self.bogon(10, CcpError::Undecryptable { count }));
            }
        }
        self.received = true;
        self.sanity_errors >>= 1;
        split_protocol(plain)
    }

    /// Packets that decrypted into garbage (keys out of step) so far.
    pub fn undecryptable(&self) -> u64 {
        self.undecryptable
    }

    /// Times the keys were found again by trying further key changes on a flushed packet.
    pub fn resyncs(&self) -> u64 {
        self.resyncs
    }

    /// RFC 3078 §8.2 (as Linux): count lost packets, discard until a flushed packet, then catch
    /// up one key change per missed flag packet.
    fn stateful_sync(&mut self, count: u16, flushed: bool) -> Result<(), CcpError> {
        if !self.discarding {
            let expected = (self.count + 1) % COUNT_SPACE;
            self.count = expected;
            if count != expected {
                debug!("MPPE: coherency count {count:#05x}, expected {expected:#05x}: discarding");
                self.discarding = true;
                return Err(CcpError::CoherencyLost { count, expected });
            }
        } else {
            if !flushed {
                return Err(CcpError::Discarding);
            }
            while count & !0xff != self.count & !0xff {
                self.keys.rekey();
                self.count = (self.count + 0x100) % COUNT_SPACE;
            }
            debug!("MPPE: resynchronised at coherency count {count:#05x}");
            self.discarding = false;
            self.count = count;
        }
        if flushed {
            self.keys.rekey();
        }
        Ok(())
    }
}

/// Key changes tried on a flushed packet that does not decrypt (see [`MppeDecryptor::decrypt`]).
const MAX_MISSED_KEY_CHANGES: u32 = 16;
/// Bytes decrypted to judge a trial key: the protocol field and an IPv6 header.
const PROBE_LEN: usize = 2 + 40;

/// Whether a decrypted packet (protocol field and datagram) is a datagram we could have been
/// sent: IPv4 with a correct header checksum and length, or IPv6 with a consistent length.
/// Random bytes (a wrong key) pass with a probability below 2^-24.
fn plausible(plain: &[u8]) -> bool {
    plausible_prefix(&plain[..plain.len().min(PROBE_LEN)], plain.len())
}

/// [`plausible`] from the first bytes of a packet of `total` bytes.
fn plausible_prefix(prefix: &[u8], total: usize) -> bool {
    let (protocol, skip) = match prefix {
        [low, ..] if low & 1 == 1 => (u16::from(*low), 1),
        [high, low, ..] => (u16::from_be_bytes([*high, *low]), 2),
        _ => return false,
    };
    let datagram = &prefix[skip..];
    let len = total - skip;
    match protocol {
        0x0021 => {
            let [first, _, total_high, total_low, ..] = *datagram else {
                return false;
            };
            let header_len = usize::from(first & 0x0f) * 4;
            let ip_len = usize::from(u16::from_be_bytes([total_high, total_low]));
            first >> 4 == 4
                && header_len >= 20
                && datagram.len() >= header_len
                && (header_len..=len).contains(&ip_len)
                && internet_checksum(&datagram[..header_len]) == 0
        }
        0x0057 => {
            let [first, _, _, _, payload_high, payload_low, ..] = *datagram else {
                return false;
            };
            let payload_len = usize::from(u16::from_be_bytes([payload_high, payload_low]));
            first >> 4 == 6 && len >= 40 && 40 + payload_len <= len
        }
        _ => false,
    }
}

/// The one's complement sum of `data` (16-bit words), complemented: 0 over a correct header.
fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Split a decompressed datagram into its protocol field (one byte if odd, as under PFC, two
/// otherwise) and the payload.
pub(crate) fn split_protocol(mut datagram: Vec<u8>) -> Result<(Protocol, Vec<u8>), CcpError> {
    let (protocol, len) = match datagram.as_slice() {
        [low, ..] if low & 1 == 1 => (u16::from(*low), 1),
        [high, low, ..] => (u16::from_be_bytes([*high, *low]), 2),
        _ => return Err(CcpError::MissingProtocol),
    };
    datagram.drain(..len);
    Ok((Protocol::from(protocol), datagram))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex<const N: usize>(s: &str) -> [u8; N] {
        let mut out = [0u8; N];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    const START_128: &str = "8B7CDC149B993A1BA118CB153F56DCCB";

    /// RFC 3079 §3.5.2 with the errata: the session key and the first message.
    #[test]
    fn rfc3079_session_key_and_test_message() {
        // Master key → the server's 128-bit send start key (ppp-auth's derivation).
        let master = hex::<16>("FDECE3717A8C838CB388E527AE3CDD31");
        let start = ppp_auth::mppe_keys::get_asymmetric_start_key(&master, true, true);
        assert_eq!(start, hex::<16>(START_128));
        let schedule = KeySchedule::new(&start, MppeKeyLength::Bits128);
        assert_eq!(
            schedule.session_key,
            hex::<16>("405CB2247A7956E6E211007AE27B22D4")
        );
        let mut message = *b"test message";
        let mut cipher = Cipher::new(&schedule.session_key, MppeKeyLength::Bits128);
        cipher.apply(&mut message);
        // The value of the RFC's errata (the RFC text itself is wrong in its last bytes).
        assert_eq!(message, hex::<12>("81848317DF68846272FB5ABE"));
    }

    /// An IPv4 datagram (UDP, correct header checksum) carrying `data`: what MPPE is given.
    fn ipv4(data: &[u8]) -> Vec<u8> {
        crate::tests::ipv4_datagram(data)
    }

    fn pair(length: MppeKeyLength, stateful: bool) -> (MppeEncryptor, MppeDecryptor) {
        let key = hex::<16>(START_128);
        let params = MppeParams {
            key_length: length,
            stateful,
        };
        (
            MppeEncryptor::new(&key, params),
            MppeDecryptor::new(&key, params),
        )
    }

    #[test]
    fn header_bits_and_counts() {
        let (mut stateless, _) = pair(MppeKeyLength::Bits128, false);
        let first = stateless.encrypt(Protocol::Ipv4, b"abc").unwrap();
        assert_eq!(&first[..2], &[0x90, 0x00]);
        assert_eq!(first.len(), 2 + 2 + 3);
        let second = stateless.encrypt(Protocol::Ipv4, b"abc").unwrap();
        assert_eq!(&second[..2], &[0x90, 0x01]);
        assert_eq!(stateless.encrypt(Protocol::Ipcp, b"x"), None);

        let (mut stateful, _) = pair(MppeKeyLength::Bits40, true);
        let mut headers = Vec::new();
        for _ in 0..0x101 {
            let packet = stateful.encrypt(Protocol::Ipv4, b"x").unwrap();
            headers.push(u16::from_be_bytes([packet[0], packet[1]]));
        }
        assert_eq!(headers[0], 0x1000);
        assert_eq!(headers[0xfe], 0x10fe);
        assert_eq!(headers[0xff], 0x90ff); // flag packet
        assert_eq!(headers[0x100], 0x1100);
        stateful.reset();
        let packet = stateful.encrypt(Protocol::Ipv4, b"x").unwrap();
        assert_eq!(&packet[..2], &[0x91, 0x01]);
    }

    #[test]
    fn key_changes_follow_rfc3079() {
        // Salted 40-bit keys keep their salt across key changes.
        let mut schedule = KeySchedule::new(&hex::<16>(START_128), MppeKeyLength::Bits40);
        for _ in 0..3 {
            assert_eq!(&schedule.session_key[..3], &[0xD1, 0x26, 0x9E]);
            schedule.rekey();
        }
        let mut schedule = KeySchedule::new(&hex::<16>(START_128), MppeKeyLength::Bits128);
        let before = schedule.session_key;
        schedule.rekey();
        let interim = get_new_key_from_sha(&hex(START_128), &before, MppeKeyLength::Bits128);
        let mut expected = interim;
        Cipher::new(&interim, MppeKeyLength::Bits128).apply(&mut expected);
        assert_eq!(schedule.session_key, expected);
    }

    #[test]
    fn stateless_catches_up_and_drops_late_packets() {
        let (mut tx, mut rx) = pair(MppeKeyLength::Bits128, false);
        let packets: Vec<_> = (0..10u8)
            .map(|i| tx.encrypt(Protocol::Ipv4, &ipv4(&[i; 20])).unwrap())
            .collect();
        assert_eq!(
            rx.decrypt(&packets[0]).unwrap(),
            (Protocol::Ipv4, ipv4(&[0; 20]))
        );
        // 1..4 lost.
        assert_eq!(rx.decrypt(&packets[5]).unwrap().1, ipv4(&[5; 20]));
        // Late and duplicated packets are dropped.
        assert!(matches!(
            rx.decrypt(&packets[3]),
            Err(CcpError::StalePacket { count: 3, last: 5 })
        ));
        assert!(matches!(
            rx.decrypt(&packets[5]),
            Err(CcpError::StalePacket { .. })
        ));
        assert_eq!(rx.decrypt(&packets[9]).unwrap().1, ipv4(&[9; 20]));
    }

    #[test]
    fn stateful_discards_until_flushed() {
        let (mut tx, mut rx) = pair(MppeKeyLength::Bits128, true);
        let mut send = |n: usize| -> Vec<Vec<u8>> {
            (0..n)
                .map(|i| tx.encrypt(Protocol::Ipv4, &ipv4(&[i as u8; 8])).unwrap())
                .collect()
        };
        let batch = send(300);
        for p in &batch[..250] {
            rx.decrypt(p).unwrap();
        }
        // 250..260 lost, including nothing special; then 260 arrives.
        assert!(matches!(
            rx.decrypt(&batch[260]),
            Err(CcpError::CoherencyLost { .. })
        ));
        assert!(rx.is_discarding());
        // The flag packet 0xff is flushed: it resynchronises.
        assert_eq!(rx.decrypt(&batch[261]), Err(CcpError::Discarding));
        assert_eq!(rx.decrypt(&batch[255]).unwrap().1, ipv4(&[255u8; 8]));
        assert!(!rx.is_discarding());
        assert_eq!(rx.decrypt(&batch[256]).unwrap().1, ipv4(&[0u8; 8]));
    }

    /// The flushed packet that answered a Reset-Request is lost: the sender changed key on it
    /// and the receiver, catching up only the flag packets it missed, is one key behind. The
    /// next flushed packet does not decrypt with the expected key; the receiver finds the key by
    /// trying the next key changes, instead of delivering garbage from then on.
    #[test]
    fn stateful_resynchronises_after_a_lost_reset_flush() {
        let (mut tx, mut rx) = pair(MppeKeyLength::Bits128, true);
        for i in 0..10u8 {
            let packet = tx.encrypt(Protocol::Ipv4, &ipv4(&[i; 16])).unwrap();
            rx.decrypt(&packet).unwrap();
        }
        let _lost = tx.encrypt(Protocol::Ipv4, &ipv4(&[10; 16])).unwrap();
        let after_loss = tx.encrypt(Protocol::Ipv4, &ipv4(&[11; 16])).unwrap();
        assert!(matches!(
            rx.decrypt(&after_loss),
            Err(CcpError::CoherencyLost { .. })
        ));
        // The receiver's Reset-Request: the sender flushes, and that packet is lost too; so is
        // the flush after a second Reset-Request.
        tx.reset();
        let _lost_flush = tx.encrypt(Protocol::Ipv4, &ipv4(&[12; 16])).unwrap();
        tx.reset();
        let _lost_again = tx.encrypt(Protocol::Ipv4, &ipv4(&[13; 16])).unwrap();
        tx.reset();
        let flush = tx.encrypt(Protocol::Ipv4, &ipv4(&[14; 16])).unwrap();
        assert_eq!(rx.decrypt(&flush).unwrap().1, ipv4(&[14; 16]));
        assert_eq!(rx.resyncs(), 1);
        let next = tx.encrypt(Protocol::Ipv4, &ipv4(&[15; 16])).unwrap();
        assert_eq!(rx.decrypt(&next).unwrap().1, ipv4(&[15; 16]));
    }

    /// Keys that cannot be found again (stateless: 4096 packets lost, the count wrapped) give
    /// errors, never garbage.
    #[test]
    fn wrong_keys_never_deliver_garbage() {
        let (mut tx, mut rx) = pair(MppeKeyLength::Bits128, false);
        let first = tx.encrypt(Protocol::Ipv4, &ipv4(&[1; 64])).unwrap();
        rx.decrypt(&first).unwrap();
        for _ in 0..COUNT_SPACE {
            let _lost = tx.encrypt(Protocol::Ipv4, &ipv4(&[2; 64])).unwrap();
        }
        for i in 0..50u8 {
            let packet = tx.encrypt(Protocol::Ipv4, &ipv4(&[i; 64])).unwrap();
            assert!(matches!(
                rx.decrypt(&packet),
                Err(CcpError::Undecryptable { .. } | CcpError::TooManyErrors)
            ));
        }
        assert!(rx.undecryptable() > 0);
    }

    #[test]
    fn corrupted_and_short_packets_never_panic() {
        let (_, mut rx) = pair(MppeKeyLength::Bits128, false);
        for len in 0..4 {
            let _ = rx.decrypt(&vec![0x90; len]);
        }
        let mut fatal = false;
        for _ in 0..100 {
            if rx.decrypt(&[0x00, 0x01, 2, 3]) == Err(CcpError::TooManyErrors) {
                fatal = true;
            }
        }
        assert!(fatal);
    }
}
