//! `in8 demo`: the main job on one machine with no setup and no servers. Starts N nodes on
//! loopback, connects them through invitations — every newcomer joins the first node in
//! phase 1, then a node behind an in-process filtering shim (dropping unsolicited packets
//! like a port-restricted NAT) invites another, so phase 1 fails, the RSVP goes back and
//! phase 2 connects — exchanges a message on every connection and prints a summary.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use in8_artifact::{Identity, text};
use in8_core::{Config, Connection, InboundFilter, InviteOptions, JoinEvent, Node, Phase};
use in8_transport::ChannelOptions;
use serde_json::json;

use crate::connect::describe;
use crate::output::Output;

/// Arguments of `in8 demo`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// How many nodes to start (2..=32).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(2..=32))]
    peers: u8,
    /// Give up on any single step after this long.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// One established link, as the summary shows it.
struct Link {
    joiner: usize,
    inviter: usize,
    joiner_side: Connection,
    inviter_side: Connection,
    rsvp_bytes: Option<usize>,
    message_ms: f64,
}

async fn start(i: usize, filtered: bool) -> Result<Node> {
    let mut cfg = Config::loopback(Identity::generate(&mut rand::rng()));
    if filtered {
        cfg.inbound_filter = Some(InboundFilter::AddressAndPortDependent);
    }
    // One-way establishment on loopback answers within milliseconds; give up on it after
    // 2 s so the RSVP part of the demo does not wait for the default.
    cfg.ice.agent.connect_timeout = Duration::from_secs(2);
    Node::start(cfg)
        .await
        .with_context(|| format!("starting node{i}"))
}

/// The inviter accepts a channel and answers the joiner's greeting.
async fn greet(joiner: &Connection, inviter: &Connection, names: (&str, &str)) -> Result<f64> {
    let t = Instant::now();
    let ch = joiner
        .open_channel(ChannelOptions::reliable("demo"))
        .await?;
    ch.send(format!("hello {}, this is {}", names.1, names.0).into_bytes())
        .await?;
    let theirs = inviter.accept_channel().await?;
    let got = theirs
        .recv()
        .await?
        .ok_or_else(|| anyhow!("channel closed"))?;
    theirs
        .send(format!("welcome {} (got {} bytes)", names.0, got.len()).into_bytes())
        .await?;
    ch.recv().await?.ok_or_else(|| anyhow!("no answer"))?;
    Ok(t.elapsed().as_secs_f64() * 1000.0)
}

async fn link(
    nodes: &[Node],
    joiner: usize,
    inviter: usize,
    out: &Output,
    step: usize,
) -> Result<Link> {
    let names = (format!("node{joiner}"), format!("node{inviter}"));
    let mut invite = nodes[inviter].invite(InviteOptions::default()).await?;
    let size = invite.invitation().to_bytes().len();
    out.note(format!(
        "{step}. {} invites {} ({size}-byte invitation, handed over in memory)",
        names.1, names.0
    ));
    let mut join = nodes[joiner].join(invite.invitation()).await?;
    let mut rsvp_bytes = None;
    let joiner_side = loop {
        match join.next().await {
            Some(JoinEvent::Connected(c)) => break c,
            Some(JoinEvent::Phase1Failed { reason, rsvp }) => {
                let t = text::encode_text(rsvp.to_bytes());
                rsvp_bytes = Some(rsvp.to_bytes().len());
                out.note(format!(
                    "   phase 1 failed ({reason}); {} hands its RSVP back ({} bytes: {}…)",
                    names.0,
                    rsvp.to_bytes().len(),
                    &t[..t.len().min(24)]
                ));
                out.event(
                    json!({"event": "phase1_failed", "joiner": names.0, "inviter": names.1,
                                 "reason": reason.to_string(), "rsvp": t}),
                );
                nodes[inviter].accept_rsvp(&rsvp).await?;
            }
            Some(JoinEvent::Failed(e)) => return Err(e.into()),
            Some(_) => {}
            None => bail!("{} stopped", names.0),
        }
    };
    let inviter_side = invite.joined().await?;
    let message_ms = greet(&joiner_side, &inviter_side, (&names.0, &names.1)).await?;
    let p = joiner_side.path();
    out.note(format!(
        "   connected: {}, {} path, rtt {}, {:.0} ms; greeting answered in {message_ms:.1} ms",
        joiner_side.phase(),
        p.kind.sdp_name(),
        p.rtt.map_or("?".into(), |r| format!(
            "{:.2} ms",
            r.as_secs_f64() * 1000.0
        )),
        joiner_side.elapsed().as_secs_f64() * 1000.0
    ));
    out.event(
        json!({"event": "link", "joiner": names.0, "inviter": names.1,
                     "joiner_side": describe(&joiner_side), "inviter_side": describe(&inviter_side),
                     "message_ms": message_ms}),
    );
    Ok(Link {
        joiner,
        inviter,
        joiner_side,
        inviter_side,
        rsvp_bytes,
        message_ms,
    })
}

fn print_summary(nodes: &[Node], links: &[Link], total: Duration) {
    println!();
    println!(
        "summary: {} nodes, {} connections, {:.2} s",
        nodes.len(),
        links.len(),
        total.as_secs_f64()
    );
    println!(
        "  {:<7} {:<7} {:<8} {:<6} {:>9} {:>9} {:>9}  peer ids (as each side authenticated them)",
        "joiner", "inviter", "phase", "path", "rtt ms", "setup ms", "msg ms",
    );
    for l in links {
        let p = l.joiner_side.path();
        println!(
            "  {:<7} {:<7} {:<8} {:<6} {:>9} {:>9.1} {:>9.1}  {} <-> {}{}",
            format!("node{}", l.joiner),
            format!("node{}", l.inviter),
            l.joiner_side.phase().to_string(),
            p.kind.sdp_name(),
            p.rtt
                .map_or("?".into(), |r| format!("{:.2}", r.as_secs_f64() * 1000.0)),
            l.joiner_side.elapsed().as_secs_f64() * 1000.0,
            l.message_ms,
            l.inviter_side.peer().short(),
            l.joiner_side.peer().short(),
            l.rsvp_bytes
                .map(|b| format!("  (after a {b}-byte RSVP)"))
                .unwrap_or_default()
        );
    }
}

pub(crate) fn run(a: &Args, out: &Output) -> Result<ExitCode> {
    crate::run_async(async {
        let t0 = Instant::now();
        let n = usize::from(a.peers);
        let filtered = n - 1;
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            nodes.push(start(i, i == filtered).await?);
        }
        out.note(format!(
            "in8 demo: {n} nodes in this process on loopback, no servers"
        ));
        for (i, node) in nodes.iter().enumerate() {
            let addr = node.candidates().first().map(|c| c.addr.to_string());
            out.note(format!(
                "  node{i}  {}  {}{}",
                node.node_id().short(),
                addr.clone().unwrap_or_default(),
                if i == filtered {
                    "  (behind a filtering shim: drops unsolicited packets)"
                } else {
                    ""
                }
            ));
            out.event(json!({"event": "node", "name": format!("node{i}"), "id": node.node_id().to_string(),
                             "addr": addr, "filtered": i == filtered}));
        }
        let mut links = Vec::new();
        let mut step = 1;
        for j in 1..n {
            let l = tokio::time::timeout(a.timeout, link(&nodes, j, 0, out, step))
                .await
                .map_err(|_| anyhow!("node{j} joining node0 took longer than {:?}", a.timeout))??;
            links.push(l);
            step += 1;
        }
        // The filtered node invites another: one-way establishment cannot pass its filter.
        let joiner = if n > 2 { 1 } else { 0 };
        let l = tokio::time::timeout(a.timeout, link(&nodes, joiner, filtered, out, step))
            .await
            .map_err(|_| anyhow!("the RSVP link took longer than {:?}", a.timeout))??;
        if l.joiner_side.phase() != Phase::Two {
            bail!("the filtered inviter was reached in phase 1: the filtering shim did not filter");
        }
        links.push(l);
        let total = t0.elapsed();
        out.event(json!({"event": "summary", "nodes": n, "connections": links.len(),
                         "phase1": links.iter().filter(|l| l.joiner_side.phase() == Phase::One).count(),
                         "phase2": links.iter().filter(|l| l.joiner_side.phase() == Phase::Two).count(),
                         "seconds": total.as_secs_f64()}));
        if !out.json() {
            print_summary(&nodes, &links, total);
        }
        for l in &links {
            l.joiner_side.close().await.ok();
        }
        for node in &nodes {
            node.close().await;
        }
        Ok(ExitCode::SUCCESS)
    })
}
