//! Torn tails are repaired; damage a crash cannot explain is `Corrupt`, naming file and offset.

use std::fs::{self, OpenOptions};

use super::super::types::{Index, Term};
use super::super::{record, Repair, StorageError};
use super::*;

/// Opens `dir` expecting `Corrupt`; returns its file, offset and detail.
fn expect_corrupt(dir: &Path, opts: StorageOptions) -> (PathBuf, u64, String) {
    match Storage::open(dir, opts) {
        Err(StorageError::Corrupt {
            file,
            offset,
            detail,
        }) => (file, offset, detail),
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok((_, rec)) => panic!(
            "expected Corrupt, opened with {} entries",
            rec.entries.len()
        ),
    }
}

#[test]
fn torn_tail_at_every_byte_of_the_last_record_is_cut() {
    let dir = TempDir::new("torn-every-byte");
    let (mut st, _) = open(dir.path());
    st.append(&entries(1..=4, 1)).unwrap();
    st.sync().unwrap();
    let seg = segment_files(dir.path())[0].clone();
    let start = fs::metadata(&seg).unwrap().len();
    st.append(&entries(5..=5, 1)).unwrap();
    st.sync().unwrap();
    let end = fs::metadata(&seg).unwrap().len();
    drop(st);
    assert!(end - start > record::HEADER_LEN as u64);

    for cut in start..end {
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let (mut st, rec) = open(dir.path());
        assert_eq!(rec.entries, entries(1..=4, 1), "cut at {cut}");
        if cut > start {
            let want = Repair::TornTail {
                file: seg.clone(),
                offset: start,
                dropped_bytes: cut - start,
            };
            assert_eq!(rec.repairs, vec![want], "cut at {cut}");
        }
        assert_eq!(
            fs::metadata(&seg).unwrap().len(),
            start,
            "the tail is cut on disk"
        );
        // The repaired log takes the entry again, byte for byte the same.
        st.append(&entries(5..=5, 1)).unwrap();
        st.sync().unwrap();
    }
    assert_eq!(fs::metadata(&seg).unwrap().len(), end);
    assert_eq!(open(dir.path()).1.entries, entries(1..=5, 1));
}

#[test]
fn bad_checksum_of_the_last_record_with_nothing_after_it_is_a_torn_tail() {
    let dir = TempDir::new("torn-crc");
    let (mut st, _) = open(dir.path());
    st.append(&entries(1..=5, 1)).unwrap();
    st.sync().unwrap();
    let last = st.segments[0].offsets[4];
    drop(st);
    let seg = segment_files(dir.path())[0].clone();
    flip_byte(&seg, last + record::HEADER_LEN as u64 + 3, 0x01);
    let (_, rec) = open(dir.path());
    assert_eq!(rec.entries, entries(1..=4, 1));
    assert!(matches!(&rec.repairs[..], [Repair::TornTail { offset, .. }] if *offset == last));
}

#[test]
fn flipped_byte_in_the_middle_of_a_segment_is_corrupt_with_file_and_offset() {
    let dir = TempDir::new("flip-middle");
    let (mut st, _) = open(dir.path());
    st.append(&entries(1..=10, 1)).unwrap();
    st.sync().unwrap();
    let offsets = st.segments[0].offsets.clone();
    drop(st);
    let seg = segment_files(dir.path())[0].clone();
    // In a payload, then in a length field: both are caught at the record's start.
    for (at, mask) in [
        (offsets[4] + record::HEADER_LEN as u64 + 2, 0x10),
        (offsets[6], 0x01),
    ] {
        flip_byte(&seg, at, mask);
        let (file, offset, detail) = expect_corrupt(dir.path(), StorageOptions::default());
        assert_eq!(file, seg);
        assert!(
            offset == offsets[4] || offset == offsets[6],
            "offset {offset}"
        );
        assert!(detail.contains("valid record follows"), "{detail}");
        flip_byte(&seg, at, mask); // undo
    }
    // The file is untouched by the failed opens: it still reads whole.
    assert_eq!(open(dir.path()).1.entries, entries(1..=10, 1));
}

#[test]
fn damage_at_the_end_of_a_segment_that_is_not_the_last_is_corrupt() {
    let dir = TempDir::new("flip-closed-segment");
    let (mut st, _) = open_with(dir.path(), small_segments());
    for i in 1..=20 {
        st.append(&entries(i..=i, 1)).unwrap();
        st.sync().unwrap();
    }
    let first = &st.segments[0];
    let (path, last) = (first.path.clone(), *first.offsets.last().unwrap());
    drop(st);
    flip_byte(&path, last + record::HEADER_LEN as u64, 0x80);
    let (file, offset, detail) = expect_corrupt(dir.path(), small_segments());
    assert_eq!((file, offset), (path, last));
    assert!(detail.contains("not the last"), "{detail}");
}

#[test]
fn a_missing_segment_is_a_gap() {
    let dir = TempDir::new("gap");
    let (mut st, _) = open_with(dir.path(), small_segments());
    for i in 1..=20 {
        st.append(&entries(i..=i, 1)).unwrap();
        st.sync().unwrap();
    }
    drop(st);
    let files = segment_files(dir.path());
    assert!(files.len() >= 3);
    fs::remove_file(&files[1]).unwrap();
    let (file, offset, detail) = expect_corrupt(dir.path(), small_segments());
    assert_eq!((file, offset), (files[2].clone(), 0));
    assert!(detail.contains("previous segment ends"), "{detail}");
}

#[test]
fn a_stale_successor_after_a_replaced_entry_is_caught_by_prev_term() {
    let dir = TempDir::new("stale-successor");
    let (mut st, _) = open(dir.path());
    st.append(&entries(1..=5, 1)).unwrap();
    st.sync().unwrap();
    let seg = segment_files(dir.path())[0].clone();
    let data = fs::read(&seg).unwrap();
    let old_five = data[st.segments[0].offsets[4] as usize..].to_vec();
    // Entry 4 is replaced by a term-2 entry; then the old entry 5's bytes reappear after it,
    // as if a truncation had not been durable (the case `truncate_from` is built to prevent).
    st.append(&entries(4..=4, 2)).unwrap();
    st.sync().unwrap();
    let replaced_at = st.segments[0].offsets[3];
    drop(st);
    let after = fs::metadata(&seg).unwrap().len();
    let mut file = OpenOptions::new().append(true).open(&seg).unwrap();
    std::io::Write::write_all(&mut file, &old_five).unwrap();
    drop(file);
    let (file, offset, detail) = expect_corrupt(dir.path(), StorageOptions::default());
    assert_eq!((file, offset), (seg, after));
    assert!(detail.contains("term 1 but the log has term 2"), "{detail}");
    assert!(replaced_at < after);
}

#[test]
fn a_corrupt_snapshot_falls_back_only_when_the_log_covers_it() {
    let dir = TempDir::new("snap-fallback");
    // Large segments: the log keeps every entry, so an older snapshot plus the log can stand
    // in for the newer one.
    let (mut st, _) = open(dir.path());
    st.append(&entries(1..=30, 1)).unwrap();
    st.sync().unwrap();
    st.save_snapshot(&snapshot(10, 1)).unwrap();
    let snap_dir = dir.path().join("snap");
    let older = fs::read_dir(&snap_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let older_bytes = fs::read(&older).unwrap();
    st.save_snapshot(&snapshot(20, 1)).unwrap();
    drop(st);
    fs::write(&older, &older_bytes).unwrap(); // as if the crash came before its deletion
    let newer = dir
        .path()
        .join("snap/00000000000000000020-00000000000000000001.snap");
    flip_byte(&newer, 30, 0x04);
    let (_, rec) = open(dir.path());
    assert_eq!(rec.snapshot, Some(snapshot(10, 1)));
    assert_eq!(rec.entries, entries(11..=30, 1));
    assert!(matches!(
        &rec.repairs[..],
        [Repair::SnapshotFallback { used_index: 10, .. }]
    ));
    assert!(!newer.exists() && newer.with_extension("snap.corrupt").exists());
}

#[test]
fn a_corrupt_snapshot_without_a_covering_log_is_corrupt() {
    let dir = TempDir::new("snap-no-fallback");
    let (mut st, _) = open_with(dir.path(), small_segments());
    for i in 1..=30 {
        st.append(&entries(i..=i, 1)).unwrap();
        st.sync().unwrap();
    }
    st.save_snapshot(&snapshot(25, 1)).unwrap();
    assert!(
        st.segments[0].first > 1,
        "compaction removed the start of the log"
    );
    drop(st);
    let snap = dir
        .path()
        .join("snap/00000000000000000025-00000000000000000001.snap");
    flip_byte(&snap, 25, 0x01);
    let (file, _, detail) = expect_corrupt(dir.path(), small_segments());
    assert_eq!(file, snap);
    assert!(detail.contains("no older state can replace"), "{detail}");
}

#[test]
fn interrupted_snapshot_install_is_finished_by_recovery() {
    let dir = TempDir::new("snap-install-crash");
    let (mut st, _) = open_with(dir.path(), small_segments());
    for i in 1..=30 {
        st.append(&entries(i..=i, 1)).unwrap();
        st.sync().unwrap();
    }
    drop(st);
    // The snapshot was written, then the crash came before the conflicting log was deleted.
    super::super::snapshot_file::save(&dir.path().join("snap"), &snapshot(20, 2)).unwrap();
    let (mut st, rec) = open_with(dir.path(), small_segments());
    assert!(rec.entries.is_empty());
    assert!(matches!(
        &rec.repairs[..],
        [Repair::DiscardedLog {
            snapshot_index: 20,
            ..
        }]
    ));
    assert_eq!((st.first_index(), st.last_index()), (Index(21), Index(20)));
    st.append(&entries(21..=22, 2)).unwrap();
    st.sync().unwrap();
    drop(st);
    assert_eq!(
        open_with(dir.path(), small_segments()).1.entries,
        entries(21..=22, 2)
    );
}

#[test]
fn a_record_hidden_in_a_torn_payload_does_not_make_the_tail_look_corrupt() {
    let dir = TempDir::new("torn-hidden-record");
    let (mut st, _) = open(dir.path());
    st.append(&entries(1..=3, 1)).unwrap();
    st.sync().unwrap();
    // A client can choose payload bytes that form a valid record of their own.
    let mut hidden = Vec::new();
    record::push(&mut hidden, &(Term(1), &entry(99, 1))).unwrap();
    let mut evil = entry(4, 1);
    evil.payload = EntryPayload::Command([vec![0; 16], hidden.clone(), vec![0; 16]].concat());
    let start = st.segments[0].len;
    st.append(&[evil]).unwrap();
    st.sync().unwrap();
    let end = st.segments[0].len;
    drop(st);
    // Cut after the hidden record but before the end of the entry that carries it.
    let cut = end - 8;
    let seg = segment_files(dir.path())[0].clone();
    let data = fs::read(&seg).unwrap();
    assert!(data[..cut as usize]
        .windows(hidden.len())
        .any(|w| w == hidden));
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(cut)
        .unwrap();
    let (_, rec) = open(dir.path());
    assert_eq!(rec.entries, entries(1..=3, 1));
    assert!(matches!(&rec.repairs[..], [Repair::TornTail { offset, .. }] if *offset == start));
}

#[test]
fn a_half_created_last_segment_is_removed() {
    let dir = TempDir::new("torn-segment");
    let (mut st, _) = open(dir.path());
    st.append(&entries(1..=3, 1)).unwrap();
    st.sync().unwrap();
    drop(st);
    // A crash while rolling: the new file exists with part of its magic, or only zeros.
    let log = dir.path().join("log");
    for content in [&b"RKV"[..], &[0u8; 8][..]] {
        let path = log.join(super::super::segment::file_name(4));
        fs::write(&path, content).unwrap();
        let (_, rec) = open(dir.path());
        assert_eq!(rec.entries, entries(1..=3, 1));
        assert_eq!(
            rec.repairs,
            vec![Repair::TornSegment { file: path.clone() }]
        );
        assert!(!path.exists());
    }
    // The log goes on from where it was.
    let (mut st, _) = open(dir.path());
    st.append(&entries(4..=4, 1)).unwrap();
    st.sync().unwrap();
    drop(st);
    assert_eq!(open(dir.path()).1.entries, entries(1..=4, 1));
}

#[test]
fn segments_left_by_an_interrupted_compaction_are_removed() {
    let dir = TempDir::new("compaction-crash");
    let (mut st, _) = open_with(dir.path(), small_segments());
    for i in 1..=40 {
        st.append(&entries(i..=i, 1)).unwrap();
        st.sync().unwrap();
    }
    let files = segment_files(dir.path());
    let first = (files[0].clone(), fs::read(&files[0]).unwrap());
    st.save_snapshot(&snapshot(30, 1)).unwrap();
    drop(st);
    // The unlink of the oldest segment did not survive the crash, the others did: a gap, but
    // one wholly below the snapshot.
    assert!(!first.0.exists());
    fs::write(&first.0, &first.1).unwrap();
    let (_, rec) = open_with(dir.path(), small_segments());
    assert_eq!(rec.entries, entries(31..=40, 1));
    assert_eq!(
        rec.repairs,
        vec![Repair::Compacted {
            files: vec![first.0.clone()]
        }]
    );
    assert!(!first.0.exists());
}
