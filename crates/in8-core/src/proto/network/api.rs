//! What an application does with the network: members and links, broadcast, messages and
//! links to any member, revocation, leaving.

use std::time::{Duration, Instant};

use in8_artifact::{
    Candidate, Capabilities, NetworkId, NodeId, Revocation, RevocationTarget, SignedMembership,
};
use in8_gossip::Gossip;

use super::super::wire::{Broadcast, NetFrame};
use super::super::{CloseCause, Core, LinkId, Store};
use crate::error::{Error, Result};

/// The sizes of this node's gossip views against what they should hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Views {
    /// Active neighbours (live links gossip uses), pinned and random.
    pub active: usize,
    /// The active view's capacity.
    pub active_capacity: usize,
    /// Pinned (topology) links up, and how many the policy wants.
    pub pinned: (usize, usize),
    /// The random-link budget in force (the topology may cap it).
    pub random_budget: usize,
    /// Members kept in the passive view (known, not linked).
    pub passive: usize,
    /// The passive view's capacity.
    pub passive_capacity: usize,
    /// Members this node tried and has not been able to link so far (its dials and, when
    /// one was asked for, introductions failed).
    pub unreachable: usize,
}

impl Views {
    /// The active view's target: every pinned link plus the random budget, within the
    /// capacity and the `others` members there are.
    pub fn active_target(&self, others: usize) -> usize {
        (self.pinned.1 + self.random_budget)
            .min(self.active_capacity)
            .min(others)
    }

    /// Whether both views hold what they should, given `others` members besides this
    /// node: the active view at its target, and the passive view at 90 % or more of what
    /// it can hold — its capacity, or every other member this node could link (members
    /// every attempt failed to link so far do not count). The 10 % is the passive view's
    /// steady churn: a member promoted to the active view leaves it until the next
    /// shuffle refills it. ([`crate::Node::desired_links`] says which policy links are
    /// up.)
    pub fn full(&self, others: usize) -> bool {
        let usable = others.saturating_sub(self.unreachable);
        let room = self
            .passive_capacity
            .min(usable.saturating_sub(self.active));
        self.active >= self.active_target(usable) && self.passive * 10 >= room * 9
    }
}

/// Introduced punches towards members of one NAT class (their records' class).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PunchCount {
    /// Attempts started after an introduction.
    pub started: u64,
    /// Attempts that ended in a link.
    pub linked: u64,
    /// Attempts that ended without one.
    pub failed: u64,
}

/// Counters of this node's introductions, since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// By the peer's NAT class, in the order of `in8_gossip::NatClass` (unknown, public,
    /// full cone, restricted, port restricted, symmetric).
    pub punches: [PunchCount; 6],
}

impl NetStats {
    /// The counters for peers of class `nat`.
    pub fn of(&self, nat: in8_gossip::NatClass) -> PunchCount {
        self.punches[class_index(nat)]
    }
}

/// The index of `nat` in [`NetStats::punches`].
pub(crate) fn class_index(nat: in8_gossip::NatClass) -> usize {
    use in8_gossip::NatClass as N;
    match nat {
        N::Unknown => 0,
        N::Public => 1,
        N::FullCone => 2,
        N::Restricted => 3,
        N::PortRestricted => 4,
        N::Symmetric => 5,
    }
}

/// What this node knows about one member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    /// The member.
    pub id: NodeId,
    /// Heard of recently and not left.
    pub online: bool,
    /// Its NAT class, as its record states it.
    pub nat: in8_gossip::NatClass,
    /// The rights its credential grants.
    pub capabilities: Capabilities,
    /// Where it can be reached (its record's candidates).
    pub candidates: Vec<Candidate>,
    /// Who issued its credential.
    pub issuer: NodeId,
    /// Its credential's distance from the creator (0: the creator).
    pub depth: usize,
    /// This node's overlay link to it, if any.
    pub link: Option<LinkId>,
    /// The overlay neighbours it announced.
    pub neighbours: Vec<NodeId>,
}

impl Core {
    /// The network this node belongs to.
    pub fn network_id(&self) -> NetworkId {
        self.net.network()
    }

    /// This node's membership credential.
    pub fn credential(&self) -> &SignedMembership {
        &self.net.credential
    }

    /// The gossip instance (views, eager links), when this node takes part.
    pub fn gossip(&self) -> Option<&Gossip> {
        self.net.gossip.as_ref()
    }

    /// The members this node knows (not itself), by id.
    pub fn members(&self) -> Vec<MemberInfo> {
        self.net
            .directory
            .iter()
            .map(|(id, e)| {
                let r = e.record.record();
                let m = r.credential.membership();
                MemberInfo {
                    id: *id,
                    online: e.online,
                    nat: r.nat,
                    capabilities: m.capabilities,
                    candidates: r.candidates.clone(),
                    issuer: m.issuer,
                    depth: r.credential.depth(),
                    link: self.net.admitted.get(id).copied(),
                    neighbours: e.neighbours.clone(),
                }
            })
            .collect()
    }

    /// The introduction counters.
    pub fn net_stats(&self) -> NetStats {
        self.net.stats
    }

    /// The NAT class a member's record states (unknown for a member not in the
    /// directory).
    pub(crate) fn nat_of_member(&self, peer: &NodeId) -> in8_gossip::NatClass {
        self.net
            .directory
            .get(peer)
            .map_or(in8_gossip::NatClass::Unknown, |e| e.record.record().nat)
    }

    /// The gossip views' sizes (all zero before this node takes part).
    pub fn views(&self) -> Views {
        let Some(g) = self.net.gossip.as_ref() else {
            return Views::default();
        };
        let c = g.core().config();
        Views {
            active: g.core().active_len(),
            active_capacity: c.active_view,
            pinned: (g.core().pinned_count(), g.core().pinned_peers().len()),
            random_budget: g.core().random_view(),
            unreachable: self.net.unreachable.len(),
            passive: g.core().passive_view().count(),
            passive_capacity: c.passive_view,
        }
    }

    /// The ids of the members this node knows as online.
    pub fn online_members(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.net.directory.online().map(|(id, _)| *id)
    }

    /// The overlay links: (peer, link), by peer.
    pub fn overlay_links(&self) -> Vec<(NodeId, LinkId)> {
        let mut v: Vec<(NodeId, LinkId)> =
            self.net.admitted.iter().map(|(p, l)| (*p, *l)).collect();
        v.sort();
        v
    }

    /// This node's overlay link to `peer`.
    pub fn link_to(&self, peer: &NodeId) -> Option<LinkId> {
        self.net.admitted.get(peer).copied()
    }

    /// Broadcasts `payload` to every member (Plumtree over the overlay), signed by this
    /// node. Returns the message id.
    pub fn broadcast(&mut self, now: Instant, payload: &[u8]) -> Result<u64> {
        self.tick(now);
        if self.net.left {
            return Err(Error::NotAMember);
        }
        let bytes = Broadcast::App(payload.to_vec()).encode();
        let gt = self.gtime(now);
        let g = self.net.gossip.as_mut().ok_or(Error::NotAMember)?;
        let id = g.broadcast(gt, &bytes)?;
        self.flush(now, None);
        Ok(id)
    }

    /// Sends `payload` to member `to` over its link; without one, a link is made (direct,
    /// or introduced by a common neighbour) and the message waits for it (bounded by
    /// [`crate::NetworkConfig::queued_per_peer`]).
    pub fn send_message(&mut self, now: Instant, to: NodeId, payload: Vec<u8>) -> Result<()> {
        self.tick(now);
        if payload.len() > self.config.network.max_message {
            return Err(Error::TooLarge {
                what: "message",
                len: payload.len(),
                max: self.config.network.max_message,
            });
        }
        if to == self.me || self.record_of(&to).is_none() {
            return Err(Error::UnknownMember(to));
        }
        if !self.send_to_member(to, NetFrame::Message(payload.clone())) {
            self.route_gossip(now, to, NetFrame::Message(payload));
        }
        self.flush(now, None);
        Ok(())
    }

    /// Keeps a link to `peer` (made on demand and pinned) until [`Core::release_link`].
    pub fn want_link(&mut self, now: Instant, peer: NodeId) -> Result<()> {
        self.tick(now);
        if peer == self.me || self.record_of(&peer).is_none() {
            return Err(Error::UnknownMember(peer));
        }
        if self.net.app_wanted.len() >= self.config.network.max_links
            && !self.net.app_wanted.contains(&peer)
        {
            return Err(Error::Limit {
                what: "links the application holds",
                limit: self.config.network.max_links,
            });
        }
        self.net.app_wanted.insert(peer);
        self.net.directory.changed = true;
        self.apply_topology(now);
        self.flush(now, None);
        Ok(())
    }

    /// Lets go of a link [`Core::want_link`] asked for.
    pub fn release_link(&mut self, now: Instant, peer: NodeId) {
        self.tick(now);
        if self.net.app_wanted.remove(&peer) {
            self.apply_topology(now);
            self.flush(now, None);
        }
    }

    /// Revokes `member`'s credential (this node's credential must grant REVOKE): the
    /// revocation spreads through the network and every member cuts it off.
    pub fn revoke_member(&mut self, now: Instant, member: NodeId) -> Result<()> {
        self.tick(now);
        let own = self.net.credential.membership();
        if own.member != own.issuer && !own.capabilities.contains(Capabilities::REVOKE) {
            return Err(Error::NotAllowed {
                what: "revoke: this node's credential does not grant it",
            });
        }
        let wall = self.wall(now);
        let expires = self
            .record_of(&member)
            .map(|r| r.record().credential.membership().expires)
            .unwrap_or(wall + Duration::from_secs(365 * 86_400))
            .max(wall + Duration::from_secs(3600));
        let record = Revocation {
            network: own.network,
            target: RevocationTarget::Member(member),
            issuer: self.me,
            issued_at: wall,
            expires,
            credential: Some(self.net.credential.clone()),
        }
        .sign(&self.identity)?;
        let gt = self.gtime(now);
        let g = self.net.gossip.as_mut().ok_or(Error::NotAMember)?;
        g.revoke(gt, record)?;
        self.flush(now, None);
        Ok(())
    }

    /// Leaves the network for good: says so (a LEAVE broadcast, DISCONNECT to the
    /// neighbours), closes the member links and forgets the credential.
    pub fn leave(&mut self, now: Instant) {
        self.tick(now);
        if self.net.left {
            return;
        }
        self.gossip_broadcast(Broadcast::Leave.encode());
        self.drain_gossip(now);
        let gt = self.gtime(now);
        if let Some(g) = &mut self.net.gossip {
            g.leave(gt);
        }
        self.drain_gossip(now);
        self.net.left = true;
        self.leave_links(now);
        if self.config.state_dir.is_some() {
            self.push_action(super::super::Action::Store(Store::ForgetNetwork));
        }
        let _ = CloseCause::Leaving;
        self.flush(now, None);
    }

    /// Whether this node left its network ([`Core::leave`]) or was revoked.
    pub fn has_left(&self) -> bool {
        self.net.left || self.net.gossip.as_ref().is_none_or(|g| g.core().has_left())
    }
}

#[cfg(test)]
mod tests {
    use super::Views;

    fn views(active: usize, passive: usize, unreachable: usize) -> Views {
        Views {
            active,
            active_capacity: 5,
            pinned: (0, 0),
            random_budget: 5,
            passive,
            passive_capacity: 30,
            unreachable,
        }
    }

    #[test]
    fn full_views_allow_for_unreachable_members_and_passive_churn() {
        // 57 others, 10 of them unlinkable: the passive view can hold its 30; 27 is 90 %.
        assert!(views(5, 27, 10).full(57));
        assert!(!views(5, 26, 10).full(57));
        assert!(!views(4, 30, 10).full(57), "the active view is short");
        // A small network: everyone is in the active view, the passive one is empty.
        assert!(views(3, 0, 0).full(3));
        // Two of five others cannot be linked: three active is all there can be.
        assert!(views(3, 0, 2).full(5));
        assert!(!views(2, 0, 2).full(5));
    }
}
