//! Every fault class the harness injects has an effect. For each fixture of `tests/fixtures`
//! (raftkv with one planted bug, see `raftkv::planted`), a run with no faults passes and runs
//! under its fault class fail on at least 4 seeds of 5 (default runs, with every nemesis, where
//! they are enough; `fx-one-way` under `--nemesis partition`, the class that holds the one-way
//! cuts: with every nemesis dealt, a 30 s run sees too few of them to catch it reliably):
//!
//! | fixture          | planted bug                                        | caught by                        |
//! |------------------|----------------------------------------------------|----------------------------------|
//! | `fx-stale-reads` | no check-quorum, leader reads without ReadIndex    | a partition that leaves the leader in a minority |
//! | `fx-lazy-log`    | log acknowledged before it is fsynced (every 1-2 s)| killing a majority or all nodes  |
//! | `fx-one-way`     | lease renewed by requests, higher terms dismissed  | a one-way cut of the leader's outbound links |
//! | `fx-bad-restart` | will not restart after SIGKILL (3 times in 4)      | kill (exit 255)                  |
//! | `fx-learner-reads` | non-voting members serve reads from their own state | membership (a member replaced) |
//! | `fx-no-fsync`    | fsync and fdatasync do nothing                     | power-cut (lazyfs), not kill     |
//!
//! Knobs (environment): `E2E_HARNESS`, the harness binary (default: `harness` in the test's
//! target directory); `E2E_PARALLEL_RUNS`, harness runs at a time per test (default 2).
//! Every run uses its own `--out` directory under a temporary directory; node command lines
//! contain it, which is how a failing test finds and kills whatever was left behind.

use e2e::{code, processes_left, run_with_timeout, workspace_bin, KillOnDrop, TempDir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Seeds of the default runs; at least [`CAUGHT_AT_LEAST`] must fail.
const SEEDS: [u64; 5] = [1, 2, 3, 4, 5];
const CAUGHT_AT_LEAST: usize = 4;
/// Length of each run's client phase (recovery, final reads and the check come on top).
const TIME_LIMIT: &str = "30s";
const NO_FAULTS_TIME_LIMIT: &str = "10s";
/// A run that takes longer than this is killed and the test fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(150);

fn harness_bin() -> PathBuf {
    match std::env::var_os("E2E_HARNESS") {
        Some(p) => PathBuf::from(p),
        None => workspace_bin("harness"),
    }
}

fn parallel_runs() -> usize {
    std::env::var("E2E_PARALLEL_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(2)
}

/// One finished harness run.
struct Run {
    name: String,
    out: Output,
}

impl Run {
    fn code(&self) -> i32 {
        code(&self.out.status)
    }

    /// The exit code and the lines of the harness's summary that say what happened.
    fn summary(&self) -> String {
        let stdout = String::from_utf8_lossy(&self.out.stdout);
        let stderr = String::from_utf8_lossy(&self.out.stderr);
        // The harness's own lines (not the node log tails it quotes, which are indented),
        // without the progress ticker and the op counts.
        let skip = [
            "[",
            " ",
            "harness run: seed",
            "harness run: finishing the check",
            "ops:",
            "succeeded:",
            "replay:",
        ];
        let lines: Vec<&str> = stdout
            .lines()
            .chain(stderr.lines())
            .filter(|l| !l.is_empty() && !skip.iter().any(|s| l.starts_with(s)))
            .take(10)
            .collect();
        format!(
            "{}: exit {}\n    {}",
            self.name,
            self.code(),
            lines.join("\n    ")
        )
    }
}

/// Runs `harness run --node-bin <fixture> <args>` once per entry of `runs` (name, extra args),
/// at most [`parallel_runs`] at a time, each with its own `--out` under `tmp`.
fn harness_runs(fixture: &str, tmp: &Path, runs: Vec<(String, Vec<String>)>) -> Vec<Run> {
    let queue = Arc::new(Mutex::new(runs.into_iter().enumerate().collect::<Vec<_>>()));
    let done = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..parallel_runs())
        .map(|_| {
            let (queue, done) = (queue.clone(), done.clone());
            let (fixture, tmp, harness) = (fixture.to_string(), tmp.to_path_buf(), harness_bin());
            std::thread::spawn(move || loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let Some((k, (name, args))) = next else {
                    return;
                };
                let out = run_with_timeout(
                    Command::new(&harness)
                        .arg("run")
                        .arg("--node-bin")
                        .arg(&fixture)
                        .arg("--out")
                        .arg(tmp.join(&name))
                        .args(&args),
                    RUN_TIMEOUT,
                );
                let tag = tmp.join(&name).display().to_string();
                let left = processes_left(&tag, Duration::from_secs(5));
                assert!(left.is_empty(), "{name}: processes left behind: {left:?}");
                done.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((k, Run { name, out }));
            })
        })
        .collect();
    for w in workers {
        if let Err(e) = w.join() {
            std::panic::resume_unwind(e);
        }
    }
    let mut runs = std::mem::take(&mut *done.lock().unwrap_or_else(|e| e.into_inner()));
    runs.sort_by_key(|(k, _)| *k);
    runs.into_iter().map(|(_, r)| r).collect()
}

/// `--nemesis none`: the fixture is correct without faults.
fn passes_without_faults(fixture: &str, tag: &str) {
    let tmp = TempDir::new(tag);
    let _reaper = KillOnDrop(tmp.path().display().to_string());
    let args = [
        "--nemesis",
        "none",
        "--time-limit",
        NO_FAULTS_TIME_LIMIT,
        "--seed",
        "1",
    ];
    let runs = harness_runs(
        fixture,
        tmp.path(),
        vec![("none".into(), args.iter().map(|s| s.to_string()).collect())],
    );
    for r in &runs {
        assert_eq!(
            r.code(),
            0,
            "{fixture} without faults must pass\n{}",
            r.summary()
        );
    }
}

/// Default runs (every nemesis) over [`SEEDS`]: at least [`CAUGHT_AT_LEAST`] exit with `caught`.
fn caught_by_default_runs(fixture: &str, tag: &str, caught: i32) {
    caught_by_runs(fixture, tag, caught, &["--time-limit", TIME_LIMIT]);
}

/// Runs with `args` over [`SEEDS`]: at least [`CAUGHT_AT_LEAST`] exit with `caught`.
fn caught_by_runs(fixture: &str, tag: &str, caught: i32, args: &[&str]) {
    let tmp = TempDir::new(tag);
    let _reaper = KillOnDrop(tmp.path().display().to_string());
    let runs = SEEDS
        .iter()
        .map(|seed| {
            let seed_args = ["--seed".to_string(), seed.to_string()];
            let args = args
                .iter()
                .map(|s| s.to_string())
                .chain(seed_args)
                .collect();
            (format!("seed{seed}"), args)
        })
        .collect();
    let runs = harness_runs(fixture, tmp.path(), runs);
    let report: Vec<String> = runs.iter().map(Run::summary).collect();
    eprintln!("{fixture}:\n{}", report.join("\n"));
    let n = runs.iter().filter(|r| r.code() == caught).count();
    assert!(
        n >= CAUGHT_AT_LEAST,
        "{fixture}: only {n} of {} default runs exited {caught}, at least {CAUGHT_AT_LEAST} \
         should:\n{}",
        runs.len(),
        report.join("\n")
    );
}

const STALE_READS: &str = env!("CARGO_BIN_EXE_fx-stale-reads");
const LAZY_LOG: &str = env!("CARGO_BIN_EXE_fx-lazy-log");
const ONE_WAY: &str = env!("CARGO_BIN_EXE_fx-one-way");
const BAD_RESTART: &str = env!("CARGO_BIN_EXE_fx-bad-restart");

#[test]
fn stale_reads_without_faults_passes() {
    passes_without_faults(STALE_READS, "fx-stale-reads-none");
}

#[test]
fn stale_reads_is_caught_by_default_runs() {
    caught_by_default_runs(STALE_READS, "fx-stale-reads-all", 1);
}

#[test]
fn lazy_log_without_faults_passes() {
    passes_without_faults(LAZY_LOG, "fx-lazy-log-none");
}

#[test]
fn lazy_log_is_caught_by_default_runs() {
    caught_by_default_runs(LAZY_LOG, "fx-lazy-log-all", 1);
}

#[test]
fn one_way_without_faults_passes() {
    passes_without_faults(ONE_WAY, "fx-one-way-none");
}

#[test]
fn one_way_is_caught_by_partition_runs() {
    caught_by_runs(
        ONE_WAY,
        "fx-one-way-partition",
        1,
        &["--time-limit", TIME_LIMIT, "--nemesis", "partition"],
    );
}

#[test]
fn bad_restart_without_faults_passes() {
    passes_without_faults(BAD_RESTART, "fx-bad-restart-none");
}

#[test]
fn bad_restart_is_caught_by_default_runs() {
    caught_by_default_runs(BAD_RESTART, "fx-bad-restart-all", 255);
}

const LEARNER_READS: &str = env!("CARGO_BIN_EXE_fx-learner-reads");

#[test]
fn learner_reads_without_faults_passes() {
    passes_without_faults(LEARNER_READS, "fx-learner-reads-none");
}

/// Every other fault leaves the membership alone, so the planted bug stays hidden: the nemesis
/// that finds it is the membership one, not the faults that come with it.
#[test]
fn learner_reads_passes_every_other_fault() {
    let tmp = TempDir::new("fx-learner-reads-all");
    let _reaper = KillOnDrop(tmp.path().display().to_string());
    let args = ["--time-limit", "20s", "--nemesis", "all", "--seed", "1"];
    let runs = harness_runs(
        LEARNER_READS,
        tmp.path(),
        vec![("all".into(), args.iter().map(|s| s.to_string()).collect())],
    );
    for r in &runs {
        assert_eq!(r.code(), 0, "{}", r.summary());
    }
}

#[test]
fn learner_reads_is_caught_by_membership_runs() {
    caught_by_runs(
        LEARNER_READS,
        "fx-learner-reads-membership",
        1,
        &["--time-limit", "20s", "--nemesis", "membership"],
    );
}

/// `--stop-on-violation` ends the run soon after the violating operation: the live check sees
/// it when the key's window closes, the workers finish their last operation (at most
/// `--op-timeout`), and the nodes are killed without a recovery phase or final reads.
#[test]
fn stop_on_violation_ends_the_run_soon_after_the_violating_read() {
    let tmp = TempDir::new("fx-stale-reads-stop");
    let _reaper = KillOnDrop(tmp.path().display().to_string());
    // Partitions only, so the leader-in-a-minority card comes up in the first seconds; two
    // seeds, so one unlucky schedule does not fail the test.
    let time_limit = 60.0;
    let runs: Vec<(String, Vec<String>)> = [1u64, 2]
        .iter()
        .map(|seed| {
            let args = [
                "--nemesis",
                "partition",
                "--time-limit",
                "60s",
                "--stop-on-violation",
                "--seed",
                &seed.to_string(),
            ];
            (
                format!("seed{seed}"),
                args.iter().map(|s| s.to_string()).collect(),
            )
        })
        .collect();
    let runs = harness_runs(STALE_READS, tmp.path(), runs);
    let report: Vec<String> = runs.iter().map(Run::summary).collect();
    let caught: Vec<&Run> = runs.iter().filter(|r| r.code() == 1).collect();
    assert!(
        !caught.is_empty(),
        "no run caught the stale reads:\n{}",
        report.join("\n")
    );
    for r in caught {
        let latest = tmp.path().join(&r.name).join("latest");
        let text = std::fs::read_to_string(latest.join("run.json")).unwrap_or_default();
        let run: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let stopped = &run["outcome"]["stopped_on_violation"];
        let ended_after = stopped["ended_after_op_s"].as_f64();
        let run_seconds = run["outcome"]["run_seconds"].as_f64().unwrap_or(f64::MAX);
        eprintln!("{}: stopped {stopped}", r.name);
        assert!(
            ended_after.is_some_and(|t| (0.0..10.0).contains(&t)),
            "{}: the run should end within seconds of the violating read: {stopped}\n{}",
            r.name,
            r.summary()
        );
        assert!(
            run_seconds < time_limit,
            "{}: the run went on to its time limit ({run_seconds} s)",
            r.name
        );
        assert!(
            latest.join("report.html").is_file(),
            "{}: no report.html",
            r.name
        );
        let stdout = String::from_utf8_lossy(&r.out.stdout);
        assert!(
            stdout.contains("stopped on violation (key "),
            "{}: the summary does not say why the run stopped:\n{stdout}",
            r.name
        );
    }
}

const NO_FSYNC: &str = env!("CARGO_BIN_EXE_fx-no-fsync");
/// Power cuts find a store that never fsyncs within a few cuts: shorter runs do.
const DISK_TIME_LIMIT: &str = "15s";

/// Every `nodes/<id>.log` under `dir` (one harness `--out` directory).
fn node_logs(dir: &Path) -> Vec<PathBuf> {
    let mut logs = Vec::new();
    for run in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if run.file_name() == "latest" {
            continue;
        }
        for f in std::fs::read_dir(run.path().join("nodes"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if f.path().extension().is_some_and(|e| e == "log") {
                logs.push(f.path());
            }
        }
    }
    logs
}

#[test]
fn no_fsync_passes_under_kills() {
    let tmp = TempDir::new("fx-no-fsync-kill");
    let _reaper = KillOnDrop(tmp.path().display().to_string());
    let runs = [1u64, 2]
        .iter()
        .map(|seed| {
            let args = [
                "--nemesis",
                "kill,kill-all",
                "--time-limit",
                DISK_TIME_LIMIT,
                "--seed",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain([seed.to_string()])
            .collect();
            (format!("seed{seed}"), args)
        })
        .collect();
    let runs = harness_runs(NO_FSYNC, tmp.path(), runs);
    for r in &runs {
        assert_eq!(r.code(), 0, "SIGKILL keeps the page cache\n{}", r.summary());
        // Without this line the symbols did not take and the fixture is plain raftkv.
        let logs = node_logs(&tmp.path().join(&r.name));
        assert!(!logs.is_empty(), "{}: no node logs", r.name);
        for log in logs {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                text.contains("fx-no-fsync: skipping fsync and fdatasync"),
                "{} never skipped a sync",
                log.display()
            );
        }
    }
}

#[test]
fn no_fsync_is_caught_by_power_cuts() {
    caught_by_runs(
        NO_FSYNC,
        "fx-no-fsync-power-cut",
        1,
        &["--nemesis", "power-cut", "--time-limit", DISK_TIME_LIMIT],
    );
}
