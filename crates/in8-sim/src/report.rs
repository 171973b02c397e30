//! The result of a run, and its text table.

use core::fmt::Write as _;
use core::time::Duration;

use crate::engine::Totals;
use crate::metrics::{BroadcastReport, Disturbance, Sample};
use crate::net::Nat;

/// A node in an overlay drawing.
#[derive(Clone, Debug, PartialEq)]
pub struct OverlayNode {
    /// Index.
    pub id: u32,
    /// Alive and joined.
    pub alive: bool,
    /// NAT behaviour.
    pub nat: Nat,
    /// Partition group.
    pub group: u8,
}

/// The overlay at the end of a run: active links, and whether each is eager (Plumtree
/// tree) and pinned (topology).
#[derive(Clone, Debug, PartialEq)]
pub struct Overlay {
    /// Every node.
    pub nodes: Vec<OverlayNode>,
    /// `(a, b, eager, pinned)` as seen from `a`.
    pub edges: Vec<(u32, u32, bool, bool)>,
}

/// Everything a run measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// Scenario name.
    pub name: String,
    /// Scenario description.
    pub description: String,
    /// Seed.
    pub seed: u64,
    /// Nodes that ever existed.
    pub nodes_total: u32,
    /// Live members at the end.
    pub alive_end: u32,
    /// Simulated seconds.
    pub sim_time_s: f64,
    /// Wall-clock time of the run.
    pub wall: Duration,
    /// Events processed.
    pub events: u64,
    /// Events per wall-clock second.
    pub events_per_s: f64,
    /// One entry per broadcast.
    pub broadcasts: Vec<BroadcastReport>,
    /// The time series.
    pub samples: Vec<Sample>,
    /// The state at the end.
    pub final_sample: Sample,
    /// Disturbances and convergence.
    pub disturbances: Vec<Disturbance>,
    /// Messages sent per node (mean over every node that existed).
    pub msgs_per_node: f64,
    /// Most messages one node sent.
    pub max_msgs_per_node: u32,
    /// Bytes sent per node (wire sizes of in8-gossip's encoding).
    pub bytes_per_node: f64,
    /// Messages per node per simulated second.
    pub msgs_per_node_per_s: f64,
    /// Protocol state per node at the end (struct + heap), bytes.
    pub state_bytes_per_node: f64,
    /// Largest event queue length.
    pub queue_peak: usize,
    /// Peak event queue memory divided by nodes, bytes.
    pub queue_bytes_per_node: f64,
    /// Bytes assumed for one signed peer record.
    pub record_bytes: usize,
    /// Counters.
    pub totals: Totals,
    /// The overlay at the end (networks up to 300 nodes).
    pub overlay: Option<Overlay>,
    /// Topology policy switches of the `auto` policy: (seconds, new stage).
    pub topology_switches: Vec<(f64, String)>,
    /// Largest active view at the end (hubs of a star, core of a hierarchy).
    pub max_active: usize,
    /// Timeline events to mark on plots: (seconds, what), broadcasts excluded.
    pub marks: Vec<(f64, String)>,
}

impl Report {
    /// The broadcast with sequence number `id` (1-based).
    pub fn broadcast(&self, id: u64) -> Option<&BroadcastReport> {
        self.broadcasts.iter().find(|b| b.id == id)
    }

    /// A plain-text table of the run.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "scenario {} (seed {})", self.name, self.seed);
        if !self.description.is_empty() {
            let _ = writeln!(s, "  {}", self.description);
        }
        let _ = writeln!(
            s,
            "nodes {} (alive at end {}), simulated {:.1} s in {:.2} s wall, {} events ({:.0} events/s)",
            self.nodes_total,
            self.alive_end,
            self.sim_time_s,
            self.wall.as_secs_f64(),
            self.events,
            self.events_per_s
        );
        let f = &self.final_sample;
        let _ = writeln!(
            s,
            "end state: components {}, isolated {}, symmetry {:.4}, mean active {:.2}, mean passive {:.2}",
            f.components, f.isolated, f.symmetry, f.mean_active, f.mean_passive
        );
        let _ = writeln!(
            s,
            "per node: {:.1} messages ({:.3}/s, max {}), {:.0} bytes sent; state {:.0} B; event queue peak {} ({:.0} B/node); record {} B",
            self.msgs_per_node,
            self.msgs_per_node_per_s,
            self.max_msgs_per_node,
            self.bytes_per_node,
            self.state_bytes_per_node,
            self.queue_peak,
            self.queue_bytes_per_node,
            self.record_bytes
        );
        let t = &self.totals;
        let _ = writeln!(
            s,
            "links: lost {}, failed (peer down) {}, needed introduction {}, needed relay {}, punches ok {} failed {}, relayed {}",
            t.lost,
            t.failed_closed,
            t.needed_introduction,
            t.needed_relay,
            t.punches_ok,
            t.punches_failed,
            t.relayed
        );
        let kinds: Vec<String> = t
            .by_kind
            .iter()
            .filter(|(_, c)| *c > 0)
            .map(|(k, c)| format!("{k} {c}"))
            .collect();
        let _ = writeln!(s, "messages: {}", kinds.join(", "));
        if !self.topology_switches.is_empty() {
            let sw: Vec<String> = self
                .topology_switches
                .iter()
                .map(|(t, s)| format!("{s} at {t:.1} s"))
                .collect();
            let _ = writeln!(s, "topology (auto): {}", sw.join(", "));
        }
        let _ = writeln!(s, "largest active view at the end: {}", self.max_active);
        if !self.broadcasts.is_empty() {
            let _ = writeln!(
                s,
                "\n| # | at s | origin | eligible | delivered | missed | reliability | on time | RMR | LDH | last delivery ms |"
            );
            let _ = writeln!(
                s,
                "|---|------|--------|----------|-----------|--------|-------------|---------|-----|-----|------------------|"
            );
            for b in &self.broadcasts {
                let _ = writeln!(
                    s,
                    "| {} | {:.1} | {} | {} | {} | {} | {:.4} | {:.4} | {:.3} | {} | {:.0} |",
                    b.id,
                    b.at_s,
                    b.origin,
                    b.eligible,
                    b.delivered,
                    b.missed,
                    b.reliability,
                    b.on_time,
                    b.rmr,
                    b.ldh,
                    b.last_delivery.as_secs_f64() * 1000.0
                );
            }
        }
        if !self.disturbances.is_empty() {
            let _ = writeln!(s, "\n| disturbance | at s | converged after s |");
            let _ = writeln!(s, "|-------------|------|-------------------|");
            for d in &self.disturbances {
                let c = d
                    .converged_after_s
                    .map_or("not within the run".to_owned(), |c| format!("{c:.1}"));
                let _ = writeln!(s, "| {} | {:.1} | {} |", d.what, d.at_s, c);
            }
        }
        s
    }
}
