//! The seeded in-process network (`in8_ice::sim`) and a loop that drives agents and
//! endpoints over it.
#![allow(unreachable_pub, dead_code)] // shared by several test crates, each using a part

use std::net::SocketAddr;
use std::time::Instant;

use in8_ice::{Agent, Endpoint, Transmit};

pub use in8_ice::sim::{Nat, Net};

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
