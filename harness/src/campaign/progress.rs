//! The campaign's progress on stderr: on a terminal, an indicatif bar (runs done of total, verdict
//! counts, runs in flight, elapsed time, ETA) with a line printed above it per finished run;
//! otherwise (CI logs, tests) no bar, only the plain line per finished run.

use super::record::Counts;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

pub struct Display {
    bar: Option<ProgressBar>,
    start: Instant,
    deadline: Option<Instant>,
}

impl Display {
    /// `total`: runs of this campaign (shard), when bounded; `deadline`: the end of --duration.
    pub fn new(total: Option<u64>, deadline: Option<Instant>) -> Display {
        let start = Instant::now();
        if !std::io::stderr().is_terminal() {
            return Display {
                bar: None,
                start,
                deadline,
            };
        }
        let bar = match total {
            Some(n) => {
                let bar = ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs, ETA {eta} | {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar
            }
            None => {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} [{elapsed_precise}] {pos} runs | {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar
            }
        };
        bar.enable_steady_tick(Duration::from_millis(250));
        Display {
            bar: Some(bar),
            start,
            deadline,
        }
    }

    /// A line of its own (above the bar on a terminal).
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// Updates the bar: runs done, counts, runs in flight, and what is happening.
    pub fn update(&self, counts: &Counts, running: usize, note: &str) {
        let Some(bar) = &self.bar else { return };
        bar.set_position(counts.total);
        let mut msg = format!(
            "{} ok, {} violation, {} unknown, {} failed; {running} running",
            counts.linearizable, counts.not_linearizable, counts.unknown, counts.failed
        );
        if let Some(d) = self.deadline {
            let left = d.saturating_duration_since(Instant::now());
            msg.push_str(&format!(
                "; new runs for {}",
                humantime::format_duration(Duration::from_secs(left.as_secs()))
            ));
        }
        if !note.is_empty() {
            msg.push_str("; ");
            msg.push_str(note);
        }
        bar.set_message(msg);
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.finish();
    }
}
