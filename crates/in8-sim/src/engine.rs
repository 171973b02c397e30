//! The event loop: one priority queue of timestamped events for all nodes.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use in8_gossip::proto::{Event, OutEvent, Timer};
use in8_gossip::{LinkFailure, Message, State, Time};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::metrics::{Disturbance, Sample, Track};
use crate::net::{LatencyModel, Nat, Reach, mix64, reach, unit};
use crate::scenario::{Action, Scenario};
use crate::topo::TopologyDriver;
use crate::{Error, Report};

mod control;
mod observe;
mod queue;

pub use observe::CONVERGED_SYMMETRY;

use queue::{Key, Queue};

pub(crate) use control::Control;

/// One simulated node: the real in8-gossip state machine plus the network's view of it.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) state: State<u32>,
    pub(crate) nat: Nat,
    pub(crate) alive: bool,
    pub(crate) joined: bool,
    pub(crate) group: u8,
    pub(crate) sent: u32,
    pub(crate) recv: u32,
    pub(crate) bytes_sent: u64,
    pub(crate) bytes_recv: u64,
}

#[derive(Debug)]
pub(crate) enum Kind {
    Deliver {
        from: u32,
        msg: Message<u32>,
        bytes: u32,
    },
    Timer(Timer<u32>),
    LinkFailed {
        peer: u32,
        reason: LinkFailure,
    },
    Punch {
        peer: u32,
    },
    Join,
    Control(u32),
    Sample,
    Topology,
    Prune,
}

/// A queued event: which node it is for, and what.
#[derive(Debug)]
pub(crate) struct Entry {
    node: u32,
    kind: Kind,
}

/// Counters over the whole run.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    /// Messages sent, per message name.
    pub by_kind: Vec<(&'static str, u64)>,
    /// Messages lost to the loss model.
    pub lost: u64,
    /// Sends that failed because the peer was down or partitioned away.
    pub failed_closed: u64,
    /// Dials that needed an introduction.
    pub needed_introduction: u64,
    /// Dials that needed a relay.
    pub needed_relay: u64,
    /// Simultaneous opens that succeeded.
    pub punches_ok: u64,
    /// Simultaneous opens that failed.
    pub punches_failed: u64,
    /// Links carried by a relay.
    pub relayed: u64,
}

/// A running simulation.
#[derive(Debug)]
pub struct Sim {
    pub(crate) sc: Scenario,
    pub(crate) cfg: Arc<in8_gossip::Config>,
    pub(crate) lat: LatencyModel,
    pub(crate) nodes: Vec<Node>,
    queue: Queue<Entry>,
    seq: u64,
    pub(crate) now: Time,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) out: Vec<OutEvent<u32>>,
    punched: HashMap<(u32, u32), Time>,
    track_links: bool,
    pub(crate) members: Vec<u32>,
    pub(crate) controls: Vec<Control>,
    pub(crate) tracks: Vec<Track>,
    pub(crate) samples: Vec<Sample>,
    pub(crate) disturbances: Vec<Disturbance>,
    pub(crate) events: u64,
    pub(crate) record_len: usize,
    pub(crate) fixed_sender: Option<u32>,
    pub(crate) partitioned: bool,
    pub(crate) totals: Totals,
    kind_counts: Vec<u64>,
    pub(crate) topology: Option<TopologyDriver>,
    pub(crate) peak_queue: usize,
    end: Time,
}

const KINDS: [&str; 15] = [
    "join",
    "join-reply",
    "forward-join",
    "neighbor",
    "neighbor-reply",
    "disconnect",
    "shuffle",
    "shuffle-reply",
    "gossip",
    "ihave",
    "graft",
    "prune",
    "intro-request",
    "introduce",
    "intro-unavailable",
];

fn kind_index(m: &Message<u32>) -> usize {
    match m {
        Message::Join => 0,
        Message::JoinReply { .. } => 1,
        Message::ForwardJoin { .. } => 2,
        Message::Neighbor { .. } => 3,
        Message::NeighborReply { .. } => 4,
        Message::Disconnect { .. } => 5,
        Message::Shuffle { .. } => 6,
        Message::ShuffleReply { .. } => 7,
        Message::Gossip { .. } => 8,
        Message::IHave { .. } => 9,
        Message::Graft { .. } => 10,
        Message::Prune => 11,
        Message::IntroRequest { .. } => 12,
        Message::Introduce { .. } => 13,
        Message::IntroUnavailable { .. } => 14,
    }
}

pub(crate) fn secs(s: f64) -> Time {
    Time::from_micros((s.max(0.0) * 1e6) as u64)
}

impl Sim {
    /// Builds the simulation: nodes, NATs and the whole timeline.
    pub fn new(sc: Scenario) -> Result<Self, Error> {
        sc.validate()?;
        let cfg = Arc::new(sc.gossip.config()?);
        let mut rng = ChaCha8Rng::seed_from_u64(sc.seed);
        let lat = LatencyModel::new(sc.network.latency.clone(), mix64(sc.seed ^ 0x1a7));
        let record_len = if sc.network.record_bytes == 0 {
            crate::sample_record_len()
        } else {
            sc.network.record_bytes
        };
        let topology = match &sc.topology {
            Some(t) => Some(TopologyDriver::new(t)?),
            None => None,
        };
        let mut sim = Sim {
            cfg,
            lat,
            nodes: Vec::new(),
            queue: Queue::new(),
            seq: 0,
            now: Time::ZERO,
            rng: ChaCha8Rng::seed_from_u64(mix64(sc.seed)),
            out: Vec::new(),
            punched: HashMap::new(),
            track_links: false,
            members: Vec::new(),
            controls: Vec::new(),
            tracks: Vec::new(),
            samples: Vec::new(),
            disturbances: Vec::new(),
            events: 0,
            record_len,
            fixed_sender: None,
            partitioned: false,
            totals: Totals::default(),
            kind_counts: vec![0; KINDS.len()],
            topology,
            peak_queue: 0,
            end: secs(sc.duration_s),
            sc,
        };
        // Initial joins.
        let interval = sim.sc.join.interval_ms / 1000.0;
        for i in 0..sim.sc.nodes {
            sim.add_node(&mut rng);
            sim.push(secs(f64::from(i) * interval), i, Kind::Join);
        }
        let joined_by = secs(f64::from(sim.sc.nodes) * interval);
        sim.disturbances
            .push(Disturbance::new("initial joins", joined_by));
        // The timeline.
        let actions = sim.sc.events.clone();
        for a in &actions {
            sim.schedule_action(a, &mut rng);
        }
        if sim.sc.sample_interval_s > 0.0 {
            sim.push(secs(sim.sc.sample_interval_s), 0, Kind::Sample);
        }
        if let Some(t) = &sim.topology {
            let at = secs(t.interval_s);
            sim.push(at, 0, Kind::Topology);
        }
        sim.track_links = sim.nodes.iter().any(|n| !n.nat.reachable());
        if sim.track_links {
            sim.push(secs(5.0), 0, Kind::Prune);
        }
        Ok(sim)
    }

    pub(crate) fn add_node(&mut self, rng: &mut ChaCha8Rng) -> u32 {
        let i = self.nodes.len() as u32;
        let nat = Nat::draw(&self.sc.network.nat, rng.random());
        self.nodes.push(Node {
            state: State::new(i, self.cfg.clone()),
            nat,
            alive: true,
            joined: false,
            group: 0,
            sent: 0,
            recv: 0,
            bytes_sent: 0,
            bytes_recv: 0,
        });
        i
    }

    pub(crate) fn push(&mut self, at: Time, node: u32, kind: Kind) {
        self.seq += 1;
        let key = Key {
            at: at.as_micros(),
            seq: self.seq,
        };
        self.queue.push(key, Entry { node, kind });
    }

    /// Runs to the end of the scenario and reports.
    pub fn run(mut self) -> Report {
        let started = std::time::Instant::now();
        let end = self.end;
        self.run_until(end);
        let wall = started.elapsed();
        self.report(wall)
    }

    /// Processes every event up to and including `until`.
    pub fn run_until(&mut self, until: Time) {
        let until_us = until.as_micros();
        while self.queue.peek_key().is_some_and(|k| k.at <= until_us) {
            self.peak_queue = self.peak_queue.max(self.queue.len());
            let Some((k, e)) = self.queue.pop() else {
                break;
            };
            self.now = Time::from_micros(k.at);
            self.events += 1;
            self.dispatch(e.node, e.kind);
        }
        self.now = self.now.max(until);
    }

    /// Simulated time now.
    pub fn now(&self) -> Time {
        self.now
    }

    fn dispatch(&mut self, n: u32, kind: Kind) {
        let now = self.now;
        match kind {
            Kind::Deliver { from, msg, bytes } => self.deliver(from, n, msg, bytes),
            Kind::Timer(t) => {
                let node = &mut self.nodes[n as usize];
                if node.alive {
                    node.state
                        .handle_timer(now, t, &mut self.rng, &mut self.out);
                    self.flush(n);
                }
            }
            Kind::LinkFailed { peer, reason } => {
                let node = &mut self.nodes[n as usize];
                if node.alive {
                    node.state
                        .link_failed(now, peer, reason, &mut self.rng, &mut self.out);
                    self.flush(n);
                }
            }
            Kind::Punch { peer } => self.punch(n, peer),
            Kind::Join => self.join(n),
            Kind::Control(i) => self.control(i),
            Kind::Sample => {
                let s = self.sample();
                self.samples.push(s);
                self.push(
                    now + secs(self.sc.sample_interval_s).as_duration(),
                    0,
                    Kind::Sample,
                );
            }
            Kind::Topology => {
                self.apply_topology();
                if let Some(t) = &self.topology {
                    let at = now + secs(t.interval_s).as_duration();
                    self.push(at, 0, Kind::Topology);
                }
            }
            Kind::Prune => {
                self.punched.retain(|_, t| *t > now);
                self.push(now + secs(5.0).as_duration(), 0, Kind::Prune);
            }
        }
    }

    fn deliver(&mut self, from: u32, to: u32, msg: Message<u32>, bytes: u32) {
        let now = self.now;
        let dead = !self.nodes[to as usize].alive || self.split(from, to);
        if dead {
            if self.nodes[from as usize].alive && !matches!(msg, Message::Disconnect { .. }) {
                self.totals.failed_closed += 1;
                let at = now + self.detect();
                self.push(
                    at,
                    from,
                    Kind::LinkFailed {
                        peer: to,
                        reason: LinkFailure::Closed,
                    },
                );
            }
            return;
        }
        if let Message::Gossip { id, .. } = &msg
            && let Some(t) = self.tracks.get_mut((*id as usize).wrapping_sub(1))
        {
            t.payload_msgs += 1;
        }
        let node = &mut self.nodes[to as usize];
        node.recv += 1;
        node.bytes_recv += u64::from(bytes);
        node.state
            .handle_message(now, from, msg, &mut self.rng, &mut self.out);
        self.flush(to);
    }

    fn detect(&self) -> core::time::Duration {
        core::time::Duration::from_millis(self.sc.network.detect_ms)
    }

    pub(crate) fn split(&self, a: u32, b: u32) -> bool {
        self.partitioned && self.nodes[a as usize].group != self.nodes[b as usize].group
    }

    pub(crate) fn flush(&mut self, n: u32) {
        let mut out = core::mem::take(&mut self.out);
        for o in out.drain(..) {
            match o {
                OutEvent::Send { to, message } => self.transmit(n, to, message),
                OutEvent::Timer { at, timer } => {
                    let at = at.max(self.now);
                    self.push(at, n, Kind::Timer(timer));
                }
                OutEvent::Event(e) => self.on_event(n, e),
            }
        }
        self.out = out;
    }

    fn on_event(&mut self, n: u32, e: Event<u32>) {
        match e {
            Event::Delivered { id, hops, .. } => {
                let now = self.now;
                if let Some(t) = self.tracks.get_mut((id as usize).wrapping_sub(1)) {
                    t.delivered(n, hops, now);
                }
            }
            Event::PunchNow { peer, delay, .. } => {
                let at = self.now + delay + self.one_way(n, peer).as_duration();
                self.push(at, n, Kind::Punch { peer });
            }
            Event::NeighborUp(_) | Event::NeighborDown(_) | Event::JoinFailed { .. } => {}
        }
    }

    fn one_way(&self, a: u32, b: u32) -> Time {
        Time::from_micros(self.lat.one_way_us(a, b))
    }

    fn key(a: u32, b: u32) -> (u32, u32) {
        if a < b { (a, b) } else { (b, a) }
    }

    fn linked(&self, a: u32, b: u32) -> bool {
        self.nodes[a as usize].state.is_active(b)
            || self.nodes[b as usize].state.is_active(a)
            || self
                .punched
                .get(&Self::key(a, b))
                .is_some_and(|t| *t > self.now)
    }

    fn transmit(&mut self, from: u32, to: u32, msg: Message<u32>) {
        let now = self.now;
        let bytes = crate::wire_len(&msg, self.record_len);
        self.kind_counts[kind_index(&msg)] += 1;
        {
            let node = &mut self.nodes[from as usize];
            node.sent += 1;
            node.bytes_sent += bytes as u64;
        }
        if to as usize >= self.nodes.len() {
            return;
        }
        if !self.nodes[to as usize].alive || self.split(from, to) {
            if !matches!(msg, Message::Disconnect { .. }) {
                self.totals.failed_closed += 1;
                let at = now + self.detect();
                self.push(
                    at,
                    from,
                    Kind::LinkFailed {
                        peer: to,
                        reason: LinkFailure::Closed,
                    },
                );
            }
            return;
        }
        let one = self.lat.one_way_us(from, to);
        let delay = if !self.track_links || self.linked(from, to) {
            one
        } else {
            let r = reach(self.nodes[from as usize].nat, self.nodes[to as usize].nat);
            match r {
                Reach::Direct => {
                    // Handshake first (one round trip), then the message; the link stays.
                    self.punched
                        .insert(Self::key(from, to), now + secs(30.0).as_duration());
                    3 * one
                }
                Reach::Relay if self.sc.network.relay => {
                    self.totals.relayed += 1;
                    self.punched
                        .insert(Self::key(from, to), now + secs(30.0).as_duration());
                    5 * one
                }
                Reach::Introduction | Reach::Relay => {
                    let reason = if r == Reach::Relay {
                        self.totals.needed_relay += 1;
                        LinkFailure::NeedsRelay
                    } else {
                        self.totals.needed_introduction += 1;
                        LinkFailure::NeedsIntroduction
                    };
                    let at =
                        now + core::time::Duration::from_millis(self.sc.network.dial_timeout_ms);
                    self.push(at, from, Kind::LinkFailed { peer: to, reason });
                    return;
                }
            }
        };
        if self.sc.network.loss > 0.0 && self.rng.random_bool(self.sc.network.loss) {
            self.totals.lost += 1;
            return;
        }
        let at = now + core::time::Duration::from_micros(delay);
        self.push(
            at,
            to,
            Kind::Deliver {
                from,
                msg,
                bytes: bytes as u32,
            },
        );
    }

    fn punch(&mut self, n: u32, peer: u32) {
        let now = self.now;
        if !self.nodes[n as usize].alive {
            return;
        }
        let ok = self.nodes[peer as usize].alive
            && !self.split(n, peer)
            && (reach(self.nodes[n as usize].nat, self.nodes[peer as usize].nat) != Reach::Relay
                || self.sc.network.relay);
        if ok {
            self.totals.punches_ok += 1;
            self.punched
                .insert(Self::key(n, peer), now + secs(30.0).as_duration());
            self.nodes[n as usize]
                .state
                .link_up(now, peer, &mut self.out);
        } else {
            self.totals.punches_failed += 1;
            let reason = if self.nodes[peer as usize].alive {
                LinkFailure::NeedsRelay
            } else {
                LinkFailure::Closed
            };
            self.nodes[n as usize].state.link_failed(
                now,
                peer,
                reason,
                &mut self.rng,
                &mut self.out,
            );
        }
        self.flush(n);
    }

    fn join(&mut self, n: u32) {
        let now = self.now;
        if !self.nodes[n as usize].alive || self.nodes[n as usize].joined {
            return;
        }
        let contact = self.pick_contact(n);
        self.nodes[n as usize].joined = true;
        match contact {
            Some(c) => {
                // The invitation flow (ICE, DTLS, join proof) made this link.
                if self.track_links {
                    self.punched
                        .insert(Self::key(n, c), now + secs(60.0).as_duration());
                }
                if self.partitioned {
                    self.nodes[n as usize].group = self.nodes[c as usize].group;
                }
                self.nodes[n as usize]
                    .state
                    .join(now, c, &mut self.rng, &mut self.out);
            }
            None => self.nodes[n as usize]
                .state
                .start(now, &mut self.rng, &mut self.out),
        }
        self.members.push(n);
        self.flush(n);
    }

    fn pick_contact(&mut self, n: u32) -> Option<u32> {
        if self.sc.join.contact == "first"
            && let Some(&f) = self.members.first()
            && self.nodes[f as usize].alive
        {
            return Some(f);
        }
        for _ in 0..64 {
            let &c = self.members.choose(&mut self.rng)?;
            if c != n && self.nodes[c as usize].alive {
                return Some(c);
            }
        }
        self.members
            .iter()
            .copied()
            .find(|&c| c != n && self.nodes[c as usize].alive)
    }

    /// Live, joined node indices.
    pub(crate) fn live(&self) -> Vec<u32> {
        self.members
            .iter()
            .copied()
            .filter(|&i| self.nodes[i as usize].alive)
            .collect()
    }

    pub(crate) fn kill(&mut self, fraction: f64, graceful: bool) -> usize {
        let mut live = self.live();
        live.shuffle(&mut self.rng);
        let k = ((live.len() as f64) * fraction).round() as usize;
        for &i in live.iter().take(k) {
            if !graceful {
                self.detect_links_of(i);
            }
            if graceful {
                self.nodes[i as usize].state.leave(&mut self.out);
                self.flush(i);
            }
            let node = &mut self.nodes[i as usize];
            node.alive = false;
            // Free the state: a dead node holds nothing.
            node.state = State::new(i, self.cfg.clone());
        }
        if self
            .fixed_sender
            .is_some_and(|s| !self.nodes[s as usize].alive)
        {
            self.fixed_sender = None;
        }
        k
    }

    pub(crate) fn partition(&mut self, groups: u8) {
        for i in 0..self.nodes.len() {
            let g = (unit(mix64(self.rng.random::<u64>())) * f64::from(groups)) as u8;
            self.nodes[i].group = g.min(groups - 1);
        }
        self.partitioned = true;
        // Keepalives on links across the split stop being answered: both ends notice.
        let at = self.now + self.detect();
        for a in self.live() {
            let cut: Vec<u32> = self.nodes[a as usize]
                .state
                .active_view()
                .filter(|&b| self.split(a, b))
                .collect();
            for b in cut {
                self.push(
                    at,
                    a,
                    Kind::LinkFailed {
                        peer: b,
                        reason: LinkFailure::Closed,
                    },
                );
            }
        }
    }

    /// A crashed node's neighbours notice through their transport's keepalives
    /// (`network.detect_ms` later), whether or not they send anything.
    pub(crate) fn detect_links_of(&mut self, dead: u32) {
        let at = self.now + self.detect();
        let neighbours: Vec<u32> = self.nodes[dead as usize].state.active_view().collect();
        for b in neighbours {
            self.push(
                at,
                b,
                Kind::LinkFailed {
                    peer: dead,
                    reason: LinkFailure::Closed,
                },
            );
        }
    }

    pub(crate) fn heal(&mut self) {
        self.partitioned = false;
        for n in &mut self.nodes {
            n.group = 0;
        }
    }

    pub(crate) fn broadcast(&mut self, fixed: bool, payload_bytes: usize) {
        let now = self.now;
        let origin = if fixed {
            match self.fixed_sender {
                Some(s) => Some(s),
                None => {
                    let live = self.live();
                    let s = live.choose(&mut self.rng).copied();
                    self.fixed_sender = s;
                    s
                }
            }
        } else {
            self.live().choose(&mut self.rng).copied()
        };
        let Some(origin) = origin else { return };
        let id = self.tracks.len() as u64 + 1;
        let eligible: Vec<u32> = self.live();
        let deadline = now + secs(self.sc.deadline_s).as_duration();
        self.tracks.push(Track::new(
            id,
            origin,
            now,
            deadline,
            self.nodes.len(),
            &eligible,
        ));
        let payload = Bytes::from(vec![
            0u8;
            payload_bytes + in8_gossip::wire::APP_ENVELOPE_OVERHEAD
        ]);
        self.nodes[origin as usize]
            .state
            .broadcast(now, id, payload, &mut self.out);
        self.flush(origin);
    }

    /// Schedules the initial state of a scenario action.
    fn schedule_action(&mut self, a: &Action, rng: &mut ChaCha8Rng) {
        control::schedule(self, a, rng);
    }

    pub(crate) fn push_control(&mut self, at: Time, c: Control) {
        let i = self.controls.len() as u32;
        self.controls.push(c);
        self.push(at, 0, Kind::Control(i));
    }

    pub(crate) fn kind_counts(&self) -> Vec<(&'static str, u64)> {
        KINDS
            .iter()
            .copied()
            .zip(self.kind_counts.iter().copied())
            .collect()
    }
}

impl Sim {
    /// Bytes the event queue holds (slab and buckets at their peak capacity).
    pub(crate) fn queue_bytes(&self) -> usize {
        self.queue.heap_bytes()
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn per_node_structures_stay_small() {
        // A million nodes must fit in 4 KB each with everything else; these are the
        // fixed parts (views are on the heap, sized by the config).
        let node = core::mem::size_of::<Node>();
        let entry = core::mem::size_of::<Option<Entry>>();
        println!("Node {node} B, queue entry {entry} B");
        assert!(node <= 320, "Node is {node} bytes");
        assert!(entry <= 80, "queue entry is {entry} bytes");
    }
}
