//! `in8 up`: a long-running node in its network. It restores the network from the home
//! directory (rejoining through its last-known members, no invitation needed), or
//! creates one on first use, or joins the network of `--join INVITATION`; then prints
//! the network's events (members, links and their paths, broadcasts, revocations) and
//! answers `in8 net` on its control socket until stopped (`in8 net stop`, Ctrl-C,
//! SIGTERM).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use in8_core::{NetEvent, NetUpdate, Node};
use serde_json::json;
use tokio::sync::Notify;

use super::invite::DEFAULT_PORT;
use crate::control::{self, commands::Ctx};
use crate::home::Home;
use crate::net_events::{render, unix_ms};
use crate::output::Output;
use crate::settings::{FileConfig, NodeArgs};

/// Arguments of `in8 up`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Join the network of this invitation (its text, @FILE, or - for stdin) once up.
    #[arg(long, value_name = "INVITATION")]
    join: Option<String>,
    /// The overlay policy: auto, mesh, star, tree, spanning-tree, dag, hierarchical,
    /// random, hybrid (`in8 net topology` changes it while running).
    #[arg(long, default_value = "auto")]
    topology: String,
    #[command(flatten)]
    node: NodeArgs,
}

/// Prints one event for humans (stdout) or as JSON.
fn print(out: &Output, e: &NetEvent) {
    let (v, line) = render(e);
    if out.json() {
        out.event(v);
    } else if !out.quiet() {
        println!("{line}");
    }
}

/// SIGINT (Ctrl-C) and SIGTERM (what `kill` and service managers send), listened for
/// from the start so that either ends the node in order at any point.
struct Signals {
    interrupt: Option<tokio::signal::unix::Signal>,
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Self {
            interrupt: signal(SignalKind::interrupt()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
        }
    }

    /// The next signal: the exit code it means and its name.
    async fn next(&mut self) -> (u8, &'static str) {
        async fn one(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            () = one(&mut self.interrupt) => (130, "interrupt"),
            () = one(&mut self.terminate) => (0, "terminate"),
        }
    }
}

pub(crate) fn run(a: &Args, home: &Home, out: &Output, file: &FileConfig) -> Result<ExitCode> {
    let topology = crate::topology::parse(&a.topology)?;
    let invitation = a
        .join
        .as_deref()
        .map(super::join::read_invitation)
        .transpose()?;
    let (me, _) = home.identity()?;
    in8_core::state::make_dir(home.dir())?;
    // This runtime handles Ctrl-C itself, so that the node closes its sessions in order.
    crate::runtime()?.block_on(async {
        let mut signals = Signals::new();
        let server = control::Server::bind(&control::socket_path(home)).await?;
        let existed = home.has_network();
        let mut cfg = crate::settings::node_config(home, file, &a.node, DEFAULT_PORT)?;
        cfg.identity = me;
        cfg.network.topology = topology;
        let node = Node::start(cfg).await?;
        let mut events = node.events();
        let credential = node.credential().await?;
        out.event(json!({
            "event": "up",
            "node": node.node_id().to_string(),
            "network": credential.membership().network.to_string(),
            "created": !existed,
            "candidates": node.candidates().iter().map(ToString::to_string).collect::<Vec<_>>(),
            "control": server.path().display().to_string(),
            "topology": node.topology().await?,
            "t": unix_ms(),
        }));
        out.note(format!(
            "node {} up in network {}{} ({} address(es)); `in8 net status` talks to it",
            node.node_id().short(),
            credential.membership().network,
            if existed {
                ", rejoining through its last-known members"
            } else {
                " (created)"
            },
            node.candidates().len()
        ));
        let ctx = Ctx {
            node: node.clone(),
            out: *out,
            stop: Arc::new(Notify::new()),
        };
        let serving = {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                loop {
                    server.serve_next(&ctx).await;
                }
            })
        };
        let result = run_node(&ctx, &mut events, invitation.as_ref(), &mut signals).await;
        serving.abort();
        let _ = serving.await;
        node.close().await;
        result
    })
}

async fn run_node(
    ctx: &Ctx,
    events: &mut in8_core::NetEvents,
    invitation: Option<&in8_artifact::SignedInvitation>,
    signals: &mut Signals,
) -> Result<ExitCode> {
    let out = &ctx.out;
    let stopping = |signal: Option<&str>| {
        out.event(json!({"event": "stopping", "signal": signal, "t": unix_ms()}));
    };
    if let Some(inv) = invitation {
        let v = tokio::select! {
            v = control::commands::join_network(ctx, inv) => v?,
            () = ctx.stop.notified() => {
                stopping(None);
                return Ok(ExitCode::SUCCESS);
            }
            (code, name) = signals.next() => {
                stopping(Some(name));
                return Ok(ExitCode::from(code));
            }
        };
        if v["status"] == "phase1_failed" {
            let rsvp = v["rsvp"].as_str().unwrap_or_default();
            out.event(
                json!({"event": "phase1_failed", "reason": v["reason"], "rsvp": rsvp,
                             "expires": v["expires"], "t": unix_ms()}),
            );
            if !out.json() {
                eprintln!("phase 1 failed: {}", v["reason"].as_str().unwrap_or("?"));
                println!("{rsvp}");
                eprintln!(
                    "send this RSVP to the inviter (`in8 net rsvp <it>` on its node); this node waits"
                );
            }
        } else {
            let mut e = v.clone();
            if let Some(o) = e.as_object_mut() {
                o.remove("ok");
                o.remove("status");
                o.insert("event".into(), json!("joined"));
            }
            out.event(e);
            out.note(format!(
                "joined network {} through {}",
                v["network"].as_str().unwrap_or("?"),
                v["via"].as_str().unwrap_or("?")
            ));
        }
    }
    loop {
        tokio::select! {
            u = events.next() => match u {
                Some(NetUpdate::Event(e)) => {
                    print(out, &e);
                    if matches!(e, NetEvent::SelfRevoked) {
                        return Ok(ExitCode::from(crate::output::EXIT_INVALID));
                    }
                }
                Some(NetUpdate::Lagged(n)) => {
                    out.event(json!({"event": "lagged", "missed": n, "t": unix_ms()}));
                    out.note(format!("({n} events not shown: printing fell behind)"));
                }
                None => anyhow::bail!("the node stopped"),
            },
            () = ctx.stop.notified() => {
                stopping(None);
                return Ok(ExitCode::SUCCESS);
            }
            (code, name) = signals.next() => {
                stopping(Some(name));
                return Ok(ExitCode::from(code));
            }
        }
    }
}
