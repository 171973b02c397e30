//! The hard side of birthday probing: the ICE agent of the extra sockets, the sweeps that
//! keep their NAT mappings open, and the promotion of the winning socket. The sockets
//! themselves belong to the driver ([`crate::proto::Action::OpenSockets`]); this is the
//! logic.
//!
//! The extra sockets get their own agent (same credentials, role and tie-breaker as the
//! session it serves) instead of joining the session's check list: as host candidates
//! there, each would be paired with every remote candidate (hundreds of frozen pairs with
//! one foundation, and RFC 8445 §14.3's RTO, `Ta * N * (Num-Waiting + Num-In-Progress)`,
//! growing with N into minutes). This agent has no remote candidate at all: its sweeps are
//! one-shot probes (`Agent::send_probe`), and only what answers becomes a pair — a
//! peer-reflexive remote learned from an authenticated check (RFC 8445 §7.3.1.3) or a
//! probe's authenticated response — which ordinary ICE then validates and nominates.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use in8_ice::{Agent, LocalCandidate};

use crate::proto::SocketGroup;

/// The hard side of one session's birthday probing.
pub(crate) struct Hard {
    /// The driver's socket group.
    pub(crate) group: SocketGroup,
    /// The ICE agent of the extra sockets.
    pub(crate) agent: Agent,
    /// The sockets the driver opened (empty until it has).
    sockets: Vec<SocketAddr>,
    /// The socket that won and now carries a transport endpoint.
    pub(crate) promoted: Option<SocketAddr>,
    target: SocketAddr,
    gap: Duration,
    sweep_start: Instant,
    index: usize,
    next_send: Option<Instant>,
    sweeps_left: u32,
    /// Probing is over (a hit elsewhere, or the bounds were reached).
    pub(crate) stopped: bool,
    /// Probes sent (all sweeps).
    pub(crate) sent: u32,
    /// Sweeps started.
    pub(crate) sweeps: u32,
}

impl Hard {
    /// A hard side waiting for its sockets; sweeps towards `target` (the easy side's
    /// server-reflexive address) begin when they are open.
    pub(crate) fn new(
        group: SocketGroup,
        agent: Agent,
        target: SocketAddr,
        rate: u32,
        rounds: u32,
        now: Instant,
    ) -> Self {
        Self {
            group,
            agent,
            sockets: Vec::new(),
            promoted: None,
            target,
            gap: Duration::from_secs(1) / rate.max(1),
            sweep_start: now,
            index: 0,
            next_send: None,
            sweeps_left: rounds,
            stopped: false,
            sent: 0,
            sweeps: 0,
        }
    }

    /// The driver opened these sockets: each becomes a host candidate of the agent, and
    /// the first sweep starts.
    pub(crate) fn opened(&mut self, now: Instant, bases: Vec<SocketAddr>) {
        for (i, base) in bases.iter().enumerate() {
            if let Err(e) = self
                .agent
                .add_local_candidate(LocalCandidate::host(*base, i))
            {
                tracing::debug!("birthday socket not added: {e}");
            }
        }
        self.sockets = bases;
        self.agent.handle_timeout(now);
        self.sweep_start = now;
        self.next_send = Some(now);
    }

    /// Whether `base` is one of this side's sockets.
    pub(crate) fn owns(&self, base: SocketAddr) -> bool {
        self.promoted == Some(base) || self.sockets.contains(&base)
    }

    /// Sends due sweep probes (one per socket, `gap` apart; a sweep each round) and runs
    /// the agent's timers.
    pub(crate) fn handle_timeout(&mut self, now: Instant, round: Duration) {
        while let Some(t) = self.next_send
            && t <= now
        {
            if self.index == 0 {
                if self.sweeps_left == 0 {
                    self.next_send = None;
                    break;
                }
                self.sweeps_left -= 1;
                self.sweeps += 1;
                self.sweep_start = now;
            }
            if let Some(base) = self.sockets.get(self.index) {
                match self.agent.send_probe(now, *base, self.target) {
                    Ok(()) => self.sent += 1,
                    Err(e) => tracing::trace!("birthday probe not sent: {e}"),
                }
            }
            self.index += 1;
            if self.index >= self.sockets.len() {
                self.index = 0;
                self.next_send = Some(self.sweep_start + round);
            } else {
                self.next_send = Some(t + self.gap);
            }
        }
        self.agent.handle_timeout(now);
    }

    /// When [`Hard::handle_timeout`] is due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        [self.next_send, self.agent.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Takes socket `base` for promotion; `false` if it is not an unpromoted socket.
    pub(crate) fn take(&mut self, base: SocketAddr) -> bool {
        let Some(i) = self.sockets.iter().position(|s| *s == base) else {
            return false;
        };
        self.sockets.swap_remove(i);
        self.promoted = Some(base);
        true
    }

    /// Stops the sweeps and forgets every socket but the promoted one (the driver closes
    /// them on [`crate::proto::Action::CloseSockets`]).
    pub(crate) fn close_unused(&mut self) {
        self.sockets.clear();
        self.next_send = None;
    }
}
