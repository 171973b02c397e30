//! Persisting a node identity in a file only its owner can read.
//!
//! Format: the line `in8-identity-v1`, then the 32-byte ed25519 seed in base64url (no
//! padding) on its own line. Created with mode 0600 in a temporary file, synced, then linked
//! into place so a crash never leaves a half-written identity and two processes starting at
//! once end up with the same identity.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use rand_core::CryptoRng;

use crate::error::{Error, Result};
use crate::identity::Identity;

const HEADER: &str = "in8-identity-v1";

fn bad(path: &Path, reason: &'static str) -> Error {
    Error::BadIdentityFile {
        path: path.display().to_string(),
        reason,
    }
}

/// Reads the identity stored at `path`.
pub fn load(path: &Path) -> Result<Identity> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(Error::io("reading", path))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(bad(
                path,
                "it is readable by other users (run `chmod 600` on it, and consider the old key leaked if others had access)",
            ));
        }
    }
    let text = std::fs::read_to_string(path).map_err(Error::io("reading", path))?;
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(bad(path, "first line is not `in8-identity-v1`"));
    }
    let seed_text = lines
        .next()
        .ok_or_else(|| bad(path, "the key line is missing"))?;
    if lines.any(|l| !l.trim().is_empty()) {
        return Err(bad(path, "unexpected lines after the key"));
    }
    let seed = data_encoding::BASE64URL_NOPAD
        .decode(seed_text.trim().as_bytes())
        .map_err(|_| bad(path, "the key line is not base64url"))?;
    let seed: [u8; 32] = seed
        .as_slice()
        .try_into()
        .map_err(|_| bad(path, "the key is not 32 bytes"))?;
    Ok(Identity::from_seed(&seed))
}

/// Reads the identity at `path`, creating a new random one if the file does not exist.
/// Returns the identity and whether it was created now.
pub fn load_or_create<R: CryptoRng + ?Sized>(path: &Path, rng: &mut R) -> Result<(Identity, bool)> {
    if path.exists() {
        return load(path).map(|id| (id, false));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(Error::io("creating the directory of", path))?;
    }
    let identity = Identity::generate(rng);
    let seed = identity.seed();
    let contents = zeroize::Zeroizing::new(format!(
        "{HEADER}\n{}\n",
        data_encoding::BASE64URL_NOPAD.encode(seed.as_ref())
    ));
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(Error::io("creating", &tmp))?;
    let written = f.write_all(contents.as_bytes()).and_then(|()| f.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("writing", &tmp)(e));
    }
    // hard_link fails if `path` appeared meanwhile: then the other process's identity wins.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok((identity, true)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load(path).map(|id| (id, false)),
        Err(e) => Err(Error::io("creating", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn create_then_load_same_identity() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/identity");
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let (a, created) = load_or_create(&p, &mut rng).unwrap();
        assert!(created);
        let (b, created) = load_or_create(&p, &mut rng).unwrap();
        assert!(!created);
        assert_eq!(a.node_id(), b.node_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn rejects_corrupt_and_open_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("identity");
        std::fs::write(&p, "in8-identity-v1\nnot-base64!\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
            assert!(matches!(load(&p), Err(Error::BadIdentityFile { .. })));
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(load(&p), Err(Error::BadIdentityFile { .. })));
        }
    }
}
