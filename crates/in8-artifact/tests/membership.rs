//! Membership chains: attenuation, depth limit, self-certifying network ids, revocation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use core::time::Duration;

use in8_artifact::fixtures::{NOW, alice, bob, network};
use in8_artifact::{
    Capabilities, Error, Identity, MAX_CHAIN_DEPTH, Membership, NoRevocations, Revocation,
    RevocationSet, RevocationTarget, SignedMembership, SignedRevocation, VerifyPolicy,
};

const DAY: Duration = Duration::from_secs(86_400);

fn carol() -> Identity {
    Identity::from_seed(&[0xC0; 32])
}

fn bob_member(caps: Capabilities) -> SignedMembership {
    Membership::issue(&alice(), &network(), bob().node_id(), caps, NOW + DAY).unwrap()
}

#[test]
fn a_chain_verifies_to_the_creator_and_round_trips() {
    let b = bob_member(Capabilities::INVITE | Capabilities::INTRODUCE);
    let c = Membership::issue(
        &bob(),
        &b,
        carol().node_id(),
        Capabilities::INTRODUCE,
        NOW + DAY,
    )
    .unwrap();
    assert_eq!(c.depth(), 2);
    let creator = c
        .verify(NOW, &VerifyPolicy::default(), &NoRevocations)
        .unwrap();
    assert_eq!(creator, alice().node_id());
    let d = SignedMembership::decode(c.to_bytes()).unwrap();
    assert_eq!(d, c);
}

#[test]
fn rights_never_widen() {
    let b = bob_member(Capabilities::INVITE);
    let err = Membership::issue(
        &bob(),
        &b,
        carol().node_id(),
        Capabilities::INVITE | Capabilities::REVOKE,
        NOW + DAY,
    )
    .unwrap_err();
    assert!(matches!(err, Error::BadChain { .. }));
    let err = Membership::issue(
        &bob(),
        &b,
        carol().node_id(),
        Capabilities::NONE,
        NOW + DAY * 2,
    )
    .unwrap_err();
    assert!(matches!(err, Error::BadChain { .. }));
    let no_invite = bob_member(Capabilities::INTRODUCE);
    let err = Membership::issue(
        &bob(),
        &no_invite,
        carol().node_id(),
        Capabilities::NONE,
        NOW,
    )
    .unwrap_err();
    assert!(matches!(err, Error::BadChain { .. }));
}

#[test]
fn depth_is_limited() {
    let mut ids = vec![alice()];
    let mut rec = network();
    for i in 0..MAX_CHAIN_DEPTH {
        let next = Identity::from_seed(&[i as u8 + 1; 32]);
        rec = Membership::issue(
            &ids[i],
            &rec,
            next.node_id(),
            Capabilities::INVITE,
            NOW + DAY,
        )
        .unwrap();
        ids.push(next);
    }
    assert_eq!(rec.depth(), MAX_CHAIN_DEPTH);
    rec.verify(NOW, &VerifyPolicy::default(), &NoRevocations)
        .unwrap();
    SignedMembership::decode(rec.to_bytes()).unwrap();
    let last = ids.last().unwrap();
    let err = Membership::issue(last, &rec, carol().node_id(), Capabilities::NONE, NOW + DAY)
        .unwrap_err();
    assert!(matches!(err, Error::BadChain { .. }));
}

#[test]
fn a_forged_root_does_not_derive_the_network_id() {
    // Mallory self-issues a "root" claiming Alice's network.
    let mallory = carol();
    let fake = Membership::genesis(&mallory, 1, NOW + DAY);
    let alices = network();
    assert_ne!(fake.membership().network, alices.membership().network);
    // Re-signing Alice's root body with another key fails the signature.
    let mut bytes = alices.to_bytes().to_vec();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    let d = SignedMembership::decode(&bytes).unwrap();
    assert!(matches!(
        d.verify(NOW, &VerifyPolicy::default(), &NoRevocations),
        Err(Error::BadSignature { .. })
    ));
}

#[test]
fn expired_links_fail() {
    let b = bob_member(Capabilities::NONE);
    assert!(matches!(
        b.verify(NOW + DAY * 2, &VerifyPolicy::default(), &NoRevocations),
        Err(Error::Expired { .. })
    ));
}

fn revoke_bob(by: &Identity, credential: Option<SignedMembership>) -> SignedRevocation {
    Revocation {
        network: network().membership().network,
        target: RevocationTarget::Member(bob().node_id()),
        issuer: by.node_id(),
        issued_at: NOW,
        expires: NOW + DAY,
        credential,
    }
    .sign(by)
    .unwrap()
}

#[test]
fn member_revocation_needs_the_revoke_right_and_then_applies_down_the_chain() {
    let b = bob_member(Capabilities::INVITE);
    let c =
        Membership::issue(&bob(), &b, carol().node_id(), Capabilities::NONE, NOW + DAY).unwrap();
    let policy = VerifyPolicy::default();

    // Carol (no revoke right) cannot revoke Bob.
    let c_rv =
        Membership::issue(&bob(), &b, carol().node_id(), Capabilities::NONE, NOW + DAY).unwrap();
    let mut set = RevocationSet::default();
    assert!(matches!(
        set.insert(&revoke_bob(&carol(), Some(c_rv)), NOW, &policy),
        Err(Error::PolicyDenied { .. })
    ));
    // Without a credential nobody can.
    assert!(
        set.insert(&revoke_bob(&alice(), None), NOW, &policy)
            .is_err()
    );

    // The creator can; then Bob's and Carol's (issued through Bob) credentials fail.
    assert!(
        set.insert(&revoke_bob(&alice(), Some(network())), NOW, &policy)
            .unwrap()
    );
    assert!(matches!(
        b.verify(NOW, &policy, &set),
        Err(Error::Revoked { .. })
    ));
    assert!(matches!(
        c.verify(NOW, &policy, &set),
        Err(Error::Revoked { .. })
    ));

    // The record round trips and expires out of the set.
    let rv = revoke_bob(&alice(), Some(network()));
    assert_eq!(SignedRevocation::decode(rv.to_bytes()).unwrap(), rv);
    set.prune(NOW + DAY * 2);
    assert!(set.is_empty());
}

#[test]
fn revocation_set_is_bounded() {
    let mut set = RevocationSet::new(1);
    let policy = VerifyPolicy::default();
    set.insert(&revoke_bob(&alice(), Some(network())), NOW, &policy)
        .unwrap();
    let other = Revocation {
        target: RevocationTarget::Member(carol().node_id()),
        ..revoke_bob(&alice(), Some(network())).revocation().clone()
    }
    .sign(&alice())
    .unwrap();
    assert!(matches!(
        set.insert(&other, NOW, &policy),
        Err(Error::CapacityExceeded { .. })
    ));
    // Once the first has expired (beyond the maximal skew) there is room again.
    let later = NOW + DAY + VerifyPolicy::MAX_SKEW;
    let fresh = Revocation {
        issued_at: later,
        expires: later + DAY,
        ..other.revocation().clone()
    }
    .sign(&alice())
    .unwrap();
    let root = Membership::genesis(&alice(), 1, later + DAY * 2);
    let fresh = Revocation {
        credential: Some(root),
        ..fresh.revocation().clone()
    }
    .sign(&alice())
    .unwrap();
    assert!(set.insert(&fresh, later, &policy).unwrap());
}
