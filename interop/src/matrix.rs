//! The NAT matrix: `in8 invite` on a host of site A, `in8 join` on a host of site B, for
//! every unordered pair of the six NAT types (21 cells), with the expected outcome of each
//! and the results written to `docs/results/nat-matrix.md`.
//!
//! **Status:** the cells, expectations, verdicts and the report are here; running a cell
//! needs the `in8 invite` / `in8 join` commands of in8-core (issue 5), which do not exist
//! yet. Until the `in8` binary has a `join` command, every cell is reported as
//! [`Outcome::NotRun`] with that reason: nothing is assumed or made up.
//!
//! Conventions: in a cell, the first NAT type (in [`NatType::ALL`] order) **invites** and
//! the second **joins**. Phase 1 is one-way: the joiner's checks must pass the inviter's
//! NAT unsolicited, which only endpoint-independent filtering (none, full cone) allows.
//! Otherwise the joiner's RSVP goes back and both sides check at once (phase 2), which
//! gets through everything except a symmetric NAT facing an address-and-port-dependent
//! filter; there, birthday probing (many sockets on the symmetric side) is needed, and
//! symmetric ↔ symmetric needs a relay.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::Impairment;
use crate::nat::{Filtering, Mapping, NatType};

/// One cell: who invites, who joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cell {
    /// The NAT of the inviting site.
    pub inviter: NatType,
    /// The NAT of the joining site.
    pub joiner: NatType,
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

/// The reduced matrix CI runs: every NAT type at least once, with a phase-1, a phase-2, a
/// birthday and a relay cell.
pub fn reduced_cells() -> Vec<Cell> {
    use NatType::{Cgnat, FullCone, PortRestricted, Restricted, Symmetric};
    [
        (NatType::None, Symmetric),   // phase 1 (public inviter), symmetric joiner
        (FullCone, Cgnat),            // phase 1 through two NAT layers
        (Restricted, PortRestricted), // phase 2
        (PortRestricted, Symmetric),  // birthday probing
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

/// What one run of a cell did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Connected.
    Connected {
        /// 1 or 2.
        phase: u8,
        /// The path in use.
        path: PathType,
        /// From `in8 join` starting to the open channel.
        time: Duration,
        /// Bytes both sides sent on the wire.
        bytes: u64,
    },
    /// Did not connect; the reason in8 named.
    Failed {
        /// in8's reason.
        reason: String,
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
pub fn judge(route: Route, relay_allowed: bool, outcome: &Outcome) -> Verdict {
    match (route, outcome) {
        (_, Outcome::NotRun { reason }) => Verdict::NotRun(reason.clone()),
        (Route::Relay, Outcome::Failed { .. }) if !relay_allowed => Verdict::Pass,
        (Route::Relay, Outcome::Connected { path, .. })
            if !relay_allowed || *path != PathType::Relay =>
        {
            Verdict::Fail(format!(
                "expected a relay (allowed: {relay_allowed}), got {path:?}"
            ))
        }
        (_, Outcome::Failed { reason }) => Verdict::Fail(format!("did not connect: {reason}")),
        (_, Outcome::Connected { phase, path, .. }) => {
            let want_phase = if route == Route::Phase1 { 1 } else { 2 };
            if route != Route::Relay && *path == PathType::Relay {
                Verdict::Fail("fell back to the relay where a direct path is expected".into())
            } else if route != Route::Relay && *phase != want_phase {
                Verdict::Fail(format!("phase {phase}, expected {want_phase}"))
            } else {
                Verdict::Pass
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
    /// Per-site impairment (the second run: 50 ms, 2 %).
    pub impairment: Option<Impairment>,
    /// Whether invitations allow the relay.
    pub relay_allowed: bool,
    /// The `in8` binary.
    pub in8: PathBuf,
}

/// One cell's runs.
#[derive(Debug, Clone)]
pub struct CellReport {
    /// The cell.
    pub cell: Cell,
    /// Its expected route.
    pub expected: Route,
    /// One outcome per run.
    pub outcomes: Vec<Outcome>,
}

/// Why the `in8` binary cannot run the matrix yet, or `None` when it has `invite` and `join`.
pub fn in8_unavailable(in8: &Path) -> Option<String> {
    if !in8.is_file() {
        return Some(format!(
            "no in8 binary at {} (build it: cargo build -p in8-cli)",
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
        return Some(
            "`in8 join` does not exist yet (in8-core CLI, issue 5): the cell cannot run".into(),
        );
    }
    // The binary can join: the per-cell driver (start the lab pair, `in8 --json invite` on
    // the inviter's host, `in8 --json join @FILE` on the joiner's, the RSVP carried back
    // through a file, events parsed from the JSON lines) is written against the CLI as it
    // lands; until then no cell claims a result.
    Some("the matrix driver for `in8 invite` / `in8 join` is not written yet (waits for the CLI of issue 5)".into())
}

/// Runs the matrix (today: reports every cell as not run, with the reason).
pub fn run(config: &MatrixConfig) -> Vec<CellReport> {
    let reason = in8_unavailable(&config.in8);
    let cells = if config.reduced {
        reduced_cells()
    } else {
        cells()
    };
    cells
        .into_iter()
        .map(|cell| CellReport {
            cell,
            expected: expected(cell),
            outcomes: (0..config.runs.max(1))
                .map(|_| Outcome::NotRun {
                    reason: reason.clone().unwrap_or_default(),
                })
                .collect(),
        })
        .collect()
}

/// The report as markdown (what `docs/results/nat-matrix.md` holds), with the command that
/// produced it.
pub fn markdown(config: &MatrixConfig, reports: &[CellReport], command: &str) -> String {
    let mut m = String::from("# NAT matrix: in8 invite / in8 join through the lab's NATs\n\n");
    let _ = writeln!(m, "Reproduce: `{command}` (as root).\n");
    let imp = config.impairment.map_or("none".to_owned(), |i| {
        format!(
            "{} ms delay, {} ms jitter, {:.0} % loss per site and direction",
            i.delay.as_millis(),
            i.jitter.as_millis(),
            i.loss * 100.0
        )
    });
    let _ = writeln!(
        m,
        "Runs per cell: {}. Relay allowed: {}. Impairment: {imp}.\n",
        config.runs, config.relay_allowed
    );
    m += "| inviter | joiner | expected | connected | phase | path | median time | median bytes | verdict |\n";
    m += "|---|---|---|---|---|---|---|---|---|\n";
    for r in reports {
        let verdicts: Vec<Verdict> = r
            .outcomes
            .iter()
            .map(|o| judge(r.expected, config.relay_allowed, o))
            .collect();
        let connected: Vec<(u8, PathType, Duration, u64)> = r
            .outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Connected {
                    phase,
                    path,
                    time,
                    bytes,
                } => Some((*phase, *path, *time, *bytes)),
                _ => None,
            })
            .collect();
        let not_run = verdicts.iter().find_map(|v| match v {
            Verdict::NotRun(why) => Some(why.clone()),
            _ => None,
        });
        let verdict = if let Some(why) = &not_run {
            format!("not run: {why}")
        } else {
            let failed = verdicts
                .iter()
                .filter(|v| matches!(v, Verdict::Fail(_)))
                .count();
            if failed == 0 {
                format!("pass ({} runs)", verdicts.len())
            } else {
                format!("**FAIL** {failed}/{}", verdicts.len())
            }
        };
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied()
        };
        let time = median(connected.iter().map(|c| c.2.as_secs_f64() * 1e3).collect())
            .map_or("-".into(), |t| format!("{t:.0} ms"));
        let bytes = median(connected.iter().map(|c| c.3 as f64).collect())
            .map_or("-".into(), |b| format!("{b:.0}"));
        let phases = summary(connected.iter().map(|c| format!("{}", c.0)));
        let paths = summary(
            connected
                .iter()
                .map(|c| format!("{:?}", c.1).to_lowercase()),
        );
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {phases} | {paths} | {time} | {bytes} | {verdict} |",
            r.cell.inviter,
            r.cell.joiner,
            r.expected.as_str(),
            if not_run.is_some() {
                "-".to_owned()
            } else {
                format!("{}/{}", connected.len(), r.outcomes.len())
            },
        );
    }
    m
}

/// "1" or "1, 2" — the distinct values in order of first appearance, or "-".
fn summary(values: impl Iterator<Item = String>) -> String {
    let mut seen: Vec<String> = Vec::new();
    for v in values {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    if seen.is_empty() {
        "-".into()
    } else {
        seen.join(", ")
    }
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
        for route in [Route::Phase1, Route::Phase2, Route::Birthday, Route::Relay] {
            assert!(r.iter().any(|c| expected(*c) == route), "{route:?} missing");
        }
    }

    #[test]
    fn verdicts() {
        let ok = |phase, path| Outcome::Connected {
            phase,
            path,
            time: Duration::from_millis(300),
            bytes: 4000,
        };
        assert_eq!(
            judge(Route::Phase1, true, &ok(1, PathType::Srflx)),
            Verdict::Pass
        );
        assert!(matches!(
            judge(Route::Phase1, true, &ok(2, PathType::Srflx)),
            Verdict::Fail(_)
        ));
        assert!(matches!(
            judge(Route::Phase2, true, &ok(2, PathType::Relay)),
            Verdict::Fail(_)
        ));
        assert_eq!(
            judge(Route::Relay, true, &ok(2, PathType::Relay)),
            Verdict::Pass
        );
        let failed = Outcome::Failed {
            reason: "no pair nominated".into(),
        };
        assert_eq!(judge(Route::Relay, false, &failed), Verdict::Pass);
        assert!(matches!(
            judge(Route::Relay, true, &failed),
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
            reduced: false,
            impairment: None,
            relay_allowed: true,
            in8: PathBuf::from("/nonexistent/in8"),
        };
        let reports = run(&config);
        assert_eq!(reports.len(), 21);
        assert!(reports.iter().all(|r| {
            r.outcomes.len() == 2
                && r.outcomes
                    .iter()
                    .all(|o| matches!(o, Outcome::NotRun { .. }))
        }));
        let md = markdown(&config, &reports, "cargo xtask interop matrix --runs 2");
        assert_eq!(md.matches("not run: no in8 binary").count(), 21);
        assert!(!md.contains("pass ("));
        assert!(md.contains("| symmetric | symmetric | relay only | - |"));
    }

    #[test]
    fn report_summarises_connected_runs() {
        let config = MatrixConfig {
            runs: 3,
            reduced: true,
            impairment: Some(Impairment::wan_50ms_2pct(1)),
            relay_allowed: true,
            in8: PathBuf::from("in8"),
        };
        let cell = Cell {
            inviter: NatType::None,
            joiner: Symmetric,
        };
        let c = |ms| Outcome::Connected {
            phase: 1,
            path: PathType::Prflx,
            time: Duration::from_millis(ms),
            bytes: 5000,
        };
        let reports = [CellReport {
            cell,
            expected: expected(cell),
            outcomes: vec![c(100), c(300), c(200)],
        }];
        let md = markdown(&config, &reports, "x");
        assert!(md.contains("| none | symmetric | direct, phase 1 | 3/3 | 1 | prflx | 200 ms | 5000 | pass (3 runs) |"), "{md}");
        assert!(md.contains("50 ms delay, 0 ms jitter, 2 % loss"));
    }
}
