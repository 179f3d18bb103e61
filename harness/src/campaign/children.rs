//! The campaign's child processes (`harness run`), and how every way out of the campaign takes
//! them down:
//! - each run is started in its own process group, so a terminal's Ctrl-C reaches the campaign
//!   only, and the campaign decides: SIGKILL to every run's group ([`kill_all`]);
//! - normal exit, an error or a panic in the main thread: [`Flight`]'s Drop kills and reaps the
//!   runs in flight; a panic in another thread: the panic hook kills them;
//! - Ctrl-C, SIGTERM, SIGHUP: the signal handler kills them, the main loop reaps them and marks
//!   them interrupted;
//! - SIGKILL of the campaign: each run was started with `PR_SET_PDEATHSIG` = SIGKILL, so the
//!   kernel kills it, and each run takes its nodes down the same way.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that started the child exits, so runs are only
//! started from the campaign's main thread ([`spawn`] is only called from the main loop).

use anyhow::{bail, Context, Result};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

#[derive(Default)]
struct Registry {
    /// Process group ids (= pids) of the runs in flight.
    groups: BTreeSet<i32>,
    /// Set by [`kill_all`]: no run may start after it.
    shutting_down: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    groups: BTreeSet::new(),
    shutting_down: false,
});
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static SIGNALS: AtomicU32 = AtomicU32::new(0);

fn registry() -> MutexGuard<'static, Registry> {
    // A panic while holding the lock must not stop the cleanup.
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether Ctrl-C (SIGINT), SIGTERM or SIGHUP arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// SIGKILLs every run's process group, and forbids new runs.
pub fn kill_all() {
    let mut reg = registry();
    reg.shutting_down = true;
    for &g in &reg.groups {
        let _ = killpg(Pid::from_raw(g), Signal::SIGKILL);
    }
}

/// Installs the signal handler (first signal: kill the runs, let the main loop write the
/// summary; second: exit at once) and a panic hook that kills the runs.
pub fn install_handlers() {
    let handler = || {
        let n = SIGNALS.fetch_add(1, Ordering::SeqCst) + 1;
        INTERRUPTED.store(true, Ordering::SeqCst);
        kill_all();
        if n == 1 {
            eprintln!(
                "\nharness campaign: interrupted: runs in flight killed; writing the summary \
                 (interrupt again to exit at once)"
            );
        } else {
            eprintln!("harness campaign: interrupted twice: exiting");
            std::process::exit(255);
        }
    };
    if let Err(e) = ctrlc::set_handler(handler) {
        eprintln!("harness campaign: warning: cannot install the signal handler: {e}");
    }
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        kill_all();
        default_hook(info);
    }));
}

/// Starts `exe argv...` in its own process group, stdout and stderr to `log`, with the parent
/// death signal set. Call from the main thread only (see the module doc).
pub fn spawn(exe: &Path, argv: &[String], log: &Path) -> Result<Child> {
    let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = out
        .try_clone()
        .with_context(|| format!("opening {}", log.display()))?;
    let mut cmd = Command::new(exe);
    cmd.args(argv)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs between fork and exec and only makes two async-signal-safe
    // system calls (prctl, getppid).
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            // The campaign may have died between fork and prctl: then nobody would kill us.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::other("the campaign exited"));
            }
            Ok(())
        });
    }
    // Under the registry lock, so that a concurrent kill_all either forbids this start or sees
    // (and kills) the new process.
    let mut reg = registry();
    if reg.shutting_down {
        bail!("shutting down: not starting another run");
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    reg.groups.insert(child.id() as i32);
    Ok(child)
}

/// Forgets a reaped run.
pub fn forget(pid: u32) {
    registry().groups.remove(&(pid as i32));
}

/// The runs in flight, killed (SIGKILL to their groups) and reaped on drop.
pub struct Flight<T> {
    pub running: Vec<(Child, T)>,
}

impl<T> Flight<T> {
    pub fn new() -> Self {
        Flight {
            running: Vec::new(),
        }
    }

    /// Kills every run in flight and reaps it; returns them with their exit statuses.
    pub fn kill_and_reap(&mut self) -> Vec<(Option<std::process::ExitStatus>, T)> {
        let mut done = Vec::new();
        for (mut child, t) in self.running.drain(..) {
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.kill();
            let status = child.wait().ok();
            forget(child.id());
            done.push((status, t));
        }
        done
    }
}

impl<T> Drop for Flight<T> {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}
