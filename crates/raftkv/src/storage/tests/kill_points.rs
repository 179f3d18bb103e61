//! A writer killed between every two steps of every batch: each crash point must leave a
//! state that the Raft core accepts on restart, that keeps what was durable before the batch
//! (unless the batch replaced it), and that never shows a committed entry other than the one
//! the batch commits. The same sweep with the old write order (entries before the term) must
//! find the node that refuses to start.

use std::fs;
use std::path::Path;

use raft::{Config, RawNode, Restored};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::super::batch::WriteOrder;
use super::super::types::NodeId;
use super::super::{StorageError, WriteBatch};
use super::*;

/// What a follower's storage holds, as a model.
#[derive(Clone, Debug, Default, PartialEq)]
struct Model {
    term: u64,
    vote: Option<u64>,
    commit: u64,
    /// `(index, term)` of the snapshot; `(0, 0)` when none.
    snap: (u64, u64),
    /// Entries after the snapshot.
    log: Vec<Entry>,
}

impl Model {
    fn last(&self) -> u64 {
        self.log.last().map_or(self.snap.0, |e| e.index.0)
    }

    fn entry(&self, index: u64) -> Option<&Entry> {
        index
            .checked_sub(self.snap.0 + 1)
            .and_then(|k| self.log.get(k as usize))
    }
}

/// One batch and the model after it.
struct Step {
    hard_state: Option<HardState>,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
    after: Model,
}

/// The next batch of a follower's life: more entries from the same leader, a vote, a new
/// leader overwriting the uncommitted suffix with entries of its term, or a leader's snapshot.
fn next_step(rng: &mut StdRng, m: &Model) -> Step {
    let mut after = m.clone();
    let (mut hard_state, mut snapshot, mut entries) = (None, None, Vec::new());
    let last = m.last();
    match rng.random_range(0..10) {
        0..=3 => {
            let n = rng.random_range(1..=5);
            entries = super::entries(last + 1..=last + n, m.term.max(1));
            after.term = m.term.max(1);
            after.commit = (last + n).min(m.commit + rng.random_range(0..=n));
        }
        4 => {
            after.term = m.term + 1;
            after.vote = Some(rng.random_range(1..=3));
        }
        5..=8 => {
            after.term = m.term + 1;
            after.vote = rng.random_bool(0.5).then_some(2);
            let from = rng.random_range(m.commit.max(m.snap.0) + 1..=last + 1);
            let n = rng.random_range(1..=5);
            entries = super::entries(from..=from + n - 1, after.term);
            after.log.truncate((from - m.snap.0 - 1) as usize);
            after.commit = (from + n - 1).min(m.commit + rng.random_range(0..=n));
        }
        _ => {
            after.term = m.term + 1;
            after.vote = None;
            let index = last + rng.random_range(1..=4);
            let snap = super::snapshot(index, after.term);
            after.snap = (index, after.term);
            after.log.clear();
            after.commit = index;
            snapshot = Some(snap);
        }
    }
    after.log.extend(entries.iter().cloned());
    if after.term != m.term || after.vote != m.vote || after.commit != m.commit {
        hard_state = Some(super::hard_state(after.term, after.vote, after.commit));
    }
    Step {
        hard_state,
        snapshot,
        entries,
        after,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = fs::remove_dir_all(to);
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), target).unwrap();
        }
    }
}

fn opts() -> StorageOptions {
    // Every append reaches the kernel at once and segments roll often, so that crash points
    // fall between records reaching the file and everything else.
    StorageOptions {
        segment_bytes: 300,
        write_buffer_bytes: 0,
    }
}

/// How far a sweep got.
#[derive(Debug, Default)]
struct Sweep {
    batches: usize,
    crashes: usize,
    /// Crashes that left some, not all, of a batch on disk.
    partial: usize,
}

/// Checks the state recovered after a crash inside the batch `before -> after`.
fn check_recovered(before: &Model, after: &Model, rec: &Recovered) -> Result<bool, String> {
    let hs = &rec.hard_state;
    let voters = vec![NodeId(1), NodeId(2), NodeId(3)];
    RawNode::new(
        Config::new(NodeId(1), voters),
        Restored {
            hard_state: hs.clone(),
            snapshot: rec.snapshot.clone(),
            entries: rec.entries.clone(),
            applied: Index(0),
        },
    )
    .map_err(|e| format!("the Raft core refuses the recovered state: {e}"))?;
    let term_vote = (hs.term.0, hs.vote.map(|v| v.0));
    if term_vote != (before.term, before.vote) && term_vote != (after.term, after.vote) {
        return Err(format!(
            "term and vote {term_vote:?} are neither before nor after"
        ));
    }
    let snap = rec
        .snapshot
        .as_ref()
        .map_or((0, 0), |s| (s.meta.index.0, s.meta.term.0));
    if snap != before.snap && snap != after.snap {
        return Err(format!("snapshot {snap:?} is neither before nor after"));
    }
    for e in &rec.entries {
        let i = e.index.0;
        if before.entry(i) != Some(e) && after.entry(i) != Some(e) {
            return Err(format!("entry {i} (term {}) was never written", e.term.0));
        }
    }
    // What was durable before the batch and the batch does not replace must still be there.
    let last = rec.entries.last().map_or(snap.0, |e| e.index.0);
    let kept = before
        .log
        .iter()
        .filter(|e| after.entry(e.index.0) == Some(e) || e.index.0 <= after.snap.0);
    if let Some(lost) = kept.clone().find(|e| e.index.0 > last.max(snap.0)) {
        return Err(format!("entry {} was durable and is lost", lost.index.0));
    }
    // A recovered commit may lag, but what it covers is committed: the entries the batch
    // leaves there, never ones it replaces.
    for i in snap.0 + 1..=hs.commit.0 {
        let got = rec.entries.get((i - snap.0 - 1) as usize);
        if got.is_none() || (after.entry(i) != got && i > after.snap.0) {
            return Err(format!(
                "commit {} covers entry {i}, which is not the committed one",
                hs.commit.0
            ));
        }
    }
    let complete =
        term_vote == (after.term, after.vote) && snap == after.snap && rec.entries == after.log;
    Ok(complete)
}

/// Replays `batches` seeded batches; before each, kills a copy of the writer after 0, 1, 2...
/// steps of the batch until one runs to the end, and checks each recovered state.
fn kill_between_every_step(seed: u64, batches: usize, order: WriteOrder) -> Result<Sweep, String> {
    let root = TempDir::new("kill-points");
    let (golden, work) = (root.path().join("golden"), root.path().join("work"));
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = Model::default();
    let mut sweep = Sweep::default();
    open_with(&golden, opts());
    for b in 0..batches {
        let step = next_step(&mut rng, &model);
        let batch = WriteBatch {
            hard_state: step.hard_state.as_ref(),
            snapshot: step.snapshot.as_ref(),
            entries: &step.entries,
        };
        for k in 0.. {
            copy_dir(&golden, &work);
            let (mut st, _) = open_with(&work, opts());
            st.order = order;
            st.crash_after = Some(k);
            let crashed = match st.write(&batch) {
                Ok(()) => None,
                Err(StorageError::SimulatedCrash(at)) => Some(at),
                Err(e) => return Err(format!("batch {b}: write failed: {e}")),
            };
            drop(st);
            let (_, rec) = open_with(&work, opts());
            let complete = check_recovered(&model, &step.after, &rec)
                .map_err(|e| format!("batch {b}, killed after step {k} ({crashed:?}): {e}"))?;
            let Some(_) = crashed else {
                if !complete {
                    return Err(format!(
                        "batch {b}: a completed write did not recover whole"
                    ));
                }
                break;
            };
            sweep.crashes += 1;
            sweep.partial += usize::from(!complete && rec.hard_state.term.0 != model.term);
        }
        let (mut st, _) = open_with(&golden, opts());
        st.order = order;
        st.write(&batch).unwrap();
        sweep.batches += 1;
        model = step.after;
    }
    Ok(sweep)
}

#[test]
fn a_writer_killed_between_any_two_steps_of_a_batch_recovers() {
    let sweep = kill_between_every_step(0x006a_7c11, 40, WriteOrder::TermFirst).unwrap();
    eprintln!("{sweep:?}");
    assert!(
        sweep.crashes >= 100 && sweep.partial >= 15,
        "too few crash points inside batches: {sweep:?}"
    );
}

/// PLANTED(durability): the write order before the fix, entries before the term. A kill
/// between the two leaves an entry whose term is above the stored term, and the node would
/// never start again.
#[test]
fn the_old_write_order_is_caught() {
    let err = kill_between_every_step(0x006a_7c11, 40, WriteOrder::EntriesFirst)
        .expect_err("entries written before their term went unnoticed");
    assert!(
        err.contains("refuses") && err.contains("term"),
        "caught for another reason: {err}"
    );
    eprintln!("caught: {err}");
}
