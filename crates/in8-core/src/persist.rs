//! What a node keeps in its state directory across restarts (docs/core.md "State"):
//!
//! | file | contents |
//! |------|----------|
//! | `ledger` | the single-use ledger (in8-artifact's `FileLedger`) |
//! | `invitations/<id>.cbor` | each outstanding invitation this node issued, until it expires |
//! | `network.cbor` | this node's membership credential |
//! | `members.bin` | the last-known members' signed peer records, back to back |
//!
//! Directories are created 0700 and files 0600 (invitations carry bearer secrets). Every
//! write goes to a fresh temporary file with a random name, created exclusively (a planted
//! file or link at that name makes the write fail instead of being followed), synced, then
//! renamed over the target.

use std::io::Write;
use std::path::{Path, PathBuf};

use in8_artifact::{InviteId, NodeId, SignedInvitation, SignedMembership, Timestamp};
use in8_gossip::SignedPeerRecord;

use crate::error::{Error, Result};

/// Most invitations restored at start (the newest are kept when there are more).
pub const MAX_RESTORED: usize = 1024;
/// Largest state file read back (a bigger one is not this node's).
const MAX_STATE_FILE: u64 = 4 << 20;

fn invitations(state: &Path) -> PathBuf {
    state.join("invitations")
}

fn io(action: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { action, source }
}

/// Creates `dir` (and its parents) with mode 0700.
pub fn make_dir(dir: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(io(format!("creating {}", dir.display())))
}

/// Writes `bytes` to `path` atomically: a fresh, exclusively created 0600 temporary file in
/// the same directory, synced, renamed over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    make_dir(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o
        .open(&tmp)
        .map_err(io(format!("creating {}", tmp.display())))?;
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Io {
            action: format!("writing {}", tmp.display()),
            source: e,
        });
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io {
            action: format!("renaming to {}", path.display()),
            source: e,
        }
    })
}

/// Reads a regular file of bounded size (`None` when it does not exist).
fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Io {
                action: format!("reading {}", path.display()),
                source: e,
            });
        }
    };
    if !meta.is_file() || meta.len() > MAX_STATE_FILE {
        return Err(Error::Io {
            action: format!("reading {}", path.display()),
            source: std::io::Error::other(
                "not a regular file of at most 4 MiB; move it away to start afresh",
            ),
        });
    }
    std::fs::read(path)
        .map(Some)
        .map_err(io(format!("reading {}", path.display())))
}

/// Stores an invitation.
pub(crate) fn save_invitation(state: &Path, inv: &SignedInvitation) -> Result<()> {
    let id = inv.invitation().invite_id();
    write_atomically(
        &invitations(state).join(format!("{id}.cbor")),
        inv.to_bytes(),
    )
}

/// Forgets an invitation (expired).
pub(crate) fn forget_invitation(state: &Path, id: &InviteId) {
    let _ = std::fs::remove_file(invitations(state).join(format!("{id}.cbor")));
}

/// The stored invitations issued by `me` that are still valid at `now`; expired, foreign or
/// unreadable files are removed (and logged).
pub(crate) fn load_invitations(state: &Path, me: NodeId, now: Timestamp) -> Vec<SignedInvitation> {
    let Ok(entries) = std::fs::read_dir(invitations(state)) else {
        return Vec::new();
    };
    let mut out: Vec<SignedInvitation> = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "cbor") {
            continue;
        }
        let keep = read_bounded(&path)
            .ok()
            .flatten()
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

fn credential_path(state: &Path) -> PathBuf {
    state.join("network.cbor")
}

fn members_path(state: &Path) -> PathBuf {
    state.join("members.bin")
}

/// Stores this node's credential.
pub(crate) fn save_credential(state: &Path, c: &SignedMembership) -> Result<()> {
    write_atomically(&credential_path(state), c.to_bytes())
}

/// The stored credential, if any. A file that is not a credential, or belongs to another
/// node, is an error naming it (nothing is overwritten).
pub fn load_credential(state: &Path, me: NodeId) -> Result<Option<SignedMembership>> {
    let path = credential_path(state);
    let Some(bytes) = read_bounded(&path)? else {
        return Ok(None);
    };
    let c = SignedMembership::decode(&bytes).map_err(|e| Error::Io {
        action: format!("reading {}", path.display()),
        source: std::io::Error::other(format!(
            "not a membership credential ({e}); move it away to start afresh"
        )),
    })?;
    if c.membership().member != me {
        return Err(Error::Io {
            action: format!("reading {}", path.display()),
            source: std::io::Error::other(format!(
                "it belongs to another identity ({}); move it away or use the matching identity",
                c.membership().member
            )),
        });
    }
    Ok(Some(c))
}

/// Stores the last-known members.
pub(crate) fn save_members(state: &Path, members: &[SignedPeerRecord]) -> Result<()> {
    let mut bytes = Vec::new();
    for r in members {
        bytes.extend_from_slice(r.to_bytes());
    }
    write_atomically(&members_path(state), &bytes)
}

/// The last-known members (unreadable entries end the list; it is only a hint).
pub(crate) fn load_members(state: &Path) -> Vec<SignedPeerRecord> {
    let Ok(Some(bytes)) = read_bounded(&members_path(state)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut rest = &bytes[..];
    while let [a, b, ..] = rest {
        let len = 2 + usize::from(u16::from_be_bytes([*a, *b])) + 64;
        let Some(one) = rest.get(..len) else { break };
        match SignedPeerRecord::decode(one) {
            Ok(r) => out.push(r),
            Err(_) => break,
        }
        rest = &rest[len..];
    }
    out
}

/// Makes this node (`creator`) the creator of a new network: its genesis credential,
/// valid until `expires`, replaces any stored one, and the old network's last-known
/// members are forgotten. The node must not be running on `state`.
pub fn new_network(
    state: &Path,
    creator: &in8_artifact::Identity,
    nonce: u64,
    expires: Timestamp,
) -> Result<SignedMembership> {
    let c = in8_artifact::Membership::genesis(creator, nonce, expires);
    save_credential(state, &c)?;
    let _ = std::fs::remove_file(members_path(state));
    Ok(c)
}

/// Forgets the network (the node left it).
pub(crate) fn forget_network(state: &Path) {
    let _ = std::fs::remove_file(credential_path(state));
    let _ = std::fs::remove_file(members_path(state));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_are_private_and_do_not_follow_planted_links() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let state = dir.path().join("state");
        let target = state.join("network.cbor");
        write_atomically(&target, b"one").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read(&target).ok(), Some(b"one".to_vec()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| {
                std::fs::metadata(p)
                    .map(|m| m.permissions().mode() & 0o777)
                    .unwrap_or(0)
            };
            assert_eq!(mode(&target), 0o600);
            assert_eq!(mode(&state), 0o700);
            // A link planted where the state file is read is refused, not followed.
            let victim = dir.path().join("victim");
            std::fs::write(&victim, b"keep").unwrap_or_else(|e| panic!("{e}"));
            let _ = std::fs::remove_file(&target);
            std::os::unix::fs::symlink(&victim, &target).unwrap_or_else(|e| panic!("{e}"));
            assert!(read_bounded(&target).is_err());
            // Writing replaces the link itself; the file it pointed at is untouched.
            write_atomically(&target, b"two").unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(std::fs::read(&victim).ok(), Some(b"keep".to_vec()));
            assert_eq!(std::fs::read(&target).ok(), Some(b"two".to_vec()));
        }
    }
}
