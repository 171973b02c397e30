//! Sessions between members (docs/network.md "Member sessions"): dialled directly from a
//! peer's signed record, or punched at once by both sides after an introduction. No
//! invitation is involved; the ICE credentials of an attempt derive from the pair's
//! X25519 secret and the attempt's token (`in8_artifact::member_ice`), DTLS authenticates
//! both identity-bound certificates, and the membership credentials are checked on the
//! network channel (HELLO) before the link joins the overlay.
//!
//! A callee learns of a direct dial from its first check: the caller's ufrag carries the
//! caller's node id and the token, so the callee derives the same passwords and verifies
//! MESSAGE-INTEGRITY before it keeps any state ([`in8_ice::Endpoint::accept_request`]).
//! Tokens carry the caller's clock; one far from the callee's is refused, so a captured
//! check cannot open a session later.

use std::net::SocketAddr;
use std::time::Instant;

use in8_artifact::{Candidate, CandidateKind, MemberIce, NodeId, PairSecret};
use in8_gossip::SignedPeerRecord;
use in8_ice::nat::NatClass;
use in8_ice::{Credentials, Role, SessionId};

use super::ice_events::{Purpose, SessionCtx};
use super::{Action, ClientMode, Core, Unreachable};

/// A member session's context.
#[derive(Clone, Debug)]
pub(crate) struct MemberSession {
    /// The other member.
    pub(crate) peer: NodeId,
    /// The ICE controlling side and DTLS client.
    pub(crate) caller: NodeId,
    /// The attempt's token.
    pub(crate) token: u64,
    /// Who introduced the two sides (an introduction's simultaneous open).
    pub(crate) introducer: Option<NodeId>,
    /// When the attempt gives up if no link is up.
    pub(crate) deadline: Instant,
    /// The peer's candidates (from its record).
    pub(crate) candidates: Vec<Candidate>,
    /// The peer's NAT class (from its record).
    pub(crate) peer_nat: Option<NatClass>,
}

/// Most member-session resolutions (first checks of unknown callers, one X25519 each)
/// per second; more are dropped before any work.
const RESOLVE_PER_SECOND: u32 = 256;

impl Core {
    /// The pair secret with `peer`, cached (bounded by twice `max_members`).
    fn pair_secret(&mut self, peer: &NodeId) -> Option<PairSecret> {
        if let Some(s) = self.net.pairs.get(peer) {
            return Some(s.clone());
        }
        let s = self.identity.pair_secret(peer).ok()?;
        if self.net.pairs.len() >= 2 * self.config.network.max_members {
            self.net.pairs.clear();
        }
        self.net.pairs.insert(*peer, s.clone());
        Some(s)
    }

    fn member_ice(&mut self, peer: NodeId, caller: NodeId, token: u64) -> Option<MemberIce> {
        let callee = if caller == self.me { peer } else { self.me };
        let network = self.net.network();
        Some(
            self.pair_secret(&peer)?
                .member_ice(&network, &caller, &callee, token),
        )
    }

    /// Dials the node of `record` directly, trusting the record as given (a test hook of
    /// the harness: what a node outside the network could attempt).
    #[cfg(feature = "harness")]
    pub fn dial_record(&mut self, now: Instant, record: &SignedPeerRecord) -> bool {
        self.tick(now);
        let r = self.dial_member(now, record, None);
        self.flush(now, None);
        r
    }

    /// Member sessions in progress (not yet carrying a link).
    pub(crate) fn member_attempts(&self) -> usize {
        self.sessions
            .values()
            .filter(|c| matches!(c.purpose, Purpose::Member(_)) && c.established.is_none())
            .count()
    }

    /// Starts a member session towards `record`'s node: a direct dial (`intro` `None`:
    /// this node calls, with a fresh token), or an introduction's simultaneous open
    /// (`intro` = introducer and token: the smaller node id calls). Returns whether an
    /// attempt runs.
    pub(crate) fn dial_member(
        &mut self,
        now: Instant,
        record: &SignedPeerRecord,
        intro: Option<(NodeId, u64)>,
    ) -> bool {
        let peer = record.node();
        if peer == self.me
            || self.busy()
            || self.member_attempts() >= self.config.network.max_dials
            || self.link_with(&peer).is_some()
        {
            return false;
        }
        let (caller, token, introducer) = match intro {
            Some((introducer, token)) => (self.me.min(peer), token, Some(introducer)),
            None => {
                let wall = self.wall(now).as_unix();
                let token = in8_artifact::make_token(wall, rand::Rng::random(&mut self.rng));
                (self.me, token, None)
            }
        };
        let already = self.sessions.values().any(
            |c| matches!(&c.purpose, Purpose::Member(m) if m.peer == peer && m.token == token),
        );
        if already {
            return true;
        }
        let Some(creds) = self.member_ice(peer, caller, token) else {
            return false;
        };
        let relay = self.config.network.allow_relay;
        let r = record.record();
        let candidates: Vec<Candidate> = r
            .candidates
            .iter()
            .filter(|c| relay || c.kind != CandidateKind::Relay)
            .copied()
            .collect();
        let (role, local, remote) = if caller == self.me {
            (
                Role::Controlling,
                Credentials {
                    ufrag: creds.caller_ufrag,
                    password: creds.caller_pwd,
                },
                Credentials {
                    ufrag: creds.callee_ufrag,
                    password: creds.callee_pwd,
                },
            )
        } else {
            (
                Role::Controlled,
                Credentials {
                    ufrag: creds.callee_ufrag,
                    password: creds.callee_pwd,
                },
                Credentials {
                    ufrag: creds.caller_ufrag,
                    password: creds.caller_pwd,
                },
            )
        };
        let remote_creds = remote.clone();
        let session = match self
            .ice
            .add_session(now, role, local, remote, &candidates, relay)
        {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(peer = %peer.short(), "no member session: {e}");
                return false;
            }
        };
        let peer_nat = super::classify::class_of_record(r.nat);
        let m = MemberSession {
            peer,
            caller,
            token,
            introducer,
            deadline: now + self.config.network.dial_timeout,
            candidates: candidates.clone(),
            peer_nat,
        };
        self.sessions
            .insert(session, SessionCtx::new(Purpose::Member(m), now));
        if introducer.is_some() {
            // Both sides start together; where the two NAT classes call for it, birthday
            // probing runs as in phase 2.
            let p = super::birthday::Peer {
                nat: peer_nat,
                candidates: &candidates,
                credentials: remote_creds,
                relay_allowed: relay,
                one_burst: true,
            };
            if let Err(why) = self.start_birthday(now, session, p) {
                tracing::info!(peer = %peer.short(), "introduction unlikely to connect: {why}");
            }
            if self.birthday.contains_key(&session) {
                // Probing packs its burst into the ICE connect timeout: the attempt lives
                // as long as that, not just the dial timeout.
                let until = now
                    + self
                        .config
                        .network
                        .dial_timeout
                        .max(self.config.ice.agent.connect_timeout);
                if let Some(ctx) = self.sessions.get_mut(&session)
                    && let Purpose::Member(m) = &mut ctx.purpose
                {
                    m.deadline = until;
                }
            }
        }
        tracing::debug!(peer = %peer.short(), ?introducer, "member session started");
        true
    }

    /// The first check of a member session this node did not start (a direct dial): if it
    /// names a caller and token this node accepts and verifies under the derived
    /// password, a session is created for it. Anything else is dropped without state.
    pub(crate) fn resolve_member_check(
        &mut self,
        now: Instant,
        local: SocketAddr,
        from: SocketAddr,
        data: &[u8],
    ) {
        let Some(username) = self.ice.unclaimed_username(data) else {
            return;
        };
        let Some(colon) = username.iter().position(|&b| b == b':') else {
            return;
        };
        let (ours, theirs) = (&username[..colon], &username[colon + 1..]);
        let Some((caller, token)) = in8_artifact::parse_caller_ufrag(theirs) else {
            return;
        };
        let wall = self.wall(now).as_unix();
        let skew = self.config.network.token_skew.as_secs();
        let fresh = in8_artifact::token_time(token).abs_diff(wall & 0xffff_ffff) <= skew;
        if caller == self.me
            || !fresh
            || self.net.is_banned(&caller, now)
            || self.net.revoked(&caller)
            || !self.net.resolve_budget(now, RESOLVE_PER_SECOND)
            || self.member_attempts() >= self.config.network.max_dials
        {
            return;
        }
        let Some(creds) = self.member_ice(caller, caller, token) else {
            return;
        };
        if ours != creds.callee_ufrag.as_bytes() {
            return;
        }
        let record = self.record_of(&caller).cloned();
        let candidates: Vec<Candidate> = record
            .as_ref()
            .map(|r| {
                r.record()
                    .candidates
                    .iter()
                    .filter(|c| c.kind != CandidateKind::Relay)
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        let local_creds = Credentials {
            ufrag: creds.callee_ufrag,
            password: creds.callee_pwd,
        };
        let remote_creds = Credentials {
            ufrag: creds.caller_ufrag,
            password: creds.caller_pwd,
        };
        match self.ice.accept_request(
            now,
            from,
            local,
            data,
            local_creds,
            remote_creds,
            &candidates,
            false,
        ) {
            Ok(session) => {
                let m = MemberSession {
                    peer: caller,
                    caller,
                    token,
                    introducer: None,
                    deadline: now + self.config.network.dial_timeout,
                    candidates,
                    peer_nat: record
                        .as_ref()
                        .and_then(|r| super::classify::class_of_record(r.record().nat)),
                };
                self.sessions
                    .entry(session)
                    .or_insert_with(|| SessionCtx::new(Purpose::Member(m), now));
            }
            Err(e) => tracing::trace!(%from, "member check refused: {e}"),
        }
    }

    /// The caller's path is selected: start the DTLS client.
    pub(crate) fn member_connect(
        &mut self,
        now: Instant,
        session: SessionId,
        local: SocketAddr,
        remote: SocketAddr,
    ) {
        let Some(ctx) = self.sessions.get(&session) else {
            return;
        };
        let Purpose::Member(m) = &ctx.purpose else {
            return;
        };
        if ctx.established.is_some() || !ctx.attempts.is_empty() {
            return;
        }
        let peer = m.peer;
        let relayed = self.relayed_addr() == Some(local);
        let link = self.new_link(now, session, local, remote);
        if let Some(ctx) = self.sessions.get_mut(&session) {
            ctx.attempts.insert(remote, link);
        }
        self.push_action(Action::Connect {
            link,
            local,
            remote,
            relayed,
            mode: ClientMode::Member { peer },
        });
    }

    /// ICE failed for a member session.
    pub(crate) fn member_session_failed(
        &mut self,
        now: Instant,
        session: SessionId,
        reason: in8_ice::FailureReason,
    ) {
        tracing::debug!(?session, %reason, "member session failed");
        self.end_session(now, session, Unreachable::NoPath);
    }

    /// DTLS failed on a member session's path.
    pub(crate) fn member_link_failed(&mut self, now: Instant, session: SessionId) {
        if self
            .sessions
            .get(&session)
            .is_some_and(|c| c.attempts.is_empty() && c.established.is_none())
        {
            self.end_session(now, session, Unreachable::NoPath);
        }
    }

    /// A member attempt ended without a link: the network decides what next.
    pub(crate) fn member_attempt_over(&mut self, now: Instant, m: &MemberSession, up: bool) {
        if !up {
            if m.introducer.is_some() {
                let i = super::network::api::class_index(self.nat_of_member(&m.peer));
                self.net.stats.punches[i].failed += 1;
            }
            self.net_dial_failed(now, m.peer, m.introducer.is_some());
        }
    }

    /// Member sessions past their deadline without a link give up; one whose DTLS attempt
    /// is still in flight gets the handshake timeout to finish.
    pub(crate) fn members_timeout(&mut self, now: Instant) {
        let limit = self.config.transport.handshake_timeout;
        let mut due = Vec::new();
        for (id, c) in &mut self.sessions {
            if c.established.is_some() {
                continue;
            }
            let Purpose::Member(m) = &mut c.purpose else {
                continue;
            };
            if m.deadline > now {
                continue;
            }
            if c.attempts.is_empty() {
                due.push(*id);
            } else {
                m.deadline = now + limit;
            }
        }
        for id in due {
            self.end_session(now, id, Unreachable::NoPath);
        }
    }

    /// The next member deadline.
    pub(crate) fn members_deadline(&self) -> Option<Instant> {
        self.sessions
            .values()
            .filter(|c| c.established.is_none())
            .filter_map(|c| match &c.purpose {
                Purpose::Member(m) => Some(m.deadline),
                _ => None,
            })
            .min()
    }
}
