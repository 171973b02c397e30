//! Gossip benchmarks: peer records (sign, decode + verify the credential chain), frame
//! codec, the authenticated node handling a signed broadcast, and the bare protocol core.
//! Results: docs/results/sim.md ("Gossip layer").

#![allow(clippy::panic)] // benchmark fixtures may panic

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use in8_artifact::fixtures::NOW;
use in8_artifact::{NoRevocations, VerifyPolicy};
use in8_gossip::fixtures::{candidates, credential, identity, record};
use in8_gossip::wire::{Envelope, Frame};
use in8_gossip::{
    Config, Gossip, Message, NatClass, Priority, Setup, SignedPeerRecord, State, Time,
};
use rand::SeedableRng;

fn node(i: u8) -> Gossip {
    Gossip::new(
        Config::default(),
        Setup {
            identity: identity(i),
            credential: credential(i),
            candidates: candidates(i),
            nat: NatClass::Public,
            record_ttl: Duration::from_secs(3600),
            seed: [i; 32],
            wall_epoch: NOW,
        },
    )
    .unwrap_or_else(|e| panic!("fixture node: {e}"))
}

fn gossip(c: &mut Criterion) {
    let r = record(1);
    let bytes = r.to_bytes().to_vec();
    let network = credential(0).membership().network;
    let policy = VerifyPolicy::default();
    let mut g = c.benchmark_group("record");
    g.bench_function("sign", |b| {
        b.iter(|| black_box(r.record().clone().sign(&identity(1))))
    });
    g.bench_function("decode+verify (chain depth 1)", |b| {
        b.iter(|| {
            let d = SignedPeerRecord::decode(black_box(&bytes)).ok()?;
            d.verify(&network, NOW, &policy, &NoRevocations)
                .ok()
                .map(|r| r.seq)
        })
    });
    g.finish();

    let join = Frame::Join { record: r.clone() }.encode();
    let ihave = Frame::IHave {
        entries: (0..8).map(|i| (i, 3)).collect(),
    }
    .encode();
    let mut g = c.benchmark_group("frame");
    g.bench_function("decode JOIN (record)", |b| {
        b.iter(|| black_box(Frame::decode(&join)))
    });
    g.bench_function("decode IHAVE x8", |b| {
        b.iter(|| black_box(Frame::decode(&ihave)))
    });
    g.bench_function("encode JOIN", |b| {
        let f = Frame::Join { record: r.clone() };
        b.iter(|| black_box(f.encode()))
    });
    g.finish();

    // A signed 256-byte broadcast arriving at a node from an admitted neighbour:
    // decode, origin signature check, delivery, forwarding.
    let admit = Frame::Join { record: record(0) }.encode();
    let origin = identity(0);
    let envelopes: Vec<Vec<u8>> = (1..=64u64)
        .map(|seq| {
            let payload = vec![seq as u8; 256];
            let signature = origin.sign(
                "gossip-broadcast",
                &[network.as_bytes(), &seq.to_be_bytes(), &payload],
            );
            let envelope = Envelope::App {
                origin: origin.node_id(),
                seq,
                payload,
                signature,
            }
            .encode();
            Frame::Gossip { round: 1, envelope }.encode()
        })
        .collect();
    c.bench_function("node/handle signed GOSSIP (256 B)", |b| {
        let mut i = 0usize;
        let mut rcv = node(3);
        let from = identity(0).node_id();
        let _ = rcv.handle_message(Time::ZERO, from, &admit);
        b.iter(|| {
            // A fresh receiver every 64 messages keeps the seen-cache from short-circuiting.
            if i.is_multiple_of(envelopes.len().max(1)) {
                rcv = node(3);
                let _ = rcv.handle_message(Time::ZERO, from, &admit);
            }
            let f = &envelopes[i % envelopes.len().max(1)];
            i += 1;
            let r = rcv.handle_message(Time::ZERO, from, f);
            while rcv.poll_transmit().is_some() {}
            while rcv.poll_event().is_some() {}
            black_box(r.is_ok())
        })
    });

    // The bare core (what the simulator runs): a new message from a neighbour.
    c.bench_function("core/handle GOSSIP (u32 ids)", |b| {
        let cfg = Arc::new(Config::default());
        let mut s = State::new(0u32, cfg);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut out = Vec::new();
        for p in 1..=5 {
            s.handle_message(
                Time::ZERO,
                p,
                Message::Neighbor {
                    priority: Priority::High,
                },
                &mut rng,
                &mut out,
            );
        }
        let payload = Bytes::from(vec![0u8; 256]);
        let mut id = 0u64;
        b.iter(|| {
            id += 1;
            out.clear();
            s.handle_message(
                Time::ZERO,
                1,
                Message::Gossip {
                    id,
                    round: 1,
                    payload: payload.clone(),
                },
                &mut rng,
                &mut out,
            );
            black_box(out.len())
        })
    });
}

criterion_group!(benches, gossip);
criterion_main!(benches);
