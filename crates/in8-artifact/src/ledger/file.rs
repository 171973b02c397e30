//! A crash-safe, file-backed ledger: an append-only log of checksummed fixed-size records.
//!
//! File layout: the 8-byte magic `IN8LDG01`, then 40-byte records:
//!
//! | bytes | field |
//! |-------|-------|
//! | 0 | op: 1 = use recorded, 2 = revoked |
//! | 1..17 | invite id |
//! | 17..21 | uses recorded after this record (u32 BE) |
//! | 21..29 | entry expiry (Unix s, u64 BE) |
//! | 29..32 | zero |
//! | 32..40 | first 8 bytes of BLAKE3 `derive_key("in8 v1 ledger record", bytes 0..32)` |
//!
//! A redemption is acknowledged only after its record is written and `fsync`ed. A crash can
//! therefore leave at most one torn record at the tail, which was never acknowledged; it is
//! discarded on open. A bad record anywhere else is corruption and opening fails
//! ([`Error::CorruptLedger`]) rather than silently re-enabling invitations. When the log grows
//! past twice the live entries (plus 4096 records), it is compacted into a new file written
//! next to it, `fsync`ed and atomically renamed over the old one. A `.lock` file held with an
//! exclusive lock keeps a second process from using the same ledger.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{EntryStatus, Ledger, Redemption, Table, lock};
use crate::error::{Error, Result};
use crate::ids::InviteId;
use crate::time::Timestamp;

const MAGIC: &[u8; 8] = b"IN8LDG01";
const RECORD: usize = 40;
const OP_USE: u8 = 1;
const OP_REVOKE: u8 = 2;
const COMPACT_SLACK: usize = 4096;

fn checksum(head: &[u8]) -> [u8; 8] {
    let h = blake3::derive_key("in8 v1 ledger record", head);
    let mut c = [0u8; 8];
    c.copy_from_slice(&h[..8]);
    c
}

fn encode(id: &InviteId, e: &EntryStatus) -> [u8; RECORD] {
    let mut r = [0u8; RECORD];
    r[0] = if e.revoked { OP_REVOKE } else { OP_USE };
    r[1..17].copy_from_slice(id.as_bytes());
    r[17..21].copy_from_slice(&e.used.to_be_bytes());
    r[21..29].copy_from_slice(&e.expires.as_unix().to_be_bytes());
    let c = checksum(&r[..32]);
    r[32..].copy_from_slice(&c);
    r
}

fn decode(r: &[u8]) -> Option<(InviteId, EntryStatus)> {
    if r.len() != RECORD || checksum(&r[..32])[..] != r[32..] || r[29..32] != [0, 0, 0] {
        return None;
    }
    let revoked = match r[0] {
        OP_USE => false,
        OP_REVOKE => true,
        _ => return None,
    };
    let mut id = [0u8; 16];
    id.copy_from_slice(&r[1..17]);
    let used = u32::from_be_bytes([r[17], r[18], r[19], r[20]]);
    let mut exp = [0u8; 8];
    exp.copy_from_slice(&r[21..29]);
    Some((
        InviteId::from_bytes(id),
        EntryStatus {
            used,
            revoked,
            expires: Timestamp(u64::from_be_bytes(exp)),
        },
    ))
}

struct Inner {
    table: Table,
    file: File,
    /// Bytes of the log known to be good (header + whole records).
    len: u64,
    records: usize,
}

/// A persistent ledger in one file (see the module docs for the format and guarantees).
pub struct FileLedger {
    path: PathBuf,
    inner: Mutex<Inner>,
    capacity: usize,
    _lock: File,
}

impl std::fmt::Debug for FileLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileLedger")
            .field("path", &self.path)
            .finish()
    }
}

impl FileLedger {
    /// Opens (or creates) the ledger at `path`, replaying it. `now` prunes long-expired
    /// entries; `capacity` bounds live entries.
    pub fn open(path: impl AsRef<Path>, capacity: usize, now: Timestamp) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(Error::io("creating the directory of", &path))?;
        }
        let lock_path = path.with_extension("lock");
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(Error::io("opening", &lock_path))?;
        if lock_file.try_lock().is_err() {
            return Err(Error::LedgerLocked {
                path: path.display().to_string(),
            });
        }
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(Error::io("opening", &path))?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)
            .map_err(Error::io("reading", &path))?;
        if data.is_empty() {
            file.write_all(MAGIC).map_err(Error::io("writing", &path))?;
            file.sync_all().map_err(Error::io("syncing", &path))?;
            data.extend_from_slice(MAGIC);
        }
        let corrupt = |offset: usize, reason| Error::CorruptLedger {
            path: path.display().to_string(),
            offset: offset as u64,
            reason,
        };
        if data.len() < MAGIC.len() || &data[..MAGIC.len()] != MAGIC {
            return Err(corrupt(0, "not an in8 ledger (bad magic)"));
        }
        let mut table = Table::default();
        let body = &data[MAGIC.len()..];
        let whole = body.len() / RECORD;
        let mut good = whole;
        for (i, rec) in body.chunks_exact(RECORD).enumerate() {
            match decode(rec) {
                Some((id, e)) => {
                    table.entries.insert(id, e);
                }
                // Only the final record can be torn by a crash; it was never acknowledged.
                None if i + 1 == whole => good = i,
                None => return Err(corrupt(MAGIC.len() + i * RECORD, "bad record checksum")),
            }
        }
        let len = (MAGIC.len() + good * RECORD) as u64;
        if len != data.len() as u64 {
            file.set_len(len)
                .map_err(Error::io("truncating the torn tail of", &path))?;
            file.sync_all().map_err(Error::io("syncing", &path))?;
        }
        table.prune(now);
        let ledger = Self {
            inner: Mutex::new(Inner {
                table,
                file,
                len,
                records: good,
            }),
            path,
            capacity,
            _lock: lock_file,
        };
        ledger.maybe_compact(&mut lock(&ledger.inner))?;
        Ok(ledger)
    }

    /// The ledger file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append(&self, inner: &mut Inner, id: &InviteId, e: &EntryStatus) -> Result<()> {
        let rec = encode(id, e);
        let res = inner
            .file
            .write_all(&rec)
            .and_then(|()| inner.file.sync_data());
        if let Err(source) = res {
            // Roll back a partial append so later records stay aligned.
            let _ = inner.file.set_len(inner.len);
            return Err(Error::Io {
                action: "appending to",
                path: self.path.display().to_string(),
                source,
            });
        }
        inner.len += RECORD as u64;
        inner.records += 1;
        inner.table.entries.insert(*id, *e);
        self.maybe_compact(inner)
    }

    fn maybe_compact(&self, inner: &mut Inner) -> Result<()> {
        if inner.records <= 2 * inner.table.entries.len() + COMPACT_SLACK {
            return Ok(());
        }
        let tmp = self.path.with_extension("compact");
        let mut buf = Vec::with_capacity(MAGIC.len() + inner.table.entries.len() * RECORD);
        buf.extend_from_slice(MAGIC);
        for (id, e) in &inner.table.entries {
            buf.extend_from_slice(&encode(id, e));
        }
        let mut f = File::create(&tmp).map_err(Error::io("creating", &tmp))?;
        f.write_all(&buf).map_err(Error::io("writing", &tmp))?;
        f.sync_all().map_err(Error::io("syncing", &tmp))?;
        std::fs::rename(&tmp, &self.path).map_err(Error::io("renaming over", &self.path))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(Error::io("syncing the directory of", &self.path))?;
        }
        inner.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(Error::io("reopening", &self.path))?;
        inner.len = buf.len() as u64;
        inner.records = inner.table.entries.len();
        Ok(())
    }
}

impl Ledger for FileLedger {
    fn redeem(
        &self,
        id: &InviteId,
        limit: u32,
        expires: Timestamp,
        now: Timestamp,
    ) -> Result<Redemption> {
        let mut inner = lock(&self.inner);
        let e = inner
            .table
            .check_redeem(id, limit, expires, now, self.capacity)?;
        self.append(&mut inner, id, &e)?;
        Ok(Redemption {
            used: e.used,
            remaining: limit - e.used,
        })
    }

    fn revoke(&self, id: &InviteId, expires: Timestamp, now: Timestamp) -> Result<()> {
        let mut inner = lock(&self.inner);
        inner.table.check_capacity(id, now, self.capacity)?;
        let mut e = inner.table.entries.get(id).copied().unwrap_or(EntryStatus {
            used: 0,
            revoked: true,
            expires,
        });
        e.revoked = true;
        e.expires = e.expires.max(expires);
        self.append(&mut inner, id, &e)
    }

    fn status(&self, id: &InviteId) -> Result<Option<EntryStatus>> {
        Ok(lock(&self.inner).table.entries.get(id).copied())
    }
}
