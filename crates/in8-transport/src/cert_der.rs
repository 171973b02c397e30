//! DER surgery for the certificate extensions whose OIDs rcgen cannot write.
//!
//! rcgen writes extension OIDs from `u64` arcs, and the UUID arc of the identity-binding
//! OID `2.25.<uuid>` ([`in8_artifact::cert::BINDING_OID`]) needs 127 bits. Certificates are
//! therefore generated with placeholder OIDs whose DER encodings have the same length as the
//! real ones; the placeholders are then replaced and the to-be-signed part is re-signed
//! with the same key (ECDSA P-256, SHA-256).

use in8_artifact::cert::{BINDING_OID_ARCS, BINDING_OID_UUID};

use crate::error::{Error, Result};

/// Placeholder for the binding OID: DER body 1 + 10 + 9 = 20 bytes, like the real one.
pub(crate) const BINDING_PLACEHOLDER: [u64; 4] = [2, 25, 1 << 63, 1 << 56];
/// Placeholder for the join-proof OID (`<binding OID>.1`): 21 bytes, like the real one.
pub(crate) const JOIN_PROOF_PLACEHOLDER: [u64; 5] = [2, 25, 1 << 63, 1 << 56, 1];

pub(crate) fn generation_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Certificate {
        reason: format!("cannot create the local certificate ({what}): {e}"),
    }
}

/// Base-128 digits of one OID arc (X.690 §8.19.2).
fn arc_digits(mut v: u128, out: &mut Vec<u8>) {
    let mut digits = Vec::new();
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
    out.extend_from_slice(&digits);
}

/// DER body of the binding OID `2.25.<uuid>`: `0x69` (2 * 40 + 25), then the base-128
/// digits of the 128-bit UUID arc (20 bytes in all).
pub(crate) fn binding_oid_body() -> Vec<u8> {
    let mut body = vec![(BINDING_OID_ARCS[0] * 40 + BINDING_OID_ARCS[1]) as u8];
    arc_digits(BINDING_OID_UUID, &mut body);
    body
}

/// DER body of the join-proof OID `2.25.<uuid>.1` (the binding OID with one more arc).
pub(crate) fn join_proof_oid_body() -> Vec<u8> {
    let mut body = binding_oid_body();
    body.push(1);
    body
}

/// DER body of an OID given as `u64` arcs (how rcgen writes it).
pub(crate) fn rcgen_oid_body(arcs: &[u64]) -> Vec<u8> {
    let mut body = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &arc in &arcs[2..] {
        arc_digits(u128::from(arc), &mut body);
    }
    body
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

/// An OBJECT IDENTIFIER TLV (tag 6) around `body` (bodies here are < 128 bytes).
fn oid_tlv(body: &[u8]) -> Vec<u8> {
    let mut t = vec![0x06, body.len() as u8];
    t.extend_from_slice(body);
    t
}

/// The in8 certificate extensions whose OIDs need the placeholder trick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum In8Extension {
    /// The identity binding (`2.25.<uuid>`).
    Binding,
    /// The join proof (`2.25.<uuid>.1`).
    JoinProof,
}

impl In8Extension {
    fn placeholder(self) -> &'static [u64] {
        match self {
            Self::Binding => &BINDING_PLACEHOLDER,
            Self::JoinProof => &JOIN_PROOF_PLACEHOLDER,
        }
    }

    fn oid_body(self) -> Vec<u8> {
        match self {
            Self::Binding => binding_oid_body(),
            Self::JoinProof => join_proof_oid_body(),
        }
    }
}

/// A self-signed certificate (DER) for `key`, with the common name `common_name` when
/// given and each `(extension, DER content)` under its real OID.
pub(crate) fn self_signed(
    key: &rcgen::KeyPair,
    common_name: Option<String>,
    extensions: &[(In8Extension, Vec<u8>)],
) -> Result<Vec<u8>> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| generation_error("parameters", e))?;
    if let Some(cn) = common_name {
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
    }
    for (ext, content) in extensions {
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                ext.placeholder(),
                content.clone(),
            ));
    }
    let cert = params
        .self_signed(key)
        .map_err(|e| generation_error("self-sign", e))?;
    let replacements: Vec<(&[u64], Vec<u8>)> = extensions
        .iter()
        .map(|(ext, _)| (ext.placeholder(), ext.oid_body()))
        .collect();
    patch_oids_and_resign(cert.der(), key, &replacements)
}

/// Replaces each `(placeholder arcs, real OID body)` in `cert`'s to-be-signed part and
/// re-signs it with `key` (ECDSA P-256 SHA-256). Placeholders are matched as whole OID
/// TLVs, so one that is a prefix of another is not mistaken for it.
pub(crate) fn patch_oids_and_resign(
    cert: &[u8],
    key: &rcgen::KeyPair,
    replacements: &[(&[u64], Vec<u8>)],
) -> Result<Vec<u8>> {
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::DecodePrivateKey;

    let (outer_hdr, outer_end) = tlv(cert)?;
    let content = &cert[outer_hdr..outer_end];
    let (_, tbs_end) = tlv(content)?;
    let (_, alg_len) = tlv(&content[tbs_end..])?;
    let mut tbs = content[..tbs_end].to_vec();
    let alg = &content[tbs_end..tbs_end + alg_len];
    for (arcs, real) in replacements {
        let placeholder = oid_tlv(&rcgen_oid_body(arcs));
        let real = oid_tlv(real);
        if placeholder.len() != real.len() {
            return Err(generation_error("OID", "placeholder length mismatch"));
        }
        let at = tbs
            .windows(placeholder.len())
            .position(|w| w == placeholder.as_slice())
            .ok_or_else(|| generation_error("OID", "placeholder not found"))?;
        tbs[at..at + real.len()].copy_from_slice(&real);
    }

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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn oid_bodies_are_the_binding_and_join_proof_oids() {
        // 2.25.<uuid>: decode the DER body back (x509-parser prints arcs above 64 bits in
        // hex, so decode by hand).
        let body = binding_oid_body();
        assert_eq!(body[0], 2 * 40 + 25);
        let uuid = body[1..]
            .iter()
            .fold(0u128, |acc, d| (acc << 7) | u128::from(d & 0x7f));
        assert_eq!(format!("2.25.{uuid}"), in8_artifact::cert::BINDING_OID);
        assert!(body[1..body.len() - 1].iter().all(|d| d & 0x80 != 0));
        assert_eq!(body[body.len() - 1] & 0x80, 0);
        assert_eq!(
            rcgen_oid_body(&BINDING_PLACEHOLDER).len(),
            binding_oid_body().len()
        );
        let join = join_proof_oid_body();
        assert_eq!(&join[..body.len()], &body[..]);
        assert_eq!(join[body.len()..], [1]);
        assert_eq!(
            rcgen_oid_body(&JOIN_PROOF_PLACEHOLDER).len(),
            join_proof_oid_body().len()
        );
        // The placeholders' TLVs differ (their lengths do), so neither matches the other.
        assert_ne!(
            oid_tlv(&rcgen_oid_body(&BINDING_PLACEHOLDER))[..2],
            oid_tlv(&rcgen_oid_body(&JOIN_PROOF_PLACEHOLDER))[..2]
        );
    }
}
