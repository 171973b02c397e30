//! Node identity: an ed25519 key pair. The node id *is* the public key.
//!
//! Every signature made here is domain-separated: the signed message is
//! `"in8/v1/" || purpose || 0x00 || payload`, so a signature made for one kind of artifact can
//! never be replayed as another (see docs/artifact.md, "Signatures").

use core::fmt;
use core::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Length of a node id (an ed25519 public key) in bytes.
pub const NODE_ID_LEN: usize = 32;
/// Length of an ed25519 signature in bytes.
pub const SIGNATURE_LEN: usize = 64;

const TEXT_ALPHABET: &data_encoding::Encoding = &data_encoding::BASE32_NOPAD;
const CHECKSUM_CONTEXT: &str = "in8 v1 node id checksum";

/// A node's public identity: its ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId([u8; NODE_ID_LEN]);

impl NodeId {
    /// Wraps raw public-key bytes (validity is checked when a signature is verified).
    pub const fn from_bytes(bytes: [u8; NODE_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw public key.
    pub const fn as_bytes(&self) -> &[u8; NODE_ID_LEN] {
        &self.0
    }

    /// First 10 characters of the text form, for logs and summaries.
    pub fn short(&self) -> String {
        let mut s = self.to_string();
        s.truncate(10);
        s
    }

    /// Verifies `signature` over `payload` made for `purpose` by this node.
    ///
    /// Uses ed25519 strict verification (rejects small-order keys and non-canonical signatures).
    pub fn verify(
        &self,
        purpose: &str,
        payload: &[&[u8]],
        signature: &[u8; SIGNATURE_LEN],
        what: &'static str,
    ) -> Result<()> {
        let key = VerifyingKey::from_bytes(&self.0)
            .map_err(|_| Error::BadPublicKey { field: "node id" })?;
        let sig = Signature::from_bytes(signature);
        key.verify_strict(&signed_message(purpose, payload), &sig)
            .map_err(|_| Error::BadSignature { what })
    }

    fn checksum(&self) -> [u8; 2] {
        let h = blake3::derive_key(CHECKSUM_CONTEXT, &self.0);
        [h[0], h[1]]
    }
}

/// Text form: lowercase RFC 4648 base32 (no padding) of the key followed by a 2-byte
/// BLAKE3 checksum, 55 characters. Typos are caught by the checksum.
impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; NODE_ID_LEN + 2];
        buf[..NODE_ID_LEN].copy_from_slice(&self.0);
        buf[NODE_ID_LEN..].copy_from_slice(&self.checksum());
        f.write_str(&TEXT_ALPHABET.encode(&buf).to_ascii_lowercase())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.short())
    }
}

impl FromStr for NodeId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        let raw = TEXT_ALPHABET
            .decode(t.to_ascii_uppercase().as_bytes())
            .map_err(|e| Error::BadText {
                form: "node id",
                reason: e.to_string(),
            })?;
        if raw.len() != NODE_ID_LEN + 2 {
            return Err(Error::WrongSize {
                field: "node id",
                expected: "34 (key + checksum)",
                actual: raw.len(),
            });
        }
        let mut key = [0u8; NODE_ID_LEN];
        key.copy_from_slice(&raw[..NODE_ID_LEN]);
        let id = NodeId(key);
        if id.checksum()[..] != raw[NODE_ID_LEN..] {
            return Err(Error::BadNodeIdChecksum { text: t.to_owned() });
        }
        Ok(id)
    }
}

/// The message an in8 signature covers: `"in8/v1/" || purpose || 0x00 || payload...`.
pub(crate) fn signed_message(purpose: &str, payload: &[&[u8]]) -> Vec<u8> {
    let len = 7 + purpose.len() + 1 + payload.iter().map(|p| p.len()).sum::<usize>();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(b"in8/v1/");
    m.extend_from_slice(purpose.as_bytes());
    m.push(0);
    for p in payload {
        m.extend_from_slice(p);
    }
    m
}

/// A node's secret identity: the ed25519 signing key. Zeroized on drop.
#[derive(Clone)]
pub struct Identity {
    key: SigningKey,
}

impl Identity {
    /// A new random identity.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        Self::from_seed(&seed)
    }

    /// The identity whose 32-byte ed25519 seed is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(seed),
        }
    }

    /// The 32-byte secret seed (handle with care; it is the whole identity).
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes())
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// This identity's public node id.
    pub fn node_id(&self) -> NodeId {
        NodeId(self.key.verifying_key().to_bytes())
    }

    /// Signs `payload` for `purpose` (domain-separated, see the module docs).
    pub fn sign(&self, purpose: &str, payload: &[&[u8]]) -> [u8; SIGNATURE_LEN] {
        self.key.sign(&signed_message(purpose, payload)).to_bytes()
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({:?})", self.node_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn text_form_round_trips_and_catches_typos() {
        let id = Identity::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(1)).node_id();
        let text = id.to_string();
        assert_eq!(text.len(), 55);
        assert_eq!(text.parse::<NodeId>().unwrap(), id);
        assert_eq!(text.to_uppercase().parse::<NodeId>().unwrap(), id);
        let mut typo = text.into_bytes();
        typo[3] = if typo[3] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).unwrap();
        assert!(matches!(
            typo.parse::<NodeId>(),
            Err(Error::BadNodeIdChecksum { .. })
        ));
    }

    #[test]
    fn signatures_are_domain_separated() {
        let me = Identity::from_seed(&[7; 32]);
        let sig = me.sign("invitation", &[b"abc"]);
        me.node_id()
            .verify("invitation", &[b"abc"], &sig, "x")
            .unwrap();
        assert!(me.node_id().verify("rsvp", &[b"abc"], &sig, "x").is_err());
        assert!(
            me.node_id()
                .verify("invitation", &[b"abd"], &sig, "x")
                .is_err()
        );
    }
}
