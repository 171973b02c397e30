//! Transport benchmarks: invitation join handshake time; throughput of one reliable ordered
//! channel on loopback against raw UDP measured in the same run; memory per idle session.
//! Results: docs/results/transport.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench harness

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use in8_artifact::{Invitation, Ledger, MemoryLedger, fixtures};
use in8_transport::{ChannelOptions, Config, Endpoint, PeerAuth, Session};
use tokio::runtime::Runtime;

const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);
/// Bytes moved per throughput iteration.
const BULK: usize = 32 * 1024 * 1024;
/// Message size on the channel (the largest plain WebRTC message in8 sends).
const MSG: usize = 64 * 1024 - 1;
/// Datagram size for raw UDP (the DTLS/SCTP path carries about 1.2 kB per datagram too).
const DGRAM: usize = 1200;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn config() -> Config {
    Config {
        clock: Arc::new(|| fixtures::NOW),
        ..Config::default()
    }
}

fn multi_use() -> Invitation {
    let mut inv = fixtures::invitation();
    inv.uses = in8_artifact::MAX_USES;
    inv
}

async fn endpoints() -> (Endpoint, Endpoint) {
    let (a, _) = Endpoint::bind(LOOPBACK, fixtures::alice(), config())
        .await
        .expect("bind");
    let (b, _) = Endpoint::bind(LOOPBACK, fixtures::bob(), config())
        .await
        .expect("bind");
    (a, b)
}

async fn join(
    a: &Endpoint,
    b: &Endpoint,
    inv: &Invitation,
    ledger: &Arc<dyn Ledger>,
) -> (Session, Session) {
    let (sa, sb) = tokio::join!(
        a.accept_join(
            b.local_addr(),
            inv,
            Arc::clone(ledger),
            PeerAuth::AnyCertificate
        ),
        b.join(a.local_addr(), inv),
    );
    (sa.expect("inviter"), sb.expect("invitee"))
}

/// Raw UDP goodput on loopback: one sender blasting `DGRAM`-byte datagrams for `dur`, the
/// receiver counting what arrives.
fn raw_udp_bytes_per_sec(dur: Duration) -> f64 {
    let rx = std::net::UdpSocket::bind(LOOPBACK).expect("bind");
    let tx = std::net::UdpSocket::bind(LOOPBACK).expect("bind");
    let to = rx.local_addr().expect("addr");
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let receiver = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut total = 0usize;
        let mut first: Option<Instant> = None;
        let mut last = Instant::now();
        while let Ok(n) = rx.recv(&mut buf) {
            first.get_or_insert_with(Instant::now);
            last = Instant::now();
            total += n;
        }
        let secs = first
            .map(|f| (last - f).as_secs_f64())
            .unwrap_or(1.0)
            .max(1e-6);
        total as f64 / secs
    });
    let payload = [7u8; DGRAM];
    let end = Instant::now() + dur;
    while Instant::now() < end {
        let _ = tx.send_to(&payload, to);
    }
    receiver.join().expect("receiver")
}

/// One reliable ordered channel: `BULK` bytes in `MSG`-byte messages, timed until the
/// receiver has them all.
async fn channel_transfer(a: &Session, b: &Session) -> Duration {
    let tx = b
        .open_channel(ChannelOptions::reliable("bulk"))
        .await
        .expect("open");
    let msg = Bytes::from(vec![7u8; MSG]);
    let n = BULK / MSG;
    let start = Instant::now();
    let sender = tokio::spawn(async move {
        for _ in 0..n {
            tx.send(msg.clone()).await.expect("send");
        }
        tx
    });
    let rx = a.accept_channel().await.expect("accept");
    let mut got = 0;
    while got < n * MSG {
        got += rx.recv().await.expect("recv").expect("message").len();
    }
    let elapsed = start.elapsed();
    let tx = sender.await.expect("sender");
    let _ = tx.close().await;
    let _ = rx.close().await;
    elapsed
}

fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<usize>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

fn transport(c: &mut Criterion) {
    let rt = runtime();
    let inv = multi_use();
    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    let (a, b) = rt.block_on(endpoints());

    let mut g = c.benchmark_group("transport");
    g.sample_size(20);
    g.bench_function("join handshake (DTLS + join proof + SCTP)", |bench| {
        bench.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let (sa, sb) = join(&a, &b, &inv, &ledger).await;
                    total += start.elapsed();
                    let _ = sb.close().await;
                    let _ = sa.closed().await;
                    let _ = sa.close().await;
                }
                total
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("loopback throughput");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(BULK as u64));
    let (sa, sb) = rt.block_on(join(&a, &b, &inv, &ledger));
    g.bench_function("reliable ordered channel, 64 KiB messages", |bench| {
        bench.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += channel_transfer(&sa, &sb).await;
                }
                total
            })
        })
    });
    g.bench_function("raw UDP, 1200-byte datagrams", |bench| {
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let rate = raw_udp_bytes_per_sec(Duration::from_millis(300));
                total += Duration::from_secs_f64(BULK as f64 / rate);
            }
            total
        })
    });
    g.finish();

    // The ratio, from one run: both measured back to back, three times each.
    let mut chan = Vec::new();
    let mut udp = Vec::new();
    for _ in 0..3 {
        let t = rt.block_on(channel_transfer(&sa, &sb));
        chan.push(BULK as f64 / t.as_secs_f64());
        udp.push(raw_udp_bytes_per_sec(Duration::from_millis(500)));
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|x, y| x.total_cmp(y));
        v[v.len() / 2]
    };
    let (c_rate, u_rate) = (med(&mut chan), med(&mut udp));
    println!(
        "transport/ratio: channel {:.1} MB/s, raw UDP {:.1} MB/s, ratio {:.3}",
        c_rate / 1e6,
        u_rate / 1e6,
        c_rate / u_rate
    );
    rt.block_on(async {
        let _ = sb.close().await;
        let _ = sa.closed().await;
    });

    // The same with 8,000-byte SCTP packets (possible on loopback / jumbo-frame LANs only):
    // how much of the cost is per packet.
    let big = Config {
        sctp_packet_size: 8000,
        ..config()
    };
    let (sa, sb) = rt.block_on(async {
        let (a, _) = Endpoint::bind(LOOPBACK, fixtures::alice(), big.clone())
            .await
            .expect("bind");
        let (b, _) = Endpoint::bind(LOOPBACK, fixtures::bob(), big)
            .await
            .expect("bind");
        let s = join(&a, &b, &inv, &ledger).await;
        (s.0, s.1)
    });
    let mut chan = Vec::new();
    for _ in 0..3 {
        let t = rt.block_on(channel_transfer(&sa, &sb));
        chan.push(BULK as f64 / t.as_secs_f64());
    }
    let c_big = med(&mut chan);
    println!(
        "transport/ratio-8000: channel with 8000-byte SCTP packets {:.1} MB/s, ratio to the raw UDP above {:.3}",
        c_big / 1e6,
        c_big / u_rate
    );
    rt.block_on(async {
        let _ = sb.close().await;
        let _ = sa.closed().await;
    });

    // Memory per idle session: N joined pairs, each with one open channel, idle.
    const PAIRS: usize = 50;
    let before = rss_bytes();
    let sessions = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..PAIRS {
            let (a, b) = endpoints().await;
            let (sa, sb) = join(&a, &b, &inv, &ledger).await;
            let ch = sb
                .open_channel(ChannelOptions::reliable("idle"))
                .await
                .expect("open");
            ch.send(Bytes::from_static(b"x")).await.expect("send");
            let rc = sa.accept_channel().await.expect("accept");
            let _ = rc.recv().await;
            v.push((a, b, sa, sb, ch, rc));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        v
    });
    let after = rss_bytes();
    let tasks = rt.metrics().num_alive_tasks();
    println!(
        "transport/memory: {} sessions (2 per pair, endpoints included): RSS +{} KiB, {:.1} KiB per session, {} live tasks ({:.1} per session)",
        2 * PAIRS,
        (after.saturating_sub(before)) / 1024,
        after.saturating_sub(before) as f64 / 1024.0 / (2 * PAIRS) as f64,
        tasks,
        tasks as f64 / (2 * PAIRS) as f64
    );
    drop(sessions);
}

criterion_group!(benches, transport);
criterion_main!(benches);
