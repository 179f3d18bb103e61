//! `harness check`: re-check stored histories (files or run directories).
//!
//! Exit codes (docs/exit-codes.md, Jepsen's convention): 0 linearizable, 1 not linearizable, 2 unknown,
//! 254 usage error (bad flags, unreadable or malformed input: the message names file and line;
//! an input with fewer than `--require-ops` operations that took effect), 255 any other failure.
//! With several inputs the worst verdict wins (1 over 2 over 0).
//!
//! JSONL histories are checked streaming (`lincheck::stream`): memory is bounded by the
//! concurrency window, not the history's length, and the reports show the evidence of each
//! violation (the operations around it). `--whole-history` (implied by `--html-all-keys`)
//! reads the whole history into memory and checks it as one, as before.
//!
//! `--engine stateright` checks with the second engine (`lincheck::oracle`, stateright's
//! tester, on the whole history); `--engine both` runs the two and exits 255 when they give
//! opposite definite verdicts on a key, printing both.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use lincheck::html::HtmlOptions;
use lincheck::Outcome as LOutcome;
use lincheck::{CheckError, CheckOptions, Format, ModelKind, Value, Verdict};

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// History files or run directories (a directory holding history.jsonl).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Input format: auto, jsonl, jepsen-edn, porcupine-etcd, porcupine-kv.
    #[arg(long, default_value = "auto", value_parser = parse_format)]
    pub format: Format,
    /// Model: register, cas-register, kv-append (default: by format; register for JSONL).
    #[arg(long, value_parser = parse_model)]
    pub model: Option<ModelKind>,
    /// Initial value of every key, as JSON: 0 is the integer, '"0"' the string, null absent
    /// (the default).
    #[arg(long, value_name = "JSON", value_parser = parse_initial)]
    pub initial: Option<Value>,
    /// Fail (254) unless each input has at least N operations that took effect (completed ok):
    /// fewer is too little evidence to pass. 0 accepts an empty history. A violation found
    /// still exits 1.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub require_ops: usize,
    /// Time limit for the search, e.g. 60s, 500ms, 2m; 0 for none. Streaming, it bounds each
    /// key's total search time; with --whole-history, the whole check.
    #[arg(long, default_value = "60s", value_parser = crate::duration::parse)]
    pub time_limit: Duration,
    /// Memory budget for the search, e.g. 4G, 512M.
    #[arg(long, default_value = "4G", value_parser = parse_bytes)]
    pub memory: usize,
    /// Print the machine-readable result (JSON) on stdout.
    #[arg(long)]
    pub json: bool,
    /// Write a self-contained HTML report to this file (with several inputs: one per input,
    /// named OUT-<n>.html).
    #[arg(long, value_name = "OUT")]
    pub html: Option<PathBuf>,
    /// Draw every key in the HTML report, not only the failing ones.
    #[arg(long)]
    pub html_all_keys: bool,
    /// Turn off the sound reductions for indefinite operations (for comparison).
    #[arg(long, hide = true)]
    pub no_reductions: bool,
    /// Read the whole history into memory and check it at once instead of streaming it (memory
    /// grows with the history; needed to draw every key with --html-all-keys).
    #[arg(long)]
    pub whole_history: bool,
    /// Checking engine: lincheck (the search), stateright (stateright's tester: small histories
    /// only), both (a cross-check: opposite verdicts exit 255).
    #[arg(long, value_enum, default_value_t = Engine::Lincheck)]
    pub engine: Engine,
}

/// Which checker decides.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Lincheck,
    Stateright,
    Both,
}

/// A checked input, either way.
struct Outcome {
    result: lincheck::CheckResult,
    /// The whole history, or the evidence a streaming check kept.
    history: lincheck::History,
    format: Format,
    counts: Counts,
    torn_tail: Option<u64>,
}

/// What an input held.
struct Counts {
    ops: u64,
    effective: u64,
    failed: u64,
    unknown: u64,
}

fn check_one(file: &Path, args: &CheckArgs, opts: &CheckOptions) -> Result<Outcome, CheckError> {
    if args.engine == Engine::Stateright {
        return check_stateright(file, args, opts);
    }
    if args.whole_history || args.html_all_keys {
        let c = lincheck::check_file(file, args.format, opts)?;
        let h = &c.history;
        let counts = Counts {
            ops: h.ops.len() as u64,
            effective: h.effective_ops() as u64,
            failed: h.ops.iter().filter(|o| o.outcome == LOutcome::Fail).count() as u64,
            unknown: h.ops.iter().filter(|o| o.outcome.is_indefinite()).count() as u64,
        };
        return Ok(Outcome {
            torn_tail: c.history.torn_tail,
            result: c.result,
            history: c.history,
            format: c.format,
            counts,
        });
    }
    let s = lincheck::stream::check_file(file, args.format, opts)?;
    Ok(Outcome {
        counts: Counts {
            ops: s.counts.ops,
            effective: s.counts.effective,
            failed: s.counts.failed,
            unknown: s.counts.indefinite,
        },
        torn_tail: s.torn_tail,
        result: s.result,
        history: s.history,
        format: s.format,
    })
}

/// The second engine: stateright's tester needs the whole history.
fn check_stateright(
    file: &Path,
    args: &CheckArgs,
    opts: &CheckOptions,
) -> Result<Outcome, CheckError> {
    let (history, format) = lincheck::read_file(file, args.format)?;
    let mut opts = opts.clone();
    if opts.model.is_none() {
        opts.model = Some(format.default_model());
    }
    let result = lincheck::oracle::check(&history, &opts)?;
    let h = &history;
    let counts = Counts {
        ops: h.ops.len() as u64,
        effective: h.effective_ops() as u64,
        failed: h.ops.iter().filter(|o| o.outcome == LOutcome::Fail).count() as u64,
        unknown: h.ops.iter().filter(|o| o.outcome.is_indefinite()).count() as u64,
    };
    Ok(Outcome {
        torn_tail: history.torn_tail,
        result,
        history,
        format,
        counts,
    })
}

/// Keys on which the two engines gave opposite definite verdicts.
fn disagreements(a: &lincheck::CheckResult, b: &lincheck::CheckResult) -> Vec<String> {
    let definite = |v: Verdict| v != Verdict::Unknown;
    let mut keys: Vec<String> = a
        .keys
        .iter()
        .filter_map(|ka| {
            let kb = b.keys.iter().find(|kb| kb.key == ka.key)?;
            (definite(ka.verdict) && definite(kb.verdict) && ka.verdict != kb.verdict)
                .then(|| ka.key.clone())
        })
        .collect();
    // Keys the streaming check retired without a result of their own still count through the
    // overall verdict.
    if keys.is_empty() && definite(a.verdict) && definite(b.verdict) && a.verdict != b.verdict {
        keys.push("(overall verdict)".to_string());
    }
    keys
}

fn parse_format(s: &str) -> Result<Format, String> {
    Format::parse(s).ok_or_else(|| {
        format!("unknown format `{s}` (auto, jsonl, jepsen-edn, porcupine-etcd, porcupine-kv)")
    })
}

fn parse_initial(s: &str) -> Result<Value, String> {
    // Typed, not guessed: a store that holds the string "0" must be checkable, and `v0` (bare)
    // is a likelier typo for `'"v0"'` than a value anyone means.
    let json: serde_json::Value = serde_json::from_str(s).map_err(|_| {
        format!("`{s}` is not JSON; a string needs JSON quotes, e.g. --initial '\"{s}\"'")
    })?;
    Value::from_json(&json).ok_or_else(|| {
        format!("`{s}`: the initial value must be a JSON string, an integer or null")
    })
}

fn parse_model(s: &str) -> Result<ModelKind, String> {
    ModelKind::parse(s)
        .ok_or_else(|| format!("unknown model `{s}` (register, cas-register, kv-append)"))
}

fn parse_bytes(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("bad size `{s}` (e.g. 4G, 512M)"))?;
    let mul: usize = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return Err(format!("bad size unit in `{s}` (K, M, G)")),
    };
    Ok(n.saturating_mul(mul))
}

/// The history file a path names: the file itself, or `history.jsonl` in a run directory.
fn history_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("history.jsonl")
    } else {
        path.to_path_buf()
    }
}

/// A failure and the exit code it maps to.
enum Failure {
    Usage(anyhow::Error),
    Other(anyhow::Error),
}

pub fn run(args: CheckArgs) -> ExitCode {
    match run_all(&args) {
        Ok(v) => ExitCode::from(v.exit_code()),
        Err(Failure::Usage(e)) => {
            eprintln!("harness check: {e:#}");
            ExitCode::from(254)
        }
        Err(Failure::Other(e)) => {
            eprintln!("harness check: {e:#}");
            ExitCode::from(255)
        }
    }
}

fn run_all(args: &CheckArgs) -> Result<Verdict, Failure> {
    let initial = args.initial.clone().unwrap_or(Value::Nil);
    let mut opts = CheckOptions::default()
        .initial(initial)
        .time_limit((!args.time_limit.is_zero()).then_some(args.time_limit))
        .memory_budget(args.memory)
        .reductions(!args.no_reductions);
    opts.model = args.model.clone();
    let mut worst = Verdict::Linearizable;
    let mut json_out = Vec::new();
    let mut disagreed = Vec::new();
    for (n, path) in args.paths.iter().enumerate() {
        let file = history_file(path);
        let to_failure = |e| match e {
            CheckError::Read(r) => Failure::Usage(anyhow::Error::new(r)),
            CheckError::Model(m) => {
                Failure::Usage(anyhow::Error::new(m).context(file.display().to_string()))
            }
            other => Failure::Other(anyhow::Error::new(other)),
        };
        let checked = check_one(&file, args, &opts).map_err(to_failure)?;
        let second = if args.engine == Engine::Both {
            Some(check_stateright(&file, args, &opts).map_err(to_failure)?)
        } else {
            None
        };
        if let Some(line) = checked.torn_tail {
            eprintln!(
                "harness check: {}:{line}: left out a torn last line (the writer stopped mid-line)",
                file.display()
            );
        }
        let r = &checked.result;
        // Checked before printing, so that a history too thin to pass prints no verdict that a
        // script could take for one. A violation is evidence however few operations it took.
        let effective = checked.counts.effective;
        if effective < args.require_ops as u64 && r.verdict != Verdict::NotLinearizable {
            return Err(Failure::Usage(anyhow::anyhow!(
                "{}: {}",
                file.display(),
                too_few_ops(&checked.counts, args.require_ops)
            )));
        }
        let disagree = second
            .as_ref()
            .map(|s| disagreements(r, &s.result))
            .unwrap_or_default();
        if args.json {
            let mut j = r.to_json(&checked.history);
            j["file"] = serde_json::json!(file.display().to_string());
            j["format"] = serde_json::json!(checked.format.name());
            j["engine"] = serde_json::json!(engine_name(args.engine));
            if let Some(s) = &second {
                j["stateright"] = s.result.to_json(&s.history);
                j["disagreement"] = serde_json::json!(disagree);
            }
            json_out.push(j);
        } else if let Some(s) = &second {
            println!("{}: lincheck: {}", file.display(), r.summary());
            println!("{}: stateright: {}", file.display(), s.result.summary());
        } else if args.engine == Engine::Stateright {
            println!("{}: stateright: {}", file.display(), r.summary());
        } else {
            println!("{}: {}", file.display(), r.summary());
        }
        if !disagree.is_empty() {
            disagreed.push(format!(
                "{}: lincheck says {}, stateright says {} (keys: {})",
                file.display(),
                r.verdict.name(),
                second.as_ref().map_or("?", |s| s.result.verdict.name()),
                disagree.join(", ")
            ));
        }
        if let Some(out) = &args.html {
            let out = if args.paths.len() > 1 {
                let stem = out.with_extension("");
                PathBuf::from(format!("{}-{}.html", stem.display(), n + 1))
            } else {
                out.clone()
            };
            write_html(&out, &checked, args.html_all_keys).map_err(Failure::Other)?;
            if !args.json {
                println!("report: {}", out.display());
            }
        }
        // With both engines, a violation either proves stands, and a key only one of them
        // could decide leaves the input unknown: a cross-check that did not happen is no pass.
        let verdict = match &second {
            Some(s) => combine(r.verdict, s.result.verdict),
            None => r.verdict,
        };
        worst = match (worst, verdict) {
            (Verdict::NotLinearizable, _) | (_, Verdict::NotLinearizable) => {
                Verdict::NotLinearizable
            }
            (Verdict::Unknown, _) | (_, Verdict::Unknown) => Verdict::Unknown,
            _ => Verdict::Linearizable,
        };
    }
    if args.json {
        let doc = if json_out.len() == 1 {
            json_out.remove(0)
        } else {
            serde_json::Value::Array(json_out)
        };
        let text = serde_json::to_string_pretty(&doc)
            .context("serialising the result")
            .map_err(Failure::Other)?;
        println!("{text}");
    }
    if !disagreed.is_empty() {
        return Err(Failure::Other(anyhow::anyhow!(
            "the engines disagree:\n{}",
            disagreed.join("\n")
        )));
    }
    Ok(worst)
}

/// The verdict of two engines that do not contradict each other.
fn combine(a: Verdict, b: Verdict) -> Verdict {
    match (a, b) {
        (Verdict::NotLinearizable, _) | (_, Verdict::NotLinearizable) => Verdict::NotLinearizable,
        (Verdict::Linearizable, Verdict::Linearizable) => Verdict::Linearizable,
        _ => Verdict::Unknown,
    }
}

fn engine_name(e: Engine) -> &'static str {
    match e {
        Engine::Lincheck => "lincheck",
        Engine::Stateright => lincheck::oracle::ENGINE,
        Engine::Both => "both",
    }
}

fn too_few_ops(c: &Counts, required: usize) -> String {
    let Counts {
        ops,
        effective,
        failed,
        unknown,
    } = c;
    let what = if *ops == 0 {
        "no client operations".to_string()
    } else {
        format!(
            "{effective} of {ops} client operations took effect ({failed} failed, {unknown} with an unknown outcome)"
        )
    };
    if required == 1 {
        format!("{what}: nothing was checked (--require-ops 0 accepts this)")
    } else {
        format!("{what}, fewer than --require-ops {required}")
    }
}

fn write_html(out: &Path, checked: &Outcome, all_keys: bool) -> anyhow::Result<()> {
    let f = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut w = BufWriter::new(f);
    let opts = HtmlOptions::default().all_keys(all_keys);
    lincheck::html::write(&mut w, &checked.history, &checked.result, &opts)
        .and_then(|_| w.flush())
        .with_context(|| format!("writing {}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: CheckArgs,
    }

    fn run_with(args: &[&str]) -> ExitCode {
        let mut v = vec!["check"];
        v.extend_from_slice(args);
        run(Cli::try_parse_from(v).expect("flags parse").args)
    }

    fn temp(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("check-cmd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    const OK: &str = r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"write","key":"k","value":"a"}
{"index":1,"time":2,"process":1,"type":"ok","f":"write","key":"k","value":"a"}
{"index":2,"time":3,"process":2,"type":"invoke","f":"read","key":"k","value":null}
{"index":3,"time":4,"process":2,"type":"ok","f":"read","key":"k","value":"a"}
"#;

    #[test]
    fn exit_codes() {
        let ok = temp("ok.jsonl", OK);
        assert_eq!(run_with(&[ok.to_str().unwrap()]), ExitCode::from(0));
        let bad = temp(
            "bad.jsonl",
            &OK.replace(r#""value":"a"}"#, r#""value":"b"}"#).replacen(
                r#""value":"b"}"#,
                r#""value":"a"}"#,
                2,
            ),
        );
        assert_eq!(
            run_with(&[bad.to_str().unwrap(), "--json"]),
            ExitCode::from(1)
        );
        let html = bad.with_extension("html");
        assert_eq!(
            run_with(&[bad.to_str().unwrap(), "--html", html.to_str().unwrap()]),
            ExitCode::from(1)
        );
        let page = std::fs::read_to_string(&html).expect("html written");
        assert!(
            page.contains("<svg") && !page.contains("http://cdn") && !page.contains("<script src")
        );
        // A crash mid-write leaves a torn last line with no newline: left out, and checked.
        let torn = temp("torn.jsonl", &format!("{OK}{{\"index\":4,\"ti"));
        assert_eq!(run_with(&[torn.to_str().unwrap()]), ExitCode::from(0));
        // A complete line that is malformed is an error, even the last one.
        let broken = temp("broken.jsonl", &format!("{OK}{{\"index\":4,\"ti\n"));
        assert_eq!(run_with(&[broken.to_str().unwrap()]), ExitCode::from(254));
        let missing = std::env::temp_dir().join("no-such-history.jsonl");
        assert_eq!(run_with(&[missing.to_str().unwrap()]), ExitCode::from(254));
        // A run directory holding history.jsonl.
        let dir = ok.parent().unwrap().join("run");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("history.jsonl"), OK).unwrap();
        assert_eq!(run_with(&[dir.to_str().unwrap()]), ExitCode::from(0));
        // Worst verdict wins across inputs.
        assert_eq!(
            run_with(&[ok.to_str().unwrap(), bad.to_str().unwrap()]),
            ExitCode::from(1)
        );
        // Kv model on a register history: usage error naming the line.
        assert_eq!(
            run_with(&[
                ok.to_str().unwrap(),
                "--model",
                "kv-append",
                "--format",
                "jsonl"
            ]),
            ExitCode::from(0)
        );
        let cas = temp(
            "cas.jsonl",
            r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"cas","key":"k","value":["a","b"]}
"#,
        );
        assert_eq!(
            run_with(&[cas.to_str().unwrap(), "--model", "kv-append"]),
            ExitCode::from(254)
        );
    }

    #[test]
    fn streaming_and_whole_history_agree() {
        let ok = temp("agree-ok.jsonl", OK);
        let more = r#"{"index":4,"time":5,"process":3,"type":"invoke","f":"write","key":"k","value":"b"}
{"index":5,"time":6,"process":3,"type":"ok","f":"write","key":"k","value":"b"}
{"index":6,"time":7,"process":2,"type":"invoke","f":"read","key":"k","value":null}
{"index":7,"time":8,"process":2,"type":"ok","f":"read","key":"k","value":"a"}
"#;
        let bad = temp("agree-bad.jsonl", &format!("{OK}{more}"));
        for extra in [&[][..], &["--whole-history"][..]] {
            let with = |p: &Path| {
                let mut v = vec![p.to_str().unwrap()];
                v.extend_from_slice(extra);
                run_with(&v)
            };
            assert_eq!(with(&ok), ExitCode::from(0), "{extra:?}");
            assert_eq!(with(&bad), ExitCode::from(1), "{extra:?}");
        }
        // The streamed result explains the violation from the evidence it kept.
        let opts = CheckOptions::default();
        let s = lincheck::stream::check_file(&bad, Format::Auto, &opts).expect("checks");
        let w = lincheck::check_file(&bad, Format::Auto, &opts).expect("checks");
        assert_eq!(
            s.result.counterexamples[0].explanation,
            w.result.counterexamples[0].explanation
        );
        let j = s.result.to_json(&s.history);
        assert_eq!(j["counterexamples"][0]["unplaceable"][0]["invoke_line"], 7);
    }

    #[test]
    fn engines() {
        let ok = temp("engine-ok.jsonl", OK);
        let bad = temp(
            "engine-bad.jsonl",
            &OK.replace(
                r#""f":"read","key":"k","value":"a""#,
                r#""f":"read","key":"k","value":"b""#,
            ),
        );
        for engine in ["lincheck", "stateright", "both"] {
            let with = |p: &Path, extra: &[&str]| {
                let mut v = vec![p.to_str().unwrap(), "--engine", engine];
                v.extend_from_slice(extra);
                run_with(&v)
            };
            assert_eq!(with(&ok, &[]), ExitCode::from(0), "{engine}");
            assert_eq!(with(&bad, &[]), ExitCode::from(1), "{engine}");
            assert_eq!(with(&bad, &["--json"]), ExitCode::from(1), "{engine}");
        }
        // Past the memory budget stateright does not start: unknown, never a pass.
        for engine in ["stateright", "both"] {
            assert_eq!(
                run_with(&[ok.to_str().unwrap(), "--engine", engine, "--memory", "100"]),
                ExitCode::from(2),
                "{engine}"
            );
        }
        assert!(Cli::try_parse_from(["check", "f", "--engine", "knossos"]).is_err());
    }

    #[test]
    fn opposite_verdicts_are_a_disagreement() {
        let ok = temp("dis-ok.jsonl", OK);
        let bad = temp(
            "dis-bad.jsonl",
            &OK.replace(
                r#""f":"read","key":"k","value":"a""#,
                r#""f":"read","key":"k","value":"b""#,
            ),
        );
        let opts = CheckOptions::default();
        let yes = lincheck::check_file(&ok, Format::Auto, &opts).expect("checks");
        let no = lincheck::check_file(&bad, Format::Auto, &opts).expect("checks");
        assert_eq!(
            disagreements(&yes.result, &no.result),
            vec!["k".to_string()]
        );
        assert!(disagreements(&yes.result, &yes.result).is_empty());
        let unknown =
            lincheck::oracle::check(&yes.history, &opts.clone().memory_budget(0)).expect("checks");
        assert_eq!(unknown.verdict, Verdict::Unknown);
        assert!(disagreements(&no.result, &unknown).is_empty());
        assert_eq!(
            combine(Verdict::Linearizable, Verdict::Unknown),
            Verdict::Unknown
        );
        assert_eq!(
            combine(Verdict::Unknown, Verdict::NotLinearizable),
            Verdict::NotLinearizable
        );
        assert_eq!(
            combine(Verdict::Linearizable, Verdict::Linearizable),
            Verdict::Linearizable
        );
    }

    #[test]
    fn flag_parsing() {
        assert_eq!(parse_bytes("4G"), Ok(4 << 30));
        assert!(parse_format("xml").is_err());
        assert!(Cli::try_parse_from(["check", "f", "--model", "queue"]).is_err());
        assert_eq!(parse_initial("\"0\""), Ok(Value::str("0")));
        assert_eq!(parse_initial("0"), Ok(Value::Int(0)));
        assert_eq!(parse_initial("null"), Ok(Value::Nil));
        assert!(parse_initial("v0").unwrap_err().contains("'\"v0\"'"));
        assert!(parse_initial("1.5").is_err());
        assert!(Cli::try_parse_from(["check", "f", "--require-ops", "-1"]).is_err());
    }

    #[test]
    fn nothing_checked_is_a_usage_error() {
        let empty = temp("empty.jsonl", "");
        assert_eq!(run_with(&[empty.to_str().unwrap()]), ExitCode::from(254));
        assert_eq!(
            run_with(&[empty.to_str().unwrap(), "--require-ops", "0"]),
            ExitCode::from(0)
        );
        let ok = temp("floor.jsonl", OK);
        assert_eq!(
            run_with(&[ok.to_str().unwrap(), "--require-ops", "2"]),
            ExitCode::from(0)
        );
        assert_eq!(
            run_with(&[ok.to_str().unwrap(), "--require-ops", "3"]),
            ExitCode::from(254)
        );
    }
}
