//! The sockets of birthday probing's hard side (the logic is the core's,
//! `proto::birthday`): opened on request, each with a small task that passes the STUN it
//! receives on; the winner is promoted by duplicating its descriptor into a transport
//! endpoint (one certificate, for the winner only), which ends its task.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
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

impl PunchSocket {
    /// The socket's local address.
    pub(crate) fn base(&self) -> SocketAddr {
        self.base
    }

    /// Sends one datagram (best effort, as UDP).
    pub(crate) fn send(&self, bytes: &[u8], to: SocketAddr) {
        if let Err(e) = self.socket.try_send_to(bytes, to) {
            tracing::debug!(%to, "birthday send failed: {e}");
        }
    }

    /// A duplicate of the socket's descriptor (same port, same mappings) for a transport
    /// endpoint; this socket's receive task ends when it is dropped.
    pub(crate) fn duplicate(&self) -> std::io::Result<UdpSocket> {
        duplicate(&self.socket)
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
