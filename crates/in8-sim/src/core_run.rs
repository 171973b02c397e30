//! `in8-sim --core`: the whole in8-core node — establishment and network state machines,
//! the code a real `in8 up` runs — in in8-core's deterministic harness (`in8_core::harness`)
//! instead of the gossip-only engine: N nodes behind a mix of NAT boxes join through
//! invitations, membership converges, a broadcast goes out, half the nodes die and the
//! survivors broadcast again. Virtual time; the seed decides everything. Sized for
//! hundreds of nodes (each is a full core with ICE, DTLS-free simulated links and gossip);
//! the engine (`run`) remains the tool for 10^6.

use std::time::{Duration, Instant};

use in8_core::harness::Harness;
use in8_core::harness::build::{connected, converged, deaths_noticed, mixed_sites, network};

/// What a core run measured.
#[derive(Debug, Clone)]
pub struct CoreReport {
    /// Nodes.
    pub nodes: usize,
    /// Virtual seconds for all the joins.
    pub join_s: f64,
    /// Virtual seconds from the last join until membership converged (`None`: it did not
    /// within two minutes).
    pub converged_s: Option<f64>,
    /// Overlay links (unique pairs) and how many an introduction made.
    pub links: (usize, usize),
    /// A broadcast from the newest node: members reached / expected.
    pub broadcast: (usize, usize),
    /// After half the nodes were killed: survivors still connected, and a survivor's
    /// broadcast reached / expected.
    pub after_kill: (bool, usize, usize),
    /// Wall-clock seconds of the run.
    pub wall_s: f64,
}

impl CoreReport {
    /// A short table.
    pub fn table(&self) -> String {
        format!(
            "core harness: {} nodes\n  joins            {:.1} s virtual\n  converged after  {}\n  links            {} ({} introduced)\n  broadcast        {}/{}\n  after 50% killed connected={} broadcast {}/{}\n  wall             {:.1} s\n",
            self.nodes,
            self.join_s,
            self.converged_s
                .map_or("not within 120 s".into(), |s| format!("{s:.1} s virtual")),
            self.links.0,
            self.links.1,
            self.broadcast.0,
            self.broadcast.1,
            self.after_kill.0,
            self.after_kill.1,
            self.after_kill.2,
            self.wall_s
        )
    }
}

fn reached(h: &Harness, payload: &[u8], except: usize) -> (usize, usize) {
    let live: Vec<usize> = (0..h.nodes.len())
        .filter(|&i| h.nodes[i].alive && i != except)
        .collect();
    let got = live
        .iter()
        .filter(|&&i| h.received(i).iter().any(|(_, p)| p == payload))
        .count();
    (got, live.len())
}

fn broadcast(h: &mut Harness, origin: usize, payload: &[u8]) -> Result<(usize, usize), String> {
    h.with(origin, |c, now| c.broadcast(now, payload))
        .map_err(|e| format!("node{origin} could not broadcast: {e}"))?;
    h.run_for(Duration::from_secs(10));
    Ok(reached(h, payload, origin))
}

/// Runs `nodes` nodes with `seed`.
pub fn run(nodes: usize, seed: u64) -> Result<CoreReport, String> {
    if nodes < 2 {
        return Err("--core needs at least 2 nodes".into());
    }
    let wall = Instant::now();
    let mut h = network(seed, &mixed_sites(nodes)).map_err(|e| format!("seed {seed}: {e}"))?;
    let join_s = h.elapsed().as_secs_f64();
    let converged_s = h
        .run_until(Duration::from_secs(120), converged)
        .then(|| h.elapsed().as_secs_f64() - join_s);
    let mut pairs = std::collections::BTreeSet::new();
    let mut introduced = 0;
    for i in 0..nodes {
        for (peer, link) in h.nodes[i].core.overlay_links() {
            let Some(j) = h.index_of(&peer) else { continue };
            if pairs.insert((i.min(j), i.max(j)))
                && h.nodes[i]
                    .core
                    .link_info_of(link)
                    .is_some_and(|l| l.introducer.is_some())
            {
                introduced += 1;
            }
        }
    }
    let first = broadcast(&mut h, nodes - 1, b"core-run: before")?;
    for i in (0..nodes).filter(|i| i % 2 == 1) {
        h.kill(i);
    }
    // ICE consent (30 s) notices the dead; gossip repairs the views.
    let still = h.run_until(Duration::from_secs(120), |h| {
        deaths_noticed(h) && connected(h)
    });
    let after = broadcast(&mut h, 0, b"core-run: after")?;
    Ok(CoreReport {
        nodes,
        join_s,
        converged_s,
        links: (pairs.len(), introduced),
        broadcast: first,
        after_kill: (still, after.0, after.1),
        wall_s: wall.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_small_core_network_forms_and_survives() {
        let r = super::run(8, 3).unwrap_or_else(|e| panic!("{e}"));
        assert!(r.converged_s.is_some(), "{}", r.table());
        assert_eq!(r.broadcast.0, r.broadcast.1, "{}", r.table());
        assert!(r.after_kill.0, "{}", r.table());
        assert_eq!(r.after_kill.1, r.after_kill.2, "{}", r.table());
    }
}
