//! The linearizability check at the end of a run, through `lincheck` (the same library
//! `harness check` uses, so re-checking a run directory gives the same verdict).

use lincheck::html::{self, HtmlOptions};
use lincheck::{check_file, CheckOptions, Format};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

pub use lincheck::Verdict;

/// What the check produced.
#[derive(Debug, Clone)]
pub struct Checked {
    pub verdict: Verdict,
    /// result.json.
    pub result: Value,
    /// For the summary.
    pub summary: String,
    /// The HTML page explaining a violation.
    pub html: Option<String>,
}

/// Checks the JSONL history at `path` with the register model.
pub fn check(path: &Path, time_limit: Duration) -> Checked {
    let opts = CheckOptions::default().time_limit(Some(time_limit));
    match check_file(path, Format::Jsonl, &opts) {
        Ok(checked) => {
            let r = &checked.result;
            let verdict = r.verdict;
            let html = (verdict == Verdict::NotLinearizable)
                .then(|| html::render(&checked.history, r, &HtmlOptions::default()));
            Checked {
                verdict,
                result: r.to_json(&checked.history),
                summary: r.summary(),
                html,
            }
        }
        Err(e) => {
            // An unreadable history: the check could not decide.
            let reason = format!("cannot check {}: {e}", path.display());
            Checked {
                verdict: Verdict::Unknown,
                result: json!({"verdict": "unknown", "error": reason}),
                summary: format!("unknown: {reason}"),
                html: None,
            }
        }
    }
}
