//! # in8-sim
//!
//! A deterministic discrete-event simulator for in8 networks. It drives the real protocol
//! core of in8-gossip (`in8_gossip::proto::State<u32>`: HyParView, Plumtree,
//! introductions) and the in8-topology policies with virtual time, per-link latency, loss, a
//! NAT model (which pairs link directly, which need an introduction, which a relay), churn,
//! crashes, partitions and heals, and measures delivery, RMR, LDH, convergence, view
//! symmetry, isolated nodes, messages and bytes per node, memory per node and events per
//! second. Runs are reproducible from the scenario's seed and reach 10^6 nodes.
//!
//! ```
//! let sc = in8_sim::Scenario::from_toml(r#"
//!     name = "doc"
//!     nodes = 50
//!     duration_s = 20.0
//!     [[events]]
//!     kind = "broadcast"
//!     at_s = 10.0
//!     count = 3
//! "#)?;
//! let report = in8_sim::run(sc)?;
//! assert!(report.broadcasts.iter().all(|b| b.missed == 0));
//! println!("{}", report.table());
//! # Ok::<(), in8_sim::Error>(())
//! ```
//!
//! Scenario files live in `crates/in8-sim/scenarios/`; `cargo xtask sim <name>` runs one in
//! the release profile and writes SVG plots. The model, the metrics and every scenario key
//! are described in `docs/sim.md`.

pub mod core_run;
mod engine;
mod metrics;
mod net;
pub mod plot;
mod report;
mod scenario;
mod topo;

pub use engine::{CONVERGED_SYMMETRY, Sim, Totals};
pub use metrics::{BroadcastReport, Disturbance, Sample};
pub use net::{LatencyModel, Nat, Reach, reach};
pub use report::{Overlay, OverlayNode, Report};
pub use scenario::{Action, GossipParams, Join, Latency, NatMix, Network, Scenario, Topology};
pub use topo::FULL_VIEW_LIMIT;

/// What can go wrong setting up a simulation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The scenario is invalid.
    #[error("invalid scenario: {0}")]
    Scenario(String),
    /// A scenario file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Reads and parses a scenario file.
pub fn load(path: &std::path::Path) -> Result<Scenario, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    Scenario::from_toml(&text)
}

/// Runs a scenario to its end.
pub fn run(scenario: Scenario) -> Result<Report, Error> {
    Ok(Sim::new(scenario)?.run())
}

/// The size of a sample signed peer record (two IPv4 candidates, a depth-1 credential).
pub(crate) fn sample_record_len() -> usize {
    in8_gossip::fixtures::record(1).to_bytes().len()
}

/// The wire size of a message (see `in8_gossip::wire::encoded_len`).
pub(crate) fn wire_len(msg: &in8_gossip::Message<u32>, record_len: usize) -> usize {
    in8_gossip::wire::encoded_len(msg, record_len)
}

/// Peak resident memory of this process (Linux `VmHWM`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
