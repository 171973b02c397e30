//! Turning ICE events into progress events, RSVPs and DTLS sessions.

use std::net::SocketAddr;
use std::time::Instant;

use in8_artifact::{Flags, Rsvp};
use in8_ice::{Credentials, EndpointEvent, Event, FailureReason, SessionId};
use in8_transport::{CloseReason, PeerAuth};

use super::birthday::Peer;
use super::{Driver, Hosting, SessionCtx, now_unix, send_final};
use crate::error::Error;
use crate::events::{InviteEvent, JoinEvent, Phase};

/// DTLS attempts one inviter-side ICE session may run towards distinct remote addresses.
const MAX_DTLS_PER_SESSION: usize = 4;

impl Driver {
    pub(crate) fn handle_ice_event(&mut self, ev: EndpointEvent, current: Option<SocketAddr>) {
        match ev {
            EndpointEvent::Accepted {
                session, invite, ..
            } => {
                if let Some(o) = self.invites.get(&invite) {
                    let _ = o.events.try_send(InviteEvent::CheckReceived);
                    self.sessions.entry(session).or_insert_with(|| {
                        SessionCtx::Hosting(Hosting {
                            invite,
                            expect: PeerAuth::AnyCertificate,
                            phase: Phase::One,
                            rsvp_candidates: Vec::new(),
                            peer_nat: None,
                            started: Instant::now(),
                            dtls: Default::default(),
                            awaiting: Default::default(),
                            established: None,
                        })
                    });
                }
            }
            EndpointEvent::Session { session, event } => {
                self.session_event(session, event, current)
            }
            // A session ICE gave up on. Established DTLS sessions were told by the failure
            // event before; a join that never connected already got its final event. A
            // session whose hard side of birthday probing still runs (or won) lives on with
            // the birthday agent.
            EndpointEvent::Closed { session } if !self.birthday_holds(session) => {
                self.sessions.remove(&session);
            }
            _ => {}
        }
    }

    fn session_event(&mut self, session: SessionId, event: Event, current: Option<SocketAddr>) {
        match event {
            // The inviter learns the invitee's address from its first authenticated check:
            // start the DTLS server for it at once, so the invitee's ClientHello (sent as
            // soon as its check is answered) finds a route.
            Event::PeerReflexive { addr } => {
                if let Some(base) = current {
                    self.maybe_accept(session, base, addr, false);
                }
            }
            Event::Selected { local, remote, .. } => {
                self.birthday_selected(session, remote);
                match self.sessions.get(&session) {
                    Some(SessionCtx::Joining(_)) => self.start_join(session, local, remote),
                    Some(SessionCtx::Hosting(_)) => self.maybe_accept(session, local, remote, true),
                    None => {}
                }
            }
            Event::Failed { reason } => self.session_failed(session, reason),
            Event::KeepOpenEnded => {
                if self.birthday_won(session) {
                    self.ice.remove(session);
                    return;
                }
                if let Some(SessionCtx::Joining(j)) = self.sessions.remove(&session) {
                    send_final(
                        &j.events,
                        JoinEvent::Failed(Error::Unreachable {
                            reason: "the RSVP window ended without the inviter answering".into(),
                        }),
                    );
                }
                self.ice.remove(session);
            }
            _ => {}
        }
    }

    /// Starts the inviter's DTLS server for `remote` on socket `base`, once per address.
    /// `validated`: ICE has validated the address (a check of ours was answered from it).
    /// When not yet (an authenticated check merely arrived from it, which a spoofed source
    /// address can fake), the route is reserved now, so the ClientHello is queued, but the
    /// handshake waits for the validation: the DTLS server skips the cookie exchange
    /// (`in8_transport::Config::skip_hello_verify`) and must not answer an address that
    /// has not shown it receives, or it would amplify traffic towards a victim.
    pub(crate) fn maybe_accept(
        &mut self,
        session: SessionId,
        base: SocketAddr,
        remote: SocketAddr,
        validated: bool,
    ) {
        let Some(SessionCtx::Hosting(h)) = self.sessions.get_mut(&session) else {
            return;
        };
        if validated && let Some(go) = h.awaiting.remove(&remote) {
            let _ = go.send(());
        }
        if h.established.is_some()
            || h.dtls.contains(&remote)
            || h.dtls.len() >= MAX_DTLS_PER_SESSION
        {
            return;
        }
        let Some(o) = self.invites.get(&h.invite) else {
            return;
        };
        h.dtls.insert(remote);
        let ready = if validated {
            None
        } else {
            let (go, ready) = tokio::sync::oneshot::channel();
            h.awaiting.insert(remote, go);
            Some(ready)
        };
        let _ = o.events.try_send(InviteEvent::Connecting { remote });
        let invitation = o.signed.invitation().clone();
        let expect = h.expect.clone();
        self.spawn_accept(session, base, remote, invitation, expect, ready);
    }

    pub(crate) fn start_join(&mut self, session: SessionId, local: SocketAddr, remote: SocketAddr) {
        let Some(SessionCtx::Joining(j)) = self.sessions.get_mut(&session) else {
            return;
        };
        if j.dtls_started {
            return;
        }
        j.dtls_started = true;
        let _ = j.events.try_send(JoinEvent::Connecting { remote });
        let invitation = j.invitation.invitation().clone();
        self.spawn_join(session, local, remote, invitation);
    }

    fn session_failed(&mut self, session: SessionId, reason: FailureReason) {
        let established = match self.sessions.get(&session) {
            Some(SessionCtx::Joining(j)) => j.established.clone(),
            Some(SessionCtx::Hosting(h)) => h.established.clone(),
            None => None,
        };
        if let Some(s) = established {
            // RFC 7675 §5.1: "If no packets have been received ... the ICE agent MUST
            // cease transmission on that 5-tuple": the session ends with a named reason.
            s.abort(CloseReason::ConsentLost);
            return;
        }
        let rsvp = match self.sessions.get_mut(&session) {
            Some(SessionCtx::Joining(j)) => {
                let inv = j.invitation.invitation();
                if inv.flags.contains(Flags::RSVP_ALLOWED) && !j.rsvp_sent {
                    j.rsvp_sent = true;
                    Some((inv.clone(), j.events.clone()))
                } else {
                    let events = j.events.clone();
                    self.sessions.remove(&session);
                    self.ice.remove(session);
                    send_final(
                        &events,
                        JoinEvent::Failed(Error::Unreachable {
                            reason: reason.to_string(),
                        }),
                    );
                    None
                }
            }
            // The inviter's side of a phase-1 attempt that did not work out: it keeps
            // listening; the invitee will send an RSVP.
            Some(SessionCtx::Hosting(_)) | None => None,
        };
        if let Some((inv, events)) = rsvp {
            // Phase 2 begins for the invitee: both NAT classes are known now (ours, and the
            // inviter's from the invitation) — run the hard-NAT plan.
            let peer = Peer {
                nat: inv.nat,
                candidates: &inv.candidates,
                credentials: Credentials {
                    ufrag: inv.secret.inviter_ufrag(),
                    password: inv.secret.inviter_password(),
                },
                relay_allowed: inv.flags.contains(Flags::RELAY_ALLOWED),
                inviter: false,
            };
            if let Err(why) = self.start_birthday(session, peer) {
                self.end_session(session, &format!("{reason}; {why}"));
                return;
            }
            match self.make_rsvp(session, &inv) {
                Ok(rsvp) => {
                    let _ = events.try_send(JoinEvent::Phase1Failed {
                        reason: reason.to_string(),
                        rsvp,
                    });
                }
                Err(e) => send_final(&events, JoinEvent::Failed(e)),
            }
        }
    }

    fn make_rsvp(
        &self,
        session: SessionId,
        inv: &in8_artifact::Invitation,
    ) -> crate::error::Result<in8_artifact::SignedRsvp> {
        let ufrag = self
            .ice
            .session(session)
            .map(|a| a.local_credentials().ufrag.clone())
            .ok_or(Error::Closed)?;
        let keep = self.config.ice.keep_open.duration;
        let ttl = self.config.rsvp_ttl.min(keep);
        let expires = (now_unix() + ttl).min(inv.expires + self.config.rsvp_ttl);
        let rsvp = Rsvp {
            invite_id: inv.invite_id(),
            responder: self.identity.node_id(),
            ufrag,
            candidates: self
                .advertised()
                .into_iter()
                .filter(|c| {
                    c.kind != in8_artifact::CandidateKind::Relay
                        || inv.flags.contains(Flags::RELAY_ALLOWED)
                })
                .collect(),
            expires,
            cert_fingerprint: None,
            nat: self.nat.as_ref().and_then(crate::gather::behaviour),
            extensions: Vec::new(),
        };
        Ok(rsvp.sign(&self.identity, &inv.secret)?)
    }
}
