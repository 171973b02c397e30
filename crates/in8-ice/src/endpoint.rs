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
use std::time::Instant;

use in8_artifact::{Invitation, InviteId};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::agent::{Agent, Config, Event, KeepOpen};
use crate::candidate::{CandidateKind, LocalCandidate};
use crate::error::Error;
use crate::responder::ResponderConfig;
use crate::stun::IntegrityKey;
use crate::transmit::Transmit;

mod routing;
mod sessions;

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
    /// Only relayed local candidates (the inviter asked for a relay-only invitation, like
    /// WebRTC's `iceTransportPolicy: "relay"`: its own addresses are never revealed).
    relay_only: bool,
}

impl Entry {
    pub(super) fn uses(&self, c: &LocalCandidate) -> bool {
        relay_ok(&c.candidate, self.relay_allowed)
            && (!self.relay_only || c.candidate.kind == CandidateKind::Relay)
    }
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
    relay_only: std::collections::HashSet<InviteId>,
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
            relay_only: std::collections::HashSet::new(),
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
            if e.uses(&c) {
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
        self.relay_only.remove(invite);
    }

    /// Sessions of this listened invitation (phase 1 and after its RSVPs) check only from
    /// relayed local candidates. Call after [`Endpoint::listen`]; bounded by the listened
    /// invitations.
    pub fn set_relay_only(&mut self, invite: InviteId) -> Result<(), Error> {
        if !self
            .listening
            .values()
            .any(|l| l.invitation.invite_id() == invite)
        {
            return Err(Error::Unknown("listened invitation"));
        }
        self.relay_only.insert(invite);
        Ok(())
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
        let relay_only = invite.is_some_and(|i| self.relay_only.contains(&i));
        for c in self.locals.iter().filter(|c| {
            relay_ok(&c.candidate, relay_allowed)
                && (!relay_only || c.candidate.kind == CandidateKind::Relay)
        }) {
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
                relay_only,
            },
        );
        self.drain(id);
        Ok(id)
    }

    /// A session.
    pub fn session(&self, id: SessionId) -> Option<&Agent> {
        self.sessions.get(&id).map(|e| &e.agent)
    }

    /// A session, mutably (add candidates, keep-open); drain outputs afterwards.
    pub fn session_mut(&mut self, id: SessionId) -> Option<&mut Agent> {
        self.sessions.get_mut(&id).map(|e| &mut e.agent)
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
