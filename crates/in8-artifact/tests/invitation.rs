//! Invitations: pinned vector, verification with an injected clock, policy, size goals.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use core::time::Duration;

use in8_artifact::fixtures::{self, NOW, alice, bob, signed_invitation};
use in8_artifact::text::{self, Form};
use in8_artifact::{
    Artifact, Capabilities, EntryPeer, Error, Flags, Invitation, InviteSecret, NoRevocations,
    Revocation, RevocationSet, RevocationTarget, ServerHint, ServerKind, SignedInvitation,
    Timestamp, TopologyRole, VerifyPolicy,
};

/// The sample invitation (docs/artifact.md, "Test vector: invitation").
const INVITATION_HEX: &str = "825876a8000101010250a61b67bc3fe1511d548f42fb344ad4aa035820bc7cbcb5636375fa1d82434d466724d92377f53b980695dd49d26d0ce12205a50450000102030405060708090a0b0c0d0e0f05844700c0a80114bea847000a080003bea84701cb007107ee484703c63364090d96061a6b08ff14090258409ef9f116faec6d0438d9bdbe0d50d0ec4c4a3d269588da0a3e3a9be2467821dbd73c88431a6eb0142bfcdb047e4349a4282100a37b89ed9fbbf55c6cbd3a840c";

fn no_skew() -> VerifyPolicy {
    VerifyPolicy {
        max_skew: Duration::ZERO,
    }
}

#[test]
fn pinned_vector_encodes_and_decodes() {
    let s = signed_invitation();
    assert_eq!(data_encoding::HEXLOWER.encode(s.to_bytes()), INVITATION_HEX);
    let bytes = data_encoding::HEXLOWER
        .decode(INVITATION_HEX.as_bytes())
        .unwrap();
    let d = SignedInvitation::decode(&bytes).unwrap();
    assert_eq!(d.invitation(), &fixtures::invitation());
    d.verify(NOW, &VerifyPolicy::default(), &NoRevocations)
        .unwrap();
}

#[test]
fn size_and_qr_goals_for_four_ipv4_candidates() {
    let s = signed_invitation();
    assert_eq!(s.invitation().candidates.len(), 4);
    assert!(s.to_bytes().len() <= 200, "{} bytes", s.to_bytes().len());
    let qr = in8_artifact::qr::Qr::new(s.to_bytes()).unwrap();
    assert!(qr.version() <= 11, "QR version {}", qr.version());
}

#[test]
fn expiry_boundaries() {
    let s = signed_invitation();
    let exp = s.invitation().expires;
    let p = no_skew();
    let at = |t: Timestamp| s.verify(t, &p, &NoRevocations).map(|_| ());
    at(exp - Duration::from_secs(1)).unwrap();
    assert!(matches!(at(exp), Err(Error::Expired { .. })));
    assert!(matches!(
        at(exp + Duration::from_secs(1)),
        Err(Error::Expired { .. })
    ));
    // With the default skew (120 s) the window stretches by exactly that much.
    let d = VerifyPolicy::default();
    s.verify(exp + Duration::from_secs(119), &d, &NoRevocations)
        .unwrap();
    assert!(
        s.verify(exp + Duration::from_secs(120), &d, &NoRevocations)
            .is_err()
    );
}

#[test]
fn skew_is_capped() {
    let s = signed_invitation();
    let huge = VerifyPolicy {
        max_skew: Duration::from_secs(86_400),
    };
    let late = s.invitation().expires + VerifyPolicy::MAX_SKEW;
    assert!(matches!(
        s.verify(late, &huge, &NoRevocations),
        Err(Error::Expired { .. })
    ));
}

#[test]
fn not_before_with_skew() {
    let mut inv = fixtures::invitation();
    inv.not_before = Some(NOW + Duration::from_secs(600));
    let s = inv.sign(&alice()).unwrap();
    let p = no_skew();
    assert!(matches!(
        s.verify(NOW, &p, &NoRevocations),
        Err(Error::NotYetValid { .. })
    ));
    s.verify(NOW + Duration::from_secs(600), &p, &NoRevocations)
        .unwrap();
    s.verify(
        NOW + Duration::from_secs(480),
        &VerifyPolicy::default(),
        &NoRevocations,
    )
    .unwrap();
}

#[test]
fn only_the_issuer_can_sign() {
    let err = fixtures::invitation().sign(&bob()).unwrap_err();
    assert!(matches!(err, Error::PolicyDenied { .. }));
}

#[test]
fn revoked_invitations_are_refused() {
    let s = signed_invitation();
    let inv = s.invitation();
    let rv = Revocation {
        network: inv.network,
        target: RevocationTarget::Invitation(inv.invite_id()),
        issuer: alice().node_id(),
        issued_at: NOW,
        expires: inv.expires,
        credential: None,
    }
    .sign(&alice())
    .unwrap();
    let mut set = RevocationSet::default();
    assert!(set.insert(&rv, NOW, &VerifyPolicy::default()).unwrap());
    assert!(matches!(
        s.verify(NOW, &VerifyPolicy::default(), &set),
        Err(Error::Revoked { .. })
    ));
    // A revocation of the same id by someone else does not apply.
    let forged = Revocation {
        issuer: bob().node_id(),
        ..rv.revocation().clone()
    }
    .sign(&bob())
    .unwrap();
    let mut other = RevocationSet::default();
    other
        .insert(&forged, NOW, &VerifyPolicy::default())
        .unwrap();
    s.verify(NOW, &VerifyPolicy::default(), &other).unwrap();
}

#[test]
fn every_optional_field_round_trips() {
    let mut inv = fixtures::invitation();
    inv.not_before = Some(NOW);
    inv.uses = 5;
    inv.flags = Flags::RELAY_ALLOWED | Flags::RSVP_ALLOWED;
    inv.capabilities = Capabilities::INTRODUCE | Capabilities::INVITE;
    inv.role = TopologyRole::Hub;
    inv.cert_fingerprint = Some([0x5f; 32]);
    inv.servers = vec![ServerHint {
        kind: ServerKind::Stun,
        host: "stun.example.net".into(),
        port: 3478,
    }];
    inv.entry_peers = vec![EntryPeer {
        id: bob().node_id(),
        candidates: fixtures::four_ipv4_candidates(),
    }];
    let s = inv.clone().sign(&alice()).unwrap();
    let d = SignedInvitation::decode(s.to_bytes()).unwrap();
    assert_eq!(d.invitation(), &inv);
    d.verify(NOW, &VerifyPolicy::default(), &NoRevocations)
        .unwrap();
}

#[test]
fn field_bounds_are_checked_before_signing() {
    let mut inv = fixtures::invitation();
    inv.uses = 0;
    assert!(inv.sign(&alice()).is_err());
    let mut inv = fixtures::invitation();
    inv.candidates = (0..17)
        .map(|_| fixtures::four_ipv4_candidates()[0])
        .collect();
    assert!(matches!(inv.sign(&alice()), Err(Error::WrongSize { .. })));
    let mut inv = fixtures::invitation();
    inv.not_before = Some(inv.expires);
    assert!(inv.sign(&alice()).is_err());
}

#[test]
fn every_form_carries_the_invitation() {
    let s = signed_invitation();
    for form in [
        Form::Text,
        Form::Base32,
        Form::Grouped,
        Form::Cbor,
        Form::Ndef,
    ] {
        let enc = text::encode(s.to_bytes(), form);
        let (a, f) = Artifact::parse(&enc).unwrap();
        assert_eq!(f, form);
        assert_eq!(a, Artifact::Invitation(s.clone()));
    }
}

#[test]
fn an_rsvp_is_not_an_invitation() {
    let r = fixtures::signed_rsvp();
    assert!(matches!(
        SignedInvitation::decode(r.to_bytes()),
        Err(Error::WrongKind {
            expected: "an invitation",
            found: "an RSVP"
        })
    ));
}

#[test]
fn secrets_of_two_invitations_never_collide_in_ids() {
    let a = InviteSecret::from_bytes(&[1; 16]).unwrap();
    let b = InviteSecret::from_bytes(&[2; 16]).unwrap();
    assert_ne!(a.invite_id(), b.invite_id());
    assert_ne!(a.inviter_ufrag(), b.inviter_ufrag());
    let inv: Invitation = fixtures::invitation();
    assert_eq!(inv.invite_id(), fixtures::secret().invite_id());
}

#[test]
fn derivation_vector_is_pinned() {
    // docs/artifact.md, "Test vector: derivations" (secret 00 01 .. 0f).
    let s = fixtures::secret();
    assert_eq!(
        s.invite_id().to_string(),
        "4cd89c1a84902e89117c3d5c08ec54ef"
    );
    assert_eq!(s.inviter_ufrag(), "zgk7u3hc");
    assert_eq!(s.inviter_password(), "JJ9dITwpBdKZ7/D2R4xqGKiz");
    assert_eq!(s.invitee_password("bobufrag"), "ap/50wSV4Kc2g3CRLc5jfb5v");
    let hex = |k: &[u8]| data_encoding::HEXLOWER.encode(k);
    assert_eq!(
        hex(s.join_key().as_ref()),
        "e6f23d7dcb7b01ed4c49faa8bd4f25c2f29572f8bc38a069ea0af572e9a86526"
    );
    assert_eq!(
        hex(s.rsvp_key().as_ref()),
        "d62617afc515aa656cd1be385c01863c3815a70470d9e11c9762ae7f272bac8b"
    );
    assert_eq!(
        alice().node_id().to_string(),
        "xr6lznldmn27uhmcingumzze3erxp5j3tadjlxkj2jwqzyjcawszgty"
    );
}
