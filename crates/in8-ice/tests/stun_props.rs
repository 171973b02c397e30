//! Property tests of the STUN codec: what [`MessageWriter`] writes, [`Message::parse`] reads
//! back attribute for attribute with MESSAGE-INTEGRITY and FINGERPRINT valid, and stun-rs
//! (an independent codec) decodes and validates it too; arbitrary bytes never panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use std::net::SocketAddr;

use in8_ice::stun::{Class, IntegrityKey, Message, MessageWriter, Method, TransactionId, attr};
use proptest::prelude::*;

fn class() -> impl Strategy<Value = Class> {
    prop_oneof![
        Just(Class::Request),
        Just(Class::Indication),
        Just(Class::Success),
        Just(Class::Error)
    ]
}

proptest! {
    #[test]
    fn write_then_parse(
        method in 0u16..0x1000,
        class in class(),
        tid in any::<[u8; 12]>(),
        // Comprehension-optional types in 0xC000.. so nothing collides with known ones.
        attrs in proptest::collection::vec((0xC000u16..0xFFFF, proptest::collection::vec(any::<u8>(), 0..40)), 0..8),
        addr in any::<([u8; 4], u16)>(),
        password in "[a-zA-Z0-9+/]{22,32}",
    ) {
        let key = IntegrityKey::short_term(&password);
        let mapped = SocketAddr::from((addr.0, addr.1));
        let mut b = Vec::new();
        let mut w = MessageWriter::new(&mut b, Method(method), class, TransactionId(tid));
        for (t, v) in &attrs {
            w.attr(*t, v);
        }
        w.xor_address(attr::XOR_MAPPED_ADDRESS, mapped).integrity(&key).fingerprint();
        let m = Message::parse(&b).unwrap();
        prop_assert_eq!((m.method(), m.class(), m.transaction_id()), (Method(method), class, TransactionId(tid)));
        prop_assert!(m.verify_integrity(&key) && m.has_fingerprint());
        prop_assert_eq!(m.xor_mapped_address(), Some(mapped));
        for (t, _) in &attrs {
            // The first occurrence of each type is what get() returns.
            let first = attrs.iter().find(|(u, _)| u == t).map(|(_, v)| v.as_slice());
            prop_assert_eq!(m.get(*t), first);
        }
        // stun-rs decodes and validates the same bytes.
        let ctx = stun_rs::DecoderContextBuilder::default()
            .with_key(stun_rs::HMACKey::new_short_term(&password).unwrap())
            .with_validation()
            .build();
        let dec = stun_rs::MessageDecoderBuilder::default().with_context(ctx).build();
        let (sm, n) = dec.decode(&b).unwrap();
        prop_assert_eq!(n, b.len());
        prop_assert_eq!(sm.transaction_id().as_bytes(), &tid);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(m) = Message::parse(&bytes) {
            let _ = m.verify_integrity(&IntegrityKey::short_term("x"));
            let _ = (m.xor_mapped_address(), m.error_code(), m.priority(), m.username());
        }
    }

    #[test]
    fn stun_header_then_garbage_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut b = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42];
        b.extend_from_slice(&[7; 12]);
        let len = (tail.len() & !3) as u16;
        b[2..4].copy_from_slice(&len.to_be_bytes());
        b.extend_from_slice(&tail[..len as usize]);
        let _ = Message::parse(&b).map(|m| m.verify_integrity(&IntegrityKey::short_term("x")));
    }
}
