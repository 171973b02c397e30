//! The DTLS connection as the SCTP library sees it (RFC 8261: one SCTP packet per DTLS
//! application record).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use dtls::conn::DTLSConn;
use tokio::sync::Notify;

use crate::path::Activity;

/// The DTLS connection as SCTP sees it: drops empty records (keepalives), notes sends for
/// the keepalive timer, and reports the peer's close.
pub(crate) struct RecordConn {
    pub(crate) dtls: Arc<DTLSConn>,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    pub(crate) sent: Arc<Activity>,
    pub(crate) peer_closed: Arc<Notify>,
    pub(crate) peer_closed_flag: AtomicBool,
    /// A record read before SCTP started (the invitee's first record when the verdict was
    /// lost and the inviter's INIT came first), handed to SCTP before anything else.
    pub(crate) pending: std::sync::Mutex<Option<Bytes>>,
}

type UtilResult<T> = std::result::Result<T, webrtc_util::Error>;

/// Whether an inbound SCTP packet ends the association: it carries ABORT (chunk type 6)
/// or SHUTDOWN COMPLETE (14), the last chunk of the peer's orderly shutdown (RFC 9260
/// §3.3: chunks follow the 12-byte common header, each with type, flags and a 16-bit
/// length, padded to 4 bytes). After it the SCTP library stops reading, so the peer's
/// DTLS close_notify would go unnoticed; the session ends as `PeerClosed` instead.
pub(crate) fn ends_association(packet: &[u8]) -> bool {
    let mut at = 12;
    while at + 4 <= packet.len() {
        let kind = packet[at];
        if kind == 6 || kind == 14 {
            return true;
        }
        let len = usize::from(u16::from_be_bytes([packet[at + 2], packet[at + 3]]));
        if len < 4 {
            return false;
        }
        at += len.div_ceil(4) * 4;
    }
    false
}

#[async_trait::async_trait]
impl webrtc_util::Conn for RecordConn {
    async fn connect(&self, _addr: SocketAddr) -> UtilResult<()> {
        Err(webrtc_util::Error::Other("already connected".into()))
    }

    async fn recv(&self, buf: &mut [u8]) -> UtilResult<usize> {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(first) = pending {
            let n = first.len().min(buf.len());
            buf[..n].copy_from_slice(&first[..n]);
            return Ok(n);
        }
        loop {
            match self.dtls.read(buf, None).await {
                Ok(0) => continue,
                Ok(n) => {
                    if ends_association(&buf[..n])
                        && !self.peer_closed_flag.swap(true, Ordering::SeqCst)
                    {
                        self.peer_closed.notify_one();
                    }
                    return Ok(n);
                }
                Err(e) => {
                    if !self.peer_closed_flag.swap(true, Ordering::SeqCst) {
                        self.peer_closed.notify_one();
                    }
                    return Err(webrtc_util::Error::Other(e.to_string()));
                }
            }
        }
    }

    async fn recv_from(&self, buf: &mut [u8]) -> UtilResult<(usize, SocketAddr)> {
        Ok((self.recv(buf).await?, self.remote))
    }

    async fn send(&self, buf: &[u8]) -> UtilResult<usize> {
        self.sent.touch();
        self.dtls
            .write(buf, None)
            .await
            .map_err(|e| webrtc_util::Error::Other(e.to_string()))
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
        // The session closes DTLS itself (after SCTP), see `teardown`.
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::ends_association;

    fn packet(chunks: &[(u8, &[u8])]) -> Vec<u8> {
        let mut p = vec![0x13, 0x88, 0x13, 0x88, 0, 0, 0, 1, 0, 0, 0, 0];
        for (kind, body) in chunks {
            let len = 4 + body.len();
            p.extend_from_slice(&[*kind, 0, (len >> 8) as u8, len as u8]);
            p.extend_from_slice(body);
            while p.len() % 4 != 0 {
                p.push(0);
            }
        }
        p
    }

    #[test]
    fn finds_abort_and_shutdown_complete_anywhere_in_the_packet() {
        assert!(ends_association(&packet(&[(6, &[])])));
        assert!(ends_association(&packet(&[(14, &[])])));
        // Bundled after a SACK (3) with an odd-length body (padding).
        assert!(ends_association(&packet(&[
            (3, &[1, 2, 3, 4, 5]),
            (14, &[])
        ])));
        // DATA (0), SACK, SHUTDOWN (7) and SHUTDOWN ACK (8) do not end it yet.
        assert!(!ends_association(&packet(&[
            (0, b"data"),
            (3, &[0; 12]),
            (7, &[0; 4]),
            (8, &[])
        ])));
        // Truncated or malformed input is not an end, and never panics.
        assert!(!ends_association(&[]));
        assert!(!ends_association(&packet(&[(0, &[])])[..13]));
        let mut zero_len = packet(&[(0, &[])]);
        zero_len[14] = 0;
        zero_len[15] = 0;
        assert!(!ends_association(&zero_len));
    }
}
