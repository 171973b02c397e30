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
use in8_interop::{clean, selftest};

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
                std::fs::write(&path, &text)
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
