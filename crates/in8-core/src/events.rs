//! What joins and invitations report while they progress, and their handles.

use std::net::SocketAddr;
use std::time::Duration;

use in8_artifact::{Candidate, InviteId, NodeId, SignedInvitation, SignedRsvp};
use tokio::sync::mpsc;

use crate::connection::Connection;
use crate::error::{Error, Result};

/// Which establishment phase produced a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// One-way: the invitee reached the inviter straight from the invitation.
    One,
    /// After an RSVP: both sides checked at once.
    Two,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::One => "phase 1",
            Phase::Two => "phase 2",
        })
    }
}

/// Progress of [`crate::Node::join`].
#[derive(Debug)]
#[non_exhaustive]
pub enum JoinEvent {
    /// This node's candidates (what an RSVP would carry).
    Gathered {
        /// Local candidates.
        candidates: Vec<Candidate>,
    },
    /// Connectivity checks towards the inviter's candidates started.
    Checking {
        /// How many candidates of the inviter are checked.
        remote_candidates: usize,
    },
    /// ICE found a working path; DTLS and the join proof run on it.
    Connecting {
        /// The inviter's address on that path.
        remote: SocketAddr,
    },
    /// Phase 1 failed for a named reason. Send `rsvp` to the inviter by any channel; this
    /// node keeps its NAT bindings open with paced checks until the RSVP expires, and the
    /// join continues (phase 2) when the inviter accepts it.
    Phase1Failed {
        /// Why one-way establishment failed (e.g. checks sent, nothing came back).
        reason: in8_ice::FailureReason,
        /// The RSVP to send back.
        rsvp: SignedRsvp,
    },
    /// Joined. Final.
    Connected(Connection),
    /// The join failed for good. Final.
    Failed(Error),
}

/// Progress of an invitation issued with [`crate::Node::invite`].
#[derive(Debug)]
#[non_exhaustive]
pub enum InviteEvent {
    /// An authenticated check for this invitation arrived: someone holding it is
    /// connecting.
    CheckReceived,
    /// ICE found a path to an invitee; DTLS and the join proof run on it.
    Connecting {
        /// The invitee's address.
        remote: SocketAddr,
    },
    /// An RSVP for this invitation was accepted: both sides are checking (phase 2).
    Phase2Started {
        /// Who sent the RSVP.
        responder: NodeId,
    },
    /// Someone joined. More may follow if the invitation has uses left.
    Joined(Connection),
    /// A join attempt was refused or failed (forged proof, used up, handshake failure).
    JoinFailed {
        /// The invitee's address.
        remote: SocketAddr,
        /// Why.
        error: Error,
    },
    /// The invitation expired or was revoked; nothing more will happen. Final.
    Ended {
        /// Why.
        reason: crate::proto::InviteEnd,
    },
}

/// A join in progress: read its events until [`JoinEvent::Connected`] or
/// [`JoinEvent::Failed`].
#[derive(Debug)]
pub struct Join {
    pub(crate) invite: InviteId,
    pub(crate) events: mpsc::UnboundedReceiver<JoinEvent>,
}

impl Join {
    /// The invitation being joined.
    pub fn invite_id(&self) -> InviteId {
        self.invite
    }

    /// The next event; `None` after the final one (or if the node shut down).
    pub async fn next(&mut self) -> Option<JoinEvent> {
        self.events.recv().await
    }

    /// Waits until connected, ignoring progress. A phase-1 failure is returned as
    /// [`Error::Unreachable`] carrying no RSVP: use [`Join::next`] to get the RSVP instead.
    pub async fn connected(mut self) -> Result<Connection> {
        while let Some(e) = self.next().await {
            match e {
                JoinEvent::Connected(c) => return Ok(c),
                JoinEvent::Failed(e) => return Err(e),
                JoinEvent::Phase1Failed { reason, .. } => {
                    return Err(Error::Unreachable {
                        reason: crate::proto::Unreachable::NeedsRsvp(reason),
                    });
                }
                _ => {}
            }
        }
        Err(Error::Closed)
    }
}

/// An outstanding invitation: its artifact and the joins it brings.
#[derive(Debug)]
pub struct Invite {
    pub(crate) invitation: SignedInvitation,
    pub(crate) events: mpsc::UnboundedReceiver<InviteEvent>,
}

impl Invite {
    /// The signed invitation to hand out (see `in8_artifact::text` for its forms).
    pub fn invitation(&self) -> &SignedInvitation {
        &self.invitation
    }

    /// The next event; `None` after [`InviteEvent::Ended`] (or if the node shut down).
    pub async fn next(&mut self) -> Option<InviteEvent> {
        self.events.recv().await
    }

    /// Waits for the next successful join.
    pub async fn joined(&mut self) -> Result<Connection> {
        while let Some(e) = self.next().await {
            match e {
                InviteEvent::Joined(c) => return Ok(c),
                InviteEvent::Ended { reason } => return Err(Error::InvitationEnded(reason)),
                _ => {}
            }
        }
        Err(Error::Closed)
    }
}

/// Options of [`crate::Node::invite`].
#[derive(Clone, Debug)]
pub struct InviteOptions {
    /// Validity from now (default 15 minutes).
    pub ttl: Duration,
    /// How many joins it admits (default 1).
    pub uses: u32,
    /// Whether the invitee may answer with an RSVP (default true).
    pub allow_rsvp: bool,
    /// Rights granted to the invitee.
    pub capabilities: in8_artifact::Capabilities,
    /// Advertise only the relay candidate (like WebRTC's `iceTransportPolicy: "relay"`):
    /// hides this node's addresses, and needs a TURN allocation ([`crate::Config::turn`])
    /// and [`crate::Config::allow_relay`].
    pub relay_only: bool,
    /// Name up to this many members (at most 7) as entry peers: publicly reachable ones
    /// first (linked, or dialled to hand them the invitation), then other linked ones. The
    /// invitee reaches whichever answers, and a single-use invitation redeemed at one is
    /// announced to the others (default 0).
    pub entry_peers: usize,
}

impl Default for InviteOptions {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(15 * 60),
            uses: 1,
            allow_rsvp: true,
            // Newcomers may introduce others and invite further members (never more than
            // the issuer holds); revoking stays with whoever is given it explicitly.
            capabilities: in8_artifact::Capabilities::INTRODUCE
                .with(in8_artifact::Capabilities::INVITE),
            relay_only: false,
            entry_peers: 0,
        }
    }
}
