//! DTLS authentication and the join proof over loopback: pinned fingerprints, identity
//! bindings, wrong certificates, data before the proof, replayed proofs, used invitations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

#[path = "support/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::sync::Arc;

use bytes::Bytes;
use helpers::*;
use in8_artifact::{Identity, Ledger, MemoryLedger, fixtures};
use in8_transport::join::decode_verdict;
use in8_transport::{ChannelOptions, DtlsRole, Error, JoinProof, PeerAuth, Refusal};

async fn ping(a: &in8_transport::Session, b: &in8_transport::Session) {
    let ca = a
        .open_channel(ChannelOptions::reliable("ping"))
        .await
        .unwrap();
    ca.send(Bytes::from_static(b"ping")).await.unwrap();
    let cb = b.accept_channel().await.unwrap();
    assert_eq!(cb.label(), "ping");
    assert_eq!(
        cb.recv().await.unwrap().unwrap(),
        Bytes::from_static(b"ping")
    );
    cb.send(Bytes::from_static(b"pong")).await.unwrap();
    assert_eq!(
        ca.recv().await.unwrap().unwrap(),
        Bytes::from_static(b"pong")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_fingerprints_both_ways() {
    let ((alice, _a), (bob, _b)) = alice_and_bob(config()).await;
    let pin_bob = PeerAuth::Fingerprint {
        fingerprint: bob.certificate().fingerprint(),
        node: None,
    };
    let pin_alice = PeerAuth::Fingerprint {
        fingerprint: alice.certificate().fingerprint(),
        node: None,
    };
    let (sa, sb) = tokio::join!(
        alice.connect(bob.local_addr(), DtlsRole::Server, pin_bob),
        bob.connect(alice.local_addr(), DtlsRole::Client, pin_alice),
    );
    let (sa, sb) = (sa.unwrap(), sb.unwrap());
    assert_eq!(sa.peer_fingerprint(), Some(bob.certificate().fingerprint()));
    assert_eq!(
        sb.peer_fingerprint(),
        Some(alice.certificate().fingerprint())
    );
    // Both certificates carry identity bindings, so the peer ids are learned too.
    assert_eq!(sa.peer(), Some(fixtures::bob().node_id()));
    assert_eq!(sb.peer(), Some(fixtures::alice().node_id()));
    assert_eq!(sa.channel_binding(), sb.channel_binding());
    ping(&sa, &sb).await;
    ping(&sb, &sa).await;
    sb.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_fingerprint_fails_the_handshake() {
    let ((alice, _a), (bob, _b)) = alice_and_bob(config()).await;
    let mut wrong = alice.certificate().fingerprint();
    wrong[0] ^= 1;
    let (sa, sb) = tokio::join!(
        alice.connect(bob.local_addr(), DtlsRole::Server, PeerAuth::AnyCertificate),
        bob.connect(
            alice.local_addr(),
            DtlsRole::Client,
            PeerAuth::Fingerprint {
                fingerprint: wrong,
                node: None
            }
        ),
    );
    assert!(matches!(sb, Err(Error::PeerCertificate { .. })), "{sb:?}");
    // The server gets the bad_certificate alert (or times out): never a session.
    assert!(sa.is_err(), "{sa:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitation_with_pinned_fingerprint_joins_and_a_wrong_pin_fails() {
    let ((alice, _a), (bob, _b)) = alice_and_bob(config()).await;
    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    let mut inv = fixtures::invitation();
    inv.cert_fingerprint = Some(alice.certificate().fingerprint());
    let (sa, sb) = join(
        &alice,
        &bob,
        bob.local_addr(),
        alice.local_addr(),
        &inv,
        Arc::clone(&ledger),
    )
    .await;
    let (sa, sb) = (sa.unwrap(), sb.unwrap());
    assert_eq!(sa.peer(), Some(fixtures::bob().node_id()));
    assert_eq!(sb.peer(), Some(fixtures::alice().node_id()));
    ping(&sb, &sa).await;
    sa.close().await.unwrap();
    // Bob's side has released the path to Alice before he uses it again.
    assert_eq!(sb.closed().await, in8_transport::CloseReason::PeerClosed);

    // Same again with a pin that is not Alice's certificate: the invitee aborts the
    // handshake, nothing is redeemed, no session exists.
    let mut inv2 = fixtures::invitation();
    inv2.secret = in8_artifact::InviteSecret::from_bytes(&[5; 16]).unwrap();
    inv2.cert_fingerprint = Some([0xee; 32]);
    let (sa, sb) = join(
        &alice,
        &bob,
        bob.local_addr(),
        alice.local_addr(),
        &inv2,
        Arc::clone(&ledger),
    )
    .await;
    assert!(matches!(sb, Err(Error::PeerCertificate { .. })), "{sb:?}");
    assert!(sa.is_err());
    assert_eq!(ledger.status(&inv2.invite_id()).unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_bound_to_another_identity_fails() {
    // Mallory answers at the address Bob expects Alice at, with her own (validly bound)
    // certificate; the invitation names Alice as issuer.
    let mallory = endpoint(Identity::from_seed(&[0x66; 32]), config()).await.0;
    let bob = endpoint(fixtures::bob(), config()).await.0;
    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    let inv = fixtures::invitation();
    let (sm, sb) = join(
        &mallory,
        &bob,
        bob.local_addr(),
        mallory.local_addr(),
        &inv,
        ledger,
    )
    .await;
    match sb {
        Err(Error::PeerCertificate { reason }) => {
            assert!(reason.contains("another node"), "{reason}")
        }
        other => panic!("expected a certificate error, got {other:?}"),
    }
    assert!(sm.is_err());
}

/// Starts the inviter's side in a task.
fn spawn_accept(
    alice: &in8_transport::Endpoint,
    remote: std::net::SocketAddr,
    inv: &in8_artifact::Invitation,
    ledger: &Arc<dyn Ledger>,
) -> tokio::task::JoinHandle<in8_transport::Result<in8_transport::Session>> {
    let (alice, inv, ledger) = (alice.clone(), inv.clone(), Arc::clone(ledger));
    tokio::spawn(async move {
        alice
            .accept_join(remote, &inv, ledger, PeerAuth::AnyCertificate)
            .await
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_before_the_join_proof_is_refused() {
    let ((alice, _a), (bob, _b)) = alice_and_bob(config()).await;
    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    let inv = fixtures::invitation();

    // 1. Bob authenticates Alice properly but sends application data instead of the proof.
    let accept = spawn_accept(&alice, bob.local_addr(), &inv, &ledger);
    let conn = bob
        .connect_dtls(
            alice.local_addr(),
            DtlsRole::Client,
            PeerAuth::for_invitation(&inv),
        )
        .await
        .unwrap();
    conn.send_record(b"hello before proof").await.unwrap();
    let verdict = conn
        .recv_record(std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        decode_verdict(&verdict).unwrap(),
        Err(Refusal::NotAJoinProof)
    );
    let r = accept.await.unwrap();
    assert!(
        matches!(r, Err(Error::JoinRejected(Refusal::NotAJoinProof))),
        "{r:?}"
    );
    // The inviter closed the DTLS session: at most the repeated refusal arrives, then the
    // close.
    let mut records = 0;
    while let Ok(r) = conn.recv_record(std::time::Duration::from_secs(5)).await {
        assert_eq!(decode_verdict(&r).unwrap(), Err(Refusal::NotAJoinProof));
        records += 1;
        assert!(records < 2, "only the refusal may follow");
    }
    conn.close().await;

    // 2. Bob skips the proof and starts SCTP right away (a plain member session).
    let accept = spawn_accept(&alice, bob.local_addr(), &inv, &ledger);
    let plain = bob
        .connect(
            alice.local_addr(),
            DtlsRole::Client,
            PeerAuth::for_invitation(&inv),
        )
        .await;
    assert!(plain.is_err(), "no SCTP association may come up: {plain:?}");
    let r = accept.await.unwrap();
    assert!(matches!(r, Err(Error::JoinRejected(_))), "{r:?}");

    // Nothing was redeemed, so the real join still works.
    assert_eq!(ledger.status(&inv.invite_id()).unwrap(), None);
    let (sa, sb) = join(
        &alice,
        &bob,
        bob.local_addr(),
        alice.local_addr(),
        &inv,
        ledger,
    )
    .await;
    ping(&sa.unwrap(), &sb.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_join_proof_on_a_new_dtls_session_is_refused() {
    let ((alice, _a), (bob, _b)) = alice_and_bob(config()).await;
    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    // Several uses, so that only the channel binding can refuse the replay.
    let mut inv = fixtures::invitation();
    inv.uses = 5;
    let (sa, sb) = join(
        &alice,
        &bob,
        bob.local_addr(),
        alice.local_addr(),
        &inv,
        Arc::clone(&ledger),
    )
    .await;
    let (sa, sb) = (sa.unwrap(), sb.unwrap());
    // The exact bytes Bob sent on that session (ed25519 is deterministic).
    let recorded = JoinProof::create(&fixtures::bob(), &inv, &sb.channel_binding()).to_bytes();
    assert_eq!(sa.channel_binding(), sb.channel_binding());
    sb.close().await.unwrap();
    assert_eq!(sa.closed().await, in8_transport::CloseReason::PeerClosed);

    // An eavesdropper replays them on a fresh DTLS session from another endpoint.
    let eve = endpoint(Identity::from_seed(&[0xEE; 32]), config()).await.0;
    let accept = spawn_accept(&alice, eve.local_addr(), &inv, &ledger);
    let conn = eve
        .connect_dtls(
            alice.local_addr(),
            DtlsRole::Client,
            PeerAuth::for_invitation(&inv),
        )
        .await
        .unwrap();
    assert_ne!(conn.channel_binding(), sb.channel_binding());
    conn.send_record(&recorded).await.unwrap();
    let verdict = conn
        .recv_record(std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(decode_verdict(&verdict).unwrap(), Err(Refusal::BadProof));
    let r = accept.await.unwrap();
    assert!(
        matches!(r, Err(Error::JoinRejected(Refusal::BadProof))),
        "{r:?}"
    );
    // Only the genuine join was counted.
    assert_eq!(ledger.status(&inv.invite_id()).unwrap().unwrap().used, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_invitation_is_refused_with_a_clear_reason() {
    let ((alice, _a), (bob, _b)) = alice_and_bob(config()).await;
    let carol = endpoint(Identity::from_seed(&[0xC0; 32]), config()).await.0;
    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    let inv = fixtures::invitation();
    let (sa, sb) = join(
        &alice,
        &bob,
        bob.local_addr(),
        alice.local_addr(),
        &inv,
        Arc::clone(&ledger),
    )
    .await;
    sa.unwrap();
    sb.unwrap();
    let (sa, sc) = join(
        &alice,
        &carol,
        carol.local_addr(),
        alice.local_addr(),
        &inv,
        ledger,
    )
    .await;
    assert!(
        matches!(sc, Err(Error::JoinRefused(Refusal::AlreadyUsed))),
        "{sc:?}"
    );
    assert!(
        matches!(sa, Err(Error::JoinRejected(Refusal::AlreadyUsed))),
        "{sa:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_invitation_is_refused() {
    let mut late = config();
    late.clock = Arc::new(|| fixtures::NOW + std::time::Duration::from_secs(3600));
    let alice = endpoint(fixtures::alice(), late).await.0;
    let bob = endpoint(fixtures::bob(), config()).await.0;
    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    let inv = fixtures::invitation();
    let (_, sb) = join(
        &alice,
        &bob,
        bob.local_addr(),
        alice.local_addr(),
        &inv,
        Arc::clone(&ledger),
    )
    .await;
    assert!(
        matches!(sb, Err(Error::JoinRefused(Refusal::Expired))),
        "{sb:?}"
    );
    assert_eq!(ledger.status(&inv.invite_id()).unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_rsvp_the_inviter_authenticates_the_invitee_too() {
    let ((alice, _a), (bob, _b)) = alice_and_bob(config()).await;
    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    let mut inv = fixtures::invitation();
    inv.uses = 2;
    // The RSVP pinned Bob's certificate: Alice requires exactly it.
    let pin = PeerAuth::Fingerprint {
        fingerprint: bob.certificate().fingerprint(),
        node: Some(fixtures::bob().node_id()),
    };
    let (sa, sb) = tokio::join!(
        alice.accept_join(bob.local_addr(), &inv, Arc::clone(&ledger), pin),
        bob.join(alice.local_addr(), &inv),
    );
    let (sa, sb) = (sa.unwrap(), sb.unwrap());
    assert_eq!(sa.peer(), Some(fixtures::bob().node_id()));
    ping(&sa, &sb).await;
    sb.close().await.unwrap();
    assert_eq!(sa.closed().await, in8_transport::CloseReason::PeerClosed);

    // Someone else's certificate where the RSVP pinned Bob's: the handshake fails, nothing
    // is redeemed.
    let wrong = PeerAuth::Fingerprint {
        fingerprint: [0x11; 32],
        node: None,
    };
    let (sa, sb) = tokio::join!(
        alice.accept_join(bob.local_addr(), &inv, Arc::clone(&ledger), wrong),
        bob.join(alice.local_addr(), &inv),
    );
    assert!(matches!(sa, Err(Error::PeerCertificate { .. })), "{sa:?}");
    assert!(sb.is_err());
    assert_eq!(ledger.status(&inv.invite_id()).unwrap().unwrap().used, 1);
}
