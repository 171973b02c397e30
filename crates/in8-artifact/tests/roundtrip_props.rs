//! Property tests: every artifact type and every text form round-trips exactly, and the
//! decoders never panic on arbitrary input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use core::time::Duration;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use in8_artifact::fixtures::{NOW, alice, bob, network, secret};
use in8_artifact::text::{self, Form};
use in8_artifact::{
    Artifact, Candidate, CandidateKind, Capabilities, EntryPeer, Flags, Invitation, InviteSecret,
    Membership, NatBehaviour, NatFiltering, NatMapping, NodeId, Revocation, RevocationTarget, Rsvp,
    ServerHint, ServerKind, SignedInvitation, SignedMembership, SignedRevocation, SignedRsvp,
    Timestamp, TopologyRole,
};
use proptest::prelude::*;

fn kind() -> impl Strategy<Value = CandidateKind> {
    prop_oneof![
        Just(CandidateKind::Host),
        Just(CandidateKind::ServerReflexive),
        Just(CandidateKind::PeerReflexive),
        Just(CandidateKind::Relay),
    ]
}

fn addr() -> impl Strategy<Value = SocketAddr> {
    let ip = prop_oneof![
        any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o))),
        any::<[u8; 16]>().prop_map(|o| IpAddr::V6(Ipv6Addr::from(o))),
    ];
    (ip, 1u16..).prop_map(|(ip, port)| SocketAddr::new(ip, port))
}

fn candidates() -> impl Strategy<Value = Vec<Candidate>> {
    prop::collection::vec((kind(), addr(), prop::option::of(any::<u32>())), 0..=16).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (k, a, p))| {
                let mut c = Candidate::new(k, a, i);
                if let Some(p) = p {
                    c.priority = p;
                }
                c
            })
            .collect()
    })
}

/// A known NAT behaviour or none (an unknown one is not encodable: it is omitted).
fn nat() -> impl Strategy<Value = Option<NatBehaviour>> {
    (0u8..5, 0u8..4).prop_map(|(m, f)| {
        let mapping = [
            None,
            Some(NatMapping::NoNat),
            Some(NatMapping::EndpointIndependent),
            Some(NatMapping::AddressDependent),
            Some(NatMapping::AddressAndPortDependent),
        ][m as usize];
        let filtering = [
            None,
            Some(NatFiltering::EndpointIndependent),
            Some(NatFiltering::AddressDependent),
            Some(NatFiltering::AddressAndPortDependent),
        ][f as usize];
        let b = NatBehaviour { mapping, filtering };
        b.is_known().then_some(b)
    })
}

fn invitation() -> impl Strategy<Value = Invitation> {
    (
        (
            prop::collection::vec(any::<u8>(), 16..=32),
            candidates(),
            0u64..u64::MAX / 2,
        ),
        (
            prop::option::of(0u64..1000),
            1u32..=1_000_000,
            any::<u32>(),
            any::<u32>(),
            0u64..5,
        ),
        (
            prop::option::of(any::<[u8; 32]>()),
            prop::collection::vec(("[a-z0-9.]{1,40}", any::<u16>(), 0u64..3), 0..=4),
            prop::collection::vec((any::<[u8; 32]>(), candidates()), 0..=3),
            nat(),
        ),
    )
        .prop_map(
            |((sec, cands, exp), (nb, uses, flags, caps, role), (fp, servers, peers, nat))| {
                let mut inv = Invitation::new(
                    network().membership().network,
                    alice().node_id(),
                    InviteSecret::from_bytes(&sec).unwrap(),
                    cands,
                    Timestamp(exp),
                    Duration::from_secs(1001),
                );
                inv.not_before = nb.map(|n| Timestamp(exp + n));
                inv.uses = uses;
                inv.flags = Flags(flags);
                inv.capabilities = Capabilities(caps);
                inv.role = match role {
                    0 => TopologyRole::Auto,
                    1 => TopologyRole::Leaf,
                    2 => TopologyRole::Hub,
                    n => TopologyRole::Other(n),
                };
                inv.cert_fingerprint = fp;
                inv.servers = servers
                    .into_iter()
                    .map(|(host, port, k)| ServerHint {
                        kind: [ServerKind::Stun, ServerKind::Turn, ServerKind::Rendezvous]
                            [k as usize],
                        host,
                        port,
                    })
                    .collect();
                inv.entry_peers = peers
                    .into_iter()
                    .map(|(id, candidates)| EntryPeer {
                        id: NodeId::from_bytes(id),
                        candidates,
                    })
                    .collect();
                inv.nat = nat;
                inv
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn invitations_round_trip(inv in invitation()) {
        let s = inv.clone().sign(&alice()).unwrap();
        let d = SignedInvitation::decode(s.to_bytes()).unwrap();
        prop_assert_eq!(d.invitation(), &inv);
        prop_assert_eq!(d.to_bytes(), s.to_bytes());
        d.verify_signature().unwrap();
    }

    #[test]
    fn rsvps_round_trip(cands in candidates(), ufrag in "[A-Za-z0-9+/]{4,32}", exp in any::<u64>(),
                        fp in prop::option::of(any::<[u8; 32]>()), nat in nat()) {
        let r = Rsvp {
            invite_id: secret().invite_id(),
            responder: bob().node_id(),
            ufrag,
            candidates: cands,
            expires: Timestamp(exp),
            cert_fingerprint: fp,
            nat,
            extensions: Vec::new(),
        };
        let s = r.clone().sign(&bob(), &secret()).unwrap();
        let d = SignedRsvp::decode(s.to_bytes()).unwrap();
        prop_assert_eq!(d.rsvp(), &r);
        prop_assert_eq!(d.to_bytes(), s.to_bytes());
    }

    #[test]
    fn memberships_and_revocations_round_trip(caps in any::<u32>(), secs in 0u64..86_400,
                                             revoke_member in any::<bool>()) {
        let m = Membership::issue(&alice(), &network(), bob().node_id(), Capabilities(caps),
                                  NOW + Duration::from_secs(secs)).unwrap();
        prop_assert_eq!(&SignedMembership::decode(m.to_bytes()).unwrap(), &m);
        let rv = Revocation {
            network: network().membership().network,
            target: if revoke_member {
                RevocationTarget::Member(bob().node_id())
            } else {
                RevocationTarget::Invitation(secret().invite_id())
            },
            issuer: alice().node_id(),
            issued_at: NOW,
            expires: NOW + Duration::from_secs(secs),
            credential: revoke_member.then(network),
        }
        .sign(&alice())
        .unwrap();
        prop_assert_eq!(&SignedRevocation::decode(rv.to_bytes()).unwrap(), &rv);
    }

    #[test]
    fn text_forms_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut b = bytes;
        b.insert(0, 0x82); // looks like an envelope, as real artifacts do
        for form in [Form::Text, Form::Base32, Form::Grouped, Form::Cbor, Form::Ndef] {
            let enc = text::encode(&b, form);
            let (dec, f) = text::decode_any(&enc).unwrap();
            prop_assert_eq!(&dec, &b);
            prop_assert_eq!(f, form);
        }
    }

    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = Artifact::decode(&bytes);
        let _ = Artifact::parse(&bytes);
        if let Ok(s) = core::str::from_utf8(&bytes) {
            let _ = text::decode_text(s);
            let _ = s.parse::<NodeId>();
        }
    }
}
