//! `harness bench`: one load tool for every store, side by side in one run.
//!
//! Each system is started from its spec (without the proxy: nodes and clients use real
//! addresses), driven by the same closed-loop clients through the same adapter trait, and
//! measured setting by setting (clients × mix). Systems take turns within every round
//! (A B A B ...), so a shared machine's drift hits them alike, and ratios to the first system are
//! taken round by round. `--failover kill|stop` measures leader failover the same way instead.
//! `--through-proxy` adds a proxied cluster of every system, to measure the proxy's cost.
//! docs/bench.md documents the options, the method and the output.

pub mod args;
mod cluster;
mod failover;
mod load;
mod stats;

use crate::run::launcher;
use anyhow::{bail, Context, Result};
use args::{BenchConfig, FailoverMode};
use cluster::Running;
use serde_json::json;
use stats::{Latency, RoundResult, Row, Spread};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

pub use args::BenchArgs;

/// Printed after `harness bench --help`.
pub const AFTER_HELP: &str = "\
Every system is started from its spec with nodes talking to each other directly (no proxy) and
clients on the leader's client port. Per round, every setting (clients x mix) runs once per
system in the order given, so drift of a shared machine cancels out of the round-by-round ratios
to the first system. The table gives throughput (median [min..max] over rounds), p50/p95/p99/max
latency of all rounds' acknowledged operations, errors, and the ratios to the first system
(median [min..max] of the per-round ratios).

--through-proxy: every system X also runs as `X+proxy`, wired as `harness run` wires it (peers and
clients through the proxy, no faults), right after X in every round: its ratios give the proxy's
cost.

--failover kill|stop: under a write load of the first --clients count, SIGKILL (SIGSTOP) the
leader and time the first acknowledged write sent after the fault; median over --trials. Each
attempt has --failover-op-timeout (100ms): a store that holds writes to a dead leader until the
client gives up is measured to that resolution. A
store without automatic failover (a fixed primary) is reported as not applicable.

Exit codes: 0 measured, 254 usage error, 255 a system would not start or the run failed.
Node logs: <out>/bench-<UTC time>/<system>/n<i>.log.";

/// Entry point of `harness bench`.
pub fn main(args: BenchArgs) -> ExitCode {
    let cfg = match args.validate() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("harness bench: {e}");
            return ExitCode::from(254);
        }
    };
    install_handlers();
    match execute(&cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("harness bench: {e:#}");
            ExitCode::from(255)
        }
    }
}

/// Ctrl-C, SIGTERM, SIGHUP and a panic in any thread kill every node at once.
fn install_handlers() {
    let handler = || {
        launcher::kill_all();
        eprintln!("harness bench: interrupted: nodes killed");
        std::process::exit(255);
    };
    if let Err(e) = ctrlc::set_handler(handler) {
        eprintln!("harness bench: warning: cannot install the signal handler: {e}");
    }
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        launcher::kill_all();
        default_hook(info);
    }));
}

fn progress(msg: &str) {
    eprintln!("harness bench: {msg}");
}

/// The bench directory: `<out>/bench-<UTC time>[-N]`.
fn bench_dir(cfg: &BenchConfig) -> Result<PathBuf> {
    std::fs::create_dir_all(&cfg.out)
        .with_context(|| format!("creating the output directory {}", cfg.out.display()))?;
    // Nodes run in their own data directories: a relative `--data-dir` (or `--dir`, as Redis
    // reads it) would point below that, to nothing.
    let out = std::path::absolute(&cfg.out)
        .with_context(|| format!("the output directory {}", cfg.out.display()))?;
    let base = format!("bench-{}", crate::run::rundir::utc_stamp(SystemTime::now()));
    for n in 1..1000 {
        let name = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let p = out.join(name);
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", p.display())),
        }
    }
    bail!("no free directory name {base}-N in {}", out.display())
}

fn execute(cfg: &BenchConfig) -> Result<()> {
    let dir = bench_dir(cfg)?;
    let started = SystemTime::now();
    let mut systems: Vec<Running> = Vec::new();
    let clusters = cfg.systems.iter().flat_map(|sys| {
        std::iter::once((sys, false)).chain(cfg.through_proxy.then_some((sys, true)))
    });
    for (i, (sys, proxied)) in clusters.enumerate() {
        let label = if proxied {
            format!("{}+proxy", sys.spec.name)
        } else {
            sys.spec.name.clone()
        };
        // Two systems of the same name (two spec files) still get their own directories.
        let sdir = dir.join(format!("{}-{label}", i + 1));
        std::fs::create_dir_all(&sdir).with_context(|| format!("creating {}", sdir.display()))?;
        progress(&format!(
            "starting {label} ({} node{}) in {}",
            sys.nodes,
            if sys.nodes == 1 { "" } else { "s" },
            sdir.display()
        ));
        let running = cluster::start(
            sys,
            &sdir,
            cfg.node_bin.as_deref(),
            &cfg.node_args,
            cfg.start_timeout,
            proxied,
        )?;
        systems.push(running);
    }
    let (rows, failovers) = match cfg.failover {
        Some(mode) => (Vec::new(), measure_failover(cfg, &mut systems, mode)?),
        None => (measure_load(cfg, &mut systems)?, Vec::new()),
    };
    let system_info: Vec<_> = systems
        .iter()
        .map(|r| {
            json!({"name": r.name, "spec": r.spec_origin, "nodes": r.nodes,
                   "program": r.program, "version": r.version,
                   "through_proxy": r.network.is_some(),
                   "proxy_bytes": r.network.as_ref().map(|n| n.bytes_forwarded())})
        })
        .collect();
    for s in &mut systems {
        s.cluster.shutdown();
    }
    drop(systems);
    if !cfg.keep_data {
        remove_data_dirs(&dir);
    }
    let out = json!({
        "harness": {"version": env!("CARGO_PKG_VERSION")},
        "started": crate::run::rundir::utc_rfc3339(started),
        "command": std::env::args().collect::<Vec<_>>(),
        "dir": dir.display().to_string(),
        "options": {
            "clients": cfg.clients, "mix": cfg.mixes,
            "duration_s": cfg.duration.as_secs_f64(), "warmup_s": cfg.warmup.as_secs_f64(),
            "value_size": cfg.value_size, "keys": cfg.keys, "rounds": cfg.rounds,
            "op_timeout_s": cfg.op_timeout.as_secs_f64(), "failover": cfg.failover,
            "failover_op_timeout_s": cfg.failover_op_timeout.as_secs_f64(), "trials": cfg.trials, "node_args": cfg.node_args,
            "through_proxy": cfg.through_proxy,
        },
        "systems": system_info,
        "results": rows,
        "failover": failovers,
    });
    let text = serde_json::to_string_pretty(&out).context("encoding the results")?;
    let to_stdout = cfg.json.as_deref() == Some(std::path::Path::new("-"));
    if let Some(path) = cfg.json.as_ref().filter(|_| !to_stdout) {
        std::fs::write(path, format!("{text}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    std::fs::write(dir.join("bench.json"), format!("{text}\n"))
        .with_context(|| format!("writing {}", dir.join("bench.json").display()))?;
    if to_stdout {
        println!("{text}");
    } else if cfg.failover.is_some() {
        print!("{}", failover_table(&failovers));
    } else {
        print!("{}", stats::table(&rows));
    }
    progress(&format!("results in {}", dir.join("bench.json").display()));
    Ok(())
}

/// Node data directories are large and of no use after the run; the logs stay.
fn remove_data_dirs(dir: &std::path::Path) {
    let Ok(systems) = std::fs::read_dir(dir) else {
        return;
    };
    for s in systems.flatten() {
        if let Ok(entries) = std::fs::read_dir(s.path()) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
}

/// Writes every key once, so that reads find values of the same size as writes make.
fn populate(cfg: &BenchConfig, sys: &mut Running) -> Result<()> {
    let leader = sys.leader(cfg.start_timeout)?;
    let target = sys.target.clone();
    let writers = 16.min(cfg.keys);
    let deadline = Instant::now() + cfg.start_timeout.max(Duration::from_secs(30));
    std::thread::scope(|s| -> Result<()> {
        let hs: Vec<_> = (0..writers)
            .map(|w| {
                let target = &target;
                s.spawn(move || -> Result<()> {
                    let ctx = load::client_name("pop");
                    let mut session = None;
                    for k in (w..cfg.keys).step_by(writers) {
                        loop {
                            if Instant::now() >= deadline {
                                bail!("could not write key k{k} in time");
                            }
                            let s = match &mut session {
                                Some(s) => s,
                                None => match target.adapter.connect(
                                    &target.endpoint(leader),
                                    Instant::now() + cfg.op_timeout,
                                ) {
                                    Ok(s) => session.insert(s),
                                    Err(_) => {
                                        std::thread::sleep(Duration::from_millis(20));
                                        continue;
                                    }
                                },
                            };
                            let op = adapters::Op::Write {
                                key: format!("k{k}"),
                                value: load::value(cfg.value_size, w, k as u64),
                            };
                            let ctx = adapters::OpContext::new(ctx.clone(), k as u64 + 1);
                            match s.execute(&op, &ctx, Instant::now() + cfg.op_timeout) {
                                adapters::Reply::Ok { .. } => break,
                                _ => session = None,
                            }
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for h in hs {
            h.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a writer panicked")))?;
        }
        Ok(())
    })
    .with_context(|| format!("{}: writing the {} keys", sys.name, cfg.keys))
}

struct Acc {
    rounds: Vec<RoundResult>,
    hist: hdrhistogram::Histogram<u64>,
    errors: u64,
}

fn measure_load(cfg: &BenchConfig, systems: &mut [Running]) -> Result<Vec<Row>> {
    for s in systems.iter_mut() {
        progress(&format!("{}: writing {} keys", s.name, cfg.keys));
        populate(cfg, s)?;
    }
    let settings: Vec<(usize, usize)> = (0..cfg.clients.len())
        .flat_map(|c| (0..cfg.mixes.len()).map(move |m| (c, m)))
        .collect();
    // acc[setting][system]
    let mut acc: Vec<Vec<Acc>> = Vec::new();
    for _ in &settings {
        let mut per = Vec::new();
        for _ in systems.iter() {
            per.push(Acc {
                rounds: Vec::new(),
                hist: load::new_histogram()?,
                errors: 0,
            });
        }
        acc.push(per);
    }
    let total = cfg.rounds * settings.len() * systems.len();
    let mut done = 0;
    for round in 0..cfg.rounds {
        for (si, &(c, m)) in settings.iter().enumerate() {
            for (y, sys) in systems.iter_mut().enumerate() {
                if launcher::shutting_down() {
                    bail!("interrupted");
                }
                let leader = sys.leader(cfg.start_timeout)?;
                let plan = load::LoadPlan {
                    mix: &cfg.mixes[m],
                    clients: cfg.clients[c],
                    keys: cfg.keys,
                    value_size: cfg.value_size,
                    warmup: cfg.warmup,
                    window: cfg.duration,
                    op_timeout: cfg.op_timeout,
                    seed: (round as u64) << 32 | (si as u64) << 8 | y as u64,
                };
                let sample = load::run(&sys.target, leader, &plan)?;
                if let Some((i, how)) = sys.cluster.reap_exited().into_iter().next() {
                    bail!(
                        "{}: node {} exited during the measurement ({how}); see {}",
                        sys.name,
                        sys.cluster.id(i),
                        sys.cluster.spec(i).log.display()
                    );
                }
                done += 1;
                let lat = Latency::of(&sample.hist);
                progress(&format!(
                    "[{done}/{total}] round {} {} {} clients {}: {:.0} ops/s, p50 {} p99 {}, \
                     {} errors{}",
                    round + 1,
                    sys.name,
                    cfg.clients[c],
                    cfg.mixes[m].name,
                    sample.throughput(),
                    stats::us(lat.p50_us),
                    stats::us(lat.p99_us),
                    sample.errors,
                    sample
                        .first_error
                        .as_deref()
                        .map(|e| format!(" (first: {e})"))
                        .unwrap_or_default()
                ));
                let a = &mut acc[si][y];
                a.rounds.push(RoundResult {
                    ops_per_s: sample.throughput(),
                    ok: sample.ok,
                    errors: sample.errors,
                    p50_us: lat.p50_us,
                    p99_us: lat.p99_us,
                });
                a.errors += sample.errors;
                a.hist
                    .add(&sample.hist)
                    .map_err(|e| anyhow::anyhow!("merging histograms: {e:?}"))?;
            }
        }
    }
    let mut rows = Vec::new();
    for (si, &(c, m)) in settings.iter().enumerate() {
        let mut group: Vec<Row> = acc[si]
            .iter()
            .zip(systems.iter())
            .map(|(a, sys)| Row {
                system: sys.name.clone(),
                nodes: sys.nodes,
                clients: cfg.clients[c],
                mix: cfg.mixes[m].name.clone(),
                ops_per_s: Spread::of(&a.rounds.iter().map(|r| r.ops_per_s).collect::<Vec<_>>()),
                rounds: a.rounds.clone(),
                latency: Latency::of(&a.hist),
                errors: a.errors,
                ops_ratio_to_first: None,
                p99_ratio_to_first: None,
            })
            .collect();
        if let Some((first, rest)) = group.split_first_mut() {
            for r in rest {
                r.compare_to(first);
            }
        }
        rows.extend(group);
    }
    Ok(rows)
}

fn measure_failover(
    cfg: &BenchConfig,
    systems: &mut [Running],
    mode: FailoverMode,
) -> Result<Vec<failover::Summary>> {
    let writers = cfg.clients[0];
    let mut trials: Vec<Vec<failover::Trial>> = vec![Vec::new(); systems.len()];
    for t in 0..cfg.trials {
        for (y, sys) in systems.iter_mut().enumerate() {
            if !sys.elects_leader || sys.nodes < 3 {
                continue;
            }
            if launcher::shutting_down() {
                bail!("interrupted");
            }
            let r = failover::trial(sys, mode, writers, cfg.failover_op_timeout, cfg.value_size)
                .with_context(|| format!("{}: failover trial {}", sys.name, t + 1))?;
            progress(&format!(
                "trial {}/{} {}: {} {} -> first acknowledged write after {}",
                t + 1,
                cfg.trials,
                sys.name,
                match mode {
                    FailoverMode::Kill => "SIGKILL",
                    FailoverMode::Stop => "SIGSTOP",
                },
                r.leader,
                r.ms.map(|m| format!("{m:.1} ms"))
                    .unwrap_or_else(|| "none within 30 s".into())
            ));
            trials[y].push(r);
        }
    }
    Ok(systems
        .iter()
        .zip(trials)
        .map(|(sys, ts)| {
            let mut s = failover::Summary::of(&sys.name, mode, ts);
            if !sys.elects_leader {
                s.not_applicable =
                    Some("no automatic failover in the spec (a fixed primary)".into());
            } else if sys.nodes < 3 {
                s.not_applicable = Some(format!("{} node(s): no majority survives", sys.nodes));
            }
            s
        })
        .collect())
}

fn failover_table(rows: &[failover::Summary]) -> String {
    let mut out = format!(
        "{:<12} {:>5} {:>7} {:>11} {:>11} {:>11} {:>8}\n",
        "system", "fault", "trials", "median", "min", "max", "gave up"
    );
    let ms = |v: Option<f64>| v.map(|m| format!("{m:.1}ms")).unwrap_or_else(|| "-".into());
    for r in rows {
        let fault = match r.mode {
            FailoverMode::Kill => "kill",
            FailoverMode::Stop => "stop",
        };
        if let Some(why) = &r.not_applicable {
            out.push_str(&format!(
                "{:<12} {fault:>5} failover does not apply: {why}\n",
                r.system
            ));
            continue;
        }
        out.push_str(&format!(
            "{:<12} {fault:>5} {:>7} {:>11} {:>11} {:>11} {:>8}\n",
            r.system,
            r.trials.len(),
            ms(r.median_ms),
            ms(r.min_ms),
            ms(r.max_ms),
            r.gave_up
        ));
    }
    out
}
