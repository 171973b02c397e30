//! The NAT matrix: `in8 invite` on a host of site A, `in8 join` on a host of site B, for
//! every unordered pair of the six NAT types (21 cells), with the expected outcome of each
//! and the results written to `docs/results/nat-matrix.md`.
//!
//! Each run of a cell is driven by [`driver::run_once`]: a fresh lab pair, `in8 --json
//! invite` and `in8 --json join` as real processes on the two hosts, both sides' JSON events
//! turned into an [`Outcome`] ([`events::outcome`]) and judged against the cell's expected
//! [`Route`] ([`judge`]); [`report::markdown`] writes the table. Without an `in8` binary
//! that can `join`, every cell is reported as [`Outcome::NotRun`] with the reason: nothing
//! is assumed or made up.
//!
//! Conventions: in a cell, the first NAT type (in [`NatType::ALL`] order) **invites** and
//! the second **joins**. Phase 1 is one-way: the joiner's checks must pass the inviter's
//! NAT unsolicited, which only endpoint-independent filtering (none, full cone) allows.
//! Otherwise the joiner's RSVP goes back and both sides check at once (phase 2), which
//! gets through everything except a symmetric NAT facing an address-and-port-dependent
//! filter; there, birthday probing (many sockets on the symmetric side) is needed, and
//! symmetric ↔ symmetric needs a relay.

pub mod driver;
pub mod events;
pub mod report;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use crate::Impairment;
use crate::nat::{Filtering, Mapping, NatType};
pub use driver::RunRecord;
pub use report::markdown;

/// One cell: who invites, who joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cell {
    /// The NAT of the inviting site.
    pub inviter: NatType,
    /// The NAT of the joining site.
    pub joiner: NatType,
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.inviter, self.joiner)
    }
}

impl FromStr for Cell {
    type Err = crate::Error;
    /// `INVITER:JOINER`, e.g. `symmetric:symmetric`.
    fn from_str(s: &str) -> crate::Result<Self> {
        let (a, b) = s.split_once(':').ok_or_else(|| {
            crate::Error::Config(format!(
                "cell {s:?}: expected INVITER:JOINER, e.g. none:symmetric"
            ))
        })?;
        Ok(Self {
            inviter: a.parse()?,
            joiner: b.parse()?,
        })
    }
}

/// The 21 cells: every unordered pair, the earlier type in [`NatType::ALL`] inviting.
pub fn cells() -> Vec<Cell> {
    let all = NatType::ALL;
    (0..all.len())
        .flat_map(|i| {
            (i..all.len()).map(move |j| Cell {
                inviter: all[i],
                joiner: all[j],
            })
        })
        .collect()
}

/// The reduced matrix CI runs: every NAT type at least once, with phase-1, phase-2,
/// birthday and relay cells. Its direct cells run with the relay forbidden
/// ([`MatrixConfig::relay_for`]), so a pass proves the direct route.
pub fn reduced_cells() -> Vec<Cell> {
    use NatType::{Cgnat, FullCone, PortRestricted, Restricted, Symmetric};
    [
        (NatType::None, Symmetric),   // phase 1 (public inviter), symmetric joiner
        (FullCone, Cgnat),            // phase 1 through two NAT layers
        (Restricted, PortRestricted), // phase 2
        (PortRestricted, Cgnat),      // phase 2 through two NAT layers
        (PortRestricted, Symmetric),  // phase 2 + birthday probing
        (Symmetric, Symmetric),       // relay only
    ]
    .into_iter()
    .map(|(inviter, joiner)| Cell { inviter, joiner })
    .collect()
}

/// How a cell is expected to connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Directly in phase 1 (no reply needed).
    Phase1,
    /// Directly in phase 2 (after the RSVP, simultaneous open).
    Phase2,
    /// Directly in phase 2 with birthday probing.
    Birthday,
    /// Only through a TURN relay, and only when the invitation allows relaying.
    Relay,
}

impl Route {
    /// The name used in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Phase1 => "direct, phase 1",
            Route::Phase2 => "direct, phase 2",
            Route::Birthday => "direct, phase 2 + birthday",
            Route::Relay => "relay only",
        }
    }
}

/// The expected route of a cell (the goal: all 21 connect with relay allowed, 20
/// directly, all but symmetric ↔ symmetric).
pub fn expected(cell: Cell) -> Route {
    let hard = |t: NatType| t.expected().mapping == Mapping::AddressAndPortDependent;
    let apdf = |t: NatType| t.expected().filtering == Filtering::AddressAndPortDependent;
    let open = |t: NatType| t.expected().filtering == Filtering::EndpointIndependent;
    let (a, b) = (cell.inviter, cell.joiner);
    if hard(a) && hard(b) {
        Route::Relay
    } else if open(a) {
        Route::Phase1
    } else if (hard(a) && apdf(b)) || (hard(b) && apdf(a)) {
        Route::Birthday
    } else {
        Route::Phase2
    }
}

/// The kind of path a connection ended up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathType {
    /// Host candidate to host candidate.
    Host,
    /// Through a server-reflexive candidate.
    Srflx,
    /// Through a peer-reflexive candidate.
    Prflx,
    /// Through a TURN relay.
    Relay,
}

impl PathType {
    /// The SDP name the CLI prints (`host`, `srflx`, `prflx`, `relay`).
    pub fn as_str(self) -> &'static str {
        match self {
            PathType::Host => "host",
            PathType::Srflx => "srflx",
            PathType::Prflx => "prflx",
            PathType::Relay => "relay",
        }
    }

    /// Parses an SDP name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            PathType::Host,
            PathType::Srflx,
            PathType::Prflx,
            PathType::Relay,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// What one run of a cell did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Connected, and the joiner's 1 KiB probe came back (data flowed both ways).
    Connected {
        /// 1 or 2.
        phase: u8,
        /// The path in use ([`events::path_of`]).
        path: PathType,
        /// From starting `in8 join` to its `connected` event.
        time: Duration,
        /// Payload bytes the CLI reports exchanged (`exchanged`: sent + received).
        bytes: u64,
        /// Bytes both hosts sent on the wire during the whole run (Ethernet frames of
        /// `eth0`: STUN, TURN, ICE, DTLS, SCTP and ARP), if measured.
        wire_bytes: Option<u64>,
        /// Whether birthday probing found the path (either side says so).
        birthday: bool,
        /// ICE's round-trip time on the selected pair, as the joiner reports it.
        rtt_ms: Option<f64>,
    },
    /// Did not connect; the reason in8 named and its exit code (4: could not connect).
    Failed {
        /// in8's reason (or the harness's, when in8 named none).
        reason: String,
        /// `in8 join`'s exit code.
        exit_code: Option<i32>,
    },
    /// No result before the run's deadline: the harness stopped both sides.
    TimedOut {
        /// The deadline.
        after: Duration,
        /// The events each side got to.
        detail: String,
    },
    /// Could not be run; why.
    NotRun {
        /// What is missing.
        reason: String,
    },
}

/// The verdict on one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// As expected.
    Pass,
    /// Not as expected, and how.
    Fail(String),
    /// Not run.
    NotRun(String),
}

/// Judges an outcome against the expected route (`relay_allowed`: the invitation's flag).
///
/// - A cell expected to connect directly passes when it connected in the expected phase on
///   a direct path. A connection through the relay is a failure named "relay fallback" when
///   the relay is forbidden (it cannot happen then) or the cell is a phase-1 cell (a working
///   direct path lost to the relay). With the relay allowed, a phase-2 or birthday cell may
///   connect through the relay: in8 then takes the relay at once rather than leaving the
///   users waiting for an RSVP or for birthday probing to hit, as the invitation permits.
///   The "20 of 21 directly" is the run with the relay forbidden (`--no-relay`).
/// - The relay cell passes with the relay allowed when it connected through the relay, and
///   without it only when in8 gave up **cleanly**: an error event naming the reason and exit
///   code 4 ("could not connect"), not a deadline or a crash.
pub fn judge(route: Route, relay_allowed: bool, outcome: &Outcome) -> Verdict {
    match outcome {
        Outcome::NotRun { reason } => Verdict::NotRun(reason.clone()),
        Outcome::TimedOut { after, detail } => {
            Verdict::Fail(format!("no result within {}s ({detail})", after.as_secs()))
        }
        Outcome::Failed { reason, exit_code } => {
            if route == Route::Relay && !relay_allowed {
                if *exit_code == Some(4) && !reason.is_empty() {
                    Verdict::Pass
                } else {
                    Verdict::Fail(format!(
                        "failed, but not with exit code 4 and a reason (exit {exit_code:?}): {reason}"
                    ))
                }
            } else {
                Verdict::Fail(format!("did not connect: {reason}"))
            }
        }
        Outcome::Connected {
            phase,
            path,
            birthday,
            ..
        } => {
            if route == Route::Birthday && *path != PathType::Relay && !*birthday {
                // A symmetric NAT facing an address-and-port-dependent filter has no
                // direct path without it: if one appeared, the expected route is wrong.
                return Verdict::Fail(format!(
                    "connected directly ({}, phase {phase}) without birthday probing",
                    path.as_str()
                ));
            }
            if route == Route::Relay {
                if !relay_allowed {
                    Verdict::Fail(format!(
                        "connected ({}) although the invitation allows no relay",
                        path.as_str()
                    ))
                } else if *path != PathType::Relay {
                    Verdict::Fail(format!(
                        "expected the relay, connected directly ({}, phase {phase})",
                        path.as_str()
                    ))
                } else {
                    Verdict::Pass
                }
            } else if *path == PathType::Relay && relay_allowed && route != Route::Phase1 {
                Verdict::Pass
            } else if *path == PathType::Relay {
                Verdict::Fail(format!(
                    "relay fallback (phase {phase}) where {} is expected",
                    route.as_str()
                ))
            } else {
                let want = if route == Route::Phase1 { 1 } else { 2 };
                if *phase == want {
                    Verdict::Pass
                } else {
                    Verdict::Fail(format!(
                        "phase {phase}, expected {want} ({})",
                        path.as_str()
                    ))
                }
            }
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct MatrixConfig {
    /// Seeded runs per cell (the goal: 20).
    pub runs: u32,
    /// Only the [`reduced_cells`].
    pub reduced: bool,
    /// Only these cells (overrides `reduced`).
    pub cells: Option<Vec<Cell>>,
    /// Per-site impairment (the second run: 50 ms, 2 %); its seed is replaced per
    /// run and site.
    pub impairment: Option<Impairment>,
    /// Whether invitations allow the relay (`in8 invite --relay`). Both sides get the lab's
    /// TURN server (`--turn`) either way, so a refusal is the policy's, not a missing server.
    /// The reduced matrix allows it only in its relay cell ([`MatrixConfig::relay_for`]).
    pub relay_allowed: bool,
    /// The `in8` binary.
    pub in8: PathBuf,
    /// The base seed; run `r` of a cell uses [`driver::run_seed`]`(seed, cell, r)`.
    pub seed: u64,
    /// `--connect-timeout` of both sides (how long phase 1 may take before the RSVP).
    pub connect_timeout: Duration,
    /// Longest a run may take from starting `in8 join` to its end.
    pub deadline: Duration,
    /// Where each run's transcripts go (`<dir>/<inviter>-<joiner>/run-<r>/run.log`).
    pub log_dir: PathBuf,
    /// Extra arguments for `in8 invite` (after the ones the driver sets).
    pub invite_args: Vec<String>,
    /// Extra arguments for `in8 join`.
    pub join_args: Vec<String>,
}

impl MatrixConfig {
    /// One run of every cell with `in8`, relay allowed, no impairment, seed 1, a 3 s
    /// connect timeout and a 60 s deadline, logs in `target/interop-matrix`.
    pub fn new(in8: PathBuf) -> Self {
        Self {
            runs: 1,
            reduced: false,
            cells: None,
            impairment: None,
            relay_allowed: true,
            in8,
            seed: 1,
            connect_timeout: Duration::from_secs(3),
            deadline: Duration::from_secs(60),
            log_dir: PathBuf::from("target/interop-matrix"),
            invite_args: Vec::new(),
            join_args: Vec::new(),
        }
    }

    /// Whether the invitation of `cell` allows the relay: `relay_allowed`, except in the
    /// reduced matrix, whose direct cells run without it (a relay there would hide whether
    /// the direct route works: with the relay allowed in8 may settle on it in phase 1).
    pub fn relay_for(&self, cell: Cell) -> bool {
        let reduced_plan = self.reduced && self.cells.is_none();
        self.relay_allowed && (!reduced_plan || expected(cell) == Route::Relay)
    }

    /// Whether cells differ in their relay policy (the reduced matrix).
    pub fn mixed_relay(&self) -> bool {
        let v: Vec<bool> = self
            .selected()
            .into_iter()
            .map(|c| self.relay_for(c))
            .collect();
        v.iter().any(|r| *r) && v.iter().any(|r| !*r)
    }

    /// The cells this configuration runs.
    pub fn selected(&self) -> Vec<Cell> {
        match (&self.cells, self.reduced) {
            (Some(c), _) => c.clone(),
            (None, true) => reduced_cells(),
            (None, false) => cells(),
        }
    }
}

/// One cell's runs.
#[derive(Debug, Clone)]
pub struct CellReport {
    /// The cell.
    pub cell: Cell,
    /// Its expected route.
    pub expected: Route,
    /// Whether its invitations allowed the relay.
    pub relay_allowed: bool,
    /// One record per run.
    pub runs: Vec<RunRecord>,
}

impl CellReport {
    /// The verdict of every run.
    pub fn verdicts(&self) -> Vec<Verdict> {
        self.runs
            .iter()
            .map(|r| judge(self.expected, self.relay_allowed, &r.outcome))
            .collect()
    }
}

/// Why the `in8` binary cannot run the matrix, or `None` when it has `invite` and `join`.
pub fn in8_unavailable(in8: &Path) -> Option<String> {
    if !in8.is_file() {
        return Some(format!(
            "no in8 binary at {} (build it: cargo build --release -p in8-cli)",
            in8.display()
        ));
    }
    let has = |sub: &str| {
        Command::new(in8)
            .args([sub, "--help"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    if !has("join") {
        return Some(format!("{} has no `join` command", in8.display()));
    }
    None
}

/// Runs the matrix: every selected cell `runs` times, one run at a time, calling
/// `progress` after each run. A run the lab could not even build is recorded as a failure
/// naming the lab error.
pub fn run(
    config: &MatrixConfig,
    mut progress: impl FnMut(Cell, u32, &RunRecord),
) -> Vec<CellReport> {
    let missing = in8_unavailable(&config.in8);
    config
        .selected()
        .into_iter()
        .map(|cell| {
            let runs = (0..config.runs.max(1))
                .map(|r| {
                    let seed = driver::run_seed(config.seed, cell, r);
                    let dir = config
                        .log_dir
                        .join(format!("{}-{}", cell.inviter, cell.joiner))
                        .join(format!("run-{r}"));
                    let record = match &missing {
                        Some(reason) => RunRecord {
                            seed,
                            outcome: Outcome::NotRun {
                                reason: reason.clone(),
                            },
                            log: dir,
                        },
                        None => driver::run_once(config, cell, seed, &dir).unwrap_or_else(|e| {
                            RunRecord {
                                seed,
                                outcome: Outcome::Failed {
                                    reason: format!("the lab failed: {e}"),
                                    exit_code: None,
                                },
                                log: dir,
                            }
                        }),
                    };
                    progress(cell, r, &record);
                    record
                })
                .collect();
            CellReport {
                cell,
                expected: expected(cell),
                relay_allowed: config.relay_for(cell),
                runs,
            }
        })
        .collect()
}

/// Whether any run of any cell failed its verdict (the exit status of `in8-lab matrix`).
pub fn any_failed(reports: &[CellReport]) -> bool {
    reports
        .iter()
        .any(|r| r.verdicts().iter().any(|v| matches!(v, Verdict::Fail(_))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use NatType::{Cgnat, PortRestricted, Symmetric};

    #[test]
    fn twenty_one_cells_with_the_goal_counts() {
        let all = cells();
        assert_eq!(all.len(), 21);
        let relay: Vec<Cell> = all
            .iter()
            .copied()
            .filter(|c| expected(*c) == Route::Relay)
            .collect();
        assert_eq!(
            relay,
            [Cell {
                inviter: Symmetric,
                joiner: Symmetric
            }]
        );
        let birthday: Vec<(NatType, NatType)> = all
            .iter()
            .filter(|c| expected(**c) == Route::Birthday)
            .map(|c| (c.inviter, c.joiner))
            .collect();
        assert_eq!(birthday, [(PortRestricted, Symmetric), (Symmetric, Cgnat)]);
        let phase1 = all
            .iter()
            .filter(|c| expected(**c) == Route::Phase1)
            .count();
        // Inviter none (6 cells) or full cone (5 cells).
        assert_eq!(phase1, 11);
    }

    #[test]
    fn reduced_matrix_covers_every_type_and_route() {
        let r = reduced_cells();
        for t in NatType::ALL {
            assert!(
                r.iter().any(|c| c.inviter == t || c.joiner == t),
                "{t} missing"
            );
        }
        for route in [Route::Phase1, Route::Phase2, Route::Relay] {
            assert!(r.iter().any(|c| expected(*c) == route), "{route:?} missing");
        }
    }

    #[test]
    fn the_reduced_matrix_allows_the_relay_only_in_its_relay_cell() {
        let mut c = MatrixConfig {
            reduced: true,
            ..MatrixConfig::new(PathBuf::from("in8"))
        };
        for cell in reduced_cells() {
            assert_eq!(c.relay_for(cell), expected(cell) == Route::Relay, "{cell}");
        }
        assert!(c.mixed_relay());
        c.relay_allowed = false;
        assert!(reduced_cells().into_iter().all(|cell| !c.relay_for(cell)));
        assert!(!c.mixed_relay());
        let full = MatrixConfig::new(PathBuf::from("in8"));
        assert!(cells().into_iter().all(|cell| full.relay_for(cell)));
        let one = MatrixConfig {
            reduced: true,
            cells: Some(vec!["restricted:cgnat".parse().unwrap()]),
            ..MatrixConfig::new(PathBuf::from("in8"))
        };
        assert!(one.relay_for("restricted:cgnat".parse().unwrap()));
    }

    #[test]
    fn cells_parse_and_print() {
        let c: Cell = "port-restricted:symmetric".parse().unwrap();
        assert_eq!((c.inviter, c.joiner), (PortRestricted, Symmetric));
        assert_eq!(c.to_string(), "port-restricted:symmetric");
        assert!("symmetric".parse::<Cell>().is_err());
        assert!("symmetric:cone".parse::<Cell>().is_err());
    }

    fn ok(phase: u8, path: PathType) -> Outcome {
        Outcome::Connected {
            phase,
            path,
            time: Duration::from_millis(300),
            bytes: 2048,
            wire_bytes: None,
            birthday: false,
            rtt_ms: None,
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(
            judge(Route::Phase1, true, &ok(1, PathType::Srflx)),
            Verdict::Pass
        );
        assert!(matches!(
            judge(Route::Phase1, true, &ok(2, PathType::Srflx)),
            Verdict::Fail(_)
        ));
        // A relay where a working direct path exists (phase 1) is named as such.
        match judge(Route::Phase1, true, &ok(1, PathType::Relay)) {
            Verdict::Fail(why) => assert!(why.starts_with("relay fallback"), "{why}"),
            v => panic!("{v:?}"),
        }
        // A birthday cell connects directly only through birthday probing.
        let by_birthday = Outcome::Connected {
            phase: 2,
            path: PathType::Srflx,
            time: Duration::from_millis(300),
            bytes: 2048,
            wire_bytes: None,
            birthday: true,
            rtt_ms: None,
        };
        assert_eq!(judge(Route::Birthday, false, &by_birthday), Verdict::Pass);
        match judge(Route::Birthday, false, &ok(2, PathType::Srflx)) {
            Verdict::Fail(why) => assert!(why.contains("without birthday probing"), "{why}"),
            v => panic!("{v:?}"),
        }
        // Where the direct path needs the RSVP or birthday probing, an allowed relay may
        // carry the session (in either phase); a forbidden one may not.
        for route in [Route::Phase2, Route::Birthday] {
            assert_eq!(judge(route, true, &ok(1, PathType::Relay)), Verdict::Pass);
            assert_eq!(judge(route, true, &ok(2, PathType::Relay)), Verdict::Pass);
            match judge(route, false, &ok(2, PathType::Relay)) {
                Verdict::Fail(why) => assert!(why.starts_with("relay fallback"), "{why}"),
                v => panic!("{v:?}"),
            }
        }
        assert_eq!(
            judge(Route::Relay, true, &ok(2, PathType::Relay)),
            Verdict::Pass
        );
        assert!(matches!(
            judge(Route::Relay, true, &ok(2, PathType::Prflx)),
            Verdict::Fail(_)
        ));
        let failed = |code| Outcome::Failed {
            reason: "could not connect: no pair nominated".into(),
            exit_code: code,
        };
        // Without the relay the relay cell must fail cleanly: exit 4 with a reason.
        assert_eq!(judge(Route::Relay, false, &failed(Some(4))), Verdict::Pass);
        assert!(matches!(
            judge(Route::Relay, false, &failed(Some(1))),
            Verdict::Fail(_)
        ));
        let timed_out = Outcome::TimedOut {
            after: Duration::from_secs(60),
            detail: "joiner: phase1_failed".into(),
        };
        assert!(matches!(
            judge(Route::Relay, false, &timed_out),
            Verdict::Fail(_)
        ));
        assert!(matches!(
            judge(Route::Relay, true, &failed(Some(4))),
            Verdict::Fail(_)
        ));
        assert!(matches!(
            judge(Route::Relay, false, &ok(2, PathType::Relay)),
            Verdict::Fail(_)
        ));
        let nr = Outcome::NotRun {
            reason: "no binary".into(),
        };
        assert_eq!(
            judge(Route::Phase1, true, &nr),
            Verdict::NotRun("no binary".into())
        );
    }

    #[test]
    fn without_an_in8_that_joins_every_cell_says_not_run() {
        let config = MatrixConfig {
            runs: 2,
            ..MatrixConfig::new(PathBuf::from("/nonexistent/in8"))
        };
        let mut seen = 0;
        let reports = run(&config, |_, _, _| seen += 1);
        assert_eq!(seen, 42);
        assert_eq!(reports.len(), 21);
        assert!(reports.iter().all(|r| {
            r.runs.len() == 2
                && r.runs
                    .iter()
                    .all(|o| matches!(o.outcome, Outcome::NotRun { .. }))
        }));
        assert!(!any_failed(&reports));
        let md = markdown(&config, &reports, "cargo xtask interop matrix --runs 2", "");
        assert_eq!(md.matches("not run: no in8 binary").count(), 21);
        assert!(!md.contains("pass ("));
        assert!(md.contains("| symmetric | symmetric | relay only | - |"));
    }

    #[test]
    fn report_summarises_runs_and_lists_failures() {
        let config = MatrixConfig {
            runs: 4,
            impairment: Some(Impairment::wan_50ms_2pct(1)),
            ..MatrixConfig::new(PathBuf::from("in8"))
        };
        let cell = Cell {
            inviter: NatType::None,
            joiner: Symmetric,
        };
        let c = |ms, seed| RunRecord {
            seed,
            outcome: Outcome::Connected {
                phase: 1,
                path: PathType::Prflx,
                time: Duration::from_millis(ms),
                bytes: 2048,
                wire_bytes: Some(20_000 + ms),
                birthday: false,
                rtt_ms: Some(1.0),
            },
            log: PathBuf::from(format!("logs/{seed}")),
        };
        let reports = [CellReport {
            cell,
            expected: expected(cell),
            relay_allowed: true,
            runs: vec![
                c(100, 1),
                c(300, 2),
                c(200, 3),
                RunRecord {
                    seed: 4,
                    outcome: Outcome::Failed {
                        reason: "could not connect: no pair nominated".into(),
                        exit_code: Some(4),
                    },
                    log: PathBuf::from("logs/4"),
                },
            ],
        }];
        assert!(any_failed(&reports));
        let md = markdown(&config, &reports, "x", "binary: test");
        assert!(
            md.contains("| none | symmetric | direct, phase 1 | 3/4 | 1 | prflx | 200 ms (100–300) | 2048 | 20200 | **FAIL** 1/4: did not connect: could not connect: no pair nominated |"),
            "{md}"
        );
        assert!(md.contains("50 ms delay, 0 ms jitter, 2 % loss"));
        assert!(
            md.contains(
                "- none → symmetric, run 3 of 4: did not connect: could not connect: no pair \
                 nominated. First: seed 4, transcript `logs/4`."
            ),
            "{md}"
        );
        assert!(md.contains("binary: test"));
    }
}
