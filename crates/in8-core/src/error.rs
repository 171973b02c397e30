//! The facade's error type: what went wrong and what the caller can do about it.

use std::time::Duration;

use in8_transport::Refusal;

/// Everything the in8 facade can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The invitation or RSVP is malformed, forged, expired, revoked or used up.
    #[error(transparent)]
    Artifact(#[from] in8_artifact::Error),
    /// The inviter refused the join proof.
    #[error("the inviter refused the join: {}", refusal_advice(*.0))]
    JoinRefused(Refusal),
    /// Establishment failed and no RSVP can follow (the invitation forbids it, or its
    /// keep-open period ended).
    #[error("could not connect: {reason}")]
    Unreachable {
        /// Why.
        reason: crate::proto::Unreachable,
    },
    /// The invitation ended before this join (expired, revoked, used up).
    #[error("the invitation {0}")]
    InvitationEnded(crate::proto::InviteEnd),
    /// This node's credential does not allow it.
    #[error("not allowed to {what}")]
    NotAllowed {
        /// What was refused.
        what: &'static str,
    },
    /// This node is not (or no longer) a member of a network.
    #[error("this node is not a member of a network (it left, or was revoked)")]
    NotAMember,
    /// No member with this id is known.
    #[error("no member {} is known to this node", .0.short())]
    UnknownMember(in8_artifact::NodeId),
    /// Too large.
    #[error("{what} of {len} bytes is over the limit of {max}")]
    TooLarge {
        /// What.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A gossip operation failed (bad configuration, a revocation that does not verify).
    #[error("gossip: {0}")]
    Gossip(#[from] in8_gossip::Error),
    /// The topology policy is invalid.
    #[error("topology: {0}")]
    Topology(#[from] in8_topology::Error),
    /// The secure session could not be set up on the path ICE found.
    #[error("secure session failed: {0}")]
    Transport(#[from] in8_transport::Error),
    /// ICE refused an operation (a bound was reached, an invalid RSVP).
    #[error("ICE: {0}")]
    Ice(#[from] in8_ice::Error),
    /// The invitation was issued by this node itself.
    #[error("this invitation was issued by this node; give it to the peer that should join")]
    OwnInvitation,
    /// No outstanding invitation matches (e.g. an RSVP for an invitation this node did not
    /// issue, or issued before a restart without `--home`).
    #[error(
        "no outstanding invitation {0} on this node: the RSVP answers an invitation from another node or an expired one"
    )]
    UnknownInvitation(String),
    /// A configured bound was reached.
    #[error("{what} limit ({limit}) reached; wait for some to finish or raise the limit")]
    Limit {
        /// What is bounded.
        what: &'static str,
        /// The bound.
        limit: usize,
    },
    /// A relay-only invitation was asked for but this node has no relay.
    #[error(
        "no relay candidate: configure a reachable TURN server (--turn) and allow relays (--relay)"
    )]
    NoRelay,
    /// The node has shut down.
    #[error("the node has shut down")]
    Closed,
    /// Waited too long.
    #[error("{what} timed out after {} s", .after.as_secs())]
    Timeout {
        /// What was awaited.
        what: &'static str,
        /// After how long.
        after: Duration,
    },
    /// A socket or file operation failed.
    #[error("{action}: {source}")]
    Io {
        /// What was being done.
        action: String,
        /// The OS error.
        source: std::io::Error,
    },
}

fn refusal_advice(r: Refusal) -> &'static str {
    match r {
        Refusal::AlreadyUsed => {
            "the invitation was already used; if not by you, someone else redeemed it first: tell the inviter and ask for a new one"
        }
        Refusal::Expired => "the invitation has expired; ask the inviter for a new one",
        Refusal::Revoked => "the invitation was revoked; ask the inviter for a new one",
        Refusal::BadProof | Refusal::WrongInvitation => {
            "the inviter did not accept our proof of holding this invitation; ask for a fresh invitation"
        }
        Refusal::NotAJoinProof => "protocol error (data before the join proof)",
        Refusal::Unavailable => "the inviter could not record the join right now; try again",
        _ => "the inviter refused",
    }
}

/// Shorthand for `Result<T, in8_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
