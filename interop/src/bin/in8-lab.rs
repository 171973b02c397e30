//! `in8-lab`: the NAT lab's command line. `cargo xtask interop` builds and runs it.
//!
//! - `in8-lab selftest [--no-punch] [--no-impairment] [--markdown FILE]`: build the lab, check
//!   every NAT type with RFC 5780 discovery, the raw punch baseline and impairment; exit 1 on
//!   any mismatch.
//! - `in8-lab clean`: remove every `in8lab-*` namespace and lab coturn left behind.
//! - `in8-lab matrix [--runs N] [--reduced] [--impaired] [--in8 PATH] [--out FILE]`: the
//!   in8 NAT matrix (cells that cannot run yet say why).

use std::path::PathBuf;
use std::process::ExitCode;

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
    /// The in8 NAT matrix (cells that cannot run yet say why).
    Matrix {
        /// Seeded runs per cell.
        #[arg(long, default_value_t = 1)]
        runs: u32,
        /// Only the reduced matrix CI runs.
        #[arg(long)]
        reduced: bool,
        /// 50 ms delay and 2 % loss per site and direction.
        #[arg(long)]
        impaired: bool,
        /// Invitations do not allow the relay.
        #[arg(long)]
        no_relay: bool,
        /// The in8 binary.
        #[arg(long, default_value = "target/debug/in8")]
        in8: PathBuf,
        /// Write the markdown report here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The command line to print in the report as its reproduction.
        #[arg(long, default_value = "cargo xtask interop matrix")]
        command: String,
    },
    /// Create (or reuse) the Python venv with aiortc / aioice and print its interpreter.
    Venv {
        /// Where; default target/interop-venv.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
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
        Task::Matrix {
            runs,
            reduced,
            impaired,
            no_relay,
            in8,
            out,
            command,
        } => {
            let config = matrix::MatrixConfig {
                runs,
                reduced,
                impairment: impaired.then(|| in8_interop::Impairment::wan_50ms_2pct(1)),
                relay_allowed: !no_relay,
                in8,
            };
            let reports = matrix::run(&config);
            let text = matrix::markdown(&config, &reports, &command);
            println!("{text}");
            if let Some(path) = out {
                std::fs::write(&path, &text)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            let failed = reports.iter().any(|r| {
                r.outcomes.iter().any(|o| {
                    matches!(
                        matrix::judge(r.expected, config.relay_allowed, o),
                        matrix::Verdict::Fail(_)
                    )
                })
            });
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
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
