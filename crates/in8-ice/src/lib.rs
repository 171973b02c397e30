//! # in8-ice
//!
//! Sans-IO ICE for in8: an RFC 8445 agent with RFC 7675 consent freshness, the
//! [`Endpoint`] that carries in8's progressive establishment on one UDP socket (phase-1
//! listener for many invitations, named failures, keep-open while an RSVP travels, phase 2),
//! a Binding [`responder`] any member runs, NAT classification ([`nat`], RFC 5780 logic),
//! hard-NAT strategies ([`punch`]) and a TURN client ([`turn`], RFC 8656). The STUN codec
//! ([`stun`]) is zero-copy with precomputed HMAC keys.
//!
//! Nothing here opens a socket, reads a clock, sleeps or spawns: time comes in as
//! [`std::time::Instant`] arguments, randomness from seeds, and datagrams in and out as
//! bytes. Candidate gathering is the driver's job (in8-core).
//!
//! ## The drive contract
//!
//! After **every** input — [`Endpoint::handle_packet`], [`Endpoint::handle_timeout`], or a
//! call that changes state ([`Endpoint::join`], [`Endpoint::listen`],
//! [`Endpoint::accept_rsvp`], [`Endpoint::add_local_candidate`]) — drain
//! [`Endpoint::poll_transmit`] (send each datagram from the socket bound to
//! [`Transmit::from`]) and [`Endpoint::poll_event`], then sleep until
//! [`Endpoint::poll_timeout`] or the next datagram, whichever comes first. The same holds
//! for a bare [`Agent`] and for [`turn::TurnClient`]. A STUN datagram is recognised with
//! [`stun::is_stun`] (RFC 7983: first byte 0–3); a response the endpoint does not own comes
//! back as [`Error::UnknownTransaction`] so the driver can offer it to its TURN client or NAT
//! prober. Transmits from a relayed address go through [`turn::TurnClient::send_to`].
//!
//! ```
//! use std::time::{Duration, Instant};
//! use in8_ice::{Candidate, CandidateKind, Endpoint, EndpointConfig, EndpointEvent, Event, LocalCandidate};
//!
//! // Alice (inviter) listens for her invitation; Bob (invitee) joins from it.
//! let alice_addr = "192.0.2.1:4488".parse()?;
//! let bob_addr = "192.0.2.2:5000".parse()?;
//! let mut invitation = in8_artifact::fixtures::invitation();
//! invitation.candidates = vec![Candidate::new(CandidateKind::Host, alice_addr, 0)];
//!
//! let now = Instant::now();
//! let mut alice = Endpoint::new(EndpointConfig::default(), 1);
//! alice.add_local_candidate(LocalCandidate::host(alice_addr, 0));
//! alice.listen(&invitation)?;
//! let mut bob = Endpoint::new(EndpointConfig::default(), 2);
//! bob.add_local_candidate(LocalCandidate::host(bob_addr, 0));
//! bob.join(now, &invitation)?;
//!
//! // A toy driver: deliver every transmit at once, advance time to the next timeout.
//! let mut t = now;
//! let mut bob_connected = false;
//! for _ in 0..200 {
//!     let mut moved = false;
//!     while let Some(tx) = bob.poll_transmit() {
//!         let _ = alice.handle_packet(t, tx.from, tx.to, &tx.contents);
//!         moved = true;
//!     }
//!     while let Some(tx) = alice.poll_transmit() {
//!         let _ = bob.handle_packet(t, tx.from, tx.to, &tx.contents);
//!         moved = true;
//!     }
//!     while let Some(e) = bob.poll_event() {
//!         if let EndpointEvent::Session { event: Event::Selected { nominated: true, .. }, .. } = e {
//!             bob_connected = true;
//!         }
//!     }
//!     while alice.poll_event().is_some() {}
//!     if bob_connected {
//!         break;
//!     }
//!     if !moved {
//!         let next = [alice.poll_timeout(), bob.poll_timeout()].into_iter().flatten().min();
//!         t = next.unwrap_or(t + Duration::from_millis(50)).max(t);
//!         alice.handle_timeout(t);
//!         bob.handle_timeout(t);
//!     }
//! }
//! assert!(bob_connected);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The normative description of the protocol, its bounds and failure reasons is
//! `docs/ice.md`.

mod agent;
mod candidate;
mod endpoint;
mod error;
pub mod nat;
pub mod punch;
pub mod responder;
#[cfg(feature = "sim")]
pub mod sim;
pub mod stun;
mod transmit;
pub mod turn;

pub use agent::{Agent, Config, Credentials, Event, FailureReason, KeepOpen, Role, Stats};
pub use candidate::{
    Candidate, CandidateKind, LocalCandidate, RemoteCandidate, candidate_priority, pair_priority,
};
pub use endpoint::{Endpoint, EndpointConfig, EndpointEvent, EndpointStats, SessionId};
pub use error::Error;
pub use transmit::Transmit;
