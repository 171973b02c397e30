//! The per-node state and the entry points the driver calls.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use rand::Rng;

use super::{Io, LinkFailure, Message, MessageId, PeerId, Priority, Timer};
use crate::{Config, Time};

/// An active-view entry: a linked neighbour.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Active<P> {
    pub(crate) peer: P,
    /// Round-trip time the driver measured, in milliseconds (0 = unknown).
    pub(crate) rtt_ms: u16,
    /// Plumtree: push payloads to this neighbour (else IHAVE only).
    pub(crate) eager: bool,
    /// Our topology policy wants this link.
    pub(crate) pin_local: bool,
    /// The neighbour's topology policy wants this link.
    pub(crate) pin_remote: bool,
}

impl<P> Active<P> {
    pub(crate) fn pinned(&self) -> bool {
        self.pin_local || self.pin_remote
    }
}

/// A passive-view entry: a member we know of, and optionally a neighbour of ours that
/// said it is linked to it (a candidate introducer).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Passive<P> {
    pub(crate) peer: P,
    pub(crate) via: Option<P>,
}

/// A NEIGHBOR request (or JOIN) in flight.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pending<P> {
    pub(crate) peer: P,
    pub(crate) priority: Priority,
    pub(crate) deadline: Time,
    /// Waiting for an introducer to arrange a simultaneous open.
    pub(crate) introducing: bool,
    /// A probe of a lost neighbour (partition healing).
    pub(crate) heal: bool,
    /// Our JOIN.
    pub(crate) join: bool,
    /// Times the request was sent.
    pub(crate) tries: u8,
}

/// A recently lost neighbour, probed with exponential backoff.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lost<P> {
    pub(crate) peer: P,
    pub(crate) next: Time,
    pub(crate) attempts: u8,
}

/// A payload kept to answer GRAFTs.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub(crate) id: MessageId,
    pub(crate) round: u16,
    pub(crate) at: Time,
    pub(crate) payload: Bytes,
}

/// A message announced by IHAVE that we do not have yet.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Missing<P> {
    pub(crate) id: MessageId,
    pub(crate) from: P,
    pub(crate) round: u16,
}

pub(crate) const HEAL_ARMED: u8 = 2;
pub(crate) const EXPIRE_ARMED: u8 = 4;
pub(crate) const STARTED: u8 = 8;
pub(crate) const LEFT: u8 = 16;

/// One node's membership, broadcast and introduction state.
///
/// Sizes: the active view holds at most `active_view + max_pinned` entries, the passive
/// view `passive_view`, NEIGHBOR requests in flight `max_pending`, lost neighbours
/// `lost_capacity`, message ids `seen_capacity`, payloads `payload_capacity` and IHAVE
/// announcements `missing_capacity` (see [`Config`]). Nothing else grows.
#[derive(Debug)]
pub struct State<P> {
    pub(crate) cfg: Arc<Config>,
    pub(crate) me: P,
    pub(crate) active: Vec<Active<P>>,
    pub(crate) passive: Vec<Passive<P>>,
    pub(crate) pending: Vec<Pending<P>>,
    pub(crate) lost: Vec<Lost<P>>,
    pub(crate) pinned: Vec<P>,
    pub(crate) seen: VecDeque<(MessageId, Time)>,
    pub(crate) store: VecDeque<Stored>,
    pub(crate) missing: VecDeque<Missing<P>>,
    pub(crate) flags: u8,
    /// Exponent of the repair backoff after rejected low-priority requests.
    pub(crate) backoff: u8,
    /// When the pending repair timer fires.
    pub(crate) repair_at: Option<Time>,
    /// Shuffles since the last rotation.
    pub(crate) shuffles: u8,
    /// Most random links (at most `cfg.active_view`; 0 when the topology policy keeps only
    /// pinned links).
    pub(crate) random_limit: usize,
    /// Introducer hints from the application (`peer` is linked to `via`), newest last; at
    /// most `passive_view` entries.
    pub(crate) hints: Vec<(P, P)>,
}

impl<P: PeerId> State<P> {
    /// A node `me` with no neighbours. `cfg` should have passed [`Config::validate`]; it is
    /// shared so a million simulated nodes need one copy.
    pub fn new(me: P, cfg: Arc<Config>) -> Self {
        Self {
            cfg,
            me,
            active: Vec::new(),
            passive: Vec::new(),
            pending: Vec::new(),
            lost: Vec::new(),
            pinned: Vec::new(),
            seen: VecDeque::new(),
            store: VecDeque::new(),
            missing: VecDeque::new(),
            flags: 0,
            backoff: 0,
            repair_at: None,
            shuffles: 0,
            random_limit: usize::MAX,
            hints: Vec::new(),
        }
    }

    /// This node's id.
    pub fn me(&self) -> P {
        self.me
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Arms the periodic timers. Called by [`State::join`]; call it directly on the first
    /// node of a network (which joins nobody).
    pub fn start<R: Rng + ?Sized>(&mut self, now: Time, rng: &mut R, io: &mut impl Io<P>) {
        if self.flags & (STARTED | LEFT) == 0 {
            self.flags |= STARTED;
            let at = now + super::membership::jitter(self.cfg.shuffle_interval, rng);
            super::timer(io, at, Timer::Shuffle);
        }
    }

    /// Joins the network through `contact`, a member the driver already has a link to
    /// (for example the inviter, right after the join proof).
    pub fn join<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        contact: P,
        rng: &mut R,
        io: &mut impl Io<P>,
    ) {
        if self.flags & LEFT != 0 || contact == self.me {
            return;
        }
        self.start(now, rng, io);
        self.pending.retain(|p| p.peer != contact);
        self.push_pending(now, contact, Priority::High, false, true, io);
        super::send(io, contact, Message::Join);
    }

    /// Broadcasts `payload` under `id` (the caller derives the id; see [`MessageId`]).
    /// Returns `false` if the id was already seen (nothing is sent).
    pub fn broadcast(
        &mut self,
        now: Time,
        id: MessageId,
        payload: Bytes,
        io: &mut impl Io<P>,
    ) -> bool {
        if self.flags & LEFT != 0 {
            return false;
        }
        self.originate(now, id, payload, io)
    }

    /// Handles a message from `from`. The caller has authenticated `from` and admitted it.
    pub fn handle_message<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        from: P,
        message: Message<P>,
        rng: &mut R,
        io: &mut impl Io<P>,
    ) {
        if self.flags & LEFT != 0 || from == self.me {
            return;
        }
        if message.needs_link() && !self.is_active(from) {
            // Not (or no longer) a neighbour: say so, keep no state (restores symmetry).
            super::send(io, from, Message::Disconnect { alive: true });
            return;
        }
        match message {
            Message::Gossip { id, round, payload } => {
                self.on_gossip(now, from, id, round, payload, io)
            }
            Message::IHave { entries } => self.on_ihave(now, from, &entries, io),
            Message::Graft { id, round } => self.on_graft(from, id, round, io),
            Message::Prune => self.set_eager(from, false),
            other => self.on_membership(now, from, other, rng, io),
        }
    }

    /// Handles a timer the core armed earlier.
    pub fn handle_timer<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        timer: Timer<P>,
        rng: &mut R,
        io: &mut impl Io<P>,
    ) {
        if self.flags & LEFT != 0 {
            return;
        }
        match timer {
            Timer::Shuffle => self.on_shuffle_timer(now, rng, io),
            Timer::Repair => self.on_repair_timer(now, rng, io),
            Timer::Heal => self.on_heal_timer(now, io),
            Timer::Expire => self.on_expire_timer(now, io),
            Timer::DialTimeout(p) => self.on_dial_timeout(now, p, rng, io),
            Timer::Graft(id) => self.on_graft_timer(now, id, io),
        }
    }

    /// The driver could not reach `peer`, or lost its link to it.
    pub fn link_failed<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        peer: P,
        reason: LinkFailure,
        rng: &mut R,
        io: &mut impl Io<P>,
    ) {
        if self.flags & LEFT == 0 {
            self.on_link_failed(now, peer, reason, rng, io);
        }
    }

    /// The driver established a link to `peer` after a [`super::Event::PunchNow`].
    pub fn link_up(&mut self, now: Time, peer: P, io: &mut impl Io<P>) {
        if self.flags & LEFT == 0 {
            self.on_link_up(now, peer, io);
        }
    }

    /// Records the round-trip time the driver measured on the link to `peer`.
    pub fn set_rtt(&mut self, peer: P, rtt: core::time::Duration) {
        if let Some(a) = self.active.iter_mut().find(|a| a.peer == peer) {
            a.rtt_ms = u16::try_from(rtt.as_millis()).unwrap_or(u16::MAX);
        }
    }

    /// The links the topology policy wants (at most `max_pinned`). They are dialled with
    /// [`Priority::Pinned`], never evicted for random links, and kept until unpinned.
    pub fn set_pinned(&mut self, now: Time, peers: &[P], io: &mut impl Io<P>) {
        if self.flags & LEFT != 0 {
            return;
        }
        self.pinned.clear();
        for &p in peers {
            if p != self.me && !self.pinned.contains(&p) && self.pinned.len() < self.cfg.max_pinned
            {
                self.pinned.push(p);
            }
        }
        let mut unpinned = Vec::new();
        for a in &mut self.active {
            let want = self.pinned.contains(&a.peer);
            if a.pin_local && !want {
                unpinned.push(a.peer);
            }
            a.pin_local = want;
        }
        // Tell each neighbour we no longer pin its link (it keeps it only if it pins it
        // itself or has random budget for it); restate pins of links we keep pinned.
        for &p in &unpinned {
            super::send(
                io,
                p,
                Message::Neighbor {
                    priority: Priority::Low,
                },
            );
        }
        // Links we no longer pin become random ones; drop those over the random budget.
        for p in unpinned {
            if self.random_count() > self.random_view()
                && let Some(i) = self.active_index(p)
                && !self.active[i].pinned()
            {
                self.remove_active(i, io);
                super::send(io, p, Message::Disconnect { alive: true });
                self.add_passive_plain(p, None);
            }
        }
        self.backoff = 0;
        self.arm_repair(now, io);
    }

    /// Removes `peer` everywhere (for example after its credential was revoked). The link,
    /// if any, is dropped without a goodbye.
    pub fn forget(&mut self, peer: P, io: &mut impl Io<P>) {
        if let Some(i) = self.active_index(peer) {
            self.remove_active(i, io);
        }
        self.passive.retain(|p| p.peer != peer);
        for p in &mut self.passive {
            if p.via == Some(peer) {
                p.via = None;
            }
        }
        self.pending.retain(|p| p.peer != peer);
        self.lost.retain(|l| l.peer != peer);
        self.pinned.retain(|p| *p != peer);
        self.missing.retain(|m| m.from != peer);
        self.hints.retain(|h| h.0 != peer && h.1 != peer);
    }

    /// Leaves the network: DISCONNECT (for good) to every neighbour, then ignore all input.
    pub fn leave(&mut self, io: &mut impl Io<P>) {
        for a in core::mem::take(&mut self.active) {
            super::send(io, a.peer, Message::Disconnect { alive: false });
            super::event(io, super::Event::NeighborDown(a.peer));
        }
        *self = Self {
            flags: LEFT,
            ..Self::new(self.me, self.cfg.clone())
        };
    }

    /// Whether our JOIN through `contact` is still unanswered.
    pub fn is_joining(&self, contact: P) -> bool {
        self.pending.iter().any(|p| p.peer == contact && p.join)
    }

    /// Whether the broadcast `id` was already seen (delivered or originated here).
    pub fn has_seen(&self, id: MessageId) -> bool {
        self.seen.iter().rev().any(|(s, _)| *s == id)
    }

    /// Whether [`State::leave`] was called.
    pub fn has_left(&self) -> bool {
        self.flags & LEFT != 0
    }

    /// The active view (linked neighbours), random and pinned.
    pub fn active_view(&self) -> impl Iterator<Item = P> + '_ {
        self.active.iter().map(|a| a.peer)
    }

    /// The number of active neighbours.
    pub fn active_len(&self) -> usize {
        self.active.len()
    }

    /// The passive view.
    pub fn passive_view(&self) -> impl Iterator<Item = P> + '_ {
        self.passive.iter().map(|p| p.peer)
    }

    /// Whether `peer` is an active neighbour.
    pub fn is_active(&self, peer: P) -> bool {
        self.active.iter().any(|a| a.peer == peer)
    }

    /// Whether `peer` is known (active, passive, pending or lost): the peers whose records
    /// an authenticated wrapper must keep.
    pub fn knows(&self, peer: P) -> bool {
        self.is_active(peer)
            || self.passive.iter().any(|p| p.peer == peer)
            || self.pending.iter().any(|p| p.peer == peer)
            || self.lost.iter().any(|l| l.peer == peer)
            || self.pinned.contains(&peer)
    }

    /// Whether the Plumtree link to `peer` is eager (part of the broadcast tree).
    pub fn is_eager(&self, peer: P) -> bool {
        self.active.iter().any(|a| a.peer == peer && a.eager)
    }

    /// How the link to `peer` is pinned: (by this node's policy, by the peer's), if it is
    /// an active neighbour.
    pub fn pins(&self, peer: P) -> Option<(bool, bool)> {
        self.active
            .iter()
            .find(|a| a.peer == peer)
            .map(|a| (a.pin_local, a.pin_remote))
    }

    /// Whether the pinned topology links this node asked for.
    pub fn pinned_peers(&self) -> &[P] {
        &self.pinned
    }

    /// Whether the link to `peer` is pinned by either side's topology policy.
    pub fn is_pinned(&self, peer: P) -> bool {
        self.active.iter().any(|a| a.peer == peer && a.pinned())
    }

    /// Bytes of heap this state holds (capacities, not lengths): for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        use core::mem::size_of;
        self.active.capacity() * size_of::<Active<P>>()
            + self.passive.capacity() * size_of::<Passive<P>>()
            + self.pending.capacity() * size_of::<Pending<P>>()
            + self.lost.capacity() * size_of::<Lost<P>>()
            + self.pinned.capacity() * size_of::<P>()
            + self.seen.capacity() * size_of::<(MessageId, Time)>()
            + self.store.capacity() * size_of::<Stored>()
            + self.missing.capacity() * size_of::<Missing<P>>()
    }

    /// Limits the random (HyParView) links to `limit` (at most the configured
    /// `active_view`); 0 keeps only the pinned topology links. Random links over the limit
    /// are dropped (DISCONNECT) once at least one pinned link is up, so the node is never
    /// cut off by the switch.
    pub fn set_random_limit(&mut self, now: Time, limit: usize, io: &mut impl Io<P>) {
        self.random_limit = limit;
        self.trim_random(io);
        self.arm_repair(now, io);
    }

    /// The random-link budget in force: `active_view`, capped by the topology's limit —
    /// but while the pinned links do not yet carry the node (fewer than two of them up,
    /// or fewer than it wants), up to two random links keep it in the overlay.
    pub fn random_view(&self) -> usize {
        let limit = self.cfg.active_view.min(self.random_limit);
        if limit < 2 && !self.pins_carry() {
            return self.cfg.active_view.min(2);
        }
        limit
    }

    /// Whether the pinned links are enough to keep this node in the overlay: two of them,
    /// or all it wants when it wants fewer.
    pub(crate) fn pins_carry(&self) -> bool {
        let up = self.pinned_count();
        up >= 2 || (up >= 1 && up >= self.pinned.len())
    }

    /// Drops random links over the budget while pinned links carry the node.
    pub(crate) fn trim_random(&mut self, io: &mut impl Io<P>) {
        while self.pins_carry() && self.random_count() > self.random_view() {
            let Some(i) = self.active.iter().position(|a| !a.pinned()) else {
                break;
            };
            let peer = self.active[i].peer;
            self.remove_active(i, io);
            super::send(io, peer, Message::Disconnect { alive: true });
            self.add_passive_plain(peer, None);
        }
    }

    /// Tells the core that `peer` is linked to `via` (learned outside the protocol, e.g.
    /// from a member's announced neighbours): when a direct link to `peer` fails, `via`
    /// can introduce. Bounded by `passive_view`; the oldest hint goes first.
    pub fn hint_via(&mut self, peer: P, via: P) {
        if peer == via || peer == self.me || via == self.me {
            return;
        }
        self.hints.retain(|h| *h != (peer, via));
        if self.hints.len() >= self.cfg.passive_view {
            self.hints.remove(0);
        }
        self.hints.push((peer, via));
    }

    pub(crate) fn active_index(&self, peer: P) -> Option<usize> {
        self.active.iter().position(|a| a.peer == peer)
    }

    pub(crate) fn random_count(&self) -> usize {
        self.active.iter().filter(|a| !a.pinned()).count()
    }

    /// How many pinned topology links are up.
    pub fn pinned_count(&self) -> usize {
        self.active.iter().filter(|a| a.pinned()).count()
    }

    pub(crate) fn set_eager(&mut self, peer: P, eager: bool) {
        if let Some(a) = self.active.iter_mut().find(|a| a.peer == peer) {
            a.eager = eager;
        }
    }

    pub(crate) fn push_pending(
        &mut self,
        now: Time,
        peer: P,
        priority: Priority,
        heal: bool,
        join: bool,
        io: &mut impl Io<P>,
    ) {
        let deadline = now + self.cfg.neighbor_timeout;
        self.pending.push(Pending {
            peer,
            priority,
            deadline,
            introducing: false,
            heal,
            join,
            tries: 1,
        });
        super::timer(io, deadline, Timer::DialTimeout(peer));
    }
}
