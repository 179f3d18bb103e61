//! The native adapter against an in-test JSON-lines server.

mod common;

use adapters::native::NativeAdapter;
use adapters::{Adapter, ConnectError, NodeEndpoint, Op, OpContext, Reply, Role, Session};
use common::{cas, ok, read, secs, write, NativeServer};

fn session(server: &NativeServer) -> Box<dyn Session> {
    let node = NodeEndpoint::new("n1", server.addr.to_string()).with_cluster("c1");
    match NativeAdapter::new().connect(&node, secs(2.0)) {
        Ok(s) => s,
        Err(e) => panic!("connect: {e}"),
    }
}

#[test]
fn native_ok_paths() {
    let server = NativeServer::start("n1", Some("c1"));
    let mut s = session(&server);
    let ctx = OpContext::new("p0", 1);
    let mut run = |op: Op| s.execute(&op, &ctx, secs(2.0));
    assert_eq!(run(read("k1")), ok(None));
    assert_eq!(run(write("k1", "v1")), ok(None));
    assert_eq!(run(read("k1")), ok(Some("v1")));
    assert_eq!(run(cas("k1", Some("v1"), "v2")), ok(None));
    assert_eq!(
        run(cas("k1", Some("v1"), "v3")),
        Reply::Fail {
            error: "cas_mismatch".into(),
            current: Some(Some("v2".into()))
        }
    );
    assert_eq!(
        run(cas("k2", Some("v1"), "v3")),
        Reply::Fail {
            error: "cas_mismatch".into(),
            current: Some(None)
        }
    );
    assert_eq!(run(cas("k2", None, "v4")), ok(None));
    assert_eq!(run(read("k2")), ok(Some("v4")));
    assert_eq!(
        run(cas("k2", None, "v5")),
        Reply::Fail {
            error: "cas_mismatch".into(),
            current: Some(Some("v4".into()))
        }
    );
    // Everything went over the connection opened (and identity-checked) by connect.
    assert_eq!(server.connections(), 1);
    let st = s
        .status(secs(2.0))
        .unwrap_or_else(|e| panic!("status: {e}"));
    assert_eq!(st.role, Role::Leader);
    assert_eq!(st.node.as_deref(), Some("n1"));
    assert_eq!(st.cluster.as_deref(), Some("c1"));
    assert_eq!(st.term, Some(3));
}

#[test]
fn native_error_mapping() {
    let server = NativeServer::start("n1", None);
    let mut s = session(&server);
    let ctx = OpContext::new("p0", 1);
    assert_eq!(
        s.execute(&write("notleader", "v"), &ctx, secs(2.0)),
        Reply::NotLeader {
            hint: Some("127.0.0.1:1".into())
        }
    );
    assert_eq!(
        s.execute(&write("dropped", "v"), &ctx, secs(2.0)),
        Reply::fail("dropped: shutting down")
    );
    assert_eq!(
        s.execute(&write("timeout", "v"), &ctx, secs(2.0)),
        Reply::info("timeout")
    );
    // The bad_request without id answers our line: definite.
    assert_eq!(
        s.execute(&write("badreq", "v"), &ctx, secs(2.0)),
        Reply::fail("bad_request: line too long")
    );
    let r = s.execute(&write("garbage", "v"), &ctx, secs(2.0));
    assert!(
        matches!(&r, Reply::Info { error } if error.starts_with("protocol: bad JSON")),
        "{r:?}"
    );
    // The connection was dropped after the garbage; the session reconnects.
    assert_eq!(s.execute(&read("k"), &ctx, secs(2.0)), ok(None));
    let r = s.execute(&write("close", "v"), &ctx, secs(2.0));
    assert!(
        matches!(&r, Reply::Info { error } if error.contains("closed")),
        "{r:?}"
    );
    let t0 = std::time::Instant::now();
    assert_eq!(
        s.execute(&write("hang", "v"), &ctx, secs(0.3)),
        Reply::info("timeout")
    );
    assert!(t0.elapsed() < std::time::Duration::from_secs(2));
    // A deadline already passed: nothing is sent.
    assert_eq!(
        s.execute(&write("k", "v"), &ctx, std::time::Instant::now()),
        Reply::fail("deadline passed before sending")
    );
}

#[test]
fn native_reconnects_when_the_node_closed_the_connection() {
    let server = NativeServer::start("n1", None);
    let mut s = session(&server);
    let ctx = OpContext::new("p0", 1);
    // Answered, then the server closes the connection: the next op must not be lost to it.
    assert_eq!(s.execute(&write("bye", "v"), &ctx, secs(2.0)), ok(None));
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(s.execute(&read("bye"), &ctx, secs(2.0)), ok(Some("v")));
    assert_eq!(server.connections(), 2);
}

#[test]
fn native_identity_check() {
    let server = NativeServer::start("n2", Some("c1"));
    let adapter = NativeAdapter::new();
    let wrong_node = NodeEndpoint::new("n1", server.addr.to_string());
    let e = adapter.connect(&wrong_node, secs(2.0)).err();
    assert!(
        matches!(&e, Some(ConnectError::WrongNode { what: "node id", found, .. }) if found == "n2"),
        "{e:?}"
    );
    let wrong_cluster = NodeEndpoint::new("n2", server.addr.to_string()).with_cluster("c9");
    let e = adapter.connect(&wrong_cluster, secs(2.0)).err();
    assert!(
        matches!(&e, Some(ConnectError::WrongNode { what: "cluster id", found, .. }) if found == "c1"),
        "{e:?}"
    );
    let right = NodeEndpoint::new("n2", server.addr.to_string()).with_cluster("c1");
    assert!(adapter.connect(&right, secs(2.0)).is_ok());
    // A node that does not report a cluster id is accepted.
    let quiet = NativeServer::start("n3", None);
    let node = NodeEndpoint::new("n3", quiet.addr.to_string()).with_cluster("c1");
    assert!(adapter.connect(&node, secs(2.0)).is_ok());
    // Without the check, anything goes.
    let unchecked = NativeAdapter::new().check_identity(false);
    assert!(unchecked.connect(&wrong_cluster, secs(2.0)).is_ok());
}

#[test]
fn native_connection_refused() {
    let port = common::free_port();
    let node = NodeEndpoint::new("n1", format!("127.0.0.1:{port}"));
    let e = NativeAdapter::new().connect(&node, secs(2.0)).err();
    assert!(
        matches!(&e, Some(ConnectError::Unreachable { source, .. })
            if source.kind() == std::io::ErrorKind::ConnectionRefused),
        "{e:?}"
    );
    let bad = NodeEndpoint::new("n1", "no-port");
    assert!(matches!(
        NativeAdapter::new().connect(&bad, secs(2.0)).err(),
        Some(ConnectError::BadAddress { .. })
    ));
}
