//! The driver's handling of [`Command`]s from the [`crate::Node`] handle: listening for an
//! invitation, joining one, accepting an RSVP (phase 2), revoking.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use in8_artifact::{InviteId, NodeId, SignedInvitation, SignedRsvp};
use in8_transport::PeerAuth;
use tokio::sync::mpsc;

use super::{
    Command, Driver, Hosting, Joining, Outstanding, SessionCtx, birthday, now_unix, send_final,
};
use crate::error::{Error, Result};
use crate::events::{InviteEvent, JoinEvent, Phase};

impl Driver {
    pub(super) fn handle_command(&mut self, cmd: Command) {
        match cmd {
            Command::Listen {
                invitation,
                events,
                reply,
            } => {
                let _ = reply.send(self.listen(invitation, events));
            }
            Command::Join {
                invitation,
                events,
                reply,
            } => {
                let _ = reply.send(self.join(invitation, events));
            }
            Command::AcceptRsvp { rsvp, reply } => {
                let _ = reply.send(self.accept_rsvp(&rsvp));
            }
            Command::Revoke { invite, reply } => {
                let _ = reply.send(self.revoke(invite));
            }
            Command::DtlsDone {
                session,
                remote,
                result,
            } => self.dtls_done(session, remote, result),
            Command::SessionClosed { session } => {
                self.sessions.remove(&session);
                self.ice.remove(session);
            }
            Command::Candidates { reply } => {
                let _ = reply.send(Ok(self.advertised()));
            }
            Command::Stats { reply } => {
                let sum = self
                    .sockets
                    .iter()
                    .fold(in8_transport::EndpointStats::default(), |acc, s| {
                        acc + s.transport.stats()
                    });
                let _ = reply.send(sum);
            }
            Command::Shutdown => {}
        }
    }

    fn listen(
        &mut self,
        signed: SignedInvitation,
        events: mpsc::Sender<InviteEvent>,
    ) -> Result<()> {
        if self.invites.len() >= self.config.max_invitations {
            return Err(Error::Limit {
                what: "outstanding invitations",
                limit: self.config.max_invitations,
            });
        }
        let inv = signed.invitation();
        self.ice.listen(inv)?;
        // An invitation that lists only relay candidates hides this node's addresses: its
        // sessions check only from the relay too.
        if !inv.candidates.is_empty()
            && inv
                .candidates
                .iter()
                .all(|c| c.kind == in8_artifact::CandidateKind::Relay)
        {
            self.ice.set_relay_only(inv.invite_id())?;
        }
        let left = inv.expires.as_unix().saturating_sub(now_unix().as_unix());
        let deadline = Instant::now() + std::time::Duration::from_secs(left);
        self.invites.insert(
            inv.invite_id(),
            Outstanding {
                signed,
                events,
                deadline,
                revoked: false,
            },
        );
        Ok(())
    }

    fn join(&mut self, signed: SignedInvitation, events: mpsc::Sender<JoinEvent>) -> Result<()> {
        let joining = self
            .sessions
            .values()
            .filter(|s| matches!(s, SessionCtx::Joining(_)))
            .count();
        if joining >= self.config.max_joins {
            return Err(Error::Limit {
                what: "joins in progress",
                limit: self.config.max_joins,
            });
        }
        let now = Instant::now();
        let inv = signed.invitation();
        if inv.flags.contains(in8_artifact::Flags::RELAY_ALLOWED) {
            let cands = inv.candidates.clone();
            self.permit(now, &cands);
        }
        let id = self.ice.join(now, inv)?;
        // The join certificate (a fresh key carrying the join proof) takes about a
        // millisecond to make: make it while ICE runs, off the driver, so the DTLS
        // handshake does not wait for it.
        for s in &self.sockets {
            let (transport, inv) = (s.transport.clone(), inv.clone());
            tokio::task::spawn_blocking(move || {
                if let Err(e) = transport.join_certificate(&inv) {
                    tracing::warn!("cannot make the join certificate: {e}");
                }
            });
        }
        let _ = events.try_send(JoinEvent::Gathered {
            candidates: self.advertised(),
        });
        let _ = events.try_send(JoinEvent::Checking {
            remote_candidates: inv.candidates.len(),
        });
        self.sessions.insert(
            id,
            SessionCtx::Joining(Joining {
                invitation: signed,
                events,
                started: now,
                rsvp_sent: false,
                dtls_started: false,
                established: None,
            }),
        );
        Ok(())
    }

    fn accept_rsvp(&mut self, rsvp: &SignedRsvp) -> Result<NodeId> {
        let id = rsvp.rsvp().invite_id;
        let Some(o) = self.invites.get(&id) else {
            return Err(Error::UnknownInvitation(id.to_string()));
        };
        let inv = o.signed.invitation().clone();
        let events = o.events.clone();
        let r = rsvp.verify(&inv, now_unix(), &self.config.verify)?.clone();
        if inv.flags.contains(in8_artifact::Flags::RELAY_ALLOWED) {
            self.permit(Instant::now(), &r.candidates);
        }
        let session = self.ice.accept_rsvp(Instant::now(), &inv, &r)?;
        let expect = match r.cert_fingerprint {
            Some(fingerprint) => PeerAuth::Fingerprint {
                fingerprint,
                node: Some(r.responder),
            },
            None => PeerAuth::Identity(r.responder),
        };
        let _ = events.try_send(InviteEvent::Phase2Started {
            responder: r.responder,
        });
        let ctx = self.sessions.entry(session).or_insert_with(|| {
            SessionCtx::Hosting(Hosting {
                invite: id,
                expect: expect.clone(),
                phase: Phase::Two,
                rsvp_candidates: Vec::new(),
                peer_nat: r.nat,
                started: Instant::now(),
                dtls: HashSet::new(),
                awaiting: HashMap::new(),
                established: None,
            })
        });
        if let SessionCtx::Hosting(h) = ctx {
            h.phase = Phase::Two;
            h.expect = expect;
            h.rsvp_candidates = r.candidates.clone();
            h.peer_nat = r.nat;
        }
        // Phase 2 begins for the inviter: the RSVP carries the invitee's NAT class.
        let peer = birthday::Peer {
            nat: r.nat,
            candidates: &r.candidates,
            credentials: in8_ice::Credentials {
                password: inv.secret.invitee_password(&r.ufrag),
                ufrag: r.ufrag.clone(),
            },
            relay_allowed: inv.flags.contains(in8_artifact::Flags::RELAY_ALLOWED),
            inviter: true,
        };
        if let Err(why) = self.start_birthday(session, peer) {
            tracing::info!(?session, "phase 2 is unlikely to connect: {why}");
        }
        Ok(r.responder)
    }

    fn revoke(&mut self, invite: InviteId) -> Result<()> {
        let Some(o) = self.invites.get_mut(&invite) else {
            return Err(Error::UnknownInvitation(invite.to_string()));
        };
        let inv = o.signed.invitation();
        self.ledger.revoke(&invite, inv.expires, now_unix())?;
        if !o.revoked {
            o.revoked = true;
            send_final(&o.events, InviteEvent::Ended { reason: "revoked" });
        }
        Ok(())
    }
}
