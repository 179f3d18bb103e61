//! Numbers over time from the history: throughput and latency per bucket, availability during
//! each fault and outside them, and counts per operation kind.

use super::faults::Fault;
use lincheck::{History, Outcome};

/// Outcome classes as the report counts them (a cas refused by its precondition took effect:
/// ok; no completion at all: indefinite, like info).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

impl Counts {
    pub fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Ok | Outcome::Refused => self.ok += 1,
            Outcome::Fail => self.fail += 1,
            _ => self.info += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.ok + self.fail + self.info
    }
}

/// One time bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bucket {
    /// Completions in the bucket, by outcome, as rates (per second).
    pub ok: f64,
    pub fail: f64,
    pub info: f64,
    /// Latency percentiles of the operations completed in the bucket (ns); `None` if none did.
    pub p50: Option<u64>,
    pub p95: Option<u64>,
    pub p99: Option<u64>,
    pub max: Option<u64>,
}

/// The run cut into buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Bucket width (ns).
    pub width: u64,
    pub buckets: Vec<Bucket>,
}

/// A bucket width that gives a curve: a second for runs of 20 s or more, else a quarter second
/// (rates stay per second either way).
pub fn bucket_width(end: u64) -> u64 {
    if end >= 20_000_000_000 {
        1_000_000_000
    } else {
        250_000_000
    }
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Throughput (by completion time) and latency (of every operation that completed: an `info`
/// is a timeout, so it sits at the client's timeout) per bucket, over `[0, end]`.
pub fn series(h: &History, end: u64) -> Series {
    let width = bucket_width(end);
    let n = (end / width + 1) as usize;
    let mut counts = vec![Counts::default(); n];
    let mut lat: Vec<Vec<u64>> = vec![Vec::new(); n];
    for o in &h.ops {
        let Some(r) = o.ret_time else { continue };
        let b = ((r / width) as usize).min(n - 1);
        counts[b].add(o.outcome);
        lat[b].push(r.saturating_sub(o.call_time));
    }
    let per_sec = 1e9 / width as f64;
    let buckets = counts
        .iter()
        .zip(lat.iter_mut())
        .map(|(c, l)| {
            l.sort_unstable();
            Bucket {
                ok: c.ok as f64 * per_sec,
                fail: c.fail as f64 * per_sec,
                info: c.info as f64 * per_sec,
                p50: percentile(l, 50.0),
                p95: percentile(l, 95.0),
                p99: percentile(l, 99.0),
                max: l.last().copied(),
            }
        })
        .collect();
    Series { width, buckets }
}

/// Outcomes of the operations invoked while each fault was in force, and of those invoked while
/// none was (the last entry).
pub fn availability(h: &History, faults: &[Fault]) -> (Vec<Counts>, Counts) {
    let mut during = vec![Counts::default(); faults.len()];
    let mut outside = Counts::default();
    for o in &h.ops {
        let mut any = false;
        for (i, f) in faults.iter().enumerate() {
            if o.call_time >= f.start && o.call_time < f.end {
                during[i].add(o.outcome);
                any = true;
            }
        }
        if !any {
            outside.add(o.outcome);
        }
    }
    (during, outside)
}

/// Counts per function name, in the order read, write, cas, append (those that occur).
pub fn by_function(h: &History) -> Vec<(&'static str, Counts)> {
    let mut out: Vec<(&'static str, Counts)> = Vec::new();
    for name in ["read", "write", "cas", "append"] {
        let mut c = Counts::default();
        for o in h.ops.iter().filter(|o| o.f.name() == name) {
            c.add(o.outcome);
        }
        if c.total() > 0 {
            out.push((name, c));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(lines: &str) -> History {
        lincheck::read_jsonl(lines.as_bytes()).expect("a history")
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&[7], 95.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn buckets_rates_latency_and_availability() {
        let h = history(concat!(
            r#"{"time":0,"process":0,"type":"invoke","f":"write","key":"k","value":1}"#,
            "\n",
            r#"{"time":100000000,"process":0,"type":"ok","f":"write","key":"k","value":1}"#,
            "\n",
            r#"{"time":300000000,"process":1,"type":"invoke","f":"read","key":"k","value":null}"#,
            "\n",
            r#"{"time":310000000,"process":1,"type":"fail","f":"read","key":"k","error":"not_leader"}"#,
            "\n",
            r#"{"time":320000000,"process":2,"type":"invoke","f":"cas","key":"k","value":[1,2]}"#,
            "\n",
            r#"{"time":900000000,"process":2,"type":"info","f":"cas","key":"k","value":[1,2]}"#,
            "\n",
        ));
        let s = series(&h, 1_000_000_000);
        assert_eq!(s.width, 250_000_000);
        assert_eq!(s.buckets.len(), 5);
        assert_eq!(s.buckets[0].ok, 4.0);
        assert_eq!(s.buckets[0].p50, Some(100_000_000));
        assert_eq!(s.buckets[1].fail, 4.0);
        assert_eq!(s.buckets[3].info, 4.0);
        assert_eq!(s.buckets[3].max, Some(580_000_000));
        assert_eq!(s.buckets[2].p99, None);
        let fault = Fault {
            id: Some(1),
            kind: "pause".into(),
            detail: None,
            label: "pause n1".into(),
            start: 250_000_000,
            end: 950_000_000,
            ended: true,
            nodes: vec!["n1".into()],
        };
        let (during, outside) = availability(&h, &[fault]);
        assert_eq!(
            during[0],
            Counts {
                ok: 0,
                fail: 1,
                info: 1
            }
        );
        assert_eq!(
            outside,
            Counts {
                ok: 1,
                fail: 0,
                info: 0
            }
        );
        let f = by_function(&h);
        assert_eq!(
            f.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            ["read", "write", "cas"]
        );
    }
}
