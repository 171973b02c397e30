//! `cargo xtask`: project automation. Thin: it calls cargo and the scripts in `interop/`.

mod ci;
mod fuzz;
mod interop;
mod layers;
mod sim;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "in8 project automation")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Everything CI runs: fmt, check-layers, tests, clippy, cargo-deny (and the NAT lab as root).
    Ci(ci::Args),
    /// Run a cargo-fuzz target (nightly, or stable with RUSTC_BOOTSTRAP=1).
    Fuzz(fuzz::Args),
    /// Run the criterion benchmarks (all, or those matching FILTER).
    Bench {
        /// Only benchmarks whose name contains this.
        filter: Option<String>,
    },
    /// The NAT lab (needs root): selftest (default), clean, matrix [--runs N], venv.
    Interop(interop::Args),
    /// Run a simulator scenario (release build), print its table, write SVG plots.
    Sim(sim::Args),
    /// Fail if a sans-IO crate (artifact, ice, gossip, topology) depends on tokio or on an
    /// in8 runtime crate.
    CheckLayers,
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Ci(a) => ci::run(&a),
        Task::Fuzz(a) => fuzz::run(&a),
        Task::Bench { filter } => {
            let mut args = vec!["bench", "-p", "in8-benches"];
            if let Some(f) = filter.as_deref() {
                args.extend(["--", f]);
            }
            cargo(&args)
        }
        Task::CheckLayers => layers::run(),
        Task::Sim(a) => sim::run(&a),
        Task::Interop(a) => interop::run(&a),
    }
}

/// The workspace root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Runs `cargo <args>` in the workspace root, failing if it fails.
pub(crate) fn cargo(args: &[&str]) -> Result<()> {
    run(Command::new(env!("CARGO")).args(args))
}

/// Runs a command in the workspace root, failing with its exit status.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    cmd.current_dir(root());
    eprintln!("xtask: running {cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}
