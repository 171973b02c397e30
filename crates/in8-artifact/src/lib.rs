//! # in8-artifact
//!
//! The artifacts of in8: the **invitation** a node hands out of band, the **RSVP** an invitee
//! sends back when one-way establishment fails, **membership credentials** chained to a
//! network's creator, and **revocation records**. Plus what they need: node identities
//! (ed25519), HKDF-derived secrets (ICE credentials, join-proof and RSVP keys), the issuer's
//! single-use ledger, and text / QR / NFC forms.
//!
//! Sans-IO: nothing here opens a socket, reads a clock or spawns; time is passed in as
//! [`Timestamp`] and randomness as a [`rand_core::CryptoRng`]. The only I/O is the optional
//! files the caller asks for ([`FileLedger`], [`identity_file`]).
//!
//! Encoding is deterministic CBOR (RFC 8949 §4.2) with small integer keys; decoding is strict
//! (trailing bytes, duplicate or unsorted keys, indefinite lengths, long integer heads,
//! unknown critical keys, wrong sizes and unknown versions are each their own [`Error`]).
//! The normative format is in `docs/artifact.md`.
//!
//! ```
//! use core::time::Duration;
//! use in8_artifact::*;
//! use rand::SeedableRng;
//!
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
//! let alice = Identity::generate(&mut rng);
//! let now = Timestamp::from_unix(1_800_000_000);
//! let network = Membership::genesis(&alice, 1, now + Duration::from_secs(86_400 * 365));
//!
//! // Alice invites.
//! let candidates = vec![Candidate::new(CandidateKind::Host, "192.0.2.10:4488".parse()?, 0)];
//! let invitation = Invitation::new(
//!     network.membership().network,
//!     alice.node_id(),
//!     InviteSecret::generate(&mut rng),
//!     candidates,
//!     now,
//!     Duration::from_secs(900),
//! )
//! .sign(&alice)?;
//! let text = text::encode_text(invitation.to_bytes()); // "in8:..."
//!
//! // Bob reads and verifies it.
//! let (bytes, _form) = text::decode_text(&text)?;
//! let received = SignedInvitation::decode(&bytes)?;
//! let inv = received.verify(now, &VerifyPolicy::default(), &NoRevocations)?;
//! assert_eq!(inv.issuer, alice.node_id());
//!
//! // Alice redeems it once; a second use is refused.
//! let ledger = MemoryLedger::default();
//! ledger.redeem(&inv.invite_id(), inv.uses, inv.expires, now)?;
//! assert!(matches!(
//!     ledger.redeem(&inv.invite_id(), inv.uses, inv.expires, now),
//!     Err(Error::AlreadyUsed { .. })
//! ));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod artifact;
mod candidate;
mod cbor;
pub mod cert;
mod envelope;
mod error;
pub mod fixtures;
mod identity;
pub mod identity_file;
mod ids;
mod invitation;
mod ledger;
mod member_ice;
mod membership;
mod nat;
mod policy;
#[cfg(feature = "qr")]
pub mod qr;
mod revocation;
mod rsvp;
mod secrets;
pub mod text;
mod time;

pub use artifact::Artifact;
pub use candidate::{Candidate, CandidateKind, MAX_CANDIDATES};
pub use cbor::{MAX_ARTIFACT_BYTES, MAX_DEPTH, MAX_EXTENSIONS};
pub use envelope::{ArtifactKind, FORMAT_VERSION, peek_kind};
pub use error::{Error, Result};
pub use identity::{Identity, NODE_ID_LEN, NodeId, SIGNATURE_LEN};
pub use ids::{InviteId, NetworkId};
pub use invitation::{
    Check, EntryPeer, Invitation, MAX_ENTRY_PEERS, MAX_SERVER_HINTS, MAX_USES, SignedInvitation,
};
pub use ledger::{
    DEFAULT_LEDGER_CAPACITY, EntryStatus, FileLedger, Ledger, MemoryLedger, Redemption,
};
pub use member_ice::{
    CALLER_UFRAG_LEN, MemberIce, PairSecret, caller_ufrag, make_token, parse_caller_ufrag,
    token_time,
};
pub use membership::{MAX_CHAIN_DEPTH, Membership, SignedMembership};
pub use nat::{NatBehaviour, NatFiltering, NatMapping};
pub use policy::{Capabilities, Flags, ServerHint, ServerKind, TopologyRole, VerifyPolicy};
pub use revocation::{
    NoRevocations, Revocation, RevocationSet, RevocationTarget, Revocations, SignedRevocation,
};
pub use rsvp::{RSVP_MAC_LEN, Rsvp, SignedRsvp};
pub use secrets::{InviteSecret, MAX_SECRET_LEN, MIN_SECRET_LEN, check_ufrag};
pub use time::Timestamp;
