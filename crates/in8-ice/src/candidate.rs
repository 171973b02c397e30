//! Candidates as the agent keeps them: the artifact [`Candidate`] plus its base and
//! foundation, and the RFC 8445 priority formulas.

use std::net::SocketAddr;

pub use in8_artifact::{Candidate, CandidateKind};

/// RFC 8445 §5.1.2.1: "priority = (2^24)*(type preference) + (2^8)*(local preference) +
/// (2^0)*(256 - component ID)". in8 uses one component (ID 1).
pub fn candidate_priority(kind: CandidateKind, local_preference: u16) -> u32 {
    (kind.type_preference() << 24) + ((local_preference as u32) << 8) + (256 - 1)
}

/// RFC 8445 §6.1.2.3: "Let G be the priority for the candidate provided by the controlling
/// agent. Let D be the priority for the candidate provided by the controlled agent. The
/// priority for a pair is computed as: pair priority = 2^32*MIN(G,D) + 2*MAX(G,D) +
/// (G>D?1:0)".
pub fn pair_priority(controlling: u32, controlled: u32) -> u64 {
    // Candidate priorities are below 2^31 (type preference <= 126), so this fits in 64
    // bits; larger inputs saturate instead of wrapping.
    let (g, d) = (controlling as u128, controlled as u128);
    let p = (1u128 << 32) * g.min(d) + 2 * g.max(d) + u128::from(g > d);
    u64::try_from(p).unwrap_or(u64::MAX)
}

/// RFC 8445 §5.1.1.3: the foundation is "the same for two candidates that have the same
/// type, base IP address, protocol (UDP, TCP, etc.), and STUN or TURN server". in8 hashes
/// type and base IP (one protocol; server identity is folded into the base for relays).
pub(crate) fn foundation(kind: CandidateKind, ip_of: SocketAddr) -> u64 {
    // FNV-1a: deterministic across runs and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    eat(kind.type_preference() as u8);
    match ip_of.ip() {
        std::net::IpAddr::V4(a) => a.octets().into_iter().for_each(&mut eat),
        std::net::IpAddr::V6(a) => a.octets().into_iter().for_each(&mut eat),
    }
    h
}

/// A candidate of this agent: what is advertised plus the base it is sent from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalCandidate {
    /// The advertised candidate.
    pub candidate: Candidate,
    /// RFC 8445 §5.1.1.1: the base, the address checks are sent from (for host and relayed
    /// candidates the candidate itself; for reflexive ones the host address behind it).
    pub base: SocketAddr,
    pub(crate) foundation: u64,
}

impl LocalCandidate {
    /// A candidate with its base.
    pub fn new(candidate: Candidate, base: SocketAddr) -> Self {
        Self {
            candidate,
            base,
            foundation: foundation(candidate.kind, base),
        }
    }

    /// A host candidate (its own base).
    pub fn host(addr: SocketAddr, index: usize) -> Self {
        Self::new(Candidate::new(CandidateKind::Host, addr, index), addr)
    }
}

/// A candidate of the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteCandidate {
    /// The candidate.
    pub candidate: Candidate,
    pub(crate) foundation: u64,
}

impl RemoteCandidate {
    pub(crate) fn new(candidate: Candidate) -> Self {
        Self {
            candidate,
            foundation: foundation(candidate.kind, candidate.addr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_match_the_rfc() {
        assert_eq!(
            candidate_priority(CandidateKind::Host, 65535),
            Candidate::default_priority(CandidateKind::Host, 0)
        );
        // G > D adds one; the formula is symmetric otherwise.
        let a = pair_priority(100, 50);
        let b = pair_priority(50, 100);
        assert_eq!(a, b + 1);
        assert_eq!(a, (1u64 << 32) * 50 + 200 + 1);
        // Highest possible priorities do not overflow.
        let _ = pair_priority(u32::MAX, u32::MAX);
    }

    #[test]
    fn foundations() {
        let a = foundation(CandidateKind::Host, "10.0.0.1:1".parse().unwrap());
        let b = foundation(CandidateKind::Host, "10.0.0.1:2".parse().unwrap());
        let c = foundation(
            CandidateKind::ServerReflexive,
            "10.0.0.1:1".parse().unwrap(),
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
