//! One-shot probes for the hard-NAT strategies (port prediction targets, birthday probing):
//! authenticated checks to addresses that are not candidates, bounded by the transaction
//! limit, that become a pair only when answered.

use std::net::SocketAddr;
use std::time::Instant;

use super::{Agent, Txn, TxnKind};
use crate::candidate::{Candidate, CandidateKind, candidate_priority};
use crate::error::Error;
use crate::stun::{Class, MessageWriter, Method, TransactionId, attr};
use crate::transmit::Transmit;

impl Agent {
    /// Sends one authenticated check from the local candidate whose base is `from` to `to`
    /// (a predicted port or a birthday-probe target), without creating a pair: a probe that
    /// is answered becomes a valid pair with a peer-reflexive remote candidate; one that is
    /// not is forgotten after `2 × rto_min`. Pace the calls (e.g. with
    /// [`crate::punch::BirthdayProber`]); at most `max_probes` are outstanding.
    pub fn send_probe(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
    ) -> Result<(), Error> {
        self.now_hint = Some(now);
        let Some((_, key)) = &self.remote else {
            return Err(Error::Invalid {
                what: "probe",
                reason: "remote credentials are not known yet",
            });
        };
        let local = self
            .locals
            .iter()
            .position(|l| l.base == from)
            .ok_or(Error::Unknown("local candidate for the probe"))?;
        if self.probe_txns() >= self.config.max_probes {
            return Err(Error::Limit {
                what: "outstanding probes",
                max: self.config.max_probes,
            });
        }
        let priority = self.prflx_priority(local);
        let id = TransactionId::random(&mut self.rng);
        let controlling = self.role == super::Role::Controlling;
        let mut bytes = Vec::with_capacity(112);
        {
            let mut w = MessageWriter::new(&mut bytes, Method::BINDING, Class::Request, id);
            w.attr(attr::USERNAME, &self.username_out)
                .attr_u32(attr::PRIORITY, priority);
            if controlling {
                w.attr_u64(attr::ICE_CONTROLLING, self.tie_breaker);
            } else {
                w.attr_u64(attr::ICE_CONTROLLED, self.tie_breaker);
            }
            w.integrity(key).fingerprint();
        }
        let rto = self.config.rto_min;
        self.txns.push(Txn {
            id,
            pair: usize::MAX,
            kind: TxnKind::Probe { local },
            from,
            to,
            bytes: Vec::new(),
            sends: 1,
            max_sends: 1,
            interval: rto,
            rto,
            next: now + rto * 2,
            cancelled: false,
            sent_controlling: controlling,
            priority_sent: priority,
            sent_at: now,
        });
        self.stats.requests_sent += 1;
        if self.started.is_none() {
            self.started = Some(now);
        }
        self.push_transmit(Transmit {
            from,
            to,
            contents: bytes,
        });
        Ok(())
    }

    /// An authenticated answer to a probe: the pair it validates, if any.
    pub(crate) fn probe_answered(
        &mut self,
        from: SocketAddr,
        to: SocketAddr,
        txn: &Txn,
        local: usize,
        class: Class,
    ) -> Option<usize> {
        if class != Class::Success || from != txn.to || to != txn.from {
            return None;
        }
        let ri = match self.remotes.iter().position(|r| r.candidate.addr == txn.to) {
            Some(ri) => ri,
            None => {
                let c = Candidate {
                    kind: CandidateKind::PeerReflexive,
                    addr: txn.to,
                    priority: candidate_priority(CandidateKind::PeerReflexive, 0),
                };
                self.push_remote(c, false).ok()?
            }
        };
        self.add_pair(local, ri)
    }
}

impl Agent {
    /// Outstanding one-shot probes (bounded by `max_probes`).
    pub(crate) fn probe_txns(&self) -> usize {
        self.txns
            .iter()
            .filter(|t| matches!(t.kind, TxnKind::Probe { .. }))
            .count()
    }

    /// Outstanding transactions other than probes (bounded by `max_transactions`).
    pub(crate) fn check_txns(&self) -> usize {
        self.txns.len() - self.probe_txns()
    }
}
