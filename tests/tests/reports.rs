//! Run reports and the index, as a browser shows them: two short real runs (raftkv under
//! pauses and partitions, which passes; brokenkv, which fails), then each page is loaded in
//! headless Chromium (Debian's `chromium`; `.ci/run` installs it) and the rendered DOM is
//! checked: the verdict, one shaded band per fault the history records, the failing key, the
//! index's rows, and no script error (neither in the page's own error slot nor on the console).
//!
//! A missing Chromium fails these tests: a report nobody ever rendered is not tested.
//! With `REPORT_SHOTS=DIR` the tests also save PNG screenshots of the three pages in DIR.

use e2e::{code, harness, run_with_timeout, show, workspace_bin, KillOnDrop, TempDir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const FAULT_STARTS: [&str; 6] = [
    "pause",
    "kill",
    "kill-all",
    "partition",
    "client-partition",
    "delay",
];

fn brokenkv() -> &'static str {
    env!("CARGO_BIN_EXE_brokenkv")
}

fn chromium() -> PathBuf {
    let name = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(&name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`{name}` not found on PATH: these tests need headless Chromium \
             (Debian: apt-get install chromium; .ci/run installs it)"
        )
    })
}

/// Headless Chromium with a fresh profile, no network services, file access only.
fn browser(profile: &Path) -> Command {
    let mut c = Command::new(chromium());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// The page's DOM after its scripts ran; fails on any console message (the pages log nothing,
/// so a message is an error: an exception, a blocked load).
fn dom(page: &Path, tmp: &Path) -> String {
    let profile = tmp.join(format!(
        "profile-{}",
        page.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let _reaper = KillOnDrop(profile.display().to_string());
    let out = run_with_timeout(
        browser(&profile)
            .arg("--dump-dom")
            .arg(format!("file://{}", page.display())),
        Duration::from_secs(90),
    );
    assert_eq!(
        code(&out.status),
        0,
        "chromium on {}: {}",
        page.display(),
        show(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "console messages on {}:\n{}",
        page.display(),
        console.join("\n")
    );
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        dom.contains("</html>"),
        "no DOM for {}: {}",
        page.display(),
        show(&out)
    );
    dom
}

fn screenshot(page: &Path, tmp: &Path, name: &str) {
    let Some(dir) = std::env::var_os("REPORT_SHOTS") else {
        return;
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let profile = tmp.join(format!("shot-{name}"));
    let _reaper = KillOnDrop(profile.display().to_string());
    let png = dir.join(format!("{name}.png"));
    let out = run_with_timeout(
        browser(&profile)
            .arg("--window-size=1366,900")
            .arg(format!("--screenshot={}", png.display()))
            .arg(format!("file://{}", page.display())),
        Duration::from_secs(90),
    );
    assert!(
        png.is_file(),
        "no screenshot {}: {}",
        png.display(),
        show(&out)
    );
}

/// The text of the element with `id` (its inner HTML, for a leaf element).
fn by_id<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id}"));
    let rest = &dom[at..];
    let start = rest.find('>').map(|i| i + 1).unwrap_or(0);
    let end = rest[start..]
        .find('<')
        .map(|i| start + i)
        .unwrap_or(rest.len());
    &rest[start..end]
}

/// The markup of the `<svg id=...>` element.
fn svg<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("<svg id=\"{id}\""))
        .unwrap_or_else(|| panic!("no svg #{id}"));
    let end = dom[at..]
        .find("</svg>")
        .map(|i| at + i)
        .unwrap_or(dom.len());
    &dom[at..end]
}

/// Faults the history records as started (not skipped), counted from the file itself.
fn fault_events(run: &Path) -> usize {
    let text = std::fs::read_to_string(run.join("history.jsonl"))
        .unwrap_or_else(|e| panic!("reading the history: {e}"));
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| {
            e["process"] == "nemesis"
                && e["f"].as_str().is_some_and(|f| FAULT_STARTS.contains(&f))
                && e["value"].get("skipped").is_none()
        })
        .count()
}

fn assert_rendered(dom: &str, page: &Path) {
    assert!(
        dom.contains("data-rendered=\""),
        "{}: the page's scripts did not finish",
        page.display()
    );
    assert_eq!(
        by_id(dom, "js-errors"),
        "",
        "{}: script errors",
        page.display()
    );
}

fn run(out: &Path, args: &[&str]) -> PathBuf {
    let o = run_with_timeout(
        harness().args(["run", "--out"]).arg(out).args(args),
        Duration::from_secs(90),
    );
    assert!(
        matches!(code(&o.status), 0 | 1),
        "harness run {args:?}: {}",
        show(&o)
    );
    let latest = out.join("latest");
    std::fs::canonicalize(&latest).unwrap_or_else(|e| panic!("{}: {e}", latest.display()))
}

#[test]
fn reports_and_index_render_in_a_browser() {
    let tmp = TempDir::new("reports");
    let _reaper = KillOnDrop(tmp.path().display().to_string());
    let out = tmp.path().join("histories");
    // The default system (raftkv) runs the workspace's raftkv binary: it must be built.
    workspace_bin("raftkv");
    let pass = run(
        &out,
        &[
            "--time-limit",
            "4s",
            "--seed",
            "11",
            "--nemesis",
            "pause,partition,kill",
            // Few enough operations for the timeline to draw them all (and so every band).
            "--rate",
            "400",
            "--nemesis-interval",
            "1s",
            "--recovery",
            "1s",
        ],
    );
    let fail = run(
        &out,
        &[
            "--time-limit",
            "2s",
            "--seed",
            "3",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "1s",
            "--recovery",
            "1s",
            "--node-bin",
            brokenkv(),
        ],
    );

    // The passing run: a report although nothing went wrong, with every fault drawn.
    let page = pass.join("report.html");
    let d = dom(&page, tmp.path());
    assert_rendered(&d, &page);
    assert_eq!(by_id(&d, "verdict"), "linearizable");
    let faults = fault_events(&pass);
    assert!(faults >= 2, "the passing run injected {faults} faults");
    for chart in ["throughput", "latency"] {
        assert_eq!(
            svg(&d, chart).matches("class=\"band ").count(),
            faults,
            "bands in #{chart}"
        );
    }
    assert_eq!(svg(&d, "timeline").matches("class=\"band ").count(), faults);
    assert!(d.contains("id=\"availability\""));
    assert!(
        d.contains("href=\"nodes/n1.log\""),
        "no link to the node logs"
    );
    // The timeline's script drew its axis.
    assert!(by_id(&d, "tl-range").starts_with("showing 0.000 s"));
    screenshot(&page, tmp.path(), "report-pass");

    // The failing run: the verdict, the failing key, the counterexample and the logs near it.
    let result: Value = serde_json::from_str(
        &std::fs::read_to_string(fail.join("result.json")).unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("result.json: {e}"));
    let key = result["counterexamples"][0]["key"]
        .as_str()
        .unwrap_or_else(|| panic!("no counterexample in {result}"));
    let page = fail.join("report.html");
    let d = dom(&page, tmp.path());
    assert_rendered(&d, &page);
    assert_eq!(by_id(&d, "verdict"), "not-linearizable");
    assert!(
        d.contains(&format!("class=\"failing-key\">{key}<")),
        "failing key {key} not shown"
    );
    assert!(
        d.contains(&format!("Key {key} — ")),
        "no counterexample view of {key}"
    );
    assert!(d.contains("id=\"cex-faults\""));
    assert!(d.contains("class=\"op ok cex\"") || d.contains("class=\"op fail cex\""));
    let faults = fault_events(&fail);
    assert_eq!(
        svg(&d, "throughput").matches("class=\"band ").count(),
        faults
    );
    // brokenkv's log lines carry no timestamps, so each node's excerpt is its last lines.
    assert!(
        d.contains("node n1 — last lines") && d.contains("href=\"nodes/n5.log\""),
        "node logs missing"
    );
    screenshot(&page, tmp.path(), "report-fail");

    // The index: both runs, newest first, colored by verdict, linked.
    let page = out.join("index.html");
    let d = dom(&page, tmp.path());
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let (at_fail, at_pass) = (
        d.find(&format!("{}/report.html", name(&fail))),
        d.find(&format!("{}/report.html", name(&pass))),
    );
    assert!(
        at_fail.is_some() && at_pass.is_some() && at_fail < at_pass,
        "index rows missing or not newest first"
    );
    assert_eq!(d.matches("<tr class=\"run v-pass\"").count(), 1);
    assert_eq!(d.matches("<tr class=\"run v-fail\"").count(), 1);
    screenshot(&page, tmp.path(), "index");

    // `harness report` rebuilds the same pages from the stored files.
    std::fs::remove_file(fail.join("report.html")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_file(&page).unwrap_or_else(|e| panic!("{e}"));
    let o = run_with_timeout(harness().arg("report").arg(&fail), Duration::from_secs(60));
    assert_eq!(code(&o.status), 0, "{}", show(&o));
    let o = run_with_timeout(harness().arg("report").arg(&out), Duration::from_secs(60));
    assert_eq!(code(&o.status), 0, "{}", show(&o));
    assert!(fail.join("report.html").is_file() && page.is_file());
}

#[test]
fn report_usage_errors_exit_254() {
    let tmp = TempDir::new("report-usage");
    for dir in [tmp.path().join("absent"), tmp.path().to_path_buf()] {
        let o = run_with_timeout(harness().arg("report").arg(&dir), Duration::from_secs(30));
        assert_eq!(
            code(&o.status),
            254,
            "harness report {}: {}",
            dir.display(),
            show(&o)
        );
    }
}
