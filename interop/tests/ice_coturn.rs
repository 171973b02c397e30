//! in8-ice against coturn (Debian `coturn`, started by the test with a static long-term
//! user on loopback): RFC 5780 probes classify loopback as "no NAT, endpoint-independent
//! filtering", and the sans-IO TURN client allocates, installs a permission, binds a
//! channel, relays both ways, refreshes and releases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use in8_ice::nat::{
    Filtering, Mapping, Observation, Reflector, classify, mapped_address, other_address, probe_plan,
};
use in8_ice::stun::TransactionId;
use in8_ice::turn::{TurnClient, TurnConfig, TurnEvent};
use in8_interop::coturn::{Coturn, CoturnConfig};

fn start_coturn() -> Coturn {
    Coturn::start(CoturnConfig::loopback().expect("free ports"), None)
        .expect("coturn starts (apt-get install coturn)")
}

/// Sends `req` from `sock` to `to` up to 3 times; the first answer, if any.
fn ask(sock: &UdpSocket, to: SocketAddr, req: &[u8]) -> Option<Vec<u8>> {
    let mut buf = [0u8; 4096];
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    for _ in 0..3 {
        sock.send_to(req, to).unwrap();
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            return Some(buf[..n].to_vec());
        }
    }
    None
}

#[test]
#[ignore = "needs coturn / python venv: run cargo xtask interop"]
fn coturn_as_stun_server_rfc5780_classification() {
    let coturn = start_coturn();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let local = sock.local_addr().unwrap();
    // Test I tells OTHER-ADDRESS; then the full plan.
    let first = probe_plan(&[Reflector {
        addr: coturn.stun_addr(),
        other: None,
    }]);
    let answer = ask(
        &sock,
        first[0].to,
        &first[0].request(TransactionId([1; 12])),
    )
    .expect("coturn answers");
    let m = in8_ice::stun::Message::parse(&answer).unwrap();
    assert_eq!(
        mapped_address(&answer),
        Some(local),
        "{:?} {:?}",
        m.class(),
        m.error_code()
            .map(|(c, r)| (c, String::from_utf8_lossy(r).into_owned()))
    );
    let other = other_address(&answer).expect("coturn advertises OTHER-ADDRESS");
    let plan = probe_plan(&[Reflector {
        addr: coturn.stun_addr(),
        other: Some(other),
    }]);
    let obs: Vec<Observation> = plan
        .iter()
        .enumerate()
        .map(|(i, p)| Observation {
            probe: *p,
            mapped: ask(&sock, p.to, &p.request(TransactionId([i as u8 + 2; 12])))
                .and_then(|a| mapped_address(&a)),
        })
        .collect();
    let class = classify(local, &obs);
    assert_eq!(class.mapping, Some(Mapping::NoNat), "{obs:?}");
    assert_eq!(
        class.filtering,
        Some(Filtering::EndpointIndependent),
        "{obs:?}"
    );
}

/// Drives the TURN client on `sock` until `until` returns true or 5 s pass.
fn pump(
    c: &mut TurnClient,
    sock: &UdpSocket,
    server: SocketAddr,
    mut until: impl FnMut(&TurnEvent) -> bool,
) -> Vec<TurnEvent> {
    let mut events = Vec::new();
    let end = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 1500];
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    while Instant::now() < end {
        while let Some(t) = c.poll_transmit() {
            sock.send_to(&t.contents, t.to).unwrap();
        }
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            let _ = c.handle_packet(Instant::now(), from, &buf[..n]);
        }
        c.handle_timeout(Instant::now());
        while let Some(e) = c.poll_event() {
            let done = until(&e);
            events.push(e);
            if done {
                return events;
            }
        }
    }
    let _ = server;
    panic!("TURN did not reach the expected event: {events:?}");
}

#[test]
#[ignore = "needs coturn / python venv: run cargo xtask interop"]
fn coturn_as_turn_server_allocate_permission_channel_relay() {
    let coturn = start_coturn();
    let (user, pass, _realm) = coturn.credentials();
    let server = coturn.stun_addr();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let cfg = TurnConfig {
        server,
        username: user.into(),
        password: pass.into(),
        lifetime: Duration::from_secs(600),
    };
    let mut c = TurnClient::new(cfg, sock.local_addr().unwrap(), 1);
    c.allocate(Instant::now());
    let ev = pump(&mut c, &sock, server, |e| {
        matches!(e, TurnEvent::Allocated { .. } | TurnEvent::Failed { .. })
    });
    let Some(TurnEvent::Allocated {
        relayed, mapped, ..
    }) = ev.last().cloned()
    else {
        panic!("{ev:?}\n{}", coturn.log())
    };
    assert_eq!(mapped, Some(sock.local_addr().unwrap()));
    assert_eq!(relayed.ip(), server.ip());

    // A peer on loopback.
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let paddr = peer.local_addr().unwrap();
    c.create_permission(Instant::now(), paddr.ip()).unwrap();
    pump(&mut c, &sock, server, |e| {
        matches!(e, TurnEvent::PermissionCreated { .. })
    });
    let mut buf = [0u8; 1500];
    let data_from = |ev: &[TurnEvent]| match ev.last() {
        Some(TurnEvent::Data { peer, data }) => (*peer, data.clone()),
        other => panic!("{other:?}"),
    };
    // Send indication out, Data indication back.
    c.send_to(Instant::now(), paddr, b"via send indication")
        .unwrap();
    flush(&mut c, &sock);
    let (n, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"via send indication"[..], relayed));
    peer.send_to(b"back via data indication", relayed).unwrap();
    let ev = pump(&mut c, &sock, server, |e| {
        matches!(e, TurnEvent::Data { .. })
    });
    assert_eq!(
        data_from(&ev),
        (paddr, b"back via data indication".to_vec())
    );
    // ChannelBind, ChannelData both ways.
    let ch = c.channel_bind(Instant::now(), paddr).unwrap();
    let ev = pump(&mut c, &sock, server, |e| {
        matches!(e, TurnEvent::ChannelBound { .. })
    });
    assert_eq!(
        ev.last(),
        Some(&TurnEvent::ChannelBound {
            peer: paddr,
            channel: ch
        })
    );
    c.send_to(Instant::now(), paddr, b"via channel").unwrap();
    flush(&mut c, &sock);
    let (n, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"via channel"[..], relayed));
    peer.send_to(b"back via channel", relayed).unwrap();
    let ev = pump(&mut c, &sock, server, |e| {
        matches!(e, TurnEvent::Data { .. })
    });
    assert_eq!(data_from(&ev), (paddr, b"back via channel".to_vec()));
    // Release.
    c.deallocate(Instant::now());
    pump(&mut c, &sock, server, |e| matches!(e, TurnEvent::Closed));
    assert_eq!(c.relayed_address(), None);
}

#[test]
#[ignore = "needs coturn / python venv: run cargo xtask interop"]
fn coturn_refuses_a_wrong_password() {
    let coturn = start_coturn();
    let (user, _, _) = coturn.credentials();
    let server = coturn.stun_addr();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let cfg = TurnConfig {
        server,
        username: user.into(),
        password: "wrong".into(),
        lifetime: Duration::from_secs(600),
    };
    let mut c = TurnClient::new(cfg, sock.local_addr().unwrap(), 2);
    c.allocate(Instant::now());
    let ev = pump(&mut c, &sock, server, |e| {
        matches!(e, TurnEvent::Allocated { .. } | TurnEvent::Failed { .. })
    });
    assert!(
        matches!(
            ev.last(),
            Some(TurnEvent::Failed {
                code: Some(401),
                ..
            })
        ),
        "{ev:?}"
    );
}

fn flush(c: &mut TurnClient, sock: &UdpSocket) {
    while let Some(t) = c.poll_transmit() {
        sock.send_to(&t.contents, t.to).unwrap();
    }
}

/// Two in8 agents where one has only a relayed candidate (coturn): its checks go out
/// through `TurnClient::send_to`, what the relay delivers is fed back to the agent as a
/// datagram from the peer to the relayed address — the drive contract with a relay. The
/// pair connects through coturn and consent holds.
#[test]
#[ignore = "needs coturn / python venv: run cargo xtask interop"]
fn ice_over_a_coturn_relay() {
    use in8_ice::{
        Agent, Candidate, CandidateKind, Config, Credentials, Event, LocalCandidate, Role,
    };
    let coturn = start_coturn();
    let (user, pass, _) = coturn.credentials();
    let server = coturn.stun_addr();
    let a_sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b_sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b_addr = b_sock.local_addr().unwrap();
    let cfg = TurnConfig {
        server,
        username: user.into(),
        password: pass.into(),
        lifetime: Duration::from_secs(600),
    };
    let mut turn = TurnClient::new(cfg, a_sock.local_addr().unwrap(), 3);
    turn.allocate(Instant::now());
    let ev = pump(&mut turn, &a_sock, server, |e| {
        matches!(e, TurnEvent::Allocated { .. })
    });
    let Some(TurnEvent::Allocated { relayed, .. }) = ev.last().cloned() else {
        panic!("{ev:?}")
    };
    turn.create_permission(Instant::now(), b_addr.ip()).unwrap();
    pump(&mut turn, &a_sock, server, |e| {
        matches!(e, TurnEvent::PermissionCreated { .. })
    });

    let cred = |u: &str| Credentials {
        ufrag: u.into(),
        password: format!("{u}-password-0123456789abcdef"),
    };
    let mut a = Agent::new(Config::default(), Role::Controlling, cred("aaaa"), 1);
    a.set_remote_credentials(cred("bbbb"));
    // Only the relayed candidate: every check of `a` goes through coturn.
    let relay = Candidate::new(CandidateKind::Relay, relayed, 0);
    a.add_local_candidate(LocalCandidate::new(relay, relayed))
        .unwrap();
    a.add_remote_candidate(Candidate::new(CandidateKind::Host, b_addr, 0))
        .unwrap();
    let mut b = Agent::new(Config::default(), Role::Controlled, cred("bbbb"), 2);
    b.set_remote_credentials(cred("aaaa"));
    b.add_local_candidate(LocalCandidate::host(b_addr, 0))
        .unwrap();
    b.add_remote_candidate(relay).unwrap();

    a_sock
        .set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    b_sock
        .set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let mut buf = [0u8; 1500];
    let (mut a_events, mut b_events) = (Vec::new(), Vec::new());
    let start = Instant::now();
    a.handle_timeout(start);
    b.handle_timeout(start);
    while start.elapsed() < Duration::from_secs(12) {
        let now = Instant::now();
        // a: agent transmits from the relayed address go through the TURN client.
        while let Some(t) = a.poll_transmit() {
            assert_eq!(t.from, relayed);
            turn.send_to(now, t.to, &t.contents).unwrap();
        }
        while let Some(t) = turn.poll_transmit() {
            a_sock.send_to(&t.contents, t.to).unwrap();
        }
        while let Some(t) = b.poll_transmit() {
            b_sock.send_to(&t.contents, t.to).unwrap();
        }
        if let Ok((n, from)) = a_sock.recv_from(&mut buf) {
            let _ = turn.handle_packet(now, from, &buf[..n]);
            while let Some(e) = turn.poll_event() {
                if let TurnEvent::Data { peer, data } = e {
                    let _ = a.handle_packet(now, peer, relayed, &data);
                }
            }
        }
        if let Ok((n, from)) = b_sock.recv_from(&mut buf) {
            let _ = b.handle_packet(now, from, b_addr, &buf[..n]);
        }
        let now = Instant::now();
        a.handle_timeout(now);
        b.handle_timeout(now);
        turn.handle_timeout(now);
        a_events.extend(std::iter::from_fn(|| a.poll_event()));
        b_events.extend(std::iter::from_fn(|| b.poll_event()));
    }
    assert!(
        a.is_connected() && b.is_connected(),
        "a: {a_events:?}\nb: {b_events:?}"
    );
    assert_eq!(a.selected_pair(), Some((relayed, b_addr)));
    assert_eq!(
        b.selected_pair().map(|p| p.1),
        Some(relayed),
        "b sees a at the relay"
    );
    assert!(
        !a_events
            .iter()
            .chain(&b_events)
            .any(|e| matches!(e, Event::Failed { .. }))
    );
}
