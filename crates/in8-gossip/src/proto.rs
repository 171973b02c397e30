//! The protocol core, generic over the peer identifier `P`.
//!
//! [`State`] runs HyParView membership, Plumtree broadcast and introductions for one node.
//! It is generic so the same code runs with [`in8_artifact::NodeId`]s behind the
//! authenticated [`crate::Gossip`] wrapper and with compact `u32` indices in the simulator
//! (in8-sim), where a million of them must fit in memory. `State` trusts its input: the
//! caller admits peers (credentials, signatures) before handing their messages in.
//!
//! Output goes to an [`Io`] sink the caller owns: messages to send, timers to arm and
//! events for the application. Randomness comes from the `rng` argument of each call.

use core::fmt::Debug;
use core::hash::Hash;
use core::time::Duration;

use bytes::Bytes;

use crate::Time;

mod broadcast;
mod membership;
mod message;
mod state;

pub use message::{Message, MessageId, Priority};
pub use state::State;

/// What a peer identifier must be: small, copyable, comparable.
pub trait PeerId: Copy + Eq + Ord + Hash + Debug {}
impl<T: Copy + Eq + Ord + Hash + Debug> PeerId for T {}

/// A timer the core asked for; hand it back through [`State::handle_timer`] when it fires.
/// Stale timers are harmless: the core checks its state when one fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer<P> {
    /// Time for a shuffle (re-armed every time, jittered).
    Shuffle,
    /// The active view is not full: try a passive peer.
    Repair,
    /// Probe a recently lost neighbour (partition healing).
    Heal,
    /// Prune the broadcast caches.
    Expire,
    /// A NEIGHBOR request or introduction towards this peer may have timed out.
    DialTimeout(P),
    /// A message announced by IHAVE may still be missing.
    Graft(MessageId),
}

/// Why the driver could not reach a peer, or lost the link to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkFailure {
    /// An established link closed or stopped answering (crash, partition, timeout).
    Closed,
    /// A direct attempt failed; a simultaneous open arranged by an introducer may work.
    NeedsIntroduction,
    /// Neither a direct attempt nor hole punching can work; only a relay could.
    NeedsRelay,
}

/// What the application (or the driver) learns from the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event<P> {
    /// A peer entered the active view: the link is part of the overlay.
    NeighborUp(P),
    /// A peer left the active view; the driver may close the link.
    NeighborDown(P),
    /// A broadcast message was delivered (first copy).
    Delivered {
        /// Its id.
        id: MessageId,
        /// Its payload.
        payload: Bytes,
        /// The neighbour it came from.
        from: P,
        /// Hops from the origin (1 = from the origin itself).
        hops: u16,
    },
    /// An introducer arranged a simultaneous open: start punching towards `peer` after
    /// `delay`, then report [`State::link_up`] or [`State::link_failed`].
    PunchNow {
        /// Who to punch towards.
        peer: P,
        /// How long to wait before the first packet (both sides start together).
        delay: Duration,
        /// The common neighbour that relayed the offers.
        introducer: P,
        /// The attempt's token (the same on both sides).
        token: u64,
    },
    /// Our JOIN through `contact` went unanswered or the contact became unreachable; the
    /// driver may retry with another entry peer.
    JoinFailed {
        /// The contact.
        contact: P,
    },
}

/// One output of the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutEvent<P> {
    /// Send `message` to `to` (over the existing link, or after dialling it).
    Send {
        /// The recipient.
        to: P,
        /// The message.
        message: Message<P>,
    },
    /// Call [`State::handle_timer`] with `timer` at `at`.
    Timer {
        /// When.
        at: Time,
        /// Which timer.
        timer: Timer<P>,
    },
    /// Tell the application.
    Event(Event<P>),
}

/// Where the core writes its output. The driver drains it after every call.
pub trait Io<P> {
    /// Accepts one output.
    fn push(&mut self, out: OutEvent<P>);
}

impl<P> Io<P> for Vec<OutEvent<P>> {
    fn push(&mut self, out: OutEvent<P>) {
        Vec::push(self, out);
    }
}

impl<P> Io<P> for std::collections::VecDeque<OutEvent<P>> {
    fn push(&mut self, out: OutEvent<P>) {
        self.push_back(out);
    }
}

pub(crate) fn send<P>(io: &mut impl Io<P>, to: P, message: Message<P>) {
    io.push(OutEvent::Send { to, message });
}

pub(crate) fn timer<P>(io: &mut impl Io<P>, at: Time, timer: Timer<P>) {
    io.push(OutEvent::Timer { at, timer });
}

pub(crate) fn event<P>(io: &mut impl Io<P>, e: Event<P>) {
    io.push(OutEvent::Event(e));
}
