//! The checker benchmark: `cargo bench -p lincheck --bench lincheck` prints a table.
//!
//! 1. Porcupine's corpus (tests/data/porcupine): total wall time to read and check the 102 etcd
//!    logs and the 6 kv logs, best of 3, with every verdict compared to VERDICTS.tsv.
//! 2. Scaling: generated register histories of 10k, 100k and 1M operations over 1,000 keys,
//!    20 processes, 5% indefinite operations; valid, and with one injected stale read. Each is
//!    written as JSONL, then read and checked in a child process, which reports wall time and
//!    peak RSS (VmHWM), so parsing counts, as in Porcupine's figures.
//! 3. Hard histories: 10,000 operations over 10 keys, 20 processes, 5% indefinite writes/cas,
//!    valid and with one injected stale read; then with 10% indefinite operations, with and
//!    without the reductions (time limit 10 s), to show what they buy.
//!
//! 4. Streaming (`lincheck::stream::check_file`, what `harness check` does for JSONL) against
//!    the whole-history check, on 1M and 10M operations over 1,000 keys, 20 processes, 5%
//!    indefinite operations, valid and with one stale read injected; each in a child process
//!    reporting wall time, CPU time and peak RSS (VmHWM). The history is written to a
//!    temporary file first (about 2.3 GB for 10M operations).
//!
//! `-- quick` skips the 1M- and 10M-operation runs; `-- stream` runs only part 4.

#[path = "../tests/support/gen.rs"]
mod gen;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lincheck::{check_file, CheckOptions, Format, Verdict};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1..]);
        return;
    }
    let quick = args.iter().any(|a| a == "quick");
    let dir = std::env::temp_dir().join(format!("lincheck-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    if args.iter().any(|a| a == "stream") {
        streaming(&dir, quick);
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    corpus();
    println!(
        "\n## Scaling: 1,000 keys, 20 processes, 5% info ops (read + check, in a child process)\n"
    );
    println!("| ops | history | verdict | expected | time (s) | peak RSS (MB) | stale read found on key |");
    println!("|---|---|---|---|---|---|---|");
    let sizes: &[usize] = if quick {
        &[10_000, 100_000]
    } else {
        &[10_000, 100_000, 1_000_000]
    };
    for &n in sizes {
        let p = gen::Params {
            ops: n,
            keys: 1000,
            procs: 20,
            info_rate: 0.05,
            fail_rate: 0.02,
            read_frac: 0.5,
            write_frac: 0.3,
            unique_values: true,
            domain: 0,
            seed: n as u64,
        };
        scenario(&dir, &p, &[]);
    }
    println!("\n## Hard: 10,000 ops over 10 keys, 20 processes, 5% indefinite writes/cas\n");
    println!("| ops | history | verdict | expected | time (s) | peak RSS (MB) | stale read found on key |");
    println!("|---|---|---|---|---|---|---|");
    for seed in [1u64, 2, 3] {
        let p = gen::Params {
            ops: 10_000,
            keys: 10,
            procs: 20,
            info_rate: 0.05,
            fail_rate: 0.02,
            read_frac: 0.4,
            write_frac: 0.4,
            unique_values: true,
            domain: 0,
            seed: 1000 + seed,
        };
        scenario(&dir, &p, &[]);
    }
    let p = gen::Params {
        ops: 10_000,
        keys: 10,
        procs: 20,
        info_rate: 0.05,
        fail_rate: 0.02,
        read_frac: 0.4,
        write_frac: 0.4,
        unique_values: true,
        domain: 0,
        seed: 1001,
    };
    println!("\nWhat the reductions buy: the first hard history, and the same shape with 10% indefinite ops, with reductions and without (time limit 10 s):\n");
    println!("| ops | history | verdict | expected | time (s) | peak RSS (MB) | stale read found on key |");
    println!("|---|---|---|---|---|---|---|");
    println!("| 5% indefinite, reductions off |");
    scenario(&dir, &p, &["--no-reductions"]);
    let p10 = gen::Params {
        info_rate: 0.10,
        seed: 7,
        ..p
    };
    println!("| 10% indefinite, reductions on |");
    scenario(&dir, &p10, &[]);
    println!("| 10% indefinite, reductions off |");
    scenario(&dir, &p10, &["--no-reductions"]);
    streaming(&dir, quick);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Part 4: streaming against the whole-history check.
fn streaming(dir: &Path, quick: bool) {
    println!("\n## Streaming vs whole history: 1,000 keys, 20 processes, 5% info ops (read + check, in a child process)\n");
    println!("| ops | history | check | verdict | expected | time (s) | CPU (s) | peak RSS (MB) | stale read found on key |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let sizes: &[usize] = if quick {
        &[100_000]
    } else {
        &[1_000_000, 10_000_000]
    };
    for &n in sizes {
        let p = gen::Params {
            ops: n,
            keys: 1000,
            procs: 20,
            info_rate: 0.05,
            fail_rate: 0.02,
            read_frac: 0.5,
            write_frac: 0.3,
            unique_values: true,
            domain: 0,
            seed: n as u64,
        };
        let mut ops = gen::generate(&p);
        for stale in [false, true] {
            let mut key = String::from("-");
            if stale {
                // In the middle of the history, as in part 2.
                let Some(r) = gen::inject_stale_read(&mut ops, p.seed) else {
                    continue;
                };
                key = format!("k{}", ops[r].key);
            }
            let path = dir.join(format!("s-{n}-{stale}.jsonl"));
            {
                let f = std::fs::File::create(&path).expect("create history");
                gen::write_jsonl(&ops, std::io::BufWriter::with_capacity(1 << 20, f))
                    .expect("write history");
            }
            for (check, flag) in [("streaming", "--stream"), ("whole history", "--whole")] {
                let exe = std::env::current_exe().expect("own path");
                let out = Command::new(exe)
                    .arg("--child")
                    .arg(&path)
                    .arg(flag)
                    .output()
                    .expect("run child");
                let text = String::from_utf8_lossy(&out.stdout);
                let f: Vec<&str> = text.trim().split('\t').collect();
                let expected = if stale {
                    "not-linearizable"
                } else {
                    "linearizable"
                };
                let found = if stale {
                    let hit = f.get(3).is_some_and(|k| *k == key);
                    format!("{key}: {}", if hit { "yes" } else { "NO" })
                } else {
                    "-".into()
                };
                println!(
                    "| {n} | {} | {check} | {} | {expected} | {} | {} | {} | {found} |",
                    if stale { "stale read" } else { "valid" },
                    f.first().unwrap_or(&"?"),
                    f.get(1).unwrap_or(&"?"),
                    f.get(4).unwrap_or(&"?"),
                    f.get(2).unwrap_or(&"?"),
                );
            }
            let _ = std::fs::remove_file(&path);
        }
    }
}

fn corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/porcupine");
    let table = std::fs::read_to_string(root.join("VERDICTS.tsv")).expect("VERDICTS.tsv");
    let rows: Vec<(String, Verdict)> = table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once('\t'))
        .map(|(f, v)| {
            let v = if v.trim() == "linearizable" {
                Verdict::Linearizable
            } else {
                Verdict::NotLinearizable
            };
            (f.to_string(), v)
        })
        .collect();
    println!("## Porcupine corpus (read + check, best of 3 runs)\n");
    println!("| set | files | correct | total time (s) | slowest file |");
    println!("|---|---|---|---|---|");
    for (set, prefix) in [("etcd", "jepsen/"), ("kv", "kv/")] {
        let files: Vec<&(String, Verdict)> =
            rows.iter().filter(|r| r.0.starts_with(prefix)).collect();
        let mut best = Duration::MAX;
        let mut correct = 0;
        let mut slowest = (Duration::ZERO, String::new());
        for _ in 0..3 {
            correct = 0;
            let t = Instant::now();
            for (f, want) in &files {
                let t1 = Instant::now();
                let got = check_file(&root.join(f), Format::Auto, &CheckOptions::default())
                    .map(|c| c.result.verdict);
                if got.as_ref().ok() == Some(want) {
                    correct += 1;
                }
                let e = t1.elapsed();
                if e > slowest.0 {
                    slowest = (e, f.clone());
                }
            }
            best = best.min(t.elapsed());
        }
        println!(
            "| {set} | {} | {correct} | {:.3} | {} ({:.3} s) |",
            files.len(),
            best.as_secs_f64(),
            slowest.1,
            slowest.0.as_secs_f64()
        );
    }
}

fn scenario(dir: &Path, p: &gen::Params, extra: &[&str]) {
    let mut ops = gen::generate(p);
    for stale in [false, true] {
        let mut key = String::from("-");
        if stale {
            let Some(r) = gen::inject_stale_read(&mut ops, p.seed) else {
                println!("| {} | stale | (no read to make stale) |", p.ops);
                continue;
            };
            key = format!("k{}", ops[r].key);
        }
        let path: PathBuf = dir.join(format!("h-{}-{}-{stale}.jsonl", p.ops, p.seed));
        std::fs::write(&path, gen::to_jsonl(&ops)).expect("write history");
        let exe = std::env::current_exe().expect("own path");
        let out = Command::new(exe)
            .arg("--child")
            .arg(&path)
            .args(extra)
            .output()
            .expect("run child");
        let text = String::from_utf8_lossy(&out.stdout);
        let f: Vec<&str> = text.trim().split('\t').collect();
        let expected = if stale {
            "not-linearizable"
        } else {
            "linearizable"
        };
        let found = if stale {
            let hit = f.get(3).is_some_and(|k| *k == key);
            format!("{key}: {}", if hit { "yes" } else { "NO" })
        } else {
            "-".into()
        };
        println!(
            "| {} | {} | {} | {expected} | {} | {} | {found} |",
            p.ops,
            if stale { "stale read" } else { "valid" },
            f.first().unwrap_or(&"?"),
            f.get(1).unwrap_or(&"?"),
            f.get(2).unwrap_or(&"?"),
        );
        let _ = std::fs::remove_file(&path);
    }
}

/// Child: read + check one file; print verdict, seconds, peak RSS MB, first failing key, CPU
/// seconds. `--stream`: the streaming check.
fn child(args: &[String]) {
    let path = Path::new(&args[0]);
    let mut opts = CheckOptions::default();
    if args.iter().any(|a| a == "--no-reductions") {
        opts = opts
            .reductions(false)
            .time_limit(Some(Duration::from_secs(10)));
    }
    let t = Instant::now();
    let result = if args.iter().any(|a| a == "--stream") {
        lincheck::stream::check_file(path, Format::Jsonl, &opts)
            .expect("check")
            .result
    } else {
        check_file(path, Format::Jsonl, &opts)
            .expect("check")
            .result
    };
    let secs = t.elapsed().as_secs_f64();
    let key = result
        .counterexamples
        .first()
        .map(|c| c.key.clone())
        .unwrap_or_else(|| "-".into());
    println!(
        "{}\t{secs:.3}\t{:.0}\t{key}\t{:.2}",
        result.verdict.name(),
        peak_rss_mb(),
        cpu_seconds()
    );
}

/// User + system CPU time of this process so far (/proc/self/stat, clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(f64::NAN)
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
