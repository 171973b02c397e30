//! in8-ice against aioice (PyPI, the ICE layer of aiortc) through the NAT lab's routers, in
//! both roles: in8's agent runs in this process on a socket inside one site's host, aioice
//! as a Python process inside the other site's host; both gather host and server-reflexive
//! candidates from the lab's coturn, swap them through pipes (the signalling), nominate a
//! pair through the NATs, and a datagram goes to aioice and is echoed back over it.
//! Needs root, the lab's Debian packages and the Python venv: `cargo xtask interop`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

#[path = "support/signalling.rs"]
mod signalling;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::{ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use in8_ice::{
    Agent, Candidate, CandidateKind, Config, Credentials, Event, LocalCandidate, Role,
    candidate_priority,
};
use in8_interop::process::ChildGuard;
use in8_interop::venv::{FOREIGN_PEERS, Venv, default_dir};
use in8_interop::{Host, Lab, LabConfig, NatType, stun};

/// The probe in8 sends to aioice over the nominated pair (not STUN: its first byte is
/// outside 0..=3, RFC 7983).
const PROBE: &[u8] = b"in8 through the lab's NATs";

struct Peer {
    _guard: ChildGuard,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Peer {
    /// Starts the aioice peer on `host` with the lab's coturn as its STUN server.
    fn start(host: &Host, role: &str, stun: SocketAddr) -> Self {
        let venv = Venv::ensure(&default_dir(), FOREIGN_PEERS).expect("python venv with aioice");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/aioice_peer.py");
        let mut cmd = host.command(venv.python());
        cmd.args([script, role, "10", "--echo", "--host"])
            .arg(host.addr().to_string())
            .args(["--stun", &stun.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut guard = ChildGuard::spawn_plain(&mut cmd).unwrap();
        let (out, _) = guard.take_pipes();
        let stdin = guard.take_stdin().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out.unwrap()).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Peer {
            _guard: guard,
            stdin,
            lines,
        }
    }

    fn line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Reads the peer's offer.
    fn offer(&self) -> (Credentials, Vec<Candidate>) {
        signalling::read_offer(|| self.line(Duration::from_secs(30)).expect("aioice offer"))
    }

    fn answer(&mut self, creds: &Credentials, cands: &[LocalCandidate]) {
        self.stdin
            .write_all(signalling::answer(creds, cands).as_bytes())
            .unwrap();
        self.stdin.flush().unwrap();
    }

    /// The next line starting with one of `prefixes`.
    fn expect(&self, prefixes: &[&str], timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.line(left) {
                Some(l) if prefixes.iter().any(|p| l.starts_with(p)) => return l,
                Some(_) => {}
                None => break,
            }
        }
        panic!("aioice printed none of {prefixes:?} within {timeout:?}");
    }
}

/// Drives `agent` on `sock` for `d` (drain transmits and events after every input and
/// timeout); datagrams that are not STUN are returned.
fn drive(
    agent: &mut Agent,
    sock: &UdpSocket,
    d: Duration,
    events: &mut Vec<Event>,
) -> Vec<Vec<u8>> {
    let local = sock.local_addr().unwrap();
    let end = Instant::now() + d;
    let mut buf = [0u8; 1500];
    let mut other = Vec::new();
    loop {
        while let Some(t) = agent.poll_transmit() {
            sock.send_to(&t.contents, t.to).unwrap();
        }
        events.extend(std::iter::from_fn(|| agent.poll_event()));
        let now = Instant::now();
        if now >= end {
            return other;
        }
        let wake = agent.poll_timeout().unwrap_or(end).min(end);
        sock.set_read_timeout(Some(
            wake.saturating_duration_since(now)
                .max(Duration::from_millis(1)),
        ))
        .unwrap();
        match sock.recv_from(&mut buf) {
            // RFC 7983: STUN's first byte is 0..=3.
            Ok((n, _)) if n > 0 && buf[0] > 3 => other.push(buf[..n].to_vec()),
            Ok((n, from)) => {
                let _ = agent.handle_packet(Instant::now(), from, local, &buf[..n]);
            }
            Err(_) => agent.handle_timeout(Instant::now()),
        }
        if agent.poll_timeout().is_some_and(|t| t <= Instant::now()) {
            agent.handle_timeout(Instant::now());
        }
    }
}

/// in8 behind `ours`, aioice behind `theirs` in the role `aioice_role`.
fn run(ours: NatType, theirs: NatType, aioice_role: &str) {
    let lab = Lab::start(&LabConfig::pair(ours, theirs)).unwrap();
    let stun_server = lab.coturn().unwrap().stun_addr();
    let (me, them) = (lab.host(0).unwrap(), lab.host(1).unwrap());
    let mut peer = Peer::start(them, aioice_role, stun_server);
    let (remote, remote_cands) = peer.offer();
    assert!(
        remote_cands
            .iter()
            .any(|c| c.kind == CandidateKind::ServerReflexive)
            || theirs == NatType::None,
        "aioice gathered no srflx candidate from the lab's coturn: {remote_cands:?}"
    );
    let sock = me.udp_socket(0).unwrap();
    let local = sock.local_addr().unwrap();
    let srflx = stun::query(&sock, stun_server, Duration::from_secs(3)).unwrap();
    let mut locals = vec![LocalCandidate::host(local, 0)];
    if srflx != local {
        locals.push(LocalCandidate::new(
            Candidate {
                kind: CandidateKind::ServerReflexive,
                addr: srflx,
                priority: candidate_priority(CandidateKind::ServerReflexive, 65535),
            },
            local,
        ));
    }
    let our_role = if aioice_role == "controlling" {
        Role::Controlled
    } else {
        Role::Controlling
    };
    let creds = Credentials::random(&mut rand::rng());
    let mut agent = Agent::new(Config::default(), our_role, creds.clone(), 11);
    agent.set_remote_credentials(remote);
    for c in &locals {
        agent.add_local_candidate(*c).unwrap();
    }
    for c in &remote_cands {
        agent.add_remote_candidate(*c).unwrap();
    }
    peer.answer(&creds, &locals);
    agent.handle_timeout(Instant::now());
    let mut events = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while !agent.is_connected() && Instant::now() < end {
        drive(&mut agent, &sock, Duration::from_millis(100), &mut events);
    }
    assert!(
        agent.is_connected(),
        "in8 ({our_role:?}, behind {ours}) against aioice (behind {theirs}): {events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Selected {
                nominated: true,
                ..
            }
        )),
        "{events:?}"
    );
    let line = peer.expect(&["CONNECTED", "FAILED"], Duration::from_secs(15));
    assert!(line.starts_with("CONNECTED"), "aioice: {line}");
    // aioice's pair ends at our NAT's public side (or at our host when we have none).
    let public_ip = lab.site(0).unwrap().public_addr();
    assert!(
        line.split_whitespace()
            .nth(2)
            .is_some_and(|r| r.starts_with(&format!("{public_ip}:"))),
        "aioice's remote is not in8's public address {public_ip}: {line}"
    );
    // Data over the nominated pair, echoed back through both NATs.
    let (_, to) = agent.selected_pair().unwrap();
    sock.send_to(PROBE, to).unwrap();
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(5);
    while got.is_empty() && Instant::now() < end {
        got = drive(&mut agent, &sock, Duration::from_millis(200), &mut events);
    }
    assert!(
        got.iter().any(|d| d == PROBE),
        "no echo from aioice ({})",
        peer.expect(&["ECHO", "NOECHO"], Duration::from_secs(1))
    );
    assert!(
        peer.expect(&["ECHO"], Duration::from_secs(2))
            .starts_with("ECHO 26")
    );
    // Consent (RFC 7675) keeps the pair while aioice answers.
    events.clear();
    drive(&mut agent, &sock, Duration::from_secs(3), &mut events);
    assert!(agent.selected_pair().is_some(), "consent kept: {events:?}");
    assert!(
        !events.iter().any(|e| matches!(e, Event::Failed { .. })),
        "{events:?}"
    );
}

#[test]
#[ignore = "needs root and the NAT lab: cargo xtask interop"]
fn in8_controlling_behind_port_restricted_aioice_behind_port_restricted() {
    run(
        NatType::PortRestricted,
        NatType::PortRestricted,
        "controlled",
    );
}

#[test]
#[ignore = "needs root and the NAT lab: cargo xtask interop"]
fn in8_controlled_behind_port_restricted_aioice_behind_port_restricted() {
    run(
        NatType::PortRestricted,
        NatType::PortRestricted,
        "controlling",
    );
}

#[test]
#[ignore = "needs root and the NAT lab: cargo xtask interop"]
fn in8_controlling_behind_symmetric_aioice_behind_full_cone() {
    run(NatType::Symmetric, NatType::FullCone, "controlled");
}

#[test]
#[ignore = "needs root and the NAT lab: cargo xtask interop"]
fn in8_controlled_behind_symmetric_aioice_behind_full_cone() {
    run(NatType::Symmetric, NatType::FullCone, "controlling");
}
