//! Node configuration. The defaults need no server at all.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use in8_artifact::{Identity, VerifyPolicy};

/// TURN server settings (long-term credentials, RFC 8656 §9.2).
#[derive(Clone, Debug)]
pub struct TurnServer {
    /// The server's address.
    pub addr: SocketAddr,
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// An in-process stand-in for a NAT's inbound filter, for demos and tests (DESIGN §8): STUN
/// datagrams from an address this node has not sent to are dropped before ICE sees them,
/// as an address- and port-dependent filtering NAT would drop them. DTLS needs ICE first,
/// so filtering STUN blocks one-way (phase 1) establishment the way a real NAT does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboundFilter {
    /// Accept only from addresses (IP and port) this node has sent to.
    AddressAndPortDependent,
    /// Accept only from IPs this node has sent to.
    AddressDependent,
}

/// How a [`crate::Node`] runs. Every bound is stated at its field.
#[derive(Clone)]
pub struct Config {
    /// This node's identity.
    pub identity: Identity,
    /// Where the single-use ledger lives (`<dir>/ledger`); `None` keeps it in memory, so a
    /// restart forgets which invitations were used (fine for tests and demos only).
    pub state_dir: Option<PathBuf>,
    /// The UDP socket address to bind (default `0.0.0.0:0`). One socket carries STUN, DTLS
    /// and TURN channel data (RFC 7983).
    pub bind: SocketAddr,
    /// Advertise only these host addresses instead of every interface's (when bound to an
    /// unspecified address). Empty: all usable interfaces.
    pub host_addresses: Vec<std::net::IpAddr>,
    /// STUN servers to learn server-reflexive candidates from (default none).
    pub stun_servers: Vec<SocketAddr>,
    /// A TURN server for a relayed candidate, used only when an invitation allows relays.
    pub turn: Option<TurnServer>,
    /// Whether invitations this node issues allow the invitee to fall back to a relay.
    pub allow_relay: bool,
    /// How long gathering waits for STUN answers (default 1 s).
    pub gather_timeout: Duration,
    /// Lifetime of an RSVP this node produces after a failed phase 1 (default 1 h; the
    /// invitee keeps its NAT bindings open that long).
    pub rsvp_ttl: Duration,
    /// Clock skew tolerated when verifying artifacts.
    pub verify: VerifyPolicy,
    /// Most joins in progress at once (default 64).
    pub max_joins: usize,
    /// Most outstanding invitations (default 1024).
    pub max_invitations: usize,
    /// Events buffered per join or invitation handle (default 64); a handle whose owner
    /// stops reading loses the oldest progress events, never the final one.
    pub event_queue: usize,
    /// ICE settings and bounds.
    pub ice: in8_ice::EndpointConfig,
    /// Transport (DTLS, SCTP) settings and bounds.
    pub transport: in8_transport::Config,
    /// The in-process filtering shim (demos and tests only).
    pub inbound_filter: Option<InboundFilter>,
    /// Seed for ICE's random choices (default: from the OS).
    pub seed: Option<u64>,
}

impl Config {
    /// Defaults for `identity`: bind `0.0.0.0:0`, no servers, memory ledger.
    pub fn new(identity: Identity) -> Self {
        Self {
            identity,
            state_dir: None,
            bind: SocketAddr::from(([0, 0, 0, 0], 0)),
            host_addresses: Vec::new(),
            stun_servers: Vec::new(),
            turn: None,
            allow_relay: false,
            gather_timeout: Duration::from_secs(1),
            rsvp_ttl: Duration::from_secs(3600),
            verify: VerifyPolicy::default(),
            max_joins: 64,
            max_invitations: 1024,
            event_queue: 64,
            ice: in8_ice::EndpointConfig::default(),
            transport: in8_transport::Config::default(),
            inbound_filter: None,
            seed: None,
        }
    }

    /// A node on loopback only (`127.0.0.1:0`): demos and tests.
    pub fn loopback(identity: Identity) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Self::new(identity)
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("node", &self.identity.node_id())
            .field("state_dir", &self.state_dir)
            .field("bind", &self.bind)
            .field("stun_servers", &self.stun_servers)
            .field("turn", &self.turn.as_ref().map(|t| t.addr))
            .field("allow_relay", &self.allow_relay)
            .field("inbound_filter", &self.inbound_filter)
            .finish_non_exhaustive()
    }
}
