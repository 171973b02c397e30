//! The endpoint: one UDP socket, its receive loop (the RFC 7983 demultiplexer) and the
//! interface through which the ICE layer sends and receives STUN and TURN channel data.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use in8_artifact::{Identity, Invitation, InviteId, NodeId};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use crate::cert::LocalCertificate;
use crate::config::Config;
use crate::demux::{PacketKind, classify};
use crate::error::{Error, Result};
use crate::path::{PathConn, Routes, Via, lock};

/// Largest datagram the receive loop reads (bigger ones are truncated by the kernel and
/// then fail DTLS / STUN parsing, i.e. are dropped). Covers the largest
/// [`Config::sctp_packet_size`] the DTLS and SCTP libraries accept (their receive buffers
/// are 8 KiB) plus DTLS overhead.
pub const MAX_DATAGRAM: usize = 9000;

/// A datagram for the ICE layer (STUN or TURN ChannelData), with its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IceDatagram {
    /// Where it came from.
    pub from: SocketAddr,
    /// [`PacketKind::Stun`] or [`PacketKind::TurnChannel`].
    pub kind: PacketKind,
    /// The whole datagram.
    pub data: Bytes,
}

/// Sends datagrams on the endpoint's socket (for the ICE layer: checks, responses,
/// consent, TURN). Cheap to clone.
#[derive(Clone, Debug)]
pub struct DatagramSender {
    socket: Arc<UdpSocket>,
}

impl DatagramSender {
    /// Sends one datagram to `to`.
    pub async fn send_to(&self, data: &[u8], to: SocketAddr) -> Result<()> {
        self.socket.send_to(data, to).await?;
        Ok(())
    }

    /// Sends without waiting; fails with `WouldBlock` when the socket buffer is full.
    pub fn try_send_to(&self, data: &[u8], to: SocketAddr) -> Result<()> {
        self.socket.try_send_to(data, to)?;
        Ok(())
    }
}

/// The ICE layer's side of the shared socket: every STUN and TURN channel datagram the
/// endpoint receives comes out of [`IceLink::recv`], for as long as the endpoint lives —
/// also after DTLS is up, so consent freshness (RFC 7675) keeps running. Whoever runs ICE
/// (in8-core with in8-ice) owns this; if it is dropped, such datagrams are discarded.
#[derive(Debug)]
pub struct IceLink {
    incoming: mpsc::Receiver<IceDatagram>,
    sender: DatagramSender,
}

impl IceLink {
    /// The next STUN / TURN channel datagram; `None` once the endpoint is closed.
    pub async fn recv(&mut self) -> Option<IceDatagram> {
        self.incoming.recv().await
    }

    /// A datagram if one is queued.
    pub fn try_recv(&mut self) -> Option<IceDatagram> {
        self.incoming.try_recv().ok()
    }

    /// The sending half (clone it for the ICE driver).
    pub fn sender(&self) -> DatagramSender {
        self.sender.clone()
    }
}

/// Counters of the receive loop.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) received: AtomicU64,
    pub(crate) to_ice: AtomicU64,
    pub(crate) to_dtls: AtomicU64,
    pub(crate) dropped_unknown: AtomicU64,
    pub(crate) dropped_unrouted: AtomicU64,
    pub(crate) dropped_full: AtomicU64,
}

/// A snapshot of [`Endpoint::stats`]. `+` adds two snapshots field by field (a node with
/// several sockets reports their sum).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Datagrams read from the socket.
    pub received: u64,
    /// Handed to the ICE layer.
    pub to_ice: u64,
    /// Handed to a DTLS session.
    pub to_dtls: u64,
    /// Dropped: first byte in no range in8 uses (RFC 7983 says drop).
    pub dropped_unknown: u64,
    /// Dropped: DTLS from an address with no session (no state for unknown senders).
    pub dropped_unrouted: u64,
    /// Dropped: a bounded queue was full.
    pub dropped_full: u64,
}

impl std::ops::Add for EndpointStats {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            received: self.received + o.received,
            to_ice: self.to_ice + o.to_ice,
            to_dtls: self.to_dtls + o.to_dtls,
            dropped_unknown: self.dropped_unknown + o.dropped_unknown,
            dropped_unrouted: self.dropped_unrouted + o.dropped_unrouted,
            dropped_full: self.dropped_full + o.dropped_full,
        }
    }
}

pub(crate) struct Shared {
    pub(crate) socket: Arc<UdpSocket>,
    pub(crate) local: SocketAddr,
    pub(crate) identity: Identity,
    pub(crate) cert: LocalCertificate,
    /// Join certificates by invitation, oldest first (at most `config.join_certificates`).
    join_certs: Mutex<VecDeque<(InviteId, LocalCertificate)>>,
    pub(crate) config: Config,
    pub(crate) routes: Routes,
    pub(crate) counters: Arc<Counters>,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    /// A receiver that turns `true` when the endpoint shuts down.
    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Claims `remote` for a new session.
    pub(crate) fn open_path(&self, remote: SocketAddr, via: Via) -> Result<Arc<PathConn>> {
        if *self.shutdown.borrow() {
            return Err(Error::Closed(crate::CloseReason::EndpointClosed));
        }
        if lock(&self.routes).contains_key(&remote) {
            return Err(Error::AlreadyConnected(remote));
        }
        Ok(PathConn::register(
            Arc::clone(&self.socket),
            via,
            self.local,
            remote,
            Arc::clone(&self.routes),
            self.config.path_queue,
        ))
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

/// One UDP socket shared by ICE (STUN), DTLS sessions and TURN channel data, plus this
/// node's identity and DTLS certificate. Cheap to clone; the socket closes when the
/// endpoint is closed or the last clone and session are gone.
#[derive(Clone)]
pub struct Endpoint {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("local", &self.shared.local)
            .field("node", &self.shared.identity.node_id())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Binds a UDP socket on `addr` and starts the receive loop.
    pub async fn bind(
        addr: SocketAddr,
        identity: Identity,
        config: Config,
    ) -> Result<(Self, IceLink)> {
        let socket = UdpSocket::bind(addr).await?;
        Self::from_socket(socket, identity, config)
    }

    /// Runs on an already bound socket (e.g. one ICE gathered candidates on).
    pub fn from_socket(
        socket: UdpSocket,
        identity: Identity,
        config: Config,
    ) -> Result<(Self, IceLink)> {
        let local = socket.local_addr()?;
        let socket = Arc::new(socket);
        let cert = LocalCertificate::generate(&identity)?;
        let (ice_tx, ice_rx) = mpsc::channel(config.ice_queue.max(1));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let routes = Routes::default();
        let counters = Arc::new(Counters::default());
        tokio::spawn(receive_loop(
            Arc::clone(&socket),
            Arc::clone(&routes),
            ice_tx,
            Arc::clone(&counters),
            shutdown_rx,
        ));
        let link = IceLink {
            incoming: ice_rx,
            sender: DatagramSender {
                socket: Arc::clone(&socket),
            },
        };
        let shared = Arc::new(Shared {
            socket,
            local,
            identity,
            cert,
            join_certs: Mutex::new(VecDeque::new()),
            config,
            routes,
            counters,
            shutdown,
        });
        Ok((Self { shared }, link))
    }

    /// The socket's local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.shared.identity.node_id()
    }

    /// This node's DTLS certificate (its fingerprint is what an invitation or RSVP pins).
    pub fn certificate(&self) -> &LocalCertificate {
        &self.shared.cert
    }

    /// The certificate this node presents when it joins through `invitation`: a fresh key
    /// and certificate carrying the join proof for it
    /// ([`LocalCertificate::generate_for_join`]), made on first use and reused for later
    /// attempts at the same invitation, so that an RSVP can pin its fingerprint for phase
    /// 2. The last [`Config::join_certificates`] are kept.
    pub fn join_certificate(&self, invitation: &Invitation) -> Result<LocalCertificate> {
        let id = invitation.invite_id();
        if let Some(cert) = self.cached_join_certificate(&id) {
            return Ok(cert);
        }
        let cert = LocalCertificate::generate_for_join(&self.shared.identity, invitation)?;
        let mut certs = self
            .shared
            .join_certs
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some((_, c)) = certs.iter().find(|(i, _)| *i == id) {
            // Another task made one meanwhile: keep the first, so both present the same.
            return Ok(c.clone());
        }
        while certs.len() >= self.shared.config.join_certificates.max(1) {
            certs.pop_front();
        }
        certs.push_back((id, cert.clone()));
        Ok(cert)
    }

    /// The join certificate already made for the invitation `id`, if any.
    pub(crate) fn cached_join_certificate(&self, id: &InviteId) -> Option<LocalCertificate> {
        self.shared
            .join_certs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, c)| c.clone())
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Receive-loop counters.
    pub fn stats(&self) -> EndpointStats {
        let c = &self.shared.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        EndpointStats {
            received: l(&c.received),
            to_ice: l(&c.to_ice),
            to_dtls: l(&c.to_dtls),
            dropped_unknown: l(&c.dropped_unknown),
            dropped_unrouted: l(&c.dropped_unrouted),
            dropped_full: l(&c.dropped_full),
        }
    }

    /// Feeds a datagram that arrived by another way than this endpoint's socket — the
    /// payload a TURN relay delivered from `from` (the peer's address as the path knows it)
    /// — through the RFC 7983 demultiplexer, as if `from` had sent it to the socket. Paths
    /// opened with [`Via::Relay`] receive their DTLS this way.
    pub fn inject(&self, data: &[u8], from: SocketAddr) {
        let s = &self.shared;
        let (tx, _rx) = mpsc::channel(1);
        match classify(data) {
            // STUN from a relay belongs to the caller's ICE agent, which already has it.
            PacketKind::Stun | PacketKind::TurnChannel => {}
            _ => route(data, from, &s.routes, &tx, &s.counters),
        }
    }

    /// Stops the receive loop: sessions on this endpoint end with
    /// [`crate::CloseReason::EndpointClosed`], the ICE link yields `None`, and the socket
    /// is released once the last session handle is dropped.
    pub fn close(&self) {
        self.shared.shutdown.send_replace(true);
    }
}

/// Routes one datagram; the pure part of the receive loop (also driven by the fuzz target
/// through [`route_datagram`]).
pub(crate) fn route(
    data: &[u8],
    from: SocketAddr,
    routes: &Routes,
    ice: &mpsc::Sender<IceDatagram>,
    counters: &Counters,
) {
    counters.received.fetch_add(1, Ordering::Relaxed);
    let kind = classify(data);
    let routes = lock(routes);
    if let Some(r) = routes.get(&from) {
        r.activity.touch();
    }
    match kind {
        // RFC 7983 §7: STUN and TURN Channel go to the ICE / TURN layer, which answers
        // checks, runs consent and unwraps channel data.
        PacketKind::Stun | PacketKind::TurnChannel => {
            let d = IceDatagram {
                from,
                kind,
                data: Bytes::copy_from_slice(data),
            };
            match ice.try_send(d) {
                Ok(()) => counters.to_ice.fetch_add(1, Ordering::Relaxed),
                Err(_) => counters.dropped_full.fetch_add(1, Ordering::Relaxed),
            }
        }
        PacketKind::Dtls => match routes.get(&from) {
            // No state is created for an unknown sender: DTLS from an address without a
            // session (ICE has not nominated it) is dropped; the peer retransmits.
            None => counters.dropped_unrouted.fetch_add(1, Ordering::Relaxed),
            Some(r) => match r.dtls.try_send(Bytes::copy_from_slice(data)) {
                Ok(()) => counters.to_dtls.fetch_add(1, Ordering::Relaxed),
                Err(_) => counters.dropped_full.fetch_add(1, Ordering::Relaxed),
            },
        },
        // RFC 7983 §7: "If the value does not match any known range, then the packet MUST
        // be dropped"; in8 carries neither ZRTP nor RTP, so those are dropped too.
        PacketKind::Zrtp | PacketKind::Rtp | PacketKind::Unknown => {
            counters.dropped_unknown.fetch_add(1, Ordering::Relaxed)
        }
    };
}

/// Feeds one datagram through the demultiplexer with no sessions registered and a
/// one-slot ICE queue; returns what it was classified as. For the fuzz target and tests.
pub fn route_datagram(data: &[u8], from: SocketAddr) -> PacketKind {
    let (tx, _rx) = mpsc::channel(1);
    let counters = Counters::default();
    route(data, from, &Routes::default(), &tx, &counters);
    classify(data)
}

async fn receive_loop(
    socket: Arc<UdpSocket>,
    routes: Routes,
    ice: mpsc::Sender<IceDatagram>,
    counters: Arc<Counters>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, from)) => route(&buf[..n], from, &routes, &ice, &counters),
                // ICMP errors (port unreachable) surface here on some systems; they are
                // not fatal for a shared socket.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset
                    || e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(e) => {
                    tracing::warn!("UDP receive failed, endpoint stops: {e}");
                    break;
                }
            },
            r = shutdown.changed() => {
                if r.is_err() || *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    // Dropping the route senders tells every session's DTLS reader that the path is gone.
    lock(&routes).clear();
}
