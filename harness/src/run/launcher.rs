//! The launcher: starts node processes, stops, pauses, resumes and restarts them, and makes sure
//! none outlives the harness.
//!
//! Every node runs in its own process group with its own data directory and log file. A node
//! dies with the harness in every case we can see:
//! - normal exit and panics in the main thread: [`Cluster`]'s `Drop` kills and reaps every node;
//! - Ctrl-C, SIGTERM, SIGHUP and panics in any thread: [`kill_all`] (called by the signal
//!   handler and the panic hook) SIGCONTs and SIGKILLs every registered process group;
//! - SIGKILL of the harness: the kernel sends the node SIGKILL (`PR_SET_PDEATHSIG`).
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that spawned the child exits, so nodes must be
//! spawned from a thread that lives as long as the run: the harness spawns them from its main
//! thread only.

use super::diskfault::Disks;
use super::probe::Probe;
use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Registry {
    /// Once set, no node may be started any more.
    shutting_down: bool,
    /// Process groups (= pids of the node processes) that may be alive.
    groups: BTreeSet<i32>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    shutting_down: false,
    groups: BTreeSet::new(),
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    match REGISTRY.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Kills every node process group still registered and forbids new starts. Safe to call from the
/// signal-handler thread and the panic hook; the owner of each `Child` still reaps it.
pub fn kill_all() {
    let mut reg = registry();
    reg.shutting_down = true;
    for &g in &reg.groups {
        let _ = killpg(Pid::from_raw(g), Signal::SIGCONT);
        let _ = killpg(Pid::from_raw(g), Signal::SIGKILL);
    }
}

/// Whether [`kill_all`] has been called.
pub fn shutting_down() -> bool {
    registry().shutting_down
}

/// Reserves `n` distinct free TCP ports on 127.0.0.1 for the nodes' listeners.
///
/// A killed node is restarted on the same ports, so its ports must stay free while it is down.
/// Ports the OS hands out for `bind(:0)` and for outgoing connections come from the ephemeral
/// range (`/proc/sys/net/ipv4/ip_local_port_range`), where any outgoing connection could take a
/// down node's port. So ports are drawn at random *below* that range, each checked by binding it
/// (all held together, then released); if there is no room below the range, `bind(:0)` it is.
/// Another process may still grab a port before the node binds it: the caller retries on that.
pub fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    const LOWEST: u16 = 10_000;
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|p| p.parse::<u16>().ok())
        })
        .unwrap_or(32_768);
    let mut listeners = Vec::with_capacity(n);
    if ephemeral_start > LOWEST + 1_000 {
        let mut tries = 0;
        while listeners.len() < n && tries < 50 * n {
            tries += 1;
            let port = rand::random_range(LOWEST..ephemeral_start);
            if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
                listeners.push(l);
            }
        }
    }
    while listeners.len() < n {
        listeners.push(TcpListener::bind("127.0.0.1:0")?);
    }
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

/// One node's fixed parameters (they stay the same across restarts).
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub id: String,
    /// Client address (the harness's clients connect here).
    pub client: SocketAddr,
    /// Where the node listens for its peers.
    pub peer_listen: SocketAddr,
    /// Peer id and the address this node must dial to reach it (a proxy listener).
    pub peers: Vec<(String, SocketAddr)>,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    /// The command line, from the system spec.
    pub argv: Vec<String>,
    /// Appended to `argv` while the node comes back as a new member (the spec's
    /// `[membership] join_args`; `None` when the system has none).
    pub join_args: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub workdir: PathBuf,
}

/// Process state of one node, as the harness left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Running,
    Paused,
    /// Killed by the nemesis, or exited on its own.
    Down,
}

struct Node {
    spec: NodeSpec,
    child: Option<Child>,
    paused: bool,
    starts: u32,
    /// Exit statuses of runs that ended without the harness killing them.
    crashes: Vec<String>,
    /// Its data directory was wiped and it has not been added back yet: it starts with the
    /// join arguments, so that it waits to be added instead of bootstrapping a configuration.
    joining: bool,
}

/// The (node id, pid) of every node process running, shared with the proxy, which attributes
/// connections to nodes by process.
pub type Pids = Arc<Mutex<Vec<(String, u32)>>>;

/// A cluster of node processes.
pub struct Cluster {
    cluster_id: String,
    nodes: Vec<Node>,
    pids: Pids,
    probe: Probe,
    /// Declared after `nodes`, and the nodes are killed in `Drop` first: a mount is only
    /// taken down once nothing runs on it.
    disks: Disks,
}

impl Cluster {
    pub fn new(cluster_id: String, specs: Vec<NodeSpec>, pids: Pids, probe: Probe) -> Cluster {
        let nodes = specs
            .into_iter()
            .map(|spec| Node {
                spec,
                child: None,
                paused: false,
                starts: 0,
                crashes: Vec::new(),
                joining: false,
            })
            .collect();
        Cluster {
            cluster_id,
            nodes,
            pids,
            probe,
            disks: Disks::default(),
        }
    }

    /// Mounts every node's data directory through lazyfs, over `<backing_root>/<id>`; call
    /// before the nodes first start.
    pub fn mount_disks(&mut self, backing_root: &Path) -> Result<()> {
        let dirs: Vec<(String, PathBuf)> = self
            .nodes
            .iter()
            .map(|n| (n.spec.id.clone(), n.spec.data_dir.clone()))
            .collect();
        self.disks = Disks::mount(backing_root, &dirs)?;
        Ok(())
    }

    pub fn disks(&self) -> &Disks {
        &self.disks
    }

    /// Publishes the running nodes' pids to the shared list.
    fn publish_pids(&self) {
        let now: Vec<(String, u32)> = self
            .nodes
            .iter()
            .filter_map(|n| n.child.as_ref().map(|c| (n.spec.id.clone(), c.id())))
            .collect();
        match self.pids.lock() {
            Ok(mut g) => *g = now,
            Err(p) => *p.into_inner() = now,
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn spec(&self, i: usize) -> &NodeSpec {
        &self.nodes[i].spec
    }

    pub fn id(&self, i: usize) -> &str {
        &self.nodes[i].spec.id
    }

    /// How this system's nodes are asked about themselves.
    pub fn probe(&self) -> &Probe {
        &self.probe
    }

    /// The cluster id every node is started with (`--cluster-id`).
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    pub fn state(&self, i: usize) -> NodeState {
        let n = &self.nodes[i];
        match (&n.child, n.paused) {
            (None, _) => NodeState::Down,
            (Some(_), true) => NodeState::Paused,
            (Some(_), false) => NodeState::Running,
        }
    }

    /// The full command line of node `i`: with the join arguments while it is a new member
    /// waiting to be added.
    pub fn command_line(&self, i: usize) -> Vec<String> {
        let spec = &self.nodes[i].spec;
        let mut argv = spec.argv.clone();
        if self.nodes[i].joining {
            argv.extend(spec.join_args.iter().flatten().cloned());
        }
        argv
    }

    /// Deletes everything in node `i`'s data directory (which must be down) and marks it as a
    /// new member: it starts with the join arguments until [`Cluster::joined`].
    pub fn wipe(&mut self, i: usize) -> Result<()> {
        if self.nodes[i].child.is_some() {
            bail!("node {} is running: not wiping its data", self.id(i));
        }
        let dir = self.nodes[i].spec.data_dir.clone();
        // Entry by entry: the directory itself may be a lazyfs mount point.
        if dir.exists() {
            for entry in
                std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?
            {
                let path = entry
                    .with_context(|| format!("listing {}", dir.display()))?
                    .path();
                let removed = if path.is_dir() && !path.is_symlink() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                removed.with_context(|| format!("removing {}", path.display()))?;
            }
        }
        self.nodes[i].joining = true;
        Ok(())
    }

    /// Node `i` was added back as a member: from now on it starts as usual.
    pub fn joined(&mut self, i: usize) {
        self.nodes[i].joining = false;
    }

    /// Whether node `i` was wiped and not yet added back.
    pub fn is_joining(&self, i: usize) -> bool {
        self.nodes[i].joining
    }

    /// Starts node `i` (which must be down). Does not wait for it to answer.
    pub fn spawn(&mut self, i: usize, why: &str) -> Result<()> {
        if self.nodes[i].child.is_some() {
            bail!("node {} is already running", self.id(i));
        }
        let argv = self.command_line(i);
        let node = &mut self.nodes[i];
        std::fs::create_dir_all(&node.spec.data_dir)
            .with_context(|| format!("creating {}", node.spec.data_dir.display()))?;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.spec.log)
            .with_context(|| format!("opening {}", node.spec.log.display()))?;
        node.starts += 1;
        writeln!(
            log,
            "==== harness: start #{} of {} ({why}): {}",
            node.starts,
            node.spec.id,
            argv.join(" ")
        )
        .with_context(|| format!("writing {}", node.spec.log.display()))?;
        let err_log = log
            .try_clone()
            .with_context(|| format!("opening {}", node.spec.log.display()))?;
        let Some(program) = argv.first() else {
            bail!("node {}: empty command line", node.spec.id);
        };
        let mut cmd = Command::new(program);
        cmd.args(&argv[1..])
            .envs(node.spec.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&node.spec.workdir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .process_group(0);
        let parent = nix::unistd::getpid();
        // SAFETY: the closure runs between fork and exec and only makes two async-signal-safe
        // system calls (prctl, getppid).
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
                // The harness may have died between fork and prctl: then nobody would kill us.
                if nix::unistd::getppid() != parent {
                    return Err(std::io::Error::other("the harness exited"));
                }
                Ok(())
            });
        }
        // Spawn under the registry lock, so that a concurrent kill_all either forbids this start
        // or sees (and kills) the new process.
        let mut reg = registry();
        if reg.shutting_down {
            bail!("shutting down: not starting {}", node.spec.id);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting node {} with {program}", node.spec.id))?;
        reg.groups.insert(child.id() as i32);
        drop(reg);
        node.child = Some(child);
        node.paused = false;
        self.publish_pids();
        Ok(())
    }

    /// Waits until node `i` is ready (per the system spec), or fails if it exits or `timeout`
    /// passes.
    pub fn wait_ready(&mut self, i: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let addr = self.nodes[i].spec.client;
        loop {
            if let Some(status) = self.try_wait(i) {
                bail!(
                    "node {} exited during startup ({status}); last lines of {}:\n{}",
                    self.id(i),
                    self.nodes[i].spec.log.display(),
                    log_tail(&self.nodes[i].spec.log, 15)
                );
            }
            if self.nodes[i].child.is_none() {
                bail!("node {} is not running", self.id(i));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "node {} was not ready on {addr} within {:?}; last lines of {}:\n{}",
                    self.id(i),
                    timeout,
                    self.nodes[i].spec.log.display(),
                    log_tail(&self.nodes[i].spec.log, 15)
                );
            }
            if self
                .probe
                .ready(
                    &self.nodes[i].spec.id,
                    addr,
                    left.min(Duration::from_millis(500)),
                )
                .is_ok()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(30).min(left));
        }
    }

    /// Reaps node `i` if it exited on its own; returns how it exited (`None` also when it was
    /// killed by [`kill_all`]).
    pub fn try_wait(&mut self, i: usize) -> Option<String> {
        let node = &mut self.nodes[i];
        let status = node
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())?;
        forget(node, status);
        let crashed = (!shutting_down()).then(|| {
            // (When shutting down, it was killed by `kill_all`, not a crash.)
            let s = describe(status);
            node.crashes.push(s.clone());
            s
        });
        self.publish_pids();
        crashed
    }

    /// Nodes that exited on their own since the last call (reaped), with their exit status.
    pub fn reap_exited(&mut self) -> Vec<(usize, String)> {
        (0..self.nodes.len())
            .filter_map(|i| self.try_wait(i).map(|s| (i, s)))
            .collect()
    }

    /// Total number of unexpected exits seen.
    pub fn crash_count(&self) -> usize {
        self.nodes.iter().map(|n| n.crashes.len()).sum()
    }

    /// SIGKILLs node `i` (after SIGCONT if paused) and reaps it.
    pub fn kill(&mut self, i: usize) {
        self.kill_quietly(i);
        self.publish_pids();
    }

    fn kill_quietly(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if let Some(mut child) = node.child.take() {
            let g = Pid::from_raw(child.id() as i32);
            let _ = killpg(g, Signal::SIGCONT);
            let _ = killpg(g, Signal::SIGKILL);
            let _ = child.kill();
            if let Ok(status) = child.wait() {
                forget_pid(child.id(), status);
            }
        }
        node.paused = false;
    }

    /// SIGKILLs every node in `nodes` first, then reaps them: as close to a simultaneous crash
    /// (a power cut of those machines) as signals get.
    pub fn kill_many(&mut self, nodes: &[usize]) {
        for &i in nodes {
            if let Some(c) = &self.nodes[i].child {
                let g = Pid::from_raw(c.id() as i32);
                let _ = killpg(g, Signal::SIGCONT);
                let _ = killpg(g, Signal::SIGKILL);
            }
        }
        for &i in nodes {
            self.kill_quietly(i);
        }
        self.publish_pids();
    }

    /// SIGSTOPs node `i`'s process group.
    pub fn pause(&mut self, i: usize) -> bool {
        let node = &mut self.nodes[i];
        match &node.child {
            Some(c) if !node.paused => {
                node.paused = killpg(Pid::from_raw(c.id() as i32), Signal::SIGSTOP).is_ok();
                node.paused
            }
            _ => false,
        }
    }

    /// SIGCONTs node `i`'s process group.
    pub fn resume(&mut self, i: usize) -> bool {
        let node = &mut self.nodes[i];
        match &node.child {
            Some(c) if node.paused => {
                let ok = killpg(Pid::from_raw(c.id() as i32), Signal::SIGCONT).is_ok();
                node.paused = !ok;
                ok
            }
            _ => false,
        }
    }

    /// Kills and reaps every node.
    pub fn shutdown(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }

    /// Number of starts of each node (1 + restarts).
    pub fn starts(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.starts).collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn forget(node: &mut Node, status: ExitStatus) {
    if let Some(c) = node.child.take() {
        forget_pid(c.id(), status);
    }
    node.paused = false;
}

fn forget_pid(pid: u32, _status: ExitStatus) {
    registry().groups.remove(&(pid as i32));
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!(
            "killed by {}",
            Signal::try_from(s)
                .map(|s| s.as_str())
                .unwrap_or("a signal")
        ),
        _ => status.to_string(),
    }
}

/// The last `n` lines of a log file (at most its last 8 KiB), for error messages.
pub fn log_tail(path: &Path, n: usize) -> String {
    let read = || -> std::io::Result<String> {
        let mut f = File::open(path)?;
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(8192)))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    match read() {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(n);
            lines[start..]
                .iter()
                .map(|l| format!("    {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Err(e) => format!("    (cannot read: {e})"),
    }
}

/// The directory of the harness executable (where `raftkv` sits after `cargo build`).
pub fn bin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Asks a program for `--version` (2 s at most); `None` if it has no answer.
pub fn node_version(bin: &str) -> Option<String> {
    let mut child = Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(Some(_)) | Err(_) => return None,
            Ok(None) if Instant::now() >= deadline => {
                let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    let mut out = String::new();
    child.stdout.take()?.read_to_string(&mut out).ok()?;
    let v = out.lines().next().unwrap_or("").trim().to_string();
    (!v.is_empty()).then_some(v)
}

/// Finds `program` as the shell would: a path as is, a bare name in `$PATH`. The error says what
/// to do.
pub fn check_program(program: &str) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        let meta = std::fs::metadata(&p).map_err(|e| {
            anyhow!(
                "node program {program} not found ({e}); build it (`cargo build --release`) or \
                 pass --node-bin"
            )
        })?;
        if !meta.is_file() || !executable(&p) {
            bail!("node program {program} is not an executable file");
        }
        return Ok(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| executable(p))
        .ok_or_else(|| {
            anyhow!(
                "node program {program:?} is not in $PATH; install it (etcd: `apt-get install \
                 etcd-server`; redis-server: `apt-get install redis-server`) or pass --node-bin"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn proc_state(pid: u32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?.1.trim_start().chars().next()
    }

    #[test]
    fn pause_resume_kill_restart_and_drop() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("harness-launcher-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let bin = dir.join("node.sh");
        std::fs::write(&bin, "#!/bin/sh\necho \"node $2 up\"\nexec sleep 30\n")?;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))?;
        let specs = two_specs(&dir, &bin);
        let pids: Pids = Arc::default();
        let mut c = Cluster::new("t".into(), specs, Arc::clone(&pids), test_probe());
        c.spawn(0, "test")?;
        c.spawn(1, "test")?;
        assert!(c.spawn(1, "test").is_err(), "already running");
        let pid = |c: &Cluster, i: usize| c.nodes[i].child.as_ref().map(Child::id).unwrap_or(0);
        let (p0, p1) = (pid(&c, 0), pid(&c, 1));
        assert_eq!(
            pids.lock().map(|g| g.clone()).unwrap_or_default(),
            vec![("n1".to_string(), p0), ("n2".to_string(), p1)]
        );
        assert!(c.pause(0));
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(proc_state(p0), Some('T'));
        assert_eq!(c.state(0), NodeState::Paused);
        assert!(c.resume(0));
        c.kill(1);
        assert_eq!(c.state(1), NodeState::Down);
        assert_eq!(proc_state(p1), None, "killed and reaped");
        c.spawn(1, "restart")?;
        assert_eq!(c.starts(), vec![1, 2]);
        let p1 = pid(&c, 1);
        assert!(c.pause(1), "a paused node is killed on drop too");
        drop(c);
        assert_eq!(proc_state(p0), None);
        assert_eq!(proc_state(p1), None);
        let log = std::fs::read_to_string(dir.join("n2.log"))?;
        assert!(log.contains("start #2 of n2 (restart)"), "{log}");

        // A wiped node starts as a new member until it is added back.
        let mut c = Cluster::new(
            "t".into(),
            two_specs(&dir, &bin),
            Arc::default(),
            test_probe(),
        );
        let data = dir.join("n1");
        std::fs::create_dir_all(data.join("log"))?;
        std::fs::write(data.join("log").join("seg"), b"x")?;
        std::fs::write(data.join("hard_state"), b"y")?;
        c.wipe(0)?;
        assert!(
            data.is_dir(),
            "the directory itself stays (it may be a mount point)"
        );
        assert_eq!(std::fs::read_dir(&data)?.count(), 0);
        assert!(c.is_joining(0));
        assert_eq!(c.command_line(0).last().map(String::as_str), Some("--join"));
        assert_eq!(c.command_line(1).last().map(String::as_str), Some("n2"));
        c.spawn(0, "rejoin")?;
        assert!(c.wipe(0).is_err(), "a running node is never wiped");
        c.joined(0);
        assert_eq!(c.command_line(0).last().map(String::as_str), Some("n1"));
        drop(c);
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    fn two_specs(dir: &Path, bin: &Path) -> Vec<NodeSpec> {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap_or_else(|_| unreachable!());
        (1..=2)
            .map(|i| NodeSpec {
                id: format!("n{i}"),
                client: addr,
                peer_listen: addr,
                peers: vec![],
                data_dir: dir.join(format!("n{i}")),
                log: dir.join(format!("n{i}.log")),
                argv: vec![bin.display().to_string(), "--id".into(), format!("n{i}")],
                join_args: Some(vec!["--join".into()]),
                env: vec![],
                workdir: dir.to_path_buf(),
            })
            .collect()
    }

    fn test_probe() -> Probe {
        Probe {
            adapter: Arc::new(adapters::native::NativeAdapter::new()),
            ready: crate::system::ReadyCheck::Tcp,
            leader: crate::system::LeaderFind::None,
            cluster: "t".into(),
        }
    }

    #[test]
    fn free_ports_are_distinct() -> std::io::Result<()> {
        let mut p = free_ports(20)?;
        p.sort_unstable();
        p.dedup();
        assert_eq!(p.len(), 20);
        Ok(())
    }
}
