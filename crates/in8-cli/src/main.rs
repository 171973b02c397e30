//! `in8`: serverless peer-to-peer invitations, RSVPs and network formation.
//!
//! Exit codes (docs/cli.md): 0 success; 1 operational failure (file, network, internal);
//! 2 usage error (bad flag or argument); 3 invalid artifact (malformed, forged, expired,
//! revoked, used up).

mod cmd;
mod home;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Serverless peer-to-peer invitations: connect from a signed invitation carried out of band.
#[derive(Parser, Debug)]
#[command(name = "in8", version, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 ok, 1 operational failure, 2 usage error, 3 invalid artifact.\nDocs: docs/cli.md"
)]
struct Cli {
    /// Print machine-readable output: one JSON object per line.
    #[arg(long, global = true)]
    json: bool,
    /// More log output (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only print results and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Directory for this node's identity, network credential and ledger
    /// [default: $IN8_HOME, else ~/.in8].
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,
    /// Identity file to use [default: <home>/identity].
    #[arg(long, global = true, value_name = "PATH")]
    identity: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create or show this node's identity.
    Id(cmd::id::Args),
    /// Create an invitation for another node to join this node's network.
    Invite(cmd::invite::Args),
    /// Decode and verify an invitation, RSVP, membership or revocation record.
    Inspect(cmd::inspect::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = output::Output::new(cli.json, cli.quiet);
    let home = home::Home::resolve(cli.home.clone(), cli.identity.clone());
    let result = home.and_then(|home| match &cli.command {
        Command::Id(a) => cmd::id::run(a, &home, &out),
        Command::Invite(a) => cmd::invite::run(a, &home, &out),
        Command::Inspect(a) => cmd::inspect::run(a, &home, &out),
    });
    match result {
        Ok(code) => code,
        Err(e) => out.fail(&e),
    }
}
