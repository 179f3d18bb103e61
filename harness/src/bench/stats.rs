//! Summaries of the rounds of a setting, ratios to the first system, and the printed table.
//!
//! Ratios are taken round by round (system X in round r over the first system in round r), so a
//! shared machine that is slower in one round slows both sides of that ratio; the table gives the
//! median of those ratios and their spread (min..max).

use hdrhistogram::Histogram;
use serde::Serialize;

/// Median and range of a few numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// `None` for no numbers (or any NaN).
    pub fn of(xs: &[f64]) -> Option<Spread> {
        if xs.is_empty() || xs.iter().any(|x| x.is_nan()) {
            return None;
        }
        let mut v = xs.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }

    /// Round-by-round ratios `xs[r] / base[r]`, summarized; `None` if the rounds do not pair up
    /// or a base is zero.
    pub fn of_ratios(xs: &[f64], base: &[f64]) -> Option<Spread> {
        if xs.len() != base.len() || base.contains(&0.0) {
            return None;
        }
        let r: Vec<f64> = xs.iter().zip(base).map(|(x, b)| x / b).collect();
        Spread::of(&r)
    }
}

/// One round of one setting.
#[derive(Debug, Clone, Serialize)]
pub struct RoundResult {
    pub ops_per_s: f64,
    pub ok: u64,
    pub errors: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

/// Latency percentiles, µs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        Latency {
            p50_us: h.value_at_quantile(0.50),
            p95_us: h.value_at_quantile(0.95),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
        }
    }
}

/// A setting (system, clients, mix) over all rounds.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub system: String,
    pub nodes: usize,
    pub clients: usize,
    pub mix: String,
    pub rounds: Vec<RoundResult>,
    /// Throughput over the rounds.
    pub ops_per_s: Option<Spread>,
    /// Percentiles of every acknowledged operation of every round together.
    pub latency: Latency,
    pub errors: u64,
    /// Throughput ratio to the first system, round by round (absent for the first system).
    pub ops_ratio_to_first: Option<Spread>,
    /// p99 latency ratio to the first system, round by round.
    pub p99_ratio_to_first: Option<Spread>,
}

impl Row {
    pub fn throughputs(&self) -> Vec<f64> {
        self.rounds.iter().map(|r| r.ops_per_s).collect()
    }

    pub fn p99s(&self) -> Vec<f64> {
        self.rounds.iter().map(|r| r.p99_us as f64).collect()
    }

    /// Fills the ratios to `first` (the same setting of the first system).
    pub fn compare_to(&mut self, first: &Row) {
        self.ops_ratio_to_first = Spread::of_ratios(&self.throughputs(), &first.throughputs());
        self.p99_ratio_to_first = Spread::of_ratios(&self.p99s(), &first.p99s());
    }
}

/// Microseconds for people: `412us`, `3.41ms`, `1.20s`.
pub fn us(v: u64) -> String {
    if v < 1_000 {
        format!("{v}us")
    } else if v < 1_000_000 {
        format!("{:.2}ms", v as f64 / 1e3)
    } else {
        format!("{:.2}s", v as f64 / 1e6)
    }
}

fn ratio(s: &Option<Spread>) -> String {
    match s {
        Some(s) => format!("{:.2} [{:.2}..{:.2}]", s.median, s.min, s.max),
        None => "-".into(),
    }
}

/// The table, one line per setting, grouped by setting so the systems sit under each other.
pub fn table(rows: &[Row]) -> String {
    let header = [
        "system",
        "nodes",
        "clients",
        "mix",
        "ops/s",
        "[min..max]",
        "p50",
        "p95",
        "p99",
        "max",
        "errors",
        "ops/s ÷ first",
        "p99 ÷ first",
    ];
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        let (med, range) = match &r.ops_per_s {
            Some(s) => (
                format!("{:.0}", s.median),
                format!("[{:.0}..{:.0}]", s.min, s.max),
            ),
            None => ("-".into(), "-".into()),
        };
        lines.push(vec![
            r.system.clone(),
            r.nodes.to_string(),
            r.clients.to_string(),
            r.mix.clone(),
            med,
            range,
            us(r.latency.p50_us),
            us(r.latency.p95_us),
            us(r.latency.p99_us),
            us(r.latency.max_us),
            r.errors.to_string(),
            ratio(&r.ops_ratio_to_first),
            ratio(&r.p99_ratio_to_first),
        ]);
    }
    let cols = header.len();
    let width: Vec<usize> = (0..cols)
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .enumerate()
            .map(|(c, s)| {
                let pad = width[c] - s.chars().count();
                // Text columns to the left, numbers to the right.
                if c < 4 && c != 1 && c != 2 {
                    format!("{s}{}", " ".repeat(pad))
                } else {
                    format!("{}{s}", " ".repeat(pad))
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_range() {
        let s = Spread::of(&[3.0, 1.0, 2.0]);
        assert_eq!(
            s,
            Some(Spread {
                median: 2.0,
                min: 1.0,
                max: 3.0
            })
        );
        assert_eq!(
            Spread::of(&[4.0, 1.0, 2.0, 3.0]).map(|s| s.median),
            Some(2.5)
        );
        assert_eq!(Spread::of(&[]), None);
    }

    #[test]
    fn ratios_pair_rounds() {
        // Round 2 ran on a machine half as fast for both systems: its ratio is unchanged.
        let first = [100.0, 50.0, 100.0];
        let other = [300.0, 150.0, 200.0];
        let s = Spread::of_ratios(&other, &first);
        assert_eq!(
            s,
            Some(Spread {
                median: 3.0,
                min: 2.0,
                max: 3.0
            })
        );
        assert_eq!(Spread::of_ratios(&[1.0], &[1.0, 2.0]), None);
        assert_eq!(Spread::of_ratios(&[1.0], &[0.0]), None);
    }

    #[test]
    fn compare_rows() {
        let row = |sys: &str, ops: &[f64], p99: &[u64]| Row {
            system: sys.into(),
            nodes: 3,
            clients: 16,
            mix: "write".into(),
            rounds: ops
                .iter()
                .zip(p99)
                .map(|(&o, &p)| RoundResult {
                    ops_per_s: o,
                    ok: o as u64,
                    errors: 0,
                    p50_us: p / 2,
                    p99_us: p,
                })
                .collect(),
            ops_per_s: Spread::of(ops),
            latency: Latency {
                p50_us: 1,
                p95_us: 2,
                p99_us: 3,
                max_us: 4,
            },
            errors: 0,
            ops_ratio_to_first: None,
            p99_ratio_to_first: None,
        };
        let first = row("a", &[1000.0, 2000.0, 1000.0], &[100, 200, 100]);
        let mut b = row("b", &[100.0, 100.0, 200.0], &[1000, 1000, 1000]);
        b.compare_to(&first);
        let r = b.ops_ratio_to_first.map(|s| (s.median, s.min, s.max));
        assert_eq!(r, Some((0.1, 0.05, 0.2)));
        let p = b.p99_ratio_to_first.map(|s| (s.median, s.min, s.max));
        assert_eq!(p, Some((10.0, 5.0, 10.0)));
        let t = table(&[first, b]);
        assert_eq!(t.lines().count(), 3, "{t}");
        assert!(t.contains("0.10 [0.05..0.20]"), "{t}");
        assert!(t.contains("10.00 [5.00..10.00]"), "{t}");
        assert_eq!(us(412), "412us");
        assert_eq!(us(3_410), "3.41ms");
        assert_eq!(us(1_200_000), "1.20s");
    }
}
