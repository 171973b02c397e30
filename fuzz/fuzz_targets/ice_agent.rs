//! Arbitrary datagrams into live in8-ice endpoints in both roles (an inviter listening with
//! a phase-1 session, an invitee that joined) and into a TURN client: no panic, and every
//! queue stays within its configured bound. Input: a sequence of records
//! `[selector, time step (10 ms units), len, bytes...]`; one record in four is turned into
//! a well-authenticated check so the fuzzer reaches past MESSAGE-INTEGRITY.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use in8_artifact::{Candidate, CandidateKind, InviteSecret, fixtures};
use in8_ice::stun::{Class, IntegrityKey, MessageWriter, Method, TransactionId, attr};
use in8_ice::turn::{TurnClient, TurnConfig};
use in8_ice::{Endpoint, EndpointConfig, LocalCandidate};
use libfuzzer_sys::fuzz_target;

fn a(s: &str) -> SocketAddr {
    s.parse().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 1)))
}

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut inv = fixtures::invitation();
    inv.secret = InviteSecret::from_bytes(&[3; 16]).unwrap_or_else(|_| fixtures::secret());
    inv.candidates = vec![Candidate::new(CandidateKind::Host, a("192.0.2.1:4488"), 0)];
    let (alice_addr, bob_addr, turn_addr) = (a("192.0.2.1:4488"), a("192.0.2.2:5000"), a("192.0.2.9:3478"));
    let cfg = EndpointConfig::default();
    let bound = cfg.agent.max_queue * 4;
    let mut alice = Endpoint::new(cfg.clone(), 1);
    alice.add_local_candidate(LocalCandidate::host(alice_addr, 0));
    let _ = alice.listen(&inv);
    let mut bob = Endpoint::new(cfg, 2);
    bob.add_local_candidate(LocalCandidate::host(bob_addr, 0));
    let _ = bob.join(t0, &inv);
    let mut turn = TurnClient::new(
        TurnConfig { server: turn_addr, username: "u".into(), password: "p".into(), lifetime: Duration::from_secs(600) },
        bob_addr,
        3,
    );
    turn.allocate(t0);
    let key = IntegrityKey::short_term(&inv.secret.inviter_password());
    let user = format!("{}:fuzzufrg", inv.secret.inviter_ufrag());

    let mut now = t0;
    let mut rest = data;
    let mut n = 0u32;
    while rest.len() >= 3 {
        let (sel, step, len) = (rest[0], rest[1], rest[2] as usize);
        rest = &rest[3..];
        let body = &rest[..len.min(rest.len())];
        rest = &rest[body.len()..];
        now += Duration::from_millis(10 * step as u64);
        n += 1;
        let mut owned;
        let bytes: &[u8] = if n % 4 == 0 {
            // A well-formed authenticated check whose attributes come from the input.
            owned = Vec::new();
            let mut w = MessageWriter::new(&mut owned, Method::BINDING, Class::Request, TransactionId([sel; 12]));
            w.attr(attr::USERNAME, user.as_bytes());
            for c in body.chunks(6) {
                if c.len() >= 2 {
                    w.attr(u16::from_be_bytes([c[0], c[1]]), &c[2..]);
                }
            }
            w.integrity(&key).fingerprint();
            &owned
        } else {
            body
        };
        let from = SocketAddr::from(([198, 51, 100, sel], 1000 + (sel as u16 & 7)));
        match sel % 3 {
            0 => {
                let _ = alice.handle_packet(now, from, alice_addr, bytes);
            }
            1 => {
                let _ = bob.handle_packet(now, from, bob_addr, bytes);
            }
            _ => {
                let _ = turn.handle_packet(now, turn_addr, bytes);
            }
        }
        alice.handle_timeout(now);
        bob.handle_timeout(now);
        turn.handle_timeout(now);
        let mut out = 0;
        while alice.poll_transmit().is_some() || bob.poll_transmit().is_some() {
            out += 1;
        }
        assert!(out <= 2 * bound + 8, "transmit queues bounded");
        while alice.poll_event().is_some() || bob.poll_event().is_some() {}
        while turn.poll_transmit().is_some() {}
        while turn.poll_event().is_some() {}
    }
});
