//! The network channel's wire format (docs/network.md "Wire format"): pinned annotated
//! vectors, round trips over arbitrary frames, and strict refusals.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use in8_artifact::{InviteId, NodeId};
use in8_core::proto::CloseCause;
use in8_core::proto::wire::{Broadcast, NetFrame, WireError};
use in8_gossip::fixtures::record;
use proptest::prelude::*;

fn hex(parts: &[&str]) -> Vec<u8> {
    let s: String = parts.concat().split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn check(frame: NetFrame, parts: &[&str]) {
    let bytes = hex(parts);
    assert_eq!(frame.encode(), bytes, "encoding of {frame:?}");
    assert_eq!(NetFrame::decode(&bytes).unwrap(), frame);
}

#[test]
fn short_frames() {
    // version 1, type 0x06 BYE, cause 1 (duplicate link)
    check(NetFrame::Bye(CloseCause::Duplicate), &["01 06 01"]);
    // version 1, type 0x09 ASK-MEMBERS, no body
    check(NetFrame::AskMembers, &["01 09"]);
    // version 1, type 0x08 MESSAGE, the payload "hi" (rest of the frame)
    check(NetFrame::Message(b"hi".to_vec()), &["01 08 6869"]);
    // version 1, type 0x03 GOSSIP, a gossip frame (here gossip v2 PRUNE)
    check(NetFrame::Gossip(vec![2, 0x13]), &["01 03 0213"]);
    // version 1, type 0x05 REDEEMED, invite id (16), newcomer's node id (32)
    check(
        NetFrame::Redeemed {
            invite: InviteId::from_bytes([0xaa; 16]),
            member: NodeId::from_bytes([0xbb; 32]),
        },
        &[
            "01 05",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        ],
    );
    // version 1, type 0x07 MEMBERS, count 0
    check(NetFrame::Members(Vec::new()), &["01 07 00"]);
}

#[test]
fn hello_and_members_carry_records_as_signed() {
    let r = record(1);
    // version 1, type 0x01 HELLO, then the sender's record exactly as signed
    let mut want = hex(&["01 01"]);
    want.extend_from_slice(r.to_bytes());
    check_bytes(NetFrame::Hello(Box::new(r.clone())), &want);
    // MEMBERS: count 2, two records back to back
    let mut want = hex(&["01 07 02"]);
    want.extend_from_slice(r.to_bytes());
    want.extend_from_slice(record(2).to_bytes());
    check_bytes(NetFrame::Members(vec![r, record(2)]), &want);
}

fn check_bytes(frame: NetFrame, bytes: &[u8]) {
    assert_eq!(frame.encode(), bytes);
    assert_eq!(NetFrame::decode(bytes).unwrap(), frame);
}

#[test]
fn broadcast_payloads() {
    // kind 0x03 LEAVE, no body
    assert_eq!(Broadcast::Leave.encode(), hex(&["03"]));
    // kind 0x02 APP, the payload
    assert_eq!(Broadcast::App(b"hi".to_vec()).encode(), hex(&["02 6869"]));
    // kind 0x01 ANNOUNCE: the origin's record, neighbour count 1, the neighbour's id
    let a = Broadcast::Announce {
        record: Box::new(record(1)),
        neighbours: vec![NodeId::from_bytes([0xcc; 32])],
    };
    let mut want = hex(&["01"]);
    want.extend_from_slice(record(1).to_bytes());
    want.extend_from_slice(&hex(&[
        "01",
        "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
    ]));
    assert_eq!(a.encode(), want);
    assert_eq!(Broadcast::decode(&want).unwrap(), a);
}

#[test]
fn malformed_frames_are_refused_by_name() {
    assert_eq!(
        NetFrame::decode(&[]),
        Err(WireError::Truncated("frame version"))
    );
    assert_eq!(NetFrame::decode(&[2, 1]), Err(WireError::Version(2)));
    assert!(matches!(
        NetFrame::decode(&[1, 0x7f]),
        Err(WireError::Unknown { code: 0x7f, .. })
    ));
    assert!(matches!(
        NetFrame::decode(&[1, 0x06, 9]),
        Err(WireError::Unknown {
            what: "close cause",
            ..
        })
    ));
    assert!(matches!(
        NetFrame::decode(&[1, 0x09, 0]),
        Err(WireError::Trailing { count: 1, .. })
    ));
    assert!(matches!(
        NetFrame::decode(&[1, 0x07, 33]),
        Err(WireError::TooLong { max: 32, .. })
    ));
    assert!(matches!(
        NetFrame::decode(&[1, 0x05, 1, 2]),
        Err(WireError::Truncated("invite id"))
    ));
    assert!(matches!(
        NetFrame::decode(&[1, 0x02, 0, 3, 1, 2, 3]),
        Err(WireError::Malformed { what: "credential" })
    ));
    assert!(matches!(
        Broadcast::decode(&[1, 0, 1]),
        Err(WireError::Truncated("peer record"))
    ));
    assert!(matches!(
        Broadcast::decode(&[9]),
        Err(WireError::Unknown {
            what: "payload kind",
            ..
        })
    ));
}

fn frame() -> impl Strategy<Value = NetFrame> {
    let id = any::<[u8; 32]>().prop_map(NodeId::from_bytes);
    let invite = any::<[u8; 16]>().prop_map(InviteId::from_bytes);
    let cause = prop_oneof![
        Just(CloseCause::NotNeeded),
        Just(CloseCause::Duplicate),
        Just(CloseCause::NotAMember),
        Just(CloseCause::Misbehaved),
        Just(CloseCause::Leaving),
    ];
    prop_oneof![
        (1u8..8).prop_map(|i| NetFrame::Hello(Box::new(record(i)))),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(NetFrame::Gossip),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(NetFrame::Message),
        (invite, id).prop_map(|(invite, member)| NetFrame::Redeemed { invite, member }),
        cause.prop_map(NetFrame::Bye),
        proptest::collection::vec(1u8..8, 0..5)
            .prop_map(|v| NetFrame::Members(v.into_iter().map(record).collect())),
        Just(NetFrame::AskMembers),
    ]
}

fn payload() -> impl Strategy<Value = Broadcast> {
    let id = any::<[u8; 32]>().prop_map(NodeId::from_bytes);
    prop_oneof![
        ((1u8..8), proptest::collection::vec(id, 0..17)).prop_map(|(i, neighbours)| {
            Broadcast::Announce {
                record: Box::new(record(i)),
                neighbours,
            }
        }),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Broadcast::App),
        Just(Broadcast::Leave),
        (any::<[u8; 16]>(), any::<[u8; 32]>()).prop_map(|(i, m)| Broadcast::Redeemed {
            invite: InviteId::from_bytes(i),
            member: NodeId::from_bytes(m),
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn frames_round_trip(f in frame()) {
        let b = f.encode();
        prop_assert_eq!(NetFrame::decode(&b).unwrap(), f);
    }

    #[test]
    fn payloads_round_trip(p in payload()) {
        let b = p.encode();
        prop_assert_eq!(Broadcast::decode(&b).unwrap(), p);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_decode_to_one_encoding(b in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(f) = NetFrame::decode(&b) {
            prop_assert_eq!(f.encode(), b.clone());
        }
        if let Ok(p) = Broadcast::decode(&b) {
            prop_assert_eq!(p.encode(), b);
        }
    }
}
