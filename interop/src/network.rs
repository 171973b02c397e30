//! A network of real `in8 up` processes in the NAT lab (`in8-lab network --nodes N`):
//! sites of every NAT type the lab has, one process per host, one invitation from the
//! creator and member-issued ones after it (each naming entry peers), no hand-back. Then
//! it measures what docs/results/network.md records: how long until every node's views
//! are full after the last join, direct vs relayed links, introductions, broadcast
//! delivery and latency, delivery among the survivors after half the processes are
//! killed, and memory per process. [`NetworkReport::passed`] is CI's verdict: every node
//! joined, every view filled, every broadcast reached every live member.

mod node;
pub mod report;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

pub use node::{LabNode, Printed};
pub use report::{BroadcastRecord, JoinRecord, NetworkReport};

use crate::{Error, Lab, LabConfig, NatType, Result, SiteConfig};

/// The UDP port every node listens on (each host is a namespace of its own).
const PORT: &str = "48808";

/// What to run.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Processes (the first creates the network).
    pub nodes: usize,
    /// Sites; their NAT types cycle through [`NatType::ALL`] (the creator's site is public).
    pub sites: usize,
    /// The in8 binary.
    pub in8: PathBuf,
    /// Where homes, invitations and logs go.
    pub log_dir: PathBuf,
    /// Seed of every choice (inviters, origins, who is killed).
    pub seed: u64,
    /// Give the nodes the lab's TURN server and allow relayed links.
    pub relay: bool,
    /// `--topology` of every node.
    pub topology: String,
    /// Longest one join may take.
    pub join_deadline: Duration,
    /// Longest the views may take to fill, and the survivors to notice the dead.
    pub settle_deadline: Duration,
    /// Broadcasts sent before the kill (and after it).
    pub broadcasts: usize,
}

impl NetworkConfig {
    /// `nodes` processes over 6 sites (12 from 25 nodes on), the rest defaulted.
    pub fn new(nodes: usize, in8: PathBuf, log_dir: PathBuf) -> Self {
        Self {
            nodes,
            sites: if nodes > 24 { 12 } else { 6 },
            in8,
            log_dir,
            seed: 1,
            relay: false,
            topology: "auto".into(),
            join_deadline: Duration::from_secs(60),
            settle_deadline: Duration::from_secs(120),
            broadcasts: 5,
        }
    }
}

/// The running network: the lab, its nodes and everything they printed.
struct Run {
    nodes: Vec<LabNode>,
    events: mpsc::Receiver<Printed>,
    tx: mpsc::Sender<Printed>,
    seen: Vec<Printed>,
}

impl Run {
    /// Takes what arrived, waiting at most `wait` for the first.
    fn pump(&mut self, wait: Duration) {
        if let Ok(p) = self.events.recv_timeout(wait) {
            self.note(p);
        }
        while let Ok(p) = self.events.try_recv() {
            self.note(p);
        }
    }

    fn note(&mut self, p: Printed) {
        if p.event["event"] == "up"
            && let Some(n) = self.nodes.get_mut(p.node)
        {
            n.id = p.event["node"].as_str().map(str::to_owned);
        }
        self.seen.push(p);
    }

    /// Waits for an event of node `i` named one of `names`, printed after `from`.
    fn wait_for(
        &mut self,
        i: usize,
        names: &[&str],
        from: usize,
        limit: Duration,
    ) -> Option<Printed> {
        let end = Instant::now() + limit;
        let mut k = from;
        loop {
            while k < self.seen.len() {
                let p = &self.seen[k];
                k += 1;
                if p.node == i && names.iter().any(|n| p.event["event"] == *n) {
                    return Some(p.clone());
                }
            }
            if Instant::now() >= end || !self.nodes[i].alive() {
                self.pump(Duration::from_millis(50));
                return self.seen[k..]
                    .iter()
                    .find(|p| p.node == i && names.iter().any(|n| p.event["event"] == *n))
                    .cloned();
            }
            self.pump(Duration::from_millis(50));
        }
    }
}

fn lab_config(cfg: &NetworkConfig) -> Result<(LabConfig, Vec<(usize, usize)>)> {
    if cfg.nodes < 2 || cfg.sites < 1 {
        return Err(Error::Config(
            "a network run needs at least 2 nodes and 1 site".into(),
        ));
    }
    let per_site = cfg.nodes.div_ceil(cfg.sites);
    if per_site > crate::plan::MAX_HOSTS || cfg.sites > crate::plan::MAX_SITES {
        return Err(Error::Config(format!(
            "{} nodes over {} sites: at most {} sites of {} hosts",
            cfg.nodes,
            cfg.sites,
            crate::plan::MAX_SITES,
            crate::plan::MAX_HOSTS
        )));
    }
    let mut hosts = vec![0usize; cfg.sites];
    let place: Vec<(usize, usize)> = (0..cfg.nodes)
        .map(|i| {
            let s = i % cfg.sites;
            hosts[s] += 1;
            (s, hosts[s] - 1)
        })
        .collect();
    let lab = (0..cfg.sites).fold(LabConfig::new(), |l, s| {
        let nat = NatType::ALL[s % NatType::ALL.len()];
        l.site_with(SiteConfig {
            hosts: hosts[s].max(1),
            ..SiteConfig::new(nat)
        })
    });
    Ok((lab, place))
}

/// Runs the network once and measures it; `progress` hears of each step.
pub fn run(cfg: &NetworkConfig, progress: &mut dyn FnMut(&str)) -> Result<NetworkReport> {
    let started = Instant::now();
    std::fs::create_dir_all(&cfg.log_dir)
        .map_err(|e| Error::io(format!("creating {}", cfg.log_dir.display()), e))?;
    let (lab_cfg, place) = lab_config(cfg)?;
    let lab = Lab::start(&lab_cfg)?;
    progress(&format!("lab up: {} sites, {} nodes", cfg.sites, cfg.nodes));
    let coturn = lab
        .coturn()
        .ok_or_else(|| Error::Config("the network lab has no coturn".into()))?;
    let stun = coturn.stun_addr().to_string();
    let mut args: Vec<String> = ["--stun", &stun, "--port", PORT, "--topology", &cfg.topology]
        .map(String::from)
        .to_vec();
    if cfg.relay {
        let (user, pass, _) = coturn.credentials();
        args.extend([
            "--turn".into(),
            format!("{user}:{pass}@{stun}"),
            "--relay".into(),
        ]);
    }
    let (tx, events) = mpsc::channel();
    let mut run = Run {
        nodes: Vec::new(),
        events,
        tx,
        seen: Vec::new(),
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut report = NetworkReport::new(cfg, &lab_cfg);
    let spawn = |run: &mut Run, i: usize, extra: &[String]| -> Result<()> {
        let (s, h) = place[i];
        let home = cfg.log_dir.join(format!("n{i}"));
        let _ = std::fs::remove_dir_all(&home);
        let _ = std::fs::remove_file(home.with_extension("err"));
        let mut a = args.clone();
        a.extend(extra.iter().cloned());
        let node = LabNode::spawn(
            i,
            s,
            lab.site(s)?.host(h)?,
            &cfg.in8,
            home,
            &a,
            run.tx.clone(),
        )?;
        run.nodes.push(node);
        Ok(())
    };

    // The creator.
    spawn(&mut run, 0, &[])?;
    if run.wait_for(0, &["up"], 0, cfg.join_deadline).is_none() {
        return Err(Error::Config("node0 (the creator) did not start".into()));
    }
    // The joins, one after another, each with one invitation: the creator's first, then
    // a random member's, naming up to seven entry peers.
    let mut members = vec![0usize];
    let mut last_join = Instant::now();
    for i in 1..cfg.nodes {
        // The creator's one invitation, then members' (the creator only while it is the
        // only member).
        let inviter = if members.len() == 1 {
            0
        } else {
            members[rng.random_range(1..members.len())]
        };
        // A member invites once it knows the network (a newcomer of a moment ago may not
        // have its member list yet, and entry peers come from it): up to 5 s.
        let enough = (members.len() - 1).min(16) as u64;
        let known_by = Instant::now() + Duration::from_secs(5);
        while Instant::now() < known_by
            && run.nodes[inviter]
                .control(&json!({"cmd": "status"}))
                .map_or(0, |s| count(&s, "online"))
                < enough
        {
            run.pump(Duration::from_millis(50));
        }
        let inv = run.nodes[inviter]
            .control(&json!({"cmd": "invite", "ttl_secs": 900, "uses": 1, "entry_peers": 7}))?;
        let file = cfg.log_dir.join(format!("invitation-{i}.txt"));
        std::fs::write(&file, inv["text"].as_str().unwrap_or_default())
            .map_err(|e| Error::io(format!("writing {}", file.display()), e))?;
        let mark = run.seen.len();
        let t = Instant::now();
        spawn(
            &mut run,
            i,
            &["--join".into(), format!("@{}", file.display())],
        )?;
        let got = run.wait_for(
            i,
            &["joined", "phase1_failed", "error"],
            mark,
            cfg.join_deadline,
        );
        let entry_peers = inv["entry_peers"].as_array().map_or(0, Vec::len);
        let rec = match got {
            Some(p) if p.event["event"] == "joined" => {
                members.push(i);
                last_join = p.at;
                JoinRecord::joined(i, inviter, entry_peers, &p.event, p.at - t)
            }
            Some(p) => JoinRecord::failed(i, inviter, entry_peers, &p.event),
            None => JoinRecord::failed(i, inviter, entry_peers, &json!({"event": "timeout"})),
        };
        if !rec.joined {
            // Left out: it must not join later and skew what the members count.
            run.nodes[i].kill();
        }
        progress(&rec.line(&report));
        report.joins.push(rec);
    }

    // Views: every live node knows every other member online and has full views.
    let want = members.len() - 1;
    let settle_end = last_join + cfg.settle_deadline;
    loop {
        let (mut full, mut knows) = (0, 0);
        let mut short = Vec::new();
        for &i in &members {
            match run.nodes[i].control(&json!({"cmd": "status"})) {
                Ok(s) if s["online"].as_u64() == Some(want as u64) => {
                    knows += 1;
                    if s["views"]["full"] == json!(true) {
                        full += 1;
                    } else {
                        short.push(format!(
                            "node{i} ({}): views {}",
                            report.nat_of(i),
                            s["views"]
                        ));
                    }
                }
                Ok(s) => short.push(format!(
                    "node{i} ({}): online {}/{want}, views {}",
                    report.nat_of(i),
                    s["online"],
                    s["views"]
                )),
                Err(e) => short.push(format!("node{i}: {e}")),
            }
        }
        if knows == members.len() && report.converged_after.is_none() {
            report.converged_after = Some(last_join.elapsed());
        }
        if full == members.len() {
            report.views_full_after = Some(last_join.elapsed());
            break;
        }
        if Instant::now() >= settle_end {
            report.views_not_full = members.len() - full;
            for line in &short {
                progress(&format!("not full: {line}"));
            }
            report.views_short = short;
            break;
        }
        run.pump(Duration::from_millis(500));
    }
    progress(&format!("membership: {}", report.membership_line()));
    progress(&format!("views: {}", report.views_line()));

    // Links, introductions, memory.
    report.observe(&mut run.nodes, &members);
    // Broadcasts from random members.
    for k in 0..cfg.broadcasts {
        let origin = members[rng.random_range(0..members.len())];
        let rec = broadcast(
            &mut run,
            origin,
            &members,
            &format!("lab-broadcast-{k}"),
            cfg,
        )?;
        progress(&rec.line("before the kill"));
        report.broadcasts.push(rec);
    }

    // Kill half of the processes, at random, the creator included if drawn.
    let mut order = members.clone();
    order.shuffle(&mut rng);
    let (dead, survivors) = order.split_at(members.len() / 2);
    let (dead, mut survivors) = (dead.to_vec(), survivors.to_vec());
    survivors.sort_unstable();
    for &d in &dead {
        run.nodes[d].kill();
    }
    let killed_at = Instant::now();
    report.killed = dead.len();
    progress(&format!(
        "killed {} of {} processes",
        dead.len(),
        members.len()
    ));
    // The survivors notice: no link left to a dead node.
    let dead_ids: Vec<String> = dead
        .iter()
        .filter_map(|&d| run.nodes[d].id.clone())
        .collect();
    loop {
        let mut clear = 0;
        for &i in &survivors {
            if let Ok(l) = run.nodes[i].control(&json!({"cmd": "links"}))
                && !l["links"].as_array().is_some_and(|ls| {
                    ls.iter()
                        .any(|x| dead_ids.iter().any(|d| x["peer"] == json!(d)))
                })
            {
                clear += 1;
            }
        }
        if clear == survivors.len() || killed_at.elapsed() >= cfg.settle_deadline {
            report.dead_noticed_after = (clear == survivors.len()).then(|| killed_at.elapsed());
            break;
        }
        run.pump(Duration::from_millis(500));
    }
    for k in 0..cfg.broadcasts {
        let origin = survivors[rng.random_range(0..survivors.len())];
        let rec = broadcast(
            &mut run,
            origin,
            &survivors,
            &format!("lab-after-kill-{k}"),
            cfg,
        )?;
        progress(&rec.line("among the survivors"));
        report.after_kill.push(rec);
    }
    report.seconds = started.elapsed().as_secs_f64();
    write_log(cfg, &run.seen)?;
    drop(run);
    drop(lab);
    Ok(report)
}

/// Sends one broadcast from `origin` and waits until every other node of `to` printed it.
fn broadcast(
    run: &mut Run,
    origin: usize,
    to: &[usize],
    text: &str,
    cfg: &NetworkConfig,
) -> Result<BroadcastRecord> {
    let mark = run.seen.len();
    let sent = run.nodes[origin].control(&json!({"cmd": "broadcast", "text": text}))?;
    let t0 = sent["t"].as_u64().unwrap_or(0);
    let end = Instant::now() + cfg.settle_deadline.min(Duration::from_secs(30));
    let others: Vec<usize> = to.iter().copied().filter(|&i| i != origin).collect();
    let mut got: BTreeMap<usize, u64> = BTreeMap::new();
    while got.len() < others.len() && Instant::now() < end {
        run.pump(Duration::from_millis(20));
        for p in &run.seen[mark..] {
            if p.event["event"] == "broadcast"
                && p.event["text"] == text
                && others.contains(&p.node)
            {
                got.entry(p.node)
                    .or_insert_with(|| p.event["t"].as_u64().unwrap_or(t0).saturating_sub(t0));
            }
        }
    }
    Ok(BroadcastRecord::new(
        origin,
        others.len(),
        got.into_values().collect(),
    ))
}

/// Every node's events, in arrival order, to `<log_dir>/events.log`.
fn write_log(cfg: &NetworkConfig, seen: &[Printed]) -> Result<()> {
    let Some(first) = seen.first().map(|p| p.at) else {
        return Ok(());
    };
    let mut text = String::new();
    for p in seen {
        text.push_str(&format!(
            "{:>9.3} s node{} {}\n",
            p.at.duration_since(first).as_secs_f64(),
            p.node,
            p.event
        ));
    }
    let path = cfg.log_dir.join("events.log");
    std::fs::write(&path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// The value of `field` in a status answer as a count.
pub(crate) fn count(v: &Value, field: &str) -> u64 {
    v[field].as_u64().unwrap_or(0)
}
