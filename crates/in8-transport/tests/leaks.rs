//! No task or socket outlives its session: after sessions, channels and endpoints are closed
//! and dropped, the runtime's live task count and the process's open file descriptors are
//! back where they started. Alone in its own test binary so nothing else runs beside it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

#[path = "support/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use helpers::*;
use in8_artifact::{Ledger, MemoryLedger, fixtures};
use in8_transport::{ChannelOptions, CloseReason, DtlsRole, PeerAuth};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Waits (there is no event for "a task ended somewhere") until `f` is true or 10 s pass.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn workload() {
    let ((alice, _ai), (bob, _bi)) = alice_and_bob(config()).await;
    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    // 1. An invitation join with messages, a byte stream, then an orderly close.
    let (sa, sb) = join(
        &alice,
        &bob,
        bob.local_addr(),
        alice.local_addr(),
        &fixtures::invitation(),
        Arc::clone(&ledger),
    )
    .await;
    let (sa, sb) = (sa.unwrap(), sb.unwrap());
    let mut chans = Vec::new();
    for i in 0..4 {
        chans.push(
            sb.open_channel(ChannelOptions::reliable(format!("c{i}")))
                .await
                .unwrap(),
        );
    }
    for c in &chans {
        c.send(Bytes::from_static(b"x")).await.unwrap();
    }
    for _ in &chans {
        let r = sa.accept_channel().await.unwrap();
        assert_eq!(r.recv().await.unwrap().unwrap(), Bytes::from_static(b"x"));
    }
    let mut w = sb.open_stream("s").await.unwrap();
    w.write_all(&payload(300_000, 1)).await.unwrap();
    w.shutdown().await.unwrap();
    let mut r = sa.accept_channel().await.unwrap().into_stream();
    let mut got = Vec::new();
    r.read_to_end(&mut got).await.unwrap();
    assert_eq!(got.len(), 300_000);
    chans[0].close().await.unwrap();
    sb.close().await.unwrap();
    assert_eq!(sa.closed().await, CloseReason::PeerClosed);

    // 2. A member session ended abruptly (consent lost).
    let (sa, sb) = tokio::join!(
        alice.connect(
            bob.local_addr(),
            DtlsRole::Server,
            PeerAuth::Identity(fixtures::bob().node_id())
        ),
        bob.connect(
            alice.local_addr(),
            DtlsRole::Client,
            PeerAuth::Identity(fixtures::alice().node_id())
        ),
    );
    let (sa, sb) = (sa.unwrap(), sb.unwrap());
    let c = sa
        .open_channel(ChannelOptions::reliable("c"))
        .await
        .unwrap();
    c.send(Bytes::from_static(b"y")).await.unwrap();
    let _ = sb.accept_channel().await.unwrap();
    sa.abort(CloseReason::ConsentLost);
    assert_eq!(sb.closed().await, CloseReason::PeerClosed);

    // 3. A refused join and a failed handshake leave nothing behind either.
    let (ra, rb) = join(
        &alice,
        &bob,
        bob.local_addr(),
        alice.local_addr(),
        &fixtures::invitation(),
        ledger,
    )
    .await;
    assert!(ra.is_err() && rb.is_err());
    let mut wrong = fixtures::invitation();
    wrong.cert_fingerprint = Some([1; 32]);
    let ledger2: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    let (ra, rb) = join(
        &alice,
        &bob,
        bob.local_addr(),
        alice.local_addr(),
        &wrong,
        ledger2,
    )
    .await;
    assert!(ra.is_err() && rb.is_err());

    alice.close();
    bob.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_task_or_socket_outlives_its_session() {
    let tasks_before = alive_tasks();
    let fds_before = open_fds();
    workload().await;
    eventually("tasks leaked", || alive_tasks() <= tasks_before).await;
    eventually("sockets leaked", || open_fds() <= fds_before).await;
    // And a second round does not accumulate either.
    workload().await;
    eventually("tasks leaked (round 2)", || alive_tasks() <= tasks_before).await;
    eventually("sockets leaked (round 2)", || open_fds() <= fds_before).await;
}
