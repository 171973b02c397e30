//! Any artifact, decoded from any of its forms.

use crate::envelope::{ArtifactKind, peek_kind};
use crate::error::Result;
use crate::invitation::SignedInvitation;
use crate::membership::SignedMembership;
use crate::revocation::SignedRevocation;
use crate::rsvp::SignedRsvp;
use crate::text::Form;

/// A decoded (not yet verified) artifact of any kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Artifact {
    /// An invitation.
    Invitation(SignedInvitation),
    /// An RSVP.
    Rsvp(SignedRsvp),
    /// A membership credential.
    Membership(SignedMembership),
    /// A revocation record.
    Revocation(SignedRevocation),
}

impl Artifact {
    /// Strictly decodes CBOR bytes of any artifact kind.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        Ok(match peek_kind(bytes)? {
            ArtifactKind::Invitation => Artifact::Invitation(SignedInvitation::decode(bytes)?),
            ArtifactKind::Rsvp => Artifact::Rsvp(SignedRsvp::decode(bytes)?),
            ArtifactKind::Membership => Artifact::Membership(SignedMembership::decode(bytes)?),
            ArtifactKind::Revocation => Artifact::Revocation(SignedRevocation::decode(bytes)?),
        })
    }

    /// Decodes any text or binary form (see [`crate::text`]); returns the form found too.
    pub fn parse(input: &[u8]) -> Result<(Self, Form)> {
        let (bytes, form) = crate::text::decode_any(input)?;
        Ok((Self::decode(&bytes)?, form))
    }

    /// The kind.
    pub fn kind(&self) -> ArtifactKind {
        match self {
            Artifact::Invitation(_) => ArtifactKind::Invitation,
            Artifact::Rsvp(_) => ArtifactKind::Rsvp,
            Artifact::Membership(_) => ArtifactKind::Membership,
            Artifact::Revocation(_) => ArtifactKind::Revocation,
        }
    }

    /// The encoded CBOR bytes.
    pub fn to_bytes(&self) -> &[u8] {
        match self {
            Artifact::Invitation(a) => a.to_bytes(),
            Artifact::Rsvp(a) => a.to_bytes(),
            Artifact::Membership(a) => a.to_bytes(),
            Artifact::Revocation(a) => a.to_bytes(),
        }
    }
}
