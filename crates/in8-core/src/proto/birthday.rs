//! Birthday probing in the core (docs/core.md "Hard NATs: birthday probing"): deciding
//! from both sides' NAT classes whether to run it (`in8_ice::punch::plan`), the easy side's
//! bursts of one-shot probes from the session's own socket, the hard side's extra sockets
//! ([`hard`]), and what a hit turns into.
//!
//! Every probe is an ordinary authenticated ICE check (RFC 8445 §7.2.2, short-term
//! credentials of the session), so a hit becomes a pair by the normal rules. An answered
//! probe validates a pair towards the port it was sent to (RFC 8445 §7.2.5.3.2: "The agent
//! constructs a candidate pair whose local candidate equals the mapped address of the
//! response, and whose remote candidate equals the destination address to which the request
//! was sent."); a probe that arrives from an unknown port is answered and its source learned
//! (§7.3.1.3: "If the source transport address of the request does not match any existing
//! remote candidates, it represents a new peer-reflexive remote candidate"), a triggered
//! check goes back (§7.3.1.4), and the controlling side nominates what validated first.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use in8_artifact::{Candidate, CandidateKind};
use in8_ice::nat::NatClass;
use in8_ice::punch::{self, Policy, Step};
use in8_ice::{Agent, Credentials, Event, SessionId};

use super::{Action, Core, SocketGroup, Unreachable};
use crate::config::Birthday;
use easy::Easy;
use hard::Hard;

mod easy;
mod hard;

/// Most sessions probing as the hard side at once: each holds up to
/// [`Birthday::MAX_SOCKETS`] sockets, so at most 4096 descriptors in all.
pub(crate) const MAX_HARD: usize = 4;
/// Most sessions probing as the easy side at once (each is a prober and a timer).
pub(crate) const MAX_EASY: usize = 64;
/// The share of the ICE connect timeout an inviting easy side packs its one burst into
/// (its phase-2 session ends at that timeout).
const INVITER_SHARE: f64 = 0.7;

/// Which side of birthday probing a session is on.
pub(crate) enum Side {
    Easy(Box<Easy>),
    Hard(Box<Hard>),
}

/// One session's birthday probing.
pub(crate) struct Probing {
    pub(crate) side: Side,
    /// A pair found by probing carries the session.
    pub(crate) won: bool,
}

/// The table of sessions that probe, bounded by [`MAX_HARD`] + [`MAX_EASY`].
pub(crate) type Table = HashMap<SessionId, Probing>;

/// The address to sweep towards / the IP to probe: a server-reflexive candidate of the
/// family of `family`, else a host one (a peer without a NAT, or loopback tests).
fn public_of(candidates: &[Candidate], family: SocketAddr) -> Option<SocketAddr> {
    let of = |k: CandidateKind| {
        candidates
            .iter()
            .find(|c| c.kind == k && c.addr.is_ipv4() == family.is_ipv4())
            .map(|c| c.addr)
    };
    of(CandidateKind::ServerReflexive).or_else(|| of(CandidateKind::Host))
}

/// What a session's peer looks like to birthday probing.
pub(crate) struct Peer<'a> {
    /// Its NAT class (from the invitation, the RSVP or its peer record).
    pub(crate) nat: Option<NatClass>,
    /// Its candidates.
    pub(crate) candidates: &'a [Candidate],
    /// Its ICE credentials (for the hard side's own agent).
    pub(crate) credentials: Credentials,
    /// Relays are allowed.
    pub(crate) relay_allowed: bool,
    /// This node's session ends at the connect timeout (an inviter's phase 2, an
    /// introduction): one burst, packed into it.
    pub(crate) one_burst: bool,
}

impl Core {
    /// Phase 2 of `session` starts (or an introduction's simultaneous open): runs
    /// `in8_ice::punch::plan` on both classes and starts the birthday step it names.
    /// `Err` when no strategy this node may run can connect these two NATs.
    pub(crate) fn start_birthday(
        &mut self,
        now: Instant,
        session: SessionId,
        peer: Peer<'_>,
    ) -> Result<(), Unreachable> {
        let (Some(local), Some(remote)) = (self.nat, peer.nat) else {
            return Ok(());
        };
        let cfg = self.config.birthday.clamped();
        let policy = Policy {
            relay_allowed: peer.relay_allowed,
            birthday_allowed: cfg.enabled,
        };
        let steps = punch::plan(&local, &remote, policy);
        let all = Policy {
            relay_allowed: true,
            birthday_allowed: true,
        };
        if steps == [Step::SimultaneousOpen] && punch::plan(&local, &remote, all).len() > 1 {
            return Err(if cfg.enabled {
                Unreachable::BothSymmetric
            } else {
                Unreachable::BirthdayDisabled
            });
        }
        tracing::info!(?session, ?local, ?remote, ?steps, "hard-NAT plan");
        if self.birthday.contains_key(&session) {
            return Ok(());
        }
        for step in steps {
            match step {
                Step::BirthdayProbeRemote => self.start_easy(now, session, &peer, cfg),
                Step::BirthdayOpenSockets => self.start_hard(now, session, &peer, cfg),
                _ => {}
            }
        }
        Ok(())
    }

    fn start_easy(&mut self, now: Instant, session: SessionId, peer: &Peer<'_>, cfg: Birthday) {
        let easy = self
            .birthday
            .values()
            .filter(|p| matches!(p.side, Side::Easy(_)))
            .count();
        let Some(base) = self.sockets.first().copied() else {
            return;
        };
        let Some(target) = public_of(peer.candidates, base) else {
            return;
        };
        if easy >= MAX_EASY {
            tracing::warn!("birthday probing: {MAX_EASY} sessions probe already");
            return;
        }
        let base = self.probe_base(target).unwrap_or(base);
        // A session that ends at the connect timeout gets one burst, packed into 70 % of
        // it. An invitee repeats its burst every round.
        let window = self.config.ice.agent.connect_timeout.mul_f64(INVITER_SHARE);
        let seed = rand::Rng::random(&mut self.rng);
        let mut e = Easy::new(
            target.ip(),
            base,
            cfg,
            peer.one_burst.then_some(window),
            seed,
            now,
        );
        tracing::info!(?session, ip = %e.ip, probes = e.config.max_probes, rate = e.config.rate, "birthday probing (easy side)");
        let mut out = Vec::new();
        if let Some(agent) = self.ice.session_mut(session) {
            e.handle_timeout(now, agent, &mut out);
        }
        self.birthday.insert(
            session,
            Probing {
                side: Side::Easy(Box::new(e)),
                won: false,
            },
        );
        for t in out {
            self.send_ice(now, t);
        }
    }

    fn start_hard(&mut self, now: Instant, session: SessionId, peer: &Peer<'_>, cfg: Birthday) {
        let hard = self
            .birthday
            .values()
            .filter(|p| matches!(p.side, Side::Hard(_)))
            .count();
        if hard >= MAX_HARD {
            tracing::warn!("birthday probing: {MAX_HARD} sessions hold extra sockets already");
            return;
        }
        let Some(base) = self.sockets.first().copied() else {
            return;
        };
        let Some(target) = public_of(peer.candidates, base) else {
            return;
        };
        let Some(a) = self.ice.session(session) else {
            return;
        };
        let ip = self.probe_base(target).unwrap_or(base).ip();
        let mut agent_cfg = self.config.ice.agent.clone();
        let sockets = usize::from(cfg.sockets);
        agent_cfg.max_local_candidates = agent_cfg.max_local_candidates.max(sockets);
        agent_cfg.max_probes = agent_cfg.max_probes.max(2 * sockets);
        agent_cfg.connect_timeout += Birthday::ROUND * cfg.rounds;
        let seed = rand::Rng::random(&mut self.rng);
        let mut agent = Agent::new(agent_cfg, a.role(), a.local_credentials().clone(), seed);
        agent.set_tie_breaker(a.tie_breaker());
        agent.set_remote_credentials(peer.credentials.clone());
        let group = SocketGroup(self.next_id());
        let h = Hard::new(group, agent, target, cfg.rate, cfg.rounds, now);
        tracing::info!(?session, sockets = cfg.sockets, %target, "birthday probing (hard side)");
        self.birthday.insert(
            session,
            Probing {
                side: Side::Hard(Box::new(h)),
                won: false,
            },
        );
        self.push_action(Action::OpenSockets {
            group,
            ip,
            count: cfg.sockets,
        });
    }

    /// The driver opened the sockets of `group` (fewer than asked when the system refused
    /// more: that only lowers the odds).
    pub fn sockets_opened(&mut self, now: Instant, group: SocketGroup, bases: Vec<SocketAddr>) {
        let Some(id) = self.birthday.iter().find_map(|(id, p)| match &p.side {
            Side::Hard(h) if h.group == group => Some(*id),
            _ => None,
        }) else {
            // The session ended meanwhile.
            self.push_action(Action::CloseSockets { group, keep: None });
            return;
        };
        if let Some(Probing {
            side: Side::Hard(h),
            ..
        }) = self.birthday.get_mut(&id)
        {
            tracing::info!(?id, opened = bases.len(), "birthday sockets open");
            h.opened(now, bases);
        }
        self.drain_punch(now, id, None);
        self.flush(now, None);
    }

    /// The socket to probe `target` from: the base of a server-reflexive candidate of its
    /// family (the address the peer was told about), else the first socket of its family.
    fn probe_base(&self, target: SocketAddr) -> Option<SocketAddr> {
        let family = |a: &SocketAddr| a.is_ipv4() == target.is_ipv4();
        self.locals
            .iter()
            .find(|l| l.candidate.kind == CandidateKind::ServerReflexive && family(&l.base))
            .map(|l| l.base)
            .or_else(|| self.sockets.iter().copied().find(family))
    }

    /// When [`Core::birthday_timeout`] is due.
    pub(crate) fn birthday_deadline(&self) -> Option<Instant> {
        self.birthday
            .values()
            .filter_map(|p| match &p.side {
                Side::Easy(e) => e.poll_timeout(),
                Side::Hard(h) => h.poll_timeout(),
            })
            .min()
    }

    /// Sends due probes and sweeps and runs the hard sides' agents.
    pub(crate) fn birthday_timeout(&mut self, now: Instant) {
        let mut out = Vec::new();
        let mut hard = Vec::new();
        for (id, p) in &mut self.birthday {
            match &mut p.side {
                Side::Easy(e) => {
                    if e.poll_timeout().is_some_and(|t| t <= now) {
                        match self.ice.session_mut(*id) {
                            Some(agent) => e.handle_timeout(now, agent, &mut out),
                            // The session's agent is gone: nothing would answer.
                            None => e.stopped = true,
                        }
                    }
                }
                Side::Hard(h) => {
                    if h.poll_timeout().is_some_and(|t| t <= now) {
                        h.handle_timeout(now, Birthday::ROUND);
                        hard.push(*id);
                    }
                }
            }
        }
        for t in out {
            self.send_ice(now, t);
        }
        for id in hard {
            self.drain_punch(now, id, None);
        }
    }

    /// Whether `base` is one of the birthday sockets (promoted or not).
    pub(crate) fn is_punch_socket(&self, base: SocketAddr) -> bool {
        self.punch_session(base).is_some()
    }

    fn punch_session(&self, base: SocketAddr) -> Option<SessionId> {
        self.birthday.iter().find_map(|(id, p)| match &p.side {
            Side::Hard(h) if h.owns(base) => Some(*id),
            _ => None,
        })
    }

    /// A STUN datagram on a birthday socket (or a promoted one).
    pub(crate) fn handle_punch_datagram(
        &mut self,
        now: Instant,
        base: SocketAddr,
        from: SocketAddr,
        data: &[u8],
    ) {
        if let Some(f) = &self.filter
            && !f.admits(base, from)
        {
            return;
        }
        if !in8_ice::stun::is_stun(data) {
            return;
        }
        let Some(id) = self.punch_session(base) else {
            return;
        };
        if let Some(Probing {
            side: Side::Hard(h),
            ..
        }) = self.birthday.get_mut(&id)
        {
            if h.stopped && h.promoted.is_none() {
                return;
            }
            if let Err(e) = h.agent.handle_packet(now, from, base, data) {
                tracing::trace!(%from, "birthday agent ignored a datagram: {e}");
            }
        }
        self.drain_punch(now, id, Some(base));
    }

    /// Handles the hard side's agent's events, then sends its transmits.
    fn drain_punch(&mut self, now: Instant, id: SessionId, current: Option<SocketAddr>) {
        let mut events = Vec::new();
        let mut sends = Vec::new();
        if let Some(Probing {
            side: Side::Hard(h),
            ..
        }) = self.birthday.get_mut(&id)
        {
            while let Some(t) = h.agent.poll_transmit() {
                sends.push(t);
            }
            while let Some(ev) = h.agent.poll_event() {
                events.push(ev);
            }
        }
        // Events first, as in `Core::flush`: a DTLS route reserved on an event must exist
        // before the response that lets the peer start its handshake leaves.
        for ev in events {
            self.punch_event(now, id, ev, current);
        }
        for t in sends {
            if let Some(f) = &mut self.filter {
                f.note_sent(t.from, t.to);
            }
            self.push_transmit(t);
        }
    }

    fn punch_event(&mut self, now: Instant, id: SessionId, ev: Event, current: Option<SocketAddr>) {
        match ev {
            // A server side starts its DTLS server as soon as the peer's address is known
            // (as in phase 1): promote the socket the authenticated check arrived on.
            Event::PeerReflexive { addr } => {
                if let Some(base) = current
                    && self.is_server_side(id)
                    && self.promote(id, base)
                {
                    self.peer_seen(now, id, base, addr);
                }
            }
            Event::Selected { local, remote, .. } => {
                if !self.promote(id, local) {
                    return;
                }
                let mut close = None;
                if let Some(p) = self.birthday.get_mut(&id) {
                    p.won = true;
                    if let Side::Hard(h) = &mut p.side {
                        // Success: every other socket closes at once.
                        h.close_unused();
                        close = Some(h.group);
                    }
                }
                if let Some(group) = close {
                    self.push_action(Action::CloseSockets {
                        group,
                        keep: Some(local),
                    });
                }
                tracing::info!(?id, %local, %remote, "birthday probing found a path");
                self.path_found(now, id, local, remote);
                // The session's own agent (its checks never pass a symmetric NAT) is done.
                self.ice.remove(id);
            }
            Event::Failed { reason } => self.punch_failed(now, id, reason),
            _ => {}
        }
    }

    /// Makes `base` the session's transport socket; `false` if another one already is.
    fn promote(&mut self, id: SessionId, base: SocketAddr) -> bool {
        let Some(Probing {
            side: Side::Hard(h),
            ..
        }) = self.birthday.get_mut(&id)
        else {
            return false;
        };
        if let Some(p) = h.promoted {
            return p == base;
        }
        if !h.take(base) {
            return false;
        }
        let group = h.group;
        self.push_action(Action::Promote { group, base });
        true
    }

    /// The hard side's agent failed: before a hit, probing is over (bounds reached); after
    /// one, consent on the birthday path was lost.
    fn punch_failed(&mut self, now: Instant, id: SessionId, reason: in8_ice::FailureReason) {
        let Some(p) = self.birthday.get_mut(&id) else {
            return;
        };
        let mut group = None;
        if let Side::Hard(h) = &mut p.side {
            h.stopped = true;
            h.close_unused();
            group = Some((h.group, h.promoted));
        }
        if let Some((group, keep)) = group {
            self.push_action(Action::CloseSockets { group, keep });
        }
        if self.consent_lost(id) {
            return;
        }
        tracing::info!(?id, %reason, "birthday probing ended without a path");
        // Without the session's own agent the session is over.
        if self.ice.session(id).is_none() {
            self.end_session(now, id, Unreachable::BirthdayNoPath(reason));
        }
    }

    /// The easy side's session selected a pair: stop probing, and note whether probing
    /// found it (the remote is none of the hard side's candidates but on its public IP).
    pub(crate) fn birthday_selected(&mut self, id: SessionId, remote: SocketAddr) {
        let advertised = self.peer_candidates(id);
        if let Some(p) = self.birthday.get_mut(&id)
            && let Side::Easy(e) = &mut p.side
        {
            e.stopped = true;
            if remote.ip() == e.ip && !advertised.iter().any(|c| c.addr == remote) {
                p.won = true;
            }
        }
    }

    /// The session's DTLS session is up: probing that did not find its path stops now (it
    /// connected another way, e.g. through a relay), and its extra sockets close.
    pub(crate) fn birthday_connected(&mut self, id: SessionId) {
        let Some(p) = self.birthday.get_mut(&id) else {
            return;
        };
        // A server's DTLS starts on the socket an authenticated check arrived on (promoted
        // then); its handshake may finish before that socket's pair is selected.
        if matches!(&p.side, Side::Hard(h) if h.promoted.is_some()) {
            p.won = true;
        }
        if p.won {
            return;
        }
        let mut close = None;
        match &mut p.side {
            Side::Easy(e) => e.stopped = true,
            Side::Hard(h) => {
                h.stopped = true;
                h.close_unused();
                close = Some(h.group);
            }
        }
        if let Some(group) = close {
            self.push_action(Action::CloseSockets { group, keep: None });
        }
    }

    /// The hard side's socket and agent for the session's path, if probing found it.
    pub(crate) fn birthday_path(&self, id: SessionId) -> Option<(SocketAddr, &Agent)> {
        match self.birthday.get(&id) {
            Some(Probing {
                side: Side::Hard(h),
                ..
            }) => h.promoted.map(|s| (s, &h.agent)),
            _ => None,
        }
    }

    /// Whether birthday probing found the session's path.
    pub(crate) fn birthday_won(&self, id: SessionId) -> bool {
        self.birthday.get(&id).is_some_and(|p| p.won)
    }

    /// Whether the path to `remote` came from birthday probing: the hard side's promoted
    /// socket, or on the easy side a port of the hard side's public IP it never signalled.
    pub(crate) fn birthday_found(
        &self,
        id: SessionId,
        remote: SocketAddr,
        advertised: &[Candidate],
    ) -> bool {
        match self.birthday.get(&id) {
            Some(p) if p.won => true,
            Some(Probing {
                side: Side::Easy(e),
                ..
            }) => remote.ip() == e.ip && !advertised.iter().any(|c| c.addr == remote),
            _ => false,
        }
    }

    /// Whether the session has a hard side that outlives its own ICE agent.
    pub(crate) fn birthday_holds(&self, id: SessionId) -> bool {
        matches!(
            self.birthday.get(&id),
            Some(Probing { side: Side::Hard(h), won }) if *won || !h.stopped
        )
    }

    /// Drops the probing of sessions that ended (their sockets close).
    pub(crate) fn birthday_gc(&mut self) {
        let sessions = &self.sessions;
        let mut closed = Vec::new();
        self.birthday.retain(|id, p| {
            let keep = sessions.contains_key(id);
            if !keep && let Side::Hard(h) = &p.side {
                closed.push(h.group);
            }
            keep
        });
        for group in closed {
            self.push_action(Action::CloseSockets { group, keep: None });
        }
    }
}
