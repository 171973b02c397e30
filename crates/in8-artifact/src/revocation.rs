//! Revocation records and the bounded set a node enforces.
//!
//! An invitation is revoked by its issuer (the record names the invite id; it applies only
//! to an invitation whose issuer signed the record). A member is revoked by a holder of
//! [`Capabilities::REVOKE`], who proves it by carrying its own credential in the record.
//! Records expire (`expires`, after which the revoked thing is invalid anyway), which bounds
//! how long a node must remember them.
//!
//! Body (deterministic CBOR map):
//!
//! | key | field | type | presence |
//! |-----|-------|------|----------|
//! | 0 | version | uint = 1 | required |
//! | 1 | kind | uint = 4 | required |
//! | 2 | network id | bstr 16 | required |
//! | 3 | target | [0, invite id bstr 16] or [1, member node id bstr 32] | required |
//! | 4 | issuer node id | bstr 32 | required |
//! | 5 | issued at | uint (Unix s) | required |
//! | 6 | expires | uint (Unix s) | required |
//! | 8 | issuer credential | bstr (membership record) | member revocations |
//!
//! Envelope `[body, signature]`, signature by the issuer with purpose `revocation`.

use std::collections::HashMap;

use crate::cbor::{Reader, unknown_key};
use crate::envelope::{ArtifactKind, body_header, body_start, open_as, seal, signature};
use crate::error::{Error, Result};
use crate::identity::{Identity, NodeId};
use crate::ids::{InviteId, NetworkId};
use crate::membership::SignedMembership;
use crate::policy::{Capabilities, VerifyPolicy};
use crate::time::Timestamp;

const SIGN_PURPOSE: &str = "revocation";

/// Answers "has this been revoked?" during verification.
pub trait Revocations {
    /// Whether the invitation `id` issued by `issuer` was revoked.
    fn invitation_revoked(&self, id: &InviteId, issuer: &NodeId) -> bool;
    /// Whether `member`'s credentials in `network` were revoked.
    fn member_revoked(&self, network: &NetworkId, member: &NodeId) -> bool;
}

/// No revocations known (e.g. a fresh invitee that has not joined any network yet).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRevocations;

impl Revocations for NoRevocations {
    fn invitation_revoked(&self, _: &InviteId, _: &NodeId) -> bool {
        false
    }
    fn member_revoked(&self, _: &NetworkId, _: &NodeId) -> bool {
        false
    }
}

/// What a revocation revokes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RevocationTarget {
    /// One invitation.
    Invitation(InviteId),
    /// A member's credentials.
    Member(NodeId),
}

/// The contents of a revocation record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// The network.
    pub network: NetworkId,
    /// What is revoked.
    pub target: RevocationTarget,
    /// Who revokes it.
    pub issuer: NodeId,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// After this, the record may be forgotten.
    pub expires: Timestamp,
    /// The issuer's credential, proving the revoke right (member revocations).
    pub credential: Option<SignedMembership>,
}

/// A revocation with its exact encoded bytes and signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRevocation {
    revocation: Revocation,
    body: Vec<u8>,
    signature: [u8; 64],
    bytes: Vec<u8>,
}

impl Revocation {
    /// Signs the record; `identity` must be the issuer.
    pub fn sign(self, identity: &Identity) -> Result<SignedRevocation> {
        if identity.node_id() != self.issuer {
            return Err(Error::PolicyDenied {
                reason: "a revocation must be signed by its issuer",
            });
        }
        let n = 7 + usize::from(self.credential.is_some());
        let mut e = body_start(ArtifactKind::Revocation, n);
        e.u64(2).bytes(self.network.as_bytes());
        e.u64(3).array(2);
        match &self.target {
            RevocationTarget::Invitation(id) => e.u64(0).bytes(id.as_bytes()),
            RevocationTarget::Member(id) => e.u64(1).bytes(id.as_bytes()),
        };
        e.u64(4).bytes(self.issuer.as_bytes());
        e.u64(5).u64(self.issued_at.as_unix());
        e.u64(6).u64(self.expires.as_unix());
        if let Some(c) = &self.credential {
            e.u64(8).bytes(c.to_bytes());
        }
        let body = e.finish();
        let sig = identity.sign(SIGN_PURPOSE, &[&body]);
        let bytes = seal(&body, &[&sig]);
        Ok(SignedRevocation {
            revocation: self,
            body,
            signature: sig,
            bytes,
        })
    }
}

impl SignedRevocation {
    /// Strictly decodes a revocation record. Does not verify it.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let o = open_as(bytes, ArtifactKind::Revocation)?;
        let mut r = Reader::new(o.body)?;
        let (_, mut keys) = body_header(&mut r)?;
        let (mut network, mut target, mut issuer, mut issued_at, mut expires) =
            (None, None, None, None, None);
        let (mut credential, mut ext) = (None, Vec::new());
        while let Some(k) = keys.next(&mut r)? {
            match k {
                2 => network = Some(NetworkId::from_bytes(r.fixed::<16>("network id", "16")?)),
                3 => {
                    if r.array("target", 2)? != 2 {
                        return Err(Error::MissingField { field: "target id" });
                    }
                    target = Some(match r.u64("target kind")? {
                        0 => RevocationTarget::Invitation(InviteId::from_bytes(
                            r.fixed::<16>("target", "16")?,
                        )),
                        1 => RevocationTarget::Member(NodeId::from_bytes(
                            r.fixed::<32>("target", "32")?,
                        )),
                        _ => {
                            return Err(Error::InvalidValue {
                                field: "target kind",
                                reason: "must be 0 (invitation) or 1 (member)",
                            });
                        }
                    });
                    r.leave();
                }
                4 => issuer = Some(NodeId::from_bytes(r.fixed::<32>("issuer", "32")?)),
                5 => issued_at = Some(Timestamp(r.u64("issued at")?)),
                6 => expires = Some(Timestamp(r.u64("expires")?)),
                8 => credential = Some(SignedMembership::decode(r.bytes("credential")?)?),
                k => unknown_key(&mut r, k, &mut ext)?,
            }
        }
        r.leave();
        r.finish()?;
        // Unknown odd fields are covered by the signature and kept in `bytes`; nothing in
        // this version reads them.
        drop(ext);
        let revocation = Revocation {
            network: network.ok_or(Error::MissingField {
                field: "network id",
            })?,
            target: target.ok_or(Error::MissingField { field: "target" })?,
            issuer: issuer.ok_or(Error::MissingField { field: "issuer" })?,
            issued_at: issued_at.ok_or(Error::MissingField { field: "issued at" })?,
            expires: expires.ok_or(Error::MissingField { field: "expires" })?,
            credential,
        };
        Ok(Self {
            revocation,
            body: o.body.to_vec(),
            signature: signature(o.tails[0])?,
            bytes: bytes.to_vec(),
        })
    }

    /// The decoded contents.
    pub fn revocation(&self) -> &Revocation {
        &self.revocation
    }

    /// The encoded record.
    pub fn to_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Verifies the signature and, for member revocations, the issuer's revoke right.
    pub fn verify(&self, now: Timestamp, policy: &VerifyPolicy) -> Result<&Revocation> {
        let rv = &self.revocation;
        rv.issuer
            .verify(SIGN_PURPOSE, &[&self.body], &self.signature, "revocation")?;
        if let RevocationTarget::Member(_) = rv.target {
            let cred = rv.credential.as_ref().ok_or(Error::PolicyDenied {
                reason: "a member revocation must carry the issuer's credential",
            })?;
            let m = cred.membership();
            if m.member != rv.issuer || m.network != rv.network {
                return Err(Error::PolicyDenied {
                    reason: "the carried credential is not the issuer's in this network",
                });
            }
            if !m.capabilities.contains(Capabilities::REVOKE) {
                return Err(Error::PolicyDenied {
                    reason: "the issuer lacks the revoke capability",
                });
            }
            cred.verify(now, policy, &NoRevocations)?;
        }
        Ok(rv)
    }
}

/// The revocations a node enforces, bounded to `capacity` entries; expired entries are
/// pruned first when it fills.
#[derive(Clone, Debug)]
pub struct RevocationSet {
    invitations: HashMap<(InviteId, NodeId), Timestamp>,
    members: HashMap<(NetworkId, NodeId), Timestamp>,
    capacity: usize,
}

impl RevocationSet {
    /// Default bound on the number of remembered revocations.
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// An empty set holding at most `capacity` revocations.
    pub fn new(capacity: usize) -> Self {
        Self {
            invitations: HashMap::new(),
            members: HashMap::new(),
            capacity,
        }
    }

    /// Number of remembered revocations.
    pub fn len(&self) -> usize {
        self.invitations.len() + self.members.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Verifies `record` and remembers it. Returns `true` if it was new.
    pub fn insert(
        &mut self,
        record: &SignedRevocation,
        now: Timestamp,
        policy: &VerifyPolicy,
    ) -> Result<bool> {
        let rv = record.verify(now, policy)?;
        if now >= rv.expires + policy.skew() {
            return Ok(false);
        }
        if self.len() >= self.capacity {
            self.prune(now);
            if self.len() >= self.capacity {
                return Err(Error::CapacityExceeded {
                    what: "revocation set",
                    limit: self.capacity,
                });
            }
        }
        Ok(match rv.target {
            RevocationTarget::Invitation(id) => self
                .invitations
                .insert((id, rv.issuer), rv.expires)
                .is_none(),
            RevocationTarget::Member(m) => {
                self.members.insert((rv.network, m), rv.expires).is_none()
            }
        })
    }

    /// Forgets revocations whose `expires` (plus the largest allowed clock skew) has passed.
    pub fn prune(&mut self, now: Timestamp) {
        let keep = |exp: &mut Timestamp| *exp + VerifyPolicy::MAX_SKEW > now;
        self.invitations.retain(|_, exp| keep(exp));
        self.members.retain(|_, exp| keep(exp));
    }
}

impl Default for RevocationSet {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl Revocations for RevocationSet {
    fn invitation_revoked(&self, id: &InviteId, issuer: &NodeId) -> bool {
        self.invitations.contains_key(&(*id, *issuer))
    }
    fn member_revoked(&self, network: &NetworkId, member: &NodeId) -> bool {
        self.members.contains_key(&(*network, *member))
    }
}
