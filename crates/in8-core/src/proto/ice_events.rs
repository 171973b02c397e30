//! ICE sessions and what each one is for, and the turning of ICE events into DTLS work: a
//! client link once a pair is selected, a server route reserved when a peer's
//! authenticated check arrives and released once ICE validated its address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use in8_artifact::{Candidate, InviteId, NatBehaviour, NodeId};
use in8_ice::{EndpointEvent, Event, FailureReason, SessionId};
use in8_transport::PeerAuth;

use super::members::MemberSession;
use super::{Action, CloseCause, Core, InviteProgress, JoinId, LinkId, ServerMode, Unreachable};
use crate::events::Phase;

/// DTLS attempts one server-side ICE session may run towards distinct remote addresses.
pub(crate) const MAX_DTLS_PER_SESSION: usize = 4;

/// The inviter's (or entry peer's) view of one ICE session created by an invitation
/// (phase 1) or an RSVP.
pub(crate) struct Hosting {
    pub(crate) invite: InviteId,
    pub(crate) expect: PeerAuth,
    pub(crate) phase: Phase,
    pub(crate) rsvp_candidates: Vec<Candidate>,
    /// The invitee's NAT behaviour, from its RSVP.
    pub(crate) peer_nat: Option<NatBehaviour>,
}

/// What an ICE session is for.
pub(crate) enum Purpose {
    /// This node joins from an invitation, towards its issuer or one of its entry peers.
    Joining {
        /// The join.
        join: JoinId,
        /// Who answers there.
        peer: NodeId,
    },
    /// This node serves an invitation.
    Hosting(Hosting),
    /// A session between two members.
    Member(MemberSession),
}

/// One ICE session's context.
pub(crate) struct SessionCtx {
    pub(crate) purpose: Purpose,
    pub(crate) started: Instant,
    /// DTLS attempts by remote address, at most [`MAX_DTLS_PER_SESSION`].
    pub(crate) attempts: HashMap<SocketAddr, LinkId>,
    /// Server routes reserved (the address sent an authenticated check) whose handshake
    /// waits until ICE validates the address (a check of ours answered from it), with the
    /// time they give up.
    pub(crate) awaiting: HashMap<SocketAddr, Instant>,
    /// The link that carries the session once it is up.
    pub(crate) established: Option<LinkId>,
}

impl SessionCtx {
    pub(crate) fn new(purpose: Purpose, now: Instant) -> Self {
        Self {
            purpose,
            started: now,
            attempts: HashMap::new(),
            awaiting: HashMap::new(),
            established: None,
        }
    }

    /// Whether this side runs the DTLS server.
    pub(crate) fn is_server(&self, me: NodeId) -> bool {
        match &self.purpose {
            Purpose::Joining { .. } => false,
            Purpose::Hosting(_) => true,
            Purpose::Member(m) => m.caller != me,
        }
    }
}

impl Core {
    pub(crate) fn handle_ice_event(
        &mut self,
        now: Instant,
        ev: EndpointEvent,
        current: Option<SocketAddr>,
    ) {
        match ev {
            EndpointEvent::Accepted {
                session, invite, ..
            } if self.invites.contains_key(&invite) => {
                self.push_event(super::Event::Invite {
                    invite,
                    event: InviteProgress::CheckReceived,
                });
                self.sessions.entry(session).or_insert_with(|| {
                    SessionCtx::new(
                        Purpose::Hosting(Hosting {
                            invite,
                            expect: PeerAuth::AnyCertificate,
                            phase: Phase::One,
                            rsvp_candidates: Vec::new(),
                            peer_nat: None,
                        }),
                        now,
                    )
                });
            }
            EndpointEvent::Session { session, event } => {
                self.session_event(now, session, event, current)
            }
            // A session ICE gave up on. Established links were told by the failure event
            // before; a join that never connected got its final event. A session whose
            // hard side of birthday probing still runs (or won) lives on with that agent.
            EndpointEvent::Closed { session } if !self.birthday_holds(session) => {
                if let Some(ctx) = self.sessions.get(&session)
                    && ctx.established.is_none()
                {
                    self.session_gone(now, session);
                }
            }
            _ => {}
        }
    }

    fn session_event(
        &mut self,
        now: Instant,
        session: SessionId,
        event: Event,
        current: Option<SocketAddr>,
    ) {
        match event {
            // A server learns the client's address from its first authenticated check:
            // reserve the DTLS route at once, so the ClientHello (sent as soon as the
            // client's check is answered) finds it.
            Event::PeerReflexive { addr } => {
                if let Some(base) = current {
                    self.peer_seen(now, session, base, addr);
                }
            }
            Event::Selected { local, remote, .. } => {
                self.birthday_selected(session, remote);
                self.path_found(now, session, local, remote);
            }
            Event::Failed { reason } => self.session_failed(now, session, reason),
            Event::KeepOpenEnded => {
                if self.birthday_won(session) {
                    self.ice.remove(session);
                    return;
                }
                self.end_session(now, session, Unreachable::RsvpWindowEnded);
            }
            _ => {}
        }
    }

    /// Whether the session's DTLS side is the server.
    pub(crate) fn is_server_side(&self, session: SessionId) -> bool {
        self.sessions
            .get(&session)
            .is_some_and(|c| c.is_server(self.me))
    }

    /// An authenticated check from `remote` arrived on `base`: a server reserves its
    /// route for that address (once per address, bounded).
    pub(crate) fn peer_seen(
        &mut self,
        now: Instant,
        session: SessionId,
        base: SocketAddr,
        remote: SocketAddr,
    ) {
        if self.is_server_side(session) && !self.redundant_member_session(session, base, remote) {
            self.reserve(now, session, base, remote);
        }
    }

    /// ICE selected (`local`, `remote`) for `session`: a client starts its handshake; a
    /// server's address is validated (ICE's own check was answered from it).
    pub(crate) fn path_found(
        &mut self,
        now: Instant,
        session: SessionId,
        local: SocketAddr,
        remote: SocketAddr,
    ) {
        if !self.sessions.contains_key(&session)
            || self.redundant_member_session(session, local, remote)
        {
            return;
        }
        if self.is_server_side(session) {
            self.reserve(now, session, local, remote);
            self.accept(now, session, remote);
        } else {
            self.connect_client(now, session, local, remote);
        }
    }

    /// Whether `session`'s path (`local`, `remote`) is taken by another link (the
    /// transport runs one session per remote address on a socket). A member session gives
    /// way to a link that is up or being made towards the same peer and is dropped
    /// quietly; a stale server attempt of an invitation (an invitee that went to another
    /// entry point) gives way to the member session instead.
    fn redundant_member_session(
        &mut self,
        session: SessionId,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> bool {
        let Some(other) = self.link_on(session, local, remote) else {
            return false;
        };
        let member = match self.sessions.get(&session).map(|c| &c.purpose) {
            Some(Purpose::Member(m)) => Some(m.clone()),
            _ => None,
        };
        let Some(m) = member else {
            return true;
        };
        let (up, kind, peer) = match self.links.get(&other) {
            Some(o) => (o.up, o.kind, o.peer),
            None => return false,
        };
        if !up && matches!(kind, super::links::LinkKind::Accept(_)) {
            tracing::debug!(?session, %remote, "a stale invitation attempt gives way to a member session");
            self.drop_link(other, CloseCause::Abandoned);
            return false;
        }
        tracing::debug!(?session, %remote, "member session redundant: its path has a link");
        self.ice.remove(session);
        if let Some(ctx) = self.sessions.remove(&session) {
            for l in ctx.attempts.values() {
                self.drop_link(*l, CloseCause::Abandoned);
            }
        }
        if peer != Some(m.peer) {
            let now = self.last_now;
            self.member_attempt_over(now, &m, false);
        }
        true
    }

    /// Reserves the DTLS server route of `session` for `remote`, unless it has one, is
    /// established, or has used its [`MAX_DTLS_PER_SESSION`] attempts.
    fn reserve(&mut self, now: Instant, session: SessionId, base: SocketAddr, remote: SocketAddr) {
        let limit = self.config.transport.handshake_timeout;
        let Some(ctx) = self.sessions.get(&session) else {
            return;
        };
        if ctx.established.is_some()
            || ctx.attempts.contains_key(&remote)
            || ctx.attempts.len() >= MAX_DTLS_PER_SESSION
        {
            return;
        }
        let relayed = self.relayed_addr() == Some(base);
        let link = self.new_link(now, session, base, remote);
        tracing::debug!(?session, ?link, %remote, "DTLS server route reserved");
        if let Some(ctx) = self.sessions.get_mut(&session) {
            ctx.attempts.insert(remote, link);
            ctx.awaiting.insert(remote, now + limit);
            if let Purpose::Hosting(h) = &ctx.purpose {
                let invite = h.invite;
                self.push_event(super::Event::Invite {
                    invite,
                    event: InviteProgress::Connecting { remote },
                });
            }
        }
        self.push_action(Action::Reserve {
            link,
            local: base,
            remote,
            relayed,
        });
    }

    /// Starts the handshake of the reserved route for `remote` (its address is validated).
    fn accept(&mut self, _now: Instant, session: SessionId, remote: SocketAddr) {
        let Some(ctx) = self.sessions.get_mut(&session) else {
            return;
        };
        if ctx.awaiting.remove(&remote).is_none() {
            return;
        }
        let Some(&link) = ctx.attempts.get(&remote) else {
            return;
        };
        let mode = match &ctx.purpose {
            Purpose::Hosting(h) => {
                let Some(o) = self.invites.get(&h.invite) else {
                    return;
                };
                ServerMode::Join {
                    invitation: Box::new(o.signed.invitation().clone()),
                    expect: h.expect.clone(),
                }
            }
            Purpose::Member(m) => ServerMode::Member { peer: m.peer },
            Purpose::Joining { .. } => return,
        };
        self.push_action(Action::Accept { link, mode });
    }

    /// Starts the server handshakes that waited for ICE to validate their address, and
    /// gives up on those whose address never validated.
    pub(crate) fn release_validated(&mut self, now: Instant) {
        let mut ready = Vec::new();
        let mut expired = Vec::new();
        for (id, ctx) in &self.sessions {
            for (remote, deadline) in &ctx.awaiting {
                let agent = self
                    .birthday_path(*id)
                    .map(|(_, a)| a)
                    .or_else(|| self.ice.session(*id));
                if agent.is_some_and(|a| a.has_valid_pair_to(*remote)) {
                    ready.push((*id, *remote));
                } else if *deadline <= now {
                    expired.push((*id, *remote));
                }
            }
        }
        for (id, remote) in ready {
            self.accept(now, id, remote);
        }
        for (id, remote) in expired {
            self.not_validated(now, id, remote);
        }
    }

    /// A reserved route whose address never answered ICE's checks in time: released, and
    /// the inviter hears why.
    fn not_validated(&mut self, now: Instant, session: SessionId, remote: SocketAddr) {
        let Some(ctx) = self.sessions.get_mut(&session) else {
            return;
        };
        ctx.awaiting.remove(&remote);
        let Some(link) = ctx.attempts.remove(&remote) else {
            return;
        };
        let invite = match &ctx.purpose {
            Purpose::Hosting(h) => Some(h.invite),
            _ => None,
        };
        self.drop_link(link, CloseCause::Abandoned);
        if let Some(invite) = invite {
            self.push_event(super::Event::Invite {
                invite,
                event: InviteProgress::JoinFailed {
                    remote,
                    error: crate::Error::Unreachable {
                        reason: Unreachable::NotValidated { remote },
                    },
                },
            });
        }
        let _ = now;
    }

    fn session_failed(&mut self, now: Instant, session: SessionId, reason: FailureReason) {
        if self.consent_lost(session) {
            return;
        }
        let purpose = self.sessions.get(&session).map(|c| match &c.purpose {
            Purpose::Joining { join, .. } => Some(*join),
            _ => None,
        });
        match purpose {
            Some(Some(join)) => self.join_session_failed(now, join, session, reason),
            // The inviter's side of a phase-1 attempt that did not work out: it keeps
            // listening; the invitee will send an RSVP.
            Some(None)
                if matches!(
                    self.sessions.get(&session).map(|c| &c.purpose),
                    Some(Purpose::Hosting(_))
                ) => {}
            Some(None) => self.member_session_failed(now, session, reason),
            None => {}
        }
    }

    /// If `session` carries an established link, ICE consent on its path was lost: the
    /// link ends with that reason (RFC 7675 §5.1: "If no packets have been received ...
    /// the ICE agent MUST cease transmission on that 5-tuple"). Returns whether it did.
    pub(crate) fn consent_lost(&mut self, session: SessionId) -> bool {
        let Some(link) = self.sessions.get(&session).and_then(|c| c.established) else {
            return false;
        };
        self.drop_link(link, CloseCause::ConsentLost);
        true
    }

    /// Ends a session that cannot connect: its owner hears `reason`.
    pub(crate) fn end_session(&mut self, now: Instant, session: SessionId, reason: Unreachable) {
        self.ice.remove(session);
        let Some(ctx) = self.sessions.remove(&session) else {
            return;
        };
        for link in ctx.attempts.values() {
            self.drop_link(*link, CloseCause::Abandoned);
        }
        match ctx.purpose {
            Purpose::Joining { join, .. } => self.join_unreachable(now, join, session, reason),
            Purpose::Hosting(h) => {
                tracing::info!(?session, invite = %h.invite, %reason, "hosting session ended");
            }
            Purpose::Member(m) => self.member_attempt_over(now, &m, false),
        }
    }

    /// The ICE session was dropped without an established link.
    fn session_gone(&mut self, now: Instant, session: SessionId) {
        let Some(ctx) = self.sessions.remove(&session) else {
            return;
        };
        match ctx.purpose {
            Purpose::Joining { join, .. } => {
                self.join_unreachable(now, join, session, Unreachable::NoPath)
            }
            Purpose::Hosting(_) => {}
            Purpose::Member(m) => self.member_attempt_over(now, &m, false),
        }
        for link in ctx.attempts.values() {
            if self.links.get(link).is_some_and(|l| !l.up) {
                self.drop_link(*link, CloseCause::Abandoned);
            }
        }
    }

    /// The candidates the peer of `session` signalled (invitation, RSVP or record).
    pub(crate) fn peer_candidates(&self, session: SessionId) -> Vec<Candidate> {
        match self.sessions.get(&session).map(|c| &c.purpose) {
            Some(Purpose::Joining { join, peer }) => self
                .joins
                .get(join)
                .map(|j| j.candidates_of(*peer))
                .unwrap_or_default(),
            Some(Purpose::Hosting(h)) => h.rsvp_candidates.clone(),
            Some(Purpose::Member(m)) => m.candidates.clone(),
            None => Vec::new(),
        }
    }
}
