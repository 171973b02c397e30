//! # in8-gossip
//!
//! Membership and broadcast for in8 networks, as sans-IO state machines: **HyParView**
//! partial views (a small active view of linked neighbours, a larger passive view of known
//! members; JOIN, FORWARDJOIN, NEIGHBOR, DISCONNECT, SHUFFLE), **Plumtree** broadcast over
//! the active links (eager push along a spanning tree that repairs itself with IHAVE,
//! GRAFT and PRUNE), **introductions** (a common neighbour relays both sides' signed
//! candidate offers and a start time, and both punch at once), **signed peer records**,
//! **membership-credential admission** and **revocations** that spread and are enforced.
//!
//! Two layers:
//!
//! - [`proto::State`] is the protocol core, generic over the peer id. It trusts its input
//!   and allocates only bounded views and caches; the simulator (in8-sim) runs a million of
//!   them with `u32` ids.
//! - [`Gossip`] is what a node runs: it decodes [`wire`] frames, verifies every peer's
//!   signed record and credential chain ([`SignedPeerRecord::verify`]) before the core sees
//!   it, checks origin signatures on broadcasts, enforces revocations
//!   ([`in8_artifact::RevocationSet`]), and encodes the core's output.
//!
//! Nothing here opens a socket, reads a clock, sleeps or spawns (`cargo xtask
//! check-layers` keeps tokio out). Time comes in as [`Time`], randomness from a seed.
//!
//! ## The drive contract
//!
//! The driver (in8-core's tokio task, the simulator, a test) owns the links and the timer.
//! After **every** input (`handle_message`, `handle_timeout`, `join`, `broadcast`,
//! `link_failed`, `link_up`, ...) it drains **all** output: [`Gossip::poll_transmit`] until
//! `None` (send each frame to its peer, dialling it if there is no link; report a failed
//! dial with [`Gossip::link_failed`]), [`Gossip::poll_event`] until `None`, then re-arms its
//! timer for [`Gossip::poll_timeout`]. On [`Event::PunchNow`] it punches towards the offer's
//! candidates after the delay and reports [`Gossip::link_up`] or [`Gossip::link_failed`].
//! The transport authenticates the sender's [`in8_artifact::NodeId`] (DTLS with the
//! identity-bound certificate); `Gossip` authenticates its membership.
//!
//! ```
//! use std::time::Duration;
//! use in8_artifact::fixtures::NOW;
//! use in8_gossip::fixtures::{candidates, credential, identity};
//! use in8_gossip::{Config, Event, Gossip, NatClass, Setup, Time};
//!
//! let node = |i: u8| {
//!     Gossip::new(Config::default(), Setup {
//!         identity: identity(i),
//!         credential: credential(i), // a membership credential chained to the creator
//!         candidates: candidates(i),
//!         nat: NatClass::Public,
//!         record_ttl: Duration::from_secs(3600),
//!         seed: [i; 32],
//!         wall_epoch: NOW, // wall-clock time at Time::ZERO, for expiry checks
//!     })
//! };
//! // A toy driver: frames are delivered at once; the sender's events are collected.
//! fn drain(src: &mut Gossip, dst: &mut Gossip, now: Time, seen: &mut Vec<Event>) -> bool {
//!     let mut busy = false;
//!     while let Some(t) = src.poll_transmit() {
//!         assert_eq!(t.to, dst.node_id());
//!         // Verified (record, credential chain, signatures) or refused without state.
//!         dst.handle_message(now, src.node_id(), &t.bytes).expect("valid frame");
//!         busy = true;
//!     }
//!     while let Some(e) = src.poll_event() {
//!         seen.push(e);
//!     }
//!     busy
//! }
//!
//! let (mut alice, mut bob) = (node(0)?, node(1)?);
//! let (mut at_alice, mut at_bob) = (Vec::new(), Vec::new());
//! let now = Time::ZERO;
//! alice.start(now);
//! bob.join(now, alice.node_id()); // bob has a link to alice: he redeemed her invitation
//! while drain(&mut bob, &mut alice, now, &mut at_bob) | drain(&mut alice, &mut bob, now, &mut at_alice) {}
//! assert!(at_bob.contains(&Event::NeighborUp(alice.node_id())));
//!
//! alice.broadcast(now, b"welcome")?; // signed by alice, checked by bob
//! while drain(&mut alice, &mut bob, now, &mut at_alice) | drain(&mut bob, &mut alice, now, &mut at_bob) {}
//! assert!(at_bob.iter().any(|e| matches!(e, Event::Received { payload, .. } if payload == b"welcome")));
//!
//! // Timers: call handle_timeout when poll_timeout says so (shuffles, repairs, grafts).
//! let later = alice.poll_timeout().expect("the shuffle timer is armed");
//! alice.handle_timeout(later);
//! while drain(&mut alice, &mut bob, later, &mut at_alice) | drain(&mut bob, &mut alice, later, &mut at_bob) {}
//! # Ok::<(), in8_gossip::Error>(())
//! ```
//!
//! The normative description (messages, wire format, vectors, bounds, security) is
//! `docs/gossip.md`.

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
