//! Membership credentials: who belongs to a network, with which rights, issued by whom.
//!
//! A credential chains up to the network's creator: each record carries its issuer's record
//! as `parent`, to a depth of at most [`MAX_CHAIN_DEPTH`]. The root record is self-issued by
//! the creator and carries the genesis nonce, so that
//! `NetworkId::derive(creator, nonce) == network` and the chain needs no outside trust anchor.
//! Rights only narrow along the chain: a child's capabilities are a subset of its parent's and
//! it expires no later; only holders of [`Capabilities::INVITE`] may issue.
//!
//! Body (deterministic CBOR map):
//!
//! | key | field | type | presence |
//! |-----|-------|------|----------|
//! | 0 | version | uint = 1 | required |
//! | 1 | kind | uint = 3 | required |
//! | 2 | network id | bstr 16 | required |
//! | 3 | member node id | bstr 32 | required |
//! | 4 | issuer node id | bstr 32 | required |
//! | 5 | capabilities | uint | required |
//! | 6 | expires | uint (Unix s) | required |
//! | 7 | genesis nonce | uint | root only |
//! | 8 | parent | bstr (the issuer's encoded record) | all but the root |
//!
//! Envelope `[body, signature]`, signature by the issuer with purpose `membership`.

use crate::cbor::{Reader, unknown_key};
use crate::envelope::{ArtifactKind, body_header, body_start, open_as, seal, signature};
use crate::error::{Error, Result};
use crate::identity::{Identity, NodeId};
use crate::ids::NetworkId;
use crate::policy::{Capabilities, VerifyPolicy};
use crate::revocation::Revocations;
use crate::time::Timestamp;

/// Longest chain from a member to the creator (the root record is depth 0).
pub const MAX_CHAIN_DEPTH: usize = 8;
const SIGN_PURPOSE: &str = "membership";

/// The contents of a membership credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// The network.
    pub network: NetworkId,
    /// The member this credential is for.
    pub member: NodeId,
    /// Who issued (signed) it.
    pub issuer: NodeId,
    /// The member's rights.
    pub capabilities: Capabilities,
    /// End of validity (exclusive).
    pub expires: Timestamp,
    /// The genesis nonce (root record only).
    pub genesis: Option<u64>,
    /// The issuer's own credential (absent only on the root).
    pub parent: Option<Box<SignedMembership>>,
    /// Unknown non-critical fields preserved from a newer encoder.
    pub extensions: Vec<(u64, Vec<u8>)>,
}

/// A membership credential with its exact encoded bytes and signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedMembership {
    membership: Membership,
    body: Vec<u8>,
    signature: [u8; 64],
    bytes: Vec<u8>,
}

impl Membership {
    /// Creates a network: the creator's self-issued root credential with every right.
    pub fn genesis(creator: &Identity, nonce: u64, expires: Timestamp) -> SignedMembership {
        let id = creator.node_id();
        Membership {
            network: NetworkId::derive(&id, nonce),
            member: id,
            issuer: id,
            capabilities: Capabilities(u32::MAX),
            expires,
            genesis: Some(nonce),
            parent: None,
            extensions: Vec::new(),
        }
        .seal(creator)
    }

    /// Issues a credential for `member`, signed by `issuer` whose own credential is
    /// `issuer_record`. Fails if the rights would widen or the chain would grow too long.
    pub fn issue(
        issuer: &Identity,
        issuer_record: &SignedMembership,
        member: NodeId,
        capabilities: Capabilities,
        expires: Timestamp,
    ) -> Result<SignedMembership> {
        let parent = issuer_record.membership();
        if parent.member != issuer.node_id() {
            return Err(Error::BadChain {
                reason: "the issuer's record belongs to someone else",
            });
        }
        if issuer_record.depth() + 1 > MAX_CHAIN_DEPTH {
            return Err(Error::BadChain {
                reason: "chain would exceed the depth limit",
            });
        }
        let rec = Membership {
            network: parent.network,
            member,
            issuer: issuer.node_id(),
            capabilities,
            expires,
            genesis: None,
            parent: Some(Box::new(issuer_record.clone())),
            extensions: Vec::new(),
        };
        rec.check_link(parent)?;
        Ok(rec.seal(issuer))
    }

    fn seal(self, signer: &Identity) -> SignedMembership {
        let body = self.encode_body();
        let sig = signer.sign(SIGN_PURPOSE, &[&body]);
        let bytes = seal(&body, &[&sig]);
        SignedMembership {
            membership: self,
            body,
            signature: sig,
            bytes,
        }
    }

    /// The attenuation rules between this record and its parent.
    fn check_link(&self, parent: &Membership) -> Result<()> {
        if parent.network != self.network {
            return Err(Error::BadChain {
                reason: "parent is for another network",
            });
        }
        if parent.member != self.issuer {
            return Err(Error::BadChain {
                reason: "issuer is not the parent record's member",
            });
        }
        if !parent.capabilities.contains(Capabilities::INVITE) {
            return Err(Error::BadChain {
                reason: "issuer lacks the invite capability",
            });
        }
        if !parent.capabilities.contains(self.capabilities) {
            return Err(Error::BadChain {
                reason: "capabilities wider than the issuer's",
            });
        }
        if self.expires > parent.expires {
            return Err(Error::BadChain {
                reason: "expires after the issuer's record",
            });
        }
        Ok(())
    }

    fn encode_body(&self) -> Vec<u8> {
        let n = 7
            + usize::from(self.genesis.is_some())
            + usize::from(self.parent.is_some())
            + self.extensions.len();
        let mut e = body_start(ArtifactKind::Membership, n);
        e.u64(2).bytes(self.network.as_bytes());
        e.u64(3).bytes(self.member.as_bytes());
        e.u64(4).bytes(self.issuer.as_bytes());
        e.u64(5).u64(u64::from(self.capabilities.0));
        e.u64(6).u64(self.expires.as_unix());
        if let Some(g) = self.genesis {
            e.u64(7).u64(g);
        }
        if let Some(p) = &self.parent {
            e.u64(8).bytes(p.to_bytes());
        }
        e.extensions(&self.extensions);
        e.finish()
    }

    fn decode_body(body: &[u8], depth: usize) -> Result<Self> {
        let mut r = Reader::new(body)?;
        let (_, mut keys) = body_header(&mut r)?;
        let (mut network, mut member, mut issuer, mut caps, mut expires) =
            (None, None, None, None, None);
        let (mut genesis, mut parent, mut extensions) = (None, None, Vec::new());
        while let Some(k) = keys.next(&mut r)? {
            match k {
                2 => network = Some(NetworkId::from_bytes(r.fixed::<16>("network id", "16")?)),
                3 => member = Some(NodeId::from_bytes(r.fixed::<32>("member", "32")?)),
                4 => issuer = Some(NodeId::from_bytes(r.fixed::<32>("issuer", "32")?)),
                5 => caps = Some(Capabilities(r.u32("capabilities")?)),
                6 => expires = Some(Timestamp(r.u64("expires")?)),
                7 => genesis = Some(r.u64("genesis nonce")?),
                8 => {
                    let raw = r.bytes("parent")?;
                    parent = Some(Box::new(SignedMembership::decode_at(raw, depth + 1)?));
                }
                k => unknown_key(&mut r, k, &mut extensions)?,
            }
        }
        r.leave();
        r.finish()?;
        if genesis.is_some() == parent.is_some() {
            return Err(Error::BadChain {
                reason: "a record has either a genesis nonce (root) or a parent, not both or neither",
            });
        }
        Ok(Self {
            network: network.ok_or(Error::MissingField {
                field: "network id",
            })?,
            member: member.ok_or(Error::MissingField { field: "member" })?,
            issuer: issuer.ok_or(Error::MissingField { field: "issuer" })?,
            capabilities: caps.ok_or(Error::MissingField {
                field: "capabilities",
            })?,
            expires: expires.ok_or(Error::MissingField { field: "expires" })?,
            genesis,
            parent,
            extensions,
        })
    }
}

impl SignedMembership {
    /// Strictly decodes a credential and its whole chain. Does not verify it.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        Self::decode_at(bytes, 0)
    }

    fn decode_at(bytes: &[u8], depth: usize) -> Result<Self> {
        if depth > MAX_CHAIN_DEPTH {
            return Err(Error::BadChain {
                reason: "chain exceeds the depth limit",
            });
        }
        let o = open_as(bytes, ArtifactKind::Membership)?;
        Ok(Self {
            membership: Membership::decode_body(o.body, depth)?,
            body: o.body.to_vec(),
            signature: signature(o.tails[0])?,
            bytes: bytes.to_vec(),
        })
    }

    /// The decoded contents.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// The encoded credential (CBOR), chain included.
    pub fn to_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Distance to the root (the root is 0).
    pub fn depth(&self) -> usize {
        self.membership.parent.as_ref().map_or(0, |p| 1 + p.depth())
    }

    /// Verifies every link up to the root: signatures, attenuation, expiry, revocation, and
    /// that the root's genesis derives the network id. Returns the creator's node id.
    pub fn verify(
        &self,
        now: Timestamp,
        policy: &VerifyPolicy,
        revocations: &dyn Revocations,
    ) -> Result<NodeId> {
        let m = &self.membership;
        m.issuer.verify(
            SIGN_PURPOSE,
            &[&self.body],
            &self.signature,
            "membership record",
        )?;
        if now >= m.expires + policy.skew() {
            return Err(Error::Expired {
                expired_at: m.expires,
                now,
            });
        }
        if revocations.member_revoked(&m.network, &m.member) {
            return Err(Error::Revoked {
                what: "this membership",
            });
        }
        match (&m.parent, m.genesis) {
            (Some(parent), None) => {
                m.check_link(parent.membership())?;
                parent.verify(now, policy, revocations)
            }
            (None, Some(nonce)) => {
                if m.issuer != m.member || NetworkId::derive(&m.issuer, nonce) != m.network {
                    return Err(Error::BadChain {
                        reason: "root record does not derive the network id",
                    });
                }
                Ok(m.issuer)
            }
            _ => Err(Error::BadChain {
                reason: "a record has either a genesis nonce or a parent",
            }),
        }
    }
}
