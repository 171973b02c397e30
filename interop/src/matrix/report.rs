//! The matrix as markdown (what `docs/results/nat-matrix.md` holds): one table row per
//! cell, then every failed run with its reason, seed and transcript.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::{CellReport, MatrixConfig, Outcome, PathType, Verdict};

/// The section of the results file a configuration's report goes to: `plain` or
/// `impaired`, then `-no-relay` when the invitation forbids the relay, `-reduced`, or the
/// selected cells (`-symmetric:symmetric`).
pub fn section(config: &MatrixConfig) -> String {
    let mut s = String::from(if config.impairment.is_some() {
        "impaired"
    } else {
        "plain"
    });
    if !config.relay_allowed {
        s += "-no-relay";
    }
    match &config.cells {
        Some(cells) => {
            let names: Vec<String> = cells.iter().map(ToString::to_string).collect();
            s += "-";
            s += &names.join("+");
        }
        None if config.reduced => s += "-reduced",
        None => {}
    }
    s
}

/// Replaces (or appends) section `name` of `doc`, delimited by `<!-- matrix:NAME -->` and
/// `<!-- /matrix:NAME -->`, with `body`; the rest of `doc` is kept.
pub fn splice(doc: &str, name: &str, body: &str) -> String {
    let open = format!("<!-- matrix:{name} -->");
    let close = format!("<!-- /matrix:{name} -->");
    let block = format!("{open}\n{}\n{close}", body.trim_end());
    match (doc.find(&open), doc.find(&close)) {
        (Some(a), Some(b)) if b > a => {
            format!("{}{block}{}", &doc[..a], &doc[b + close.len()..])
        }
        _ => {
            let mut d = doc.trim_end().to_owned();
            if !d.is_empty() {
                d.push_str("\n\n");
            }
            d.push_str(&block);
            d.push('\n');
            d
        }
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// "1" or "1, 2": the distinct values in order of first appearance, or "-".
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The report of `reports` run with `config`; `command` reproduces it and `provenance`
/// (which binary, which commit) goes under the title.
pub fn markdown(
    config: &MatrixConfig,
    reports: &[CellReport],
    command: &str,
    provenance: &str,
) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "Reproduce: `{command}` (as root).");
    if !provenance.is_empty() {
        let _ = writeln!(m, "{provenance}");
    }
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
        "\nRuns per cell: {}, base seed {} (run r of a cell uses `driver::run_seed(seed, cell, r)`: \
         UDP ports and impairment). Relay allowed: {}. Impairment: {imp}. \
         `--connect-timeout {} ms` on both sides; a run ends at the joiner's exit or after {} s.\n",
        config.runs,
        config.seed,
        match (config.mixed_relay(), config.relay_allowed) {
            (true, _) => {
                "only in the relay cell (the reduced matrix runs its direct cells with the \
                 relay forbidden, so a pass proves the direct route)"
            }
            (false, true) => "yes (`in8 invite --relay`; both sides have `--turn`)",
            (false, false) => "**no** (both sides still have `--turn`)",
        },
        config.connect_timeout.as_millis(),
        config.deadline.as_secs(),
    );
    m += "| inviter | joiner | expected | connected | phase | path | time to connect: median (min–max) | CLI bytes | wire bytes (median) | verdict |\n";
    m += "|---|---|---|---|---|---|---|---|---|---|\n";
    let mut failures = String::new();
    for r in reports {
        let verdicts = r.verdicts();
        let connected: Vec<(u8, PathType, Duration, u64, Option<u64>, bool)> = r
            .runs
            .iter()
            .filter_map(|run| match &run.outcome {
                Outcome::Connected {
                    phase,
                    path,
                    time,
                    bytes,
                    wire_bytes,
                    birthday,
                    ..
                } => Some((*phase, *path, *time, *bytes, *wire_bytes, *birthday)),
                _ => None,
            })
            .collect();
        let not_run = verdicts.iter().find_map(|v| match v {
            Verdict::NotRun(why) => Some(why.clone()),
            _ => None,
        });
        let failed: Vec<(usize, &String)> = verdicts
            .iter()
            .enumerate()
            .filter_map(|(i, v)| match v {
                Verdict::Fail(why) => Some((i, why)),
                _ => None,
            })
            .collect();
        let verdict = match (&not_run, failed.is_empty()) {
            (Some(why), _) => format!("not run: {why}"),
            (None, true) => format!("pass ({}/{})", verdicts.len(), verdicts.len()),
            (None, false) => format!(
                "**FAIL** {}/{}: {}",
                failed.len(),
                verdicts.len(),
                summary(failed.iter().map(|(_, why)| short(why)))
            ),
        };
        // One line per cell and distinct reason, with the runs that failed that way.
        let mut reasons: Vec<(&String, Vec<usize>)> = Vec::new();
        for (i, why) in &failed {
            match reasons.iter_mut().find(|(w, _)| w == why) {
                Some((_, runs)) => runs.push(*i),
                None => reasons.push((why, vec![*i])),
            }
        }
        for (why, runs) in reasons {
            let first = &r.runs[runs[0]];
            let _ = writeln!(
                failures,
                "- {} → {}, {} {} of {}: {why}. First: seed {}, transcript `{}`.",
                r.cell.inviter,
                r.cell.joiner,
                if runs.len() == 1 { "run" } else { "runs" },
                ranges(&runs),
                r.runs.len(),
                first.seed,
                relative(&first.log).display()
            );
        }
        let times: Vec<f64> = connected.iter().map(|c| ms(c.2)).collect();
        let time = match (
            median(times.clone()),
            times.iter().copied().reduce(f64::min),
            times.iter().copied().reduce(f64::max),
        ) {
            (Some(md), Some(lo), Some(hi)) => format!("{md:.0} ms ({lo:.0}–{hi:.0})"),
            _ => "-".into(),
        };
        let bytes = median(connected.iter().map(|c| c.3 as f64).collect())
            .map_or("-".into(), |b| format!("{b:.0}"));
        let wire = median(
            connected
                .iter()
                .filter_map(|c| c.4)
                .map(|b| b as f64)
                .collect(),
        )
        .map_or("-".into(), |b| format!("{b:.0}"));
        let phases = summary(connected.iter().map(|c| c.0.to_string()));
        let paths = summary(connected.iter().map(|c| {
            if c.5 {
                format!("{} (birthday)", c.1.as_str())
            } else {
                c.1.as_str().to_owned()
            }
        }));
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {phases} | {paths} | {time} | {bytes} | {wire} | {verdict} |",
            r.cell.inviter,
            r.cell.joiner,
            if config.mixed_relay() && r.relay_allowed {
                format!("{} (relay allowed)", r.expected.as_str())
            } else {
                r.expected.as_str().to_owned()
            },
            if not_run.is_some() {
                "-".to_owned()
            } else {
                format!("{}/{}", connected.len(), r.runs.len())
            },
        );
    }
    if !failures.is_empty() {
        m += "\nFailed runs (reason, seed, transcript of both sides):\n\n";
        m += &failures;
    }
    m
}

/// "0–3, 7": run indices as ranges.
fn ranges(runs: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < runs.len() {
        let mut j = i;
        while j + 1 < runs.len() && runs[j + 1] == runs[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            runs[i].to_string()
        } else {
            format!("{}–{}", runs[i], runs[j])
        });
        i = j + 1;
    }
    parts.join(", ")
}

/// `path` relative to the working directory when it is inside it (reports name
/// `target/...`, not a machine's absolute path).
fn relative(path: &Path) -> &Path {
    match std::env::current_dir() {
        Ok(cwd) => path.strip_prefix(&cwd).unwrap_or(path),
        Err(_) => path,
    }
}

/// The first sentence-ish part of a failure reason, for the table cell.
fn short(why: &str) -> String {
    let s: String = why.chars().take(90).collect();
    let s = s.split(" (").next().unwrap_or(&s).replace('|', "/");
    if why.chars().count() > s.chars().count() {
        format!("{s}…")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_replaces_only_its_section() {
        let d = splice("", "plain", "A");
        assert_eq!(d, "<!-- matrix:plain -->\nA\n<!-- /matrix:plain -->\n");
        let d = splice(&format!("# Title\n\n{d}"), "impaired", "B");
        let d = splice(&d, "plain", "C\n");
        assert_eq!(
            d,
            "# Title\n\n<!-- matrix:plain -->\nC\n<!-- /matrix:plain -->\n\n\
             <!-- matrix:impaired -->\nB\n<!-- /matrix:impaired -->\n"
        );
    }

    #[test]
    fn sections_name_the_kind_of_run() {
        let mut c = MatrixConfig::new("in8".into());
        assert_eq!(section(&c), "plain");
        c.relay_allowed = false;
        c.reduced = true;
        assert_eq!(section(&c), "plain-no-relay-reduced");
        c.impairment = Some(crate::Impairment::wan_50ms_2pct(1));
        c.cells = Some(vec!["symmetric:symmetric".parse().unwrap()]);
        assert_eq!(section(&c), "impaired-no-relay-symmetric:symmetric");
    }

    #[test]
    fn run_lists_collapse_into_ranges() {
        assert_eq!(ranges(&[0, 1, 2, 3, 7, 9, 10]), "0–3, 7, 9–10");
        assert_eq!(ranges(&[5]), "5");
        assert_eq!(ranges(&[]), "");
    }

    #[test]
    fn short_reasons_fit_a_cell() {
        assert_eq!(short("did not connect: x (after y)"), "did not connect: x…");
        assert_eq!(short("a|b"), "a/b");
    }
}
