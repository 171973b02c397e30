//! `in8 demo`: the main job on one machine with no setup and no servers — a network forms.
//! Starts N nodes on loopback; the first creates a network, every newcomer joins with one
//! invitation (the later ones issued by members, not the creator, and naming entry
//! peers); some nodes sit behind an in-process filtering shim (it drops unsolicited
//! packets as a port-restricted NAT does), so other members reach them only through
//! introductions. Then it shows membership converging, the overlay (who links to whom, by
//! which path, introduced by whom), a broadcast reaching every member, and a member being
//! revoked and cut off everywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use in8_artifact::{Identity, NodeId};
use in8_core::{Config, InboundFilter, InviteOptions, JoinEvent, NetEvent, NetUpdate, Node};
use in8_ice::nat::{Filtering, Mapping, NatClass, PortAllocation};
use serde_json::json;

use crate::output::Output;

/// Arguments of `in8 demo`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// How many nodes to start (2..=32).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(2..=32))]
    peers: u8,
    /// The overlay policy: auto, mesh, star, tree, spanning-tree, dag, hierarchical,
    /// random, hybrid.
    #[arg(long, default_value = "auto")]
    topology: String,
    /// Give up on any single step after this long.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

fn class(filtering: Filtering) -> NatClass {
    NatClass {
        mapping: Some(if filtering == Filtering::EndpointIndependent {
            Mapping::NoNat
        } else {
            Mapping::EndpointIndependent
        }),
        filtering: Some(filtering),
        ports: PortAllocation::Preserving,
    }
}

/// Which nodes sit behind the filtering shim: every third, never the creator.
fn filtered(i: usize) -> bool {
    i % 3 == 2
}

async fn start(i: usize, topology: &in8_core::Topology) -> Result<Node> {
    let mut cfg = Config::loopback(Identity::generate(&mut rand::rng()));
    if filtered(i) {
        cfg.inbound_filter = Some(InboundFilter::AddressAndPortDependent);
        cfg.assume_nat = Some(class(Filtering::AddressAndPortDependent));
    } else {
        cfg.assume_nat = Some(class(Filtering::EndpointIndependent));
    }
    cfg.ice.agent.connect_timeout = Duration::from_secs(3);
    cfg.network.topology = topology.clone();
    cfg.network.dial_timeout = Duration::from_secs(3);
    // A demo's network is young and small: announce often and dial the policy's links a
    // few more at a time, so the picture settles in seconds.
    cfg.network.announce_interval = Duration::from_secs(2);
    cfg.network.gossip.max_pending = 8;
    cfg.network.gossip.repair_interval = Duration::from_millis(200);
    Node::start(cfg)
        .await
        .with_context(|| format!("starting node{i}"))
}

/// Names nodes `node0`, `node1`, ... by id.
struct Names(BTreeMap<NodeId, String>);

impl Names {
    fn of(&self, id: &NodeId) -> String {
        self.0.get(id).cloned().unwrap_or_else(|| id.short())
    }
}

/// Waits until `node` is a member of `network`.
async fn member_of(
    events: &mut in8_core::NetEvents,
    network: in8_artifact::NetworkId,
) -> Result<()> {
    while let Some(u) = events.next().await {
        if let NetUpdate::Event(NetEvent::Member { network: n, .. }) = u
            && n == network
        {
            return Ok(());
        }
    }
    bail!("the node stopped")
}

/// Node `joiner` joins with an invitation from `inviter` (naming up to two entry peers).
async fn join(
    nodes: &[Node],
    joiner: usize,
    inviter: usize,
    names: &Names,
    out: &Output,
    step: usize,
) -> Result<()> {
    let network = nodes[inviter].network_id().await?;
    let options = InviteOptions {
        entry_peers: 2,
        ..InviteOptions::default()
    };
    let invite = nodes[inviter].invite(options).await?;
    let inv = invite.invitation().invitation().clone();
    let entries: Vec<String> = inv.entry_peers.iter().map(|e| names.of(&e.id)).collect();
    let mut events = nodes[joiner].events();
    let t = Instant::now();
    let mut j = nodes[joiner].join(invite.invitation()).await?;
    let conn = loop {
        match j.next().await {
            Some(JoinEvent::Connected(c)) => break c,
            Some(JoinEvent::Failed(e)) => return Err(e.into()),
            Some(JoinEvent::Phase1Failed { reason, .. }) => {
                bail!("node{joiner} could not reach node{inviter} one-way: {reason}")
            }
            Some(_) => {}
            None => bail!("node{joiner} stopped"),
        }
    };
    // The join may land at an entry peer instead of the issuer: the newcomer's membership
    // is what counts.
    member_of(&mut events, network).await?;
    let cred = nodes[joiner].credential().await?;
    let mut chain = vec![names.of(&cred.membership().member)];
    let mut c = cred.membership().parent.as_deref();
    while let Some(p) = c {
        chain.push(names.of(&p.membership().member));
        c = p.membership().parent.as_deref();
    }
    chain.reverse();
    let by = names.of(&conn.peer());
    out.note(format!(
        "  {step:>2}. node{joiner} joins with {}'s invitation ({} bytes{}) via {by}: {} in {:.0} ms; credential {}",
        names.of(&inv.issuer),
        invite.invitation().to_bytes().len(),
        if entries.is_empty() { String::new() } else { format!(", entry peers {}", entries.join(" ")) },
        conn.phase(),
        t.elapsed().as_secs_f64() * 1000.0,
        chain.join(" → "),
    ));
    out.event(
        json!({"event": "joined", "node": format!("node{joiner}"), "inviter": names.of(&inv.issuer),
                     "via": by, "entry_peers": entries, "phase": conn.phase().to_string(),
                     "ms": t.elapsed().as_secs_f64() * 1000.0, "chain": chain}),
    );
    Ok(())
}

/// Polls until every node knows every other as an online member.
async fn converge(nodes: &[Node], limit: Duration) -> Result<Duration> {
    let t = Instant::now();
    loop {
        let mut all = true;
        for n in nodes {
            let online = n.members().await?.iter().filter(|m| m.online).count();
            all &= online + 1 == nodes.len();
        }
        if all {
            return Ok(t.elapsed());
        }
        if t.elapsed() > limit {
            bail!("membership did not converge within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The overlay's links, as a set of (a, b) pairs with a < b, from every node's view.
async fn overlay(nodes: &[Node]) -> Result<BTreeMap<(usize, usize), (String, Option<NodeId>)>> {
    let index: BTreeMap<NodeId, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.node_id(), i))
        .collect();
    let mut out = BTreeMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for (peer, info) in n.links().await? {
            let Some(&j) = index.get(&peer) else { continue };
            let key = (i.min(j), i.max(j));
            let entry = out
                .entry(key)
                .or_insert((info.path.kind.sdp_name().to_owned(), None));
            if info.introducer.is_some() {
                entry.1 = info.introducer;
            }
        }
    }
    Ok(out)
}

/// Waits until every link the topology policy wants is up on every node (or `limit`);
/// returns how long it took.
async fn settle(nodes: &[Node], limit: Duration) -> Result<Duration> {
    let t = Instant::now();
    loop {
        let mut done = true;
        for n in nodes {
            done &= n.desired_links().await?.iter().all(|(_, up)| *up);
        }
        if done {
            return Ok(t.elapsed());
        }
        if t.elapsed() > limit {
            bail!("the overlay did not take the policy's shape within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn run(a: &Args, out: &Output) -> Result<ExitCode> {
    let topology = crate::topology::parse(&a.topology)?;
    crate::run_async(async {
        let t0 = Instant::now();
        let n = usize::from(a.peers);
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            nodes.push(start(i, &topology).await?);
        }
        let names = Names(
            nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (n.node_id(), format!("node{i}")))
                .collect(),
        );
        out.note(format!(
            "in8 demo: {n} nodes in this process on loopback, no servers, topology {}",
            a.topology
        ));
        for (i, node) in nodes.iter().enumerate() {
            let addr = node
                .candidates()
                .first()
                .map(|c| c.addr.to_string())
                .unwrap_or_default();
            out.note(format!(
                "  node{i}  {}  {addr}{}",
                node.node_id().short(),
                if i == 0 {
                    "  creates the network"
                } else if filtered(i) {
                    "  behind a filtering shim: reachable only through introductions"
                } else {
                    ""
                }
            ));
            out.event(json!({"event": "node", "name": format!("node{i}"), "id": node.node_id().to_string(),
                             "addr": addr, "filtered": filtered(i)}));
        }
        out.note("joins: one invitation each; from the second on, issued by a member");
        for j in 1..n {
            // An unfiltered member invites (one-way establishment must reach it): the
            // creator first, then the most recent unfiltered member.
            let inviter = (0..j).rev().find(|i| !filtered(*i)).unwrap_or(0);
            tokio::time::timeout(a.timeout, join(&nodes, j, inviter, &names, out, j))
                .await
                .map_err(|_| anyhow!("node{j} joining took longer than {:?}", a.timeout))??;
        }
        let converged = converge(&nodes, a.timeout).await?;
        out.note(format!(
            "membership: every node knows all {} others, {:.1} s after the last join",
            n - 1,
            converged.as_secs_f64()
        ));
        out.event(
            json!({"event": "converged", "members": n - 1, "seconds": converged.as_secs_f64()}),
        );
        let settled = settle(&nodes, a.timeout).await?;
        let links = overlay(&nodes).await?;
        let policy = nodes[0].topology().await?;
        out.note(format!(
            "overlay ({policy}): {} links, every one the policy wants up {:.1} s later",
            links.len(),
            settled.as_secs_f64()
        ));
        for ((x, y), (path, intro)) in &links {
            let how = match intro {
                Some(i) => format!("introduced by {}", names.of(i)),
                None => "direct".to_owned(),
            };
            out.note(format!("  node{x} — node{y}  {path:<5} {how}"));
            out.event(json!({"event": "link", "a": format!("node{x}"), "b": format!("node{y}"), "path": path,
                             "introducer": intro.map(|i| names.of(&i))}));
        }
        let introduced = links.values().filter(|(_, i)| i.is_some()).count();
        // A broadcast from the newest member reaches everyone.
        let origin = n - 1;
        let mut subs: Vec<_> = nodes.iter().map(Node::events).collect();
        let payload = b"hello, network".to_vec();
        let t = Instant::now();
        nodes[origin].broadcast(payload.clone()).await?;
        let mut reached = 0;
        let mut max_hops = 0;
        for (i, s) in subs.iter_mut().enumerate() {
            if i == origin {
                continue;
            }
            let got = tokio::time::timeout(a.timeout, async {
                while let Some(u) = s.next().await {
                    if let NetUpdate::Event(NetEvent::Broadcast {
                        payload: p, hops, ..
                    }) = u
                        && p == payload
                    {
                        return Some(hops);
                    }
                }
                None
            })
            .await
            .ok()
            .flatten();
            if let Some(h) = got {
                reached += 1;
                max_hops = max_hops.max(h);
            }
        }
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        out.note(format!("broadcast: node{origin} says \"hello, network\" → reached {reached}/{} members in {ms:.0} ms ({max_hops} hops at most)", n - 1));
        out.event(json!({"event": "broadcast", "origin": format!("node{origin}"), "reached": reached, "of": n - 1, "ms": ms, "max_hops": max_hops}));
        if reached + 1 != n {
            bail!("the broadcast reached {reached} of {} members", n - 1);
        }
        // The creator revokes the newest member; everyone cuts it off.
        let victim = nodes[origin].node_id();
        let mut subs: Vec<_> = nodes.iter().map(Node::events).collect();
        let t = Instant::now();
        nodes[0].revoke_member(victim).await?;
        let mut cut = BTreeSet::new();
        for (i, s) in subs
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| *i != 0 && *i != origin)
        {
            let seen = tokio::time::timeout(a.timeout, async {
                while let Some(u) = s.next().await {
                    if let NetUpdate::Event(NetEvent::MemberRevoked(m)) = u
                        && m == victim
                    {
                        return true;
                    }
                }
                false
            })
            .await
            .unwrap_or(false);
            if seen {
                cut.insert(i);
            }
        }
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        out.note(format!(
            "revoke: node0 revokes node{origin} → cut off by {}/{} members in {ms:.0} ms",
            cut.len(),
            n - 2
        ));
        out.event(json!({"event": "revoked", "member": format!("node{origin}"), "cut_off_by": cut.len(), "of": n - 2, "ms": ms}));
        let total = t0.elapsed();
        out.event(
            json!({"event": "summary", "nodes": n, "links": links.len(), "introduced": introduced,
                         "broadcast_reached": reached, "revoked_everywhere": cut.len() + 2 == n,
                         "seconds": total.as_secs_f64()}),
        );
        out.note(format!(
            "summary: {n} nodes, {} links ({introduced} through introductions), one network, {:.1} s",
            links.len(),
            total.as_secs_f64()
        ));
        for node in &nodes {
            node.close().await;
        }
        if cut.len() + 2 != n {
            bail!("the revocation reached {} of {} members", cut.len(), n - 2);
        }
        Ok(ExitCode::SUCCESS)
    })
}
