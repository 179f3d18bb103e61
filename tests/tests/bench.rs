//! `harness bench` on raftkv: the table and the JSON have the documented shape and positive
//! numbers; leader failover is measured; bad options are usage errors (254). Short runs: the
//! point is the tool, not the figures.

use e2e::{code, harness, run_with_timeout, show, KillOnDrop, TempDir};
use serde_json::Value;
use std::time::Duration;

fn bench(tmp: &TempDir, args: &[&str]) -> std::process::Output {
    let _reap = KillOnDrop(tmp.path().display().to_string());
    run_with_timeout(
        harness()
            .arg("bench")
            .args(args)
            .arg("--out")
            .arg(tmp.path()),
        Duration::from_secs(120),
    )
}

fn read_json(path: &std::path::Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

#[test]
fn raftkv_table_and_json() {
    let tmp = TempDir::new("bench");
    let json = tmp.path().join("out.json");
    let json_arg = json.display().to_string();
    let out = bench(
        &tmp,
        &[
            "--system",
            "raftkv",
            "--clients",
            "1,4",
            "--mix",
            "write,read",
            "--duration",
            "500ms",
            "--warmup",
            "100ms",
            "--rounds",
            "1",
            "--keys",
            "10",
            "--json",
            &json_arg,
        ],
    );
    assert_eq!(code(&out.status), 0, "{}", show(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "header + 4 settings\n{}", show(&out));
    for h in [
        "system", "clients", "mix", "ops/s", "p50", "p95", "p99", "max", "÷ first",
    ] {
        assert!(lines[0].contains(h), "{h} missing in {:?}", lines[0]);
    }
    for (line, (clients, mix)) in
        lines[1..]
            .iter()
            .zip([("1", "write"), ("1", "read"), ("4", "write"), ("4", "read")])
    {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&cells[..4], &["raftkv", "3", clients, mix], "{line}");
        let ops: f64 = cells[4].parse().unwrap_or(0.0);
        assert!(ops > 0.0, "no throughput: {line}");
    }
    let v = read_json(&json);
    let results = v["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), 4, "{v}");
    for r in &results {
        assert_eq!(r["system"], "raftkv");
        assert!(
            r["ops_per_s"]["median"].as_f64().unwrap_or(0.0) > 0.0,
            "{r}"
        );
        let lat = &r["latency"];
        let p = |k: &str| lat[k].as_u64().unwrap_or(0);
        assert!(p("p50_us") > 0, "{r}");
        assert!(
            p("p50_us") <= p("p95_us") && p("p95_us") <= p("p99_us"),
            "{r}"
        );
        assert!(p("p99_us") <= p("max_us"), "{r}");
        assert_eq!(r["rounds"].as_array().map(Vec::len), Some(1), "{r}");
        assert!(
            r["ops_ratio_to_first"].is_null(),
            "the first system has no ratio: {r}"
        );
    }
    assert_eq!(v["systems"][0]["nodes"], 3);
    // The data directories are removed, the logs kept.
    let dir = v["dir"].as_str().unwrap_or_default();
    let logs = std::path::Path::new(dir).join("1-raftkv");
    assert!(logs.join("n1.log").is_file(), "{}", logs.display());
    assert!(!logs.join("n1").exists(), "data directory left behind");
}

#[test]
fn through_proxy_adds_a_proxied_cluster_whose_traffic_takes_the_proxy() {
    let tmp = TempDir::new("bench-proxy");
    let json = tmp.path().join("out.json");
    let json_arg = json.display().to_string();
    let out = bench(
        &tmp,
        &[
            "--system",
            "raftkv",
            "--clients",
            "2",
            "--mix",
            "write",
            "--duration",
            "500ms",
            "--warmup",
            "100ms",
            "--rounds",
            "1",
            "--keys",
            "10",
            "--through-proxy",
            "--json",
            &json_arg,
        ],
    );
    assert_eq!(code(&out.status), 0, "{}", show(&out));
    let v = read_json(&json);
    let systems = v["systems"].as_array().cloned().unwrap_or_default();
    assert_eq!(systems.len(), 2, "{v}");
    assert_eq!(
        (&systems[0]["name"], &systems[0]["through_proxy"]),
        (&Value::from("raftkv"), &Value::from(false)),
        "{v}"
    );
    assert!(systems[0]["proxy_bytes"].is_null(), "{v}");
    assert_eq!(systems[1]["name"], "raftkv+proxy", "{v}");
    assert_eq!(systems[1]["through_proxy"], true, "{v}");
    // Writes commit only once replicated: a proxied cluster that answered writes moved its
    // clients' and peers' bytes through the proxy, many kilobytes of them.
    let bytes = systems[1]["proxy_bytes"].as_u64().unwrap_or(0);
    assert!(bytes > 10_000, "{v}");
    let results = v["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), 2, "{v}");
    assert_eq!(results[1]["system"], "raftkv+proxy", "{v}");
    assert!(
        results[1]["ops_per_s"]["median"].as_f64().unwrap_or(0.0) > 0.0,
        "{v}"
    );
    assert!(
        results[1]["ops_ratio_to_first"]["median"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.0,
        "the proxied cluster is compared with the direct one: {v}"
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("raftkv+proxy"), "{table}");
}

#[test]
fn raftkv_leader_kill_failover() {
    let tmp = TempDir::new("bench-failover");
    let json = tmp.path().join("out.json");
    let json_arg = json.display().to_string();
    let out = bench(
        &tmp,
        &[
            "--system",
            "raftkv",
            "--failover",
            "kill",
            "--trials",
            "2",
            "--clients",
            "2",
            "--json",
            &json_arg,
        ],
    );
    assert_eq!(code(&out.status), 0, "{}", show(&out));
    let v = read_json(&json);
    let f = &v["failover"][0];
    assert_eq!(f["system"], "raftkv", "{v}");
    assert_eq!(f["mode"], "kill", "{v}");
    assert_eq!(f["trials"].as_array().map(Vec::len), Some(2), "{v}");
    assert_eq!(f["gave_up"], 0, "{v}");
    let median = f["median_ms"].as_f64().unwrap_or(0.0);
    // A new leader needs at least one election timeout (well over 10 ms); 30 s is a give-up.
    assert!(median > 10.0 && median < 30_000.0, "{v}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("median") && table.contains("raftkv"),
        "{table}"
    );
}

#[test]
fn bad_systems_and_options_are_usage_errors() {
    let tmp = TempDir::new("bench-usage");
    for (args, says) in [
        (&["--system", "mongodb"][..], "unknown system"),
        (&["--system", "raftkv", "--mix", "scan"][..], "--mix"),
        (&["--system", "raftkv", "--clients", "0"][..], "--clients"),
        (
            &["--system", "raftkv,etcd", "--nodes", "3,3,1"][..],
            "--nodes",
        ),
        (
            &["--system", "raftkv", "--duration", "soon"][..],
            "duration",
        ),
        (
            &["--system", "raftkv", "--failover", "reboot"][..],
            "reboot",
        ),
    ] {
        let out = bench(&tmp, args);
        assert_eq!(code(&out.status), 254, "{args:?}\n{}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// The nodes run in their data directories, so a relative `--out` must not reach them as a
/// relative path: Redis resolves `--dir` against its working directory and would not start.
#[test]
fn a_relative_out_directory_still_starts_redis() {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("redis-server").is_file()))
        .unwrap_or(false);
    if !found {
        if std::env::var("HARNESS_SKIP_EXTERNAL_STORES").as_deref() == Ok("1") {
            eprintln!("skipping: redis-server is not installed and HARNESS_SKIP_EXTERNAL_STORES=1");
            return;
        }
        panic!("redis-server is not installed: `apt-get install redis-server` (.ci/run does)");
    }
    let tmp = TempDir::new("bench-relative-out");
    let _reap = KillOnDrop(tmp.path().display().to_string());
    let out = run_with_timeout(
        harness().current_dir(tmp.path()).args([
            "bench",
            "--system",
            "redis",
            "--nodes",
            "1",
            "--clients",
            "1",
            "--mix",
            "write",
            "--duration",
            "300ms",
            "--warmup",
            "100ms",
            "--rounds",
            "1",
            "--keys",
            "5",
            "--out",
            "rel",
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(code(&out.status), 0, "{}", show(&out));
    assert!(tmp.path().join("rel").is_dir());
}
