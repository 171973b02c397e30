//! # in8-ice
//!
//! Sans-IO ICE for in8 (work in progress).

mod agent;
mod candidate;
mod endpoint;
mod error;
pub mod nat;
pub mod punch;
pub mod responder;
pub mod stun;
mod transmit;

pub use agent::{Agent, Config, Credentials, Event, FailureReason, KeepOpen, Role, Stats};
pub use candidate::{
    Candidate, CandidateKind, LocalCandidate, RemoteCandidate, candidate_priority, pair_priority,
};
pub use endpoint::{Endpoint, EndpointConfig, EndpointEvent, EndpointStats, SessionId};
pub use error::Error;
pub use transmit::Transmit;
