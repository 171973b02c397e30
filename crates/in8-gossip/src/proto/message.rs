//! The protocol messages, as the core sees them (the wire form is in [`crate::wire`]).

use bytes::Bytes;

/// A broadcast message id. The authenticated layer derives it from the message content
/// (the first 8 bytes of a BLAKE3 hash), so a peer cannot make two messages collide on
/// purpose without finding a 64-bit hash collision, and caches stay 8 bytes per entry.
pub type MessageId = u64;

/// How strongly a NEIGHBOR request asks to be accepted (HyParView §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    /// Accept only if the active view has room.
    Low,
    /// The sender has no neighbour left (or heals a partition): accept, evicting a random
    /// neighbour if the view is full.
    High,
    /// A topology link the sender's policy wants kept: accept if the pinned budget allows.
    Pinned,
}

/// One protocol message. Lists are at most [`crate::MAX_LIST`] long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message<P> {
    /// HyParView JOIN: the sender joins the network through us.
    Join,
    /// Answer to JOIN: the contact accepted; `active` are its neighbours (it can introduce
    /// us to them), `passive` a sample of its passive view.
    JoinReply {
        /// The contact's other active neighbours.
        active: Vec<P>,
        /// A sample of the contact's passive view.
        passive: Vec<P>,
    },
    /// HyParView FORWARDJOIN: `peer` joined; `ttl` hops remain in the random walk.
    ForwardJoin {
        /// The newcomer.
        peer: P,
        /// Remaining hops.
        ttl: u8,
    },
    /// HyParView NEIGHBOR: please add me to your active view.
    Neighbor {
        /// How strongly.
        priority: Priority,
    },
    /// Answer to NEIGHBOR.
    NeighborReply {
        /// Whether the sender added us to its active view.
        accepted: bool,
    },
    /// HyParView DISCONNECT: the sender removed us from its active view.
    Disconnect {
        /// `false` when the sender leaves the network for good (do not keep it as passive).
        alive: bool,
    },
    /// HyParView SHUFFLE: a random walk exchanging view samples.
    Shuffle {
        /// The node that started the walk (the reply goes to it).
        origin: P,
        /// Remaining hops.
        ttl: u8,
        /// Sample of the origin's active view.
        active: Vec<P>,
        /// Sample of the origin's passive view.
        passive: Vec<P>,
    },
    /// Answer to SHUFFLE, sent straight to the origin.
    ShuffleReply {
        /// Sample of the replier's passive view.
        peers: Vec<P>,
    },
    /// Plumtree GOSSIP: a message pushed eagerly (or in answer to GRAFT).
    Gossip {
        /// Message id.
        id: MessageId,
        /// Hops from the origin so far (0 when the origin sends).
        round: u16,
        /// Application payload.
        payload: Bytes,
    },
    /// Plumtree IHAVE: lazy announcements `(id, round)`.
    IHave {
        /// The announced messages.
        entries: Vec<(MessageId, u16)>,
    },
    /// Plumtree GRAFT: send me this message and keep our link eager.
    Graft {
        /// The wanted message.
        id: MessageId,
        /// The round of the announcement.
        round: u16,
    },
    /// Plumtree PRUNE: stop pushing eagerly to me.
    Prune,
    /// Introductions: please introduce me to `target`, your neighbour.
    IntroRequest {
        /// Who the sender wants a link with.
        target: P,
        /// Names the attempt; the introducer hands it to both sides unchanged (in8-core
        /// derives the attempt's ICE credentials from it and the pair's secret).
        token: u64,
    },
    /// Introductions: punch towards `peer` after `delay_ms`.
    Introduce {
        /// The other side.
        peer: P,
        /// Start delay, milliseconds after receipt.
        delay_ms: u16,
        /// The requester's attempt token.
        token: u64,
    },
    /// Introductions: `target` is not my neighbour (any more); try someone else.
    IntroUnavailable {
        /// The target of the failed request.
        target: P,
    },
}

impl<P> Message<P> {
    /// The message name used in logs, metrics and the docs.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Join => "join",
            Message::JoinReply { .. } => "join-reply",
            Message::ForwardJoin { .. } => "forward-join",
            Message::Neighbor { .. } => "neighbor",
            Message::NeighborReply { .. } => "neighbor-reply",
            Message::Disconnect { .. } => "disconnect",
            Message::Shuffle { .. } => "shuffle",
            Message::ShuffleReply { .. } => "shuffle-reply",
            Message::Gossip { .. } => "gossip",
            Message::IHave { .. } => "ihave",
            Message::Graft { .. } => "graft",
            Message::Prune => "prune",
            Message::IntroRequest { .. } => "intro-request",
            Message::Introduce { .. } => "introduce",
            Message::IntroUnavailable { .. } => "intro-unavailable",
        }
    }

    /// Whether this message only makes sense on an existing active link (receivers answer
    /// such a message from a non-neighbour with DISCONNECT, which restores view symmetry).
    pub fn needs_link(&self) -> bool {
        matches!(
            self,
            Message::ForwardJoin { .. }
                | Message::Shuffle { .. }
                | Message::Gossip { .. }
                | Message::IHave { .. }
                | Message::Graft { .. }
                | Message::Prune
                | Message::IntroRequest { .. }
                | Message::Introduce { .. }
                | Message::IntroUnavailable { .. }
        )
    }
}
