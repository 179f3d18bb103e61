//! The JUnit XML file (`--junit`): one test case per run, written with quick-xml (which escapes
//! attribute values and text); characters XML 1.0 cannot hold (control characters from a node's
//! log, say) are replaced first.
//!
//! Mapping: a violation is a `<failure type="not-linearizable">`, an unknown run a
//! `<failure type="unknown">` (a passing case with a note under --allow-unknown), a failed or
//! interrupted run an `<error>`. The message is the checker's (or the run's) explanation; the body
//! adds the run directory, the replay command and whether a re-run reproduced the violation.

use super::matrix::Dim;
use super::record::{RunRecord, Status};
use super::report::{dir_cell, params, CampaignFile};
use anyhow::{Context, Result};
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use std::path::Path;

/// Replaces what XML 1.0 cannot carry (control characters other than tab, CR, LF).
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{FFFE}' || c == '\u{FFFF}' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// `r3 seed=45 nodes=3 nemesis=partition` (parameters in matrix order).
pub fn case_name(r: &RunRecord, matrix: &[Dim]) -> String {
    let mut name = format!("r{} seed={}", r.index, r.seed);
    if !r.params.is_empty() {
        name.push(' ');
        name.push_str(&params(r, matrix));
    }
    name
}

fn start<'a>(name: &'a str, attrs: &[(&str, String)]) -> BytesStart<'a> {
    let mut e = BytesStart::new(name);
    for (k, v) in attrs {
        e.push_attribute((*k, clean(v).as_str()));
    }
    e
}

/// The JUnit document for a campaign.
pub fn render(c: &CampaignFile, campaign_dir: &Path) -> Result<String> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let failures = c
        .runs
        .iter()
        .filter(|r| {
            r.status == Status::NotLinearizable || (r.status == Status::Unknown && !c.allow_unknown)
        })
        .count();
    let errors = c
        .runs
        .iter()
        .filter(|r| matches!(r.status, Status::Failed | Status::Interrupted))
        .count();
    let time: f64 = c.runs.iter().map(|r| r.seconds).sum();
    let counts = [
        ("tests", c.runs.len().to_string()),
        ("failures", failures.to_string()),
        ("errors", errors.to_string()),
        ("skipped", "0".to_string()),
        ("time", format!("{time:.3}")),
    ];
    let ev = |w: &mut Writer<Vec<u8>>, e: Event| w.write_event(e).context("writing JUnit XML");
    ev(
        &mut w,
        Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)),
    )?;
    let mut attrs = vec![("name", "harness campaign".to_string())];
    attrs.extend(counts.iter().cloned());
    ev(&mut w, Event::Start(start("testsuites", &attrs)))?;
    let suite_name = match c.shard {
        Some(s) => format!(
            "harness campaign seed-base {} shard {}/{}",
            c.seed_base, s.index, s.count
        ),
        None => format!("harness campaign seed-base {}", c.seed_base),
    };
    let mut attrs = vec![("name", suite_name)];
    attrs.extend(counts.iter().cloned());
    attrs.push(("timestamp", c.started.clone()));
    ev(&mut w, Event::Start(start("testsuite", &attrs)))?;

    ev(&mut w, Event::Start(BytesStart::new("properties")))?;
    let mut props = vec![
        ("seed_base", c.seed_base.to_string()),
        ("run_options", c.run_options.join(" ")),
        ("exit_code", c.exit_code.to_string()),
        ("explanation", c.explanation.clone()),
    ];
    for d in &c.matrix {
        props.push(("matrix", format!("{}={}", d.name, d.values.join("|"))));
    }
    if let Some(s) = &c.stopped {
        props.push(("stopped", s.clone()));
    }
    for (k, v) in props {
        ev(
            &mut w,
            Event::Empty(start("property", &[("name", k.to_string()), ("value", v)])),
        )?;
    }
    ev(&mut w, Event::End(BytesEnd::new("properties")))?;

    for r in &c.runs {
        let case = start(
            "testcase",
            &[
                ("name", case_name(r, &c.matrix)),
                ("classname", "harness.campaign".to_string()),
                ("time", format!("{:.3}", r.seconds)),
            ],
        );
        let explanation = r.explanation.clone().unwrap_or_default();
        let first_line = explanation.lines().next().unwrap_or("").to_string();
        let mut body = String::new();
        if !explanation.is_empty() {
            body.push_str(&explanation);
            body.push('\n');
        }
        body.push_str(&format!("run directory: {}\n", dir_cell(r, campaign_dir)));
        body.push_str(&format!("replay: {}\n", r.replay_command));
        let outcome: Option<(&str, &str, String)> = match r.status {
            Status::Linearizable => None,
            Status::NotLinearizable => {
                let rep = match r.reproduced {
                    Some(true) => "reproduced on replay",
                    Some(false) => "not reproduced on replay",
                    None => "not replayed",
                };
                body.push_str(&format!("{rep}\n"));
                Some((
                    "failure",
                    "not-linearizable",
                    format!("{first_line} ({rep})"),
                ))
            }
            Status::Unknown if c.allow_unknown => None,
            Status::Unknown => Some(("failure", "unknown", first_line.clone())),
            Status::Failed => Some(("error", "failed", first_line.clone())),
            Status::Interrupted => Some(("error", "interrupted", first_line.clone())),
        };
        ev(&mut w, Event::Start(case))?;
        match outcome {
            Some((tag, kind, message)) => {
                ev(
                    &mut w,
                    Event::Start(start(tag, &[("message", message), ("type", kind.into())])),
                )?;
                ev(&mut w, Event::Text(BytesText::new(&clean(&body))))?;
                ev(&mut w, Event::End(BytesEnd::new(tag)))?;
            }
            None => {
                ev(&mut w, Event::Start(BytesStart::new("system-out")))?;
                let mut note = body;
                if r.status == Status::Unknown {
                    note.insert_str(0, "unknown, accepted by --allow-unknown: ");
                }
                ev(&mut w, Event::Text(BytesText::new(&clean(&note))))?;
                ev(&mut w, Event::End(BytesEnd::new("system-out")))?;
            }
        }
        ev(&mut w, Event::End(BytesEnd::new("testcase")))?;
    }
    ev(&mut w, Event::End(BytesEnd::new("testsuite")))?;
    ev(&mut w, Event::End(BytesEnd::new("testsuites")))?;
    let mut text = String::from_utf8(w.into_inner()).context("JUnit XML is not UTF-8")?;
    text.push('\n');
    Ok(text)
}

/// Writes the JUnit file.
pub fn write(c: &CampaignFile, campaign_dir: &Path, path: &Path) -> Result<()> {
    let text = render(c, campaign_dir)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    super::report::write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::super::record::Counts;
    use super::*;
    use std::collections::BTreeMap;

    fn rec(index: u64, status: Status, explanation: &str) -> RunRecord {
        RunRecord {
            index,
            seed: 100 + index,
            cell: 0,
            params: BTreeMap::from([("nemesis".to_string(), "pause,kill".to_string())]),
            status,
            exit_code: Some(0),
            started: String::new(),
            seconds: 1.5,
            ops: Some(10),
            faults: BTreeMap::new(),
            explanation: (!explanation.is_empty()).then(|| explanation.to_string()),
            run_dir: Some(format!("runs/r{index}/x")),
            pruned: false,
            replay_command: "harness run --seed 1 --node-arg='a b'".into(),
            reproduced: (status == Status::NotLinearizable).then_some(true),
            replay: None,
        }
    }

    fn campaign(runs: Vec<RunRecord>, allow_unknown: bool) -> CampaignFile {
        CampaignFile {
            format: super::super::report::FORMAT.into(),
            version: super::super::report::VERSION,
            harness_version: "0".into(),
            state: "finished".into(),
            started: "2026-01-01T00:00:00.000Z".into(),
            finished: None,
            elapsed_seconds: 1.0,
            seed_base: 100,
            runs_requested: Some(3),
            duration: None,
            shard: None,
            matrix: Vec::new(),
            cells: 1,
            run_options: vec!["--nodes".into(), "3".into()],
            parallel: 1,
            allow_unknown,
            replay_violations: true,
            keep_passing: 10,
            stopped: None,
            runs_not_started: Some(0),
            counts: Counts::of(&runs),
            pruned: 0,
            exit_code: 1,
            explanation: "x".into(),
            merged_from: Vec::new(),
            shards_missing: Vec::new(),
            runs,
        }
    }

    #[test]
    fn escapes_and_maps_statuses() -> Result<()> {
        let c = campaign(
            vec![
                rec(0, Status::Linearizable, ""),
                rec(
                    1,
                    Status::NotLinearizable,
                    "key k1: read <\"2\"> & 'not' 1\u{1b}[0m",
                ),
                rec(2, Status::Failed, "node n1 crashed"),
                rec(3, Status::Unknown, "limit"),
            ],
            false,
        );
        let xml = render(&c, Path::new("/c"))?;
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
        assert_eq!(xml.matches("<testcase ").count(), 4);
        assert_eq!(xml.matches("<failure ").count(), 2);
        assert_eq!(xml.matches("<error ").count(), 1);
        assert!(xml.contains("name=\"r1 seed=101 nemesis=pause,kill\""));
        assert!(xml.contains("&lt;&quot;2&quot;&gt; &amp;"), "{xml}");
        assert!(!xml.contains('\u{1b}'));
        assert!(xml.contains("(reproduced on replay)"));
        assert!(xml.contains("run directory: /c/runs/r1/x"));
        assert!(xml.contains("tests=\"4\" failures=\"2\" errors=\"1\""));
        let allowed = render(
            &campaign(vec![rec(3, Status::Unknown, "limit")], true),
            Path::new("/c"),
        )?;
        assert_eq!(allowed.matches("<failure").count(), 0);
        assert!(allowed.contains("accepted by --allow-unknown"));
        Ok(())
    }
}
