//! After `in8 invite` / `in8 join` connect: one round trip on a data channel proves data
//! flows both ways, and its size is reported.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use in8_core::Connection;
use in8_transport::ChannelOptions;
use serde_json::json;

use crate::output::Output;

/// The channel label.
const LABEL: &str = "in8-ping";
/// Size of the probe message.
const PROBE: usize = 1024;
/// How long to wait for the echo or the probe.
const WAIT: Duration = Duration::from_secs(10);

/// Invitee: sends a probe and waits for its echo.
pub(crate) async fn probe(conn: &Connection, out: &Output) -> Result<()> {
    let start = Instant::now();
    let ch = conn.open_channel(ChannelOptions::reliable(LABEL)).await?;
    let payload: Vec<u8> = (0..PROBE).map(|i| (i % 251) as u8).collect();
    ch.send(payload.clone()).await?;
    let echo = tokio::time::timeout(WAIT, ch.recv())
        .await
        .map_err(|_| anyhow!("no echo from the peer within {} s", WAIT.as_secs()))??
        .ok_or_else(|| anyhow!("the peer closed the channel without answering"))?;
    if echo[..] != payload[..] {
        return Err(anyhow!("the echo differs from what was sent"));
    }
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    out.event(json!({"event": "exchanged", "bytes_sent": PROBE, "bytes_received": echo.len(), "round_trip_ms": ms}));
    out.note(format!("exchanged {PROBE} bytes each way in {ms:.1} ms"));
    ch.close().await.ok();
    Ok(())
}

/// Inviter: echoes the invitee's probe.
pub(crate) async fn answer(conn: &Connection, out: &Output) -> Result<()> {
    let ch = tokio::time::timeout(WAIT, conn.accept_channel())
        .await
        .map_err(|_| anyhow!("the invitee opened no channel within {} s", WAIT.as_secs()))??;
    if let Some(msg) = tokio::time::timeout(WAIT, ch.recv())
        .await
        .ok()
        .transpose()?
        .flatten()
    {
        let n = msg.len();
        ch.send(msg).await?;
        out.event(json!({"event": "exchanged", "bytes_sent": n, "bytes_received": n}));
        out.note(format!("echoed {n} bytes"));
    }
    // Wait for the invitee to close the channel (it has the echo then).
    let _ = tokio::time::timeout(WAIT, ch.recv()).await;
    Ok(())
}
