//! RSVPs: pinned vector, MAC, signature, reference to the invitation, expiry, policy.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use core::time::Duration;

use in8_artifact::fixtures::{self, NOW, alice, bob, signed_rsvp};
use in8_artifact::{Error, Flags, InviteSecret, Rsvp, SignedRsvp, VerifyPolicy};

/// The sample RSVP (docs/artifact.md, "Test vector: RSVP").
const RSVP_HEX: &str = "83585ca70001010202504cd89c1a84902e89117c3d5c08ec54ef035820705fbac01f5519899f437bc42e40255ae9ab54bff00de3433af7d687d9e71ad50468626f62756672616705824700c0a807059c414701c633644dcc57061a6b0909a05046fe41e16883c2d9da377c5bd96a0a925840a2a134f6d4639fc89d5a89306df8206e094c300005a2a578243fe656d1e91b329799d3e6a1e928c65220c48af8bb7a8a6fe67a90182f52af28de8f92af16390d";

fn policy() -> VerifyPolicy {
    VerifyPolicy {
        max_skew: Duration::ZERO,
    }
}

#[test]
fn pinned_vector_encodes_decodes_and_verifies() {
    let s = signed_rsvp();
    assert_eq!(data_encoding::HEXLOWER.encode(s.to_bytes()), RSVP_HEX);
    let bytes = data_encoding::HEXLOWER.decode(RSVP_HEX.as_bytes()).unwrap();
    let d = SignedRsvp::decode(&bytes).unwrap();
    assert_eq!(d.rsvp(), &fixtures::rsvp());
    d.verify(&fixtures::invitation(), NOW, &policy()).unwrap();
}

#[test]
fn tampered_mac_is_rejected() {
    let good = signed_rsvp().to_bytes().to_vec();
    // The MAC is the second item: find it as the 16-byte string right before the signature.
    let sig_start = good.len() - 64 - 2;
    let mac_start = sig_start - 16;
    assert_eq!(good[mac_start - 1], 0x50, "MAC head (bstr of 16)");
    let mut m = good.clone();
    m[mac_start + 3] ^= 0x40;
    let d = SignedRsvp::decode(&m).unwrap();
    assert!(matches!(
        d.verify(&fixtures::invitation(), NOW, &policy()),
        Err(Error::BadMac { .. })
    ));
}

#[test]
fn rsvp_for_another_invitation_is_rejected() {
    let mut other = fixtures::invitation();
    other.secret = InviteSecret::from_bytes(&[0x77; 16]).unwrap();
    assert!(matches!(
        signed_rsvp().verify(&other, NOW, &policy()),
        Err(Error::WrongInvitation { .. })
    ));
}

#[test]
fn holder_of_the_id_but_not_the_secret_cannot_forge() {
    // Someone who saw only the invitation id (not the secret) computes a MAC with a guess.
    let guessed = InviteSecret::from_bytes(&[0x99; 16]).unwrap();
    let mut r = fixtures::rsvp();
    r.invite_id = guessed.invite_id();
    let forged = r.sign(&bob(), &guessed).unwrap();
    let mut bytes = forged.to_bytes().to_vec();
    // Rewrite the reference to the real invitation: the MAC (and signature) no longer match.
    let real = fixtures::secret().invite_id();
    let pos = bytes
        .windows(16)
        .position(|w| w == guessed.invite_id().as_bytes())
        .unwrap();
    bytes[pos..pos + 16].copy_from_slice(real.as_bytes());
    let d = SignedRsvp::decode(&bytes).unwrap();
    assert!(matches!(
        d.verify(&fixtures::invitation(), NOW, &policy()),
        Err(Error::BadMac { .. })
    ));
}

#[test]
fn signature_must_be_the_responders() {
    let err = fixtures::rsvp()
        .sign(&alice(), &fixtures::secret())
        .unwrap_err();
    assert!(matches!(err, Error::PolicyDenied { .. }));
    // A valid MAC but a signature by someone else (the responder field says Bob).
    let good = signed_rsvp().to_bytes().to_vec();
    let mut m = good;
    let n = m.len();
    m[n - 1] ^= 1;
    let d = SignedRsvp::decode(&m).unwrap();
    assert!(matches!(
        d.verify(&fixtures::invitation(), NOW, &policy()),
        Err(Error::BadSignature { .. })
    ));
}

#[test]
fn expiry_boundaries() {
    let s = signed_rsvp();
    let exp = s.rsvp().expires;
    let inv = fixtures::invitation();
    s.verify(&inv, exp - Duration::from_secs(1), &policy())
        .unwrap();
    assert!(matches!(
        s.verify(&inv, exp, &policy()),
        Err(Error::Expired { .. })
    ));
    assert!(matches!(
        s.verify(&inv, exp + Duration::from_secs(1), &policy()),
        Err(Error::Expired { .. })
    ));
}

#[test]
fn invitations_that_forbid_rsvps_refuse_them() {
    let mut inv = fixtures::invitation();
    inv.flags = Flags::NONE;
    assert!(matches!(
        signed_rsvp().verify(&inv, NOW, &policy()),
        Err(Error::PolicyDenied { .. })
    ));
}

#[test]
fn ufrag_must_be_ice_chars() {
    let mut r: Rsvp = fixtures::rsvp();
    r.ufrag = "bad:ufrag".into();
    assert!(r.sign(&bob(), &fixtures::secret()).is_err());
}
