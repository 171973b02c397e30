//! The pinned phase-1 check: the first datagram an invitee sends for the sample invitation
//! (`in8_artifact::fixtures::invitation`) from an endpoint seeded with 1. Annotated in
//! docs/ice.md §2. Any change to what in8 puts on the wire changes these bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use std::time::Instant;

use in8_artifact::fixtures;
use in8_ice::stun::{IntegrityKey, Message, attr};
use in8_ice::{Endpoint, EndpointConfig, LocalCandidate};

fn first_check() -> (Vec<u8>, String) {
    let inv = fixtures::invitation();
    let mut e = Endpoint::new(EndpointConfig::default(), 1);
    e.add_local_candidate(LocalCandidate::host("192.0.2.2:5000".parse().unwrap(), 0));
    let id = e.join(Instant::now(), &inv).unwrap();
    let ufrag = e.session(id).unwrap().local_credentials().ufrag.clone();
    (e.poll_transmit().unwrap().contents, ufrag)
}

const PINNED: &str = concat!(
    "0001004c2112a4425a8a52e2d8080a0685134f90000600117a676b3775336863",
    "3a614647392b576e6c000000002400046effffff802a00088f2296509334abcb",
    "00080014e87d555e5eaca53f70c8a9d87ba8128ab701293a80280004fb6d2cbe",
);

#[test]
fn phase1_check_is_pinned() {
    let (bytes, ufrag) = first_check();
    assert_eq!(ufrag, "aFG9+Wnl");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, PINNED);
    // And it is what the inviter can verify from the invitation alone.
    let inv = fixtures::invitation();
    let m = Message::parse(&bytes).unwrap();
    let user = format!("{}:{ufrag}", inv.secret.inviter_ufrag());
    assert_eq!(m.username(), Some(user.as_bytes()));
    assert!(m.verify_integrity(&IntegrityKey::short_term(&inv.secret.inviter_password())));
    assert!(m.has_fingerprint() && m.get(attr::ICE_CONTROLLING).is_some());
}
