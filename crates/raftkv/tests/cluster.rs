//! A real 3-node cluster on loopback: election, read/write/cas, redirects, failover, peer
//! identity checks and bad input. Every process is reaped by `support`'s Drop guards.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{call_leader, fast_flags, Client, Cluster};

const T: Duration = Duration::from_secs(10);

#[test]
fn elects_a_leader_and_serves_read_write_cas_and_redirects() {
    let cluster = Cluster::start("basic", 3, &fast_flags());
    let l = cluster.wait_leader(T);
    let mut c = Client::connect(&cluster.nodes[l].client_addr()).unwrap();
    let call = |c: &mut Client, v: Value| c.call(v).unwrap();

    assert_eq!(
        call(&mut c, json!({"op":"read","key":"k"}))["value"],
        Value::Null
    );
    assert_eq!(
        call(&mut c, json!({"op":"write","key":"k","value":"v1"}))["ok"],
        true
    );
    assert_eq!(call(&mut c, json!({"op":"read","key":"k"}))["value"], "v1");
    assert_eq!(
        call(&mut c, json!({"op":"cas","key":"k","from":"v1","to":"v2"}))["ok"],
        true
    );
    let m = call(&mut c, json!({"op":"cas","key":"k","from":"v1","to":"v3"}));
    assert_eq!(
        (m["ok"].clone(), m["error"].clone(), m["value"].clone()),
        (json!(false), json!("cas_mismatch"), json!("v2"))
    );
    assert_eq!(call(&mut c, json!({"op":"read","key":"k"}))["value"], "v2");

    let st = call(&mut c, json!({"op":"status"}));
    assert_eq!(st["role"], "leader");
    assert_eq!(st["node"], cluster.nodes[l].spec.name);
    assert_eq!(st["cluster"], cluster.nodes[l].spec.cluster_id, "{st}");
    assert_eq!(st["leader"], cluster.nodes[l].spec.name);
    assert!(st["commit"].as_u64().unwrap() >= 3 && st["applied"].is_u64() && st["term"].is_u64());

    // Followers redirect to the leader's client address, for writes and reads alike.
    for (i, n) in cluster.nodes.iter().enumerate() {
        if i == l {
            continue;
        }
        let mut f = Client::connect(&n.client_addr()).unwrap();
        for req in [
            json!({"op":"write","key":"k","value":"x"}),
            json!({"op":"read","key":"k"}),
        ] {
            let a = f.call(req).unwrap();
            assert_eq!(a["error"], "not_leader", "{a}");
            assert_eq!(a["leader"], cluster.nodes[l].client_addr().as_str());
        }
        let st = f.call(json!({"op":"status"})).unwrap();
        assert_eq!(
            (st["role"].clone(), st["leader"].clone()),
            (json!("follower"), json!(cluster.nodes[l].spec.name))
        );
    }
    // The refused write did not happen.
    assert_eq!(call(&mut c, json!({"op":"read","key":"k"}))["value"], "v2");

    // Pipelining: many requests on one connection are answered in order. (They are
    // concurrent operations: a read pipelined behind writes need not see them.)
    let mut p = TcpStream::connect(cluster.nodes[l].client_addr()).unwrap();
    let mut batch = String::new();
    for i in 0..200 {
        batch.push_str(&format!(
            "{{\"id\":{i},\"op\":\"write\",\"key\":\"p\",\"value\":\"{i}\"}}\n"
        ));
        if i % 50 == 0 {
            batch.push_str(&format!("{{\"id\":{},\"op\":\"status\"}}\n", 1000 + i));
        }
    }
    p.write_all(batch.as_bytes()).unwrap();
    let mut r = std::io::BufReader::new(p);
    for i in 0..200u64 {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut r, &mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["id"], i, "{v}");
        assert_eq!(v["ok"], true, "{v}");
        if i % 50 == 0 {
            line.clear();
            std::io::BufRead::read_line(&mut r, &mut line).unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["id"], 1000 + i, "{v}");
        }
    }
    // Once the writes are acknowledged, a read sees the last one.
    assert_eq!(call(&mut c, json!({"op":"read","key":"p"}))["value"], "199");
    let dir = cluster.dir.clone();
    drop(cluster);
    assert_no_process_with(&dir);
}

#[test]
fn sessions_make_a_retried_write_apply_once() {
    let cluster = Cluster::start("session", 3, &fast_flags());
    let l = cluster.wait_leader(T);
    let mut c = Client::connect(&cluster.nodes[l].client_addr()).unwrap();
    let w = json!({"op":"write","key":"s","value":"a","client":"c1","seq":1});
    assert_eq!(c.call(w.clone()).unwrap()["ok"], true);
    assert_eq!(
        c.call(json!({"op":"write","key":"s","value":"b"})).unwrap()["ok"],
        true
    );
    // The retry is acknowledged but does not overwrite "b".
    assert_eq!(c.call(w).unwrap()["ok"], true);
    assert_eq!(
        c.call(json!({"op":"read","key":"s"})).unwrap()["value"],
        "b"
    );
    let stale = c
        .call(json!({"op":"write","key":"s","value":"z","client":"c1","seq":0}))
        .unwrap();
    assert_eq!(stale["error"], "stale_seq");
    assert_eq!(
        c.call(json!({"op":"read","key":"s"})).unwrap()["value"],
        "b"
    );
}

/// SIGKILL the leader; a new leader serves a write. Returns the time from the kill to the
/// first acknowledged write.
fn failover_once(cluster: &mut Cluster, round: usize) -> Duration {
    let l = cluster.wait_leader(T);
    let ok = call_leader(
        cluster,
        json!({"op":"write","key":"f","value":format!("before{round}")}),
        T,
    );
    assert_eq!(ok["ok"], true, "{ok}");
    let killed_at = Instant::now();
    cluster.nodes[l].kill();
    let v = format!("after{round}");
    let ok = call_leader(cluster, json!({"op":"write","key":"f","value":v}), T);
    let took = killed_at.elapsed();
    assert_eq!(ok["ok"], true, "{ok}");
    let read = call_leader(cluster, json!({"op":"read","key":"f"}), T);
    assert_eq!(read["value"], json!(v));
    cluster.nodes[l].restart();
    took
}

/// Like `failover_once`, with SIGTERM: the leader hands over before it stops.
fn planned_failover_once(cluster: &mut Cluster, round: usize) -> Duration {
    let l = cluster.wait_leader(T);
    let ok = call_leader(
        cluster,
        json!({"op":"write","key":"p","value":format!("before{round}")}),
        T,
    );
    assert_eq!(ok["ok"], true, "{ok}");
    let pid = cluster.nodes[l].pid().expect("running");
    let signalled_at = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    let v = format!("after{round}");
    // The stopping node refuses what reaches it after it handed over ("dropped", definite):
    // a client tries again.
    let ok = loop {
        let a = call_leader(cluster, json!({"op":"write","key":"p","value":v}), T);
        if a["error"] != "dropped" || signalled_at.elapsed() > T {
            break a;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = signalled_at.elapsed();
    assert_eq!(ok["ok"], true, "{ok}");
    let st = cluster.nodes[l].terminate();
    assert!(
        st.is_some_and(|s| s.success()),
        "the old leader did not stop cleanly"
    );
    let read = call_leader(cluster, json!({"op":"read","key":"p"}), T);
    assert_eq!(read["value"], json!(v));
    cluster.nodes[l].restart();
    took
}

#[test]
fn a_leader_stopped_with_sigterm_hands_over_first() {
    let mut cluster = Cluster::start("handover", 3, &[]);
    let took = planned_failover_once(&mut cluster, 0);
    eprintln!("planned failover: {took:?}");
    let log = cluster.logs();
    assert!(log.contains("handing leadership to"), "{log}");
}

/// The measurement for the issue: 20 SIGTERMs of the leader (hand-over) against 20 SIGKILLs,
/// default timeouts, alternating on one cluster.
/// `cargo nextest run -p raftkv --cargo-profile ci --run-ignored only --no-capture -E 'test(planned_vs_crash)'`
#[test]
#[ignore = "measurement, ~60 s"]
fn planned_vs_crash_failover_20_trials() {
    let mut cluster = Cluster::start("planned20", 3, &[]);
    let (mut term, mut kill) = (Vec::new(), Vec::new());
    for r in 0..20 {
        term.push(planned_failover_once(&mut cluster, r));
        kill.push(failover_once(&mut cluster, r));
    }
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    for (name, mut times) in [("SIGTERM (hand-over)", term), ("SIGKILL", kill)] {
        times.sort();
        eprintln!(
            "{name}: median {:.0} ms (mean of #10,#11), min {:.0} ms, max {:.0} ms; all: {:?}",
            (ms(&times[9]) + ms(&times[10])) / 2.0,
            ms(&times[0]),
            ms(&times[19]),
            times
                .iter()
                .map(|d| ms(d).round() as u64)
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_new_leader_serves_writes_after_the_leader_is_killed() {
    // Default timeouts (300 ms election), as a user would run it.
    let mut cluster = Cluster::start("failover", 3, &[]);
    for round in 0..2 {
        let took = failover_once(&mut cluster, round);
        eprintln!("failover round {round}: {took:?}");
    }
}

/// The measurement for the issue: 20 SIGKILLs of the leader with default timeouts.
/// `cargo nextest run -p raftkv --cargo-profile ci --run-ignored only -- failover_time --nocapture`
#[test]
#[ignore = "measurement, ~30 s"]
fn failover_time_20_trials() {
    let mut cluster = Cluster::start("failover20", 3, &[]);
    let mut times: Vec<Duration> = (0..20).map(|r| failover_once(&mut cluster, r)).collect();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    eprintln!(
        "failover over 20 trials: median {:.0} ms (mean of #10,#11), min {:.0} ms, max {:.0} ms; all: {:?}",
        (ms(times[9]) + ms(times[10])) / 2.0,
        ms(times[0]),
        ms(times[19]),
        times.iter().map(|d| ms(*d).round() as u64).collect::<Vec<_>>()
    );
}

#[test]
fn a_node_with_another_cluster_id_is_refused() {
    let mut cluster = Cluster::start("cluster-id", 3, &fast_flags());
    // Restart n3 with another cluster id: n1 and n2 refuse it and it refuses them.
    cluster.nodes[2].kill();
    let mut spec = cluster.nodes[2].spec.clone();
    spec.cluster_id = "other".into();
    cluster.nodes[2] = support::Node::start(spec);
    let l = cluster.wait_leader(T);
    assert_ne!(l, 2);
    let ok = call_leader(&cluster, json!({"op":"write","key":"k","value":"v"}), T);
    assert_eq!(ok["ok"], true);
    std::thread::sleep(Duration::from_millis(500));
    let mut c = Client::connect(&cluster.nodes[2].client_addr()).unwrap();
    let st = c.call(json!({"op":"status"})).unwrap();
    assert_eq!(st["leader"], Value::Null, "{st}");
    assert_eq!(st["commit"], 0, "{st}");
    // `status` names the cluster a node was started for, so a harness can tell them apart.
    assert_eq!(st["cluster"], "other", "{st}");
    let mut c1 = Client::connect(&cluster.nodes[0].client_addr()).unwrap();
    assert_eq!(c1.call(json!({"op":"status"})).unwrap()["cluster"], "test");
    // Knowing no leader, it redirects nowhere.
    let a = c.call(json!({"op":"write","key":"k","value":"w"})).unwrap();
    assert_eq!(
        (a["error"].clone(), a["leader"].clone()),
        (json!("not_leader"), Value::Null),
        "{a}"
    );
    let n3 = cluster.nodes[2].log();
    assert!(
        n3.contains("refused this node") && n3.contains("cluster id"),
        "{n3}"
    );
    let n1 = cluster.nodes[0].log();
    assert!(
        n1.contains("refused peer connection") && n1.contains("cluster id \"other\""),
        "{n1}"
    );
}

#[test]
fn bad_client_input_is_answered_and_the_node_keeps_serving() {
    let cluster = Cluster::start("bad-input", 3, &fast_flags());
    let l = cluster.wait_leader(T);
    let addr = cluster.nodes[l].client_addr();
    let mut c = Client::connect(&addr).unwrap();
    let cases: &[&[u8]] = &[
        b"not json\n",
        b"{\n",
        b"[1,2,3]\n",
        b"\"str\"\n",
        b"{\"op\":\"read\",\"key\":\"k\"}\n",
        b"{\"id\":-4,\"op\":\"read\",\"key\":\"k\"}\n",
        b"{\"id\":1}\n",
        b"{\"id\":1,\"op\":\"drop_table\"}\n",
        b"{\"id\":1,\"op\":\"read\"}\n",
        b"{\"id\":1,\"op\":\"read\",\"key\":5}\n",
        b"{\"id\":1,\"op\":\"write\",\"key\":\"k\"}\n",
        b"{\"id\":1,\"op\":\"cas\",\"key\":\"k\",\"to\":\"x\"}\n",
        b"{\"id\":1,\"op\":\"write\",\"key\":\"k\",\"value\":\"v\",\"client\":\"c\"}\n",
        b"\xff\xfe\xfd\n",
        b"{\"id\":1,\"op\":\"status\"\x00}\n",
    ];
    for case in cases {
        c.send_raw(case).unwrap();
        let a = c.read_answer().unwrap();
        assert_eq!(
            a["error"],
            "bad_request",
            "{:?} -> {a}",
            String::from_utf8_lossy(case)
        );
        assert!(a["detail"].as_str().is_some_and(|d| !d.is_empty()));
        // The same connection still works.
        assert_eq!(c.call(json!({"op":"status"})).unwrap()["ok"], true);
    }
    // An oversized line (1 MiB + 1 without a newline until the end) is answered and skipped.
    let mut big = vec![b'x'; (1 << 20) + 1];
    big.push(b'\n');
    c.send_raw(&big).unwrap();
    let a = c.read_answer().unwrap();
    assert_eq!(a["error"], "bad_request", "{a}");
    assert_eq!(
        c.call(json!({"op":"write","key":"k","value":"after"}))
            .unwrap()["ok"],
        true
    );
    // A value close to the limit still works end to end.
    let v = "y".repeat(900 << 10);
    assert_eq!(
        c.call(json!({"op":"write","key":"big","value":v})).unwrap()["ok"],
        true
    );
    assert_eq!(
        c.call(json!({"op":"read","key":"big"})).unwrap()["value"],
        json!(v)
    );

    // Garbage on the peer port: every connection is dropped, the node is unharmed.
    let peer_port = cluster.nodes[l].spec.peer_port;
    let garbage: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        vec![0, 0, 0, 5, 1, 2, 3, 4, 5],
        vec![0xff; 64],
        [&[0u8, 0, 0, 20][..], b"RAFTKVP\0\0\0\0\x09garbage!"].concat(),
        vec![0, 0, 0, 100, 1],
    ];
    for g in &garbage {
        let mut s = TcpStream::connect(("127.0.0.1", peer_port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(g);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink); // the node closes the connection
    }
    assert_eq!(
        c.call(json!({"op":"read","key":"k"})).unwrap()["value"],
        "after"
    );
    let log = cluster.nodes[l].log();
    assert!(log.contains("refused peer connection"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    // The cluster still replicates: the leader did not lose its followers.
    assert_eq!(
        call_leader(&cluster, json!({"op":"write","key":"k","value":"z"}), T)["ok"],
        true
    );
}

#[test]
fn sigterm_stops_cleanly() {
    let mut cluster = Cluster::start("sigterm", 1, &fast_flags());
    cluster.wait_leader(T);
    let status = cluster.nodes[0].terminate().expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(cluster.nodes[0].log().contains("stopped"));
    cluster.assert_no_process_left();
}

fn assert_no_process_with(dir: &std::path::Path) {
    let out = std::process::Command::new("pgrep")
        .arg("-f")
        .arg(dir.to_string_lossy().as_ref())
        .output()
        .expect("pgrep");
    assert!(
        out.stdout.is_empty(),
        "left behind: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_lagging_follower_catches_up_through_a_snapshot_and_can_lead() {
    let mut flags = fast_flags();
    flags.extend(["--snapshot-every".to_string(), "20".to_string()]);
    let mut cluster = Cluster::start("snapshot", 3, &flags);
    let l = cluster.wait_leader(T);
    let (f1, f2) = match l {
        0 => (1, 2),
        1 => (0, 2),
        _ => (0, 1),
    };
    cluster.nodes[f1].kill();
    let mut c = Client::connect(&cluster.nodes[l].client_addr()).unwrap();
    for i in 0..100 {
        let a = c
            .call(json!({"op":"write","key":format!("k{}", i % 30),"value":format!("a{i}")}))
            .unwrap();
        assert_eq!(a["ok"], true, "{a}");
    }
    // The leader compacted past what f1 has: f1 must be sent a snapshot.
    cluster.nodes[f1].restart();
    let until = Instant::now() + T;
    while !cluster.nodes[f1].log().contains("installed a snapshot") {
        assert!(
            Instant::now() < until,
            "no snapshot installed\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Writes that only the leader and f1 acknowledge.
    cluster.nodes[f2].kill();
    for i in 100..130 {
        let a = c
            .call(json!({"op":"write","key":format!("k{}", i % 30),"value":format!("a{i}")}))
            .unwrap();
        assert_eq!(a["ok"], true, "{a}");
    }
    // Now only f1 has everything: with f2 back and the leader gone, f1 must lead and serve it.
    cluster.nodes[l].kill();
    cluster.nodes[f2].restart();
    let new = cluster.wait_leader(T);
    assert_eq!(new, f1);
    let mut c = Client::connect(&cluster.nodes[f1].client_addr()).unwrap();
    for k in 0..30 {
        let last = (100..130).rev().find(|i| i % 30 == k).unwrap();
        let v = c.call(json!({"op":"read","key":format!("k{k}")})).unwrap();
        assert_eq!(v["value"], format!("a{last}"), "k{k}");
    }
    cluster.assert_no_process_left();
}

#[test]
fn a_leader_without_a_majority_answers_timeout_and_the_write_may_still_commit() {
    let mut flags = fast_flags();
    flags.extend(["--request-timeout-ms".to_string(), "700".to_string()]);
    let mut cluster = Cluster::start("timeout", 3, &flags);
    let l = cluster.wait_leader(T);
    let mut c = Client::connect(&cluster.nodes[l].client_addr()).unwrap();
    assert_eq!(
        c.call(json!({"op":"write","key":"k","value":"1"})).unwrap()["ok"],
        true
    );
    for i in 0..3 {
        if i != l {
            cluster.nodes[i].kill();
        }
    }
    // Proposed (it is still leader for a moment) or refused, but never a definite failure
    // for a write that might commit.
    let a = c.call(json!({"op":"write","key":"k","value":"2"})).unwrap();
    assert!(a["error"] == "timeout" || a["error"] == "not_leader", "{a}");
    // Once it notices it lost its majority it steps down; reads are refused, not served stale.
    std::thread::sleep(Duration::from_millis(600));
    let r = c.call(json!({"op":"read","key":"k"})).unwrap();
    assert_eq!(r["error"], "not_leader", "{r}");
    for i in 0..3 {
        if i != l {
            cluster.nodes[i].restart();
        }
    }
    let v = call_leader(&cluster, json!({"op":"read","key":"k"}), T);
    if a["error"] == "timeout" {
        assert!(v["value"] == "1" || v["value"] == "2", "{v}");
    } else {
        assert_eq!(v["value"], "1", "{v}");
    }
    cluster.assert_no_process_left();
}
