//! Networks in the deterministic harness: real cores (establishment, gossip, topology,
//! ICE) over the simulated network with NAT boxes, in virtual time. Seeds are fixed; a
//! failure reproduces with its seed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

mod support;

use std::time::Duration;

use in8_core::harness::{Harness, Site};
use in8_ice::sim::Nat;
use support::{connected, converged, deaths_noticed, mixed_sites, network};

#[test]
fn two_nodes_form_a_network_from_one_invitation() {
    let mut h = Harness::new(1);
    let a = h.add_node(Site::Public);
    let b = h.add_node(Site::Behind(Nat::PortRestricted));
    let inv = h.invite(a).unwrap();
    h.join(b, &inv).unwrap();
    assert!(h.run_until(Duration::from_secs(30), |h| converged(h)
        && h.links_of(a) == [b]));
    // The newcomer's credential was issued by the inviter, chained to the creator.
    let cred = h.nodes[b].core.credential().clone();
    assert_eq!(cred.membership().issuer, h.id(a));
    assert_eq!(cred.membership().network, h.nodes[a].core.network_id());
    assert_eq!(cred.depth(), 1);
    // A broadcast reaches the other member with the origin's verified signature.
    h.with(b, |c, now| c.broadcast(now, b"hi")).unwrap();
    h.run_for(Duration::from_secs(1));
    assert_eq!(h.received(a), vec![(h.id(b), b"hi".to_vec())]);
}

#[test]
fn ten_nodes_behind_mixed_nats_form_one_network() {
    let sites = mixed_sites(10);
    let mut h = network(2, &sites);
    assert!(
        h.run_until(Duration::from_secs(60), |h| converged(h) && connected(h)),
        "members: {:?}",
        (0..10).map(|i| h.members_of(i)).collect::<Vec<_>>()
    );
    h.with(3, |c, now| c.broadcast(now, b"ten")).unwrap();
    h.run_for(Duration::from_secs(2));
    for i in (0..10).filter(|i| *i != 3) {
        assert_eq!(h.received(i), vec![(h.id(3), b"ten".to_vec())], "node{i}");
    }
}

#[test]
fn a_hundred_nodes_behind_mixed_nats_form_one_network() {
    let sites = mixed_sites(100);
    let mut h = network(3, &sites);
    assert!(
        h.run_until(Duration::from_secs(120), |h| converged(h) && connected(h)),
        "members: {:?}",
        (0..100).map(|i| h.members_of(i)).collect::<Vec<_>>()
    );
    h.with(42, |c, now| c.broadcast(now, b"hundred")).unwrap();
    h.run_for(Duration::from_secs(5));
    for i in (0..100).filter(|i| *i != 42) {
        assert_eq!(
            h.received(i),
            vec![(h.id(42), b"hundred".to_vec())],
            "node{i}"
        );
    }
}

use in8_artifact::Ledger as _;
use in8_core::proto::NetEvent;
use in8_core::{InviteOptions, Topology};
use in8_topology::{Input, Member, Policy};

/// The links the overlay has, as (a, b) index pairs with a < b.
fn link_set(h: &Harness) -> std::collections::BTreeSet<(usize, usize)> {
    let mut s = std::collections::BTreeSet::new();
    for i in (0..h.nodes.len()).filter(|i| h.nodes[*i].alive) {
        for k in h.links_of(i) {
            s.insert((i.min(k), i.max(k)));
        }
    }
    s
}

/// What `policy` promises for the live nodes, computed from the full membership and the
/// sites (publicly reachable: public or full cone), as every node should compute it.
fn promised(h: &Harness, policy: &Policy) -> std::collections::BTreeSet<(usize, usize)> {
    let live: Vec<usize> = (0..h.nodes.len()).filter(|i| h.nodes[*i].alive).collect();
    let members: Vec<Member<in8_artifact::NodeId>> = live
        .iter()
        .map(|&i| Member {
            reachable: support::reachable(h.nodes[i].site),
            ..Member::new(h.id(i))
        })
        .collect();
    let mut s = std::collections::BTreeSet::new();
    for &i in &live {
        for p in policy.desired(&Input::new(h.id(i), &members)).links {
            let k = h.index_of(&p).unwrap();
            s.insert((i.min(k), i.max(k)));
        }
    }
    s
}

#[test]
fn every_topology_policy_produces_the_link_set_it_promises() {
    // No two symmetric NATs (nothing but a relay links those), so every promised link can
    // be made directly or through an introduction.
    let sites: Vec<Site> = mixed_sites(12)
        .into_iter()
        .enumerate()
        .map(|(i, s)| if i == 10 { Site::Public } else { s })
        .collect();
    let strict = [
        Policy::Mesh { max_links: 64 },
        Policy::Star { hubs: 2 },
        Policy::Tree { fanout: 2 },
        Policy::Dag { parents: 2 },
        Policy::Hierarchical { core: 3, attach: 2 },
    ];
    for policy in strict {
        // A fresh network per policy (the run-time switch has its own test).
        let mut h = network(4, &sites);
        assert!(h.run_until(Duration::from_secs(60), converged));
        for i in 0..h.nodes.len() {
            h.with(i, |c, now| {
                c.set_topology(now, &Topology::Fixed(policy.clone()))
            })
            .unwrap();
        }
        let want = promised(&h, &policy);
        let ok = match &policy {
            // Non-core nodes attach to the core nodes nearest by measured round trip: check
            // the shape (the core meshed, everyone else on exactly `attach` core nodes).
            Policy::Hierarchical { attach, .. } => {
                let core: std::collections::BTreeSet<usize> = want
                    .iter()
                    .filter(|(a, b)| {
                        want.iter().filter(|(x, y)| x == a || y == a).count() > *attach
                            && want.iter().filter(|(x, y)| x == b || y == b).count() > *attach
                    })
                    .flat_map(|(a, b)| [*a, *b])
                    .collect();
                let attach = *attach;
                h.run_until(Duration::from_secs(90), |h| {
                    let links = link_set(h);
                    let core_meshed = core
                        .iter()
                        .all(|a| core.iter().all(|b| a >= b || links.contains(&(*a, *b))));
                    let others_ok = (0..h.nodes.len()).filter(|i| !core.contains(i)).all(|i| {
                        let mine: Vec<usize> = links
                            .iter()
                            .filter(|(a, b)| *a == i || *b == i)
                            .map(|(a, b)| if *a == i { *b } else { *a })
                            .collect();
                        mine.len() == attach && mine.iter().all(|k| core.contains(k))
                    });
                    core_meshed && others_ok
                })
            }
            _ => h.run_until(Duration::from_secs(90), |h| link_set(h) == want),
        };
        if !ok {
            for i in 0..h.nodes.len() {
                let g = h.nodes[i].core.gossip().unwrap();
                let act: Vec<(usize, Option<(bool, bool)>)> = g
                    .core()
                    .active_view()
                    .map(|p| (h.index_of(&p).unwrap(), g.core().pins(p)))
                    .collect();
                println!(
                    "node{i} desired {:?} active {act:?} rv {}",
                    h.nodes[i]
                        .core
                        .desired_links()
                        .iter()
                        .map(|p| h.index_of(p).unwrap())
                        .collect::<Vec<_>>(),
                    g.core().random_view()
                );
            }
        }
        assert!(
            ok,
            "{}: promised {want:?}, overlay {:?}",
            policy.name(),
            link_set(&h)
        );
        // Broadcasts ride the policy's links.
        let origin = h.nodes.len() - 1;
        let tag = format!("via {}", policy.name()).into_bytes();
        h.with(origin, |c, now| c.broadcast(now, &tag)).unwrap();
        h.run_for(Duration::from_secs(3));
        for i in (0..h.nodes.len()).filter(|i| *i != origin) {
            assert!(
                h.received(i).iter().any(|(_, p)| *p == tag),
                "{}: node{i} missed the broadcast",
                policy.name()
            );
        }
    }
    // Random partial views (and a hybrid) keep a connected overlay whose pinned part is
    // the promised one.
    for policy in [
        Policy::Random,
        Policy::Hybrid(
            Box::new(Policy::Hierarchical { core: 3, attach: 2 }),
            Box::new(Policy::Random),
        ),
    ] {
        let mut h = network(4, &sites);
        assert!(h.run_until(Duration::from_secs(60), converged));
        for i in 0..h.nodes.len() {
            h.with(i, |c, now| {
                c.set_topology(now, &Topology::Fixed(policy.clone()))
            })
            .unwrap();
        }
        let want = promised(&h, &policy);
        assert!(
            h.run_until(Duration::from_secs(90), |h| connected(h)
                && link_set(h).is_superset(&want)),
            "{}",
            policy.name()
        );
    }
}

#[test]
fn the_topology_changes_while_the_network_runs() {
    let sites = mixed_sites(8);
    let mut h = network(9, &sites);
    // Small: `auto` starts as a full mesh.
    let mesh = promised(&h, &Policy::Mesh { max_links: 64 });
    assert!(h.run_until(Duration::from_secs(60), |h| link_set(h) == mesh));
    let star = Policy::Star { hubs: 1 };
    for i in 0..h.nodes.len() {
        h.with(i, |c, now| {
            c.set_topology(now, &Topology::Fixed(star.clone()))
        })
        .unwrap();
        assert!(
            h.net_events(i)
                .any(|e| *e == NetEvent::TopologyChanged { policy: "star" })
        );
    }
    let want = promised(&h, &star);
    assert!(
        h.run_until(Duration::from_secs(60), |h| link_set(h) == want),
        "{want:?} vs {:?}",
        link_set(&h)
    );
}

#[test]
fn a_revoked_member_is_cut_off_everywhere() {
    let sites = mixed_sites(10);
    let mut h = network(5, &sites);
    assert!(h.run_until(Duration::from_secs(60), converged));
    let victim = 6;
    let id = h.id(victim);
    h.with(0, |c, now| c.revoke_member(now, id)).unwrap();
    let cut = |h: &Harness| {
        (0..10).filter(|i| *i != victim).all(|i| {
            !h.links_of(i).contains(&victim)
                && !h.nodes[i].core.members().iter().any(|m| m.id == id)
        })
    };
    assert!(h.run_until(Duration::from_secs(20), cut));
    assert!(
        h.net_events(victim)
            .any(|e| matches!(e, NetEvent::SelfRevoked))
    );
    for i in (0..10).filter(|i| *i != victim) {
        assert!(
            h.net_events(i).any(|e| *e == NetEvent::MemberRevoked(id)),
            "node{i}"
        );
    }
    // Its broadcasts go nowhere; it cannot dial back in.
    let _ = h.with(victim, |c, now| c.broadcast(now, b"still here?"));
    h.run_for(Duration::from_secs(20));
    for i in (0..10).filter(|i| *i != victim) {
        assert!(h.received(i).iter().all(|(o, _)| *o != id), "node{i}");
        assert!(!h.links_of(i).contains(&victim), "node{i} relinked");
    }
}

#[test]
fn half_the_nodes_killed_the_survivors_stay_connected_and_all_get_the_next_broadcast() {
    let sites = mixed_sites(20);
    let mut h = network(6, &sites);
    assert!(h.run_until(Duration::from_secs(60), |h| converged(h) && connected(h)));
    // Every other node dies, the creator among them.
    for i in (0..20).step_by(2) {
        h.kill(i);
    }
    // ICE consent (30 s) notices the dead; gossip repairs the views.
    assert!(h.run_until(Duration::from_secs(120), |h| deaths_noticed(h)
        && connected(h)));
    h.with(19, |c, now| c.broadcast(now, b"survivors")).unwrap();
    h.run_for(Duration::from_secs(3));
    for i in (1..19).step_by(2) {
        assert!(
            h.received(i).iter().any(|(_, p)| p == b"survivors"),
            "node{i}"
        );
    }
}

#[test]
fn a_single_use_invitation_redeemed_at_one_entry_peer_is_refused_by_the_others() {
    // The issuer sits behind a port-restricted NAT: newcomers reach it only through its
    // entry peers (both public).
    let mut h = Harness::new(7);
    let e1 = h.add_node(Site::Public);
    let issuer = h.add_node(Site::Behind(Nat::PortRestricted));
    let e2 = h.add_node(Site::Public);
    support::join(&mut h, issuer, e1, 0).unwrap();
    support::join(&mut h, e2, e1, 0).unwrap();
    assert!(h.run_until(Duration::from_secs(30), |h| converged(h)
        && h.links_of(issuer).len() == 2));
    let options = InviteOptions {
        entry_peers: 2,
        ..InviteOptions::default()
    };
    let inv = h.invite_with(issuer, &options).unwrap();
    let named: Vec<_> = inv.invitation().entry_peers.iter().map(|e| e.id).collect();
    assert_eq!(named.len(), 2);
    assert!(named.contains(&h.id(e1)) && named.contains(&h.id(e2)));
    let id = inv.invitation().invite_id();
    let first = h.add_node(Site::Behind(Nat::Symmetric));
    h.join(first, &inv).unwrap();
    let redeemed = |h: &Harness, i: usize| {
        h.ledger(i)
            .status(&id)
            .ok()
            .flatten()
            .is_some_and(|s| s.used == 1)
    };
    assert!(h.run_until(Duration::from_secs(20), |h| {
        [e1, e2].iter().any(|i| redeemed(h, *i))
    }));
    // The newcomer's credential names the entry peer that admitted it.
    let entry = h.index_of(&h.nodes[first].core.credential().membership().issuer);
    assert!(entry == Some(e1) || entry == Some(e2), "{entry:?}");
    // The redemption is announced: the issuer and the other entry peer record it within
    // a few one-way delays (the harness checks every 50 ms).
    let at = h.elapsed();
    assert!(h.run_until(Duration::from_secs(5), |h| {
        [e1, e2, issuer].iter().all(|i| redeemed(h, *i))
    }));
    let spread = h.elapsed() - at;
    assert!(spread <= Duration::from_millis(200), "{spread:?}");
    // A second joiner with the same invitation is refused wherever it lands.
    let second = h.add_node(Site::Public);
    let join = h.join(second, &inv).unwrap();
    assert!(h.run_until(Duration::from_secs(30), |h| {
        h.nodes[second].events.iter().any(|e| {
            matches!(e, in8_core::proto::Event::Join { join: j, event: in8_core::proto::JoinProgress::Failed(in8_core::Error::JoinRefused(in8_transport::Refusal::AlreadyUsed)) } if *j == join)
        })
    }));
    assert_ne!(
        h.nodes[second].core.network_id(),
        h.nodes[e1].core.network_id()
    );
}

#[test]
fn a_restarted_member_rejoins_from_its_credential_and_the_network_outlives_its_founders() {
    let sites = mixed_sites(8);
    let mut h = network(8, &sites);
    assert!(h.run_until(Duration::from_secs(60), converged));
    // A member restarts: no invitation, its stored credential and last-known members.
    let r = 5;
    h.run_for(Duration::from_secs(70)); // the members list is persisted every minute
    h.kill(r);
    h.run_for(Duration::from_secs(5));
    h.restart(r);
    assert!(
        h.run_until(Duration::from_secs(60), |h| !h.links_of(r).is_empty()
            && h.members_of(r) == 7)
    );
    // The creator and node 1's inviter leave for good.
    h.with(0, |c, now| c.leave(now));
    h.run_for(Duration::from_secs(3));
    h.kill(0);
    // A newcomer invited by a later member still joins, and everyone hears its broadcast.
    let newcomer = h.add_node(Site::Behind(Nat::PortRestricted));
    support::join(&mut h, newcomer, 2, 0).unwrap();
    assert!(h.run_until(Duration::from_secs(60), connected));
    h.with(newcomer, |c, now| c.broadcast(now, b"after the founders"))
        .unwrap();
    h.run_for(Duration::from_secs(3));
    for i in 1..8 {
        assert!(
            h.received(i)
                .iter()
                .any(|(_, p)| p == b"after the founders"),
            "node{i}"
        );
    }
    for i in 1..8 {
        assert!(
            h.net_events(i).any(|e| *e
                == NetEvent::MemberDown {
                    member: h.id(0),
                    left: true
                }),
            "node{i} heard the creator leave"
        );
    }
}

/// A node outside the network cannot even run ICE with a member (the member-session
/// credentials derive from the network id); a revoked member can, and is refused at its
/// HELLO: the link closes and nothing of it is kept.
#[test]
fn outsiders_and_revoked_members_are_refused_and_leave_no_state() {
    let mut h = Harness::new(10);
    let a = h.add_node(Site::Public);
    let b = h.add_node(Site::Public);
    let v = h.add_node(Site::Public);
    support::join(&mut h, b, a, 0).unwrap();
    support::join(&mut h, v, a, 0).unwrap();
    assert!(h.run_until(Duration::from_secs(30), converged));
    let outsider = h.add_node(Site::Public);
    let record = h.nodes[a].core.gossip().unwrap().record().clone();
    assert!(h.with(outsider, |c, now| c.dial_record(now, &record)));
    let vid = h.id(v);
    h.with(a, |c, now| c.revoke_member(now, vid)).unwrap();
    h.run_for(Duration::from_secs(10));
    assert!(!h.links_of(a).contains(&v));
    // The revoked member dials back in with its (valid, revoked) credential.
    let before = h.nodes[a].core.ice_stats();
    assert!(h.with(v, |c, now| c.dial_record(now, &record)));
    let admitted = h.run_until(Duration::from_secs(15), |h| {
        h.links_of(a).contains(&v) || h.links_of(a).contains(&outsider)
    });
    assert!(!admitted, "an outsider or the revoked member was admitted");
    for (who, id) in [(outsider, h.id(outsider)), (v, vid)] {
        assert!(!h.links_of(a).contains(&who), "node{who} linked");
        assert!(h.nodes[a].core.members().iter().all(|m| m.id != id));
        assert!(h.nodes[a].core.gossip().unwrap().peer_record(&id).is_none());
        assert!(h.nodes[a].core.link_to(&id).is_none());
        assert!(
            h.nodes[who].core.links_up().is_empty(),
            "node{who}: {:?}",
            h.nodes[who].core.links_up()
        );
    }
    // The outsider's checks never authenticated (no session, no state).
    assert!(h.nodes[a].core.ice_stats().unauthenticated >= before.unauthenticated);
}

#[test]
fn an_expired_credential_is_cut_off_and_refused() {
    let mut h = Harness::new(11);
    // Credentials issued in this network last five minutes.
    h.configure = |c| c.network.credential_ttl = Duration::from_secs(300);
    let a = h.add_node(Site::Public);
    let b = h.add_node(Site::Public);
    let c = h.add_node(Site::Behind(Nat::FullCone));
    support::join(&mut h, b, a, 0).unwrap();
    support::join(&mut h, c, a, 0).unwrap();
    assert!(h.run_until(Duration::from_secs(30), converged));
    let bid = h.id(b);
    // Past the expiry and the verifier's clock-skew allowance, b is out.
    h.run_for(
        Duration::from_secs(300)
            + in8_artifact::VerifyPolicy::default().skew()
            + Duration::from_secs(30),
    );
    assert!(
        h.net_events(b)
            .any(|e| matches!(e, NetEvent::CredentialExpired))
    );
    for i in [a, c] {
        assert!(!h.links_of(i).contains(&b), "node{i} still linked");
        assert!(
            h.nodes[i].core.members().iter().all(|m| m.id != bid),
            "node{i}"
        );
    }
    // It dials back in: ICE and DTLS work (it holds its key), its HELLO is refused — at
    // no point is it in the overlay.
    let record = h.nodes[a].core.gossip().unwrap().record().clone();
    assert!(h.with(b, |c, now| c.dial_record(now, &record)));
    let admitted = h.run_until(Duration::from_secs(15), |h| h.links_of(a).contains(&b));
    assert!(!admitted, "the expired member was admitted");
    assert!(h.nodes[a].core.link_to(&bid).is_none());
    assert!(h.nodes[a].core.members().iter().all(|m| m.id != bid));
    assert!(
        h.nodes[b].core.links_up().is_empty(),
        "{:?}",
        h.nodes[b].core.links_up()
    );
}

#[test]
fn a_member_flooding_its_link_is_rate_limited_then_disconnected() {
    let mut h = Harness::new(12);
    let a = h.add_node(Site::Public);
    let b = h.add_node(Site::Public);
    support::join(&mut h, b, a, 0).unwrap();
    assert!(h.run_until(Duration::from_secs(30), |h| h.links_of(a) == [b]));
    // A valid, harmless gossip frame (PRUNE), 10,000 times at once: over the burst of
    // 4,000 frames they are dropped; past another burst the link closes.
    let prune = vec![
        in8_core::proto::wire::NET_WIRE_VERSION,
        0x03,
        in8_gossip::wire::WIRE_VERSION,
        0x13,
    ];
    let aid = h.id(a);
    for _ in 0..10_000 {
        h.send_raw(b, &aid, prune.clone());
    }
    h.run_for(Duration::from_secs(3));
    assert!(
        h.links_of(a).is_empty(),
        "the flooding member is disconnected"
    );
    // And refused for a while: it cannot dial straight back in.
    let record = h.nodes[a].core.gossip().unwrap().record().clone();
    h.with(b, |c, now| c.dial_record(now, &record));
    h.run_for(Duration::from_secs(10));
    assert!(
        h.links_of(a).is_empty(),
        "the flooding member got back in at once"
    );
}
