//! The proxy's decision log (`proxy.log` in the run directory): every control change
//! (partition, heal, delay) and every connection event (accept, hold, release, reset, close)
//! that the proxy reports through the `log` facade, stamped with the run's clock.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

struct FileLogger {
    start: Instant,
    out: Mutex<File>,
}

impl log::Log for FileLogger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Debug && m.target().starts_with("proxy")
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let line = format!(
            "{:10.6} {:5} {}\n",
            self.start.elapsed().as_secs_f64(),
            r.level(),
            r.args()
        );
        if let Ok(mut f) = self.out.lock() {
            let _ = f.write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}

/// Sends the proxy's log to `path` (once per process; later calls do nothing).
pub fn install(path: &Path, start: Instant) -> std::io::Result<()> {
    let file = File::create(path)?;
    let logger = FileLogger {
        start,
        out: Mutex::new(file),
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
    Ok(())
}
