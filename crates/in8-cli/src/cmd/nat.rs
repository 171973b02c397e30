//! `in8 nat`: what kind of NAT this machine is behind, from the RFC 5780 probe plan of
//! in8-ice run against the given STUN servers, and what that means for connecting.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use in8_ice::nat::{self, Filtering, Mapping, NatClass, Observation, PortAllocation, Reflector};
use in8_ice::stun::{Message, TransactionId};
use serde_json::json;
use tokio::net::UdpSocket;

use crate::output::Output;

/// Default STUN port when an address has none.
const STUN_PORT: u16 = 3478;
/// First retransmission interval.
const RTO: Duration = Duration::from_millis(250);

/// Arguments of `in8 nat`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// A STUN server, HOST[:PORT] (port 3478 if omitted); repeatable. One with an alternate
    /// address (RFC 5780 OTHER-ADDRESS: coturn with two IPs, `in8 stun --alternate`) tests
    /// mapping and filtering; several plain servers on different IPs test mapping only.
    #[arg(long = "stun", value_name = "ADDR", required = true, value_parser = parse_server)]
    stun: Vec<SocketAddr>,
    /// Local IP address to probe from [default: the one this machine uses to reach the
    /// first server].
    #[arg(long)]
    bind: Option<IpAddr>,
    /// Local UDP port to probe from (0 = any).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// How long to wait for each answer (retransmitting meanwhile).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// Parses `HOST[:PORT]`, resolving a host name.
fn parse_server(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, STUN_PORT));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("bad port in {s:?} (expected HOST[:PORT])"))?,
        ),
        None => (s, STUN_PORT),
    };
    // Catch typos before asking DNS: a dotted number is a (bad) IP address, and host names
    // have letters, digits, '-' and '.' only.
    let plain_host = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !plain_host || host.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!(
            "{s:?} is not an IP address or host name (expected HOST[:PORT], e.g. 192.0.2.1:3478)"
        ));
    }
    let with_port = format!("{host}:{port}");
    let mut addrs: Vec<SocketAddr> = with_port
        .to_socket_addrs()
        .map_err(|e| {
            format!("cannot resolve {s:?}: {e} (expected HOST[:PORT], e.g. 192.0.2.1:3478)")
        })?
        .collect();
    addrs.sort_by_key(|a| a.is_ipv6());
    addrs
        .into_iter()
        .next()
        .ok_or_else(|| format!("{s:?} has no address"))
}

/// The name of a mapping behaviour (JSON and text).
fn mapping_name(m: Mapping) -> &'static str {
    match m {
        Mapping::NoNat => "no-nat",
        Mapping::EndpointIndependent => "endpoint-independent",
        Mapping::AddressDependent => "address-dependent",
        Mapping::AddressAndPortDependent => "address-and-port-dependent",
    }
}

fn filtering_name(f: Filtering) -> &'static str {
    match f {
        Filtering::EndpointIndependent => "endpoint-independent",
        Filtering::AddressDependent => "address-dependent",
        Filtering::AddressAndPortDependent => "address-and-port-dependent",
    }
}

fn ports_name(p: PortAllocation) -> &'static str {
    match p {
        PortAllocation::Preserving => "preserving",
        PortAllocation::Sequential { .. } => "sequential",
        PortAllocation::Random => "random",
        PortAllocation::Unknown => "unknown",
    }
}

/// The common name of the NAT type and one sentence on what it means for in8.
pub(crate) fn verdict(c: &NatClass) -> (&'static str, String) {
    use Filtering as F;
    use Mapping as M;
    let (name, advice): (&str, String) = match (c.mapping, c.filtering) {
        (Some(M::NoNat), None | Some(F::EndpointIndependent)) => (
            "no NAT",
            "peers reach this address directly, so one-way joins to your invitations work (phase 1)"
                .into(),
        ),
        (Some(M::NoNat), Some(_)) => (
            "no NAT, filtering firewall",
            "one-way joins to you fail (the firewall drops peers you have not contacted), RSVP works"
                .into(),
        ),
        (Some(M::EndpointIndependent), Some(F::EndpointIndependent)) => (
            "full-cone NAT",
            "one-way joins to you work when your invitation carries your public address (invite with --stun)"
                .into(),
        ),
        (Some(M::EndpointIndependent), Some(F::AddressDependent)) => (
            "restricted-cone NAT",
            "one-way joins to you fail, RSVP works".into(),
        ),
        (Some(M::EndpointIndependent), Some(F::AddressAndPortDependent)) => (
            "port-restricted cone NAT",
            "one-way joins to you fail, RSVP works".into(),
        ),
        (Some(M::EndpointIndependent), None) => (
            "cone NAT (filtering not tested)",
            "RSVP works; whether one-way joins to you work depends on the filtering: test it with a STUN server that has an alternate address (coturn, `in8 stun --alternate`)"
                .into(),
        ),
        (Some(M::AddressDependent | M::AddressAndPortDependent), _) => {
            let mut s: String = "peers see a different port than STUN servers do: connecting works with peers whose NAT filters by address only or not at all; with a port-restricted peer in8 runs birthday probing after the RSVP (unless --no-birthday); with a symmetric peer use a relay (--relay --turn)".into();
            if let PortAllocation::Sequential { delta } = c.ports {
                s.push_str(&format!(
                    "; ports are allocated in steps of {delta}, so port prediction may help"
                ));
            }
            ("symmetric NAT", s)
        }
        (None, _) => (
            "unknown",
            "one plain STUN server shows only the public address: add a --stun server on another IP, or use one with an alternate address"
                .into(),
        ),
    };
    (name, advice)
}

/// Sends `request` to `to` and retransmits until an answer with the same transaction id
/// arrives (from any address: RFC 5780 answers come from the alternate one) or `timeout`.
async fn ask(
    sock: &UdpSocket,
    to: SocketAddr,
    probe: &nat::Probe,
    timeout: Duration,
) -> Option<Vec<u8>> {
    let tid = TransactionId::random(&mut rand::rng());
    let request = probe.request(tid);
    let deadline = tokio::time::Instant::now() + timeout;
    // RFC 8489 §6.2.1: "A client SHOULD retransmit a STUN request message starting with an
    // interval of RTO ("Retransmission TimeOut"), doubling after each retransmission."
    let mut rto = RTO;
    let mut buf = [0u8; 2048];
    loop {
        let _ = sock.send_to(&request, to).await;
        let resend = (tokio::time::Instant::now() + rto).min(deadline);
        rto *= 2;
        loop {
            match tokio::time::timeout_at(resend, sock.recv_from(&mut buf)).await {
                Err(_) => break,
                // ICMP errors from earlier sends surface here on Linux: keep listening.
                Ok(Err(_)) => continue,
                Ok(Ok((n, _from))) => {
                    let answer = &buf[..n];
                    if Message::parse(answer).is_ok_and(|m| m.transaction_id() == tid) {
                        return Some(answer.to_vec());
                    }
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
    }
}

/// The probe plan with the filtering probes (CHANGE-REQUEST) first. RFC 5780 §4.4: "These
/// tests are sensitive to prior state on the NAT." Once the mapping tests have sent to a
/// server's alternate address and port, a cone NAT lets the CHANGE-REQUEST answers from
/// there in whatever it filters (measured in the NAT lab: restricted, port-restricted and
/// CGNAT read as full cone). Run first, they see only the servers' primary addresses
/// contacted (Test I). The plain probes keep their order (port-allocation detection).
fn filtering_first(reflectors: &[Reflector]) -> Vec<nat::Probe> {
    let mut plan = nat::probe_plan(reflectors);
    plan.sort_by_key(|p| !(p.change_ip || p.change_port));
    plan
}

/// The local IP the system uses to reach `server` (for the "no NAT" comparison).
async fn route_ip(server: SocketAddr) -> Result<IpAddr> {
    let unspecified: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = UdpSocket::bind(unspecified).await?;
    s.connect(server)
        .await
        .with_context(|| format!("no route to {server}"))?;
    Ok(s.local_addr()?.ip())
}

pub(crate) fn run(a: &Args, out: &Output) -> Result<ExitCode> {
    crate::run_async(async {
        let first = a.stun[0];
        let ip = match a.bind {
            Some(ip) => ip,
            None => route_ip(first).await?,
        };
        let sock = UdpSocket::bind(SocketAddr::new(ip, a.port))
            .await
            .with_context(|| format!("cannot bind UDP {ip}:{}", a.port))?;
        let local = sock.local_addr()?;
        out.note(format!("probing from {local}…"));
        // Test I against each server: who answers, and who has an alternate address.
        let mut servers = Vec::new();
        let mut reflectors = Vec::new();
        for &addr in &a.stun {
            let plain = nat::Probe {
                to: addr,
                change_ip: false,
                change_port: false,
            };
            let answer = if addr.is_ipv4() == local.is_ipv4() {
                ask(&sock, addr, &plain, a.timeout).await
            } else {
                None
            };
            let mapped = answer.as_deref().and_then(nat::mapped_address);
            let other = answer.as_deref().and_then(nat::other_address);
            servers.push(
                json!({"addr": addr.to_string(), "answered": mapped.is_some(),
                "other_address": other.map(|o| o.to_string())}),
            );
            if mapped.is_some() {
                reflectors.push(Reflector { addr, other });
            } else {
                out.note(format!("{addr} did not answer"));
            }
        }
        if reflectors.is_empty() {
            return Err(anyhow::Error::new(crate::output::Unreachable(format!(
                "no STUN server answered ({} asked from {local} for {} s each, with retransmissions): check the address and port, that the server runs (`in8 stun` starts one) and that this network lets UDP out",
                a.stun
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                a.timeout.as_secs_f32()
            ))));
        }
        let mut obs = Vec::new();
        for probe in filtering_first(&reflectors) {
            let mapped = ask(&sock, probe.to, &probe, a.timeout)
                .await
                .as_deref()
                .and_then(nat::mapped_address);
            obs.push(Observation { probe, mapped });
        }
        let class = nat::classify(local, &obs);
        let public = obs.iter().find_map(|o| o.mapped);
        report(out, local, public, &class, &servers, &obs);
        Ok(ExitCode::SUCCESS)
    })
}

fn report(
    out: &Output,
    local: SocketAddr,
    public: Option<SocketAddr>,
    class: &NatClass,
    servers: &[serde_json::Value],
    obs: &[Observation],
) {
    let (name, advice) = verdict(class);
    let delta = match class.ports {
        PortAllocation::Sequential { delta } => Some(delta),
        _ => None,
    };
    out.event(json!({
        "event": "nat",
        "local": local.to_string(),
        "public": public.map(|p| p.to_string()),
        "mapping": class.mapping.map(mapping_name),
        "filtering": class.filtering.map(filtering_name),
        "ports": ports_name(class.ports),
        "port_delta": delta,
        "nat_type": name,
        "advice": advice,
        "servers": servers,
        "probes": obs.iter().map(|o| json!({
            "to": o.probe.to.to_string(),
            "change_ip": o.probe.change_ip,
            "change_port": o.probe.change_port,
            "mapped": o.mapped.map(|m| m.to_string()),
        })).collect::<Vec<_>>(),
    }));
    if out.json() {
        return;
    }
    let untested = "not tested (needs a STUN server with an alternate address)";
    println!("local address    {local}");
    println!(
        "public address   {}",
        public.map_or("-".into(), |p| p.to_string())
    );
    println!(
        "mapping          {}",
        class.mapping.map_or("unknown (see below)", mapping_name)
    );
    println!(
        "filtering        {}",
        class.filtering.map_or(untested, filtering_name)
    );
    println!(
        "port allocation  {}{}",
        ports_name(class.ports),
        delta.map(|d| format!(" (step {d})")).unwrap_or_default()
    );
    println!("=> {name}: {advice}.");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(mapping: Option<Mapping>, filtering: Option<Filtering>) -> NatClass {
        NatClass {
            mapping,
            filtering,
            ports: PortAllocation::Unknown,
        }
    }

    #[test]
    fn verdicts_name_the_nat_and_say_what_works() {
        let (n, a) = verdict(&class(
            Some(Mapping::EndpointIndependent),
            Some(Filtering::AddressAndPortDependent),
        ));
        assert_eq!(n, "port-restricted cone NAT");
        assert_eq!(a, "one-way joins to you fail, RSVP works");
        let (n, _) = verdict(&class(Some(Mapping::NoNat), None));
        assert_eq!(n, "no NAT");
        let mut sym = class(Some(Mapping::AddressAndPortDependent), None);
        sym.ports = PortAllocation::Sequential { delta: 2 };
        let (n, a) = verdict(&sym);
        assert_eq!(n, "symmetric NAT");
        assert!(a.contains("relay") && a.contains("steps of 2"), "{a}");
        let (n, a) = verdict(&class(None, None));
        assert_eq!(n, "unknown");
        assert!(a.contains("--stun"));
    }

    #[test]
    fn filtering_probes_run_before_any_probe_reaches_an_alternate_address() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let reflectors = [
            Reflector {
                addr: a("192.0.2.10:3478"),
                other: Some(a("192.0.2.11:3479")),
            },
            Reflector {
                addr: a("198.51.100.1:3478"),
                other: None,
            },
        ];
        let plan = filtering_first(&reflectors);
        assert_eq!(plan.len(), nat::probe_plan(&reflectors).len());
        let first_plain = plan
            .iter()
            .position(|p| !p.change_ip && !p.change_port)
            .unwrap();
        assert_eq!(first_plain, 2, "{plan:?}");
        assert!(
            plan[first_plain..]
                .iter()
                .all(|p| !p.change_ip && !p.change_port)
        );
        let plain: Vec<SocketAddr> = plan[first_plain..].iter().map(|p| p.to).collect();
        assert_eq!(
            plain,
            [
                a("192.0.2.10:3478"),
                a("192.0.2.11:3478"),
                a("192.0.2.11:3479"),
                a("198.51.100.1:3478")
            ]
        );
    }

    #[test]
    fn server_addresses_default_to_port_3478() {
        assert_eq!(
            parse_server("192.0.2.1").unwrap(),
            "192.0.2.1:3478".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            parse_server("127.0.0.1:9").unwrap(),
            "127.0.0.1:9".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            parse_server("localhost:5").unwrap().port(),
            5,
            "host names resolve"
        );
        for bad in ["300.1.1.1:3478", "no such host", "192.0.2.1:port", ""] {
            assert!(parse_server(bad).is_err(), "{bad}");
        }
    }
}
