//! The one error type of the gossip layer.

use in8_artifact::NodeId;

/// Everything that can go wrong in the gossip layer. Peer input never panics: a bad
/// message is one of these, and the message is dropped without creating state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range.
    #[error("config field {field} out of range (allowed: {range})")]
    BadConfig {
        /// The field.
        field: &'static str,
        /// The allowed range.
        range: &'static str,
    },
    /// The frame ended early.
    #[error("gossip frame truncated while reading {context}")]
    Truncated {
        /// What was being read.
        context: &'static str,
    },
    /// Bytes after the end of a frame or record.
    #[error("{count} unexpected byte(s) after the end of the {what}")]
    TrailingBytes {
        /// The frame or record.
        what: &'static str,
        /// How many bytes were left.
        count: usize,
    },
    /// A wire version this implementation does not speak.
    #[error(
        "gossip wire version {found} is not supported (this node speaks {supported}); upgrade in8"
    )]
    UnsupportedVersion {
        /// The version in the frame.
        found: u8,
        /// The version understood here.
        supported: u8,
    },
    /// A message type this implementation does not know.
    #[error("unknown gossip message type {found:#04x}")]
    UnknownType {
        /// The type byte.
        found: u8,
    },
    /// A field has a value the format forbids.
    #[error("invalid {field}: {reason}")]
    InvalidValue {
        /// The field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A list, string or payload is longer than its bound.
    #[error("{what} too long: {len} > {max}")]
    TooLong {
        /// What was too long.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A record, credential or revocation did not verify (signature, chain, expiry,
    /// revocation, wrong network); the artifact layer says which.
    #[error("{what} rejected: {source}")]
    Rejected {
        /// What was being verified.
        what: &'static str,
        /// The artifact layer's reason.
        #[source]
        source: in8_artifact::Error,
    },
    /// A record is not for the peer that presented it, or not for this network.
    #[error("{what} does not match: {reason}")]
    Mismatch {
        /// What was checked.
        what: &'static str,
        /// Why it does not match.
        reason: &'static str,
    },
    /// A message that needs an admitted peer came from one that is not (yet) admitted:
    /// it must first present its signed peer record (JOIN, NEIGHBOR, SHUFFLE).
    #[error("message from {peer:?}, which is not admitted; dropped without state")]
    NotAdmitted {
        /// The sender.
        peer: NodeId,
    },
    /// The peer lacks a capability the message needs.
    #[error("{peer:?} lacks the {capability} capability")]
    MissingCapability {
        /// The peer.
        peer: NodeId,
        /// The capability.
        capability: &'static str,
    },
    /// This node's own credential was revoked or expired: it can no longer take part.
    #[error("this node's membership is no longer valid; obtain a new invitation")]
    SelfRevoked,
    /// A bounded table is full.
    #[error("{what} is full ({limit} entries)")]
    CapacityExceeded {
        /// The table.
        what: &'static str,
        /// Its bound.
        limit: usize,
    },
    /// The artifact layer failed (signing our own record, for example).
    #[error(transparent)]
    Artifact(#[from] in8_artifact::Error),
}

/// Result with the gossip [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;
