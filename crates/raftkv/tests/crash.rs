//! Crash safety with real processes: SIGKILL of the whole cluster mid write stream, a torn log
//! tail, and a corrupted segment.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{call_leader, fast_flags, free_port, Client, Cluster, Node};

const T: Duration = Duration::from_secs(15);
const WRITERS: usize = 4;

/// What one writer did on its key: every value up to `acked` was acknowledged; values up to
/// `attempted` may or may not have been applied.
#[derive(Debug, Clone)]
struct WriterLog {
    key: String,
    acked: u64,
    attempted: u64,
}

/// A tiny deterministic generator for kill delays (xorshift), seeded per test and printed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Writes 1, 2, 3, ... to `key` on the leader until the connection breaks or `stop` is set.
fn writer(addr: String, key: String, stop: Arc<AtomicBool>) -> WriterLog {
    let mut log = WriterLog {
        key: key.clone(),
        acked: 0,
        attempted: 0,
    };
    let Ok(mut c) = Client::connect(&addr) else {
        return log;
    };
    while !stop.load(Ordering::SeqCst) {
        let n = log.attempted + 1;
        log.attempted = n;
        match c.call(json!({"op":"write","key":key,"value":n.to_string()})) {
            Ok(v) if v["ok"] == true => log.acked = n,
            _ => break,
        }
    }
    log
}

/// Checks a writer's key after recovery: the value is at least the last acknowledged one.
fn check(cluster: &Cluster, w: &WriterLog, context: &str) {
    let v = call_leader(cluster, json!({"op":"read","key":w.key}), T);
    assert_eq!(v["ok"], true, "{context}: {v}");
    let got = match &v["value"] {
        Value::Null => 0,
        Value::String(s) => s.parse::<u64>().expect("a number"),
        other => panic!("{context}: unexpected value {other}"),
    };
    assert!(
        got >= w.acked && got <= w.attempted,
        "{context}: key {} holds {got}, but {} was acknowledged and {} attempted",
        w.key,
        w.acked,
        w.attempted
    );
}

/// `rounds` times: write from several clients, SIGKILL all nodes at a random instant,
/// restart them, and check every acknowledged write survived. Snapshots are taken every 50
/// entries so kills also land around snapshots and compactions.
fn kill_all_rounds(tag: &str, rounds: usize, seed: u64) {
    eprintln!("{tag}: seed {seed}");
    let mut rng = Rng(seed);
    let mut flags = fast_flags();
    flags.extend(["--snapshot-every".to_string(), "50".to_string()]);
    let mut cluster = Cluster::start(tag, 3, &flags);
    let mut all: Vec<WriterLog> = Vec::new();
    let mut total_acked = 0;
    for round in 0..rounds {
        let l = cluster.wait_leader(T);
        let addr = cluster.nodes[l].client_addr();
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (addr, stop) = (addr.clone(), stop.clone());
                let key = format!("r{round}w{w}");
                thread::spawn(move || writer(addr, key, stop))
            })
            .collect();
        thread::sleep(Duration::from_millis(20 + rng.below(150)));
        for n in &mut cluster.nodes {
            n.kill();
        }
        stop.store(true, Ordering::SeqCst);
        let logs: Vec<WriterLog> = handles
            .into_iter()
            .map(|h| h.join().expect("writer"))
            .collect();
        total_acked += logs.iter().map(|w| w.acked).sum::<u64>();
        for n in &mut cluster.nodes {
            n.restart();
        }
        cluster.wait_leader(T);
        for w in &logs {
            check(&cluster, w, &format!("{tag} round {round}"));
        }
        all.extend(logs);
    }
    // Every earlier round's writes are still there after all the later crashes.
    for w in &all {
        check(&cluster, w, &format!("{tag} final"));
    }
    eprintln!("{tag}: {rounds} kill points, {total_acked} acknowledged writes, all present");
    cluster.assert_no_process_left();
}

fn seed() -> u64 {
    std::env::var("RAFTKV_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        })
}

// 2 x 25 = 50 kill points; two tests so they can run in parallel.
#[test]
fn acknowledged_writes_survive_killing_every_node_a() {
    kill_all_rounds("killall-a", 25, seed());
}

#[test]
fn acknowledged_writes_survive_killing_every_node_b() {
    kill_all_rounds("killall-b", 25, seed() ^ 0x5555);
}

fn segments(data_dir: &Path) -> Vec<PathBuf> {
    let mut segs: Vec<PathBuf> = fs::read_dir(data_dir.join("log"))
        .expect("log dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segs.sort();
    segs
}

/// A single-node cluster with `n` acknowledged writes k0..k{n-1}, then SIGKILLed.
fn single_node_with_writes(tag: &str, n: usize) -> Cluster {
    let mut cluster = Cluster::start(tag, 1, &fast_flags());
    cluster.wait_leader(T);
    let mut c = Client::connect(&cluster.nodes[0].client_addr()).unwrap();
    for i in 0..n {
        let a = c
            .call(json!({"op":"write","key":format!("k{i}"),"value":format!("v{i}")}))
            .unwrap();
        assert_eq!(a["ok"], true, "{a}");
    }
    cluster.nodes[0].kill();
    cluster
}

#[test]
fn a_torn_log_tail_is_truncated_on_restart() {
    let mut cluster = single_node_with_writes("torn", 50);
    let seg = segments(&cluster.nodes[0].spec.data_dir)
        .pop()
        .expect("a segment");
    let len = fs::metadata(&seg).unwrap().len();
    // Cut the last record in half, as a crash during its write would.
    let f = fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 5).unwrap();
    drop(f);
    cluster.nodes[0].restart();
    cluster.wait_leader(T);
    let log = cluster.nodes[0].log();
    assert!(log.contains("torn tail"), "{log}");
    let mut c = Client::connect(&cluster.nodes[0].client_addr()).unwrap();
    for i in 0..49 {
        let v = c.call(json!({"op":"read","key":format!("k{i}")})).unwrap();
        assert_eq!(v["value"], format!("v{i}"), "k{i}");
    }
    assert_eq!(
        c.call(json!({"op":"write","key":"k","value":"new"}))
            .unwrap()["ok"],
        true
    );
}

#[test]
fn a_flipped_byte_mid_segment_refuses_to_start_with_a_clear_message() {
    let mut cluster = single_node_with_writes("flip", 200);
    let seg = segments(&cluster.nodes[0].spec.data_dir)
        .pop()
        .expect("a segment");
    let mut bytes = fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(&seg, &bytes).unwrap();
    let started = Instant::now();
    cluster.nodes[0].restart();
    let status = cluster.nodes[0]
        .wait_exit(Duration::from_secs(10))
        .expect("the node must exit, not serve");
    assert!(!status.success());
    let log = cluster.nodes[0].log();
    let name = seg.file_name().unwrap().to_string_lossy().to_string();
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.contains("corrupt") && last.contains(&name) && last.contains("offset"),
        "the last line should name the corruption, file and offset: {last}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    cluster.assert_no_process_left();
}

/// A second process started on a data directory in use is refused with a clear error, and
/// the first one is left alone.
#[test]
fn a_second_node_on_the_same_data_directory_is_refused() {
    let cluster = Cluster::start("dir-lock", 1, &fast_flags());
    cluster.wait_leader(Duration::from_secs(10));
    let mut spec = cluster.nodes[0].spec.clone();
    spec.client_port = free_port();
    spec.peer_port = free_port();
    spec.log_file = cluster.dir.join("second.log");
    let mut second = Node::start(spec);
    let status = second
        .wait_exit(Duration::from_secs(10))
        .expect("the second node kept running on a directory in use");
    assert!(!status.success());
    let log = second.log();
    assert!(log.contains("in use by another process"), "{log}");
    assert!(
        cluster.nodes[0].is_running(),
        "the first node was disturbed"
    );
}
