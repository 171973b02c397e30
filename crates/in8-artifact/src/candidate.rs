//! ICE candidates as artifacts carry them: compact, one byte string each.
//!
//! Wire form (a CBOR byte string of 7, 11, 19 or 23 bytes):
//!
//! | byte | meaning |
//! |------|---------|
//! | 0    | bits 0–1 kind (0 host, 1 server-reflexive, 2 peer-reflexive, 3 relay); bit 2 IPv6; bit 3 explicit priority follows; bits 4–7 zero |
//! | 1..  | address (4 bytes IPv4 or 16 bytes IPv6), then port (2 bytes, big endian) |
//! | last 4 | priority (big endian), only when bit 3 is set |
//!
//! The priority is omitted when it equals the default for the candidate's position in its
//! list ([`Candidate::default_priority`]), which is what in8's own agents use; the component
//! id is always 1 (in8 multiplexes everything on one component). Related addresses are not
//! carried: they are not needed for connectivity and would leak private addresses.

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::cbor::{Enc, Reader};
use crate::error::{Error, Result};

/// Most candidates one peer may list in an artifact.
pub const MAX_CANDIDATES: usize = 16;

/// The ICE candidate type (RFC 8445 §5.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CandidateKind {
    /// An address of a local interface.
    Host,
    /// An address a STUN server (or a peer acting as one) saw us at.
    ServerReflexive,
    /// An address a peer saw a check come from.
    PeerReflexive,
    /// An address allocated on a TURN relay.
    Relay,
}

impl CandidateKind {
    /// RFC 8445 §5.1.2.2: "The RECOMMENDED values for type preferences are 126 for host
    /// candidates, 110 for peer-reflexive candidates, 100 for server-reflexive candidates,
    /// and 0 for relayed candidates."
    pub const fn type_preference(self) -> u32 {
        match self {
            CandidateKind::Host => 126,
            CandidateKind::PeerReflexive => 110,
            CandidateKind::ServerReflexive => 100,
            CandidateKind::Relay => 0,
        }
    }

    /// The SDP name (`host`, `srflx`, `prflx`, `relay`).
    pub const fn sdp_name(self) -> &'static str {
        match self {
            CandidateKind::Host => "host",
            CandidateKind::ServerReflexive => "srflx",
            CandidateKind::PeerReflexive => "prflx",
            CandidateKind::Relay => "relay",
        }
    }

    fn code(self) -> u8 {
        match self {
            CandidateKind::Host => 0,
            CandidateKind::ServerReflexive => 1,
            CandidateKind::PeerReflexive => 2,
            CandidateKind::Relay => 3,
        }
    }

    fn from_code(c: u8) -> Self {
        match c & 3 {
            0 => CandidateKind::Host,
            1 => CandidateKind::ServerReflexive,
            2 => CandidateKind::PeerReflexive,
            _ => CandidateKind::Relay,
        }
    }
}

/// A transport address a peer can be reached at, with its ICE priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Candidate {
    /// The candidate type.
    pub kind: CandidateKind,
    /// IP address and UDP port.
    pub addr: SocketAddr,
    /// The ICE priority (RFC 8445 §5.1.2).
    pub priority: u32,
}

impl Candidate {
    /// RFC 8445 §5.1.2.1: "priority = (2^24)*(type preference) + (2^8)*(local preference) +
    /// (2^0)*(256 - component ID)". in8 uses component 1 and a local preference of
    /// `65535 - index`, so earlier candidates in a list are preferred.
    pub fn default_priority(kind: CandidateKind, index: usize) -> u32 {
        let local_pref = 65_535u32.saturating_sub(index.min(65_535) as u32);
        (kind.type_preference() << 24) + (local_pref << 8) + (256 - 1)
    }

    /// A candidate with the default priority for position `index` in its list.
    pub fn new(kind: CandidateKind, addr: SocketAddr, index: usize) -> Self {
        Self {
            kind,
            addr,
            priority: Self::default_priority(kind, index),
        }
    }

    /// The foundation (RFC 8445 §5.1.1.3) a remote agent derives for this candidate: the same
    /// for candidates of the same type and IP address.
    pub fn foundation(&self) -> String {
        let mut h = blake3::Hasher::new_derive_key("in8 v1 candidate foundation");
        h.update(&[self.kind.code()]);
        match self.addr.ip() {
            IpAddr::V4(a) => h.update(&a.octets()),
            IpAddr::V6(a) => h.update(&a.octets()),
        };
        let d = h.finalize();
        data_encoding::HEXLOWER.encode(&d.as_bytes()[..4])
    }

    pub(crate) fn encode(&self, index: usize, e: &mut Enc) {
        let mut b = [0u8; 23];
        let mut n = 1;
        let mut flags = self.kind.code();
        match self.addr.ip() {
            IpAddr::V4(a) => {
                b[1..5].copy_from_slice(&a.octets());
                n += 4;
            }
            IpAddr::V6(a) => {
                flags |= 0b100;
                b[1..17].copy_from_slice(&a.octets());
                n += 16;
            }
        }
        b[n..n + 2].copy_from_slice(&self.addr.port().to_be_bytes());
        n += 2;
        if self.priority != Self::default_priority(self.kind, index) {
            flags |= 0b1000;
            b[n..n + 4].copy_from_slice(&self.priority.to_be_bytes());
            n += 4;
        }
        b[0] = flags;
        e.bytes(&b[..n]);
    }

    pub(crate) fn decode(r: &mut Reader<'_>, index: usize) -> Result<Self> {
        let b = r.bytes("candidate")?;
        let flags = *b.first().ok_or(Error::WrongSize {
            field: "candidate",
            expected: "7, 11, 19 or 23",
            actual: 0,
        })?;
        if flags & 0xf0 != 0 {
            return Err(Error::InvalidValue {
                field: "candidate",
                reason: "reserved flag bits set",
            });
        }
        let v6 = flags & 0b100 != 0;
        let explicit = flags & 0b1000 != 0;
        let want = 1 + if v6 { 16 } else { 4 } + 2 + if explicit { 4 } else { 0 };
        if b.len() != want {
            return Err(Error::WrongSize {
                field: "candidate",
                expected: "7, 11, 19 or 23 as its flags say",
                actual: b.len(),
            });
        }
        let (ip, rest) = if v6 {
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[1..17]);
            (IpAddr::V6(Ipv6Addr::from(o)), &b[17..])
        } else {
            let mut o = [0u8; 4];
            o.copy_from_slice(&b[1..5]);
            (IpAddr::V4(Ipv4Addr::from(o)), &b[5..])
        };
        let port = u16::from_be_bytes([rest[0], rest[1]]);
        if port == 0 {
            return Err(Error::InvalidValue {
                field: "candidate",
                reason: "port 0",
            });
        }
        let kind = CandidateKind::from_code(flags);
        let priority = if explicit {
            let p = u32::from_be_bytes([rest[2], rest[3], rest[4], rest[5]]);
            if p == Self::default_priority(kind, index) {
                return Err(Error::InvalidValue {
                    field: "candidate",
                    reason: "explicit priority equal to the default (not deterministic)",
                });
            }
            p
        } else {
            Self::default_priority(kind, index)
        };
        Ok(Self {
            kind,
            addr: SocketAddr::new(ip, port),
            priority,
        })
    }
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} (priority {})",
            self.kind.sdp_name(),
            self.addr,
            self.priority
        )
    }
}

/// Encodes a candidate list as a CBOR array.
pub(crate) fn encode_list(list: &[Candidate], e: &mut Enc) {
    e.array(list.len());
    for (i, c) in list.iter().enumerate() {
        c.encode(i, e);
    }
}

/// Decodes a candidate list (at most [`MAX_CANDIDATES`]).
pub(crate) fn decode_list(r: &mut Reader<'_>) -> Result<Vec<Candidate>> {
    let n = r.array("candidates", MAX_CANDIDATES)?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(Candidate::decode(r, i)?);
    }
    r.leave();
    Ok(out)
}

/// Checks a candidate list before it is signed.
pub(crate) fn check_list(list: &[Candidate], field: &'static str) -> Result<()> {
    if list.len() > MAX_CANDIDATES {
        return Err(Error::WrongSize {
            field,
            expected: "at most 16",
            actual: list.len(),
        });
    }
    if list.iter().any(|c| c.addr.port() == 0) {
        return Err(Error::InvalidValue {
            field,
            reason: "port 0",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_priority_formula() {
        // Host, local preference 65535, component 1: 126 << 24 | 65535 << 8 | 255.
        assert_eq!(
            Candidate::default_priority(CandidateKind::Host, 0),
            2_130_706_431
        );
        assert_eq!(
            Candidate::default_priority(CandidateKind::Relay, 0),
            16_777_215
        );
        assert!(
            Candidate::default_priority(CandidateKind::Host, 0)
                > Candidate::default_priority(CandidateKind::Host, 1)
        );
    }

    #[test]
    fn compact_sizes() {
        let mut e = Enc::new();
        Candidate::new(CandidateKind::Host, "10.0.0.1:4488".parse().unwrap(), 0).encode(0, &mut e);
        assert_eq!(e.finish().len(), 8); // 1 head + 7
        let mut e = Enc::new();
        let mut c = Candidate::new(CandidateKind::Relay, "[2001:db8::1]:9".parse().unwrap(), 0);
        c.priority = 5;
        c.encode(0, &mut e);
        assert_eq!(e.finish().len(), 24); // 1 head + 23
    }
}
