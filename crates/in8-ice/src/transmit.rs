//! What the sans-IO cores hand the driver to send.

use std::net::SocketAddr;

/// One datagram to send: from the local socket bound to `from` (a candidate's base, or a
/// relayed address the driver must send through its TURN client) to `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The local address (base) to send from.
    pub from: SocketAddr,
    /// The destination.
    pub to: SocketAddr,
    /// The datagram.
    pub contents: Vec<u8>,
}
