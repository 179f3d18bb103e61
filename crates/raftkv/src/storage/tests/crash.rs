//! Crash simulation: cut the unsynced tail at random lengths, and SIGKILL a real writer process
//! at random points; no synced entry may ever be lost, and no replaced entry may come back.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

/// The writer's next step: append `count` entries from `start` with `term`. Usually at the end
/// of the log; sometimes, as a follower meeting a new leader, over a suffix with a higher term.
fn next_batch(rng: &mut StdRng, last: u64, term: &mut u64) -> Vec<Entry> {
    let count = rng.random_range(1..=6);
    if last > 0 && rng.random_bool(0.15) {
        *term += 1;
        let start = rng.random_range(last.saturating_sub(5).max(1)..=last);
        return entries(start..=start + count - 1, *term);
    }
    entries(last + 1..=last + count, *term)
}

/// `(index, term)` of each entry, for readable failures.
fn ids(log: &[Entry]) -> Vec<(u64, u64)> {
    log.iter().map(|e| (e.index.0, e.term.0)).collect()
}

/// Applies an append to a model of the log (entries from index 1, no snapshot).
fn apply(model: &mut Vec<Entry>, batch: &[Entry]) {
    model.truncate(batch[0].index.0 as usize - 1);
    model.extend_from_slice(batch);
}

#[test]
fn cutting_the_unsynced_tail_anywhere_keeps_every_synced_entry() {
    let dir = TempDir::new("crash-cut");
    // Every append reaches the file at once, so a cut can land anywhere in unsynced records.
    let opts = StorageOptions {
        segment_bytes: 1024,
        write_buffer_bytes: 0,
    };
    let mut rng = StdRng::seed_from_u64(0x5107_0a9e);
    let mut model: Vec<Entry> = Vec::new();
    let mut term = 1;
    let mut torn = 0;
    for trial in 0..80 {
        let (mut st, rec) = open_with(dir.path(), opts.clone());
        assert_eq!(
            ids(&rec.entries),
            ids(&model),
            "trial {trial}: recovery differs from the model"
        );
        assert_eq!(
            rec.entries, model,
            "trial {trial}: payloads differ from the model"
        );
        torn += rec.repairs.len();
        // `acked`: entries a node could have acknowledged, i.e. synced and not replaced since.
        let mut acked = model.len();
        for _ in 0..rng.random_range(1..=8) {
            let batch = next_batch(&mut rng, model.len() as u64, &mut term);
            acked = acked.min(batch[0].index.0 as usize - 1);
            st.append(&batch).unwrap();
            apply(&mut model, &batch);
            if rng.random_bool(0.5) {
                st.sync().unwrap();
                acked = model.len();
            }
        }
        // Crash: the active segment keeps its durable part plus any prefix of the rest.
        let active = st.segments.last().unwrap();
        let (path, synced, len) = (active.path.clone(), st.synced_len, active.len);
        let cut = rng.random_range(synced..=len);
        let survivors = st.segments[..st.segments.len() - 1]
            .iter()
            .map(|s| s.offsets.len())
            .sum::<usize>()
            + (0..active.offsets.len())
                .filter(|&k| active.offsets.get(k + 1).copied().unwrap_or(active.len) <= cut)
                .count()
            - st.segments[0].first as usize
            + 1;
        drop(st);
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(cut)
            .unwrap();
        assert!(
            survivors >= acked,
            "trial {trial}: the cut model drops acknowledged entries"
        );
        model.truncate(survivors);
    }
    let (_, rec) = open_with(dir.path(), opts);
    assert_eq!(rec.entries, model);
    assert!(
        torn >= 20,
        "only {torn} of 80 cuts left a torn record: the test is too weak"
    );
}

const CHILD_DIR_ENV: &str = "RAFTKV_STORAGE_CRASH_CHILD_DIR";
const CHILD_SEED_ENV: &str = "RAFTKV_STORAGE_CRASH_CHILD_SEED";
const CHILD_TEST: &str = "storage::tests::crash::crash_child_writer";

/// The writer process of `sigkill_at_random_points_never_loses_a_synced_entry`: appends and
/// syncs forever, printing `append <start> <count> <term>` before an append and `synced` after
/// each sync returns. Does nothing unless started by that test.
#[test]
#[ignore = "the child process of sigkill_at_random_points_never_loses_a_synced_entry"]
fn crash_child_writer() {
    let (Some(dir), Some(seed)) = (
        std::env::var_os(CHILD_DIR_ENV),
        std::env::var_os(CHILD_SEED_ENV),
    ) else {
        return;
    };
    let seed: u64 = seed.to_string_lossy().parse().unwrap();
    let opts = StorageOptions {
        segment_bytes: 2048,
        write_buffer_bytes: [0, 300, 1 << 20][(seed % 3) as usize],
    };
    let (mut st, rec) = open_with(Path::new(&dir), opts);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut term = rec.entries.last().map_or(1, |e| e.term.0);
    let mut out = std::io::stdout().lock();
    // Ends the harness's "test ... " line, which has no newline yet.
    writeln!(out).unwrap();
    loop {
        let batch = next_batch(&mut rng, st.last_index().0, &mut term);
        let (start, count) = (batch[0].index.0, batch.len());
        writeln!(out, "append {start} {count} {term}").unwrap();
        out.flush().unwrap();
        st.append(&batch).unwrap();
        if rng.random_bool(0.6) {
            st.sync().unwrap();
            writeln!(out, "synced").unwrap();
            out.flush().unwrap();
        }
    }
}

/// Kills and reaps the child on drop, so a failing test leaves no process behind.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sigkill_at_random_points_never_loses_a_synced_entry() {
    let dir = TempDir::new("sigkill");
    let exe = std::env::current_exe().unwrap();
    let mut rng = StdRng::seed_from_u64(0xdead_beef);
    let mut model: Vec<Entry> = Vec::new();
    // Kills that landed after an append but before its sync returned.
    let mut mid_batch = 0;
    for kill in 0..50u64 {
        let mut child = Reaper(
            Command::new(&exe)
                .args([
                    CHILD_TEST,
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_DIR_ENV, dir.path())
                .env(CHILD_SEED_ENV, kill.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
        // What the child's log may be: the state at its last `synced`, then each state after an
        // announced append (the last announced one may or may not have started).
        let mut synced = model.clone();
        let mut candidates = vec![model.clone()];
        let mut acked = model.len();
        let wait_for = rng.random_range(1..=60);
        let mut seen = 0;
        let mut killed = false;
        for line in lines {
            let line = line.unwrap();
            let words: Vec<&str> = line.split_whitespace().collect();
            // Lines other than the child's protocol are the test harness's own output.
            match words[..] {
                ["append", start, count, term] => {
                    let [start, count, term] =
                        [start, count, term].map(|w| w.parse::<u64>().unwrap());
                    let mut next = candidates.last().unwrap().clone();
                    apply(&mut next, &entries(start..=start + count - 1, term));
                    acked = acked.min(start as usize - 1);
                    candidates.push(next);
                }
                ["synced"] => {
                    synced = candidates.pop().unwrap();
                    acked = synced.len();
                    candidates = vec![synced.clone()];
                }
                _ => continue,
            }
            seen += 1;
            if seen == wait_for && !killed {
                child.0.kill().unwrap();
                killed = true;
                mid_batch += usize::from(candidates.len() > 1);
            }
        }
        assert!(killed, "kill {kill}: the child exited by itself");
        drop(child);

        let (_, rec) = open(dir.path());
        let got = rec.entries;
        assert!(
            got.len() >= acked,
            "kill {kill}: lost synced entries ({} < {acked})",
            got.len()
        );
        assert_eq!(
            ids(&got[..acked]),
            ids(&synced[..acked]),
            "kill {kill}: synced entries changed"
        );
        assert!(
            got[..acked] == synced[..acked],
            "kill {kill}: synced payloads changed"
        );
        assert!(
            candidates.iter().any(|c| c.starts_with(&got)),
            "kill {kill}: recovered log {:?} is not a prefix of any log the child wrote: {:?}",
            ids(&got),
            candidates.iter().map(|c| ids(c)).collect::<Vec<_>>()
        );
        model = got;
    }
    assert!(
        mid_batch >= 10,
        "only {mid_batch} of 50 kills came between append and sync"
    );
}
