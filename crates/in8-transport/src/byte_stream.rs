//! Byte streams: a reliable ordered channel behind tokio's `AsyncRead` / `AsyncWrite`.
//!
//! Writes are cut into messages of at most [`PIECE`]` - 1` bytes (so they are plain
//! WebRTC messages) and wait on the channel's send buffer, so a slow reader holds the
//! writer back instead of growing memory. `poll_shutdown` sends an empty message, which a
//! byte stream never sends otherwise: the reader sees end of file after everything before
//! it. Closing the channel (stream reset) is left to [`ByteStream::close`] or drop.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::channel::{Channel, PIECE};
use crate::error::Result;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A reliable ordered data channel as a byte stream.
pub struct ByteStream {
    channel: Channel,
    read_buf: Bytes,
    read_fut: Option<BoxFuture<Result<Option<Bytes>>>>,
    eof: bool,
    write_fut: Option<(BoxFuture<Result<()>>, usize)>,
    shutdown_fut: Option<BoxFuture<Result<()>>>,
}

impl std::fmt::Debug for ByteStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByteStream")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl ByteStream {
    pub(crate) fn new(channel: Channel) -> Self {
        Self {
            channel,
            read_buf: Bytes::new(),
            read_fut: None,
            eof: false,
            write_fut: None,
            shutdown_fut: None,
        }
    }

    /// The underlying channel.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Waits until everything written was acknowledged, then closes the channel.
    pub async fn close(self) -> Result<()> {
        self.channel.close().await
    }
}

impl AsyncRead for ByteStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.read_buf.is_empty() {
                let n = self.read_buf.len().min(buf.remaining());
                buf.put_slice(&self.read_buf[..n]);
                self.read_buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            if self.eof {
                return Poll::Ready(Ok(()));
            }
            let fut = match self.read_fut.as_mut() {
                Some(f) => f,
                None => {
                    let ch = self.channel.clone();
                    self.read_fut
                        .insert(Box::pin(async move { ch.recv().await }))
                }
            };
            let r = ready!(fut.as_mut().poll(cx));
            self.read_fut = None;
            match r {
                // An empty message marks the end of the stream (see `poll_shutdown`).
                Ok(Some(m)) if m.is_empty() => self.eof = true,
                Ok(Some(m)) => self.read_buf = m,
                Ok(None) => self.eof = true,
                Err(e) => return Poll::Ready(Err(e.into())),
            }
        }
    }
}

impl AsyncWrite for ByteStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let (fut, n) = match self.write_fut.as_mut() {
            Some(f) => f,
            None => {
                let n = buf.len().min(PIECE - 1);
                let data = Bytes::copy_from_slice(&buf[..n]);
                let ch = self.channel.clone();
                self.write_fut
                    .insert((Box::pin(async move { ch.send(data).await }), n))
            }
        };
        let n = *n;
        let r = ready!(fut.as_mut().poll(cx));
        self.write_fut = None;
        Poll::Ready(r.map(|()| n).map_err(io::Error::from))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some((fut, _)) = self.write_fut.as_mut() {
            let r = ready!(fut.as_mut().poll(cx));
            self.write_fut = None;
            r?;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        let fut = match self.shutdown_fut.as_mut() {
            Some(f) => f,
            None => {
                let ch = self.channel.clone();
                self.shutdown_fut
                    .insert(Box::pin(async move { ch.send(Bytes::new()).await }))
            }
        };
        let r = ready!(fut.as_mut().poll(cx));
        Poll::Ready(r.map_err(io::Error::from))
    }
}
