//! Porcupine side by side: its driver (`tools/porcupine-driver/main.go`, built against
//! Porcupine outside this repository) run on the benchmark's own history files, when
//! `PORCUPINE_DRIVER` names it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the tables say when no driver is given.
pub const UNAVAILABLE: &str = "Porcupine: not available (set PORCUPINE_DRIVER to \
    tools/porcupine-driver/main.go built against Porcupine; see its README). Ours only.";

/// How long Porcupine may take on one history (or the corpus) before the row says `timeout`.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The driver binary.
pub struct Driver(PathBuf);

/// One run of the driver over some files.
pub struct Run {
    /// Per file, in order: `linearizable`, `not-linearizable`, `unknown`; `timeout` or
    /// `error` for all of them when the run did not finish.
    pub verdicts: Vec<String>,
    /// Sum of the driver's own read + check times (ms it prints per file), in seconds: like
    /// ours, without process start-up.
    pub secs: f64,
    /// Peak RSS of the driver process.
    pub rss_mb: f64,
}

impl Run {
    /// The verdict when the run covered one file.
    pub fn verdict(&self) -> &str {
        self.verdicts.first().map_or("error", String::as_str)
    }
}

/// The driver named by `PORCUPINE_DRIVER`, if it is a file.
pub fn driver() -> Option<Driver> {
    let p = PathBuf::from(std::env::var_os("PORCUPINE_DRIVER")?);
    p.is_file().then_some(Driver(p))
}

impl Driver {
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Runs the driver on `files` through a child of this benchmark (see [`child`]).
    pub fn check(&self, files: &[PathBuf]) -> Run {
        let failed = |what: &str| Run {
            verdicts: vec![what.to_string(); files.len().max(1)],
            secs: f64::NAN,
            rss_mb: f64::NAN,
        };
        let Ok(exe) = std::env::current_exe() else {
            return failed("error");
        };
        let Ok(out) = Command::new(exe)
            .arg("--porcupine-child")
            .arg(&self.0)
            .args(files)
            .stderr(Stdio::inherit())
            .output()
        else {
            return failed("error");
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let Some((secs, rss)) = lines.next().and_then(|l| l.split_once('\t')) else {
            return failed("error");
        };
        let verdicts: Vec<String> = lines.map(str::to_string).collect();
        if verdicts.len() != files.len() {
            return failed(verdicts.first().map_or("error", String::as_str));
        }
        Run {
            verdicts,
            secs: secs.parse().unwrap_or(f64::NAN),
            rss_mb: rss.parse().unwrap_or(f64::NAN),
        }
    }
}

/// Child side of [`Driver::check`]: `--porcupine-child DRIVER FILE...`. Runs the driver, with
/// [`TIMEOUT`], and prints `secs\tpeak_rss_mb`, then a verdict per file. A child of its own
/// because Linux carries the high-water RSS of the process that execs into the new program's
/// (`ru_maxrss`): from the benchmark, which holds generated histories, Porcupine's peak would
/// be at least the benchmark's; this small process's start-up RSS is a few MB.
pub fn child(args: &[String]) {
    let Some((driver, files)) = args.split_first() else {
        return;
    };
    let spawned = Command::new(driver)
        .args(files)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut c) = spawned else {
        println!("NaN\tNaN\nerror");
        return;
    };
    // The driver prints a line per file; read it all while it runs so it never blocks.
    let mut stdout = c.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = stdout.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        match c.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            _ => {
                let _ = c.kill();
                let _ = c.wait();
                break None;
            }
        }
    };
    let text = reader.join().unwrap_or_default();
    let rss_mb = children_peak_rss_kb() / 1024.0;
    if !status.is_some_and(|s| s.success()) {
        let what = if status.is_none() { "timeout" } else { "error" };
        println!("NaN\t{rss_mb:.0}\n{what}");
        return;
    }
    let mut secs = 0.0;
    let mut verdicts = Vec::new();
    for l in text.lines() {
        // FILE \t verdict \t N ms
        let f: Vec<&str> = l.split('\t').collect();
        verdicts.push(f.get(1).copied().unwrap_or("error").to_string());
        secs += f
            .get(2)
            .and_then(|ms| ms.trim_end_matches(" ms").parse::<f64>().ok())
            .unwrap_or(f64::NAN)
            / 1e3;
    }
    println!("{secs:.4}\t{rss_mb:.0}");
    for v in verdicts {
        println!("{v}");
    }
}

/// Peak RSS of the waited-for children, in KB (Linux's unit for `ru_maxrss`).
fn children_peak_rss_kb() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) == 0 {
            ru.ru_maxrss as f64
        } else {
            f64::NAN
        }
    }
}

/// Table cells for a run: verdict, seconds, MB.
pub fn cells(run: Option<&Run>) -> String {
    match run {
        None => "n/a | n/a | n/a".into(),
        Some(r) => format!("{} | {} | {}", r.verdict(), secs(r.secs), mb(r.rss_mb)),
    }
}

pub fn secs(s: f64) -> String {
    if s.is_nan() {
        "-".into()
    } else {
        format!("{s:.3}")
    }
}

pub fn mb(m: f64) -> String {
    if m.is_nan() {
        "-".into()
    } else {
        format!("{m:.0}")
    }
}
