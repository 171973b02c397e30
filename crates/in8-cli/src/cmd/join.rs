//! `in8 join`: connect from an invitation.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use in8_artifact::SignedInvitation;

use super::{now, read_artifact_arg};
use crate::home::Home;
use crate::output::Output;
use crate::settings::{FileConfig, NodeArgs};

/// Arguments of `in8 join`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The invitation: its text, @FILE, or - for stdin.
    invitation: String,
    /// If phase 1 fails, also write the RSVP to this file.
    #[arg(long, value_name = "FILE")]
    rsvp_out: Option<PathBuf>,
    /// Draw the RSVP as a QR code too.
    #[arg(long)]
    qr: bool,
    /// After connecting, keep the session open this long (e.g. 10s) before exiting.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    hold: Duration,
    #[command(flatten)]
    node: NodeArgs,
}

/// Reads and decodes an invitation argument.
pub(crate) fn read_invitation(arg: &str) -> Result<SignedInvitation> {
    let input = read_artifact_arg(arg)?;
    let (bytes, _) =
        in8_artifact::text::decode_any(&input).context("cannot decode the invitation")?;
    SignedInvitation::decode(&bytes).context("not an invitation")
}

/// Starts this node for joining (any free port unless configured).
pub(crate) async fn start(
    home: &Home,
    file: &FileConfig,
    node: &NodeArgs,
) -> Result<in8_core::Node> {
    let cfg = crate::settings::node_config(home, file, node, 0)?;
    let (me, _) = home.identity()?;
    let network = home.network(&me, now())?;
    Ok(in8_core::Node::start_in(cfg, Some(network)).await?)
}

pub(crate) fn run(a: &Args, home: &Home, out: &Output, file: &FileConfig) -> Result<ExitCode> {
    let invitation = read_invitation(&a.invitation)?;
    crate::run_async(async {
        let node = start(home, file, &a.node).await?;
        let conn =
            crate::connect::join(&node, &invitation, out, a.rsvp_out.as_deref(), a.qr).await?;
        crate::cmd::ping::probe(&conn, out).await?;
        tokio::time::sleep(a.hold).await;
        conn.close().await.ok();
        node.close().await;
        Ok(ExitCode::SUCCESS)
    })
}
