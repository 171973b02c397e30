//! Outstanding invitations survive a restart: each is kept as `<state>/invitations/<id>.cbor`
//! (written to a temporary file, synced, renamed) until it expires, and listened for again
//! when the node starts. Together with the file ledger this keeps single use enforced across
//! restarts.

use std::io::Write;
use std::path::{Path, PathBuf};

use in8_artifact::{InviteId, NodeId, SignedInvitation, Timestamp};

use crate::error::{Error, Result};

/// Most invitations restored at start (the newest are kept when there are more).
pub const MAX_RESTORED: usize = 1024;

fn dir(state: &Path) -> PathBuf {
    state.join("invitations")
}

fn io(action: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { action, source }
}

/// Stores an invitation.
pub(crate) fn save(state: &Path, inv: &SignedInvitation) -> Result<()> {
    let d = dir(state);
    std::fs::create_dir_all(&d).map_err(io(format!("creating {}", d.display())))?;
    let id = inv.invitation().invite_id();
    let path = d.join(format!("{id}.cbor"));
    let tmp = d.join(format!("{id}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
    f.write_all(inv.to_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, &path).map_err(io(format!("renaming to {}", path.display())))?;
    Ok(())
}

/// Forgets an invitation (expired).
pub(crate) fn forget(state: &Path, id: &InviteId) {
    let _ = std::fs::remove_file(dir(state).join(format!("{id}.cbor")));
}

/// The stored invitations issued by `me` that are still valid at `now`; expired, foreign or
/// unreadable files are removed (and logged).
pub(crate) fn load(state: &Path, me: NodeId, now: Timestamp) -> Vec<SignedInvitation> {
    let Ok(entries) = std::fs::read_dir(dir(state)) else {
        return Vec::new();
    };
    let mut out: Vec<SignedInvitation> = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "cbor") {
            continue;
        }
        let keep = std::fs::read(&path)
            .ok()
            .and_then(|b| SignedInvitation::decode(&b).ok())
            .filter(|s| s.verify_signature().is_ok())
            .filter(|s| s.invitation().issuer == me && s.invitation().expires > now);
        match keep {
            Some(s) => out.push(s),
            None => {
                tracing::info!(file = %path.display(), "dropping an expired or unreadable stored invitation");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.invitation().expires));
    out.truncate(MAX_RESTORED);
    out
}
