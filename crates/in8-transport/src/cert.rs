//! DTLS certificates: this node's self-signed ECDSA P-256 certificate carrying the identity
//! binding extension, and the check of the peer's certificate against what the invitation
//! (or the caller) says it must be.

use std::sync::{Arc, Mutex};

use in8_artifact::cert::{BINDING_OID_ARCS, BINDING_OID_UUID, CertBinding};
use in8_artifact::{Identity, NodeId};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::{Error, Result};
use crate::join::ct_eq;

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

/// DER body of the binding OID `2.25.<uuid>`: `0x69` (2 * 40 + 25), then the base-128
/// digits of the 128-bit UUID arc (20 bytes in all).
fn oid_body() -> Vec<u8> {
    let mut digits = Vec::new();
    let mut v = BINDING_OID_UUID;
    loop {
        digits.push((v & 0x7f) as u8);
        v >>= 7;
        if v == 0 {
            break;
        }
    }
    digits.reverse();
    let n = digits.len();
    for d in digits.iter_mut().take(n - 1) {
        *d |= 0x80;
    }
    let mut body = vec![(BINDING_OID_ARCS[0] * 40 + BINDING_OID_ARCS[1]) as u8];
    body.extend_from_slice(&digits);
    body
}

/// rcgen writes extension OIDs from `u64` arcs, and the UUID arc of [`BINDING_OID`] needs
/// 127 bits. The certificate is therefore generated with this placeholder OID, whose DER
/// body has the same length (1 + 10 + 9 = 20 bytes), then the placeholder is replaced by
/// the real OID and the to-be-signed part re-signed with the same key.
const PLACEHOLDER_ARCS: [u64; 4] = [2, 25, 1 << 63, 1 << 56];

fn generation_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Certificate {
        reason: format!("cannot create the local certificate ({what}): {e}"),
    }
}

impl LocalCertificate {
    /// Generates a fresh ECDSA P-256 key pair and a self-signed certificate bound to
    /// `identity`.
    pub fn generate(identity: &Identity) -> Result<Self> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| generation_error("key", e))?;
        let binding = CertBinding::sign(identity, &key.public_key_der());
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
            .map_err(|e| generation_error("parameters", e))?;
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("in8 {}", identity.node_id().short()),
        );
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                &PLACEHOLDER_ARCS,
                binding.to_der(),
            ));
        let cert = params
            .self_signed(&key)
            .map_err(|e| generation_error("self-sign", e))?;
        let der = patch_oid_and_resign(cert.der(), &key)?;
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

/// Reads one DER TLV at the start of `b`: (header length, total length).
fn tlv(b: &[u8]) -> Result<(usize, usize)> {
    let bad = || generation_error("DER", "unexpected certificate layout");
    let first = *b.get(1).ok_or_else(bad)?;
    let (hdr, len) = if first < 0x80 {
        (2, usize::from(first))
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || b.len() < 2 + n {
            return Err(bad());
        }
        let len = b[2..2 + n]
            .iter()
            .fold(0usize, |acc, x| (acc << 8) | usize::from(*x));
        (2 + n, len)
    };
    if b.len() < hdr + len {
        return Err(bad());
    }
    Ok((hdr, hdr + len))
}

fn der_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
}

/// Replaces the placeholder OID by [`BINDING_OID`] and re-signs (ECDSA P-256 SHA-256).
fn patch_oid_and_resign(cert: &[u8], key: &rcgen::KeyPair) -> Result<Vec<u8>> {
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::DecodePrivateKey;

    let placeholder = rcgen_oid_body(&PLACEHOLDER_ARCS);
    let real = oid_body();
    if placeholder.len() != real.len() {
        return Err(generation_error("OID", "placeholder length mismatch"));
    }
    let (outer_hdr, outer_end) = tlv(cert)?;
    let content = &cert[outer_hdr..outer_end];
    let (_, tbs_end) = tlv(content)?;
    let (_, alg_len) = tlv(&content[tbs_end..])?;
    let mut tbs = content[..tbs_end].to_vec();
    let alg = &content[tbs_end..tbs_end + alg_len];
    let at = tbs
        .windows(placeholder.len())
        .position(|w| w == placeholder.as_slice())
        .ok_or_else(|| generation_error("OID", "placeholder not found"))?;
    tbs[at..at + real.len()].copy_from_slice(&real);

    let signer = p256::ecdsa::SigningKey::from_pkcs8_der(key.serialized_der())
        .map_err(|e| generation_error("signing key", e))?;
    let sig: p256::ecdsa::Signature = signer.sign(&tbs);
    let sig = sig.to_der();
    let mut bits = vec![0x03];
    der_len(sig.as_bytes().len() + 1, &mut bits);
    bits.push(0);
    bits.extend_from_slice(sig.as_bytes());

    let body_len = tbs.len() + alg.len() + bits.len();
    let mut out = vec![0x30];
    der_len(body_len, &mut out);
    out.extend_from_slice(&tbs);
    out.extend_from_slice(alg);
    out.extend_from_slice(&bits);
    Ok(out)
}

/// DER body of an OID given as `u64` arcs (how rcgen writes it).
fn rcgen_oid_body(arcs: &[u64]) -> Vec<u8> {
    let mut body = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &arc in &arcs[2..] {
        let mut digits = Vec::new();
        let mut v = arc;
        loop {
            digits.push((v & 0x7f) as u8);
            v >>= 7;
            if v == 0 {
                break;
            }
        }
        digits.reverse();
        let n = digits.len();
        for d in digits.iter_mut().take(n - 1) {
            *d |= 0x80;
        }
        body.extend_from_slice(&digits);
    }
    body
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
    let bound_node = match read_binding(der) {
        Ok(b) => b,
        Err(e) => {
            if matches!(auth, PeerAuth::Identity(_)) {
                return Err(e);
            }
            None
        }
    };
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
        rejection: None,
    })
}

/// Reads and verifies the binding extension: `Ok(Some(node))` when present and valid,
/// `Ok(None)` when absent, `Err` when present but invalid or the certificate is not X.509.
fn read_binding(der: &[u8]) -> std::result::Result<Option<NodeId>, String> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    if !rest.is_empty() {
        return Err("trailing bytes after the certificate".into());
    }
    let spki = cert.tbs_certificate.subject_pki.raw;
    let body = oid_body();
    let mut found = None;
    for ext in cert.tbs_certificate.extensions() {
        if ext.oid.as_bytes() == body.as_slice() {
            if found.is_some() {
                return Err("two identity binding extensions".into());
            }
            found = Some(ext.value);
        }
    }
    let Some(value) = found else { return Ok(None) };
    let binding = CertBinding::from_der(value).map_err(|e| e.to_string())?;
    binding
        .verify(&binding.node, spki)
        .map_err(|e| format!("identity binding does not verify: {e}"))?;
    Ok(Some(binding.node))
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
    fn oid_body_is_the_binding_oid() {
        // 2.25.<uuid>: decode the DER body back (x509-parser prints arcs above 64 bits in
        // hex, so decode by hand).
        let body = oid_body();
        assert_eq!(body[0], 2 * 40 + 25);
        let uuid = body[1..]
            .iter()
            .fold(0u128, |acc, d| (acc << 7) | u128::from(d & 0x7f));
        assert_eq!(format!("2.25.{uuid}"), in8_artifact::cert::BINDING_OID);
        assert!(body[1..body.len() - 1].iter().all(|d| d & 0x80 != 0));
        assert_eq!(body[body.len() - 1] & 0x80, 0);
        assert_eq!(rcgen_oid_body(&PLACEHOLDER_ARCS).len(), oid_body().len());
    }

    #[test]
    fn generated_certificate_carries_a_valid_binding() {
        let alice = fixtures::alice();
        let c = LocalCertificate::generate(&alice).unwrap();
        assert_eq!(read_binding(c.der()).unwrap(), Some(alice.node_id()));
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
    fn a_binding_copied_onto_another_key_is_refused() {
        // Mallory copies Alice's binding extension into a certificate for her own key.
        let alice = fixtures::alice();
        let binding = CertBinding::sign(&alice, b"some other spki");
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                &PLACEHOLDER_ARCS,
                binding.to_der(),
            ));
        let cert = params.self_signed(&key).unwrap();
        let der = patch_oid_and_resign(cert.der(), &key).unwrap();
        assert!(read_binding(&der).is_err());
        assert!(verify_peer(&PeerAuth::Identity(alice.node_id()), &der).is_err());
    }
}
