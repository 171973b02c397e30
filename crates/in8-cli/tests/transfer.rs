//! `in8 send` / `in8 recv`, two real processes on loopback: a few MB with the BLAKE3 check,
//! resume from a kept partial file, a corrupt partial caught by the checksum, refusal to
//! overwrite, and the exit codes of bad inputs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

#[path = "support/process.rs"]
mod process;

use std::path::{Path, PathBuf};

use process::{Proc, in8};

/// Deterministic pseudo-random content (xorshift), so compression or patterns help nobody.
fn content(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

struct Setup {
    dir: tempfile::TempDir,
    file: PathBuf,
    data: Vec<u8>,
}

fn setup(len: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let data = content(len);
    let file = dir.path().join("payload.bin");
    std::fs::write(&file, &data).unwrap();
    Setup { dir, file, data }
}

/// Starts `in8 send` and waits for its invitation (written to a file).
fn sender(s: &Setup) -> (Proc, PathBuf) {
    let inv = s.dir.path().join("invitation.txt");
    let mut p = Proc::spawn(
        in8(&s.dir.path().join("a"))
            .arg("send")
            .arg(&s.file)
            .args(["--bind", "127.0.0.1", "--port", "0", "--out"])
            .arg(&inv),
        false,
    );
    p.wait_for("invitation");
    (p, inv)
}

fn receiver(s: &Setup, inv: &Path, out: &Path, extra: &[&str]) -> Proc {
    Proc::spawn(
        in8(&s.dir.path().join("b"))
            .arg("recv")
            .arg(format!("@{}", inv.display()))
            .args(["--bind", "127.0.0.1", "--out"])
            .arg(out)
            .args(extra),
        false,
    )
}

fn partial(out: &Path, data: &[u8]) -> PathBuf {
    let hex = blake3::hash(data).to_hex();
    out.join(format!(".in8-{}.part", &hex.as_str()[..32]))
}

#[test]
fn a_few_megabytes_arrive_intact_and_verified() {
    let s = setup(3 * 1024 * 1024 + 17);
    let (mut a, inv) = sender(&s);
    let out = s.dir.path().join("downloads");
    let mut b = receiver(&s, &inv, &out, &[]);
    let offer = b.wait_for("offer");
    assert_eq!(offer["name"], "payload.bin");
    assert_eq!(offer["bytes"], s.data.len());
    let hash = blake3::hash(&s.data).to_hex().to_string();
    assert_eq!(offer["blake3"], hash.as_str());
    let received = b.wait_for("received");
    assert_eq!(received["verified"], true);
    let (code, events, err) = b.finish();
    assert_eq!(code, 0, "{err}");
    let last_progress = events
        .iter()
        .rev()
        .find(|e| e["event"] == "progress")
        .unwrap();
    assert_eq!(last_progress["bytes"], s.data.len());
    assert_eq!(std::fs::read(out.join("payload.bin")).unwrap(), s.data);
    assert!(!partial(&out, &s.data).exists(), "the partial file is gone");

    let sent = a.wait_for("sent");
    assert_eq!(sent["verified"], true);
    assert_eq!(sent["blake3"], hash.as_str());
    let (code, _, err) = a.finish();
    assert_eq!(code, 0, "{err}");
}

#[test]
fn an_interrupted_transfer_resumes_from_the_kept_part() {
    let s = setup(1024 * 1024);
    let out = s.dir.path().join("downloads");
    std::fs::create_dir_all(&out).unwrap();
    let kept = 300_000;
    std::fs::write(partial(&out, &s.data), &s.data[..kept]).unwrap();
    let (mut a, inv) = sender(&s);
    let mut b = receiver(&s, &inv, &out, &[]);
    assert_eq!(b.wait_for("resume")["offset"], kept);
    b.wait_for("received");
    let (code, _, err) = b.finish();
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(out.join("payload.bin")).unwrap(), s.data);
    assert_eq!(a.wait_for("resume")["offset"], kept);
    let (code, _, err) = a.finish();
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_corrupt_partial_fails_the_checksum_and_is_removed() {
    let s = setup(200_000);
    let out = s.dir.path().join("downloads");
    std::fs::create_dir_all(&out).unwrap();
    let mut bad = s.data[..1000].to_vec();
    bad[10] ^= 0xff;
    let part = partial(&out, &s.data);
    std::fs::write(&part, &bad).unwrap();
    let (mut a, inv) = sender(&s);
    let mut b = receiver(&s, &inv, &out, &[]);
    let (code, events, err) = b.finish();
    assert_eq!(code, 1, "{err}");
    let last = events.last().unwrap();
    assert_eq!(last["event"], "error");
    assert!(
        last["message"].as_str().unwrap().contains("BLAKE3"),
        "{last}"
    );
    assert!(!part.exists(), "the corrupt partial was removed");
    assert!(!out.join("payload.bin").exists());
    let (code, events, err) = a.finish();
    assert_eq!(code, 1, "{err}");
    let msg = events.last().unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(msg.contains("did not match"), "{msg}");
}

#[test]
fn an_existing_file_is_not_overwritten_without_force() {
    let s = setup(10_000);
    let out = s.dir.path().join("downloads");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("payload.bin"), b"precious").unwrap();
    let (mut a, inv) = sender(&s);
    let mut b = receiver(&s, &inv, &out, &[]);
    let (code, events, err) = b.finish();
    assert_eq!(code, 1, "{err}");
    let msg = events.last().unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(msg.contains("--force"), "{msg}");
    assert_eq!(std::fs::read(out.join("payload.bin")).unwrap(), b"precious");
    let (code, events, err) = a.finish();
    assert_eq!(code, 1, "{err}");
    let msg = events.last().unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(msg.contains("refused") && msg.contains("exists"), "{msg}");

    // With --force it is replaced.
    let (mut a, inv) = sender(&s);
    let mut b = receiver(&s, &inv, &out, &["--force"]);
    let (code, _, err) = b.finish();
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(out.join("payload.bin")).unwrap(), s.data);
    assert_eq!(a.finish().0, 0);
}

#[test]
fn bad_inputs_give_the_documented_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| in8(dir.path()).args(args).output().unwrap();
    let last = |o: &std::process::Output| -> serde_json::Value {
        let s = String::from_utf8_lossy(&o.stdout);
        serde_json::from_str(s.lines().last().unwrap()).unwrap()
    };
    // A missing file: 1, naming it, before any network activity.
    let o = run(&["send", "/nonexistent/file.bin"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        last(&o)["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/file.bin")
    );
    // A directory is not a file.
    let o = run(&["send", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(last(&o)["message"].as_str().unwrap().contains("tar"));
    // Not an invitation: 3.
    let o = run(&["recv", "hello"]);
    assert_eq!(o.status.code(), Some(3));
    // A bad flag value: 2.
    let o = run(&["send", "x", "--ttl", "soon"]);
    assert_eq!(o.status.code(), Some(2));
}
