//! What an agent reports.

use core::fmt;
use std::net::SocketAddr;

use super::Role;

/// Why establishment or an established path failed. Each is something a user can be told
/// and act on (DESIGN §5: "Failure is detected and named").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureReason {
    /// No candidate pair could be formed (no remote candidates of a usable address family).
    NoCandidatePairs,
    /// Checks were sent but nothing authenticated came back: no response and no request
    /// from the peer. Next step: send the RSVP (phase 2).
    NothingReceived {
        /// Connectivity-check requests sent.
        requests_sent: u32,
    },
    /// Authenticated traffic arrived in one direction only: either our checks were
    /// answered but the peer's checks never reached us, or the peer's checks reached us
    /// but none of ours was answered. No pair was validated both ways.
    NoBidirectionalExchange {
        /// Success responses received to our checks.
        responses_received: u32,
        /// Authenticated requests received from the peer.
        requests_received: u32,
    },
    /// Pairs were validated but no pair was nominated in time (the controlling side did
    /// not nominate, or its nomination did not reach us).
    NotNominated,
    /// RFC 7675: no authenticated response on the selected pair for the consent timeout;
    /// sending on it has stopped.
    ConsentLost,
    /// The peer's checks carried credentials of another session (ICE restart on one side
    /// only).
    Restarted,
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCandidatePairs => f.write_str("no candidate pair could be formed"),
            Self::NothingReceived { requests_sent } => write!(
                f,
                "{requests_sent} checks sent, nothing came back (send the RSVP)"
            ),
            Self::NoBidirectionalExchange {
                responses_received,
                requests_received,
            } => write!(
                f,
                "no bidirectional exchange ({responses_received} responses, {requests_received} requests received; send the RSVP)"
            ),
            Self::NotNominated => f.write_str("pairs validated but none was nominated"),
            Self::ConsentLost => f.write_str("consent lost: the peer stopped answering"),
            Self::Restarted => f.write_str("the session was restarted"),
        }
    }
}

/// An event of an [`Agent`](crate::Agent).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Data may flow on this pair now: the first valid pair, then each better valid pair,
    /// then the nominated one (`nominated: true`). Send from `local` (a base) to `remote`.
    Selected {
        /// The local base.
        local: SocketAddr,
        /// The remote address.
        remote: SocketAddr,
        /// Whether the pair is nominated (ICE completed on it).
        nominated: bool,
    },
    /// A peer-reflexive remote candidate was learned from an authenticated request.
    PeerReflexive {
        /// Its address.
        addr: SocketAddr,
    },
    /// The role changed to resolve a role conflict (RFC 8445 §7.3.1.1, §7.2.5.1).
    RoleChanged {
        /// The new role.
        role: Role,
    },
    /// Establishment or consent failed; the reason says which and what to do next. When
    /// keep-open is configured the agent keeps answering and sending paced checks.
    Failed {
        /// Why.
        reason: FailureReason,
    },
    /// The keep-open period ended without a pair.
    KeepOpenEnded,
}
