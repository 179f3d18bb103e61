//! Load tool: throughput and latency of a 3-node raftkv cluster on loopback, fsync on.
//!
//! ```sh
//! cargo build --release -p raftkv --bins --examples
//! target/release/examples/load                       # starts a cluster; 1/16/64 clients, writes and reads
//! target/release/examples/load --clients 16 --op write --duration 10
//! target/release/examples/load --target 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
//! ```
//!
//! ReadIndex latency under a slow disk: `slow_fsync.c` (beside this file) is an `LD_PRELOAD`
//! shim that makes every `fdatasync`/`fsync` of the node processes take `SLOW_FSYNC_MS` longer;
//! background writers keep the disk queues busy while one client reads:
//!
//! ```sh
//! gcc -shared -fPIC -O2 -o /tmp/slow_fsync.so crates/raftkv/examples/slow_fsync.c -ldl
//! LD_PRELOAD=/tmp/slow_fsync.so SLOW_FSYNC_MS=100 target/release/examples/load \
//!     --op read --clients 1 --background-writers 4 --duration 10
//! ```
//!
//! Each client is one connection doing one request at a time (closed loop), as etcd's
//! benchmark does, so throughput at N clients comes from the node batching concurrent
//! proposals into one fsync and one AppendEntries (group commit).

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;
use support::{Client, Cluster};

#[derive(Parser, Debug)]
#[command(about = "Throughput and latency of a raftkv cluster")]
struct Args {
    /// Concurrent clients, comma-separated; one run per value.
    #[arg(long, default_value = "1,16,64", value_delimiter = ',')]
    clients: Vec<usize>,
    /// write, read, or both.
    #[arg(long, default_value = "both")]
    op: String,
    /// Seconds per run.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Client addresses of a running cluster (comma-separated); default: start one.
    #[arg(long, value_delimiter = ',')]
    target: Vec<String>,
    /// Value size in bytes.
    #[arg(long, default_value_t = 16)]
    value_size: usize,
    /// Clients that write throughout every run, unmeasured (so reads meet busy disks).
    #[arg(long, default_value_t = 0)]
    background_writers: usize,
}

struct RunResult {
    ops: usize,
    errors: usize,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

fn main() {
    let args = Args::parse();
    let cluster = if args.target.is_empty() {
        let c = Cluster::start("load", 3, &[]);
        eprintln!("started a 3-node cluster in {}", c.dir.display());
        Some(c)
    } else {
        None
    };
    let leader = find_leader(cluster.as_ref(), &args.target);
    let term_at_start = term_of(&leader);
    eprintln!("leader: {leader} (term {term_at_start:?})");
    let background = (args.background_writers > 0).then(|| {
        let (leader, n, size) = (leader.clone(), args.background_writers, args.value_size);
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let h = thread::spawn(move || run_until(&leader, "write", n, &stop2, size));
        (stop, h)
    });
    let ops: Vec<&str> = match args.op.as_str() {
        "both" => vec!["write", "read"],
        "write" => vec!["write"],
        "read" => vec!["read"],
        other => {
            eprintln!("unknown --op {other}");
            std::process::exit(254);
        }
    };
    println!("| op | clients | ops/s | p50 ms | p99 ms | max ms | errors |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for op in &ops {
        for &n in &args.clients {
            let r = run(
                &leader,
                op,
                n,
                Duration::from_secs_f64(args.duration),
                args.value_size,
            );
            let mut l = r.latencies_us;
            l.sort_unstable();
            let pct = |p: f64| {
                l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
                    .map_or(0.0, |&us| us as f64 / 1000.0)
            };
            println!(
                "| {op} | {n} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
                r.ops as f64 / r.elapsed.as_secs_f64(),
                pct(0.50),
                pct(0.99),
                l.last().map_or(0.0, |&us| us as f64 / 1000.0),
                r.errors
            );
        }
    }
    if let Some((stop, h)) = background {
        stop.store(true, Ordering::Relaxed);
        let r = h.join().expect("background writers");
        eprintln!("background writers: {} writes, {} errors", r.ops, r.errors);
    }
    // A leader that stepped down during the runs (check-quorum failing on slow followers) shows
    // as a different leader or term.
    eprintln!(
        "leader at the end: {:?} (term at start {term_at_start:?})",
        term_of(&leader)
    );
    drop(cluster);
}

/// The term the node at `addr` reports, and whether it is leader.
fn term_of(addr: &str) -> Option<(String, bool)> {
    let st = Client::connect(addr)
        .and_then(|mut c| c.call(json!({"op":"status"})))
        .ok()?;
    Some((st["term"].to_string(), st["role"] == "leader"))
}

fn find_leader(cluster: Option<&Cluster>, targets: &[String]) -> String {
    let until = Instant::now() + Duration::from_secs(15);
    if let Some(c) = cluster {
        let i = c.wait_leader(Duration::from_secs(15));
        return c.nodes[i].client_addr();
    }
    loop {
        for t in targets {
            if let Ok(st) = Client::connect(t).and_then(|mut c| c.call(json!({"op":"status"}))) {
                if st["role"] == "leader" {
                    return t.clone();
                }
            }
        }
        assert!(Instant::now() < until, "no leader among {targets:?}");
        thread::sleep(Duration::from_millis(50));
    }
}

fn run(leader: &str, op: &str, clients: usize, duration: Duration, value_size: usize) -> RunResult {
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let timer = thread::spawn(move || {
        thread::sleep(duration);
        stop2.store(true, Ordering::Relaxed);
    });
    let r = run_until(leader, op, clients, &stop, value_size);
    timer.join().expect("timer");
    r
}

fn run_until(
    leader: &str,
    op: &str,
    clients: usize,
    stop: &Arc<AtomicBool>,
    value_size: usize,
) -> RunResult {
    let start = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|t| {
            let (leader, op, stop) = (leader.to_string(), op.to_string(), stop.clone());
            thread::spawn(move || {
                let mut c = Client::connect(&leader).expect("connect to the leader");
                let mut lat = Vec::with_capacity(1 << 16);
                let (mut ops, mut errors) = (0usize, 0usize);
                let pad = "x".repeat(value_size.saturating_sub(12));
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("c{t}k{}", i % 16);
                    let req = if op == "write" {
                        json!({"op":"write","key":key,"value":format!("{i}{pad}")})
                    } else {
                        json!({"op":"read","key":key})
                    };
                    let t0 = Instant::now();
                    match c.call(req) {
                        Ok(v) if v["ok"] == true => {
                            ops += 1;
                            lat.push(t0.elapsed().as_micros() as u64);
                        }
                        _ => errors += 1,
                    }
                    i += 1;
                }
                (ops, errors, lat)
            })
        })
        .collect();
    let mut r = RunResult {
        ops: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
    };
    for h in handles {
        let (ops, errors, lat) = h.join().expect("client thread");
        r.ops += ops;
        r.errors += errors;
        r.latencies_us.extend(lat);
    }
    r.elapsed = start.elapsed();
    r
}
