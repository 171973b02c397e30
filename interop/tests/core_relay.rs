//! in8-core through a TURN relay (coturn on loopback): a relay-only invitation is not
//! reachable one-way, the RSVP installs the inviter's permission and phase 2 connects over
//! the relay; data flows both ways through it.
//! Needs the `coturn` Debian package: `cargo xtask interop` installs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use std::time::Duration;

use in8_artifact::{CandidateKind, Identity};
use in8_core::{Config, InviteOptions, JoinEvent, Node, Phase, TurnServer};
use in8_interop::coturn::{Coturn, CoturnConfig};
use in8_transport::ChannelOptions;

fn config(seed: u8, turn: &Coturn) -> Config {
    let (user, pass, _realm) = turn.credentials();
    let mut c = Config::loopback(Identity::from_seed(&[seed; 32]));
    c.turn = Some(TurnServer {
        addr: turn.stun_addr(),
        username: user.into(),
        password: pass.into(),
    });
    c.allow_relay = true;
    c.gather_timeout = Duration::from_secs(3);
    c.ice.agent.connect_timeout = Duration::from_secs(2);
    c
}

#[test]
#[ignore = "needs coturn: cargo xtask interop"]
fn relay_only_invitation_connects_through_turn_after_the_rsvp() {
    let turn = Coturn::start(CoturnConfig::loopback().unwrap(), None).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let alice = Node::start(config(1, &turn)).await.unwrap();
        assert!(
            alice
                .candidates()
                .iter()
                .any(|c| c.kind == CandidateKind::Relay),
            "no relay candidate gathered: {:?}\n{}",
            alice.candidates(),
            turn.log()
        );
        let mut bob_cfg = config(2, &turn);
        bob_cfg.turn = None;
        let bob = Node::start(bob_cfg).await.unwrap();
        let options = InviteOptions {
            relay_only: true,
            ..InviteOptions::default()
        };
        let mut invite = alice.invite(options).await.unwrap();
        let inv = invite.invitation().invitation();
        assert!(
            inv.candidates
                .iter()
                .all(|c| c.kind == CandidateKind::Relay)
        );
        assert!(inv.flags.contains(in8_artifact::Flags::RELAY_ALLOWED));

        let mut join = bob.join(invite.invitation()).await.unwrap();
        let rsvp = loop {
            match join.next().await.unwrap() {
                JoinEvent::Phase1Failed { rsvp, .. } => break rsvp,
                JoinEvent::Connected(_) => panic!("the relay has no permission for Bob yet"),
                JoinEvent::Failed(e) => panic!("{e}"),
                _ => {}
            }
        };
        alice.accept_rsvp(&rsvp).await.unwrap();
        let bob_side = join.connected().await.unwrap();
        let alice_side = invite.joined().await.unwrap();
        assert_eq!(bob_side.phase(), Phase::Two);
        assert_eq!(
            alice_side.path().kind,
            CandidateKind::Relay,
            "{:?}",
            alice_side.path()
        );
        assert_eq!(
            bob_side.path().kind,
            CandidateKind::Relay,
            "{:?}",
            bob_side.path()
        );

        let ch = bob_side
            .open_channel(ChannelOptions::reliable("relayed"))
            .await
            .unwrap();
        ch.send(vec![7u8; 10_000]).await.unwrap();
        let theirs = alice_side.accept_channel().await.unwrap();
        assert_eq!(theirs.recv().await.unwrap().unwrap().len(), 10_000);
        theirs.send(&b"back through the relay"[..]).await.unwrap();
        assert_eq!(
            &ch.recv().await.unwrap().unwrap()[..],
            b"back through the relay"
        );
        alice.close().await;
        bob.close().await;
    });
}

#[test]
#[ignore = "needs coturn: cargo xtask interop"]
fn relay_only_needs_relays_allowed() {
    let turn = Coturn::start(CoturnConfig::loopback().unwrap(), None).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut cfg = config(3, &turn);
        cfg.allow_relay = false;
        let alice = Node::start(cfg).await.unwrap();
        let plain = alice.invite(InviteOptions::default()).await.unwrap();
        assert!(
            plain
                .invitation()
                .invitation()
                .candidates
                .iter()
                .all(|c| c.kind != CandidateKind::Relay),
            "a relay candidate was advertised without --relay"
        );
        let r = alice
            .invite(InviteOptions {
                relay_only: true,
                ..InviteOptions::default()
            })
            .await;
        assert!(matches!(r, Err(in8_core::Error::NoRelay)), "{r:?}");
    });
}
