//! `in8 net ...`: talk to the running node of this home (`in8 up`, `in8 chat`) over its
//! control socket — status, members, links, invitations, joins, revocation, broadcast,
//! topology — and `in8 net create`, which makes a new network while no node runs.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::{Value, json};

use super::invite::Show;
use super::{now, read_artifact_arg};
use crate::control;
use crate::home::Home;
use crate::output::Output;

/// Arguments of `in8 net`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: NetCommand,
    /// How long to wait for the node's answer (a join waits for its connection).
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration, global = true)]
    wait: Duration,
}

#[derive(Subcommand, Debug)]
enum NetCommand {
    /// Make this node the creator of a new network (no node may be running for this home).
    Create {
        /// Leave the network this home belongs to now.
        #[arg(long)]
        force: bool,
    },
    /// The node, its network, its links and views.
    Status,
    /// The members this node knows.
    Members,
    /// The overlay links and their paths.
    Links,
    /// Issue an invitation for the network; the running node admits the newcomer.
    Invite {
        /// How long it stays valid (e.g. 90s, 15m, 2h).
        #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// How many nodes may join with it.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        uses: u32,
        /// Name up to this many linked members as entry peers (0..=7).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=7))]
        entry_peers: u8,
        /// Rights for the newcomer: comma-separated of introduce, invite, relay, revoke
        /// [default: introduce,invite].
        #[arg(long, value_delimiter = ',')]
        grant: Vec<String>,
        /// Do not allow an RSVP if one-way connection fails.
        #[arg(long)]
        no_rsvp: bool,
        #[command(flatten)]
        show: Show,
    },
    /// Join the network of an invitation (its text, @FILE, or - for stdin).
    Join { invitation: String },
    /// Hand a joiner's RSVP to the node (its text, @FILE, or -).
    Rsvp { rsvp: String },
    /// Revoke a member (by id or a unique prefix); every member cuts it off.
    Revoke { member: String },
    /// Send a line of text to every member.
    Broadcast { text: String },
    /// Send a line of text to one member (linked on demand).
    Send { member: String, text: String },
    /// Show the topology policy, or switch to another while running.
    Topology { policy: Option<String> },
    /// Leave the network for good (the members are told) and stop the node.
    Leave,
    /// Stop the node (it stays a member and rejoins at the next `in8 up`).
    Stop,
}

fn artifact_text(arg: &str) -> Result<String> {
    let bytes = read_artifact_arg(arg)?;
    String::from_utf8(bytes).context("the artifact is not text: pass its text form")
}

pub(crate) fn run(a: &Args, home: &Home, out: &Output) -> Result<ExitCode> {
    if let NetCommand::Create { force } = &a.command {
        return create(home, out, *force);
    }
    let req = match &a.command {
        NetCommand::Create { .. } | NetCommand::Status => json!({"cmd": "status"}),
        NetCommand::Members => json!({"cmd": "members"}),
        NetCommand::Links => json!({"cmd": "links"}),
        NetCommand::Invite {
            ttl,
            uses,
            entry_peers,
            grant,
            no_rsvp,
            ..
        } => {
            if *ttl < Duration::from_secs(1) {
                bail!("--ttl must be at least 1s");
            }
            let mut r = json!({"cmd": "invite", "ttl_secs": ttl.as_secs(), "uses": uses,
                               "entry_peers": entry_peers, "no_rsvp": no_rsvp});
            if !grant.is_empty() {
                r["grant"] = json!(grant);
            }
            r
        }
        NetCommand::Join { invitation } => {
            json!({"cmd": "join", "invitation": artifact_text(invitation)?})
        }
        NetCommand::Rsvp { rsvp } => json!({"cmd": "rsvp", "rsvp": artifact_text(rsvp)?}),
        NetCommand::Revoke { member } => json!({"cmd": "revoke", "member": member}),
        NetCommand::Broadcast { text } => json!({"cmd": "broadcast", "text": text}),
        NetCommand::Send { member, text } => {
            json!({"cmd": "send", "member": member, "text": text})
        }
        NetCommand::Topology { policy } => {
            if let Some(p) = policy {
                crate::topology::parse(p)?;
            }
            json!({"cmd": "topology", "policy": policy})
        }
        NetCommand::Leave => json!({"cmd": "leave"}),
        NetCommand::Stop => json!({"cmd": "stop"}),
    };
    let answer = crate::runtime()?.block_on(control::request(home, req, a.wait))?;
    if let NetCommand::Invite { show, .. } = &a.command {
        let text = answer["text"].as_str().unwrap_or_default();
        let (bytes, _) = in8_artifact::text::decode_any(text.as_bytes())?;
        let signed = in8_artifact::SignedInvitation::decode(&bytes)?;
        super::invite::show_invitation(show, &signed, out)?;
        return Ok(ExitCode::SUCCESS);
    }
    if out.json() {
        let mut v = answer;
        if let Some(o) = v.as_object_mut() {
            o.remove("ok");
        }
        println!("{v}");
    } else if !out.quiet() {
        human(&a.command, &answer);
    }
    Ok(ExitCode::SUCCESS)
}

fn create(home: &Home, out: &Output, force: bool) -> Result<ExitCode> {
    let path = control::socket_path(home);
    let running =
        crate::runtime()?.block_on(async { tokio::net::UnixStream::connect(&path).await.is_ok() });
    if running {
        bail!("a node is running for this home: stop it first (`in8 net stop`)");
    }
    let (me, _) = home.identity()?;
    if home.has_network() && !force {
        let current = home.network(&me, now())?;
        bail!(
            "this home already belongs to network {}: pass --force to leave it and create a new one",
            current.membership().network
        );
    }
    let c = home.new_network(&me, now())?;
    out.event(
        json!({"event": "created", "network": c.membership().network.to_string(),
                     "creator": me.node_id().to_string()}),
    );
    out.note(format!(
        "created network {}; start the node with `in8 up`, then invite with `in8 net invite`",
        c.membership().network
    ));
    Ok(ExitCode::SUCCESS)
}

fn short(v: &Value) -> String {
    let s = v.as_str().unwrap_or("?");
    s.chars().take(10).collect()
}

/// Prints an answer for humans.
fn human(command: &NetCommand, v: &Value) {
    match command {
        NetCommand::Status => {
            println!("node      {}", v["node"].as_str().unwrap_or("?"));
            println!(
                "network   {} (credential depth {}, rights {})",
                v["network"].as_str().unwrap_or("?"),
                v["depth"],
                v["capabilities"]
            );
            println!(
                "nat       {}",
                v["nat"].as_str().unwrap_or("not classified")
            );
            println!("members   {} known, {} online", v["members"], v["online"]);
            println!(
                "links     {} ({} introduced, {} relayed); topology {} wants {}, {} up",
                v["links"],
                v["introduced"],
                v["relayed"],
                v["topology"].as_str().unwrap_or("?"),
                v["desired"],
                v["desired_up"]
            );
            let w = &v["views"];
            println!(
                "views     active {}/{}, passive {}/{}{}",
                w["active"],
                w["active_capacity"],
                w["passive"],
                w["passive_capacity"],
                if w["full"] == json!(true) {
                    " (full)"
                } else {
                    ""
                }
            );
        }
        NetCommand::Members => {
            let list = v["members"].as_array().cloned().unwrap_or_default();
            println!(
                "{:<10}  {:<7}  {:<15}  {:>5}  {:<6}  issuer",
                "member", "state", "nat", "depth", "linked"
            );
            for m in &list {
                println!(
                    "{:<10}  {:<7}  {:<15}  {:>5}  {:<6}  {}",
                    short(&m["id"]),
                    if m["online"] == json!(true) {
                        "online"
                    } else {
                        "offline"
                    },
                    m["nat"].as_str().unwrap_or("?"),
                    m["depth"],
                    if m["linked"] == json!(true) {
                        "yes"
                    } else {
                        "-"
                    },
                    short(&m["issuer"])
                );
            }
            println!("{} member(s)", list.len());
        }
        NetCommand::Links => {
            let list = v["links"].as_array().cloned().unwrap_or_default();
            for l in &list {
                let intro = match l["introducer"].as_str() {
                    Some(i) => format!("introduced by {}", short(&json!(i))),
                    None => "direct".into(),
                };
                println!(
                    "{:<10}  {:<5}  {} -> {}  {intro}",
                    short(&l["peer"]),
                    l["path"].as_str().unwrap_or("?"),
                    l["local"].as_str().unwrap_or("?"),
                    l["remote"].as_str().unwrap_or("?"),
                );
            }
            println!("{} link(s)", list.len());
        }
        NetCommand::Join { .. } => {
            if v["status"] == "phase1_failed" {
                eprintln!("phase 1 failed: {}", v["reason"].as_str().unwrap_or("?"));
                println!("{}", v["rsvp"].as_str().unwrap_or_default());
                eprintln!(
                    "send this RSVP to the inviter (`in8 net rsvp <it>` on its node); the node keeps waiting until {}",
                    v["expires"].as_str().unwrap_or("?")
                );
            } else {
                println!(
                    "member of network {} (joined through {}, path {})",
                    v["network"].as_str().unwrap_or("?"),
                    short(&v["via"]),
                    v["path"].as_str().unwrap_or("?")
                );
            }
        }
        NetCommand::Rsvp { .. } => println!(
            "RSVP accepted from {}: both sides punch now",
            short(&v["responder"])
        ),
        NetCommand::Revoke { .. } => println!("revoked {}", short(&v["revoked"])),
        NetCommand::Broadcast { .. } => println!("broadcast {} sent", v["id"]),
        NetCommand::Send { .. } => println!("sent to {}", short(&v["to"])),
        NetCommand::Topology { .. } => println!("topology {}", v["policy"].as_str().unwrap_or("?")),
        NetCommand::Leave => println!("left the network; the node stops"),
        NetCommand::Stop => println!("the node stops"),
        NetCommand::Create { .. } | NetCommand::Invite { .. } => {}
    }
}
