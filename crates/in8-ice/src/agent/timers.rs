//! Time-driven work: Ta pacing, retransmissions, nomination, deadlines, consent, keep-open.

use core::time::Duration;
use std::time::Instant;

use super::{Agent, Event, FailureReason, PairState, Role, State, Txn, TxnKind};
use crate::stun::{Class, MessageWriter, Method, TransactionId, attr};
use crate::transmit::Transmit;

impl Agent {
    /// Advances timers to `now`: retransmits, sends the next paced check, nominates,
    /// checks deadlines and consent.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now_hint = Some(now);
        if self.state == State::Failed {
            return;
        }
        if self.started.is_none() && self.state == State::Checking {
            self.started = Some(now);
        }
        self.run_transactions(now);
        if self.check_consent(now) {
            return;
        }
        self.maybe_nominate(now);
        self.pace_checks(now);
        self.check_deadline(now);
        self.keep_open_round(now);
    }

    /// When [`Agent::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Failed {
            return None;
        }
        let mut t: Option<Instant> = None;
        let mut at = |x: Instant| t = Some(t.map_or(x, |y| y.min(x)));
        for x in &self.txns {
            at(x.next);
        }
        if let Some(c) = &self.consent
            && self.selected.is_some()
        {
            at(c.next_check);
            at(c.last_ok + self.config.consent_timeout);
        }
        match self.state {
            State::Checking => {
                if let Some(s) = self.started {
                    at(s + self.config.connect_timeout);
                } else {
                    // Not started yet: wake at once (the agent never reads a clock; before
                    // any input it knows no time, and the driver starts it with
                    // `handle_timeout`).
                    return self.now_hint;
                }
                if let Some(n) = self.next_check.or(self.now_hint)
                    && self.has_checkable()
                    && self.remote.is_some()
                    && self.check_txns() < self.config.max_transactions
                {
                    at(n);
                }
                if self.role == Role::Controlling
                    && self.nominating.is_none()
                    && let Some(f) = self.first_valid
                {
                    at(f + self.config.nomination_delay);
                }
            }
            State::KeepOpen { until, next_round } => {
                at(until);
                at(next_round);
                if let Some(n) = self.next_check.or(self.now_hint)
                    && !self.triggered.is_empty()
                {
                    at(n);
                }
            }
            State::Connected => {
                if let Some(n) = self.next_check.or(self.now_hint)
                    && !self.triggered.is_empty()
                {
                    at(n);
                }
            }
            State::Failed => {}
        }
        t
    }

    fn run_transactions(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.txns.len() {
            if self.txns[i].next > now {
                i += 1;
                continue;
            }
            let t = &mut self.txns[i];
            if !t.cancelled && t.sends < t.max_sends {
                // RFC 8489 §6.2.1: retransmit with the interval doubling each time.
                t.sends += 1;
                t.interval *= 2;
                t.next = if t.sends < t.max_sends {
                    now + t.interval
                } else {
                    // "If, after the last request, a duration equal to Rm times the RTO has
                    // passed without a response ... the client SHOULD consider the
                    // transaction to have failed."
                    now + t.rto * self.config.rm
                };
                let tr = Transmit {
                    from: t.from,
                    to: t.to,
                    contents: t.bytes.clone(),
                };
                self.stats.retransmissions += 1;
                self.push_transmit(tr);
                i += 1;
                continue;
            }
            // Timed out.
            let t = self.txns.swap_remove(i);
            if matches!(t.kind, TxnKind::Probe { .. }) {
                continue;
            }
            if matches!(t.kind, TxnKind::Check { .. } | TxnKind::KeepOpen)
                && self.pairs[t.pair].state == PairState::InProgress
                && !self.txns.iter().any(|o| o.pair == t.pair)
            {
                // RFC 8445 §7.2.5.2.3: "If the Binding request transaction times out, the ICE
                // agent MUST set the candidate pair state to Failed."
                self.pairs[t.pair].state = PairState::Failed;
                if self.nominating == Some(t.pair) {
                    self.nominating = None;
                }
            }
        }
    }

    /// Returns true when consent was lost now.
    fn check_consent(&mut self, now: Instant) -> bool {
        let (Some(pi), Some(c)) = (self.selected, self.consent) else {
            return false;
        };
        if now >= c.last_ok + self.config.consent_timeout {
            // RFC 7675 §5.1: "... the endpoint MUST cease transmission on that 5-tuple."
            self.selected = None;
            self.fallback = None;
            self.state = State::Failed;
            self.txns.clear();
            self.triggered.clear();
            self.transmits.clear();
            self.push_event(Event::Failed {
                reason: FailureReason::ConsentLost,
            });
            return true;
        }
        if now >= c.next_check {
            let next = now + self.jitter(self.config.consent_interval);
            if let Some(c) = &mut self.consent {
                c.next_check = next;
            }
            // RFC 7675 §5.1: consent is obtained with STUN Binding requests on the selected
            // pair; three sends (500 ms, 1 s, 2 s) fit inside the 5 s interval.
            if self.txns.iter().all(|t| t.kind != TxnKind::Consent) {
                self.send_request(now, pi, TxnKind::Consent, 3);
            }
        }
        false
    }

    fn maybe_nominate(&mut self, now: Instant) {
        if self.role != Role::Controlling
            || self.state != State::Checking
            || self.nominating.is_some()
        {
            return;
        }
        let Some(best) = self.best_valid() else {
            return;
        };
        let prio = self.pairs[best].priority;
        let better_pending = self.pairs.iter().any(|p| {
            p.priority > prio
                && matches!(
                    p.state,
                    PairState::Frozen | PairState::Waiting | PairState::InProgress
                )
        });
        let waited = self
            .first_valid
            .is_some_and(|f| now >= f + self.config.nomination_delay);
        if better_pending && !waited {
            return;
        }
        // RFC 8445 §8.1.1: "Once the controlling agent has picked a valid pair for
        // nomination, it repeats the connectivity check that produced this valid pair (by
        // enqueueing the pair that generated the check into the triggered-check queue), this
        // time with the USE-CANDIDATE attribute."
        self.nominating = Some(best);
        self.pairs[best].state = PairState::Waiting;
        self.triggered.retain(|&p| p != best);
        self.triggered.push_front(best);
        if self.next_check.is_none() {
            self.next_check = Some(now);
        }
    }

    fn pace_checks(&mut self, now: Instant) {
        if self.remote.is_none() {
            return;
        }
        if self.next_check.is_some_and(|n| n > now) {
            return;
        }
        if self.check_txns() >= self.config.max_transactions {
            return;
        }
        let Some((pi, nominate)) = self.next_pair_to_check() else {
            self.next_check = None;
            return;
        };
        let kind = if matches!(self.state, State::KeepOpen { .. }) {
            TxnKind::KeepOpen
        } else {
            TxnKind::Check { nominate }
        };
        let max_sends = if kind == TxnKind::KeepOpen {
            1
        } else {
            self.config.rc
        };
        self.pairs[pi].state = PairState::InProgress;
        self.send_request(now, pi, kind, max_sends);
        self.next_check = Some(now + self.config.ta);
    }

    /// Builds and sends a Binding request on pair `pi`, recording its transaction.
    pub(crate) fn send_request(&mut self, now: Instant, pi: usize, kind: TxnKind, max_sends: u32) {
        let Some((_, key)) = &self.remote else { return };
        let li = self.pairs[pi].local;
        let (from, to) = (
            self.locals[li].base,
            self.remotes[self.pairs[pi].remote].candidate.addr,
        );
        let priority = self.prflx_priority(li);
        let id = TransactionId::random(&mut self.rng);
        let controlling = self.role == Role::Controlling;
        let mut bytes = Vec::with_capacity(120);
        {
            let mut w = MessageWriter::new(&mut bytes, Method::BINDING, Class::Request, id);
            w.attr(attr::USERNAME, &self.username_out);
            if let Some(s) = self.config.software {
                w.attr(attr::SOFTWARE, s.as_bytes());
            }
            w.attr_u32(attr::PRIORITY, priority);
            if controlling {
                w.attr_u64(attr::ICE_CONTROLLING, self.tie_breaker);
                if matches!(kind, TxnKind::Check { nominate: true }) {
                    w.attr(attr::USE_CANDIDATE, &[]);
                }
            } else {
                w.attr_u64(attr::ICE_CONTROLLED, self.tie_breaker);
            }
            w.integrity(key).fingerprint();
        }
        // RFC 8445 §14.3: "RTO = MAX (500ms, Ta * N * (Num-Waiting + Num-In-Progress))", N
        // being "the total number of connectivity checks to be performed" (here: the pairs).
        let active = self
            .pairs
            .iter()
            .filter(|p| matches!(p.state, PairState::Waiting | PairState::InProgress))
            .count() as u32;
        let n = self.pairs.len() as u32;
        let rto = self
            .config
            .rto_min
            .max(self.config.ta.saturating_mul(n.saturating_mul(active)));
        let next = if max_sends > 1 {
            now + rto
        } else {
            now + rto * 2
        };
        if self.check_txns() >= self.config.max_transactions {
            return;
        }
        self.txns.push(Txn {
            id,
            pair: pi,
            kind,
            from,
            to,
            bytes: bytes.clone(),
            sends: 1,
            max_sends,
            interval: rto,
            rto,
            next,
            cancelled: false,
            sent_controlling: controlling,
            priority_sent: priority,
            sent_at: now,
        });
        if kind != TxnKind::Consent {
            self.stats.requests_sent += 1;
        }
        self.push_transmit(Transmit {
            from,
            to,
            contents: bytes,
        });
    }

    fn check_deadline(&mut self, now: Instant) {
        if self.state != State::Checking {
            return;
        }
        let Some(started) = self.started else { return };
        let deadline = now >= started + self.config.connect_timeout;
        let exhausted = !self.pairs.is_empty()
            && self.remote.is_some()
            && !self.has_pending_checks()
            && self.txns.iter().all(|t| t.kind == TxnKind::Consent)
            && self.best_valid().is_none();
        if !deadline && !exhausted {
            return;
        }
        let reason = self.failure_reason();
        self.push_event(Event::Failed { reason });
        match self.keep_open {
            Some(k) => {
                self.state = State::KeepOpen {
                    until: now + k.duration,
                    next_round: now + k.interval,
                };
            }
            None => {
                self.state = State::Failed;
                self.fallback = None;
                self.txns.clear();
                self.triggered.clear();
            }
        }
    }

    /// Names why establishment failed, from what was seen.
    pub(crate) fn failure_reason(&self) -> FailureReason {
        let s = self.stats;
        if self.pairs.is_empty()
            && s.requests_received == 0
            && (self.remotes.is_empty() || s.requests_sent == 0)
        {
            return FailureReason::NoCandidatePairs;
        }
        if self.best_valid().is_some() {
            return FailureReason::NotNominated;
        }
        if s.responses_received == 0 && s.requests_received == 0 {
            return FailureReason::NothingReceived {
                requests_sent: s.requests_sent,
            };
        }
        FailureReason::NoBidirectionalExchange {
            responses_received: s.responses_received,
            requests_received: s.requests_received,
        }
    }

    fn keep_open_round(&mut self, now: Instant) {
        let State::KeepOpen { until, next_round } = self.state else {
            return;
        };
        if now >= until {
            self.state = State::Failed;
            self.txns.clear();
            self.triggered.clear();
            self.push_event(Event::KeepOpenEnded);
            return;
        }
        if now < next_round {
            return;
        }
        let interval = self
            .keep_open
            .map_or(Duration::from_secs(15), |k| k.interval);
        self.state = State::KeepOpen {
            until,
            next_round: now + interval,
        };
        // One check per pair per round, paced by Ta through the triggered queue.
        for pi in 0..self.pairs.len() {
            if self.pairs[pi].state != PairState::InProgress {
                self.enqueue_triggered(pi);
            }
        }
        if self.next_check.is_none() {
            self.next_check = Some(now);
        }
        self.pace_checks(now);
    }
}
