//! Checks history files and prints one line each: `cargo run --release -p lincheck --example
//! lincheck -- [--stats] [--stream] [--no-reductions] [--threads=1]
//! [--strategy=portfolio|eager|lazy] FILE...` (format detected; model by format).
//! `--stream` checks with the streaming checker (what `harness check` does for JSONL).
//! `--stats` adds a line per key: operations searched, search steps, configurations
//! cached, indefinite operations clamped and dropped by the reductions, time in the key's search
//! (encoding and reductions included).

use std::time::Instant;

use lincheck::{check_file, CheckOptions, Format, Strategy};

fn main() {
    let mut opts = CheckOptions::default();
    let mut files = Vec::new();
    let mut stats = false;
    let mut stream = false;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--no-reductions" => opts = opts.reductions(false),
            "--threads=1" => opts = opts.threads(1),
            "--stats" => stats = true,
            "--stream" => stream = true,
            "--strategy=eager" => opts = opts.strategy(Strategy::Eager),
            "--strategy=lazy" => opts = opts.strategy(Strategy::Lazy),
            "--strategy=portfolio" => opts = opts.strategy(Strategy::Portfolio),
            _ => files.push(a),
        }
    }
    for f in files {
        let t = Instant::now();
        let checked = if stream {
            lincheck::stream::check_file(f.as_ref(), Format::Auto, &opts)
                .map(|s| s.result)
                .map_err(|e| e.to_string())
        } else {
            check_file(f.as_ref(), Format::Auto, &opts)
                .map(|c| c.result)
                .map_err(|e| e.to_string())
        };
        match checked {
            Ok(result) => {
                println!(
                    "{f}\t{}\t{:.1} ms\t{}",
                    result.verdict.name(),
                    t.elapsed().as_secs_f64() * 1e3,
                    result
                        .counterexamples
                        .first()
                        .map(|c| c.explanation.as_str())
                        .unwrap_or("")
                );
                for k in result.keys.iter().filter(|_| stats) {
                    println!(
                        "  key {}\tsearched {}\tsteps {}\tconfigs {}\tclamped {}\tdropped {}\t{:.1} ms",
                        k.key,
                        k.searched_ops,
                        k.steps,
                        k.configs,
                        k.clamped,
                        k.dropped,
                        k.elapsed.as_secs_f64() * 1e3
                    );
                }
            }
            Err(e) => println!("{f}\terror: {e}"),
        }
    }
}
