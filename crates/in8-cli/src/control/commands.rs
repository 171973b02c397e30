//! What a running node does for each control request (`in8 net ...`), and the steps
//! `in8 up --join` shares with `in8 net join`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use in8_artifact::{Capabilities, NodeId, SignedInvitation, text};
use in8_core::{InviteEvent, InviteOptions, JoinEvent, NetEvent, NetUpdate, Node};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::net_events::{member_json, path_json, resolve_member, unix_ms, views_json};
use crate::output::Output;

/// Most entry peers an invitation can name.
const MAX_ENTRY_PEERS: u64 = 7;
/// How long a joiner waits, once connected, for its membership credential.
const MEMBERSHIP_WAIT: Duration = Duration::from_secs(20);
/// Longest broadcast or message payload taken from the control socket.
const MAX_PAYLOAD: usize = 60 * 1024;

/// What the handlers share: the node, where events are printed, and the way to stop.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) node: Node,
    pub(crate) out: Output,
    /// Notified when a request asks the node to stop (`stop`, `leave`).
    pub(crate) stop: Arc<Notify>,
}

fn str_field<'a>(req: &'a Value, name: &str) -> Result<&'a str> {
    req[name]
        .as_str()
        .ok_or_else(|| anyhow!("the request needs a string field {name:?}"))
}

/// Answers one request.
pub(crate) async fn handle(ctx: &Ctx, req: &Value) -> Result<Value> {
    let node = &ctx.node;
    let cmd = req["cmd"]
        .as_str()
        .ok_or_else(|| anyhow!("the request has no \"cmd\""))?;
    match cmd {
        "status" => status(node).await,
        "members" => {
            let members = node.members().await?;
            Ok(json!({"members": members.iter().map(member_json).collect::<Vec<_>>()}))
        }
        "links" => {
            let links = node.links().await?;
            let list: Vec<Value> = links
                .iter()
                .map(|(peer, info)| {
                    let mut v = path_json(&info.path);
                    if let Some(o) = v.as_object_mut() {
                        o.insert("peer".into(), json!(peer.to_string()));
                        o.insert(
                            "introducer".into(),
                            json!(info.introducer.map(|i| i.to_string())),
                        );
                        o.insert("join".into(), json!(info.invite.is_some()));
                    }
                    v
                })
                .collect();
            Ok(json!({"links": list}))
        }
        "invite" => invite(ctx, req).await,
        "join" => {
            let inv = decode_invitation(str_field(req, "invitation")?)?;
            join_network(ctx, &inv).await
        }
        "rsvp" => {
            let (bytes, _) = text::decode_any(str_field(req, "rsvp")?.trim().as_bytes())
                .context("cannot decode the RSVP")?;
            let rsvp = in8_artifact::SignedRsvp::decode(&bytes).context("not an RSVP")?;
            let who = node.accept_rsvp(&rsvp).await?;
            Ok(json!({"responder": who.to_string()}))
        }
        "revoke" => {
            let member = member_arg(node, str_field(req, "member")?).await?;
            node.revoke_member(member).await?;
            Ok(json!({"revoked": member.to_string()}))
        }
        "broadcast" => {
            let payload = payload_arg(req)?;
            // The time it was sent (receivers' events carry theirs: the latency).
            let t = unix_ms();
            let id = node.broadcast(payload).await?;
            Ok(json!({"id": id, "t": t}))
        }
        "send" => {
            let member = member_arg(node, str_field(req, "member")?).await?;
            node.send_to(member, payload_arg(req)?).await?;
            Ok(json!({"to": member.to_string()}))
        }
        "topology" => {
            if let Some(name) = req["policy"].as_str() {
                node.set_topology(crate::topology::parse(name)?).await?;
            }
            Ok(json!({"policy": node.topology().await?}))
        }
        "leave" => {
            node.leave().await?;
            ctx.stop.notify_one();
            Ok(json!({"left": true}))
        }
        "stop" => {
            ctx.stop.notify_one();
            Ok(json!({"stopping": true}))
        }
        other => bail!(
            "unknown command {other:?}: use status, members, links, invite, join, rsvp, revoke, broadcast, send, topology, leave or stop"
        ),
    }
}

fn payload_arg(req: &Value) -> Result<Vec<u8>> {
    let text = str_field(req, "text")?;
    if text.len() > MAX_PAYLOAD {
        bail!(
            "the text is {} bytes: at most {MAX_PAYLOAD} go in one message",
            text.len()
        );
    }
    Ok(text.as_bytes().to_vec())
}

async fn member_arg(node: &Node, name: &str) -> Result<NodeId> {
    let known: Vec<NodeId> = node.members().await?.iter().map(|m| m.id).collect();
    resolve_member(name, &known)
}

/// The node's state in one object (`in8 net status`).
pub(crate) async fn status(node: &Node) -> Result<Value> {
    let members = node.members().await?;
    let online = members.iter().filter(|m| m.online).count();
    let links = node.links().await?;
    let desired = node.desired_links().await?;
    let views = node.views().await?;
    let stats = node.net_stats().await?;
    let punches: serde_json::Map<String, Value> = [
        in8_gossip::NatClass::Unknown,
        in8_gossip::NatClass::Public,
        in8_gossip::NatClass::FullCone,
        in8_gossip::NatClass::Restricted,
        in8_gossip::NatClass::PortRestricted,
        in8_gossip::NatClass::Symmetric,
    ]
    .into_iter()
    .map(|c| {
        let p = stats.of(c);
        (
            crate::net_events::nat_name(c).to_owned(),
            json!({"started": p.started, "linked": p.linked, "failed": p.failed}),
        )
    })
    .collect();
    let credential = node.credential().await?;
    let c = credential.membership();
    Ok(json!({
        "node": node.node_id().to_string(),
        "network": c.network.to_string(),
        "depth": credential.depth(),
        "capabilities": crate::net_events::rights(c.capabilities),
        "expires": c.expires.to_string(),
        "nat": node.nat().map(|n| crate::cmd::nat::verdict(&n).0),
        "candidates": node.candidates().iter().map(ToString::to_string).collect::<Vec<_>>(),
        "topology": node.topology().await?,
        "members": members.len(),
        "online": online,
        "links": links.len(),
        "introduced": links.iter().filter(|(_, i)| i.introducer.is_some()).count(),
        "relayed": links.iter().filter(|(_, i)| i.path.kind == in8_artifact::CandidateKind::Relay).count(),
        "desired": desired.len(),
        "desired_up": desired.iter().filter(|(_, up)| *up).count(),
        "views": views_json(&views, online),
        "punches": punches,
        "t": unix_ms(),
    }))
}

fn decode_invitation(t: &str) -> Result<SignedInvitation> {
    let (bytes, _) =
        text::decode_any(t.trim().as_bytes()).context("cannot decode the invitation")?;
    SignedInvitation::decode(&bytes).context("not an invitation")
}

fn capability(name: &str) -> Result<Capabilities> {
    Ok(match name {
        "introduce" => Capabilities::INTRODUCE,
        "invite" => Capabilities::INVITE,
        "relay" => Capabilities::RELAY,
        "revoke" => Capabilities::REVOKE,
        _ => bail!("unknown right {name:?}: use introduce, invite, relay or revoke"),
    })
}

/// Issues an invitation this node hosts; its progress is printed as it happens.
async fn invite(ctx: &Ctx, req: &Value) -> Result<Value> {
    let mut options = InviteOptions::default();
    if let Some(s) = req["ttl_secs"].as_u64() {
        if s == 0 {
            bail!("the invitation's validity must be at least 1s");
        }
        options.ttl = Duration::from_secs(s);
    }
    if let Some(u) = req["uses"].as_u64() {
        options.uses = u32::try_from(u)
            .ok()
            .filter(|u| (1..=1_000_000).contains(u))
            .ok_or_else(|| anyhow!("uses must be 1..=1000000"))?;
    }
    if let Some(e) = req["entry_peers"].as_u64() {
        if e > MAX_ENTRY_PEERS {
            bail!("an invitation names at most {MAX_ENTRY_PEERS} entry peers");
        }
        options.entry_peers = usize::try_from(e).unwrap_or(0);
    }
    if let Some(list) = req["grant"].as_array() {
        options.capabilities = Capabilities::NONE;
        for g in list {
            let name = g.as_str().ok_or_else(|| anyhow!("grant lists names"))?;
            options.capabilities = options.capabilities.with(capability(name)?);
        }
    }
    if req["no_rsvp"] == json!(true) {
        options.allow_rsvp = false;
    }
    let invite = ctx.node.invite(options).await?;
    let signed = invite.invitation().clone();
    let inv = signed.invitation();
    let answer = json!({
        "text": text::encode_text(signed.to_bytes()),
        "invite_id": inv.invite_id().to_string(),
        "expires": inv.expires.to_string(),
        "uses": inv.uses,
        "entry_peers": inv.entry_peers.iter().map(|e| e.id.to_string()).collect::<Vec<_>>(),
    });
    tokio::spawn(follow_invite(invite, ctx.out));
    Ok(answer)
}

/// Prints an invitation's progress until it ends. Joined connections are let go at once:
/// the link stays an overlay link, kept or closed by the topology.
async fn follow_invite(mut invite: in8_core::Invite, out: Output) {
    let id = invite.invitation().invitation().invite_id().to_string();
    while let Some(ev) = invite.next().await {
        match ev {
            InviteEvent::Joined(c) => {
                out.event(
                    json!({"event": "invitee_joined", "invite_id": id, "peer": c.peer().to_string(),
                                 "phase": c.phase().to_string(), "t": unix_ms()}),
                );
                out.note(format!(
                    "{} joined with invitation {id} ({})",
                    c.peer().short(),
                    c.phase()
                ));
            }
            InviteEvent::JoinFailed { remote, error } => {
                out.event(
                    json!({"event": "join_failed", "invite_id": id, "remote": remote.to_string(),
                                 "reason": error.to_string(), "t": unix_ms()}),
                );
                out.note(format!("a join from {remote} failed: {error}"));
            }
            InviteEvent::Phase2Started { responder } => {
                out.event(json!({"event": "phase2_started", "invite_id": id,
                                 "responder": responder.to_string(), "t": unix_ms()}));
            }
            InviteEvent::Ended { reason } => {
                out.event(json!({"event": "invitation_ended", "invite_id": id,
                                 "reason": reason.to_string(), "t": unix_ms()}));
                out.note(format!("invitation {id} ended: {reason}"));
                return;
            }
            _ => {}
        }
    }
}

/// Joins the network of `invitation`: connects (phase 1; on failure the RSVP to hand
/// back is in the answer and the join goes on), then waits for the credential.
pub(crate) async fn join_network(ctx: &Ctx, invitation: &SignedInvitation) -> Result<Value> {
    let node = &ctx.node;
    let network = invitation.invitation().network;
    let mut events = node.events();
    let mut join = node.join(invitation).await?;
    let (via, path) = loop {
        match join.next().await {
            Some(JoinEvent::Connected(c)) => break (c.peer(), c.path()),
            Some(JoinEvent::Failed(e)) => return Err(e.into()),
            Some(JoinEvent::Phase1Failed { reason, rsvp }) => {
                let t = text::encode_text(rsvp.to_bytes());
                let out = ctx.out;
                // The join goes on in phase 2 once the inviter has the RSVP.
                tokio::spawn(async move {
                    while let Some(ev) = join.next().await {
                        match ev {
                            JoinEvent::Connected(c) => {
                                out.event(json!({"event": "joined", "via": c.peer().to_string(),
                                                 "phase": 2, "t": unix_ms()}));
                                out.note(format!("joined through {} (phase 2)", c.peer().short()));
                                return;
                            }
                            JoinEvent::Failed(e) => {
                                out.event(json!({"event": "join_failed", "reason": e.to_string(), "t": unix_ms()}));
                                out.note(format!("the join failed: {e}"));
                                return;
                            }
                            _ => {}
                        }
                    }
                });
                return Ok(
                    json!({"status": "phase1_failed", "reason": reason.to_string(),
                                 "rsvp": t, "expires": rsvp.rsvp().expires.to_string()}),
                );
            }
            Some(_) => {}
            None => bail!("the node stopped"),
        }
    };
    let member = tokio::time::timeout(MEMBERSHIP_WAIT, async {
        while let Some(u) = events.next().await {
            if let NetUpdate::Event(NetEvent::Member { network: n, .. }) = u
                && n == network
            {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    // The credential may have arrived before the subscription saw it.
    let now_member = node.network_id().await.is_ok_and(|n| n == network);
    if !(member || now_member) {
        bail!(
            "connected to {} but no membership credential arrived within {MEMBERSHIP_WAIT:?}",
            via.short()
        );
    }
    let mut v = json!({"status": "member", "network": network.to_string(), "via": via.to_string(),
                       "t": unix_ms()});
    if let (Some(o), Value::Object(p)) = (v.as_object_mut(), path_json(&path)) {
        o.extend(p);
    }
    Ok(v)
}
