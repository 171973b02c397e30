//! The simulated network: per-link latency, NAT behaviours and what they allow.
//!
//! Nothing here is stored per link: a link's latency is a pure function of the seed and the
//! two node indices, so a million nodes cost no per-link memory. Links never reorder
//! messages (each link has one fixed latency and ties keep send order), as SCTP's ordered
//! delivery would not.

use crate::scenario::{Latency, NatMix};

/// A node's NAT behaviour (RFC 4787 terms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Nat {
    /// Publicly reachable (no NAT, or a port mapping).
    Public,
    /// Endpoint-independent mapping and filtering.
    FullCone,
    /// Endpoint-independent mapping, address-dependent filtering.
    Restricted,
    /// Endpoint-independent mapping, address-and-port-dependent filtering.
    PortRestricted,
    /// Endpoint-dependent mapping (and filtering).
    Symmetric,
}

impl Nat {
    /// Every behaviour, in order.
    pub const ALL: [Nat; 5] = [
        Nat::Public,
        Nat::FullCone,
        Nat::Restricted,
        Nat::PortRestricted,
        Nat::Symmetric,
    ];

    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Nat::Public => "public",
            Nat::FullCone => "full-cone",
            Nat::Restricted => "restricted",
            Nat::PortRestricted => "port-restricted",
            Nat::Symmetric => "symmetric",
        }
    }

    /// Whether anyone may open a link to it without help.
    pub fn reachable(self) -> bool {
        matches!(self, Nat::Public | Nat::FullCone)
    }

    /// Draws a behaviour from `mix` with `u` uniform in [0, 1).
    pub fn draw(mix: &NatMix, u: f64) -> Nat {
        let w = [
            mix.public,
            mix.full_cone,
            mix.restricted,
            mix.port_restricted,
            mix.symmetric,
        ];
        let total: f64 = w.iter().map(|x| x.max(0.0)).sum();
        if total <= 0.0 {
            return Nat::Public;
        }
        let mut x = u * total;
        for (i, wi) in w.iter().enumerate() {
            x -= wi.max(0.0);
            if x < 0.0 {
                return Nat::ALL[i];
            }
        }
        Nat::Public
    }
}

/// How a node `a` can open a link to a node `b` it has no link with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// `a` dials and `b` accepts.
    Direct,
    /// Both must send at once (a common neighbour introduces them), or `b` must dial back.
    Introduction,
    /// No hole punching works (endpoint-dependent mapping against port-dependent
    /// filtering); only a relay.
    Relay,
}

/// The connection matrix of docs/sim.md, from the NAT lab's measured facts: everything
/// punches except an endpoint-dependent mapping paired with an address-and-port-dependent
/// filter.
pub fn reach(a: Nat, b: Nat) -> Reach {
    if b.reachable() {
        return Reach::Direct;
    }
    let hard = |n: Nat| n == Nat::Symmetric;
    let port_filter = |n: Nat| matches!(n, Nat::PortRestricted | Nat::Symmetric);
    if (hard(a) && port_filter(b)) || (hard(b) && port_filter(a)) {
        Reach::Relay
    } else {
        Reach::Introduction
    }
}

/// SplitMix64: a fast, well-mixed hash of one word.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform number in [0, 1) derived from `h`.
pub(crate) fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The latency model.
#[derive(Clone, Debug)]
pub struct LatencyModel {
    dist: Latency,
    seed: u64,
}

impl LatencyModel {
    /// A model drawing from `dist` with `seed`.
    pub fn new(dist: Latency, seed: u64) -> Self {
        Self { dist, seed }
    }

    /// One-way latency of the link between `a` and `b`, in microseconds (symmetric).
    pub fn one_way_us(&self, a: u32, b: u32) -> u64 {
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        let h = mix64(self.seed ^ (u64::from(lo) << 32 | u64::from(hi)));
        let u = unit(h);
        let ms = match self.dist {
            Latency::Constant { ms } => ms,
            Latency::Uniform { min_ms, max_ms } => min_ms + u * (max_ms - min_ms).max(0.0),
            Latency::LogNormal {
                median_ms,
                sigma,
                max_ms,
            } => {
                // Box-Muller with a second draw from the same link hash.
                let u2 = unit(mix64(h)).max(1e-12);
                let z = (-2.0 * u2.ln()).sqrt() * (2.0 * core::f64::consts::PI * u).cos();
                (median_ms * (sigma * z).exp()).min(max_ms)
            }
        };
        (ms.max(0.0) * 1000.0) as u64 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reach_matrix_matches_the_nat_lab() {
        use Nat::*;
        assert_eq!(reach(Symmetric, Public), Reach::Direct);
        assert_eq!(reach(Public, Symmetric), Reach::Introduction);
        assert_eq!(reach(Restricted, PortRestricted), Reach::Introduction);
        assert_eq!(reach(PortRestricted, PortRestricted), Reach::Introduction);
        assert_eq!(reach(Symmetric, PortRestricted), Reach::Relay);
        assert_eq!(reach(PortRestricted, Symmetric), Reach::Relay);
        assert_eq!(reach(Symmetric, Symmetric), Reach::Relay);
        assert_eq!(reach(Symmetric, Restricted), Reach::Introduction);
        assert_eq!(reach(Restricted, FullCone), Reach::Direct);
    }

    #[test]
    fn latency_is_symmetric_and_in_range() {
        let m = LatencyModel::new(
            Latency::Uniform {
                min_ms: 10.0,
                max_ms: 20.0,
            },
            5,
        );
        for a in 0..50 {
            for b in 0..50 {
                let l = m.one_way_us(a, b);
                assert_eq!(l, m.one_way_us(b, a));
                assert!((10_000..=20_001).contains(&l), "{l}");
            }
        }
    }

    #[test]
    fn nat_draw_follows_the_mix() {
        let mix = NatMix {
            public: 1.0,
            full_cone: 0.0,
            restricted: 1.0,
            port_restricted: 0.0,
            symmetric: 0.0,
        };
        assert_eq!(Nat::draw(&mix, 0.25), Nat::Public);
        assert_eq!(Nat::draw(&mix, 0.75), Nat::Restricted);
    }
}
