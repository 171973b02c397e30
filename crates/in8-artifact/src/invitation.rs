//! The invitation: a signed, self-contained bearer capability to join a network.
//!
//! Build one with [`Invitation::new`] and the `with_*` methods, sign it with
//! [`Invitation::sign`], carry [`SignedInvitation::to_bytes`] (or a text form from
//! [`crate::text`]) out of band, and on the other side [`SignedInvitation::decode`] then
//! [`SignedInvitation::verify`].

mod wire;

use core::time::Duration;

use crate::candidate::Candidate;
use crate::error::{Error, Result};
use crate::identity::{Identity, NodeId};
use crate::ids::{InviteId, NetworkId};
use crate::nat::NatBehaviour;
use crate::policy::{Capabilities, Flags, ServerHint, TopologyRole, VerifyPolicy};
use crate::revocation::Revocations;
use crate::secrets::InviteSecret;
use crate::time::Timestamp;

/// Most entry peers an invitation may list besides its issuer.
pub const MAX_ENTRY_PEERS: usize = 8;
/// Most server hints an invitation may carry.
pub const MAX_SERVER_HINTS: usize = 4;
/// Largest use limit an invitation may carry.
pub const MAX_USES: u32 = 1_000_000;

pub(crate) const SIGN_PURPOSE: &str = "invitation";

/// Another member of the network the invitee may reach instead of the issuer (seed claim 23).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryPeer {
    /// The entry peer's node id.
    pub id: NodeId,
    /// Where it can be reached.
    pub candidates: Vec<Candidate>,
}

/// The contents of an invitation (see docs/artifact.md for the wire form of each field).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    /// The network the invitee joins.
    pub network: NetworkId,
    /// The issuer (signer), whose DTLS certificate the invitee will accept.
    pub issuer: NodeId,
    /// The bearer secret; ICE credentials, join-proof and RSVP keys derive from it.
    pub secret: InviteSecret,
    /// The issuer's candidates, most preferred first.
    pub candidates: Vec<Candidate>,
    /// End of validity (exclusive).
    pub expires: Timestamp,
    /// Start of validity, when the issuer set one.
    pub not_before: Option<Timestamp>,
    /// How many joins the invitation admits (1 = single use).
    pub uses: u32,
    /// Establishment policy.
    pub flags: Flags,
    /// Rights the invitee will be granted (never wider than the issuer's own).
    pub capabilities: Capabilities,
    /// Proposed overlay role for the invitee.
    pub role: TopologyRole,
    /// SHA-256 fingerprint of the issuer's DTLS certificate, when pinned. When absent the
    /// certificate must carry the issuer's signature over its key ([`crate::cert`]).
    pub cert_fingerprint: Option<[u8; 32]>,
    /// Optional STUN / TURN / rendezvous servers.
    pub servers: Vec<ServerHint>,
    /// Other members the invitee may reach instead of the issuer.
    pub entry_peers: Vec<EntryPeer>,
    /// The issuer's NAT behaviour as it measured it (RFC 5780), when known: lets the
    /// invitee pick a hard-NAT strategy (birthday probing) for phase 2.
    pub nat: Option<NatBehaviour>,
    /// Unknown non-critical fields (odd keys) preserved from a newer encoder.
    pub extensions: Vec<(u64, Vec<u8>)>,
}

impl Invitation {
    /// A single-use invitation valid for `ttl` from `now`, with RSVP allowed, relays not
    /// allowed, and no capabilities.
    pub fn new(
        network: NetworkId,
        issuer: NodeId,
        secret: InviteSecret,
        candidates: Vec<Candidate>,
        now: Timestamp,
        ttl: Duration,
    ) -> Self {
        Self {
            network,
            issuer,
            secret,
            candidates,
            expires: now + ttl,
            not_before: None,
            uses: 1,
            flags: Flags::RSVP_ALLOWED,
            capabilities: Capabilities::NONE,
            role: TopologyRole::Auto,
            cert_fingerprint: None,
            servers: Vec::new(),
            entry_peers: Vec::new(),
            nat: None,
            extensions: Vec::new(),
        }
    }

    /// The invitation id (derived from the secret).
    pub fn invite_id(&self) -> InviteId {
        self.secret.invite_id()
    }

    /// Checks field bounds, encodes and signs. `identity` must be the issuer.
    pub fn sign(self, identity: &Identity) -> Result<SignedInvitation> {
        if identity.node_id() != self.issuer {
            return Err(Error::PolicyDenied {
                reason: "an invitation must be signed by its issuer",
            });
        }
        self.check()?;
        let body = wire::encode_body(&self);
        let signature = identity.sign(SIGN_PURPOSE, &[&body]);
        let bytes = crate::envelope::seal(&body, &[&signature]);
        Ok(SignedInvitation {
            invitation: self,
            body,
            signature,
            bytes,
        })
    }

    fn check(&self) -> Result<()> {
        crate::candidate::check_list(&self.candidates, "candidates")?;
        if self.uses == 0 || self.uses > MAX_USES {
            return Err(Error::InvalidValue {
                field: "uses",
                reason: "must be 1..=1000000",
            });
        }
        if self.entry_peers.len() > MAX_ENTRY_PEERS {
            return Err(Error::WrongSize {
                field: "entry peers",
                expected: "at most 8",
                actual: self.entry_peers.len(),
            });
        }
        for p in &self.entry_peers {
            crate::candidate::check_list(&p.candidates, "entry peer candidates")?;
        }
        if self.servers.len() > MAX_SERVER_HINTS {
            return Err(Error::WrongSize {
                field: "server hints",
                expected: "at most 4",
                actual: self.servers.len(),
            });
        }
        if self
            .servers
            .iter()
            .any(|s| s.host.is_empty() || s.host.len() > 253)
        {
            return Err(Error::InvalidValue {
                field: "server hint",
                reason: "host must be 1..=253 bytes",
            });
        }
        if let Some(nb) = self.not_before
            && nb >= self.expires
        {
            return Err(Error::InvalidValue {
                field: "not before",
                reason: "must be earlier than the expiry",
            });
        }
        NatBehaviour::check(&self.nat, wire::NAT_KEY, &self.extensions)
    }
}

/// An invitation with its exact encoded bytes and signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedInvitation {
    invitation: Invitation,
    body: Vec<u8>,
    signature: [u8; 64],
    bytes: Vec<u8>,
}

/// One verification step and its outcome, for tools that show every check (`in8 inspect`).
#[derive(Debug)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// `Ok` or why it failed.
    pub outcome: Result<()>,
}

impl SignedInvitation {
    /// Strictly decodes an invitation (see docs/artifact.md). Does not verify it.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let o = crate::envelope::open_as(bytes, crate::ArtifactKind::Invitation)?;
        let invitation = wire::decode_body(o.body)?;
        let signature = crate::envelope::signature(o.tails[0])?;
        Ok(Self {
            invitation,
            body: o.body.to_vec(),
            signature,
            bytes: bytes.to_vec(),
        })
    }

    /// The decoded contents.
    pub fn invitation(&self) -> &Invitation {
        &self.invitation
    }

    /// The encoded artifact (CBOR).
    pub fn to_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The issuer's signature.
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }

    /// Verifies the issuer's signature over the exact body bytes.
    pub fn verify_signature(&self) -> Result<()> {
        self.invitation
            .issuer
            .verify(SIGN_PURPOSE, &[&self.body], &self.signature, "invitation")
    }

    /// Checks validity at `now` against the bounded skew: `not_before - skew <= now <
    /// expires + skew`.
    pub fn verify_time(&self, now: Timestamp, policy: &VerifyPolicy) -> Result<()> {
        let skew = policy.skew();
        if let Some(nb) = self.invitation.not_before
            && now + skew < nb
        {
            return Err(Error::NotYetValid {
                not_before: nb,
                now,
            });
        }
        if now >= self.invitation.expires + skew {
            return Err(Error::Expired {
                expired_at: self.invitation.expires,
                now,
            });
        }
        Ok(())
    }

    /// Checks that neither the invitation nor its issuer has been revoked.
    pub fn verify_not_revoked(&self, revocations: &dyn Revocations) -> Result<()> {
        let inv = &self.invitation;
        if revocations.invitation_revoked(&inv.invite_id(), &inv.issuer) {
            return Err(Error::Revoked {
                what: "this invitation",
            });
        }
        if revocations.member_revoked(&inv.network, &inv.issuer) {
            return Err(Error::Revoked {
                what: "the issuer's membership",
            });
        }
        Ok(())
    }

    /// Full verification: signature, time window, revocation. Single use is enforced by the
    /// issuer's ledger at redemption ([`crate::Ledger::redeem`]).
    pub fn verify(
        &self,
        now: Timestamp,
        policy: &VerifyPolicy,
        revocations: &dyn Revocations,
    ) -> Result<&Invitation> {
        self.verify_signature()?;
        self.verify_time(now, policy)?;
        self.verify_not_revoked(revocations)?;
        Ok(&self.invitation)
    }

    /// Every check with its outcome, in order (for diagnostics).
    pub fn checks(
        &self,
        now: Timestamp,
        policy: &VerifyPolicy,
        revocations: &dyn Revocations,
    ) -> Vec<Check> {
        vec![
            Check {
                name: "signature",
                outcome: self.verify_signature(),
            },
            Check {
                name: "validity period",
                outcome: self.verify_time(now, policy),
            },
            Check {
                name: "not revoked",
                outcome: self.verify_not_revoked(revocations),
            },
        ]
    }
}
