//! Joining from an invitation: ICE towards the issuer (phase 1, keep-open and phase 2 after
//! the RSVP) and, at once, towards each entry peer the invitation lists (seed claim 23),
//! the first that answers carrying the join. One DTLS attempt at a time, so two entry
//! points never both redeem the same use.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use in8_artifact::{Candidate, CandidateKind, Flags, NodeId, Rsvp, SignedInvitation, SignedRsvp};
use in8_ice::{Credentials, FailureReason, Role, SessionId};
use in8_transport::PeerAuth;

use super::ice_events::{Purpose, SessionCtx};
use super::{
    Action, ClientMode, CloseCause, Core, Event, JoinId, JoinProgress, LinkId, Unreachable,
};
use crate::error::{Error, Result};

/// One join in progress.
pub(crate) struct JoinCtx {
    pub(crate) invitation: SignedInvitation,
    /// The issuer's ICE session: keep-open, the RSVP and phase 2 belong to it.
    pub(crate) primary: SessionId,
    /// Every ICE session of the join with the node that answers there.
    pub(crate) sessions: Vec<(SessionId, NodeId)>,
    /// Sessions whose checks failed (the primary keeps its NAT bindings open after).
    pub(crate) failed: HashSet<SessionId>,
    pub(crate) started: Instant,
    pub(crate) rsvp_sent: bool,
    /// The DTLS attempt in flight.
    pub(crate) dtls: Option<LinkId>,
    /// Paths selected while another attempt was in flight: (session, local, remote).
    pub(crate) queued: VecDeque<(SessionId, SocketAddr, SocketAddr)>,
}

impl JoinCtx {
    /// The candidates of `peer` (the issuer's from the invitation, an entry peer's from
    /// its entry).
    pub(crate) fn candidates_of(&self, peer: NodeId) -> Vec<Candidate> {
        let inv = self.invitation.invitation();
        if peer == inv.issuer {
            return inv.candidates.clone();
        }
        inv.entry_peers
            .iter()
            .find(|e| e.id == peer)
            .map(|e| e.candidates.clone())
            .unwrap_or_default()
    }
}

impl Core {
    /// Joins from an invitation: verifies it, then checks the issuer's candidates (phase 1)
    /// and every entry peer's. If none answers, the join yields
    /// [`JoinProgress::Phase1Failed`] with the RSVP to send back and keeps trying until
    /// the issuer accepts it or it expires.
    pub fn join(&mut self, now: Instant, signed: &SignedInvitation) -> Result<JoinId> {
        let revocations = self.net.revocations();
        signed.verify(self.wall(now), &self.config.verify, revocations)?;
        let inv = signed.invitation();
        if inv.issuer == self.me {
            return Err(Error::OwnInvitation);
        }
        if self.busy() || self.joins.len() >= self.config.max_joins {
            return Err(Error::Limit {
                what: "joins in progress",
                limit: self.config.max_joins,
            });
        }
        let relay = inv.flags.contains(Flags::RELAY_ALLOWED);
        if relay {
            let mut all = inv.candidates.clone();
            for e in &inv.entry_peers {
                all.extend_from_slice(&e.candidates);
            }
            self.permit(now, &all);
        }
        let primary = self.ice.join(now, inv)?;
        let join = JoinId(self.next_id());
        let mut sessions = vec![(primary, inv.issuer)];
        let mut remote_candidates = inv.candidates.len();
        for e in inv.entry_peers.iter().filter(|e| e.id != self.me) {
            let ufrag = Credentials::random(&mut self.rng).ufrag;
            let local = Credentials {
                password: inv.secret.invitee_password(&ufrag),
                ufrag,
            };
            let remote = Credentials {
                ufrag: inv.secret.inviter_ufrag(),
                password: inv.secret.inviter_password(),
            };
            match self
                .ice
                .add_session(now, Role::Controlling, local, remote, &e.candidates, relay)
            {
                Ok(s) => {
                    remote_candidates += e.candidates.len();
                    sessions.push((s, e.id));
                }
                Err(err) => {
                    tracing::debug!("no session towards entry peer {}: {err}", e.id.short())
                }
            }
        }
        for (s, peer) in &sessions {
            self.sessions.insert(
                *s,
                SessionCtx::new(Purpose::Joining { join, peer: *peer }, now),
            );
        }
        self.joins.insert(
            join,
            JoinCtx {
                invitation: signed.clone(),
                primary,
                sessions,
                failed: HashSet::new(),
                started: now,
                rsvp_sent: false,
                dtls: None,
                queued: VecDeque::new(),
            },
        );
        self.push_event(Event::Join {
            join,
            event: JoinProgress::Checking { remote_candidates },
        });
        self.flush(now, None);
        Ok(join)
    }

    /// ICE selected a path of a joining session: start DTLS on it, unless another
    /// attempt of the same join is in flight (then it waits its turn).
    pub(crate) fn join_path(
        &mut self,
        now: Instant,
        join: JoinId,
        session: SessionId,
        local: SocketAddr,
        remote: SocketAddr,
    ) {
        let Some(j) = self.joins.get_mut(&join) else {
            return;
        };
        if j.dtls.is_some() {
            if !j.queued.iter().any(|q| q.0 == session) {
                j.queued.push_back((session, local, remote));
            }
            return;
        }
        let peer = j
            .sessions
            .iter()
            .find(|(s, _)| *s == session)
            .map(|(_, p)| *p);
        let Some(peer) = peer else { return };
        let inv = j.invitation.invitation().clone();
        let expect = if peer == inv.issuer {
            PeerAuth::for_invitation(&inv)
        } else {
            PeerAuth::Identity(peer)
        };
        let relayed = self.relayed_addr() == Some(local);
        let link = self.new_link(now, session, local, remote);
        if let Some(j) = self.joins.get_mut(&join) {
            j.dtls = Some(link);
        }
        if let Some(ctx) = self.sessions.get_mut(&session) {
            ctx.attempts.insert(remote, link);
        }
        tracing::debug!(?join, peer = %peer.short(), %remote, "join: DTLS towards the inviter or an entry peer");
        self.push_event(Event::Join {
            join,
            event: JoinProgress::Connecting { remote },
        });
        self.push_action(Action::Connect {
            link,
            local,
            remote,
            relayed,
            mode: ClientMode::Join {
                invitation: Box::new(inv),
                expect,
            },
        });
    }

    /// The join's DTLS attempt ended: connected (final), refused (final), or failed (the
    /// next selected path, if any, gets its turn).
    pub(crate) fn join_attempt_done(
        &mut self,
        now: Instant,
        join: JoinId,
        link: LinkId,
        result: std::result::Result<super::LinkInfo, Error>,
    ) {
        let Some(j) = self.joins.get_mut(&join) else {
            return;
        };
        if j.dtls == Some(link) {
            j.dtls = None;
        }
        tracing::debug!(?join, ok = result.is_ok(), "join: DTLS attempt done");
        match result {
            Ok(info) => {
                let winner = self.links.get(&link).map(|l| l.session);
                let sessions: Vec<SessionId> = j.sessions.iter().map(|(s, _)| *s).collect();
                self.joins.remove(&join);
                for s in sessions.into_iter().filter(|s| Some(*s) != winner) {
                    self.ice.remove(s);
                    self.sessions.remove(&s);
                }
                if let Some(s) = winner {
                    self.birthday_connected(s);
                }
                self.push_event(Event::Join {
                    join,
                    event: JoinProgress::Connected {
                        link,
                        info: Box::new(info),
                    },
                });
            }
            Err(e) => {
                let refused = matches!(e, Error::JoinRefused(_));
                let next = if refused { None } else { j.queued.pop_front() };
                match next {
                    Some((session, local, remote)) => {
                        tracing::info!(%remote, "join attempt failed ({e}); trying the next path");
                        self.join_path(now, join, session, local, remote);
                    }
                    None => self.finish_join(join, JoinProgress::Failed(e)),
                }
            }
        }
    }

    /// Ends a join with its final event and drops every session it has.
    fn finish_join(&mut self, join: JoinId, last: JoinProgress) {
        if let Some(j) = self.joins.remove(&join) {
            for (s, _) in &j.sessions {
                self.ice.remove(*s);
                if let Some(ctx) = self.sessions.remove(s) {
                    for l in ctx.attempts.values() {
                        self.drop_link(*l, CloseCause::Abandoned);
                    }
                }
            }
        }
        self.push_event(Event::Join { join, event: last });
    }

    /// A joining session's checks failed. An entry peer's session is done; the issuer's
    /// turns into keep-open when the invitation allows an RSVP. Once every path failed,
    /// the RSVP is produced (or the join fails with the reason).
    pub(crate) fn join_session_failed(
        &mut self,
        now: Instant,
        join: JoinId,
        session: SessionId,
        reason: FailureReason,
    ) {
        let Some(j) = self.joins.get_mut(&join) else {
            return;
        };
        tracing::debug!(?join, ?session, %reason, "join: a path failed");
        j.failed.insert(session);
        let primary = j.primary;
        if session != primary {
            self.ice.remove(session);
            self.sessions.remove(&session);
        }
        let Some(j) = self.joins.get(&join) else {
            return;
        };
        let all_failed = j.sessions.iter().all(|(s, _)| j.failed.contains(s));
        if !all_failed || j.dtls.is_some() || j.rsvp_sent {
            return;
        }
        let inv = j.invitation.invitation().clone();
        if !inv.flags.contains(Flags::RSVP_ALLOWED) {
            self.finish_join(
                join,
                JoinProgress::Failed(Error::Unreachable {
                    reason: Unreachable::Ice(reason),
                }),
            );
            return;
        }
        if let Some(j) = self.joins.get_mut(&join) {
            j.rsvp_sent = true;
        }
        // Phase 2 begins for the invitee: both NAT classes are known now (ours, and the
        // inviter's from the invitation) — run the hard-NAT plan.
        let peer = super::birthday::Peer {
            nat: inv.nat.as_ref().map(super::class_of),
            candidates: &inv.candidates,
            credentials: Credentials {
                ufrag: inv.secret.inviter_ufrag(),
                password: inv.secret.inviter_password(),
            },
            relay_allowed: inv.flags.contains(Flags::RELAY_ALLOWED),
            one_burst: false,
        };
        if let Err(why) = self.start_birthday(now, primary, peer) {
            self.finish_join(
                join,
                JoinProgress::Failed(Error::Unreachable { reason: why }),
            );
            return;
        }
        match self.make_rsvp(now, primary, &inv) {
            Ok(rsvp) => self.push_event(Event::Join {
                join,
                event: JoinProgress::Phase1Failed {
                    reason,
                    rsvp: Box::new(rsvp),
                },
            }),
            Err(e) => self.finish_join(join, JoinProgress::Failed(e)),
        }
    }

    /// A joining session ended for good. The join fails when it was the issuer's session
    /// after phase 1 (the RSVP window, birthday probing) or its last path.
    pub(crate) fn join_unreachable(
        &mut self,
        _now: Instant,
        join: JoinId,
        session: SessionId,
        reason: Unreachable,
    ) {
        let Some(j) = self.joins.get_mut(&join) else {
            return;
        };
        j.failed.insert(session);
        j.sessions.retain(|(s, _)| *s != session);
        let over =
            j.dtls.is_none() && ((session == j.primary && j.rsvp_sent) || j.sessions.is_empty());
        if over {
            self.finish_join(join, JoinProgress::Failed(Error::Unreachable { reason }));
        }
    }

    fn make_rsvp(
        &mut self,
        now: Instant,
        session: SessionId,
        inv: &in8_artifact::Invitation,
    ) -> Result<SignedRsvp> {
        let ufrag = self
            .ice
            .session(session)
            .map(|a| a.local_credentials().ufrag.clone())
            .ok_or(Error::Closed)?;
        let keep = self.config.ice.keep_open.duration;
        let ttl = self.config.rsvp_ttl.min(keep);
        let expires = (self.wall(now) + ttl).min(inv.expires + self.config.rsvp_ttl);
        let rsvp = Rsvp {
            invite_id: inv.invite_id(),
            responder: self.me,
            ufrag,
            candidates: self
                .candidates()
                .into_iter()
                .filter(|c| {
                    c.kind != CandidateKind::Relay || inv.flags.contains(Flags::RELAY_ALLOWED)
                })
                .collect(),
            expires,
            cert_fingerprint: None,
            nat: self.nat.as_ref().and_then(super::behaviour),
            extensions: Vec::new(),
        };
        Ok(rsvp.sign(&self.identity, &inv.secret)?)
    }
}
