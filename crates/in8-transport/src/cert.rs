//! DTLS certificates: this node's self-signed ECDSA P-256 certificate carrying the identity
//! binding extension (and, for a join, the join proof), and the check of the peer's
//! certificate against what the invitation (or the caller) says it must be.

use std::sync::{Arc, Mutex};

use in8_artifact::cert::CertBinding;
use in8_artifact::{Identity, Invitation, NodeId};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::cert_der::{
    In8Extension, binding_oid_body, generation_error, join_proof_oid_body, self_signed,
};
use crate::error::Result;
use crate::join::{JoinProof, ct_eq, key_binding};

/// This node's DTLS certificate: self-signed ECDSA P-256, with the identity's signature over
/// its SubjectPublicKeyInfo in the [`in8_artifact::cert::BINDING_OID`] extension, so any
/// peer that knows the node id accepts it without a pinned fingerprint.
#[derive(Clone)]
pub struct LocalCertificate {
    pub(crate) dtls: dtls::crypto::Certificate,
    der: Vec<u8>,
    fingerprint: [u8; 32],
}

impl std::fmt::Debug for LocalCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCertificate")
            .field("fingerprint", &hex(&self.fingerprint))
            .finish_non_exhaustive()
    }
}

/// Makes a join-proof extension's content from the certificate's DER SubjectPublicKeyInfo.
type ProofMaker<'a> = dyn Fn(&[u8]) -> Vec<u8> + 'a;

impl LocalCertificate {
    /// Generates a fresh ECDSA P-256 key pair and a self-signed certificate bound to
    /// `identity`.
    pub fn generate(identity: &Identity) -> Result<Self> {
        Self::build(identity, None)
    }

    /// Generates a fresh certificate bound to `identity` that also carries the join proof
    /// for `invitation` (extension [`crate::join::join_proof_oid`]), made over this
    /// certificate's own key: the inviter verifies the proof during the DTLS handshake,
    /// and the handshake's CertificateVerify shows the invitee holds that key.
    pub fn generate_for_join(identity: &Identity, invitation: &Invitation) -> Result<Self> {
        Self::build(
            identity,
            Some(&|spki| {
                JoinProof::create(identity, invitation, &key_binding(spki))
                    .to_bytes()
                    .to_vec()
            }),
        )
    }

    /// Generates a fresh certificate bound to `identity` whose join-proof extension holds
    /// `proof` exactly as given, unchecked: for conformance and fuzzing harnesses that need
    /// to present a copied, forged or malformed proof. Use
    /// [`LocalCertificate::generate_for_join`] to join.
    pub fn generate_with_join_proof(identity: &Identity, proof: &[u8]) -> Result<Self> {
        Self::build(identity, Some(&|_| proof.to_vec()))
    }

    /// `join_proof` makes the join-proof extension's content from the new key's DER
    /// SubjectPublicKeyInfo; `None`: no such extension.
    fn build(identity: &Identity, join_proof: Option<&ProofMaker<'_>>) -> Result<Self> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| generation_error("key", e))?;
        let spki = key.public_key_der();
        let mut extensions = vec![(
            In8Extension::Binding,
            CertBinding::sign(identity, &spki).to_der(),
        )];
        if let Some(make) = join_proof {
            extensions.push((In8Extension::JoinProof, make(&spki)));
        }
        let common_name = format!("in8 {}", identity.node_id().short());
        let der = self_signed(&key, Some(common_name), &extensions)?;
        let private_key = dtls::crypto::CryptoPrivateKey::try_from(&key)
            .map_err(|e| generation_error("load key", e))?;
        let fingerprint = in8_artifact::cert::fingerprint(&der);
        Ok(Self {
            dtls: dtls::crypto::Certificate {
                certificate: vec![der.clone().into()],
                private_key,
            },
            der,
            fingerprint,
        })
    }

    /// The certificate (DER).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// SHA-256 fingerprint of the certificate, as pinned in invitations and RSVPs.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }
}

/// How the peer's DTLS certificate is authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerAuth {
    /// The certificate must carry `node`'s signature over its key (the binding extension).
    Identity(NodeId),
    /// The certificate's SHA-256 fingerprint must be this (pinned in a signed invitation or
    /// RSVP); `node` is the identity that signed the artifact carrying the pin, if any.
    Fingerprint {
        /// The pinned fingerprint.
        fingerprint: [u8; 32],
        /// The node vouching for it.
        node: Option<NodeId>,
    },
    /// Any certificate (the inviter in phase 1: the join proof authenticates the peer).
    AnyCertificate,
}

impl PeerAuth {
    /// How an invitee authenticates the inviter from its invitation: the pinned fingerprint
    /// when the invitation carries one, otherwise the issuer's binding.
    pub fn for_invitation(inv: &in8_artifact::Invitation) -> Self {
        match inv.cert_fingerprint {
            Some(fingerprint) => Self::Fingerprint {
                fingerprint,
                node: Some(inv.issuer),
            },
            None => Self::Identity(inv.issuer),
        }
    }
}

/// What the verifier learned about the peer certificate.
#[derive(Clone, Debug, Default)]
pub(crate) struct PeerCertInfo {
    pub(crate) fingerprint: Option<[u8; 32]>,
    pub(crate) bound_node: Option<NodeId>,
    /// The join-proof extension's content, undecoded (checked against the invitation after
    /// the handshake, see `Endpoint::accept_join`).
    pub(crate) join_proof: Option<Vec<u8>>,
    /// [`key_binding`] of the certificate's public key (what a join proof must be made
    /// over); all zero when the certificate could not be parsed.
    pub(crate) key_binding: [u8; 32],
    pub(crate) rejection: Option<String>,
}

/// Shared slot the DTLS verify callback writes into.
pub(crate) type PeerCertSlot = Arc<Mutex<PeerCertInfo>>;

/// Checks the peer's end-entity certificate (DER) against `auth`.
pub(crate) fn verify_peer(
    auth: &PeerAuth,
    der: &[u8],
) -> std::result::Result<PeerCertInfo, String> {
    let fingerprint = in8_artifact::cert::fingerprint(der);
    let ext = match read_extensions(der) {
        Ok(x) => x,
        Err(e) => {
            if matches!(auth, PeerAuth::Identity(_)) {
                return Err(e);
            }
            Extensions::default()
        }
    };
    let bound_node = ext.bound_node;
    match auth {
        PeerAuth::Identity(node) => match bound_node {
            Some(n) if n == *node => {}
            Some(_) => return Err("certificate is bound to another node".into()),
            None => return Err("certificate carries no identity binding".into()),
        },
        PeerAuth::Fingerprint {
            fingerprint: want, ..
        } => {
            if !ct_eq(want, &fingerprint) {
                return Err(format!(
                    "fingerprint {} does not match the pinned {}",
                    hex(&fingerprint),
                    hex(want)
                ));
            }
        }
        PeerAuth::AnyCertificate => {}
    }
    Ok(PeerCertInfo {
        fingerprint: Some(fingerprint),
        bound_node,
        join_proof: ext.join_proof,
        key_binding: ext.key_binding,
        rejection: None,
    })
}

/// What [`read_extensions`] found in a certificate.
#[derive(Default)]
struct Extensions {
    bound_node: Option<NodeId>,
    join_proof: Option<Vec<u8>>,
    key_binding: [u8; 32],
}

/// Parses the certificate, verifies the identity binding extension when present, and
/// collects the join-proof extension. `Err` when the certificate is not X.509, carries
/// either extension twice, or carries a binding that does not verify.
fn read_extensions(der: &[u8]) -> std::result::Result<Extensions, String> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    if !rest.is_empty() {
        return Err("trailing bytes after the certificate".into());
    }
    let spki = cert.tbs_certificate.subject_pki.raw;
    let (binding_oid, join_oid) = (binding_oid_body(), join_proof_oid_body());
    let (mut binding, mut join_proof) = (None, None);
    for ext in cert.tbs_certificate.extensions() {
        let oid = ext.oid.as_bytes();
        let (slot, what) = if oid == binding_oid.as_slice() {
            (&mut binding, "identity binding")
        } else if oid == join_oid.as_slice() {
            (&mut join_proof, "join proof")
        } else {
            continue;
        };
        if slot.replace(ext.value).is_some() {
            return Err(format!("two {what} extensions"));
        }
    }
    let bound_node = match binding {
        None => None,
        Some(value) => {
            let b = CertBinding::from_der(value).map_err(|e| e.to_string())?;
            b.verify(&b.node, spki)
                .map_err(|e| format!("identity binding does not verify: {e}"))?;
            Some(b.node)
        }
    };
    Ok(Extensions {
        bound_node,
        join_proof: join_proof.map(<[u8]>::to_vec),
        key_binding: key_binding(spki),
    })
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use in8_artifact::fixtures;

    #[test]
    fn generated_certificate_carries_a_valid_binding() {
        let alice = fixtures::alice();
        let c = LocalCertificate::generate(&alice).unwrap();
        let ext = read_extensions(c.der()).unwrap();
        assert_eq!(ext.bound_node, Some(alice.node_id()));
        assert!(ext.join_proof.is_none());
        // The re-signed certificate still verifies under its own key.
        let (_, x) = X509Certificate::from_der(c.der()).unwrap();
        {
            use p256::ecdsa::signature::Verifier;
            use p256::pkcs8::DecodePublicKey;
            let vk =
                p256::ecdsa::VerifyingKey::from_public_key_der(x.tbs_certificate.subject_pki.raw)
                    .unwrap();
            let sig = p256::ecdsa::Signature::from_der(&x.signature_value.data).unwrap();
            vk.verify(x.tbs_certificate.as_ref(), &sig).unwrap();
        }
        // Accepted by identity and by pinned fingerprint; refused for another node or pin.
        verify_peer(&PeerAuth::Identity(alice.node_id()), c.der()).unwrap();
        verify_peer(
            &PeerAuth::Fingerprint {
                fingerprint: c.fingerprint(),
                node: None,
            },
            c.der(),
        )
        .unwrap();
        assert!(verify_peer(&PeerAuth::Identity(fixtures::bob().node_id()), c.der()).is_err());
        assert!(
            verify_peer(
                &PeerAuth::Fingerprint {
                    fingerprint: [0; 32],
                    node: None
                },
                c.der()
            )
            .is_err()
        );
        assert!(verify_peer(&PeerAuth::AnyCertificate, b"not a certificate").is_ok());
        assert!(verify_peer(&PeerAuth::Identity(alice.node_id()), b"junk").is_err());
    }

    #[test]
    fn a_join_certificate_carries_a_proof_bound_to_its_own_key() {
        let bob = fixtures::bob();
        let inv = fixtures::invitation();
        let c = LocalCertificate::generate_for_join(&bob, &inv).unwrap();
        let info = verify_peer(&PeerAuth::AnyCertificate, c.der()).unwrap();
        assert_eq!(info.bound_node, Some(bob.node_id()));
        let proof = JoinProof::decode(info.join_proof.as_deref().unwrap()).unwrap();
        assert_eq!(proof.verify(&inv, &info.key_binding), Ok(bob.node_id()));
        // The key binding is the certificate's own key: another certificate's differs.
        let other = LocalCertificate::generate_for_join(&bob, &inv).unwrap();
        let other = verify_peer(&PeerAuth::AnyCertificate, other.der()).unwrap();
        assert_ne!(other.key_binding, info.key_binding);
        assert!(proof.verify(&inv, &other.key_binding).is_err());
        // A plain certificate has no proof; arbitrary bytes are carried as given.
        let plain = LocalCertificate::generate(&bob).unwrap();
        assert!(
            verify_peer(&PeerAuth::AnyCertificate, plain.der())
                .unwrap()
                .join_proof
                .is_none()
        );
        let junk = LocalCertificate::generate_with_join_proof(&bob, b"junk").unwrap();
        let junk = verify_peer(&PeerAuth::Identity(bob.node_id()), junk.der()).unwrap();
        assert_eq!(junk.join_proof.as_deref(), Some(&b"junk"[..]));
    }

    #[test]
    fn two_join_proof_extensions_are_refused() {
        let bob = fixtures::bob();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let proof = JoinProof::create(
            &bob,
            &fixtures::invitation(),
            &key_binding(&key.public_key_der()),
        )
        .to_bytes()
        .to_vec();
        let proof = (In8Extension::JoinProof, proof);
        let der = self_signed(&key, None, &[proof.clone(), proof]).unwrap();
        let e = read_extensions(&der).err().unwrap();
        assert!(e.contains("two join proof extensions"), "{e}");
        // By identity the handshake fails; accepting any certificate (phase 1), it carries
        // no usable proof, which the inviter refuses as "not a join proof".
        assert!(verify_peer(&PeerAuth::Identity(bob.node_id()), &der).is_err());
        let any = verify_peer(&PeerAuth::AnyCertificate, &der).unwrap();
        assert!(any.join_proof.is_none() && any.bound_node.is_none());
    }

    #[test]
    fn a_binding_copied_onto_another_key_is_refused() {
        // Mallory copies Alice's binding extension into a certificate for her own key.
        let alice = fixtures::alice();
        let binding = CertBinding::sign(&alice, b"some other spki");
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let der = self_signed(&key, None, &[(In8Extension::Binding, binding.to_der())]).unwrap();
        assert!(read_extensions(&der).is_err());
        assert!(verify_peer(&PeerAuth::Identity(alice.node_id()), &der).is_err());
    }
}
