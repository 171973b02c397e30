//! Plumtree epidemic broadcast trees (Leitão, Pereira, Rodrigues, SRDS 2007) over the
//! HyParView active view: payloads go eagerly along a spanning tree, announcements (IHAVE)
//! lazily along every other link, and a missing message GRAFTs a lazy link into the tree.

use bytes::Bytes;

use super::state::{EXPIRE_ARMED, Missing, State, Stored};
use super::{Event, Io, Message, MessageId, PeerId, Timer, event, send, timer};
use crate::Time;

impl<P: PeerId> State<P> {
    fn seen(&self, id: MessageId) -> bool {
        self.seen.iter().rev().any(|(s, _)| *s == id)
    }

    fn remember(
        &mut self,
        now: Time,
        id: MessageId,
        round: u16,
        payload: Bytes,
        io: &mut impl Io<P>,
    ) {
        if self.seen.len() >= self.cfg.seen_capacity {
            self.seen.pop_front();
        }
        self.seen.push_back((id, now));
        if self.store.len() >= self.cfg.payload_capacity {
            self.store.pop_front();
        }
        self.store.push_back(Stored {
            id,
            round,
            at: now,
            payload,
        });
        self.missing.retain(|m| m.id != id);
        if self.flags & EXPIRE_ARMED == 0 {
            self.flags |= EXPIRE_ARMED;
            timer(io, now + self.cfg.payload_ttl, Timer::Expire);
        }
    }

    /// Pushes `id` to eager neighbours and announces it to lazy ones, except `from`.
    fn forward(
        &self,
        id: MessageId,
        round: u16,
        payload: &Bytes,
        from: Option<P>,
        io: &mut impl Io<P>,
    ) {
        for a in self.active.iter().filter(|a| Some(a.peer) != from) {
            let message = if a.eager {
                Message::Gossip {
                    id,
                    round,
                    payload: payload.clone(),
                }
            } else {
                Message::IHave {
                    entries: vec![(id, round)],
                }
            };
            send(io, a.peer, message);
        }
    }

    pub(super) fn originate(
        &mut self,
        now: Time,
        id: MessageId,
        payload: Bytes,
        io: &mut impl Io<P>,
    ) -> bool {
        if self.seen(id) {
            return false;
        }
        self.remember(now, id, 0, payload.clone(), io);
        self.forward(id, 0, &payload, None, io);
        true
    }

    pub(super) fn on_gossip(
        &mut self,
        now: Time,
        from: P,
        id: MessageId,
        round: u16,
        payload: Bytes,
        io: &mut impl Io<P>,
    ) {
        if payload.len() > self.cfg.max_payload {
            return;
        }
        if self.seen(id) {
            // "... the sender is moved to the lazy set and a PRUNE message is sent to it."
            if self.is_eager(from) {
                self.set_eager(from, false);
                send(io, from, Message::Prune);
            }
            return;
        }
        let hops = round.saturating_add(1);
        self.remember(now, id, hops, payload.clone(), io);
        // "The sender is added to the eager set" (it is the tree parent for this message).
        self.set_eager(from, true);
        event(
            io,
            Event::Delivered {
                id,
                payload: payload.clone(),
                from,
                hops,
            },
        );
        self.forward(id, hops, &payload, Some(from), io);
    }

    pub(super) fn on_ihave(
        &mut self,
        now: Time,
        from: P,
        entries: &[(MessageId, u16)],
        io: &mut impl Io<P>,
    ) {
        for &(id, round) in entries.iter().take(crate::config::MAX_LIST) {
            if self.seen(id) {
                continue;
            }
            let first = !self.missing.iter().any(|m| m.id == id);
            if self.missing.iter().any(|m| m.id == id && m.from == from) {
                continue;
            }
            if self.missing.len() >= self.cfg.missing_capacity {
                self.missing.pop_front();
            }
            self.missing.push_back(Missing { id, from, round });
            if first {
                // "... it sets a timer ... If the timer expires before the message is
                // received, the node sends a GRAFT to the peer that sent the IHAVE."
                timer(io, now + self.cfg.graft_timeout, Timer::Graft(id));
            }
        }
    }

    pub(super) fn on_graft_timer(&mut self, now: Time, id: MessageId, io: &mut impl Io<P>) {
        if self.seen(id) {
            self.missing.retain(|m| m.id != id);
            return;
        }
        while let Some(i) = self.missing.iter().position(|m| m.id == id) {
            let m = self.missing.remove(i);
            let Some(m) = m else { break };
            if self.is_active(m.from) {
                self.set_eager(m.from, true);
                send(io, m.from, Message::Graft { id, round: m.round });
                if self.missing.iter().any(|x| x.id == id) {
                    timer(io, now + self.cfg.graft_retry, Timer::Graft(id));
                }
                return;
            }
        }
    }

    pub(super) fn on_graft(&mut self, from: P, id: MessageId, _round: u16, io: &mut impl Io<P>) {
        // "... the link is added to the eager set and the message is sent (if available)."
        self.set_eager(from, true);
        if let Some(s) = self.store.iter().rev().find(|s| s.id == id) {
            send(
                io,
                from,
                Message::Gossip {
                    id,
                    round: s.round,
                    payload: s.payload.clone(),
                },
            );
        }
    }

    pub(super) fn on_expire_timer(&mut self, now: Time, io: &mut impl Io<P>) {
        self.flags &= !EXPIRE_ARMED;
        let (seen_ttl, payload_ttl) = (self.cfg.seen_ttl, self.cfg.payload_ttl);
        while self
            .seen
            .front()
            .is_some_and(|(_, t)| now.saturating_since(*t) >= seen_ttl)
        {
            self.seen.pop_front();
        }
        while self
            .store
            .front()
            .is_some_and(|s| now.saturating_since(s.at) >= payload_ttl)
        {
            self.store.pop_front();
        }
        if self.store.is_empty() && self.seen.is_empty() {
            // Give the memory back: a quiet node holds no cache.
            self.store = Default::default();
            self.seen = Default::default();
            self.missing = Default::default();
            return;
        }
        self.flags |= EXPIRE_ARMED;
        let next = self
            .store
            .front()
            .map(|s| s.at + payload_ttl)
            .or_else(|| self.seen.front().map(|(_, t)| *t + seen_ttl))
            .unwrap_or(now + payload_ttl);
        timer(
            io,
            next.max(now + core::time::Duration::from_millis(1)),
            Timer::Expire,
        );
    }
}
