//! Arbitrary bytes into the gossip frame decoder: no panic, and anything that decodes
//! re-encodes to exactly the input (one encoding per value).
#![no_main]

use in8_gossip::wire::Frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = Frame::decode(data) {
        assert_eq!(f.encode(), data);
    }
});
