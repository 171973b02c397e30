//! `cargo xtask check-layers`: the sans-IO crates stay free of tokio and of runtime crates,
//! and in8-core's sans-IO core (`src/proto*`) reads no clock and touches no socket, thread,
//! file or runtime.

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

/// Sans-IO source inside an I/O crate: files, or directories searched recursively.
const SANS_IO_SOURCES: &[&str] = &["crates/in8-core/src/proto.rs", "crates/in8-core/src/proto"];
/// What such source must not mention (outside `#[cfg(test)]` modules).
const FORBIDDEN_SOURCE: &[&str] = &[
    "tokio",
    "Instant::now",
    "SystemTime::now",
    "UdpSocket",
    "thread::spawn",
    "std::fs",
    "std::thread",
];

fn rust_files(path: &std::path::Path, out: &mut Vec<std::path::PathBuf>) -> Result<()> {
    if path.is_dir() {
        for e in std::fs::read_dir(path).with_context(|| format!("reading {}", path.display()))? {
            rust_files(&e?.path(), out)?;
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
    Ok(())
}

/// Lines of the sans-IO sources that mention a forbidden thing.
fn source_violations() -> Result<Vec<String>> {
    let mut files = Vec::new();
    for p in SANS_IO_SOURCES {
        rust_files(&crate::root().join(p), &mut files)?;
    }
    let mut bad = Vec::new();
    for f in &files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            let code = line.split("//").next().unwrap_or_default();
            for word in FORBIDDEN_SOURCE.iter().filter(|w| code.contains(**w)) {
                bad.push(format!("{}:{}: uses {word}", f.display(), n + 1));
            }
        }
    }
    println!(
        "check-layers: in8-core's sans-IO core: {} files, {} violations",
        files.len(),
        bad.len()
    );
    Ok(bad)
}

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
    failures.extend(source_violations()?);
    if !failures.is_empty() {
        bail!("sans-IO layering violated:\n  {}", failures.join("\n  "));
    }
    Ok(())
}
