//! Node settings from the command line and an optional TOML config file (`--config`).
//!
//! ```toml
//! port = 48808                 # UDP port (0: any)
//! bind = "0.0.0.0"             # address to bind; unspecified = every interface
//! stun = ["198.51.100.1:3478"] # STUN servers for server-reflexive candidates
//! relay = false                # let invitees fall back to a relay
//! [turn]                       # optional TURN server (used only when relays are allowed)
//! addr = "198.51.100.1:3478"
//! username = "in8"
//! password = "secret"
//! ```
//! Command-line flags override the file.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use in8_core::{Config, TurnServer};
use serde::Deserialize;

use crate::home::Home;

/// The config file's contents.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    port: Option<u16>,
    bind: Option<IpAddr>,
    #[serde(default)]
    stun: Vec<SocketAddr>,
    relay: Option<bool>,
    turn: Option<FileTurn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTurn {
    addr: SocketAddr,
    username: String,
    password: String,
}

impl FileConfig {
    /// Reads `path` (a missing file is an error naming it).
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| {
            format!(
                "config file {} is invalid (keys: port, bind, stun, relay, [turn] addr/username/password)",
                path.display()
            )
        })
    }
}

/// Flags shared by every command that runs a node.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct NodeArgs {
    /// UDP port to listen on (0 = any free port) [default: 48808 for `invite`, 0 otherwise].
    #[arg(long)]
    port: Option<u16>,
    /// IP address to bind (default: every interface).
    #[arg(long)]
    bind: Option<IpAddr>,
    /// A STUN server to learn this node's public address from (repeatable).
    #[arg(long = "stun", value_name = "ADDR")]
    stun: Vec<SocketAddr>,
    /// Allow invitees to fall back to a relay (TURN), never silently.
    #[arg(long)]
    relay: bool,
    /// TURN server as user:password@host:port (used only when relays are allowed).
    #[arg(long, value_name = "USER:PASS@ADDR", value_parser = parse_turn)]
    turn: Option<TurnArg>,
    /// How long one-way establishment (phase 1) may take before the join reports failure
    /// and produces an RSVP (e.g. 5s) [default: 10s].
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    connect_timeout: Option<std::time::Duration>,
    /// Testing aid: drop STUN from addresses this node has not sent to, as a
    /// port-restricted NAT would (forces the RSVP path on one machine).
    #[arg(long)]
    filter_unsolicited: bool,
    /// Never run birthday probing (the many-socket, random-port strategy for a symmetric
    /// NAT facing a port-restricted one); such pairs then connect only through a relay.
    #[arg(long)]
    no_birthday: bool,
}

impl NodeArgs {
    /// `--port`, if given.
    pub(crate) fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether `--relay` was given.
    pub(crate) fn relay_flag(&self) -> bool {
        self.relay
    }
}

#[derive(Debug, Clone)]
pub(crate) struct TurnArg(TurnServer);

fn parse_turn(s: &str) -> Result<TurnArg, String> {
    let (cred, addr) = s
        .rsplit_once('@')
        .ok_or("expected user:password@host:port")?;
    let (user, pass) = cred
        .split_once(':')
        .ok_or("expected user:password@host:port")?;
    let addr = addr
        .parse()
        .map_err(|e| format!("bad TURN address {addr:?}: {e}"))?;
    Ok(TurnArg(TurnServer {
        addr,
        username: user.into(),
        password: pass.into(),
    }))
}

/// Builds the core configuration for this node.
pub(crate) fn node_config(
    home: &Home,
    file: &FileConfig,
    args: &NodeArgs,
    default_port: u16,
) -> Result<Config> {
    let (identity, _) = home.identity()?;
    let mut c = Config::new(identity);
    c.state_dir = Some(PathBuf::from(home.dir()));
    let port = args.port.or(file.port).unwrap_or(default_port);
    let ip = args
        .bind
        .or(file.bind)
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    c.bind = SocketAddr::new(ip, port);
    c.stun_servers = if args.stun.is_empty() {
        file.stun.clone()
    } else {
        args.stun.clone()
    };
    c.allow_relay = args.relay || file.relay.unwrap_or(false);
    if let Some(t) = args.connect_timeout {
        c.ice.agent.connect_timeout = t;
    }
    if args.filter_unsolicited {
        c.inbound_filter = Some(in8_core::InboundFilter::AddressAndPortDependent);
    }
    c.birthday.enabled = !args.no_birthday;
    c.turn = args.turn.clone().map(|t| t.0).or_else(|| {
        file.turn.as_ref().map(|t| TurnServer {
            addr: t.addr,
            username: t.username.clone(),
            password: t.password.clone(),
        })
    });
    Ok(c)
}
