//! The timeline: a lane per client and per node, operations as bars colored by outcome, fault
//! bands across all lanes; zoom and pan are the page's script (see page.rs). A history too big
//! to draw whole is shown in a window around the counterexample (or the busiest fault), and
//! the page says what was left out.

use super::charts::{kind_class, label_rows, mark, WIDTH};
use super::faults::Faults;
use super::html::{esc, secs};
use lincheck::{History, Operation, Outcome};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Operations drawn at most: beyond this a browser slows down and the bars are too thin to see.
pub const MAX_BARS: usize = 4000;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;

/// What to center a window on.
pub struct Focus {
    pub time: u64,
    pub why: String,
    /// Operations to outline (the counterexample's), as indices into the history.
    pub ops: Vec<usize>,
}

/// The operations to draw: `[a, b)` of the history's operations (in invocation order) plus
/// those invoked before `a` that completed after its invocation.
#[derive(Debug, PartialEq)]
pub struct Window {
    pub a: usize,
    pub b: usize,
}

/// All of a small history; else `MAX_BARS` operations centered on `center`.
pub fn choose(ops: &[Operation], center: Option<u64>) -> Window {
    if ops.len() <= MAX_BARS {
        return Window { a: 0, b: ops.len() };
    }
    let c = center.unwrap_or(0);
    let mid = ops.partition_point(|o| o.call_time < c);
    let a = mid.saturating_sub(MAX_BARS / 2).min(ops.len() - MAX_BARS);
    Window { a, b: a + MAX_BARS }
}

/// The fault during which the most operations were invoked: a window's center when there is no
/// counterexample.
pub fn busiest_fault(h: &History, faults: &Faults) -> Option<Focus> {
    faults
        .faults
        .iter()
        .map(|f| {
            let n = h.ops.partition_point(|o| o.call_time < f.end)
                - h.ops.partition_point(|o| o.call_time < f.start);
            (n, f)
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, f)| Focus {
            time: f.start + (f.end - f.start) / 2,
            why: format!("the busiest fault, {}", f.label),
            ops: Vec::new(),
        })
}

fn outcome_class(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok | Outcome::Refused => "ok",
        Outcome::Fail => "fail",
        Outcome::Info => "info",
        _ => "pending",
    }
}

/// The timeline's HTML: a note on what is shown, the controls and the SVG.
pub fn render(
    h: &History,
    faults: &Faults,
    clients: Option<u64>,
    nodes: &[String],
    end: u64,
    focus: Option<&Focus>,
) -> String {
    let w = choose(&h.ops, focus.map(|f| f.time));
    let whole = w.a == 0 && w.b == h.ops.len();
    let mut shown: Vec<usize> = Vec::with_capacity(w.b - w.a + 64);
    let (t0, t1) = if whole {
        (0, end.max(1))
    } else {
        let lo = h.ops[w.a].call_time;
        let hi = h.ops[w.b - 1]
            .ret_time
            .unwrap_or(h.ops[w.b - 1].call_time)
            .max(lo + 1);
        // Operations invoked before the window that were still running in it.
        shown.extend((0..w.a).filter(|&i| h.ops[i].ret_time.is_some_and(|r| r >= lo)));
        (lo, hi)
    };
    shown.extend(w.a..w.b);
    let mut s = String::new();
    if whole {
        let _ = write!(
            s,
            "<p class=\"note\" id=\"tl-note\">All {} operations. Scroll to zoom, drag to pan.</p>",
            h.ops.len()
        );
    } else {
        let before = w.a - (shown.len() - (w.b - w.a));
        let after = h.ops.len() - w.b;
        let _ = write!(
            s,
            "<p class=\"note warn\" id=\"tl-note\">Showing {} of {} operations, from {} to {}, around {}. \
             Left out: {before} operations invoked before and {after} after this window \
             (the charts above cover the whole run). Scroll to zoom, drag to pan.</p>",
            shown.len(),
            h.ops.len(),
            secs(t0),
            secs(t1),
            esc(focus.map(|f| f.why.as_str()).unwrap_or("the start")),
        );
    }
    // Lanes: clients (a worker's processes share its lane), then nodes.
    let lane_of = |p: u64| clients.filter(|&c| c > 0).map_or(p, |c| p % c);
    let mut lanes: BTreeMap<u64, usize> = BTreeMap::new();
    for &i in &shown {
        lanes.insert(lane_of(h.ops[i].process), 0);
    }
    for (n, v) in lanes.values_mut().enumerate() {
        *v = n;
    }
    let n_lanes = lanes.len() + nodes.len();
    let lane_h = if n_lanes > 40 { 10.0 } else { 18.0 };
    let plot_w = WIDTH - LEFT - RIGHT;
    let xw = |t: u64| (t.saturating_sub(t0)) as f64 / (t1 - t0) as f64 * plot_w;
    let visible: Vec<_> = faults
        .faults
        .iter()
        .filter(|f| f.start <= t1 && f.end >= t0)
        .cloned()
        .collect();
    let (rows, nrows) = label_rows(&visible, |t| xw(t.max(t0)));
    let top = 8.0 + nrows as f64 * 14.0;
    let plot_h = n_lanes as f64 * lane_h;
    let height = top + plot_h + 24.0;
    let _ = write!(
        s,
        "<div class=\"tl-controls\"><button type=\"button\" data-zoom=\"in\">zoom in</button> \
         <button type=\"button\" data-zoom=\"out\">zoom out</button> \
         <button type=\"button\" data-zoom=\"reset\">reset</button> <span id=\"tl-range\"></span></div>\
         <svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" \
         data-t0=\"{}\" data-t1=\"{}\" data-left=\"{LEFT}\" data-width=\"{plot_w}\" data-top=\"{top}\" data-bottom=\"{}\">\
         <defs><clipPath id=\"tl-clip\"><rect x=\"{LEFT}\" y=\"0\" width=\"{plot_w}\" height=\"{height}\"/></clipPath></defs>",
        t0 as f64 / 1e9,
        t1 as f64 / 1e9,
        top + plot_h,
    );
    // Lane labels and separators (not zoomed).
    s.push_str("<g class=\"lanes\">");
    let lane_label = |s: &mut String, n: usize, label: &str| {
        let y = top + n as f64 * lane_h;
        let _ = write!(
            s,
            "<text x=\"4\" y=\"{:.1}\">{}</text><line x1=\"{LEFT}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\"/>",
            y + lane_h - 4.0,
            esc(label),
            WIDTH - RIGHT,
            y + lane_h,
            y + lane_h
        );
    };
    for (&lane, &n) in &lanes {
        let label = if clients.is_some() {
            format!("client {lane}")
        } else {
            format!("p{lane}")
        };
        lane_label(&mut s, n, &label);
    }
    let node_lane: BTreeMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), lanes.len() + i))
        .collect();
    for (id, &n) in &node_lane {
        lane_label(&mut s, n, &format!("node {id}"));
    }
    s.push_str("</g><g clip-path=\"url(#tl-clip)\">");
    let _ = write!(s, "<g id=\"tl-world\" transform=\"translate({LEFT},0)\">");
    for f in &visible {
        let (x0, x1) = (xw(f.start.max(t0)), xw(f.end.min(t1)));
        let _ = write!(
            s,
            "<g class=\"band {}\"><title>{} from {} to {}</title><rect x=\"{x0:.2}\" y=\"{top}\" width=\"{:.2}\" height=\"{plot_h}\"/></g>",
            kind_class(&f.kind),
            esc(&f.label),
            secs(f.start),
            secs(f.end),
            (x1 - x0).max(0.5)
        );
        // The nodes it paused or took down, in their lanes.
        for node in &f.nodes {
            if let Some(&n) = node_lane.get(node.as_str()) {
                let y = top + n as f64 * lane_h + 2.0;
                let state = if f.kind == "pause" { "paused" } else { "down" };
                let _ = write!(
                    s,
                    "<rect class=\"node-{state}\" x=\"{x0:.2}\" y=\"{y:.1}\" width=\"{:.2}\" height=\"{:.1}\"><title>{node} {state}: {}</title></rect>",
                    (x1 - x0).max(0.5),
                    lane_h - 4.0,
                    esc(&f.label)
                );
            }
        }
    }
    for m in faults.marks.iter().filter(|m| m.time >= t0 && m.time <= t1) {
        mark(&mut s, m, xw(m.time), top, plot_h);
    }
    let outlined: &[usize] = focus.map(|f| f.ops.as_slice()).unwrap_or(&[]);
    for &i in &shown {
        let o = &h.ops[i];
        let Some(&n) = lanes.get(&lane_of(o.process)) else {
            continue;
        };
        let x0 = xw(o.call_time);
        let x1 = xw(o.ret_time.unwrap_or(t1).min(t1));
        let y = top + n as f64 * lane_h + 2.0;
        let mut tip = format!(
            "{} {} — process {}, {}, invoked {}",
            esc(h.key_name(o.key)),
            esc(&o.describe()),
            o.process,
            o.outcome.name(),
            secs(o.call_time)
        );
        if let Some(r) = o.ret_time {
            let _ = write!(tip, ", took {:.1} ms", (r - o.call_time) as f64 / 1e6);
        }
        if let Some(e) = &o.error {
            let _ = write!(tip, ", error {}", esc(e));
        }
        let _ = write!(
            s,
            "<rect class=\"op {}{}\" x=\"{x0:.2}\" y=\"{y:.1}\" width=\"{:.2}\" height=\"{:.1}\"><title>{tip}</title></rect>",
            outcome_class(o.outcome),
            if outlined.contains(&i) { " cex" } else { "" },
            (x1 - x0).max(0.4),
            lane_h - 4.0
        );
    }
    s.push_str("</g></g><g id=\"tl-labels\" clip-path=\"url(#tl-clip)\">");
    for (f, row) in visible.iter().zip(&rows) {
        let _ = write!(
            s,
            "<text class=\"band-label {}\" data-x=\"{:.2}\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            kind_class(&f.kind),
            xw(f.start.max(t0)),
            LEFT + xw(f.start.max(t0)) + 1.0,
            6.0 + (*row as f64 + 1.0) * 14.0 - 3.0,
            esc(&f.label)
        );
    }
    s.push_str("</g><g id=\"tl-axis\"></g></svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(n: usize) -> Vec<Operation> {
        let mut text = String::new();
        for i in 0..n {
            text.push_str(&format!(
                "{{\"time\":{},\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"k\",\"value\":{i}}}\n{{\"time\":{},\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"key\":\"k\",\"value\":{i}}}\n",
                i * 10,
                i * 10 + 5
            ));
        }
        lincheck::read_jsonl(text.as_bytes())
            .expect("a history")
            .ops
    }

    #[test]
    fn small_histories_are_drawn_whole_big_ones_around_the_focus() {
        assert_eq!(choose(&ops(10), Some(50)), Window { a: 0, b: 10 });
        let big = ops(MAX_BARS * 3);
        let w = choose(&big, Some(10 * (MAX_BARS as u64 * 2)));
        assert_eq!(w.b - w.a, MAX_BARS);
        assert_eq!(w.a, MAX_BARS * 2 - MAX_BARS / 2);
        // A focus near either end still gives a full window.
        assert_eq!(choose(&big, Some(0)), Window { a: 0, b: MAX_BARS });
        assert_eq!(
            choose(&big, Some(u64::MAX)),
            Window {
                a: MAX_BARS * 2,
                b: MAX_BARS * 3
            }
        );
    }
}
