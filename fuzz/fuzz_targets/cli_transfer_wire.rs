//! Arbitrary bytes into the `in8 send` / `in8 recv` header decoders (docs/cli.md, "File
//! transfer wire format"): no panic, an accepted offer has a plain file name and re-encodes
//! to the same bytes, an accepted answer re-decodes to itself. The CLI is a binary crate, so
//! its std-only wire module is included here as it is.
#![no_main]

#[allow(dead_code, unreachable_pub)]
#[path = "../../crates/in8-cli/src/cmd/transfer/wire.rs"]
mod wire;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(prefix_len) = wire::Offer::len_from_prefix(data) {
        assert!(prefix_len <= wire::MAX_OFFER);
    }
    if let Ok((offer, n)) = wire::Offer::decode(data) {
        assert!(n <= wire::MAX_OFFER);
        assert!(wire::check_name(&offer.name).is_ok());
        assert!(!offer.name.contains(['/', '\\']) && offer.name != "..");
        assert_eq!(offer.encode().expect("decoded offers re-encode"), &data[..n]);
    }
    if let Ok((answer, n)) = wire::Answer::decode(data) {
        assert!(n <= wire::MAX_ANSWER);
        let again = answer.encode();
        assert_eq!(wire::Answer::decode(&again), Ok((answer, again.len())));
    }
});
