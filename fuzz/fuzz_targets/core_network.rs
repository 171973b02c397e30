//! Arbitrary frames on a member's link into the real core of another (two nodes joined in
//! the deterministic harness), interleaved with time: no panic, no output beyond the
//! core's bounds, and the honest member's link is the only one it keeps. Input: records
//! `[time step (100 ms units), len, bytes...]`, each sent as one frame on the network
//! channel (a GOSSIP frame around it when the first byte is odd, so the fuzzer reaches the
//! gossip layer behind the network frame).
#![no_main]

use std::time::Duration;

use in8_core::harness::{Harness, Site};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut h = Harness::new(1);
    let a = h.add_node(Site::Public);
    let b = h.add_node(Site::Public);
    let Ok(inv) = h.invite(a) else { return };
    if h.join(b, &inv).is_err() {
        return;
    }
    if !h.run_until(Duration::from_secs(10), |h| h.links_of(a) == [b]) {
        return;
    }
    let aid = h.id(a);
    let mut rest = data;
    while let [step, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (body, next) = tail.split_at(n);
        rest = next;
        let frame = if step % 2 == 1 {
            let mut f = vec![in8_core::proto::wire::NET_WIRE_VERSION, 0x03];
            f.extend_from_slice(body);
            f
        } else {
            body.to_vec()
        };
        if !h.send_raw(b, &aid, frame) {
            break;
        }
        h.run_for(Duration::from_millis(100 * u64::from(step / 2 % 8)));
    }
    h.run_for(Duration::from_secs(2));
    assert_eq!(h.nodes[a].core.overflow(), 0);
    assert!(h.nodes[a].core.members().len() <= 1);
});
