//! `cargo xtask ci`: what `.ci/run` runs after installing the tools.
//!
//! Order: cheap checks first (fmt, layering), then the README's test command, clippy with
//! `-D warnings`, cargo-deny (licenses, bans, sources; the advisory database cannot be
//! fetched on these machines), and a corpus-only pass over every fuzz target.

use std::process::Command;

use anyhow::Result;

/// Arguments of `cargo xtask ci`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Skip the fuzz corpus replay (it needs nightly or RUSTC_BOOTSTRAP and cargo-fuzz).
    #[arg(long)]
    no_fuzz: bool,
    /// Skip `cargo test --workspace` (when the caller has just run it, as .ci/run does).
    #[arg(long)]
    skip_tests: bool,
}

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(env!("CARGO"))
        .args([cmd, arg])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

pub(crate) fn run(a: &Args) -> Result<()> {
    crate::cargo(&["fmt", "--all", "--", "--check"])?;
    crate::layers::run()?;
    if !a.skip_tests {
        // The README's test command.
        crate::cargo(&["test", "--workspace"])?;
    }
    crate::cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    if !have("deny", "--version") {
        crate::cargo(&["install", "--locked", "cargo-deny"])?;
    }
    crate::cargo(&["deny", "check", "licenses", "bans", "sources"])?;
    if !a.no_fuzz {
        crate::fuzz::run_corpus_all()?;
    }
    eprintln!("xtask ci: all steps passed");
    Ok(())
}
