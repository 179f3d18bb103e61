//! Closed-loop load: each client sends its next operation as soon as the last one is answered, on
//! its own session to the node that serves clients (the leader), for a warmup and then a measured
//! window. Only operations that complete inside the window count; their latencies go into one
//! HDR histogram per client, merged at the end.

use super::args::Mix;
use super::cluster::Target;
use adapters::{Op, OpContext, Reply, Session};
use anyhow::{anyhow, Result};
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Latencies are recorded in microseconds, from 1 µs to a minute, to 3 significant digits.
pub fn new_histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| anyhow!("histogram: {e}"))
}

/// What one setting measured in one round.
pub struct Sample {
    /// Acknowledged operations completed inside the window.
    pub ok: u64,
    /// Operations inside the window that were not acknowledged (errors, timeouts, redirects).
    pub errors: u64,
    pub window: Duration,
    /// Latency of the acknowledged operations, µs.
    pub hist: Histogram<u64>,
    /// The first error seen, for the progress line.
    pub first_error: Option<String>,
}

impl Sample {
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64().max(1e-9)
    }
}

/// What every client of one setting shares.
pub struct LoadPlan<'a> {
    pub mix: &'a Mix,
    pub clients: usize,
    pub keys: usize,
    pub value_size: usize,
    pub warmup: Duration,
    pub window: Duration,
    pub op_timeout: Duration,
    /// Seeds each client's operation sequence.
    pub seed: u64,
}

/// A client name never used before in this process. A store that deduplicates by (client, seq)
/// would answer `stale_seq` to a reused name whose seq starts again at 1.
pub fn client_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A value of exactly `size` bytes that differs per client and operation.
pub fn value(size: usize, client: usize, seq: u64) -> String {
    let mut v = format!("{client}.{seq}.");
    if v.len() > size {
        v.truncate(size);
    } else {
        v.extend(std::iter::repeat_n('x', size - v.len()));
    }
    v
}

/// Runs one setting against `sys`, every client on node `target`.
pub fn run(sys: &Target, target: usize, plan: &LoadPlan) -> Result<Sample> {
    let start = Instant::now();
    let from = start + plan.warmup;
    let until = from + plan.window;
    let results: Vec<Result<Sample>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..plan.clients)
            .map(|c| s.spawn(move || client(sys, target, plan, c, from, until)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a client thread panicked")))
            })
            .collect()
    });
    let mut total = Sample {
        ok: 0,
        errors: 0,
        window: plan.window,
        hist: new_histogram()?,
        first_error: None,
    };
    for r in results {
        let s = r?;
        total.ok += s.ok;
        total.errors += s.errors;
        total
            .hist
            .add(&s.hist)
            .map_err(|e| anyhow!("merging histograms: {e:?}"))?;
        if total.first_error.is_none() {
            total.first_error = s.first_error;
        }
    }
    Ok(total)
}

fn client(
    sys: &Target,
    target: usize,
    plan: &LoadPlan,
    c: usize,
    from: Instant,
    until: Instant,
) -> Result<Sample> {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(plan.seed ^ (c as u64).wrapping_mul(0x9e37));
    let mut out = Sample {
        ok: 0,
        errors: 0,
        window: plan.window,
        hist: new_histogram()?,
        first_error: None,
    };
    let name = client_name("b");
    let endpoint = sys.endpoint(target);
    let mut session: Option<Box<dyn Session>> = None;
    let mut seq = 0u64;
    while Instant::now() < until {
        let key = format!("k{}", rng.random_range(0..plan.keys));
        let op = if rng.random_range(0..100) < plan.mix.read_percent {
            Op::Read { key }
        } else {
            seq += 1;
            Op::Write {
                key,
                value: value(plan.value_size, c, seq),
            }
        };
        let began = Instant::now();
        let deadline = began + plan.op_timeout;
        let s = match &mut session {
            Some(s) => s,
            None => match sys.adapter.connect(&endpoint, deadline) {
                Ok(s) => session.insert(s),
                Err(e) => {
                    note(&mut out, from, until, format!("connect: {e}"));
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        let reply = s.execute(&op, &OpContext::new(name.clone(), seq), deadline);
        let done = Instant::now();
        match reply {
            Reply::Ok { .. } => {
                if done >= from && done <= until {
                    out.ok += 1;
                    let us = done.duration_since(began).as_micros().max(1);
                    out.hist
                        .saturating_record(u64::try_from(us).unwrap_or(u64::MAX));
                }
            }
            other => {
                let e = other.error().unwrap_or("error").to_string();
                note(&mut out, from, until, e);
                // A session whose state is unknown is dropped; the next operation reconnects.
                if matches!(other, Reply::Info { .. } | Reply::NotLeader { .. }) {
                    session = None;
                }
            }
        }
    }
    Ok(out)
}

fn note(out: &mut Sample, from: Instant, until: Instant, e: String) {
    let now = Instant::now();
    if now >= from && now <= until {
        out.errors += 1;
        out.first_error.get_or_insert(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_have_the_asked_size() {
        assert_eq!(value(64, 3, 17).len(), 64);
        assert!(value(64, 3, 17).starts_with("3.17."));
        assert_eq!(value(2, 123, 4567).len(), 2);
        assert_ne!(value(16, 1, 1), value(16, 1, 2));
    }
}
