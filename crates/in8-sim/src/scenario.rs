//! Scenario files (TOML): the network, the protocol parameters and a timeline of events.
//!
//! ```toml
//! name = "steady-100"
//! seed = 7
//! nodes = 100
//! duration_s = 90.0
//!
//! [network]
//! latency = { dist = "uniform", min_ms = 10.0, max_ms = 80.0 }
//!
//! [[events]]
//! kind = "broadcast"
//! at_s = 40.0
//! count = 10
//! ```
//!
//! Every field has a default; docs/sim.md lists them all.

use core::time::Duration;

use serde::Deserialize;

use crate::Error;

/// A whole scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name used in reports and plot file names.
    pub name: String,
    /// One line saying what the scenario shows.
    #[serde(default)]
    pub description: String,
    /// Seed of every random choice (latencies, NATs, protocol randomness, churn).
    #[serde(default = "one")]
    pub seed: u64,
    /// Nodes that join at the start, one every `join.interval_ms`.
    pub nodes: u32,
    /// Simulated time to run, in seconds.
    pub duration_s: f64,
    /// A broadcast counts as on time if delivered within this many seconds.
    #[serde(default = "default_deadline")]
    pub deadline_s: f64,
    /// Seconds between two metric samples (0 = no time series).
    #[serde(default = "default_sample")]
    pub sample_interval_s: f64,
    /// Protocol parameters (overrides of in8-gossip's defaults).
    #[serde(default)]
    pub gossip: GossipParams,
    /// The simulated network.
    #[serde(default)]
    pub network: Network,
    /// How the initial nodes join.
    #[serde(default)]
    pub join: Join,
    /// The timeline.
    #[serde(default)]
    pub events: Vec<Action>,
    /// A topology policy applied on top of the random overlay.
    #[serde(default)]
    pub topology: Option<Topology>,
}

fn one() -> u64 {
    1
}
fn default_sample() -> f64 {
    1.0
}
fn default_deadline() -> f64 {
    2.0
}

/// Overrides of [`in8_gossip::Config`] (milliseconds for durations).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct GossipParams {
    pub active_view: Option<usize>,
    pub passive_view: Option<usize>,
    pub active_walk: Option<u8>,
    pub passive_walk: Option<u8>,
    pub shuffle_walk: Option<u8>,
    pub shuffle_active: Option<usize>,
    pub shuffle_passive: Option<usize>,
    pub shuffle_interval_ms: Option<u64>,
    pub neighbor_timeout_ms: Option<u64>,
    pub repair_interval_ms: Option<u64>,
    pub max_pending: Option<usize>,
    pub lost_capacity: Option<usize>,
    pub heal_interval_ms: Option<u64>,
    pub heal_attempts: Option<u8>,
    pub max_pinned: Option<usize>,
    pub rotate_every: Option<u8>,
    pub graft_timeout_ms: Option<u64>,
    pub graft_retry_ms: Option<u64>,
    pub seen_capacity: Option<usize>,
    pub seen_ttl_ms: Option<u64>,
    pub payload_capacity: Option<usize>,
    pub payload_ttl_ms: Option<u64>,
    pub missing_capacity: Option<usize>,
}

impl GossipParams {
    /// The in8-gossip configuration these overrides give.
    pub fn config(&self) -> Result<in8_gossip::Config, Error> {
        let mut c = in8_gossip::Config::default();
        let ms = Duration::from_millis;
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { c.$f = v; } )* };
        }
        macro_rules! set_ms {
            ($($f:ident => $g:ident),*) => { $( if let Some(v) = self.$f { c.$g = ms(v); } )* };
        }
        set!(
            active_view,
            passive_view,
            active_walk,
            passive_walk,
            shuffle_walk,
            shuffle_active,
            shuffle_passive,
            max_pending,
            lost_capacity,
            heal_attempts,
            max_pinned,
            rotate_every,
            seen_capacity,
            payload_capacity,
            missing_capacity
        );
        set_ms!(
            shuffle_interval_ms => shuffle_interval,
            neighbor_timeout_ms => neighbor_timeout,
            repair_interval_ms => repair_interval,
            heal_interval_ms => heal_interval,
            graft_timeout_ms => graft_timeout,
            graft_retry_ms => graft_retry,
            seen_ttl_ms => seen_ttl,
            payload_ttl_ms => payload_ttl
        );
        c.validate().map_err(|e| Error::Scenario(e.to_string()))?;
        Ok(c)
    }
}

/// The simulated network.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Per-link one-way latency distribution (each link draws once; no reordering).
    #[serde(default)]
    pub latency: Latency,
    /// Probability that a message is lost.
    #[serde(default)]
    pub loss: f64,
    /// How long after sending to a crashed or partitioned peer the sender notices, in ms.
    #[serde(default = "default_detect")]
    pub detect_ms: u64,
    /// How long a failed direct dial takes to fail, in ms.
    #[serde(default = "default_dial")]
    pub dial_timeout_ms: u64,
    /// Whether pairs that cannot punch may use a relay (one extra hop of latency).
    #[serde(default)]
    pub relay: bool,
    /// The mix of NAT behaviours.
    #[serde(default)]
    pub nat: NatMix,
    /// Bytes of a signed peer record on the wire (for byte counts); 0 = the size of a
    /// sample record with two IPv4 candidates and a depth-1 credential.
    #[serde(default)]
    pub record_bytes: usize,
}

fn default_detect() -> u64 {
    500
}
fn default_dial() -> u64 {
    2000
}

impl Default for Network {
    fn default() -> Self {
        Self {
            latency: Latency::default(),
            loss: 0.0,
            detect_ms: default_detect(),
            dial_timeout_ms: default_dial(),
            relay: false,
            nat: NatMix::default(),
            record_bytes: 0,
        }
    }
}

/// A latency distribution, in milliseconds.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "dist", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Latency {
    /// Every link has the same latency.
    Constant {
        /// Latency.
        ms: f64,
    },
    /// Uniform in `[min_ms, max_ms)`.
    Uniform {
        /// Lower bound.
        min_ms: f64,
        /// Upper bound.
        max_ms: f64,
    },
    /// Log-normal with the given median and shape (σ of the underlying normal), capped.
    LogNormal {
        /// Median.
        median_ms: f64,
        /// σ of ln(latency).
        sigma: f64,
        /// Cap.
        max_ms: f64,
    },
}

impl Default for Latency {
    fn default() -> Self {
        Latency::Uniform {
            min_ms: 10.0,
            max_ms: 100.0,
        }
    }
}

/// Fractions of nodes per NAT behaviour (normalised; default all public).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct NatMix {
    #[serde(default)]
    pub public: f64,
    #[serde(default)]
    pub full_cone: f64,
    #[serde(default)]
    pub restricted: f64,
    #[serde(default)]
    pub port_restricted: f64,
    #[serde(default)]
    pub symmetric: f64,
}

impl Default for NatMix {
    fn default() -> Self {
        Self {
            public: 1.0,
            full_cone: 0.0,
            restricted: 0.0,
            port_restricted: 0.0,
            symmetric: 0.0,
        }
    }
}

/// How the initial nodes join.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Join {
    /// Milliseconds between two joins (fractions allowed).
    #[serde(default = "default_join_interval")]
    pub interval_ms: f64,
    /// Contact choice: `random` (a random member already in) or `first` (node 0).
    #[serde(default = "default_contact")]
    pub contact: String,
}

fn default_join_interval() -> f64 {
    10.0
}
fn default_contact() -> String {
    "random".into()
}

impl Default for Join {
    fn default() -> Self {
        Self {
            interval_ms: default_join_interval(),
            contact: default_contact(),
        }
    }
}

/// One timeline entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Action {
    /// `count` broadcasts, `interval_s` apart.
    Broadcast {
        /// Start time.
        at_s: f64,
        /// How many.
        #[serde(default = "one_u32")]
        count: u32,
        /// Seconds between two.
        #[serde(default = "one_f64")]
        interval_s: f64,
        /// `random` (a random live member each time) or `fixed` (one sender for all).
        #[serde(default = "default_from")]
        from: String,
        /// Payload size.
        #[serde(default = "default_payload")]
        payload_bytes: usize,
    },
    /// Crash a fraction of the live nodes at once (no goodbye).
    Kill {
        /// When.
        at_s: f64,
        /// Fraction of live nodes.
        fraction: f64,
    },
    /// A fraction of the live nodes leave gracefully (DISCONNECT).
    Leave {
        /// When.
        at_s: f64,
        /// Fraction of live nodes.
        fraction: f64,
    },
    /// Split the live nodes into `groups` random groups that cannot reach each other.
    Partition {
        /// When.
        at_s: f64,
        /// Number of groups.
        #[serde(default = "two")]
        groups: u8,
    },
    /// End the partition.
    Heal {
        /// When.
        at_s: f64,
    },
    /// Poisson joins, graceful leaves and crashes between `at_s` and `until_s`.
    Churn {
        /// Start.
        at_s: f64,
        /// End.
        until_s: f64,
        /// New nodes per second.
        #[serde(default)]
        joins_per_s: f64,
        /// Graceful leaves per second.
        #[serde(default)]
        leaves_per_s: f64,
        /// Crashes per second.
        #[serde(default)]
        crashes_per_s: f64,
    },
}

fn one_u32() -> u32 {
    1
}
fn one_f64() -> f64 {
    1.0
}
fn two() -> u8 {
    2
}
fn default_from() -> String {
    "random".into()
}
fn default_payload() -> usize {
    256
}

impl Action {
    /// When the action starts, in seconds.
    pub fn at_s(&self) -> f64 {
        match self {
            Action::Broadcast { at_s, .. }
            | Action::Kill { at_s, .. }
            | Action::Leave { at_s, .. }
            | Action::Partition { at_s, .. }
            | Action::Heal { at_s }
            | Action::Churn { at_s, .. } => *at_s,
        }
    }
}

/// A topology policy the simulator applies to every node periodically.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// `mesh`, `star`, `tree`, `dag`, `hierarchical`, `random`, `hybrid` or `auto`.
    pub policy: String,
    /// Seconds between two evaluations.
    #[serde(default = "default_topo_interval")]
    pub interval_s: f64,
    /// Hubs (star).
    #[serde(default = "default_hubs")]
    pub hubs: usize,
    /// Children per node (tree) / parents per node (dag).
    #[serde(default = "default_fanout")]
    pub fanout: usize,
    /// Core size (hierarchical).
    #[serde(default = "default_core")]
    pub core: usize,
    /// Core nodes each other node attaches to (hierarchical, ≥ 2).
    #[serde(default = "two_usize")]
    pub attach: usize,
}

fn default_topo_interval() -> f64 {
    5.0
}
fn default_hubs() -> usize {
    2
}
fn default_fanout() -> usize {
    3
}
fn default_core() -> usize {
    8
}
fn two_usize() -> usize {
    2
}

impl Scenario {
    /// Parses a scenario from TOML text.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let s: Scenario = toml::from_str(text).map_err(|e| Error::Scenario(e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    /// Checks ranges the types cannot express.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::Scenario(m.to_owned()));
        if self.nodes == 0 {
            return bad("nodes must be at least 1");
        }
        if self.duration_s.is_nan() || self.duration_s <= 0.0 {
            return bad("duration_s must be positive");
        }
        if !(0.0..=1.0).contains(&self.network.loss) {
            return bad("network.loss must be within 0..=1");
        }
        if self.join.interval_ms.is_nan() || self.join.interval_ms < 0.0 {
            return bad("join.interval_ms must not be negative");
        }
        for a in &self.events {
            match a {
                Action::Kill { fraction, .. } | Action::Leave { fraction, .. }
                    if !(0.0..=1.0).contains(fraction) =>
                {
                    return bad("fraction must be within 0..=1");
                }
                Action::Partition { groups, .. } if *groups < 2 => {
                    return bad("a partition needs at least 2 groups");
                }
                _ => {}
            }
        }
        self.gossip.config()?;
        Ok(())
    }
}
