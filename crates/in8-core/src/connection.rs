//! An established connection: the secure session plus who and how.

use std::net::SocketAddr;
use std::time::Duration;

use in8_artifact::{CandidateKind, InviteId, NodeId};
use in8_ice::nat::NatClass;
use in8_transport::{ByteStream, Channel, ChannelOptions, CloseReason, Session};

use crate::error::Result;
use crate::events::Phase;

/// How the two peers reach each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathInfo {
    /// The kind of the peer's candidate on the selected pair, as this side knows it:
    /// `host` (a LAN or public address it advertised), `srflx` (its NAT's public side, from
    /// a STUN server), `prflx` (learned from its checks), `relay`.
    pub kind: CandidateKind,
    /// This side's socket address (the pair's local base).
    pub local: SocketAddr,
    /// The peer's address.
    pub remote: SocketAddr,
    /// Round-trip time measured by ICE on this pair, when known.
    pub rtt: Option<Duration>,
    /// Birthday probing found this pair (docs/core.md "Hard NATs: birthday probing"): on
    /// the hard side `local` is one of its extra sockets, on the easy side `remote` is a
    /// port of the hard side's NAT that a random probe hit.
    pub birthday: bool,
}

/// A connection with another node, from a join or an invitation.
#[derive(Clone, Debug)]
pub struct Connection {
    pub(crate) session: Session,
    /// Channels the peer opened before the session's network channel arrived.
    pub(crate) early: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<Channel>>>,
    /// While a clone of this lives, the overlay keeps the link open.
    pub(crate) _hold: std::sync::Arc<()>,
    pub(crate) peer: NodeId,
    pub(crate) path: PathInfo,
    pub(crate) phase: Phase,
    pub(crate) invite: InviteId,
    pub(crate) elapsed: Duration,
    pub(crate) nat: Option<NatClass>,
    pub(crate) peer_nat: Option<NatClass>,
}

impl Connection {
    /// A connection from what the core reported about the link.
    pub(crate) fn new(
        session: Session,
        info: crate::proto::LinkInfo,
        early: Vec<Channel>,
        hold: std::sync::Arc<()>,
    ) -> Self {
        Self {
            session,
            _hold: hold,
            early: std::sync::Arc::new(std::sync::Mutex::new(early.into())),
            peer: info.peer,
            path: info.path,
            phase: info.phase,
            invite: info.invite.unwrap_or(InviteId::from_bytes([0; 16])),
            elapsed: info.elapsed,
            nat: info.nat,
            peer_nat: info.peer_nat,
        }
    }
}

/// A link to another member of the network ([`crate::Node::connect_member`]): open
/// channels and streams to it. Channels members open towards this node arrive on
/// [`crate::Node::accept_channel`].
#[derive(Clone, Debug)]
pub struct MemberLink {
    pub(crate) session: Session,
    pub(crate) peer: NodeId,
    pub(crate) path: PathInfo,
}

impl MemberLink {
    /// The member.
    pub fn peer(&self) -> NodeId {
        self.peer
    }

    /// The path in use.
    pub fn path(&self) -> PathInfo {
        self.path
    }

    /// Opens a data channel to the member.
    pub async fn open_channel(&self, options: ChannelOptions) -> Result<Channel> {
        Ok(self.session.open_channel(options).await?)
    }

    /// Opens a byte stream to the member.
    pub async fn open_stream(&self, label: &str) -> Result<ByteStream> {
        Ok(self.session.open_stream(label.to_owned()).await?)
    }
}

impl Connection {
    /// The peer's node id (authenticated by DTLS and, on the inviter, the join proof).
    pub fn peer(&self) -> NodeId {
        self.peer
    }

    /// The path in use.
    pub fn path(&self) -> PathInfo {
        self.path
    }

    /// The phase that established it.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The invitation it came from.
    pub fn invite_id(&self) -> InviteId {
        self.invite
    }

    /// From the start of the join (or of the first check at the inviter) to the open
    /// session.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// This node's NAT class when the connection was made ([`crate::Node::nat`]).
    pub fn nat(&self) -> Option<NatClass> {
        self.nat
    }

    /// The peer's NAT class as its invitation or RSVP stated it (mapping and filtering;
    /// its port allocation is not carried). `None` when it did not say, and on the inviter
    /// side of a phase-1 connection (no RSVP).
    pub fn peer_nat(&self) -> Option<NatClass> {
        self.peer_nat
    }

    /// The underlying secure session (channels, streams, close).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Opens a data channel (see `in8_transport::ChannelOptions`).
    pub async fn open_channel(&self, options: ChannelOptions) -> Result<Channel> {
        Ok(self.session.open_channel(options).await?)
    }

    /// Waits for the peer to open a data channel.
    pub async fn accept_channel(&self) -> Result<Channel> {
        let early = self
            .early
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        match early {
            Some(c) => Ok(c),
            None => Ok(self.session.accept_channel().await?),
        }
    }

    /// Opens a byte stream (tokio `AsyncRead` + `AsyncWrite`).
    pub async fn open_stream(&self, label: &str) -> Result<ByteStream> {
        Ok(self.session.open_stream(label.to_owned()).await?)
    }

    /// Closes in order (flushes queued data, bounded by the transport's close timeout).
    pub async fn close(&self) -> Result<()> {
        Ok(self.session.close().await?)
    }

    /// Resolves when the session ends, with why.
    pub async fn closed(&self) -> CloseReason {
        self.session.closed().await
    }
}
