//! A path whose datagrams travel through a relay the caller runs (`Via::Relay` out,
//! `Endpoint::inject` in), as in8-core does with a TURN allocation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

#[path = "support/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::sync::Arc;

use bytes::Bytes;
use helpers::*;
use in8_artifact::{Ledger, MemoryLedger, fixtures};
use in8_transport::{ChannelOptions, PeerAuth, Via};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_runs_over_a_caller_provided_relay() {
    let ((alice, _a), (bob, _b)) = alice_and_bob(config()).await;
    // The "relay": a socket that forwards Bob's outgoing datagrams to Alice (so Alice sees
    // Bob at the relay's address) and hands what Alice sends back to Bob through `inject`.
    let relay = Arc::new(UdpSocket::bind(loopback()).await.unwrap());
    let relay_addr = relay.local_addr().unwrap();
    let (tx, mut rx) = mpsc::channel::<(std::net::SocketAddr, Bytes)>(64);
    let out = Arc::clone(&relay);
    let forwarded = tokio::spawn(async move {
        let mut n = 0u32;
        while let Some((to, data)) = rx.recv().await {
            out.send_to(&data, to).await.unwrap();
            n += 1;
        }
        n
    });
    let back = Arc::clone(&relay);
    let bob_in = bob.clone();
    let alice_addr = alice.local_addr();
    let injected = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            let (len, from) = back.recv_from(&mut buf).await.unwrap();
            assert_eq!(from, alice_addr);
            bob_in.inject(&buf[..len], from);
        }
    });

    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    let invitation = fixtures::invitation();
    let (sa, sb) = tokio::join!(
        alice.accept_join(relay_addr, &invitation, ledger, PeerAuth::AnyCertificate),
        bob.join_via(alice_addr, &invitation, Via::Relay(tx)),
    );
    let (sa, sb) = (sa.unwrap(), sb.unwrap());
    assert_eq!(sa.peer(), Some(fixtures::bob().node_id()));
    assert_eq!(sb.remote_addr(), alice_addr);

    let ch = sb
        .open_channel(ChannelOptions::reliable("relayed"))
        .await
        .unwrap();
    ch.send(Bytes::from_static(b"through the relay"))
        .await
        .unwrap();
    let theirs = sa.accept_channel().await.unwrap();
    assert_eq!(
        &theirs.recv().await.unwrap().unwrap()[..],
        b"through the relay"
    );
    theirs.send(Bytes::from_static(b"and back")).await.unwrap();
    assert_eq!(&ch.recv().await.unwrap().unwrap()[..], b"and back");
    // Alice only knows the relay's address: whatever Bob received came through `inject`.
    assert_eq!(sa.remote_addr(), relay_addr);
    assert!(bob.stats().to_dtls > 0);
    sb.close().await.unwrap();
    sa.close().await.ok();
    drop(sb);
    injected.abort();
    forwarded.abort();
}
