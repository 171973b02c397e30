//! `cargo xtask check-layers`: the sans-IO crates stay free of tokio and of runtime crates.

use std::collections::BTreeSet;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Crates that must be sans-IO.
const SANS_IO: &[&str] = &["in8-artifact", "in8-ice", "in8-gossip", "in8-topology"];
/// Crates a sans-IO crate must never depend on.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "async-std",
    "smol",
    "in8-transport",
    "in8-rendezvous",
    "in8-core",
    "in8-cli",
];

fn workspace_members() -> Result<BTreeSet<String>> {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(crate::root())
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(v["packages"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

pub(crate) fn run() -> Result<()> {
    let members = workspace_members()?;
    let mut failures = Vec::new();
    for krate in SANS_IO.iter().filter(|k| members.contains(**k)) {
        let out = Command::new(env!("CARGO"))
            .args([
                "tree", "-p", krate, "-e", "normal", "--prefix", "none", "--format", "{p}",
            ])
            .current_dir(crate::root())
            .output()
            .context("running cargo tree")?;
        if !out.status.success() {
            bail!(
                "cargo tree -p {krate} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let tree = String::from_utf8_lossy(&out.stdout);
        let deps: BTreeSet<&str> = tree
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        for bad in FORBIDDEN.iter().filter(|b| deps.contains(**b)) {
            failures.push(format!(
                "{krate} depends on {bad} (run `cargo tree -p {krate} -i {bad}`)"
            ));
        }
        println!(
            "check-layers: {krate}: {} normal dependencies, none forbidden",
            deps.len()
        );
    }
    if !failures.is_empty() {
        bail!("sans-IO layering violated:\n  {}", failures.join("\n  "));
    }
    Ok(())
}
