//! The tokio driver: it owns the sockets, the timer and the secure sessions, feeds the
//! sans-IO [`Core`] and carries out what it asks for (the drive contract in
//! [`crate::proto`]). One task; link handshakes and their network channels run in small
//! tasks of their own that report back over one bounded queue.

mod links;
mod punch;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use in8_artifact::{InviteId, Ledger, NodeId};
use in8_transport::{Channel, DatagramSender, Endpoint, IceDatagram};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::config::Config;
use crate::connection::{Connection, MemberLink};
use crate::error::Result;
use crate::events::{InviteEvent, JoinEvent};
use crate::proto::{
    Action, Core, Event, InviteProgress, JoinId, JoinProgress, NetEvent, SocketGroup, Store,
};

pub(crate) use links::{LinkSlot, Report};
pub(crate) use punch::PUNCH_QUEUE;

/// Reports from link tasks queued towards the driver.
pub(crate) const REPORT_QUEUE: usize = 4096;
/// Datagrams queued from relayed DTLS paths towards the TURN client.
pub(crate) const RELAY_QUEUE: usize = 256;
/// Channels members opened towards this node, waiting for [`crate::Node::accept_channel`]
/// (beyond it they are closed).
pub(crate) const MEMBER_CHANNELS: usize = 64;
/// Network events buffered per subscriber; one that falls further behind is told how
/// many it missed ([`crate::NetEvents::next`]).
pub(crate) const NET_EVENTS: usize = 1024;

/// A call into the driver from a [`crate::Node`] handle: runs on the driver task with the
/// core and the time.
pub(crate) type Call = Box<dyn FnOnce(&mut Driver, Instant) + Send>;

/// One of the node's own sockets.
pub(crate) struct Socket {
    pub(crate) base: SocketAddr,
    pub(crate) transport: Endpoint,
    pub(crate) sender: DatagramSender,
}

/// The channels the driver publishes on.
pub(crate) struct Outlets {
    pub(crate) nat: watch::Sender<(bool, Option<in8_ice::nat::NatClass>)>,
    pub(crate) gathered: watch::Sender<bool>,
    pub(crate) net: broadcast::Sender<NetEvent>,
    pub(crate) member_channels: mpsc::Sender<(NodeId, Channel)>,
}

/// The driver.
pub(crate) struct Driver {
    pub(crate) core: Core,
    pub(crate) config: Arc<Config>,
    pub(crate) sockets: Vec<Socket>,
    pub(crate) promoted: HashMap<SocketAddr, Socket>,
    pub(crate) groups: HashMap<SocketGroup, Vec<punch::PunchSocket>>,
    pub(crate) links: HashMap<crate::proto::LinkId, LinkSlot>,
    pub(crate) ledger: Arc<dyn Ledger>,
    pub(crate) reports: mpsc::Sender<Report>,
    pub(crate) punch_tx: mpsc::Sender<punch::Incoming>,
    pub(crate) relay_tx: mpsc::Sender<(SocketAddr, Bytes)>,
    pub(crate) joins: HashMap<JoinId, mpsc::UnboundedSender<JoinEvent>>,
    pub(crate) invites: HashMap<InviteId, mpsc::UnboundedSender<InviteEvent>>,
    pub(crate) outlets: Outlets,
    /// [`crate::Node::connect_member`] calls waiting for a link.
    pub(crate) waiting: Vec<(NodeId, oneshot::Sender<Result<MemberLink>>)>,
    pub(crate) shutdown: bool,
    /// Frames dropped because a link's queue was full.
    pub(crate) dropped_frames: u64,
    /// Links whose [`Connection`] the application was handed, while it holds one.
    pub(crate) holds: Vec<(crate::proto::LinkId, std::sync::Weak<()>)>,
}

/// The receiving ends the driver task reads.
pub(crate) struct Inputs {
    pub(crate) calls: mpsc::Receiver<Call>,
    pub(crate) incoming: mpsc::Receiver<(SocketAddr, IceDatagram)>,
    pub(crate) punched: mpsc::Receiver<punch::Incoming>,
    pub(crate) reports: mpsc::Receiver<Report>,
    pub(crate) relayed: mpsc::Receiver<(SocketAddr, Bytes)>,
}

/// How long a stopping node waits for its sessions to close in order.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

impl Driver {
    /// The task: runs until shutdown or until every handle is gone.
    pub(crate) async fn run(mut self, mut inputs: Inputs, stopped: watch::Sender<bool>) {
        self.drain(Instant::now());
        let mut holds = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            let deadline = self.core.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                call = inputs.calls.recv() => match call {
                    None => break,
                    Some(call) => call(&mut self, Instant::now()),
                },
                d = inputs.incoming.recv() => match d {
                    None => break,
                    Some((base, d)) => self.core.handle_datagram(Instant::now(), base, d.from, &d.data),
                },
                Some((base, from, data)) = inputs.punched.recv() => {
                    self.core.handle_datagram(Instant::now(), base, from, &data);
                }
                Some(r) = inputs.reports.recv() => self.report(Instant::now(), r),
                Some((to, data)) = inputs.relayed.recv() => {
                    self.core.handle_relayed_send(Instant::now(), to, &data);
                }
                () = sleep => self.core.handle_timeout(Instant::now()),
                _ = holds.tick() => self.check_holds(Instant::now()),
            }
            self.drain(Instant::now());
            if self.shutdown {
                break;
            }
        }
        // The last-known members as they are now, for the next start.
        self.core.persist_members(Instant::now());
        self.drain(Instant::now());
        self.stop().await;
        // Release the ledger (its file lock) and the sockets before reporting the stop.
        drop(self);
        stopped.send_replace(true);
    }

    /// Ends every link in order: queued frames are sent and the sessions shut down
    /// cleanly (the peers see an orderly close, not a lost path), for at most
    /// [`STOP_GRACE`]; then the sockets close.
    async fn stop(&mut self) {
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        let mut closing = Vec::new();
        for (_, mut slot) in self.links.drain() {
            if slot.session.is_some()
                && let (Some(out), Some(task)) = (slot.out.take(), slot.task.take())
            {
                // The pump sends what is queued, then closes the session in order.
                drop(out);
                closing.push((task, slot));
            } else {
                slot.abort(in8_transport::CloseReason::EndpointClosed);
            }
        }
        for (task, slot) in &mut closing {
            if tokio::time::timeout_at(deadline, &mut *task).await.is_err() {
                task.abort();
                std::mem::take(slot).abort(in8_transport::CloseReason::EndpointClosed);
            }
        }
        self.groups.clear();
        for s in &self.sockets {
            s.transport.close();
        }
        for s in self.promoted.values() {
            s.transport.close();
        }
    }

    /// Carries out everything the core has queued, until it has nothing more.
    pub(crate) fn drain(&mut self, now: Instant) {
        loop {
            let mut busy = false;
            while let Some(t) = self.core.poll_transmit() {
                busy = true;
                self.send(&t);
            }
            while let Some(a) = self.core.poll_action() {
                busy = true;
                self.act(now, a);
            }
            while let Some(e) = self.core.poll_event() {
                busy = true;
                self.event(e);
            }
            if !busy {
                break;
            }
        }
    }

    /// Sends one datagram from the socket it names.
    fn send(&self, t: &in8_ice::Transmit) {
        if let Some(s) = self.sockets.iter().find(|s| s.base == t.from) {
            if let Err(e) = s.sender.try_send_to(&t.contents, t.to) {
                tracing::debug!(to = %t.to, "send failed: {e}");
            }
            return;
        }
        if let Some(s) = self.promoted.get(&t.from) {
            let _ = s.sender.try_send_to(&t.contents, t.to);
            return;
        }
        for g in self.groups.values() {
            if let Some(s) = g.iter().find(|s| s.base() == t.from) {
                s.send(&t.contents, t.to);
                return;
            }
        }
    }

    /// The transport endpoint of the socket `base` (a node socket or a promoted one).
    pub(crate) fn transport_for(&self, base: SocketAddr) -> Option<Endpoint> {
        self.sockets
            .iter()
            .find(|s| s.base == base)
            .map(|s| s.transport.clone())
            .or_else(|| self.promoted.get(&base).map(|s| s.transport.clone()))
    }

    fn act(&mut self, now: Instant, a: Action) {
        match a {
            Action::Connect {
                link,
                local,
                remote,
                relayed,
                mode,
            } => self.connect(now, link, local, remote, relayed, mode),
            Action::Reserve {
                link,
                local,
                remote,
                relayed,
            } => self.reserve(now, link, local, remote, relayed),
            Action::Accept { link, mode } => self.accept(now, link, mode),
            Action::Close { link, cause } => self.close(link, cause),
            Action::Send { link, frame } => self.send_frame(link, frame),
            Action::InjectDtls { base, from, data } => {
                if let Some(t) = self.transport_for(base) {
                    t.inject(&data, from);
                }
            }
            Action::OpenSockets { group, ip, count } => {
                let opened = punch::open(ip, count, &self.punch_tx);
                let bases = opened.iter().map(|s| s.base()).collect();
                self.groups.insert(group, opened);
                self.core.sockets_opened(now, group, bases);
            }
            Action::CloseSockets { group, keep } => {
                if let Some(g) = self.groups.get_mut(&group) {
                    g.retain(|s| Some(s.base()) == keep);
                    if g.is_empty() {
                        self.groups.remove(&group);
                    }
                }
                if keep.is_none() {
                    self.promoted.retain(|_, _| true);
                }
            }
            Action::Promote { group, base } => self.promote(group, base),
            Action::Store(s) => self.store(s),
        }
    }

    /// Makes a birthday socket a transport endpoint; its datagrams keep reaching the core
    /// as the socket's.
    fn promote(&mut self, group: SocketGroup, base: SocketAddr) {
        let Some(g) = self.groups.get_mut(&group) else {
            return;
        };
        let Some(i) = g.iter().position(|s| s.base() == base) else {
            return;
        };
        let dup = g[i].duplicate();
        g.swap_remove(i);
        let sock = match dup {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%base, "birthday socket not promoted: {e}");
                return;
            }
        };
        let (transport, mut link) = match Endpoint::from_socket(
            sock,
            self.config.identity.clone(),
            self.config.transport.clone(),
        ) {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(%base, "birthday socket not promoted: {e}");
                return;
            }
        };
        let sender = link.sender();
        let tx = self.punch_tx.clone();
        tokio::spawn(async move {
            while let Some(d) = link.recv().await {
                if tx.send((base, d.from, d.data)).await.is_err() {
                    break;
                }
            }
        });
        self.promoted.insert(
            base,
            Socket {
                base,
                transport,
                sender,
            },
        );
    }

    fn store(&self, s: Store) {
        let Some(dir) = &self.config.state_dir else {
            return;
        };
        let r = match s {
            Store::Invitation(inv) => crate::persist::save_invitation(dir, &inv),
            Store::ForgetInvitation(id) => {
                crate::persist::forget_invitation(dir, &id);
                Ok(())
            }
            Store::Credential(c) => crate::persist::save_credential(dir, &c),
            Store::Members(m) => crate::persist::save_members(dir, &m),
            Store::ForgetNetwork => {
                crate::persist::forget_network(dir);
                Ok(())
            }
        };
        if let Err(e) = r {
            tracing::warn!("cannot save the node's state: {e}");
        }
    }

    /// Routes one core event to the handle or channel it belongs to.
    fn event(&mut self, e: Event) {
        match e {
            Event::Join { join, event } => self.join_event(join, event),
            Event::Invite { invite, event } => self.invite_event(invite, event),
            Event::Gathered => {
                self.outlets.gathered.send_replace(true);
            }
            Event::Classified(c) => {
                self.outlets.nat.send_replace((true, c));
            }
            Event::Network(e) => {
                if let NetEvent::LinkUp {
                    peer, link, path, ..
                } = &e
                {
                    self.serve_waiting(*peer, *link, *path);
                }
                let _ = self.outlets.net.send(e);
            }
        }
    }

    /// A hold on `link` for a [`Connection`] handed to the application.
    fn hold(&mut self, link: crate::proto::LinkId) -> std::sync::Arc<()> {
        let token = std::sync::Arc::new(());
        self.holds.push((link, std::sync::Arc::downgrade(&token)));
        self.core.hold_link(link);
        token
    }

    /// Releases the links whose connections the application dropped.
    fn check_holds(&mut self, now: Instant) {
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.holds)
            .into_iter()
            .partition(|(_, w)| w.strong_count() == 0);
        self.holds = kept;
        for (link, _) in gone {
            self.core.release_link_hold(now, link);
        }
    }

    fn join_event(&mut self, join: JoinId, event: JoinProgress) {
        let final_event = matches!(
            event,
            JoinProgress::Connected { .. } | JoinProgress::Failed(_)
        );
        let ev = match event {
            JoinProgress::Checking { remote_candidates } => {
                JoinEvent::Checking { remote_candidates }
            }
            JoinProgress::Connecting { remote } => JoinEvent::Connecting { remote },
            JoinProgress::Phase1Failed { reason, rsvp } => JoinEvent::Phase1Failed {
                reason,
                rsvp: *rsvp,
            },
            JoinProgress::Connected { link, info } => match self.session_of(link) {
                Some(s) => {
                    let early = self.take_early(link);
                    JoinEvent::Connected(Connection::new(s, *info, early, self.hold(link)))
                }
                None => JoinEvent::Failed(crate::Error::Closed),
            },
            JoinProgress::Failed(e) => JoinEvent::Failed(e),
        };
        if let Some(tx) = self.joins.get(&join) {
            // Unbounded, but a join yields at most a handful of events.
            let _ = tx.send(ev);
        }
        if final_event {
            self.joins.remove(&join);
        }
    }

    fn invite_event(&mut self, invite: InviteId, event: InviteProgress) {
        let ended = matches!(event, InviteProgress::Ended(_));
        let ev = match event {
            InviteProgress::CheckReceived => InviteEvent::CheckReceived,
            InviteProgress::Connecting { remote } => InviteEvent::Connecting { remote },
            InviteProgress::Phase2Started { responder } => InviteEvent::Phase2Started { responder },
            InviteProgress::Joined { link, info } => match self.session_of(link) {
                Some(s) => {
                    let early = self.take_early(link);
                    InviteEvent::Joined(Connection::new(s, *info, early, self.hold(link)))
                }
                None => return,
            },
            InviteProgress::JoinFailed { remote, error } => {
                InviteEvent::JoinFailed { remote, error }
            }
            InviteProgress::Ended(reason) => InviteEvent::Ended { reason },
        };
        if let Some(tx) = self.invites.get(&invite) {
            // Unbounded: an invitation yields events per join attempt, at most its uses'
            // worth of joins plus bounded failures (sessions per invitation are bounded).
            let _ = tx.send(ev);
        }
        if ended {
            self.invites.remove(&invite);
        }
    }
}
