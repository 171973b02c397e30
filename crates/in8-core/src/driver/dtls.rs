//! DTLS + join proof tasks started on ICE paths, and what happens when they finish.

use std::net::SocketAddr;

use in8_artifact::{Candidate, CandidateKind, Invitation};
use in8_ice::SessionId;
use in8_transport::{PeerAuth, Session, Via};

use super::{Command, Driver, SessionCtx, send_final};
use crate::connection::{Connection, PathInfo};
use crate::error::{Error, Result};
use crate::events::{InviteEvent, JoinEvent, Phase};

/// The kind of the peer's candidate at `remote`, from the candidates it advertised.
fn kind_of(remote: SocketAddr, advertised: &[Candidate]) -> CandidateKind {
    advertised
        .iter()
        .find(|c| c.addr == remote)
        .map_or(CandidateKind::PeerReflexive, |c| c.kind)
}

impl Driver {
    /// The socket and route a DTLS session on the pair (`local`, ·) uses: the relay's
    /// socket and [`Via::Relay`] when `local` is the relayed address.
    fn path_via(&self, local: SocketAddr) -> Option<(in8_transport::Endpoint, Via)> {
        if let Some(r) = &self.relay
            && r.relayed == Some(local)
        {
            let s = self.socket_for(r.base)?;
            return Some((s.transport.clone(), Via::Relay(r.sink.clone())));
        }
        let s = self.socket_for(local)?;
        Some((s.transport.clone(), Via::Direct))
    }

    pub(crate) fn spawn_join(
        &self,
        session: SessionId,
        local: SocketAddr,
        remote: SocketAddr,
        invitation: Invitation,
    ) {
        let Some((transport, via)) = self.path_via(local) else {
            return;
        };
        let commands = self.commands.clone();
        tokio::spawn(async move {
            let result = transport
                .join_via(remote, &invitation, via)
                .await
                .map_err(|e| match e {
                    in8_transport::Error::JoinRefused(r) => Error::JoinRefused(r),
                    e => Error::Transport(e),
                });
            let _ = commands
                .send(Command::DtlsDone {
                    session,
                    remote,
                    result,
                })
                .await;
        });
    }

    pub(crate) fn spawn_accept(
        &self,
        session: SessionId,
        base: SocketAddr,
        remote: SocketAddr,
        invitation: Invitation,
        expect: PeerAuth,
        ready: Option<tokio::sync::oneshot::Receiver<()>>,
    ) {
        let Some((transport, via)) = self.path_via(base) else {
            return;
        };
        // The route is registered here, synchronously, while the driver handles the ICE
        // event, before the check's response leaves (`Driver::flush`): the invitee sends
        // its ClientHello as soon as that response arrives, and a ClientHello that found
        // no route would cost a DTLS retransmission (500 ms). It waits in the route's
        // queue until `ready` fires.
        let pending = transport.reserve_accept(remote, via);
        let limit = transport.config().handshake_timeout;
        let commands = self.commands.clone();
        let ledger = self.ledger.clone();
        tokio::spawn(async move {
            let validated = match ready {
                None => true,
                Some(ready) => matches!(tokio::time::timeout(limit, ready).await, Ok(Ok(()))),
            };
            let result = match pending {
                Err(e) => Err(Error::from(e)),
                Ok(_) if !validated => Err(Error::Unreachable {
                    reason: format!(
                        "{remote} sent an authenticated check but never answered ours within \
                         {limit:?} (a spoofed source address, or the peer went away); no DTLS \
                         was started for it"
                    ),
                }),
                Ok(p) => p
                    .accept_join(&invitation, ledger, expect)
                    .await
                    .map_err(Error::from),
            };
            let _ = commands
                .send(Command::DtlsDone {
                    session,
                    remote,
                    result,
                })
                .await;
        });
    }

    fn watch_close(&self, session: SessionId, s: &Session) {
        let s = s.clone();
        let commands = self.commands.clone();
        tokio::spawn(async move {
            let reason = s.closed().await;
            tracing::debug!(?session, %reason, "session closed");
            let _ = commands.send(Command::SessionClosed { session }).await;
        });
    }

    fn path(&self, session: SessionId, remote: SocketAddr, advertised: &[Candidate]) -> PathInfo {
        // The hard side of birthday probing: the promoted socket and its own agent.
        let (agent, promoted) = match self.birthday_path(session) {
            Some((base, agent)) => (Some(agent), Some(base)),
            None => (self.ice.session(session), None),
        };
        let local = agent
            .and_then(|a| a.selected_pair())
            .filter(|(_, r)| *r == remote)
            .map_or_else(
                || {
                    promoted
                        .or(self.sockets.first().map(|s| s.base))
                        .unwrap_or(remote)
                },
                |(l, _)| l,
            );
        let relayed = self.relay.as_ref().and_then(|r| r.relayed) == Some(local);
        PathInfo {
            kind: if relayed {
                CandidateKind::Relay
            } else {
                kind_of(remote, advertised)
            },
            local,
            remote,
            rtt: agent.and_then(|a| a.selected_rtt()),
            birthday: self.birthday_found(session, remote, advertised),
        }
    }

    pub(crate) fn dtls_done(
        &mut self,
        session: SessionId,
        remote: SocketAddr,
        result: Result<Session>,
    ) {
        match self.sessions.get(&session) {
            Some(SessionCtx::Joining(_)) => self.join_done(session, remote, result),
            Some(SessionCtx::Hosting(_)) => self.accept_done(session, remote, result),
            None => {
                // The ICE session is gone (revoked, expired, node closing): drop the session.
                if let Ok(s) = result {
                    s.abort(in8_transport::CloseReason::LocalClose);
                }
            }
        }
    }

    fn join_done(&mut self, session: SessionId, remote: SocketAddr, result: Result<Session>) {
        let Some(SessionCtx::Joining(j)) = self.sessions.get(&session) else {
            return;
        };
        let events = j.events.clone();
        match result {
            Ok(s) => {
                let inv = j.invitation.invitation();
                let phase = if j.rsvp_sent { Phase::Two } else { Phase::One };
                let conn = Connection {
                    peer: inv.issuer,
                    path: self.path(session, remote, &inv.candidates),
                    phase,
                    invite: inv.invite_id(),
                    elapsed: j.started.elapsed(),
                    nat: self.nat,
                    peer_nat: inv.nat.as_ref().map(crate::gather::class_of),
                    session: s.clone(),
                };
                self.watch_close(session, &s);
                self.birthday_connected(session);
                if let Some(SessionCtx::Joining(j)) = self.sessions.get_mut(&session) {
                    j.established = Some(s);
                }
                send_final(&events, JoinEvent::Connected(conn));
            }
            Err(e) => {
                // A refusal is final; so is a handshake failure on the path ICE chose.
                self.sessions.remove(&session);
                self.ice.remove(session);
                send_final(&events, JoinEvent::Failed(e));
            }
        }
    }

    fn accept_done(&mut self, session: SessionId, remote: SocketAddr, result: Result<Session>) {
        let Some(SessionCtx::Hosting(h)) = self.sessions.get_mut(&session) else {
            return;
        };
        h.dtls.remove(&remote);
        h.awaiting.remove(&remote);
        let (invite, phase, started) = (h.invite, h.phase, h.started);
        let advertised = h.rsvp_candidates.clone();
        let peer_nat = h.peer_nat.as_ref().map(crate::gather::class_of);
        let Some(events) = self.invites.get(&invite).map(|o| o.events.clone()) else {
            // The invitation ended meanwhile (revoked): no session for it.
            if let Ok(s) = result {
                s.abort(in8_transport::CloseReason::LocalClose);
            }
            return;
        };
        match result {
            Ok(s) => {
                let conn = Connection {
                    peer: s.peer().unwrap_or_else(|| self.identity.node_id()),
                    path: self.path(session, remote, &advertised),
                    phase,
                    invite,
                    elapsed: started.elapsed(),
                    nat: self.nat,
                    peer_nat,
                    session: s.clone(),
                };
                self.watch_close(session, &s);
                self.birthday_connected(session);
                if let Some(SessionCtx::Hosting(h)) = self.sessions.get_mut(&session) {
                    h.established = Some(s);
                }
                send_final(&events, InviteEvent::Joined(conn));
            }
            Err(e) => {
                let _ = events.try_send(InviteEvent::JoinFailed {
                    remote,
                    reason: e.to_string(),
                });
            }
        }
    }
}
