//! Artifact benchmarks: encode+sign, decode+verify, text forms. Results: docs/results/artifact.md.

use criterion::{Criterion, criterion_group, criterion_main};
use in8_artifact::fixtures::{NOW, alice, invitation, signed_invitation, signed_rsvp};
use in8_artifact::text::{self, Form, grouped};
use in8_artifact::{NoRevocations, SignedInvitation, SignedRsvp, VerifyPolicy};
use std::hint::black_box;

fn artifact(c: &mut Criterion) {
    let me = alice();
    let inv = invitation();
    let signed = signed_invitation();
    let bytes = signed.to_bytes().to_vec();
    let policy = VerifyPolicy::default();

    let mut g = c.benchmark_group("invitation");
    g.bench_function("encode+sign", |b| {
        b.iter(|| black_box(inv.clone().sign(&me)))
    });
    g.bench_function("decode", |b| {
        b.iter(|| black_box(SignedInvitation::decode(&bytes)))
    });
    g.bench_function("decode+verify", |b| {
        b.iter(|| {
            let s = SignedInvitation::decode(black_box(&bytes)).ok()?;
            s.verify(NOW, &policy, &NoRevocations).ok().map(|i| i.uses)
        })
    });
    g.finish();

    let rsvp = signed_rsvp().to_bytes().to_vec();
    c.bench_function("rsvp/decode+verify", |b| {
        b.iter(|| {
            let s = SignedRsvp::decode(black_box(&rsvp)).ok()?;
            s.verify(&inv, NOW, &policy).ok().map(|r| r.expires)
        })
    });

    let mut g = c.benchmark_group("text");
    for form in [Form::Text, Form::Base32, Form::Grouped, Form::Ndef] {
        let enc = text::encode(&bytes, form);
        g.bench_function(format!("{form}/encode"), |b| {
            b.iter(|| black_box(text::encode(&bytes, form)))
        });
        g.bench_function(format!("{form}/decode"), |b| {
            b.iter(|| black_box(text::decode_any(&enc)))
        });
    }
    let words = grouped::encode(&bytes);
    g.bench_function("words/decode-direct", |b| {
        b.iter(|| black_box(grouped::decode(&words)))
    });
    g.finish();

    c.bench_function("qr/build", |b| {
        b.iter(|| black_box(in8_artifact::qr::Qr::new(&bytes).map(|q| q.version())))
    });
}

criterion_group!(benches, artifact);
criterion_main!(benches);
