//! The tokio driver: owns the sockets (through one `in8_transport::Endpoint` each), the
//! sans-IO ICE endpoint and its timers, and turns ICE events into DTLS sessions.
//!
//! Drive contract (in8-ice): after every input — a datagram, a timeout, a command — all
//! transmits are sent and all events handled before the task sleeps again.

mod birthday;
mod commands;
mod dtls;
mod filter;
mod ice_events;
mod nat;
mod punch;
mod relay;

pub(crate) use relay::{RELAY_QUEUE, Relay};

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use in8_artifact::{
    Candidate, Identity, InviteId, Ledger, NodeId, SignedInvitation, SignedRsvp, Timestamp,
};
use in8_ice::{LocalCandidate, SessionId};
use in8_transport::{DatagramSender, Endpoint, IceDatagram, PeerAuth, Session};
use tokio::sync::{mpsc, oneshot};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::events::{InviteEvent, JoinEvent, Phase};
use crate::gather::{Classifier, TestOne};

/// Requests from the [`crate::Node`] handle and from the driver's own DTLS tasks.
pub(crate) enum Command {
    Listen {
        invitation: SignedInvitation,
        events: mpsc::Sender<InviteEvent>,
        reply: oneshot::Sender<Result<()>>,
    },
    Join {
        invitation: SignedInvitation,
        events: mpsc::Sender<JoinEvent>,
        reply: oneshot::Sender<Result<()>>,
    },
    AcceptRsvp {
        rsvp: SignedRsvp,
        reply: oneshot::Sender<Result<NodeId>>,
    },
    Revoke {
        invite: InviteId,
        reply: oneshot::Sender<Result<()>>,
    },
    /// A DTLS task finished (join or accept).
    DtlsDone {
        session: SessionId,
        remote: SocketAddr,
        result: Result<Session>,
    },
    /// An established session ended: stop its ICE session (and consent checks).
    SessionClosed {
        session: SessionId,
    },
    /// The candidates gathered so far (relay included once allocated).
    Candidates {
        reply: oneshot::Sender<Result<Vec<Candidate>>>,
    },
    /// The transport counters summed over the node's sockets.
    Stats {
        reply: oneshot::Sender<in8_transport::EndpointStats>,
    },
    Shutdown,
}

/// One socket of the node.
pub(crate) struct Socket {
    pub(crate) base: SocketAddr,
    pub(crate) transport: Endpoint,
    pub(crate) sender: DatagramSender,
}

/// The invitee's view of one join.
pub(crate) struct Joining {
    pub(crate) invitation: SignedInvitation,
    pub(crate) events: mpsc::Sender<JoinEvent>,
    pub(crate) started: Instant,
    pub(crate) rsvp_sent: bool,
    pub(crate) dtls_started: bool,
    pub(crate) established: Option<Session>,
}

/// The inviter's view of one ICE session created by an invitation (phase 1) or RSVP.
pub(crate) struct Hosting {
    pub(crate) invite: InviteId,
    pub(crate) expect: PeerAuth,
    pub(crate) phase: Phase,
    pub(crate) rsvp_candidates: Vec<Candidate>,
    /// The invitee's NAT behaviour, from its RSVP.
    pub(crate) peer_nat: Option<in8_artifact::NatBehaviour>,
    pub(crate) started: Instant,
    pub(crate) dtls: HashSet<SocketAddr>,
    /// DTLS servers whose route is reserved (the address sent an authenticated check)
    /// but whose handshake waits until ICE validates the address (our own check answered
    /// from it); firing the sender starts the handshake. At most `MAX_DTLS_PER_SESSION`.
    pub(crate) awaiting: HashMap<SocketAddr, tokio::sync::oneshot::Sender<()>>,
    pub(crate) established: Option<Session>,
}

pub(crate) enum SessionCtx {
    Joining(Joining),
    Hosting(Hosting),
}

/// An outstanding invitation.
pub(crate) struct Outstanding {
    pub(crate) signed: SignedInvitation,
    pub(crate) events: mpsc::Sender<InviteEvent>,
    pub(crate) deadline: Instant,
    /// Revoked: still listened for until it expires, so a late invitee gets a clear
    /// refusal (the ledger refuses it) instead of silence.
    pub(crate) revoked: bool,
}

pub(crate) struct Driver {
    pub(crate) identity: Identity,
    pub(crate) config: Arc<Config>,
    pub(crate) ice: in8_ice::Endpoint,
    pub(crate) sockets: Vec<Socket>,
    pub(crate) locals: Vec<LocalCandidate>,
    pub(crate) ledger: Arc<dyn Ledger>,
    pub(crate) invites: HashMap<InviteId, Outstanding>,
    pub(crate) sessions: HashMap<SessionId, SessionCtx>,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) filter: Option<filter::Filter>,
    pub(crate) relay: Option<Relay>,
    gather: Option<(Instant, tokio::sync::watch::Sender<bool>)>,
    /// Sessions running birthday probing (bounded: `birthday::MAX_HARD` + `MAX_EASY`).
    pub(crate) birthday: birthday::Table,
    /// Datagrams of the birthday sockets (bounded: `punch::PUNCH_QUEUE`).
    pub(crate) punch_tx: mpsc::Sender<punch::Incoming>,
    punch_rx: Option<mpsc::Receiver<punch::Incoming>>,
    /// This node's NAT class (assumed, or classified at start).
    pub(crate) nat: Option<in8_ice::nat::NatClass>,
    nat_tx: tokio::sync::watch::Sender<(bool, Option<in8_ice::nat::NatClass>)>,
    classifier: Option<Classifier>,
}

/// What [`Driver::new`] needs besides its sockets.
pub(crate) struct Setup {
    /// RFC 5780 Test I answers from gathering on the first socket.
    pub(crate) first: Vec<TestOne>,
    /// Where the NAT class is published ([`crate::Node::nat`]).
    /// (classification over, class).
    pub(crate) nat: tokio::sync::watch::Sender<(bool, Option<in8_ice::nat::NatClass>)>,
    /// Set when gathering is over.
    pub(crate) gathered: tokio::sync::watch::Sender<bool>,
}

fn gather_time(config: &Config) -> std::time::Duration {
    if config.turn.is_some() {
        config.gather_timeout
    } else {
        std::time::Duration::ZERO
    }
}

/// Sends a final event without blocking the driver (the channel may be full of progress).
pub(crate) fn send_final<T: Send + 'static>(tx: &mpsc::Sender<T>, ev: T) {
    let tx = tx.clone();
    tokio::spawn(async move {
        let _ = tx.send(ev).await;
    });
}

pub(crate) fn now_unix() -> Timestamp {
    Timestamp::from_system(std::time::SystemTime::now())
}

impl Driver {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        identity: Identity,
        config: Arc<Config>,
        sockets: Vec<Socket>,
        locals: Vec<LocalCandidate>,
        ledger: Arc<dyn Ledger>,
        commands: mpsc::Sender<Command>,
        relay: Option<Relay>,
        setup: Setup,
    ) -> Self {
        let seed = config.seed.unwrap_or_else(rand::random);
        let mut ice = in8_ice::Endpoint::new(config.ice.clone(), seed);
        for c in &locals {
            ice.add_local_candidate(*c);
        }
        let filter = config.inbound_filter.map(filter::Filter::new);
        let classifier = match (config.assume_nat, sockets.first()) {
            (None, Some(s)) => {
                Classifier::new(s.base, &setup.first, Instant::now(), config.gather_timeout)
            }
            _ => None,
        };
        let nat = config.assume_nat;
        setup.nat.send_replace((classifier.is_none(), nat));
        let (punch_tx, punch_rx) = mpsc::channel(punch::PUNCH_QUEUE);
        Self {
            identity,
            ice,
            sockets,
            locals,
            ledger,
            invites: HashMap::new(),
            sessions: HashMap::new(),
            commands,
            filter,
            relay,
            gather: Some((Instant::now() + gather_time(&config), setup.gathered)),
            birthday: birthday::Table::new(),
            punch_tx,
            punch_rx: Some(punch_rx),
            nat,
            nat_tx: setup.nat,
            classifier,
            config,
        }
    }

    /// Gathering is over (relay allocated, failed or timed out): [`crate::Node::start`]
    /// stops waiting.
    pub(crate) fn gathered(&mut self) {
        if let Some((_, tx)) = self.gather.take() {
            tx.send_replace(true);
        }
    }

    /// The candidates this node advertises.
    pub(crate) fn advertised(&self) -> Vec<Candidate> {
        self.locals.iter().map(|l| l.candidate).collect()
    }

    pub(crate) fn socket_for(&self, base: SocketAddr) -> Option<&Socket> {
        self.sockets
            .iter()
            .find(|s| s.base == base)
            .or_else(|| self.promoted_socket(base))
            .or_else(|| self.sockets.first())
    }

    /// The task: runs until shutdown or until every handle is gone.
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut incoming: mpsc::Receiver<(SocketAddr, IceDatagram)>,
        mut relayed: mpsc::Receiver<(SocketAddr, Bytes)>,
        stopped: tokio::sync::watch::Sender<bool>,
    ) {
        match &mut self.relay {
            Some(r) => {
                r.client.allocate(Instant::now());
                self.flush_relay(Instant::now());
            }
            None => self.gathered(),
        }
        let mut punched = self.punch_rx.take().unwrap_or_else(|| mpsc::channel(1).1);
        self.classify_timeout(Instant::now());
        loop {
            let deadline = self.next_deadline();
            let sleep = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    None | Some(Command::Shutdown) => break,
                    Some(cmd) => self.handle_command(cmd),
                },
                dgram = incoming.recv() => match dgram {
                    None => break,
                    Some((base, d)) => self.handle_datagram(base, d),
                },
                Some((to, data)) = relayed.recv() => self.send_relayed(Instant::now(), to, &data),
                Some(d) = punched.recv() => self.handle_punch_datagram(d),
                () = sleep => {
                    let now = Instant::now();
                    self.ice.handle_timeout(now);
                    if let Some(r) = &mut self.relay {
                        r.client.handle_timeout(now);
                    }
                    self.flush_relay(now);
                    if self.gather.as_ref().is_some_and(|(t, _)| *t <= now) {
                        self.gathered();
                    }
                    self.expire_invitations(now);
                    self.birthday_timeout(now);
                    self.classify_timeout(now);
                }
            }
            self.flush(None);
            self.birthday_gc();
        }
        self.birthday.clear();
        for s in &self.sockets {
            s.transport.close();
        }
        for (_, ctx) in self.sessions.drain() {
            let s = match ctx {
                SessionCtx::Joining(j) => j.established,
                SessionCtx::Hosting(h) => h.established,
            };
            if let Some(s) = s {
                s.abort(in8_transport::CloseReason::EndpointClosed);
            }
        }
        // Release the ledger (its file lock) and the sockets before reporting the stop.
        drop(self);
        stopped.send_replace(true);
    }

    fn next_deadline(&self) -> Option<Instant> {
        let invites = self.invites.values().map(|o| o.deadline).min();
        let relay = self.relay.as_ref().and_then(|r| r.client.poll_timeout());
        let gather = self.gather.as_ref().map(|(t, _)| *t);
        let classify = self.classifier.as_ref().and_then(|c| c.poll_timeout());
        [
            self.ice.poll_timeout(),
            invites,
            relay,
            gather,
            self.birthday_deadline(),
            classify,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn handle_datagram(&mut self, base: SocketAddr, d: IceDatagram) {
        if self.promoted_socket(base).is_some() {
            self.handle_punch_datagram((base, d.from, d.data));
            return;
        }
        let now = Instant::now();
        // The TURN server was contacted first: a NAT lets its answers in.
        if self.is_from_relay(base, d.from) {
            self.handle_relay_datagram(now, &d.data);
            return;
        }
        if let Some(f) = &self.filter
            && !f.admits(base, d.from)
        {
            tracing::trace!(from = %d.from, "filtering shim dropped an unsolicited datagram");
            return;
        }
        match self.ice.handle_packet(now, d.from, base, &d.data) {
            Ok(()) => {}
            Err(in8_ice::Error::UnknownTransaction) => self.classify_response(base, &d.data),
            Err(e) => tracing::trace!(from = %d.from, "ICE ignored a datagram: {e}"),
        }
        self.flush(Some(base));
    }

    /// Sends one transmit of the ICE endpoint (or of a session agent): through the relay
    /// when it leaves from the relayed address, else from its socket.
    pub(crate) fn send_ice(&mut self, t: &in8_ice::Transmit) {
        if self.relay.as_ref().and_then(|r| r.relayed) == Some(t.from) {
            self.send_relayed(Instant::now(), t.to, &t.contents);
            return;
        }
        if let Some(f) = &mut self.filter {
            if !f.passes_ice_out() {
                return;
            }
            f.note_sent(t.from, t.to);
        }
        if let Some(s) = self.socket_for(t.from)
            && let Err(e) = s.sender.try_send_to(&t.contents, t.to)
        {
            tracing::debug!(to = %t.to, "send failed: {e}");
        }
    }

    /// The candidates the peer of `session` signalled (invitation or RSVP).
    pub(crate) fn peer_candidates(&self, session: SessionId) -> Vec<Candidate> {
        match self.sessions.get(&session) {
            Some(SessionCtx::Joining(j)) => j.invitation.invitation().candidates.clone(),
            Some(SessionCtx::Hosting(h)) => h.rsvp_candidates.clone(),
            None => Vec::new(),
        }
    }

    /// Ends a session that cannot connect: a joiner's handle gets a final `Unreachable`
    /// with `reason`; an inviter keeps listening for the invitation.
    pub(crate) fn end_session(&mut self, session: SessionId, reason: &str) {
        self.ice.remove(session);
        match self.sessions.remove(&session) {
            Some(SessionCtx::Joining(j)) => send_final(
                &j.events,
                JoinEvent::Failed(Error::Unreachable {
                    reason: reason.into(),
                }),
            ),
            Some(SessionCtx::Hosting(h)) => {
                tracing::info!(?session, invite = %h.invite, "{reason}");
            }
            None => {}
        }
    }

    /// Handles every pending event, then sends every pending transmit, until neither is
    /// left. `current` is the socket the last datagram arrived on (events it caused
    /// happened there). Events go first: the inviter reserves its DTLS route on the event
    /// of a new peer (`maybe_accept`), and that must happen before the check's response
    /// leaves, or the invitee's ClientHello (sent the moment the response arrives) can
    /// beat the route and be dropped, costing a DTLS retransmission (500 ms).
    pub(crate) fn flush(&mut self, current: Option<SocketAddr>) {
        loop {
            let mut busy = false;
            while let Some(ev) = self.ice.poll_event() {
                busy = true;
                self.handle_ice_event(ev, current);
            }
            while let Some(t) = self.ice.poll_transmit() {
                busy = true;
                self.send_ice(&t);
            }
            if !busy {
                break;
            }
        }
        self.release_validated();
    }

    /// Starts the inviter's DTLS handshakes that waited for ICE to validate their address
    /// (`Hosting::awaiting`): the address answered one of our checks.
    fn release_validated(&mut self) {
        for (id, ctx) in &mut self.sessions {
            let SessionCtx::Hosting(h) = ctx else {
                continue;
            };
            if h.awaiting.is_empty() {
                continue;
            }
            let Some(agent) = self.ice.session(*id) else {
                continue;
            };
            let ready: Vec<SocketAddr> = h
                .awaiting
                .keys()
                .filter(|r| agent.has_valid_pair_to(**r))
                .copied()
                .collect();
            for remote in ready {
                if let Some(go) = h.awaiting.remove(&remote) {
                    let _ = go.send(());
                }
            }
        }
    }

    fn expire_invitations(&mut self, now: Instant) {
        let done: Vec<InviteId> = self
            .invites
            .iter()
            .filter(|(_, o)| o.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in done {
            self.ice.unlisten(&id);
            if let Some(o) = self.invites.remove(&id) {
                if !o.revoked {
                    send_final(&o.events, InviteEvent::Ended { reason: "expired" });
                }
                if let Some(dir) = &self.config.state_dir {
                    crate::persist::forget(dir, &id);
                }
            }
        }
    }
}
