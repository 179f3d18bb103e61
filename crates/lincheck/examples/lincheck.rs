//! Checks history files and prints one line each: `cargo run --release -p lincheck --example
//! lincheck -- FILE...` (format detected; model by format).

use std::time::Instant;

use lincheck::{check_file, CheckOptions, Format};

fn main() {
    let mut opts = CheckOptions::default();
    let mut files = Vec::new();
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--no-reductions" => opts = opts.reductions(false),
            "--threads=1" => opts = opts.threads(1),
            _ => files.push(a),
        }
    }
    for f in files {
        let t = Instant::now();
        match check_file(f.as_ref(), Format::Auto, &opts) {
            Ok(c) => println!(
                "{f}\t{}\t{:.1} ms\t{}",
                c.result.verdict.name(),
                t.elapsed().as_secs_f64() * 1e3,
                c.result
                    .counterexamples
                    .first()
                    .map(|c| c.explanation.as_str())
                    .unwrap_or("")
            ),
            Err(e) => println!("{f}\terror: {e}"),
        }
    }
}
