//! `index.html` over a directory of runs (`histories/`, a campaign directory): every run found
//! below it (a directory holding run.json, up to three levels down: `<out>/<run>/` and a
//! campaign's `runs/r<i>/<run>/`), newest first, colored by verdict, with links.

use super::html::{esc, href};
use super::write_atomic;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One row.
struct Row {
    dir: PathBuf,
    run: Value,
}

/// Run directories below `dir` (not following symlinks, so `latest` is not listed twice).
pub fn find_runs(dir: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        if d.join("run.json").is_file() {
            out.push(d.to_path_buf());
            return;
        }
        if depth == 0 {
            return;
        }
        let Ok(entries) = std::fs::read_dir(d) else {
            return;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&e.path(), depth - 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, 3, &mut out);
    out
}

fn verdict_class(run: &Value) -> (&'static str, String) {
    let o = &run["outcome"];
    let verdict = o["verdict"].as_str();
    match (verdict, o["exit_code"].as_i64()) {
        (Some("not-linearizable"), _) => ("v-fail", "not-linearizable".into()),
        (_, Some(255)) => ("v-broken", "run failed".into()),
        (Some("linearizable"), _) => ("v-pass", "linearizable".into()),
        (Some("unknown"), _) => ("v-unknown", "unknown".into()),
        _ => ("v-none", "unfinished".into()),
    }
}

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#222;background:#f6f6f4}
main{max-width:1300px;margin:0 auto;padding:12px 16px 40px}
h1{font-size:20px} table{border-collapse:collapse;font-size:13px;background:#fff;width:100%}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top} th{background:#f0f0ee}
td.n{text-align:right;font-variant-numeric:tabular-nums}
td.verdict{font-weight:700;color:#fff;white-space:nowrap}
tr.v-pass td.verdict{background:#2e7d32} tr.v-fail td.verdict{background:#b71c1c} tr.v-unknown td.verdict{background:#a15c00}
tr.v-broken td.verdict{background:#4a148c} tr.v-none td.verdict{background:#757575}
tr.v-fail{background:#fff3f3} .small{font-size:12px;color:#555} a{color:#0d47a1}
"#;

fn faults_text(faults: &Value) -> String {
    let Some(m) = faults.as_object() else {
        return "-".into();
    };
    let top: Vec<String> = m
        .iter()
        .filter(|(k, _)| !k.contains(':'))
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if top.is_empty() {
        "none".into()
    } else {
        top.join(", ")
    }
}

/// Renders the index of the runs under `dir`.
pub fn render(dir: &Path) -> String {
    let mut rows: Vec<Row> = find_runs(dir)
        .into_iter()
        .map(|d| {
            let run = std::fs::read_to_string(d.join("run.json"))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(Value::Null);
            Row { dir: d, run }
        })
        .collect();
    // Newest first: run.json's start, then the directory name (which begins with the time).
    rows.sort_by(|a, b| {
        let key = |r: &Row| {
            (
                r.run["started"].as_str().unwrap_or("").to_string(),
                r.dir.file_name().map(|n| n.to_os_string()),
            )
        };
        key(b).cmp(&key(a))
    });
    let campaign = dir.join("campaign.json").is_file();
    let title = if campaign {
        format!(
            "Campaign {}",
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        )
    } else {
        "Runs".to_string()
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body><main><h1>{}</h1>",
        esc(&title),
        esc(&title)
    );
    let count = |c: &str| rows.iter().filter(|r| verdict_class(&r.run).0 == c).count();
    let _ = write!(
        s,
        "<p id=\"summary\">{} runs: {} linearizable, {} not linearizable, {} unknown, {} failed, {} unfinished. Newest first.{}</p>",
        rows.len(),
        count("v-pass"),
        count("v-fail"),
        count("v-unknown"),
        count("v-broken"),
        count("v-none"),
        if campaign { " <a href=\"campaign.json\">campaign.json</a>" } else { "" }
    );
    s.push_str("<table id=\"runs\"><tr><th>started</th><th>verdict</th><th>seed</th><th>system</th><th>parameters</th><th>ops</th><th>faults</th><th>links</th></tr>");
    for r in &rows {
        let (class, verdict) = verdict_class(&r.run);
        let o = &r.run["options"];
        let params = format!(
            "{} nodes, {} clients, {} keys, {}, nemesis {}",
            o["nodes"],
            o["clients"],
            o["keys"],
            o["time_limit"].as_str().unwrap_or("?"),
            o["nemesis"]
                .as_array()
                .map(|a| a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "none".into())
        );
        let rel = href(dir, &r.dir);
        let mut links = Vec::new();
        for (f, label) in [
            ("report.html", "report"),
            ("history.jsonl", "history"),
            ("run.json", "run.json"),
            ("nodes", "logs"),
        ] {
            if r.dir.join(f).exists() {
                links.push(format!("<a href=\"{}/{f}\">{label}</a>", esc(&rel)));
            }
        }
        let explanation = r.run["outcome"]["failure"].as_str().map(|f| {
            format!(
                "<div class=\"small\">{}</div>",
                esc(f.lines().next().unwrap_or(""))
            )
        });
        let _ = write!(
            s,
            "<tr class=\"run {class}\"><td>{}<div class=\"small\">{}</div></td><td class=\"verdict\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(r.run["started"].as_str().unwrap_or("?")),
            esc(&rel),
            esc(&verdict),
            esc(&r.run["seed"].to_string()),
            esc(r.run["system"]["name"].as_str().unwrap_or("?")),
            esc(&params),
            explanation.unwrap_or_default(),
            r.run["outcome"]["ops"]["total"].as_u64().map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
            esc(&faults_text(&r.run["outcome"]["faults"])),
            links.join(" · ")
        );
    }
    s.push_str("</table></main></body></html>\n");
    s
}

/// Writes `dir/index.html`.
pub fn write_index(dir: &Path) -> Result<PathBuf> {
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let dst = dir.join("index.html");
    write_atomic(&dst, render(dir).as_bytes())
        .with_context(|| format!("writing the index of {}", dir.display()))?;
    Ok(dst)
}
