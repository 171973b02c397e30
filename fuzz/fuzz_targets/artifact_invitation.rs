//! Arbitrary bytes into invitation decoding and full verification: no panic; anything that
//! verifies must re-encode to exactly the input.
#![no_main]

use in8_artifact::fixtures::NOW;
use in8_artifact::{NoRevocations, SignedInvitation, VerifyPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = SignedInvitation::decode(data) {
        assert_eq!(s.to_bytes(), data);
        if s.verify(NOW, &VerifyPolicy::default(), &NoRevocations).is_ok() {
            let again = s.invitation().clone();
            let _ = again.invite_id();
            let _ = s.invitation().secret.inviter_password();
        }
    }
});
