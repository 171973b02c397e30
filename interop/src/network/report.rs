//! What a network run measured, its verdict and its markdown (docs/results/network.md).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use super::{LabNode, NetworkConfig};
use crate::{LabConfig, NatType};

/// One join.
#[derive(Debug, Clone)]
pub struct JoinRecord {
    /// The newcomer.
    pub node: usize,
    /// Whose invitation it used.
    pub inviter: usize,
    /// How many entry peers the invitation named.
    pub entry_peers: usize,
    /// It became a member.
    pub joined: bool,
    /// The member it reached (an id), when joined.
    pub via: Option<String>,
    /// From starting the process to membership.
    pub took: Option<Duration>,
    /// What went wrong otherwise (the event it printed instead).
    pub failure: Option<String>,
}

impl JoinRecord {
    pub(crate) fn joined(
        node: usize,
        inviter: usize,
        entry_peers: usize,
        e: &Value,
        took: Duration,
    ) -> Self {
        Self {
            node,
            inviter,
            entry_peers,
            joined: true,
            via: e["via"].as_str().map(str::to_owned),
            took: Some(took),
            failure: None,
        }
    }

    pub(crate) fn failed(node: usize, inviter: usize, entry_peers: usize, e: &Value) -> Self {
        Self {
            node,
            inviter,
            entry_peers,
            joined: false,
            via: None,
            took: None,
            failure: Some(e.to_string()),
        }
    }

    pub(crate) fn line(&self, r: &NetworkReport) -> String {
        match (self.joined, self.took) {
            (true, Some(t)) => format!(
                "node{} ({}) joined with node{}'s invitation ({} entry peers) in {:.0} ms",
                self.node,
                r.nat_of(self.node),
                self.inviter,
                self.entry_peers,
                t.as_secs_f64() * 1000.0
            ),
            _ => format!(
                "node{} ({}) did NOT join with node{}'s invitation: {}",
                self.node,
                r.nat_of(self.node),
                self.inviter,
                self.failure.as_deref().unwrap_or("?")
            ),
        }
    }
}

/// One broadcast.
#[derive(Debug, Clone)]
pub struct BroadcastRecord {
    /// Who sent it.
    pub origin: usize,
    /// How many live members should get it.
    pub expected: usize,
    /// Latency to each member that got it, ms (sorted).
    pub latencies_ms: Vec<u64>,
}

impl BroadcastRecord {
    pub(crate) fn new(origin: usize, expected: usize, mut latencies_ms: Vec<u64>) -> Self {
        latencies_ms.sort_unstable();
        Self {
            origin,
            expected,
            latencies_ms,
        }
    }

    /// Every member got it.
    pub fn complete(&self) -> bool {
        self.latencies_ms.len() == self.expected
    }

    fn pct(&self, q: f64) -> u64 {
        let n = self.latencies_ms.len();
        if n == 0 {
            return 0;
        }
        let i = ((n as f64 - 1.0) * q).round() as usize;
        self.latencies_ms[i.min(n - 1)]
    }

    pub(crate) fn line(&self, when: &str) -> String {
        format!(
            "broadcast from node{} {when}: {}/{} members, median {} ms, max {} ms",
            self.origin,
            self.latencies_ms.len(),
            self.expected,
            self.pct(0.5),
            self.pct(1.0)
        )
    }
}

/// Everything one run measured.
#[derive(Debug, Clone, Default)]
pub struct NetworkReport {
    /// Processes started.
    pub nodes: usize,
    /// The sites' NAT types and host counts.
    pub sites: Vec<(NatType, usize)>,
    /// The joins, in order.
    pub joins: Vec<JoinRecord>,
    /// From the last join until every member knew every other as online.
    pub converged_after: Option<Duration>,
    /// From the last join until every member's views were full.
    pub views_full_after: Option<Duration>,
    /// Members whose views were not full at the deadline.
    pub views_not_full: usize,
    /// What those members' views held.
    pub views_short: Vec<String>,
    /// Overlay links (unique pairs) by path kind (`host`, `srflx`, `prflx`, `relay`).
    pub links: BTreeMap<String, usize>,
    /// Links an introduction made.
    pub introduced: usize,
    /// Introduced punches, summed over every node, by the peer's NAT class:
    /// (started, linked, failed).
    pub punches: BTreeMap<String, (u64, u64, u64)>,
    /// The same, counted only by nodes behind port-restricted NATs towards peers of that
    /// class.
    pub punches_pr_pr: (u64, u64, u64),
    /// Resident memory per process, KiB (sorted).
    pub rss_kib: Vec<u64>,
    /// Broadcasts before the kill.
    pub broadcasts: Vec<BroadcastRecord>,
    /// Processes killed.
    pub killed: usize,
    /// How long until no survivor had a link to a dead node.
    pub dead_noticed_after: Option<Duration>,
    /// Broadcasts among the survivors.
    pub after_kill: Vec<BroadcastRecord>,
    /// The whole run.
    pub seconds: f64,
}

impl NetworkReport {
    pub(crate) fn new(cfg: &NetworkConfig, lab: &LabConfig) -> Self {
        Self {
            nodes: cfg.nodes,
            sites: lab.sites.iter().map(|s| (s.nat, s.hosts)).collect(),
            ..Self::default()
        }
    }

    /// The NAT in front of node `i`.
    pub fn nat_of(&self, i: usize) -> &'static str {
        self.sites
            .get(i % self.sites.len().max(1))
            .map_or("?", |(n, _)| n.as_str())
    }

    pub(crate) fn membership_line(&self) -> String {
        match self.converged_after {
            Some(d) => format!(
                "every member knew every other online {:.1} s after the last join",
                d.as_secs_f64()
            ),
            None => "some member did not know every other at the deadline".into(),
        }
    }

    pub(crate) fn views_line(&self) -> String {
        match self.views_full_after {
            Some(d) => format!(
                "every member's views full {:.1} s after the last join",
                d.as_secs_f64()
            ),
            None => format!(
                "{} member(s) still without full views at the deadline",
                self.views_not_full
            ),
        }
    }

    /// Reads links, introduction counters and memory from every member.
    pub(crate) fn observe(&mut self, nodes: &mut [LabNode], members: &[usize]) {
        let mut pairs: BTreeSet<(String, String)> = BTreeSet::new();
        for &i in members {
            let Some(me) = nodes[i].id.clone() else {
                continue;
            };
            if let Ok(l) = nodes[i].control(&json!({"cmd": "links"})) {
                for x in l["links"].as_array().into_iter().flatten() {
                    let peer = x["peer"].as_str().unwrap_or_default().to_owned();
                    let key = if me < peer {
                        (me.clone(), peer)
                    } else {
                        (peer, me.clone())
                    };
                    if pairs.insert(key) {
                        *self
                            .links
                            .entry(x["path"].as_str().unwrap_or("?").to_owned())
                            .or_default() += 1;
                        if !x["introducer"].is_null() {
                            self.introduced += 1;
                        }
                    }
                }
            }
            if let Ok(s) = nodes[i].control(&json!({"cmd": "status"})) {
                let pr = self.nat_of(i) == NatType::PortRestricted.as_str();
                for (class, c) in s["punches"].as_object().into_iter().flatten() {
                    let t = (
                        super::count(c, "started"),
                        super::count(c, "linked"),
                        super::count(c, "failed"),
                    );
                    let e = self.punches.entry(class.clone()).or_default();
                    *e = (e.0 + t.0, e.1 + t.1, e.2 + t.2);
                    if pr && class == "port-restricted" {
                        let p = &mut self.punches_pr_pr;
                        *p = (p.0 + t.0, p.1 + t.1, p.2 + t.2);
                    }
                }
            }
            if let Some(r) = nodes[i].rss_kib() {
                self.rss_kib.push(r);
            }
        }
        self.rss_kib.sort_unstable();
    }

    /// CI's verdict, "no node left out": every node joined, every member knew every other,
    /// every broadcast reached every live member, before and after the kill. (Full views
    /// are a recorded goal: HyParView does not promise every node a full active view.)
    pub fn passed(&self) -> bool {
        self.joins.iter().all(|j| j.joined)
            && self.converged_after.is_some()
            && self
                .broadcasts
                .iter()
                .chain(&self.after_kill)
                .all(BroadcastRecord::complete)
    }

    /// The report as markdown.
    pub fn markdown(&self, command: &str, provenance: &str) -> String {
        let mut s = String::new();
        let joined = self.joins.iter().filter(|j| j.joined).count();
        let _ = writeln!(s, "Reproduce: `{command}` (as root). {provenance}\n");
        let sites: Vec<String> = self
            .sites
            .iter()
            .map(|(n, h)| format!("{n} ×{h}"))
            .collect();
        let _ = writeln!(s, "- Sites ({}): {}", self.sites.len(), sites.join(", "));
        let _ = writeln!(
            s,
            "- Joins: {joined} of {} newcomers, each with one invitation (node0's first, then a random member's naming up to 7 entry peers), no hand-back",
            self.joins.len()
        );
        let mut took: Vec<f64> = self
            .joins
            .iter()
            .filter_map(|j| j.took)
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        took.sort_by(f64::total_cmp);
        if let (Some(first), Some(last)) = (took.first(), took.last()) {
            let _ = writeln!(
                s,
                "- Join time (process start to membership): median {:.0} ms, range {first:.0}–{last:.0} ms",
                took[took.len() / 2]
            );
        }
        let _ = writeln!(s, "- Membership: {}", self.membership_line());
        let _ = writeln!(s, "- Views: {}", self.views_line());
        for l in &self.views_short {
            let _ = writeln!(s, "  - {l}");
        }
        let total: usize = self.links.values().sum();
        let relayed = self.links.get("relay").copied().unwrap_or(0);
        let kinds: Vec<String> = self.links.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(
            s,
            "- Links: {total} ({}), direct {} ({:.1} %), relayed {relayed}; {} made by introductions",
            kinds.join(", "),
            total - relayed,
            100.0 * (total - relayed) as f64 / total.max(1) as f64,
            self.introduced
        );
        let (st, ok, bad) = self
            .punches
            .values()
            .fold((0, 0, 0), |a, p| (a.0 + p.0, a.1 + p.1, a.2 + p.2));
        let _ = writeln!(
            s,
            "- Introduced punches: {st} started, {ok} linked, {bad} failed ({}); port-restricted to port-restricted: {} linked, {} failed ({})",
            rate(ok, bad),
            self.punches_pr_pr.1,
            self.punches_pr_pr.2,
            rate(self.punches_pr_pr.1, self.punches_pr_pr.2)
        );
        let classes: Vec<String> = self
            .punches
            .iter()
            .filter(|(_, p)| p.0 > 0)
            .map(|(c, p)| format!("{c} {}/{}", p.1, p.1 + p.2))
            .collect();
        let _ = writeln!(
            s,
            "  - linked / ended, by the peer's NAT class: {}",
            if classes.is_empty() {
                "none".to_owned()
            } else {
                classes.join(", ")
            }
        );
        for (label, list) in [
            ("Broadcasts", &self.broadcasts),
            ("After the kill", &self.after_kill),
        ] {
            let got: usize = list.iter().map(|b| b.latencies_ms.len()).sum();
            let want: usize = list.iter().map(|b| b.expected).sum();
            let mut all: Vec<u64> = list
                .iter()
                .flat_map(|b| b.latencies_ms.iter().copied())
                .collect();
            all.sort_unstable();
            let q = |f: f64| {
                all.get(((all.len().max(1) - 1) as f64 * f).round() as usize)
                    .copied()
                    .unwrap_or(0)
            };
            let _ = writeln!(
                s,
                "- {label}: {} broadcasts, delivered {got}/{want} ({:.1} %), latency median {} ms, p95 {} ms, max {} ms",
                list.len(),
                100.0 * got as f64 / want.max(1) as f64,
                q(0.5),
                q(0.95),
                q(1.0)
            );
        }
        let _ = writeln!(
            s,
            "- Killed {} processes (SIGKILL); survivors had no link left to them after {}",
            self.killed,
            self.dead_noticed_after
                .map_or("(not within the deadline)".into(), |d| format!(
                    "{:.1} s",
                    d.as_secs_f64()
                ))
        );
        if let (Some(min), Some(max)) = (self.rss_kib.first(), self.rss_kib.last()) {
            let _ = writeln!(
                s,
                "- RSS per process: median {:.1} MiB, range {:.1}–{:.1} MiB",
                self.rss_kib[self.rss_kib.len() / 2] as f64 / 1024.0,
                *min as f64 / 1024.0,
                *max as f64 / 1024.0
            );
        }
        let _ = writeln!(
            s,
            "- Whole run: {:.0} s; verdict: {}",
            self.seconds,
            if self.passed() { "passed" } else { "FAILED" }
        );
        s
    }
}

fn rate(ok: u64, bad: u64) -> String {
    if ok + bad == 0 {
        return "none ended".into();
    }
    format!("{:.1} % success", 100.0 * ok as f64 / (ok + bad) as f64)
}
