//! coturn on loopback, without namespaces or root (what in8-ice's interop tests reuse):
//! STUN, RFC 5780 on 127.0.0.1 + 127.0.0.2, TURN relaying for the static user.
//! Needs the `coturn` Debian package: `cargo xtask interop` installs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use in8_interop::coturn::{Coturn, CoturnConfig};
use in8_interop::nat::{Filtering, Mapping};
use in8_interop::process::ChildGuard;
use in8_interop::{natdiscovery, stun};

#[test]
#[ignore = "needs root and the NAT lab: cargo xtask interop"]
fn loopback_coturn_answers_stun_with_the_senders_address() {
    let turn = Coturn::start(CoturnConfig::loopback().unwrap(), None).unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let reflexive = stun::query(&socket, turn.stun_addr(), Duration::from_secs(2)).unwrap();
    assert_eq!(reflexive, socket.local_addr().unwrap());
    assert_eq!(turn.alternate_addr().unwrap().ip().to_string(), "127.0.0.2");
    // The alternate address answers too (RFC 5780 needs it).
    let alt = turn.alternate_addr().unwrap();
    let alt_primary_port = std::net::SocketAddr::new(alt.ip(), turn.stun_addr().port());
    assert_eq!(
        stun::query(&socket, alt_primary_port, Duration::from_secs(2)).unwrap(),
        reflexive
    );
}

#[test]
#[ignore = "needs root and the NAT lab: cargo xtask interop"]
fn loopback_coturn_supports_rfc5780_discovery() {
    let turn = Coturn::start(CoturnConfig::loopback().unwrap(), None).unwrap();
    let server = turn.stun_addr();
    let mut cmd = Command::new("turnutils_natdiscovery");
    cmd.args([
        "-m",
        "-f",
        "-L",
        "127.0.0.1",
        "-p",
        &server.port().to_string(),
        "127.0.0.1",
    ]);
    let out = ChildGuard::spawn(&mut cmd)
        .unwrap()
        .wait(natdiscovery::TIMEOUT)
        .unwrap();
    let d = natdiscovery::parse(&out.combined(), "127.0.0.1".parse().unwrap()).unwrap();
    assert!(!d.behaviour.translated, "{}", out.combined());
    assert_eq!(d.behaviour.mapping, Mapping::EndpointIndependent);
    assert_eq!(d.behaviour.filtering, Filtering::EndpointIndependent);
}

#[test]
#[ignore = "needs root and the NAT lab: cargo xtask interop"]
fn loopback_coturn_relays_for_the_static_user_only() {
    let turn = Coturn::start(CoturnConfig::loopback().unwrap(), None).unwrap();
    let (user, password, _) = turn.credentials();
    let port = turn.stun_addr().port().to_string();
    let run = |pw: &str| {
        let mut cmd = Command::new("turnutils_uclient");
        cmd.args([
            "-y",
            "-c",
            "-n",
            "10",
            "-m",
            "1",
            "-u",
            user,
            "-w",
            pw,
            "-p",
            &port,
            "127.0.0.1",
        ]);
        ChildGuard::spawn(&mut cmd)
            .unwrap()
            .wait(Duration::from_secs(60))
            .unwrap()
    };
    let good = run(password);
    assert!(good.status.success(), "{}", good.combined());
    assert!(
        good.combined()
            .contains("tot_send_msgs=20, tot_recv_msgs=20"),
        "{}",
        good.combined()
    );
    let bad = run("wrong");
    assert!(!bad.status.success(), "{}", bad.combined());
}

#[test]
#[ignore = "needs root and the NAT lab: cargo xtask interop"]
fn two_loopback_coturns_run_side_by_side_and_stop_on_drop() {
    let a = Coturn::start(CoturnConfig::loopback().unwrap(), None).unwrap();
    let b = Coturn::start(CoturnConfig::loopback().unwrap(), None).unwrap();
    assert_ne!(a.stun_addr(), b.stun_addr());
    let pid = a.pid().unwrap();
    drop(a);
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(!cmdline.contains("turnserver"), "coturn {pid} still runs");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    stun::query(&socket, b.stun_addr(), Duration::from_secs(2)).unwrap();
}
