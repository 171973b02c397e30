//! The one error type of the transport layer.
//!
//! Every variant says what happened and, through its message, what to do next. The
//! underlying DTLS / SCTP libraries' errors are turned into these variants at the boundary
//! so callers never depend on them (the layer can be swapped).

use std::net::SocketAddr;
use std::time::Duration;

use crate::join::Refusal;

/// Why a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// This side called [`crate::Session::close`].
    LocalClose,
    /// The peer closed the session in order (DTLS close_notify or SCTP shutdown).
    PeerClosed,
    /// Nothing arrived from the peer for `silent_for` (peer gone, path broken).
    PeerGone {
        /// How long the peer had been silent.
        silent_for: Duration,
    },
    /// The ICE layer reported that consent to send expired (RFC 7675) or the path failed.
    ConsentLost,
    /// The endpoint (its socket) was shut down.
    EndpointClosed,
    /// A protocol or I/O error ended the session.
    Failed {
        /// What went wrong.
        reason: String,
    },
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LocalClose => f.write_str("closed by this side"),
            Self::PeerClosed => f.write_str("closed by the peer"),
            Self::PeerGone { silent_for } => {
                write!(f, "peer silent for {} ms (gone)", silent_for.as_millis())
            }
            Self::ConsentLost => f.write_str("ICE consent lost"),
            Self::EndpointClosed => f.write_str("endpoint shut down"),
            Self::Failed { reason } => write!(f, "failed: {reason}"),
        }
    }
}

/// Everything that can go wrong in the transport layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Binding or using the UDP socket failed.
    #[error("UDP socket error: {0}; check the address and that the port is free")]
    Io(#[from] std::io::Error),
    /// The peer's certificate is not the one the invitation (or the caller) expects: the
    /// handshake was aborted and no application data flowed.
    #[error(
        "peer certificate rejected: {reason}; this is not the peer the invitation names (possible interception)"
    )]
    PeerCertificate {
        /// Why it was rejected.
        reason: String,
    },
    /// The local certificate could not be created.
    #[error("{reason}")]
    Certificate {
        /// What failed.
        reason: String,
    },
    /// The DTLS handshake failed for another reason.
    #[error("DTLS handshake with {remote} failed: {reason}")]
    Handshake {
        /// The peer address.
        remote: SocketAddr,
        /// The library's reason.
        reason: String,
    },
    /// The DTLS handshake or the join exchange did not finish in time.
    #[error(
        "{stage} with {remote} timed out after {} ms; the path may have failed (re-run ICE)",
        after.as_millis()
    )]
    Timeout {
        /// Which stage timed out.
        stage: &'static str,
        /// The peer address.
        remote: SocketAddr,
        /// The configured limit.
        after: Duration,
    },
    /// The inviter refused this side's join proof.
    #[error("the inviter refused the join: {0}")]
    JoinRefused(Refusal),
    /// This side (the inviter) refused the peer's join; the session was closed.
    #[error("refused the peer's join: {0}")]
    JoinRejected(Refusal),
    /// A join-proof, verdict or DCEP message is malformed.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which message.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A session with this remote address already exists on the endpoint.
    #[error("a session with {0} already exists on this endpoint; close it first")]
    AlreadyConnected(SocketAddr),
    /// The session is closed; no more channels or messages.
    #[error("session closed: {0}")]
    Closed(CloseReason),
    /// The channel was closed (by either side) or reset.
    #[error("channel {label:?} closed")]
    ChannelClosed {
        /// The channel label.
        label: String,
    },
    /// A message is larger than the channel allows.
    #[error(
        "message of {size} bytes exceeds the limit of {limit} bytes for this channel; split it or use a byte stream"
    )]
    MessageTooLarge {
        /// Message size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// No stream identifier is left for a new channel.
    #[error("no free SCTP stream for a new channel (limit {limit}); close some channels")]
    TooManyChannels {
        /// The configured limit.
        limit: usize,
    },
    /// A channel label or protocol is too long for DCEP (65535 bytes).
    #[error("channel {what} is {len} bytes long; DCEP allows at most 65535")]
    LabelTooLong {
        /// `label` or `protocol`.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// The SCTP layer reported an error.
    #[error("SCTP error: {0}")]
    Sctp(String),
    /// The artifact layer refused something (ledger, signature).
    #[error(transparent)]
    Artifact(#[from] in8_artifact::Error),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<webrtc_sctp::Error> for Error {
    fn from(e: webrtc_sctp::Error) -> Self {
        Self::Sctp(e.to_string())
    }
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        use std::io::ErrorKind;
        let kind = match &e {
            Error::Io(io) => io.kind(),
            Error::Closed(_) | Error::ChannelClosed { .. } => ErrorKind::BrokenPipe,
            Error::Timeout { .. } => ErrorKind::TimedOut,
            Error::MessageTooLarge { .. } | Error::Malformed { .. } => ErrorKind::InvalidData,
            _ => ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}
