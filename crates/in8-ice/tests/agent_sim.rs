//! Two agents through the seeded in-process network: direct, peer-reflexive, NAT filtering
//! kinds, role conflicts (1,000 seeds, no flapping), consent loss and ICE restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

#[path = "support/net.rs"]
mod net;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use in8_ice::{
    Agent, Candidate, CandidateKind, Config, Credentials, Event, FailureReason, LocalCandidate,
    Role,
};
use net::{AgentNode, Nat, Net, run};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn creds(u: &str) -> Credentials {
    Credentials {
        ufrag: u.to_owned(),
        password: format!("{u}-password-0123456789abcdef"),
    }
}

fn node(role: Role, me: &str, peer: &str, host: &str, seed: u64) -> AgentNode {
    let mut a = Agent::new(Config::default(), role, creds(me), seed);
    a.set_remote_credentials(creds(peer));
    a.add_local_candidate(LocalCandidate::host(addr(host), 0))
        .unwrap();
    AgentNode {
        agent: a,
        addrs: vec![addr(host)],
        events: Vec::new(),
    }
}

fn nominated(n: &AgentNode) -> Option<(SocketAddr, SocketAddr)> {
    n.events.iter().rev().find_map(|e| match e {
        Event::Selected {
            local,
            remote,
            nominated: true,
        } => Some((*local, *remote)),
        _ => None,
    })
}

/// Gives each side the other's host candidate (192.0.2.1:1000 and 192.0.2.2:2000), as
/// signalling would.
fn signal_hosts(a: &mut AgentNode, b: &mut AgentNode) {
    for (n, peer) in [(a, "192.0.2.2:2000"), (b, "192.0.2.1:1000")] {
        n.agent
            .add_remote_candidate(Candidate::new(CandidateKind::Host, addr(peer), 0))
            .unwrap();
    }
}

fn start(a: &mut AgentNode, b: &mut AgentNode, t0: Instant) {
    a.agent.handle_timeout(t0);
    b.agent.handle_timeout(t0);
}

#[test]
fn direct_hosts_connect_on_the_same_pair() {
    let t0 = Instant::now();
    let mut net = Net::new(1);
    let mut a = node(Role::Controlling, "aaaa", "bbbb", "192.0.2.1:1000", 1);
    let mut b = node(Role::Controlled, "bbbb", "aaaa", "192.0.2.2:2000", 2);
    signal_hosts(&mut a, &mut b);
    start(&mut a, &mut b, t0);
    run(
        &mut net,
        &mut [&mut a, &mut b],
        t0,
        t0 + Duration::from_secs(3),
    );
    assert!(a.agent.is_connected() && b.agent.is_connected());
    assert_eq!(
        nominated(&a),
        Some((addr("192.0.2.1:1000"), addr("192.0.2.2:2000")))
    );
    assert_eq!(
        nominated(&b),
        Some((addr("192.0.2.2:2000"), addr("192.0.2.1:1000")))
    );
    // The first valid pair was usable before nomination.
    assert!(matches!(
        a.events.first(),
        Some(Event::Selected {
            nominated: false,
            ..
        })
    ));
}

#[test]
fn controlled_side_learns_peer_reflexive_candidate() {
    let t0 = Instant::now();
    let mut net = Net::new(2);
    let mut a = node(Role::Controlling, "aaaa", "bbbb", "10.0.0.1:1000", 1);
    let mut b = node(Role::Controlled, "bbbb", "aaaa", "198.51.100.2:2000", 2);
    net.add_nat(
        Nat::PortRestricted,
        "10.0.0.1".parse().unwrap(),
        "203.0.113.1".parse().unwrap(),
    );
    // b knows nothing about a: a's NAT-mapped address becomes a peer-reflexive candidate.
    a.agent
        .add_remote_candidate(Candidate::new(
            CandidateKind::Host,
            addr("198.51.100.2:2000"),
            0,
        ))
        .unwrap();
    start(&mut a, &mut b, t0);
    run(
        &mut net,
        &mut [&mut a, &mut b],
        t0,
        t0 + Duration::from_secs(3),
    );
    assert!(a.agent.is_connected() && b.agent.is_connected());
    let learned = b.events.iter().find_map(|e| match e {
        Event::PeerReflexive { addr } => Some(*addr),
        _ => None,
    });
    assert_eq!(
        learned.map(|a| a.ip()),
        Some("203.0.113.1".parse().unwrap())
    );
    assert_eq!(nominated(&b).map(|p| p.1), learned);
    // a learned its own mapped address as a peer-reflexive local candidate.
    assert!(
        a.agent
            .local_candidates()
            .iter()
            .any(|l| l.candidate.kind == CandidateKind::PeerReflexive)
    );
}

#[test]
fn signalled_candidate_replaces_peer_reflexive_one() {
    let mut a = Agent::new(Config::default(), Role::Controlled, creds("aaaa"), 1);
    a.set_remote_credentials(creds("bbbb"));
    a.add_local_candidate(LocalCandidate::host(addr("192.0.2.1:1000"), 0))
        .unwrap();
    let t0 = Instant::now();
    a.handle_timeout(t0);
    let mut b = Agent::new(Config::default(), Role::Controlling, creds("bbbb"), 2);
    b.set_remote_credentials(creds("aaaa"));
    b.add_local_candidate(LocalCandidate::host(addr("192.0.2.2:2000"), 0))
        .unwrap();
    b.add_remote_candidate(Candidate::new(
        CandidateKind::Host,
        addr("192.0.2.1:1000"),
        0,
    ))
    .unwrap();
    b.handle_timeout(t0);
    let req = b.poll_transmit().unwrap();
    a.handle_packet(t0, req.from, req.to, &req.contents)
        .unwrap();
    assert_eq!(a.remote_candidates().len(), 1);
    assert_eq!(
        a.remote_candidates()[0].candidate.kind,
        CandidateKind::PeerReflexive
    );
    a.add_remote_candidate(Candidate::new(
        CandidateKind::Host,
        addr("192.0.2.2:2000"),
        0,
    ))
    .unwrap();
    assert_eq!(a.remote_candidates().len(), 1, "replaced, not duplicated");
    assert_eq!(a.remote_candidates()[0].candidate.kind, CandidateKind::Host);
}

/// Both behind NATs, each with a server-reflexive candidate: (NAT of a, NAT of b, connects).
#[test]
fn nat_filtering_matrix() {
    use Nat::*;
    let cases = [
        (FullCone, FullCone, true),
        (Restricted, Restricted, true),
        (PortRestricted, PortRestricted, true),
        (PortRestricted, Restricted, true),
        (Symmetric, FullCone, true),
        (Symmetric, Restricted, true),
        (Symmetric, PortRestricted, false),
        (Symmetric, Symmetric, false),
    ];
    let stun = addr("192.0.2.200:3478");
    for (i, (na, nb, expect)) in cases.into_iter().enumerate() {
        let t0 = Instant::now();
        let mut net = Net::new(10 + i as u64);
        net.add_nat(
            na,
            "10.0.0.1".parse().unwrap(),
            "203.0.113.1".parse().unwrap(),
        );
        net.add_nat(
            nb,
            "10.0.1.1".parse().unwrap(),
            "203.0.113.2".parse().unwrap(),
        );
        let mut a = node(Role::Controlling, "aaaa", "bbbb", "10.0.0.1:1000", 1);
        let mut b = node(Role::Controlled, "bbbb", "aaaa", "10.0.1.1:2000", 2);
        let ra = net.reflexive(addr("10.0.0.1:1000"), stun);
        let rb = net.reflexive(addr("10.0.1.1:2000"), stun);
        a.agent
            .add_local_candidate(LocalCandidate::new(
                Candidate::new(CandidateKind::ServerReflexive, ra, 1),
                addr("10.0.0.1:1000"),
            ))
            .unwrap();
        b.agent
            .add_local_candidate(LocalCandidate::new(
                Candidate::new(CandidateKind::ServerReflexive, rb, 1),
                addr("10.0.1.1:2000"),
            ))
            .unwrap();
        a.agent
            .add_remote_candidate(Candidate::new(CandidateKind::ServerReflexive, rb, 1))
            .unwrap();
        b.agent
            .add_remote_candidate(Candidate::new(CandidateKind::ServerReflexive, ra, 1))
            .unwrap();
        start(&mut a, &mut b, t0);
        run(
            &mut net,
            &mut [&mut a, &mut b],
            t0,
            t0 + Duration::from_secs(15),
        );
        assert_eq!(a.agent.is_connected(), expect, "{na:?} x {nb:?}: a");
        assert_eq!(b.agent.is_connected(), expect, "{na:?} x {nb:?}: b");
        if !expect {
            let failed = a.events.iter().any(|e| matches!(e, Event::Failed { .. }));
            assert!(failed, "{na:?} x {nb:?}: failure is reported");
        }
    }
}

#[test]
fn nothing_received_is_named() {
    let t0 = Instant::now();
    let mut net = Net::new(3);
    net.up = false;
    let mut a = node(Role::Controlling, "aaaa", "bbbb", "192.0.2.1:1000", 1);
    let mut b = node(Role::Controlled, "bbbb", "aaaa", "192.0.2.2:2000", 2);
    a.agent
        .add_remote_candidate(Candidate::new(
            CandidateKind::Host,
            addr("192.0.2.2:2000"),
            0,
        ))
        .unwrap();
    start(&mut a, &mut b, t0);
    run(
        &mut net,
        &mut [&mut a, &mut b],
        t0,
        t0 + Duration::from_secs(60),
    );
    let reason = a.events.iter().find_map(|e| match e {
        Event::Failed { reason } => Some(*reason),
        _ => None,
    });
    assert!(
        matches!(reason, Some(FailureReason::NothingReceived { requests_sent }) if requests_sent >= 1),
        "{reason:?}"
    );
    assert!(a.agent.is_failed());
    assert_eq!(a.agent.poll_timeout(), None);
}

fn role_conflict_run(seed: u64, ra: Role, rb: Role) -> (AgentNode, AgentNode, bool) {
    let t0 = Instant::now();
    let mut net = Net::new(seed);
    net.loss = 0.05;
    let mut a = node(ra, "aaaa", "bbbb", "192.0.2.1:1000", seed * 2 + 1);
    let mut b = node(rb, "bbbb", "aaaa", "192.0.2.2:2000", seed * 2 + 2);
    signal_hosts(&mut a, &mut b);
    // Tie-breakers change after a 487 switch (RFC 8445 §7.2.5.1): remember who starts larger.
    let a_larger = a.agent.tie_breaker() > b.agent.tie_breaker();
    start(&mut a, &mut b, t0);
    run(
        &mut net,
        &mut [&mut a, &mut b],
        t0,
        t0 + Duration::from_secs(8),
    );
    (a, b, a_larger)
}

#[test]
fn role_conflicts_resolve_without_flapping_over_1000_seeds() {
    for seed in 0..1000u64 {
        let (ra, rb) = if seed % 2 == 0 {
            (Role::Controlling, Role::Controlling)
        } else {
            (Role::Controlled, Role::Controlled)
        };
        let (a, b, a_wins) = role_conflict_run(seed, ra, rb);
        assert_ne!(
            a.agent.role(),
            b.agent.role(),
            "seed {seed}: roles differ at the end"
        );
        // The side that started with the larger tie-breaker ends controlling.
        assert_eq!(a.agent.role() == Role::Controlling, a_wins, "seed {seed}");
        for n in [&a, &b] {
            let changes = n
                .events
                .iter()
                .filter(|e| matches!(e, Event::RoleChanged { .. }))
                .count();
            assert!(
                changes <= 1,
                "seed {seed}: {changes} role changes (flapping)"
            );
        }
        assert!(
            a.agent.is_connected() && b.agent.is_connected(),
            "seed {seed}"
        );
        assert_eq!(
            nominated(&a).map(|p| p.1),
            Some(addr("192.0.2.2:2000")),
            "seed {seed}"
        );
    }
}

#[test]
fn consent_lost_after_30_s_and_sending_stops_within_one_tick() {
    let t0 = Instant::now();
    let mut net = Net::new(4);
    let mut a = node(Role::Controlling, "aaaa", "bbbb", "192.0.2.1:1000", 1);
    let mut b = node(Role::Controlled, "bbbb", "aaaa", "192.0.2.2:2000", 2);
    a.agent
        .add_remote_candidate(Candidate::new(
            CandidateKind::Host,
            addr("192.0.2.2:2000"),
            0,
        ))
        .unwrap();
    start(&mut a, &mut b, t0);
    let t1 = run(
        &mut net,
        &mut [&mut a, &mut b],
        t0,
        t0 + Duration::from_secs(2),
    );
    assert!(a.agent.is_connected());
    // Consent keeps the pair alive for minutes while the peer answers.
    let t2 = run(
        &mut net,
        &mut [&mut a, &mut b],
        t1,
        t1 + Duration::from_secs(120),
    );
    assert!(a.agent.selected_pair().is_some());
    assert!(!a.events.iter().any(|e| matches!(e, Event::Failed { .. })));
    // Cut the path: no response for 30 s.
    net.up = false;
    let mut now = t2;
    let mut lost_at = None;
    while now < t2 + Duration::from_secs(40) {
        let next = a
            .agent
            .poll_timeout()
            .unwrap_or(now + Duration::from_secs(1));
        now = next.max(now);
        a.agent.handle_timeout(now);
        while a.agent.poll_transmit().is_some() {}
        if a.agent.selected_pair().is_none() {
            lost_at = Some(now);
            break;
        }
    }
    let lost_at = lost_at.expect("consent lost");
    // The last authenticated response came at most one consent interval (<= 6 s) before
    // the cut; consent must expire within 30 s of it, and exactly at a poll_timeout tick.
    assert!(lost_at <= t2 + Duration::from_secs(30));
    assert!(lost_at >= t2 + Duration::from_secs(23));
    let mut evs = Vec::new();
    while let Some(e) = a.agent.poll_event() {
        evs.push(e);
    }
    assert!(evs.contains(&Event::Failed {
        reason: FailureReason::ConsentLost
    }));
    assert!(a.agent.poll_transmit().is_none());
    a.agent.handle_timeout(lost_at + Duration::from_secs(10));
    assert!(
        a.agent.poll_transmit().is_none(),
        "nothing is sent after consent is lost"
    );
}

#[test]
fn ice_restart_reconnects_with_new_credentials() {
    let t0 = Instant::now();
    let mut net = Net::new(5);
    let mut a = node(Role::Controlling, "aaaa", "bbbb", "192.0.2.1:1000", 1);
    let mut b = node(Role::Controlled, "bbbb", "aaaa", "192.0.2.2:2000", 2);
    let cb = Candidate::new(CandidateKind::Host, addr("192.0.2.2:2000"), 0);
    let ca = Candidate::new(CandidateKind::Host, addr("192.0.2.1:1000"), 0);
    a.agent.add_remote_candidate(cb).unwrap();
    b.agent.add_remote_candidate(ca).unwrap();
    start(&mut a, &mut b, t0);
    let t1 = run(
        &mut net,
        &mut [&mut a, &mut b],
        t0,
        t0 + Duration::from_secs(2),
    );
    assert!(a.agent.is_connected() && b.agent.is_connected());
    // RFC 8445 §9: both sides change ufrag and password; roles are kept.
    a.agent.restart(t1, creds("cccc"));
    b.agent.restart(t1, creds("dddd"));
    a.agent.set_remote_credentials(creds("dddd"));
    b.agent.set_remote_credentials(creds("cccc"));
    a.agent.add_remote_candidate(cb).unwrap();
    b.agent.add_remote_candidate(ca).unwrap();
    // Data keeps flowing on the previous pair during the restart.
    assert!(a.agent.selected_pair().is_some());
    a.events.clear();
    b.events.clear();
    run(
        &mut net,
        &mut [&mut a, &mut b],
        t1,
        t1 + Duration::from_secs(3),
    );
    assert!(a.agent.is_connected() && b.agent.is_connected());
    assert!(nominated(&a).is_some() && nominated(&b).is_some());
    assert_eq!(a.agent.role(), Role::Controlling);
}

/// A sequential symmetric NAT against address-and-port-dependent filtering fails with plain
/// ICE (see the matrix) but connects when the easy side also checks predicted ports.
#[test]
fn port_prediction_beats_a_sequential_symmetric_nat() {
    use in8_ice::nat::{Observation, Probe, classify};
    use in8_ice::punch::predicted_candidates;
    let stun = [
        addr("192.0.2.200:3478"),
        addr("192.0.2.201:3478"),
        addr("192.0.2.202:3478"),
    ];
    let t0 = Instant::now();
    let mut net = Net::new(77);
    net.add_nat(
        Nat::SymmetricSequential,
        "10.0.0.1".parse().unwrap(),
        "203.0.113.1".parse().unwrap(),
    );
    net.add_nat(
        Nat::PortRestricted,
        "10.0.1.1".parse().unwrap(),
        "203.0.113.2".parse().unwrap(),
    );
    let (ha, hb) = (addr("10.0.0.1:1000"), addr("10.0.1.1:2000"));
    // a classifies its NAT from three reflectors (RFC 5780 logic, plain reflectors).
    let obs: Vec<Observation> = stun
        .iter()
        .map(|s| Observation {
            probe: Probe {
                to: *s,
                change_ip: false,
                change_port: false,
            },
            mapped: Some(net.reflexive(ha, *s)),
        })
        .collect();
    let class = classify(ha, &obs);
    let in8_ice::nat::PortAllocation::Sequential { delta } = class.ports else {
        panic!("{class:?}")
    };
    let last = obs.last().unwrap().mapped.unwrap();
    let rb = net.reflexive(hb, stun[0]);
    let mut a = node(Role::Controlling, "aaaa", "bbbb", "10.0.0.1:1000", 1);
    let mut b = node(Role::Controlled, "bbbb", "aaaa", "10.0.1.1:2000", 2);
    a.agent
        .add_remote_candidate(Candidate::new(CandidateKind::ServerReflexive, rb, 0))
        .unwrap();
    for c in predicted_candidates(last.ip(), last.port(), delta, 4) {
        b.agent.add_remote_candidate(c).unwrap();
    }
    // b starts first (it learned a's class and prediction from the RSVP / introduction).
    b.agent.handle_timeout(t0);
    let t1 = run(&mut net, &mut [&mut b], t0, t0 + Duration::from_millis(300));
    a.agent.handle_timeout(t1);
    run(
        &mut net,
        &mut [&mut a, &mut b],
        t1,
        t1 + Duration::from_secs(10),
    );
    assert!(
        a.agent.is_connected() && b.agent.is_connected(),
        "{:?}\n{:?}",
        a.events,
        b.events
    );
}

/// Birthday probing: a random-port symmetric NAT against address-and-port-dependent
/// filtering. The hard side opens 256 sockets and checks the easy side from each (256
/// mappings); the easy side then probes random ports of the hard side's IP at 200 per
/// second, at most 2048 (P(hit) ≈ 1 - (1 - 256/64512)^2048 ≈ 99.97 %). A hit is an
/// authenticated check, so the ordinary rules validate and nominate the pair.
#[test]
fn birthday_probing_beats_a_random_symmetric_nat() {
    use in8_ice::punch::{BirthdayConfig, BirthdayProber};
    let t0 = Instant::now();
    let stun = addr("192.0.2.200:3478");
    let mut net = Net::new(99);
    net.add_nat(
        Nat::Symmetric,
        "10.0.0.1".parse().unwrap(),
        "203.0.113.1".parse().unwrap(),
    );
    net.add_nat(
        Nat::PortRestricted,
        "10.0.1.1".parse().unwrap(),
        "203.0.113.2".parse().unwrap(),
    );
    let cfg = Config {
        max_local_candidates: 300,
        max_pairs: 300,
        max_transactions: 2200,
        connect_timeout: Duration::from_secs(60),
        ..Config::default()
    };
    let bc = BirthdayConfig::default();
    let hard_addrs: Vec<SocketAddr> = (0..bc.sockets)
        .map(|i| SocketAddr::from(([10, 0, 0, 1], 10_000 + i)))
        .collect();
    let mut a = Agent::new(cfg.clone(), Role::Controlled, creds("aaaa"), 1);
    a.set_remote_credentials(creds("bbbb"));
    for (i, h) in hard_addrs.iter().enumerate() {
        a.add_local_candidate(LocalCandidate::host(*h, i)).unwrap();
    }
    let hb = addr("10.0.1.1:2000");
    let rb = net.reflexive(hb, stun);
    let mut a = AgentNode {
        agent: a,
        addrs: hard_addrs.clone(),
        events: Vec::new(),
    };
    let mut b = node(Role::Controlling, "bbbb", "aaaa", "10.0.1.1:2000", 2);
    b.agent = {
        let mut x = Agent::new(cfg, Role::Controlling, creds("bbbb"), 2);
        x.set_remote_credentials(creds("aaaa"));
        x.add_local_candidate(LocalCandidate::host(hb, 0)).unwrap();
        x
    };
    // The hard side goes first: every socket sends one probe to the easy side's
    // server-reflexive address (100 per second), creating 256 mappings. (As ordinary pairs
    // they would share one foundation and stay Frozen behind the first.)
    a.agent.handle_timeout(t0);
    b.agent.handle_timeout(t0);
    let mut now = t0;
    for h in &hard_addrs {
        a.agent.send_probe(now, *h, rb).unwrap();
        now = run(
            &mut net,
            &mut [&mut a, &mut b],
            now,
            now + Duration::from_millis(10),
        );
    }
    assert!(
        !a.agent.is_connected(),
        "plain checks cannot pass the filters"
    );
    // Then the easy side probes.
    let mut prober = BirthdayProber::new(bc, "203.0.113.1".parse().unwrap(), 7);
    while now < t0 + Duration::from_secs(40) && !(a.agent.is_connected() && b.agent.is_connected())
    {
        while let Some(target) = prober.poll(now) {
            b.agent.send_probe(now, hb, target).unwrap();
        }
        now = run(
            &mut net,
            &mut [&mut a, &mut b],
            now,
            now + Duration::from_millis(5),
        );
    }
    assert!(
        a.agent.is_connected() && b.agent.is_connected(),
        "after {} probes",
        prober.sent()
    );
    assert!(prober.sent() <= bc.max_probes);
    let (local, remote) = b.agent.selected_pair().unwrap();
    assert_eq!((local, remote.ip()), (hb, "203.0.113.1".parse().unwrap()));
    eprintln!(
        "birthday: connected after {} probes, {:?}",
        prober.sent(),
        now - t0
    );
}

/// Probes have their own budget (`max_probes`): a full one refuses the next probe with a
/// limit error, and the session's own checks still run (a birthday burst must not starve
/// them, nor they it).
#[test]
fn probes_at_their_limit_do_not_hold_back_checks() {
    let t0 = Instant::now();
    let mut net = Net::new(5);
    let cfg = Config {
        max_probes: 8,
        max_transactions: 4,
        ..Config::default()
    };
    let mut a = node(Role::Controlling, "aaaa", "bbbb", "192.0.2.1:1000", 1);
    a.agent = Agent::new(cfg, Role::Controlling, creds("aaaa"), 1);
    a.agent.set_remote_credentials(creds("bbbb"));
    a.agent
        .add_local_candidate(LocalCandidate::host(addr("192.0.2.1:1000"), 0))
        .unwrap();
    let mut b = node(Role::Controlled, "bbbb", "aaaa", "192.0.2.2:2000", 2);
    start(&mut a, &mut b, t0);
    for port in 0..8 {
        a.agent
            .send_probe(
                t0,
                addr("192.0.2.1:1000"),
                SocketAddr::from(([198, 51, 100, 9], 7000 + port)),
            )
            .unwrap();
    }
    assert!(matches!(
        a.agent
            .send_probe(t0, addr("192.0.2.1:1000"), addr("198.51.100.9:8000")),
        Err(in8_ice::Error::Limit { .. })
    ));
    signal_hosts(&mut a, &mut b);
    // Within the probes' lifetime (2 × rto_min = 1 s) the pair must be checked and valid.
    run(
        &mut net,
        &mut [&mut a, &mut b],
        t0,
        t0 + Duration::from_millis(400),
    );
    assert!(a.agent.is_connected() && b.agent.is_connected());
}
