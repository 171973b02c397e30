//! Incoming Binding requests (RFC 8445 §7.3) and responses (§7.2.5).

use std::net::SocketAddr;
use std::time::Instant;

use super::{Agent, Event, PairState, Role, State};
use crate::candidate::{Candidate, CandidateKind};
use crate::error::Error;
use crate::stun::{Class, Message, MessageWriter, Method, TransactionId, attr};
use crate::transmit::Transmit;

impl Agent {
    /// Handles a parsed message (the endpoint parses once and routes here).
    pub(crate) fn handle_message(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        msg: &Message<'_>,
    ) -> Result<(), Error> {
        if msg.method() != Method::BINDING {
            self.stats.rejected += 1;
            return Err(Error::UnexpectedMethod(msg.method().0));
        }
        match msg.class() {
            Class::Request => self.handle_request(now, from, to, msg),
            Class::Success | Class::Error => self.handle_response(now, from, to, msg),
            // RFC 8445 §11: keepalives are Binding indications; nothing to do.
            Class::Indication => Ok(()),
        }
    }

    /// Whether `username` is "our ufrag:their ufrag" for this agent.
    pub(crate) fn username_matches(&self, username: &[u8]) -> bool {
        let l = self.local.ufrag.as_bytes();
        if username.len() <= l.len() || &username[..l.len()] != l || username[l.len()] != b':' {
            return false;
        }
        match &self.remote {
            Some((r, _)) => &username[l.len() + 1..] == r.ufrag.as_bytes(),
            None => true,
        }
    }

    fn handle_request(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        msg: &Message<'_>,
    ) -> Result<(), Error> {
        if self.state == State::Failed {
            return Err(Error::Closed);
        }
        // RFC 8489 §9.1.3: a request without MESSAGE-INTEGRITY or USERNAME gets 400; a
        // wrong USERNAME or MESSAGE-INTEGRITY gets 401. Neither creates state, and the
        // reply is sent only when it is no larger than the request.
        // RFC 8445 §7.2.4: "The FINGERPRINT mechanism MUST be used for connectivity checks",
        // and §7.3: the server side "MUST utilize the FINGERPRINT mechanism".
        if !msg.has_fingerprint() {
            self.stats.rejected += 1;
            return Err(Error::MissingAttribute("FINGERPRINT"));
        }
        let Some(username) = msg.username() else {
            self.stats.rejected += 1;
            self.reply_unauthenticated(from, to, msg, 400, "Bad Request");
            return Err(Error::Unauthenticated);
        };
        if !self.username_matches(username) || !msg.verify_integrity(&self.local_key) {
            self.stats.rejected += 1;
            self.reply_unauthenticated(from, to, msg, 401, "Unauthorized");
            return Err(Error::Unauthenticated);
        }
        self.stats.requests_received += 1;
        // RFC 8489 §6.3.1: "If the request contains one or more unknown
        // comprehension-required attributes, the server replies with an error response
        // with an error code of 420 (Unknown Attribute)".
        if !msg.unknown_required().is_empty() {
            let mut list = [0u8; 16];
            let n = msg.unknown_required().len();
            for (i, t) in msg.unknown_required().iter().enumerate() {
                list[2 * i..2 * i + 2].copy_from_slice(&t.to_be_bytes());
            }
            let mut buf = Vec::with_capacity(96);
            let mut w = MessageWriter::new(
                &mut buf,
                Method::BINDING,
                Class::Error,
                msg.transaction_id(),
            );
            w.error_code(420, "Unknown Attribute")
                .attr(attr::UNKNOWN_ATTRIBUTES, &list[..2 * n])
                .integrity(&self.local_key)
                .fingerprint();
            self.push_transmit(Transmit {
                from: to,
                to: from,
                contents: buf,
            });
            return Err(Error::UnknownAttributes);
        }
        // RFC 8445 §7.3.1.1, role conflicts.
        if !self.check_role_conflict(from, to, msg) {
            return Ok(());
        }
        let Some(priority) = msg.priority() else {
            // RFC 8445 §7.1.1: PRIORITY "MUST be included in a Binding request".
            self.reply_authenticated_error(from, to, msg.transaction_id(), 400, "Bad Request");
            return Err(Error::MissingAttribute("PRIORITY"));
        };
        self.respond_success(from, to, msg.transaction_id());
        self.learn_and_trigger(now, from, to, priority, msg.use_candidate());
        Ok(())
    }

    /// Returns false when a 487 was sent (the request must not be processed further).
    fn check_role_conflict(&mut self, from: SocketAddr, to: SocketAddr, msg: &Message<'_>) -> bool {
        match self.role {
            Role::Controlling => {
                if let Some(theirs) = msg.ice_controlling() {
                    // RFC 8445 §7.3.1.1: "If the agent's tiebreaker value is larger than or
                    // equal to the contents of the ICE-CONTROLLING attribute, the agent
                    // generates a Binding error response and includes an ERROR-CODE
                    // attribute with a value of 487 (Role Conflict) but retains its role.
                    // If the agent's tiebreaker value is less than the contents of the
                    // ICE-CONTROLLING attribute, the agent switches to the controlled role."
                    if self.tie_breaker >= theirs {
                        self.reply_authenticated_error(
                            from,
                            to,
                            msg.transaction_id(),
                            487,
                            "Role Conflict",
                        );
                        return false;
                    }
                    self.switch_role(Role::Controlled);
                }
            }
            Role::Controlled => {
                if let Some(theirs) = msg.ice_controlled() {
                    // RFC 8445 §7.3.1.1: "If the agent's tiebreaker value is larger than or
                    // equal to the contents of the ICE-CONTROLLED attribute, the agent
                    // switches to the controlling role. If the agent's tiebreaker value is
                    // less than the contents of the ICE-CONTROLLED attribute, the agent
                    // generates a Binding error response and includes an ERROR-CODE
                    // attribute with a value of 487 (Role Conflict) but retains its role."
                    if self.tie_breaker >= theirs {
                        self.switch_role(Role::Controlling);
                    } else {
                        self.reply_authenticated_error(
                            from,
                            to,
                            msg.transaction_id(),
                            487,
                            "Role Conflict",
                        );
                        return false;
                    }
                }
            }
        }
        true
    }

    pub(crate) fn switch_role(&mut self, role: Role) {
        if self.role == role {
            return;
        }
        self.role = role;
        self.nominating = None;
        // RFC 8445 §6.1.2.3: pair priorities depend on which side is controlling.
        self.recompute_priorities();
        self.push_event(Event::RoleChanged { role });
    }

    /// RFC 8445 §7.3.1.3 (learning peer-reflexive candidates), §7.3.1.4 (triggered checks)
    /// and §7.3.1.5 (nomination by the controlling agent).
    fn learn_and_trigger(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        priority: u32,
        use_candidate: bool,
    ) {
        let ri = match self.remotes.iter().position(|r| r.candidate.addr == from) {
            Some(ri) => ri,
            None => {
                // RFC 8445 §7.3.1.3: "If the source transport address of the request does
                // not match any existing remote candidates, it represents a new
                // peer-reflexive remote candidate. ... The priority is taken from the
                // PRIORITY attribute".
                let c = Candidate {
                    kind: CandidateKind::PeerReflexive,
                    addr: from,
                    priority,
                };
                // §7.3.1.3: "the ICE agent does not pair this candidate with any local
                // candidates" — only the triggered-check pair below is formed.
                match self.push_remote(c, false) {
                    Ok(ri) => {
                        self.push_event(Event::PeerReflexive { addr: from });
                        ri
                    }
                    Err(_) => return,
                }
            }
        };
        // The local candidate is the one whose base is where the request arrived.
        let Some(li) = self
            .locals
            .iter()
            .enumerate()
            .filter(|(_, l)| l.base == to)
            .map(|(i, _)| i)
            .min_by_key(|&i| self.locals[i].candidate.kind != CandidateKind::Host)
        else {
            return;
        };
        let Some(pi) = self.add_pair(li, ri) else {
            return;
        };
        // RFC 8445 §7.3.1.5: "If the controlled agent receives a Binding request with the
        // USE-CANDIDATE attribute set, and if the ICE agent accepts the request, the following
        // action is based on the state of the pair": if Succeeded, "The agent sets the
        // nominated flag value of the valid pair to true"; if a triggered check was queued, the
        // flag is set once that check succeeds. A USE-CANDIDATE seen while we are controlling
        // is ignored (§7.1.2: "The controlled agent MUST NOT include the USE-CANDIDATE
        // attribute in a Binding request.").
        let nominate = use_candidate && self.role == Role::Controlled;
        if nominate {
            self.pairs[pi].nominate_on_success = true;
            if self.pairs[pi].valid {
                self.mark_nominated(now, pi);
                return;
            }
        }
        if self.remote.is_none() || self.state == State::Connected && !nominate {
            return;
        }
        match self.pairs[pi].state {
            PairState::Succeeded => {}
            // RFC 8445 §7.3.1.4: "If the state of that pair is In-Progress, the agent cancels
            // the In-Progress transaction. Cancellation means that the agent will not
            // retransmit the Binding requests associated with the connectivity-check
            // transaction, will not treat the lack of response to be a failure, but will wait
            // the duration of the transaction timeout for a response. In addition, the agent
            // MUST enqueue the pair in the triggered checklist associated with the checklist,
            // and set the state of the pair to Waiting".
            PairState::InProgress => {
                for t in self.txns.iter_mut().filter(|t| t.pair == pi) {
                    t.cancelled = true;
                }
                self.enqueue_triggered(pi);
            }
            PairState::Frozen | PairState::Waiting | PairState::Failed => {
                self.enqueue_triggered(pi)
            }
        }
        if self.state == State::Checking && self.started.is_none() {
            self.started = Some(now);
        }
    }

    pub(crate) fn enqueue_triggered(&mut self, pi: usize) {
        self.pairs[pi].state = PairState::Waiting;
        if !self.triggered.contains(&pi) && self.triggered.len() < self.config.max_pairs {
            self.triggered.push_back(pi);
        }
    }

    fn respond_success(&mut self, from: SocketAddr, to: SocketAddr, tid: TransactionId) {
        let mut buf = Vec::with_capacity(if from.is_ipv4() { 80 } else { 92 });
        let mut w = MessageWriter::new(&mut buf, Method::BINDING, Class::Success, tid);
        // RFC 8445 §7.3.1: the success response carries XOR-MAPPED-ADDRESS set to the
        // source of the request; RFC 8445 §7.3: responses are authenticated with the same
        // (local) password as the request.
        w.xor_address(attr::XOR_MAPPED_ADDRESS, from)
            .integrity(&self.local_key)
            .fingerprint();
        self.push_transmit(Transmit {
            from: to,
            to: from,
            contents: buf,
        });
    }

    fn reply_authenticated_error(
        &mut self,
        from: SocketAddr,
        to: SocketAddr,
        tid: TransactionId,
        code: u16,
        reason: &str,
    ) {
        let mut buf = Vec::with_capacity(80);
        let mut w = MessageWriter::new(&mut buf, Method::BINDING, Class::Error, tid);
        w.error_code(code, reason)
            .integrity(&self.local_key)
            .fingerprint();
        self.push_transmit(Transmit {
            from: to,
            to: from,
            contents: buf,
        });
    }

    /// An error reply to an unauthenticated request, sent only when it is no larger than
    /// the request (no amplification for spoofed sources).
    fn reply_unauthenticated(
        &mut self,
        from: SocketAddr,
        to: SocketAddr,
        msg: &Message<'_>,
        code: u16,
        reason: &str,
    ) {
        if let Some(t) = unauthenticated_error(from, to, msg, code, reason) {
            self.push_transmit(t);
        }
    }
}

/// A 400/401 reply to an unauthenticated request, or `None` when it would be larger than
/// the request.
pub(crate) fn unauthenticated_error(
    from: SocketAddr,
    to: SocketAddr,
    msg: &Message<'_>,
    code: u16,
    reason: &str,
) -> Option<Transmit> {
    let mut buf = Vec::with_capacity(48);
    let mut w = MessageWriter::new(
        &mut buf,
        Method::BINDING,
        Class::Error,
        msg.transaction_id(),
    );
    w.error_code(code, reason).fingerprint();
    (buf.len() <= msg.bytes().len()).then_some(Transmit {
        from: to,
        to: from,
        contents: buf,
    })
}
