//! A session: SCTP over DTLS (RFC 8261) on one path, carrying data channels.
//!
//! RFC 8261 (abstract): "This document specifies how SCTP can be used on top of the
//! Datagram Transport Layer Security (DTLS) protocol. Using the encapsulation method
//! described in this document, SCTP is unaware of the protocols being used below DTLS;
//! hence, explicit IP addresses cannot be used in the SCTP control chunks. As a
//! consequence, the SCTP associations carried over DTLS can only be single-homed."
//! Each SCTP packet is one DTLS application record; the association is set up only after
//! the DTLS handshake (and, for an invitation, the join proof) succeeded. The DTLS server
//! is the SCTP client (see [`SecureConn::into_session`]).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use dtls::conn::DTLSConn;
use in8_artifact::NodeId;
use tokio::sync::{Notify, mpsc, watch};
use webrtc_sctp::association::{Association, Config as SctpConfig};
use webrtc_sctp::chunk::chunk_payload_data::PayloadProtocolIdentifier as Ppid;
use webrtc_sctp::stream::Stream;

use crate::cert::PeerCertInfo;
use crate::channel::{Channel, ChannelInner, ChannelOptions, PIECE};
use crate::config::Config;
use crate::endpoint::Shared;
use crate::error::{CloseReason, Error, Result};
use crate::path::{Activity, PathConn};
use crate::record::RecordConn;
use crate::secure::{DtlsRole, SecureConn};

/// The SCTP port both sides use (RFC 8841's default for WebRTC data channels).
const SCTP_PORT: u16 = 5000;

/// State shared by a session's handle, its channels and its driver task.
pub(crate) struct SessionCore {
    endpoint: Arc<Shared>,
    dtls: Arc<DTLSConn>,
    path: Arc<PathConn>,
    role: DtlsRole,
    peer: Option<NodeId>,
    peer_cert: PeerCertInfo,
    binding: [u8; 32],
    state: watch::Sender<Option<CloseReason>>,
    /// Turns true once the driver has torn everything down.
    released: watch::Sender<bool>,
    channels: Mutex<HashMap<u16, Weak<ChannelInner>>>,
    next_id: Mutex<u16>,
}

impl SessionCore {
    pub(crate) fn config(&self) -> &Config {
        &self.endpoint.config
    }

    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        self.state.borrow().clone()
    }

    pub(crate) fn watch(&self) -> watch::Receiver<Option<CloseReason>> {
        self.state.subscribe()
    }

    /// Records why the session ended (the first reason wins).
    pub(crate) fn end(&self, reason: CloseReason) {
        self.state.send_if_modified(|s| {
            if s.is_none() {
                *s = Some(reason);
                true
            } else {
                false
            }
        });
    }

    fn channels(&self) -> std::sync::MutexGuard<'_, HashMap<u16, Weak<ChannelInner>>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn forget_channel(&self, id: u16) {
        self.channels().remove(&id);
    }

    fn live_channels(&self) -> Vec<Channel> {
        self.channels()
            .values()
            .filter_map(Weak::upgrade)
            .map(|inner| Channel { inner })
            .collect()
    }

    /// RFC 8832 §6: "To avoid glare in opening data channels, each side MUST use either
    /// even or odd Stream Identifiers when sending a DATA_CHANNEL_OPEN message. When using
    /// SCTP over DTLS [RFC8261], the method used to determine which side uses odd or even
    /// is based on the underlying DTLS connection role: the side acting as the DTLS client
    /// MUST use Stream Identifiers with even numbers; the side acting as the DTLS server
    /// MUST use Stream Identifiers with odd numbers."
    fn allocate_id(&self) -> Result<u16> {
        let limit = self.config().max_channels;
        let channels = self.channels();
        if channels.len() >= limit {
            return Err(Error::TooManyChannels { limit });
        }
        let mut next = self.next_id.lock().unwrap_or_else(|p| p.into_inner());
        for _ in 0..u16::MAX / 2 {
            let id = *next;
            *next = if id >= u16::MAX - 2 { id % 2 } else { id + 2 };
            if !channels.contains_key(&id) {
                return Ok(id);
            }
        }
        Err(Error::TooManyChannels { limit })
    }

    fn register(&self, channel: &Channel) {
        self.channels()
            .insert(channel.stream_id(), Arc::downgrade(&channel.inner));
    }
}

/// An established, authenticated session with one peer. Cheap to clone.
#[derive(Clone)]
pub struct Session {
    core: Arc<SessionCore>,
    assoc: Arc<Association>,
    incoming: Arc<tokio::sync::Mutex<mpsc::Receiver<Channel>>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("remote", &self.remote_addr())
            .field("peer", &self.core.peer)
            .finish_non_exhaustive()
    }
}

impl SecureConn {
    /// Starts SCTP over this DTLS connection (RFC 8261) and returns the session. `peer` is
    /// the authenticated peer id the session reports. Both sides must call it.
    ///
    /// The DTLS server is the SCTP client: its handshake ends half a round trip before the
    /// client's (its Finished is the last flight), so its INIT travels right behind that
    /// flight and the DTLS client's association is up one round trip after its own
    /// handshake, instead of two.
    pub async fn into_session(self, peer: Option<NodeId>) -> Result<Session> {
        self.into_session_with(peer, None).await
    }

    /// [`SecureConn::into_session`], handing SCTP a `first` record that was already read.
    pub(crate) async fn into_session_with(
        self,
        peer: Option<NodeId>,
        first: Option<Bytes>,
    ) -> Result<Session> {
        let remote = self.path.remote();
        let config = &self.endpoint.config;
        let sent = Arc::new(Activity::new());
        sent.touch();
        let peer_closed = Arc::new(Notify::new());
        let record_conn = Arc::new(RecordConn {
            dtls: Arc::clone(&self.dtls),
            local: self.endpoint.local,
            remote,
            sent: Arc::clone(&sent),
            peer_closed: Arc::clone(&peer_closed),
            peer_closed_flag: AtomicBool::new(false),
            pending: std::sync::Mutex::new(first),
        });
        let sctp = SctpConfig {
            net_conn: record_conn as _,
            max_receive_buffer_size: config.receive_window,
            max_message_size: PIECE as u32,
            mtu: config.sctp_packet_size,
            name: format!("in8-{remote}"),
            remote_port: SCTP_PORT,
            local_port: SCTP_PORT,
        };
        let limit = config.join_timeout;
        let setup = async {
            match self.role {
                DtlsRole::Server => tokio::time::timeout(limit, Association::client(sctp)).await,
                DtlsRole::Client => tokio::time::timeout(limit, Association::server(sctp)).await,
            }
        };
        // If the peer closes DTLS meanwhile (e.g. it refused us), fail now rather than
        // after the time limit.
        let started = tokio::select! {
            r = setup => r,
            _ = peer_closed.notified() => {
                self.close().await;
                return Err(Error::Closed(CloseReason::PeerClosed));
            }
        };
        let assoc = match started {
            Ok(Ok(a)) => Arc::new(a),
            Ok(Err(e)) => {
                self.close().await;
                return Err(Error::Sctp(format!("association set-up failed: {e}")));
            }
            Err(_) => {
                self.close().await;
                return Err(Error::Timeout {
                    stage: "SCTP association set-up",
                    remote,
                    after: limit,
                });
            }
        };
        let (state, _) = watch::channel(None);
        let core = Arc::new(SessionCore {
            endpoint: Arc::clone(&self.endpoint),
            dtls: Arc::clone(&self.dtls),
            path: Arc::clone(&self.path),
            role: self.role,
            peer,
            peer_cert: self.peer_cert.clone(),
            binding: self.binding,
            state,
            released: watch::channel(false).0,
            channels: Mutex::new(HashMap::new()),
            next_id: Mutex::new(match self.role {
                DtlsRole::Client => 0,
                DtlsRole::Server => 1,
            }),
        });
        let (incoming_tx, incoming_rx) = mpsc::channel(config.accept_queue.max(1));
        tokio::spawn(crate::driver::run(crate::driver::Driver {
            core: Arc::clone(&core),
            assoc: Arc::clone(&assoc),
            incoming: incoming_tx,
            sent,
            peer_closed,
        }));
        Ok(Session {
            core,
            assoc,
            incoming: Arc::new(tokio::sync::Mutex::new(incoming_rx)),
        })
    }
}

impl Session {
    /// The authenticated peer id (from the certificate binding, the invitation, or the
    /// join proof), if known.
    pub fn peer(&self) -> Option<NodeId> {
        self.core.peer
    }

    /// SHA-256 fingerprint of the peer's DTLS certificate.
    pub fn peer_fingerprint(&self) -> Option<[u8; 32]> {
        self.core.peer_cert.fingerprint
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.core.path.remote()
    }

    /// This side's DTLS role.
    pub fn role(&self) -> DtlsRole {
        self.core.role
    }

    /// The session's channel binding (see [`SecureConn::channel_binding`]).
    pub fn channel_binding(&self) -> [u8; 32] {
        self.core.binding
    }

    /// Why the session ended, or `None` while it is open.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.core.close_reason()
    }

    /// Waits until the session has ended and released its resources (the remote address
    /// can be used for a new session right after), and says why it ended.
    pub async fn closed(&self) -> CloseReason {
        let mut w = self.core.watch();
        let reason = match w.wait_for(|r| r.is_some()).await {
            Ok(r) => r.clone().unwrap_or(CloseReason::EndpointClosed),
            Err(_) => CloseReason::EndpointClosed,
        };
        self.core.path_released().await;
        reason
    }

    fn check_open(&self) -> Result<()> {
        match self.core.close_reason() {
            Some(r) => Err(Error::Closed(r)),
            None => Ok(()),
        }
    }

    /// Opens a data channel: sends DATA_CHANNEL_OPEN on a fresh stream. RFC 8832 §6 lets
    /// the opener send data before the DATA_CHANNEL_ACK arrives, so this returns at once.
    pub async fn open_channel(&self, options: ChannelOptions) -> Result<Channel> {
        self.check_open()?;
        let max = self.core.config().max_label_len;
        for (what, s) in [("label", &options.label), ("protocol", &options.protocol)] {
            if s.len() > max {
                return Err(Error::LabelTooLong { what, len: s.len() });
            }
        }
        let open = options.open_message().encode()?;
        let id = self.core.allocate_id()?;
        let stream: Arc<Stream> = self.assoc.open_stream(id, Ppid::Binary).await?;
        let channel = Channel::new(Arc::clone(&stream), options, Arc::clone(&self.core));
        self.core.register(&channel);
        // RFC 8832 §6: "The DATA_CHANNEL_OPEN message [...] MUST be sent using ordered
        // delivery and reliable transmission"; the library sends PPID 50 ordered.
        stream
            .write_sctp(&Bytes::from(open), Ppid::Dcep)
            .await
            .map_err(Error::from)?;
        Ok(channel)
    }

    /// Opens a reliable ordered channel and returns it as a byte stream.
    pub async fn open_stream(&self, label: impl Into<String>) -> Result<crate::ByteStream> {
        Ok(self
            .open_channel(ChannelOptions::reliable(label))
            .await?
            .into_stream())
    }

    /// The next channel the peer opened. Fails with [`Error::Closed`] once the session ended.
    pub async fn accept_channel(&self) -> Result<Channel> {
        let mut rx = self.incoming.lock().await;
        match rx.recv().await {
            Some(c) => Ok(c),
            None => Err(Error::Closed(
                self.core
                    .close_reason()
                    .unwrap_or(CloseReason::EndpointClosed),
            )),
        }
    }

    /// Ends the session abruptly with `reason` (e.g. [`CloseReason::ConsentLost`] from
    /// the ICE layer). Channels fail with [`Error::Closed`].
    pub fn abort(&self, reason: CloseReason) {
        self.core.end(reason);
    }

    /// Closes in order: waits (up to [`Config::close_timeout`]) until every channel's data
    /// was acknowledged, shuts SCTP down, sends DTLS close_notify, releases the path.
    pub async fn close(&self) -> Result<()> {
        if self.core.close_reason().is_some() {
            self.core.path_released().await;
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + self.core.config().close_timeout;
        for c in self.core.live_channels() {
            c.flush_until(deadline).await;
        }
        let _ = tokio::time::timeout_at(deadline, self.assoc.shutdown()).await;
        self.core.end(CloseReason::LocalClose);
        // The driver tears everything down; wait for it so the caller sees a released path.
        self.core.path_released().await;
        Ok(())
    }
}

impl SessionCore {
    pub(crate) fn dtls(&self) -> &Arc<DTLSConn> {
        &self.dtls
    }

    pub(crate) fn path(&self) -> &Arc<PathConn> {
        &self.path
    }

    pub(crate) fn endpoint(&self) -> &Arc<Shared> {
        &self.endpoint
    }

    pub(crate) fn role(&self) -> DtlsRole {
        self.role
    }

    /// Waits until the driver released the path.
    /// Waits until the driver finished tearing down (SCTP and DTLS closed, route removed).
    pub(crate) async fn path_released(&self) {
        let mut w = self.released.subscribe();
        let _ = w.wait_for(|r| *r).await;
    }

    /// Called by the driver once teardown is complete.
    pub(crate) fn mark_released(&self) {
        self.released.send_replace(true);
    }

    /// Wraps a stream the peer opened; `None` when [`Config::max_channels`] are open.
    pub(crate) fn new_incoming(
        self: &Arc<Self>,
        stream: Arc<Stream>,
        options: ChannelOptions,
        early: VecDeque<(Bytes, Ppid)>,
    ) -> Option<Channel> {
        if self.channels().len() >= self.config().max_channels {
            return None;
        }
        let c = Channel::with_early(stream, options, Arc::clone(self), early);
        self.register(&c);
        Some(c)
    }
}
