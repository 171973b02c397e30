//! Times joins on loopback and prints the distribution of each stage: from `join` to ICE
//! finding a path ("ice"), to the open session ("connected"), to an answered message on a
//! new channel ("answered"). Fresh node pairs each time; node start-up is not timed.
//!
//! `cargo run --release -p in8-core --example join_timing [JOINS]` (docs/results/core.md).

use std::time::{Duration, Instant};

use in8_artifact::Identity;
use in8_core::{Config, InviteOptions, JoinEvent, Node};
use in8_transport::ChannelOptions;

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let joins: usize = std::env::args().nth(1).map_or(Ok(50), |a| a.parse())?;
    let (mut ice, mut connected, mut answered) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..joins {
        let alice = Node::start(Config::loopback(Identity::generate(&mut rand::rng()))).await?;
        let bob = Node::start(Config::loopback(Identity::generate(&mut rand::rng()))).await?;
        let mut invite = alice.invite(InviteOptions::default()).await?;
        let t0 = Instant::now();
        let mut join = bob.join(invite.invitation()).await?;
        let bob_side = loop {
            match join.next().await {
                Some(JoinEvent::Connecting { .. }) => ice.push(t0.elapsed()),
                Some(JoinEvent::Connected(c)) => break c,
                Some(JoinEvent::Failed(e)) => return Err(e.into()),
                Some(_) => {}
                None => return Err("node stopped".into()),
            }
        };
        connected.push(t0.elapsed());
        let alice_side = invite.joined().await?;
        let ch = bob_side.open_channel(ChannelOptions::reliable("t")).await?;
        ch.send(&b"ping"[..]).await?;
        let theirs = alice_side.accept_channel().await?;
        theirs.recv().await?;
        theirs.send(&b"pong"[..]).await?;
        ch.recv().await?;
        answered.push(t0.elapsed());
        let _ = tokio::join!(bob_side.close(), alice_side.close());
        let _ = tokio::join!(alice.close(), bob.close());
    }
    println!("{joins} joins on loopback (ms)      p50      p90      max");
    for (name, v) in [
        ("ice path found", &mut ice),
        ("session open", &mut connected),
        ("message answered", &mut answered),
    ] {
        println!(
            "  {name:<28} {:>8.2} {:>8.2} {:>8.2}",
            pct(v, 0.5),
            pct(v, 0.9),
            pct(v, 1.0)
        );
    }
    // A lost or unrouted handshake flight costs a DTLS retransmission (500 ms): count them.
    let slow = connected
        .iter()
        .filter(|d| **d > Duration::from_millis(100))
        .count();
    println!("  joins over 100 ms to open: {slow}");
    Ok(())
}
