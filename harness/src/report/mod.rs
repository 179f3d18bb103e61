//! Run reports a person would rather look at than read: `report.html` in every run directory
//! and `index.html` over a directory of runs (`histories/`, a campaign directory).
//!
//! Everything here reads only what a run directory stores (run.json, history.jsonl,
//! result.json, nodes/*.log, proxy.log), so the end of `harness run`, `harness campaign` and
//! `harness report DIR` draw the same pages. Pages are self-contained (inline SVG, CSS and a
//! little JS, no network); see docs/reports.md.
//!
//! - [`load`]: a run directory read back; [`faults`]: fault intervals and node events from the
//!   history's nemesis events; [`stats`]: throughput, latency, availability, counts;
//! - [`charts`]: the SVG charts; [`timeline`]: the zoomable lanes; [`logs`]: node log tails;
//! - [`page`]: the run page; [`index`]: the index page; [`cli`]: `harness report`.

mod charts;
pub mod cli;
mod faults;
mod html;
mod index;
mod load;
mod logs;
mod page;
mod stats;
mod timeline;

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

pub use cli::ReportArgs;
pub use index::write_index;

/// Writes `report.html` into the run directory `dir` from its stored files.
pub fn write_run_report(dir: &Path) -> Result<PathBuf> {
    let run = load::RunData::load(dir)?;
    let html = page::render(&run);
    let dst = dir.join("report.html");
    write_atomic(&dst, html.as_bytes())?;
    Ok(dst)
}

/// After `harness run`: the run's report and the index of its output directory. A report that
/// cannot be drawn is a warning: the run's verdict and exit code do not depend on it.
pub fn after_run(dir: &Path) {
    if let Err(e) = write_run_report(dir) {
        eprintln!("harness run: warning: no report.html: {e:#}");
    }
    if let Some(out) = dir.parent() {
        if let Err(e) = write_index(out) {
            eprintln!("harness run: warning: no index.html: {e:#}");
        }
    }
}

/// Via a temporary file and a rename, so a browser (or a parallel writer) never sees half a page.
fn write_atomic(dst: &Path, bytes: &[u8]) -> Result<()> {
    let name = dst
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dst.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, dst).with_context(|| format!("writing {}", dst.display()))
}
