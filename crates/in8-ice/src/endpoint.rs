//! The endpoint: everything STUN on one UDP socket — the phase-1 listener serving many
//! invitations, the sessions it and [`Endpoint::join`] create, phase 2 after an RSVP, and
//! the public Binding responder.
//!
//! Routing of an incoming STUN message:
//! - a request with USERNAME `a:b` goes to the session whose local:remote ufrags are
//!   `a:b`; failing that, when `a` is the inviter ufrag of a listened invitation and
//!   MESSAGE-INTEGRITY verifies with that invitation's derived password, a new controlled
//!   session is created for the invitee ufrag `b` (no state before that check);
//! - a request without USERNAME goes to the Binding responder;
//! - a response goes to the session that owns its transaction id, else it is returned as
//!   [`Error::UnknownTransaction`] so the driver can offer it to its TURN client or NAT
//!   prober.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use in8_artifact::{Flags, Invitation, InviteId, Rsvp};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::agent::{Agent, Config, Credentials, Event, KeepOpen, Role};
use crate::candidate::{CandidateKind, LocalCandidate};
use crate::error::Error;
use crate::responder::{self, ResponderConfig};
use crate::stun::{Class, IntegrityKey, Message};
use crate::transmit::Transmit;

/// Identifies a session (an [`Agent`]) inside an [`Endpoint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u64);

/// Endpoint settings and bounds.
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// Settings of every session.
    pub agent: Config,
    /// Most sessions at once (each is an [`Agent`] with its own bounds).
    pub max_sessions: usize,
    /// Most invitations listened for at once.
    pub max_invitations: usize,
    /// Most concurrent phase-1 sessions one invitation may create (distinct invitee
    /// ufrags); further ones are refused until one ends.
    pub max_sessions_per_invitation: u32,
    /// The invitee's keep-open after a failed phase 1 when the invitation allows an RSVP.
    pub keep_open: KeepOpen,
    /// The public Binding responder (`None` disables it).
    pub responder: Option<ResponderConfig>,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            agent: Config::default(),
            max_sessions: 256,
            max_invitations: 1024,
            max_sessions_per_invitation: 4,
            keep_open: KeepOpen::DEFAULT,
            responder: Some(ResponderConfig::default()),
        }
    }
}

/// What an endpoint reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointEvent {
    /// Phase 1: an authenticated check for a listened invitation created a session.
    Accepted {
        /// The new session.
        session: SessionId,
        /// The invitation it belongs to.
        invite: InviteId,
        /// The invitee's ufrag.
        remote_ufrag: String,
    },
    /// An event of a session.
    Session {
        /// The session.
        session: SessionId,
        /// What happened.
        event: Event,
    },
    /// A session ended for good (failed without keep-open, or removed) and was dropped.
    Closed {
        /// The session.
        session: SessionId,
    },
}

struct Listening {
    invitation: Invitation,
    ufrag: String,
    key: IntegrityKey,
    sessions: u32,
}

struct Entry {
    agent: Agent,
    invite: Option<InviteId>,
    username_in: Vec<u8>,
    /// Relayed candidates are used in this session only when its invitation allows relays
    /// (seed claim 18: a relay is a policy choice, never silent).
    relay_allowed: bool,
}

fn relay_ok(c: &in8_artifact::Candidate, allowed: bool) -> bool {
    allowed || c.kind != CandidateKind::Relay
}

/// Counters of the endpoint itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Requests dropped as unauthenticated (unknown ufrag or bad MESSAGE-INTEGRITY).
    pub unauthenticated: u64,
    /// Plain Binding requests answered by the responder.
    pub reflected: u64,
    /// Sessions refused by a bound.
    pub refused: u64,
}

/// One socket's worth of ICE.
pub struct Endpoint {
    config: EndpointConfig,
    rng: ChaCha20Rng,
    next_id: u64,
    locals: Vec<LocalCandidate>,
    listening: HashMap<String, Listening>,
    sessions: BTreeMap<SessionId, Entry>,
    by_username: HashMap<Vec<u8>, SessionId>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<EndpointEvent>,
    stats: EndpointStats,
    scratch: Vec<u8>,
}

impl core::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Endpoint")
            .field("sessions", &self.sessions.len())
            .field("listening", &self.listening.len())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// A new endpoint; `seed` drives every random choice (ufrags, tie-breakers, ids).
    pub fn new(config: EndpointConfig, seed: u64) -> Self {
        Self {
            config,
            rng: ChaCha20Rng::seed_from_u64(seed),
            next_id: 0,
            locals: Vec::new(),
            listening: HashMap::new(),
            sessions: BTreeMap::new(),
            by_username: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: EndpointStats::default(),
            scratch: Vec::with_capacity(128),
        }
    }

    /// Counters.
    pub fn stats(&self) -> EndpointStats {
        self.stats
    }

    /// Adds a local candidate to every current and future session.
    pub fn add_local_candidate(&mut self, c: LocalCandidate) {
        if !self.locals.contains(&c) && self.locals.len() < self.config.agent.max_local_candidates {
            self.locals.push(c);
        }
        for e in self.sessions.values_mut() {
            if relay_ok(&c.candidate, e.relay_allowed) {
                let _ = e.agent.add_local_candidate(c);
            }
        }
    }

    /// Phase 1, inviter side: answer checks for this invitation from now on.
    pub fn listen(&mut self, invitation: &Invitation) -> Result<(), Error> {
        let ufrag = invitation.secret.inviter_ufrag();
        if !self.listening.contains_key(&ufrag)
            && self.listening.len() >= self.config.max_invitations
        {
            return Err(Error::Limit {
                what: "listened invitations",
                max: self.config.max_invitations,
            });
        }
        let key = IntegrityKey::short_term(&invitation.secret.inviter_password());
        self.listening.insert(
            ufrag.clone(),
            Listening {
                invitation: invitation.clone(),
                ufrag,
                key,
                sessions: 0,
            },
        );
        Ok(())
    }

    /// Stops accepting new phase-1 sessions for an invitation (existing ones go on).
    pub fn unlisten(&mut self, invite: &InviteId) {
        self.listening
            .retain(|_, l| l.invitation.invite_id() != *invite);
    }

    fn alloc_id(&mut self) -> SessionId {
        self.next_id += 1;
        SessionId(self.next_id)
    }

    fn insert(
        &mut self,
        now: Instant,
        mut agent: Agent,
        invite: Option<InviteId>,
        relay_allowed: bool,
    ) -> Result<SessionId, Error> {
        if self.sessions.len() >= self.config.max_sessions {
            self.stats.refused += 1;
            return Err(Error::Limit {
                what: "sessions",
                max: self.config.max_sessions,
            });
        }
        for c in self
            .locals
            .iter()
            .filter(|c| relay_ok(&c.candidate, relay_allowed))
        {
            let _ = agent.add_local_candidate(*c);
        }
        let mut username_in = agent.local_credentials().ufrag.as_bytes().to_vec();
        username_in.push(b':');
        username_in.extend_from_slice(agent.remote_ufrag().unwrap_or_default().as_bytes());
        let id = self.alloc_id();
        self.by_username.insert(username_in.clone(), id);
        agent.handle_timeout(now);
        self.sessions.insert(
            id,
            Entry {
                agent,
                invite,
                username_in,
                relay_allowed,
            },
        );
        self.drain(id);
        Ok(id)
    }

    /// A session with explicit credentials and candidates (introductions, interop with
    /// other ICE stacks). Checks start at once.
    pub fn add_session(
        &mut self,
        now: Instant,
        role: Role,
        local: Credentials,
        remote: Credentials,
        remote_candidates: &[in8_artifact::Candidate],
        relay_allowed: bool,
    ) -> Result<SessionId, Error> {
        let seed = self.rng.next_u64();
        let mut a = Agent::new(self.config.agent.clone(), role, local, seed);
        a.set_remote_credentials(remote);
        for c in remote_candidates
            .iter()
            .filter(|c| relay_ok(c, relay_allowed))
        {
            let _ = a.add_remote_candidate(*c);
        }
        self.insert(now, a, None, relay_allowed)
    }

    /// Phase 1, invitee side: check the inviter's candidates with credentials derived from
    /// the invitation (RFC 8445 roles: the invitee is controlling). If the invitation
    /// allows an RSVP, a failed phase 1 turns into keep-open.
    pub fn join(&mut self, now: Instant, invitation: &Invitation) -> Result<SessionId, Error> {
        let ufrag = Credentials::random(&mut self.rng).ufrag;
        let local = Credentials {
            password: invitation.secret.invitee_password(&ufrag),
            ufrag,
        };
        let remote = Credentials {
            ufrag: invitation.secret.inviter_ufrag(),
            password: invitation.secret.inviter_password(),
        };
        let seed = self.rng.next_u64();
        let mut a = Agent::new(self.config.agent.clone(), Role::Controlling, local, seed);
        a.set_remote_credentials(remote);
        let relay = invitation.flags.contains(Flags::RELAY_ALLOWED);
        for c in invitation.candidates.iter().filter(|c| relay_ok(c, relay)) {
            let _ = a.add_remote_candidate(*c);
        }
        if invitation.flags.contains(Flags::RSVP_ALLOWED) {
            a.set_keep_open(Some(self.config.keep_open));
        }
        self.insert(now, a, Some(invitation.invite_id()), relay)
    }

    /// Phase 2, inviter side: the RSVP arrived (already verified by the caller with
    /// `SignedRsvp::verify`). Both sides now check all pairs at once; an existing phase-1
    /// session with this invitee is reused.
    pub fn accept_rsvp(
        &mut self,
        now: Instant,
        invitation: &Invitation,
        rsvp: &Rsvp,
    ) -> Result<SessionId, Error> {
        if rsvp.invite_id != invitation.invite_id() {
            return Err(Error::Invalid {
                what: "RSVP",
                reason: "it answers another invitation",
            });
        }
        let local = Credentials {
            ufrag: invitation.secret.inviter_ufrag(),
            password: invitation.secret.inviter_password(),
        };
        let mut username = local.ufrag.as_bytes().to_vec();
        username.push(b':');
        username.extend_from_slice(rsvp.ufrag.as_bytes());
        if let Some(id) = self.by_username.get(&username).copied()
            && let Some(e) = self.sessions.get_mut(&id)
        {
            for c in rsvp
                .candidates
                .iter()
                .filter(|c| relay_ok(c, e.relay_allowed))
            {
                let _ = e.agent.add_remote_candidate(*c);
            }
            e.agent.handle_timeout(now);
            self.drain(id);
            return Ok(id);
        }
        let remote = Credentials {
            password: invitation.secret.invitee_password(&rsvp.ufrag),
            ufrag: rsvp.ufrag.clone(),
        };
        let seed = self.rng.next_u64();
        let mut a = Agent::new(self.config.agent.clone(), Role::Controlled, local, seed);
        a.set_remote_credentials(remote);
        let relay = invitation.flags.contains(Flags::RELAY_ALLOWED);
        for c in rsvp.candidates.iter().filter(|c| relay_ok(c, relay)) {
            let _ = a.add_remote_candidate(*c);
        }
        self.insert(now, a, Some(invitation.invite_id()), relay)
    }

    /// A session.
    pub fn session(&self, id: SessionId) -> Option<&Agent> {
        self.sessions.get(&id).map(|e| &e.agent)
    }

    /// A session, mutably (add candidates, keep-open); drain outputs afterwards.
    pub fn session_mut(&mut self, id: SessionId) -> Option<&mut Agent> {
        self.sessions.get_mut(&id).map(|e| &mut e.agent)
    }

    /// ICE restart of a session (RFC 8445 §9: new ufrag and password on both sides, roles
    /// kept, data may continue on the previous pair until a new one is selected). The
    /// session is re-keyed under its new USERNAME; checks start at once.
    pub fn restart_session(
        &mut self,
        now: Instant,
        id: SessionId,
        local: Credentials,
        remote: Credentials,
        remote_candidates: &[in8_artifact::Candidate],
    ) -> Result<(), Error> {
        let Some(e) = self.sessions.get_mut(&id) else {
            return Err(Error::Unknown("session"));
        };
        if local.ufrag == e.agent.local_credentials().ufrag || remote.ufrag.is_empty() {
            return Err(Error::Invalid {
                what: "ICE restart",
                reason: "the local ufrag must change",
            });
        }
        e.agent.restart(now, local);
        e.agent.set_remote_credentials(remote);
        for c in self
            .locals
            .iter()
            .filter(|c| relay_ok(&c.candidate, e.relay_allowed))
        {
            let _ = e.agent.add_local_candidate(*c);
        }
        for c in remote_candidates
            .iter()
            .filter(|c| relay_ok(c, e.relay_allowed))
        {
            let _ = e.agent.add_remote_candidate(*c);
        }
        let mut username_in = e.agent.local_credentials().ufrag.as_bytes().to_vec();
        username_in.push(b':');
        username_in.extend_from_slice(e.agent.remote_ufrag().unwrap_or_default().as_bytes());
        let old = core::mem::replace(&mut e.username_in, username_in.clone());
        e.agent.handle_timeout(now);
        self.by_username.remove(&old);
        self.by_username.insert(username_in, id);
        self.drain(id);
        Ok(())
    }

    /// Drops a session.
    pub fn remove(&mut self, id: SessionId) {
        if let Some(e) = self.sessions.remove(&id) {
            self.by_username.remove(&e.username_in);
            if let Some(inv) = e.invite
                && let Some(l) = self
                    .listening
                    .values_mut()
                    .find(|l| l.invitation.invite_id() == inv)
            {
                l.sessions = l.sessions.saturating_sub(1);
            }
            self.push_event(EndpointEvent::Closed { session: id });
        }
    }

    fn push_event(&mut self, e: EndpointEvent) {
        if self.events.len() >= self.config.agent.max_queue * 4 {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    fn push_transmit(&mut self, t: Transmit) {
        if self.transmits.len() >= self.config.agent.max_queue * 4 {
            self.transmits.pop_front();
        }
        self.transmits.push_back(t);
    }

    fn drain(&mut self, id: SessionId) {
        let Some(e) = self.sessions.get_mut(&id) else {
            return;
        };
        let mut failed = false;
        while let Some(t) = e.agent.poll_transmit() {
            if self.transmits.len() >= self.config.agent.max_queue * 4 {
                self.transmits.pop_front();
            }
            self.transmits.push_back(t);
        }
        let mut evs = Vec::new();
        while let Some(ev) = e.agent.poll_event() {
            evs.push(ev);
        }
        if e.agent.is_failed() {
            failed = true;
        }
        for event in evs {
            self.push_event(EndpointEvent::Session { session: id, event });
        }
        if failed {
            self.remove(id);
        }
    }

    /// Handles one datagram received on the local socket `to` from `from`.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), Error> {
        let msg = Message::parse(bytes)?;
        match msg.class() {
            Class::Request => self.handle_request(now, from, to, &msg),
            Class::Success | Class::Error => {
                let tid = msg.transaction_id();
                let Some(id) = self
                    .sessions
                    .iter()
                    .find(|(_, e)| e.agent.owns_transaction(&tid))
                    .map(|(id, _)| *id)
                else {
                    return Err(Error::UnknownTransaction);
                };
                let r = self
                    .sessions
                    .get_mut(&id)
                    .map(|e| e.agent.handle_message(now, from, to, &msg));
                self.drain(id);
                r.unwrap_or(Err(Error::UnknownTransaction))
            }
            Class::Indication => Ok(()),
        }
    }

    fn handle_request(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        msg: &Message<'_>,
    ) -> Result<(), Error> {
        let Some(username) = msg.username() else {
            let Some(cfg) = self.config.responder else {
                return Err(Error::Unauthenticated);
            };
            let mut out = core::mem::take(&mut self.scratch);
            if responder::respond(&cfg, from, to, msg, &mut out) {
                self.stats.reflected += 1;
                self.push_transmit(Transmit {
                    from: to,
                    to: from,
                    contents: out.clone(),
                });
            }
            self.scratch = out;
            return Ok(());
        };
        if let Some(&id) = self.by_username.get(username) {
            let r = match self.sessions.get_mut(&id) {
                Some(e) => e.agent.handle_message(now, from, to, msg),
                None => Err(Error::Closed),
            };
            if r == Err(Error::Unauthenticated) {
                self.stats.unauthenticated += 1;
            }
            self.drain(id);
            return r;
        }
        // Phase 1 listener: "inviterUfrag:inviteeUfrag".
        let colon = username.iter().position(|&b| b == b':');
        let listening = colon
            .and_then(|c| core::str::from_utf8(&username[..c]).ok())
            .and_then(|u| self.listening.get_mut(u));
        let Some(l) = listening else {
            return self.reject(from, to, msg);
        };
        // MESSAGE-INTEGRITY with the derived inviter password before any state exists.
        if !msg.verify_integrity(&l.key) {
            return self.reject(from, to, msg);
        }
        let Some(remote_ufrag) = colon
            .and_then(|c| core::str::from_utf8(&username[c + 1..]).ok())
            .filter(|u| in8_artifact::check_ufrag(u).is_ok())
        else {
            return self.reject(from, to, msg);
        };
        if l.sessions >= self.config.max_sessions_per_invitation {
            self.stats.refused += 1;
            return Err(Error::Limit {
                what: "sessions per invitation",
                max: self.config.max_sessions_per_invitation as usize,
            });
        }
        l.sessions += 1;
        let invite = l.invitation.invite_id();
        let relay = l.invitation.flags.contains(Flags::RELAY_ALLOWED);
        let remote = Credentials {
            password: l.invitation.secret.invitee_password(remote_ufrag),
            ufrag: remote_ufrag.to_owned(),
        };
        let local = Credentials {
            ufrag: l.ufrag.clone(),
            password: l.invitation.secret.inviter_password(),
        };
        let seed = self.rng.next_u64();
        let mut a = Agent::new(self.config.agent.clone(), Role::Controlled, local, seed);
        a.set_remote_credentials(remote);
        let remote_ufrag = remote_ufrag.to_owned();
        let id = match self.insert(now, a, Some(invite), relay) {
            Ok(id) => id,
            Err(e) => {
                if let Some(l) = self
                    .listening
                    .values_mut()
                    .find(|l| l.invitation.invite_id() == invite)
                {
                    l.sessions = l.sessions.saturating_sub(1);
                }
                return Err(e);
            }
        };
        self.push_event(EndpointEvent::Accepted {
            session: id,
            invite,
            remote_ufrag,
        });
        let r = match self.sessions.get_mut(&id) {
            Some(e) => e.agent.handle_message(now, from, to, msg),
            None => Err(Error::Closed),
        };
        self.drain(id);
        r
    }

    fn reject(&mut self, from: SocketAddr, to: SocketAddr, msg: &Message<'_>) -> Result<(), Error> {
        self.stats.unauthenticated += 1;
        // RFC 8489 §9.1.3: 401 for a USERNAME or MESSAGE-INTEGRITY that does not check out,
        // only when the reply is no larger than the request.
        if let Some(t) = crate::agent::unauthenticated_error(from, to, msg, 401, "Unauthorized") {
            self.push_transmit(t);
        }
        Err(Error::Unauthenticated)
    }

    /// Advances every session's timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, e)| e.agent.poll_timeout().is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(e) = self.sessions.get_mut(&id) {
                e.agent.handle_timeout(now);
            }
            self.drain(id);
        }
    }

    /// The earliest deadline of any session.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sessions
            .values()
            .filter_map(|e| e.agent.poll_timeout())
            .min()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<EndpointEvent> {
        self.events.pop_front()
    }
}
