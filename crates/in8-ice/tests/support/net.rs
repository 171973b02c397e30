//! A seeded in-process network for sans-IO tests: latency, loss, and NAT boxes with the
//! mapping / filtering behaviours of RFC 4787 (as the NAT lab builds them with nftables).
#![allow(unreachable_pub, dead_code)] // shared by several test crates, each using a part

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use in8_ice::{Agent, Endpoint, Transmit};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// NAT behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nat {
    /// Endpoint-independent mapping and filtering.
    FullCone,
    /// Endpoint-independent mapping, address-dependent filtering.
    Restricted,
    /// Endpoint-independent mapping, address-and-port-dependent filtering.
    PortRestricted,
    /// Address-and-port-dependent mapping and filtering (random ports).
    Symmetric,
    /// Address-and-port-dependent mapping and filtering, ports allocated sequentially.
    SymmetricSequential,
}

struct NatBox {
    kind: Nat,
    public: IpAddr,
    inside: IpAddr,
    next_port: u16,
    out: HashMap<(SocketAddr, Option<SocketAddr>), u16>,
    back: HashMap<u16, SocketAddr>,
    contacted: HashSet<(u16, SocketAddr)>,
}

impl NatBox {
    fn outbound(&mut self, from: SocketAddr, to: SocketAddr, rng: &mut ChaCha8Rng) -> SocketAddr {
        let sym = matches!(self.kind, Nat::Symmetric | Nat::SymmetricSequential);
        let key = (from, sym.then_some(to));
        let port = match self.out.get(&key) {
            Some(p) => *p,
            None => {
                let p = if self.kind == Nat::Symmetric {
                    rng.random_range(20_000..60_000)
                } else {
                    self.next_port += 1;
                    self.next_port
                };
                self.out.insert(key, p);
                self.back.insert(p, from);
                p
            }
        };
        self.contacted.insert((port, to));
        SocketAddr::new(self.public, port)
    }

    fn inbound(&self, from: SocketAddr, to: SocketAddr) -> Option<SocketAddr> {
        let inside = *self.back.get(&to.port())?;
        let ok = match self.kind {
            Nat::FullCone => true,
            Nat::Restricted => self
                .contacted
                .iter()
                .any(|(p, r)| *p == to.port() && r.ip() == from.ip()),
            Nat::PortRestricted | Nat::Symmetric | Nat::SymmetricSequential => {
                self.contacted.contains(&(to.port(), from))
            }
        };
        ok.then_some(inside)
    }
}

struct InFlight {
    at: Instant,
    seq: u64,
    from: SocketAddr,
    to: SocketAddr,
    bytes: Vec<u8>,
}
impl PartialEq for InFlight {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for InFlight {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// The network.
pub struct Net {
    nats: Vec<NatBox>,
    queue: BinaryHeap<InFlight>,
    seq: u64,
    pub rng: ChaCha8Rng,
    pub latency: Duration,
    pub loss: f64,
    /// When false every packet is dropped (a cut cable).
    pub up: bool,
    pub delivered: u64,
}

impl Net {
    pub fn new(seed: u64) -> Self {
        Self {
            nats: Vec::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            latency: Duration::from_millis(20),
            loss: 0.0,
            up: true,
            delivered: 0,
        }
    }

    /// Puts hosts with IP `inside` behind a NAT with public IP `public`.
    pub fn add_nat(&mut self, kind: Nat, inside: &str, public: &str) {
        self.nats.push(NatBox {
            kind,
            public: public.parse().unwrap(),
            inside: inside.parse().unwrap(),
            next_port: 40_000,
            out: HashMap::new(),
            back: HashMap::new(),
            contacted: HashSet::new(),
        });
    }

    /// The server-reflexive address `from` gets when it talks to `server` (creates the
    /// mapping, as a STUN query would).
    pub fn reflexive(&mut self, from: SocketAddr, server: SocketAddr) -> SocketAddr {
        let rng = &mut self.rng;
        match self.nats.iter_mut().find(|n| n.inside == from.ip()) {
            Some(n) => n.outbound(from, server, rng),
            None => from,
        }
    }

    pub fn send(&mut self, now: Instant, t: Transmit) {
        if !self.up || (self.loss > 0.0 && self.rng.random_bool(self.loss)) {
            return;
        }
        let rng = &mut self.rng;
        let from = match self.nats.iter_mut().find(|n| n.inside == t.from.ip()) {
            Some(n) => n.outbound(t.from, t.to, rng),
            None => t.from,
        };
        self.seq += 1;
        self.queue.push(InFlight {
            at: now + self.latency,
            seq: self.seq,
            from,
            to: t.to,
            bytes: t.contents,
        });
    }

    pub fn next_delivery(&self) -> Option<Instant> {
        self.queue.peek().map(|p| p.at)
    }

    /// Pops the next packet due at or before `now`, translated through the receiver's NAT:
    /// (from, to inside address, bytes).
    pub fn pop(&mut self, now: Instant) -> Option<(SocketAddr, SocketAddr, Vec<u8>)> {
        loop {
            if self.queue.peek()?.at > now {
                return None;
            }
            let p = self.queue.pop()?;
            let to = match self.nats.iter().find(|n| n.public == p.to.ip()) {
                Some(n) => match n.inbound(p.from, p.to) {
                    Some(inside) => inside,
                    None => continue,
                },
                None => p.to,
            };
            self.delivered += 1;
            return Some((p.from, to, p.bytes));
        }
    }
}

/// What the harness drives.
pub trait Node {
    fn owns(&self, addr: SocketAddr) -> bool;
    fn packet(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, bytes: &[u8]);
    fn timeout(&mut self, now: Instant);
    fn next_timeout(&self) -> Option<Instant>;
    fn transmit(&mut self) -> Option<Transmit>;
}

/// An agent with the addresses of its sockets.
pub struct AgentNode {
    pub agent: Agent,
    pub addrs: Vec<SocketAddr>,
    pub events: Vec<in8_ice::Event>,
}

impl Node for AgentNode {
    fn owns(&self, addr: SocketAddr) -> bool {
        self.addrs.contains(&addr)
    }
    fn packet(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        let _ = self.agent.handle_packet(now, from, to, bytes);
        while let Some(e) = self.agent.poll_event() {
            self.events.push(e);
        }
    }
    fn timeout(&mut self, now: Instant) {
        self.agent.handle_timeout(now);
        while let Some(e) = self.agent.poll_event() {
            self.events.push(e);
        }
    }
    fn next_timeout(&self) -> Option<Instant> {
        self.agent.poll_timeout()
    }
    fn transmit(&mut self) -> Option<Transmit> {
        self.agent.poll_transmit()
    }
}

/// An endpoint with the addresses of its sockets.
pub struct EndpointNode {
    pub endpoint: Endpoint,
    pub addrs: Vec<SocketAddr>,
    pub events: Vec<in8_ice::EndpointEvent>,
}

impl Node for EndpointNode {
    fn owns(&self, addr: SocketAddr) -> bool {
        self.addrs.contains(&addr)
    }
    fn packet(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        let _ = self.endpoint.handle_packet(now, from, to, bytes);
        while let Some(e) = self.endpoint.poll_event() {
            self.events.push(e);
        }
    }
    fn timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
        while let Some(e) = self.endpoint.poll_event() {
            self.events.push(e);
        }
    }
    fn next_timeout(&self) -> Option<Instant> {
        self.endpoint.poll_timeout()
    }
    fn transmit(&mut self) -> Option<Transmit> {
        self.endpoint.poll_transmit()
    }
}

/// Runs the nodes until `until` (virtual time), following the drive contract: drain every
/// node's transmits after each input. Returns the time reached.
pub fn run(
    net: &mut Net,
    nodes: &mut [&mut dyn Node],
    mut now: Instant,
    until: Instant,
) -> Instant {
    let mut spins = 0u32;
    loop {
        spins += 1;
        assert!(
            spins < 5_000_000,
            "the nodes keep asking for timeouts without progress"
        );
        for n in nodes.iter_mut() {
            while let Some(t) = n.transmit() {
                net.send(now, t);
            }
        }
        let next = nodes
            .iter()
            .filter_map(|n| n.next_timeout())
            .chain(net.next_delivery())
            .min();
        let Some(next) = next else { return until };
        if next > until {
            return until;
        }
        now = now.max(next);
        while let Some((from, to, bytes)) = net.pop(now) {
            if let Some(n) = nodes.iter_mut().find(|n| n.owns(to)) {
                n.packet(now, from, to, &bytes);
                while let Some(t) = n.transmit() {
                    net.send(now, t);
                }
            }
        }
        for n in nodes.iter_mut() {
            if n.next_timeout().is_some_and(|t| t <= now) {
                n.timeout(now);
            }
        }
    }
}
