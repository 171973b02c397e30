//! The RSVP: the invitee's reciprocal invitation, sent back out of band when phase 1 fails.
//!
//! Body (deterministic CBOR map):
//!
//! | key | field | type | presence |
//! |-----|-------|------|----------|
//! | 0 | version | uint = 1 | required |
//! | 1 | kind | uint = 2 | required |
//! | 2 | invite id | bstr 16 | required |
//! | 3 | responder node id | bstr 32 | required |
//! | 4 | responder ICE ufrag | tstr 4..=32 ice-chars | required |
//! | 5 | candidates | array of candidate bstr | required |
//! | 6 | expires | uint (Unix s) | required |
//! | 7 | cert fingerprint | bstr 32 | optional |
//! | 9 | responder's NAT behaviour | [mapping uint, filtering uint] | omitted when unknown |
//!
//! Envelope: `[body, mac, signature]` where `mac = HMAC-SHA256(rsvp_key, "in8/v1/rsvp-mac"
//! || 0x00 || body)[..16]` proves the sender held the invitation, and `signature` is the
//! responder's ed25519 signature (purpose `rsvp`) over `body || mac`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::candidate::{Candidate, check_list, decode_list, encode_list};
use crate::cbor::{Reader, unknown_key};
use crate::envelope::{ArtifactKind, body_header, body_start, open_as, seal, signature};
use crate::error::{Error, Result};
use crate::identity::{Identity, NodeId};
use crate::ids::InviteId;
use crate::invitation::Invitation;
use crate::nat::{NatBehaviour, decode_field};
use crate::policy::{Flags, VerifyPolicy};
use crate::secrets::{InviteSecret, check_ufrag};
use crate::time::Timestamp;

/// Length of the RSVP MAC (HMAC-SHA256 truncated to 128 bits).
pub const RSVP_MAC_LEN: usize = 16;
const SIGN_PURPOSE: &str = "rsvp";
/// Key of the responder's NAT behaviour (odd: readers that predate it ignore it).
const NAT_KEY: u64 = 9;

/// The contents of an RSVP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rsvp {
    /// The invitation this answers.
    pub invite_id: InviteId,
    /// The responder (invitee).
    pub responder: NodeId,
    /// The responder's ICE username fragment; its password derives from the invite secret.
    pub ufrag: String,
    /// The responder's candidates, most preferred first.
    pub candidates: Vec<Candidate>,
    /// End of validity (exclusive); the responder keeps its NAT bindings open until then.
    pub expires: Timestamp,
    /// SHA-256 fingerprint of the responder's DTLS certificate, when pinned.
    pub cert_fingerprint: Option<[u8; 32]>,
    /// The responder's NAT behaviour as it measured it (RFC 5780), when known: lets the
    /// inviter pick a hard-NAT strategy (birthday probing) for phase 2.
    pub nat: Option<NatBehaviour>,
    /// Unknown non-critical fields preserved from a newer encoder.
    pub extensions: Vec<(u64, Vec<u8>)>,
}

fn mac(secret: &InviteSecret, body: &[u8]) -> [u8; RSVP_MAC_LEN] {
    let key = secret.rsvp_key();
    let mut m = match <Hmac<Sha256> as Mac>::new_from_slice(key.as_ref()) {
        Ok(m) => m,
        // HMAC accepts keys of any length; this arm cannot be reached.
        Err(_) => return [0; RSVP_MAC_LEN],
    };
    m.update(b"in8/v1/rsvp-mac\0");
    m.update(body);
    let full = m.finalize().into_bytes();
    let mut out = [0u8; RSVP_MAC_LEN];
    out.copy_from_slice(&full[..RSVP_MAC_LEN]);
    out
}

impl Rsvp {
    /// Encodes, MACs with the invitation's RSVP key and signs. `identity` must be the responder.
    pub fn sign(self, identity: &Identity, secret: &InviteSecret) -> Result<SignedRsvp> {
        if identity.node_id() != self.responder {
            return Err(Error::PolicyDenied {
                reason: "an RSVP must be signed by its responder",
            });
        }
        if secret.invite_id() != self.invite_id {
            return Err(Error::WrongInvitation {
                expected: self.invite_id.to_string(),
                found: secret.invite_id().to_string(),
            });
        }
        check_ufrag(&self.ufrag)?;
        check_list(&self.candidates, "candidates")?;
        NatBehaviour::check(&self.nat, NAT_KEY, &self.extensions)?;
        let body = self.encode_body();
        let tag = mac(secret, &body);
        let sig = identity.sign(SIGN_PURPOSE, &[&body, &tag]);
        let bytes = seal(&body, &[&tag, &sig]);
        Ok(SignedRsvp {
            rsvp: self,
            body,
            mac: tag,
            signature: sig,
            bytes,
        })
    }

    fn encode_body(&self) -> Vec<u8> {
        let n = 7
            + usize::from(self.cert_fingerprint.is_some())
            + usize::from(self.nat.is_some())
            + self.extensions.len();
        let mut e = body_start(ArtifactKind::Rsvp, n);
        e.u64(2).bytes(self.invite_id.as_bytes());
        e.u64(3).bytes(self.responder.as_bytes());
        e.u64(4).str(&self.ufrag);
        e.u64(5);
        encode_list(&self.candidates, &mut e);
        e.u64(6).u64(self.expires.as_unix());
        if let Some(fp) = &self.cert_fingerprint {
            e.u64(7).bytes(fp);
        }
        if let Some(n) = &self.nat {
            e.u64(NAT_KEY);
            n.encode(&mut e);
        }
        e.extensions(&self.extensions);
        e.finish()
    }

    fn decode_body(body: &[u8]) -> Result<Self> {
        let mut r = Reader::new(body)?;
        let (_, mut keys) = body_header(&mut r)?;
        let (mut invite_id, mut responder, mut ufrag, mut candidates, mut expires) =
            (None, None, None, None, None);
        let mut cert_fingerprint = None;
        let mut nat = None;
        let mut extensions = Vec::new();
        while let Some(k) = keys.next(&mut r)? {
            match k {
                2 => invite_id = Some(InviteId::from_bytes(r.fixed::<16>("invite id", "16")?)),
                3 => responder = Some(NodeId::from_bytes(r.fixed::<32>("responder", "32")?)),
                4 => {
                    let u = r.str("ice ufrag")?;
                    check_ufrag(u)?;
                    ufrag = Some(u.to_owned());
                }
                5 => candidates = Some(decode_list(&mut r)?),
                6 => expires = Some(Timestamp(r.u64("expires")?)),
                7 => cert_fingerprint = Some(r.fixed::<32>("cert fingerprint", "32")?),
                NAT_KEY => decode_field(&mut r, k, &mut nat, &mut extensions)?,
                k => unknown_key(&mut r, k, &mut extensions)?,
            }
        }
        r.leave();
        r.finish()?;
        Ok(Self {
            invite_id: invite_id.ok_or(Error::MissingField { field: "invite id" })?,
            responder: responder.ok_or(Error::MissingField { field: "responder" })?,
            ufrag: ufrag.ok_or(Error::MissingField { field: "ice ufrag" })?,
            candidates: candidates.ok_or(Error::MissingField {
                field: "candidates",
            })?,
            expires: expires.ok_or(Error::MissingField { field: "expires" })?,
            cert_fingerprint,
            nat,
            extensions,
        })
    }
}

/// An RSVP with its exact encoded bytes, MAC and signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRsvp {
    rsvp: Rsvp,
    body: Vec<u8>,
    mac: [u8; RSVP_MAC_LEN],
    signature: [u8; 64],
    bytes: Vec<u8>,
}

impl SignedRsvp {
    /// Strictly decodes an RSVP. Does not verify it.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let o = open_as(bytes, ArtifactKind::Rsvp)?;
        let rsvp = Rsvp::decode_body(o.body)?;
        let mac = <[u8; RSVP_MAC_LEN]>::try_from(o.tails[0]).map_err(|_| Error::WrongSize {
            field: "rsvp mac",
            expected: "16",
            actual: o.tails[0].len(),
        })?;
        Ok(Self {
            rsvp,
            body: o.body.to_vec(),
            mac,
            signature: signature(o.tails[1])?,
            bytes: bytes.to_vec(),
        })
    }

    /// The decoded contents.
    pub fn rsvp(&self) -> &Rsvp {
        &self.rsvp
    }

    /// The encoded artifact (CBOR).
    pub fn to_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Verifies the RSVP against the invitation it claims to answer: the reference, the
    /// invitation's RSVP policy, the MAC under the RSVP key, the responder's signature and the
    /// expiry (with the policy's skew). Checks the reference and MAC first, so an RSVP from
    /// someone who never held the invitation costs no signature verification.
    pub fn verify(
        &self,
        invitation: &Invitation,
        now: Timestamp,
        policy: &VerifyPolicy,
    ) -> Result<&Rsvp> {
        let expected = invitation.invite_id();
        if self.rsvp.invite_id != expected {
            return Err(Error::WrongInvitation {
                expected: expected.to_string(),
                found: self.rsvp.invite_id.to_string(),
            });
        }
        if !invitation.flags.contains(Flags::RSVP_ALLOWED) {
            return Err(Error::PolicyDenied {
                reason: "the invitation does not allow RSVPs",
            });
        }
        let want = mac(&invitation.secret, &self.body);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&want[..], &self.mac[..])) {
            return Err(Error::BadMac { what: "RSVP" });
        }
        self.rsvp.responder.verify(
            SIGN_PURPOSE,
            &[&self.body, &self.mac],
            &self.signature,
            "RSVP",
        )?;
        if now >= self.rsvp.expires + policy.skew() {
            return Err(Error::Expired {
                expired_at: self.rsvp.expires,
                now,
            });
        }
        Ok(&self.rsvp)
    }
}
