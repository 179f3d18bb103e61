//! Writes a generated register history (JSONL) to stdout, for trying the checker:
//! `cargo run --release -p lincheck --example gen_history -- OPS KEYS PROCS INFO_RATE SEED [stale]
//! [--domain=N]`. With `--domain=N` written values are drawn from `1..=N` (Jepsen's usual
//! small-domain registers) instead of being unique.

#[path = "../tests/support/gen.rs"]
mod gen;

fn main() {
    let (flags, a): (Vec<String>, Vec<String>) =
        std::env::args().skip(1).partition(|s| s.starts_with("--"));
    let domain = flags
        .iter()
        .find_map(|f| f.strip_prefix("--domain="))
        .and_then(|d| d.parse::<i64>().ok())
        .unwrap_or(0);
    let num = |i: usize, d: f64| a.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(d);
    let p = gen::Params {
        ops: num(0, 10_000.0) as usize,
        keys: num(1, 10.0) as usize,
        procs: num(2, 20.0) as usize,
        info_rate: num(3, 0.05),
        fail_rate: 0.02,
        read_frac: 0.4,
        write_frac: 0.4,
        unique_values: domain == 0,
        domain,
        seed: num(4, 1.0) as u64,
    };
    let mut ops = gen::generate(&p);
    if a.get(5).is_some_and(|s| s == "stale") {
        let r = gen::inject_stale_read(&mut ops, p.seed);
        eprintln!("stale read: {:?}", r.map(|r| (&ops[r].key, ops[r].call)));
    }
    let out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let _ = gen::write_jsonl(&ops, out);
}
