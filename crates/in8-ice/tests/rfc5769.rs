//! RFC 5769 test vectors: decode and verify with our codec and with stun-rs, re-encode byte
//! for byte with both, reject every single-bit flip, truncation and misalignment, and
//! answer unknown comprehension-required attributes with 420.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use std::net::SocketAddr;

use in8_ice::stun::{
    Class, IntegrityKey, Message, MessageWriter, Method, ParseError, TransactionId, attr,
};
use stun_rs::attributes::ice::{IceControlled, Priority};
use stun_rs::attributes::stun::{
    Fingerprint, MessageIntegrity, Nonce, Realm, Software, UserName, XorMappedAddress,
};
use stun_rs::{
    Algorithm, AlgorithmId, DecoderContextBuilder, EncoderContextBuilder, HMACKey, MessageClass,
    MessageDecoderBuilder, MessageEncoderBuilder, StunMessageBuilder, StunPadding,
};

/// RFC 5769 §2.1 Sample Request (short-term credentials, password "VOkJxbRl1RmTxUk/WvJxBt").
const REQUEST: &[u8] = &[
    0x00, 0x01, 0x00, 0x58, // Request type and message length
    0x21, 0x12, 0xa4, 0x42, // Magic cookie
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, // Transaction ID
    0x80, 0x22, 0x00, 0x10, // SOFTWARE attribute header
    0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74,
    0x00, 0x24, 0x00, 0x04, // PRIORITY attribute header
    0x6e, 0x00, 0x01, 0xff, // ICE priority value
    0x80, 0x29, 0x00, 0x08, // ICE-CONTROLLED attribute header
    0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, // Pseudo-random tie breaker
    0x00, 0x06, 0x00, 0x09, // USERNAME attribute header
    0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20,
    0x20, // "evtj:h6vY" + padding
    0x00, 0x08, 0x00, 0x14, // MESSAGE-INTEGRITY attribute header
    0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49,
    0xc1, 0xb5, 0x71, 0xa2, // HMAC-SHA1 fingerprint
    0x80, 0x28, 0x00, 0x04, // FINGERPRINT attribute header
    0xe5, 0x7a, 0x3b, 0xcf, // CRC32 fingerprint
];

/// RFC 5769 §2.2 Sample IPv4 Response (mapped address 192.0.2.1 port 32853).
const RESPONSE_V4: &[u8] = &[
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, // header
    0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72,
    0x20, // SOFTWARE "test vector"
    0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6,
    0x43, // XOR-MAPPED-ADDRESS
    0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9,
    0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, // MESSAGE-INTEGRITY
    0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96, // FINGERPRINT
];

/// RFC 5769 §2.3 Sample IPv6 Response (mapped address 2001:db8:1234:5678:11:2233:4455:6677
/// port 32853).
const RESPONSE_V6: &[u8] = &[
    0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, // header
    0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72,
    0x20, // SOFTWARE
    0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79,
    0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9, // XOR-MAPPED-ADDRESS
    0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1, 0x17, 0x84, 0xc9, 0x7c,
    0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41, // MESSAGE-INTEGRITY
    0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c, // FINGERPRINT
];

/// RFC 5769 §2.4 Sample Request with Long-Term Authentication (username "マトリックス",
/// password "TheMatrIX" after SASLprep, realm "example.org").
const LONG_TERM: &[u8] = &[
    0x00, 0x01, 0x00, 0x60, 0x21, 0x12, 0xa4, 0x42, 0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72, 0xc0,
    0x29, 0xda, 0x41, 0x2e, // header
    0x00, 0x06, 0x00, 0x12, 0xe3, 0x83, 0x9e, 0xe3, 0x83, 0x88, 0xe3, 0x83, 0xaa, 0xe3, 0x83, 0x83,
    0xe3, 0x82, 0xaf, 0xe3, 0x82, 0xb9, 0x00, 0x00, // USERNAME
    0x00, 0x15, 0x00, 0x1c, 0x66, 0x2f, 0x2f, 0x34, 0x39, 0x39, 0x6b, 0x39, 0x35, 0x34, 0x64, 0x36,
    0x4f, 0x4c, 0x33, 0x34, 0x6f, 0x4c, 0x39, 0x46, 0x53, 0x54, 0x76, 0x79, 0x36, 0x34, 0x73,
    0x41, // NONCE
    0x00, 0x14, 0x00, 0x0b, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x6f, 0x72, 0x67,
    0x00, // REALM
    0x00, 0x08, 0x00, 0x14, 0xf6, 0x70, 0x24, 0x65, 0x6d, 0xd6, 0x4a, 0x3e, 0x02, 0xb8, 0xe0, 0x71,
    0x2e, 0x85, 0xc9, 0xa2, 0x8c, 0xa8, 0x96, 0x66, // MESSAGE-INTEGRITY
];

const SHORT_PASSWORD: &str = "VOkJxbRl1RmTxUk/WvJxBt";
const LT_USER: &str = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";

fn tid(b: &[u8]) -> TransactionId {
    TransactionId(b[8..20].try_into().unwrap())
}

fn short_key() -> IntegrityKey {
    IntegrityKey::short_term(SHORT_PASSWORD)
}

fn long_key() -> IntegrityKey {
    IntegrityKey::long_term(LT_USER, "example.org", "TheMatrIX")
}

fn vectors() -> [(&'static str, &'static [u8], IntegrityKey); 4] {
    [
        ("request", REQUEST, short_key()),
        ("ipv4 response", RESPONSE_V4, short_key()),
        ("ipv6 response", RESPONSE_V6, short_key()),
        ("long-term request", LONG_TERM, long_key()),
    ]
}

#[test]
fn all_four_vectors_decode_and_verify() {
    let m = Message::parse(REQUEST).unwrap();
    assert_eq!((m.method(), m.class()), (Method::BINDING, Class::Request));
    assert!(m.has_fingerprint() && m.verify_integrity(&short_key()));
    assert_eq!(m.username(), Some(&b"evtj:h6vY"[..]));
    assert_eq!(m.priority(), Some(0x6e0001ff));
    assert_eq!(m.ice_controlled(), Some(0x932ff9b151263b36));
    assert_eq!(m.get(attr::SOFTWARE), Some(&b"STUN test client"[..]));

    let m = Message::parse(RESPONSE_V4).unwrap();
    assert!(m.has_fingerprint() && m.verify_integrity(&short_key()));
    assert_eq!(
        m.xor_mapped_address(),
        Some("192.0.2.1:32853".parse().unwrap())
    );

    let m = Message::parse(RESPONSE_V6).unwrap();
    assert!(m.has_fingerprint() && m.verify_integrity(&short_key()));
    let v6: SocketAddr = "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
        .parse()
        .unwrap();
    assert_eq!(m.xor_mapped_address(), Some(v6));

    let m = Message::parse(LONG_TERM).unwrap();
    assert!(!m.has_fingerprint() && m.verify_integrity(&long_key()));
    assert_eq!(m.username(), Some(LT_USER.as_bytes()));
    assert_eq!(m.get(attr::REALM), Some(&b"example.org"[..]));
    assert_eq!(
        m.get(attr::NONCE),
        Some(&b"f//499k954d6OL34oL9FSTvy64sA"[..])
    );
    // The wrong key fails.
    assert!(
        !Message::parse(REQUEST)
            .unwrap()
            .verify_integrity(&long_key())
    );
}

#[test]
fn stun_rs_agrees_on_all_four() {
    for (name, bytes, _) in vectors() {
        let key = if name.starts_with("long") {
            let u = UserName::new(LT_USER).unwrap();
            let r = Realm::new("example.org").unwrap();
            HMACKey::new_long_term(&u, &r, "TheMatrIX", Algorithm::from(AlgorithmId::MD5)).unwrap()
        } else {
            HMACKey::new_short_term(SHORT_PASSWORD).unwrap()
        };
        let ctx = DecoderContextBuilder::default()
            .with_key(key)
            .with_validation()
            .build();
        let (_msg, n) = MessageDecoderBuilder::default()
            .with_context(ctx)
            .build()
            .decode(bytes)
            .unwrap();
        assert_eq!(n, bytes.len(), "{name}");
    }
}

fn encode_stun_rs(msg: &stun_rs::StunMessage, pad: Option<u8>) -> Vec<u8> {
    let enc = match pad {
        Some(p) => MessageEncoderBuilder::default()
            .with_context(
                EncoderContextBuilder::default()
                    .with_custom_padding(StunPadding::Custom(p))
                    .build(),
            )
            .build(),
        None => MessageEncoderBuilder::default().build(),
    };
    let mut buf = [0u8; 256];
    let n = enc.encode(&mut buf, msg).unwrap();
    buf[..n].to_vec()
}

#[test]
fn stun_rs_reencodes_byte_for_byte() {
    let key = HMACKey::new_short_term(SHORT_PASSWORD).unwrap();
    let t = stun_rs::TransactionId::from(<[u8; 12]>::try_from(&REQUEST[8..20]).unwrap());
    let req = StunMessageBuilder::new(stun_rs::methods::BINDING, MessageClass::Request)
        .with_transaction_id(t)
        .with_attribute(Software::new("STUN test client").unwrap())
        .with_attribute(Priority::from(0x6e0001ff))
        .with_attribute(IceControlled::from(0x932ff9b151263b36))
        .with_attribute(UserName::new("evtj:h6vY").unwrap())
        .with_attribute(MessageIntegrity::new(key.clone()))
        .with_attribute(Fingerprint::default())
        .build();
    assert_eq!(encode_stun_rs(&req, Some(0x20)), REQUEST);
    for (bytes, addr) in [
        (RESPONSE_V4, "192.0.2.1:32853"),
        (RESPONSE_V6, "[2001:db8:1234:5678:11:2233:4455:6677]:32853"),
    ] {
        let a: SocketAddr = addr.parse().unwrap();
        let resp =
            StunMessageBuilder::new(stun_rs::methods::BINDING, MessageClass::SuccessResponse)
                .with_transaction_id(t)
                .with_attribute(Software::new("test vector").unwrap())
                .with_attribute(XorMappedAddress::from(a))
                .with_attribute(MessageIntegrity::new(key.clone()))
                .with_attribute(Fingerprint::default())
                .build();
        assert_eq!(encode_stun_rs(&resp, Some(0x20)), bytes);
    }
    let u = UserName::new(LT_USER).unwrap();
    let r = Realm::new("example.org").unwrap();
    let lkey =
        HMACKey::new_long_term(&u, &r, "TheMatrIX", Algorithm::from(AlgorithmId::MD5)).unwrap();
    let t = stun_rs::TransactionId::from(<[u8; 12]>::try_from(&LONG_TERM[8..20]).unwrap());
    let lt = StunMessageBuilder::new(stun_rs::methods::BINDING, MessageClass::Request)
        .with_transaction_id(t)
        .with_attribute(u)
        .with_attribute(Nonce::new("f//499k954d6OL34oL9FSTvy64sA").unwrap())
        .with_attribute(r)
        .with_attribute(MessageIntegrity::new(lkey))
        .build();
    assert_eq!(encode_stun_rs(&lt, None), LONG_TERM);
}

#[test]
fn our_writer_reencodes_byte_for_byte() {
    let mut b = Vec::new();
    MessageWriter::new(&mut b, Method::BINDING, Class::Request, tid(REQUEST))
        .with_padding(0x20)
        .attr(attr::SOFTWARE, b"STUN test client")
        .attr_u32(attr::PRIORITY, 0x6e0001ff)
        .attr_u64(attr::ICE_CONTROLLED, 0x932ff9b151263b36)
        .attr(attr::USERNAME, b"evtj:h6vY")
        .integrity(&short_key())
        .fingerprint();
    assert_eq!(b, REQUEST);
    for (bytes, addr) in [
        (RESPONSE_V4, "192.0.2.1:32853"),
        (RESPONSE_V6, "[2001:db8:1234:5678:11:2233:4455:6677]:32853"),
    ] {
        let mut b = Vec::new();
        MessageWriter::new(&mut b, Method::BINDING, Class::Success, tid(bytes))
            .with_padding(0x20)
            .attr(attr::SOFTWARE, b"test vector")
            .xor_address(attr::XOR_MAPPED_ADDRESS, addr.parse().unwrap())
            .integrity(&short_key())
            .fingerprint();
        assert_eq!(b, bytes);
    }
    let mut b = Vec::new();
    MessageWriter::new(&mut b, Method::BINDING, Class::Request, tid(LONG_TERM))
        .attr(attr::USERNAME, LT_USER.as_bytes())
        .attr(attr::NONCE, b"f//499k954d6OL34oL9FSTvy64sA")
        .attr(attr::REALM, b"example.org")
        .integrity(&long_key());
    assert_eq!(b, LONG_TERM);
}

/// Accepted as an ICE agent accepts: parses, MESSAGE-INTEGRITY verifies, and FINGERPRINT is
/// present when the vector has one (a flip that turns FINGERPRINT into an unknown
/// comprehension-optional attribute after MESSAGE-INTEGRITY makes it ignored, RFC 8489 §14.5,
/// and the agent then refuses the check for lacking FINGERPRINT).
fn accepted(bytes: &[u8], key: &IntegrityKey, fingerprint: bool) -> bool {
    Message::parse(bytes)
        .is_ok_and(|m| m.verify_integrity(key) && m.has_fingerprint() == fingerprint)
}

#[test]
fn every_single_bit_flip_is_rejected() {
    for (name, bytes, key) in vectors() {
        let fp = !name.starts_with("long");
        assert!(accepted(bytes, &key, fp));
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.to_vec();
            b[i / 8] ^= 1 << (i % 8);
            assert!(!accepted(&b, &key, fp), "{name}: flip of bit {i} accepted");
        }
    }
}

#[test]
fn truncation_and_misalignment_are_rejected() {
    for (name, bytes, _) in vectors() {
        for n in 0..bytes.len() {
            assert!(
                Message::parse(&bytes[..n]).is_err(),
                "{name}: {n}-byte prefix"
            );
        }
        // A length field that is not a multiple of 4.
        let mut b = bytes.to_vec();
        b[3] = b[3].wrapping_sub(1);
        assert_eq!(
            Message::parse(&b).unwrap_err(),
            ParseError::Misaligned,
            "{name}"
        );
        // An attribute length running past the end.
        let mut b = bytes.to_vec();
        b[22] = 0xff;
        assert!(
            matches!(Message::parse(&b), Err(ParseError::TruncatedAttribute(_))),
            "{name}"
        );
    }
    assert_eq!(
        Message::parse(&REQUEST[..19]).unwrap_err(),
        ParseError::TooShort
    );
}

#[test]
fn unknown_comprehension_required_attribute_gets_420() {
    use in8_ice::{Agent, Config, Credentials, LocalCandidate, Role};
    let local = Credentials {
        ufrag: "evtj".into(),
        password: SHORT_PASSWORD.into(),
    };
    let mut a = Agent::new(Config::default(), Role::Controlling, local, 1);
    a.set_remote_credentials(Credentials {
        ufrag: "h6vY".into(),
        password: "another-password-0123456".into(),
    });
    let here: SocketAddr = "192.0.2.1:3478".parse().unwrap();
    a.add_local_candidate(LocalCandidate::host(here, 0))
        .unwrap();
    let mut b = Vec::new();
    MessageWriter::new(
        &mut b,
        Method::BINDING,
        Class::Request,
        TransactionId([3; 12]),
    )
    .attr(attr::USERNAME, b"evtj:h6vY")
    .attr_u32(attr::PRIORITY, 1)
    .attr_u64(attr::ICE_CONTROLLED, 1)
    .attr(0x7f01, b"??")
    .attr(0xc001, b"optional: ignored")
    .integrity(&short_key())
    .fingerprint();
    let from: SocketAddr = "192.0.2.2:1000".parse().unwrap();
    let now = std::time::Instant::now();
    a.handle_timeout(now);
    assert!(a.handle_packet(now, from, here, &b).is_err());
    let t = a.poll_transmit().unwrap();
    let r = Message::parse(&t.contents).unwrap();
    assert_eq!(r.error_code().map(|e| e.0), Some(420));
    assert_eq!(r.get(attr::UNKNOWN_ATTRIBUTES), Some(&[0x7f, 0x01][..]));
    assert!(r.verify_integrity(&short_key()));
    // Only a comprehension-optional unknown attribute: processed normally.
    let mut b = Vec::new();
    MessageWriter::new(
        &mut b,
        Method::BINDING,
        Class::Request,
        TransactionId([4; 12]),
    )
    .attr(attr::USERNAME, b"evtj:h6vY")
    .attr_u32(attr::PRIORITY, 1)
    .attr_u64(attr::ICE_CONTROLLED, 1)
    .attr(0xc001, b"optional: ignored")
    .integrity(&short_key())
    .fingerprint();
    a.handle_packet(now, from, here, &b).unwrap();
    let r = a.poll_transmit().unwrap();
    let r = Message::parse(&r.contents).unwrap();
    assert_eq!(r.class(), Class::Success);
}
