//! The real `in8` binary, two processes on loopback: phase 1, and phase 2 with the RSVP
//! passed through a file; the JSON events each side prints; and `in8 demo`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use serde_json::Value;

fn in8(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_in8"));
    c.arg("--home").arg(home).arg("--json");
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Reads JSON events until one with `"event": name` (returns it) or EOF (panics).
fn wait_for(lines: &mut dyn Iterator<Item = Value>, name: &str, seen: &mut Vec<Value>) -> Value {
    for v in lines {
        seen.push(v.clone());
        if v["event"] == name {
            return v;
        }
        assert_ne!(
            v["event"], "error",
            "error event while waiting for {name}: {v}"
        );
    }
    panic!("no {name} event; saw {seen:?}");
}

fn events(stdout: ChildStdout) -> impl Iterator<Item = Value> {
    BufReader::new(stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(&l.unwrap()).unwrap())
}

fn finish(child: Child) -> (i32, String) {
    let o = child.wait_with_output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn invite_and_join_in_two_processes_phase_one() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("invitation.txt");
    let mut inviter = in8(&dir.path().join("a"))
        .args(["invite", "--bind", "127.0.0.1", "--port", "0", "--out"])
        .arg(&inv)
        .spawn()
        .unwrap();
    let mut a = events(inviter.stdout.take().unwrap());
    let mut seen = Vec::new();
    let invitation = wait_for(&mut a, "invitation", &mut seen);
    assert_eq!(invitation["uses"], 1);
    let joiner = in8(&dir.path().join("b"))
        .args(["join", "--bind", "127.0.0.1"])
        .arg(format!("@{}", inv.display()))
        .spawn()
        .unwrap();
    let (code, err) = finish_with_events(joiner, |b| {
        let mut seen = Vec::new();
        wait_for(b, "checking", &mut seen);
        let c = wait_for(b, "connected", &mut seen);
        assert_eq!(c["connection"]["phase"], 1);
        assert_eq!(c["connection"]["path"], "host");
        // No STUN server, no assumption: the class is unknown; no birthday probing.
        assert_eq!(c["connection"]["birthday"], false);
        assert!(c["connection"]["nat"].is_null(), "{c}");
        assert!(c["connection"]["peer_nat"].is_null(), "{c}");
        let x = wait_for(b, "exchanged", &mut seen);
        assert_eq!(x["bytes_received"], 1024);
    });
    assert_eq!(code, 0, "{err}");
    let joined = wait_for(&mut a, "joined", &mut seen);
    assert_eq!(joined["connection"]["phase"], 1);
    assert_eq!(joined["connection"]["invite_id"], invitation["invite_id"]);
    let (code, err) = finish(inviter);
    assert_eq!(code, 0, "{err}");
}

fn finish_with_events(
    mut child: Child,
    f: impl FnOnce(&mut dyn Iterator<Item = Value>),
) -> (i32, String) {
    let mut it = events(child.stdout.take().unwrap());
    f(&mut it);
    for _ in it {}
    finish(child)
}

#[test]
fn rsvp_through_a_file_gives_phase_two() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("invitation.txt");
    let rsvp = dir.path().join("rsvp.txt");
    let mut inviter = in8(&dir.path().join("a"))
        .args([
            "invite",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--filter-unsolicited",
            "--out",
        ])
        .arg(&inv)
        .arg("--rsvp")
        .arg(&rsvp)
        .spawn()
        .unwrap();
    let mut a = events(inviter.stdout.take().unwrap());
    let mut seen = Vec::new();
    wait_for(&mut a, "invitation", &mut seen);
    let joiner = in8(&dir.path().join("b"))
        .args([
            "join",
            "--bind",
            "127.0.0.1",
            "--connect-timeout",
            "2s",
            "--no-birthday",
            "--rsvp-out",
        ])
        .arg(&rsvp)
        .arg(format!("@{}", inv.display()))
        .spawn()
        .unwrap();
    let (code, err) = finish_with_events(joiner, |b| {
        let mut seen = Vec::new();
        let failed = wait_for(b, "phase1_failed", &mut seen);
        assert!(failed["rsvp"].as_str().unwrap().starts_with("in8:"));
        assert!(
            failed["reason"]
                .as_str()
                .unwrap()
                .contains("nothing came back")
        );
        let c = wait_for(b, "connected", &mut seen);
        assert_eq!(c["connection"]["phase"], 2);
        // Ordinary phase 2 (no classes known, and --no-birthday): no birthday probing.
        assert_eq!(c["connection"]["birthday"], false);
        wait_for(b, "exchanged", &mut seen);
    });
    assert_eq!(code, 0, "{err}");
    wait_for(&mut a, "rsvp_accepted", &mut seen);
    wait_for(&mut a, "phase2_started", &mut seen);
    let joined = wait_for(&mut a, "joined", &mut seen);
    assert_eq!(joined["connection"]["phase"], 2);
    let (code, err) = finish(inviter);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn an_unreachable_inviter_without_rsvp_exits_with_4_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("invitation.txt");
    // An invitation to a port nobody listens on, that forbids the RSVP fallback.
    let parked = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = parked.local_addr().unwrap().port().to_string();
    let o = in8(&dir.path().join("a"))
        .args([
            "invite",
            "--print-only",
            "--no-rsvp",
            "--port",
            &port,
            "--out",
        ])
        .arg(&inv)
        .output()
        .unwrap();
    assert!(o.status.success());
    let o = in8(&dir.path().join("b"))
        .args(["join", "--bind", "127.0.0.1", "--connect-timeout", "1s"])
        .arg(format!("@{}", inv.display()))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let last: Value = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .last()
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap();
    assert_eq!(last["event"], "error");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("could not connect"),
        "{last}"
    );
    drop(parked);
}

#[test]
fn the_demo_forms_one_network_with_introductions_a_broadcast_and_a_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let out = in8(dir.path())
        .args(["demo", "--peers", "6", "--topology", "mesh"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |name: &str| -> Vec<&Value> { evs.iter().filter(|e| e["event"] == name).collect() };
    let nodes = of("node");
    assert_eq!(nodes.len(), 6);
    let filtered: Vec<&str> = nodes
        .iter()
        .filter(|n| n["filtered"] == true)
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(filtered, ["node2", "node5"]);
    // Every newcomer joined with one invitation; from the second on, a member issued it.
    let joins = of("joined");
    assert_eq!(joins.len(), 5);
    assert!(
        joins.iter().skip(1).any(|j| j["inviter"] != "node0"),
        "{joins:?}"
    );
    assert_eq!(of("converged")[0]["members"], 5);
    // A mesh of 6: all 15 pairs linked, including the filtered pair, which only an
    // introduction (or its own punching) can connect.
    let links = of("link");
    assert_eq!(links.len(), 15, "{links:?}");
    assert!(links.iter().any(|l| l["a"] == "node2" && l["b"] == "node5"));
    let b = of("broadcast")[0];
    assert_eq!(
        (b["reached"].as_u64(), b["of"].as_u64()),
        (Some(5), Some(5))
    );
    let r = of("revoked")[0];
    assert_eq!(r["cut_off_by"], r["of"]);
    let summary = of("summary")[0];
    assert_eq!(summary["nodes"], 6);
    assert_eq!(summary["broadcast_reached"], 5);
    assert_eq!(summary["revoked_everywhere"], true);
}
