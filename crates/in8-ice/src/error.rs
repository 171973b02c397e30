//! The error type of in8-ice.

use crate::stun::ParseError;

/// Why an input was refused or an operation failed. Inputs from the network never panic;
/// each dropped packet maps to one of these so a driver can count or log it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not a well-formed STUN message.
    #[error("malformed STUN message: {0}")]
    Stun(#[from] ParseError),
    /// USERNAME or MESSAGE-INTEGRITY missing or wrong: dropped without creating state.
    #[error("unauthenticated STUN message (USERNAME or MESSAGE-INTEGRITY)")]
    Unauthenticated,
    /// A request carried unknown comprehension-required attributes (answered with 420).
    #[error("unknown comprehension-required attributes")]
    UnknownAttributes,
    /// A required attribute is missing.
    #[error("missing {0} attribute")]
    MissingAttribute(&'static str),
    /// A response matches no outstanding transaction.
    #[error("response to no outstanding transaction")]
    UnknownTransaction,
    /// A response came from or to another address than its request went (RFC 8445
    /// §7.2.5.2.1): the pair failed.
    #[error("response addresses not symmetric to the request")]
    NotSymmetric,
    /// An error response.
    #[error("STUN error response {0}")]
    ErrorResponse(u16),
    /// A STUN method this component does not handle.
    #[error("unexpected STUN method 0x{0:03x}")]
    UnexpectedMethod(u16),
    /// A configured bound was reached.
    #[error("limit reached: at most {max} {what}")]
    Limit {
        /// What is bounded.
        what: &'static str,
        /// The bound.
        max: usize,
    },
    /// The agent, session or allocation is closed or failed.
    #[error("closed")]
    Closed,
    /// No such session, invitation or allocation.
    #[error("unknown {0}")]
    Unknown(&'static str),
    /// A configuration or argument is invalid.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What.
        what: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// Policy forbids it (e.g. a relay when the invitation does not allow relays).
    #[error("policy: {0}")]
    Policy(&'static str),
}
