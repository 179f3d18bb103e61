//! The charts over time, as plain generated SVG: throughput and latency, with every fault
//! drawn as a labelled band and every restart and crash as a line.

use super::faults::{Fault, Faults, Mark};
use super::html::{esc, secs};
use std::fmt::Write as _;

pub const WIDTH: f64 = 1200.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const PLOT_H: f64 = 200.0;
const ROW_H: f64 = 14.0;

/// Value to SVG y.
type YMap = Box<dyn Fn(f64) -> f64>;

pub enum Scale {
    Linear,
    /// Logarithmic over positive values: latencies in nanoseconds, labelled in ms / s.
    LogNs,
}

pub struct Line<'a> {
    pub name: &'a str,
    pub color: &'a str,
    /// (seconds, value); `None` leaves a gap.
    pub points: Vec<(f64, Option<f64>)>,
}

/// 1, 2 or 5 times a power of ten, at least `x`.
pub fn nice(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(x.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= x {
            return m * p;
        }
    }
    10.0 * p
}

/// A CSS class per fault kind (colors in the page's style sheet).
pub fn kind_class(kind: &str) -> &'static str {
    match kind {
        "pause" => "k-pause",
        "kill" | "kill-all" => "k-kill",
        "partition" => "k-partition",
        "client-partition" => "k-client",
        "delay" => "k-delay",
        _ => "k-other",
    }
}

/// Label rows so that overlapping faults' labels do not collide: each fault takes the first
/// row whose previous fault ended (in pixels, label included) before it starts.
pub fn label_rows(faults: &[Fault], x: impl Fn(u64) -> f64) -> (Vec<usize>, usize) {
    let mut row_end: Vec<f64> = Vec::new();
    let mut rows = Vec::with_capacity(faults.len());
    for f in faults {
        let x0 = x(f.start);
        let right = x0 + f.label.chars().count() as f64 * 6.2 + 8.0;
        let r = match row_end.iter().position(|&e| e <= x0) {
            Some(r) => r,
            None => {
                row_end.push(0.0);
                row_end.len() - 1
            }
        };
        row_end[r] = right.max(x(f.end));
        rows.push(r);
    }
    (rows, row_end.len())
}

fn tick_step(span: f64, target: f64) -> f64 {
    nice(span / target)
}

fn fmt_ns(v: f64) -> String {
    if v >= 1e9 {
        format!("{} s", v / 1e9)
    } else if v >= 1e6 {
        format!("{} ms", v / 1e6)
    } else if v >= 1e3 {
        format!("{} µs", v / 1e3)
    } else {
        format!("{v} ns")
    }
}

/// One chart: `id` names the `<svg>` (the tests find the bands under it).
pub fn chart(
    id: &str,
    y_label: &str,
    scale: Scale,
    lines: &[Line<'_>],
    end_ns: u64,
    faults: &Faults,
) -> String {
    let end_s = (end_ns as f64 / 1e9).max(0.001);
    let plot_w = WIDTH - LEFT - RIGHT;
    let xs = |t: f64| LEFT + t / end_s * plot_w;
    let xn = |ns: u64| xs(ns as f64 / 1e9);
    let (rows, nrows) = label_rows(&faults.faults, xn);
    let top = 8.0 + nrows as f64 * ROW_H;
    let height = top + PLOT_H + 30.0;
    let values = lines
        .iter()
        .flat_map(|l| l.points.iter().filter_map(|p| p.1))
        .filter(|v| v.is_finite());
    let (y_of, ticks): (YMap, Vec<(f64, String)>) = match scale {
        Scale::Linear => {
            let max = nice(values.fold(0.0, f64::max).max(1.0));
            let step = tick_step(max, 4.0);
            let ticks = (0..)
                .map(|i| i as f64 * step)
                .take_while(|v| *v <= max + step / 2.0)
                .map(|v| (v, format!("{v}")))
                .collect();
            (
                Box::new(move |v: f64| top + PLOT_H - v / max * PLOT_H),
                ticks,
            )
        }
        Scale::LogNs => {
            let (lo, hi) = values
                .filter(|v| *v > 0.0)
                .fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
            let (lo, hi) = if lo.is_finite() {
                (
                    lo.log10().floor(),
                    hi.log10().ceil().max(lo.log10().floor() + 1.0),
                )
            } else {
                (5.0, 9.0)
            };
            let ticks = (lo as i32..=hi as i32)
                .map(|e| (10f64.powi(e), fmt_ns(10f64.powi(e))))
                .collect();
            (
                Box::new(move |v: f64| {
                    let l = v.max(10f64.powf(lo)).log10();
                    top + PLOT_H - (l - lo) / (hi - lo) * PLOT_H
                }),
                ticks,
            )
        }
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg id=\"{id}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" preserveAspectRatio=\"xMinYMin meet\">"
    );
    // Bands first, so the curves are drawn over them.
    for (f, row) in faults.faults.iter().zip(&rows) {
        let (x0, x1) = (xn(f.start), xn(f.end).max(xn(f.start) + 1.5));
        let _ = write!(
            s,
            "<g class=\"band {}\" data-kind=\"{}\"><title>{} from {} to {}{}</title><rect x=\"{x0:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"{PLOT_H}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
            kind_class(&f.kind),
            esc(&f.kind),
            esc(&f.label),
            secs(f.start),
            secs(f.end),
            if f.ended { "" } else { " (never undone)" },
            x1 - x0,
            x0 + 1.0,
            6.0 + (*row as f64 + 1.0) * ROW_H - 3.0,
            esc(&f.label)
        );
    }
    // Axes and grid.
    for (v, label) in &ticks {
        let y = y_of(*v);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text class=\"tick\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 4.0,
            y + 4.0,
            esc(label)
        );
    }
    let step = tick_step(end_s, 12.0);
    let mut t = 0.0;
    while t <= end_s + 1e-9 {
        let x = xs(t);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top}\" y2=\"{}\"/><text class=\"tick\" x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}s</text>",
            top + PLOT_H,
            top + PLOT_H + 14.0,
            (t * 1000.0).round() / 1000.0
        );
        t += step;
    }
    let _ = write!(
        s,
        "<text class=\"axis\" transform=\"rotate(-90)\" x=\"{:.1}\" y=\"12\" text-anchor=\"middle\">{}</text>",
        -(top + PLOT_H / 2.0),
        esc(y_label)
    );
    for m in &faults.marks {
        mark(&mut s, m, xn(m.time), top, PLOT_H);
    }
    for l in lines {
        let mut d = String::new();
        let mut pen_down = false;
        for (t, v) in &l.points {
            match v {
                Some(v) if v.is_finite() => {
                    let _ = write!(
                        d,
                        "{}{:.1},{:.1} ",
                        if pen_down { "L" } else { "M" },
                        xs(*t),
                        y_of(*v)
                    );
                    pen_down = true;
                }
                _ => pen_down = false,
            }
        }
        let _ = write!(
            s,
            "<path class=\"series\" d=\"{}\" stroke=\"{}\"><title>{}</title></path>",
            d.trim_end(),
            l.color,
            esc(l.name)
        );
    }
    s.push_str("</svg>");
    s
}

/// A restart, crash or skipped fault: a vertical line with its tooltip.
pub fn mark(s: &mut String, m: &Mark, x: f64, top: f64, h: f64) {
    let _ = write!(
        s,
        "<g class=\"mark {}\"><title>{} at {}</title><line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top}\" y2=\"{}\"/></g>",
        m.kind.class(),
        esc(&m.label),
        secs(m.time),
        top + h
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_numbers() {
        assert_eq!(nice(0.0), 1.0);
        assert_eq!(nice(3.0), 5.0);
        assert_eq!(nice(11.0), 20.0);
        assert_eq!(nice(5000.0), 5000.0);
        assert_eq!(nice(0.07), 0.1);
    }

    #[test]
    fn overlapping_labels_take_separate_rows() {
        let f = |start: u64, end: u64| Fault {
            id: None,
            kind: "pause".into(),
            detail: None,
            label: "pause n1".into(),
            start,
            end,
            ended: true,
            nodes: Vec::new(),
        };
        let faults = [f(0, 100), f(50, 150), f(500, 600)];
        let (rows, n) = label_rows(&faults, |t| t as f64);
        assert_eq!(rows, vec![0, 1, 0]);
        assert_eq!(n, 2);
    }
}
