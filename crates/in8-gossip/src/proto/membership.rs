//! HyParView membership (Leitão, Pereira, Rodrigues, DSN 2007) and introductions.
//!
//! Differences from the paper, each for a reason stated where it is implemented: a NEIGHBOR
//! request that fails because of a NAT asks a common neighbour for an introduction; a node
//! that is not full retries passive peers with exponential backoff; lost neighbours are
//! probed with backoff so that two halves of a healed partition find each other again; a
//! link-scoped message from a non-neighbour is answered with DISCONNECT.

use core::time::Duration;

use rand::Rng;
use rand::seq::IndexedRandom;

use super::state::{Active, HEAL_ARMED, Lost, Passive, State};
use super::{Event, Io, LinkFailure, Message, PeerId, Priority, Timer, event, send, timer};
use crate::Time;
use crate::config::MAX_LIST;

/// `d` scaled by a random factor in [0.5, 1.5).
pub(crate) fn jitter<R: Rng + ?Sized>(d: Duration, rng: &mut R) -> Duration {
    d.mul_f64(rng.random_range(0.5..1.5))
}

const MAX_BACKOFF: u8 = 6;
/// Times a JOIN is sent before [`Event::JoinFailed`].
const JOIN_ATTEMPTS: u8 = 3;

impl<P: PeerId> State<P> {
    pub(super) fn on_membership<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        from: P,
        message: Message<P>,
        rng: &mut R,
        io: &mut impl Io<P>,
    ) {
        match message {
            Message::Join => self.on_join(now, from, rng, io),
            Message::JoinReply { active, passive } => {
                self.on_join_reply(now, from, &active, &passive, rng, io)
            }
            Message::ForwardJoin { peer, ttl } => {
                self.on_forward_join(now, from, peer, ttl, rng, io)
            }
            Message::Neighbor { priority } => self.on_neighbor(now, from, priority, rng, io),
            Message::NeighborReply { accepted } => {
                self.on_neighbor_reply(now, from, accepted, rng, io)
            }
            Message::Disconnect { alive } => self.on_disconnect(now, from, alive, rng, io),
            Message::Shuffle {
                origin,
                ttl,
                active,
                passive,
            } => self.on_shuffle(now, from, origin, ttl, &active, &passive, rng, io),
            Message::ShuffleReply { peers } => {
                self.add_passive(from, None, rng);
                for &p in peers.iter().take(MAX_LIST) {
                    self.add_passive(p, None, rng);
                }
                self.arm_repair(now, io);
            }
            Message::IntroRequest { target, token } => {
                self.on_intro_request(from, target, token, io)
            }
            Message::Introduce {
                peer,
                delay_ms,
                token,
            } => {
                if peer != self.me {
                    event(
                        io,
                        Event::PunchNow {
                            peer,
                            delay: Duration::from_millis(u64::from(delay_ms)),
                            introducer: from,
                            token,
                        },
                    );
                }
            }
            Message::IntroUnavailable { target } => {
                if self
                    .pending
                    .iter()
                    .any(|p| p.peer == target && p.introducing)
                {
                    self.fail_pending(now, target, rng, io);
                }
            }
            // Broadcast messages are dispatched before this point.
            Message::Gossip { .. }
            | Message::IHave { .. }
            | Message::Graft { .. }
            | Message::Prune => {}
        }
    }

    // ----- joining -----

    fn on_join<R: Rng + ?Sized>(&mut self, now: Time, from: P, rng: &mut R, io: &mut impl Io<P>) {
        // HyParView: "the contact node c will always add the new node to its active view".
        self.add_active(now, from, true, rng, io);
        let others: Vec<P> = self
            .active
            .iter()
            .map(|a| a.peer)
            .filter(|p| *p != from)
            .collect();
        let k = self.cfg.shuffle_active + self.cfg.shuffle_passive;
        let passive = self.sample_passive(k, &[from], rng);
        let active = others.iter().copied().take(MAX_LIST).collect();
        send(io, from, Message::JoinReply { active, passive });
        self.announce(from, io);
        // "... and then sends a FORWARDJOIN request to all other nodes in its active view."
        for p in others {
            send(
                io,
                p,
                Message::ForwardJoin {
                    peer: from,
                    ttl: self.cfg.active_walk,
                },
            );
        }
    }

    fn on_join_reply<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        from: P,
        active: &[P],
        passive: &[P],
        rng: &mut R,
        io: &mut impl Io<P>,
    ) {
        self.pending.retain(|p| p.peer != from);
        self.add_active(now, from, true, rng, io);
        self.announce(from, io);
        for &p in active.iter().take(MAX_LIST) {
            // The contact is linked to these: it can introduce us.
            self.add_passive(p, Some(from), rng);
        }
        for &p in passive.iter().take(MAX_LIST) {
            self.add_passive(p, None, rng);
        }
        self.arm_repair(now, io);
    }

    fn on_forward_join<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        from: P,
        peer: P,
        ttl: u8,
        rng: &mut R,
        io: &mut impl Io<P>,
    ) {
        if peer == self.me {
            return;
        }
        let next = if ttl == 0 || self.active.len() <= 1 {
            None
        } else {
            self.random_active_except(&[from, peer], rng)
        };
        match next {
            None => {
                // "If ttl = 0 or #activeView = 1, add newNode to the active view." The
                // newcomer accepts if it has room; we evict if we are full (add_active).
                if !self.is_active(peer) && !self.pending.iter().any(|p| p.peer == peer) {
                    self.add_passive(peer, None, rng);
                    self.dial(now, peer, Priority::Low, false, io);
                }
            }
            Some(next) => {
                // "If ttl = PRWL, add newNode to the passive view."
                if ttl == self.cfg.passive_walk {
                    self.add_passive(peer, None, rng);
                }
                send(io, next, Message::ForwardJoin { peer, ttl: ttl - 1 });
            }
        }
    }

    // ----- neighbours -----

    fn on_neighbor<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        from: P,
        priority: Priority,
        rng: &mut R,
        io: &mut impl Io<P>,
    ) {
        if let Some(i) = self.active_index(from) {
            // On a link that exists, NEIGHBOR restates how the sender holds it: pinned, or
            // no longer (its topology changed) — then the link may go to the random budget.
            let pin = priority == Priority::Pinned && self.pinned_count() < self.cfg.max_pinned;
            let was = self.active[i].pin_remote;
            self.active[i].pin_remote = pin;
            send(io, from, Message::NeighborReply { accepted: true });
            if was && !pin && !self.active[i].pinned() && self.random_count() > self.random_view() {
                self.remove_active(i, io);
                send(io, from, Message::Disconnect { alive: true });
                self.add_passive_plain(from, None);
                self.arm_repair(now, io);
            }
            return;
        }
        let pin = priority == Priority::Pinned && self.pinned_count() < self.cfg.max_pinned;
        let accept = match priority {
            // "A high priority request is always accepted, even if it drives the node to
            // drop a member of its active view." Not when the topology policy switched
            // the random view off (`set_random_limit(0)`) and pinned links carry the node.
            Priority::High => self.random_view() > 0 || !self.pins_carry(),
            // "A low priority request is only accepted if the node has a free slot."
            Priority::Low => self.random_count() < self.random_view(),
            Priority::Pinned => pin || self.random_count() < self.random_view(),
        };
        // Crossing requests: ours to `from` is answered by this acceptance.
        let ours = self.pending.iter().position(|p| p.peer == from);
        if accept {
            if let Some(i) = ours {
                self.pending.swap_remove(i);
            }
            let added = if pin {
                self.add_active(now, from, true, rng, io) && self.mark_remote_pin(from)
            } else {
                self.add_active(now, from, true, rng, io)
            };
            send(io, from, Message::NeighborReply { accepted: added });
            self.announce(from, io);
        } else {
            send(io, from, Message::NeighborReply { accepted: false });
            self.add_passive(from, None, rng);
        }
    }

    fn mark_remote_pin(&mut self, peer: P) -> bool {
        if let Some(i) = self.active_index(peer) {
            self.active[i].pin_remote = true;
        }
        true
    }

    fn on_neighbor_reply<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        from: P,
        accepted: bool,
        rng: &mut R,
        io: &mut impl Io<P>,
    ) {
        let Some(i) = self.pending.iter().position(|p| p.peer == from) else {
            if accepted && !self.is_active(from) {
                // It thinks we are neighbours; we are not (any more): keep views symmetric.
                send(io, from, Message::Disconnect { alive: true });
            }
            return;
        };
        let p = self.pending.swap_remove(i);
        if accepted {
            if self.add_active(now, from, true, rng, io) {
                self.announce(from, io);
            } else {
                send(io, from, Message::Disconnect { alive: true });
            }
            self.backoff = 0;
        } else {
            if p.heal {
                self.heal_failed(now, from, io);
            }
            // Rejected: the peer is alive but full. Back off before asking others.
            self.backoff = (self.backoff + 1).min(MAX_BACKOFF);
            self.add_passive(from, None, rng);
            self.arm_repair(now, io);
        }
    }

    fn on_disconnect<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        from: P,
        alive: bool,
        rng: &mut R,
        io: &mut impl Io<P>,
    ) {
        self.pending.retain(|p| p.peer != from);
        if let Some(i) = self.active_index(from) {
            self.remove_active(i, io);
            if alive {
                self.add_passive(from, None, rng);
            }
            self.backoff = 0;
            self.arm_repair(now, io);
        }
        if !alive {
            self.passive.retain(|p| p.peer != from);
            self.lost.retain(|l| l.peer != from);
        }
    }

    /// Adds `peer` to the active view, pinned when the topology in force pins it. A random
    /// link evicts a random random link when the view is full and `evict` is set; a pinned
    /// link needs pinned budget.
    pub(crate) fn add_active<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        peer: P,
        evict: bool,
        rng: &mut R,
        io: &mut impl Io<P>,
    ) -> bool {
        if peer == self.me {
            return false;
        }
        // A peer the topology pins is pinned however the link came about; one it does
        // not pin is not (a request may predate a topology change).
        let pinned = self.pinned.contains(&peer);
        if let Some(i) = self.active_index(peer) {
            self.active[i].pin_local = pinned;
            return true;
        }
        let pinned = pinned && self.pinned_count() < self.cfg.max_pinned;
        if !pinned && self.random_count() >= self.random_view() {
            if !evict {
                return false;
            }
            self.evict_random(now, rng, io);
        }
        self.passive.retain(|p| p.peer != peer);
        self.lost.retain(|l| l.peer != peer);
        self.active.push(Active {
            peer,
            rtt_ms: 0,
            eager: true,
            pin_local: pinned,
            pin_remote: false,
        });
        event(io, Event::NeighborUp(peer));
        if pinned {
            self.trim_random(io);
        }
        true
    }

    /// Announces what we still hold to a new neighbour, after the message that confirmed
    /// the link (links are ordered): a neighbour that was cut off while a message spread (a
    /// crash, a partition, a late join) GRAFTs what it missed.
    fn announce(&self, peer: P, io: &mut impl Io<P>) {
        if !self.store.is_empty() && self.is_active(peer) {
            let skip = self.store.len().saturating_sub(MAX_LIST);
            let entries = self
                .store
                .iter()
                .skip(skip)
                .map(|s| (s.id, s.round))
                .collect();
            send(io, peer, Message::IHave { entries });
        }
    }

    fn evict_random<R: Rng + ?Sized>(&mut self, _now: Time, rng: &mut R, io: &mut impl Io<P>) {
        let candidates: Vec<usize> = (0..self.active.len())
            .filter(|&i| !self.active[i].pinned())
            .collect();
        if let Some(&i) = candidates.choose(rng) {
            let peer = self.active[i].peer;
            self.remove_active(i, io);
            send(io, peer, Message::Disconnect { alive: true });
            self.add_passive(peer, None, rng);
        }
    }

    pub(crate) fn remove_active(&mut self, i: usize, io: &mut impl Io<P>) {
        let a = self.active.swap_remove(i);
        self.missing.retain(|m| m.from != a.peer);
        event(io, Event::NeighborDown(a.peer));
    }

    fn random_active_except<R: Rng + ?Sized>(&self, except: &[P], rng: &mut R) -> Option<P> {
        let n = self
            .active
            .iter()
            .filter(|a| !except.contains(&a.peer))
            .count();
        if n == 0 {
            return None;
        }
        let k = rng.random_range(0..n);
        self.active
            .iter()
            .filter(|a| !except.contains(&a.peer))
            .nth(k)
            .map(|a| a.peer)
    }

    // ----- passive view -----

    /// Adds `peer` to the passive view, evicting a random entry when full.
    pub(crate) fn add_passive<R: Rng + ?Sized>(&mut self, peer: P, via: Option<P>, rng: &mut R) {
        if peer == self.me || self.is_active(peer) {
            return;
        }
        if let Some(e) = self.passive.iter_mut().find(|p| p.peer == peer) {
            if via.is_some() {
                e.via = via;
            }
            return;
        }
        if self.passive.len() >= self.cfg.passive_view {
            let i = rng.random_range(0..self.passive.len());
            self.passive.swap_remove(i);
        }
        self.passive.push(Passive { peer, via });
    }

    /// Adds `peer` to the passive view only if there is room (no randomness needed).
    pub(crate) fn add_passive_plain(&mut self, peer: P, via: Option<P>) {
        if peer != self.me
            && !self.is_active(peer)
            && !self.passive.iter().any(|p| p.peer == peer)
            && self.passive.len() < self.cfg.passive_view
        {
            self.passive.push(Passive { peer, via });
        }
    }

    fn sample_passive<R: Rng + ?Sized>(&self, k: usize, except: &[P], rng: &mut R) -> Vec<P> {
        let pool: Vec<P> = self
            .passive
            .iter()
            .map(|p| p.peer)
            .filter(|p| !except.contains(p))
            .collect();
        pool.choose_multiple(rng, k.min(MAX_LIST))
            .copied()
            .collect()
    }

    // ----- shuffles -----

    pub(super) fn on_shuffle_timer<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        rng: &mut R,
        io: &mut impl Io<P>,
    ) {
        timer(
            io,
            now + jitter(self.cfg.shuffle_interval, rng),
            Timer::Shuffle,
        );
        // Restate how each neighbour's link is held (pinned by our topology or not): a
        // pin the other side remembers from before a topology change, or from a request
        // that crossed one, does not outlive a shuffle interval.
        for a in &self.active {
            let priority = if a.pin_local {
                Priority::Pinned
            } else {
                Priority::Low
            };
            send(io, a.peer, Message::Neighbor { priority });
        }
        self.shuffles = self.shuffles.saturating_add(1);
        if self.cfg.rotate_every > 0 && self.shuffles >= self.cfg.rotate_every {
            self.shuffles = 0;
            self.rotate(now, rng, io);
        }
        let Some(target) = self.random_active_except(&[], rng) else {
            return;
        };
        let others: Vec<P> = self
            .active
            .iter()
            .map(|a| a.peer)
            .filter(|p| *p != target)
            .collect();
        let active = others
            .choose_multiple(rng, self.cfg.shuffle_active)
            .copied()
            .collect();
        let passive = self.sample_passive(self.cfg.shuffle_passive, &[target], rng);
        send(
            io,
            target,
            Message::Shuffle {
                origin: self.me,
                ttl: self.cfg.shuffle_walk,
                active,
                passive,
            },
        );
    }

    /// Slow random rewiring: a full node links to a random passive peer with high
    /// priority; accepting it evicts one of our random links (and one of the peer's).
    fn rotate<R: Rng + ?Sized>(&mut self, now: Time, rng: &mut R, io: &mut impl Io<P>) {
        if self.random_count() < self.random_view() || !self.pending.is_empty() {
            return;
        }
        let Some(p) = self.passive.choose(rng).map(|p| p.peer) else {
            return;
        };
        self.dial(now, p, Priority::High, false, io);
    }

    #[allow(clippy::too_many_arguments)]
    fn on_shuffle<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        from: P,
        origin: P,
        ttl: u8,
        active: &[P],
        passive: &[P],
        rng: &mut R,
        io: &mut impl Io<P>,
    ) {
        if origin == self.me {
            return;
        }
        if ttl > 0
            && self.active.len() > 1
            && let Some(next) = self.random_active_except(&[from, origin], rng)
        {
            let (active, passive) = (active.to_vec(), passive.to_vec());
            send(
                io,
                next,
                Message::Shuffle {
                    origin,
                    ttl: ttl - 1,
                    active,
                    passive,
                },
            );
            return;
        }
        // "... node p accepts the shuffle and replies with a SHUFFLEREPLY containing
        // a number of identifiers from its own passive view equal to the number received."
        let n = (1 + active.len() + passive.len()).min(MAX_LIST);
        let peers = self.sample_passive(n, &[origin], rng);
        send(io, origin, Message::ShuffleReply { peers });
        let via = self.is_active(origin).then_some(origin);
        self.add_passive(origin, None, rng);
        for &p in active.iter().take(MAX_LIST) {
            self.add_passive(p, via, rng);
        }
        for &p in passive.iter().take(MAX_LIST) {
            self.add_passive(p, None, rng);
        }
        self.arm_repair(now, io);
    }

    // ----- repair: filling the active view from the passive view -----

    pub(crate) fn arm_repair(&mut self, now: Time, io: &mut impl Io<P>) {
        if !self.wants_more() {
            return;
        }
        let delay = if self.active.is_empty() {
            Duration::ZERO
        } else {
            self.cfg.repair_interval * (1u32 << self.backoff)
        };
        let at = now + delay;
        // Re-arm only if earlier than the pending repair (a stale timer is ignored).
        if self.repair_at.is_none_or(|t| at < t) {
            self.repair_at = Some(at);
            timer(io, at, Timer::Repair);
        }
    }

    fn wants_more(&self) -> bool {
        let missing_pins = self
            .pinned
            .iter()
            .any(|p| !self.is_active(*p) && !self.pending.iter().any(|q| q.peer == *p));
        let random_pending = self
            .pending
            .iter()
            .filter(|p| p.priority != Priority::Pinned)
            .count();
        let room = self.random_count() + random_pending < self.random_view();
        let candidates = self
            .passive
            .iter()
            .any(|p| !self.pending.iter().any(|q| q.peer == p.peer));
        missing_pins || (room && candidates)
    }

    pub(super) fn on_repair_timer<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        rng: &mut R,
        io: &mut impl Io<P>,
    ) {
        if self.repair_at.is_none_or(|t| t > now) {
            return;
        }
        self.repair_at = None;
        // Topology links first.
        let pins: Vec<P> = self
            .pinned
            .iter()
            .copied()
            .filter(|p| !self.is_active(*p) && !self.pending.iter().any(|q| q.peer == *p))
            .collect();
        for p in pins {
            if self.pending.len() >= self.cfg.max_pending {
                break;
            }
            self.dial(now, p, Priority::Pinned, false, io);
        }
        let empty = self.active.is_empty();
        // Fewer than half the slots used: the node is fragile (a crash wave, a cut-off
        // group); use every dial slot and ask with high priority.
        let weak = self.active.len() * 2 < self.random_view();
        let mut budget = if weak { self.cfg.max_pending } else { 1 };
        while budget > 0 && self.pending.len() < self.cfg.max_pending {
            let random_pending = self
                .pending
                .iter()
                .filter(|p| p.priority != Priority::Pinned)
                .count();
            if self.random_count() + random_pending >= self.random_view() {
                break;
            }
            let pool: Vec<P> = self
                .passive
                .iter()
                .map(|p| p.peer)
                .filter(|p| !self.pending.iter().any(|q| q.peer == *p))
                .collect();
            let Some(&p) = pool.choose(rng) else { break };
            // "If the active view is empty the request has high priority, else low." We also
            // ask with high priority when fewer than half the slots are used: a small group
            // cut off from the rest (every outside node full) would otherwise stay cut off.
            let priority = if empty || weak {
                Priority::High
            } else {
                Priority::Low
            };
            self.dial(now, p, priority, false, io);
            budget -= 1;
        }
    }

    /// Sends NEIGHBOR to `peer` (the driver dials it if there is no link yet).
    pub(crate) fn dial(
        &mut self,
        now: Time,
        peer: P,
        priority: Priority,
        heal: bool,
        io: &mut impl Io<P>,
    ) {
        if self.pending.iter().any(|p| p.peer == peer) {
            return;
        }
        self.push_pending(now, peer, priority, heal, false, io);
        send(io, peer, Message::Neighbor { priority });
    }

    pub(super) fn on_dial_timeout<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        peer: P,
        rng: &mut R,
        io: &mut impl Io<P>,
    ) {
        let deadline = now + self.cfg.neighbor_timeout;
        let Some(p) = self
            .pending
            .iter_mut()
            .find(|p| p.peer == peer && p.deadline <= now)
        else {
            return;
        };
        // A JOIN is the newcomer's only way in: send it again before giving up (a lost
        // frame, a contact busy restarting).
        if p.join && p.tries < JOIN_ATTEMPTS {
            p.tries += 1;
            p.deadline = deadline;
            send(io, peer, Message::Join);
            timer(io, deadline, Timer::DialTimeout(peer));
            return;
        }
        self.fail_pending(now, peer, rng, io);
    }

    /// A NEIGHBOR request failed for good: forget the peer as a candidate, try another.
    fn fail_pending<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        peer: P,
        _rng: &mut R,
        io: &mut impl Io<P>,
    ) {
        let Some(i) = self.pending.iter().position(|p| p.peer == peer) else {
            return;
        };
        let p = self.pending.swap_remove(i);
        if p.join {
            event(io, Event::JoinFailed { contact: peer });
        }
        if p.heal {
            self.heal_failed(now, peer, io);
        } else {
            // HyParView: a passive peer that cannot be reached is removed.
            self.passive.retain(|q| q.peer != peer);
        }
        self.arm_repair(now, io);
    }

    pub(super) fn on_link_failed<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        peer: P,
        reason: LinkFailure,
        rng: &mut R,
        io: &mut impl Io<P>,
    ) {
        if let Some(i) = self.active_index(peer) {
            self.remove_active(i, io);
            self.passive.retain(|p| p.peer != peer);
            if reason == LinkFailure::Closed {
                self.push_lost(now, peer, io);
            }
            self.backoff = 0;
            self.arm_repair(now, io);
        }
        let Some(i) = self.pending.iter().position(|p| p.peer == peer) else {
            return;
        };
        if reason == LinkFailure::NeedsIntroduction && !self.pending[i].introducing {
            let via = self
                .passive
                .iter()
                .find(|p| p.peer == peer)
                .and_then(|p| p.via)
                .into_iter()
                .chain(self.hints.iter().filter(|h| h.0 == peer).map(|h| h.1))
                .find(|v| *v != peer && self.is_active(*v));
            if let Some(via) = via {
                // A common neighbour relays both offers and a start time.
                let deadline = now + self.cfg.neighbor_timeout;
                self.pending[i].introducing = true;
                self.pending[i].deadline = deadline;
                let token = rng.random::<u64>();
                send(
                    io,
                    via,
                    Message::IntroRequest {
                        target: peer,
                        token,
                    },
                );
                timer(io, deadline, Timer::DialTimeout(peer));
                return;
            }
        }
        self.fail_pending(now, peer, rng, io);
    }

    pub(super) fn on_link_up(&mut self, now: Time, peer: P, io: &mut impl Io<P>) {
        let deadline = now + self.cfg.neighbor_timeout;
        if let Some(p) = self
            .pending
            .iter_mut()
            .find(|p| p.peer == peer && p.introducing)
        {
            p.introducing = false;
            p.deadline = deadline;
            let priority = p.priority;
            send(io, peer, Message::Neighbor { priority });
            timer(io, deadline, Timer::DialTimeout(peer));
        }
    }

    // ----- introductions -----

    fn on_intro_request(&mut self, from: P, target: P, token: u64, io: &mut impl Io<P>) {
        let (Some(a), Some(t)) = (self.active_index(from), self.active_index(target)) else {
            send(io, from, Message::IntroUnavailable { target });
            return;
        };
        if from == target {
            return;
        }
        // Both sides should start together: each waits for the other's one-way delay
        // from us minus its own (estimated as half the measured round trips).
        let (ra, rt) = (
            u32::from(self.active[a].rtt_ms),
            u32::from(self.active[t].rtt_ms),
        );
        let margin = u32::try_from(self.cfg.punch_margin.as_millis()).unwrap_or(u32::MAX);
        let base = ra.max(rt) / 2 + margin;
        let delay = |r: u32| u16::try_from(base - r / 2).unwrap_or(u16::MAX);
        send(
            io,
            from,
            Message::Introduce {
                peer: target,
                delay_ms: delay(ra),
                token,
            },
        );
        send(
            io,
            target,
            Message::Introduce {
                peer: from,
                delay_ms: delay(rt),
                token,
            },
        );
    }

    // ----- partition healing -----

    fn push_lost(&mut self, now: Time, peer: P, io: &mut impl Io<P>) {
        if self.cfg.lost_capacity == 0 || self.lost.iter().any(|l| l.peer == peer) {
            return;
        }
        if self.lost.len() >= self.cfg.lost_capacity {
            self.lost.remove(0);
        }
        self.lost.push(Lost {
            peer,
            next: now + self.cfg.heal_interval,
            attempts: 0,
        });
        self.arm_heal(now, io);
    }

    fn arm_heal(&mut self, _now: Time, io: &mut impl Io<P>) {
        if self.flags & HEAL_ARMED != 0 {
            return;
        }
        if let Some(next) = self.lost.iter().map(|l| l.next).min() {
            self.flags |= HEAL_ARMED;
            timer(io, next, Timer::Heal);
        }
    }

    pub(super) fn on_heal_timer(&mut self, now: Time, io: &mut impl Io<P>) {
        self.flags &= !HEAL_ARMED;
        let me = &*self;
        let due: Vec<P> = me
            .lost
            .iter()
            .filter(|l| l.next <= now)
            .map(|l| l.peer)
            .collect();
        for peer in due {
            if self.is_active(peer) {
                self.lost.retain(|l| l.peer != peer);
                continue;
            }
            if self.pending.iter().any(|p| p.peer == peer)
                || self.pending.len() >= self.cfg.max_pending
            {
                // Try again after the usual interval.
                if let Some(l) = self.lost.iter_mut().find(|l| l.peer == peer) {
                    l.next = now + self.cfg.heal_interval;
                }
                continue;
            }
            if let Some(l) = self.lost.iter_mut().find(|l| l.peer == peer) {
                // Not due again until this probe has failed (heal_failed reschedules).
                l.next = now + self.cfg.neighbor_timeout + self.cfg.heal_interval;
            }
            self.dial(now, peer, Priority::High, true, io);
        }
        self.arm_heal(now, io);
    }

    fn heal_failed(&mut self, now: Time, peer: P, io: &mut impl Io<P>) {
        let (interval, limit) = (self.cfg.heal_interval, self.cfg.heal_attempts);
        if let Some(i) = self.lost.iter().position(|l| l.peer == peer) {
            let l = &mut self.lost[i];
            l.attempts = l.attempts.saturating_add(1);
            if l.attempts >= limit {
                self.lost.remove(i);
            } else {
                l.next = now + interval * (1u32 << l.attempts.min(16));
            }
        }
        self.arm_heal(now, io);
    }
}

impl<P: PeerId> Lost<P> {}

#[allow(dead_code)]
fn _assert_sizes() {
    // Compact entries keep a million simulated nodes within budget.
    const _: () = assert!(core::mem::size_of::<Active<u32>>() <= 12);
    const _: () = assert!(core::mem::size_of::<Passive<u32>>() <= 12);
}
