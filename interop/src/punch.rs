//! A raw UDP hole-punching probe between two lab hosts: the lab's own baseline for which
//! NAT pairs a simultaneous open can get through, independent of in8.
//!
//! Each side learns its server-reflexive address from the lab's coturn, the harness swaps
//! them (the "signalling"), then both sides send a probe every [`INTERVAL`] to the peer's
//! reflexive address and to every address a probe of the peer has arrived from (what ICE
//! calls a peer-reflexive candidate), for the given duration.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::nat::{Filtering, Mapping, NatType};
use crate::{Host, Result, stun};

/// Time between two probes of one side.
pub const INTERVAL: Duration = Duration::from_millis(50);

/// The outcome of one probe run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Punch {
    /// A's own socket address.
    pub a_local: SocketAddr,
    /// B's own socket address.
    pub b_local: SocketAddr,
    /// A's reflexive address as the server saw it.
    pub a_srflx: SocketAddr,
    /// B's reflexive address as the server saw it.
    pub b_srflx: SocketAddr,
    /// The address B's probes reached A from (A's view of B), if any arrived.
    pub a_heard_from: Option<SocketAddr>,
    /// The address A's probes reached B from, if any arrived.
    pub b_heard_from: Option<SocketAddr>,
}

impl Punch {
    /// Both directions got through.
    pub fn connected(&self) -> bool {
        self.a_heard_from.is_some() && self.b_heard_from.is_some()
    }

    /// The kind of path that worked: "host" (no translation on either side), "srflx" (the
    /// reflexive addresses), "prflx" (a mapping the peer learned from arriving probes), or
    /// "-" when it did not connect.
    pub fn path(&self) -> &'static str {
        if !self.connected() {
            "-"
        } else if self.used_prflx() {
            "prflx"
        } else if self.a_srflx == self.a_local && self.b_srflx == self.b_local {
            "host"
        } else {
            "srflx"
        }
    }

    /// Whether a side's working address differed from its reflexive one (a peer-reflexive
    /// path: the NAT chose a new mapping towards the peer).
    pub fn used_prflx(&self) -> bool {
        self.a_heard_from.is_some_and(|a| a != self.b_srflx)
            || self.b_heard_from.is_some_and(|b| b != self.a_srflx)
    }
}

/// Whether a raw simultaneous open between hosts behind `a` and `b` must get through (no
/// port prediction): everything except a symmetric NAT paired with an address-and-port
/// dependent filter, because the symmetric side's mapping towards the peer differs from
/// the reflexive address the peer was told, and only an APDF peer refuses packets from it.
pub fn expected_direct(a: NatType, b: NatType) -> bool {
    let hard = |t: NatType| t.expected().mapping == Mapping::AddressAndPortDependent;
    let apdf = |t: NatType| t.expected().filtering == Filtering::AddressAndPortDependent;
    !((hard(a) && apdf(b)) || (hard(b) && apdf(a)))
}

/// Runs the probe between host `a` and host `b` for `duration`, with `stun` for the
/// reflexive addresses.
pub fn punch(a: &Host, b: &Host, stun_server: SocketAddr, duration: Duration) -> Result<Punch> {
    let sa = a.udp_socket(0)?;
    let sb = b.udp_socket(0)?;
    let a_srflx = stun::query(&sa, stun_server, Duration::from_secs(3))?;
    let b_srflx = stun::query(&sb, stun_server, Duration::from_secs(3))?;
    let io = |e| crate::Error::io("punch probe", e);
    sa.set_nonblocking(true).map_err(io)?;
    sb.set_nonblocking(true).map_err(io)?;
    let mut side_a = Side::new(sa, b_srflx);
    let mut side_b = Side::new(sb, a_srflx);
    let end = Instant::now() + duration;
    while Instant::now() < end {
        side_a.send()?;
        side_b.send()?;
        std::thread::sleep(INTERVAL);
        side_a.receive()?;
        side_b.receive()?;
    }
    Ok(Punch {
        a_local: side_a.socket.local_addr().map_err(io)?,
        b_local: side_b.socket.local_addr().map_err(io)?,
        a_srflx,
        b_srflx,
        a_heard_from: side_a.heard.first().copied(),
        b_heard_from: side_b.heard.first().copied(),
    })
}

const PROBE: &[u8] = b"in8-lab punch probe";
/// Bound on the peer-reflexive addresses one side tracks.
const MAX_LEARNED: usize = 8;

struct Side {
    socket: UdpSocket,
    told: SocketAddr,
    heard: Vec<SocketAddr>,
}

impl Side {
    fn new(socket: UdpSocket, told: SocketAddr) -> Self {
        Self {
            socket,
            told,
            heard: Vec::new(),
        }
    }

    fn send(&self) -> Result<()> {
        for to in std::iter::once(&self.told).chain(&self.heard) {
            // Unreachable destinations (ICMP errors) are part of the experiment.
            let _ = self.socket.send_to(PROBE, to);
        }
        Ok(())
    }

    fn receive(&mut self) -> Result<()> {
        let mut buf = [0u8; 64];
        loop {
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) if &buf[..n] == PROBE => {
                    if !self.heard.contains(&from) && self.heard.len() < MAX_LEARNED {
                        self.heard.push(from);
                    }
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                // ICMP port unreachable from an earlier send surfaces here; keep going.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(e) => return Err(crate::Error::io("punch probe receive", e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_matrix_fails_exactly_symmetric_against_apdf() {
        use NatType::*;
        let failing: Vec<(NatType, NatType)> = NatType::ALL
            .iter()
            .enumerate()
            .flat_map(|(i, a)| NatType::ALL[i..].iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| !expected_direct(*a, *b))
            .collect();
        assert_eq!(
            failing,
            [
                (PortRestricted, Symmetric),
                (Symmetric, Symmetric),
                (Symmetric, Cgnat)
            ]
        );
        assert!(!expected_direct(Symmetric, PortRestricted));
        assert!(expected_direct(Symmetric, Restricted));
    }
}
