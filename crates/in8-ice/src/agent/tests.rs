//! Role conflicts exactly as RFC 8445 §7.3.1.1 and §7.2.5.1 say, for every ordering.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::candidate::{Candidate, CandidateKind, LocalCandidate};
use crate::stun::{Message, attr};

fn creds(u: &str) -> Credentials {
    Credentials {
        ufrag: u.to_owned(),
        password: format!("{u}-password-0123456789abcdef"),
    }
}

const A: &str = "192.0.2.1:1000";
const B: &str = "192.0.2.2:2000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn agent(role: Role, me: &str, peer: &str, host: &str, other: &str, tb: u64) -> Agent {
    let mut a = Agent::new(Config::default(), role, creds(me), tb);
    a.set_tie_breaker(tb);
    a.set_remote_credentials(creds(peer));
    a.add_local_candidate(LocalCandidate::host(addr(host), 0))
        .unwrap();
    a.add_remote_candidate(Candidate::new(CandidateKind::Host, addr(other), 0))
        .unwrap();
    a
}

/// `sender` sends its first check to `receiver`; returns the receiver's reply bytes.
fn exchange(sender: &mut Agent, receiver: &mut Agent, now: Instant) -> Vec<u8> {
    sender.handle_timeout(now);
    let req = sender.poll_transmit().unwrap();
    receiver.handle_timeout(now);
    while receiver.poll_transmit().is_some() {}
    receiver
        .handle_packet(now, req.from, req.to, &req.contents)
        .unwrap();
    receiver.poll_transmit().unwrap().contents
}

fn error_code(bytes: &[u8]) -> Option<u16> {
    Message::parse(bytes).unwrap().error_code().map(|(c, _)| c)
}

#[test]
fn controlling_receiver_with_larger_or_equal_tie_breaker_answers_487_and_keeps_role() {
    for (mine, theirs) in [(10, 5), (7, 7)] {
        let now = Instant::now();
        let mut s = agent(Role::Controlling, "bbbb", "aaaa", B, A, theirs);
        let mut r = agent(Role::Controlling, "aaaa", "bbbb", A, B, mine);
        let reply = exchange(&mut s, &mut r, now);
        assert_eq!(error_code(&reply), Some(487), "mine {mine} theirs {theirs}");
        assert_eq!(r.role(), Role::Controlling);
        // The sender included ICE-CONTROLLING, so the 487 switches it to controlled, and
        // the pair goes back to Waiting on the triggered queue.
        s.handle_packet(now, addr(A), addr(B), &reply).unwrap();
        assert_eq!(s.role(), Role::Controlled);
        // RFC 8445 §7.2.5.1: "The agent MUST change the tiebreaker value."
        assert_ne!(s.tie_breaker(), theirs);
        assert_eq!(
            s.poll_event(),
            Some(Event::RoleChanged {
                role: Role::Controlled
            })
        );
        assert_eq!(s.triggered.len(), 1);
        assert_eq!(s.pairs[0].state, PairState::Waiting);
    }
}

#[test]
fn controlling_receiver_with_smaller_tie_breaker_switches_to_controlled() {
    let now = Instant::now();
    let mut s = agent(Role::Controlling, "bbbb", "aaaa", B, A, 10);
    let mut r = agent(Role::Controlling, "aaaa", "bbbb", A, B, 5);
    let reply = exchange(&mut s, &mut r, now);
    assert_eq!(error_code(&reply), None, "success response");
    assert_eq!(r.role(), Role::Controlled);
    assert_eq!(
        r.poll_event(),
        Some(Event::RoleChanged {
            role: Role::Controlled
        })
    );
}

#[test]
fn controlled_receiver_with_larger_or_equal_tie_breaker_switches_to_controlling() {
    for (mine, theirs) in [(10, 5), (7, 7)] {
        let now = Instant::now();
        let mut s = agent(Role::Controlled, "bbbb", "aaaa", B, A, theirs);
        let mut r = agent(Role::Controlled, "aaaa", "bbbb", A, B, mine);
        let reply = exchange(&mut s, &mut r, now);
        assert_eq!(error_code(&reply), None);
        assert_eq!(r.role(), Role::Controlling, "mine {mine} theirs {theirs}");
    }
}

#[test]
fn controlled_receiver_with_smaller_tie_breaker_answers_487() {
    let now = Instant::now();
    let mut s = agent(Role::Controlled, "bbbb", "aaaa", B, A, 10);
    let mut r = agent(Role::Controlled, "aaaa", "bbbb", A, B, 5);
    let reply = exchange(&mut s, &mut r, now);
    assert_eq!(error_code(&reply), Some(487));
    assert_eq!(r.role(), Role::Controlled);
    // The sender included ICE-CONTROLLED: the 487 switches it to controlling.
    s.handle_packet(now, addr(A), addr(B), &reply).unwrap();
    assert_eq!(s.role(), Role::Controlling);
}

#[test]
fn no_conflict_when_roles_differ() {
    let now = Instant::now();
    let mut s = agent(Role::Controlling, "bbbb", "aaaa", B, A, 1);
    let mut r = agent(Role::Controlled, "aaaa", "bbbb", A, B, u64::MAX);
    let reply = exchange(&mut s, &mut r, now);
    assert_eq!(error_code(&reply), None);
    assert_eq!((s.role(), r.role()), (Role::Controlling, Role::Controlled));
}

#[test]
fn stale_487_after_a_role_switch_is_ignored() {
    let now = Instant::now();
    let mut s = agent(Role::Controlling, "bbbb", "aaaa", B, A, 5);
    let mut r = agent(Role::Controlling, "aaaa", "bbbb", A, B, 10);
    let reply = exchange(&mut s, &mut r, now);
    assert_eq!(error_code(&reply), Some(487));
    // Before the 487 arrives, s already switched to controlled because of another
    // request (here: forced as the conflict resolution would).
    s.switch_role(Role::Controlled);
    assert_eq!(
        s.poll_event(),
        Some(Event::RoleChanged {
            role: Role::Controlled
        })
    );
    s.handle_packet(now, addr(A), addr(B), &reply).unwrap();
    assert_eq!(s.role(), Role::Controlled, "no flip back");
    assert_eq!(s.tie_breaker(), 5, "no switch, so the tie-breaker stays");
    assert_eq!(s.poll_event(), None, "no second role change");
}

#[test]
fn use_candidate_from_the_controlled_side_is_ignored() {
    let now = Instant::now();
    let mut r = agent(Role::Controlling, "aaaa", "bbbb", A, B, u64::MAX);
    r.handle_timeout(now);
    while r.poll_transmit().is_some() {}
    // A request from a controlled peer that (wrongly) carries USE-CANDIDATE.
    let mut buf = Vec::new();
    let key = crate::stun::IntegrityKey::short_term(&creds("aaaa").password);
    let mut w = crate::stun::MessageWriter::new(
        &mut buf,
        crate::stun::Method::BINDING,
        crate::stun::Class::Request,
        crate::stun::TransactionId([9; 12]),
    );
    w.attr(attr::USERNAME, b"aaaa:bbbb")
        .attr_u32(attr::PRIORITY, 1)
        .attr_u64(attr::ICE_CONTROLLED, 1)
        .attr(attr::USE_CANDIDATE, &[])
        .integrity(&key)
        .fingerprint();
    r.handle_packet(now, addr(B), addr(A), &buf).unwrap();
    assert!(
        r.pairs
            .iter()
            .all(|p| !p.nominated && !p.nominate_on_success)
    );
    assert!(!r.is_connected());
}

#[test]
fn unauthenticated_requests_create_no_state_and_no_amplification() {
    let now = Instant::now();
    let mut r = agent(Role::Controlled, "aaaa", "bbbb", A, B, 1);
    r.handle_timeout(now);
    while r.poll_transmit().is_some() {}
    let remotes = r.remote_candidates().len();
    let mut buf = Vec::new();
    let key = crate::stun::IntegrityKey::short_term("wrong password wrong password");
    let mut w = crate::stun::MessageWriter::new(
        &mut buf,
        crate::stun::Method::BINDING,
        crate::stun::Class::Request,
        crate::stun::TransactionId([9; 12]),
    );
    w.attr(attr::USERNAME, b"aaaa:bbbb")
        .attr_u32(attr::PRIORITY, 1)
        .integrity(&key)
        .fingerprint();
    let evil: SocketAddr = "198.51.100.66:666".parse().unwrap();
    assert_eq!(
        r.handle_packet(now, evil, addr(A), &buf),
        Err(Error::Unauthenticated)
    );
    assert_eq!(
        r.remote_candidates().len(),
        remotes,
        "no peer-reflexive candidate"
    );
    let reply = r.poll_transmit().unwrap();
    assert!(reply.contents.len() <= buf.len());
    assert_eq!(error_code(&reply.contents), Some(401));
}

#[test]
fn first_valid_pair_is_usable_at_once_and_a_better_one_replaces_it() {
    let now = Instant::now();
    let (b1, b2) = ("192.0.2.2:2000", "192.0.2.3:2000");
    let mut a = Agent::new(Config::default(), Role::Controlling, creds("aaaa"), 1);
    a.set_remote_credentials(creds("bbbb"));
    a.add_local_candidate(LocalCandidate::host(addr(A), 0))
        .unwrap();
    a.add_remote_candidate(Candidate::new(CandidateKind::Host, addr(b1), 0))
        .unwrap();
    a.add_remote_candidate(Candidate::new(CandidateKind::Host, addr(b2), 1))
        .unwrap();
    let mut b = Agent::new(Config::default(), Role::Controlled, creds("bbbb"), 2);
    b.set_remote_credentials(creds("aaaa"));
    b.add_local_candidate(LocalCandidate::host(addr(b1), 0))
        .unwrap();
    b.add_local_candidate(LocalCandidate::host(addr(b2), 1))
        .unwrap();
    b.handle_timeout(now);
    // RFC 8445 §6.1.4.2: the higher-priority pair is checked first, the next one Ta later.
    a.handle_timeout(now);
    let r1 = a.poll_transmit().unwrap();
    assert_eq!(r1.to, addr(b1));
    let t = now + Duration::from_millis(50);
    a.handle_timeout(t);
    let r2 = a.poll_transmit().unwrap();
    assert_eq!(r2.to, addr(b2));
    // The lower-priority check is answered first: its pair is usable at once (§12.1: "An
    // ICE agent MAY send data on any valid pair before selected pairs have been produced").
    b.handle_packet(t, r2.from, r2.to, &r2.contents).unwrap();
    let resp2 = b.poll_transmit().unwrap();
    a.handle_packet(t, resp2.from, resp2.to, &resp2.contents)
        .unwrap();
    assert_eq!(
        a.poll_event(),
        Some(Event::Selected {
            local: addr(A),
            remote: addr(b2),
            nominated: false
        })
    );
    assert_eq!(a.selected_pair(), Some((addr(A), addr(b2))));
    // Valid means one of our own checks was answered from there: b2 yes, b1 not yet; and
    // `b`, which has only received checks from A (a source address anyone could forge),
    // has no valid pair to A.
    assert!(a.has_valid_pair_to(addr(b2)));
    assert!(!a.has_valid_pair_to(addr(b1)));
    assert!(!b.has_valid_pair_to(addr(A)));
    // Answered in the same instant it was sent: a round trip of zero on the virtual clock.
    assert_eq!(a.selected_rtt(), Some(Duration::ZERO));
    // A better pending pair holds nomination back (within the nomination delay).
    a.handle_timeout(t + Duration::from_millis(100));
    assert!(!a.is_connected());
    // The better pair validates and replaces it; then it is nominated.
    b.handle_packet(t, r1.from, r1.to, &r1.contents).unwrap();
    let resp1 = b.poll_transmit().unwrap();
    a.handle_packet(t, resp1.from, resp1.to, &resp1.contents)
        .unwrap();
    assert_eq!(
        a.poll_event(),
        Some(Event::Selected {
            local: addr(A),
            remote: addr(b1),
            nominated: false
        })
    );
    // Sent at `now`, answered at `t`: the selected pair's round trip is 50 ms.
    assert_eq!(a.selected_rtt(), Some(Duration::from_millis(50)));
    let t2 = t + Duration::from_millis(200);
    a.handle_timeout(t2);
    let nomination = std::iter::from_fn(|| a.poll_transmit())
        .find(|tx| Message::parse(&tx.contents).unwrap().use_candidate())
        .expect("nomination check");
    assert_eq!(nomination.to, addr(b1));
}
