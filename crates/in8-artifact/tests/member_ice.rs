//! Member-session ICE credentials (docs/artifact.md "Member sessions"): a pinned vector,
//! both sides agreeing for any pair, and the caller ufrag's round trip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use in8_artifact::{Identity, NetworkId, caller_ufrag, make_token, parse_caller_ufrag, token_time};
use proptest::prelude::*;

#[test]
fn pinned_vector() {
    let (a, b) = (Identity::from_seed(&[1; 32]), Identity::from_seed(&[2; 32]));
    let network = NetworkId::derive(&a.node_id(), 9);
    let token = make_token(1_800_000_000, 42);
    // Unix time in the high 32 bits, the random bits below.
    assert_eq!(token, 0x6b49_d200_0000_002a);
    let ice = a.pair_secret(&b.node_id()).unwrap().member_ice(
        &network,
        &a.node_id(),
        &b.node_id(),
        token,
    );
    // The caller's ufrag: base32 of its node id ‖ token (64 characters).
    assert_eq!(ice.caller_ufrag, caller_ufrag(&a.node_id(), token));
    assert_eq!(ice.caller_ufrag, CALLER_UFRAG);
    assert_eq!(ice.callee_ufrag, CALLEE_UFRAG);
    assert_eq!(ice.caller_pwd, CALLER_PWD);
    assert_eq!(ice.callee_pwd, CALLEE_PWD);
}

// The 32-byte node id (its first 52 characters) and the token (the last 12: the time
// 0x6b49d200 and the random 0x0000002a).
const CALLER_UFRAG: &str = "rkeohxlubhyzl7ks3mwtzos5olfgocn7dwkbeg7toseadnapn5ogwsosaaaaaabk";
// HKDF-SHA256 over X25519(a, B), labels and context as in docs/artifact.md.
const CALLEE_UFRAG: &str = "aptuv3k4";
const CALLER_PWD: &str = "Xmh/u/PYoJUwTFNYLNyeD+ea";
const CALLEE_PWD: &str = "0Sm/21EiImcdDCW4+H7HbpFD";

proptest! {
    #[test]
    fn both_sides_agree_and_the_ufrag_round_trips(sa in any::<[u8; 32]>(), sb in any::<[u8; 32]>(), nonce in any::<u64>(), t in any::<u32>(), r in any::<u32>()) {
        prop_assume!(sa != sb);
        let (a, b) = (Identity::from_seed(&sa), Identity::from_seed(&sb));
        let network = NetworkId::derive(&a.node_id(), nonce);
        let token = make_token(u64::from(t), r);
        prop_assert_eq!(token_time(token), u64::from(t));
        let x = a.pair_secret(&b.node_id()).unwrap().member_ice(&network, &a.node_id(), &b.node_id(), token);
        let y = b.pair_secret(&a.node_id()).unwrap().member_ice(&network, &a.node_id(), &b.node_id(), token);
        prop_assert_eq!(&x, &y);
        prop_assert_eq!(parse_caller_ufrag(x.caller_ufrag.as_bytes()), Some((a.node_id(), token)));
    }

    #[test]
    fn arbitrary_ufrags_never_panic(b in proptest::collection::vec(any::<u8>(), 0..100)) {
        if let Some((id, tok)) = parse_caller_ufrag(&b) {
            let again = caller_ufrag(&id, tok);
            prop_assert_eq!(again.as_bytes(), &b.to_ascii_lowercase()[..]);
        }
    }
}
