//! `cargo xtask fuzz <target> [--seconds N]`: run cargo-fuzz, installing it if needed.
//!
//! Uses the nightly toolchain when rustup has one, else stable with `RUSTC_BOOTSTRAP=1`
//! (libFuzzer's sanitizer flags need nightly features).

use std::process::Command;

use anyhow::{Context, Result, bail};

/// Arguments of `cargo xtask fuzz`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The fuzz target (see fuzz/Cargo.toml), or `list`, or `all`.
    target: String,
    /// How long to fuzz each target.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Build and run the corpus only (no new inputs): a quick regression check.
    #[arg(long)]
    corpus_only: bool,
}

fn has_nightly() -> bool {
    Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn ensure_cargo_fuzz() -> Result<()> {
    let ok = Command::new(env!("CARGO"))
        .args(["fuzz", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        crate::cargo(&["install", "--locked", "cargo-fuzz"])?;
    }
    Ok(())
}

fn targets() -> Result<Vec<String>> {
    let manifest = std::fs::read_to_string(crate::root().join("fuzz/Cargo.toml"))
        .context("reading fuzz/Cargo.toml")?;
    Ok(manifest
        .lines()
        .filter_map(|l| l.trim().strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|n| *n != "in8-fuzz")
        .map(str::to_owned)
        .collect())
}

pub(crate) fn run(a: &Args) -> Result<()> {
    let all = targets()?;
    if a.target == "list" {
        for t in &all {
            println!("{t}");
        }
        return Ok(());
    }
    let chosen: Vec<String> = if a.target == "all" {
        all.clone()
    } else if all.contains(&a.target) {
        vec![a.target.clone()]
    } else {
        bail!(
            "unknown fuzz target {:?}; `cargo xtask fuzz list` shows them",
            a.target
        );
    };
    ensure_cargo_fuzz()?;
    let nightly = has_nightly();
    for t in chosen {
        let corpus = crate::root().join("fuzz/corpus").join(&t);
        std::fs::create_dir_all(&corpus)?;
        let mut cmd = Command::new("cargo");
        if nightly {
            cmd.arg("+nightly");
        } else {
            cmd.env("RUSTC_BOOTSTRAP", "1");
        }
        cmd.args(["fuzz", "run", &t]);
        cmd.arg(&corpus);
        cmd.arg("--");
        if a.corpus_only {
            cmd.arg("-runs=0");
        } else {
            cmd.arg(format!("-max_total_time={}", a.seconds));
        }
        cmd.args(["-max_len=4096", "-print_final_stats=1"]);
        crate::run(&mut cmd).with_context(|| format!("fuzz target {t} found a crash or failed"))?;
    }
    Ok(())
}

/// Replays every target's committed corpus once (CI regression check).
pub(crate) fn run_corpus_all() -> Result<()> {
    run(&Args {
        target: "all".into(),
        seconds: 0,
        corpus_only: true,
    })
}
