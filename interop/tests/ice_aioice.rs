//! in8-ice against aioice (PyPI, the ICE layer of aiortc) through real UDP sockets on
//! loopback, in both roles: both sides reach a nominated pair, and in8 keeps consent while
//! aioice answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

#[path = "support/signalling.rs"]
mod signalling;

use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use in8_ice::{Agent, Candidate, Config, Credentials, Event, LocalCandidate, Role};
use in8_interop::venv::{FOREIGN_PEERS, Venv, default_dir};

struct Peer {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    fn start(role: &str, hold_secs: u32) -> Self {
        let venv = Venv::ensure(&default_dir(), FOREIGN_PEERS).expect("python venv with aioice");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/aioice_peer.py");
        let mut child = Command::new(venv.python())
            .args([script, role, &hold_secs.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the aioice peer");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Peer {
            child,
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
}

/// Drives `agent` on `sock` with the real clock for `d` (the drive contract: drain
/// transmits and events after every input and timeout).
fn drive(agent: &mut Agent, sock: &UdpSocket, d: Duration, events: &mut Vec<Event>) {
    let local = sock.local_addr().unwrap();
    let end = Instant::now() + d;
    let mut buf = [0u8; 1500];
    loop {
        while let Some(t) = agent.poll_transmit() {
            assert_eq!(t.from, local);
            sock.send_to(&t.contents, t.to).unwrap();
        }
        while let Some(e) = agent.poll_event() {
            events.push(e);
        }
        let now = Instant::now();
        if now >= end {
            return;
        }
        let wake = agent.poll_timeout().unwrap_or(end).min(end);
        let wait = wake
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        sock.set_read_timeout(Some(wait)).unwrap();
        match sock.recv_from(&mut buf) {
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

fn run(aioice_role: &str, our_role: Role) {
    let hold = 12;
    let mut peer = Peer::start(aioice_role, hold);
    let (remote, remote_cands) = peer.offer();
    assert!(!remote_cands.is_empty());
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let local_addr = sock.local_addr().unwrap();
    let mut rng = rand::rng();
    let creds = Credentials::random(&mut rng);
    let mut agent = Agent::new(Config::default(), our_role, creds.clone(), 7);
    agent.set_remote_credentials(remote);
    let host = LocalCandidate::host(local_addr, 0);
    agent.add_local_candidate(host).unwrap();
    for c in remote_cands {
        agent.add_remote_candidate(c).unwrap();
    }
    peer.answer(&creds, &[host]);
    agent.handle_timeout(Instant::now());
    let mut events = Vec::new();
    drive(&mut agent, &sock, Duration::from_secs(5), &mut events);
    assert!(
        agent.is_connected(),
        "in8 ({our_role:?}) connected: {events:?}"
    );
    let nominated = events.iter().any(|e| {
        matches!(
            e,
            Event::Selected {
                nominated: true,
                ..
            }
        )
    });
    assert!(nominated);
    let line = (0..10)
        .filter_map(|_| peer.line(Duration::from_secs(2)))
        .find(|l| l.starts_with("CONNECTED") || l.starts_with("FAILED"))
        .expect("aioice result");
    assert!(line.starts_with("CONNECTED"), "aioice: {line}");
    assert!(
        line.contains(&local_addr.to_string()),
        "aioice nominated our address: {line}"
    );
    // Consent: in8 keeps the pair for longer than two consent intervals while aioice
    // answers.
    events.clear();
    drive(&mut agent, &sock, Duration::from_secs(11), &mut events);
    assert!(agent.selected_pair().is_some(), "consent kept: {events:?}");
    assert!(
        !events.iter().any(|e| matches!(e, Event::Failed { .. })),
        "{events:?}"
    );
    assert!(agent.stats().responses_received >= 2, "{:?}", agent.stats());
}

#[test]
#[ignore = "needs coturn / python venv: run cargo xtask interop"]
fn aioice_controlling_in8_controlled() {
    run("controlling", Role::Controlled);
}

#[test]
#[ignore = "needs coturn / python venv: run cargo xtask interop"]
fn aioice_controlled_in8_controlling() {
    run("controlled", Role::Controlling);
}
