//! A deterministic multi-node harness for the real core (feature `harness`): N nodes,
//! each a [`Core`] — establishment, network, gossip, topology, ICE — over
//! `in8_ice::sim::Net` with its NAT boxes, in virtual time, with a simulated transport
//! ([`transport`]) in place of DTLS and SCTP. The model is quinn-proto's `Pair` and str0m's
//! `progress`, widened to N nodes: step every node, jump time to the next deadline.
//! Everything follows from the seed; a failure reproduces with it.
//!
//! ```
//! use std::time::Duration;
//! use in8_core::harness::{Harness, Site};
//! use in8_ice::sim::Nat;
//!
//! let mut h = Harness::new(7);
//! let a = h.add_node(Site::Public);
//! let b = h.add_node(Site::Behind(Nat::PortRestricted));
//! let inv = h.invite(a).expect("an invitation");
//! h.join(b, &inv).expect("a join");
//! assert!(h.run_until(Duration::from_secs(30), |h| h.members_of(b) == 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod build;
mod transport;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use in8_artifact::{
    Candidate, CandidateKind, Identity, MemoryLedger, NodeId, SignedInvitation, SignedMembership,
    Timestamp,
};
use in8_gossip::SignedPeerRecord;
use in8_ice::LocalCandidate;
use in8_ice::nat::{Filtering, Mapping, NatClass, PortAllocation};
use in8_ice::sim::{Nat, Net};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::Config;
use crate::events::InviteOptions;
use crate::proto::{Action, Core, Event, JoinId, NetEvent, Setup, SocketGroup, Store};

use transport::SimTransport;

/// Where a node sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// A public address.
    Public,
    /// Behind a NAT of this kind, alone.
    Behind(Nat),
}

/// What a node keeps across a restart.
#[derive(Clone, Debug, Default)]
pub struct Stored {
    /// Its credential.
    pub credential: Option<SignedMembership>,
    /// Its last-known members.
    pub members: Vec<SignedPeerRecord>,
}

/// One simulated node.
pub struct SimNode {
    /// The real core.
    pub core: Core,
    /// Its identity.
    pub identity: Identity,
    /// Its socket (inside address).
    pub addr: SocketAddr,
    /// Where it sits.
    pub site: Site,
    /// Running (not killed).
    pub alive: bool,
    /// Every event the core reported, in order.
    pub events: Vec<Event>,
    /// What it persisted.
    pub stored: Stored,
    transport: SimTransport,
    groups: HashMap<SocketGroup, Vec<SocketAddr>>,
    ledger: Arc<MemoryLedger>,
    /// The core's and the transport's next deadline, as of the last drain.
    deadline: Option<Instant>,
}

impl std::fmt::Debug for SimNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimNode")
            .field("id", &self.identity.node_id().short())
            .field("addr", &self.addr)
            .field("site", &self.site)
            .field("alive", &self.alive)
            .finish_non_exhaustive()
    }
}

/// The harness.
pub struct Harness {
    /// The simulated network.
    pub net: Net,
    /// Virtual time now.
    pub now: Instant,
    /// The nodes, by index.
    pub nodes: Vec<SimNode>,
    /// Wall-clock time at the start.
    pub wall: Timestamp,
    /// Applied to every node's configuration before it starts.
    pub configure: fn(&mut Config),
    seed: u64,
    rng: ChaCha8Rng,
    owners: HashMap<SocketAddr, usize>,
    next_port: u16,
    start: Instant,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("nodes", &self.nodes.len())
            .field("elapsed", &self.elapsed())
            .finish_non_exhaustive()
    }
}

/// The address of the virtual STUN server nodes learn their server-reflexive address
/// from.
const STUN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 3478);

fn class_of(site: Site) -> NatClass {
    let (mapping, filtering) = match site {
        Site::Public => (Mapping::NoNat, Filtering::EndpointIndependent),
        Site::Behind(Nat::FullCone) => {
            (Mapping::EndpointIndependent, Filtering::EndpointIndependent)
        }
        Site::Behind(Nat::Restricted) => {
            (Mapping::EndpointIndependent, Filtering::AddressDependent)
        }
        Site::Behind(Nat::PortRestricted) => (
            Mapping::EndpointIndependent,
            Filtering::AddressAndPortDependent,
        ),
        Site::Behind(Nat::Symmetric | Nat::SymmetricSequential) => (
            Mapping::AddressAndPortDependent,
            Filtering::AddressAndPortDependent,
        ),
    };
    NatClass {
        mapping: Some(mapping),
        filtering: Some(filtering),
        ports: match site {
            Site::Behind(Nat::Symmetric) => PortAllocation::Random,
            Site::Behind(Nat::SymmetricSequential) => PortAllocation::Sequential { delta: 1 },
            _ => PortAllocation::Preserving,
        },
    }
}

impl Harness {
    /// An empty harness whose every random choice follows `seed`.
    pub fn new(seed: u64) -> Self {
        let now = Instant::now();
        Self {
            net: Net::new(seed),
            now,
            nodes: Vec::new(),
            wall: in8_artifact::fixtures::NOW,
            configure: |_| {},
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5eed),
            owners: HashMap::new(),
            next_port: 20_000,
            start: now,
        }
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    fn ips(i: usize) -> (IpAddr, IpAddr) {
        let (a, b) = ((i >> 8) as u8, (i & 0xff) as u8);
        (
            IpAddr::V4(Ipv4Addr::new(10, a, b, 2)),
            IpAddr::V4(Ipv4Addr::new(198, 18, a, b)),
        )
    }

    /// Adds a node at `site`; returns its index. It creates a network of its own until it
    /// joins one.
    pub fn add_node(&mut self, site: Site) -> usize {
        let i = self.nodes.len();
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&self.seed.to_be_bytes());
        seed[8..16].copy_from_slice(&(i as u64).to_be_bytes());
        let identity = Identity::from_seed(&blake3::hash(&seed).into());
        let (inside, public) = Self::ips(i);
        let addr = match site {
            Site::Public => SocketAddr::new(public, 4000),
            Site::Behind(nat) => {
                self.net.add_nat(nat, inside, public);
                SocketAddr::new(inside, 4000)
            }
        };
        self.owners.insert(addr, i);
        let node = self.make_node(i, identity, addr, site, Stored::default());
        self.nodes.push(node);
        self.drain(i);
        i
    }

    fn make_node(
        &mut self,
        i: usize,
        identity: Identity,
        addr: SocketAddr,
        site: Site,
        stored: Stored,
    ) -> SimNode {
        let mut config = Config::new(identity.clone());
        config.seed = Some(self.seed ^ ((i as u64) << 20) ^ self.rng.random::<u32>() as u64);
        config.assume_nat = Some(class_of(site));
        // The core persists through actions; the harness keeps them in `SimNode::stored`
        // (no file is written: there is no driver).
        config.state_dir = Some(std::path::PathBuf::from("harness"));
        (self.configure)(&mut config);
        let mut locals = vec![LocalCandidate::host(addr, 0)];
        if let Site::Behind(_) = site {
            let mapped = self.net.reflexive(addr, STUN);
            locals.push(LocalCandidate::new(
                Candidate::new(CandidateKind::ServerReflexive, mapped, 1),
                addr,
            ));
        }
        let ledger = Arc::new(MemoryLedger::default());
        let limit = config.transport.handshake_timeout;
        let core = Core::new(
            config,
            Setup {
                now: self.now,
                wall: self.wall_now(),
                sockets: vec![addr],
                locals,
                first: Vec::new(),
                ledger: ledger.clone(),
                credential: stored.credential.clone(),
                known: stored.members.clone(),
            },
        );
        SimNode {
            core,
            transport: SimTransport::new(identity.clone(), ledger.clone(), limit),
            identity,
            addr,
            site,
            alive: true,
            events: Vec::new(),
            stored,
            groups: HashMap::new(),
            ledger,
            deadline: None,
        }
    }

    /// Wall-clock time now.
    pub fn wall_now(&self) -> Timestamp {
        self.wall + self.elapsed()
    }

    /// The node id of node `i`.
    pub fn id(&self, i: usize) -> NodeId {
        self.nodes[i].identity.node_id()
    }

    /// The index of the node with this id.
    pub fn index_of(&self, id: &NodeId) -> Option<usize> {
        self.nodes.iter().position(|n| n.identity.node_id() == *id)
    }

    /// An invitation from node `i` (default options, plus entry peers as asked).
    pub fn invite_with(
        &mut self,
        i: usize,
        options: &InviteOptions,
    ) -> crate::Result<SignedInvitation> {
        let now = self.now;
        let r = self.nodes[i].core.invite(now, options);
        self.drain(i);
        r
    }

    /// An invitation from node `i` with default options.
    pub fn invite(&mut self, i: usize) -> crate::Result<SignedInvitation> {
        self.invite_with(i, &InviteOptions::default())
    }

    /// Node `i` joins from `invitation`.
    pub fn join(&mut self, i: usize, invitation: &SignedInvitation) -> crate::Result<JoinId> {
        let now = self.now;
        let r = self.nodes[i].core.join(now, invitation);
        self.drain(i);
        r
    }

    /// Runs `f` on node `i`'s core at the current time, then drains it.
    pub fn with<T>(&mut self, i: usize, f: impl FnOnce(&mut Core, Instant) -> T) -> T {
        let now = self.now;
        let r = f(&mut self.nodes[i].core, now);
        self.drain(i);
        r
    }

    /// Stops node `i` for good: its host drops off the network.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].alive = false;
        self.net.down.insert(self.nodes[i].addr.ip());
    }

    /// Restarts a killed node from what it stored (same identity, same address, new
    /// core): it rejoins its network with no invitation.
    pub fn restart(&mut self, i: usize) {
        let (identity, addr, site, stored) = {
            let n = &self.nodes[i];
            (n.identity.clone(), n.addr, n.site, n.stored.clone())
        };
        self.net.down.remove(&addr.ip());
        let node = self.make_node(i, identity, addr, site, stored);
        self.nodes[i] = node;
        self.drain(i);
    }

    /// How many members node `i` knows as online.
    pub fn members_of(&self, i: usize) -> usize {
        self.nodes[i]
            .core
            .members()
            .iter()
            .filter(|m| m.online)
            .count()
    }

    /// Overlay links of node `i`, by peer index.
    pub fn links_of(&self, i: usize) -> Vec<usize> {
        self.nodes[i]
            .core
            .overlay_links()
            .iter()
            .filter_map(|(p, _)| self.index_of(p))
            .collect()
    }

    /// The network events node `i` reported.
    pub fn net_events(&self, i: usize) -> impl Iterator<Item = &NetEvent> + '_ {
        self.nodes[i].events.iter().filter_map(|e| match e {
            Event::Network(n) => Some(n),
            _ => None,
        })
    }

    /// The broadcast payloads node `i` received, with their origins.
    pub fn received(&self, i: usize) -> Vec<(NodeId, Vec<u8>)> {
        self.net_events(i)
            .filter_map(|e| match e {
                NetEvent::Broadcast {
                    origin, payload, ..
                } => Some((*origin, payload.clone())),
                _ => None,
            })
            .collect()
    }

    /// Carries out what node `i`'s core queued (transmits, actions, events), repeatedly.
    fn drain(&mut self, i: usize) {
        let _span = tracing::debug_span!("node", i).entered();
        loop {
            let now = self.now;
            let wall = self.wall_now();
            let n = &mut self.nodes[i];
            let mut busy = false;
            while let Some(t) = n.core.poll_transmit() {
                busy = true;
                self.net.send(now, t);
            }
            let mut actions = Vec::new();
            while let Some(a) = n.core.poll_action() {
                actions.push(a);
            }
            while let Some(e) = n.core.poll_event() {
                busy = true;
                n.events.push(e);
            }
            for a in actions {
                busy = true;
                self.act(i, now, wall, a);
            }
            let n = &mut self.nodes[i];
            for (from, to, bytes) in n.transport.out.drain(..) {
                busy = true;
                self.net.send(
                    now,
                    in8_ice::Transmit {
                        from,
                        to,
                        contents: bytes,
                    },
                );
            }
            let inputs: Vec<_> = n.transport.inputs.drain(..).collect();
            for (link, input) in inputs {
                busy = true;
                n.core.handle_link(now, link, input);
            }
            if !busy {
                break;
            }
        }
        let n = &mut self.nodes[i];
        n.deadline = [n.core.poll_timeout(), n.transport.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
    }

    fn act(&mut self, i: usize, now: Instant, wall: Timestamp, a: Action) {
        match a {
            Action::Connect {
                link,
                local,
                remote,
                mode,
                ..
            } => {
                let binding: [u8; 32] = self.rng.random();
                self.nodes[i]
                    .transport
                    .connect(now, link, local, remote, mode, binding);
            }
            Action::Reserve {
                link,
                local,
                remote,
                ..
            } => self.nodes[i].transport.reserve(link, local, remote),
            Action::Accept { link, mode } => self.nodes[i].transport.accept(now, wall, link, mode),
            Action::Close { link, .. } => self.nodes[i].transport.close(link),
            Action::Send { link, frame } => self.nodes[i].transport.send(link, frame),
            Action::InjectDtls { .. } | Action::Promote { .. } => {}
            Action::OpenSockets { group, ip, count } => {
                let mut bases = Vec::new();
                for _ in 0..count {
                    self.next_port = self.next_port.wrapping_add(1).max(20_000);
                    let b = SocketAddr::new(ip, self.next_port);
                    self.owners.insert(b, i);
                    bases.push(b);
                }
                self.nodes[i].groups.insert(group, bases.clone());
                self.nodes[i].core.sockets_opened(now, group, bases);
            }
            Action::CloseSockets { group, keep } => {
                if let Some(g) = self.nodes[i].groups.get_mut(&group) {
                    for b in g.iter().filter(|b| Some(**b) != keep) {
                        self.owners.remove(b);
                    }
                    g.retain(|b| Some(*b) == keep);
                }
            }
            Action::Store(s) => {
                let st = &mut self.nodes[i].stored;
                match s {
                    Store::Credential(c) => st.credential = Some(*c),
                    Store::Members(m) => st.members = m,
                    Store::ForgetNetwork => *st = Stored::default(),
                    Store::Invitation(_) | Store::ForgetInvitation(_) => {}
                }
            }
        }
    }

    /// The next instant something happens.
    fn next_event(&self) -> Option<Instant> {
        self.nodes
            .iter()
            .filter(|n| n.alive)
            .filter_map(|n| n.deadline)
            .chain(self.net.next_delivery())
            .min()
    }

    /// Processes everything due at the next instant. Returns `false` when nothing is left.
    pub fn step(&mut self) -> bool {
        let Some(next) = self.next_event() else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.now;
        let wall = self.wall_now();
        while let Some((from, to, bytes)) = self.net.pop(now) {
            let Some(&i) = self.owners.get(&to) else {
                continue;
            };
            if !self.nodes[i].alive {
                continue;
            }
            let span = tracing::debug_span!("node", i).entered();
            if bytes.first() == Some(&22) {
                self.nodes[i].transport.handle(wall, to, from, &bytes);
            } else {
                self.nodes[i].core.handle_datagram(now, to, from, &bytes);
            }
            drop(span);
            self.drain(i);
        }
        for i in 0..self.nodes.len() {
            let n = &mut self.nodes[i];
            if !n.alive || n.deadline.is_none_or(|t| t > now) {
                continue;
            }
            let span = tracing::debug_span!("node", i).entered();
            if n.core.poll_timeout().is_some_and(|t| t <= now) {
                n.core.handle_timeout(now);
            }
            if n.transport.poll_timeout().is_some_and(|t| t <= now) {
                n.transport.handle_timeout(now);
            }
            drop(span);
            self.drain(i);
        }
        true
    }

    /// Runs for `d` of virtual time.
    ///
    /// # Panics
    /// When virtual time stops advancing (a core asks to be woken at the same instant
    /// 100,000 times): a stuck simulation fails its test loudly, naming the timers due.
    #[allow(clippy::panic)] // a test harness: see above
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        let mut at = self.now;
        let mut spins = 0u32;
        while self.next_event().is_some_and(|t| t <= end) {
            self.step();
            if self.now == at {
                spins += 1;
                if spins == 100_000 {
                    let stuck: Vec<String> = self
                        .nodes
                        .iter()
                        .enumerate()
                        .filter(|(_, n)| n.alive && n.core.poll_timeout().is_some_and(|t| t <= at))
                        .map(|(i, n)| {
                            let due: Vec<&str> = n
                                .core
                                .timers()
                                .iter()
                                .filter(|(_, t)| t.is_some_and(|t| t <= at))
                                .map(|(name, _)| *name)
                                .collect();
                            format!("node{i}: {due:?}")
                        })
                        .collect();
                    panic!(
                        "the harness makes no progress at {:?}: {stuck:?}",
                        self.elapsed()
                    );
                }
            } else {
                at = self.now;
                spins = 0;
            }
        }
        self.now = self.now.max(end);
    }

    /// Runs until `done` holds (checked every 50 ms of virtual time) or `limit` passed;
    /// returns whether it held.
    pub fn run_until(&mut self, limit: Duration, done: impl Fn(&Harness) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.run_for(Duration::from_millis(50));
        }
        done(self)
    }

    /// Sends `frame` as it stands on node `i`'s network channel to `peer` (its overlay
    /// link), bypassing the core: what a misbehaving member could send. Returns whether a
    /// link was there.
    pub fn send_raw(&mut self, i: usize, peer: &NodeId, frame: Vec<u8>) -> bool {
        let Some(link) = self.nodes[i].core.link_to(peer) else {
            return false;
        };
        self.nodes[i].transport.send(link, frame);
        self.drain(i);
        true
    }

    /// The ledger of node `i`.
    pub fn ledger(&self, i: usize) -> &MemoryLedger {
        &self.nodes[i].ledger
    }
}
