//! The per-session task: accepts the channels the peer opens, sends keepalives, watches
//! for the peer's silence or close and for abort requests, and tears everything down.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, mpsc};
use webrtc_sctp::association::Association;
use webrtc_sctp::chunk::chunk_payload_data::PayloadProtocolIdentifier as Ppid;
use webrtc_sctp::stream::Stream;

use std::collections::VecDeque;

use crate::channel::{Channel, ChannelOptions, PIECE};
use crate::dcep;
use crate::error::{CloseReason, Error, Result};
use crate::path::Activity;
use crate::secure::{DtlsRole, RECORD_BUF};
use crate::session::SessionCore;

pub(crate) struct Driver {
    pub(crate) core: Arc<SessionCore>,
    pub(crate) assoc: Arc<Association>,
    pub(crate) incoming: mpsc::Sender<Channel>,
    pub(crate) sent: Arc<Activity>,
    pub(crate) peer_closed: Arc<Notify>,
}

pub(crate) async fn run(d: Driver) {
    let config = d.core.config().clone();
    let mut state = d.core.watch();
    let mut shutdown = d.core.endpoint().shutdown_signal();
    let tick =
        (config.keepalive_interval.min(config.idle_timeout) / 2).max(Duration::from_millis(10));
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let reason = loop {
        tokio::select! {
            s = d.assoc.accept_stream() => match s {
                Some(stream) => {
                    tokio::spawn(accept_one(Arc::clone(&d.core), stream, d.incoming.clone()));
                }
                None => break CloseReason::PeerClosed,
            },
            _ = d.peer_closed.notified() => break CloseReason::PeerClosed,
            _ = ticker.tick() => {
                let silent = d.core.path().activity.silent_for();
                if silent >= config.idle_timeout {
                    break CloseReason::PeerGone { silent_for: silent };
                }
                if d.sent.silent_for() >= config.keepalive_interval {
                    // An empty application record: authenticated, ignored by the peer's
                    // SCTP side (see `RecordConn`), and it refreshes NAT bindings.
                    d.sent.touch();
                    let _ = d.core.dtls().write(&[], None).await;
                }
            }
            r = async { state.wait_for(|r| r.is_some()).await.ok().and_then(|r| r.clone()) } => {
                break r.unwrap_or(CloseReason::EndpointClosed);
            }
            _ = async { shutdown.wait_for(|v| *v).await.map(|_| ()) } => {
                break CloseReason::EndpointClosed;
            }
        }
    };
    d.core.end(reason);
    // Teardown: SCTP (its read / write loops end), then DTLS (close_notify; its reader and
    // writer tasks end), then the route in the endpoint's table.
    let _ = d.assoc.close().await;
    let _ = d.core.dtls().close().await;
    d.core.path().shut();
    d.core.mark_released();
}

/// Handles a stream the peer opened: RFC 8832 §6 (paraphrased): the stream's first message
/// is DATA_CHANNEL_OPEN; the receiver answers DATA_CHANNEL_ACK on the same stream and the
/// channel is open. Anything else resets the stream.
async fn accept_one(core: Arc<SessionCore>, stream: Arc<Stream>, incoming: mpsc::Sender<Channel>) {
    let config = core.config().clone();
    // The peer opens on the parity of its own DTLS role (see `SessionCore::allocate_id`).
    let peer_parity = match core.role() {
        DtlsRole::Client => 1,
        DtlsRole::Server => 0,
    };
    let reset = |stream: Arc<Stream>| async move {
        let _ = stream.shutdown(std::net::Shutdown::Both).await;
    };
    if stream.stream_identifier() % 2 != peer_parity {
        tracing::debug!(
            "peer opened stream {} with the wrong parity",
            stream.stream_identifier()
        );
        return reset(stream).await;
    }
    let options = match tokio::time::timeout(
        config.join_timeout,
        read_open(&stream, config.max_label_len),
    )
    .await
    {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => {
            tracing::debug!("refusing stream {}: {e}", stream.stream_identifier());
            return reset(stream).await;
        }
        Err(_) => return reset(stream).await,
    };
    if core.close_reason().is_some() {
        return reset(stream).await;
    }
    let ack = match dcep::Message::Ack.encode() {
        Ok(a) => Bytes::from(a),
        Err(_) => return reset(stream).await,
    };
    if stream.write_sctp(&ack, Ppid::Dcep).await.is_err() {
        return reset(stream).await;
    }
    let (options, early) = options;
    let Some(channel) = core.new_incoming(Arc::clone(&stream), options, early) else {
        tracing::debug!(
            "channel limit reached; refusing stream {}",
            stream.stream_identifier()
        );
        return reset(stream).await;
    };
    if incoming.try_send(channel).is_err() {
        // Accept queue full (or the session handle is gone): dropping the channel resets
        // the stream, which the opener sees as the channel closing.
        tracing::debug!(
            "accept queue full; refusing stream {}",
            stream.stream_identifier()
        );
    }
}

/// Most user messages buffered while waiting for a DATA_CHANNEL_OPEN that was overtaken.
const MAX_EARLY: usize = 64;

/// Reads the DATA_CHANNEL_OPEN of a stream the peer opened. On an unordered channel user
/// data may overtake it (the OPEN itself is always sent ordered); up to [`MAX_EARLY`] such
/// messages are kept and delivered first.
pub(crate) async fn read_open(
    stream: &Stream,
    max_label: usize,
) -> Result<(ChannelOptions, VecDeque<(Bytes, Ppid)>)> {
    let mut buf = vec![0u8; RECORD_BUF.max(PIECE)];
    let mut early = VecDeque::new();
    loop {
        let (n, ppid) = stream.read_sctp(&mut buf).await?;
        if n == 0 {
            return Err(Error::Malformed {
                what: "DCEP message",
                reason: "stream reset before DATA_CHANNEL_OPEN",
            });
        }
        if ppid != Ppid::Dcep {
            if early.len() >= MAX_EARLY {
                return Err(Error::Malformed {
                    what: "DCEP message",
                    reason: "too much data before DATA_CHANNEL_OPEN",
                });
            }
            early.push_back((Bytes::copy_from_slice(&buf[..n]), ppid));
            continue;
        }
        return match dcep::Message::decode(&buf[..n])? {
            dcep::Message::Open {
                unordered,
                reliability,
                priority,
                label,
                protocol,
            } => {
                if label.len() > max_label || protocol.len() > max_label {
                    return Err(Error::LabelTooLong {
                        what: "label",
                        len: label.len().max(protocol.len()),
                    });
                }
                Ok((
                    ChannelOptions {
                        label,
                        protocol,
                        unordered,
                        reliability,
                        priority,
                    },
                    early,
                ))
            }
            dcep::Message::Ack => Err(Error::Malformed {
                what: "DCEP message",
                reason: "DATA_CHANNEL_ACK on a stream nobody opened",
            }),
        };
    }
}
