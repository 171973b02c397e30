//! Gossip on live links: frames routed to the link of their peer (dialling it when there
//! is none), gossip's events turned into links, introductions, directory updates and
//! application events, and the network's timers (announcements, silence, topology).

use std::time::{Duration, Instant};

use in8_artifact::NodeId;
use in8_gossip::LinkFailure;

use super::super::wire::{Broadcast, NetFrame};
use super::super::{CloseCause, Core, Event, NetEvent, Store};
use super::{Dial, Punch};

/// Most introductions waiting for their start time.
const MAX_PUNCHES: usize = 64;
/// The gossip frame type of SHUFFLE-REPLY (in8-gossip wire format).
const SHUFFLE_REPLY: u8 = 0x08;
/// Most peers with frames waiting for a dial.
const MAX_QUEUED_PEERS: usize = 256;
/// Neighbour changes are announced at most this often.
const ANNOUNCE_CHANGES: Duration = Duration::from_secs(10);
/// How long a dial to a peer behind a filtering NAT waits for the introduction before it
/// also tries directly (which works on a shared LAN).
const DIRECT_AFTER_INTRODUCTION: Duration = Duration::from_millis(500);

impl Core {
    /// Broadcasts a network payload through gossip (signed by this node).
    pub(crate) fn gossip_broadcast(&mut self, payload: Vec<u8>) -> Option<u64> {
        let gt = self.gtime(self.last_now);
        self.net.gossip.as_mut()?.broadcast(gt, &payload).ok()
    }

    /// Drains gossip's output: frames to their links (or queued behind a dial), events.
    pub(crate) fn drain_gossip(&mut self, now: Instant) {
        loop {
            let Some(g) = &mut self.net.gossip else {
                return;
            };
            let mut busy = false;
            let mut frames = Vec::new();
            while let Some(t) = g.poll_transmit() {
                frames.push(t);
            }
            let mut events = Vec::new();
            while let Some(e) = g.poll_event() {
                events.push(e);
            }
            for t in frames {
                busy = true;
                self.route_gossip(now, t.to, NetFrame::Gossip(t.bytes));
            }
            for e in events {
                busy = true;
                self.gossip_event(now, e);
            }
            if !busy {
                break;
            }
        }
    }

    /// Sends a frame to `to` over its link, or queues it and dials `to`.
    pub(crate) fn route_gossip(&mut self, now: Instant, to: NodeId, frame: NetFrame) {
        if self.send_to_member(to, frame.clone()) {
            return;
        }
        // A SHUFFLE-REPLY goes to a member that is usually not a neighbour (HyParView
        // answers the walk's origin directly): a link is made for it and closed once it is
        // sent — and not at all when the topology keeps only its own links, where the
        // passive view it refreshes is not used.
        let one_shot = matches!(&frame, NetFrame::Gossip(g) if g.get(1) == Some(&SHUFFLE_REPLY));
        if one_shot {
            let random = self
                .net
                .gossip
                .as_ref()
                .is_some_and(|g| g.core().random_view() > 0);
            if !random {
                return;
            }
            if !self.net.queued.contains_key(&to) {
                self.net.ephemeral.insert(to);
            }
        } else {
            self.net.ephemeral.remove(&to);
        }
        let per_peer = self.config.network.queued_per_peer;
        if !self.net.queued.contains_key(&to) && self.net.queued.len() >= MAX_QUEUED_PEERS {
            return;
        }
        let q = self.net.queued.entry(to).or_default();
        if q.len() >= per_peer {
            q.pop_front();
        }
        q.push_back(frame);
        self.ensure_dial(now, to);
    }

    /// Makes sure a link to `peer` is being made: a direct attempt from its record, and
    /// when its NAT filters (its record says so) gossip is told at once that an
    /// introduction is needed.
    pub(crate) fn ensure_dial(&mut self, now: Instant, peer: NodeId) {
        if self.net.admitted.contains_key(&peer)
            || self.net.dialling.contains_key(&peer)
            || self.link_with(&peer).is_some()
        {
            // A link to it exists or is being made: the frames wait for its admission.
            return;
        }
        let gt = self.gtime(now);
        let Some(record) = self.record_of(&peer).cloned() else {
            self.net.queued.remove(&peer);
            if let Some(g) = &mut self.net.gossip {
                g.link_failed(gt, peer, LinkFailure::Closed);
            }
            return;
        };
        if self.net.is_banned(&peer, now) || self.net.revoked(&peer) {
            self.net.queued.remove(&peer);
            if let Some(g) = &mut self.net.gossip {
                g.link_failed(gt, peer, LinkFailure::Closed);
            }
            return;
        }
        let filtered = !record.record().nat.reachable()
            && record.record().nat != in8_gossip::NatClass::Unknown;
        if filtered {
            // Its NAT drops what it did not ask for: an introduction (both sides punch at
            // once) goes first; a direct attempt follows shortly, for a shared LAN.
            self.net.dialling.insert(
                peer,
                Dial {
                    attempts: 1,
                    told_gossip: true,
                    direct_at: Some(now + DIRECT_AFTER_INTRODUCTION),
                },
            );
            if let Some(g) = &mut self.net.gossip {
                g.link_failed(gt, peer, LinkFailure::NeedsIntroduction);
            }
            return;
        }
        if self.dial_member(now, &record, None) {
            self.net.dialling.insert(
                peer,
                Dial {
                    attempts: 1,
                    told_gossip: false,
                    direct_at: None,
                },
            );
        } else {
            self.net.queued.remove(&peer);
            if let Some(g) = &mut self.net.gossip {
                g.link_failed(gt, peer, LinkFailure::NeedsIntroduction);
            }
        }
    }

    /// A member attempt ended without a link.
    pub(crate) fn net_dial_failed(&mut self, now: Instant, peer: NodeId, introduced: bool) {
        if self.net.admitted.contains_key(&peer) || self.link_with(&peer).is_some() {
            // Another attempt (a crossing dial, a join) carries the peer.
            return;
        }
        if self.net.join_via == Some(peer) && !self.net.joined {
            // Rejoining: try the next last-known member.
            self.net.join_via = None;
            self.net.dialling.remove(&peer);
            self.rejoin_next(now);
            return;
        }
        let Some(d) = self.net.dialling.get_mut(&peer) else {
            return;
        };
        d.attempts = d.attempts.saturating_sub(1);
        if d.attempts > 0 {
            return;
        }
        let told = d.told_gossip;
        let gt = self.gtime(now);
        // Not linkable so far (an introduction or a later dial may still make it).
        if self.net.unreachable.len() < self.config.network.max_members {
            self.net.unreachable.insert(peer);
        }
        if introduced || told {
            // The introduction (or the last hope) failed too.
            if introduced {
                self.net.dialling.remove(&peer);
                self.net.queued.remove(&peer);
                if let Some(g) = &mut self.net.gossip {
                    g.link_failed(gt, peer, LinkFailure::NeedsRelay);
                }
            }
            return;
        }
        // The direct attempt failed: gossip may find an introducer.
        if let Some(d) = self.net.dialling.get_mut(&peer) {
            d.told_gossip = true;
        }
        if let Some(g) = &mut self.net.gossip {
            g.link_failed(gt, peer, LinkFailure::NeedsIntroduction);
        }
    }

    fn gossip_event(&mut self, now: Instant, e: in8_gossip::Event) {
        use in8_gossip::Event as G;
        match e {
            G::NeighborUp(p) => {
                if let Some(&link) = self.net.admitted.get(&p) {
                    let info = self.links.get(&link).and_then(|l| l.info.clone());
                    if let Some(info) = info {
                        self.push_event(Event::Network(NetEvent::LinkUp {
                            peer: p,
                            link,
                            path: info.path,
                            introducer: info.introducer,
                        }));
                    }
                }
                self.announce_soon(now);
            }
            G::NeighborDown(p) => {
                self.announce_soon(now);
                let wanted =
                    self.net.topology.pinned.contains(&p) || self.net.app_wanted.contains(&p);
                tracing::debug!(peer = %p.short(), wanted, link = ?self.net.admitted.get(&p), "neighbour down");
                if let Some(&link) = self.net.admitted.get(&p)
                    && !wanted
                    && self.closable(link)
                {
                    // Gossip sent its DISCONNECT on the link; it closes after the linger.
                    tracing::debug!(peer = %p.short(), ?link, "not a neighbour any more: closing");
                    self.net.admitted.remove(&p);
                    self.push_event(Event::Network(NetEvent::LinkDown { peer: p, link }));
                    self.close_later(now, link, CloseCause::NotNeeded);
                }
            }
            G::Received {
                origin,
                payload,
                hops,
                ..
            } => self.network_broadcast(now, origin, &payload, hops),
            G::PunchNow {
                peer,
                offer,
                delay,
                introducer,
                token,
            } => {
                if self.net.admitted.contains_key(&peer) {
                    // Already linked (a direct attempt won): gossip resends its request.
                    let gt = self.gtime(now);
                    if let Some(g) = &mut self.net.gossip {
                        g.link_up(gt, peer);
                    }
                } else if self.net.punches.len() < MAX_PUNCHES {
                    self.net.punches.push(Punch {
                        at: now + delay,
                        record: offer,
                        introducer,
                        token,
                    });
                }
            }
            G::PeerRevoked(p) => {
                self.net.directory.remove(&p);
                self.net.unreachable.remove(&p);
                self.push_event(Event::Network(NetEvent::MemberRevoked(p)));
                if let Some(link) = self.net.admitted.remove(&p) {
                    // Gossip has queued the revocation for a neighbour: it goes out first.
                    self.send_on(link, &NetFrame::Bye(CloseCause::NotAMember));
                    self.close_later(now, link, CloseCause::NotAMember);
                }
            }
            G::PeerExpired(p) => {
                let known = self.net.directory.remove(&p);
                if known {
                    self.push_event(Event::Network(NetEvent::MemberDown {
                        member: p,
                        left: false,
                    }));
                }
            }
            G::SelfRevoked => {
                self.push_event(Event::Network(NetEvent::SelfRevoked));
                self.leave_links(now);
            }
            G::CredentialExpired => {
                self.push_event(Event::Network(NetEvent::CredentialExpired));
                self.leave_links(now);
            }
            G::InvitationRevoked { invite, issuer }
                if self
                    .invites
                    .get(&invite)
                    .is_some_and(|o| o.signed.invitation().issuer == issuer) =>
            {
                let _ = self.revoke_invitation(now, invite);
            }
            G::JoinFailed { contact } => {
                tracing::info!(contact = %contact.short(), "gossip JOIN went unanswered");
            }
            _ => {}
        }
    }

    /// A network broadcast from `origin` (its signature checked by gossip).
    fn network_broadcast(&mut self, now: Instant, origin: NodeId, payload: &[u8], hops: u16) {
        match Broadcast::decode(payload) {
            Ok(Broadcast::Announce { record, neighbours }) => {
                if record.node() != origin {
                    return;
                }
                tracing::trace!(origin = %origin.short(), "announcement");
                for n in &neighbours {
                    if self.net.admitted.contains_key(n)
                        && let Some(g) = &mut self.net.gossip
                    {
                        g.hint_via(origin, *n);
                    }
                }
                self.learn_record(now, &record, Some(neighbours));
            }
            Ok(Broadcast::App(payload)) => {
                self.push_event(Event::Network(NetEvent::Broadcast {
                    origin,
                    payload,
                    hops,
                }));
            }
            Ok(Broadcast::Leave) => {
                if self.net.directory.left(&origin) {
                    self.push_event(Event::Network(NetEvent::MemberDown {
                        member: origin,
                        left: true,
                    }));
                }
            }
            Ok(Broadcast::Redeemed { invite, member }) => {
                self.redeemed_elsewhere(now, origin, invite, member)
            }
            Err(e) => tracing::debug!(origin = %origin.short(), "broadcast payload refused: {e}"),
        }
    }

    /// Announces this node's record and neighbours within a second (they changed), at
    /// most once per [`ANNOUNCE_CHANGES`].
    fn announce_soon(&mut self, now: Instant) {
        if self
            .net
            .last_announce
            .is_some_and(|t| now.saturating_duration_since(t) < ANNOUNCE_CHANGES)
        {
            return;
        }
        let soon = now + Duration::from_secs(1);
        if self.net.next_announce > soon {
            self.net.next_announce = soon;
        }
    }

    fn announce(&mut self, now: Instant) {
        let Some(g) = &self.net.gossip else { return };
        if g.core().active_len() == 0 {
            self.net.next_announce = now + Duration::from_secs(1);
            return;
        }
        let record = Box::new(g.record().clone());
        let neighbours: Vec<NodeId> = g
            .core()
            .active_view()
            .take(super::super::wire::MAX_ANNOUNCED_NEIGHBOURS)
            .collect();
        let payload = Broadcast::Announce { record, neighbours }.encode();
        self.gossip_broadcast(payload);
        self.net.last_announce = Some(now);
        // A new member announces itself a few times in quick succession (1, 2, 4, 8 s
        // apart): one broadcast lost in the churn of a growing overlay must not leave it
        // unknown for a whole interval.
        let every = self.config.network.announce_interval;
        let gap = match self.net.announces {
            n @ 0..=3 => Duration::from_secs(1 << n).min(every),
            _ => every,
        };
        self.net.announces = self.net.announces.saturating_add(1);
        self.net.next_announce = now + super::super::jitter(&mut self.rng, gap, 0.2);
    }

    /// Closes every member link (this node is no longer a member).
    pub(crate) fn leave_links(&mut self, now: Instant) {
        let links: Vec<(NodeId, crate::proto::LinkId)> =
            self.net.admitted.iter().map(|(p, l)| (*p, *l)).collect();
        for (_, link) in links {
            if self.closable(link) {
                self.close_later(now, link, CloseCause::Leaving);
            }
        }
    }

    /// When the network's next timer is due.
    pub(crate) fn network_deadline(&self) -> Option<Instant> {
        let gossip = self
            .net
            .gossip
            .as_ref()
            .and_then(|g| g.poll_timeout())
            .map(|t| self.instant_of(t));
        let punch = self.net.punches.iter().map(|p| p.at).min();
        let direct = self.net.dialling.values().filter_map(|d| d.direct_at).min();
        [
            gossip,
            punch,
            direct,
            Some(self.net.next_announce),
            Some(self.net.next_sweep),
            Some(self.net.topology.next),
            Some(self.net.next_persist),
            self.members_deadline(),
            self.admission_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs the network's due timers.
    pub(crate) fn network_timeout(&mut self, now: Instant) {
        let gt = self.gtime(now);
        if let Some(g) = &mut self.net.gossip
            && g.poll_timeout().is_some_and(|t| t <= gt)
        {
            g.handle_timeout(gt);
        }
        let due: Vec<Punch> = {
            let (due, later): (Vec<Punch>, Vec<Punch>) = std::mem::take(&mut self.net.punches)
                .into_iter()
                .partition(|p| p.at <= now);
            self.net.punches = later;
            due
        };
        for p in due {
            let peer = p.record.node();
            if self.net.admitted.contains_key(&peer) {
                continue;
            }
            if self.dial_member(now, &p.record, Some((p.introducer, p.token))) {
                let i = super::api::class_index(p.record.record().nat);
                self.net.stats.punches[i].started += 1;
                let d = self.net.dialling.entry(peer).or_insert(Dial {
                    attempts: 0,
                    told_gossip: true,
                    direct_at: None,
                });
                d.attempts += 1;
                // The link, once admitted, is reported to gossip as the introduction's.
                self.net.pending_intro.insert(peer, p.introducer);
            }
        }
        self.deferred_dials(now);
        if self.net.next_sweep <= now {
            self.sweep_idle_links(now);
        }
        if self.net.next_announce <= now {
            self.announce(now);
        }
        if self.net.topology.next <= now {
            self.apply_topology(now);
        }
        if self.net.next_persist <= now {
            self.persist_members(now);
        }
        let silent = self.config.network.announce_interval * 3;
        for m in self.net.directory.silence(now, silent) {
            if !self.net.admitted.contains_key(&m) {
                self.push_event(Event::Network(NetEvent::MemberDown {
                    member: m,
                    left: false,
                }));
            }
        }
        let wall = self.wall(now);
        for m in self.net.directory.expire(wall, self.config.verify.skew()) {
            self.push_event(Event::Network(NetEvent::MemberDown {
                member: m,
                left: false,
            }));
        }
        self.members_timeout(now);
        self.admission_timeout(now);
        self.drain_gossip(now);
        if self.net.directory.changed {
            self.topology_soon(now);
        }
    }

    /// Closes admitted links that nothing needs any more (see
    /// [`super::IDLE_LINK`]); runs once a second.
    fn sweep_idle_links(&mut self, now: Instant) {
        self.net.next_sweep = now + Duration::from_secs(1);
        let links: Vec<(NodeId, crate::proto::LinkId)> =
            self.net.admitted.iter().map(|(p, l)| (*p, *l)).collect();
        for (peer, link) in links {
            let needed = self.net.topology.pinned.contains(&peer)
                || self.net.app_wanted.contains(&peer)
                || self.held.contains(&link)
                || self
                    .net
                    .gossip
                    .as_ref()
                    .is_some_and(|g| g.core().is_active(peer) || g.core().is_joining(peer));
            if needed {
                self.net.used.insert(link, now);
                continue;
            }
            let since = self.net.used.get(&link).copied().unwrap_or(now);
            if now.saturating_duration_since(since) >= super::IDLE_LINK && self.closable(link) {
                tracing::debug!(peer = %peer.short(), ?link, "idle link closes");
                self.net.admitted.remove(&peer);
                self.net.used.remove(&link);
                self.push_event(Event::Network(NetEvent::LinkDown { peer, link }));
                self.send_to_member_link(link, NetFrame::Bye(CloseCause::NotNeeded));
                self.close_later(now, link, CloseCause::NotNeeded);
            }
        }
    }

    fn send_to_member_link(&mut self, link: crate::proto::LinkId, f: NetFrame) {
        self.push_action(crate::proto::Action::Send {
            link,
            frame: f.encode(),
        });
    }

    /// Direct attempts deferred behind an introduction, now due.
    fn deferred_dials(&mut self, now: Instant) {
        let due: Vec<NodeId> = self
            .net
            .dialling
            .iter()
            .filter(|(_, d)| d.direct_at.is_some_and(|t| t <= now))
            .map(|(p, _)| *p)
            .collect();
        for peer in due {
            let record = self.record_of(&peer).cloned();
            let started = match record {
                Some(r) if !self.net.admitted.contains_key(&peer) => {
                    self.dial_member(now, &r, None)
                }
                _ => false,
            };
            if let Some(d) = self.net.dialling.get_mut(&peer) {
                d.direct_at = None;
                if !started {
                    d.attempts = d.attempts.saturating_sub(1);
                }
            }
        }
    }

    /// Persists the members to rejoin through after a restart, linked ones first, when
    /// they changed since last stored.
    pub(crate) fn persist_members(&mut self, now: Instant) {
        self.net.next_persist = now + super::PERSIST_INTERVAL;
        if self.config.state_dir.is_none() || self.net.left {
            return;
        }
        let mut list: Vec<_> = self
            .net
            .directory
            .online()
            .map(|(id, e)| (!self.net.admitted.contains_key(id), e.record.clone()))
            .collect();
        list.sort_by_key(|a| a.0);
        let keep: Vec<_> = list
            .into_iter()
            .map(|(_, r)| r)
            .take(self.config.network.remembered)
            .collect();
        let ids: Vec<(NodeId, u64)> = keep
            .iter()
            .map(|r| (r.record().node, r.record().seq))
            .collect();
        if !keep.is_empty() && ids != self.net.persisted {
            self.net.persisted = ids;
            self.push_action(crate::proto::Action::Store(Store::Members(keep)));
        }
    }
}
