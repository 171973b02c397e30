//! One run of one cell: a fresh lab pair (the inviter's site with the cell's first NAT
//! type, the joiner's with the second, coturn on the server), `in8 --json invite` on the
//! inviter's host and `in8 --json join @FILE` on the joiner's, the invitation and the RSVP
//! carried through files, both sides' events read as they are printed, and the whole run
//! bounded by a deadline. Everything is stopped and deleted when the run ends (the lab's
//! guards), whatever happened.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::events::{Event, Run, Transcript, outcome};
use super::{Cell, MatrixConfig, Outcome};
use crate::lab::{Host, Lab, LabConfig, SiteConfig};
use crate::plan::{SERVER_ALTERNATE, SERVER_PRIMARY};
use crate::process::ChildGuard;
use crate::{Error, Result};

/// How long `in8 invite` may take to print its invitation (STUN gathering and the TURN
/// allocation happen first).
pub const INVITATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the inviter gets to finish after the joiner ended (it answers the echo, then
/// waits for the joiner to close the channel).
pub const INVITER_GRACE: Duration = Duration::from_secs(12);
/// Most stderr bytes kept per process (the end of its log).
const STDERR_KEEP: usize = 16 * 1024;

/// One seeded run of a cell.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// Its seed (ports and impairment are derived from it; [`run_seed`]).
    pub seed: u64,
    /// What happened.
    pub outcome: Outcome,
    /// Where both sides' events and logs were written.
    pub log: PathBuf,
}

/// The seed of run `run` of `cell` under the base seed `base`: every run of every cell
/// differs, and any one can be repeated alone (`--seed`, `--cell`, `--runs`).
pub fn run_seed(base: u64, cell: Cell, run: u32) -> u64 {
    let idx = |t: crate::NatType| {
        crate::NatType::ALL
            .iter()
            .position(|x| *x == t)
            .unwrap_or(0) as u64
    };
    splitmix(base ^ (idx(cell.inviter) << 40) ^ (idx(cell.joiner) << 32) ^ u64::from(run))
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The UDP ports of a run: the inviter's in 20000..40000, the joiner's in 40000..49152
/// (below the lab coturn's relay range, which only matters on the server, but keeps the
/// two apart), both from the seed.
pub fn ports(seed: u64) -> (u16, u16) {
    let inviter = 20_000 + (seed % 20_000) as u16;
    let joiner = 40_000 + ((seed >> 20) % 9_152) as u16;
    (inviter, joiner)
}

/// The two command lines of a run (without `ip netns exec`), for the run and the report.
pub fn command_lines(
    config: &MatrixConfig,
    relay_allowed: bool,
    dir: &Path,
    seed: u64,
    stun: &str,
    turn: &str,
) -> (Vec<String>, Vec<String>) {
    let (pi, pj) = ports(seed);
    let p = |name: &str| dir.join(name).display().to_string();
    let timeout = format!("{}ms", config.connect_timeout.as_millis());
    let mut invite: Vec<String> = [
        "--home",
        &p("inviter"),
        "--json",
        "invite",
        "--ttl",
        "10m",
        "--out",
        &p("invitation.txt"),
        "--rsvp",
        &p("rsvp.txt"),
        "--stun",
        stun,
        "--turn",
        turn,
        "--port",
        &pi.to_string(),
        "--connect-timeout",
        &timeout,
    ]
    .map(String::from)
    .to_vec();
    if relay_allowed {
        invite.push("--relay".into());
    }
    invite.extend(config.invite_args.iter().cloned());
    let mut join: Vec<String> = [
        "--home",
        &p("joiner"),
        "--json",
        "join",
        &format!("@{}", p("invitation.txt")),
        "--rsvp-out",
        &p("rsvp.txt"),
        "--stun",
        stun,
        "--turn",
        turn,
        "--port",
        &pj.to_string(),
        "--connect-timeout",
        &timeout,
    ]
    .map(String::from)
    .to_vec();
    join.extend(config.join_args.iter().cloned());
    (invite, join)
}

/// A process on a lab host whose stdout lines and stderr are read as they come.
struct Side {
    guard: ChildGuard,
    started: Instant,
    transcript: Transcript,
    stderr: mpsc::Receiver<String>,
}

enum Line {
    Out(Instant, String),
    Eof,
}

impl Side {
    fn spawn(
        host: &Host,
        in8: &Path,
        args: &[String],
        tx: mpsc::Sender<(usize, Line)>,
        id: usize,
    ) -> Result<Self> {
        let mut cmd = host.command(in8);
        cmd.args(args);
        let started = Instant::now();
        let mut guard = ChildGuard::spawn(&mut cmd)?;
        let (out, err) = guard.take_pipes();
        if let Some(out) = out {
            std::thread::spawn(move || {
                for l in BufReader::new(out)
                    .lines()
                    .map_while(std::result::Result::ok)
                {
                    if tx.send((id, Line::Out(Instant::now(), l))).is_err() {
                        return;
                    }
                }
                let _ = tx.send((id, Line::Eof));
            });
        }
        let (etx, stderr) = mpsc::channel();
        if let Some(mut err) = err {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n) = err.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.len() > 2 * STDERR_KEEP {
                        buf.drain(..buf.len() - STDERR_KEEP);
                    }
                }
                let _ = etx.send(String::from_utf8_lossy(&buf).into_owned());
            });
        }
        Ok(Self {
            guard,
            started,
            transcript: Transcript::default(),
            stderr,
        })
    }

    fn push(&mut self, at: Instant, line: &str) -> Option<String> {
        let ev = Event::parse(at.saturating_duration_since(self.started), line)?;
        let kind = ev.kind().to_owned();
        self.transcript.events.push(ev);
        Some(kind)
    }

    /// Stops the process if it still runs and records its exit code and stderr.
    fn finish(&mut self) {
        if let Ok(f) = self.guard.stop() {
            self.transcript.exit = f.status.code();
        }
        if let Ok(s) = self.stderr.recv_timeout(Duration::from_secs(2)) {
            self.transcript.stderr = crate::command::tail(&s, STDERR_KEEP);
        }
    }
}

/// Bytes sent by `eth0` of a host so far (`/proc/net/dev` of its namespace).
fn tx_bytes(host: &Host) -> Option<u64> {
    let text = host
        .netns()
        .run(|| std::fs::read_to_string("/proc/thread-self/net/dev").ok())
        .ok()
        .flatten()?;
    text.lines().find_map(|l| {
        let (name, rest) = l.split_once(':')?;
        if name.trim() != "eth0" {
            return None;
        }
        // Receive: bytes packets errs drop fifo frame compressed multicast; then transmit.
        rest.split_whitespace().nth(8)?.parse().ok()
    })
}

/// Runs `cell` once with `seed`, writing both sides' transcripts to `dir/run.log`.
pub fn run_once(config: &MatrixConfig, cell: Cell, seed: u64, dir: &Path) -> Result<RunRecord> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .map_err(|e| Error::io(format!("clearing {}", dir.display()), e))?;
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let mut sites = [SiteConfig::new(cell.inviter), SiteConfig::new(cell.joiner)];
    if let Some(imp) = config.impairment {
        for (k, s) in sites.iter_mut().enumerate() {
            s.impairment = Some(crate::Impairment {
                seed: splitmix(seed ^ (k as u64 + 1)),
                ..imp
            });
        }
    }
    let [a, b] = sites;
    let lab = Lab::start(&LabConfig::new().site_with(a).site_with(b))?;
    let coturn = lab
        .coturn()
        .ok_or_else(|| Error::Config("the matrix lab has no coturn".into()))?;
    let stun = coturn.stun_addr().to_string();
    let (user, pass, _) = coturn.credentials();
    let turn = format!("{user}:{pass}@{stun}");
    let (invite_args, join_args) =
        command_lines(config, config.relay_for(cell), dir, seed, &stun, &turn);
    let (inviter_host, joiner_host) = (lab.host(0)?, lab.host(1)?);
    let (tx, rx) = mpsc::channel();
    let mut log = format!(
        "cell {} -> {} seed {seed}\ninviter ({}): in8 {}\njoiner ({}): in8 {}\n",
        cell.inviter,
        cell.joiner,
        inviter_host.name(),
        invite_args.join(" "),
        joiner_host.name(),
        join_args.join(" ")
    );
    let mut sides = vec![Side::spawn(
        inviter_host,
        &config.in8,
        &invite_args,
        tx.clone(),
        0,
    )?];
    // The inviter first: wait for its invitation (the file is written before the event).
    let deadline = Instant::now() + INVITATION_TIMEOUT;
    let mut eof = [false, false];
    let mut ready = false;
    while !ready && Instant::now() < deadline && !eof[0] {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok((_, Line::Out(at, l))) => {
                ready = sides[0].push(at, &l).as_deref() == Some("invitation")
            }
            Ok((_, Line::Eof)) => eof[0] = true,
            Err(_) => {}
        }
    }
    let relay_ips: [IpAddr; 2] = [SERVER_PRIMARY.into(), SERVER_ALTERNATE.into()];
    let mut timed_out = None;
    if ready {
        sides.push(Side::spawn(joiner_host, &config.in8, &join_args, tx, 1)?);
        let deadline = sides[1].started + config.deadline;
        let mut joiner_done_at: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if eof[1] && joiner_done_at.is_none() && sides[1].guard.has_exited() {
                joiner_done_at = Some(now);
            }
            if let Some(t) = joiner_done_at
                && (eof[0] || now >= t + INVITER_GRACE)
            {
                break;
            }
            if joiner_done_at.is_none() && now >= deadline {
                timed_out = Some(config.deadline);
                break;
            }
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok((id, Line::Out(at, l))) => {
                    sides[id].push(at, &l);
                }
                Ok((id, Line::Eof)) => eof[id] = true,
                Err(_) => {}
            }
        }
        // Whatever is still buffered.
        while let Ok((id, line)) = rx.try_recv() {
            if let Line::Out(at, l) = line {
                sides[id].push(at, &l);
            }
        }
    }
    for s in &mut sides {
        s.finish();
    }
    let wire = match (tx_bytes(inviter_host), tx_bytes(joiner_host)) {
        (Some(x), Some(y)) => Some(x + y),
        _ => None,
    };
    let empty = Transcript::default();
    let joiner = sides.get(1).map_or(&empty, |s| &s.transcript);
    let inviter = &sides[0].transcript;
    let outcome = if ready {
        outcome(&Run {
            joiner,
            inviter,
            timed_out,
            relay_ips: &relay_ips,
            wire_bytes: wire,
        })
    } else {
        Outcome::Failed {
            reason: format!(
                "in8 invite printed no invitation within {INVITATION_TIMEOUT:?} (events: {}; exit {:?}); stderr: {}",
                inviter.kinds(),
                inviter.exit,
                crate::command::tail(&inviter.stderr, 300)
            ),
            exit_code: inviter.exit,
        }
    };
    for (name, t) in [("inviter", inviter), ("joiner", joiner)] {
        let _ = writeln!(log, "--- {name}: exit {:?}", t.exit);
        for e in &t.events {
            let _ = writeln!(log, "{:>9.3} s {}", e.at.as_secs_f64(), e.value);
        }
        let _ = writeln!(log, "--- {name} stderr:\n{}", t.stderr.trim());
    }
    let _ = writeln!(log, "--- outcome: {outcome:?}");
    let path = dir.join("run.log");
    std::fs::write(&path, log).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    drop(lab);
    Ok(RunRecord {
        seed,
        outcome,
        log: path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NatType;

    #[test]
    fn seeds_differ_per_cell_and_run_and_repeat() {
        let c = |a, b| Cell {
            inviter: a,
            joiner: b,
        };
        let s1 = run_seed(1, c(NatType::None, NatType::Symmetric), 0);
        assert_eq!(s1, run_seed(1, c(NatType::None, NatType::Symmetric), 0));
        assert_ne!(s1, run_seed(1, c(NatType::None, NatType::Symmetric), 1));
        assert_ne!(s1, run_seed(1, c(NatType::Symmetric, NatType::None), 0));
        assert_ne!(s1, run_seed(2, c(NatType::None, NatType::Symmetric), 0));
        for seed in [0, 1, u64::MAX, s1] {
            let (i, j) = ports(seed);
            assert!((20_000..40_000).contains(&i));
            assert!((40_000..49_152).contains(&j));
        }
    }
}
