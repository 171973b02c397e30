//! # in8-gossip
//!
//! Sans-IO membership and broadcast for in8 networks (DRAFT, docs to be completed).

mod config;
mod error;
pub mod fixtures;
mod node;
pub mod proto;
mod record;
mod time;
pub mod wire;

pub use config::{Config, MAX_LIST};
pub use error::{Error, Result};
pub use node::{Event, Gossip, MAX_QUEUED, RECENT_REVOCATIONS, Setup, Transmit};
pub use proto::{LinkFailure, Message, MessageId, Priority, State};
pub use record::{MAX_RECORD_BODY, NatClass, PeerRecord, RECORD_VERSION, SignedPeerRecord};
pub use time::Time;
