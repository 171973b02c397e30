//! Sampling the overlay and building the final report.

use core::time::Duration;

use super::{Node, Sim};
use crate::metrics::{BroadcastReport, Sample};
use crate::report::{Overlay, OverlayNode, Report};

/// View symmetry from which the overlay counts as converged: links being set up at the
/// instant of a sample are one-sided for one message latency, so a large, busy network is
/// never at exactly 1.0.
pub const CONVERGED_SYMMETRY: f64 = 0.999;

/// Union-find over node indices.
struct Dsu(Vec<u32>);

impl Dsu {
    fn find(&mut self, mut x: u32) -> u32 {
        while self.0[x as usize] != x {
            let p = self.0[x as usize];
            self.0[x as usize] = self.0[p as usize];
            x = p;
        }
        x
    }
    fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.0[ra.max(rb) as usize] = ra.min(rb);
        }
    }
}

impl Sim {
    pub(crate) fn sample(&self) -> Sample {
        let live = self.live();
        let (mut entries, mut mutual, mut isolated, mut passive) = (0u64, 0u64, 0u32, 0u64);
        let mut dsu = Dsu((0..self.nodes.len() as u32).collect());
        for &a in &live {
            let s = &self.nodes[a as usize].state;
            if s.active_len() == 0 {
                isolated += 1;
            }
            passive += s.passive_view().count() as u64;
            for b in s.active_view() {
                entries += 1;
                let nb: &Node = &self.nodes[b as usize];
                if nb.alive && nb.state.is_active(a) {
                    mutual += 1;
                }
                if nb.alive && nb.joined {
                    dsu.union(a, b);
                }
            }
        }
        let mut roots: Vec<u32> = live.iter().map(|&a| dsu.find(a)).collect();
        roots.sort_unstable();
        roots.dedup();
        let n = live.len().max(1) as f64;
        Sample {
            t_s: self.now.as_duration().as_secs_f64(),
            alive: live.len() as u32,
            isolated,
            components: roots.len() as u32,
            symmetry: if entries == 0 {
                1.0
            } else {
                mutual as f64 / entries as f64
            },
            mean_active: entries as f64 / n,
            mean_passive: passive as f64 / n,
            messages: self.nodes.iter().map(|x| u64::from(x.sent)).sum(),
            events: self.events,
        }
    }

    fn broadcast_reports(&self) -> Vec<BroadcastReport> {
        self.tracks
            .iter()
            .map(|t| {
                let (mut eligible, mut delivered, mut on_time) = (0u32, 0u32, 0u32);
                for i in 0..self.nodes.len() as u32 {
                    if t.eligible(i) && self.nodes[i as usize].alive {
                        eligible += 1;
                        delivered += u32::from(t.got(i));
                        on_time += u32::from(t.on_time(i));
                    }
                }
                let receivers = t.delivered as f64; // excluding the origin
                BroadcastReport {
                    id: t.id,
                    origin: t.origin,
                    at_s: t.at.as_duration().as_secs_f64(),
                    eligible,
                    delivered,
                    missed: eligible.saturating_sub(delivered),
                    reliability: if eligible == 0 {
                        1.0
                    } else {
                        f64::from(delivered) / f64::from(eligible)
                    },
                    on_time: if eligible == 0 {
                        1.0
                    } else {
                        f64::from(on_time) / f64::from(eligible)
                    },
                    rmr: if receivers > 0.0 {
                        t.payload_msgs as f64 / receivers - 1.0
                    } else {
                        0.0
                    },
                    ldh: t.max_hops,
                    last_delivery: t.last.saturating_since(t.at),
                }
            })
            .collect()
    }

    fn converge(&mut self) {
        for d in &mut self.disturbances {
            d.converged_after_s = self
                .samples
                .iter()
                .filter(|s| s.t_s >= d.at_s)
                .find(|s| s.components == 1 && s.isolated == 0 && s.symmetry >= CONVERGED_SYMMETRY)
                .map(|s| s.t_s - d.at_s);
        }
    }

    /// The overlay as it is now (for drawings of small networks).
    pub fn overlay(&self) -> Overlay {
        let nodes = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| OverlayNode {
                id: i as u32,
                alive: n.alive && n.joined,
                nat: n.nat,
                group: n.group,
            })
            .collect();
        let mut edges = Vec::new();
        for (a, n) in self.nodes.iter().enumerate() {
            if !n.alive {
                continue;
            }
            for b in n.state.active_view() {
                if (a as u32) < b || !self.nodes[b as usize].state.is_active(a as u32) {
                    edges.push((a as u32, b, n.state.is_eager(b), n.state.is_pinned(b)));
                }
            }
        }
        Overlay { nodes, edges }
    }

    pub(crate) fn report(mut self, wall: Duration) -> Report {
        self.converge();
        let n = self.nodes.len().max(1) as f64;
        let live = self.live();
        let state_bytes: usize = self
            .nodes
            .iter()
            .map(|x| core::mem::size_of::<Node>() + x.state.heap_bytes())
            .sum();
        let sim_s = self.now.as_duration().as_secs_f64();
        let sent: u64 = self.nodes.iter().map(|x| u64::from(x.sent)).sum();
        let bytes: u64 = self.nodes.iter().map(|x| x.bytes_sent).sum();
        let max_sent = self.nodes.iter().map(|x| x.sent).max().unwrap_or(0);
        let mut totals = self.totals.clone();
        totals.by_kind = self.kind_counts();
        let overlay = (self.nodes.len() <= 300).then(|| self.overlay());
        let broadcasts = self.broadcast_reports();
        let final_sample = self.sample();
        Report {
            name: self.sc.name.clone(),
            description: self.sc.description.clone(),
            seed: self.sc.seed,
            nodes_total: self.nodes.len() as u32,
            alive_end: live.len() as u32,
            sim_time_s: sim_s,
            wall,
            events: self.events,
            events_per_s: self.events as f64 / wall.as_secs_f64().max(1e-9),
            broadcasts,
            samples: core::mem::take(&mut self.samples),
            final_sample,
            disturbances: core::mem::take(&mut self.disturbances),
            msgs_per_node: sent as f64 / n,
            max_msgs_per_node: max_sent,
            bytes_per_node: bytes as f64 / n,
            msgs_per_node_per_s: sent as f64 / n / sim_s.max(1e-9),
            state_bytes_per_node: state_bytes as f64 / n,
            queue_peak: self.peak_queue,
            queue_bytes_per_node: self.queue_bytes() as f64 / n,
            record_bytes: self.record_len,
            totals,
            overlay,
            topology_switches: self
                .topology
                .as_ref()
                .map(|t| t.switches.clone())
                .unwrap_or_default(),
            marks: self.marks(),
            max_active: self
                .nodes
                .iter()
                .filter(|n| n.alive)
                .map(|n| n.state.active_len())
                .max()
                .unwrap_or(0),
        }
    }
}

impl Sim {
    /// A one-node summary for debugging: views, eager links, liveness of neighbours.
    pub fn describe(&self, n: u32) -> String {
        let Some(node) = self.nodes.get(n as usize) else {
            return format!("no node {n}");
        };
        let s = &node.state;
        let act: Vec<String> = s
            .active_view()
            .map(|p| {
                let q = &self.nodes[p as usize];
                format!(
                    "{p}{}{}{}",
                    if s.is_eager(p) { "e" } else { "l" },
                    if q.alive { "" } else { "+dead" },
                    if q.state.is_active(n) { "" } else { "(asym)" }
                )
            })
            .collect();
        let pas: Vec<String> = s
            .passive_view()
            .map(|p| {
                format!(
                    "{p}{}",
                    if self.nodes[p as usize].alive {
                        ""
                    } else {
                        "+"
                    }
                )
            })
            .collect();
        format!(
            "node {n} alive {} joined {} nat {:?}\n active {:?}\n passive {:?}",
            node.alive, node.joined, node.nat, act, pas
        )
    }
}

impl Sim {
    /// Live members with an empty active view.
    pub fn isolated(&self) -> Vec<u32> {
        self.live()
            .into_iter()
            .filter(|&i| self.nodes[i as usize].state.active_len() == 0)
            .collect()
    }
}

impl Sim {
    /// The connected components of the overlay among live members, largest first.
    pub fn components(&self) -> Vec<Vec<u32>> {
        let live = self.live();
        let mut dsu = Dsu((0..self.nodes.len() as u32).collect());
        for &a in &live {
            for b in self.nodes[a as usize].state.active_view() {
                if self.nodes[b as usize].alive {
                    dsu.union(a, b);
                }
            }
        }
        let mut groups: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
        for &a in &live {
            groups.entry(dsu.find(a)).or_default().push(a);
        }
        let mut v: Vec<Vec<u32>> = groups.into_values().collect();
        v.sort_by_key(|g| core::cmp::Reverse(g.len()));
        v
    }
}

impl Sim {
    /// The scenario's timeline, for plots: joins done, kills, leaves, partitions, heals,
    /// churn.
    fn marks(&self) -> Vec<(f64, String)> {
        use crate::scenario::Action;
        let joins = f64::from(self.sc.nodes) * self.sc.join.interval_ms / 1000.0;
        let mut m = vec![(joins, "joined".to_owned())];
        for a in &self.sc.events {
            match a {
                Action::Broadcast { .. } => {}
                Action::Kill { at_s, fraction } => {
                    m.push((*at_s, format!("crash {:.0} %", fraction * 100.0)))
                }
                Action::Leave { at_s, fraction } => {
                    m.push((*at_s, format!("leave {:.0} %", fraction * 100.0)))
                }
                Action::Partition { at_s, groups } => m.push((*at_s, format!("split in {groups}"))),
                Action::Heal { at_s } => m.push((*at_s, "heal".to_owned())),
                Action::Churn { at_s, until_s, .. } => {
                    m.push((*at_s, "churn".to_owned()));
                    m.push((*until_s, "churn ends".to_owned()));
                }
            }
        }
        m
    }
}
