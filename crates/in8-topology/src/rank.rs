//! Deterministic ranking: every node that knows the same members orders them the same way.

use core::hash::{Hash, Hasher};

use crate::policy::{Member, RoleHint};

/// FNV-1a, 64 bit: a fixed, version-independent hash so every node agrees on tie-breaks
/// (std's `DefaultHasher` does not promise a stable algorithm across Rust releases).
pub(crate) struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        // A final avalanche (SplitMix64) so nearby ids do not get nearby hashes.
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// The stable hash of `x`.
pub(crate) fn hash<T: Hash + ?Sized>(x: &T) -> u64 {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    x.hash(&mut h);
    h.finish()
}

/// Rendezvous (highest-random-weight) score of `candidate` for `me`: each node prefers a
/// different subset of equally good candidates, which spreads load without coordination.
pub(crate) fn rendezvous<P: Hash>(me: &P, candidate: &P) -> u64 {
    hash(&(hash(me), hash(candidate)))
}

/// Sorts members best first: declared hubs, then not-leaves, then publicly reachable, then
/// higher capacity, then by a stable hash of the id (spreading roles over the id space),
/// then by id (total order). Keys are computed once per member.
pub(crate) fn sort<P: Ord + Hash + Copy>(members: &mut [&Member<P>]) {
    members.sort_by_cached_key(|m| {
        (
            m.hint != RoleHint::Hub,
            m.hint == RoleHint::Leaf,
            !m.reachable,
            core::cmp::Reverse(m.capacity),
            hash(&m.id),
            m.id,
        )
    });
}
