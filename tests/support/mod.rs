//! Helpers shared by the end-to-end tests: finding binaries, temporary directories, running a
//! command with a time limit, and finding processes by command line.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A workspace binary (`harness`, `raftkv`) next to the test executable's target directory:
/// the test runs from `target/<profile>/deps/`, the binaries sit in `target/<profile>/`.
/// `cargo nextest run --workspace` builds them before running tests.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    let dir = exe
        .parent()
        .and_then(|deps| {
            if deps.ends_with("deps") {
                deps.parent()
            } else {
                Some(deps)
            }
        })
        .unwrap_or_else(|| panic!("no target directory above {}", exe.display()));
    let bin = dir.join(name);
    assert!(
        bin.is_file(),
        "{} not found: build the workspace binaries first (`cargo build --workspace` with the \
         same profile, or run the tests with `cargo nextest run --workspace`)",
        bin.display()
    );
    bin
}

/// A fresh directory under the system temp dir, removed on drop unless the test failed (then
/// it is kept for inspection and its path printed).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "e2e-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("keeping {} for inspection", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Kills (SIGKILL) and reaps a child on drop: no test leaves one behind, even when it fails.
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    pub fn id(&self) -> u32 {
        self.0.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Waits up to `timeout` for the child to exit; kills it past that and panics.
    pub fn wait_timeout(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let child = self.0.as_mut().unwrap_or_else(|| panic!("no child"));
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.0 = None;
                    return status;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    self.0 = None;
                    panic!("process did not exit within {timeout:?}; killed");
                }
                Err(e) => panic!("waiting: {e}"),
            }
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs a command to completion, at most `timeout`; output captured.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let mut guard = ChildGuard(Some(child));
    // Drain the pipes in threads so a chatty child never blocks on a full pipe.
    let (mut out, mut err) = {
        let c = guard.0.as_mut().unwrap_or_else(|| panic!("no child"));
        (c.stdout.take(), c.stderr.take())
    };
    let t_out = std::thread::spawn(move || read_all(out.as_mut()));
    let t_err = std::thread::spawn(move || read_all(err.as_mut()));
    let status = guard.wait_timeout(timeout);
    Output {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    }
}

fn read_all(r: Option<&mut impl std::io::Read>) -> Vec<u8> {
    let mut v = Vec::new();
    if let Some(r) = r {
        let _ = r.read_to_end(&mut v);
    }
    v
}

/// Processes (pid, command line) whose command line contains `needle`, excluding zombies.
pub fn processes_with(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
        if !cmd.contains(needle) {
            continue;
        }
        // Zombies have an empty cmdline already, but check the state to be sure.
        let state = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = state
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(false);
        if !zombie {
            found.push((pid, cmd.trim().to_string()));
        }
    }
    found
}

/// [`processes_with`] once they had `grace` to exit: fusermount3's auto-unmount helpers
/// (lazyfs mounts) leave a moment after the harness, in their own session.
pub fn processes_left(needle: &str, grace: std::time::Duration) -> Vec<(u32, String)> {
    let deadline = std::time::Instant::now() + grace;
    loop {
        let left = processes_with(needle);
        if left.is_empty() || std::time::Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Exit code, or a description of the signal.
pub fn code(status: &ExitStatus) -> i32 {
    status.code().unwrap_or(-1)
}

/// On drop, SIGCONTs and SIGKILLs every process whose command line contains the tag: whatever
/// a failing test (or a broken harness) left behind does not outlive the test.
pub struct KillOnDrop(pub String);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        let me = std::process::id();
        for (pid, cmd) in processes_with(&self.0) {
            // fusermount3 holds a lazyfs mount's auto-unmount: killed, it would leave the mount
            // behind; it unmounts and exits by itself once the harness is gone.
            if pid != me && !cmd.starts_with("fusermount3") {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGCONT);
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
    }
}

/// The workspace's `harness` binary, as a command to add arguments to.
pub fn harness() -> Command {
    Command::new(workspace_bin("harness"))
}

/// A finished command's exit code and output, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
