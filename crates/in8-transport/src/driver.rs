//! The per-session task: accepts the channels the peer opens, sends keepalives, watches
//! for the peer's silence or close and for abort requests, and tears everything down.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, mpsc};
use webrtc_sctp::association::Association;
use webrtc_sctp::chunk::chunk_payload_data::PayloadProtocolIdentifier as Ppid;
use webrtc_sctp::stream::Stream;

use crate::channel::Channel;
use crate::dcep;
use crate::error::CloseReason;
use crate::path::Activity;
use crate::secure::DtlsRole;
use crate::session::{SessionCore, read_open};

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
