//! The optional NAT behaviour of invitations (key 15) and RSVPs (key 9): pinned vectors,
//! the unchanged vectors without it, values this reader does not understand kept as
//! extensions (never an error), and the checks before signing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use in8_artifact::fixtures::{self, NOW, alice, bob, secret};
use in8_artifact::{
    Error, NatBehaviour, NatFiltering, NatMapping, NoRevocations, SignedInvitation, SignedRsvp,
    VerifyPolicy,
};

fn symmetric() -> NatBehaviour {
    NatBehaviour {
        mapping: Some(NatMapping::AddressAndPortDependent),
        filtering: Some(NatFiltering::AddressAndPortDependent),
    }
}

fn hex(b: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(b)
}

/// The sample invitation (docs/artifact.md) with the issuer behind a symmetric NAT: the body
/// grows by `0f 82 04 03` after key 9 (flags) and its map by one item.
const INVITATION_NAT_HEX: &str = "82587aa9000101010250a61b67bc3fe1511d548f42fb344ad4aa035820bc7cbcb5636375fa1d82434d466724d92377f53b980695dd49d26d0ce12205a50450000102030405060708090a0b0c0d0e0f05844700c0a80114bea847000a080003bea84701cb007107ee484703c63364090d96061a6b08ff1409020f820403";

/// The sample RSVP with the responder behind a port-restricted cone NAT (EIM, APDF): the
/// body grows by `09 82 02 03` after key 6 (expires).
const RSVP_NAT_HEX: &str = "835860a80001010202504cd89c1a84902e89117c3d5c08ec54ef035820705fbac01f5519899f437bc42e40255ae9ab54bff00de3433af7d687d9e71ad50468626f62756672616705824700c0a807059c414701c633644dcc57061a6b0909a009820203";

#[test]
fn invitation_vector_with_the_issuers_nat() {
    let mut inv = fixtures::invitation();
    inv.nat = Some(symmetric());
    let s = inv.clone().sign(&alice()).unwrap();
    let bytes = s.to_bytes();
    // Envelope, body, then the 64-byte signature (with its 2-byte head).
    let body_and_head = &bytes[..bytes.len() - 66];
    assert_eq!(hex(body_and_head), INVITATION_NAT_HEX);
    assert!(
        hex(body_and_head).ends_with("09020f820403"),
        "key 15 right after key 9"
    );
    let d = SignedInvitation::decode(bytes).unwrap();
    assert_eq!(d.invitation(), &inv);
    assert_eq!(d.to_bytes(), bytes);
    d.verify(NOW, &VerifyPolicy::default(), &NoRevocations)
        .unwrap();
    // Without it the pinned vector is unchanged (tests/invitation.rs pins the whole bytes).
    assert!(fixtures::invitation().nat.is_none());
    assert!(!hex(fixtures::signed_invitation().to_bytes()).contains("0f820403"));
}

#[test]
fn rsvp_vector_with_the_responders_nat() {
    let mut r = fixtures::rsvp();
    r.nat = Some(NatBehaviour {
        mapping: Some(NatMapping::EndpointIndependent),
        filtering: Some(NatFiltering::AddressAndPortDependent),
    });
    let s = r.clone().sign(&bob(), &secret()).unwrap();
    let bytes = s.to_bytes();
    // Envelope, body, then the MAC (17 bytes with its head) and the signature (66).
    let body_and_head = &bytes[..bytes.len() - 66 - 17];
    assert_eq!(hex(body_and_head), RSVP_NAT_HEX);
    let d = SignedRsvp::decode(bytes).unwrap();
    assert_eq!(d.rsvp(), &r);
    assert_eq!(d.to_bytes(), bytes);
    d.verify(&fixtures::invitation(), NOW, &VerifyPolicy::default())
        .unwrap();
}

#[test]
fn partial_behaviours_round_trip() {
    for nat in [
        NatBehaviour {
            mapping: Some(NatMapping::EndpointIndependent),
            filtering: None,
        },
        NatBehaviour {
            mapping: None,
            filtering: Some(NatFiltering::AddressDependent),
        },
    ] {
        let mut inv = fixtures::invitation();
        inv.nat = Some(nat);
        let s = inv.clone().sign(&alice()).unwrap();
        assert_eq!(
            SignedInvitation::decode(s.to_bytes()).unwrap().invitation(),
            &inv
        );
    }
}

/// A value under the key that this reader does not understand (a newer writer's code, or
/// another shape) is what an older reader sees in any unknown odd key: preserved, covered
/// by the signature, re-encoded byte for byte, and not an error.
#[test]
fn values_this_reader_does_not_understand_are_kept_as_extensions() {
    for raw in [
        vec![0x82, 0x05, 0x03],       // mapping code 5
        vec![0x82, 0x00, 0x00],       // nothing known (a writer must omit it)
        vec![0x83, 0x04, 0x03, 0x01], // a third item
        vec![0x63, b'a', b'b', b'c'], // another type
    ] {
        let mut inv = fixtures::invitation();
        inv.extensions = vec![(15, raw.clone())];
        let s = inv.clone().sign(&alice()).unwrap();
        let d = SignedInvitation::decode(s.to_bytes()).unwrap();
        assert_eq!(d.invitation().nat, None, "{raw:02x?}");
        assert_eq!(d.invitation().extensions, vec![(15, raw.clone())]);
        assert_eq!(d.to_bytes(), s.to_bytes());
        d.verify(NOW, &VerifyPolicy::default(), &NoRevocations)
            .unwrap();

        let mut r = fixtures::rsvp();
        r.extensions = vec![(9, raw.clone())];
        let s = r.sign(&bob(), &secret()).unwrap();
        let d = SignedRsvp::decode(s.to_bytes()).unwrap();
        assert_eq!(d.rsvp().nat, None);
        assert_eq!(d.rsvp().extensions, vec![(9, raw)]);
    }
}

#[test]
fn unknown_or_doubled_behaviours_are_refused_before_signing() {
    let mut inv = fixtures::invitation();
    inv.nat = Some(NatBehaviour {
        mapping: None,
        filtering: None,
    });
    assert!(matches!(
        inv.sign(&alice()),
        Err(Error::InvalidValue {
            field: "nat behaviour",
            ..
        })
    ));
    let mut inv = fixtures::invitation();
    inv.nat = Some(symmetric());
    inv.extensions = vec![(15, vec![0x01])];
    assert!(matches!(
        inv.sign(&alice()),
        Err(Error::InvalidValue {
            field: "nat behaviour",
            ..
        })
    ));
    let mut r = fixtures::rsvp();
    r.nat = Some(NatBehaviour {
        mapping: None,
        filtering: None,
    });
    assert!(matches!(
        r.sign(&bob(), &secret()),
        Err(Error::InvalidValue {
            field: "nat behaviour",
            ..
        })
    ));
}
