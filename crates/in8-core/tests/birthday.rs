//! Birthday probing on loopback: a port-restricted cone NAT (the address- and port-dependent
//! filtering shim) facing a symmetric NAT (the symmetric shim: per-socket mappings), in both
//! roles, with no relay; and the named failure when birthday probing is off.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use std::time::Duration;

use in8_artifact::{CandidateKind, Identity, SignedRsvp};
use in8_core::{
    Birthday, Config, Connection, Error, InboundFilter, InviteOptions, Join, JoinEvent, Node, Phase,
};
use in8_ice::nat::{Filtering, Mapping, NatClass, PortAllocation};
use in8_transport::ChannelOptions;

/// A bound on each whole test, so a regression fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(60);

fn port_restricted() -> NatClass {
    NatClass {
        mapping: Some(Mapping::EndpointIndependent),
        filtering: Some(Filtering::AddressAndPortDependent),
        ports: PortAllocation::Preserving,
    }
}

fn symmetric() -> NatClass {
    NatClass {
        mapping: Some(Mapping::AddressAndPortDependent),
        filtering: Some(Filtering::AddressAndPortDependent),
        ports: PortAllocation::Random,
    }
}

/// The ephemeral range of this machine (where the hard side's extra sockets land).
fn ephemeral() -> (u16, u16) {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .unwrap_or_else(|_| "32768 60999".into());
    let mut it = text.split_whitespace().map(|p| p.parse::<u16>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

/// Small, fast bounds: 128 sockets and 4096 probes over the ephemeral range (about 28 000
/// ports) meet with probability 1 - e^-18.
fn small(enabled: bool) -> Birthday {
    let (port_min, port_max) = ephemeral();
    Birthday {
        enabled,
        sockets: 128,
        probes: 4096,
        rate: Birthday::MAX_RATE,
        rounds: 3,
        port_min,
        port_max,
    }
}

async fn node(seed: u8, easy: bool, inviter: bool, enabled: bool) -> Node {
    let mut cfg = Config::loopback(Identity::from_seed(&[seed; 32]));
    if easy {
        cfg.inbound_filter = Some(InboundFilter::AddressAndPortDependent);
        cfg.assume_nat = Some(port_restricted());
    } else {
        cfg.inbound_filter = Some(InboundFilter::Symmetric);
        cfg.assume_nat = Some(symmetric());
    }
    cfg.birthday = small(enabled);
    // Phase 1 gives up quickly; an inviter's phase-2 session lives long enough for one
    // burst at the maximum rate.
    cfg.ice.agent.connect_timeout = Duration::from_secs(if inviter { 6 } else { 2 });
    // The probe budget stays at its default (`max_probes`, 1024 outstanding): a burst at
    // the rate above must fit in it.
    Node::start(cfg).await.unwrap()
}

/// Phase 1 must fail (the shims block it); returns the RSVP.
async fn phase_one_fails(join: &mut Join) -> SignedRsvp {
    loop {
        match join.next().await.unwrap() {
            JoinEvent::Phase1Failed { rsvp, reason } => {
                assert!(
                    matches!(reason, in8_ice::FailureReason::NothingReceived { .. }),
                    "{reason}"
                );
                return rsvp;
            }
            JoinEvent::Connected(_) => panic!("the NAT shims should block phase 1"),
            JoinEvent::Failed(e) => panic!("{e}"),
            _ => {}
        }
    }
}

async fn round_trip(a: &Connection, b: &Connection) {
    let ch = a
        .open_channel(ChannelOptions::reliable("chat"))
        .await
        .unwrap();
    ch.send(&b"over the birthday path"[..]).await.unwrap();
    let theirs = b.accept_channel().await.unwrap();
    assert_eq!(
        &theirs.recv().await.unwrap().unwrap()[..],
        b"over the birthday path"
    );
    theirs.send(&b"and back"[..]).await.unwrap();
    assert_eq!(&ch.recv().await.unwrap().unwrap()[..], b"and back");
}

/// Runs one birthday establishment; returns (inviter's side, joiner's side).
async fn birthday(inviter_easy: bool, seeds: (u8, u8)) -> (Connection, Connection) {
    let alice = node(seeds.0, inviter_easy, true, true).await;
    let bob = node(seeds.1, !inviter_easy, false, true).await;
    assert_eq!(alice.nat().map(|c| c.is_symmetric()), Some(!inviter_easy));
    let mut invite = alice.invite(InviteOptions::default()).await.unwrap();
    let carried = invite.invitation().invitation().nat.unwrap();
    assert_eq!(
        carried.is_symmetric(),
        !inviter_easy,
        "the invitation carries the class"
    );
    let mut join = bob.join(invite.invitation()).await.unwrap();
    let rsvp = phase_one_fails(&mut join).await;
    assert_eq!(
        rsvp.rsvp().nat.unwrap().is_symmetric(),
        inviter_easy,
        "the RSVP carries the class"
    );
    alice.accept_rsvp(&rsvp).await.unwrap();
    let bob_side = join.connected().await.unwrap();
    let alice_side = invite.joined().await.unwrap();
    for side in [&alice_side, &bob_side] {
        assert_eq!(side.phase(), Phase::Two);
        assert!(side.path().birthday, "{:?}", side.path());
        assert_ne!(side.path().kind, CandidateKind::Relay);
    }
    assert_eq!(alice_side.peer(), bob.node_id());
    assert_eq!(bob_side.peer(), alice.node_id());
    round_trip(&bob_side, &alice_side).await;
    round_trip(&alice_side, &bob_side).await;
    (alice_side, bob_side)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symmetric_joiner_reaches_port_restricted_inviter_by_birthday_probing() {
    let (alice, bob) = tokio::time::timeout(LIMIT, birthday(true, (41, 42)))
        .await
        .expect("birthday probing connects within the test's bound");
    // The easy inviter's remote is a port of the joiner's NAT a probe hit (peer-reflexive);
    // the hard joiner's local is one of its extra sockets, not its main one.
    assert_eq!(alice.path().kind, CandidateKind::PeerReflexive);
    assert_eq!(alice.path().remote, bob.path().local);
    assert_eq!(bob.path().remote, alice.path().local);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symmetric_inviter_reaches_port_restricted_joiner_by_birthday_probing() {
    let (alice, bob) = tokio::time::timeout(LIMIT, birthday(false, (43, 44)))
        .await
        .expect("birthday probing connects within the test's bound");
    assert_eq!(bob.path().kind, CandidateKind::PeerReflexive);
    assert_eq!(alice.path().remote, bob.path().local);
    assert_eq!(bob.path().remote, alice.path().local);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_birthday_probing_the_join_fails_with_the_named_reason() {
    let run = async {
        let alice = node(45, true, true, false).await;
        let bob = node(46, false, false, false).await;
        let invite = alice.invite(InviteOptions::default()).await.unwrap();
        let mut join = bob.join(invite.invitation()).await.unwrap();
        loop {
            match join.next().await.unwrap() {
                JoinEvent::Failed(Error::Unreachable { reason }) => return reason,
                JoinEvent::Failed(e) => panic!("unexpected failure: {e}"),
                JoinEvent::Connected(_) => panic!("the NAT shims should block every path"),
                JoinEvent::Phase1Failed { .. } => {
                    panic!("no RSVP when no strategy can connect these NATs")
                }
                _ => {}
            }
        }
    };
    let reason = tokio::time::timeout(LIMIT, run).await.unwrap();
    assert_eq!(reason, in8_core::Unreachable::BirthdayDisabled, "{reason}");
    let text = reason.to_string();
    assert!(text.contains("birthday probing is disabled"), "{text}");
    assert!(text.contains("does not allow a relay"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_classifies_its_nat_at_start_and_its_invitations_carry_the_class() {
    // Any in8 node answers plain Binding requests: two of them are two reflectors at
    // different addresses, enough for the mapping behaviour (RFC 5780 §4.3).
    let r1 = Node::start(Config::loopback(Identity::from_seed(&[47; 32])))
        .await
        .unwrap();
    let r2 = Node::start(Config::loopback(Identity::from_seed(&[48; 32])))
        .await
        .unwrap();
    let mut cfg = Config::loopback(Identity::from_seed(&[49; 32]));
    cfg.stun_servers = vec![r1.candidates()[0].addr, r2.candidates()[0].addr];
    let node = Node::start(cfg).await.unwrap();
    let class = tokio::time::timeout(LIMIT, node.nat_classified())
        .await
        .unwrap()
        .expect("two reflectors classify the mapping");
    // On loopback every reflector sees the socket's own address: no NAT. Filtering needs a
    // reflector with an alternate address, so it stays unknown.
    assert_eq!(class.mapping, Some(Mapping::NoNat));
    assert_eq!(class.filtering, None);
    assert_eq!(node.nat(), Some(class));
    let invite = node.invite(InviteOptions::default()).await.unwrap();
    let carried = invite.invitation().invitation().nat.unwrap();
    assert_eq!(carried.mapping, Some(in8_artifact::NatMapping::NoNat));
    assert_eq!(carried.filtering, None);
    // Without servers or an assumption nothing is claimed.
    let plain = Node::start(Config::loopback(Identity::from_seed(&[50; 32])))
        .await
        .unwrap();
    assert_eq!(plain.nat_classified().await, None);
    let invite = plain.invite(InviteOptions::default()).await.unwrap();
    assert!(invite.invitation().invitation().nat.is_none());
}
