//! Strict decoding: every way an encoding can deviate from deterministic CBOR or from the
//! schema is rejected with its own error, and no input makes the decoder panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use in8_artifact::fixtures::{NOW, signed_invitation};
use in8_artifact::{Error, NoRevocations, SignedInvitation, VerifyPolicy};
use minicbor::Decoder;
use rand::{Rng, SeedableRng};

/// The envelope's body bytes and signature of the sample invitation.
fn parts() -> (Vec<u8>, Vec<u8>) {
    let bytes = signed_invitation().to_bytes().to_vec();
    let mut d = Decoder::new(&bytes);
    assert_eq!(d.array().unwrap(), Some(2));
    let body = d.bytes().unwrap().to_vec();
    let sig = d.bytes().unwrap().to_vec();
    (body, sig)
}

/// The body's fields as (key, raw CBOR value) pairs.
fn fields() -> Vec<(u64, Vec<u8>)> {
    let (body, _) = parts();
    let mut d = Decoder::new(&body);
    let n = d.map().unwrap().unwrap();
    (0..n)
        .map(|_| {
            let k = d.u64().unwrap();
            let start = d.position();
            d.skip().unwrap();
            (k, body[start..d.position()].to_vec())
        })
        .collect()
}

fn enc(f: impl FnOnce(&mut minicbor::Encoder<Vec<u8>>)) -> Vec<u8> {
    let mut e = minicbor::Encoder::new(Vec::new());
    f(&mut e);
    e.into_writer()
}

fn body_of(fields: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut b = enc(|e| {
        e.map(fields.len() as u64).unwrap();
    });
    for (k, v) in fields {
        b.extend(enc(|e| {
            e.u64(*k).unwrap();
        }));
        b.extend_from_slice(v);
    }
    b
}

fn envelope(body: &[u8]) -> Vec<u8> {
    let (_, sig) = parts();
    enc(|e| {
        e.array(2)
            .unwrap()
            .bytes(body)
            .unwrap()
            .bytes(&sig)
            .unwrap();
    })
}

fn decode_fields(f: &[(u64, Vec<u8>)]) -> Result<SignedInvitation, Error> {
    SignedInvitation::decode(&envelope(&body_of(f)))
}

#[test]
fn reencoding_the_fields_reproduces_the_body() {
    let (body, _) = parts();
    assert_eq!(body_of(&fields()), body);
    decode_fields(&fields()).unwrap();
}

#[test]
fn trailing_bytes_are_rejected_outside_and_inside() {
    let mut outer = signed_invitation().to_bytes().to_vec();
    outer.push(0);
    assert!(matches!(
        SignedInvitation::decode(&outer),
        Err(Error::TrailingBytes { count: 1 })
    ));
    let mut body = parts().0;
    body.push(0);
    assert!(matches!(
        SignedInvitation::decode(&envelope(&body)),
        Err(Error::TrailingBytes { count: 1 })
    ));
}

#[test]
fn duplicate_and_unsorted_keys_are_rejected() {
    let mut f = fields();
    let dup = f[2].clone();
    f.insert(3, dup);
    assert!(matches!(
        decode_fields(&f),
        Err(Error::DuplicateKey { key: 2 })
    ));
    let mut f = fields();
    f.swap(2, 3);
    assert!(matches!(
        decode_fields(&f),
        Err(Error::UnsortedKeys {
            previous: 3,
            key: 2
        })
    ));
}

#[test]
fn indefinite_lengths_are_rejected() {
    // Indefinite-length body map.
    let mut body = vec![0xbf];
    for (k, v) in fields() {
        body.push(k as u8);
        body.extend(v);
    }
    body.push(0xff);
    assert!(matches!(
        SignedInvitation::decode(&envelope(&body)),
        Err(Error::IndefiniteLength)
    ));
    // Indefinite-length candidate array.
    let mut f = fields();
    let cands = &mut f.iter_mut().find(|(k, _)| *k == 5).unwrap().1;
    cands[0] = 0x9f;
    cands.push(0xff);
    assert!(matches!(decode_fields(&f), Err(Error::IndefiniteLength)));
}

#[test]
fn non_shortest_integers_are_rejected() {
    let mut f = fields();
    f[0].1 = vec![0x18, 0x01]; // version 1 in two bytes
    assert!(matches!(
        decode_fields(&f),
        Err(Error::NonShortestInteger { value: 1 })
    ));
    let mut f = fields();
    let exp = &mut f.iter_mut().find(|(k, _)| *k == 6).unwrap().1;
    let v = Decoder::new(exp).u64().unwrap();
    *exp = enc(|e| {
        e.writer_mut().push(0x1b);
        e.writer_mut().extend_from_slice(&v.to_be_bytes());
    });
    assert!(matches!(
        decode_fields(&f),
        Err(Error::NonShortestInteger { .. })
    ));
}

#[test]
fn unknown_keys_critical_even_rejected_odd_preserved() {
    let mut f = fields();
    f.push((16, vec![0x01]));
    assert!(matches!(
        decode_fields(&f),
        Err(Error::UnknownCriticalKey { key: 16 })
    ));
    let mut f = fields();
    f.push((17, vec![0x63, b'a', b'b', b'c']));
    let inv = decode_fields(&f).unwrap();
    assert_eq!(
        inv.invitation().extensions,
        vec![(17, vec![0x63, b'a', b'b', b'c'])]
    );
    // The signature covered the original body, so the extended one does not verify.
    assert!(matches!(
        inv.verify(NOW, &VerifyPolicy::default(), &NoRevocations),
        Err(Error::BadSignature { .. })
    ));
}

#[test]
fn wrong_sizes_and_missing_fields_are_rejected() {
    let mut f = fields();
    f[2].1 = enc(|e| {
        e.bytes(&[0; 15]).unwrap();
    });
    assert!(matches!(
        decode_fields(&f),
        Err(Error::WrongSize {
            field: "network id",
            actual: 15,
            ..
        })
    ));
    let mut f = fields();
    f[4].1 = enc(|e| {
        e.bytes(&[0; 8]).unwrap();
    });
    assert!(matches!(
        decode_fields(&f),
        Err(Error::WrongSize {
            field: "invite secret",
            ..
        })
    ));
    let mut f = fields();
    f.retain(|(k, _)| *k != 6);
    assert!(matches!(
        decode_fields(&f),
        Err(Error::MissingField { field: "expires" })
    ));
    let mut f = fields();
    f[3].1 = enc(|e| {
        e.str("not bytes").unwrap();
    });
    assert!(matches!(
        decode_fields(&f),
        Err(Error::UnexpectedType {
            field: "issuer",
            ..
        })
    ));
}

#[test]
fn unknown_versions_and_kinds_are_named() {
    let mut f = fields();
    f[0].1 = vec![0x02];
    assert!(matches!(
        decode_fields(&f),
        Err(Error::UnsupportedVersion {
            found: 2,
            supported: 1
        })
    ));
    let msg = decode_fields(&f).unwrap_err().to_string();
    assert!(msg.contains("version 2"), "{msg}");
    let mut f = fields();
    f[1].1 = vec![0x02]; // claims to be an RSVP
    assert!(matches!(
        decode_fields(&f),
        Err(Error::WrongKind {
            expected: "an invitation",
            found: "an RSVP"
        })
    ));
}

#[test]
fn default_values_must_be_omitted() {
    let mut f = fields();
    f.push((8, vec![0x01])); // uses = 1 is the default
    f.sort_by_key(|(k, _)| *k);
    assert!(matches!(
        decode_fields(&f),
        Err(Error::InvalidValue { field: "uses", .. })
    ));
}

#[test]
fn every_single_bit_flip_is_rejected() {
    let good = signed_invitation().to_bytes().to_vec();
    let policy = VerifyPolicy::default();
    for bit in 0..good.len() * 8 {
        let mut m = good.clone();
        m[bit / 8] ^= 1 << (bit % 8);
        let res = SignedInvitation::decode(&m)
            .and_then(|s| s.verify(NOW, &policy, &NoRevocations).map(|_| ()));
        assert!(res.is_err(), "flip of bit {bit} accepted");
    }
}

#[test]
fn hundred_thousand_random_mutations_are_rejected_without_panic() {
    let good = signed_invitation().to_bytes().to_vec();
    let policy = VerifyPolicy::default();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0x18);
    let mut rejected = 0;
    for _ in 0..100_000 {
        let mut m = good.clone();
        for _ in 0..rng.random_range(1..=4) {
            if m.is_empty() {
                m.push(rng.random());
                continue;
            }
            match rng.random_range(0..5) {
                0 => {
                    let i = rng.random_range(0..m.len());
                    m[i] = rng.random();
                }
                1 => {
                    let i = rng.random_range(0..=m.len());
                    m.insert(i, rng.random());
                }
                2 if m.len() > 1 => {
                    let i = rng.random_range(0..m.len());
                    m.remove(i);
                }
                3 => {
                    let n = rng.random_range(0..m.len());
                    m.truncate(n);
                }
                _ => {
                    let i = rng.random_range(0..m.len());
                    m[i] ^= 1 << rng.random_range(0..8);
                }
            }
        }
        if m == good {
            continue;
        }
        let res = SignedInvitation::decode(&m)
            .and_then(|s| s.verify(NOW, &policy, &NoRevocations).map(|_| ()));
        assert!(res.is_err(), "mutation accepted: {m:02x?}");
        rejected += 1;
    }
    assert!(rejected >= 99_000);
}
