//! in8's NAT classification against coturn's `turnutils_natdiscovery`, on a host behind
//! each of the lab's NAT types: both must name the same mapping and filtering. Twice: the
//! `in8 nat` command as it is, and `in8_ice::nat` (its probe plan and pure classification)
//! driven as RFC 5780 §4 describes, filtering tests from a fresh socket.
//! Needs root and the lab's Debian packages: `cargo xtask interop` or
//! `cargo test -p in8-interop -- --ignored`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use in8_ice::nat::{self, NatClass, Observation, Reflector};
use in8_ice::stun::{Message, TransactionId};
use in8_interop::nat::{Behaviour, Filtering, Mapping};
use in8_interop::{Host, Lab, LabConfig, NatType, natdiscovery};

/// How long one probe waits for its answer (retransmitting with a doubling interval, as
/// RFC 8489 §6.2.1 asks; `in8 nat` defaults to 2 s too).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Sends `probe` from `sock` until an answer with its transaction id arrives, from any
/// address (RFC 5780 answers to CHANGE-REQUEST come from the alternate one), or the
/// timeout passes.
fn ask(sock: &UdpSocket, probe: &nat::Probe) -> Option<Vec<u8>> {
    let tid = TransactionId::random(&mut rand::rng());
    let request = probe.request(tid);
    let deadline = Instant::now() + PROBE_TIMEOUT;
    let mut rto = Duration::from_millis(250);
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        sock.send_to(&request, probe.to).unwrap();
        let resend = (Instant::now() + rto).min(deadline);
        rto *= 2;
        while let Some(left) = resend.checked_duration_since(Instant::now()) {
            if left.is_zero() {
                break;
            }
            sock.set_read_timeout(Some(left)).unwrap();
            let Ok((n, _)) = sock.recv_from(&mut buf) else {
                continue;
            };
            if Message::parse(&buf[..n]).is_ok_and(|m| m.transaction_id() == tid) {
                return Some(buf[..n].to_vec());
            }
        }
    }
    None
}

/// Test I from a new socket in `host`'s namespace: the socket, its local address, and the
/// server's RFC 5780 OTHER-ADDRESS.
fn test_one(host: &Host, server: SocketAddr) -> (UdpSocket, SocketAddr, Observation, SocketAddr) {
    let sock = host.udp_socket(0).unwrap();
    let local = sock.local_addr().unwrap();
    let probe = nat::Probe {
        to: server,
        change_ip: false,
        change_port: false,
    };
    let answer = ask(&sock, &probe).expect("coturn answers Test I");
    let other = nat::other_address(&answer).expect("the lab's coturn has an alternate address");
    let obs = Observation {
        probe,
        mapped: nat::mapped_address(&answer),
    };
    (sock, local, obs, other)
}

fn observe(sock: &UdpSocket, probes: impl IntoIterator<Item = nat::Probe>) -> Vec<Observation> {
    probes
        .into_iter()
        .map(|probe| Observation {
            probe,
            mapped: ask(sock, &probe).as_deref().and_then(nat::mapped_address),
        })
        .collect()
}

/// in8's classification of the NAT in front of `host`, probing as RFC 5780 §4 describes:
/// the mapping tests (§4.3) from one socket, the filtering tests (§4.4) from a fresh one,
/// because "These tests are sensitive to prior state on the NAT": after the mapping tests
/// contacted the alternate address and port, a cone NAT lets its answers in whatever it
/// filters. Each set is classified by `in8_ice::nat::classify`.
fn in8_classify_rfc5780(host: &Host, server: SocketAddr) -> (NatClass, Vec<Observation>) {
    let plan = nat::probe_plan(&[Reflector {
        addr: server,
        other: Some(test_one(host, server).3),
    }]);
    let (is_mapping, is_filtering): (Vec<_>, Vec<_>) =
        plan.iter().partition(|p| !p.change_ip && !p.change_port);
    let (sock, local, first, _) = test_one(host, server);
    let mut m_obs = vec![first];
    m_obs.extend(observe(&sock, is_mapping.into_iter().skip(1)));
    let (sock, f_local, first, _) = test_one(host, server);
    let mut f_obs = vec![first];
    f_obs.extend(observe(&sock, is_filtering));
    let class = NatClass {
        filtering: nat::classify(f_local, &f_obs).filtering,
        ..nat::classify(local, &m_obs)
    };
    m_obs.extend(f_obs);
    (class, m_obs)
}

/// The `in8` binary: `$IN8_BIN`, else the newer of the workspace's debug and release
/// builds (`cargo test --workspace` builds the debug one).
fn in8_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("IN8_BIN") {
        return p.into();
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    ["debug", "release"]
        .iter()
        .map(|p| target.join(p).join("in8"))
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
        .expect("no in8 binary: build it with `cargo build -p in8-cli` (or set IN8_BIN)")
}

/// `in8 --json nat --stun <server>` run on `host`: its class and the probes it reports.
fn in8_nat_cli(host: &Host, server: SocketAddr) -> (NatClass, Vec<Observation>) {
    let out = host
        .output(
            in8_binary().to_str().unwrap(),
            &["--json", "nat", "--stun", &server.to_string()],
            Duration::from_secs(60),
        )
        .unwrap();
    assert!(out.status.success(), "in8 nat failed: {}", out.combined());
    let ev: serde_json::Value = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "nat")
        .unwrap_or_else(|| panic!("no nat event: {}", out.combined()));
    let mapping = match ev["mapping"].as_str() {
        Some("no-nat") => Some(nat::Mapping::NoNat),
        Some("endpoint-independent") => Some(nat::Mapping::EndpointIndependent),
        Some("address-dependent") => Some(nat::Mapping::AddressDependent),
        Some("address-and-port-dependent") => Some(nat::Mapping::AddressAndPortDependent),
        _ => None,
    };
    let filtering = match ev["filtering"].as_str() {
        Some("endpoint-independent") => Some(nat::Filtering::EndpointIndependent),
        Some("address-dependent") => Some(nat::Filtering::AddressDependent),
        Some("address-and-port-dependent") => Some(nat::Filtering::AddressAndPortDependent),
        _ => None,
    };
    let addr = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<SocketAddr>().ok());
    let obs = ev["probes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    Some(Observation {
                        probe: nat::Probe {
                            to: addr(&p["to"])?,
                            change_ip: p["change_ip"].as_bool()?,
                            change_port: p["change_port"].as_bool()?,
                        },
                        mapped: addr(&p["mapped"]),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let class = NatClass {
        mapping,
        filtering,
        ports: nat::PortAllocation::Unknown,
    };
    (class, obs)
}

/// in8's class in the lab's terms (`translated` from in8's "no NAT" mapping).
fn as_behaviour(c: &NatClass) -> Option<Behaviour> {
    let (translated, mapping) = match c.mapping? {
        nat::Mapping::NoNat => (false, Mapping::EndpointIndependent),
        nat::Mapping::EndpointIndependent => (true, Mapping::EndpointIndependent),
        nat::Mapping::AddressDependent => (true, Mapping::AddressDependent),
        nat::Mapping::AddressAndPortDependent => (true, Mapping::AddressAndPortDependent),
    };
    let filtering = match c.filtering? {
        nat::Filtering::EndpointIndependent => Filtering::EndpointIndependent,
        nat::Filtering::AddressDependent => Filtering::AddressDependent,
        nat::Filtering::AddressAndPortDependent => Filtering::AddressAndPortDependent,
    };
    Some(Behaviour {
        translated,
        mapping,
        filtering,
    })
}

/// Runs `classify` on a host of each NAT type and compares with turnutils_natdiscovery.
fn compare(classify: fn(&Host, SocketAddr) -> (NatClass, Vec<Observation>)) {
    let lab = Lab::start(&LabConfig::every_nat_type()).unwrap();
    let server = lab.coturn().unwrap().stun_addr();
    let mut found = Vec::new();
    for (i, nat_type) in NatType::ALL.into_iter().enumerate() {
        let host = lab.host(i).unwrap();
        let (coturn, out) = natdiscovery::run(host.netns(), host.addr().into(), server).unwrap();
        assert_eq!(
            coturn.behaviour,
            nat_type.expected(),
            "{nat_type}: coturn's tool disagrees with the lab\n{}",
            out.combined()
        );
        let (class, obs) = classify(host, server);
        // in8's public address is the one coturn's tool saw (the CGN's for CGNAT).
        let test_one = obs
            .iter()
            .find(|o| !o.probe.change_ip && !o.probe.change_port);
        assert_eq!(
            test_one.and_then(|o| o.mapped).map(|m| m.ip()),
            Some(coturn.reflexive.ip()),
            "{nat_type}"
        );
        found.push((nat_type, coturn.behaviour, class, obs));
    }
    let wrong: Vec<String> = found
        .iter()
        .filter(|(_, coturn, class, _)| as_behaviour(class) != Some(*coturn))
        .map(|(t, coturn, class, obs)| {
            format!("{t}: turnutils_natdiscovery {coturn}, in8 {class:?}\nprobes: {obs:?}")
        })
        .collect();
    assert!(wrong.is_empty(), "in8 disagrees:\n{}", wrong.join("\n"));
}

#[test]
#[ignore = "needs root and the NAT lab: cargo xtask interop"]
fn in8_classification_agrees_with_turnutils_natdiscovery_for_every_nat_type() {
    compare(in8_classify_rfc5780);
}

/// `in8 nat` itself, on each host.
#[test]
#[ignore = "needs root and the NAT lab: cargo xtask interop"]
fn in8_nat_command_agrees_with_turnutils_natdiscovery() {
    compare(in8_nat_cli);
}
