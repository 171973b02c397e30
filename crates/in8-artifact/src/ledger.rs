//! The issuer's redemption ledger: enforces use limits and local revocation.
//!
//! An invitation is a bearer capability; the issuer is the only party that can count its
//! uses. [`Ledger::redeem`] is atomic: of any number of concurrent redemptions of a
//! single-use invitation exactly one succeeds. [`FileLedger`] makes that survive restarts and
//! crashes; [`MemoryLedger`] is for tests and ephemeral nodes.
//!
//! Entries are forgotten once the invitation has expired by more than
//! [`VerifyPolicy::MAX_SKEW`]: every verifier rejects it from then on, so forgetting cannot
//! make a used invitation valid again.

mod file;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

pub use file::FileLedger;

use crate::error::{Error, Result};
use crate::ids::InviteId;
use crate::policy::VerifyPolicy;
use crate::time::Timestamp;

/// Default bound on live ledger entries (outstanding or recently used invitations).
pub const DEFAULT_LEDGER_CAPACITY: usize = 1_000_000;

/// A successful redemption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Redemption {
    /// Uses so far, this one included.
    pub used: u32,
    /// Uses left after this one.
    pub remaining: u32,
}

/// Counts invitation uses for their issuer.
pub trait Ledger: Send + Sync {
    /// Records one use of invitation `id` whose limit is `limit` and which expires at
    /// `expires`. Fails with [`Error::AlreadyUsed`] when used up, [`Error::Revoked`] when
    /// revoked. Atomic and, for persistent ledgers, durable before it returns `Ok`.
    fn redeem(
        &self,
        id: &InviteId,
        limit: u32,
        expires: Timestamp,
        now: Timestamp,
    ) -> Result<Redemption>;

    /// Revokes invitation `id` locally: later redemptions fail with [`Error::Revoked`].
    fn revoke(&self, id: &InviteId, expires: Timestamp, now: Timestamp) -> Result<()>;

    /// Uses recorded so far for `id` (`None` if never used nor revoked).
    fn status(&self, id: &InviteId) -> Result<Option<EntryStatus>>;
}

/// What the ledger knows about one invitation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryStatus {
    /// Uses recorded.
    pub used: u32,
    /// Whether it was revoked.
    pub revoked: bool,
    /// When the entry may be forgotten.
    pub expires: Timestamp,
}

/// The in-memory table shared by both ledgers.
#[derive(Debug, Default)]
pub(crate) struct Table {
    pub(crate) entries: HashMap<InviteId, EntryStatus>,
}

impl Table {
    pub(crate) fn forgettable(e: &EntryStatus, now: Timestamp) -> bool {
        e.expires + VerifyPolicy::MAX_SKEW <= now
    }

    pub(crate) fn prune(&mut self, now: Timestamp) {
        self.entries.retain(|_, e| !Self::forgettable(e, now));
    }

    /// Decides a redemption without applying it.
    pub(crate) fn check_redeem(
        &mut self,
        id: &InviteId,
        limit: u32,
        expires: Timestamp,
        now: Timestamp,
        capacity: usize,
    ) -> Result<EntryStatus> {
        let current = self.entries.get(id).copied();
        if current.is_none() && self.entries.len() >= capacity {
            self.prune(now);
            if self.entries.len() >= capacity {
                return Err(Error::CapacityExceeded {
                    what: "invitation ledger",
                    limit: capacity,
                });
            }
        }
        let mut e = current.unwrap_or(EntryStatus {
            used: 0,
            revoked: false,
            expires,
        });
        if e.revoked {
            return Err(Error::Revoked {
                what: "this invitation",
            });
        }
        if e.used >= limit {
            return Err(Error::AlreadyUsed {
                invite_id: id.to_string(),
                limit,
            });
        }
        e.used += 1;
        e.expires = e.expires.max(expires);
        Ok(e)
    }

    pub(crate) fn check_capacity(
        &mut self,
        id: &InviteId,
        now: Timestamp,
        capacity: usize,
    ) -> Result<()> {
        if !self.entries.contains_key(id) && self.entries.len() >= capacity {
            self.prune(now);
            if self.entries.len() >= capacity {
                return Err(Error::CapacityExceeded {
                    what: "invitation ledger",
                    limit: capacity,
                });
            }
        }
        Ok(())
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the table half-updated (each update is a
    // single insert), so a poisoned lock is safe to keep using.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A ledger that lives in memory only (lost on restart).
#[derive(Debug)]
pub struct MemoryLedger {
    table: Mutex<Table>,
    capacity: usize,
}

impl MemoryLedger {
    /// An empty ledger bounded to `capacity` live entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            table: Mutex::new(Table::default()),
            capacity,
        }
    }
}

impl Default for MemoryLedger {
    fn default() -> Self {
        Self::new(DEFAULT_LEDGER_CAPACITY)
    }
}

impl Ledger for MemoryLedger {
    fn redeem(
        &self,
        id: &InviteId,
        limit: u32,
        expires: Timestamp,
        now: Timestamp,
    ) -> Result<Redemption> {
        let mut t = lock(&self.table);
        let e = t.check_redeem(id, limit, expires, now, self.capacity)?;
        t.entries.insert(*id, e);
        Ok(Redemption {
            used: e.used,
            remaining: limit - e.used,
        })
    }

    fn revoke(&self, id: &InviteId, expires: Timestamp, now: Timestamp) -> Result<()> {
        let mut t = lock(&self.table);
        t.check_capacity(id, now, self.capacity)?;
        let e = t.entries.entry(*id).or_insert(EntryStatus {
            used: 0,
            revoked: true,
            expires,
        });
        e.revoked = true;
        e.expires = e.expires.max(expires);
        Ok(())
    }

    fn status(&self, id: &InviteId) -> Result<Option<EntryStatus>> {
        Ok(lock(&self.table).entries.get(id).copied())
    }
}
