//! Arbitrary bytes into the transport's own decoders: join proof, join verdict, DCEP.
//! Whatever decodes re-encodes to the same bytes (DCEP: up to the ignored reliability
//! parameter of reliable channels).
#![no_main]

use in8_artifact::fixtures;
use in8_transport::JoinProof;
use in8_transport::dcep::Message;
use in8_transport::join::{decode_verdict, encode_verdict};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = JoinProof::decode(data) {
        assert_eq!(&p.to_bytes()[..], data);
        let _ = p.verify(&fixtures::invitation(), &[0; 32]);
    }
    if let Ok(v) = decode_verdict(data) {
        assert_eq!(&encode_verdict(v)[..], data);
    }
    if let Ok(m) = Message::decode(data) {
        let again = m.encode().expect("decoded messages re-encode");
        assert_eq!(Message::decode(&again).expect("re-decodes"), m);
    }
});
