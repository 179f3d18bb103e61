//! Helpers for tests (and the load example) that run real `raftkv` processes on loopback.
//!
//! Every process is owned by a [`Node`] whose `Drop` SIGKILLs and reaps it, so a failing test
//! never leaves a node behind; [`Cluster`]'s `Drop` also removes its data directory.
#![allow(dead_code)] // each test binary uses a different subset

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

/// A free loopback port, chosen by the OS (bind to port 0, then release it).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// A fresh directory under the system temp dir, unique per process and call.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "raftkv-{tag}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// How to start one node.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    pub cluster_id: String,
    pub client_port: u16,
    pub peer_port: u16,
    /// (name, peer port) of every other member.
    pub peers: Vec<(String, u16)>,
    pub data_dir: PathBuf,
    pub log_file: PathBuf,
    pub extra: Vec<String>,
}

/// A running node process; killed and reaped on drop.
pub struct Node {
    pub spec: NodeSpec,
    child: Option<Child>,
}

impl Node {
    pub fn start(spec: NodeSpec) -> Node {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log_file)
            .expect("open node log");
        let mut cmd = Command::new(raftkv_bin());
        cmd.arg("--id")
            .arg(&spec.name)
            .arg("--cluster-id")
            .arg(&spec.cluster_id)
            .arg("--client")
            .arg(format!("127.0.0.1:{}", spec.client_port))
            .arg("--peer-listen")
            .arg(format!("127.0.0.1:{}", spec.peer_port))
            .arg("--data-dir")
            .arg(&spec.data_dir);
        for (name, port) in &spec.peers {
            cmd.arg("--peer").arg(format!("{name}=127.0.0.1:{port}"));
        }
        cmd.args(&spec.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = cmd.spawn().expect("spawn raftkv");
        Node {
            spec,
            child: Some(child),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn client_addr(&self) -> String {
        format!("127.0.0.1:{}", self.spec.client_port)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL and reap; asserts the process is gone afterwards.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = Pid::from_raw(child.id() as i32);
            let _ = kill(pid, Signal::SIGKILL);
            let _ = child.wait();
            assert!(
                kill(pid, None).is_err(),
                "process {pid} still exists after SIGKILL + wait"
            );
        }
    }

    /// SIGTERM, then wait (up to 5 s) for a clean exit; returns the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            if Instant::now() > until {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the process to exit on its own (e.g. refusing to start).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let until = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(st)) = child.try_wait() {
                self.child = None;
                return Some(st);
            }
            if Instant::now() > until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        *self = Node::start(self.spec.clone());
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.spec.log_file).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `raftkv` binary: Cargo's path in tests, a sibling of the running executable otherwise.
pub fn raftkv_bin() -> PathBuf {
    if let Some(p) = option_env!("CARGO_BIN_EXE_raftkv") {
        return PathBuf::from(p);
    }
    if let Ok(p) = std::env::var("RAFTKV_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/examples/load -> target/<profile>/raftkv
    let dir = exe.parent().and_then(Path::parent).expect("exe dir");
    dir.join("raftkv")
}

/// Fast timeouts for tests: elections in 150-300 ms.
pub fn fast_flags() -> Vec<String> {
    ["--election-timeout-ms", "150", "--heartbeat-ms", "30"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// A cluster of nodes n1..nN on fresh ports and directories.
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub dir: PathBuf,
}

impl Cluster {
    pub fn start(tag: &str, size: usize, extra: &[String]) -> Cluster {
        let dir = temp_dir(tag);
        let ports: Vec<(u16, u16)> = (0..size).map(|_| (free_port(), free_port())).collect();
        let names: Vec<String> = (1..=size).map(|i| format!("n{i}")).collect();
        let nodes = (0..size)
            .map(|i| {
                let spec = NodeSpec {
                    name: names[i].clone(),
                    cluster_id: "test".into(),
                    client_port: ports[i].0,
                    peer_port: ports[i].1,
                    peers: (0..size)
                        .filter(|&j| j != i)
                        .map(|j| (names[j].clone(), ports[j].1))
                        .collect(),
                    data_dir: dir.join(&names[i]),
                    log_file: dir.join(format!("{}.log", names[i])),
                    extra: extra.to_vec(),
                };
                Node::start(spec)
            })
            .collect();
        Cluster { nodes, dir }
    }

    /// Waits until exactly one running node says it leads and the others agree; returns its
    /// position in `nodes`.
    pub fn wait_leader(&self, timeout: Duration) -> usize {
        let until = Instant::now() + timeout;
        loop {
            if let Some(i) = self.find_leader() {
                return i;
            }
            assert!(
                Instant::now() < until,
                "no leader within {timeout:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The node that says it leads, if the running nodes agree on it.
    pub fn find_leader(&self) -> Option<usize> {
        let mut leader = None;
        let mut votes = 0;
        for (i, n) in self.nodes.iter().enumerate() {
            if !n.is_running() {
                continue;
            }
            let Ok(mut c) = Client::connect(&n.client_addr()) else {
                continue;
            };
            let Ok(st) = c.call(json!({"op": "status"})) else {
                continue;
            };
            if st["role"] == "leader" {
                leader = Some(i);
            }
            if st["leader"].is_string() {
                votes += 1;
            }
        }
        let running = self.nodes.iter().filter(|n| n.is_running()).count();
        leader.filter(|_| votes * 2 > self.nodes.len() && votes <= running)
    }

    pub fn logs(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            let log = n.log();
            let tail: Vec<&str> = log.lines().rev().take(25).collect();
            out.push_str(&format!("--- {} (last lines)\n", n.spec.name));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// Kills every node, then asserts that no process started from this cluster's directory
    /// is alive (pgrep).
    pub fn assert_no_process_left(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        let out = Command::new("pgrep")
            .arg("-f")
            .arg(self.dir.to_string_lossy().as_ref())
            .output()
            .expect("run pgrep");
        let pids = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(pids.is_empty(), "raftkv processes left behind: {pids}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        for n in &mut self.nodes {
            n.kill();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A blocking JSON-lines client connection.
pub struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
    next_id: u64,
}

impl Client {
    pub fn connect(addr: &str) -> std::io::Result<Client> {
        let addr: std::net::SocketAddr = addr
            .parse()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Client {
            r: BufReader::new(s.try_clone()?),
            w: s,
            next_id: 1,
        })
    }

    /// Sends one request (an `id` is added) and returns the answer.
    pub fn call(&mut self, mut req: Value) -> std::io::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        req["id"] = json!(id);
        let mut line = req.to_string();
        line.push('\n');
        self.w.write_all(line.as_bytes())?;
        let v = self.read_answer()?;
        if v["id"] != json!(id) {
            return Err(std::io::Error::other(format!("answer {v} to request {id}")));
        }
        Ok(v)
    }

    /// Sends raw bytes (need not be valid JSON).
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.w.write_all(bytes)
    }

    pub fn read_answer(&mut self) -> std::io::Result<Value> {
        let mut line = String::new();
        if self.r.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed",
            ));
        }
        serde_json::from_str(&line).map_err(std::io::Error::other)
    }
}

/// Sends `req` to whichever node leads, following `not_leader` hints and retrying until
/// `timeout`; returns the first answer that is not a redirect or a transport error.
pub fn call_leader(cluster: &Cluster, req: Value, timeout: Duration) -> Value {
    let until = Instant::now() + timeout;
    let mut target = cluster.nodes[0].client_addr();
    let mut i = 0;
    loop {
        assert!(
            Instant::now() < until,
            "no answer to {req} within {timeout:?}"
        );
        let answer = Client::connect(&target).and_then(|mut c| c.call(req.clone()));
        match answer {
            Ok(v) if v["error"] == "not_leader" => {
                if let Some(l) = v["leader"].as_str() {
                    target = l.to_string();
                    continue;
                }
            }
            Ok(v) => return v,
            Err(_) => {}
        }
        i += 1;
        let running: Vec<&Node> = cluster.nodes.iter().filter(|n| n.is_running()).collect();
        if !running.is_empty() {
            target = running[i % running.len()].client_addr();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
