//! The run page: header, charts, availability, timeline, the violation and node logs.

use super::charts::{self, Line, Scale};
use super::faults::{self, Faults};
use super::html::{esc, href, pct, secs};
use super::load::RunData;
use super::logs;
use super::stats;
use super::timeline::{self, Focus};
use serde_json::Value;
use std::fmt::Write as _;
use std::time::Duration;

pub const STYLE: &str = r#"
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#222;background:#f6f6f4}
main{max-width:1240px;margin:0 auto;padding:12px 16px 40px}
h1{font-size:20px;margin:4px 0} h2{font-size:17px;margin:26px 0 6px;border-bottom:1px solid #ddd;padding-bottom:3px}
a{color:#0d47a1}
header.head{padding:10px 16px;border-radius:6px;color:#fff;margin-bottom:10px}
header.v-pass{background:#2e7d32} header.v-fail{background:#b71c1c} header.v-unknown{background:#a15c00} header.v-broken{background:#4a148c} header.v-none{background:#616161}
#verdict{font-size:34px;font-weight:700;letter-spacing:.5px}
header .sub{font-size:15px;opacity:.95}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:4px 24px}
table{border-collapse:collapse;font-size:13px;margin:4px 0;background:#fff} td,th{border:1px solid #ddd;padding:2px 8px;text-align:left} th{background:#f0f0ee}
td.n{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#fff;border:1px solid #ddd;padding:6px 8px;white-space:pre-wrap;word-break:break-all;font-size:12px;margin:4px 0}
.note{color:#444;margin:4px 0} .warn{color:#8a4b00;font-weight:600}
.legend span{display:inline-block;margin-right:14px;font-size:13px}.sw{display:inline-block;width:14px;height:10px;margin-right:4px;vertical-align:middle;border:1px solid #888}
svg.chart,#timeline{width:100%;height:auto;background:#fff;border:1px solid #ddd;display:block}
svg text{font:11px system-ui,sans-serif}
.tick{fill:#555}.axis{fill:#222;font-weight:600} .grid{stroke:#eee}
.series{fill:none;stroke-width:1.6}
.band rect{opacity:.16} .band text,.band-label{font-size:10.5px;font-weight:600}
.k-pause rect{fill:#1e88e5}.k-kill rect{fill:#e53935}.k-partition rect{fill:#8e24aa}.k-client rect{fill:#00897b}.k-delay rect{fill:#f9a825}.k-other rect{fill:#757575}
.k-pause text,text.k-pause{fill:#0d47a1}.k-kill text,text.k-kill{fill:#b71c1c}.k-partition text,text.k-partition{fill:#6a1b9a}.k-client text,text.k-client{fill:#00695c}.k-delay text,text.k-delay{fill:#8d6e00}.k-other text,text.k-other{fill:#424242}
.mark line{stroke-width:1.5}.mark.restart line{stroke:#1565c0;stroke-dasharray:4 3}.mark.crash line{stroke:#d50000;stroke-width:2.5}.mark.skipped line{stroke:#9e9e9e;stroke-dasharray:1 3}.mark.transfer line{stroke:#6a1b9a;stroke-dasharray:6 2}
.lanes text{fill:#444;font-size:10px}.lanes line{stroke:#f0f0f0}
#tl-world rect{vector-effect:non-scaling-stroke}
rect.op.ok{fill:#66bb6a}rect.op.fail{fill:#e57373}rect.op.info{fill:#ffa726}rect.op.pending{fill:#ffcc80}
rect.op.cex{stroke:#d50000;stroke-width:2.5}
rect.node-paused{fill:#1e88e5}rect.node-down{fill:#e53935}
#timeline{cursor:grab;user-select:none}
.tl-controls{margin:4px 0}.tl-controls button{font-size:12px}
.log{max-height:340px;overflow:auto}
.log .near{background:#ffecb3;font-weight:600}
.log .ln{color:#999;display:inline-block;min-width:4em}
.cex-view svg{max-width:100%;height:auto}
#js-errors:empty{display:none} #js-errors{color:#b71c1c;font-weight:700}
.v-linearizable{color:#1b7a2e}.v-not-linearizable{color:#b71c1c}.v-unknown{color:#a15c00}
"#;

/// Records script errors in the page itself (`#js-errors`), where a reader and the tests see
/// them; runs first so it catches errors of everything after it.
const ERROR_TRAP: &str = r#"<script>window.__errors=[];window.addEventListener('error',function(e){window.__errors.push(String(e.message));var d=document.getElementById('js-errors');if(d)d.textContent='Script error: '+window.__errors.join('; ');});</script>"#;

/// Zoom and pan of the timeline: the world group is translated and scaled along x; the fault
/// labels and the time axis are redrawn for the visible range.
const TIMELINE_JS: &str = r#"<script>(function(){
var svg=document.getElementById('timeline');if(!svg)return;
var world=document.getElementById('tl-world'),labels=document.querySelectorAll('#tl-labels text'),axis=document.getElementById('tl-axis'),range=document.getElementById('tl-range');
var d=svg.dataset,L=+d.left,W=+d.width,t0=+d.t0,t1=+d.t1,top=+d.top,bottom=+d.bottom,NS='http://www.w3.org/2000/svg',k=1,tx=0,drag=null;
function clamp(){k=Math.max(1,Math.min(k,5000));tx=Math.min(0,Math.max(tx,W-W*k));}
function nice(x){var p=Math.pow(10,Math.floor(Math.log10(x))),m=[1,2,5,10];for(var i=0;i<4;i++){if(m[i]*p>=x)return m[i]*p;}return 10*p;}
function el(n,a,t){var e=document.createElementNS(NS,n);for(var key in a)e.setAttribute(key,a[key]);if(t!==undefined)e.textContent=t;axis.appendChild(e);}
function draw(){
world.setAttribute('transform','translate('+(L+tx)+',0) scale('+k+',1)');
for(var i=0;i<labels.length;i++){labels[i].setAttribute('x',L+tx+k*(+labels[i].dataset.x)+1);}
var a=t0+(-tx/k)/W*(t1-t0),b=t0+((W-tx)/k)/W*(t1-t0);
range.textContent='showing '+a.toFixed(3)+' s to '+b.toFixed(3)+' s';
while(axis.firstChild)axis.removeChild(axis.firstChild);
var step=nice((b-a)/10);
for(var t=Math.ceil(a/step)*step;t<=b+step*1e-6;t+=step){var x=L+(t-a)/(b-a)*W;
el('line',{x1:x,x2:x,y1:top,y2:bottom,'class':'grid'});el('text',{x:x,y:bottom+14,'text-anchor':'middle','class':'tick'},(+t.toFixed(6))+'s');}
}
function px(ev){var r=svg.getBoundingClientRect();return (ev.clientX-r.left)*(svg.viewBox.baseVal.width/r.width)-L;}
function zoomAt(x,f){var nk=Math.max(1,Math.min(k*f,5000));tx=x-(x-tx)*nk/k;k=nk;clamp();draw();}
svg.addEventListener('wheel',function(ev){ev.preventDefault();zoomAt(px(ev),ev.deltaY<0?1.25:0.8);},{passive:false});
svg.addEventListener('mousedown',function(ev){drag={x:px(ev),tx:tx};ev.preventDefault();});
window.addEventListener('mousemove',function(ev){if(!drag)return;tx=drag.tx+(px(ev)-drag.x);clamp();draw();});
window.addEventListener('mouseup',function(){drag=null;});
var bs=document.querySelectorAll('.tl-controls button');
for(var i=0;i<bs.length;i++){(function(b){b.addEventListener('click',function(){var z=b.dataset.zoom;if(z==='reset'){k=1;tx=0;clamp();draw();}else{zoomAt(W/2,z==='in'?2:0.5);}});})(bs[i]);}
draw();
})();</script>"#;

/// Marks the page as drawn, with the time it took since navigation started (for the tests and
/// the load-time measurement).
const DONE_JS: &str = r#"<script>document.body.setAttribute('data-rendered',String(Math.round(performance.now())));</script>"#;

fn verdict_class(verdict: &str, exit: Option<i64>) -> &'static str {
    match (verdict, exit) {
        ("not-linearizable", _) => "v-fail",
        (_, Some(255)) => "v-broken",
        ("linearizable", _) => "v-pass",
        ("unknown", _) => "v-unknown",
        _ => "v-none",
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(value_text).collect::<Vec<_>>().join(","),
        Value::Null => "-".into(),
        v => v.to_string(),
    }
}

/// Renders the page.
pub fn render(run: &RunData) -> String {
    let mut s = String::with_capacity(256 * 1024);
    let verdict = run.verdict();
    let exit = run.exit_code();
    let name = run.run["run_dir"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            run.dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{} — {}</title>{ERROR_TRAP}<style>{}{STYLE}</style></head><body><main>",
        esc(&verdict),
        esc(&name),
        lincheck::html::STYLE
    );
    let history = run.history.as_ref().ok();
    let end = history.map(|h| h.end_time()).unwrap_or(0);
    let faults = history
        .map(|h| faults::from_history(&h.nemesis, end))
        .unwrap_or_default();
    header(&mut s, run, &verdict, exit, &name, &faults);
    s.push_str("<div id=\"js-errors\"></div>");
    for w in &run.warnings {
        let _ = write!(s, "<p class=\"warn\">{}</p>", esc(w));
    }
    let Some(h) = history else {
        if let Err(e) = &run.history {
            let _ = write!(
                s,
                "<p class=\"warn\">The history cannot be read, so nothing of it is drawn: {}</p>",
                esc(e)
            );
        }
        logs_section(&mut s, run, None);
        s.push_str("</main>");
        s.push_str(DONE_JS);
        s.push_str("</body></html>\n");
        return s;
    };
    if let Some(line) = h.torn_tail {
        let _ = write!(
            s,
            "<p class=\"warn\">The history's last line ({line}) was cut off by the writer and is left out.</p>"
        );
    }
    counts_section(&mut s, h, &faults);
    charts_section(&mut s, h, end, &faults);
    availability_section(&mut s, h, &faults);
    let focus = violation_focus(run, h);
    let focus = focus.or_else(|| timeline::busiest_fault(h, &faults));
    s.push_str("<h2 id=\"timeline-h\">Timeline</h2>");
    s.push_str("<div class=\"legend\"><span><i class=\"sw\" style=\"background:#66bb6a\"></i>ok</span><span><i class=\"sw\" style=\"background:#e57373\"></i>fail (did not happen)</span><span><i class=\"sw\" style=\"background:#ffa726\"></i>info (timeout: unknown)</span><span><i class=\"sw\" style=\"background:#ffcc80\"></i>no reply before the end</span><span><i class=\"sw\" style=\"background:#fff;border:2px solid #d50000\"></i>the counterexample</span><span><i class=\"sw\" style=\"background:#1e88e5\"></i>node paused</span><span><i class=\"sw\" style=\"background:#e53935\"></i>node down</span></div>");
    let clients = run.run["options"]["clients"].as_u64();
    let nodes: Vec<String> = run.node_logs.iter().map(|(id, _)| id.clone()).collect();
    s.push_str(&timeline::render(
        h,
        &faults,
        clients,
        &nodes,
        end,
        focus.as_ref(),
    ));
    violation_section(&mut s, run, h, &faults);
    logs_section(&mut s, run, violation_time(run, h));
    s.push_str("</main>");
    s.push_str(TIMELINE_JS);
    s.push_str(DONE_JS);
    s.push_str("</body></html>\n");
    s
}

fn header(
    s: &mut String,
    run: &RunData,
    verdict: &str,
    exit: Option<i64>,
    name: &str,
    faults: &Faults,
) {
    let o = &run.run["outcome"];
    let _ = write!(
        s,
        "<header class=\"head {}\"><div id=\"verdict\">{}</div><div class=\"sub\">",
        verdict_class(verdict, exit),
        esc(verdict)
    );
    if let Some(f) = o["failure"].as_str() {
        let _ = write!(s, "<b>run failed</b>: {}<br>", esc(f));
    }
    let _ = write!(
        s,
        "run {} · seed {} · {} · started {} · exit code {}</div></header>",
        esc(name),
        esc(&value_text(&run.run["seed"])),
        esc(run.run["system"]["name"].as_str().unwrap_or("?")),
        esc(run.run["started"].as_str().unwrap_or("?")),
        exit.map(|c| c.to_string())
            .unwrap_or_else(|| "- (the run did not finish)".into())
    );
    if let Some(r) = run.run["replay"].as_str() {
        let _ = write!(s, "<div>Replay:</div><pre id=\"replay\">{}</pre>", esc(r));
    }
    if let Some(opts) = run.run["options"].as_object() {
        s.push_str(
            "<details><summary>Options</summary><table><tr><th>option</th><th>value</th></tr>",
        );
        for (k, v) in opts {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td></tr>",
                esc(k),
                esc(&value_text(v))
            );
        }
        s.push_str("</table></details>");
    }
    let _ = write!(
        s,
        "<p>Faults: <b id=\"fault-counts\">{}</b>",
        esc(&faults.counts_line())
    );
    let skipped = faults
        .marks
        .iter()
        .filter(|m| m.kind == faults::MarkKind::Skipped)
        .count();
    if skipped > 0 {
        let _ = write!(s, "; {skipped} skipped (targets already down)");
    }
    let crashes = faults
        .marks
        .iter()
        .filter(|m| m.kind.class() == "crash")
        .count();
    if crashes > 0 {
        let _ = write!(
            s,
            "; <b class=\"warn\">{crashes} node crash(es) or failed restart(s)</b>"
        );
    }
    s.push_str("</p>");
}

fn counts_section(s: &mut String, h: &lincheck::History, faults: &Faults) {
    let _ = faults;
    s.push_str("<table id=\"op-counts\"><tr><th>operation</th><th>ok</th><th>fail</th><th>info / no reply</th><th>total</th><th>ok share</th></tr>");
    let mut all = stats::Counts::default();
    for (f, c) in stats::by_function(h) {
        all.ok += c.ok;
        all.fail += c.fail;
        all.info += c.info;
        let _ = write!(
            s,
            "<tr><td>{f}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            c.ok, c.fail, c.info, c.total(), pct(c.ok, c.total())
        );
    }
    let _ = write!(
        s,
        "<tr><th>all</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th></tr></table>",
        all.ok, all.fail, all.info, all.total(), pct(all.ok, all.total())
    );
}

fn charts_section(s: &mut String, h: &lincheck::History, end: u64, faults: &Faults) {
    let series = stats::series(h, end);
    let mid = |i: usize| (i as f64 + 0.5) * series.width as f64 / 1e9;
    let pick = |f: &dyn Fn(&stats::Bucket) -> Option<f64>| -> Vec<(f64, Option<f64>)> {
        series
            .buckets
            .iter()
            .enumerate()
            .map(|(i, b)| (mid(i), f(b)))
            .collect()
    };
    let per = if series.width == 1_000_000_000 {
        "per second"
    } else {
        "per quarter second, as a rate per second"
    };
    let _ = write!(
        s,
        "<h2>Throughput</h2><p class=\"note\">Completions {per}, by outcome. Shaded: faults in force (hover for times); dashed blue: restarts; red: crashes.</p>\
         <div class=\"legend\"><span><i class=\"sw\" style=\"background:#2e7d32\"></i>ok/s</span><span><i class=\"sw\" style=\"background:#c62828\"></i>fail/s</span><span><i class=\"sw\" style=\"background:#ef6c00\"></i>info/s</span></div>"
    );
    s.push_str(&charts::chart(
        "throughput",
        "ops/s",
        Scale::Linear,
        &[
            Line {
                name: "ok/s",
                color: "#2e7d32",
                points: pick(&|b| Some(b.ok)),
            },
            Line {
                name: "fail/s",
                color: "#c62828",
                points: pick(&|b| Some(b.fail)),
            },
            Line {
                name: "info/s",
                color: "#ef6c00",
                points: pick(&|b| Some(b.info)),
            },
        ],
        end,
        faults,
    ));
    let _ = write!(
        s,
        "<h2>Latency</h2><p class=\"note\">Of the operations completed in each bucket (ok, fail and info; an info is a timeout), log scale.</p>\
         <div class=\"legend\"><span><i class=\"sw\" style=\"background:#1565c0\"></i>p50</span><span><i class=\"sw\" style=\"background:#6a1b9a\"></i>p95</span><span><i class=\"sw\" style=\"background:#ad1457\"></i>p99</span><span><i class=\"sw\" style=\"background:#424242\"></i>max</span></div>"
    );
    let ns = |v: Option<u64>| v.map(|x| x as f64);
    s.push_str(&charts::chart(
        "latency",
        "latency",
        Scale::LogNs,
        &[
            Line {
                name: "p50",
                color: "#1565c0",
                points: pick(&|b| ns(b.p50)),
            },
            Line {
                name: "p95",
                color: "#6a1b9a",
                points: pick(&|b| ns(b.p95)),
            },
            Line {
                name: "p99",
                color: "#ad1457",
                points: pick(&|b| ns(b.p99)),
            },
            Line {
                name: "max",
                color: "#424242",
                points: pick(&|b| ns(b.max)),
            },
        ],
        end,
        faults,
    ));
}

fn availability_section(s: &mut String, h: &lincheck::History, faults: &Faults) {
    let (during, outside) = stats::availability(h, &faults.faults);
    s.push_str("<h2>Availability</h2><p class=\"note\">Operations invoked while each fault was in force (faults may overlap: an operation counts for each), and while none was.</p>\
        <table id=\"availability\"><tr><th>fault</th><th>from</th><th>to</th><th>ops</th><th>ok</th><th>fail</th><th>info</th><th>ok share</th></tr>");
    for (f, c) in faults.faults.iter().zip(&during) {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&f.label),
            secs(f.start),
            secs(f.end),
            if f.ended { "" } else { " (end)" },
            c.total(), c.ok, c.fail, c.info, pct(c.ok, c.total())
        );
    }
    let _ = write!(
        s,
        "<tr><th>no fault in force</th><td></td><td></td><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th></tr></table>",
        outside.total(), outside.ok, outside.fail, outside.info, pct(outside.ok, outside.total())
    );
}

/// Invocation and completion times of the counterexample's operations, as result.json names
/// them (the unplaceable ones and the last few of the prefix).
fn cex_span(run: &RunData) -> Option<(u64, u64, Vec<u64>)> {
    let c = run.result["counterexamples"].as_array()?.first()?;
    let unplaceable = c["unplaceable"].as_array()?;
    let prefix = c["prefix"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let tail = &prefix[prefix.len().saturating_sub(3)..];
    let ops: Vec<&Value> = unplaceable.iter().chain(tail).collect();
    let lo = ops
        .iter()
        .filter_map(|o| o["invoke_time_ns"].as_u64())
        .min()?;
    let hi = ops
        .iter()
        .filter_map(|o| {
            o["complete_time_ns"]
                .as_u64()
                .or(o["invoke_time_ns"].as_u64())
        })
        .max()
        .unwrap_or(lo);
    let lines = ops
        .iter()
        .filter_map(|o| o["invoke_line"].as_u64())
        .collect();
    Some((lo, hi, lines))
}

/// The instant of the violation: the invocation of the first operation that cannot be placed.
fn violation_time(run: &RunData, _h: &lincheck::History) -> Option<u64> {
    run.result["counterexamples"][0]["unplaceable"][0]["invoke_time_ns"].as_u64()
}

fn violation_focus(run: &RunData, h: &lincheck::History) -> Option<Focus> {
    let (lo, _, lines) = cex_span(run)?;
    let key = run.result["counterexamples"][0]["key"]
        .as_str()
        .unwrap_or("?");
    let ops = h
        .ops
        .iter()
        .enumerate()
        .filter(|(_, o)| lines.contains(&o.call_line))
        .map(|(i, _)| i)
        .collect();
    Some(Focus {
        time: violation_time(run, h).unwrap_or(lo),
        why: format!("the counterexample on key {key}"),
        ops,
    })
}

fn violation_section(s: &mut String, run: &RunData, h: &lincheck::History, faults: &Faults) {
    let Some(cexs) = run.result["counterexamples"]
        .as_array()
        .filter(|a| !a.is_empty())
    else {
        if let Some(u) = run.result["unresolved"]
            .as_array()
            .filter(|a| !a.is_empty())
        {
            let keys: Vec<String> = u
                .iter()
                .map(|k| format!("{} ({})", value_text(&k["key"]), value_text(&k["cause"])))
                .collect();
            let _ = write!(
                s,
                "<h2>Unresolved</h2><p class=\"warn\">The check could not decide these keys: {}</p>",
                esc(&keys.join(", "))
            );
        }
        return;
    };
    s.push_str("<h2 id=\"violation\">The violation</h2>");
    if run.check.is_some() {
        let keys: Vec<String> = cexs
            .iter()
            .filter_map(|c| c["key"].as_str())
            .map(|k| format!("<b class=\"failing-key\">{}</b>", esc(k)))
            .collect();
        let _ = write!(s, "<p>Not linearizable on key {}.</p>", keys.join(", "));
    }
    for c in cexs.iter().filter(|_| run.check.is_none()) {
        let _ = write!(
            s,
            "<p>Key <b class=\"failing-key\">{}</b>:</p><div class=\"expl\">{}</div>",
            esc(c["key"].as_str().unwrap_or("?")),
            esc(c["explanation"].as_str().unwrap_or(""))
        );
    }
    if let Some((lo, hi, _)) = cex_span(run) {
        let over = faults.overlapping(lo, hi);
        let _ = write!(
            s,
            "<p id=\"cex-faults\">The counterexample spans {:.3} s to {:.3} s. ",
            lo as f64 / 1e9,
            hi as f64 / 1e9
        );
        if over.is_empty() {
            s.push_str("No fault was in force then");
            if let Some(prev) = faults
                .faults
                .iter()
                .filter(|f| f.end < lo)
                .max_by_key(|f| f.end)
            {
                let _ = write!(
                    s,
                    "; the last one before it, <b>{}</b>, ended {:.0} ms earlier",
                    esc(&prev.label),
                    (lo - prev.end) as f64 / 1e6
                );
            }
            s.push_str(".</p>");
        } else {
            s.push_str("Faults in force during it:</p><ul>");
            for f in over {
                let _ = write!(
                    s,
                    "<li><b>{}</b>, {} to {}</li>",
                    esc(&f.label),
                    secs(f.start),
                    secs(f.end)
                );
            }
            s.push_str("</ul>");
        }
    }
    match (&run.check, &run.check_error) {
        (Some(check), _) => {
            s.push_str("<div class=\"cex-view\">");
            s.push_str(&lincheck::html::keys_html(
                h,
                check,
                &lincheck::html::HtmlOptions::default(),
            ));
            s.push_str("</div>");
        }
        (None, Some(e)) => {
            let _ = write!(
                s,
                "<p class=\"warn\">The counterexample cannot be drawn: {}</p>",
                esc(e)
            );
        }
        (None, None) => {}
    }
}

fn logs_section(s: &mut String, run: &RunData, at: Option<u64>) {
    s.push_str("<h2 id=\"logs\">Node logs</h2>");
    let when = at.zip(run.zero_wall).map(|(ns, zero)| {
        (
            zero + Duration::from_nanos(ns),
            format!("the violation ({})", secs(ns)),
        )
    });
    if at.is_some() && when.is_none() {
        s.push_str("<p class=\"note\">The wall-clock time of the history's start is not known (run.json's start or proxy.log missing), so these are the logs' last lines.</p>");
    }
    let open = at.is_some();
    for (id, path) in &run.node_logs {
        let e = logs::excerpt(path, when.clone());
        let _ = write!(
            s,
            "<details class=\"node-log\"{}><summary>node {} — {} (<a href=\"{}\">full log</a>)</summary><pre class=\"log\">",
            if open { " open" } else { "" },
            esc(id),
            esc(&e.what),
            esc(&href(&run.dir, path))
        );
        for (n, line, near) in &e.lines {
            let _ = writeln!(
                s,
                "<span class=\"{}\"><span class=\"ln\">{n}</span>{}</span>",
                if *near { "near" } else { "" },
                esc(line)
            );
        }
        s.push_str("</pre></details>");
    }
    s.push_str("<p>Files: ");
    for f in ["run.json", "history.jsonl", "result.json", "proxy.log"] {
        if run.dir.join(f).exists() {
            let _ = write!(s, "<a href=\"{f}\">{f}</a> · ");
        }
    }
    s.push_str("<a href=\"../index.html\">all runs</a></p>");
}
