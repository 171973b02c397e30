//! in8-core: time from `join` to an open, answered data channel on loopback (phase 1), and
//! the same through the RSVP (phase 2, without the phase-1 timeout). Results:
//! docs/results/core.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench helpers may panic

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use in8_artifact::Identity;
use in8_core::{Config, InviteOptions, Node};
use in8_transport::ChannelOptions;

async fn pair() -> (Node, Node) {
    let a = Node::start(Config::loopback(Identity::generate(&mut rand::rng())))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let b = Node::start(Config::loopback(Identity::generate(&mut rand::rng())))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (a, b)
}

/// One join between two fresh nodes (node start-up is not timed): invitation issued,
/// joined, a channel opened, one message answered.
/// Returns (join -> connected, join -> answered message).
async fn one_join(alice: &Node, bob: &Node) -> (Duration, Duration) {
    let mut invite = alice
        .invite(InviteOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let t0 = Instant::now();
    let join = bob
        .join(invite.invitation())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (bob_side, alice_side) = tokio::join!(join.connected(), invite.joined());
    let (bob_side, alice_side) = (
        bob_side.unwrap_or_else(|e| panic!("{e}")),
        alice_side.unwrap_or_else(|e| panic!("{e}")),
    );
    let connected = t0.elapsed();
    let ch = bob_side
        .open_channel(ChannelOptions::reliable("bench"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ch.send(&b"ping"[..])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let theirs = alice_side
        .accept_channel()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = theirs.recv().await;
    theirs
        .send(&b"pong"[..])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = ch.recv().await;
    let answered = t0.elapsed();
    let _ = tokio::join!(bob_side.close(), alice_side.close());
    (connected, answered)
}

fn core(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut g = c.benchmark_group("core");
    g.sample_size(20);
    g.bench_function("phase1 join -> connected", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (alice, bob) = pair().await;
                    total += one_join(&alice, &bob).await.0;
                    let _ = tokio::join!(alice.close(), bob.close());
                }
                total
            })
        })
    });
    g.bench_function("phase1 join -> channel answered", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (alice, bob) = pair().await;
                    total += one_join(&alice, &bob).await.1;
                    let _ = tokio::join!(alice.close(), bob.close());
                }
                total
            })
        })
    });
    g.finish();
}

criterion_group!(benches, core);
criterion_main!(benches);
