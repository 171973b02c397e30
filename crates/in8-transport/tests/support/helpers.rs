//! Shared test helpers: endpoints on loopback, an invitation join between them, and an
//! in-process lossy UDP shim.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use in8_artifact::{Identity, Invitation, Ledger, MemoryLedger, fixtures};
use in8_transport::{Config, Endpoint, IceLink, PeerAuth, Session};
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;

pub(crate) fn config() -> Config {
    Config {
        clock: Arc::new(|| fixtures::NOW),
        flight_interval: Duration::from_millis(200),
        ..Config::default()
    }
}

pub(crate) fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

pub(crate) async fn endpoint(id: Identity, config: Config) -> (Endpoint, IceLink) {
    Endpoint::bind(loopback(), id, config).await.unwrap()
}

/// Alice (inviter) and Bob (invitee) endpoints with the default test config.
pub(crate) async fn alice_and_bob(config: Config) -> ((Endpoint, IceLink), (Endpoint, IceLink)) {
    (
        endpoint(fixtures::alice(), config.clone()).await,
        endpoint(fixtures::bob(), config).await,
    )
}

/// Runs the inviter's `accept_join` and the invitee's `join` at once.
pub(crate) async fn join(
    alice: &Endpoint,
    bob: &Endpoint,
    alice_sees_bob_at: SocketAddr,
    bob_sees_alice_at: SocketAddr,
    invitation: &Invitation,
    ledger: Arc<dyn Ledger>,
) -> (
    in8_transport::Result<Session>,
    in8_transport::Result<Session>,
) {
    tokio::join!(
        alice.accept_join(
            alice_sees_bob_at,
            invitation,
            ledger,
            PeerAuth::AnyCertificate
        ),
        bob.join(bob_sees_alice_at, invitation),
    )
}

/// A direct join on loopback with the fixture invitation; returns (alice's, bob's) sessions.
pub(crate) async fn joined_pair(config: Config) -> (Session, Session, Endpoint, Endpoint) {
    let ((alice, _a), (bob, _b)) = alice_and_bob(config).await;
    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    let (a, b) = join(
        &alice,
        &bob,
        bob.local_addr(),
        alice.local_addr(),
        &fixtures::invitation(),
        ledger,
    )
    .await;
    (a.unwrap(), b.unwrap(), alice, bob)
}

/// Longest a reordered datagram is held back when no other datagram follows it.
pub(crate) const REORDER_HOLD: std::time::Duration = std::time::Duration::from_millis(20);

/// A UDP relay between two endpoints that drops and reorders datagrams.
///
/// `a` talks to `shim.addr_for_a`, `b` to `shim.addr_for_b`. Loss is in per-mille and can
/// be changed at run time (1000 = black hole). Reordering holds a datagram back and sends
/// it after the next one (or after [`REORDER_HOLD`] if none follows).
pub(crate) struct Shim {
    pub(crate) addr_for_a: SocketAddr,
    pub(crate) addr_for_b: SocketAddr,
    loss_per_mille: Arc<AtomicU32>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Shim {
    pub(crate) async fn new(
        a: SocketAddr,
        b: SocketAddr,
        loss_per_mille: u32,
        reorder_per_mille: u32,
        seed: u64,
    ) -> Self {
        let side_a = Arc::new(UdpSocket::bind(loopback()).await.unwrap());
        let side_b = Arc::new(UdpSocket::bind(loopback()).await.unwrap());
        let loss = Arc::new(AtomicU32::new(loss_per_mille));
        let forward = |from: Arc<UdpSocket>, to: Arc<UdpSocket>, dest: SocketAddr, seed: u64| {
            let loss = Arc::clone(&loss);
            tokio::spawn(async move {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                let mut buf = vec![0u8; 4096];
                let mut held: Option<Vec<u8>> = None;
                loop {
                    // A held datagram goes out after the next one, or after REORDER_HOLD if
                    // no other comes (a real network delays, it does not park packets).
                    let received = if held.is_some() {
                        tokio::time::timeout(REORDER_HOLD, from.recv_from(&mut buf))
                            .await
                            .ok()
                    } else {
                        Some(from.recv_from(&mut buf).await)
                    };
                    let Some(received) = received else {
                        if let Some(h) = held.take() {
                            let _ = to.send_to(&h, dest).await;
                        }
                        continue;
                    };
                    let Ok((n, _)) = received else { break };
                    if rng.random_range(0..1000) < loss.load(Ordering::Relaxed) {
                        continue;
                    }
                    let d = buf[..n].to_vec();
                    if held.is_none() && rng.random_range(0..1000) < reorder_per_mille {
                        held = Some(d);
                        continue;
                    }
                    let _ = to.send_to(&d, dest).await;
                    if let Some(h) = held.take() {
                        let _ = to.send_to(&h, dest).await;
                    }
                }
            })
        };
        let t1 = forward(Arc::clone(&side_a), Arc::clone(&side_b), b, seed);
        let t2 = forward(Arc::clone(&side_b), Arc::clone(&side_a), a, seed ^ 0x5eed);
        Self {
            addr_for_a: side_a.local_addr().unwrap(),
            addr_for_b: side_b.local_addr().unwrap(),
            loss_per_mille: loss,
            tasks: vec![t1, t2],
        }
    }

    pub(crate) fn set_loss(&self, per_mille: u32) {
        self.loss_per_mille.store(per_mille, Ordering::Relaxed);
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Deterministic pseudo-random bytes.
pub(crate) fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut v = vec![0u8; len];
    rng.fill(&mut v[..]);
    v
}
