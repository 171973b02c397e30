//! The event queue: a radix heap over `(time, sequence)` keys with the events in a slab.
//!
//! Simulated time never goes backwards, so a monotone priority queue suffices. A radix heap
//! keeps keys in buckets by the highest bit in which they differ from the last key popped:
//! pushes are O(1), each key moves down at most 128 buckets over its life, and the buckets
//! are plain vectors (cache friendly), unlike a binary heap of large entries, whose pops
//! dominated the profile at 10^5 nodes. Keys are unique (the sequence number breaks ties),
//! so events at the same instant keep their scheduling order: links stay FIFO.

/// A key: simulated microseconds, then a global sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Key {
    pub(crate) at: u64,
    pub(crate) seq: u64,
}

fn bucket(a: Key, last: Key) -> usize {
    let hi = a.at ^ last.at;
    if hi != 0 {
        return 64 + (64 - hi.leading_zeros() as usize);
    }
    let lo = a.seq ^ last.seq;
    if lo != 0 {
        64 - lo.leading_zeros() as usize
    } else {
        0
    }
}

/// A monotone priority queue of `T` ordered by [`Key`].
#[derive(Debug)]
pub(crate) struct Queue<T> {
    last: Key,
    buckets: Vec<Vec<(Key, u32)>>,
    slab: Vec<Option<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Queue<T> {
    pub(crate) fn new() -> Self {
        Self {
            last: Key { at: 0, seq: 0 },
            buckets: (0..129).map(|_| Vec::new()).collect(),
            slab: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes held (slab and buckets, by capacity).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slab.capacity() * core::mem::size_of::<Option<T>>()
            + self
                .buckets
                .iter()
                .map(|b| b.capacity() * core::mem::size_of::<(Key, u32)>())
                .sum::<usize>()
            + self.free.capacity() * 4
    }

    /// Schedules `value` at `key`; a key before the last popped one is moved up to it.
    pub(crate) fn push(&mut self, mut key: Key, value: T) {
        if key < self.last {
            key.at = self.last.at;
            key.seq = key.seq.max(self.last.seq);
        }
        let slot = match self.free.pop() {
            Some(s) => {
                self.slab[s as usize] = Some(value);
                s
            }
            None => {
                self.slab.push(Some(value));
                (self.slab.len() - 1) as u32
            }
        };
        self.buckets[bucket(key, self.last)].push((key, slot));
        self.len += 1;
    }

    /// The smallest key, without removing it.
    pub(crate) fn peek_key(&mut self) -> Option<Key> {
        self.refill()?;
        self.buckets[0].last().map(|(k, _)| *k)
    }

    /// Makes bucket 0 non-empty if the queue is not empty.
    fn refill(&mut self) -> Option<()> {
        if !self.buckets[0].is_empty() {
            return Some(());
        }
        let i = self.buckets.iter().position(|b| !b.is_empty())?;
        let items = core::mem::take(&mut self.buckets[i]);
        let min = items.iter().map(|(k, _)| *k).min()?;
        self.last = min;
        for (k, s) in &items {
            self.buckets[bucket(*k, min)].push((*k, *s));
        }
        // Give the (empty) vector back so its capacity is reused, unless it is large:
        // holding peak capacity in all 129 buckets would cost several times the live size.
        if items.capacity() <= 4096 {
            let mut items = items;
            items.clear();
            self.buckets[i] = items;
        }
        Some(())
    }

    /// Removes the event with the smallest key.
    pub(crate) fn pop(&mut self) -> Option<(Key, T)> {
        self.refill()?;
        let (k, slot) = self.buckets[0].pop()?;
        self.len -= 1;
        let v = self.slab[slot as usize].take()?;
        self.free.push(slot);
        Some((k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn pops_in_key_order_like_a_binary_heap() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let mut q = Queue::new();
        let mut reference = std::collections::BinaryHeap::new();
        let (mut now, mut seq) = (0u64, 0u64);
        for round in 0..20_000 {
            for _ in 0..rng.random_range(0..4) {
                seq += 1;
                let at = now + rng.random_range(0..5_000);
                q.push(Key { at, seq }, round);
                reference.push(core::cmp::Reverse((at, seq, round)));
            }
            if rng.random_bool(0.6) {
                let a = q.pop().map(|(k, v)| (k.at, k.seq, v));
                let b = reference.pop().map(|r| r.0);
                assert_eq!(a, b);
                if let Some((at, _, _)) = a {
                    now = at;
                }
            }
        }
        while let Some(core::cmp::Reverse(b)) = reference.pop() {
            assert_eq!(q.pop().map(|(k, v)| (k.at, k.seq, v)), Some(b));
        }
        assert_eq!(q.len(), 0);
    }
}
