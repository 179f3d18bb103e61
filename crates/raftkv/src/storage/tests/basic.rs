//! Round trips, truncation, rolling, snapshots and the hard state.

use std::fs;

use super::super::types::{Index, Term};
use super::super::{Repair, StorageError, WriteBatch};
use super::*;

#[test]
fn round_trip_and_reopen_after_append_and_sync() {
    let dir = TempDir::new("round-trip");
    let (mut st, rec) = open(dir.path());
    assert!(rec.entries.is_empty() && rec.snapshot.is_none() && rec.repairs.is_empty());
    assert_eq!(rec.hard_state, HardState::default());
    assert_eq!((st.first_index(), st.last_index()), (Index(1), Index(0)));

    st.set_hard_state(&hard_state(2, Some(1), 0)).unwrap();
    st.append(&entries(1..=10, 1)).unwrap();
    st.append(&entries(11..=12, 2)).unwrap();
    st.sync().unwrap();
    st.set_hard_state(&hard_state(3, None, 7)).unwrap();
    assert_eq!((st.first_index(), st.last_index()), (Index(1), Index(12)));
    assert_eq!(st.term(Index(11)), Some(Term(2)));
    drop(st);

    let (st, rec) = open(dir.path());
    let mut want = entries(1..=10, 1);
    want.extend(entries(11..=12, 2));
    assert_eq!(rec.entries, want);
    assert_eq!(rec.hard_state, hard_state(3, None, 7));
    assert_eq!(st.last_index(), Index(12));
    assert!(rec.repairs.is_empty());
}

#[test]
fn commit_alone_is_not_written() {
    let dir = TempDir::new("commit");
    let (mut st, _) = open(dir.path());
    st.append(&entries(1..=3, 1)).unwrap();
    st.sync().unwrap();
    st.set_hard_state(&hard_state(1, Some(2), 2)).unwrap();
    st.set_hard_state(&hard_state(1, Some(2), 3)).unwrap(); // commit only: stays in memory
    drop(st);
    let (_, rec) = open(dir.path());
    assert_eq!(rec.hard_state, hard_state(1, Some(2), 2));
}

#[test]
fn a_new_term_stores_no_commit_over_entries_its_batch_replaces() {
    let dir = TempDir::new("commit-batch");
    let (mut st, _) = open(dir.path());
    st.write(&WriteBatch {
        hard_state: Some(&hard_state(1, None, 2)),
        entries: &entries(1..=6, 1),
        ..WriteBatch::default()
    })
    .unwrap();
    // A new leader replaces 4..=6 and commits through 5. Term 2 reaches the disk before the
    // cut, so it carries commit 3 at most: 4 and 5 on disk are still the old ones.
    st.crash_after = Some(0);
    let hs = hard_state(2, None, 5);
    let crashed = st.write(&WriteBatch {
        hard_state: Some(&hs),
        entries: &entries(4..=5, 2),
        ..WriteBatch::default()
    });
    assert!(matches!(crashed, Err(StorageError::SimulatedCrash(_))));
    drop(st);
    let (_, rec) = open(dir.path());
    assert_eq!(rec.hard_state, hard_state(2, None, 3));
    assert_eq!(rec.entries, entries(1..=6, 1));
}

#[test]
fn a_stored_commit_beyond_the_durable_log_is_clamped_on_open() {
    let dir = TempDir::new("commit-clamp");
    let (mut st, _) = open(dir.path());
    st.append(&entries(1..=3, 1)).unwrap();
    st.sync().unwrap();
    st.set_hard_state(&hard_state(1, None, 3)).unwrap();
    st.append(&entries(4..=6, 1)).unwrap(); // never synced
    st.set_hard_state(&hard_state(1, None, 6)).unwrap();
    st.set_hard_state(&hard_state(2, None, 6)).unwrap();
    st.buf.clear(); // the process dies with the records still in its buffer
    drop(st);
    let (_, rec) = open(dir.path());
    assert_eq!(rec.hard_state, hard_state(2, None, 3));
}

#[test]
fn truncate_suffix_then_append_then_reopen() {
    let dir = TempDir::new("truncate");
    let (mut st, _) = open(dir.path());
    st.append(&entries(1..=10, 1)).unwrap();
    st.sync().unwrap();
    // A conflicting suffix from a new leader replaces 6..=10.
    st.append(&entries(6..=8, 2)).unwrap();
    assert_eq!(st.last_index(), Index(8));
    // Truncation inside the unflushed buffer: 8 is replaced again before any sync.
    st.append(&entries(8..=9, 3)).unwrap();
    st.sync().unwrap();
    drop(st);
    let (st, rec) = open(dir.path());
    let mut want = entries(1..=5, 1);
    want.extend(entries(6..=7, 2));
    want.extend(entries(8..=9, 3));
    assert_eq!(rec.entries, want);
    assert_eq!(st.term(Index(7)), Some(Term(2)));
}

#[test]
fn truncation_across_segments_deletes_later_segments() {
    let dir = TempDir::new("truncate-segments");
    let (mut st, _) = open_with(dir.path(), small_segments());
    for i in 1..=40 {
        st.append(&entries(i..=i, 1)).unwrap();
        st.sync().unwrap();
    }
    let before = segment_files(dir.path()).len();
    assert!(before >= 5, "only {before} segments");
    st.append(&entries(3..=4, 2)).unwrap();
    st.sync().unwrap();
    assert_eq!(
        segment_files(dir.path()).len(),
        1,
        "segments after index 3 must be gone"
    );
    drop(st);
    let (_, rec) = open_with(dir.path(), small_segments());
    let mut want = entries(1..=2, 1);
    want.extend(entries(3..=4, 2));
    assert_eq!(rec.entries, want);
}

#[test]
fn segments_roll_and_snapshot_compacts_old_segments() {
    let dir = TempDir::new("compact");
    let (mut st, _) = open_with(dir.path(), small_segments());
    for batch in 0..20 {
        st.append(&entries(batch * 5 + 1..=batch * 5 + 5, 1))
            .unwrap();
        st.sync().unwrap();
    }
    let before = segment_files(dir.path());
    assert!(before.len() >= 10, "only {} segments", before.len());
    st.save_snapshot(&snapshot(60, 1)).unwrap();
    assert_eq!((st.first_index(), st.last_index()), (Index(61), Index(100)));
    let after = segment_files(dir.path());
    assert!(after.len() < before.len());
    // Every remaining segment but the one holding index 61 starts after the snapshot.
    let firsts: Vec<u64> = st.segments.iter().map(|s| s.first).collect();
    assert!(
        firsts[0] <= 61 && !matches!(firsts.get(1), Some(&f) if f <= 61),
        "{firsts:?}"
    );
    st.append(&entries(101..=101, 1)).unwrap();
    st.sync().unwrap();
    drop(st);
    let (st, rec) = open_with(dir.path(), small_segments());
    assert_eq!(rec.snapshot, Some(snapshot(60, 1)));
    assert_eq!(rec.entries, entries(61..=101, 1));
    assert_eq!(
        rec.hard_state.commit,
        Index(60),
        "commit is at least the snapshot"
    );
    assert_eq!(st.first_index(), Index(61));
    assert!(rec.repairs.is_empty(), "{:?}", rec.repairs);
}

#[test]
fn snapshot_that_conflicts_with_the_log_discards_it() {
    let dir = TempDir::new("snap-conflict");
    let (mut st, _) = open_with(dir.path(), small_segments());
    st.append(&entries(1..=20, 1)).unwrap();
    st.sync().unwrap();
    // The leader's entry 15 has term 2: our 15..=20 conflict (Raft §7: discard the log).
    st.save_snapshot(&snapshot(15, 2)).unwrap();
    assert_eq!((st.first_index(), st.last_index()), (Index(16), Index(15)));
    st.append(&entries(16..=16, 2)).unwrap();
    st.sync().unwrap();
    // A snapshot past the end of the log also replaces it all.
    st.save_snapshot(&snapshot(30, 3)).unwrap();
    assert_eq!(st.last_index(), Index(30));
    st.append(&entries(31..=32, 3)).unwrap();
    st.sync().unwrap();
    drop(st);
    let (_, rec) = open_with(dir.path(), small_segments());
    assert_eq!(rec.snapshot, Some(snapshot(30, 3)));
    assert_eq!(rec.entries, entries(31..=32, 3));
    let snaps = fs::read_dir(dir.path().join("snap")).unwrap().count();
    assert_eq!(snaps, 1, "older snapshots are deleted");
}

#[test]
fn hard_state_survives_a_leftover_temp_file() {
    let dir = TempDir::new("hard-state-tmp");
    let (mut st, _) = open(dir.path());
    st.set_hard_state(&hard_state(4, Some(3), 0)).unwrap();
    drop(st);
    // A crash between writing the temp file and renaming it leaves this behind.
    let tmp = dir.path().join("hardstate.tmp");
    fs::write(&tmp, b"half-written garbage").unwrap();
    let snap_tmp = dir
        .path()
        .join("snap")
        .join("00000000000000000009-00000000000000000001.snap.tmp");
    fs::write(&snap_tmp, b"half").unwrap();
    let (_, rec) = open(dir.path());
    assert_eq!(rec.hard_state, hard_state(4, Some(3), 0));
    assert!(rec
        .repairs
        .contains(&Repair::TempFile { file: tmp.clone() }));
    assert!(rec.repairs.contains(&Repair::TempFile { file: snap_tmp }));
    assert!(!tmp.exists());
}

#[test]
fn corrupt_hard_state_refuses_to_open() {
    let dir = TempDir::new("hard-state-corrupt");
    let (mut st, _) = open(dir.path());
    st.set_hard_state(&hard_state(4, Some(3), 0)).unwrap();
    drop(st);
    let path = dir.path().join("hardstate");
    flip_byte(&path, 21, 0x40);
    match Storage::open(dir.path(), StorageOptions::default()) {
        Err(StorageError::Corrupt { file, .. }) => assert_eq!(file, path),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn bad_appends_are_refused() {
    let dir = TempDir::new("bad-appends");
    let (mut st, _) = open(dir.path());
    st.append(&entries(1..=5, 1)).unwrap();
    let mut gappy = entries(6..=7, 1);
    gappy[1].index = Index(9);
    assert!(matches!(
        st.append(&gappy),
        Err(StorageError::NotContiguous {
            expected: 7,
            got: 9
        })
    ));
    assert!(matches!(
        st.append(&entries(8..=8, 1)),
        Err(StorageError::Gap {
            index: 8,
            last_index: 5
        })
    ));
    st.append(&[]).unwrap();
    st.save_snapshot(&snapshot(3, 1)).unwrap();
    assert!(matches!(
        st.append(&entries(3..=3, 2)),
        Err(StorageError::Compacted {
            index: 3,
            snapshot_index: 3
        })
    ));
    assert!(matches!(
        st.save_snapshot(&snapshot(2, 1)),
        Err(StorageError::StaleSnapshot {
            index: 2,
            current: 3
        })
    ));
    // None of these errors poisons the storage.
    st.append(&entries(6..=6, 1)).unwrap();
    st.sync().unwrap();
    assert_eq!(st.last_index(), Index(6));
}

#[test]
fn an_io_failure_poisons_the_storage() {
    let dir = TempDir::new("poison");
    let (mut st, _) = open_with(dir.path(), small_segments());
    let mut i = 1;
    // Append until an append rolls a new segment whose directory entry is not yet synced.
    while !st.dir_unsynced {
        st.sync().unwrap();
        st.append(&entries(i..=i, 1)).unwrap();
        i += 1;
    }
    // The directory vanishes under us: the directory fsync of the next sync must fail.
    fs::remove_dir_all(dir.path()).unwrap();
    assert!(matches!(st.sync(), Err(StorageError::Io { .. })));
    assert!(matches!(
        st.append(&entries(i..=i, 1)),
        Err(StorageError::Failed)
    ));
    assert!(matches!(st.sync(), Err(StorageError::Failed)));
    assert!(matches!(
        st.set_hard_state(&hard_state(9, None, 0)),
        Err(StorageError::Failed)
    ));
}

#[test]
fn saving_the_same_snapshot_twice_is_a_no_op() {
    let dir = TempDir::new("snap-twice");
    let (mut st, _) = open(dir.path());
    st.append(&entries(1..=5, 1)).unwrap();
    st.save_snapshot(&snapshot(4, 1)).unwrap();
    st.save_snapshot(&snapshot(4, 1)).unwrap();
    assert_eq!((st.first_index(), st.last_index()), (Index(5), Index(5)));
}

#[test]
fn a_second_open_of_a_data_directory_is_refused_until_the_first_is_dropped() {
    let dir = TempDir::new("lock");
    let (st, _) = open(dir.path());
    match Storage::open(dir.path(), StorageOptions::default()) {
        Err(e @ StorageError::Locked { .. }) => {
            assert!(e.to_string().contains("in use by another process"), "{e}")
        }
        other => panic!("a second open was not refused: {other:?}"),
    }
    drop(st);
    let _ = open(dir.path());
}
