//! Where the second engine (stateright's tester, `lincheck::oracle`) stops being practical:
//! `cargo run --release -p lincheck --example engines -- [LIMIT_MS] [corpus|generated]` (default
//! 10000, both parts) prints, for each Porcupine corpus file and for generated single-key
//! register histories of growing concurrency, the operations, the processes, each engine's verdict and time. Stateright runs
//! with the time limit given; the search engine without one.

use std::path::Path;
use std::time::{Duration, Instant};

use lincheck::history::History;
use lincheck::{check, oracle, read_file, CheckOptions, Format, ModelKind};

#[path = "../tests/support/gen.rs"]
mod gen;

fn main() {
    let limit_ms: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let limit = Duration::from_millis(limit_ms);
    let part = std::env::args().nth(2).unwrap_or_default();
    println!("| input | ops | processes | lincheck | time | stateright | time |");
    println!("|---|---:|---:|---|---:|---|---:|");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/porcupine");
    let table = std::fs::read_to_string(dir.join("VERDICTS.tsv")).unwrap_or_default();
    for line in table.lines().skip(1).filter(|_| part != "generated") {
        let Some((file, _)) = line.split_once('\t') else {
            continue;
        };
        match read_file(&dir.join(file), Format::Auto) {
            Ok((h, format)) => row(file, &h, format.default_model(), limit),
            Err(e) => println!("| {file} | error: {e} |"),
        }
    }
    for procs in [2usize, 3, 4, 6, 8, 12, 16]
        .into_iter()
        .filter(|_| part != "corpus")
    {
        for ops in [20usize, 100, 400] {
            let mut p = gen::Params::small(procs as u64 * 1000 + ops as u64);
            p.ops = ops;
            p.procs = procs;
            p.info_rate = 0.05;
            p.unique_values = true;
            let h = gen::to_history(&gen::generate(&p));
            row(
                &format!("generated, {procs} procs"),
                &h,
                ModelKind::Register,
                limit,
            );
        }
    }
}

fn row(name: &str, h: &History, model: ModelKind, limit: Duration) {
    let procs = {
        let mut p: Vec<u64> = h.ops.iter().map(|o| o.process).collect();
        p.sort_unstable();
        p.dedup();
        p.len()
    };
    let opts = CheckOptions::new(model).stop_at_first_violation(false);
    let t = Instant::now();
    let ours = check(h, &opts.clone().time_limit(None)).map(|r| r.verdict.name());
    let ours_t = t.elapsed();
    let t = Instant::now();
    let sr = oracle::check(h, &opts.time_limit(Some(limit))).map(|r| {
        let why: Vec<&str> = r.unresolved().iter().map(|(_, c)| c.name()).collect();
        if why.is_empty() {
            r.verdict.name().to_string()
        } else {
            format!("{} ({})", r.verdict.name(), why[0])
        }
    });
    let sr_t = t.elapsed();
    println!(
        "| {name} | {} | {procs} | {} | {:.3} s | {} | {:.3} s |",
        h.ops.len(),
        ours.unwrap_or("error"),
        ours_t.as_secs_f64(),
        sr.unwrap_or_else(|e| format!("error: {e}")),
        sr_t.as_secs_f64()
    );
}
