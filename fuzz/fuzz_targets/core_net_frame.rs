//! Arbitrary bytes into the network channel's decoders (frames and broadcast payloads) and
//! the member-session ufrag parser: no panic, and anything that decodes re-encodes to
//! exactly the input (one encoding per value).
#![no_main]

use in8_core::proto::wire::{Broadcast, NetFrame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = NetFrame::decode(data) {
        assert_eq!(f.encode(), data);
    }
    if let Ok(p) = Broadcast::decode(data) {
        assert_eq!(p.encode(), data);
    }
    if let Some((id, token)) = in8_artifact::parse_caller_ufrag(data) {
        assert_eq!(
            in8_artifact::caller_ufrag(&id, token).as_bytes(),
            &data.to_ascii_lowercase()[..]
        );
    }
});
