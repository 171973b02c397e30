//! Outgoing: the core's output becomes frames, timers and events.

use in8_artifact::NodeId;

use super::{Event, Gossip};
use crate::Time;
use crate::proto::{self, Message, OutEvent};
use crate::record::SignedPeerRecord;
use crate::wire::{Envelope, Frame};

impl Gossip {
    fn rec(&self, id: &NodeId) -> Option<SignedPeerRecord> {
        if *id == self.me {
            Some(self.record.clone())
        } else {
            self.records.get(id).cloned()
        }
    }

    fn recs(&self, ids: &[NodeId]) -> Vec<SignedPeerRecord> {
        ids.iter().filter_map(|i| self.rec(i)).collect()
    }

    /// The frame for a core message, or `None` when a record it needs is gone.
    fn frame(&self, message: Message<NodeId>) -> Option<Frame> {
        let me = || self.record.clone();
        Some(match message {
            Message::Join => Frame::Join { record: me() },
            Message::JoinReply { active, passive } => Frame::JoinReply {
                contact: me(),
                active: self.recs(&active),
                passive: self.recs(&passive),
            },
            Message::ForwardJoin { peer, ttl } => Frame::ForwardJoin {
                ttl,
                record: self.rec(&peer)?,
            },
            Message::Neighbor { priority } => Frame::Neighbor {
                priority,
                record: me(),
            },
            Message::NeighborReply { accepted } => Frame::NeighborReply { accepted },
            Message::Disconnect { alive } => Frame::Disconnect { alive },
            Message::Shuffle {
                origin,
                ttl,
                active,
                passive,
            } => Frame::Shuffle {
                ttl,
                origin: self.rec(&origin)?,
                active: self.recs(&active),
                passive: self.recs(&passive),
            },
            Message::ShuffleReply { peers } => Frame::ShuffleReply {
                replier: me(),
                peers: self.recs(&peers),
            },
            Message::Gossip { round, payload, .. } => Frame::Gossip {
                round,
                envelope: payload.to_vec(),
            },
            Message::IHave { entries } => Frame::IHave { entries },
            Message::Graft { id, round } => Frame::Graft { id, round },
            Message::Prune => Frame::Prune,
            Message::IntroRequest { target, token } => Frame::IntroRequest {
                target,
                token,
                offer: me(),
            },
            Message::Introduce {
                peer,
                delay_ms,
                token,
            } => Frame::Introduce {
                delay_ms,
                token,
                offer: self.rec(&peer)?,
            },
            Message::IntroUnavailable { target } => Frame::IntroUnavailable { target },
        })
    }

    /// Drains the core's output: encode frames, keep timers, translate events. Then drops
    /// the records of peers the core forgot.
    pub(super) fn drain(&mut self, _now: Time) {
        let mut out = core::mem::take(&mut self.out);
        let mut i = 0;
        while i < out.len() {
            let o = out[i].clone();
            i += 1;
            match o {
                OutEvent::Send { to, message } => {
                    if let Some(f) = self.frame(message) {
                        self.push_transmit(to, f.encode());
                    }
                }
                OutEvent::Timer { at, timer } => {
                    if self.timers.len() < super::MAX_QUEUED {
                        self.timers.push((at, timer));
                    } else {
                        self.dropped += 1;
                    }
                }
                OutEvent::Event(e) => self.translate(e),
            }
            // Events may have produced more core output (revocations); take it too.
            out.append(&mut self.out);
        }
        out.clear();
        self.out = out;
        if self.core.has_left() {
            // Nothing runs after leaving: no timers to fire.
            self.timers.clear();
        }
        self.gc_records();
    }

    fn translate(&mut self, e: proto::Event<NodeId>) {
        match e {
            proto::Event::NeighborUp(p) => {
                if !self.recent.is_empty() {
                    let records = self.recent.iter().cloned().collect();
                    self.push_transmit(p, Frame::Revocations { records }.encode());
                }
                self.push_event(Event::NeighborUp(p));
            }
            proto::Event::NeighborDown(p) => self.push_event(Event::NeighborDown(p)),
            proto::Event::Delivered {
                payload,
                from,
                hops,
                ..
            } => match Envelope::decode(&payload) {
                Ok(Envelope::App {
                    origin,
                    seq,
                    payload,
                    ..
                }) => self.push_event(Event::Received {
                    origin,
                    seq,
                    payload,
                    from,
                    hops,
                }),
                // Revocations were applied when they arrived.
                Ok(Envelope::Revocation(_)) | Err(_) => {}
            },
            proto::Event::PunchNow {
                peer,
                delay,
                introducer,
                token,
            } => {
                if let Some(offer) = self.records.get(&peer).cloned() {
                    self.push_event(Event::PunchNow {
                        peer,
                        offer,
                        delay,
                        introducer,
                        token,
                    });
                }
            }
            proto::Event::JoinFailed { contact } => self.push_event(Event::JoinFailed { contact }),
        }
    }
}
