//! End to end on loopback: phase 1, phase 2 through the filtering shim, single use across
//! restarts, expiry, revocation and foreign RSVPs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use std::time::Duration;

use in8_artifact::{Identity, SignedInvitation, Timestamp};
use in8_core::{
    Config, Connection, Error, InboundFilter, InviteEvent, InviteOptions, JoinEvent, Node, Phase,
};
use in8_transport::{ChannelOptions, Refusal};

fn id(seed: u8) -> Identity {
    Identity::from_seed(&[seed; 32])
}

async fn node(seed: u8) -> Node {
    Node::start(Config::loopback(id(seed))).await.unwrap()
}

/// Runs a join to its end, returning the connection or the error, and the RSVP if one came.
async fn finish(
    mut join: in8_core::Join,
) -> (Result<Connection, Error>, Option<in8_artifact::SignedRsvp>) {
    while let Some(e) = join.next().await {
        match e {
            JoinEvent::Connected(c) => return (Ok(c), None),
            JoinEvent::Failed(e) => return (Err(e), None),
            JoinEvent::Phase1Failed { rsvp, .. } => return (Err(Error::Closed), Some(rsvp)),
            _ => {}
        }
    }
    (Err(Error::Closed), None)
}

async fn exchange(a: &Connection, b: &Connection) {
    let ch = a
        .open_channel(ChannelOptions::reliable("chat"))
        .await
        .unwrap();
    ch.send(&b"hello"[..]).await.unwrap();
    let theirs = b.accept_channel().await.unwrap();
    assert_eq!(&theirs.recv().await.unwrap().unwrap()[..], b"hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase_one_connects_and_carries_data() {
    let (alice, bob) = (node(1).await, node(2).await);
    let mut invite = alice.invite(InviteOptions::default()).await.unwrap();
    let join = bob.join(invite.invitation()).await.unwrap();
    let (bob_side, rsvp) = finish(join).await;
    let bob_side = bob_side.unwrap();
    assert!(rsvp.is_none());
    let alice_side = invite.joined().await.unwrap();
    assert_eq!(bob_side.peer(), alice.node_id());
    assert_eq!(alice_side.peer(), bob.node_id());
    assert_eq!(bob_side.phase(), Phase::One);
    assert_eq!(bob_side.path().kind, in8_artifact::CandidateKind::Host);
    assert!(bob_side.path().rtt.is_some());
    exchange(&bob_side, &alice_side).await;
    exchange(&alice_side, &bob_side).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_stats_count_a_joins_datagrams() {
    let (alice, bob) = (node(41).await, node(42).await);
    let before = alice.transport_stats().await.unwrap();
    let mut invite = alice.invite(InviteOptions::default()).await.unwrap();
    let (bob_side, _) = finish(bob.join(invite.invitation()).await.unwrap()).await;
    let bob_side = bob_side.unwrap();
    let alice_side = invite.joined().await.unwrap();
    exchange(&bob_side, &alice_side).await;
    // Counted before either side closes (a close_notify after the close is unrouted).
    let (a, b) = (
        alice.transport_stats().await.unwrap(),
        bob.transport_stats().await.unwrap(),
    );
    // At least the ICE check, and on the DTLS side the ClientHello, the client's second
    // flight, INIT ACK and the channel's open and message.
    assert!(a.to_ice > before.to_ice, "{a:?}");
    assert!(a.to_dtls >= 5, "{a:?}");
    assert!(b.to_ice >= 1 && b.to_dtls >= 3, "{b:?}");
    // The inviter's route exists before the invitee's ClientHello can arrive (it is
    // reserved on the ICE event, before the check's response leaves): nothing unrouted.
    assert_eq!(a.dropped_unrouted, 0, "{a:?}");
    assert_eq!(
        a.received,
        a.to_ice + a.to_dtls + a.dropped_unknown + a.dropped_full
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_inviter_needs_the_rsvp_then_phase_two_connects() {
    let mut cfg = Config::loopback(id(3));
    cfg.inbound_filter = Some(InboundFilter::AddressAndPortDependent);
    cfg.ice.agent.connect_timeout = Duration::from_secs(2);
    let alice = Node::start(cfg).await.unwrap();
    let mut bob_cfg = Config::loopback(id(4));
    bob_cfg.ice.agent.connect_timeout = Duration::from_secs(2);
    let bob = Node::start(bob_cfg).await.unwrap();
    let mut invite = alice.invite(InviteOptions::default()).await.unwrap();
    let mut join = bob.join(invite.invitation()).await.unwrap();
    let rsvp = loop {
        match join.next().await.unwrap() {
            JoinEvent::Phase1Failed { rsvp, reason } => {
                assert!(
                    matches!(reason, in8_ice::FailureReason::NothingReceived { .. }),
                    "{reason}"
                );
                break rsvp;
            }
            JoinEvent::Connected(_) => panic!("the filter should block phase 1"),
            JoinEvent::Failed(e) => panic!("{e}"),
            _ => {}
        }
    };
    // The RSVP travels back (here: in memory) and Alice accepts it.
    assert_eq!(alice.accept_rsvp(&rsvp).await.unwrap(), bob.node_id());
    let bob_side = join.connected().await.unwrap();
    let alice_side = invite.joined().await.unwrap();
    assert_eq!(bob_side.phase(), Phase::Two);
    assert_eq!(alice_side.phase(), Phase::Two);
    assert_eq!(alice_side.peer(), bob.node_id());
    exchange(&alice_side, &bob_side).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_use_invitation_refuses_the_second_joiner_clearly() {
    let (alice, bob, carol) = (node(5).await, node(6).await, node(7).await);
    let mut invite = alice.invite(InviteOptions::default()).await.unwrap();
    finish(bob.join(invite.invitation()).await.unwrap())
        .await
        .0
        .unwrap();
    invite.joined().await.unwrap();
    let (r, _) = finish(carol.join(invite.invitation()).await.unwrap()).await;
    match r {
        Err(Error::JoinRefused(Refusal::AlreadyUsed)) => {}
        other => panic!("expected an already-used refusal, got {other:?}"),
    }
    let msg = Error::JoinRefused(Refusal::AlreadyUsed).to_string();
    assert!(msg.contains("already used"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_own_invitations_are_refused_before_any_traffic() {
    let (alice, bob) = (node(8).await, node(9).await);
    let mut inv = in8_artifact::Invitation::new(
        alice.network_id().await.unwrap(),
        alice.node_id(),
        in8_artifact::InviteSecret::generate(&mut rand::rng()),
        alice.candidates().to_vec(),
        Timestamp::from_unix(1_000_000),
        Duration::from_secs(60),
    );
    inv.uses = 1;
    let expired: SignedInvitation = inv.sign(&id(8)).unwrap();
    match bob.join(&expired).await {
        Err(Error::Artifact(in8_artifact::Error::Expired { .. })) => {}
        other => panic!("{other:?}"),
    }
    let own = alice.invite(InviteOptions::default()).await.unwrap();
    assert!(matches!(
        alice.join(own.invitation()).await,
        Err(Error::OwnInvitation)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_invitation_is_refused_clearly() {
    let (alice, bob) = (node(10).await, node(11).await);
    let mut invite = alice.invite(InviteOptions::default()).await.unwrap();
    alice
        .revoke(invite.invitation().invitation().invite_id())
        .await
        .unwrap();
    let mut ended = false;
    while let Some(e) = invite.next().await {
        if matches!(
            e,
            InviteEvent::Ended {
                reason: in8_core::InviteEnd::Revoked
            }
        ) {
            ended = true;
            break;
        }
    }
    assert!(ended);
    let (r, _) = finish(bob.join(invite.invitation()).await.unwrap()).await;
    assert!(
        matches!(r, Err(Error::JoinRefused(Refusal::Revoked))),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rsvp_for_another_invitation_is_refused() {
    let (alice, carol) = (node(12).await, node(13).await);
    let _mine = alice.invite(InviteOptions::default()).await.unwrap();
    let theirs = carol.invite(InviteOptions::default()).await.unwrap();
    let inv = theirs.invitation().invitation();
    let rsvp = in8_artifact::Rsvp {
        invite_id: inv.invite_id(),
        responder: id(14).node_id(),
        ufrag: "abcd".into(),
        candidates: vec![],
        expires: in8_artifact::Timestamp::from_system(std::time::SystemTime::now())
            + Duration::from_secs(600),
        cert_fingerprint: None,
        nat: None,
        extensions: vec![],
    }
    .sign(&id(14), &inv.secret)
    .unwrap();
    assert!(matches!(
        alice.accept_rsvp(&rsvp).await,
        Err(Error::UnknownInvitation(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_inviter_keeps_enforcing_single_use() {
    let state = tempfile::tempdir().unwrap();
    let mut cfg = Config::loopback(id(15));
    cfg.state_dir = Some(state.path().to_path_buf());
    let alice = Node::start(cfg.clone()).await.unwrap();
    let port = alice.candidates()[0].addr.port();
    let network = alice.credential().await.unwrap();
    let invite = alice.invite(InviteOptions::default()).await.unwrap();
    let invitation = invite.invitation().clone();
    drop(invite);
    alice.close().await;
    drop(alice);

    // Restart on the same port and state: the invitation is listened for again.
    cfg.bind.set_port(port);
    let alice = loop {
        match Node::start_in(cfg.clone(), Some(network.clone())).await {
            Ok(n) => break n,
            // The old socket may take a moment to be released.
            Err(Error::Io { .. }) => tokio::task::yield_now().await,
            Err(e) => panic!("{e}"),
        }
    };
    let mut restored = alice.restored_invitations();
    assert_eq!(restored.len(), 1);
    let (bob, carol) = (node(16).await, node(17).await);
    finish(bob.join(&invitation).await.unwrap())
        .await
        .0
        .unwrap();
    restored[0].joined().await.unwrap();

    // Restart again: the use is in the file ledger.
    alice.close().await;
    drop(alice);
    drop(restored);
    let alice = loop {
        match Node::start_in(cfg.clone(), Some(network.clone())).await {
            Ok(n) => break n,
            Err(Error::Io { .. }) => tokio::task::yield_now().await,
            Err(e) => panic!("{e}"),
        }
    };
    let (r, _) = finish(carol.join(&invitation).await.unwrap()).await;
    assert!(
        matches!(r, Err(Error::JoinRefused(Refusal::AlreadyUsed))),
        "{r:?}"
    );
    drop(alice);
}

/// A phase-1 check for `invitation` from `ufrag`, authenticated with the inviter's password.
fn phase1_check(invitation: &in8_artifact::Invitation, ufrag: &str) -> Vec<u8> {
    use in8_ice::stun::{Class, IntegrityKey, MessageWriter, Method, TransactionId, attr};
    let mut b = Vec::new();
    let username = format!("{}:{ufrag}", invitation.secret.inviter_ufrag());
    MessageWriter::new(
        &mut b,
        Method::BINDING,
        Class::Request,
        TransactionId([7; 12]),
    )
    .attr(attr::USERNAME, username.as_bytes())
    .attr_u32(attr::PRIORITY, 0x6e00_01ff)
    .attr_u64(attr::ICE_CONTROLLING, 42)
    .integrity(&IntegrityKey::short_term(
        &invitation.secret.inviter_password(),
    ))
    .fingerprint();
    b
}

/// Sends one authenticated check to Alice from a bare transport endpoint, answers Alice's
/// checks back only if `answer`, then tries a DTLS handshake: whether it completed.
async fn handshake_after_a_lone_check(answer: bool) -> bool {
    use in8_ice::stun::{Class, IntegrityKey, Message, MessageWriter, Method, attr};
    let alice = node(61).await;
    let invite = alice.invite(InviteOptions::default()).await.unwrap();
    let inv = invite.invitation().invitation().clone();
    let alice_addr = alice.candidates()[0].addr;
    let config = in8_transport::Config {
        handshake_timeout: Duration::from_secs(3),
        ..Default::default()
    };
    let (mallory, mut link) =
        in8_transport::Endpoint::bind("127.0.0.1:0".parse().unwrap(), id(62), config)
            .await
            .unwrap();
    let ufrag = "mallory";
    let sender = link.sender();
    sender
        .send_to(&phase1_check(&inv, ufrag), alice_addr)
        .await
        .unwrap();
    let password = inv.secret.invitee_password(ufrag);
    tokio::spawn(async move {
        while let Some(d) = link.recv().await {
            let Ok(m) = Message::parse(&d.data) else {
                continue;
            };
            if !answer || m.class() != Class::Request {
                continue;
            }
            let mut r = Vec::new();
            MessageWriter::new(&mut r, Method::BINDING, Class::Success, m.transaction_id())
                .xor_address(attr::XOR_MAPPED_ADDRESS, d.from)
                .integrity(&IntegrityKey::short_term(&password))
                .fingerprint();
            let _ = sender.send_to(&r, d.from).await;
        }
    });
    let r = mallory
        .connect_dtls(
            alice_addr,
            in8_transport::DtlsRole::Client,
            in8_transport::PeerAuth::for_invitation(&inv),
        )
        .await;
    alice.close().await;
    r.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_dtls_for_an_address_that_never_answered_the_inviters_check() {
    // An authenticated check alone (its source address could be forged) reserves a route
    // but starts no handshake: the DTLS server, which skips the cookie exchange, waits for
    // ICE to validate the address. Control: answering Alice's check lets it through.
    assert!(
        handshake_after_a_lone_check(true).await,
        "control: a validated address gets its handshake"
    );
    assert!(
        !handshake_after_a_lone_check(false).await,
        "an unvalidated address must get no DTLS answer"
    );
}
