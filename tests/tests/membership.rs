//! The `membership` nemesis end to end, on real raftkv processes: members are removed, wiped and
//! added back as new members, and leadership is handed over, while clients run and other faults
//! overlap. The run must stay linearizable, the cluster must recover with every node a voter,
//! and the history must show each change; a planted bug that only membership changes expose
//! (`fx-learner-reads`, in fixtures.rs) shows the nemesis has an effect.

use e2e::{
    code, harness, processes_with, run_with_timeout, show, workspace_bin, KillOnDrop, TempDir,
};
use serde_json::Value;
use std::time::Duration;

fn nemesis_events(history: &str) -> Vec<(String, Value)> {
    history
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["process"] == "nemesis")
        .map(|v| {
            (
                v["f"].as_str().unwrap_or_default().to_string(),
                v["value"].clone(),
            )
        })
        .collect()
}

#[test]
fn raftkv_stays_linearizable_while_members_are_replaced() {
    let tmp = TempDir::new("membership");
    let _reaper = KillOnDrop(tmp.path().display().to_string());
    let out = run_with_timeout(
        harness()
            .args(["run", "--time-limit", "25s", "--nodes", "3"])
            .args(["--nemesis", "membership,kill,partition"])
            .args(["--nemesis-interval", "2s", "--seed", "7"])
            .arg("--node-bin")
            .arg(workspace_bin("raftkv"))
            .arg("--out")
            .arg(tmp.path()),
        Duration::from_secs(180),
    );
    assert_eq!(code(&out.status), 0, "{}", show(&out));
    let latest = tmp.path().join("latest");
    let history = std::fs::read_to_string(latest.join("history.jsonl")).unwrap_or_default();
    let events = nemesis_events(&history);
    let of = |f: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|(g, v)| g == f && v.get("skipped").is_none())
            .map(|(_, v)| v)
            .collect()
    };
    let removed = of("member-remove");
    assert!(!removed.is_empty(), "no member was removed: {events:?}");
    let added: Vec<&Value> = of("member-add")
        .into_iter()
        .filter(|v| v.get("error").is_none())
        .collect();
    assert!(
        added.len() >= removed.len(),
        "every removed member must be added back: removed {removed:?}, added {added:?}"
    );
    for r in &removed {
        let node = r["node"].as_str().unwrap_or_default();
        assert!(
            events.iter().any(|(f, v)| f == "restart"
                && v["joining"] == true
                && v["nodes"]
                    .as_array()
                    .is_some_and(|n| n.iter().any(|x| x == node))),
            "{node} was not restarted as a new member: {events:?}"
        );
    }
    // The wiped node's log shows it starting empty, with --join.
    let log = std::fs::read_to_string(latest.join("nodes").join(format!(
        "{}.log",
        removed[0]["node"].as_str().unwrap_or("n1")
    )))
    .unwrap_or_default();
    assert!(log.contains("--join"), "no --join start in the node's log");
    let run: Value =
        serde_json::from_str(&std::fs::read_to_string(latest.join("run.json")).unwrap_or_default())
            .unwrap_or_default();
    assert_eq!(run["outcome"]["recovered"], true, "{run}");
    assert!(processes_with(&tmp.path().display().to_string()).is_empty());
}

#[test]
fn leadership_transfers_are_recorded() {
    let tmp = TempDir::new("membership-transfer");
    let _reaper = KillOnDrop(tmp.path().display().to_string());
    // Membership alone, frequent: the seed deals transfers among the replacements.
    let out = run_with_timeout(
        harness()
            .args(["run", "--time-limit", "15s", "--nodes", "3"])
            .args(["--nemesis", "membership", "--nemesis-interval", "1s"])
            .args(["--seed", "3"])
            .arg("--node-bin")
            .arg(workspace_bin("raftkv"))
            .arg("--out")
            .arg(tmp.path()),
        Duration::from_secs(150),
    );
    assert_eq!(code(&out.status), 0, "{}", show(&out));
    let history = std::fs::read_to_string(tmp.path().join("latest").join("history.jsonl"))
        .unwrap_or_default();
    let events = nemesis_events(&history);
    let transfers: Vec<&Value> = events
        .iter()
        .filter(|(f, v)| f == "transfer-leader" && v.get("skipped").is_none())
        .map(|(_, v)| v)
        .collect();
    assert!(!transfers.is_empty(), "no transfer: {events:?}");
    assert!(
        transfers.iter().any(|v| v["result"] == "ok"),
        "no transfer succeeded: {transfers:?}"
    );
}
