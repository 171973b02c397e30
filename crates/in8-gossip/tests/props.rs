//! Round-trip properties of the wire format and peer records, and robustness of the
//! decoders against arbitrary bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use in8_artifact::fixtures::NOW;
use in8_artifact::{Candidate, CandidateKind, Capabilities, NodeId, Timestamp};
use in8_gossip::fixtures::{credential, identity, record};
use in8_gossip::wire::{Envelope, Frame};
use in8_gossip::{NatClass, PeerRecord, Priority, SignedPeerRecord};
use proptest::prelude::*;

fn candidate() -> impl Strategy<Value = Candidate> {
    (
        0u8..4,
        any::<bool>(),
        any::<[u8; 16]>(),
        1u16..,
        any::<u32>(),
    )
        .prop_map(|(k, v6, a, port, priority)| {
            let ip = if v6 {
                IpAddr::V6(Ipv6Addr::from(a))
            } else {
                IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))
            };
            let kind = [
                CandidateKind::Host,
                CandidateKind::ServerReflexive,
                CandidateKind::PeerReflexive,
                CandidateKind::Relay,
            ][usize::from(k)];
            Candidate {
                kind,
                addr: SocketAddr::new(ip, port),
                priority,
            }
        })
}

fn nat() -> impl Strategy<Value = NatClass> {
    prop_oneof![
        Just(NatClass::Unknown),
        Just(NatClass::Public),
        Just(NatClass::FullCone),
        Just(NatClass::Restricted),
        Just(NatClass::PortRestricted),
        Just(NatClass::Symmetric),
    ]
}

/// Records of members 1..=4 with arbitrary candidates, sequence numbers and NAT classes.
fn signed_record() -> impl Strategy<Value = SignedPeerRecord> {
    (
        1u8..5,
        any::<u64>(),
        nat(),
        proptest::collection::vec(candidate(), 0..16),
        0u64..1_000_000,
    )
        .prop_map(|(i, seq, nat, candidates, exp)| {
            let cred = credential(i);
            PeerRecord {
                network: cred.membership().network,
                node: identity(i).node_id(),
                seq,
                nat,
                capabilities: Capabilities::INTRODUCE,
                expires: Timestamp(NOW.as_unix() + exp),
                candidates,
                credential: cred,
            }
            .sign(&identity(i))
            .unwrap()
        })
}

fn node() -> impl Strategy<Value = NodeId> {
    any::<[u8; 32]>().prop_map(NodeId::from_bytes)
}

fn records() -> impl Strategy<Value = Vec<SignedPeerRecord>> {
    proptest::collection::vec((1u8..5).prop_map(record), 0..4)
}

fn frame() -> impl Strategy<Value = Frame> {
    let prio = prop_oneof![
        Just(Priority::Low),
        Just(Priority::High),
        Just(Priority::Pinned)
    ];
    let env = (
        node(),
        any::<u64>(),
        proptest::collection::vec(any::<u8>(), 0..64),
        any::<[u8; 32]>(),
    )
        .prop_map(|(origin, seq, payload, s)| {
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(&s);
            Envelope::App {
                origin,
                seq,
                payload,
                signature,
            }
            .encode()
        });
    prop_oneof![
        signed_record().prop_map(|record| Frame::Join { record }),
        (signed_record(), records(), records()).prop_map(|(contact, active, passive)| {
            Frame::JoinReply {
                contact,
                active,
                passive,
            }
        }),
        (any::<u8>(), signed_record()).prop_map(|(ttl, record)| Frame::ForwardJoin { ttl, record }),
        (prio, signed_record()).prop_map(|(priority, record)| Frame::Neighbor { priority, record }),
        any::<bool>().prop_map(|accepted| Frame::NeighborReply { accepted }),
        any::<bool>().prop_map(|alive| Frame::Disconnect { alive }),
        (any::<u8>(), signed_record(), records(), records()).prop_map(
            |(ttl, origin, active, passive)| Frame::Shuffle {
                ttl,
                origin,
                active,
                passive
            }
        ),
        (signed_record(), records())
            .prop_map(|(replier, peers)| Frame::ShuffleReply { replier, peers }),
        (any::<u16>(), env).prop_map(|(round, envelope)| Frame::Gossip { round, envelope }),
        proptest::collection::vec((any::<u64>(), any::<u16>()), 0..32)
            .prop_map(|entries| Frame::IHave { entries }),
        (any::<u64>(), any::<u16>()).prop_map(|(id, round)| Frame::Graft { id, round }),
        Just(Frame::Prune),
        (node(), any::<u64>(), signed_record()).prop_map(|(target, token, offer)| {
            Frame::IntroRequest {
                target,
                token,
                offer,
            }
        }),
        (any::<u16>(), signed_record()).prop_map(|(delay_ms, offer)| Frame::Introduce {
            delay_ms,
            token: u64::from(delay_ms) * 3,
            offer
        }),
        node().prop_map(|target| Frame::IntroUnavailable { target }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn frames_round_trip(f in frame()) {
        let bytes = f.encode();
        let back = Frame::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &f);
        prop_assert_eq!(back.encode(), bytes);
    }

    #[test]
    fn records_round_trip_and_verify(r in signed_record()) {
        let back = SignedPeerRecord::decode(r.to_bytes()).unwrap();
        prop_assert_eq!(&back, &r);
        let network = credential(0).membership().network;
        let policy = in8_artifact::VerifyPolicy::default();
        prop_assert!(back.verify(&network, NOW, &policy, &in8_artifact::NoRevocations).is_ok());
        // Expired one second after `expires` plus the allowed skew.
        let late = back.record().expires + Duration::from_secs(121);
        prop_assert!(back.verify(&network, late, &policy, &in8_artifact::NoRevocations).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Frame::decode(&bytes);
        let _ = SignedPeerRecord::decode(&bytes);
        let _ = Envelope::decode(&bytes);
    }

    #[test]
    fn truncations_and_extensions_are_errors(f in frame(), cut in any::<prop::sample::Index>()) {
        let bytes = f.encode();
        if bytes.len() > 2 && !matches!(f, Frame::Gossip { .. }) {
            let n = cut.index(bytes.len() - 1);
            prop_assert!(Frame::decode(&bytes[..n]).is_err());
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert!(Frame::decode(&longer).is_err());
        }
    }
}
