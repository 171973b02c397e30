//! Counts the network round trips of a join at the transport layer: the invitee's DTLS
//! handshake (with the join proof in its certificate), the inviter's verdict and the SCTP
//! association, through an in-process UDP relay that delays every datagram by a fixed
//! one-way delay. With the delay far above the CPU time of a join, the time from `join` to
//! the invitee's open session divided by the relay's measured round-trip time is the
//! number of round trips. ICE's one connectivity check comes before this in a real join
//! (docs/results/core.md adds it).
//!
//! `cargo run --release -p in8-transport --example join_round_trips [JOINS] [ONE_WAY_MS]`
//! (defaults 10 and 20). Prints the figures for the default configuration and for
//! `skip_hello_verify = false` (the DTLS cookie exchange back in).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use in8_artifact::{Identity, Invitation, Ledger, MemoryLedger, fixtures};
use in8_transport::{Config, Endpoint, PeerAuth};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// A relay that forwards `a`'s datagrams to `b` and back, each `delay` late, in order.
struct DelayRelay {
    /// Where `a` sends (and where `a` sees `b`).
    for_a: SocketAddr,
    /// Where `b` sends (and where `b` sees `a`).
    for_b: SocketAddr,
}

fn forward(from: Arc<UdpSocket>, to: Arc<UdpSocket>, dest: SocketAddr, delay: Duration) {
    let (tx, mut rx) = mpsc::channel::<(tokio::time::Instant, Vec<u8>)>(4096);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, _)) = from.recv_from(&mut buf).await {
            let due = tokio::time::Instant::now() + delay;
            if tx.send((due, buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        while let Some((due, d)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            let _ = to.send_to(&d, dest).await;
        }
    });
}

impl DelayRelay {
    async fn start(a: SocketAddr, b: SocketAddr, delay: Duration) -> std::io::Result<Self> {
        let side_a = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let side_b = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let relay = Self {
            for_a: side_a.local_addr()?,
            for_b: side_b.local_addr()?,
        };
        forward(Arc::clone(&side_a), Arc::clone(&side_b), b, delay);
        forward(side_b, side_a, a, delay);
        Ok(relay)
    }
}

/// Round-trip time through the relay, measured with a plain UDP echo (median of 5).
async fn relay_rtt(delay: Duration) -> Result<Duration, Box<dyn std::error::Error>> {
    let a = UdpSocket::bind("127.0.0.1:0").await?;
    let b = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
    let relay = DelayRelay::start(a.local_addr()?, b.local_addr()?, delay).await?;
    let echo = Arc::clone(&b);
    tokio::spawn(async move {
        let mut buf = [0u8; 64];
        while let Ok((n, from)) = echo.recv_from(&mut buf).await {
            let _ = echo.send_to(&buf[..n], from).await;
        }
    });
    let mut rtts = Vec::new();
    let mut buf = [0u8; 64];
    for i in 0..5u8 {
        let t = Instant::now();
        a.send_to(&[i], relay.for_a).await?;
        a.recv_from(&mut buf).await?;
        rtts.push(t.elapsed());
    }
    rtts.sort();
    Ok(rtts[2])
}

/// The fixture invitation issued by `alice`, authenticated by her identity binding.
fn invitation(alice: &Identity) -> Invitation {
    let mut inv = fixtures::invitation();
    inv.issuer = alice.node_id();
    inv.cert_fingerprint = None;
    inv
}

/// One join through a fresh relay: time from `join` to the invitee's open session.
async fn one_join(
    config: &Config,
    delay: Duration,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let alice_id = Identity::generate(&mut rand::rng());
    let (alice, _alice_ice) =
        Endpoint::bind("127.0.0.1:0".parse()?, alice_id.clone(), config.clone()).await?;
    let (bob, _bob_ice) = Endpoint::bind(
        "127.0.0.1:0".parse()?,
        Identity::generate(&mut rand::rng()),
        config.clone(),
    )
    .await?;
    let relay = DelayRelay::start(alice.local_addr(), bob.local_addr(), delay).await?;
    let inv = invitation(&alice_id);
    // Made before the clock starts, as in8-core does while ICE runs.
    bob.join_certificate(&inv)?;
    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    let (inv_a, alice_a) = (inv.clone(), alice.clone());
    let accept = tokio::spawn(async move {
        alice_a
            .accept_join(relay.for_a, &inv_a, ledger, PeerAuth::AnyCertificate)
            .await
    });
    let t0 = Instant::now();
    let session = bob.join(relay.for_b, &inv).await?;
    let elapsed = t0.elapsed();
    let inviter = accept.await??;
    let _ = tokio::join!(session.close(), inviter.close());
    Ok(elapsed)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let joins: usize = args.next().map_or(Ok(10), |a| a.parse())?;
    let one_way = Duration::from_millis(args.next().map_or(Ok(20), |a| a.parse())?);
    let rtt = relay_rtt(one_way).await?;
    println!(
        "relay: {} ms one way, measured round trip {:.1} ms; {joins} joins each",
        one_way.as_millis(),
        rtt.as_secs_f64() * 1000.0
    );
    println!("configuration            join -> session open (ms): p50    max   round trips (p50)");
    for (name, skip) in [("default", true), ("skip_hello_verify=false", false)] {
        let config = Config {
            skip_hello_verify: skip,
            clock: Arc::new(|| fixtures::NOW),
            ..Config::default()
        };
        let mut times = Vec::new();
        for _ in 0..joins {
            times.push(one_join(&config, one_way).await?);
        }
        times.sort();
        let p50 = times[times.len() / 2];
        let max = times[times.len() - 1];
        println!(
            "{name:<24} {:>30.1} {:>6.1} {:>18.2}",
            p50.as_secs_f64() * 1000.0,
            max.as_secs_f64() * 1000.0,
            p50.as_secs_f64() / rtt.as_secs_f64()
        );
    }
    Ok(())
}
