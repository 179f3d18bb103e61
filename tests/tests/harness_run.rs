//! `harness run` end to end, with real processes:
//! - a default run against the broken fixture (`brokenkv`) is caught (exit 1) for several seeds,
//!   and `harness check <out>/latest` re-checks it with the same verdict;
//! - a 20 s run with every nemesis against `raftkv` is linearizable (exit 0), and re-checks so;
//! - Ctrl-C in the middle of a run leaves no process behind and a readable, checkable history;
//! - usage errors exit 254; a node binary that will not start makes the run fail with 255.
//!
//! Every test uses its own temporary `--out` directory (node command lines contain it, which is
//! how the tests find every node process the harness started), and bounded time.

use e2e::{
    code, harness, processes_with, run_with_timeout, show, workspace_bin, ChildGuard, KillOnDrop,
    TempDir,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn brokenkv() -> &'static str {
    env!("CARGO_BIN_EXE_brokenkv")
}

fn verdict_of(run_dir: &Path) -> String {
    let text = std::fs::read_to_string(run_dir.join("result.json"))
        .unwrap_or_else(|e| panic!("reading {}/result.json: {e}", run_dir.display()));
    let v: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("parsing {}/result.json: {e}", run_dir.display()));
    v["verdict"].as_str().unwrap_or_default().to_string()
}

/// Every line of a history is a JSON event with the contract's fields.
fn assert_history_readable(path: &Path) -> usize {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut last_time = 0;
    for (i, line) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}:{}: {e}: {line}", path.display(), i + 1));
        assert_eq!(
            v["index"].as_u64(),
            Some(i as u64),
            "line {}: {line}",
            i + 1
        );
        let t = v["time"]
            .as_u64()
            .unwrap_or_else(|| panic!("no time: {line}"));
        assert!(t >= last_time, "time goes backwards at line {}", i + 1);
        last_time = t;
        assert!(v["type"].is_string() && v["f"].is_string(), "{line}");
    }
    text.lines().count()
}

/// `harness check <dir>` exits with `expected`.
fn assert_recheck(dir: &Path, expected: i32) {
    let out = run_with_timeout(harness().arg("check").arg(dir), Duration::from_secs(60));
    assert_eq!(
        code(&out.status),
        expected,
        "harness check {} disagrees with the run\n{}",
        dir.display(),
        show(&out)
    );
}

#[test]
fn broken_kv_is_caught_across_seeds() {
    let tmp = TempDir::new("brokenkv");
    let _reaper = KillOnDrop(tmp.path().display().to_string());
    // Default options, shortened: 5 nodes, 10 clients, 5 keys, every nemesis.
    let runs: Vec<_> = [1u64, 2, 3]
        .into_iter()
        .map(|seed| {
            let out_dir = tmp.path().join(format!("seed{seed}"));
            std::thread::spawn(move || {
                let out = run_with_timeout(
                    harness()
                        .args(["run", "--time-limit", "5s", "--seed", &seed.to_string()])
                        .arg("--node-bin")
                        .arg(brokenkv())
                        .arg("--out")
                        .arg(&out_dir),
                    Duration::from_secs(90),
                );
                (seed, out_dir, out)
            })
        })
        .collect();
    for r in runs {
        let (seed, out_dir, out) = r.join().unwrap_or_else(|_| panic!("run thread panicked"));
        assert_eq!(code(&out.status), 1, "seed {seed}: {}", show(&out));
        let latest = out_dir.join("latest");
        assert_eq!(verdict_of(&latest), "not-linearizable", "seed {seed}");
        assert!(
            latest.join("report.html").is_file(),
            "seed {seed}: no report.html"
        );
        assert!(latest.join("run.json").is_file() && latest.join("nodes/n1.log").is_file());
        assert_history_readable(&latest.join("history.jsonl"));
        assert_recheck(&latest, 1);
        let tag = out_dir.display().to_string();
        assert!(
            processes_with(&tag).is_empty(),
            "seed {seed}: nodes left behind"
        );
    }
}

#[test]
fn raftkv_under_all_nemeses_is_linearizable() {
    let tmp = TempDir::new("raftkv");
    let _reaper = KillOnDrop(tmp.path().display().to_string());
    let out = run_with_timeout(
        harness()
            .args(["run", "--time-limit", "20s", "--nemesis", "all"])
            .args(["--nemesis-interval", "3s", "--seed", "20"])
            .arg("--node-bin")
            .arg(workspace_bin("raftkv"))
            .arg("--out")
            .arg(tmp.path()),
        Duration::from_secs(120),
    );
    assert_eq!(code(&out.status), 0, "{}", show(&out));
    let latest = tmp.path().join("latest");
    assert_eq!(verdict_of(&latest), "linearizable");
    assert_recheck(&latest, 0);
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(latest.join("run.json")).unwrap_or_default())
            .unwrap_or_default();
    assert_eq!(run["outcome"]["recovered"], true, "{run}");
    let faults = &run["outcome"]["faults"];
    let injected: u64 = ["pause", "kill", "partition", "delay"]
        .iter()
        .map(|k| faults[k].as_u64().unwrap_or(0))
        .sum();
    assert!(injected >= 4, "too few faults injected: {faults}");
    assert!(
        run["outcome"]["ops"]["ok"].as_u64().unwrap_or(0) > 100,
        "too few successful ops: {}",
        run["outcome"]["ops"]
    );
    assert!(processes_with(&tmp.path().display().to_string()).is_empty());
}

#[test]
fn ctrl_c_leaves_no_process_behind_and_a_checkable_history() {
    let tmp = TempDir::new("ctrlc");
    let _reaper = KillOnDrop(tmp.path().display().to_string());
    let tag = tmp.path().display().to_string();
    let child = harness()
        .args(["run", "--time-limit", "60s", "--seed", "5"])
        // Pauses every half second or so: the interrupt likely finds a node stopped.
        .args(["--nemesis", "pause,kill", "--nemesis-interval", "500ms"])
        .arg("--node-bin")
        .arg(brokenkv())
        .arg("--out")
        .arg(tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning harness: {e}"));
    let mut guard = ChildGuard(Some(child));
    let history = tmp.path().join("latest").join("history.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lines = std::fs::read_to_string(&history)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if lines > 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not get going ({lines} events)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let nodes = processes_with(&tag);
    assert!(
        nodes.len() >= 4,
        "expected the node processes, found {nodes:?}"
    );
    kill(Pid::from_raw(guard.id() as i32), Signal::SIGINT)
        .unwrap_or_else(|e| panic!("SIGINT: {e}"));
    let status = guard.wait_timeout(Duration::from_secs(60));
    // Interrupted: 1 if what was recorded already shows the violation, else 255 (run failed).
    assert!(
        matches!(code(&status), 1 | 255),
        "unexpected exit {status:?}"
    );
    for (pid, cmd) in &nodes {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || processes_with(&tag).iter().all(|(p, _)| p != pid),
            "node {pid} survived: {cmd}"
        );
    }
    assert_eq!(processes_with(&tag), Vec::new(), "processes left behind");
    let events = assert_history_readable(&history);
    assert!(events > 200);
    let latest = tmp.path().join("latest");
    let expected = match verdict_of(&latest).as_str() {
        "linearizable" => 0,
        "not-linearizable" => 1,
        _ => 2,
    };
    assert_recheck(&latest, expected);
}

#[test]
fn nodes_die_with_a_killed_harness() {
    // SIGKILL gives the harness no chance to clean up: PR_SET_PDEATHSIG must take the nodes down.
    let tmp = TempDir::new("sigkill");
    let _reaper = KillOnDrop(tmp.path().display().to_string());
    let tag = tmp.path().display().to_string();
    let child = harness()
        .args([
            "run",
            "--nodes",
            "3",
            "--time-limit",
            "60s",
            "--nemesis",
            "pause",
        ])
        .args(["--nemesis-interval", "300ms"])
        .arg("--node-bin")
        .arg(brokenkv())
        .arg("--out")
        .arg(tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning harness: {e}"));
    let mut guard = ChildGuard(Some(child));
    let deadline = Instant::now() + Duration::from_secs(30);
    while processes_with(&tag).len() < 4 || !tmp.path().join("latest/history.jsonl").exists() {
        assert!(Instant::now() < deadline, "the nodes did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    kill(Pid::from_raw(guard.id() as i32), Signal::SIGKILL)
        .unwrap_or_else(|e| panic!("SIGKILL: {e}"));
    guard.wait_timeout(Duration::from_secs(10));
    // A paused node gets the SIGKILL too (SIGKILL needs no SIGCONT).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_with(&tag).is_empty() {
        assert!(
            Instant::now() < deadline,
            "nodes outlived the harness: {:?}",
            processes_with(&tag)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Per worker (process mod clients), the first `n` client ops as (f, key, written value).
fn op_sequences(history: &Path, clients: u64, n: usize) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(history).unwrap_or_default();
    let mut seqs = vec![Vec::new(); clients as usize];
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        let (Some(p), Some("invoke")) = (v["process"].as_u64(), v["type"].as_str()) else {
            continue;
        };
        let written = match &v["value"] {
            serde_json::Value::Array(a) => a.get(1).cloned().unwrap_or_default(),
            other => other.clone(),
        };
        let seq = &mut seqs[(p % clients) as usize];
        if p < 1000 && seq.len() < n {
            seq.push(format!("{} {} {written}", v["f"], v["key"]));
        }
    }
    seqs
}

#[test]
fn same_seed_same_schedule_and_op_sequences() {
    let tmp = TempDir::new("seed");
    let _reaper = KillOnDrop(tmp.path().display().to_string());
    let runs: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|tag| {
            let out_dir = tmp.path().join(tag);
            std::thread::spawn(move || {
                let out = run_with_timeout(
                    harness()
                        .args([
                            "run",
                            "--nodes",
                            "3",
                            "--clients",
                            "4",
                            "--time-limit",
                            "3s",
                        ])
                        .args(["--seed", "77", "--nemesis-interval", "1s", "--rate", "200"])
                        .arg("--node-bin")
                        .arg(brokenkv())
                        .arg("--out")
                        .arg(&out_dir),
                    Duration::from_secs(60),
                );
                (out_dir, out)
            })
        })
        .collect();
    let mut results = Vec::new();
    for r in runs {
        let (out_dir, out) = r.join().unwrap_or_else(|_| panic!("run thread panicked"));
        assert!(matches!(code(&out.status), 0 | 1), "{}", show(&out));
        let latest = out_dir.join("latest");
        let run: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(latest.join("run.json")).unwrap_or_default(),
        )
        .unwrap_or_default();
        assert_eq!(run["seed"], 77);
        results.push((
            run["schedule"].clone(),
            op_sequences(&latest.join("history.jsonl"), 4, 40),
        ));
    }
    let (sched_a, ops_a) = &results[0];
    let (sched_b, ops_b) = &results[1];
    assert!(
        sched_a.as_array().is_some_and(|s| !s.is_empty()),
        "{sched_a}"
    );
    assert_eq!(sched_a, sched_b, "same seed, different fault schedules");
    for (w, (a, b)) in ops_a.iter().zip(ops_b).enumerate() {
        assert!(a.len() >= 20 && b.len() >= 20, "worker {w}: too few ops");
        let n = a.len().min(b.len());
        assert_eq!(a[..n], b[..n], "worker {w}: different op sequences");
    }
}

#[test]
fn usage_errors_exit_254() {
    for args in [
        &["run", "--nodes", "0"][..],
        &["run", "--nemesis", "explode"],
        &["run", "--time-limit", "soon"],
        &["run", "--no-such-flag"],
    ] {
        let out = run_with_timeout(harness().args(args), Duration::from_secs(10));
        assert_eq!(code(&out.status), 254, "{args:?}: {}", show(&out));
    }
}

#[test]
fn a_node_that_will_not_start_fails_the_run_with_255() {
    let tmp = TempDir::new("nostart");
    let _reaper = KillOnDrop(tmp.path().display().to_string());
    let out = run_with_timeout(
        harness()
            .args([
                "run",
                "--nodes",
                "3",
                "--time-limit",
                "2s",
                "--node-bin",
                "/bin/false",
            ])
            .arg("--out")
            .arg(tmp.path()),
        Duration::from_secs(60),
    );
    assert_eq!(code(&out.status), 255, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exited during startup"), "{}", show(&out));

    let missing = tmp.path().join("no-such-node");
    let out = run_with_timeout(
        harness()
            .args(["run", "--time-limit", "2s", "--node-bin"])
            .arg(&missing)
            .arg("--out")
            .arg(tmp.path()),
        Duration::from_secs(10),
    );
    assert_eq!(code(&out.status), 255, "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
}
