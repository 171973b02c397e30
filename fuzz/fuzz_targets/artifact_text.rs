//! Arbitrary input into every text-form parser (in8: base64url, IN8: base32, grouped,
//! NDEF, node ids) and the any-form artifact parser: no panic, and text that decodes to an
//! artifact envelope (first byte 0x82 / 0x83) re-encodes to the same bytes in its form.
#![no_main]

use in8_artifact::text::{self, grouped, ndef};
use in8_artifact::{Artifact, NodeId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Artifact::parse(data);
    let _ = ndef::decode(data);
    if let Ok(s) = core::str::from_utf8(data) {
        if let Ok((bytes, form)) = text::decode_text(s)
            && matches!(bytes.first(), Some(0x82 | 0x83))
        {
            let again = text::encode(&bytes, form);
            assert_eq!(text::decode_any(&again).map(|(b, _)| b).ok(), Some(bytes));
        }
        if let Ok(bytes) = grouped::decode(s) {
            assert_eq!(grouped::decode(&grouped::encode(&bytes)).ok(), Some(bytes));
        }
        if let Ok(id) = s.parse::<NodeId>() {
            assert_eq!(id.to_string().parse::<NodeId>().ok(), Some(id));
        }
    }
});
