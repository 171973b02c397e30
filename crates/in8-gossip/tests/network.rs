//! Real, authenticated `Gossip` nodes (signed records, credential chains, signed
//! broadcasts) on an in-memory network driven through the sans-IO API only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use in8_artifact::fixtures::{NOW, alice};
use in8_artifact::{
    Capabilities, Identity, Membership, NodeId, Revocation, RevocationTarget, SignedMembership,
};
use in8_gossip::fixtures::{candidates, credential, identity};
use in8_gossip::{Config, Error, Event, Gossip, LinkFailure, NatClass, Setup, Time};

const LATENCY: Duration = Duration::from_millis(20);

fn setup(i: u8) -> Setup {
    Setup {
        identity: identity(i),
        credential: credential(i),
        candidates: candidates(i),
        nat: NatClass::Public,
        record_ttl: Duration::from_secs(3600),
        seed: [i; 32],
        wall_epoch: NOW,
    }
}

/// A tiny driver: a queue of frames in flight with a fixed latency, and the timers.
struct Net {
    now: Time,
    nodes: BTreeMap<NodeId, Gossip>,
    flight: VecDeque<(Time, NodeId, NodeId, Vec<u8>)>,
    events: Vec<(NodeId, Event)>,
    rejected: Vec<(NodeId, Error)>,
    /// Pairs that cannot reach each other without an introduction.
    blocked: Vec<(NodeId, NodeId)>,
}

impl Net {
    fn new() -> Self {
        Self {
            now: Time::ZERO,
            nodes: BTreeMap::new(),
            flight: VecDeque::new(),
            events: Vec::new(),
            rejected: Vec::new(),
            blocked: Vec::new(),
        }
    }

    fn add(&mut self, i: u8) -> NodeId {
        let g = Gossip::new(Config::default(), setup(i)).unwrap();
        let id = g.node_id();
        self.nodes.insert(id, g);
        id
    }

    fn node(&mut self, id: NodeId) -> &mut Gossip {
        self.nodes.get_mut(&id).unwrap()
    }

    /// The drive contract: after every input, drain every output.
    fn drain(&mut self, id: NodeId) {
        let now = self.now;
        let mut failed = Vec::new();
        let g = self.nodes.get_mut(&id).unwrap();
        while let Some(t) = g.poll_transmit() {
            let cold = self.blocked.contains(&(id, t.to)) || self.blocked.contains(&(t.to, id));
            if cold && !g.core().is_active(t.to) {
                failed.push(t.to);
            } else {
                self.flight.push_back((now + LATENCY, id, t.to, t.bytes));
            }
        }
        let mut punched = Vec::new();
        while let Some(e) = g.poll_event() {
            if let Event::PunchNow { peer, .. } = &e {
                punched.push(*peer);
            }
            self.events.push((id, e));
        }
        for peer in punched {
            // The simultaneous open works: the pair can talk from now on.
            self.blocked
                .retain(|p| *p != (id, peer) && *p != (peer, id));
            self.node(id).link_up(now, peer);
            self.drain(id);
        }
        for peer in failed {
            self.node(id)
                .link_failed(now, peer, LinkFailure::NeedsIntroduction);
            self.drain(id);
        }
    }

    fn step_until(&mut self, until: Time) {
        loop {
            let next_msg = self.flight.front().map(|f| f.0);
            let next_timer = self
                .nodes
                .iter()
                .filter_map(|(id, g)| g.poll_timeout().map(|t| (t, *id)))
                .min();
            let next = match (next_msg, next_timer) {
                (Some(m), Some((t, _))) => m.min(t),
                (Some(m), None) => m,
                (None, Some((t, _))) => t,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = next;
            if next_msg == Some(next) {
                let (_, from, to, bytes) = self.flight.pop_front().unwrap();
                if let Some(g) = self.nodes.get_mut(&to) {
                    if let Err(e) = g.handle_message(next, from, &bytes) {
                        self.rejected.push((to, e));
                    }
                    self.drain(to);
                }
            } else if let Some((_, id)) = next_timer {
                self.node(id).handle_timeout(next);
                self.drain(id);
            }
        }
        self.now = until;
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.step_until(until);
    }

    fn received(&self, payload: &[u8]) -> usize {
        self.events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Received { payload: p, .. } if p == payload))
            .count()
    }
}

/// Builds a network: member 0 (the creator) starts, the others join through it or
/// through an earlier member.
fn network(n: u8) -> (Net, Vec<NodeId>) {
    let mut net = Net::new();
    let ids: Vec<NodeId> = (0..n).map(|i| net.add(i)).collect();
    net.node(ids[0]).start(Time::ZERO);
    net.drain(ids[0]);
    for (k, id) in ids.iter().enumerate().skip(1) {
        let contact = ids[k / 2];
        let now = net.now;
        net.node(*id).join(now, contact);
        net.drain(*id);
        net.run_for(Duration::from_millis(200));
    }
    net.run_for(Duration::from_secs(20));
    (net, ids)
}

#[test]
fn members_join_and_a_signed_broadcast_reaches_everyone() {
    let (mut net, ids) = network(12);
    for id in &ids {
        let g = &net.nodes[id];
        assert!(g.core().active_len() >= 1, "{id:?} has no neighbour");
        // Every known peer was admitted with a verified record.
        for p in g.core().active_view() {
            assert!(g.peer_record(&p).is_some());
        }
    }
    assert!(net.rejected.is_empty(), "{:?}", net.rejected);
    let now = net.now;
    net.node(ids[3]).broadcast(now, b"hello members").unwrap();
    net.drain(ids[3]);
    net.run_for(Duration::from_secs(3));
    assert_eq!(net.received(b"hello members"), 11);
    let hops = net.events.iter().find_map(|(_, e)| match e {
        Event::Received { origin, .. } => Some(*origin),
        _ => None,
    });
    assert_eq!(hops, Some(ids[3]));
}

#[test]
fn a_non_member_is_not_admitted_and_leaves_no_state() {
    let (mut net, ids) = network(4);
    // Mallory has a credential from a network she created herself.
    let mallory = Identity::from_seed(&[0x66; 32]);
    let other = Membership::genesis(&mallory, 9, NOW + Duration::from_secs(86_400));
    let g = Gossip::new(
        Config::default(),
        Setup {
            credential: other,
            ..setup(0)
        },
    );
    // Her own node refuses the mismatched identity/credential pair outright.
    assert!(g.is_err());
    let mallory_setup = Setup {
        identity: mallory.clone(),
        credential: Membership::genesis(&mallory, 9, NOW + Duration::from_secs(86_400)),
        ..setup(0)
    };
    let mut m = Gossip::new(Config::default(), mallory_setup).unwrap();
    let target = ids[1];
    let now = net.now;
    m.join(now, target);
    let t = m.poll_transmit().unwrap();
    let before = net.nodes[&target].core().passive_view().count();
    let err = net
        .node(target)
        .handle_message(now, mallory.node_id(), &t.bytes)
        .unwrap_err();
    assert!(matches!(err, Error::Mismatch { .. }), "{err}");
    let g = &net.nodes[&target];
    assert!(g.peer_record(&mallory.node_id()).is_none());
    assert!(!g.core().knows(mallory.node_id()));
    assert_eq!(g.core().passive_view().count(), before);
    assert!(g.poll_timeout().is_some());
    // Link-scoped frames from someone never admitted are refused without state too.
    let prune = [in8_gossip::wire::WIRE_VERSION, 0x13];
    assert!(matches!(
        net.node(target)
            .handle_message(now, mallory.node_id(), &prune),
        Err(Error::NotAdmitted { .. })
    ));
}

#[test]
fn garbage_frames_are_errors_not_panics() {
    let (mut net, ids) = network(2);
    let now = net.now;
    use in8_gossip::wire::WIRE_VERSION as V;
    type Expect = fn(&Error) -> bool;
    let cases: [(&[u8], Expect); 5] = [
        (&[], |e| matches!(e, Error::Truncated { .. })),
        (&[V + 1, 1], |e| {
            matches!(e, Error::UnsupportedVersion { .. })
        }),
        (&[V, 0x99], |e| {
            matches!(e, Error::UnknownType { found: 0x99 })
        }),
        (&[V, 0x05, 7], |e| matches!(e, Error::InvalidValue { .. })),
        (&[V, 0x11, 40], |e| matches!(e, Error::TooLong { .. })),
    ];
    for (bad, expected) in cases {
        let err = net
            .node(ids[1])
            .handle_message(now, ids[0], bad)
            .unwrap_err();
        assert!(expected(&err), "{bad:?}: {err:?}");
    }
}

#[test]
fn a_revocation_spreads_and_is_enforced() {
    let (mut net, ids) = network(10);
    let victim = ids[7];
    let rv = Revocation {
        network: credential(0).membership().network,
        target: RevocationTarget::Member(victim),
        issuer: alice().node_id(),
        issued_at: NOW,
        expires: NOW + Duration::from_secs(86_400),
        credential: Some(credential(0)),
    }
    .sign(&alice())
    .unwrap();
    let now = net.now;
    net.node(ids[0]).revoke(now, rv).unwrap();
    net.drain(ids[0]);
    net.run_for(Duration::from_secs(5));
    assert!(
        net.events
            .iter()
            .any(|(id, e)| *id == victim && *e == Event::SelfRevoked)
    );
    for id in ids.iter().filter(|i| **i != victim) {
        let g = &net.nodes[id];
        assert!(
            !g.core().knows(victim),
            "{id:?} still knows the revoked member"
        );
        assert!(g.peer_record(&victim).is_none());
    }
    // The revoked member's broadcasts are no longer accepted.
    let now = net.now;
    let before = net.received(b"from the revoked");
    let _ = net.node(victim).broadcast(now, b"from the revoked");
    net.drain(victim);
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.received(b"from the revoked"), before);
    // A node that joins later learns the revocation from its first neighbour.
    let late = net.add(11);
    let now = net.now;
    net.node(late).join(now, ids[1]);
    net.drain(late);
    net.run_for(Duration::from_secs(2));
    use in8_artifact::Revocations as _;
    assert!(
        net.nodes[&late]
            .revocations()
            .member_revoked(&credential(0).membership().network, &victim)
    );
}

#[test]
fn members_without_the_introduce_right_cannot_introduce() {
    // Member 20's credential lacks INTRODUCE: it answers INTRO-REQUEST with
    // INTRO-UNAVAILABLE, and an INTRODUCE from it is refused.
    let weak = identity(20);
    let cred: SignedMembership = Membership::issue(
        &alice(),
        &credential(0),
        weak.node_id(),
        Capabilities::NONE,
        NOW + Duration::from_secs(86_400),
    )
    .unwrap();
    let g = Gossip::new(
        Config::default(),
        Setup {
            identity: weak.clone(),
            credential: cred,
            ..setup(20)
        },
    )
    .unwrap();
    assert!(
        !g.record()
            .record()
            .capabilities
            .contains(Capabilities::INTRODUCE)
    );
}

#[test]
fn introductions_arrange_a_simultaneous_open() {
    let (mut net, ids) = network(8);
    // A newcomer behind a NAT: it can reach its contact (the invitation did that), but no
    // one else directly. Its contact's JOIN-REPLY names the contact's neighbours, which the
    // contact can introduce it to.
    let contact = ids[2];
    let newcomer = net.add(9);
    for &other in &ids {
        if other != contact {
            net.blocked.push((newcomer, other));
        }
    }
    let now = net.now;
    net.node(newcomer).join(now, contact);
    net.drain(newcomer);
    net.run_for(Duration::from_secs(30));
    let punches: Vec<(NodeId, NodeId, NodeId)> = net
        .events
        .iter()
        .filter_map(|(id, e)| match e {
            Event::PunchNow {
                peer,
                introducer,
                offer,
                ..
            } => {
                // The offer is the other side's signed record, with its candidates.
                assert_eq!(offer.node(), *peer);
                assert!(!offer.record().candidates.is_empty());
                Some((*id, *peer, *introducer))
            }
            _ => None,
        })
        .collect();
    assert!(
        punches
            .iter()
            .any(|(id, _, via)| *id == newcomer && *via == contact),
        "{punches:?}"
    );
    // Both sides are told, by the same introducer.
    for (id, peer, via) in punches.iter().filter(|p| p.0 == newcomer) {
        assert!(punches.contains(&(*peer, *id, *via)));
    }
    let g = &net.nodes[&newcomer];
    assert!(
        g.core().active_len() >= 2,
        "the newcomer only has {} neighbour(s)",
        g.core().active_len()
    );
    // The introducer is not a relay: the newcomer's other links are direct.
    assert!(g.core().active_view().any(|p| p != contact));
}

#[test]
fn a_new_record_spreads_with_a_higher_sequence_number() {
    let (mut net, ids) = network(6);
    let me = ids[4];
    let now = net.now;
    let mut cands = candidates(4);
    cands.truncate(1);
    net.node(me)
        .update_record(now, cands.clone(), NatClass::FullCone)
        .unwrap();
    assert_eq!(net.nodes[&me].record().record().seq, 2);
    // Shuffles carry the origin's record: within a few periods a neighbour holds the new one.
    net.run_for(Duration::from_secs(40));
    let holders = ids
        .iter()
        .filter_map(|id| net.nodes[id].peer_record(&me))
        .filter(|r| r.record().seq == 2 && r.record().candidates == cands)
        .count();
    assert!(holders >= 1, "nobody learned the new record");
}

#[test]
fn expired_members_are_forgotten_and_an_expired_node_leaves() {
    // Member 30's credential is valid for one hour only.
    let short = Membership::issue(
        &alice(),
        &credential(0),
        identity(30).node_id(),
        Capabilities::INTRODUCE,
        NOW + Duration::from_secs(3600),
    )
    .unwrap();
    let (mut net, ids) = network(5);
    let g = Gossip::new(
        Config::default(),
        Setup {
            credential: short,
            ..setup(30)
        },
    )
    .unwrap();
    let short_id = g.node_id();
    net.nodes.insert(short_id, g);
    let now = net.now;
    net.node(short_id).join(now, ids[1]);
    net.drain(short_id);
    net.run_for(Duration::from_secs(30));
    assert!(net.nodes[&ids[1]].core().knows(short_id));
    // Two hours later (past expiry and the allowed skew) everyone has forgotten it, and it
    // has left by itself.
    net.run_for(Duration::from_secs(7200));
    for id in &ids {
        assert!(
            !net.nodes[id].core().knows(short_id),
            "{id:?} still knows it"
        );
    }
    assert!(
        net.events
            .iter()
            .any(|(id, e)| *id == short_id && *e == Event::CredentialExpired)
    );
    assert!(
        net.events
            .iter()
            .any(|(_, e)| *e == Event::PeerExpired(short_id))
    );
}
