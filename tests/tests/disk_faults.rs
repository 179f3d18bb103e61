//! Disk faults end to end, against raftkv:
//! - bit flips and failing disks: raftkv refuses a corrupted file naming it, stops on a failing
//!   disk, and the history stays linearizable (exit 0);
//! - Ctrl-C and SIGKILL of the harness leave no lazyfs mount (and no node) behind.
//!
//! (`tests/fixtures.rs` shows that power cuts catch a store that never fsyncs, where kills do not.)

use e2e::{
    code, harness, processes_left, processes_with, run_with_timeout, show, ChildGuard, KillOnDrop,
    TempDir,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Mount points under `dir`, from this process's mount table.
fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&dir))
        .map(str::to_string)
        .collect()
}

fn nemesis_events(history: &Path, f: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(history)
        .unwrap_or_else(|e| panic!("reading {}: {e}", history.display()))
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["process"] == "nemesis" && v["f"] == f)
        .collect()
}

#[test]
fn raftkv_refuses_flipped_bits_by_name_and_stops_on_failing_disks() {
    let tmp = TempDir::new("disk-bitflip");
    let tag = tmp.path().display().to_string();
    let _reaper = KillOnDrop(tag.clone());
    let out = run_with_timeout(
        harness()
            .args([
                "run",
                "--nemesis",
                "bitflip,disk-error",
                "--time-limit",
                "12s",
            ])
            .args(["--seed", "1", "--clients", "5", "--out"])
            .arg(tmp.path()),
        Duration::from_secs(120),
    );
    assert_eq!(code(&out.status), 0, "{}", show(&out));
    let history = tmp.path().join("latest").join("history.jsonl");
    let refused = nemesis_events(&history, "bitflip-refused");
    assert!(!refused.is_empty(), "no flip was refused:\n{}", show(&out));
    for r in &refused {
        assert_eq!(r["value"]["names_file"], true, "{r}");
        assert!(
            r["value"]["last_log_line"]
                .as_str()
                .is_some_and(|l| l.contains("offset")),
            "{r}"
        );
    }
    assert!(!nemesis_events(&history, "disk-error").is_empty());
    assert!(!nemesis_events(&history, "disk-heal").is_empty());
    assert_eq!(mounts_under(tmp.path()), Vec::<String>::new());
    assert_eq!(
        processes_left(&tag, Duration::from_secs(5)),
        Vec::new(),
        "processes left behind"
    );
}

/// Starts a `--lazyfs` run and waits until its nodes' data directories are mounted.
fn start_mounted_run(tmp: &Path) -> ChildGuard {
    let child = harness()
        .args([
            "run",
            "--lazyfs",
            "--nemesis",
            "none",
            "--time-limit",
            "60s",
        ])
        .args(["--nodes", "3", "--clients", "2", "--out"])
        .arg(tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning harness: {e}"));
    let guard = ChildGuard(Some(child));
    let tag = tmp.display().to_string();
    // Nodes running on their mounts (their command lines hold the run directory; so do the
    // harness's and fusermount3's, which take no --data-dir).
    let nodes = || {
        processes_with(&tag)
            .iter()
            .filter(|(_, cmd)| cmd.contains("--data-dir"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while mounts_under(tmp).len() < 3 || nodes() < 3 {
        assert!(
            Instant::now() < deadline,
            "the nodes never ran on their mounts"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    guard
}

fn assert_unmounted_within(tmp: &Path, d: Duration) {
    let deadline = Instant::now() + d;
    while !mounts_under(tmp).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        mounts_under(tmp),
        Vec::<String>::new(),
        "mounts left behind"
    );
}

#[test]
fn no_mount_outlives_a_sigkilled_harness() {
    let tmp = TempDir::new("disk-sigkill");
    let tag = tmp.path().display().to_string();
    let _reaper = KillOnDrop(tag.clone());
    let mut guard = start_mounted_run(tmp.path());
    kill(Pid::from_raw(guard.id() as i32), Signal::SIGKILL).unwrap_or_else(|e| panic!("{e}"));
    guard.wait_timeout(Duration::from_secs(10));
    assert_unmounted_within(tmp.path(), Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_with(&tag).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        processes_left(&tag, Duration::from_secs(5)),
        Vec::new(),
        "processes left behind"
    );
}

#[test]
fn no_mount_outlives_an_interrupted_harness() {
    let tmp = TempDir::new("disk-sigint");
    let tag = tmp.path().display().to_string();
    let _reaper = KillOnDrop(tag.clone());
    let mut guard = start_mounted_run(tmp.path());
    kill(Pid::from_raw(guard.id() as i32), Signal::SIGINT).unwrap_or_else(|e| panic!("{e}"));
    guard.wait_timeout(Duration::from_secs(60));
    // The normal way out unmounts before the harness exits: nothing to wait for.
    assert_eq!(
        mounts_under(tmp.path()),
        Vec::<String>::new(),
        "mounts left behind"
    );
    assert_eq!(
        processes_left(&tag, Duration::from_secs(5)),
        Vec::new(),
        "processes left behind"
    );
}
