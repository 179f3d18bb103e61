//! Throughput of append + sync (group commit), as an ignored test so it needs no bench harness:
//!
//! ```text
//! RAFTKV_BENCH_DIR=/path/on/real/disk cargo nextest run -p raftkv --cargo-profile ci \
//!     --run-ignored only storage::tests::bench --no-capture
//! ```
//!
//! Without `RAFTKV_BENCH_DIR` it writes under the system temp directory, which may be tmpfs
//! (where fsync is nearly free).

use std::time::{Duration, Instant};

use super::super::types::{EntryPayload, Index, Term};
use super::*;

#[test]
#[ignore = "a benchmark; see the module docs for the command"]
fn bench_append_sync() {
    let base = std::env::var_os("RAFTKV_BENCH_DIR").map(PathBuf::from);
    for batch in [1usize, 16, 64, 256] {
        let dir = match &base {
            Some(b) => TempDir(b.join(format!(
                "raftkv-storage-bench-{}-{batch}",
                std::process::id()
            ))),
            None => TempDir::new("bench"),
        };
        let (mut st, _) = open(dir.path());
        let mut next = 1u64;
        let (mut syncs, started) = (0u64, Instant::now());
        let mut worst = Duration::ZERO;
        while started.elapsed() < Duration::from_secs(2) {
            let t = Instant::now();
            let batch: Vec<Entry> = (next..next + batch as u64)
                .map(|i| Entry {
                    term: Term(1),
                    index: Index(i),
                    payload: EntryPayload::Command(vec![b'v'; 100]),
                })
                .collect();
            next += batch.len() as u64;
            st.append(&batch).unwrap();
            st.sync().unwrap();
            worst = worst.max(t.elapsed());
            syncs += 1;
        }
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "batch {batch:>3} x 100 B: {:>8.0} syncs/s  {:>9.0} entries/s  mean {:>7.1} us  max {:>7.1} us  ({})",
            syncs as f64 / secs,
            (next - 1) as f64 / secs,
            secs * 1e6 / syncs as f64,
            worst.as_secs_f64() * 1e6,
            dir.path().display()
        );
    }
}
