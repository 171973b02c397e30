//! Arbitrary datagrams into an established session: they arrive at the inviter's socket
//! from the invitee's address (through a relay the harness owns), so the demultiplexer
//! routes them into the live DTLS session. Nothing may panic; garbage must not take the
//! session down (a well-formed plaintext fatal alert may: then a new pair is set up).
#![no_main]

use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use in8_artifact::{Ledger, MemoryLedger, fixtures};
use in8_transport::{ChannelOptions, Config, Endpoint, PeerAuth, Session};
use libfuzzer_sys::fuzz_target;
use tokio::net::UdpSocket;

struct Harness {
    rt: tokio::runtime::Runtime,
    state: Mutex<Option<Pair>>,
}

struct Pair {
    alice: Session,
    _bob: Session,
    /// The relay socket Alice sees as Bob: fuzz input is sent from here.
    inject: Arc<UdpSocket>,
    alice_addr: std::net::SocketAddr,
    relay: Vec<tokio::task::JoinHandle<()>>,
}

fn config() -> Config {
    Config {
        clock: Arc::new(|| fixtures::NOW),
        ..Config::default()
    }
}

async fn pair() -> Pair {
    let lo = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let (alice, _) = Endpoint::bind(lo, fixtures::alice(), config()).await.expect("bind");
    let (bob, _) = Endpoint::bind(lo, fixtures::bob(), config()).await.expect("bind");
    // Relay: bob <-> to_bob | to_alice <-> alice.
    let to_alice = Arc::new(UdpSocket::bind(lo).await.expect("bind"));
    let to_bob = Arc::new(UdpSocket::bind(lo).await.expect("bind"));
    let fwd = |from: Arc<UdpSocket>, to: Arc<UdpSocket>, dest| {
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, _)) = from.recv_from(&mut buf).await {
                let _ = to.send_to(&buf[..n], dest).await;
            }
        })
    };
    let relay = vec![
        fwd(Arc::clone(&to_bob), Arc::clone(&to_alice), alice.local_addr()),
        fwd(Arc::clone(&to_alice), Arc::clone(&to_bob), bob.local_addr()),
    ];
    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    let inv = fixtures::invitation();
    let (a, b) = tokio::join!(
        alice.accept_join(to_alice.local_addr().expect("addr"), &inv, ledger, PeerAuth::AnyCertificate),
        bob.join(to_bob.local_addr().expect("addr"), &inv),
    );
    let (a, b) = (a.expect("alice"), b.expect("bob"));
    // One channel so SCTP state exists beyond the handshake.
    let c = b.open_channel(ChannelOptions::reliable("f")).await.expect("open");
    c.send(Bytes::from_static(b"hi")).await.expect("send");
    let r = a.accept_channel().await.expect("accept");
    assert_eq!(r.recv().await.expect("recv"), Some(Bytes::from_static(b"hi")));
    Pair { alice: a, _bob: b, inject: to_alice, alice_addr: alice.local_addr(), relay }
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| Harness {
        rt: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime"),
        state: Mutex::new(None),
    })
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let mut state = h.state.lock().unwrap_or_else(|p| p.into_inner());
    h.rt.block_on(async {
        let dead = state.as_ref().is_none_or(|p| p.alice.close_reason().is_some());
        if dead {
            if let Some(old) = state.take() {
                for t in old.relay {
                    t.abort();
                }
            }
            *state = Some(pair().await);
        }
        let Some(p) = state.as_ref() else { return };
        let _ = p.inject.send_to(data, p.alice_addr).await;
        // Let the session process it.
        tokio::task::yield_now().await;
    });
});
