//! The linearizability check of a run, through `lincheck` (the same library `harness check`
//! uses, so re-checking a run directory gives the same verdict).
//!
//! The check runs *while* the run goes: the recorder hands every line it writes to a
//! [`Live`] checker (`lincheck::stream`), which checks each key whenever no operation on it is
//! open. So the progress line shows a live verdict, `--stop-on-violation` can end the run as
//! soon as a violation is certain, and at the end only the last open windows are left to
//! check. Memory is bounded by the concurrency window, not by the run's length.

use lincheck::html::{self, HtmlOptions};
use lincheck::stream::{Status, StreamingChecker, Violation};
use lincheck::{check_file, CheckOptions, Format};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::{Arc, Mutex};
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

fn options(time_limit: Duration) -> CheckOptions {
    CheckOptions::default().time_limit(Some(time_limit))
}

/// The online checker fed by the recorder.
pub struct Live {
    checker: StreamingChecker,
    /// The first error a line caused (a recorder bug, not a finding): the live verdict is then
    /// off and the end of the run checks the file instead.
    broken: Mutex<Option<String>>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("status", &self.describe())
            .finish_non_exhaustive()
    }
}

impl Live {
    pub fn new(time_limit: Duration) -> Live {
        let opts = options(time_limit);
        Live {
            checker: StreamingChecker::new(opts.model_kind(), &opts),
            broken: Mutex::new(None),
        }
    }

    /// Feeds one line of history.jsonl, as written.
    pub fn push_line(&self, line: &str) {
        if let Err(e) = self.checker.push_line(line) {
            if let Ok(mut b) = self.broken.lock() {
                b.get_or_insert_with(|| e.to_string());
            }
        }
    }

    /// Lets the checking threads see every line fed so far (call when the feed goes idle).
    pub fn flush(&self) {
        self.checker.flush();
    }

    fn broken(&self) -> Option<String> {
        self.broken.lock().ok().and_then(|b| b.clone())
    }

    /// The verdict so far; never waits for the checking.
    pub fn status(&self) -> Status {
        self.checker.status()
    }

    /// The violation found so far, if any.
    pub fn violation(&self) -> Option<Arc<Violation>> {
        self.checker.status().violation
    }

    /// `check: ok so far (N ops checked)`, for the progress line.
    pub fn describe(&self) -> String {
        if self.broken().is_some() {
            return "off (see the end of the run)".into();
        }
        self.status().describe()
    }

    /// Ends the history (the recorder has written its last line) and returns the verdict. If
    /// the live check could not follow the history, the file at `path` is checked instead.
    pub fn finish(&self, path: &Path, time_limit: Duration) -> Checked {
        if let Some(why) = self.broken() {
            log::warn!(
                "the live check stopped ({why}); checking {}",
                path.display()
            );
            return check(path, time_limit);
        }
        match self.checker.finish() {
            Ok(s) => {
                let r = &s.result;
                let html = (r.verdict == Verdict::NotLinearizable)
                    .then(|| html::render(&s.history, r, &HtmlOptions::default()));
                Checked {
                    verdict: r.verdict,
                    result: r.to_json(&s.history),
                    summary: r.summary(),
                    html,
                }
            }
            Err(e) => {
                log::warn!("the live check failed ({e}); checking {}", path.display());
                check(path, time_limit)
            }
        }
    }
}

/// When the first violation's operation completed (ns of history time): the operation the
/// explanation is about.
pub fn violating_op_time(v: &Violation) -> Option<u64> {
    let first = *v.counterexample.unplaceable.first()?;
    let op = v.history.ops.get(first)?;
    op.ret_time.or(Some(op.call_time))
}

/// Checks the JSONL history at `path` as a whole (the fallback of [`Live::finish`]).
pub fn check(path: &Path, time_limit: Duration) -> Checked {
    match check_file(path, Format::Jsonl, &options(time_limit)) {
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
