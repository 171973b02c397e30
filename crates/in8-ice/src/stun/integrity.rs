//! MESSAGE-INTEGRITY (HMAC-SHA1) keys and FINGERPRINT (CRC-32).

use core::fmt;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::HEADER_LEN;

/// Length of the MESSAGE-INTEGRITY value.
pub(crate) const MI_LEN: usize = 20;
/// RFC 8489 §14.7: "The value of the attribute is computed as the CRC-32 of the STUN message
/// up to (but excluding) the FINGERPRINT attribute itself, XOR'ed with the 32-bit value
/// 0x5354554e."
pub(crate) const FINGERPRINT_XOR: u32 = 0x5354_554e;

/// An HMAC-SHA1 key with its inner and outer pads already absorbed: cloning the state per
/// message costs two 64-byte copies instead of two extra SHA-1 compressions.
#[derive(Clone)]
pub struct IntegrityKey {
    mac: Hmac<Sha1>,
}

impl fmt::Debug for IntegrityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IntegrityKey(..)")
    }
}

impl IntegrityKey {
    fn from_key(key: &[u8]) -> Self {
        // HMAC accepts keys of any length, so this cannot fail; fall back to an empty key
        // rather than panic if the crate ever changes that.
        let mac = <Hmac<Sha1> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| <Hmac<Sha1> as Mac>::new(&Default::default()));
        Self { mac }
    }

    /// RFC 8489 §9.1.1: the short-term key is `OpaqueString(password)`. ICE
    /// passwords are `ice-char` ASCII (RFC 8445 §5.3), for which OpaqueString is the identity.
    pub fn short_term(password: &str) -> Self {
        Self::from_key(password.as_bytes())
    }

    /// RFC 8489 §9.2.2: "key = MD5(username ":" OpaqueString(realm) ":"
    /// OpaqueString(password))" (the MD5 password algorithm, which TURN servers use unless
    /// both sides negotiate SHA-256). Non-ASCII strings are taken as their UTF-8 bytes.
    pub fn long_term(username: &str, realm: &str, password: &str) -> Self {
        let mut h = Md5::new();
        h.update(username.as_bytes());
        h.update(b":");
        h.update(realm.as_bytes());
        h.update(b":");
        h.update(password.as_bytes());
        Self::from_key(&h.finalize())
    }

    /// The HMAC over `msg[..mi_offset]` with the header length field replaced so that it
    /// ends with the MESSAGE-INTEGRITY attribute (RFC 8489 §14.5: "the length MUST then be
    /// set to point to the length of the prefix of the message up to, and including, the
    /// MESSAGE-INTEGRITY attribute itself, but excluding any attributes after it").
    pub(crate) fn compute(&self, msg: &[u8], mi_offset: usize) -> [u8; MI_LEN] {
        let mut m = self.mac.clone();
        let len = (mi_offset + 4 + MI_LEN - HEADER_LEN) as u16;
        m.update(&msg[..2]);
        m.update(&len.to_be_bytes());
        m.update(&msg[4..mi_offset]);
        let out = m.finalize().into_bytes();
        let mut r = [0u8; MI_LEN];
        r.copy_from_slice(&out);
        r
    }

    /// Constant-time check of a received MESSAGE-INTEGRITY value.
    pub(crate) fn verify(&self, msg: &[u8], mi_offset: usize, value: &[u8]) -> bool {
        value.len() == MI_LEN && bool::from(self.compute(msg, mi_offset).ct_eq(value))
    }
}

/// The FINGERPRINT value for `msg[..fp_offset]`, with the length field adjusted to end
/// after the FINGERPRINT attribute.
pub fn fingerprint(msg: &[u8], fp_offset: usize) -> u32 {
    let len = (fp_offset + 8 - HEADER_LEN) as u16;
    let mut h = crc32fast::Hasher::new();
    h.update(&msg[..2]);
    h.update(&len.to_be_bytes());
    h.update(&msg[4..fp_offset]);
    h.finalize() ^ FINGERPRINT_XOR
}
