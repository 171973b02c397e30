//! Deterministic sample artifacts for tests, fuzzing, benchmarks and documentation.
//!
//! Everything here is derived from fixed seeds and times, so the encodings are stable and
//! pinned by the test vectors in docs/artifact.md.

use core::time::Duration;
use std::net::SocketAddr;

use crate::{
    Candidate, CandidateKind, Identity, Invitation, InviteSecret, Membership, Rsvp,
    SignedInvitation, SignedMembership, SignedRsvp, Timestamp,
};

/// The fixed "now" of the samples: 2026-11-27T03:40:00Z.
pub const NOW: Timestamp = Timestamp(1_795_750_800);

/// The sample inviter ("Alice"), from seed `[0xA1; 32]`.
pub fn alice() -> Identity {
    Identity::from_seed(&[0xA1; 32])
}

/// The sample invitee ("Bob"), from seed `[0xB0; 32]`.
pub fn bob() -> Identity {
    Identity::from_seed(&[0xB0; 32])
}

/// Alice's network: root credential with genesis nonce 1, valid one year from [`NOW`].
pub fn network() -> SignedMembership {
    Membership::genesis(&alice(), 1, NOW + Duration::from_secs(365 * 86_400))
}

/// The sample invite secret: 16 bytes `0x00..=0x0f`.
pub fn secret() -> InviteSecret {
    // 16 bytes is within 16..=32: cannot fail.
    InviteSecret::from_bytes(&core::array::from_fn::<u8, 16, _>(|i| i as u8))
        .unwrap_or_else(|e| unreachable_fixture(e))
}

/// Four IPv4 candidates: two host addresses, one server-reflexive, one relay.
pub fn four_ipv4_candidates() -> Vec<Candidate> {
    let addrs: [(CandidateKind, &str); 4] = [
        (CandidateKind::Host, "192.168.1.20:48808"),
        (CandidateKind::Host, "10.8.0.3:48808"),
        (CandidateKind::ServerReflexive, "203.0.113.7:61000"),
        (CandidateKind::Relay, "198.51.100.9:3478"),
    ];
    addrs
        .iter()
        .enumerate()
        .map(|(i, (k, a))| {
            let addr: SocketAddr = a.parse().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 1)));
            Candidate::new(*k, addr, i)
        })
        .collect()
}

/// The sample invitation: Alice, 4 IPv4 candidates, 15 minutes from [`NOW`], single use.
pub fn invitation() -> Invitation {
    Invitation::new(
        network().membership().network,
        alice().node_id(),
        secret(),
        four_ipv4_candidates(),
        NOW,
        Duration::from_secs(15 * 60),
    )
}

/// [`invitation`] signed by Alice.
pub fn signed_invitation() -> SignedInvitation {
    match invitation().sign(&alice()) {
        Ok(s) => s,
        Err(e) => unreachable_fixture(e),
    }
}

/// Bob's sample RSVP answering [`invitation`]: ufrag `bobufrag`, two IPv4 candidates,
/// valid one hour from [`NOW`].
pub fn rsvp() -> Rsvp {
    let c = |k, a: &str, i| {
        Candidate::new(
            k,
            a.parse().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 1))),
            i,
        )
    };
    Rsvp {
        invite_id: secret().invite_id(),
        responder: bob().node_id(),
        ufrag: "bobufrag".into(),
        candidates: vec![
            c(CandidateKind::Host, "192.168.7.5:40001", 0),
            c(CandidateKind::ServerReflexive, "198.51.100.77:52311", 1),
        ],
        expires: NOW + Duration::from_secs(3600),
        cert_fingerprint: None,
        nat: None,
        extensions: Vec::new(),
    }
}

/// [`rsvp`] signed by Bob and MACed with the invitation's RSVP key.
pub fn signed_rsvp() -> SignedRsvp {
    match rsvp().sign(&bob(), &secret()) {
        Ok(s) => s,
        Err(e) => unreachable_fixture(e),
    }
}

fn unreachable_fixture(e: crate::Error) -> ! {
    // The fixtures are valid by construction; reaching this is a bug in this module.
    #[allow(clippy::panic)]
    {
        panic!("fixture construction failed: {e}")
    }
}
