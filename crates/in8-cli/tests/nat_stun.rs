//! `in8 stun` and `in8 nat` on loopback: a plain server, an RFC 5780 server with an
//! alternate address (127.0.0.2) that really answers from the changed address, no NAT
//! found on loopback, clear errors when no server answers or the address is bad.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

#[path = "support/process.rs"]
mod process;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use in8_ice::nat::{Probe, mapped_address};
use in8_ice::stun::{Class, Message, TransactionId, attr};
use process::{Proc, in8};
use serde_json::Value;

fn stun_server(home: &std::path::Path, extra: &[&str]) -> (Proc, Value) {
    let mut p = Proc::spawn(
        in8(home)
            .args(["stun", "--listen", "127.0.0.1:0"])
            .args(extra),
        false,
    );
    let ev = p.wait_for("listening");
    (p, ev)
}

fn nat(home: &std::path::Path, args: &[&str]) -> (Option<i32>, Value) {
    let o = in8(home)
        .args(["nat", "--bind", "127.0.0.1"])
        .args(args)
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&o.stdout);
    let last = serde_json::from_str(s.lines().last().unwrap_or("null")).unwrap();
    (o.status.code(), last)
}

/// Sends one probe from a fresh loopback socket; returns the answer and where it came from.
fn probe(to: SocketAddr, change_ip: bool, change_port: bool) -> (Vec<u8>, SocketAddr) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let p = Probe {
        to,
        change_ip,
        change_port,
    };
    s.send_to(&p.request(TransactionId([7; 12])), to).unwrap();
    let mut buf = [0u8; 1500];
    let (n, from) = s.recv_from(&mut buf).unwrap();
    (buf[..n].to_vec(), from)
}

fn stop(mut p: Proc) {
    // Ctrl-C ends the server cleanly with a last event.
    let pid = p.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let stopped = p.wait_for("stopped");
    assert!(stopped["answered"].as_u64().unwrap() >= 1);
    let (code, _, err) = p.finish();
    assert_eq!(code, 0, "{err}");
}

#[test]
fn nat_against_a_plain_local_stun_server_finds_no_nat() {
    let dir = tempfile::tempdir().unwrap();
    let (server, ev) = stun_server(dir.path(), &[]);
    let addr: SocketAddr = ev["addr"].as_str().unwrap().parse().unwrap();
    assert_eq!(ev["other_address"], Value::Null);

    let (code, r) = nat(dir.path(), &["--stun", &addr.to_string()]);
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["event"], "nat");
    assert_eq!(r["mapping"], "no-nat");
    assert_eq!(r["nat_type"], "no NAT");
    assert_eq!(r["filtering"], Value::Null, "a plain server cannot test it");
    assert_eq!(r["public"], r["local"]);
    assert_eq!(r["probes"].as_array().unwrap().len(), 1);

    // Without an alternate address, a change request is refused, not answered from the
    // same address (which would look like an open filter).
    let (answer, from) = probe(addr, true, true);
    assert_eq!(from, addr);
    let m = Message::parse(&answer).unwrap();
    assert_eq!(m.class(), Class::Error);
    assert_eq!(
        m.get(attr::UNKNOWN_ATTRIBUTES),
        Some(&attr::CHANGE_REQUEST.to_be_bytes()[..])
    );
    stop(server);
}

#[test]
fn an_rfc5780_server_answers_from_the_changed_address_and_nat_tests_filtering() {
    let dir = tempfile::tempdir().unwrap();
    let (server, ev) = stun_server(dir.path(), &["--alternate", "127.0.0.2:0"]);
    let addr: SocketAddr = ev["addr"].as_str().unwrap().parse().unwrap();
    let other: SocketAddr = ev["other_address"].as_str().unwrap().parse().unwrap();
    assert_eq!(other.ip().to_string(), "127.0.0.2");
    assert_ne!(other.port(), addr.port());
    assert_eq!(ev["sockets"].as_array().unwrap().len(), 4);

    // Each CHANGE-REQUEST is answered from the address it asks for.
    for (ci, cp, expect) in [
        (false, false, addr),
        (true, true, other),
        (false, true, SocketAddr::new(addr.ip(), other.port())),
        (true, false, SocketAddr::new(other.ip(), addr.port())),
    ] {
        let (answer, from) = probe(addr, ci, cp);
        assert_eq!(from, expect, "change ip {ci}, port {cp}");
        assert!(mapped_address(&answer).is_some());
    }

    let (code, r) = nat(dir.path(), &["--stun", &addr.to_string()]);
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["mapping"], "no-nat");
    assert_eq!(r["filtering"], "endpoint-independent");
    assert_eq!(r["nat_type"], "no NAT");
    assert_eq!(r["servers"][0]["other_address"], other.to_string());
    let probes = r["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 5, "RFC 5780 tests I-III and filtering II-III");
    assert!(probes.iter().all(|p| p["mapped"] == r["local"]));
    stop(server);
}

#[test]
fn nat_says_clearly_when_no_server_answers_or_the_address_is_bad() {
    let dir = tempfile::tempdir().unwrap();
    let parked = UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent = parked.local_addr().unwrap().to_string();
    let (code, r) = nat(dir.path(), &["--stun", &silent, "--timeout", "300ms"]);
    assert_eq!(code, Some(4), "{r}");
    assert_eq!(r["event"], "error");
    let msg = r["message"].as_str().unwrap();
    assert!(
        msg.contains("no STUN server answered") && msg.contains("in8 stun"),
        "{msg}"
    );

    let (code, _) = nat(dir.path(), &["--stun", "300.1.1.1:3478"]);
    assert_eq!(code, Some(2));
    let (code, _) = nat(dir.path(), &[]);
    assert_eq!(code, Some(2), "--stun is required");

    // A port already in use: the server says so (exit 1).
    let o = in8(dir.path())
        .args(["stun", "--listen", &silent])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("port taken"));
    drop(parked);
}
