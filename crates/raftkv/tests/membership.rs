//! Membership changes on a real 3-node cluster: remove a follower, wipe it, restart it with
//! `--join`, add it back; hand it leadership; remove the leader itself. Every write is read
//! back afterwards (the store stays consistent), and the admin errors are checked. Every
//! process is reaped by `support`'s Drop guards.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{call_leader, fast_flags, Client, Cluster};

const T: Duration = Duration::from_secs(15);

fn status(cluster: &Cluster, i: usize) -> Value {
    let mut c = Client::connect(&cluster.nodes[i].client_addr()).expect("connect");
    c.call(json!({"op":"status"})).expect("status")
}

/// An admin op at the leader, retried while the answer is `busy` (a change or this leader's
/// no-op still uncommitted).
fn admin(cluster: &Cluster, req: Value) -> Value {
    let until = Instant::now() + T;
    loop {
        let a = call_leader(cluster, req.clone(), T);
        if a["error"] != "busy" || Instant::now() > until {
            return a;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn write_all(cluster: &Cluster, model: &mut BTreeMap<String, String>, round: usize) {
    for k in 0..10 {
        let (key, value) = (format!("k{k}"), format!("v{round}-{k}"));
        let a = call_leader(cluster, json!({"op":"write","key":key,"value":value}), T);
        assert_eq!(a["ok"], true, "{a}");
        model.insert(key, value);
    }
}

fn read_all(addr: &str, model: &BTreeMap<String, String>) {
    let mut c = Client::connect(addr).expect("connect");
    for (k, v) in model {
        let a = c.call(json!({"op":"read","key":k})).expect("read");
        assert_eq!(a["value"], json!(v), "{k} at {addr}: {a}");
    }
}

#[test]
fn remove_wipe_rejoin_add_transfer_and_remove_the_leader() {
    let mut flags = fast_flags();
    flags.extend(["--snapshot-every".to_string(), "20".to_string()]);
    let mut cluster = Cluster::start("membership", 3, &flags);
    let mut model = BTreeMap::new();
    let l = cluster.wait_leader(T);
    write_all(&cluster, &mut model, 0);
    let st = status(&cluster, l);
    assert_eq!(names(&st["voters"]), ["n1", "n2", "n3"], "{st}");
    assert_eq!(names(&st["learners"]), Vec::<String>::new(), "{st}");

    // Errors first, all definite and changing nothing.
    let x = (l + 1) % 3;
    let xname = cluster.nodes[x].spec.name.clone();
    let a = admin(&cluster, json!({"op":"add_member","node":"n9"}));
    assert_eq!(a["error"], "bad_request", "no --peer for n9: {a}");
    let a = admin(&cluster, json!({"op":"add_member","node":xname}));
    assert_eq!(a["error"], "bad_request", "already a voter: {a}");
    let a = admin(&cluster, json!({"op":"remove_member","node":"n7"}));
    assert_eq!(a["error"], "bad_request", "not a member: {a}");
    let a = admin(&cluster, json!({"op":"add_member","node":"x"}));
    assert_eq!(a["error"], "bad_request", "bad id: {a}");
    let mut c = Client::connect(&cluster.nodes[x].client_addr()).unwrap();
    let a = c.call(json!({"op":"remove_member","node":xname})).unwrap();
    assert_eq!(a["error"], "not_leader", "{a}");

    // Remove a follower; it may keep running, but it is out.
    let a = admin(&cluster, json!({"op":"remove_member","node":xname}));
    assert_eq!(a, json!({"id": a["id"], "ok": true}));
    let l = cluster.wait_leader(T);
    assert!(!names(&status(&cluster, l)["voters"]).contains(&xname));
    write_all(&cluster, &mut model, 1);

    // The safe repair: wipe it and bring it back as a new member under the same id.
    cluster.nodes[x].kill();
    std::fs::remove_dir_all(&cluster.nodes[x].spec.data_dir).unwrap();
    cluster.nodes[x].spec.extra.push("--join".into());
    cluster.nodes[x].restart();
    let a = admin(&cluster, json!({"op":"add_member","node":xname}));
    assert_eq!(a["ok"], true, "{a}");
    let l = cluster.wait_leader(T);
    let st = status(&cluster, l);
    assert_eq!(names(&st["voters"]), ["n1", "n2", "n3"], "{st}");
    assert!(names(&st["learners"]).is_empty(), "{st}");
    write_all(&cluster, &mut model, 2);

    // Hand it leadership: it must serve everything, old writes included.
    let a = admin(&cluster, json!({"op":"transfer_leader","node":xname}));
    assert_eq!(a["ok"], true, "{a}");
    assert_eq!(cluster.wait_leader(T), x);
    read_all(&cluster.nodes[x].client_addr(), &model);
    // A removed-then-rejoined node restarted without --join stays a member (the log says so).
    // Transfer away first so that the restart does not cost an election here.
    let a = admin(&cluster, json!({"op":"transfer_leader"}));
    assert_eq!(a["ok"], true, "{a}");
    cluster.nodes[x].spec.extra.retain(|f| f != "--join");
    cluster.nodes[x].restart();
    write_all(&cluster, &mut model, 3);

    // The leader removes itself: answered after the removal commits, then it steps down.
    let l = cluster.wait_leader(T);
    let lname = cluster.nodes[l].spec.name.clone();
    let a = admin(&cluster, json!({"op":"remove_member","node":lname}));
    assert_eq!(a["ok"], true, "{a}");
    let until = Instant::now() + T;
    let new = loop {
        match cluster.find_leader() {
            Some(n) if n != l => break n,
            _ => {
                assert!(Instant::now() < until, "no new leader\n{}", cluster.logs());
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    let st = status(&cluster, new);
    assert!(!names(&st["voters"]).contains(&lname), "{st}");
    assert_eq!(names(&st["voters"]).len(), 2, "{st}");
    write_all(&cluster, &mut model, 4);
    read_all(&cluster.nodes[new].client_addr(), &model);
    assert_ne!(status(&cluster, l)["role"], "leader");
    cluster.assert_no_process_left();
}
