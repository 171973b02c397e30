//! Protocol parameters and the bounds they put on every view, queue and cache.

use core::time::Duration;

use crate::error::{Error, Result};

/// Most peers one list in a message may carry (shuffles, join replies, IHAVE batches).
pub const MAX_LIST: usize = 32;

/// Parameters of the membership (HyParView), broadcast (Plumtree) and introduction
/// protocols. Every size here is a hard bound on the corresponding table; nothing grows
/// past it. [`Config::validate`] checks the ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    // ----- membership (HyParView) -----
    /// Most *random* active links (the HyParView active view; pinned topology links come on
    /// top, see [`Config::max_pinned`]). HyParView uses `fanout + 1`, about `log N + c`:
    /// 5 serves 10^4 to 10^6 nodes. Range 1..=32.
    pub active_view: usize,
    /// Most entries in the passive view (known members that are not linked). Range 1..=256.
    pub passive_view: usize,
    /// Active random walk length: hops a FORWARDJOIN travels (HyParView's ARWL). 1..=16.
    pub active_walk: u8,
    /// The hop at which a FORWARDJOIN also puts the newcomer in the passive view (PRWL).
    pub passive_walk: u8,
    /// Hops a SHUFFLE travels before it is answered. 0..=16.
    pub shuffle_walk: u8,
    /// Active-view entries a SHUFFLE carries (`ka`).
    pub shuffle_active: usize,
    /// Passive-view entries a SHUFFLE carries (`kp`). `1 + ka + kp` ≤ [`MAX_LIST`].
    pub shuffle_passive: usize,
    /// Mean time between two shuffles (each one jittered by ±50 %).
    pub shuffle_interval: Duration,
    /// How long a NEIGHBOR request (including an introduction) may stay unanswered.
    pub neighbor_timeout: Duration,
    /// How often a node whose active view is not full tries a passive peer.
    pub repair_interval: Duration,
    /// Most NEIGHBOR requests in flight at once (an empty active view uses them all).
    pub max_pending: usize,
    /// Most recently lost neighbours remembered for partition healing.
    pub lost_capacity: usize,
    /// First delay before a lost neighbour is probed again (doubled after each failure).
    pub heal_interval: Duration,
    /// Probes of one lost neighbour before it is forgotten.
    pub heal_attempts: u8,
    /// Most pinned (topology) links on top of the random ones. Range 0..=1024.
    pub max_pinned: usize,
    /// Every this many shuffles, a node with a full view replaces one random neighbour by
    /// a random passive peer (high-priority NEIGHBOR). This slow rewiring merges groups
    /// that became separate overlays (lost messages, an old partition) and keeps the
    /// overlay random. 0 disables it.
    pub rotate_every: u8,

    // ----- broadcast (Plumtree) -----
    /// Wait after the first IHAVE for a missing message before GRAFTing its announcer.
    pub graft_timeout: Duration,
    /// Wait between GRAFTs to successive announcers of a still-missing message.
    pub graft_retry: Duration,
    /// Most message ids remembered for duplicate detection.
    pub seen_capacity: usize,
    /// How long a message id is remembered.
    pub seen_ttl: Duration,
    /// Most payloads kept to answer GRAFTs.
    pub payload_capacity: usize,
    /// How long a payload is kept to answer GRAFTs.
    pub payload_ttl: Duration,
    /// Most (message, announcer) pairs remembered from IHAVEs.
    pub missing_capacity: usize,
    /// Largest broadcast payload accepted, in bytes. Range 1..=1 MiB.
    pub max_payload: usize,

    // ----- introductions -----
    /// Slack an introducer adds to the start time it gives both sides.
    pub punch_margin: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            active_view: 5,
            passive_view: 30,
            active_walk: 6,
            passive_walk: 3,
            shuffle_walk: 3,
            shuffle_active: 3,
            shuffle_passive: 4,
            shuffle_interval: Duration::from_secs(10),
            neighbor_timeout: Duration::from_secs(4),
            repair_interval: Duration::from_millis(500),
            max_pending: 3,
            lost_capacity: 8,
            heal_interval: Duration::from_secs(10),
            heal_attempts: 6,
            max_pinned: 16,
            rotate_every: 12,
            graft_timeout: Duration::from_millis(400),
            graft_retry: Duration::from_millis(200),
            seen_capacity: 4096,
            seen_ttl: Duration::from_secs(300),
            payload_capacity: 256,
            payload_ttl: Duration::from_secs(30),
            missing_capacity: 512,
            max_payload: 64 * 1024,
            punch_margin: Duration::from_millis(50),
        }
    }
}

impl Config {
    /// Checks every range documented on the fields.
    pub fn validate(&self) -> Result<()> {
        let check = |ok: bool, field: &'static str, range: &'static str| {
            if ok {
                Ok(())
            } else {
                Err(Error::BadConfig { field, range })
            }
        };
        check(
            (1..=32).contains(&self.active_view),
            "active_view",
            "1..=32",
        )?;
        check(
            (1..=256).contains(&self.passive_view),
            "passive_view",
            "1..=256",
        )?;
        check(
            (1..=16).contains(&self.active_walk),
            "active_walk",
            "1..=16",
        )?;
        check(
            self.passive_walk <= self.active_walk,
            "passive_walk",
            "0..=active_walk",
        )?;
        check(self.shuffle_walk <= 16, "shuffle_walk", "0..=16")?;
        check(
            1 + self.shuffle_active + self.shuffle_passive <= MAX_LIST,
            "shuffle_active + shuffle_passive",
            "at most MAX_LIST - 1 = 31",
        )?;
        check(
            (1..=16).contains(&self.max_pending),
            "max_pending",
            "1..=16",
        )?;
        check(self.lost_capacity <= 64, "lost_capacity", "0..=64")?;
        check(self.max_pinned <= 1024, "max_pinned", "0..=1024")?;
        check(
            (1..=1 << 20).contains(&self.max_payload),
            "max_payload",
            "1..=1048576",
        )?;
        check(
            self.seen_capacity >= 1 && self.payload_capacity >= 1 && self.missing_capacity >= 1,
            "seen/payload/missing capacity",
            "at least 1",
        )?;
        check(
            !self.shuffle_interval.is_zero()
                && !self.repair_interval.is_zero()
                && !self.heal_interval.is_zero(),
            "intervals",
            "non-zero",
        )?;
        Ok(())
    }
}
