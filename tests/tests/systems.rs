//! Stores nobody here wrote, plugged in through system specs and client adapters, unmodified:
//! - etcd 3.4 (Debian), 3 members behind per-destination proxy listeners, under partitions,
//!   kills and pauses, with linearizable reads: linearizable, and its peer connections are
//!   attributed to the members that dialed them;
//! - Redis (Debian), a master and two replicas, reads served by the replicas: caught (exit 1);
//!   reads on the master only, no failover: linearizable;
//! - the example Python store (examples/pystore) through the external adapter: linearizable;
//! - a bad spec is a usage error naming the field.
//!
//! The store binaries must be installed (`.ci/run` does it): these tests fail, not skip, when
//! they are missing, unless HARNESS_SKIP_EXTERNAL_STORES=1 says to skip them.

use e2e::{code, harness, run_with_timeout, show, KillOnDrop, TempDir};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// Whether `program` is installed; panics (fails the test) when it is not, unless skipping was
/// asked for.
fn require(program: &str, package: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    if found {
        return true;
    }
    if std::env::var("HARNESS_SKIP_EXTERNAL_STORES").as_deref() == Ok("1") {
        eprintln!("skipping: {program} is not installed and HARNESS_SKIP_EXTERNAL_STORES=1");
        return false;
    }
    panic!(
        "{program} is not installed: `apt-get install {package}` (.ci/run does), or set \
         HARNESS_SKIP_EXTERNAL_STORES=1 to skip the tests that need it"
    );
}

fn run_json(out_dir: &Path) -> serde_json::Value {
    let path = out_dir.join("latest").join("run.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn run(tmp: &TempDir, args: &[&str]) -> Output {
    run_with_timeout(
        harness().arg("run").args(args).arg("--out").arg(tmp.path()),
        Duration::from_secs(240),
    )
}

#[test]
fn etcd_under_partitions_kills_and_pauses_is_linearizable() {
    if !require("etcd", "etcd-server") {
        return;
    }
    let tmp = TempDir::new("etcd");
    let _reaper = KillOnDrop(tmp.path().display().to_string());
    let out = run(
        &tmp,
        &[
            "--system",
            "etcd",
            "--nodes",
            "3",
            "--time-limit",
            "20s",
            "--nemesis",
            "partition,kill,pause",
            "--nemesis-interval",
            "3s",
            "--seed",
            "3",
        ],
    );
    assert_eq!(code(&out.status), 0, "{}", show(&out));
    let run = run_json(tmp.path());
    let outcome = &run["outcome"];
    assert!(
        outcome["faults"]["partition"].as_u64().unwrap_or(0) >= 1,
        "{}",
        outcome["faults"]
    );
    let dests = outcome["proxy_destinations"]
        .as_object()
        .unwrap_or_else(|| panic!("no proxy_destinations in {outcome}"));
    assert_eq!(dests.len(), 3, "{dests:?}");
    for (node, d) in dests {
        assert!(
            d["attributed"].as_u64().unwrap_or(0) > 0,
            "no connection to {node} was attributed: {d}"
        );
    }
    assert!(
        outcome["proxy_silent_links"]
            .as_array()
            .is_some_and(|a| a.is_empty()),
        "{}",
        outcome["proxy_silent_links"]
    );
}

#[test]
fn redis_replica_reads_are_caught() {
    if !require("redis-server", "redis-server") {
        return;
    }
    let tmp = TempDir::new("redis-replicas");
    let _reaper = KillOnDrop(tmp.path().display().to_string());
    let out = run(
        &tmp,
        &[
            "--system",
            "redis",
            "--nodes",
            "3",
            "--time-limit",
            "15s",
            "--seed",
            "1",
        ],
    );
    assert_eq!(code(&out.status), 1, "{}", show(&out));
}

#[test]
fn redis_master_reads_pass_without_failover() {
    if !require("redis-server", "redis-server") {
        return;
    }
    let tmp = TempDir::new("redis-master");
    let _reaper = KillOnDrop(tmp.path().display().to_string());
    let out = run(
        &tmp,
        &[
            "--system",
            "redis",
            "--client-opt",
            "read_from_replicas=false",
            "--nodes",
            "3",
            "--time-limit",
            "15s",
            "--nemesis",
            "partition,pause,kill",
            "--seed",
            "1",
        ],
    );
    assert_eq!(code(&out.status), 0, "{}", show(&out));
}

#[test]
fn example_python_store_passes_through_the_external_adapter() {
    if !require("python3", "python3") {
        return;
    }
    let tmp = TempDir::new("pystore");
    let _reaper = KillOnDrop(tmp.path().display().to_string());
    let spec = repo().join("systems").join("example-py.toml");
    let spec = spec.display().to_string();
    let out = run(
        &tmp,
        &[
            "--system",
            &spec,
            "--nodes",
            "1",
            "--time-limit",
            "8s",
            "--seed",
            "2",
        ],
    );
    assert_eq!(code(&out.status), 0, "{}", show(&out));
    let run = run_json(tmp.path());
    assert_eq!(run["system"]["name"], "example-py", "{}", run["system"]);
    assert!(run["outcome"]["ops"]["ok"].as_u64().unwrap_or(0) > 100);
}

#[test]
fn a_bad_spec_is_a_usage_error_naming_the_field() {
    let tmp = TempDir::new("badspec");
    let spec = tmp.path().join("bad.toml");
    let write = |text: &str| {
        std::fs::write(&spec, text).unwrap_or_else(|e| panic!("writing {}: {e}", spec.display()))
    };
    let spec_arg = spec.display().to_string();
    for (text, field) in [
        (
            "name = \"x\"\n[node]\ncommand = [\"true\", \"{data_dri}\"]\n[client]\nadapter = \"native\"\n",
            "{data_dri}",
        ),
        (
            "name = \"x\"\n[node]\ncommand = [\"true\"]\n[client]\nadapter = \"etcd\"\nserialisable = true\n",
            "serialisable",
        ),
        ("name = \"x\"\n[node]\ncommand = [\"true\"]\n", "client"),
    ] {
        write(text);
        let out = run(&tmp, &["--system", &spec_arg, "--time-limit", "1s"]);
        assert_eq!(code(&out.status), 254, "{text}\n{}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(field), "{text}: {err}");
    }
    let out = run(&tmp, &["--system", "mongodb"]);
    assert_eq!(code(&out.status), 254, "{}", show(&out));
}
