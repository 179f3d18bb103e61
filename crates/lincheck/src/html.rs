//! A self-contained HTML page for a check result: no network, no CDN, no script needed.
//!
//! For each drawn key (by default only the keys that are not linearizable): one lane per
//! process, each operation a bar from invocation to completion colored by outcome (indefinite
//! bars run to the end), the longest linearizable prefix drawn as a numbered path through the
//! operations' linearization points, the operations that cannot be placed outlined in red, and
//! the model state after each linearized operation in the bar's hover text. Keys with many
//! operations are drawn around the counterexample only, so a 100,000-operation history stays
//! light.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io;

use crate::history::{History, Operation, Outcome};
use crate::result::{CheckResult, Counterexample, Verdict};

/// What to draw.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct HtmlOptions {
    /// Draw every key, not only the failing ones.
    pub all_keys: bool,
    /// Draw at most this many operations per key (0: 2,000).
    pub max_ops_per_key: usize,
}

impl HtmlOptions {
    /// Draw all keys.
    pub fn all_keys(mut self, on: bool) -> Self {
        self.all_keys = on;
        self
    }
}

/// Writes the page.
pub fn write(
    out: &mut impl io::Write,
    history: &History,
    result: &CheckResult,
    opts: &HtmlOptions,
) -> io::Result<()> {
    out.write_all(render(history, result, opts).as_bytes())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page's style sheet (also needed by a page that embeds [`keys_html`]).
pub const STYLE: &str = r#"
body{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 8px} h2{font-size:16px;margin:20px 0 6px}
.v-linearizable{color:#1b7a2e}.v-not-linearizable{color:#b71c1c}.v-unknown{color:#a15c00}
.expl{background:#fff3f3;border-left:4px solid #c62828;padding:8px 12px;margin:6px 0;max-width:1300px}
table{border-collapse:collapse;font-size:12px;margin:6px 0} td,th{border:1px solid #ddd;padding:2px 8px;text-align:left}
.legend span{display:inline-block;margin-right:14px}.sw{display:inline-block;width:14px;height:10px;margin-right:4px;vertical-align:middle}
svg{background:#fff;border:1px solid #ddd} svg .op:hover rect{stroke:#000;stroke-width:2}
svg text{font:11px monospace;pointer-events:none}
"#;

/// Renders the page as a string.
pub fn render(history: &History, result: &CheckResult, opts: &HtmlOptions) -> String {
    let mut s = String::with_capacity(64 * 1024);
    let v = result.verdict.name();
    let _ = write!(
        s,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>lincheck: {v}</title><style>{STYLE}</style></head><body>"
    );
    let _ = write!(
        s,
        "<h1>Verdict: <span class=\"v-{v}\">{v}</span></h1><p>{} operations, {} keys, model <b>{}</b>, checked in {:.3} s.</p>",
        result.ops,
        result.keys.len(),
        esc(&result.model),
        result.elapsed.as_secs_f64()
    );
    let unresolved = result.unresolved();
    if !unresolved.is_empty() {
        let list: Vec<String> = unresolved
            .iter()
            .map(|(k, c)| format!("{} ({})", esc(k), c.name()))
            .collect();
        let _ = write!(
            s,
            "<p class=\"v-unknown\">Unresolved keys: {}</p>",
            list.join(", ")
        );
    }
    s.push_str(&keys_html(history, result, opts));
    s.push_str("<h2>Keys</h2><table><tr><th>key</th><th>ops</th><th>verdict</th><th>time (ms)</th><th>steps</th><th>configurations</th></tr>");
    for k in &result.keys {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td class=\"v-{}\">{}</td><td>{:.2}</td><td>{}</td><td>{}</td></tr>",
            esc(&k.key),
            k.ops,
            k.verdict.name(),
            k.verdict.name(),
            k.elapsed.as_secs_f64() * 1e3,
            k.steps,
            k.configs
        );
    }
    s.push_str("</table></body></html>\n");
    s
}

/// The part of the page that explains the result key by key (legend, then for each drawn key
/// the explanation, the lanes and the prefix table), for embedding in another page that
/// includes [`STYLE`].
pub fn keys_html(history: &History, result: &CheckResult, opts: &HtmlOptions) -> String {
    let mut s = String::with_capacity(32 * 1024);
    s.push_str("<div class=\"legend\"><span><i class=\"sw\" style=\"background:#66bb6a\"></i>ok</span><span><i class=\"sw\" style=\"background:#ffa726\"></i>info / no reply (may take effect until the end)</span><span><i class=\"sw\" style=\"background:#bdbdbd\"></i>fail (did not happen)</span><span><i class=\"sw\" style=\"background:#fff;border:2px solid #d50000\"></i>cannot be placed</span><span><i class=\"sw\" style=\"background:#1565c0\"></i>longest linearizable prefix</span> Hover over an operation for details and the model state.</div>");

    let cex: HashMap<&str, &Counterexample> = result
        .counterexamples
        .iter()
        .map(|c| (c.key.as_str(), c))
        .collect();
    let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, op) in history.ops.iter().enumerate() {
        by_key.entry(history.key_name(op.key)).or_default().push(i);
    }
    let mut drawn = 0;
    for kr in &result.keys {
        let c = cex.get(kr.key.as_str()).copied();
        if c.is_none() && !opts.all_keys {
            continue;
        }
        drawn += 1;
        let _ = write!(
            s,
            "<h2>Key {} — <span class=\"v-{}\">{}</span></h2>",
            esc(&kr.key),
            kr.verdict.name(),
            kr.verdict.name()
        );
        if let Some(c) = c {
            let _ = write!(s, "<div class=\"expl\">{}</div>", esc(&c.explanation));
        }
        let ids = by_key.get(kr.key.as_str()).cloned().unwrap_or_default();
        draw_key(&mut s, history, &ids, c, opts);
        if let Some(c) = c {
            prefix_table(&mut s, history, c);
        }
    }
    if drawn == 0 {
        let why = match result.verdict {
            Verdict::Linearizable => "Every key is linearizable; nothing to show.",
            _ => "No key has a counterexample.",
        };
        let _ = write!(
            s,
            "<p>{why} (Render with all keys to see every history.)</p>"
        );
    }
    s
}

fn prefix_table(s: &mut String, h: &History, c: &Counterexample) {
    let _ = write!(s, "<details><summary>Longest linearizable prefix ({} operations), then the operations that cannot be placed</summary><table><tr><th>#</th><th>process</th><th>operation</th><th>state after</th></tr>", c.prefix.len());
    for (n, st) in c.prefix.iter().enumerate() {
        if let Some(op) = h.ops.get(st.op) {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                n + 1,
                op.process,
                esc(&op.describe()),
                esc(&st.state_after)
            );
        }
    }
    for &u in &c.unplaceable {
        if let Some(op) = h.ops.get(u) {
            let _ = write!(
                s,
                "<tr style=\"color:#b71c1c\"><td>✗</td><td>{}</td><td>{}</td><td>cannot be placed in state {}</td></tr>",
                op.process,
                esc(&op.describe()),
                esc(&c.state)
            );
        }
    }
    s.push_str("</table></details>");
}

/// Operations a key may have before the drawing zooms in on the counterexample.
const ZOOM_ABOVE: usize = 300;

/// Chooses the operations to draw: all of a small key; for a bigger failing key, those
/// overlapping the window from the last 40 operations of the prefix to the unplaceable ones
/// (indefinite operations only when invoked inside the window or part of the counterexample).
fn window<'a>(
    h: &'a History,
    ids: &[usize],
    c: Option<&Counterexample>,
    max: usize,
) -> Vec<&'a Operation> {
    let ops: Vec<&Operation> = ids.iter().filter_map(|&i| h.ops.get(i)).collect();
    let Some(c) = c.filter(|_| ops.len() > ZOOM_ABOVE) else {
        return ops.into_iter().take(max).collect();
    };
    let mut focus_ids: Vec<usize> = c.unplaceable.clone();
    focus_ids.extend(c.prefix.iter().rev().take(40).map(|s| s.op));
    let focus: Vec<&Operation> = focus_ids.iter().filter_map(|&i| h.ops.get(i)).collect();
    let lo = focus.iter().map(|o| o.call_time).min().unwrap_or(0);
    let hi = focus
        .iter()
        .map(|o| o.ret_time.unwrap_or(o.call_time))
        .max()
        .unwrap_or(u64::MAX);
    ids.iter()
        .filter_map(|&i| h.ops.get(i).map(|o| (i, o)))
        .filter(|(i, o)| {
            if o.outcome.is_indefinite() {
                (o.call_time >= lo && o.call_time <= hi) || focus_ids.contains(i)
            } else {
                o.call_time <= hi && o.ret_time.is_none_or(|r| r >= lo)
            }
        })
        .map(|(_, o)| o)
        .take(max)
        .collect()
}

fn draw_key(
    s: &mut String,
    h: &History,
    ids: &[usize],
    c: Option<&Counterexample>,
    opts: &HtmlOptions,
) {
    let max = if opts.max_ops_per_key == 0 {
        2000
    } else {
        opts.max_ops_per_key
    };
    let ops = window(h, ids, c, max);
    if ops.len() < ids.len() {
        let _ = write!(
            s,
            "<p>Showing {} of {} operations, around the counterexample.</p>",
            ops.len(),
            ids.len()
        );
    }
    if ops.is_empty() {
        return;
    }
    let t0 = ops.iter().map(|o| o.call_time).min().unwrap_or(0);
    let zoomed = ops.len() < ids.len();
    let finite_end = ops
        .iter()
        .map(|o| o.ret_time.unwrap_or(o.call_time))
        .max()
        .unwrap_or(t0);
    let t1 = finite_end + (finite_end - t0) / 20 + 1;
    let mut lanes: BTreeMap<u64, usize> = BTreeMap::new();
    for o in &ops {
        let n = lanes.len();
        lanes.entry(o.process).or_insert(n);
    }
    // Renumber lanes in process order.
    for (i, v) in lanes.values_mut().enumerate() {
        *v = i;
    }
    let (left, width, lane_h, top) = (70.0, 1300.0, 26.0, 24.0);
    let height = top + lanes.len() as f64 * lane_h + 10.0;
    let x = |t: u64| left + (t.saturating_sub(t0)) as f64 / (t1 - t0) as f64 * width;
    let y = |p: u64| top + lanes.get(&p).copied().unwrap_or(0) as f64 * lane_h;
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" viewBox=\"0 0 {} {height}\">",
        left + width + 20.0,
        left + width + 20.0
    );
    let _ = write!(
        s,
        "<text x=\"4\" y=\"14\">{}</text><text x=\"{}\" y=\"14\" text-anchor=\"end\">{}</text>",
        esc(&h.fmt_time(t0)),
        left + width,
        esc(&h.fmt_time(finite_end))
    );
    for (p, &l) in &lanes {
        let yy = top + l as f64 * lane_h;
        let _ = write!(
            s,
            "<text x=\"4\" y=\"{}\">p{}</text><line x1=\"{left}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#eee\"/>",
            yy + 16.0,
            p,
            left + width,
            yy + lane_h - 1.0,
            yy + lane_h - 1.0
        );
    }
    for n in &h.nemesis {
        if n.time >= t0 && n.time <= t1 {
            let xx = x(n.time);
            let _ = write!(
                s,
                "<g><title>nemesis {} {}</title><line x1=\"{xx}\" x2=\"{xx}\" y1=\"{top}\" y2=\"{}\" stroke=\"#7b1fa2\" stroke-dasharray=\"4 3\"/></g>",
                esc(&n.f),
                esc(&n.value.to_string()),
                height - 6.0
            );
        }
    }
    let mut state_after: HashMap<usize, (usize, &str)> = HashMap::new();
    let mut unplaceable: Vec<usize> = Vec::new();
    if let Some(c) = c {
        for (n, st) in c.prefix.iter().enumerate() {
            state_after.insert(st.op, (n + 1, &st.state_after));
        }
        unplaceable = c.unplaceable.clone();
    }
    let index_of: HashMap<*const Operation, usize> = ids
        .iter()
        .filter_map(|&i| h.ops.get(i).map(|o| (o as *const Operation, i)))
        .collect();
    for o in &ops {
        let id = index_of
            .get(&(*o as *const Operation))
            .copied()
            .unwrap_or(0);
        let x0 = x(o.call_time);
        let x1 = match (o.outcome, o.ret_time) {
            (Outcome::Info | Outcome::Pending, _) | (_, None) => left + width,
            (_, Some(r)) => x(r),
        }
        .max(x0 + 2.0);
        let yy = y(o.process) + 3.0;
        let fill = match o.outcome {
            Outcome::Ok | Outcome::Refused => "#66bb6a",
            Outcome::Fail => "#bdbdbd",
            _ => "#ffa726",
        };
        let bad = unplaceable.contains(&id);
        let stroke = if bad {
            "stroke=\"#d50000\" stroke-width=\"3\""
        } else {
            "stroke=\"#555\" stroke-width=\"0.5\""
        };
        let mut tip = format!(
            "{} — process {}, {}\ninvoked {} (line {}), ",
            o.describe(),
            o.process,
            o.outcome.name(),
            h.fmt_time(o.call_time),
            o.call_line
        );
        match (o.ret_time, o.ret_line) {
            (Some(t), Some(l)) => {
                let _ = write!(tip, "completed {} (line {})", h.fmt_time(t), l);
            }
            _ => tip.push_str("never completed"),
        }
        if let Some(e) = &o.error {
            let _ = write!(tip, "\nerror: {e}");
        }
        if let Some((n, st)) = state_after.get(&id) {
            let _ = write!(tip, "\nlinearized #{n}; state after: {st}");
        }
        if bad {
            if let Some(c) = c {
                let _ = write!(tip, "\ncannot be placed: state is {}", c.state);
            }
        }
        let label = o.describe();
        let _ = write!(
            s,
            "<g class=\"op\"><title>{}</title><rect x=\"{x0:.1}\" y=\"{yy:.1}\" width=\"{:.1}\" height=\"{}\" rx=\"3\" fill=\"{fill}\" {stroke}/>",
            esc(&tip),
            x1 - x0,
            lane_h - 8.0
        );
        if x1 - x0 > 40.0 {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                x0 + 3.0,
                yy + 13.0,
                esc(&truncate(&label, ((x1 - x0) / 7.0) as usize))
            );
        }
        if bad {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#d50000\" style=\"font-weight:bold;font-size:15px\">✗</text>",
                x0 - 12.0,
                yy + 14.0
            );
        }
        s.push_str("</g>");
    }
    // The partial linearization: points inside each op's interval, in order.
    if let Some(c) = c {
        let mut pts: Vec<(f64, f64, usize)> = Vec::new();
        let mut t_prev = 0u64;
        for (n, st) in c.prefix.iter().enumerate() {
            let Some(o) = h.ops.get(st.op) else { continue };
            let t = o.call_time.max(t_prev);
            let t = match o.ret_time {
                Some(r) if o.outcome == Outcome::Ok => t.min(r),
                _ => t,
            };
            t_prev = t;
            let shown = !zoomed || ops.iter().any(|d| std::ptr::eq(*d, o));
            if shown && o.call_time >= t0 && lanes.contains_key(&o.process) && o.call_time <= t1 {
                pts.push((x(t), y(o.process) + lane_h / 2.0 - 1.0, n + 1));
            }
        }
        if pts.len() > 1 {
            let path: Vec<String> = pts
                .iter()
                .map(|(a, b, _)| format!("{a:.1},{b:.1}"))
                .collect();
            let _ = write!(
                s,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"#1565c0\" stroke-width=\"1.5\" opacity=\"0.8\"/>",
                path.join(" ")
            );
        }
        for (a, b, n) in &pts {
            let _ = write!(
                s,
                "<circle cx=\"{a:.1}\" cy=\"{b:.1}\" r=\"3.5\" fill=\"#1565c0\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#1565c0\" style=\"font-size:9px\">{n}</text>",
                a + 3.0,
                b - 4.0
            );
        }
    }
    s.push_str("</svg>");
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}
