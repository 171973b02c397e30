//! The node's home directory: identity, network credential, ledger.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use in8_artifact::{Identity, Membership, SignedMembership, Timestamp, identity_file};

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
        let path = self.dir.join("network.cbor");
        if path.exists() {
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let rec = SignedMembership::decode(&bytes)
                .with_context(|| format!("{} is not a membership credential", path.display()))?;
            if rec.membership().member != me.node_id() {
                return Err(anyhow!(
                    "{} belongs to another identity ({}); move it away or use the matching --identity",
                    path.display(),
                    rec.membership().member
                ));
            }
            return Ok(rec);
        }
        let nonce: u64 = rand::random();
        let ten_years = core::time::Duration::from_secs(10 * 365 * 86_400);
        let rec = Membership::genesis(me, nonce, now + ten_years);
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, rec.to_bytes())
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(rec)
    }
}
