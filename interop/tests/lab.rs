//! The NAT lab for real: namespaces, NAT types (RFC 5780), punch baseline, TURN, impairment,
//! commands on hosts, and clean-up after a panic. Needs root and the lab's Debian packages:
//! run with `cargo xtask interop selftest` or `cargo test -p in8-interop -- --ignored`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use std::time::Duration;

use in8_interop::impair::Impairment;
use in8_interop::nat::{Filtering, Mapping};
use in8_interop::{Lab, LabConfig, NatType, SiteConfig, clean, natdiscovery, selftest, stun};

#[test]
#[ignore = "needs root and the NAT lab: cargo xtask interop"]
fn every_nat_type_shows_its_rfc5780_behaviour() {
    let lab = Lab::start(&LabConfig::every_nat_type()).unwrap();
    let checks = selftest::check_nat_types(&lab).unwrap();
    assert_eq!(checks.len(), NatType::ALL.len());
    for c in &checks {
        assert!(
            c.passed(),
            "{}: expected {}, found {}\n{}",
            c.nat,
            c.expected,
            c.found.behaviour,
            c.output
        );
    }
    // Spot checks that do not go through `expected()`.
    let sym = checks.iter().find(|c| c.nat == NatType::Symmetric).unwrap();
    assert_eq!(
        sym.found.behaviour.mapping,
        Mapping::AddressAndPortDependent
    );
    assert!(sym.found.mapped.len() >= 2, "{:?}", sym.found.mapped);
    let full = checks.iter().find(|c| c.nat == NatType::FullCone).unwrap();
    assert_eq!(
        full.found.behaviour.filtering,
        Filtering::EndpointIndependent
    );
    let cgnat = checks.iter().find(|c| c.nat == NatType::Cgnat).unwrap();
    // The reflexive address is the CGN's, not the home router's 100.64 address.
    assert_eq!(
        cgnat.found.reflexive.ip(),
        std::net::IpAddr::V4(lab.site(5).unwrap().plan().wan)
    );
}

#[test]
#[ignore = "needs root and the NAT lab: cargo xtask interop"]
fn raw_punch_matrix_matches_the_expected_one() {
    let lab = Lab::start(&selftest::two_of_each()).unwrap();
    let cells = selftest::check_punch_matrix(&lab).unwrap();
    assert_eq!(cells.len(), 21);
    for c in &cells {
        assert!(
            c.passed(),
            "{} <-> {}: expected {}, got {:?}",
            c.a,
            c.b,
            c.expected,
            c.punch
        );
    }
    assert_eq!(cells.iter().filter(|c| c.punch.connected()).count(), 18);
}

#[test]
#[ignore = "needs root and the NAT lab: cargo xtask interop"]
fn commands_run_inside_the_host_namespace() {
    let lab = Lab::start(&LabConfig::pair(NatType::PortRestricted, NatType::None).without_server())
        .unwrap();
    let host = lab.host(0).unwrap();
    let out = host
        .output(
            "ip",
            &["-4", "-o", "addr", "show", "dev", "eth0"],
            Duration::from_secs(5),
        )
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.contains("10.1.0.2/24"), "{}", out.stdout);
    // The default route points at the site's router, nothing else is reachable.
    let routes = host
        .output("ip", &["-4", "route"], Duration::from_secs(5))
        .unwrap();
    assert!(
        routes.stdout.contains("default via 10.1.0.1 dev eth0"),
        "{}",
        routes.stdout
    );
    // A failing command's status and stderr come back too.
    let bad = host
        .output(
            "ip",
            &["link", "show", "dev", "nosuch0"],
            Duration::from_secs(5),
        )
        .unwrap();
    assert!(!bad.status.success());
    assert!(bad.stderr.contains("nosuch0"), "{}", bad.stderr);
    // Nothing routes out of the lab: the internet router has no default route (a route
    // lookup only, no packet is sent).
    let out = in8_interop::process::ChildGuard::spawn(
        lab.inet().command("ip").args(["route", "get", "8.8.8.8"]),
    )
    .unwrap()
    .wait(Duration::from_secs(5))
    .unwrap();
    assert!(!out.status.success(), "{}", out.combined());
    assert!(out.stderr.contains("unreachable"), "{}", out.stderr);
    // The public host is reachable from the NATed one through the internet router, and
    // sees the NAT's address.
    let public = lab.host(1).unwrap();
    let server = public.udp_socket(4000).unwrap();
    let client = host.udp_socket(0).unwrap();
    client.send_to(b"hi", (public.addr(), 4000)).unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 8];
    let (n, from) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hi");
    assert_eq!(
        from.ip(),
        std::net::IpAddr::V4(lab.site(0).unwrap().public_addr())
    );
}

#[test]
#[ignore = "needs root and the NAT lab: cargo xtask interop"]
fn lab_is_gone_after_a_panic() {
    let stem = std::sync::Mutex::new(String::new());
    let result = std::panic::catch_unwind(|| {
        let lab = Lab::start(&LabConfig::new().site(NatType::Cgnat)).unwrap();
        *stem.lock().unwrap() = lab.stem().to_owned();
        let coturn = lab.coturn().unwrap().pid().unwrap();
        assert!(std::path::Path::new(&format!("/proc/{coturn}")).exists());
        assert_eq!(
            clean::left_behind(lab.stem()).len(),
            5,
            "inet, srv, cgn, home, host"
        );
        panic!("a test fails while the lab runs");
    });
    assert!(result.is_err());
    let stem = stem.into_inner().unwrap();
    assert!(!stem.is_empty());
    assert_eq!(clean::left_behind(&stem), Vec::<String>::new());
}

#[test]
#[ignore = "needs root and the NAT lab: cargo xtask interop"]
fn clean_removes_leftovers_of_a_dead_owner() {
    // A namespace named as if a dead process had made it (pid 0 never owns a lab).
    let name = "in8lab-0-0-leftover";
    let _ = in8_interop::netns::delete_named(name);
    let ns = in8_interop::netns::Netns::create(name).unwrap();
    std::mem::forget(ns); // leak it, as a killed run would
    let cleaned = clean::stale().unwrap();
    assert!(cleaned.namespaces.iter().any(|n| n == name), "{cleaned:?}");
    assert!(
        !in8_interop::netns::list_lab_namespaces()
            .iter()
            .any(|n| n == name)
    );
}

#[test]
#[ignore = "needs root and the NAT lab: cargo xtask interop"]
fn impairment_adds_delay_and_loss_and_can_be_removed() {
    let cases = selftest::impairment_cases();
    let config = cases.iter().fold(LabConfig::new(), |c, i| {
        c.site_with(SiteConfig {
            impairment: *i,
            ..SiteConfig::new(NatType::None)
        })
    });
    let mut lab = Lab::start(&config).unwrap();
    let checks = selftest::check_impairment(&lab, &cases).unwrap();
    for c in &checks {
        assert!(
            c.passed(),
            "{:?}: loss {} median {:?}",
            c.impairment,
            c.loss(),
            c.median()
        );
    }
    let delayed = &checks[1];
    assert!(
        delayed.rtts[0] >= Duration::from_millis(100),
        "{:?}",
        delayed.rtts[0]
    );
    // Removing the impairment restores the plain link; the counters saw the traffic.
    let stats = lab
        .site_mut(1)
        .unwrap()
        .clear_impairment()
        .unwrap()
        .unwrap();
    assert!(stats.released >= 200, "{stats:?}");
    assert_eq!(stats.lost, 0);
    let server = lab.coturn().unwrap().stun_addr();
    let socket = lab.host(1).unwrap().udp_socket(0).unwrap();
    let rtt = stun::round_trip(&socket, server, Duration::from_secs(1))
        .unwrap()
        .unwrap();
    assert!(rtt < Duration::from_millis(50), "{rtt:?}");
    // And it can be put back at run time.
    lab.site_mut(1)
        .unwrap()
        .impair(Impairment::delay(Duration::from_millis(30)))
        .unwrap();
    let rtt = stun::round_trip(&socket, server, Duration::from_secs(1))
        .unwrap()
        .unwrap();
    assert!(rtt >= Duration::from_millis(60), "{rtt:?}");
}

#[test]
#[ignore = "needs root and the NAT lab: cargo xtask interop"]
fn turn_relays_for_the_static_user_behind_a_symmetric_nat() {
    let lab = Lab::start(&LabConfig::new().site(NatType::Symmetric)).unwrap();
    let check = selftest::check_turn(&lab, 0).unwrap();
    assert!(check.passed(), "{check:?}");
}

#[test]
#[ignore = "needs root and the NAT lab: cargo xtask interop"]
fn natdiscovery_run_helper_agrees_with_the_batch_check() {
    let lab = Lab::start(&LabConfig::new().site(NatType::Restricted)).unwrap();
    let host = lab.host(0).unwrap();
    let server = lab.coturn().unwrap().stun_addr();
    let (d, out) = natdiscovery::run(host.netns(), host.addr().into(), server).unwrap();
    assert!(out.status.success(), "{}", out.combined());
    assert_eq!(d.behaviour, NatType::Restricted.expected());
}

#[test]
#[ignore = "needs root and the NAT lab: cargo xtask interop"]
fn hosts_of_one_site_share_its_public_address_and_their_lan() {
    let lab = Lab::start(&LabConfig::new().site_with(SiteConfig {
        hosts: 3,
        ..SiteConfig::new(NatType::PortRestricted)
    }))
    .unwrap();
    let site = lab.site(0).unwrap();
    assert_eq!(site.hosts().len(), 3);
    let server = lab.coturn().unwrap().stun_addr();
    let mut seen = Vec::new();
    for host in site.hosts() {
        let socket = host.udp_socket(0).unwrap();
        let reflexive = stun::query(&socket, server, Duration::from_secs(3)).unwrap();
        assert_eq!(reflexive.ip(), std::net::IpAddr::V4(site.public_addr()));
        seen.push(host.addr());
    }
    seen.dedup();
    assert_eq!(seen.len(), 3, "{seen:?}");
    // Hosts of one site reach each other directly on the LAN (no NAT between them).
    let (a, b) = (site.host(0).unwrap(), site.host(2).unwrap());
    let rx = b.udp_socket(5000).unwrap();
    a.udp_socket(0)
        .unwrap()
        .send_to(b"lan", (b.addr(), 5000))
        .unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 8];
    let (_, from) = rx.recv_from(&mut buf).unwrap();
    assert_eq!(from.ip(), std::net::IpAddr::V4(a.addr()));
}
