//! Pinned, annotated test vectors of the gossip wire format v2 (docs/gossip.md, "Test
//! vectors"): short frames byte by byte, the sample peer record of
//! `in8_gossip::fixtures::record(1)`, and a GOSSIP frame carrying a signed application
//! broadcast. Signatures are deterministic (ed25519), so every byte is fixed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use bytes::Bytes;
use in8_artifact::fixtures::NOW;
use in8_artifact::{NoRevocations, VerifyPolicy};
use in8_gossip::fixtures::{credential, identity, record};
use in8_gossip::wire::{Envelope, Frame, encoded_len, message_id};
use in8_gossip::{Message, NatClass, Priority, SignedPeerRecord};

fn hex(parts: &[&str]) -> Vec<u8> {
    let s: String = parts.concat().split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn check(frame: Frame, parts: &[&str]) {
    let bytes = hex(parts);
    assert_eq!(frame.encode(), bytes, "encoding of {frame:?}");
    assert_eq!(Frame::decode(&bytes).unwrap(), frame);
}

#[test]
fn short_frames() {
    // version 2, type 0x05 NEIGHBOR-REPLY, accepted = 1
    check(Frame::NeighborReply { accepted: true }, &["02 05 01"]);
    // version 2, type 0x06 DISCONNECT, alive = 0 (leaving for good)
    check(Frame::Disconnect { alive: false }, &["02 06 00"]);
    // version 2, type 0x13 PRUNE, no body
    check(Frame::Prune, &["02 13"]);
    // version 2, type 0x12 GRAFT, message id (8, big-endian), round (2)
    check(
        Frame::Graft {
            id: 0x0102_0304_0506_0708,
            round: 3,
        },
        &["02 12", "0102030405060708", "0003"],
    );
    // version 2, type 0x11 IHAVE, count 2, (id, round) × 2
    check(
        Frame::IHave {
            entries: vec![(1, 1), (0xff, 2)],
        },
        &["02 11 02", "0000000000000001 0001", "00000000000000ff 0002"],
    );
    // version 2, type 0x22 INTRO-UNAVAILABLE, target node id (32): the sample creator
    check(
        Frame::IntroUnavailable {
            target: identity(0).node_id(),
        },
        &[
            "02 22",
            "bc7cbcb5636375fa1d82434d466724d92377f53b980695dd49d26d0ce12205a5",
        ],
    );
}

#[test]
fn introduction_frames_carry_the_token() {
    // version 2, type 0x20 INTRO-REQUEST, target node id (32), token (8), then the
    // requester's record (self-delimiting, see `sample_peer_record`).
    let f = Frame::IntroRequest {
        target: identity(0).node_id(),
        token: 0x0102_0304_0506_0708,
        offer: record(1),
    };
    let head = hex(&[
        "02 20",
        "bc7cbcb5636375fa1d82434d466724d92377f53b980695dd49d26d0ce12205a5",
        "0102030405060708",
    ]);
    let bytes = f.encode();
    assert_eq!(&bytes[..head.len()], &head[..]);
    assert_eq!(&bytes[head.len()..], record(1).to_bytes());
    assert_eq!(Frame::decode(&bytes).unwrap(), f);
    // version 2, type 0x21 INTRODUCE, delay ms (2), token (8), the other side's record.
    let f = Frame::Introduce {
        delay_ms: 40,
        token: 9,
        offer: record(1),
    };
    let bytes = f.encode();
    assert_eq!(
        &bytes[..12],
        &hex(&["02 21", "0028", "0000000000000009"])[..]
    );
    assert_eq!(Frame::decode(&bytes).unwrap(), f);
    // A version-1 frame is refused by its version byte.
    let mut v1 = bytes.clone();
    v1[0] = 1;
    assert!(matches!(
        Frame::decode(&v1),
        Err(in8_gossip::Error::UnsupportedVersion { found: 1, .. })
    ));
}

/// `fixtures::record(1)`: member 1, two IPv4 candidates, a depth-1 credential.
const RECORD: &[&str] = &[
    "01bd01a61b67bc3fe1511d548f42fb344ad4aa8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8f",
    "c9b39400000000000000010400000003000000006b30889002000a00000111887effffff01c6336401c35164fffeff01",
    "5e82590118a8000101030250a61b67bc3fe1511d548f42fb344ad4aa0358208139770ea87d175f56a35466c34c7ecccb",
    "8d8a91b4ee37a25df60f5b8fc9b394045820bc7cbcb5636375fa1d82434d466724d92377f53b980695dd49d26d0ce122",
    "05a50503061a6b3088900858b082586ba8000101030250a61b67bc3fe1511d548f42fb344ad4aa035820bc7cbcb56363",
    "75fa1d82434d466724d92377f53b980695dd49d26d0ce12205a5045820bc7cbcb5636375fa1d82434d466724d92377f5",
    "3b980695dd49d26d0ce12205a5051affffffff061a6cea2f1007015840c1a401560bb8196de3adecd9e50ed1dd66cc07",
    "5d3e5b280011cb7f60ec8e860170c6e686ced6e5b8f02a5ae6e13ef2e88c472a5494a57e75bc4d2de47e837c0d5840cf",
    "c776fcc58dabbea82f98d4a6bf18a00337220ab807dbd2f25295afc99f893152e446eca8de78cf1ddf5aa7a9e6b3eeb6",
    "942d154c20449f37708e4440e8a007cdd7f011d31aee7e17758b792ab2b6ebea80a32f4cb9d01e30bf89f2d34e2ab642",
    "776e38ec2ff62c6ef6d40ecaff7541f6cb0d4c0185c9d804dc488343a7220f",
];

#[test]
fn sample_peer_record() {
    let bytes = hex(RECORD);
    assert_eq!(bytes.len(), 511);
    // Annotated header (docs/gossip.md walks through every field):
    let annotated = hex(&[
        "01bd",                                                             // body length 445
        "01",                                                               // record version 1
        "a61b67bc3fe1511d548f42fb344ad4aa",                                 // network id
        "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394", // node id
        "0000000000000001",                                                 // sequence number 1
        "04",                        // NAT class 4 (port-restricted)
        "00000003",                  // capabilities: introduce | invite
        "000000006b308890",          // expires 1798342800 (NOW + 30 days)
        "02",                        // two candidates
        "00 0a000001 1188 7effffff", // host 10.0.0.1:4488, priority 0x7effffff
        "01 c6336401 c351 64fffeff", // srflx 198.51.100.1:50001, priority 0x64fffeff
        "015e",                      // credential length 350, then the credential
    ]);
    assert_eq!(&bytes[..annotated.len()], &annotated[..]);
    let r = record(1);
    assert_eq!(r.to_bytes(), &bytes[..]);
    let d = SignedPeerRecord::decode(&bytes).unwrap();
    assert_eq!(d, r);
    assert_eq!(d.record().nat, NatClass::PortRestricted);
    assert_eq!(d.record().credential, credential(1));
    let network = credential(0).membership().network;
    d.verify(&network, NOW, &VerifyPolicy::default(), &NoRevocations)
        .unwrap();
    // One flipped bit anywhere breaks it (signature or strict decoding).
    for i in [2, 40, 100, 300, 500] {
        let mut bad = bytes.clone();
        bad[i] ^= 1;
        let ok = SignedPeerRecord::decode(&bad)
            .map(|r| {
                r.verify(&network, NOW, &VerifyPolicy::default(), &NoRevocations)
                    .is_ok()
            })
            .unwrap_or(false);
        assert!(!ok, "bit flip at {i} went unnoticed");
    }
}

/// GOSSIP (round 2) with member 1's signed application broadcast `"hi"`, sequence 1.
const GOSSIP: &[&str] = &[
    "02100002008139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b3940000000000000001000000",
    "026869fb0d278d6f1ca5422a0843efebddde290cde5261dcce4908f97aed42a3f704e804a0b4fb6338e47c78e3abe3e3",
    "5a7a64f700d6e5f03976d63035f134327a7f03",
];

#[test]
fn gossip_frame_with_a_signed_broadcast() {
    let bytes = hex(GOSSIP);
    let annotated = hex(&[
        "02 10",                                                            // version, GOSSIP
        "0002",                                                             // round 2
        "00",                                                               // envelope: application
        "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394", // origin
        "0000000000000001",                                                 // origin's sequence 1
        "00000002 6869", // payload length 2, "hi"
    ]);
    assert_eq!(&bytes[..annotated.len()], &annotated[..]);
    assert_eq!(bytes.len(), annotated.len() + 64);
    let Frame::Gossip { round, envelope } = Frame::decode(&bytes).unwrap() else {
        panic!("not a GOSSIP frame")
    };
    assert_eq!(round, 2);
    assert_eq!(message_id(&envelope), 0x2550_7a82_ae92_9dd1);
    let Envelope::App {
        origin,
        seq,
        payload,
        ..
    } = Envelope::decode(&envelope).unwrap()
    else {
        panic!("not an application envelope")
    };
    assert_eq!(
        (origin, seq, payload.as_slice()),
        (identity(1).node_id(), 1, &b"hi"[..])
    );
}

/// `encoded_len` (what the simulator counts) is exactly the encoder's length.
#[test]
fn encoded_len_matches_the_encoder() {
    let r = record(1);
    let rl = r.to_bytes().len();
    let (a, b) = (identity(1).node_id(), identity(2).node_id());
    let env = hex(GOSSIP)[4..].to_vec();
    let cases: Vec<(Message<in8_artifact::NodeId>, Frame)> = vec![
        (Message::Join, Frame::Join { record: r.clone() }),
        (
            Message::JoinReply {
                active: vec![a, b],
                passive: vec![a],
            },
            Frame::JoinReply {
                contact: r.clone(),
                active: vec![r.clone(), r.clone()],
                passive: vec![r.clone()],
            },
        ),
        (
            Message::ForwardJoin { peer: a, ttl: 3 },
            Frame::ForwardJoin {
                ttl: 3,
                record: r.clone(),
            },
        ),
        (
            Message::Neighbor {
                priority: Priority::High,
            },
            Frame::Neighbor {
                priority: Priority::High,
                record: r.clone(),
            },
        ),
        (
            Message::NeighborReply { accepted: false },
            Frame::NeighborReply { accepted: false },
        ),
        (
            Message::Disconnect { alive: true },
            Frame::Disconnect { alive: true },
        ),
        (
            Message::Shuffle {
                origin: a,
                ttl: 2,
                active: vec![b],
                passive: vec![a, b],
            },
            Frame::Shuffle {
                ttl: 2,
                origin: r.clone(),
                active: vec![r.clone()],
                passive: vec![r.clone(), r.clone()],
            },
        ),
        (
            Message::ShuffleReply { peers: vec![a] },
            Frame::ShuffleReply {
                replier: r.clone(),
                peers: vec![r.clone()],
            },
        ),
        (
            Message::Gossip {
                id: 7,
                round: 2,
                payload: Bytes::from(env.clone()),
            },
            Frame::Gossip {
                round: 2,
                envelope: env,
            },
        ),
        (
            Message::IHave {
                entries: vec![(1, 1), (2, 2)],
            },
            Frame::IHave {
                entries: vec![(1, 1), (2, 2)],
            },
        ),
        (
            Message::Graft { id: 1, round: 1 },
            Frame::Graft { id: 1, round: 1 },
        ),
        (Message::Prune, Frame::Prune),
        (
            Message::IntroRequest {
                target: a,
                token: 7,
            },
            Frame::IntroRequest {
                target: a,
                token: 7,
                offer: r.clone(),
            },
        ),
        (
            Message::Introduce {
                peer: a,
                delay_ms: 40,
                token: 7,
            },
            Frame::Introduce {
                delay_ms: 40,
                token: 7,
                offer: r.clone(),
            },
        ),
        (
            Message::IntroUnavailable { target: a },
            Frame::IntroUnavailable { target: a },
        ),
    ];
    for (m, f) in cases {
        assert_eq!(encoded_len(&m, rl), f.encode().len(), "{}", m.name());
    }
}
