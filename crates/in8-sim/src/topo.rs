//! Applying an in8-topology policy to every simulated node.
//!
//! Each node decides alone from what it knows: with up to [`FULL_VIEW_LIMIT`] live members
//! it knows all of them (small networks keep full membership), above that only its own
//! active and passive views. Reachability comes from the NAT model (in a real network, from
//! the NAT class in signed peer records); round trips are the links' latencies (measured
//! by the driver in a real network). The auto policy is fed the live member count.

use in8_topology::{Auto, AutoConfig, Conditions, Input, Member, Policy};

use crate::Error;
use crate::engine::Sim;
use crate::scenario::Topology;

/// Above this many live members, nodes decide from their own views only.
pub const FULL_VIEW_LIMIT: usize = 1000;

/// The policy driver.
#[derive(Debug)]
pub(crate) struct TopologyDriver {
    pub(crate) interval_s: f64,
    fixed: Option<Policy>,
    auto: Option<Auto>,
    pub(crate) switches: Vec<(f64, String)>,
}

impl TopologyDriver {
    pub(crate) fn new(t: &Topology) -> Result<Self, Error> {
        let bad = |e: in8_topology::Error| Error::Scenario(e.to_string());
        let fixed = match t.policy.as_str() {
            "mesh" => Some(Policy::Mesh { max_links: 64 }),
            "star" => Some(Policy::Star { hubs: t.hubs }),
            "tree" => Some(Policy::Tree { fanout: t.fanout }),
            "spanning-tree" => Some(Policy::SpanningTree),
            "dag" => Some(Policy::Dag { parents: t.fanout }),
            "hierarchical" => Some(Policy::Hierarchical {
                core: t.core,
                attach: t.attach,
            }),
            "random" => Some(Policy::Random),
            "hybrid" => Some(Policy::Hybrid(
                Box::new(Policy::Hierarchical {
                    core: t.core,
                    attach: t.attach,
                }),
                Box::new(Policy::Random),
            )),
            "auto" => None,
            other => {
                return Err(bad(in8_topology::Error::UnknownPolicy {
                    name: other.to_owned(),
                }));
            }
        };
        if let Some(p) = &fixed {
            p.validate().map_err(bad)?;
        }
        let auto = if fixed.is_none() {
            Some(
                Auto::new(AutoConfig {
                    core: t.core,
                    attach: t.attach,
                    ..AutoConfig::default()
                })
                .map_err(bad)?,
            )
        } else {
            None
        };
        Ok(Self {
            interval_s: t.interval_s,
            fixed,
            auto,
            switches: Vec::new(),
        })
    }
}

impl Sim {
    pub(crate) fn apply_topology(&mut self) {
        let live = self.live();
        let now = self.now;
        let Some(driver) = self.topology.as_mut() else {
            return;
        };
        let policy = match (&driver.fixed, &mut driver.auto) {
            (Some(p), _) => p.clone(),
            (None, Some(a)) => {
                let reachable = live
                    .iter()
                    .filter(|&&i| self.nodes[i as usize].nat.reachable())
                    .count();
                let c = Conditions {
                    size: live.len() as u64,
                    reachable_fraction: reachable as f64 / live.len().max(1) as f64,
                };
                if let Some(stage) = a.update(now.as_duration(), &c) {
                    driver
                        .switches
                        .push((now.as_duration().as_secs_f64(), format!("{stage:?}")));
                }
                a.policy()
            }
            (None, None) => return,
        };
        let full = live.len() <= FULL_VIEW_LIMIT;
        let member = |sim: &Sim, me: u32, i: u32| Member {
            reachable: sim.nodes[i as usize].nat.reachable(),
            rtt_ms: Some((2 * sim.lat.one_way_us(me, i) / 1000) as u32),
            ..Member::new(i)
        };
        for &n in &live {
            let known: Vec<u32> = if full {
                live.clone()
            } else {
                let s = &self.nodes[n as usize].state;
                let mut v: Vec<u32> = s.active_view().chain(s.passive_view()).collect();
                v.push(n);
                v
            };
            let members: Vec<Member<u32>> = known.iter().map(|&i| member(self, n, i)).collect();
            let d = policy.desired(&Input::new(n, &members));
            // As in8-core does: a policy that keeps only its own links switches the random
            // view off (gossip keeps two random links while the pinned ones do not carry
            // the node yet).
            let limit = if d.random { usize::MAX } else { 0 };
            let state = &mut self.nodes[n as usize].state;
            state.set_pinned(now, &d.links, &mut self.out);
            state.set_random_limit(now, limit, &mut self.out);
            self.flush(n);
        }
    }
}
