//! Candidate gathering: one socket per usable host address, server-reflexive addresses from
//! configured STUN servers.
//!
//! RFC 8445 §5.1.1.1: "the ICE agent SHOULD obtain a host candidate for each IP address
//! it has" — in8 binds one UDP socket per address, so every received datagram's local
//! address (needed for ICE's symmetry check, RFC 8445 §7.2.5.2.1) is known exactly.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use in8_artifact::{Candidate, CandidateKind};
use in8_ice::{LocalCandidate, nat, stun::TransactionId};
use tokio::net::UdpSocket;

use crate::config::Config;
use crate::error::{Error, Result};

use crate::proto::TestOne;

/// Most host addresses (and so sockets) a node uses.
pub const MAX_HOST_ADDRESSES: usize = 8;

fn usable(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !a.is_link_local() && !a.is_unspecified() && !a.is_broadcast(),
        IpAddr::V6(a) => (a.segments()[0] & 0xffc0) != 0xfe80 && !a.is_unspecified(),
    }
}

/// The IP addresses to bind: the configured one, or every usable interface address of its
/// family when it is unspecified (loopback only if there is nothing else).
pub(crate) fn host_ips(config: &Config) -> Result<Vec<IpAddr>> {
    let bind = config.bind.ip();
    if !bind.is_unspecified() {
        return Ok(vec![bind]);
    }
    if !config.host_addresses.is_empty() {
        return Ok(config.host_addresses.clone());
    }
    let ifaces = if_addrs::get_if_addrs().map_err(|source| Error::Io {
        action: "listing network interfaces".into(),
        source,
    })?;
    let family = |ip: &IpAddr| ip.is_ipv4() == bind.is_ipv4();
    let mut ips: Vec<IpAddr> = ifaces
        .iter()
        .map(|i| i.ip())
        .filter(|ip| family(ip) && usable(ip) && !ip.is_loopback())
        .collect();
    if ips.is_empty() {
        ips = ifaces
            .iter()
            .map(|i| i.ip())
            .filter(|ip| family(ip) && ip.is_loopback())
            .collect();
    }
    ips.sort();
    ips.dedup();
    ips.truncate(MAX_HOST_ADDRESSES);
    Ok(ips)
}

/// Binds one socket per host IP at the configured port.
pub(crate) async fn bind_sockets(config: &Config) -> Result<Vec<UdpSocket>> {
    let mut out = Vec::new();
    for ip in host_ips(config)? {
        let addr = SocketAddr::new(ip, config.bind.port());
        let s = UdpSocket::bind(addr).await.map_err(|source| Error::Io {
            action: format!("binding UDP {addr} (is another in8 node using this port?)"),
            source,
        })?;
        out.push(s);
    }
    if out.is_empty() {
        return Err(Error::Io {
            action: "finding a usable network address".into(),
            source: std::io::Error::other("no usable interface address"),
        });
    }
    Ok(out)
}

/// What server-reflexive gathering found.
#[derive(Debug, Default)]
pub(crate) struct Reflexive {
    /// Distinct server-reflexive addresses, each with its base.
    pub(crate) srflx: Vec<(SocketAddr, SocketAddr)>,
    /// RFC 5780 Test I from the first socket: each answering server, the mapped address
    /// and its OTHER-ADDRESS (NAT classification starts from these).
    pub(crate) first: Vec<TestOne>,
}

/// Asks each STUN server, from each socket, where it sees us (RFC 8489 Binding) and
/// returns the distinct server-reflexive candidates, each with its base, and the first
/// socket's answers. Waits at most `timeout`; servers that do not answer are skipped.
pub(crate) async fn server_reflexive(
    sockets: &[UdpSocket],
    servers: &[SocketAddr],
    timeout: Duration,
) -> Reflexive {
    let mut out = Reflexive::default();
    if servers.is_empty() {
        return out;
    }
    let deadline = tokio::time::Instant::now() + timeout;
    for (index, sock) in sockets.iter().enumerate() {
        let Ok(base) = sock.local_addr() else {
            continue;
        };
        let mut pending = Vec::new();
        for server in servers.iter().filter(|s| s.is_ipv4() == base.is_ipv4()) {
            let tid = TransactionId::random(&mut rand::rng());
            let probe = nat::Probe {
                to: *server,
                change_ip: false,
                change_port: false,
            };
            if sock.send_to(&probe.request(tid), server).await.is_ok() {
                pending.push((tid, *server));
            }
        }
        let mut buf = [0u8; 1500];
        while !pending.is_empty() {
            let r = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await;
            let Ok(Ok((n, _from))) = r else { break };
            let answer = &buf[..n];
            let Some(tid) = in8_ice::stun::Message::parse(answer)
                .ok()
                .map(|m| m.transaction_id())
            else {
                continue;
            };
            let Some(i) = pending.iter().position(|(p, _)| *p == tid) else {
                continue;
            };
            let (_, server) = pending.swap_remove(i);
            let Some(mapped) = nat::mapped_address(answer) else {
                continue;
            };
            if index == 0 {
                out.first.push(TestOne {
                    server,
                    mapped,
                    other: nat::other_address(answer),
                });
            }
            if mapped != base && !out.srflx.iter().any(|(m, _)| *m == mapped) {
                out.srflx.push((mapped, base));
            }
        }
    }
    out
}

/// The local candidates: hosts first, then server-reflexive ones, with RFC 8445 priorities
/// by position.
pub(crate) fn local_candidates(
    hosts: &[SocketAddr],
    srflx: &[(SocketAddr, SocketAddr)],
) -> Vec<LocalCandidate> {
    let mut out = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        out.push(LocalCandidate::host(*h, i));
    }
    for (i, (mapped, base)) in srflx.iter().enumerate() {
        let c = Candidate::new(CandidateKind::ServerReflexive, *mapped, hosts.len() + i);
        out.push(LocalCandidate::new(c, *base));
    }
    out.truncate(in8_artifact::MAX_CANDIDATES);
    out
}
