//! The lab's address plan. Public addresses come from the documentation ranges (RFC 5737
//! TEST-NET-1/2/3), private ones from RFC 1918 and, between a CGNAT's two layers, from the
//! RFC 6598 shared address space. None of them ever leaves the lab's namespaces: no veth
//! end is in the machine's own namespace, so the lab has no route out.
//!
//! ```text
//! server            192.0.2.10 (primary), 192.0.2.11 (alternate)   TEST-NET-1 /24, inet 192.0.2.1
//! site i WAN link   203.0.113.16i+1 (inet) -- 203.0.113.16i+2 (router)  TEST-NET-3 /28
//! site i LAN, NAT   10.i.0.0/24: router 10.i.0.1, hosts 10.i.0.2 ...
//! site i LAN, none  198.51.100.16i/28 (TEST-NET-2): router .16i+1, hosts .16i+2 ...
//! CGNAT site i      hosts 10.i.0.0/24 -> home router, WAN 100.64.i.2/24 -> CGN 100.64.i.1
//! ```

use std::net::Ipv4Addr;

use crate::nat::NatType;
use crate::{Error, Result};

/// The server's primary address (coturn's main listener).
pub const SERVER_PRIMARY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
/// The server's alternate address (RFC 5780 CHANGE-REQUEST "change IP").
pub const SERVER_ALTERNATE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
/// The internet router's address on the server segment (the server's gateway).
pub const INET_SERVER_SIDE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The server segment's prefix length.
pub const SERVER_PREFIX: u8 = 24;
/// Most sites one lab can have (one /28 of TEST-NET-3 each).
pub const MAX_SITES: usize = 15;
/// Most hosts one site can have (a /28 public LAN leaves 13 host addresses).
pub const MAX_HOSTS: usize = 13;

/// The addresses of one site (index 1-based, as in its namespace names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SitePlan {
    /// 1-based site number.
    pub index: u8,
    /// The site's NAT type.
    pub nat: NatType,
    /// The internet router's end of the site's WAN link.
    pub inet_side: Ipv4Addr,
    /// The site's public address: its outermost router's WAN address (for `none`, the hosts'
    /// addresses are public themselves).
    pub wan: Ipv4Addr,
    /// The LAN network the hosts are in.
    pub lan_net: Ipv4Addr,
    /// Its prefix length.
    pub lan_prefix: u8,
    /// The (innermost) router's LAN address, the hosts' gateway.
    pub gateway: Ipv4Addr,
    /// The hosts' addresses.
    pub hosts: Vec<Ipv4Addr>,
    /// For CGNAT: the link between the home router and the CGN.
    pub cgn: Option<CgnPlan>,
}

/// The inner link of a CGNAT site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgnPlan {
    /// The CGN's address towards the home router.
    pub cgn_side: Ipv4Addr,
    /// The home router's WAN address (shared address space).
    pub home_wan: Ipv4Addr,
}

/// The WAN link prefix length of every site.
pub const WAN_PREFIX: u8 = 28;

impl SitePlan {
    /// The plan of site `index` (1-based) with `hosts` hosts.
    pub fn new(index: usize, nat: NatType, hosts: usize) -> Result<Self> {
        if index == 0 || index > MAX_SITES {
            return Err(Error::Config(format!(
                "site {index}: a lab has sites 1..={MAX_SITES}"
            )));
        }
        if hosts == 0 || hosts > MAX_HOSTS {
            return Err(Error::Config(format!(
                "site {index}: {hosts} hosts; a site has 1..={MAX_HOSTS}"
            )));
        }
        let i = index as u8;
        let block = 16 * i;
        let (lan_net, lan_prefix, gateway, first_host) = if nat == NatType::None {
            let base = Ipv4Addr::new(198, 51, 100, block);
            (base, 28, Ipv4Addr::new(198, 51, 100, block + 1), block + 2)
        } else {
            (
                Ipv4Addr::new(10, i, 0, 0),
                24,
                Ipv4Addr::new(10, i, 0, 1),
                2,
            )
        };
        let host_base = if nat == NatType::None {
            [198, 51, 100]
        } else {
            [10, i, 0]
        };
        Ok(Self {
            index: i,
            nat,
            inet_side: Ipv4Addr::new(203, 0, 113, block + 1),
            wan: Ipv4Addr::new(203, 0, 113, block + 2),
            lan_net,
            lan_prefix,
            gateway,
            hosts: (0..hosts as u8)
                .map(|j| Ipv4Addr::new(host_base[0], host_base[1], host_base[2], first_host + j))
                .collect(),
            cgn: (nat == NatType::Cgnat).then(|| CgnPlan {
                cgn_side: Ipv4Addr::new(100, 64, i, 1),
                home_wan: Ipv4Addr::new(100, 64, i, 2),
            }),
        })
    }

    /// The address peers on the internet see a host's traffic come from.
    pub fn public_addr(&self, host: usize) -> Option<Ipv4Addr> {
        if self.nat == NatType::None {
            self.hosts.get(host).copied()
        } else {
            Some(self.wan)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_use_disjoint_test_net_blocks() {
        let a = SitePlan::new(1, NatType::FullCone, 2).unwrap();
        let b = SitePlan::new(2, NatType::None, 2).unwrap();
        assert_eq!(a.inet_side, Ipv4Addr::new(203, 0, 113, 17));
        assert_eq!(a.wan, Ipv4Addr::new(203, 0, 113, 18));
        assert_eq!(
            a.hosts,
            [Ipv4Addr::new(10, 1, 0, 2), Ipv4Addr::new(10, 1, 0, 3)]
        );
        assert_eq!(a.public_addr(1), Some(a.wan));
        assert_eq!(b.wan, Ipv4Addr::new(203, 0, 113, 34));
        assert_eq!(b.gateway, Ipv4Addr::new(198, 51, 100, 33));
        assert_eq!(b.hosts[0], Ipv4Addr::new(198, 51, 100, 34));
        assert_eq!(b.public_addr(0), Some(b.hosts[0]));
    }

    #[test]
    fn the_last_site_and_host_fit_their_blocks() {
        let s = SitePlan::new(MAX_SITES, NatType::None, MAX_HOSTS).unwrap();
        assert_eq!(s.wan, Ipv4Addr::new(203, 0, 113, 242));
        // 198.51.100.240/28: .241 router, .242 ... .254 hosts, .255 broadcast.
        assert_eq!(s.hosts.last(), Some(&Ipv4Addr::new(198, 51, 100, 254)));
        assert!(SitePlan::new(MAX_SITES + 1, NatType::None, 1).is_err());
        assert!(SitePlan::new(0, NatType::None, 1).is_err());
        assert!(SitePlan::new(1, NatType::None, MAX_HOSTS + 1).is_err());
        assert!(SitePlan::new(1, NatType::None, 0).is_err());
    }

    #[test]
    fn cgnat_gets_a_shared_address_space_link() {
        let s = SitePlan::new(3, NatType::Cgnat, 1).unwrap();
        let c = s.cgn.unwrap();
        assert_eq!(c.cgn_side, Ipv4Addr::new(100, 64, 3, 1));
        assert_eq!(c.home_wan, Ipv4Addr::new(100, 64, 3, 2));
        assert_eq!(s.gateway, Ipv4Addr::new(10, 3, 0, 1));
        assert!(
            SitePlan::new(3, NatType::Symmetric, 1)
                .unwrap()
                .cgn
                .is_none()
        );
    }
}
