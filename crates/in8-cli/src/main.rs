//! `in8`: serverless peer-to-peer invitations, RSVPs and network formation.
//!
//! Exit codes (docs/cli.md): 0 success; 1 operational failure (file, network, internal);
//! 2 usage error (bad flag or argument); 3 invalid artifact (malformed, forged, expired,
//! revoked, used up); 4 could not connect (unreachable, refused by the inviter, RSVP window
//! ended); 130 interrupted.

mod cmd;
mod connect;
mod control;
mod home;
mod net_events;
mod output;
mod settings;
mod topology;

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
    /// A TOML config file (port, bind, stun, relay, [turn]); flags override it.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create or show this node's identity.
    Id(cmd::id::Args),
    /// Create an invitation for another node to join this node's network.
    Invite(cmd::invite::Args),
    /// Join another node's network from its invitation, check the session, and exit.
    Join(cmd::join::Args),
    /// Run this node in its network (created on first use, or joined with --join) and
    /// show its members and links; `in8 net` talks to it.
    Up(cmd::up::Args),
    /// Talk to the running node: status, members, links, invite, join, revoke,
    /// broadcast, topology, leave, stop; or create a new network.
    Net(cmd::net::Args),
    /// Watch a network form on this machine: nodes join by invitations (later ones issued
    /// by members), introductions punch through filtering shims, a broadcast reaches
    /// everyone, a member is revoked. No setup, no servers.
    Demo(cmd::demo::Args),
    /// Decode and verify an invitation, RSVP, membership or revocation record.
    Inspect(cmd::inspect::Args),
    /// Group chat over the network's broadcast: invite (no argument) or join (an
    /// invitation).
    Chat(cmd::chat::Args),
    /// Send a file: invite, then send it to whoever joins with `in8 recv`.
    Send(cmd::transfer::SendArgs),
    /// Receive a file: join the sender's invitation and save what it sends.
    Recv(cmd::transfer::RecvArgs),
    /// Find out which NAT this machine is behind, and what that means for connecting.
    Nat(cmd::nat::Args),
    /// Run a standalone STUN server.
    Stun(cmd::stun::Args),
}

/// The tokio runtime the networked commands run on.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Runs a networked command; Ctrl-C ends it with exit code 130.
pub(crate) fn run_async(
    fut: impl std::future::Future<Output = anyhow::Result<ExitCode>>,
) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        tokio::select! {
            r = fut => r,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("interrupted");
                Ok(ExitCode::from(130))
            }
        }
    })
}

fn init_logs(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    // The DTLS / SCTP libraries log routine shutdown noise as errors: only with -vv.
    let libs = if verbose >= 2 { level } else { "off" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("IN8_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "{level},webrtc_sctp={libs},dtls={libs},webrtc_util={libs}"
        ))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.verbose, cli.quiet);
    let out = output::Output::new(cli.json, cli.quiet);
    let file = match &cli.config {
        Some(p) => settings::FileConfig::load(p),
        None => Ok(settings::FileConfig::default()),
    };
    let home = home::Home::resolve(cli.home.clone(), cli.identity.clone());
    let result = home.and_then(|home| {
        let file = file?;
        match &cli.command {
            Command::Id(a) => cmd::id::run(a, &home, &out),
            Command::Invite(a) => cmd::invite::run(a, &home, &out, &file),
            Command::Join(a) => cmd::join::run(a, &home, &out, &file),
            Command::Up(a) => cmd::up::run(a, &home, &out, &file),
            Command::Net(a) => cmd::net::run(a, &home, &out),
            Command::Demo(a) => cmd::demo::run(a, &out),
            Command::Inspect(a) => cmd::inspect::run(a, &home, &out),
            Command::Chat(a) => cmd::chat::run(a, &home, &out, &file),
            Command::Send(a) => cmd::transfer::run_send(a, &home, &out, &file),
            Command::Recv(a) => cmd::transfer::run_recv(a, &home, &out, &file),
            Command::Nat(a) => cmd::nat::run(a, &out),
            Command::Stun(a) => cmd::stun::run(a, &out),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => out.fail(&e),
    }
}
