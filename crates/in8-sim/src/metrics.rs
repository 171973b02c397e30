//! What the simulator measures: per-broadcast delivery, time series, convergence.

use core::time::Duration;

use in8_gossip::Time;

/// Delivery of one broadcast.
#[derive(Clone, Debug)]
pub(crate) struct Track {
    pub(crate) id: u64,
    pub(crate) origin: u32,
    pub(crate) at: Time,
    /// Nodes alive and joined when it was sent (bitset).
    pub(crate) eligible: Vec<u64>,
    pub(crate) got: Vec<u64>,
    /// Delivered within the scenario's deadline (bitset).
    pub(crate) on_time: Vec<u64>,
    pub(crate) deadline: Time,
    pub(crate) delivered: u32,
    pub(crate) payload_msgs: u64,
    pub(crate) max_hops: u16,
    pub(crate) last: Time,
}

fn bit(v: &[u64], i: u32) -> bool {
    v.get(i as usize / 64)
        .is_some_and(|w| w & (1 << (i % 64)) != 0)
}

fn set(v: &mut [u64], i: u32) {
    if let Some(w) = v.get_mut(i as usize / 64) {
        *w |= 1 << (i % 64);
    }
}

impl Track {
    pub(crate) fn new(
        id: u64,
        origin: u32,
        at: Time,
        deadline: Time,
        n: usize,
        eligible: &[u32],
    ) -> Self {
        let words = n.div_ceil(64);
        let mut e = vec![0u64; words];
        for &i in eligible {
            set(&mut e, i);
        }
        let mut got = vec![0u64; words];
        set(&mut got, origin);
        Self {
            id,
            origin,
            at,
            eligible: e,
            on_time: got.clone(),
            deadline,
            got,
            delivered: 0,
            payload_msgs: 0,
            max_hops: 0,
            last: at,
        }
    }

    pub(crate) fn delivered(&mut self, node: u32, hops: u16, now: Time) {
        if bit(&self.got, node) {
            return;
        }
        set(&mut self.got, node);
        if now <= self.deadline {
            set(&mut self.on_time, node);
        }
        self.delivered += 1;
        // Nodes that joined after the send may catch up later (IHAVE on link-up); the
        // hop and latency figures describe the members it was sent to.
        if self.eligible(node) {
            self.max_hops = self.max_hops.max(hops);
            self.last = self.last.max(now);
        }
    }

    pub(crate) fn eligible(&self, i: u32) -> bool {
        bit(&self.eligible, i)
    }

    pub(crate) fn got(&self, i: u32) -> bool {
        bit(&self.got, i)
    }

    pub(crate) fn on_time(&self, i: u32) -> bool {
        bit(&self.on_time, i)
    }
}

/// One broadcast's outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct BroadcastReport {
    /// Sequence number (1 = first broadcast of the run).
    pub id: u64,
    /// Sender.
    pub origin: u32,
    /// When it was sent, seconds.
    pub at_s: f64,
    /// Nodes that were members when it was sent and are still alive at the end.
    pub eligible: u32,
    /// How many of those received it (the origin counts as received).
    pub delivered: u32,
    /// `eligible - delivered`.
    pub missed: u32,
    /// `delivered / eligible`.
    pub reliability: f64,
    /// Fraction of `eligible` that received it within the scenario's `deadline_s`.
    pub on_time: f64,
    /// Relative message redundancy: payload messages / (receivers - 1) - 1.
    pub rmr: f64,
    /// Last delivery hop: the largest hop count of any delivery.
    pub ldh: u16,
    /// Time from sending to the last delivery.
    pub last_delivery: Duration,
}

/// The network's state at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Simulated seconds.
    pub t_s: f64,
    /// Live members.
    pub alive: u32,
    /// Live members with an empty active view.
    pub isolated: u32,
    /// Connected components of the overlay among live members.
    pub components: u32,
    /// Fraction of active-view entries that are reciprocated (1.0 = symmetric).
    pub symmetry: f64,
    /// Mean active-view size.
    pub mean_active: f64,
    /// Mean passive-view size.
    pub mean_passive: f64,
    /// Messages sent so far (all nodes).
    pub messages: u64,
    /// Events processed so far.
    pub events: u64,
}

/// A disturbance and when the overlay converged after it.
#[derive(Clone, Debug, PartialEq)]
pub struct Disturbance {
    /// What happened.
    pub what: &'static str,
    /// When, seconds.
    pub at_s: f64,
    /// Seconds until a sample showed one component, no isolated node and view symmetry of
    /// at least [`crate::CONVERGED_SYMMETRY`].
    pub converged_after_s: Option<f64>,
}

impl Disturbance {
    pub(crate) fn new(what: &'static str, at: Time) -> Self {
        Self {
            what,
            at_s: at.as_duration().as_secs_f64(),
            converged_after_s: None,
        }
    }
}
