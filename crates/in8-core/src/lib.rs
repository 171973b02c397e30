//! # in8-core
//!
//! The facade a library user depends on: a [`Node`] issues invitations, joins from them,
//! answers with an RSVP when one-way establishment fails, and hands out authenticated,
//! encrypted [`Connection`]s with data channels and byte streams. It composes
//! `in8-artifact` (invitations, RSVPs, ledger), `in8-ice` (sans-IO ICE, run here by a tokio
//! driver that owns the sockets and timers) and `in8-transport` (DTLS, SCTP, join proof).
//! No server is needed; STUN and TURN servers are optional accelerators.
//!
//! ```no_run
//! use in8_core::{Config, InviteOptions, JoinEvent, Node};
//! use in8_artifact::Identity;
//! use in8_transport::ChannelOptions;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // Alice invites.
//! let alice = Node::start(Config::new(Identity::generate(&mut rand::rng()))).await?;
//! let mut invite = alice.invite(InviteOptions::default()).await?;
//! let text = in8_artifact::text::encode_text(invite.invitation().to_bytes());
//! // ... `text` travels to Bob by chat, QR code, e-mail ...
//!
//! // Bob joins.
//! let bob = Node::start(Config::new(Identity::generate(&mut rand::rng()))).await?;
//! let (bytes, _) = in8_artifact::text::decode_text(&text)?;
//! let invitation = in8_artifact::SignedInvitation::decode(&bytes)?;
//! let mut join = bob.join(&invitation).await?;
//! while let Some(event) = join.next().await {
//!     match event {
//!         JoinEvent::Connected(conn) => {
//!             let chat = conn.open_channel(ChannelOptions::reliable("chat")).await?;
//!             chat.send(&b"hello Alice"[..]).await?;
//!             break;
//!         }
//!         // Phase 1 failed (NATs): send `rsvp` back to Alice; she calls
//!         // `alice.accept_rsvp(&rsvp)` and this join continues.
//!         JoinEvent::Phase1Failed { reason, rsvp } => {
//!             println!("{reason}; send this back: {}", in8_artifact::text::encode_text(rsvp.to_bytes()));
//!         }
//!         JoinEvent::Failed(e) => return Err(e.into()),
//!         _ => {}
//!     }
//! }
//! let alice_side = invite.joined().await?;
//! println!("{} joined via {:?}", alice_side.peer(), alice_side.path().kind);
//! # Ok(()) }
//! ```
//!
//! Everything is bounded (see [`Config`]); docs/core.md describes the flows.

mod config;
mod connection;
mod driver;
mod error;
mod events;
mod gather;
#[cfg(feature = "harness")]
pub mod harness;
mod node;
mod persist;
pub mod proto;

pub use config::{Birthday, Config, InboundFilter, NetworkConfig, Topology, TurnServer};
pub use connection::{Connection, MemberLink, PathInfo};
pub use error::{Error, Result};
pub use events::{Invite, InviteEvent, InviteOptions, Join, JoinEvent, Phase};
pub use gather::MAX_HOST_ADDRESSES;
pub use node::{NetEvents, NetUpdate, Node};
pub use persist::MAX_RESTORED;

/// The state directory's files, for tools that prepare or inspect one (docs/core.md
/// "State"): private atomic writes, the stored credential, a new network.
pub mod state {
    pub use crate::persist::{load_credential, make_dir, new_network, write_atomically};
}
pub use proto::network::{MemberInfo, NetStats, PunchCount, Views};
pub use proto::{InviteEnd, LinkInfo, NetEvent, Unreachable};
