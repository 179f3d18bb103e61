//! Fault intervals and node events, from the history's nemesis events (the vocabulary of
//! harness/src/run/nemesis.rs): each fault start is paired with the event that undid it, by
//! its `id`; the final heal, resume and restart close whatever is still open.

use lincheck::history::NemesisEvent;
use serde_json::Value;
use std::collections::BTreeMap;

/// A fault while it was in force (history nanoseconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// The nemesis' id for it (absent in histories from elsewhere).
    pub id: Option<u64>,
    /// `pause`, `kill`, `kill-all`, `partition`, `client-partition`, `delay`, or another start
    /// event's `f`.
    pub kind: String,
    /// Its shape or target set (`halves`, `majority`, ...), for counts.
    pub detail: Option<String>,
    /// For people: `pause n2`, `partition n1 n2 | n3 n4 n5`, `kill majority: n1 n2 n3`.
    pub label: String,
    pub start: u64,
    pub end: u64,
    /// False when nothing in the history undid it (it lasted to the end).
    pub ended: bool,
    /// The nodes it stopped (pause) or took down (kill), for the node lanes.
    pub nodes: Vec<String>,
}

/// A point on the time axis: a restart, a crash, a fault that was skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub time: u64,
    pub kind: MarkKind,
    pub label: String,
    pub nodes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    Restart,
    RestartFailed,
    Crash,
    Skipped,
    /// Leadership handed over (`transfer-leader`).
    Transfer,
}

impl MarkKind {
    pub fn class(self) -> &'static str {
        match self {
            MarkKind::Restart => "restart",
            MarkKind::RestartFailed | MarkKind::Crash => "crash",
            MarkKind::Skipped => "skipped",
            MarkKind::Transfer => "transfer",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// In order of start.
    pub faults: Vec<Fault>,
    pub marks: Vec<Mark>,
}

/// Which events start a fault, and which end events undo it.
fn ends(kind: &str) -> &'static [&'static str] {
    match kind {
        "pause" => &["resume"],
        "kill" | "kill-all" => &["restart"],
        "partition" => &["heal"],
        "client-partition" => &["client-heal", "heal"],
        "delay" => &["undelay", "heal"],
        "power-cut" | "bitflip" => &["restart"],
        "disk-error" => &["disk-heal"],
        "member-remove" => &["member-add"],
        _ => &[],
    }
}

const STARTS: [&str; 10] = [
    "pause",
    "kill",
    "kill-all",
    "partition",
    "client-partition",
    "delay",
    "power-cut",
    "disk-error",
    "bitflip",
    "member-remove",
];

/// Faults that take their nodes out (for the node lanes, and for closing them by node).
const TAKES_NODES: [&str; 7] = [
    "pause",
    "kill",
    "kill-all",
    "power-cut",
    "disk-error",
    "bitflip",
    "member-remove",
];

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|x| match x {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// `pause n2`, `kill majority: n1 n2 n3`, `partition n1 n2 | n3 n4 n5`, ...
pub fn label(f: &str, v: &Value) -> String {
    let nodes = strings(&v["nodes"]).join(" ");
    let targets = v["targets"].as_str().unwrap_or("");
    match f {
        "pause" | "kill" | "power-cut" => match targets {
            "" | "one" => format!("{f} {nodes}"),
            "leader" => format!("{f} leader {nodes}"),
            t => format!("{f} {t}: {nodes}"),
        },
        "disk-error" => format!(
            "failing {} ({}) on {}",
            v["ops"].as_str().unwrap_or("disk ops"),
            v["errno"].as_str().unwrap_or("?"),
            v["node"].as_str().unwrap_or("?")
        ),
        "bitflip" => format!(
            "bit flipped in {} of {}",
            v["file"].as_str().unwrap_or("a file"),
            v["node"].as_str().unwrap_or("?")
        ),
        "member-remove" => format!(
            "{} removed{}",
            v["node"].as_str().unwrap_or("?"),
            if v["was_leader"] == Value::Bool(true) {
                " (the leader)"
            } else {
                ""
            }
        ),
        "kill-all" => "kill all".to_string(),
        "partition" => {
            let node = v["node"].as_str().unwrap_or("?");
            let leader = if v["leader"] == Value::Bool(true) {
                " (leader)"
            } else {
                ""
            };
            match v["shape"].as_str() {
                Some("one-way") => format!(
                    "one-way {} {node}{leader}",
                    if v["direction"] == "inbound" {
                        "into"
                    } else {
                        "out of"
                    }
                ),
                Some("isolate") => format!("isolate {node}{leader}"),
                shape => {
                    let groups: Vec<String> = v["groups"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|g| strings(g).join(" "))
                        .collect();
                    if groups.is_empty() {
                        format!("partition {}", shape.unwrap_or("?"))
                    } else {
                        format!("partition {}", groups.join(" | "))
                    }
                }
            }
        }
        "client-partition" => format!(
            "cut clients {} from {nodes}",
            strings(&v["clients"]).join(" ")
        ),
        "delay" => {
            let links = v["links"].as_array().map(Vec::len).unwrap_or(0);
            format!(
                "delay {}±{} ms on {links} links",
                v["base_ms"].as_u64().unwrap_or(0),
                v["jitter_ms"].as_u64().unwrap_or(0)
            )
        }
        f => match v {
            Value::Null => f.to_string(),
            v => format!("{f} {v}"),
        },
    }
}

/// Pairs starts and ends; `end` is the history's last instant (for faults never undone).
pub fn from_history(events: &[NemesisEvent], end: u64) -> Faults {
    let mut out = Faults::default();
    // Index into out.faults of each fault still open.
    let mut open: Vec<usize> = Vec::new();
    let mut by_id: BTreeMap<u64, usize> = BTreeMap::new();
    for ev in events {
        let f = ev.f.as_str();
        let v = &ev.value;
        if v.get("skipped").is_some() {
            out.marks.push(Mark {
                time: ev.time,
                kind: MarkKind::Skipped,
                label: format!(
                    "{f} skipped: {}",
                    v["skipped"].as_str().unwrap_or("not carried out")
                ),
                nodes: Vec::new(),
            });
            continue;
        }
        if STARTS.contains(&f) {
            let id = v["id"].as_u64();
            let detail = match f {
                "partition" => v["shape"].as_str(),
                "pause" | "kill" => v["targets"].as_str(),
                _ => None,
            };
            out.faults.push(Fault {
                id,
                kind: f.to_string(),
                detail: detail.map(str::to_string),
                label: label(f, v),
                start: ev.time,
                end,
                ended: false,
                nodes: if TAKES_NODES.contains(&f) {
                    match v.get("node").and_then(Value::as_str) {
                        Some(n) if v.get("nodes").is_none() => vec![n.to_string()],
                        _ => strings(&v["nodes"]),
                    }
                } else {
                    Vec::new()
                },
            });
            let i = out.faults.len() - 1;
            open.push(i);
            if let Some(id) = id {
                by_id.insert(id, i);
            }
            continue;
        }
        match f {
            "transfer-leader" => out.marks.push(Mark {
                time: ev.time,
                kind: MarkKind::Transfer,
                label: format!(
                    "leadership {} → {} ({})",
                    v["from"].as_str().unwrap_or("?"),
                    v["to"].as_str().unwrap_or("any"),
                    v["result"].as_str().unwrap_or("?")
                ),
                nodes: Vec::new(),
            }),
            "restart" | "crash" => {
                let nodes = if f == "crash" {
                    v["node"]
                        .as_str()
                        .map(|n| vec![n.to_string()])
                        .unwrap_or_default()
                } else {
                    strings(&v["nodes"])
                };
                let kind = match (f, v.get("error")) {
                    ("crash", _) => MarkKind::Crash,
                    (_, Some(_)) => MarkKind::RestartFailed,
                    _ => MarkKind::Restart,
                };
                let label = match kind {
                    MarkKind::Crash => format!(
                        "crash {} ({})",
                        nodes.join(" "),
                        v["status"].as_str().unwrap_or("exited")
                    ),
                    MarkKind::RestartFailed => format!("restart of {} failed", nodes.join(" ")),
                    _ => format!("restart {}", nodes.join(" ")),
                };
                out.marks.push(Mark {
                    time: ev.time,
                    kind,
                    label,
                    nodes,
                });
            }
            _ => {}
        }
        // Which open faults this event closes: the one with its id, or, for the final
        // recovery's events (no id), every open fault it undoes (a final resume or restart
        // only for the nodes it names).
        if v.get("error").is_some() {
            // A failed restart undid nothing: the node stays down.
            continue;
        }
        let closes: Vec<usize> = match v["id"].as_u64().and_then(|id| by_id.get(&id)) {
            Some(&i) if ends(&out.faults[i].kind).contains(&f) => vec![i],
            Some(_) => Vec::new(),
            None => {
                let named = strings(&v["nodes"]);
                open.iter()
                    .copied()
                    .filter(|&i| {
                        let fl = &out.faults[i];
                        ends(&fl.kind).contains(&f)
                            && (named.is_empty() || fl.nodes.iter().any(|n| named.contains(n)))
                    })
                    .collect()
            }
        };
        for i in closes {
            if let Some(fl) = out.faults.get_mut(i) {
                if !fl.ended {
                    fl.end = ev.time.max(fl.start);
                    fl.ended = true;
                }
            }
            open.retain(|&j| j != i);
        }
    }
    out
}

impl Faults {
    /// `partition 2 (isolate 1, one-way 1), kill 1 (leader 1)`.
    pub fn counts_line(&self) -> String {
        let mut by_kind: BTreeMap<&str, (u64, BTreeMap<&str, u64>)> = BTreeMap::new();
        for f in &self.faults {
            let e = by_kind.entry(&f.kind).or_default();
            e.0 += 1;
            if let Some(d) = &f.detail {
                *e.1.entry(d).or_default() += 1;
            }
        }
        if by_kind.is_empty() {
            return "none".into();
        }
        by_kind
            .iter()
            .map(|(k, (n, details))| {
                if details.is_empty() {
                    format!("{k} {n}")
                } else {
                    let d: Vec<String> = details.iter().map(|(d, c)| format!("{d} {c}")).collect();
                    format!("{k} {n} ({})", d.join(", "))
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Faults in force at some instant of `[lo, hi]`.
    pub fn overlapping(&self, lo: u64, hi: u64) -> Vec<&Fault> {
        self.faults
            .iter()
            .filter(|f| f.start <= hi && f.end >= lo)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(time: u64, f: &str, value: Value) -> NemesisEvent {
        let line = format!(
            "{{\"time\":{time},\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"{f}\",\"value\":{value}}}\n"
        );
        let h = lincheck::read_jsonl(line.as_bytes()).expect("a nemesis line");
        h.nemesis.into_iter().next().expect("one event")
    }

    #[test]
    fn pairs_by_id_and_closes_the_rest_at_the_final_heal() {
        let events = vec![
            ev(
                10,
                "partition",
                json!({"id": 1, "shape": "halves", "groups": [["n1","n2"],["n3","n4","n5"]]}),
            ),
            ev(
                20,
                "kill",
                json!({"id": 2, "targets": "majority", "nodes": ["n1","n2","n3"]}),
            ),
            ev(30, "restart", json!({"id": 2, "nodes": ["n1","n2","n3"]})),
            ev(
                40,
                "pause",
                json!({"id": 3, "targets": "one", "nodes": ["n2"]}),
            ),
            ev(
                45,
                "pause",
                json!({"targets": "one", "nodes": ["n4"], "skipped": "no target node was running"}),
            ),
            ev(
                50,
                "crash",
                json!({"node": "n5", "status": "exit code 101"}),
            ),
            ev(60, "heal", json!({"final": true})),
            ev(70, "resume", json!({"nodes": ["n2"], "final": true})),
        ];
        let f = from_history(&events, 100);
        let spans: Vec<(&str, u64, u64, bool)> = f
            .faults
            .iter()
            .map(|x| (x.label.as_str(), x.start, x.end, x.ended))
            .collect();
        assert_eq!(
            spans,
            vec![
                ("partition n1 n2 | n3 n4 n5", 10, 60, true),
                ("kill majority: n1 n2 n3", 20, 30, true),
                ("pause n2", 40, 70, true),
            ]
        );
        let marks: Vec<(MarkKind, u64)> = f.marks.iter().map(|m| (m.kind, m.time)).collect();
        assert_eq!(
            marks,
            vec![
                (MarkKind::Restart, 30),
                (MarkKind::Skipped, 45),
                (MarkKind::Crash, 50)
            ]
        );
        assert_eq!(
            f.counts_line(),
            "kill 1 (majority 1), partition 1 (halves 1), pause 1 (one 1)"
        );
        assert_eq!(f.overlapping(25, 35).len(), 2);
    }

    #[test]
    fn membership_changes_are_bands_and_marks() {
        let events = vec![
            ev(
                10,
                "member-remove",
                json!({"id": 4, "node": "n3", "nodes": ["n3"], "leader": "n3", "was_leader": true}),
            ),
            ev(
                15,
                "transfer-leader",
                json!({"from": "n1", "to": "n2", "result": "ok"}),
            ),
            ev(
                20,
                "restart",
                json!({"id": 4, "nodes": ["n3"], "joining": true}),
            ),
            ev(
                25,
                "member-add",
                json!({"id": 4, "node": "n3", "nodes": ["n3"], "error": "timeout"}),
            ),
            ev(
                40,
                "member-add",
                json!({"node": "n3", "nodes": ["n3"], "final": true, "leader": "n2"}),
            ),
        ];
        let f = from_history(&events, 100);
        let spans: Vec<(&str, u64, u64, &[String])> = f
            .faults
            .iter()
            .map(|x| (x.label.as_str(), x.start, x.end, x.nodes.as_slice()))
            .collect();
        assert_eq!(
            spans,
            vec![("n3 removed (the leader)", 10, 40, &["n3".to_string()][..])],
            "a failed add leaves the node out until the final one"
        );
        let marks: Vec<(MarkKind, &str)> =
            f.marks.iter().map(|m| (m.kind, m.label.as_str())).collect();
        assert_eq!(
            marks,
            vec![
                (MarkKind::Transfer, "leadership n1 → n2 (ok)"),
                (MarkKind::Restart, "restart n3"),
            ]
        );
    }

    #[test]
    fn a_fault_never_undone_lasts_to_the_end() {
        let f = from_history(
            &[ev(
                5,
                "partition",
                json!({"id": 1, "shape": "one-way", "node": "n2", "direction": "inbound", "leader": true}),
            )],
            99,
        );
        assert_eq!(f.faults[0].label, "one-way into n2 (leader)");
        assert_eq!((f.faults[0].end, f.faults[0].ended), (99, false));
    }

    #[test]
    fn labels() {
        assert_eq!(label("kill-all", &json!({"nodes": ["n1"]})), "kill all");
        assert_eq!(
            label(
                "client-partition",
                &json!({"clients": [0, 3], "nodes": ["n2"]})
            ),
            "cut clients 0 3 from n2"
        );
        assert_eq!(
            label(
                "delay",
                &json!({"links": [["n1","n2"]], "base_ms": 50, "jitter_ms": 20})
            ),
            "delay 50±20 ms on 1 links"
        );
        assert_eq!(
            label("kill", &json!({"targets": "leader", "nodes": ["n3"]})),
            "kill leader n3"
        );
    }
}
