//! Binding a DTLS certificate to a node identity.
//!
//! in8 does not carry a certificate fingerprint in invitations by default. Instead the
//! certificate (self-signed ECDSA P-256, freshly generated, rotatable) carries an X.509
//! extension in which the node's ed25519 identity key signs the certificate's public key
//! (the DER `SubjectPublicKeyInfo`). A peer that knows the node id from a signed invitation
//! accepts exactly the certificates that identity vouched for. This saves 32 bytes per
//! invitation and lets certificates rotate without new invitations; libp2p's TLS handshake
//! uses the same idea. Invitations may still pin a SHA-256 fingerprint instead
//! ([`crate::Invitation::cert_fingerprint`]) for peers that cannot add the extension.
//!
//! Extension value (DER): `SEQUENCE { OCTET STRING node_id (32), OCTET STRING signature (64) }`
//! under [`BINDING_OID`]; the signature's purpose string is `dtls cert binding` and its
//! payload the SPKI DER bytes.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::identity::{Identity, NodeId};

/// Object identifier of the binding extension, in the UUID arc `2.25` (ITU-T X.667), which
/// needs no registration: 2.25.<UUID 5c1b1f57-62e0-4d0c-9a3d-64a7f1a8e9c1 as an integer>.
pub const BINDING_OID: &str = "2.25.122429803305541246796680839595049937345";
/// [`BINDING_OID`] as its integer arcs.
pub const BINDING_OID_ARCS: &[u64] = &[2, 25];
/// The UUID under `2.25` (see [`BINDING_OID`]) as a 128-bit integer.
pub const BINDING_OID_UUID: u128 = 0x5c1b_1f57_62e0_4d0c_9a3d_64a7_f1a8_e9c1;

const PURPOSE: &str = "dtls cert binding";
const DER_LEN: usize = 2 + 2 + 32 + 2 + 64;

/// The identity's statement "this certificate key is mine".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CertBinding {
    /// The vouching node.
    pub node: NodeId,
    /// ed25519 signature over the certificate's SubjectPublicKeyInfo DER.
    pub signature: [u8; 64],
}

impl CertBinding {
    /// Signs the certificate key `spki_der` with `identity`.
    pub fn sign(identity: &Identity, spki_der: &[u8]) -> Self {
        Self {
            node: identity.node_id(),
            signature: identity.sign(PURPOSE, &[spki_der]),
        }
    }

    /// Checks that `expected` vouched for the certificate key `spki_der`.
    pub fn verify(&self, expected: &NodeId, spki_der: &[u8]) -> Result<()> {
        if self.node != *expected {
            return Err(Error::BadSignature {
                what: "DTLS certificate (it belongs to another node)",
            });
        }
        self.node.verify(
            PURPOSE,
            &[spki_der],
            &self.signature,
            "DTLS certificate binding",
        )
    }

    /// The DER extension value.
    pub fn to_der(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(DER_LEN);
        v.extend_from_slice(&[0x30, (DER_LEN - 2) as u8, 0x04, 32]);
        v.extend_from_slice(self.node.as_bytes());
        v.extend_from_slice(&[0x04, 64]);
        v.extend_from_slice(&self.signature);
        v
    }

    /// Parses the DER extension value (exactly the form [`CertBinding::to_der`] writes).
    pub fn from_der(der: &[u8]) -> Result<Self> {
        if der.len() != DER_LEN
            || der[..4] != [0x30, (DER_LEN - 2) as u8, 0x04, 32]
            || der[36..38] != [0x04, 64]
        {
            return Err(Error::InvalidValue {
                field: "certificate binding extension",
                reason: "not SEQUENCE { OCTET STRING (32), OCTET STRING (64) }",
            });
        }
        let mut node = [0u8; 32];
        node.copy_from_slice(&der[4..36]);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&der[38..]);
        Ok(Self {
            node: NodeId::from_bytes(node),
            signature,
        })
    }
}

/// SHA-256 fingerprint of a DER certificate (as pinned in artifacts).
pub fn fingerprint(cert_der: &[u8]) -> [u8; 32] {
    Sha256::digest(cert_der).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_integer_matches_uuid() {
        assert_eq!(BINDING_OID, format!("2.25.{BINDING_OID_UUID}"));
    }

    #[test]
    fn binding_round_trip_and_rejection() {
        let id = Identity::from_seed(&[3; 32]);
        let other = Identity::from_seed(&[4; 32]);
        let b = CertBinding::sign(&id, b"spki");
        let b2 = CertBinding::from_der(&b.to_der()).unwrap();
        b2.verify(&id.node_id(), b"spki").unwrap();
        assert!(b2.verify(&id.node_id(), b"spkj").is_err());
        assert!(b2.verify(&other.node_id(), b"spki").is_err());
        assert!(CertBinding::from_der(&b.to_der()[1..]).is_err());
    }
}
