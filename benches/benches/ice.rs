//! in8-ice: authenticated STUN Binding requests processed per second on one core — parse,
//! USERNAME lookup, MESSAGE-INTEGRITY and FINGERPRINT checked on the request, success
//! response with XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY and FINGERPRINT — through the
//! in8 endpoint, next to a naive stun-rs responder doing the same work.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench harness

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use in8_artifact::{InviteSecret, fixtures};
use in8_ice::stun::{Class, IntegrityKey, MessageWriter, Method, TransactionId, attr};
use in8_ice::{Endpoint, EndpointConfig, LocalCandidate};

const SERVER: &str = "127.0.0.1:3478";
const CLIENT: &str = "127.0.0.1:40000";

/// An authenticated check from the invitee to the inviter, as browsers and aioice send it.
fn check(inviter_ufrag: &str, password: &str) -> Vec<u8> {
    let mut b = Vec::new();
    MessageWriter::new(
        &mut b,
        Method::BINDING,
        Class::Request,
        TransactionId([7; 12]),
    )
    .attr(
        attr::USERNAME,
        format!("{inviter_ufrag}:benchufr").as_bytes(),
    )
    .attr_u32(attr::PRIORITY, 0x6e00_01ff)
    .attr_u64(attr::ICE_CONTROLLING, 0x1234_5678_9abc_def0)
    .attr(attr::USE_CANDIDATE, &[])
    .integrity(&IntegrityKey::short_term(password))
    .fingerprint();
    b
}

fn endpoint_with_session(req: &[u8], now: Instant) -> Endpoint {
    let mut inv = fixtures::invitation();
    inv.secret = InviteSecret::from_bytes(&[9; 16]).unwrap();
    let mut e = Endpoint::new(EndpointConfig::default(), 1);
    e.add_local_candidate(LocalCandidate::host(SERVER.parse().unwrap(), 0));
    e.listen(&inv).unwrap();
    let (from, to): (SocketAddr, SocketAddr) = (CLIENT.parse().unwrap(), SERVER.parse().unwrap());
    e.handle_packet(now, from, to, req).unwrap();
    while e.poll_transmit().is_some() {}
    while e.poll_event().is_some() {}
    e
}

fn bench(c: &mut Criterion) {
    let mut inv = fixtures::invitation();
    inv.secret = InviteSecret::from_bytes(&[9; 16]).unwrap();
    let (ufrag, pwd) = (inv.secret.inviter_ufrag(), inv.secret.inviter_password());
    let req = check(&ufrag, &pwd);
    let (from, to): (SocketAddr, SocketAddr) = (CLIENT.parse().unwrap(), SERVER.parse().unwrap());
    let now = Instant::now();

    let mut g = c.benchmark_group("ice/authenticated-binding");
    g.throughput(Throughput::Elements(1));
    let mut e = endpoint_with_session(&req, now);
    g.bench_function("in8-endpoint", |b| {
        b.iter(|| {
            e.handle_packet(now, from, to, black_box(&req)).unwrap();
            let mut n = 0;
            while let Some(t) = e.poll_transmit() {
                n += t.contents.len();
            }
            black_box(n)
        })
    });

    // The naive way: decode with stun-rs (key known up front, validation on), encode the
    // response with stun-rs (its HMAC recomputes the key pads per message).
    use stun_rs::attributes::stun::{Fingerprint, MessageIntegrity, XorMappedAddress};
    use stun_rs::{
        DecoderContextBuilder, HMACKey, MessageClass, MessageDecoderBuilder, MessageEncoderBuilder,
        StunMessageBuilder,
    };
    let key = HMACKey::new_short_term(&pwd).unwrap();
    let dec = MessageDecoderBuilder::default()
        .with_context(
            DecoderContextBuilder::default()
                .with_key(key.clone())
                .with_validation()
                .build(),
        )
        .build();
    let enc = MessageEncoderBuilder::default().build();
    g.bench_function("naive-stun-rs", |b| {
        let mut out = [0u8; 256];
        b.iter(|| {
            let (msg, _) = dec.decode(black_box(&req)).unwrap();
            let resp =
                StunMessageBuilder::new(stun_rs::methods::BINDING, MessageClass::SuccessResponse)
                    .with_transaction_id(*msg.transaction_id())
                    .with_attribute(XorMappedAddress::from(from))
                    .with_attribute(MessageIntegrity::new(key.clone()))
                    .with_attribute(Fingerprint::default())
                    .build();
            black_box(enc.encode(&mut out, &resp).unwrap())
        })
    });
    g.finish();

    // Where the time goes: the pieces of the in8 path on their own.
    let mut g = c.benchmark_group("ice/pieces");
    g.throughput(Throughput::Elements(1));
    let k = IntegrityKey::short_term(&pwd);
    g.bench_function("parse", |b| {
        b.iter(|| {
            in8_ice::stun::Message::parse(black_box(&req))
                .unwrap()
                .has_fingerprint()
        })
    });
    let m = in8_ice::stun::Message::parse(&req).unwrap();
    g.bench_function("verify-mi-precomputed-key", |b| {
        b.iter(|| black_box(&m).verify_integrity(&k))
    });
    g.bench_function("verify-mi-key-setup-each-time", |b| {
        b.iter(|| black_box(&m).verify_integrity(&IntegrityKey::short_term(black_box(&pwd))))
    });
    g.bench_function("write-response", |b| {
        let mut buf = Vec::with_capacity(128);
        b.iter(|| {
            buf.clear();
            MessageWriter::new(
                &mut buf,
                Method::BINDING,
                Class::Success,
                TransactionId([7; 12]),
            )
            .xor_address(attr::XOR_MAPPED_ADDRESS, from)
            .integrity(&k)
            .fingerprint();
            black_box(buf.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
