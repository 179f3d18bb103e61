//! Operation histories and a linearizability checker.
//!
//! - [`History`]: operations (invocation + completion) per key; semantics in [`history`].
//! - Readers: the project's JSONL ([`read_jsonl`]), Jepsen EDN and Porcupine's logs
//!   ([`read_file`] with [`Format`]); a JSONL writer ([`JsonlWriter`]).
//! - Models ([`Model`]): the register, Knossos's cas-register, Porcupine's kv.
//! - [`check()`]: Wing & Gong's search with Lowe's memoisation, split by key, keys in parallel,
//!   time and memory limits, sound reductions for indefinite operations.
//! - Results: [`CheckResult`] (three-valued [`Verdict`], per-key stats, counterexamples with a
//!   plain-language explanation), its JSON ([`CheckResult::to_json`]), and a self-contained HTML
//!   page ([`html::render`]).
//!
//! - [`oracle`] (feature `stateright`, on by default): a second engine, stateright's
//!   `LinearizabilityTester` with the same models and limits, to cross-check small histories.
//! - [`stream`]: the streaming checker ([`StreamingChecker`]): events pushed as they are
//!   written, a verdict as soon as a violation is certain, memory bounded by the concurrency
//!   window; [`stream::check_file`] streams a file.
//!
//! The harness calls [`check_file`] (or [`check()`] on a history it holds), and
//! [`stream::check_file`] for `harness check`.

mod builder;
pub mod check;
pub mod error;
mod explain;
pub mod history;
pub mod html;
pub mod import;
pub mod jsonl;
pub mod model;
#[cfg(feature = "stateright")]
pub mod oracle;
pub mod result;
pub mod stream;

use std::path::Path;

pub use check::{check, CheckOptions, Strategy};
pub use error::{CheckError, LineError, LineErrorKind, ModelError, ReadError};
pub use history::{Func, History, Operation, Outcome, Value};
pub use import::{detect, read_file, Format};
pub use jsonl::{read_jsonl, Event, EventType, JsonlWriter, Process};
pub use model::{Model, ModelKind};
pub use result::{CheckResult, Counterexample, KeyResult, ResultJsonError, UnknownCause, Verdict};
pub use stream::{Status, StreamError, Streamed, StreamingChecker};

/// A checked file: the history as read, the format it was read as, the result.
#[derive(Debug)]
#[non_exhaustive]
pub struct Checked {
    /// The history.
    pub history: History,
    /// The format used.
    pub format: Format,
    /// The result.
    pub result: CheckResult,
}

/// Reads a history file and checks it. With `opts.model == None` the format's default model is
/// used (the register for JSONL).
pub fn check_file(path: &Path, format: Format, opts: &CheckOptions) -> Result<Checked, CheckError> {
    let (history, format) = read_file(path, format)?;
    let mut opts = opts.clone();
    if opts.model.is_none() {
        opts.model = Some(format.default_model());
    }
    let result = check(&history, &opts)?;
    Ok(Checked {
        history,
        format,
        result,
    })
}

impl Checked {
    /// Writes `result.json` and `report.html` (failing keys drawn) into `dir`, as a run
    /// directory holds them.
    pub fn write_reports(&self, dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(&self.result.to_json(&self.history))
            .map_err(std::io::Error::other)?;
        std::fs::write(dir.join("result.json"), json)?;
        let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("report.html"))?);
        html::write(
            &mut f,
            &self.history,
            &self.result,
            &html::HtmlOptions::default(),
        )?;
        std::io::Write::flush(&mut f)
    }
}
