//! Arbitrary bytes into membership and revocation decoding and chain verification.
#![no_main]

use in8_artifact::fixtures::NOW;
use in8_artifact::{NoRevocations, SignedMembership, SignedRevocation, VerifyPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = SignedMembership::decode(data) {
        let _ = m.verify(NOW, &VerifyPolicy::default(), &NoRevocations);
    }
    if let Ok(r) = SignedRevocation::decode(data) {
        let _ = r.verify(NOW, &VerifyPolicy::default());
    }
});
