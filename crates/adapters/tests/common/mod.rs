//! Shared test helpers: external binaries, child processes reaped on drop, temp dirs, free
//! ports, and a tiny in-test server speaking the native JSON-lines protocol.
#![allow(dead_code)]

use adapters::{Op, Reply};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Whether `bin` is on the PATH. Missing: the test fails, unless HARNESS_SKIP_EXTERNAL_STORES=1,
/// in which case it is skipped (the caller returns early).
pub fn require(bin: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(bin).is_file()));
    if found {
        return true;
    }
    if std::env::var("HARNESS_SKIP_EXTERNAL_STORES").as_deref() == Ok("1") {
        eprintln!("SKIPPED: {bin} is not installed (HARNESS_SKIP_EXTERNAL_STORES=1)");
        return false;
    }
    panic!(
        "{bin} is not installed: install it (see .ci/run: apt-get install etcd-server \
         redis-server) or set HARNESS_SKIP_EXTERNAL_STORES=1 to skip the tests that need it"
    );
}

pub fn secs(s: f64) -> Instant {
    Instant::now() + Duration::from_secs_f64(s)
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("adapters-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {dir:?}: {e}"));
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process in its own process group: SIGKILLed (group) and reaped on drop.
pub struct Proc {
    pub child: Child,
    pub name: String,
    pub log: PathBuf,
}

impl Proc {
    /// Starts `program args`, output to `log`.
    pub fn start(program: &str, args: &[String], log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).unwrap_or_else(|e| panic!("create {log:?}: {e}"));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("dup {log:?}: {e}"));
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        Proc {
            child,
            name: program.to_string(),
            log,
        }
    }

    /// Whether it has exited (it is then reaped).
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    fn signal(&self, sig: i32) {
        let pid = i32::try_from(self.child.id()).unwrap_or(0);
        // SAFETY: plain system call on our own, unreaped child.
        unsafe {
            libc::kill(pid, sig);
        }
    }

    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    pub fn kill(&mut self) {
        let pid = i32::try_from(self.child.id()).unwrap_or(0);
        // SAFETY: as above; the group is the child's own.
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }

    /// The last lines of its log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.resume();
        self.kill();
    }
}

/// Whether a process with this pid exists (zombies count as gone for our purpose only once
/// reaped; callers check after the parent reaped it).
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // A zombie still answers kill(0); look at its state too.
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    if state.is_empty() {
        return false;
    }
    let zombie = state
        .rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
    // SAFETY: signal 0 only checks for existence.
    let exists = unsafe { libc::kill(pid, 0) } == 0;
    exists && !zombie
}

/// Polls `f` until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    f()
}

/// The repository's `crates/adapters` directory.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A native-protocol server on a thread per connection, with a shared store. Special keys:
/// `hang` (never answered), `notleader` (not_leader, hint 127.0.0.1:1), `timeout` (error
/// timeout), `dropped` (error dropped), `garbage` (a non-JSON line), `close` (connection closed
/// without an answer), `badreq` (a bad_request without id), `bye` (answered, then the connection
/// is closed).
pub struct NativeServer {
    pub addr: SocketAddr,
    pub connections: Arc<Mutex<u64>>,
}

impl NativeServer {
    pub fn start(node: &str, cluster: Option<&str>) -> NativeServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = l.local_addr().unwrap_or_else(|e| panic!("addr: {e}"));
        let store: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let connections: Arc<Mutex<u64>> = Arc::default();
        let node = node.to_string();
        let cluster = cluster.map(str::to_string);
        let conns = Arc::clone(&connections);
        std::thread::spawn(move || {
            for s in l.incoming().map_while(Result::ok) {
                if let Ok(mut n) = conns.lock() {
                    *n += 1;
                }
                let store = Arc::clone(&store);
                let node = node.clone();
                let cluster = cluster.clone();
                std::thread::spawn(move || serve_conn(s, &store, &node, cluster.as_deref()));
            }
        });
        NativeServer { addr, connections }
    }

    pub fn connections(&self) -> u64 {
        self.connections.lock().map(|n| *n).unwrap_or(0)
    }
}

fn serve_conn(
    s: TcpStream,
    store: &Mutex<HashMap<String, String>>,
    node: &str,
    cluster: Option<&str>,
) {
    let _ = s.set_nodelay(true);
    let Ok(mut w) = s.try_clone() else { return };
    for line in BufReader::new(s).lines().map_while(Result::ok) {
        let Ok(req) = serde_json::from_str::<Value>(&line) else {
            let _ = writeln!(w, "{}", json!({"ok": false, "error": "bad_request"}));
            continue;
        };
        let id = req["id"].clone();
        let key = req["key"].as_str().unwrap_or("").to_string();
        let answer = match (req["op"].as_str().unwrap_or(""), key.as_str()) {
            ("status", _) => {
                let mut a = json!({"id": id, "ok": true, "node": node, "role": "leader",
                    "term": 3, "leader": node, "commit": 1});
                if let Some(c) = cluster {
                    a["cluster"] = json!(c);
                }
                a
            }
            (_, "hang") => {
                std::thread::sleep(Duration::from_secs(3600));
                return;
            }
            (_, "close") => return,
            (_, "garbage") => {
                let _ = writeln!(w, "this is not json");
                continue;
            }
            (_, "badreq") => {
                json!({"ok": false, "error": "bad_request", "detail": "line too long"})
            }
            (_, "notleader") => {
                json!({"id": id, "ok": false, "error": "not_leader", "leader": "127.0.0.1:1"})
            }
            (_, "timeout") => json!({"id": id, "ok": false, "error": "timeout"}),
            (_, "dropped") => {
                json!({"id": id, "ok": false, "error": "dropped", "detail": "shutting down"})
            }
            ("read", _) => {
                let v = store.lock().ok().and_then(|m| m.get(&key).cloned());
                json!({"id": id, "ok": true, "value": v})
            }
            ("write", _) => {
                if let Ok(mut m) = store.lock() {
                    m.insert(key.clone(), req["value"].as_str().unwrap_or("").to_string());
                }
                json!({"id": id, "ok": true})
            }
            ("cas", _) => {
                let Ok(mut m) = store.lock() else { return };
                let cur = m.get(&key).cloned();
                if cur.as_deref() == req["from"].as_str() {
                    m.insert(key.clone(), req["to"].as_str().unwrap_or("").to_string());
                    json!({"id": id, "ok": true})
                } else {
                    json!({"id": id, "ok": false, "error": "cas_mismatch", "value": cur})
                }
            }
            _ => json!({"id": id, "ok": false, "error": "bad_request", "detail": "unknown op"}),
        };
        if w.write_all(format!("{answer}\n").as_bytes()).is_err() {
            return;
        }
        if key == "bye" {
            return;
        }
    }
}

/// A read of `k`.
pub fn read(k: &str) -> Op {
    Op::Read { key: k.into() }
}

/// A write of `v` to `k`.
pub fn write(k: &str, v: &str) -> Op {
    Op::Write {
        key: k.into(),
        value: v.into(),
    }
}

/// A cas of `k` from `from` (`None`: absent) to `to`.
pub fn cas(k: &str, from: Option<&str>, to: &str) -> Op {
    Op::Cas {
        key: k.into(),
        from: from.map(str::to_string),
        to: to.into(),
    }
}

/// An `Ok` reply carrying `v`.
pub fn ok(v: Option<&str>) -> Reply {
    Reply::Ok {
        value: v.map(str::to_string),
    }
}

/// A cas mismatch that reports `current`.
pub fn mismatch(current: Option<&str>) -> Reply {
    Reply::Fail {
        error: "cas_mismatch".into(),
        current: Some(current.map(str::to_string)),
    }
}
