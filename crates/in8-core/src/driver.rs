//! The tokio driver: owns the sockets (through one `in8_transport::Endpoint` each), the
//! sans-IO ICE endpoint and its timers, and turns ICE events into DTLS sessions.
//!
//! Drive contract (in8-ice): after every input — a datagram, a timeout, a command — all
//! transmits are sent and all events handled before the task sleeps again.

mod dtls;
mod ice_events;
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

use crate::config::{Config, InboundFilter};
use crate::error::{Error, Result};
use crate::events::{InviteEvent, JoinEvent, Phase};

/// Most remote addresses remembered by the filtering shim.
const FILTER_MEMORY: usize = 4096;

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
    pub(crate) started: Instant,
    pub(crate) dtls: HashSet<SocketAddr>,
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

struct Filter {
    kind: InboundFilter,
    sent_to: HashSet<SocketAddr>,
}

impl Filter {
    fn note_sent(&mut self, to: SocketAddr) {
        if self.sent_to.len() >= FILTER_MEMORY {
            self.sent_to.clear();
        }
        self.sent_to.insert(to);
    }

    fn admits(&self, from: SocketAddr) -> bool {
        match self.kind {
            InboundFilter::AddressAndPortDependent => self.sent_to.contains(&from),
            InboundFilter::AddressDependent => self.sent_to.iter().any(|a| a.ip() == from.ip()),
        }
    }
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
    filter: Option<Filter>,
    pub(crate) relay: Option<Relay>,
    gather: Option<(Instant, tokio::sync::watch::Sender<bool>)>,
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
        gathered: tokio::sync::watch::Sender<bool>,
    ) -> Self {
        let seed = config.seed.unwrap_or_else(rand::random);
        let mut ice = in8_ice::Endpoint::new(config.ice.clone(), seed);
        for c in &locals {
            ice.add_local_candidate(*c);
        }
        let filter = config.inbound_filter.map(|kind| Filter {
            kind,
            sent_to: HashSet::new(),
        });
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
            gather: Some((Instant::now() + gather_time(&config), gathered)),
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
                }
            }
            self.flush(None);
        }
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
        [self.ice.poll_timeout(), invites, relay, gather]
            .into_iter()
            .flatten()
            .min()
    }

    fn handle_datagram(&mut self, base: SocketAddr, d: IceDatagram) {
        if let Some(f) = &self.filter
            && !f.admits(d.from)
        {
            tracing::trace!(from = %d.from, "filtering shim dropped an unsolicited datagram");
            return;
        }
        let now = Instant::now();
        if self.is_from_relay(base, d.from) {
            self.handle_relay_datagram(now, &d.data);
            return;
        }
        match self.ice.handle_packet(now, d.from, base, &d.data) {
            Ok(()) => {}
            Err(e) => tracing::trace!(from = %d.from, "ICE ignored a datagram: {e}"),
        }
        self.flush(Some(base));
    }

    /// Sends every pending transmit and handles every pending event. `current` is the
    /// socket the last datagram arrived on (events it caused happened there).
    pub(crate) fn flush(&mut self, current: Option<SocketAddr>) {
        while let Some(t) = self.ice.poll_transmit() {
            if let Some(f) = &mut self.filter {
                f.note_sent(t.to);
            }
            if self.relay.as_ref().and_then(|r| r.relayed) == Some(t.from) {
                self.send_relayed(Instant::now(), t.to, &t.contents);
                continue;
            }
            if let Some(s) = self.socket_for(t.from) {
                let data = Bytes::from(t.contents);
                if let Err(e) = s.sender.try_send_to(&data, t.to) {
                    tracing::debug!(to = %t.to, "send failed: {e}");
                }
            }
        }
        while let Some(ev) = self.ice.poll_event() {
            self.handle_ice_event(ev, current);
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

    fn handle_command(&mut self, cmd: Command) {
        match cmd {
            Command::Listen {
                invitation,
                events,
                reply,
            } => {
                let _ = reply.send(self.listen(invitation, events));
            }
            Command::Join {
                invitation,
                events,
                reply,
            } => {
                let _ = reply.send(self.join(invitation, events));
            }
            Command::AcceptRsvp { rsvp, reply } => {
                let _ = reply.send(self.accept_rsvp(&rsvp));
            }
            Command::Revoke { invite, reply } => {
                let _ = reply.send(self.revoke(invite));
            }
            Command::DtlsDone {
                session,
                remote,
                result,
            } => self.dtls_done(session, remote, result),
            Command::SessionClosed { session } => {
                self.sessions.remove(&session);
                self.ice.remove(session);
            }
            Command::Candidates { reply } => {
                let _ = reply.send(Ok(self.advertised()));
            }
            Command::Shutdown => {}
        }
    }

    fn listen(
        &mut self,
        signed: SignedInvitation,
        events: mpsc::Sender<InviteEvent>,
    ) -> Result<()> {
        if self.invites.len() >= self.config.max_invitations {
            return Err(Error::Limit {
                what: "outstanding invitations",
                limit: self.config.max_invitations,
            });
        }
        let inv = signed.invitation();
        self.ice.listen(inv)?;
        // An invitation that lists only relay candidates hides this node's addresses: its
        // sessions check only from the relay too.
        if !inv.candidates.is_empty()
            && inv
                .candidates
                .iter()
                .all(|c| c.kind == in8_artifact::CandidateKind::Relay)
        {
            self.ice.set_relay_only(inv.invite_id())?;
        }
        let left = inv.expires.as_unix().saturating_sub(now_unix().as_unix());
        let deadline = Instant::now() + std::time::Duration::from_secs(left);
        self.invites.insert(
            inv.invite_id(),
            Outstanding {
                signed,
                events,
                deadline,
                revoked: false,
            },
        );
        Ok(())
    }

    fn join(&mut self, signed: SignedInvitation, events: mpsc::Sender<JoinEvent>) -> Result<()> {
        let joining = self
            .sessions
            .values()
            .filter(|s| matches!(s, SessionCtx::Joining(_)))
            .count();
        if joining >= self.config.max_joins {
            return Err(Error::Limit {
                what: "joins in progress",
                limit: self.config.max_joins,
            });
        }
        let now = Instant::now();
        let inv = signed.invitation();
        if inv.flags.contains(in8_artifact::Flags::RELAY_ALLOWED) {
            let cands = inv.candidates.clone();
            self.permit(now, &cands);
        }
        let id = self.ice.join(now, inv)?;
        let _ = events.try_send(JoinEvent::Gathered {
            candidates: self.advertised(),
        });
        let _ = events.try_send(JoinEvent::Checking {
            remote_candidates: inv.candidates.len(),
        });
        self.sessions.insert(
            id,
            SessionCtx::Joining(Joining {
                invitation: signed,
                events,
                started: now,
                rsvp_sent: false,
                dtls_started: false,
                established: None,
            }),
        );
        Ok(())
    }

    fn accept_rsvp(&mut self, rsvp: &SignedRsvp) -> Result<NodeId> {
        let id = rsvp.rsvp().invite_id;
        let Some(o) = self.invites.get(&id) else {
            return Err(Error::UnknownInvitation(id.to_string()));
        };
        let inv = o.signed.invitation().clone();
        let events = o.events.clone();
        let r = rsvp.verify(&inv, now_unix(), &self.config.verify)?.clone();
        if inv.flags.contains(in8_artifact::Flags::RELAY_ALLOWED) {
            self.permit(Instant::now(), &r.candidates);
        }
        let session = self.ice.accept_rsvp(Instant::now(), &inv, &r)?;
        let expect = match r.cert_fingerprint {
            Some(fingerprint) => PeerAuth::Fingerprint {
                fingerprint,
                node: Some(r.responder),
            },
            None => PeerAuth::Identity(r.responder),
        };
        let _ = events.try_send(InviteEvent::Phase2Started {
            responder: r.responder,
        });
        let ctx = self.sessions.entry(session).or_insert_with(|| {
            SessionCtx::Hosting(Hosting {
                invite: id,
                expect: expect.clone(),
                phase: Phase::Two,
                rsvp_candidates: Vec::new(),
                started: Instant::now(),
                dtls: HashSet::new(),
                established: None,
            })
        });
        if let SessionCtx::Hosting(h) = ctx {
            h.phase = Phase::Two;
            h.expect = expect;
            h.rsvp_candidates = r.candidates.clone();
        }
        Ok(r.responder)
    }

    fn revoke(&mut self, invite: InviteId) -> Result<()> {
        let Some(o) = self.invites.get_mut(&invite) else {
            return Err(Error::UnknownInvitation(invite.to_string()));
        };
        let inv = o.signed.invitation();
        self.ledger.revoke(&invite, inv.expires, now_unix())?;
        if !o.revoked {
            o.revoked = true;
            send_final(&o.events, InviteEvent::Ended { reason: "revoked" });
        }
        Ok(())
    }
}
