//! The real `in8` binary: identity, invitations and inspection, human and JSON output, exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use std::path::Path;
use std::process::{Command, Output, Stdio};

use in8_artifact::fixtures;

fn in8(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_in8"))
        .arg("--home")
        .arg(home)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

#[test]
fn id_is_created_once_then_shown() {
    let dir = tempfile::tempdir().unwrap();
    let a = in8(dir.path(), &["id", "--json"]);
    assert!(a.status.success());
    let b = in8(dir.path(), &["id", "--json"]);
    let (a, b) = (&json_lines(&a)[0], &json_lines(&b)[0]);
    assert_eq!(a["created"], true);
    assert_eq!(b["created"], false);
    assert_eq!(a["node_id"], b["node_id"]);
    let id: in8_artifact::NodeId = a["node_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(id.to_string().len(), 55);
}

#[test]
fn invite_print_only_then_inspect_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    for format in ["text", "base32", "words", "cbor", "ndef"] {
        let file = dir.path().join(format!("inv.{format}"));
        let o = in8(
            dir.path(),
            &[
                "invite",
                "--print-only",
                "--ttl",
                "10m",
                "--uses",
                "3",
                "--format",
                format,
                "--out",
            ],
        );
        // --out needs its value: run again properly (the line above checks clap's error).
        assert_eq!(o.status.code(), Some(2));
        let o = in8(
            dir.path(),
            &[
                "invite",
                "--print-only",
                "--ttl",
                "10m",
                "--uses",
                "3",
                "--format",
                format,
                "--out",
                file.to_str().unwrap(),
                "--json",
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let ev = &json_lines(&o)[0];
        assert_eq!(ev["event"], "invitation");
        assert_eq!(ev["uses"], 3);
        let arg = format!("@{}", file.display());
        let o = in8(dir.path(), &["inspect", &arg, "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
        let ins = &json_lines(&o)[0];
        assert_eq!(ins["kind"], "invitation");
        assert_eq!(
            ins["form"],
            if format == "words" { "words" } else { format }
        );
        assert_eq!(ins["valid"], true);
        assert_eq!(ins["invite_id"], ev["invite_id"]);
        assert!(
            ins["checks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["ok"] == true)
        );
    }
}

#[test]
fn inspect_reports_an_expired_invitation_with_exit_code_3() {
    let dir = tempfile::tempdir().unwrap();
    // The fixture invitation expired in 2026-11-27T03:55Z, long before any run of this test.
    let text = in8_artifact::text::encode_text(fixtures::signed_invitation().to_bytes());
    let o = in8(dir.path(), &["inspect", &text, "--json"]);
    assert_eq!(o.status.code(), Some(3));
    let ins = &json_lines(&o)[0];
    assert_eq!(ins["valid"], false);
    let checks = ins["checks"].as_array().unwrap();
    assert_eq!(checks[0]["ok"], true, "signature still fine");
    assert!(checks[1]["error"].as_str().unwrap().contains("expired"));
}

#[test]
fn tampered_and_garbage_input_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = fixtures::signed_invitation().to_bytes().to_vec();
    bytes[40] ^= 1;
    let text = in8_artifact::text::encode_text(&bytes);
    let o = in8(dir.path(), &["inspect", &text]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stdout).contains("FAIL  signature"));

    let o = in8(dir.path(), &["inspect", "hello world"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an in8 artifact"));

    let o = in8(dir.path(), &["inspect", "@/nonexistent/file", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json_lines(&o)[0]["event"], "error");

    let o = in8(dir.path(), &["invite", "--print-only", "--ttl", "soon"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn rsvp_inspection_checks_the_mac_against_the_invitation() {
    let dir = tempfile::tempdir().unwrap();
    let rsvp = in8_artifact::text::encode_text(fixtures::signed_rsvp().to_bytes());
    let inv = in8_artifact::text::encode_text(fixtures::signed_invitation().to_bytes());
    let o = in8(dir.path(), &["inspect", &rsvp, "--json"]);
    let ins = &json_lines(&o)[0];
    assert_eq!(ins["kind"], "rsvp");
    assert!(
        ins["checks"][0]["error"]
            .as_str()
            .unwrap()
            .contains("--invitation")
    );
    // Checked against its invitation, the only failure is the (long past) expiry.
    let o = in8(
        dir.path(),
        &["inspect", &rsvp, "--invitation", &inv, "--json"],
    );
    let err = json_lines(&o)[0]["checks"][0]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(err.contains("expired"), "{err}");
}

#[test]
fn identity_file_with_open_permissions_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    assert!(in8(dir.path(), &["id"]).status.success());
    let p = dir.path().join("identity");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = in8(dir.path(), &["id"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("chmod 600"));
}
