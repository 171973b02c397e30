//! One peer's view of the shared socket: the DTLS datagrams the demultiplexer routed to
//! this remote address come in through a bounded queue; outgoing datagrams go straight to
//! the socket. Implements `webrtc_util::Conn` so the DTLS library can run on it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc};

/// Last time anything (any packet kind) arrived from a remote address.
#[derive(Debug)]
pub(crate) struct Activity {
    epoch: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Self {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    pub(crate) fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Time since the last arrival.
    pub(crate) fn silent_for(&self) -> std::time::Duration {
        let now = self.epoch.elapsed().as_millis() as u64;
        std::time::Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// Where the receive loop routes one remote address's datagrams.
pub(crate) struct Route {
    pub(crate) dtls: mpsc::Sender<Bytes>,
    pub(crate) activity: Arc<Activity>,
}

/// remote address -> route. Shared by the endpoint and its receive loop.
pub(crate) type Routes = Arc<Mutex<HashMap<SocketAddr, Route>>>;

pub(crate) fn lock(routes: &Routes) -> MutexGuard<'_, HashMap<SocketAddr, Route>> {
    // Every update is a single insert or remove: a poisoned map is still consistent.
    routes.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where a path's outgoing datagrams go.
#[derive(Clone, Debug, Default)]
pub enum Via {
    /// Straight to the remote address from the endpoint's socket.
    #[default]
    Direct,
    /// Through a relay the caller runs (a TURN allocation): every outgoing datagram is handed
    /// to this bounded queue with its destination, and the caller wraps and sends it (TURN
    /// Send indication or ChannelData, RFC 8656 §11–12). Datagrams the relay delivers from the
    /// peer are fed back with [`crate::Endpoint::inject`].
    Relay(mpsc::Sender<(SocketAddr, Bytes)>),
}

/// The DTLS library's connection to one peer over the shared socket.
pub(crate) struct PathConn {
    socket: Arc<UdpSocket>,
    via: Via,
    local: SocketAddr,
    remote: SocketAddr,
    rx: tokio::sync::Mutex<mpsc::Receiver<Bytes>>,
    routes: Routes,
    closed: AtomicBool,
    close_notify: Notify,
    pub(crate) activity: Arc<Activity>,
}

impl PathConn {
    /// Registers `remote` in `routes` (caller checked it is free) and returns its conn.
    pub(crate) fn register(
        socket: Arc<UdpSocket>,
        via: Via,
        local: SocketAddr,
        remote: SocketAddr,
        routes: Routes,
        queue: usize,
    ) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let activity = Arc::new(Activity::new());
        activity.touch();
        lock(&routes).insert(
            remote,
            Route {
                dtls: tx,
                activity: Arc::clone(&activity),
            },
        );
        Arc::new(Self {
            socket,
            via,
            local,
            remote,
            rx: tokio::sync::Mutex::new(rx),
            routes,
            closed: AtomicBool::new(false),
            close_notify: Notify::new(),
            activity,
        })
    }

    /// Unregisters the route; later receives never complete, sends fail.
    pub(crate) fn shut(&self) {
        if !self.closed.swap(true, Ordering::SeqCst) {
            lock(&self.routes).remove(&self.remote);
            self.close_notify.notify_waiters();
        }
    }

    pub(crate) fn remote(&self) -> SocketAddr {
        self.remote
    }
}

impl Drop for PathConn {
    fn drop(&mut self) {
        self.shut();
    }
}

type UtilResult<T> = std::result::Result<T, webrtc_util::Error>;

#[async_trait::async_trait]
impl webrtc_util::Conn for PathConn {
    async fn connect(&self, _addr: SocketAddr) -> UtilResult<()> {
        Err(webrtc_util::Error::Other(
            "PathConn is already connected".into(),
        ))
    }

    async fn recv(&self, buf: &mut [u8]) -> UtilResult<usize> {
        let closed = self.close_notify.notified();
        tokio::pin!(closed);
        closed.as_mut().enable();
        if self.closed.load(Ordering::SeqCst) {
            // Never complete after close: the DTLS reader task waits for its own close
            // signal instead of spinning on errors.
            std::future::pending::<()>().await;
        }
        let mut rx = self.rx.lock().await;
        let datagram = tokio::select! {
            d = rx.recv() => d,
            _ = closed => None,
        };
        match datagram {
            Some(d) => {
                let n = d.len().min(buf.len());
                buf[..n].copy_from_slice(&d[..n]);
                Ok(n)
            }
            None => {
                drop(rx);
                std::future::pending::<()>().await;
                Ok(0)
            }
        }
    }

    async fn recv_from(&self, buf: &mut [u8]) -> UtilResult<(usize, SocketAddr)> {
        let n = self.recv(buf).await?;
        Ok((n, self.remote))
    }

    async fn send(&self, buf: &[u8]) -> UtilResult<usize> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(webrtc_util::Error::ErrUseClosedNetworkConn);
        }
        match &self.via {
            Via::Direct => Ok(self.socket.send_to(buf, self.remote).await?),
            Via::Relay(tx) => {
                tx.send((self.remote, Bytes::copy_from_slice(buf)))
                    .await
                    .map_err(|_| webrtc_util::Error::ErrUseClosedNetworkConn)?;
                Ok(buf.len())
            }
        }
    }

    async fn send_to(&self, buf: &[u8], _target: SocketAddr) -> UtilResult<usize> {
        self.send(buf).await
    }

    fn local_addr(&self) -> UtilResult<SocketAddr> {
        Ok(self.local)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        Some(self.remote)
    }

    async fn close(&self) -> UtilResult<()> {
        self.shut();
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}
