//! The etcd adapter against a real single-member etcd (Debian's etcd-server, 3.4).

mod common;

use adapters::etcd::EtcdAdapter;
use adapters::{Adapter, ConnectError, NodeEndpoint, Op, OpContext, Reply, Role, Session};
use common::{cas, free_port, mismatch, ok, read, secs, write, Proc, TempDir};
use std::time::{Duration, Instant};

struct Etcd {
    proc: Proc,
    addr: String,
    _dir: TempDir,
}

/// A single-member etcd named `n1` on free ports, or `None` when skipped.
fn start_etcd() -> Option<Etcd> {
    if !common::require("etcd") {
        return None;
    }
    // Free ports can be taken between the probe and etcd's bind: then try other ones.
    for _ in 0..3 {
        if let Some(etcd) = try_start_etcd() {
            return Some(etcd);
        }
    }
    panic!("etcd would not start (see the logs above)");
}

fn try_start_etcd() -> Option<Etcd> {
    let dir = TempDir::new("etcd");
    let client = free_port();
    let peer = free_port();
    let curl = format!("http://127.0.0.1:{client}");
    let purl = format!("http://127.0.0.1:{peer}");
    let args: Vec<String> = [
        "--name",
        "n1",
        "--data-dir",
        &dir.path().join("data").to_string_lossy(),
        "--listen-client-urls",
        &curl,
        "--advertise-client-urls",
        &curl,
        "--listen-peer-urls",
        &purl,
        "--initial-advertise-peer-urls",
        &purl,
        "--initial-cluster",
        &format!("n1={purl}"),
        "--initial-cluster-state",
        "new",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut proc = Proc::start("etcd", &args, dir.path().join("etcd.log"));
    let addr = format!("127.0.0.1:{client}");
    let node = NodeEndpoint::new("n1", addr.clone());
    let mut exited = false;
    let ready = common::wait_for(Duration::from_secs(30), || {
        exited = exited || proc.exited();
        exited
            || EtcdAdapter::new()
                .open(&node, secs(1.0))
                .is_ok_and(|mut s| s.status(secs(1.0)).is_ok_and(|st| st.role == Role::Leader))
    });
    if exited || !ready {
        eprintln!("etcd did not start:\n{}", proc.log_tail());
        return None;
    }
    Some(Etcd {
        proc,
        addr,
        _dir: dir,
    })
}

fn session(adapter: &EtcdAdapter, etcd: &Etcd) -> Box<dyn Session> {
    match adapter.connect(&NodeEndpoint::new("n1", etcd.addr.clone()), secs(5.0)) {
        Ok(s) => s,
        Err(e) => panic!("connect: {e}"),
    }
}

#[test]
fn etcd_ok_paths_and_status() {
    let Some(etcd) = start_etcd() else { return };
    let mut s = session(&EtcdAdapter::new(), &etcd);
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
    assert_eq!(run(read("k2")), ok(Some("v4")));
    assert_eq!(run(cas("k2", None, "v5")), mismatch(Some("v4")));
    // The gateway omits an empty value: it must still read as "", not as absent.
    assert_eq!(run(write("k3", "")), ok(None));
    assert_eq!(run(read("k3")), ok(Some("")));
    assert_eq!(run(cas("k3", None, "x")), mismatch(Some("")));
    assert_eq!(run(cas("k3", Some(""), "x")), ok(None));
    // Unicode survives base64.
    assert_eq!(run(write("k4", "é\n☃")), ok(None));
    assert_eq!(run(read("k4")), ok(Some("é\n☃")));
    let st = s
        .status(secs(5.0))
        .unwrap_or_else(|e| panic!("status: {e}"));
    assert_eq!(st.role, Role::Leader);
    assert_eq!(st.node.as_deref(), Some("n1"));
    assert_eq!(st.leader.as_deref(), Some("n1"));
    assert!(st.term.is_some_and(|t| t >= 1), "{st:?}");
    assert!(st.cluster.is_some(), "{st:?}");
}

#[test]
fn etcd_options_serializable_reads_and_key_prefix() {
    let Some(etcd) = start_etcd() else { return };
    let ctx = OpContext::new("p0", 1);
    let opts = serde_json::json!({"serializable_reads": true, "key_prefix": "jepsen/"});
    let adapter = match adapters::from_config("etcd", &opts) {
        Ok(a) => a,
        Err(e) => panic!("{e}"),
    };
    let mut s = match adapter.connect(&NodeEndpoint::new("n1", etcd.addr.clone()), secs(5.0)) {
        Ok(s) => s,
        Err(e) => panic!("connect: {e}"),
    };
    assert_eq!(s.execute(&write("k", "v1"), &ctx, secs(5.0)), ok(None));
    assert_eq!(s.execute(&read("k"), &ctx, secs(5.0)), ok(Some("v1")));
    let mut plain = session(&EtcdAdapter::new(), &etcd);
    assert_eq!(
        plain.execute(&read("jepsen/k"), &ctx, secs(5.0)),
        ok(Some("v1"))
    );
    assert_eq!(plain.execute(&read("k"), &ctx, secs(5.0)), ok(None));
}

#[test]
fn etcd_errors_paused_and_refused() {
    let Some(mut etcd) = start_etcd() else { return };
    let mut s = session(&EtcdAdapter::new(), &etcd);
    let ctx = OpContext::new("p0", 1);
    // An empty key is refused by validation before proposing: HTTP 400, gRPC InvalidArgument.
    let r = s.execute(&write("", "v"), &ctx, secs(5.0));
    assert_eq!(
        r,
        Reply::fail("invalid_argument: etcdserver: key is not provided")
    );
    assert_eq!(s.execute(&write("k", "v"), &ctx, secs(5.0)), ok(None));

    // A paused etcd: the kernel still accepts, nobody answers.
    etcd.proc.pause();
    let t0 = Instant::now();
    assert_eq!(
        s.execute(&write("k", "v2"), &ctx, secs(0.5)),
        Reply::info("timeout")
    );
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    let e = EtcdAdapter::new()
        .connect(&NodeEndpoint::new("n1", etcd.addr.clone()), secs(0.5))
        .err();
    eprintln!("connect while paused: {e:?}");
    assert!(matches!(e, Some(ConnectError::Timeout { .. })), "{e:?}");
    etcd.proc.resume();
    // The session recovers once the node answers again (the write may or may not have landed).
    let r = s.execute(&read("k"), &ctx, secs(5.0));
    assert!(
        r == ok(Some("v")) || r == ok(Some("v2")),
        "{r:?}\n{}",
        etcd.proc.log_tail()
    );

    // A killed etcd: reconnecting is refused before anything is sent.
    etcd.proc.kill();
    let r = s.execute(&write("k", "v3"), &ctx, secs(2.0));
    eprintln!("after SIGKILL: {r:?}");
    assert!(
        matches!(&r, Reply::Fail { error, .. } if error.starts_with("connect:")),
        "{r:?}"
    );
    let e = EtcdAdapter::new()
        .connect(&NodeEndpoint::new("n1", etcd.addr.clone()), secs(2.0))
        .err();
    assert!(
        matches!(&e, Some(ConnectError::Unreachable { source, .. })
            if source.kind() == std::io::ErrorKind::ConnectionRefused),
        "{e:?}"
    );
}

#[test]
fn etcd_identity_check() {
    let Some(etcd) = start_etcd() else { return };
    let e = EtcdAdapter::new()
        .connect(&NodeEndpoint::new("n2", etcd.addr.clone()), secs(5.0))
        .err();
    assert!(
        matches!(&e, Some(ConnectError::WrongNode { what: "member name", found, .. }) if found == "n1"),
        "{e:?}"
    );
    let unchecked = EtcdAdapter::new().check_identity(false);
    assert!(unchecked
        .connect(&NodeEndpoint::new("n2", etcd.addr.clone()), secs(5.0))
        .is_ok());
}
