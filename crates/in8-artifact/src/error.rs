//! The one error type of the artifact layer.
//!
//! Every variant names what is wrong and, through its message, what to do next.
//! Decoding errors come first (one variant per way an encoding can be malformed),
//! then verification and policy errors, then ledger and identity-file errors.

use crate::time::Timestamp;

/// Everything that can go wrong while encoding, decoding, verifying or redeeming an artifact.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- decoding: the bytes are not a well-formed in8 artifact -----
    /// The input ended before the artifact was complete.
    #[error(
        "artifact is truncated (ended inside {context}); the copy is incomplete: copy the whole artifact again"
    )]
    Truncated {
        /// What was being read when the input ended.
        context: &'static str,
    },
    /// Bytes follow the end of the artifact.
    #[error(
        "{count} unexpected byte(s) after the end of the artifact; remove anything pasted after it"
    )]
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
    /// A map key appears twice.
    #[error("map key {key} appears twice; the artifact was not produced by a conforming encoder")]
    DuplicateKey {
        /// The repeated key.
        key: u64,
    },
    /// Map keys are not in ascending order (RFC 8949 §4.2.1 requires sorted keys).
    #[error(
        "map key {key} follows key {previous}: keys must be in ascending order (RFC 8949 §4.2.1)"
    )]
    UnsortedKeys {
        /// The key that came before.
        previous: u64,
        /// The out-of-order key.
        key: u64,
    },
    /// An indefinite-length item was found (forbidden by RFC 8949 §4.2.1).
    #[error(
        "indefinite-length CBOR item found; in8 artifacts use definite lengths only (RFC 8949 §4.2.1)"
    )]
    IndefiniteLength,
    /// An integer or length was not encoded in its shortest form (RFC 8949 §4.2.1).
    #[error("integer {value} is not encoded in its shortest form (RFC 8949 §4.2.1)")]
    NonShortestInteger {
        /// The value that was encoded too long.
        value: u64,
    },
    /// A CBOR item of an unexpected type.
    #[error("expected {expected} for {field}, found another CBOR type")]
    UnexpectedType {
        /// The field being decoded.
        field: &'static str,
        /// The type the field must have.
        expected: &'static str,
    },
    /// A key that this version does not know and that is marked critical (even numbers).
    #[error(
        "unknown critical key {key}: this artifact needs a newer in8 than this one; upgrade in8"
    )]
    UnknownCriticalKey {
        /// The unknown key.
        key: u64,
    },
    /// A required field is absent.
    #[error("required field {field} is missing")]
    MissingField {
        /// The missing field.
        field: &'static str,
    },
    /// A field has the wrong length.
    #[error("field {field} has {actual} bytes/items, expected {expected}")]
    WrongSize {
        /// The field with the wrong size.
        field: &'static str,
        /// What was allowed (e.g. "32" or "16..=32").
        expected: &'static str,
        /// What was found.
        actual: usize,
    },
    /// A field has a value outside its allowed range.
    #[error("field {field} has an invalid value: {reason}")]
    InvalidValue {
        /// The field.
        field: &'static str,
        /// Why the value is invalid.
        reason: &'static str,
    },
    /// The artifact declares a format version this build does not implement.
    #[error(
        "artifact format version {found} is not supported (this in8 reads version {supported}); upgrade in8"
    )]
    UnsupportedVersion {
        /// The version found in the artifact.
        found: u64,
        /// The version this build implements.
        supported: u64,
    },
    /// The artifact is of another kind than the one asked for (e.g. an RSVP where an invitation was expected).
    #[error("this is {found}, not {expected}")]
    WrongKind {
        /// The kind that was expected.
        expected: &'static str,
        /// The kind that was found.
        found: &'static str,
    },
    /// Nesting is deeper than the decoder allows.
    #[error("artifact nests deeper than {limit} levels")]
    TooDeep {
        /// The nesting limit.
        limit: usize,
    },
    /// The input is larger than any valid artifact.
    #[error("input of {size} bytes exceeds the {limit}-byte artifact limit")]
    TooLarge {
        /// Input size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A text form could not be parsed.
    #[error("{form} text is malformed: {reason}")]
    BadText {
        /// Which text form ("in8: base64url", "base32", "grouped", ...).
        form: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A checksummed group of the grouped (read-aloud) form is wrong.
    #[error("group {group} ({text:?}) has a wrong check character: re-read or re-type that group")]
    BadGroupChecksum {
        /// 1-based index of the wrong group.
        group: usize,
        /// The group as typed.
        text: String,
    },
    /// A node id text form has a bad checksum.
    #[error("node id {text:?} has a bad checksum: it was mistyped or truncated")]
    BadNodeIdChecksum {
        /// The offending text.
        text: String,
    },

    // ----- verification and policy -----
    /// The signature does not verify against the signer's key.
    #[error(
        "bad signature on {what}: the artifact was altered or forged; ask the sender for a fresh one"
    )]
    BadSignature {
        /// What was signed.
        what: &'static str,
    },
    /// The MAC does not verify: the sender did not hold the invitation's secret.
    #[error(
        "bad MAC on {what}: it was not made by someone holding the invitation; ask for a fresh one"
    )]
    BadMac {
        /// What carried the MAC.
        what: &'static str,
    },
    /// A public key is not a valid ed25519 point.
    #[error("{field} is not a valid ed25519 public key")]
    BadPublicKey {
        /// The field holding the key.
        field: &'static str,
    },
    /// The artifact has expired.
    #[error("expired at {expired_at} (now {now}); ask the issuer for a new one")]
    Expired {
        /// When it expired.
        expired_at: Timestamp,
        /// The verifier's clock.
        now: Timestamp,
    },
    /// The artifact is not valid yet.
    #[error("not valid before {not_before} (now {now}); check this machine's clock or wait")]
    NotYetValid {
        /// Start of validity.
        not_before: Timestamp,
        /// The verifier's clock.
        now: Timestamp,
    },
    /// The artifact has been revoked by its issuer.
    #[error("{what} was revoked by its issuer; ask for a new invitation")]
    Revoked {
        /// What was revoked.
        what: &'static str,
    },
    /// A single-use (or n-use) invitation has been used up.
    #[error(
        "invitation {invite_id} was already used ({limit} use(s) allowed); if it was not you, it was redeemed by someone else: tell the issuer"
    )]
    AlreadyUsed {
        /// The invitation id, as text.
        invite_id: String,
        /// The use limit.
        limit: u32,
    },
    /// An RSVP refers to another invitation.
    #[error("this RSVP answers invitation {found}, not {expected}")]
    WrongInvitation {
        /// The invitation the verifier holds.
        expected: String,
        /// The invitation the RSVP names.
        found: String,
    },
    /// A membership chain violates its rules.
    #[error("membership chain invalid: {reason}")]
    BadChain {
        /// What rule was broken.
        reason: &'static str,
    },
    /// A policy forbids the requested action.
    #[error("policy forbids this: {reason}")]
    PolicyDenied {
        /// Which policy.
        reason: &'static str,
    },

    // ----- ledger and files -----
    /// A bounded table is full.
    #[error(
        "{what} is full ({limit} entries); expired entries are pruned automatically, raise the limit if this persists"
    )]
    CapacityExceeded {
        /// What is full.
        what: &'static str,
        /// Its bound.
        limit: usize,
    },
    /// The ledger file is corrupt beyond the torn tail that a crash may leave.
    #[error(
        "ledger file {path} is corrupt at byte {offset}: {reason}; restore it from a backup, deleting it would re-enable used invitations"
    )]
    CorruptLedger {
        /// The file.
        path: String,
        /// Where the corruption starts.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// The ledger file is held by another process.
    #[error(
        "ledger file {path} is in use by another in8 process; stop it or use another --state directory"
    )]
    LedgerLocked {
        /// The file.
        path: String,
    },
    /// The identity file is malformed.
    #[error(
        "identity file {path} is malformed: {reason}; restore it from a backup, or move it away to create a new identity"
    )]
    BadIdentityFile {
        /// The file.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An I/O error on a file this crate manages (ledger, identity).
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("reading", "writing", ...).
        action: &'static str,
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Shorthand for `Result<T, in8_artifact::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Maps an I/O error on `path` into [`Error::Io`] (for `map_err`).
    pub(crate) fn io<'a>(
        action: &'static str,
        path: &'a std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Error + 'a {
        move |source| Error::Io {
            action,
            path: path.display().to_string(),
            source,
        }
    }
}
