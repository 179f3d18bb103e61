//! `harness campaign` options (clap), and the validated [`Plan`]: which runs this campaign (or
//! shard) does, with which seed, matrix cell and `harness run` command line.
//!
//! Run options reach every run in one of two ways: `--time-limit` (a campaign option, since every
//! campaign sets it) and everything after `--`, passed to `harness run` as written. A matrix
//! dimension is any `harness run` option name. `--seed` and `--out` belong to the campaign
//! (`--seed-base`, `--out`), and an option may not be both a matrix dimension and a fixed run
//! option: both are usage errors, found before anything starts, as is any combination of options
//! that `harness run` itself would refuse.

use super::matrix::Matrix;
use crate::duration;
use crate::run::args::{shell_quote, UsageError};
use crate::run::RunArgs;
use clap::{parser::ValueSource, FromArgMatches};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `harness campaign` and `harness campaign merge`.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true, after_help = AFTER_HELP)]
pub struct CampaignArgs {
    #[command(subcommand)]
    pub command: Option<CampaignCommand>,
    #[command(flatten)]
    pub opts: CampaignOpts,
}

/// Printed after `harness campaign --help`.
pub const AFTER_HELP: &str = "\
Run options: everything after `--` is passed to every `harness run` as written, e.g.
  harness campaign --runs 50 --time-limit 30s --matrix nodes=3,5 -- --node-bin ./mykv --clients 5
(`--seed` and `--out` are the campaign's: --seed-base, --out.)

Matrix: --matrix NAME=VALUES, NAME any `harness run` option. Values are separated by `,`, or by
`|` when the list holds a `|`: nemesis=partition,kill,all is three values; nemesis=pause,kill|all
is two (`pause,kill` and `all`); nemesis=pause,kill| is one. Repeat --matrix for more dimensions.
Run r gets seed seed-base + r and matrix cell r mod cells (the last dimension varies fastest).

Exit codes: 1 if any run found a violation; else 255 if any run failed (a node crashed, a
cluster never came up), was interrupted, or the campaign stopped early (Ctrl-C, low disk);
else 2 if any run was unknown (0 with --allow-unknown); else 0. 254: usage error.

Files: <out>/campaign.json (docs/campaign.md), <out>/runs/r<index>/ (each run's --out, with
harness.log, the run's own output), <out>/runs/r<index>-replay/ (the re-run of a violation).";

/// Subcommands of `harness campaign`.
#[derive(clap::Subcommand, Debug)]
pub enum CampaignCommand {
    /// Merge shard directories (each holding a campaign.json) into one summary, one
    /// campaign.json and one JUnit file; exits with the merged campaign's code.
    Merge(MergeArgs),
}

/// Options of `harness campaign merge`.
#[derive(clap::Args, Debug, Clone)]
pub struct MergeArgs {
    /// Shard (or whole campaign) directories, each holding a campaign.json.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Where the merged campaign.json is written (created if missing).
    #[arg(long, default_value = "campaign-merged")]
    pub out: PathBuf,
    /// Also write a JUnit XML file: one test case per run of every shard.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Unknown runs do not fail the merged campaign (also inherited when every shard had it).
    #[arg(long)]
    pub allow_unknown: bool,
}

/// Options of a campaign.
#[derive(clap::Args, Debug, Clone)]
pub struct CampaignOpts {
    /// Number of runs in the whole campaign (all shards together). Default 10, or unlimited
    /// with --duration; with both, the campaign stops at whichever comes first.
    #[arg(long)]
    pub runs: Option<u64>,
    /// Start no new run after this long (e.g. 8h); runs in flight finish.
    #[arg(long, value_parser = duration::parse)]
    pub duration: Option<Duration>,
    /// A matrix dimension, NAME=VALUES with NAME a `harness run` option (repeatable; several
    /// may follow one --matrix). Values are separated by `,`, or by `|` if there is one.
    #[arg(long, value_name = "NAME=VALUES", num_args = 1.., action = clap::ArgAction::Append)]
    pub matrix: Vec<String>,
    /// `--time-limit` of every run (the `harness run` default, 30s, when absent).
    #[arg(long, value_parser = duration::parse)]
    pub time_limit: Option<Duration>,
    /// Run r gets seed seed-base + r. Random when absent (printed, in campaign.json); required
    /// with --shard, so that every shard draws the same seeds.
    #[arg(long)]
    pub seed_base: Option<u64>,
    /// Runs (clusters) at once. Each run picks its own free ports.
    #[arg(long, default_value_t = 1)]
    pub parallel: usize,
    /// Run only the runs whose index is i mod n (0 <= i < n); merge the shard directories with
    /// `harness campaign merge`.
    #[arg(long, value_name = "i/n", value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// Start no new run after the first run that fails the campaign; runs in flight finish.
    #[arg(long)]
    pub stop_on_failure: bool,
    /// Keep the directories of this many passing runs (the first to finish); later passing
    /// runs are deleted once done (their line stays in the summary and campaign.json).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub keep_passing: u64,
    /// Truncate each nodes/*.log of a kept passing run to its last SIZE (K, M, G: binary
    /// units; 0: no limit). Logs of failing runs are never cut.
    #[arg(long, default_value = "8M", value_parser = parse_size, value_name = "SIZE")]
    pub node_log_cap: u64,
    /// Start no run while the file system of --out has less than SIZE free; the campaign ends
    /// there, with exit code 255.
    #[arg(long, default_value = "1G", value_parser = parse_size, value_name = "SIZE")]
    pub min_free: u64,
    /// Also write a JUnit XML file: one test case per run.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// The campaign directory (default campaigns/<UTC time>-seed<seed-base>); must not already
    /// hold a campaign.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Unknown runs (a checker limit was reached) do not fail the campaign.
    #[arg(long)]
    pub allow_unknown: bool,
    /// Do not re-run a seed that found a violation.
    #[arg(long)]
    pub no_replay: bool,
    /// Print the runs this campaign (or shard) would do, with their command lines, and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// Options for every `harness run`, after `--`.
    #[arg(last = true, value_name = "RUN OPTIONS", allow_hyphen_values = true)]
    pub run_args: Vec<String>,
}

/// `--shard i/n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    let err = || format!("invalid shard {s:?}: expected i/n with 0 <= i < n, e.g. 0/4");
    let (i, n) = s.split_once('/').ok_or_else(err)?;
    let index: u64 = i.trim().parse().map_err(|_| err())?;
    let count: u64 = n.trim().parse().map_err(|_| err())?;
    if count == 0 || index >= count {
        return Err(err());
    }
    Ok(Shard { index, count })
}

/// A size: bytes, or a number with K, M, G or T (binary units; `KiB`, `MB` and so on read the
/// same).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?}: expected e.g. 512K, 8M, 1G"))?;
    let unit = unit.trim().to_ascii_uppercase();
    let unit = unit
        .strip_suffix("IB")
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(&unit);
    let scale: f64 = match unit {
        "" => 1.0,
        "K" => 1024.0,
        "M" => 1024.0 * 1024.0,
        "G" => 1024.0 * 1024.0 * 1024.0,
        "T" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("invalid size unit in {s:?}: expected K, M, G or T")),
    };
    let bytes = n * scale;
    if !(0.0..1.8e19).contains(&bytes) {
        return Err(format!("size {s:?} is out of range"));
    }
    Ok(bytes as u64)
}

/// `8.0 MiB`, for messages.
pub fn format_size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// One run of the campaign: index, seed and matrix cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    pub index: u64,
    pub seed: u64,
    pub cell: u64,
    /// The cell's values, in matrix order.
    pub params: Vec<(String, String)>,
}

/// A validated campaign.
#[derive(Debug, Clone)]
pub struct Plan {
    pub seed_base: u64,
    pub matrix: Matrix,
    /// Options given to every run (`--time-limit` first, if the campaign set it).
    pub run_options: Vec<String>,
    pub runs: Option<u64>,
    pub duration: Option<Duration>,
    pub shard: Option<Shard>,
    pub parallel: usize,
    pub stop_on_failure: bool,
    pub keep_passing: u64,
    pub node_log_cap: u64,
    pub min_free: u64,
    pub junit: Option<PathBuf>,
    /// The campaign directory (absolute).
    pub dir: PathBuf,
    pub allow_unknown: bool,
    pub replay: bool,
}

/// Runs when neither --runs nor --duration is given.
pub const DEFAULT_RUNS: u64 = 10;

/// clap's view of `harness run`'s options, to check run options without running anything.
fn run_command() -> clap::Command {
    <RunArgs as clap::Args>::augment_args(clap::Command::new("harness run").no_binary_name(true))
}

fn parse_run_args(argv: &[String]) -> Result<(clap::ArgMatches, RunArgs), String> {
    let matches = run_command()
        .try_get_matches_from(argv)
        .map_err(|e| e.render().to_string().trim().to_string())?;
    let args = RunArgs::from_arg_matches(&matches).map_err(|e| e.to_string())?;
    Ok((matches, args))
}

impl Plan {
    /// Validates the options: every usage error shows here, before anything runs.
    pub fn new(o: &CampaignOpts, random_seed: impl FnOnce() -> u64) -> Result<Plan, UsageError> {
        let usage = |m: String| Err(UsageError(m));
        if o.parallel == 0 || o.parallel > 64 {
            return usage("--parallel must be between 1 and 64".into());
        }
        if o.runs == Some(0) {
            return usage("--runs must be at least 1".into());
        }
        if o.duration.is_some_and(|d| d.is_zero()) {
            return usage("--duration must be positive".into());
        }
        if o.shard.is_some() && o.seed_base.is_none() {
            return usage(
                "--shard needs --seed-base, so that every shard draws the same seeds \
                 (e.g. --seed-base $(date +%Y%m%d)0000 in every shard)"
                    .into(),
            );
        }
        let matrix = Matrix::parse(&o.matrix)?;
        // The fixed run options, checked by clap's own definition of `harness run`.
        let (given, _) = parse_run_args(&o.run_args)
            .map_err(|e| UsageError(format!("run options after `--`: {e}")))?;
        let set_by_user = |id: &str| {
            given.ids().any(|i| {
                i.as_str() == id && given.value_source(id) == Some(ValueSource::CommandLine)
            })
        };
        for (id, instead) in [("seed", "--seed-base"), ("out", "the campaign's --out")] {
            if set_by_user(id) {
                return usage(format!(
                    "run options after `--`: --{id} is set by the campaign (use {instead})"
                ));
            }
        }
        let mut run_options = Vec::new();
        if let Some(t) = o.time_limit {
            if set_by_user("time_limit") || matrix.has("time-limit") {
                return usage(
                    "--time-limit is given twice (as a campaign option and after `--` or in \
                     --matrix)"
                        .into(),
                );
            }
            run_options.push(format!("--time-limit={}", duration::format(t)));
        }
        run_options.extend(o.run_args.iter().cloned());
        let cmd = run_command();
        for dim in matrix.dims() {
            let arg = cmd
                .get_arguments()
                .find(|a| a.get_long() == Some(dim.name.as_str()))
                .ok_or_else(|| {
                    UsageError(format!(
                        "--matrix {}: not a `harness run` option (see harness run --help)",
                        dim.name
                    ))
                })?;
            let id = arg.get_id().as_str();
            if id == "seed" || id == "out" {
                return usage(format!(
                    "--matrix {}: set by the campaign (use --seed-base or --out)",
                    dim.name
                ));
            }
            if set_by_user(id) {
                return usage(format!(
                    "--{} is both a matrix dimension and a run option after `--`",
                    dim.name
                ));
            }
        }
        let seed_base = o.seed_base.unwrap_or_else(random_seed);
        let dir = match &o.out {
            Some(d) => d.clone(),
            None => PathBuf::from("campaigns").join(format!(
                "{}-seed{seed_base}",
                super::report::utc_stamp(std::time::SystemTime::now())
            )),
        };
        let dir = std::path::absolute(&dir)
            .map_err(|e| UsageError(format!("--out {}: {e}", dir.display())))?;
        for name in ["campaign.json", "runs"] {
            if dir.join(name).exists() {
                return usage(format!(
                    "--out {}: already holds a campaign ({name}); give a new directory",
                    dir.display()
                ));
            }
        }
        let plan = Plan {
            seed_base,
            matrix,
            run_options,
            runs: match (o.runs, o.duration) {
                (None, None) => Some(DEFAULT_RUNS),
                (r, _) => r,
            },
            duration: o.duration,
            shard: o.shard,
            parallel: o.parallel,
            stop_on_failure: o.stop_on_failure,
            keep_passing: o.keep_passing,
            node_log_cap: o.node_log_cap,
            min_free: o.min_free,
            junit: o.junit.clone(),
            dir,
            allow_unknown: o.allow_unknown,
            replay: !o.no_replay,
        };
        // Every cell must be a valid `harness run` (the seed and the directory do not matter).
        for cell in 0..plan.matrix.cells() {
            let spec = plan.spec(cell);
            let argv = plan.argv(&spec, Path::new("/nonexistent"));
            let (_, args) = parse_run_args(&argv[1..]).map_err(|e| {
                UsageError(format!(
                    "matrix cell {}: {e}",
                    describe_params(spec.params.iter().map(|(k, v)| (k, v)))
                ))
            })?;
            args.validate(|| 0).map_err(|e| {
                let what = if plan.matrix.is_empty() {
                    "run options".to_string()
                } else {
                    format!(
                        "matrix cell {}",
                        describe_params(spec.params.iter().map(|(k, v)| (k, v)))
                    )
                };
                UsageError(format!("{what}: {e}"))
            })?;
        }
        Ok(plan)
    }

    /// Run `index`: its seed and matrix cell.
    pub fn spec(&self, index: u64) -> RunSpec {
        let cell = index % self.matrix.cells();
        RunSpec {
            index,
            seed: self.seed_base.wrapping_add(index),
            cell,
            params: self.matrix.cell(cell),
        }
    }

    /// The indices this campaign (or shard) runs, in order; unbounded with --duration alone.
    pub fn indices(&self) -> impl Iterator<Item = u64> {
        let (start, step) = match self.shard {
            Some(s) => (s.index, s.count),
            None => (0, 1),
        };
        let end = self.runs.unwrap_or(u64::MAX);
        (0..)
            .map(move |k: u64| start.saturating_add(k.saturating_mul(step)))
            .take_while(move |&r| r < end)
    }

    /// How many runs this shard does, when bounded.
    pub fn total(&self) -> Option<u64> {
        let runs = self.runs?;
        Some(match self.shard {
            Some(s) if s.index >= runs => 0,
            Some(s) => (runs - s.index).div_ceil(s.count),
            None => runs,
        })
    }

    /// The `harness run` command line of a run (without the program), writing under `out`.
    pub fn argv(&self, spec: &RunSpec, out: &Path) -> Vec<String> {
        let mut argv = vec![
            "run".to_string(),
            format!("--seed={}", spec.seed),
            format!("--out={}", out.display()),
        ];
        argv.extend(spec.params.iter().map(|(k, v)| format!("--{k}={v}")));
        argv.extend(self.run_options.iter().cloned());
        argv
    }

    /// Where run `index` writes (its `--out`).
    pub fn run_out(&self, index: u64, replay: bool) -> PathBuf {
        self.dir.join("runs").join(if replay {
            format!("r{index}-replay")
        } else {
            format!("r{index}")
        })
    }
}

/// `nodes=3 nemesis=pause,kill`, or `-` without a matrix.
pub fn describe_params<'a>(params: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    let s: Vec<String> = params
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if s.is_empty() {
        "-".into()
    } else {
        s.join(" ")
    }
}

/// `harness run ...`, shell-quoted.
pub fn command_line(argv: &[String]) -> String {
    std::iter::once("harness".to_string())
        .chain(argv.iter().map(|a| shell_quote(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        opts: CampaignOpts,
    }

    fn opts(args: &[&str]) -> CampaignOpts {
        let mut argv = vec!["campaign"];
        argv.extend(args);
        match Cli::try_parse_from(argv) {
            Ok(c) => c.opts,
            Err(e) => panic!("{e}"),
        }
    }

    fn plan(args: &[&str]) -> Result<Plan, UsageError> {
        let dir = std::env::temp_dir().join(format!("campaign-args-{}", std::process::id()));
        let mut o = opts(args);
        o.out = Some(dir);
        Plan::new(&o, || 7)
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("8M"), Ok(8 << 20));
        assert_eq!(parse_size("8MiB"), Ok(8 << 20));
        assert_eq!(parse_size("8mb"), Ok(8 << 20));
        assert_eq!(parse_size("1.5K"), Ok(1536));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert!(parse_size("8 parsecs").is_err());
        assert!(parse_size("M").is_err());
        assert_eq!(format_size(8 << 20), "8.0 MiB");
        assert_eq!(format_size(12), "12 B");
    }

    #[test]
    fn shards_partition_the_runs() {
        assert!(parse_shard("2/2").is_err());
        assert!(parse_shard("0/0").is_err());
        assert!(parse_shard("x").is_err());
        let all: Vec<u64> = plan(&["--runs", "7"])
            .map(|p| p.indices().collect())
            .unwrap_or_default();
        assert_eq!(all, (0..7).collect::<Vec<_>>());
        let mut union = Vec::new();
        for i in 0..3 {
            let shard = format!("{i}/3");
            let p = plan(&["--runs", "7", "--seed-base", "1", "--shard", &shard])
                .unwrap_or_else(|e| panic!("{e}"));
            let idx: Vec<u64> = p.indices().collect();
            assert_eq!(Some(idx.len() as u64), p.total());
            assert!(idx.iter().all(|r| r % 3 == i));
            union.extend(idx);
        }
        union.sort();
        assert_eq!(union, all);
        // More shards than runs: some shards have nothing to do.
        let p = plan(&["--runs", "2", "--seed-base", "1", "--shard", "3/4"]);
        assert_eq!(p.map(|p| p.total()).ok(), Some(Some(0)));
    }

    #[test]
    fn seeds_and_cells() {
        let p = plan(&[
            "--seed-base",
            "100",
            "--matrix",
            "nodes=1,3",
            "nemesis=none|pause,kill",
            "--time-limit",
            "3s",
            "--",
            "--clients",
            "2",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.matrix.cells(), 4);
        let s = p.spec(5);
        assert_eq!((s.seed, s.cell), (105, 1));
        assert_eq!(
            s.params,
            vec![
                ("nodes".to_string(), "1".to_string()),
                ("nemesis".to_string(), "pause,kill".to_string())
            ]
        );
        assert_eq!(
            p.argv(&s, Path::new("/o")),
            [
                "run",
                "--seed=105",
                "--out=/o",
                "--nodes=1",
                "--nemesis=pause,kill",
                "--time-limit=3s",
                "--clients",
                "2"
            ]
        );
    }

    #[test]
    fn usage_errors() {
        let bad: &[&[&str]] = &[
            &["--", "--seed", "3"],
            &["--", "--out", "x"],
            &["--", "--bogus"],
            &["--matrix", "bogus=1,2"],
            &["--matrix", "seed=1,2"],
            &["--matrix", "nodes=3,0"],
            &["--matrix", "nemesis=explode"],
            &["--matrix", "nodes=3", "--", "--nodes", "5"],
            &["--time-limit", "3s", "--", "--time-limit", "4s"],
            &["--shard", "0/2"],
            &["--parallel", "0"],
            &["--runs", "0"],
        ];
        for args in bad {
            assert!(plan(args).is_err(), "{args:?} should be refused");
        }
        assert!(plan(&["--matrix", "nodes=1", "--", "--node-arg=--verbose"]).is_ok());
    }
}
