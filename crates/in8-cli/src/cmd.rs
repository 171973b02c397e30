//! One module per subcommand.

pub(crate) mod chat;
pub(crate) mod demo;
pub(crate) mod id;
pub(crate) mod inspect;
pub(crate) mod invite;
pub(crate) mod join;
pub(crate) mod nat;
pub(crate) mod net;
pub(crate) mod ping;
pub(crate) mod stun;
pub(crate) mod transfer;
pub(crate) mod up;

use std::io::Read;

use anyhow::{Context, Result, bail};

/// Reads an artifact argument: literal text, `@FILE`, or `-` for stdin.
pub(crate) fn read_artifact_arg(arg: &str) -> Result<Vec<u8>> {
    if arg == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .take(64 * 1024)
            .read_to_end(&mut buf)
            .context("reading the artifact from stdin")?;
        if buf.is_empty() {
            bail!("stdin was empty: pipe an artifact in, or pass it as an argument");
        }
        return Ok(buf);
    }
    if let Some(path) = arg.strip_prefix('@') {
        let meta = std::fs::metadata(path).with_context(|| format!("cannot read {path}"))?;
        if meta.len() > 64 * 1024 {
            bail!(
                "{path} is {} bytes: too large to be an in8 artifact",
                meta.len()
            );
        }
        return std::fs::read(path).with_context(|| format!("cannot read {path}"));
    }
    Ok(arg.as_bytes().to_vec())
}

/// The current wall-clock time (the CLI is where the clock is read).
pub(crate) fn now() -> in8_artifact::Timestamp {
    in8_artifact::Timestamp::from_system(std::time::SystemTime::now())
}
