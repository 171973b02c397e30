//! `in8 up` and `in8 net`, real processes on loopback: a network of three formed with
//! one invitation from the creator and one from a member, status and members through the
//! control socket, a broadcast reaching everyone, a revocation the revoked node learns
//! of, a restart that rejoins with no invitation; and the control socket's refusals.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

#[path = "support/process.rs"]
mod process;

use std::path::Path;

use process::{Proc, in8};
use serde_json::Value;

fn up(home: &Path, join: Option<&str>) -> Proc {
    let mut c = in8(home);
    c.args(["up", "--bind", "127.0.0.1", "--port", "0"]);
    if let Some(j) = join {
        c.args(["--join", j]);
    }
    Proc::spawn(&mut c, false)
}

/// Runs `in8 --home HOME --json net ARGS...`; returns its exit code and answer.
fn net(home: &Path, args: &[&str]) -> (i32, Value, String) {
    let out = in8(home).arg("net").args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let v = stdout
        .lines()
        .last()
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(home: &Path, args: &[&str]) -> Value {
    let (code, v, err) = net(home, args);
    assert_eq!(code, 0, "in8 net {args:?}: {v} {err}");
    v
}

/// Waits for an event of `name` whose `field` is `value`.
fn wait_where(p: &mut Proc, name: &str, field: &str, value: &Value) -> Value {
    loop {
        let e = p.wait_for(name);
        if &e[field] == value {
            return e;
        }
    }
}

#[test]
fn three_nodes_form_a_network_broadcast_revoke_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (ha, hb, hc) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    let mut a = up(&ha, None);
    let a_up = a.wait_for("up");
    assert_eq!(a_up["created"], true);
    let network = a_up["network"].clone();

    // The creator invites b; b invites c (a member-issued invitation naming entry peers).
    let inv = ok(&ha, &["invite"]);
    let mut b = up(&hb, Some(inv["text"].as_str().unwrap()));
    let joined = b.wait_for("joined");
    assert_eq!(joined["network"], network);
    assert_eq!(joined["via"], a_up["node"]);
    let b_id = b.seen[0]["node"].clone();
    // An invitation may name linked members as entry peers (b's only one is a).
    let with_entries = ok(&hb, &["invite", "--entry-peers", "2"]);
    assert_eq!(
        with_entries["entry_peers"].as_array().unwrap(),
        &[a_up["node"].clone()]
    );
    // Redeemed at its issuer, a member's invitation chains the credential through it.
    let inv = ok(&hb, &["invite"]);
    let mut c = up(&hc, Some(inv["text"].as_str().unwrap()));
    assert_eq!(c.wait_for("joined")["network"], network);
    let c_id = c.seen[0]["node"].clone();
    // c's credential is chained through b.
    assert_eq!(c.wait_for("member")["issuer"], b_id);

    // Every node learns the other two; a learns of c through gossip.
    wait_where(&mut a, "member_up", "member", &c_id);
    wait_where(&mut c, "member_up", "member", &a_up["node"]);
    let status = ok(&hc, &["status"]);
    assert_eq!(status["network"], network);
    assert_eq!(status["depth"], 2);
    let members = ok(&ha, &["members"]);
    let ids: Vec<&Value> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["id"])
        .collect();
    assert!(ids.contains(&&b_id) && ids.contains(&&c_id), "{members}");

    // A broadcast from c reaches a and b.
    let sent = ok(&hc, &["broadcast", "hello, network"]);
    assert!(sent["id"].is_u64());
    for p in [&mut a, &mut b] {
        let e = wait_where(p, "broadcast", "origin", &c_id);
        assert_eq!(e["text"], "hello, network");
    }

    // The creator revokes c by an id prefix: b cuts it off, c learns it and exits 3.
    let prefix = &c_id.as_str().unwrap()[..12];
    assert_eq!(ok(&ha, &["revoke", prefix])["revoked"], c_id);
    wait_where(&mut b, "member_revoked", "member", &c_id);
    c.wait_for("self_revoked");
    assert_eq!(c.finish().0, 3);

    // b stops and starts again: it rejoins from its stored credential, no invitation.
    assert_eq!(ok(&hb, &["stop"])["stopping"], true);
    assert_eq!(b.finish().0, 0);
    let mut b = up(&hb, None);
    let again = b.wait_for("up");
    assert_eq!(
        (again["created"].clone(), again["network"].clone()),
        (Value::Bool(false), network)
    );
    wait_where(&mut b, "link_up", "peer", &a_up["node"]);

    ok(&hb, &["stop"]);
    ok(&ha, &["stop"]);
    assert_eq!(b.finish().0, 0);
    assert_eq!(a.finish().0, 0);
    // The control sockets are gone with their nodes.
    assert!(!ha.join("control.sock").exists());
}

#[test]
fn the_control_socket_refuses_what_it_should() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("n");
    // Nothing runs yet.
    let (code, v, _) = net(&home, &["status"]);
    assert_eq!(code, 1);
    assert!(v["message"].as_str().unwrap().contains("in8 up"), "{v}");

    let mut n = up(&home, None);
    let first = n.wait_for("up");
    // A second node for the same home is refused, naming the running one.
    let mut second = up(&home, None);
    let (code, evs, _) = second.finish();
    assert_eq!(code, 1);
    let last = evs.last().unwrap();
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("already running"),
        "{last}"
    );
    // Bad requests get an error naming what is wrong; the node keeps serving.
    let (code, v, _) = net(&home, &["revoke", "zzzz"]);
    assert_eq!(code, 1);
    assert!(
        v["message"].as_str().unwrap().contains("in8 net members"),
        "{v}"
    );
    let (code, v, _) = net(&home, &["join", "in8:not-an-invitation"]);
    assert_eq!(code, 1, "{v}");
    let (code, _, err) = net(&home, &["topology", "meshh"]);
    assert_eq!(code, 1, "{err}");
    let (code, v, _) = net(&home, &["create"]);
    assert_eq!(code, 1);
    assert!(
        v["message"].as_str().unwrap().contains("stop it first"),
        "{v}"
    );
    assert_eq!(ok(&home, &["topology", "star"])["policy"], "star");
    assert_eq!(ok(&home, &["status"])["node"], first["node"]);
    ok(&home, &["stop"]);
    assert_eq!(n.finish().0, 0);

    // A new network replaces the old one only when asked to.
    let (code, v, _) = net(&home, &["create"]);
    assert_eq!(code, 1);
    assert!(v["message"].as_str().unwrap().contains("--force"), "{v}");
    let created = ok(&home, &["create", "--force"]);
    assert_ne!(created["network"], first["network"]);

    // Something planted where the socket goes is not removed or followed.
    let target = dir.path().join("precious");
    std::fs::write(&target, b"keep me").unwrap();
    std::os::unix::fs::symlink(&target, home.join("control.sock")).unwrap();
    let mut n = up(&home, None);
    let (code, evs, _) = n.finish();
    assert_eq!(code, 1);
    assert!(
        evs.last().unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("not a control socket"),
        "{evs:?}"
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
}
