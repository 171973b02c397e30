//! A seeded in-process network for sans-IO tests and harnesses (feature `sim`): latency,
//! loss, and NAT boxes with the mapping and filtering behaviours of RFC 4787, as the NAT
//! lab builds them with nftables (DESIGN §8).
//!
//! Datagrams are opaque bytes: STUN for the agents, and whatever else a harness sends
//! through the same boxes (in8-core's harness carries its simulated DTLS records here), so
//! every packet meets the same mappings and filters. Time is virtual: the caller passes an
//! [`Instant`] to every call and advances it to [`Net::next_delivery`].
//!
//! ```
//! use std::time::{Duration, Instant};
//! use in8_ice::sim::{Nat, Net};
//! use in8_ice::Transmit;
//!
//! let mut net = Net::new(7);
//! net.add_nat(Nat::PortRestricted, "10.0.0.1".parse()?, "203.0.113.1".parse()?);
//! let (inside, public) = ("10.0.0.1:5000".parse()?, "198.51.100.9:3478".parse()?);
//! let now = Instant::now();
//! net.send(now, Transmit { from: inside, to: public, contents: b"hi".to_vec() });
//! let at = net.next_delivery().expect("one packet in flight");
//! let (from, to, bytes) = net.pop(at).expect("delivered");
//! assert_eq!(from.ip().to_string(), "203.0.113.1"); // translated by the NAT
//! assert_eq!((to, bytes.as_slice()), (public, &b"hi"[..]));
//! // The reply passes the filter: the mapping has contacted that address.
//! net.send(at, Transmit { from: public, to: from, contents: b"ho".to_vec() });
//! assert_eq!(net.pop(at + Duration::from_secs(1)).map(|p| p.1), Some(inside));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::transmit::Transmit;

/// NAT behaviour of a simulated NAT box (RFC 4787 terms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

/// Most mappings one NAT box keeps (then it forgets them all, as a full conntrack table
/// would start dropping).
pub const MAX_MAPPINGS: usize = 65_536;
/// Most datagrams in flight in the whole network (further sends are dropped).
pub const MAX_IN_FLIGHT: usize = 1 << 20;

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
        if self.out.len() >= MAX_MAPPINGS || self.contacted.len() >= MAX_MAPPINGS {
            self.out.clear();
            self.back.clear();
            self.contacted.clear();
        }
        let sym = matches!(self.kind, Nat::Symmetric | Nat::SymmetricSequential);
        let key = (from, sym.then_some(to));
        let port = match self.out.get(&key) {
            Some(p) => *p,
            None => {
                let p = if self.kind == Nat::Symmetric {
                    loop {
                        let p = 20_000 + (rng.next_u32() % 40_000) as u16;
                        if !self.back.contains_key(&p) {
                            break p;
                        }
                    }
                } else {
                    self.next_port = self.next_port.checked_add(1).unwrap_or(40_000);
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

/// The simulated network: one-way latency, random loss, NAT boxes, an on/off switch.
pub struct Net {
    nats: Vec<NatBox>,
    queue: BinaryHeap<InFlight>,
    seq: u64,
    /// The network's random source (loss, symmetric port choice), seeded.
    pub rng: ChaCha8Rng,
    /// One-way delay of every datagram (default 20 ms).
    pub latency: Duration,
    /// Probability that a datagram is lost (default 0).
    pub loss: f64,
    /// When false every datagram is dropped (a cut cable).
    pub up: bool,
    /// Datagrams delivered so far.
    pub delivered: u64,
    /// Hosts that are switched off: datagrams to and from these IPs are dropped.
    pub down: HashSet<IpAddr>,
}

impl core::fmt::Debug for Net {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Net")
            .field("nats", &self.nats.len())
            .field("in_flight", &self.queue.len())
            .field("latency", &self.latency)
            .field("loss", &self.loss)
            .finish_non_exhaustive()
    }
}

impl Net {
    /// An empty network whose random choices follow `seed`.
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
            down: HashSet::new(),
        }
    }

    /// Puts hosts with IP `inside` behind a NAT with public IP `public`.
    pub fn add_nat(&mut self, kind: Nat, inside: IpAddr, public: IpAddr) {
        self.nats.push(NatBox {
            kind,
            public,
            inside,
            next_port: 40_000,
            out: HashMap::new(),
            back: HashMap::new(),
            contacted: HashSet::new(),
        });
    }

    /// The NAT in front of `inside`, if any.
    pub fn nat_of(&self, inside: IpAddr) -> Option<(Nat, IpAddr)> {
        self.nats
            .iter()
            .find(|n| n.inside == inside)
            .map(|n| (n.kind, n.public))
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

    fn lost(&mut self) -> bool {
        // A 53-bit uniform draw in [0, 1).
        self.loss > 0.0 && ((self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < self.loss
    }

    /// Sends a datagram at `now`: translated by the sender's NAT, delivered after
    /// [`Net::latency`] unless lost.
    pub fn send(&mut self, now: Instant, t: Transmit) {
        if !self.up || self.down.contains(&t.from.ip()) || self.lost() {
            return;
        }
        if self.queue.len() >= MAX_IN_FLIGHT {
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

    /// When the next datagram arrives.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.queue.peek().map(|p| p.at)
    }

    /// Datagrams in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Pops the next datagram due at or before `now`, translated through the receiver's
    /// NAT: (from, to inside address, bytes). Datagrams a NAT filters are dropped.
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
            if self.down.contains(&to.ip()) {
                continue;
            }
            self.delivered += 1;
            return Some((p.from, to, p.bytes));
        }
    }
}
