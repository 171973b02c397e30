//! # in8-transport
//!
//! The secure transport between two in8 peers once ICE has a path: one UDP socket shared
//! by STUN, DTLS and TURN channel data (demultiplexed by the first byte, RFC 7983); DTLS
//! 1.2 with ECDHE suites only (forward secrecy) and self-signed ECDSA P-256 certificates
//! authenticated by the invitation (the identity binding extension or a pinned
//! fingerprint); the **join proof** that lets an inviter accept an invitee it has never
//! seen; SCTP over DTLS (RFC 8261) with WebRTC data channels (DCEP, RFC 8832) — reliable,
//! unordered and partially reliable, message channels and byte streams, with
//! backpressure everywhere.
//!
//! The DTLS and SCTP libraries (`dtls`, `webrtc-sctp`) stay behind this crate's own types
//! ([`Endpoint`], [`SecureConn`], [`Session`], [`Channel`], [`ByteStream`], [`Error`]), so
//! the layer can be swapped (e.g. for a sans-IO stack) without touching callers.
//!
//! ```no_run
//! # async fn demo(invitation: in8_artifact::Invitation, alice_addr: std::net::SocketAddr)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! use in8_transport::{ChannelOptions, Config, Endpoint};
//! use tokio::io::AsyncWriteExt;
//!
//! let bob = in8_artifact::Identity::from_seed(&[7; 32]);
//! let (endpoint, _ice) = Endpoint::bind("0.0.0.0:0".parse()?, bob, Config::default()).await?;
//! // (in8-core runs ICE over `_ice` and calls `join` with the nominated pair.)
//! let session = endpoint.join(alice_addr, &invitation).await?;
//! let chat = session.open_channel(ChannelOptions::reliable("chat")).await?;
//! chat.send(&b"hello"[..]).await?;
//! let mut file = session.open_stream("file").await?;
//! file.write_all(&[0u8; 1 << 20]).await?;
//! file.shutdown().await?;
//! session.close().await?;
//! # Ok(()) }
//! ```
//!
//! See `docs/transport.md` for the wire formats (join proof, verdict, DCEP) with annotated
//! vectors, the session life cycle, and the bounds.

mod byte_stream;
mod cert;
mod cert_der;
mod channel;
mod config;
pub mod dcep;
mod demux;
mod driver;
mod endpoint;
mod error;
mod invite;
pub mod join;
mod path;
mod receive;
mod record;
mod secure;
mod session;

pub use byte_stream::ByteStream;
pub use cert::{LocalCertificate, PeerAuth};
pub use channel::{Channel, ChannelOptions, PIECE};
pub use config::{Clock, Config, system_clock};
pub use dcep::Reliability;
pub use demux::{PacketKind, classify};
pub use endpoint::{
    DatagramSender, Endpoint, EndpointStats, IceDatagram, IceLink, MAX_DATAGRAM, route_datagram,
};
pub use error::{CloseReason, Error, Result};
pub use invite::PendingAccept;
pub use join::{JoinProof, Refusal};
pub use path::Via;
pub use secure::{DtlsRole, SecureConn};
pub use session::Session;
