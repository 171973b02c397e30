//! Links: the secure sessions the driver runs for the core, from the first DTLS attempt to
//! the close. What a link carries (a join, an invitee, a member) decides what its result
//! means; the network layer takes every link once it is up.

use std::net::SocketAddr;
use std::time::Instant;

use in8_artifact::{Candidate, CandidateKind, InviteId, NodeId};
use in8_ice::SessionId;

use super::ice_events::Purpose;
use super::{Action, CloseCause, Core, Event, InviteProgress, JoinId, LinkId, LinkInfo, LinkInput};
use crate::connection::PathInfo;
use crate::events::Phase;

/// What a link is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkKind {
    /// This node's join.
    Join(JoinId),
    /// An invitee of an invitation this node serves.
    Accept(InviteId),
    /// A session between members.
    Member,
}

/// One link.
pub(crate) struct LinkCtx {
    pub(crate) session: SessionId,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    pub(crate) started: Instant,
    pub(crate) kind: LinkKind,
    /// The secure session is open.
    pub(crate) up: bool,
    /// The authenticated peer (known once up; for member links, from the start).
    pub(crate) peer: Option<NodeId>,
    /// What the core reported when it came up.
    pub(crate) info: Option<LinkInfo>,
    /// Closing after a grace period (a goodbye frame is on its way): when.
    pub(crate) close_at: Option<(Instant, CloseCause)>,
}

/// The kind of the peer's candidate at `remote`, from the candidates it advertised.
fn kind_of(remote: SocketAddr, advertised: &[Candidate]) -> CandidateKind {
    advertised
        .iter()
        .find(|c| c.addr == remote)
        .map_or(CandidateKind::PeerReflexive, |c| c.kind)
}

impl Core {
    /// A new link for an attempt of `session` on (`local`, `remote`).
    pub(crate) fn new_link(
        &mut self,
        now: Instant,
        session: SessionId,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> LinkId {
        let link = LinkId(self.next_id());
        let (kind, peer) = match self.sessions.get(&session).map(|c| &c.purpose) {
            Some(Purpose::Joining { join, peer }) => (LinkKind::Join(*join), Some(*peer)),
            Some(Purpose::Hosting(h)) => (LinkKind::Accept(h.invite), None),
            Some(Purpose::Member(m)) => (LinkKind::Member, Some(m.peer)),
            None => (LinkKind::Member, None),
        };
        self.links.insert(
            link,
            LinkCtx {
                session,
                local,
                remote,
                started: now,
                kind,
                up: false,
                peer,
                info: None,
                close_at: None,
            },
        );
        link
    }

    /// Closes a link now (or abandons its attempt). The network hears of an admitted one.
    pub(crate) fn drop_link(&mut self, link: LinkId, cause: CloseCause) {
        let Some(l) = self.links.remove(&link) else {
            return;
        };
        if let Some(ctx) = self.sessions.get_mut(&l.session) {
            ctx.attempts.retain(|_, v| *v != link);
            ctx.awaiting.retain(|r, _| *r != l.remote);
            if ctx.established == Some(link) {
                ctx.established = None;
            }
        }
        self.push_action(Action::Close { link, cause });
        if l.up {
            self.session_of_link_closed(l.session);
            if let Some(peer) = l.peer {
                self.net_link_gone(link, peer);
            }
        }
        self.net.answered.remove(&link);
        self.held.remove(&link);
    }

    /// Closes a link after the network's linger time, so a goodbye frame gets out first.
    pub(crate) fn close_later(&mut self, now: Instant, link: LinkId, cause: CloseCause) {
        let at = now + self.config.network.linger;
        if let Some(l) = self.links.get_mut(&link)
            && l.close_at.is_none()
        {
            l.close_at = Some((at, cause));
        }
    }

    /// The ICE session of a closed link is over too (unless something else holds it).
    fn session_of_link_closed(&mut self, session: SessionId) {
        if self
            .sessions
            .get(&session)
            .is_some_and(|c| c.attempts.is_empty())
        {
            self.ice.remove(session);
            self.sessions.remove(&session);
        }
    }

    pub(crate) fn links_deadline(&self) -> Option<Instant> {
        self.links
            .values()
            .filter_map(|l| l.close_at.map(|(t, _)| t))
            .min()
    }

    pub(crate) fn links_timeout(&mut self, now: Instant) {
        let due: Vec<(LinkId, CloseCause)> = self
            .links
            .iter()
            .filter_map(|(id, l)| l.close_at.filter(|(t, _)| *t <= now).map(|(_, c)| (*id, c)))
            .collect();
        for (link, cause) in due {
            self.drop_link(link, cause);
        }
    }

    /// What the driver reports about a link. See [`LinkInput`].
    pub fn handle_link(&mut self, now: Instant, link: LinkId, input: LinkInput) {
        match input {
            LinkInput::Up { peer } => self.link_up(now, link, peer),
            LinkInput::Failed(e) => self.link_failed(now, link, e),
            LinkInput::Closed(reason) => {
                tracing::debug!(?link, %reason, "link closed");
                if let Some(l) = self.links.remove(&link) {
                    if let Some(ctx) = self.sessions.get_mut(&l.session) {
                        ctx.attempts.retain(|_, v| *v != link);
                        if ctx.established == Some(link) {
                            ctx.established = None;
                        }
                    }
                    if l.up {
                        self.session_of_link_closed(l.session);
                        if let Some(peer) = l.peer {
                            self.net_link_gone(link, peer);
                        }
                    }
                }
            }
            LinkInput::Frame(bytes) => self.net_frame(now, link, &bytes),
        }
        self.flush(now, None);
    }

    fn link_up(&mut self, now: Instant, link: LinkId, peer: NodeId) {
        let Some(l) = self.links.get(&link) else {
            // Abandoned meanwhile (the driver closes it on the Close action).
            return;
        };
        let (session, remote, kind) = (l.session, l.remote, l.kind);
        if l.peer.is_some_and(|p| p != peer) {
            // The transport authenticated someone else than the core expected.
            self.drop_link(link, CloseCause::NotAMember);
            return;
        }
        let info = self.link_info(now, link, peer);
        if let Some(l) = self.links.get_mut(&link) {
            l.up = true;
            l.peer = Some(peer);
            l.info = Some(info.clone());
        }
        if let Some(ctx) = self.sessions.get_mut(&session) {
            ctx.established = Some(link);
            ctx.attempts.retain(|r, _| *r == remote);
            ctx.awaiting.clear();
        }
        self.birthday_connected(session);
        match kind {
            LinkKind::Join(join) => self.join_attempt_done(now, join, link, Ok(info)),
            LinkKind::Accept(invite) => {
                if self.invites.contains_key(&invite) {
                    self.push_event(Event::Invite {
                        invite,
                        event: InviteProgress::Joined {
                            link,
                            info: Box::new(info),
                        },
                    });
                } else {
                    // The invitation ended meanwhile (revoked): no session for it.
                    self.drop_link(link, CloseCause::Abandoned);
                    return;
                }
            }
            LinkKind::Member => {}
        }
        self.net_link_up(now, link, peer, kind);
    }

    fn link_failed(&mut self, now: Instant, link: LinkId, error: crate::Error) {
        let Some(l) = self.links.remove(&link) else {
            return;
        };
        if let Some(ctx) = self.sessions.get_mut(&l.session) {
            ctx.attempts.retain(|_, v| *v != link);
            ctx.awaiting.remove(&l.remote);
        }
        match l.kind {
            LinkKind::Join(join) => self.join_attempt_done(now, join, link, Err(error)),
            LinkKind::Accept(invite) => {
                if self.invites.contains_key(&invite) {
                    self.push_event(Event::Invite {
                        invite,
                        event: InviteProgress::JoinFailed {
                            remote: l.remote,
                            error,
                        },
                    });
                }
            }
            LinkKind::Member => {
                tracing::debug!(peer = ?l.peer.map(|p| p.short()), "member link failed: {error}");
                self.member_link_failed(now, l.session);
            }
        }
    }

    /// The path, phase and timing of a link coming up.
    fn link_info(&self, now: Instant, link: LinkId, peer: NodeId) -> LinkInfo {
        let Some(l) = self.links.get(&link) else {
            return LinkInfo {
                peer,
                path: PathInfo {
                    kind: CandidateKind::Host,
                    local: SocketAddr::from(([0, 0, 0, 0], 0)),
                    remote: SocketAddr::from(([0, 0, 0, 0], 0)),
                    rtt: None,
                    birthday: false,
                },
                phase: Phase::One,
                invite: None,
                elapsed: std::time::Duration::ZERO,
                nat: self.nat,
                peer_nat: None,
                introducer: None,
            };
        };
        let session = l.session;
        let advertised = self.peer_candidates(session);
        let (phase, invite, peer_nat, started, introducer) =
            match self.sessions.get(&session).map(|c| (&c.purpose, c.started)) {
                Some((Purpose::Joining { join, peer }, _)) => {
                    let j = self.joins.get(join);
                    let inv = j.map(|j| j.invitation.invitation());
                    let phase = if j.is_some_and(|j| j.rsvp_sent) {
                        Phase::Two
                    } else {
                        Phase::One
                    };
                    let nat = inv
                        .filter(|i| i.issuer == *peer)
                        .and_then(|i| i.nat.as_ref().map(super::class_of));
                    (
                        phase,
                        inv.map(|i| i.invite_id()),
                        nat,
                        j.map_or(l.started, |j| j.started),
                        None,
                    )
                }
                Some((Purpose::Hosting(h), started)) => (
                    h.phase,
                    Some(h.invite),
                    h.peer_nat.as_ref().map(super::class_of),
                    started,
                    None,
                ),
                Some((Purpose::Member(m), started)) => {
                    (Phase::One, None, m.peer_nat, started, m.introducer)
                }
                None => (Phase::One, None, None, l.started, None),
            };
        let remote = l.remote;
        // The hard side of birthday probing: the promoted socket and its own agent.
        let (agent, promoted) = match self.birthday_path(session) {
            Some((base, agent)) => (Some(agent), Some(base)),
            None => (self.ice.session(session), None),
        };
        let local = agent
            .and_then(|a| a.selected_pair())
            .filter(|(_, r)| *r == remote)
            .map_or_else(|| promoted.unwrap_or(l.local), |(l, _)| l);
        let relayed = self.relayed_addr() == Some(local);
        LinkInfo {
            peer,
            path: PathInfo {
                kind: if relayed {
                    CandidateKind::Relay
                } else {
                    kind_of(remote, &advertised)
                },
                local,
                remote,
                rtt: agent.and_then(|a| a.selected_rtt()),
                birthday: self.birthday_found(session, remote, &advertised),
            },
            phase,
            invite,
            elapsed: now.saturating_duration_since(started),
            nat: self.nat,
            peer_nat,
            introducer,
        }
    }

    /// A client-side path was selected: start the DTLS client for what the session is for.
    pub(crate) fn connect_client(
        &mut self,
        now: Instant,
        session: SessionId,
        local: SocketAddr,
        remote: SocketAddr,
    ) {
        match self.sessions.get(&session).map(|c| &c.purpose) {
            Some(Purpose::Joining { join, .. }) => {
                let join = *join;
                self.join_path(now, join, session, local, remote);
            }
            Some(Purpose::Member(_)) => self.member_connect(now, session, local, remote),
            _ => {}
        }
    }

    /// Whether the core may close `link` when the overlay no longer wants it: not while
    /// the application holds its connection ([`Core::hold_link`]).
    pub(crate) fn closable(&self, link: LinkId) -> bool {
        self.links.contains_key(&link) && !self.held.contains(&link)
    }

    /// The application holds a connection on `link` (a join's or an invitee's): the
    /// overlay keeps it open until [`Core::release_link_hold`].
    pub fn hold_link(&mut self, link: LinkId) {
        if self.links.contains_key(&link) && self.held.len() < self.config.max_joins * 16 {
            self.held.insert(link);
        }
    }

    /// The application let go of `link`'s connection.
    pub fn release_link_hold(&mut self, now: Instant, link: LinkId) {
        self.tick(now);
        if self.held.remove(&link)
            && let Some(peer) = self.links.get(&link).and_then(|l| l.peer)
        {
            let wanted =
                self.net.topology.pinned.contains(&peer) || self.net.app_wanted.contains(&peer);
            let neighbour = self
                .net
                .gossip
                .as_ref()
                .is_some_and(|g| g.core().is_active(peer));
            if !wanted && !neighbour {
                self.net.admitted.retain(|_, l| *l != link);
                self.close_later(now, link, CloseCause::NotNeeded);
            }
        }
    }

    /// A link (up or being made) with `peer`.
    pub(crate) fn link_with(&self, peer: &NodeId) -> Option<LinkId> {
        self.links
            .iter()
            .find(|(_, l)| l.peer.as_ref() == Some(peer))
            .map(|(id, _)| *id)
    }

    /// A link (up or being made) on the 5-tuple (`local`, `remote`) of another session:
    /// the transport runs one session per remote address on a socket, and a second
    /// handshake there would disturb the first.
    pub(crate) fn link_on(
        &self,
        session: SessionId,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Option<LinkId> {
        self.links
            .iter()
            .find(|(_, l)| l.session != session && l.local == local && l.remote == remote)
            .map(|(id, _)| *id)
    }

    /// The links that are up, with their peers.
    pub fn links_up(&self) -> Vec<(LinkId, NodeId)> {
        let mut v: Vec<(LinkId, NodeId)> = self
            .links
            .iter()
            .filter(|(_, l)| l.up)
            .filter_map(|(id, l)| Some((*id, l.peer?)))
            .collect();
        v.sort();
        v
    }

    /// What the core reported about a link that is up.
    pub fn link_info_of(&self, link: LinkId) -> Option<&LinkInfo> {
        self.links.get(&link).and_then(|l| l.info.as_ref())
    }
}
