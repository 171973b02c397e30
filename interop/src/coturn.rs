//! coturn (Debian package `coturn`) as a STUN + TURN server with one static long-term user,
//! inside a lab namespace or on loopback.
//!
//! RFC 5780 (NAT behaviour discovery) needs the server to answer from a second address and
//! a second port: coturn enables it when it listens on **two or more addresses of the same
//! family** and answers CHANGE-REQUEST from `alt-listening-port` (default: port + 1). The lab
//! gives the server 192.0.2.10 and 192.0.2.11; on loopback, 127.0.0.1 and 127.0.0.2 (all
//! of 127.0.0.0/8 is local on Linux) do the same job.
//!
//! ```no_run
//! # fn main() -> in8_interop::Result<()> {
//! // A loopback coturn for a test that needs no root and no namespaces.
//! let turn = in8_interop::coturn::Coturn::start(in8_interop::coturn::CoturnConfig::loopback()?, None)?;
//! let stun = turn.stun_addr(); // 127.0.0.1:<port>
//! let (user, password, realm) = turn.credentials();
//! # let _ = (stun, user, password, realm);
//! # Ok(()) }
//! ```

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::command::{find_tool, tail};
use crate::netns::Netns;
use crate::process::ChildGuard;
use crate::{Error, Result, stun};

/// The static long-term user of every lab coturn.
pub const USER: &str = "in8";
/// Its password.
pub const PASSWORD: &str = "in8-lab-password";
/// The realm.
pub const REALM: &str = "in8.lab";

/// How long [`Coturn::start`] waits for the first STUN answer.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// What coturn listens on and whom it lets in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoturnConfig {
    /// Listening addresses; the first is the primary. Two of the same family enable RFC 5780.
    pub listen: Vec<IpAddr>,
    /// STUN / TURN port (UDP and TCP).
    pub port: u16,
    /// The RFC 5780 alternate port (CHANGE-REQUEST "change port").
    pub alt_port: u16,
    /// Address relayed allocations are made on (default: the primary).
    pub relay_ip: Option<IpAddr>,
    /// Range of relay ports.
    pub relay_ports: (u16, u16),
    /// Static long-term credential: user name.
    pub user: String,
    /// Static long-term credential: password.
    pub password: String,
    /// Realm.
    pub realm: String,
    /// Allow TURN peers on loopback (coturn refuses them by default; needed on loopback).
    pub allow_loopback_peers: bool,
}

impl CoturnConfig {
    /// The lab's server: primary and alternate address, port 3478 / 3479.
    pub fn lab(primary: Ipv4Addr, alternate: Ipv4Addr) -> Self {
        Self {
            listen: vec![primary.into(), alternate.into()],
            port: 3478,
            alt_port: 3479,
            relay_ip: None,
            relay_ports: (49152, 65535),
            user: USER.into(),
            password: PASSWORD.into(),
            realm: REALM.into(),
            allow_loopback_peers: false,
        }
    }

    /// A loopback server on 127.0.0.1 (primary) and 127.0.0.2 (RFC 5780 alternate), on a
    /// port and port + 1 that are free now (UDP and TCP) on both addresses, with loopback
    /// peers allowed. Needs no root.
    pub fn loopback() -> Result<Self> {
        let primary = Ipv4Addr::LOCALHOST;
        let alternate = Ipv4Addr::new(127, 0, 0, 2);
        let port = free_port_pair(&[primary, alternate])?;
        Ok(Self {
            listen: vec![primary.into(), alternate.into()],
            port,
            alt_port: port + 1,
            allow_loopback_peers: true,
            ..Self::lab(primary, alternate)
        })
    }

    /// The primary STUN / TURN address.
    pub fn stun_addr(&self) -> Option<SocketAddr> {
        self.listen
            .first()
            .map(|ip| SocketAddr::new(*ip, self.port))
    }

    /// The `turnserver.conf` text, with its state files in `dir`.
    pub fn render(&self, dir: &Path) -> String {
        let mut c = String::new();
        for ip in &self.listen {
            let _ = writeln!(c, "listening-ip={ip}");
        }
        let relay = self.relay_ip.or_else(|| self.listen.first().copied());
        if let Some(ip) = relay {
            let _ = writeln!(c, "relay-ip={ip}");
        }
        let _ = writeln!(c, "listening-port={}", self.port);
        let _ = writeln!(c, "alt-listening-port={}", self.alt_port);
        let _ = writeln!(c, "min-port={}", self.relay_ports.0);
        let _ = writeln!(c, "max-port={}", self.relay_ports.1);
        let _ = writeln!(c, "lt-cred-mech");
        let _ = writeln!(c, "user={}:{}", self.user, self.password);
        let _ = writeln!(c, "realm={}", self.realm);
        let _ = writeln!(c, "fingerprint");
        if self.allow_loopback_peers {
            let _ = writeln!(c, "allow-loopback-peers");
        }
        // Plain UDP/TCP only; no admin CLI; all state in `dir`.
        c += "no-tls\nno-dtls\nno-cli\nno-stdout-log\nsimple-log\n";
        let _ = writeln!(c, "log-file={}", dir.join("turnserver.log").display());
        let _ = writeln!(c, "pidfile={}", dir.join("turnserver.pid").display());
        let _ = writeln!(c, "userdb={}", dir.join("turndb").display());
        c
    }
}

/// Finds a port p such that p and p + 1 are free for UDP and TCP on every address.
fn free_port_pair(addrs: &[Ipv4Addr]) -> Result<u16> {
    for _ in 0..50 {
        let probe = UdpSocket::bind((addrs[0], 0))
            .map_err(|e| Error::io("finding a free loopback port", e))?;
        let port = probe
            .local_addr()
            .map_err(|e| Error::io("finding a free loopback port", e))?
            .port();
        drop(probe);
        if port >= u16::MAX - 1 {
            continue;
        }
        let free = addrs.iter().all(|ip| {
            [port, port + 1]
                .iter()
                .all(|p| UdpSocket::bind((*ip, *p)).is_ok() && TcpListener::bind((*ip, *p)).is_ok())
        });
        if free {
            return Ok(port);
        }
    }
    Err(Error::Config("no free port pair on loopback".into()))
}

/// A running coturn. Dropping it stops the process and removes its state directory.
#[derive(Debug)]
pub struct Coturn {
    child: ChildGuard,
    config: CoturnConfig,
    dir: tempfile::TempDir,
}

impl Coturn {
    /// Starts `turnserver` with `config` (inside `netns` when given, else in this process's
    /// namespace) and waits until it answers a STUN Binding request on its primary address
    /// (sent from the same namespace), at most [`READY_TIMEOUT`].
    pub fn start(config: CoturnConfig, netns: Option<&Netns>) -> Result<Self> {
        let Some(server) = config.stun_addr() else {
            return Err(Error::Config("coturn needs a listening address".into()));
        };
        let Some(bin) = find_tool("turnserver") else {
            return Err(Error::MissingTool {
                tool: "turnserver".into(),
                package: "coturn",
            });
        };
        let dir = tempfile::Builder::new()
            .prefix("in8lab-coturn-")
            .tempdir()
            .map_err(|e| Error::io("creating coturn's state directory", e))?;
        let conf = dir.path().join("turnserver.conf");
        std::fs::write(&conf, config.render(dir.path()))
            .map_err(|e| Error::io(format!("writing {}", conf.display()), e))?;
        let mut cmd = match netns {
            Some(ns) => ns.command(&bin),
            None => Command::new(&bin),
        };
        cmd.arg("-c").arg(&conf);
        let mut turn = Self {
            child: ChildGuard::spawn(&mut cmd)?,
            config,
            dir,
        };
        let local = SocketAddr::new(
            match server.ip() {
                IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
                IpAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
            },
            0,
        );
        let socket = match netns {
            Some(ns) => ns.udp_socket(local)?,
            None => UdpSocket::bind(local).map_err(|e| Error::io("binding a STUN probe", e))?,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if turn.child.has_exited() {
                let out = turn.child.stop()?;
                return Err(Error::NotReady {
                    what: format!("coturn on {server} (it exited: {})", out.status),
                    after: READY_TIMEOUT,
                    log: tail(&format!("{}{}", out.combined(), turn.log()), 3000),
                });
            }
            match stun::query(&socket, server, Duration::from_millis(250)) {
                Ok(_) => return Ok(turn),
                Err(_) if Instant::now() < deadline => {}
                Err(_) => {
                    return Err(Error::NotReady {
                        what: format!("coturn on {server}"),
                        after: READY_TIMEOUT,
                        log: tail(&turn.log(), 3000),
                    });
                }
            }
        }
    }

    /// The primary STUN / TURN address.
    pub fn stun_addr(&self) -> SocketAddr {
        // `start` refused a configuration without a listening address.
        self.config
            .stun_addr()
            .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
    }

    /// The RFC 5780 alternate address (second listening address, alternate port), if any.
    pub fn alternate_addr(&self) -> Option<SocketAddr> {
        self.config
            .listen
            .get(1)
            .map(|ip| SocketAddr::new(*ip, self.config.alt_port))
    }

    /// The static long-term credential: (user, password, realm).
    pub fn credentials(&self) -> (&str, &str, &str) {
        (&self.config.user, &self.config.password, &self.config.realm)
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &CoturnConfig {
        &self.config
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Where its log is.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("turnserver.log")
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_config_enables_rfc5780_and_the_static_user() {
        let c = CoturnConfig::lab(Ipv4Addr::new(192, 0, 2, 10), Ipv4Addr::new(192, 0, 2, 11));
        let text = c.render(Path::new("/tmp/x"));
        for line in [
            "listening-ip=192.0.2.10",
            "listening-ip=192.0.2.11",
            "relay-ip=192.0.2.10",
            "listening-port=3478",
            "alt-listening-port=3479",
            "lt-cred-mech",
            "user=in8:in8-lab-password",
            "realm=in8.lab",
            "userdb=/tmp/x/turndb",
            "log-file=/tmp/x/turnserver.log",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
        assert!(!text.contains("no-rfc5780"));
        assert!(!text.contains("allow-loopback-peers"));
        assert_eq!(c.stun_addr(), Some("192.0.2.10:3478".parse().unwrap()));
    }

    #[test]
    fn loopback_config_uses_two_loopback_addresses_and_free_ports() {
        let c = CoturnConfig::loopback().unwrap();
        assert_eq!(
            c.listen,
            [
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "127.0.0.2".parse().unwrap()
            ]
        );
        assert_eq!(c.alt_port, c.port + 1);
        assert!(c.allow_loopback_peers);
        assert!(UdpSocket::bind(("127.0.0.1", c.port)).is_ok());
    }
}
