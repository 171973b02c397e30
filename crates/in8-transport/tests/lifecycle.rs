//! Session life cycle: orderly close, abrupt loss (peer gone, consent lost) as clear
//! reasons, STUN still reaching the ICE layer while DTLS is up, demultiplexer counters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

#[path = "support/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use helpers::*;
use in8_artifact::{Ledger, MemoryLedger, fixtures};
use in8_transport::{ChannelOptions, CloseReason, Error, PacketKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orderly_close_is_seen_by_both_sides() {
    let (a, b, _, _) = joined_pair(config()).await;
    let cb = b.open_channel(ChannelOptions::reliable("c")).await.unwrap();
    cb.send(Bytes::from_static(b"last words")).await.unwrap();
    let ca = a.accept_channel().await.unwrap();
    b.close().await.unwrap();
    assert_eq!(b.close_reason(), Some(CloseReason::LocalClose));
    // Data sent before the close still arrives, then the channel ends in order.
    assert_eq!(
        ca.recv().await.unwrap().unwrap(),
        Bytes::from_static(b"last words")
    );
    assert_eq!(ca.recv().await.unwrap(), None);
    assert_eq!(a.closed().await, CloseReason::PeerClosed);
    assert!(matches!(
        a.open_channel(ChannelOptions::reliable("x")).await,
        Err(Error::Closed(_))
    ));
    assert!(matches!(
        cb.send(Bytes::from_static(b"x")).await,
        Err(Error::Closed(CloseReason::LocalClose))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_channel_ends_in_order_on_the_other_side() {
    let (a, b, _, _) = joined_pair(config()).await;
    let cb = b.open_channel(ChannelOptions::reliable("c")).await.unwrap();
    cb.send(Bytes::from_static(b"1")).await.unwrap();
    let ca = a.accept_channel().await.unwrap();
    cb.close().await.unwrap();
    assert_eq!(ca.recv().await.unwrap().unwrap(), Bytes::from_static(b"1"));
    assert_eq!(ca.recv().await.unwrap(), None);
    // The session itself stays up.
    assert_eq!(a.close_reason(), None);
    let c2 = a
        .open_channel(ChannelOptions::reliable("again"))
        .await
        .unwrap();
    c2.send(Bytes::from_static(b"2")).await.unwrap();
    assert_eq!(
        b.accept_channel()
            .await
            .unwrap()
            .recv()
            .await
            .unwrap()
            .unwrap(),
        Bytes::from_static(b"2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_peer_is_reported_as_gone() {
    let mut cfg = config();
    cfg.keepalive_interval = Duration::from_millis(200);
    cfg.idle_timeout = Duration::from_millis(1500);
    let ((alice, _a), (bob, _b)) = alice_and_bob(cfg).await;
    let shim = Shim::new(alice.local_addr(), bob.local_addr(), 0, 0, 1).await;
    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    let (sa, sb) = join(
        &alice,
        &bob,
        shim.addr_for_a,
        shim.addr_for_b,
        &fixtures::invitation(),
        ledger,
    )
    .await;
    let (sa, sb) = (sa.unwrap(), sb.unwrap());
    let cb = sb
        .open_channel(ChannelOptions::reliable("c"))
        .await
        .unwrap();
    cb.send(Bytes::from_static(b"x")).await.unwrap();
    let ca = sa.accept_channel().await.unwrap();
    assert_eq!(ca.recv().await.unwrap().unwrap(), Bytes::from_static(b"x"));
    // Keepalives hold an idle session open well past the idle timeout.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(sa.close_reason(), None);
    assert_eq!(sb.close_reason(), None);
    // The path dies (black hole).
    shim.set_loss(1000);
    let reason = sa.closed().await;
    assert!(
        matches!(reason, CloseReason::PeerGone { silent_for } if silent_for >= Duration::from_millis(1500)),
        "{reason:?}"
    );
    assert!(matches!(sb.closed().await, CloseReason::PeerGone { .. }));
    // A reader blocked on the dead session gets the reason as an error, not a clean end.
    assert!(matches!(
        ca.recv().await,
        Err(Error::Closed(CloseReason::PeerGone { .. }))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_loss_from_ice_aborts_the_session() {
    let (a, b, _, _) = joined_pair(config()).await;
    let cb = b.open_channel(ChannelOptions::reliable("c")).await.unwrap();
    cb.send(Bytes::from_static(b"x")).await.unwrap();
    let ca = a.accept_channel().await.unwrap();
    assert_eq!(ca.recv().await.unwrap().unwrap(), Bytes::from_static(b"x"));
    let reader = tokio::spawn(async move { ca.recv().await });
    a.abort(CloseReason::ConsentLost);
    assert_eq!(a.closed().await, CloseReason::ConsentLost);
    assert!(matches!(
        reader.await.unwrap(),
        Err(Error::Closed(CloseReason::ConsentLost))
    ));
    // The peer learns from the DTLS close_notify sent during teardown.
    assert_eq!(b.closed().await, CloseReason::PeerClosed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stun_and_turn_channel_data_reach_the_ice_layer_while_dtls_runs() {
    let ((alice, mut alice_ice), (bob, bob_ice)) = alice_and_bob(config()).await;
    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    let (sa, sb) = join(
        &alice,
        &bob,
        bob.local_addr(),
        alice.local_addr(),
        &fixtures::invitation(),
        ledger,
    )
    .await;
    let (sa, sb) = (sa.unwrap(), sb.unwrap());
    // A consent check (STUN binding request header) from Bob's socket, sent through the
    // ICE layer's sender while the session is up.
    let stun = [
        0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ];
    bob_ice
        .sender()
        .send_to(&stun, alice.local_addr())
        .await
        .unwrap();
    let got = alice_ice.recv().await.unwrap();
    assert_eq!(got.from, bob.local_addr());
    assert_eq!(got.kind, PacketKind::Stun);
    assert_eq!(&got.data[..], &stun[..]);
    // TURN ChannelData (channel 0x4000, 4 bytes).
    let cd = [0x40, 0x00, 0x00, 0x04, 9, 9, 9, 9];
    bob_ice
        .sender()
        .send_to(&cd, alice.local_addr())
        .await
        .unwrap();
    assert_eq!(
        alice_ice.recv().await.unwrap().kind,
        PacketKind::TurnChannel
    );
    // RTP and junk are dropped and counted; the session is unaffected.
    bob_ice
        .sender()
        .send_to(&[0x80, 0, 0, 0], alice.local_addr())
        .await
        .unwrap();
    bob_ice
        .sender()
        .send_to(&[0xff], alice.local_addr())
        .await
        .unwrap();
    let cb = sb
        .open_channel(ChannelOptions::reliable("after"))
        .await
        .unwrap();
    cb.send(Bytes::from_static(b"ok")).await.unwrap();
    assert_eq!(
        sa.accept_channel()
            .await
            .unwrap()
            .recv()
            .await
            .unwrap()
            .unwrap(),
        Bytes::from_static(b"ok")
    );
    let stats = alice.stats();
    assert_eq!(stats.to_ice, 2);
    assert_eq!(stats.dropped_unknown, 2);
    // Bob's ClientHello and second flight, his INIT ACK and COOKIE ACK, and the "after"
    // channel's open and message: at least five datagrams went to DTLS.
    assert!(stats.to_dtls >= 5, "{stats:?}");
    // DTLS from an address with no session creates no state: dropped and counted.
    let stranger = tokio::net::UdpSocket::bind(loopback()).await.unwrap();
    stranger
        .send_to(&[22, 0xfe, 0xfd, 0, 0], alice.local_addr())
        .await
        .unwrap();
    // The ICE link keeps working: a STUN datagram sent after it is delivered, so the
    // stranger's DTLS datagram has been processed by then.
    stranger.send_to(&stun, alice.local_addr()).await.unwrap();
    assert_eq!(
        alice_ice.recv().await.unwrap().from,
        stranger.local_addr().unwrap()
    );
    assert_eq!(alice.stats().dropped_unrouted, 1);
}
