//! Deterministic sample members and records for tests, fuzzing, benchmarks, the simulator
//! and the pinned test vectors. Everything derives from fixed seeds and
//! [`in8_artifact::fixtures::NOW`].

use core::time::Duration;
use std::net::SocketAddr;

use in8_artifact::fixtures::{NOW, alice, network};
use in8_artifact::{
    Candidate, CandidateKind, Capabilities, Identity, Membership, SignedMembership,
};

use crate::record::{NatClass, PeerRecord, SignedPeerRecord};

/// Validity of the sample credentials and records.
pub const VALIDITY: Duration = Duration::from_secs(30 * 86_400);

/// Sample member `i`: an identity from seed `[i + 1; 32]` (member 0 is the network's
/// creator, Alice of `in8_artifact::fixtures`).
pub fn identity(i: u8) -> Identity {
    if i == 0 {
        alice()
    } else {
        Identity::from_seed(&[i.wrapping_add(1); 32])
    }
}

/// Member `i`'s credential: the network root for 0, else issued by the creator with the
/// introduce and invite capabilities.
pub fn credential(i: u8) -> SignedMembership {
    if i == 0 {
        return network();
    }
    match Membership::issue(
        &alice(),
        &network(),
        identity(i).node_id(),
        Capabilities::INTRODUCE | Capabilities::INVITE,
        NOW + VALIDITY,
    ) {
        Ok(c) => c,
        Err(_) => network(),
    }
}

/// Two IPv4 candidates for member `i` (host 10.0.0.i, server-reflexive 198.51.100.i).
pub fn candidates(i: u8) -> Vec<Candidate> {
    let a = |s: String| {
        s.parse()
            .unwrap_or(SocketAddr::from(([192, 0, 2, 1], 4488)))
    };
    vec![
        Candidate::new(CandidateKind::Host, a(format!("10.0.0.{i}:4488")), 0),
        Candidate::new(
            CandidateKind::ServerReflexive,
            a(format!("198.51.100.{i}:50{i:03}")),
            1,
        ),
    ]
}

/// Member `i`'s signed peer record, sequence 1.
pub fn record(i: u8) -> SignedPeerRecord {
    let cred = credential(i);
    let caps = cred.membership().capabilities;
    let rec = PeerRecord {
        network: cred.membership().network,
        node: identity(i).node_id(),
        seq: 1,
        nat: if i.is_multiple_of(2) {
            NatClass::Public
        } else {
            NatClass::PortRestricted
        },
        capabilities: if i == 0 {
            Capabilities::INTRODUCE | Capabilities::INVITE
        } else {
            caps
        },
        expires: NOW + VALIDITY,
        candidates: candidates(i),
        credential: cred,
    };
    match rec.sign(&identity(i)) {
        Ok(r) => r,
        Err(e) => unreachable_fixture(&e),
    }
}

fn unreachable_fixture(e: &crate::Error) -> ! {
    // The fixtures are valid by construction; reaching this is a bug in this module.
    #[allow(clippy::panic)]
    {
        panic!("in8-gossip fixture failed to build: {e}")
    }
}
