//! The single-use ledger: atomic under concurrency, durable across restarts and crashes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use std::io::Write;
use std::sync::{Arc, Barrier};

use core::time::Duration;

use in8_artifact::fixtures::NOW;
use in8_artifact::{Error, FileLedger, InviteId, Ledger, MemoryLedger, Timestamp};

const CAP: usize = 1000;

fn id(n: u8) -> InviteId {
    InviteId::from_bytes([n; 16])
}

fn exp() -> Timestamp {
    NOW + Duration::from_secs(900)
}

fn thousand_concurrent(ledger: Arc<dyn Ledger>) {
    let barrier = Arc::new(Barrier::new(1000));
    let handles: Vec<_> = (0..1000)
        .map(|_| {
            let (l, b) = (ledger.clone(), barrier.clone());
            std::thread::spawn(move || {
                b.wait();
                l.redeem(&id(1), 1, exp(), NOW)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1);
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, Error::AlreadyUsed { limit: 1, .. }))
    );
}

#[test]
fn exactly_one_of_a_thousand_concurrent_redemptions_wins_in_memory() {
    thousand_concurrent(Arc::new(MemoryLedger::new(CAP)));
}

#[test]
fn exactly_one_of_a_thousand_concurrent_redemptions_wins_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    thousand_concurrent(Arc::new(
        FileLedger::open(dir.path().join("ledger"), CAP, NOW).unwrap(),
    ));
}

#[test]
fn multi_use_limits_count_down() {
    let l = MemoryLedger::new(CAP);
    assert_eq!(l.redeem(&id(2), 3, exp(), NOW).unwrap().remaining, 2);
    assert_eq!(l.redeem(&id(2), 3, exp(), NOW).unwrap().remaining, 1);
    assert_eq!(l.redeem(&id(2), 3, exp(), NOW).unwrap().remaining, 0);
    assert!(matches!(
        l.redeem(&id(2), 3, exp(), NOW),
        Err(Error::AlreadyUsed { limit: 3, .. })
    ));
}

#[test]
fn used_and_revoked_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger");
    {
        let l = FileLedger::open(&path, CAP, NOW).unwrap();
        l.redeem(&id(1), 1, exp(), NOW).unwrap();
        l.revoke(&id(2), exp(), NOW).unwrap();
    }
    let l = FileLedger::open(&path, CAP, NOW).unwrap();
    assert!(matches!(
        l.redeem(&id(1), 1, exp(), NOW),
        Err(Error::AlreadyUsed { .. })
    ));
    assert!(matches!(
        l.redeem(&id(2), 1, exp(), NOW),
        Err(Error::Revoked { .. })
    ));
    l.redeem(&id(3), 1, exp(), NOW).unwrap();
}

#[test]
fn a_torn_tail_from_a_crash_is_discarded_and_earlier_uses_stay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger");
    {
        let l = FileLedger::open(&path, CAP, NOW).unwrap();
        l.redeem(&id(1), 1, exp(), NOW).unwrap();
    }
    // A crash in the middle of appending the next record: a partial record at the tail.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(&[1, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]).unwrap();
    drop(f);
    let l = FileLedger::open(&path, CAP, NOW).unwrap();
    assert!(matches!(
        l.redeem(&id(1), 1, exp(), NOW),
        Err(Error::AlreadyUsed { .. })
    ));
    // The unacknowledged use was not recorded, and new appends are aligned again.
    l.redeem(&id(9), 1, exp(), NOW).unwrap();
    drop(l);
    let l = FileLedger::open(&path, CAP, NOW).unwrap();
    assert!(matches!(
        l.redeem(&id(9), 1, exp(), NOW),
        Err(Error::AlreadyUsed { .. })
    ));
}

#[test]
fn a_whole_but_torn_last_record_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger");
    {
        let l = FileLedger::open(&path, CAP, NOW).unwrap();
        l.redeem(&id(1), 1, exp(), NOW).unwrap();
        l.redeem(&id(2), 1, exp(), NOW).unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0xff; // last record's checksum damaged
    std::fs::write(&path, &bytes).unwrap();
    let l = FileLedger::open(&path, CAP, NOW).unwrap();
    assert!(l.redeem(&id(1), 1, exp(), NOW).is_err());
    assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, n - 40);
}

#[test]
fn corruption_before_the_tail_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger");
    {
        let l = FileLedger::open(&path, CAP, NOW).unwrap();
        l.redeem(&id(1), 1, exp(), NOW).unwrap();
        l.redeem(&id(2), 1, exp(), NOW).unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8 + 5] ^= 1; // inside the first record
    std::fs::write(&path, &bytes).unwrap();
    let err = FileLedger::open(&path, CAP, NOW).unwrap_err();
    assert!(
        matches!(err, Error::CorruptLedger { offset: 8, .. }),
        "{err}"
    );
    std::fs::write(&path, b"not a ledger at all").unwrap();
    assert!(matches!(
        FileLedger::open(&path, CAP, NOW),
        Err(Error::CorruptLedger { .. })
    ));
}

#[test]
fn a_second_process_cannot_open_the_same_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger");
    let _first = FileLedger::open(&path, CAP, NOW).unwrap();
    assert!(matches!(
        FileLedger::open(&path, CAP, NOW),
        Err(Error::LedgerLocked { .. })
    ));
}

#[test]
fn capacity_is_bounded_and_expired_entries_make_room() {
    let l = MemoryLedger::new(2);
    l.redeem(&id(1), 1, exp(), NOW).unwrap();
    l.redeem(&id(2), 1, exp(), NOW).unwrap();
    assert!(matches!(
        l.redeem(&id(3), 1, exp(), NOW),
        Err(Error::CapacityExceeded { .. })
    ));
    let later = exp() + Duration::from_secs(3600);
    l.redeem(&id(3), 1, later + Duration::from_secs(900), later)
        .unwrap();
}

#[test]
fn the_log_is_compacted_and_keeps_every_live_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger");
    let l = FileLedger::open(&path, 100_000, NOW).unwrap();
    // 5000 uses of a 5000-use invitation: one live entry, 5000 records -> compaction.
    for _ in 0..5000 {
        l.redeem(&id(7), 5000, exp(), NOW).unwrap();
    }
    l.redeem(&id(8), 1, exp(), NOW).unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len < 8 + 40 * 5001, "not compacted: {len} bytes");
    drop(l);
    let l = FileLedger::open(&path, 100_000, NOW).unwrap();
    assert!(matches!(
        l.redeem(&id(7), 5000, exp(), NOW),
        Err(Error::AlreadyUsed { .. })
    ));
    assert!(matches!(
        l.redeem(&id(8), 1, exp(), NOW),
        Err(Error::AlreadyUsed { .. })
    ));
    assert_eq!(l.status(&id(7)).unwrap().unwrap().used, 5000);
}
