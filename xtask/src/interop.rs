//! `cargo xtask interop [selftest | clean | matrix [--runs N] [--reduced] [--cell A:B]... [--impaired]
//! [--no-relay] [--seed S] [--debug] [--record] | venv]`: the NAT lab.
//!
//! Installs what the lab needs (Debian packages through apt-get, as root), builds the
//! `in8-lab` binary of `interop/` and runs it. `selftest` (the default) also runs the lab's
//! ignored integration tests. Everything lab-related lives in the `in8-interop` crate; this
//! file only installs and calls.

use std::process::Command;

use anyhow::{Result, bail};

/// The Debian packages the lab needs: namespaces and veth (iproute2), the NAT rules
/// (nftables), NFQUEUE for impairment (iptables, through nft_compat), and coturn with its
/// tools (turnutils_natdiscovery, turnutils_uclient). The delayer speaks netlink itself.
pub(crate) const PACKAGES: &[&str] = &["iproute2", "nftables", "iptables", "coturn"];

/// Arguments of `cargo xtask interop`.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    task: Option<Task>,
}

#[derive(clap::Subcommand)]
enum Task {
    /// Build the lab, check every NAT type (RFC 5780), the punch baseline, TURN and
    /// impairment, then run the lab's ignored tests (the default).
    Selftest {
        /// Write the self-test report to docs/results/nat-lab.md.
        #[arg(long)]
        record: bool,
    },
    /// Remove every lab namespace and lab coturn left behind by killed runs.
    Clean,
    /// The in8 NAT matrix: `in8 invite` / `in8 join` as real processes through every pair
    /// of NAT types (21 cells), judged against the expected route; exit 1 on a failed run.
    Matrix {
        /// Seeded runs per cell.
        #[arg(long, default_value_t = 1)]
        runs: u32,
        /// Only the reduced matrix CI runs.
        #[arg(long)]
        reduced: bool,
        /// Only this cell, INVITER:JOINER (e.g. symmetric:symmetric); repeatable.
        #[arg(long)]
        cell: Vec<String>,
        /// 50 ms delay and 2 % loss per site.
        #[arg(long)]
        impaired: bool,
        /// Invitations do not allow the relay.
        #[arg(long)]
        no_relay: bool,
        /// Base seed of the runs.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Longest a run may take from starting `in8 join` [default: 60s, 120s impaired].
        #[arg(long)]
        deadline: Option<String>,
        /// Use the debug build of in8 (CI: already built by the tests) instead of release.
        #[arg(long)]
        debug: bool,
        /// Write the report into docs/results/nat-matrix.md (its section for this run).
        #[arg(long)]
        record: bool,
    },
    /// A network of N real `in8 up` processes in sites of every NAT type: one invitation
    /// from the creator, member-issued ones after it; measures views, links, broadcasts,
    /// survivors of a 50 % kill, memory. Exit 1 when a node is left out.
    Network {
        /// How many processes (2..=156).
        #[arg(long, default_value_t = 12)]
        nodes: usize,
        /// Use the debug build of in8 (CI) instead of release.
        #[arg(long)]
        debug: bool,
        /// Give the nodes the lab's TURN server and allow relayed links.
        #[arg(long)]
        relay: bool,
        /// Seed of the run's choices.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write the report into docs/results/network.md (its section for this size).
        #[arg(long)]
        record: bool,
    },
    /// Create the Python venv with aiortc / aioice (target/interop-venv).
    Venv,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn installed(package: &str) -> bool {
    Command::new("dpkg")
        .args(["-s", package])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Installs the missing lab packages with apt-get (needs root and a Debian system).
pub(crate) fn install_packages() -> Result<()> {
    let missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "the NAT lab needs root and the Debian packages {}; run as root",
            missing.join(" ")
        );
    }
    crate::run(Command::new("apt-get").args(["update", "-qq"]))?;
    crate::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing),
    )
}

/// Builds every binary of the workspace in the dev profile. `--workspace` resolves features
/// as `cargo test --workspace` (the README's test command) does, so after it nothing is
/// compiled again; `-p in8-interop` alone would resolve fewer features and rebuild the
/// whole dependency graph (minutes in CI).
fn build_bins() -> Result<()> {
    crate::cargo(&["build", "-q", "--workspace", "--bins"])
}

/// The workspace's target directory (`CARGO_TARGET_DIR` or `target`).
fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::root().join("target"))
}

fn lab(args: &[&str]) -> Result<()> {
    build_bins()?;
    crate::run(Command::new(target_dir().join("debug").join("in8-lab")).args(args))
}

pub(crate) fn run(a: &Args) -> Result<()> {
    match a.task.as_ref().unwrap_or(&Task::Selftest { record: false }) {
        Task::Selftest { record } => {
            install_packages()?;
            if !is_root() {
                bail!("the NAT lab needs root (network namespaces, nftables, NFQUEUE)");
            }
            let mut args = vec!["selftest"];
            if *record {
                args.extend(["--markdown", "docs/results/nat-lab.md"]);
            }
            lab(&args)?;
            // The lab's tests are the workspace's ignored tests (the conformance tests run
            // the in8 binary, built above). `--workspace` reuses the README test command's
            // build; the 100 MB loss measurements of in8-transport are ignored too, for
            // their length, and skipped here.
            crate::cargo(&[
                "test",
                "--workspace",
                "--",
                "--ignored",
                "--skip",
                "hundred_megabytes",
            ])
        }
        Task::Clean => lab(&["clean"]),
        Task::Matrix {
            runs,
            reduced,
            cell,
            impaired,
            no_relay,
            seed,
            deadline,
            debug,
            record,
        } => {
            install_packages()?;
            if !is_root() {
                bail!("the NAT matrix needs root (network namespaces, nftables, NFQUEUE)");
            }
            let (profile, in8) = if *debug {
                (None, "target/debug/in8")
            } else {
                (Some("--release"), "target/release/in8")
            };
            match profile {
                Some(p) => crate::cargo(&["build", "-q", "-p", "in8-cli", p])?,
                None => build_bins()?,
            }
            let runs = runs.to_string();
            let seed_text = seed.to_string();
            let mut command = format!("cargo xtask interop matrix --runs {runs}");
            let mut args = vec![
                "matrix", "--runs", &runs, "--seed", &seed_text, "--in8", in8,
            ];
            for c in cell {
                args.extend(["--cell", c]);
                command += &format!(" --cell {c}");
            }
            for (on, flag) in [
                (*reduced, "--reduced"),
                (*impaired, "--impaired"),
                (*no_relay, "--no-relay"),
            ] {
                if on {
                    args.push(flag);
                    command += &format!(" {flag}");
                }
            }
            if let Some(d) = deadline {
                args.extend(["--deadline", d]);
                command += &format!(" --deadline {d}");
            }
            if *seed != 1 {
                command += &format!(" --seed {seed}");
            }
            if *debug {
                command += " --debug";
            }
            if *record {
                command += " --record";
                args.extend(["--out", "docs/results/nat-matrix.md"]);
            }
            args.extend(["--command", &command]);
            lab(&args)
        }
        Task::Network {
            nodes,
            debug,
            relay,
            seed,
            record,
        } => {
            install_packages()?;
            if !is_root() {
                bail!("the network run needs root (network namespaces, nftables)");
            }
            let in8 = if *debug {
                build_bins()?;
                "target/debug/in8"
            } else {
                crate::cargo(&["build", "-q", "-p", "in8-cli", "--release"])?;
                build_bins()?;
                "target/release/in8"
            };
            let n = nodes.to_string();
            let seed_text = seed.to_string();
            let mut command = format!("cargo xtask interop network --nodes {n}");
            let mut args = vec!["network", "--nodes", &n, "--seed", &seed_text, "--in8", in8];
            if *relay {
                args.push("--relay");
                command += " --relay";
            }
            if *seed != 1 {
                command += &format!(" --seed {seed}");
            }
            if *debug {
                command += " --debug";
            }
            if *record {
                command += " --record";
                args.extend(["--out", "docs/results/network.md"]);
            }
            args.extend(["--command", &command]);
            lab(&args)
        }
        Task::Venv => lab(&["venv"]),
    }
}
