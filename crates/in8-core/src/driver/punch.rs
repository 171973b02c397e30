//! The hard side of birthday probing: the extra sockets, the ICE agent that owns them, the
//! sweeps that keep their NAT mappings open, and the promotion of the winning socket to an
//! `in8_transport::Endpoint` so DTLS can run on it.
//!
//! The extra sockets get their own agent (same credentials, role and tie-breaker as the
//! session it serves) instead of joining the session's check list: as host candidates
//! there, each would be paired with every remote candidate (hundreds of frozen pairs with
//! one foundation, and RFC 8445 §14.3's RTO, `Ta * N * (Num-Waiting + Num-In-Progress)`,
//! growing with N into minutes). This agent has no remote candidate at all: its sweeps are
//! one-shot probes (`Agent::send_probe`), and only what answers becomes a pair — a
//! peer-reflexive remote learned from an authenticated check (RFC 8445 §7.3.1.3) or a
//! probe's authenticated response — which ordinary ICE then validates and nominates.
//! Until promotion a socket is a plain tokio socket with a small task that passes STUN on;
//! promotion duplicates its descriptor into a transport endpoint (one certificate, for the
//! winner only) and ends the task.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use in8_ice::{Agent, LocalCandidate, Transmit};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A datagram from a birthday socket (or a promoted one): (socket, sender, bytes).
pub(crate) type Incoming = (SocketAddr, SocketAddr, Bytes);
/// Datagrams queued from all birthday sockets towards the driver (beyond it they drop, as
/// a full socket buffer would).
pub(crate) const PUNCH_QUEUE: usize = 1024;
/// Largest datagram read before promotion (STUN only; the rest is dropped).
const MAX_STUN: usize = 1500;

/// One extra socket before promotion.
pub(crate) struct PunchSocket {
    base: SocketAddr,
    socket: Arc<UdpSocket>,
    task: JoinHandle<()>,
}

impl Drop for PunchSocket {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Opens up to `count` sockets on `ip` (ephemeral ports), each passing the STUN it
/// receives to `incoming`. Stops early when the system refuses more (descriptor limits):
/// fewer sockets only lower the odds.
pub(crate) fn open(ip: IpAddr, count: u16, incoming: &mpsc::Sender<Incoming>) -> Vec<PunchSocket> {
    let mut out = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let s = match bind(ip) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(
                    opened = out.len(),
                    "birthday probing: cannot open more sockets: {e}"
                );
                break;
            }
        };
        let Ok(base) = s.local_addr() else { break };
        let socket = Arc::new(s);
        let task = tokio::spawn(receive(Arc::clone(&socket), base, incoming.clone()));
        out.push(PunchSocket { base, socket, task });
    }
    out
}

fn bind(ip: IpAddr) -> std::io::Result<UdpSocket> {
    let s = std::net::UdpSocket::bind(SocketAddr::new(ip, 0))?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s)
}

async fn receive(socket: Arc<UdpSocket>, base: SocketAddr, tx: mpsc::Sender<Incoming>) {
    let mut buf = vec![0u8; MAX_STUN];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let d = &buf[..n];
                if in8_ice::stun::is_stun(d)
                    && tx
                        .try_send((base, from, Bytes::copy_from_slice(d)))
                        .is_err()
                    && tx.is_closed()
                {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionRefused
                ) => {}
            Err(_) => break,
        }
    }
}

/// A duplicate of `socket`'s descriptor as a new tokio socket (same port, same mappings).
fn duplicate(socket: &UdpSocket) -> std::io::Result<UdpSocket> {
    #[cfg(unix)]
    let std = {
        use std::os::fd::AsFd;
        std::net::UdpSocket::from(socket.as_fd().try_clone_to_owned()?)
    };
    #[cfg(windows)]
    let std = {
        use std::os::windows::io::AsSocket;
        std::net::UdpSocket::from(socket.as_socket().try_clone_to_owned()?)
    };
    std.set_nonblocking(true)?;
    UdpSocket::from_std(std)
}

/// The hard side of one session's birthday probing.
pub(crate) struct Punch {
    /// The ICE agent of the extra sockets.
    pub(crate) agent: Agent,
    sockets: Vec<PunchSocket>,
    /// The socket that won and now carries a transport endpoint.
    pub(crate) promoted: Option<SocketAddr>,
    target: SocketAddr,
    gap: Duration,
    sweep_start: Instant,
    index: usize,
    next_send: Option<Instant>,
    sweeps_left: u32,
    /// Probes sent (all sweeps).
    pub(crate) sent: u32,
    /// Sweeps started.
    pub(crate) sweeps: u32,
}

impl Punch {
    /// Starts the punch: `agent` gets one host candidate per socket, and sweeps towards
    /// `target` (the easy side's server-reflexive address) begin at once.
    pub(crate) fn new(
        mut agent: Agent,
        sockets: Vec<PunchSocket>,
        target: SocketAddr,
        rate: u32,
        rounds: u32,
        now: Instant,
    ) -> Self {
        for (i, s) in sockets.iter().enumerate() {
            if let Err(e) = agent.add_local_candidate(LocalCandidate::host(s.base, i)) {
                tracing::debug!("birthday socket not added: {e}");
            }
        }
        agent.handle_timeout(now);
        Self {
            agent,
            sockets,
            promoted: None,
            target,
            gap: Duration::from_secs(1) / rate.max(1),
            sweep_start: now,
            index: 0,
            next_send: Some(now),
            sweeps_left: rounds,
            sent: 0,
            sweeps: 0,
        }
    }

    /// How many sockets are open (the promoted one included).
    pub(crate) fn open_sockets(&self) -> usize {
        self.sockets.len() + usize::from(self.promoted.is_some())
    }

    /// Whether `base` is one of this punch's sockets.
    pub(crate) fn owns(&self, base: SocketAddr) -> bool {
        self.promoted == Some(base) || self.sockets.iter().any(|s| s.base == base)
    }

    /// Sends due sweep probes (one per socket, `gap` apart; a sweep each round) and runs
    /// the agent's timers.
    pub(crate) fn handle_timeout(&mut self, now: Instant, round: Duration) {
        while let Some(t) = self.next_send
            && t <= now
        {
            if self.index == 0 {
                if self.sweeps_left == 0 {
                    self.next_send = None;
                    break;
                }
                self.sweeps_left -= 1;
                self.sweeps += 1;
                self.sweep_start = now;
            }
            if let Some(s) = self.sockets.get(self.index) {
                match self.agent.send_probe(now, s.base, self.target) {
                    Ok(()) => self.sent += 1,
                    Err(e) => tracing::trace!("birthday probe not sent: {e}"),
                }
            }
            self.index += 1;
            if self.index >= self.sockets.len() {
                self.index = 0;
                self.next_send = Some(self.sweep_start + round);
            } else {
                self.next_send = Some(t + self.gap);
            }
        }
        self.agent.handle_timeout(now);
    }

    /// When [`Punch::handle_timeout`] is due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        [self.next_send, self.agent.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Sends an agent transmit from an unpromoted socket; `false` if `from` is none of them.
    pub(crate) fn send(&self, t: &Transmit) -> bool {
        let Some(s) = self.sockets.iter().find(|s| s.base == t.from) else {
            return false;
        };
        if let Err(e) = s.socket.try_send_to(&t.contents, t.to) {
            tracing::debug!(to = %t.to, "birthday send failed: {e}");
        }
        true
    }

    /// Takes socket `base` out for promotion: a duplicate of its descriptor (its receive
    /// task ends, so from now on the transport endpoint reads it).
    pub(crate) fn take(&mut self, base: SocketAddr) -> Option<std::io::Result<UdpSocket>> {
        let i = self.sockets.iter().position(|s| s.base == base)?;
        let s = self.sockets.swap_remove(i);
        let dup = duplicate(&s.socket);
        if dup.is_ok() {
            self.promoted = Some(base);
        }
        drop(s);
        Some(dup)
    }

    /// Stops the sweeps and closes every socket but the promoted one.
    pub(crate) fn close_unused(&mut self) {
        self.sockets.clear();
        self.next_send = None;
    }
}
