//! Responses to our checks (RFC 8445 §7.2.5) and nomination (§7.2.5.3.4, §8.1).

use std::net::SocketAddr;
use std::time::Instant;

use rand_core::RngCore;

use super::{Agent, PairState, Role, State, TxnKind};
use crate::error::Error;
use crate::stun::{Class, Message};

impl Agent {
    pub(crate) fn handle_response(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        msg: &Message<'_>,
    ) -> Result<(), Error> {
        let tid = msg.transaction_id();
        let Some(ti) = self.txns.iter().position(|t| t.id == tid) else {
            return Err(Error::UnknownTransaction);
        };
        let Some((_, key)) = &self.remote else {
            return Err(Error::UnknownTransaction);
        };
        // RFC 8445 §7.2.5: responses are authenticated with the remote password. A response
        // that fails is dropped and the transaction goes on.
        if !msg.verify_integrity(key) {
            self.stats.rejected += 1;
            return Err(Error::Unauthenticated);
        }
        let mut txn = self.txns.swap_remove(ti);
        if let TxnKind::Probe { local } = txn.kind {
            // A hard-NAT probe (crate::punch) has no pair until it succeeds.
            match self.probe_answered(from, to, &txn, local, msg.class()) {
                Some(pi) => {
                    txn.pair = pi;
                    txn.kind = TxnKind::Check { nominate: false };
                }
                None => return Ok(()),
            }
        }
        let pi = txn.pair;
        // RFC 8445 §7.2.5.2.1: "The ICE agent MUST check that the source and destination
        // transport addresses in the Binding request and response are symmetric. ... If the
        // addresses are not symmetric, the agent MUST set the candidate pair state to
        // Failed."
        if from != txn.to || to != txn.from {
            if matches!(txn.kind, TxnKind::Check { .. }) {
                self.pairs[pi].state = PairState::Failed;
            }
            return Err(Error::NotSymmetric);
        }
        if msg.class() == Class::Error {
            let code = msg.error_code().map(|(c, _)| c);
            if code == Some(487) && matches!(txn.kind, TxnKind::Check { .. }) {
                // RFC 8445 §7.2.5.1: "If the Binding request generates a 487 (Role Conflict)
                // error response, and if the ICE agent included an ICE-CONTROLLED attribute
                // in the request, the agent MUST switch to the controlling role. If the agent
                // included an ICE-CONTROLLING attribute in the request, the agent MUST switch
                // to the controlled role." Switching to the role we already hold (a stale 487
                // that crossed our own switch) changes nothing.
                let target = if txn.sent_controlling {
                    Role::Controlled
                } else {
                    Role::Controlling
                };
                if self.role != target {
                    self.switch_role(target);
                    // "The agent MUST change the tiebreaker value."
                    self.tie_breaker = self.rng.next_u64();
                }
                // "... the agent MUST add the candidate pair whose check generated the 487
                // error response to the triggered-check queue ... and set the candidate pair
                // state to Waiting."
                self.enqueue_triggered(pi);
                return Ok(());
            }
            // RFC 8445 §7.2.5.2.4: other errors are unrecoverable: the pair fails.
            if matches!(txn.kind, TxnKind::Check { .. } | TxnKind::KeepOpen) {
                self.pairs[pi].state = PairState::Failed;
            }
            return Err(Error::ErrorResponse(code.unwrap_or(0)));
        }
        self.stats.responses_received += 1;
        if txn.sends == 1 && pi < self.pairs.len() {
            self.pairs[pi].rtt = Some(now.saturating_duration_since(txn.sent_at));
        }
        // Any authenticated success on the selected pair refreshes consent (RFC 7675 §5.1).
        if self.selected == Some(pi)
            && let Some(c) = &mut self.consent
        {
            c.last_ok = now;
        }
        if txn.kind == TxnKind::Consent {
            return Ok(());
        }
        if let Some(mapped) = msg.xor_mapped_address() {
            // RFC 8445 §7.2.5.3.1: a mapped address that is no local candidate is a new
            // peer-reflexive local candidate (not paired, but the peer will see checks
            // from it).
            let _ = self.local_for_mapped(mapped, txn.from, txn.priority_sent);
        }
        let p = &mut self.pairs[pi];
        p.state = PairState::Succeeded;
        p.valid = true;
        let foundation = p.foundation;
        self.unfreeze_foundation(foundation);
        if self.first_valid.is_none() {
            self.first_valid = Some(now);
        }
        if self.keep_open_active() {
            // Phase 2 worked: back to establishing, with a fresh deadline.
            self.state = State::Checking;
            self.started = Some(now);
        }
        let nominated_now = match txn.kind {
            // RFC 8445 §8.1.1 (regular nomination): the pair is nominated when the check
            // carrying USE-CANDIDATE succeeds.
            TxnKind::Check { nominate: true } => self.role == Role::Controlling,
            _ => self.pairs[pi].nominate_on_success && self.role == Role::Controlled,
        };
        if nominated_now {
            self.mark_nominated(now, pi);
        } else if self.state != State::Connected {
            self.consider_selected(now, pi);
        }
        Ok(())
    }

    fn keep_open_active(&self) -> bool {
        matches!(self.state, State::KeepOpen { .. })
    }

    pub(crate) fn mark_nominated(&mut self, now: Instant, pi: usize) {
        if self.state == State::Connected && self.selected == Some(pi) {
            return;
        }
        self.pairs[pi].nominated = true;
        self.nominating = None;
        self.state = State::Connected;
        // RFC 8445 §8.1.2: "the ICE agent MUST remove all candidate pairs for the same
        // component from the checklist and from the triggered-check queue. If the state of a
        // pair is In-Progress, the agent cancels the In-Progress transaction." Pairs stay in
        // the table (requests on them are still answered, §8.1.2) but are no longer checked.
        self.triggered.clear();
        for p in &mut self.pairs {
            if matches!(p.state, PairState::Waiting | PairState::Frozen) {
                p.state = PairState::Failed;
            }
        }
        for t in &mut self.txns {
            if matches!(t.kind, TxnKind::Check { .. } | TxnKind::KeepOpen) {
                t.cancelled = true;
            }
        }
        self.set_selected(now, pi);
    }
}
