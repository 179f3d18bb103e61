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
    for (n, path) in args.paths.iter().enumerate() {
        let file = history_file(path);
        let checked = check_one(&file, args, &opts).map_err(|e| match e {
            CheckError::Read(r) => Failure::Usage(anyhow::Error::new(r)),
            CheckError::Model(m) => {
                Failure::Usage(anyhow::Error::new(m).context(file.display().to_string()))
            }
            other => Failure::Other(anyhow::Error::new(other)),
        })?;
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
        if args.json {
            let mut j = r.to_json(&checked.history);
            j["file"] = serde_json::json!(file.display().to_string());
            j["format"] = serde_json::json!(checked.format.name());
            json_out.push(j);
        } else {
            println!("{}: {}", file.display(), r.summary());
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
        worst = match (worst, r.verdict) {
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
    Ok(worst)
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
