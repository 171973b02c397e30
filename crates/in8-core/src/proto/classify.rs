//! NAT behaviour classification at gathering (RFC 5780), run by the core on the node's
//! first socket: in8-ice's probe plan, paced and retransmitted here, its answers matched by
//! transaction id (the core offers every STUN response ICE does not own), and
//! `in8_ice::nat::classify` on what came back. Also the conversions between the class and
//! what artifacts and peer records carry.
//!
//! Test I (a plain Binding to each server) was already sent during server-reflexive
//! gathering; its answers say which servers have an RFC 5780 OTHER-ADDRESS. The rest of the
//! plan follows in RFC 5780's order for filtering: RFC 5780 §4.4, "These tests are
//! sensitive to prior state on the NAT": the filtering tests (CHANGE-REQUEST) run before
//! the mapping tests contact the alternate address, or a cone NAT would let the alternate
//! address's answers in whatever it filters (measured in the NAT lab, commit 4376dc9).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use in8_artifact::{NatBehaviour, NatFiltering, NatMapping};
use in8_ice::nat::{self, Filtering, Mapping, NatClass, Observation, PortAllocation, Reflector};
use in8_ice::stun::{Message, TransactionId};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// RFC 5780 §5: "A client SHOULD NOT generate more than ten new STUN transactions per
/// second": new probes start at least this far apart.
const PACING: Duration = Duration::from_millis(100);
/// First retransmission interval (RFC 8489 §6.2.1: "starting with an interval of RTO ...
/// doubling after each retransmission"); the lab's and the internet's round trips are far
/// below it.
const RTO: Duration = Duration::from_millis(250);

/// What Test I (during gathering) learned from one server, on the first socket.
#[derive(Clone, Copy, Debug)]
pub struct TestOne {
    /// The server.
    pub server: SocketAddr,
    /// XOR-MAPPED-ADDRESS of its answer.
    pub mapped: SocketAddr,
    /// Its RFC 5780 OTHER-ADDRESS, when it has one.
    pub other: Option<SocketAddr>,
}

struct Inflight {
    probe: nat::Probe,
    tid: TransactionId,
    request: Vec<u8>,
    next: Instant,
    rto: Duration,
    deadline: Instant,
}

/// The remaining probes of the plan, in flight one after the other (paced), until every
/// one is answered or timed out; then the class.
pub(crate) struct Classifier {
    base: SocketAddr,
    observations: Vec<Observation>,
    queue: VecDeque<nat::Probe>,
    inflight: Vec<Inflight>,
    next_new: Instant,
    timeout: Duration,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    rng: ChaCha20Rng,
}

impl Classifier {
    /// A classifier for the socket `base`, from the Test I answers `first` (one per
    /// answering server). `None` when the servers cannot classify anything: it takes one
    /// with an RFC 5780 OTHER-ADDRESS, or two servers at different addresses (mapping only).
    pub(crate) fn new(
        base: SocketAddr,
        first: &[TestOne],
        now: Instant,
        timeout: Duration,
        seed: u64,
    ) -> Option<Self> {
        let rfc5780 = first.iter().any(|t| t.other.is_some());
        if !rfc5780 && first.len() < 2 {
            return None;
        }
        let reflectors: Vec<Reflector> = first
            .iter()
            .map(|t| Reflector {
                addr: t.server,
                other: t.other,
            })
            .collect();
        let observations = first
            .iter()
            .map(|t| Observation {
                probe: plain(t.server),
                mapped: Some(t.mapped),
            })
            .collect();
        // Test I of each server is done; the filtering tests first (RFC 5780 §4.4), the
        // mapping tests keep their order (port-allocation detection reads it).
        let mut rest: Vec<nat::Probe> = nat::probe_plan(&reflectors)
            .into_iter()
            .filter(|p| !first.iter().any(|t| *p == plain(t.server)))
            .collect();
        rest.sort_by_key(|p| !(p.change_ip || p.change_port));
        Some(Self {
            base,
            observations,
            queue: rest.into(),
            inflight: Vec::new(),
            next_new: now,
            timeout,
            transmits: VecDeque::new(),
            rng: ChaCha20Rng::seed_from_u64(seed),
        })
    }

    /// The socket the probes leave from.
    pub(crate) fn base(&self) -> SocketAddr {
        self.base
    }

    /// Starts due probes, retransmits, and times out unanswered ones.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.inflight.len() {
            let f = &mut self.inflight[i];
            if f.deadline <= now {
                let probe = f.probe;
                self.inflight.swap_remove(i);
                self.observations.push(Observation {
                    probe,
                    mapped: None,
                });
                continue;
            }
            if f.next <= now {
                f.rto *= 2;
                f.next = (now + f.rto).min(f.deadline);
                self.transmits.push_back((f.probe.to, f.request.clone()));
            }
            i += 1;
        }
        if self.next_new <= now
            && !self.waiting_for_filtering()
            && let Some(probe) = self.queue.pop_front()
        {
            let tid = TransactionId::random(&mut self.rng);
            let request = probe.request(tid);
            self.transmits.push_back((probe.to, request.clone()));
            self.inflight.push(Inflight {
                probe,
                tid,
                request,
                next: now + RTO,
                rto: RTO,
                deadline: now + self.timeout,
            });
            self.next_new = now + PACING;
        }
    }

    /// Whether the next queued probe must wait: it is a mapping test and a filtering test
    /// (CHANGE-REQUEST) is still in flight. RFC 5780 §4.4: "These tests are sensitive to
    /// prior state on the NAT." A mapping test opens the NAT's filter towards the alternate
    /// address; a filtering test still being retransmitted would then be answered through
    /// that opening, and a port-restricted NAT would read as endpoint-independent
    /// filtering (seen in the NAT lab).
    fn waiting_for_filtering(&self) -> bool {
        let filtering = |p: &nat::Probe| p.change_ip || p.change_port;
        self.queue.front().is_some_and(|p| !filtering(p))
            && self.inflight.iter().any(|f| filtering(&f.probe))
    }

    /// A datagram that arrived on `base`: `true` if it answered one of the probes.
    pub(crate) fn handle_response(&mut self, base: SocketAddr, data: &[u8]) -> bool {
        if base != self.base {
            return false;
        }
        let Some(tid) = Message::parse(data).ok().map(|m| m.transaction_id()) else {
            return false;
        };
        let Some(i) = self.inflight.iter().position(|f| f.tid == tid) else {
            return false;
        };
        let f = self.inflight.swap_remove(i);
        self.observations.push(Observation {
            probe: f.probe,
            mapped: nat::mapped_address(data),
        });
        true
    }

    /// The next probe datagram: (destination, bytes), from [`Classifier::base`].
    pub(crate) fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// When [`Classifier::handle_timeout`] is due next.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        // A probe held back behind a filtering test starts when that test ends, which is
        // one of the in-flight times below.
        let queued =
            (!self.queue.is_empty() && !self.waiting_for_filtering()).then_some(self.next_new);
        self.inflight
            .iter()
            .map(|f| f.next.min(f.deadline))
            .chain(queued)
            .min()
    }

    /// The class, once every probe is answered or timed out.
    pub(crate) fn result(&self) -> Option<NatClass> {
        if !self.queue.is_empty() || !self.inflight.is_empty() {
            return None;
        }
        Some(nat::classify(self.base, &self.observations))
    }
}

fn plain(to: SocketAddr) -> nat::Probe {
    nat::Probe {
        to,
        change_ip: false,
        change_port: false,
    }
}

/// The class as carried in invitations and RSVPs, `None` when nothing is known.
pub(crate) fn behaviour(c: &NatClass) -> Option<NatBehaviour> {
    let b = NatBehaviour {
        mapping: c.mapping.map(|m| match m {
            Mapping::NoNat => NatMapping::NoNat,
            Mapping::EndpointIndependent => NatMapping::EndpointIndependent,
            Mapping::AddressDependent => NatMapping::AddressDependent,
            Mapping::AddressAndPortDependent => NatMapping::AddressAndPortDependent,
        }),
        filtering: c.filtering.map(|f| match f {
            Filtering::EndpointIndependent => NatFiltering::EndpointIndependent,
            Filtering::AddressDependent => NatFiltering::AddressDependent,
            Filtering::AddressAndPortDependent => NatFiltering::AddressAndPortDependent,
        }),
    };
    b.is_known().then_some(b)
}

/// A peer's class from what its artifact says (its port allocation is not carried).
pub(crate) fn class_of(b: &NatBehaviour) -> NatClass {
    NatClass {
        mapping: b.mapping.map(|m| match m {
            NatMapping::NoNat => Mapping::NoNat,
            NatMapping::EndpointIndependent => Mapping::EndpointIndependent,
            NatMapping::AddressDependent => Mapping::AddressDependent,
            NatMapping::AddressAndPortDependent => Mapping::AddressAndPortDependent,
        }),
        filtering: b.filtering.map(|f| match f {
            NatFiltering::EndpointIndependent => Filtering::EndpointIndependent,
            NatFiltering::AddressDependent => Filtering::AddressDependent,
            NatFiltering::AddressAndPortDependent => Filtering::AddressAndPortDependent,
        }),
        ports: PortAllocation::Unknown,
    }
}

impl super::Core {
    /// Sends due classification probes; publishes the class when it is known.
    pub(crate) fn classify_timeout(&mut self, now: Instant) {
        let Some(c) = &mut self.classifier else {
            return;
        };
        if c.poll_timeout().is_some_and(|t| t <= now) {
            c.handle_timeout(now);
        }
        let base = c.base();
        let mut sends = Vec::new();
        while let Some(t) = c.poll_transmit() {
            sends.push(t);
        }
        for (to, contents) in sends {
            if let Some(f) = &mut self.filter {
                f.note_sent(base, to);
            }
            self.push_transmit(in8_ice::Transmit {
                from: base,
                to,
                contents,
            });
        }
        self.classify_done();
    }

    /// A STUN response no ICE session owns, on socket `base`.
    pub(crate) fn classify_response(&mut self, base: SocketAddr, data: &[u8]) {
        if let Some(c) = &mut self.classifier
            && c.handle_response(base, data)
        {
            self.classify_done();
        }
    }

    fn classify_done(&mut self) {
        let Some(class) = self.classifier.as_ref().and_then(|c| c.result()) else {
            return;
        };
        tracing::info!(?class, "NAT classified");
        self.classifier = None;
        self.nat = Some(class);
        self.push_event(super::Event::Classified(Some(class)));
        self.nat_changed();
    }
}

/// The class a peer record carries (the gossip layer's coarser vocabulary).
pub(crate) fn record_class(c: Option<&NatClass>) -> in8_gossip::NatClass {
    use in8_gossip::NatClass as G;
    let Some(c) = c else { return G::Unknown };
    match (c.mapping, c.filtering) {
        (Some(Mapping::NoNat), _) => G::Public,
        (Some(Mapping::AddressDependent | Mapping::AddressAndPortDependent), _) => G::Symmetric,
        (_, Some(Filtering::EndpointIndependent)) => G::FullCone,
        (_, Some(Filtering::AddressDependent)) => G::Restricted,
        (_, Some(Filtering::AddressAndPortDependent)) => G::PortRestricted,
        _ => G::Unknown,
    }
}

/// The class a peer record states, for the hard-NAT plan (`None` when unknown).
pub(crate) fn class_of_record(g: in8_gossip::NatClass) -> Option<NatClass> {
    use in8_gossip::NatClass as G;
    let (mapping, filtering) = match g {
        G::Unknown => return None,
        G::Public => (Mapping::NoNat, Filtering::EndpointIndependent),
        G::FullCone => (Mapping::EndpointIndependent, Filtering::EndpointIndependent),
        G::Restricted => (Mapping::EndpointIndependent, Filtering::AddressDependent),
        G::PortRestricted => (
            Mapping::EndpointIndependent,
            Filtering::AddressAndPortDependent,
        ),
        G::Symmetric => (
            Mapping::AddressAndPortDependent,
            Filtering::AddressAndPortDependent,
        ),
    };
    Some(NatClass {
        mapping: Some(mapping),
        filtering: Some(filtering),
        ports: PortAllocation::Unknown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Drives a classifier against a scripted NAT + RFC 5780 server on a virtual clock.
    fn run(
        answer: impl Fn(&nat::Probe) -> Option<SocketAddr>,
    ) -> (NatClass, Vec<(Instant, SocketAddr)>) {
        run_stateful(|p, _| answer(p))
    }

    /// As [`run`], and `answer` also sees every destination contacted so far (a NAT's
    /// filter state).
    fn run_stateful(
        answer: impl Fn(&nat::Probe, &[SocketAddr]) -> Option<SocketAddr>,
    ) -> (NatClass, Vec<(Instant, SocketAddr)>) {
        let t0 = Instant::now();
        let first = [TestOne {
            server: a("192.0.2.10:3478"),
            mapped: a("203.0.113.1:40000"),
            other: Some(a("192.0.2.11:3479")),
        }];
        let base = a("10.0.0.2:5000");
        let mut c = Classifier::new(base, &first, t0, Duration::from_secs(1), 1)
            .unwrap_or_else(|| unreachable!());
        let mut sent = Vec::new();
        let mut now = t0;
        for _ in 0..1000 {
            if let Some(r) = c.result() {
                return (r, sent);
            }
            c.handle_timeout(now);
            while let Some((to, req)) = c.poll_transmit() {
                sent.push((now, to));
                let m = Message::parse(&req).unwrap_or_else(|_| unreachable!());
                let flags = m.get_u32(in8_ice::stun::attr::CHANGE_REQUEST).unwrap_or(0);
                let probe = nat::Probe {
                    to,
                    change_ip: flags & 4 != 0,
                    change_port: flags & 2 != 0,
                };
                let contacted: Vec<SocketAddr> = sent.iter().map(|(_, to)| *to).collect();
                if let Some(mapped) = answer(&probe, &contacted) {
                    let mut resp = Vec::new();
                    let mut w = in8_ice::stun::MessageWriter::new(
                        &mut resp,
                        in8_ice::stun::Method::BINDING,
                        in8_ice::stun::Class::Success,
                        m.transaction_id(),
                    );
                    w.xor_address(in8_ice::stun::attr::XOR_MAPPED_ADDRESS, mapped);
                    assert!(c.handle_response(base, &resp));
                }
            }
            now = c.poll_timeout().unwrap_or(now).max(now);
        }
        unreachable!("the classifier ends")
    }

    #[test]
    fn port_restricted_cone_filtering_probes_first_and_paced() {
        let (class, sent) =
            run(|p| (!p.change_ip && !p.change_port).then(|| a("203.0.113.1:40000")));
        assert_eq!(class.mapping, Some(Mapping::EndpointIndependent));
        assert_eq!(class.filtering, Some(Filtering::AddressAndPortDependent));
        // The first two new probes go to the primary address (CHANGE-REQUEST), before the
        // alternate address is contacted.
        let firsts: Vec<SocketAddr> = {
            let mut v: Vec<SocketAddr> = Vec::new();
            for (_, to) in &sent {
                if v.last() != Some(to) && !v.contains(to) {
                    v.push(*to);
                }
            }
            v
        };
        assert_eq!(firsts[0], a("192.0.2.10:3478"));
        let starts: Vec<Instant> = sent.iter().map(|(t, _)| *t).collect();
        let mut distinct = starts.clone();
        distinct.dedup();
        for w in distinct.windows(2) {
            assert!(w[1] - w[0] >= Duration::from_millis(50), "paced");
        }
        // Unanswered probes were retransmitted (at 250 ms, 750 ms).
        let to_primary = sent
            .iter()
            .filter(|(_, to)| *to == a("192.0.2.10:3478"))
            .count();
        assert!(to_primary >= 4, "{to_primary}");
    }

    /// A port-restricted cone NAT with real filter state: an answer gets in only from an
    /// address and port the socket has sent to. The filtering tests must end before the
    /// mapping tests contact the alternate address (regression: the lab's port-restricted
    /// NAT read as full cone).
    #[test]
    fn port_restricted_cone_with_filter_state() {
        let primary = a("192.0.2.10:3478");
        let (class, _) = run_stateful(|p, contacted| {
            // The server answers from its other IP and/or port as asked.
            let from = if p.to == primary {
                let ip = if p.change_ip {
                    a("192.0.2.11:1").ip()
                } else {
                    p.to.ip()
                };
                let port = if p.change_port { 3479 } else { p.to.port() };
                SocketAddr::new(ip, port)
            } else {
                p.to
            };
            contacted.contains(&from).then(|| a("203.0.113.1:40000"))
        });
        assert_eq!(class.mapping, Some(Mapping::EndpointIndependent));
        assert_eq!(class.filtering, Some(Filtering::AddressAndPortDependent));
    }

    #[test]
    fn symmetric_and_full_cone() {
        let (c, _) = run(|p| {
            if p.change_ip || p.change_port {
                return None;
            }
            Some(a(&format!(
                "203.0.113.1:{}",
                40000 + p.to.port() + u16::from(p.to.ip() == a("192.0.2.11:1").ip()) * 7
            )))
        });
        assert_eq!(c.mapping, Some(Mapping::AddressAndPortDependent));
        let b = behaviour(&c).unwrap_or_else(|| unreachable!());
        assert!(b.is_symmetric());
        assert_eq!(class_of(&b).mapping, c.mapping);
        let (c, _) = run(|_| Some(a("203.0.113.1:40000")));
        assert_eq!(c.mapping, Some(Mapping::EndpointIndependent));
        assert_eq!(c.filtering, Some(Filtering::EndpointIndependent));
    }

    #[test]
    fn one_plain_server_cannot_classify() {
        let first = [TestOne {
            server: a("192.0.2.10:3478"),
            mapped: a("203.0.113.1:40000"),
            other: None,
        }];
        assert!(
            Classifier::new(
                a("10.0.0.2:5000"),
                &first,
                Instant::now(),
                Duration::from_secs(1),
                1
            )
            .is_none()
        );
        let two = [
            first[0],
            TestOne {
                server: a("198.51.100.1:3478"),
                ..first[0]
            },
        ];
        let c = Classifier::new(
            a("10.0.0.2:5000"),
            &two,
            Instant::now(),
            Duration::from_secs(1),
            1,
        )
        .unwrap_or_else(|| unreachable!());
        let r = c.result().unwrap_or_else(|| unreachable!());
        assert_eq!(r.mapping, Some(Mapping::EndpointIndependent));
        assert_eq!(r.filtering, None);
        assert_eq!(behaviour(&r).map(|b| b.filtering), Some(None));
    }
}
