//! The invite secret and everything derived from it (HKDF-SHA256, RFC 5869).
//!
//! `PRK = HKDF-Extract(salt = "in8/v1/invite-secret", IKM = secret)`, then one
//! `HKDF-Expand(PRK, info = label, L)` per derived value. Labels (all ASCII, documented in
//! docs/artifact.md):
//!
//! | label | L | use |
//! |-------|---|-----|
//! | `in8 v1 invite id` | 16 | invitation id (single-use ledger key) |
//! | `in8 v1 inviter ice ufrag` | 5 | inviter's ICE username fragment (8 base32 chars) |
//! | `in8 v1 inviter ice pwd` | 18 | inviter's ICE password (24 base64 chars, 144 bits) |
//! | `in8 v1 invitee ice pwd` `0x00` ufrag | 18 | invitee's ICE password for that ufrag |
//! | `in8 v1 join proof key` | 32 | MAC key of the join proof (in8-transport) |
//! | `in8 v1 rsvp mac key` | 32 | MAC key of the RSVP |

use core::fmt;

use hkdf::Hkdf;
use rand_core::CryptoRng;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::ids::InviteId;

/// Shortest invite secret in bytes (128 bits).
pub const MIN_SECRET_LEN: usize = 16;
/// Longest invite secret in bytes.
pub const MAX_SECRET_LEN: usize = 32;

const SALT: &[u8] = b"in8/v1/invite-secret";

/// The bearer secret of an invitation. Whoever holds it can join; it never leaves the
/// artifact in clear except inside the invitation itself.
#[derive(Clone)]
pub struct InviteSecret {
    bytes: Zeroizing<Vec<u8>>,
    hk: Hkdf<Sha256>,
}

impl InviteSecret {
    /// A fresh random 16-byte secret.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut b = Zeroizing::new([0u8; MIN_SECRET_LEN]);
        rng.fill_bytes(b.as_mut());
        Self::make(b.as_ref())
    }

    /// Wraps an existing secret of 16 to 32 bytes.
    pub fn from_bytes(b: &[u8]) -> Result<Self> {
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&b.len()) {
            return Err(Error::WrongSize {
                field: "invite secret",
                expected: "16..=32",
                actual: b.len(),
            });
        }
        Ok(Self::make(b))
    }

    fn make(b: &[u8]) -> Self {
        Self {
            bytes: Zeroizing::new(b.to_vec()),
            hk: Hkdf::<Sha256>::new(Some(SALT), b),
        }
    }

    /// The raw secret.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn expand<const N: usize>(&self, info: &[&[u8]]) -> Zeroizing<[u8; N]> {
        let mut out = Zeroizing::new([0u8; N]);
        // N <= 32 here, far below HKDF-SHA256's 255 * 32 byte limit: expand cannot fail.
        let _ = self.hk.expand_multi_info(info, out.as_mut());
        out
    }

    /// The invitation id.
    pub fn invite_id(&self) -> InviteId {
        InviteId::from_bytes(*self.expand::<16>(&[b"in8 v1 invite id"]))
    }

    /// The inviter's ICE username fragment: 8 lowercase base32 characters (40 bits).
    ///
    /// RFC 8445 §5.3: "The ufrag value MUST contain at least 24 bits of randomness".
    pub fn inviter_ufrag(&self) -> String {
        let b = self.expand::<5>(&[b"in8 v1 inviter ice ufrag"]);
        data_encoding::BASE32_NOPAD
            .encode(b.as_ref())
            .to_ascii_lowercase()
    }

    /// The inviter's ICE password: 24 base64 characters (144 bits).
    ///
    /// RFC 8445 §5.3: "the password MUST contain at least 128 bits of randomness".
    pub fn inviter_password(&self) -> String {
        let b = self.expand::<18>(&[b"in8 v1 inviter ice pwd"]);
        data_encoding::BASE64_NOPAD.encode(b.as_ref())
    }

    /// The invitee's ICE password for the username fragment `invitee_ufrag`.
    ///
    /// Because it is derived, the inviter can check an invitee's first request and run
    /// triggered checks back without any reply having travelled to it.
    pub fn invitee_password(&self, invitee_ufrag: &str) -> String {
        let b = self.expand::<18>(&[b"in8 v1 invitee ice pwd", &[0], invitee_ufrag.as_bytes()]);
        data_encoding::BASE64_NOPAD.encode(b.as_ref())
    }

    /// The join-proof MAC key (used by in8-transport).
    pub fn join_key(&self) -> Zeroizing<[u8; 32]> {
        self.expand::<32>(&[b"in8 v1 join proof key"])
    }

    /// The RSVP MAC key.
    pub fn rsvp_key(&self) -> Zeroizing<[u8; 32]> {
        self.expand::<32>(&[b"in8 v1 rsvp mac key"])
    }
}

impl PartialEq for InviteSecret {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.bytes.len() == other.bytes.len() && bool::from(self.bytes.ct_eq(&other.bytes))
    }
}
impl Eq for InviteSecret {}

impl fmt::Debug for InviteSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InviteSecret(id {})", self.invite_id())
    }
}

/// Checks an ICE ufrag: RFC 8445 §5.3 `ice-char` (ALPHA / DIGIT / "+" / "/"), 4 to 32 chars
/// (RFC 8839 §5.4: "at least 4 characters"; in8 bounds the upper end at 32).
pub fn check_ufrag(ufrag: &str) -> Result<()> {
    if !(4..=32).contains(&ufrag.len()) {
        return Err(Error::WrongSize {
            field: "ice ufrag",
            expected: "4..=32 characters",
            actual: ufrag.len(),
        });
    }
    if !ufrag
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
    {
        return Err(Error::InvalidValue {
            field: "ice ufrag",
            reason: "characters outside ALPHA / DIGIT / + / (RFC 8445 ice-char)",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivations_are_distinct_and_stable() {
        let s = InviteSecret::from_bytes(&[0x11; 16]).unwrap();
        assert_eq!(s.inviter_ufrag().len(), 8);
        assert_eq!(s.inviter_password().len(), 24);
        check_ufrag(&s.inviter_ufrag()).unwrap();
        assert_ne!(s.invitee_password("abcd"), s.invitee_password("abce"));
        assert_ne!(*s.join_key(), *s.rsvp_key());
        let t = InviteSecret::from_bytes(&[0x11; 16]).unwrap();
        assert_eq!(s.invite_id(), t.invite_id());
        assert_eq!(s, t);
        assert!(InviteSecret::from_bytes(&[0; 15]).is_err());
        assert!(InviteSecret::from_bytes(&[0; 33]).is_err());
    }

    #[test]
    fn ufrag_charset() {
        assert!(check_ufrag("ab+/").is_ok());
        assert!(check_ufrag("ab:c").is_err());
        assert!(check_ufrag("abc").is_err());
    }
}
