//! The receive pump: one task per channel moves whole messages out of the SCTP stream
//! into a queue bounded in bytes, as soon as they are complete.
//!
//! Why: the SCTP library discards messages that are still in its reassembly queue when the
//! stream is reset or the association shut down (its read returns "closed" first). The
//! peer resets a channel, or shuts the association down, only after our SCTP layer
//! acknowledged the data, and we acknowledge only after handling the packet, which wakes
//! this pump; so moving messages out promptly keeps an orderly close lossless. The queue
//! is bounded by [`crate::Config::receive_window`] bytes, so a slow reader still stops the
//! sender through the SCTP window.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::{Semaphore, mpsc};
use webrtc_sctp::chunk::chunk_payload_data::PayloadProtocolIdentifier as Ppid;
use webrtc_sctp::stream::Stream;

use crate::channel::PIECE;
use crate::dcep;
use crate::error::{CloseReason, Error, Result};
use crate::session::SessionCore;

/// One item of the receive queue.
pub(crate) type Item = Result<Option<Bytes>>;

/// The queue's receiving end plus its byte budget.
pub(crate) struct Inbox {
    pub(crate) rx: mpsc::Receiver<(Item, u32)>,
    pub(crate) budget: Arc<Semaphore>,
    pub(crate) done: bool,
}

impl Inbox {
    /// The next message; `Ok(None)` after an orderly end.
    pub(crate) async fn next(&mut self) -> Item {
        if self.done {
            return Ok(None);
        }
        match self.rx.recv().await {
            Some((item, permits)) => {
                self.budget.add_permits(permits as usize);
                if !matches!(item, Ok(Some(_))) {
                    self.done = true;
                }
                item
            }
            None => {
                self.done = true;
                Ok(None)
            }
        }
    }
}

/// Starts the pump for `stream`; returns the inbox the channel reads from.
pub(crate) fn start(
    stream: Arc<Stream>,
    chunkable: bool,
    session: Arc<SessionCore>,
    early: VecDeque<(Bytes, Ppid)>,
) -> Inbox {
    let window = session.config().receive_window.max(PIECE as u32 + 1);
    let budget = Arc::new(Semaphore::new(window as usize));
    // Each message holds at least one permit, so the item count is bounded by the budget;
    // the channel capacity only needs to exceed what the budget admits in small messages.
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(pump(
        stream,
        chunkable,
        session,
        early,
        tx,
        Arc::clone(&budget),
        window,
    ));
    Inbox {
        rx,
        budget,
        done: false,
    }
}

async fn pump(
    stream: Arc<Stream>,
    chunkable: bool,
    session: Arc<SessionCore>,
    mut early: VecDeque<(Bytes, Ppid)>,
    tx: mpsc::Sender<(Item, u32)>,
    budget: Arc<Semaphore>,
    window: u32,
) {
    let mut buf = vec![0u8; PIECE];
    let mut partial = BytesMut::new();
    loop {
        let message = next_message(
            &stream,
            chunkable,
            &session,
            &mut early,
            &mut buf,
            &mut partial,
        )
        .await;
        let (item, permits) = match message {
            Ok(Some(m)) => {
                let permits = (m.len() as u32).clamp(1, window);
                let got = tokio::select! {
                    p = budget.acquire_many(permits) => p.ok(),
                    _ = tx.closed() => None,
                };
                match got {
                    Some(p) => p.forget(),
                    None => break,
                }
                (Ok(Some(m)), permits)
            }
            other => (other, 0),
        };
        let last = !matches!(item, Ok(Some(_)));
        if tx.send((item, permits)).await.is_err() || last {
            break;
        }
    }
}

/// Reads one whole message (joining the pieces of a chunked one, see `crate::channel`).
async fn next_message(
    stream: &Stream,
    chunkable: bool,
    session: &SessionCore,
    early: &mut VecDeque<(Bytes, Ppid)>,
    buf: &mut [u8],
    partial: &mut BytesMut,
) -> Item {
    loop {
        let early_msg = early.pop_front();
        let (data, ppid): (&[u8], Ppid) = match &early_msg {
            Some((b, p)) => (&b[..], *p),
            None => {
                let (n, ppid) = match stream.read_sctp(buf).await {
                    Ok(r) => r,
                    Err(webrtc_sctp::Error::ErrShortBuffer { .. }) => {
                        return Err(Error::MessageTooLarge {
                            size: PIECE + 1,
                            limit: PIECE,
                        });
                    }
                    Err(e) => return Err(e.into()),
                };
                if n == 0 {
                    // Stream reset by the peer, or the association went away.
                    return match session.close_reason() {
                        Some(CloseReason::LocalClose | CloseReason::PeerClosed) | None => Ok(None),
                        Some(r) => Err(Error::Closed(r)),
                    };
                }
                (&buf[..n], ppid)
            }
        };
        match ppid {
            Ppid::Dcep => {
                // DATA_CHANNEL_ACK for our open (or a stray OPEN): not user data.
                if let Ok(dcep::Message::Open { .. }) = dcep::Message::decode(data) {
                    tracing::debug!("ignoring a second DATA_CHANNEL_OPEN on an open stream");
                }
                continue;
            }
            // An empty message, or the terminator of a chunked one.
            Ppid::BinaryEmpty | Ppid::StringEmpty => return Ok(Some(partial.split().freeze())),
            _ => {}
        }
        let n = data.len();
        if chunkable && n == PIECE {
            let limit = session.config().max_message_size;
            if partial.len() + n > limit {
                let size = partial.len() + n;
                partial.clear();
                return Err(Error::MessageTooLarge { size, limit });
            }
            partial.extend_from_slice(data);
            continue;
        }
        if partial.is_empty() {
            return Ok(Some(Bytes::copy_from_slice(data)));
        }
        partial.extend_from_slice(data);
        return Ok(Some(partial.split().freeze()));
    }
}
