//! Links in the driver: the DTLS handshakes the core asks for, the `in8-net` channel each
//! session carries, and the pump that moves that channel's frames between the session and
//! the core. A member link's other incoming channels go to
//! [`crate::Node::accept_channel`].

use std::net::SocketAddr;
use std::time::Instant;

use in8_artifact::NodeId;
use in8_transport::{
    Channel, ChannelOptions, CloseReason, DtlsRole, PeerAuth, PendingAccept, Session, Via,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Driver;
use crate::connection::{MemberLink, PathInfo};
use crate::error::Error;
use crate::proto::{ClientMode, CloseCause, LinkId, LinkInput, ServerMode};

/// The label of the network channel every session opens first.
pub(crate) const NET_LABEL: &str = "in8-net";
/// Channels the peer may open before the network channel arrives (more are closed).
const MAX_EARLY: usize = 16;
/// Frames queued towards one link's network channel (beyond it they are dropped and
/// counted: a link that cannot keep up loses gossip, which repairs itself).
const OUT_QUEUE: usize = 1024;

/// What a link task reports.
pub(crate) enum Report {
    /// The session is open (with its network channel, unless the peer never opened one,
    /// and the channels the peer opened before it: SCTP does not order streams).
    Up {
        link: LinkId,
        session: Session,
        net: Option<Channel>,
        early: Vec<Channel>,
    },
    /// The handshake failed.
    Failed { link: LinkId, error: Error },
    /// The session closed.
    Closed { link: LinkId, reason: CloseReason },
    /// A frame on the network channel.
    Frame { link: LinkId, bytes: Vec<u8> },
}

/// The driver's side of one link.
#[derive(Default)]
pub(crate) struct LinkSlot {
    pub(crate) task: Option<JoinHandle<()>>,
    pending: Option<PendingAccept>,
    pub(crate) session: Option<Session>,
    /// Channels the peer opened before the network channel, for the application.
    pub(crate) early: Vec<Channel>,
    pub(crate) out: Option<mpsc::Sender<Vec<u8>>>,
    /// A member link (its incoming channels go to the node).
    member: bool,
}

impl LinkSlot {
    /// Ends the link at once.
    pub(crate) fn abort(self, reason: CloseReason) {
        if let Some(t) = &self.task {
            t.abort();
        }
        if let Some(s) = &self.session {
            s.abort(reason);
        }
    }
}

fn via(d: &Driver, relayed: bool) -> Via {
    if relayed {
        Via::Relay(d.relay_tx.clone())
    } else {
        Via::Direct
    }
}

/// The transport endpoint a link on `local` uses: the relay's socket for the relayed
/// address, else the socket itself.
fn endpoint(d: &Driver, local: SocketAddr, relayed: bool) -> Option<in8_transport::Endpoint> {
    if relayed {
        let base = d
            .sockets
            .iter()
            .find(|s| s.base.is_ipv4() == local.is_ipv4())?
            .base;
        return d.transport_for(base);
    }
    d.transport_for(local)
}

impl Driver {
    pub(crate) fn connect(
        &mut self,
        now: Instant,
        link: LinkId,
        local: SocketAddr,
        remote: SocketAddr,
        relayed: bool,
        mode: ClientMode,
    ) {
        let Some(transport) = endpoint(self, local, relayed) else {
            self.core
                .handle_link(now, link, LinkInput::Failed(Error::Closed));
            return;
        };
        let via = via(self, relayed);
        let tx = self.reports.clone();
        let member = matches!(mode, ClientMode::Member { .. });
        let task = tokio::spawn(async move {
            let r = match mode {
                ClientMode::Join { invitation, expect } => transport
                    .join_with(remote, &invitation, expect, via)
                    .await
                    .map_err(|e| match e {
                        in8_transport::Error::JoinRefused(r) => Error::JoinRefused(r),
                        e => Error::Transport(e),
                    }),
                ClientMode::Member { peer } => transport
                    .connect_via(remote, DtlsRole::Client, PeerAuth::Identity(peer), via)
                    .await
                    .map_err(Error::Transport),
            };
            let report = match r {
                Ok(session) => {
                    match session
                        .open_channel(ChannelOptions::reliable(NET_LABEL))
                        .await
                    {
                        Ok(net) => Report::Up {
                            link,
                            session,
                            net: Some(net),
                            early: Vec::new(),
                        },
                        Err(e) => {
                            session.abort(CloseReason::LocalClose);
                            Report::Failed {
                                link,
                                error: Error::Transport(e),
                            }
                        }
                    }
                }
                Err(error) => Report::Failed { link, error },
            };
            let _ = tx.send(report).await;
        });
        self.links.insert(
            link,
            LinkSlot {
                task: Some(task),
                member,
                ..LinkSlot::default()
            },
        );
    }

    pub(crate) fn reserve(
        &mut self,
        now: Instant,
        link: LinkId,
        local: SocketAddr,
        remote: SocketAddr,
        relayed: bool,
    ) {
        let Some(transport) = endpoint(self, local, relayed) else {
            self.core
                .handle_link(now, link, LinkInput::Failed(Error::Closed));
            return;
        };
        match transport.reserve_accept(remote, via(self, relayed)) {
            Ok(p) => {
                self.links.insert(
                    link,
                    LinkSlot {
                        pending: Some(p),
                        ..LinkSlot::default()
                    },
                );
            }
            Err(e) => self
                .core
                .handle_link(now, link, LinkInput::Failed(Error::Transport(e))),
        }
    }

    pub(crate) fn accept(&mut self, now: Instant, link: LinkId, mode: ServerMode) {
        let Some(p) = self.links.get_mut(&link).and_then(|s| s.pending.take()) else {
            self.core
                .handle_link(now, link, LinkInput::Failed(Error::Closed));
            return;
        };
        let tx = self.reports.clone();
        let ledger = self.ledger.clone();
        let limit = self.config.transport.handshake_timeout;
        let member = matches!(mode, ServerMode::Member { .. });
        let task = tokio::spawn(async move {
            let r = match mode {
                ServerMode::Join { invitation, expect } => p
                    .accept_join(&invitation, ledger, expect)
                    .await
                    .map_err(Error::Transport),
                ServerMode::Member { peer } => p
                    .connect(PeerAuth::Identity(peer))
                    .await
                    .map_err(Error::Transport),
            };
            let report = match r {
                Ok(session) => {
                    // The client opens the network channel first.
                    // The client opens the network channel first, but SCTP does not order
                    // streams: channels of the application may arrive before it.
                    let deadline = tokio::time::Instant::now() + limit;
                    let mut early = Vec::new();
                    let net = loop {
                        match tokio::time::timeout_at(deadline, session.accept_channel()).await {
                            Ok(Ok(c)) if c.label() == NET_LABEL => break Some(c),
                            Ok(Ok(c)) if early.len() < MAX_EARLY => early.push(c),
                            Ok(Ok(_)) => {}
                            _ => break None,
                        }
                    };
                    Report::Up {
                        link,
                        session,
                        net,
                        early,
                    }
                }
                Err(error) => Report::Failed { link, error },
            };
            let _ = tx.send(report).await;
        });
        if let Some(s) = self.links.get_mut(&link) {
            s.task = Some(task);
            s.member = member;
        }
    }

    pub(crate) fn close(&mut self, link: LinkId, cause: CloseCause) {
        let Some(slot) = self.links.remove(&link) else {
            return;
        };
        match (cause, slot.session.clone()) {
            // An orderly close: what is queued goes out first (a goodbye, a revocation).
            (
                CloseCause::NotNeeded
                | CloseCause::Duplicate
                | CloseCause::Leaving
                | CloseCause::NotAMember,
                Some(s),
            ) => {
                if slot.out.is_some() && slot.task.is_some() {
                    // The pump sends the frames still queued, then closes the session in
                    // order; it ends by itself (its report of the close is ignored).
                    drop(slot);
                } else {
                    tokio::spawn(async move {
                        let _ = s.close().await;
                    });
                    if let Some(t) = slot.task {
                        t.abort();
                    }
                }
            }
            _ => slot.abort(CloseReason::LocalClose),
        }
    }

    pub(crate) fn send_frame(&mut self, link: LinkId, frame: Vec<u8>) {
        let Some(out) = self.links.get(&link).and_then(|s| s.out.as_ref()) else {
            return;
        };
        if out.try_send(frame).is_err() {
            self.dropped_frames += 1;
        }
    }

    /// The channels a link's peer opened before its network channel.
    pub(crate) fn take_early(&mut self, link: LinkId) -> Vec<Channel> {
        self.links
            .get_mut(&link)
            .map(|s| std::mem::take(&mut s.early))
            .unwrap_or_default()
    }

    /// The session of a link that is up.
    pub(crate) fn session_of(&self, link: LinkId) -> Option<Session> {
        self.links.get(&link).and_then(|s| s.session.clone())
    }

    /// A link task's report.
    pub(crate) fn report(&mut self, now: Instant, r: Report) {
        match r {
            Report::Up {
                link,
                session,
                net,
                early,
            } => {
                let Some(slot) = self.links.get_mut(&link) else {
                    // The core gave up on it meanwhile.
                    session.abort(CloseReason::LocalClose);
                    return;
                };
                let Some(peer) = session.peer() else {
                    session.abort(CloseReason::LocalClose);
                    self.links.remove(&link);
                    self.core
                        .handle_link(now, link, LinkInput::Failed(Error::Closed));
                    return;
                };
                let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE);
                slot.out = Some(out_tx);
                slot.session = Some(session.clone());
                let member_channels = slot.member.then(|| self.outlets.member_channels.clone());
                match &member_channels {
                    Some(m) => {
                        for ch in early {
                            let _ = m.try_send((peer, ch));
                        }
                    }
                    None => slot.early = early,
                }
                let tx = self.reports.clone();
                slot.task = Some(tokio::spawn(pump(
                    link,
                    peer,
                    session,
                    net,
                    out_rx,
                    tx,
                    member_channels,
                )));
                self.core.handle_link(now, link, LinkInput::Up { peer });
            }
            Report::Failed { link, error } => {
                if self.links.remove(&link).is_some() {
                    self.core.handle_link(now, link, LinkInput::Failed(error));
                }
            }
            Report::Closed { link, reason } => {
                if self.links.remove(&link).is_some() {
                    self.core.handle_link(now, link, LinkInput::Closed(reason));
                }
            }
            Report::Frame { link, bytes } => {
                if self.links.contains_key(&link) {
                    self.core.handle_link(now, link, LinkInput::Frame(bytes));
                }
            }
        }
    }

    /// A member link came up: hand it to the callers waiting for it.
    pub(crate) fn serve_waiting(&mut self, peer: NodeId, link: LinkId, path: PathInfo) {
        if !self.waiting.iter().any(|(p, _)| *p == peer) {
            return;
        }
        let Some(session) = self.session_of(link) else {
            return;
        };
        let (ready, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(p, _)| *p == peer);
        self.waiting = rest;
        for (_, tx) in ready {
            let _ = tx.send(Ok(MemberLink {
                session: session.clone(),
                peer,
                path,
            }));
        }
    }
}

/// Moves the network channel's frames between the session and the core until the session
/// closes; on a member link, passes the peer's other channels to the node.
async fn pump(
    link: LinkId,
    peer: NodeId,
    session: Session,
    net: Option<Channel>,
    mut out: mpsc::Receiver<Vec<u8>>,
    tx: mpsc::Sender<Report>,
    member_channels: Option<mpsc::Sender<(NodeId, Channel)>>,
) {
    let accept = member_channels.is_some();
    loop {
        tokio::select! {
            m = async {
                match &net {
                    Some(c) => c.recv().await,
                    None => std::future::pending().await,
                }
            } => match m {
                Ok(Some(bytes)) => {
                    if tx.send(Report::Frame { link, bytes: bytes.to_vec() }).await.is_err() {
                        break;
                    }
                }
                other => {
                    tracing::debug!(?link, ?other, "network channel ended");
                    break;
                }
            },
            f = out.recv() => match (f, &net) {
                (Some(frame), Some(c)) => {
                    if let Err(e) = c.send(frame).await {
                        tracing::debug!(?link, "network channel send failed: {e}");
                        break;
                    }
                }
                (Some(_), None) => {}
                (None, _) => {
                    // The node is stopping: what was queued is sent; close in order.
                    tracing::debug!(?link, "link released by the driver");
                    let _ = session.close().await;
                    let _ = tx.try_send(Report::Closed { link, reason: CloseReason::LocalClose });
                    return;
                }
            },
            c = session.accept_channel(), if accept => match c {
                Ok(ch) => {
                    if let Some(m) = &member_channels
                        && m.try_send((peer, ch)).is_err()
                    {
                        tracing::debug!(peer = %peer.short(), "a member's channel was not accepted in time");
                    }
                }
                Err(_) => break,
            },
            reason = session.closed() => {
                let _ = tx.send(Report::Closed { link, reason }).await;
                return;
            }
        }
    }
    let reason = session.close_reason().unwrap_or(CloseReason::LocalClose);
    session.abort(reason.clone());
    let _ = tx.send(Report::Closed { link, reason }).await;
}
