//! Arbitrary bytes into RSVP decoding and verification against the sample invitation.
#![no_main]

use in8_artifact::fixtures::{NOW, invitation};
use in8_artifact::{SignedRsvp, VerifyPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = SignedRsvp::decode(data) {
        assert_eq!(s.to_bytes(), data);
        let _ = s.verify(&invitation(), NOW, &VerifyPolicy::default());
    }
});
