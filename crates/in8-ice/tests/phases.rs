//! in8's progressive establishment through the seeded network: the phase-1 listener (many
//! invitations on one socket, state only after MESSAGE-INTEGRITY), named failure, keep-open
//! while the RSVP travels, and phase 2.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

#[path = "support/net.rs"]
mod net;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use in8_artifact::{Candidate, CandidateKind, Invitation, InviteSecret, Rsvp, fixtures};
use in8_ice::stun::{Class, IntegrityKey, Message, MessageWriter, Method, TransactionId, attr};
use in8_ice::{Endpoint, EndpointConfig, EndpointEvent, Event, FailureReason, LocalCandidate};
use net::{EndpointNode, Nat, Net, run};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn invitation(n: u8, candidates: Vec<Candidate>) -> Invitation {
    let mut inv = fixtures::invitation();
    inv.secret = InviteSecret::from_bytes(&[n; 16]).unwrap();
    inv.candidates = candidates;
    inv
}

fn endpoint(host: &str, seed: u64) -> EndpointNode {
    let mut e = Endpoint::new(EndpointConfig::default(), seed);
    e.add_local_candidate(LocalCandidate::host(addr(host), 0));
    EndpointNode {
        endpoint: e,
        addrs: vec![addr(host)],
        events: Vec::new(),
    }
}

fn session_events(n: &EndpointNode) -> Vec<Event> {
    n.events
        .iter()
        .filter_map(|e| match e {
            EndpointEvent::Session { event, .. } => Some(event.clone()),
            _ => None,
        })
        .collect()
}

fn connected(n: &EndpointNode) -> bool {
    session_events(n).iter().any(|e| {
        matches!(
            e,
            Event::Selected {
                nominated: true,
                ..
            }
        )
    })
}

#[test]
fn phase1_one_listener_serves_many_invitations() {
    let t0 = Instant::now();
    let mut net = Net::new(1);
    net.add_nat(
        Nat::PortRestricted,
        "10.0.1.1".parse().unwrap(),
        "203.0.113.2".parse().unwrap(),
    );
    let inviter_addr = "198.51.100.1:4488";
    let mut inviter = endpoint(inviter_addr, 1);
    let host = vec![Candidate::new(CandidateKind::Host, addr(inviter_addr), 0)];
    let invitations: Vec<Invitation> = (0..50).map(|i| invitation(i, host.clone())).collect();
    for inv in &invitations {
        inviter.endpoint.listen(inv).unwrap();
    }
    let mut bob = endpoint("10.0.1.1:5000", 2);
    let mut carol = endpoint("10.0.1.1:5001", 3);
    bob.addrs = vec![addr("10.0.1.1:5000")];
    carol.endpoint = Endpoint::new(EndpointConfig::default(), 3);
    carol
        .endpoint
        .add_local_candidate(LocalCandidate::host(addr("10.0.1.1:5001"), 0));
    carol.addrs = vec![addr("10.0.1.1:5001")];
    bob.endpoint.join(t0, &invitations[7]).unwrap();
    carol.endpoint.join(t0, &invitations[42]).unwrap();
    run(
        &mut net,
        &mut [&mut inviter, &mut bob, &mut carol],
        t0,
        t0 + Duration::from_secs(5),
    );
    assert!(connected(&bob) && connected(&carol));
    let accepted: Vec<_> = inviter
        .events
        .iter()
        .filter_map(|e| match e {
            EndpointEvent::Accepted { invite, .. } => Some(*invite),
            _ => None,
        })
        .collect();
    assert_eq!(accepted.len(), 2);
    assert!(accepted.contains(&invitations[7].invite_id()));
    assert!(accepted.contains(&invitations[42].invite_id()));
    // The inviter learned the invitees' NAT addresses as peer-reflexive candidates and ran
    // triggered checks back with the derived invitee passwords.
    assert!(
        session_events(&inviter)
            .iter()
            .any(|e| matches!(e, Event::PeerReflexive { .. }))
    );
    assert_eq!(inviter.endpoint.stats().unauthenticated, 0);
}

fn request(username: &[u8], password: &str, pad: usize) -> Vec<u8> {
    let mut b = Vec::new();
    let mut w = MessageWriter::new(
        &mut b,
        Method::BINDING,
        Class::Request,
        TransactionId([5; 12]),
    );
    w.attr(attr::USERNAME, username)
        .attr_u32(attr::PRIORITY, 1)
        .attr_u64(attr::ICE_CONTROLLING, 9);
    if pad > 0 {
        w.attr(attr::PADDING, &vec![0; pad]);
    }
    w.integrity(&IntegrityKey::short_term(password))
        .fingerprint();
    b
}

#[test]
fn unauthenticated_checks_create_no_state_and_replies_are_never_larger() {
    let t0 = Instant::now();
    let me = addr("198.51.100.1:4488");
    let mut e = Endpoint::new(EndpointConfig::default(), 1);
    e.add_local_candidate(LocalCandidate::host(me, 0));
    let inv = invitation(1, vec![]);
    e.listen(&inv).unwrap();
    let ufrag = inv.secret.inviter_ufrag();
    let attacker = addr("192.0.2.66:666");
    let cases = [
        request(
            format!("{ufrag}:evil").as_bytes(),
            "not the derived password!!",
            0,
        ),
        request(b"nobody:evil", "whatever-password-0123456", 0),
        request(
            format!("{ufrag}:evil").as_bytes(),
            &inv.secret.inviter_password(),
            0,
        )[..60]
            .to_vec(),
    ];
    for (i, c) in cases.iter().enumerate() {
        assert!(e.handle_packet(t0, attacker, me, c).is_err(), "case {i}");
        while let Some(t) = e.poll_transmit() {
            assert!(
                t.contents.len() <= c.len(),
                "case {i}: reply larger than request"
            );
        }
    }
    assert!(e.poll_event().is_none(), "no session was created");
    assert_eq!(e.poll_timeout(), None, "no timers either");
    // Plain Binding requests: answered only when the reply is no larger.
    let mut plain = Vec::new();
    MessageWriter::new(
        &mut plain,
        Method::BINDING,
        Class::Request,
        TransactionId([6; 12]),
    )
    .fingerprint();
    e.handle_packet(t0, attacker, me, &plain).unwrap();
    assert!(e.poll_transmit().is_none());
    let mut padded = Vec::new();
    MessageWriter::new(
        &mut padded,
        Method::BINDING,
        Class::Request,
        TransactionId([6; 12]),
    )
    .attr(attr::PADDING, &[0; 16])
    .fingerprint();
    e.handle_packet(t0, attacker, me, &padded).unwrap();
    let r = e.poll_transmit().unwrap();
    assert_eq!(
        Message::parse(&r.contents).unwrap().xor_mapped_address(),
        Some(attacker)
    );
    assert!(r.contents.len() <= padded.len());
    // The right password creates exactly one session.
    let good = request(
        format!("{ufrag}:goodguy").as_bytes(),
        &inv.secret.inviter_password(),
        0,
    );
    e.handle_packet(t0, attacker, me, &good).unwrap();
    assert!(matches!(
        e.poll_event(),
        Some(EndpointEvent::Accepted { .. })
    ));
}

#[test]
fn phase1_failure_is_named_then_keep_open_and_phase2_connect() {
    let t0 = Instant::now();
    let stun = addr("192.0.2.200:3478");
    let mut net = Net::new(7);
    // Both behind address-and-port-dependent filtering: one-way checks cannot pass.
    net.add_nat(
        Nat::PortRestricted,
        "10.0.0.1".parse().unwrap(),
        "203.0.113.1".parse().unwrap(),
    );
    net.add_nat(
        Nat::PortRestricted,
        "10.0.1.1".parse().unwrap(),
        "203.0.113.2".parse().unwrap(),
    );
    let alice_host = "10.0.0.1:4488";
    let bob_host = "10.0.1.1:5000";
    let alice_srflx = net.reflexive(addr(alice_host), stun);
    let bob_srflx = net.reflexive(addr(bob_host), stun);
    let mut alice = endpoint(alice_host, 1);
    alice.endpoint.add_local_candidate(LocalCandidate::new(
        Candidate::new(CandidateKind::ServerReflexive, alice_srflx, 1),
        addr(alice_host),
    ));
    let mut bob = endpoint(bob_host, 2);
    let inv = invitation(
        3,
        vec![Candidate::new(
            CandidateKind::ServerReflexive,
            alice_srflx,
            0,
        )],
    );
    alice.endpoint.listen(&inv).unwrap();
    let sid = bob.endpoint.join(t0, &inv).unwrap();
    let t1 = run(
        &mut net,
        &mut [&mut alice, &mut bob],
        t0,
        t0 + Duration::from_secs(20),
    );
    let failed = session_events(&bob).into_iter().find_map(|e| match e {
        Event::Failed { reason } => Some(reason),
        _ => None,
    });
    assert!(
        matches!(failed, Some(FailureReason::NothingReceived { .. })),
        "{failed:?}"
    );
    assert!(alice.events.is_empty(), "nothing reached alice");
    // Bob keeps his mapping open while the RSVP travels (10 minutes here).
    let before = net.delivered;
    let sent_before = bob.endpoint.session(sid).unwrap().stats().requests_sent;
    let t2 = run(
        &mut net,
        &mut [&mut alice, &mut bob],
        t1,
        t1 + Duration::from_secs(600),
    );
    let keepalives = bob.endpoint.session(sid).unwrap().stats().requests_sent - sent_before;
    assert!(
        (600 / 15 - 2..=600 / 15 + 2).contains(&keepalives),
        "{keepalives} keep-open checks in 10 min"
    );
    assert_eq!(net.delivered, before, "still nothing passes alice's NAT");
    // The RSVP arrives: both check at once.
    let ufrag = bob
        .endpoint
        .session(sid)
        .unwrap()
        .local_credentials()
        .ufrag
        .clone();
    let rsvp = Rsvp {
        ufrag,
        candidates: vec![Candidate::new(CandidateKind::ServerReflexive, bob_srflx, 0)],
        invite_id: inv.invite_id(),
        ..fixtures::rsvp()
    };
    alice.endpoint.accept_rsvp(t2, &inv, &rsvp).unwrap();
    run(
        &mut net,
        &mut [&mut alice, &mut bob],
        t2,
        t2 + Duration::from_secs(10),
    );
    assert!(connected(&alice), "alice: {:?}", alice.events);
    assert!(connected(&bob), "bob: {:?}", session_events(&bob));
}

#[test]
fn keep_open_is_bounded_in_duration() {
    let t0 = Instant::now();
    let mut net = Net::new(8);
    net.up = false;
    let mut bob = endpoint("10.0.1.1:5000", 2);
    let mut cfg = EndpointConfig::default();
    cfg.keep_open.duration = Duration::from_secs(120);
    bob.endpoint = Endpoint::new(cfg, 2);
    bob.endpoint
        .add_local_candidate(LocalCandidate::host(addr("10.0.1.1:5000"), 0));
    let inv = invitation(
        4,
        vec![Candidate::new(
            CandidateKind::Host,
            addr("198.51.100.1:4488"),
            0,
        )],
    );
    bob.endpoint.join(t0, &inv).unwrap();
    run(
        &mut net,
        &mut [&mut bob],
        t0,
        t0 + Duration::from_secs(3600),
    );
    let evs = session_events(&bob);
    assert!(evs.contains(&Event::KeepOpenEnded));
    assert!(
        bob.events
            .iter()
            .any(|e| matches!(e, EndpointEvent::Closed { .. }))
    );
    assert_eq!(bob.endpoint.poll_timeout(), None, "quiet afterwards");
}

#[test]
fn relay_candidates_only_when_the_invitation_allows_them() {
    use in8_artifact::Flags;
    let t0 = Instant::now();
    let relay = Candidate::new(CandidateKind::Relay, addr("198.51.100.9:50000"), 1);
    let host = Candidate::new(CandidateKind::Host, addr("198.51.100.1:4488"), 0);
    for allowed in [false, true] {
        let mut inv = invitation(5, vec![host, relay]);
        inv.flags = if allowed {
            Flags::RSVP_ALLOWED.with(Flags::RELAY_ALLOWED)
        } else {
            Flags::RSVP_ALLOWED
        };
        let mut e = Endpoint::new(EndpointConfig::default(), 1);
        e.add_local_candidate(LocalCandidate::host(addr("10.0.1.1:5000"), 0));
        let my_relay = LocalCandidate::new(
            Candidate::new(CandidateKind::Relay, addr("198.51.100.9:50001"), 2),
            addr("198.51.100.9:50001"),
        );
        e.add_local_candidate(my_relay);
        let id = e.join(t0, &inv).unwrap();
        let s = e.session(id).unwrap();
        let remote_relays = s
            .remote_candidates()
            .iter()
            .filter(|c| c.candidate.kind == CandidateKind::Relay)
            .count();
        let local_relays = s
            .local_candidates()
            .iter()
            .filter(|c| c.candidate.kind == CandidateKind::Relay)
            .count();
        assert_eq!(remote_relays, usize::from(allowed), "allowed {allowed}");
        assert_eq!(local_relays, usize::from(allowed), "allowed {allowed}");
    }
}

#[test]
fn endpoint_sessions_restart_and_reconnect() {
    use in8_ice::{Credentials, Role};
    let t0 = Instant::now();
    let mut net = Net::new(9);
    let (a_addr, b_addr) = ("192.0.2.1:1000", "192.0.2.2:2000");
    let mut a = endpoint(a_addr, 1);
    let mut b = endpoint(b_addr, 2);
    let c = |u: &str| Credentials {
        ufrag: u.into(),
        password: format!("{u}-password-0123456789abcdef"),
    };
    let ca = [Candidate::new(CandidateKind::Host, addr(a_addr), 0)];
    let cb = [Candidate::new(CandidateKind::Host, addr(b_addr), 0)];
    let sa = a
        .endpoint
        .add_session(t0, Role::Controlling, c("aaaa"), c("bbbb"), &cb, false)
        .unwrap();
    let sb = b
        .endpoint
        .add_session(t0, Role::Controlled, c("bbbb"), c("aaaa"), &ca, false)
        .unwrap();
    let t1 = run(
        &mut net,
        &mut [&mut a, &mut b],
        t0,
        t0 + Duration::from_secs(3),
    );
    assert!(connected(&a) && connected(&b));
    a.events.clear();
    b.events.clear();
    a.endpoint
        .restart_session(t1, sa, c("cccc"), c("dddd"), &cb)
        .unwrap();
    b.endpoint
        .restart_session(t1, sb, c("dddd"), c("cccc"), &ca)
        .unwrap();
    assert!(
        a.endpoint.session(sa).unwrap().selected_pair().is_some(),
        "data continues"
    );
    run(
        &mut net,
        &mut [&mut a, &mut b],
        t1,
        t1 + Duration::from_secs(3),
    );
    assert!(connected(&a) && connected(&b), "{:?}", a.events);
    assert_eq!(
        a.endpoint.session(sa).unwrap().local_credentials().ufrag,
        "cccc"
    );
    // The old ufrag no longer reaches the session.
    assert_eq!(a.endpoint.stats().unauthenticated, 0);
    assert!(
        a.endpoint
            .restart_session(t1, sa, c("cccc"), c("dddd"), &cb)
            .is_err()
    );
}

#[test]
fn sessions_per_invitation_are_bounded() {
    let t0 = Instant::now();
    let me = addr("198.51.100.1:4488");
    let mut e = Endpoint::new(EndpointConfig::default(), 1);
    e.add_local_candidate(LocalCandidate::host(me, 0));
    let inv = invitation(6, vec![]);
    e.listen(&inv).unwrap();
    let (ufrag, pwd) = (inv.secret.inviter_ufrag(), inv.secret.inviter_password());
    let max = EndpointConfig::default().max_sessions_per_invitation;
    for i in 0..max + 2 {
        let req = request(format!("{ufrag}:joiner{i:02}").as_bytes(), &pwd, 0);
        let r = e.handle_packet(t0, addr("192.0.2.7:7000"), me, &req);
        if i < max {
            assert!(r.is_ok(), "{i}: {r:?}");
        } else {
            assert!(matches!(r, Err(in8_ice::Error::Limit { .. })), "{i}: {r:?}");
        }
    }
    let accepted = std::iter::from_fn(|| e.poll_event())
        .filter(|ev| matches!(ev, EndpointEvent::Accepted { .. }))
        .count();
    assert_eq!(accepted, max as usize);
    assert_eq!(e.stats().refused, 2);
}
