//! The member directory: the verified records of the members this node knows, who each
//! says it is linked to, and when it was last heard of. Fed by HELLO frames, MEMBERS
//! lists, ANNOUNCE broadcasts and the gossip views; bounded by
//! [`crate::NetworkConfig::max_members`] (the least recently heard entry makes room).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use in8_artifact::{NodeId, Timestamp};
use in8_gossip::SignedPeerRecord;

/// One known member.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) record: SignedPeerRecord,
    /// The overlay neighbours it announced.
    pub(crate) neighbours: Vec<NodeId>,
    pub(crate) heard: Instant,
    /// Heard of within the silence timeout and not left.
    pub(crate) online: bool,
}

/// What an update did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// A member not known before.
    New,
    /// A member that was offline is back.
    Back,
    /// Known and online: refreshed.
    Refreshed,
    /// An older record than the one held: ignored.
    Stale,
}

/// The directory.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    entries: BTreeMap<NodeId, Entry>,
    cap: usize,
    /// Something a topology decision depends on changed since the last look.
    pub(crate) changed: bool,
}

impl Directory {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            entries: BTreeMap::new(),
            cap: cap.max(1),
            changed: true,
        }
    }

    /// Stores a verified record (and the neighbours an announcement listed).
    pub(crate) fn upsert(
        &mut self,
        now: Instant,
        record: &SignedPeerRecord,
        neighbours: Option<Vec<NodeId>>,
    ) -> Change {
        let id = record.node();
        if let Some(e) = self.entries.get_mut(&id) {
            if e.record.record().seq > record.record().seq {
                return Change::Stale;
            }
            if e.record.record().seq < record.record().seq {
                e.record = record.clone();
                self.changed = true;
            }
            if let Some(n) = neighbours {
                e.neighbours = n;
            }
            e.heard = now;
            let back = !e.online;
            e.online = true;
            if back {
                self.changed = true;
                return Change::Back;
            }
            return Change::Refreshed;
        }
        if self.entries.len() >= self.cap {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| (e.online, e.heard))
                .map(|(id, _)| *id);
            if let Some(o) = oldest {
                self.entries.remove(&o);
            }
        }
        self.entries.insert(
            id,
            Entry {
                record: record.clone(),
                neighbours: neighbours.unwrap_or_default(),
                heard: now,
                online: true,
            },
        );
        self.changed = true;
        Change::New
    }

    /// Marks a member heard of (traffic on a link from it).
    pub(crate) fn heard(&mut self, now: Instant, id: &NodeId) -> bool {
        match self.entries.get_mut(id) {
            Some(e) => {
                e.heard = now;
                let back = !e.online;
                e.online = true;
                if back {
                    self.changed = true;
                }
                back
            }
            None => false,
        }
    }

    /// Marks a member as gone (it announced its leave). Returns whether it was online.
    pub(crate) fn left(&mut self, id: &NodeId) -> bool {
        match self.entries.get_mut(id) {
            Some(e) if e.online => {
                e.online = false;
                self.changed = true;
                true
            }
            _ => false,
        }
    }

    /// Forgets a member (revoked).
    pub(crate) fn remove(&mut self, id: &NodeId) -> bool {
        let r = self.entries.remove(id).is_some();
        self.changed |= r;
        r
    }

    /// Marks offline the members not heard of for `after`; returns them.
    pub(crate) fn silence(&mut self, now: Instant, after: Duration) -> Vec<NodeId> {
        let mut out = Vec::new();
        for (id, e) in &mut self.entries {
            if e.online && now.saturating_duration_since(e.heard) > after {
                e.online = false;
                out.push(*id);
            }
        }
        self.changed |= !out.is_empty();
        out
    }

    /// Forgets members whose record or credential expired; returns them.
    pub(crate) fn expire(&mut self, wall: Timestamp, skew: Duration) -> Vec<NodeId> {
        let gone: Vec<NodeId> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                let r = e.record.record();
                wall >= r.expires.min(r.credential.membership().expires) + skew
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &gone {
            self.entries.remove(id);
        }
        self.changed |= !gone.is_empty();
        gone
    }

    pub(crate) fn get(&self, id: &NodeId) -> Option<&Entry> {
        self.entries.get(id)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&NodeId, &Entry)> + '_ {
        self.entries.iter()
    }

    pub(crate) fn online(&self) -> impl Iterator<Item = (&NodeId, &Entry)> + '_ {
        self.entries.iter().filter(|(_, e)| e.online)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use in8_gossip::fixtures::record;

    #[test]
    fn bounded_newest_seq_wins_and_silence_marks_offline() {
        let t0 = Instant::now();
        let mut d = Directory::new(2);
        assert_eq!(d.upsert(t0, &record(1), None), Change::New);
        assert_eq!(d.upsert(t0, &record(1), None), Change::Refreshed);
        assert_eq!(d.upsert(t0, &record(2), None), Change::New);
        let later = t0 + Duration::from_secs(10);
        assert_eq!(d.silence(later, Duration::from_secs(5)).len(), 2);
        assert_eq!(d.online().count(), 0);
        assert_eq!(d.upsert(later, &record(1), None), Change::Back);
        // Full: the least recently heard offline entry makes room.
        assert_eq!(d.upsert(later, &record(3), None), Change::New);
        assert_eq!(d.iter().count(), 2);
        assert!(d.get(&record(2).node()).is_none());
        assert!(d.remove(&record(1).node()));
        assert!(d.left(&record(3).node()));
        assert!(!d.left(&record(3).node()));
    }
}
