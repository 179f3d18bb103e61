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
//! 5. Small domains (issue 16's classes): single-key histories of 4,000 operations, values
//!    from 1..=4 or 1..=3, 20% indefinite, 10 or 20 processes; a few seeds each, in a child
//!    process like part 2; seeds 1 to 3 (`quick`: 1). Porcupine takes 20 to 90 s on each
//!    20-process seed.
//!
//! Porcupine side by side: with `PORCUPINE_DRIVER=/path/to/driver` (tools/porcupine-driver,
//! built outside this repository) every row of parts 1, 2, 3 and 5 also shows Porcupine's
//! verdict, time (its own read + check time, as ours) and peak RSS on the same file (the etcd
//! logs of part 1 converted to JSONL first; the kv logs need a model the driver does not have).
//! Without it the output says "Porcupine: not available (set PORCUPINE_DRIVER)" and the
//! columns say n/a.
//!
//! `-- quick` skips the 1M- and 10M-operation runs and uses fewer seeds in part 5; `-- stream`
//! runs only part 4; `-- small` only part 5.

#[path = "../tests/support/gen.rs"]
mod gen;
#[path = "support/porcupine.rs"]
mod porcupine;

use std::collections::HashMap;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lincheck::{check_file, CheckOptions, Format, JsonlWriter, Verdict};
use porcupine::Driver;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1..]);
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--porcupine-child") {
        porcupine::child(&args[i + 1..]);
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
    let driver = porcupine::driver();
    match &driver {
        Some(d) => println!("Porcupine: {}\n", d.path().display()),
        None => println!("{}\n", porcupine::UNAVAILABLE),
    }
    let driver = driver.as_ref();
    if args.iter().any(|a| a == "small") {
        small_domains(&dir, quick, driver);
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let mut pc = Porc::new(driver);
    corpus(&dir, driver);
    println!(
        "\n## Scaling: 1,000 keys, 20 processes, 5% info ops (read + check, in a child process)\n"
    );
    println!("{HEADER}");
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
        scenario(&dir, &p, &[], &mut pc);
    }
    println!("\n## Hard: 10,000 ops over 10 keys, 20 processes, 5% indefinite writes/cas\n");
    println!("{HEADER}");
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
        scenario(&dir, &p, &[], &mut pc);
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
    println!("{HEADER}");
    println!("| 5% indefinite, reductions off |");
    scenario(&dir, &p, &["--no-reductions"], &mut pc);
    let p10 = gen::Params {
        info_rate: 0.10,
        seed: 7,
        ..p
    };
    println!("| 10% indefinite, reductions on |");
    scenario(&dir, &p10, &[], &mut pc);
    println!("| 10% indefinite, reductions off |");
    scenario(&dir, &p10, &["--no-reductions"], &mut pc);
    small_domains(&dir, quick, driver);
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

/// Columns of parts 2, 3 and 5.
const HEADER: &str =
    "| ops | history | verdict | expected | time (s) | peak RSS (MB) | stale read found on key \
    | Porcupine verdict | Porcupine time (s) | Porcupine peak RSS (MB) |\n\
    |---|---|---|---|---|---|---|---|---|---|";

/// Porcupine's runs, by history: the rows with and without our reductions share a file.
struct Porc<'a> {
    driver: Option<&'a Driver>,
    done: HashMap<String, porcupine::Run>,
}

impl<'a> Porc<'a> {
    fn new(driver: Option<&'a Driver>) -> Self {
        Self {
            driver,
            done: HashMap::new(),
        }
    }

    /// Table cells for Porcupine on `path`, known as `id` (the file is rewritten per row).
    fn cells(&mut self, id: &str, path: &Path) -> String {
        let Some(d) = self.driver else {
            return porcupine::cells(None);
        };
        let run = self
            .done
            .entry(id.to_string())
            .or_insert_with(|| d.check(&[path.to_path_buf()]));
        porcupine::cells(Some(run))
    }
}

fn corpus(dir: &Path, driver: Option<&Driver>) {
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
    println!(
        "| set | files | correct | total time (s) | slowest file \
        | Porcupine correct | Porcupine total time (s) | Porcupine peak RSS (MB) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
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
        let porc = match driver {
            None => "n/a | n/a | n/a".to_string(),
            // The driver's model is the register; kv logs append to strings.
            Some(_) if set == "kv" => "n/a (append model) | - | -".to_string(),
            Some(d) => corpus_porcupine(dir, d, &root, &files),
        };
        println!(
            "| {set} | {} | {correct} | {:.3} | {} ({:.3} s) | {porc} |",
            files.len(),
            best.as_secs_f64(),
            slowest.1,
            slowest.0.as_secs_f64()
        );
    }
}

/// Porcupine on the corpus files, converted to JSONL: correct verdicts, best of 3 total
/// time, peak RSS (one driver process checks them all, as ours does in one process).
fn corpus_porcupine(dir: &Path, d: &Driver, root: &Path, files: &[&(String, Verdict)]) -> String {
    let mut paths = Vec::with_capacity(files.len());
    for (i, (f, _)) in files.iter().enumerate() {
        let Ok((h, _)) = lincheck::read_file(&root.join(f), Format::Auto) else {
            return format!("unreadable: {f} | - | -");
        };
        let path = dir.join(format!("corpus-{i}.jsonl"));
        let Ok(out) = std::fs::File::create(&path) else {
            return "cannot write JSONL | - | -".into();
        };
        let mut w = JsonlWriter::new(std::io::BufWriter::new(out));
        let written = lincheck::jsonl::history_events(&h)
            .iter()
            .try_for_each(|e| w.write(e))
            .and_then(|()| w.flush());
        if written.is_err() {
            return "cannot write JSONL | - | -".into();
        }
        paths.push(path);
    }
    let runs: Vec<porcupine::Run> = (0..3).map(|_| d.check(&paths)).collect();
    let correct = runs[0]
        .verdicts
        .iter()
        .zip(files)
        .filter(|(v, (_, want))| v.as_str() == want.name())
        .count();
    let best = runs.iter().map(|r| r.secs).fold(f64::INFINITY, f64::min);
    let rss = runs.iter().map(|r| r.rss_mb).fold(0.0, f64::max);
    for p in &paths {
        let _ = std::fs::remove_file(p);
    }
    format!(
        "{correct} | {} | {}",
        porcupine::secs(best),
        porcupine::mb(rss)
    )
}

/// Part 5: issue 16's small-domain classes, ours and Porcupine on the same files.
fn small_domains(dir: &Path, quick: bool, driver: Option<&Driver>) {
    println!(
        "\n## Small domains: 1 key, 4,000 ops, 20% indefinite (read + check, in a child process)\n"
    );
    println!(
        "| class | seed | verdict | time (s) | peak RSS (MB) \
        | Porcupine verdict | Porcupine time (s) | Porcupine peak RSS (MB) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let seeds: &[u64] = if quick { &[1] } else { &[1, 2, 3] };
    let mut pc = Porc::new(driver);
    for (name, procs, domain) in [
        ("10 procs, domain 4", 10, 4),
        ("20 procs, domain 4", 20, 4),
        ("10 procs, domain 3", 10, 3),
    ] {
        for &seed in seeds {
            let p = gen::Params {
                ops: 4000,
                keys: 1,
                procs,
                info_rate: 0.2,
                fail_rate: 0.02,
                read_frac: 0.4,
                write_frac: 0.4,
                unique_values: false,
                domain,
                seed,
            };
            let path = dir.join(format!("small-{procs}-{domain}-{seed}.jsonl"));
            std::fs::write(&path, gen::to_jsonl(&gen::generate(&p))).expect("write history");
            let f = run_child(&path, &[]);
            println!(
                "| {name} | {seed} | {} | {} | {} | {} |",
                f.first().map_or("?", String::as_str),
                f.get(1).map_or("?", String::as_str),
                f.get(2).map_or("?", String::as_str),
                pc.cells(&path.display().to_string(), &path),
            );
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Reads and checks `path` in a child process; its fields: verdict, seconds, peak RSS MB,
/// first failing key, CPU seconds.
fn run_child(path: &Path, extra: &[&str]) -> Vec<String> {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe)
        .arg("--child")
        .arg(path)
        .args(extra)
        .output()
        .expect("run child");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .split('\t')
        .map(str::to_string)
        .collect()
}

fn scenario(dir: &Path, p: &gen::Params, extra: &[&str], pc: &mut Porc<'_>) {
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
        let f = run_child(&path, extra);
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
        let id = format!("{}-{}-{}-{stale}", p.ops, p.seed, p.info_rate);
        println!(
            "| {} | {} | {} | {expected} | {} | {} | {found} | {} |",
            p.ops,
            if stale { "stale read" } else { "valid" },
            f.first().map_or("?", String::as_str),
            f.get(1).map_or("?", String::as_str),
            f.get(2).map_or("?", String::as_str),
            pc.cells(&id, &path),
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
