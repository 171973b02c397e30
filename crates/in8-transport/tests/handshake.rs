//! DTLS authentication and the join proof over loopback: pinned fingerprints, identity
//! bindings, wrong certificates, certificates without or with malformed proofs, proofs
//! copied onto another key, used invitations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

#[path = "support/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::sync::Arc;

use bytes::Bytes;
use helpers::*;
use in8_artifact::{Identity, Ledger, MemoryLedger, fixtures};
use in8_transport::join::decode_verdict;
use in8_transport::{
    ChannelOptions, DtlsRole, Error, JoinProof, LocalCertificate, PeerAuth, Refusal,
};
use x509_parser::prelude::{FromDer, X509Certificate};

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
async fn a_certificate_without_a_join_proof_is_refused() {
    let ((alice, _a), (bob, _b)) = alice_and_bob(config()).await;
    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    let inv = fixtures::invitation();

    // 1. Bob authenticates Alice properly but presents his plain certificate (no proof):
    //    the refusal is the first record, and data he sends does not change it.
    let accept = spawn_accept(&alice, bob.local_addr(), &inv, &ledger);
    let conn = bob
        .connect_dtls(
            alice.local_addr(),
            DtlsRole::Client,
            PeerAuth::for_invitation(&inv),
        )
        .await
        .unwrap();
    let _ = conn.send_record(b"hello without a proof").await;
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

    // 2. Bob skips the proof and tries a plain member session (SCTP right away).
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

    // 3. A malformed proof extension is no proof either.
    let accept = spawn_accept(&alice, bob.local_addr(), &inv, &ledger);
    let junk =
        LocalCertificate::generate_with_join_proof(&fixtures::bob(), b"in8j\x01junk").unwrap();
    let conn = bob
        .connect_dtls_presenting(
            alice.local_addr(),
            DtlsRole::Client,
            PeerAuth::for_invitation(&inv),
            &junk,
        )
        .await
        .unwrap();
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
    conn.close().await;

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
async fn a_join_proof_copied_onto_another_key_is_refused() {
    let ((alice, _a), (bob, _b)) = alice_and_bob(config()).await;
    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    // Several uses, so that only the key binding can refuse the copy.
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
    // The proof Bob presented (DTLS 1.2 sends certificates in the clear): it is in his join
    // certificate, which is exactly what Alice saw.
    assert_eq!(
        sa.peer_fingerprint(),
        Some(bob.join_certificate(&inv).unwrap().fingerprint())
    );
    let bob_join_cert = bob.join_certificate(&inv).unwrap();
    let (_, cert) = X509Certificate::from_der(bob_join_cert.der()).unwrap();
    // x509-parser prints OID arcs above 64 bits in hex, so find the extension by content.
    let proofs: Vec<Vec<u8>> = cert
        .tbs_certificate
        .extensions()
        .iter()
        .filter(|e| JoinProof::decode(e.value).is_ok())
        .map(|e| e.value.to_vec())
        .collect();
    assert_eq!(proofs.len(), 1, "one join-proof extension");
    let recorded = proofs[0].clone();
    assert_eq!(
        JoinProof::decode(&recorded).unwrap().node,
        fixtures::bob().node_id()
    );
    sb.close().await.unwrap();
    assert_eq!(sa.closed().await, in8_transport::CloseReason::PeerClosed);

    // An eavesdropper puts the copied proof into a certificate for her own key (she cannot
    // present Bob's certificate: she lacks its key for the CertificateVerify).
    let eve = endpoint(Identity::from_seed(&[0xEE; 32]), config()).await.0;
    let copy =
        LocalCertificate::generate_with_join_proof(&Identity::from_seed(&[0xEE; 32]), &recorded)
            .unwrap();
    let accept = spawn_accept(&alice, eve.local_addr(), &inv, &ledger);
    let conn = eve
        .connect_dtls_presenting(
            alice.local_addr(),
            DtlsRole::Client,
            PeerAuth::for_invitation(&inv),
            &copy,
        )
        .await
        .unwrap();
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
    // The RSVP pinned Bob's join certificate for this invitation: Alice requires exactly it.
    let pin = PeerAuth::Fingerprint {
        fingerprint: bob.join_certificate(&inv).unwrap().fingerprint(),
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

/// A relay between Alice (`a`) and Bob (`b`) that drops the first datagram from Alice whose
/// first DTLS record has content type `drop_type` (20 ChangeCipherSpec: her last handshake
/// flight; 23 application data: her verdict).
async fn relay_dropping_first(
    a: std::net::SocketAddr,
    b: std::net::SocketAddr,
    drop_type: u8,
) -> (std::net::SocketAddr, std::net::SocketAddr) {
    use tokio::net::UdpSocket;
    let side_a = Arc::new(UdpSocket::bind(loopback()).await.unwrap());
    let side_b = Arc::new(UdpSocket::bind(loopback()).await.unwrap());
    let addrs = (side_a.local_addr().unwrap(), side_b.local_addr().unwrap());
    let (from_a, to_b) = (Arc::clone(&side_a), Arc::clone(&side_b));
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        let mut dropped = false;
        while let Ok((n, _)) = from_a.recv_from(&mut buf).await {
            if !dropped && buf[0] == drop_type {
                dropped = true;
                continue;
            }
            let _ = to_b.send_to(&buf[..n], b).await;
        }
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, _)) = side_b.recv_from(&mut buf).await {
            let _ = side_a.send_to(&buf[..n], a).await;
        }
    });
    addrs
}

/// Joins Bob to Alice through [`relay_dropping_first`]`(drop_type)` and checks the session
/// carries data; returns Alice's ledger and the invitation.
async fn join_losing_alices_first(drop_type: u8) -> (Arc<dyn Ledger>, in8_artifact::Invitation) {
    let ((alice, _a), (bob, _b)) = alice_and_bob(config()).await;
    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    let inv = fixtures::invitation();
    let (alice_sees_bob, bob_sees_alice) =
        relay_dropping_first(alice.local_addr(), bob.local_addr(), drop_type).await;
    let (sa, sb) = join(
        &alice,
        &bob,
        alice_sees_bob,
        bob_sees_alice,
        &inv,
        Arc::clone(&ledger),
    )
    .await;
    let (sa, sb) = (sa.unwrap(), sb.unwrap());
    assert_eq!(sa.peer(), Some(fixtures::bob().node_id()));
    assert_eq!(sb.peer(), Some(fixtures::alice().node_id()));
    ping(&sa, &sb).await;
    (ledger, inv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_verdict_is_implied_by_the_inviters_sctp_init() {
    // Content type 23: Alice's first application record, her verdict.
    let (ledger, inv) = join_losing_alices_first(23).await;
    assert_eq!(ledger.status(&inv.invite_id()).unwrap().unwrap().used, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_server_finished_is_sent_again_when_the_client_repeats_its_flight() {
    // RFC 6347 §4.2.4: the server answers a retransmission of the client's last flight
    // with its own last flight (third_party/dtls patch 2). Without it the client repeats
    // its flight until the handshake times out (10 s here), and the join fails.
    // Content type 20: ChangeCipherSpec, the start of Alice's last handshake flight.
    join_losing_alices_first(20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_certificate_presented_without_its_key_fails_the_handshake() {
    // Eve presents Bob's join certificate (seen in the clear) but signs the handshake's
    // CertificateVerify with her own key: the DTLS server checks the signature against
    // the certificate's key, so the handshake fails and nothing is redeemed.
    let ((alice, _a), (bob, _b)) = alice_and_bob(config()).await;
    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    let inv = fixtures::invitation();
    let stolen = bob.join_certificate(&inv).unwrap();
    let eve_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let forged = dtls::crypto::Certificate {
        certificate: vec![stolen.der().to_vec().into()],
        private_key: dtls::crypto::CryptoPrivateKey::try_from(&eve_key).unwrap(),
    };
    let client_config = |cert: dtls::crypto::Certificate| dtls::config::Config {
        certificates: vec![cert],
        cipher_suites: vec![
            dtls::cipher_suite::CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_128_Gcm_Sha256,
        ],
        extended_master_secret: dtls::config::ExtendedMasterSecretType::Require,
        insecure_skip_verify: true,
        server_name: "in8".into(),
        flight_interval: std::time::Duration::from_millis(200),
        ..Default::default()
    };
    let handshake = |cert| {
        let alice_addr = alice.local_addr();
        let (alice, inv, ledger) = (alice.clone(), inv.clone(), Arc::clone(&ledger));
        async move {
            let eve = tokio::net::UdpSocket::bind(loopback()).await.unwrap();
            eve.connect(alice_addr).await.unwrap();
            let accept = spawn_accept(&alice, eve.local_addr().unwrap(), &inv, &ledger);
            let conn: Arc<dyn webrtc_util::Conn + Send + Sync> = Arc::new(eve);
            let client = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                dtls::conn::DTLSConn::new(conn, client_config(cert), true, None),
            )
            .await;
            (matches!(client, Ok(Ok(_))), accept.await.unwrap())
        }
    };
    // Control: the same client with a certificate for its own key completes the handshake
    // (and is refused for carrying no join proof), so the harness itself works.
    let own = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&eve_key)
        .unwrap();
    let own = dtls::crypto::Certificate {
        certificate: vec![own.der().to_vec().into()],
        private_key: dtls::crypto::CryptoPrivateKey::try_from(&eve_key).unwrap(),
    };
    let (completed, r) = handshake(own).await;
    assert!(completed);
    assert!(
        matches!(r, Err(Error::JoinRejected(Refusal::NotAJoinProof))),
        "{r:?}"
    );
    // Bob's certificate with Eve's key.
    let (completed, r) = handshake(forged).await;
    assert!(!completed, "the handshake must not complete");
    assert!(
        matches!(r, Err(Error::Handshake { .. } | Error::Timeout { .. })),
        "{r:?}"
    );
    assert_eq!(ledger.status(&inv.invite_id()).unwrap(), None);
}
