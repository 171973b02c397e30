//! Arbitrary frames into an authenticated gossip node, from an admitted neighbour and from
//! a stranger, interleaved with timer runs: no panic, bounded views and queues, and no
//! state for the stranger.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use in8_artifact::fixtures::NOW;
use in8_gossip::fixtures::{candidates, credential, identity};
use in8_gossip::wire::Frame;
use in8_gossip::{Config, Gossip, NatClass, Setup, Time};
use libfuzzer_sys::fuzz_target;

fn node(i: u8) -> Gossip {
    Gossip::new(
        Config::default(),
        Setup {
            identity: identity(i),
            credential: credential(i),
            candidates: candidates(i),
            nat: NatClass::Public,
            record_ttl: Duration::from_secs(3600),
            seed: [i; 32],
            wall_epoch: NOW,
        },
    )
    .expect("fixture node")
}

/// Node 1 with node 2 already admitted as a neighbour (its JOIN was handled).
fn base() -> &'static Vec<u8> {
    static JOIN: OnceLock<Vec<u8>> = OnceLock::new();
    JOIN.get_or_init(|| {
        Frame::Join {
            record: in8_gossip::fixtures::record(2),
        }
        .encode()
    })
}

fuzz_target!(|data: &[u8]| {
    let mut g = node(1);
    let friend = identity(2).node_id();
    let stranger = identity(9).node_id();
    let mut now = Time::ZERO;
    let _ = g.handle_message(now, friend, base());
    // Split the input into frames at 0xFE separators; alternate senders.
    for (k, frame) in data.split(|b| *b == 0xFE).enumerate() {
        now = now + Duration::from_millis(50);
        let from = if k % 3 == 2 { stranger } else { friend };
        let _ = g.handle_message(now, from, frame);
        if k % 4 == 3 {
            g.handle_timeout(now + Duration::from_secs(5));
        }
        while g.poll_transmit().is_some() {}
        while g.poll_event().is_some() {}
    }
    let core = g.core();
    assert!(core.active_len() <= core.config().active_view + core.config().max_pinned);
    assert!(core.passive_view().count() <= core.config().passive_view);
    assert!(!core.knows(stranger) || g.peer_record(&stranger).is_some());
});
