//! Running a campaign: the main loop that starts runs (each a `harness run` child process, at
//! most --parallel at once), reaps them, re-runs violations, prunes passing runs, rewrites
//! campaign.json after every run, and ends with the summary, the JUnit file and the exit code.

use super::args::{command_line, describe_params, format_size, CampaignOpts, Plan, RunSpec};
use super::children::{self, Flight};
use super::disk;
use super::progress::Display;
use super::record::{self, Counts, ReplayRecord, RunRecord, Status};
use super::report::{self, relative_to, utc_rfc3339, CampaignFile};
use anyhow::{Context, Result};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

/// Entry point of `harness campaign`.
pub fn main(opts: CampaignOpts) -> ExitCode {
    let plan = match Plan::new(&opts, rand::random) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("harness campaign: {e}");
            return ExitCode::from(254);
        }
    };
    if opts.dry_run {
        dry_run(&plan);
        return ExitCode::SUCCESS;
    }
    children::install_handlers();
    match execute(&plan) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("harness campaign: {e:#}");
            ExitCode::from(255)
        }
    }
}

/// `--dry-run`: the runs, their parameters and command lines.
fn dry_run(plan: &Plan) {
    const SHOWN: usize = 1000;
    println!(
        "# seed base {}, {} matrix cell(s), {}",
        plan.seed_base,
        plan.matrix.cells(),
        match plan.total() {
            Some(n) => format!("{n} run(s)"),
            None => format!("unbounded (--duration): the first {SHOWN} shown"),
        }
    );
    for index in plan.indices().take(SHOWN) {
        let spec = plan.spec(index);
        let params: Vec<(&String, &String)> = spec.params.iter().map(|(k, v)| (k, v)).collect();
        println!(
            "r{index} seed={} {}: {}",
            spec.seed,
            describe_params(params),
            command_line(&plan.argv(&spec, &plan.run_out(index, false)))
        );
    }
}

/// A run in flight.
struct Job {
    spec: RunSpec,
    /// For a replay: the position of the original run's record.
    replay_of: Option<usize>,
    out: PathBuf,
    argv: Vec<String>,
    started: Instant,
    started_wall: SystemTime,
}

/// Why the campaign stopped before doing every run.
#[derive(Debug, Clone)]
enum Stop {
    Interrupted,
    OnFailure(String),
    LowDisk(String),
    CannotStart(String),
}

impl Stop {
    fn text(&self) -> String {
        match self {
            Stop::Interrupted => "interrupted (Ctrl-C or a termination signal)".into(),
            Stop::OnFailure(s) => format!("stop-on-failure: {s}"),
            Stop::LowDisk(s) => format!("low disk space: {s}"),
            Stop::CannotStart(s) => format!("could not start a run: {s}"),
        }
    }

    /// Whether stopping here leaves the campaign incomplete in a way that must fail it
    /// (stop-on-failure only follows a failing run, which decides the exit code by itself).
    fn incomplete(&self) -> bool {
        !matches!(self, Stop::OnFailure(_))
    }
}

struct Campaign<'a> {
    plan: &'a Plan,
    started_wall: SystemTime,
    records: Vec<RunRecord>,
    replays: VecDeque<usize>,
    stopped: Option<Stop>,
    kept_passing: u64,
    pruned: u64,
    freed: u64,
    display: Display,
    /// Position in the shard's sequence of runs, for `[3/10]`.
    done: u64,
}

impl Campaign<'_> {
    fn counts(&self) -> Counts {
        Counts::of(&self.records)
    }

    fn file(&self, state: &str) -> CampaignFile {
        let plan = self.plan;
        let counts = self.counts();
        let incomplete = self
            .stopped
            .as_ref()
            .filter(|s| s.incomplete())
            .map(Stop::text);
        let mut runs = self.records.clone();
        runs.sort_by_key(|r| r.index);
        let (exit_code, explanation) =
            record::verdict(&runs, incomplete.as_deref(), plan.allow_unknown);
        CampaignFile {
            format: report::FORMAT.into(),
            version: report::VERSION,
            harness_version: env!("CARGO_PKG_VERSION").into(),
            state: state.into(),
            started: utc_rfc3339(self.started_wall),
            finished: (state == "finished").then(|| utc_rfc3339(SystemTime::now())),
            elapsed_seconds: self.display.elapsed().as_secs_f64(),
            seed_base: plan.seed_base,
            runs_requested: plan.runs,
            duration: plan.duration.map(crate::duration::format),
            shard: plan.shard,
            matrix: plan.matrix.dims().to_vec(),
            cells: plan.matrix.cells(),
            run_options: plan.run_options.clone(),
            parallel: plan.parallel,
            allow_unknown: plan.allow_unknown,
            replay_violations: plan.replay,
            keep_passing: plan.keep_passing,
            stopped: self.stopped.as_ref().map(Stop::text),
            runs_not_started: plan
                .total()
                .map(|t| t.saturating_sub(self.records.len() as u64)),
            counts,
            pruned: self.pruned,
            exit_code,
            explanation,
            merged_from: Vec::new(),
            shards_missing: Vec::new(),
            runs,
        }
    }

    fn save(&self, state: &str) {
        if let Err(e) = self.file(state).write(&self.plan.dir) {
            self.display
                .println(&format!("harness campaign: warning: {e:#}"));
        }
        if let Err(e) = crate::report::write_index(&self.plan.dir) {
            self.display
                .println(&format!("harness campaign: warning: {e:#}"));
        }
    }

    fn warn(&self, msg: String) {
        self.display
            .println(&format!("harness campaign: warning: {msg}"));
    }

    /// Reads what a finished run left and files it.
    fn finish(&mut self, job: Job, code: Option<i32>) {
        let plan = self.plan;
        let status = Status::from_exit(code, children::interrupted());
        let facts = record::read_facts(&job.out, status);
        let seconds = job.started.elapsed().as_secs_f64();
        let rel = |p: &PathBuf| relative_to(&plan.dir, p).display().to_string();
        let run_dir = facts.run_dir.as_ref().map(rel);
        let shown_dir = |pruned: bool| match (&facts.run_dir, pruned) {
            (_, true) => "pruned".to_string(),
            (Some(d), false) => d.display().to_string(),
            (None, false) => job.out.display().to_string(),
        };
        if let Some(pos) = job.replay_of {
            if status == Status::Linearizable {
                if let Some(d) = &facts.run_dir {
                    if let Err(e) = disk::cap_node_logs(d, plan.node_log_cap) {
                        self.warn(format!("{e:#}"));
                    }
                }
            }
            let Some(orig) = self.records.get_mut(pos) else {
                return;
            };
            orig.reproduced = match status {
                Status::Interrupted => None,
                s => Some(s == Status::NotLinearizable),
            };
            orig.replay = Some(ReplayRecord {
                status,
                exit_code: code,
                seconds,
                ops: facts.ops,
                explanation: facts.explanation.clone(),
                run_dir,
            });
            let line = format!(
                "r{} seed {} replay: {} ({}), {seconds:.1}s, {}",
                orig.index,
                orig.seed,
                match orig.reproduced {
                    Some(true) => "reproduced",
                    Some(false) => "not reproduced",
                    None => "interrupted",
                },
                status.name(),
                shown_dir(false)
            );
            self.display.println(&line);
            self.save("running");
            return;
        }
        let mut pruned = false;
        if status == Status::Linearizable {
            if self.kept_passing < plan.keep_passing {
                self.kept_passing += 1;
                if let Some(d) = &facts.run_dir {
                    if let Err(e) = disk::cap_node_logs(d, plan.node_log_cap) {
                        self.warn(format!("{e:#}"));
                    }
                }
            } else {
                match disk::prune(&job.out) {
                    Ok(bytes) => {
                        pruned = true;
                        self.pruned += 1;
                        self.freed += bytes;
                    }
                    Err(e) => self.warn(format!("{e:#}")),
                }
            }
        }
        let rec = RunRecord {
            index: job.spec.index,
            seed: job.spec.seed,
            cell: job.spec.cell,
            params: job.spec.params.iter().cloned().collect::<BTreeMap<_, _>>(),
            status,
            exit_code: code,
            started: utc_rfc3339(job.started_wall),
            seconds,
            ops: facts.ops,
            faults: facts.faults.clone(),
            explanation: facts.explanation.clone(),
            run_dir,
            pruned,
            replay_command: facts
                .replay_command
                .clone()
                .unwrap_or_else(|| command_line(&job.argv)),
            reproduced: None,
            replay: None,
        };
        self.done += 1;
        let of = plan
            .total()
            .map(|t| format!("[{}/{t}]", self.done))
            .unwrap_or_else(|| format!("[{}]", self.done));
        let params: Vec<(&String, &String)> = job.spec.params.iter().map(|(k, v)| (k, v)).collect();
        let mut line = format!(
            "{of} r{} seed {}{}: {}, {} ops, faults {}, {seconds:.1}s, {}",
            rec.index,
            rec.seed,
            if params.is_empty() {
                String::new()
            } else {
                format!(" {}", describe_params(params))
            },
            status.name(),
            rec.ops.map(|o| o.to_string()).unwrap_or_else(|| "-".into()),
            report::faults_line(&rec.faults),
            shown_dir(pruned)
        );
        if let Some(e) = rec.explanation.as_deref().and_then(|e| e.lines().next()) {
            line.push_str(&format!("\n    {e}"));
        }
        self.display.println(&line);
        if status == Status::NotLinearizable && plan.replay && !children::interrupted() {
            self.replays.push_back(self.records.len());
        }
        if rec.fails(plan.allow_unknown) && plan.stop_on_failure && self.stopped.is_none() {
            self.stopped = Some(Stop::OnFailure(format!(
                "r{} seed {} was {}",
                rec.index,
                rec.seed,
                status.name()
            )));
        }
        self.records.push(rec);
        self.save("running");
    }

    /// Whether a run may start now; sets `stopped` when the disk is too full.
    fn disk_ok(&mut self) -> bool {
        match disk::free_bytes(&self.plan.dir) {
            Ok(free) if free < self.plan.min_free => {
                self.stopped = Some(Stop::LowDisk(format!(
                    "{} free on the file system of {}, below --min-free {}; no further run \
                     started",
                    format_size(free),
                    self.plan.dir.display(),
                    format_size(self.plan.min_free)
                )));
                false
            }
            Ok(_) => true,
            Err(e) => {
                self.warn(format!("cannot check free space: {e:#}"));
                true
            }
        }
    }
}

/// The whole campaign; returns the exit code.
fn execute(plan: &Plan) -> Result<u8> {
    let exe = std::env::current_exe().context("finding the harness executable")?;
    let runs_dir = plan.dir.join("runs");
    std::fs::create_dir_all(&runs_dir)
        .with_context(|| format!("creating {}", runs_dir.display()))?;
    let start = Instant::now();
    let deadline = plan.duration.map(|d| start + d);
    eprintln!(
        "harness campaign: {}, seed base {}, {} matrix cell(s), {} at a time: {}",
        match (plan.total(), plan.shard, plan.duration) {
            (Some(t), Some(s), _) => format!("{t} run(s) (shard {}/{})", s.index, s.count),
            (Some(t), None, None) => format!("{t} run(s)"),
            (Some(t), None, Some(d)) =>
                format!("{t} run(s) at most, for {}", crate::duration::format(d)),
            (None, _, Some(d)) => format!("runs for {}", crate::duration::format(d)),
            (None, _, None) => "runs".into(),
        },
        plan.seed_base,
        plan.matrix.cells(),
        plan.parallel,
        plan.dir.display()
    );
    let mut c = Campaign {
        plan,
        started_wall: SystemTime::now(),
        records: Vec::new(),
        replays: VecDeque::new(),
        stopped: None,
        kept_passing: 0,
        pruned: 0,
        freed: 0,
        display: Display::new(plan.total(), deadline),
        done: 0,
    };
    c.save("running");
    let mut flight: Flight<Job> = Flight::new();
    let mut next = plan.indices().peekable();
    let past_deadline = || deadline.is_some_and(|d| Instant::now() >= d);
    let mut note = String::new();
    loop {
        // Reap the runs that ended.
        let mut i = 0;
        while i < flight.running.len() {
            match flight.running[i].0.try_wait() {
                Ok(Some(status)) => {
                    let (child, job) = flight.running.swap_remove(i);
                    children::forget(child.id());
                    c.finish(job, status.code());
                }
                Ok(None) => i += 1,
                Err(e) => {
                    c.warn(format!("waiting for a run: {e}"));
                    i += 1;
                }
            }
        }
        if children::interrupted() {
            for (status, job) in flight.kill_and_reap() {
                c.finish(job, status.and_then(|s| s.code()));
            }
            c.stopped = Some(Stop::Interrupted);
            c.replays.clear();
            break;
        }
        // Start runs: replays first, then the next index.
        while flight.running.len() < plan.parallel {
            let may_start_new = c.stopped.is_none() && !past_deadline() && next.peek().is_some();
            let stop_blocks_replay = matches!(
                c.stopped,
                Some(Stop::LowDisk(_) | Stop::CannotStart(_) | Stop::Interrupted)
            );
            let replay = (!stop_blocks_replay)
                .then(|| c.replays.front().copied())
                .flatten();
            if replay.is_none() && !may_start_new {
                break;
            }
            if !c.disk_ok() {
                c.display.println(&format!(
                    "harness campaign: stopping: {}",
                    c.stopped.as_ref().map(Stop::text).unwrap_or_default()
                ));
                break;
            }
            let (spec, replay_of) = match replay {
                Some(pos) => {
                    c.replays.pop_front();
                    let Some(orig) = c.records.get(pos) else {
                        continue;
                    };
                    note = format!("replaying seed {}", orig.seed);
                    (plan.spec(orig.index), Some(pos))
                }
                None => match next.next() {
                    Some(index) => (plan.spec(index), None),
                    None => break,
                },
            };
            let out = plan.run_out(spec.index, replay_of.is_some());
            if let Err(e) = std::fs::create_dir_all(&out) {
                c.stopped = Some(Stop::CannotStart(format!(
                    "creating {}: {e}",
                    out.display()
                )));
                break;
            }
            let argv = plan.argv(&spec, &out);
            let job = Job {
                spec,
                replay_of,
                out: out.clone(),
                argv: argv.clone(),
                started: Instant::now(),
                started_wall: SystemTime::now(),
            };
            match children::spawn(&exe, &argv, &out.join("harness.log")) {
                Ok(child) => flight.running.push((child, job)),
                Err(_) if children::interrupted() => break,
                Err(e) => {
                    c.stopped = Some(Stop::CannotStart(format!("{e:#}")));
                    break;
                }
            }
        }
        let more = !c.replays.is_empty()
            || (c.stopped.is_none() && !past_deadline() && next.peek().is_some());
        if flight.running.is_empty() && (!more || c.stopped.as_ref().is_some_and(Stop::incomplete))
        {
            break;
        }
        if flight.running.iter().all(|(_, j)| j.replay_of.is_none()) {
            note.clear();
        }
        c.display.update(&c.counts(), flight.running.len(), &note);
        std::thread::sleep(Duration::from_millis(50));
    }
    c.display.finish();
    let file = c.file("finished");
    file.write(&plan.dir)?;
    if let Some(j) = &plan.junit {
        super::junit::write(&file, &plan.dir, j)?;
    }
    let mut out = std::io::stdout().lock();
    report::print_summary(&file, &plan.dir, &mut out);
    if c.freed > 0 {
        use std::io::Write;
        let _ = writeln!(
            out,
            "pruning freed {} ({} passing run directories beyond --keep-passing {})",
            format_size(c.freed),
            c.pruned,
            plan.keep_passing
        );
    }
    if let Some(j) = &plan.junit {
        use std::io::Write;
        let _ = writeln!(out, "junit: {}", j.display());
    }
    Ok(file.exit_code)
}
