//! `harness run`: start a cluster, run clients against it under a seeded fault schedule, record
//! the history, check it, and leave everything in a run directory.
//!
//! The phases, in order (see docs/architecture.md, "The harness"):
//! 1. validate options (usage errors exit 254); create the run directory, point `latest` at it;
//! 2. start the nodes behind the proxy and wait until each answers `status` (255 if they do not);
//! 3. run the workers for `--time-limit` while the main thread carries out the fault schedule
//!    (the main thread also starts every node: see the launcher on `PR_SET_PDEATHSIG`);
//! 4. stop the workers, heal everything, restart and resume every node, wait for them, keep a
//!    quiet `--recovery` period, then read every key with a fresh client: if a key cannot be
//!    read within `--final-timeout` the cluster did not recover and the run fails (255, unless
//!    the history is already not linearizable: 1); a node that exited on its own or could not
//!    be restarted at any point also fails the run (255 unless the history shows a violation);
//! 5. close the history, finish the check, write result.json, add the outcome to run.json, draw
//!    report.html and the output directory's index.html (`crate::report`), print a summary;
//!    exit 0 / 1 / 2 from the verdict.
//!
//! The history is checked while it is written (`checker::Live`): the progress line shows the
//! verdict so far, and with `--stop-on-violation` phase 3 ends as soon as a violation is certain
//! and phase 4 is skipped (the nodes are killed where they are).
//!
//! Ctrl-C (or SIGTERM, SIGHUP): the nodes are killed at once, the history is closed where it is
//! (operations in flight stay open, i.e. indefinite), checked, and the run exits 1 if that
//! already shows a violation, 255 otherwise. A second Ctrl-C exits 255 immediately.

pub mod args;
mod checker;
mod diskfault;
pub(crate) mod launcher;
mod membership;
mod nemesis;
pub(crate) mod network;
pub(crate) mod probe;
mod progress;
mod proxylog;
mod recorder;
pub(crate) mod rundir;
mod schedule;
mod workload;

use anyhow::{bail, Context, Result};
use args::RunConfig;
use launcher::{Cluster, NodeSpec};
use nemesis::{Active, Nemesis};
use network::Network;
use progress::{say, Progress, Ticker};
use recorder::Recorder;
use rundir::RunDir;
use schedule::Step;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use workload::{Stats, WorkloadConfig};

pub use args::RunArgs;

/// Printed after `harness run --help`.
pub const AFTER_HELP: &str = "\
Run directory: <out>/<UTC time>-seed<seed>/ with run.json (options, seed, versions, node
commands, fault schedule, outcome), history.jsonl, nodes/<id>.log, proxy.log, result.json and
report.html (rebuilt by `harness report DIR`); <out>/index.html lists every run and
<out>/latest points at the newest.

Exit codes: 0 linearizable, 1 not linearizable, 2 unknown (a checker limit was reached),
254 usage error, 255 the run failed (a node would not start, exited when the harness did not
kill it, or could not be restarted; the cluster did not recover for the final reads; or the run
was interrupted without a violation found so far). A violation wins over a failed run (1).

Clients (--client-mode): `bound` (default) sends each operation to the worker's home node first
and follows a not_leader hint for that operation only, so every node on every side of a
partition gets traffic and an old leader's stale reads are seen; `leader` stays on whichever node
answered last (more throughput, blind to that class of bug).

Same seed: the same fault schedule and the same sequence of operation kinds, keys and written
values per worker; not the same interleavings, elections or read results.";

/// Set by Ctrl-C / SIGTERM and by a panic in any thread: wind the run down now.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static SIGNALS: AtomicU32 = AtomicU32::new(0);

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Entry point of `harness run`.
pub fn run(args: RunArgs) -> ExitCode {
    let cfg = match args.validate(rand::random) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("harness run: {e}");
            return ExitCode::from(254);
        }
    };
    install_handlers();
    match execute(&cfg) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            say(&format!("harness run: run failed: {e:#}"));
            ExitCode::from(255)
        }
    }
}

/// Ctrl-C, SIGTERM and SIGHUP kill the nodes and interrupt the run; a panic in any thread does
/// the same before the usual panic message.
fn install_handlers() {
    let handler = || {
        let n = SIGNALS.fetch_add(1, Ordering::SeqCst) + 1;
        launcher::kill_all();
        INTERRUPTED.store(true, Ordering::SeqCst);
        if n == 1 {
            say(
                "harness run: interrupted: nodes killed; closing and checking the history \
                 (interrupt again to exit at once)",
            );
        } else {
            say("harness run: interrupted twice: exiting");
            std::process::exit(255);
        }
    };
    if let Err(e) = ctrlc::set_handler(handler) {
        say(&format!(
            "harness run: warning: cannot install the signal handler: {e}"
        ));
    }
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        launcher::kill_all();
        INTERRUPTED.store(true, Ordering::SeqCst);
        default_hook(info);
    }));
}

/// Sleeps up to `d`, returning early on interrupt.
fn nap(d: Duration) {
    let end = Instant::now() + d;
    while !interrupted() {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(20)));
    }
}

fn node_ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

/// Starts the proxy and the nodes, and waits until every node is ready (per the system spec).
/// Ports come from the OS; if a node exits during startup (a port taken meanwhile, say), the
/// whole start is retried with fresh ports and empty data directories, three times at most.
fn start_cluster(
    cfg: &RunConfig,
    dir: &RunDir,
    adapter: &Arc<dyn adapters::Adapter>,
) -> Result<(Cluster, Network)> {
    let ids = node_ids(cfg.nodes);
    let n = cfg.nodes;
    let spec = &cfg.spec;
    let bin_dir = launcher::bin_dir();
    let bin = spec
        .bin(cfg.node_bin.as_deref(), &bin_dir)
        .context("the system spec's `bin`")?;
    for attempt in 1..=3 {
        if launcher::shutting_down() {
            bail!("interrupted while starting the cluster");
        }
        let ports = launcher::free_ports(2 * n).context("reserving ports")?;
        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let client_listen: Vec<SocketAddr> = ports[..n].iter().map(|&p| addr(p)).collect();
        let peer_listen: Vec<SocketAddr> = if spec.node.shared_port {
            client_listen.clone()
        } else {
            ports[n..].iter().map(|&p| addr(p)).collect()
        };
        let pids: launcher::Pids = Arc::default();
        let net = Network::start(
            &ids,
            &peer_listen,
            &client_listen,
            cfg.clients,
            spec.network.peers,
            &pids,
            cfg.heal,
            cfg.seed,
        )?;
        let all_advertised: Vec<(String, SocketAddr)> = (0..n)
            .filter_map(|j| net.advertised_peer_addr(j).map(|a| (ids[j].clone(), a)))
            .collect();
        let mut specs = Vec::with_capacity(n);
        for (i, id) in ids.iter().enumerate() {
            let data_dir = dir.path.join("nodes").join(id);
            let log = dir.path.join("nodes").join(format!("{id}.log"));
            if attempt > 1 {
                let _ = std::fs::remove_dir_all(&data_dir);
                let _ = std::fs::remove_file(&log);
            }
            let peers: Vec<(String, SocketAddr)> = (0..n)
                .filter(|&j| j != i)
                .filter_map(|j| net.peer_addr(i, j).map(|a| (ids[j].clone(), a)))
                .collect();
            let vars = crate::system::Vars {
                id: id.clone(),
                index: i,
                nodes: n,
                cluster_id: dir.name.clone(),
                client_addr: client_listen[i],
                peer_addr: peer_listen[i],
                advertise_peer_addr: net.advertised_peer_addr(i),
                data_dir: data_dir.clone(),
                bin: bin.clone(),
                bin_dir: bin_dir.clone(),
                spec_dir: spec.dir.clone(),
                peers: peers.clone(),
                all_advertised: all_advertised.clone(),
                peer_scheme: spec.network.peer_scheme.clone(),
            };
            specs.push(NodeSpec {
                id: id.clone(),
                client: client_listen[i],
                peer_listen: peer_listen[i],
                peers,
                argv: spec.argv(&vars, &cfg.node_args)?,
                join_args: spec.join_args(&vars)?,
                env: spec.env(&vars)?,
                workdir: spec.workdir(&vars)?,
                data_dir,
                log,
            });
        }
        let probe = probe::Probe {
            adapter: Arc::clone(adapter),
            ready: spec.ready.check,
            leader: spec.leader.find,
            cluster: dir.name.clone(),
        };
        let mut cluster = Cluster::new(dir.name.clone(), specs, pids, probe);
        if cfg.lazyfs {
            cluster.mount_disks(&dir.path.join("disks"))?;
        }
        let started = (|| -> Result<()> {
            for i in 0..n {
                cluster.spawn(i, "initial start")?;
            }
            let deadline = Instant::now() + cfg.start_timeout;
            for i in 0..n {
                let left = deadline.saturating_duration_since(Instant::now());
                cluster.wait_ready(i, left.max(Duration::from_millis(100)))?;
            }
            Ok(())
        })();
        match started {
            Ok(()) => return Ok((cluster, net)),
            Err(e) => {
                let exited = cluster.crash_count() > 0;
                cluster.shutdown();
                if launcher::shutting_down() {
                    bail!("interrupted while starting the cluster");
                }
                if exited && attempt < 3 {
                    say(&format!(
                        "harness run: start attempt {attempt} failed, retrying with new ports: {e:#}"
                    ));
                    continue;
                }
                return Err(e.context("starting the cluster"));
            }
        }
    }
    bail!("the cluster did not start")
}

/// The whole run; returns the exit code.
fn execute(cfg: &RunConfig) -> Result<u8> {
    let bin = cfg
        .spec
        .bin(cfg.node_bin.as_deref(), &launcher::bin_dir())
        .context("the system spec's `bin`")?;
    let program = match cfg.spec.node.command.first().map(String::as_str) {
        Some("{bin}") => bin.clone(),
        Some(p) => p.to_string(),
        None => String::new(),
    };
    launcher::check_program(&program)?;
    let wall_start = SystemTime::now();
    let dir = RunDir::create(&cfg.out, cfg.seed, wall_start)?;
    dir.mark_latest()?;
    say(&format!(
        "harness run: seed {} ({} {} nodes, {} clients, {} keys, {}, nemesis {}): {}",
        cfg.seed,
        cfg.spec.name,
        cfg.nodes,
        cfg.clients,
        cfg.keys,
        crate::duration::format(cfg.time_limit),
        if cfg.nemesis.is_empty() {
            "none".to_string()
        } else {
            cfg.nemesis
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(",")
        },
        dir.path.display()
    ));
    let steps = schedule::generate(
        cfg.seed,
        cfg.nodes,
        cfg.clients,
        &cfg.nemesis,
        cfg.nemesis_interval,
        cfg.overlap,
        cfg.time_limit,
    );
    let node_version = launcher::node_version(&program);
    let mut run_json = json!({
        "harness": {"version": env!("CARGO_PKG_VERSION")},
        "system": {"name": cfg.spec.name, "spec": cfg.spec.origin,
                   "description": cfg.spec.description},
        "node": {"bin": program, "version": node_version},
        "started": rundir::utc_rfc3339(wall_start),
        "run_dir": dir.name,
        "seed": cfg.seed,
        "replay": args::replay_command(cfg),
        "options": serde_json::to_value(cfg).context("encoding the options")?,
        "clients_connect": "through proxy listeners c<w> -> n<i>, one per worker and node; \
                            identity (node, cluster) checked with status on connect",
        "schedule": serde_json::to_value(&steps).context("encoding the schedule")?,
    });
    let write_run_json = |v: &Value| dir.write_json("run.json", v);
    write_run_json(&run_json)?;

    // The proxy log's clock starts here; the history's when the workers start.
    proxylog::install(&dir.file("proxy.log"), Instant::now())
        .with_context(|| format!("creating {}", dir.file("proxy.log").display()))?;
    let adapter = crate::system::build_adapter(&cfg.spec).context("the system spec's [client]")?;
    let (mut cluster, mut net) = start_cluster(cfg, &dir, &adapter)?;
    run_json["nodes"] = json!((0..cluster.len())
        .map(|i| {
            let s = cluster.spec(i);
            json!({
                "id": s.id,
                "client": s.client.to_string(),
                "peer_listen": s.peer_listen.to_string(),
                "peers": s.peers.iter().map(|(id, a)| (id.clone(), a.to_string()))
                    .collect::<std::collections::BTreeMap<_, _>>(),
                "data_dir": s.data_dir.display().to_string(),
                "log": s.log.display().to_string(),
                "command": cluster.command_line(i),
            })
        })
        .collect::<Vec<_>>());
    write_run_json(&run_json)?;

    // Time zero of the history.
    let start = Instant::now();
    log::info!(target: "proxy::harness", "history time zero (history.jsonl `time` 0)");
    let history_path = dir.file("history.jsonl");
    let live = Arc::new(checker::Live::new(cfg.check_timeout));
    let (rec, writer) = Recorder::create(&history_path, start, Some(Arc::clone(&live)))
        .with_context(|| format!("creating {}", history_path.display()))?;
    let mut recorded = run_workload(
        cfg,
        &mut cluster,
        &mut net,
        &adapter,
        &steps,
        (&rec, &live),
        start,
    )?;
    cluster.shutdown();
    let net_stats = net.stats_json();
    let net_destinations = net.destinations_json();
    let unattributed = net.unattributed();
    let silent_links = if recorded.run_time >= Duration::from_secs(5) && !interrupted() {
        net.silent_node_links()
    } else {
        Vec::new()
    };
    drop(net);
    if !silent_links.is_empty() {
        say(&format!(
            "harness run: WARNING: no connection ever went through the proxy on {} while both \
             nodes ran: those nodes talk some other way (or not at all), and partitions there \
             cut nothing: {}",
            if silent_links.len() == 1 {
                "this link"
            } else {
                "these links"
            },
            silent_links.join(", ")
        ));
    }
    if interrupted() {
        recorded.failure.get_or_insert("interrupted".into());
    }
    let events = writer
        .finish()
        .with_context(|| format!("writing {}", history_path.display()))?;

    say("harness run: finishing the check...");
    let check_start = Instant::now();
    let checked = live.finish(&history_path, cfg.check_timeout);
    let check_time = check_start.elapsed();
    dir.write_json("result.json", &checked.result)?;
    if let Some(html) = &checked.html {
        dir.write("report.html", html.as_bytes())?;
    }

    let code = match (&recorded.failure, checked.verdict) {
        (_, checker::Verdict::NotLinearizable) => 1,
        (Some(_), _) => 255,
        (None, v) => v.exit_code(),
    };
    let r = &recorded;
    // The end of the run, for --stop-on-violation's "how soon": everything is written.
    let ended = start.elapsed();
    let stopped = r.stopped.as_ref().map(|s| {
        json!({
            "key": s.key,
            "violating_op_completed_s": s.op_ns.map(|t| t as f64 / 1e9),
            "detected_s": s.detected.as_secs_f64(),
            "run_ended_s": ended.as_secs_f64(),
            "detected_after_op_s": s.op_ns
                .map(|t| s.detected.as_secs_f64() - t as f64 / 1e9),
            "ended_after_op_s": s.op_ns.map(|t| ended.as_secs_f64() - t as f64 / 1e9),
        })
    });
    let (ok, fail, info) = r.ops;
    let total = ok + fail + info;
    let per_second = total as f64 / r.run_time.as_secs_f64().max(1e-9);
    run_json["outcome"] = json!({
        "exit_code": code,
        "verdict": checked.verdict.name(),
        "failure": r.failure,
        "interrupted": interrupted(),
        "stopped_on_violation": stopped,
        "recovered": r.final_values.is_some(),
        "not_ready_after_recovery": r.not_ready,
        "final_reads": r.final_values.as_ref()
            .map(|v| v.iter().cloned().collect::<serde_json::Map<_, _>>()),
        "ops": {"total": total, "ok": ok, "fail": fail, "info": info,
                "per_second": per_second.round()},
        "events": events,
        "run_seconds": r.run_time.as_secs_f64(),
        "check_seconds": check_time.as_secs_f64(),
        "faults": r.counts,
        "faults_skipped": r.skipped,
        "ops_by_function": by_function_json(&r.by_function),
        "node_failures": r.node_failures,
        "proxy_silent_links": silent_links,
        "node_crashes": r.crashes,
        "node_starts": r.starts,
        "proxy": net_stats,
        "proxy_destinations": net_destinations,
        "proxy_unattributed": unattributed,
    });
    write_run_json(&run_json)?;
    crate::report::after_run(&dir.path);

    // The summary goes to stdout; a closed stdout (`| head`) is not an error.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "ops: {total} in {:.1}s ({per_second:.0}/s): {ok} ok, {fail} fail, {info} info",
        r.run_time.as_secs_f64()
    );
    let _ = writeln!(out, "succeeded: {}", success_line(&r.by_function));
    let _ = writeln!(out, "faults: {}", nemesis::counts_line(&r.counts));
    if !r.skipped.is_empty() {
        let _ = writeln!(
            out,
            "faults skipped: {} (not carried out: targets already down, no leader, another change under way; see run.json)",
            r.skipped.len()
        );
    }
    if r.crashes > 0 {
        let _ = writeln!(out, "node crashes: {} (see nodes/*.log)", r.crashes);
    }
    if unattributed > 0 {
        let _ = writeln!(
            out,
            "WARNING: {unattributed} peer connection(s) could not be attributed to a node and \
             were reset (see proxy.log)"
        );
    }
    if !silent_links.is_empty() {
        let _ = writeln!(
            out,
            "WARNING: proxy links that never carried a connection: {}",
            silent_links.join(", ")
        );
    }
    let _ = writeln!(out, "verdict: {}", checked.summary);
    if let Some(s) = &r.stopped {
        let after = |t: Duration| match s.op_ns {
            Some(op) => format!(
                "{:.2}s after the violating operation completed",
                t.as_secs_f64() - op as f64 / 1e9
            ),
            None => format!("at {:.2}s", t.as_secs_f64()),
        };
        let _ = writeln!(
            out,
            "stopped on violation (key {}): found {}, run ended {}",
            s.key,
            after(s.detected),
            after(ended)
        );
    }
    if let Some(f) = &r.failure {
        let _ = writeln!(out, "run failed: {f}");
    }
    let _ = writeln!(out, "run directory: {}", dir.path.display());
    if dir.file("report.html").is_file() {
        let _ = writeln!(out, "report: {}", dir.file("report.html").display());
    }
    let _ = writeln!(out, "replay: {}", args::replay_command(cfg));
    Ok(code)
}

/// What the workload phase leaves for the report.
struct Recorded {
    run_time: Duration,
    /// ok, fail, info.
    ops: (u64, u64, u64),
    /// Faults started, by kind (and `partition:<shape>`, `kill:<targets>`, ...).
    counts: BTreeMap<String, u64>,
    /// Scheduled faults not carried out, and why.
    skipped: Vec<Value>,
    /// ok / fail / info per function.
    by_function: [[u64; 3]; 3],
    /// Unbidden exits and failed restarts, each naming the node, the time and its log's tail.
    node_failures: Vec<String>,
    crashes: usize,
    starts: Vec<u32>,
    /// Nodes that did not answer `status` after the final recovery.
    not_ready: Vec<String>,
    /// The final read of every key, if they all succeeded.
    final_values: Option<Vec<(String, Value)>>,
    /// Why the run failed, if it did (apart from the verdict).
    failure: Option<String>,
    /// Set when --stop-on-violation ended the run.
    stopped: Option<Stopped>,
}

/// When and where --stop-on-violation stopped the run.
#[derive(Debug, Clone)]
struct Stopped {
    key: String,
    /// History time the violation was seen.
    detected: Duration,
    /// History time (ns) the operation the explanation is about completed.
    op_ns: Option<u64>,
}

impl Stopped {
    fn new(v: &lincheck::stream::Violation, detected: Duration) -> Stopped {
        Stopped {
            key: v.key.clone(),
            detected,
            op_ns: checker::violating_op_time(v),
        }
    }
}

/// Phases 3 and 4: workers and faults for the time limit, then recovery and the final reads.
fn run_workload(
    cfg: &RunConfig,
    cluster: &mut Cluster,
    net: &mut Network,
    adapter: &Arc<dyn adapters::Adapter>,
    steps: &[Step],
    (rec, live): (&Recorder, &Arc<checker::Live>),
    start: Instant,
) -> Result<Recorded> {
    let stats = Arc::new(Stats::default());
    let progress = Arc::new(Progress::default());
    let stop = Arc::new(AtomicBool::new(false));
    let wcfg = WorkloadConfig {
        clients: cfg.clients,
        keys: cfg.keys,
        op_timeout: cfg.op_timeout,
        rate: cfg.rate,
        seed: cfg.seed,
        mode: cfg.client_mode,
        nodes: workload::Nodes {
            ids: (0..cluster.len())
                .map(|i| cluster.id(i).to_string())
                .collect(),
            cluster: cluster.cluster_id().to_string(),
            hint_addrs: (0..cluster.len())
                .flat_map(|i| {
                    let mut a = vec![(cluster.spec(i).client.to_string(), i)];
                    if let Some(p) = net.advertised_peer_addr(i) {
                        a.push((p.to_string(), i));
                    }
                    a
                })
                .collect(),
            updates_to: (cfg.spec.leader.find == crate::system::LeaderFind::First).then_some(0),
            adapter: Arc::clone(adapter),
        },
        addrs: (0..cfg.clients).map(|w| net.client_addrs(w)).collect(),
        final_addrs: net.final_client_addrs(),
    };
    let workers = workload::spawn_workers(&wcfg, rec, &stats, &stop)
        .context("starting the client workers")?;
    progress.set_checker(Arc::clone(live));
    let ticker = Ticker::start(Arc::clone(&progress), Arc::clone(&stats), start);
    progress.set_phase("running");
    let mut nem = Nemesis::new(cluster, net, rec, &progress);
    nem.membership = cfg.nemesis.contains(&args::FaultKind::Membership);
    let mut reported = false;
    let mut violation_seen = || {
        let v = live.violation()?;
        if !reported {
            reported = true;
            say(&format!(
                "harness run: VIOLATION at {:.1}s: {}{}",
                start.elapsed().as_secs_f64(),
                v.summary(),
                if cfg.stop_on_violation {
                    "; stopping (--stop-on-violation)"
                } else {
                    " (the run goes on; --stop-on-violation ends it)"
                }
            ));
        }
        cfg.stop_on_violation
            .then(|| Stopped::new(&v, start.elapsed()))
    };
    let (active, stopped) =
        drive_faults(&mut nem, steps, start, cfg.time_limit, &mut violation_seen);
    let run_time = start.elapsed();
    stop.store(true, Ordering::SeqCst);
    // With --stop-on-violation, nothing after this point matters to the verdict: no recovery,
    // no final reads; the nodes are killed as they are.
    let winding_down = interrupted() || stopped.is_some();

    // Recovery: heal everything while the workers finish their last operations.
    if !winding_down {
        progress.set_phase("recovering");
        for a in active {
            nem.stop(a);
        }
        nem.heal_everything();
    }
    let mut failure = None;
    let mut last_process = 0;
    for h in workers {
        match h.join() {
            Ok(r) => last_process = last_process.max(r.last_process),
            Err(_) => failure = Some("a client worker panicked".to_string()),
        }
    }
    let ops = stats.snapshot();
    let mut not_ready = Vec::new();
    let mut final_values = None;
    if !winding_down {
        not_ready = wait_all_ready(nem.cluster, cfg.final_timeout);
        progress.set_phase("quiet");
        nap(cfg.recovery);
        progress.set_phase("final reads");
        let deadline = Instant::now() + cfg.final_timeout;
        match workload::final_reads(&wcfg, rec, last_process + 1, deadline, &INTERRUPTED) {
            Ok(v) => final_values = Some(v),
            Err(_) if interrupted() => {}
            Err(e) => {
                failure.get_or_insert(format!("the cluster did not recover: {e}"));
            }
        }
    }
    nem.notice_crashes();
    ticker.stop();
    // A node that crashed or would not come back is a finding: the run fails (255) unless the
    // history shows a violation, which wins (1).
    if let Some(first) = nem.failures.first() {
        let more = nem.failures.len() - 1;
        failure = Some(if more > 0 {
            format!("{first}\n(and {more} more node failure(s): see run.json)")
        } else {
            first.clone()
        });
    } else if let (None, Some(first)) = (&failure, not_ready.first()) {
        failure = Some(format!("a node did not come back after recovery: {first}"));
    }
    // A history in which nothing took effect checks as linearizable and proves nothing (`harness
    // check` refuses it too): the run failed. The final reads count: they are in the history.
    if ops.0 == 0 && final_values.is_none() && !winding_down {
        failure.get_or_insert("no operation succeeded: nothing was checked".to_string());
    }
    Ok(Recorded {
        run_time,
        ops,
        counts: nem.counts.clone(),
        skipped: nem.skipped.clone(),
        by_function: stats.by_function(),
        node_failures: nem.failures.clone(),
        crashes: nem.cluster.crash_count(),
        starts: nem.cluster.starts(),
        not_ready,
        final_values,
        failure,
        stopped,
    })
}

/// Carries out the schedule until the time limit, an interrupt, or `stop_now` says to stop;
/// returns the faults still in force and what `stop_now` said.
fn drive_faults(
    nem: &mut Nemesis,
    steps: &[Step],
    start: Instant,
    time_limit: Duration,
    stop_now: &mut dyn FnMut() -> Option<Stopped>,
) -> (Vec<Active>, Option<Stopped>) {
    let mut pending = steps.iter().peekable();
    let mut active: Vec<(Active, Duration)> = Vec::new();
    while start.elapsed() < time_limit && !interrupted() {
        if let Some(s) = stop_now() {
            return (active.into_iter().map(|(a, _)| a).collect(), Some(s));
        }
        nem.notice_crashes();
        nem.poll_membership(false);
        let now = start.elapsed();
        let (due, rest): (Vec<_>, Vec<_>) =
            active.into_iter().partition(|(_, until)| now >= *until);
        active = rest;
        for (a, _) in due {
            nem.stop(a);
        }
        while let Some(step) = pending.next_if(|s| now >= s.at) {
            if let Some(a) = nem.start(step) {
                active.push((a, step.at + step.hold));
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    (active.into_iter().map(|(a, _)| a).collect(), None)
}

/// ok / fail / info per function, for run.json.
fn by_function_json(by_f: &[[u64; 3]; 3]) -> Value {
    let m: serde_json::Map<String, Value> = workload::FUNCTIONS
        .iter()
        .zip(by_f)
        .map(|(f, [ok, fail, info])| (f.to_string(), json!({"ok": ok, "fail": fail, "info": info})))
        .collect();
    Value::Object(m)
}

/// `read 97% ok, write 88% ok, cas 41% ok (of 1200)`: the share of each function that succeeded.
fn success_line(by_f: &[[u64; 3]; 3]) -> String {
    workload::FUNCTIONS
        .iter()
        .zip(by_f)
        .map(|(f, [ok, fail, info])| {
            let total = ok + fail + info;
            let pct = if total == 0 {
                0.0
            } else {
                100.0 * *ok as f64 / total as f64
            };
            format!("{f} {pct:.0}% of {total}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits until every node answers `status` (`timeout` in all); returns the complaints.
fn wait_all_ready(cluster: &mut Cluster, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut not_ready = Vec::new();
    for i in 0..cluster.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(e) = cluster.wait_ready(i, left.max(Duration::from_millis(100))) {
            not_ready.push(format!("{e:#}"));
        }
    }
    if !not_ready.is_empty() {
        say(&format!(
            "harness run: after recovery: {}",
            not_ready.join("; ")
        ));
    }
    not_ready
}
