//! The sans-IO core of an in8 node: its own protocol, as a state machine driven from
//! outside (the model is quinn-proto's `Endpoint` and str0m's `Rtc`).
//!
//! [`Core`] owns everything a node decides: the ICE endpoint (in8-ice) with its phase-1
//! listener, every establishment in progress — joins (to the issuer and the invitation's
//! entry peers), invitations and RSVPs (phase 2), birthday probing, the TURN client, NAT
//! classification — and the **network**: the membership credential, the gossip instance
//! (in8-gossip: HyParView, Plumtree, introductions), the member directory, the topology
//! policy (in8-topology) and the links it wants, member sessions dialled directly or
//! punched through an introduction. It reads no clock (time comes in as [`Instant`]), draws
//! every random choice from the configured seed, opens no socket and spawns nothing.
//!
//! ## The drive contract
//!
//! The driver (in8-core's tokio task, or [`crate::harness`]) owns the sockets, the timer
//! and the secure sessions. After **every** input — [`Core::handle_datagram`],
//! [`Core::handle_timeout`], [`Core::handle_link`], [`Core::sockets_opened`],
//! [`Core::handle_relayed_send`] or a command ([`Core::invite`], [`Core::join`],
//! [`Core::broadcast`], ...) — it drains [`Core::poll_transmit`] (send each datagram from
//! the socket bound to [`in8_ice::Transmit::from`]), [`Core::poll_action`] (carry out each
//! [`Action`]: DTLS handshakes, frames on a link's network channel, extra sockets,
//! persistence) and [`Core::poll_event`], then sleeps until [`Core::poll_timeout`] or the
//! next input. The results of actions come back as inputs: [`LinkInput`] for links,
//! [`Core::sockets_opened`] for sockets.
//!
//! Every table is bounded (see [`crate::Config`] and [`crate::NetworkConfig`]); input from
//! the network never panics and creates no state before it authenticates.

mod birthday;
mod classify;
mod directory;
mod filter;
mod ice_events;
mod invites;
mod joins;
mod links;
mod members;
pub mod network;
mod relay;
mod topology;
mod types;
pub mod wire;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use in8_artifact::{Identity, InviteId, Ledger, NodeId, SignedMembership, Timestamp};
use in8_gossip::SignedPeerRecord;
use in8_ice::{LocalCandidate, SessionId, Transmit};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::config::Config;

pub use classify::TestOne;
pub(crate) use classify::{behaviour, class_of};
pub use types::{
    Action, ClientMode, CloseCause, Event, InviteEnd, InviteProgress, JoinId, JoinProgress, LinkId,
    LinkInfo, LinkInput, NetEvent, ServerMode, SocketGroup, Store, Unreachable,
};

/// Most events, actions or transmits queued between two drains. A driver that drains
/// after every input stays far below; beyond it the core refuses new work rather than
/// dropping what it owes (final events are never dropped: see [`Core::poll_event`]).
pub const MAX_QUEUED: usize = 65_536;

/// What [`Core::new`] needs besides the configuration.
pub struct Setup {
    /// The time the driver starts at.
    pub now: Instant,
    /// Wall-clock time at `now` (artifact validity is checked against it).
    pub wall: Timestamp,
    /// The node's own sockets (their local addresses).
    pub sockets: Vec<SocketAddr>,
    /// Gathered local candidates (host and server-reflexive), their bases among
    /// `sockets`.
    pub locals: Vec<LocalCandidate>,
    /// RFC 5780 Test I answers from gathering on the first socket (NAT classification
    /// continues from them).
    pub first: Vec<TestOne>,
    /// The single-use ledger (the transport redeems invitations in it).
    pub ledger: Arc<dyn Ledger>,
    /// A stored membership credential (a restart rejoins its network); `None` creates a
    /// network of this node's own.
    pub credential: Option<SignedMembership>,
    /// Members last known before a restart (rejoined directly, no invitation).
    pub known: Vec<SignedPeerRecord>,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field("sockets", &self.sockets)
            .field("locals", &self.locals.len())
            .field("credential", &self.credential.is_some())
            .field("known", &self.known.len())
            .finish_non_exhaustive()
    }
}

/// The sans-IO core of a node. See the module docs for the drive contract.
pub struct Core {
    pub(crate) config: Arc<Config>,
    pub(crate) identity: Identity,
    pub(crate) me: NodeId,
    pub(crate) rng: ChaCha20Rng,
    epoch: Instant,
    wall_epoch: Timestamp,
    /// The latest time an input carried (for work that follows from it).
    pub(crate) last_now: Instant,
    pub(crate) ice: in8_ice::Endpoint,
    pub(crate) sockets: Vec<SocketAddr>,
    pub(crate) locals: Vec<LocalCandidate>,
    pub(crate) ledger: Arc<dyn Ledger>,
    pub(crate) invites: HashMap<InviteId, invites::Outstanding>,
    pub(crate) joins: HashMap<JoinId, joins::JoinCtx>,
    pub(crate) sessions: HashMap<SessionId, ice_events::SessionCtx>,
    pub(crate) links: HashMap<LinkId, links::LinkCtx>,
    /// Links whose connection the application holds (never closed as not needed).
    pub(crate) held: std::collections::HashSet<LinkId>,
    pub(crate) birthday: birthday::Table,
    pub(crate) relay: Option<relay::Relay>,
    pub(crate) classifier: Option<classify::Classifier>,
    pub(crate) nat: Option<in8_ice::nat::NatClass>,
    pub(crate) filter: Option<filter::Filter>,
    pub(crate) net: network::NetState,
    gather_until: Option<Instant>,
    next_id: u64,
    transmits: VecDeque<Transmit>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    /// Actions and transmits refused because the driver did not drain (should stay 0).
    pub(crate) overflow: u64,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("node", &self.me.short())
            .field("sessions", &self.sessions.len())
            .field("links", &self.links.len())
            .field("invites", &self.invites.len())
            .finish_non_exhaustive()
    }
}

impl Core {
    /// A core for `config` (its identity, seed and bounds) with the gathered `setup`.
    pub fn new(config: Config, setup: Setup) -> Self {
        let seed = config.seed.unwrap_or(0);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut ice = in8_ice::Endpoint::new(config.ice.clone(), rng.random());
        for c in &setup.locals {
            ice.add_local_candidate(*c);
        }
        let filter = config.inbound_filter.map(filter::Filter::new);
        let classifier = match (config.assume_nat, setup.sockets.first()) {
            (None, Some(s)) => classify::Classifier::new(
                *s,
                &setup.first,
                setup.now,
                config.gather_timeout,
                rng.random(),
            ),
            _ => None,
        };
        let relay = config.turn.as_ref().and_then(|t| {
            let base = setup
                .sockets
                .iter()
                .find(|h| h.is_ipv4() == t.addr.is_ipv4())?;
            Some(relay::Relay::new(t, *base, rng.random()))
        });
        let gather_until = Some(if relay.is_some() {
            setup.now + config.gather_timeout
        } else {
            setup.now
        });
        let identity = config.identity.clone();
        let me = identity.node_id();
        let config = Arc::new(config);
        let mut core = Self {
            net: network::NetState::placeholder(setup.now),
            identity,
            me,
            rng,
            epoch: setup.now,
            wall_epoch: setup.wall,
            last_now: setup.now,
            ice,
            sockets: setup.sockets.clone(),
            locals: setup.locals.clone(),
            ledger: setup.ledger.clone(),
            invites: HashMap::new(),
            joins: HashMap::new(),
            sessions: HashMap::new(),
            links: HashMap::new(),
            held: std::collections::HashSet::new(),
            birthday: birthday::Table::new(),
            relay,
            classifier,
            nat: config.assume_nat,
            filter,
            gather_until,
            next_id: 0,
            transmits: VecDeque::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            overflow: 0,
            config,
        };
        let now = setup.now;
        if core.classifier.is_none() {
            core.push_event(Event::Classified(core.nat));
        }
        if let Some(r) = &mut core.relay {
            r.client.allocate(now);
        }
        core.flush_relay(now);
        core.start_network(now, setup.credential, setup.known);
        core.classify_timeout(now);
        core.handle_timeout(now);
        core
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.me
    }

    /// Wall-clock time at `now`.
    pub fn wall(&self, now: Instant) -> Timestamp {
        self.wall_epoch + now.saturating_duration_since(self.epoch)
    }

    /// The gossip clock at `now`.
    pub(crate) fn gtime(&self, now: Instant) -> in8_gossip::Time {
        in8_gossip::Time::from_duration(now.saturating_duration_since(self.epoch))
    }

    /// The instant a gossip time stands for.
    pub(crate) fn instant_of(&self, t: in8_gossip::Time) -> Instant {
        self.epoch + t.as_duration()
    }

    /// This node's NAT class (assumed, or classified at start; `None` while unknown).
    pub fn nat(&self) -> Option<in8_ice::nat::NatClass> {
        self.nat
    }

    /// The candidates this node advertises.
    pub fn candidates(&self) -> Vec<in8_artifact::Candidate> {
        self.locals.iter().map(|l| l.candidate).collect()
    }

    /// The ICE endpoint's counters.
    pub fn ice_stats(&self) -> in8_ice::EndpointStats {
        self.ice.stats()
    }

    /// Notes the time of an input.
    pub(crate) fn tick(&mut self, now: Instant) {
        if now > self.last_now {
            self.last_now = now;
        }
    }

    pub(crate) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(crate) fn push_event(&mut self, e: Event) {
        // Events are never dropped: a driver that stops draining is a bug the core cannot
        // fix by forgetting what it owes. The bound is enforced on new work instead
        // ([`Core::busy`]).
        self.events.push_back(e);
    }

    pub(crate) fn push_action(&mut self, a: Action) {
        self.actions.push_back(a);
    }

    /// Whether the output queues are over [`MAX_QUEUED`]: new work is refused.
    pub(crate) fn busy(&self) -> bool {
        self.events.len() + self.actions.len() + self.transmits.len() >= MAX_QUEUED
    }

    pub(crate) fn push_transmit(&mut self, t: Transmit) {
        if self.transmits.len() >= MAX_QUEUED {
            self.overflow += 1;
            return;
        }
        self.transmits.push_back(t);
    }

    /// The next datagram to send, from the socket whose address is its `from`.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Core::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers().into_iter().filter_map(|(_, t)| t).min()
    }

    /// Every component's next deadline, by name (for diagnostics; [`Core::poll_timeout`]
    /// is their minimum).
    pub fn timers(&self) -> [(&'static str, Option<Instant>); 8] {
        [
            ("ice", self.ice.poll_timeout()),
            (
                "invitations",
                self.invites.values().map(|o| o.deadline).min(),
            ),
            (
                "relay",
                self.relay.as_ref().and_then(|r| r.client.poll_timeout()),
            ),
            ("gathering", self.gather_until),
            ("birthday", self.birthday_deadline()),
            (
                "classification",
                self.classifier.as_ref().and_then(|c| c.poll_timeout()),
            ),
            ("links", self.links_deadline()),
            ("network", self.network_deadline()),
        ]
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
        self.ice.handle_timeout(now);
        if let Some(r) = &mut self.relay {
            r.client.handle_timeout(now);
        }
        self.flush_relay(now);
        if self.gather_until.is_some_and(|t| t <= now) {
            self.gathered();
        }
        self.expire_invitations(now);
        self.birthday_timeout(now);
        self.classify_timeout(now);
        self.links_timeout(now);
        self.network_timeout(now);
        self.flush(now, None);
    }

    /// Gathering is over (relay allocated, failed or timed out).
    pub(crate) fn gathered(&mut self) {
        if self.gather_until.take().is_some() {
            self.push_event(Event::Gathered);
        }
    }

    /// One datagram received on the local socket `local` (a node socket, a birthday
    /// socket, a promoted one) from `from`. STUN goes to ICE (or to the TURN client, the
    /// NAT classifier, the member-session resolver); anything else is not the core's.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        from: SocketAddr,
        data: &[u8],
    ) {
        self.tick(now);
        if self.is_punch_socket(local) {
            self.handle_punch_datagram(now, local, from, data);
            self.flush(now, Some(local));
            return;
        }
        // The TURN server was contacted first: a NAT lets its answers in.
        if self.is_from_relay(local, from) {
            self.handle_relay_datagram(now, data);
            self.flush(now, Some(local));
            return;
        }
        if let Some(f) = &self.filter
            && !f.admits(local, from)
        {
            return;
        }
        if !in8_ice::stun::is_stun(data) {
            return;
        }
        if self.ice.unclaimed_username(data).is_some() {
            self.resolve_member_check(now, local, from, data);
        } else {
            // A response to no check of ICE's: the NAT classification's binding request.
            if let Err(in8_ice::Error::UnknownTransaction) =
                self.ice.handle_packet(now, from, local, data)
            {
                self.classify_response(local, data);
            }
        }
        self.flush(now, Some(local));
    }

    /// Sends one ICE transmit: through the relay when it leaves from the relayed address,
    /// else from its socket (through the filtering shim when one is configured).
    pub(crate) fn send_ice(&mut self, now: Instant, t: Transmit) {
        if self.relay.as_ref().and_then(|r| r.relayed) == Some(t.from) {
            self.send_relayed(now, t.to, &t.contents);
            return;
        }
        let punch = self.sockets_is_punch(t.from);
        if let Some(f) = &mut self.filter {
            if !f.passes_ice_out() && !punch {
                return;
            }
            f.note_sent(t.from, t.to);
        }
        self.push_transmit(t);
    }

    fn sockets_is_punch(&self, base: SocketAddr) -> bool {
        !self.sockets.contains(&base)
    }

    /// Handles every pending ICE event, then sends every pending transmit, until neither
    /// is left. `current` is the socket the last datagram arrived on. Events go first:
    /// the inviter reserves its DTLS route on the event of a new peer, and that must
    /// happen before the check's response leaves, or the invitee's ClientHello (sent the
    /// moment the response arrives) can beat the route and be dropped, costing a DTLS
    /// retransmission (500 ms).
    pub(crate) fn flush(&mut self, now: Instant, current: Option<SocketAddr>) {
        loop {
            let mut busy = false;
            while let Some(ev) = self.ice.poll_event() {
                busy = true;
                self.handle_ice_event(now, ev, current);
            }
            while let Some(t) = self.ice.poll_transmit() {
                busy = true;
                self.send_ice(now, t);
            }
            if !busy {
                break;
            }
        }
        self.release_validated(now);
        self.birthday_gc();
        self.drain_gossip(now);
    }

    /// The driver's count of work it could not queue (0 when it drains as it should).
    pub fn overflow(&self) -> u64 {
        self.overflow
    }
}

/// `d` with ±`spread` (0..1) random jitter.
pub(crate) fn jitter(rng: &mut ChaCha20Rng, d: Duration, spread: f64) -> Duration {
    d.mul_f64(1.0 + spread * (rng.random::<f64>() * 2.0 - 1.0))
}
