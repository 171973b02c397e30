//! Networks in the deterministic harness: real cores (establishment, gossip, topology,
//! ICE) over the simulated network with NAT boxes, in virtual time. Seeds are fixed; a
//! failure reproduces with its seed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

mod support;

use std::time::Duration;

use in8_core::harness::{Harness, Site};
use in8_ice::sim::Nat;
use support::{connected, converged, mixed_sites, network};

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
