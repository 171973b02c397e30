//! Data channels: whole-message send / receive with backpressure, over one SCTP stream
//! opened with DCEP (RFC 8832).
//!
//! **Chunking.** An SCTP user message is at most [`PIECE`] bytes here. On a reliable
//! ordered channel a longer message is sent as consecutive pieces of exactly [`PIECE`]
//! bytes followed by a shorter last piece (or an empty message when the length is a
//! multiple of [`PIECE`]); the receiver joins them. Every piece uses the standard WebRTC
//! PPIDs (53 binary, 57 binary empty), so messages up to `PIECE - 1` bytes are plain
//! WebRTC messages. Unordered and partially reliable channels cannot reassemble (a piece
//! may be lost or overtaken), so they refuse messages of [`PIECE`] bytes or more.
//!
//! **Backpressure.** The SCTP library queues whatever it is given (its `Stream::write`
//! never waits). [`Channel::send`] therefore waits while the stream's `buffered_amount`
//! (queued + unacknowledged bytes) is above [`crate::Config::send_buffer`] and resumes
//! when the library reports it fell to half of that. The receive side is bounded by the
//! SCTP receive window ([`crate::Config::receive_window`]): a reader that stops reading
//! stops the sender.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use tokio::sync::Notify;
use webrtc_sctp::chunk::chunk_payload_data::PayloadProtocolIdentifier as Ppid;
use webrtc_sctp::stream::Stream;

use crate::dcep::{self, Reliability};
use crate::error::{Error, Result};
use crate::session::SessionCore;

/// Largest SCTP user message in8 sends; also the chunk size for longer messages.
pub const PIECE: usize = 64 * 1024;

/// How to open a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelOptions {
    /// The label the peer sees.
    pub label: String,
    /// Sub-protocol name (may be empty).
    pub protocol: String,
    /// Deliver messages as they arrive instead of in order.
    pub unordered: bool,
    /// Reliability.
    pub reliability: Reliability,
    /// DCEP priority (RFC 8832 §5.1); 256 is "normal".
    pub priority: u16,
}

impl ChannelOptions {
    /// A reliable, ordered channel (the default, like TCP but message-oriented).
    pub fn reliable(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            protocol: String::new(),
            unordered: false,
            reliability: Reliability::Reliable,
            priority: 256,
        }
    }

    /// Unordered delivery.
    pub fn unordered(mut self) -> Self {
        self.unordered = true;
        self
    }

    /// Abandon a message after `n` retransmissions.
    pub fn max_retransmits(mut self, n: u32) -> Self {
        self.reliability = Reliability::MaxRetransmits(n);
        self
    }

    /// Abandon a message once it is `ms` milliseconds old.
    pub fn max_lifetime_ms(mut self, ms: u32) -> Self {
        self.reliability = Reliability::MaxLifetimeMs(ms);
        self
    }

    /// Sets the sub-protocol.
    pub fn protocol(mut self, p: impl Into<String>) -> Self {
        self.protocol = p.into();
        self
    }

    /// Whether long messages can be chunked on this channel.
    pub(crate) fn chunkable(&self) -> bool {
        !self.unordered && self.reliability == Reliability::Reliable
    }

    pub(crate) fn open_message(&self) -> dcep::Message {
        dcep::Message::Open {
            unordered: self.unordered,
            reliability: self.reliability,
            priority: self.priority,
            label: self.label.clone(),
            protocol: self.protocol.clone(),
        }
    }
}

pub(crate) struct ChannelInner {
    pub(crate) stream: Arc<Stream>,
    pub(crate) options: ChannelOptions,
    pub(crate) session: Arc<SessionCore>,
    low: Arc<Notify>,
    send_lock: tokio::sync::Mutex<()>,
    recv: tokio::sync::Mutex<crate::receive::Inbox>,
    closed: AtomicBool,
}

/// A data channel: message-oriented, with backpressure. Clone it to send from one task and
/// receive in another. Dropping the last clone closes it.
#[derive(Clone)]
pub struct Channel {
    pub(crate) inner: Arc<ChannelInner>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("id", &self.inner.stream.stream_identifier())
            .field("label", &self.inner.options.label)
            .finish_non_exhaustive()
    }
}

fn sctp_reliability(r: Reliability) -> (webrtc_sctp::stream::ReliabilityType, u32) {
    use webrtc_sctp::stream::ReliabilityType as T;
    match r {
        Reliability::Reliable => (T::Reliable, 0),
        Reliability::MaxRetransmits(n) => (T::Rexmit, n),
        Reliability::MaxLifetimeMs(ms) => (T::Timed, ms),
    }
}

impl Channel {
    pub(crate) fn new(
        stream: Arc<Stream>,
        options: ChannelOptions,
        session: Arc<SessionCore>,
    ) -> Self {
        Self::with_early(stream, options, session, Default::default())
    }

    pub(crate) fn with_early(
        stream: Arc<Stream>,
        options: ChannelOptions,
        session: Arc<SessionCore>,
        early: std::collections::VecDeque<(Bytes, Ppid)>,
    ) -> Self {
        let inbox = crate::receive::start(
            Arc::clone(&stream),
            options.chunkable(),
            Arc::clone(&session),
            early,
        );
        let (kind, value) = sctp_reliability(options.reliability);
        stream.set_reliability_params(options.unordered, kind, value);
        let low = Arc::new(Notify::new());
        stream.set_buffered_amount_low_threshold(session.config().send_buffer / 2);
        let notify = Arc::clone(&low);
        stream.on_buffered_amount_low(Box::new(move || {
            let notify = Arc::clone(&notify);
            Box::pin(async move { notify.notify_waiters() })
        }));
        Self {
            inner: Arc::new(ChannelInner {
                stream,
                options,
                session,
                low,
                send_lock: tokio::sync::Mutex::new(()),
                recv: tokio::sync::Mutex::new(inbox),
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// The label.
    pub fn label(&self) -> &str {
        &self.inner.options.label
    }

    /// The sub-protocol.
    pub fn protocol(&self) -> &str {
        &self.inner.options.protocol
    }

    /// The options it was opened with.
    pub fn options(&self) -> &ChannelOptions {
        &self.inner.options
    }

    /// The SCTP stream identifier.
    pub fn stream_id(&self) -> u16 {
        self.inner.stream.stream_identifier()
    }

    /// Bytes queued and not yet acknowledged by the peer.
    pub fn buffered_amount(&self) -> usize {
        self.inner.stream.buffered_amount()
    }

    /// Largest message [`Channel::send`] accepts on this channel.
    pub fn max_message_size(&self) -> usize {
        if self.inner.options.chunkable() {
            self.inner.session.config().max_message_size
        } else {
            PIECE - 1
        }
    }

    fn closed_error(&self) -> Error {
        match self.inner.session.close_reason() {
            Some(r) => Error::Closed(r),
            None => Error::ChannelClosed {
                label: self.inner.options.label.clone(),
            },
        }
    }

    /// Waits until the send buffer is below the high-water mark.
    async fn wait_writable(&self) -> Result<()> {
        let high = self.inner.session.config().send_buffer;
        loop {
            let notified = self.inner.low.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.inner.closed.load(Ordering::SeqCst)
                || self.inner.session.close_reason().is_some()
            {
                return Err(self.closed_error());
            }
            if self.inner.stream.buffered_amount() <= high {
                return Ok(());
            }
            let mut closed = self.inner.session.watch();
            tokio::select! {
                _ = notified => {}
                _ = closed.wait_for(|r| r.is_some()) => {}
            }
        }
    }

    async fn write_piece(&self, piece: Bytes) -> Result<()> {
        self.wait_writable().await?;
        let (data, ppid) = if piece.is_empty() {
            // An SCTP message cannot be empty: WebRTC sends one zero byte with the
            // "Binary Empty" PPID (RFC 8831 §6.6).
            (Bytes::from_static(&[0]), Ppid::BinaryEmpty)
        } else {
            (piece, Ppid::Binary)
        };
        self.inner
            .stream
            .write_sctp(&data, ppid)
            .await
            .map_err(|e| match e {
                webrtc_sctp::Error::ErrStreamClosed => self.closed_error(),
                other => Error::from(other),
            })?;
        Ok(())
    }

    /// Sends one message. Waits while the channel's send buffer is full (backpressure).
    /// Long messages are chunked on reliable ordered channels (see the module docs).
    pub async fn send(&self, message: impl Into<Bytes>) -> Result<()> {
        let message: Bytes = message.into();
        let limit = self.max_message_size();
        if message.len() > limit {
            return Err(Error::MessageTooLarge {
                size: message.len(),
                limit,
            });
        }
        let _guard = self.inner.send_lock.lock().await;
        if message.len() < PIECE {
            return self.write_piece(message).await;
        }
        let mut rest = message;
        while rest.len() >= PIECE {
            let piece = rest.split_to(PIECE);
            self.write_piece(piece).await?;
        }
        // The terminator: the short remainder, or an empty message.
        self.write_piece(rest).await
    }

    /// Receives the next whole message. `Ok(None)` once the channel was closed in order
    /// (by either side); `Err(Error::Closed(reason))` when the session ended abruptly.
    pub async fn recv(&self) -> Result<Option<Bytes>> {
        let item = self.inner.recv.lock().await.next().await;
        if !matches!(item, Ok(Some(_))) {
            self.inner.closed.store(true, Ordering::SeqCst);
        }
        item
    }

    /// Closes the channel in order: waits (up to [`crate::Config::close_timeout`]) until
    /// everything sent was acknowledged, then resets the stream (RFC 8831 §6.7: "Closing
    /// of a data channel MUST be signaled by resetting the corresponding outgoing
    /// streams").
    pub async fn close(&self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.inner.session.config().close_timeout;
        self.flush_until(deadline).await;
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.low.notify_waiters();
        self.inner.session.forget_channel(self.stream_id());
        self.inner
            .stream
            .shutdown(std::net::Shutdown::Both)
            .await
            .map_err(Error::from)
    }

    /// Waits until the peer acknowledged everything sent on this channel, or `deadline`.
    pub(crate) async fn flush_until(&self, deadline: tokio::time::Instant) {
        while self.inner.stream.buffered_amount() > 0
            && tokio::time::Instant::now() < deadline
            && self.inner.session.close_reason().is_none()
        {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Turns the channel into a byte stream (tokio `AsyncRead` / `AsyncWrite`).
    pub fn into_stream(self) -> crate::ByteStream {
        crate::ByteStream::new(self)
    }
}

impl Drop for ChannelInner {
    fn drop(&mut self) {
        self.session.forget_channel(self.stream.stream_identifier());
        if !self.closed.swap(true, Ordering::SeqCst)
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let stream = Arc::clone(&self.stream);
            rt.spawn(async move {
                let _ = stream.shutdown(std::net::Shutdown::Both).await;
            });
        }
    }
}
