//! The node's home directory: identity, network credential, ledger.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use in8_artifact::{Identity, SignedMembership, Timestamp, identity_file};

/// Files of one node.
pub(crate) struct Home {
    dir: PathBuf,
    identity: PathBuf,
}

impl Home {
    /// `--home`, else `$IN8_HOME`, else `~/.in8`; `--identity`, else `<home>/identity`.
    pub(crate) fn resolve(home: Option<PathBuf>, identity: Option<PathBuf>) -> Result<Self> {
        let dir = match home.or_else(|| std::env::var_os("IN8_HOME").map(PathBuf::from)) {
            Some(d) => d,
            None => std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".in8"))
                .ok_or_else(|| {
                    anyhow!("cannot find a home directory: pass --home DIR or set IN8_HOME")
                })?,
        };
        let identity = identity.unwrap_or_else(|| dir.join("identity"));
        Ok(Self { dir, identity })
    }

    /// The node's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn identity_path(&self) -> &Path {
        &self.identity
    }

    /// Loads the identity, creating it on first use. Returns whether it was created.
    pub(crate) fn identity(&self) -> Result<(Identity, bool)> {
        Ok(identity_file::load_or_create(
            &self.identity,
            &mut rand::rng(),
        )?)
    }

    /// This node's credential in its network, creating a new network on first use.
    pub(crate) fn network(&self, me: &Identity, now: Timestamp) -> Result<SignedMembership> {
        if let Some(c) = in8_core::state::load_credential(&self.dir, me.node_id())? {
            return Ok(c);
        }
        self.new_network(me, now)
    }

    /// Makes this node the creator of a new network (replacing any stored credential).
    pub(crate) fn new_network(&self, me: &Identity, now: Timestamp) -> Result<SignedMembership> {
        let ten_years = core::time::Duration::from_secs(10 * 365 * 86_400);
        Ok(in8_core::state::new_network(
            &self.dir,
            me,
            rand::random(),
            now + ten_years,
        )?)
    }

    /// Whether a credential is stored (this node belongs to a network).
    pub(crate) fn has_network(&self) -> bool {
        self.dir.join("network.cbor").exists()
    }
}
