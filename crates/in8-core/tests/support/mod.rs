//! Building networks in the deterministic harness.
#![allow(dead_code, unreachable_pub)] // shared by several test crates, each using a part

use std::time::Duration;

use in8_core::InviteOptions;
use in8_core::harness::{Harness, Site};
use in8_core::proto::{Event, JoinProgress};
use in8_ice::sim::Nat;

/// Logs to stderr as `IN8_LOG` says (for debugging a seed).
pub fn trace() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("IN8_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// A mix of sites for `n` nodes: the creator public, then the other NAT types in turn.
pub fn mixed_sites(n: usize) -> Vec<Site> {
    let cycle = [
        Site::Public,
        Site::Behind(Nat::PortRestricted),
        Site::Behind(Nat::FullCone),
        Site::Behind(Nat::Symmetric),
        Site::Behind(Nat::Restricted),
        Site::Public,
        Site::Behind(Nat::PortRestricted),
    ];
    (0..n).map(|i| cycle[i % cycle.len()]).collect()
}

/// Whether a node at `site` accepts one-way (phase 1) joins.
pub fn reachable(site: Site) -> bool {
    matches!(site, Site::Public | Site::Behind(Nat::FullCone))
}

/// The outcome of one join.
#[derive(Debug)]
pub enum Joined {
    /// Phase 1 connected.
    One,
    /// Phase 1 failed; the RSVP was handed back and phase 2 connected.
    Two,
}

/// Node `j` joins with an invitation from `inviter` naming `entry` entry peers; an RSVP is
/// handed back at once if phase 1 fails. Runs until `j` is a member of the inviter's
/// network (or fails).
pub fn join(h: &mut Harness, j: usize, inviter: usize, entry: usize) -> Result<Joined, String> {
    let options = InviteOptions {
        entry_peers: entry,
        ..InviteOptions::default()
    };
    let inv = h
        .invite_with(inviter, &options)
        .map_err(|e| e.to_string())?;
    let network = inv.invitation().network;
    let join = h.join(j, &inv).map_err(|e| e.to_string())?;
    let mut phase = Joined::One;
    let limit = h.now + Duration::from_secs(90);
    let mut seen = 0;
    while h.now < limit {
        h.run_for(Duration::from_millis(20));
        let events: Vec<_> = h.nodes[j].events[seen..]
            .iter()
            .filter_map(|e| match e {
                Event::Join { join: id, event } if *id == join => Some(event),
                _ => None,
            })
            .collect();
        seen = h.nodes[j].events.len();
        let mut rsvp = None;
        for e in events {
            match e {
                JoinProgress::Phase1Failed { rsvp: r, .. } => rsvp = Some((**r).clone()),
                JoinProgress::Failed(e) => return Err(format!("node{j} join failed: {e}")),
                _ => {}
            }
        }
        if let Some(r) = rsvp {
            phase = Joined::Two;
            h.with(inviter, |c, now| c.accept_rsvp(now, &r))
                .map_err(|e| e.to_string())?;
        }
        if h.nodes[j].core.network_id() == network
            && h.nodes[j].core.credential().membership().member == h.id(j)
            && !h.links_of(j).is_empty()
        {
            return Ok(phase);
        }
    }
    Err(format!("node{j} did not become a member within 90 s"))
}

/// A network of the given sites: node 0 creates it, each newcomer joins with an invitation
/// from a reachable member chosen at random (members issue them from the third node on),
/// naming up to two entry peers.
pub fn network(seed: u64, sites: &[Site]) -> Harness {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut h = Harness::new(seed);
    for s in sites {
        h.add_node(*s);
    }
    for j in 1..sites.len() {
        let candidates: Vec<usize> = (0..j)
            .filter(|i| reachable(sites[*i]))
            .filter(|i| h.nodes[*i].core.credential().depth() + 1 < in8_artifact::MAX_CHAIN_DEPTH)
            .collect();
        let inviter = candidates[rng.random_range(0..candidates.len())];
        if let Err(e) = join(&mut h, j, inviter, 2) {
            panic!("seed {seed}: {e}");
        }
    }
    h
}

/// Whether every live node knows every other live node as an online member.
pub fn converged(h: &Harness) -> bool {
    let live: Vec<usize> = (0..h.nodes.len()).filter(|i| h.nodes[*i].alive).collect();
    let ids: std::collections::HashSet<_> = live.iter().map(|&k| h.id(k)).collect();
    live.iter().all(|&i| {
        let me = h.id(i);
        let known = h.nodes[i]
            .core
            .online_members()
            .filter(|m| ids.contains(m))
            .count();
        known == ids.len() - 1 && !h.nodes[i].core.online_members().any(|m| m == me)
    })
}

/// Whether the overlay among live nodes is connected.
pub fn connected(h: &Harness) -> bool {
    let live: Vec<usize> = (0..h.nodes.len()).filter(|i| h.nodes[*i].alive).collect();
    let Some(&first) = live.first() else {
        return true;
    };
    let mut seen = vec![first];
    let mut stack = vec![first];
    while let Some(i) = stack.pop() {
        for k in h.links_of(i) {
            if h.nodes[k].alive && !seen.contains(&k) {
                seen.push(k);
                stack.push(k);
            }
        }
    }
    seen.len() == live.len()
}
