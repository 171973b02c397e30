//! `in8 id`: create or show the node identity.

use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use crate::home::Home;
use crate::output::Output;

/// Arguments of `in8 id`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {}

pub(crate) fn run(_: &Args, home: &Home, out: &Output) -> Result<ExitCode> {
    let (me, created) = home.identity()?;
    let path = home.identity_path().display().to_string();
    if out.json() {
        out.event(json!({"event": "identity", "node_id": me.node_id().to_string(), "path": path, "created": created}));
    } else {
        println!("{}", me.node_id());
        if created {
            out.note(format!(
                "created a new identity in {path} (keep this file private: it is this node)"
            ));
        } else {
            out.note(format!("identity file: {path}"));
        }
    }
    Ok(ExitCode::SUCCESS)
}
