//! NAT behaviour discovery (RFC 5780 logic) as a probe plan the driver runs and a pure
//! classification of what came back.
//!
//! Reflectors are STUN servers (coturn with two addresses supports CHANGE-REQUEST and
//! OTHER-ADDRESS) or in8 peers (each answers Binding requests; several peers at different
//! addresses stand in for the alternate address).

use std::net::{IpAddr, SocketAddr};

use crate::stun::{Class, Message, MessageWriter, Method, TransactionId, attr};

/// RFC 5780 §4.3 mapping behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mapping {
    /// The mapped address equals the local address: no NAT.
    NoNat,
    /// "Endpoint-Independent Mapping": one mapping for every destination.
    EndpointIndependent,
    /// "Address-Dependent Mapping": a mapping per destination IP.
    AddressDependent,
    /// "Address and Port-Dependent Mapping": a mapping per destination IP and port
    /// (the symmetric NAT).
    AddressAndPortDependent,
}

/// RFC 5780 §4.4 filtering behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Filtering {
    /// Anyone may send to the mapping.
    EndpointIndependent,
    /// Only IPs the inside host sent to.
    AddressDependent,
    /// Only IP:port pairs the inside host sent to.
    AddressAndPortDependent,
}

/// How the NAT picks external ports for new mappings (port prediction needs this).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortAllocation {
    /// External port = local port.
    Preserving,
    /// Successive mappings differ by a constant `delta` (a sequential allocator).
    Sequential {
        /// Port step between consecutive mappings.
        delta: i32,
    },
    /// No pattern.
    Random,
    /// Fewer than three distinct mappings observed.
    Unknown,
}

/// The result of classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NatClass {
    /// Mapping behaviour, if enough probes answered.
    pub mapping: Option<Mapping>,
    /// Filtering behaviour, if a CHANGE-REQUEST capable reflector was probed.
    pub filtering: Option<Filtering>,
    /// Port allocation pattern.
    pub ports: PortAllocation,
}

impl NatClass {
    /// Whether the mapping depends on the destination (a "symmetric" NAT): a peer cannot
    /// use the server-reflexive address a reflector saw.
    pub fn is_symmetric(&self) -> bool {
        self.mapping == Some(Mapping::AddressAndPortDependent)
            || self.mapping == Some(Mapping::AddressDependent)
    }
}

/// A reflector to probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reflector {
    /// Its primary address.
    pub addr: SocketAddr,
    /// Its RFC 5780 OTHER-ADDRESS (alternate IP and port), when it has one.
    pub other: Option<SocketAddr>,
}

/// What one probe asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Where to send it.
    pub to: SocketAddr,
    /// CHANGE-REQUEST "change IP" flag.
    pub change_ip: bool,
    /// CHANGE-REQUEST "change port" flag.
    pub change_port: bool,
}

/// The probes to send, in order (the order matters for port-allocation detection).
///
/// For a reflector with OTHER-ADDRESS (RFC 5780 §4.3, §4.4): Test I (primary), Test II
/// (alternate IP, primary port), Test III (alternate IP and port), filtering Test II
/// (change IP and port) and Test III (change port). For plain reflectors: one probe each;
/// several reflectors at distinct addresses classify mapping behaviour.
pub fn probe_plan(reflectors: &[Reflector]) -> Vec<Probe> {
    let mut v = Vec::new();
    let plain = |to| Probe {
        to,
        change_ip: false,
        change_port: false,
    };
    for r in reflectors {
        v.push(plain(r.addr));
        if let Some(o) = r.other {
            v.push(plain(SocketAddr::new(o.ip(), r.addr.port())));
            v.push(plain(o));
            v.push(Probe {
                to: r.addr,
                change_ip: true,
                change_port: true,
            });
            v.push(Probe {
                to: r.addr,
                change_ip: false,
                change_port: true,
            });
        }
    }
    v
}

impl Probe {
    /// The request for this probe, padded with a SOFTWARE attribute to be as large as any
    /// answer (in8 reflectors answer only requests no smaller than the reply), FINGERPRINT
    /// last. Not RFC 5780 PADDING: that one is comprehension-required for plain STUN
    /// servers, and coturn pads its answer to ~1.6 kB in return.
    pub fn request(&self, tid: TransactionId) -> Vec<u8> {
        let mut b = Vec::with_capacity(96);
        let mut w = MessageWriter::new(&mut b, Method::BINDING, Class::Request, tid);
        if self.change_ip || self.change_port {
            // RFC 5780 §7.2: "change IP" is 0x4, "change port" is 0x2.
            let flags = (u32::from(self.change_ip) << 2) | (u32::from(self.change_port) << 1);
            w.attr_u32(attr::CHANGE_REQUEST, flags);
        }
        w.attr(
            attr::SOFTWARE,
            b"in8 NAT probe, padded to the size of an answer",
        );
        w.fingerprint();
        b
    }
}

/// What came back for probe `index` of the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observation {
    /// The probe.
    pub probe: Probe,
    /// XOR-MAPPED-ADDRESS of the answer, `None` when no answer came (after retries).
    pub mapped: Option<SocketAddr>,
}

/// Reads the mapped address out of a probe's answer.
pub fn mapped_address(answer: &[u8]) -> Option<SocketAddr> {
    let m = Message::parse(answer).ok()?;
    (m.class() == Class::Success)
        .then(|| m.xor_mapped_address())
        .flatten()
}

/// Classifies from the observations of one local socket `local`. Pure: the same
/// observations always give the same class.
pub fn classify(local: SocketAddr, obs: &[Observation]) -> NatClass {
    let plain: Vec<(SocketAddr, SocketAddr)> = obs
        .iter()
        .filter(|o| !o.probe.change_ip && !o.probe.change_port)
        .filter_map(|o| o.mapped.map(|m| (o.probe.to, m)))
        .collect();
    let mapping = classify_mapping(local, &plain);
    let answered = |ip: bool, port: bool| {
        obs.iter()
            .find(|o| o.probe.change_ip == ip && o.probe.change_port == port)
            .map(|o| o.mapped.is_some())
    };
    // RFC 5780 §4.4, test II (change-port and change-IP): "If the client receives a
    // response, the current behavior of the NAT is Endpoint-Independent Filtering." Test III
    // (change-port): "If the client receives a response, the current behavior is
    // Address-Dependent Filtering; if no response is received, the current behavior is
    // Address and Port-Dependent Filtering."
    let filtering = match (answered(true, true), answered(false, true)) {
        (Some(true), _) => Some(Filtering::EndpointIndependent),
        (Some(false), Some(true)) => Some(Filtering::AddressDependent),
        (Some(false), Some(false)) => Some(Filtering::AddressAndPortDependent),
        _ => None,
    };
    NatClass {
        mapping,
        filtering,
        ports: port_allocation(local, &plain),
    }
}

fn classify_mapping(local: SocketAddr, plain: &[(SocketAddr, SocketAddr)]) -> Option<Mapping> {
    let (_, first) = *plain.first()?;
    // RFC 5780 §4.3: "If this address and port are the same as the local IP address and
    // port of the socket used to send the request, the client knows that it is not NATed".
    // Then: test II's mapping equal to test I's means Endpoint-Independent Mapping; else test
    // III (same alternate IP, other port) equal to test II means Address-Dependent, different
    // means Address and Port-Dependent. Several plain reflectors generalise the comparison.
    if plain.iter().all(|(_, m)| *m == local) {
        return Some(Mapping::NoNat);
    }
    if plain.len() < 2 {
        return None;
    }
    if plain.iter().all(|(_, m)| *m == first) {
        return Some(Mapping::EndpointIndependent);
    }
    // Same destination IP, different ports: same mapping means address-dependent.
    let mut same_ip_pairs = 0;
    for (i, (to_a, m_a)) in plain.iter().enumerate() {
        for (to_b, m_b) in &plain[i + 1..] {
            if to_a.ip() == to_b.ip() && to_a.port() != to_b.port() {
                same_ip_pairs += 1;
                if m_a != m_b {
                    return Some(Mapping::AddressAndPortDependent);
                }
            }
        }
    }
    if same_ip_pairs > 0 {
        Some(Mapping::AddressDependent)
    } else {
        // Different mappings for different IPs and no same-IP evidence: at least
        // address-dependent; assume the worse for punching.
        Some(Mapping::AddressAndPortDependent)
    }
}

fn port_allocation(local: SocketAddr, plain: &[(SocketAddr, SocketAddr)]) -> PortAllocation {
    let mut ports: Vec<u16> = Vec::new();
    for (_, m) in plain {
        if ports.last() != Some(&m.port()) && !ports.contains(&m.port()) {
            ports.push(m.port());
        }
    }
    if !plain.is_empty() && plain.iter().all(|(_, m)| m.port() == local.port()) {
        return PortAllocation::Preserving;
    }
    if ports.len() < 3 {
        return PortAllocation::Unknown;
    }
    let deltas: Vec<i32> = ports
        .windows(2)
        .map(|w| w[1] as i32 - w[0] as i32)
        .collect();
    if deltas.iter().all(|d| *d == deltas[0]) && (1..=16).contains(&deltas[0].abs()) {
        PortAllocation::Sequential { delta: deltas[0] }
    } else {
        PortAllocation::Random
    }
}

/// Reads RFC 5780 OTHER-ADDRESS out of a Test I answer (to build the full plan).
pub fn other_address(answer: &[u8]) -> Option<SocketAddr> {
    let m = Message::parse(answer).ok()?;
    crate::stun::decode_address(m.get(attr::OTHER_ADDRESS)?)
}

/// The public IP of the mapped addresses, if they agree.
pub fn public_ip(obs: &[Observation]) -> Option<IpAddr> {
    let mut ips = obs.iter().filter_map(|o| o.mapped.map(|m| m.ip()));
    let first = ips.next()?;
    ips.all(|i| i == first).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn run(nat: impl Fn(&Probe) -> Option<SocketAddr>) -> NatClass {
        let r = Reflector {
            addr: a("192.0.2.1:3478"),
            other: Some(a("192.0.2.2:3479")),
        };
        let plan = probe_plan(&[
            r,
            Reflector {
                addr: a("198.51.100.1:3478"),
                other: None,
            },
        ]);
        let obs: Vec<Observation> = plan
            .iter()
            .map(|p| Observation {
                probe: *p,
                mapped: nat(p),
            })
            .collect();
        classify(a("10.0.0.1:5000"), &obs)
    }

    #[test]
    fn rfc5780_cases() {
        let pub_ = |p: u16| Some(a(&format!("203.0.113.1:{p}")));
        // Full cone: one mapping, everything answers.
        let c = run(|_| pub_(40000));
        assert_eq!(c.mapping, Some(Mapping::EndpointIndependent));
        assert_eq!(c.filtering, Some(Filtering::EndpointIndependent));
        // Port-restricted: one mapping, changed address or port never answers.
        let c = run(|p| (!p.change_ip && !p.change_port).then(|| a("203.0.113.1:40000")));
        assert_eq!(c.mapping, Some(Mapping::EndpointIndependent));
        assert_eq!(c.filtering, Some(Filtering::AddressAndPortDependent));
        // Restricted: change port answers.
        let c = run(|p| (!p.change_ip).then(|| a("203.0.113.1:40000")));
        assert_eq!(c.filtering, Some(Filtering::AddressDependent));
        // Symmetric with a sequential allocator.
        let next = std::cell::Cell::new(40000u16);
        let c = run(|p| {
            if p.change_ip || p.change_port {
                return None;
            }
            next.set(next.get() + 2);
            pub_(next.get())
        });
        assert_eq!(c.mapping, Some(Mapping::AddressAndPortDependent));
        assert_eq!(c.ports, PortAllocation::Sequential { delta: 2 });
        // No NAT.
        let c = run(|_| Some(a("10.0.0.1:5000")));
        assert_eq!(c.mapping, Some(Mapping::NoNat));
        assert_eq!(c.ports, PortAllocation::Preserving);
    }

    #[test]
    fn address_dependent_mapping() {
        // Same IP, different port: same mapping; another IP: another mapping.
        let c = run(|p| {
            if p.change_ip || p.change_port {
                return None;
            }
            let port = match p.to.ip().to_string().as_str() {
                "192.0.2.1" => 40000,
                "192.0.2.2" => 40001,
                _ => 40002,
            };
            Some(a(&format!("203.0.113.1:{port}")))
        });
        assert_eq!(c.mapping, Some(Mapping::AddressDependent));
    }

    #[test]
    fn probe_requests_are_padded_and_carry_change_request() {
        let p = Probe {
            to: a("192.0.2.1:3478"),
            change_ip: true,
            change_port: true,
        };
        let b = p.request(TransactionId([1; 12]));
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.get_u32(attr::CHANGE_REQUEST), Some(6));
        assert!(
            b.len() >= 20 + 12 + 20 + 8,
            "no smaller than an IPv6 answer with RFC 5780 extras"
        );
    }
}
