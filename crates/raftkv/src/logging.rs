//! A tiny stderr logger: one line per event, `<UTC timestamp> <node id> <LEVEL> <message>`.
//!
//! The node is a plain threaded program, so a global level and a global node id are enough;
//! a `tracing` subscriber would add a dependency for no gain here. Every line is written with a
//! single `write_all` on a locked stderr so lines of different threads never interleave.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::SystemTime;

/// Severity of a log line; lines below the configured level are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static NODE: OnceLock<String> = OnceLock::new();

/// Sets the node id printed on every line (first call wins) and the minimum level.
pub fn init(node: &str, level: Level) {
    let _ = NODE.set(node.to_string());
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Parses `debug`, `info`, `warn` or `error` (case-insensitive).
pub fn parse_level(s: &str) -> Option<Level> {
    match s.to_ascii_lowercase().as_str() {
        "debug" => Some(Level::Debug),
        "info" => Some(Level::Info),
        "warn" => Some(Level::Warn),
        "error" => Some(Level::Error),
        _ => None,
    }
}

/// Whether a line of this level would be printed.
pub fn enabled(level: Level) -> bool {
    level as u8 >= LEVEL.load(Ordering::Relaxed)
}

/// Writes one line; use the `info!`-style macros instead of calling this directly.
pub fn write(level: Level, args: std::fmt::Arguments<'_>) {
    let node = NODE.get().map(String::as_str).unwrap_or("-");
    let line = format!(
        "{} {} {} {}\n",
        timestamp(SystemTime::now()),
        node,
        level.name(),
        args
    );
    // A closed stderr must not take the node down: logging is best effort.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// RFC 3339 UTC timestamp with milliseconds, e.g. `2026-11-23T13:40:35.123Z`.
fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// True at most once per `interval` for each `key`: for lines a misbehaving peer could
/// otherwise repeat many times a second (refused handshakes, reconnect failures).
pub fn rate_limited(key: &str, interval: std::time::Duration) -> bool {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Instant;
    static LAST: Mutex<Option<HashMap<String, Instant>>> = Mutex::new(None);
    let now = Instant::now();
    let mut guard = LAST.lock().unwrap_or_else(|p| p.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    // Bounded: keys are peers and reasons, but never let a flood of distinct keys grow it.
    if map.len() > 1024 {
        map.clear();
    }
    match map.get(key) {
        Some(t) if now.duration_since(*t) < interval => false,
        _ => {
            map.insert(key.to_string(), now);
            true
        }
    }
}

#[macro_export]
macro_rules! log_at {
    ($lvl:expr, $($arg:tt)*) => {
        if $crate::logging::enabled($lvl) {
            $crate::logging::write($lvl, format_args!($($arg)*));
        }
    };
}
#[macro_export]
macro_rules! debug { ($($arg:tt)*) => { $crate::log_at!($crate::logging::Level::Debug, $($arg)*) }; }
#[macro_export]
macro_rules! info { ($($arg:tt)*) => { $crate::log_at!($crate::logging::Level::Info, $($arg)*) }; }
#[macro_export]
macro_rules! warn { ($($arg:tt)*) => { $crate::log_at!($crate::logging::Level::Warn, $($arg)*) }; }
#[macro_export]
macro_rules! error { ($($arg:tt)*) => { $crate::log_at!($crate::logging::Level::Error, $($arg)*) }; }

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_441_235_123);
        assert_eq!(timestamp(t), "2026-11-23T13:40:35.123Z");
        // A leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(timestamp(t), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn levels_parse() {
        assert_eq!(parse_level("WARN"), Some(Level::Warn));
        assert_eq!(parse_level("nope"), None);
    }
}
