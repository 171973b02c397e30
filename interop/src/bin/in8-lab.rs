//! `in8-lab`: the NAT lab's command line. `cargo xtask interop` builds and runs it.
//!
//! - `in8-lab selftest [--no-punch] [--no-impairment] [--markdown FILE]`: build the lab, check
//!   every NAT type with RFC 5780 discovery, the raw punch baseline and impairment; exit 1 on
//!   any mismatch.
//! - `in8-lab clean`: remove every `in8lab-*` namespace and lab coturn left behind.
//! - `in8-lab matrix [--runs N] [--reduced] [--cell A:B]... [--impaired] [--no-relay]
//!   [--seed S] [--in8 PATH] [--out FILE]`: the in8 NAT matrix; exit 1 when a run fails its
//!   verdict.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use in8_interop::{clean, matrix, selftest, venv};

#[derive(Parser)]
#[command(name = "in8-lab", about = "in8's NAT lab: self-test, clean-up, matrix")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build the lab and check every NAT type, the punch baseline and impairment.
    Selftest {
        /// Skip the raw punch baseline.
        #[arg(long)]
        no_punch: bool,
        /// Skip the impairment measurements.
        #[arg(long)]
        no_impairment: bool,
        /// Also write the report (markdown) to this file.
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// Print every discovery's raw output.
        #[arg(long)]
        verbose: bool,
    },
    /// Remove every lab namespace and lab coturn left behind by killed runs.
    Clean,
    /// The in8 NAT matrix: `in8 invite` / `in8 join` through every pair of NAT types.
    Matrix(MatrixArgs),
    /// A network of `in8 up` processes in sites of every NAT type, measured.
    Network(NetworkArgs),
    /// Create (or reuse) the Python venv with aiortc / aioice and print its interpreter.
    Venv {
        /// Where; default target/interop-venv.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct MatrixArgs {
    /// Seeded runs per cell.
    #[arg(long, default_value_t = 1)]
    runs: u32,
    /// Only the reduced matrix CI runs.
    #[arg(long)]
    reduced: bool,
    /// Only this cell, INVITER:JOINER (e.g. symmetric:symmetric); repeatable.
    #[arg(long = "cell")]
    cells: Vec<matrix::Cell>,
    /// 50 ms delay and 2 % loss per site and direction.
    #[arg(long)]
    impaired: bool,
    /// Invitations do not allow the relay (no `--relay`; both sides still get `--turn`).
    #[arg(long)]
    no_relay: bool,
    /// The base seed of the runs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// `--connect-timeout` of both in8 processes.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    connect_timeout: Duration,
    /// Longest a run may take from starting `in8 join` [default: 60s, 120s impaired].
    #[arg(long, value_parser = humantime::parse_duration)]
    deadline: Option<Duration>,
    /// The in8 binary (copied into the log directory first, so rebuilding it during a long
    /// run changes nothing).
    #[arg(long, default_value = "target/release/in8")]
    in8: PathBuf,
    /// Where every run's transcripts go.
    #[arg(long, default_value = "target/interop-matrix")]
    log_dir: PathBuf,
    /// An extra argument for `in8 invite` (repeatable).
    #[arg(long = "invite-arg", allow_hyphen_values = true)]
    invite_args: Vec<String>,
    /// An extra argument for `in8 join` (repeatable).
    #[arg(long = "join-arg", allow_hyphen_values = true)]
    join_args: Vec<String>,
    /// Write the report into this markdown file (its section for this kind of run; the
    /// file's other sections are kept).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The command line to print in the report as its reproduction.
    #[arg(long, default_value = "cargo xtask interop matrix")]
    command: String,
    /// The section of `--out` to write [default: plain or impaired, with -no-relay].
    #[arg(long)]
    section: Option<String>,
}

#[derive(clap::Args)]
struct NetworkArgs {
    /// How many processes.
    #[arg(long, default_value_t = 12)]
    nodes: usize,
    /// How many sites [default: 6 up to 24 nodes, else 12].
    #[arg(long)]
    sites: Option<usize>,
    /// Seed of the run's choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Give the nodes the lab's TURN server and allow relayed links.
    #[arg(long)]
    relay: bool,
    /// `--topology` of every node.
    #[arg(long, default_value = "auto")]
    topology: String,
    /// Broadcasts before and after the kill.
    #[arg(long, default_value_t = 5)]
    broadcasts: usize,
    /// The in8 binary (copied into the log directory first).
    #[arg(long, default_value = "target/release/in8")]
    in8: PathBuf,
    /// Where homes, invitations and logs go.
    #[arg(long, default_value = "target/interop-network")]
    log_dir: PathBuf,
    /// Write the report into this markdown file (its section for this size).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The command line to print in the report as its reproduction.
    #[arg(long, default_value = "cargo xtask interop network")]
    command: String,
}

fn network_run(a: NetworkArgs) -> Result<ExitCode> {
    use in8_interop::network;
    std::fs::create_dir_all(&a.log_dir)
        .with_context(|| format!("creating {}", a.log_dir.display()))?;
    let in8 = a.log_dir.join("in8");
    if a.in8.is_file() {
        let tmp = a.log_dir.join("in8.tmp");
        std::fs::copy(&a.in8, &tmp).with_context(|| format!("copying {}", a.in8.display()))?;
        std::fs::rename(&tmp, &in8)?;
    }
    let provenance = provenance(&in8);
    let log_dir = std::fs::canonicalize(&a.log_dir).unwrap_or(a.log_dir);
    let mut cfg =
        network::NetworkConfig::new(a.nodes, std::fs::canonicalize(&in8).unwrap_or(in8), log_dir);
    if let Some(s) = a.sites {
        cfg.sites = s;
    }
    cfg.seed = a.seed;
    cfg.relay = a.relay;
    cfg.topology = a.topology;
    cfg.broadcasts = a.broadcasts;
    eprintln!("{provenance}");
    let started = std::time::Instant::now();
    let report = network::run(&cfg, &mut |line| {
        eprintln!("[{:>5.0}s] {line}", started.elapsed().as_secs_f64());
    })
    .context("running the network")?;
    let text = report.markdown(&a.command, &provenance);
    println!("{text}");
    if let Some(path) = a.out {
        let doc = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            "# Networks of real processes in the NAT lab\n\nWhat the lab is: docs/lab.md; what a network does: docs/network.md.\n".into()
        });
        let section = format!("{} processes", a.nodes);
        let doc = in8_interop::matrix::report::splice(&doc, &section, &text);
        std::fs::write(&path, doc).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "network: a node was left out (see the report and {})",
            cfg.log_dir.display()
        );
        ExitCode::FAILURE
    })
}

/// Which binary and source a report was made with.
fn provenance(in8: &std::path::Path) -> String {
    let out = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let version = out(&in8.display().to_string(), &["--version"]);
    let commit = out("git", &["rev-parse", "--short", "HEAD"]);
    let dirty = out("git", &["status", "--porcelain", "--", "crates"]);
    let dirty = if dirty.is_empty() {
        String::new()
    } else {
        format!(
            " plus uncommitted changes in {} file(s) under crates/",
            dirty.lines().count()
        )
    };
    format!("Binary: `{version}`, built from commit {commit}{dirty}.")
}

fn matrix_run(a: MatrixArgs) -> Result<ExitCode> {
    std::fs::create_dir_all(&a.log_dir)
        .with_context(|| format!("creating {}", a.log_dir.display()))?;
    // A private copy of the binary: a rebuild during a long run does not change it.
    let in8 = a.log_dir.join("in8");
    if a.in8.is_file() {
        let tmp = a.log_dir.join("in8.tmp");
        std::fs::copy(&a.in8, &tmp).with_context(|| format!("copying {}", a.in8.display()))?;
        std::fs::rename(&tmp, &in8)?;
    }
    let provenance = provenance(&in8);
    let config = matrix::MatrixConfig {
        runs: a.runs,
        reduced: a.reduced,
        cells: (!a.cells.is_empty()).then_some(a.cells),
        impairment: a
            .impaired
            .then(|| in8_interop::Impairment::wan_50ms_2pct(a.seed)),
        relay_allowed: !a.no_relay,
        in8: std::fs::canonicalize(&in8).unwrap_or(in8),
        seed: a.seed,
        connect_timeout: a.connect_timeout,
        deadline: a
            .deadline
            .unwrap_or(Duration::from_secs(if a.impaired { 120 } else { 60 })),
        log_dir: std::fs::canonicalize(&a.log_dir).unwrap_or(a.log_dir),
        invite_args: a.invite_args,
        join_args: a.join_args,
    };
    eprintln!("{provenance}");
    let started = std::time::Instant::now();
    let reports = matrix::run(&config, |cell, r, record| {
        let verdict = matrix::judge(
            matrix::expected(cell),
            config.relay_for(cell),
            &record.outcome,
        );
        eprintln!(
            "[{:>5.0}s] {cell} run {r} seed {}: {:?} -> {verdict:?}",
            started.elapsed().as_secs_f64(),
            record.seed,
            record.outcome
        );
    });
    let text = matrix::markdown(&config, &reports, &a.command, &provenance);
    println!("{text}");
    if let Some(path) = a.out {
        let doc = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            "# NAT matrix: in8 invite / in8 join through the lab's NATs\n\n\
             What the lab and the cells are: docs/lab.md.\n"
                .into()
        });
        let section = a
            .section
            .unwrap_or_else(|| matrix::report::section(&config));
        let doc = matrix::report::splice(&doc, &section, &text);
        std::fs::write(&path, doc).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if matrix::any_failed(&reports) {
        eprintln!("matrix: at least one run failed its verdict");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn main() -> Result<ExitCode> {
    match Cli::parse().task {
        Task::Selftest {
            no_punch,
            no_impairment,
            markdown,
            verbose,
        } => {
            let report = selftest::run(selftest::Options {
                punch: !no_punch,
                impairment: !no_impairment,
            })
            .context("running the lab self-test")?;
            if verbose {
                for c in &report.nat {
                    println!("--- {} ---\n{}", c.nat, c.output.trim());
                }
            }
            let text = report.markdown();
            println!("{text}");
            if let Some(path) = markdown {
                let doc = format!(
                    "# NAT lab self-test\n\nReproduce: `cargo xtask interop selftest --record` \
                     (as root; it runs `in8-lab selftest`). What the lab is: docs/lab.md.\n\n{text}"
                );
                std::fs::write(&path, doc)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if report.passed() {
                println!("lab self-test passed");
                Ok(ExitCode::SUCCESS)
            } else {
                println!("lab self-test FAILED");
                Ok(ExitCode::FAILURE)
            }
        }
        Task::Matrix(a) => matrix_run(a),
        Task::Network(a) => network_run(a),
        Task::Venv { dir } => {
            let dir = dir.unwrap_or_else(venv::default_dir);
            let v = venv::Venv::ensure(&dir, venv::FOREIGN_PEERS)
                .context("creating the Python venv")?;
            println!("{}", v.python().display());
            Ok(ExitCode::SUCCESS)
        }
        Task::Clean => {
            let c = clean::all().context("cleaning up the lab")?;
            println!("{}", clean::describe(&c));
            for n in &c.namespaces {
                println!("  {n}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
