//! A node's network events and state as JSON (one object per event, `--json`) and as
//! lines for humans: shared by `in8 up`, `in8 chat` and `in8 net`.

use std::time::SystemTime;

use in8_artifact::NodeId;
use in8_core::{MemberInfo, NetEvent, PathInfo, Views};
use serde_json::{Value, json};

use crate::cmd::chat::printable;

/// Milliseconds since the Unix epoch: every event carries it (`"t"`), so events printed by
/// processes on one machine can be compared (e.g. a broadcast's latency).
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A member's NAT class as its record states it.
pub(crate) fn nat_name(n: in8_gossip::NatClass) -> &'static str {
    use in8_gossip::NatClass as N;
    match n {
        N::Unknown => "unknown",
        N::Public => "public",
        N::FullCone => "full-cone",
        N::Restricted => "restricted",
        N::PortRestricted => "port-restricted",
        N::Symmetric => "symmetric",
    }
}

/// A path as JSON.
pub(crate) fn path_json(p: &PathInfo) -> Value {
    json!({
        "path": p.kind.sdp_name(),
        "local": p.local.to_string(),
        "remote": p.remote.to_string(),
        "rtt_ms": p.rtt.map(|r| r.as_secs_f64() * 1000.0),
        "birthday": p.birthday,
    })
}

/// A payload as text when it is UTF-8 (made safe to print), else its size only.
fn payload_json(payload: &[u8]) -> Value {
    match std::str::from_utf8(payload) {
        Ok(t) => json!(printable(t)),
        Err(_) => Value::Null,
    }
}

fn with_time(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.insert("t".into(), json!(unix_ms()));
    }
    v
}

/// One event as JSON (`{"event": ..., "t": ...}`), and a line for humans.
pub(crate) fn render(e: &NetEvent) -> (Value, String) {
    let (v, line) = match e {
        NetEvent::Member { network, issuer } => (
            json!({"event": "member", "network": network.to_string(), "issuer": issuer.to_string()}),
            format!(
                "member of network {network} (credential from {})",
                issuer.short()
            ),
        ),
        NetEvent::MemberUp(m) => (
            json!({"event": "member_up", "member": m.to_string()}),
            format!("+ {} is a member", m.short()),
        ),
        NetEvent::MemberDown { member, left } => (
            json!({"event": "member_down", "member": member.to_string(), "left": left}),
            format!(
                "- {} {}",
                member.short(),
                if *left { "left" } else { "went silent" }
            ),
        ),
        NetEvent::MemberRevoked(m) => (
            json!({"event": "member_revoked", "member": m.to_string()}),
            format!("x {} was revoked and is cut off", m.short()),
        ),
        NetEvent::LinkUp {
            peer,
            path,
            introducer,
            ..
        } => {
            let mut v = json!({"event": "link_up", "peer": peer.to_string(),
                               "introducer": introducer.map(|i| i.to_string())});
            merge(&mut v, path_json(path));
            let how = match introducer {
                Some(i) => format!(", introduced by {}", i.short()),
                None => String::new(),
            };
            (
                v,
                format!(
                    "link up: {} via {} {} -> {}{how}",
                    peer.short(),
                    path.kind.sdp_name(),
                    path.local,
                    path.remote
                ),
            )
        }
        NetEvent::LinkDown { peer, .. } => (
            json!({"event": "link_down", "peer": peer.to_string()}),
            format!("link down: {}", peer.short()),
        ),
        NetEvent::TopologyChanged { policy } => (
            json!({"event": "topology", "policy": policy}),
            format!("topology is now {policy}"),
        ),
        NetEvent::Broadcast {
            origin,
            payload,
            hops,
        } => (
            json!({"event": "broadcast", "origin": origin.to_string(), "hops": hops,
                   "bytes": payload.len(), "text": payload_json(payload)}),
            format!(
                "broadcast from {} ({hops} hops): {}",
                origin.short(),
                shown(payload)
            ),
        ),
        NetEvent::Message { from, payload } => (
            json!({"event": "message", "from": from.to_string(), "bytes": payload.len(),
                   "text": payload_json(payload)}),
            format!("message from {}: {}", from.short(), shown(payload)),
        ),
        NetEvent::SelfRevoked => (
            json!({"event": "self_revoked"}),
            "this node's credential was revoked: it is no longer a member".into(),
        ),
        NetEvent::CredentialExpired => (
            json!({"event": "credential_expired"}),
            "this node's credential expired: it needs a new invitation".into(),
        ),
        NetEvent::RejoinFailed => (
            json!({"event": "rejoin_failed"}),
            "no last-known member answered: rejoining needs a reachable member or a new invitation"
                .into(),
        ),
        NetEvent::Redeemed { invite, by } => (
            json!({"event": "redeemed", "invite_id": invite.to_string(), "by": by.to_string()}),
            format!(
                "invitation {invite} was redeemed by {} at another entry peer",
                by.short()
            ),
        ),
        other => (
            json!({"event": "other", "debug": format!("{other:?}")}),
            format!("{other:?}"),
        ),
    };
    (with_time(v), line)
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(a), Value::Object(b)) = (into.as_object_mut(), from) {
        a.extend(b);
    }
}

fn shown(payload: &[u8]) -> String {
    match std::str::from_utf8(payload) {
        Ok(t) => printable(t),
        Err(_) => format!("<{} bytes>", payload.len()),
    }
}

/// The rights a credential grants, by name (bits without a name are left out).
pub(crate) fn rights(c: in8_artifact::Capabilities) -> Vec<String> {
    c.names()
        .into_iter()
        .filter(|n| !n.starts_with("0x"))
        .collect()
}

/// A member as JSON.
pub(crate) fn member_json(m: &MemberInfo) -> Value {
    json!({
        "id": m.id.to_string(),
        "online": m.online,
        "nat": nat_name(m.nat),
        "capabilities": rights(m.capabilities),
        "issuer": m.issuer.to_string(),
        "depth": m.depth,
        "linked": m.link.is_some(),
        "candidates": m.candidates.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "neighbours": m.neighbours.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

/// The gossip views as JSON, with whether they are full given `others` members.
pub(crate) fn views_json(v: &Views, others: usize) -> Value {
    json!({
        "active": v.active,
        "active_capacity": v.active_capacity,
        "active_target": v.active_target(others),
        "pinned": v.pinned.0,
        "pinned_wanted": v.pinned.1,
        "passive": v.passive,
        "passive_capacity": v.passive_capacity,
        "unreachable": v.unreachable,
        "full": v.full(others),
    })
}

/// Resolves a member named by its full id or a unique prefix of it among `known`.
pub(crate) fn resolve_member(name: &str, known: &[NodeId]) -> anyhow::Result<NodeId> {
    if let Ok(id) = name.parse::<NodeId>() {
        return Ok(id);
    }
    let name = name.to_ascii_lowercase();
    let hits: Vec<&NodeId> = known
        .iter()
        .filter(|k| k.to_string().starts_with(&name))
        .collect();
    match hits.as_slice() {
        [one] => Ok(**one),
        [] => anyhow::bail!(
            "no known member's id starts with {name:?}: see `in8 net members` for the ids"
        ),
        many => anyhow::bail!(
            "{name:?} matches {} members: give more of the id",
            many.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(seed: u8) -> NodeId {
        in8_artifact::Identity::from_seed(&[seed; 32]).node_id()
    }

    #[test]
    fn a_member_is_named_by_a_unique_prefix() {
        let known = [id(1), id(2), id(3)];
        let full = known[1].to_string();
        assert_eq!(resolve_member(&full, &known).ok(), Some(known[1]));
        assert_eq!(resolve_member(&full[..12], &known).ok(), Some(known[1]));
        let e = resolve_member("zzzz-not-an-id", &known)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("in8 net members"), "{e}");
        assert!(
            resolve_member("", &known).is_err(),
            "an empty name is ambiguous"
        );
    }

    #[test]
    fn events_carry_the_time_and_safe_text() {
        let (v, line) = render(&NetEvent::Broadcast {
            origin: id(4),
            payload: b"hi\x1b[2J".to_vec(),
            hops: 2,
        });
        assert_eq!(v["event"], "broadcast");
        assert!(v["t"].as_u64().unwrap_or(0) > 1_700_000_000_000);
        assert_eq!(v["text"], "hi\u{FFFD}[2J");
        assert!(line.contains("2 hops") && !line.contains('\x1b'), "{line}");
        let (v, _) = render(&NetEvent::Message {
            from: id(5),
            payload: vec![0xff, 0xfe],
        });
        assert_eq!(v["text"], Value::Null);
        assert_eq!(v["bytes"], 2);
    }
}
