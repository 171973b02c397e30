//! The topology policy in the node: which links it wants (in8-topology decides from the
//! member directory), handed to gossip as pinned links with the random view on or off as
//! the policy says. The application may change the policy while the node runs.

use std::time::{Duration, Instant};

use in8_artifact::NodeId;
use in8_topology::{Auto, Conditions, Input, Member, Policy};

use super::Core;
use crate::config::Topology;

/// How often the policy is evaluated when nothing changed.
const IDLE_EVALUATION: Duration = Duration::from_secs(5);
/// How soon after a change in the directory.
const CHANGED_EVALUATION: Duration = Duration::from_millis(500);

/// The policy in force and when to look again.
pub(crate) struct TopologyState {
    fixed: Option<Policy>,
    auto: Option<Auto>,
    pub(crate) next: Instant,
    /// The name of the policy last applied.
    pub(crate) applied: Option<&'static str>,
    /// The links last pinned.
    pub(crate) pinned: Vec<NodeId>,
}

impl TopologyState {
    pub(crate) fn new(choice: &Topology, now: Instant) -> Self {
        let (fixed, auto) = match choice {
            Topology::Fixed(p) => (Some(p.clone()), None),
            Topology::Auto(cfg) => (None, Auto::new(cfg.clone()).ok()),
        };
        Self {
            fixed: fixed.or_else(|| auto.is_none().then_some(Policy::Random)),
            auto,
            next: now,
            applied: None,
            pinned: Vec::new(),
        }
    }

    fn policy(&self) -> Policy {
        match (&self.fixed, &self.auto) {
            (Some(p), _) => p.clone(),
            (None, Some(a)) => a.policy(),
            (None, None) => Policy::Random,
        }
    }
}

impl Core {
    /// Switches the topology policy now (links follow within a few round trips).
    pub fn set_topology(&mut self, now: Instant, choice: &Topology) -> crate::Result<()> {
        if let Topology::Fixed(p) = choice {
            p.validate()?;
        }
        self.net.topology = TopologyState::new(choice, now);
        self.apply_topology(now);
        self.flush(now, None);
        Ok(())
    }

    /// The links the topology policy (and the application) want now.
    pub fn desired_links(&self) -> &[NodeId] {
        &self.net.topology.pinned
    }

    /// The name of the policy in force.
    pub fn topology_name(&self) -> &'static str {
        self.net.topology.policy().name()
    }

    /// Decides the wanted links from the directory and pins them in gossip.
    pub(crate) fn apply_topology(&mut self, now: Instant) {
        let dirty = self.net.directory.changed;
        self.net.directory.changed = false;
        let mut members: Vec<Member<NodeId>> = self
            .net
            .directory
            .online()
            .filter(|(id, _)| !self.net.revoked(id))
            .map(|(id, e)| Member {
                reachable: e.record.record().nat.reachable(),
                rtt_ms: self.rtt_to(id),
                ..Member::new(*id)
            })
            .collect();
        let me_reachable = matches!(
            super::classify::record_class(self.nat.as_ref()),
            in8_gossip::NatClass::Public | in8_gossip::NatClass::FullCone
        );
        members.push(Member {
            reachable: me_reachable,
            ..Member::new(self.me)
        });
        let t = &mut self.net.topology;
        if let Some(a) = &mut t.auto {
            let reachable = members.iter().filter(|m| m.reachable).count();
            let c = Conditions {
                size: members.len() as u64,
                reachable_fraction: reachable as f64 / members.len().max(1) as f64,
            };
            let _ = a.update(now.saturating_duration_since(self.net.started), &c);
        }
        let policy = t.policy();
        let d = policy.desired(&Input::new(self.me, &members));
        let mut pinned = d.links;
        for w in &self.net.app_wanted {
            if !pinned.contains(w) {
                pinned.push(*w);
            }
        }
        pinned.truncate(self.config.network.max_links);
        let name = policy.name();
        let changed_policy = t.applied != Some(name);
        // Against what gossip pins now (a fresh policy state starts from nothing, gossip
        // does not).
        let mut now_pinned: Vec<NodeId> = self
            .net
            .gossip
            .as_ref()
            .map(|g| g.core().pinned_peers().to_vec())
            .unwrap_or_default();
        let mut wanted = pinned.clone();
        now_pinned.sort();
        wanted.sort();
        let t = &mut self.net.topology;
        let changed_links = t.pinned != pinned || now_pinned != wanted;
        t.applied = Some(name);
        t.next = now
            + if dirty {
                CHANGED_EVALUATION
            } else {
                IDLE_EVALUATION
            };
        if changed_links {
            t.pinned = pinned.clone();
        }
        let limit = if d.random { usize::MAX } else { 0 };
        let gt = self.gtime(now);
        if let Some(g) = &mut self.net.gossip {
            if changed_links {
                g.set_pinned(gt, &pinned);
            }
            if changed_policy || changed_links {
                g.set_random_limit(gt, limit);
            }
        }
        if changed_policy {
            self.push_event(super::Event::Network(super::NetEvent::TopologyChanged {
                policy: name,
            }));
        }
    }

    /// The directory changed: decide again within [`CHANGED_EVALUATION`].
    pub(crate) fn topology_soon(&mut self, now: Instant) {
        let soon = now + CHANGED_EVALUATION;
        if self.net.topology.next > soon {
            self.net.topology.next = soon;
        }
    }

    /// The measured round trip to `peer` on its link, in milliseconds.
    fn rtt_to(&self, peer: &NodeId) -> Option<u32> {
        let link = self.net.admitted.get(peer)?;
        let rtt = self.links.get(link)?.info.as_ref()?.path.rtt?;
        u32::try_from(rtt.as_millis()).ok()
    }
}
