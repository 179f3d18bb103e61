//! `harness campaign` end to end, with real runs (each a `harness run` child process):
//! - three runs on raftkv pass (exit 0), and the JUnit file reads back with three passing cases;
//! - a campaign against the broken fixture exits 1, names the failing seeds, and re-runs each
//!   one: campaign.json says the violation reproduced;
//! - shards 0/2 and 1/2, merged, hold the same runs (seeds and parameters) as the unsharded
//!   campaign; passing runs beyond --keep-passing are pruned but stay in campaign.json;
//! - `--parallel 2` runs two clusters at once and leaves no process and no listening port behind;
//! - Ctrl-C stops the campaign cleanly (runs killed, marked interrupted, summary written), and a
//!   SIGKILLed campaign takes its runs and their nodes down;
//! - usage errors exit 254, too little disk space ends the campaign with 255 before any run.
//!
//! Every test has its own temporary campaign directory; it appears in the command line of every
//! run and every node (their data directories live under it), which is how the tests find them.

use e2e::{code, harness, processes_with, run_with_timeout, show, ChildGuard, KillOnDrop, TempDir};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn brokenkv() -> &'static str {
    env!("CARGO_BIN_EXE_brokenkv")
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn runs_of(campaign: &Value) -> Vec<Value> {
    campaign["runs"].as_array().cloned().unwrap_or_default()
}

/// Short runs: 3 s of clients, a 1 s quiet period.
const QUICK: [&str; 2] = ["--time-limit", "3s"];

/// A JUnit file, read tolerantly: test cases, failures and errors counted, every opened element
/// closed.
struct Junit {
    text: String,
}

impl Junit {
    fn read(path: &Path) -> Junit {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        assert!(
            text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
            "{text}"
        );
        for tag in ["testsuites", "testsuite", "testcase", "failure", "error"] {
            let open = text.matches(&format!("<{tag} ")).count()
                + text.matches(&format!("<{tag}>")).count();
            let self_closed = text
                .split(&format!("<{tag} "))
                .skip(1)
                .filter(|rest| rest.split('>').next().is_some_and(|a| a.ends_with('/')))
                .count();
            let close = text.matches(&format!("</{tag}>")).count();
            assert_eq!(open - self_closed, close, "<{tag}> not balanced in\n{text}");
        }
        Junit { text }
    }

    fn count(&self, what: &str) -> usize {
        self.text.matches(what).count()
    }
}

#[test]
fn three_raftkv_runs_pass_and_the_junit_file_reads_back() {
    let tmp = TempDir::new("campaign-pass");
    let _reaper = KillOnDrop(tmp.path().display().to_string());
    let dir = tmp.path().join("c");
    let junit = tmp.path().join("junit.xml");
    let out = run_with_timeout(
        harness()
            .args(["campaign", "--runs", "3", "--seed-base", "1000"])
            .args(QUICK)
            .arg("--junit")
            .arg(&junit)
            .arg("--out")
            .arg(&dir)
            .args(["--", "--nodes", "3", "--recovery", "1s"]),
        Duration::from_secs(120),
    );
    assert_eq!(code(&out.status), 0, "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("exit 0: all 3 run(s) linearizable"),
        "{}",
        show(&out)
    );
    // Not a terminal: one plain line per finished run, no progress bar.
    let stderr = String::from_utf8_lossy(&out.stderr);
    for seed in 1000..1003 {
        assert!(
            stderr.contains(&format!(" seed {seed}: linearizable")),
            "{stderr}"
        );
    }
    let j = Junit::read(&junit);
    assert_eq!(j.count("<testcase "), 3, "{}", j.text);
    assert_eq!(j.count("<failure"), 0, "{}", j.text);
    assert_eq!(j.count("<error"), 0, "{}", j.text);
    assert!(j.text.contains("tests=\"3\" failures=\"0\" errors=\"0\""));
    for seed in 1000..1003 {
        assert!(j.text.contains(&format!("seed={seed}\"")), "{}", j.text);
    }
    let c = read_json(&dir.join("campaign.json"));
    assert_eq!(c["format"], "harness-campaign");
    assert_eq!(c["version"], 1);
    assert_eq!(c["state"], "finished");
    assert_eq!(c["exit_code"], 0);
    assert_eq!(c["counts"]["linearizable"], 3);
    let runs = runs_of(&c);
    assert_eq!(
        runs.iter().map(|r| r["seed"].as_u64()).collect::<Vec<_>>(),
        [Some(1000), Some(1001), Some(1002)]
    );
    for r in &runs {
        assert_eq!(r["status"], "linearizable");
        assert!(r["ops"].as_u64().unwrap_or(0) > 0, "{r}");
        let run_dir = dir.join(r["run_dir"].as_str().unwrap_or("?"));
        assert!(run_dir.join("run.json").is_file(), "{}", run_dir.display());
        assert!(r["replay_command"]
            .as_str()
            .is_some_and(|c| c.starts_with("harness run --seed ")));
    }
}

#[test]
fn a_broken_store_fails_the_campaign_and_its_seeds_are_replayed() {
    let tmp = TempDir::new("campaign-broken");
    let _reaper = KillOnDrop(tmp.path().display().to_string());
    let dir = tmp.path().join("c");
    let junit = tmp.path().join("junit.xml");
    let out = run_with_timeout(
        harness()
            .args([
                "campaign",
                "--runs",
                "2",
                "--parallel",
                "2",
                "--seed-base",
                "7",
            ])
            .args(QUICK)
            .arg("--junit")
            .arg(&junit)
            .arg("--out")
            .arg(&dir)
            .args(["--", "--nodes", "3", "--recovery", "1s", "--node-bin"])
            .arg(brokenkv()),
        Duration::from_secs(120),
    );
    assert_eq!(code(&out.status), 1, "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("exit 1: 2 run(s) found a violation: seed(s) 7, 8"),
        "{}",
        show(&out)
    );
    assert!(stdout.contains("NOT LINEARIZABLE (reproduced)"), "{stdout}");
    let c = read_json(&dir.join("campaign.json"));
    assert_eq!(c["exit_code"], 1);
    assert_eq!(c["counts"]["not_linearizable"], 2);
    for r in runs_of(&c) {
        assert_eq!(r["status"], "not-linearizable", "{r}");
        assert_eq!(r["reproduced"], true, "{r}");
        assert_eq!(r["replay"]["status"], "not-linearizable", "{r}");
        assert!(
            r["explanation"]
                .as_str()
                .is_some_and(|e| e.starts_with("key ")),
            "{r}"
        );
        // The failing run and its replay keep their directories, report included.
        let run_dir = dir.join(r["run_dir"].as_str().unwrap_or("?"));
        assert!(
            run_dir.join("report.html").is_file(),
            "{}",
            run_dir.display()
        );
        let replay_dir = dir.join(r["replay"]["run_dir"].as_str().unwrap_or("?"));
        assert!(
            replay_dir.join("result.json").is_file(),
            "{}",
            replay_dir.display()
        );
        assert!(r["replay_command"]
            .as_str()
            .is_some_and(|c| c.contains("--node-bin") && c.contains("--seed")));
    }
    // The campaign's index lists both runs and both replays, each linked to its report.
    let index = std::fs::read_to_string(dir.join("index.html"))
        .unwrap_or_else(|e| panic!("{}/index.html: {e}", dir.display()));
    assert_eq!(
        index.matches("<tr class=\"run v-fail\"").count(),
        4,
        "{index}"
    );
    for r in runs_of(&c) {
        for d in [&r["run_dir"], &r["replay"]["run_dir"]] {
            let link = format!("{}/report.html", d.as_str().unwrap_or("?"));
            assert!(index.contains(&link), "{link} not in the index");
        }
    }
    let j = Junit::read(&junit);
    assert_eq!(j.count("<testcase "), 2);
    assert_eq!(j.count("<failure "), 2, "{}", j.text);
    assert_eq!(j.count("type=\"not-linearizable\""), 2, "{}", j.text);
    assert_eq!(j.count("(reproduced on replay)"), 2, "{}", j.text);
    assert_eq!(j.count("replay: harness run --seed"), 2, "{}", j.text);
    assert!(j
        .text
        .contains(&format!("run directory: {}", dir.display())));
    assert!(j.text.contains("name=\"r0 seed=7\"") && j.text.contains("name=\"r1 seed=8\""));
}

/// (index, seed, parameters) of every run in a campaign.json.
fn run_set(c: &Value) -> BTreeSet<(u64, u64, BTreeMap<String, String>)> {
    runs_of(c)
        .iter()
        .map(|r| {
            let params = r["params"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("?").to_string()))
                        .collect()
                })
                .unwrap_or_default();
            (
                r["index"].as_u64().unwrap_or(u64::MAX),
                r["seed"].as_u64().unwrap_or(u64::MAX),
                params,
            )
        })
        .collect()
}

#[test]
fn merged_shards_hold_the_runs_of_the_unsharded_campaign() {
    let tmp = TempDir::new("campaign-shards");
    let _reaper = KillOnDrop(tmp.path().display().to_string());
    let common = |extra: &[&str], dir: &Path| {
        let mut cmd = harness();
        cmd.args(["campaign", "--runs", "4", "--seed-base", "500"])
            .args(["--matrix", "nodes=1,3", "nemesis=none|pause,kill"])
            .args(["--time-limit", "2s"])
            .args(extra)
            .arg("--out")
            .arg(dir)
            .args(["--", "--clients", "4", "--recovery", "1s"]);
        cmd
    };
    // The unsharded campaign (two at a time, passing runs beyond the first pruned) and both
    // shards, all at once.
    let jobs: Vec<(PathBuf, Vec<&str>)> = vec![
        (
            tmp.path().join("whole"),
            vec!["--parallel", "2", "--keep-passing", "1"],
        ),
        (tmp.path().join("shard0"), vec!["--shard", "0/2"]),
        (tmp.path().join("shard1"), vec!["--shard", "1/2"]),
    ];
    let handles: Vec<_> = jobs
        .into_iter()
        .map(|(dir, extra)| {
            let mut cmd = common(&extra, &dir);
            std::thread::spawn(move || (dir, run_with_timeout(&mut cmd, Duration::from_secs(120))))
        })
        .collect();
    for h in handles {
        let (dir, out) = h
            .join()
            .unwrap_or_else(|_| panic!("campaign thread panicked"));
        assert_eq!(code(&out.status), 0, "{}: {}", dir.display(), show(&out));
    }
    let whole = read_json(&tmp.path().join("whole/campaign.json"));
    let expected = run_set(&whole);
    assert_eq!(expected.len(), 4);
    // Run r: seed 500 + r, cell r mod 4, the last dimension fastest.
    let r1 = expected.iter().find(|(i, _, _)| *i == 1).cloned();
    assert_eq!(
        r1,
        Some((
            1,
            501,
            BTreeMap::from([
                ("nemesis".to_string(), "pause,kill".to_string()),
                ("nodes".to_string(), "1".to_string())
            ])
        ))
    );
    // Pruning: one passing run kept, the others deleted but still listed.
    let pruned = runs_of(&whole)
        .iter()
        .filter(|r| r["pruned"] == true)
        .count();
    assert_eq!(pruned, 3, "{whole}");
    assert_eq!(whole["pruned"], 3);
    for r in runs_of(&whole) {
        let d = tmp
            .path()
            .join("whole")
            .join(r["run_dir"].as_str().unwrap_or("?"));
        assert_eq!(d.exists(), r["pruned"] == false, "{}", d.display());
    }
    for (i, dir) in ["shard0", "shard1"].iter().enumerate() {
        let c = read_json(&tmp.path().join(dir).join("campaign.json"));
        assert_eq!(c["shard"]["index"], i as u64);
        assert!(run_set(&c).iter().all(|(idx, _, _)| idx % 2 == i as u64));
    }
    let merged = tmp.path().join("merged");
    let junit = merged.join("junit.xml");
    let out = run_with_timeout(
        harness()
            .current_dir(tmp.path())
            .args(["campaign", "merge", "shard0", "shard1", "--out", "merged"])
            .arg("--junit")
            .arg(&junit),
        Duration::from_secs(30),
    );
    assert_eq!(code(&out.status), 0, "{}", show(&out));
    let m = read_json(&merged.join("campaign.json"));
    assert_eq!(run_set(&m), expected);
    assert_eq!(m["counts"]["total"], 4);
    assert_eq!(m["merged_from"], serde_json::json!(["shard0", "shard1"]));
    for r in runs_of(&m) {
        // Run directories are relative to the merged campaign.json.
        let d = merged.join(r["run_dir"].as_str().unwrap_or("?"));
        assert!(d.join("run.json").is_file(), "{}", d.display());
    }
    let j = Junit::read(&junit);
    assert_eq!(j.count("<testcase "), 4);
    assert_eq!(j.count("<failure"), 0);
    assert!(
        j.text
            .contains("name=\"r3 seed=503 nodes=3 nemesis=pause,kill\""),
        "{}",
        j.text
    );
    // A shard given twice, or a missing shard, is caught.
    let out = run_with_timeout(
        harness()
            .current_dir(tmp.path())
            .args(["campaign", "merge", "shard0", "shard0", "--out", "m2"]),
        Duration::from_secs(30),
    );
    assert_eq!(code(&out.status), 254, "{}", show(&out));
    let out = run_with_timeout(
        harness()
            .current_dir(tmp.path())
            .args(["campaign", "merge", "shard1", "--out", "m3"]),
        Duration::from_secs(30),
    );
    assert_eq!(code(&out.status), 255, "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("shard(s) 0 of 2 missing"));
}

/// TCP ports in LISTEN state on this machine (this network namespace).
fn listening_ports() -> BTreeSet<u16> {
    let mut ports = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(3) != Some(&"0A") {
                continue;
            }
            if let Some(port) = fields
                .get(1)
                .and_then(|a| a.rsplit_once(':'))
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
            {
                ports.insert(port);
            }
        }
    }
    ports
}

/// Every port a run.json names: node client and peer ports, and the proxy's peer listeners.
fn ports_of_run(run_json: &Value) -> BTreeSet<u16> {
    let port = |v: &Value| {
        v.as_str()
            .and_then(|a| a.rsplit_once(':'))
            .and_then(|(_, p)| p.parse::<u16>().ok())
    };
    let mut ports = BTreeSet::new();
    for n in run_json["nodes"].as_array().cloned().unwrap_or_default() {
        ports.extend(port(&n["client"]));
        ports.extend(port(&n["peer_listen"]));
        if let Some(peers) = n["peers"].as_object() {
            ports.extend(peers.values().filter_map(port));
        }
    }
    ports
}

#[test]
fn parallel_runs_leave_no_process_and_no_port_behind() {
    let tmp = TempDir::new("campaign-parallel");
    let tag = tmp.path().display().to_string();
    let _reaper = KillOnDrop(tag.clone());
    let dir = tmp.path().join("c");
    let child = harness()
        .args([
            "campaign",
            "--runs",
            "4",
            "--parallel",
            "2",
            "--seed-base",
            "40",
        ])
        .args(QUICK)
        .arg("--out")
        .arg(&dir)
        .args(["--", "--nodes", "3", "--recovery", "1s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning harness: {e}"));
    let mut guard = ChildGuard(Some(child));
    // Two `harness run`s, each with its nodes, at the same time.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut most_runs = 0;
    let status = loop {
        let procs = processes_with(&tag);
        // Distinct runs (a run forking a node shows twice until the exec).
        let runs = procs
            .iter()
            .filter(|(_, cmd)| cmd.contains(" run --seed="))
            .filter_map(|(_, cmd)| cmd.split(" --out=").nth(1)?.split(' ').next())
            .collect::<BTreeSet<_>>()
            .len();
        most_runs = most_runs.max(runs);
        if let Some(Ok(Some(s))) = guard.0.as_mut().map(|c| c.try_wait()) {
            guard.0 = None;
            break s;
        }
        assert!(Instant::now() < deadline, "the campaign did not finish");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(code(&status), 0);
    assert_eq!(most_runs, 2, "expected two runs at once");
    assert_eq!(processes_with(&tag), Vec::new(), "processes left behind");
    let c = read_json(&dir.join("campaign.json"));
    let mut ports = BTreeSet::new();
    for r in runs_of(&c) {
        let run_dir = dir.join(r["run_dir"].as_str().unwrap_or("?"));
        ports.extend(ports_of_run(&read_json(&run_dir.join("run.json"))));
    }
    assert!(ports.len() >= 4 * 6, "ports: {ports:?}");
    let still = listening_ports()
        .intersection(&ports)
        .copied()
        .collect::<Vec<_>>();
    assert_eq!(still, Vec::<u16>::new(), "ports still listening");
    // Each run had its own --out, so its own `latest` link.
    for i in 0..4 {
        assert!(dir.join(format!("runs/r{i}/latest/run.json")).is_file());
    }
}

/// Starts a long campaign and waits until two runs and their nodes are up.
fn start_long_campaign(tmp: &TempDir) -> (ChildGuard, PathBuf) {
    let dir = tmp.path().join("c");
    let child = harness()
        .args([
            "campaign",
            "--runs",
            "4",
            "--parallel",
            "2",
            "--seed-base",
            "70",
        ])
        .args(["--time-limit", "60s"])
        .arg("--out")
        .arg(&dir)
        .args([
            "--",
            "--nodes",
            "3",
            "--nemesis",
            "pause",
            "--nemesis-interval",
            "300ms",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning harness: {e}"));
    let guard = ChildGuard(Some(child));
    let tag = tmp.path().display().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    // 2 runs + 6 nodes, and both histories under way.
    while processes_with(&tag).len() < 8
        || !(0..2).all(|i| dir.join(format!("runs/r{i}/latest/history.jsonl")).exists())
    {
        assert!(
            Instant::now() < deadline,
            "the runs did not start: {:?}",
            processes_with(&tag)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    (guard, dir)
}

#[test]
fn ctrl_c_kills_the_runs_marks_them_interrupted_and_writes_the_summary() {
    let tmp = TempDir::new("campaign-ctrlc");
    let tag = tmp.path().display().to_string();
    let _reaper = KillOnDrop(tag.clone());
    let (mut guard, dir) = start_long_campaign(&tmp);
    let mut stdout = guard.0.as_mut().and_then(|c| c.stdout.take());
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(out) = stdout.as_mut() {
            let _ = std::io::Read::read_to_string(out, &mut s);
        }
        s
    });
    kill(Pid::from_raw(guard.id() as i32), Signal::SIGINT)
        .unwrap_or_else(|e| panic!("SIGINT: {e}"));
    let status = guard.wait_timeout(Duration::from_secs(20));
    let summary = reader.join().unwrap_or_default();
    assert_eq!(code(&status), 255, "{summary}");
    assert_eq!(processes_with(&tag), Vec::new(), "processes left behind");
    assert!(summary.contains("stopped early: interrupted"), "{summary}");
    assert!(summary.contains("2 not started"), "{summary}");
    let c = read_json(&dir.join("campaign.json"));
    assert_eq!(c["state"], "finished");
    assert_eq!(c["exit_code"], 255);
    assert_eq!(c["runs_not_started"], 2);
    let runs = runs_of(&c);
    assert_eq!(runs.len(), 2);
    for r in runs {
        assert_eq!(r["status"], "interrupted", "{r}");
        // The partial history stays.
        let d = dir.join(r["run_dir"].as_str().unwrap_or("?"));
        assert!(d.join("history.jsonl").is_file(), "{}", d.display());
    }
}

#[test]
fn a_killed_campaign_takes_its_runs_and_nodes_down() {
    let tmp = TempDir::new("campaign-sigkill");
    let tag = tmp.path().display().to_string();
    let _reaper = KillOnDrop(tag.clone());
    let (mut guard, _dir) = start_long_campaign(&tmp);
    kill(Pid::from_raw(guard.id() as i32), Signal::SIGKILL)
        .unwrap_or_else(|e| panic!("SIGKILL: {e}"));
    guard.wait_timeout(Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_with(&tag).is_empty() {
        assert!(
            Instant::now() < deadline,
            "runs or nodes outlived the campaign: {:?}",
            processes_with(&tag)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn usage_errors_exit_254_and_a_full_disk_ends_the_campaign_with_255() {
    let tmp = TempDir::new("campaign-usage");
    let _reaper = KillOnDrop(tmp.path().display().to_string());
    let out_dir = tmp.path().join("c");
    let bad: &[&[&str]] = &[
        &["--matrix", "bogus=1,2"],
        &["--matrix", "nodes=3,0"],
        &["--", "--seed", "4"],
        &["--shard", "0/2"],
        &["--shard", "2/2", "--seed-base", "1"],
        &["--parallel", "0"],
        &["--", "--nemesis", "explode"],
    ];
    for args in bad {
        let out = run_with_timeout(
            harness()
                .arg("campaign")
                .args(*args)
                .arg("--out")
                .arg(&out_dir),
            Duration::from_secs(30),
        );
        assert_eq!(code(&out.status), 254, "{args:?}: {}", show(&out));
        assert!(!out_dir.exists(), "{args:?} created the campaign directory");
    }
    let out = run_with_timeout(
        harness().args(["campaign", "merge"]).arg(tmp.path()),
        Duration::from_secs(30),
    );
    assert_eq!(code(&out.status), 254, "{}", show(&out));

    // --dry-run: the shards' runs are the campaign's runs.
    let plan = |extra: &[&str]| -> BTreeSet<String> {
        let out = run_with_timeout(
            harness()
                .args(["campaign", "--dry-run", "--runs", "7", "--seed-base", "9"])
                .args(["--matrix", "nodes=1,3,5", "--out", "/nonexistent/c"])
                .args(extra),
            Duration::from_secs(30),
        );
        assert_eq!(code(&out.status), 0, "{}", show(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with('r'))
            .map(|l| l.split(':').next().unwrap_or("").to_string())
            .collect()
    };
    let whole = plan(&[]);
    assert_eq!(whole.len(), 7);
    assert!(whole.contains("r4 seed=13 nodes=3"), "{whole:?}");
    let mut shards = plan(&["--shard", "0/3"]);
    shards.extend(plan(&["--shard", "1/3"]));
    shards.extend(plan(&["--shard", "2/3"]));
    assert_eq!(shards, whole);

    let out = run_with_timeout(
        harness()
            .args(["campaign", "--runs", "2", "--min-free", "1000000T", "--out"])
            .arg(&out_dir),
        Duration::from_secs(30),
    );
    assert_eq!(code(&out.status), 255, "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("low disk space"), "{}", show(&out));
    let c = read_json(&out_dir.join("campaign.json"));
    assert_eq!(c["runs_not_started"], 2);
    assert_eq!(c["counts"]["total"], 0);
    assert!(c["stopped"]
        .as_str()
        .is_some_and(|s| s.starts_with("low disk space")));
}
