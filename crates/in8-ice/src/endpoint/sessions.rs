//! Creating sessions: phase 1 as invitee, phase 2 after an RSVP, explicit sessions and
//! ICE restarts.

use std::net::SocketAddr;
use std::time::Instant;

use in8_artifact::{Flags, Invitation, Rsvp};
use rand_core::RngCore;

use super::{Endpoint, SessionId, relay_ok};
use crate::agent::{Agent, Credentials, Role};
use crate::error::Error;
use crate::stun::{Class, IntegrityKey, Message};

impl Endpoint {
    /// A session with explicit credentials and candidates (introductions, interop with
    /// other ICE stacks). Checks start at once.
    pub fn add_session(
        &mut self,
        now: Instant,
        role: Role,
        local: Credentials,
        remote: Credentials,
        remote_candidates: &[in8_artifact::Candidate],
        relay_allowed: bool,
    ) -> Result<SessionId, Error> {
        let seed = self.rng.next_u64();
        let mut a = Agent::new(self.config.agent.clone(), role, local, seed);
        a.set_remote_credentials(remote);
        for c in remote_candidates
            .iter()
            .filter(|c| relay_ok(c, relay_allowed))
        {
            let _ = a.add_remote_candidate(*c);
        }
        self.insert(now, a, None, relay_allowed)
    }

    /// Phase 1, invitee side: check the inviter's candidates with credentials derived from
    /// the invitation (RFC 8445 roles: the invitee is controlling). If the invitation
    /// allows an RSVP, a failed phase 1 turns into keep-open.
    pub fn join(&mut self, now: Instant, invitation: &Invitation) -> Result<SessionId, Error> {
        let ufrag = Credentials::random(&mut self.rng).ufrag;
        let local = Credentials {
            password: invitation.secret.invitee_password(&ufrag),
            ufrag,
        };
        let remote = Credentials {
            ufrag: invitation.secret.inviter_ufrag(),
            password: invitation.secret.inviter_password(),
        };
        let seed = self.rng.next_u64();
        let mut a = Agent::new(self.config.agent.clone(), Role::Controlling, local, seed);
        a.set_remote_credentials(remote);
        let relay = invitation.flags.contains(Flags::RELAY_ALLOWED);
        for c in invitation.candidates.iter().filter(|c| relay_ok(c, relay)) {
            let _ = a.add_remote_candidate(*c);
        }
        if invitation.flags.contains(Flags::RSVP_ALLOWED) {
            a.set_keep_open(Some(self.config.keep_open));
        }
        self.insert(now, a, Some(invitation.invite_id()), relay)
    }

    /// Phase 2, inviter side: the RSVP arrived (already verified by the caller with
    /// `SignedRsvp::verify`). Both sides now check all pairs at once; an existing phase-1
    /// session with this invitee is reused.
    pub fn accept_rsvp(
        &mut self,
        now: Instant,
        invitation: &Invitation,
        rsvp: &Rsvp,
    ) -> Result<SessionId, Error> {
        if rsvp.invite_id != invitation.invite_id() {
            return Err(Error::Invalid {
                what: "RSVP",
                reason: "it answers another invitation",
            });
        }
        let local = Credentials {
            ufrag: invitation.secret.inviter_ufrag(),
            password: invitation.secret.inviter_password(),
        };
        let mut username = local.ufrag.as_bytes().to_vec();
        username.push(b':');
        username.extend_from_slice(rsvp.ufrag.as_bytes());
        if let Some(id) = self.by_username.get(&username).copied()
            && let Some(e) = self.sessions.get_mut(&id)
        {
            for c in rsvp
                .candidates
                .iter()
                .filter(|c| relay_ok(c, e.relay_allowed))
            {
                let _ = e.agent.add_remote_candidate(*c);
            }
            e.agent.handle_timeout(now);
            self.drain(id);
            return Ok(id);
        }
        let remote = Credentials {
            password: invitation.secret.invitee_password(&rsvp.ufrag),
            ufrag: rsvp.ufrag.clone(),
        };
        let seed = self.rng.next_u64();
        let mut a = Agent::new(self.config.agent.clone(), Role::Controlled, local, seed);
        a.set_remote_credentials(remote);
        let relay = invitation.flags.contains(Flags::RELAY_ALLOWED);
        for c in rsvp.candidates.iter().filter(|c| relay_ok(c, relay)) {
            let _ = a.add_remote_candidate(*c);
        }
        self.insert(now, a, Some(invitation.invite_id()), relay)
    }

    /// ICE restart of a session (RFC 8445 §9: new ufrag and password on both sides, roles
    /// kept, data may continue on the previous pair until a new one is selected). The
    /// session is re-keyed under its new USERNAME; checks start at once.
    pub fn restart_session(
        &mut self,
        now: Instant,
        id: SessionId,
        local: Credentials,
        remote: Credentials,
        remote_candidates: &[in8_artifact::Candidate],
    ) -> Result<(), Error> {
        let Some(e) = self.sessions.get_mut(&id) else {
            return Err(Error::Unknown("session"));
        };
        if local.ufrag == e.agent.local_credentials().ufrag || remote.ufrag.is_empty() {
            return Err(Error::Invalid {
                what: "ICE restart",
                reason: "the local ufrag must change",
            });
        }
        e.agent.restart(now, local);
        e.agent.set_remote_credentials(remote);
        let usable: Vec<_> = self.locals.iter().filter(|c| e.uses(c)).copied().collect();
        for c in usable {
            let _ = e.agent.add_local_candidate(c);
        }
        for c in remote_candidates
            .iter()
            .filter(|c| relay_ok(c, e.relay_allowed))
        {
            let _ = e.agent.add_remote_candidate(*c);
        }
        let mut username_in = e.agent.local_credentials().ufrag.as_bytes().to_vec();
        username_in.push(b':');
        username_in.extend_from_slice(e.agent.remote_ufrag().unwrap_or_default().as_bytes());
        let old = core::mem::replace(&mut e.username_in, username_in.clone());
        e.agent.handle_timeout(now);
        self.by_username.remove(&old);
        self.by_username.insert(username_in, id);
        self.drain(id);
        Ok(())
    }
}

impl Endpoint {
    /// The USERNAME of a Binding request that no session and no listened invitation
    /// claims, for a caller that creates sessions for other username schemes (in8's member
    /// sessions, docs/core.md). `None` for responses, requests without USERNAME, and
    /// requests this endpoint routes itself. Creates no state.
    pub fn unclaimed_username<'a>(&self, bytes: &'a [u8]) -> Option<&'a [u8]> {
        let msg = Message::parse(bytes).ok()?;
        if msg.class() != Class::Request {
            return None;
        }
        let username = msg.username()?;
        if self.by_username.contains_key(username) {
            return None;
        }
        let colon = username.iter().position(|&b| b == b':')?;
        let local = core::str::from_utf8(&username[..colon]).ok()?;
        if self.listening.contains_key(local) {
            return None;
        }
        Some(username)
    }

    /// Creates a controlled session for an unclaimed request (see
    /// [`Endpoint::unclaimed_username`]) and hands the request to it. The request's
    /// MESSAGE-INTEGRITY must verify under `local.password` and its USERNAME must be
    /// `local.ufrag:remote.ufrag`, or nothing is created (RFC 8445 §7.3: the agent "MUST
    /// ... verify the MESSAGE-INTEGRITY"; in8 creates no state for an unauthenticated
    /// sender). `remote_candidates` are checked too, as a triggered check goes back to the
    /// request's source in any case.
    #[allow(clippy::too_many_arguments)]
    pub fn accept_request(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        bytes: &[u8],
        local: Credentials,
        remote: Credentials,
        remote_candidates: &[in8_artifact::Candidate],
        relay_allowed: bool,
    ) -> Result<SessionId, Error> {
        let msg = Message::parse(bytes)?;
        let mut expected = local.ufrag.as_bytes().to_vec();
        expected.push(b':');
        expected.extend_from_slice(remote.ufrag.as_bytes());
        if msg.class() != Class::Request
            || msg.username() != Some(expected.as_slice())
            || !msg.verify_integrity(&IntegrityKey::short_term(&local.password))
        {
            self.stats.unauthenticated += 1;
            return Err(Error::Unauthenticated);
        }
        if let Some(&id) = self.by_username.get(&expected) {
            // A retransmission raced the caller: the session exists already.
            let r = match self.sessions.get_mut(&id) {
                Some(e) => e.agent.handle_message(now, from, to, &msg),
                None => Err(Error::Closed),
            };
            self.drain(id);
            return r.map(|()| id);
        }
        let seed = self.rng.next_u64();
        let mut a = Agent::new(self.config.agent.clone(), Role::Controlled, local, seed);
        a.set_remote_credentials(remote);
        for c in remote_candidates
            .iter()
            .filter(|c| relay_ok(c, relay_allowed))
        {
            let _ = a.add_remote_candidate(*c);
        }
        let id = self.insert(now, a, None, relay_allowed)?;
        let r = match self.sessions.get_mut(&id) {
            Some(e) => e.agent.handle_message(now, from, to, &msg),
            None => Err(Error::Closed),
        };
        self.drain(id);
        r.map(|()| id)
    }
}
