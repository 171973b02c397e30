//! Building networks in the harness: sites of mixed NATs, joins through invitations (an
//! RSVP handed back at once when phase 1 fails), whole networks, and the checks the tests
//! and the simulator share (membership converged, overlay connected).

use std::collections::HashSet;
use std::time::Duration;

use rand::{Rng, SeedableRng};

use super::{Harness, Site};
use crate::events::InviteOptions;
use crate::proto::{Event, JoinProgress};
use in8_ice::sim::Nat;

/// Why building a network in the harness failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A core refused a step (inviting, joining, accepting the RSVP).
    #[error("node{node}: {source}")]
    Core {
        /// The node.
        node: usize,
        /// What it said.
        source: crate::Error,
    },
    /// The join failed for good (the core's error, as it put it: the event keeps the
    /// error itself).
    #[error("node{node}'s join failed: {reason}")]
    JoinFailed {
        /// The newcomer.
        node: usize,
        /// Why.
        reason: String,
    },
    /// The newcomer was not a member in time.
    #[error("node{node} did not become a member within {after:?}")]
    NotMember {
        /// The newcomer.
        node: usize,
        /// How long it was given.
        after: Duration,
    },
    /// No member could invite (none reachable one-way, or all at the depth limit).
    #[error("no member can invite node{node}")]
    NoInviter {
        /// The newcomer.
        node: usize,
    },
}

/// How long one join may take, in virtual time.
const JOIN_LIMIT: Duration = Duration::from_secs(90);

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// Phase 1 connected.
    One,
    /// Phase 1 failed; the RSVP was handed back and phase 2 connected.
    Two,
}

/// Node `j` joins with an invitation from `inviter` naming `entry` entry peers; an RSVP is
/// handed back at once if phase 1 fails. Runs until `j` is a member of the inviter's
/// network and linked (or fails).
pub fn join(h: &mut Harness, j: usize, inviter: usize, entry: usize) -> Result<Joined, BuildError> {
    let options = InviteOptions {
        entry_peers: entry,
        ..InviteOptions::default()
    };
    let core = |node| move |source| BuildError::Core { node, source };
    let inv = h.invite_with(inviter, &options).map_err(core(inviter))?;
    let network = inv.invitation().network;
    let join = h.join(j, &inv).map_err(core(j))?;
    let mut phase = Joined::One;
    let limit = h.now + JOIN_LIMIT;
    let mut seen = 0;
    while h.now < limit {
        h.run_for(Duration::from_millis(20));
        let mut rsvp = None;
        for e in &h.nodes[j].events[seen..] {
            match e {
                Event::Join {
                    join: id,
                    event: JoinProgress::Phase1Failed { rsvp: r, .. },
                } if *id == join => rsvp = Some((**r).clone()),
                Event::Join {
                    join: id,
                    event: JoinProgress::Failed(e),
                } if *id == join => {
                    return Err(BuildError::JoinFailed {
                        node: j,
                        reason: e.to_string(),
                    });
                }
                _ => {}
            }
        }
        seen = h.nodes[j].events.len();
        if let Some(r) = rsvp {
            phase = Joined::Two;
            h.with(inviter, |c, now| c.accept_rsvp(now, &r))
                .map_err(core(inviter))?;
        }
        if h.nodes[j].core.network_id() == network
            && h.nodes[j].core.credential().membership().member == h.id(j)
            && !h.links_of(j).is_empty()
        {
            return Ok(phase);
        }
    }
    Err(BuildError::NotMember {
        node: j,
        after: JOIN_LIMIT,
    })
}

/// A network of the given sites: node 0 creates it, each newcomer joins with an invitation
/// from a reachable member chosen at random (members issue them from the third node on),
/// naming up to two entry peers.
pub fn network(seed: u64, sites: &[Site]) -> Result<Harness, BuildError> {
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
        if candidates.is_empty() {
            return Err(BuildError::NoInviter { node: j });
        }
        let inviter = candidates[rng.random_range(0..candidates.len())];
        join(&mut h, j, inviter, 2)?;
    }
    Ok(h)
}

/// Whether every live node knows every other live node as an online member.
pub fn converged(h: &Harness) -> bool {
    let live: Vec<usize> = (0..h.nodes.len()).filter(|i| h.nodes[*i].alive).collect();
    let ids: HashSet<_> = live.iter().map(|&k| h.id(k)).collect();
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

/// Whether no live node has a link left to a dead one (they noticed every death).
pub fn deaths_noticed(h: &Harness) -> bool {
    (0..h.nodes.len())
        .filter(|&i| h.nodes[i].alive)
        .all(|i| h.links_of(i).iter().all(|&k| h.nodes[k].alive))
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
