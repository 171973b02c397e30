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
    /// Emulates a symmetric NAT (address- and port-dependent *mapping* and filtering) on
    /// one machine: connectivity checks from the node's own sockets never reach a peer
    /// (a real symmetric NAT would send them from a fresh external port that the peer's
    /// filter has never seen), and nothing from a peer reaches them; the extra sockets of
    /// birthday probing each accept only from addresses that socket has sent to (each is
    /// its own mapping, its local port standing for the external one). STUN and TURN
    /// servers are reached as usual. Used to test birthday probing on loopback.
    Symmetric,
}

/// Birthday probing: how a node gets through a symmetric NAT facing an address- and
/// port-dependent filter (DESIGN §5, docs/core.md "Hard NATs"). Runs only when both sides'
/// NAT behaviours are known (classified at gathering, carried in the invitation and the
/// RSVP) and `in8_ice::punch::plan` asks for it. The side behind the symmetric NAT (hard)
/// opens `sockets` extra sockets and sends an authenticated check from each to the other
/// side's server-reflexive address, a sweep every 10 s (inside the 30 s unreplied-UDP
/// timeout), `rounds` times; the other side (easy) sends paced checks to random ports of
/// the hard side's public IP. Every bound is here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Birthday {
    /// Whether to probe at all (default true).
    pub enabled: bool,
    /// Extra UDP sockets the hard side opens (default 256, at most
    /// [`Birthday::MAX_SOCKETS`]); two sides' NATs with 256 mappings and 2048 probes over
    /// ports 1024–65535 meet with probability 99.97 %.
    pub sockets: u16,
    /// Random-port probes of the easy side per burst (default 2048, at most
    /// [`Birthday::MAX_PROBES`]).
    pub probes: u32,
    /// Probes per second, both sides (default 200, clamped to 10..=[`Birthday::MAX_RATE`]).
    /// An inviting easy side sends its burst within 70 % of the ICE connect timeout, so it
    /// may go faster (up to the maximum): its phase-2 session ends at that timeout.
    pub rate: u32,
    /// Sweeps of the hard side and bursts of an easy invitee, one each 10 s (default 12:
    /// two minutes after phase 2 may have started; at most [`Birthday::MAX_ROUNDS`]). An
    /// RSVP accepted later than that connects only as ordinary phase 2 (or a relay) can.
    pub rounds: u32,
    /// Lowest port probed (default 1024: NATs rarely allocate below).
    pub port_min: u16,
    /// Highest port probed (default 65535). Tests on loopback narrow `port_min..=port_max`
    /// to the kernel's ephemeral range (Linux: 32768–60999), where the hard side's extra
    /// sockets get their ports.
    pub port_max: u16,
}

impl Birthday {
    /// Most sockets the hard side opens.
    pub const MAX_SOCKETS: u16 = 1024;
    /// Most probes per burst.
    pub const MAX_PROBES: u32 = 16_384;
    /// Fastest probe rate.
    pub const MAX_RATE: u32 = 2000;
    /// Most sweeps / bursts.
    pub const MAX_ROUNDS: u32 = 360;
    /// Time between sweeps / bursts: below the 30 s after which NATs drop unreplied UDP
    /// mappings (conntrack's default, measured in the NAT lab).
    pub const ROUND: Duration = Duration::from_secs(10);

    /// The settings with every bound applied (`port_max` is raised to `port_min` when
    /// below it).
    pub fn clamped(self) -> Self {
        let port_min = self.port_min.max(1);
        Self {
            enabled: self.enabled,
            sockets: self.sockets.clamp(1, Self::MAX_SOCKETS),
            probes: self.probes.clamp(1, Self::MAX_PROBES),
            rate: self.rate.clamp(10, Self::MAX_RATE),
            rounds: self.rounds.clamp(1, Self::MAX_ROUNDS),
            port_min,
            port_max: self.port_max.max(port_min),
        }
    }

    /// Ports in `port_min..=port_max`.
    pub fn port_span(&self) -> u32 {
        u32::from(self.port_max.saturating_sub(self.port_min)) + 1
    }

    /// The probability that one burst of the easy side meets one of the hard side's
    /// mappings, for a NAT that allocates ports uniformly in `port_min..=port_max`
    /// (`in8_ice::punch::birthday_hit_probability`).
    pub fn hit_probability(&self) -> f64 {
        let c = self.clamped();
        in8_ice::punch::birthday_hit_probability(u32::from(c.sockets), c.probes, c.port_span())
    }
}

impl Default for Birthday {
    fn default() -> Self {
        let ice = in8_ice::punch::BirthdayConfig::default();
        Self {
            enabled: true,
            sockets: ice.sockets,
            probes: ice.max_probes,
            rate: ice.rate,
            rounds: 12,
            port_min: ice.port_min,
            port_max: u16::MAX,
        }
    }
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
    /// STUN servers to learn server-reflexive candidates from (default none). With one that
    /// has an RFC 5780 alternate address (OTHER-ADDRESS, e.g. coturn on two IPs), or with
    /// two or more, the node also classifies its NAT at start ([`crate::Node::nat`]).
    pub stun_servers: Vec<SocketAddr>,
    /// Use this NAT class instead of classifying (tests, or a behaviour known otherwise).
    pub assume_nat: Option<in8_ice::nat::NatClass>,
    /// Birthday probing for symmetric NATs (on by default; bounds at the type).
    pub birthday: Birthday,
    /// A TURN server for a relayed candidate, used only when an invitation allows relays.
    pub turn: Option<TurnServer>,
    /// Whether invitations this node issues allow the invitee to fall back to a relay.
    pub allow_relay: bool,
    /// How long gathering waits for STUN answers (default 1 s); NAT classification waits
    /// this long for each of its probes (up to five, 100 ms apart), in the background.
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
    /// Seed of every random choice the node makes (ICE credentials and tie-breakers,
    /// invitation secrets, gossip, birthday probing; default: from the OS at start).
    pub seed: Option<u64>,
    /// The network: gossip, topology, bounds ([`NetworkConfig`]).
    pub network: NetworkConfig,
}

/// The overlay's shape: a fixed in8-topology policy, or `auto` (mesh while small,
/// hierarchical with reachable super-peers as it grows, random partial views beyond;
/// with hysteresis).
#[derive(Clone, Debug, PartialEq)]
pub enum Topology {
    /// This policy.
    Fixed(in8_topology::Policy),
    /// Chosen as the network grows.
    Auto(in8_topology::AutoConfig),
}

impl Default for Topology {
    fn default() -> Self {
        Topology::Auto(in8_topology::AutoConfig::default())
    }
}

/// How a node takes part in its network (docs/network.md). Every table named here is
/// bounded by the field that says so.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// Membership and broadcast (HyParView, Plumtree) parameters and their bounds.
    pub gossip: in8_gossip::Config,
    /// The topology policy (default `auto`); [`crate::Node::set_topology`] changes it
    /// while running.
    pub topology: Topology,
    /// Most links the topology and the application may pin (default 32; gossip's random
    /// view, 5 by default, comes on top). Also bounds [`crate::Node::connect_member`].
    pub max_links: usize,
    /// Most members the directory keeps (default 1024; the least recently heard makes
    /// room).
    pub max_members: usize,
    /// Most member sessions being set up at once (default 32).
    pub max_dials: usize,
    /// How long a member session may take to come up (default 6 s).
    pub dial_timeout: std::time::Duration,
    /// Members announce their record and neighbours this often (default 30 s, ±20 %); a
    /// member not heard of for three times as long counts as offline.
    pub announce_interval: std::time::Duration,
    /// Validity of the credentials this node issues, at most its own (default 365 days).
    pub credential_ttl: std::time::Duration,
    /// Validity of this node's peer records; re-signed at half-life (default 1 h).
    pub record_ttl: std::time::Duration,
    /// Members remembered across a restart to rejoin through (default 16).
    pub remembered: usize,
    /// Most invitations hosted for other members as an entry peer (default 64).
    pub max_hosted: usize,
    /// Frames queued for one member while its link is being made (default 32; the oldest
    /// goes first).
    pub queued_per_peer: usize,
    /// Largest direct message (default 64 KiB).
    pub max_message: usize,
    /// Frames per second a link may carry on its network channel (default 2000), with a
    /// burst of `frame_burst` (default 4000): beyond, frames are dropped, and a link that
    /// keeps flooding past another burst is closed and its member refused for a minute.
    pub frame_rate: u32,
    /// See `frame_rate`.
    pub frame_burst: u32,
    /// Member links may use a TURN relay (default false: direct or introduced only).
    pub allow_relay: bool,
    /// A direct dial's token may be this far from this node's clock (default 120 s).
    pub token_skew: std::time::Duration,
    /// A link no longer wanted closes this long after its goodbye (default 1 s).
    pub linger: std::time::Duration,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        use std::time::Duration;
        Self {
            gossip: in8_gossip::Config::default(),
            topology: Topology::default(),
            max_links: 32,
            max_members: 1024,
            max_dials: 32,
            dial_timeout: Duration::from_secs(6),
            announce_interval: Duration::from_secs(30),
            credential_ttl: Duration::from_secs(365 * 86_400),
            record_ttl: Duration::from_secs(3600),
            remembered: 16,
            max_hosted: 64,
            queued_per_peer: 32,
            max_message: 64 * 1024,
            frame_rate: 2000,
            frame_burst: 4000,
            allow_relay: false,
            token_skew: Duration::from_secs(120),
            linger: Duration::from_secs(1),
        }
    }
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
            assume_nat: None,
            birthday: Birthday::default(),
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
            network: NetworkConfig::default(),
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
            .field("birthday", &self.birthday)
            .field("turn", &self.turn.as_ref().map(|t| t.addr))
            .field("allow_relay", &self.allow_relay)
            .field("inbound_filter", &self.inbound_filter)
            .finish_non_exhaustive()
    }
}
