//! The NAT types a site can sit behind, what RFC 4787 / RFC 5780 behaviour each must show,
//! and the nftables ruleset that makes a Linux router behave that way.
//!
//! Every NAT router **drops unsolicited input on its WAN side**. If it accepted it, an early
//! punch packet from a peer would create an unreplied conntrack entry on the router, and the
//! NAT would later silently choose another port for the host's own flow to that peer (the
//! "conntrack pitfall", reproduced on these machines). A packet dropped by a filter chain is
//! never confirmed, so it leaves no conntrack entry.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::Error;

/// The NAT in front of a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum NatType {
    /// No NAT: the host has a public address; the router only forwards.
    None,
    /// Full cone: endpoint-independent mapping and endpoint-independent filtering.
    FullCone,
    /// Restricted cone: endpoint-independent mapping, address-dependent filtering.
    Restricted,
    /// Port-restricted cone: endpoint-independent mapping, address-and-port-dependent filtering.
    PortRestricted,
    /// Symmetric: a random port for every destination (address-and-port-dependent mapping),
    /// address-and-port-dependent filtering.
    Symmetric,
    /// Carrier-grade NAT: a port-restricted home router behind a port-restricted CGN
    /// (two layers, the home router's WAN in 100.64.0.0/10).
    Cgnat,
}

impl NatType {
    /// The six types, in the order tables list them.
    pub const ALL: [NatType; 6] = [
        NatType::None,
        NatType::FullCone,
        NatType::Restricted,
        NatType::PortRestricted,
        NatType::Symmetric,
        NatType::Cgnat,
    ];

    /// The short name used on command lines and in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            NatType::None => "none",
            NatType::FullCone => "full-cone",
            NatType::Restricted => "restricted",
            NatType::PortRestricted => "port-restricted",
            NatType::Symmetric => "symmetric",
            NatType::Cgnat => "cgnat",
        }
    }

    /// The router layers from the host outwards (CGNAT has two).
    pub fn layers(self) -> &'static [Layer] {
        match self {
            NatType::None => &[Layer::Forward],
            NatType::FullCone => &[Layer::FullCone],
            NatType::Restricted => &[Layer::Restricted],
            NatType::PortRestricted => &[Layer::PortRestricted],
            NatType::Symmetric => &[Layer::Symmetric],
            NatType::Cgnat => &[Layer::PortRestricted, Layer::PortRestricted],
        }
    }

    /// The behaviour an RFC 5780 discovery from a host of this site must report.
    pub fn expected(self) -> Behaviour {
        use Filtering as F;
        use Mapping as M;
        let (translated, mapping, filtering) = match self {
            NatType::None => (false, M::EndpointIndependent, F::EndpointIndependent),
            NatType::FullCone => (true, M::EndpointIndependent, F::EndpointIndependent),
            NatType::Restricted => (true, M::EndpointIndependent, F::AddressDependent),
            NatType::PortRestricted | NatType::Cgnat => {
                (true, M::EndpointIndependent, F::AddressAndPortDependent)
            }
            NatType::Symmetric => (true, M::AddressAndPortDependent, F::AddressAndPortDependent),
        };
        Behaviour {
            translated,
            mapping,
            filtering,
        }
    }
}

impl fmt::Display for NatType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NatType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        NatType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = NatType::ALL.iter().map(|t| t.as_str()).collect();
                Error::Config(format!(
                    "unknown NAT type {s:?}; one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// Mapping behaviour (RFC 4787 §4.1, as RFC 5780 §4.3 discovers it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapping {
    /// The same mapped address for every destination.
    EndpointIndependent,
    /// A new mapping per destination address.
    AddressDependent,
    /// A new mapping per destination address and port.
    AddressAndPortDependent,
}

/// Filtering behaviour (RFC 4787 §5, as RFC 5780 §4.4 discovers it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filtering {
    /// Anyone may send to a mapped address.
    EndpointIndependent,
    /// Only addresses the host has sent to.
    AddressDependent,
    /// Only address and port pairs the host has sent to.
    AddressAndPortDependent,
}

/// What an RFC 5780 discovery says about a NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behaviour {
    /// Whether the reflexive address differs from the host's own (there is a NAT at all).
    pub translated: bool,
    /// Mapping behaviour.
    pub mapping: Mapping,
    /// Filtering behaviour.
    pub filtering: Filtering,
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = match self.mapping {
            Mapping::EndpointIndependent => "EIM",
            Mapping::AddressDependent => "ADM",
            Mapping::AddressAndPortDependent => "APDM",
        };
        let fl = match self.filtering {
            Filtering::EndpointIndependent => "EIF",
            Filtering::AddressDependent => "ADF",
            Filtering::AddressAndPortDependent => "APDF",
        };
        let nat = if self.translated { "NAT" } else { "no NAT" };
        write!(f, "{nat}, {m} + {fl}")
    }
}

/// One NAT router's behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// Plain routing, no filter.
    Forward,
    /// `masquerade` + a dynamic map of mapped port to internal endpoint (DNAT any sender).
    FullCone,
    /// [`Layer::FullCone`] restricted to remote addresses the mapping has sent to.
    Restricted,
    /// Plain `masquerade`: conntrack only lets replies of the exact 5-tuple in.
    PortRestricted,
    /// `masquerade random`: a random port for every new 5-tuple.
    Symmetric,
}

/// How long an idle cone mapping or "contacted" entry lives in the router's dynamic map and
/// set (each outgoing packet refreshes it). Matches the kernel's UDP conntrack timeout for
/// flows that have seen replies (`nf_conntrack_udp_timeout_stream`, 120 s).
pub const MAPPING_TIMEOUT: Duration = Duration::from_secs(120);

/// Bound on the number of elements of each dynamic map / set (per router).
pub const MAP_SIZE: u32 = 4096;

/// The nftables ruleset for a router of this layer type with interfaces `wan` and `lan`.
/// Loading it replaces the table `ip in8lab` (and nothing else: the impairment's iptables
/// tables stay).
pub fn ruleset(layer: Layer) -> String {
    let mut r = String::from("table ip in8lab {}\ndelete table ip in8lab\ntable ip in8lab {\n");
    let t = MAPPING_TIMEOUT.as_secs();
    let cone = matches!(layer, Layer::FullCone | Layer::Restricted);
    if cone {
        // mapped port -> internal address . internal port, learned from outgoing packets.
        r += &format!(
            "  map mapping {{\n    type inet_service : ipv4_addr . inet_service\n    size {MAP_SIZE}\n    flags dynamic,timeout\n    timeout {t}s\n  }}\n"
        );
    }
    if layer == Layer::Restricted {
        // mapped port . remote address the host has sent to.
        r += &format!(
            "  set contacted {{\n    type inet_service . ipv4_addr\n    size {MAP_SIZE}\n    flags dynamic,timeout\n    timeout {t}s\n  }}\n"
        );
    }
    if cone {
        let guard = if layer == Layer::Restricted {
            "udp dport . ip saddr @contacted "
        } else {
            "meta l4proto udp "
        };
        r += "  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n";
        r += &format!("    iifname \"wan\" {guard}dnat ip to udp dport map @mapping\n  }}\n");
    }
    if layer != Layer::Forward {
        let random = if layer == Layer::Symmetric {
            " random"
        } else {
            ""
        };
        r += "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n";
        r += &format!("    oifname \"wan\" masquerade{random}\n  }}\n");
    }
    if cone {
        // After SNAT (priority srcnat + 10) the packet carries the mapped port.
        r += "  chain record {\n    type filter hook postrouting priority srcnat + 10; policy accept;\n";
        r += "    oifname \"wan\" meta l4proto udp update @mapping { udp sport : ct original ip saddr . ct original proto-src }\n";
        if layer == Layer::Restricted {
            r +=
                "    oifname \"wan\" meta l4proto udp update @contacted { udp sport . ip daddr }\n";
        }
        r += "  }\n";
    }
    if layer != Layer::Forward {
        // The conntrack pitfall: never accept unsolicited WAN input on the router itself.
        r += "  chain input {\n    type filter hook input priority filter; policy accept;\n";
        r += "    iifname \"wan\" ct state established,related accept\n";
        r += "    iifname \"wan\" drop\n  }\n";
        r += "  chain forward {\n    type filter hook forward priority filter; policy accept;\n";
        r += "    iifname \"wan\" ct state established,related accept\n";
        if cone {
            r += "    iifname \"wan\" ct status dnat accept\n";
        }
        r += "    iifname \"wan\" drop\n  }\n";
    }
    r += "}\n";
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in NatType::ALL {
            assert_eq!(t.as_str().parse::<NatType>().unwrap(), t);
        }
        let err = "cone".parse::<NatType>().unwrap_err().to_string();
        assert!(err.contains("full-cone"), "{err}");
    }

    #[test]
    fn only_symmetric_is_endpoint_dependent() {
        for t in NatType::ALL {
            let e = t.expected();
            assert_eq!(
                e.mapping == Mapping::AddressAndPortDependent,
                t == NatType::Symmetric,
                "{t}"
            );
            assert_eq!(e.translated, t != NatType::None, "{t}");
        }
    }

    #[test]
    fn every_nat_drops_unsolicited_wan_input() {
        for layer in [
            Layer::FullCone,
            Layer::Restricted,
            Layer::PortRestricted,
            Layer::Symmetric,
        ] {
            let r = ruleset(layer);
            let input = r.split("chain input").nth(1).unwrap();
            assert!(input.contains("iifname \"wan\" drop"), "{layer:?}:\n{r}");
            let forward = r.split("chain forward").nth(1).unwrap();
            assert!(forward.contains("iifname \"wan\" drop"), "{layer:?}:\n{r}");
        }
        assert!(!ruleset(Layer::Forward).contains("drop"));
    }

    #[test]
    fn rulesets_differ_exactly_where_the_behaviour_does() {
        assert!(ruleset(Layer::Symmetric).contains("masquerade random"));
        assert!(!ruleset(Layer::PortRestricted).contains("random"));
        assert!(!ruleset(Layer::PortRestricted).contains("dnat"));
        let full = ruleset(Layer::FullCone);
        assert!(
            full.contains("iifname \"wan\" meta l4proto udp dnat ip to udp dport map @mapping")
        );
        assert!(!full.contains("@contacted"));
        let restricted = ruleset(Layer::Restricted);
        assert!(restricted.contains("udp dport . ip saddr @contacted dnat"));
        assert!(restricted.contains("update @contacted { udp sport . ip daddr }"));
        assert!(restricted.contains(&format!("size {MAP_SIZE}")));
    }

    #[test]
    fn cgnat_is_two_port_restricted_layers() {
        assert_eq!(
            NatType::Cgnat.layers(),
            &[Layer::PortRestricted, Layer::PortRestricted]
        );
        assert_eq!(
            NatType::Cgnat.expected(),
            NatType::PortRestricted.expected()
        );
    }
}
