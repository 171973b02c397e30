//! What the sans-IO core hands its driver: actions, events and the inputs that answer
//! them. Every outcome is a typed enum; nothing here carries a `String` reason.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use in8_artifact::{
    Invitation, InviteId, NetworkId, NodeId, SignedInvitation, SignedMembership, SignedRsvp,
};
use in8_gossip::SignedPeerRecord;
use in8_ice::FailureReason;
use in8_ice::nat::NatClass;
use in8_transport::PeerAuth;

use crate::connection::PathInfo;
use crate::error::Error;
use crate::events::Phase;

/// One secure session (a DTLS attempt, then an established link), named by the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub u64);

/// One [`crate::proto::Core::join`] in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JoinId(pub u64);

/// A group of extra sockets (the hard side of birthday probing for one ICE session).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SocketGroup(pub u64);

/// How the DTLS client side of a link authenticates and what it proves.
#[derive(Clone, Debug)]
pub enum ClientMode {
    /// An invitee: present the join certificate for `invitation`, authenticate the inviter
    /// (or entry peer) by `expect`, wait for the verdict.
    Join {
        /// The invitation being redeemed.
        invitation: Box<Invitation>,
        /// The inviter's or entry peer's certificate.
        expect: PeerAuth,
    },
    /// Between members: mutual authentication by identity-bound certificates.
    Member {
        /// The peer.
        peer: NodeId,
    },
}

/// How the DTLS server side of a link authenticates its client.
#[derive(Clone, Debug)]
pub enum ServerMode {
    /// An inviter or entry peer: verify the join proof for `invitation`, redeem it in the
    /// ledger, answer with the verdict.
    Join {
        /// The invitation.
        invitation: Box<Invitation>,
        /// The invitee's certificate when known (after an RSVP that pinned it).
        expect: PeerAuth,
    },
    /// Between members.
    Member {
        /// The peer.
        peer: NodeId,
    },
}

/// Why the core closes a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseCause {
    /// The overlay no longer wants it.
    NotNeeded,
    /// Another link to the same peer won.
    Duplicate,
    /// The peer is not (or no longer) a member: bad, expired or revoked credential.
    NotAMember,
    /// The peer sent something this node refuses (a malformed frame, a flood).
    Misbehaved,
    /// The attempt it belonged to ended (revoked invitation, failed join).
    Abandoned,
    /// ICE consent was lost on its path.
    ConsentLost,
    /// This node leaves the network or shuts down.
    Leaving,
}

/// What the core persists (written atomically, 0600, by the driver).
#[derive(Clone, Debug)]
pub enum Store {
    /// An invitation this node issued (listened for again after a restart).
    Invitation(Box<SignedInvitation>),
    /// An invitation that ended.
    ForgetInvitation(InviteId),
    /// This node's membership credential.
    Credential(Box<SignedMembership>),
    /// The members last known (to rejoin from after a restart), at most
    /// [`crate::NetworkConfig::remembered`].
    Members(Vec<SignedPeerRecord>),
    /// The node left its network for good.
    ForgetNetwork,
}

/// Work the driver does for the core (the drive contract is in [`crate::proto`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum Action {
    /// Start the DTLS client of `link` from socket `local` to `remote` (through the
    /// relay when `relayed`). Answer with [`LinkInput::Up`] or [`LinkInput::Failed`].
    Connect {
        /// The link.
        link: LinkId,
        /// The local base (a node socket, a promoted birthday socket, or the relayed
        /// address).
        local: SocketAddr,
        /// The peer.
        remote: SocketAddr,
        /// `local` is the TURN relay's address.
        relayed: bool,
        /// What the client proves and expects.
        mode: ClientMode,
    },
    /// Register the DTLS server route of `link` for `remote` now, so that its first
    /// flight is queued; the handshake starts with [`Action::Accept`]. Dropping the route
    /// ([`Action::Close`]) releases it.
    Reserve {
        /// The link.
        link: LinkId,
        /// The local base.
        local: SocketAddr,
        /// The peer.
        remote: SocketAddr,
        /// `local` is the TURN relay's address.
        relayed: bool,
    },
    /// Run the server handshake of a reserved link (ICE validated its address).
    Accept {
        /// The link.
        link: LinkId,
        /// What the server verifies.
        mode: ServerMode,
    },
    /// Close a link (or abandon its attempt).
    Close {
        /// The link.
        link: LinkId,
        /// Why.
        cause: CloseCause,
    },
    /// Send one frame on the link's network channel (docs/network.md, wire format).
    Send {
        /// The link.
        link: LinkId,
        /// The frame.
        frame: Vec<u8>,
    },
    /// A DTLS datagram arrived through the TURN relay from `from`: hand it to the transport
    /// of socket `base`.
    InjectDtls {
        /// The socket whose transport owns the relayed path.
        base: SocketAddr,
        /// The peer.
        from: SocketAddr,
        /// The datagram.
        data: Vec<u8>,
    },
    /// Open `count` extra UDP sockets on `ip` for birthday probing; answer with
    /// [`crate::proto::Core::sockets_opened`]. Their datagrams come back through
    /// [`crate::proto::Core::handle_datagram`] with the socket as `local`.
    OpenSockets {
        /// The group.
        group: SocketGroup,
        /// The IP to bind.
        ip: IpAddr,
        /// How many.
        count: u16,
    },
    /// Close a group's sockets, all but `keep`.
    CloseSockets {
        /// The group.
        group: SocketGroup,
        /// A socket to keep (the promoted winner).
        keep: Option<SocketAddr>,
    },
    /// Make socket `base` of a group a transport endpoint (DTLS will run on it).
    Promote {
        /// The group.
        group: SocketGroup,
        /// The socket.
        base: SocketAddr,
    },
    /// Persist something.
    Store(Store),
}

/// What the driver reports about a link.
#[derive(Debug)]
#[non_exhaustive]
pub enum LinkInput {
    /// The secure session is open; `peer` is the authenticated node id.
    Up {
        /// The peer.
        peer: NodeId,
    },
    /// The attempt failed (handshake, refusal, timeout).
    Failed(Error),
    /// The established link closed.
    Closed(in8_transport::CloseReason),
    /// A frame arrived on the link's network channel.
    Frame(Vec<u8>),
}

/// Why a join failed for good.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unreachable {
    /// Connectivity checks failed and the invitation does not allow an RSVP.
    Ice(FailureReason),
    /// Phase 1 failed: an RSVP must travel back to the inviter
    /// ([`crate::JoinEvent::Phase1Failed`] carries it).
    NeedsRsvp(FailureReason),
    /// The RSVP window ended without the inviter answering.
    RsvpWindowEnded,
    /// Both NATs are symmetric and the invitation does not allow a relay.
    BothSymmetric,
    /// A symmetric NAT faces an address- and port-dependent filter, birthday probing is
    /// off and the invitation does not allow a relay.
    BirthdayDisabled,
    /// Birthday probing ended without finding a path.
    BirthdayNoPath(FailureReason),
    /// An address sent an authenticated check but never answered ours within the
    /// handshake timeout (a spoofed source, or the peer went away); no DTLS was started.
    NotValidated {
        /// The address.
        remote: SocketAddr,
    },
    /// A member could not be reached directly, by introduction or relay.
    NoPath,
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ice(r) => write!(f, "{r}; the invitation does not allow an RSVP"),
            Self::NeedsRsvp(r) => write!(f, "{r}; send the RSVP back to the inviter"),
            Self::RsvpWindowEnded => {
                f.write_str("the RSVP window ended without the inviter answering")
            }
            Self::BothSymmetric => {
                f.write_str("both NATs are symmetric and the invitation does not allow a relay")
            }
            Self::BirthdayDisabled => f.write_str(
                "a symmetric NAT cannot reach an address-and-port-dependent filter directly, \
                 birthday probing is disabled (Config::birthday, --no-birthday) and the \
                 invitation does not allow a relay",
            ),
            Self::BirthdayNoPath(r) => write!(f, "birthday probing found no path ({r})"),
            Self::NotValidated { remote } => write!(
                f,
                "{remote} sent an authenticated check but never answered ours (a spoofed \
                 source address, or the peer went away); no DTLS was started for it"
            ),
            Self::NoPath => f.write_str("no direct, introduced or relayed path"),
        }
    }
}

/// Why an invitation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InviteEnd {
    /// Its validity period ended.
    Expired,
    /// It was revoked.
    Revoked,
    /// Every use was redeemed.
    UsedUp,
}

impl std::fmt::Display for InviteEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::UsedUp => "used up",
        })
    }
}

/// What the core knows about an established link, for [`crate::Connection`].
#[derive(Clone, Debug)]
pub struct LinkInfo {
    /// The authenticated peer.
    pub peer: NodeId,
    /// The path.
    pub path: PathInfo,
    /// The phase (joins); member links report [`Phase::One`].
    pub phase: Phase,
    /// The invitation of a join link.
    pub invite: Option<InviteId>,
    /// From the start of the attempt to the open session.
    pub elapsed: Duration,
    /// This node's NAT class at the time.
    pub nat: Option<NatClass>,
    /// The peer's NAT class as it stated it.
    pub peer_nat: Option<NatClass>,
    /// The member that introduced the two sides, for an introduced link.
    pub introducer: Option<NodeId>,
}

/// Progress of one join.
#[derive(Debug)]
#[non_exhaustive]
pub enum JoinProgress {
    /// Connectivity checks started towards the inviter and the entry peers.
    Checking {
        /// Remote candidates checked in all.
        remote_candidates: usize,
    },
    /// ICE found a path; DTLS and the join proof run on it.
    Connecting {
        /// The address.
        remote: SocketAddr,
    },
    /// Phase 1 failed: hand the RSVP to the inviter; the join goes on when it is accepted.
    Phase1Failed {
        /// Why.
        reason: FailureReason,
        /// The RSVP.
        rsvp: Box<SignedRsvp>,
    },
    /// Joined. Final.
    Connected {
        /// The link.
        link: LinkId,
        /// About it.
        info: Box<LinkInfo>,
    },
    /// Failed for good. Final.
    Failed(Error),
}

/// Progress of one invitation.
#[derive(Debug)]
#[non_exhaustive]
pub enum InviteProgress {
    /// An authenticated check for it arrived.
    CheckReceived,
    /// ICE found a path to an invitee.
    Connecting {
        /// The invitee's address.
        remote: SocketAddr,
    },
    /// An RSVP was accepted: phase 2 runs.
    Phase2Started {
        /// Who sent it.
        responder: NodeId,
    },
    /// Someone joined.
    Joined {
        /// The link.
        link: LinkId,
        /// About it.
        info: Box<LinkInfo>,
    },
    /// A join attempt failed or was refused.
    JoinFailed {
        /// The invitee's address.
        remote: SocketAddr,
        /// Why.
        error: Error,
    },
    /// Nothing more will happen. Final.
    Ended(InviteEnd),
}

/// What happened in the network this node belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetEvent {
    /// This node became a member (created the network, or joined with a new credential).
    Member {
        /// The network.
        network: NetworkId,
        /// Who issued the credential.
        issuer: NodeId,
    },
    /// A member was learned of or came back.
    MemberUp(NodeId),
    /// A member left (said so, or went silent).
    MemberDown {
        /// Who.
        member: NodeId,
        /// It announced its leave (else: silent past the timeout).
        left: bool,
    },
    /// A member's credential was revoked; it is cut off everywhere.
    MemberRevoked(NodeId),
    /// An overlay link came up.
    LinkUp {
        /// The peer.
        peer: NodeId,
        /// The link.
        link: LinkId,
        /// Its path.
        path: PathInfo,
        /// The member that introduced the two sides.
        introducer: Option<NodeId>,
    },
    /// An overlay link went down.
    LinkDown {
        /// The peer.
        peer: NodeId,
        /// The link.
        link: LinkId,
    },
    /// The topology policy in force changed.
    TopologyChanged {
        /// Its name (`mesh`, `star`, ...).
        policy: &'static str,
    },
    /// A broadcast arrived (verified origin signature), or this node's own.
    Broadcast {
        /// Who sent it.
        origin: NodeId,
        /// Its payload.
        payload: Vec<u8>,
        /// Hops it travelled.
        hops: u16,
    },
    /// A direct message from a member.
    Message {
        /// Who sent it.
        from: NodeId,
        /// Its payload.
        payload: Vec<u8>,
    },
    /// This node's credential was revoked: it is no longer a member.
    SelfRevoked,
    /// This node's credential expired.
    CredentialExpired,
    /// Rejoining from the stored credential failed: no last-known member answered.
    RejoinFailed,
    /// Another entry peer redeemed an invitation this node hosts.
    Redeemed {
        /// The invitation.
        invite: InviteId,
        /// Who redeemed it.
        by: NodeId,
    },
}

/// Everything the core reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Progress of a join.
    Join {
        /// Which.
        join: JoinId,
        /// What.
        event: JoinProgress,
    },
    /// Progress of an invitation.
    Invite {
        /// Which.
        invite: InviteId,
        /// What.
        event: InviteProgress,
    },
    /// Gathering is over (the relay allocation, if any, is done).
    Gathered,
    /// NAT classification is over.
    Classified(Option<NatClass>),
    /// The network.
    Network(NetEvent),
}
