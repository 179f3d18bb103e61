//! The redis adapter against real redis-server processes (a master and a replica).

mod common;

use adapters::redis::RedisAdapter;
use adapters::{Adapter, ConnectError, NodeEndpoint, Op, OpContext, Reply, Role, Session};
use common::{cas, free_port, mismatch, ok, read, secs, write, Proc, TempDir};
use std::time::{Duration, Instant};

struct Redis {
    proc: Proc,
    port: u16,
    _dir: TempDir,
}

impl Redis {
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A redis-server on a free port (a replica of `master` if given), or `None` when skipped.
fn start_redis(master: Option<u16>) -> Option<Redis> {
    if !common::require("redis-server") {
        return None;
    }
    // A free port can be taken between the probe and redis's bind: then try another one.
    for _ in 0..3 {
        if let Some(r) = try_start_redis(master) {
            return Some(r);
        }
    }
    panic!("redis-server would not start (see the logs above)");
}

fn try_start_redis(master: Option<u16>) -> Option<Redis> {
    let dir = TempDir::new("redis");
    let port = free_port();
    let mut args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        // Redis 7 waits 5 s for more replicas before a diskless full sync by default.
        "--repl-diskless-sync-delay",
        "0",
        "--dir",
        &dir.path().to_string_lossy(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(m) = master {
        args.extend(["--replicaof".into(), "127.0.0.1".into(), m.to_string()]);
    }
    let mut proc = Proc::start("redis-server", &args, dir.path().join("redis.log"));
    let node = NodeEndpoint::new("n", format!("127.0.0.1:{port}"));
    let mut exited = false;
    let ready = common::wait_for(Duration::from_secs(20), || {
        exited = exited || proc.exited();
        exited || RedisAdapter::new().open(&node, secs(1.0)).is_ok()
    });
    if exited || !ready {
        eprintln!("redis-server did not start:\n{}", proc.log_tail());
        return None;
    }
    Some(Redis {
        proc,
        port,
        _dir: dir,
    })
}

fn session(adapter: &RedisAdapter, node: &Redis) -> Box<dyn Session> {
    match adapter.connect(&NodeEndpoint::new("n", node.addr()), secs(5.0)) {
        Ok(s) => s,
        Err(e) => panic!("connect: {e}"),
    }
}

/// Sends a raw command with the redis crate (test setup only).
fn raw(node: &Redis, args: &[&str]) -> redis::Value {
    let client = redis::Client::open(format!("redis://{}/", node.addr()))
        .unwrap_or_else(|e| panic!("client: {e}"));
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut con)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

#[test]
fn redis_master_ops_and_status() {
    let Some(master) = start_redis(None) else {
        return;
    };
    let mut s = session(&RedisAdapter::new(), &master);
    let ctx = OpContext::new("p0", 1);
    let mut run = |op: Op| s.execute(&op, &ctx, secs(5.0));
    assert_eq!(run(read("k1")), ok(None));
    assert_eq!(run(write("k1", "v1")), ok(None));
    assert_eq!(run(read("k1")), ok(Some("v1")));
    assert_eq!(run(cas("k1", Some("v1"), "v2")), ok(None));
    assert_eq!(run(read("k1")), ok(Some("v2")));
    assert_eq!(run(cas("k1", Some("v1"), "v3")), mismatch(Some("v2")));
    assert_eq!(run(cas("k2", Some("v1"), "v3")), mismatch(None));
    assert_eq!(run(cas("k2", None, "v4")), ok(None));
    assert_eq!(run(cas("k2", None, "v5")), mismatch(Some("v4")));
    assert_eq!(run(write("k3", "")), ok(None));
    assert_eq!(run(read("k3")), ok(Some("")));
    assert_eq!(run(cas("k3", None, "x")), mismatch(Some("")));
    // A key of another type: refused before running.
    raw(&master, &["LPUSH", "list", "x"]);
    let r = run(read("list"));
    assert!(
        matches!(&r, Reply::Fail { error, .. } if error.starts_with("WRONGTYPE")),
        "{r:?}"
    );
    let st = s
        .status(secs(5.0))
        .unwrap_or_else(|e| panic!("status: {e}"));
    assert_eq!(st.role, Role::Leader);
}

#[test]
fn redis_replica_refuses_writes_and_serves_reads_when_asked() {
    let Some(master) = start_redis(None) else {
        return;
    };
    let Some(replica) = start_redis(Some(master.port)) else {
        return;
    };
    let ctx = OpContext::new("p0", 1);
    // wait_replicas = 1: Ok only once the replica has the write.
    let waiting = RedisAdapter::new().wait_replicas(1, Duration::from_millis(200));
    let mut m = session(&waiting, &master);
    let acked = common::wait_for(Duration::from_secs(20), || {
        m.execute(&write("k", "v1"), &ctx, secs(2.0)) == ok(None)
    });
    assert!(
        acked,
        "the replica never acknowledged:\n{}",
        replica.proc.log_tail()
    );

    // A write sent to the replica: READONLY, surely not applied.
    let mut r = session(&RedisAdapter::new(), &replica);
    let w = r.execute(&write("k", "v2"), &ctx, secs(5.0));
    assert!(
        matches!(&w, Reply::Fail { error, .. } if error.starts_with("READONLY")),
        "{w:?}"
    );
    let w = r.execute(&cas("k", Some("v1"), "v2"), &ctx, secs(5.0));
    assert!(
        matches!(&w, Reply::Fail { error, .. } if error.starts_with("READONLY")),
        "{w:?}"
    );
    // Reads on a replica, by default: refused, naming the master.
    assert_eq!(
        r.execute(&read("k"), &ctx, secs(5.0)),
        Reply::NotLeader {
            hint: Some(master.addr())
        }
    );
    let st = r
        .status(secs(5.0))
        .unwrap_or_else(|e| panic!("status: {e}"));
    assert_eq!(st.role, Role::Follower);
    assert_eq!(st.leader_addr, Some(master.addr()));
    // With read_from_replicas, the replica answers.
    let mut rr = session(&RedisAdapter::new().read_from_replicas(true), &replica);
    assert_eq!(rr.execute(&read("k"), &ctx, secs(5.0)), ok(Some("v1")));
    // The master still says v1: nothing was applied by the refused writes.
    assert_eq!(m.execute(&read("k"), &ctx, secs(5.0)), ok(Some("v1")));

    // WAIT for more replicas than there are: applied on the master, but only Info.
    let greedy = RedisAdapter::new().wait_replicas(2, Duration::from_millis(100));
    let mut g = session(&greedy, &master);
    let w = g.execute(&write("k", "v3"), &ctx, secs(5.0));
    assert!(
        matches!(&w, Reply::Info { error } if error.contains("1 of 2 replicas")),
        "{w:?}"
    );
    assert_eq!(m.execute(&read("k"), &ctx, secs(5.0)), ok(Some("v3")));

    // min-replicas-to-write not met: NOREPLICAS, refused before running.
    raw(&master, &["CONFIG", "SET", "min-replicas-to-write", "5"]);
    let w = m.execute(&write("k", "v4"), &ctx, secs(5.0));
    assert!(
        matches!(&w, Reply::Fail { error, .. } if error.starts_with("NOREPLICAS")),
        "{w:?}"
    );
    let w = m.execute(&cas("k", Some("v3"), "v4"), &ctx, secs(5.0));
    assert!(
        matches!(&w, Reply::Fail { error, .. } if error.starts_with("NOREPLICAS")),
        "{w:?}"
    );
    raw(&master, &["CONFIG", "SET", "min-replicas-to-write", "0"]);
    assert_eq!(m.execute(&read("k"), &ctx, secs(5.0)), ok(Some("v3")));
}

#[test]
fn redis_paused_and_refused() {
    let Some(mut master) = start_redis(None) else {
        return;
    };
    let mut s = session(&RedisAdapter::new(), &master);
    let ctx = OpContext::new("p0", 1);
    assert_eq!(s.execute(&write("k", "v1"), &ctx, secs(5.0)), ok(None));
    master.proc.pause();
    let t0 = Instant::now();
    assert_eq!(
        s.execute(&write("k", "v2"), &ctx, secs(0.3)),
        Reply::info("timeout")
    );
    assert!(t0.elapsed() < Duration::from_secs(3));
    let e = RedisAdapter::new()
        .connect(&NodeEndpoint::new("n", master.addr()), secs(0.3))
        .err();
    assert!(matches!(e, Some(ConnectError::Timeout { .. })), "{e:?}");
    master.proc.resume();
    // After the Info the session reconnects.
    let r = s.execute(&read("k"), &ctx, secs(5.0));
    assert!(r == ok(Some("v1")) || r == ok(Some("v2")), "{r:?}");

    master.proc.kill();
    // The idle connection's loss is only seen when sending: Info; then a refused reconnect: Fail.
    let r = s.execute(&write("k", "v3"), &ctx, secs(2.0));
    eprintln!("first op after SIGKILL: {r:?}");
    assert!(matches!(r, Reply::Info { .. }), "{r:?}");
    let r = s.execute(&write("k", "v3"), &ctx, secs(2.0));
    assert!(
        matches!(&r, Reply::Fail { error, .. } if error.starts_with("connect:")),
        "{r:?}"
    );
    let e = RedisAdapter::new()
        .connect(&NodeEndpoint::new("n", master.addr()), secs(2.0))
        .err();
    assert!(
        matches!(&e, Some(ConnectError::Unreachable { source, .. })
            if source.kind() == std::io::ErrorKind::ConnectionRefused),
        "{e:?}"
    );
}
