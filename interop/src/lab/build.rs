//! Building the lab step by step. Every namespace is owned by a guard from the moment it
//! exists, so an error half-way drops (and deletes) whatever was already built.

use std::fmt::Write as _;

use super::{Host, Lab, LabConfig, Server, Site};
use crate::command::nft_load;
use crate::coturn::{Coturn, CoturnConfig};
use crate::impair::nfqueue;
use crate::nat::{NatType, ruleset};
use crate::netns::{Netns, new_stem};
use crate::plan::{
    INET_SERVER_SIDE, SERVER_ALTERNATE, SERVER_PREFIX, SERVER_PRIMARY, SitePlan, WAN_PREFIX,
};
use crate::{Error, Result};

/// Creates a veth pair: `a_if` in `a`, `b_if` in `b` (no end ever in the machine's own
/// namespace).
fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> Result<()> {
    a.ip(&format!(
        "link add {a_if} type veth peer name {b_if} netns {}\n",
        b.name()
    ))
}

fn router(name: String) -> Result<Netns> {
    let ns = Netns::create(name)?;
    ns.sysctl("net/ipv4/ip_forward", "1")?;
    Ok(ns)
}

pub(super) fn build(config: &LabConfig) -> Result<Lab> {
    let stem = new_stem();
    let inet = router(format!("{stem}-inet"))?;
    let mut lab = Lab {
        sites: Vec::new(),
        server: None,
        inet,
        stem: stem.clone(),
    };
    if config.server {
        let netns = Netns::create(format!("{stem}-srv"))?;
        veth(&lab.inet, "srv", &netns, "eth0")?;
        lab.inet.ip(&format!(
            "addr add {INET_SERVER_SIDE}/{SERVER_PREFIX} dev srv\nlink set srv up\n"
        ))?;
        netns.ip(&format!(
            "addr add {SERVER_PRIMARY}/{SERVER_PREFIX} dev eth0\n\
             addr add {SERVER_ALTERNATE}/{SERVER_PREFIX} dev eth0\n\
             link set eth0 up\nroute add default via {INET_SERVER_SIDE}\n"
        ))?;
        lab.server = Some(Server {
            coturn: None,
            netns,
        });
    }
    for (k, sc) in config.sites.iter().enumerate() {
        let plan = SitePlan::new(k + 1, sc.nat, sc.hosts)?;
        let site = build_site(&lab, &stem, plan)?;
        lab.sites.push(site);
    }
    if let Some(server) = lab.server.as_mut() {
        let cfg = CoturnConfig::lab(SERVER_PRIMARY, SERVER_ALTERNATE);
        server.coturn = Some(Coturn::start(cfg, Some(&server.netns))?);
    }
    for (site, sc) in lab.sites.iter_mut().zip(&config.sites) {
        if let Some(cfg) = sc.impairment {
            site.delayer = Some(nfqueue::Running::start(&site.router, cfg)?);
        }
    }
    Ok(lab)
}

fn build_site(lab: &Lab, stem: &str, plan: SitePlan) -> Result<Site> {
    let i = plan.index;
    let outer = router(format!("{stem}-s{i}"))?;
    let inet_if = format!("s{i}");
    veth(&lab.inet, &inet_if, &outer, "wan")?;
    let mut inet_cmds = format!(
        "addr add {}/{WAN_PREFIX} dev {inet_if}\nlink set {inet_if} up\n",
        plan.inet_side
    );
    if plan.nat == NatType::None {
        // The public LAN is routed to the site's router.
        let _ = writeln!(
            inet_cmds,
            "route add {}/{} via {}",
            plan.lan_net, plan.lan_prefix, plan.wan
        );
    }
    lab.inet.ip(&inet_cmds)?;
    outer.ip(&format!(
        "addr add {}/{WAN_PREFIX} dev wan\nlink set wan up\nroute add default via {}\n",
        plan.wan, plan.inet_side
    ))?;

    // CGNAT: a home router behind the CGN, linked through the shared address space.
    let home = match plan.cgn {
        Some(cgn) => {
            let home = router(format!("{stem}-s{i}home"))?;
            veth(&outer, "lan", &home, "wan")?;
            outer.ip(&format!(
                "addr add {}/24 dev lan\nlink set lan up\n",
                cgn.cgn_side
            ))?;
            home.ip(&format!(
                "addr add {}/24 dev wan\nlink set wan up\nroute add default via {}\n",
                cgn.home_wan, cgn.cgn_side
            ))?;
            Some(home)
        }
        None => None,
    };

    // The innermost router's LAN is a bridge the hosts hang off.
    let inner = home.as_ref().unwrap_or(&outer);
    inner.ip(&format!(
        "link add lan type bridge\naddr add {}/{} dev lan\nlink set lan up\n",
        plan.gateway, plan.lan_prefix
    ))?;
    let mut hosts = Vec::new();
    for (j, addr) in plan.hosts.iter().enumerate() {
        let netns = Netns::create(format!("{stem}-s{i}h{}", j + 1))?;
        let port = format!("h{}", j + 1);
        veth(inner, &port, &netns, "eth0")?;
        inner.ip(&format!("link set {port} master lan\nlink set {port} up\n"))?;
        netns.ip(&format!(
            "addr add {addr}/{} dev eth0\nlink set eth0 up\nroute add default via {}\n",
            plan.lan_prefix, plan.gateway
        ))?;
        hosts.push(Host { netns, addr: *addr });
    }

    // NAT rules: layers()[0] is the router next to the hosts.
    let routers: Vec<&Netns> = match &home {
        Some(h) => vec![h, &outer],
        None => vec![&outer],
    };
    let layers = plan.nat.layers();
    if layers.len() != routers.len() {
        return Err(Error::Config(format!(
            "{}: {} NAT layers for {} routers",
            plan.nat,
            layers.len(),
            routers.len()
        )));
    }
    for (layer, ns) in layers.iter().zip(&routers) {
        nft_load(ns.name(), &ruleset(*layer))?;
    }
    Ok(Site {
        delayer: None,
        hosts,
        home,
        router: outer,
        plan,
    })
}
