//! `in8 chat`, two real processes on loopback: lines typed on each side's stdin arrive at
//! the other, end of input ends the chat cleanly on both sides.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

#[path = "support/process.rs"]
mod process;

use process::{Proc, in8};

#[test]
fn lines_go_both_ways_and_end_of_input_ends_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("invitation.txt");
    let mut a = Proc::spawn(
        in8(&dir.path().join("a"))
            .args(["chat", "--bind", "127.0.0.1", "--port", "0", "--out"])
            .arg(&inv),
        true,
    );
    let invitation = a.wait_for("invitation");
    let mut b = Proc::spawn(
        in8(&dir.path().join("b"))
            .arg("chat")
            .arg(format!("@{}", inv.display()))
            .args(["--bind", "127.0.0.1"]),
        true,
    );
    let b_ready = b.wait_for("chat_ready");
    let a_ready = a.wait_for("chat_ready");
    assert_eq!(a_ready["peer"].as_str().unwrap().len(), 55);
    assert_eq!(b_ready["peer"], invitation["issuer"]);

    a.say("hello from the inviter");
    let m = b.wait_for("message");
    assert_eq!(m["text"], "hello from the inviter");
    assert_eq!(m["from"], invitation["issuer"]);

    b.say("hi back, with ünïcode and a tab\there");
    b.say("second line");
    let m = a.wait_for("message");
    assert_eq!(m["text"], "hi back, with ünïcode and a tab\there");
    assert_eq!(m["from"], a_ready["peer"]);
    assert_eq!(a.wait_for("message")["text"], "second line");

    // The joiner's input ends: it leaves, the inviter sees it leave; both exit 0.
    drop(b.stdin.take());
    assert_eq!(b.wait_for("left")["by"], "local");
    assert_eq!(a.wait_for("left")["by"], "peer");
    let (code, _, err) = b.finish();
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = a.finish();
    assert_eq!(code, 0, "{err}");
}

#[test]
fn the_invitation_can_come_from_the_first_line_of_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Proc::spawn(
        in8(&dir.path().join("a")).args(["chat", "--bind", "127.0.0.1", "--port", "0"]),
        true,
    );
    let text = a.wait_for("invitation")["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut b = Proc::spawn(
        in8(&dir.path().join("b")).args(["chat", "-", "--bind", "127.0.0.1"]),
        true,
    );
    b.say(&text);
    b.say("first chat line");
    b.wait_for("chat_ready");
    assert_eq!(a.wait_for("message")["text"], "first chat line");
    // This time the inviter leaves first.
    drop(a.stdin.take());
    assert_eq!(b.wait_for("left")["by"], "peer");
    assert_eq!(b.finish().0, 0);
    assert_eq!(a.finish().0, 0);
}
