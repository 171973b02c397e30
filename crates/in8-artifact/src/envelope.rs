//! The signed envelope every artifact shares.
//!
//! An artifact is a CBOR array whose first item is the *body* (a byte string holding a
//! deterministic CBOR map) and whose remaining items are authenticators over those exact body
//! bytes (a signature; for an RSVP a MAC, then a signature). Signing the body as an opaque
//! byte string means a verifier checks exactly the bytes the signer produced, with no
//! re-encoding step that could disagree.
//!
//! Every body map starts with key 0 (format version) and key 1 (artifact kind).

use core::fmt;

use crate::cbor::{Enc, MapKeys, Reader};
use crate::error::{Error, Result};

/// The artifact format version this build writes and reads.
pub const FORMAT_VERSION: u64 = 1;

/// What an artifact is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArtifactKind {
    /// An invitation (kind 1).
    Invitation,
    /// A reciprocal invitation answering one (kind 2).
    Rsvp,
    /// A membership credential (kind 3).
    Membership,
    /// A revocation record (kind 4).
    Revocation,
}

impl ArtifactKind {
    /// The kind number in the body (key 1).
    pub const fn code(self) -> u64 {
        match self {
            ArtifactKind::Invitation => 1,
            ArtifactKind::Rsvp => 2,
            ArtifactKind::Membership => 3,
            ArtifactKind::Revocation => 4,
        }
    }

    fn from_code(n: u64) -> Result<Self> {
        Ok(match n {
            1 => ArtifactKind::Invitation,
            2 => ArtifactKind::Rsvp,
            3 => ArtifactKind::Membership,
            4 => ArtifactKind::Revocation,
            _ => {
                return Err(Error::InvalidValue {
                    field: "kind",
                    reason: "unknown artifact kind",
                });
            }
        })
    }

    /// A name with its article, for messages ("an invitation").
    pub const fn describe(self) -> &'static str {
        match self {
            ArtifactKind::Invitation => "an invitation",
            ArtifactKind::Rsvp => "an RSVP",
            ArtifactKind::Membership => "a membership record",
            ArtifactKind::Revocation => "a revocation record",
        }
    }

    /// How many authenticators follow the body.
    const fn tails(self) -> usize {
        match self {
            ArtifactKind::Rsvp => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArtifactKind::Invitation => "invitation",
            ArtifactKind::Rsvp => "rsvp",
            ArtifactKind::Membership => "membership",
            ArtifactKind::Revocation => "revocation",
        })
    }
}

/// Starts a body map of `n_fields` fields (version and kind included) and writes keys 0 and 1.
pub(crate) fn body_start(kind: ArtifactKind, n_fields: usize) -> Enc {
    let mut e = Enc::new();
    e.map(n_fields)
        .u64(0)
        .u64(FORMAT_VERSION)
        .u64(1)
        .u64(kind.code());
    e
}

/// Wraps `body` and its authenticators into the envelope array.
pub(crate) fn seal(body: &[u8], tails: &[&[u8]]) -> Vec<u8> {
    let mut e = Enc::new();
    e.array(1 + tails.len()).bytes(body);
    for t in tails {
        e.bytes(t);
    }
    e.finish()
}

/// Reads the body map's version and kind, leaving the reader at key 2.
pub(crate) fn body_header(r: &mut Reader<'_>) -> Result<(ArtifactKind, MapKeys)> {
    let mut keys = r.map("artifact body")?;
    if keys.next(r)? != Some(0) {
        return Err(Error::MissingField { field: "version" });
    }
    let version = r.u64("version")?;
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if keys.next(r)? != Some(1) {
        return Err(Error::MissingField { field: "kind" });
    }
    let kind = ArtifactKind::from_code(r.u64("kind")?)?;
    Ok((kind, keys))
}

/// An envelope split into its body and authenticators (not yet verified).
pub(crate) struct Opened<'b> {
    pub(crate) kind: ArtifactKind,
    pub(crate) body: &'b [u8],
    pub(crate) tails: Vec<&'b [u8]>,
}

/// Splits an envelope; checks structure, version and kind (against `expected`, if given,
/// before anything kind-specific so the error names the kinds).
fn open_inner(bytes: &[u8], expected: Option<ArtifactKind>) -> Result<Opened<'_>> {
    let mut r = Reader::new(bytes)?;
    let n = r.array("artifact", 4)?;
    if n == 0 {
        return Err(Error::MissingField { field: "body" });
    }
    let body = r.bytes("body")?;
    let kind = body_header(&mut Reader::new(body)?)?.0;
    if let Some(expected) = expected
        && expected != kind
    {
        return Err(Error::WrongKind {
            expected: expected.describe(),
            found: kind.describe(),
        });
    }
    if n - 1 != kind.tails() {
        return Err(Error::WrongSize {
            field: "artifact envelope",
            expected: "body + 1 authenticator (RSVP: body + MAC + signature)",
            actual: n,
        });
    }
    let mut tails = Vec::with_capacity(n - 1);
    for _ in 1..n {
        tails.push(r.bytes("authenticator")?);
    }
    r.leave();
    r.finish()?;
    Ok(Opened { kind, body, tails })
}

/// Splits an envelope of any kind.
pub(crate) fn open(bytes: &[u8]) -> Result<Opened<'_>> {
    open_inner(bytes, None)
}

/// Splits an envelope that must be of `kind`.
pub(crate) fn open_as(bytes: &[u8], kind: ArtifactKind) -> Result<Opened<'_>> {
    open_inner(bytes, Some(kind))
}

/// The kind of an encoded artifact, without verifying it.
pub fn peek_kind(bytes: &[u8]) -> Result<ArtifactKind> {
    open(bytes).map(|o| o.kind)
}

/// Converts a 64-byte authenticator slice into a signature array.
pub(crate) fn signature(tail: &[u8]) -> Result<[u8; 64]> {
    <[u8; 64]>::try_from(tail).map_err(|_| Error::WrongSize {
        field: "signature",
        expected: "64",
        actual: tail.len(),
    })
}
