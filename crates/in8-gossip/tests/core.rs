//! The generic protocol core (`State<u32>`) on its own: bounds, priorities, the
//! no-state rule for non-neighbours, Plumtree's prune and graft.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use std::sync::Arc;

use bytes::Bytes;
use in8_gossip::proto::{Event, OutEvent, Timer};
use in8_gossip::{Config, Message, Priority, State, Time};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn state(me: u32) -> (State<u32>, ChaCha8Rng, Vec<OutEvent<u32>>) {
    (
        State::new(me, Arc::new(Config::default())),
        ChaCha8Rng::seed_from_u64(u64::from(me)),
        Vec::new(),
    )
}

fn sends(out: &[OutEvent<u32>]) -> Vec<(u32, Message<u32>)> {
    out.iter()
        .filter_map(|o| match o {
            OutEvent::Send { to, message } => Some((*to, message.clone())),
            _ => None,
        })
        .collect()
}

/// Makes `peer` an active neighbour of `s` by a high-priority NEIGHBOR.
fn link(s: &mut State<u32>, rng: &mut ChaCha8Rng, out: &mut Vec<OutEvent<u32>>, peer: u32) {
    s.handle_message(
        Time::ZERO,
        peer,
        Message::Neighbor {
            priority: Priority::High,
        },
        rng,
        out,
    );
}

#[test]
fn views_never_exceed_their_bounds() {
    let (mut s, mut rng, mut out) = state(0);
    let cfg = Config::default();
    for p in 1..200 {
        link(&mut s, &mut rng, &mut out, p);
        s.handle_message(
            Time::ZERO,
            p,
            Message::ShuffleReply {
                peers: (1000 + p * 40..1000 + p * 40 + 32).collect(),
            },
            &mut rng,
            &mut out,
        );
        assert!(s.active_len() <= cfg.active_view);
        assert!(s.passive_view().count() <= cfg.passive_view);
    }
    // Evictions were announced with DISCONNECT, so the views stay symmetric.
    let disconnects = sends(&out)
        .iter()
        .filter(|(_, m)| matches!(m, Message::Disconnect { alive: true }))
        .count();
    assert!(disconnects >= 190);
}

#[test]
fn link_scoped_messages_from_strangers_create_no_state() {
    let (mut s, mut rng, mut out) = state(0);
    for m in [
        Message::Prune,
        Message::IHave {
            entries: vec![(1, 1)],
        },
        Message::Gossip {
            id: 9,
            round: 0,
            payload: Bytes::from_static(b"x"),
        },
        Message::ForwardJoin { peer: 5, ttl: 3 },
        Message::Introduce {
            peer: 5,
            delay_ms: 1,
            token: 2,
        },
    ] {
        out.clear();
        s.handle_message(Time::ZERO, 77, m, &mut rng, &mut out);
        assert_eq!(sends(&out), vec![(77, Message::Disconnect { alive: true })]);
        assert!(!s.knows(77) && !s.knows(5));
        assert!(!s.has_seen(9));
    }
    assert_eq!(s.heap_bytes(), 0);
}

#[test]
fn low_priority_is_refused_when_full_and_high_evicts() {
    let (mut s, mut rng, mut out) = state(0);
    for p in 1..=5 {
        link(&mut s, &mut rng, &mut out, p);
    }
    out.clear();
    s.handle_message(
        Time::ZERO,
        9,
        Message::Neighbor {
            priority: Priority::Low,
        },
        &mut rng,
        &mut out,
    );
    assert!(sends(&out).contains(&(9, Message::NeighborReply { accepted: false })));
    assert!(!s.is_active(9));
    out.clear();
    link(&mut s, &mut rng, &mut out, 9);
    assert!(s.is_active(9));
    assert_eq!(s.active_len(), 5);
    assert!(
        sends(&out)
            .iter()
            .any(|(_, m)| matches!(m, Message::Disconnect { alive: true }))
    );
}

#[test]
fn a_duplicate_prunes_the_link_and_ihave_grafts_a_missing_message() {
    let (mut s, mut rng, mut out) = state(0);
    link(&mut s, &mut rng, &mut out, 1);
    link(&mut s, &mut rng, &mut out, 2);
    let payload = Bytes::from_static(b"m");
    out.clear();
    let g = |round| Message::Gossip {
        id: 42,
        round,
        payload: payload.clone(),
    };
    s.handle_message(Time::ZERO, 1, g(0), &mut rng, &mut out);
    assert!(out.iter().any(|o| matches!(
        o,
        OutEvent::Event(Event::Delivered {
            id: 42,
            hops: 1,
            ..
        })
    )));
    // Forwarded eagerly to the other neighbour, not back.
    assert_eq!(
        sends(&out)
            .iter()
            .filter(|(_, m)| matches!(m, Message::Gossip { .. }))
            .map(|(to, _)| *to)
            .collect::<Vec<_>>(),
        vec![2]
    );
    out.clear();
    s.handle_message(Time::ZERO, 2, g(3), &mut rng, &mut out);
    assert_eq!(sends(&out), vec![(2, Message::Prune)]);
    assert!(!s.is_eager(2) && s.is_eager(1));

    // A message announced lazily and never pushed is GRAFTed after the timeout.
    out.clear();
    s.handle_message(
        Time::ZERO,
        2,
        Message::IHave {
            entries: vec![(43, 4)],
        },
        &mut rng,
        &mut out,
    );
    let (at, timer) = out
        .iter()
        .find_map(|o| match o {
            OutEvent::Timer { at, timer } => Some((*at, *timer)),
            _ => None,
        })
        .unwrap();
    assert_eq!(timer, Timer::Graft(43));
    out.clear();
    s.handle_timer(at, timer, &mut rng, &mut out);
    assert_eq!(sends(&out), vec![(2, Message::Graft { id: 43, round: 4 })]);
    assert!(s.is_eager(2));
}

#[test]
fn caches_are_bounded() {
    let cfg = Config {
        seen_capacity: 16,
        payload_capacity: 8,
        ..Config::default()
    };
    let mut s = State::new(0u32, Arc::new(cfg));
    let (mut rng, mut out) = (ChaCha8Rng::seed_from_u64(1), Vec::new());
    link(&mut s, &mut rng, &mut out, 1);
    for id in 0..1000u64 {
        s.handle_message(
            Time::ZERO,
            1,
            Message::Gossip {
                id,
                round: 0,
                payload: Bytes::from_static(b"p"),
            },
            &mut rng,
            &mut out,
        );
        out.clear();
    }
    assert!(s.has_seen(999) && !s.has_seen(900));
    assert!(s.heap_bytes() < 4096, "{}", s.heap_bytes());
}
