//! Routing incoming STUN: sessions by USERNAME, the phase-1 listener (MESSAGE-INTEGRITY
//! under the derived password before any state), the Binding responder, responses by
//! transaction id.

use std::net::SocketAddr;
use std::time::Instant;

use in8_artifact::Flags;
use rand_core::RngCore;

use super::{Endpoint, EndpointEvent};
use crate::agent::{Agent, Credentials, Role};
use crate::error::Error;
use crate::responder;
use crate::stun::{Class, Message};
use crate::transmit::Transmit;

impl Endpoint {
    /// Handles one datagram received on the local socket `to` from `from`.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), Error> {
        let msg = Message::parse(bytes)?;
        match msg.class() {
            Class::Request => self.handle_request(now, from, to, &msg),
            Class::Success | Class::Error => {
                let tid = msg.transaction_id();
                let Some(id) = self
                    .sessions
                    .iter()
                    .find(|(_, e)| e.agent.owns_transaction(&tid))
                    .map(|(id, _)| *id)
                else {
                    return Err(Error::UnknownTransaction);
                };
                let r = self
                    .sessions
                    .get_mut(&id)
                    .map(|e| e.agent.handle_message(now, from, to, &msg));
                self.drain(id);
                r.unwrap_or(Err(Error::UnknownTransaction))
            }
            Class::Indication => Ok(()),
        }
    }

    fn handle_request(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        msg: &Message<'_>,
    ) -> Result<(), Error> {
        let Some(username) = msg.username() else {
            let Some(cfg) = self.config.responder else {
                return Err(Error::Unauthenticated);
            };
            let mut out = core::mem::take(&mut self.scratch);
            if responder::respond(&cfg, from, to, msg, &mut out) {
                self.stats.reflected += 1;
                self.push_transmit(Transmit {
                    from: to,
                    to: from,
                    contents: out.clone(),
                });
            }
            self.scratch = out;
            return Ok(());
        };
        if let Some(&id) = self.by_username.get(username) {
            let r = match self.sessions.get_mut(&id) {
                Some(e) => e.agent.handle_message(now, from, to, msg),
                None => Err(Error::Closed),
            };
            if r == Err(Error::Unauthenticated) {
                self.stats.unauthenticated += 1;
            }
            self.drain(id);
            return r;
        }
        // Phase 1 listener: "inviterUfrag:inviteeUfrag".
        let colon = username.iter().position(|&b| b == b':');
        let listening = colon
            .and_then(|c| core::str::from_utf8(&username[..c]).ok())
            .and_then(|u| self.listening.get_mut(u));
        let Some(l) = listening else {
            return self.reject(from, to, msg);
        };
        // MESSAGE-INTEGRITY with the derived inviter password before any state exists.
        if !msg.verify_integrity(&l.key) {
            return self.reject(from, to, msg);
        }
        let Some(remote_ufrag) = colon
            .and_then(|c| core::str::from_utf8(&username[c + 1..]).ok())
            .filter(|u| in8_artifact::check_ufrag(u).is_ok())
        else {
            return self.reject(from, to, msg);
        };
        if l.sessions >= self.config.max_sessions_per_invitation {
            self.stats.refused += 1;
            return Err(Error::Limit {
                what: "sessions per invitation",
                max: self.config.max_sessions_per_invitation as usize,
            });
        }
        l.sessions += 1;
        let invite = l.invitation.invite_id();
        let relay = l.invitation.flags.contains(Flags::RELAY_ALLOWED);
        let remote = Credentials {
            password: l.invitation.secret.invitee_password(remote_ufrag),
            ufrag: remote_ufrag.to_owned(),
        };
        let local = Credentials {
            ufrag: l.ufrag.clone(),
            password: l.invitation.secret.inviter_password(),
        };
        let seed = self.rng.next_u64();
        let mut a = Agent::new(self.config.agent.clone(), Role::Controlled, local, seed);
        a.set_remote_credentials(remote);
        let remote_ufrag = remote_ufrag.to_owned();
        let id = match self.insert(now, a, Some(invite), relay) {
            Ok(id) => id,
            Err(e) => {
                if let Some(l) = self
                    .listening
                    .values_mut()
                    .find(|l| l.invitation.invite_id() == invite)
                {
                    l.sessions = l.sessions.saturating_sub(1);
                }
                return Err(e);
            }
        };
        self.push_event(EndpointEvent::Accepted {
            session: id,
            invite,
            remote_ufrag,
        });
        let r = match self.sessions.get_mut(&id) {
            Some(e) => e.agent.handle_message(now, from, to, msg),
            None => Err(Error::Closed),
        };
        self.drain(id);
        r
    }

    fn reject(&mut self, from: SocketAddr, to: SocketAddr, msg: &Message<'_>) -> Result<(), Error> {
        self.stats.unauthenticated += 1;
        // RFC 8489 §9.1.3: 401 for a USERNAME or MESSAGE-INTEGRITY that does not check out,
        // only when the reply is no larger than the request.
        if let Some(t) = crate::agent::unauthenticated_error(from, to, msg, 401, "Unauthorized") {
            self.push_transmit(t);
        }
        Err(Error::Unauthenticated)
    }
}
