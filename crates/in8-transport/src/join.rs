//! The join proof and the inviter's verdict.
//!
//! In phase 1 the inviter cannot know the invitee's certificate in advance, so the invitee
//! proves that it holds the invitation inside the certificate it presents in the DTLS
//! handshake: [`crate::LocalCertificate::generate_for_join`] makes a fresh key pair and a
//! certificate carrying the proof in the extension [`join_proof_oid`] (`<binding OID>.1`).
//! The inviter reads it in the handshake's certificate check, verifies it once the
//! handshake is done, redeems the invitation and sends the verdict as its first DTLS
//! application record, directly followed by its SCTP INIT. Carrying the proof in the
//! certificate instead of a record of its own saves a round trip (docs/results/core.md).
//!
//! ```text
//! JoinProof (149 bytes, the content of the join-proof extension)
//!   0..4     "in8j"          magic
//!   4        0x02            version (2: in the certificate, bound to its key)
//!   5..21    invite id       (16) which invitation this redeems
//!   21..53   node id         (32) the invitee's ed25519 public key
//!   53..85   mac             (32) HMAC-SHA256(join key, "in8/v1/join-proof" 0x00
//!                                   || binding || invite id || node id)
//!   85..149  signature       (64) node's ed25519 signature, purpose "join proof",
//!                                   over invite id || binding || mac
//! Verdict (6 bytes, the inviter's first application record)
//!   0..4     "in8v"          magic
//!   4        0x01            version
//!   5        code            0 accepted, else a [`Refusal`] code
//! ```
//!
//! `binding` is [`key_binding`] of the certificate's SubjectPublicKeyInfo: SHA-256 over
//! the label [`KEY_BINDING_LABEL`] and the DER key. A proof copied into a certificate for
//! another key fails, and the DTLS CertificateVerify message proves that the invitee holds
//! the private key of the certificate it sent, so a proof seen on the wire (DTLS 1.2 sends
//! certificates in the clear) cannot be replayed by anyone else. The MAC proves possession
//! of the invitation's join key; the signature binds the invitee's identity to the key (it
//! becomes the authenticated peer id). An on-path observer reads the clear-text proof: the
//! invitee's node id (visible anyway in the certificate's identity binding) and the invite
//! id (a one-way derivation of the secret, which it does not reveal), so it can tell which
//! invitation a join redeems.

use hmac::{Hmac, Mac};
use in8_artifact::{Identity, Invitation, InviteId, NodeId};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// Exporter label for [`crate::SecureConn::channel_binding`] (RFC 5705 §4: labels starting
/// with "EXPORTER" are for private use). The label keeps its historical name; join proofs
/// are now bound to the certificate key ([`key_binding`]), not to the exporter.
pub const EXPORTER_LABEL: &str = "EXPORTER-in8-join-proof";
/// Length of the channel-binding value taken from the exporter.
pub const BINDING_LEN: usize = 32;
/// Label hashed in front of the certificate key by [`key_binding`].
pub const KEY_BINDING_LABEL: &[u8] = b"in8/v1/join-cert-key\0";

/// The value a join proof is made over: SHA-256(`KEY_BINDING_LABEL` || `spki`), where
/// `spki` is the DER SubjectPublicKeyInfo of the certificate that carries the proof.
pub fn key_binding(spki: &[u8]) -> [u8; BINDING_LEN] {
    use sha2::Digest;
    let mut h = Sha256::new();
    h.update(KEY_BINDING_LABEL);
    h.update(spki);
    h.finalize().into()
}

/// The join-proof certificate extension's OID: the identity-binding OID
/// ([`in8_artifact::cert::BINDING_OID`]) with the arc `1` appended.
pub fn join_proof_oid() -> String {
    format!("{}.1", in8_artifact::cert::BINDING_OID)
}
/// Encoded size of a [`JoinProof`].
pub const JOIN_PROOF_LEN: usize = 149;
/// Encoded size of a verdict.
pub const VERDICT_LEN: usize = 6;

const PROOF_MAGIC: &[u8; 4] = b"in8j";
const VERDICT_MAGIC: &[u8; 4] = b"in8v";
/// Version 2: carried in the certificate, bound to its key (version 1 was a DTLS record
/// bound to the exporter; it never verifies under version 2's rules, so it is refused as
/// "not a join proof" rather than as a bad one).
const PROOF_VERSION: u8 = 2;
const VERDICT_VERSION: u8 = 1;
const MAC_CONTEXT: &[u8] = b"in8/v1/join-proof\0";
const SIGN_PURPOSE: &str = "join proof";

/// Why an inviter refused a join (carried in the verdict, so the invitee learns it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// The MAC, the signature or the channel binding did not verify (a forged or replayed
    /// proof, or the wrong invitation secret).
    BadProof,
    /// The proof names an invitation this session was not opened for.
    WrongInvitation,
    /// The invitation's uses are exhausted (someone redeemed it first).
    AlreadyUsed,
    /// The invitation has expired (or is not yet valid).
    Expired,
    /// The invitation was revoked.
    Revoked,
    /// The invitee's certificate carried no join proof (or one that does not parse).
    NotAJoinProof,
    /// The inviter could not record the redemption (ledger unavailable or full).
    Unavailable,
}

impl Refusal {
    fn code(self) -> u8 {
        match self {
            Self::BadProof => 1,
            Self::WrongInvitation => 2,
            Self::AlreadyUsed => 3,
            Self::Expired => 4,
            Self::Revoked => 5,
            Self::NotAJoinProof => 6,
            Self::Unavailable => 7,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => Self::BadProof,
            2 => Self::WrongInvitation,
            3 => Self::AlreadyUsed,
            4 => Self::Expired,
            5 => Self::Revoked,
            6 => Self::NotAJoinProof,
            7 => Self::Unavailable,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::BadProof => {
                "join proof did not verify (forged, replayed, or made with another invitation)"
            }
            Self::WrongInvitation => "the proof names another invitation",
            Self::AlreadyUsed => {
                "the invitation was already used; ask the inviter for a new one (if you did not use it, someone else did)"
            }
            Self::Expired => "the invitation has expired or is not yet valid; ask for a new one",
            Self::Revoked => "the invitation was revoked by its issuer",
            Self::NotAJoinProof => "the certificate carried no readable join proof",
            Self::Unavailable => "the inviter could not record the redemption; try again",
        })
    }
}

/// The inviter's answer to a join proof.
pub type Verdict = std::result::Result<(), Refusal>;

/// An invitee's proof that it holds the invitation, bound to one DTLS session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinProof {
    /// The invitation redeemed.
    pub invite_id: InviteId,
    /// The invitee.
    pub node: NodeId,
    /// HMAC under the join key (see the module docs).
    pub mac: [u8; 32],
    /// The invitee's signature.
    pub signature: [u8; 64],
}

fn mac(invitation: &Invitation, binding: &[u8; BINDING_LEN], node: &NodeId) -> Hmac<Sha256> {
    let key = invitation.secret.join_key();
    // HMAC accepts keys of any length, so this cannot fail; fall back to an empty-key MAC
    // that can never match a real proof rather than panicking.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key.as_ref())
        .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
    m.update(MAC_CONTEXT);
    m.update(binding);
    m.update(invitation.invite_id().as_bytes());
    m.update(node.as_bytes());
    m
}

impl JoinProof {
    /// Makes the proof for `invitation`, bound to the certificate key whose
    /// [`key_binding`] is `binding`.
    pub fn create(
        identity: &Identity,
        invitation: &Invitation,
        binding: &[u8; BINDING_LEN],
    ) -> Self {
        let node = identity.node_id();
        let invite_id = invitation.invite_id();
        let mac: [u8; 32] = mac(invitation, binding, &node)
            .finalize()
            .into_bytes()
            .into();
        let signature = identity.sign(SIGN_PURPOSE, &[invite_id.as_bytes(), binding, &mac]);
        Self {
            invite_id,
            node,
            mac,
            signature,
        }
    }

    /// Checks the proof against the invitation and the [`key_binding`] of the certificate
    /// that carried it; returns the proven invitee id. Does not touch the ledger.
    pub fn verify(
        &self,
        invitation: &Invitation,
        binding: &[u8; BINDING_LEN],
    ) -> std::result::Result<NodeId, Refusal> {
        let invite_id = invitation.invite_id();
        if self.invite_id != invite_id {
            return Err(Refusal::WrongInvitation);
        }
        let expected = mac(invitation, binding, &self.node);
        if expected.verify_slice(&self.mac).is_err() {
            return Err(Refusal::BadProof);
        }
        self.node
            .verify(
                SIGN_PURPOSE,
                &[invite_id.as_bytes(), binding, &self.mac],
                &self.signature,
                "join proof",
            )
            .map_err(|_| Refusal::BadProof)?;
        Ok(self.node)
    }

    /// The 149-byte wire form.
    pub fn to_bytes(&self) -> [u8; JOIN_PROOF_LEN] {
        let mut b = [0u8; JOIN_PROOF_LEN];
        b[..4].copy_from_slice(PROOF_MAGIC);
        b[4] = PROOF_VERSION;
        b[5..21].copy_from_slice(self.invite_id.as_bytes());
        b[21..53].copy_from_slice(self.node.as_bytes());
        b[53..85].copy_from_slice(&self.mac);
        b[85..].copy_from_slice(&self.signature);
        b
    }

    /// Parses the wire form (exactly [`JOIN_PROOF_LEN`] bytes).
    pub fn decode(b: &[u8]) -> Result<Self> {
        let bad = |reason| Error::Malformed {
            what: "join proof",
            reason,
        };
        if b.len() < 5 || &b[..4] != PROOF_MAGIC {
            return Err(bad("does not start with \"in8j\""));
        }
        if b[4] != PROOF_VERSION {
            return Err(bad("unknown version (this build knows version 2)"));
        }
        if b.len() != JOIN_PROOF_LEN {
            return Err(bad("wrong length (version 2 is 149 bytes)"));
        }
        let arr = |r: std::ops::Range<usize>| -> [u8; 32] {
            let mut a = [0u8; 32];
            a.copy_from_slice(&b[r]);
            a
        };
        let mut id = [0u8; 16];
        id.copy_from_slice(&b[5..21]);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&b[85..]);
        Ok(Self {
            invite_id: InviteId::from_bytes(id),
            node: NodeId::from_bytes(arr(21..53)),
            mac: arr(53..85),
            signature,
        })
    }
}

/// Encodes a verdict.
pub fn encode_verdict(v: Verdict) -> [u8; VERDICT_LEN] {
    let mut b = [0u8; VERDICT_LEN];
    b[..4].copy_from_slice(VERDICT_MAGIC);
    b[4] = VERDICT_VERSION;
    b[5] = match v {
        Ok(()) => 0,
        Err(r) => r.code(),
    };
    b
}

/// Decodes a verdict.
pub fn decode_verdict(b: &[u8]) -> Result<Verdict> {
    let bad = |reason| Error::Malformed {
        what: "join verdict",
        reason,
    };
    if b.len() != VERDICT_LEN || &b[..4] != VERDICT_MAGIC {
        return Err(bad("not \"in8v\" + version + code"));
    }
    if b[4] != VERDICT_VERSION {
        return Err(bad("unknown version"));
    }
    match b[5] {
        0 => Ok(Ok(())),
        c => Refusal::from_code(c)
            .map(Err)
            .ok_or(bad("unknown refusal code")),
    }
}

/// Constant-time comparison helper for fingerprints.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use in8_artifact::fixtures;
    use proptest::prelude::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// Pinned vector: fixture Bob, fixture invitation (secret 00..0f), binding 32 × 0x42.
    /// Annotated in docs/transport.md.
    const VECTOR: &str = concat!(
        "696e386a", // "in8j"
        "02",       // version 2
    );

    #[test]
    fn pinned_vector() {
        let inv = fixtures::invitation();
        let p = JoinProof::create(&fixtures::bob(), &inv, &[0x42; 32]);
        let h = hex(&p.to_bytes());
        assert!(h.starts_with(VECTOR));
        assert_eq!(&h[10..42], hex(inv.invite_id().as_bytes()));
        assert_eq!(&h[42..106], hex(fixtures::bob().node_id().as_bytes()));
        assert_eq!(h, PINNED_PROOF, "the join-proof encoding changed");
        assert_eq!(hex(&encode_verdict(Ok(()))), "696e387601".to_owned() + "00");
        assert_eq!(
            hex(&encode_verdict(Err(Refusal::AlreadyUsed))),
            "696e38760103"
        );
    }

    const PINNED_PROOF: &str = concat!(
        "696e386a02",                                                       // "in8j", v2
        "4cd89c1a84902e89117c3d5c08ec54ef",                                 // invite id
        "705fbac01f5519899f437bc42e40255ae9ab54bff00de3433af7d687d9e71ad5", // Bob's node id
        "770fc91b522aa67228addbc5538ea4665c1700c486b899dfbea2b31affcc5cd2", // MAC
        "94f8783b3aec3ad9b6a5ca50409b8252d04c8f46dbb459132c608b147f4cebbf", // signature
        "c6f5874b829f3677f9981476548ee395abd059c5cdb61d7a2127f3fb310e5b0c",
    );

    #[test]
    fn key_binding_vector() {
        // SHA-256("in8/v1/join-cert-key" 0x00 || "spki"), pinned (docs/transport.md).
        assert_eq!(
            hex(&key_binding(b"spki")),
            KEY_BINDING_SPKI,
            "the key binding changed"
        );
        assert_ne!(key_binding(b"spki"), key_binding(b"spkj"));
        assert_eq!(
            join_proof_oid(),
            format!("{}.1", in8_artifact::cert::BINDING_OID)
        );
    }

    const KEY_BINDING_SPKI: &str =
        "76162e3b319c8afb7a62a7415acb73c7257102ceffc649b72aeb942cf77000f6";

    #[test]
    fn verifies_and_rejects() {
        let inv = fixtures::invitation();
        let bob = fixtures::bob();
        let p = JoinProof::create(&bob, &inv, &[7; 32]);
        assert_eq!(p.verify(&inv, &[7; 32]), Ok(bob.node_id()));
        // Another certificate key: the copied proof fails.
        assert_eq!(p.verify(&inv, &[8; 32]), Err(Refusal::BadProof));
        // Another invitation.
        let mut other = inv.clone();
        other.secret = in8_artifact::InviteSecret::from_bytes(&[9; 16]).unwrap();
        assert_eq!(p.verify(&other, &[7; 32]), Err(Refusal::WrongInvitation));
        // Someone else claiming Bob's MAC under their id: signature fails.
        let mut forged = p.clone();
        forged.node = fixtures::alice().node_id();
        assert_eq!(forged.verify(&inv, &[7; 32]), Err(Refusal::BadProof));
        let mut bad_sig = p.clone();
        bad_sig.signature[0] ^= 1;
        assert_eq!(bad_sig.verify(&inv, &[7; 32]), Err(Refusal::BadProof));
    }

    #[test]
    fn decode_rejects_malformed() {
        let p = JoinProof::create(&fixtures::bob(), &fixtures::invitation(), &[1; 32]).to_bytes();
        assert!(JoinProof::decode(&p[..148]).is_err());
        let mut v1 = p;
        v1[4] = 1;
        assert!(
            JoinProof::decode(&v1).is_err(),
            "version 1 proofs are not accepted"
        );
        assert!(JoinProof::decode(b"").is_err());
        assert!(JoinProof::decode(&[0x13, 0x88, 0x13, 0x88, 0]).is_err());
        assert!(decode_verdict(b"in8v\x01\x63").is_err());
        assert!(decode_verdict(b"in8v\x01").is_err());
    }

    proptest! {
        #[test]
        fn proof_round_trip(id in any::<[u8; 16]>(), node in any::<[u8; 32]>(),
                            mac in any::<[u8; 32]>(), s1 in any::<[u8; 32]>(), s2 in any::<[u8; 32]>()) {
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(&s1);
            signature[32..].copy_from_slice(&s2);
            let p = JoinProof { invite_id: InviteId::from_bytes(id), node: NodeId::from_bytes(node), mac, signature };
            prop_assert_eq!(JoinProof::decode(&p.to_bytes()).unwrap(), p);
        }

        #[test]
        fn verdict_round_trip(code in 0u8..8) {
            let v = if code == 0 { Ok(()) } else { Err(Refusal::from_code(code).unwrap()) };
            prop_assert_eq!(decode_verdict(&encode_verdict(v)).unwrap(), v);
        }

        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = JoinProof::decode(&b);
            let _ = decode_verdict(&b);
        }
    }
}
