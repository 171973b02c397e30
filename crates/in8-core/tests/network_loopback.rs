//! A small network over real sockets on loopback: joins with invitations (the second one
//! issued by a member), the overlay on live DTLS / SCTP sessions, an introduction punching
//! through the in-process filtering shim, broadcast, messages and channels to a member.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use std::time::Duration;

use in8_artifact::Identity;
use in8_core::{
    Config, InboundFilter, InviteOptions, JoinEvent, NetEvent, NetUpdate, Node, Topology,
};
use in8_ice::nat::{Filtering, Mapping, NatClass, PortAllocation};
use in8_transport::ChannelOptions;

const LIMIT: Duration = Duration::from_secs(30);

fn class(filtering: Filtering) -> NatClass {
    NatClass {
        mapping: Some(if filtering == Filtering::EndpointIndependent {
            Mapping::NoNat
        } else {
            Mapping::EndpointIndependent
        }),
        filtering: Some(filtering),
        ports: PortAllocation::Preserving,
    }
}

async fn node(seed: u8, filtered: bool) -> Node {
    let mut cfg = Config::loopback(Identity::from_seed(&[seed; 32]));
    if filtered {
        // Drops what it did not ask for, as a port-restricted NAT: reachable only when it
        // sends first — that is, through an introduction.
        cfg.inbound_filter = Some(InboundFilter::AddressAndPortDependent);
        cfg.assume_nat = Some(class(Filtering::AddressAndPortDependent));
    } else {
        cfg.assume_nat = Some(class(Filtering::EndpointIndependent));
    }
    // Only the hub's links: the link between the two filtered nodes exists only because
    // the application asks for it.
    cfg.network.topology = Topology::Fixed(in8_topology::Policy::Star { hubs: 1 });
    cfg.network.dial_timeout = Duration::from_secs(3);
    cfg.ice.agent.connect_timeout = Duration::from_secs(3);
    Node::start(cfg).await.unwrap()
}

/// `joiner` joins with an invitation from `inviter` (naming one entry peer) and waits
/// until it is a member.
async fn join(joiner: &Node, inviter: &Node) {
    let network = inviter.network_id().await.unwrap();
    let mut events = joiner.events();
    let options = InviteOptions {
        entry_peers: 1,
        ..InviteOptions::default()
    };
    let invite = inviter.invite(options).await.unwrap();
    let mut j = joiner.join(invite.invitation()).await.unwrap();
    loop {
        match j.next().await.unwrap() {
            JoinEvent::Connected(_) => break,
            JoinEvent::Failed(e) => panic!("{e}"),
            JoinEvent::Phase1Failed { reason, .. } => panic!("phase 1 failed: {reason}"),
            _ => {}
        }
    }
    while let Some(u) = events.next().await {
        if matches!(u, NetUpdate::Event(NetEvent::Member { network: n, .. }) if n == network) {
            return;
        }
    }
    panic!("no membership");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_introduction_punches_through_the_filter_and_the_network_carries_data() {
    let run = async {
        let hub = node(61, false).await;
        let f1 = node(62, true).await;
        let f2 = node(63, true).await;
        join(&f1, &hub).await;
        // The second newcomer is invited by a member behind the filter: one-way it reaches
        // only the entry peer the invitation names (the hub), which admits it.
        let hub_side = hub.clone();
        join(&f2, &f1).await;
        let cred = f2.credential().await.unwrap();
        assert_eq!(cred.membership().issuer, hub.node_id());
        assert_eq!(cred.membership().network, hub.network_id().await.unwrap());
        // Everyone learns everyone.
        loop {
            let m = f1.members().await.unwrap();
            if m.iter().filter(|m| m.online).count() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // f1 wants a link to f2: f2's filter drops a direct attempt, the hub introduces
        // them, both punch at once.
        let mut f2_channels = f2.clone();
        let link = f1.connect_member(f2.node_id()).await.unwrap();
        let links = f1.links().await.unwrap();
        let (_, info) = links.iter().find(|(p, _)| *p == f2.node_id()).unwrap();
        assert_eq!(info.introducer, Some(hub.node_id()), "{info:?}");
        // A channel to the member, and its messages.
        let ch = link
            .open_channel(ChannelOptions::reliable("notes"))
            .await
            .unwrap();
        ch.send(&b"through the punched hole"[..]).await.unwrap();
        let (from, theirs) = f2_channels.accept_channel().await.unwrap();
        assert_eq!(from, f1.node_id());
        assert_eq!(
            &theirs.recv().await.unwrap().unwrap()[..],
            b"through the punched hole"
        );
        let mut f2_events = f2.events();
        f1.send_to(f2.node_id(), b"direct".to_vec()).await.unwrap();
        hub_side.broadcast(b"to all".to_vec()).await.unwrap();
        let (mut msg, mut bc) = (false, false);
        while !(msg && bc) {
            match f2_events.next().await.unwrap() {
                NetUpdate::Event(NetEvent::Message { from, payload }) => {
                    assert_eq!((from, &payload[..]), (f1.node_id(), &b"direct"[..]));
                    msg = true;
                }
                NetUpdate::Event(NetEvent::Broadcast {
                    origin, payload, ..
                }) => {
                    assert_eq!((origin, &payload[..]), (hub.node_id(), &b"to all"[..]));
                    bc = true;
                }
                _ => {}
            }
        }
        f2_channels = f2.clone();
        drop(f2_channels);
        for n in [&hub, &f1, &f2] {
            n.close().await;
        }
    };
    tokio::time::timeout(LIMIT, run).await.unwrap();
}
