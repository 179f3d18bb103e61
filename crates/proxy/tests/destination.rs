//! Destination listeners against real processes: attribution of each connection to the node
//! process (or shell-wrapped process) that dialed it, per-link faults on attributed
//! connections, unattributed connections reset, and killed dialers' held connections dropped
//! as ghosts on heal.
//!
//! Nodes are `python3` one-liners, each in its own process group, killed and reaped by a guard.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use proxy::{Candidates, HealMode, LinkId, Proxy, ProxyConfig};
use util::*;

/// A node: waits for a first line on stdin, then connects to `127.0.0.1:argv[1]`; every further
/// stdin line is sent on the connection; whatever arrives on it is copied to stdout.
const NODE: &str = r#"
import socket, sys, threading
sys.stdin.readline()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
def pump():
    while True:
        try:
            d = s.recv(4096)
        except OSError:
            break
        if not d:
            break
        sys.stdout.buffer.write(d)
        sys.stdout.buffer.flush()
threading.Thread(target=pump, daemon=True).start()
while True:
    line = sys.stdin.readline()
    if not line:
        break
    s.sendall(line.encode())
"#;

/// A node process (group), killed and reaped when dropped.
struct Node {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Receiver<Vec<u8>>,
}

impl Node {
    fn python(port: u16) -> Node {
        let mut cmd = Command::new("python3");
        cmd.arg("-c").arg(NODE).arg(port.to_string());
        Node::start(cmd)
    }

    /// `sh -c` that forks python as its child (`; true` keeps the shell from exec'ing it).
    fn wrapped(port: u16) -> Node {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"python3 -c "$0" "$1"; true"#)
            .arg(NODE)
            .arg(port.to_string());
        Node::start(cmd)
    }

    fn start(mut cmd: Command) -> Node {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0);
        let mut child = cmd.spawn().expect("spawn node (python3)");
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().expect("stdout");
        let (tx, out) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Node { child, stdin, out }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).expect("write to node");
        stdin.flush().expect("flush to node");
    }

    /// What the node received on its connection within `within`.
    fn received_for(&self, within: Duration) -> Vec<u8> {
        let deadline = Instant::now() + within;
        let mut got = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.out.recv_timeout(left) {
                Ok(d) => got.extend(d),
                Err(_) => break,
            }
        }
        got
    }

    /// Waits (up to the I/O timeout) for exactly `want` to arrive.
    fn expect_received(&self, want: &[u8]) {
        let deadline = Instant::now() + IO_TIMEOUT;
        let mut got = Vec::new();
        while got.len() < want.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.out.recv_timeout(left) {
                Ok(d) => got.extend(d),
                Err(_) => break,
            }
        }
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
    }

    /// Kills the whole process group and reaps the child.
    fn kill(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child's process group; no memory is involved.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stdin = None;
        self.kill();
    }
}

/// The candidate list a test controls.
#[derive(Clone, Default)]
struct Cands(Arc<Mutex<Vec<(String, u32)>>>);

impl Cands {
    fn add(&self, id: &str, pid: u32) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id.to_string(), pid));
    }

    fn callback(&self) -> Candidates {
        let list = Arc::clone(&self.0);
        Arc::new(move || list.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

fn proxy(heal_mode: HealMode) -> Proxy {
    Proxy::new(ProxyConfig { heal_mode, seed: 5 })
}

/// A proxy with destination `d` in front of a target the test accepts from, and links from
/// `a` and `b` declared.
fn destination(heal_mode: HealMode) -> (Proxy, std::net::TcpListener, SocketAddr, Cands) {
    let (target, taddr) = target();
    let proxy = proxy(heal_mode);
    let cands = Cands::default();
    let addr = proxy
        .add_destination("d", taddr, cands.callback())
        .expect("add destination");
    for n in ["a", "b"] {
        proxy
            .declare_link(&LinkId::new(n, "d"))
            .expect("declare link");
    }
    (proxy, target, addr, cands)
}

/// Accepts one connection at the target and reads its first line (the node's name).
fn accept_named(target: &std::net::TcpListener) -> (String, BufReader<std::net::TcpStream>) {
    let s = accept(target);
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).expect("first line");
    (line, r)
}

#[test]
fn each_connection_is_attributed_to_its_node_and_follows_its_links() {
    let (proxy, target, addr, cands) = destination(HealMode::Deliver);
    let (ad, bd) = (LinkId::new("a", "d"), LinkId::new("b", "d"));
    let mut a = Node::python(addr.port());
    let mut b = Node::python(addr.port());
    cands.add("a", a.pid());
    cands.add("b", b.pid());
    a.send("connect\n");
    a.send("A\n");
    b.send("connect\n");
    b.send("B\n");
    let mut conns = [accept_named(&target), accept_named(&target)];
    conns.sort_by(|x, y| x.0.cmp(&y.0));
    let [(na, mut at_a), (nb, mut at_b)] = conns;
    assert_eq!((na.as_str(), nb.as_str()), ("A\n", "B\n"));

    let st = proxy.stats();
    for l in [&ad, &bd] {
        assert_eq!(st[l].connections_total, 1, "{l}");
        assert_eq!(st[l].connections_attributed, 1, "{l}");
        assert_eq!(st[l].listen_addr, None, "{l} has no listener of its own");
    }
    let ds = &proxy.destination_stats()["d"];
    assert_eq!((ds.connections_total, ds.attributed), (2, 2));
    assert_eq!((ds.unattributed, ds.self_dials), (0, 0));
    assert_eq!(ds.listen_addr, addr);

    // Hold a->d (a's bytes) and d->b (the replies to b): the other two directions flow.
    proxy.partition([&ad, &bd.reversed()]).expect("partition");
    a.send("a2\n");
    b.send("b2\n");
    at_a.get_mut().write_all(b"to-a\n").expect("write");
    at_b.get_mut().write_all(b"to-b\n").expect("write");
    let mut line = String::new();
    at_b.read_line(&mut line).expect("b's bytes pass");
    assert_eq!(line, "b2\n");
    a.expect_received(b"to-a\n");
    assert!(
        read_for(at_a.get_mut(), Duration::from_millis(300)).is_empty(),
        "a's bytes passed the held link a->d"
    );
    assert!(
        b.received_for(Duration::from_millis(100)).is_empty(),
        "d's bytes passed the held link d->b"
    );

    proxy.heal_all();
    line.clear();
    at_a.read_line(&mut line).expect("held bytes delivered");
    assert_eq!(line, "a2\n");
    b.expect_received(b"to-b\n");
    assert!(eventually(IO_TIMEOUT, || proxy.stats()[&ad].bytes == 5));
}

#[test]
fn a_connection_from_an_unrelated_process_is_reset_and_counted() {
    let (proxy, target, addr, cands) = destination(HealMode::Deliver);
    let a = Node::python(addr.port());
    cands.add("a", a.pid());
    // The test process itself is no candidate.
    let mut c = connect(addr);
    let _ = c.write_all(b"intruder\n");
    assert!(ends_within(&mut c, IO_TIMEOUT), "not reset");
    assert!(
        accept_within(&target, Duration::from_millis(200)).is_none(),
        "an unattributed connection reached the target"
    );
    assert!(eventually(IO_TIMEOUT, || proxy.destination_stats()["d"]
        .unattributed
        == 1));
    let st = proxy.stats();
    assert_eq!(st[&LinkId::new("a", "d")].connections_total, 0);
    assert_eq!(st[&LinkId::new("b", "d")].connections_total, 0);
}

#[test]
fn a_shell_wrapped_node_is_attributed_through_its_child() {
    let (proxy, target, addr, cands) = destination(HealMode::Deliver);
    let mut w = Node::wrapped(addr.port());
    cands.add("a", w.pid());
    w.send("connect\n");
    w.send("A\n");
    let (name, _s) = accept_named(&target);
    assert_eq!(name, "A\n");
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", w.pid()))
        .expect("children of the shell");
    assert!(
        !children.trim().is_empty(),
        "the shell exec'd python: the test would not exercise a wrapper"
    );
    let st = proxy.stats();
    assert_eq!(st[&LinkId::new("a", "d")].connections_attributed, 1);
    assert_eq!(proxy.destination_stats()["d"].unattributed, 0);
}

#[test]
fn a_killed_nodes_held_connection_is_dropped_on_heal_not_delivered() {
    let (proxy, target, addr, cands) = destination(HealMode::Deliver);
    let ad = LinkId::new("a", "d");
    let bd = LinkId::new("b", "d");
    let mut a = Node::python(addr.port());
    let mut b = Node::python(addr.port());
    cands.add("a", a.pid());
    cands.add("b", b.pid());
    proxy.partition([&ad, &bd]).expect("partition");
    a.send("connect\n");
    a.send("ghost\n");
    b.send("connect\n");
    b.send("alive\n");
    // Both attributed (so both handshakes are held), then a dies.
    assert!(eventually(IO_TIMEOUT, || {
        let st = proxy.stats();
        st[&ad].connections_total == 1 && st[&bd].connections_total == 1
    }));
    assert!(accept_within(&target, Duration::from_millis(100)).is_none());
    a.kill();

    proxy.heal_all();
    // b is alive: its connection goes through, late.
    let (name, _s) = accept_named(&target);
    assert_eq!(name, "alive\n");
    // a's never does.
    assert!(
        accept_within(&target, Duration::from_millis(500)).is_none(),
        "the dead node's connection reached the target"
    );
    assert!(eventually(IO_TIMEOUT, || proxy.stats()[&ad].ghosts == 1));
    let st = proxy.stats();
    assert_eq!(st[&bd].ghosts, 0);
    assert_eq!(st[&ad].connections_active, 0);
}

#[test]
fn the_destination_dialing_itself_passes_governed_by_no_link() {
    let (proxy, target, addr, cands) = destination(HealMode::Deliver);
    let mut d = Node::python(addr.port());
    cands.add("d", d.pid());
    // Every link touching d is held: a node is never partitioned from itself.
    proxy
        .partition(proxy::cut_between(&[vec!["a", "b"], vec!["d"]]))
        .expect("partition");
    d.send("connect\n");
    d.send("self\n");
    let (name, mut s) = accept_named(&target);
    assert_eq!(name, "self\n");
    s.get_mut().write_all(b"back\n").expect("write");
    d.expect_received(b"back\n");
    let ds = &proxy.destination_stats()["d"];
    assert_eq!((ds.self_dials, ds.attributed, ds.unattributed), (1, 0, 0));
    assert!(
        proxy.stats().keys().all(|l| l.from != l.to),
        "a self link is listed"
    );
}
