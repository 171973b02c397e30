//! `cargo xtask sim <scenario>`: runs a simulator scenario in the release profile, prints
//! its table and writes SVG plots to `target/sim/` (metrics over time, per-broadcast
//! delivery, and a drawing of the overlay for networks up to 300 nodes).
//!
//! `<scenario>` is a path or a name from `crates/in8-sim/scenarios/` (`steady-100`,
//! `kill-50-1000`, ...); `list` prints the names.

use std::path::PathBuf;

use anyhow::{Result, bail};

/// Arguments of `cargo xtask sim`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Scenario file or name (see `list`).
    scenario: String,
    /// Where to write the plots.
    #[arg(long, default_value = "target/sim")]
    out: String,
    /// Override the scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Override the scenario's node count.
    #[arg(long)]
    nodes: Option<u32>,
    /// Override the simulated duration, in seconds.
    #[arg(long)]
    duration: Option<f64>,
}

fn scenarios_dir() -> PathBuf {
    crate::root().join("crates/in8-sim/scenarios")
}

pub(crate) fn run(a: &Args) -> Result<()> {
    if a.scenario == "list" {
        let mut names: Vec<String> = std::fs::read_dir(scenarios_dir())?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.path()
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .map(str::to_owned)
            })
            .collect();
        names.sort();
        for n in names {
            println!("{n}");
        }
        return Ok(());
    }
    let mut path = PathBuf::from(&a.scenario);
    if !path.exists() {
        path = scenarios_dir().join(format!("{}.toml", a.scenario));
    }
    if !path.exists() {
        bail!(
            "no scenario {} (neither a file nor a name in crates/in8-sim/scenarios; try `cargo xtask sim list`)",
            a.scenario
        );
    }
    let path = path.display().to_string();
    let mut args = vec![
        "run",
        "--release",
        "-q",
        "-p",
        "in8-sim",
        "--bin",
        "in8-sim",
        "--",
        path.as_str(),
        "--out",
        a.out.as_str(),
    ];
    let (seed, nodes, duration) = (
        a.seed.map(|s| s.to_string()),
        a.nodes.map(|n| n.to_string()),
        a.duration.map(|d| d.to_string()),
    );
    if let Some(s) = &seed {
        args.extend(["--seed", s]);
    }
    if let Some(n) = &nodes {
        args.extend(["--nodes", n]);
    }
    if let Some(d) = &duration {
        args.extend(["--duration", d]);
    }
    crate::cargo(&args)
}
