//! The external adapter: the example Python adapter in front of the in-test native server, and a
//! scripted misbehaving adapter.

mod common;

use adapters::external::{ExternalAdapter, ExternalSession};
use adapters::{AdapterError, ConnectError, NodeEndpoint, Op, OpContext, Reply, Role, Session};
use common::{cas, crate_dir, ok, pid_alive, read, secs, write, NativeServer, TempDir};
use serde_json::json;
use std::time::{Duration, Instant};

fn misbehaving() -> ExternalAdapter {
    let script = crate_dir().join("tests/fixtures/misbehaving_adapter.py");
    ExternalAdapter::new(vec![
        "python3".into(),
        script.to_string_lossy().into_owned(),
    ])
    .grace(Duration::from_millis(200))
}

fn open(adapter: &ExternalAdapter) -> ExternalSession {
    match adapter.open(&NodeEndpoint::new("n1", "127.0.0.1:1"), secs(10.0)) {
        Ok(s) => s,
        Err(e) => panic!("open: {e}"),
    }
}

#[test]
fn external_example_adapter_forwards_to_a_native_store() {
    if !common::require("python3") {
        return;
    }
    let server = NativeServer::start("n1", Some("c1"));
    let script = crate_dir().join("examples/native_adapter.py");
    let options = json!({"command": ["python3", script.to_string_lossy()]});
    let adapter = match adapters::from_config("external", &options) {
        Ok(a) => a,
        Err(e) => panic!("{e}"),
    };
    let node = NodeEndpoint::new("n1", server.addr.to_string());
    let mut s = match adapter.connect(&node, secs(10.0)) {
        Ok(s) => s,
        Err(e) => panic!("connect: {e}"),
    };
    let ctx = OpContext::new("p0", 1);
    let mut run = |op: Op, t: f64| s.execute(&op, &ctx, secs(t));
    assert_eq!(run(read("k1"), 5.0), ok(None));
    assert_eq!(run(write("k1", "v1"), 5.0), ok(None));
    assert_eq!(run(read("k1"), 5.0), ok(Some("v1")));
    assert_eq!(run(cas("k1", Some("v1"), "v2"), 5.0), ok(None));
    assert_eq!(
        run(cas("k1", Some("v1"), "v3"), 5.0),
        Reply::Fail {
            error: "cas_mismatch".into(),
            current: Some(Some("v2".into()))
        }
    );
    assert_eq!(run(cas("k2", None, "v4"), 5.0), ok(None));
    assert_eq!(
        run(cas("k2", None, "v5"), 5.0),
        Reply::Fail {
            error: "cas_mismatch".into(),
            current: Some(Some("v4".into()))
        }
    );
    assert_eq!(
        run(write("notleader", "v"), 5.0),
        Reply::NotLeader {
            hint: Some("127.0.0.1:1".into())
        }
    );
    assert_eq!(run(write("dropped", "v"), 5.0), Reply::fail("dropped"));
    assert_eq!(run(write("timeout", "v"), 5.0), Reply::info("timeout"));
    // The store never answers: the adapter itself answers info within timeout_ms.
    let t0 = Instant::now();
    assert_eq!(run(write("hang", "v"), 0.5), Reply::info("timeout"));
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(run(read("k1"), 5.0), ok(Some("v2")));
    let st = s
        .status(secs(5.0))
        .unwrap_or_else(|e| panic!("status: {e}"));
    assert_eq!(st.role, Role::Leader);
    assert_eq!(st.node.as_deref(), Some("n1"));
    assert_eq!(st.cluster.as_deref(), Some("c1"));
}

#[test]
fn external_example_adapter_refuses_hello_when_the_store_is_down() {
    if !common::require("python3") {
        return;
    }
    let script = crate_dir().join("examples/native_adapter.py");
    let adapter = ExternalAdapter::new(vec!["python3".into(), script.to_string_lossy().into()]);
    let node = NodeEndpoint::new("n1", format!("127.0.0.1:{}", common::free_port()));
    let e = adapter.open(&node, secs(10.0)).err();
    assert!(
        matches!(&e, Some(ConnectError::Handshake { detail, .. }) if detail.contains("refused")),
        "{e:?}"
    );
}

#[test]
fn external_crashing_adapter_is_info_and_restarted() {
    if !common::require("python3") {
        return;
    }
    let mut s = open(&misbehaving());
    let ctx = OpContext::new("p0", 1);
    assert_eq!(s.execute(&write("k", "v1"), &ctx, secs(5.0)), ok(None));
    let first = s.pid();
    let r = s.execute(&write("crash", "v"), &ctx, secs(5.0));
    assert!(
        matches!(&r, Reply::Info { error } if error.contains("exited") || error.contains("stdout")),
        "{r:?}"
    );
    assert_eq!(s.pid(), None);
    if let Some(pid) = first {
        assert!(!pid_alive(pid), "the crashed adapter was not reaped");
    }
    // A new process (its in-memory store starts empty).
    assert_eq!(s.execute(&read("k"), &ctx, secs(5.0)), ok(None));
    assert!(s.pid().is_some() && s.pid() != first);
    assert_eq!(s.execute(&write("k", "v2"), &ctx, secs(5.0)), ok(None));
    // Status: this adapter does not support it.
    assert!(matches!(
        s.status(secs(5.0)),
        Err(AdapterError::Unsupported)
    ));
}

#[test]
fn external_malformed_answers_are_info() {
    if !common::require("python3") {
        return;
    }
    let mut s = open(&misbehaving());
    let ctx = OpContext::new("p0", 1);
    for key in ["garbage", "wrong_id", "no_value"] {
        let pid = s.pid();
        let r = s.execute(&read(key), &ctx, secs(5.0));
        assert!(
            matches!(&r, Reply::Info { error } if error.contains("malformed")),
            "{key}: {r:?}"
        );
        // Killed, and replaced on the next request.
        assert_eq!(s.pid(), None, "{key}");
        if let Some(pid) = pid {
            assert!(!pid_alive(pid), "{key}: the old adapter process still runs");
        }
        assert_eq!(
            s.execute(&write("k", "v"), &ctx, secs(5.0)),
            ok(None),
            "{key}"
        );
    }
}

#[test]
fn external_hanging_adapter_times_out_and_is_killed() {
    if !common::require("python3") {
        return;
    }
    let mut s = open(&misbehaving());
    let ctx = OpContext::new("p0", 1);
    let pid = s.pid();
    let t0 = Instant::now();
    assert_eq!(
        s.execute(&write("hang", "v"), &ctx, secs(0.3)),
        Reply::info("timeout")
    );
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(450), "{took:?}"); // deadline + grace
    assert!(took < Duration::from_secs(3), "{took:?}");
    if let Some(pid) = pid {
        assert!(!pid_alive(pid));
    }
    assert_eq!(s.execute(&write("k", "v"), &ctx, secs(5.0)), ok(None));
}

#[test]
fn external_processes_die_with_their_session() {
    if !common::require("python3") {
        return;
    }
    let dir = TempDir::new("external");
    let pid_file = dir.path().join("child.pid");
    let adapter = misbehaving().options(json!({"child_pid_file": pid_file.to_string_lossy()}));
    let s = open(&adapter);
    let pid = s.pid().unwrap_or_else(|| panic!("no process"));
    let child: u32 = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_else(|| panic!("no child pid in {pid_file:?}"));
    assert!(pid_alive(pid) && pid_alive(child));
    drop(s);
    assert!(!pid_alive(pid), "the adapter outlived its session");
    // The grandchild is killed with the group (it is reaped by init, so give it a moment).
    assert!(
        common::wait_for(Duration::from_secs(5), || !pid_alive(child)),
        "the adapter's child outlived the session"
    );
}

#[test]
fn external_handshake_failures() {
    if !common::require("python3") {
        return;
    }
    let node = NodeEndpoint::new("n1", "127.0.0.1:1");
    let refused = misbehaving().options(json!({"refuse_hello": true}));
    let e = refused.open(&node, secs(10.0)).err();
    assert!(
        matches!(&e, Some(ConnectError::Handshake { detail, .. }) if detail.contains("cannot reach")),
        "{e:?}"
    );
    let future = misbehaving().options(json!({"protocol": 2}));
    let e = future.open(&node, secs(10.0)).err();
    assert!(
        matches!(&e, Some(ConnectError::Handshake { detail, .. }) if detail.contains("protocol")),
        "{e:?}"
    );
    let missing = ExternalAdapter::new(vec!["/nonexistent/adapter".into()]);
    assert!(matches!(
        missing.open(&node, secs(10.0)).err(),
        Some(ConnectError::Spawn { .. })
    ));
}
