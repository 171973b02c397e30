//! Candidates, pairing, pruning, priorities and the check list order (RFC 8445 §6.1.2).

use std::net::SocketAddr;
use std::time::Instant;

use super::{Agent, Event, Role, State};
use crate::candidate::{
    Candidate, CandidateKind, LocalCandidate, RemoteCandidate, candidate_priority, pair_priority,
};
use crate::error::Error;

/// RFC 8445 §6.1.2.6 pair states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PairState {
    Frozen,
    Waiting,
    InProgress,
    Succeeded,
    Failed,
}

#[derive(Clone, Debug)]
pub(crate) struct Pair {
    pub(crate) local: usize,
    pub(crate) remote: usize,
    pub(crate) priority: u64,
    pub(crate) state: PairState,
    pub(crate) foundation: (u64, u64),
    /// In the valid list (RFC 8445 §7.2.5.3.2).
    pub(crate) valid: bool,
    pub(crate) nominated: bool,
    /// The controlled agent received USE-CANDIDATE before the pair was valid
    /// (RFC 8445 §7.3.1.5).
    pub(crate) nominate_on_success: bool,
    /// Round-trip time of the latest check on this pair that was answered without a
    /// retransmission (Karn's rule: a retransmitted request's answer is ambiguous).
    pub(crate) rtt: Option<std::time::Duration>,
}

fn same_family(a: SocketAddr, b: SocketAddr) -> bool {
    let link_local = |x: SocketAddr| match x.ip() {
        std::net::IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
        std::net::IpAddr::V4(_) => false,
    };
    a.is_ipv4() == b.is_ipv4() && link_local(a) == link_local(b)
}

impl Agent {
    /// Adds a local candidate (the driver gathered it; the base is the socket's address).
    /// Server-reflexive candidates are advertised but not paired when their base is also a
    /// host candidate: RFC 8445 §6.1.2.4 "each local candidate is replaced with its base"
    /// for pairing, and duplicates are pruned.
    pub fn add_local_candidate(&mut self, c: LocalCandidate) -> Result<(), Error> {
        if self
            .locals
            .iter()
            .any(|l| l.candidate.addr == c.candidate.addr && l.base == c.base)
        {
            return Ok(());
        }
        if self.locals.len() >= self.config.max_local_candidates {
            return Err(Error::Limit {
                what: "local candidates",
                max: self.config.max_local_candidates,
            });
        }
        self.locals.push(c);
        let li = self.locals.len() - 1;
        for ri in 0..self.remotes.len() {
            self.add_pair(li, ri);
        }
        Ok(())
    }

    /// The local candidates (given, plus peer-reflexive ones learned from responses).
    pub fn local_candidates(&self) -> &[LocalCandidate] {
        &self.locals
    }

    /// The remote candidates (signalled, plus peer-reflexive ones).
    pub fn remote_candidates(&self) -> &[RemoteCandidate] {
        &self.remotes
    }

    /// Adds a candidate of the peer. If it matches a peer-reflexive candidate already
    /// learned, that one is replaced instead of duplicated.
    pub fn add_remote_candidate(&mut self, c: Candidate) -> Result<(), Error> {
        if let Some(ri) = self.remotes.iter().position(|r| r.candidate.addr == c.addr) {
            let r = &mut self.remotes[ri];
            if r.candidate.kind == CandidateKind::PeerReflexive
                && c.kind != CandidateKind::PeerReflexive
            {
                // RFC 8445 §7.3.1.3 gives a peer-reflexive candidate an arbitrary foundation:
                // "If any subsequent candidate exchanges contain this peer-reflexive
                // candidate, it will signal the actual foundation for the candidate." The
                // signalled candidate replaces it in place (type, priority, foundation); its
                // pairs keep their state.
                *r = RemoteCandidate::new(c);
                self.recompute_priorities();
            }
            return Ok(());
        }
        self.push_remote(c, true)?;
        Ok(())
    }

    pub(crate) fn push_remote(&mut self, c: Candidate, pair_all: bool) -> Result<usize, Error> {
        if self.remotes.len() >= self.config.max_remote_candidates {
            return Err(Error::Limit {
                what: "remote candidates",
                max: self.config.max_remote_candidates,
            });
        }
        self.remotes.push(RemoteCandidate::new(c));
        let ri = self.remotes.len() - 1;
        if pair_all {
            for li in 0..self.locals.len() {
                self.add_pair(li, ri);
            }
        }
        Ok(ri)
    }

    fn pairable(&self, li: usize) -> bool {
        let l = &self.locals[li];
        match l.candidate.kind {
            CandidateKind::Host | CandidateKind::Relay => true,
            // A reflexive candidate stands for its base; pair it only when no host
            // candidate does (RFC 8445 §6.1.2.4 pruning).
            CandidateKind::ServerReflexive | CandidateKind::PeerReflexive => !self
                .locals
                .iter()
                .any(|h| h.candidate.kind == CandidateKind::Host && h.base == l.base),
        }
    }

    pub(crate) fn compute_priority(&self, li: usize, ri: usize) -> u64 {
        let lp = self.locals[li].candidate.priority;
        let rp = self.remotes[ri].candidate.priority;
        match self.role {
            Role::Controlling => pair_priority(lp, rp),
            Role::Controlled => pair_priority(rp, lp),
        }
    }

    /// Forms the pair (local, remote) if allowed and not redundant; returns its index.
    pub(crate) fn add_pair(&mut self, li: usize, ri: usize) -> Option<usize> {
        let (l, r) = (&self.locals[li], &self.remotes[ri]);
        // RFC 8445 §6.1.2.2: "The ICE agent pairs each local candidate with each remote
        // candidate for the same component of the same data stream with the same IP address
        // family." and "IPv6 link-local addresses MUST NOT be paired with other than
        // link-local addresses."
        if !same_family(l.base, r.candidate.addr) || !self.pairable(li) {
            return None;
        }
        let (base, raddr) = (l.base, r.candidate.addr);
        let priority = self.compute_priority(li, ri);
        // RFC 8445 §6.1.2.4: "two candidate pairs are redundant if their local candidates
        // have the same base and their remote candidates are identical" — keep the one
        // with the higher priority.
        if let Some(pi) = self.pairs.iter().position(|p| {
            self.locals[p.local].base == base && self.remotes[p.remote].candidate.addr == raddr
        }) {
            if self.pairs[pi].priority < priority && self.pairs[pi].state == PairState::Frozen {
                self.pairs[pi].local = li;
                self.pairs[pi].priority = priority;
            }
            return Some(pi);
        }
        if self.pairs.len() >= self.config.max_pairs {
            return None;
        }
        let foundation = (l.foundation, r.foundation);
        // RFC 8445 §6.1.2.6: for each foundation the highest-priority pair starts Waiting,
        // the others Frozen. Pairs are added incrementally here, so a new pair is Waiting
        // unless a pair with its foundation is already active or done.
        let state = if self
            .pairs
            .iter()
            .any(|p| p.foundation == foundation && p.state != PairState::Failed)
        {
            PairState::Frozen
        } else {
            PairState::Waiting
        };
        self.pairs.push(Pair {
            local: li,
            remote: ri,
            priority,
            state,
            foundation,
            valid: false,
            nominated: false,
            nominate_on_success: false,
            rtt: None,
        });
        Some(self.pairs.len() - 1)
    }

    pub(crate) fn recompute_priorities(&mut self) {
        for i in 0..self.pairs.len() {
            let (l, r) = (self.pairs[i].local, self.pairs[i].remote);
            self.pairs[i].priority = self.compute_priority(l, r);
            self.pairs[i].foundation = (self.locals[l].foundation, self.remotes[r].foundation);
        }
    }

    /// The pair to check next, RFC 8445 §6.1.4.2: (1) the top of the triggered-check
    /// queue; (2) "If there is no candidate pair in the Waiting state, and if there are one or
    /// more pairs in the Frozen state, the agent checks the foundation associated with each
    /// pair in the Frozen state. For a given foundation, if there is no pair (in any
    /// checklist in the checklist set) in the Waiting or In-Progress state, the agent puts
    /// the candidate pair state to Waiting"; (3) the highest-priority Waiting pair.
    pub(crate) fn next_pair_to_check(&mut self) -> Option<(usize, bool)> {
        while let Some(pi) = self.triggered.pop_front() {
            if self.pairs[pi].state == PairState::Waiting {
                return Some((pi, self.nominating == Some(pi)));
            }
        }
        if matches!(self.state, State::Connected | State::Failed) {
            return None;
        }
        if !self.pairs.iter().any(|p| p.state == PairState::Waiting) {
            for i in 0..self.pairs.len() {
                let f = self.pairs[i].foundation;
                let busy = self.pairs.iter().any(|p| {
                    p.foundation == f
                        && matches!(p.state, PairState::Waiting | PairState::InProgress)
                });
                if self.pairs[i].state == PairState::Frozen && !busy {
                    self.pairs[i].state = PairState::Waiting;
                }
            }
        }
        self.pairs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.state == PairState::Waiting)
            .max_by_key(|(i, p)| (p.priority, core::cmp::Reverse(*i)))
            .map(|(i, _)| (i, false))
    }

    /// Whether any pair could still be checked or is being checked.
    pub(crate) fn has_pending_checks(&self) -> bool {
        !self.triggered.is_empty()
            || self.pairs.iter().any(|p| {
                matches!(
                    p.state,
                    PairState::Frozen | PairState::Waiting | PairState::InProgress
                )
            })
    }

    /// Whether a new check could be sent now (something Waiting, Frozen or triggered).
    pub(crate) fn has_checkable(&self) -> bool {
        let busy = |f: (u64, u64)| {
            self.pairs.iter().any(|p| {
                p.foundation == f && matches!(p.state, PairState::Waiting | PairState::InProgress)
            })
        };
        !self.triggered.is_empty()
            || (!matches!(self.state, State::Connected | State::Failed)
                && self.pairs.iter().any(|p| {
                    p.state == PairState::Waiting
                        || (p.state == PairState::Frozen && !busy(p.foundation))
                }))
    }

    /// RFC 8445 §7.2.5.3.3: "The agent MUST set the states for all other Frozen candidate
    /// pairs in all checklists with the same foundation to Waiting."
    pub(crate) fn unfreeze_foundation(&mut self, foundation: (u64, u64)) {
        for p in &mut self.pairs {
            if p.state == PairState::Frozen && p.foundation == foundation {
                p.state = PairState::Waiting;
            }
        }
    }

    /// The best valid pair.
    pub(crate) fn best_valid(&self) -> Option<usize> {
        self.pairs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.valid)
            .max_by_key(|(i, p)| (p.priority, core::cmp::Reverse(*i)))
            .map(|(i, _)| i)
    }

    /// Makes `pi` the pair data uses when it is better than the current one (the first
    /// valid pair is usable at once; better ones replace it until nomination).
    pub(crate) fn consider_selected(&mut self, now: Instant, pi: usize) {
        let better = match self.selected {
            None => true,
            Some(s) => !self.pairs[s].nominated && self.pairs[pi].priority > self.pairs[s].priority,
        };
        if better || (self.pairs[pi].nominated && self.selected != Some(pi)) {
            self.set_selected(now, pi);
        }
    }

    pub(crate) fn set_selected(&mut self, now: Instant, pi: usize) {
        self.selected = Some(pi);
        self.fallback = None;
        if self.consent.is_none() {
            let next = now + self.jitter(self.config.consent_interval);
            self.consent = Some(super::Consent {
                last_ok: now,
                next_check: next,
            });
        }
        let p = &self.pairs[pi];
        let e = Event::Selected {
            local: self.locals[p.local].base,
            remote: self.remotes[p.remote].candidate.addr,
            nominated: p.nominated,
        };
        self.push_event(e);
    }

    /// The local candidate whose address is `addr`, or a new peer-reflexive one with base
    /// `base` and `priority` (RFC 8445 §7.2.5.3.1).
    pub(crate) fn local_for_mapped(
        &mut self,
        addr: SocketAddr,
        base: SocketAddr,
        priority: u32,
    ) -> Option<usize> {
        if let Some(i) = self.locals.iter().position(|l| l.candidate.addr == addr) {
            return Some(i);
        }
        if self.locals.len() >= self.config.max_local_candidates {
            return None;
        }
        self.locals.push(LocalCandidate::new(
            Candidate {
                kind: CandidateKind::PeerReflexive,
                addr,
                priority,
            },
            base,
        ));
        Some(self.locals.len() - 1)
    }

    /// The PRIORITY attribute of a check from local candidate `li`. RFC 8445 §7.1.1: "The
    /// PRIORITY attribute MUST be included in a Binding request and be set to the value
    /// computed by the algorithm in Section 5.1.2 for the local candidate, but with the
    /// candidate type preference of peer-reflexive candidates."
    pub(crate) fn prflx_priority(&self, li: usize) -> u32 {
        let local_pref = ((self.locals[li].candidate.priority >> 8) & 0xffff) as u16;
        candidate_priority(CandidateKind::PeerReflexive, local_pref)
    }
}
