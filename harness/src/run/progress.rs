//! The live progress line on stderr: elapsed time, ok/fail/info counts, the current fault and
//! the live verdict.
//!
//! On a terminal the line is redrawn in place twice a second; otherwise (CI logs, tests) a plain
//! line is printed every five seconds.

use super::checker::Live;
use super::workload::Stats;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Shared state shown on the line.
#[derive(Debug, Default)]
pub struct Progress {
    fault: Mutex<String>,
    phase: Mutex<String>,
    live: OnceLock<Arc<Live>>,
}

impl Progress {
    pub fn set_fault(&self, s: impl Into<String>) {
        if let Ok(mut f) = self.fault.lock() {
            *f = s.into();
        }
    }

    pub fn set_phase(&self, s: impl Into<String>) {
        if let Ok(mut f) = self.phase.lock() {
            *f = s.into();
        }
    }

    /// Shows the live checker's verdict on the line from now on.
    pub fn set_checker(&self, live: Arc<Live>) {
        let _ = self.live.set(live);
    }

    fn line(&self, start: Instant, stats: &Stats) -> String {
        let (ok, fail, info) = stats.snapshot();
        let fault = self.fault.lock().map(|f| f.clone()).unwrap_or_default();
        let phase = self.phase.lock().map(|f| f.clone()).unwrap_or_default();
        let fault = if fault.is_empty() {
            "none".into()
        } else {
            fault
        };
        let check = match self.live.get() {
            Some(live) => format!(" | check: {}", live.describe()),
            None => String::new(),
        };
        format!(
            "[{:6.1}s] {phase} ok {ok} fail {fail} info {info} | fault: {fault}{check}",
            start.elapsed().as_secs_f64()
        )
    }
}

/// The printing thread; stops and clears the line on [`Ticker::stop`] or drop.
pub struct Ticker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    tty: bool,
}

impl Ticker {
    pub fn start(progress: Arc<Progress>, stats: Arc<Stats>, start: Instant) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let tty = std::io::stderr().is_terminal();
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                let every = if tty {
                    Duration::from_millis(500)
                } else {
                    Duration::from_secs(5)
                };
                let mut next = Instant::now() + every;
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                    if Instant::now() < next {
                        continue;
                    }
                    next += every;
                    let line = progress.line(start, &stats);
                    let mut err = std::io::stderr().lock();
                    let _ = if tty {
                        write!(err, "\r\x1b[2K{line}")
                    } else {
                        writeln!(err, "{line}")
                    };
                    let _ = err.flush();
                }
            })
            .ok();
        Ticker { stop, handle, tty }
    }

    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
            if self.tty {
                eprint!("\r\x1b[2K");
            }
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Prints a message on stderr without garbling the progress line.
pub fn say(msg: &str) {
    let mut err = std::io::stderr().lock();
    let _ = if err.is_terminal() {
        writeln!(err, "\r\x1b[2K{msg}")
    } else {
        writeln!(err, "{msg}")
    };
}
