//! The lab: an "internet" router, a server running coturn, and sites behind NAT routers,
//! all in network namespaces joined by veth pairs. [`Lab::start`] builds it;
//! dropping the [`Lab`] tears everything down (delayers, coturn, the processes left in its
//! namespaces, the namespaces and with them every veth), also while a test panics.
//!
//! ```text
//!                         +------------------- inet -------------------+
//!                         | router, 192.0.2.1 + 203.0.113.16i+1 per site |
//!                         +--+-------------+---------------+-----------+
//!                   srv/eth0 |        s1/wan|          s2/wan|   (veth pairs)
//!         +------------------+--+  +--------+-------+  +-----+----------+
//!         | server 192.0.2.10/11 |  | site 1 router  |  | site 2 router  |  ... NAT per site
//!         | coturn STUN+TURN     |  | nft NAT, delay |  | (CGNAT: + home |
//!         +----------------------+  +--------+-------+  |  router inside)|
//!                                       lan bridge      +-----+----------+
//!                                     h1 |   | h2             |
//!                                   host 1  host 2          host 1
//! ```

mod build;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::process::Command;
use std::time::Duration;

use crate::coturn::Coturn;
use crate::impair::{Impairment, Stats, nfqueue};
use crate::nat::NatType;
use crate::netns::Netns;
use crate::plan::{MAX_SITES, SitePlan};
use crate::process::{ChildGuard, Finished};
use crate::{Error, Result};

/// What to build.
#[derive(Debug, Clone, PartialEq)]
pub struct LabConfig {
    /// The sites, in order (site 1 first).
    pub sites: Vec<SiteConfig>,
    /// Whether to run the server namespace with coturn (STUN + TURN).
    pub server: bool,
}

/// One site.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteConfig {
    /// The NAT in front of it.
    pub nat: NatType,
    /// How many hosts (1 ..= [`crate::plan::MAX_HOSTS`]).
    pub hosts: usize,
    /// Link impairment on its WAN link, if any.
    pub impairment: Option<Impairment>,
}

impl SiteConfig {
    /// One host behind `nat`, no impairment.
    pub fn new(nat: NatType) -> Self {
        Self {
            nat,
            hosts: 1,
            impairment: None,
        }
    }
}

impl Default for LabConfig {
    fn default() -> Self {
        Self {
            sites: Vec::new(),
            server: true,
        }
    }
}

impl LabConfig {
    /// A lab with the server and no sites yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a site with one host behind `nat`.
    pub fn site(mut self, nat: NatType) -> Self {
        self.sites.push(SiteConfig::new(nat));
        self
    }

    /// Adds a site as configured.
    pub fn site_with(mut self, site: SiteConfig) -> Self {
        self.sites.push(site);
        self
    }

    /// Two sites (one matrix cell).
    pub fn pair(a: NatType, b: NatType) -> Self {
        Self::new().site(a).site(b)
    }

    /// One site of each NAT type, in [`NatType::ALL`] order.
    pub fn every_nat_type() -> Self {
        NatType::ALL.into_iter().fold(Self::new(), Self::site)
    }

    /// Without the server (no coturn).
    pub fn without_server(mut self) -> Self {
        self.server = false;
        self
    }
}

/// A running lab. Fields drop in order: sites (delayers, hosts, routers), server (coturn,
/// namespace), then the internet router.
#[derive(Debug)]
pub struct Lab {
    sites: Vec<Site>,
    server: Option<Server>,
    inet: Netns,
    stem: String,
}

/// The server host: coturn on two addresses.
#[derive(Debug)]
pub struct Server {
    coturn: Option<Coturn>,
    netns: Netns,
}

/// One site: hosts behind one or two routers.
#[derive(Debug)]
pub struct Site {
    delayer: Option<nfqueue::Running>,
    hosts: Vec<Host>,
    home: Option<Netns>,
    router: Netns,
    plan: SitePlan,
}

/// A host of a site.
#[derive(Debug)]
pub struct Host {
    netns: Netns,
    addr: Ipv4Addr,
}

impl Lab {
    /// Builds the lab (needs root and the lab's packages; see [`crate::command::TOOLS`]).
    /// First removes leftovers of lab runs whose process has died ([`crate::clean::stale`]).
    pub fn start(config: &LabConfig) -> Result<Self> {
        crate::command::require_root("the NAT lab")?;
        crate::command::require_tools()?;
        if config.sites.len() > MAX_SITES {
            return Err(Error::Config(format!(
                "{} sites; a lab has at most {MAX_SITES}",
                config.sites.len()
            )));
        }
        for s in &config.sites {
            if let Some(i) = &s.impairment {
                i.validate()?;
            }
        }
        let _ = crate::clean::stale();
        build::build(config)
    }

    /// The namespace name stem of this lab (`in8lab-<pid>-<n>`).
    pub fn stem(&self) -> &str {
        &self.stem
    }

    /// The internet router's namespace.
    pub fn inet(&self) -> &Netns {
        &self.inet
    }

    /// The sites, in configuration order.
    pub fn sites(&self) -> &[Site] {
        &self.sites
    }

    /// Site `i` (0-based: the first configured site is `site(0)`, named `s1`).
    pub fn site(&self, i: usize) -> Result<&Site> {
        self.sites
            .get(i)
            .ok_or_else(|| Error::Config(format!("the lab has {} sites", self.sites.len())))
    }

    /// Mutable site `i` (to change its impairment).
    pub fn site_mut(&mut self, i: usize) -> Result<&mut Site> {
        let n = self.sites.len();
        self.sites
            .get_mut(i)
            .ok_or_else(|| Error::Config(format!("the lab has {n} sites")))
    }

    /// The first host of site `i`.
    pub fn host(&self, i: usize) -> Result<&Host> {
        self.site(i)?.host(0)
    }

    /// The server, if the lab has one.
    pub fn server(&self) -> Option<&Server> {
        self.server.as_ref()
    }

    /// The lab's coturn, if it runs.
    pub fn coturn(&self) -> Option<&Coturn> {
        self.server.as_ref().and_then(|s| s.coturn.as_ref())
    }
}

impl Server {
    /// The server's namespace.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// Its coturn.
    pub fn coturn(&self) -> Option<&Coturn> {
        self.coturn.as_ref()
    }
}

impl Site {
    /// The NAT in front of the site.
    pub fn nat(&self) -> NatType {
        self.plan.nat
    }

    /// Its addresses.
    pub fn plan(&self) -> &SitePlan {
        &self.plan
    }

    /// The address the internet sees this site's traffic come from (a `none` site's host
    /// addresses are public themselves; this is then its first host's).
    pub fn public_addr(&self) -> Ipv4Addr {
        self.plan.public_addr(0).unwrap_or(self.plan.wan)
    }

    /// Its hosts.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Host `j` (0-based).
    pub fn host(&self, j: usize) -> Result<&Host> {
        self.hosts
            .get(j)
            .ok_or_else(|| Error::Config(format!("site has {} hosts", self.hosts.len())))
    }

    /// The outer router (the CGN for CGNAT): where NAT types and impairment live.
    pub fn router(&self) -> &Netns {
        &self.router
    }

    /// For CGNAT, the home router between the hosts and the CGN.
    pub fn home_router(&self) -> Option<&Netns> {
        self.home.as_ref()
    }

    /// Impairs the site's WAN link from now on (replacing any previous impairment).
    pub fn impair(&mut self, cfg: Impairment) -> Result<()> {
        self.clear_impairment()?;
        self.delayer = Some(nfqueue::Running::start(&self.router, cfg)?);
        Ok(())
    }

    /// Removes the impairment; returns the delayer's counters if there was one.
    pub fn clear_impairment(&mut self) -> Result<Option<Stats>> {
        match self.delayer.take() {
            Some(mut d) => d.finish().map(Some),
            None => Ok(None),
        }
    }
}

impl Host {
    /// The host's namespace (for [`Netns::run`], [`Netns::udp_socket`]).
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// The namespace's name, for `ip netns exec <name> ...`.
    pub fn name(&self) -> &str {
        self.netns.name()
    }

    /// The host's own (LAN) address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// `ip netns exec <host> <program>`: add arguments, then spawn or run it.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.netns.command(program)
    }

    /// Runs `program args...` on the host, waits at most `timeout`, and returns what it
    /// printed (whatever its exit status: check [`Finished::status`]).
    pub fn output(&self, program: &str, args: &[&str], timeout: Duration) -> Result<Finished> {
        ChildGuard::spawn(self.command(program).args(args))?.wait(timeout)
    }

    /// Starts `program args...` on the host; it is stopped when the guard drops (and at the
    /// latest when the lab drops, with its namespace).
    pub fn spawn(&self, program: &str, args: &[&str]) -> Result<ChildGuard> {
        ChildGuard::spawn(self.command(program).args(args))
    }

    /// A UDP socket in the host's namespace bound to its address and `port` (0: any).
    pub fn udp_socket(&self, port: u16) -> Result<UdpSocket> {
        self.netns
            .udp_socket(SocketAddr::V4(SocketAddrV4::new(self.addr, port)))
    }
}
