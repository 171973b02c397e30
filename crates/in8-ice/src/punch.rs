//! Strategies for hard NATs the driver can run: port prediction for sequential
//! allocators, birthday probing for random ones, and the policy that orders them (a relay
//! only when the invitation allows it).
//!
//! The targets these produce go to an agent as one-shot probes
//! ([`Agent::send_probe`](crate::Agent::send_probe): an authenticated check that becomes a
//! pair only when answered) or, for predicted ports, as low-priority remote candidates. The
//! hard side of birthday probing adds its many sockets as host candidates and sends one
//! probe from each to the easy side. Every probe is an ordinary authenticated ICE check, so
//! a hit becomes a valid pair through the normal rules (peer-reflexive learning, triggered
//! check back, nomination).

use core::time::Duration;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::candidate::{Candidate, CandidateKind, candidate_priority};
use crate::nat::{Filtering, NatClass, PortAllocation};

/// Predicted addresses of the next mappings of a sequential allocator: `count` ports after
/// the last observed one, `delta` apart (ports wrap inside 1024..=65535).
pub fn predict_ports(ip: IpAddr, last_port: u16, delta: i32, count: usize) -> Vec<SocketAddr> {
    let mut v = Vec::with_capacity(count);
    let mut p = last_port as i32;
    for _ in 0..count {
        p += delta;
        if !(1024..=65535).contains(&p) {
            p = if delta > 0 { 1024 } else { 65535 };
        }
        v.push(SocketAddr::new(ip, p as u16));
    }
    v
}

/// Predicted ports as remote candidates with priorities below every signalled one (so real
/// candidates are checked first); `count` is bounded by the agent's pair limit.
pub fn predicted_candidates(
    ip: IpAddr,
    last_port: u16,
    delta: i32,
    count: usize,
) -> Vec<Candidate> {
    predict_ports(ip, last_port, delta, count)
        .into_iter()
        .enumerate()
        .map(|(i, addr)| Candidate {
            kind: CandidateKind::ServerReflexive,
            addr,
            priority: candidate_priority(
                CandidateKind::ServerReflexive,
                1000u16.saturating_sub(i as u16),
            ),
        })
        .collect()
}

/// Birthday-probing settings: the hard side opens `sockets` sockets that each send one
/// check to the easy side; the easy side probes random ports of the hard side's IP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BirthdayConfig {
    /// Sockets the hard side opens (each creates one mapping).
    pub sockets: u16,
    /// Most probes the easy side sends in total.
    pub max_probes: u32,
    /// Probes per second (the rate bound).
    pub rate: u32,
    /// Lowest port probed (NATs rarely allocate below).
    pub port_min: u16,
}

impl Default for BirthdayConfig {
    /// 256 sockets, 2048 probes at 200 per second (about 10 s): P(hit) ≈ 1 - e^(-256·2048 /
    /// 64512) ≈ 99.97 % for a uniform allocator over 1024..=65535.
    fn default() -> Self {
        Self {
            sockets: 256,
            max_probes: 2048,
            rate: 200,
            port_min: 1024,
        }
    }
}

/// The probability that `probes` distinct random ports hit one of `sockets` random mappings
/// among `range` ports: 1 - C(range - sockets, probes) / C(range, probes).
pub fn birthday_hit_probability(sockets: u32, probes: u32, range: u32) -> f64 {
    let (n, r) = (sockets as f64, range as f64);
    if n + probes as f64 > r {
        return 1.0;
    }
    // Product over the probes of the chance each misses every mapping.
    let mut miss = 1.0f64;
    for k in 0..probes {
        miss *= (r - n - k as f64) / (r - k as f64);
    }
    1.0 - miss
}

/// The easy side's paced, bounded stream of random probe targets on the hard side's IP.
#[derive(Debug)]
pub struct BirthdayProber {
    config: BirthdayConfig,
    ip: IpAddr,
    rng: ChaCha20Rng,
    sent: u32,
    next: Option<Instant>,
    used: std::collections::HashSet<u16>,
}

impl BirthdayProber {
    /// A prober towards `ip`, seeded.
    pub fn new(config: BirthdayConfig, ip: IpAddr, seed: u64) -> Self {
        Self {
            config,
            ip,
            rng: ChaCha20Rng::seed_from_u64(seed),
            sent: 0,
            next: None,
            used: std::collections::HashSet::new(),
        }
    }

    /// The next target if one is due at `now` (never more than `rate` per second, never
    /// more than `max_probes`, never the same port twice).
    pub fn poll(&mut self, now: Instant) -> Option<SocketAddr> {
        if self.sent >= self.config.max_probes || self.next.is_some_and(|n| n > now) {
            return None;
        }
        let span = 65536 - self.config.port_min as u32;
        let port = loop {
            let p = (self.config.port_min as u32 + self.rng.next_u32() % span) as u16;
            if self.used.insert(p) || self.used.len() as u32 >= span {
                break p;
            }
        };
        self.sent += 1;
        let gap = Duration::from_secs(1) / self.config.rate.max(1);
        self.next = Some(self.next.map_or(now, |n| n.max(now - gap)) + gap);
        Some(SocketAddr::new(self.ip, port))
    }

    /// When the next probe is due; `None` when done.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.sent < self.config.max_probes)
            .then_some(self.next)
            .flatten()
    }

    /// Probes sent so far.
    pub fn sent(&self) -> u32 {
        self.sent
    }
}

/// What a driver should try after simultaneous open, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Ordinary ICE checks on all pairs at once (phase 2).
    SimultaneousOpen,
    /// Check predicted ports of the remote sequential allocator.
    PredictRemotePorts {
        /// The allocator's step.
        delta: i32,
    },
    /// The remote side is hard: we are the easy side and probe random ports.
    BirthdayProbeRemote,
    /// We are the hard side: open many sockets and send from each.
    BirthdayOpenSockets,
    /// Use a TURN (or peer) relay.
    Relay,
}

/// Policy switches of the strategies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Relays allowed (the invitation's `RELAY_ALLOWED` flag).
    pub relay_allowed: bool,
    /// Birthday probing allowed (it sends hundreds of packets).
    pub birthday_allowed: bool,
}

/// The steps worth trying for this pair of NAT classes, in order. A relay is listed only
/// when the policy allows it (seed claim 18: never silent).
pub fn plan(local: &NatClass, remote: &NatClass, policy: Policy) -> Vec<Step> {
    let mut steps = vec![Step::SimultaneousOpen];
    let hard = |c: &NatClass| c.is_symmetric();
    let strict = |c: &NatClass| c.filtering == Some(Filtering::AddressAndPortDependent);
    let direct_ok = match (hard(local), hard(remote)) {
        (false, false) => true,
        // A symmetric side reaches a peer whose filter it can open; it fails only against
        // address-and-port-dependent filtering (DESIGN §8).
        (true, false) => !strict(remote),
        (false, true) => !strict(local),
        (true, true) => false,
    };
    if !direct_ok {
        if let PortAllocation::Sequential { delta } = remote.ports
            && hard(remote)
        {
            steps.push(Step::PredictRemotePorts { delta });
        }
        if policy.birthday_allowed {
            match (hard(local), hard(remote)) {
                (false, true) => steps.push(Step::BirthdayProbeRemote),
                (true, false) => steps.push(Step::BirthdayOpenSockets),
                _ => {}
            }
        }
        if policy.relay_allowed {
            steps.push(Step::Relay);
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::Mapping;

    #[test]
    fn prediction_follows_the_allocator() {
        let ip: IpAddr = "203.0.113.1".parse().unwrap();
        let v = predict_ports(ip, 40000, 2, 3);
        assert_eq!(
            v.iter().map(|a| a.port()).collect::<Vec<_>>(),
            vec![40002, 40004, 40006]
        );
        let v = predict_ports(ip, 65535, 1, 1);
        assert_eq!(v[0].port(), 1024);
    }

    #[test]
    fn birthday_is_bounded_and_paced() {
        let t0 = Instant::now();
        let cfg = BirthdayConfig {
            sockets: 256,
            max_probes: 50,
            rate: 10,
            port_min: 1024,
        };
        let mut p = BirthdayProber::new(cfg, "203.0.113.1".parse().unwrap(), 1);
        let mut sent = Vec::new();
        let mut now = t0;
        while let Some(t) = p.poll_timeout().or(Some(now)) {
            if p.sent() >= 50 {
                break;
            }
            now = now.max(t);
            while let Some(a) = p.poll(now) {
                sent.push((now, a));
            }
        }
        assert_eq!(sent.len(), 50);
        assert!(p.poll(now + Duration::from_secs(100)).is_none(), "bounded");
        let span = sent.last().unwrap().0 - sent[0].0;
        assert!(
            span >= Duration::from_millis(4900),
            "10 per second: {span:?}"
        );
        let ports: std::collections::HashSet<u16> = sent.iter().map(|(_, a)| a.port()).collect();
        assert_eq!(ports.len(), 50, "no port twice");
    }

    #[test]
    fn birthday_probability() {
        let p = birthday_hit_probability(256, 2048, 64512);
        assert!(p > 0.999, "{p}");
        let p = birthday_hit_probability(1, 1, 64512);
        assert!((p - 1.0 / 64512.0).abs() < 1e-9);
    }

    #[test]
    fn relay_only_when_allowed() {
        let sym = NatClass {
            mapping: Some(Mapping::AddressAndPortDependent),
            filtering: Some(Filtering::AddressAndPortDependent),
            ports: PortAllocation::Random,
        };
        let easy = NatClass {
            mapping: Some(Mapping::EndpointIndependent),
            filtering: Some(Filtering::AddressAndPortDependent),
            ports: PortAllocation::Preserving,
        };
        assert_eq!(
            plan(&easy, &easy, Policy::default()),
            vec![Step::SimultaneousOpen]
        );
        let no_relay = plan(
            &easy,
            &sym,
            Policy {
                relay_allowed: false,
                birthday_allowed: true,
            },
        );
        assert_eq!(
            no_relay,
            vec![Step::SimultaneousOpen, Step::BirthdayProbeRemote]
        );
        let relay = plan(
            &sym,
            &sym,
            Policy {
                relay_allowed: true,
                birthday_allowed: true,
            },
        );
        assert_eq!(relay, vec![Step::SimultaneousOpen, Step::Relay]);
        let seq = NatClass {
            ports: PortAllocation::Sequential { delta: 1 },
            ..sym
        };
        assert_eq!(
            plan(&easy, &seq, Policy::default()),
            vec![
                Step::SimultaneousOpen,
                Step::PredictRemotePorts { delta: 1 }
            ]
        );
    }
}
