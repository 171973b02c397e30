//! Configuration, with every bound stated.

use std::sync::Arc;
use std::time::Duration;

use in8_artifact::Timestamp;

/// The clock the inviter uses to check expiry and to redeem in the ledger.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Transport configuration. Every queue and buffer below is bounded by one of these fields.
#[derive(Clone)]
pub struct Config {
    /// Datagrams queued per session between the socket reader and DTLS (default 256).
    /// Beyond it datagrams are dropped, as the network would.
    pub path_queue: usize,
    /// STUN / TURN-channel datagrams queued for the ICE layer (default 1024); beyond it
    /// they are dropped and counted.
    pub ice_queue: usize,
    /// DTLS handshake time limit (default 10 s).
    pub handshake_timeout: Duration,
    /// Time limit for the invitee to receive the inviter's verdict after the DTLS handshake,
    /// and for the SCTP association set-up (default 10 s).
    pub join_timeout: Duration,
    /// Whether the DTLS server answers the first ClientHello directly instead of with a
    /// HelloVerifyRequest cookie (default `true`: saves one round trip). The cookie proves
    /// that the client receives at its address; an endpoint only runs a DTLS server for a
    /// remote address its caller named, and in8-core starts the handshake only once ICE
    /// has validated that address (a check of its own answered from there; an incoming
    /// check alone does not count, its source can be forged). Set it to `false` if you
    /// accept sessions from addresses nothing has verified.
    pub skip_hello_verify: bool,
    /// First DTLS retransmission interval (default 500 ms; the library doubles it).
    pub flight_interval: Duration,
    /// DTLS handshake fragment size (default 1200 bytes, the WebRTC path-MTU assumption).
    pub mtu: usize,
    /// Largest SCTP packet sent, before DTLS / UDP / IP overhead (default 1191 bytes, which
    /// fits 1280-byte paths; 0 = the library default, the same). There is no path-MTU
    /// discovery: raise it only for paths known to carry more (loopback, a LAN), at most
    /// 8000 (the DTLS and SCTP libraries read 8 KiB records).
    pub sctp_packet_size: u32,
    /// SCTP receive window per session, in bytes (default 1 MiB). Bounds how much a slow
    /// reader lets the peer queue here.
    pub receive_window: u32,
    /// Send buffer per channel: [`crate::Channel::send`] waits while more than this many
    /// bytes are queued and unacknowledged (default 1 MiB); it resumes at half.
    pub send_buffer: usize,
    /// Largest message [`crate::Channel::send`] accepts on a reliable ordered channel and
    /// the receiver reassembles (default 16 MiB). Larger payloads belong in a byte stream.
    pub max_message_size: usize,
    /// Most channels open at once per session (default 1024).
    pub max_channels: usize,
    /// Incoming channels waiting for [`crate::Session::accept_channel`] (default 64);
    /// further opens are refused by resetting their stream.
    pub accept_queue: usize,
    /// Longest channel label or protocol accepted (default 1024 bytes each).
    pub max_label_len: usize,
    /// If nothing was sent for this long, send an empty DTLS record as keepalive
    /// (default 5 s).
    pub keepalive_interval: Duration,
    /// If nothing at all (DTLS, STUN consent, keepalive) arrives from the peer for this
    /// long, the session ends with [`crate::CloseReason::PeerGone`] (default 30 s).
    pub idle_timeout: Duration,
    /// Limit for an orderly close to flush queued data (default 5 s).
    pub close_timeout: Duration,
    /// Join certificates (a fresh key and certificate carrying the join proof, one per
    /// invitation) kept for reuse by [`crate::Endpoint::join_certificate`] (default 16;
    /// the oldest is dropped beyond it).
    pub join_certificates: usize,
    /// Clock for invitation expiry and ledger redemption (default: system time).
    pub clock: Clock,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("path_queue", &self.path_queue)
            .field("ice_queue", &self.ice_queue)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("join_timeout", &self.join_timeout)
            .field("receive_window", &self.receive_window)
            .field("send_buffer", &self.send_buffer)
            .field("max_message_size", &self.max_message_size)
            .field("max_channels", &self.max_channels)
            .field("keepalive_interval", &self.keepalive_interval)
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

/// The system clock as a [`Timestamp`].
pub fn system_clock() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Timestamp::from_unix(secs)
}

impl Default for Config {
    fn default() -> Self {
        Self {
            path_queue: 256,
            ice_queue: 1024,
            handshake_timeout: Duration::from_secs(10),
            join_timeout: Duration::from_secs(10),
            skip_hello_verify: true,
            flight_interval: Duration::from_millis(500),
            mtu: 1200,
            sctp_packet_size: 1191,
            receive_window: 1024 * 1024,
            send_buffer: 1024 * 1024,
            max_message_size: 16 * 1024 * 1024,
            max_channels: 1024,
            accept_queue: 64,
            max_label_len: 1024,
            keepalive_interval: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(5),
            join_certificates: 16,
            clock: Arc::new(system_clock),
        }
    }
}
