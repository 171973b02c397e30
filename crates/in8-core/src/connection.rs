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
    pub(crate) peer: NodeId,
    pub(crate) path: PathInfo,
    pub(crate) phase: Phase,
    pub(crate) invite: InviteId,
    pub(crate) elapsed: Duration,
    pub(crate) nat: Option<NatClass>,
    pub(crate) peer_nat: Option<NatClass>,
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
        Ok(self.session.accept_channel().await?)
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
